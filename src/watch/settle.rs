//! Deciding when a file has finished being written (README "What finished means"): it must
//! be seen with the same size and mtime for the whole `settle` period, no writer may still
//! be at it, and then its content must say it is complete. Bookkeeping over `stat`; the
//! clock is passed in, so tests need no sleeps.
//!
//! The flow for the agent loop is: every candidate path is [`Settler::observe`]d (from a
//! scan or a watch event); the loop calls [`Settler::poll`] at [`Settler::next_check`];
//! each [`Settled`] video then goes through [`check_content`], the seam where content
//! checks (the MP4 top-level box walk) decide whether a quiet file is also a finished one.
//!
//! An mtime in the past proves nothing (rsync and `cp -p` keep old mtimes while writing),
//! so only observation counts: a file is settled when *we* saw it unchanged for `settle`.
//! Size says nothing either (Explorer, torrent clients and `fallocate` set the final size
//! first), so a quiet file is also held back while
//! * a writer was seen writing it and not closing it, where the watcher reports closes
//!   ([`Settler::await_close`]; Linux), for at most `watch.incomplete_timeout` after its
//!   last write, and
//! * [`super::busy::still_writing`] finds a downloader's marker beside it or a process
//!   holding it open for writing: as long as that lasts (said once, and again after
//!   `watch.incomplete_timeout`).

use std::collections::HashMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
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
    /// The last write event with no close-after-write after it (only kept when the
    /// watcher reports closes).
    written: Option<Instant>,
    /// Since when a busy check has found it still being written, and whether that was
    /// said again after `incomplete_timeout`.
    busy: Option<(Instant, bool)>,
    /// Whether "quiet, but not closed" was said for the current write.
    told: bool,
}

/// How long a file must stay unchanged after a writer closed it (or renamed it into
/// place) before its content is checked. Short: the hint is good evidence, and the
/// content check still decides.
pub(crate) const FINISHED_CONFIRM: Duration = Duration::from_millis(100);

/// Finds which quiet files are still being written, and why (the seam tests replace).
type BusyCheck = dyn Fn(&[PathBuf]) -> HashMap<PathBuf, String> + Send + Sync;

/// Tracks candidate files until each has been quiet for `settle` and no writer is left.
pub struct Settler {
    settle: Duration,
    /// `watch.incomplete_timeout`: how long a hold lasts before it is given up (close
    /// events) or said again (busy checks).
    patience: Duration,
    /// The watcher reports close-after-write: a file seen written waits for its close.
    await_close: bool,
    busy: Arc<BusyCheck>,
    tracked: HashMap<PathBuf, Tracked>,
}

impl std::fmt::Debug for Settler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settler")
            .field("settle", &self.settle)
            .field("patience", &self.patience)
            .field("await_close", &self.await_close)
            .field("tracked", &self.tracked)
            .finish_non_exhaustive()
    }
}

/// What one tracked file needs after a look.
enum Look {
    Wait,
    /// Quiet, and no close is awaited: ask the busy check.
    Due,
}

impl Settler {
    /// A settler whose holds last `patience` (`watch.incomplete_timeout`) before they are
    /// given up or said again, with the system's busy checks ([`super::busy`]).
    pub fn new(settle: Duration, patience: Duration) -> Settler {
        Settler::with_busy_check(settle, patience, Arc::new(super::busy::still_writing))
    }

    pub(crate) fn with_busy_check(
        settle: Duration,
        patience: Duration,
        busy: Arc<BusyCheck>,
    ) -> Settler {
        Settler {
            settle,
            patience,
            await_close: false,
            busy,
            tracked: HashMap::new(),
        }
    }

    /// The watcher reports close-after-write (Linux native events): from now on a file
    /// [`observe_written`](Self::observe_written) waits for its close (or for `patience`
    /// after its last write) however quiet it is.
    pub(crate) fn await_close(&mut self) {
        self.await_close = true;
    }

    /// Starts tracking `path`, or notes that it changed: either way its clock (re)starts
    /// at `now` with its current size and mtime. A change event restarts the clock even
    /// when size and mtime look the same, since coarse mtimes can hide a write.
    ///
    /// Paths that do not exist or are not regular files (directories, symlinks) are not
    /// tracked; if one was tracked, it is dropped. A write seen earlier and not yet closed
    /// stays awaited.
    pub fn observe(&mut self, path: PathBuf, now: Instant) {
        let written = self.tracked.get(&path).and_then(|t| t.written);
        self.start(path, now, written);
    }

