//! Fault injection ("breaking on purpose"): rules that make chosen protocol steps answer
//! with an error status, a canned JSON body, a dropped connection, a delay, a lost answer
//! after the work was done, or a request held open until released. Tests drive it over
//! `/__sandbox/faults` and `/__sandbox/release` (or [`super::SandboxHandle`]); demos list
//! rules in `SandboxOptions::faults`.
//!
//! Rules (ours):
//! - A rule counts every request to its step from the moment it was added; it skips the
//!   first `after` of them, then applies `times` times (`None` = for ever). Of the rules
//!   that are due for a request, the first one (in the order added) applies.
//! - A multipart part `PUT` is a request to both `upload_part` and `upload`: rules on
//!   either step count it. Every other object request is `upload` only.
//! - `status`, `body` and `reset` replace the work: the step's state does not change.
//!   `status` and `body` read (and drop) the request body first, so the client sees the
//!   answer; `reset` closes the connection before reading any of the body (an upload is
//!   cut off before its first byte is consumed).
//! - `delay`, `hold` and `drop_answer` do the work, and they do it even when the client
//!   has gone away meanwhile (like a real server): `delay` and `hold` read the whole
//!   request body first (at most [`BUFFER_LIMIT`] bytes), then wait, then do the work.
//! - A lost answer (`reset`, `drop_answer`) is a connection closed without a byte of a
//!   response: the client sees a reset or an early EOF, never an HTTP status.
//! - When the sandbox shuts down, held requests end without their work, their
//!   connections dropped (as if the server had died), and later holds do not wait.
//! - Faulted requests count in `/__sandbox/requests`; a held request counts when it is
//!   released and its work runs.
//! - douyin steps (`auth`, `apply_upload`, `tos_init`, `tos_part`, `tos_finish`,
//!   `commit_upload`, `imagex_apply`, `imagex_upload`, `imagex_commit`, `create_v2`,
//!   `work_list`; `challenge_sug` is shared) work the same.
//! - tiktok steps: `tiktok_token`, `tiktok_creator_info`, `tiktok_init` (direct and inbox),
//!   `tiktok_chunk` (a `PUT` to an `upload_url`), `tiktok_status`; a `status` fault without
//!   a body answers in TikTok's envelope (`rate_limit_exceeded` for 429).
//! - `lag` (on `post_list` or `work_list`) does the work, but the list leaves out the posts created less
//!   than `ms` ago: a list that lags behind new posts. On other steps it changes nothing.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::header::{CONTENT_LENGTH, RETRY_AFTER};
use axum::http::{HeaderValue, Method, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::{Notify, watch};

use super::state::App;
use super::{paths, tos};

/// Most bytes of a request body that `delay` and `hold` keep in memory before waiting.
pub const BUFFER_LIMIT: u64 = 256 * 1024 * 1024;

/// Most bytes of a request body read and dropped before a `status` or `body` answer.
const DRAIN_LIMIT: u64 = 256 * 1024 * 1024;

/// A protocol step a fault can hit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultStep {
    /// Step 1: `GET /web/api/media/upload/auth/`.
    Credentials,
    /// Step 2: `GET /video/openapi/v1/` (GetVideoUploadParams).
    UploadParams,
    /// Step 3: every `POST`/`PUT /{oid}`: whole file, multipart init, part and complete.
    Upload,
    /// Step 3b.2 only: `PUT /{oid}?partNumber=N&uploadID=…` (a part; `upload` rules
    /// match parts too).
    UploadPart,
    /// Step 4: `POST /video/openapi/v1/` (UpdateVideoUploadInfos).
    Commit,
    /// Step 5: `POST /web/api/media/aweme/create/`.
    Create,
    /// 6a: `GET /web/api/media/aweme/post/`.
    PostList,
    /// 6b: `GET /aweme/v1/search/challengesug/` (both protocols).
    ChallengeSug,
    /// douyin step 1: `GET /web/api/media/upload/auth/v5/`.
    Auth,
    /// douyin step 2: `GET /?Action=ApplyUploadInner…`.
    ApplyUpload,
    /// douyin step 3: `POST /upload/v1/{StoreUri}?…phase=init`.
    TosInit,
    /// douyin step 3: `POST /upload/v1/{StoreUri}?…phase=transfer` (a part).
    TosPart,
    /// douyin step 3: `POST /upload/v1/{StoreUri}?…phase=finish`.
    TosFinish,
    /// douyin step 4: `POST /?Action=CommitUploadInner…`.
    CommitUpload,
    /// douyin §12: `GET /?Action=ApplyImageUpload…` (the cover image).
    ImagexApply,
    /// douyin §12: `PUT /{StoreUri}` of the cover image.
    ImagexUpload,
    /// douyin §12: `POST /?Action=CommitImageUpload…`.
    ImagexCommit,
    /// douyin step 5: `POST /web/api/media/aweme/create_v2/`.
    CreateV2,
    /// douyin step 6: `GET /janus/douyin/creator/pc/work_list`.
    WorkList,
    /// tiktok: `POST /v2/oauth/token/` (codes and refreshes).
    TiktokToken,
    /// tiktok: `POST /v2/post/publish/creator_info/query/`.
    TiktokCreatorInfo,
    /// tiktok: `POST /v2/post/publish/video/init/` and `…/inbox/video/init/`.
    TiktokInit,
    /// tiktok: a chunk `PUT` to an `upload_url`.
    TiktokChunk,
    /// tiktok: `POST /v2/post/publish/status/fetch/`.
    TiktokStatus,
}

