//! The two guards of requests to the creator site: the `sessionid` cookie (a logged-in
//! session, else `status_code` 8) and the page signature (`x-dropcast-page` +
//! `x-dropcast-sign`, HMAC-SHA256 of `method \n path_and_query \n body` under the secret
//! of a live load of the upload page by the same session, else an empty 403).

use axum::http::header::COOKIE;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, KeyInit, Mac};
use serde_json::json;
use sha2::Sha256;

use super::Early;
use super::state::{Session, millis};
use crate::sandbox::state::App;

/// Header carrying the page load's id.
pub(crate) const PAGE_HEADER: &str = "x-dropcast-page";
/// Header carrying the signature.
pub(crate) const SIGN_HEADER: &str = "x-dropcast-sign";

/// A creator-site JSON answer `{"status_code": code, "status_msg": msg}`.
pub(crate) fn status(code: i64, msg: impl Into<String>) -> Response {
    axum::Json(json!({"status_code": code, "status_msg": msg.into()})).into_response()
}

/// The `sessionid` cookie value of a request, if any.
pub(crate) fn session_id(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, _)| k.trim() == "sessionid")
        .map(|(_, v)| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

/// The live session of a request, or the `status_code` 8 answer.
pub(crate) fn logged_in(app: &App, headers: &HeaderMap) -> Result<(String, Session), Early> {
    let refused = || {
        Box::new(status(
            8,
            "not logged in: no session cookie, or the session ended",
        ))
    };
    let sid = session_id(headers).ok_or_else(refused)?;
    let session = session_of(app, &sid);
    session.map(|s| (sid, s)).ok_or_else(refused)
}

/// The key that seals session ids (ours): a session made by one run of the simulator
/// still works in the next (the built-in sandbox starts afresh with every command, and
/// `dropcast login` runs apart from the agent), unless it was logged out here.
const SESSION_SEAL_KEY: &[u8] = b"dropcast sandbox douyin session v1";

/// A session id that carries its user: `<uid>.<nickname as hex>.<HMAC of both>`.
pub(crate) fn sealed_session_id(uid: &str, nickname: &str) -> String {
    let nick = base16ct::lower::encode_string(nickname.as_bytes());
    format!("{uid}.{nick}.{}", seal(uid, &nick))
}

fn seal(uid: &str, nick_hex: &str) -> String {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(SESSION_SEAL_KEY).expect("any key");
    mac.update(format!("{uid}\0{nick_hex}").as_bytes());
    base16ct::lower::encode_string(&mac.finalize().into_bytes())
}

/// The session `sid` names: one this run knows, or a sealed one from an earlier run
/// (revived here unless its user was logged out here).
pub(crate) fn session_of(app: &App, sid: &str) -> Option<Session> {
    let mut m = app.creator.lock();
    if let Some(s) = m.sessions.get(sid) {
        return Some(s.clone());
    }
    let mut parts = sid.splitn(3, '.');
    let (uid, nick_hex, mac) = (parts.next()?, parts.next()?, parts.next()?);
    if m.revoked_all || m.revoked_uids.contains(uid) || seal(uid, nick_hex) != mac {
        return None;
    }
    let nickname = base16ct::lower::decode_vec(nick_hex).ok()?;
    let session = Session {
        uid: uid.to_owned(),
        nickname: String::from_utf8(nickname).ok()?,
    };
    m.sessions.insert(sid.to_owned(), session.clone());
    Some(session)
}

/// `HMAC-SHA256(secret, method \n path_and_query \n body)` as lower-case hex.
pub(crate) fn page_signature(
    secret: &str,
    method: &str,
    path_and_query: &str,
    body: &[u8],
) -> String {
    let mut mac =
        <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
    mac.update(method.as_bytes());
    mac.update(b"\n");
    mac.update(path_and_query.as_bytes());
    mac.update(b"\n");
    mac.update(body);
    base16ct::lower::encode_string(&mac.finalize().into_bytes())
}

/// Check the page signature of a request by session `sid`; `Err` is the empty 403.
pub(crate) fn signed(
    app: &App,
    sid: &str,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(), Early> {
    let forbidden = || Box::new(StatusCode::FORBIDDEN.into_response());
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let (Some(page_id), Some(sign)) = (header(PAGE_HEADER), header(SIGN_HEADER)) else {
        return Err(forbidden());
    };
    let now = super::now_ms(app);
    let ttl = millis(app.creator.cfg.page_ttl);
    let secret = {
        let m = app.creator.lock();
        match m.pages.get(page_id) {
            Some(p) if p.session == sid && now < p.created_ms.saturating_add(ttl) => {
                p.secret.clone()
            }
            _ => return Err(forbidden()),
        }
    };
    let path_and_query = uri.path_and_query().map_or(uri.path(), |pq| pq.as_str());
    let expected = page_signature(&secret, method.as_str(), path_and_query, body);
    if expected == sign {
        Ok(())
    } else {
        Err(forbidden())
    }
}

/// Both guards: the session, then the page signature.
pub(crate) fn in_page(
    app: &App,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Session, Early> {
    let (sid, session) = logged_in(app, headers)?;
    signed(app, &sid, method, uri, headers, body)?;
    Ok(session)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_covers_method_path_and_body() {
        let a = page_signature("s", "POST", "/x?a=1", b"{}");
        assert_eq!(a.len(), 64);
        assert_ne!(a, page_signature("s", "GET", "/x?a=1", b"{}"));
        assert_ne!(a, page_signature("s", "POST", "/x?a=2", b"{}"));
        assert_ne!(a, page_signature("s", "POST", "/x?a=1", b"{ }"));
        assert_ne!(a, page_signature("t", "POST", "/x?a=1", b"{}"));
        // RFC 4231 test case 2, through the same framing: key "Jefe".
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(b"Jefe").expect("key");
        mac.update(b"what do ya want for nothing?");
        assert_eq!(
            base16ct::lower::encode_string(&mac.finalize().into_bytes()),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn session_cookie_is_found_among_others() {
        let mut h = HeaderMap::new();
        h.insert(COOKIE, "a=1; sessionid=abc ; b=2".parse().expect("header"));
        assert_eq!(session_id(&h).as_deref(), Some("abc"));
        h.insert(COOKIE, "sessionid=".parse().expect("header"));
        assert_eq!(session_id(&h), None);
    }
}
