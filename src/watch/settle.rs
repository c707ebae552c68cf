//! Deciding when a file has finished being written (README "Folder rules"): it must be seen with
//! the same size and mtime for the whole `settle` period. Pure bookkeeping over `stat`;
//! the clock is passed in, so tests need no sleeps.
//!
//! The flow for the agent loop is: every candidate path is [`Settler::observe`]d (from a
//! scan or a watch event); the loop calls [`Settler::poll`] at [`Settler::next_check`];
//! each [`Settled`] video then goes through [`check_content`], the seam where content
//! checks (the MP4 top-level box walk) decide whether a quiet file is also a finished one.
//!
//! An mtime in the past proves nothing (rsync and `cp -p` keep old mtimes while writing),
//! so only observation counts: a file is settled when *we* saw it unchanged for `settle`.

use std::collections::HashMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use crate::video::FileIdentity;

use super::media::Completeness;

/// A file that was seen unchanged for the settle period.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settled {
    pub path: PathBuf,
    pub size: u64,
    pub modified: SystemTime,
    /// Which file it was (device, inode) and its change time: what proves later that the
    /// file read and uploaded is this one, unwritten (a same-size write that puts the
    /// mtime back still moves the change time).
    pub(crate) identity: FileIdentity,
}

impl Settled {
    /// The stamp of `meta`, as if `path` had settled with it now.
    pub(crate) fn from_metadata(path: PathBuf, meta: &fs::Metadata) -> Settled {
        Settled {
            size: meta.len(),
            modified: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
            identity: FileIdentity::at(&path, meta),
            path,
        }
    }
}

/// What `stat` says, as far as settling cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Stamp {
    size: u64,
    modified: SystemTime,
    identity: FileIdentity,
}

impl Stamp {
    /// `None` when the path is gone or is not a regular file (symlinks are not followed).
    fn of(path: &Path) -> Option<Stamp> {
        let meta = fs::symlink_metadata(path).ok()?;
        if !meta.file_type().is_file() {
            return None;
        }
        Some(Stamp {
            size: meta.len(),
            // Every platform we run on has mtimes; a file system without them can only
            // settle on size, which is still an observation.
            modified: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
            identity: FileIdentity::at(path, &meta),
        })
    }
}

#[derive(Debug)]
struct Tracked {
    stamp: Stamp,
    /// When the current stamp was first seen (or the last change event arrived).
    since: Instant,
    /// How long it must stay unchanged: `settle`, or less after a "finished" hint.
    window: Duration,
}

/// How long a file must stay unchanged after a writer closed it (or renamed it into
/// place) before its content is checked. Short: the hint is good evidence, and the
/// content check still decides.
pub(crate) const FINISHED_CONFIRM: Duration = Duration::from_millis(100);

/// Tracks candidate files until each has been quiet for `settle`.
#[derive(Debug)]
pub struct Settler {
    settle: Duration,
    tracked: HashMap<PathBuf, Tracked>,
}

impl Settler {
    pub fn new(settle: Duration) -> Settler {
        Settler {
            settle,
            tracked: HashMap::new(),
        }
    }

    /// Starts tracking `path`, or notes that it changed: either way its clock (re)starts
    /// at `now` with its current size and mtime. A change event restarts the clock even
    /// when size and mtime look the same, since coarse mtimes can hide a write.
    ///
    /// Paths that do not exist or are not regular files (directories, symlinks) are not
    /// tracked; if one was tracked, it is dropped.
    pub fn observe(&mut self, path: PathBuf, now: Instant) {
        match Stamp::of(&path) {
            Some(stamp) => {
                self.tracked.insert(
                    path,
                    Tracked {
                        stamp,
                        since: now,
                        window: self.settle,
                    },
                );
            }
            None => {
                self.tracked.remove(&path);
            }
        }
    }

    /// Like [`observe`](Self::observe), after a writer closed the file or renamed it into
    /// place: the file must then stay unchanged only for [`FINISHED_CONFIRM`] (or `settle`,
    /// if shorter). Any later change puts it back on the full `settle` window. The
    /// content check after settling is never skipped.
    pub(crate) fn observe_finished(&mut self, path: PathBuf, now: Instant) {
        self.observe(path.clone(), now);
        if let Some(t) = self.tracked.get_mut(&path) {
            t.window = self.settle.min(FINISHED_CONFIRM);
        }
    }

