//! `PUT {upload_url}` (page §5): one chunk, in order, one at a time, exactly the bytes the
//! init's layout gives it, streamed to disk and hashed. Replies 206 (more expected), 201
//! (every byte in: the media checks run), 400 (headers, length, not a chunk of the layout),
//! 403 (`upload_url` expired or wrong token), 404 (no such upload), 416 (not the next
//! chunk); each with `Content-Range: bytes 0-<last>/<total>` (`bytes */<total>` when
//! nothing has arrived).
//!
//! (ours) A chunk already received, or sent while another is being received, is a 416; a
//! chunk whose body ends early leaves nothing behind; a refused chunk's body is read out
//! before the answer goes, so the answer always reaches the client.

use std::collections::HashMap;
use std::io::SeekFrom;
use std::path::{Path, PathBuf};

use axum::Json;
use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::header::{CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use serde_json::json;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncSeekExt, AsyncWriteExt, BufWriter};

use super::rules;
use super::state::{Arrived, Memory};
use crate::sandbox::state::App;

/// An answer about a known upload: status, bytes received so far of `total`, error text.
struct Answer {
    status: u16,
    received: u64,
    total: Option<u64>,
    error: Option<(&'static str, String)>,
}

impl Answer {
    fn error(
        status: u16,
        received: u64,
        total: Option<u64>,
        code: &'static str,
        m: impl Into<String>,
    ) -> Answer {
        Answer {
            status,
            received,
            total,
            error: Some((code, m.into())),
        }
    }

