//! The wire side of docs/tiktok.md (the TikTok Content Posting API) in one
//! place: every path, field name, code and number of the page, every (ours) point with the
//! page's tag and section, the serde types of the answers and bodies, the chunk arithmetic
//! of §5 and the sorting of every error code into [`PublishError`]'s classes.
//!
//! Nothing else in the backend spells a name of the protocol.

use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize};

use crate::media::Codec;
use crate::media::limits::{Codecs, MediaLimits};
use crate::platform::{Expired, PublishError};

// ---- §1 authorization -------------------------------------------------------------------

/// TikTok posts (or drops the draft in the creator's inbox) once the upload is complete:
/// there is no later "create post" request to hold back (docs/tiktok.md §4, §8). The
/// posting plan therefore waits for a slot before the init, not after the upload.
pub(crate) const POSTS_WITH_UPLOAD: bool = true;

/// Where the user manages their TikTok login (ours: for "log in at … to renew").
pub(crate) const LOGIN_PAGE: &str = "https://www.tiktok.com/login";

/// The authorize page under `auth_url` (doc).
pub(crate) const PATH_AUTHORIZE: &str = "/v2/auth/authorize/";
/// The token endpoint under `api_url`, for codes and refreshes (doc).
pub(crate) const PATH_TOKEN: &str = "/v2/oauth/token/";
/// The loopback redirect's path: `http://127.0.0.1:<port>/callback/` (doc).
pub(crate) const REDIRECT_PATH: &str = "/callback/";
/// The loopback host of the redirect (doc allows `127.0.0.1` or `localhost`; ours: the IP,
/// so no resolver can send the code elsewhere).
pub(crate) const REDIRECT_HOST: &str = "127.0.0.1";
/// Every scope dropcast needs, comma-separated (doc): the nickname, direct posts, inbox drafts.
pub(crate) const SCOPES: &str = "user.info.basic,video.publish,video.upload";
pub(crate) const CODE_CHALLENGE_METHOD: &str = "S256";
pub(crate) const GRANT_CODE: &str = "authorization_code";
pub(crate) const GRANT_REFRESH: &str = "refresh_token";
/// The OAuth error meaning the user must authorize again (doc).
pub(crate) const OAUTH_INVALID_GRANT: &str = "invalid_grant";
/// A token this close to its expiry is refreshed before it is used (ours).
pub(crate) const REFRESH_MARGIN: Duration = Duration::from_secs(5 * 60);
/// `code_verifier` length: 43–128 characters (doc); ours: 64.
pub(crate) const VERIFIER_LEN: usize = 64;
/// The characters a `code_verifier` may use (doc).
pub(crate) const VERIFIER_CHARS: &[u8] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~";

/// The token endpoint's answer (§1.4, doc); lifetimes in seconds.
#[derive(Deserialize)]
pub(crate) struct TokenAnswer {
    #[serde(default)]
    pub open_id: Option<String>,
    #[serde(default)]
    pub scope: Option<String>,
    #[serde(default)]
    pub access_token: Option<String>,
    #[serde(default)]
    pub expires_in: Option<u64>,
    #[serde(default)]
    pub refresh_token: Option<String>,
    #[serde(default)]
    pub refresh_expires_in: Option<u64>,
    /// §1.7: the OAuth envelope of an error (doc).
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub error_description: Option<String>,
}

// ---- §2 envelope --------------------------------------------------------------------------

pub(crate) const CONTENT_TYPE_JSON: &str = "application/json; charset=UTF-8";
/// Success is `error.code == "ok"`, never the HTTP status alone (doc).
pub(crate) const CODE_OK: &str = "ok";

/// Every Content Posting answer: `data` (may be `{}` or missing on errors) and `error`.
#[derive(Deserialize)]
pub(crate) struct Envelope<T> {
    #[serde(default = "none")]
    pub data: Option<T>,
    pub error: ApiError,
}

fn none<T>() -> Option<T> {
    None
}

