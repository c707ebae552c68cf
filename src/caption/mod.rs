//! The caption file (`clip.yaml`, README "Caption reference"): read it, check every field, report every
//! problem with its line and column, and produce a [`Caption`] ready for step 5.
//!
//! Two stages: [`parse_fields`] turns a YAML mapping into [`CaptionFields`] (each field
//! optional, already well-formed; the config's `defaults` uses it too), then the caption's
//! fields are filled from the defaults and checked as a whole (text required, every
//! `@name` has an id, `publish_at` inside the platform's window).

pub mod text;
pub mod tiktok;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_yaml::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::domain::{
    Collection, Declaration, EntityKind, Platform, PostDraft, TextEntity, Visibility,
};
use crate::userfile::{self, UserFileError};
use crate::yaml::{Document, Node, Pos, Problem, Problems};

use self::text::RawKind;

/// Captions larger than this are refused unread.
pub(crate) const MAX_CAPTION_BYTES: u64 = 64 * 1024;

/// The earliest a scheduled post may be, from now (platform limit, docs/douyin-web.md §5).
pub(crate) const SCHEDULE_MIN_AHEAD: Duration = Duration::from_secs(2 * 3600);
/// The latest a scheduled post may be, from now (platform limit, docs/douyin-web.md §5).
pub(crate) const SCHEDULE_MAX_AHEAD: Duration = Duration::from_secs(14 * 24 * 3600);

/// The field names of a caption file (and of the config's `defaults`).
pub(crate) const FIELDS: &[&str] = &[
    "text",
    "mentions",
    "challenges",
    "visibility",
    "allow_download",
    "cover_at",
    "collection",
    "publish_at",
    "account",
    "title",
    "cover",
    "ai_generated",
    "douyin",
    "tiktok",
];

/// TikTok's limit on a post's title, which is the caption's text (docs/tiktok.md §4).
pub(crate) const TIKTOK_MAX_TITLE_UTF16: usize = 2200;

/// Douyin's limits on a post (docs/douyin-creator.md §5): title length in characters, and
/// hashtags counted as occurrences.
pub(crate) const DOUYIN_MAX_TITLE_CHARS: usize = 30;
pub(crate) const DOUYIN_MAX_HASHTAGS: usize = 5;

/// A cover image: these extensions, at most this many bytes (ours).
const COVER_EXTENSIONS: &[&str] = &["jpg", "jpeg", "png", "webp"];
const MAX_COVER_BYTES: u64 = 10 * 1024 * 1024;

/// Where a field was written, so checks made after merging with defaults can point at it.
#[derive(Clone, Debug)]
struct Origin {
    file: Option<PathBuf>,
    pos: Pos,
    field: String,
}

impl Origin {
    fn of(node: &Node<'_>) -> Origin {
        Origin {
            file: node.document().file().map(Path::to_path_buf),
            pos: node.position(),
            field: node.field(),
        }
    }

    fn problem(&self, message: impl Into<String>) -> Problem {
        Problem {
            file: self.file.clone(),
            line: self.pos.line,
            column: self.pos.column,
            field: self.field.clone(),
            message: message.into(),
        }
    }
}

/// Book-keeping that is not part of a caption's value: it never makes two
/// [`CaptionFields`] unequal.
#[derive(Clone, Debug, Default)]
struct Notes {
    origins: BTreeMap<&'static str, Origin>,
    /// Where each name of `account:` was written, in order.
    account_origins: Vec<Origin>,
    /// Mention names whose id was present but invalid (already reported).
    bad_mentions: BTreeSet<String>,
}

impl PartialEq for Notes {
    fn eq(&self, _: &Notes) -> bool {
        true
    }
}

/// Every caption field, each optional and already well-formed.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CaptionFields {
    pub text: Option<String>,
    /// `@name` → user id (digits).
    pub mentions: BTreeMap<String, String>,
    /// `#name` → challenge id (digits).
    pub challenges: BTreeMap<String, String>,
    pub visibility: Option<Visibility>,
    pub allow_download: Option<bool>,
    pub cover_at: Option<Duration>,
    pub collection: Option<Collection>,
    pub publish_at: Option<OffsetDateTime>,
    /// `account:`, one name or a list (never empty, no name twice).
    pub accounts: Option<Vec<String>>,
    pub title: Option<String>,
    /// A cover image file, resolved against the folder of the file that names it.
    pub cover: Option<PathBuf>,
    pub ai_generated: Option<bool>,
    /// `douyin: {declaration: …}`.
    pub declaration: Option<Declaration>,
    /// `tiktok: {privacy: …, …}`.
    pub tiktok: tiktok::TiktokFields,
    notes: Notes,
}

impl CaptionFields {
    /// These fields, with the ones left out taken from `defaults`. `mentions` and
    /// `challenges` are merged name by name (these fields win).
    pub fn or(self, defaults: &CaptionFields) -> CaptionFields {
        let mut notes = self.notes;
        if self.accounts.is_none() {
            notes.account_origins = defaults.notes.account_origins.clone();
        }
        for (k, v) in &defaults.notes.origins {
            notes.origins.entry(k).or_insert_with(|| v.clone());
        }
        notes
            .bad_mentions
            .extend(defaults.notes.bad_mentions.iter().cloned());
        let merge = |mine: BTreeMap<String, String>, theirs: &BTreeMap<String, String>| {
            let mut out = theirs.clone();
            out.extend(mine);
            out
        };
        // An origin must follow the value it describes.
        let text = match self.text {
            Some(t) => Some(t),
            None => {
                if let Some(o) = defaults.notes.origins.get("text") {
                    notes.origins.insert("text", o.clone());
                }
                defaults.text.clone()
            }
        };
        let publish_at = match self.publish_at {
            Some(t) => Some(t),
            None => {
                if let Some(o) = defaults.notes.origins.get("publish_at") {
                    notes.origins.insert("publish_at", o.clone());
                }
                defaults.publish_at
            }
        };
        CaptionFields {
            text,
            mentions: merge(self.mentions, &defaults.mentions),
            challenges: merge(self.challenges, &defaults.challenges),
            visibility: self.visibility.or(defaults.visibility),
            allow_download: self.allow_download.or(defaults.allow_download),
            cover_at: self.cover_at.or(defaults.cover_at),
            collection: self.collection.or_else(|| defaults.collection.clone()),
            publish_at,
            accounts: self.accounts.or_else(|| defaults.accounts.clone()),
            title: self.title.or_else(|| defaults.title.clone()),
            cover: self.cover.or_else(|| defaults.cover.clone()),
            ai_generated: self.ai_generated.or(defaults.ai_generated),
            declaration: self.declaration.or(defaults.declaration),
            tiktok: self.tiktok.or(&defaults.tiktok),
            notes,
        }
    }
}

