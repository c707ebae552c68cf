//! The creator-web endpoints: upload credentials (step 1), publishing a post (step 5),
//! listing one's posts (6a) and challenge suggestions (6b).

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::header::{CONTENT_TYPE, RETRY_AFTER};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde_json::json;

use super::account::{self, Account};
use super::challenges;
use super::faults::ListLag;
use super::form;
use super::state::{App, Grant, PostRecord, millis};

/// Largest `count` of 6a.
const MAX_PAGE: usize = 50;

/// A refused creator call: `status_code` and `status_msg`, HTTP 200.
struct Refusal {
    code: i64,
    msg: String,
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        tracing::debug!(status_code = self.code, status_msg = %self.msg, "creator call refused");
        Json(json!({"status_code": self.code, "status_msg": self.msg})).into_response()
    }
}

fn refusal(code: i64, msg: impl Into<String>) -> Refusal {
    Refusal {
        code,
        msg: msg.into(),
    }
}

fn status(code: i64, msg: impl Into<String>) -> Response {
    refusal(code, msg).into_response()
}

fn logged_in(headers: &HeaderMap) -> Result<Account, Refusal> {
    account::from_headers(headers).ok_or_else(|| {
        refusal(
            8,
            "not logged in: cookie missing, expired or not a sandbox account",
        )
    })
}

/// Step 1: `GET /web/api/media/upload/auth/`.
pub async fn credentials(State(app): State<App>, headers: HeaderMap) -> Response {
    app.lock().counts.credentials += 1;
    let account = match logged_in(&headers) {
        Ok(a) => a,
        Err(r) => return r.into_response(),
    };
    let mut st = app.lock();
    let ak = st.fresh_hex("ak", 16);
    let expires_ms = st.now_ms().saturating_add(millis(app.cfg.auth_ttl));
    let sig = st.fresh_hex("sig", 20);
    let auth = format!("HMAC-SHA1:1.0:{}:{ak}:{sig}", expires_ms.div_euclid(1000));
    st.grants.insert(
        auth.clone(),
        Grant {
            ak: ak.clone(),
            account: account.name,
            expires_ms,
        },
    );
    Json(json!({"status_code": 0, "ak": ak, "auth": auth})).into_response()
}

fn is_form(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            v.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
}

/// Step 5: `POST /web/api/media/aweme/create/`.
pub async fn create(State(app): State<App>, headers: HeaderMap, body: Bytes) -> Response {
    app.lock().counts.create += 1;
    let account = match logged_in(&headers) {
        Ok(a) => a,
        Err(r) => return r.into_response(),
    };
    let csrf = headers.get("csrf_token").and_then(|v| v.to_str().ok());
    if csrf != Some(account.csrf_token.as_str()) {
        return status(
            2,
            "csrf_token: header missing or not equal to the cookie's csrf_token",
        );
    }
    if !is_form(&headers) {
        return status(2, "Content-Type: must be application/x-www-form-urlencoded");
    }
    let pairs: Vec<(String, String)> = match serde_urlencoded::from_bytes(&body) {
        Ok(p) => p,
        Err(e) => return status(2, format!("body: not form-urlencoded ({e})")),
    };
    let now_s = app.lock().now_s();
    let post = match form::validate(pairs, now_s) {
        Ok(p) => p,
        Err(e) => return status(2, e.to_string()),
    };

    let mut st = app.lock();
    let now_ms = st.now_ms();
    let Some(upload) = st.uploads.get(&post.video_id) else {
        return status(2, "video_id: no such video");
    };
    if upload.account != account.name {
        return status(2, "video_id: not a video of this account");
    }
    let (Some(commit), Some(object)) = (&upload.commit, &upload.object) else {
        return status(2, "video_id: upload not committed (step 4)");
    };
    if upload.aweme_id.is_some() {
        return status(2, "video already published");
    }
    if post.poster != commit.poster_oid && post.poster != upload.oid {
        return status(
            2,
            "poster: must be the committed poster oid or the video oid",
        );
    }
    let (vid, oid, size, sha256) = (
        upload.vid.clone(),
        upload.oid.clone(),
        object.size,
        object.sha256.clone(),
    );

    let interval = millis(app.cfg.min_post_interval);
    if interval > 0
        && let Some(&last) = st.last_post_ms.get(&account.name)
        && now_ms < last.saturating_add(interval)
    {
        let wait_ms = last.saturating_add(interval) - now_ms;
        let retry_after = (wait_ms + 999) / 1000;
        st.rate_limited += 1;
        let body = json!({"status_code": 7, "status_msg": format!("posting too often; retry in {retry_after} s")});
        tracing::debug!(account = %account.name, retry_after, "create rate limited");
        return if st.rate_limited % 2 == 1 {
            Json(body).into_response()
        } else {
            let mut r = (StatusCode::TOO_MANY_REQUESTS, Json(body)).into_response();
            r.headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from(retry_after.max(1)));
            r
        };
    }

    let aweme_id = st.fresh_aweme_id();
    let seq = st.posts.len() as u64 + 1;
    if let Some(u) = st.uploads.get_mut(&post.video_id) {
        u.aweme_id = Some(aweme_id.clone());
    }
    st.last_post_ms.insert(account.name.clone(), now_ms);
    st.posts.push(PostRecord {
        seq,
        aweme_id: aweme_id.clone(),
        account: account.name.clone(),
        uid: account::uid_for(&account.name),
        vid,
        oid,
        size,
        sha256,
        create_time: now_ms.div_euclid(1000),
        created_ms: now_ms,
        form: post.fields,
    });
    tracing::debug!(account = %account.name, %aweme_id, "post created");
    Json(json!({"status_code": 0, "status_msg": "", "aweme": {"aweme_id": aweme_id}}))
        .into_response()
}

