//! One Chromium per account's profile, started when a request needs it and closed cleanly
//! (`Browser.close`, never killed, so the profile is written back) after `browser_idle`
//! without use. [`Sessions`] is the registry (account → session) the douyin backend sends
//! its in-page requests through ([`InPage`]); [`Session`] is one open browser, which
//! `login` drives too.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chromiumoxide::browser::BrowserConfig;
use chromiumoxide::cdp::js_protocol::runtime::{CallArgument, CallFunctionOnParams};
use chromiumoxide::error::CdpError;
use chromiumoxide::{Browser, Page};
use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::Value;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::find::{NoBrowser, Search, find_browser};
use super::profile::{ProfileError, ProfileLock, Profiles};
use super::site;
use crate::b64;
use crate::config::Browser as BrowserSetting;
use crate::platform::in_page::{InPage, PageMethod, PageReply, PageRequest};
use crate::platform::{Expired, PublishError};

/// Every command-line flag dropcast gives Chromium, in one place (without the leading
/// `--`). Besides these: `--user-data-dir` (the profile), `--remote-debugging-port=0`,
/// `--disable-extensions`, `--headless` unless shown, and `--no-sandbox` when running as
/// root (Chromium refuses to start as root with its sandbox).
pub const FLAGS: &[&str] = &[
    "disable-gpu",
    "disable-quic",
    "no-first-run",
    "no-default-browser-check",
    "disable-background-networking",
    "disable-component-update",
    "disable-sync",
    "disable-breakpad",
    "disable-dev-shm-usage",
    // The profile's cookies are encrypted with a fixed key rather than the desktop's
    // keyring, which would ask the user for a password from an agent with no one watching.
    "password-store=basic",
    "use-mock-keychain",
];

/// How the sessions of one state folder run.
#[derive(Clone, Debug)]
pub struct SessionSettings {
    /// `platform.browser`.
    pub browser: BrowserSetting,
    /// Where `auto` looks ([`Search::system`] but in tests).
    pub search: Search,
    /// `platform.browser_idle`: close a browser unused this long.
    pub idle: Duration,
    /// `platform.douyin.creator_url`.
    pub creator_url: reqwest::Url,
    /// Profiles live under `state_dir/browser/`.
    pub state_dir: PathBuf,
    /// Show the browser's window (login where there is a screen); `false` for the agent.
    pub show: bool,
    /// How long to wait for a profile another process holds (say, `dropcast login`).
    pub lock_wait: Duration,
    /// Bound on starting the browser, loading a page, and one in-page request.
    pub timeout: Duration,
}

impl SessionSettings {
    /// Headless, on this machine's browser, with the other bounds at their defaults.
    pub fn new(creator_url: reqwest::Url, state_dir: &Path) -> SessionSettings {
        SessionSettings {
            browser: BrowserSetting::Auto,
            search: Search::system(),
            idle: Duration::from_secs(30),
            creator_url,
            state_dir: state_dir.to_path_buf(),
            show: false,
            lock_wait: Duration::from_secs(30),
            timeout: Duration::from_secs(60),
        }
    }

    /// The upload page, which requests are made from.
    pub fn upload_page(&self) -> reqwest::Url {
        join(&self.creator_url, site::UPLOAD_PAGE)
    }
}

/// `base` + `path` (relative), keeping any path prefix of `base`.
pub(crate) fn join(base: &reqwest::Url, path: &str) -> reqwest::Url {
    let mut base = base.clone();
    if !base.path().ends_with('/') {
        let p = format!("{}/", base.path());
        base.set_path(&p);
    }
    base.join(path)
        .expect("a relative path joins any http(s) URL")
}

