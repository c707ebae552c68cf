//! The object store (step 3): whole-file uploads to `/{oid}`, streamed to disk while
//! CRC-32 and SHA-256 are computed; a finished object replaces any earlier one.

use std::path::{Path, PathBuf};

use axum::Json;
use axum::body::Body;
use axum::extract::{Path as UrlPath, RawQuery, State};
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE, TRANSFER_ENCODING};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use serde_json::json;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use super::state::{App, Object};

/// The bucket (first path segment) of every video oid.
pub const BUCKET: &str = "tos-cn-v-0000";

/// Bytes of a refused request's body read and thrown away, so the client sees the answer
/// rather than a reset; a longer body is cut off.
const DRAIN_LIMIT: u64 = 256 * 1024 * 1024;

/// Where the object `oid` (`bucket/name`) lives.
pub fn object_path(objects_dir: &Path, oid: &str) -> PathBuf {
    objects_dir.join(oid)
}

/// A refused upload: `{"success": 1, "error": {...}}` with an HTTP error status.
struct TosError {
    http: StatusCode,
    message: String,
}

impl IntoResponse for TosError {
    fn into_response(self) -> Response {
        let (http, message) = (self.http, self.message);
        tracing::debug!(status = http.as_u16(), %message, "upload refused");
        let body = json!({"success": 1, "error": {"code": http.as_u16(), "message": message}});
        (http, Json(body)).into_response()
    }
}

impl TosError {
    fn new(http: StatusCode, message: impl Into<String>) -> Self {
        TosError {
            http,
            message: message.into(),
        }
    }
}

fn tos_error(http: StatusCode, message: impl Into<String>) -> Response {
    TosError {
        http,
        message: message.into(),
    }
    .into_response()
}

/// Read and drop what is left of `body` (up to [`DRAIN_LIMIT`]), then answer `response`.
async fn drain_then(body: Body, response: Response) -> Response {
    let mut stream = body.into_data_stream();
    let mut seen = 0u64;
    while let Some(Ok(chunk)) = stream.next().await {
        seen += chunk.len() as u64;
        if seen > DRAIN_LIMIT {
            break;
        }
    }
    response
}

fn is_multipart(query: &str) -> bool {
    query.split('&').any(|pair| {
        let key = pair.split('=').next().unwrap_or("");
        matches!(key, "uploads" | "partNumber" | "uploadID")
    })
}

fn header(headers: &HeaderMap, name: impl axum::http::header::AsHeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The request's promised length, or the refusal for a chunked or unsized body.
fn content_length(headers: &HeaderMap) -> Result<u64, TosError> {
    let chunked = headers
        .get_all(TRANSFER_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.to_ascii_lowercase().contains("chunked"));
    if chunked {
        return Err(TosError::new(
            StatusCode::LENGTH_REQUIRED,
            "Transfer-Encoding: chunked is refused; send an exact Content-Length",
        ));
    }
    match header(headers, CONTENT_LENGTH).map(str::parse::<u64>) {
        Some(Ok(n)) => Ok(n),
        Some(Err(_)) => Err(TosError::new(
            StatusCode::BAD_REQUEST,
            "Content-Length: not a number",
        )),
        None => Err(TosError::new(
            StatusCode::LENGTH_REQUIRED,
            "Content-Length: missing",
        )),
    }
}

/// What a streamed body turned out to be.
struct Received {
    size: u64,
    crc32: u32,
    sha256: String,
}

/// Stream `body` into a new file at `tmp`, hashing as it goes.
async fn receive(body: Body, tmp: &Path) -> std::io::Result<Received> {
    let mut file = tokio::fs::File::create(tmp).await?;
    let mut crc = crc32fast::Hasher::new();
    let mut sha = Sha256::new();
    let mut size = 0u64;
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(std::io::Error::other)?;
        crc.update(&chunk);
        sha.update(&chunk);
        size += chunk.len() as u64;
        file.write_all(&chunk).await?;
    }
    file.sync_all().await?;
    Ok(Received {
        size,
        crc32: crc.finalize(),
        sha256: base16ct::lower::encode_string(&sha.finalize()),
    })
}

