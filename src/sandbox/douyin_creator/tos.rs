//! Step 3, the TOS gateway: `POST /upload/v1/{StoreUri}` with `phase=init`, then parts
//! (`phase=transfer`, `part_number=N`, `Content-CRC32`), then `phase=finish` with the
//! `n:crc` list. Every request carries the slot's `Authorization` (its TOS `Auth`) and
//! `X-Storage-U` (the uploader's uid).
//!
//! Rules (ours where the page is silent): parts stream to disk and are CRC-checked;
//! they may arrive in any order and in parallel, and re-sending a part replaces it. The
//! finish list must name parts 1..N in order with their CRCs; every part but the last
//! is at least 5 MiB; the parts add up to the `FileSize` of step 2. A repeated finish
//! with the same list succeeds again. Errors: HTTP 401 `code` 4010 for an expired `Auth`,
//! 403 `code` 4030 for a wrong one or a wrong `X-Storage-U`, 400 `code` 4000 for bad
//! requests, 409 `code` 4090 for a part sent during or after the finish.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::PathBuf;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::header::{AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use sha2::{Digest, Sha256};

use super::Early;
use super::state::{Object, Part, PartUpload};
use crate::sandbox::receive::{self, parse_crc_hex};
use crate::sandbox::state::App;

/// Least size of every part but the last.
pub(crate) const MIN_PART: u64 = 5 * 1024 * 1024;
/// Highest part number.
const MAX_PARTS: u32 = 10_000;

/// Which request of the flow a query names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    Init,
    Transfer,
    Finish,
    Unknown,
}

impl Phase {
    pub(crate) fn of(query: Option<&str>) -> Phase {
        let q = params(query);
        match q.get("phase").map(String::as_str) {
            Some("init") => Phase::Init,
            Some("transfer") => Phase::Transfer,
            Some("finish") => Phase::Finish,
            _ => Phase::Unknown,
        }
    }
}

fn params(query: Option<&str>) -> HashMap<String, String> {
    query
        .and_then(|q| serde_urlencoded::from_str::<Vec<(String, String)>>(q).ok())
        .unwrap_or_default()
        .into_iter()
        .collect()
}

fn fail(status: StatusCode, code: u32, message: impl Into<String>) -> Response {
    (
        status,
        Json(json!({"code": code, "message": message.into()})),
    )
        .into_response()
}

fn bad(message: impl Into<String>) -> Response {
    fail(StatusCode::BAD_REQUEST, 4000, message)
}

fn ok(data: serde_json::Value) -> Response {
    Json(json!({"code": 2000, "message": "Success", "data": data})).into_response()
}

/// The Vid of the slot at `store_uri` if the request's `Authorization` and
/// `X-Storage-U` are right and the `Auth` is live.
fn authorize(app: &App, store_uri: &str, headers: &HeaderMap) -> Result<String, Early> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let now = super::now_ms(app);
    let m = app.creator.lock();
    let Some(upload) = m.store_uris.get(store_uri).and_then(|v| m.uploads.get(v)) else {
        return Err(Box::new(fail(
            StatusCode::NOT_FOUND,
            4040,
            "no such StoreUri (its '/' must stay a '/')",
        )));
    };
    if header(AUTHORIZATION.as_str()) != Some(upload.auth.as_str()) {
        return Err(Box::new(fail(
            StatusCode::FORBIDDEN,
            4030,
            "Authorization is not this StoreUri's Auth",
        )));
    }
    if now >= upload.auth_expires_ms {
        return Err(Box::new(fail(
            StatusCode::UNAUTHORIZED,
            4010,
            "the Auth expired: apply for a new upload",
        )));
    }
    if header("x-storage-u") != Some(upload.uid.as_str()) {
        return Err(Box::new(fail(
            StatusCode::FORBIDDEN,
            4030,
            "X-Storage-U is not the uploader's UserId",
        )));
    }
    Ok(upload.vid.clone())
}

