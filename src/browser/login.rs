//! `dropcast login ACCOUNT` (docs/douyin-creator.md §0): opens the creator page in the
//! account's profile, shows the login page's QR code in the terminal and as a PNG file,
//! renews an expired code, asks for an SMS code when the site wants one, and succeeds once
//! `upload/auth/v5` fetched from the upload page answers `status_code` 0. Also
//! [`whoami`] and [`check_session`], for `dropcast accounts` and `check`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use qrcode::render::unicode::Dense1x2;
use serde_json::Value;
use tokio::io::{AsyncBufRead, AsyncBufReadExt};
use tokio::time::Instant;

use super::profile::ProfileError;
use super::session::{Session, SessionError, SessionSettings, join};
use super::site;
use crate::b64;
use crate::platform::in_page::{InPage, PageMethod, PageReply, PageRequest};
use crate::platform::{Expired, PublishError};

/// What `login` needs.
#[derive(Clone, Debug)]
pub struct LoginOptions {
    /// The browser and creator site; `show` opens a window ([`display_available`] and not
    /// `--headless`).
    pub settings: SessionSettings,
    pub account: String,
    /// Where the QR code is saved as a PNG (dropcast's own file; replaced by each new code).
    pub qr_png: PathBuf,
    /// Give up after this long (`login` then exits 1).
    pub timeout: Duration,
    /// How often the page is looked at.
    pub poll: Duration,
}

impl LoginOptions {
    /// Five minutes to log in, looking twice a second; the QR code in
    /// `state_dir/browser/<account>.login-qr.png`. Waits for an agent to release the profile for at least its idle time and a minute.
    pub fn new(mut settings: SessionSettings, account: &str) -> LoginOptions {
        settings.lock_wait = settings
            .lock_wait
            .max(settings.idle + Duration::from_secs(60));
        let qr_png = super::Profiles::new(&settings.state_dir).login_qr(account);
        LoginOptions {
            settings,
            account: account.to_string(),
            qr_png,
            timeout: Duration::from_secs(300),
            poll: Duration::from_millis(500),
        }
    }
}

/// How a login ended well.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LoginOutcome {
    /// The profile's session already worked.
    AlreadyLoggedIn,
    /// The user logged in now.
    LoggedIn,
}