impl FaultStep {
    /// The step a request is for, from its method and path; `None` for anything else
    /// (the `/__sandbox/` endpoints included). Every object request is `Upload`; see
    /// [`FaultStep::matching`] for the finer `UploadPart`.
    pub fn of(method: &Method, path: &str) -> Option<FaultStep> {
        let get = method == Method::GET;
        let post = method == Method::POST;
        match path {
            paths::CREDENTIALS if get => Some(FaultStep::Credentials),
            paths::CREATE if post => Some(FaultStep::Create),
            paths::POST_LIST if get => Some(FaultStep::PostList),
            paths::CHALLENGE_SUG if get => Some(FaultStep::ChallengeSug),
            paths::VOD if get => Some(FaultStep::UploadParams),
            paths::VOD if post => Some(FaultStep::Commit),
            _ => {
                let name = path
                    .strip_prefix('/')
                    .and_then(|p| p.strip_prefix(tos::BUCKET))
                    .and_then(|p| p.strip_prefix('/'))?;
                let upload = !name.is_empty() && !name.contains('/');
                (upload && (post || method == Method::PUT)).then_some(FaultStep::Upload)
            }
        }
    }

    /// The steps whose rules a request is matched against (most specific first), and
    /// for object requests which kind it is; `None` for requests no fault can hit.
    fn matching(method: &Method, uri: &Uri) -> Option<(&'static [FaultStep], Option<tos::Op>)> {
        if let Some(step) = super::douyin_creator::step_of(method, uri) {
            return Some((step.alone(), None));
        }
        if let Some(step) = super::tiktok::step_of(method, uri) {
            return Some((step.alone(), None));
        }
        let step = FaultStep::of(method, uri.path())?;
        if step != FaultStep::Upload {
            let steps: &'static [FaultStep] = match step {
                FaultStep::Credentials => &[FaultStep::Credentials],
                FaultStep::UploadParams => &[FaultStep::UploadParams],
                FaultStep::Commit => &[FaultStep::Commit],
                FaultStep::Create => &[FaultStep::Create],
                FaultStep::PostList => &[FaultStep::PostList],
                FaultStep::ChallengeSug => &[FaultStep::ChallengeSug],
                FaultStep::Upload | FaultStep::UploadPart => &[FaultStep::Upload],
                other => other.alone(),
            };
            return Some((steps, None));
        }
        let op = tos::Op::of(uri.query());
        let steps: &'static [FaultStep] = if op == tos::Op::Part {
            &[FaultStep::UploadPart, FaultStep::Upload]
        } else {
            &[FaultStep::Upload]
        };
        Some((steps, Some(op)))
    }

    /// A slice of just this step.
    fn alone(self) -> &'static [FaultStep] {
        match self {
            FaultStep::Credentials => &[FaultStep::Credentials],
            FaultStep::UploadParams => &[FaultStep::UploadParams],
            FaultStep::Upload => &[FaultStep::Upload],
            FaultStep::UploadPart => &[FaultStep::UploadPart],
            FaultStep::Commit => &[FaultStep::Commit],
            FaultStep::Create => &[FaultStep::Create],
            FaultStep::PostList => &[FaultStep::PostList],
            FaultStep::ChallengeSug => &[FaultStep::ChallengeSug],
            FaultStep::Auth => &[FaultStep::Auth],
            FaultStep::ApplyUpload => &[FaultStep::ApplyUpload],
            FaultStep::TosInit => &[FaultStep::TosInit],
            FaultStep::TosPart => &[FaultStep::TosPart],
            FaultStep::TosFinish => &[FaultStep::TosFinish],
            FaultStep::CommitUpload => &[FaultStep::CommitUpload],
            FaultStep::ImagexApply => &[FaultStep::ImagexApply],
            FaultStep::ImagexUpload => &[FaultStep::ImagexUpload],
            FaultStep::ImagexCommit => &[FaultStep::ImagexCommit],
            FaultStep::CreateV2 => &[FaultStep::CreateV2],
            FaultStep::WorkList => &[FaultStep::WorkList],
            FaultStep::TiktokToken => &[FaultStep::TiktokToken],
            FaultStep::TiktokCreatorInfo => &[FaultStep::TiktokCreatorInfo],
            FaultStep::TiktokInit => &[FaultStep::TiktokInit],
            FaultStep::TiktokChunk => &[FaultStep::TiktokChunk],
            FaultStep::TiktokStatus => &[FaultStep::TiktokStatus],
        }
    }

    /// The snake_case name used in JSON and YAML.
    pub fn name(self) -> &'static str {
        match self {
            FaultStep::Credentials => "credentials",
            FaultStep::UploadParams => "upload_params",
            FaultStep::Upload => "upload",
            FaultStep::UploadPart => "upload_part",
            FaultStep::Commit => "commit",
            FaultStep::Create => "create",
            FaultStep::PostList => "post_list",
            FaultStep::ChallengeSug => "challenge_sug",
            FaultStep::Auth => "auth",
            FaultStep::ApplyUpload => "apply_upload",
            FaultStep::TosInit => "tos_init",
            FaultStep::TosPart => "tos_part",
            FaultStep::TosFinish => "tos_finish",
            FaultStep::CommitUpload => "commit_upload",
            FaultStep::ImagexApply => "imagex_apply",
            FaultStep::ImagexUpload => "imagex_upload",
            FaultStep::ImagexCommit => "imagex_commit",
            FaultStep::CreateV2 => "create_v2",
            FaultStep::WorkList => "work_list",
            FaultStep::TiktokToken => "tiktok_token",
            FaultStep::TiktokCreatorInfo => "tiktok_creator_info",
            FaultStep::TiktokInit => "tiktok_init",
            FaultStep::TiktokChunk => "tiktok_chunk",
            FaultStep::TiktokStatus => "tiktok_status",
        }
    }
}

