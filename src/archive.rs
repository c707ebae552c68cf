//! Moving a finished job's files out of the inbox into `done/`, `failed/` or
//! `duplicates/`, together with its JSON receipt.
//!
//! **Nothing is ever overwritten and nothing is deleted**, except a source file after
//! its copy is safely in place (a move across file systems). Target names are taken
//! with no-replace renames; a taken name moves the whole bundle to the next free
//! suffix (`clip-1.mp4`, `clip-1.yaml`, `clip-1.receipt.json`). The receipt is written
//! first, then the caption, then the video, so a crash leaves the video in the inbox.

use std::ffi::{OsStr, OsString};
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Component, Path, PathBuf};

use serde::Serialize;

/// Where a job's files go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
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
        "{} appeared while archiving; nothing was overwritten, the rest of the bundle is still in the inbox",
        .0.display()
    )]
    Raced(PathBuf),
    #[error("no free name for {} in {}", name.to_string_lossy(), dir.display())]
    NoFreeName { dir: PathBuf, name: OsString },
}

/// Tries before giving up on finding a free suffix.
const MAX_SUFFIX: u32 = 10_000;

/// Moves `video` (and `caption`) into `dest`, keeping the path relative to the inbox,
/// and writes `receipt` beside them as pretty JSON.
///
/// `video` and `caption` are the files' real paths (absolute, or relative to the
/// current directory). A video outside the inbox keeps only its file name; the caption
/// always goes beside the video. A caption named after the video (`clip.yaml`,
/// `clip.caption.yaml`) takes the video's suffix; any other (a shared `caption.yaml`)
/// gets its own free name.
pub fn archive(
    folders: &Folders,
    dest: Destination,
    video: &Path,
    caption: Option<&Path>,
    receipt: &impl Serialize,
) -> Result<Archived, ArchiveError> {
    let mut json = serde_json::to_vec_pretty(receipt).map_err(ArchiveError::Receipt)?;
    json.push(b'\n');

    for path in std::iter::once(video).chain(caption) {
        fs::symlink_metadata(path).map_err(|source| ArchiveError::Io {
            action: "read",
            path: path.to_path_buf(),
            source,
        })?;
    }
    let video_name = video
        .file_name()
        .ok_or_else(|| ArchiveError::NoFileName(video.to_path_buf()))?;
    let video_path = Path::new(video_name);
    let stem = video_path.file_stem().unwrap_or(video_name);
    let video_tail: Vec<&OsStr> = video_path.extension().into_iter().collect();
    let caption_plan = match caption {
        None => None,
        Some(path) => {
            let name = path
                .file_name()
                .ok_or_else(|| ArchiveError::NoFileName(path.to_path_buf()))?;
            Some((path, follows_video(name, stem)))
        }
    };

    let dest_dir = folders.dir(dest).join(relative_dir(&folders.inbox, video));
    fs::create_dir_all(&dest_dir).map_err(|source| ArchiveError::Io {
        action: "create folder",
        path: dest_dir.clone(),
        source,
    })?;

    // Pick the bundle's suffix and write the receipt there.
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
        let caption_to = match &caption_plan {
            Some((_, Some(tail))) => {
                let tail: Vec<&OsStr> = tail.iter().map(OsString::as_os_str).collect();
                Some(dest_dir.join(name_with_suffix(stem, n, &tail)))
            }
            _ => None,
        };
        let taken = [Some(&video_to), caption_to.as_ref(), Some(&receipt_to)]
            .into_iter()
            .flatten()
            .any(|p| exists(p));
        if !taken {
            match write_new_file(&receipt_to, &json) {
                Ok(()) => break (video_to, caption_to, receipt_to),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(source) => {
                    return Err(ArchiveError::Io {
                        action: "write receipt",
                        path: receipt_to,
                        source,
                    });
                }
            }
        }
        n += 1;
    };

    let caption_to = match caption_plan {
        None => None,
        Some((from, _)) => {
            let to = match following_caption_to {
                Some(to) => to,
                None => free_name(&dest_dir, from)?,
            };
            move_file(from, &to)?;
            Some(to)
        }
    };
    move_file(video, &video_to)?;
    tracing::info!(
        video = %video.display(),
        to = %video_to.display(),
        "archived"
    );
    Ok(Archived {
        video: video_to,
        caption: caption_to,
        receipt: receipt_to,
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

/// A free name in `dir` for a caption that is not named after the video.
fn free_name(dir: &Path, from: &Path) -> Result<PathBuf, ArchiveError> {
    let name = from
        .file_name()
        .ok_or_else(|| ArchiveError::NoFileName(from.to_path_buf()))?;
    let as_path = Path::new(name);
    let stem = as_path.file_stem().unwrap_or(name);
    let tail: Vec<&OsStr> = as_path.extension().into_iter().collect();
    (0..=MAX_SUFFIX)
        .map(|n| dir.join(name_with_suffix(stem, n, &tail)))
        .find(|p| !exists(p))
        .ok_or_else(|| ArchiveError::NoFreeName {
            dir: dir.to_path_buf(),
            name: name.to_os_string(),
        })
}

/// Whether anything (a dangling symlink included) has this name.
fn exists(path: &Path) -> bool {
    fs::symlink_metadata(path).is_ok()
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

/// Writes `bytes` to a temp file beside `to`, fsyncs it and renames it to `to`
/// without replacing anything (`AlreadyExists` if `to` is taken).
fn write_new_file(to: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = parent_of(to);
    let mut tmp = tempfile::Builder::new()
        .prefix(".dropcast-")
        .suffix(".tmp")
        .tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist_noclobber(to).map_err(|e| e.error)?;
    sync_dir(dir)
}

/// Moves `from` to `to` without replacing anything; across file systems: copy to a
/// temp name beside `to`, fsync, rename, fsync the folder, then remove the source.
fn move_file(from: &Path, to: &Path) -> Result<(), ArchiveError> {
    let result = match rename_noreplace(from, to) {
        Ok(()) => sync_dir(parent_of(to)),
        Err(e) if e.kind() == io::ErrorKind::CrossesDevices => copy_across(from, to),
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => {
            // The source folder's entry is gone; make that durable too (best effort).
            let _ = sync_dir(parent_of(from));
            Ok(())
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            Err(ArchiveError::Raced(to.to_path_buf()))
        }
        Err(source) => Err(ArchiveError::Io {
            action: "move",
            path: from.to_path_buf(),
            source,
        }),
    }
}

fn copy_across(from: &Path, to: &Path) -> io::Result<()> {
    let dir = parent_of(to);
    let mut src = File::open(from)?;
    let meta = src.metadata()?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".dropcast-")
        .suffix(".part")
        .tempfile_in(dir)?;
    io::copy(&mut src, tmp.as_file_mut())?;
    tmp.as_file().set_permissions(meta.permissions())?;
    if let Ok(modified) = meta.modified() {
        // Keeping the mtime is a courtesy; the copy is good without it.
        let _ = tmp.as_file().set_modified(modified);
    }
    tmp.as_file().sync_all()?;
    // On failure the temp file (our own copy) is removed; the source is untouched.
    tmp.persist_noclobber(to).map_err(|e| e.error)?;
    sync_dir(dir)?;
    fs::remove_file(from)
}

fn parent_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

#[cfg(unix)]
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> io::Result<()> {
    Ok(())
}

/// `rename` that fails with `AlreadyExists` instead of replacing `to`.
fn rename_noreplace(from: &Path, to: &Path) -> io::Result<()> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        use rustix::fs::{CWD, RenameFlags, renameat_with};
        use rustix::io::Errno;
        match renameat_with(CWD, from, CWD, to, RenameFlags::NOREPLACE) {
            Ok(()) => return Ok(()),
            // The kernel or the file system does not know the flag: fall back.
            Err(Errno::INVAL | Errno::NOSYS | Errno::OPNOTSUPP) => {}
            Err(e) => return Err(e.into()),
        }
    }
    link_then_unlink(from, to)
}

