//! Supporting requests in the page: the account's works (`work_list`, newest first, with
//! `video.vid`), who the session is (`user/info`), and hashtag suggestions (the path
//! douyin-web uses too: a creator session is served here, anything else by douyin-web).

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, Method, Uri};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde_json::json;

use super::Early;
use super::guard::{self, status};
use super::state::millis;
use crate::sandbox::challenges;
use crate::sandbox::faults::ListLag;
use crate::sandbox::state::App;

/// Largest `page_size`.
const MAX_PAGE: u64 = 20;

fn int(q: &HashMap<String, String>, key: &str) -> Result<Option<u64>, Early> {
    match q.get(key) {
        None => Ok(None),
        Some(v) => v
            .parse()
            .map(Some)
            .map_err(|_| Box::new(status(4, format!("{key}: must be a non-negative integer")))),
    }
}

/// `GET /janus/douyin/creator/pc/work_list?status=0&page_size=20[&max_cursor=C]`. The
/// cursor is opaque: pass back the previous page's `max_cursor` (0 or none = newest).
pub(crate) async fn work_list(
    State(app): State<App>,
    lag: Option<Extension<ListLag>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    app.creator.lock().counts.work_list += 1;
    let session = match guard::in_page(&app, &method, &uri, &headers, b"") {
        Ok(s) => s,
        Err(r) => return *r,
    };
    if q.get("status").map(String::as_str) != Some("0") {
        return status(4, "status: must be 0");
    }
    let size = match int(&q, "page_size") {
        Ok(Some(n)) if (1..=MAX_PAGE).contains(&n) => n as usize,
        Ok(_) => return status(4, format!("page_size: 1..={MAX_PAGE}")),
        Err(r) => return *r,
    };
    let cursor = match int(&q, "max_cursor") {
        Ok(c) => c.unwrap_or(0),
        Err(r) => return *r,
    };
    // A lagging list (the `lag` fault) does not show the newest posts yet.
    let shown_before =
        super::now_ms(&app).saturating_sub(lag.map_or(0, |Extension(ListLag(d))| millis(d)));
    let m = app.creator.lock();
    let mut older = m.posts.iter().rev().filter(|p| {
        p.uid == session.uid && (cursor == 0 || p.seq < cursor) && p.created_ms <= shown_before
    });
    let page: Vec<_> = older.by_ref().take(size).collect();
    let has_more = older.next().is_some();
    let list: Vec<_> = page
        .iter()
        .map(|p| {
            json!({
                "aweme_id": p.item_id,
                "desc": p.desc,
                "create_time": p.create_time,
                "public_time": p.public_time,
                "author_user_id": p.uid,
                "video": {"vid": p.vid},
                "status": {"is_private": p.item["common"]["visibility_type"] == 2},
            })
        })
        .collect();
    Json(json!({
        "status_code": 0,
        "aweme_list": list,
        "has_more": has_more,
        "max_cursor": page.last().map_or(0, |p| p.seq),
    }))
    .into_response()
}

/// `GET /web/api/media/user/info/` (in the page): who the session is.
pub(crate) async fn user_info(
    State(app): State<App>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    app.creator.lock().counts.user_info += 1;
    match guard::in_page(&app, &method, &uri, &headers, b"") {
        Ok(s) => Json(json!({"status_code": 0, "user": {"uid": s.uid, "nickname": s.nickname}}))
            .into_response(),
        Err(r) => *r,
    }
}

/// `GET /aweme/v1/search/challengesug/?keyword=K&source=challenge_create&aid=2906`: for a
/// creator session here, for anyone else douyin-web's handler.
pub(crate) async fn challenge_sug(
    State(app): State<App>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let creator =
        guard::session_id(&headers).is_some_and(|sid| guard::session_of(&app, &sid).is_some());
    if !creator {
        return crate::sandbox::creator::challenge_sug(State(app), headers, Query(q)).await;
    }
    app.creator.lock().counts.challenge_sug += 1;
    if q.get("source").map(String::as_str) != Some("challenge_create") {
        return status(4, "source: must be challenge_create");
    }
    if q.get("aid").map(String::as_str) != Some("2906") {
        return status(4, "aid: must be 2906");
    }
    let keyword = q.get("keyword").map(|k| k.trim()).unwrap_or_default();
    if keyword.is_empty() {
        return status(4, "keyword: missing or empty");
    }
    Json(json!({"status_code": 0, "sug_list": challenges::suggest(keyword)})).into_response()
}
