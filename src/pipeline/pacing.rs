//! `publish.min_interval`: at least this long between two posts of one account, across
//! restarts and across every agent sharing the ledger (the ledger books each post's slot,
//! see `Ledger::book_post_slot`); in memory only when the ledger cannot answer.

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

/// Waits until `publish.min_interval` has passed since this account's last post, by
/// whichever agent: the ledger books the slot (after the last slot booked and the last
/// step-5 send for the account, answered or not), so restarts (even after `kill -9`) and
/// other agents keep the interval. A ledger that cannot book falls back to this process's
/// own memory of its posts.
pub(crate) async fn wait_post_slot(ctx: &Context, account: &str) {
    let interval = ctx.config.publish.min_interval;
    if interval.is_zero() {
        return;
    }
    if ctx.ledger.is_some() {
        let name = account.to_string();
        match ctx.ledger(move |l| l.book_post_slot(&name, interval)).await {
            Ok(slot) => {
                let wait = slot
                    .duration_since(std::time::SystemTime::now())
                    .unwrap_or_default();
                if !wait.is_zero() {
                    log_wait(account, wait);
                    tokio::time::sleep(wait).await;
                }
                ctx.pacer.last().insert(account.to_string(), Instant::now());
                return;
            }
            Err(e) => {
                tracing::warn!(account, reason = %e, "cannot book the post slot in the ledger; publish.min_interval is kept by this agent alone");
            }
        }
    }
    wait_in_memory(ctx, account, interval).await;
}

fn log_wait(account: &str, wait: Duration) {
    let secs = Duration::from_secs(wait.as_secs());
    tracing::info!(account, wait = %humantime::format_duration(secs), "waiting for publish.min_interval");
}

/// The interval as this process alone keeps it: since its own last post, else the
/// ledger's last send.
async fn wait_in_memory(ctx: &Context, account: &str, interval: Duration) {
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
                log_wait(account, d);
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
