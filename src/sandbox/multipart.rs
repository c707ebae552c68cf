//! Multipart uploads (docs/douyin-web.md §3b): `?uploads` opens one, `?partNumber=N&uploadID=…`
//! streams a part to its own file on disk (concurrently, in any order, a re-sent part
//! replacing the earlier copy), and `?uploadID=…` checks the client's part list against
//! what arrived and stream-copies the parts into the object.
//!
//! Rules (ours, kept here): part numbers are 1..=[`MAX_PARTS`]; every part but the last is
//! the same size, within [`MIN_PART`]..=[`MAX_PART`]; the last may be smaller (not larger);
//! the sizes add up to step 2's `file_size`. An upload id belongs to one `oid` and works as
//! long as that upload's `tos_sign`. Completing again with the same list succeeds again;
//! parts sent while (or after) completing are refused with 409.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::PathBuf;

use axum::Json;
use axum::body::Body;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use sha2::{Digest, Sha256};

use super::receive::{parse_crc_hex, receive};
use super::state::{App, Multipart, Object, Phase, StoredPart};
use super::tos::{
    self, Slot, TosError, authorize, content_crc, content_length, content_type, drain_then,
    tos_error,
};

const MIB: u64 = 1024 * 1024;
/// Smallest part but the last.
pub(crate) const MIN_PART: u64 = 5 * MIB;
/// Largest part.
pub(crate) const MAX_PART: u64 = 64 * MIB;
/// Highest part number.
pub(crate) const MAX_PARTS: u32 = 10_000;
/// Largest completion body (`1:<crc>,…` for every part fits).
const MAX_LIST_BODY: u64 = 1024 * 1024;
/// Read size when assembling the object.
const COPY_BUFFER: usize = 1024 * 1024;

/// Folder (in the objects folder) holding each open upload's parts.
const PARTS_DIR: &str = ".multipart";

/// The folder holding upload `id`'s parts until it is completed.
pub(crate) fn parts_dir(objects_dir: &std::path::Path, id: &str) -> PathBuf {
    objects_dir.join(PARTS_DIR).join(id)
}

fn refused(http: StatusCode, message: impl Into<String>) -> TosError {
    TosError::new(http, message)
}

fn bad(message: impl Into<String>) -> TosError {
    refused(StatusCode::BAD_REQUEST, message)
}

/// The query's pairs, each key at most once.
fn query_map(query: &str) -> Result<BTreeMap<String, String>, TosError> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query)
        .map_err(|e| bad(format!("query: not url-encoded ({e})")))?;
    let mut map = BTreeMap::new();
    for (k, v) in pairs {
        if map.insert(k.clone(), v).is_some() {
            return Err(bad(format!("{k}: given more than once")));
        }
    }
    Ok(map)
}

fn upload_id(q: &BTreeMap<String, String>) -> Result<String, TosError> {
    match q.get("uploadID") {
        Some(id) if !id.is_empty() => Ok(id.clone()),
        _ => Err(bad("uploadID: missing or empty")),
    }
}

/// A part number: digits, 1..=[`MAX_PARTS`].
fn part_number(v: &str) -> Option<u32> {
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    v.parse::<u32>()
        .ok()
        .filter(|n| (1..=MAX_PARTS).contains(n))
}

/// The open upload `id` of `oid`: its parts folder, or a refusal (404 unknown, 409 not
/// open any more).
fn open_upload(app: &App, id: &str, oid: &str) -> Result<PathBuf, TosError> {
    let st = app.lock();
    match st.multiparts.get(id) {
        Some(m) if m.oid == oid => match m.phase {
            Phase::Open => Ok(m.dir.clone()),
            _ => Err(refused(
                StatusCode::CONFLICT,
                format!(
                    "uploadID: this upload is {}; parts are closed",
                    m.phase.name()
                ),
            )),
        },
        _ => Err(refused(
            StatusCode::NOT_FOUND,
            "uploadID: no such multipart upload for this object",
        )),
    }
}

