//! `dropcast login ACCOUNT` for a `tiktok` account (§1): the authorize address printed on
//! a line of its own (and opened in a browser where there is a display), the one redirect
//! to the loopback listener awaited, its `state` checked, the code exchanged with the PKCE
//! verifier, the tokens saved, and the creator's nickname fetched to say who logged in.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use super::oauth::{self, App, Callback, LoginError, TokenEndpoint};
use super::pkce::Pkce;
use super::tokens::TokenStore;
use super::{TiktokSettings, client, limits};
use crate::platform::PublishError;

/// One login.
pub(crate) struct LoginOptions {
    pub settings: TiktokSettings,
    pub state_dir: PathBuf,
    pub account: String,
    pub app: App,
    /// The loopback port of the redirect; 0: any free port.
    pub port: u16,
    /// How long to wait for the user.
    pub timeout: Duration,
    /// Try to open the address in a browser.
    pub open_browser: bool,
    /// Sandbox mode: dropcast approves at the simulator itself.
    pub sandbox: bool,
}

/// Runs the login; returns who logged in (nickname and @username).
pub(crate) async fn run(
    options: &LoginOptions,
    out: &mut impl Write,
) -> Result<String, LoginError> {
    let callback = Callback::bind(options.port).await?;
    let pkce = Pkce::new().map_err(|e| LoginError::Denied(format!("no randomness: {e}")))?;
    let url = oauth::authorize_url(
        &options.settings.auth_url,
        &options.app,
        &callback.redirect_uri,
        &pkce,
    )
    .map_err(LoginError::Denied)?;
    let _ = writeln!(
        out,
        "To let dropcast post for TikTok account `{}`, open this address and approve:",
        options.account
    );
    let _ = writeln!(out, "{url}");
    let _ = out.flush();
    let redirect_uri = callback.redirect_uri.clone();
    let waiting = callback.code(&pkce.state, options.timeout);
    let follower = if options.sandbox {
        Some(tokio::spawn(sandbox_approve(url.clone())))
    } else {
        if options.open_browser {
            open_browser(url.as_str());
        }
        None
    };
    let code = waiting.await;
    if let Some(f) = follower {
        f.abort();
    }
    let code = code?;
    let http =
        super::http(options.settings.timeout).map_err(|e| LoginError::Denied(e.to_string()))?;
    let endpoint = TokenEndpoint {
        http: http.clone(),
        api_url: options.settings.api_url.clone(),
        app: options.app.clone(),
    };
    let mut tokens = endpoint
        .exchange(&code, &redirect_uri, &pkce.verifier)
        .await
        .map_err(LoginError::Token)?;
    let store = TokenStore::new(&options.state_dir);
    store
        .save(&options.account, &tokens)
        .map_err(|e| LoginError::Token(saving(e)))?;
    let api = client::Api {
        http,
        api_url: options.settings.api_url.clone(),
        limits: limits::Limits::default(),
    };
    let info = api
        .creator_info(&options.account, &tokens.access)
        .await
        .map_err(LoginError::Token)?;
    tokens.nickname = Some(info.creator_nickname.clone());
    tokens.username = Some(info.creator_username.clone());
    store
        .save(&options.account, &tokens)
        .map_err(|e| LoginError::Token(saving(e)))?;
    Ok(format!(
        "{} (@{})",
        info.creator_nickname, info.creator_username
    ))
}

fn saving(e: super::tokens::TokenError) -> PublishError {
    PublishError::Transient {
        reason: e.to_string(),
        retry_after: None,
    }
}

/// Opens `url` in the desktop's browser, if there is one; failing is fine (the address is
/// printed).
fn open_browser(url: &str) {
    let command = if cfg!(target_os = "macos") {
        ("open", vec![url])
    } else if cfg!(windows) {
        ("cmd", vec!["/C", "start", "", url])
    } else {
        if std::env::var_os("DISPLAY").is_none() && std::env::var_os("WAYLAND_DISPLAY").is_none() {
            return;
        }
        ("xdg-open", vec![url])
    };
    let _ = std::process::Command::new(command.0)
        .args(command.1)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
}

/// Sandbox mode: approves the authorization at the simulator, as the user would in a
/// browser: the authorize address with `sandbox_approve=1` (the simulator's first creator)
/// answers the redirect at once, which is followed to our listener (docs/tiktok.md
/// "Approving without a browser").
async fn sandbox_approve(mut url: reqwest::Url) {
    url.query_pairs_mut().append_pair("sandbox_approve", "1");
    let Ok(http) = reqwest::Client::builder().build() else {
        return;
    };
    let _ = http.get(url).send().await;
}