    fn respond(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut r = match self.error {
            Some((code, message)) => {
                let body = json!({"data": {}, "error": {"code": code, "message": message, "log_id": "sandbox-upload"}});
                (status, Json(body)).into_response()
            }
            None => status.into_response(),
        };
        if let Some(total) = self.total {
            let range = match self.received {
                0 => format!("bytes */{total}"),
                n => format!("bytes 0-{}/{total}", n - 1),
            };
            if let Ok(v) = HeaderValue::from_str(&range) {
                r.headers_mut().insert(CONTENT_RANGE, v);
            }
        }
        r
    }
}

/// A chunk accepted for receiving.
struct Plan {
    publish_id: String,
    first: u64,
    len: u64,
    index: u64,
    total: u64,
    path: PathBuf,
    hasher: Sha256,
    max_duration_sec: u32,
}

/// `bytes <first>-<last>/<total>`.
fn content_range(v: &str) -> Option<(u64, u64, u64)> {
    let (range, total) = v.strip_prefix("bytes ")?.split_once('/')?;
    let (a, b) = range.split_once('-')?;
    let num = |s: &str| {
        (!s.is_empty() && s.bytes().all(|c| c.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    let (a, b, t) = (num(a)?, num(b)?, num(total)?);
    (a <= b && b < t).then_some((a, b, t))
}

fn header(h: &HeaderMap, name: axum::http::HeaderName) -> &str {
    h.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
}

fn plan(m: &mut Memory, query: &str, headers: &HeaderMap, now: i64) -> Result<Plan, Answer> {
    let q: HashMap<String, String> = serde_urlencoded::from_str(query).unwrap_or_default();
    let id = q.get("upload_id").map(String::as_str).unwrap_or("");
    let p = m
        .upload_ids
        .get(id)
        .and_then(|pid| m.publishes.get_mut(pid))
        .ok_or_else(|| Answer::error(404, 0, None, "upload_not_found", "no such upload"))?;
    let (got, total) = (p.received, p.layout.video_size());
    let refuse = |s, code, m: String| Answer::error(s, got, Some(total), code, m);
    if q.get("upload_token") != Some(&p.upload_token) {
        return Err(refuse(
            403,
            "invalid_upload_token",
            "the upload_url is not whole (upload_token)".into(),
        ));
    }
    if now >= p.url_expires_ms {
        return Err(refuse(
            403,
            "upload_url_expired",
            "the upload_url expired".into(),
        ));
    }
    if got == total {
        return Err(refuse(
            416,
            "range_not_satisfiable",
            "every byte has arrived already".into(),
        ));
    }
    let media = header(headers, CONTENT_TYPE)
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if !rules::CHUNK_TYPES.contains(&media.as_str()) {
        return Err(refuse(
            400,
            "invalid_param",
            format!(
                "Content-Type must be one of {}",
                rules::CHUNK_TYPES.join(", ")
            ),
        ));
    }
    let Some((first, last, whole)) = content_range(header(headers, CONTENT_RANGE)) else {
        return Err(refuse(
            400,
            "invalid_param",
            "Content-Range must be bytes <first>-<last>/<total>".into(),
        ));
    };
    if whole != total {
        return Err(refuse(
            400,
            "invalid_param",
            format!("Content-Range total must be video_size {total}"),
        ));
    }
    if header(headers, CONTENT_LENGTH).parse::<u64>().ok() != Some(last - first + 1) {
        return Err(refuse(
            400,
            "invalid_param",
            "Content-Length must be the chunk's length".into(),
        ));
    }
    let Some(index) = p.layout.chunk_of(first, last) else {
        let size = p.layout.chunk_size();
        let msg = format!(
            "bytes {first}-{last} are not a chunk of this upload (chunks of {size} bytes, the last takes the remainder)"
        );
        return Err(refuse(400, "invalid_param", msg));
    };
    if p.in_flight || first != got {
        return Err(refuse(
            416,
            "range_not_satisfiable",
            format!("the next chunk starts at byte {got}"),
        ));
    }
    p.in_flight = true;
    Ok(Plan {
        publish_id: p.publish_id.clone(),
        first,
        len: last - first + 1,
        index,
        total,
        path: p.path.clone(),
        hasher: p.hasher.clone(),
        max_duration_sec: p.max_duration_sec,
    })
}

/// Write `body` at `first` in `path`, hashing it on; the hasher if exactly `len` bytes came.
async fn write(
    body: Body,
    path: &Path,
    first: u64,
    len: u64,
    mut hasher: Sha256,
) -> std::io::Result<Option<Sha256>> {
    let mut file = tokio::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .await?;
    file.set_len(first).await?;
    file.seek(SeekFrom::Start(first)).await?;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    let mut stream = body.into_data_stream();
    let mut seen = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(std::io::Error::other)?;
        seen += chunk.len() as u64;
        if seen > len {
            return Ok(None);
        }
        hasher.update(&chunk);
        out.write_all(&chunk).await?;
    }
    out.flush().await?;
    out.into_inner().sync_data().await?;
    Ok((seen == len).then_some(hasher))
}

/// Receive the planned chunk and record it; the answer.
async fn receive(app: App, plan: Plan, body: Body) -> Response {
    let written = write(body, &plan.path, plan.first, plan.len, plan.hasher.clone()).await;
    let end = plan.first + plan.len;
    let verdict = match &written {
        Ok(Some(_)) if end == plan.total => {
            let (path, max) = (plan.path.clone(), plan.max_duration_sec);
            let judged =
                tokio::task::spawn_blocking(move || super::media::verdict(&path, end, max)).await;
            Some(judged.unwrap_or_else(|_| Err("internal".into())))
        }
        _ => None,
    };
    let now = super::now_ms(&app);
    let mut m = app.tiktok.lock();
    let queued = verdict.as_ref().and_then(|_| m.fail_next.pop_front());
    let post_id = verdict.as_ref().map(|_| m.post_id()).unwrap_or_default();
    let Some(p) = m.publishes.get_mut(&plan.publish_id) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    p.in_flight = false;
    let hasher = match written {
        Ok(Some(h)) => h,
        Ok(None) => {
            return Answer::error(
                400,
                p.received,
                Some(plan.total),
                "invalid_param",
                "the body is not Content-Length bytes",
            )
            .respond();
        }
        Err(e) => {
            tracing::info!(error = %e, "sandbox tiktok: chunk not received whole");
            return Answer::error(
                400,
                p.received,
                Some(plan.total),
                "invalid_param",
                "the chunk did not arrive whole",
            )
            .respond();
        }
    };
    p.received = end;
    *p.chunks.entry(plan.index).or_default() += 1;
    p.hasher = hasher;
    if let Some(verdict) = verdict {
        let sha256 = base16ct::lower::encode_string(&p.hasher.clone().finalize());
        let verdict = match queued {
            Some(reason) => Err(reason),
            None => verdict,
        };
        p.arrived = Some(Arrived {
            at_ms: now,
            sha256,
            verdict,
            post_id,
        });
        return Answer {
            status: 201,
            received: end,
            total: Some(plan.total),
            error: None,
        }
        .respond();
    }
    Answer {
        status: 206,
        received: end,
        total: Some(plan.total),
        error: None,
    }
    .respond()
}

/// `PUT /tiktok/upload/video/?upload_id=…&upload_token=…`.
pub(crate) async fn chunk(
    State(app): State<App>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let now = super::now_ms(&app);
    let planned = {
        let mut m = app.tiktok.lock();
        m.counts.chunk += 1;
        plan(&mut m, query.as_deref().unwrap_or(""), &headers, now)
    };
    match planned {
        // On its own task: a client that goes away mid-chunk cannot leave it in flight.
        Ok(p) => match tokio::spawn(receive(app, p, body)).await {
            Ok(r) => r,
            Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        },
        Err(answer) => {
            // Read the refused body out first, as a web front does before an early
            // answer: answering and closing with 16 MiB unread resets the connection
            // under the client's feet, and whether the answer gets through is a race.
            drain(body).await;
            answer.respond()
        }
    }
}

/// Reads and discards a request body, stopping at the first error (the client left).
async fn drain(body: Body) {
    let mut stream = body.into_data_stream();
    while let Some(Ok(_)) = stream.next().await {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_range_is_strict() {
        assert_eq!(content_range("bytes 0-9/10"), Some((0, 9, 10)));
        assert_eq!(content_range("bytes 5-9/100"), Some((5, 9, 100)));
        assert_eq!(content_range("bytes 9-5/100"), None);
        assert_eq!(content_range("bytes 0-10/10"), None);
        assert_eq!(content_range("bytes */10"), None);
        assert_eq!(content_range("bytes=0-9/10"), None);
        assert_eq!(content_range("bytes 0-+9/10"), None);
    }
}
