//! The authorize page (page §1.2–1.3): `GET /v2/auth/authorize/` checks the request and
//! shows an approval form; approving (the form's `POST`, the sandbox-only query
//! `sandbox_approve=<username>` on the `GET`, or `POST /__sandbox/tiktok/approve`) makes a
//! single-use code and redirects to the loopback `redirect_uri` with `code`, `scopes` and
//! `state`; denying redirects with `error=access_denied`.

use std::collections::HashMap;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::http::header::LOCATION;
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::rules;
use super::state::{Code, Memory};
use crate::sandbox::state::App;

/// A checked authorization request.
#[derive(Clone, Debug)]
struct AuthRequest {
    client_key: String,
    scopes: Vec<String>,
    redirect_uri: String,
    state: String,
    challenge: String,
}

/// Why a request was refused: shown as a page (no trustworthy `redirect_uri`), or sent
/// back to the client's `redirect_uri`.
#[derive(Debug)]
enum Refusal {
    Page(String),
    Redirect(String),
}

/// Parameters, each given once.
fn params(query: &str) -> Result<HashMap<String, String>, Refusal> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query)
        .map_err(|e| Refusal::Page(format!("the query does not parse: {e}")))?;
    let mut map = HashMap::new();
    for (k, v) in pairs {
        if map.insert(k.clone(), v).is_some() {
            return Err(Refusal::Page(format!("`{k}` is given twice")));
        }
    }
    Ok(map)
}

/// `http://127.0.0.1:<port>/callback/` or `http://localhost:<port>/callback/` (page §1).
fn loopback(uri: &str) -> bool {
    let Ok(u) = reqwest::Url::parse(uri) else {
        return false;
    };
    u.scheme() == "http"
        && matches!(u.host_str(), Some("127.0.0.1" | "localhost"))
        && u.port().is_some()
        && u.path() == "/callback/"
        && u.query().is_none()
        && u.fragment().is_none()
        && u.username().is_empty()
        && u.as_str() == uri
}

fn error_location(redirect_uri: &str, state: &str, error: &str, description: &str) -> String {
    let q = serde_urlencoded::to_string([
        ("error", error),
        ("error_description", description),
        ("state", state),
    ])
    .unwrap_or_default();
    format!("{redirect_uri}?{q}")
}

fn check(p: &HashMap<String, String>, m: &Memory) -> Result<AuthRequest, Refusal> {
    let get = |k: &str| p.get(k).map(String::as_str).unwrap_or("");
    let client_key = get("client_key");
    if client_key.is_empty() || !(m.open_registration || m.apps.contains_key(client_key)) {
        return Err(Refusal::Page("client_key: no such app".into()));
    }
    let redirect_uri = get("redirect_uri");
    if !loopback(redirect_uri) {
        return Err(Refusal::Page(
            "redirect_uri must be http://127.0.0.1:<port>/callback/ or http://localhost:<port>/callback/".into(),
        ));
    }
    let state = get("state");
    let refuse =
        |error: &str, d: &str| Refusal::Redirect(error_location(redirect_uri, state, error, d));
    if get("response_type") != "code" {
        return Err(refuse(
            "unsupported_response_type",
            "response_type must be code",
        ));
    }
    let scopes: Vec<String> = get("scope").split(',').map(str::to_owned).collect();
    if scopes.iter().any(|s| !rules::SCOPES.contains(&s.as_str())) {
        return Err(refuse(
            "invalid_scope",
            "scope: a comma-separated list of known scopes",
        ));
    }
    if state.is_empty() {
        return Err(refuse("invalid_request", "state is required"));
    }
    let challenge = get("code_challenge");
    let hex = challenge.len() == 64
        && challenge
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    if !hex {
        return Err(refuse(
            "invalid_request",
            "code_challenge must be the lower-case hex SHA-256 of the code_verifier (64 characters)",
        ));
    }
    if get("code_challenge_method") != "S256" {
        return Err(refuse(
            "invalid_request",
            "code_challenge_method must be S256",
        ));
    }
    Ok(AuthRequest {
        client_key: client_key.to_owned(),
        scopes,
        redirect_uri: redirect_uri.to_owned(),
        state: state.to_owned(),
        challenge: challenge.to_owned(),
    })
}

/// The user's answer: approve as `username` (the first account if `None`), or deny.
fn answer(
    app: &App,
    p: &HashMap<String, String>,
    username: Option<&str>,
    deny: bool,
) -> Result<String, Refusal> {
    let now = super::now_ms(app);
    let mut m = app.tiktok.lock();
    let req = check(p, &m)?;
    if deny {
        return Ok(error_location(
            &req.redirect_uri,
            &req.state,
            "access_denied",
            "the user denied the request",
        ));
    }
    let creator = match username.filter(|u| !u.is_empty() && *u != "1") {
        Some(u) => m.creators.iter().find(|c| c.info.username == u),
        None => m.creators.first(),
    };
    let Some(open_id) = creator.map(|c| c.open_id.clone()) else {
        return Err(Refusal::Page(format!(
            "no such sandbox account: {}",
            username.unwrap_or("")
        )));
    };
    // Real codes carry characters that must be URL-decoded (page §1.3).
    let code = format!("{}*!{}", m.hex("code", 16), m.hex("code", 8));
    m.codes
        .retain(|_, c| now < c.created_ms.saturating_add(super::millis(rules::CODE_TTL)));
    m.codes.insert(
        code.clone(),
        Code {
            client_key: req.client_key,
            redirect_uri: req.redirect_uri.clone(),
            challenge: req.challenge,
            scopes: req.scopes.clone(),
            open_id,
            created_ms: now,
            used: false,
        },
    );
    let q = serde_urlencoded::to_string([
        ("code", code.as_str()),
        ("scopes", &req.scopes.join(",")),
        ("state", &req.state),
    ])
    .unwrap_or_default();
    Ok(format!("{}?{q}", req.redirect_uri))
}

