//! One driver per state folder and one agent per inbox, as operating-system locks.
//!
//! `watch` holds an exclusive lock on `state_dir/agent.lock` for as long as it runs, and so
//! does a one-off command that publishes or moves files itself (`publish`, `retry`,
//! `ledger rebuild`; see `crate::driver`). The same holders also lock the inbox
//! (`inbox/.dropcast.lock`, a dot-file the watcher never takes for input), so two agents
//! with different state folders cannot share an inbox. Each lock file says who holds it
//! (pid, host, role, state folder), so whoever finds it taken can say so, or hand its work
//! to the agent that holds it.
//!
//! The locks are the operating system's (`flock`; on Windows `LockFileEx` on one byte far
//! past the end, so the holder's text stays readable), so they are released when the
//! process ends for any reason, `kill -9` and power cuts included: a stale lock file never
//! blocks.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, Write};
use std::path::{Path, PathBuf};

/// Held while the agent (or a one-off command driving the state folder) runs; dropping
/// it releases the lock.
#[derive(Debug)]
pub struct StateLock {
    _file: File,
    path: PathBuf,
}

/// Held by the process that drives the agent of an inbox; dropping it releases the lock.
#[derive(Debug)]
pub(crate) struct InboxLock {
    _file: File,
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "another dropcast agent is using {}: {holder}. Stop it first (only one agent may use a state folder).",
        state_dir.display()
    )]
    Held { state_dir: PathBuf, holder: String },
    #[error(
        "another dropcast agent watches {}: {holder}. One inbox has one agent: stop that agent, or give this one another inbox.",
        inbox.display()
    )]
    InboxHeld { inbox: PathBuf, holder: String },
    #[error("cannot lock {}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
}

/// What a process holding a lock is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// `dropcast watch`: runs until stopped; other commands hand their work to it.
    Agent,
    /// `dropcast publish`: ends when its video has.
    Publish,
    /// `dropcast retry`.
    Retry,
    /// `dropcast ledger rebuild`.
    Rebuild,
}

impl Role {
    /// The word in the lock file.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Agent => "agent",
            Role::Publish => "publish",
            Role::Retry => "retry",
            Role::Rebuild => "ledger-rebuild",
        }
    }

    fn parse(s: &str) -> Option<Role> {
        [Role::Agent, Role::Publish, Role::Retry, Role::Rebuild]
            .into_iter()
            .find(|r| r.as_str() == s)
    }

    /// The command, as a user would type it.
    pub fn command(self) -> &'static str {
        match self {
            Role::Agent => "dropcast watch",
            Role::Publish => "dropcast publish",
            Role::Retry => "dropcast retry",
            Role::Rebuild => "dropcast ledger rebuild",
        }
    }
}

/// What trying a lock found.
#[derive(Debug)]
pub(crate) enum Attempt<L> {
    /// Ours now.
    Taken(L),
    /// Someone else's; the lock file's text. Empty while its holder has not written it yet.
    Busy(String),
}

impl StateLock {
    pub(crate) const FILE_NAME: &'static str = "agent.lock";

    /// Takes the lock as the agent, or says who holds it. Never waits.
    pub fn acquire(state_dir: &Path) -> Result<StateLock, LockError> {
        match Self::try_acquire(state_dir, Role::Agent)? {
            Attempt::Taken(lock) => Ok(lock),
            Attempt::Busy(text) => Err(LockError::Held {
                state_dir: state_dir.to_path_buf(),
                holder: describe(&text),
            }),
        }
    }

