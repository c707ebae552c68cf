//! The object store (step 3): every request to `/{oid}` lands here and is told apart by
//! its query ([`Op`]). Whole-file uploads (3a) are handled here, streamed to disk while
//! CRC-32 and SHA-256 are computed; multipart ones (3b) in [`super::multipart`], which
//! shares the checks below. A finished object replaces any earlier one.

use std::path::{Path, PathBuf};

use axum::Json;
use axum::body::Body;
use axum::extract::{Path as UrlPath, RawQuery, State};
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE, TRANSFER_ENCODING};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use serde_json::json;

use super::multipart;
use super::receive::{parse_crc_hex, receive};
use super::state::{App, Object, RequestCounts};

/// The bucket (first path segment) of every video oid.
pub(crate) const BUCKET: &str = "tos-cn-v-0000";

/// Bytes of a refused request's body read and thrown away, so the client sees the answer
/// rather than a reset; a longer body is cut off.
const DRAIN_LIMIT: u64 = 256 * 1024 * 1024;

/// Where the object `oid` (`bucket/name`) lives.
pub fn object_path(objects_dir: &Path, oid: &str) -> PathBuf {
    objects_dir.join(oid)
}

/// A refused upload: `{"success": 1, "error": {...}}` with an HTTP error status.
pub(super) struct TosError {
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
    pub(super) fn new(http: StatusCode, message: impl Into<String>) -> Self {
        TosError {
            http,
            message: message.into(),
        }
    }
}

pub(super) fn tos_error(http: StatusCode, message: impl Into<String>) -> Response {
    TosError {
        http,
        message: message.into(),
    }
    .into_response()
}

