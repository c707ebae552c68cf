//! The QR codes `dropcast login` is waiting on, for the dashboard: a user away from the
//! terminal scans the code on the page. `login` saves each code as a PNG beside the
//! account's browser profile and removes it when it ends; a file older than
//! [`FRESH_FOR`] is left over from a login that died and is not shown.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use serde::Serialize;

use crate::browser::Profiles;
use crate::config::Config;
use crate::domain::Platform;
use crate::receipt::UtcTime;

/// A code older than this is not shown (the site's codes expire in about two minutes,
/// and `login` replaces each one it sees expire).
pub const FRESH_FOR: Duration = Duration::from_secs(10 * 60);

/// A login waiting for its QR code to be scanned.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct LoginCode {
    pub account: String,
    /// The PNG's address on this server; it changes with each new code.
    pub image: String,
    /// When this code was shown.
    pub since: UtcTime,
}

/// The configured account `name` that logs in through a browser, with where its code is.
fn code_file(config: &Config, name: &str) -> Option<PathBuf> {
    let acc = config.accounts.iter().find(|a| a.name == name)?;
    (acc.platform() == Platform::Douyin)
        .then(|| Profiles::new(&config.state_dir).login_qr(&acc.name))
}

/// When the code at `path` was saved, if it is fresh.
fn fresh(path: &PathBuf, now: SystemTime) -> Option<SystemTime> {
    let saved = std::fs::metadata(path).and_then(|m| m.modified()).ok()?;
    let age = now.duration_since(saved).unwrap_or_default();
    (age <= FRESH_FOR).then_some(saved)
}

/// Every login now waiting for a scan, in the config's order.
pub fn waiting(config: &Config) -> Vec<LoginCode> {
    let now = SystemTime::now();
    config
        .accounts
        .iter()
        .filter_map(|acc| {
            let path = code_file(config, &acc.name)?;
            let saved = fresh(&path, now)?;
            let stamp = saved
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis());
            Some(LoginCode {
                account: acc.name.clone(),
                image: format!("/api/login-qr/{}?v={stamp}", encode(&acc.name)),
                since: UtcTime::from(saved),
            })
        })
        .collect()
}

/// The PNG of the code `name`'s login waits on, if there is a fresh one.
pub async fn image(config: &Config, name: &str) -> Option<Vec<u8>> {
    let path = code_file(config, name)?;
    fresh(&path, SystemTime::now())?;
    tokio::fs::read(&path).await.ok()
}

/// An account name as one path segment.
fn encode(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_one_path_segment() {
        assert_eq!(encode("studio"), "studio");
        assert_eq!(encode("my studio/2"), "my%20studio%2F2");
        assert_eq!(encode("工作室"), "%E5%B7%A5%E4%BD%9C%E5%AE%A4");
    }
}
