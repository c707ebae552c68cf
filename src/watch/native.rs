//! File system events for the inbox: notify's native watcher (inotify, FSEvents, …) or its
//! poll watcher, debounced by notify-debouncer-full and reduced to "look at these paths"
//! or "rescan everything" (design.md §1.1).
//!
//! Events are hints, never proof that a file is complete: every path still goes through
//! the settler. Removals are not forwarded (the settler notices a vanished file itself).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use notify_debouncer_full::notify::event::{AccessKind, AccessMode};
use notify_debouncer_full::notify::{
    self, EventKind, PollWatcher, RecommendedWatcher, RecursiveMode,
};
use notify_debouncer_full::{
    DebounceEventResult, DebouncedEvent, Debouncer, NoCache, RecommendedCache, new_debouncer_opt,
};
use tokio::sync::mpsc::UnboundedSender;

/// How long the debouncer gathers events before handing them over.
const DEBOUNCE: Duration = Duration::from_millis(200);

/// What the agent loop learns from the watcher.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WatchEvent {
    /// These paths were created, written, closed after writing, or renamed (both the old
    /// and the new name). Sorted, no duplicates. May include directories and temp names.
    Paths(Vec<PathBuf>),
    /// Events may have been lost (queue overflow, watcher error): scan the whole inbox.
    Rescan,
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
    /// True when the OS ran out of watches (e.g. `fs.inotify.max_user_watches`).
    pub fn is_watch_limit(&self) -> bool {
        match self {
            WatchError::Start { source, .. } | WatchError::Watch { source, .. } => {
                matches!(source.kind, notify::ErrorKind::MaxFilesWatch)
            }
            WatchError::Root { .. } => false,
        }
    }
}

/// A running watcher. Events flow while it is alive; dropping it stops them.
pub struct InboxWatcher {
    backend: Backend,
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
}

impl std::fmt::Debug for InboxWatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InboxWatcher")
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

