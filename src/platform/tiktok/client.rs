//! The Content Posting requests of docs/tiktok.md §2–§6: creator_info, init
//! (direct or inbox), one chunk's PUT and the status fetch, each answer read through the
//! envelope and sorted into [`PublishError`]'s classes. Requests count against the
//! client's own per-minute limits (`limits`) first.

use std::time::Duration;

use reqwest::header::{AUTHORIZATION, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, RETRY_AFTER};
use reqwest::{Client, Url};
use serde::de::DeserializeOwned;

use super::limits::{Endpoint, Limits};
use super::wire::{self, ChunkPlan, CreatorInfo, InitBody, PostInfo, Status};
use crate::platform::PublishError;
use crate::secret::Secret;

/// Where the API is and the HTTP client that talks to it.
pub(crate) struct Api {
    pub http: Client,
    pub api_url: Url,
    pub limits: Limits,
}

/// An init's answer (§4).
#[derive(Clone, Debug)]
pub(crate) struct Initiated {
    pub publish_id: String,
    pub upload_url: Secret,
}

/// What the upload server said to one chunk (§5).
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ChunkReply {
    /// 206: in; the server has this many bytes.
    More { received: Option<u64> },
    /// 201: every byte is in.
    Complete,
    /// 416: the range did not match; the server has this many bytes.
    Mismatch { received: Option<u64> },
    /// 403: the upload URL expired.
    Expired,
    /// 404: no such upload.
    NotFound,
}

impl Api {
    /// §3: who the creator is and what they may post.
    pub(crate) async fn creator_info(
        &self,
        account: &str,
        token: &Secret,
    ) -> Result<CreatorInfo, PublishError> {
        self.limits.acquire(account, Endpoint::CreatorInfo).await;
        self.call(wire::PATH_CREATOR_INFO, token, None, "creator_info")
            .await
    }

    /// §4: a direct post (`post_info` given) or an inbox draft (`None`). A lost answer is
    /// [`PublishError::Unknown`]: a publish_id may exist that will never get bytes.
    pub(crate) async fn init(
        &self,
        account: &str,
        token: &Secret,
        post_info: Option<&PostInfo>,
        plan: &ChunkPlan,
    ) -> Result<Initiated, PublishError> {
        self.limits.acquire(account, Endpoint::Init).await;
        let path = match post_info {
            Some(_) => wire::PATH_INIT_DIRECT,
            None => wire::PATH_INIT_INBOX,
        };
        let body = InitBody {
            post_info,
            source_info: plan.source_info(),
        };
        let body = serde_json::to_value(&body).map_err(|e| rejected(format!("init body: {e}")))?;
        let data: wire::InitData = match self.call(path, token, Some(body), "init").await {
            Err(PublishError::Transient { reason, .. }) => {
                // Sent, and no answer: TikTok may have made a publish_id (§8).
                return Err(PublishError::Unknown {
                    reason: format!("init: {reason}"),
                });
            }
            other => other?,
        };
        match (data.publish_id, data.upload_url) {
            (Some(publish_id), Some(url)) if !publish_id.is_empty() && !url.is_empty() => {
                Ok(Initiated {
                    publish_id,
                    upload_url: Secret::new(url),
                })
            }
            _ => Err(PublishError::Unknown {
                reason: "init: the answer has no publish_id or upload_url".into(),
            }),
        }
    }

    /// §6: where the post stands.
    pub(crate) async fn status(
        &self,
        account: &str,
        token: &Secret,
        publish_id: &str,
    ) -> Result<Status, PublishError> {
        self.limits.acquire(account, Endpoint::Status).await;
        let body = serde_json::to_value(wire::StatusBody { publish_id })
            .map_err(|e| rejected(format!("status body: {e}")))?;
        let data: wire::StatusData = self
            .call(wire::PATH_STATUS, token, Some(body), "status")
            .await?;
        data.status()
    }