/// What went wrong with a browser session. Never holds a secret.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error(transparent)]
    NoBrowser(#[from] NoBrowser),
    #[error(transparent)]
    Profile(#[from] ProfileError),
    #[error("cannot start the browser {}: {reason}", browser.display())]
    Launch { browser: PathBuf, reason: String },
    /// The upload page ended on another page: the login page.
    #[error("the creator page asks to log in (it showed {landed})")]
    LoggedOut { landed: String },
    /// A script in the page failed (say, `fetch` could not reach the site).
    #[error("in the page: {0}")]
    InPage(String),
    /// The browser did not do what the DevTools protocol asked.
    #[error("the browser page failed: {0}")]
    Page(String),
    #[error("the browser did not {0} within {1:?}")]
    Timeout(&'static str, Duration),
}

impl SessionError {
    /// The error class the pipeline acts on, for `account`.
    pub fn into_publish(self, account: &str) -> PublishError {
        match self {
            SessionError::LoggedOut { .. } => PublishError::AuthExpired {
                what: Expired::Cookie,
                reason: format!(
                    "{self}; run `dropcast login {account}` to log the account in again"
                ),
            },
            // Nothing to retry until a browser is installed or configured.
            SessionError::NoBrowser(_) => PublishError::Rejected {
                reason: self.to_string(),
            },
            e => PublishError::Transient {
                reason: e.to_string(),
                retry_after: None,
            },
        }
    }

    /// Whether the browser itself may be broken (closed, crashed): start a new one next time.
    fn browser_broken(&self) -> bool {
        matches!(self, SessionError::Page(_) | SessionError::Timeout(..))
    }
}

fn page_error(e: CdpError) -> SessionError {
    match e {
        CdpError::JavascriptException(details) => SessionError::InPage(
            details
                .exception
                .as_ref()
                .and_then(|o| o.description.clone())
                .unwrap_or_else(|| details.text.clone()),
        ),
        e => SessionError::Page(e.to_string()),
    }
}

/// One running Chromium on one account's profile, with its page.
pub struct Session {
    browser: Browser,
    handler: JoinHandle<()>,
    page: Page,
    upload_page: reqwest::Url,
    timeout: Duration,
    _lock: ProfileLock,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("upload_page", &self.upload_page.as_str())
            .finish_non_exhaustive()
    }
}

impl Session {
    /// Takes `account`'s profile (waiting up to `settings.lock_wait` for another holder)
    /// and starts the browser on it, with one blank page. `purpose` names the holder in the
    /// lock file.
    pub async fn open(
        settings: &SessionSettings,
        account: &str,
        purpose: &str,
    ) -> Result<Session, SessionError> {
        let exe = find_browser(&settings.browser, &settings.search)?;
        let lock = Profiles::new(&settings.state_dir)
            .lock(account, purpose, settings.lock_wait)
            .await?;
        super::profile::reclaim(lock.dir()).await;
        let launch_err = |reason: String| SessionError::Launch {
            browser: exe.clone(),
            reason,
        };
        let mut config = BrowserConfig::builder()
            .chrome_executable(&exe)
            .user_data_dir(lock.dir())
            .disable_default_args()
            .args(FLAGS.iter().copied())
            .launch_timeout(settings.timeout)
            .request_timeout(settings.timeout);
        // Headless is the builder's default.
        if settings.show {
            config = config.with_head().viewport(None);
        }
        if running_as_root(lock.dir()) {
            config = config.no_sandbox();
        }
        let config = config.build().map_err(launch_err)?;
        let (mut browser, mut handler) = Browser::launch(config)
            .await
            .map_err(|e| launch_err(e.to_string()))?;
        #[cfg(windows)]
        tie_to_this_process(&mut browser);
        let handler = tokio::spawn(async move { while handler.next().await.is_some() {} });
        let page =
            match tokio::time::timeout(settings.timeout, browser.new_page("about:blank")).await {
                Ok(Ok(page)) => page,
                failed => {
                    let reason = match failed {
                        Ok(Err(e)) => e.to_string(),
                        _ => "no page within the time limit".into(),
                    };
                    close_browser(&mut browser, handler).await;
                    return Err(launch_err(reason));
                }
            };
        tracing::info!(account, "browser started");
        Ok(Session {
            browser,
            handler,
            page,
            upload_page: settings.upload_page(),
            timeout: settings.timeout,
            _lock: lock,
        })
    }

    /// The operating system's id of the browser process.
    pub fn pid(&mut self) -> Option<u32> {
        self.browser
            .get_mut_child()
            .and_then(|c| c.as_mut_inner().id())
    }

    /// Goes to `url` and waits for it to load.
    pub async fn goto(&self, url: &reqwest::Url) -> Result<(), SessionError> {
        self.bounded("load the page", self.page.goto(url.as_str()))
            .await?
            .map_err(page_error)?;
        Ok(())
    }

    /// Loads the upload page afresh and waits until it can sign requests. A page that ends
    /// elsewhere (the login page) is [`SessionError::LoggedOut`].
    pub async fn load_upload_page(&self) -> Result<(), SessionError> {
        self.goto(&self.upload_page).await?;
        let landed = self.current_url().await?;
        let on_upload_page =
            reqwest::Url::parse(&landed).is_ok_and(|u| u.path() == self.upload_page.path());
        if !on_upload_page {
            let landed = reqwest::Url::parse(&landed)
                .map(|u| u.path().to_string())
                .unwrap_or(landed);
            return Err(SessionError::LoggedOut { landed });
        }
        self.call(site::READY_JS, Vec::new()).await?;
        Ok(())
    }

    /// Whether the page shows the upload page now.
    pub(crate) async fn on_upload_page(&self) -> Result<bool, SessionError> {
        let url = self.current_url().await?;
        Ok(reqwest::Url::parse(&url).is_ok_and(|u| u.path() == self.upload_page.path()))
    }

    async fn current_url(&self) -> Result<String, SessionError> {
        Ok(self
            .bounded("tell its address", self.page.url())
            .await?
            .map_err(page_error)?
            .unwrap_or_default())
    }

    /// `fetch` evaluated in the page (see [`site::FETCH_JS`]).
    pub async fn fetch(&self, request: &PageRequest) -> Result<PageReply, SessionError> {
        #[derive(Deserialize)]
        struct Raw {
            status: u16,
            headers: Vec<(String, String)>,
            body: String,
        }
        let method = match request.method {
            PageMethod::Get => "GET",
            PageMethod::Post => "POST",
        };
        let headers: Vec<Value> = request
            .headers
            .iter()
            .map(|(n, v)| Value::from(vec![n.as_str(), v.as_str()]))
            .collect();
        let value = self
            .call(
                site::FETCH_JS,
                vec![
                    Value::from(request.url.as_str()),
                    Value::from(method),
                    Value::from(headers),
                    request.body.as_deref().map_or(Value::Null, Value::from),
                ],
            )
            .await?;
        let raw: Raw = serde_json::from_value(value)
            .map_err(|e| SessionError::Page(format!("the page's fetch answered oddly: {e}")))?;
        let body = b64::decode(&raw.body)
            .ok_or_else(|| SessionError::Page("the page's fetch body is not base64".into()))?;
        Ok(PageReply {
            status: raw.status,
            headers: raw.headers,
            body,
        })
    }

    /// Calls the JavaScript function `js` in the page with `args` (passed as values) and
    /// returns what it returns (awaited if a promise).
    pub(crate) async fn call(&self, js: &str, args: Vec<Value>) -> Result<Value, SessionError> {
        let params = CallFunctionOnParams::builder()
            .function_declaration(js)
            .arguments(
                args.into_iter()
                    .map(|v| CallArgument::builder().value(v).build()),
            )
            .build()
            .map_err(SessionError::Page)?;
        let result = self
            .bounded("answer", self.page.evaluate_function(params))
            .await?
            .map_err(page_error)?;
        Ok(result.value().cloned().unwrap_or(Value::Null))
    }

    /// Types `text` into the element `selector` names, as keystrokes.
    pub(crate) async fn type_into(&self, selector: &str, text: &str) -> Result<(), SessionError> {
        let typing = async {
            let el = self.page.find_element(selector).await?;
            el.click().await?;
            el.type_str(text).await?;
            Ok::<_, CdpError>(())
        };
        self.bounded("type", typing).await?.map_err(page_error)
    }

    async fn bounded<T>(
        &self,
        what: &'static str,
        fut: impl Future<Output = T>,
    ) -> Result<T, SessionError> {
        tokio::time::timeout(self.timeout, fut)
            .await
            .map_err(|_| SessionError::Timeout(what, self.timeout))
    }

    /// Closes the browser through the protocol (`Browser.close`), so that it writes the
    /// profile back, and waits for it to end; then lets the profile go.
    pub async fn close(mut self) {
        close_browser(&mut self.browser, self.handler).await;
        tracing::info!("browser closed");
    }
}

/// How long a closing browser has to write its profile and end.
const CLOSE_WAIT: Duration = Duration::from_secs(60);
/// How long the close command may go unanswered (a browser that died mid-session never
/// answers it).
const CLOSE_COMMAND_WAIT: Duration = Duration::from_secs(10);

async fn close_browser(browser: &mut Browser, handler: JoinHandle<()>) {
    match tokio::time::timeout(CLOSE_COMMAND_WAIT, browser.close()).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => tracing::warn!(error = %e, "the browser did not take the close command"),
        Err(_) => tracing::warn!(
            "the browser did not answer the close command within {CLOSE_COMMAND_WAIT:?}"
        ),
    }
    if tokio::time::timeout(CLOSE_WAIT, browser.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            "the browser did not end within {CLOSE_WAIT:?} of being asked to close; stopping it"
        );
        let _ = browser.kill().await;
        let _ = tokio::time::timeout(Duration::from_secs(5), browser.wait()).await;
    }
    if tokio::time::timeout(Duration::from_secs(5), handler)
        .await
        .is_err()
    {
        tracing::debug!("the browser's protocol handler outlived the browser");
    }
}

