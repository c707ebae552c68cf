//! The configured accounts, each with its cookie and whether it is paused.
//!
//! An account whose cookie the platform refuses (expired, logged out) is *paused*: its
//! videos stay queued in the inbox and nothing is sent for it. It resumes by itself when
//! its login is renewed (its cookie file changes, or `dropcast login` stamps its browser
//! session) and works again, or when a periodic re-check succeeds.

use std::collections::HashMap;
use std::path::PathBuf;
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
    /// The renewal file's mtime when the account was last tried.
    renewal_stamp: Option<SystemTime>,
    /// The other agent that paused it (through the shared ledger); `None`: this one.
    pub(crate) by: Option<String>,
}

/// How an account's login is renewed while the agent runs, so that a paused account is
/// tried again as soon as it is.
#[derive(Clone, Debug)]
pub(crate) enum Renewal {
    /// Nothing to watch (sandbox cookies): only the periodic re-check.
    Unwatched,
    /// A cookie read from `source` (with the config's CSRF token), read again when its
    /// file changes.
    Cookie {
        source: CookieSource,
        csrf: Option<Secret>,
    },
    /// A browser session; `dropcast login` touches this file when it works again.
    Login(PathBuf),
}

impl Renewal {
    /// The file whose mtime says the login was renewed.
    fn stamp(&self) -> Option<SystemTime> {
        let path = match self {
            Renewal::Cookie {
                source: CookieSource::File(path),
                ..
            }
            | Renewal::Login(path) => path,
            _ => return None,
        };
        std::fs::metadata(path).and_then(|m| m.modified()).ok()
    }
}

struct Entry {
    account: Account,
    platform: Platform,
    /// The backend that publishes for it.
    backend: Arc<dyn Backend>,
    renewal: Renewal,
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

    /// Adds an account of `platform`, published by `backend`, whose login is renewed as
    /// `renewal` says.
    pub(crate) fn insert(
        &self,
        account: Account,
        platform: Platform,
        backend: Arc<dyn Backend>,
        renewal: Renewal,
    ) {
        let name = account.name.clone();
        self.lock().insert(
            name,
            Entry {
                account,
                platform,
                backend,
                renewal,
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
        self.pause_as(name, reason, None)
    }

    /// Pauses an account another agent (`by`) paused in the shared ledger; `true` when it
    /// was running here until now.
    pub(crate) fn pause_from(&self, name: &str, reason: &str, by: &str) -> bool {
        self.pause_as(name, reason, Some(by.to_owned()))
    }

    fn pause_as(&self, name: &str, reason: &str, by: Option<String>) -> bool {
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
            renewal_stamp: entry.renewal.stamp(),
            by,
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
        let (renewal, page) = match self.lock().get(name) {
            Some(e) => match e.backend.renew_hint(name) {
                Some(hint) => return hint,
                None => (e.renewal.clone(), e.backend.login_page()),
            },
            None => return "renew the account's cookie".into(),
        };
        let source = match renewal {
            Renewal::Cookie { source, .. } => source,
            Renewal::Unwatched | Renewal::Login(_) => return "renew the account's cookie".into(),
        };
        match source {
            CookieSource::File(path) => format!(
                "log in at {page}, copy the Cookie header into {} and dropcast resumes by \
                 itself",
                path.display()
            ),
            CookieSource::Env(var) => format!(
                "log in at {page}, put the Cookie header in {var} and restart dropcast (a \
                 running program cannot see a changed variable; a cookie_file can be renewed \
                 without a restart)"
            ),
        }
    }

    /// Paused accounts to try again now: those whose login was renewed (a changed cookie
    /// file is read again) and those not tried for `every`. Marks them as tried.
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
            let stamp = entry.renewal.stamp();
            let changed = stamp.is_some() && stamp != pause.renewal_stamp;
            if !changed && now.duration_since(pause.checked) < every {
                continue;
            }
            pause.checked = now;
            pause.renewal_stamp = stamp;
            match (&entry.renewal, changed) {
                (Renewal::Cookie { source, csrf }, true) => {
                    to_read.push((
                        name.clone(),
                        source.clone(),
                        csrf.clone(),
                        Arc::clone(&entry.backend),
                    ));
                }
                (Renewal::Login(_), true) => {
                    tracing::info!(account = %name, "`dropcast login` renewed the session; trying it");
                    due.push(Recheck {
                        name: name.clone(),
                        account: entry.account.clone(),
                        backend: Arc::clone(&entry.backend),
                    });
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