impl fmt::Display for FaultStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What a fault does to a request.
///
/// In JSON and YAML an action is a map tagged by `kind`
/// (`{kind: status, status: 503, retry_after: 2}`, `{kind: delay, ms: 200}`,
/// `{kind: body, body: {status_code: 8}}`); the actions without fields may also be
/// written as a bare name (`reset`, `drop_answer`, `hold`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
#[serde(remote = "Self")]
pub enum FaultAction {
    /// Answer with this HTTP status instead of doing the work, with `Retry-After: N`
    /// seconds if given, and this JSON body (else a failure body in the step's style).
    Status {
        #[serde(deserialize_with = "http_status")]
        status: u16,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retry_after: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        body: Option<Value>,
    },
    /// Answer HTTP 200 with this JSON instead of doing the work (e.g. `{"status_code": 8}`).
    Body { body: Value },
    /// Close the connection without an answer, before doing the work.
    Reset,
    /// Wait this many milliseconds, then do the work normally.
    Delay { ms: u64 },
    /// Do the work (its state change happens), then close without an answer.
    DropAnswer,
    /// Do the work, then send the answer's head and first bytes and close: the answer is
    /// lost mid-way. A browser re-sends a request whose reused connection closed before
    /// any answer (Chromium does, even a POST), so for requests made from a page
    /// (`douyin`) this is how an answer is lost for good.
    CutAnswer,
    /// Wait until released (`POST /__sandbox/release`), then do the work.
    Hold,
    /// `post_list` and `work_list` only: answer as usual, but without the posts created less than this
    /// many milliseconds ago (sandbox time), as a list that lags behind does.
    Lag { ms: u64 },
}

fn http_status<'de, D: Deserializer<'de>>(d: D) -> Result<u16, D::Error> {
    let n = u16::deserialize(d)?;
    if (100..=599).contains(&n) {
        Ok(n)
    } else {
        Err(de::Error::custom(format!(
            "status: {n} is not an HTTP status (100..=599)"
        )))
    }
}

impl Serialize for FaultAction {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        FaultAction::serialize(self, s)
    }
}

impl<'de> Deserialize<'de> for FaultAction {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ActionVisitor)
    }
}

/// Accepts a bare name for the actions without fields, else the tagged map.
struct ActionVisitor;

const KINDS: &[&str] = &[
    "status",
    "body",
    "reset",
    "delay",
    "drop_answer",
    "hold",
    "lag",
];

impl<'de> Visitor<'de> for ActionVisitor {
    type Value = FaultAction;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a fault action: reset, drop_answer, hold, or a map with `kind`")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<FaultAction, E> {
        match v {
            "reset" => Ok(FaultAction::Reset),
            "drop_answer" => Ok(FaultAction::DropAnswer),
            "cut_answer" => Ok(FaultAction::CutAnswer),
            "hold" => Ok(FaultAction::Hold),
            "status" => Err(E::custom(
                "action `status` needs fields: {kind: status, status: 503}",
            )),
            "body" => Err(E::custom(
                "action `body` needs fields: {kind: body, body: {status_code: 8}}",
            )),
            "delay" => Err(E::custom(
                "action `delay` needs fields: {kind: delay, ms: 500}",
            )),
            "lag" => Err(E::custom(
                "action `lag` needs fields: {kind: lag, ms: 5000}",
            )),
            other => Err(E::unknown_variant(other, KINDS)),
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<FaultAction, A::Error> {
        let map = serde_json::Map::<String, Value>::deserialize(
            de::value::MapAccessDeserializer::new(map),
        )?;
        // serde lets extra keys pass on the actions without fields; we do not.
        let bare = matches!(
            map.get("kind").and_then(Value::as_str),
            Some("reset" | "drop_answer" | "hold")
        );
        if let Some(extra) = map.keys().find(|k| bare && *k != "kind") {
            return Err(de::Error::custom(format!(
                "unknown field `{extra}`: this action has no fields"
            )));
        }
        FaultAction::deserialize(Value::Object(map)).map_err(de::Error::custom)
    }
}

impl FaultAction {
    /// A short description for logs (no bodies).
    fn summary(&self) -> String {
        match self {
            FaultAction::Status {
                status,
                retry_after,
                ..
            } => match retry_after {
                Some(s) => format!("status {status} (Retry-After {s})"),
                None => format!("status {status}"),
            },
            FaultAction::Body { .. } => "body".to_owned(),
            FaultAction::Reset => "reset".to_owned(),
            FaultAction::Delay { ms } => format!("delay {ms} ms"),
            FaultAction::DropAnswer => "drop_answer".to_owned(),
            FaultAction::CutAnswer => "cut_answer".to_owned(),
            FaultAction::Hold => "hold".to_owned(),
            FaultAction::Lag { ms } => format!("lag {ms} ms"),
        }
    }
}

/// One rule: on `step`, after skipping `after` requests, do `action` `times` times.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fault {
    pub step: FaultStep,
    pub action: FaultAction,
    /// How many requests it applies to; `None` = every one.
    #[serde(default, deserialize_with = "times")]
    pub times: Option<u32>,
    /// Requests to `step` (counted from when the rule was added) it lets through first.
    #[serde(default)]
    pub after: u32,
}

