//! Who may use the status server: the optional bearer token (header, cookie, or
//! `?token=` once), the DNS-rebinding guard (without a token only loopback `Host`s are
//! served), the cross-site request guard for `POST`s, and the security headers every
//! response carries.

use std::net::IpAddr;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::secret::Secret;

use super::App;

/// The cookie a browser gets after opening the dashboard with `?token=`.
pub const COOKIE: &str = "dropcast_token";
/// The header every state-changing request must carry.
pub const REQUEST_HEADER: &str = "x-dropcast-request";

/// The configured token, in the forms requests present it.
#[derive(Clone)]
pub struct Token {
    secret: Secret,
    /// Hex of the token: what the cookie holds (any token is a valid cookie value then).
    cookie: Secret,
}

impl Token {
    pub fn new(secret: Secret) -> Token {
        let cookie = Secret::new(base16ct::lower::encode_string(secret.expose().as_bytes()));
        Token { secret, cookie }
    }

    fn matches_bearer(&self, headers: &HeaderMap) -> bool {
        headers
            .get_all(header::AUTHORIZATION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(bearer_credentials)
            .any(|t| same(t, self.secret.expose()))
    }

    fn matches_cookie(&self, headers: &HeaderMap) -> bool {
        headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .any(|(name, value)| name == COOKIE && same(value, self.cookie.expose()))
    }
}

/// The credentials of an `Authorization: Bearer …` header. The scheme is matched without
/// regard to case (RFC 9110 §11.1: `bearer`, `BEARER` are the same scheme).
fn bearer_credentials(value: &str) -> Option<&str> {
    let (scheme, rest) = value.trim_start().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
}

/// Compares without stopping at the first difference.
fn same(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The value of `?token=` in a query string, percent-decoded.
fn query_token(query: Option<&str>) -> Option<String> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query?).ok()?;
    pairs
        .into_iter()
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v)
}

fn refuse(status: StatusCode, message: &str) -> Response {
    let body = serde_json::json!({ "error": message });
    (status, axum::Json(body)).into_response()
}

/// Token and `Host` checks for every path but `/healthz`.
pub(super) async fn access(State(app): State<App>, req: Request, next: Next) -> Response {
    if req.uri().path() == "/healthz" {
        return next.run(req).await;
    }
    match &app.token {
        None => {
            if !loopback_host(req.headers()) {
                return refuse(
                    StatusCode::MISDIRECTED_REQUEST,
                    "without status.token only requests to a loopback address (127.0.0.1, \
                     [::1], localhost) are answered",
                );
            }
        }
        Some(token) => {
            let headers = req.headers();
            if token.matches_bearer(headers) || token.matches_cookie(headers) {
                return next.run(req).await;
            }
            let given = query_token(req.uri().query());
            if let Some(given) = given
                && same(&given, token.secret.expose())
            {
                if req.method() == Method::GET {
                    // Trade the token in the address for a cookie, and drop it from the
                    // address bar and the history.
                    let cookie = format!(
                        "{COOKIE}={}; HttpOnly; SameSite=Strict; Path=/",
                        token.cookie.expose()
                    );
                    let mut res = StatusCode::SEE_OTHER.into_response();
                    if let (Ok(cookie), Ok(location)) = (
                        HeaderValue::from_str(&cookie),
                        HeaderValue::from_str(req.uri().path()),
                    ) {
                        res.headers_mut().insert(header::SET_COOKIE, cookie);
                        res.headers_mut().insert(header::LOCATION, location);
                        return res;
                    }
                }
                return next.run(req).await;
            }
            let mut res = refuse(
                StatusCode::UNAUTHORIZED,
                "this status server needs its token: send `Authorization: Bearer <status.token>`, \
                 or open the dashboard once as /?token=<status.token>",
            );
            res.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            return res;
        }
    }
    next.run(req).await
}

/// Whether the `Host` header names a loopback address (or is absent: no browser omits it).
fn loopback_host(headers: &HeaderMap) -> bool {
    let Some(host) = headers.get(header::HOST) else {
        return true;
    };
    let Ok(host) = host.to_str() else {
        return false;
    };
    let name = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else {
        host.rsplit_once(':').map_or(host, |(name, _)| name)
    };
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.to_canonical().is_loopback())
}