/// 3b.1: `POST {object}?uploads`, empty body → a fresh upload id.
pub async fn init(app: App, oid: String, query: &str, headers: HeaderMap, body: Body) -> Response {
    let checked = (|| {
        let slot = authorize(&app, &oid, &headers)?;
        let q = query_map(query)?;
        if q.get("uploads").is_some_and(|v| !v.is_empty()) {
            return Err(bad("uploads: takes no value"));
        }
        if small_body_length(&headers)? != 0 {
            return Err(bad("body: must be empty"));
        }
        Ok(slot)
    })();
    let Slot { vid, .. } = match checked {
        Ok(s) => s,
        Err(r) => return drain_then(body, r.into_response()).await,
    };
    let id = app.lock().fresh_hex("upload_id", 16);
    let dir = parts_dir(&app.cfg.objects_dir, &id);
    if let Err(e) = tokio::fs::create_dir_all(&dir).await {
        tracing::warn!(error = %e, "sandbox could not make a parts folder");
        return tos_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "could not open the upload",
        );
    }
    app.lock().multiparts.insert(
        id.clone(),
        Multipart {
            vid,
            oid: oid.clone(),
            dir,
            parts: BTreeMap::new(),
            received: BTreeMap::new(),
            phase: Phase::Open,
        },
    );
    tracing::debug!(%oid, "multipart upload opened");
    Json(json!({"success": 0, "payload": {"uploadID": id}})).into_response()
}

/// The length of an init or completion body: chunked is refused (411) as everywhere
/// on TOS, but no `Content-Length` at all is an empty body (clients send none for one).
fn small_body_length(headers: &HeaderMap) -> Result<u64, TosError> {
    if tos::header(headers, axum::http::header::CONTENT_LENGTH).is_none()
        && !tos::is_chunked(headers)
    {
        return Ok(0);
    }
    content_length(headers)
}

/// What a part request promises, checked before a byte of its body is read.
struct PartPlan {
    id: String,
    number: u32,
    length: u64,
    crc32: u32,
    file: PathBuf,
}

fn plan_part(app: &App, oid: &str, query: &str, headers: &HeaderMap) -> Result<PartPlan, TosError> {
    authorize(app, oid, headers)?;
    let q = query_map(query)?;
    let id = upload_id(&q)?;
    let number = q
        .get("partNumber")
        .and_then(|v| part_number(v))
        .ok_or_else(|| {
            bad(format!(
                "partNumber: must be a whole number 1..={MAX_PARTS}"
            ))
        })?;
    let dir = open_upload(app, &id, oid)?;
    let length = content_length(headers)?;
    if length > MAX_PART {
        return Err(bad(format!(
            "part {number} is {length} bytes; a part is at most {MAX_PART} bytes (64 MiB)"
        )));
    }
    content_type(headers, "application/octet-stream")?;
    let crc32 = content_crc(headers)?;
    let file = dir.join(format!("{number}-{}", app.lock().fresh_hex("part", 8)));
    Ok(PartPlan {
        id,
        number,
        length,
        crc32,
        file,
    })
}

