//! The words the pipeline speaks in: content hashes, protocol steps, posts and what a
//! post is made of. No HTTP or wire type appears here; the platform module translates.

use std::borrow::Cow;
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

/// The name of one checkpointed step of a job, as the ledger, receipts and logs write it:
/// 1 to 32 characters of `a`–`z`, `0`–`9` and `_`, starting with a letter. Each backend
/// names its own steps before publishing (docs/douyin-web.md §1–4 for `douyin-web`); the
/// last step of every job, sending the post, is the pipeline's [`StepName::PUBLISH`].
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct StepName(Cow<'static, str>);

impl StepName {
    /// Sending the post: the step every backend ends with, behind the publish fence.
    pub const PUBLISH: StepName = StepName::of("publish");

    /// A backend's step name, checked when the program is compiled (a bad one does not build).
    pub const fn of(name: &'static str) -> StepName {
        assert!(
            valid_step(name.as_bytes()),
            "a step name is 1 to 32 of a-z, 0-9 and _, starting with a letter"
        );
        StepName(Cow::Borrowed(name))
    }

    /// A step name read back (ledger, receipt); `None` for anything that is not one.
    pub fn parse(name: &str) -> Option<StepName> {
        valid_step(name.as_bytes()).then(|| StepName(Cow::Owned(name.to_owned())))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

const fn valid_step(b: &[u8]) -> bool {
    if b.is_empty() || b.len() > 32 || !b[0].is_ascii_lowercase() {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if !(b[i].is_ascii_lowercase() || b[i].is_ascii_digit() || b[i] == b'_') {
            return false;
        }
        i += 1;
    }
    true
}

impl<'de> Deserialize<'de> for StepName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        StepName::parse(&s)
            .ok_or_else(|| serde::de::Error::custom(format!("`{s}` is not a step name")))
    }
}

impl fmt::Display for StepName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for StepName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StepName({})", self.0)
    }
}

impl PartialEq<str> for StepName {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for StepName {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
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

/// The platforms an account can name (`accounts.NAME.platform`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Platform {
    /// The 2020 creator web flow, with a cookie (docs/douyin-web.md).
    DouyinWeb,
    /// The Douyin creator center as it is today, through a browser session.
    Douyin,
    /// TikTok's Content Posting API, with OAuth tokens.
    Tiktok,
}

impl Platform {
    /// Every platform with its name in the config, in the order messages list them.
    pub(crate) const CHOICES: [(&'static str, Platform); 3] = [
        ("douyin-web", Platform::DouyinWeb),
        ("douyin", Platform::Douyin),
        ("tiktok", Platform::Tiktok),
    ];

    /// The platform named exactly `name`.
    pub fn parse(name: &str) -> Option<Platform> {
        Platform::CHOICES
            .into_iter()
            .find(|(n, _)| *n == name)
            .map(|(_, p)| p)
    }

    /// The name in the config (`douyin-web`, `douyin`, `tiktok`).
    pub fn as_str(self) -> &'static str {
        match self {
            Platform::DouyinWeb => "douyin-web",
            Platform::Douyin => "douyin",
            Platform::Tiktok => "tiktok",
        }
    }
}

impl Platform {
    /// The platform's name for people ("TikTok").
    pub fn brand(self) -> &'static str {
        match self {
            Platform::DouyinWeb | Platform::Douyin => "Douyin",
            Platform::Tiktok => "TikTok",
        }
    }

    /// Douyin's platforms (their posts have an `aweme_id`).
    pub fn is_douyin(self) -> bool {
        matches!(self, Platform::DouyinWeb | Platform::Douyin)
    }
}

impl Serialize for Platform {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Platform {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Platform::parse(&s)
            .ok_or_else(|| serde::de::Error::custom(format!("`{s}` is not a platform")))
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
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
    /// The post's title, where the platform has one.
    pub title: Option<String>,
    /// A cover image file, where the platform takes one (else `cover_at` picks a frame).
    pub cover_image: Option<std::path::PathBuf>,
    /// The platform's label for AI-generated content.
    pub ai_generated: bool,
    /// Douyin's self-declaration.
    pub declaration: Option<Declaration>,
    /// TikTok's own fields (`tiktok:` of the caption).
    #[serde(default)]
    pub tiktok: TiktokOptions,
}

/// TikTok's fields of a post (`tiktok: {privacy: …, allow_comment: …}`, design.md §3).
/// Interactions are off unless turned on (TikTok's rule).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TiktokOptions {
    /// Who may see the post; `None`: not chosen, which a TikTok target refuses (TikTok
    /// requires the user's own choice).
    pub privacy: Option<TiktokPrivacy>,
    pub allow_comment: bool,
    pub allow_duet: bool,
    pub allow_stitch: bool,
    /// Promoting the creator's own business.
    pub brand_organic: bool,
    /// A paid partnership.
    pub branded_content: bool,
}

