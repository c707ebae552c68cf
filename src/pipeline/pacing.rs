//! `publish.min_interval`: at least this long between two posts of one account, across
//! restarts (the ledger remembers the last send).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::context::Context;

/// Per account: when its last post went out.
#[derive(Default)]
pub(crate) struct PostPacer {
    last_post: Mutex<HashMap<String, Instant>>,
}

impl PostPacer {
    fn last(&self) -> std::sync::MutexGuard<'_, HashMap<String, Instant>> {
        self.last_post.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Waits until `publish.min_interval` has passed since this account's last post, then
/// books the slot for the post about to be sent. The last post is this process's own,
/// else the ledger's latest step-5 send for the account (answered or not), so a restart
/// (even after `kill -9`) keeps the interval.
pub(crate) async fn wait_post_slot(ctx: &Context, account: &str) {
    let interval = ctx.config.publish.min_interval;
    if interval.is_zero() {
        return;
    }
    recall_last_post(ctx, account, interval).await;
    loop {
        let wait = {
            let mut last = ctx.pacer.last();
            let now = Instant::now();
            match last.get(account) {
                Some(&t) if now < t + interval => Some(t + interval - now),
                _ => {
                    last.insert(account.to_string(), now);
                    None
                }
            }
        };
        match wait {
            Some(d) => {
                let secs = Duration::from_secs(d.as_secs());
                tracing::info!(account, wait = %humantime::format_duration(secs), "waiting for publish.min_interval");
                tokio::time::sleep(d).await;
            }
            None => return,
        }
    }
}

/// When this process has not posted for `account` yet, takes its last post time from the
/// ledger (only if it is within `interval`); a ledger that cannot be read counts the
/// interval from now.
async fn recall_last_post(ctx: &Context, account: &str, interval: Duration) {
    if ctx.pacer.last().contains_key(account) {
        return;
    }
    let name = account.to_string();
    match ctx.ledger(move |l| l.last_publish_sent(&name)).await {
        Ok(Some(sent)) => {
            // How long ago, by the wall clock; a send "in the future" (the clock went
            // back) counts as just now.
            let ago = std::time::SystemTime::now()
                .duration_since(sent)
                .unwrap_or_default();
            if ago < interval {
                let now = Instant::now();
                let at = now.checked_sub(ago).unwrap_or(now);
                ctx.pacer.last().entry(account.to_string()).or_insert(at);
            }
        }
        Ok(None) => {}
        Err(e) => {
            tracing::warn!(account, reason = %e, "cannot read the last post time from the ledger; publish.min_interval counts from now");
            ctx.pacer
                .last()
                .entry(account.to_string())
                .or_insert_with(Instant::now);
        }
    }
}