/// 3b.2: `PUT {object}?partNumber=N&uploadID=…`: the part streamed to its own file.
pub async fn part(app: App, oid: String, query: &str, headers: HeaderMap, body: Body) -> Response {
    let plan = match plan_part(&app, &oid, query, &headers) {
        Ok(p) => p,
        Err(r) => return drain_then(body, r.into_response()).await,
    };
    let got = match receive(body, &plan.file).await {
        Ok(r) => r,
        Err(e) => {
            let _ = tokio::fs::remove_file(&plan.file).await;
            return tos_error(
                StatusCode::BAD_REQUEST,
                format!("part not received whole: {e}"),
            );
        }
    };
    let n = plan.number;
    let refusal = if got.size != plan.length {
        Some(format!(
            "size mismatch: part {n} is {} bytes, Content-Length said {}",
            got.size, plan.length
        ))
    } else if got.crc32 != plan.crc32 {
        Some(format!(
            "CRC mismatch: Content-CRC32 says {:08x}, part {n} is {}",
            plan.crc32,
            got.crc32_hex()
        ))
    } else {
        None
    };
    if let Some(why) = refusal {
        let _ = tokio::fs::remove_file(&plan.file).await;
        return tos_error(StatusCode::BAD_REQUEST, why);
    }
    let stored = StoredPart {
        size: got.size,
        crc32: got.crc32,
        path: plan.file.clone(),
    };
    let replaced = {
        let mut st = app.lock();
        match st.multiparts.get_mut(&plan.id) {
            Some(m) if m.phase == Phase::Open => {
                *m.received.entry(n).or_insert(0) += 1;
                Ok(m.parts.insert(n, stored).map(|old| old.path))
            }
            Some(m) => Err(format!(
                "uploadID: this upload became {} while part {n} arrived",
                m.phase.name()
            )),
            None => Err("uploadID: the upload is gone".to_owned()),
        }
    };
    match replaced {
        Ok(old) => {
            if let Some(old) = old {
                let _ = tokio::fs::remove_file(old).await;
            }
            tracing::debug!(%oid, part = n, size = got.size, "part stored");
            let payload = json!({"part_number": n, "crc32": got.crc32_hex()});
            Json(json!({"success": 0, "payload": payload})).into_response()
        }
        Err(why) => {
            let _ = tokio::fs::remove_file(&plan.file).await;
            tos_error(StatusCode::CONFLICT, why)
        }
    }
}

/// The completion body `1:<crc1>,2:<crc2>,…` as (part number, CRC-32) pairs, in the
/// order given. Surrounding white space is allowed; nothing else extra.
pub(crate) fn parse_list(text: &str) -> Result<Vec<(u32, u32)>, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("part list: empty; send 1:<crc1>,2:<crc2>,…".to_owned());
    }
    text.split(',')
        .enumerate()
        .map(|(i, entry)| {
            let (n, crc) = entry
                .split_once(':')
                .ok_or_else(|| format!("part list: entry {} {entry:?} is not N:<crc32>", i + 1))?;
            let n = part_number(n)
                .ok_or_else(|| format!("part list: {n:?} is not a part number 1..={MAX_PARTS}"))?;
            let crc = parse_crc_hex(crc).ok_or_else(|| {
                format!("part list: part {n}'s CRC {crc:?} is not 8 lower-case hex digits")
            })?;
            Ok((n, crc))
        })
        .collect()
}

/// Checks a parsed part list against the parts received and step 2's `file_size`.
pub(crate) fn check_list(
    list: &[(u32, u32)],
    parts: &BTreeMap<u32, StoredPart>,
    file_size: u64,
) -> Result<(), String> {
    let mut sizes = Vec::with_capacity(list.len());
    for (i, &(n, crc)) in list.iter().enumerate() {
        let want = u32::try_from(i + 1).unwrap_or(u32::MAX);
        if n != want {
            let why = if list.iter().any(|&(m, _)| m == want) {
                "out of order"
            } else {
                "gap"
            };
            return Err(format!(
                "part list: {why}: position {want} lists part {n}; list every part, 1, 2, 3, … in order"
            ));
        }
        let Some(p) = parts.get(&n) else {
            return Err(format!("part {n} was not received"));
        };
        if p.crc32 != crc {
            return Err(format!(
                "part {n}: CRC {crc:08x} in the list, the received part's is {:08x}",
                p.crc32
            ));
        }
        sizes.push(p.size);
    }
    let Some((&last, rest)) = sizes.split_last() else {
        return Err("part list: empty".to_owned());
    };
    let part_size = sizes[0];
    for (i, &size) in rest.iter().enumerate() {
        let n = i + 1;
        if !(MIN_PART..=MAX_PART).contains(&size) {
            return Err(format!(
                "part {n} is {size} bytes; every part but the last must be \
                 {MIN_PART}..={MAX_PART} bytes (5 MiB..=64 MiB)"
            ));
        }
        if size != part_size {
            return Err(format!(
                "part {n} is {size} bytes but part 1 is {part_size}; every part but the \
                 last must be the same size"
            ));
        }
    }
    let n = sizes.len();
    if last == 0 {
        return Err(format!("part {n} (the last) is empty"));
    }
    if last > MAX_PART {
        return Err(format!(
            "part {n} (the last) is {last} bytes; a part is at most {MAX_PART} bytes (64 MiB)"
        ));
    }
    if n > 1 && last > part_size {
        return Err(format!(
            "part {n} (the last) is {last} bytes, larger than the part size {part_size}; \
             it may be smaller, not larger"
        ));
    }
    let total: u64 = sizes.iter().sum();
    if total != file_size {
        return Err(format!(
            "the parts add up to {total} bytes, but file_size was {file_size}"
        ));
    }
    Ok(())
}

