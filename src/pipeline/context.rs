//! Everything a job needs, built once from the config: the platform client, the accounts,
//! the ledger, the folders, and the built-in sandbox when `platform.sandbox` is on.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::net::TcpListener;

use crate::archive::Folders;
use crate::config::{AccountConfig, Config, DouyinWebAccount};
use crate::driver::DriverLock;
use crate::ledger::{Ledger, LedgerError};
use crate::platform::{Account, ClientSettings, DouyinWeb, RetryPolicy};
use crate::sandbox::{self, SandboxHandle, SandboxOptions};
use crate::secret::Secret;
use crate::watch::NameFilter;

use super::accounts::Accounts;
use super::cookie::load_cookie;
use super::error::FatalError;
use super::live::Live;

/// What a [`Context`] may do to the state folder.
#[derive(Clone, Copy, Debug)]
pub enum Access<'a> {
    /// This process drives the state folder (it holds the lock): it opens the ledger and
    /// may write it. `new_ledger`: start with an empty ledger even though receipts of
    /// earlier posts exist (`--new-ledger`).
    Driver {
        lock: &'a DriverLock,
        new_ledger: bool,
    },
    /// Looks only (`dropcast check`): the ledger is not opened, let alone written, so a
    /// running agent's checkpoints are never touched.
    Inspect,
}

/// Shared by every job of one agent (or one command).
pub struct Context {
    pub config: Config,
    pub client: DouyinWeb,
    pub accounts: Accounts,
    /// What the agent is doing now (status server, `dropcast status`).
    pub live: Live,
    pub filter: NameFilter,
    pub folders: Folders,
    /// `None` for [`Access::Inspect`].
    ledger: Option<Arc<Mutex<Ledger>>>,
    /// Set when a ledger call found its file deleted, replaced or emptied.
    ledger_lost: Mutex<Option<(PathBuf, &'static str)>>,
    /// Per account: when its last post went out (for `publish.min_interval`).
    last_post: Mutex<HashMap<String, Instant>>,
    /// The built-in simulator, kept alive as long as the context.
    sandbox: Option<SandboxHandle>,
}

impl Context {
    /// Creates the folders, opens the ledger (as the driver only), loads every account's
    /// cookie and, with `platform.sandbox: true`, starts the simulator on 127.0.0.1 and
    /// points the client at it.
    pub async fn build(config: Config, access: Access<'_>) -> Result<Context, FatalError> {
        create_folders(&config)?;
        let retry = RetryPolicy {
            attempts: config.publish.retry.attempts.get(),
            initial: config.publish.retry.initial,
            max: config.publish.retry.max,
        };
        let (settings, accounts, sandbox) = if config.platform.sandbox {
            let (handle, base) = start_sandbox(&config).await?;
            let settings = ClientSettings {
                creator_url: base.clone(),
                vod_url: base,
                upload_scheme: "http".into(),
                timeout: config.platform.timeout,
                retry,
                max_rate: config.upload.max_rate,
            };
            (settings, sandbox_accounts(&config)?, Some(handle))
        } else {
            let settings = ClientSettings {
                creator_url: config.platform.douyin_web.creator_url.clone(),
                vod_url: config.platform.douyin_web.vod_url.clone(),
                upload_scheme: config.platform.douyin_web.upload_scheme.as_str().into(),
                timeout: config.platform.timeout,
                retry,
                max_rate: config.upload.max_rate,
            };
            (settings, cookie_accounts(&config)?, None)
        };
        let client = DouyinWeb::new(settings).map_err(|e| FatalError::Client(e.to_string()))?;
        let ledger = open_ledger(&config, access, sandbox.is_some())?;
        let filter = NameFilter::new(&config.watch.extensions, config.watch.ignore.clone());
        let folders = Folders {
            inbox: config.inbox.clone(),
            done: config.done.clone(),
            failed: config.failed.clone(),
            duplicates: config.duplicates.clone(),
        };
        Ok(Context {
            config,
            client,
            accounts,
            live: Live::new(""),
            filter,
            folders,
            ledger,
            ledger_lost: Mutex::new(None),
            last_post: Mutex::new(HashMap::new()),
            sandbox,
        })
    }

    /// The simulator's address when running in sandbox mode.
    pub fn sandbox_url(&self) -> Option<String> {
        self.sandbox.as_ref().map(|s| s.base_url())
    }

