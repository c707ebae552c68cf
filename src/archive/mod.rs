//! Moving a finished job's files out of the inbox into `done/`, `failed/` or
//! `duplicates/`, together with its JSON receipt.
//!
//! **Nothing is ever overwritten and nothing is deleted**, except a source file after
//! its copy is safely in place (a move across file systems). Target names are taken
//! with no-replace renames; a taken name moves the whole bundle to the next free
//! suffix (`clip-1.mp4`, `clip-1.yaml`, `clip-1.receipt.json`).
//!
//! **An archive survives a crash at any point.** It is made in two halves: [`plan`]
//! picks every name and renders the receipt without touching anything; the caller
//! stores the [`ArchivePlan`] (the ledger keeps it as JSON) and then runs [`execute`],
//! which writes the receipt, then moves the caption, then the video. `execute` is
//! idempotent: run again on the same plan after a crash, it sees which moves are done,
//! finishes the rest, and removes the temp files an interrupted copy left behind.

mod execute;
mod fsops;
mod os_path;

use std::ffi::{OsStr, OsString};
use std::fs;
use std::io;
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use execute::execute;
use fsops::exists;

/// Where a job's files go.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Destination {
    Done,
    Failed,
    Duplicates,
}

impl Destination {
    /// The receipt's name after the stem: `receipt.json`, or `error.json` in `failed/`.
    fn receipt_tail(self) -> [&'static str; 2] {
        match self {
            Destination::Done | Destination::Duplicates => ["receipt", "json"],
            Destination::Failed => ["error", "json"],
        }
    }
}

/// The inbox and the three archive folders (they may lie inside the inbox).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Folders {
    pub inbox: PathBuf,
    pub done: PathBuf,
    pub failed: PathBuf,
    pub duplicates: PathBuf,
}

impl Folders {
    pub fn dir(&self, dest: Destination) -> &Path {
        match dest {
            Destination::Done => &self.done,
            Destination::Failed => &self.failed,
            Destination::Duplicates => &self.duplicates,
        }
    }
}

/// Everything an archive will do, decided up front so that it can be stored and
/// finished after a crash. All paths are absolute.
///
/// The moves run in order and the video's is the last (a caption's, if any, comes
/// first). Paths that are not UTF-8 serialize as arrays of their bytes.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct ArchivePlan {
    pub dest: Destination,
    pub moves: Vec<Move>,
    #[serde(with = "os_path")]
    pub receipt: PathBuf,
    /// The receipt's exact bytes (pretty JSON and a final newline).
    pub receipt_json: String,
}

/// One file's move. Both paths are absolute.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Move {
    #[serde(with = "os_path")]
    pub from: PathBuf,
    #[serde(with = "os_path")]
    pub to: PathBuf,
}

impl ArchivePlan {
    /// Where the files end up once the plan is executed.
    pub fn archived(&self) -> Option<Archived> {
        let (video, others) = self.moves.split_last()?;
        Some(Archived {
            video: video.to.clone(),
            caption: others.first().map(|m| m.to.clone()),
            receipt: self.receipt.clone(),
        })
    }
}

/// Where the files ended up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Archived {
    pub video: PathBuf,
    pub caption: Option<PathBuf>,
    pub receipt: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{} has no file name", .0.display())]
    NoFileName(PathBuf),
    #[error("cannot serialize the receipt: {0}")]
    Receipt(#[source] serde_json::Error),
    #[error(
        "{} appeared while archiving; nothing was overwritten, the rest of the bundle stays where it is",
        .0.display()
    )]
    Raced(PathBuf),
    /// A name the plan chose was taken before the plan started: nothing was moved,
    /// and a fresh [`plan`] picks other names.
    #[error("{} was taken before archiving started; nothing was moved", .0.display())]
    Taken(PathBuf),
    #[error(
        "{} is neither in the inbox nor at {}: the file was moved or deleted by someone else",
        from.display(),
        to.display()
    )]
    Lost { from: PathBuf, to: PathBuf },
    #[error("the archive plan is unusable: {0}")]
    BadPlan(&'static str),
    #[error("no free name for {} in {}", name.to_string_lossy(), dir.display())]
    NoFreeName { dir: PathBuf, name: OsString },
    /// Only files in the inbox are ever moved; this one is elsewhere.
    #[error("{} is outside the inbox; files outside the inbox are never moved", .0.display())]
    OutsideInbox(PathBuf),
}