#[derive(Clone, Debug, Deserialize)]
pub(crate) struct ApiError {
    pub code: String,
    #[serde(default)]
    pub message: String,
    /// The docs spell it both ways (doc).
    #[serde(default, alias = "logid")]
    pub log_id: Option<String>,
}

// ---- §3 creator info ----------------------------------------------------------------------

pub(crate) const PATH_CREATOR_INFO: &str = "/v2/post/publish/creator_info/query/";

/// §3's `data` (doc).
#[derive(Clone, Debug, Deserialize)]
pub(crate) struct CreatorInfo {
    #[serde(default)]
    pub creator_username: String,
    #[serde(default)]
    pub creator_nickname: String,
    #[serde(default)]
    pub privacy_level_options: Vec<String>,
    #[serde(default)]
    pub comment_disabled: bool,
    #[serde(default)]
    pub duet_disabled: bool,
    #[serde(default)]
    pub stitch_disabled: bool,
    #[serde(default)]
    pub max_video_post_duration_sec: Option<u64>,
}

// ---- §4 init ------------------------------------------------------------------------------

pub(crate) const PATH_INIT_DIRECT: &str = "/v2/post/publish/video/init/";
pub(crate) const PATH_INIT_INBOX: &str = "/v2/post/publish/inbox/video/init/";
pub(crate) const SOURCE_FILE_UPLOAD: &str = "FILE_UPLOAD";
/// `title` is at most this many UTF-16 code units (doc).
pub(crate) const MAX_TITLE_UTF16: usize = 2200;
/// An `upload_url` works for one hour after init (doc); ours: not used past 55 minutes.
pub(crate) const UPLOAD_URL_LIFETIME: Duration = Duration::from_secs(55 * 60);

/// `post_info` of a direct post (doc).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub(crate) struct PostInfo {
    pub title: String,
    pub privacy_level: String,
    pub disable_duet: bool,
    pub disable_comment: bool,
    pub disable_stitch: bool,
    pub video_cover_timestamp_ms: u64,
    pub brand_content_toggle: bool,
    pub brand_organic_toggle: bool,
    pub is_aigc: bool,
}

/// `source_info` (doc).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub(crate) struct SourceInfo {
    pub source: &'static str,
    pub video_size: u64,
    pub chunk_size: u64,
    pub total_chunk_count: u64,
}

/// The init body: direct posts have both, inbox drafts **only** `source_info` (doc).
#[derive(Serialize)]
pub(crate) struct InitBody<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub post_info: Option<&'a PostInfo>,
    pub source_info: SourceInfo,
}

/// Init's `data` (doc).
#[derive(Deserialize)]
pub(crate) struct InitData {
    #[serde(default)]
    pub publish_id: Option<String>,
    #[serde(default)]
    pub upload_url: Option<String>,
}

// ---- §5 the bytes -------------------------------------------------------------------------

/// The smallest chunk under both readings of "5 MB" (ours: 5 MiB, §5).
pub(crate) const MIN_CHUNK: u64 = 5 * 1024 * 1024;
/// The largest chunk under both readings of "64 MB" (ours: 64,000,000, §5).
pub(crate) const MAX_CHUNK: u64 = 64_000_000;
/// Videos from this size on must be chunked (ours: the smaller reading of 64 MB, §5).
pub(crate) const MUST_CHUNK_FROM: u64 = MAX_CHUNK;
/// The last chunk may be up to 128 MB (doc); ours: the smaller reading.
pub(crate) const MAX_LAST_CHUNK: u64 = 128_000_000;
/// 1–1000 chunks (doc).
pub(crate) const MAX_CHUNKS: u64 = 1000;
/// At most 4 GB (doc); ours: the smaller reading.
pub(crate) const MAX_VIDEO_BYTES: u64 = 4_000_000_000;
/// The media limits of §5 (doc), checked against the file's own headers before a byte is
/// sent; the creator's own maximum duration (§3) is checked at creator_info.
pub(crate) const MEDIA_LIMITS: MediaLimits = MediaLimits {
    platform: "TikTok",
    scope: " through the API",
    max_bytes: Some(MAX_VIDEO_BYTES),
    max_duration: Some(Duration::from_secs(10 * 60)),
    sides: Some((360, 4096)),
    frame_rate: Some((23.0, 60.0)),
    codec: Some(Codecs {
        accepts: accepted_codec,
        words: "H.264, H.265, VP8 or VP9",
    }),
};

