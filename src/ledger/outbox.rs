//! The notification outbox (docs/notifications.md "Delivery"): one row per (event, sink),
//! written in the same transaction as the state change it tells of (a post, a failure, a
//! duplicate, a pause, a resume), so a crash can never keep the change and lose its
//! notification. `notify::worker` claims due rows (`claimed_until`: one agent sends a row
//! at a time, even with several sharing a PostgreSQL ledger), sends them, and records the
//! answer: delivered, or tried again later with backoff, or given up after a long bound.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use super::db::{Sql, Value, p};
use super::{JobRecord, Ledger, LedgerError, now_ms};
use crate::domain::Post;
use crate::notify::event::{Event, EventKind, EventSet, short_hash};
use crate::words::FailureClass;

/// What the ledger needs to enqueue: each sink's key and the events it takes, and each
/// configured account's platform (a pause names its account only).
#[derive(Clone, Debug, Default)]
pub(crate) struct Outbox {
    sinks: Arc<Vec<(String, EventSet)>>,
    platforms: Arc<HashMap<String, String>>,
}

impl Outbox {
    pub(crate) fn from_config(config: &crate::config::Config) -> Outbox {
        Outbox {
            sinks: Arc::new(config.notify.iter().map(|s| (s.key(), s.events)).collect()),
            platforms: Arc::new(
                config
                    .accounts
                    .iter()
                    .map(|a| (a.name.clone(), a.platform().as_str().to_owned()))
                    .collect(),
            ),
        }
    }

    /// Sinks given by key and events.
    #[cfg(test)]
    pub(crate) fn with_sinks(sinks: Vec<(String, EventSet)>) -> Outbox {
        Outbox {
            sinks: Arc::new(sinks),
            platforms: Arc::default(),
        }
    }

    fn wants(&self, kind: EventKind) -> impl Iterator<Item = &str> {
        self.sinks
            .iter()
            .filter(move |(_, events)| events.contains(kind))
            .map(|(key, _)| key.as_str())
    }

    /// One row per sink that takes `event`; an event already there (the same id for the
    /// same sink) is left as it is.
    pub(super) fn enqueue_in(
        &self,
        tx: &impl Sql,
        event: &Event,
        now: i64,
    ) -> Result<(), LedgerError> {
        let payload = event.to_json();
        for sink in self.wants(event.event) {
            tx.execute(
                "INSERT INTO notify_outbox (event_id, sink, event, payload, created_at, next_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?5) ON CONFLICT (event_id, sink) DO NOTHING",
                p![&event.id, sink, event.event.as_str(), &payload, now],
            )?;
        }
        Ok(())
    }

    fn job_event(kind: EventKind, job: &JobRecord, now: i64) -> Event {
        let mut e = Event::new(kind, now);
        e.account = Some(job.account.clone());
        e.platform = Some(job.platform.as_str().to_owned());
        e.file = Some(job.video.to_string_lossy().into_owned());
        e.hash = Some(short_hash(job.sha256.as_str()));
        e
    }

    /// The job posted: `published`, with the post's address when it is public.
    pub(super) fn published(
        &self,
        tx: &impl Sql,
        job: &JobRecord,
        post: &Post,
        now: i64,
    ) -> Result<(), LedgerError> {
        if self.sinks.is_empty() {
            return Ok(());
        }
        let mut e = Self::job_event(EventKind::Published, job, now);
        e.post_url = post.address().map(str::to_owned);
        if e.post_url.is_none() {
            e.reason = Some(format!("posted, not public yet ({})", post.id));
        }
        self.enqueue_in(tx, &e, now)
    }

    /// The job failed for good: `failed`, with the class's hint.
    pub(super) fn failed(
        &self,
        tx: &impl Sql,
        job: &JobRecord,
        class: &str,
        reason: &str,
        now: i64,
    ) -> Result<(), LedgerError> {
        if self.sinks.is_empty() {
            return Ok(());
        }
        let mut e = Self::job_event(EventKind::Failed, job, now);
        e.reason = Some(reason.to_owned());
        e.hint = Some(FailureClass::parse(class).hint().to_owned());
        self.enqueue_in(tx, &e, now)
    }

    /// The drop was a duplicate of `earlier`: `duplicate`, with the earlier post's address.
    pub(super) fn duplicate(
        &self,
        tx: &impl Sql,
        job: &JobRecord,
        earlier: &JobRecord,
        now: i64,
    ) -> Result<(), LedgerError> {
        if self.sinks.is_empty() {
            return Ok(());
        }
        let mut e = Self::job_event(EventKind::Duplicate, job, now);
        e.post_url = earlier
            .post
            .as_ref()
            .and_then(Post::address)
            .map(str::to_owned);
        e.reason = Some(format!(
            "already posted for this account from {}",
            earlier.video.to_string_lossy()
        ));
        self.enqueue_in(tx, &e, now)
    }