#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error(transparent)]
    Session(#[from] SessionError),
    #[error("not logged in after {}: run `dropcast login` again to get a new code", humantime::format_duration(*.0))]
    Timeout(Duration),
    #[error("the site asked for an SMS code and none was typed (the terminal's input ended)")]
    NoSmsCode,
    #[error("cannot save the QR code to {}: {source}", path.display())]
    SaveQr {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write to the terminal: {0}")]
    Terminal(#[from] std::io::Error),
}

/// Whether a browser window can be shown here (a display on Linux and the BSDs; always
/// on macOS and Windows).
pub fn display_available() -> bool {
    if cfg!(any(target_os = "macos", windows)) {
        return true;
    }
    ["DISPLAY", "WAYLAND_DISPLAY"]
        .iter()
        .any(|v| std::env::var_os(v).is_some_and(|s| !s.is_empty()))
}

/// What the login page shows at one look.
#[derive(Debug, Default, serde::Deserialize)]
struct Look {
    path: String,
    qr: Option<String>,
    refresh: bool,
    sms: bool,
}

/// Logs `options.account` in, writing what the user must do to `out` and reading an SMS
/// code from `sms` when the site asks for one. The browser is closed cleanly before this
/// returns, so the profile keeps the session.
pub async fn run<R>(
    options: &LoginOptions,
    out: &mut (dyn Write + Send),
    sms: &mut R,
) -> Result<LoginOutcome, LoginError>
where
    R: AsyncBufRead + Unpin + Send,
{
    let session = open(options, out).await?;
    let result = drive(&session, options, out, sms).await;
    session.close().await;
    finish(options, &result);
    result
}

/// After a login: the QR code is gone (the dashboard shows it only while a login waits
/// for it), and a session that works is stamped so that a running agent tries the paused
/// account again within seconds instead of at its next periodic re-check.
fn finish(options: &LoginOptions, result: &Result<LoginOutcome, LoginError>) {
    if let Err(e) = std::fs::remove_file(&options.qr_png)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(path = %options.qr_png.display(), error = %e, "cannot remove the old QR code");
    }
    if result.is_ok() {
        let stamp = super::Profiles::new(&options.settings.state_dir).login_stamp(&options.account);
        let now = humantime::format_rfc3339_seconds(std::time::SystemTime::now());
        if let Err(e) = std::fs::write(&stamp, format!("{now}\n")) {
            // The agent still notices within its periodic re-check (a minute).
            tracing::warn!(path = %stamp.display(), error = %e, "cannot stamp the renewed login");
        }
    }
}

/// Opens the account's profile; while another holder (an agent's browser) has it, says so
/// and waits for it, up to `settings.lock_wait`.
async fn open(options: &LoginOptions, out: &mut (dyn Write + Send)) -> Result<Session, LoginError> {
    const PURPOSE: &str = "dropcast login";
    let mut at_once = options.settings.clone();
    at_once.lock_wait = Duration::ZERO;
    match Session::open(&at_once, &options.account, PURPOSE).await {
        Err(SessionError::Profile(ProfileError::Busy(busy))) => {
            writeln!(
                out,
                "{busy}; waiting up to {} for it to close its browser (an agent closes it after {} unused).",
                humantime::format_duration(options.settings.lock_wait),
                humantime::format_duration(options.settings.idle),
            )?;
            Ok(Session::open(&options.settings, &options.account, PURPOSE).await?)
        }
        opened => Ok(opened?),
    }
}

async fn drive<R>(
    session: &Session,
    options: &LoginOptions,
    out: &mut (dyn Write + Send),
    sms: &mut R,
) -> Result<LoginOutcome, LoginError>
where
    R: AsyncBufRead + Unpin + Send,
{
    let deadline = Instant::now() + options.timeout;
    let auth_url = join(&options.settings.creator_url, site::AUTH_PATH);
    match session.load_upload_page().await {
        Ok(()) if logged_in(session, &auth_url).await => return Ok(LoginOutcome::AlreadyLoggedIn),
        Ok(()) | Err(SessionError::LoggedOut { .. }) => {}
        Err(e) => return Err(e.into()),
    }
    let mut shown_qr: Option<String> = None;
    let mut sms_sent: Option<Instant> = None;
    let mut announced = false;
    let mut upload_page_misses = 0u32;
    loop {
        if Instant::now() >= deadline {
            return Err(LoginError::Timeout(options.timeout));
        }
        // A look can fail while the page navigates; the next one sees the new page.
        if let Ok(true) = session.on_upload_page().await {
            if session.call(site::READY_JS, Vec::new()).await.is_ok()
                && logged_in(session, &auth_url).await
            {
                writeln!(out, "Logged in: account `{}`.", options.account)?;
                return Ok(LoginOutcome::LoggedIn);
            }
            // The upload page without a session: load it again, to be sent to the login.
            upload_page_misses += 1;
            if upload_page_misses.is_multiple_of(3) {
                match session.load_upload_page().await {
                    Ok(()) | Err(SessionError::LoggedOut { .. }) => {}
                    Err(e) => return Err(e.into()),
                }
            }
        } else if let Some(look) = look(session).await {
            if !announced {
                writeln!(
                    out,
                    "Account `{}` is not logged in (the creator site shows {}).",
                    options.account, look.path
                )?;
                if options.settings.show {
                    writeln!(out, "Log in in the browser window, or scan the code below.")?;
                }
                announced = true;
            }
            if look.sms {
                let asked_long_ago = sms_sent.is_none_or(|t| t.elapsed() > Duration::from_secs(10));
                if asked_long_ago {
                    if sms_sent.is_some() {
                        writeln!(out, "The SMS code was not taken; type it again.")?;
                    }
                    let code = ask_sms_code(out, sms).await?;
                    session.type_into(site::SMS_INPUT, &code).await?;
                    session
                        .call(site::CLICK_JS, vec![Value::from(site::SMS_SUBMIT)])
                        .await?;
                    sms_sent = Some(Instant::now());
                }
            } else if look.refresh {
                writeln!(out, "The QR code expired; asking the site for a new one.")?;
                shown_qr = None;
                // The page may navigate before it answers.
                let _ = session
                    .call(site::CLICK_JS, vec![Value::from(site::QR_REFRESH)])
                    .await;
            } else if let Some(src) = look.qr
                && shown_qr.as_deref() != Some(src.as_str())
            {
                show_qr(&src, &options.qr_png, out)?;
                shown_qr = Some(src);
            }
        }
        tokio::time::sleep(options.poll.min(deadline - Instant::now())).await;
    }
}

async fn look(session: &Session) -> Option<Look> {
    let args = [site::QR_IMAGE, site::QR_REFRESH, site::SMS_INPUT].map(Value::from);
    let value = session
        .call(site::LOGIN_LOOK_JS, args.to_vec())
        .await
        .ok()?;
    serde_json::from_value(value).ok()
}

/// Whether `upload/auth/v5`, fetched from the page, answers `status_code` 0.
async fn logged_in(session: &Session, auth_url: &reqwest::Url) -> bool {
    match session.fetch(&get(auth_url)).await {
        Ok(reply) => status_code(&reply) == Some(0),
        Err(_) => false,
    }
}

fn get(url: &reqwest::Url) -> PageRequest {
    PageRequest {
        method: PageMethod::Get,
        url: url.clone(),
        headers: Vec::new(),
        body: None,
    }
}

/// `status_code` of a 200 JSON reply.
fn status_code(reply: &PageReply) -> Option<i64> {
    if reply.status != 200 {
        return None;
    }
    let v: Value = serde_json::from_slice(&reply.body).ok()?;
    v.get("status_code")?.as_i64()
}

async fn ask_sms_code<R>(out: &mut (dyn Write + Send), input: &mut R) -> Result<String, LoginError>
where
    R: AsyncBufRead + Unpin + Send,
{
    loop {
        write!(
            out,
            "The site sent an SMS code to the account's phone. Type it and press Enter: "
        )?;
        out.flush()?;
        let mut line = String::new();
        if input.read_line(&mut line).await? == 0 {
            return Err(LoginError::NoSmsCode);
        }
        let code = line.trim();
        if !code.is_empty() {
            return Ok(code.to_string());
        }
    }
}

/// Saves the login page's QR code (`src`, a `data:image/png;base64,…`) to `png`, and draws
/// it in the terminal on lines of its own.
fn show_qr(src: &str, png: &Path, out: &mut (dyn Write + Send)) -> Result<(), LoginError> {
    let Some(bytes) = src
        .strip_prefix("data:image/png;base64,")
        .and_then(b64::decode)
    else {
        writeln!(
            out,
            "The login page shows a QR code dropcast cannot read; scan it in the browser window \
             (`dropcast login` without --headless where there is a screen)."
        )?;
        return Ok(());
    };
    save(png, &bytes).map_err(|source| LoginError::SaveQr {
        path: png.to_path_buf(),
        source,
    })?;
    match terminal_qr(&bytes) {
        Some(drawn) => writeln!(out, "\n{drawn}")?,
        None => writeln!(out, "(The QR code could not be drawn here; open the PNG.)")?,
    }
    writeln!(
        out,
        "Scan the QR code with the Douyin app to log in (it is also saved as {}).",
        png.display()
    )?;
    Ok(())
}

/// Writes `bytes` to `path` whole (a temporary file renamed over it), readable by the user
/// alone.
fn save(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// The text of the QR code in a PNG image, if one can be read.
pub fn qr_text(png: &[u8]) -> Option<String> {
    let img = image::load_from_memory_with_format(png, image::ImageFormat::Png).ok()?;
    let mut prepared = rqrr::PreparedImage::prepare(img.to_luma8());
    let grids = prepared.detect_grids();
    let (_, text) = grids.first()?.decode().ok()?;
    Some(text)
}

/// The QR code in `png` decoded and drawn again with unicode half blocks (light modules
/// drawn, for terminals with a dark background), or `None` if it cannot be decoded.
fn terminal_qr(png: &[u8]) -> Option<String> {
    let text = qr_text(png)?;
    let code = qrcode::QrCode::new(text.as_bytes()).ok()?;
    Some(
        code.render::<Dense1x2>()
            .dark_color(Dense1x2::Light)
            .light_color(Dense1x2::Dark)
            .quiet_zone(true)
            .build(),
    )
}

/// Who an account is, by the site's user info.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    pub uid: String,
    pub nickname: Option<String>,
}

impl std::fmt::Display for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.nickname {
            Some(n) => write!(f, "{n} (uid {})", self.uid),
            None => write!(f, "uid {}", self.uid),
        }
    }
}

