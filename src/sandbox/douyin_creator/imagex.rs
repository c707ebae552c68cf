//! The custom cover image (docs/douyin-creator.md §12) at ImageX: `ApplyImageUpload`
//! (`GET /?Action=…`) and `CommitImageUpload` (`POST /?Action=…`), both SigV4-checked
//! by our own verifier with scope `cn-north-1`/`imagex`; the image `PUT` to
//! `/{StoreUri}` on this host with the slot's `Auth` and a `Content-CRC32` that must
//! match; the image's width and height read here from its PNG, JPEG or WebP header
//! ([`image_size`]). create_v2 takes a committed image of the same user as
//! `cover.poster` when `custom_cover_image_width/height` are its real size.
//!
//! Errors (ours): as VOD's (`ResponseMetadata.Error`: 403 `SignatureDoesNotMatch`, 403
//! `InvalidAuthorization`, 400 `InvalidParameter`, also for a commit of an image that was
//! not uploaded whole); the upload answers `{"success": 1, "error": {"code", "error"}}`
//! with HTTP 401 (expired `Auth`), 403 (wrong `Auth`), 400 (bad CRC, length or not an
//! image, code 4001/4002).

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::header::{AUTHORIZATION, CONTENT_LENGTH};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::Early;
use super::image_size;
use super::item::Item;
use super::state::{Image, ImageObject, Memory, PostCover, millis};
use super::vod::{self, Signed, authenticate_for, check_params, error, query_map};
use crate::sandbox::receive::{self, parse_crc_hex};
use crate::sandbox::state::App;

const SERVICE: &str = "imagex";
const VERSION: &str = "2018-08-01";
/// The one ServiceId the creator page uses (docs/douyin-creator.md §12: ours, unverified).
pub(crate) const SERVICE_ID: &str = "jm8ajry58r";
const APPLY: &str = "ApplyImageUpload";
const COMMIT: &str = "CommitImageUpload";
const EXTENSIONS: &[&str] = &[".jpg", ".jpeg", ".png", ".webp"];
/// The largest image taken (ours).
const MAX_IMAGE: u64 = 20 * 1024 * 1024;

/// The first path segment of every image's `StoreUri`.
pub(crate) fn bucket() -> String {
    format!("tos-cn-i-{SERVICE_ID}")
}

/// Whether `uri`'s `Action` is one of ImageX's.
pub(crate) fn is_imagex(uri: &Uri) -> Option<bool> {
    match query_map(uri).get("Action").map(String::as_str) {
        Some(APPLY) => Some(true),
        Some(COMMIT) => Some(false),
        _ => None,
    }
}

/// `GET /?Action=…`: ApplyImageUpload, else VOD's ApplyUploadInner.
pub(crate) async fn get_root(
    app: State<App>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match is_imagex(&uri) {
        Some(true) => apply(&app, &method, &uri, &headers, &body),
        _ => vod::apply(app, method, uri, headers, body).await,
    }
}

/// `POST /?Action=…`: CommitImageUpload, else VOD's CommitUploadInner.
pub(crate) async fn post_root(
    app: State<App>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match is_imagex(&uri) {
        Some(false) => commit(&app, &method, &uri, &headers, &body),
        _ => vod::commit(app, method, uri, headers, body).await,
    }
}

fn metadata(action: &str, request_id: &str) -> Value {
    json!({"RequestId": request_id, "Action": action, "Version": VERSION, "Service": SERVICE, "Region": "cn-north-1"})
}

