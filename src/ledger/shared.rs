//! What agents sharing a ledger share besides its jobs: each account's pause and its next
//! post slot (the `accounts` table), so that a session refused on one machine pauses the
//! account everywhere and two agents never post for one account within
//! `publish.min_interval`; and the schema version `dropcast ledger migrate` reports. Both
//! databases run the same statements; a single SQLite agent uses them too (one agent is
//! a special case of several). See docs/shared-ledger.md.

use std::time::{Duration, SystemTime};

use super::db::{Sql, p};
use super::{Ledger, LedgerError, Upgrade, from_ms, now_ms};

/// An account paused in the ledger, by whichever agent found its session refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SharedPause {
    pub(crate) account: String,
    pub(crate) reason: String,
    pub(crate) since: SystemTime,
    /// The agent that paused it.
    pub(crate) by: String,
}

const PAUSE_COLUMNS: &str = "account, paused_reason, paused_at, paused_by";

impl SharedPause {
    fn from_row(row: &super::db::Row) -> Result<SharedPause, LedgerError> {
        Ok(SharedPause {
            account: row.get(0)?,
            reason: row.get::<Option<String>>(1)?.unwrap_or_default(),
            since: from_ms(row.get(2)?),
            by: row.get::<Option<String>>(3)?.unwrap_or_default(),
        })
    }
}

/// What `dropcast ledger migrate` found and did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Migrated {
    /// The ledger is at `now`, which it was at `was` before.
    Done {
        /// The SQLite file or `postgresql://host:port/db`.
        ledger: String,
        was: i64,
        now: i64,
        shared: bool,
    },
    /// There is no SQLite ledger (or only an empty file) yet: nothing was created.
    NoLedger { ledger: String },
}

impl std::fmt::Display for Migrated {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Migrated::NoLedger { ledger } => write!(
                f,
                "ledger {ledger}: none yet (or an empty file), nothing to migrate; dropcast \
                 creates it at schema {} when it first runs",
                super::SCHEMA_VERSION
            ),
            Migrated::Done {
                ledger,
                was,
                now,
                shared,
            } => {
                let what = if was == now {
                    "nothing to do"
                } else {
                    "migrated"
                };
                write!(f, "ledger {ledger}: schema {now} (was {was}; {what})")?;
                if !shared {
                    write!(
                        f,
                        "\nA SQLite ledger is migrated whenever dropcast opens it; \
                         `ledger migrate` matters for a shared (PostgreSQL) ledger."
                    )?;
                }
                Ok(())
            }
        }
    }
}

impl Ledger {
    /// `dropcast ledger migrate`: upgrades the ledger `config` names to this dropcast's
    /// schema and says from which version. A shared ledger is upgraded only here (agents
    /// refuse an older one, naming this command); a SQLite ledger whenever it is opened, so
    /// this one only does it now. An absent or empty SQLite file is left alone (its fresh
    /// start is the agent's to judge, see `lost_ledger`).
    pub(crate) fn migrate_configured(
        config: &crate::config::Config,
    ) -> Result<Migrated, LedgerError> {
        let was = if config.ledger.is_shared() {
            match Ledger::open_with(config, Upgrade::Refuse) {
                Ok(ledger) => ledger.schema_version()?,
                Err(LedgerError::OlderSchema { found, .. }) => found,
                Err(e) => return Err(e),
            }
        } else {
            let path = config.state_dir.join(super::FILE_NAME);
            match sqlite_version(&path) {
                Some(v) if v > 0 => v,
                _ => {
                    return Ok(Migrated::NoLedger {
                        ledger: path.display().to_string(),
                    });
                }
            }
        };
        let ledger = Ledger::open_with(config, Upgrade::Migrate)?;
        Ok(Migrated::Done {
            ledger: ledger.path().display().to_string(),
            was,
            now: ledger.schema_version()?,
            shared: ledger.is_shared(),
        })
    }
}

/// The schema version of the SQLite file at `path`, read without writing; `None` when
/// there is no file or it cannot be read as a database.
fn sqlite_version(path: &std::path::Path) -> Option<i64> {
    if std::fs::metadata(path).ok()?.len() == 0 {
        return None;
    }
    let flags =
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = rusqlite::Connection::open_with_flags(path, flags).ok()?;
    conn.pragma_query_value(None, "user_version", |row| row.get(0))
        .ok()
}