    /// Like [`observe`](Self::observe), for an event that says a writer wrote (or created)
    /// the file and has not closed it: with [`await_close`](Self::await_close), it is not
    /// settled before its close-after-write, or `patience` after this write.
    pub(crate) fn observe_written(&mut self, path: PathBuf, now: Instant) {
        let written = self.await_close.then_some(now);
        self.start(path, now, written);
    }

    /// Like [`observe`](Self::observe), after a writer closed the file or renamed it into
    /// place: the file must then stay unchanged only for [`FINISHED_CONFIRM`] (or `settle`,
    /// if shorter), and no write is awaited any more. Any later change puts it back on the
    /// full `settle` window. The busy and content checks after settling are never skipped.
    pub(crate) fn observe_finished(&mut self, path: PathBuf, now: Instant) {
        self.start(path.clone(), now, None);
        if let Some(t) = self.tracked.get_mut(&path) {
            t.window = self.settle.min(FINISHED_CONFIRM);
        }
    }

    fn start(&mut self, path: PathBuf, now: Instant, written: Option<Instant>) {
        match Stamp::of(&path) {
            Some(stamp) => {
                let busy = self.tracked.get(&path).and_then(|t| t.busy);
                let tracked = Tracked {
                    stamp,
                    since: now,
                    window: self.settle,
                    written,
                    busy,
                    told: false,
                };
                self.tracked.insert(path, tracked);
            }
            None => {
                self.tracked.remove(&path);
            }
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
    /// for `settle` whose close is not awaited is asked about (one busy check for all of
    /// them): if nobody is still writing it, it is returned and no longer tracked. Sorted
    /// by path.
    pub fn poll(&mut self, now: Instant) -> Vec<Settled> {
        let mut due = Vec::new();
        let (settle, patience) = (self.settle, self.patience);
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
            if let Look::Due = look(path, t, now, patience) {
                due.push(path.clone());
            }
            true
        });
        if due.is_empty() {
            return Vec::new();
        }
        let busy = (self.busy)(&due);
        let mut settled = Vec::new();
        for path in due {
            match busy.get(&path) {
                Some(why) => self.hold(&path, why, now),
                None => {
                    if let Some(t) = self.tracked.remove(&path) {
                        if t.busy.is_some() {
                            tracing::info!(file = %path.display(), "no longer being written");
                        }
                        settled.push(Settled {
                            path,
                            size: t.stamp.size,
                            modified: t.stamp.modified,
                            identity: t.stamp.identity,
                        });
                    }
                }
            }
        }
        settled.sort_by(|a, b| a.path.cmp(&b.path));
        settled
    }

    /// A busy check found `path` still being written: looked at again after another
    /// settle window, however long it takes; said once, and once more after `patience`.
    fn hold(&mut self, path: &Path, why: &str, now: Instant) {
        let patience = self.patience;
        let Some(t) = self.tracked.get_mut(path) else {
            return;
        };
        t.since = now;
        match &mut t.busy {
            None => {
                tracing::info!(file = %path.display(), reason = %why, "still being written; waiting");
                t.busy = Some((now, false));
            }
            Some((since, said)) if !*said && now.saturating_duration_since(*since) >= patience => {
                *said = true;
                tracing::warn!(
                    file = %path.display(),
                    reason = %why,
                    "still being written after {}; it is not published while this lasts",
                    humantime::format_duration(patience)
                );
            }
            Some(_) => {}
        }
    }

    /// The earliest time at which [`poll`](Self::poll) could return something, assuming
    /// nothing changes; `None` when nothing is tracked.
    pub(crate) fn next_check(&self) -> Option<Instant> {
        self.tracked
            .values()
            .map(|t| {
                let quiet = t.since + t.window;
                match t.written {
                    Some(written) => quiet.max(written + self.patience),
                    None => quiet,
                }
            })
            .min()
    }

    /// The tracked files a busy check is holding back (still being written), sorted.
    pub(crate) fn held(&self) -> Vec<PathBuf> {
        let mut held: Vec<PathBuf> = self
            .tracked
            .iter()
            .filter(|(_, t)| t.busy.is_some())
            .map(|(p, _)| p.clone())
            .collect();
        held.sort();
        held
    }