/// Step 3a: `POST` or `PUT /{oid}`.
pub async fn upload(
    State(app): State<App>,
    UrlPath(name): UrlPath<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    app.lock().counts.upload += 1;
    if query.as_deref().is_some_and(is_multipart) {
        let r = tos_error(
            StatusCode::BAD_REQUEST,
            "multipart upload is not supported by this sandbox yet",
        );
        return drain_then(body, r).await;
    }
    let oid = format!("{BUCKET}/{name}");
    let slot = {
        let mut st = app.lock();
        let now = st.now_ms();
        let sign = header(&headers, "authorization");
        let found = st.oids.get(&oid).and_then(|vid| st.uploads.get(vid));
        match found {
            None => Err("no upload was issued for this oid"),
            Some(u) if sign != Some(u.tos_sign.as_str()) => {
                Err("Authorization: missing or not this upload's tos_sign")
            }
            Some(u) if now >= u.sign_expires_ms => {
                Err("tos_sign expired; request new upload parameters")
            }
            Some(u) => {
                let file_size = u.file_size;
                let dir = &app.cfg.objects_dir;
                let tmp = dir.join(format!("{oid}.part-{}", st.fresh_hex("part", 8)));
                Ok((file_size, tmp, object_path(dir, &oid)))
            }
        }
    };
    let (file_size, tmp, path) = match slot {
        Ok(s) => s,
        Err(why) => return drain_then(body, tos_error(StatusCode::UNAUTHORIZED, why)).await,
    };
    let length = match content_length(&headers) {
        Ok(n) => n,
        Err(r) => return drain_then(body, r.into_response()).await,
    };
    let octet = header(&headers, CONTENT_TYPE)
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/octet-stream"));
    if !octet {
        let r = tos_error(
            StatusCode::BAD_REQUEST,
            "Content-Type: must be application/octet-stream",
        );
        return drain_then(body, r).await;
    }
    let crc = header(&headers, "content-crc32")
        .filter(|v| v.len() == 8 && v.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
        .and_then(|v| u32::from_str_radix(v, 16).ok());
    let Some(expected_crc) = crc else {
        let r = tos_error(
            StatusCode::BAD_REQUEST,
            "Content-CRC32: missing or not 8 lower-case hex digits",
        );
        return drain_then(body, r).await;
    };
    if length != file_size {
        let r = tos_error(
            StatusCode::BAD_REQUEST,
            format!("size mismatch: body is {length} bytes, file_size was {file_size}"),
        );
        return drain_then(body, r).await;
    }

    let received = match receive(body, &tmp).await {
        Ok(r) => r,
        Err(e) => {
            let _ = tokio::fs::remove_file(&tmp).await;
            return tos_error(
                StatusCode::BAD_REQUEST,
                format!("body not received whole: {e}"),
            );
        }
    };
    let refusal = if received.size != file_size {
        Some(format!(
            "size mismatch: got {} bytes, file_size was {file_size}",
            received.size
        ))
    } else if received.crc32 != expected_crc {
        Some(format!(
            "CRC mismatch: Content-CRC32 says {expected_crc:08x}, body is {:08x}",
            received.crc32
        ))
    } else {
        None
    };
    if let Some(why) = refusal {
        let _ = tokio::fs::remove_file(&tmp).await;
        return tos_error(StatusCode::BAD_REQUEST, why);
    }
    if let Err(e) = tokio::fs::rename(&tmp, &path).await {
        let _ = tokio::fs::remove_file(&tmp).await;
        tracing::warn!(error = %e, "sandbox could not store an object");
        return tos_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "could not store the object",
        );
    }
    let mut st = app.lock();
    if let Some(u) = st
        .oids
        .get(&oid)
        .cloned()
        .and_then(|vid| st.uploads.get_mut(&vid))
    {
        u.object = Some(Object {
            size: received.size,
            sha256: received.sha256,
        });
    }
    tracing::debug!(%oid, size = received.size, "object stored");
    Json(json!({"success": 0})).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multipart_queries_are_spotted() {
        assert!(is_multipart("uploads"));
        assert!(is_multipart("partNumber=1&uploadID=x"));
        assert!(is_multipart("uploadID=x"));
        assert!(!is_multipart("x=uploads"));
        assert!(!is_multipart(""));
    }
}
