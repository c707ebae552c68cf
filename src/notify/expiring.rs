//! `session_expiring`: a session that will stop working soon, told while there is time to
//! renew it. What is known per platform (docs/notifications.md):
//!
//! * `tiktok`: the token file `dropcast login` wrote holds the refresh token's end
//!   (`refresh_expires_at`, 365 days after login by TikTok's rules); dropcast refreshes the
//!   access token itself, so that end is the session's end. An event goes out once the end
//!   is within [`WARN_BEFORE`], once per end (its id is derived from account and end, so
//!   the hourly look enqueues it once, and a new login's new end gives a new event).
//! * `douyin` and `douyin-web`: no expiry is known. A cookie header carries none, and the
//!   browser profile's cookie store is Chromium's (locked while the browser runs, its
//!   format Chromium's own); a refused session still pauses the account (`paused`).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tracing::debug;

use crate::config::{AccountKind, Config};
use crate::pipeline::Context;

use super::event::{Event, EventKind, derived_id, rfc3339};

/// How long before its end a session is told as expiring.
pub(crate) const WARN_BEFORE: Duration = Duration::from_secs(7 * 24 * 3600);

/// Unix milliseconds now.
pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The events for sessions of `config`'s accounts ending within [`WARN_BEFORE`] of
/// `now_ms`; `end_of` reads an account's session end (unix seconds).
pub(crate) fn events(
    config: &Config,
    now_ms: i64,
    end_of: impl Fn(&str) -> Option<u64>,
) -> Vec<Event> {
    let mut out = Vec::new();
    for account in &config.accounts {
        if !matches!(account.kind, AccountKind::Tiktok(_)) {
            continue;
        }
        let Some(end) = end_of(&account.name) else {
            continue;
        };
        let end_ms = i64::try_from(end).unwrap_or(i64::MAX).saturating_mul(1000);
        let warn_ms = i64::try_from(WARN_BEFORE.as_millis()).unwrap_or(i64::MAX);
        if end_ms.saturating_sub(now_ms) > warn_ms {
            continue;
        }
        let id = derived_id(&["session_expiring", &account.name, &end.to_string()]);
        let mut e = Event::with_id(EventKind::SessionExpiring, id, now_ms);
        e.account = Some(account.name.clone());
        e.platform = Some(account.platform().as_str().to_owned());
        let when = rfc3339(end_ms);
        e.reason = Some(if end_ms <= now_ms {
            format!("the refresh token ended at {when}")
        } else {
            let days = (end_ms - now_ms) / 86_400_000;
            format!("the refresh token ends at {when} (in {days} days)")
        });
        e.hint = Some(format!(
            "run `dropcast login {}` to renew the session",
            account.name
        ));
        out.push(e);
    }
    out
}

/// Enqueues the events of sessions near their end (each once: see the module doc).
pub(crate) async fn enqueue(ctx: &Context) {
    let state_dir = ctx.config.state_dir.clone();
    let events = events(&ctx.config, now_ms(), |account| {
        crate::platform::tiktok::refresh_token_end(&state_dir, account)
    });
    for event in events {
        if let Err(e) = ctx.ledger(move |l| l.enqueue_notification(&event)).await {
            debug!(reason = %e, "cannot enqueue a session_expiring notification");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn config() -> Config {
        let text = "accounts:\n  web: {cookie_env: X}\n  tt: {platform: tiktok, client_key: k, client_secret_env: HOME}\n";
        Config::parse(text, None, Path::new("/base")).unwrap()
    }

    #[test]
    fn only_a_tiktok_session_within_a_week_of_its_end_is_told_once_per_end() {
        let c = config();
        let now = 1_800_000_000_000;
        let day = 86_400u64;
        let secs = (now / 1000) as u64;
        assert!(events(&c, now, |_| Some(secs + 8 * day)).is_empty());
        let soon = events(&c, now, |_| Some(secs + 3 * day));
        assert_eq!(soon.len(), 1, "the douyin-web account has no known end");
        let e = &soon[0];
        assert_eq!(e.event, EventKind::SessionExpiring);
        assert_eq!(e.account.as_deref(), Some("tt"));
        assert_eq!(e.platform.as_deref(), Some("tiktok"));
        assert!(e.reason.as_ref().unwrap().contains("in 3 days"));
        assert!(e.hint.as_ref().unwrap().contains("dropcast login tt"));
        // The same end an hour later: the same id, so the outbox keeps one.
        let later = events(&c, now + 3_600_000, |_| Some(secs + 3 * day));
        assert_eq!(later[0].id, e.id);
        // A new login's new end: a new event.
        let renewed = events(&c, now, |_| Some(secs + 2 * day));
        assert_ne!(renewed[0].id, e.id);
        let ended = events(&c, now, |_| Some(secs - day));
        assert!(ended[0].reason.as_ref().unwrap().contains("ended at"));
        assert!(events(&c, now, |_| None).is_empty());
    }
}