/// Windows: the browser ends when dropcast does, however dropcast ends, so a crash leaves
/// no browser holding the profile (Linux reclaims one at the next start instead).
#[cfg(windows)]
fn tie_to_this_process(browser: &mut Browser) {
    let Some(handle) = browser
        .get_mut_child()
        .and_then(|child| child.as_mut_inner().raw_handle())
    else {
        return;
    };
    if let Err(e) = crate::win::end_with_this_process(handle) {
        tracing::debug!(error = %e, "the browser is not tied to dropcast; a crash may leave it running");
    }
}

/// Whether this process runs as root: the folder it just made is root's.
fn running_as_root(made: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(made).is_ok_and(|m| m.uid() == 0)
    }
    #[cfg(not(unix))]
    {
        let _ = made;
        false
    }
}

/// The sessions of every account (account → session), the douyin backend's [`InPage`].
/// Cheap to clone; clones share the sessions.
#[derive(Clone)]
pub struct Sessions {
    inner: Arc<Inner>,
}

struct Inner {
    settings: SessionSettings,
    /// Each account's slot, and a receiver of its open/closed state that anyone can clone
    /// without waiting for the slot.
    slots: Mutex<HashMap<String, Entry>>,
}

/// An account's slot and a receiver of its open/closed state.
type Entry = (Arc<tokio::sync::Mutex<Slot>>, watch::Receiver<bool>);