    /// §5: one chunk's PUT to the upload URL, whole, query string included.
    pub(crate) async fn put_chunk(
        &self,
        upload_url: &Secret,
        content_type: &str,
        range: (u64, u64, u64),
        body: reqwest::Body,
        timeout: Duration,
    ) -> Result<ChunkReply, PublishError> {
        let (first, len, total) = range;
        let url = Url::parse(upload_url.expose())
            .map_err(|_| rejected("init's upload_url is not an address".into()))?;
        let response = self
            .http
            .put(url)
            .header(CONTENT_TYPE, content_type)
            .header(CONTENT_LENGTH, len)
            .header(CONTENT_RANGE, wire::content_range(first, len, total))
            .timeout(timeout)
            .body(body)
            .send()
            .await
            .map_err(|e| PublishError::Transient {
                // Never the URL: it carries the upload token.
                reason: format!("chunk at byte {first}: {}", e.without_url()),
                retry_after: None,
            })?;
        let status = response.status().as_u16();
        let received = response
            .headers()
            .get(CONTENT_RANGE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| wire::received(v, total));
        let retry_after = retry_after(&response);
        Ok(match status {
            wire::UPLOAD_PARTIAL => ChunkReply::More { received },
            wire::UPLOAD_COMPLETE => ChunkReply::Complete,
            wire::UPLOAD_RANGE_MISMATCH => ChunkReply::Mismatch { received },
            wire::UPLOAD_EXPIRED => ChunkReply::Expired,
            wire::UPLOAD_NOT_FOUND => ChunkReply::NotFound,
            429 => {
                return Err(PublishError::RateLimited {
                    retry_after: Some(retry_after.unwrap_or(wire::RATE_LIMITED_WAIT)),
                });
            }
            s if s >= 500 => {
                return Err(PublishError::Transient {
                    reason: format!("chunk at byte {first}: HTTP {s}"),
                    retry_after,
                });
            }
            s => {
                return Err(rejected(format!(
                    "the upload server refused the chunk at byte {first}: HTTP {s}"
                )));
            }
        })
    }

    /// One JSON request under the §2 envelope.
    async fn call<T: DeserializeOwned>(
        &self,
        path: &str,
        token: &Secret,
        body: Option<serde_json::Value>,
        what: &str,
    ) -> Result<T, PublishError> {
        let url = self
            .api_url
            .join(path.trim_start_matches('/'))
            .map_err(|e| rejected(format!("api_url: {e}")))?;
        let mut request = self
            .http
            .post(url)
            .header(AUTHORIZATION, format!("Bearer {}", token.expose()))
            .header(CONTENT_TYPE, wire::CONTENT_TYPE_JSON);
        if let Some(body) = body {
            request = request.body(body.to_string());
        }
        let response = request.send().await.map_err(|e| PublishError::Transient {
            reason: format!("{what}: {}", e.without_url()),
            retry_after: None,
        })?;
        let status = response.status().as_u16();
        let after = retry_after(&response);
        let bytes = response
            .bytes()
            .await
            .map_err(|e| PublishError::Transient {
                reason: format!("{what}: {}", e.without_url()),
                retry_after: None,
            })?;
        let envelope: wire::Envelope<T> = match serde_json::from_slice(&bytes) {
            Ok(e) => e,
            Err(_) if status >= 500 || status == 429 => {
                return Err(wire::classify(status, "", "", after));
            }
            Err(e) => {
                return Err(rejected(format!(
                    "{what}: HTTP {status}, an answer that is not the API's JSON ({e})"
                )));
            }
        };
        if envelope.error.code != wire::CODE_OK {
            let e = &envelope.error;
            let log_id = e.log_id.as_deref().unwrap_or("-");
            let message = format!("{} (log_id {log_id})", e.message);
            return Err(wire::classify(status, &e.code, message.trim(), after));
        }
        envelope
            .data
            .ok_or_else(|| rejected(format!("{what}: `ok` without `data`")))
    }
}

fn rejected(reason: String) -> PublishError {
    PublishError::Rejected { reason }
}

fn retry_after(response: &reqwest::Response) -> Option<Duration> {
    response
        .headers()
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs)
}
