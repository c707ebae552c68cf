//! The status server (`status.listen`, default `127.0.0.1:8931`): `/healthz`, `/metrics`
//! (Prometheus text), `/api/jobs` (JSON), the dashboard on `/`, and
//! `POST /api/retry/{hash}`, which puts a failed, abandoned or unconfirmed job back in
//! the queue (like `dropcast retry`).
//!
//! **It never serves a secret**: views are built from selected ledger and live fields
//! (no step results, no config), and the token is only ever compared.
//! **It refuses to listen on a non-loopback address without `status.token`**
//! ([`check_bind`]); with a token every path but `/healthz` requires it.
//! **A `POST` must carry `X-Dropcast-Request: 1`** (a cross-site form cannot, and no CORS
//! headers are sent) and no cross-site `Sec-Fetch-Site` or foreign `Origin`. Without a
//! token, only loopback `Host` names are answered (no DNS rebinding).
//!
//! Code map: [`view`] (the read model's fields as `/api/jobs` names them), [`metrics`]
//! (the exposition format), [`login_code`] (the QR codes `dropcast login` waits on, served
//! at `/api/login-qr/{account}`), `guard` (token, host and cross-site checks), `page` (the
//! dashboard).

mod guard;
pub mod login_code;
pub mod metrics;
mod page;
pub mod view;

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::pipeline::Context;
use crate::pipeline::requeue::{self, RetryError};
use crate::receipt::file_label;
use crate::secret::Secret;

use guard::Token;

/// Shared by the handlers.
#[derive(Clone)]
struct App {
    ctx: Arc<Context>,
    token: Option<Token>,
}

/// A running status server (from [`start`]). Dropping it stops the server too.
#[derive(Debug)]
pub struct StatusHandle {
    addr: SocketAddr,
    stop: oneshot::Sender<()>,
    task: JoinHandle<io::Result<()>>,
}

