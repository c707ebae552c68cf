//! The simulator of the `douyin` protocol (the creator center; docs/douyin-creator.md,
//! §10 says what it enforces), served by the same listener as douyin-web. It is the second
//! implementation that judges the client, so it never imports `crate::platform`.
//!
//! Code map: [`state`] (memory), [`pages`] (login and upload page HTML, the signing
//! script), [`login`] (QR codes, SMS, sessions, logout), [`guard`] (session cookie and
//! page signature checks), [`sts`] (step 1), [`sigv4`] (the verifier), [`vod`] (steps 2
//! and 4), [`tos`] (step 3), [`imagex`] (the cover image, §12) with [`image_size`],
//! [`item`] and [`create`] (step 5), [`works`] (work list, user info, hashtag
//! suggestions), [`inspect`] (`/__sandbox/douyin/*`), [`qr`], [`b64`].

mod b64;
mod create;
mod guard;
mod image_size;
mod imagex;
mod inspect;
mod item;
mod login;
mod pages;
mod qr;
mod sigv4;
pub(crate) mod state;
mod sts;
mod tos;
mod vod;
mod works;

use axum::Router;
use axum::http::{Method, Uri};
use axum::routing::{get, post, put};

use super::faults::FaultStep;
use super::state::App;

/// An early answer (a refusal) from a check, boxed so `Result`s stay small.
pub(crate) type Early = Box<axum::response::Response>;

/// Request paths (relative to `creator_url`, `vod_url` and the upload host alike).
pub(crate) mod paths {
    pub(crate) const LOGIN: &str = "/login";
    pub(crate) const LOGIN_STATE: &str = "/login/state";
    pub(crate) const LOGIN_SMS: &str = "/login/sms";
    pub(crate) const UPLOAD_PAGE: &str = "/creator-micro/content/upload";
    pub(crate) const AUTH: &str = "/web/api/media/upload/auth/v5/";
    /// ApplyUploadInner (`GET`) and CommitUploadInner (`POST`), told by `Action`.
    pub(crate) const VOD: &str = "/";
    /// Followed by the `StoreUri` (which contains `/`).
    pub(crate) const TOS: &str = "/upload/v1/";
    pub(crate) const CREATE: &str = "/web/api/media/aweme/create_v2/";
    pub(crate) const WORK_LIST: &str = "/janus/douyin/creator/pc/work_list";
    pub(crate) const USER_INFO: &str = "/web/api/media/user/info/";
}

/// The routes of this protocol, to merge into the sandbox router. (Hashtag suggestions
/// share douyin-web's path; [`works::challenge_sug`] serves both.)
pub(crate) fn router() -> Router<App> {
    Router::new()
        .route(paths::LOGIN, get(login::page))
        .route(paths::LOGIN_STATE, get(login::poll))
        .route(paths::LOGIN_SMS, post(login::sms))
        .route(paths::UPLOAD_PAGE, get(pages::upload))
        .route(paths::AUTH, get(sts::auth))
        .route(paths::VOD, get(imagex::get_root).post(imagex::post_root))
        .route(
            &format!("/{}/{{key}}", imagex::bucket()),
            put(imagex::upload),
        )
        .route("/upload/v1/{*store_uri}", post(tos::gateway))
        .route(paths::CREATE, post(create::create))
        .route(paths::WORK_LIST, get(works::work_list))
        .route(paths::USER_INFO, get(works::user_info))
        .route("/__sandbox/douyin/login/scan", post(login::scan))
        .route("/__sandbox/douyin/login/sms_code", get(login::sms_code))
        .route("/__sandbox/douyin/logout", post(login::logout))
        .route("/__sandbox/douyin/session", post(login::session))
        .route("/__sandbox/douyin/risk", post(inspect::risk))
        .route("/__sandbox/douyin/posts", get(inspect::posts))
        .route("/__sandbox/douyin/uploads", get(inspect::uploads))
        .route("/__sandbox/douyin/requests", get(inspect::requests))
        .route("/__sandbox/douyin/expire", post(inspect::expire))
}

pub(crate) use works::challenge_sug;

/// The fault step of a request to this protocol, if it is one (TOS phases are told by
/// the query).
pub(crate) fn step_of(method: &Method, uri: &Uri) -> Option<FaultStep> {
    let (get, post) = (method == Method::GET, method == Method::POST);
    match uri.path() {
        paths::AUTH if get => Some(FaultStep::Auth),
        paths::VOD if get && imagex::is_imagex(uri) == Some(true) => Some(FaultStep::ImagexApply),
        paths::VOD if post && imagex::is_imagex(uri) == Some(false) => {
            Some(FaultStep::ImagexCommit)
        }
        paths::VOD if get => Some(FaultStep::ApplyUpload),
        paths::VOD if post => Some(FaultStep::CommitUpload),
        p if method == Method::PUT && p.strip_prefix('/').is_some_and(is_image_path) => {
            Some(FaultStep::ImagexUpload)
        }
        paths::CREATE if post => Some(FaultStep::CreateV2),
        paths::WORK_LIST if get => Some(FaultStep::WorkList),
        p if post && p.starts_with(paths::TOS) => Some(match tos::Phase::of(uri.query()) {
            tos::Phase::Init => FaultStep::TosInit,
            tos::Phase::Transfer => FaultStep::TosPart,
            tos::Phase::Finish | tos::Phase::Unknown => FaultStep::TosFinish,
        }),
        _ => None,
    }
}

/// Whether `path` (without its leading `/`) is an image's `StoreUri`: the bucket and one key.
fn is_image_path(path: &str) -> bool {
    path.strip_prefix(&imagex::bucket())
        .and_then(|p| p.strip_prefix('/'))
        .is_some_and(|key| !key.is_empty() && !key.contains('/'))
}

/// Count a request to `step` that a fault kept from its handler; `false` if the step is
/// not this protocol's.
pub(crate) fn count_faulted(app: &App, step: FaultStep) -> bool {
    let mut m = app.creator.lock();
    let c = &mut m.counts;
    let n = match step {
        FaultStep::Auth => &mut c.auth,
        FaultStep::ApplyUpload => &mut c.apply_upload,
        FaultStep::TosInit => &mut c.tos_init,
        FaultStep::TosPart => &mut c.tos_part,
        FaultStep::TosFinish => &mut c.tos_finish,
        FaultStep::CommitUpload => &mut c.commit_upload,
        FaultStep::ImagexApply => &mut c.imagex_apply,
        FaultStep::ImagexUpload => &mut c.imagex_upload,
        FaultStep::ImagexCommit => &mut c.imagex_commit,
        FaultStep::CreateV2 => &mut c.create_v2,
        FaultStep::WorkList => &mut c.work_list,
        _ => return false,
    };
    *n += 1;
    true
}

/// The sandbox clock, in milliseconds (shared with douyin-web).
pub(crate) fn now_ms(app: &App) -> i64 {
    app.lock().now_ms()
}

/// Every secret this protocol handed out, for `/__sandbox/secrets`.
pub(crate) fn secrets(app: &App) -> Vec<String> {
    app.creator.lock().secrets()
}

/// Make a session directly (no QR code), for tests that drive the protocol without a
/// browser; returns the `sessionid` cookie value.
pub(crate) fn new_session(
    creator: &state::Creator,
    uid: Option<&str>,
    nickname: Option<&str>,
) -> String {
    login::open_session(creator, uid, nickname)
}
