//! The composition root: the one place that turns the config into what a command runs on:
//! the folders, the ledger (for the driver of the state folder only, see [`Access`]), the
//! simulator when `platform.sandbox` is on, and a backend for each platform an account
//! names. Every command that writes builds its [`Context`] here, holding the driver lock.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::net::TcpListener;

use crate::archive::Folders;
use crate::browser::{SessionSettings, Sessions};
use crate::config::{
    AccountConfig, AccountKind, Config, CookieSource, DouyinWebAccount, TiktokMode,
};
use crate::domain::{Platform, StepName};
use crate::driver::{self, Driver, DriverLock};
use crate::ledger::{JobState, Ledger, LedgerError};
use crate::lock::{Holder, LockError, Role};
use crate::pipeline::accounts::{Accounts, Renewal};
use crate::pipeline::cookie::load_cookie;
use crate::pipeline::live::Live;
use crate::pipeline::{Access, Context, FatalError};
use crate::platform::tiktok::{self, TiktokBackend};
use crate::platform::{
    Account, AccountError, Backend, ClientSettings, CreatorSettings, DouyinCreator,
    DouyinCreatorBackend, DouyinWeb, DouyinWebBackend, RetryPolicy, UploadSettings,
};
use crate::sandbox::{self, SandboxHandle, SandboxOptions};
use crate::secret::Secret;
use crate::shared_ledger::SharedLedger;
use crate::watch::NameFilter;

/// Takes the state folder for `role`: the state lock and the inbox lock, waiting for a
/// one-off command that holds them (`waiting` says so once), or the running agent to hand
/// the work to. Every command that writes starts here.
pub async fn acquire(
    config: &Config,
    role: Role,
    waiting: impl Fn(&Holder),
) -> Result<Driver, FatalError> {
    Ok(driver::acquire(config, role, waiting).await?)
}

/// [`acquire`] for a command that must drive itself: a running agent is an error naming it.
pub async fn drive(
    config: &Config,
    role: Role,
    waiting: impl Fn(&Holder),
) -> Result<DriverLock, FatalError> {
    match acquire(config, role, waiting).await? {
        Driver::Us(lock) => Ok(lock),
        Driver::Agent(holder) => Err(LockError::Held {
            state_dir: config.state_dir.clone(),
            holder: holder.describe(),
        }
        .into()),
    }
}

/// The ledger, for the driver that holds `lock`: a lost ledger is refused unless
/// `new_ledger` (see `lost_ledger`), and unfinished jobs' steps are checked per backend.
pub fn ledger(config: &Config, lock: &DriverLock, new_ledger: bool) -> Result<Ledger, FatalError> {
    let ledger = crate::lost_ledger::open_for_driver(config, lock, new_ledger)?;
    check_step_names(&ledger)?;
    Ok(ledger)
}

/// The ledger as `dropcast ledger rebuild` opens it, for the driver that holds `_lock`:
/// also when it is lost or empty, since rebuilding it is the point.
pub fn ledger_to_rebuild(config: &Config, _lock: &DriverLock) -> Result<Ledger, FatalError> {
    Ok(Ledger::open_configured(config)?)
}

/// Creates the folders, opens the ledger (as the driver only), builds the backends, loads
/// every account's login and, with `platform.sandbox: true`, starts the simulator on
/// 127.0.0.1 and points the backends at it.
pub async fn build(config: Config, access: Access<'_>) -> Result<Context, FatalError> {
    create_folders(&config)?;
    let sandbox = match config.platform.sandbox {
        true => Some(start_sandbox(&config).await?),
        false => None,
    };
    let backends = backends(&config, sandbox.as_ref().map(|(_, base)| base)).await?;
    let accounts = match sandbox {
        Some(_) => sandbox_accounts(&config, &backends)?,
        None => cookie_accounts(&config, &backends)?,
    };
    let ledger = open_ledger(&config, access, sandbox.is_some())?;
    let backends = backends.into_values().collect();
    let filter = NameFilter::new(&config.watch.extensions, config.watch.ignore.clone());
    let folders = Folders {
        inbox: config.inbox.clone(),
        done: config.done.clone(),
        failed: config.failed.clone(),
        duplicates: config.duplicates.clone(),
    };
    Ok(Context {
        config,
        accounts,
        live: Live::new(""),
        filter,
        folders,
        ledger,
        pacer: Default::default(),
        sandbox: sandbox.map(|(handle, _)| handle),
        backends,
    })
}

