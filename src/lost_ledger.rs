//! A lost ledger (issue 9): the ledger is what remembers which videos were posted, so a
//! start that finds none (or an empty one) while `done/` or `duplicates/` hold receipts of
//! earlier posts must not publish: every one of those videos dropped again would be
//! posted again. It refuses until the user rebuilds the ledger from the receipts
//! (`dropcast ledger rebuild`) or says to start fresh (`--new-ledger`, remembered in the
//! ledger so it is needed once).

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::Deserialize;

use crate::config::Config;
use crate::domain::{ContentHash, Platform, Post, PostState};
use crate::driver::DriverLock;
use crate::ledger::{self, Ledger, LedgerError, Restore, RestoredPost};
use crate::pipeline::FatalError;
use crate::receipt::UtcTime;

/// Receipts are small; anything bigger is not one of ours.
const RECEIPT_LIMIT: u64 = 1024 * 1024;
const RECEIPT_SUFFIX: &str = ".receipt.json";

/// Opens the ledger for the driver of the state folder (the lock is the proof), refusing
/// a missing or empty ledger while receipts of earlier posts exist, unless `new_ledger`.
pub(crate) fn open_for_driver(
    config: &Config,
    _driver: &DriverLock,
    new_ledger: bool,
) -> Result<Ledger, FatalError> {
    let file = config.state_dir.join(ledger::FILE_NAME);
    let was_there =
        config.ledger.is_shared() || std::fs::metadata(&file).is_ok_and(|m| m.len() > 0);
    let mut ledger = Ledger::open_configured(config)?;
    let path = ledger.path();
    if ledger.job_count()? > 0 || ledger.fresh_start_accepted()? {
        if new_ledger {
            tracing::info!("--new-ledger: this ledger is in use already; nothing to do");
        }
        return Ok(ledger);
    }
    let Some(receipt) = first_receipt(config) else {
        return Ok(ledger);
    };
    if new_ledger {
        ledger.accept_fresh_start()?;
        tracing::warn!(
            receipt = %receipt.display(),
            "--new-ledger: starting with an empty ledger although done/ or duplicates/ hold receipts; videos published before will not be recognised as duplicates"
        );
        return Ok(ledger);
    }
    Err(FatalError::LedgerMissing {
        ledger: path,
        what: if was_there { "is empty" } else { "is missing" },
        receipt,
    })
}

/// The first receipt found in `done/` or `duplicates/`, if any.
fn first_receipt(config: &Config) -> Option<PathBuf> {
    let mut found = None;
    for dir in [&config.done, &config.duplicates] {
        walk(dir, &mut |path| {
            found = Some(path);
            false
        });
        if found.is_some() {
            break;
        }
    }
    found
}

/// Calls `f` with every `*.receipt.json` under `dir` (symlinks not followed) until it
/// returns false. Unreadable folders are skipped.
fn walk(dir: &Path, f: &mut dyn FnMut(PathBuf) -> bool) -> bool {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return true;
    };
    let mut entries: Vec<_> = entries.flatten().collect();
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        let path = entry.path();
        if kind.is_dir() {
            if !walk(&path, f) {
                return false;
            }
        } else if kind.is_file()
            && entry
                .file_name()
                .to_str()
                .is_some_and(|n| n.ends_with(RECEIPT_SUFFIX))
            && !f(path)
        {
            return false;
        }
    }
    true
}

/// What `dropcast ledger rebuild` did.
#[derive(Debug, Default)]
pub struct RebuildReport {
    /// Receipts found and parsed.
    pub read: usize,
    /// Posts recorded as Done jobs.
    pub restored: usize,
    /// Receipts that added nothing, with why.
    pub skipped: Vec<(PathBuf, String)>,
    /// Receipts that could not be used, with why.
    pub unreadable: Vec<(PathBuf, String)>,
}

/// The fields of a receipt a rebuild needs, from `done/` (a published receipt) or
/// `duplicates/` (a duplicate receipt naming the earlier post).
#[derive(Debug, Deserialize)]
struct AnyReceipt {
    sha256: String,
    account: String,
    file: String,
    /// Absent in receipts written before platforms had names: `douyin-web`.
    platform: Option<Platform>,
    post_id: Option<String>,
    /// The post id in receipts written before `post_id` (Douyin's name for it).
    aweme_id: Option<String>,
    url: Option<String>,
    /// Absent for a live post (and in receipts written before posts had states).
    #[serde(default)]
    post_state: PostState,
    published_at: Option<UtcTime>,
    earlier: Option<Earlier>,
    detected_at: Option<UtcTime>,
}

