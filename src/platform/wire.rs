//! The wire side of docs/douyin-web.md in one place: every path, query, header and form field
//! name, every code and every (ours) constant, plus the serde types of the responses.
//!
//! Nothing outside `platform` sees these types; `douyin_web` translates them into the
//! domain's `Upload`, `Post` and `PublishError`.

use serde::{Deserialize, Deserializer, Serialize};

use crate::domain::{EntityKind, PostDraft, TextEntity, Visibility};

// ---- paths (relative to `creator_url` / `vod_url`) -------------------------------------

/// Where a creator logs in (and copies the Cookie header from).
pub(crate) const LOGIN_PAGE: &str = "https://creator.douyin.com";
/// A post's public address is this followed by its `aweme_id` (docs/douyin-web.md §5).
pub(crate) const POST_URL_PREFIX: &str = "https://www.douyin.com/video/";
/// Step 1 (seen).
pub(crate) const PATH_UPLOAD_AUTH: &str = "/web/api/media/upload/auth/";
/// Steps 2 and 4 (seen).
pub(crate) const PATH_VOD_OPENAPI: &str = "/video/openapi/v1/";
/// Step 5 (seen).
pub(crate) const PATH_CREATE_POST: &str = "/web/api/media/aweme/create/";
/// Step 6a (ours).
pub(crate) const PATH_LIST_POSTS: &str = "/web/api/media/aweme/post/";
/// Step 6b (seen).
pub(crate) const PATH_CHALLENGE_SUG: &str = "/aweme/v1/search/challengesug/";

// ---- query parameters -------------------------------------------------------------------

pub(crate) const ACTION_UPLOAD_PARAMS: &str = "GetVideoUploadParams";
pub(crate) const ACTION_COMMIT: &str = "UpdateVideoUploadInfos";
pub(crate) const Q_ACTION: &str = "action";
pub(crate) const Q_USE_EDGE_NODE: &str = "use_edge_node";
pub(crate) const Q_FILE_SIZE: &str = "file_size";
pub(crate) const Q_COUNT: &str = "count";
pub(crate) const Q_MAX_CURSOR: &str = "max_cursor";
pub(crate) const Q_KEYWORD: &str = "keyword";
pub(crate) const Q_SOURCE: &str = "source";
pub(crate) const CHALLENGE_SOURCE: &str = "challenge_create";
pub(crate) const Q_AID: &str = "aid";
pub(crate) const CHALLENGE_AID: &str = "2906";

/// Step 5's `timing`: a scheduled post lies 2 h to 14 days after it is sent
/// (docs/douyin-web.md §5, note 13); the posting plan uses this timer where a slot fits.
pub(crate) const POST_TIMER: crate::plan::PostTimer = crate::plan::PostTimer {
    min_ahead: std::time::Duration::from_secs(2 * 3600),
    max_ahead: std::time::Duration::from_secs(14 * 24 * 3600),
};

/// 6a page size (ours: the endpoint allows at most 50).
pub(crate) const LIST_PAGE_SIZE: u32 = 50;
/// 6a gives up after this many pages (ours): reconciliation looks at recent posts only.
pub(crate) const LIST_MAX_PAGES: u32 = 20;

/// Most hashtags of one caption looked up with 6b (ours; the protocol names no limit).
/// Hashtags beyond it are posted as plain hashtags, without a challenge id.
pub(crate) const MAX_CHALLENGE_LOOKUPS: usize = 20;

/// The largest answer body read from any endpoint (ours; real answers are a few KiB).
/// A larger one is refused as a bad answer, never buffered whole.
pub(crate) const MAX_ANSWER_BYTES: usize = 1 << 20;

// ---- headers ----------------------------------------------------------------------------

pub(crate) const H_COOKIE: &str = "cookie";
pub(crate) const H_CSRF_TOKEN: &str = "csrf_token";
pub(crate) const H_VOD_AUTHORIZATION: &str = "authorization";
pub(crate) const H_VOD_ACCESS: &str = "x-tt-access";
pub(crate) const H_TOS_AUTHORIZATION: &str = "authorization";
pub(crate) const H_CONTENT_CRC32: &str = "content-crc32";
pub(crate) const CT_OCTET_STREAM: &str = "application/octet-stream";
pub(crate) const CT_FORM: &str = "application/x-www-form-urlencoded";