/// Watches `root` recursively (symlinks not followed) and sends [`WatchEvent`]s to `tx`.
///
/// Fails when the watcher cannot start or `root` cannot be watched (missing, or the
/// native watcher hit an OS limit: see [`WatchError::is_watch_limit`]); the caller can
/// then fall back to `Backend::Poll`. Errors after start-up become [`WatchEvent::Rescan`].
pub fn watch(
    root: &Path,
    backend: Backend,
    tx: UnboundedSender<WatchEvent>,
) -> Result<InboxWatcher, WatchError> {
    check_root(root)?;
    let handler = move |result: DebounceEventResult| {
        if let Some(event) = translate(result) {
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
    tracing::debug!(root = %root.display(), ?backend, "watching inbox");
    Ok(InboxWatcher {
        backend,
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

/// Reduces one debouncer delivery to at most one [`WatchEvent`].
fn translate(result: DebounceEventResult) -> Option<WatchEvent> {
    let events = match result {
        Ok(events) => events,
        Err(errors) => {
            for error in &errors {
                tracing::warn!(%error, "file watcher error; rescanning the inbox");
            }
            return Some(WatchEvent::Rescan);
        }
    };
    if events.iter().any(|e| e.need_rescan()) {
        tracing::info!("file watcher lost events; rescanning the inbox");
        return Some(WatchEvent::Rescan);
    }
    let paths: BTreeSet<PathBuf> = events
        .iter()
        .filter(|e| is_interesting(e))
        .flat_map(|e| e.paths.iter().cloned())
        .collect();
    (!paths.is_empty()).then(|| WatchEvent::Paths(paths.into_iter().collect()))
}

/// Create, modify (data, metadata, rename) and close-after-write are worth a look.
fn is_interesting(event: &DebouncedEvent) -> bool {
    match event.kind {
        EventKind::Create(_) | EventKind::Modify(_) | EventKind::Any => true,
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) | EventKind::Remove(_) | EventKind::Other => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use notify::event::{CreateKind, Flag, ModifyKind, RemoveKind, RenameMode};
    use notify::{Event, EventKind};
    use std::time::Instant;
    use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};

    fn ev(kind: EventKind, paths: &[&str]) -> DebouncedEvent {
        let mut e = Event::new(kind);
        for p in paths {
            e = e.add_path(PathBuf::from(p));
        }
        DebouncedEvent::new(e, Instant::now())
    }

    #[test]
    fn translate_keeps_create_modify_rename_close_write() {
        let got = translate(Ok(vec![
            ev(EventKind::Create(CreateKind::File), &["/in/b.mp4"]),
            ev(
                EventKind::Modify(ModifyKind::Name(RenameMode::Both)),
                &["/in/a.part", "/in/a.mp4"],
            ),
            ev(
                EventKind::Access(AccessKind::Close(AccessMode::Write)),
                &["/in/c.mp4"],
            ),
            ev(
                EventKind::Modify(ModifyKind::Data(notify::event::DataChange::Any)),
                &["/in/b.mp4"],
            ),
            ev(EventKind::Remove(RemoveKind::File), &["/in/gone.mp4"]),
            ev(
                EventKind::Access(AccessKind::Open(AccessMode::Read)),
                &["/in/read.mp4"],
            ),
        ]));
        assert_eq!(
            got,
            Some(WatchEvent::Paths(vec![
                PathBuf::from("/in/a.mp4"),
                PathBuf::from("/in/a.part"),
                PathBuf::from("/in/b.mp4"),
                PathBuf::from("/in/c.mp4"),
            ]))
        );
    }

    #[test]
    fn translate_drops_uninteresting_batches() {
        let got = translate(Ok(vec![ev(
            EventKind::Remove(RemoveKind::File),
            &["/in/x.mp4"],
        )]));
        assert_eq!(got, None);
        assert_eq!(translate(Ok(Vec::new())), None);
    }

    #[test]
    fn translate_rescan_on_flag_or_error() {
        let overflow = DebouncedEvent::new(
            Event::new(EventKind::Other).set_flag(Flag::Rescan),
            Instant::now(),
        );
        assert_eq!(translate(Ok(vec![overflow])), Some(WatchEvent::Rescan));
        let err = notify::Error::new(notify::ErrorKind::MaxFilesWatch);
        assert_eq!(translate(Err(vec![err])), Some(WatchEvent::Rescan));
    }

    #[test]
    fn watch_limit_is_recognised() {
        let e = WatchError::Watch {
            path: PathBuf::from("/in"),
            source: notify::Error::new(notify::ErrorKind::MaxFilesWatch),
        };
        assert!(e.is_watch_limit());
        assert!(e.to_string().contains("/in"));
        let e = WatchError::Watch {
            path: PathBuf::from("/in"),
            source: notify::Error::path_not_found(),
        };
        assert!(!e.is_watch_limit());
    }

    /// Waits (generously) until an event naming `want` arrives.
    async fn wait_for_path(rx: &mut UnboundedReceiver<WatchEvent>, want: &Path) {
        let deadline = Duration::from_secs(20);
        let found = tokio::time::timeout(deadline, async {
            while let Some(event) = rx.recv().await {
                if let WatchEvent::Paths(paths) = event
                    && paths.iter().any(|p| p == want)
                {
                    return true;
                }
            }
            false
        })
        .await;
        assert_eq!(found, Ok(true), "no event for {}", want.display());
    }

    #[tokio::test]
    async fn native_watcher_reports_new_file_in_nested_dir_and_rename() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        let (tx, mut rx) = unbounded_channel();
        let watcher = watch(&root, Backend::Native, tx).unwrap();
        assert_eq!(watcher.backend(), Backend::Native);

        let file = root.join("clip.mp4");
        std::fs::write(&file, b"data").unwrap();
        wait_for_path(&mut rx, &file).await;

        // A folder created after start-up is watched too (recursive).
        let sub = root.join("job1");
        std::fs::create_dir(&sub).unwrap();
        wait_for_path(&mut rx, &sub).await;
        let nested = sub.join("nested.mp4");
        std::fs::write(&nested, b"data").unwrap();
        wait_for_path(&mut rx, &nested).await;

        // A rename reports the new name.
        let renamed = root.join("renamed.mp4");
        std::fs::rename(&file, &renamed).unwrap();
        wait_for_path(&mut rx, &renamed).await;
    }

    #[tokio::test]
    async fn poll_watcher_reports_new_file() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        let (tx, mut rx) = unbounded_channel();
        let watcher = watch(&root, Backend::Poll(Duration::from_millis(100)), tx).unwrap();
        assert_eq!(watcher.backend(), Backend::Poll(Duration::from_millis(100)));

        let file = root.join("clip.mp4");
        std::fs::write(&file, b"data").unwrap();
        wait_for_path(&mut rx, &file).await;
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
        }
        let file = dir.path().join("file");
        std::fs::write(&file, b"x").unwrap();
        let (tx, _rx) = unbounded_channel();
        let err = watch(&file, Backend::Native, tx).unwrap_err();
        assert!(err.to_string().contains("not a directory"), "{err}");
    }
}
