//! The vod endpoints: upload parameters (step 2) and committing an upload (step 4).

use std::collections::HashMap;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::ParamsLayout;
use super::mp4;
use super::state::{App, Commit, Upload, millis};
use super::tos;

/// `code` for a bad or missing parameter (ours).
const BAD_PARAM: i64 = 4000;
/// `code` for an expired or unknown `auth` / `x-tt-access` (docs/douyin-web.md §2).
const BAD_AUTH: i64 = 4001;
/// `code` for a commit that does not fit an upload (docs/douyin-web.md §4).
const BAD_COMMIT: i64 = 4004;
/// `code` (with HTTP 401) for an expired upload `token` at step 4 (ours).
const TOKEN_EXPIRED: i64 = 4010;

/// A refused vod call: `code` and `message`.
struct VodError {
    http: StatusCode,
    code: i64,
    message: String,
}

impl IntoResponse for VodError {
    fn into_response(self) -> Response {
        tracing::debug!(code = self.code, message = %self.message, "vod call refused");
        let body = json!({"code": self.code, "message": self.message});
        (self.http, Json(body)).into_response()
    }
}

fn vod_error(code: i64, message: impl Into<String>) -> VodError {
    VodError {
        http: StatusCode::OK,
        code,
        message: message.into(),
    }
}

fn fail(http: StatusCode, code: i64, message: impl Into<String>) -> Response {
    VodError {
        http,
        code,
        message: message.into(),
    }
    .into_response()
}

fn refuse(code: i64, message: impl Into<String>) -> Response {
    fail(StatusCode::OK, code, message)
}

fn ok(data: Value) -> Response {
    Json(json!({"code": 2000, "message": "ok", "data": data})).into_response()
}

fn query_pairs(raw: Option<&str>) -> Result<Vec<(String, String)>, VodError> {
    serde_urlencoded::from_str(raw.unwrap_or(""))
        .map_err(|e| vod_error(BAD_PARAM, format!("query: not url-encoded ({e})")))
}

/// The account behind `authorization` + `x-tt-access`, or a 4001 refusal.
fn authorized(app: &App, headers: &HeaderMap) -> Result<String, VodError> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let Some(auth) = header("authorization") else {
        return Err(vod_error(BAD_AUTH, "authorization: missing"));
    };
    let st = app.lock();
    let Some(grant) = st.live_grant(auth) else {
        return Err(vod_error(
            BAD_AUTH,
            "authorization: unknown or expired auth; request new credentials",
        ));
    };
    if header("x-tt-access") != Some(grant.ak.as_str()) {
        return Err(vod_error(
            BAD_AUTH,
            "x-tt-access: missing or not the ak of this auth",
        ));
    }
    Ok(grant.account.clone())
}

