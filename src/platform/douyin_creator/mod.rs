//! The `douyin` client: docs/douyin-creator.md. Steps 1, 5 and 6 go through the account's
//! logged-in creator page ([`InPage`]), whose own script signs them; steps 2–4 go from
//! dropcast straight to the VOD and TOS hosts over plain HTTP, SigV4-signed (`sigv4`) and
//! streamed from the open video in parallel parts (`tos`). Every answer is sorted into
//! the error classes of the page; every name is in `wire`.

use std::num::NonZeroU64;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use reqwest::header::RETRY_AFTER;
use reqwest::{RequestBuilder, StatusCode, Url};

use super::body::{self, Pacing};
use super::in_page::InPage;
use super::ratelimit::RateLimiter;
use super::{PublishError, RetryPolicy, SettingsError};
use crate::domain::Post;
use crate::progress::Progress;

mod backend;
#[cfg(test)]
mod fake;
mod imagex;
mod page;
mod sigv4;
mod sts;
mod tos;
mod vod;
pub(crate) mod wire;

pub(crate) use backend::{DouyinCreatorBackend, STEPS};
pub use sts::StsCredentials;
pub use tos::UploadSlot;
pub use vod::CommittedVideo;
pub use wire::{CreateExtras, Declaration};

/// A post by its id, with its public address (docs/douyin-creator.md §5).
pub fn post(item_id: &str) -> Post {
    Post::live(item_id, format!("{}{item_id}", wire::POST_URL_PREFIX))
}

/// Uploads get `timeout` plus one second per this many bytes, so a slow link can finish
/// a large part while a stalled one still fails.
const UPLOAD_MIN_BYTES_PER_SEC: u64 = 64 * 1024;

/// Where the platform is and how to talk to it.
#[derive(Clone, Debug)]
pub struct CreatorSettings {
    pub creator_url: Url,
    pub vod_url: Url,
    /// ImageX, for a custom cover image (§12).
    pub imagex_url: Url,
    /// `http` or `https`: the scheme of the upload hosts step 2 names.
    pub upload_scheme: String,
    /// Per request; parts get extra time in proportion to their size.
    pub timeout: Duration,
    pub retry: RetryPolicy,
    /// Bytes per second over all uploads of this client; `None` = unlimited.
    pub max_rate: Option<u64>,
    /// Parts in flight at once.
    pub parallel_parts: usize,
}

/// The `douyin` client. Cheap to clone.
#[derive(Clone)]
pub struct DouyinCreator {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    page: Arc<dyn InPage>,
    creator_url: Url,
    vod_url: Url,
    imagex_url: Url,
    upload_scheme: String,
    timeout: Duration,
    retry: RetryPolicy,
    limiter: Option<Arc<RateLimiter>>,
    max_rate: Option<NonZeroU64>,
    chunk: usize,
    parallel_parts: usize,
}

impl std::fmt::Debug for DouyinCreator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DouyinCreator")
            .field("creator_url", &self.inner.creator_url.as_str())
            .field("vod_url", &self.inner.vod_url.as_str())
            .finish_non_exhaustive()
    }
}

/// The requests the client makes, for log lines, error reasons and how a lost answer counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Call {
    Auth,
    ApplyUpload,
    TosInit,
    TosPart,
    TosFinish,
    Commit,
    /// §12: ApplyImageUpload, the image's upload, CommitImageUpload.
    ImageApply,
    ImageUpload,
    ImageCommit,
    Create,
    WorkList,
    ChallengeSug,
    /// Who the session is (ours: for `dropcast accounts`).
    UserInfo,
}

impl Call {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Call::Auth => "upload_auth",
            Call::ApplyUpload => "apply_upload",
            Call::TosInit => "tos_init",
            Call::TosPart => "tos_part",
            Call::TosFinish => "tos_finish",
            Call::Commit => "commit",
            Call::ImageApply => "imagex_apply",
            Call::ImageUpload => "imagex_upload",
            Call::ImageCommit => "imagex_commit",
            Call::Create => "create_v2",
            Call::WorkList => "work_list",
            Call::ChallengeSug => "challenge_sug",
            Call::UserInfo => "user_info",
        }
    }

    /// A lost or unreadable answer to this call leaves its outcome unknown.
    fn lost_answer_is_unknown(self) -> bool {
        self == Call::Create
    }
}

pub(crate) use super::answer::{bad_answer, parse, rejected};

impl super::answer::WireCall for Call {
    fn name(self) -> &'static str {
        Call::name(self)
    }
    fn lost_answer_is_unknown(self) -> bool {
        Call::lost_answer_is_unknown(self)
    }
}

/// 429 and 5xx, which mean the same everywhere.
pub(crate) fn common_status(
    call: Call,
    status: u16,
    retry_after: Option<Duration>,
) -> Result<(), PublishError> {
    if status == 429 {
        return Err(PublishError::RateLimited { retry_after });
    }
    if (500..600).contains(&status) {
        return Err(PublishError::Transient {
            reason: format!("{}: HTTP {status}", call.name()),
            retry_after,
        });
    }
    Ok(())
}

/// The platform's message with every secret of the request blanked out.
pub(crate) fn redacted(msg: Option<&str>, secrets: &[&str]) -> String {
    let mut text = match msg {
        Some(m) if !m.is_empty() => m.to_owned(),
        _ => "(no message)".to_owned(),
    };
    for s in secrets.iter().filter(|s| s.len() >= 4) {
        text = text.replace(s, "[redacted]");
    }
    text
}

