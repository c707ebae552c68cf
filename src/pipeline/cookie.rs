//! An account's cookie, read from its variable or file: a regular file of sensible size
//! only (never a FIFO or a device), a byte-order mark ignored, a file others can read
//! warned about once. The value is a [`Secret`] from the first byte; nothing logs it.

use std::path::Path;

use crate::config::CookieSource;
use crate::secret::Secret;

use super::error::FatalError;

/// Cookie files larger than this are refused unread (a real cookie is a few KiB).
pub(crate) const MAX_COOKIE_BYTES: u64 = 64 * 1024;

/// Reads an account's cookie from its variable or file. Never logs the value.
///
/// A cookie file is read only if it is a regular file of at most [`MAX_COOKIE_BYTES`]
/// (a FIFO or `/dev/zero` is refused at once, see [`crate::userfile`]). Blocking callers
/// use this; async code reads the file with [`load_cookie_async`].
pub(crate) fn load_cookie(account: &str, source: &CookieSource) -> Result<Secret, FatalError> {
    let file = match source {
        CookieSource::File(path) => {
            Some(crate::userfile::read(path, MAX_COOKIE_BYTES).map_err(|e| e.to_string()))
        }
        CookieSource::Env(_) => None,
    };
    cookie_from(account, source, file)
}

/// [`load_cookie`] with the file read off the async threads, with a time limit.
pub(crate) async fn load_cookie_async(
    account: &str,
    source: &CookieSource,
) -> Result<Secret, FatalError> {
    let file = match source {
        CookieSource::File(path) => Some(
            crate::userfile::read_async(path.clone(), MAX_COOKIE_BYTES)
                .await
                .map_err(|e| e.to_string()),
        ),
        CookieSource::Env(_) => None,
    };
    cookie_from(account, source, file)
}

/// The cookie from the variable, or from the file's bytes already read.
fn cookie_from(
    account: &str,
    source: &CookieSource,
    file: Option<Result<Vec<u8>, String>>,
) -> Result<Secret, FatalError> {
    let fail = |reason: String| FatalError::Account {
        account: account.to_string(),
        reason,
    };
    let value = match source {
        CookieSource::Env(var) => std::env::var(var).map_err(|_| {
            fail(format!(
                "environment variable {var} is not set; put the account's cookie in it (see README, \"Using a real account\")"
            ))
        })?,
        CookieSource::File(path) => {
            let bytes = file
                .unwrap_or_else(|| Err(format!("{} was not read", path.display())))
                .map_err(|e| fail(format!("cookie file: {e}")))?;
            warn_if_readable_by_others(account, path);
            String::from_utf8(bytes)
                .map_err(|_| fail(format!("cookie file {} is not UTF-8 text", path.display())))?
        }
    };
    // Editors on some systems start a file with a byte-order mark; it is no part of a cookie.
    let value = value.trim_start_matches('\u{feff}').trim();
    if value.is_empty() {
        return Err(fail("the cookie is empty".into()));
    }
    Ok(Secret::new(value))
}

/// Says once per file (per run) that a cookie file other users can read should be
/// `chmod 600`: a cookie is a password.
#[cfg(unix)]
fn warn_if_readable_by_others(account: &str, path: &Path) {
    use std::collections::HashSet;
    use std::os::unix::fs::PermissionsExt;
    use std::sync::Mutex;
    static WARNED: Mutex<Option<HashSet<std::path::PathBuf>>> = Mutex::new(None);
    let Ok(meta) = std::fs::metadata(path) else {
        return;
    };
    let mode = meta.permissions().mode();
    if mode & 0o077 == 0 {
        return;
    }
    let mut warned = WARNED.lock().unwrap_or_else(|p| p.into_inner());
    if warned
        .get_or_insert_with(HashSet::new)
        .insert(path.to_path_buf())
    {
        tracing::warn!(
            account,
            file = %path.display(),
            mode = format!("{:o}", mode & 0o777),
            "the cookie file can be read by other users of this machine; a cookie is as good as a password: run `chmod 600 {}`",
            path.display()
        );
    }
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_account: &str, _path: &Path) {}
