//! The custom cover image (docs/douyin-creator.md §12): `ApplyImageUpload` at ImageX
//! (SigV4, service `imagex`, step 1's keys), the image `PUT` to the upload host it names
//! (its `Auth`, `Content-CRC32`, streamed from the file), then `CommitImageUpload`, whose
//! `Uri` becomes create_v2's `cover.poster`. The file is opened once, hashed (SHA-256 for
//! the receipt, CRC-32 for the upload) and read by position; it is never moved.

use std::path::Path;

use bytes::Bytes;
use reqwest::Method;
use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderValue};
use serde::{Deserialize, Serialize};

use super::sigv4::Scope;
use super::sts::StsCredentials;
use super::vod::vod_answer;
use super::{
    Call, DouyinCreator, Reply, bad_answer, common_status, endpoint, parse, redacted, rejected,
    wire, with_query,
};
use crate::platform::backoff::retrying;
use crate::platform::body::{self, Check, Range, Sent};
use crate::platform::{Expired, PublishError};
use crate::progress::Progress;
use crate::secret::Secret;
use crate::video::VideoFile;

const SCOPE: Scope = Scope {
    region: wire::SIGV4_REGION,
    service: wire::IMAGEX_SIGV4_SERVICE,
    content_sha256: wire::SIGN_CONTENT_SHA256,
};

/// The cover as it was uploaded: the `cover` step's record (the ledger keeps it, so a
/// resumed job never uploads the image again) and what the post and the receipt name.
/// The field names `cover_uri`, `cover_sha256` and `cover_file` are what the receipt reads.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadedCover {
    /// ImageX's `Uri`: create_v2's `cover.poster`.
    pub cover_uri: String,
    /// The image's size as ImageX gave it (`PluginResult`), if it did.
    pub width: Option<u32>,
    pub height: Option<u32>,
    /// The bytes uploaded: SHA-256 (hex), size, and the file's name.
    pub cover_sha256: String,
    pub cover_bytes: u64,
    pub cover_file: String,
}

impl UploadedCover {
    /// Width and height, when ImageX gave both.
    pub(crate) fn size(&self) -> Option<(u32, u32)> {
        match (self.width, self.height) {
            (Some(w), Some(h)) if w > 0 && h > 0 => Some((w, h)),
            _ => None,
        }
    }
}

/// A cover image opened once and hashed: what the upload streams and checks.
pub(crate) struct CoverFile {
    file: VideoFile,
    size: u64,
    crc32: u32,
    sha256: String,
    name: String,
    /// `.jpg`, `.png`, … (lower case), for `FileExtension`.
    extension: String,
}

impl CoverFile {
    /// Opens and hashes the image at `path` (off the async threads). A file that cannot
    /// be read is `rejected`: the caption names it, the user must fix it.
    pub(crate) async fn open(path: &Path) -> Result<CoverFile, PublishError> {
        let path = path.to_path_buf();
        let refused = |why: String| rejected(Call::ImageUpload, why);
        let opened = tokio::task::spawn_blocking(move || {
            let file = VideoFile::open_path(&path)
                .map_err(|e| format!("cannot open the cover image {}: {e}", path.display()))?;
            let fp = crate::hash::fingerprint_video(&file, 0)
                .map_err(|e| format!("cannot read the cover image {}: {e}", path.display()))?;
            Ok::<_, String>((path, file, fp))
        })
        .await
        .map_err(|e| refused(format!("the cover image's read task failed: {e}")))?;
        let (path, file, fp) = opened.map_err(refused)?;
        if fp.size == 0 {
            return Err(refused(format!(
                "the cover image {} is empty",
                path.display()
            )));
        }
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let extension = path
            .extension()
            .map(|e| format!(".{}", e.to_string_lossy().to_ascii_lowercase()))
            .unwrap_or_default();
        Ok(CoverFile {
            file,
            size: fp.size,
            crc32: fp.crc32,
            sha256: fp.sha256.to_string(),
            name,
            extension,
        })
    }
}

/// Where ApplyImageUpload says the image goes.
struct ImageSlot {
    /// `{upload_scheme}://{UploadHosts[0]}/{StoreUri}`.
    url: reqwest::Url,
    auth: Secret,
    session_key: Secret,
}

/// A `StoreUri` that is a plain path (as §3's), so the URL's path is exactly it.
fn plain_path(store_uri: &str) -> bool {
    !store_uri.is_empty()
        && !store_uri.starts_with('/')
        && store_uri
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-._~!$&'()*+,;=:@/".contains(c))
        && !store_uri.split('/').any(|s| s == "." || s == "..")
}

