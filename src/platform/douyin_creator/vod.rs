//! Steps 2 and 4 (docs/douyin-creator.md §2, §4): `ApplyUploadInner` and
//! `CommitUploadInner` on the VOD host, SigV4-signed with step 1's STS keys, and their
//! answers sorted: `SignatureDoesNotMatch` is our bug (rejected), `InvalidAuthorization`
//! means the keys expired (renew step 1).

use std::time::SystemTime;

use bytes::Bytes;
use reqwest::Method;
use reqwest::header::CONTENT_TYPE;
use serde::{Deserialize, Serialize};

use super::sigv4::{self, Scope};
use super::sts::StsCredentials;
use super::tos::UploadSlot;
use super::{
    Call, DouyinCreator, Reply, bad_answer, common_status, endpoint, parse, redacted, rejected,
    wire, with_query,
};
use crate::platform::backoff::retrying;
use crate::platform::{Expired, PublishError};
use crate::secret::Secret;

/// Step 4's result: the committed video, which step 5 posts. The ledger keeps it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CommittedVideo {
    pub vid: String,
    pub store_uri: String,
    /// The poster the commit made (`PosterUri`, varies), if it named one.
    pub poster: Option<String>,
    pub width: u32,
    pub height: u32,
    pub duration_secs: f64,
}

const SCOPE: Scope = Scope {
    region: wire::SIGV4_REGION,
    service: wire::SIGV4_SERVICE,
    content_sha256: wire::SIGN_CONTENT_SHA256,
};

/// A VOD (or ImageX) answer: HTTP status and `ResponseMetadata.Error`, then `Result` as `T`.
pub(super) fn vod_answer<T: serde::de::DeserializeOwned>(
    call: Call,
    reply: &Reply,
    secrets: &[&str],
) -> Result<T, PublishError> {
    common_status(call, reply.status.as_u16(), reply.retry_after)?;
    let answer: Option<wire::VodAnswer<serde_json::Value>> =
        serde_json::from_slice(&reply.body).ok();
    let error = answer
        .as_ref()
        .and_then(|a| a.metadata.as_ref())
        .and_then(|m| m.error.as_ref());
    if let Some(error) = error {
        let code = error.code.as_deref().unwrap_or("");
        let msg = redacted(error.message.as_deref(), secrets);
        return Err(match code {
            wire::VOD_INVALID_AUTHORIZATION => PublishError::AuthExpired {
                what: Expired::UploadCredentials,
                reason: format!("{}: {code}: {msg}", call.name()),
            },
            wire::VOD_SIGNATURE_MISMATCH => rejected(
                call,
                format_args!("{code}: the request was signed wrong (a bug in dropcast): {msg}"),
            ),
            _ => rejected(
                call,
                format_args!(
                    "HTTP {}, {}: {msg}",
                    reply.status.as_u16(),
                    redacted(Some(code), secrets)
                ),
            ),
        });
    }
    if reply.status.as_u16() == 401 {
        return Err(PublishError::AuthExpired {
            what: Expired::UploadCredentials,
            reason: format!("{}: HTTP 401", call.name()),
        });
    }
    if !reply.status.is_success() {
        return Err(rejected(
            call,
            format_args!("HTTP {}", reply.status.as_u16()),
        ));
    }
    let answer: wire::VodAnswer<T> = parse(call, &reply.body)?;
    answer.result.ok_or_else(|| bad_answer(call, "no `Result`"))
}

fn non_empty(v: Option<String>) -> Option<String> {
    v.filter(|s| !s.is_empty())
}

impl DouyinCreator {
    /// A SigV4-signed VOD request; `body` is what is sent (and hashed).
    async fn vod(
        &self,
        call: Call,
        method: Method,
        query: &[(&str, String)],
        body: Bytes,
        creds: &StsCredentials,
    ) -> Result<Reply, PublishError> {
        let url = with_query(endpoint(&self.inner.vod_url, "/"), query);
        self.signed(call, method, url, SCOPE, body, creds).await
    }

    /// A request to `url` signed with SigV4 in `scope` (VOD's or ImageX's); a `POST`
    /// sends `body` as JSON.
    pub(super) async fn signed(
        &self,
        call: Call,
        method: Method,
        url: reqwest::Url,
        scope: Scope,
        body: Bytes,
        creds: &StsCredentials,
    ) -> Result<Reply, PublishError> {
        let headers = sigv4::signed_headers(
            method.as_str(),
            &url,
            &body,
            &creds.keys,
            scope,
            SystemTime::now(),
        )
        .map_err(|why| rejected(call, why))?;
        let mut req = self.inner.http.request(method.clone(), url);
        for (name, value) in headers {
            req = req.header(name, value);
        }
        if method == Method::POST {
            req = req.header(CONTENT_TYPE, wire::CT_JSON).body(body);
        }
        self.exchange(call, req).await
    }

    /// The strings no VOD error may quote back.
    pub(super) fn vod_secrets(creds: &StsCredentials) -> Vec<&str> {
        let mut out = vec![
            creds.keys.access_key_id.expose(),
            creds.keys.secret_access_key.expose(),
        ];
        if let Some(t) = &creds.keys.session_token {
            out.push(t.expose());
        }
        out
    }

