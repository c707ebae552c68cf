//! The OAuth side of docs/tiktok.md §1: the authorize address, the loopback
//! listener that takes the one callback (checking `state`), the code exchange and the
//! refresh at the token endpoint. Nothing here logs or returns a token in a message.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use axum::extract::{Query, State};
use axum::response::Html;
use reqwest::Url;
use tokio::sync::mpsc;

use super::pkce::{self, Pkce};
use super::tokens::{Tokens, unix};
use super::wire;
use crate::platform::PublishError;
use crate::secret::Secret;

/// The user's TikTok app, as the config names it.
#[derive(Clone, Debug)]
pub(crate) struct App {
    pub client_key: String,
    pub client_secret: Secret,
}

/// The address the user opens to authorize dropcast (§1.2).
pub(crate) fn authorize_url(
    auth_url: &Url,
    app: &App,
    redirect_uri: &str,
    pkce: &Pkce,
) -> Result<Url, String> {
    let mut url = auth_url
        .join(wire::PATH_AUTHORIZE.trim_start_matches('/'))
        .map_err(|e| format!("auth_url: {e}"))?;
    url.query_pairs_mut()
        .append_pair("client_key", &app.client_key)
        .append_pair("response_type", "code")
        .append_pair("scope", wire::SCOPES)
        .append_pair("redirect_uri", redirect_uri)
        .append_pair("state", pkce.state.expose())
        .append_pair("code_challenge", &pkce.challenge())
        .append_pair("code_challenge_method", wire::CODE_CHALLENGE_METHOD);
    Ok(url)
}

/// Why a login did not end with tokens. Never holds a code or a token.
#[derive(Debug, thiserror::Error)]
pub(crate) enum LoginError {
    #[error("cannot listen on 127.0.0.1:{port} for TikTok's redirect: {source}")]
    Listen { port: u16, source: std::io::Error },
    #[error("no answer from TikTok within {}; run `dropcast login` again", humantime::format_duration(*.0))]
    Timeout(Duration),
    #[error(
        "the redirect's `state` is not the one dropcast sent; the login was refused (open the address this login printed, not an older one)"
    )]
    State,
    #[error("TikTok did not authorize dropcast: {0}")]
    Denied(String),
    #[error("the redirect carries no code")]
    NoCode,
    #[error("{0}")]
    Token(PublishError),
}

/// The loopback listener of the redirect, bound before the address is shown.
pub(crate) struct Callback {
    listener: tokio::net::TcpListener,
    pub redirect_uri: String,
}

impl Callback {
    /// Listens on `127.0.0.1:port` (`0`: any free port).
    pub(crate) async fn bind(port: u16) -> Result<Callback, LoginError> {
        let listener = tokio::net::TcpListener::bind((wire::REDIRECT_HOST, port))
            .await
            .map_err(|source| LoginError::Listen { port, source })?;
        let addr: SocketAddr = listener
            .local_addr()
            .map_err(|source| LoginError::Listen { port, source })?;
        let redirect_uri = format!(
            "http://{}:{}{}",
            wire::REDIRECT_HOST,
            addr.port(),
            wire::REDIRECT_PATH
        );
        Ok(Callback {
            listener,
            redirect_uri,
        })
    }

    /// Waits up to `timeout` for the redirect, checks its `state` against `expected` and
    /// returns the (URL-decoded) code. Requests with another state are answered with a
    /// refusal and end the wait: a forged redirect must not be retried against us.
    pub(crate) async fn code(
        self,
        expected: &Secret,
        timeout: Duration,
    ) -> Result<Secret, LoginError> {
        let (tx, mut rx) = mpsc::channel::<CallbackQuery>(1);
        let app = axum::Router::new()
            .route(wire::REDIRECT_PATH, axum::routing::get(callback))
            .with_state(tx);
        let server = tokio::spawn(async move {
            let _ = axum::serve(self.listener, app).await;
        });
        let got = tokio::time::timeout(timeout, rx.recv()).await;
        server.abort();
        let query = match got {
            Ok(Some(q)) => q,
            _ => return Err(LoginError::Timeout(timeout)),
        };
        let state = query.state.unwrap_or_default();
        if !pkce::same(&state, expected.expose()) {
            return Err(LoginError::State);
        }
        if let Some(error) = query.error {
            let description = query.error_description.unwrap_or_default();
            return Err(LoginError::Denied(
                format!("{error} {description}").trim().to_owned(),
            ));
        }
        match query.code.filter(|c| !c.is_empty()) {
            Some(code) => Ok(Secret::new(code)),
            None => Err(LoginError::NoCode),
        }
    }
}

