//! The JSON receipts archived beside each video (README "Folder rules"): what was published,
//! why a job failed, which earlier post a duplicate repeats.
//!
//! Times are RFC 3339 in UTC. No receipt type has a field that could hold a secret.

use std::fmt;
use std::path::Path;
use std::time::SystemTime;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, UtcOffset};

use crate::domain::{
    Collection, ContentHash, EntityKind, Platform, Post, PostDraft, PostState, StepName, Visibility,
};
use crate::ledger::JobRecord;

/// A point in time that is always UTC and (de)serializes as RFC 3339.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UtcTime(OffsetDateTime);

impl UtcTime {
    pub fn now() -> UtcTime {
        UtcTime(OffsetDateTime::now_utc())
    }

    /// `None` for seconds outside the years ±9999.
    pub fn from_unix(secs: i64) -> Option<UtcTime> {
        OffsetDateTime::from_unix_timestamp(secs).ok().map(UtcTime)
    }

    pub fn offset_date_time(self) -> OffsetDateTime {
        self.0
    }

    pub(crate) fn to_rfc3339(self) -> String {
        // Formatting a UTC time whose year has four digits cannot fail; the fallback
        // keeps this total anyway.
        self.0
            .format(&Rfc3339)
            .unwrap_or_else(|_| self.0.unix_timestamp().to_string())
    }
}

impl From<SystemTime> for UtcTime {
    fn from(t: SystemTime) -> UtcTime {
        UtcTime(OffsetDateTime::from(t).to_offset(UtcOffset::UTC))
    }
}

impl From<OffsetDateTime> for UtcTime {
    fn from(t: OffsetDateTime) -> UtcTime {
        UtcTime(t.to_offset(UtcOffset::UTC))
    }
}

impl fmt::Display for UtcTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

impl fmt::Debug for UtcTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "UtcTime({self})")
    }
}

impl Serialize for UtcTime {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let text = self.0.format(&Rfc3339).map_err(serde::ser::Error::custom)?;
        s.serialize_str(&text)
    }
}

impl<'de> Deserialize<'de> for UtcTime {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<UtcTime, D::Error> {
        let text = String::deserialize(d)?;
        OffsetDateTime::parse(&text, &Rfc3339)
            .map(UtcTime::from)
            .map_err(serde::de::Error::custom)
    }
}

/// The largest receipt [`rewrite_post`] reads.
const REWRITE_LIMIT: u64 = 1 << 20;

/// Rewrites the published receipt at `path` whose post `pending` (of `account`) is now
/// `now`: `post_id`, `url` (and `aweme_id` where there), `post_state` and `note` take the
/// new values, at the top level and in the `targets` entry of `account` if the receipt has
/// one. Every other field is kept as it is, known to this version or not. Returns `false`,
/// touching nothing, when the receipt does not name `pending` (already rewritten, or not
/// this post's). Atomic: a temporary file beside it, fsync, rename over it, fsync of the
/// folder, so the receipt is never missing or half-written.
pub(crate) fn rewrite_post(
    path: &Path,
    account: &str,
    pending: &Post,
    now: &Post,
    note: Option<&str>,
) -> std::io::Result<bool> {
    use serde_json::{Map, Value};
    let meta = std::fs::symlink_metadata(path)?;
    if !meta.is_file() || meta.len() > REWRITE_LIMIT {
        return Err(std::io::Error::other("not a receipt file"));
    }
    let mut receipt: Map<String, Value> = serde_json::from_slice(&std::fs::read(path)?)?;
    let names = |o: &Map<String, Value>| {
        o.get("post_id").and_then(Value::as_str) == Some(pending.id.as_str())
            && o.get("account").and_then(Value::as_str) == Some(account)
    };
    let set = |o: &mut Map<String, Value>| {
        o.insert("post_id".into(), now.id.clone().into());
        o.insert("url".into(), now.url.clone().into());
        if o.contains_key("aweme_id") {
            o.insert("aweme_id".into(), now.id.clone().into());
        }
        match now.state {
            PostState::Live => o.remove("post_state"),
            state => o.insert("post_state".into(), state.as_str().into()),
        };
        match note {
            Some(note) => o.insert("note".into(), note.into()),
            None => o.remove("note"),
        };
    };
    // A drop to one account names the post at the top and in `targets`; a drop to
    // several, in `targets` only.
    let mut changed = names(&receipt);
    if changed {
        set(&mut receipt);
    }
    if let Some(Value::Array(targets)) = receipt.get_mut("targets") {
        for target in targets.iter_mut().filter_map(Value::as_object_mut) {
            if names(target) {
                set(target);
                changed = true;
            }
        }
    }
    if !changed {
        return Ok(false);
    }
    let mut text = serde_json::to_string_pretty(&receipt)?;
    text.push('\n');
    replace_file(path, text.as_bytes())?;
    Ok(true)
}