/// One HTTP answer (steps 2–4), read to the end.
pub(crate) struct Reply {
    pub status: StatusCode,
    pub retry_after: Option<Duration>,
    pub body: Bytes,
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

/// `url` with `pairs` as its query, in order.
fn with_query<K: AsRef<str>, V: AsRef<str>>(mut url: Url, pairs: &[(K, V)]) -> Url {
    url.set_query(None);
    if !pairs.is_empty() {
        let mut q = url.query_pairs_mut();
        for (k, v) in pairs {
            q.append_pair(k.as_ref(), v.as_ref());
        }
    }
    url
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
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        reason.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    PublishError::Transient {
        reason,
        retry_after: None,
    }
}

impl DouyinCreator {
    /// Closes the pages (the browsers) the in-page requests went through.
    pub(crate) fn close_pages(&self) -> super::BoxFuture<'_, ()> {
        self.inner.page.close_all()
    }

    /// Lets go of `account`'s page until the next in-page request.
    pub(crate) async fn release_page(&self, account: &str) {
        self.inner.page.release(account).await;
    }

    /// The client for `settings`, sending steps 1, 5 and 6 from `page`.
    pub fn new(
        settings: CreatorSettings,
        page: Arc<dyn InPage>,
    ) -> Result<DouyinCreator, SettingsError> {
        let CreatorSettings {
            creator_url,
            vod_url,
            imagex_url,
            upload_scheme,
            timeout,
            retry,
            max_rate,
            parallel_parts,
        } = settings;
        if upload_scheme != "http" && upload_scheme != "https" {
            return Err(SettingsError::UploadScheme(upload_scheme));
        }
        let max_rate = match max_rate {
            None => None,
            Some(rate) => Some(NonZeroU64::new(rate).ok_or(SettingsError::MaxRate)?),
        };
        for (key, url) in [
            ("douyin.creator_url", &creator_url),
            ("douyin.vod_url", &vod_url),
            ("douyin.imagex_url", &imagex_url),
        ] {
            if !matches!(url.scheme(), "http" | "https") || url.cannot_be_a_base() {
                return Err(SettingsError::BaseUrl {
                    key,
                    url: url.to_string(),
                });
            }
        }
        let chunk = body::chunk_size(max_rate.map(NonZeroU64::get));
        let limiter = max_rate.map(|rate| Arc::new(RateLimiter::new(rate, chunk as u64)));
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .user_agent(concat!("dropcast/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(SettingsError::Http)?;
        Ok(DouyinCreator {
            inner: Arc::new(Inner {
                http,
                page,
                creator_url,
                vod_url,
                imagex_url,
                upload_scheme,
                timeout,
                retry,
                limiter,
                max_rate,
                chunk,
                parallel_parts: parallel_parts.max(1),
            }),
        })
    }

    /// How upload bodies are read, paced and counted into `progress`.
    fn pacing(&self, progress: &Progress) -> Pacing {
        Pacing {
            chunk: self.inner.chunk,
            limiter: self.inner.limiter.clone(),
            progress: progress.clone(),
        }
    }

    /// The time one upload request of `len` bytes may take, `streams` of them sharing the
    /// bandwidth limit.
    fn upload_timeout(&self, len: u64, streams: usize) -> Duration {
        let streams = u64::try_from(streams.max(1)).unwrap_or(u64::MAX);
        let pace = match self.inner.max_rate {
            Some(rate) => (rate.get() / streams / 2).clamp(1, UPLOAD_MIN_BYTES_PER_SEC),
            None => UPLOAD_MIN_BYTES_PER_SEC,
        };
        self.inner.timeout + Duration::from_secs(len / pace)
    }

    /// Sends one request (steps 2–4) and reads the whole answer, at most
    /// [`wire::MAX_ANSWER_BYTES`] of it.
    async fn exchange(&self, call: Call, req: RequestBuilder) -> Result<Reply, PublishError> {
        tracing::debug!(step = call.name(), "request");
        let mut resp = req.send().await.map_err(|e| transport_error(call, &e))?;
        let status = resp.status();
        let retry_after = resp
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let mut body = bytes::BytesMut::new();
        let too_large = || {
            bad_answer(
                call,
                format_args!(
                    "the answer is larger than {} bytes; not read",
                    wire::MAX_ANSWER_BYTES
                ),
            )
        };
        if resp
            .content_length()
            .is_some_and(|n| n > wire::MAX_ANSWER_BYTES as u64)
        {
            return Err(too_large());
        }
        loop {
            match resp.chunk().await {
                Ok(Some(chunk)) => {
                    if body.len() + chunk.len() > wire::MAX_ANSWER_BYTES {
                        return Err(too_large());
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                // The status alone says enough for these.
                Err(_) if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS => {
                    break;
                }
                Err(e) => return Err(transport_error(call, &e)),
            }
        }
        tracing::debug!(step = call.name(), %status, "response");
        Ok(Reply {
            status,
            retry_after,
            body: body.freeze(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_keep_a_base_path_and_queries_keep_their_order() {
        let base = Url::parse("http://127.0.0.1:1/prefix/").unwrap();
        let url = with_query(
            endpoint(&base, wire::PATH_WORK_LIST),
            &[("status", "0"), ("page_size", "20")],
        );
        assert_eq!(
            url.as_str(),
            "http://127.0.0.1:1/prefix/janus/douyin/creator/pc/work_list?status=0&page_size=20"
        );
    }

    #[test]
    fn platform_messages_lose_the_secrets_they_quote() {
        assert_eq!(
            redacted(Some("bad token STS2abc for AKTP"), &["STS2abc", "AKTP"]),
            "bad token [redacted] for [redacted]"
        );
        assert_eq!(redacted(None, &[]), "(no message)");
    }
}
