//! The wire side of docs/douyin-creator.md in one place: every path, query, header and
//! field name, every code, and every (varies) and (ours) point of the protocol page, with
//! the page's tags in comments, plus the serde types of the answers and the create_v2 body.
//!
//! The platform changes these often; nothing else in the backend spells a name.

use serde::{Deserialize, Deserializer, Serialize};

use super::imagex::UploadedCover;
use crate::domain::{EntityKind, PostDraft, TextEntity, Visibility};

// ---- §0 the page --------------------------------------------------------------------------

/// Where a creator logs in; `dropcast login ACCOUNT` opens it (seen).
pub(crate) const LOGIN_PAGE: &str = "https://creator.douyin.com";
// The page every in-page request is sent from (`/creator-micro/content/upload`, seen) is
// the browser's to load: `browser::site::UPLOAD_PAGE`.
/// A post's public address is this followed by its id (seen).
pub(crate) const POST_URL_PREFIX: &str = "https://www.douyin.com/video/";

// ---- §1 upload credentials ------------------------------------------------------------------

/// `timing` of create_v2: a scheduled post lies 2 h to 14 days after it is sent
/// (docs/douyin-creator.md); the posting plan uses this timer where a slot fits.
pub(crate) const POST_TIMER: crate::plan::PostTimer = crate::plan::PostTimer {
    min_ahead: std::time::Duration::from_secs(2 * 3600),
    max_ahead: std::time::Duration::from_secs(14 * 24 * 3600),
};

/// Step 1, in the page (seen).
pub(crate) const PATH_UPLOAD_AUTH: &str = "/web/api/media/upload/auth/v5/";
/// `status_code` of the creator endpoints (seen).
pub(crate) const STATUS_OK: i64 = 0;
/// Not logged in (seen).
pub(crate) const STATUS_NOT_LOGGED_IN: i64 = 8;
/// Verification failed (seen): the session needs the user.
pub(crate) const STATUS_VERIFY_FAILED: i64 = 110;
/// A second create for a `Vid` that has a post (ours; with [`ALREADY_PUBLISHED_MSG`]).
pub(crate) const STATUS_ALREADY_PUBLISHED: i64 = 2;
pub(crate) const ALREADY_PUBLISHED_MSG: &str = "video already published";
/// A reply header that means a risk check wants the user (seen).
pub(crate) const H_RISK_DECISION: &str = "x-tt-verify-passport-decision";
/// `SessionToken` = this + base64 of a JSON object (seen).
pub(crate) const STS_TOKEN_PREFIX: &str = "STS2";

/// Step 1's answer: the STS credentials as a JSON object inside a string (seen).
#[derive(Debug, Deserialize)]
pub(crate) struct AuthAnswer {
    #[serde(default)]
    pub auth: Option<String>,
}

/// The object inside `auth` (seen).
#[derive(Deserialize)]
pub(crate) struct StsAuth {
    #[serde(rename = "AccessKeyID", default)]
    pub access_key_id: Option<String>,
    #[serde(rename = "SecretAccessKey", default)]
    pub secret_access_key: Option<String>,
    #[serde(rename = "SessionToken", default)]
    pub session_token: Option<String>,
    /// RFC 3339 (seen).
    #[serde(rename = "ExpiredTime", default)]
    pub expired_time: Option<String>,
}

/// The JSON inside `SessionToken` after [`STS_TOKEN_PREFIX`] (seen).
#[derive(Deserialize)]
pub(crate) struct StsToken {
    /// A JSON string (seen).
    #[serde(rename = "PolicyString")]
    pub policy_string: String,
}

#[derive(Deserialize)]
pub(crate) struct StsPolicy {
    #[serde(rename = "Statement")]
    pub statement: Vec<StsStatement>,
}

#[derive(Deserialize)]
pub(crate) struct StsStatement {
    /// A JSON string (seen).
    #[serde(rename = "Condition", default)]
    pub condition: Option<String>,
}

#[derive(Deserialize)]
pub(crate) struct StsCondition {
    /// The uploader's id, for `X-Storage-U` (seen). A string or a number.
    #[serde(rename = "UserId", deserialize_with = "opt_id", default)]
    pub user_id: Option<String>,
}

// ---- §2 / §4 VOD ----------------------------------------------------------------------------

pub(crate) const Q_ACTION: &str = "Action";
pub(crate) const Q_VERSION: &str = "Version";
pub(crate) const Q_SPACE_NAME: &str = "SpaceName";
pub(crate) const Q_FILE_TYPE: &str = "FileType";
pub(crate) const Q_IS_INNER: &str = "IsInner";
pub(crate) const Q_FILE_SIZE: &str = "FileSize";
pub(crate) const ACTION_APPLY: &str = "ApplyUploadInner";
pub(crate) const ACTION_COMMIT: &str = "CommitUploadInner";
pub(crate) const VOD_VERSION: &str = "2020-11-19";
pub(crate) const SPACE_NAME: &str = "aweme";
pub(crate) const FILE_TYPE_VIDEO: &str = "video";
pub(crate) const IS_INNER: &str = "1";