fn times<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    match Option::<u32>::deserialize(d)? {
        Some(0) => Err(de::Error::custom(
            "times: must be at least 1 (leave it out for every time)",
        )),
        t => Ok(t),
    }
}

impl Fault {
    /// `action` on every request to `step`.
    pub fn new(step: FaultStep, action: FaultAction) -> Fault {
        Fault {
            step,
            action,
            times: None,
            after: 0,
        }
    }

    /// Apply only `n` times.
    pub fn times(mut self, n: u32) -> Fault {
        self.times = Some(n);
        self
    }

    /// Let the first `n` requests through.
    pub fn after(mut self, n: u32) -> Fault {
        self.after = n;
        self
    }
}

/// A rule and how it has been used.
#[derive(Debug)]
struct Rule {
    fault: Fault,
    /// Requests to the rule's step seen since it was added.
    seen: u32,
    /// Applications left; `None` = unlimited.
    remaining: Option<u32>,
}

/// A rule as `GET /__sandbox/faults` lists it.
#[derive(Serialize)]
struct Listed<'a> {
    #[serde(flatten)]
    fault: &'a Fault,
    seen: u32,
    remaining: Option<u32>,
}

/// The rules of one sandbox and its held requests.
#[derive(Debug)]
pub(crate) struct Faults {
    rules: Mutex<Vec<Rule>>,
    release: Notify,
    held: watch::Sender<usize>,
    /// Set on shutdown: holds end at once, without their work.
    closing: AtomicBool,
}

impl Faults {
    pub fn new(initial: Vec<Fault>) -> Faults {
        let faults = Faults {
            rules: Mutex::new(Vec::new()),
            release: Notify::new(),
            held: watch::Sender::new(0),
            closing: AtomicBool::new(false),
        };
        faults.add(initial);
        faults
    }

    fn rules(&self) -> MutexGuard<'_, Vec<Rule>> {
        self.rules.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Append rules after the existing ones.
    pub fn add(&self, faults: impl IntoIterator<Item = Fault>) {
        let mut rules = self.rules();
        for fault in faults {
            tracing::info!(step = %fault.step, action = %fault.action.summary(),
                times = ?fault.times, after = fault.after, "sandbox fault armed");
            let lists = [FaultStep::PostList, FaultStep::WorkList];
            if matches!(fault.action, FaultAction::Lag { .. }) && !lists.contains(&fault.step) {
                tracing::warn!(step = %fault.step, "a `lag` fault only changes `post_list` and `work_list`; here it does nothing");
            }
            rules.push(Rule {
                remaining: fault.times,
                seen: 0,
                fault,
            });
        }
    }

    /// Remove every rule (held requests stay held).
    pub fn clear(&self) {
        self.rules().clear();
        tracing::info!("sandbox faults cleared");
    }

    /// Count a request to `step` and return the action due for it, if any.
    #[cfg(test)]
    pub(crate) fn pick(&self, step: FaultStep) -> Option<FaultAction> {
        self.pick_any(&[step]).map(|(_, action)| action)
    }

    /// Count a request that matches each of `steps` (every rule on one of them sees it)
    /// and return the first due rule's step and action, if any.
    pub(crate) fn pick_any(&self, steps: &[FaultStep]) -> Option<(FaultStep, FaultAction)> {
        let mut rules = self.rules();
        let mut due = None;
        for rule in rules.iter_mut().filter(|r| steps.contains(&r.fault.step)) {
            rule.seen = rule.seen.saturating_add(1);
            if due.is_none() && rule.seen > rule.fault.after && rule.remaining != Some(0) {
                if let Some(n) = rule.remaining.as_mut() {
                    *n -= 1;
                }
                due = Some((rule.fault.step, rule.fault.action.clone()));
            }
        }
        due
    }