impl StatusHandle {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR`, the dashboard's address.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting, finishes the requests in flight, and waits for the server to end.
    pub async fn shutdown(self) {
        let _ = self.stop.send(());
        match self.task.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "status server ended with an error"),
            Err(e) => tracing::warn!(error = %e, "status server task failed"),
        }
    }
}

pub use crate::config::check_bind;

/// Serves the status pages on `listener` until [`StatusHandle::shutdown`]; refuses a
/// non-loopback listener without a token (see [`check_bind`]).
pub async fn start(
    listener: TcpListener,
    ctx: Arc<Context>,
    token: Option<Secret>,
) -> io::Result<StatusHandle> {
    let addr = listener.local_addr()?;
    check_bind(addr, token.as_ref()).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let token = token.filter(|t| !t.is_empty()).map(Token::new);
    let router = router(App { ctx, token });
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(async move {
                let _ = stopped.await;
            })
            .await
    });
    tracing::info!(address = %format!("http://{addr}"), "status server listening");
    Ok(StatusHandle { addr, stop, task })
}

fn router(app: App) -> Router {
    Router::new()
        .route("/", get(dashboard))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/api/jobs", get(jobs))
        .route("/api/retry/{hash}", post(retry))
        .route("/api/login-qr/{account}", get(login_qr))
        .fallback(not_found)
        .layer(middleware::from_fn(guard::same_site))
        .layer(middleware::from_fn_with_state(app.clone(), guard::access))
        .layer(middleware::from_fn(guard::headers))
        .with_state(app)
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn dashboard() -> Response {
    let page = &*page::PAGE;
    let mut res = axum::response::Html(page.html.clone()).into_response();
    if let Ok(csp) = HeaderValue::from_str(&page.csp) {
        res.headers_mut()
            .insert(header::CONTENT_SECURITY_POLICY, csp);
    }
    res
}

fn failure(status: StatusCode, message: String) -> Response {
    (status, axum::Json(json!({ "error": message }))).into_response()
}

async fn jobs(State(app): State<App>) -> Response {
    match view::collect(&app.ctx).await {
        Ok((view, _)) => axum::Json(view).into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "status: cannot read the jobs");
            failure(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
        }
    }
}

async fn metrics(State(app): State<App>) -> Response {
    match view::collect(&app.ctx).await {
        Ok((view, counters)) => (
            [(header::CONTENT_TYPE, metrics::CONTENT_TYPE)],
            metrics::render(&view, &counters),
        )
            .into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "status: cannot read the jobs for /metrics");
            failure(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
        }
    }
}

/// The PNG of the QR code `dropcast login ACCOUNT` waits on (404 when none is waiting).
async fn login_qr(State(app): State<App>, Path(account): Path<String>) -> Response {
    match login_code::image(&app.ctx.config, &account).await {
        Some(png) => (
            [
                (header::CONTENT_TYPE, "image/png"),
                (header::CACHE_CONTROL, "no-store"),
            ],
            png,
        )
            .into_response(),
        None => failure(
            StatusCode::NOT_FOUND,
            format!("no login of account `{account}` is waiting for its QR code to be scanned"),
        ),
    }
}

async fn retry(State(app): State<App>, Path(hash): Path<String>) -> Response {
    let ctx = Arc::clone(&app.ctx);
    let prefix = hash.clone();
    let result = app
        .ctx
        .ledger(move |l| Ok(requeue::retry_hash(&ctx.config, l, &hash)))
        .await
        .map_err(RetryError::from)
        .and_then(|r| r);
    match result {
        // Nothing was changed: a re-run where the drop lies needs the agent's dispatch.
        Ok(done) if done.in_place.is_some() => failure(
            StatusCode::CONFLICT,
            format!(
                "another target of this drop posted, so its video lies in done/: run `dropcast retry {} --account {}` to re-run this one there",
                prefix.trim(),
                done.in_place.map(|p| p.account).unwrap_or_default()
            ),
        ),
        Ok(done) => {
            tracing::info!(job = done.id, video = %done.video.display(), was = %done.was, "retry requested on the dashboard");
            let moved_back: Vec<String> = done
                .moved_back
                .iter()
                .map(|p| file_label(app.ctx.relative(p)))
                .collect();
            axum::Json(json!({
                "id": done.id,
                "video": file_label(&done.video),
                "was": done.was.as_str(),
                "moved_back": moved_back,
            }))
            .into_response()
        }
        Err(e) => {
            let status = match &e {
                RetryError::BadHash(_) => StatusCode::BAD_REQUEST,
                RetryError::NoMatch(_) | RetryError::NoMatchFor { .. } => StatusCode::NOT_FOUND,
                RetryError::Ambiguous { .. }
                | RetryError::NotRetryable { .. }
                | RetryError::Restore { .. } => StatusCode::CONFLICT,
                RetryError::Ledger(crate::ledger::LedgerError::Illegal { .. })
                | RetryError::Ledger(crate::ledger::LedgerError::LiveJobExists) => {
                    StatusCode::CONFLICT
                }
                RetryError::Ledger(_) => StatusCode::INTERNAL_SERVER_ERROR,
            };
            failure(status, e.to_string())
        }
    }
}

async fn not_found() -> Response {
    failure(StatusCode::NOT_FOUND, "no such page".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_loopback_needs_a_token() {
        let token = Secret::new("t");
        assert!(check_bind("127.0.0.1:8931".parse().unwrap(), None).is_ok());
        assert!(check_bind("[::1]:8931".parse().unwrap(), None).is_ok());
        let refused = check_bind("0.0.0.0:8931".parse().unwrap(), None).unwrap_err();
        assert!(refused.contains("status.token"), "{refused}");
        assert!(check_bind("192.168.1.2:8931".parse().unwrap(), None).is_err());
        assert!(check_bind("0.0.0.0:8931".parse().unwrap(), Some(&token)).is_ok());
        assert!(check_bind("0.0.0.0:8931".parse().unwrap(), Some(&Secret::new(""))).is_err());
    }
}
