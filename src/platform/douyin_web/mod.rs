//! The `douyin-web` client: docs/douyin-web.md steps 1–5 and 6a/6b over HTTP, each answer
//! sorted into the error classes of §7, with retries where a retry is safe.

use std::num::NonZeroU64;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use reqwest::{Method, RequestBuilder, StatusCode, Url};
use serde::de::DeserializeOwned;

use super::backoff::retrying;
use super::body::{self, Check, Pacing, Range, Sent};
use super::ratelimit::RateLimiter;
use super::wire;
use super::{
    Account, ClientSettings, Created, Expired, PublishError, RetryPolicy, SettingsError, Upload,
    UploadCredentials, UploadTarget,
};
use crate::domain::{Post, PostDraft};
use crate::progress::Progress;
use crate::secret::Secret;
use crate::video::VideoFile;

mod backend;

pub(crate) use backend::{DouyinWebBackend, STEPS, UploadSettings};

/// A post by its `aweme_id`, with its public address (docs/douyin-web.md §5).
pub(crate) fn post(aweme_id: &str) -> Post {
    Post::live(aweme_id, format!("{}{aweme_id}", wire::POST_URL_PREFIX))
}

/// Uploads get `timeout` plus one second per this many bytes, so a slow link can finish
/// a large file while a stalled one still fails.
const UPLOAD_MIN_BYTES_PER_SEC: u64 = 64 * 1024;

/// The Douyin creator-web client. Cheap to clone.
#[derive(Clone)]
pub struct DouyinWeb {
    pub(super) inner: Arc<Inner>,
}

pub(super) struct Inner {
    pub(super) http: reqwest::Client,
    creator_url: Url,
    vod_url: Url,
    upload_scheme: String,
    timeout: Duration,
    pub(super) retry: RetryPolicy,
    /// `upload.max_rate`, shared by every upload stream of this client.
    limiter: Option<Arc<RateLimiter>>,
    max_rate: Option<NonZeroU64>,
    /// Read size of upload bodies.
    chunk: usize,
}

impl std::fmt::Debug for DouyinWeb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DouyinWeb")
            .field("creator_url", &self.inner.creator_url.as_str())
            .field("vod_url", &self.inner.vod_url.as_str())
            .finish_non_exhaustive()
    }
}

/// The calls the client makes, for log lines, error reasons and how a lost answer counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Call {
    Credentials,
    UploadParams,
    Upload,
    StartMultipart,
    UploadPart,
    FinishMultipart,
    Commit,
    Publish,
    ListPosts,
    Challenge,
}

impl Call {
    pub(super) fn name(self) -> &'static str {
        match self {
            Call::Credentials => "credentials",
            Call::UploadParams => "upload_params",
            Call::Upload => "upload",
            Call::StartMultipart => "upload_start",
            Call::UploadPart => "upload_part",
            Call::FinishMultipart => "upload_finish",
            Call::Commit => "commit",
            Call::Publish => "publish",
            Call::ListPosts => "list_posts",
            Call::Challenge => "challenge_lookup",
        }
    }

    /// An answer to this call that cannot be read leaves its outcome unknown.
    fn lost_answer_is_unknown(self) -> bool {
        self == Call::Publish
    }
}

/// One HTTP answer, read to the end.
pub(super) struct Reply {
    status: StatusCode,
    retry_after: Option<Duration>,
    pub(super) body: Bytes,
    /// The secrets this request carried: a platform message that quotes one back must
    /// not carry it into an error (and from there into logs and receipts).
    secrets: Vec<String>,
}

impl Reply {
    /// The platform's own message, with every secret of the request blanked out.
    fn message(&self, msg: Option<&str>) -> String {
        let mut text = message_or_none(msg).to_owned();
        for secret in &self.secrets {
            if text.contains(secret.as_str()) {
                text = text.replace(secret.as_str(), "[redacted]");
            }
        }
        text
    }
}

/// The strings to blank out of answers to `req`: every sensitive header value, each value
/// inside the cookie, and `extra` (secrets sent in the body).
fn request_secrets(req: &reqwest::Request, extra: &[&Secret]) -> Vec<String> {
    let mut out: Vec<String> = extra.iter().map(|s| s.expose().to_owned()).collect();
    for value in req.headers().values().filter(|v| v.is_sensitive()) {
        let Ok(text) = value.to_str() else { continue };
        out.push(text.to_owned());
        for pair in text.split(';') {
            if let Some((_, v)) = pair.split_once('=') {
                // Short values ("1", "zh") are not secrets, and blanking them would
                // mangle the message.
                if v.trim().len() >= 8 {
                    out.push(v.trim().to_owned());
                }
            }
        }
    }
    // Longest first, so a secret is not half-blanked by a shorter one inside it.
    out.sort_by_key(|s| std::cmp::Reverse(s.len()));
    out.dedup();
    out
}

