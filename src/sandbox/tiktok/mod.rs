//! The simulator of TikTok's Content Posting API (docs/tiktok.md, written from the
//! protocol page; its §9 says what is enforced), served by the same listener as the other
//! platforms: `api_url` and `auth_url` both point at it. It is the second implementation
//! that judges the client, so it never imports `crate::platform`.
//!
//! Code map: [`rules`] (every documented number and every (ours) choice, in one place),
//! [`options`] (`SandboxOptions::tiktok`), [`state`] (memory), [`reply`] (the envelopes),
//! [`authorize`] (the authorize page and its approval), [`token`] (token, refresh,
//! revoke), [`guard`] (Bearer, scope, content type, rate windows), [`caps`] (who may post
//! now), [`creator`] (creator_info), [`init`] (direct and inbox init), [`layout`] (chunk
//! arithmetic), [`upload`] (chunks), [`media`] (checks on the finished file), [`status`]
//! (status fetch), [`inspect`] (`/__sandbox/tiktok/*`).

mod authorize;
mod caps;
mod creator;
mod guard;
mod init;
mod inspect;
mod layout;
mod media;
pub(crate) mod options;
mod reply;
mod rules;
mod seal;
pub(crate) mod state;
mod status;
mod token;
mod upload;

use std::time::Duration;

use axum::Router;
use axum::http::{Method, Uri};
use axum::routing::{get, post};

use super::faults::FaultStep;
use super::state::App;

/// An early answer (a refusal) from a check, boxed so `Result`s stay small.
pub(crate) type Early = Box<axum::response::Response>;

/// Request paths. None can meet douyin-web's object route (`/tos-cn-v-0000/…`) or
/// douyin's (`/upload/v1/…`, `/`).
pub(crate) mod paths {
    pub(crate) const AUTHORIZE: &str = "/v2/auth/authorize/";
    pub(crate) const TOKEN: &str = "/v2/oauth/token/";
    pub(crate) const REVOKE: &str = "/v2/oauth/revoke/";
    pub(crate) const CREATOR_INFO: &str = "/v2/post/publish/creator_info/query/";
    pub(crate) const INIT: &str = "/v2/post/publish/video/init/";
    pub(crate) const INBOX_INIT: &str = "/v2/post/publish/inbox/video/init/";
    pub(crate) const STATUS: &str = "/v2/post/publish/status/fetch/";
    /// The path of every `upload_url` (ours; the client uses the URL whole).
    pub(crate) const UPLOAD: &str = "/tiktok/upload/video/";
}

/// The routes of this protocol, to merge into the sandbox router.
pub(crate) fn router() -> Router<App> {
    Router::new()
        .route(
            paths::AUTHORIZE,
            get(authorize::page).post(authorize::submit),
        )
        .route(paths::TOKEN, post(token::token))
        .route(paths::REVOKE, post(token::revoke))
        .route(paths::CREATOR_INFO, post(creator::creator_info))
        .route(paths::INIT, post(init::direct))
        .route(paths::INBOX_INIT, post(init::inbox))
        .route(paths::STATUS, post(status::fetch))
        .route(paths::UPLOAD, axum::routing::put(upload::chunk))
        .route("/__sandbox/tiktok/approve", post(authorize::approve))
        .route("/__sandbox/tiktok/publishes", get(inspect::publishes))
        .route("/__sandbox/tiktok/posts", get(inspect::posts))
        .route("/__sandbox/tiktok/tokens", get(inspect::tokens))
        .route("/__sandbox/tiktok/creators", get(inspect::creators))
        .route("/__sandbox/tiktok/creator", post(inspect::change_creator))
        .route(
            "/__sandbox/tiktok/app",
            get(inspect::app_switch).post(inspect::app_switch),
        )
        .route("/__sandbox/tiktok/expire", post(inspect::expire))
        .route("/__sandbox/tiktok/fail_next", post(inspect::fail_next))
        .route("/__sandbox/tiktok/requests", get(inspect::requests))
}