fn accepted_codec(codec: &Codec) -> bool {
    match codec {
        Codec::H264 | Codec::H265 | Codec::Vp9 => true,
        Codec::Other(name) => matches!(name.as_str(), "vp08" | "V_VP8"),
        Codec::Av1 => false,
    }
}

/// The chunk dropcast uses for videos that are chunked (ours: 16 MiB, inside both readings'
/// bounds; a 4 GB video is 238 chunks, each chunk a small loss if its answer is lost).
pub(crate) const CHUNK: u64 = 16 * 1024 * 1024;
/// Content types by extension (doc).
pub(crate) const VIDEO_TYPES: &[(&str, &str)] = &[
    ("mp4", "video/mp4"),
    ("m4v", "video/mp4"),
    ("mov", "video/quicktime"),
    ("webm", "video/webm"),
];

/// How a video is cut into chunks (§5).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ChunkPlan {
    pub video_size: u64,
    pub chunk_size: u64,
    pub total_chunk_count: u64,
}

/// Why a video cannot be uploaded at all.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum SizeError {
    #[error("the video is empty")]
    Empty,
    #[error(
        "the video is {size} bytes; TikTok takes at most {MAX_VIDEO_BYTES} bytes (4 GB) through the API"
    )]
    TooLarge { size: u64 },
}

impl ChunkPlan {
    /// The page's arithmetic: under 64,000,000 bytes one chunk of the whole video (which
    /// covers "under 5 MB goes whole" in both readings); from there chunks of [`CHUNK`],
    /// `total_chunk_count = floor(size / chunk_size)`, the last absorbing the remainder.
    pub(crate) fn for_size(size: u64) -> Result<ChunkPlan, SizeError> {
        if size == 0 {
            return Err(SizeError::Empty);
        }
        if size > MAX_VIDEO_BYTES {
            return Err(SizeError::TooLarge { size });
        }
        let (chunk_size, total_chunk_count) = if size < MUST_CHUNK_FROM {
            (size, 1)
        } else {
            (CHUNK, size / CHUNK)
        };
        let plan = ChunkPlan {
            video_size: size,
            chunk_size,
            total_chunk_count,
        };
        debug_assert!((1..=MAX_CHUNKS).contains(&plan.total_chunk_count));
        debug_assert!(plan.total_chunk_count == 1 || plan.chunk_size >= MIN_CHUNK);
        debug_assert!(plan.chunk(plan.total_chunk_count - 1).1 <= MAX_LAST_CHUNK);
        Ok(plan)
    }

    /// Chunk `index` (0-based): its first byte and its length.
    pub(crate) fn chunk(&self, index: u64) -> (u64, u64) {
        let first = index * self.chunk_size;
        let len = if index + 1 == self.total_chunk_count {
            self.video_size - first
        } else {
            self.chunk_size
        };
        (first, len)
    }

    /// The chunk that starts at byte `next`, if one does (a resume point the server gave).
    pub(crate) fn chunk_at(&self, next: u64) -> Option<u64> {
        let index = next / self.chunk_size;
        (next.is_multiple_of(self.chunk_size) && index < self.total_chunk_count).then_some(index)
    }

    pub(crate) fn source_info(&self) -> SourceInfo {
        SourceInfo {
            source: SOURCE_FILE_UPLOAD,
            video_size: self.video_size,
            chunk_size: self.chunk_size,
            total_chunk_count: self.total_chunk_count,
        }
    }
}

/// `Content-Range: bytes <first>-<last>/<total>` of a chunk (doc).
pub(crate) fn content_range(first: u64, len: u64, total: u64) -> String {
    format!("bytes {first}-{}/{total}", first + len - 1)
}

