//! Logging in: `/login` shows a fresh QR code; `/login/state` answers where it stands
//! (`waiting`, `scanned`, `sms`, `confirmed` with the session cookie, `expired` after
//! `qr_ttl`); `/login/sms` takes the SMS code. The inspection endpoints scan a code,
//! reveal its SMS code, make a session directly, and end sessions.

use std::collections::HashMap;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::http::header::{CACHE_CONTROL, SET_COOKIE};
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};

use super::state::{Creator, Login, LoginState, Session, millis};
use super::{Early, b64, pages, qr};
use crate::sandbox::state::App;

const DEFAULT_NICKNAME: &str = "sandbox";

/// A stable 11-digit uid for a nickname (the default uid of a scan).
fn uid_for(nickname: &str) -> String {
    let d = Sha256::digest(format!("douyin-uid\0{nickname}").as_bytes());
    let n = u64::from_be_bytes([d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]]);
    (10_000_000_000 + n % 90_000_000_000).to_string()
}

/// Open a session for `uid`/`nickname` (defaults: nickname `sandbox`, uid from it);
/// returns its `sessionid`.
pub(crate) fn open_session(creator: &Creator, uid: Option<&str>, nickname: Option<&str>) -> String {
    let nickname = nickname.unwrap_or(DEFAULT_NICKNAME).to_owned();
    let uid = uid.map_or_else(|| uid_for(&nickname), str::to_owned);
    let sid = super::guard::sealed_session_id(&uid, &nickname);
    let mut m = creator.lock();
    m.revoked_uids.remove(&uid);
    m.sessions.insert(sid.clone(), Session { uid, nickname });
    sid
}

fn error(status: StatusCode, msg: impl Into<String>) -> Response {
    (status, Json(json!({"error": msg.into()}))).into_response()
}

/// `GET /login`: a page with a new QR code.
pub(crate) async fn page(State(app): State<App>) -> Response {
    let now = super::now_ms(&app);
    let ttl = millis(app.creator.cfg.qr_ttl);
    let token = {
        let mut m = app.creator.lock();
        // Forget codes long dead (never a confirmed one still waiting to be polled).
        m.logins
            .retain(|_, l| now < l.created_ms.saturating_add(ttl.saturating_mul(10)));
        let token = m.hex("login", 16);
        let sms_code = m.digits("sms", 6);
        m.logins.insert(
            token.clone(),
            Login {
                created_ms: now,
                state: LoginState::Waiting,
                uid: String::new(),
                nickname: String::new(),
                sms_code,
                session: None,
            },
        );
        token
    };
    let Some(png) = qr::png(&qr::text_of(&token)) else {
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "could not draw the QR code",
        );
    };
    let html = pages::login_html(&token, &b64::encode(&png));
    ([(CACHE_CONTROL, "no-store")], Html(html)).into_response()
}

/// Where a login stands now; a poll (`step`) moves `scanned` on to confirmed.
fn advance(app: &App, token: &str, step: bool) -> &'static str {
    let now = super::now_ms(app);
    let ttl = millis(app.creator.cfg.qr_ttl);
    let mut m = app.creator.lock();
    let Some(login) = m.logins.get_mut(token) else {
        return "expired";
    };
    let expired = now >= login.created_ms.saturating_add(ttl);
    match login.state {
        LoginState::Confirmed => "confirmed",
        _ if expired => "expired",
        LoginState::Waiting => "waiting",
        LoginState::Sms => "sms",
        LoginState::Scanned => {
            if step {
                login.state = LoginState::Confirmed;
            }
            "scanned"
        }
    }
}

/// Confirm a login: open its session (once) and return the `sessionid`.
fn confirm(app: &App, token: &str) -> Option<String> {
    let (uid, nickname) = {
        let mut m = app.creator.lock();
        let login = m.logins.get_mut(token)?;
        if let Some(sid) = &login.session {
            return Some(sid.clone());
        }
        login.state = LoginState::Confirmed;
        (login.uid.clone(), login.nickname.clone())
    };
    let sid = open_session(&app.creator, Some(&uid), Some(&nickname));
    if let Some(login) = app.creator.lock().logins.get_mut(token) {
        login.session = Some(sid.clone());
    }
    Some(sid)
}

fn with_cookie(state: &str, sid: Option<String>) -> Response {
    let mut r = Json(json!({"state": state})).into_response();
    if let Some(sid) = sid
        && let Ok(v) =
            format!("sessionid={sid}; Path=/; Max-Age=2592000; HttpOnly; SameSite=Lax").parse()
    {
        r.headers_mut().insert(SET_COOKIE, v);
    }
    r
}