/// A complete, checked caption.
#[derive(Clone, Debug, PartialEq)]
pub struct Caption {
    /// The text as written, hashtags and mentions included.
    pub text: String,
    /// The text without hashtags and mentions, white space folded (docs/douyin-web.md §5 `third_text`).
    pub plain_text: String,
    /// Hashtags and mentions, in order, mentions with their ids.
    pub entities: Vec<TextEntity>,
    /// Challenge ids given in the caption or the defaults, by hashtag name.
    pub challenges: BTreeMap<String, String>,
    pub visibility: Visibility,
    pub allow_download: bool,
    pub cover_at: Duration,
    pub collection: Option<Collection>,
    pub publish_at: Option<OffsetDateTime>,
    /// The accounts named by the caption or the defaults, in order, each once; empty: the
    /// config's routing decides.
    pub accounts: Vec<String>,
    /// Where each of `accounts` was written, for [`Caption::check_account`].
    account_origins: Vec<Whence>,
    /// The post's title, where the platform has one.
    pub title: Option<String>,
    pub cover: Option<PathBuf>,
    pub ai_generated: bool,
    pub declaration: Option<Declaration>,
    /// `tiktok:`, merged with the config's `defaults.tiktok`.
    pub tiktok: tiktok::TiktokFields,
    /// Where `text` and `title` were written, for [`Caption::check_for`].
    text_origin: Whence,
    title_origin: Whence,
}

/// Where a value was written; never makes two captions unequal.
#[derive(Clone, Debug, Default)]
struct Whence(Option<Origin>);

impl PartialEq for Whence {
    fn eq(&self, _: &Whence) -> bool {
        true
    }
}

impl Whence {
    /// A problem at where the value was written (line 1 when it is not known).
    fn problem(&self, field: &str, message: String) -> Problem {
        match &self.0 {
            Some(origin) => origin.problem(message),
            None => Problem {
                file: None,
                line: 1,
                column: 1,
                field: field.into(),
                message,
            },
        }
    }
}

impl Caption {
    /// Refuses an `account:` that the config does not have, pointing at where it was
    /// written, with a did-you-mean.
    pub(crate) fn check_account(&self, configured: &[&str]) -> Result<(), Problem> {
        let unknown = self
            .accounts
            .iter()
            .enumerate()
            .find(|(_, name)| !configured.contains(&name.as_str()));
        let Some((i, name)) = unknown else {
            return Ok(());
        };
        let hint = match crate::yaml::did_you_mean(name, configured) {
            Some(near) => format!(", did you mean `{near}`?"),
            None => String::new(),
        };
        let message = format!(
            "`{name}` is not configured (configured: {}){hint}",
            configured.join(", ")
        );
        let whence = self.account_origins.get(i).cloned().unwrap_or_default();
        Err(whence.problem("account", message))
    }

    /// What `platform` refuses in this caption (Douyin: a title over 30 characters, more
    /// than 5 hashtags), each pointing at where it was written.
    pub(crate) fn check_for(&self, platform: Platform) -> Result<(), Problems> {
        let mut problems = Problems::new();
        if platform == Platform::Douyin {
            if let Some(title) = &self.title {
                let chars = title.chars().count();
                if chars > DOUYIN_MAX_TITLE_CHARS {
                    problems.push(self.title_origin.problem(
                        "title",
                        format!(
                            "the title has {chars} characters; Douyin takes at most {DOUYIN_MAX_TITLE_CHARS}"
                        ),
                    ));
                }
            }
            let tags = self
                .entities
                .iter()
                .filter(|e| matches!(e.kind, EntityKind::Hashtag { .. }))
                .count();
            if tags > DOUYIN_MAX_HASHTAGS {
                problems.push(self.text_origin.problem(
                    "text",
                    format!(
                        "the text has {tags} hashtags; Douyin takes at most {DOUYIN_MAX_HASHTAGS} (each occurrence counts)"
                    ),
                ));
            }
        }
        if platform == Platform::Tiktok {
            if self.tiktok.privacy.is_none() {
                problems.push(
                    self.text_origin.problem(
                        "tiktok",
                        "a TikTok post needs `tiktok: {privacy: …}` (PUBLIC_TO_EVERYONE, \
                     MUTUAL_FOLLOW_FRIENDS, FOLLOWER_OF_CREATOR or SELF_ONLY): TikTok has no \
                     default, the creator must choose (or set `defaults.tiktok.privacy` in the \
                     config)"
                            .to_owned(),
                    ),
                );
            }
            let units = self.text.encode_utf16().count();
            if units > TIKTOK_MAX_TITLE_UTF16 {
                problems.push(self.text_origin.problem(
                    "text",
                    format!(
                        "the text is {units} UTF-16 units long; TikTok takes at most {TIKTOK_MAX_TITLE_UTF16}"
                    ),
                ));
            }
        }
        problems.into_result(())
    }

