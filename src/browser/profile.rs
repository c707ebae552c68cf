//! One browser profile (Chromium's user-data folder) per account, under
//! `state_dir/browser/<account>/`, readable by the user alone; and the lock that lets one
//! Chromium at a time use it (`state_dir/browser/<account>.lock`, an operating-system lock
//! released however the holder ends).

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::time::Instant;

/// The profiles of one state folder.
#[derive(Clone, Debug)]
pub struct Profiles {
    root: PathBuf,
}

/// The profile is in use by another holder.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the browser profile of account `{account}` is in use by {holder}")]
pub struct ProfileBusy {
    pub account: String,
    /// What the holder wrote in the lock file (`pid 42: dropcast login`).
    pub holder: String,
}

/// Why a profile could not be had.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error(transparent)]
    Busy(#[from] ProfileBusy),
    #[error("cannot prepare the browser profile {}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
}

/// Held while a Chromium runs on the profile; dropping it lets the next one in.
#[derive(Debug)]
pub struct ProfileLock {
    _file: File,
    dir: PathBuf,
}

impl ProfileLock {
    /// The profile folder (Chromium's `--user-data-dir`).
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// How long between two tries of a taken lock.
const RETRY: Duration = Duration::from_millis(200);

impl Profiles {
    pub fn new(state_dir: &Path) -> Profiles {
        Profiles {
            root: state_dir.join("browser"),
        }
    }

    /// The folder of `account`'s profile: its name when that is a plain file name, else
    /// the name with every other byte written `%XX` (so that two names never share one).
    pub fn dir(&self, account: &str) -> PathBuf {
        self.root.join(folder_name(account))
    }

    /// Where `dropcast login` saves the account's QR code (beside its profile).
    pub fn login_qr(&self, account: &str) -> PathBuf {
        self.root
            .join(format!("{}.login-qr.png", folder_name(account)))
    }

    /// The file `dropcast login` touches once the account's session works, so that an
    /// agent that paused the account tries it again at once.
    pub fn login_stamp(&self, account: &str) -> PathBuf {
        self.root
            .join(format!("{}.logged-in", folder_name(account)))
    }

    fn lock_path(&self, account: &str) -> PathBuf {
        self.root.join(format!("{}.lock", folder_name(account)))
    }

    /// Takes `account`'s profile, creating its folder (mode 0700) if needed. While someone
    /// else holds it, waits up to `wait` (zero: answers at once) and then says who holds it.
    /// `purpose` goes into the lock file for the next one to read (`dropcast login`).
    pub async fn lock(
        &self,
        account: &str,
        purpose: &str,
        wait: Duration,
    ) -> Result<ProfileLock, ProfileError> {
        let dir = self.dir(account);
        for d in [&self.root, &dir] {
            private_dir(d).map_err(|source| ProfileError::Io {
                path: d.clone(),
                source,
            })?;
        }
        let path = self.lock_path(account);
        let io_err = |source| ProfileError::Io {
            path: path.clone(),
            source,
        };
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io_err)?;
        let deadline = Instant::now() + wait;
        loop {
            match file.try_lock() {
                Ok(()) => break,
                Err(std::fs::TryLockError::WouldBlock) => {
                    if Instant::now() >= deadline {
                        let mut holder = String::new();
                        let _ = file.rewind();
                        let _ = file.read_to_string(&mut holder);
                        let holder = match holder.trim() {
                            "" => "another process".to_string(),
                            h => h.to_string(),
                        };
                        return Err(ProfileBusy {
                            account: account.to_string(),
                            holder,
                        }
                        .into());
                    }
                    tokio::time::sleep(RETRY.min(deadline - Instant::now())).await;
                }
                Err(std::fs::TryLockError::Error(e)) => return Err(io_err(e)),
            }
        }
        let who = format!("pid {}: {purpose}\n", std::process::id());
        file.set_len(0).map_err(io_err)?;
        file.rewind().map_err(io_err)?;
        file.write_all(who.as_bytes()).map_err(io_err)?;
        Ok(ProfileLock { _file: file, dir })
    }
}

/// Creates `dir` if missing and makes it the user's alone (0700 on unix; on Windows, when
/// it creates it, a DACL for its owner and the system, which its files inherit: setting
/// one walks the whole tree, too slow for a browser profile at every start).
fn private_dir(dir: &Path) -> io::Result<()> {
    #[cfg(windows)]
    let new = !dir.exists();
    std::fs::create_dir_all(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir)?.permissions().mode() & 0o777;
        if mode != 0o700 {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
        }
    }
    #[cfg(windows)]
    if new {
        crate::win::make_private(dir)?;
    }
    Ok(())
}