/// `d` in whole milliseconds, saturating.
fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl Ledger {
    /// The schema version the ledger is at.
    pub(crate) fn schema_version(&self) -> Result<i64, LedgerError> {
        let sql = if self.is_shared() {
            "SELECT max(version) FROM dropcast_schema"
        } else {
            "SELECT user_version FROM pragma_user_version"
        };
        let version: Option<i64> = self.db.value(sql, p![])?;
        Ok(version.unwrap_or(0))
    }

    /// Books `account`'s next post: in one exclusive write transaction, the slot is the
    /// latest of now, the slot booked last (by any agent) plus `interval`, and the last
    /// step-5 send for the account plus `interval`; it is stored as the account's booked
    /// slot and returned. The caller waits until then and posts.
    pub(crate) fn book_post_slot(
        &mut self,
        account: &str,
        interval: Duration,
    ) -> Result<SystemTime, LedgerError> {
        let now = now_ms();
        let step = ms(interval);
        let tx = self.begin()?;
        let booked: Option<i64> = match tx.query_opt(
            "SELECT post_slot FROM accounts WHERE account = ?1",
            p![account],
        )? {
            Some(row) => row.get(0)?,
            None => None,
        };
        let sent: Option<i64> = tx.value(
            "SELECT MAX(publish_sent_at) FROM jobs WHERE account = ?1",
            p![account],
        )?;
        let slot = [booked, sent]
            .into_iter()
            .flatten()
            .map(|t| t.saturating_add(step))
            .fold(now, i64::max);
        tx.execute(
            "INSERT INTO accounts (account, post_slot) VALUES (?1, ?2) \
             ON CONFLICT (account) DO UPDATE SET post_slot = excluded.post_slot",
            p![account, slot],
        )?;
        tx.commit()?;
        Ok(from_ms(slot))
    }

    /// Pauses `account` for every agent, as this one, unless it is paused already (the
    /// first pause, and who made it, stays).
    pub(crate) fn pause_account(
        &mut self,
        account: &str,
        reason: &str,
        hint: &str,
    ) -> Result<(), LedgerError> {
        let tx = self.begin()?;
        let now = now_ms();
        let paused = tx.execute(
            "INSERT INTO accounts (account, paused_reason, paused_at, paused_by) \
             VALUES (?1, ?2, ?3, ?4) ON CONFLICT (account) DO UPDATE SET \
             paused_reason = excluded.paused_reason, paused_at = excluded.paused_at, \
             paused_by = excluded.paused_by WHERE accounts.paused_at IS NULL",
            p![account, reason, now, &self.agent],
        )?;
        // Told once per pause, whichever agent noticed it first.
        if paused == 1 {
            let kind = crate::notify::event::EventKind::Paused;
            self.outbox
                .account(&tx, kind, account, reason, Some(hint), now)?;
        }
        tx.commit()
    }

    /// `account` works again, for every agent.
    pub(crate) fn resume_account(&mut self, account: &str) -> Result<(), LedgerError> {
        let tx = self.begin()?;
        let resumed = tx.execute(
            "UPDATE accounts SET paused_reason = NULL, paused_at = NULL, paused_by = NULL \
             WHERE account = ?1 AND paused_at IS NOT NULL",
            p![account],
        )?;
        if resumed == 1 {
            let kind = crate::notify::event::EventKind::Resumed;
            let why = "the account works again; its queued videos go on";
            self.outbox
                .account(&tx, kind, account, why, None, now_ms())?;
        }
        tx.commit()
    }

    /// Forgets the pauses this agent made in an earlier run: a restart tries its accounts
    /// again, as it always did, and pauses them again if they still fail.
    pub(crate) fn forget_own_pauses(&mut self) -> Result<(), LedgerError> {
        let tx = self.begin()?;
        tx.execute(
            "UPDATE accounts SET paused_reason = NULL, paused_at = NULL, paused_by = NULL \
             WHERE paused_by = ?1",
            p![&self.agent],
        )?;
        tx.commit()
    }

    /// `account`'s pause, if it is paused (one row by its key: cheap before every job).
    pub(crate) fn account_pause(&self, account: &str) -> Result<Option<SharedPause>, LedgerError> {
        let row = self.db.query_opt(
            &format!(
                "SELECT {PAUSE_COLUMNS} FROM accounts WHERE account = ?1 \
                 AND paused_at IS NOT NULL"
            ),
            p![account],
        )?;
        row.as_ref().map(SharedPause::from_row).transpose()
    }

    /// Every paused account, by name.
    pub(crate) fn paused_accounts(&self) -> Result<Vec<SharedPause>, LedgerError> {
        let rows = self.db.query(
            &format!(
                "SELECT {PAUSE_COLUMNS} FROM accounts WHERE paused_at IS NOT NULL \
                 ORDER BY account"
            ),
            p![],
        )?;
        rows.iter().map(SharedPause::from_row).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two agents on one SQLite ledger: two handles on the same state folder.
    fn two_agents() -> (tempfile::TempDir, Ledger, Ledger) {
        let dir = tempfile::tempdir().unwrap();
        let mut a = Ledger::open(dir.path()).unwrap();
        a.set_agent("host-a", Duration::from_secs(30));
        let mut b = Ledger::open(dir.path()).unwrap();
        b.set_agent("host-b", Duration::from_secs(30));
        (dir, a, b)
    }

    fn ms_of(t: SystemTime) -> i64 {
        super::super::to_ms(t)
    }

    #[test]
    fn slots_booked_by_two_agents_are_never_closer_than_the_interval() {
        let (_d, mut a, mut b) = two_agents();
        let interval = Duration::from_secs(60);
        let before = now_ms();
        let mut slots = Vec::new();
        for i in 0..6 {
            let l = if i % 2 == 0 { &mut a } else { &mut b };
            slots.push(ms_of(l.book_post_slot("main", interval).unwrap()));
        }
        assert!(
            slots[0] >= before && slots[0] <= now_ms(),
            "the first slot is now"
        );
        for pair in slots.windows(2) {
            assert!(pair[1] - pair[0] >= 60_000, "slots {slots:?}");
        }
        // Another account has its own slots.
        let other = ms_of(b.book_post_slot("second", interval).unwrap());
        assert!(other <= now_ms(), "{other}");
    }

    #[test]
    fn slots_booked_from_threads_at_once_keep_the_interval() {
        let dir = tempfile::tempdir().unwrap();
        let interval = Duration::from_secs(10);
        let threads: Vec<_> = (0..4)
            .map(|i| {
                let path = dir.path().to_path_buf();
                std::thread::spawn(move || {
                    let mut l = Ledger::open(&path).unwrap();
                    l.set_agent(&format!("agent-{i}"), Duration::from_secs(30));
                    (0..3)
                        .map(|_| ms_of(l.book_post_slot("main", interval).unwrap()))
                        .collect::<Vec<i64>>()
                })
            })
            .collect();
        let mut slots: Vec<i64> = threads
            .into_iter()
            .flat_map(|t| t.join().unwrap())
            .collect();
        slots.sort_unstable();
        assert_eq!(slots.len(), 12);
        for pair in slots.windows(2) {
            assert!(pair[1] - pair[0] >= 10_000, "slots {slots:?}");
        }
    }

    #[test]
    fn a_slot_waits_for_the_last_send_of_the_account() {
        let (_d, mut a, mut b) = two_agents();
        let job = crate::ledger::NewJob {
            sha256: crate::domain::ContentHash::from_digest(&[7; 32]),
            account: "main".into(),
            platform: crate::domain::Platform::DouyinWeb,
            video: "v.mp4".into(),
            caption: None,
            size: 1,
        };
        let id = match a.claim(&job, false).unwrap() {
            crate::ledger::Claim::New(j) => j.id,
            other => panic!("{other:?}"),
        };
        // Sent without a slot booked (an agent of before): the send still counts.
        a.mark_publish_sent(id).unwrap();
        let sent = ms_of(b.last_publish_sent("main").unwrap().unwrap());
        let slot = ms_of(b.book_post_slot("main", Duration::from_secs(30)).unwrap());
        assert_eq!(slot, sent + 30_000);
    }

    #[test]
    fn a_pause_by_one_agent_is_seen_by_the_other_until_resumed() {
        let (_d, mut a, mut b) = two_agents();
        assert_eq!(b.account_pause("main").unwrap(), None);
        a.pause_account("main", "cookie expired", "log in").unwrap();
        let seen = b.account_pause("main").unwrap().expect("paused for b too");
        assert_eq!(
            (seen.reason.as_str(), seen.by.as_str()),
            ("cookie expired", "host-a")
        );
        // A second pause keeps the first one, and who made it.
        b.pause_account("main", "refused again", "log in").unwrap();
        let list = a.paused_accounts().unwrap();
        assert_eq!(list.len(), 1);
        assert_eq!(
            (list[0].by.as_str(), list[0].reason.as_str()),
            ("host-a", "cookie expired")
        );
        // A booked slot does not disturb the pause, nor the pause the slot.
        a.book_post_slot("main", Duration::from_secs(1)).unwrap();
        assert!(b.account_pause("main").unwrap().is_some());
        b.resume_account("main").unwrap();
        assert_eq!(a.account_pause("main").unwrap(), None);
        assert!(a.paused_accounts().unwrap().is_empty());
    }

    #[test]
    fn an_agent_forgets_only_its_own_pauses() {
        let (_d, mut a, mut b) = two_agents();
        a.pause_account("one", "expired", "log in").unwrap();
        b.pause_account("two", "expired", "log in").unwrap();
        a.forget_own_pauses().unwrap();
        let left: Vec<String> = b
            .paused_accounts()
            .unwrap()
            .into_iter()
            .map(|p| p.account)
            .collect();
        assert_eq!(left, ["two"]);
    }

    #[test]
    fn a_new_sqlite_ledger_is_at_the_current_schema() {
        let (_d, a, _b) = two_agents();
        assert_eq!(a.schema_version().unwrap(), super::super::SCHEMA_VERSION);
    }
}