/// TikTok's privacy levels, named as TikTok names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TiktokPrivacy {
    PublicToEveryone,
    MutualFollowFriends,
    FollowerOfCreator,
    SelfOnly,
}

impl TiktokPrivacy {
    /// Every level with its name in a caption.
    pub const CHOICES: [(&'static str, TiktokPrivacy); 4] = [
        ("PUBLIC_TO_EVERYONE", TiktokPrivacy::PublicToEveryone),
        ("MUTUAL_FOLLOW_FRIENDS", TiktokPrivacy::MutualFollowFriends),
        ("FOLLOWER_OF_CREATOR", TiktokPrivacy::FollowerOfCreator),
        ("SELF_ONLY", TiktokPrivacy::SelfOnly),
    ];

    pub fn as_str(self) -> &'static str {
        Self::CHOICES
            .iter()
            .find(|(_, p)| *p == self)
            .map_or("SELF_ONLY", |(n, _)| n)
    }
}

/// A creator's self-declaration about a post (`douyin: {declaration: …}`), where the
/// platform asks for one (docs/douyin-creator.md §5 `declare`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Declaration {
    /// Staged or fictional content.
    Fiction,
    /// A personal opinion, not advice.
    PersonalOpinion,
    /// Risky acts: do not imitate.
    DangerousAct,
}

impl Declaration {
    /// Every declaration with its name in a caption.
    pub const CHOICES: [(&'static str, Declaration); 3] = [
        ("fiction", Declaration::Fiction),
        ("personal_opinion", Declaration::PersonalOpinion),
        ("dangerous_act", Declaration::DangerousAct),
    ];
}

/// A post the platform made: the platform's id for it and its public address, both as the
/// backend that made it says (the pipeline never builds an address), and whether it is
/// public yet. Build one with [`Post::live`], [`Post::awaiting_moderation`] or
/// [`Post::in_creator_inbox`]; [`Post::is_well_formed`] is what the ledger checks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Post {
    /// The public post's id; while the post is not public, the id the platform gave the
    /// publish (TikTok's `publish_id`), by which the public one is looked up.
    pub id: String,
    /// The public address; empty while the post has none (see [`Post::address`]).
    pub url: String,
    /// Absent in JSON when live, so what was written before reads back the same.
    #[serde(default, skip_serializing_if = "PostState::is_live")]
    pub state: PostState,
}

impl Post {
    /// A public post with its address.
    pub fn live(id: impl Into<String>, url: impl Into<String>) -> Post {
        Post {
            id: id.into(),
            url: url.into(),
            state: PostState::Live,
        }
    }

    /// A post that exists but stays hidden until the platform's moderation ends; `reference`
    /// is the platform's id for the publish, by which its public id is looked up later.
    pub fn awaiting_moderation(reference: impl Into<String>) -> Post {
        Post::pending(reference.into(), PostState::AwaitingModeration)
    }

    /// A draft in the creator's inbox (TikTok's inbox mode): the creator finishes the post
    /// in the app, so it has no public id or address dropcast could know.
    pub fn in_creator_inbox(reference: impl Into<String>) -> Post {
        Post::pending(reference.into(), PostState::InCreatorInbox)
    }

    fn pending(id: String, state: PostState) -> Post {
        Post {
            id,
            url: String::new(),
            state,
        }
    }

    /// Its public address, when it has one.
    pub fn address(&self) -> Option<&str> {
        (self.state.is_live() && !self.url.is_empty()).then_some(self.url.as_str())
    }

    /// An id, and an address exactly when it is live.
    pub fn is_well_formed(&self) -> bool {
        !self.id.is_empty() && self.state.is_live() != self.url.is_empty()
    }
}

/// Shows the address, or in words where the post stands when it has none.
impl fmt::Display for Post {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.address(), self.state) {
            (Some(url), _) => f.write_str(url),
            (None, PostState::AwaitingModeration) => {
                f.write_str("(posted, awaiting moderation: its public address comes later)")
            }
            (None, PostState::InCreatorInbox) => {
                f.write_str("(a draft in the creator's inbox: finish the post in the app)")
            }
            (None, PostState::Live) => f.write_str("(no address)"),
        }
    }
}