/// Tries before giving up on finding a free suffix.
const MAX_SUFFIX: u32 = 10_000;

/// The longest file name most file systems accept (`NAME_MAX`), in bytes.
const NAME_MAX: usize = 255;

/// Bytes kept free in every name for the largest suffix (`-10000`).
const SUFFIX_ROOM: usize = 6;

/// How often [`archive`] plans again when its names are taken under it.
const MAX_REPLANS: u32 = 5;

/// Moves `video` (and `caption`) into `dest`, keeping the path relative to the inbox,
/// and writes `receipt` beside them as pretty JSON: [`plan`], then [`execute`]
/// (planning again if a chosen name is taken before anything moved).
///
/// A caller that must survive a crash mid-archive stores the plan before executing
/// it instead.
pub fn archive(
    folders: &Folders,
    dest: Destination,
    video: &Path,
    caption: Option<&Path>,
    receipt: &impl Serialize,
) -> Result<Archived, ArchiveError> {
    let mut replans = 0;
    loop {
        let plan = plan(folders, dest, video, caption, receipt)?;
        match execute(&plan) {
            Err(ArchiveError::Taken(path)) if replans < MAX_REPLANS => {
                tracing::debug!(taken = %path.display(), "archive name taken; planning again");
                replans += 1;
            }
            result => return result,
        }
    }
}

/// Moves an executed plan's files back where they came from (`dropcast retry` of a job
/// in `failed/`): the caption first, the video last, never overwriting. The receipt stays
/// (it documents what happened). Checks every file before it moves one.
pub fn restore(plan: &ArchivePlan) -> Result<(), ArchiveError> {
    if plan.moves.is_empty() {
        return Err(ArchiveError::BadPlan("it moves no file"));
    }
    for m in &plan.moves {
        if !fsops::exists(&m.to) {
            return Err(ArchiveError::Lost {
                from: m.to.clone(),
                to: m.from.clone(),
            });
        }
        if fsops::exists(&m.from) {
            return Err(ArchiveError::Raced(m.from.clone()));
        }
    }
    for m in &plan.moves {
        if let Some(dir) = m.from.parent() {
            fs::create_dir_all(dir).map_err(|source| ArchiveError::Io {
                action: "create",
                path: dir.to_path_buf(),
                source,
            })?;
        }
        fsops::move_file(&m.to, &m.from)?;
    }
    Ok(())
}

