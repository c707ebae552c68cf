//! Step 3 (docs/douyin-creator.md §3): the bytes to the TOS gateway in parts, from dropcast
//! itself. Init, then every part not sent yet (several at a time, each streamed from the
//! open video by position and checked against the CRC-32 the fingerprint pass computed for
//! it, each retried on its own), then finish with the list of part CRCs. A file of one
//! part uses the same flow.

use std::future::Future;

use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt};
use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderName, HeaderValue};
use reqwest::{RequestBuilder, Url};
use serde::{Deserialize, Serialize};

use super::sts::StsCredentials;
use super::{
    Call, DouyinCreator, Reply, bad_answer, common_status, parse, redacted, rejected, wire,
    with_query,
};
use crate::domain::PartCrcs;
use crate::platform::backoff::retrying;
use crate::platform::body::{self, Check, Range, Sent};
use crate::platform::multipart::{PartDone, part_layout};
use crate::platform::{Expired, PublishError};
use crate::progress::Progress;
use crate::secret::Secret;
use crate::video::VideoFile;

/// Step 2's result: where and how the bytes go, and what step 4 commits.
#[derive(Clone, Serialize, Deserialize)]
#[serde(into = "RawSlot", try_from = "RawSlot")]
pub struct UploadSlot {
    pub vid: String,
    /// A path, `/` included, never percent-encoded.
    pub store_uri: String,
    scheme: String,
    host: String,
    /// `{scheme}://{UploadHost}/upload/v1/{StoreUri}`.
    base: Url,
    /// The TOS `Authorization` (`StoreInfos[0].Auth`).
    auth: Secret,
    /// Step 4's `SessionKey`.
    pub(crate) session_key: Secret,
    /// `UploadHeader`'s pairs, checked to be headers.
    headers: Vec<(String, String)>,
}

impl std::fmt::Debug for UploadSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UploadSlot")
            .field("vid", &self.vid)
            .field("store_uri", &self.store_uri)
            .field("base", &self.base.as_str())
            .field("auth", &self.auth)
            .field("session_key", &self.session_key)
            .finish_non_exhaustive()
    }
}

/// Characters a `StoreUri` may hold: those a URL path keeps as they are, so the path
/// sent is the `StoreUri` itself.
fn path_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-._~!$&'()*+,;=:@/".contains(c)
}

impl UploadSlot {
    /// Checks what step 2 gave: a bare `host[:port]`, a `StoreUri` that is a plain path
    /// (no `.`/`..` segment, nothing that would be percent-encoded), header pairs that are
    /// headers.
    pub(crate) fn new(
        scheme: &str,
        host: &str,
        vid: String,
        store_uri: String,
        auth: Secret,
        session_key: Secret,
        headers: Vec<(String, String)>,
    ) -> Result<UploadSlot, String> {
        let host_ok = !host.is_empty()
            && !host
                .chars()
                .any(|c| c.is_whitespace() || "/?#@\\".contains(c));
        if !host_ok {
            return Err("`UploadHost` is not a bare host[:port]".into());
        }
        if store_uri.is_empty()
            || store_uri.starts_with('/')
            || !store_uri.chars().all(path_char)
            || store_uri.split('/').any(|s| s == "." || s == "..")
        {
            return Err("`StoreUri` is not a plain path".into());
        }
        let base = Url::parse(&format!(
            "{scheme}://{host}{}{store_uri}",
            wire::TOS_PATH_PREFIX
        ))
        .map_err(|e| format!("the upload URL does not parse: {e}"))?;
        if base.host_str().is_none_or(str::is_empty)
            || base.path() != format!("{}{store_uri}", wire::TOS_PATH_PREFIX)
        {
            return Err("`UploadHost` and `StoreUri` do not make the upload URL".into());
        }
        if HeaderValue::from_str(auth.expose()).is_err() {
            return Err("`Auth` cannot go into a header".into());
        }
        for (name, value) in &headers {
            if HeaderName::from_bytes(name.as_bytes()).is_err()
                || HeaderValue::from_str(value).is_err()
            {
                return Err("an `UploadHeader` pair is not a header".into());
            }
        }
        Ok(UploadSlot {
            vid,
            store_uri,
            scheme: scheme.to_owned(),
            host: host.to_owned(),
            base,
            auth,
            session_key,
            headers,
        })
    }

    /// The upload URL with `query`.
    fn url(&self, query: &[(&str, String)]) -> Url {
        with_query(self.base.clone(), query)
    }
}

/// The stored form (the ledger keeps it while a multipart upload may resume).
#[derive(Serialize, Deserialize)]
struct RawSlot {
    vid: String,
    store_uri: String,
    scheme: String,
    host: String,
    auth: String,
    session_key: String,
    #[serde(default)]
    headers: Vec<(String, String)>,
}