impl ImageSlot {
    fn new(
        scheme: &str,
        host: &str,
        store_uri: String,
        auth: String,
        session_key: String,
    ) -> Result<ImageSlot, String> {
        if host.is_empty()
            || host
                .chars()
                .any(|c| c.is_whitespace() || "/?#@\\".contains(c))
        {
            return Err("`UploadHosts[0]` is not a bare host[:port]".into());
        }
        if !plain_path(&store_uri) {
            return Err("`StoreUri` is not a plain path".into());
        }
        let url = reqwest::Url::parse(&format!("{scheme}://{host}/{store_uri}"))
            .map_err(|e| format!("the upload URL does not parse: {e}"))?;
        if url.path() != format!("/{store_uri}") {
            return Err("`UploadHosts[0]` and `StoreUri` do not make the upload URL".into());
        }
        if HeaderValue::from_str(&auth).is_err() {
            return Err("`Auth` cannot go into a header".into());
        }
        Ok(ImageSlot {
            url,
            auth: Secret::new(auth),
            session_key: Secret::new(session_key),
        })
    }
}

/// The upload's answer: success, else 401/403 (`Auth` expired) or a refusal.
fn upload_answer(reply: &Reply, crc_hex: &str, auth: &str) -> Result<(), PublishError> {
    let call = Call::ImageUpload;
    let status = reply.status.as_u16();
    common_status(call, status, reply.retry_after)?;
    if status == 401 || status == 403 {
        return Err(PublishError::AuthExpired {
            what: Expired::UploadCredentials,
            reason: format!("{}: HTTP {status} (the image `Auth` expired)", call.name()),
        });
    }
    let answer: wire::ImageUploadAnswer = parse(call, &reply.body)?;
    let code = answer.error.as_ref().and_then(|e| e.code);
    if !reply.status.is_success()
        || answer.success != Some(0)
        || code != Some(wire::IMAGE_UPLOAD_OK)
    {
        let msg = answer.error.as_ref().and_then(|e| e.error.as_deref());
        return Err(rejected(
            call,
            format_args!(
                "HTTP {status}, code {}: {}",
                code.map_or_else(|| "-".to_owned(), |c| c.to_string()),
                redacted(msg, &[auth])
            ),
        ));
    }
    match answer.payload.and_then(|p| p.hash) {
        Some(hash) if !hash.eq_ignore_ascii_case(crc_hex) => {
            Err(bad_answer(call, "the image was stored with another CRC-32"))
        }
        _ => Ok(()),
    }
}

impl DouyinCreator {
    /// §12 whole: apply, upload (applying once more if the upload's `Auth` expired), and
    /// commit `cover` with `creds`. Expired STS keys are the caller's to renew.
    pub(crate) async fn upload_cover(
        &self,
        creds: &StsCredentials,
        cover: &CoverFile,
    ) -> Result<UploadedCover, PublishError> {
        let mut slot = self.apply_image(creds, cover).await?;
        if let Err(e) = self.put_image(&slot, cover).await {
            let PublishError::AuthExpired { reason, .. } = &e else {
                return Err(e);
            };
            tracing::warn!(step = "cover", %reason, "the image's upload Auth expired; applying again once");
            slot = self.apply_image(creds, cover).await?;
            self.put_image(&slot, cover).await?;
        }
        let (uri, width, height) = self.commit_image(creds, &slot).await?;
        Ok(UploadedCover {
            cover_uri: uri,
            width,
            height,
            cover_sha256: cover.sha256.clone(),
            cover_bytes: cover.size,
            cover_file: cover.name.clone(),
        })
    }

    fn imagex_url(&self, query: &[(&str, String)]) -> reqwest::Url {
        with_query(endpoint(&self.inner.imagex_url, "/"), query)
    }

    /// ApplyImageUpload: where one image goes.
    async fn apply_image(
        &self,
        creds: &StsCredentials,
        cover: &CoverFile,
    ) -> Result<ImageSlot, PublishError> {
        let call = Call::ImageApply;
        let url = self.imagex_url(&wire::apply_image_query(&cover.extension));
        retrying(&self.inner.retry, call.name(), || async {
            let reply = self
                .signed(call, Method::GET, url.clone(), SCOPE, Bytes::new(), creds)
                .await?;
            let result: wire::ImageApplyResult =
                vod_answer(call, &reply, &Self::vod_secrets(creds))?;
            let address = result.address;
            let store = address.store_infos.into_iter().next();
            let (Some(host), Some(store_uri), Some(auth), Some(session_key)) = (
                address
                    .upload_hosts
                    .into_iter()
                    .next()
                    .filter(|h| !h.is_empty()),
                store
                    .as_ref()
                    .and_then(|s| s.store_uri.clone())
                    .filter(|s| !s.is_empty()),
                store.and_then(|s| s.auth).filter(|s| !s.is_empty()),
                address.session_key.filter(|s| !s.is_empty()),
            ) else {
                return Err(bad_answer(
                    call,
                    "`UploadHosts`, `StoreUri`, `Auth` or `SessionKey` missing",
                ));
            };
            ImageSlot::new(
                &self.inner.upload_scheme,
                &host,
                store_uri,
                auth,
                session_key,
            )
            .map_err(|why| bad_answer(call, why))
        })
        .await
    }