fn redirect(location: &str) -> Response {
    (StatusCode::FOUND, [(LOCATION, location.to_owned())]).into_response()
}

fn refused(r: Refusal) -> Response {
    match r {
        Refusal::Redirect(location) => redirect(&location),
        Refusal::Page(why) => {
            let body = format!(
                "<!doctype html><title>TikTok (sandbox)</title><p>This request cannot be authorized: {}</p>",
                escape(&why)
            );
            (StatusCode::BAD_REQUEST, Html(body)).into_response()
        }
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// `GET /v2/auth/authorize/?…`: the approval page, or with `sandbox_approve=<username|1>`
/// (or `sandbox_deny=1`) the redirect at once.
pub(crate) async fn page(State(app): State<App>, RawQuery(query): RawQuery) -> Response {
    app.tiktok.lock().counts.authorize += 1;
    let mut p = match params(query.as_deref().unwrap_or("")) {
        Ok(p) => p,
        Err(r) => return refused(r),
    };
    let approve = p.remove("sandbox_approve");
    let deny = p.remove("sandbox_deny").is_some();
    if approve.is_some() || deny {
        return match answer(&app, &p, approve.as_deref(), deny) {
            Ok(location) => redirect(&location),
            Err(r) => refused(r),
        };
    }
    let checked = check(&p, &app.tiktok.lock());
    match checked {
        Ok(req) => Html(form(&app, &p, &req)).into_response(),
        Err(r) => refused(r),
    }
}

fn form(app: &App, p: &HashMap<String, String>, req: &AuthRequest) -> String {
    let hidden: String = p
        .iter()
        .map(|(k, v)| {
            format!(
                "<input type=hidden name=\"{}\" value=\"{}\">",
                escape(k),
                escape(v)
            )
        })
        .collect();
    let accounts: String = app
        .tiktok
        .lock()
        .creators
        .iter()
        .map(|c| {
            format!(
                "<option value=\"{0}\">@{0} ({1})</option>",
                escape(&c.info.username),
                escape(&c.info.nickname)
            )
        })
        .collect();
    format!(
        "<!doctype html><meta charset=utf-8><title>Authorize (TikTok sandbox)</title>\
         <h1>Authorize app {key}</h1><p>It asks for: {scopes}</p>\
         <form method=post action=\"/v2/auth/authorize/\">{hidden}\
         <label>Account <select name=sandbox_username>{accounts}</select></label>\
         <button name=sandbox_action value=approve>Authorize</button>\
         <button name=sandbox_action value=deny>Cancel</button></form>",
        key = escape(&req.client_key),
        scopes = escape(&req.scopes.join(", ")),
    )
}

/// `POST /v2/auth/authorize/`: the approval form's answer.
pub(crate) async fn submit(State(app): State<App>, body: Bytes) -> Response {
    let text = String::from_utf8_lossy(&body);
    let mut p = match params(&text) {
        Ok(p) => p,
        Err(r) => return refused(r),
    };
    let username = p.remove("sandbox_username");
    let deny = p.remove("sandbox_action").as_deref() == Some("deny");
    match answer(&app, &p, username.as_deref(), deny) {
        Ok(location) => redirect(&location),
        Err(r) => refused(r),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Approve {
    url: String,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    deny: bool,
}

/// `POST /__sandbox/tiktok/approve {"url": "<authorize address>", "username"?, "deny"?}`:
/// the user's answer without a browser; answers `{"location": "<redirect>"}` (the client's
/// loopback address with `code`, `scopes`, `state`), or 400 `{"error"}`.
pub(crate) async fn approve(State(app): State<App>, body: Bytes) -> Response {
    let bad = |e: String| (StatusCode::BAD_REQUEST, Json(json!({"error": e}))).into_response();
    let a: Approve = match serde_json::from_slice(&body) {
        Ok(a) => a,
        Err(e) => {
            return bad(format!(
                "expected {{\"url\", \"username\"?, \"deny\"?}}: {e}"
            ));
        }
    };
    let query = a.url.split_once('?').map_or("", |(_, q)| q);
    let result = params(query).and_then(|p| answer(&app, &p, a.username.as_deref(), a.deny));
    match result {
        Ok(location) => Json(json!({"location": location})).into_response(),
        Err(Refusal::Redirect(location)) => Json(json!({"location": location})).into_response(),
        Err(Refusal::Page(why)) => bad(why),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_callbacks_with_a_port() {
        assert!(loopback("http://127.0.0.1:8080/callback/"));
        assert!(loopback("http://localhost:1/callback/"));
        assert!(!loopback("http://127.0.0.1/callback/"));
        assert!(!loopback("https://127.0.0.1:8080/callback/"));
        assert!(!loopback("http://127.0.0.1:8080/callback"));
        assert!(!loopback("http://127.0.0.1:8080/callback/?x=1"));
        assert!(!loopback("http://example.com:8080/callback/"));
        assert!(!loopback("http://127.0.0.1:08080/callback/"));
    }
}