    /// The fields set in this caption that `platform` has no place for (they are left
    /// out of its post, with one log line).
    pub(crate) fn ignored_for(&self, platform: Platform) -> Vec<&'static str> {
        let mut ignored = Vec::new();
        if platform == Platform::DouyinWeb {
            if self.title.is_some() {
                ignored.push("title");
            }
            if self.cover.is_some() {
                ignored.push("cover");
            }
            if self.ai_generated {
                ignored.push("ai_generated");
            }
            if self.declaration.is_some() {
                ignored.push("douyin.declaration");
            }
        }
        if platform.is_douyin() && self.tiktok.is_set() {
            ignored.push("tiktok");
        }
        if platform == Platform::Tiktok {
            self.ignored_for_tiktok(&mut ignored);
        }
        ignored
    }

    /// What TikTok's post has no place for: its title is the text, its privacy is
    /// `tiktok.privacy`, and the API neither schedules nor takes a cover image.
    fn ignored_for_tiktok(&self, ignored: &mut Vec<&'static str>) {
        for (set, name) in [
            (self.title.is_some(), "title"),
            (self.cover.is_some(), "cover"),
            (self.declaration.is_some(), "douyin.declaration"),
            (self.collection.is_some(), "collection"),
            (self.publish_at.is_some(), "publish_at"),
            (self.allow_download, "allow_download"),
            (self.visibility != Visibility::Public, "visibility"),
        ] {
            if set {
                ignored.push(name);
            }
        }
    }

    /// The distinct hashtag names, in order of first appearance.
    pub fn hashtags(&self) -> impl Iterator<Item = &str> {
        let mut seen = BTreeSet::new();
        self.entities.iter().filter_map(move |e| match &e.kind {
            EntityKind::Hashtag { name } if seen.insert(name.as_str()) => Some(name.as_str()),
            _ => None,
        })
    }

    /// The distinct mentioned user ids, in order of first appearance.
    pub fn mention_ids(&self) -> Vec<String> {
        let mut seen = BTreeSet::new();
        self.entities
            .iter()
            .filter_map(|e| match &e.kind {
                EntityKind::Mention { user_id, .. } if seen.insert(user_id.as_str()) => {
                    Some(user_id.clone())
                }
                _ => None,
            })
            .collect()
    }

    /// The step-5 draft; `challenge_ids` are the resolved ids of [`Caption::hashtags`]
    /// that have one (given here or looked up, docs/douyin-web.md §6b).
    pub(crate) fn to_draft(&self, challenge_ids: Vec<String>) -> PostDraft {
        PostDraft {
            text: self.text.clone(),
            plain_text: self.plain_text.clone(),
            entities: self.entities.clone(),
            challenge_ids,
            mention_ids: self.mention_ids(),
            visibility: self.visibility,
            allow_download: self.allow_download,
            cover_at: self.cover_at,
            collection: self.collection.clone(),
            publish_at: self.publish_at.map(OffsetDateTime::unix_timestamp),
            title: self.title.clone(),
            cover_image: self.cover.clone(),
            ai_generated: self.ai_generated,
            declaration: self.declaration,
            tiktok: self.tiktok.options(),
        }
    }

    /// The caption of a video that has no caption file (`require_caption: false`).
    pub(crate) fn from_defaults(
        defaults: &CaptionFields,
        now: OffsetDateTime,
    ) -> Result<Caption, Problems> {
        let mut problems = Problems::new();
        let caption = build(defaults.clone(), None, now, &mut problems);
        problems.into_result(caption)
    }
}

/// Why a caption file could not be used.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CaptionError {
    #[error("cannot read caption {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: caption is {size} bytes; the limit is {MAX_CAPTION_BYTES} bytes (64 KiB)", path.display())]
    TooLarge { path: PathBuf, size: u64 },
    /// Not a regular file (a FIFO, a device, a folder), or a read that never finished.
    #[error("caption {0}")]
    Unusable(UserFileError),
    #[error("{0}")]
    Invalid(Problems),
}

impl From<UserFileError> for CaptionError {
    fn from(e: UserFileError) -> Self {
        match e {
            UserFileError::Io { path, source } => CaptionError::Read { path, source },
            UserFileError::TooLarge { path, cap } => {
                // The cap was enforced while reading; the size is only for the message.
                let size = std::fs::metadata(&path).map_or(cap + 1, |m| m.len());
                CaptionError::TooLarge { path, size }
            }
            other => CaptionError::Unusable(other),
        }
    }
}

/// Read and check a caption file, reading at most 64 KiB + 1 bytes of it, and only if
/// it is a regular file (see [`crate::userfile`]).
pub(crate) fn load_caption(
    path: &Path,
    defaults: &CaptionFields,
    require_text: bool,
    now: OffsetDateTime,
) -> Result<Caption, CaptionError> {
    let bytes = userfile::read(path, MAX_CAPTION_BYTES)?;
    caption_from_bytes(bytes, path, defaults, require_text, now)
}

/// [`load_caption`] for async code: the file is read off the async threads, with a
/// time limit.
pub(crate) async fn load_caption_async(
    path: &Path,
    defaults: &CaptionFields,
    require_text: bool,
    now: OffsetDateTime,
) -> Result<Caption, CaptionError> {
    let bytes = userfile::read_async(path.to_path_buf(), MAX_CAPTION_BYTES).await?;
    caption_from_bytes(bytes, path, defaults, require_text, now)
}

fn caption_from_bytes(
    bytes: Vec<u8>,
    path: &Path,
    defaults: &CaptionFields,
    require_text: bool,
    now: OffsetDateTime,
) -> Result<Caption, CaptionError> {
    let text = match String::from_utf8(bytes) {
        Ok(text) => text,
        Err(err) => {
            let good = &err.as_bytes()[..err.utf8_error().valid_up_to()];
            let line = good.iter().filter(|&&b| b == b'\n').count() + 1;
            let column = good.iter().rev().take_while(|&&b| b != b'\n').count() + 1;
            return Err(CaptionError::Invalid(Problems(vec![Problem {
                file: Some(path.to_path_buf()),
                line,
                column,
                field: String::new(),
                message: "the caption is not UTF-8 text".to_owned(),
            }])));
        }
    };
    parse_caption(&text, path, defaults, require_text, now).map_err(CaptionError::Invalid)
}

/// Check a caption file's text; `defaults` fill the fields it leaves out.
pub(crate) fn parse_caption(
    text: &str,
    file: &Path,
    defaults: &CaptionFields,
    require_text: bool,
    now: OffsetDateTime,
) -> Result<Caption, Problems> {
    if text.len() as u64 > MAX_CAPTION_BYTES {
        return Err(Problems(vec![Problem {
            file: Some(file.to_path_buf()),
            line: 1,
            column: 1,
            field: String::new(),
            message: format!("the caption is larger than {MAX_CAPTION_BYTES} bytes (64 KiB)"),
        }]));
    }
    let doc = Document::parse(text, Some(file))?;
    let mut problems = Problems::new();
    let fields = parse_fields(&doc.root(), &mut problems);
    let text_written = matches!(doc.value(), Value::Mapping(m) if m.contains_key("text"));
    let missing_text = (require_text && !text_written)
        .then(|| doc.problem_at_start("text", "missing required field `text`"));
    let caption = build(fields.or(defaults), missing_text, now, &mut problems);
    problems.into_result(caption)
}