    /// The image's bytes, streamed from the file and checked against its CRC-32.
    async fn put_image(&self, slot: &ImageSlot, cover: &CoverFile) -> Result<(), PublishError> {
        let call = Call::ImageUpload;
        let crc_hex = wire::crc32_hex(cover.crc32);
        let range = Range {
            video: cover.file.clone(),
            offset: 0,
            len: cover.size,
            crc32: cover.crc32,
        };
        let pacing = self.pacing(&Progress::new());
        let timeout = self.upload_timeout(cover.size, 1);
        retrying(&self.inner.retry, call.name(), || async {
            let (sent, check) = (Sent::default(), Check::default());
            let mut auth = HeaderValue::from_str(slot.auth.expose())
                .map_err(|_| rejected(call, "`Auth` cannot go into a header"))?;
            auth.set_sensitive(true);
            let req = self
                .inner
                .http
                .put(slot.url.clone())
                .timeout(timeout)
                .header(wire::H_AUTHORIZATION, auth)
                .header(CONTENT_TYPE, wire::CT_OCTET_STREAM)
                .header(CONTENT_LENGTH, cover.size)
                .header(wire::H_CONTENT_CRC32, crc_hex.as_str())
                .body(body::checked_body(range.clone(), &pacing, &sent, &check));
            let result = match self.exchange(call, req).await {
                Ok(reply) => upload_answer(&reply, &crc_hex, slot.auth.expose()),
                Err(e) => Err(e),
            };
            match check.failed() {
                // The image changed under us: the user's to look at, not worth a retry.
                Some(why) => Err(rejected(call, format_args!("the cover image: {why}"))),
                None => result,
            }
        })
        .await
    }

    /// CommitImageUpload: the image's `Uri` and, when given, its width and height.
    async fn commit_image(
        &self,
        creds: &StsCredentials,
        slot: &ImageSlot,
    ) -> Result<(String, Option<u32>, Option<u32>), PublishError> {
        let call = Call::ImageCommit;
        let body = serde_json::to_vec(&wire::ImageCommitBody {
            session_key: slot.session_key.expose(),
        })
        .map_err(|e| rejected(call, format_args!("cannot encode the body: {e}")))?;
        let body = Bytes::from(body);
        let url = self.imagex_url(&wire::commit_image_query());
        retrying(&self.inner.retry, call.name(), || async {
            let reply = self
                .signed(call, Method::POST, url.clone(), SCOPE, body.clone(), creds)
                .await?;
            let mut secrets = Self::vod_secrets(creds);
            secrets.push(slot.session_key.expose());
            let result: wire::ImageCommitResult = vod_answer(call, &reply, &secrets)?;
            committed_image(call, result)
        })
        .await
    }
}

/// The committed image's `Uri` (must be there with `UriStatus` 2000 when given) and its
/// size from `PluginResult` (the entry for that `Uri`, else the first).
fn committed_image(
    call: Call,
    result: wire::ImageCommitResult,
) -> Result<(String, Option<u32>, Option<u32>), PublishError> {
    let item = result
        .results
        .into_iter()
        .next()
        .ok_or_else(|| bad_answer(call, "no `Results`"))?;
    if let Some(status) = item.uri_status
        && status != wire::URI_STATUS_OK
    {
        return Err(rejected(call, format_args!("`UriStatus` {status}")));
    }
    let uri = item
        .uri
        .filter(|u| !u.is_empty())
        .ok_or_else(|| bad_answer(call, "no `Uri`"))?;
    let plugin = result
        .plugin
        .iter()
        .find(|p| p.image_uri.as_deref() == Some(uri.as_str()))
        .or(result.plugin.first());
    let width = plugin.and_then(|p| p.width).filter(|w| *w > 0);
    let height = plugin.and_then(|p| p.height).filter(|h| *h > 0);
    Ok((uri, width, height))
}

#[cfg(test)]
mod tests;