/// Step 2's query, in the page's order (seen).
pub(crate) fn apply_query(file_size: u64) -> Vec<(&'static str, String)> {
    vec![
        (Q_ACTION, ACTION_APPLY.into()),
        (Q_VERSION, VOD_VERSION.into()),
        (Q_SPACE_NAME, SPACE_NAME.into()),
        (Q_FILE_TYPE, FILE_TYPE_VIDEO.into()),
        (Q_IS_INNER, IS_INNER.into()),
        (Q_FILE_SIZE, file_size.to_string()),
    ]
}

/// Step 4's query (seen).
pub(crate) fn commit_query() -> Vec<(&'static str, String)> {
    vec![
        (Q_ACTION, ACTION_COMMIT.into()),
        (Q_VERSION, VOD_VERSION.into()),
        (Q_SPACE_NAME, SPACE_NAME.into()),
    ]
}

/// SigV4 of steps 2 and 4 (seen).
pub(crate) const SIGV4_REGION: &str = "cn-north-1";
pub(crate) const SIGV4_SERVICE: &str = "vod";
/// Send (and sign) `x-amz-content-sha256` (varies: the clients disagree whether to send
/// it; when sent it is signed and is the body's SHA-256). Ours: send it.
pub(crate) const SIGN_CONTENT_SHA256: bool = true;

/// `ResponseMetadata.Error.Code` of a request signed wrong (ours: a client bug, the job fails).
pub(crate) const VOD_SIGNATURE_MISMATCH: &str = "SignatureDoesNotMatch";
/// … of expired STS credentials (ours: redo step 1).
pub(crate) const VOD_INVALID_AUTHORIZATION: &str = "InvalidAuthorization";