/// The redirect's query (§1.3); axum URL-decodes it.
#[derive(serde::Deserialize)]
struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

async fn callback(
    State(tx): State<mpsc::Sender<CallbackQuery>>,
    Query(query): Query<CallbackQuery>,
) -> Html<&'static str> {
    let ok = query.code.is_some() && query.error.is_none();
    let _ = tx.try_send(query);
    Html(if ok {
        "<!doctype html><title>dropcast</title><p>dropcast received TikTok's answer. You can close this window and go back to the terminal.</p>"
    } else {
        "<!doctype html><title>dropcast</title><p>TikTok did not authorize dropcast. See the terminal.</p>"
    })
}

/// The token endpoint (§1.4–1.5).
pub(crate) struct TokenEndpoint {
    pub http: reqwest::Client,
    pub api_url: Url,
    pub app: App,
}

impl TokenEndpoint {
    /// The code of a redirect for tokens (§1.4).
    pub(crate) async fn exchange(
        &self,
        code: &Secret,
        redirect_uri: &str,
        verifier: &Secret,
    ) -> Result<Tokens, PublishError> {
        let form = [
            ("client_key", self.app.client_key.as_str()),
            ("client_secret", self.app.client_secret.expose()),
            ("code", code.expose()),
            ("grant_type", wire::GRANT_CODE),
            ("redirect_uri", redirect_uri),
            ("code_verifier", verifier.expose()),
        ];
        self.post(&form, None).await
    }

    /// New tokens for `old`'s refresh token (§1.5). The answer's refresh token replaces
    /// the old one, which stops working (rotation): the caller saves it before anything else.
    pub(crate) async fn refresh(&self, old: &Tokens) -> Result<Tokens, PublishError> {
        let form = [
            ("client_key", self.app.client_key.as_str()),
            ("client_secret", self.app.client_secret.expose()),
            ("grant_type", wire::GRANT_REFRESH),
            ("refresh_token", old.refresh.expose()),
        ];
        self.post(&form, Some(old)).await
    }

    async fn post(
        &self,
        form: &[(&str, &str)],
        old: Option<&Tokens>,
    ) -> Result<Tokens, PublishError> {
        let url = self
            .api_url
            .join(wire::PATH_TOKEN.trim_start_matches('/'))
            .map_err(|e| PublishError::Rejected {
                reason: format!("api_url: {e}"),
            })?;
        let body = serde_urlencoded::to_string(form).map_err(|e| PublishError::Rejected {
            reason: format!("token request: {e}"),
        })?;
        let response = self
            .http
            .post(url)
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(body)
            .send()
            .await
            .map_err(|e| PublishError::Transient {
                reason: format!("token endpoint: {}", e.without_url()),
                retry_after: None,
            })?;
        let status = response.status().as_u16();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| PublishError::Transient {
                reason: format!("token endpoint: {}", e.without_url()),
                retry_after: None,
            })?;
        let answer: wire::TokenAnswer = match serde_json::from_slice(&bytes) {
            Ok(a) => a,
            Err(_) if status >= 500 => {
                return Err(PublishError::Transient {
                    reason: format!("token endpoint: HTTP {status}"),
                    retry_after: None,
                });
            }
            Err(e) => {
                return Err(PublishError::Rejected {
                    reason: format!(
                        "token endpoint: HTTP {status}, an answer that is not its JSON ({e})"
                    ),
                });
            }
        };
        if let Some(error) = answer.error.as_deref().filter(|e| !e.is_empty()) {
            let description = answer.error_description.as_deref().unwrap_or("");
            return Err(wire::classify_oauth(status, error, description));
        }
        tokens_of(answer, SystemTime::now(), old)
    }
}