/// How many bytes the server has, from its reply's `Content-Range`: `bytes 0-<last>/<total>`
/// or `bytes */<total>` (nothing yet) (doc). `None` when the header says neither.
pub(crate) fn received(content_range: &str, total: u64) -> Option<u64> {
    let rest = content_range.trim().strip_prefix("bytes ")?;
    let (range, of) = rest.split_once('/')?;
    if of.trim().parse::<u64>().ok()? != total {
        return None;
    }
    if range.trim() == "*" {
        return Some(0);
    }
    let (first, last) = range.split_once('-')?;
    let (first, last) = (
        first.trim().parse::<u64>().ok()?,
        last.trim().parse::<u64>().ok()?,
    );
    (first == 0 && last < total).then_some(last + 1)
}

/// 206: the chunk is in, more expected; 201: every byte is in (doc).
pub(crate) const UPLOAD_PARTIAL: u16 = 206;
pub(crate) const UPLOAD_COMPLETE: u16 = 201;
/// 403: the `upload_url` expired; 404: no such upload; 416: range mismatch (doc).
pub(crate) const UPLOAD_EXPIRED: u16 = 403;
pub(crate) const UPLOAD_NOT_FOUND: u16 = 404;
pub(crate) const UPLOAD_RANGE_MISMATCH: u16 = 416;

// ---- §6 status ----------------------------------------------------------------------------

pub(crate) const PATH_STATUS: &str = "/v2/post/publish/status/fetch/";

#[derive(Serialize)]
pub(crate) struct StatusBody<'a> {
    pub publish_id: &'a str,
}

/// Status's `data` (doc).
#[derive(Debug, Deserialize)]
pub(crate) struct StatusData {
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub fail_reason: String,
    /// Spelled so in the API (doc); 19-digit integers, never read as f64.
    #[serde(
        default,
        rename = "publicaly_available_post_id",
        deserialize_with = "ids"
    )]
    pub post_ids: Vec<String>,
}

/// Where a post stands (§6, doc).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Status {
    /// Bytes are still coming (`PROCESSING_UPLOAD`).
    Uploading,
    /// Every byte is in; TikTok is processing them (`PROCESSING_DOWNLOAD`).
    Processing,
    /// Inbox mode: the draft is in the creator's inbox.
    InInbox,
    /// Posted; the public ids fill in after moderation (maybe empty).
    Complete {
        post_ids: Vec<String>,
    },
    Failed {
        reason: String,
    },
}

pub(crate) const STATUS_PROCESSING_UPLOAD: &str = "PROCESSING_UPLOAD";
pub(crate) const STATUS_PROCESSING_DOWNLOAD: &str = "PROCESSING_DOWNLOAD";
pub(crate) const STATUS_INBOX: &str = "SEND_TO_USER_INBOX";
pub(crate) const STATUS_COMPLETE: &str = "PUBLISH_COMPLETE";
pub(crate) const STATUS_FAILED: &str = "FAILED";

impl StatusData {
    pub(crate) fn status(self) -> Result<Status, PublishError> {
        match self.status.as_str() {
            STATUS_PROCESSING_UPLOAD => Ok(Status::Uploading),
            STATUS_PROCESSING_DOWNLOAD => Ok(Status::Processing),
            STATUS_INBOX => Ok(Status::InInbox),
            STATUS_COMPLETE => Ok(Status::Complete {
                post_ids: self.post_ids,
            }),
            STATUS_FAILED => Ok(Status::Failed {
                reason: self.fail_reason,
            }),
            other => Err(PublishError::Unknown {
                reason: format!("status fetch: unknown status `{other}`"),
            }),
        }
    }
}

/// Ids as strings, from JSON numbers or strings, never through f64.
fn ids<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let values: Option<Vec<serde_json::Value>> = Option::deserialize(d)?;
    values
        .unwrap_or_default()
        .into_iter()
        .map(|v| match v {
            serde_json::Value::String(s) => Ok(s),
            serde_json::Value::Number(n) if n.is_u64() => Ok(n.to_string()),
            other => Err(serde::de::Error::custom(format!(
                "a post id must be an integer, not {other}"
            ))),
        })
        .collect()
}