#[derive(Debug, Deserialize)]
struct Earlier {
    post_id: Option<String>,
    aweme_id: Option<String>,
    url: Option<String>,
    file: Option<String>,
    published_at: Option<UtcTime>,
}

/// Reads every receipt in `done/`, then `duplicates/`, and records each post they name
/// that the ledger does not know yet. An unreadable receipt is reported, never fatal.
pub fn rebuild(config: &Config, ledger: &mut Ledger) -> Result<RebuildReport, LedgerError> {
    let mut report = RebuildReport::default();
    let (mut paths, mut seen) = (Vec::new(), std::collections::HashSet::new());
    for dir in [&config.done, &config.duplicates] {
        walk(dir, &mut |path| {
            if seen.insert(path.clone()) {
                paths.push(path);
            }
            true
        });
    }
    for path in paths {
        let posts = match read_receipt(&path) {
            Ok(posts) => posts,
            Err(reason) => {
                report.unreadable.push((path, reason));
                continue;
            }
        };
        report.read += 1;
        for post in posts {
            let Some(post) = post else {
                report.skipped.push((
                    path.clone(),
                    "names no post (the earlier post was still in progress)".into(),
                ));
                continue;
            };
            match ledger.restore_done(&post)? {
                Restore::Restored(_) => report.restored += 1,
                Restore::Known(id) => report.skipped.push((
                    path.clone(),
                    format!("the ledger knows this post already (job {id})"),
                )),
            }
        }
    }
    Ok(report)
}

/// The posts a receipt names, one per target that posted or found its earlier post (a
/// receipt of a drop to several accounts lists them under `targets`); `None` for a
/// duplicate whose earlier post had no address yet.
fn read_receipt(path: &Path) -> Result<Vec<Option<RestoredPost>>, String> {
    let meta = std::fs::metadata(path).map_err(|e| e.to_string())?;
    if meta.len() > RECEIPT_LIMIT {
        return Err(format!("larger than {RECEIPT_LIMIT} bytes: not a receipt"));
    }
    let text = std::fs::read(path).map_err(|e| e.to_string())?;
    let value: serde_json::Value =
        serde_json::from_slice(&text).map_err(|e| format!("not a receipt: {e}"))?;
    let several =
        value.get("account").is_none() && value["targets"].as_array().is_some_and(|t| t.len() > 1);
    if !several {
        return Ok(vec![read_target(path, value)?]);
    }
    let targets = value["targets"].as_array().cloned().unwrap_or_default();
    targets
        .into_iter()
        .filter(|t| t["outcome"] != "failed")
        .map(|t| read_target(path, t))
        .collect()
}

/// The post one receipt (or one target's entry) names.
fn read_target(path: &Path, value: serde_json::Value) -> Result<Option<RestoredPost>, String> {
    let r: AnyReceipt = serde_json::from_value(value).map_err(|e| format!("not a receipt: {e}"))?;
    let sha256 = ContentHash::parse(&r.sha256)
        .ok_or_else(|| format!("sha256 {:?} is not a SHA-256", r.sha256))?;
    if r.account.is_empty() {
        return Err("no account".into());
    }
    let platform = r.platform.unwrap_or(Platform::DouyinWeb);
    let (id, url, state, video, archived, at) = match (r.post_id.or(r.aweme_id), r.earlier) {
        (Some(id), _) => {
            let archived = beside(path, &r.file);
            (id, r.url, r.post_state, r.file, archived, r.published_at)
        }
        (None, Some(earlier)) => match earlier.post_id.or(earlier.aweme_id) {
            Some(id) => (
                id,
                earlier.url,
                PostState::Live,
                earlier.file.unwrap_or(r.file),
                None,
                earlier.published_at.or(r.detected_at),
            ),
            None => return Ok(None),
        },
        (None, None) => return Err("names neither a post nor an earlier post".into()),
    };
    if id.is_empty()
        || !id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-.~".contains(&b))
    {
        return Err(format!("post id {id:?} is not a post id"));
    }
    let post = match state {
        PostState::Live => Post::live(
            id.clone(),
            url.filter(|u| u.starts_with("https://") || u.starts_with("http://"))
                .ok_or_else(|| format!("post {id} has no address (`url`)"))?,
        ),
        PostState::AwaitingModeration => Post::awaiting_moderation(id),
        PostState::InCreatorInbox => Post::in_creator_inbox(id),
    };
    let size = archived
        .as_deref()
        .and_then(|p| std::fs::metadata(p).ok())
        .map_or(0, |m| m.len());
    Ok(Some(RestoredPost {
        sha256,
        account: r.account,
        video: PathBuf::from(video),
        size,
        platform,
        post,
        archived_to: archived,
        published_at: at
            .map(|t| SystemTime::from(t.offset_date_time()))
            .unwrap_or_else(SystemTime::now),
    }))
}