/// The answer as [`Tokens`]; the creator's names carry over from `old`.
fn tokens_of(
    a: wire::TokenAnswer,
    now: SystemTime,
    old: Option<&Tokens>,
) -> Result<Tokens, PublishError> {
    let missing = |field: &str| PublishError::Rejected {
        reason: format!("the token endpoint's answer has no `{field}`"),
    };
    let now = unix(now);
    Ok(Tokens {
        open_id: a.open_id.ok_or_else(|| missing("open_id"))?,
        scope: a.scope.unwrap_or_default(),
        access: Secret::new(a.access_token.ok_or_else(|| missing("access_token"))?),
        access_expires_at: now.saturating_add(a.expires_in.ok_or_else(|| missing("expires_in"))?),
        refresh: Secret::new(a.refresh_token.ok_or_else(|| missing("refresh_token"))?),
        refresh_expires_at: now.saturating_add(
            a.refresh_expires_in
                .ok_or_else(|| missing("refresh_expires_in"))?,
        ),
        nickname: old.and_then(|o| o.nickname.clone()),
        username: old.and_then(|o| o.username.clone()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app() -> App {
        App {
            client_key: "aw1x".into(),
            client_secret: Secret::new("SECRET"),
        }
    }

    #[test]
    fn the_authorize_address_has_every_field_of_the_page() {
        let pkce = Pkce::new().unwrap();
        let url = authorize_url(
            &Url::parse("https://www.tiktok.com").unwrap(),
            &app(),
            "http://127.0.0.1:5000/callback/",
            &pkce,
        )
        .unwrap();
        assert_eq!(url.path(), "/v2/auth/authorize/");
        let q: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
        assert_eq!(q["client_key"], "aw1x");
        assert_eq!(q["response_type"], "code");
        assert_eq!(q["scope"], "user.info.basic,video.publish,video.upload");
        assert_eq!(q["redirect_uri"], "http://127.0.0.1:5000/callback/");
        assert_eq!(q["state"], pkce.state.expose());
        assert_eq!(q["code_challenge"], pkce::challenge(pkce.verifier.expose()));
        assert_eq!(q["code_challenge_method"], "S256");
        assert!(!url.as_str().contains("SECRET"));
        assert!(!url.as_str().contains(pkce.verifier.expose()));
    }

    async fn redirect(uri: &str, query: &str) {
        let _ = reqwest::get(format!("{uri}?{query}")).await;
    }

    #[tokio::test]
    async fn the_callback_checks_state_and_decodes_the_code() {
        let state = Secret::new("st-1");
        let cb = Callback::bind(0).await.unwrap();
        assert!(cb.redirect_uri.starts_with("http://127.0.0.1:"));
        assert!(cb.redirect_uri.ends_with("/callback/"));
        let uri = cb.redirect_uri.clone();
        let wait = tokio::spawn(async move { cb.code(&state, Duration::from_secs(30)).await });
        redirect(&uri, "code=a%2Ab%21&scopes=video.publish&state=st-1").await;
        assert_eq!(wait.await.unwrap().unwrap().expose(), "a*b!");

        let cb = Callback::bind(0).await.unwrap();
        let uri = cb.redirect_uri.clone();
        let wait =
            tokio::spawn(
                async move { cb.code(&Secret::new("st-1"), Duration::from_secs(30)).await },
            );
        redirect(&uri, "code=c&state=forged").await;
        assert!(matches!(wait.await.unwrap(), Err(LoginError::State)));

        let cb = Callback::bind(0).await.unwrap();
        let uri = cb.redirect_uri.clone();
        let wait =
            tokio::spawn(async move { cb.code(&Secret::new("s"), Duration::from_secs(30)).await });
        redirect(&uri, "error=access_denied&error_description=no&state=s").await;
        let err = wait.await.unwrap().unwrap_err().to_string();
        assert!(err.contains("access_denied"), "{err}");
    }

    #[tokio::test]
    async fn no_redirect_in_time_is_a_timeout() {
        let cb = Callback::bind(0).await.unwrap();
        let err = cb
            .code(&Secret::new("s"), Duration::from_millis(50))
            .await
            .unwrap_err();
        assert!(matches!(err, LoginError::Timeout(_)));
    }

    #[test]
    fn a_token_answer_needs_every_field() {
        let a: wire::TokenAnswer = serde_json::from_str(
            r#"{"open_id": "o", "scope": "video.publish", "access_token": "A", "expires_in": 7200,
                "refresh_token": "R", "refresh_expires_in": 15552000, "token_type": "Bearer"}"#,
        )
        .unwrap();
        let now = std::time::UNIX_EPOCH + Duration::from_secs(1000);
        let t = tokens_of(a, now, None).unwrap();
        assert_eq!(
            (t.access_expires_at, t.refresh_expires_at),
            (8200, 15_553_000)
        );
        let a: wire::TokenAnswer = serde_json::from_str(r#"{"open_id": "o"}"#).unwrap();
        assert!(
            tokens_of(a, now, None)
                .unwrap_err()
                .to_string()
                .contains("access_token")
        );
    }
}