/// A `fail_reason` in words, the code kept in brackets (§6, doc). Whatever the reason, a
/// `FAILED` publish_id never posts: `internal` is worth a new try (a new init), the media
/// checks and the rest only once the user fixed what they name.
pub(crate) fn fail_reason_words(reason: &str) -> String {
    let what = match reason {
        "file_format_check_failed" => {
            "the video's format is not one TikTok takes (MP4, WebM or MOV; H.264, H.265, VP8 or VP9)"
        }
        "duration_check_failed" => "the video is longer than TikTok allows",
        "frame_rate_check_failed" => "the frame rate is outside 23–60 fps",
        "picture_size_check_failed" => "a side of the picture is outside 360–4096 px",
        "internal" => "an error on TikTok's side",
        "publish_cancelled" => "the post was cancelled",
        "auth_removed" => "the creator removed dropcast's authorization",
        "spam_risk_too_many_posts" => "the creator posted too much today",
        "spam_risk_user_banned_from_posting" => "the creator is banned from posting",
        "spam_risk_text" => "TikTok flagged the caption's text as spam",
        "spam_risk" => "TikTok flagged the post as spam",
        _ => "",
    };
    if what.is_empty() {
        format!("TikTok failed the post ({reason})")
    } else {
        format!("TikTok failed the post: {what} ({reason})")
    }
}

/// The address of a post (§6, ours).
pub(crate) fn post_url(username: &str, post_id: &str) -> String {
    format!("https://www.tiktok.com/@{username}/video/{post_id}")
}

// ---- §7 rate limits -----------------------------------------------------------------------

/// Requests per sliding minute per access token (doc).
pub(crate) const LIMIT_INIT: u32 = 6;
pub(crate) const LIMIT_CREATOR_INFO: u32 = 20;
pub(crate) const LIMIT_STATUS: u32 = 30;
pub(crate) const LIMIT_WINDOW: Duration = Duration::from_secs(60);
/// A 429 without `Retry-After` waits this long (ours: the window's length).
pub(crate) const RATE_LIMITED_WAIT: Duration = LIMIT_WINDOW;

// ---- error classes ------------------------------------------------------------------------

/// "Cannot post now" (§3, §7, doc): the account waits until TikTok allows posting again.
pub(crate) const CANNOT_POST_NOW: &[&str] = &[
    "spam_risk_too_many_posts",
    "spam_risk_user_banned_from_posting",
    "reached_active_user_cap",
    "spam_risk_too_many_pending_share",
];

/// How [`classify`] words `access_token_invalid`, so the client can tell it from the
/// other refusals and refresh the token once.
pub(crate) const ACCESS_TOKEN_REFUSED: &str = "TikTok refused the access token";

/// Whether `e` is the API refusing the access token (worth one refresh).
pub(crate) fn is_token_refused(e: &PublishError) -> bool {
    matches!(e, PublishError::AuthExpired { reason, .. } if reason.starts_with(ACCESS_TOKEN_REFUSED))
}

