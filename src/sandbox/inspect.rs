//! Endpoints for tests and curious users, under `/__sandbox/`: what was posted, how often
//! each endpoint was called, which multipart parts arrived how often, expiring every credential, moving the clock forward, and
//! every secret the sandbox handed out or was shown (so tests can prove none leaks).

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, PoisonError};

use axum::extract::{Query, Request, State};
use axum::http::header::{AUTHORIZATION, COOKIE};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde_json::json;

use super::state::App;

/// `GET /__sandbox/posts`: every post, oldest first.
pub async fn posts(State(app): State<App>) -> Response {
    Json(app.lock().posts.clone()).into_response()
}

/// `GET /__sandbox/requests`: calls per endpoint.
pub async fn requests(State(app): State<App>) -> Response {
    Json(app.lock().counts.clone()).into_response()
}

/// `GET /__sandbox/uploads`: every multipart upload by `uploadID`, with its `vid`, `oid`,
/// `state` (`open`, `completing`, `completed`) and `parts`: each part number received
/// whole, with how many times (`{"1": 1, "2": 2}`). Faulted or refused sends do not count.
pub async fn uploads(State(app): State<App>) -> Response {
    let st = app.lock();
    let all: serde_json::Map<String, serde_json::Value> = st
        .multiparts
        .iter()
        .map(|(id, m)| {
            let parts: serde_json::Map<String, serde_json::Value> = m
                .received
                .iter()
                .map(|(n, times)| (n.to_string(), json!(times)))
                .collect();
            let entry =
                json!({"vid": m.vid, "oid": m.oid, "state": m.phase.name(), "parts": parts});
            (id.clone(), entry)
        })
        .collect();
    Json(all).into_response()
}

/// `POST /__sandbox/expire`: every `auth`, `tos_sign` and `token` issued so far expires now.
pub async fn expire(State(app): State<App>) -> Response {
    let (grants, uploads) = app.lock().expire_all();
    Json(json!({"expired": {"auths": grants, "uploads": uploads}})).into_response()
}

/// `POST /__sandbox/advance?seconds=N`: the sandbox clock jumps N seconds ahead (for
/// expiry, rate limits and the `timing` window). Answers the new sandbox time.
pub async fn advance(State(app): State<App>, Query(q): Query<HashMap<String, String>>) -> Response {
    let Some(seconds) = q.get("seconds").and_then(|s| s.parse::<u32>().ok()) else {
        let body = json!({"error": "seconds: must be a non-negative integer"});
        return (StatusCode::BAD_REQUEST, Json(body)).into_response();
    };
    let mut st = app.lock();
    st.clock_offset_ms = st.clock_offset_ms.saturating_add(i64::from(seconds) * 1000);
    Json(json!({"now": st.now_s()})).into_response()
}

/// Cookies whose values are credentials on their own (real Douyin cookies carry these;
/// the sandbox's carry `sessionid`, `csrf_token` and `passport_csrf_token`).
const SECRET_COOKIES: &[&str] = &[
    "sessionid",
    "sessionid_ss",
    "sid_tt",
    "sid_guard",
    "uid_tt",
    "odin_tt",
    "csrf_token",
    "passport_csrf_token",
];

/// Every secret a client has shown the sandbox: whole `Cookie` headers, the values of
/// [`SECRET_COOKIES`], `authorization` headers (`auth` or `tos_sign`) and `csrf_token`
/// headers. Shared through an `Extension`, filled by [`record_secrets`].
#[derive(Debug, Default)]
pub(crate) struct SeenSecrets(Mutex<BTreeSet<String>>);

impl SeenSecrets {
    fn note(&self, headers: &HeaderMap) {
        let mut found = Vec::new();
        for value in headers
            .get_all(COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
        {
            found.push(value.trim().to_owned());
            for pair in value.split(';') {
                if let Some((name, v)) = pair.split_once('=')
                    && SECRET_COOKIES.contains(&name.trim())
                {
                    found.push(v.trim().to_owned());
                }
            }
        }
        for name in [AUTHORIZATION.as_str(), "csrf_token"] {
            let values = headers.get_all(name).into_iter();
            found.extend(
                values
                    .filter_map(|v| v.to_str().ok())
                    .map(|v| v.trim().to_owned()),
            );
        }
        found.retain(|s| !s.is_empty());
        if !found.is_empty() {
            let mut seen = self.0.lock().unwrap_or_else(PoisonError::into_inner);
            seen.extend(found);
        }
    }

    fn all(&self) -> BTreeSet<String> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// Middleware (outermost, so faulted requests count too): remembers the secrets in every
/// request's headers. Never logs them.
pub(crate) async fn record_secrets(
    Extension(seen): Extension<Arc<SeenSecrets>>,
    req: Request,
    next: Next,
) -> Response {
    seen.note(req.headers());
    next.run(req).await
}

/// `GET /__sandbox/secrets`: every secret issued (`auth`, `tos_sign`, `token`) or seen
/// (cookies, cookie credentials, `csrf_token`, `authorization`), as a sorted JSON list of
/// strings. For tests only: it exists to prove these strings appear nowhere else.
pub async fn secrets(
    State(app): State<App>,
    Extension(seen): Extension<Arc<SeenSecrets>>,
) -> Response {
    let mut all = seen.all();
    {
        let st = app.lock();
        all.extend(st.grants.keys().cloned());
        for u in st.uploads.values() {
            all.insert(u.tos_sign.clone());
            all.insert(u.token.clone());
        }
    }
    all.extend(super::douyin_creator::secrets(&app));
    all.extend(super::tiktok::secrets(&app));
    all.retain(|s| !s.is_empty());
    Json(all).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn notes_cookies_their_credentials_and_auth_headers_only() {
        let mut h = HeaderMap::new();
        let cookie = "passport_csrf_token=p1; sessionid=sandbox-x; csrf_token=c1; ttwid=t";
        h.insert(COOKIE, HeaderValue::from_static(cookie));
        h.insert(AUTHORIZATION, HeaderValue::from_static("TOS-SIGN-abc"));
        h.insert("csrf_token", HeaderValue::from_static("c1"));
        h.insert("x-tt-access", HeaderValue::from_static("ak-not-secret"));
        let seen = SeenSecrets::default();
        seen.note(&h);
        seen.note(&HeaderMap::new());
        let all: Vec<String> = seen.all().into_iter().collect();
        assert_eq!(all, ["TOS-SIGN-abc", "c1", "p1", cookie, "sandbox-x"]);
    }
}
