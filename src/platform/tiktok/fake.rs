//! A small stand-in for TikTok's API in unit tests (not the simulator, which judges the
//! client in e2e tests): token refresh with rotation, creator_info, init, the chunk PUTs
//! with 206/201/416 and `Content-Range`, and status; faults are set per test.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{post, put};
use serde_json::json;

/// What the fake saw and holds.
#[derive(Default)]
pub(crate) struct Fake {
    pub counts: Mutex<HashMap<&'static str, u32>>,
    /// The refresh token that works now (rotation: older ones are refused).
    pub refresh: Mutex<String>,
    /// The access tokens that work.
    pub access: Mutex<Vec<String>>,
    /// The token file to inspect when a new access token is first used.
    pub token_file: Mutex<Option<PathBuf>>,
    /// Whether the file held the current refresh token when its access token was first used.
    pub saved_before_use: Mutex<Vec<bool>>,
    /// The bytes received, in order.
    pub bytes: Mutex<Vec<u8>>,
    pub total: Mutex<u64>,
    /// Chunk PUTs (1-based) whose answer is lost after the bytes were taken.
    pub lose_answer_of_put: Mutex<Vec<u32>>,
    /// Chunk PUTs (1-based) answered 503 without taking the bytes.
    pub fail_put: Mutex<Vec<u32>>,
    pub status: Mutex<&'static str>,
    /// The `fail_reason` of a `FAILED` status.
    pub fail_reason: Mutex<&'static str>,
    /// Status calls answered 503 (none taken) while set.
    pub status_down: Mutex<bool>,
    pub post_ids: Mutex<Vec<u64>>,
    pub last_init: Mutex<Option<serde_json::Value>>,
    /// `http://127.0.0.1:PORT/`.
    pub base: Mutex<String>,
}

impl Fake {
    pub(crate) fn count(&self, what: &str) -> u32 {
        self.counts.lock().unwrap().get(what).copied().unwrap_or(0)
    }

    fn bump(&self, what: &'static str) -> u32 {
        let mut counts = self.counts.lock().unwrap();
        let n = counts.entry(what).or_default();
        *n += 1;
        *n
    }

    /// Refuses requests without a working access token; notes the token file's state the
    /// first time a token is used.
    fn authorized(&self, headers: &HeaderMap) -> bool {
        let token = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        let ok = self.access.lock().unwrap().iter().any(|t| t == token);
        if ok && token != "A1" && self.bump(leak(format!("used:{token}"))) == 1 {
            let file = self.token_file.lock().unwrap().clone();
            let refresh = self.refresh.lock().unwrap().clone();
            let on_disk = file
                .and_then(|f| std::fs::read_to_string(f).ok())
                .is_some_and(|t| t.contains(&format!("\"{refresh}\"")));
            self.saved_before_use.lock().unwrap().push(on_disk);
        }
        ok
    }
}

fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

type Shared = State<Arc<Fake>>;

fn envelope(status: StatusCode, code: &str, data: serde_json::Value) -> Response {
    (
        status,
        axum::Json(json!({"data": data, "error": {"code": code, "message": "", "log_id": "l"}})),
    )
        .into_response()
}

fn refused() -> Response {
    envelope(StatusCode::UNAUTHORIZED, "access_token_invalid", json!({}))
}

async fn token(State(f): Shared, body: String) -> Response {
    f.bump("token");
    let form: HashMap<String, String> = serde_urlencoded::from_str(&body).unwrap_or_default();
    let current = f.refresh.lock().unwrap().clone();
    if form.get("refresh_token") != Some(&current) {
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(
                json!({"error": "invalid_grant", "error_description": "old", "log_id": "l"}),
            ),
        )
            .into_response();
    }
    let n = f.count("token");
    let (access, refresh) = (format!("A{}", n + 1), format!("R{}", n + 1));
    *f.refresh.lock().unwrap() = refresh.clone();
    f.access.lock().unwrap().push(access.clone());
    axum::Json(
        json!({"open_id": "o", "scope": "video.publish", "access_token": access, "expires_in": 7200,
        "refresh_token": refresh, "refresh_expires_in": 15552000, "token_type": "Bearer"}),
    )
    .into_response()
}

