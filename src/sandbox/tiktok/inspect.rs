//! `/__sandbox/tiktok/*` for tests and curious users: publishes and posts (with the
//! SHA-256 and size of their bytes and every `post_info` field as received), tokens and
//! their states, the creators (and changing one: "cannot post now", private, toggles,
//! maximum duration), the app's audited switch, expiring tokens or upload URLs now, a
//! failure queued for the next upload, and request counts. (Approving the authorize page
//! without a browser lives in [`super::authorize`].)

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::options::CannotPost;
use super::state::{Memory, Publish, RefreshState, Settings};
use super::{creator, rules};
use crate::sandbox::state::App;

fn bad(message: String) -> Response {
    (StatusCode::BAD_REQUEST, Json(json!({"error": message}))).into_response()
}

/// A JSON body (an empty one reads as `{}`).
fn body<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, super::Early> {
    let bytes = if bytes.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        bytes
    };
    serde_json::from_slice(bytes).map_err(|e| Box::new(bad(e.to_string())))
}

fn secs(ms: i64) -> i64 {
    ms.div_euclid(1000)
}

fn publish_json(m: &Memory, cfg: &Settings, p: &Publish, now: i64) -> Value {
    let s = p.status(now, cfg);
    let username = m
        .creator(&p.open_id)
        .map(|c| c.info.username.clone())
        .unwrap_or_default();
    let arrived = p.arrived.as_ref();
    let post_id = s.public_id.clone();
    json!({
        "publish_id": p.publish_id, "upload_id": p.upload_id, "mode": p.mode, "open_id": p.open_id, "username": username,
        "client_key": p.client_key, "status": s.status, "fail_reason": s.fail_reason,
        "post_id": post_id, "post_url": post_id.map(|id| rules::post_url(&username, &id)),
        "video_size": p.layout.video_size(), "chunk_size": p.layout.chunk_size(),
        "total_chunk_count": p.layout.chunks(), "uploaded_bytes": p.received,
        "chunks": p.chunks.iter().map(|(i, n)| (i.to_string(), json!(n))).collect::<serde_json::Map<_, _>>(),
        "size": arrived.map(|_| p.received), "sha256": arrived.map(|a| a.sha256.clone()),
        "post_info": p.post_info, "source_info": p.source_info,
        "created_at": secs(p.created_ms), "upload_url_expires_at": secs(p.url_expires_ms),
    })
}

fn listing(app: &App, only_posts: bool) -> Response {
    let now = super::now_ms(app);
    let m = app.tiktok.lock();
    let mut all: Vec<&Publish> = m.publishes.values().collect();
    all.sort_by_key(|p| p.created_ms);
    let list: Vec<Value> = all
        .into_iter()
        .filter(|p| {
            !only_posts
                || matches!(
                    p.status(now, &app.tiktok.cfg).status,
                    "PUBLISH_COMPLETE" | "SEND_TO_USER_INBOX"
                )
        })
        .map(|p| publish_json(&m, &app.tiktok.cfg, p, now))
        .collect();
    Json(list).into_response()
}

/// `GET /__sandbox/tiktok/publishes`: every init, oldest first, whatever became of it.
pub(crate) async fn publishes(State(app): State<App>) -> Response {
    listing(&app, false)
}

/// `GET /__sandbox/tiktok/posts`: the publishes that are posts (`PUBLISH_COMPLETE`) or
/// drafts in the inbox (`SEND_TO_USER_INBOX`), oldest first.
pub(crate) async fn posts(State(app): State<App>) -> Response {
    listing(&app, true)
}

/// `GET /__sandbox/tiktok/tokens`: every code, access and refresh token with its state.
pub(crate) async fn tokens(State(app): State<App>) -> Response {
    let now = super::now_ms(&app);
    let m = app.tiktok.lock();
    let access: Vec<Value> = m
        .access
        .iter()
        .map(|(t, a)| {
            let state = if a.revoked {
                "revoked"
            } else if now >= a.expires_ms {
                "expired"
            } else {
                "live"
            };
            json!({"token": t, "grant": a.grant, "expires_at": secs(a.expires_ms), "state": state})
        })
        .collect();
    let refresh: Vec<Value> = m
        .refresh
        .iter()
        .map(|(t, r)| {
            let state = match r.state {
                RefreshState::Live if now >= r.expires_ms => "expired",
                RefreshState::Live => "live",
                RefreshState::Rotated => "rotated",
                RefreshState::Revoked => "revoked",
            };
            json!({"token": t, "grant": r.grant, "expires_at": secs(r.expires_ms), "state": state})
        })
        .collect();
    let codes: Vec<Value> = m.codes.values().map(|c| {
        let expires = c.created_ms.saturating_add(super::millis(rules::CODE_TTL));
        json!({"open_id": c.open_id, "client_key": c.client_key, "used": c.used, "expires_at": secs(expires)})
    }).collect();
    Json(json!({"now": secs(now), "access": access, "refresh": refresh, "codes": codes}))
        .into_response()
}

fn creators_json(m: &Memory) -> Value {
    let list: Vec<Value> = m.creators.iter().map(|c| {
        json!({"open_id": c.open_id, "creator": c.info, "privacy_level_options": creator::options(&c.info)})
    }).collect();
    json!(list)
}

