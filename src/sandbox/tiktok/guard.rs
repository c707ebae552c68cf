//! What every Content Posting request must pass before its handler (page §2, §7): a live
//! `Bearer` access token, a scope the endpoint accepts, `Content-Type: application/json;
//! charset=UTF-8`, and the token's one-minute sliding window for the endpoint.

use axum::http::HeaderMap;
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};

use super::rules;
use super::state::{Access, Limit, Memory};
use super::{Early, reply};
use crate::sandbox::state::App;

/// One guarded endpoint: its rate group, limit per minute, and the scopes it accepts (any).
pub(crate) struct Endpoint {
    pub limit: Limit,
    pub per_min: usize,
    pub scopes: &'static [&'static str],
}

pub(crate) const CREATOR_INFO: Endpoint = Endpoint {
    limit: Limit::CreatorInfo,
    per_min: rules::CREATOR_INFO_PER_MIN,
    scopes: &["video.publish"],
};
pub(crate) const INIT: Endpoint = Endpoint {
    limit: Limit::Init,
    per_min: rules::INIT_PER_MIN,
    scopes: &["video.publish"],
};
pub(crate) const INBOX_INIT: Endpoint = Endpoint {
    limit: Limit::InboxInit,
    per_min: rules::INIT_PER_MIN,
    scopes: &["video.upload"],
};
pub(crate) const STATUS: Endpoint = Endpoint {
    limit: Limit::Status,
    per_min: rules::STATUS_PER_MIN,
    scopes: &["video.publish", "video.upload"],
};

/// Who is calling.
#[derive(Clone, Debug)]
pub(crate) struct Caller {
    pub open_id: String,
    pub client_key: String,
}

/// A refusal: HTTP status, `error.code`, message.
type Refused = (u16, &'static str, String);

/// Check a request to `ep`; the caller, or the answer to give instead.
pub(crate) fn admit(app: &App, headers: &HeaderMap, ep: &Endpoint) -> Result<Caller, Early> {
    let now = super::now_ms(app);
    let result = {
        let mut m = app.tiktok.lock();
        count(&mut m, ep.limit);
        check(&mut m, headers, ep, now)
    };
    result.map_err(|(status, code, message)| Box::new(reply::refuse(app, status, code, &message)))
}

fn count(m: &mut Memory, limit: Limit) {
    let c = &mut m.counts;
    match limit {
        Limit::CreatorInfo => c.creator_info += 1,
        Limit::Init => c.init += 1,
        Limit::InboxInit => c.inbox_init += 1,
        Limit::Status => c.status += 1,
    }
}

fn check(m: &mut Memory, headers: &HeaderMap, ep: &Endpoint, now: i64) -> Result<Caller, Refused> {
    let invalid = |d: &str| Err((401, "access_token_invalid", d.to_owned()));
    let header = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let Some(token) = header
        .strip_prefix("Bearer ")
        .map(str::trim)
        .filter(|t| !t.is_empty())
    else {
        return invalid("Authorization: Bearer <access_token> is required");
    };
    if !m.access.contains_key(token)
        && let Some(sealed) = super::seal::unseal("act", token)
    {
        // Issued by an earlier simulator (an earlier dropcast process).
        let access = Access {
            grant: sealed.grant,
            expires_ms: sealed.expires_ms,
            revoked: false,
        };
        m.access.insert(token.to_owned(), access);
    }
    let Some(access) = m.access.get(token) else {
        return invalid("the access token is unknown");
    };
    if access.revoked {
        return invalid("the access token was revoked");
    }
    if now >= access.expires_ms {
        return invalid("the access token expired");
    }
    if !ep
        .scopes
        .iter()
        .any(|s| access.grant.scopes.iter().any(|g| g == s))
    {
        let msg = format!("this endpoint needs the scope {}", ep.scopes.join(" or "));
        return Err((401, "scope_not_authorized", msg));
    }
    let caller = Caller {
        open_id: access.grant.open_id.clone(),
        client_key: access.grant.client_key.clone(),
    };
    json_content_type(headers)?;
    let window = m.windows.entry((token.to_owned(), ep.limit)).or_default();
    let since = now.saturating_sub(super::millis(rules::RATE_WINDOW));
    while window.front().is_some_and(|&t| t <= since) {
        window.pop_front();
    }
    if window.len() >= ep.per_min {
        let msg = format!("at most {} calls a minute per access token", ep.per_min);
        return Err((429, "rate_limit_exceeded", msg));
    }
    window.push_back(now);
    Ok(caller)
}

/// `application/json; charset=UTF-8` (page §2), on every request, bodiless ones included.
fn json_content_type(headers: &HeaderMap) -> Result<(), Refused> {
    let value = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mut parts = value.split(';').map(|p| p.trim().to_ascii_lowercase());
    let media = parts.next().unwrap_or_default();
    let charset = parts.find_map(|p| {
        p.strip_prefix("charset=")
            .map(|c| c.trim_matches('"').to_owned())
    });
    if media == "application/json" && charset.as_deref() == Some("utf-8") {
        return Ok(());
    }
    Err((
        400,
        "invalid_param",
        "Content-Type must be application/json; charset=UTF-8".into(),
    ))
}
