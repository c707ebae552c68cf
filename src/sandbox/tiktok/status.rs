//! `POST /v2/post/publish/status/fetch/` (page §6): where a publish of the caller's stands:
//! `PROCESSING_UPLOAD` until the bytes are in and processed, then `PUBLISH_COMPLETE`
//! (direct; the public id after moderation) or `SEND_TO_USER_INBOX` (inbox), or `FAILED`
//! with its `fail_reason`.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use serde::Deserialize;
use serde_json::json;

use super::{guard, reply};
use crate::sandbox::state::App;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Body {
    publish_id: String,
}

pub(crate) async fn fetch(State(app): State<App>, headers: HeaderMap, body: Bytes) -> Response {
    let caller = match guard::admit(&app, &headers, &guard::STATUS) {
        Ok(c) => c,
        Err(answer) => return *answer,
    };
    let b: Body = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => return reply::invalid(&app, &format!("expected {{\"publish_id\": \"…\"}}: {e}")),
    };
    let now = super::now_ms(&app);
    let data = {
        let m = app.tiktok.lock();
        m.publishes
            .get(&b.publish_id)
            .filter(|p| p.open_id == caller.open_id)
            .map(|p| {
                let s = p.status(now, &app.tiktok.cfg);
                let ids: Vec<u64> = s
                    .public_id
                    .iter()
                    .filter_map(|id| id.parse().ok())
                    .collect();
                json!({
                    "status": s.status, "fail_reason": s.fail_reason,
                    "publicaly_available_post_id": ids, "uploaded_bytes": p.received,
                })
            })
    };
    match data {
        Some(d) => reply::ok(&app, d),
        None => reply::invalid(&app, "publish_id: no such publish for this user"),
    }
}