/// Step 2: `GET /video/openapi/v1/?action=GetVideoUploadParams&use_edge_node=1&file_size=N`.
pub async fn upload_params(
    State(app): State<App>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    app.lock().counts.upload_params += 1;
    let account = match authorized(&app, &headers) {
        Ok(a) => a,
        Err(r) => return r.into_response(),
    };
    let q: HashMap<String, String> = match query_pairs(raw.as_deref()) {
        Ok(p) => p.into_iter().collect(),
        Err(r) => return r.into_response(),
    };
    let param = |k: &str| q.get(k).map(String::as_str);
    if param("action") != Some("GetVideoUploadParams") {
        return refuse(BAD_PARAM, "action: must be GetVideoUploadParams");
    }
    if param("use_edge_node") != Some("1") {
        return refuse(BAD_PARAM, "use_edge_node: must be 1");
    }
    let file_size = match param("file_size") {
        Some(s) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
            match s.parse::<u64>() {
                Ok(n) if n > 0 => n,
                _ => return refuse(BAD_PARAM, "file_size: must be a positive integer"),
            }
        }
        Some(_) => return refuse(BAD_PARAM, "file_size: must be a positive integer"),
        None => return refuse(BAD_PARAM, "file_size: missing"),
    };

    let mut st = app.lock();
    let vid = format!("v0200f{}", st.fresh_hex("vid", 13));
    let oid = format!("{}/{}", tos::BUCKET, st.fresh_hex("oid", 16));
    let tos_sign = format!("TOS-SIGN-{}", st.fresh_hex("tos_sign", 32));
    let token = st.fresh_hex("token", 24);
    let host = &app.cfg.tos_host;
    let extra_param = format!(
        "vidc=lf&vts={}&host={host}&edge_node=lf&upload_mode=serial&file_size={file_size}.000000",
        st.now_s()
    );
    let sign_expires_ms = st.now_ms().saturating_add(millis(app.cfg.sign_ttl));
    let node = json!({
        "vid": vid, "oid": oid, "tos_host": host, "tos_sign": tos_sign, "token": token,
        "extra_param": extra_param, "upload_mode": "serial",
    });
    st.params_served += 1;
    let top = match app.cfg.layout {
        ParamsLayout::Top => true,
        ParamsLayout::EdgeNodes => false,
        ParamsLayout::Alternate => st.params_served % 2 == 1,
    };
    st.oids.insert(oid.clone(), vid.clone());
    st.uploads.insert(
        vid.clone(),
        Upload {
            vid,
            oid,
            account,
            file_size,
            tos_sign,
            token,
            extra_param,
            sign_expires_ms,
            object: None,
            commit: None,
            aweme_id: None,
        },
    );
    drop(st);
    let data = if top {
        let mut data = node;
        if let Some(obj) = data.as_object_mut() {
            obj.insert("bucket".into(), json!(tos::BUCKET));
            obj.insert("edge_nodes".into(), json!([]));
        }
        data
    } else {
        json!({"edge_nodes": [node]})
    };
    ok(data)
}

/// Step 4's body (docs/douyin-web.md §4): all six fields, nothing else.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CommitBody {
    vid: String,
    oid: String,
    token: String,
    poster_ss: f64,
    is_exact_poster: bool,
    user_reference: String,
}

/// The query's pairs other than `action` must be exactly the upload's `extra_param` pairs.
fn check_extra(extra_param: &str, query: &[(String, String)]) -> Result<(), String> {
    let expected: Vec<(String, String)> =
        serde_urlencoded::from_str(extra_param).map_err(|e| e.to_string())?;
    let given: Vec<&(String, String)> = query.iter().filter(|(k, _)| k != "action").collect();
    for (k, v) in &expected {
        match given
            .iter()
            .filter(|(gk, _)| gk == k)
            .collect::<Vec<_>>()
            .as_slice()
        {
            [] => return Err(format!("{k}: missing (append extra_param verbatim)")),
            [(_, gv)] if gv == v => {}
            [(_, gv)] => return Err(format!("{k}: {gv:?} is not this upload's {v:?}")),
            _ => return Err(format!("{k}: given more than once")),
        }
    }
    if let Some((k, _)) = given
        .iter()
        .find(|(gk, _)| !expected.iter().any(|(ek, _)| ek == gk))
    {
        return Err(format!("{k}: not part of this upload's extra_param"));
    }
    Ok(())
}