/// Replaces `path` with `bytes` atomically: a temporary file in its folder, fsync, rename,
/// fsync of the folder.
fn replace_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .prefix(".dropcast-receipt-")
        .tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    #[cfg(unix)]
    std::fs::File::open(dir)?.sync_all()?;
    Ok(())
}

/// A path as receipts show it: lossy UTF-8, `/`-separated (on Windows too: `C:\in\a.mp4`
/// shows as `C:/in/a.mp4`).
pub(crate) fn file_label(path: &Path) -> String {
    path.components()
        .map(|c| match c {
            // Its own separator (`\` on Windows) is the joining `/`.
            std::path::Component::RootDir => "".into(),
            c => c.as_os_str().to_string_lossy(),
        })
        .collect::<Vec<_>>()
        .join("/")
        .replace("//", "/")
}

/// A Douyin post's id under the name receipts have always given it (`aweme_id`), so that
/// scripts written for Douyin keep working; `None` for other platforms.
fn aweme_id(platform: Platform, post_id: &str) -> Option<String> {
    platform.is_douyin().then(|| post_id.to_string())
}

/// The `aweme_id` field of `status --json`, `history --json` and `/api/jobs`: there (the
/// post's id, or null before it is known) for Douyin's platforms, absent for the others.
pub(crate) fn aweme_id_field(
    platform: Platform,
    post_id: Option<&String>,
) -> Option<Option<String>> {
    platform.is_douyin().then(|| post_id.cloned())
}

/// The media id a backend recorded for the upload (`vid` in douyin-web's records).
fn media_id(job: &JobRecord) -> String {
    job.steps
        .iter()
        .filter_map(|(_, s)| s.result.get("vid").and_then(serde_json::Value::as_str))
        .last()
        .unwrap_or_default()
        .to_string()
}

/// `done/…/<stem>.receipt.json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublishedReceipt {
    pub sha256: ContentHash,
    pub account: String,
    /// The video's original path relative to the inbox.
    pub file: String,
    pub platform: Platform,
    /// The platform's id of the uploaded media.
    pub vid: String,
    pub post_id: String,
    /// Douyin accounts only: the post id, under its old name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aweme_id: Option<String>,
    pub url: String,
    pub caption: CaptionAsSent,
    pub publish_at: Option<UtcTime>,
    pub steps: Vec<StepTime>,
    pub attempts: u32,
    pub(crate) published_at: UtcTime,
    /// The cover image posted with it, where the platform took one (`douyin`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cover: Option<CoverSent>,
    /// Where the post stands when it is not public yet (`awaiting_moderation`: `post_id` is
    /// the platform's reference and `url` empty until the agent fills them in;
    /// `in_creator_inbox`: a draft the creator finishes in the app). Absent when live.
    #[serde(default, skip_serializing_if = "PostState::is_live")]
    pub post_state: PostState,
    /// What the creator should know about the post, in words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// A cover image as it was uploaded: the file's name and SHA-256, and the platform's id
/// for it. The file itself stays where the caption named it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CoverSent {
    pub file: String,
    pub sha256: String,
    pub uri: String,
}

/// The cover a backend recorded for the upload (`cover_uri`, `cover_sha256` and
/// `cover_file` in douyin's `cover` record), if one went up.
fn cover_of(job: &JobRecord) -> Option<CoverSent> {
    job.steps.iter().find_map(|(_, s)| {
        let field = |name: &str| s.result.get(name)?.as_str().map(str::to_owned);
        Some(CoverSent {
            uri: field("cover_uri")?,
            sha256: field("cover_sha256")?,
            file: field("cover_file").unwrap_or_default(),
        })
    })
}