/// The backend of each platform the accounts name: the one function that picks a backend
/// from the config. With the simulator, `sandbox` is its address.
async fn backends(
    config: &Config,
    sandbox: Option<&reqwest::Url>,
) -> Result<HashMap<Platform, Arc<dyn Backend>>, FatalError> {
    let mut backends: HashMap<Platform, Arc<dyn Backend>> = HashMap::new();
    for platform in config.accounts.iter().map(AccountConfig::platform) {
        if backends.contains_key(&platform) {
            continue;
        }
        let backend: Arc<dyn Backend> = match platform {
            Platform::DouyinWeb => Arc::new(douyin_web(config, sandbox)?),
            Platform::Douyin => Arc::new(douyin(config, sandbox).await?),
            Platform::Tiktok => Arc::new(tiktok(config, sandbox)?),
        };
        backends.insert(platform, backend);
    }
    Ok(backends)
}

fn douyin_web(
    config: &Config,
    sandbox: Option<&reqwest::Url>,
) -> Result<DouyinWebBackend, FatalError> {
    let web = &config.platform.douyin_web;
    let (creator_url, vod_url, upload_scheme) = match sandbox {
        Some(base) => (base.clone(), base.clone(), "http".into()),
        None => (
            web.creator_url.clone(),
            web.vod_url.clone(),
            web.upload_scheme.as_str().into(),
        ),
    };
    let settings = ClientSettings {
        creator_url,
        vod_url,
        upload_scheme,
        timeout: config.platform.timeout,
        retry: retry_policy(config),
        max_rate: config.upload.max_rate,
    };
    let client = DouyinWeb::new(settings).map_err(|e| FatalError::Client(e.to_string()))?;
    let upload = UploadSettings {
        multipart_threshold: config.upload.multipart_threshold,
        parallel_parts: config.upload.parallel_parts.get(),
    };
    Ok(DouyinWebBackend::new(client, upload))
}

/// The `douyin` backend (docs/douyin-creator.md): steps 2–4 straight from dropcast, steps
/// 1, 5 and 6 from the account's browser page ([`browser_sessions`]).
async fn douyin(
    config: &Config,
    sandbox: Option<&reqwest::Url>,
) -> Result<DouyinCreatorBackend, FatalError> {
    let settings = douyin_settings(config, sandbox);
    let pages = Arc::new(browser_sessions(config, sandbox));
    // A dropcast killed while its browser ran left that browser holding the profile.
    let names: Vec<&str> = config
        .accounts
        .iter()
        .filter(|a| a.platform() == Platform::Douyin)
        .map(|a| a.name.as_str())
        .collect();
    pages.reclaim_orphans(&names).await;
    let client =
        DouyinCreator::new(settings, pages).map_err(|e| FatalError::Client(e.to_string()))?;
    Ok(DouyinCreatorBackend::new(client))
}

/// The `douyin` client's settings: `platform.douyin`, or the simulator.
fn douyin_settings(config: &Config, sandbox: Option<&reqwest::Url>) -> CreatorSettings {
    let d = &config.platform.douyin;
    let (creator_url, vod_url, imagex_url, upload_scheme) = match sandbox {
        Some(base) => (base.clone(), base.clone(), base.clone(), "http".to_owned()),
        None => (
            d.creator_url.clone(),
            d.vod_url.clone(),
            d.imagex_url.clone(),
            d.upload_scheme.as_str().to_owned(),
        ),
    };
    CreatorSettings {
        creator_url,
        vod_url,
        imagex_url,
        upload_scheme,
        timeout: config.platform.timeout,
        retry: retry_policy(config),
        max_rate: config.upload.max_rate,
        parallel_parts: config.upload.parallel_parts.get(),
    }
}