fn apply(app: &App, method: &Method, uri: &Uri, headers: &HeaderMap, body: &[u8]) -> Response {
    app.creator.lock().counts.imagex_apply += 1;
    let req = Signed {
        method,
        uri,
        headers,
        body,
    };
    let uid = match authenticate_for(app, SERVICE, APPLY, &req) {
        Ok(u) => u,
        Err(r) => return *r,
    };
    let q = query_map(uri);
    let want = [
        ("Version", VERSION),
        ("ServiceId", SERVICE_ID),
        ("UploadNum", "1"),
    ];
    let ext_ok = q
        .get("FileExtension")
        .is_some_and(|e| EXTENSIONS.contains(&e.as_str()));
    if let Err(m) = check_params(&q, &want).and_then(|()| {
        ext_ok
            .then_some(())
            .ok_or_else(|| format!("FileExtension: one of {}", EXTENSIONS.join(" ")))
    }) {
        return error(StatusCode::BAD_REQUEST, APPLY, "InvalidParameter", m);
    }
    let now = super::now_ms(app);
    let mut m = app.creator.lock();
    let store_uri = format!("{}/{}", bucket(), m.hex("image", 16));
    let image = Image {
        store_uri: store_uri.clone(),
        uid,
        auth: format!(
            "SpaceKey/{SERVICE_ID}/1/:version:v2:{}",
            m.hex("image-auth", 32)
        ),
        auth_expires_ms: now.saturating_add(millis(app.creator.cfg.tos_auth_ttl)),
        session_key: format!("eyJ{}", m.hex("image-session", 24)),
        object: None,
        committed: false,
    };
    let address = json!({
        "StoreInfos": [{"StoreUri": store_uri, "Auth": image.auth}],
        "UploadHosts": [app.creator.cfg.upload_host],
        "SessionKey": image.session_key,
    });
    m.image_sessions
        .insert(image.session_key.clone(), store_uri.clone());
    m.images.insert(store_uri, image);
    let request_id = m.hex("request", 12);
    Json(json!({"ResponseMetadata": metadata(APPLY, &request_id), "Result": {"UploadAddress": address}}))
        .into_response()
}

fn upload_error(status: StatusCode, code: u32, message: impl Into<String>) -> Response {
    let body = json!({"success": 1, "error": {"code": code, "error": message.into()}});
    (status, Json(body)).into_response()
}

/// Whether the upload's `Authorization` is `store_uri`'s live `Auth`.
fn check_auth(app: &App, store_uri: &str, headers: &HeaderMap) -> Result<(), Early> {
    let now = super::now_ms(app);
    let m = app.creator.lock();
    let Some(image) = m.images.get(store_uri) else {
        return Err(Box::new(upload_error(
            StatusCode::NOT_FOUND,
            4040,
            "no such StoreUri",
        )));
    };
    let given = headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok());
    if given != Some(image.auth.as_str()) {
        return Err(Box::new(upload_error(
            StatusCode::FORBIDDEN,
            4030,
            "Authorization is not this StoreUri's Auth",
        )));
    }
    if now >= image.auth_expires_ms {
        return Err(Box::new(upload_error(
            StatusCode::UNAUTHORIZED,
            4010,
            "the Auth expired: apply again",
        )));
    }
    Ok(())
}