    /// The rules with their counters, as JSON.
    pub fn listing(&self) -> Value {
        let rules = self.rules();
        let list: Vec<Listed<'_>> = rules
            .iter()
            .map(|r| Listed {
                fault: &r.fault,
                seen: r.seen,
                remaining: r.remaining,
            })
            .collect();
        json!({"faults": list, "held": *self.held.borrow()})
    }

    /// Requests held right now.
    pub fn held(&self) -> usize {
        *self.held.borrow()
    }

    /// Wait until at least `n` requests are held.
    pub async fn wait_held(&self, n: usize) {
        let mut rx = self.held.subscribe();
        // The sender lives in `self`, so the channel cannot close while we wait.
        let _ = rx.wait_for(|&held| held >= n).await;
    }

    /// Let every held request go on; returns how many were held.
    pub fn release(&self) -> usize {
        let n = self.held();
        self.release.notify_waiters();
        tracing::info!(released = n, "sandbox held requests released");
        n
    }

    /// The sandbox is stopping: end every hold now, and hold nothing from now on.
    pub fn close(&self) {
        self.closing.store(true, Ordering::SeqCst);
        self.release.notify_waiters();
    }

    /// Hold here until the next [`Faults::release`] (`true`) or [`Faults::close`] (`false`).
    async fn hold(&self) -> bool {
        // Registered before `held` goes up and before `closing` is read, so a release
        // or close that comes after either still wakes us.
        let released = self.release.notified();
        if self.closing.load(Ordering::SeqCst) {
            return false;
        }
        self.held.send_modify(|h| *h += 1);
        released.await;
        self.held.send_modify(|h| *h = h.saturating_sub(1));
        !self.closing.load(Ordering::SeqCst)
    }
}

/// How far the post list lags behind new posts, for the request it is attached to (a
/// `lag` fault).
#[derive(Clone, Copy, Debug)]
pub(crate) struct ListLag(pub Duration);

/// Count a request that never reaches its handler (`op`: which object request it is).
fn count(app: &App, step: FaultStep, op: Option<tos::Op>, uri: &Uri) {
    if super::douyin_creator::count_faulted(app, step)
        || super::tiktok::count_faulted(app, step, uri)
    {
        return;
    }
    let mut st = app.lock();
    let c = &mut st.counts;
    let n = match step {
        FaultStep::Credentials => &mut c.credentials,
        FaultStep::UploadParams => &mut c.upload_params,
        FaultStep::Upload | FaultStep::UploadPart => op.unwrap_or(tos::Op::Whole).counter(c),
        FaultStep::Commit => &mut c.commit,
        FaultStep::Create => &mut c.create,
        FaultStep::PostList => &mut c.post_list,
        FaultStep::ChallengeSug => &mut c.challenge_sug,
        _ => return,
    };
    *n += 1;
}

/// A response that makes hyper drop the connection before a byte of it is written: its
/// body fails at once, while the head is still in hyper's write buffer.
fn abort() -> Response {
    let failing = futures_util::stream::iter([Err::<Bytes, _>(std::io::Error::other(
        "sandbox fault: connection dropped on purpose",
    ))]);
    Response::new(Body::from_stream(failing))
}

/// An answer whose head and first byte go out, then the connection drops.
fn cut_off(status: StatusCode) -> Response {
    use futures_util::StreamExt;
    let head = futures_util::stream::iter([Ok::<Bytes, std::io::Error>(Bytes::from_static(b"{"))]);
    // A moment between the first byte and the drop, so that it is on the wire.
    let cut = futures_util::stream::once(async {
        tokio::time::sleep(Duration::from_millis(50)).await;
        Err::<Bytes, _>(std::io::Error::other(
            "sandbox fault: answer cut off on purpose",
        ))
    });
    let mut response = Response::new(Body::from_stream(head.chain(cut)));
    *response.status_mut() = status;
    response
}

/// A failure body in the style of `step`'s endpoint.
fn default_body(step: FaultStep, status: u16) -> Value {
    if let Some(body) = super::tiktok::fault_body(step, status) {
        return body;
    }
    let message = format!("sandbox fault: HTTP {status}");
    match step {
        FaultStep::Upload | FaultStep::UploadPart => {
            json!({"success": 1, "error": {"code": status, "message": message}})
        }
        FaultStep::UploadParams | FaultStep::Commit => json!({"code": status, "message": message}),
        FaultStep::TosInit | FaultStep::TosPart | FaultStep::TosFinish => {
            json!({"code": status, "message": message})
        }
        FaultStep::ImagexUpload => {
            json!({"success": 1, "error": {"code": status, "error": message}})
        }
        FaultStep::ApplyUpload
        | FaultStep::CommitUpload
        | FaultStep::ImagexApply
        | FaultStep::ImagexCommit => {
            json!({"ResponseMetadata": {"Error": {"Code": "SandboxFault", "Message": message}}})
        }
        FaultStep::Create if status == 429 => {
            json!({"status_code": 7, "status_msg": "posting too often (sandbox fault)"})
        }
        _ => json!({"status_code": status, "status_msg": message}),
    }
}