/// Read and drop what is left of `body` (up to [`DRAIN_LIMIT`]), then answer `response`.
pub(super) async fn drain_then(body: Body, response: Response) -> Response {
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

pub(super) fn header(
    headers: &HeaderMap,
    name: impl axum::http::header::AsHeaderName,
) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Whether the body comes with `Transfer-Encoding: chunked`.
pub(super) fn is_chunked(headers: &HeaderMap) -> bool {
    headers
        .get_all(TRANSFER_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.to_ascii_lowercase().contains("chunked"))
}

/// The request's promised length, or the refusal for a chunked or unsized body.
pub(super) fn content_length(headers: &HeaderMap) -> Result<u64, TosError> {
    if is_chunked(headers) {
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

/// Which kind of TOS request a query makes (docs/douyin-web.md §3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Op {
    /// 3a: the whole file.
    Whole,
    /// 3b.1: `?uploads`.
    Init,
    /// 3b.2: `?partNumber=N&uploadID=…`.
    Part,
    /// 3b.3: `?uploadID=…`.
    Complete,
}

impl Op {
    /// Judged by the query's keys alone; the handlers check the values and the method.
    pub fn of(query: Option<&str>) -> Op {
        let keys: Vec<&str> = query
            .unwrap_or("")
            .split('&')
            .map(|pair| pair.split('=').next().unwrap_or(""))
            .collect();
        if keys.contains(&"uploads") {
            Op::Init
        } else if keys.contains(&"partNumber") {
            Op::Part
        } else if keys.contains(&"uploadID") {
            Op::Complete
        } else {
            Op::Whole
        }
    }

    /// Its counter in `/__sandbox/requests`.
    pub fn counter(self, counts: &mut RequestCounts) -> &mut u64 {
        match self {
            Op::Whole => &mut counts.upload,
            Op::Init => &mut counts.upload_init,
            Op::Part => &mut counts.upload_part,
            Op::Complete => &mut counts.upload_complete,
        }
    }
}

/// The upload slot a TOS request is for.
pub(super) struct Slot {
    pub vid: String,
    pub file_size: u64,
}

/// The slot behind `oid`, if `Authorization` is its live `tos_sign` (else a 401).
pub(super) fn authorize(app: &App, oid: &str, headers: &HeaderMap) -> Result<Slot, TosError> {
    let st = app.lock();
    let now = st.now_ms();
    let sign = header(headers, "authorization");
    let found = st.oids.get(oid).and_then(|vid| st.uploads.get(vid));
    let why = match found {
        None => "no upload was issued for this oid",
        Some(u) if sign != Some(u.tos_sign.as_str()) => {
            "Authorization: missing or not this upload's tos_sign"
        }
        Some(u) if now >= u.sign_expires_ms => "tos_sign expired; request new upload parameters",
        Some(u) => {
            return Ok(Slot {
                vid: u.vid.clone(),
                file_size: u.file_size,
            });
        }
    };
    Err(TosError::new(StatusCode::UNAUTHORIZED, why))
}

/// Refuses a `Content-Type` other than `expected` (parameters such as `; charset` aside).
pub(super) fn content_type(headers: &HeaderMap, expected: &str) -> Result<(), TosError> {
    let ok = header(headers, CONTENT_TYPE)
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case(expected));
    if ok {
        Ok(())
    } else {
        Err(TosError::new(
            StatusCode::BAD_REQUEST,
            format!("Content-Type: must be {expected}"),
        ))
    }
}

/// The `Content-CRC32` header's value.
pub(super) fn content_crc(headers: &HeaderMap) -> Result<u32, TosError> {
    header(headers, "content-crc32")
        .and_then(parse_crc_hex)
        .ok_or_else(|| {
            TosError::new(
                StatusCode::BAD_REQUEST,
                "Content-CRC32: missing or not 8 lower-case hex digits",
            )
        })
}

/// Every request to an object path: whole-file uploads here, multipart ones in
/// [`multipart`](super::multipart).
pub async fn object(
    State(app): State<App>,
    method: Method,
    UrlPath(name): UrlPath<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let op = Op::of(query.as_deref());
    *op.counter(&mut app.lock().counts) += 1;
    let oid = format!("{BUCKET}/{name}");
    let query = query.unwrap_or_default();
    match op {
        Op::Whole => upload(app, oid, headers, body).await,
        Op::Init if method == Method::POST => {
            multipart::init(app, oid, &query, headers, body).await
        }
        Op::Part if method == Method::PUT => multipart::part(app, oid, &query, headers, body).await,
        Op::Complete if method == Method::POST => {
            multipart::complete(app, oid, &query, headers, body).await
        }
        Op::Init | Op::Complete => {
            let r = tos_error(StatusCode::METHOD_NOT_ALLOWED, "use POST for this request");
            drain_then(body, r).await
        }
        Op::Part => {
            let r = tos_error(StatusCode::METHOD_NOT_ALLOWED, "use PUT to send a part");
            drain_then(body, r).await
        }
    }
}

/// Step 3a: `POST` or `PUT /{oid}`.
async fn upload(app: App, oid: String, headers: HeaderMap, body: Body) -> Response {
    let (file_size, tmp, path) = match authorize(&app, &oid, &headers) {
        Ok(slot) => {
            let dir = &app.cfg.objects_dir;
            let tmp = dir.join(format!("{oid}.part-{}", app.lock().fresh_hex("part", 8)));
            (slot.file_size, tmp, object_path(dir, &oid))
        }
        Err(r) => return drain_then(body, r.into_response()).await,
    };
    let length = match content_length(&headers) {
        Ok(n) => n,
        Err(r) => return drain_then(body, r.into_response()).await,
    };
    let expected_crc = match content_type(&headers, "application/octet-stream")
        .and_then(|()| content_crc(&headers))
    {
        Ok(crc) => crc,
        Err(r) => return drain_then(body, r.into_response()).await,
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
    fn ops_from_queries() {
        assert_eq!(Op::of(Some("uploads")), Op::Init);
        assert_eq!(Op::of(Some("uploads=")), Op::Init);
        assert_eq!(Op::of(Some("partNumber=1&uploadID=x")), Op::Part);
        assert_eq!(Op::of(Some("uploadID=x&partNumber=1")), Op::Part);
        assert_eq!(Op::of(Some("uploadID=x")), Op::Complete);
        assert_eq!(Op::of(Some("x=uploads")), Op::Whole);
        assert_eq!(Op::of(Some("")), Op::Whole);
        assert_eq!(Op::of(None), Op::Whole);
    }
}