    /// `paused` or `resumed` for `account`.
    pub(super) fn account(
        &self,
        tx: &impl Sql,
        kind: EventKind,
        account: &str,
        reason: &str,
        hint: Option<&str>,
        now: i64,
    ) -> Result<(), LedgerError> {
        if self.sinks.is_empty() {
            return Ok(());
        }
        let mut e = Event::new(kind, now);
        e.account = Some(account.to_owned());
        e.platform = self.platforms.get(account).cloned();
        e.reason = Some(reason.to_owned());
        e.hint = hint.map(str::to_owned);
        self.enqueue_in(tx, &e, now)
    }
}

/// A row claimed for sending.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Pending {
    pub(crate) row: i64,
    pub(crate) event_id: String,
    pub(crate) sink: String,
    /// The event's JSON, as enqueued.
    pub(crate) payload: String,
    /// Tries so far, this one included.
    pub(crate) attempts: u32,
    pub(crate) created_at: i64,
}

/// Rows neither delivered nor given up.
const PENDING: &str = "delivered_at IS NULL AND gave_up_at IS NULL";

/// `sink IN (?first, …)` for `n` sinks, placeholders numbered from `first`.
fn sink_list(first: usize, n: usize) -> String {
    let marks: Vec<String> = (first..first + n).map(|i| format!("?{i}")).collect();
    format!("sink IN ({})", marks.join(", "))
}

impl Ledger {
    /// The sinks and accounts the ledger enqueues notifications for (from the config).
    pub(crate) fn set_outbox(&mut self, outbox: Outbox) {
        self.outbox = outbox;
    }

    /// Enqueues `event` for every sink that takes it, in a transaction of its own (for
    /// facts without a job's state change: a refused file, a session near its end). An
    /// event id already enqueued is not enqueued again.
    pub(crate) fn enqueue_notification(&mut self, event: &Event) -> Result<(), LedgerError> {
        if self.outbox.sinks.is_empty() {
            return Ok(());
        }
        let tx = self.begin()?;
        self.outbox.enqueue_in(&tx, event, now_ms())?;
        tx.commit()
    }

    /// Claims up to `limit` due rows of `sinks` for `hold`, for this agent; each claim
    /// counts as a try. Two agents never hold one row at once: the claim is one exclusive
    /// write transaction, and a claim lapses only after `hold`.
    pub(crate) fn claim_notifications(
        &mut self,
        sinks: &[String],
        limit: usize,
        hold: Duration,
    ) -> Result<Vec<Pending>, LedgerError> {
        if sinks.is_empty() {
            return Ok(Vec::new());
        }
        let now = now_ms();
        let until = now.saturating_add(i64::try_from(hold.as_millis()).unwrap_or(i64::MAX));
        let mut params: Vec<Value> = vec![
            now.into(),
            until.into(),
            self.agent.clone().into(),
            i64::try_from(limit).unwrap_or(i64::MAX).into(),
        ];
        params.extend(sinks.iter().map(Value::from));
        let sql = format!(
            "UPDATE notify_outbox SET claimed_by = ?3, claimed_until = ?2, attempts = attempts + 1 \
             WHERE id IN (SELECT id FROM notify_outbox WHERE {PENDING} AND next_at <= ?1 \
             AND (claimed_until IS NULL OR claimed_until <= ?1) AND {} \
             ORDER BY next_at, id LIMIT ?4) \
             RETURNING id, event_id, sink, payload, attempts, created_at",
            sink_list(5, sinks.len())
        );
        let tx = self.begin()?;
        let rows = tx.query(&sql, &params)?;
        tx.commit()?;
        let mut claimed = rows
            .iter()
            .map(|r| {
                Ok(Pending {
                    row: r.get(0)?,
                    event_id: r.get(1)?,
                    sink: r.get(2)?,
                    payload: r.get(3)?,
                    attempts: u32::try_from(r.get::<i64>(4)?).unwrap_or(u32::MAX),
                    created_at: r.get(5)?,
                })
            })
            .collect::<Result<Vec<_>, LedgerError>>()?;
        claimed.sort_by_key(|p| p.row);
        Ok(claimed)
    }

    /// The receiver took row `row` (a 2xx answer).
    pub(crate) fn notification_delivered(&mut self, row: i64) -> Result<(), LedgerError> {
        let tx = self.begin()?;
        tx.execute(
            "UPDATE notify_outbox SET delivered_at = ?1, claimed_by = NULL, claimed_until = NULL, \
             last_error = NULL WHERE id = ?2 AND delivered_at IS NULL",
            p![now_ms(), row],
        )?;
        tx.commit()
    }