/// Step 4: `POST /video/openapi/v1/?action=UpdateVideoUploadInfos&{extra_param}`.
pub async fn commit(
    State(app): State<App>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> Response {
    app.lock().counts.commit += 1;
    let account = match authorized(&app, &headers) {
        Ok(a) => a,
        Err(r) => return r.into_response(),
    };
    let query = match query_pairs(raw.as_deref()) {
        Ok(p) => p,
        Err(r) => return r.into_response(),
    };
    let actions: Vec<_> = query.iter().filter(|(k, _)| k == "action").collect();
    if !matches!(actions.as_slice(), [(_, a)] if a == "UpdateVideoUploadInfos") {
        return refuse(BAD_PARAM, "action: must be UpdateVideoUploadInfos");
    }
    let json_type = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
    if !json_type {
        return refuse(BAD_PARAM, "Content-Type: must be application/json");
    }
    let req: CommitBody = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => return refuse(BAD_PARAM, format!("body: {e}")),
    };
    if !(req.poster_ss.is_finite() && req.poster_ss >= 0.0) {
        return refuse(BAD_PARAM, "poster_ss: must be a number >= 0");
    }
    tracing::debug!(
        poster_ss = req.poster_ss,
        is_exact_poster = req.is_exact_poster,
        user_reference = %req.user_reference,
        "commit requested"
    );

    let (path, size) = {
        let st = app.lock();
        let Some(upload) = st.uploads.get(&req.vid) else {
            return refuse(BAD_COMMIT, "vid: no such upload");
        };
        if upload.oid != req.oid {
            return refuse(BAD_COMMIT, "oid: does not belong to this vid");
        }
        if upload.token != req.token {
            return refuse(BAD_COMMIT, "token: does not belong to this vid");
        }
        if upload.account != account {
            return refuse(BAD_COMMIT, "vid: belongs to another account");
        }
        if let Err(why) = check_extra(&upload.extra_param, &query) {
            return refuse(BAD_PARAM, format!("extra_param: {why}"));
        }
        if st.now_ms() >= upload.sign_expires_ms {
            return fail(
                StatusCode::UNAUTHORIZED,
                TOKEN_EXPIRED,
                "token: expired; request new upload parameters and upload again",
            );
        }
        match &upload.object {
            Some(o) if o.size == upload.file_size => {}
            _ => return refuse(BAD_COMMIT, "object: missing or incomplete; upload it first"),
        }
        if let Some(c) = &upload.commit {
            return committed(upload, c);
        }
        (
            tos::object_path(&app.cfg.objects_dir, &upload.oid),
            upload.file_size,
        )
    };

    let info = tokio::task::spawn_blocking(move || {
        std::fs::File::open(&path)
            .map(|mut f| mp4::probe(&mut f, size))
            .unwrap_or_default()
    })
    .await
    .unwrap_or_default();

    let mut st = app.lock();
    let poster_oid = format!("tos-cn-p-0000/{}", st.fresh_hex("poster", 16));
    let Some(upload) = st.uploads.get_mut(&req.vid) else {
        return refuse(BAD_COMMIT, "vid: no such upload");
    };
    let commit = upload.commit.get_or_insert(Commit {
        poster_oid,
        width: info.width,
        height: info.height,
        duration: info.duration,
    });
    let c = commit.clone();
    committed(upload, &c)
}

fn committed(upload: &Upload, c: &Commit) -> Response {
    ok(json!({
        "video": {"vid": upload.vid, "oid": upload.oid, "width": c.width, "height": c.height,
                  "duration": c.duration},
        "poster": {"oid": c.poster_oid},
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(s: &str) -> Vec<(String, String)> {
        serde_urlencoded::from_str(s).expect("pairs")
    }

    #[test]
    fn extra_param_must_come_back_whole() {
        let extra =
            "vidc=lf&vts=1&host=127.0.0.1:80&edge_node=lf&upload_mode=serial&file_size=5.000000";
        assert_eq!(
            check_extra(
                extra,
                &pairs(&format!("action=UpdateVideoUploadInfos&{extra}"))
            ),
            Ok(())
        );
        let encoded = extra.replace(':', "%3A");
        assert_eq!(
            check_extra(extra, &pairs(&format!("action=x&{encoded}"))),
            Ok(())
        );
        assert!(check_extra(extra, &pairs("action=x&vidc=lf")).is_err());
        let wrong = extra.replace("vts=1", "vts=2");
        assert!(
            check_extra(extra, &pairs(&wrong))
                .unwrap_err()
                .starts_with("vts")
        );
        assert!(check_extra(extra, &pairs(&format!("{extra}&x=1"))).is_err());
        assert!(check_extra(extra, &pairs(&format!("{extra}&vidc=lf"))).is_err());
    }
}