pub(super) use super::answer::{bad_answer, parse, rejected};

impl super::answer::WireCall for Call {
    fn name(self) -> &'static str {
        Call::name(self)
    }
    fn lost_answer_is_unknown(self) -> bool {
        Call::lost_answer_is_unknown(self)
    }
}

pub(super) fn secret_header(
    call: Call,
    what: &str,
    s: &Secret,
) -> Result<HeaderValue, PublishError> {
    let mut v = HeaderValue::from_str(s.expose())
        .map_err(|_| rejected(call, format_args!("{what} cannot go into an HTTP header")))?;
    v.set_sensitive(true);
    Ok(v)
}

fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let secs: u64 = headers
        .get(RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_secs(secs))
}

/// A transport error with no usable answer.
fn transport_error(call: Call, err: &reqwest::Error) -> PublishError {
    let what = if err.is_connect() {
        "cannot connect"
    } else if err.is_timeout() {
        "timed out waiting for the response"
    } else if err.is_body() {
        "the request body failed"
    } else {
        "the connection failed"
    };
    let mut reason = format!("{}: {what}", call.name());
    // The source chain names the I/O cause (refused, reset, ...) and never a header.
    let mut source = std::error::Error::source(err);
    if let Some(cause) = source {
        reason.push_str(&format!(" ({cause}"));
        source = cause.source();
        while let Some(cause) = source {
            reason.push_str(&format!(": {cause}"));
            source = cause.source();
        }
        reason.push(')');
    }
    // A request that never reached the server can be sent again, even step 5.
    if call.lost_answer_is_unknown() && !err.is_connect() {
        PublishError::Unknown { reason }
    } else {
        PublishError::Transient {
            reason,
            retry_after: None,
        }
    }
}

/// Statuses every endpoint shares: 429 and 5xx.
fn common_status(call: Call, reply: &Reply) -> Result<(), PublishError> {
    if reply.status == StatusCode::TOO_MANY_REQUESTS {
        return Err(PublishError::RateLimited {
            retry_after: reply.retry_after,
        });
    }
    if reply.status.is_server_error() {
        return Err(PublishError::Transient {
            reason: format!("{}: HTTP {}", call.name(), reply.status),
            retry_after: reply.retry_after,
        });
    }
    Ok(())
}

fn message_or_none(msg: Option<&str>) -> &str {
    match msg {
        Some(m) if !m.is_empty() => m,
        _ => "(no message)",
    }
}

/// `status_code` of the creator endpoints (docs/douyin-web.md §1, §5, §6).
fn creator_status(
    call: Call,
    reply: &Reply,
    code: i64,
    msg: Option<&str>,
) -> Result<(), PublishError> {
    match code {
        wire::STATUS_OK => Ok(()),
        wire::STATUS_TOO_OFTEN => Err(PublishError::RateLimited { retry_after: None }),
        wire::STATUS_NOT_LOGGED_IN => Err(PublishError::AuthExpired {
            what: Expired::Cookie,
            reason: format!(
                "{}: not logged in (status_code 8: {})",
                call.name(),
                reply.message(msg)
            ),
        }),
        other => Err(rejected(
            call,
            format_args!("status_code {other}: {}", reply.message(msg)),
        )),
    }
}

/// A creator-endpoint answer: HTTP status, then `status_code`, then the body as `T`.
fn creator_answer<T: DeserializeOwned>(call: Call, reply: &Reply) -> Result<T, PublishError> {
    common_status(call, reply)?;
    if reply.status == StatusCode::UNAUTHORIZED {
        return Err(PublishError::AuthExpired {
            what: Expired::Cookie,
            reason: format!("{}: HTTP 401", call.name()),
        });
    }
    let status: Option<wire::StatusOnly> = serde_json::from_slice(&reply.body).ok();
    if !reply.status.is_success() {
        if let Some(s) = status.filter(|s| s.status_code != wire::STATUS_OK) {
            creator_status(call, reply, s.status_code, s.status_msg.as_deref())?;
        }
        return Err(rejected(call, format_args!("HTTP {}", reply.status)));
    }
    let Some(status) = status else {
        return Err(parse::<wire::StatusOnly>(call, &reply.body)
            .err()
            .unwrap_or_else(|| bad_answer(call, "no status_code")));
    };
    creator_status(
        call,
        reply,
        status.status_code,
        status.status_msg.as_deref(),
    )?;
    parse(call, &reply.body)
}

