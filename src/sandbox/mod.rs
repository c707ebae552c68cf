//! The sandbox: a faithful simulator of the Douyin creator-web platform (docs/douyin-web.md),
//! served on one local listener. Users try dropcast with it without an account, and
//! tests run against it: it enforces every rule of docs/douyin-web.md, so a client bug fails.
//!
//! Code map: [`account`] (which cookies are users), [`creator`] (steps 1, 5, 6a, 6b),
//! [`vod`] (steps 2 and 4), [`tos`] (step 3, objects streamed to disk), [`multipart`]
//! (step 3b), [`receive`] (bodies to disk with their hashes, shared by uploads and
//! [`sink`], the benchmark endpoint `/__sandbox/sink`), [`form`] and
//! [`text`] (step 5's field and span rules), [`challenges`], [`mp4`], [`inspect`]
//! (`/__sandbox/*` endpoints for tests, `/__sandbox/secrets` included), [`faults`]
//! (errors injected on purpose, and `/__sandbox/faults` + `/__sandbox/release`),
//! [`state`] (shared memory and clock), [`snapshot`] (that memory saved as JSON and
//! restored into another sandbox). [`douyin_creator`] simulates `douyin` and [`tiktok`]
//! TikTok's Content Posting API on the same listener.
//!
//! Choices where docs/douyin-web.md leaves room (ours):
//! - vod errors (`code` ≠ 2000) come with HTTP 200, except an expired upload `token` at
//!   step 4, which is HTTP 401 (`code` 4010); bad parameters are `code` 4000.
//! - Rate limiting (step 5) answers the 1st, 3rd, … limited call with HTTP 200
//!   `status_code: 7` and the 2nd, 4th, … with HTTP 429 + `Retry-After` (and the same body),
//!   so clients meet both.
//! - `csrf_token` mismatch at step 5 is `status_code: 2` naming `csrf_token`.
//! - Extra step 5 form fields are ignored; a known field given twice is refused.
//! - Multipart part sizes, part numbers and completion rules: see [`multipart`].

mod account;
mod challenges;
mod creator;
mod douyin_creator;
mod faults;
mod form;
mod inspect;
mod mp4;
mod multipart;
mod receive;
mod sink;
mod snapshot;
mod state;
mod text;
mod tiktok;
mod tos;
mod vod;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use account::cookie_for;
pub use faults::{BUFFER_LIMIT, Fault, FaultAction, FaultStep};
pub use snapshot::{NeededFile, Snapshot, SnapshotError};
pub use tiktok::options::{CannotPost, TiktokApp, TiktokCreator, TiktokOptions};

/// The request paths of the protocol, for the router and for matching faults to steps.
mod paths {
    pub(crate) const CREDENTIALS: &str = "/web/api/media/upload/auth/";
    pub(crate) const CREATE: &str = "/web/api/media/aweme/create/";
    pub(crate) const POST_LIST: &str = "/web/api/media/aweme/post/";
    pub(crate) const CHALLENGE_SUG: &str = "/aweme/v1/search/challengesug/";
    /// Step 2 (`GET`) and step 4 (`POST`).
    pub const VOD: &str = "/video/openapi/v1/";
}

/// Which layout step 2's `data` uses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ParamsLayout {
    /// Fields at the top of `data`, `edge_nodes` empty.
    Top,
    /// Fields only in `data.edge_nodes[0]`.
    EdgeNodes,
    /// `Top` and `EdgeNodes` by turns, starting with `Top`, so clients meet both.
    #[default]
    Alternate,
}

/// How the sandbox behaves.
#[derive(Clone, Debug)]
pub struct SandboxOptions {
    /// Lifetime of a step 1 `auth`.
    pub auth_ttl: Duration,
    /// Lifetime of a step 2 `tos_sign` and `token`.
    pub sign_ttl: Duration,
    pub layout: ParamsLayout,
    /// Where uploaded objects are stored; `None` = a private temporary folder.
    pub storage_dir: Option<PathBuf>,
    /// Least time between two posts of one account; zero = no limit.
    pub min_post_interval: Duration,
    /// Fault rules armed from the start (more can be added while running).
    pub faults: Vec<Fault>,
    /// Start with this memory instead of an empty one (see [`snapshot`]); the files it
    /// names must be in `storage_dir`.
    pub restore: Option<Snapshot>,
    /// douyin (creator center): lifetime of a login QR code.
    pub qr_ttl: Duration,
    /// douyin: lifetime of the STS credentials of `upload/auth/v5`.
    pub sts_ttl: Duration,
    /// douyin: how long a load of the upload page may sign requests.
    pub page_ttl: Duration,
    /// tiktok: apps, audited switch, lifetimes, delays and creator accounts.
    pub tiktok: TiktokOptions,
}