/// `POST /upload/v1/{StoreUri}?…`: init, a part, or finish.
pub(crate) async fn gateway(
    State(app): State<App>,
    Path(store_uri): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let phase = Phase::of(uri.query());
    {
        let mut m = app.creator.lock();
        let c = &mut m.counts;
        *match phase {
            Phase::Init => &mut c.tos_init,
            Phase::Transfer => &mut c.tos_part,
            Phase::Finish | Phase::Unknown => &mut c.tos_finish,
        } += 1;
    }
    let vid = match authorize(&app, &store_uri, &headers) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    let q = params(uri.query());
    match phase {
        Phase::Init => init(&app, &vid, &q).await,
        Phase::Transfer => part(&app, &q, &headers, body).await,
        Phase::Finish => finish(&app, &vid, &store_uri, &q, &headers, body).await,
        Phase::Unknown => bad("phase: must be init, transfer or finish"),
    }
}

async fn init(app: &App, vid: &str, q: &HashMap<String, String>) -> Response {
    if q.get("uploadmode").map(String::as_str) != Some("part") {
        return bad("uploadmode: must be part");
    }
    let (id, dir) = {
        let mut m = app.creator.lock();
        if m.uploads.get(vid).is_some_and(|u| u.commit.is_some()) {
            return fail(
                StatusCode::CONFLICT,
                4090,
                "this upload is already committed",
            );
        }
        let id = m.hex("uploadid", 16);
        (id.clone(), app.creator.cfg.dir.join("parts").join(id))
    };
    if let Err(e) = tokio::fs::create_dir_all(&dir).await {
        return fail(
            StatusCode::INTERNAL_SERVER_ERROR,
            5000,
            format!("sandbox disk: {e}"),
        );
    }
    app.creator.lock().part_uploads.insert(
        id.clone(),
        PartUpload {
            vid: vid.to_owned(),
            dir,
            parts: Default::default(),
            received: Default::default(),
            finishing: false,
            finished: None,
        },
    );
    ok(json!({"uploadid": id}))
}

/// The open part upload `uploadid` of slot `vid`, or why not.
fn part_upload_dir(
    app: &App,
    q: &HashMap<String, String>,
    vid: Option<&str>,
) -> Result<(String, PathBuf), Early> {
    let id = q.get("uploadid").cloned().unwrap_or_default();
    let m = app.creator.lock();
    match m.part_uploads.get(&id) {
        None => Err(Box::new(bad("uploadid: unknown"))),
        Some(p) if vid.is_some_and(|v| v != p.vid) => {
            Err(Box::new(bad("uploadid: belongs to another StoreUri")))
        }
        Some(p) if p.finishing || p.finished.is_some() => Err(Box::new(fail(
            StatusCode::CONFLICT,
            4090,
            "this upload is finished",
        ))),
        Some(p) => Ok((id, p.dir.clone())),
    }
}

