//! The delivery loop the agent runs in the background: claims due outbox rows (so one
//! agent sends a row at a time), POSTs each to its sink, and records the answer: delivered,
//! or due again after an exponential backoff with jitter, or given up once the event is
//! [`GIVE_UP_AFTER`] old (with a log line). Nothing here runs on a job's path: a job only
//! ever adds outbox rows inside its own ledger transactions.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::join_all;
use tracing::{debug, info, warn};

use crate::config::NotifySink;
use crate::ledger::Pending;
use crate::pipeline::Context;

use super::event::Event;
use super::send::{SEND_TIMEOUT, Sender};

/// How long a claim holds a row: longer than a send can take.
pub(crate) const HOLD: Duration = Duration::from_secs(4 * SEND_TIMEOUT.as_secs());
/// How long an undelivered event is tried before it is given up.
pub(crate) const GIVE_UP_AFTER: Duration = Duration::from_secs(24 * 3600);
/// The outbox is looked at least this often (new rows come from every job).
const POLL: Duration = Duration::from_secs(1);
/// Rows claimed at a time (sent at once, each to its own sink).
const BATCH: usize = 16;
/// The first retry's delay; doubled per try up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_secs(2);
const MAX_BACKOFF: Duration = Duration::from_secs(10 * 60);
/// Delivered and given-up rows are kept this long, then forgotten.
const KEEP: Duration = Duration::from_secs(7 * 24 * 3600);
/// How often old rows are forgotten and sessions near their end looked for.
const HOUSEKEEPING_EVERY: Duration = Duration::from_secs(3600);

/// The sinks of the config, by outbox key, and the client.
pub(crate) struct Worker {
    sender: Sender,
    sinks: HashMap<String, NotifySink>,
    keys: Vec<String>,
}

/// Runs until the agent aborts it; returns at once without sinks.
pub(crate) async fn run(ctx: Arc<Context>) {
    let Some(worker) = Worker::new(&ctx) else {
        return;
    };
    worker.restart(&ctx).await;
    let mut housekeeping = tokio::time::Instant::now();
    loop {
        if tokio::time::Instant::now() >= housekeeping {
            worker.housekeeping(&ctx).await;
            housekeeping += HOUSEKEEPING_EVERY;
        }
        if worker.deliver_due(&ctx).await > 0 {
            continue;
        }
        tokio::time::sleep(worker.until_next(&ctx).await).await;
    }
}

/// Delivers what is due, for at most `limit` (`watch --once`: the run's events go out
/// before it exits, as far as receivers take them).
pub(crate) async fn flush(ctx: &Context, limit: Duration) {
    let Some(worker) = Worker::new(ctx) else {
        return;
    };
    let work = async {
        worker.restart(ctx).await;
        while worker.deliver_due(ctx).await > 0 {}
    };
    if tokio::time::timeout(limit, work).await.is_err() {
        info!("notifications still undelivered at exit stay in the outbox for the next run");
    }
}

impl Worker {
    fn new(ctx: &Context) -> Option<Worker> {
        if ctx.config.notify.is_empty() || ctx.ledger.is_none() {
            return None;
        }
        let sender = match Sender::new() {
            Ok(sender) => sender,
            Err(e) => {
                warn!(reason = %e, "notifications are not sent; they wait in the outbox");
                return None;
            }
        };
        let sinks: HashMap<String, NotifySink> = ctx
            .config
            .notify
            .iter()
            .map(|s| (s.key(), s.clone()))
            .collect();
        let keys = sinks.keys().cloned().collect();
        Some(Worker {
            sender,
            sinks,
            keys,
        })
    }

    /// This agent's claims from a run that died lapse, and every pending row is due now.
    async fn restart(&self, ctx: &Context) {
        let keys = self.keys.clone();
        if let Err(e) = ctx.ledger(move |l| l.restart_notifications(&keys)).await {
            debug!(reason = %e, "cannot look at the notification outbox");
        }
    }

    async fn housekeeping(&self, ctx: &Context) {
        let before = crate::notify::expiring::now_ms()
            .saturating_sub(i64::try_from(KEEP.as_millis()).unwrap_or(i64::MAX));
        if let Err(e) = ctx.ledger(move |l| l.forget_notifications(before)).await {
            debug!(reason = %e, "cannot forget old notifications");
        }
        super::expiring::enqueue(ctx).await;
    }

    /// Claims the due rows, sends them at once, records each answer; how many it claimed.
    async fn deliver_due(&self, ctx: &Context) -> usize {
        // A read first: an idle agent takes no write lock (on a shared ledger, the one
        // all agents' writes queue behind) just to find nothing due.
        let keys = self.keys.clone();
        let due = ctx.ledger(move |l| l.next_notification_due(&keys)).await;
        if matches!(due, Ok(None)) || matches!(due, Ok(Some(at)) if at > super::expiring::now_ms())
        {
            return 0;
        }
        let keys = self.keys.clone();
        let claimed = match ctx
            .ledger(move |l| l.claim_notifications(&keys, BATCH, HOLD))
            .await
        {
            Ok(claimed) => claimed,
            Err(e) => {
                debug!(reason = %e, "cannot claim notifications");
                return 0;
            }
        };
        let n = claimed.len();
        let sends = claimed.into_iter().map(|row| self.deliver(row));
        for (row, result) in join_all(sends).await {
            record(ctx, &row, result, self.display(&row.sink)).await;
        }
        n
    }