impl Default for SandboxOptions {
    fn default() -> Self {
        SandboxOptions {
            auth_ttl: Duration::from_secs(3600),
            sign_ttl: Duration::from_secs(3600),
            layout: ParamsLayout::Alternate,
            storage_dir: None,
            min_post_interval: Duration::ZERO,
            faults: Vec::new(),
            restore: None,
            qr_ttl: Duration::from_secs(120),
            sts_ttl: Duration::from_secs(3600),
            page_ttl: Duration::from_secs(3600),
            tiktok: TiktokOptions::default(),
        }
    }
}

/// A running sandbox (from [`start`]). Dropping it stops the server too.
#[derive(Debug)]
pub struct SandboxHandle {
    addr: SocketAddr,
    stop: oneshot::Sender<()>,
    task: JoinHandle<std::io::Result<()>>,
    faults: Arc<faults::Faults>,
    memory: Arc<Mutex<state::State>>,
    settings: Arc<state::Settings>,
    creator: Arc<douyin_creator::state::Creator>,
}

impl SandboxHandle {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`: the creator, vod and upload base URL alike.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Arm one more fault rule (after the existing ones).
    pub fn inject(&self, fault: Fault) {
        self.faults.add([fault]);
    }

    /// Remove every fault rule; held requests stay held until [`SandboxHandle::release`].
    pub fn clear_faults(&self) {
        self.faults.clear();
    }

    /// Let every held request go on; returns how many were held.
    pub fn release(&self) -> usize {
        self.faults.release()
    }

    /// How many requests a `hold` fault is holding right now.
    pub fn held(&self) -> usize {
        self.faults.held()
    }

    /// Wait until at least `n` requests are held.
    pub async fn wait_held(&self, n: usize) {
        self.faults.wait_held(n).await;
    }

    /// douyin: a logged-in creator session for `uid`/`nickname` without a QR code (for
    /// tests that drive the protocol without a browser); returns the `sessionid` value.
    pub fn douyin_session(&self, uid: Option<&str>, nickname: Option<&str>) -> String {
        douyin_creator::new_session(&self.creator, uid, nickname)
    }

    /// Its memory now, to restore into another sandbox ([`SandboxOptions::restore`]).
    /// Held requests are not in it: they have not done their work.
    pub fn snapshot(&self) -> Result<Snapshot, SnapshotError> {
        let memory = self.memory.lock().unwrap_or_else(PoisonError::into_inner);
        Snapshot::take(&memory, &self.settings.objects_dir, &self.settings.tos_host)
    }

    /// Stop accepting, finish the requests in flight (held ones end without an answer),
    /// and wait for the server to end.
    pub async fn shutdown(self) {
        self.faults.close();
        let _ = self.stop.send(());
        match self.task.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "sandbox server ended with an error"),
            Err(e) => tracing::warn!(error = %e, "sandbox server task failed"),
        }
    }
}

/// A router ready to serve, and the temporary folder (if any) that must outlive it.
struct Prepared {
    router: Router,
    faults: Arc<faults::Faults>,
    app: state::App,
    _tempdir: Option<tempfile::TempDir>,
}

async fn prepare(listener: &TcpListener, options: SandboxOptions) -> std::io::Result<Prepared> {
    let addr = listener.local_addr()?;
    let (objects_dir, tempdir) = match options.storage_dir {
        Some(dir) => (dir, None),
        None => {
            let t = tempfile::Builder::new()
                .prefix("dropcast-sandbox-")
                .tempdir()?;
            (t.path().to_path_buf(), Some(t))
        }
    };
    tokio::fs::create_dir_all(objects_dir.join(tos::BUCKET)).await?;
    tokio::fs::create_dir_all(objects_dir.join("tiktok")).await?;
    let tos_host = addr.to_string();
    let memory = match options.restore {
        Some(snapshot) => {
            let (dir, host) = (objects_dir.clone(), tos_host.clone());
            tokio::task::spawn_blocking(move || snapshot.restore(&dir, &host))
                .await
                .map_err(std::io::Error::other)?
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?
        }
        None => state::State::new(),
    };
    let faults = Arc::new(faults::Faults::new(options.faults));
    let creator = douyin_creator::state::Creator::new(douyin_creator::state::Settings {
        qr_ttl: options.qr_ttl,
        sts_ttl: options.sts_ttl,
        page_ttl: options.page_ttl,
        tos_auth_ttl: options.sign_ttl,
        upload_host: tos_host.clone(),
        dir: objects_dir.join("douyin-creator"),
    });
    let tiktok = tiktok::state::Tiktok::new(
        &options.tiktok,
        format!("http://{tos_host}"),
        objects_dir.join("tiktok"),
    );
    let app = state::App {
        cfg: Arc::new(state::Settings {
            auth_ttl: options.auth_ttl,
            sign_ttl: options.sign_ttl,
            layout: options.layout,
            min_post_interval: options.min_post_interval,
            tos_host,
            objects_dir,
        }),
        state: Arc::new(Mutex::new(memory)),
        faults: Arc::clone(&faults),
        creator: Arc::new(creator),
        tiktok: Arc::new(tiktok),
    };
    Ok(Prepared {
        router: router(app.clone()),
        faults,
        app,
        _tempdir: tempdir,
    })
}

fn router(app: state::App) -> Router {
    Router::new()
        .route(paths::CREDENTIALS, get(creator::credentials))
        .route(paths::CREATE, post(creator::create))
        .route(paths::POST_LIST, get(creator::post_list))
        .route(paths::CHALLENGE_SUG, get(douyin_creator::challenge_sug))
        .route(paths::VOD, get(vod::upload_params).post(vod::commit))
        .route(
            &format!("/{}/{{name}}", tos::BUCKET),
            post(tos::object).put(tos::object),
        )
        .route("/__sandbox/uploads", get(inspect::uploads))
        .route("/__sandbox/sink", post(sink::sink).put(sink::sink))
        .route("/__sandbox/posts", get(inspect::posts))
        .route("/__sandbox/requests", get(inspect::requests))
        .route("/__sandbox/expire", post(inspect::expire))
        .route("/__sandbox/advance", post(inspect::advance))
        .route("/__sandbox/secrets", get(inspect::secrets))
        .route(
            "/__sandbox/faults",
            get(faults::list).post(faults::add).delete(faults::clear),
        )
        .route("/__sandbox/release", post(faults::release))
        .merge(douyin_creator::router())
        .merge(tiktok::router())
        .fallback(not_found)
        .layer(middleware::from_fn(log_request))
        .layer(middleware::from_fn_with_state(app.clone(), faults::apply))
        .layer(middleware::from_fn(inspect::record_secrets))
        .layer(axum::Extension(Arc::new(inspect::SeenSecrets::default())))
        .with_state(app)
}

/// Unknown paths. An object path whose `/` was percent-encoded lands here too.
async fn not_found(uri: axum::http::Uri) -> Response {
    use axum::response::IntoResponse;
    use serde_json::json;
    let body = if uri.path().starts_with(&format!("/{}", tos::BUCKET)) {
        let message = "no such object path: the oid's '/' must be a real path separator, not %2F";
        json!({"success": 1, "error": {"code": 404, "message": message}})
    } else {
        json!({"status_code": 404, "status_msg": "no such endpoint in the sandbox"})
    };
    (axum::http::StatusCode::NOT_FOUND, axum::Json(body)).into_response()
}

/// Log method, path and status; never headers (cookies, `authorization`) or bodies.
async fn log_request(req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let response = next.run(req).await;
    tracing::debug!(%method, %path, status = response.status().as_u16(), "sandbox request");
    response
}

/// Serve the sandbox on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    options: SandboxOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let prepared = prepare(&listener, options).await?;
    tracing::info!(addr = %listener.local_addr()?, "sandbox listening");
    let faults = prepared.faults;
    axum::serve(listener, prepared.router)
        .with_graceful_shutdown(async move {
            shutdown.await;
            faults.close();
        })
        .await
}

/// Start the sandbox on `listener` in the background.
pub async fn start(
    listener: TcpListener,
    options: SandboxOptions,
) -> std::io::Result<SandboxHandle> {
    let addr = listener.local_addr()?;
    let prepared = prepare(&listener, options).await?;
    let faults = Arc::clone(&prepared.faults);
    let app = prepared.app.clone();
    let closer = Arc::clone(&faults);
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let Prepared {
            router, _tempdir, ..
        } = prepared;
        let result = axum::serve(listener, router)
            .with_graceful_shutdown(async move {
                let _ = stopped.await;
                closer.close();
            })
            .await;
        drop(_tempdir);
        result
    });
    Ok(SandboxHandle {
        addr,
        stop,
        task,
        faults,
        memory: app.state,
        settings: app.cfg,
        creator: app.creator,
    })
}
