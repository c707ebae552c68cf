//! The answers' shapes: the Content Posting envelope (page §2: `data` + `error` with
//! `code`, `message` and a log id, alternately spelled `log_id` and `logid` so clients meet
//! both) and the OAuth error envelope (page §1.7).

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::rules;
use crate::sandbox::state::App;

/// A Content Posting answer: HTTP `status`, `data`, and `error.code`/`message`.
pub(crate) fn api(app: &App, status: u16, data: Value, code: &str, message: &str) -> Response {
    let (log_id, odd) = {
        let mut m = app.tiktok.lock();
        (m.log_id(), m.answers % 2 == 1)
    };
    let key = if odd { "log_id" } else { "logid" };
    let body = json!({"data": data, "error": {"code": code, "message": message, key: log_id}});
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, Json(body)).into_response()
}

/// Success: HTTP 200, `error.code` `ok`.
pub(crate) fn ok(app: &App, data: Value) -> Response {
    api(app, 200, data, rules::OK, "")
}

/// A refusal with `data: {}`.
pub(crate) fn refuse(app: &App, status: u16, code: &str, message: &str) -> Response {
    api(app, status, json!({}), code, message)
}

/// `400 invalid_param`.
pub(crate) fn invalid(app: &App, message: &str) -> Response {
    refuse(app, 400, "invalid_param", message)
}

/// An OAuth error (page §1.7): `{"error", "error_description", "log_id"}`.
pub(crate) fn oauth_error(app: &App, error: &str, description: &str) -> Response {
    let status = if error == "invalid_client" {
        rules::OAUTH_CLIENT_STATUS
    } else {
        rules::OAUTH_ERROR_STATUS
    };
    let log_id = app.tiktok.lock().log_id();
    let body = json!({"error": error, "error_description": description, "log_id": log_id});
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
    (status, Json(body)).into_response()
}