impl From<UploadSlot> for RawSlot {
    fn from(s: UploadSlot) -> RawSlot {
        RawSlot {
            vid: s.vid,
            store_uri: s.store_uri,
            scheme: s.scheme,
            host: s.host,
            auth: s.auth.expose().to_owned(),
            session_key: s.session_key.expose().to_owned(),
            headers: s.headers,
        }
    }
}

impl TryFrom<RawSlot> for UploadSlot {
    type Error = String;
    fn try_from(r: RawSlot) -> Result<UploadSlot, String> {
        UploadSlot::new(
            &r.scheme,
            &r.host,
            r.vid,
            r.store_uri,
            Secret::new(r.auth),
            Secret::new(r.session_key),
            r.headers,
        )
    }
}

/// A TOS answer: `code` 2000 with a 2xx, else the error it names (401/403: `Auth` expired).
fn tos_answer(
    call: Call,
    reply: &Reply,
    secrets: &[&str],
) -> Result<wire::TosAnswer, PublishError> {
    let status = reply.status.as_u16();
    common_status(call, status, reply.retry_after)?;
    if status == 401 || status == 403 {
        return Err(PublishError::AuthExpired {
            what: Expired::UploadCredentials,
            reason: format!(
                "{}: HTTP {status} (the upload `Auth` expired or is wrong)",
                call.name()
            ),
        });
    }
    let answer: Option<wire::TosAnswer> = serde_json::from_slice(&reply.body).ok();
    match answer {
        Some(a) if a.code == Some(wire::TOS_OK) && reply.status.is_success() => Ok(a),
        Some(a) => Err(rejected(
            call,
            format_args!(
                "HTTP {status}, code {}: {}",
                a.code.map_or_else(|| "-".to_owned(), |c| c.to_string()),
                redacted(a.message.as_deref(), secrets)
            ),
        )),
        None if reply.status.is_success() => Err(parse::<wire::TosAnswer>(call, &reply.body)
            .err()
            .unwrap_or_else(|| bad_answer(call, "no `code`"))),
        None => Err(rejected(call, format_args!("HTTP {status}"))),
    }
}

/// One part to send.
#[derive(Clone, Copy, Debug)]
struct PartSpec {
    number: u32,
    offset: u64,
    len: u64,
    crc32: u32,
}

impl DouyinCreator {
    /// A TOS request with the headers every one carries.
    fn tos_request(
        &self,
        call: Call,
        slot: &UploadSlot,
        creds: &StsCredentials,
        url: Url,
    ) -> Result<RequestBuilder, PublishError> {
        let mut auth = HeaderValue::from_str(slot.auth.expose())
            .map_err(|_| rejected(call, "`Auth` cannot go into a header"))?;
        auth.set_sensitive(true);
        let mut req = self
            .inner
            .http
            .post(url)
            .header(wire::H_AUTHORIZATION, auth)
            .header(wire::H_STORAGE_USER, creds.user_id.as_str());
        for (name, value) in &slot.headers {
            req = req.header(name.as_str(), value.as_str());
        }
        Ok(req)
    }

    /// §3.1: starts the upload of `slot`'s object; the answer is its upload id.
    pub async fn init_upload(
        &self,
        slot: &UploadSlot,
        creds: &StsCredentials,
    ) -> Result<String, PublishError> {
        let call = Call::TosInit;
        let url = slot.url(&wire::init_query());
        retrying(&self.inner.retry, call.name(), || async {
            let req = self
                .tos_request(call, slot, creds, url.clone())?
                .header(CONTENT_LENGTH, 0)
                .body(Bytes::new());
            let reply = self.exchange(call, req).await?;
            let answer = tos_answer(call, &reply, &[slot.auth.expose()])?;
            answer
                .upload_id()
                .map(str::to_owned)
                .ok_or_else(|| bad_answer(call, "no `data.uploadid`"))
        })
        .await
    }

