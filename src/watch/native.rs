//! File system events for the inbox: notify's native watcher (inotify, FSEvents, …) or its
//! poll watcher, debounced by notify-debouncer-full and reduced to "look at these paths"
//! or "rescan everything" (README "Folder rules").
//!
//! Events are hints, never proof that a file is complete: every path still goes through
//! the settler. Removals are not forwarded (the settler notices a vanished file itself).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use notify_debouncer_full::notify::event::{
    AccessKind, AccessMode, CreateKind, ModifyKind, RenameMode,
};
use notify_debouncer_full::notify::{
    self, EventKind, PollWatcher, RecommendedWatcher, RecursiveMode,
};
use notify_debouncer_full::{
    DebounceEventResult, DebouncedEvent, Debouncer, NoCache, RecommendedCache, new_debouncer_opt,
};
use tokio::sync::mpsc::UnboundedSender;

/// How long the debouncer gathers events before handing them over.
const DEBOUNCE: Duration = Duration::from_millis(200);

/// What the agent loop learns from the watcher. One debounced batch yields at most one
/// `Changed`, one `Written` and one `Finished` (in that order), or a single `Rescan`; a
/// path appears in at most one of the lists of a batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WatchEvent {
    /// These paths had their metadata changed or were renamed away (the old name), or (with
    /// finished hints off) anything else happened to them, and no writer was seen finishing
    /// with them afterwards. Sorted, no duplicates. May include directories, temp names
    /// and paths that no longer exist.
    Changed(Vec<PathBuf>),
    /// A writer created or wrote these paths and was not seen closing them afterwards
    /// (finished hints on only; otherwise these are `Changed`). Where the watcher reports
    /// closes ([`InboxWatcher::reports_closes`]) such a file is still open for writing.
    /// Sorted, no duplicates.
    Written(Vec<PathBuf>),
    /// A writer just finished with these paths: their last event in the batch was a
    /// close-after-write, or a rename that gave them this name. Only a hint that the
    /// settle wait may be shortened, never proof that the file is complete. Only native
    /// watchers that report closes or renames produce it (never the poll watcher).
    /// Sorted, no duplicates.
    Finished(Vec<PathBuf>),
    /// Events may have been lost (queue overflow, watcher error): scan the whole inbox.
    Rescan,
}

impl WatchEvent {
    /// The paths this event names (empty for [`WatchEvent::Rescan`]).
    pub fn paths(&self) -> &[PathBuf] {
        match self {
            WatchEvent::Changed(paths)
            | WatchEvent::Written(paths)
            | WatchEvent::Finished(paths) => paths,
            WatchEvent::Rescan => &[],
        }
    }
}

/// How [`watch_with`] reports events.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WatchOptions {
    /// Report [`WatchEvent::Finished`] for paths a writer just finished with. When false,
    /// those paths are reported as [`WatchEvent::Changed`] like everything else.
    pub finished_hints: bool,
}

impl Default for WatchOptions {
    fn default() -> Self {
        WatchOptions {
            finished_hints: true,
        }
    }
}

/// Which notify watcher to use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// The platform's native watcher.
    Native,
    /// notify's poll watcher, comparing size and mtime every interval (for NFS, SMB,
    /// sshfs, or when native watching fails).
    Poll(Duration),
}

/// Why watching could not start. The caller may fall back to [`Backend::Poll`].
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    /// The inbox is missing or not a directory (checked up front: the poll watcher
    /// would otherwise wait silently for it to appear).
    #[error("cannot watch {}: {source}", path.display())]
    Root {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot start the {backend} file watcher: {source}")]
    Start {
        backend: &'static str,
        #[source]
        source: notify::Error,
    },
    #[error("cannot watch {}: {source}", path.display())]
    Watch {
        path: PathBuf,
        #[source]
        source: notify::Error,
    },
}

