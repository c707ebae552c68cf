//! `POST /v2/oauth/token/` (page §1.4–1.5: a code with its PKCE verifier, or a refresh
//! token that rotates) and `POST /v2/oauth/revoke/` (page §1.6). Errors use the OAuth
//! envelope (page §1.7).

use std::collections::HashMap;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use sha2::{Digest, Sha256};

use super::reply::oauth_error;
use super::state::{Access, Grant, Memory, Refresh, RefreshState};
use super::{rules, seal};
use crate::sandbox::state::App;

type Form = HashMap<String, String>;

/// An OAuth error: its code and description.
type Refused = (&'static str, String);

fn form(headers: &HeaderMap, body: &[u8]) -> Result<Form, Refused> {
    let media = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase());
    if media.as_deref() != Some("application/x-www-form-urlencoded") {
        return Err((
            "invalid_request",
            "Content-Type must be application/x-www-form-urlencoded".into(),
        ));
    }
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body)
        .map_err(|e| ("invalid_request", format!("the form does not parse: {e}")))?;
    let mut map = Form::new();
    for (k, v) in pairs {
        if map.insert(k.clone(), v).is_some() {
            return Err(("invalid_request", format!("`{k}` is given twice")));
        }
    }
    Ok(map)
}

fn field<'a>(f: &'a Form, name: &str) -> Result<&'a str, Refused> {
    match f.get(name).map(String::as_str) {
        Some(v) if !v.is_empty() => Ok(v),
        _ => Err(("invalid_request", format!("`{name}` is required"))),
    }
}

/// The app is who it says (with open registration, an unknown key's first secret sticks).
fn client(m: &mut Memory, f: &Form) -> Result<String, Refused> {
    let key = field(f, "client_key")
        .map_err(|_| ("invalid_client", "client_key is required".to_owned()))?;
    let secret = field(f, "client_secret")
        .map_err(|_| ("invalid_client", "client_secret is required".to_owned()))?;
    let known = match m.apps.get(key) {
        Some(Some(s)) => s == secret,
        Some(None) => false,
        None if m.open_registration => {
            m.apps.insert(key.to_owned(), Some(secret.to_owned()));
            true
        }
        None => false,
    };
    match known {
        true => Ok(key.to_owned()),
        false => Err((
            "invalid_client",
            "client_key or client_secret is wrong".into(),
        )),
    }
}

/// Issue an access and a refresh token for `grant`; the token answer's JSON.
fn issue(app: &App, m: &mut Memory, grant: Grant, now: i64) -> serde_json::Value {
    let cfg = &app.tiktok.cfg;
    let access_expires = now.saturating_add(super::millis(cfg.access_ttl));
    let refresh_expires = now.saturating_add(super::millis(cfg.refresh_ttl));
    let access = seal::seal("act", &grant, access_expires, &m.hex("access", 8));
    let refresh = seal::seal("rft", &grant, refresh_expires, &m.hex("refresh", 8));
    let body = json!({
        "open_id": grant.open_id, "scope": grant.scopes.join(","),
        "access_token": access, "expires_in": cfg.access_ttl.as_secs(),
        "refresh_token": refresh, "refresh_expires_in": cfg.refresh_ttl.as_secs(),
        "token_type": "Bearer",
    });
    m.access.insert(
        access,
        Access {
            grant: grant.clone(),
            expires_ms: access_expires,
            revoked: false,
        },
    );
    m.refresh.insert(
        refresh,
        Refresh {
            grant,
            expires_ms: refresh_expires,
            state: RefreshState::Live,
        },
    );
    body
}

fn by_code(m: &mut Memory, f: &Form, client_key: &str, now: i64) -> Result<Grant, Refused> {
    let code = field(f, "code")?;
    let redirect_uri = field(f, "redirect_uri")?;
    let verifier = field(f, "code_verifier")?;
    let bad = |d: &str| Err(("invalid_grant", d.to_owned()));
    let Some(c) = m.codes.get_mut(code) else {
        return bad("authorization code is unknown (was it URL-decoded?)");
    };
    if c.used {
        return bad("authorization code was already used");
    }
    if now >= c.created_ms.saturating_add(super::millis(rules::CODE_TTL)) {
        return bad("authorization code expired");
    }
    if c.client_key != client_key {
        return bad("authorization code was issued to another app");
    }
    if c.redirect_uri != redirect_uri {
        return bad("redirect_uri differs from the authorization request's");
    }
    let shaped =
        rules::VERIFIER_LEN.contains(&verifier.len()) && verifier.bytes().all(rules::verifier_char);
    if !shaped {
        return Err((
            "invalid_request",
            "code_verifier: 43-128 characters of [A-Za-z0-9-._~]".into(),
        ));
    }
    if base16ct::lower::encode_string(&Sha256::digest(verifier.as_bytes())) != c.challenge {
        return bad("code_verifier does not match code_challenge (lower-case hex SHA-256)");
    }
    c.used = true;
    Ok(Grant {
        open_id: c.open_id.clone(),
        client_key: client_key.to_owned(),
        scopes: c.scopes.clone(),
    })
}