    /// §3.2: sends every part of the open `size`-byte video that is not in `done`, in
    /// parallel, and returns all parts (those of `done` included), sorted. The parts are
    /// those of `crcs`; a part whose bytes no longer match is [`PublishError::Changed`].
    /// A part of `done` whose size or CRC does not fit is sent again. `on_part` is awaited
    /// after each part lands, before it counts: the caller checkpoints it there.
    #[allow(clippy::too_many_arguments)]
    pub async fn upload_parts<F, Fut>(
        &self,
        slot: &UploadSlot,
        creds: &StsCredentials,
        upload_id: &str,
        video: &VideoFile,
        size: u64,
        crcs: &PartCrcs,
        done: &[PartDone],
        progress: &Progress,
        on_part: F,
    ) -> Result<Vec<PartDone>, PublishError>
    where
        F: Fn(PartDone) -> Fut + Sync,
        Fut: Future<Output = Result<(), PublishError>>,
    {
        let call = Call::TosPart;
        if video.size() != size {
            return Err(PublishError::Changed {
                reason: format!(
                    "{}: {} is {} bytes, {size} were hashed",
                    call.name(),
                    video.path().display(),
                    video.size()
                ),
            });
        }
        let layout = part_layout(size, crcs.part_size);
        if layout.is_empty() || layout.len() != crcs.crcs.len() {
            return Err(rejected(
                call,
                format_args!(
                    "{size} bytes in parts of {} are not the {} parts the fingerprint pass hashed",
                    crcs.part_size,
                    crcs.crcs.len()
                ),
            ));
        }
        if layout.len() > 1 && crcs.part_size < wire::MIN_PART {
            return Err(rejected(
                call,
                format_args!(
                    "parts of {} bytes are smaller than the {} the platform takes (upload.part_size)",
                    crcs.part_size,
                    wire::MIN_PART
                ),
            ));
        }
        if layout.len() as u64 > wire::MAX_PARTS {
            return Err(rejected(
                call,
                format_args!(
                    "{} parts are more than the {} allowed",
                    layout.len(),
                    wire::MAX_PARTS
                ),
            ));
        }
        let parallel = self.inner.parallel_parts;
        let pacing = self.pacing(progress);
        progress.start(size);
        let mut parts = Vec::with_capacity(layout.len());
        let mut todo = Vec::new();
        for (number, offset, len) in layout {
            let crc32 = crcs.get(number).unwrap_or_default();
            match done.iter().find(|d| d.number == number) {
                Some(d) if d.size == len && d.crc32 == crc32 => {
                    parts.push(*d);
                    progress.add(len);
                }
                _ => todo.push(PartSpec {
                    number,
                    offset,
                    len,
                    crc32,
                }),
            }
        }
        tracing::debug!(
            parts = parts.len() + todo.len(),
            resumed = parts.len(),
            parallel,
            "uploading parts"
        );
        let (pacing, on_part) = (&pacing, &on_part);
        let mut landed = futures_util::stream::iter(todo)
            .map(|spec| async move {
                let part = self
                    .upload_part(slot, creds, upload_id, video, spec, pacing, parallel)
                    .await?;
                on_part(part).await?;
                Ok::<_, PublishError>(part)
            })
            .buffer_unordered(parallel);
        while let Some(part) = landed.try_next().await? {
            parts.push(part);
        }
        parts.sort_by_key(|p| p.number);
        Ok(parts)
    }

    /// One part, retried on its own; a failed attempt's bytes are taken back from the
    /// progress.
    #[allow(clippy::too_many_arguments)]
    async fn upload_part(
        &self,
        slot: &UploadSlot,
        creds: &StsCredentials,
        upload_id: &str,
        video: &VideoFile,
        spec: PartSpec,
        pacing: &body::Pacing,
        streams: usize,
    ) -> Result<PartDone, PublishError> {
        let call = Call::TosPart;
        let PartSpec {
            number,
            offset,
            len,
            crc32,
        } = spec;
        let range = Range {
            video: video.clone(),
            offset,
            len,
            crc32,
        };
        if !range.fits() {
            return Err(PublishError::Changed {
                reason: format!(
                    "{}: part {number} lies past the end of the file",
                    call.name()
                ),
            });
        }
        let url = slot.url(&wire::part_query(upload_id, number));
        let timeout = self.upload_timeout(len, streams);
        let crc_hex = wire::crc32_hex(crc32);
        retrying(&self.inner.retry, call.name(), || async {
            let (sent, check) = (Sent::default(), Check::default());
            let req = self
                .tos_request(call, slot, creds, url.clone())?
                .timeout(timeout)
                .header(CONTENT_TYPE, wire::CT_OCTET_STREAM)
                .header(CONTENT_LENGTH, len)
                .header(wire::H_CONTENT_CRC32, crc_hex.as_str())
                .body(body::checked_body(range.clone(), pacing, &sent, &check));
            let result = match self.exchange(call, req).await {
                Ok(reply) => tos_answer(call, &reply, &[slot.auth.expose()]).and_then(|a| match a
                    .data
                    .and_then(|d| d.crc32)
                {
                    Some(stored) if !stored.eq_ignore_ascii_case(&crc_hex) => Err(bad_answer(
                        call,
                        format_args!("part {number} was stored with another CRC-32"),
                    )),
                    _ => Ok(()),
                }),
                Err(e) => Err(e),
            };
            let result = match check.failed() {
                Some(why) => Err(PublishError::Changed {
                    reason: format!("{}: {why}", call.name()),
                }),
                None => result,
            };
            if let Err(e) = &result {
                pacing.progress.sub(sent.get());
                tracing::debug!(part = number, class = e.class(), "part failed");
            }
            result.map(|()| PartDone {
                number,
                size: len,
                crc32,
            })
        })
        .await
    }