/// The browser sessions of `douyin` accounts (profiles under `state_dir/browser/`), as
/// `dropcast login` and the agent share them.
pub fn browser_settings(config: &Config, sandbox: Option<&reqwest::Url>) -> SessionSettings {
    let creator_url = match sandbox {
        Some(base) => base.clone(),
        None => config.platform.douyin.creator_url.clone(),
    };
    let mut settings = SessionSettings::new(creator_url, &config.state_dir);
    settings.browser = config.platform.browser.clone();
    settings.idle = config.platform.browser_idle;
    settings
}

fn browser_sessions(config: &Config, sandbox: Option<&reqwest::Url>) -> Sessions {
    Sessions::new(browser_settings(config, sandbox))
}

/// The `tiktok` backend (docs/tiktok.md), with every `tiktok` account's app.
fn tiktok(config: &Config, sandbox: Option<&reqwest::Url>) -> Result<TiktokBackend, FatalError> {
    let mut accounts = HashMap::new();
    for acc in &config.accounts {
        let AccountKind::Tiktok(t) = &acc.kind else {
            continue;
        };
        let client_secret = match (client_secret(&acc.name, &t.client_secret), sandbox) {
            (Ok(secret), _) => secret,
            // The simulator with no registered apps takes any secret (docs/tiktok.md).
            (Err(_), Some(_)) => Secret::new("sandbox-secret"),
            (Err(e), None) => return Err(e),
        };
        let app = tiktok::App {
            client_key: t.client_key.clone(),
            client_secret,
        };
        let inbox = t.mode == TiktokMode::Inbox;
        accounts.insert(acc.name.clone(), tiktok::AccountSettings { app, inbox });
    }
    TiktokBackend::new(
        &tiktok_settings(config, sandbox),
        &config.state_dir,
        accounts,
    )
    .map_err(|e| FatalError::Client(e.to_string()))
}

/// The `tiktok` client's settings: `platform.tiktok`, or the simulator.
pub(crate) fn tiktok_settings(
    config: &Config,
    sandbox: Option<&reqwest::Url>,
) -> tiktok::TiktokSettings {
    let t = &config.platform.tiktok;
    let (api_url, auth_url) = match sandbox {
        Some(base) => (base.clone(), base.clone()),
        None => (t.api_url.clone(), t.auth_url.clone()),
    };
    tiktok::TiktokSettings {
        api_url,
        auth_url,
        timeout: config.platform.timeout,
        retry: retry_policy(config),
    }
}

/// A TikTok app's client secret, from its variable or file (never logged or echoed).
pub(crate) fn client_secret(account: &str, source: &CookieSource) -> Result<Secret, FatalError> {
    let fail = |reason: String| FatalError::Account {
        account: account.to_owned(),
        reason,
    };
    let value = match source {
        CookieSource::Env(var) => std::env::var(var).map_err(|_| {
            fail(format!(
                "environment variable {var} is not set; put your TikTok app's client secret in it"
            ))
        })?,
        CookieSource::File(path) => {
            let bytes = crate::userfile::read(path, 4096).map_err(|e| fail(e.to_string()))?;
            String::from_utf8(bytes).map_err(|_| fail(format!("{} is not text", path.display())))?
        }
    };
    let value = value.trim();
    if value.is_empty() || value.chars().any(char::is_control) {
        return Err(fail(
            "the TikTok client secret is empty or not one line".into(),
        ));
    }
    Ok(Secret::new(value))
}

fn retry_policy(config: &Config) -> RetryPolicy {
    RetryPolicy {
        attempts: config.publish.retry.attempts.get(),
        initial: config.publish.retry.initial,
        max: config.publish.retry.max,
    }
}