/// What completing needs, gathered under the lock.
struct Assembly {
    sources: Vec<(PathBuf, u64)>,
    tmp: PathBuf,
    dest: PathBuf,
}

/// What a completion request turns into once its list has been read.
enum Next {
    /// Already completed with this same list.
    Done,
    Assemble(Assembly),
}

fn begin(
    app: &App,
    id: &str,
    oid: &str,
    list: &[(u32, u32)],
    file_size: u64,
) -> Result<Next, TosError> {
    let mut st = app.lock();
    let tmp_name = format!("{oid}.assemble-{}", st.fresh_hex("assemble", 8));
    let not_found = || {
        refused(
            StatusCode::NOT_FOUND,
            "uploadID: no such multipart upload for this object",
        )
    };
    let m = st.multiparts.get_mut(id).ok_or_else(not_found)?;
    if m.oid != oid {
        return Err(not_found());
    }
    match &m.phase {
        Phase::Completed(done) if done.as_slice() == list => return Ok(Next::Done),
        Phase::Completed(_) => {
            return Err(bad(
                "uploadID: already completed with a different part list",
            ));
        }
        Phase::Completing => {
            return Err(refused(
                StatusCode::CONFLICT,
                "uploadID: this upload is being completed already",
            ));
        }
        Phase::Open => {}
    }
    check_list(list, &m.parts, file_size).map_err(bad)?;
    m.phase = Phase::Completing;
    let sources = list
        .iter()
        .filter_map(|(n, _)| m.parts.get(n))
        .map(|p| (p.path.clone(), p.size))
        .collect();
    let dir = &app.cfg.objects_dir;
    Ok(Next::Assemble(Assembly {
        sources,
        tmp: dir.join(tmp_name),
        dest: tos::object_path(dir, oid),
    }))
}

/// Stream-copy the part files, in order, into `tmp` (computing the SHA-256), flush it to
/// disk and move it to `dest`. Returns the object's size and SHA-256.
fn assemble(a: &Assembly) -> std::io::Result<(u64, String)> {
    let result = (|| {
        let mut out = std::fs::File::create(&a.tmp)?;
        let mut sha = Sha256::new();
        let mut buf = vec![0u8; COPY_BUFFER];
        let mut total = 0u64;
        for (path, size) in &a.sources {
            let mut part = std::fs::File::open(path)?;
            let mut copied = 0u64;
            loop {
                let n = part.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                let bytes = buf.get(..n).unwrap_or_default();
                sha.update(bytes);
                out.write_all(bytes)?;
                copied += n as u64;
            }
            if copied != *size {
                return Err(std::io::Error::other(format!(
                    "a part file holds {copied} bytes, {size} were received"
                )));
            }
            total += copied;
        }
        out.sync_all()?;
        drop(out);
        std::fs::rename(&a.tmp, &a.dest)?;
        Ok((total, base16ct::lower::encode_string(&sha.finalize())))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&a.tmp);
    }
    result
}