async fn part(app: &App, q: &HashMap<String, String>, headers: &HeaderMap, body: Body) -> Response {
    let (id, dir) = match part_upload_dir(app, q, None) {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let n = match q.get("part_number").map(|s| s.parse::<u32>()) {
        Some(Ok(n)) if (1..=MAX_PARTS).contains(&n) => n,
        _ => return bad(format!("part_number: 1..={MAX_PARTS}")),
    };
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if header(CONTENT_TYPE.as_str()) != Some("application/octet-stream") {
        return bad("Content-Type: must be application/octet-stream");
    }
    let Some(length) = header(CONTENT_LENGTH.as_str()).and_then(|v| v.parse::<u64>().ok()) else {
        return bad("Content-Length: required");
    };
    let Some(crc) = header("content-crc32").and_then(parse_crc_hex) else {
        return bad("Content-CRC32: 8 lower-case hex digits");
    };
    let unique = app.creator.lock().hex("part-file", 8);
    let path = dir.join(format!("part-{n}.{unique}"));
    let got = match receive::receive(body, &path).await {
        Ok(g) => g,
        Err(e) => {
            let _ = tokio::fs::remove_file(&path).await;
            return bad(format!("body not received: {e}"));
        }
    };
    if got.size != length || got.crc32 != crc {
        let _ = tokio::fs::remove_file(&path).await;
        return fail(
            StatusCode::BAD_REQUEST,
            4001,
            format!("part {n}: CRC32 or length does not match"),
        );
    }
    let stored = {
        let mut m = app.creator.lock();
        match m.part_uploads.get_mut(&id) {
            Some(p) if !p.finishing && p.finished.is_none() => {
                *p.received.entry(n).or_default() += 1;
                let part = Part {
                    size: got.size,
                    crc32: got.crc32,
                    path: path.clone(),
                };
                Some(p.parts.insert(n, part))
            }
            _ => None,
        }
    };
    let Some(replaced) = stored else {
        let _ = tokio::fs::remove_file(&path).await;
        return fail(StatusCode::CONFLICT, 4090, "this upload finished meanwhile");
    };
    if let Some(old) = replaced {
        let _ = tokio::fs::remove_file(&old.path).await;
    }
    ok(json!({"crc32": got.crc32_hex(), "part_number": n}))
}

/// Parse `1:crc,2:crc,…`.
pub(crate) fn parse_list(text: &str) -> Result<Vec<(u32, u32)>, String> {
    text.trim()
        .split(',')
        .map(|item| {
            let (n, crc) = item.split_once(':').ok_or("each item is N:CRC32")?;
            let n = n
                .parse::<u32>()
                .map_err(|_| "part number is not a number")?;
            let crc = parse_crc_hex(crc).ok_or("CRC32 is not 8 lower-case hex digits")?;
            Ok((n, crc))
        })
        .collect()
}

/// Check a finish list against the stored parts; the parts in order.
fn check_list(
    list: &[(u32, u32)],
    parts: &std::collections::BTreeMap<u32, Part>,
    file_size: u64,
) -> Result<Vec<Part>, String> {
    let mut chosen = Vec::with_capacity(list.len());
    for (i, &(n, crc)) in list.iter().enumerate() {
        if n as usize != i + 1 {
            return Err(format!(
                "the list must name parts 1..N in order; item {} is part {n}",
                i + 1
            ));
        }
        let part = parts
            .get(&n)
            .ok_or(format!("part {n} was never received"))?;
        if part.crc32 != crc {
            return Err(format!("part {n}: the list's CRC32 is not the part's"));
        }
        if i + 1 < list.len() && part.size < MIN_PART {
            return Err(format!(
                "part {n}: every part but the last must be at least 5 MiB"
            ));
        }
        chosen.push(part.clone());
    }
    if let Some(extra) = parts.keys().find(|k| **k as usize > list.len()) {
        return Err(format!("part {extra} was received but is not in the list"));
    }
    let total: u64 = chosen.iter().map(|p| p.size).sum();
    if total != file_size {
        return Err(format!(
            "the parts add up to {total} bytes, not the FileSize {file_size}"
        ));
    }
    Ok(chosen)
}

/// Concatenate `parts` into `dest`; the object's SHA-256.
fn assemble(parts: &[Part], dest: &std::path::Path) -> std::io::Result<Object> {
    let mut out = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(dest)?);
    let mut sha = Sha256::new();
    let mut size = 0u64;
    let mut buf = vec![0u8; 1 << 20];
    for p in parts {
        let mut f = std::fs::File::open(&p.path)?;
        loop {
            let n = f.read(&mut buf)?;
            if n == 0 {
                break;
            }
            sha.update(&buf[..n]);
            out.write_all(&buf[..n])?;
            size += n as u64;
        }
    }
    out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    Ok(Object {
        size,
        sha256: base16ct::lower::encode_string(&sha.finalize()),
        path: dest.to_path_buf(),
    })
}

/// Note a finished part upload and its slot's object; the parts folder to remove.
fn record_finish(
    app: &App,
    id: &str,
    vid: &str,
    list: Vec<(u32, u32)>,
    object: Object,
) -> Option<PathBuf> {
    let mut m = app.creator.lock();
    let dir = m.part_uploads.get_mut(id).map(|p| {
        p.finishing = false;
        p.finished = Some(list);
        p.parts.clear();
        p.dir.clone()
    });
    if let Some(u) = m.uploads.get_mut(vid) {
        u.object = Some(object);
    }
    dir
}

