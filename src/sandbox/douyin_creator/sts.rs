//! Step 1, `GET /web/api/media/upload/auth/v5/` (in the page): STS credentials for VOD,
//! valid `sts_ttl`, whose `SessionToken` (`STS2` + base64 JSON) names the uploader's
//! `UserId` inside `PolicyString` → `Statement[0].Condition`.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::state::{Sts, millis};
use super::{b64, guard};
use crate::sandbox::state::App;

/// RFC 3339 in China time (+08:00), as the platform writes it.
pub(crate) fn rfc3339(ms: i64) -> String {
    let t = OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
        .to_offset(time::macros::offset!(+8));
    t.format(&Rfc3339).unwrap_or_default()
}

/// The `SessionToken` for a user.
fn session_token(uid: &str, nonce: &str, expires: &str) -> String {
    let condition = json!({"UserId": uid, "SpaceName": "aweme", "Nonce": nonce}).to_string();
    let policy = json!({"Statement": [{
        "Effect": "Allow",
        "Action": ["vod:ApplyUploadInner", "vod:CommitUploadInner", "ImageX:ApplyImageUpload", "ImageX:CommitImageUpload"],
        "Resource": ["*"],
        "Condition": condition,
    }]})
    .to_string();
    let inner = json!({"PolicyString": policy, "ExpiredTime": expires}).to_string();
    format!("STS2{}", b64::encode(inner.as_bytes()))
}

pub(crate) async fn auth(
    State(app): State<App>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    app.creator.lock().counts.auth += 1;
    let session = match guard::in_page(&app, &method, &uri, &headers, &body) {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let now = super::now_ms(&app);
    let expires_ms = now.saturating_add(millis(app.creator.cfg.sts_ttl));
    let expires = rfc3339(expires_ms);
    let (ak, secret, token) = {
        let mut m = app.creator.lock();
        let ak = format!("AKTP{}", m.hex("sts-ak", 20).to_uppercase());
        let secret = b64::encode(m.hex("sts-secret", 30).as_bytes());
        let nonce = m.hex("sts-nonce", 8);
        let token = session_token(&session.uid, &nonce, &expires);
        m.sts.insert(
            ak.clone(),
            Sts {
                secret: secret.clone(),
                session_token: token.clone(),
                uid: session.uid.clone(),
                expires_ms,
            },
        );
        (ak, secret, token)
    };
    let inner = json!({
        "AccessKeyID": ak,
        "SecretAccessKey": secret,
        "SessionToken": token,
        "ExpiredTime": expires,
        "CurrentTime": rfc3339(now),
    });
    Json(json!({"status_code": 0, "auth": inner.to_string()})).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_rfc3339_in_china_time() {
        assert_eq!(rfc3339(0), "1970-01-01T08:00:00+08:00");
    }

    #[test]
    fn session_token_names_the_user() {
        let t = session_token("123", "n", "x");
        assert!(t.starts_with("STS2eyJ"), "{t}");
    }
}
