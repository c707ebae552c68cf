//! `POST /v2/post/publish/creator_info/query/` (page §3): the creator's name, avatar,
//! privacy options (public or private account), disabled interactions and maximum
//! duration; or "cannot post now" as HTTP 200 with a `spam_risk_*`/cap code.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use serde_json::{Value, json};

use super::options::TiktokCreator;
use super::{caps, guard, reply, rules};
use crate::sandbox::state::App;

/// The privacy levels a creator is offered.
pub(crate) fn options(c: &TiktokCreator) -> &'static [&'static str] {
    if c.private {
        rules::PRIVATE_OPTIONS
    } else {
        rules::PUBLIC_OPTIONS
    }
}

fn data(c: &TiktokCreator) -> Value {
    json!({
        "creator_avatar_url": format!("https://p16-sign.tiktokcdn.com/sandbox/{}.jpeg", c.username),
        "creator_username": c.username,
        "creator_nickname": c.nickname,
        "privacy_level_options": options(c),
        "comment_disabled": c.comment_disabled,
        "duet_disabled": c.duet_disabled,
        "stitch_disabled": c.stitch_disabled,
        "max_video_post_duration_sec": c.max_video_post_duration_sec,
    })
}

pub(crate) async fn creator_info(State(app): State<App>, headers: HeaderMap) -> Response {
    let caller = match guard::admit(&app, &headers, &guard::CREATOR_INFO) {
        Ok(c) => c,
        Err(answer) => return *answer,
    };
    let now = super::now_ms(&app);
    let found = {
        let m = app.tiktok.lock();
        let blocked = caps::cannot_post(&m, &caller.open_id, &caller.client_key, now);
        m.creator(&caller.open_id).map(|c| (data(&c.info), blocked))
    };
    match found {
        None => reply::refuse(&app, 401, "access_token_invalid", "the account is gone"),
        Some((_, Some(code))) => {
            reply::api(&app, 200, json!({}), code, "the creator cannot post now")
        }
        Some((d, None)) => reply::ok(&app, d),
    }
}