impl WatchError {
    /// True when the OS ran out of watches (`fs.inotify.max_user_watches`) or of inotify
    /// instances / file descriptors (EMFILE, ENFILE from `inotify_init`, e.g.
    /// `fs.inotify.max_user_instances`).
    pub(crate) fn is_watch_limit(&self) -> bool {
        self.notify_error().is_some_and(|e| match &e.kind {
            notify::ErrorKind::MaxFilesWatch => true,
            notify::ErrorKind::Io(io) => errno_is(io, Errno::OutOfDescriptors),
            _ => false,
        })
    }

    /// True when native watching cannot work here but polling can: an OS limit (see
    /// [`WatchError::is_watch_limit`]) or a kernel or file system without native events
    /// (ENOSYS, EOPNOTSUPP). False for a missing or unreadable inbox, which polling
    /// cannot fix either.
    pub(crate) fn should_poll(&self) -> bool {
        self.is_watch_limit()
            || self.notify_error().is_some_and(|e| match &e.kind {
                notify::ErrorKind::Io(io) => errno_is(io, Errno::Unsupported),
                _ => false,
            })
    }

    fn notify_error(&self) -> Option<&notify::Error> {
        match self {
            WatchError::Start { source, .. } | WatchError::Watch { source, .. } => Some(source),
            WatchError::Root { .. } => None,
        }
    }
}

/// The OS errors [`WatchError`] tells apart.
#[derive(Clone, Copy)]
enum Errno {
    /// EMFILE / ENFILE.
    OutOfDescriptors,
    /// ENOSYS / EOPNOTSUPP (= ENOTSUP on Linux).
    Unsupported,
}

#[cfg(unix)]
fn errno_is(error: &std::io::Error, which: Errno) -> bool {
    use rustix::io::Errno as E;
    let Some(errno) = E::from_io_error(error) else {
        return false;
    };
    match which {
        Errno::OutOfDescriptors => errno == E::MFILE || errno == E::NFILE,
        Errno::Unsupported => errno == E::NOSYS || errno == E::OPNOTSUPP || errno == E::NOTSUP,
    }
}

#[cfg(not(unix))]
fn errno_is(error: &std::io::Error, which: Errno) -> bool {
    match which {
        Errno::OutOfDescriptors => false,
        Errno::Unsupported => error.kind() == std::io::ErrorKind::Unsupported,
    }
}

/// A running watcher. Events flow while it is alive; dropping it stops them.
pub struct InboxWatcher {
    backend: Backend,
    options: WatchOptions,
    _debouncer: Running,
}

/// Held only to keep the debouncer (and its thread) alive; its `Drop` stops it.
#[expect(dead_code, reason = "never read: held for its Drop")]
enum Running {
    Native(Debouncer<RecommendedWatcher, RecommendedCache>),
    Poll(Debouncer<PollWatcher, NoCache>),
}

impl InboxWatcher {
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Whether a writer's close-after-write reaches us as [`WatchEvent::Finished`], so a
    /// [`WatchEvent::Written`] path not yet finished is still open for writing: only
    /// notify's native watcher on Linux (inotify's `IN_CLOSE_WRITE`) with finished hints
    /// on. FSEvents (macOS), ReadDirectoryChangesW (Windows), kqueue and the poll watcher
    /// have no close event.
    pub fn reports_closes(&self) -> bool {
        cfg!(target_os = "linux") && self.backend == Backend::Native && self.options.finished_hints
    }
}

impl std::fmt::Debug for InboxWatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InboxWatcher")
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

/// Watches `root` recursively (symlinks not followed) and sends [`WatchEvent`]s to `tx`,
/// with finished hints on (see [`watch_with`]).
pub fn watch(
    root: &Path,
    backend: Backend,
    tx: UnboundedSender<WatchEvent>,
) -> Result<InboxWatcher, WatchError> {
    watch_with(root, backend, WatchOptions::default(), tx)
}