/// `PUT /tos-cn-i-<ServiceId>/{key}`: the image's bytes, CRC-checked and read as an image.
pub(crate) async fn upload(
    State(app): State<App>,
    Path(key): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    app.creator.lock().counts.imagex_upload += 1;
    let store_uri = format!("{}/{key}", bucket());
    if let Err(r) = check_auth(&app, &store_uri, &headers) {
        return *r;
    }
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let Some(length) = header(CONTENT_LENGTH.as_str()).and_then(|v| v.parse::<u64>().ok()) else {
        return upload_error(StatusCode::BAD_REQUEST, 4000, "Content-Length: required");
    };
    let Some(crc) = header("content-crc32").and_then(parse_crc_hex) else {
        return upload_error(
            StatusCode::BAD_REQUEST,
            4000,
            "Content-CRC32: 8 lower-case hex digits",
        );
    };
    if length == 0 || length > MAX_IMAGE {
        return upload_error(
            StatusCode::BAD_REQUEST,
            4000,
            format!("an image is 1..={MAX_IMAGE} bytes"),
        );
    }
    let dir = app.creator.cfg.dir.join("images");
    let path = dir.join(app.creator.lock().hex("image-file", 12));
    let got = match tokio::fs::create_dir_all(&dir).await {
        Ok(()) => receive::receive(body, &path).await,
        Err(e) => Err(e),
    };
    let got = match got {
        Ok(g) if g.size == length && g.crc32 == crc => g,
        Ok(_) => {
            let _ = tokio::fs::remove_file(&path).await;
            return upload_error(
                StatusCode::BAD_REQUEST,
                4001,
                "CRC32 or length does not match",
            );
        }
        Err(e) => {
            let _ = tokio::fs::remove_file(&path).await;
            return upload_error(
                StatusCode::BAD_REQUEST,
                4000,
                format!("body not received: {e}"),
            );
        }
    };
    let read = path.clone();
    let size = tokio::task::spawn_blocking(move || image_size::of_file(&read)).await;
    let Ok(Some((format, width, height))) = size else {
        let _ = tokio::fs::remove_file(&path).await;
        return upload_error(
            StatusCode::BAD_REQUEST,
            4002,
            "not a PNG, JPEG or WebP image",
        );
    };
    let crc_hex = got.crc32_hex();
    let object = ImageObject {
        size: got.size,
        sha256: got.sha256,
        format,
        width,
        height,
        path,
    };
    let replaced = match app.creator.lock().images.get_mut(&store_uri) {
        Some(i) => i.object.replace(object),
        None => None,
    };
    if let Some(old) = replaced {
        let _ = tokio::fs::remove_file(&old.path).await;
    }
    Json(json!({"success": 0, "error": {"code": 200, "error": "Success"}, "payload": {"hash": crc_hex}}))
        .into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CommitBody {
    #[serde(rename = "SessionKey")]
    session_key: String,
}

fn commit(app: &App, method: &Method, uri: &Uri, headers: &HeaderMap, body: &[u8]) -> Response {
    app.creator.lock().counts.imagex_commit += 1;
    let req = Signed {
        method,
        uri,
        headers,
        body,
    };
    let uid = match authenticate_for(app, SERVICE, COMMIT, &req) {
        Ok(u) => u,
        Err(r) => return *r,
    };
    let bad = |m: String| error(StatusCode::BAD_REQUEST, COMMIT, "InvalidParameter", m);
    let q = query_map(uri);
    if let Err(m) = check_params(&q, &[("Version", VERSION), ("ServiceId", SERVICE_ID)]) {
        return bad(m);
    }
    let form: CommitBody = match serde_json::from_slice(body) {
        Ok(f) => f,
        Err(e) => return bad(format!("body: {e}")),
    };
    let mut m = app.creator.lock();
    let Some(store_uri) = m.image_sessions.get(&form.session_key).cloned() else {
        return bad("SessionKey: unknown".into());
    };
    let Some(image) = m.images.get_mut(&store_uri) else {
        return bad("SessionKey: unknown".into());
    };
    if image.uid != uid {
        return bad("SessionKey: not this user's upload".into());
    }
    let Some(object) = image.object.clone() else {
        return bad("the image was not uploaded whole: upload it first".into());
    };
    image.committed = true;
    let key = store_uri.rsplit('/').next().unwrap_or_default().to_owned();
    let request_id = m.hex("request", 12);
    Json(json!({
        "ResponseMetadata": metadata(COMMIT, &request_id),
        "Result": {
            "Results": [{"Uri": store_uri, "UriStatus": 2000}],
            "PluginResult": [{"FileName": key, "ImageUri": store_uri, "ImageWidth": object.width,
                "ImageHeight": object.height, "ImageFormat": object.format, "ImageSize": object.size}],
        },
    }))
    .into_response()
}

/// create_v2's cover when `it.poster` is not the video's own PosterUri: a committed image
/// of `uid`, its real size in `custom_cover_image_width/height`; else why not.
pub(super) fn posted_cover(m: &Memory, it: &Item, uid: &str) -> Result<PostCover, String> {
    let image = m
        .images
        .get(&it.poster)
        .filter(|i| i.uid == uid && i.committed)
        .and_then(|i| i.object.as_ref())
        .ok_or("item.cover.poster: neither the committed video's PosterUri nor a committed cover image of this user")?;
    let real = (i64::from(image.width), i64::from(image.height));
    if it.cover_size != real {
        return Err(format!(
            "item.cover.custom_cover_image_width/height: {}x{} is not the image's size {}x{}",
            it.cover_size.0, it.cover_size.1, real.0, real.1
        ));
    }
    Ok(PostCover {
        uri: it.poster.clone(),
        sha256: image.sha256.clone(),
        size: image.size,
        width: image.width,
        height: image.height,
    })
}