    /// Runs `f` on the ledger off the async threads (SQLite commits fsync).
    pub async fn ledger<T, F>(&self, f: F) -> Result<T, LedgerError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Ledger) -> Result<T, LedgerError> + Send + 'static,
    {
        let Some(ledger) = self.ledger.as_ref().map(Arc::clone) else {
            return Err(LedgerError::Invalid(
                "this command only looks: it did not open the ledger",
            ));
        };
        let result = match tokio::task::spawn_blocking(move || {
            let mut guard = ledger
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            f(&mut guard)
        })
        .await
        {
            Ok(result) => result,
            Err(join) => std::panic::resume_unwind(join.into_panic()),
        };
        if let Err(LedgerError::Lost { path, what }) = &result {
            *self.ledger_lost.lock().unwrap_or_else(|p| p.into_inner()) =
                Some((path.clone(), what));
        }
        result
    }

    /// The ledger's file was found deleted, replaced or emptied: the error that must stop
    /// the agent. Also looks at the file itself when `look` is set.
    pub(crate) async fn ledger_lost(&self, look: bool) -> Option<LedgerError> {
        if look && self.ledger.is_some() {
            // `ledger` records a `Lost` answer; other errors are not a lost ledger.
            let _ = self.ledger(|l| l.check_file()).await;
        }
        self.ledger_lost
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .map(|(path, what)| LedgerError::Lost {
                path: path.clone(),
                what,
            })
    }

    /// Waits until `publish.min_interval` has passed since this account's last post, then
    /// books the slot for the post about to be sent. The last post is this process's own,
    /// else the ledger's latest step-5 send for the account (answered or not), so a restart
    /// (even after `kill -9`) keeps the interval.
    pub(crate) async fn wait_post_slot(&self, account: &str) {
        let interval = self.config.publish.min_interval;
        if interval.is_zero() {
            return;
        }
        self.recall_last_post(account, interval).await;
        loop {
            let wait = {
                let mut last = self.last_post.lock().unwrap_or_else(|p| p.into_inner());
                let now = Instant::now();
                match last.get(account) {
                    Some(&t) if now < t + interval => Some(t + interval - now),
                    _ => {
                        last.insert(account.to_string(), now);
                        None
                    }
                }
            };
            match wait {
                Some(d) => {
                    tracing::info!(account, wait = %humantime::format_duration(round(d)), "waiting for publish.min_interval");
                    tokio::time::sleep(d).await;
                }
                None => return,
            }
        }
    }

    /// When this process has not posted for `account` yet, takes its last post time from
    /// the ledger (only if it is within `interval`); a ledger that cannot be read counts
    /// the interval from now.
    async fn recall_last_post(&self, account: &str, interval: Duration) {
        let known = self
            .last_post
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains_key(account);
        if known {
            return;
        }
        let name = account.to_string();
        match self.ledger(move |l| l.last_publish_sent(&name)).await {
            Ok(Some(sent)) => {
                // How long ago, by the wall clock; a send "in the future" (the clock
                // went back) counts as just now.
                let ago = std::time::SystemTime::now()
                    .duration_since(sent)
                    .unwrap_or_default();
                if ago < interval {
                    let now = Instant::now();
                    let at = now.checked_sub(ago).unwrap_or(now);
                    self.last_post
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .entry(account.to_string())
                        .or_insert(at);
                }
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(account, reason = %e, "cannot read the last post time from the ledger; publish.min_interval counts from now");
                self.last_post
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .entry(account.to_string())
                    .or_insert_with(Instant::now);
            }
        }
    }

    /// The path of `file` relative to the inbox, or the path itself when outside it
    /// ([`archive::inbox_relative`](crate::archive::inbox_relative)).
    pub fn relative<'a>(&self, file: &'a Path) -> &'a Path {
        crate::archive::inbox_relative(&self.config.inbox, file)
    }

    /// Whether `file` lies in the inbox (only those files are ever moved).
    pub(crate) fn in_inbox(&self, file: &Path) -> bool {
        // The archive's own rule: `inbox/../elsewhere` is not in the inbox.
        file.starts_with(&self.config.inbox) && crate::archive::in_inbox(&self.config.inbox, file)
    }

    /// Stops the built-in sandbox, if any.
    pub async fn shutdown(self) {
        if let Some(sandbox) = self.sandbox {
            sandbox.shutdown().await;
        }
    }
}

