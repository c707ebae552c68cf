//! `PUT`/`POST /__sandbox/sink`, for benchmarks: takes any body (exact `Content-Length` or
//! chunked) and does the same receive work as an upload, through the same code
//! ([`super::receive`]): streamed to a file on disk while CRC-32 and SHA-256 are computed.
//! The file is then deleted and the answer is `{"size", "crc32", "sha256"}`.

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::receive::receive;
use super::state::App;

pub async fn sink(State(app): State<App>, body: Body) -> Response {
    let name = format!(".sink-{}", app.lock().fresh_hex("sink", 8));
    let path = app.cfg.objects_dir.join(name);
    let got = receive(body, &path).await;
    let _ = tokio::fs::remove_file(&path).await;
    match got {
        Ok(r) => Json(json!({"size": r.size, "crc32": r.crc32_hex(), "sha256": r.sha256}))
            .into_response(),
        Err(e) => {
            let body = json!({"error": format!("body not received whole: {e}")});
            (StatusCode::BAD_REQUEST, Json(body)).into_response()
        }
    }
}