/// 3b.3: `POST {object}?uploadID=…`, `text/plain` body `1:<crc1>,2:<crc2>,…`.
pub async fn complete(
    app: App,
    oid: String,
    query: &str,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let checked = (|| {
        let slot = authorize(&app, &oid, &headers)?;
        let id = upload_id(&query_map(query)?)?;
        let length = small_body_length(&headers)?;
        if length > MAX_LIST_BODY {
            return Err(bad(format!("part list: over {MAX_LIST_BODY} bytes")));
        }
        content_type(&headers, "text/plain")?;
        Ok((slot, id, length))
    })();
    let (slot, id, length) = match checked {
        Ok(c) => c,
        Err(r) => return drain_then(body, r.into_response()).await,
    };
    let limit = usize::try_from(length).unwrap_or(usize::MAX);
    let text = match axum::body::to_bytes(body, limit).await {
        Ok(bytes) => match String::from_utf8(bytes.to_vec()) {
            Ok(t) => t,
            Err(_) => return tos_error(StatusCode::BAD_REQUEST, "part list: not UTF-8"),
        },
        Err(e) => {
            return tos_error(
                StatusCode::BAD_REQUEST,
                format!("part list not received whole: {e}"),
            );
        }
    };
    let list = match parse_list(&text) {
        Ok(l) => l,
        Err(why) => return tos_error(StatusCode::BAD_REQUEST, why),
    };
    let assembly = match begin(&app, &id, &oid, &list, slot.file_size) {
        Ok(Next::Done) => return Json(json!({"success": 0})).into_response(),
        Ok(Next::Assemble(a)) => a,
        Err(r) => return r.into_response(),
    };
    let assembled = tokio::task::spawn_blocking(move || assemble(&assembly))
        .await
        .unwrap_or_else(|e| Err(std::io::Error::other(e)));
    let dir = {
        let mut st = app.lock();
        let (size, sha256) = match assembled {
            Ok(done) => done,
            Err(e) => {
                if let Some(m) = st.multiparts.get_mut(&id) {
                    m.phase = Phase::Open;
                }
                tracing::warn!(error = %e, "sandbox could not assemble an object");
                return tos_error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "could not assemble the object",
                );
            }
        };
        tracing::debug!(%oid, size, "multipart object assembled");
        if let Some(u) = st.uploads.get_mut(&slot.vid) {
            u.object = Some(Object { size, sha256 });
        }
        st.multiparts.get_mut(&id).map(|m| {
            m.phase = Phase::Completed(list);
            m.parts.clear();
            m.dir.clone()
        })
    };
    if let Some(dir) = dir {
        let _ = tokio::fs::remove_dir_all(dir).await;
    }
    Json(json!({"success": 0})).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(sizes: &[u64]) -> BTreeMap<u32, StoredPart> {
        (1u32..)
            .zip(sizes)
            .map(|(n, &size)| {
                let p = StoredPart {
                    size,
                    crc32: n * 11,
                    path: PathBuf::from(format!("/nowhere/{n}")),
                };
                (n, p)
            })
            .collect()
    }

    fn list(numbers: &[u32]) -> Vec<(u32, u32)> {
        numbers.iter().map(|&n| (n, n * 11)).collect()
    }

    const FIVE: u64 = 5 * MIB;

    #[test]
    fn lists_parse_strictly() {
        assert_eq!(
            parse_list("1:0000000b,2:00000016\n"),
            Ok(vec![(1, 11), (2, 22)])
        );
        for bad in [
            "",
            " \n",
            "1:0000000b,",
            "1=0000000b",
            "0:0000000b",
            "1:0000000B",
            "1:b",
            "1:0000000b, 2:00000016",
            "x:0000000b",
            "10001:0000000b",
        ] {
            assert!(parse_list(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_good_list_passes() {
        let p = parts(&[FIVE, FIVE, 1_363_149]);
        assert_eq!(
            check_list(&list(&[1, 2, 3]), &p, 2 * FIVE + 1_363_149),
            Ok(())
        );
        let one = parts(&[100]);
        assert_eq!(check_list(&list(&[1]), &one, 100), Ok(()));
        let max = parts(&[MAX_PART, MAX_PART]);
        assert_eq!(check_list(&list(&[1, 2]), &max, 2 * MAX_PART), Ok(()));
    }

    fn refusal(sizes: &[u64], numbers: &[u32], file_size: u64) -> String {
        check_list(&list(numbers), &parts(sizes), file_size).expect_err("refused")
    }

    #[test]
    fn every_refusal_names_its_reason() {
        let total = 2 * FIVE + 7;
        let p = [FIVE, FIVE, 7];
        assert!(refusal(&p, &[1, 3], total).contains("gap"));
        assert!(refusal(&p, &[2, 1, 3], total).contains("out of order"));
        assert!(refusal(&p, &[2, 3], total).contains("gap"));
        assert!(refusal(&p, &[1, 1, 2, 3], total).contains("out of order"));
        assert!(refusal(&p, &[1, 2, 3, 4], total).contains("part 4 was not received"));
        assert!(refusal(&p, &[1, 2], total).contains("add up"));
        assert!(refusal(&p, &[1, 2, 3], total + 1).contains("add up"));
        assert!(refusal(&[FIVE - 1, FIVE - 1, 7], &[1, 2, 3], 2 * FIVE + 5).contains("5 MiB"));
        assert!(
            refusal(&[MAX_PART + 1, 7], &[1, 2], MAX_PART + 8).contains("64 MiB"),
            "too large"
        );
        assert!(refusal(&[FIVE + 1, FIVE, 7], &[1, 2, 3], total + 1).contains("same size"));
        assert!(refusal(&[FIVE, FIVE + 1], &[1, 2], total).contains("not larger"));
        assert!(refusal(&[MAX_PART + 1], &[1], MAX_PART + 1).contains("64 MiB"));
        assert!(refusal(&[FIVE, 0], &[1, 2], FIVE).contains("empty"));
        assert!(check_list(&[], &parts(&p), total).is_err());
        let wrong_crc = vec![(1, 11), (2, 99), (3, 33)];
        let why = check_list(&wrong_crc, &parts(&p), total).expect_err("refused");
        assert!(why.contains("part 2: CRC 00000063"), "{why}");
    }

    #[test]
    fn part_numbers_are_one_based_and_bounded() {
        assert_eq!(part_number("1"), Some(1));
        assert_eq!(part_number("10000"), Some(10_000));
        assert_eq!(part_number("0"), None);
        assert_eq!(part_number("10001"), None);
        assert_eq!(part_number("+1"), None);
        assert_eq!(part_number(""), None);
    }

    #[test]
    fn assembling_copies_parts_in_order_and_cleans_up_on_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let write = |name: &str, bytes: &[u8]| {
            let p = dir.path().join(name);
            std::fs::write(&p, bytes).expect("write");
            p
        };
        let a = write("a", b"hello ");
        let b = write("b", b"world");
        let dest = dir.path().join("object");
        let job = Assembly {
            sources: vec![(a.clone(), 6), (b.clone(), 5)],
            tmp: dir.path().join("tmp"),
            dest: dest.clone(),
        };
        let (size, sha) = assemble(&job).expect("assembled");
        assert_eq!(size, 11);
        assert_eq!(std::fs::read(&dest).expect("object"), b"hello world");
        assert_eq!(
            sha,
            base16ct::lower::encode_string(&Sha256::digest(b"hello world"))
        );
        let short = Assembly {
            sources: vec![(a, 7)],
            tmp: dir.path().join("tmp2"),
            dest: dir.path().join("object2"),
        };
        assert!(assemble(&short).is_err());
        assert!(!short.tmp.exists() && !short.dest.exists());
    }
}