/// The backend for `acc`'s platform.
fn backend_for(
    acc: &AccountConfig,
    backends: &HashMap<Platform, Arc<dyn Backend>>,
) -> Result<Arc<dyn Backend>, FatalError> {
    backends
        .get(&acc.platform())
        .cloned()
        .ok_or_else(|| FatalError::Account {
            account: acc.name.clone(),
            reason: crate::config::not_available_yet(&acc.name, acc.platform()),
        })
}

/// The configured accounts with the simulator's cookies (never the real ones).
fn sandbox_accounts(
    config: &Config,
    backends: &HashMap<Platform, Arc<dyn Backend>>,
) -> Result<Accounts, FatalError> {
    let accounts = Accounts::new();
    for acc in &config.accounts {
        let backend = backend_for(acc, backends)?;
        if acc.platform() == Platform::Douyin {
            // Its session is its browser profile (`dropcast login`), in sandbox mode too.
            insert_browser_session(&accounts, config, acc, backend);
            continue;
        }
        if acc.platform() == Platform::Tiktok {
            insert_tiktok(&accounts, config, acc, backend);
            continue;
        }
        let cookie = Secret::new(sandbox::cookie_for(&acc.name));
        let account = Account::new(&acc.name, cookie, None).map_err(account_error(acc))?;
        accounts.insert(account, acc.platform(), backend, Renewal::Unwatched);
    }
    Ok(accounts)
}

/// The configured accounts, each with its cookie loaded from where the config says.
fn cookie_accounts(
    config: &Config,
    backends: &HashMap<Platform, Arc<dyn Backend>>,
) -> Result<Accounts, FatalError> {
    let accounts = Accounts::new();
    for acc in &config.accounts {
        let backend = backend_for(acc, backends)?;
        if acc.platform() == Platform::Douyin {
            insert_browser_session(&accounts, config, acc, backend);
            continue;
        }
        if acc.platform() == Platform::Tiktok {
            insert_tiktok(&accounts, config, acc, backend);
            continue;
        }
        let web = douyin_web_account(acc)?;
        let cookie = load_cookie(&acc.name, &web.cookie)?;
        let account =
            Account::new(&acc.name, cookie, web.csrf_token.clone()).map_err(account_error(acc))?;
        let renewal = Renewal::Cookie {
            source: web.cookie.clone(),
            csrf: web.csrf_token.clone(),
        };
        accounts.insert(account, acc.platform(), backend, renewal);
    }
    Ok(accounts)
}

/// An account whose session is its browser profile, tried again as soon as `dropcast
/// login` renews it.
fn insert_browser_session(
    accounts: &Accounts,
    config: &Config,
    acc: &AccountConfig,
    backend: Arc<dyn Backend>,
) {
    let stamp = crate::browser::Profiles::new(&config.state_dir).login_stamp(&acc.name);
    let account = Account::browser_session(&acc.name);
    accounts.insert(account, acc.platform(), backend, Renewal::Login(stamp));
}

/// A TikTok account: its tokens are a file `dropcast login` writes, and a paused account
/// is tried again as soon as that file changes.
fn insert_tiktok(
    accounts: &Accounts,
    config: &Config,
    acc: &AccountConfig,
    backend: Arc<dyn Backend>,
) {
    let stamp = tiktok::token_file(&config.state_dir, &acc.name);
    let account = Account::browser_session(&acc.name);
    accounts.insert(account, acc.platform(), backend, Renewal::Login(stamp));
}

/// An account whose login cannot be used stops the command, naming the account.
fn account_error(acc: &AccountConfig) -> impl Fn(AccountError) -> FatalError + '_ {
    |e| FatalError::Account {
        account: acc.name.clone(),
        reason: e.to_string(),
    }
}

/// The account's `douyin-web` settings (the config refuses the platforms not available yet).
fn douyin_web_account(acc: &AccountConfig) -> Result<&DouyinWebAccount, FatalError> {
    acc.douyin_web().ok_or_else(|| FatalError::Account {
        account: acc.name.clone(),
        reason: crate::config::not_available_yet(&acc.name, acc.platform()),
    })
}