/// Any VOD answer (seen).
#[derive(Debug, Deserialize)]
pub(crate) struct VodAnswer<T> {
    #[serde(rename = "ResponseMetadata", default)]
    pub metadata: Option<VodMetadata>,
    #[serde(rename = "Result")]
    pub result: Option<T>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct VodMetadata {
    #[serde(rename = "Error", default)]
    pub error: Option<VodError>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct VodError {
    #[serde(rename = "Code", default)]
    pub code: Option<String>,
    #[serde(rename = "Message", default)]
    pub message: Option<String>,
}

/// Step 2's `Result` (seen).
#[derive(Debug, Deserialize)]
pub(crate) struct ApplyResult {
    #[serde(rename = "InnerUploadAddress")]
    pub address: InnerUploadAddress,
}

#[derive(Debug, Deserialize)]
pub(crate) struct InnerUploadAddress {
    #[serde(rename = "UploadNodes")]
    pub nodes: Vec<UploadNode>,
}

#[derive(Deserialize)]
pub(crate) struct UploadNode {
    #[serde(rename = "Vid", default)]
    pub vid: Option<String>,
    #[serde(rename = "UploadHost", default)]
    pub upload_host: Option<String>,
    #[serde(rename = "StoreInfos", default)]
    pub store_infos: Vec<StoreInfo>,
    #[serde(rename = "SessionKey", default)]
    pub session_key: Option<String>,
    /// Header pairs every TOS request carries (seen).
    #[serde(rename = "UploadHeader", default)]
    pub upload_header: Option<serde_json::Map<String, serde_json::Value>>,
}

impl std::fmt::Debug for UploadNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UploadNode")
            .field("vid", &self.vid)
            .field("upload_host", &self.upload_host)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
pub(crate) struct StoreInfo {
    /// A path: `/` is part of it, never percent-encoded (seen).
    #[serde(rename = "StoreUri", default)]
    pub store_uri: Option<String>,
    /// The TOS `Authorization` value (seen; not SigV4).
    #[serde(rename = "Auth", default)]
    pub auth: Option<String>,
}

/// Step 4's body (seen).
#[derive(Debug, Serialize)]
pub(crate) struct CommitBody<'a> {
    #[serde(rename = "SessionKey")]
    pub session_key: &'a str,
    #[serde(rename = "Functions")]
    pub functions: serde_json::Value,
}

impl<'a> CommitBody<'a> {
    pub(crate) fn new(session_key: &'a str) -> Self {
        CommitBody {
            session_key,
            functions: serde_json::json!([
                {"name": "GetMeta"},
                {"name": "Snapshot", "input": {"SnapshotTime": 0}}
            ]),
        }
    }
}

/// Step 4's `Result` (seen).
#[derive(Debug, Deserialize)]
pub(crate) struct CommitResult {
    #[serde(rename = "Results", default)]
    pub results: Vec<CommitItem>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct CommitItem {
    #[serde(rename = "Vid", default)]
    pub vid: Option<String>,
    #[serde(rename = "VideoMeta", default)]
    pub meta: Option<VideoMeta>,
    /// The poster's name (varies): `PosterUri` here, `CoverUri` or `Snapshot.Uri` in
    /// other clients; all three are read.
    #[serde(rename = "PosterUri", default)]
    pub poster_uri: Option<String>,
    #[serde(rename = "CoverUri", default)]
    pub cover_uri: Option<String>,
    #[serde(rename = "Snapshot", default)]
    pub snapshot: Option<Snapshot>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct Snapshot {
    #[serde(rename = "Uri", default)]
    pub uri: Option<String>,
}

impl CommitItem {
    /// The poster URI under whichever name it came (varies).
    pub(crate) fn poster(&self) -> Option<&str> {
        [
            self.poster_uri.as_deref(),
            self.cover_uri.as_deref(),
            self.snapshot.as_ref().and_then(|s| s.uri.as_deref()),
        ]
        .into_iter()
        .flatten()
        .find(|s| !s.is_empty())
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct VideoMeta {
    #[serde(rename = "Width", default)]
    pub width: Option<u32>,
    #[serde(rename = "Height", default)]
    pub height: Option<u32>,
    #[serde(rename = "Duration", default)]
    pub duration: Option<f64>,
}

// ---- §3 the TOS gateway ---------------------------------------------------------------------

/// `{upload_scheme}://{UploadHost}` + this + `{StoreUri}` (seen).
pub(crate) const TOS_PATH_PREFIX: &str = "/upload/v1/";
pub(crate) const H_AUTHORIZATION: &str = "authorization";
pub(crate) const H_STORAGE_USER: &str = "x-storage-u";
pub(crate) const H_CONTENT_CRC32: &str = "content-crc32";
pub(crate) const Q_UPLOAD_MODE: &str = "uploadmode";
pub(crate) const UPLOAD_MODE_PART: &str = "part";
pub(crate) const Q_PHASE: &str = "phase";
pub(crate) const PHASE_INIT: &str = "init";
pub(crate) const PHASE_TRANSFER: &str = "transfer";
pub(crate) const PHASE_FINISH: &str = "finish";
pub(crate) const Q_UPLOAD_ID: &str = "uploadid";
pub(crate) const Q_PART_NUMBER: &str = "part_number";
pub(crate) const CT_OCTET_STREAM: &str = "application/octet-stream";
pub(crate) const CT_FINISH: &str = "text/plain;charset=UTF-8";
pub(crate) const CT_JSON: &str = "application/json";
/// `code` of a TOS success (seen).
pub(crate) const TOS_OK: i64 = 2000;
/// Every part but the last is at least this big (seen).
pub(crate) const MIN_PART: u64 = 5 * 1024 * 1024;
/// Most parts of one upload (ours).
pub(crate) const MAX_PARTS: u64 = 10_000;

/// Init's query (seen).
pub(crate) fn init_query() -> Vec<(&'static str, String)> {
    vec![
        (Q_UPLOAD_MODE, UPLOAD_MODE_PART.into()),
        (Q_PHASE, PHASE_INIT.into()),
    ]
}

/// A part's query (seen).
pub(crate) fn part_query(upload_id: &str, number: u32) -> Vec<(&'static str, String)> {
    vec![
        (Q_UPLOAD_ID, upload_id.into()),
        (Q_PART_NUMBER, number.to_string()),
        (Q_PHASE, PHASE_TRANSFER.into()),
    ]
}

/// Finish's query (seen).
pub(crate) fn finish_query(upload_id: &str) -> Vec<(&'static str, String)> {
    vec![
        (Q_UPLOAD_MODE, UPLOAD_MODE_PART.into()),
        (Q_PHASE, PHASE_FINISH.into()),
        (Q_UPLOAD_ID, upload_id.into()),
    ]
}

/// `Content-CRC32` and the finish list: 8 lower-case hex digits (seen).
pub(crate) fn crc32_hex(crc: u32) -> String {
    format!("{crc:08x}")
}

/// Finish's body: `1:<crc1>,2:<crc2>,…` (seen).
pub(crate) fn finish_body(parts: impl IntoIterator<Item = (u32, u32)>) -> String {
    parts
        .into_iter()
        .map(|(n, crc)| format!("{n}:{}", crc32_hex(crc)))
        .collect::<Vec<_>>()
        .join(",")
}

/// Any TOS answer (seen): `code`, `message`, `data`; some clients read `payload` (varies).
#[derive(Debug, Deserialize)]
pub(crate) struct TosAnswer {
    #[serde(default)]
    pub code: Option<i64>,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub data: Option<TosData>,
    #[serde(default)]
    pub payload: Option<TosPayload>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct TosData {
    #[serde(default)]
    pub uploadid: Option<String>,
    #[serde(default)]
    pub crc32: Option<String>,
    #[serde(default)]
    pub key: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct TosPayload {
    #[serde(rename = "uploadID", default)]
    pub upload_id: Option<String>,
}

impl TosAnswer {
    /// Init's upload id: `data.uploadid`, else `payload.uploadID` (varies: accept both).
    pub(crate) fn upload_id(&self) -> Option<&str> {
        self.data
            .as_ref()
            .and_then(|d| d.uploadid.as_deref())
            .or(self.payload.as_ref().and_then(|p| p.upload_id.as_deref()))
            .filter(|s| !s.is_empty())
    }
}

// ---- §12 ImageX: the custom cover image ------------------------------------------------------
// The protocol page says only "ApplyImageUpload / upload / CommitImageUpload at
// {imagex_url} (seen, SigV4 service imagex); its Uri becomes cover.poster". Everything
// below is (ours), after Volcengine veImageX's public API.

pub(crate) const ACTION_APPLY_IMAGE: &str = "ApplyImageUpload";
pub(crate) const ACTION_COMMIT_IMAGE: &str = "CommitImageUpload";
/// veImageX's API version (ours).
pub(crate) const IMAGEX_VERSION: &str = "2018-08-01";
pub(crate) const Q_SERVICE_ID: &str = "ServiceId";
pub(crate) const Q_UPLOAD_NUM: &str = "UploadNum";
pub(crate) const Q_FILE_EXTENSION: &str = "FileExtension";
/// The ImageX service the creator page uploads covers to (ours, UNVERIFIED against the
/// live site: a placeholder until the page's own value is read from it). The sandbox
/// takes only this one.
pub(crate) const IMAGEX_SERVICE_ID: &str = "jm8ajry58r";
/// SigV4 service of ImageX (seen); the region and keys are step 1's, as for VOD.
pub(crate) const IMAGEX_SIGV4_SERVICE: &str = "imagex";
/// The upload's `error.code` of success (ours).
pub(crate) const IMAGE_UPLOAD_OK: i64 = 200;
/// `UriStatus` of a committed image (ours).
pub(crate) const URI_STATUS_OK: i64 = 2000;

/// ApplyImageUpload's query (ours): one file with `extension` (`.jpg`, `.png`, …).
pub(crate) fn apply_image_query(extension: &str) -> Vec<(&'static str, String)> {
    vec![
        (Q_ACTION, ACTION_APPLY_IMAGE.into()),
        (Q_VERSION, IMAGEX_VERSION.into()),
        (Q_SERVICE_ID, IMAGEX_SERVICE_ID.into()),
        (Q_UPLOAD_NUM, "1".into()),
        (Q_FILE_EXTENSION, extension.into()),
    ]
}

/// CommitImageUpload's query (ours).
pub(crate) fn commit_image_query() -> Vec<(&'static str, String)> {
    vec![
        (Q_ACTION, ACTION_COMMIT_IMAGE.into()),
        (Q_VERSION, IMAGEX_VERSION.into()),
        (Q_SERVICE_ID, IMAGEX_SERVICE_ID.into()),
    ]
}

/// ApplyImageUpload's `Result` (ours).
#[derive(Debug, Deserialize)]
pub(crate) struct ImageApplyResult {
    #[serde(rename = "UploadAddress")]
    pub address: ImageUploadAddress,
}

#[derive(Deserialize)]
pub(crate) struct ImageUploadAddress {
    #[serde(rename = "StoreInfos", default)]
    pub store_infos: Vec<StoreInfo>,
    #[serde(rename = "UploadHosts", default)]
    pub upload_hosts: Vec<String>,
    #[serde(rename = "SessionKey", default)]
    pub session_key: Option<String>,
}

impl std::fmt::Debug for ImageUploadAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImageUploadAddress")
            .field("upload_hosts", &self.upload_hosts)
            .finish_non_exhaustive()
    }
}

/// The upload's answer (ours): `{"success": 0, "error": {"code": 200, "error": "Success"},
/// "payload": {"hash": "<crc32>"}}`.
#[derive(Debug, Deserialize)]
pub(crate) struct ImageUploadAnswer {
    #[serde(default)]
    pub success: Option<i64>,
    #[serde(default)]
    pub error: Option<ImageUploadError>,
    #[serde(default)]
    pub payload: Option<ImageUploadPayload>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct ImageUploadError {
    #[serde(default)]
    pub code: Option<i64>,
    #[serde(default)]
    pub error: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct ImageUploadPayload {
    #[serde(default)]
    pub hash: Option<String>,
}

/// CommitImageUpload's body (ours).
#[derive(Debug, Serialize)]
pub(crate) struct ImageCommitBody<'a> {
    #[serde(rename = "SessionKey")]
    pub session_key: &'a str,
}

/// CommitImageUpload's `Result` (ours).
#[derive(Debug, Deserialize)]
pub(crate) struct ImageCommitResult {
    #[serde(rename = "Results", default)]
    pub results: Vec<ImageCommitted>,
    #[serde(rename = "PluginResult", default)]
    pub plugin: Vec<ImagePlugin>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct ImageCommitted {
    #[serde(rename = "Uri", default)]
    pub uri: Option<String>,
    #[serde(rename = "UriStatus", default)]
    pub uri_status: Option<i64>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct ImagePlugin {
    #[serde(rename = "ImageUri", default)]
    pub image_uri: Option<String>,
    #[serde(rename = "ImageWidth", default)]
    pub width: Option<u32>,
    #[serde(rename = "ImageHeight", default)]
    pub height: Option<u32>,
}

// ---- §5 create_v2 ---------------------------------------------------------------------------

/// Step 5, in the page (seen).
pub(crate) const PATH_CREATE: &str = "/web/api/media/aweme/create_v2/";
/// Step 5's query (seen).
pub(crate) const CREATE_QUERY: &[(&str, &str)] = &[
    ("read_aid", "2906"),
    ("aid", "1128"),
    ("cookie_enabled", "true"),
    ("browser_language", "zh-CN"),
    ("support_h265", "1"),
];
/// `item_title` is at most this many characters (Unicode scalar values) (seen).
pub(crate) const MAX_TITLE_CHARS: usize = 30;
/// At most this many hashtags, counted as occurrences (seen).
pub(crate) const MAX_HASHTAGS: usize = 5;
/// `media_type` of a video (seen).
const MEDIA_TYPE_VIDEO: u8 = 4;
/// The cover's size when the commit gives none (seen: the page's example).
const DEFAULT_COVER: (u32, u32) = (1080, 1920);

/// `visibility_type` (seen): 0 public, 1 friends, 2 private (not the 2020 numbering).
pub(crate) fn visibility_type(v: Visibility) -> u8 {
    match v {
        Visibility::Public => 0,
        Visibility::Friends => 1,
        Visibility::Private => 2,
    }
}

/// The self-declarations of `declare.user_declare_info` (ours: the page gives no shape,
/// so each is `{"choose_value": N}` with the numbers below; `{}` for none).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Declaration {
    /// AI-generated content (`ai_generated: true`).
    AiGenerated,
    /// Fiction / staged, for entertainment.
    Fiction,
    /// Contains risky stunts, do not imitate.
    Dangerous,
    /// Personal opinion.
    Opinion,
}

impl Declaration {
    fn choose_value(self) -> u8 {
        match self {
            Declaration::AiGenerated => 1,
            Declaration::Fiction => 2,
            Declaration::Dangerous => 3,
            Declaration::Opinion => 4,
        }
    }

    /// The caption's declaration (`douyin: {declaration: …}`), else its `ai_generated`:
    /// the page takes one (ours), the explicit one wins.
    fn of_draft(draft: &PostDraft) -> Option<Declaration> {
        match draft.declaration {
            Some(crate::domain::Declaration::Fiction) => Some(Declaration::Fiction),
            Some(crate::domain::Declaration::DangerousAct) => Some(Declaration::Dangerous),
            Some(crate::domain::Declaration::PersonalOpinion) => Some(Declaration::Opinion),
            None => draft.ai_generated.then_some(Declaration::AiGenerated),
        }
    }
}

/// What step 5 posts beyond the draft (item 5 of issue 11: title, cover image, the
/// declaration). Empty: the title comes from the text, the cover is the commit's poster,
/// no declaration.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CreateExtras {
    pub title: Option<String>,
    /// An uploaded cover image's URI (ImageX), instead of the commit's poster.
    pub cover_uri: Option<String>,
    /// That image's width and height, when ImageX said (else the video's, as for the
    /// commit's poster).
    pub cover_size: Option<(u32, u32)>,
    pub declaration: Option<Declaration>,
}

impl CreateExtras {
    /// The draft's title and declaration, and the cover image uploaded for it (§12), if any.
    pub(crate) fn for_draft(draft: &PostDraft, cover: Option<&UploadedCover>) -> CreateExtras {
        CreateExtras {
            title: draft.title.clone(),
            cover_uri: cover.map(|c| c.cover_uri.clone()),
            cover_size: cover.and_then(UploadedCover::size),
            declaration: Declaration::of_draft(draft),
        }
    }
}

/// The committed video as step 5 needs it.
pub(crate) struct CreateVideo<'a> {
    pub vid: &'a str,
    pub poster: &'a str,
    pub width: u32,
    pub height: u32,
}

/// `item_title` (ours for the default): the given title, else the text up to its first
/// hashtag; trimmed, cut to [`MAX_TITLE_CHARS`] characters.
pub(crate) fn item_title(draft: &PostDraft, title: Option<&str>) -> String {
    let raw = match title {
        Some(t) => t,
        None => {
            let first_tag = draft
                .entities
                .iter()
                .filter(|e| matches!(e.kind, EntityKind::Hashtag { .. }))
                .map(|e| e.start)
                .min();
            match first_tag {
                Some(at) => &draft.text[..byte_at_utf16(&draft.text, at)],
                None => &draft.text,
            }
        }
    };
    raw.trim().chars().take(MAX_TITLE_CHARS).collect::<String>()
}

/// The byte index of UTF-16 offset `at` in `text` (its end if past it).
fn byte_at_utf16(text: &str, at: usize) -> usize {
    let mut units = 0;
    for (i, c) in text.char_indices() {
        if units >= at {
            return i;
        }
        units += c.len_utf16();
    }
    text.len()
}

/// One `text_extra` span (seen), fields in the page's order.
#[derive(Debug, PartialEq, Serialize)]
pub(crate) struct TextExtra<'a> {
    pub start: usize,
    pub end: usize,
    #[serde(rename = "type")]
    pub kind: u8,
    pub hashtag_name: &'a str,
    /// Ours: `"0"` always, as the page's example (the challenge ids go in `challenges`).
    pub hashtag_id: &'a str,
    pub user_id: &'a str,
}

impl<'a> From<&'a TextEntity> for TextExtra<'a> {
    fn from(e: &'a TextEntity) -> Self {
        match &e.kind {
            EntityKind::Hashtag { name } => TextExtra {
                start: e.start,
                end: e.end,
                kind: 1,
                hashtag_name: name,
                hashtag_id: "0",
                user_id: "",
            },
            EntityKind::Mention { user_id, .. } => TextExtra {
                start: e.start,
                end: e.end,
                kind: 0,
                hashtag_name: "",
                hashtag_id: "",
                user_id,
            },
        }
    }
}

#[derive(Debug, Serialize)]
pub(crate) struct CreateBody {
    pub item: CreateItem,
}

#[derive(Debug, Serialize)]
pub(crate) struct CreateItem {
    pub common: CreateCommon,
    pub cover: CreateCover,
    /// `{}` without a collection (seen).
    pub mix: serde_json::Value,
    pub anchor: serde_json::Value,
    pub sync: serde_json::Value,
    pub open_platform: serde_json::Value,
    pub assistant: serde_json::Value,
    pub declare: CreateDeclare,
}

#[derive(Debug, Serialize)]
pub(crate) struct CreateCommon {
    pub text: String,
    pub caption: String,
    pub item_title: String,
    /// A JSON string (seen).
    pub text_extra: String,
    pub challenges: String,
    pub mentions: String,
    pub activity: String,
    pub hashtag_source: String,
    pub hot_sentence: String,
    pub interaction_stickers: String,
    pub visibility_type: u8,
    pub download: u8,
    pub timing: i64,
    pub creation_id: String,
    pub media_type: u8,
    pub video_id: String,
    pub music_source: u8,
    pub music_id: Option<String>,
}

#[derive(Debug, Serialize)]
pub(crate) struct CreateCover {
    pub poster: String,
    pub poster_delay: u64,
    pub custom_cover_image_width: u32,
    pub custom_cover_image_height: u32,
    pub cover_tools_info: String,
    pub cover_tools_extend_info: String,
}

#[derive(Debug, Serialize)]
pub(crate) struct CreateDeclare {
    /// A JSON string: `{}` or the self-declaration (seen).
    pub user_declare_info: String,
}

/// `creation_id` (ours: 32 hex digits; the page calls it random. Ours is the SHA-256 of
/// the `Vid`, cut to 32 digits: unpredictable to others and the same on every re-send of
/// one upload, so a platform that deduplicates by it sees one creation).
pub(crate) fn creation_id(vid: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(format!("dropcast-creation:{vid}").as_bytes());
    base16ct::lower::encode_string(&digest)[..32].to_owned()
}

/// Step 5's body, exactly as the page lists it.
pub(crate) fn create_body(
    video: &CreateVideo<'_>,
    draft: &PostDraft,
    extras: &CreateExtras,
) -> Result<CreateBody, serde_json::Error> {
    let spans: Vec<TextExtra<'_>> = draft.entities.iter().map(TextExtra::from).collect();
    let mix = match &draft.collection {
        Some(c) => serde_json::json!({"mix_id": c.id, "mix_order": c.order}),
        None => serde_json::json!({}),
    };
    let declare = match extras.declaration {
        Some(d) => serde_json::json!({"choose_value": d.choose_value()}).to_string(),
        None => "{}".to_owned(),
    };
    let (width, height) = match extras.cover_size {
        Some(size) if extras.cover_uri.is_some() => size,
        _ if video.width > 0 && video.height > 0 => (video.width, video.height),
        _ => DEFAULT_COVER,
    };
    Ok(CreateBody {
        item: CreateItem {
            common: CreateCommon {
                text: draft.text.clone(),
                caption: draft.text.clone(),
                item_title: item_title(draft, extras.title.as_deref()),
                text_extra: serde_json::to_string(&spans)?,
                challenges: serde_json::to_string(&draft.challenge_ids)?,
                mentions: serde_json::to_string(&draft.mention_ids)?,
                activity: "[]".into(),
                hashtag_source: String::new(),
                hot_sentence: String::new(),
                interaction_stickers: "[]".into(),
                visibility_type: visibility_type(draft.visibility),
                download: u8::from(draft.allow_download),
                timing: draft.publish_at.unwrap_or(0),
                creation_id: creation_id(video.vid),
                media_type: MEDIA_TYPE_VIDEO,
                video_id: video.vid.to_owned(),
                music_source: 0,
                music_id: None,
            },
            cover: CreateCover {
                poster: extras
                    .cover_uri
                    .clone()
                    .unwrap_or_else(|| video.poster.to_owned()),
                poster_delay: u64::try_from(draft.cover_at.as_millis()).unwrap_or(u64::MAX),
                custom_cover_image_width: width,
                custom_cover_image_height: height,
                cover_tools_info: "{}".into(),
                cover_tools_extend_info: "{}".into(),
            },
            mix,
            anchor: serde_json::json!({}),
            sync: serde_json::json!({"should_sync": false, "sync_to_toutiao": 0}),
            open_platform: serde_json::json!({}),
            assistant: serde_json::json!({"is_preview": 0, "is_post_assistant": 1}),
            declare: CreateDeclare {
                user_declare_info: declare,
            },
        },
    })
}

/// `status_code` and `status_msg`, which every creator answer has (seen).
#[derive(Debug, Deserialize)]
pub(crate) struct StatusOnly {
    pub status_code: i64,
    #[serde(default)]
    pub status_msg: Option<String>,
}

/// Whether an answer says the `Vid` already has a post (ours).
pub(crate) fn is_already_published(code: i64, msg: Option<&str>) -> bool {
    code == STATUS_ALREADY_PUBLISHED
        && msg.is_some_and(|m| m.to_ascii_lowercase().contains(ALREADY_PUBLISHED_MSG))
}

/// Step 5's answer: `item_id` or `aweme_id` (seen: accept either), a string or a number.
#[derive(Debug, Deserialize)]
pub(crate) struct CreateAnswer {
    #[serde(default, deserialize_with = "opt_id")]
    pub item_id: Option<String>,
    #[serde(default, deserialize_with = "opt_id")]
    pub aweme_id: Option<String>,
}

impl CreateAnswer {
    pub(crate) fn post_id(&self) -> Option<&str> {
        self.item_id
            .as_deref()
            .filter(|s| !s.is_empty())
            .or(self.aweme_id.as_deref().filter(|s| !s.is_empty()))
    }
}

// ---- §6 supporting requests -----------------------------------------------------------------

/// Own works (seen).
pub(crate) const PATH_WORK_LIST: &str = "/janus/douyin/creator/pc/work_list";
pub(crate) const Q_STATUS: &str = "status";
pub(crate) const WORK_STATUS_ALL: &str = "0";
pub(crate) const Q_PAGE_SIZE: &str = "page_size";
pub(crate) const WORK_PAGE_SIZE: u32 = 20;
pub(crate) const Q_MAX_CURSOR: &str = "max_cursor";
/// Reconciliation reads at most this many pages, newest first (ours).
pub(crate) const WORK_MAX_PAGES: u32 = 10;

/// The work list (seen): under `aweme_list`, or `data.work_list` (varies: read both).
#[derive(Debug, Deserialize)]
pub(crate) struct WorkList {
    #[serde(default)]
    pub aweme_list: Option<Vec<Work>>,
    #[serde(default)]
    pub data: Option<WorkListData>,
    #[serde(default)]
    pub has_more: Option<serde_json::Value>,
    #[serde(default)]
    pub max_cursor: Option<i64>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct WorkListData {
    #[serde(default)]
    pub work_list: Option<Vec<Work>>,
    #[serde(default)]
    pub has_more: Option<serde_json::Value>,
    #[serde(default)]
    pub max_cursor: Option<i64>,
}

impl WorkList {
    /// The works, the cursor for the next page and whether there is one.
    pub(crate) fn into_page(self) -> (Vec<Work>, bool, Option<i64>) {
        let truthy = |v: &Option<serde_json::Value>| match v {
            Some(serde_json::Value::Bool(b)) => *b,
            Some(serde_json::Value::Number(n)) => n.as_i64().is_some_and(|n| n != 0),
            _ => false,
        };
        match (self.aweme_list, self.data) {
            (Some(list), data) => {
                let more =
                    truthy(&self.has_more) || data.as_ref().is_some_and(|d| truthy(&d.has_more));
                (list, more, self.max_cursor)
            }
            (None, Some(d)) => {
                let more = truthy(&d.has_more) || truthy(&self.has_more);
                (
                    d.work_list.unwrap_or_default(),
                    more,
                    d.max_cursor.or(self.max_cursor),
                )
            }
            (None, None) => (Vec::new(), false, None),
        }
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct Work {
    #[serde(default, deserialize_with = "opt_id")]
    pub aweme_id: Option<String>,
    #[serde(default)]
    pub desc: Option<String>,
    #[serde(default)]
    pub create_time: Option<i64>,
    /// Ours (the sandbox gives it; a real answer may not).
    #[serde(default)]
    pub video: Option<WorkVideo>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct WorkVideo {
    #[serde(default)]
    pub vid: Option<String>,
}

/// Hashtag suggestions (seen, as the 2020 flow).
pub(crate) const PATH_CHALLENGE_SUG: &str = "/aweme/v1/search/challengesug/";

/// Who a session is (ours; the sandbox serves it, the real site has such a request):
/// `{"status_code": 0, "user": {"uid": "…", "nickname": "…"}}`.
pub(crate) const PATH_USER_INFO: &str = "/web/api/media/user/info/";

#[derive(Debug, Deserialize)]
pub(crate) struct UserInfo {
    pub user: Option<UserInfoUser>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct UserInfoUser {
    pub uid: Option<serde_json::Value>,
    pub nickname: Option<String>,
}
pub(crate) const Q_KEYWORD: &str = "keyword";
pub(crate) const Q_SOURCE: &str = "source";
pub(crate) const CHALLENGE_SOURCE: &str = "challenge_create";
pub(crate) const Q_AID: &str = "aid";
pub(crate) const CHALLENGE_AID: &str = "2906";
/// Most hashtags of one caption looked up (ours; the page allows 5 hashtags anyway).
pub(crate) const MAX_CHALLENGE_LOOKUPS: usize = MAX_HASHTAGS;

#[derive(Debug, Deserialize)]
pub(crate) struct ChallengeSug {
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

/// The largest answer read from any endpoint (ours; real ones are a few KiB).
pub(crate) const MAX_ANSWER_BYTES: usize = 1 << 20;

/// An id that arrives as a string or as a JSON number.
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

    fn hashtag(start: usize, end: usize, name: &str) -> TextEntity {
        TextEntity {
            start,
            end,
            kind: EntityKind::Hashtag { name: name.into() },
        }
    }

    fn draft() -> PostDraft {
        // "遇见😀 #音乐 @小明": 遇见 (2 units) + 😀 (2 units) + space = 5.
        PostDraft {
            text: "遇见😀 #音乐 @小明".into(),
            plain_text: "遇见😀".into(),
            entities: vec![
                hashtag(5, 8, "音乐"),
                TextEntity {
                    start: 9,
                    end: 12,
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
                id: "70123".into(),
                order: 3,
            }),
            publish_at: Some(1_900_000_000),
            title: None,
            cover_image: None,
            ai_generated: false,
            declaration: None,
            tiktok: Default::default(),
        }
    }

    #[test]
    fn the_create_body_is_the_pages_shape() {
        let video = CreateVideo {
            vid: "v0d00fg1",
            poster: "tos-cn-p/poster",
            width: 720,
            height: 1280,
        };
        let body = create_body(&video, &draft(), &CreateExtras::default()).unwrap();
        let v = serde_json::to_value(&body).unwrap();
        let common = &v["item"]["common"];
        assert_eq!(common["text"], "遇见😀 #音乐 @小明");
        assert_eq!(common["caption"], common["text"]);
        assert_eq!(common["item_title"], "遇见😀");
        assert_eq!(common["visibility_type"], 1);
        assert_eq!(common["download"], 1);
        assert_eq!(common["timing"], 1_900_000_000i64);
        assert_eq!(common["media_type"], 4);
        assert_eq!(common["video_id"], "v0d00fg1");
        assert!(common["music_id"].is_null());
        assert_eq!(common["challenges"], r#"["1550712576368642"]"#);
        assert_eq!(common["mentions"], r#"["84990209480"]"#);
        let spans: serde_json::Value =
            serde_json::from_str(common["text_extra"].as_str().unwrap()).unwrap();
        assert_eq!(
            spans,
            serde_json::json!([
                {"start": 5, "end": 8, "type": 1, "hashtag_name": "音乐", "hashtag_id": "0", "user_id": ""},
                {"start": 9, "end": 12, "type": 0, "hashtag_name": "", "hashtag_id": "", "user_id": "84990209480"}
            ])
        );
        let id = common["creation_id"].as_str().unwrap();
        assert_eq!(id.len(), 32);
        assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(v["item"]["cover"]["poster"], "tos-cn-p/poster");
        assert_eq!(v["item"]["cover"]["poster_delay"], 1500);
        assert_eq!(v["item"]["cover"]["custom_cover_image_width"], 720);
        assert_eq!(
            v["item"]["mix"],
            serde_json::json!({"mix_id": "70123", "mix_order": 3})
        );
        assert_eq!(v["item"]["declare"]["user_declare_info"], "{}");
        assert_eq!(
            v["item"]["assistant"],
            serde_json::json!({"is_preview": 0, "is_post_assistant": 1})
        );
    }

    #[test]
    fn no_collection_is_an_empty_mix_and_extras_apply() {
        let mut d = draft();
        d.collection = None;
        d.visibility = Visibility::Private;
        let video = CreateVideo {
            vid: "v",
            poster: "p",
            width: 0,
            height: 0,
        };
        let extras = CreateExtras {
            title: Some("一二三四五六七八九十一二三四五六七八九十一二三四五六七八九十多余".into()),
            cover_uri: Some("tos-cn-i/cover".into()),
            cover_size: None,
            declaration: Some(Declaration::AiGenerated),
        };
        let v = serde_json::to_value(create_body(&video, &d, &extras).unwrap()).unwrap();
        assert_eq!(v["item"]["mix"], serde_json::json!({}));
        assert_eq!(v["item"]["common"]["visibility_type"], 2);
        let title = v["item"]["common"]["item_title"].as_str().unwrap();
        assert_eq!(title.chars().count(), MAX_TITLE_CHARS);
        assert_eq!(v["item"]["cover"]["poster"], "tos-cn-i/cover");
        assert_eq!(v["item"]["cover"]["custom_cover_image_height"], 1920);
        assert_eq!(
            v["item"]["declare"]["user_declare_info"],
            r#"{"choose_value":1}"#
        );
    }

    #[test]
    fn the_default_title_is_the_text_before_its_first_hashtag_cut_to_30() {
        let mut d = draft();
        d.text = format!("{} #x", "字".repeat(40));
        d.entities = vec![hashtag(41, 43, "x")];
        assert_eq!(item_title(&d, None), "字".repeat(30));
        d.text = "#开头 后面".into();
        d.entities = vec![hashtag(0, 3, "开头")];
        assert_eq!(item_title(&d, None), "");
        d.text = "没有标签".into();
        d.entities = vec![];
        assert_eq!(item_title(&d, None), "没有标签");
        assert_eq!(item_title(&d, Some(" 标题 ")), "标题");
    }

    #[test]
    fn creation_ids_are_32_hex_and_stable_per_vid() {
        assert_eq!(creation_id("v1"), creation_id("v1"));
        assert_ne!(creation_id("v1"), creation_id("v2"));
    }

    #[test]
    fn answers_in_either_form_are_read() {
        let a: CreateAnswer = serde_json::from_str(r#"{"status_code":0,"aweme_id":7}"#).unwrap();
        assert_eq!(a.post_id(), Some("7"));
        let a: CreateAnswer = serde_json::from_str(r#"{"item_id":"9","aweme_id":""}"#).unwrap();
        assert_eq!(a.post_id(), Some("9"));
        let t: TosAnswer =
            serde_json::from_str(r#"{"code":2000,"payload":{"uploadID":"u"}}"#).unwrap();
        assert_eq!(t.upload_id(), Some("u"));
        let t: TosAnswer =
            serde_json::from_str(r#"{"code":2000,"data":{"uploadid":"d"}}"#).unwrap();
        assert_eq!(t.upload_id(), Some("d"));
        let w: WorkList = serde_json::from_str(
            r#"{"status_code":0,"data":{"work_list":[{"aweme_id":"1"}],"has_more":1,"max_cursor":5}}"#,
        )
        .unwrap();
        let (works, more, cursor) = w.into_page();
        assert_eq!((works.len(), more, cursor), (1, true, Some(5)));
        assert!(is_already_published(2, Some("Video already published")));
        assert!(!is_already_published(2, Some("other")));
        assert_eq!(
            finish_body([(1, 0xdead_beef), (2, 0xab)]),
            "1:deadbeef,2:000000ab"
        );
    }
}
