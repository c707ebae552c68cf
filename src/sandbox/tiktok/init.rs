//! `POST /v2/post/publish/video/init/` (direct post, scope `video.publish`) and
//! `POST /v2/post/publish/inbox/video/init/` (inbox, scope `video.upload`, body only
//! `source_info`), page §4: the fields checked (unknown ones refused, ours), then the
//! creator's options, the unaudited app's rules and the daily caps; answers a
//! `publish_id` and an `upload_url` valid for an hour.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::guard::{self, Caller};
use super::layout::Layout;
use super::state::{Memory, Mode, Publish};
use super::{caps, creator, reply, rules};
use crate::sandbox::state::App;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Body {
    post_info: Option<Value>,
    source_info: Option<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PostInfo {
    #[serde(default)]
    title: String,
    privacy_level: Option<String>,
    disable_duet: Option<bool>,
    disable_comment: Option<bool>,
    disable_stitch: Option<bool>,
    #[allow(dead_code)]
    video_cover_timestamp_ms: Option<u64>,
    #[allow(dead_code)]
    brand_content_toggle: Option<bool>,
    #[allow(dead_code)]
    brand_organic_toggle: Option<bool>,
    #[allow(dead_code)]
    is_aigc: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SourceInfo {
    source: String,
    video_size: u64,
    chunk_size: u64,
    total_chunk_count: u64,
}

/// A parsed, field-checked init.
struct Request {
    post: Option<(PostInfo, Value)>,
    source: Value,
    layout: Layout,
}

fn parse(body: &[u8], mode: Mode) -> Result<Request, String> {
    let b: Body =
        serde_json::from_slice(body).map_err(|e| format!("the body does not parse: {e}"))?;
    let source = b.source_info.ok_or("source_info is required")?;
    let s: SourceInfo =
        serde_json::from_value(source.clone()).map_err(|e| format!("source_info: {e}"))?;
    if s.source != "FILE_UPLOAD" {
        return Err("source_info.source: the sandbox takes only FILE_UPLOAD".into());
    }
    let layout = Layout::new(s.video_size, s.chunk_size, s.total_chunk_count)?;
    let post = match (mode, b.post_info) {
        (Mode::Inbox, Some(_)) => return Err("the inbox init body has only source_info".into()),
        (Mode::Inbox, None) => None,
        (Mode::Direct, None) => return Err("post_info is required".into()),
        (Mode::Direct, Some(raw)) => Some((post_info(&raw)?, raw)),
    };
    Ok(Request {
        post,
        source,
        layout,
    })
}

fn post_info(raw: &Value) -> Result<PostInfo, String> {
    let p: PostInfo = serde_json::from_value(raw.clone()).map_err(|e| format!("post_info: {e}"))?;
    let units = p.title.encode_utf16().count();
    if units > rules::TITLE_MAX_UTF16 {
        return Err(format!(
            "post_info.title: {units} UTF-16 units, at most {}",
            rules::TITLE_MAX_UTF16
        ));
    }
    match p.privacy_level.as_deref() {
        None => Err("post_info.privacy_level is required".into()),
        Some(l) if !rules::PRIVACY_LEVELS.contains(&l) => {
            Err(format!("post_info.privacy_level: unknown `{l}`"))
        }
        Some(_) => Ok(p),
    }
}

/// A refusal: HTTP status, `error.code`, message.
type Refused = (u16, &'static str, String);

/// The creator's and the app's rules for a direct post.
fn direct_rules(m: &Memory, caller: &Caller, p: &PostInfo, now: i64) -> Result<u32, Refused> {
    let c = m.creator(&caller.open_id).ok_or((
        401,
        "access_token_invalid",
        "the account is gone".to_owned(),
    ))?;
    if let Some(code) = c.info.cannot_post {
        return Err((403, code.code(), "the creator cannot post now".into()));
    }
    let level = p.privacy_level.as_deref().unwrap_or("");
    if !creator::options(&c.info).contains(&level) {
        return Err((
            403,
            "privacy_level_option_mismatch",
            format!("{level} is not in the creator's privacy_level_options"),
        ));
    }
    let toggles = [
        (
            c.info.comment_disabled,
            p.disable_comment,
            "disable_comment",
            "comments",
        ),
        (
            c.info.duet_disabled,
            p.disable_duet,
            "disable_duet",
            "duets",
        ),
        (
            c.info.stitch_disabled,
            p.disable_stitch,
            "disable_stitch",
            "stitches",
        ),
    ];
    if let Some((_, _, field, what)) = toggles
        .iter()
        .find(|(off, set, ..)| *off && *set != Some(true))
    {
        return Err((
            400,
            "invalid_param",
            format!("post_info.{field} must be true: the creator turned {what} off"),
        ));
    }
    if !m.audited && (level != rules::UNAUDITED_PRIVACY || !c.info.private) {
        let msg = "an unaudited app can only post SELF_ONLY to private accounts";
        return Err((
            403,
            "unaudited_client_can_only_post_to_private_accounts",
            msg.into(),
        ));
    }
    if let Some(code) = caps::cannot_post(m, &caller.open_id, &caller.client_key, now) {
        return Err((403, code, "the creator cannot post now".into()));
    }
    Ok(c.info.max_video_post_duration_sec)
}

fn inbox_rules(app: &App, m: &Memory, caller: &Caller, now: i64) -> Result<u32, Refused> {
    let c = m.creator(&caller.open_id).ok_or((
        401,
        "access_token_invalid",
        "the account is gone".to_owned(),
    ))?;
    if let Some(code) = c.info.cannot_post {
        return Err((403, code.code(), "the creator cannot post now".into()));
    }
    if caps::pending_shares(m, &app.tiktok.cfg, &caller.open_id, now)
        >= rules::PENDING_INBOX_PER_DAY
    {
        let msg = format!(
            "at most {} pending inbox shares in 24 h",
            rules::PENDING_INBOX_PER_DAY
        );
        return Err((403, "spam_risk_too_many_pending_share", msg));
    }
    Ok(c.info.max_video_post_duration_sec)
}

/// Record the publish; its `publish_id` and `upload_url`.
fn create(
    app: &App,
    m: &mut Memory,
    caller: Caller,
    req: Request,
    mode: Mode,
    max: u32,
    now: i64,
) -> Value {
    let digits = u64::from_str_radix(&m.hex("publish", 7), 16).unwrap_or(0);
    let publish_id = format!("v_pub_file~v2-1.{digits}");
    let upload_id = m.hex("upload", 8);
    let upload_token = m.hex("upload_token", 16);
    let upload_url = format!(
        "{}{}?upload_id={upload_id}&upload_token={upload_token}",
        app.tiktok.cfg.base_url,
        super::paths::UPLOAD
    );
    let publish = Publish {
        publish_id: publish_id.clone(),
        upload_id: upload_id.clone(),
        upload_token,
        open_id: caller.open_id,
        client_key: caller.client_key,
        mode,
        post_info: req.post.map(|(_, raw)| raw),
        source_info: req.source,
        layout: req.layout,
        max_duration_sec: max,
        created_ms: now,
        url_expires_ms: now.saturating_add(super::millis(rules::UPLOAD_URL_TTL)),
        received: 0,
        chunks: Default::default(),
        in_flight: false,
        hasher: Sha256::new(),
        path: app.tiktok.cfg.dir.join(format!("{upload_id}.video")),
        arrived: None,
    };
    m.upload_ids.insert(upload_id, publish_id.clone());
    m.publishes.insert(publish_id.clone(), publish);
    json!({"publish_id": publish_id, "upload_url": upload_url})
}

async fn init(app: App, headers: HeaderMap, body: Bytes, mode: Mode) -> Response {
    let ep = match mode {
        Mode::Direct => &guard::INIT,
        Mode::Inbox => &guard::INBOX_INIT,
    };
    let caller = match guard::admit(&app, &headers, ep) {
        Ok(c) => c,
        Err(answer) => return *answer,
    };
    let req = match parse(&body, mode) {
        Ok(r) => r,
        Err(message) => return reply::invalid(&app, &message),
    };
    let now = super::now_ms(&app);
    let result = {
        let mut m = app.tiktok.lock();
        let allowed = match &req.post {
            Some((p, _)) => direct_rules(&m, &caller, p, now),
            None => inbox_rules(&app, &m, &caller, now),
        };
        allowed.map(|max| create(&app, &mut m, caller, req, mode, max, now))
    };
    match result {
        Ok(data) => reply::ok(&app, data),
        Err((status, code, message)) => reply::refuse(&app, status, code, &message),
    }
}

pub(crate) async fn direct(State(app): State<App>, headers: HeaderMap, body: Bytes) -> Response {
    init(app, headers, body, Mode::Direct).await
}

pub(crate) async fn inbox(State(app): State<App>, headers: HeaderMap, body: Bytes) -> Response {
    init(app, headers, body, Mode::Inbox).await
}