/// Decides where `video` (and `caption`) go in `dest` and renders the receipt; touches
/// nothing.
///
/// `video` and `caption` are the files' real paths (absolute, or relative to the
/// current directory); they must exist. Only files in the inbox are moved: a video
/// elsewhere is refused ([`ArchiveError::OutsideInbox`]) and a caption elsewhere (a
/// `publish --caption` from another folder) stays where it is. The caption goes beside
/// the video. A caption named after the video (`clip.yaml`, `clip.caption.yaml`) takes
/// the video's suffix; any other (a shared `caption.yaml`) gets its own free name.
///
/// Every name fits the file system's limit (255 bytes), suffix included: a stem too long
/// for `<stem>-N.receipt.json` is shortened (at a character boundary, extensions kept).
pub fn plan(
    folders: &Folders,
    dest: Destination,
    video: &Path,
    caption: Option<&Path>,
    receipt: &impl Serialize,
) -> Result<ArchivePlan, ArchiveError> {
    let mut receipt_json = serde_json::to_string_pretty(receipt).map_err(ArchiveError::Receipt)?;
    receipt_json.push('\n');

    for path in std::iter::once(video).chain(caption) {
        fs::symlink_metadata(path).map_err(|source| ArchiveError::Io {
            action: "read",
            path: path.to_path_buf(),
            source,
        })?;
    }
    let inbox = absolute(&folders.inbox)?;
    let video = absolute(video)?;
    if !in_inbox(&inbox, &video) {
        return Err(ArchiveError::OutsideInbox(video));
    }
    let caption = match caption.map(absolute).transpose()? {
        Some(path) if !in_inbox(&inbox, &path) => {
            tracing::info!(caption = %path.display(), "the caption is outside the inbox; it stays where it is");
            None
        }
        other => other,
    };
    let video_name = video
        .file_name()
        .ok_or_else(|| ArchiveError::NoFileName(video.clone()))?;
    let video_path = Path::new(video_name);
    let full_stem = video_path.file_stem().unwrap_or(video_name);
    let video_tail: Vec<&OsStr> = video_path.extension().into_iter().collect();
    let caption_tail = match &caption {
        None => None,
        Some(path) => {
            let name = path
                .file_name()
                .ok_or_else(|| ArchiveError::NoFileName(path.clone()))?;
            follows_video(name, full_stem)
        }
    };
    let longest_tail = [
        tail_len(&video_tail),
        tail_len(&dest.receipt_tail()),
        caption_tail.as_deref().map_or(0, tail_len),
    ]
    .into_iter()
    .max()
    .unwrap_or(0);
    let stem = &*fit_stem(full_stem, longest_tail);
    if stem.len() < full_stem.len() {
        tracing::info!(
            video = %video.display(),
            "the name is too long for the archive folder with a receipt beside it; it is archived under a shorter name"
        );
    }

    let dest_dir = absolute(folders.dir(dest))?.join(relative_dir(&inbox, &video));

    // The bundle's suffix: the first at which every name of the bundle is free.
    let mut n = 0;
    let (video_to, following_caption_to, receipt_to) = loop {
        if n > MAX_SUFFIX {
            return Err(ArchiveError::NoFreeName {
                dir: dest_dir,
                name: video_name.to_os_string(),
            });
        }
        let video_to = dest_dir.join(name_with_suffix(stem, n, &video_tail));
        let receipt_to = dest_dir.join(name_with_suffix(stem, n, &dest.receipt_tail()));
        let caption_to = caption_tail
            .as_ref()
            .map(|tail| dest_dir.join(name_with_suffix(stem, n, tail)));
        let taken = [Some(&video_to), caption_to.as_ref(), Some(&receipt_to)]
            .into_iter()
            .flatten()
            .any(|p| exists(p));
        if !taken {
            break (video_to, caption_to, receipt_to);
        }
        n += 1;
    };

    let mut moves = Vec::with_capacity(2);
    if let Some(from) = caption {
        let to = match following_caption_to {
            Some(to) => to,
            None => free_name(&dest_dir, &from, &[&video_to, &receipt_to])?,
        };
        moves.push(Move { from, to });
    }
    moves.push(Move {
        from: video,
        to: video_to,
    });
    Ok(ArchivePlan {
        dest,
        moves,
        receipt: receipt_to,
        receipt_json,
    })
}

fn absolute(path: &Path) -> Result<PathBuf, ArchiveError> {
    std::path::absolute(path).map_err(|source| ArchiveError::Io {
        action: "resolve",
        path: path.to_path_buf(),
        source,
    })
}

/// The caption name's parts after the video's stem (`clip.caption.yaml` after
/// `clip` → `[caption, yaml]`), or `None` if it is not named after the video.
fn follows_video(caption_name: &OsStr, video_stem: &OsStr) -> Option<Vec<OsString>> {
    let mut name = PathBuf::from(caption_name);
    let mut tail = Vec::new();
    for _ in 0..2 {
        let ext = name.extension()?.to_os_string();
        let stem = name.file_stem()?.to_os_string();
        tail.insert(0, ext);
        if stem == video_stem {
            return Some(tail);
        }
        name = PathBuf::from(stem);
    }
    None
}

/// The bytes `.tail0.tail1…` take in a name.
fn tail_len(tail: &[impl AsRef<OsStr>]) -> usize {
    tail.iter().map(|t| 1 + t.as_ref().len()).sum()
}

