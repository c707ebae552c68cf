//! The configured accounts, each with its cookie and whether it is paused.
//!
//! An account whose cookie the platform refuses (expired, logged out) is *paused*: its
//! videos stay queued in the inbox and nothing is sent for it. It resumes by itself when
//! its cookie file changes and works again, or when a periodic re-check succeeds.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime};

use crate::config::CookieSource;
use crate::domain::Platform;
use crate::platform::{Account, Backend};
use crate::secret::Secret;

use super::cookie::load_cookie_async;

/// A paused account, as `status` will show it.
#[derive(Debug, Clone)]
pub struct Pause {
    pub reason: String,
    pub since: SystemTime,
    /// When its cookie was last tried.
    checked: Instant,
    /// The cookie file's mtime when it was last read.
    cookie_stamp: Option<SystemTime>,
}

struct Entry {
    account: Account,
    platform: Platform,
    /// The backend that publishes for it.
    backend: Arc<dyn Backend>,
    /// Where the cookie comes from; `None` in sandbox mode.
    source: Option<CookieSource>,
    csrf: Option<Secret>,
    paused: Option<Pause>,
}

/// Every configured account, shared by all jobs.
pub struct Accounts {
    entries: Mutex<HashMap<String, Entry>>,
}

/// An account due for a re-check, with the cookie to try.
pub(crate) struct Recheck {
    pub name: String,
    pub account: Account,
    pub backend: Arc<dyn Backend>,
}

/// An account as a job uses it: its login, its platform and the backend for it.
#[derive(Clone)]
pub(crate) struct AccountRef {
    pub account: Account,
    pub platform: Platform,
    pub backend: Arc<dyn Backend>,
}

impl Accounts {
    pub fn new() -> Accounts {
        Accounts {
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// Adds an account of `platform`, published by `backend`; `source` is where its cookie
    /// can be read again.
    pub(crate) fn insert(
        &self,
        account: Account,
        platform: Platform,
        backend: Arc<dyn Backend>,
        source: Option<CookieSource>,
        csrf: Option<Secret>,
    ) {
        let name = account.name.clone();
        self.lock().insert(
            name,
            Entry {
                account,
                platform,
                backend,
                source,
                csrf,
                paused: None,
            },
        );
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn contains(&self, name: &str) -> bool {
        self.lock().contains_key(name)
    }

    /// The account with its current cookie, its platform and its backend.
    pub(crate) fn get(&self, name: &str) -> Option<AccountRef> {
        self.lock().get(name).map(|e| AccountRef {
            account: e.account.clone(),
            platform: e.platform,
            backend: Arc::clone(&e.backend),
        })
    }

    /// Why the account is paused, if it is.
    pub fn paused(&self, name: &str) -> Option<Pause> {
        self.lock().get(name).and_then(|e| e.paused.clone())
    }

    /// Pauses an account. Returns `true` when it was running until now (say so loudly
    /// once, not for every job).
    pub fn pause(&self, name: &str, reason: &str) -> bool {
        let mut entries = self.lock();
        let Some(entry) = entries.get_mut(name) else {
            return false;
        };
        if entry.paused.is_some() {
            return false;
        }
        entry.paused = Some(Pause {
            reason: reason.to_string(),
            since: SystemTime::now(),
            checked: Instant::now(),
            cookie_stamp: entry.source.as_ref().and_then(cookie_stamp),
        });
        true
    }

    /// Every paused account with its pause, by name.
    pub(crate) fn paused_list(&self) -> Vec<(String, Pause)> {
        let mut list: Vec<(String, Pause)> = self
            .lock()
            .iter()
            .filter_map(|(name, e)| e.paused.clone().map(|p| (name.clone(), p)))
            .collect();
        list.sort_by(|a, b| a.0.cmp(&b.0));
        list
    }

    pub fn resume(&self, name: &str) {
        if let Some(entry) = self.lock().get_mut(name) {
            entry.paused = None;
        }
    }

    /// How to renew this account's cookie, for the log.
    pub(crate) fn renew_hint(&self, name: &str) -> String {
        let (source, page) = match self.lock().get(name) {
            Some(e) => match e.backend.renew_hint(name) {
                Some(hint) => return hint,
                None => (e.source.clone(), e.backend.login_page()),
            },
            None => return "renew the account's cookie".into(),
        };
        match source {
            Some(CookieSource::File(path)) => format!(
                "log in at {page}, copy the Cookie header into {} and dropcast resumes by \
                 itself",
                path.display()
            ),
            Some(CookieSource::Env(var)) => format!(
                "log in at {page}, put the Cookie header in {var} and restart dropcast (a \
                 running program cannot see a changed variable; a cookie_file can be renewed \
                 without a restart)"
            ),
            None => "renew the account's cookie".into(),
        }
    }

    /// Paused accounts to try again now: those whose cookie file changed (the new cookie
    /// is read) and those not tried for `every`. Marks them as tried.
    ///
    /// Changed cookie files are read without holding the accounts' lock, off the async
    /// threads and with a time limit: a cookie file swapped for a FIFO or a device must not
    /// stop every job (they all look accounts up).
    pub(crate) async fn due_for_check(&self, every: std::time::Duration) -> Vec<Recheck> {
        let now = Instant::now();
        let mut due = Vec::new();
        let mut to_read = Vec::new();
        for (name, entry) in self.lock().iter_mut() {
            let Some(pause) = entry.paused.as_mut() else {
                continue;
            };
            let stamp = entry.source.as_ref().and_then(cookie_stamp);
            let changed = stamp.is_some() && stamp != pause.cookie_stamp;
            if !changed && now.duration_since(pause.checked) < every {
                continue;
            }
            pause.checked = now;
            match (&entry.source, changed) {
                (Some(source), true) => {
                    pause.cookie_stamp = stamp;
                    to_read.push((
                        name.clone(),
                        source.clone(),
                        entry.csrf.clone(),
                        Arc::clone(&entry.backend),
                    ));
                }
                _ => due.push(Recheck {
                    name: name.clone(),
                    account: entry.account.clone(),
                    backend: Arc::clone(&entry.backend),
                }),
            }
        }
        for (name, source, csrf, backend) in to_read {
            let account = load_cookie_async(&name, &source).await.and_then(|cookie| {
                Account::new(&name, cookie, csrf).map_err(|e| super::FatalError::Account {
                    account: name.clone(),
                    reason: e.to_string(),
                })
            });
            match account {
                Ok(account) => {
                    tracing::info!(account = %name, "the cookie file changed; trying the new cookie");
                    if let Some(entry) = self.lock().get_mut(&name) {
                        entry.account = account.clone();
                    }
                    due.push(Recheck {
                        name,
                        account,
                        backend,
                    });
                }
                Err(e) => {
                    // `e` names the account itself.
                    tracing::warn!(reason = %e, "the cookie file changed but cannot be used");
                }
            }
        }
        due
    }
}

impl Default for Accounts {
    fn default() -> Self {
        Accounts::new()
    }
}

fn cookie_stamp(source: &CookieSource) -> Option<SystemTime> {
    match source {
        CookieSource::File(path) => std::fs::metadata(path).and_then(|m| m.modified()).ok(),
        CookieSource::Env(_) => None,
    }
}