/// The cookie entry step 5's `csrf_token` header is taken from (seen).
pub(crate) const COOKIE_CSRF_NAME: &str = "csrf_token";
/// The cookie entry that makes a session a logged-in one.
pub(crate) const COOKIE_SESSION_NAME: &str = "sessionid";

// ---- codes ------------------------------------------------------------------------------

/// Creator endpoints: `status_code`, read first by [`StatusOnly`] (seen / ours as tagged in docs/douyin-web.md §1, §5).
/// Every other non-zero code (2 = invalid parameter, ...) is a rejection.
pub(crate) const STATUS_OK: i64 = 0;
pub(crate) const STATUS_INVALID: i64 = 2;
pub(crate) const STATUS_TOO_OFTEN: i64 = 7;
pub(crate) const STATUS_NOT_LOGGED_IN: i64 = 8;

/// Step 5's `status_msg` (with `status_code` 2) for a `video_id` that already has a post
/// (docs/douyin-web.md §5).
pub(crate) const MSG_ALREADY_PUBLISHED: &str = "video already published";

/// Whether a step-5 answer says the video already has a post.
pub(crate) fn is_already_published(status_code: i64, status_msg: Option<&str>) -> bool {
    status_code == STATUS_INVALID
        && status_msg.is_some_and(|m| m.trim().eq_ignore_ascii_case(MSG_ALREADY_PUBLISHED))
}

/// VOD endpoints: `code` (seen: 2000; ours: 4001, 4004).
pub(crate) const VOD_OK: i64 = 2000;
/// Every other code (4004 = commit refused, ...) is a rejection.
pub(crate) const VOD_AUTH_EXPIRED: i64 = 4001;

/// TOS: `success` (seen: 0 = ok).
pub(crate) const TOS_OK: i64 = 0;

// ---- step 1 -----------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
pub(crate) struct StatusOnly {
    pub status_code: i64,
    #[serde(default)]
    pub status_msg: Option<String>,
}

/// Step 1's answer once `status_code` was 0.
#[derive(Deserialize)]
pub(crate) struct AuthResponse {
    pub ak: Option<String>,
    pub auth: Option<String>,
}

/// The expiry inside `HMAC-SHA1:1.0:<expiry unix s>:<ak>:<signature>` (seen), if it has one.
pub(crate) fn auth_expiry(auth: &str) -> Option<i64> {
    let mut parts = auth.split(':');
    let _algo = parts.next()?;
    let _version = parts.next()?;
    parts.next()?.parse().ok()
}

// ---- steps 2 and 4 ----------------------------------------------------------------------

/// `code` and `message` of a VOD answer, read before anything else.
#[derive(Deserialize)]
pub(crate) struct VodCode {
    pub code: i64,
    #[serde(default)]
    pub message: Option<String>,
}

/// A VOD answer whose `code` was 2000.
#[derive(Debug, Deserialize)]
pub(crate) struct VodEnvelope<T> {
    pub data: Option<T>,
}

/// The upload fields, at the top of `data` or in `edge_nodes[0]`.
#[derive(Default, Deserialize)]
pub(crate) struct UploadNode {
    pub vid: Option<String>,
    pub oid: Option<String>,
    pub tos_host: Option<String>,
    pub tos_sign: Option<String>,
    pub token: Option<String>,
    pub extra_param: Option<String>,
}

impl UploadNode {
    /// True when every field the client needs is there.
    pub(crate) fn is_complete(&self) -> bool {
        self.missing().is_none()
    }

    /// The first field that is missing or empty.
    pub fn missing(&self) -> Option<&'static str> {
        let fields = [
            ("vid", &self.vid),
            ("oid", &self.oid),
            ("tos_host", &self.tos_host),
            ("tos_sign", &self.tos_sign),
            ("token", &self.token),
            ("extra_param", &self.extra_param),
        ];
        fields
            .into_iter()
            .find(|(_, v)| v.as_deref().is_none_or(str::is_empty))
            .map(|(name, _)| name)
    }
}

#[derive(Deserialize)]
pub(crate) struct UploadParamsData {
    #[serde(flatten)]
    pub top: UploadNode,
    #[serde(default)]
    pub edge_nodes: Vec<UploadNode>,
}