impl PublishedReceipt {
    /// The receipt for a published job, with the caption as it was sent.
    pub fn new(job: &JobRecord, draft: &PostDraft, post: &crate::domain::Post) -> Self {
        let caption = CaptionAsSent::from(draft);
        PublishedReceipt {
            sha256: job.sha256.clone(),
            account: job.account.clone(),
            file: file_label(&job.video),
            platform: job.platform,
            vid: media_id(job),
            post_id: post.id.clone(),
            aweme_id: aweme_id(job.platform, &post.id),
            url: post.url.clone(),
            publish_at: caption.publish_at,
            caption,
            steps: steps_of(job),
            attempts: job.attempts,
            cover: cover_of(job),
            post_state: post.state,
            note: post.state.note(job.platform),
            published_at: job
                .steps
                .get(&StepName::PUBLISH)
                .map(|s| UtcTime::from(s.at))
                .unwrap_or_else(UtcTime::now),
        }
    }
}

impl FailureReceipt {
    /// The receipt for a failed job (`job` is `None` for a file that was never hashed).
    pub fn new(
        job: Option<&JobRecord>,
        file: &Path,
        step: Option<StepName>,
        class: &str,
        reason: &str,
        hint: &str,
    ) -> Self {
        FailureReceipt {
            sha256: job.map(|j| j.sha256.clone()),
            account: job.map(|j| j.account.clone()).unwrap_or_default(),
            platform: job.map(|j| j.platform),
            file: file_label(file),
            step,
            class: class.to_string(),
            reason: reason.to_string(),
            hint: hint.to_string(),
            failed_at: UtcTime::now(),
        }
    }
}

/// The caption as step 5 sent it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaptionAsSent {
    pub text: String,
    pub text_extra: Vec<SentEntity>,
    pub challenges: Vec<String>,
    pub mentions: Vec<String>,
    pub visibility: Visibility,
    pub allow_download: bool,
    pub(crate) cover_at_ms: u64,
    pub collection: Option<Collection>,
    pub publish_at: Option<UtcTime>,
}

impl From<&PostDraft> for CaptionAsSent {
    fn from(draft: &PostDraft) -> CaptionAsSent {
        CaptionAsSent {
            text: draft.text.clone(),
            text_extra: draft
                .entities
                .iter()
                .map(|e| SentEntity {
                    start: e.start,
                    end: e.end,
                    kind: e.kind.clone(),
                })
                .collect(),
            challenges: draft.challenge_ids.clone(),
            mentions: draft.mention_ids.clone(),
            visibility: draft.visibility,
            allow_download: draft.allow_download,
            cover_at_ms: u64::try_from(draft.cover_at.as_millis()).unwrap_or(u64::MAX),
            collection: draft.collection.clone(),
            // A draft's time came from an RFC 3339 caption, so it is in range.
            publish_at: draft.publish_at.and_then(UtcTime::from_unix),
        }
    }
}

/// One hashtag or mention: `{"start": 0, "end": 3, "type": "hashtag", "name": "音乐"}`
/// (UTF-16 offsets, as sent).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SentEntity {
    pub start: usize,
    pub end: usize,
    #[serde(flatten)]
    pub kind: EntityKind,
}

/// When a protocol step finished.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepTime {
    pub step: StepName,
    pub at: UtcTime,
}

/// The finished steps of a job, in protocol order.
pub(crate) fn steps_of(job: &JobRecord) -> Vec<StepTime> {
    job.steps
        .iter()
        .map(|(step, record)| StepTime {
            step: step.clone(),
            at: UtcTime::from(record.at),
        })
        .collect()
}

/// `failed/…/<stem>.error.json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailureReceipt {
    /// Absent for a file that could not be hashed.
    pub sha256: Option<ContentHash>,
    pub account: String,
    /// The account's platform, where a job names it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    pub file: String,
    pub step: Option<StepName>,
    pub class: String,
    pub reason: String,
    /// What the user can do about it.
    pub hint: String,
    pub failed_at: UtcTime,
}

/// `duplicates/…/<stem>.receipt.json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct DuplicateReceipt {
    pub sha256: ContentHash,
    pub account: String,
    /// The account's platform (absent in receipts written before it was recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    pub file: String,
    pub earlier: EarlierPost,
    pub(crate) detected_at: UtcTime,
}

