//! Endpoints for tests and curious users, under `/__sandbox/`: what was posted, how often
//! each endpoint was called, expiring every credential, and moving the clock forward.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
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