/// The built-in sandbox starts empty every time: uploads an earlier run made there are
/// gone, so unfinished jobs upload again instead of reusing what the sandbox forgot.
fn restart_uploads_for_a_fresh_sandbox(ledger: &mut Ledger) -> Result<(), LedgerError> {
    let unfinished: Vec<_> = ledger
        .jobs_in(&[crate::ledger::JobState::Active])?
        .into_iter()
        .filter(|job| job.publish_sent_at.is_none() && !job.steps.is_empty())
        .collect();
    for job in &unfinished {
        ledger.forget_steps_from(job.id, crate::domain::Step::Credentials)?;
    }
    if !unfinished.is_empty() {
        tracing::info!(
            jobs = unfinished.len(),
            "sandbox mode: the simulator starts empty, so unfinished uploads start over"
        );
    }
    Ok(())
}

fn round(d: Duration) -> Duration {
    Duration::from_secs(d.as_secs())
}

/// Creates the inbox, the archive folders and the state folder.
fn create_folders(config: &Config) -> Result<(), FatalError> {
    for dir in config.folders_to_create() {
        std::fs::create_dir_all(dir).map_err(|source| FatalError::Folder {
            path: dir.to_path_buf(),
            source,
        })?;
    }
    Ok(())
}

/// Starts the built-in simulator on 127.0.0.1 (`platform.sandbox: true`) with the
/// configured faults; returns it and its address.
async fn start_sandbox(config: &Config) -> Result<(SandboxHandle, reqwest::Url), FatalError> {
    let listener = TcpListener::bind(("127.0.0.1", 0))
        .await
        .map_err(FatalError::Sandbox)?;
    let options = SandboxOptions {
        faults: config.platform.sandbox_faults.clone(),
        ..SandboxOptions::default()
    };
    if !options.faults.is_empty() {
        tracing::warn!(
            faults = options.faults.len(),
            "the sandbox will fail some requests on purpose (platform.sandbox_faults)"
        );
    }
    let handle = sandbox::start(listener, options)
        .await
        .map_err(FatalError::Sandbox)?;
    let base: reqwest::Url = handle
        .base_url()
        .parse()
        .map_err(|e| FatalError::Client(format!("sandbox address: {e}")))?;
    tracing::info!(
        address = %handle.base_url(),
        "sandbox mode: publishing to the built-in simulator; nothing reaches Douyin"
    );
    Ok((handle, base))
}

/// The configured accounts with the simulator's cookies (never the real ones).
fn sandbox_accounts(config: &Config) -> Result<Accounts, FatalError> {
    let accounts = Accounts::new();
    for acc in &config.accounts {
        douyin_web(acc)?;
        let account = Account::new(&acc.name, Secret::new(sandbox::cookie_for(&acc.name)), None)
            .map_err(|e| FatalError::Account {
                account: acc.name.clone(),
                reason: e.to_string(),
            })?;
        accounts.insert(account, None, None);
    }
    Ok(accounts)
}

/// The configured accounts, each with its cookie loaded from where the config says.
fn cookie_accounts(config: &Config) -> Result<Accounts, FatalError> {
    let accounts = Accounts::new();
    for acc in &config.accounts {
        let web = douyin_web(acc)?;
        let cookie = load_cookie(&acc.name, &web.cookie)?;
        let account = Account::new(&acc.name, cookie, web.csrf_token.clone()).map_err(|e| {
            FatalError::Account {
                account: acc.name.clone(),
                reason: e.to_string(),
            }
        })?;
        accounts.insert(account, Some(web.cookie.clone()), web.csrf_token.clone());
    }
    Ok(accounts)
}

/// Opens the ledger for the driver (with a fresh simulator, uploads begun against the
/// last one start again); an inspecting context has none.
fn open_ledger(
    config: &Config,
    access: Access<'_>,
    fresh_sandbox: bool,
) -> Result<Option<Arc<Mutex<Ledger>>>, FatalError> {
    match access {
        Access::Driver { lock, new_ledger } => {
            let mut ledger = crate::lost_ledger::open_for_driver(config, lock, new_ledger)?;
            if fresh_sandbox {
                restart_uploads_for_a_fresh_sandbox(&mut ledger)?;
            }
            Ok(Some(Arc::new(Mutex::new(ledger))))
        }
        Access::Inspect => Ok(None),
    }
}

/// The account's `douyin-web` settings; the only backend there is (config refuses the others).
fn douyin_web(acc: &AccountConfig) -> Result<&DouyinWebAccount, FatalError> {
    acc.douyin_web().ok_or_else(|| FatalError::Account {
        account: acc.name.clone(),
        reason: crate::config::not_available_yet(&acc.name, acc.platform()),
    })
}
