//! The `tiktok` backend: TikTok's official Content Posting API as written in
//! docs/tiktok.md. `wire` holds every name, number and (ours) point of the page;
//! `pkce`, `oauth`, `tokens` and `session` are the authorization (§1) and the tokens on
//! disk; `client` the requests (§2–§6), `limits` the per-minute limits (§7), `upload` the
//! chunks (§5), `backend` the steps and the fence (§8); `login` is `dropcast login`.

mod backend;
mod client;
#[cfg(test)]
mod fake;
mod limits;
pub(crate) mod login;
mod oauth;
mod pkce;
mod session;
mod tokens;
mod upload;
pub(crate) mod wire;

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

pub(crate) use backend::{AccountSettings, STEPS, TiktokBackend};
pub(crate) use oauth::App;
pub(crate) use wire::MEDIA_LIMITS;

use super::{RetryPolicy, SettingsError};

/// Where the API is and how patient to be with it.
#[derive(Clone, Debug)]
pub(crate) struct TiktokSettings {
    pub api_url: reqwest::Url,
    pub auth_url: reqwest::Url,
    pub timeout: Duration,
    pub retry: RetryPolicy,
}

/// The HTTP client every TikTok request uses (no redirects followed: an answer is read
/// where it was asked).
fn http(timeout: Duration) -> Result<reqwest::Client, SettingsError> {
    reqwest::Client::builder()
        .connect_timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(SettingsError::Http)
}

impl TiktokBackend {
    /// The backend for `accounts`, keeping tokens under `state_dir`.
    pub(crate) fn new(
        settings: &TiktokSettings,
        state_dir: &Path,
        accounts: HashMap<String, AccountSettings>,
    ) -> Result<TiktokBackend, SettingsError> {
        let http = http(settings.timeout)?;
        Ok(TiktokBackend {
            api: client::Api {
                http: http.clone(),
                api_url: settings.api_url.clone(),
                limits: limits::Limits::default(),
            },
            sessions: session::Sessions::new(
                tokens::TokenStore::new(state_dir),
                http,
                settings.api_url.clone(),
            ),
            accounts,
            retry: settings.retry,
            timeout: settings.timeout,
        })
    }
}

/// The file holding `account`'s tokens: a running agent resumes a paused account when
/// `dropcast login` rewrites it.
pub(crate) fn token_file(state_dir: &Path, account: &str) -> std::path::PathBuf {
    tokens::TokenStore::new(state_dir).path(account)
}

/// When `account`'s refresh token ends (unix seconds), read from its token file; `None`
/// without a readable file. For `session_expiring` notifications (`notify::expiring`).
pub(crate) fn refresh_token_end(state_dir: &std::path::Path, account: &str) -> Option<u64> {
    tokens::TokenStore::new(state_dir)
        .load(account)
        .ok()
        .map(|t| t.refresh_expires_at)
}