/// The job a duplicate repeats. Its post fields are null while it is still in flight.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct EarlierPost {
    pub platform: Platform,
    pub post_id: Option<String>,
    /// Douyin accounts only: the post id, under its old name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aweme_id: Option<String>,
    pub url: Option<String>,
    pub file: String,
    pub(crate) published_at: Option<UtcTime>,
}

impl DuplicateReceipt {
    /// The receipt for `duplicate` (the new job), naming `earlier` (from
    /// `Claim::Duplicate`).
    pub fn new(duplicate: &JobRecord, earlier: &JobRecord, detected_at: UtcTime) -> Self {
        let published_at = earlier.post.as_ref().map(|_| {
            earlier
                .steps
                .get(&StepName::PUBLISH)
                .map(|s| s.at)
                .unwrap_or(earlier.updated_at)
                .into()
        });
        DuplicateReceipt {
            sha256: duplicate.sha256.clone(),
            account: duplicate.account.clone(),
            platform: Some(duplicate.platform),
            file: file_label(&duplicate.video),
            earlier: EarlierPost {
                platform: earlier.platform,
                post_id: earlier.post.as_ref().map(|p| p.id.clone()),
                aweme_id: earlier
                    .post
                    .as_ref()
                    .and_then(|p| aweme_id(earlier.platform, &p.id)),
                url: earlier
                    .post
                    .as_ref()
                    .and_then(|p| p.address().map(str::to_owned)),
                file: file_label(&earlier.video),
                published_at,
            },
            detected_at,
        }
    }
}

/// How one target of a bundle ended, as its entry in a receipt's `targets`: that
/// target's own receipt with `outcome` beside its fields.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub(crate) enum TargetReceipt {
    Published(Box<PublishedReceipt>),
    Duplicate(DuplicateReceipt),
    Failed(FailureReceipt),
}

impl TargetReceipt {
    fn outcome(&self) -> &'static str {
        match self {
            TargetReceipt::Published(_) => "published",
            TargetReceipt::Duplicate(_) => "duplicate",
            TargetReceipt::Failed(_) => "failed",
        }
    }
}

/// Where a bundle goes once every target ended (design.md §8): `published` (done/) when
/// any target posted, else `duplicate` when every one was a duplicate, else `failed`.
pub(crate) fn bundle_outcome(targets: &[TargetReceipt]) -> &'static str {
    let all = |o: &str| targets.iter().all(|t| t.outcome() == o);
    if targets.iter().any(|t| t.outcome() == "published") {
        "published"
    } else if !targets.is_empty() && all("duplicate") {
        "duplicate"
    } else {
        "failed"
    }
}

/// Puts `entries` into the receipt at `path` (a drop's target re-run where the drop lies),
/// each replacing the entry of its account, and the drop's outcome anew; the file is
/// replaced at once (a temporary file renamed over it), never left half written.
pub(crate) fn update_targets(path: &Path, entries: &[TargetReceipt]) -> std::io::Result<()> {
    let invalid = |why: String| std::io::Error::new(std::io::ErrorKind::InvalidData, why);
    let meta = std::fs::symlink_metadata(path)?;
    if !meta.is_file() || meta.len() > REWRITE_LIMIT {
        return Err(invalid("not a receipt file".into()));
    }
    let text = std::fs::read(path)?;
    let mut top: serde_json::Value =
        serde_json::from_slice(&text).map_err(|e| invalid(format!("not a receipt: {e}")))?;
    let mut list = top["targets"]
        .as_array()
        .cloned()
        .ok_or_else(|| invalid("the receipt has no `targets`".into()))?;
    for entry in entries {
        let mut value = serde_json::to_value(entry).map_err(|e| invalid(e.to_string()))?;
        let account = value["account"].clone();
        match list.iter_mut().find(|t| t["account"] == account) {
            Some(slot) => {
                // The drop's file as it was in the inbox, not where it lies now.
                if let Some(file) = slot.get("file").cloned() {
                    value["file"] = file;
                }
                *slot = value;
            }
            None => list.push(value),
        }
    }
    let outcomes: Vec<&str> = list.iter().filter_map(|t| t["outcome"].as_str()).collect();
    let outcome = if outcomes.contains(&"published") {
        "published"
    } else if !outcomes.is_empty() && outcomes.iter().all(|o| *o == "duplicate") {
        "duplicate"
    } else {
        "failed"
    };
    let single = list.len() == 1;
    let mut top = if single { list[0].clone() } else { top.take() };
    top["outcome"] = outcome.into();
    top["targets"] = list.into();
    let mut bytes = serde_json::to_vec_pretty(&top).map_err(|e| invalid(e.to_string()))?;
    bytes.push(b'\n');
    replace_file(path, &bytes)
}