/// Hard-link then unlink; where the file system has no hard links, check then rename
/// (the documented, racy last resort).
fn link_then_unlink(from: &Path, to: &Path) -> io::Result<()> {
    match fs::hard_link(from, to) {
        Ok(()) => {
            if let Err(e) = fs::remove_file(from) {
                tracing::warn!(
                    from = %from.display(),
                    error = %e,
                    "archived by hard link; the inbox name could not be removed"
                );
            }
            Ok(())
        }
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::AlreadyExists
                    | io::ErrorKind::CrossesDevices
                    | io::ErrorKind::NotFound
            ) =>
        {
            Err(e)
        }
        Err(_) => {
            if exists(to) {
                return Err(io::Error::from(io::ErrorKind::AlreadyExists));
            }
            fs::rename(from, to)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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

    #[test]
    fn video_outside_the_inbox_keeps_only_its_name() {
        let f = fixture();
        let elsewhere = tempfile::tempdir().unwrap();
        let video = put(&elsewhere.path().join("deep/down/clip.mp4"), "V");
        let caption = put(&elsewhere.path().join("notes.yaml"), "C");
        let out = archive(
            &f.folders,
            Destination::Done,
            &video,
            Some(&caption),
            &json!({}),
        )
        .unwrap();
        assert_eq!(out.video, f.folders.done.join("clip.mp4"));
        assert_eq!(out.caption, Some(f.folders.done.join("notes.yaml")));
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

    #[test]
    fn rename_noreplace_refuses_to_overwrite() {
        let f = fixture();
        let a = put(&f.folders.inbox.join("a"), "A");
        let b = put(&f.folders.inbox.join("b"), "B");
        let err = rename_noreplace(&a, &b).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(read(&a), "A");
        assert_eq!(read(&b), "B");
        let err = link_then_unlink(&a, &b).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        let c = f.folders.inbox.join("c");
        link_then_unlink(&a, &c).unwrap();
        assert!(!a.exists());
        assert_eq!(read(&c), "A");
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