    /// True when every tracked file (if any) is held back by a busy check: nothing will
    /// settle until a writer lets go.
    pub(crate) fn only_held(&self) -> bool {
        self.tracked.values().all(|t| t.busy.is_some())
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

/// Whether a tracked, unchanged file is quiet and its close (if awaited) came or was given
/// up on: then the busy check decides. Giving up on a close is said at info level.
fn look(path: &Path, t: &mut Tracked, now: Instant, patience: Duration) -> Look {
    if now.saturating_duration_since(t.since) < t.window {
        return Look::Wait;
    }
    if let Some(written) = t.written {
        if now.saturating_duration_since(written) < patience {
            if !t.told {
                t.told = true;
                tracing::debug!(file = %path.display(), "quiet, but its writer has not closed it; waiting for the close");
            }
            return Look::Wait;
        }
        t.written = None;
        tracing::info!(
            file = %path.display(),
            "written {} ago and never closed; its content decides whether it is finished",
            humantime::format_duration(patience)
        );
    }
    Look::Due
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
    const PATIENCE: Duration = Duration::from_secs(600);

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

    /// A settler whose busy check says what `busy` holds, counting its calls.
    fn scripted(
        busy: &Arc<std::sync::Mutex<HashMap<PathBuf, String>>>,
        calls: &Arc<std::sync::atomic::AtomicUsize>,
    ) -> Settler {
        let (busy, calls) = (Arc::clone(busy), Arc::clone(calls));
        let check = move |paths: &[PathBuf]| {
            calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let busy = busy.lock().unwrap();
            paths
                .iter()
                .filter_map(|p| Some((p.clone(), busy.get(p)?.clone())))
                .collect()
        };
        Settler::with_busy_check(SETTLE, PATIENCE, Arc::new(check))
    }

    fn never_busy() -> Settler {
        Settler::with_busy_check(SETTLE, PATIENCE, Arc::new(|_: &[PathBuf]| HashMap::new()))
    }

    #[test]
    fn a_file_seen_written_waits_for_its_close_however_quiet() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("copy.mp4");
        write(&path, b"abc");
        let t0 = Instant::now();
        let mut s = never_busy();
        s.await_close();
        s.observe_written(path.clone(), t0);
        // Quiet for many settle periods, but the writer has not closed it.
        for i in 1..=10u32 {
            assert!(s.poll(t0 + SETTLE * i).is_empty(), "settled at round {i}");
        }
        // A metadata change (chmod) in between does not forget the open write.
        s.observe(path.clone(), t0 + SETTLE * 10);
        assert!(s.poll(t0 + SETTLE * 12).is_empty());
        let closed = t0 + SETTLE * 13;
        s.observe_finished(path.clone(), closed);
        assert_eq!(s.poll(closed + FINISHED_CONFIRM).len(), 1);
    }

    #[test]
    fn a_write_that_is_never_closed_is_given_up_after_patience() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("copy.mp4");
        write(&path, b"abc");
        let t0 = Instant::now();
        let mut s = never_busy();
        s.await_close();
        s.observe_written(path.clone(), t0);
        assert_eq!(s.next_check(), Some(t0 + PATIENCE));
        assert!(s.poll(t0 + PATIENCE - Duration::from_millis(1)).is_empty());
        // A later write event moves the bound.
        let t1 = t0 + Duration::from_secs(60);
        s.observe_written(path.clone(), t1);
        assert!(s.poll(t0 + PATIENCE).is_empty());
        assert_eq!(s.next_check(), Some(t1 + PATIENCE));
        assert_eq!(s.poll(t1 + PATIENCE).len(), 1, "then its content decides");
    }