/// The class of a Content Posting error (§2–§4, doc): `status` is the HTTP status, `code`
/// `error.code`. `retry_after` is the reply's `Retry-After`, if any.
pub(crate) fn classify(
    status: u16,
    code: &str,
    message: &str,
    retry_after: Option<Duration>,
) -> PublishError {
    let said = if message.is_empty() {
        format!("HTTP {status} {code}")
    } else {
        format!("HTTP {status} {code}: {message}")
    };
    match code {
        "rate_limit_exceeded" => PublishError::RateLimited {
            retry_after: Some(retry_after.unwrap_or(RATE_LIMITED_WAIT)),
        },
        "access_token_invalid" => PublishError::AuthExpired {
            what: Expired::Authorization,
            reason: format!("{ACCESS_TOKEN_REFUSED} ({said})"),
        },
        "scope_not_authorized" => PublishError::AuthExpired {
            what: Expired::Authorization,
            reason: format!("the authorization lacks a scope dropcast needs ({SCOPES}) ({said})"),
        },
        c if CANNOT_POST_NOW.contains(&c) => PublishError::AuthExpired {
            what: Expired::Posting,
            reason: format!(
                "TikTok says this account cannot post now ({said}); the daily caps are about 15 direct posts per creator and 5 pending inbox drafts per 24 h"
            ),
        },
        "unaudited_client_can_only_post_to_private_accounts" => PublishError::Rejected {
            reason: format!(
                "TikTok has not audited this app, so it may only post SELF_ONLY to a private account ({said})"
            ),
        },
        "privacy_level_option_mismatch" => PublishError::Rejected {
            reason: format!("the privacy level is not one the creator may use ({said})"),
        },
        "invalid_param" => PublishError::Rejected {
            reason: format!("TikTok refused the request ({said})"),
        },
        _ if status == 429 => PublishError::RateLimited {
            retry_after: Some(retry_after.unwrap_or(RATE_LIMITED_WAIT)),
        },
        _ if status >= 500 || code == "internal_error" => PublishError::Transient {
            reason: said,
            retry_after,
        },
        _ if status == 401 => PublishError::AuthExpired {
            what: Expired::Authorization,
            reason: format!("TikTok refused the authorization ({said})"),
        },
        _ => PublishError::Rejected { reason: said },
    }
}

/// The class of a token endpoint error (§1.7, doc): `invalid_grant` means authorize again.
pub(crate) fn classify_oauth(status: u16, error: &str, description: &str) -> PublishError {
    let said = format!("HTTP {status} {error}: {description}");
    if error == OAUTH_INVALID_GRANT {
        return PublishError::AuthExpired {
            what: Expired::Authorization,
            reason: format!("TikTok refused the refresh token; authorize again ({said})"),
        };
    }
    if status >= 500 {
        return PublishError::Transient {
            reason: said,
            retry_after: None,
        };
    }
    if status == 429 {
        return PublishError::RateLimited {
            retry_after: Some(RATE_LIMITED_WAIT),
        };
    }
    PublishError::AuthExpired {
        what: Expired::Authorization,
        reason: format!(
            "TikTok refused the app's credentials (check client_key and the client secret) ({said})"
        ),
    }
}

/// The title of a post: the caption's text, checked against [`MAX_TITLE_UTF16`].
pub(crate) fn title(text: &str) -> Result<String, PublishError> {
    let units = text.encode_utf16().count();
    if units > MAX_TITLE_UTF16 {
        return Err(PublishError::Rejected {
            reason: format!(
                "the text is {units} UTF-16 units long; TikTok takes at most {MAX_TITLE_UTF16}"
            ),
        });
    }
    Ok(text.to_owned())
}

