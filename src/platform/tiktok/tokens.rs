//! A TikTok account's OAuth tokens on disk: `state_dir/tokens/<account>.json`, the folder
//! 0700 and the file 0600 (the user's alone), each save atomic (a temporary file, fsync,
//! rename, fsync of the folder), so a crash leaves the old tokens or the new, never half.
//! Tokens live only in [`Secret`]s and are never logged.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::secret::Secret;

/// One account's tokens, and who they belong to.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Tokens {
    pub open_id: String,
    pub scope: String,
    pub access: Secret,
    /// Unix seconds.
    pub access_expires_at: u64,
    pub refresh: Secret,
    pub refresh_expires_at: u64,
    /// The creator's nickname and username (§3), for `dropcast accounts` and addresses.
    pub nickname: Option<String>,
    pub username: Option<String>,
}

impl Tokens {
    /// Whether the access token still has at least `margin` to live at `now`.
    pub(crate) fn access_fresh(&self, now: SystemTime, margin: Duration) -> bool {
        unix(now).saturating_add(margin.as_secs()) < self.access_expires_at
    }

    /// Whether the refresh token has expired at `now`.
    pub(crate) fn refresh_expired(&self, now: SystemTime) -> bool {
        unix(now) >= self.refresh_expires_at
    }
}

/// Seconds since the epoch.
pub(crate) fn unix(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// The file's shape.
#[derive(Serialize, Deserialize)]
struct OnDisk {
    open_id: String,
    #[serde(default)]
    scope: String,
    access_token: String,
    access_expires_at: u64,
    refresh_token: String,
    refresh_expires_at: u64,
    #[serde(default)]
    nickname: Option<String>,
    #[serde(default)]
    username: Option<String>,
}

/// Why tokens could not be read or saved. Never holds a token.
#[derive(Debug, thiserror::Error)]
pub(crate) enum TokenError {
    #[error("no TikTok login for this account yet ({})", .0.display())]
    Missing(PathBuf),
    #[error("cannot read {}: {source}", path.display())]
    Read { path: PathBuf, source: io::Error },
    #[error("{} is not a token file dropcast wrote: {reason}", path.display())]
    Unreadable { path: PathBuf, reason: String },
    #[error("cannot save the tokens in {}: {source}", path.display())]
    Write { path: PathBuf, source: io::Error },
}

/// Where every TikTok account's tokens are kept.
#[derive(Clone, Debug)]
pub(crate) struct TokenStore {
    dir: PathBuf,
}

impl TokenStore {
    pub(crate) fn new(state_dir: &Path) -> TokenStore {
        TokenStore {
            dir: state_dir.join("tokens"),
        }
    }

    /// The file of `account`'s tokens (also the stamp a running agent watches to resume
    /// a paused account once `dropcast login` renews it).
    pub(crate) fn path(&self, account: &str) -> PathBuf {
        self.dir.join(format!("{}.json", file_name(account)))
    }

    /// `account`'s tokens.
    pub(crate) fn load(&self, account: &str) -> Result<Tokens, TokenError> {
        let path = self.path(account);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(TokenError::Missing(path));
            }
            Err(source) => return Err(TokenError::Read { path, source }),
        };
        // serde_json's error names a position, never the value.
        let d: OnDisk = serde_json::from_slice(&bytes).map_err(|e| TokenError::Unreadable {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        Ok(Tokens {
            open_id: d.open_id,
            scope: d.scope,
            access: Secret::new(d.access_token),
            access_expires_at: d.access_expires_at,
            refresh: Secret::new(d.refresh_token),
            refresh_expires_at: d.refresh_expires_at,
            nickname: d.nickname,
            username: d.username,
        })
    }

    /// Saves `account`'s tokens durably: when this returns, a crash keeps them.
    pub(crate) fn save(&self, account: &str, tokens: &Tokens) -> Result<(), TokenError> {
        let path = self.path(account);
        let d = OnDisk {
            open_id: tokens.open_id.clone(),
            scope: tokens.scope.clone(),
            access_token: tokens.access.expose().to_owned(),
            access_expires_at: tokens.access_expires_at,
            refresh_token: tokens.refresh.expose().to_owned(),
            refresh_expires_at: tokens.refresh_expires_at,
            nickname: tokens.nickname.clone(),
            username: tokens.username.clone(),
        };
        let bytes = serde_json::to_vec_pretty(&d).map_err(|e| TokenError::Write {
            path: path.clone(),
            source: io::Error::other(e.to_string()),
        })?;
        self.write_atomically(&path, &bytes)
            .map_err(|source| TokenError::Write { path, source })?;
        crate::failpoint::hit("after_commit:tiktok_tokens");
        Ok(())
    }

    fn write_atomically(&self, path: &Path, bytes: &[u8]) -> io::Result<()> {
        private_dir(&self.dir)?;
        let mut builder = tempfile::Builder::new();
        builder.prefix(".tokens-").suffix(".tmp");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            builder.permissions(std::fs::Permissions::from_mode(0o600));
        }
        let mut tmp = builder.tempfile_in(&self.dir)?;
        tmp.write_all(bytes)?;
        tmp.as_file().sync_all()?;
        tmp.persist(path).map_err(|e| e.error)?;
        sync_dir(&self.dir)
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
        if std::fs::metadata(dir)?.permissions().mode() & 0o777 != 0o700 {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
        }
    }
    #[cfg(windows)]
    if new {
        crate::win::make_private(dir)?;
    }
    Ok(())
}