    /// Takes the lock in `role`, or returns the holder's lock file text. Never waits.
    pub(crate) fn try_acquire(
        state_dir: &Path,
        role: Role,
    ) -> Result<Attempt<StateLock>, LockError> {
        let path = state_dir.join(Self::FILE_NAME);
        std::fs::create_dir_all(state_dir).map_err(|source| LockError::Io {
            path: path.clone(),
            source,
        })?;
        Ok(match lock_file(&path, role, state_dir)? {
            Attempt::Taken(file) => Attempt::Taken(StateLock { _file: file, path }),
            Attempt::Busy(text) => Attempt::Busy(text),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Who holds the lock on `state_dir`, if an agent runs there (`None`: none does).
    /// Never waits, and creates nothing: a missing state folder or lock file means no
    /// agent. The answer is the first line of the lock file (see [`Holder::parse`]).
    ///
    /// It checks by taking a *shared* lock for an instant, so two `status` commands do
    /// not disturb each other; an agent starting in that very instant is refused as if
    /// another agent ran, and can simply be started again.
    pub(crate) fn is_held(state_dir: &Path) -> Result<Option<String>, LockError> {
        Ok(Self::holder_text(state_dir)?
            .map(|text| text.lines().next().unwrap_or_default().trim().to_string()))
    }

    /// Like [`is_held`](Self::is_held), with the lock file's whole text.
    pub(crate) fn holder_text(state_dir: &Path) -> Result<Option<String>, LockError> {
        let path = state_dir.join(Self::FILE_NAME);
        let mut file = match File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(LockError::Io { path, source }),
        };
        match try_lock_shared_briefly(&file) {
            Ok(true) => Ok(None),
            Ok(false) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                Ok(Some(holder.trim().to_string()))
            }
            Err(source) => Err(LockError::Io { path, source }),
        }
    }
}

impl InboxLock {
    /// A dot-file: the watcher takes dot-files for temp names, so it is never input.
    pub(crate) const FILE_NAME: &'static str = ".dropcast.lock";

    /// Takes the inbox's lock in `role` for the agent of `state_dir`, or returns the
    /// holder's lock file text. Never waits.
    pub(crate) fn try_acquire(
        inbox: &Path,
        role: Role,
        state_dir: &Path,
    ) -> Result<Attempt<InboxLock>, LockError> {
        let path = inbox.join(Self::FILE_NAME);
        std::fs::create_dir_all(inbox).map_err(|source| LockError::Io {
            path: path.clone(),
            source,
        })?;
        Ok(match lock_file(&path, role, state_dir)? {
            Attempt::Taken(file) => Attempt::Taken(InboxLock { _file: file }),
            Attempt::Busy(text) => Attempt::Busy(text),
        })
    }
}

/// Opens `path` (creating it), takes its exclusive lock and writes who we are into it.
fn lock_file(path: &Path, role: Role, state_dir: &Path) -> Result<Attempt<File>, LockError> {
    let io_err = |source| LockError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(io_err)?;
    if !try_lock(&file).map_err(io_err)? {
        let mut holder = String::new();
        let _ = file.read_to_string(&mut holder);
        return Ok(Attempt::Busy(holder.trim().to_string()));
    }
    let who = Holder {
        pid: std::process::id(),
        host: hostname(),
        since: Some(crate::receipt::UtcTime::now()),
        role: Some(role),
        state_dir: Some(std::path::absolute(state_dir).unwrap_or_else(|_| state_dir.into())),
    }
    .file_text();
    file.set_len(0).map_err(io_err)?;
    file.rewind().map_err(io_err)?;
    file.write_all(who.as_bytes()).map_err(io_err)?;
    file.sync_data().map_err(io_err)?;
    Ok(Attempt::Taken(file))
}

/// A lock file's text as a message names its holder.
pub(crate) fn describe(text: &str) -> String {
    match Holder::parse(text) {
        Some(h) => h.describe(),
        None if text.trim().is_empty() => "a process that has not said who it is yet".into(),
        None => text.trim().to_string(),
    }
}

/// Who holds the lock, as its file says. The first line is
/// `pid 4242 on studio-mac, started 2026-…Z`; then `role: agent` and
/// `state_dir: /path` lines (absent from files written by older versions).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub pid: u32,
    pub host: String,
    pub since: Option<crate::receipt::UtcTime>,
    /// `None`: an older dropcast wrote the file; only agents held locks then.
    pub(crate) role: Option<Role>,
    pub state_dir: Option<PathBuf>,
}

