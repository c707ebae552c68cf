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
        let who = format!(
            "pid {} on {}, started {}",
            std::process::id(),
            hostname(),
            crate::receipt::UtcTime::now().to_rfc3339()
        );
        file.set_len(0).map_err(io_err)?;
        file.rewind().map_err(io_err)?;
        file.write_all(who.as_bytes()).map_err(io_err)?;
        file.sync_data().map_err(io_err)?;
        Ok(StateLock { _file: file, path })
    }

    pub fn path(&self) -> &Path {
        &self.path
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
}