/// Read a caption mapping (a caption file's top level, or the config's `defaults`) into
/// fields, reporting every malformed one. Cross-field checks happen later, once defaults
/// are merged in.
pub(crate) fn parse_fields(node: &Node<'_>, problems: &mut Problems) -> CaptionFields {
    let mut out = CaptionFields::default();
    let Some(fields) = node.fields(FIELDS, problems) else {
        return out;
    };
    if let Some(n) = fields.get("text")
        && let Some(t) = n.str(problems)
    {
        if t.trim().is_empty() {
            problems.push(n.problem("the caption text is empty"));
        } else if let Some(comment) = n.trailing_comment() {
            // YAML ends an unquoted value at ` #`: the hashtags would vanish silently.
            problems.push(n.problem(format!(
                "`{comment}` is read as a YAML comment, not as part of the text; put the \
                 whole text in quotes: text: \"{t} {comment}\""
            )));
        } else {
            out.text = Some(t.to_owned());
            out.notes.origins.insert("text", Origin::of(n));
        }
    }
    if let Some(n) = fields.get("mentions") {
        out.mentions = id_map(n, '@', &mut out.notes.bad_mentions, problems);
    }
    if let Some(n) = fields.get("challenges") {
        out.challenges = id_map(n, '#', &mut BTreeSet::new(), problems);
    }
    if let Some(n) = fields.get("visibility") {
        out.visibility = n.choice(
            &[
                ("public", Visibility::Public),
                ("private", Visibility::Private),
                ("friends", Visibility::Friends),
            ],
            problems,
        );
    }
    if let Some(n) = fields.get("allow_download") {
        out.allow_download = n.bool(problems);
    }
    if let Some(n) = fields.get("cover_at") {
        out.cover_at = duration(n, problems);
    }
    if let Some(n) = fields.get("collection") {
        out.collection = collection(n, problems);
    }
    if let Some(n) = fields.get("publish_at") {
        out.publish_at = n.parse_str("an RFC 3339 time", problems, |s| {
            OffsetDateTime::parse(s, &Rfc3339).map_err(|_| {
                format!(
                    "`{s}` is not an RFC 3339 time with an offset, \
                     like `2026-12-01T20:00:00+08:00`"
                )
            })
        });
        if out.publish_at.is_some() {
            out.notes.origins.insert("publish_at", Origin::of(n));
        }
    }
    if let Some(n) = fields.get("account") {
        account_field(n, &mut out, problems);
    }
    platform_fields(&fields, &mut out, problems);
    out
}

/// `account:`: one name, or a list of them (design.md §8), each once.
fn account_field(n: &Node<'_>, out: &mut CaptionFields, problems: &mut Problems) {
    let items = match n.value() {
        Value::Sequence(_) => n.items(problems).unwrap_or_default(),
        _ => vec![n.clone()],
    };
    if items.is_empty() {
        problems.push(n.problem("the list of accounts is empty"));
        return;
    }
    let mut names: Vec<String> = Vec::new();
    for item in items {
        let Some(name) = item.parse_str("an account name", problems, |s| {
            if s.trim().is_empty() {
                Err("the account name is empty".to_owned())
            } else {
                Ok(s.to_owned())
            }
        }) else {
            continue;
        };
        if names.contains(&name) {
            problems.push(item.problem(format!("`{name}` is listed twice")));
            continue;
        }
        out.notes.account_origins.push(Origin::of(&item));
        names.push(name);
    }
    if !names.is_empty() {
        out.accounts = Some(names);
    }
}

/// `title`, `cover`, `ai_generated` and `douyin: {declaration}`: fields some platforms have.
fn platform_fields(
    fields: &crate::yaml::Fields<'_>,
    out: &mut CaptionFields,
    problems: &mut Problems,
) {
    if let Some(n) = fields.get("title") {
        out.title = n.parse_str("a title", problems, |s| {
            if s.trim().is_empty() {
                Err("the title is empty".to_owned())
            } else {
                Ok(s.to_owned())
            }
        });
        if out.title.is_some() {
            out.notes.origins.insert("title", Origin::of(n));
        }
    }
    if let Some(n) = fields.get("cover") {
        out.cover = cover(n, problems);
    }
    if let Some(n) = fields.get("ai_generated") {
        out.ai_generated = n.bool(problems);
    }
    if let Some(n) = fields.get("douyin")
        && let Some(douyin) = n.fields(&["declaration"], problems)
        && let Some(d) = douyin.get("declaration")
    {
        out.declaration = d.choice(&Declaration::CHOICES, problems);
    }
    if let Some(n) = fields.get("tiktok") {
        out.tiktok = tiktok::parse(n, problems);
    }
}

/// `cover: cover.jpg`: an image file beside the caption (a path relative to the folder of
/// the file that names it), a regular file of a known image type and sensible size.
fn cover(node: &Node<'_>, problems: &mut Problems) -> Option<PathBuf> {
    let base = node
        .document()
        .file()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .unwrap_or_default();
    node.parse_str("an image file name", problems, |s| {
        let path = base.join(s.trim());
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .unwrap_or_default();
        if !COVER_EXTENSIONS.contains(&ext.as_str()) {
            return Err(format!(
                "`{s}` is not a cover image: use a .jpg, .jpeg, .png or .webp file"
            ));
        }
        match std::fs::symlink_metadata(&path) {
            Ok(m) if !m.is_file() => Err(format!("`{s}` is not a regular file")),
            Ok(m) if m.len() > MAX_COVER_BYTES => Err(format!(
                "`{s}` is {} bytes; a cover image may have at most {MAX_COVER_BYTES}",
                m.len()
            )),
            Ok(_) => Ok(path),
            Err(e) => Err(format!(
                "cannot read the cover image {}: {e}",
                path.display()
            )),
        }
    })
}

/// A humantime duration such as `1.5s` or `2m 30s`.
pub fn duration(node: &Node<'_>, problems: &mut Problems) -> Option<Duration> {
    match node.value() {
        Value::Number(n) => {
            problems.push(node.problem(format!(
                "expected a duration with a unit, like `{n}s`, found a bare number"
            )));
            None
        }
        _ => node.parse_str("a duration like `3s`", problems, |s| {
            humantime::parse_duration(s.trim())
                .map_err(|e| format!("`{s}` is not a duration like `1.5s` or `2m 30s` ({e})"))
        }),
    }
}

/// An id: digits, written as a string or as a YAML integer.
pub fn id(node: &Node<'_>, problems: &mut Problems) -> Option<String> {
    match node.value() {
        Value::String(s) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
            Some(s.clone())
        }
        Value::String(s) => {
            problems.push(node.problem(format!("`{s}` is not an id (an id is digits only)")));
            None
        }
        Value::Number(n) => match n.as_u64() {
            Some(u) => Some(u.to_string()),
            None if n.is_f64() => {
                problems.push(node.problem(format!(
                    "`{n}` is not exact as a YAML number; write the id as a quoted string"
                )));
                None
            }
            None => {
                problems.push(node.problem(format!("`{n}` is not an id (an id is digits only)")));
                None
            }
        },
        _ => {
            problems.push(node.wrong_type("an id (digits)"));
            None
        }
    }
}