/// The receipt of a bundle whose targets all ended (design.md §6): every receipt has
/// `targets`; with one target, that target's fields also stand at the top level as they
/// always did; with several, the top level holds the video's hash and file and the
/// bundle's `outcome` (the folder it went to: published when any target posted).
pub(crate) fn bundle_receipt(
    sha256: &ContentHash,
    file: &Path,
    targets: &[TargetReceipt],
) -> Result<serde_json::Value, serde_json::Error> {
    let list = serde_json::to_value(targets)?;
    if let [one] = targets {
        let mut top = serde_json::to_value(one)?;
        if let Some(map) = top.as_object_mut() {
            map.insert("targets".into(), list);
        }
        return Ok(top);
    }
    Ok(serde_json::json!({
        "sha256": sha256,
        "file": file_label(file),
        "outcome": bundle_outcome(targets),
        "targets": list,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::TextEntity;
    use crate::ledger::{JobState, StepRecord};
    use serde_json::{Value, json};
    use std::path::PathBuf;
    use std::time::{Duration, UNIX_EPOCH};

    fn hash() -> ContentHash {
        ContentHash::from_digest(&[0xab; 32])
    }

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
                id: "7012345678901234567".into(),
                order: 3,
            }),
            // 2026-12-01T20:00:00+08:00
            publish_at: Some(1_796_126_400),
            title: None,
            cover_image: None,
            ai_generated: false,
            declaration: None,
            tiktok: Default::default(),
        }
    }

    fn job(id: i64, video: &str, aweme: Option<&str>) -> JobRecord {
        let at = UNIX_EPOCH + Duration::from_millis(1_700_000_000_250);
        let mut steps = vec![(
            StepName::of("credentials"),
            StepRecord {
                at,
                result: json!({}),
            },
        )];
        if aweme.is_some() {
            steps.push((
                StepName::PUBLISH,
                StepRecord {
                    at: at + Duration::from_secs(60),
                    result: json!({}),
                },
            ));
        }
        JobRecord {
            id,
            sha256: hash(),
            account: "main".into(),
            platform: Platform::DouyinWeb,
            state: if aweme.is_some() {
                JobState::Done
            } else {
                JobState::Active
            },
            video: PathBuf::from(video),
            caption: None,
            size: 1,
            steps: steps.into_iter().collect(),
            publish_sent_at: None,
            publish_sent_by: None,
            post: aweme.map(crate::platform::douyin_post),
            error: None,
            duplicate_of: None,
            archived_to: None,
            attempts: 1,
            created_at: at,
            updated_at: at,
            publish_at: None,
            lease: Default::default(),
        }
    }

    /// Every object key anywhere in `value`.
    fn keys(value: &Value, out: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                for (k, v) in map {
                    out.push(k.clone());
                    keys(v, out);
                }
            }
            Value::Array(items) => items.iter().for_each(|v| keys(v, out)),
            _ => {}
        }
    }

    fn assert_no_secret_keys(value: &Value) {
        let mut all = Vec::new();
        keys(value, &mut all);
        for k in all {
            assert!(
                !["auth", "tos_sign", "token", "cookie", "ak", "csrf_token"].contains(&k.as_str()),
                "secret-looking key {k}"
            );
        }
    }

    // Regression (issue 11 item 5): a douyin post's cover image must be named in its receipt (file, SHA-256, uri).
    #[test]
    fn a_recorded_cover_is_in_the_receipt_and_no_cover_leaves_it_out() {
        let mut with = job(3, "c.mp4", Some("7300"));
        let record = json!({"cover_uri": "tos-cn-i-x/c", "width": 720, "height": 1280,
            "cover_sha256": "ab12", "cover_bytes": 9, "cover_file": "cover.png"});
        let mut steps: Vec<_> = with
            .steps
            .iter()
            .map(|(s, r)| (s.clone(), r.clone()))
            .collect();
        let at = UNIX_EPOCH + Duration::from_secs(1_700_000_050);
        steps.insert(
            1,
            (StepName::of("cover"), StepRecord { at, result: record }),
        );
        with.steps = steps.into_iter().collect();
        let post = with.post.clone().unwrap();
        let value = serde_json::to_value(PublishedReceipt::new(&with, &draft(), &post)).unwrap();
        assert_eq!(
            value["cover"],
            json!({"file": "cover.png", "sha256": "ab12", "uri": "tos-cn-i-x/c"})
        );
        let without = job(4, "d.mp4", Some("7400"));
        let post = without.post.clone().unwrap();
        let value = serde_json::to_value(PublishedReceipt::new(&without, &draft(), &post)).unwrap();
        assert!(value.get("cover").is_none(), "{value}");
    }

    // Pins the defect that an absolute Windows path showed as `C:/\/in/a.mp4` (the root's
    // own `\` kept between two `/`); that line runs on Windows only, the rest pins the unix
    // labels as they were.
    #[test]
    fn file_labels_join_with_one_slash() {
        assert_eq!(file_label(Path::new("job1/clip.mp4")), "job1/clip.mp4");
        assert_eq!(file_label(Path::new("/srv/in/a.mp4")), "/srv/in/a.mp4");
        #[cfg(windows)]
        assert_eq!(file_label(Path::new(r"C:\in\sub\a.mp4")), "C:/in/sub/a.mp4");
    }

    #[test]
    fn published_receipt_shape_and_round_trip() {
        let earlier = job(1, "job1/clip.mp4", Some("7100"));
        let receipt = PublishedReceipt {
            sha256: hash(),
            account: "main".into(),
            file: file_label(Path::new("job1/clip.mp4")),
            platform: Platform::DouyinWeb,
            vid: "v0200f".into(),
            post_id: "7100".into(),
            aweme_id: Some("7100".into()),
            url: "https://www.douyin.com/video/7100".into(),
            caption: CaptionAsSent::from(&draft()),
            publish_at: draft().publish_at.and_then(UtcTime::from_unix),
            steps: steps_of(&earlier),
            attempts: 2,
            published_at: UtcTime::from(UNIX_EPOCH + Duration::from_secs(1_700_000_100)),
            cover: None,
            post_state: PostState::Live,
            note: None,
        };
        let text = serde_json::to_string_pretty(&receipt).unwrap();
        let value: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value["url"], "https://www.douyin.com/video/7100");
        assert_eq!(value["file"], "job1/clip.mp4");
        assert_eq!(value["publish_at"], "2026-12-01T12:00:00Z");
        assert_eq!(value["caption"]["publish_at"], "2026-12-01T12:00:00Z");
        assert_eq!(value["published_at"], "2023-11-14T22:15:00Z");
        assert_eq!(value["caption"]["cover_at_ms"], 1500);
        assert_eq!(value["caption"]["visibility"], "friends");
        assert_eq!(
            value["caption"]["text_extra"][0],
            json!({"start": 0, "end": 3, "type": "hashtag", "name": "音乐"})
        );
        assert_eq!(value["caption"]["text_extra"][1]["user_id"], "84990209480");
        assert_eq!(
            value["steps"],
            json!([
                {"step": "credentials", "at": "2023-11-14T22:13:20.25Z"},
                {"step": "publish", "at": "2023-11-14T22:14:20.25Z"}
            ])
        );
        assert_no_secret_keys(&value);
        let back: PublishedReceipt = serde_json::from_str(&text).unwrap();
        assert_eq!(back, receipt);
    }

    #[test]
    fn a_pending_post_names_its_state_and_note_and_a_live_one_neither() {
        let mut pending = job(5, "e.mp4", None);
        pending.platform = Platform::Tiktok;
        for (post, state) in [
            (Post::in_creator_inbox("v_inbox~1"), "in_creator_inbox"),
            (Post::awaiting_moderation("v_pub~1"), "awaiting_moderation"),
        ] {
            let value =
                serde_json::to_value(PublishedReceipt::new(&pending, &draft(), &post)).unwrap();
            assert_eq!(value["post_state"], state);
            assert_eq!(value["url"], "");
            assert!(
                value["note"].as_str().unwrap().contains("TikTok"),
                "{value}"
            );
            let back: PublishedReceipt = serde_json::from_value(value).unwrap();
            assert_eq!(back.post_state, post.state);
        }
        let live = job(6, "f.mp4", Some("7600"));
        let post = live.post.clone().unwrap();
        let value = serde_json::to_value(PublishedReceipt::new(&live, &draft(), &post)).unwrap();
        assert!(value.get("post_state").is_none() && value.get("note").is_none());
    }

    #[test]
    fn rewriting_a_receipt_fills_in_the_public_post_and_keeps_every_other_field() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("clip.receipt.json");
        let pending = Post::awaiting_moderation("v_pub~1");
        let before = json!({"sha256": "x", "account": "global", "post_id": "v_pub~1", "url": "",
            "post_state": "awaiting_moderation", "note": "wait", "future_field": [1, 2],
            "targets": [{"account": "global", "post_id": "v_pub~1", "url": ""},
                        {"account": "studio", "post_id": "7300", "url": "https://d/7300"}]});
        std::fs::write(&path, serde_json::to_vec(&before).unwrap()).unwrap();
        let public = Post::live("7301", "https://www.tiktok.com/@cat/video/7301");
        let done = rewrite_post(&path, "global", &pending, &public, Some("public since")).unwrap();
        assert!(done);
        let after: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(after["post_id"], "7301");
        assert_eq!(after["url"], "https://www.tiktok.com/@cat/video/7301");
        assert!(after.get("post_state").is_none());
        assert_eq!(after["note"], "public since");
        assert_eq!(after["future_field"], json!([1, 2]));
        assert_eq!(after["targets"][0]["post_id"], "7301");
        assert_eq!(after["targets"][1], before["targets"][1]);
        // Already rewritten: nothing is touched again, and no temporary file is left.
        assert!(!rewrite_post(&path, "global", &pending, &public, None).unwrap());
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1);

        // A drop to several accounts names its posts in `targets` only: the entry is
        // filled in all the same (it was left pending when only the top level counted).
        let several = json!({"sha256": "x", "file": "clip.mp4", "outcome": "published",
            "targets": [{"account": "studio", "post_id": "7300", "url": "https://d/7300"},
                        {"account": "global", "post_id": "v_pub~1", "url": "",
                         "post_state": "awaiting_moderation"}]});
        std::fs::write(&path, serde_json::to_vec(&several).unwrap()).unwrap();
        assert!(rewrite_post(&path, "global", &pending, &public, None).unwrap());
        let after: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(after["targets"][1]["post_id"], "7301");
        assert!(after["targets"][1].get("post_state").is_none());
        assert!(after.get("post_id").is_none(), "{after}");
        assert_eq!(after["targets"][0], several["targets"][0]);
    }

    #[test]
    fn unscheduled_publish_at_is_null() {
        let mut d = draft();
        d.publish_at = None;
        let caption = CaptionAsSent::from(&d);
        let value = serde_json::to_value(&caption).unwrap();
        assert_eq!(value["publish_at"], Value::Null);
    }

    fn failure(account: &str) -> FailureReceipt {
        FailureReceipt {
            sha256: Some(hash()),
            account: account.into(),
            platform: Some(Platform::Tiktok),
            file: "a/clip.mp4".into(),
            step: None,
            class: "caption".into(),
            reason: "no privacy".into(),
            hint: "add one".into(),
            failed_at: UtcTime::from_unix(0).unwrap(),
        }
    }

    #[test]
    fn one_target_stands_at_the_top_level_too_and_several_only_in_targets() {
        let one = bundle_receipt(
            &hash(),
            Path::new("a/clip.mp4"),
            &[TargetReceipt::Failed(failure("global"))],
        )
        .unwrap();
        assert_eq!(one["account"], "global");
        assert_eq!(one["outcome"], "failed");
        assert_eq!(one["targets"][0]["account"], "global");
        assert_eq!(one["targets"][0]["platform"], "tiktok");
        assert_eq!(one["targets"].as_array().unwrap().len(), 1);

        let two = [
            TargetReceipt::Failed(failure("global")),
            TargetReceipt::Failed(failure("second")),
        ];
        let both = bundle_receipt(&hash(), Path::new("a/clip.mp4"), &two).unwrap();
        assert_eq!(both["outcome"], "failed");
        assert_eq!(both["file"], "a/clip.mp4");
        assert_eq!(both["sha256"], hash().as_str());
        assert!(both.get("account").is_none(), "{both}");
        assert_eq!(both["targets"][1]["account"], "second");
        assert_eq!(both["targets"][1]["outcome"], "failed");
    }

    #[test]
    fn a_target_rerun_in_place_replaces_its_entry_keeps_its_file_and_the_outcome_follows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("clip.receipt.json");
        let two = [
            TargetReceipt::Failed(failure("main")),
            TargetReceipt::Failed(failure("second")),
        ];
        let start = bundle_receipt(&hash(), Path::new("a/clip.mp4"), &two).unwrap();
        std::fs::write(&path, serde_json::to_vec(&start).unwrap()).unwrap();
        let rerun = job(6, "/somewhere/done/a/clip.mp4", Some("7600"));
        let post = rerun.post.clone().unwrap();
        let entry =
            TargetReceipt::Published(Box::new(PublishedReceipt::new(&rerun, &draft(), &post)));
        update_targets(&path, &[entry]).unwrap();
        let after: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(after["outcome"], "published", "{after}");
        assert_eq!(after["targets"][0]["outcome"], "published");
        assert_eq!(after["targets"][0]["post_id"], "7600");
        assert_eq!(after["targets"][0]["file"], "a/clip.mp4");
        assert_eq!(after["targets"][1], start["targets"][1]);
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temp file left"
        );
    }

    #[test]
    fn a_bundle_is_published_if_any_target_posted_duplicate_only_if_all_were() {
        let failed = || TargetReceipt::Failed(failure("x"));
        assert_eq!(bundle_outcome(&[failed(), failed()]), "failed");
        assert_eq!(bundle_outcome(&[]), "failed");
    }

    #[test]
    fn failure_receipt_without_hash() {
        let receipt = FailureReceipt {
            sha256: None,
            account: "main".into(),
            platform: None,
            file: "broken.mp4".into(),
            step: None,
            class: "incomplete".into(),
            reason: "no moov box after 10m".into(),
            hint: "re-export the video".into(),
            failed_at: UtcTime::from_unix(0).unwrap(),
        };
        let value = serde_json::to_value(&receipt).unwrap();
        assert_eq!(value["sha256"], Value::Null);
        assert_eq!(value["step"], Value::Null);
        assert_eq!(value["failed_at"], "1970-01-01T00:00:00Z");
        assert_no_secret_keys(&value);
        let back: FailureReceipt = serde_json::from_value(value).unwrap();
        assert_eq!(back, receipt);
    }

    #[test]
    fn duplicate_receipt_names_the_earlier_post() {
        let earlier = job(1, "a/clip.mp4", Some("7100"));
        let dup = job(2, "b/copy.mp4", None);
        let now = UtcTime::from_unix(1_800_000_000).unwrap();
        let receipt = DuplicateReceipt::new(&dup, &earlier, now);
        let value = serde_json::to_value(&receipt).unwrap();
        assert_eq!(value["file"], "b/copy.mp4");
        assert_eq!(
            value["earlier"],
            json!({
                "platform": "douyin-web",
                "post_id": "7100",
                "aweme_id": "7100",
                "url": "https://www.douyin.com/video/7100",
                "file": "a/clip.mp4",
                "published_at": "2023-11-14T22:14:20.25Z"
            })
        );
        assert_no_secret_keys(&value);

        // An earlier job still in flight has no post yet.
        let in_flight = job(3, "c.mp4", None);
        let r = DuplicateReceipt::new(&dup, &in_flight, now);
        assert_eq!(r.earlier.aweme_id, None);
        assert_eq!(r.earlier.url, None);
        assert_eq!(r.earlier.published_at, None);
    }

    #[test]
    fn utc_time_parses_offsets_into_utc() {
        let t: UtcTime = serde_json::from_str("\"2026-12-01T20:00:00+08:00\"").unwrap();
        assert_eq!(t.to_rfc3339(), "2026-12-01T12:00:00Z");
        assert!(serde_json::from_str::<UtcTime>("\"yesterday\"").is_err());
    }
}