    /// Row `row` was not taken: try again at `retry_at` (unix ms), or give up (`None`).
    /// Only while this agent still holds the claim.
    pub(crate) fn notification_failed(
        &mut self,
        row: i64,
        error: &str,
        retry_at: Option<i64>,
    ) -> Result<(), LedgerError> {
        let tx = self.begin()?;
        let now = now_ms();
        let error: String = error.chars().take(500).collect();
        let agent = self.agent.clone();
        match retry_at {
            Some(at) => tx.execute(
                "UPDATE notify_outbox SET next_at = ?1, last_error = ?2, claimed_by = NULL, \
                 claimed_until = NULL WHERE id = ?3 AND claimed_by = ?4 AND delivered_at IS NULL",
                p![at, &error, row, &agent],
            )?,
            None => tx.execute(
                "UPDATE notify_outbox SET gave_up_at = ?1, last_error = ?2, claimed_by = NULL, \
                 claimed_until = NULL WHERE id = ?3 AND claimed_by = ?4 AND delivered_at IS NULL",
                p![now, &error, row, &agent],
            )?,
        };
        tx.commit()
    }

    /// At the worker's start: claims this agent's name still holds are a dead run's (one
    /// process per agent name), so they lapse now; and every pending row of `sinks` is due
    /// now, so a restart tries a receiver at once rather than after the last backoff.
    pub(crate) fn restart_notifications(&mut self, sinks: &[String]) -> Result<(), LedgerError> {
        if sinks.is_empty() {
            return Ok(());
        }
        let now = now_ms();
        let tx = self.begin()?;
        tx.execute(
            "UPDATE notify_outbox SET claimed_by = NULL, claimed_until = NULL \
             WHERE claimed_by = ?1 AND delivered_at IS NULL",
            p![&self.agent],
        )?;
        let mut params: Vec<Value> = vec![now.into()];
        params.extend(sinks.iter().map(Value::from));
        tx.execute(
            &format!(
                "UPDATE notify_outbox SET next_at = ?1 WHERE {PENDING} AND next_at > ?1 AND {}",
                sink_list(2, sinks.len())
            ),
            &params,
        )?;
        tx.commit()
    }

    /// When the next row of `sinks` falls due (unix ms), if any is pending.
    pub(crate) fn next_notification_due(
        &self,
        sinks: &[String],
    ) -> Result<Option<i64>, LedgerError> {
        if sinks.is_empty() {
            return Ok(None);
        }
        let params: Vec<Value> = sinks.iter().map(Value::from).collect();
        let row = self.db.query_opt(
            &format!(
                "SELECT MIN(CASE WHEN claimed_until IS NOT NULL AND claimed_until > next_at \
                 THEN claimed_until ELSE next_at END) FROM notify_outbox WHERE {PENDING} AND {}",
                sink_list(1, sinks.len())
            ),
            &params,
        )?;
        match row {
            Some(row) => row.get(0),
            None => Ok(None),
        }
    }

    /// Forgets rows delivered or given up before `before` (unix ms).
    pub(crate) fn forget_notifications(&mut self, before: i64) -> Result<u64, LedgerError> {
        let tx = self.begin()?;
        let n = tx.execute(
            "DELETE FROM notify_outbox WHERE delivered_at < ?1 OR gave_up_at < ?1",
            p![before],
        )?;
        tx.commit()?;
        Ok(n)
    }

    /// Rows by state: (pending, delivered, given up).
    #[cfg(test)]
    pub(crate) fn notification_counts(&self) -> Result<(u64, u64, u64), LedgerError> {
        let row = self.db.query_opt(
            "SELECT \
             CAST(COALESCE(SUM(CASE WHEN delivered_at IS NULL AND gave_up_at IS NULL THEN 1 ELSE 0 END), 0) AS BIGINT), \
             CAST(COALESCE(SUM(CASE WHEN delivered_at IS NOT NULL THEN 1 ELSE 0 END), 0) AS BIGINT), \
             CAST(COALESCE(SUM(CASE WHEN gave_up_at IS NOT NULL THEN 1 ELSE 0 END), 0) AS BIGINT) \
             FROM notify_outbox",
            p![],
        )?;
        let count = |i| -> Result<u64, LedgerError> {
            let v: i64 = row.as_ref().map_or(Ok(0), |r| r.get(i))?;
            Ok(u64::try_from(v).unwrap_or(0))
        };
        Ok((count(0)?, count(1)?, count(2)?))
    }
}