/// Read and drop what is left of the request body (up to [`DRAIN_LIMIT`]).
async fn drain(body: Body) {
    let mut stream = body.into_data_stream();
    let mut seen = 0u64;
    while let Some(Ok(chunk)) = stream.next().await {
        seen += chunk.len() as u64;
        if seen > DRAIN_LIMIT {
            break;
        }
    }
}

/// The request with its body read into memory, so the work can run after the client
/// has gone; or the answer to give instead.
async fn buffered(req: Request) -> Result<Request, Response> {
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > BUFFER_LIMIT) {
        let body = json!({"error": format!("sandbox fault: body over {BUFFER_LIMIT} bytes cannot be held")});
        return Err((StatusCode::PAYLOAD_TOO_LARGE, Json(body)).into_response());
    }
    let (parts, body) = req.into_parts();
    let limit = usize::try_from(BUFFER_LIMIT).unwrap_or(usize::MAX);
    match axum::body::to_bytes(body, limit).await {
        Ok(bytes) => Ok(Request::from_parts(parts, Body::from(bytes))),
        Err(e) => {
            tracing::info!(error = %e, "sandbox fault: request body not received; dropping the connection");
            Err(abort())
        }
    }
}

/// Run `work` on its own task, so it finishes even if the client goes away.
async fn detached(work: impl Future<Output = Response> + Send + 'static) -> Response {
    match tokio::spawn(work).await {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(error = %e, "sandbox handler task failed");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// Middleware: apply the fault due for this request, if any.
pub(crate) async fn apply(State(app): State<App>, req: Request, next: Next) -> Response {
    let Some((steps, op)) = FaultStep::matching(req.method(), req.uri()) else {
        return next.run(req).await;
    };
    let Some((step, action)) = app.faults.pick_any(steps) else {
        return next.run(req).await;
    };
    tracing::info!(%step, action = %action.summary(), "sandbox fault injected");
    match action {
        FaultAction::Status {
            status,
            retry_after,
            body,
        } => {
            count(&app, step, op, req.uri());
            drain(req.into_body()).await;
            let code = StatusCode::from_u16(status).unwrap_or_else(|_| {
                tracing::warn!(status, "sandbox fault: not an HTTP status; answering 500");
                StatusCode::INTERNAL_SERVER_ERROR
            });
            let body = body.unwrap_or_else(|| default_body(step, code.as_u16()));
            let mut r = (code, Json(body)).into_response();
            if let Some(s) = retry_after {
                r.headers_mut().insert(RETRY_AFTER, HeaderValue::from(s));
            }
            r
        }
        FaultAction::Body { body } => {
            count(&app, step, op, req.uri());
            drain(req.into_body()).await;
            Json(body).into_response()
        }
        FaultAction::Reset => {
            count(&app, step, op, req.uri());
            abort()
        }
        FaultAction::Delay { ms } => {
            let req = match buffered(req).await {
                Ok(r) => r,
                Err(answer) => return answer,
            };
            detached(async move {
                tokio::time::sleep(Duration::from_millis(ms)).await;
                next.run(req).await
            })
            .await
        }
        FaultAction::Hold => {
            let req = match buffered(req).await {
                Ok(r) => r,
                Err(answer) => return answer,
            };
            let faults = Arc::clone(&app.faults);
            detached(async move {
                if !faults.hold().await {
                    tracing::info!(%step, "sandbox stopping: held request dropped");
                    return abort();
                }
                tracing::info!(%step, "sandbox held request released");
                next.run(req).await
            })
            .await
        }
        FaultAction::Lag { ms } => {
            let mut req = req;
            req.extensions_mut()
                .insert(ListLag(Duration::from_millis(ms)));
            next.run(req).await
        }
        FaultAction::DropAnswer => {
            let answer = detached(next.run(req)).await;
            tracing::info!(%step, status = answer.status().as_u16(), "sandbox fault: answer dropped");
            abort()
        }
        FaultAction::CutAnswer => {
            let answer = detached(next.run(req)).await;
            tracing::info!(%step, status = answer.status().as_u16(), "sandbox fault: answer cut off");
            cut_off(answer.status())
        }
    }
}

/// `GET /__sandbox/faults`: the rules with `seen` and `remaining`, and how many
/// requests are held.
pub async fn list(State(app): State<App>) -> Response {
    Json(app.faults.listing()).into_response()
}

/// `POST /__sandbox/faults`: append one rule or a list of rules; answers the listing.
pub async fn add(State(app): State<App>, body: Bytes) -> Response {
    let parsed = match serde_json::from_slice::<Value>(&body) {
        Ok(v @ Value::Array(_)) => serde_json::from_value::<Vec<Fault>>(v),
        Ok(v) => serde_json::from_value::<Fault>(v).map(|f| vec![f]),
        Err(e) => Err(e),
    };
    match parsed {
        Ok(faults) => {
            app.faults.add(faults);
            Json(app.faults.listing()).into_response()
        }
        Err(e) => {
            let body = json!({"error": format!("not a fault or a list of faults: {e}")});
            (StatusCode::BAD_REQUEST, Json(body)).into_response()
        }
    }
}

/// `DELETE /__sandbox/faults`: remove every rule.
pub async fn clear(State(app): State<App>) -> Response {
    app.faults.clear();
    Json(app.faults.listing()).into_response()
}

/// `POST /__sandbox/release`: every held request goes on.
pub async fn release(State(app): State<App>) -> Response {
    Json(json!({"released": app.faults.release()})).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yaml(text: &str) -> Result<Vec<Fault>, String> {
        serde_yaml::from_str(text).map_err(|e| e.to_string())
    }

    #[test]
    fn yaml_list_in_every_form() {
        let faults = yaml(
            "- {step: create, action: drop_answer, times: 1}\n\
             - {step: upload, action: {kind: reset}, after: 2}\n\
             - step: create\n  action: {kind: status, status: 429, retry_after: 3}\n\
             - {step: credentials, action: {kind: body, body: {status_code: 8}}}\n\
             - {step: commit, action: {kind: delay, ms: 20}}\n\
             - {step: post_list, action: hold}\n\
             - {step: post_list, action: {kind: lag, ms: 3000}}\n",
        )
        .expect("parses");
        assert_eq!(
            faults,
            vec![
                Fault::new(FaultStep::Create, FaultAction::DropAnswer).times(1),
                Fault::new(FaultStep::Upload, FaultAction::Reset).after(2),
                Fault::new(
                    FaultStep::Create,
                    FaultAction::Status {
                        status: 429,
                        retry_after: Some(3),
                        body: None
                    }
                ),
                Fault::new(
                    FaultStep::Credentials,
                    FaultAction::Body {
                        body: json!({"status_code": 8})
                    }
                ),
                Fault::new(FaultStep::Commit, FaultAction::Delay { ms: 20 }),
                Fault::new(FaultStep::PostList, FaultAction::Hold),
                Fault::new(FaultStep::PostList, FaultAction::Lag { ms: 3000 }),
            ]
        );
    }

    #[test]
    fn json_round_trips() {
        let f = Fault::new(
            FaultStep::ChallengeSug,
            FaultAction::Status {
                status: 503,
                retry_after: None,
                body: Some(json!({"x": 1})),
            },
        )
        .times(2)
        .after(1);
        let text = serde_json::to_string(&f).expect("serializes");
        assert_eq!(serde_json::from_str::<Fault>(&text).expect("parses"), f);
        let reset = serde_json::to_value(Fault::new(FaultStep::Upload, FaultAction::Reset))
            .expect("serializes");
        assert_eq!(reset["action"], json!({"kind": "reset"}));
        assert_eq!(reset["step"], json!("upload"));
    }

    #[test]
    fn mistakes_are_named() {
        let err = |t: &str| yaml(t).expect_err(t);
        assert!(err("- {step: create, action: reset, tims: 1}").contains("tims"));
        assert!(err("- {step: creat, action: reset}").contains("creat"));
        assert!(err("- {step: create, action: explode}").contains("explode"));
        assert!(err("- {step: create, action: delay}").contains("ms"));
        assert!(err("- {step: post_list, action: lag}").contains("ms"));
        assert!(err("- {step: create, action: {kind: delay, ms: 5, x: 1}}").contains("`x`"));
        assert!(err("- {step: create, action: {kind: reset, x: 1}}").contains("`x`"));
        assert!(err("- {step: create, action: {kind: nope}}").contains("nope"));
        assert!(err("- {step: create, action: {kind: status, status: 42}}").contains("42"));
        assert!(err("- {step: create, action: reset, times: 0}").contains("times"));
        assert!(err("- {step: create}").contains("action"));
    }

    fn reset_on(step: FaultStep) -> Fault {
        Fault::new(step, FaultAction::Reset)
    }

    #[test]
    fn times_after_and_order() {
        let faults = Faults::new(vec![
            reset_on(FaultStep::Create).times(1),
            Fault::new(FaultStep::Create, FaultAction::Hold)
                .times(2)
                .after(2),
        ]);
        let picks: Vec<_> = (0..6).map(|_| faults.pick(FaultStep::Create)).collect();
        assert_eq!(
            picks,
            vec![
                Some(FaultAction::Reset),
                None,
                Some(FaultAction::Hold),
                Some(FaultAction::Hold),
                None,
                None
            ]
        );
        assert_eq!(faults.pick(FaultStep::Upload), None);
        let listing = faults.listing();
        assert_eq!(listing["faults"][0]["remaining"], json!(0));
        assert_eq!(listing["faults"][1]["seen"], json!(6));
        assert_eq!(listing["held"], json!(0));
        faults.clear();
        assert_eq!(faults.listing()["faults"], json!([]));
    }

    #[test]
    fn unlimited_rule_applies_every_time() {
        let faults = Faults::new(vec![reset_on(FaultStep::Commit).after(1)]);
        assert_eq!(faults.pick(FaultStep::Commit), None);
        for _ in 0..5 {
            assert_eq!(faults.pick(FaultStep::Commit), Some(FaultAction::Reset));
        }
    }

    #[test]
    fn steps_from_requests() {
        let of = |m: Method, p: &str| FaultStep::of(&m, p);
        assert_eq!(
            of(Method::GET, "/web/api/media/upload/auth/"),
            Some(FaultStep::Credentials)
        );
        assert_eq!(
            of(Method::GET, "/video/openapi/v1/"),
            Some(FaultStep::UploadParams)
        );
        assert_eq!(
            of(Method::POST, "/video/openapi/v1/"),
            Some(FaultStep::Commit)
        );
        assert_eq!(
            of(Method::PUT, "/tos-cn-v-0000/abc"),
            Some(FaultStep::Upload)
        );
        assert_eq!(
            of(Method::POST, "/tos-cn-v-0000/abc"),
            Some(FaultStep::Upload)
        );
        assert_eq!(of(Method::GET, "/tos-cn-v-0000/abc"), None);
        assert_eq!(of(Method::POST, "/tos-cn-v-0000/"), None);
        assert_eq!(
            of(Method::POST, "/web/api/media/aweme/create/"),
            Some(FaultStep::Create)
        );
        assert_eq!(
            of(Method::GET, "/web/api/media/aweme/post/"),
            Some(FaultStep::PostList)
        );
        assert_eq!(
            of(Method::GET, "/aweme/v1/search/challengesug/"),
            Some(FaultStep::ChallengeSug)
        );
        assert_eq!(of(Method::POST, "/__sandbox/faults"), None);
    }

    #[test]
    fn part_puts_match_upload_part_and_upload_rules() {
        let m = |method: Method, uri: &str| {
            let uri: Uri = uri.parse().expect("uri");
            FaultStep::matching(&method, &uri)
        };
        let part = m(Method::PUT, "/tos-cn-v-0000/abc?partNumber=2&uploadID=u");
        assert_eq!(
            part,
            Some((
                &[FaultStep::UploadPart, FaultStep::Upload][..],
                Some(tos::Op::Part)
            ))
        );
        let init = m(Method::POST, "/tos-cn-v-0000/abc?uploads");
        assert_eq!(init, Some((&[FaultStep::Upload][..], Some(tos::Op::Init))));
        let done = m(Method::POST, "/tos-cn-v-0000/abc?uploadID=u");
        assert_eq!(
            done,
            Some((&[FaultStep::Upload][..], Some(tos::Op::Complete)))
        );
        let whole = m(Method::POST, "/tos-cn-v-0000/abc");
        assert_eq!(
            whole,
            Some((&[FaultStep::Upload][..], Some(tos::Op::Whole)))
        );
        let create = m(Method::POST, "/web/api/media/aweme/create/");
        assert_eq!(create, Some((&[FaultStep::Create][..], None)));
        assert_eq!(m(Method::GET, "/__sandbox/uploads"), None);

        // A part counts for both rules; only part PUTs count for `upload_part`.
        let faults = Faults::new(vec![
            reset_on(FaultStep::UploadPart).times(2),
            Fault::new(FaultStep::Upload, FaultAction::Hold)
                .after(3)
                .times(1),
        ]);
        let parts = [FaultStep::UploadPart, FaultStep::Upload];
        let step_of = |p: Option<(FaultStep, FaultAction)>| p.map(|(s, _)| s);
        assert_eq!(
            step_of(faults.pick_any(&parts)),
            Some(FaultStep::UploadPart)
        );
        assert_eq!(faults.pick_any(&[FaultStep::Upload]), None);
        assert_eq!(
            step_of(faults.pick_any(&parts)),
            Some(FaultStep::UploadPart)
        );
        assert_eq!(
            faults.pick_any(&parts),
            Some((FaultStep::Upload, FaultAction::Hold))
        );
        assert_eq!(faults.pick_any(&parts), None);
        let listing = faults.listing();
        assert_eq!(listing["faults"][0]["seen"], json!(4));
        assert_eq!(listing["faults"][1]["seen"], json!(5));
        assert_eq!(listing["faults"][0]["step"], json!("upload_part"));
    }

    #[tokio::test]
    async fn release_wakes_every_held_request() {
        let faults = Arc::new(Faults::new(Vec::new()));
        let tasks: Vec<_> = (0..2)
            .map(|_| {
                let f = Arc::clone(&faults);
                tokio::spawn(async move { assert!(f.hold().await, "released") })
            })
            .collect();
        faults.wait_held(2).await;
        assert_eq!(faults.release(), 2);
        for t in tasks {
            t.await.expect("hold ends");
        }
        assert_eq!(faults.held(), 0);
    }

    #[tokio::test]
    async fn close_ends_holds_without_release() {
        let faults = Arc::new(Faults::new(Vec::new()));
        let f = Arc::clone(&faults);
        let held = tokio::spawn(async move { f.hold().await });
        faults.wait_held(1).await;
        faults.close();
        assert!(!held.await.expect("hold ends"), "closed, not released");
        assert!(!faults.hold().await, "no hold after close");
        assert_eq!(faults.held(), 0);
    }
}