#[cfg(unix)]
fn sync_dir(dir: &Path) -> io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> io::Result<()> {
    Ok(())
}

/// `account` as one safe file name: plain characters kept, others `%XX`.
fn file_name(account: &str) -> String {
    let plain = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_');
    account
        .bytes()
        .map(|b| {
            if plain(b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn tokens(access: &str, refresh: &str) -> Tokens {
        Tokens {
            open_id: "open-1".into(),
            scope: "video.publish".into(),
            access: Secret::new(access),
            access_expires_at: 2_000_000_000,
            refresh: Secret::new(refresh),
            refresh_expires_at: 2_100_000_000,
            nickname: Some("Nick".into()),
            username: Some("nick".into()),
        }
    }

    #[test]
    fn tokens_round_trip_in_a_private_file_and_never_print() {
        let dir = tempfile::tempdir().unwrap();
        let store = TokenStore::new(dir.path());
        assert!(matches!(store.load("g"), Err(TokenError::Missing(_))));
        let t = tokens("ACCESS1", "REFRESH1");
        store.save("g", &t).unwrap();
        assert_eq!(store.load("g").unwrap(), t);
        assert!(!format!("{t:?}").contains("ACCESS1"));
        assert!(!format!("{t:?}").contains("REFRESH1"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&dir.path().join("tokens")), 0o700);
            assert_eq!(mode(&store.path("g")), 0o600);
        }
        // Saved again: replaced whole, no temporary file left behind.
        store.save("g", &tokens("ACCESS2", "REFRESH2")).unwrap();
        assert_eq!(store.load("g").unwrap().refresh.expose(), "REFRESH2");
        let names: Vec<_> = std::fs::read_dir(dir.path().join("tokens"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("g.json")]);
    }

    #[test]
    fn a_broken_file_is_an_error_that_names_no_token() {
        let dir = tempfile::tempdir().unwrap();
        let store = TokenStore::new(dir.path());
        std::fs::create_dir_all(dir.path().join("tokens")).unwrap();
        std::fs::write(store.path("g"), r#"{"access_token": "SEKRIT""#).unwrap();
        let err = store.load("g").unwrap_err().to_string();
        assert!(err.contains("not a token file"), "{err}");
        assert!(!err.contains("SEKRIT"), "{err}");
    }

    #[test]
    fn account_names_become_plain_distinct_file_names() {
        let store = TokenStore::new(Path::new("/s"));
        assert_eq!(store.path("global"), Path::new("/s/tokens/global.json"));
        assert_eq!(store.path("../x"), Path::new("/s/tokens/%2E%2E%2Fx.json"));
        assert_ne!(store.path("a b"), store.path("a_b"));
    }

    #[test]
    fn freshness_uses_the_margin() {
        let t = tokens("a", "r");
        let at = |s: u64| UNIX_EPOCH + Duration::from_secs(s);
        assert!(t.access_fresh(at(2_000_000_000 - 400), Duration::from_secs(300)));
        assert!(!t.access_fresh(at(2_000_000_000 - 200), Duration::from_secs(300)));
        assert!(!t.refresh_expired(at(2_099_999_999)));
        assert!(t.refresh_expired(at(2_100_000_000)));
    }
}