/// `stem`, cut (at a UTF-8 character boundary) so that `stem-NNNNN` followed by a tail
/// of `tail` bytes fits in [`NAME_MAX`].
fn fit_stem(stem: &OsStr, tail: usize) -> std::borrow::Cow<'_, OsStr> {
    let limit = NAME_MAX.saturating_sub(SUFFIX_ROOM + tail).max(1);
    let bytes = stem.as_encoded_bytes();
    if bytes.len() <= limit {
        return std::borrow::Cow::Borrowed(stem);
    }
    let mut cut = limit;
    // Never end inside a multi-byte character: back up over continuation bytes.
    while cut > 1 && (bytes[cut] & 0xC0) == 0x80 {
        cut -= 1;
    }
    std::borrow::Cow::Owned(os_from_bytes(&bytes[..cut]))
}

#[cfg(unix)]
fn os_from_bytes(bytes: &[u8]) -> OsString {
    use std::os::unix::ffi::OsStrExt;
    OsStr::from_bytes(bytes).to_os_string()
}

#[cfg(not(unix))]
fn os_from_bytes(bytes: &[u8]) -> OsString {
    OsString::from(String::from_utf8_lossy(bytes).into_owned())
}

/// How every log line, live-state row, ledger row and answer names a file: its path
/// relative to the inbox, or the path itself when it is not under the inbox. (The archive
/// places files with the stricter [`relative_dir`].)
pub(crate) fn inbox_relative<'a>(inbox: &Path, file: &'a Path) -> &'a Path {
    file.strip_prefix(inbox).unwrap_or(file)
}

/// Whether `path` lies in `inbox` (both absolute), judged by the real folders so that
/// `inbox/../elsewhere` is not inside. Only such files are ever moved.
pub(crate) fn in_inbox(inbox: &Path, path: &Path) -> bool {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => return false,
    };
    match (inbox.canonicalize(), parent.canonicalize()) {
        (Ok(inbox), Ok(parent)) => parent.starts_with(inbox),
        // Folders that cannot be resolved: only a plain path under the inbox counts.
        _ => parent
            .strip_prefix(inbox)
            .is_ok_and(|rel| rel.components().all(|c| matches!(c, Component::Normal(_)))),
    }
}

/// `stem[-n].tail0.tail1…`
fn name_with_suffix(stem: &OsStr, n: u32, tail: &[impl AsRef<OsStr>]) -> OsString {
    let mut name = stem.to_os_string();
    if n > 0 {
        name.push(format!("-{n}"));
    }
    for part in tail {
        name.push(".");
        name.push(part);
    }
    name
}

/// A free name in `dir` for a caption that is not named after the video, other than
/// the names the bundle already claims.
fn free_name(dir: &Path, from: &Path, claimed: &[&Path]) -> Result<PathBuf, ArchiveError> {
    let name = from
        .file_name()
        .ok_or_else(|| ArchiveError::NoFileName(from.to_path_buf()))?;
    let as_path = Path::new(name);
    let tail: Vec<&OsStr> = as_path.extension().into_iter().collect();
    let stem = fit_stem(as_path.file_stem().unwrap_or(name), tail_len(&tail));
    (0..=MAX_SUFFIX)
        .map(|n| dir.join(name_with_suffix(&stem, n, &tail)))
        .find(|p| !exists(p) && !claimed.contains(&p.as_path()))
        .ok_or_else(|| ArchiveError::NoFreeName {
            dir: dir.to_path_buf(),
            name: name.to_os_string(),
        })
}