/// `GET /login/state?token=T`.
pub(crate) async fn poll(
    State(app): State<App>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let token = q.get("token").map(String::as_str).unwrap_or_default();
    match advance(&app, token, true) {
        "confirmed" => with_cookie("confirmed", confirm(&app, token)),
        state => with_cookie(state, None),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SmsForm {
    token: String,
    code: String,
}

/// `POST /login/sms {"token": T, "code": C}`.
pub(crate) async fn sms(State(app): State<App>, body: Bytes) -> Response {
    let Ok(form) = serde_json::from_slice::<SmsForm>(&body) else {
        return error(
            StatusCode::BAD_REQUEST,
            "body: want {\"token\": …, \"code\": …}",
        );
    };
    let right = {
        let m = app.creator.lock();
        match m.logins.get(&form.token) {
            Some(l) if l.state == LoginState::Sms => l.sms_code == form.code.trim(),
            _ => return with_cookie(advance(&app, &form.token, false), None),
        }
    };
    if !right {
        let body = json!({"state": "sms", "error": "验证码错误 (wrong code)"});
        return Json(body).into_response();
    }
    if advance(&app, &form.token, false) == "expired" {
        return with_cookie("expired", None);
    }
    with_cookie("confirmed", confirm(&app, &form.token))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Scan {
    token: String,
    uid: Option<String>,
    nickname: Option<String>,
    #[serde(default)]
    sms: bool,
}

/// `POST /__sandbox/douyin/login/scan {"token", "uid"?, "nickname"?, "sms"?}`: the
/// code is scanned (by that user); with `sms` the site then wants the SMS code.
pub(crate) async fn scan(State(app): State<App>, body: Bytes) -> Response {
    let scan = match serde_json::from_slice::<Scan>(&body) {
        Ok(s) => s,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("body: {e}")),
    };
    let state = advance(&app, &scan.token, false);
    if state != "waiting" {
        return error(
            StatusCode::CONFLICT,
            format!("this code is {state}, not waiting"),
        );
    }
    let nickname = scan.nickname.unwrap_or_else(|| DEFAULT_NICKNAME.to_owned());
    let uid = scan.uid.unwrap_or_else(|| uid_for(&nickname));
    let mut m = app.creator.lock();
    let Some(login) = m.logins.get_mut(&scan.token) else {
        return error(StatusCode::NOT_FOUND, "no such login code");
    };
    login.state = if scan.sms {
        LoginState::Sms
    } else {
        LoginState::Scanned
    };
    login.uid = uid.clone();
    login.nickname = nickname.clone();
    Json(json!({"scanned": true, "uid": uid, "nickname": nickname, "sms": scan.sms}))
        .into_response()
}

/// `GET /__sandbox/douyin/login/sms_code?token=T`: the SMS code the user would receive.
pub(crate) async fn sms_code(
    State(app): State<App>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let token = q.get("token").map(String::as_str).unwrap_or_default();
    match app.creator.lock().logins.get(token) {
        Some(l) if l.state == LoginState::Sms => Json(json!({"code": l.sms_code})).into_response(),
        Some(_) => error(StatusCode::CONFLICT, "this code does not want an SMS code"),
        None => error(StatusCode::NOT_FOUND, "no such login code"),
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Who {
    uid: Option<String>,
    nickname: Option<String>,
}

fn who(body: &[u8]) -> Result<Who, Early> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Who::default());
    }
    serde_json::from_slice(body)
        .map_err(|e| Box::new(error(StatusCode::BAD_REQUEST, format!("body: {e}"))))
}

/// `POST /__sandbox/douyin/logout {"uid"?}`: end that user's sessions (all without a uid)
/// and their pages; answers how many ended.
pub(crate) async fn logout(State(app): State<App>, body: Bytes) -> Response {
    let who = match who(&body) {
        Ok(w) => w,
        Err(r) => return *r,
    };
    let mut m = app.creator.lock();
    let before = m.sessions.len();
    match &who.uid {
        Some(uid) => {
            m.revoked_uids.insert(uid.clone());
        }
        None => m.revoked_all = true,
    }
    m.sessions
        .retain(|_, s| who.uid.as_ref().is_some_and(|uid| *uid != s.uid));
    let ended = before - m.sessions.len();
    let live: std::collections::HashSet<String> = m.sessions.keys().cloned().collect();
    m.pages.retain(|_, p| live.contains(&p.session));
    Json(json!({"ended": ended})).into_response()
}

/// `POST /__sandbox/douyin/session {"uid"?, "nickname"?}`: a session without a QR code
/// (for tests without a browser); answers the cookie.
pub(crate) async fn session(State(app): State<App>, body: Bytes) -> Response {
    let who = match who(&body) {
        Ok(w) => w,
        Err(r) => return *r,
    };
    let sid = open_session(&app.creator, who.uid.as_deref(), who.nickname.as_deref());
    Json(json!({"cookie": format!("sessionid={sid}")})).into_response()
}