impl Holder {
    /// Reads a lock file's text; `None` if it is not in the form dropcast writes.
    pub fn parse(text: &str) -> Option<Holder> {
        let mut lines = text.trim().lines();
        let rest = lines.next()?.trim().strip_prefix("pid ")?;
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
        let mut holder = Holder {
            pid: pid.parse().ok()?,
            host: host.to_string(),
            since,
            role: None,
            state_dir: None,
        };
        for line in lines {
            match line.split_once(": ") {
                Some(("role", role)) => holder.role = Role::parse(role.trim()),
                Some(("state_dir", dir)) => holder.state_dir = Some(PathBuf::from(dir.trim())),
                _ => {}
            }
        }
        Some(holder)
    }

    /// True for an agent (`watch`), which runs until stopped; false for a one-off command.
    pub(crate) fn is_agent(&self) -> bool {
        matches!(self.role, None | Some(Role::Agent))
    }

    /// `pid 42 on box (dropcast publish, state folder /srv/.dropcast)`.
    pub(crate) fn describe(&self) -> String {
        let mut out = self.to_string();
        let command = self.role.unwrap_or(Role::Agent).command();
        match &self.state_dir {
            Some(dir) => out.push_str(&format!(" ({command}, state folder {})", dir.display())),
            None => out.push_str(&format!(" ({command})")),
        }
        out
    }

    fn file_text(&self) -> String {
        let mut text = format!("{self}\n");
        if let Some(role) = self.role {
            text.push_str(&format!("role: {}\n", role.as_str()));
        }
        if let Some(dir) = &self.state_dir {
            text.push_str(&format!("state_dir: {}\n", dir.display()));
        }
        text
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

/// `flock` on unix; on Windows `LockFileEx` on one byte past the end (`crate::win`): a
/// whole-file lock there would refuse everyone else a read of the holder's text, and so
/// `status` and hand-off could not say who holds it. Released by the OS when the
/// process dies.
fn try_lock(file: &File) -> io::Result<bool> {
    #[cfg(windows)]
    {
        crate::win::try_lock(file, true)
    }
    #[cfg(not(windows))]
    match file.try_lock() {
        Ok(()) => Ok(true),
        Err(std::fs::TryLockError::WouldBlock) => Ok(false),
        Err(std::fs::TryLockError::Error(e)) => Err(e),
    }
}

/// Whether a shared lock could be had (nobody holds the exclusive one); given back at once.
fn try_lock_shared_briefly(file: &File) -> io::Result<bool> {
    #[cfg(windows)]
    {
        let free = crate::win::try_lock(file, false)?;
        if free {
            crate::win::unlock(file)?;
        }
        Ok(free)
    }
    #[cfg(not(windows))]
    match file.try_lock_shared() {
        Ok(()) => Ok(true), // released when `file` drops, right after
        Err(std::fs::TryLockError::WouldBlock) => Ok(false),
        Err(std::fs::TryLockError::Error(e)) => Err(e),
    }
}

/// This machine's name (unix: the kernel's node name, as `hostname` prints it; Windows:
/// `COMPUTERNAME`).
fn hostname() -> String {
    #[cfg(unix)]
    let name = rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .into_owned();
    #[cfg(not(unix))]
    let name = std::env::var("COMPUTERNAME").unwrap_or_default();
    Some(name.trim().to_string())
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
        assert!(
            h.is_agent(),
            "files of older versions were written by agents"
        );
        let h = Holder::parse("pid 7 on box\nrole: publish\nstate_dir: /s\n").unwrap();
        assert_eq!(h.role, Some(Role::Publish));
        assert!(!h.is_agent());
        assert_eq!(
            h.describe(),
            "pid 7 on box (dropcast publish, state folder /s)"
        );
    }
}
