//! Steps 2 and 4 at the VOD endpoint `/?Action=…`: `ApplyUploadInner` (`GET`) hands out an
//! upload slot (Vid, StoreUri on this sandbox's own host, TOS `Auth`, SessionKey);
//! `CommitUploadInner` (`POST`) commits a complete object. Both need SigV4 (region
//! `cn-north-1`, service `vod`) with live STS credentials, checked exactly.
//!
//! Errors (ours): HTTP 403 `SignatureDoesNotMatch` for a badly signed request, HTTP 403
//! `InvalidAuthorization` for expired or unknown credentials, HTTP 400
//! `InvalidParameter` for bad parameters or an object that is not complete.

use std::collections::HashMap;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::Early;
use super::sigv4::{self, Refused};
use super::state::{Commit, Object, Upload, millis};
use crate::sandbox::state::App;

const REGION: &str = "cn-north-1";
const SERVICE: &str = "vod";
const VERSION: &str = "2020-11-19";
/// Most seconds between `x-amz-date` and the real clock.
const MAX_SKEW_S: i64 = 15 * 60;

fn metadata(action: &str, request_id: &str) -> Value {
    json!({"RequestId": request_id, "Action": action, "Version": VERSION, "Service": SERVICE, "Region": REGION})
}

pub(super) fn error(
    status: StatusCode,
    action: &str,
    code: &str,
    message: impl Into<String>,
) -> Response {
    let mut meta = metadata(action, "sandbox");
    meta["Error"] = json!({"Code": code, "Message": message.into()});
    (status, Json(json!({"ResponseMetadata": meta}))).into_response()
}

pub(super) fn query_map(uri: &Uri) -> HashMap<String, String> {
    uri.query()
        .and_then(|q| serde_urlencoded::from_str::<Vec<(String, String)>>(q).ok())
        .unwrap_or_default()
        .into_iter()
        .collect()
}

fn real_now_s() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// `YYYYMMDDTHHMMSSZ` → unix seconds.
fn amz_seconds(v: &str) -> Option<i64> {
    let fmt = time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
    let t = time::PrimitiveDateTime::parse(v, &fmt).ok()?;
    Some(t.assume_utc().unix_timestamp())
}

/// The uploader's uid if the request is signed right with live STS credentials.
fn authenticate(
    app: &App,
    action: &str,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<String, Early> {
    let req = Signed {
        method,
        uri,
        headers,
        body,
    };
    authenticate_for(app, SERVICE, action, &req)
}

/// A request whose SigV4 signature is to be checked.
pub(super) struct Signed<'a> {
    pub method: &'a Method,
    pub uri: &'a Uri,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
}

/// [`authenticate`] for the SigV4 `service` (`vod`, or `imagex` for the cover image).
pub(super) fn authenticate_for(
    app: &App,
    service: &str,
    action: &str,
    req: &Signed<'_>,
) -> Result<String, Early> {
    let Signed {
        method,
        uri,
        headers,
        body,
    } = *req;
    let mismatch = |m: String| {
        Box::new(error(
            StatusCode::FORBIDDEN,
            action,
            "SignatureDoesNotMatch",
            m,
        ))
    };
    let pairs: Vec<(String, String)> = headers
        .iter()
        .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
        .collect();
    let Some(value) = sigv4::header(&pairs, "authorization") else {
        return Err(mismatch("no Authorization header".into()));
    };
    let auth = sigv4::parse_authorization(value).map_err(mismatch)?;
    if auth.region != REGION || auth.service != service {
        return Err(mismatch(format!("scope must be {REGION}/{service}")));
    }
    for needed in ["x-amz-security-token", "x-amz-date", "host"] {
        if !auth.signed_headers.iter().any(|h| h == needed) {
            return Err(mismatch(format!("{needed} must be signed")));
        }
    }
    if sigv4::header(&pairs, "x-amz-content-sha256").is_some()
        && !auth
            .signed_headers
            .iter()
            .any(|h| h == "x-amz-content-sha256")
    {
        return Err(mismatch(
            "x-amz-content-sha256 is sent but not signed".into(),
        ));
    }
    let amz = sigv4::header(&pairs, "x-amz-date").and_then(amz_seconds);
    if amz.is_none_or(|t| (t - real_now_s()).abs() > MAX_SKEW_S) {
        return Err(mismatch(
            "x-amz-date missing or more than 15 minutes off".into(),
        ));
    }
    let now = super::now_ms(app);
    let (secret, token, uid) = {
        let m = app.creator.lock();
        match m.sts.get(&auth.access_key) {
            Some(s) if now < s.expires_ms => {
                (s.secret.clone(), s.session_token.clone(), s.uid.clone())
            }
            Some(_) => {
                return Err(Box::new(error(
                    StatusCode::FORBIDDEN,
                    action,
                    "InvalidAuthorization",
                    "the STS credentials expired",
                )));
            }
            None => {
                return Err(Box::new(error(
                    StatusCode::FORBIDDEN,
                    action,
                    "InvalidAuthorization",
                    "unknown access key",
                )));
            }
        }
    };
    if sigv4::header(&pairs, "x-amz-security-token") != Some(token.as_str()) {
        return Err(mismatch(
            "x-amz-security-token is not the access key's SessionToken".into(),
        ));
    }
    let req = sigv4::Received {
        method: method.as_str(),
        path: uri.path(),
        query: uri.query().unwrap_or(""),
        headers: &pairs,
        body,
    };
    match sigv4::verify(&req, &auth, &secret) {
        Ok(()) => Ok(uid),
        Err(Refused::Malformed(m)) => Err(mismatch(m)),
        Err(Refused::Mismatch) => Err(mismatch("the signature does not match".into())),
    }
}