    async fn deliver(&self, row: Pending) -> (Pending, Result<u16, String>) {
        let Some(sink) = self.sinks.get(&row.sink) else {
            return (row, Err("no such sink in the config".to_owned()));
        };
        let event: Event = match serde_json::from_str(&row.payload) {
            Ok(event) => event,
            Err(e) => return (row, Err(format!("the stored event does not read: {e}"))),
        };
        let result = self.sender.send(sink, &event, &row.payload).await;
        (row, result.map_err(|e| e.to_string()))
    }

    fn display(&self, key: &str) -> String {
        self.sinks
            .get(key)
            .map_or_else(|| key.to_owned(), NotifySink::display)
    }

    /// How long to wait before the next look: until the next row falls due, at most
    /// [`POLL`].
    async fn until_next(&self, ctx: &Context) -> Duration {
        let keys = self.keys.clone();
        let due = ctx
            .ledger(move |l| l.next_notification_due(&keys))
            .await
            .ok()
            .flatten();
        let now = super::expiring::now_ms();
        match due {
            Some(at) if at > now => {
                Duration::from_millis(u64::try_from(at - now).unwrap_or(0)).min(POLL)
            }
            Some(_) => Duration::from_millis(50),
            None => POLL,
        }
    }
}

/// Records one answer in the ledger, with a log line for a first failure and a give-up.
async fn record(ctx: &Context, row: &Pending, result: Result<u16, String>, sink: String) {
    let id = row.row;
    let event = row.event_id.clone();
    match result {
        Ok(status) => {
            debug!(event = %event, %sink, status, "notification delivered");
            if let Err(e) = ctx.ledger(move |l| l.notification_delivered(id)).await {
                // It is sent again later: a receiver drops the repeat by its id.
                warn!(reason = %e, event = %event, "cannot record a delivered notification");
            }
        }
        Err(reason) => {
            let now = super::expiring::now_ms();
            let retry_at = retry_at(row.attempts, row.created_at, now, jitter());
            match retry_at {
                None => warn!(event = %event, %sink, %reason, attempts = row.attempts,
                    "notification given up: not delivered in 24 h"),
                Some(_) if row.attempts == 1 => warn!(event = %event, %sink, %reason,
                    "notification not delivered; tried again with backoff"),
                Some(_) => debug!(event = %event, %sink, %reason, attempts = row.attempts,
                    "notification not delivered yet"),
            }
            if let Err(e) = ctx
                .ledger(move |l| l.notification_failed(id, &reason, retry_at))
                .await
            {
                debug!(reason = %e, "cannot record a failed notification");
            }
        }
    }
}

/// When to try again after `attempts` tries (unix ms), `None` once the event is older
/// than [`GIVE_UP_AFTER`]. The delay doubles from [`FIRST_BACKOFF`] to [`MAX_BACKOFF`];
/// `jitter` (0..=1) picks it within its upper half, so receivers coming back are not hit
/// by every agent at once.
pub(crate) fn retry_at(attempts: u32, created_at: i64, now: i64, jitter: f64) -> Option<i64> {
    let age = now.saturating_sub(created_at);
    if age >= i64::try_from(GIVE_UP_AFTER.as_millis()).unwrap_or(i64::MAX) {
        return None;
    }
    let doublings = attempts.saturating_sub(1).min(20);
    let delay = FIRST_BACKOFF
        .saturating_mul(1 << doublings)
        .min(MAX_BACKOFF)
        .as_millis() as f64;
    let delay = delay / 2.0 + delay / 2.0 * jitter.clamp(0.0, 1.0);
    Some(now + delay as i64)
}

/// A number in 0..=1 from the OS's generator.
fn jitter() -> f64 {
    let mut b = [0u8; 4];
    let _ = getrandom::fill(&mut b);
    f64::from(u32::from_le_bytes(b)) / f64::from(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_its_cap_within_its_jitter_and_gives_up_after_a_day() {
        let t0 = 1_000_000;
        assert_eq!(retry_at(1, t0, t0, 1.0), Some(t0 + 2_000));
        assert_eq!(retry_at(1, t0, t0, 0.0), Some(t0 + 1_000));
        assert_eq!(retry_at(3, t0, t0, 1.0), Some(t0 + 8_000));
        assert_eq!(retry_at(40, t0, t0, 1.0), Some(t0 + 600_000), "capped");
        let day = 24 * 3600 * 1000;
        assert!(retry_at(5, t0, t0 + day - 1, 0.5).is_some());
        assert_eq!(retry_at(5, t0, t0 + day, 0.5), None);
        for _ in 0..100 {
            let j = jitter();
            assert!((0.0..=1.0).contains(&j));
        }
    }
}