    /// Step 2: where to upload a file of `file_size` bytes.
    pub async fn apply_upload(
        &self,
        creds: &StsCredentials,
        file_size: u64,
    ) -> Result<UploadSlot, PublishError> {
        let call = Call::ApplyUpload;
        let query = wire::apply_query(file_size);
        retrying(&self.inner.retry, call.name(), || async {
            let reply = self
                .vod(call, Method::GET, &query, Bytes::new(), creds)
                .await?;
            let result: wire::ApplyResult = vod_answer(call, &reply, &Self::vod_secrets(creds))?;
            let node = result
                .address
                .nodes
                .into_iter()
                .next()
                .ok_or_else(|| bad_answer(call, "no `UploadNodes`"))?;
            let store = node
                .store_infos
                .into_iter()
                .next()
                .ok_or_else(|| bad_answer(call, "no `StoreInfos`"))?;
            let (Some(vid), Some(host), Some(store_uri), Some(auth), Some(session_key)) = (
                non_empty(node.vid),
                non_empty(node.upload_host),
                non_empty(store.store_uri),
                non_empty(store.auth),
                non_empty(node.session_key),
            ) else {
                return Err(bad_answer(
                    call,
                    "`Vid`, `UploadHost`, `StoreUri`, `Auth` or `SessionKey` missing",
                ));
            };
            let mut headers = Vec::new();
            for (name, value) in node.upload_header.unwrap_or_default() {
                let value = match value {
                    serde_json::Value::String(s) => s,
                    other => other.to_string(),
                };
                headers.push((name, value));
            }
            UploadSlot::new(
                &self.inner.upload_scheme,
                &host,
                vid,
                store_uri,
                Secret::new(auth),
                Secret::new(session_key),
                headers,
            )
            .map_err(|why| bad_answer(call, why))
        })
        .await
    }

    /// Step 4: commit the uploaded object; the answer describes the video.
    pub async fn commit(
        &self,
        creds: &StsCredentials,
        slot: &UploadSlot,
    ) -> Result<CommittedVideo, PublishError> {
        let call = Call::Commit;
        let body = serde_json::to_vec(&wire::CommitBody::new(slot.session_key.expose()))
            .map_err(|e| rejected(call, format_args!("cannot encode the body: {e}")))?;
        let body = Bytes::from(body);
        let query = wire::commit_query();
        retrying(&self.inner.retry, call.name(), || async {
            let reply = self
                .vod(call, Method::POST, &query, body.clone(), creds)
                .await?;
            let mut secrets = Self::vod_secrets(creds);
            secrets.push(slot.session_key.expose());
            let result: wire::CommitResult = vod_answer(call, &reply, &secrets)?;
            let item = result
                .results
                .into_iter()
                .next()
                .ok_or_else(|| bad_answer(call, "no `Results`"))?;
            if let Some(vid) = item.vid.as_deref().filter(|v| !v.is_empty())
                && vid != slot.vid
            {
                return Err(bad_answer(call, "the committed `Vid` is not ours"));
            }
            let meta = item.meta.as_ref();
            Ok(CommittedVideo {
                vid: slot.vid.clone(),
                store_uri: slot.store_uri.clone(),
                poster: item.poster().map(str::to_owned),
                width: meta.and_then(|m| m.width).unwrap_or(0),
                height: meta.and_then(|m| m.height).unwrap_or(0),
                duration_secs: meta.and_then(|m| m.duration).unwrap_or(0.0),
            })
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(status: u16, body: &str) -> Reply {
        Reply {
            status: reqwest::StatusCode::from_u16(status).unwrap(),
            retry_after: None,
            body: Bytes::from(body.to_owned()),
        }
    }

    fn error(code: &str) -> String {
        format!(
            r#"{{"ResponseMetadata":{{"Error":{{"Code":"{code}","Message":"key AKSECRET bad"}}}}}}"#
        )
    }

    #[test]
    fn vod_errors_sort_as_the_page_says() {
        let e = vod_answer::<wire::CommitResult>(
            Call::Commit,
            &reply(403, &error("SignatureDoesNotMatch")),
            &["AKSECRET"],
        )
        .unwrap_err();
        assert_eq!(e.class(), "rejected");
        assert!(e.to_string().contains("signed wrong"), "{e}");
        assert!(!e.to_string().contains("AKSECRET"), "{e}");
        let e = vod_answer::<wire::CommitResult>(
            Call::Commit,
            &reply(403, &error("InvalidAuthorization")),
            &[],
        )
        .unwrap_err();
        assert!(matches!(
            e,
            PublishError::AuthExpired {
                what: Expired::UploadCredentials,
                ..
            }
        ));
        let class = |status, body: &str| {
            vod_answer::<wire::CommitResult>(Call::Commit, &reply(status, body), &[])
                .err()
                .map(|e| e.class())
        };
        assert_eq!(class(500, ""), Some("transient"));
        assert_eq!(class(200, r#"{"Result":{"Results":[]}}"#), None);
        assert_eq!(class(200, r#"{"ResponseMetadata":{}}"#), Some("rejected"));
        assert_eq!(class(400, "x"), Some("rejected"));
    }
}