/// Opens the ledger for the driver (with a fresh simulator, uploads begun against the
/// last one start again); an inspecting context has none.
fn open_ledger(
    config: &Config,
    access: Access<'_>,
    fresh_sandbox: bool,
) -> Result<Option<SharedLedger>, FatalError> {
    match access {
        Access::Driver { lock, new_ledger } => {
            let mut ledger = ledger(config, lock, new_ledger)?;
            if fresh_sandbox {
                restart_uploads_for_a_fresh_sandbox(&mut ledger)?;
            }
            Ok(Some(SharedLedger::new(ledger)))
        }
        Access::Inspect => Ok(None),
    }
}

/// Every step an unfinished job recorded is one of its platform's backend's steps (or
/// `publish`): a ledger whose checkpoints no backend can read is refused at start, by job,
/// rather than misread halfway through a job.
fn check_step_names(ledger: &Ledger) -> Result<(), LedgerError> {
    for job in ledger.jobs_in(&[JobState::Active, JobState::Unconfirmed])? {
        let known = crate::platform::steps_of(job.platform);
        if let Some((step, _)) = job
            .steps
            .iter()
            .find(|(s, _)| **s != StepName::PUBLISH && !known.contains(s))
        {
            return Err(LedgerError::Corrupt {
                id: job.id,
                what: format!("step `{step}` is not one of {}'s steps", job.platform),
            });
        }
    }
    Ok(())
}

/// The built-in sandbox starts empty every time: uploads an earlier run made there are
/// gone, so unfinished jobs upload again instead of reusing what the sandbox forgot.
fn restart_uploads_for_a_fresh_sandbox(ledger: &mut Ledger) -> Result<(), LedgerError> {
    let unfinished: Vec<_> = ledger
        .jobs_in(&[JobState::Active])?
        .into_iter()
        .filter(|job| job.publish_sent_at.is_none() && !job.steps.is_empty())
        .collect();
    for job in &unfinished {
        ledger.forget_steps(job.id)?;
    }
    if !unfinished.is_empty() {
        tracing::info!(
            jobs = unfinished.len(),
            "sandbox mode: the simulator starts empty, so unfinished uploads start over"
        );
    }
    Ok(())
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
pub(crate) async fn start_sandbox(
    config: &Config,
) -> Result<(SandboxHandle, reqwest::Url), FatalError> {
    let listener = TcpListener::bind(("127.0.0.1", 0))
        .await
        .map_err(FatalError::Sandbox)?;
    let options = SandboxOptions {
        faults: config.platform.sandbox_faults.clone(),
        // TikTok's moderation delays a post's public id by minutes; the agent holds such a
        // video in the inbox and looks the id up at its next scan. Someone trying dropcast
        // out should see the post at once (tests set the delay themselves).
        tiktok: sandbox::TiktokOptions {
            moderation: std::time::Duration::ZERO,
            ..sandbox::TiktokOptions::default()
        },
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ContentHash;
    use crate::ledger::{Claim, NewJob};

    fn job(ledger: &mut Ledger) -> crate::ledger::JobId {
        let new = NewJob {
            sha256: ContentHash::from_digest(&[2; 32]),
            account: "main".into(),
            platform: Platform::DouyinWeb,
            video: "a.mp4".into(),
            caption: None,
            size: 1,
        };
        match ledger.claim(&new, false).unwrap() {
            Claim::New(job) => job.id,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_unfinished_job_with_a_step_its_backend_lacks_is_refused_at_start() {
        let dir = tempfile::tempdir().unwrap();
        let mut ledger = Ledger::open(dir.path()).unwrap();
        let id = job(&mut ledger);
        let known = StepName::of("upload_params");
        ledger
            .record_step(id, &known, &serde_json::json!({}), false)
            .unwrap();
        check_step_names(&ledger).unwrap();
        let foreign = StepName::of("init_upload");
        ledger
            .record_step(id, &foreign, &serde_json::json!({}), false)
            .unwrap();
        let err = check_step_names(&ledger).unwrap_err();
        assert!(
            err.to_string()
                .contains("`init_upload` is not one of douyin-web's steps"),
            "{err}"
        );
    }
}