/// Who `account` is logged in as: the user info request, from its page.
pub async fn whoami(
    pages: &dyn InPage,
    account: &str,
    creator_url: &reqwest::Url,
) -> Result<Identity, PublishError> {
    let reply = pages
        .fetch(account, get(&join(creator_url, site::USER_INFO_PATH)))
        .await?;
    let v = json_reply(&reply, account, "user info")?;
    let user = v.get("user");
    let text = |key: &str| match user.and_then(|u| u.get(key)) {
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    };
    match text("uid") {
        Some(uid) => Ok(Identity {
            uid,
            nickname: text("nickname"),
        }),
        None => Err(PublishError::Rejected {
            reason: "the user info answer has no uid".into(),
        }),
    }
}

/// Whether `account`'s session works: `upload/auth/v5` from its page answers
/// `status_code` 0 (one harmless request).
pub async fn check_session(
    pages: &dyn InPage,
    account: &str,
    creator_url: &reqwest::Url,
) -> Result<(), PublishError> {
    let reply = pages
        .fetch(account, get(&join(creator_url, site::AUTH_PATH)))
        .await?;
    json_reply(&reply, account, "upload/auth/v5").map(|_| ())
}

/// A 200 JSON reply with `status_code` 0, else the error class it means.
fn json_reply(reply: &PageReply, account: &str, what: &str) -> Result<Value, PublishError> {
    if reply.status >= 500 {
        return Err(PublishError::Transient {
            reason: format!("{what} answered HTTP {}", reply.status),
            retry_after: None,
        });
    }
    let expired = || PublishError::AuthExpired {
        what: Expired::Cookie,
        reason: format!("{what} says the account is not logged in; run `dropcast login {account}`"),
    };
    if reply.status != 200 {
        return Err(if reply.status == 403 {
            expired()
        } else {
            PublishError::Rejected {
                reason: format!("{what} answered HTTP {}", reply.status),
            }
        });
    }
    let v: Value = serde_json::from_slice(&reply.body).map_err(|_| PublishError::Rejected {
        reason: format!("{what} did not answer JSON"),
    })?;
    match v.get("status_code").and_then(Value::as_i64) {
        Some(0) => Ok(v),
        Some(site::NOT_LOGGED_IN) => Err(expired()),
        code => Err(PublishError::Rejected {
            reason: format!(
                "{what} answered status_code {}",
                code.map_or("(none)".to_string(), |c| c.to_string())
            ),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_sort_into_error_classes() {
        let reply = |status: u16, body: &str| PageReply {
            status,
            headers: Vec::new(),
            body: body.as_bytes().to_vec(),
        };
        assert!(json_reply(&reply(200, r#"{"status_code":0}"#), "a", "x").is_ok());
        assert_eq!(
            json_reply(&reply(200, r#"{"status_code":8}"#), "main", "x").unwrap_err(),
            PublishError::AuthExpired {
                what: Expired::Cookie,
                reason: "x says the account is not logged in; run `dropcast login main`".into()
            }
        );
        assert_eq!(
            json_reply(&reply(502, ""), "a", "x").unwrap_err().class(),
            "transient"
        );
        assert_eq!(
            json_reply(&reply(200, r#"{"status_code":5}"#), "a", "x")
                .unwrap_err()
                .class(),
            "rejected"
        );
    }
}