/// `name: id` pairs; a leading `sigil` on a name is dropped (`@小明` = `小明`).
fn id_map(
    node: &Node<'_>,
    sigil: char,
    bad: &mut BTreeSet<String>,
    problems: &mut Problems,
) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for (key, value) in node.entries(problems).unwrap_or_default() {
        let name = key.strip_prefix(sigil).unwrap_or(&key).to_owned();
        if name.is_empty()
            || name
                .chars()
                .any(|c| c.is_whitespace() || c == '#' || c == '@')
        {
            problems.push(value.key_problem(format!(
                "`{key}` cannot appear in text as {sigil}name (empty, or white space, `#` or `@` inside)"
            )));
            continue;
        }
        match id(&value, problems) {
            Some(id) => {
                out.insert(name, id);
            }
            None => {
                bad.insert(name);
            }
        }
    }
    out
}

fn collection(node: &Node<'_>, problems: &mut Problems) -> Option<Collection> {
    let fields = node.fields(&["id", "order"], problems)?;
    let id = match fields.get("id") {
        Some(n) => id(n, problems),
        None => {
            problems.push(fields.missing("id"));
            None
        }
    };
    let order = match fields.get("order") {
        Some(n) => match n.u64(problems) {
            Some(0) => {
                problems.push(n.problem("the order counts from 1"));
                None
            }
            Some(o) => match u32::try_from(o) {
                Ok(o) => Some(o),
                Err(_) => {
                    problems.push(n.problem(format!("the order {o} is too large")));
                    None
                }
            },
            None => None,
        },
        None => {
            problems.push(fields.missing("order"));
            None
        }
    };
    Some(Collection {
        id: id?,
        order: order?,
    })
}

/// Merged fields → caption, with the checks that need all of them.
fn build(
    fields: CaptionFields,
    missing_text: Option<Problem>,
    now: OffsetDateTime,
    problems: &mut Problems,
) -> Caption {
    let origin = |name: &str| fields.notes.origins.get(name);
    let text = fields.text.clone().unwrap_or_default();
    if fields.text.is_none()
        && let Some(p) = missing_text
    {
        problems.push(p);
    }

    let raw = text::entities(&text);
    let plain_text = text::plain_text(&text, &raw);
    let mut missing: Vec<&str> = Vec::new();
    let mut entities = Vec::with_capacity(raw.len());
    for e in &raw {
        let kind = match e.kind {
            RawKind::Hashtag => EntityKind::Hashtag {
                name: e.name.clone(),
            },
            RawKind::Mention => match fields.mentions.get(&e.name) {
                Some(user_id) => EntityKind::Mention {
                    name: e.name.clone(),
                    user_id: user_id.clone(),
                },
                None => {
                    if !fields.notes.bad_mentions.contains(&e.name)
                        && !missing.contains(&e.name.as_str())
                    {
                        missing.push(&e.name);
                    }
                    continue;
                }
            },
        };
        entities.push(TextEntity {
            start: e.start,
            end: e.end,
            kind,
        });
    }
    if let Some(o) = origin("text") {
        for name in missing {
            problems.push(o.problem(format!(
                "`@{name}` has no user id: add `{name}: \"<id>\"` under `mentions`"
            )));
        }
    }

    if let (Some(at), Some(o)) = (fields.publish_at, origin("publish_at"))
        && let Some(msg) = schedule_problem(at, now)
    {
        problems.push(o.problem(msg));
    }

    Caption {
        text,
        plain_text,
        entities,
        challenges: fields.challenges,
        visibility: fields.visibility.unwrap_or_default(),
        allow_download: fields.allow_download.unwrap_or(false),
        cover_at: fields.cover_at.unwrap_or(Duration::ZERO),
        collection: fields.collection,
        publish_at: fields.publish_at,
        accounts: fields.accounts.unwrap_or_default(),
        account_origins: fields
            .notes
            .account_origins
            .iter()
            .map(|o| Whence(Some(o.clone())))
            .collect(),
        title: fields.title,
        cover: fields.cover,
        ai_generated: fields.ai_generated.unwrap_or(false),
        declaration: fields.declaration,
        tiktok: fields.tiktok,
        text_origin: Whence(origin("text").cloned()),
        title_origin: Whence(origin("title").cloned()),
    }
}

