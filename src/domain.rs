//! The words the pipeline speaks in: content hashes, protocol steps, posts and what a
//! post is made of. No HTTP or wire type appears here; the platform module translates.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// SHA-256 of a video's bytes, as 64 lower-case hex digits.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ContentHash(String);

impl ContentHash {
    /// From 32 raw digest bytes.
    pub fn from_digest(bytes: &[u8]) -> Self {
        ContentHash(base16ct::lower::encode_string(bytes))
    }

    /// From 64 hex digits (any case). `None` for anything else.
    pub fn parse(hex: &str) -> Option<Self> {
        (hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| ContentHash(hex.to_ascii_lowercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The first 12 hex digits, for log lines.
    pub fn short(&self) -> &str {
        &self.0[..12]
    }
}

impl fmt::Display for ContentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ContentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ContentHash({})", self.short())
    }
}

/// What one streamed read of a video yields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fingerprint {
    pub sha256: ContentHash,
    /// CRC-32 (IEEE) of the whole file, for the whole-file upload's `Content-CRC32`.
    pub crc32: u32,
    pub size: u64,
    /// CRC-32 of each multipart upload part, from the same pass: what every part sent
    /// must match, so the bytes uploaded are proven to be the bytes hashed.
    pub parts: PartCrcs,
}

/// The CRC-32 of each part of a file cut into parts of `part_size` bytes (the last one
/// shorter), numbered from 1 as upload parts are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartCrcs {
    /// 0: the whole file is one part.
    pub part_size: u64,
    pub crcs: Vec<u32>,
}

impl PartCrcs {
    /// The CRC-32 of part `number` (1-based), if the file has that part.
    pub fn get(&self, number: u32) -> Option<u32> {
        let index = usize::try_from(number.checked_sub(1)?).ok()?;
        self.crcs.get(index).copied()
    }
}

/// The five steps of publishing (docs/douyin-web.md §1–5), in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    Credentials,
    UploadParams,
    Upload,
    Commit,
    Publish,
}

impl Step {
    pub const ALL: [Step; 5] = [
        Step::Credentials,
        Step::UploadParams,
        Step::Upload,
        Step::Commit,
        Step::Publish,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Step::Credentials => "credentials",
            Step::UploadParams => "upload_params",
            Step::Upload => "upload",
            Step::Commit => "commit",
            Step::Publish => "publish",
        }
    }

    pub fn parse(s: &str) -> Option<Step> {
        Step::ALL.into_iter().find(|step| step.as_str() == s)
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who may see a post.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Visibility {
    #[default]
    Public,
    Private,
    Friends,
}

impl Visibility {
    pub fn as_str(self) -> &'static str {
        match self {
            Visibility::Public => "public",
            Visibility::Private => "private",
            Visibility::Friends => "friends",
        }
    }
}

/// A `#hashtag` or `@mention` inside a caption's text.
///
/// Offsets count UTF-16 code units (the platform's front end is JavaScript), `end`
/// exclusive, and the span includes the `#` or `@`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TextEntity {
    pub start: usize,
    pub end: usize,
    pub kind: EntityKind,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EntityKind {
    /// `#name`; `name` is without the `#`.
    Hashtag { name: String },
    /// `@name`; `user_id` is the id the caption's `mentions` map gives for `name`.
    Mention { name: String, user_id: String },
}

/// A collection (mix) and the post's place in it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Collection {
    pub id: String,
    pub order: u32,
}

/// Everything step 5 needs besides the committed upload: the caption, resolved.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PostDraft {
    /// The caption text as written, hashtags and mentions included.
    pub text: String,
    /// The text with every hashtag and mention removed, white space folded, trimmed.
    pub plain_text: String,
    pub entities: Vec<TextEntity>,
    /// Challenge ids of the hashtags that have one, in order of first appearance.
    pub challenge_ids: Vec<String>,
    /// User ids of the mentions, in order of appearance.
    pub mention_ids: Vec<String>,
    pub visibility: Visibility,
    pub allow_download: bool,
    /// Cover frame offset.
    pub cover_at: Duration,
    pub collection: Option<Collection>,
    /// Scheduled publish time, unix seconds; `None` publishes now.
    pub publish_at: Option<i64>,
}

/// A published post.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Post {
    pub aweme_id: String,
}

impl Post {
    /// The post's public address.
    pub fn url(&self) -> String {
        format!("https://www.douyin.com/video/{}", self.aweme_id)
    }
}