/// `GET /__sandbox/tiktok/creators`: every account with its `open_id`.
pub(crate) async fn creators(State(app): State<App>) -> Response {
    Json(creators_json(&app.tiktok.lock())).into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreatorPatch {
    username: String,
    nickname: Option<String>,
    private: Option<bool>,
    comment_disabled: Option<bool>,
    duet_disabled: Option<bool>,
    stitch_disabled: Option<bool>,
    max_video_post_duration_sec: Option<u32>,
    /// A code, or `null` to let the creator post again (absent: unchanged).
    #[serde(default, deserialize_with = "present")]
    cannot_post: Option<Value>,
}

/// A field that is there, even as `null`.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

/// `POST /__sandbox/tiktok/creator {"username", …fields to change}`: change an account
/// (`cannot_post`: a code or `null`); answers every account.
pub(crate) async fn change_creator(State(app): State<App>, bytes: Bytes) -> Response {
    let p: CreatorPatch = match body(&bytes) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    let cannot = match p
        .cannot_post
        .map(serde_json::from_value::<Option<CannotPost>>)
    {
        Some(Err(e)) => return bad(format!("cannot_post: {e}")),
        Some(Ok(c)) => Some(c),
        None => None,
    };
    let mut m = app.tiktok.lock();
    let Some(c) = m.creator_mut(&p.username) else {
        return bad(format!("no such account: {}", p.username));
    };
    let i = &mut c.info;
    i.nickname = p.nickname.unwrap_or(i.nickname.clone());
    i.private = p.private.unwrap_or(i.private);
    i.comment_disabled = p.comment_disabled.unwrap_or(i.comment_disabled);
    i.duet_disabled = p.duet_disabled.unwrap_or(i.duet_disabled);
    i.stitch_disabled = p.stitch_disabled.unwrap_or(i.stitch_disabled);
    i.max_video_post_duration_sec = p
        .max_video_post_duration_sec
        .unwrap_or(i.max_video_post_duration_sec);
    i.cannot_post = cannot.unwrap_or(i.cannot_post);
    Json(creators_json(&m)).into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AppPatch {
    audited: Option<bool>,
}

/// `GET`/`POST /__sandbox/tiktok/app {"audited": bool}`: the app's audited switch.
pub(crate) async fn app_switch(State(app): State<App>, bytes: Bytes) -> Response {
    let p: AppPatch = match body(&bytes) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    let mut m = app.tiktok.lock();
    m.audited = p.audited.unwrap_or(m.audited);
    Json(json!({"audited": m.audited})).into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Expire {
    #[serde(default = "yes")]
    access: bool,
    #[serde(default)]
    refresh: bool,
    #[serde(default)]
    upload_urls: bool,
    /// Only this token (access or refresh), whatever the flags say.
    token: Option<String>,
}

fn yes() -> bool {
    true
}

/// `POST /__sandbox/tiktok/expire {"access"?: true, "refresh"?: false, "upload_urls"?: false,
/// "token"?: "…"}`: those expire now; answers how many of each.
pub(crate) async fn expire(State(app): State<App>, bytes: Bytes) -> Response {
    let e: Expire = match body(&bytes) {
        Ok(e) => e,
        Err(r) => return *r,
    };
    let now = super::now_ms(&app);
    let mut m = app.tiktok.lock();
    let only = e.token.as_deref();
    let pick = |t: &String, flag: bool| only.map_or(flag, |o| o == t);
    let mut counts = (0, 0, 0);
    for (_, a) in m.access.iter_mut().filter(|(t, _)| pick(t, e.access)) {
        a.expires_ms = a.expires_ms.min(now);
        counts.0 += 1;
    }
    for (_, r) in m.refresh.iter_mut().filter(|(t, _)| pick(t, e.refresh)) {
        r.expires_ms = r.expires_ms.min(now);
        counts.1 += 1;
    }
    for p in m
        .publishes
        .values_mut()
        .filter(|_| only.is_none() && e.upload_urls)
    {
        p.url_expires_ms = p.url_expires_ms.min(now);
        counts.2 += 1;
    }
    Json(json!({"expired": {"access": counts.0, "refresh": counts.1, "upload_urls": counts.2}}))
        .into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FailNext {
    reason: String,
}

/// `POST /__sandbox/tiktok/fail_next {"reason": "spam_risk_text"}`: the next publish whose
/// bytes all arrive ends `FAILED` with this `fail_reason` (queued in order).
pub(crate) async fn fail_next(State(app): State<App>, bytes: Bytes) -> Response {
    let f: FailNext = match body(&bytes) {
        Ok(f) => f,
        Err(r) => return *r,
    };
    let mut m = app.tiktok.lock();
    m.fail_next.push_back(f.reason);
    Json(json!({"queued": m.fail_next.len()})).into_response()
}

/// `GET /__sandbox/tiktok/requests`: calls per endpoint.
pub(crate) async fn requests(State(app): State<App>) -> Response {
    Json(app.tiktok.lock().counts.clone()).into_response()
}