/// Why `at` is outside the platform's scheduling window, in `at`'s own offset.
fn schedule_problem(at: OffsetDateTime, now: OffsetDateTime) -> Option<String> {
    let earliest = now + SCHEDULE_MIN_AHEAD;
    let latest = now + SCHEDULE_MAX_AHEAD;
    if at >= earliest && at <= latest {
        return None;
    }
    let show = |t: OffsetDateTime, round_up: bool| -> String {
        let t = t.to_offset(at.offset());
        let whole = t.replace_nanosecond(0).unwrap_or(t);
        let t = if round_up && whole < t {
            whole + Duration::from_secs(1)
        } else {
            whole
        };
        t.format(&Rfc3339).unwrap_or_else(|_| t.to_string())
    };
    let when = if at < earliest {
        "too soon"
    } else {
        "too far ahead"
    };
    Some(format!(
        "{when}: a scheduled post must be between 2 hours and 14 days from now, \
         i.e. between {} and {}",
        show(earliest, true),
        show(latest, false)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-06-01 12:00 UTC);

    fn file() -> &'static Path {
        Path::new("inbox/clip.yaml")
    }

    fn ok(text: &str) -> Caption {
        parse_caption(text, file(), &CaptionFields::default(), true, NOW)
            .unwrap_or_else(|p| panic!("unexpected problems:\n{p}"))
    }

    fn bad(text: &str) -> String {
        match parse_caption(text, file(), &CaptionFields::default(), true, NOW) {
            Ok(c) => panic!("expected problems, got {c:?}"),
            Err(p) => p.to_string(),
        }
    }

    #[test]
    fn douyin_fields_read_and_reach_the_draft() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("cover.JPG"), b"\xff\xd8\xff").unwrap();
        let file = dir.path().join("clip.yaml");
        let yaml = "text: \"遇见 #音乐\"\ntitle: 遇见\ncover: cover.JPG\nai_generated: true\ndouyin: {declaration: fiction}\n";
        let c = parse_caption(yaml, &file, &CaptionFields::default(), true, NOW).unwrap();
        let draft = c.to_draft(Vec::new());
        assert_eq!(draft.title.as_deref(), Some("遇见"));
        assert_eq!(draft.cover_image, Some(dir.path().join("cover.JPG")));
        assert!(draft.ai_generated);
        assert_eq!(draft.declaration, Some(Declaration::Fiction));
        assert_eq!(
            c.ignored_for(Platform::DouyinWeb),
            ["title", "cover", "ai_generated", "douyin.declaration"]
        );
        // Regression (issue 11 item 5): a douyin caption's cover image was left out of the post.
        assert!(c.ignored_for(Platform::Douyin).is_empty());
    }

    #[test]
    fn a_cover_must_be_an_image_file_that_is_there() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("clip.yaml");
        let problems = |yaml: &str| {
            parse_caption(yaml, &file, &CaptionFields::default(), true, NOW)
                .unwrap_err()
                .to_string()
        };
        let p = problems("text: hi\ncover: cover.gif\n");
        assert!(p.contains("2:8") && p.contains("not a cover image"), "{p}");
        let p = problems("text: hi\ncover: missing.png\n");
        assert!(p.contains("cannot read the cover image"), "{p}");
        let p = problems("text: hi\ndouyin: {declaration: fictional}\n");
        assert!(p.contains("fiction"), "did-you-mean: {p}");
        let p = problems("text: hi\ndouyin: {declare: fiction}\n");
        assert!(p.contains("declaration"), "{p}");
    }

    #[test]
    fn douyin_refuses_a_long_title_and_more_than_five_hashtags_where_they_are_written() {
        let c = ok(
            "text: \"#a #b #c #d #e #a\"\ntitle: \"一二三四五六七八九十一二三四五六七八九十一二三四五六七八九十一\"\n",
        );
        let problems = c.check_for(Platform::Douyin).unwrap_err().to_string();
        assert!(
            problems.contains("clip.yaml:2:8") && problems.contains("31 characters"),
            "{problems}"
        );
        assert!(
            problems.contains("clip.yaml:1:7") && problems.contains("6 hashtags"),
            "{problems}"
        );
        // Other platforms have their own rules (douyin-web has no title and no limit).
        assert!(c.check_for(Platform::DouyinWeb).is_ok());
        let fine = ok(
            "text: \"#a #b #c #d #e\"\ntitle: \"一二三四五六七八九十一二三四五六七八九十一二三四五六七八九十\"\n",
        );
        assert!(fine.check_for(Platform::Douyin).is_ok());
    }

    // Issue 12: a TikTok target needs the creator's own privacy choice; `defaults.tiktok`
    // counts; interactions are off unless turned on; the title is ≤ 2200 UTF-16 units.
    #[test]
    fn tiktok_needs_a_privacy_and_maps_its_block() {
        let c = ok("text: hi\n");
        let p = c.check_for(Platform::Tiktok).unwrap_err().to_string();
        assert!(p.contains("tiktok: {privacy: …}"), "{p}");
        assert!(
            c.check_for(Platform::Douyin).is_ok(),
            "only TikTok needs it"
        );
        let c = ok(
            "text: hi\ntiktok: {privacy: SELF_ONLY, allow_duet: true, branded_content: true}\nai_generated: true\ncover_at: 2s\n",
        );
        assert!(c.check_for(Platform::Tiktok).is_ok());
        let d = c.to_draft(vec![]);
        assert_eq!(
            d.tiktok.privacy,
            Some(crate::domain::TiktokPrivacy::SelfOnly)
        );
        assert!(d.tiktok.allow_duet && d.tiktok.branded_content);
        assert!(!d.tiktok.allow_comment && !d.tiktok.allow_stitch && !d.tiktok.brand_organic);
        assert!(d.ai_generated);
        assert_eq!(c.ignored_for(Platform::Douyin), ["tiktok"]);
        let from_defaults = parse_caption(
            "text: hi\n",
            file(),
            &defaults("tiktok: {privacy: MUTUAL_FOLLOW_FRIENDS, allow_comment: true}\n"),
            true,
            NOW,
        )
        .unwrap();
        assert!(from_defaults.check_for(Platform::Tiktok).is_ok());
        assert!(from_defaults.to_draft(vec![]).tiktok.allow_comment);
        let long = ok(&format!(
            "text: \"{}\"\ntiktok: {{privacy: SELF_ONLY}}\n",
            "😀".repeat(1101)
        ));
        let p = long.check_for(Platform::Tiktok).unwrap_err().to_string();
        assert!(p.contains("2202 UTF-16 units"), "{p}");
        let p = bad("text: hi\ntiktok: {privacy: FRIENDS}\n");
        assert!(
            p.contains("SELF_ONLY") || p.contains("MUTUAL_FOLLOW_FRIENDS"),
            "{p}"
        );
        let c = ok("text: hi\ntitle: T\nvisibility: private\ntiktok: {privacy: SELF_ONLY}\n");
        assert_eq!(c.ignored_for(Platform::Tiktok), ["title", "visibility"]);
    }

    fn defaults(yaml: &str) -> CaptionFields {
        let doc = Document::parse(yaml, Some(Path::new("dropcast.yaml"))).expect("yaml");
        let mut problems = Problems::new();
        let fields = parse_fields(&doc.root(), &mut problems);
        assert!(problems.is_empty(), "{problems}");
        fields
    }

    #[test]
    fn design_example_parses_completely() {
        let c = ok(r#"
text: "遇见就是一种缘分 #音乐 @小明"
mentions: {小明: "84990209480"}
challenges: {音乐: "1550712576368642"}
visibility: friends
allow_download: true
cover_at: 1.5s
collection: {id: "7012345678901234567", order: 3}
publish_at: 2026-06-10T20:00:00+08:00
account: main
"#);
        assert_eq!(c.text, "遇见就是一种缘分 #音乐 @小明");
        assert_eq!(c.plain_text, "遇见就是一种缘分");
        assert_eq!(
            c.entities,
            vec![
                TextEntity {
                    start: 9,
                    end: 12,
                    kind: EntityKind::Hashtag {
                        name: "音乐".into()
                    }
                },
                TextEntity {
                    start: 13,
                    end: 16,
                    kind: EntityKind::Mention {
                        name: "小明".into(),
                        user_id: "84990209480".into()
                    }
                },
            ]
        );
        assert_eq!(
            c.challenges.get("音乐").map(String::as_str),
            Some("1550712576368642")
        );
        assert_eq!(c.visibility, Visibility::Friends);
        assert!(c.allow_download);
        assert_eq!(c.cover_at, Duration::from_millis(1500));
        assert_eq!(
            c.collection,
            Some(Collection {
                id: "7012345678901234567".into(),
                order: 3
            })
        );
        assert_eq!(c.publish_at, Some(datetime!(2026-06-10 20:00 +8)));
        assert_eq!(c.accounts, ["main"]);
        let draft = c.to_draft(vec!["1550712576368642".into()]);
        assert_eq!(
            draft.publish_at,
            Some(datetime!(2026-06-10 12:00 UTC).unix_timestamp())
        );
        assert_eq!(draft.mention_ids, vec!["84990209480".to_string()]);
        assert_eq!(draft.challenge_ids, vec!["1550712576368642".to_string()]);
    }

    #[test]
    fn minimal_caption_gets_platform_defaults() {
        let c = ok("text: hello\n");
        assert_eq!(c.visibility, Visibility::Public);
        assert!(!c.allow_download);
        assert_eq!(c.cover_at, Duration::ZERO);
        assert_eq!(c.collection, None);
        assert_eq!(c.publish_at, None);
        assert!(c.accounts.is_empty());
        assert_eq!(c.to_draft(vec![]).publish_at, None);
    }

    #[test]
    fn unquoted_text_losing_hashtags_to_a_yaml_comment_is_reported() {
        let msg = bad("text: 文件夹里的视频 #旅行 #美食\n");
        assert!(msg.contains(":1:7: text:"), "{msg}");
        assert!(
            msg.contains("`#旅行 #美食` is read as a YAML comment"),
            "{msg}"
        );
        assert!(
            msg.contains("text: \"文件夹里的视频 #旅行 #美食\""),
            "{msg}"
        );
        // Quoted, block and comment-free texts are fine; so is a comment on its own line.
        ok("text: \"文件夹里的视频 #旅行\"\n");
        ok("text: '文件夹里的视频 #旅行'\n");
        ok("text: |\n  文件夹里的视频 #旅行\n");
        ok("# a comment\ntext: 文件夹里的视频\n");
        ok("text: a#b\nchallenges: {b: \"1\"}\n");
    }

    #[test]
    fn unknown_field_reported_with_did_you_mean() {
        assert_eq!(
            bad("text: hi\nvisiblity: public\n"),
            "inbox/clip.yaml:2:1: unknown field `visiblity`, did you mean `visibility`?"
        );
    }

    #[test]
    fn mention_without_id_is_reported_at_text() {
        let msg = bad("mentions: {a: \"1\"}\ntext: hi @a @bob @bob\n");
        assert_eq!(
            msg,
            "inbox/clip.yaml:2:7: text: `@bob` has no user id: add `bob: \"<id>\"` under `mentions`"
        );
    }

    #[test]
    fn several_problems_are_reported_together_in_order() {
        let msg = bad(concat!(
            "text: 12\n",
            "visibility: pubic\n",
            "allow_download: yes\n",
            "cover_at: 2\n",
            "collection: {id: abc, order: 0}\n",
            "publish_at: tomorrow\n",
            "acount: main\n",
        ));
        let lines: Vec<&str> = msg.lines().collect();
        assert_eq!(lines.len(), 8, "{msg}");
        assert_eq!(
            lines[0],
            "inbox/clip.yaml:1:7: text: expected a string, found an integer"
        );
        assert!(
            lines[1].starts_with(
                "inbox/clip.yaml:2:13: visibility: unknown value `pubic`, did you mean `public`?"
            ),
            "{msg}"
        );
        assert!(
            lines[2].starts_with("inbox/clip.yaml:3:17: allow_download: expected true or false"),
            "{msg}"
        );
        assert!(
            lines[3].starts_with(
                "inbox/clip.yaml:4:11: cover_at: expected a duration with a unit, like `2s`"
            ),
            "{msg}"
        );
        assert!(
            lines[4].starts_with("inbox/clip.yaml:5:18: collection.id: `abc` is not an id"),
            "{msg}"
        );
        assert!(
            lines[5].starts_with("inbox/clip.yaml:5:30: collection.order: the order counts from 1"),
            "{msg}"
        );
        assert!(
            lines[6].starts_with(
                "inbox/clip.yaml:6:13: publish_at: `tomorrow` is not an RFC 3339 time"
            ),
            "{msg}"
        );
        assert!(
            lines[7].starts_with(
                "inbox/clip.yaml:7:1: unknown field `acount`, did you mean `account`?"
            ),
            "{msg}"
        );
    }

    #[test]
    fn missing_text_is_required_only_when_asked() {
        assert_eq!(
            bad("visibility: private\n"),
            "inbox/clip.yaml:1:1: text: missing required field `text`"
        );
        let c = parse_caption(
            "visibility: private\n",
            file(),
            &CaptionFields::default(),
            false,
            NOW,
        )
        .expect("text optional");
        assert_eq!(c.text, "");
        assert!(bad("text: \"  \"\n").contains("the caption text is empty"));
    }

    #[test]
    fn syntax_error_has_position() {
        let msg = bad("text: hi\nmentions: {a: 1\n");
        assert!(
            msg.starts_with("inbox/clip.yaml:3:1: invalid YAML"),
            "{msg}"
        );
    }

    #[test]
    fn ids_accept_integers_and_refuse_lossy_or_bad_ones() {
        let c = ok(
            "text: \"@a @b\"\nmentions: {a: 84990209480, b: \"7012345678901234567\"}\ncollection: {id: 7012345678901234567, order: 1}\n",
        );
        assert_eq!(
            c.mention_ids(),
            vec!["84990209480".to_string(), "7012345678901234567".to_string()]
        );
        assert_eq!(
            c.collection.map(|c| c.id).as_deref(),
            Some("7012345678901234567")
        );
        let msg = bad("text: \"@a\"\nmentions: {a: 1.5e20}\n");
        assert!(
            msg.contains("mentions.a: `150000000000000000000` is not exact")
                || msg.contains("quoted string"),
            "{msg}"
        );
        // A bad id is reported once, not again as a missing one.
        assert_eq!(msg.lines().count(), 1, "{msg}");
        let msg = bad("text: hi\nmentions: {a: -5, b: \"12a\", c: [1]}\n");
        assert_eq!(msg.lines().count(), 3, "{msg}");
    }

    #[test]
    fn sigils_on_map_names_are_dropped() {
        let c = ok("text: \"#t @u\"\nmentions: {\"@u\": \"1\"}\nchallenges: {\"#t\": \"2\"}\n");
        assert_eq!(c.mention_ids(), vec!["1".to_string()]);
        assert_eq!(c.challenges.get("t").map(String::as_str), Some("2"));
        assert!(bad("text: hi\nmentions: {\"a b\": \"1\"}\n").contains("cannot appear in text"));
    }

    #[test]
    fn publish_at_window_is_checked_in_the_captions_offset() {
        // now + 1 h: too soon; bounds shown in +08:00.
        let msg = bad("text: hi\npublish_at: 2026-06-01T21:00:00+08:00\n");
        assert_eq!(
            msg,
            "inbox/clip.yaml:2:13: publish_at: too soon: a scheduled post must be between 2 hours \
             and 14 days from now, i.e. between 2026-06-01T22:00:00+08:00 and 2026-06-15T20:00:00+08:00"
        );
        let msg = bad("text: hi\npublish_at: 2026-06-16T00:00:00Z\n");
        assert!(msg.contains("too far ahead"), "{msg}");
        assert!(msg.contains("2026-06-15T12:00:00Z"), "{msg}");
        // The edges are allowed.
        ok("text: hi\npublish_at: 2026-06-01T14:00:00Z\n");
        ok("text: hi\npublish_at: 2026-06-15T12:00:00Z\n");
        // An offset is required.
        assert!(
            bad("text: hi\npublish_at: 2026-06-05T12:00:00\n").contains("not an RFC 3339 time")
        );
    }

    #[test]
    fn cover_at_takes_fractions_and_compound_durations() {
        assert_eq!(
            ok("text: a\ncover_at: 1.5s\n").cover_at,
            Duration::from_millis(1500)
        );
        assert_eq!(
            ok("text: a\ncover_at: 250ms\n").cover_at,
            Duration::from_millis(250)
        );
        assert_eq!(
            ok("text: a\ncover_at: 1m 2s\n").cover_at,
            Duration::from_secs(62)
        );
        assert!(bad("text: a\ncover_at: soon\n").contains("cover_at: `soon` is not a duration"));
    }

    #[test]
    fn defaults_fill_and_the_caption_wins() {
        let d = defaults(
            "visibility: private\nallow_download: true\nmentions: {a: \"1\", b: \"2\"}\naccount: alt\n",
        );
        let c = parse_caption(
            "text: \"@a @b\"\nmentions: {a: \"9\"}\nvisibility: friends\n",
            file(),
            &d,
            true,
            NOW,
        )
        .expect("valid");
        assert_eq!(c.visibility, Visibility::Friends);
        assert!(c.allow_download);
        assert_eq!(c.accounts, ["alt"]);
        assert_eq!(c.mention_ids(), vec!["9".to_string(), "2".to_string()]);
    }

    #[test]
    fn problems_in_defaults_point_into_the_config() {
        let d = defaults("publish_at: 2020-01-01T00:00:00Z\n");
        let err = Caption::from_defaults(&d, NOW).expect_err("past");
        assert!(
            err.to_string()
                .starts_with("dropcast.yaml:1:13: publish_at: too soon"),
            "{err}"
        );
        let d = defaults("text: \"hi @x\"\n");
        let err = Caption::from_defaults(&d, NOW).expect_err("no id");
        assert!(
            err.to_string()
                .starts_with("dropcast.yaml:1:7: text: `@x` has no user id"),
            "{err}"
        );
        let c = Caption::from_defaults(&CaptionFields::default(), NOW).expect("empty ok");
        assert_eq!(c.text, "");
    }

    #[test]
    fn hashtags_are_distinct_and_in_order() {
        let c = ok("text: \"#b #a #b @m #c\"\nmentions: {m: \"1\"}\n");
        assert_eq!(c.hashtags().collect::<Vec<_>>(), vec!["b", "a", "c"]);
    }

    #[test]
    fn alias_bomb_caption_is_refused() {
        let mut text = String::from("text: hi\nx0: &x0 [a, a, a, a, a, a, a, a, a, a]\n");
        for i in 1..10 {
            text.push_str(&format!(
                "x{i}: &x{i} [{}]\n",
                vec![format!("*x{}", i - 1); 10].join(", ")
            ));
        }
        let msg = bad(&text);
        assert!(msg.contains("alias bomb"), "{msg}");
        assert!(msg.contains(":3:"), "blames the first alias: {msg}");
    }

    #[test]
    fn load_reads_a_real_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("clip.yaml");
        std::fs::write(&path, "text: \"#音乐 遇见就是一种缘分\"\n").expect("write");
        let c = load_caption(&path, &CaptionFields::default(), true, NOW).expect("valid");
        assert_eq!(c.entities[0].start, 0);
        assert_eq!(c.entities[0].end, 3);
        assert_eq!(c.plain_text, "遇见就是一种缘分");
    }

    #[test]
    fn load_refuses_more_than_64_kib() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("big.yaml");
        let exact = format!(
            "text: hi\n#{}\n",
            "x".repeat(MAX_CAPTION_BYTES as usize - 11)
        );
        assert_eq!(exact.len() as u64, MAX_CAPTION_BYTES);
        std::fs::write(&path, &exact).expect("write");
        load_caption(&path, &CaptionFields::default(), true, NOW).expect("exactly 64 KiB is fine");
        std::fs::write(&path, format!("{exact} ")).expect("write");
        match load_caption(&path, &CaptionFields::default(), true, NOW) {
            Err(CaptionError::TooLarge { size, .. }) => assert_eq!(size, MAX_CAPTION_BYTES + 1),
            other => panic!("expected TooLarge, got {other:?}"),
        }
    }

    #[test]
    fn load_reports_missing_file_and_bad_utf8() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("none.yaml");
        assert!(matches!(
            load_caption(&path, &CaptionFields::default(), true, NOW),
            Err(CaptionError::Read { .. })
        ));
        std::fs::write(&path, b"text: ok\nbad: \xff\n").expect("write");
        match load_caption(&path, &CaptionFields::default(), true, NOW) {
            Err(CaptionError::Invalid(p)) => {
                assert_eq!((p.0[0].line, p.0[0].column), (2, 6), "{p}");
            }
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    // Regression (issue 9 item 6): a FIFO as a caption blocked the reader forever.
    #[cfg(unix)]
    #[test]
    fn load_refuses_a_fifo_at_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("clip.yaml");
        rustix::fs::mkfifoat(
            rustix::fs::CWD,
            &path,
            rustix::fs::Mode::from_raw_mode(0o600),
        )
        .expect("mkfifo");
        let err = load_caption(&path, &CaptionFields::default(), true, NOW).unwrap_err();
        assert!(matches!(err, CaptionError::Unusable(_)), "{err:?}");
        assert!(err.to_string().contains("FIFO"), "{err}");
    }
}
