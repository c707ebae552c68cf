//! Each TikTok account's access token when a request needs one: read from the token file,
//! refreshed before it expires (one refresh at a time per account), and — because refresh
//! tokens rotate (§1.5) — **the new tokens saved durably before the new access token is
//! handed to anyone**. A refused refresh is `AuthExpired`: the account pauses until
//! `dropcast login` authorizes again.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use super::oauth::{App, TokenEndpoint};
use super::tokens::{TokenError, TokenStore, Tokens};
use super::wire;
use crate::platform::{Expired, PublishError};
use crate::secret::Secret;

/// The token files and the token endpoint.
pub(crate) struct Sessions {
    pub store: TokenStore,
    http: reqwest::Client,
    api_url: reqwest::Url,
    /// One refresh at a time per account (two with the same refresh token would leave
    /// the second refused and the account paused).
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl Sessions {
    pub(crate) fn new(store: TokenStore, http: reqwest::Client, api_url: reqwest::Url) -> Self {
        Sessions {
            store,
            http,
            api_url,
            locks: Mutex::new(HashMap::new()),
        }
    }

    fn lock_of(&self, account: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.locks.lock().unwrap_or_else(|e| e.into_inner());
        locks.entry(account.to_owned()).or_default().clone()
    }

    /// `account`'s tokens as stored (for names and the open_id).
    pub(crate) fn stored(&self, account: &str) -> Result<Tokens, PublishError> {
        self.store
            .load(account)
            .map_err(|e| token_error(account, e))
    }

    /// An access token for `account` that is not about to expire. `stale`: a token the
    /// API just refused; if it is still the stored one, it is refreshed now.
    pub(crate) async fn access(
        &self,
        account: &str,
        app: &App,
        stale: Option<&Secret>,
    ) -> Result<Secret, PublishError> {
        let lock = self.lock_of(account);
        let _held = lock.lock().await;
        let tokens = self.stored(account)?;
        let refused = stale.is_some_and(|s| s == &tokens.access);
        if !refused && tokens.access_fresh(SystemTime::now(), wire::REFRESH_MARGIN) {
            return Ok(tokens.access);
        }
        if tokens.refresh_expired(SystemTime::now()) {
            return Err(login_needed(account, "the refresh token has expired"));
        }
        let endpoint = TokenEndpoint {
            http: self.http.clone(),
            api_url: self.api_url.clone(),
            app: app.clone(),
        };
        let fresh = endpoint.refresh(&tokens).await?;
        // Saved before use: a crash from here on keeps the rotated refresh token.
        self.store
            .save(account, &fresh)
            .map_err(|e| PublishError::Transient {
                reason: format!("the refreshed TikTok tokens could not be saved: {e}"),
                retry_after: None,
            })?;
        tracing::info!(
            account,
            "TikTok access token refreshed; the new tokens are saved"
        );
        Ok(fresh.access)
    }

    /// Records the creator's names beside the tokens (for `dropcast accounts`).
    pub(crate) async fn remember_names(&self, account: &str, nickname: &str, username: &str) {
        let lock = self.lock_of(account);
        let _held = lock.lock().await;
        let Ok(mut tokens) = self.store.load(account) else {
            return;
        };
        if tokens.nickname.as_deref() == Some(nickname)
            && tokens.username.as_deref() == Some(username)
        {
            return;
        }
        tokens.nickname = Some(nickname.to_owned());
        tokens.username = Some(username.to_owned());
        if let Err(e) = self.store.save(account, &tokens) {
            tracing::warn!(account, reason = %e, "cannot save the creator's names beside the tokens");
        }
    }
}

/// The account needs `dropcast login` again.
pub(crate) fn login_needed(account: &str, why: &str) -> PublishError {
    PublishError::AuthExpired {
        what: Expired::Authorization,
        reason: format!("{why}; run `dropcast login {account}` to authorize dropcast again"),
    }
}

fn token_error(account: &str, e: TokenError) -> PublishError {
    match e {
        TokenError::Missing(_) => login_needed(account, "this TikTok account has no login yet"),
        other => PublishError::AuthExpired {
            what: Expired::Authorization,
            reason: format!("{other}; run `dropcast login {account}`"),
        },
    }
}
