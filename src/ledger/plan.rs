//! The posting plan's slots in the ledger (`jobs.planned_at`): booking a job's slot in one
//! exclusive write transaction that reads the account's booked slots (so agents sharing a
//! ledger never book one slot twice), reading it back after a restart (a job keeps its
//! slot: it is never planned again), and what `status` shows. Both databases run the same
//! statements. See docs/posting-plan.md.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use super::db::{Sql, p};
use super::{JobId, JobState, LIVE_STATES_SQL, Ledger, LedgerError, blob_to_path, from_ms, to_ms};

/// How far back booked slots can matter to a new one: the least gap (at most 7 days)
/// after the latest, and the local day of now.
const LOOKBACK: Duration = Duration::from_secs(8 * 86_400);

/// A job with a slot, as `status` shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Planned {
    pub(crate) id: JobId,
    pub(crate) account: String,
    pub(crate) video: PathBuf,
    pub(crate) at: SystemTime,
    pub(crate) state: JobState,
    /// Sent already (with the platform's timer, or at its slot).
    pub(crate) sent: bool,
}

impl Ledger {
    /// Job `id`'s slot: the one booked before if there is one, else `pick(booked)` given
    /// the slots of the account's other live jobs (from a week before now on), stored in
    /// the same exclusive write transaction. Active jobs this agent holds only. `pick`
    /// returning `None` (no slot in the calendar) books nothing.
    pub(crate) fn book_planned_slot(
        &mut self,
        id: JobId,
        pick: impl FnOnce(&[SystemTime]) -> Option<SystemTime>,
    ) -> Result<SystemTime, LedgerError> {
        let mut slot = None;
        self.transition(
            id,
            "book a planned slot",
            Some("after_commit:planned"),
            &[JobState::Active],
            |tx, job, now| {
                let existing: Option<i64> =
                    tx.value("SELECT planned_at FROM jobs WHERE id = ?1", p![id])?;
                if let Some(at) = existing {
                    slot = Some(at);
                    return Ok(());
                }
                let since =
                    now.saturating_sub(i64::try_from(LOOKBACK.as_millis()).unwrap_or(i64::MAX));
                let rows = tx.query(
                    &format!(
                        "SELECT planned_at FROM jobs WHERE account = ?1 AND id <> ?2 \
                     AND planned_at IS NOT NULL AND planned_at >= ?3 AND state IN {LIVE_STATES_SQL}"
                    ),
                    p![&job.account, id, since],
                )?;
                let booked = rows
                    .iter()
                    .map(|r| r.get::<i64>(0).map(from_ms))
                    .collect::<Result<Vec<_>, _>>()?;
                let at = pick(&booked)
                    .ok_or(LedgerError::Invalid("the posting plan has no slot left"))?;
                let at = to_ms(at);
                tx.execute(
                    "UPDATE jobs SET planned_at = ?1, updated_at = ?2 WHERE id = ?3",
                    p![at, now, id],
                )?;
                slot = Some(at);
                Ok(())
            },
        )?;
        slot.map(from_ms)
            .ok_or(LedgerError::Invalid("no slot was booked"))
    }

    /// Job `id`'s booked slot, if it has one.
    #[cfg(test)]
    pub(crate) fn planned_at(&self, id: JobId) -> Result<Option<SystemTime>, LedgerError> {
        let at: Option<Option<i64>> = self
            .db
            .query_opt("SELECT planned_at FROM jobs WHERE id = ?1", p![id])?
            .map(|row| row.get(0))
            .transpose()?;
        Ok(at.flatten().map(from_ms))
    }

    /// `account`'s booked slots of live jobs from `since` on, earliest first.
    pub(crate) fn booked_slots(
        &self,
        account: &str,
        since: SystemTime,
    ) -> Result<Vec<SystemTime>, LedgerError> {
        let rows = self.db.query(
            &format!(
                "SELECT planned_at FROM jobs WHERE account = ?1 AND planned_at IS NOT NULL \
                 AND planned_at >= ?2 AND state IN {LIVE_STATES_SQL} ORDER BY planned_at"
            ),
            p![account, to_ms(since)],
        )?;
        rows.iter().map(|r| r.get::<i64>(0).map(from_ms)).collect()
    }

    /// The planned videos `status` shows: live jobs with a slot that either wait for it
    /// here (not sent yet) or whose slot is still ahead (sent with the platform's timer),
    /// by slot.
    pub(crate) fn planned(&self) -> Result<Vec<Planned>, LedgerError> {
        let rows = self.db.query(
            &format!(
                "SELECT id, account, video, planned_at, state, publish_sent_at FROM jobs \
                 WHERE planned_at IS NOT NULL AND state IN {LIVE_STATES_SQL} \
                 AND (state = 'active' OR planned_at > ?1) ORDER BY planned_at, id"
            ),
            p![super::now_ms()],
        )?;
        rows.iter()
            .map(|r| {
                let state: String = r.get(4)?;
                Ok(Planned {
                    id: r.get(0)?,
                    account: r.get(1)?,
                    video: blob_to_path(r.get(2)?),
                    at: from_ms(r.get(3)?),
                    state: JobState::parse(&state)
                        .ok_or_else(|| LedgerError::Schema(format!("unknown state `{state}`")))?,
                    sent: r.get::<Option<i64>>(5)?.is_some() || state != "active",
                })
            })
            .collect()
    }
}