fn by_refresh(m: &mut Memory, f: &Form, client_key: &str, now: i64) -> Result<Grant, Refused> {
    let token = field(f, "refresh_token")?;
    let bad = |d: &str| Err(("invalid_grant", d.to_owned()));
    if !m.refresh.contains_key(token)
        && let Some(sealed) = seal::unseal("rft", token)
    {
        // Issued by an earlier simulator (an earlier dropcast process).
        m.refresh.insert(
            token.to_owned(),
            Refresh {
                grant: sealed.grant,
                expires_ms: sealed.expires_ms,
                state: RefreshState::Live,
            },
        );
    }
    let Some(r) = m.refresh.get_mut(token) else {
        return bad("refresh token is unknown");
    };
    match r.state {
        RefreshState::Rotated => return bad("refresh token was replaced by a newer one"),
        RefreshState::Revoked => return bad("refresh token was revoked"),
        RefreshState::Live => {}
    }
    if now >= r.expires_ms {
        return bad("refresh token expired");
    }
    if r.grant.client_key != client_key {
        return bad("refresh token was issued to another app");
    }
    r.state = RefreshState::Rotated;
    Ok(r.grant.clone())
}

/// `POST /v2/oauth/token/`.
pub(crate) async fn token(State(app): State<App>, headers: HeaderMap, body: Bytes) -> Response {
    let now = super::now_ms(&app);
    let result = {
        let mut m = app.tiktok.lock();
        m.counts.token += 1;
        grant(&app, &mut m, &headers, &body, now)
    };
    match result {
        Ok(body) => Json(body).into_response(),
        Err((error, description)) => oauth_error(&app, error, &description),
    }
}

fn grant(
    app: &App,
    m: &mut Memory,
    headers: &HeaderMap,
    body: &[u8],
    now: i64,
) -> Result<serde_json::Value, Refused> {
    let f = form(headers, body)?;
    let client_key = client(m, &f)?;
    let grant = match field(&f, "grant_type")? {
        "authorization_code" => by_code(m, &f, &client_key, now)?,
        "refresh_token" => by_refresh(m, &f, &client_key, now)?,
        other => {
            return Err((
                "unsupported_grant_type",
                format!("grant_type `{other}` is not supported"),
            ));
        }
    };
    Ok(issue(app, m, grant, now))
}

/// `POST /v2/oauth/revoke/`: the authorization behind `token` (access or refresh) ends:
/// every token of that user and app stops working. An unknown token is not an error.
pub(crate) async fn revoke(State(app): State<App>, headers: HeaderMap, body: Bytes) -> Response {
    let result = {
        let mut m = app.tiktok.lock();
        m.counts.revoke += 1;
        revoke_in(&mut m, &headers, &body)
    };
    match result {
        Ok(()) => Json(json!({})).into_response(),
        Err((error, description)) => oauth_error(&app, error, &description),
    }
}

fn revoke_in(m: &mut Memory, headers: &HeaderMap, body: &[u8]) -> Result<(), Refused> {
    let f = form(headers, body)?;
    let client_key = client(m, &f)?;
    let token = field(&f, "token")?;
    let owner = m
        .access
        .get(token)
        .map(|a| a.grant.clone())
        .or_else(|| m.refresh.get(token).map(|r| r.grant.clone()));
    let Some(g) = owner.filter(|g| g.client_key == client_key) else {
        return Ok(());
    };
    let same = |o: &Grant| o.open_id == g.open_id && o.client_key == g.client_key;
    for a in m.access.values_mut().filter(|a| same(&a.grant)) {
        a.revoked = true;
    }
    for r in m.refresh.values_mut().filter(|r| same(&r.grant)) {
        r.state = RefreshState::Revoked;
    }
    Ok(())
}