/// The video's folder relative to the inbox; empty if the video is outside it.
fn relative_dir(inbox: &Path, video: &Path) -> PathBuf {
    let parent = match video.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let clean = |rel: &Path| rel.components().all(|c| matches!(c, Component::Normal(_)));
    if let Ok(rel) = parent.strip_prefix(inbox)
        && clean(rel)
    {
        return rel.to_path_buf();
    }
    if let (Ok(inbox), Ok(parent)) = (inbox.canonicalize(), parent.canonicalize())
        && let Ok(rel) = parent.strip_prefix(&inbox)
        && clean(rel)
    {
        return rel.to_path_buf();
    }
    PathBuf::new()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::fs::File;

    struct Fixture {
        _dir: tempfile::TempDir,
        folders: Folders,
    }

    fn fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let folders = Folders {
            inbox: root.join("inbox"),
            done: root.join("done"),
            failed: root.join("failed"),
            duplicates: root.join("duplicates"),
        };
        fs::create_dir_all(&folders.inbox).unwrap();
        Fixture { _dir: dir, folders }
    }

    fn put(path: &Path, content: &str) -> PathBuf {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, content).unwrap();
        path.to_path_buf()
    }

    fn read(path: &Path) -> String {
        fs::read_to_string(path).unwrap()
    }

    #[test]
    fn keeps_relative_layout_and_writes_receipt() {
        let f = fixture();
        let video = put(&f.folders.inbox.join("job1/video.mp4"), "VIDEO");
        let caption = put(&f.folders.inbox.join("job1/video.yaml"), "text: hi");
        let out = archive(
            &f.folders,
            Destination::Done,
            &video,
            Some(&caption),
            &json!({"aweme_id": "1"}),
        )
        .unwrap();
        assert_eq!(out.video, f.folders.done.join("job1/video.mp4"));
        assert_eq!(out.caption, Some(f.folders.done.join("job1/video.yaml")));
        assert_eq!(out.receipt, f.folders.done.join("job1/video.receipt.json"));
        assert_eq!(read(&out.video), "VIDEO");
        assert_eq!(read(out.caption.as_ref().unwrap()), "text: hi");
        let receipt: serde_json::Value = serde_json::from_str(&read(&out.receipt)).unwrap();
        assert_eq!(receipt, json!({"aweme_id": "1"}));
        assert!(
            read(&out.receipt).contains("\n  \"aweme_id\""),
            "pretty JSON"
        );
        assert!(!video.exists() && !caption.exists());
        // No temp files left behind.
        let names: Vec<_> = fs::read_dir(f.folders.done.join("job1"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 3, "{names:?}");
    }

    #[test]
    fn failed_gets_error_json_and_no_caption_is_fine() {
        let f = fixture();
        let video = put(&f.folders.inbox.join("clip.mp4"), "V");
        let out = archive(&f.folders, Destination::Failed, &video, None, &json!({})).unwrap();
        assert_eq!(out.video, f.folders.failed.join("clip.mp4"));
        assert_eq!(out.receipt, f.folders.failed.join("clip.error.json"));
        assert_eq!(out.caption, None);
        let video = put(&f.folders.inbox.join("d.mp4"), "D");
        let out = archive(
            &f.folders,
            Destination::Duplicates,
            &video,
            None,
            &json!({}),
        )
        .unwrap();
        assert_eq!(out.receipt, f.folders.duplicates.join("d.receipt.json"));
    }

    #[test]
    fn collisions_take_the_next_free_suffix_for_the_whole_bundle() {
        let f = fixture();
        let mut results = Vec::new();
        for round in 0..3 {
            let video = put(&f.folders.inbox.join("clip.mp4"), &format!("V{round}"));
            let caption = put(
                &f.folders.inbox.join("clip.caption.yaml"),
                &format!("C{round}"),
            );
            results.push(
                archive(
                    &f.folders,
                    Destination::Done,
                    &video,
                    Some(&caption),
                    &json!(round),
                )
                .unwrap(),
            );
        }
        let done = &f.folders.done;
        for (round, suffix) in ["", "-1", "-2"].iter().enumerate() {
            let out = &results[round];
            assert_eq!(out.video, done.join(format!("clip{suffix}.mp4")));
            assert_eq!(
                out.caption,
                Some(done.join(format!("clip{suffix}.caption.yaml")))
            );
            assert_eq!(out.receipt, done.join(format!("clip{suffix}.receipt.json")));
            assert_eq!(read(&out.video), format!("V{round}"));
            assert_eq!(read(out.caption.as_ref().unwrap()), format!("C{round}"));
            assert_eq!(read(&out.receipt).trim(), round.to_string());
        }

        // Only the receipt name is taken (a stray file): the whole bundle moves on.
        put(&done.join("other.receipt.json"), "stray");
        let video = put(&f.folders.inbox.join("other.mp4"), "O");
        let caption = put(&f.folders.inbox.join("other.yml"), "OC");
        let out = archive(
            &f.folders,
            Destination::Done,
            &video,
            Some(&caption),
            &json!(1),
        )
        .unwrap();
        assert_eq!(out.video, done.join("other-1.mp4"));
        assert_eq!(out.caption, Some(done.join("other-1.yml")));
        assert_eq!(read(&done.join("other.receipt.json")), "stray");
    }

    #[test]
    fn shared_caption_gets_its_own_free_name() {
        let f = fixture();
        put(&f.folders.done.join("trip/caption.yaml"), "older");
        let video = put(&f.folders.inbox.join("trip/clip.mp4"), "V");
        let caption = put(&f.folders.inbox.join("trip/caption.yaml"), "shared");
        let out = archive(
            &f.folders,
            Destination::Done,
            &video,
            Some(&caption),
            &json!({}),
        )
        .unwrap();
        assert_eq!(out.video, f.folders.done.join("trip/clip.mp4"));
        assert_eq!(
            out.caption,
            Some(f.folders.done.join("trip/caption-1.yaml"))
        );
        assert_eq!(read(&f.folders.done.join("trip/caption.yaml")), "older");
        assert_eq!(read(out.caption.as_ref().unwrap()), "shared");
    }

    // Regression (issue 9 item 13): a caption from outside the inbox was moved into done/.
    #[test]
    fn files_outside_the_inbox_are_never_moved() {
        let f = fixture();
        let elsewhere = tempfile::tempdir().unwrap();
        let video = put(&elsewhere.path().join("deep/down/clip.mp4"), "V");
        let notes = put(&elsewhere.path().join("notes.yaml"), "C");
        let err = archive(
            &f.folders,
            Destination::Done,
            &video,
            Some(&notes),
            &json!({}),
        )
        .unwrap_err();
        assert!(matches!(err, ArchiveError::OutsideInbox(_)), "{err}");
        assert_eq!(read(&video), "V");

        // A video in the inbox with a caption from elsewhere: the caption stays.
        let inside = put(&f.folders.inbox.join("clip.mp4"), "V");
        let out = archive(
            &f.folders,
            Destination::Done,
            &inside,
            Some(&notes),
            &json!({}),
        )
        .unwrap();
        assert_eq!(out.video, f.folders.done.join("clip.mp4"));
        assert_eq!(out.caption, None);
        assert_eq!(read(&notes), "C");

        // `inbox/../elsewhere` is not in the inbox.
        let sneaky = f.folders.inbox.join("..").join("sneaky.yaml");
        put(&sneaky, "S");
        let inside = put(&f.folders.inbox.join("b.mp4"), "B");
        let out = archive(
            &f.folders,
            Destination::Done,
            &inside,
            Some(&sneaky),
            &json!({}),
        )
        .unwrap();
        assert_eq!(out.caption, None);
        assert_eq!(read(&sneaky), "S");
    }

    // Regression (issue 9 item 8): a stem of 243+ bytes was posted, then its
    // `<stem>.receipt.json` could never be written (longer than NAME_MAX).
    #[test]
    fn names_too_long_for_the_archive_are_shortened_and_keep_their_extension() {
        let f = fixture();
        let stem = format!("{}视频", "a".repeat(240)); // 246 bytes
        let video = put(&f.folders.inbox.join(format!("{stem}.mp4")), "V");
        let caption = put(&f.folders.inbox.join(format!("{stem}.yml")), "C");
        for round in 0..2 {
            let video = put(&video, "V");
            let caption = put(&caption, "C");
            let out = archive(
                &f.folders,
                Destination::Done,
                &video,
                Some(&caption),
                &json!(round),
            )
            .unwrap();
            for path in [&out.video, out.caption.as_ref().unwrap(), &out.receipt] {
                let name = path.file_name().unwrap().to_str().expect("still UTF-8");
                assert!(name.len() <= NAME_MAX, "{name}");
                assert!(name.starts_with("aaaa"), "{name}");
            }
            assert!(out.video.to_str().unwrap().ends_with(".mp4"));
            assert!(
                out.caption
                    .as_ref()
                    .unwrap()
                    .to_str()
                    .unwrap()
                    .ends_with(".yml")
            );
            assert_eq!(read(&out.video), "V");
            if round == 1 {
                assert!(
                    out.video.to_str().unwrap().ends_with("-1.mp4"),
                    "{}",
                    out.video.display()
                );
            }
        }
        // The failed/ receipt and a long shared caption name fit too.
        let v = put(
            &f.folders.inbox.join(format!("{}.webm", "b".repeat(250))),
            "W",
        );
        let out = archive(&f.folders, Destination::Failed, &v, None, &json!({})).unwrap();
        assert!(out.receipt.file_name().unwrap().len() <= NAME_MAX);
        assert!(out.receipt.to_str().unwrap().ends_with(".error.json"));
    }

    #[test]
    fn fit_stem_cuts_at_a_character_boundary() {
        let stem = OsString::from(format!("{}é", "x".repeat(235))); // é is 2 bytes
        let cut = fit_stem(&stem, 13); // limit 255 - 6 - 13 = 236
        assert_eq!(cut.len(), 235, "never half a character");
        assert!(cut.to_str().is_some());
        assert_eq!(fit_stem(OsStr::new("clip"), 13), OsStr::new("clip"));
    }

    #[test]
    fn inbox_given_with_dots_still_maps_relative() {
        let f = fixture();
        let video = put(&f.folders.inbox.join("a/b/clip.mp4"), "V");
        let mut folders = f.folders.clone();
        folders.inbox = f.folders.inbox.join("a/..");
        let out = archive(&folders, Destination::Done, &video, None, &json!({})).unwrap();
        assert_eq!(out.video, f.folders.done.join("a/b/clip.mp4"));
    }

    #[test]
    fn inbox_relative_names_files_under_the_inbox_by_their_relative_path() {
        let inbox = Path::new("/in");
        assert_eq!(
            inbox_relative(inbox, Path::new("/in/x/y.mp4")),
            Path::new("x/y.mp4")
        );
        assert_eq!(
            inbox_relative(inbox, Path::new("/other/y.mp4")),
            Path::new("/other/y.mp4")
        );
    }

    #[test]
    fn relative_dir_rules() {
        assert_eq!(
            relative_dir(Path::new("in"), Path::new("in/x/y.mp4")),
            PathBuf::from("x")
        );
        assert_eq!(
            relative_dir(Path::new("in"), Path::new("in/y.mp4")),
            PathBuf::new()
        );
        assert_eq!(
            relative_dir(Path::new("/nowhere/in"), Path::new("/other/y.mp4")),
            PathBuf::new()
        );
        assert_eq!(
            follows_video(OsStr::new("clip.yaml"), OsStr::new("clip")),
            Some(vec!["yaml".into()])
        );
        assert_eq!(
            follows_video(OsStr::new("caption.yaml"), OsStr::new("clip")),
            None
        );
        assert_eq!(
            follows_video(OsStr::new("clip.x.y.yaml"), OsStr::new("clip")),
            None
        );
    }

    #[cfg(unix)]
    #[test]
    fn non_utf8_names() {
        use std::os::unix::ffi::OsStrExt;
        let f = fixture();
        let dir = f.folders.inbox.join(OsStr::from_bytes(b"\xffdir"));
        let video = put(&dir.join(OsStr::from_bytes(b"cl\xfeip.mp4")), "V");
        let caption = put(&dir.join(OsStr::from_bytes(b"cl\xfeip.yaml")), "C");
        put(
            &f.folders
                .done
                .join(OsStr::from_bytes(b"\xffdir"))
                .join(OsStr::from_bytes(b"cl\xfeip.mp4")),
            "older",
        );
        let out = archive(
            &f.folders,
            Destination::Done,
            &video,
            Some(&caption),
            &json!({}),
        )
        .unwrap();
        let done_dir = f.folders.done.join(OsStr::from_bytes(b"\xffdir"));
        assert_eq!(
            out.video,
            done_dir.join(OsStr::from_bytes(b"cl\xfeip-1.mp4"))
        );
        assert_eq!(
            out.caption,
            Some(done_dir.join(OsStr::from_bytes(b"cl\xfeip-1.yaml")))
        );
        assert_eq!(
            out.receipt,
            done_dir.join(OsStr::from_bytes(b"cl\xfeip-1.receipt.json"))
        );
        assert_eq!(read(&out.video), "V");
    }

    #[test]
    fn destination_that_is_a_file_errors_and_keeps_sources() {
        let f = fixture();
        put(&f.folders.done, "not a folder");
        let video = put(&f.folders.inbox.join("job/clip.mp4"), "V");
        let caption = put(&f.folders.inbox.join("job/clip.yaml"), "C");
        let err = archive(
            &f.folders,
            Destination::Done,
            &video,
            Some(&caption),
            &json!({}),
        )
        .unwrap_err();
        assert!(matches!(err, ArchiveError::Io { .. }), "{err}");
        assert_eq!(read(&video), "V");
        assert_eq!(read(&caption), "C");
    }

    #[cfg(unix)]
    #[test]
    fn destination_not_writable_errors_and_keeps_sources() {
        use std::os::unix::fs::PermissionsExt;
        let f = fixture();
        fs::create_dir_all(&f.folders.done).unwrap();
        fs::set_permissions(&f.folders.done, fs::Permissions::from_mode(0o500)).unwrap();
        if File::create(f.folders.done.join("probe")).is_ok() {
            eprintln!("skipped: running with privileges that ignore folder permissions");
            return;
        }
        let video = put(&f.folders.inbox.join("clip.mp4"), "V");
        let caption = put(&f.folders.inbox.join("clip.yaml"), "C");
        let err = archive(
            &f.folders,
            Destination::Done,
            &video,
            Some(&caption),
            &json!({}),
        )
        .unwrap_err();
        assert!(matches!(err, ArchiveError::Io { .. }), "{err}");
        assert_eq!(read(&video), "V");
        assert_eq!(read(&caption), "C");
        fs::set_permissions(&f.folders.done, fs::Permissions::from_mode(0o700)).unwrap();
    }

    #[test]
    fn missing_source_errors_before_anything_is_written() {
        let f = fixture();
        let video = put(&f.folders.inbox.join("clip.mp4"), "V");
        let gone = f.folders.inbox.join("clip.yaml");
        let err = archive(
            &f.folders,
            Destination::Done,
            &video,
            Some(&gone),
            &json!({}),
        )
        .unwrap_err();
        assert!(
            matches!(err, ArchiveError::Io { action: "read", .. }),
            "{err}"
        );
        assert_eq!(read(&video), "V");
        assert!(!f.folders.done.exists());
    }

    #[cfg(unix)]
    #[test]
    fn cross_device_move_copies_then_removes_the_source() {
        use std::os::unix::fs::MetadataExt;
        let shm = Path::new("/dev/shm");
        let f = fixture();
        let Ok(inbox) = tempfile::tempdir_in(shm) else {
            eprintln!("skipped: /dev/shm is not usable");
            return;
        };
        let (a, b) = (
            fs::metadata(inbox.path()).unwrap().dev(),
            fs::metadata(f.folders.inbox.parent().unwrap())
                .unwrap()
                .dev(),
        );
        if a == b {
            eprintln!("skipped: /dev/shm and the temp dir are on the same file system");
            return;
        }
        let mut folders = f.folders.clone();
        folders.inbox = inbox.path().to_path_buf();
        let video = put(&inbox.path().join("job/clip.mp4"), "VIDEO BYTES");
        let caption = put(&inbox.path().join("job/clip.yaml"), "C");
        put(&folders.done.join("job/clip.mp4"), "older");
        let out = archive(
            &folders,
            Destination::Done,
            &video,
            Some(&caption),
            &json!({}),
        )
        .unwrap();
        assert_eq!(out.video, folders.done.join("job/clip-1.mp4"));
        assert_eq!(read(&out.video), "VIDEO BYTES");
        assert_eq!(read(out.caption.as_ref().unwrap()), "C");
        assert!(!video.exists() && !caption.exists());
        assert_eq!(read(&folders.done.join("job/clip.mp4")), "older");
        let leftovers: Vec<_> = fs::read_dir(folders.done.join("job"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .filter(|n| n.to_string_lossy().starts_with(".dropcast-"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }
}