async fn finish(
    app: &App,
    vid: &str,
    store_uri: &str,
    q: &HashMap<String, String>,
    headers: &HeaderMap,
    body: Body,
) -> Response {
    if q.get("uploadmode").map(String::as_str) != Some("part") {
        return bad("uploadmode: must be part");
    }
    let content_type = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !content_type.to_ascii_lowercase().starts_with("text/plain") {
        return bad("Content-Type: must be text/plain;charset=UTF-8");
    }
    let Ok(text) = axum::body::to_bytes(body, 1 << 20).await else {
        return bad("body: the n:crc list, at most 1 MiB");
    };
    let list = match std::str::from_utf8(&text)
        .map_err(|_| "not UTF-8".to_owned())
        .and_then(parse_list)
    {
        Ok(l) => l,
        Err(e) => return bad(format!("body: {e}")),
    };
    let id = q.get("uploadid").cloned().unwrap_or_default();
    let parts = {
        let mut m = app.creator.lock();
        let file_size = m.uploads.get(vid).map_or(0, |u| u.file_size);
        let Some(p) = m.part_uploads.get_mut(&id) else {
            return bad("uploadid: unknown");
        };
        if p.vid != vid {
            return bad("uploadid: belongs to another StoreUri");
        }
        if let Some(done) = &p.finished {
            return if *done == list {
                ok(json!({"key": store_uri}))
            } else {
                fail(
                    StatusCode::CONFLICT,
                    4090,
                    "finished already, with another list",
                )
            };
        }
        if p.finishing {
            return fail(StatusCode::CONFLICT, 4090, "a finish is in progress");
        }
        match check_list(&list, &p.parts, file_size) {
            Ok(parts) => {
                p.finishing = true;
                parts
            }
            Err(e) => return fail(StatusCode::BAD_REQUEST, 4002, e),
        }
    };
    let dest = app.creator.cfg.dir.join("objects").join(vid);
    let built = tokio::task::spawn_blocking(move || {
        std::fs::create_dir_all(dest.parent().unwrap_or(&dest))?;
        assemble(&parts, &dest)
    })
    .await
    .map_err(std::io::Error::other)
    .and_then(|r| r);
    let dir = match built {
        Ok(object) => record_finish(app, &id, vid, list, object),
        Err(e) => {
            if let Some(p) = app.creator.lock().part_uploads.get_mut(&id) {
                p.finishing = false;
            }
            return fail(
                StatusCode::INTERNAL_SERVER_ERROR,
                5000,
                format!("sandbox disk: {e}"),
            );
        }
    };
    if let Some(dir) = dir {
        let _ = tokio::fs::remove_dir_all(dir).await;
    }
    ok(json!({"key": store_uri}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finish_lists_parse_strictly() {
        assert_eq!(
            parse_list("1:0000abcd,2:ffffffff"),
            Ok(vec![(1, 0xabcd), (2, 0xffff_ffff)])
        );
        assert!(parse_list("1:ABCD0000").is_err());
        assert!(parse_list("1-0000abcd").is_err());
        assert!(parse_list("").is_err());
    }

    #[test]
    fn list_rules() {
        let part = |size, crc| Part {
            size,
            crc32: crc,
            path: PathBuf::new(),
        };
        let parts: std::collections::BTreeMap<u32, Part> =
            [(1, part(MIN_PART, 1)), (2, part(3, 2))]
                .into_iter()
                .collect();
        let total = MIN_PART + 3;
        assert!(check_list(&[(1, 1), (2, 2)], &parts, total).is_ok());
        assert!(
            check_list(&[(2, 2), (1, 1)], &parts, total).is_err(),
            "order"
        );
        assert!(check_list(&[(1, 1), (2, 3)], &parts, total).is_err(), "crc");
        assert!(
            check_list(&[(1, 1)], &parts, MIN_PART).is_err(),
            "part 2 left out"
        );
        assert!(
            check_list(&[(1, 1), (2, 2)], &parts, total + 1).is_err(),
            "size"
        );
        let small: std::collections::BTreeMap<u32, Part> =
            [(1, part(MIN_PART - 1, 1)), (2, part(3, 2))]
                .into_iter()
                .collect();
        assert!(
            check_list(&[(1, 1), (2, 2)], &small, MIN_PART + 2).is_err(),
            "small part"
        );
    }
}