impl UploadParamsData {
    /// The top-level fields when complete, else `edge_nodes[0]` when that is complete
    /// (docs/douyin-web.md §2: both layouts occur). `Err` names a missing field.
    pub(crate) fn into_node(mut self) -> Result<UploadNode, &'static str> {
        if self.top.is_complete() {
            return Ok(self.top);
        }
        if !self.edge_nodes.is_empty() {
            let first = self.edge_nodes.swap_remove(0);
            return match first.missing() {
                None => Ok(first),
                Some(field) => Err(field),
            };
        }
        Err(self.top.missing().unwrap_or("data"))
    }
}

#[derive(Serialize)]
pub(crate) struct CommitBody<'a> {
    pub vid: &'a str,
    pub oid: &'a str,
    pub token: &'a str,
    pub poster_ss: u32,
    pub is_exact_poster: bool,
    pub user_reference: &'a str,
}

#[derive(Debug, Deserialize)]
pub(crate) struct CommitData {
    pub video: Option<CommitVideo>,
    pub poster: Option<CommitPoster>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct CommitVideo {
    #[serde(default)]
    pub vid: Option<String>,
    #[serde(default)]
    pub width: Option<u32>,
    #[serde(default)]
    pub height: Option<u32>,
    #[serde(default)]
    pub duration: Option<f64>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct CommitPoster {
    #[serde(default)]
    pub oid: Option<String>,
}

// ---- step 3 -----------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
pub(crate) struct TosResponse {
    pub success: i64,
    #[serde(default)]
    pub error: Option<TosError>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct TosError {
    #[serde(default)]
    pub code: Option<i64>,
    #[serde(default)]
    pub message: Option<String>,
}

/// `Content-CRC32` and the completion list: 8 lower-case hex digits (seen).
pub(crate) fn crc32_hex(crc: u32) -> String {
    format!("{crc:08x}")
}

/// 3b.1: the query that starts a multipart upload (seen), and the content type of 3b.3.
pub(crate) const Q_UPLOADS: &str = "uploads";
pub(crate) const Q_PART_NUMBER: &str = "partNumber";
pub(crate) const Q_UPLOAD_ID: &str = "uploadID";
pub(crate) const CT_TEXT: &str = "text/plain";

/// Most parts one upload may have (ours; with 64 MiB parts, 640 GiB).
pub(crate) const MAX_PARTS: u64 = 10_000;

/// `payload` of a successful TOS answer.
#[derive(Debug, Deserialize)]
pub(crate) struct TosPayload<T> {
    pub payload: Option<T>,
}

/// 3b.1's payload (seen).
#[derive(Debug, Deserialize)]
pub(crate) struct UploadsPayload {
    #[serde(rename = "uploadID")]
    pub upload_id: Option<String>,
}

/// 3b.2's payload (seen); both fields checked when present.
#[derive(Debug, Deserialize)]
pub(crate) struct PartPayload {
    #[serde(default)]
    pub part_number: Option<u64>,
    #[serde(default)]
    pub crc32: Option<String>,
}

/// 3b.3's body: `1:<crc1>,2:<crc2>,…` (seen).
pub(crate) fn completion_body(parts: impl IntoIterator<Item = (u32, u32)>) -> String {
    parts
        .into_iter()
        .map(|(number, crc)| format!("{number}:{}", crc32_hex(crc)))
        .collect::<Vec<_>>()
        .join(",")
}

// ---- step 5 -----------------------------------------------------------------------------

/// One `text_extra` entry (seen), fields in the seen order.
#[derive(Debug, PartialEq, Serialize)]
pub(crate) struct TextExtra<'a> {
    pub start: usize,
    pub end: usize,
    pub user_id: &'a str,
    #[serde(rename = "type")]
    pub kind: u8,
    pub hashtag_name: &'a str,
}

impl<'a> From<&'a TextEntity> for TextExtra<'a> {
    fn from(e: &'a TextEntity) -> Self {
        match &e.kind {
            EntityKind::Hashtag { name } => TextExtra {
                start: e.start,
                end: e.end,
                user_id: "",
                kind: 1,
                hashtag_name: name,
            },
            EntityKind::Mention { user_id, .. } => TextExtra {
                start: e.start,
                end: e.end,
                user_id,
                kind: 0,
                hashtag_name: "",
            },
        }
    }
}

fn visibility_type(v: Visibility) -> u8 {
    match v {
        Visibility::Public => 0,
        Visibility::Private => 1,
        Visibility::Friends => 2,
    }
}

/// Step 5's form fields in the seed order of docs/douyin-web.md §5.
pub(crate) fn create_post_form(
    video_id: &str,
    poster: &str,
    draft: &PostDraft,
) -> Result<Vec<(&'static str, String)>, serde_json::Error> {
    let text_extra: Vec<TextExtra<'_>> = draft.entities.iter().map(TextExtra::from).collect();
    let (mix_id, mix_order) = match &draft.collection {
        Some(c) => (c.id.clone(), c.order.to_string()),
        None => (String::new(), String::new()),
    };
    Ok(vec![
        ("video_id", video_id.to_owned()),
        ("poster", poster.to_owned()),
        ("poster_delay", draft.cover_at.as_millis().to_string()),
        ("text", draft.text.clone()),
        ("text_extra", serde_json::to_string(&text_extra)?),
        ("challenges", serde_json::to_string(&draft.challenge_ids)?),
        ("mentions", serde_json::to_string(&draft.mention_ids)?),
        (
            "visibility_type",
            visibility_type(draft.visibility).to_string(),
        ),
        ("third_text", draft.plain_text.clone()),
        ("download", u8::from(draft.allow_download).to_string()),
        ("upload_source", "1".to_owned()),
        ("mix_id", mix_id),
        ("mix_order", mix_order),
        ("is_preview", "0".to_owned()),
        ("timing", draft.publish_at.unwrap_or(0).to_string()),
    ])
}

#[derive(Debug, Deserialize)]
pub(crate) struct CreateResponse {
    #[serde(default)]
    pub aweme: Option<CreatedAweme>,
    #[serde(default, deserialize_with = "opt_id")]
    pub item_id: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct CreatedAweme {
    #[serde(default, deserialize_with = "opt_id")]
    pub aweme_id: Option<String>,
}

impl CreateResponse {
    /// `aweme.aweme_id`, else `item_id` (docs/douyin-web.md §5: both occur).
    pub(crate) fn post_id(&self) -> Option<&str> {
        self.aweme
            .as_ref()
            .and_then(|a| a.aweme_id.as_deref())
            .or(self.item_id.as_deref())
            .filter(|id| !id.is_empty())
    }
}

// ---- step 6 -----------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
pub struct PostList {
    #[serde(default)]
    pub aweme_list: Vec<ListedPost>,
    #[serde(default)]
    pub has_more: bool,
    #[serde(default)]
    pub max_cursor: Option<i64>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct ListedPost {
    #[serde(default, deserialize_with = "opt_id")]
    pub aweme_id: Option<String>,
    #[serde(default)]
    pub video: Option<ListedVideo>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct ListedVideo {
    #[serde(default)]
    pub vid: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct ChallengeSug {
    #[serde(default)]
    pub sug_list: Option<Vec<Challenge>>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct Challenge {
    #[serde(default)]
    pub cha_name: Option<String>,
    #[serde(default, deserialize_with = "opt_id")]
    pub cid: Option<String>,
}

/// An id that arrives as a string or (in some captures) as a JSON number.
fn opt_id<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Id {
        S(String),
        N(u64),
    }
    Ok(Option::<Id>::deserialize(d)?.map(|id| match id {
        Id::S(s) => s,
        Id::N(n) => n.to_string(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Collection;
    use std::time::Duration;

    fn draft() -> PostDraft {
        PostDraft {
            text: "#音乐 遇见 @小明".into(),
            plain_text: "遇见".into(),
            entities: vec![
                TextEntity {
                    start: 0,
                    end: 3,
                    kind: EntityKind::Hashtag {
                        name: "音乐".into(),
                    },
                },
                TextEntity {
                    start: 7,
                    end: 10,
                    kind: EntityKind::Mention {
                        name: "小明".into(),
                        user_id: "84990209480".into(),
                    },
                },
            ],
            challenge_ids: vec!["1550712576368642".into()],
            mention_ids: vec!["84990209480".into()],
            visibility: Visibility::Friends,
            allow_download: true,
            cover_at: Duration::from_millis(1500),
            collection: Some(Collection {
                id: "7012".into(),
                order: 3,
            }),
            publish_at: Some(1_800_000_000),
            title: None,
            cover_image: None,
            ai_generated: false,
            declaration: None,
            tiktok: Default::default(),
        }
    }

    #[test]
    fn form_fields_in_seed_order_with_values() {
        let form = create_post_form("v02", "tos/poster", &draft()).unwrap();
        let names: Vec<&str> = form.iter().map(|(k, _)| *k).collect();
        assert_eq!(
            names,
            [
                "video_id",
                "poster",
                "poster_delay",
                "text",
                "text_extra",
                "challenges",
                "mentions",
                "visibility_type",
                "third_text",
                "download",
                "upload_source",
                "mix_id",
                "mix_order",
                "is_preview",
                "timing"
            ]
        );
        let get = |k: &str| form.iter().find(|(n, _)| *n == k).unwrap().1.as_str();
        assert_eq!(get("poster_delay"), "1500");
        assert_eq!(get("visibility_type"), "2");
        assert_eq!(get("download"), "1");
        assert_eq!(get("mix_id"), "7012");
        assert_eq!(get("mix_order"), "3");
        assert_eq!(get("timing"), "1800000000");
        assert_eq!(
            get("text_extra"),
            r#"[{"start":0,"end":3,"user_id":"","type":1,"hashtag_name":"音乐"},{"start":7,"end":10,"user_id":"84990209480","type":0,"hashtag_name":""}]"#
        );
        assert_eq!(get("challenges"), r#"["1550712576368642"]"#);
        assert_eq!(get("mentions"), r#"["84990209480"]"#);
    }

    #[test]
    fn empty_collection_and_no_schedule() {
        let mut d = draft();
        d.collection = None;
        d.publish_at = None;
        d.entities.clear();
        let form = create_post_form("v", "p", &d).unwrap();
        let get = |k: &str| form.iter().find(|(n, _)| *n == k).unwrap().1.as_str();
        assert_eq!(get("mix_id"), "");
        assert_eq!(get("mix_order"), "");
        assert_eq!(get("timing"), "0");
        assert_eq!(get("text_extra"), "[]");
    }

    #[test]
    fn auth_expiry_is_the_third_field() {
        assert_eq!(
            auth_expiry("HMAC-SHA1:1.0:1700000000:abcd:sig"),
            Some(1_700_000_000)
        );
        assert_eq!(auth_expiry("opaque"), None);
    }

    #[test]
    fn ids_as_strings_or_numbers() {
        let r: CreateResponse =
            serde_json::from_str(r#"{"status_code":0,"aweme":{"aweme_id":123}}"#).unwrap();
        assert_eq!(r.post_id(), Some("123"));
        let r: CreateResponse =
            serde_json::from_str(r#"{"status_code":0,"item_id":"77"}"#).unwrap();
        assert_eq!(r.post_id(), Some("77"));
        let r: CreateResponse = serde_json::from_str(r#"{"status_code":0}"#).unwrap();
        assert_eq!(r.post_id(), None);
    }

    #[test]
    fn upload_node_prefers_complete_top_then_edge_node() {
        let top: UploadParamsData = serde_json::from_str(
            r#"{"vid":"a","oid":"b/c","tos_host":"h","tos_sign":"s","token":"t","extra_param":"x=1",
                "edge_nodes":[{"vid":"z"}]}"#,
        )
        .unwrap();
        assert_eq!(top.into_node().unwrap().vid.as_deref(), Some("a"));
        let edge: UploadParamsData = serde_json::from_str(
            r#"{"edge_nodes":[{"vid":"e","oid":"b/c","tos_host":"h","tos_sign":"s","token":"t","extra_param":"x=1"}]}"#,
        )
        .unwrap();
        assert_eq!(edge.into_node().unwrap().vid.as_deref(), Some("e"));
        let bad: UploadParamsData =
            serde_json::from_str(r#"{"vid":"a","oid":"b/c","tos_host":"h"}"#).unwrap();
        assert_eq!(bad.into_node().err(), Some("tos_sign"));
    }
}
