//! One agent per state folder: `watch` holds an exclusive lock on `state_dir/agent.lock`
//! for as long as it runs. The file says who holds it, so a second agent can say so.
//!
//! The lock is the operating system's (`flock`), so it is released when the process ends
//! for any reason, `kill -9` and power cuts included: a stale lock file never blocks.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, Write};
use std::path::{Path, PathBuf};

/// Held while the agent runs; dropping it releases the lock.
#[derive(Debug)]
pub struct StateLock {
    _file: File,
    path: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "another dropcast agent is using {}: {holder}. Stop it first (only one agent may use a state folder).",
        state_dir.display()
    )]
    Held { state_dir: PathBuf, holder: String },
    #[error("cannot lock {}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
}

impl StateLock {
    pub const FILE_NAME: &'static str = "agent.lock";

    /// Takes the lock or says who holds it. Never waits.
    pub fn acquire(state_dir: &Path) -> Result<StateLock, LockError> {
        let path = state_dir.join(Self::FILE_NAME);
        let io_err = |source| LockError::Io {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(state_dir).map_err(io_err)?;
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io_err)?;
        if !try_lock(&file).map_err(io_err)? {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let holder = holder.trim();
            return Err(LockError::Held {
                state_dir: state_dir.to_path_buf(),
                holder: if holder.is_empty() {
                    "a process that has not said who it is yet".into()
                } else {
                    holder.to_string()
                },
            });
        }
        let who = Holder {
            pid: std::process::id(),
            host: hostname(),
            since: Some(crate::receipt::UtcTime::now()),
        }
        .to_string();
        file.set_len(0).map_err(io_err)?;
        file.rewind().map_err(io_err)?;
        file.write_all(who.as_bytes()).map_err(io_err)?;
        file.sync_data().map_err(io_err)?;
        Ok(StateLock { _file: file, path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Who holds the lock on `state_dir`, if an agent runs there (`None`: none does).
    /// Never waits, and creates nothing: a missing state folder or lock file means no
    /// agent. The answer is the lock file's text (see [`Holder::parse`]).
    ///
    /// It checks by taking a *shared* lock for an instant, so two `status` commands do
    /// not disturb each other; an agent starting in that very instant is refused as if
    /// another agent ran, and can simply be started again.
    pub fn is_held(state_dir: &Path) -> Result<Option<String>, LockError> {
        let path = state_dir.join(Self::FILE_NAME);
        let mut file = match File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(LockError::Io { path, source }),
        };
        match file.try_lock_shared() {
            Ok(()) => Ok(None), // released when `file` drops, right here
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                Ok(Some(holder.trim().to_string()))
            }
            Err(std::fs::TryLockError::Error(source)) => Err(LockError::Io { path, source }),
        }
    }
}

/// Who holds the lock, as its file says: `pid 4242 on studio-mac, started 2026-…Z`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub pid: u32,
    pub host: String,
    pub since: Option<crate::receipt::UtcTime>,
}

impl Holder {
    /// Reads a lock file's text; `None` if it is not in the form the agent writes.
    pub fn parse(text: &str) -> Option<Holder> {
        let rest = text.trim().strip_prefix("pid ")?;
        let (pid, rest) = rest.split_once(" on ")?;
        let (host, since) = match rest.rsplit_once(", started ") {
            Some((host, since)) => (host, Some(since)),
            None => (rest, None),
        };
        let since = since.and_then(|s| {
            time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
                .ok()
                .map(crate::receipt::UtcTime::from)
        });
        Some(Holder {
            pid: pid.parse().ok()?,
            host: host.to_string(),
            since,
        })
    }
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "pid {} on {}", self.pid, self.host)?;
        if let Some(since) = self.since {
            write!(f, ", started {since}")?;
        }
        Ok(())
    }
}

/// `flock` on unix, `LockFileEx` on Windows: released by the OS when the process dies.
fn try_lock(file: &File) -> io::Result<bool> {
    match file.try_lock() {
        Ok(()) => Ok(true),
        Err(std::fs::TryLockError::WouldBlock) => Ok(false),
        Err(std::fs::TryLockError::Error(e)) => Err(e),
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "this machine".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_says_who_holds_the_first_and_drop_releases() {
        let dir = tempfile::tempdir().unwrap();
        let first = StateLock::acquire(dir.path()).unwrap();
        let err = StateLock::acquire(dir.path()).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains(&format!("pid {}", std::process::id())),
            "{msg}"
        );
        assert!(msg.contains("another dropcast agent"), "{msg}");
        drop(first);
        StateLock::acquire(dir.path()).expect("released on drop");
    }

    #[test]
    fn is_held_names_the_holder_and_creates_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        assert_eq!(StateLock::is_held(&state).unwrap(), None);
        assert!(!state.exists(), "checking must not create the state folder");

        let lock = StateLock::acquire(&state).unwrap();
        let text = StateLock::is_held(&state).unwrap().expect("held");
        let holder = Holder::parse(&text).expect(&text);
        assert_eq!(holder.pid, std::process::id());
        assert!(holder.since.is_some());
        assert_eq!(holder.to_string(), text);
        // Checking did not take the lock away from the holder.
        assert!(StateLock::acquire(&state).is_err());

        drop(lock);
        assert_eq!(StateLock::is_held(&state).unwrap(), None);
        // Nor does checking block the next agent.
        StateLock::acquire(&state).expect("free after the check");
    }

    #[test]
    fn holder_parse_rejects_other_text() {
        assert_eq!(
            Holder::parse("a process that has not said who it is yet"),
            None
        );
        assert_eq!(Holder::parse("pid x on host"), None);
        let h = Holder::parse("pid 7 on box, started 2026-01-02T03:04:05Z").unwrap();
        assert_eq!((h.pid, h.host.as_str()), (7, "box"));
        let h = Holder::parse("pid 7 on box").unwrap();
        assert_eq!(h.since, None);
    }
}