/// A query parameter that must be a non-negative integer, if present.
fn int_param(q: &HashMap<String, String>, name: &str) -> Result<Option<u64>, Refusal> {
    match q.get(name) {
        None => Ok(None),
        Some(v) if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) => v
            .parse()
            .map(Some)
            .map_err(|_| refusal(2, format!("{name}: too large"))),
        Some(v) => Err(refusal(
            2,
            format!("{name}: not a non-negative integer: {v:?}"),
        )),
    }
}

/// 6a: `GET /web/api/media/aweme/post/?count=N&max_cursor=C`, newest first. The cursor
/// is opaque: pass back the `max_cursor` of the previous page (0 = newest).
pub async fn post_list(
    State(app): State<App>,
    lag: Option<Extension<ListLag>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    app.lock().counts.post_list += 1;
    let account = match logged_in(&headers) {
        Ok(a) => a,
        Err(r) => return r.into_response(),
    };
    let count = match int_param(&q, "count") {
        Ok(Some(c)) if (1..=MAX_PAGE as u64).contains(&c) => c as usize,
        Ok(Some(c)) => return status(2, format!("count: must be 1..={MAX_PAGE}, got {c}")),
        Ok(None) => return status(2, "count: missing"),
        Err(r) => return r.into_response(),
    };
    let cursor = match int_param(&q, "max_cursor") {
        Ok(c) => c.unwrap_or(0),
        Err(r) => return r.into_response(),
    };
    let st = app.lock();
    // A lagging list (the `lag` fault) does not show the newest posts yet.
    let shown_before = st
        .now_ms()
        .saturating_sub(lag.map_or(0, |Extension(ListLag(d))| millis(d)));
    let mut older = st.posts.iter().rev().filter(|p| {
        p.account == account.name && (cursor == 0 || p.seq < cursor) && p.created_ms <= shown_before
    });
    let page: Vec<&PostRecord> = older.by_ref().take(count).collect();
    let has_more = older.next().is_some();
    let next_cursor = page.last().map_or(0, |p| p.seq);
    let list: Vec<_> = page
        .iter()
        .map(|p| {
            json!({
                "aweme_id": p.aweme_id,
                "desc": p.form.get("text").cloned().unwrap_or_default(),
                "create_time": p.create_time,
                "author_user_id": p.uid,
                "video": {"vid": p.vid},
            })
        })
        .collect();
    Json(json!({
        "status_code": 0,
        "aweme_list": list,
        "has_more": has_more,
        "max_cursor": next_cursor,
    }))
    .into_response()
}

/// 6b: `GET /aweme/v1/search/challengesug/?keyword=K&source=challenge_create&aid=2906`.
pub async fn challenge_sug(
    State(app): State<App>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    app.lock().counts.challenge_sug += 1;
    if let Err(r) = logged_in(&headers) {
        return r.into_response();
    }
    if q.get("source").map(String::as_str) != Some("challenge_create") {
        return status(2, "source: must be challenge_create");
    }
    if q.get("aid").map(String::as_str) != Some("2906") {
        return status(2, "aid: must be 2906");
    }
    let keyword = q.get("keyword").map(|k| k.trim()).unwrap_or_default();
    if keyword.is_empty() {
        return status(2, "keyword: missing or empty");
    }
    Json(json!({"status_code": 0, "sug_list": challenges::suggest(keyword)})).into_response()
}