/// `account` as one safe folder name (see [`Profiles::dir`]).
fn folder_name(account: &str) -> String {
    let plain = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.');
    let dots_only = account.bytes().all(|b| b == b'.');
    let mut out = String::with_capacity(account.len());
    for b in account.bytes() {
        if plain(b) && !(dots_only && b == b'.') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A browser left running on the profile in `dir` by a dropcast that stopped abruptly
/// (`kill -9`, a crash: its browser outlives it) still holds Chromium's own lock on the
/// profile, and no new browser can open it. Whoever calls this holds dropcast's lock on the
/// profile, so that browser's owner is gone: it is asked to close (SIGTERM, so it writes
/// the profile back), and killed only if it has not after 10 s. Only a process whose
/// command line names this very profile is touched.
#[cfg(target_os = "linux")]
pub(crate) async fn reclaim(dir: &Path) {
    use rustix::process::{Pid, Signal, kill_process};
    let Ok(target) = std::fs::read_link(dir.join("SingletonLock")) else {
        return;
    };
    // `<hostname>-<pid>`.
    let Some(pid) = target
        .to_str()
        .and_then(|t| t.rsplit('-').next())
        .and_then(|p| p.parse::<i32>().ok())
        .and_then(Pid::from_raw)
    else {
        return;
    };
    let proc_dir = PathBuf::from(format!("/proc/{}", pid.as_raw_nonzero()));
    let cmdline = std::fs::read(proc_dir.join("cmdline")).unwrap_or_default();
    let ours = format!("--user-data-dir={}", dir.display());
    if !cmdline.split(|b| *b == 0).any(|arg| arg == ours.as_bytes()) {
        return;
    }
    tracing::warn!(
        pid = pid.as_raw_nonzero(),
        profile = %dir.display(),
        "a browser left by a dropcast that stopped abruptly holds this profile; closing it"
    );
    for (signal, wait) in [(Signal::TERM, 100), (Signal::KILL, 20)] {
        let _ = kill_process(pid, signal);
        for _ in 0..wait {
            if !proc_dir.exists() {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }
}

/// Elsewhere a stale browser is left for Chromium's own lock to report.
#[cfg(not(target_os = "linux"))]
pub(crate) async fn reclaim(_dir: &Path) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folder_names_are_plain_and_distinct() {
        assert_eq!(folder_name("main"), "main");
        assert_eq!(folder_name("shop.cn_2-b"), "shop.cn_2-b");
        assert_eq!(folder_name("../x"), "..%2Fx");
        assert_eq!(folder_name(".."), "%2E%2E");
        assert_eq!(folder_name("a b%"), "a%20b%25");
        assert_eq!(folder_name("主号"), "%E4%B8%BB%E5%8F%B7");
        assert_ne!(folder_name("a%20b"), folder_name("a b"));
    }

    #[tokio::test]
    async fn the_profile_is_private_and_one_holder_at_a_time() {
        let tmp = tempfile::tempdir().unwrap();
        let profiles = Profiles::new(tmp.path());
        let first = profiles
            .lock("main", "dropcast watch", Duration::ZERO)
            .await
            .unwrap();
        assert_eq!(first.dir(), tmp.path().join("browser/main"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            for d in [tmp.path().join("browser"), tmp.path().join("browser/main")] {
                let mode = std::fs::metadata(&d).unwrap().permissions().mode() & 0o777;
                assert_eq!(mode, 0o700, "{}", d.display());
            }
        }
        let busy = profiles
            .lock("main", "dropcast login", Duration::from_millis(300))
            .await
            .unwrap_err();
        assert_eq!(
            busy.to_string(),
            format!(
                "the browser profile of account `main` is in use by pid {}: dropcast watch",
                std::process::id()
            )
        );
        // Another account's profile is free; the first is free again once dropped.
        profiles.lock("other", "x", Duration::ZERO).await.unwrap();
        let waiter = {
            let profiles = profiles.clone();
            tokio::spawn(async move {
                profiles
                    .lock("main", "dropcast login", Duration::from_secs(60))
                    .await
            })
        };
        drop(first);
        waiter.await.unwrap().unwrap();
    }
}