async fn creator_info(State(f): Shared, headers: HeaderMap) -> Response {
    f.bump("creator_info");
    if !f.authorized(&headers) {
        return refused();
    }
    envelope(
        StatusCode::OK,
        "ok",
        json!({"creator_username": "cat", "creator_nickname": "Cat",
        "privacy_level_options": ["PUBLIC_TO_EVERYONE", "SELF_ONLY"], "comment_disabled": false,
        "duet_disabled": false, "stitch_disabled": true, "max_video_post_duration_sec": 600}),
    )
}

async fn init(State(f): Shared, headers: HeaderMap, body: String) -> Response {
    f.bump("init");
    if !f.authorized(&headers) {
        return refused();
    }
    let body: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
    *f.total.lock().unwrap() = body["source_info"]["video_size"].as_u64().unwrap_or(0);
    f.bytes.lock().unwrap().clear();
    *f.last_init.lock().unwrap() = Some(body);
    let n = f.count("init");
    let base = f.base.lock().unwrap().clone();
    envelope(
        StatusCode::OK,
        "ok",
        json!({"publish_id": format!("v_pub_file~{n}"),
        "upload_url": format!("{base}UPLOAD/upload/?upload_id={n}&upload_token=SECRET")}),
    )
}

async fn upload(State(f): Shared, headers: HeaderMap, body: Bytes) -> Response {
    let n = f.bump("put");
    let total = *f.total.lock().unwrap();
    let have = f.bytes.lock().unwrap().len() as u64;
    let range = |have: u64| match have {
        0 => format!("bytes */{total}"),
        h => format!("bytes 0-{}/{total}", h - 1),
    };
    if f.fail_put.lock().unwrap().contains(&n) {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            [("content-range", range(have))],
        )
            .into_response();
    }
    let first: Option<u64> = headers
        .get("content-range")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("bytes "))
        .and_then(|v| v.split('-').next())
        .and_then(|v| v.parse().ok());
    if first != Some(have) {
        return (
            StatusCode::RANGE_NOT_SATISFIABLE,
            [("content-range", range(have))],
        )
            .into_response();
    }
    f.bytes.lock().unwrap().extend_from_slice(&body);
    let have = have + body.len() as u64;
    if f.lose_answer_of_put.lock().unwrap().contains(&n) {
        return StatusCode::BAD_GATEWAY.into_response();
    }
    let code = if have == total {
        StatusCode::CREATED
    } else {
        StatusCode::PARTIAL_CONTENT
    };
    (code, [("content-range", range(have))]).into_response()
}

async fn status(State(f): Shared, headers: HeaderMap) -> Response {
    f.bump("status");
    if !f.authorized(&headers) {
        return refused();
    }
    if *f.status_down.lock().unwrap() {
        return envelope(StatusCode::SERVICE_UNAVAILABLE, "internal_error", json!({}));
    }
    let ids = f.post_ids.lock().unwrap().clone();
    envelope(
        StatusCode::OK,
        "ok",
        json!({"status": *f.status.lock().unwrap(), "fail_reason": *f.fail_reason.lock().unwrap(),
        "publicaly_available_post_id": ids, "uploaded_bytes": f.bytes.lock().unwrap().len()}),
    )
}

/// Starts the fake on 127.0.0.1:0; returns it and its base address.
pub(crate) async fn start() -> (Arc<Fake>, reqwest::Url) {
    let fake = Arc::new(Fake::default());
    *fake.refresh.lock().unwrap() = "R1".into();
    fake.access.lock().unwrap().push("A1".into());
    *fake.status.lock().unwrap() = "PUBLISH_COMPLETE";
    let app = Router::new()
        .route("/v2/oauth/token/", post(token))
        .route("/v2/post/publish/creator_info/query/", post(creator_info))
        .route("/v2/post/publish/video/init/", post(init))
        .route("/v2/post/publish/inbox/video/init/", post(init))
        .route("/v2/post/publish/status/fetch/", post(status))
        .route("/UPLOAD/upload/", put(upload))
        .layer(axum::extract::DefaultBodyLimit::disable())
        .with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base: reqwest::Url = format!("http://{}/", listener.local_addr().unwrap())
        .parse()
        .unwrap();
    *fake.base.lock().unwrap() = base.to_string();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (fake, base)
}