pub(super) fn check_params(
    q: &HashMap<String, String>,
    want: &[(&str, &str)],
) -> Result<(), String> {
    for (k, v) in want {
        if q.get(*k).map(String::as_str) != Some(*v) {
            return Err(format!("{k}: must be {v}"));
        }
    }
    Ok(())
}

/// `GET /?Action=ApplyUploadInner&Version=2020-11-19&SpaceName=aweme&FileType=video&IsInner=1&FileSize=N`.
pub(crate) async fn apply(
    State(app): State<App>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    const ACTION: &str = "ApplyUploadInner";
    app.creator.lock().counts.apply_upload += 1;
    let q = query_map(&uri);
    if q.get("Action").map(String::as_str) != Some(ACTION) {
        return error(
            StatusCode::BAD_REQUEST,
            "",
            "InvalidAction",
            "GET / serves Action=ApplyUploadInner only",
        );
    }
    let uid = match authenticate(&app, ACTION, &method, &uri, &headers, &body) {
        Ok(u) => u,
        Err(r) => return *r,
    };
    let want = [
        ("Version", VERSION),
        ("SpaceName", "aweme"),
        ("FileType", "video"),
        ("IsInner", "1"),
    ];
    if let Err(m) = check_params(&q, &want) {
        return error(StatusCode::BAD_REQUEST, ACTION, "InvalidParameter", m);
    }
    let file_size = match q.get("FileSize").map(|s| s.parse::<u64>()) {
        Some(Ok(n)) if n > 0 => n,
        _ => {
            return error(
                StatusCode::BAD_REQUEST,
                ACTION,
                "InvalidParameter",
                "FileSize: a positive integer",
            );
        }
    };
    let now = super::now_ms(&app);
    let mut m = app.creator.lock();
    let vid = format!("v0d00fg10000{}", m.hex("vid", 10));
    let store_uri = format!("tos-cn-ve-15/o{}", m.hex("store", 16));
    let auth = format!("SpaceKey/aweme/1/:version:v2:{}", m.hex("tos-auth", 32));
    let session_key = format!("eyJ{}", m.hex("session-key", 24));
    let request_id = m.hex("request", 12);
    let upload = Upload {
        vid: vid.clone(),
        store_uri: store_uri.clone(),
        uid,
        file_size,
        auth: auth.clone(),
        auth_expires_ms: now.saturating_add(millis(app.creator.cfg.tos_auth_ttl)),
        session_key: session_key.clone(),
        object: None,
        commit: None,
        item_id: None,
    };
    m.store_uris.insert(store_uri.clone(), vid.clone());
    m.session_keys.insert(session_key.clone(), vid.clone());
    m.uploads.insert(vid.clone(), upload);
    let node = json!({
        "Vid": vid,
        "UploadHost": app.creator.cfg.upload_host,
        "StoreInfos": [{"StoreUri": store_uri, "Auth": auth}],
        "SessionKey": session_key,
        "UploadHeader": {},
    });
    Json(json!({
        "ResponseMetadata": metadata(ACTION, &request_id),
        "Result": {"InnerUploadAddress": {"UploadNodes": [node]}},
    }))
    .into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CommitBody {
    #[serde(rename = "SessionKey")]
    session_key: String,
    #[serde(rename = "Functions", default)]
    functions: Vec<Function>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Function {
    name: String,
    #[serde(default)]
    input: Option<Value>,
}

/// Commit `vid`'s complete `object` for the first time: its metadata (from the MP4, or
/// 1080×1920 when it has none) and a poster; a commit made meanwhile wins.
async fn first_commit(app: &App, vid: &str, object: &Object) -> Result<Commit, Early> {
    const ACTION: &str = "CommitUploadInner";
    let path = object.path.clone();
    let info = tokio::task::spawn_blocking(move || {
        let mut f = std::fs::File::open(&path)?;
        let len = f.metadata()?.len();
        Ok::<_, std::io::Error>(crate::sandbox::mp4::probe(&mut f, len))
    })
    .await;
    let Ok(Ok(info)) = info else {
        let status = StatusCode::INTERNAL_SERVER_ERROR;
        return Err(Box::new(error(
            status,
            ACTION,
            "InternalError",
            "object unreadable",
        )));
    };
    let mut m = app.creator.lock();
    let poster_uri = format!("tos-cn-p-0015/{}", m.hex("poster", 16));
    let c = Commit {
        poster_uri,
        width: if info.width == 0 { 1080 } else { info.width },
        height: if info.height == 0 { 1920 } else { info.height },
        duration: info.duration,
    };
    match m.uploads.get_mut(vid) {
        Some(u) => Ok(u.commit.get_or_insert(c).clone()),
        None => Err(Box::new(error(
            StatusCode::BAD_REQUEST,
            ACTION,
            "InvalidParameter",
            "SessionKey: unknown",
        ))),
    }
}

/// `POST /?Action=CommitUploadInner&Version=2020-11-19&SpaceName=aweme` with
/// `{"SessionKey", "Functions"}`.
pub(crate) async fn commit(
    State(app): State<App>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    const ACTION: &str = "CommitUploadInner";
    app.creator.lock().counts.commit_upload += 1;
    let q = query_map(&uri);
    if q.get("Action").map(String::as_str) != Some(ACTION) {
        return error(
            StatusCode::BAD_REQUEST,
            "",
            "InvalidAction",
            "POST / serves Action=CommitUploadInner only",
        );
    }
    let uid = match authenticate(&app, ACTION, &method, &uri, &headers, &body) {
        Ok(u) => u,
        Err(r) => return *r,
    };
    let bad = |m: String| error(StatusCode::BAD_REQUEST, ACTION, "InvalidParameter", m);
    if let Err(m) = check_params(&q, &[("Version", VERSION), ("SpaceName", "aweme")]) {
        return bad(m);
    }
    let form: CommitBody = match serde_json::from_slice(&body) {
        Ok(f) => f,
        Err(e) => return bad(format!("body: {e}")),
    };
    for f in &form.functions {
        let ok = match f.name.as_str() {
            "GetMeta" => f.input.is_none(),
            "Snapshot" => f
                .input
                .as_ref()
                .is_some_and(|i| i.get("SnapshotTime").is_some_and(Value::is_number)),
            _ => false,
        };
        if !ok {
            return bad(format!(
                "Functions: unknown or malformed function {}",
                f.name
            ));
        }
    }
    let (vid, object, existing) = {
        let m = app.creator.lock();
        let Some(u) = m
            .session_keys
            .get(&form.session_key)
            .and_then(|v| m.uploads.get(v))
        else {
            return bad("SessionKey: unknown".into());
        };
        if u.uid != uid {
            return bad("SessionKey: not this user's upload".into());
        }
        (u.vid.clone(), u.object.clone(), u.commit.clone())
    };
    let Some(object) = object else {
        return bad("the object is not complete: finish its TOS upload first".into());
    };
    let commit = match existing {
        Some(c) => c,
        None => match first_commit(&app, &vid, &object).await {
            Ok(c) => c,
            Err(r) => return *r,
        },
    };
    let request_id = app.creator.lock().hex("request", 12);
    Json(json!({
        "ResponseMetadata": metadata(ACTION, &request_id),
        "Result": {"Results": [{
            "Vid": vid,
            "VideoMeta": {"Width": commit.width, "Height": commit.height, "Duration": commit.duration, "Size": object.size},
            "PosterUri": commit.poster_uri,
        }]},
    }))
    .into_response()
}