/// A VOD answer (steps 2 and 4): HTTP status, then `code`, then `data` as `T`.
fn vod_answer<T: DeserializeOwned>(call: Call, reply: &Reply) -> Result<T, PublishError> {
    common_status(call, reply)?;
    if reply.status == StatusCode::UNAUTHORIZED {
        return Err(PublishError::AuthExpired {
            what: Expired::UploadCredentials,
            reason: format!("{}: HTTP 401", call.name()),
        });
    }
    let code: Option<wire::VodCode> = serde_json::from_slice(&reply.body).ok();
    match code {
        Some(c) if c.code == wire::VOD_AUTH_EXPIRED => Err(PublishError::AuthExpired {
            what: Expired::UploadCredentials,
            reason: format!(
                "{}: code 4001: {}",
                call.name(),
                reply.message(c.message.as_deref())
            ),
        }),
        Some(c) if c.code != wire::VOD_OK => Err(rejected(
            call,
            format_args!("code {}: {}", c.code, reply.message(c.message.as_deref())),
        )),
        _ if !reply.status.is_success() => {
            Err(rejected(call, format_args!("HTTP {}", reply.status)))
        }
        None => Err(parse::<wire::VodCode>(call, &reply.body)
            .err()
            .unwrap_or_else(|| bad_answer(call, "no code"))),
        Some(_) => {
            let env: wire::VodEnvelope<T> = parse(call, &reply.body)?;
            env.data.ok_or_else(|| bad_answer(call, "no `data`"))
        }
    }
}

/// A TOS answer (step 3): `success` 0 with a 2xx, else the error it names.
pub(super) fn tos_answer(call: Call, reply: &Reply) -> Result<(), PublishError> {
    common_status(call, reply)?;
    if reply.status == StatusCode::UNAUTHORIZED {
        return Err(PublishError::AuthExpired {
            what: Expired::UploadCredentials,
            reason: format!("{}: HTTP 401 (tos_sign expired or invalid)", call.name()),
        });
    }
    let tos: Option<wire::TosResponse> = serde_json::from_slice(&reply.body).ok();
    match tos {
        Some(t) if t.success == wire::TOS_OK && reply.status.is_success() => Ok(()),
        Some(t) => {
            let (code, msg) = t.error.map(|e| (e.code, e.message)).unwrap_or((None, None));
            Err(rejected(
                call,
                format_args!(
                    "HTTP {}, success {}, error code {}: {}",
                    reply.status,
                    t.success,
                    code.map_or_else(|| "-".to_owned(), |c| c.to_string()),
                    reply.message(msg.as_deref())
                ),
            ))
        }
        None if reply.status.is_success() => Err(parse::<wire::TosResponse>(call, &reply.body)
            .err()
            .unwrap_or_else(|| bad_answer(call, "no `success`"))),
        None => Err(rejected(call, format_args!("HTTP {}", reply.status))),
    }
}

/// The video is not what was fingerprinted any more: no retry helps, the job starts over.
pub(super) fn changed(call: Call, why: impl std::fmt::Display) -> PublishError {
    PublishError::Changed {
        reason: format!("{}: {why}", call.name()),
    }
}

/// The open video must be as long as what was hashed; else it changed since.
pub(super) fn hashed_size(call: Call, video: &VideoFile, size: u64) -> Result<(), PublishError> {
    if video.size() == size {
        return Ok(());
    }
    Err(changed(
        call,
        format_args!(
            "{} is {} bytes, {size} were hashed",
            video.path().display(),
            video.size()
        ),
    ))
}

/// One upload attempt's outcome, with the file check first: a body cut off because the
/// file changed is [`PublishError::Changed`] whatever the connection made of it.
pub(super) fn checked_upload<T>(
    call: Call,
    check: &Check,
    result: Result<T, PublishError>,
) -> Result<T, PublishError> {
    match check.failed() {
        Some(why) => Err(changed(call, why)),
        None => result,
    }
}

/// `base` with `path` appended to its own path, no query.
fn endpoint(base: &Url, path: &str) -> Url {
    let mut url = base.clone();
    let joined = format!("{}{}", base.path().trim_end_matches('/'), path);
    url.set_path(&joined);
    url.set_query(None);
    url.set_fragment(None);
    url
}