/// The content type of a video by its extension (doc); MP4 when unknown.
pub(crate) fn video_type(path: &std::path::Path) -> &'static str {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    VIDEO_TYPES
        .iter()
        .find(|(e, _)| *e == ext)
        .map_or("video/mp4", |(_, t)| t)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MB: u64 = 1_000_000;
    const MIB: u64 = 1024 * 1024;

    /// Every reading of §5 accepts the plan: each chunk but the last is `chunk_size`, the
    /// last takes the remainder, the chunks tile the video.
    fn check(plan: ChunkPlan) {
        let ChunkPlan {
            video_size: size,
            chunk_size: c,
            total_chunk_count: n,
        } = plan;
        assert_eq!(
            n,
            size / c.max(1),
            "floor(video_size / chunk_size) for {size}"
        );
        assert!((1..=MAX_CHUNKS).contains(&n));
        if size < 5 * MIB {
            assert_eq!((c, n), (size, 1), "under 5 MB (either reading) goes whole");
        } else if size >= 64 * MB {
            assert!(n > 1, "64 MB (either reading) or more is chunked: {size}");
        }
        if n > 1 {
            assert!(
                (5 * MIB..=64 * MB).contains(&c),
                "5 MB..64 MB in both readings"
            );
        } else {
            assert!(c <= 64 * MB);
        }
        let mut at = 0;
        for i in 0..n {
            let (first, len) = plan.chunk(i);
            assert_eq!(first, at);
            if i + 1 < n {
                assert_eq!(len, c);
            } else {
                assert!(
                    len >= c && len < 2 * c.max(1) && len <= MAX_LAST_CHUNK,
                    "last {len}"
                );
            }
            at += len;
        }
        assert_eq!(at, size);
    }

    #[test]
    fn chunk_plans_around_5_64_and_128_mb_and_4_gb_are_valid_in_both_readings() {
        for size in [
            1,
            5 * MB - 1,
            5 * MB,
            5 * MB + 1,
            5 * MIB - 1,
            5 * MIB,
            5 * MIB + 1,
            10 * MB,
            64 * MB - 1,
            64 * MB,
            64 * MB + 1,
            64 * MIB - 1,
            64 * MIB,
            64 * MIB + 1,
            128 * MB - 1,
            128 * MB,
            128 * MIB,
            128 * MIB + 1,
            150 * MB,
            1024 * MIB,
            4_000_000_000 - 1,
            4_000_000_000,
        ] {
            check(ChunkPlan::for_size(size).unwrap());
        }
    }

    #[test]
    fn the_last_chunk_absorbs_the_remainder() {
        let plan = ChunkPlan::for_size(150 * MB).unwrap();
        assert_eq!((plan.chunk_size, plan.total_chunk_count), (CHUNK, 8));
        assert_eq!(plan.chunk(7), (7 * CHUNK, 150 * MB - 7 * CHUNK));
        assert_eq!(plan.chunk(7).1, 32_559_488);
        // Under 64,000,000 bytes: one chunk, whatever the reading.
        let plan = ChunkPlan::for_size(50_000_123).unwrap();
        assert_eq!((plan.chunk_size, plan.total_chunk_count), (50_000_123, 1));
        assert_eq!(
            content_range(0, 50_000_123, 50_000_123),
            "bytes 0-50000122/50000123"
        );
    }

    #[test]
    fn videos_over_4_gb_or_empty_are_refused() {
        assert_eq!(ChunkPlan::for_size(0), Err(SizeError::Empty));
        assert_eq!(
            ChunkPlan::for_size(4_000_000_001),
            Err(SizeError::TooLarge {
                size: 4_000_000_001
            })
        );
        assert!(
            ChunkPlan::for_size(4 * 1024 * MIB).is_err(),
            "4 GiB is over 4 GB"
        );
    }

    #[test]
    fn the_servers_content_range_says_where_to_resume() {
        assert_eq!(received("bytes */100", 100), Some(0));
        assert_eq!(received("bytes 0-49/100", 100), Some(50));
        assert_eq!(received("bytes 0-99/100", 100), Some(100));
        assert_eq!(received("bytes 0-49/101", 100), None, "another total");
        assert_eq!(received("bytes 10-49/100", 100), None);
        assert_eq!(received("bytes 0-100/100", 100), None);
        assert_eq!(received("junk", 100), None);
        let plan = ChunkPlan::for_size(150 * MB).unwrap();
        assert_eq!(plan.chunk_at(0), Some(0));
        assert_eq!(plan.chunk_at(3 * CHUNK), Some(3));
        assert_eq!(plan.chunk_at(3 * CHUNK + 1), None, "inside a chunk");
        assert_eq!(plan.chunk_at(150 * MB), None, "all in");
    }

    #[test]
    fn status_ids_are_read_as_strings_never_floats() {
        let data: Envelope<StatusData> = serde_json::from_str(
            r#"{"data": {"status": "PUBLISH_COMPLETE", "fail_reason": "", "publicaly_available_post_id": [7300000000000000001], "uploaded_bytes": 5},
                "error": {"code": "ok", "message": "", "logid": "x"}}"#,
        )
        .unwrap();
        assert_eq!(data.error.log_id.as_deref(), Some("x"));
        assert_eq!(
            data.data.unwrap().status().unwrap(),
            Status::Complete {
                post_ids: vec!["7300000000000000001".into()]
            }
        );
        let empty: Envelope<StatusData> =
            serde_json::from_str(r#"{"error": {"code": "access_token_invalid"}}"#).unwrap();
        assert!(empty.data.is_none());
        let inbox: StatusData =
            serde_json::from_str(r#"{"status": "SEND_TO_USER_INBOX"}"#).unwrap();
        assert_eq!(inbox.status().unwrap(), Status::InInbox);
        let odd: StatusData = serde_json::from_str(r#"{"status": "NEW_THING"}"#).unwrap();
        assert_eq!(odd.status().unwrap_err().class(), "unknown");
    }

    #[test]
    fn every_error_code_of_the_page_has_its_class() {
        let class = |status, code| classify(status, code, "", None).class();
        assert_eq!(class(400, "invalid_param"), "rejected");
        for code in CANNOT_POST_NOW {
            assert_eq!(
                class(403, code),
                "auth_expired",
                "{code} pauses the account"
            );
        }
        assert_eq!(class(200, "spam_risk_too_many_posts"), "auth_expired");
        assert_eq!(
            class(403, "unaudited_client_can_only_post_to_private_accounts"),
            "rejected"
        );
        assert_eq!(class(403, "privacy_level_option_mismatch"), "rejected");
        assert_eq!(class(401, "access_token_invalid"), "auth_expired");
        assert_eq!(class(401, "scope_not_authorized"), "auth_expired");
        assert_eq!(class(429, "rate_limit_exceeded"), "rate_limited");
        assert_eq!(
            classify(429, "rate_limit_exceeded", "", None).retry_after(),
            Some(RATE_LIMITED_WAIT)
        );
        assert_eq!(class(500, "internal_error"), "transient");
        assert_eq!(class(503, ""), "transient");
        assert_eq!(
            classify_oauth(400, "invalid_grant", "").class(),
            "auth_expired"
        );
        assert_eq!(classify_oauth(502, "server_error", "").class(), "transient");
        for reason in [
            "file_format_check_failed",
            "duration_check_failed",
            "frame_rate_check_failed",
            "picture_size_check_failed",
            "internal",
            "publish_cancelled",
            "auth_removed",
            "spam_risk_too_many_posts",
            "spam_risk_user_banned_from_posting",
            "spam_risk_text",
            "spam_risk",
            "something_new",
        ] {
            let words = fail_reason_words(reason);
            assert!(words.contains(&format!("({reason})")), "{words}");
            assert!(
                words.len() > reason.len() + 30 || reason == "something_new",
                "{words}"
            );
        }
    }

    #[test]
    fn the_title_counts_utf16_units() {
        assert!(title(&"a".repeat(2200)).is_ok());
        assert!(title(&"a".repeat(2201)).is_err());
        // 1100 emoji are 2200 units; one more is too many.
        assert!(title(&"😀".repeat(1100)).is_ok());
        assert!(title(&"😀".repeat(1101)).is_err());
    }

    #[test]
    fn bodies_have_the_pages_shape() {
        let plan = ChunkPlan::for_size(50_000_123).unwrap();
        let inbox = InitBody {
            post_info: None,
            source_info: plan.source_info(),
        };
        assert_eq!(
            serde_json::to_value(&inbox).unwrap(),
            serde_json::json!({"source_info": {"source": "FILE_UPLOAD", "video_size": 50000123, "chunk_size": 50000123, "total_chunk_count": 1}})
        );
        assert_eq!(video_type(std::path::Path::new("a.MOV")), "video/quicktime");
        assert_eq!(video_type(std::path::Path::new("a.webm")), "video/webm");
        assert_eq!(
            post_url("tiktok", "7"),
            "https://www.tiktok.com/@tiktok/video/7"
        );
    }
}
