//! Step 5, `POST /web/api/media/aweme/create_v2/?…` (in the page): signed by the page,
//! the body judged by [`item`], the video committed first, one post per Vid; the cover
//! the video's poster or a committed ImageX image at its real size ([`super::imagex`]). A pending
//! risk check answers with `x-tt-verify-passport-decision` instead. The reply names the
//! post `item_id` and `aweme_id` by turns (ours), so clients meet both.

use std::collections::HashMap;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::guard::{self, status};
use super::item;
use super::state::Post;
use crate::sandbox::state::App;

/// The reply header of a risk check.
pub(crate) const RISK_HEADER: &str = "x-tt-verify-passport-decision";
/// The `status_code` that comes with it (ours: any non-zero code would do).
const RISK_STATUS: i64 = 2190;

pub(crate) async fn create(
    State(app): State<App>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    app.creator.lock().counts.create_v2 += 1;
    let session = match guard::in_page(&app, &method, &uri, &headers, &body) {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let q: HashMap<String, String> = uri
        .query()
        .and_then(|q| serde_urlencoded::from_str::<Vec<(String, String)>>(q).ok())
        .unwrap_or_default()
        .into_iter()
        .collect();
    for (k, v) in [("aid", "1128"), ("read_aid", "2906")] {
        if q.get(k).map(String::as_str) != Some(v) {
            return status(4, format!("{k}: must be {v}"));
        }
    }
    {
        let mut m = app.creator.lock();
        if m.risk > 0 {
            m.risk -= 1;
            drop(m);
            let mut r = status(RISK_STATUS, "risk check: verify in the Douyin app");
            if let Ok(v) = "verify".parse() {
                r.headers_mut().insert(RISK_HEADER, v);
            }
            return r;
        }
    }
    let now_ms = super::now_ms(&app);
    let now_s = now_ms.div_euclid(1000);
    let parsed: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(_) => return status(4, "body: not JSON"),
    };
    let it = match item::parse(&parsed, now_s) {
        Ok(i) => i,
        Err(e) => return status(e.status_code(), e.message()),
    };
    let mut m = app.creator.lock();
    let Some(upload) = m.uploads.get(&it.video_id) else {
        return status(4, "item.common.video_id: no such Vid");
    };
    if upload.uid != session.uid {
        return status(4, "item.common.video_id: not this user's upload");
    }
    if upload.item_id.is_some() {
        return status(2, "video already published");
    }
    let (Some(commit), Some(object)) = (upload.commit.clone(), upload.object.clone()) else {
        return status(
            4,
            "item.common.video_id: not committed (CommitUploadInner first)",
        );
    };
    let cover = if it.poster == commit.poster_uri {
        None
    } else {
        match super::imagex::posted_cover(&m, &it, &session.uid) {
            Ok(c) => Some(c),
            Err(why) => return status(4, why),
        }
    };
    let store_uri = upload.store_uri.clone();
    let item_id = m.item_id();
    if let Some(u) = m.uploads.get_mut(&it.video_id) {
        u.item_id = Some(item_id.clone());
    }
    let seq = m.posts.len() as u64 + 1;
    m.posts.push(Post {
        seq,
        item_id: item_id.clone(),
        uid: session.uid,
        vid: it.video_id,
        store_uri,
        size: object.size,
        sha256: object.sha256,
        desc: it.text,
        create_time: now_s,
        public_time: if it.timing == 0 { now_s } else { it.timing },
        created_ms: now_ms,
        item: parsed["item"].clone(),
        cover,
    });
    m.answers += 1;
    let key = if m.answers % 2 == 1 {
        "item_id"
    } else {
        "aweme_id"
    };
    Json(json!({"status_code": 0, "status_msg": "", key: item_id})).into_response()
}