/// Why a state-changing request is refused as possibly cross-site, if it is.
pub fn cross_site(headers: &HeaderMap) -> Option<&'static str> {
    if headers.get(REQUEST_HEADER).and_then(|v| v.to_str().ok()) != Some("1") {
        return Some("missing the X-Dropcast-Request: 1 header (the dashboard sends it)");
    }
    if let Some(site) = headers.get("sec-fetch-site")
        && site.as_bytes() != b"same-origin"
    {
        return Some("cross-site requests are refused");
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let host = headers.get(header::HOST).map(HeaderValue::as_bytes);
        let origin_host = origin
            .to_str()
            .ok()
            .and_then(|o| o.split_once("://"))
            .map(|(_, h)| h.as_bytes());
        if host.is_none() || origin_host != host {
            return Some("the request's Origin is not this server");
        }
    }
    None
}

/// Refuses `POST`s that may come from another site.
pub async fn same_site(req: Request, next: Next) -> Response {
    if req.method() == Method::POST
        && let Some(why) = cross_site(req.headers())
    {
        return refuse(StatusCode::FORBIDDEN, why);
    }
    next.run(req).await
}

/// Security headers on every response; the page sets its own `Content-Security-Policy`.
pub async fn headers(req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.entry(header::CONTENT_SECURITY_POLICY)
        .or_insert(HeaderValue::from_static(
            "default-src 'none'; frame-ancestors 'none'",
        ));
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn loopback_hosts_only() {
        for ok in [
            "127.0.0.1:8931",
            "localhost:1",
            "[::1]:8931",
            "127.0.0.2",
            "LOCALHOST",
        ] {
            assert!(loopback_host(&headers(&[("host", ok)])), "{ok}");
        }
        for bad in [
            "evil.example:8931",
            "10.0.0.1:8931",
            "[::2]:1",
            "localhost.evil.com",
        ] {
            assert!(!loopback_host(&headers(&[("host", bad)])), "{bad}");
        }
    }

    #[test]
    fn cross_site_rules() {
        let h = "127.0.0.1:8931";
        assert!(cross_site(&headers(&[("host", h)])).is_some());
        assert!(cross_site(&headers(&[("host", h), (REQUEST_HEADER, "1")])).is_none());
        assert!(
            cross_site(&headers(&[
                ("host", h),
                (REQUEST_HEADER, "1"),
                ("sec-fetch-site", "same-origin"),
                ("origin", "http://127.0.0.1:8931"),
            ]))
            .is_none()
        );
        assert!(
            cross_site(&headers(&[
                ("host", h),
                (REQUEST_HEADER, "1"),
                ("sec-fetch-site", "cross-site"),
            ]))
            .is_some()
        );
        assert!(
            cross_site(&headers(&[
                ("host", h),
                (REQUEST_HEADER, "1"),
                ("origin", "http://evil.example"),
            ]))
            .is_some()
        );
    }

    #[test]
    fn tokens_compare_whole() {
        let t = Token::new(Secret::new("s3cret; x"));
        assert!(t.matches_bearer(&headers(&[("authorization", "Bearer s3cret; x")])));
        assert!(!t.matches_bearer(&headers(&[("authorization", "Bearer s3cret")])));
        // Regression (issue 9): `Authorization: bearer …` (lower case) was refused.
        assert!(t.matches_bearer(&headers(&[("authorization", "bearer s3cret; x")])));
        assert!(t.matches_bearer(&headers(&[("authorization", "BEARER  s3cret; x")])));
        assert!(!t.matches_bearer(&headers(&[("authorization", "Basic s3cret; x")])));
        let cookie = format!(
            "a=b; {COOKIE}={}",
            base16ct::lower::encode_string(b"s3cret; x")
        );
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, HeaderValue::from_str(&cookie).unwrap());
        assert!(t.matches_cookie(&h));
        assert!(!t.matches_cookie(&headers(&[("cookie", "dropcast_token=00")])));
        assert_eq!(
            query_token(Some("a=1&token=s3cret%3B%20x")).as_deref(),
            Some("s3cret; x")
        );
    }
}
