//! Every constant of the TikTok simulator in one place: the numbers TikTok documents, and
//! every (ours)/(varies) point of the protocol (cited here as "page §N": the sections of
//! docs/tiktok.md, the project's account of TikTok's page), so a reader finds each choice
//! once.

use std::time::Duration;

/// Page §1.1: a `code_verifier` is 43–128 characters…
pub(crate) const VERIFIER_LEN: std::ops::RangeInclusive<usize> = 43..=128;

/// …from `[A-Za-z0-9-._~]` (page §1.1).
pub(crate) fn verifier_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~')
}

/// The scopes the sandbox knows (page §1.2).
pub(crate) const SCOPES: &[&str] = &["user.info.basic", "video.publish", "video.upload"];

/// Page §9: an authorization code lives 10 minutes and is single-use.
pub(crate) const CODE_TTL: Duration = Duration::from_secs(600);

/// Page §1.5 (varies): the sandbox's default access token lifetime (2 h).
pub(crate) const ACCESS_TTL: Duration = Duration::from_secs(2 * 3600);

/// Page §1.5 (varies): the sandbox's default refresh token lifetime (180 days).
pub(crate) const REFRESH_TTL: Duration = Duration::from_secs(180 * 24 * 3600);

/// Page §1.7 (ours, HTTP status of OAuth errors): `invalid_client` is 401, every other
/// OAuth error (`invalid_request`, `invalid_grant`, `unsupported_grant_type`) 400.
pub(crate) const OAUTH_CLIENT_STATUS: u16 = 401;
pub(crate) const OAUTH_ERROR_STATUS: u16 = 400;

/// Page §4: an `upload_url` is valid for one hour.
pub(crate) const UPLOAD_URL_TTL: Duration = Duration::from_secs(3600);

/// Page §4: `title` is at most 2200 UTF-16 code units.
pub(crate) const TITLE_MAX_UTF16: usize = 2200;

/// Page §4: every privacy level TikTok knows.
pub(crate) const PRIVACY_LEVELS: &[&str] = &[
    "PUBLIC_TO_EVERYONE",
    "MUTUAL_FOLLOW_FRIENDS",
    "FOLLOWER_OF_CREATOR",
    "SELF_ONLY",
];

/// Page §3: what a public account is offered.
pub(crate) const PUBLIC_OPTIONS: &[&str] =
    &["PUBLIC_TO_EVERYONE", "MUTUAL_FOLLOW_FRIENDS", "SELF_ONLY"];

/// Page §3: what a private account is offered.
pub(crate) const PRIVATE_OPTIONS: &[&str] =
    &["FOLLOWER_OF_CREATOR", "MUTUAL_FOLLOW_FRIENDS", "SELF_ONLY"];

/// Page §4: the only privacy level an unaudited app may post with.
pub(crate) const UNAUDITED_PRIVACY: &str = "SELF_ONLY";

/// Page §4: an unaudited app posts for at most 5 users in 24 h; the 6th is refused.
pub(crate) const UNAUDITED_USERS_PER_DAY: usize = 5;

/// Page §5 (ours, valid under the decimal and the binary reading): the smallest chunk is
/// 5 MiB, and a video under it goes whole.
pub(crate) const MIN_CHUNK: u64 = 5 * 1024 * 1024;

/// Page §5 (ours): the largest chunk is 64,000,000 bytes, and a video of that size or more
/// is chunked (at least two chunks).
pub(crate) const MAX_CHUNK: u64 = 64_000_000;

/// Page §5: the last chunk may be up to 128 MB (ours: 128,000,000 bytes).
pub(crate) const MAX_LAST_CHUNK: u64 = 128_000_000;

/// Page §5: 1–1000 chunks.
pub(crate) const MAX_CHUNKS: u64 = 1000;

/// Page §5: a video is at most 4 GB (ours: 4,000,000,000 bytes, refused at init with
/// `invalid_param`).
pub(crate) const MAX_VIDEO_SIZE: u64 = 4_000_000_000;

/// Page §5: the `Content-Type`s a chunk may carry.
pub(crate) const CHUNK_TYPES: &[&str] = &["video/mp4", "video/quicktime", "video/webm"];

/// Page §5: at most 10 minutes through the API, whatever the creator's maximum.
pub(crate) const API_MAX_DURATION_SEC: u32 = 600;

/// Page §5: 23–60 fps (ours: ±0.01 so 59.94 and 23.976 pass).
pub(crate) const FPS: (f64, f64) = (23.0, 60.0);
pub(crate) const FPS_SLACK: f64 = 0.01;

/// Page §5: each side 360–4096 px.
pub(crate) const SIDE_PX: std::ops::RangeInclusive<u32> = 360..=4096;

/// Page §5: the codecs allowed, as MP4 sample entry types (H.264, H.265, VP8, VP9).
pub(crate) const CODECS: &[&[u8; 4]] = &[b"avc1", b"avc3", b"hvc1", b"hev1", b"vp08", b"vp09"];

/// Page §7: per access token, in a one-minute sliding window.
pub(crate) const RATE_WINDOW: Duration = Duration::from_secs(60);
pub(crate) const INIT_PER_MIN: usize = 6;
pub(crate) const CREATOR_INFO_PER_MIN: usize = 20;
pub(crate) const STATUS_PER_MIN: usize = 30;

/// Page §7: daily caps, over a sliding 24 h (ours: every accepted init counts, whatever
/// became of it; an inbox share is pending until it fails).
pub(crate) const DAY: Duration = Duration::from_secs(24 * 3600);
pub(crate) const DIRECT_POSTS_PER_DAY: usize = 15;
pub(crate) const PENDING_INBOX_PER_DAY: usize = 5;

/// Page §6 (ours): processing after the last byte, and moderation after processing,
/// before the public id appears; defaults of `TiktokOptions`.
pub(crate) const PROCESSING: Duration = Duration::from_secs(1);
pub(crate) const MODERATION: Duration = Duration::from_secs(60);

/// Page §6 (ours): an upload whose `upload_url` expired before every byte arrived is
/// `FAILED` with this reason (a new init is then allowed, page §8).
pub(crate) const EXPIRED_UPLOAD_REASON: &str = "internal";

/// Page §6: the public address of a post (ours).
pub(crate) fn post_url(username: &str, post_id: &str) -> String {
    format!("https://www.tiktok.com/@{username}/video/{post_id}")
}

/// Page §2: success is `error.code == "ok"`.
pub(crate) const OK: &str = "ok";

/// Page §3 (ours): creator_info's max duration for the default accounts (the doc's example).
pub(crate) const DEFAULT_MAX_DURATION_SEC: u32 = 300;
