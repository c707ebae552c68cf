//! Demo accounts: which cookies the sandbox accepts and who they belong to.
//!
//! A cookie is accepted when its `sessionid` is `sandbox-<name>` (name = `[A-Za-z0-9_-]+`)
//! and it carries a non-empty `csrf_token`. Each name is its own user.

use axum::http::HeaderMap;
use axum::http::header::COOKIE;
use sha2::{Digest, Sha256};

/// The user a request's cookie identifies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    pub name: String,
    /// The cookie's `csrf_token`, which step 5 wants echoed in the `csrf_token` header.
    pub csrf_token: String,
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn derived_hex(label: &str, name: &str) -> String {
    let mut h = Sha256::new();
    h.update(label.as_bytes());
    h.update([0]);
    h.update(name.as_bytes());
    let digest = h.finalize();
    base16ct::lower::encode_string(&digest[..16])
}

/// The cookie this sandbox accepts for the demo account `name` (`[A-Za-z0-9_-]+`; any
/// other name yields a cookie the sandbox refuses). Stable across runs.
///
/// It also carries a `passport_csrf_token` (as real cookies do) before `csrf_token`, so a
/// client that finds the token by substring picks the wrong one.
pub fn cookie_for(name: &str) -> String {
    format!(
        "passport_csrf_token={}; sessionid=sandbox-{name}; csrf_token={}; ttwid=1%7Csandbox",
        derived_hex("passport", name),
        derived_hex("csrf", name),
    )
}

/// A stable numeric user id for a demo account.
pub(crate) fn uid_for(name: &str) -> String {
    let hex = derived_hex("uid", name);
    let n = u64::from_str_radix(&hex[..12], 16).unwrap_or(0);
    format!("{}", 10_000_000_000 + n % 90_000_000_000)
}

/// The cookie's `name=value` pairs, over every `Cookie` header.
fn cookie_pairs(headers: &HeaderMap) -> Vec<(String, String)> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| {
            let (k, v) = pair.split_once('=')?;
            Some((k.trim().to_owned(), v.trim().to_owned()))
        })
        .collect()
}

/// The account of a request, or `None` when its cookie is missing or not a sandbox one.
pub(crate) fn from_headers(headers: &HeaderMap) -> Option<Account> {
    let pairs = cookie_pairs(headers);
    let find = |key: &str| pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone());
    let name = find("sessionid")?.strip_prefix("sandbox-")?.to_owned();
    let csrf_token = find("csrf_token")?;
    (valid_name(&name) && !csrf_token.is_empty()).then_some(Account { name, csrf_token })
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(cookie: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(COOKIE, HeaderValue::from_str(cookie).expect("ascii cookie"));
        h
    }

    #[test]
    fn cookie_for_round_trips() {
        let account = from_headers(&headers(&cookie_for("main"))).expect("accepted");
        assert_eq!(account.name, "main");
        assert_eq!(account.csrf_token, derived_hex("csrf", "main"));
        assert_ne!(cookie_for("main"), cookie_for("other"));
    }

    #[test]
    fn refuses_foreign_or_incomplete_cookies() {
        for cookie in [
            "sessionid=abc; csrf_token=x",
            "sessionid=sandbox-; csrf_token=x",
            "sessionid=sandbox-a b; csrf_token=x",
            "sessionid=sandbox-main",
            "sessionid=sandbox-main; csrf_token=",
            "sessionid=sandbox-main; passport_csrf_token=x",
        ] {
            assert_eq!(from_headers(&headers(cookie)), None, "{cookie}");
        }
        assert_eq!(from_headers(&HeaderMap::new()), None);
    }

    #[test]
    fn uid_is_digits_and_stable() {
        let uid = uid_for("main");
        assert_eq!(uid.len(), 11);
        assert!(uid.bytes().all(|b| b.is_ascii_digit()));
        assert_eq!(uid, uid_for("main"));
    }
}
