//! Who may post now (page §3, §4, §7): the creator's "cannot post now" switch, the daily
//! cap on direct posts, the unaudited app's five users a day, and the inbox's pending
//! shares. Counted over the publishes of the last 24 h of sandbox time.

use std::collections::HashSet;

use super::rules;
use super::state::{Memory, Mode, Settings};

fn recent(m: &Memory, now: i64) -> impl Iterator<Item = &super::state::Publish> {
    let since = now.saturating_sub(super::millis(rules::DAY));
    m.publishes.values().filter(move |p| p.created_ms > since)
}

/// Why `open_id` cannot make a direct post through `client_key` now (an `error.code`).
pub(crate) fn cannot_post(
    m: &Memory,
    open_id: &str,
    client_key: &str,
    now: i64,
) -> Option<&'static str> {
    if let Some(c) = m.creator(open_id).and_then(|c| c.info.cannot_post) {
        return Some(c.code());
    }
    let posts = recent(m, now)
        .filter(|p| p.open_id == open_id && p.mode == Mode::Direct)
        .count();
    if posts >= rules::DIRECT_POSTS_PER_DAY {
        return Some("spam_risk_too_many_posts");
    }
    if !m.audited {
        let users: HashSet<&str> = recent(m, now)
            .filter(|p| p.client_key == client_key && p.mode == Mode::Direct)
            .map(|p| p.open_id.as_str())
            .collect();
        if !users.contains(open_id) && users.len() >= rules::UNAUDITED_USERS_PER_DAY {
            return Some("reached_active_user_cap");
        }
    }
    None
}

/// Inbox shares of `open_id` in the last 24 h that have not failed.
pub(crate) fn pending_shares(m: &Memory, cfg: &Settings, open_id: &str, now: i64) -> usize {
    recent(m, now)
        .filter(|p| p.open_id == open_id && p.mode == Mode::Inbox)
        .filter(|p| p.status(now, cfg).status != "FAILED")
        .count()
}