    #[test]
    fn write_events_wait_for_nothing_when_closes_are_not_reported() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("copy.mp4");
        write(&path, b"abc");
        let t0 = Instant::now();
        let mut s = never_busy();
        s.observe_written(path, t0);
        assert_eq!(s.next_check(), Some(t0 + SETTLE));
        assert_eq!(s.poll(t0 + SETTLE).len(), 1);
    }

    #[test]
    fn a_busy_file_waits_as_long_as_it_is_busy_and_one_check_serves_a_batch() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a.mp4"), dir.path().join("b.mp4"));
        write(&a, b"a");
        write(&b, b"b");
        let busy = Arc::new(std::sync::Mutex::new(HashMap::new()));
        let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut s = scripted(&busy, &calls);
        busy.lock().unwrap().insert(a.clone(), "held".to_owned());
        let t0 = Instant::now();
        s.observe(a.clone(), t0);
        s.observe(b.clone(), t0);
        assert!(s.poll(t0 + SETTLE / 2).is_empty());
        assert_eq!(
            calls.load(std::sync::atomic::Ordering::SeqCst),
            0,
            "asked too early"
        );
        let out = s.poll(t0 + SETTLE);
        assert_eq!(out.iter().map(|x| &x.path).collect::<Vec<_>>(), vec![&b]);
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 1);
        // Held past the patience too: busy evidence is never given up on.
        let late = t0 + PATIENCE * 3;
        assert!(s.poll(late).is_empty());
        assert!(s.poll(late + SETTLE * 2).is_empty());
        assert_eq!(s.next_check(), Some(late + SETTLE * 2 + SETTLE));
        busy.lock().unwrap().clear();
        assert!(
            s.poll(late + SETTLE * 2 + SETTLE / 2).is_empty(),
            "looked at too soon"
        );
        assert_eq!(s.poll(late + SETTLE * 3).len(), 1);
    }

    // Regression (issue 14 part 3): a pre-allocated copy of a faststart MP4 tiles its boxes
    // while its payload is still zeros, so a writer pausing past `settle` got it published.
    #[cfg(any(target_os = "linux", windows))]
    #[test]
    fn a_preallocated_faststart_copy_held_open_is_not_settled_though_its_boxes_tile() {
        let dir = tempfile::tempdir().unwrap();
        let clip = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/media/clip.mp4");
        let bytes = fs::read(clip).unwrap();
        let path = dir.path().join("copy.mp4");
        let mut writer = File::create(&path).unwrap();
        writer.set_len(bytes.len() as u64).unwrap();
        writer.write_all(&bytes[..bytes.len() / 3]).unwrap();
        let meta = fs::metadata(&path).unwrap();
        let half = Settled::from_metadata(path.clone(), &meta);
        assert_eq!(
            check_content(&half).unwrap(),
            Completeness::Complete,
            "the hole"
        );

        // No events at all (a restart, or polling): the busy check alone holds it.
        let t0 = Instant::now();
        let mut s = Settler::new(SETTLE, PATIENCE);
        s.track(path.clone(), t0);
        for i in 1..=5u32 {
            assert!(s.poll(t0 + SETTLE * i).is_empty(), "settled while open");
        }
        writer.write_all(&bytes[bytes.len() / 3..]).unwrap();
        drop(writer);
        s.observe_finished(path.clone(), t0 + SETTLE * 6);
        let out = s.poll(t0 + SETTLE * 6 + FINISHED_CONFIRM);
        assert_eq!(out.len(), 1);
        assert_eq!(fs::read(&path).unwrap(), bytes);
    }

    #[test]
    fn finished_hint_shortens_the_window_until_the_next_change() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("clip.mp4");
        write(&path, b"abc");
        let t0 = Instant::now();
        let mut s = Settler::new(SETTLE, PATIENCE);
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
        let mut s = Settler::new(short, PATIENCE);
        s.observe_finished(path, t0);
        assert_eq!(s.next_check(), Some(t0 + short));
    }

    #[test]
    fn stable_file_settles_after_settle_not_before() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.mp4");
        write(&p, b"hello");
        let t0 = Instant::now();
        let mut s = Settler::new(SETTLE, PATIENCE);
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
        let mut s = Settler::new(SETTLE, PATIENCE);
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
        let mut s = Settler::new(SETTLE, PATIENCE);
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
        let mut s = Settler::new(SETTLE, PATIENCE);
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
        let mut s = Settler::new(SETTLE, PATIENCE);
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
        let mut s = Settler::new(SETTLE, PATIENCE);
        s.observe(p.clone(), t0);
        fs::remove_file(&p).unwrap();
        assert!(s.poll(t0 + SETTLE).is_empty());
        assert!(s.is_empty());
    }

    #[test]
    fn missing_and_non_files_are_not_tracked() {
        let dir = tempfile::tempdir().unwrap();
        let t0 = Instant::now();
        let mut s = Settler::new(SETTLE, PATIENCE);
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
        let mut s = Settler::new(SETTLE, PATIENCE);
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
        let mut s = Settler::new(SETTLE, PATIENCE);
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
        let mut s = Settler::new(Duration::ZERO, PATIENCE);
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