    /// Starts tracking `path` unless it is already tracked; never restarts a clock. For
    /// scan results, which say "this exists", not "this changed".
    pub(crate) fn track(&mut self, path: PathBuf, now: Instant) {
        if !self.tracked.contains_key(&path) {
            self.observe(path, now);
        }
    }

    /// Stops tracking `path` (e.g. it was claimed by a job or moved away).
    pub fn forget(&mut self, path: &Path) {
        self.tracked.remove(path);
    }

    /// Stats every tracked file. A changed size or mtime restarts that file's clock; a
    /// file that vanished (or stopped being a regular file) is dropped; a file unchanged
    /// for `settle` is returned and no longer tracked. Sorted by path.
    pub fn poll(&mut self, now: Instant) -> Vec<Settled> {
        let mut settled = Vec::new();
        let settle = self.settle;
        self.tracked.retain(|path, t| {
            let Some(stamp) = Stamp::of(path) else {
                tracing::debug!(path = %path.display(), "vanished before settling");
                return false;
            };
            if stamp != t.stamp {
                t.stamp = stamp;
                t.since = now;
                t.window = settle;
                return true;
            }
            if now.saturating_duration_since(t.since) >= t.window {
                settled.push(Settled {
                    path: path.clone(),
                    size: stamp.size,
                    modified: stamp.modified,
                    identity: stamp.identity,
                });
                return false;
            }
            true
        });
        settled.sort_by(|a, b| a.path.cmp(&b.path));
        settled
    }

    /// The earliest time at which [`poll`](Self::poll) could return something, assuming
    /// nothing changes; `None` when nothing is tracked.
    pub(crate) fn next_check(&self) -> Option<Instant> {
        self.tracked.values().map(|t| t.since + t.window).min()
    }

    /// Whether `path` is being tracked.
    pub fn contains(&self, path: &Path) -> bool {
        self.tracked.contains_key(path)
    }

    pub fn len(&self) -> usize {
        self.tracked.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tracked.is_empty()
    }
}

/// Whether the settled file is still there as it settled: the same file (device, inode),
/// size, mtime and change time; `false` also when it is gone, was replaced, or is no longer
/// a regular file. Used to detect "changed while publishing": any write, even one that
/// keeps size and mtime (`cp -p`, `rsync --inplace -t`), moves the change time.
pub fn unchanged(settled: &Settled) -> io::Result<bool> {
    let meta = match fs::symlink_metadata(&settled.path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    };
    Ok(meta.file_type().is_file()
        && meta.len() == settled.size
        && meta.modified().unwrap_or(SystemTime::UNIX_EPOCH) == settled.modified
        && FileIdentity::at(&settled.path, &meta) == settled.identity)
}

