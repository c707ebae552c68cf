//! `/__sandbox/douyin/*` for tests and curious users: posts, uploads (parts received and
//! how often), request counts, risk checks on demand, and expiring every STS credential
//! and TOS `Auth` now. (Login inspection lives in [`super::login`].)

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::sandbox::state::App;

/// `GET /__sandbox/douyin/posts`: every post, oldest first, with the create_v2 `item` and
/// its cover image (`cover`: uri, SHA-256, size, width, height), if it had one.
pub(crate) async fn posts(State(app): State<App>) -> Response {
    Json(app.creator.lock().posts.clone()).into_response()
}

/// `GET /__sandbox/douyin/requests`: calls per endpoint.
pub(crate) async fn requests(State(app): State<App>) -> Response {
    Json(app.creator.lock().counts.clone()).into_response()
}

/// `GET /__sandbox/douyin/uploads`: every slot by Vid (StoreUri, size, whether its object
/// is complete, committed, published) and every part upload by `uploadid` (its Vid,
/// state, and each part number received whole with how many times), and every ImageX
/// image by `StoreUri` (its uid, whether committed, and what was read from it).
pub(crate) async fn uploads(State(app): State<App>) -> Response {
    let m = app.creator.lock();
    let slots: Map<String, Value> = m
        .uploads
        .values()
        .map(|u| {
            let v = json!({
                "store_uri": u.store_uri, "uid": u.uid, "file_size": u.file_size,
                "complete": u.object.is_some(),
                "sha256": u.object.as_ref().map(|o| o.sha256.clone()),
                "committed": u.commit.is_some(), "item_id": u.item_id,
            });
            (u.vid.clone(), v)
        })
        .collect();
    let parts: Map<String, Value> = m
        .part_uploads
        .iter()
        .map(|(id, p)| {
            let state = if p.finished.is_some() {
                "finished"
            } else if p.finishing {
                "finishing"
            } else {
                "open"
            };
            let received: Map<String, Value> = p
                .received
                .iter()
                .map(|(n, t)| (n.to_string(), json!(t)))
                .collect();
            (
                id.clone(),
                json!({"vid": p.vid, "state": state, "parts": received}),
            )
        })
        .collect();
    let images: Map<String, Value> = m
        .images
        .values()
        .map(|i| {
            let v = json!({"uid": i.uid, "committed": i.committed, "object": i.object});
            (i.store_uri.clone(), v)
        })
        .collect();
    Json(json!({"uploads": slots, "part_uploads": parts, "images": images})).into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Risk {
    #[serde(default = "one")]
    times: u32,
}

fn one() -> u32 {
    1
}

/// `POST /__sandbox/douyin/risk {"times": N}`: the next N create_v2 calls meet a risk
/// check. Answers how many are pending.
pub(crate) async fn risk(State(app): State<App>, body: Bytes) -> Response {
    let parsed = if body.iter().all(u8::is_ascii_whitespace) {
        Ok(Risk { times: 1 })
    } else {
        serde_json::from_slice::<Risk>(&body)
    };
    match parsed {
        Ok(r) => {
            let mut m = app.creator.lock();
            m.risk = m.risk.saturating_add(r.times);
            Json(json!({"pending": m.risk})).into_response()
        }
        Err(e) => (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": format!("body: {e}")})),
        )
            .into_response(),
    }
}

/// `POST /__sandbox/douyin/expire`: every STS credential and TOS `Auth` expires now.
pub(crate) async fn expire(State(app): State<App>) -> Response {
    let now = super::now_ms(&app);
    let mut m = app.creator.lock();
    for s in m.sts.values_mut() {
        s.expires_ms = s.expires_ms.min(now);
    }
    for u in m.uploads.values_mut() {
        u.auth_expires_ms = u.auth_expires_ms.min(now);
    }
    for i in m.images.values_mut() {
        i.auth_expires_ms = i.auth_expires_ms.min(now);
    }
    Json(json!({"expired": {"sts": m.sts.len(), "uploads": m.uploads.len()}})).into_response()
}