/// Where a post stands on its platform. The ledger, receipts (`post_state`) and the JSON
/// views use the snake_case names.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PostState {
    /// Public, with its id and address.
    #[default]
    Live,
    /// Made, and hidden until the platform's moderation ends; its public id comes then.
    AwaitingModeration,
    /// A draft in the creator's inbox, which the creator finishes in the platform's app.
    InCreatorInbox,
}

impl PostState {
    pub const ALL: [PostState; 3] = [
        PostState::Live,
        PostState::AwaitingModeration,
        PostState::InCreatorInbox,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            PostState::Live => "live",
            PostState::AwaitingModeration => "awaiting_moderation",
            PostState::InCreatorInbox => "in_creator_inbox",
        }
    }

    pub fn parse(s: &str) -> Option<PostState> {
        PostState::ALL.into_iter().find(|state| state.as_str() == s)
    }

    pub fn is_live(&self) -> bool {
        *self == PostState::Live
    }

    /// A few words for a status line.
    pub fn describe(self) -> &'static str {
        match self {
            PostState::Live => "live",
            PostState::AwaitingModeration => "awaiting moderation",
            PostState::InCreatorInbox => "in the creator's inbox",
        }
    }

    /// What the creator should know about a post in this state (receipts, `status`);
    /// `None` when it is live.
    pub fn note(self, platform: Platform) -> Option<String> {
        let name = platform.brand();
        match self {
            PostState::Live => None,
            PostState::AwaitingModeration => Some(format!(
                "Posted. {name} gives its public id after moderation (minutes to hours); the running agent then fills in `post_id` and `url` here."
            )),
            PostState::InCreatorInbox => Some(format!(
                "A draft in the creator's {name} inbox, not a public post: open the {name} app to finish and post it. It has no public address until then."
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_names_are_short_lower_case_words() {
        for good in ["publish", "upload_params", "init2", "a"] {
            assert_eq!(StepName::parse(good).unwrap().as_str(), good);
        }
        for bad in [
            "",
            "Upload",
            "2fa",
            "up-load",
            "up load",
            "ü",
            &"a".repeat(33),
        ] {
            assert_eq!(StepName::parse(bad), None, "{bad:?}");
        }
        let back: StepName = serde_json::from_str("\"commit\"").unwrap();
        assert_eq!(back, StepName::of("commit"));
        assert!(serde_json::from_str::<StepName>("\"../x\"").is_err());
    }

    #[test]
    fn post_states_read_back_and_only_live_posts_have_an_address() {
        for state in PostState::ALL {
            assert_eq!(PostState::parse(state.as_str()), Some(state));
            assert_eq!(serde_json::to_value(state).unwrap(), state.as_str());
        }
        let live = Post::live("7", "https://example.com/7");
        assert!(live.is_well_formed());
        assert_eq!(live.address(), Some("https://example.com/7"));
        assert_eq!(live.to_string(), "https://example.com/7");
        for pending in [
            Post::awaiting_moderation("v_pub~1"),
            Post::in_creator_inbox("v_inbox~1"),
        ] {
            assert!(pending.is_well_formed(), "{pending:?}");
            assert_eq!(pending.address(), None);
            assert!(pending.to_string().starts_with('('), "{pending}");
        }
        assert!(!Post::live("7", "").is_well_formed());
        let bad = Post {
            url: "https://example.com/x".into(),
            ..Post::in_creator_inbox("x")
        };
        assert!(!bad.is_well_formed());
        assert!(!Post::awaiting_moderation("").is_well_formed());
    }

    #[test]
    fn a_live_post_serializes_as_before_and_a_pending_one_names_its_state() {
        let live = serde_json::to_value(Post::live("7", "u")).unwrap();
        assert_eq!(live, serde_json::json!({"id": "7", "url": "u"}));
        let old: Post = serde_json::from_value(live).unwrap();
        assert_eq!(old.state, PostState::Live);
        let inbox = serde_json::to_value(Post::in_creator_inbox("p")).unwrap();
        assert_eq!(inbox["state"], "in_creator_inbox");
        assert!(
            PostState::InCreatorInbox
                .note(Platform::Tiktok)
                .unwrap()
                .contains("TikTok app")
        );
        assert_eq!(PostState::Live.note(Platform::Tiktok), None);
    }

    #[test]
    fn platforms_read_back_by_their_config_names() {
        for (name, platform) in Platform::CHOICES {
            assert_eq!(Platform::parse(name), Some(platform));
            assert_eq!(serde_json::to_value(platform).unwrap(), name);
        }
        assert_eq!(Platform::parse("douyin_web"), None);
        assert!(Platform::DouyinWeb.is_douyin() && Platform::Douyin.is_douyin());
        assert!(!Platform::Tiktok.is_douyin());
    }
}