/// The content seam of settling, for videos only: decides whether a quiet file is also a
/// finished one.
///
/// Zero bytes fails at once; MP4/MOV/M4V must pass the top-level box walk (boxes tile the
/// file exactly and include `moov` and `mdat`), WebM must start with the EBML magic (see
/// [`super::media`]). Reads box headers only.
pub fn check_content(settled: &Settled) -> io::Result<Completeness> {
    super::media::check(&settled.path, settled.size)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::{File, OpenOptions};
    use std::io::Write;

    const SETTLE: Duration = Duration::from_secs(3);

    fn write(path: &Path, bytes: &[u8]) {
        File::create(path).unwrap().write_all(bytes).unwrap();
    }

    fn append(path: &Path, bytes: &[u8]) {
        OpenOptions::new()
            .append(true)
            .open(path)
            .unwrap()
            .write_all(bytes)
            .unwrap();
    }

    #[test]
    fn finished_hint_shortens_the_window_until_the_next_change() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("clip.mp4");
        write(&path, b"abc");
        let t0 = Instant::now();
        let mut s = Settler::new(SETTLE);
        s.observe_finished(path.clone(), t0);
        assert_eq!(s.next_check(), Some(t0 + FINISHED_CONFIRM));
        assert!(s.poll(t0 + FINISHED_CONFIRM / 2).is_empty());
        assert_eq!(s.poll(t0 + FINISHED_CONFIRM).len(), 1);

        // Written again after the hint: back to the full window.
        s.observe_finished(path.clone(), t0);
        append(&path, b"more");
        let t1 = t0 + FINISHED_CONFIRM / 2;
        assert!(s.poll(t1).is_empty());
        assert!(s.poll(t1 + FINISHED_CONFIRM).is_empty());
        assert_eq!(s.next_check(), Some(t1 + SETTLE));
        assert_eq!(s.poll(t1 + SETTLE).len(), 1);
    }

    #[test]
    fn finished_hint_never_lengthens_a_short_settle() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("clip.mp4");
        write(&path, b"abc");
        let t0 = Instant::now();
        let short = Duration::from_millis(10);
        let mut s = Settler::new(short);
        s.observe_finished(path, t0);
        assert_eq!(s.next_check(), Some(t0 + short));
    }

    #[test]
    fn stable_file_settles_after_settle_not_before() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.mp4");
        write(&p, b"hello");
        let t0 = Instant::now();
        let mut s = Settler::new(SETTLE);
        s.observe(p.clone(), t0);
        assert_eq!(s.len(), 1);
        assert_eq!(s.next_check(), Some(t0 + SETTLE));

        assert!(s.poll(t0).is_empty());
        assert!(s.poll(t0 + SETTLE - Duration::from_millis(1)).is_empty());
        let out = s.poll(t0 + SETTLE);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].path, p);
        assert_eq!(out[0].size, 5);
        assert!(s.is_empty(), "a settled file is no longer tracked");
        assert_eq!(s.next_check(), None);
        assert!(unchanged(&out[0]).unwrap());
    }

    #[test]
    fn growing_file_never_settles() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("grow.mp4");
        write(&p, b"x");
        let t0 = Instant::now();
        let mut s = Settler::new(SETTLE);
        s.observe(p.clone(), t0);
        for i in 1..=10u32 {
            append(&p, b"more bytes");
            let now = t0 + SETTLE * i;
            assert!(s.poll(now).is_empty(), "settled while growing (round {i})");
            assert_eq!(
                s.next_check(),
                Some(now + SETTLE),
                "clock restarts at change"
            );
        }
        // Once it stops growing, it settles one period after the last change was seen.
        let last_change_seen = t0 + SETTLE * 10;
        assert!(s.poll(last_change_seen + SETTLE / 2).is_empty());
        assert_eq!(s.poll(last_change_seen + SETTLE).len(), 1);
    }

    #[test]
    fn change_event_resets_the_clock() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.mp4");
        write(&p, b"hello");
        let t0 = Instant::now();
        let mut s = Settler::new(SETTLE);
        s.observe(p.clone(), t0);
        // An event (e.g. a write that kept size and coarse mtime) restarts the clock.
        let t1 = t0 + Duration::from_secs(2);
        s.observe(p.clone(), t1);
        assert_eq!(s.len(), 1, "observing twice tracks once");
        assert!(s.poll(t0 + SETTLE).is_empty());
        assert_eq!(s.next_check(), Some(t1 + SETTLE));
        assert_eq!(s.poll(t1 + SETTLE).len(), 1);
    }

    #[test]
    fn track_does_not_restart_the_clock() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.mp4");
        write(&p, b"hello");
        let t0 = Instant::now();
        let mut s = Settler::new(SETTLE);
        s.track(p.clone(), t0);
        s.track(p.clone(), t0 + Duration::from_secs(2));
        assert_eq!(s.len(), 1);
        assert_eq!(s.next_check(), Some(t0 + SETTLE));
        assert_eq!(s.poll(t0 + SETTLE).len(), 1);
        s.track(dir.path().join("missing"), t0);
        assert!(s.is_empty());
    }

    #[test]
    fn size_change_between_polls_resets_the_clock() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.mp4");
        write(&p, b"hello");
        let t0 = Instant::now();
        let mut s = Settler::new(SETTLE);
        s.observe(p.clone(), t0);
        // Rewritten with a different size, no event delivered (poll-only backend).
        write(&p, b"hello, world");
        let t1 = t0 + Duration::from_secs(2);
        assert!(s.poll(t1).is_empty());
        assert!(s.poll(t0 + SETTLE).is_empty(), "old clock must not count");
        let out = s.poll(t1 + SETTLE);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].size, 12);
    }

    #[test]
    fn vanished_file_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.mp4");
        write(&p, b"hello");
        let t0 = Instant::now();
        let mut s = Settler::new(SETTLE);
        s.observe(p.clone(), t0);
        fs::remove_file(&p).unwrap();
        assert!(s.poll(t0 + SETTLE).is_empty());
        assert!(s.is_empty());
    }

    #[test]
    fn missing_and_non_files_are_not_tracked() {
        let dir = tempfile::tempdir().unwrap();
        let t0 = Instant::now();
        let mut s = Settler::new(SETTLE);
        s.observe(dir.path().join("nope.mp4"), t0);
        s.observe(dir.path().to_path_buf(), t0);
        assert!(s.is_empty());
    }

    #[test]
    fn forget_stops_tracking() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.mp4");
        write(&p, b"hello");
        let t0 = Instant::now();
        let mut s = Settler::new(SETTLE);
        s.observe(p.clone(), t0);
        assert!(s.contains(&p));
        s.forget(&p);
        assert!(!s.contains(&p));
        assert!(s.poll(t0 + SETTLE).is_empty());
    }

    #[test]
    fn next_check_is_the_earliest() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        write(&a, b"1");
        write(&b, b"2");
        let t0 = Instant::now();
        let mut s = Settler::new(SETTLE);
        s.observe(b.clone(), t0 + Duration::from_secs(1));
        s.observe(a.clone(), t0);
        assert_eq!(s.next_check(), Some(t0 + SETTLE));
        let out = s.poll(t0 + SETTLE);
        assert_eq!(out.iter().map(|x| &x.path).collect::<Vec<_>>(), vec![&a]);
        assert_eq!(s.next_check(), Some(t0 + Duration::from_secs(1) + SETTLE));
    }

    #[test]
    fn unchanged_detects_change_and_removal() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.mp4");
        write(&p, b"hello");
        let t0 = Instant::now();
        let mut s = Settler::new(Duration::ZERO);
        s.observe(p.clone(), t0);
        let settled = s.poll(t0).pop().unwrap();
        assert!(unchanged(&settled).unwrap());
        append(&p, b"!");
        assert!(!unchanged(&settled).unwrap());
        fs::remove_file(&p).unwrap();
        assert!(!unchanged(&settled).unwrap());
    }

    // Regression (issue 9 item 3): a same-size write that put the mtime back (`cp -p`,
    // `rsync --inplace -t`) passed the size-and-mtime check.
    #[cfg(unix)]
    #[test]
    fn unchanged_sees_a_same_size_write_that_keeps_the_mtime() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.mp4");
        write(&p, b"hello");
        let meta = fs::metadata(&p).unwrap();
        let settled = Settled::from_metadata(p.clone(), &meta);
        assert!(unchanged(&settled).unwrap());
        std::thread::sleep(Duration::from_millis(20));
        let f = OpenOptions::new().write(true).open(&p).unwrap();
        (&f).write_all(b"HELLO").unwrap();
        f.set_modified(meta.modified().unwrap()).unwrap();
        drop(f);
        let now = fs::metadata(&p).unwrap();
        assert_eq!(
            (now.len(), now.modified().unwrap()),
            (5, meta.modified().unwrap())
        );
        assert!(!unchanged(&settled).unwrap());
    }

    #[test]
    fn content_check_walks_the_boxes_of_the_settled_file() {
        let dir = tempfile::tempdir().unwrap();
        let clip = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/media/clip.mp4");
        let bytes = fs::read(clip).unwrap();
        let check = |name: &str, content: &[u8]| {
            let path = dir.path().join(name);
            write(&path, content);
            let meta = fs::metadata(&path).unwrap();
            check_content(&Settled::from_metadata(path, &meta)).unwrap()
        };
        assert_eq!(check("whole.mp4", &bytes), Completeness::Complete);
        assert!(matches!(
            check("half.mp4", &bytes[..bytes.len() / 2]),
            Completeness::Incomplete { .. }
        ));
        assert!(matches!(
            check("empty.mp4", b""),
            Completeness::NotAVideo { .. }
        ));
        assert!(matches!(
            check("notes.mp4", b"hello, world"),
            Completeness::NotAVideo { .. }
        ));
    }
}