    /// §3.3: finishes the upload with every part, numbered 1 to N.
    pub async fn finish_upload(
        &self,
        slot: &UploadSlot,
        creds: &StsCredentials,
        upload_id: &str,
        parts: &[PartDone],
    ) -> Result<(), PublishError> {
        let call = Call::TosFinish;
        let mut sorted = parts.to_vec();
        sorted.sort_by_key(|p| p.number);
        let numbered = sorted
            .iter()
            .enumerate()
            .all(|(i, p)| u64::from(p.number) == i as u64 + 1);
        if sorted.is_empty() || !numbered {
            return Err(rejected(
                call,
                "the parts are not numbered 1 to N without gaps or repeats",
            ));
        }
        let body = Bytes::from(wire::finish_body(
            sorted.iter().map(|p| (p.number, p.crc32)),
        ));
        let url = slot.url(&wire::finish_query(upload_id));
        retrying(&self.inner.retry, call.name(), || async {
            let req = self
                .tos_request(call, slot, creds, url.clone())?
                .header(CONTENT_TYPE, wire::CT_FINISH)
                .body(body.clone());
            let reply = self.exchange(call, req).await?;
            let answer = tos_answer(call, &reply, &[slot.auth.expose()])?;
            match answer.data.and_then(|d| d.key) {
                Some(key) if key != slot.store_uri => {
                    Err(bad_answer(call, "the finished object is not ours"))
                }
                _ => Ok(()),
            }
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slot(host: &str, uri: &str) -> Result<UploadSlot, String> {
        UploadSlot::new(
            "http",
            host,
            "v1".into(),
            uri.into(),
            Secret::new("SpaceKey/aweme/1/:version:v2:SECRET"),
            Secret::new("SESSIONKEY"),
            vec![("x-extra".into(), "1".into())],
        )
    }

    #[test]
    fn store_uris_are_plain_paths_kept_as_they_are() {
        let s = slot("127.0.0.1:9000", "tos-cn-ve-15/o4abc").unwrap();
        assert_eq!(
            s.url(&wire::init_query()).as_str(),
            "http://127.0.0.1:9000/upload/v1/tos-cn-ve-15/o4abc?uploadmode=part&phase=init"
        );
        for bad in ["", "/abs", "a/../b", "a b", "a?b", "a%2Fb", "a#b"] {
            assert!(slot("h", bad).is_err(), "{bad}");
        }
        for bad in ["h/x", "u@h", "", "h h"] {
            assert!(slot(bad, "a/b").is_err(), "{bad}");
        }
        let shown = format!("{s:?}");
        assert!(
            !shown.contains("SECRET") && !shown.contains("SESSIONKEY"),
            "{shown}"
        );
    }

    #[test]
    fn a_slot_survives_the_ledger() {
        let s = slot("127.0.0.1:9000", "tos/o").unwrap();
        let back: UploadSlot = serde_json::from_value(serde_json::to_value(&s).unwrap()).unwrap();
        assert_eq!(back.base, s.base);
        assert_eq!(back.auth, s.auth);
        assert_eq!(back.headers, s.headers);
        let mut raw = serde_json::to_value(&s).unwrap();
        raw["store_uri"] = "../x".into();
        assert!(serde_json::from_value::<UploadSlot>(raw).is_err());
    }

    fn reply(status: u16, body: &str) -> Reply {
        Reply {
            status: reqwest::StatusCode::from_u16(status).unwrap(),
            retry_after: None,
            body: Bytes::from(body.to_owned()),
        }
    }

    #[test]
    fn tos_answers_sort_as_the_page_says() {
        let class = |status, body: &str| {
            tos_answer(Call::TosPart, &reply(status, body), &[])
                .err()
                .map(|e| e.class())
        };
        assert_eq!(class(200, r#"{"code":2000,"data":{}}"#), None);
        assert_eq!(
            class(200, r#"{"code":4000,"message":"crc"}"#),
            Some("rejected")
        );
        assert_eq!(class(401, ""), Some("auth_expired"));
        assert_eq!(class(403, r#"{"code":4003}"#), Some("auth_expired"));
        assert_eq!(class(503, ""), Some("transient"));
        assert_eq!(class(200, "nope"), Some("rejected"));
    }
}