/// The archived video beside a published receipt (`clip.receipt.json` → `clip.mp4`),
/// when it is there.
fn beside(receipt: &Path, original: &str) -> Option<PathBuf> {
    let name = receipt.file_name()?.to_str()?;
    let stem = name.strip_suffix(RECEIPT_SUFFIX)?;
    let ext = Path::new(original).extension()?.to_str()?;
    let video = receipt.with_file_name(format!("{stem}.{ext}"));
    video.is_file().then_some(video)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walk_finds_receipts_in_subfolders_only() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("a/b")).unwrap();
        std::fs::write(dir.path().join("a/b/clip.receipt.json"), "{}").unwrap();
        std::fs::write(dir.path().join("a/clip.mp4"), "").unwrap();
        std::fs::write(dir.path().join("x.error.json"), "{}").unwrap();
        let mut found = Vec::new();
        walk(dir.path(), &mut |p| {
            found.push(p);
            true
        });
        assert_eq!(found, vec![dir.path().join("a/b/clip.receipt.json")]);
    }

    #[test]
    fn a_receipt_of_a_post_not_public_yet_restores_its_state_without_an_address() {
        let dir = tempfile::tempdir().unwrap();
        let receipt = dir.path().join("clip.receipt.json");
        // Regression: TikTok's publish_ids (`v_pub_file~v2-1.123`) were refused as post ids.
        for (state, url) in [("awaiting_moderation", ""), ("in_creator_inbox", "")] {
            std::fs::write(
                &receipt,
                serde_json::json!({
                    "sha256": "ab".repeat(32), "account": "global", "file": "clip.mp4",
                    "platform": "tiktok", "post_id": "v_pub_file~v2-1.123", "url": url,
                    "post_state": state, "published_at": "2026-01-02T03:04:05Z"
                })
                .to_string(),
            )
            .unwrap();
            let post = read_receipt(&receipt).unwrap().remove(0).unwrap();
            assert_eq!(post.post.state.as_str(), state);
            assert!(post.post.is_well_formed() && post.post.address().is_none());
        }
    }

    #[test]
    fn a_published_receipt_names_its_post_and_video() {
        let dir = tempfile::tempdir().unwrap();
        let receipt = dir.path().join("clip-1.receipt.json");
        std::fs::write(dir.path().join("clip-1.mp4"), b"12345").unwrap();
        std::fs::write(
            &receipt,
            serde_json::json!({
                "sha256": "ab".repeat(32), "account": "main", "file": "sub/clip.mp4",
                "vid": "v", "aweme_id": "7001", "url": "https://www.douyin.com/video/7001",
                "published_at": "2026-01-02T03:04:05Z"
            })
            .to_string(),
        )
        .unwrap();
        let post = read_receipt(&receipt).unwrap().remove(0).unwrap();
        assert_eq!(post.post.id, "7001");
        assert_eq!(post.platform, Platform::DouyinWeb);
        assert_eq!(post.video, PathBuf::from("sub/clip.mp4"));
        assert_eq!(post.size, 5);
        assert_eq!(post.archived_to, Some(dir.path().join("clip-1.mp4")));

        // A drop to several accounts: each target that posted, never a failed one.
        let entry = |account: &str, outcome: &str, id: &str| {
            serde_json::json!({
                "sha256": "ab".repeat(32), "account": account, "file": "sub/clip.mp4",
                "platform": "tiktok", "outcome": outcome, "post_id": id,
                "url": format!("https://www.tiktok.com/@a/video/{id}"),
            })
        };
        let several = serde_json::json!({
            "sha256": "ab".repeat(32), "file": "sub/clip.mp4", "outcome": "published",
            "targets": [entry("one", "published", "71"), entry("two", "failed", "0"),
                        entry("three", "published", "73")],
        });
        std::fs::write(&receipt, several.to_string()).unwrap();
        let posts: Vec<(String, String)> = read_receipt(&receipt)
            .unwrap()
            .into_iter()
            .flatten()
            .map(|p| (p.account, p.post.id))
            .collect();
        assert_eq!(
            posts,
            [
                ("one".to_owned(), "71".to_owned()),
                ("three".to_owned(), "73".to_owned())
            ]
        );

        std::fs::write(&receipt, "{\"sha256\": \"zz\"}").unwrap();
        assert!(
            read_receipt(&receipt)
                .unwrap_err()
                .contains("not a receipt")
        );
    }
}