/// Percent-encodes `oid` for a URL path, keeping every `/` (it is a path, docs/douyin-web.md §2).
fn encode_oid(oid: &str) -> String {
    let mut out = String::with_capacity(oid.len());
    for b in oid.bytes() {
        let keep = b.is_ascii_alphanumeric() || b"/-._~!$&'()*+,;=:@".contains(&b);
        if keep {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `{scheme}://{tos_host}/{oid}`, refusing what would not name that exact object.
fn object_url(scheme: &str, tos_host: &str, oid: &str) -> Result<Url, String> {
    let host_ok = !tos_host.is_empty()
        && !tos_host
            .chars()
            .any(|c| c.is_whitespace() || "/?#@\\".contains(c));
    if !host_ok {
        return Err("tos_host is not a bare host[:port]".to_owned());
    }
    if oid.is_empty() || oid.split('/').any(|seg| seg == "." || seg == "..") {
        return Err("oid is empty or has a `.`/`..` segment".to_owned());
    }
    let url = Url::parse(&format!("{scheme}://{tos_host}/{}", encode_oid(oid)))
        .map_err(|e| format!("object URL does not parse: {e}"))?;
    if url.host_str().is_none_or(str::is_empty) {
        return Err("tos_host is not a bare host[:port]".to_owned());
    }
    Ok(url)
}

/// Why an answer's body was not read.
enum Capped {
    TooLarge,
    Http(reqwest::Error),
}

/// The answer's body, read chunk by chunk and never more than `cap` bytes of it: a body
/// that says (or turns out) to be larger is refused, not buffered.
async fn read_capped(mut resp: reqwest::Response, cap: usize) -> Result<Bytes, Capped> {
    if resp
        .content_length()
        .is_some_and(|n| n > u64::try_from(cap).unwrap_or(u64::MAX))
    {
        return Err(Capped::TooLarge);
    }
    let mut body = bytes::BytesMut::new();
    while let Some(chunk) = resp.chunk().await.map_err(Capped::Http)? {
        if body.len() + chunk.len() > cap {
            return Err(Capped::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

fn non_empty(field: Option<String>) -> Option<String> {
    field.filter(|s| !s.is_empty())
}

impl DouyinWeb {
    pub fn new(settings: ClientSettings) -> Result<DouyinWeb, SettingsError> {
        let ClientSettings {
            creator_url,
            vod_url,
            upload_scheme,
            timeout,
            retry,
            max_rate,
        } = settings;
        if upload_scheme != "http" && upload_scheme != "https" {
            return Err(SettingsError::UploadScheme(upload_scheme));
        }
        let max_rate = match max_rate {
            None => None,
            Some(rate) => Some(NonZeroU64::new(rate).ok_or(SettingsError::MaxRate)?),
        };
        let chunk = body::chunk_size(max_rate.map(NonZeroU64::get));
        // One chunk of burst: a stream never waits for the first chunk after idling.
        let limiter = max_rate.map(|rate| Arc::new(RateLimiter::new(rate, chunk as u64)));
        for (key, url) in [("creator_url", &creator_url), ("vod_url", &vod_url)] {
            if !matches!(url.scheme(), "http" | "https") || url.cannot_be_a_base() {
                return Err(SettingsError::BaseUrl {
                    key,
                    url: url.to_string(),
                });
            }
        }
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .user_agent(concat!("dropcast/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(SettingsError::Http)?;
        Ok(DouyinWeb {
            inner: Arc::new(Inner {
                http,
                creator_url,
                vod_url,
                upload_scheme,
                timeout,
                retry,
                limiter,
                max_rate,
                chunk,
            }),
        })
    }

    /// How upload bodies are read, paced and counted into `progress`.
    pub(super) fn pacing(&self, progress: &Progress) -> Pacing {
        Pacing {
            chunk: self.inner.chunk,
            limiter: self.inner.limiter.clone(),
            progress: progress.clone(),
        }
    }

    /// The time one upload request of `len` bytes may take, `streams` of them sharing the
    /// bandwidth limit: `timeout` plus the time at a slow but live pace.
    pub(super) fn upload_timeout(&self, len: u64, streams: usize) -> Duration {
        let streams = u64::try_from(streams.max(1)).unwrap_or(u64::MAX);
        let pace = match self.inner.max_rate {
            // Half the limit's share per stream: other jobs may be uploading too.
            Some(rate) => (rate.get() / streams / 2).clamp(1, UPLOAD_MIN_BYTES_PER_SEC),
            None => UPLOAD_MIN_BYTES_PER_SEC,
        };
        self.inner.timeout + Duration::from_secs(len / pace)
    }

    /// Sends one request and reads the whole answer; transport failures are classified.
    pub(super) async fn exchange(
        &self,
        call: Call,
        req: RequestBuilder,
    ) -> Result<Reply, PublishError> {
        self.exchange_with(call, req, &[]).await
    }

    /// [`exchange`](Self::exchange) for a request that also carries secrets in its body.
    async fn exchange_with(
        &self,
        call: Call,
        req: RequestBuilder,
        body_secrets: &[&Secret],
    ) -> Result<Reply, PublishError> {
        tracing::debug!(step = call.name(), "request");
        let (http, req) = req.build_split();
        let req = req.map_err(|e| transport_error(call, &e))?;
        let secrets = request_secrets(&req, body_secrets);
        let resp = http
            .execute(req)
            .await
            .map_err(|e| transport_error(call, &e))?;
        let status = resp.status();
        let retry_after = retry_after(resp.headers());
        let body = match read_capped(resp, wire::MAX_ANSWER_BYTES).await {
            Ok(body) => body,
            // The status alone says enough for these.
            Err(_) if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS => {
                Bytes::new()
            }
            Err(Capped::TooLarge) => {
                return Err(bad_answer(
                    call,
                    format_args!(
                        "the answer is larger than {} bytes; not read",
                        wire::MAX_ANSWER_BYTES
                    ),
                ));
            }
            Err(Capped::Http(e)) => return Err(transport_error(call, &e)),
        };
        tracing::debug!(step = call.name(), %status, "response");
        Ok(Reply {
            status,
            retry_after,
            body,
            secrets,
        })
    }

    /// Step 1: the VOD access key and signature for this account.
    pub async fn credentials(&self, account: &Account) -> Result<UploadCredentials, PublishError> {
        let call = Call::Credentials;
        let url = endpoint(&self.inner.creator_url, wire::PATH_UPLOAD_AUTH);
        let cookie = secret_header(call, "the cookie", account.cookie())?;
        retrying(&self.inner.retry, call.name(), || async {
            let req = self
                .inner
                .http
                .get(url.clone())
                .header(wire::H_COOKIE, cookie.clone());
            let reply = self.exchange(call, req).await?;
            let auth: wire::AuthResponse = creator_answer(call, &reply)?;
            let (Some(ak), Some(auth)) = (non_empty(auth.ak), non_empty(auth.auth)) else {
                return Err(bad_answer(call, "`ak` or `auth` missing"));
            };
            if HeaderValue::from_str(&ak).is_err() || HeaderValue::from_str(&auth).is_err() {
                return Err(bad_answer(call, "`ak` or `auth` cannot go into a header"));
            }
            Ok(UploadCredentials {
                expires_at: wire::auth_expiry(&auth),
                ak: Secret::new(ak),
                auth: Secret::new(auth),
            })
        })
        .await
    }

    fn vod_request(
        &self,
        call: Call,
        method: Method,
        url: Url,
        creds: &UploadCredentials,
    ) -> Result<RequestBuilder, PublishError> {
        Ok(self
            .inner
            .http
            .request(method, url)
            .header(
                wire::H_VOD_AUTHORIZATION,
                secret_header(call, "auth", &creds.auth)?,
            )
            .header(wire::H_VOD_ACCESS, secret_header(call, "ak", &creds.ak)?))
    }

    /// Step 2: where to upload a file of `file_size` bytes.
    pub async fn upload_target(
        &self,
        creds: &UploadCredentials,
        file_size: u64,
    ) -> Result<UploadTarget, PublishError> {
        let call = Call::UploadParams;
        let mut url = endpoint(&self.inner.vod_url, wire::PATH_VOD_OPENAPI);
        url.query_pairs_mut()
            .append_pair(wire::Q_ACTION, wire::ACTION_UPLOAD_PARAMS)
            .append_pair(wire::Q_USE_EDGE_NODE, "1")
            .append_pair(wire::Q_FILE_SIZE, &file_size.to_string());
        retrying(&self.inner.retry, call.name(), || async {
            let req = self.vod_request(call, Method::GET, url.clone(), creds)?;
            let reply = self.exchange(call, req).await?;
            let data: wire::UploadParamsData = vod_answer(call, &reply)?;
            let node = data
                .into_node()
                .map_err(|field| bad_answer(call, format_args!("`{field}` missing")))?;
            let (
                Some(vid),
                Some(oid),
                Some(tos_host),
                Some(tos_sign),
                Some(token),
                Some(extra_param),
            ) = (
                node.vid,
                node.oid,
                node.tos_host,
                node.tos_sign,
                node.token,
                node.extra_param,
            )
            else {
                return Err(bad_answer(call, "upload fields missing"));
            };
            let object_url = object_url(&self.inner.upload_scheme, &tos_host, &oid)
                .map_err(|why| bad_answer(call, why))?;
            if HeaderValue::from_str(&tos_sign).is_err() {
                return Err(bad_answer(call, "`tos_sign` cannot go into a header"));
            }
            Ok(UploadTarget {
                vid,
                oid,
                object_url,
                tos_sign: Secret::new(tos_sign),
                token: Secret::new(token),
                extra_param,
            })
        })
        .await
    }

    /// Step 3a: the whole file in one request, streamed from the open video with an exact
    /// `Content-Length` and its CRC-32. `size` and `crc32` are those the fingerprint pass
    /// found; the bytes sent are checked against `crc32` as they go, and a file that no
    /// longer matches is [`PublishError::Changed`] (the request is cut off before its last
    /// byte). `progress` is started at `size` and follows the bytes as they go out (a
    /// failed attempt's bytes are taken back before the retry).
    pub async fn upload_file(
        &self,
        target: &UploadTarget,
        video: &VideoFile,
        size: u64,
        crc32: u32,
        progress: &Progress,
    ) -> Result<(), PublishError> {
        let call = Call::Upload;
        let sign = secret_header(call, "tos_sign", &target.tos_sign)?;
        let timeout = self.upload_timeout(size, 1);
        let pacing = self.pacing(progress);
        let range = Range {
            video: video.clone(),
            offset: 0,
            len: size,
            crc32,
        };
        hashed_size(call, video, size)?;
        progress.start(size);
        retrying(&self.inner.retry, call.name(), || async {
            // A streamed body is consumed by sending it: every try makes a new one, from
            // the same open file.
            let (sent, check) = (Sent::default(), Check::default());
            let req = self
                .inner
                .http
                .post(target.object_url.clone())
                .timeout(timeout)
                .header(wire::H_TOS_AUTHORIZATION, sign.clone())
                .header(CONTENT_TYPE, wire::CT_OCTET_STREAM)
                .header(CONTENT_LENGTH, size)
                .header(wire::H_CONTENT_CRC32, wire::crc32_hex(crc32))
                .body(body::checked_body(range.clone(), &pacing, &sent, &check));
            let result = match self.exchange(call, req).await {
                Ok(reply) => tos_answer(call, &reply),
                Err(e) => Err(e),
            };
            let result = checked_upload(call, &check, result);
            if result.is_err() {
                progress.sub(sent.get());
            }
            result
        })
        .await
    }

    /// Step 4: commit the uploaded object; the answer describes the video.
    pub async fn commit(
        &self,
        creds: &UploadCredentials,
        target: &UploadTarget,
    ) -> Result<Upload, PublishError> {
        let call = Call::Commit;
        let mut url = endpoint(&self.inner.vod_url, wire::PATH_VOD_OPENAPI);
        // `extra_param` goes on verbatim after `&` (docs/douyin-web.md §4).
        url.set_query(Some(&format!(
            "{}={}&{}",
            wire::Q_ACTION,
            wire::ACTION_COMMIT,
            target.extra_param
        )));
        let body = serde_json::to_vec(&wire::CommitBody {
            vid: &target.vid,
            oid: &target.oid,
            token: target.token.expose(),
            poster_ss: 0,
            is_exact_poster: true,
            user_reference: "",
        })
        .map_err(|e| rejected(call, format_args!("cannot encode the body: {e}")))?;
        let body = Bytes::from(body);
        retrying(&self.inner.retry, call.name(), || async {
            let req = self
                .vod_request(call, Method::POST, url.clone(), creds)?
                .header(CONTENT_TYPE, "application/json")
                .body(body.clone());
            let reply = self.exchange_with(call, req, &[&target.token]).await?;
            let data: wire::CommitData = vod_answer(call, &reply)?;
            let video = data
                .video
                .ok_or_else(|| bad_answer(call, "`video` missing"))?;
            if let Some(vid) = video.vid.as_deref().filter(|v| !v.is_empty())
                && vid != target.vid
            {
                return Err(bad_answer(call, "the committed `vid` is not ours"));
            }
            Ok(Upload {
                vid: target.vid.clone(),
                oid: target.oid.clone(),
                poster_oid: data.poster.and_then(|p| non_empty(p.oid)),
                width: video.width.unwrap_or(0),
                height: video.height.unwrap_or(0),
                duration_secs: video.duration.unwrap_or(0.0),
            })
        })
        .await
    }

    /// Step 5: publish. Retried only when the request provably did not reach the server
    /// or got a 5xx/429/`status_code` 7 answer; a lost answer is `Unknown`. The platform's
    /// "this video already has a post" refusal is [`Created::AlreadyPublished`].
    pub async fn create_post(
        &self,
        account: &Account,
        upload: &Upload,
        draft: &PostDraft,
    ) -> Result<Created, PublishError> {
        let call = Call::Publish;
        let url = endpoint(&self.inner.creator_url, wire::PATH_CREATE_POST);
        let poster = upload.poster_oid.as_deref().unwrap_or(&upload.oid);
        let form = wire::create_post_form(&upload.vid, poster, draft)
            .map_err(|e| rejected(call, format_args!("cannot encode text_extra: {e}")))?;
        let body = serde_urlencoded::to_string(&form)
            .map_err(|e| rejected(call, format_args!("cannot encode the form: {e}")))?;
        let body = Bytes::from(body);
        let cookie = secret_header(call, "the cookie", account.cookie())?;
        let csrf = secret_header(call, "the csrf token", account.csrf())?;
        retrying(&self.inner.retry, call.name(), || async {
            let req = self
                .inner
                .http
                .post(url.clone())
                .header(wire::H_COOKIE, cookie.clone())
                .header(wire::H_CSRF_TOKEN, csrf.clone())
                .header(CONTENT_TYPE, wire::CT_FORM)
                .body(body.clone());
            let reply = self.exchange(call, req).await?;
            if reply.status.is_success()
                && serde_json::from_slice::<wire::StatusOnly>(&reply.body).is_ok_and(|s| {
                    wire::is_already_published(s.status_code, s.status_msg.as_deref())
                })
            {
                return Ok(Created::AlreadyPublished);
            }
            let created: wire::CreateResponse = creator_answer(call, &reply)?;
            match created.post_id() {
                Some(id) => Ok(Created::Posted(post(id))),
                None => Err(bad_answer(
                    call,
                    "status_code 0 but neither `aweme.aweme_id` nor `item_id`",
                )),
            }
        })
        .await
    }

    /// 6a: the account's post whose video is `vid`, looking back at most
    /// `LIST_MAX_PAGES` pages, newest first.
    pub async fn find_post(
        &self,
        account: &Account,
        vid: &str,
    ) -> Result<Option<Post>, PublishError> {
        let call = Call::ListPosts;
        let cookie = secret_header(call, "the cookie", account.cookie())?;
        let mut cursor: i64 = 0;
        for _ in 0..wire::LIST_MAX_PAGES {
            let mut url = endpoint(&self.inner.creator_url, wire::PATH_LIST_POSTS);
            url.query_pairs_mut()
                .append_pair(wire::Q_COUNT, &wire::LIST_PAGE_SIZE.to_string())
                .append_pair(wire::Q_MAX_CURSOR, &cursor.to_string());
            let page: wire::PostList = retrying(&self.inner.retry, call.name(), || async {
                let req = self
                    .inner
                    .http
                    .get(url.clone())
                    .header(wire::H_COOKIE, cookie.clone());
                let reply = self.exchange(call, req).await?;
                creator_answer(call, &reply)
            })
            .await?;
            let found = page
                .aweme_list
                .into_iter()
                .find(|p| p.video.as_ref().and_then(|v| v.vid.as_deref()) == Some(vid));
            if let Some(listed) = found {
                return match non_empty(listed.aweme_id) {
                    Some(aweme_id) => Ok(Some(post(&aweme_id))),
                    None => Err(bad_answer(call, "a listed post has no `aweme_id`")),
                };
            }
            match page.max_cursor {
                Some(next) if page.has_more && next != cursor => cursor = next,
                _ => return Ok(None),
            }
        }
        tracing::warn!(
            step = call.name(),
            pages = wire::LIST_MAX_PAGES,
            "post not found in the pages looked at"
        );
        Ok(None)
    }

    /// 6b: the challenge id of hashtag `name`; only an exact `cha_name` match counts.
    pub async fn challenge_id(
        &self,
        account: &Account,
        name: &str,
    ) -> Result<Option<String>, PublishError> {
        let call = Call::Challenge;
        let cookie = secret_header(call, "the cookie", account.cookie())?;
        let mut url = endpoint(&self.inner.creator_url, wire::PATH_CHALLENGE_SUG);
        url.query_pairs_mut()
            .append_pair(wire::Q_KEYWORD, name)
            .append_pair(wire::Q_SOURCE, wire::CHALLENGE_SOURCE)
            .append_pair(wire::Q_AID, wire::CHALLENGE_AID);
        let sug: wire::ChallengeSug = retrying(&self.inner.retry, call.name(), || async {
            let req = self
                .inner
                .http
                .get(url.clone())
                .header(wire::H_COOKIE, cookie.clone());
            let reply = self.exchange(call, req).await?;
            creator_answer(call, &reply)
        })
        .await?;
        Ok(sug
            .sug_list
            .unwrap_or_default()
            .into_iter()
            .find(|c| c.cha_name.as_deref() == Some(name))
            .and_then(|c| non_empty(c.cid)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_url_keeps_slashes_and_encodes_the_rest() {
        let u = object_url("http", "127.0.0.1:9000", "tos-cn-v-0000/c747 f5?x#y").unwrap();
        assert_eq!(
            u.as_str(),
            "http://127.0.0.1:9000/tos-cn-v-0000/c747%20f5%3Fx%23y"
        );
        assert_eq!(u.path(), "/tos-cn-v-0000/c747%20f5%3Fx%23y");
    }

    #[test]
    fn object_url_refuses_hosts_with_paths_and_dot_segments() {
        assert!(object_url("https", "evil.com/x", "a/b").is_err());
        assert!(object_url("https", "user@host", "a/b").is_err());
        assert!(object_url("https", "", "a/b").is_err());
        assert!(object_url("https", "h", "a/../b").is_err());
        assert!(object_url("https", "h", "").is_err());
    }

    #[test]
    fn endpoint_appends_to_a_base_path() {
        let base = Url::parse("http://127.0.0.1:1/prefix/").unwrap();
        assert_eq!(
            endpoint(&base, wire::PATH_UPLOAD_AUTH).as_str(),
            "http://127.0.0.1:1/prefix/web/api/media/upload/auth/"
        );
        let base = Url::parse("https://media.douyin.com").unwrap();
        assert_eq!(
            endpoint(&base, wire::PATH_CREATE_POST).as_str(),
            "https://media.douyin.com/web/api/media/aweme/create/"
        );
    }

    fn reply(status: u16, body: &str) -> Reply {
        Reply {
            secrets: Vec::new(),
            status: StatusCode::from_u16(status).unwrap(),
            retry_after: None,
            body: Bytes::from(body.to_owned()),
        }
    }

    #[test]
    fn creator_codes_map_to_classes() {
        let class = |status, body: &str, call| {
            creator_answer::<wire::StatusOnly>(call, &reply(status, body))
                .err()
                .map(|e| e.class())
        };
        assert_eq!(class(200, r#"{"status_code":0}"#, Call::Publish), None);
        assert_eq!(
            class(200, r#"{"status_code":7}"#, Call::Publish),
            Some("rate_limited")
        );
        assert_eq!(
            class(200, r#"{"status_code":8}"#, Call::Publish),
            Some("auth_expired")
        );
        assert_eq!(
            class(
                200,
                r#"{"status_code":2,"status_msg":"bad"}"#,
                Call::Publish
            ),
            Some("rejected")
        );
        assert_eq!(class(400, "nope", Call::Publish), Some("rejected"));
        assert_eq!(class(502, "", Call::Publish), Some("transient"));
        assert_eq!(class(200, "<html>", Call::Publish), Some("unknown"));
        assert_eq!(class(200, "<html>", Call::Credentials), Some("rejected"));
    }

    #[test]
    fn vod_and_tos_codes_map_to_classes() {
        let vod = |status, body: &str| {
            vod_answer::<wire::CommitData>(Call::Commit, &reply(status, body))
                .err()
                .map(|e| e.class())
        };
        assert_eq!(vod(200, r#"{"code":4001}"#), Some("auth_expired"));
        assert_eq!(vod(200, r#"{"code":4004,"message":"x"}"#), Some("rejected"));
        assert_eq!(vod(401, ""), Some("auth_expired"));
        assert_eq!(vod(200, r#"{"code":2000}"#), Some("rejected"));
        let tos = |status, body: &str| tos_answer(Call::Upload, &reply(status, body)).err();
        assert_eq!(tos(200, r#"{"success":0}"#), None);
        let e = tos(
            400,
            r#"{"success":1,"error":{"code":5,"message":"crc mismatch"}}"#,
        )
        .unwrap();
        assert_eq!(e.class(), "rejected");
        assert!(e.to_string().contains("crc mismatch"));
        assert_eq!(tos(401, "").unwrap().class(), "auth_expired");
        assert_eq!(tos(411, "").unwrap().class(), "rejected");
    }
}