/// One account's browser, if open.
struct Slot {
    open: Option<Session>,
    /// Whether the page shows a freshly loaded upload page.
    loaded: bool,
    last_used: Instant,
    /// Which opening `open` is (an idle watcher only closes its own).
    opening: u64,
    /// `true` while a browser is open.
    state: watch::Sender<bool>,
}

impl Sessions {
    pub fn new(settings: SessionSettings) -> Sessions {
        Sessions {
            inner: Arc::new(Inner {
                settings,
                slots: Mutex::new(HashMap::new()),
            }),
        }
    }

    pub fn settings(&self) -> &SessionSettings {
        &self.inner.settings
    }

    fn slot(&self, account: &str) -> Arc<tokio::sync::Mutex<Slot>> {
        self.entry(account).0
    }

    fn entry(&self, account: &str) -> Entry {
        let mut slots = self.inner.slots.lock().expect("slots lock");
        slots
            .entry(account.to_string())
            .or_insert_with(|| {
                let (state, rx) = watch::channel(false);
                let slot = Slot {
                    open: None,
                    loaded: false,
                    last_used: Instant::now(),
                    opening: 0,
                    state,
                };
                (Arc::new(tokio::sync::Mutex::new(slot)), rx)
            })
            .clone()
    }

    /// Follows whether `account`'s browser is open (`true`) or closed.
    pub fn watch_open(&self, account: &str) -> watch::Receiver<bool> {
        self.entry(account).1
    }

    /// The browser process of `account`, while open.
    pub async fn browser_pid(&self, account: &str) -> Option<u32> {
        let slot = self.slot(account);
        let mut s = slot.lock().await;
        s.open.as_mut().and_then(Session::pid)
    }