/// Watches `root` recursively (symlinks not followed) and sends [`WatchEvent`]s to `tx`.
///
/// Fails when the watcher cannot start or `root` cannot be watched (missing, or the
/// native watcher hit an OS limit); [`WatchError::should_poll`] says whether falling back
/// to `Backend::Poll` can help. Errors after start-up become [`WatchEvent::Rescan`].
///
/// A native watcher on a network or FUSE mount starts fine but misses changes made by
/// other machines: check [`super::mounts::remote_fs`] before choosing the backend.
pub fn watch_with(
    root: &Path,
    backend: Backend,
    options: WatchOptions,
    tx: UnboundedSender<WatchEvent>,
) -> Result<InboxWatcher, WatchError> {
    check_root(root)?;
    // The poll watcher compares stats: it sees neither closes nor renames, so every path
    // it reports is just Changed.
    let options = match backend {
        Backend::Native => options,
        Backend::Poll(_) => WatchOptions {
            finished_hints: false,
        },
    };
    let handler = move |result: DebounceEventResult| {
        for event in translate(result, options) {
            // A closed receiver means the agent is shutting down; nothing to do.
            let _ = tx.send(event);
        }
    };
    let config = notify::Config::default().with_follow_symlinks(false);
    let running = match backend {
        Backend::Native => {
            let mut debouncer = new_debouncer_opt::<_, RecommendedWatcher, RecommendedCache>(
                DEBOUNCE,
                None,
                handler,
                RecommendedCache::new(),
                config,
            )
            .map_err(|source| WatchError::Start {
                backend: "native",
                source,
            })?;
            watch_root(&mut debouncer, root)?;
            Running::Native(debouncer)
        }
        Backend::Poll(interval) => {
            let mut debouncer = new_debouncer_opt::<_, PollWatcher, NoCache>(
                DEBOUNCE,
                None,
                handler,
                NoCache::new(),
                config.with_poll_interval(interval),
            )
            .map_err(|source| WatchError::Start {
                backend: "poll",
                source,
            })?;
            watch_root(&mut debouncer, root)?;
            Running::Poll(debouncer)
        }
    };
    tracing::debug!(root = %root.display(), ?backend, ?options, "watching inbox");
    Ok(InboxWatcher {
        backend,
        options,
        _debouncer: running,
    })
}

fn check_root(root: &Path) -> Result<(), WatchError> {
    let root_error = |source| WatchError::Root {
        path: root.to_path_buf(),
        source,
    };
    let meta = std::fs::metadata(root).map_err(root_error)?;
    if !meta.is_dir() {
        return Err(root_error(std::io::Error::new(
            std::io::ErrorKind::NotADirectory,
            "not a directory",
        )));
    }
    Ok(())
}

fn watch_root<W: notify::Watcher, C: notify_debouncer_full::FileIdCache>(
    debouncer: &mut Debouncer<W, C>,
    root: &Path,
) -> Result<(), WatchError> {
    debouncer
        .watch(root, RecursiveMode::Recursive)
        .map_err(|source| WatchError::Watch {
            path: root.to_path_buf(),
            source,
        })
}

/// Reduces one debouncer delivery to `[Changed?, Written?, Finished?]` or `[Rescan]`.
fn translate(result: DebounceEventResult, options: WatchOptions) -> Vec<WatchEvent> {
    let events = match result {
        Ok(events) => events,
        Err(errors) => {
            for error in &errors {
                tracing::warn!(%error, "file watcher error; rescanning the inbox");
            }
            return vec![WatchEvent::Rescan];
        }
    };
    if events.iter().any(|e| e.need_rescan()) {
        tracing::info!("file watcher lost events; rescanning the inbox");
        return vec![WatchEvent::Rescan];
    }
    // The debouncer hands over each path's events in the order they happened, so the
    // last write wins.
    let mut last: BTreeMap<&Path, Hint> = BTreeMap::new();
    for event in &events {
        for (path, hint) in hints(event) {
            last.insert(path, hint);
        }
    }
    let (mut changed, mut written, mut finished) = (Vec::new(), Vec::new(), Vec::new());
    for (path, hint) in last {
        let list = match hint {
            _ if !options.finished_hints => &mut changed,
            Hint::Changed => &mut changed,
            Hint::Written => &mut written,
            Hint::Finished => &mut finished,
        };
        list.push(path.to_path_buf());
    }
    [
        WatchEvent::Changed(changed),
        WatchEvent::Written(written),
        WatchEvent::Finished(finished),
    ]
    .into_iter()
    .filter(|e| !e.paths().is_empty())
    .collect()
}