/// The fault step of a request to this protocol, if it is one.
pub(crate) fn step_of(method: &Method, uri: &Uri) -> Option<FaultStep> {
    let post = method == Method::POST;
    match uri.path() {
        paths::TOKEN if post => Some(FaultStep::TiktokToken),
        paths::CREATOR_INFO if post => Some(FaultStep::TiktokCreatorInfo),
        paths::INIT | paths::INBOX_INIT if post => Some(FaultStep::TiktokInit),
        paths::STATUS if post => Some(FaultStep::TiktokStatus),
        paths::UPLOAD if method == Method::PUT => Some(FaultStep::TiktokChunk),
        _ => None,
    }
}

/// Count a request to `step` that a fault kept from its handler; `false` if the step is
/// not this protocol's.
pub(crate) fn count_faulted(app: &App, step: FaultStep, uri: &Uri) -> bool {
    let mut m = app.tiktok.lock();
    let c = &mut m.counts;
    let n = match step {
        FaultStep::TiktokToken => &mut c.token,
        FaultStep::TiktokCreatorInfo => &mut c.creator_info,
        FaultStep::TiktokInit if uri.path() == paths::INBOX_INIT => &mut c.inbox_init,
        FaultStep::TiktokInit => &mut c.init,
        FaultStep::TiktokChunk => &mut c.chunk,
        FaultStep::TiktokStatus => &mut c.status,
        _ => return false,
    };
    *n += 1;
    true
}

/// A failure body in this protocol's style, for a `status` fault without a body.
pub(crate) fn fault_body(step: FaultStep, status: u16) -> Option<serde_json::Value> {
    let message = format!("sandbox fault: HTTP {status}");
    let body = match step {
        FaultStep::TiktokToken => {
            serde_json::json!({"error": "server_error", "error_description": message, "log_id": "sandbox-fault"})
        }
        FaultStep::TiktokCreatorInfo
        | FaultStep::TiktokInit
        | FaultStep::TiktokChunk
        | FaultStep::TiktokStatus => {
            let code = if status == 429 {
                "rate_limit_exceeded"
            } else {
                "internal_error"
            };
            serde_json::json!({"data": {}, "error": {"code": code, "message": message, "log_id": "sandbox-fault"}})
        }
        _ => return None,
    };
    Some(body)
}

/// The sandbox clock, in milliseconds (shared with the other protocols).
pub(crate) fn now_ms(app: &App) -> i64 {
    app.lock().now_ms()
}

/// A duration in whole milliseconds, saturating.
pub(crate) fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Every secret this protocol handed out or was given, for `/__sandbox/secrets`.
pub(crate) fn secrets(app: &App) -> Vec<String> {
    app.tiktok.lock().secrets()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::{Fault, FaultAction};

    #[test]
    fn requests_map_to_their_fault_steps() {
        let of = |m: Method, p: &str| step_of(&m, &p.parse::<Uri>().expect("uri"));
        assert_eq!(of(Method::POST, paths::TOKEN), Some(FaultStep::TiktokToken));
        assert_eq!(
            of(Method::POST, paths::INBOX_INIT),
            Some(FaultStep::TiktokInit)
        );
        assert_eq!(of(Method::POST, paths::INIT), Some(FaultStep::TiktokInit));
        let chunk = "/tiktok/upload/video/?upload_id=a&upload_token=b";
        assert_eq!(of(Method::PUT, chunk), Some(FaultStep::TiktokChunk));
        assert_eq!(of(Method::GET, paths::AUTHORIZE), None);
        assert_eq!(of(Method::POST, "/__sandbox/tiktok/expire"), None);
    }

    #[test]
    fn fault_steps_have_their_names() {
        let f: Vec<Fault> = serde_yaml::from_str(
            "- {step: tiktok_chunk, action: cut_answer, times: 1}\n\
             - {step: tiktok_creator_info, action: drop_answer}\n",
        )
        .expect("parses");
        assert_eq!(
            f[0],
            Fault::new(FaultStep::TiktokChunk, FaultAction::CutAnswer).times(1)
        );
        assert_eq!(FaultStep::TiktokStatus.name(), "tiktok_status");
        assert_eq!(FaultStep::TiktokToken.to_string(), "tiktok_token");
    }
}