    /// Runs `op` on `account`'s session, opening the browser (and loading the upload page
    /// when `op` needs it and it is not loaded) first. A failure that may mean a broken
    /// browser closes it, so that the next call starts a new one.
    async fn with_session<T>(
        &self,
        account: &str,
        fresh_page: bool,
        op: impl AsyncFnOnce(&Session) -> Result<T, SessionError>,
    ) -> Result<T, SessionError> {
        let slot = self.slot(account);
        let mut s = slot.lock().await;
        if s.open.is_none() {
            let session = Session::open(&self.inner.settings, account, "dropcast agent").await?;
            s.open = Some(session);
            s.loaded = false;
            s.last_used = Instant::now();
            s.opening += 1;
            s.state.send_replace(true);
            self.watch_idle(account, slot.clone(), s.opening);
        }
        let mut loaded = s.loaded && !fresh_page;
        s.loaded = false;
        let session = s.open.as_ref().expect("opened above");
        let mut result = Ok(());
        if !loaded {
            result = session.load_upload_page().await;
            loaded = result.is_ok();
        }
        let result = match result {
            Ok(()) => op(session).await,
            Err(e) => Err(e),
        };
        s.loaded = loaded;
        s.last_used = Instant::now();
        if let Err(e) = &result
            && e.browser_broken()
        {
            tracing::warn!(account, error = %e, "closing the browser after a failure");
            if let Some(session) = s.open.take() {
                session.close().await;
            }
            s.state.send_replace(false);
        }
        result
    }

    /// Closes the browser of `slot` once it has been unused for `settings.idle`.
    fn watch_idle(&self, account: &str, slot: Arc<tokio::sync::Mutex<Slot>>, opening: u64) {
        let idle = self.inner.settings.idle;
        let account = account.to_string();
        tokio::spawn(async move {
            loop {
                let due = {
                    let s = slot.lock().await;
                    if s.opening != opening || s.open.is_none() {
                        return;
                    }
                    s.last_used + idle
                };
                tokio::time::sleep_until(due).await;
                let mut s = slot.lock().await;
                if s.opening != opening || s.open.is_none() {
                    return;
                }
                if s.last_used + idle <= Instant::now() {
                    tracing::info!(account, "closing the browser after {idle:?} unused");
                    if let Some(session) = s.open.take() {
                        session.close().await;
                    }
                    s.state.send_replace(false);
                    return;
                }
            }
        });
    }

    /// Closes every open browser cleanly (at shutdown).
    pub async fn close_all(&self) {
        let slots: Vec<_> = self
            .inner
            .slots
            .lock()
            .expect("slots lock")
            .values()
            .map(|(slot, _)| slot.clone())
            .collect();
        for slot in slots {
            let mut s = slot.lock().await;
            if let Some(session) = s.open.take() {
                session.close().await;
                s.state.send_replace(false);
            }
        }
    }

    /// Loads the upload page of `account` afresh (starting its browser if needed).
    /// Closes `account`'s browser now (cleanly) if it is open: nothing will be asked of its
    /// page for a while (a long upload goes straight to the upload hosts).
    pub async fn release(&self, account: &str) {
        let slot = self.slot(account);
        let mut s = slot.lock().await;
        if let Some(session) = s.open.take() {
            session.close().await;
            s.state.send_replace(false);
        }
        s.loaded = false;
    }

    /// Closes the browsers that dropcasts which stopped abruptly left on these accounts'
    /// profiles (see [`super::profile::reclaim`]); a profile another process holds now is
    /// left alone.
    pub async fn reclaim_orphans(&self, accounts: &[&str]) {
        let profiles = Profiles::new(&self.inner.settings.state_dir);
        for account in accounts {
            if let Ok(lock) = profiles.lock(account, "reclaim", Duration::ZERO).await {
                super::profile::reclaim(lock.dir()).await;
            }
        }
    }

    pub async fn reload_page(&self, account: &str) -> Result<(), SessionError> {
        self.with_session(account, true, async |_| Ok(())).await
    }

    /// Sends `request` from `account`'s upload page.
    pub async fn fetch_in_page(
        &self,
        account: &str,
        request: &PageRequest,
    ) -> Result<PageReply, SessionError> {
        self.with_session(account, false, async |s| s.fetch(request).await)
            .await
    }
}

/// What [`InPage`]'s methods return.
type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

impl InPage for Sessions {
    fn reload<'a>(&'a self, account: &'a str) -> BoxFuture<'a, Result<(), PublishError>> {
        Box::pin(async move {
            self.reload_page(account)
                .await
                .map_err(|e| e.into_publish(account))
        })
    }

    fn fetch<'a>(
        &'a self,
        account: &'a str,
        request: PageRequest,
    ) -> BoxFuture<'a, Result<PageReply, PublishError>> {
        Box::pin(async move {
            self.fetch_in_page(account, &request)
                .await
                .map_err(|e| e.into_publish(account))
        })
    }

    fn close_all(&self) -> BoxFuture<'_, ()> {
        Box::pin(Sessions::close_all(self))
    }

    fn release<'a>(&'a self, account: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(Sessions::release(self, account))
    }
}