/// What one event says about a path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Hint {
    Changed,
    /// Created or written: a writer has it open (until its close-after-write).
    Written,
    Finished,
}

/// The paths one event is worth a look for, and what it says about each. Removals and
/// plain accesses (opens, reads, close-without-write) say nothing: they neither report a
/// path nor undo an earlier hint for it.
fn hints(event: &DebouncedEvent) -> Vec<(&Path, Hint)> {
    let all = |hint| event.paths.iter().map(|p| (p.as_path(), hint)).collect();
    match event.kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => all(Hint::Finished),
        EventKind::Modify(ModifyKind::Name(RenameMode::To)) => all(Hint::Finished),
        EventKind::Modify(ModifyKind::Name(RenameMode::Both)) => match event.paths.as_slice() {
            [from, to] => vec![
                (from.as_path(), Hint::Changed),
                (to.as_path(), Hint::Finished),
            ],
            _ => all(Hint::Changed),
        },
        // Writes, truncates and fallocate (inotify's IN_MODIFY), and a file created by
        // open(O_CREAT): a writer holds it. A hard link (`ln`) is created without an open
        // and never closed: with close events awaited it waits `watch.incomplete_timeout`.
        EventKind::Create(CreateKind::File | CreateKind::Any)
        | EventKind::Modify(ModifyKind::Data(_) | ModifyKind::Any) => all(Hint::Written),
        EventKind::Create(_) | EventKind::Modify(_) | EventKind::Any => all(Hint::Changed),
        EventKind::Access(_) | EventKind::Remove(_) | EventKind::Other => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use notify::event::{CreateKind, DataChange, Flag, MetadataKind, RemoveKind};
    use notify::{Event, EventKind};
    use std::collections::BTreeSet;
    use std::io::Write;
    use std::time::Instant;
    use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};

    const HINTS: WatchOptions = WatchOptions {
        finished_hints: true,
    };
    const NO_HINTS: WatchOptions = WatchOptions {
        finished_hints: false,
    };
    const CLOSE_WRITE: EventKind = EventKind::Access(AccessKind::Close(AccessMode::Write));
    const WRITE: EventKind = EventKind::Modify(ModifyKind::Data(DataChange::Any));
    const CREATE: EventKind = EventKind::Create(CreateKind::File);

    fn ev(kind: EventKind, paths: &[&str]) -> DebouncedEvent {
        let mut e = Event::new(kind);
        for p in paths {
            e = e.add_path(PathBuf::from(p));
        }
        DebouncedEvent::new(e, Instant::now())
    }

    fn rename(mode: RenameMode, paths: &[&str]) -> DebouncedEvent {
        ev(EventKind::Modify(ModifyKind::Name(mode)), paths)
    }

    fn paths(ps: &[&str]) -> Vec<PathBuf> {
        ps.iter().map(PathBuf::from).collect()
    }

    #[test]
    fn translate_splits_changed_from_finished() {
        let got = translate(
            Ok(vec![
                ev(CREATE, &["/in/b.mp4"]),
                rename(RenameMode::Both, &["/in/a.part", "/in/a.mp4"]),
                ev(CLOSE_WRITE, &["/in/c.mp4"]),
                ev(WRITE, &["/in/b.mp4"]),
                ev(EventKind::Remove(RemoveKind::File), &["/in/gone.mp4"]),
                ev(
                    EventKind::Access(AccessKind::Open(AccessMode::Read)),
                    &["/in/read.mp4"],
                ),
                rename(RenameMode::To, &["/in/moved-in.mp4"]),
                rename(RenameMode::From, &["/in/moved-out.mp4"]),
                ev(EventKind::Any, &["/in/any.mp4"]),
            ]),
            HINTS,
        );
        assert_eq!(
            got,
            vec![
                WatchEvent::Changed(paths(&["/in/a.part", "/in/any.mp4", "/in/moved-out.mp4"])),
                WatchEvent::Written(paths(&["/in/b.mp4"])),
                WatchEvent::Finished(paths(&["/in/a.mp4", "/in/c.mp4", "/in/moved-in.mp4"])),
            ]
        );
    }

    #[test]
    fn the_last_event_for_a_path_decides() {
        let batch = || {
            vec![
                // Created, closed, then written again: a writer is still at it.
                ev(CREATE, &["/in/a.mp4"]),
                ev(CLOSE_WRITE, &["/in/a.mp4"]),
                ev(WRITE, &["/in/a.mp4"]),
                // Written then closed: done.
                ev(WRITE, &["/in/b.mp4"]),
                ev(CLOSE_WRITE, &["/in/b.mp4"]),
                // Renamed into place, then chmod-ed: changed again.
                rename(RenameMode::Both, &["/in/c.part", "/in/c.mp4"]),
                ev(
                    EventKind::Modify(ModifyKind::Metadata(MetadataKind::Permissions)),
                    &["/in/c.mp4"],
                ),
                // Closed, then read by someone (our own hashing): still finished.
                ev(CLOSE_WRITE, &["/in/d.mp4"]),
                ev(
                    EventKind::Access(AccessKind::Close(AccessMode::Read)),
                    &["/in/d.mp4"],
                ),
                ev(
                    EventKind::Access(AccessKind::Open(AccessMode::Any)),
                    &["/in/d.mp4"],
                ),
                // A temp name renamed away, then written anew under the same name.
                rename(RenameMode::Both, &["/in/e.part", "/in/e.mp4"]),
                ev(CREATE, &["/in/e.part"]),
                ev(CLOSE_WRITE, &["/in/e.part"]),
            ]
        };
        assert_eq!(
            translate(Ok(batch()), HINTS),
            vec![
                WatchEvent::Changed(paths(&["/in/c.mp4", "/in/c.part"])),
                WatchEvent::Written(paths(&["/in/a.mp4"])),
                WatchEvent::Finished(paths(&[
                    "/in/b.mp4",
                    "/in/d.mp4",
                    "/in/e.mp4",
                    "/in/e.part"
                ])),
            ]
        );
        // With hints off the same batch is one Changed list.
        assert_eq!(
            translate(Ok(batch()), NO_HINTS),
            vec![WatchEvent::Changed(paths(&[
                "/in/a.mp4",
                "/in/b.mp4",
                "/in/c.mp4",
                "/in/c.part",
                "/in/d.mp4",
                "/in/e.mp4",
                "/in/e.part"
            ]))]
        );
    }

    #[test]
    fn translate_drops_uninteresting_batches() {
        let got = translate(
            Ok(vec![
                ev(EventKind::Remove(RemoveKind::File), &["/in/x.mp4"]),
                ev(
                    EventKind::Access(AccessKind::Close(AccessMode::Read)),
                    &["/in/y.mp4"],
                ),
            ]),
            HINTS,
        );
        assert_eq!(got, Vec::new());
        assert_eq!(translate(Ok(Vec::new()), HINTS), Vec::new());
    }

    #[test]
    fn translate_rescan_on_flag_or_error() {
        let overflow = DebouncedEvent::new(
            Event::new(EventKind::Other).set_flag(Flag::Rescan),
            Instant::now(),
        );
        let with_paths = vec![ev(CLOSE_WRITE, &["/in/a.mp4"]), overflow];
        assert_eq!(translate(Ok(with_paths), HINTS), vec![WatchEvent::Rescan]);
        let err = notify::Error::new(notify::ErrorKind::MaxFilesWatch);
        assert_eq!(translate(Err(vec![err]), HINTS), vec![WatchEvent::Rescan]);
        assert!(WatchEvent::Rescan.paths().is_empty());
    }

    proptest::proptest! {
        /// Whatever the batch: each list sorted without duplicates, no path in both,
        /// every reported path named by some event, and hints off never says Finished.
        #[test]
        fn lists_are_sorted_and_disjoint(
            batch in proptest::collection::vec((0u8..8, 0u8..4, 0u8..4), 0..24),
            finished_hints: bool,
        ) {
            let names = ["/in/a", "/in/b", "/in/c", "/in/d"];
            let events: Vec<DebouncedEvent> = batch
                .iter()
                .map(|&(kind, p, q)| {
                    let (p, q) = (names[usize::from(p)], names[usize::from(q)]);
                    match kind {
                        0 => ev(CREATE, &[p]),
                        1 => ev(WRITE, &[p]),
                        2 => ev(CLOSE_WRITE, &[p]),
                        3 => rename(RenameMode::Both, &[p, q]),
                        4 => rename(RenameMode::To, &[p]),
                        5 => rename(RenameMode::From, &[p]),
                        6 => ev(EventKind::Remove(RemoveKind::File), &[p]),
                        _ => ev(EventKind::Access(AccessKind::Open(AccessMode::Any)), &[p]),
                    }
                })
                .collect();
            let out = translate(Ok(events.clone()), WatchOptions { finished_hints });
            let mut seen = BTreeSet::new();
            for event in &out {
                let ps = event.paths();
                proptest::prop_assert!(!ps.is_empty());
                proptest::prop_assert!(ps.windows(2).all(|w| w[0] < w[1]));
                for p in ps {
                    proptest::prop_assert!(seen.insert(p.clone()), "{} twice", p.display());
                    proptest::prop_assert!(events.iter().any(|e| e.paths.contains(p)));
                }
                if !finished_hints {
                    proptest::prop_assert!(matches!(event, WatchEvent::Changed(_)));
                }
            }
        }
    }

    fn io_error(kind: std::io::Error) -> WatchError {
        WatchError::Start {
            backend: "native",
            source: notify::Error::io(kind),
        }
    }

    #[test]
    fn watch_limits_and_unsupported_file_systems_call_for_polling() {
        let limit = WatchError::Watch {
            path: PathBuf::from("/in"),
            source: notify::Error::new(notify::ErrorKind::MaxFilesWatch),
        };
        assert!(limit.is_watch_limit() && limit.should_poll());
        assert!(limit.to_string().contains("/in"));

        #[cfg(unix)]
        for errno in [rustix::io::Errno::MFILE, rustix::io::Errno::NFILE] {
            let e = io_error(std::io::Error::from_raw_os_error(errno.raw_os_error()));
            assert!(e.is_watch_limit() && e.should_poll(), "{e}");
        }
        #[cfg(unix)]
        for errno in [rustix::io::Errno::NOSYS, rustix::io::Errno::OPNOTSUPP] {
            let e = io_error(std::io::Error::from_raw_os_error(errno.raw_os_error()));
            assert!(!e.is_watch_limit() && e.should_poll(), "{e}");
        }

        let not_found = WatchError::Watch {
            path: PathBuf::from("/in"),
            source: notify::Error::path_not_found(),
        };
        let denied = io_error(std::io::Error::from(std::io::ErrorKind::PermissionDenied));
        let generic = io_error(std::io::Error::other("too many open files"));
        for e in [not_found, denied, generic] {
            assert!(!e.is_watch_limit() && !e.should_poll(), "{e}");
        }
    }

    #[derive(Debug, PartialEq, Eq)]
    enum Seen {
        Changed,
        Written,
        Finished,
    }

    /// Waits (generously) for the next event naming `want`, and says which list it was in.
    async fn next_for(rx: &mut UnboundedReceiver<WatchEvent>, want: &Path) -> Seen {
        let found = tokio::time::timeout(Duration::from_secs(20), async {
            while let Some(event) = rx.recv().await {
                let seen = match &event {
                    WatchEvent::Changed(_) => Seen::Changed,
                    WatchEvent::Written(_) => Seen::Written,
                    WatchEvent::Finished(_) => Seen::Finished,
                    WatchEvent::Rescan => continue,
                };
                if event.paths().iter().any(|p| p == want) {
                    return Some(seen);
                }
            }
            None
        })
        .await;
        match found {
            Ok(Some(seen)) => seen,
            _ => panic!("no event for {}", want.display()),
        }
    }

    /// Waits until `want` shows up as Finished; a Changed before it is fine (the create
    /// and the close may land in different batches).
    async fn until_finished(rx: &mut UnboundedReceiver<WatchEvent>, want: &Path) {
        while next_for(rx, want).await != Seen::Finished {}
    }

    fn native(root: &Path, options: WatchOptions) -> (InboxWatcher, UnboundedReceiver<WatchEvent>) {
        let (tx, rx) = unbounded_channel();
        let watcher = watch_with(root, Backend::Native, options, tx).unwrap();
        (watcher, rx)
    }

    fn temp_root() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        (dir, root)
    }

    #[tokio::test]
    async fn native_watcher_reports_new_file_in_nested_dir_and_rename() {
        let (_dir, root) = temp_root();
        let (watcher, mut rx) = native(&root, HINTS);
        assert_eq!(watcher.backend(), Backend::Native);

        let file = root.join("clip.mp4");
        std::fs::write(&file, b"data").unwrap();
        next_for(&mut rx, &file).await;

        // A folder created after start-up is watched too (recursive).
        let sub = root.join("job1");
        std::fs::create_dir(&sub).unwrap();
        assert_eq!(next_for(&mut rx, &sub).await, Seen::Changed);
        let nested = sub.join("nested.mp4");
        std::fs::write(&nested, b"data").unwrap();
        next_for(&mut rx, &nested).await;
    }

    // Issue 14 part 3: a copy that sets its final size first (fallocate, ftruncate) is seen
    // being written from its first call, and only its close finishes it.
    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn native_preallocation_is_a_write_and_only_the_close_finishes() {
        let (_dir, root) = temp_root();
        let (watcher, mut rx) = native(&root, HINTS);
        assert!(watcher.reports_closes());
        let path = root.join("copy.mp4");
        let file = std::fs::File::create(&path).unwrap();
        assert_eq!(next_for(&mut rx, &path).await, Seen::Written);
        file.set_len(1 << 20).unwrap();
        assert_eq!(next_for(&mut rx, &path).await, Seen::Written);
        drop(file);
        assert_eq!(next_for(&mut rx, &path).await, Seen::Finished);
    }

    #[test]
    fn only_native_watchers_with_hints_report_closes() {
        let dir = tempfile::tempdir().unwrap();
        let (tx, _rx) = unbounded_channel();
        let without = watch_with(dir.path(), Backend::Native, NO_HINTS, tx.clone()).unwrap();
        assert!(!without.reports_closes());
        let poll = Backend::Poll(Duration::from_secs(60));
        assert!(
            !watch_with(dir.path(), poll, HINTS, tx)
                .unwrap()
                .reports_closes()
        );
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn native_write_and_close_is_finished() {
        let (_dir, root) = temp_root();
        let (_watcher, mut rx) = native(&root, HINTS);
        let file = root.join("clip.mp4");
        std::fs::write(&file, b"data").unwrap();
        until_finished(&mut rx, &file).await;
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn native_file_still_open_for_writing_is_changed_until_closed() {
        let (_dir, root) = temp_root();
        let (_watcher, mut rx) = native(&root, HINTS);
        let path = root.join("export.mp4");
        let mut file = std::fs::File::create(&path).unwrap();
        file.write_all(b"first").unwrap();
        assert_eq!(next_for(&mut rx, &path).await, Seen::Written);
        // A later append by the same, still open writer.
        file.write_all(b"second").unwrap();
        assert_eq!(next_for(&mut rx, &path).await, Seen::Written);
        // A chmod while it is open is only a change.
        let mut perms = file.metadata().unwrap().permissions();
        perms.set_readonly(true);
        std::fs::set_permissions(&path, perms).unwrap();
        assert_eq!(next_for(&mut rx, &path).await, Seen::Changed);
        drop(file);
        assert_eq!(next_for(&mut rx, &path).await, Seen::Finished);
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn native_rename_to_final_name_is_finished() {
        let (_dir, root) = temp_root();
        let (_watcher, mut rx) = native(&root, HINTS);
        let part = root.join("clip.mp4.part");
        std::fs::write(&part, b"data").unwrap();
        until_finished(&mut rx, &part).await;

        let file = root.join("clip.mp4");
        std::fs::rename(&part, &file).unwrap();
        assert_eq!(next_for(&mut rx, &file).await, Seen::Finished);
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn native_without_hints_reports_only_changed() {
        let (_dir, root) = temp_root();
        let (_watcher, mut rx) = native(&root, NO_HINTS);
        let part = root.join("clip.part");
        std::fs::write(&part, b"data").unwrap();
        let file = root.join("clip.mp4");
        std::fs::rename(&part, &file).unwrap();
        let last = root.join("last.mp4");
        std::fs::write(&last, b"data").unwrap();
        // Every event up to the last file's (a write+close, then a rename) is Changed.
        let all_changed = tokio::time::timeout(Duration::from_secs(20), async {
            while let Some(event) = rx.recv().await {
                match event {
                    WatchEvent::Finished(_) => return false,
                    WatchEvent::Changed(ps) if ps.contains(&last) => return true,
                    _ => {}
                }
            }
            false
        })
        .await;
        assert_eq!(all_changed, Ok(true));
    }

    #[tokio::test]
    async fn poll_watcher_reports_changed_only() {
        let (_dir, root) = temp_root();
        let (tx, mut rx) = unbounded_channel();
        let interval = Duration::from_millis(100);
        let watcher = watch(&root, Backend::Poll(interval), tx).unwrap();
        assert_eq!(watcher.backend(), Backend::Poll(interval));

        let file = root.join("clip.mp4");
        std::fs::write(&file, b"data").unwrap();
        assert_eq!(next_for(&mut rx, &file).await, Seen::Changed);
        let part = root.join("b.part");
        std::fs::write(&part, b"data").unwrap();
        assert_eq!(next_for(&mut rx, &part).await, Seen::Changed);
        let renamed = root.join("b.mp4");
        std::fs::rename(&part, &renamed).unwrap();
        assert_eq!(next_for(&mut rx, &renamed).await, Seen::Changed);
    }

    #[tokio::test]
    async fn dropping_the_watcher_closes_the_channel() {
        let dir = tempfile::tempdir().unwrap();
        let (tx, mut rx) = unbounded_channel();
        let watcher = watch(dir.path(), Backend::Native, tx).unwrap();
        drop(watcher);
        // The sender lives in the debouncer; once it is gone, recv ends.
        let closed = tokio::time::timeout(Duration::from_secs(20), async {
            while rx.recv().await.is_some() {}
        })
        .await;
        assert!(closed.is_ok(), "channel still open after drop");
    }

    #[test]
    fn missing_or_file_root_is_an_error_for_both_backends() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope");
        for backend in [Backend::Native, Backend::Poll(Duration::from_millis(100))] {
            let (tx, _rx) = unbounded_channel();
            let err = watch(&missing, backend, tx).unwrap_err();
            assert!(matches!(err, WatchError::Root { .. }), "{err:?}");
            assert!(!err.is_watch_limit());
            assert!(!err.should_poll(), "polling cannot find a missing inbox");
        }
        let file = dir.path().join("file");
        std::fs::write(&file, b"x").unwrap();
        let (tx, _rx) = unbounded_channel();
        let err = watch(&file, Backend::Native, tx).unwrap_err();
        assert!(err.to_string().contains("not a directory"), "{err}");
    }
}
