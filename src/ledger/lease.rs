//! Leases and fencing: which agent works on a job, and the proof that it still does.
//!
//! A claim gives the job a lease: the agent's name (`lease_holder`), an expiry
//! (`lease_until`, renewed while the agent works) and a fencing number (`fence`), raised by
//! one on every new holder. The ledger remembers the number of each lease it took; every
//! write of a job checks, inside its transaction, that the job's number is still that one.
//! An agent that was stopped (SIGSTOP, a frozen VM, a cut cable) past its lease, and whose
//! job another agent took over meanwhile, gets [`LedgerError::LeaseLost`] at its next
//! write and leaves the job: it can never record a step, post or move files for a job it
//! lost. A job nobody holds (or whose lease expired) is taken by the first agent that
//! writes it. See docs/shared-ledger.md.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use super::db::{Sql, Tx, p};
use super::{JobId, JobRecord, Ledger, LedgerError, from_ms, now_ms};

/// How long a lease lasts unless renewed (`ledger.lease`).
pub(crate) const DEFAULT_TTL: Duration = Duration::from_secs(30);

/// A job's lease as stored.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Lease {
    /// The agent holding it; `None`: nobody.
    pub(crate) holder: Option<String>,
    /// Until when (unix ms).
    pub(crate) until: Option<i64>,
    /// Raised by one with every new holder.
    pub(crate) fence: i64,
}

impl Lease {
    /// The holder, while the lease has not expired at `now` (unix ms).
    pub(crate) fn live_holder(&self, now: i64) -> Option<&str> {
        match (&self.holder, self.until) {
            (Some(holder), Some(until)) if until > now => Some(holder),
            _ => None,
        }
    }
}

/// Who an agent is, as it tells the others when it starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct AgentInfo {
    pub(crate) name: String,
    pub(crate) host: String,
    pub(crate) pid: u32,
    pub(crate) version: String,
    /// Where its `/metrics` are served, if anywhere.
    pub(crate) metrics: Option<String>,
}

/// An agent as the ledger knows it, with the jobs it holds.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub(crate) struct AgentRow {
    pub(crate) name: String,
    pub(crate) host: String,
    pub(crate) pid: u32,
    pub(crate) version: String,
    #[serde(serialize_with = "crate::ledger::lease::rfc3339")]
    pub(crate) started_at: SystemTime,
    #[serde(serialize_with = "crate::ledger::lease::rfc3339")]
    pub(crate) heartbeat_at: SystemTime,
    /// It said goodbye (a clean stop).
    pub(crate) stopped: bool,
    pub(crate) metrics: Option<String>,
    /// The jobs whose live lease it holds.
    pub(crate) jobs: Vec<JobId>,
}

pub(crate) fn rfc3339<S: serde::Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&crate::receipt::UtcTime::from(*t).to_rfc3339())
}

/// This machine's name: the default agent name.
pub(crate) fn default_agent_name() -> String {
    #[cfg(unix)]
    {
        let uname = rustix::system::uname();
        let name = uname.nodename().to_string_lossy().into_owned();
        if !name.is_empty() {
            return name;
        }
    }
    std::env::var("COMPUTERNAME")
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_else(|_| "dropcast".into())
}

/// Gives up job `id`'s lease inside `tx` (its fencing number stays).
pub(super) fn release_in(tx: &Tx<'_>, id: JobId) -> Result<(), LedgerError> {
    tx.execute(
        "UPDATE jobs SET lease_holder = NULL, lease_until = NULL WHERE id = ?1",
        p![id],
    )?;
    Ok(())
}

impl Ledger {
    /// Writes as agent `name` from now on, with leases of `ttl`.
    pub fn set_agent(&mut self, name: &str, ttl: Duration) {
        self.agent = name.to_owned();
        self.lease_ttl = ttl;
    }

    /// The name this ledger writes as.
    pub(crate) fn agent_name(&self) -> &str {
        &self.agent
    }

    /// How long a lease lasts.
    pub(crate) fn lease_ttl(&self) -> Duration {
        self.lease_ttl
    }

    pub(super) fn lease_end(&self, now: i64) -> i64 {
        now.saturating_add(i64::try_from(self.lease_ttl.as_millis()).unwrap_or(i64::MAX))
    }

    /// The live holder of `job`'s lease when that is another agent.
    pub(super) fn held_by_other(&self, job: &JobRecord, now: i64) -> Option<String> {
        job.lease
            .live_holder(now)
            .filter(|holder| *holder != self.agent)
            .map(str::to_owned)
    }

    /// Takes job `id`'s lease inside `tx`: this agent, a new expiry, the next fencing
    /// number, which it returns.
    pub(super) fn take_lease(&self, tx: &Tx<'_>, id: JobId, now: i64) -> Result<i64, LedgerError> {
        tx.value(
            "UPDATE jobs SET lease_holder = ?1, lease_until = ?2, fence = fence + 1 \
             WHERE id = ?3 RETURNING fence",
            p![&self.agent, self.lease_end(now), id],
        )
    }

    /// The fencing number under which this agent may write `job` now: the lease it holds
    /// (refused with [`LedgerError::LeaseLost`] once another agent took the job over), or a
    /// new lease when nobody holds one (refused with [`LedgerError::LeaseHeld`] while
    /// another live agent does).
    pub(super) fn fence_for(
        &self,
        tx: &Tx<'_>,
        job: &JobRecord,
        now: i64,
    ) -> Result<i64, LedgerError> {
        if self.lost.contains(&job.id) {
            return Err(lost(job));
        }
        match self.held.get(&job.id) {
            Some(&mine)
                if job.lease.fence == mine && job.lease.holder.as_deref() == Some(&self.agent) =>
            {
                Ok(mine)
            }
            Some(_) => Err(lost(job)),
            None => match self.held_by_other(job, now) {
                Some(holder) => Err(LedgerError::LeaseHeld { id: job.id, holder }),
                None => self.take_lease(tx, job.id, now),
            },
        }
    }

    /// After a refused write: a lease another agent took over is forgotten, and the job
    /// stays refused to this handle until it claims the job again.
    pub(super) fn forget_if_lost(&mut self, id: JobId, e: &LedgerError) {
        if matches!(e, LedgerError::LeaseLost { .. }) {
            self.held.remove(&id);
            self.lost.insert(id);
        }
    }

    /// The jobs whose lease this agent holds.
    pub(crate) fn held_jobs(&self) -> Vec<JobId> {
        let mut ids: Vec<JobId> = self.held.keys().copied().collect();
        ids.sort_unstable();
        ids
    }

    /// Renews every lease this agent holds and its heartbeat, in one transaction; returns
    /// the jobs another agent took over meanwhile (their leases are forgotten).
    pub fn renew_leases(&mut self) -> Result<Vec<JobId>, LedgerError> {
        let now = now_ms();
        let until = self.lease_end(now);
        let tx = self.begin()?;
        // One statement for every lease under this agent's name, whatever their number.
        let rows = tx.query(
            "UPDATE jobs SET lease_until = ?1 WHERE lease_holder = ?2 RETURNING id, fence",
            p![until, &self.agent],
        )?;
        let mut renewed = HashMap::with_capacity(rows.len());
        for row in &rows {
            renewed.insert(row.get::<JobId>(0)?, row.get::<i64>(1)?);
        }
        // A lease under this name that this handle did not take (an earlier run's, not
        // claimed again) is given up, not kept alive: another agent may take it over.
        for (&id, &fence) in &renewed {
            if self.held.get(&id) != Some(&fence) {
                tx.execute(
                    "UPDATE jobs SET lease_holder = NULL, lease_until = NULL \
                     WHERE id = ?1 AND fence = ?2",
                    p![id, fence],
                )?;
            }
        }
        tx.execute(
            "UPDATE agents SET heartbeat_at = ?1 WHERE name = ?2",
            p![now, &self.agent],
        )?;
        tx.commit()?;
        let mut lost: Vec<JobId> = self
            .held
            .iter()
            .filter(|(id, fence)| renewed.get(id) != Some(fence))
            .map(|(id, _)| *id)
            .collect();
        for id in &lost {
            self.held.remove(id);
            self.lost.insert(*id);
        }
        lost.sort_unstable();
        Ok(lost)
    }

    /// Gives up the leases of `ids` this agent holds (its work on them is over for now).
    pub fn release(&mut self, ids: &[JobId]) -> Result<(), LedgerError> {
        let mine: Vec<(JobId, i64)> = ids
            .iter()
            .filter_map(|id| self.held.get(id).map(|f| (*id, *f)))
            .collect();
        if mine.is_empty() {
            return Ok(());
        }
        let tx = self.begin()?;
        for &(id, fence) in &mine {
            tx.execute(
                "UPDATE jobs SET lease_holder = NULL, lease_until = NULL \
                 WHERE id = ?1 AND lease_holder = ?2 AND fence = ?3",
                p![id, &self.agent, fence],
            )?;
        }
        tx.commit()?;
        for (id, _) in mine {
            self.held.remove(&id);
        }
        Ok(())
    }

    /// Gives up the leases this agent holds on the jobs of the drop whose video is `video`
    /// (relative to the inbox), and forgets which of them it lost: its work on the drop
    /// is over, and a later look at it claims them anew.
    pub(crate) fn release_drop(&mut self, video: &std::path::Path) -> Result<(), LedgerError> {
        let rows = self.db.query(
            "SELECT id FROM jobs WHERE video = ?1",
            p![super::path_to_blob(video)],
        )?;
        let ids = rows
            .iter()
            .map(|r| r.get(0))
            .collect::<Result<Vec<JobId>, _>>()?;
        for id in &ids {
            self.lost.remove(id);
        }
        self.release(&ids)
    }

    /// The agent that took job `id` over from this one (`none`: nobody holds it now),
    /// when a renewal or a write found that this agent lost the job's lease.
    pub(crate) fn lost_to(&self, id: JobId) -> Result<Option<String>, LedgerError> {
        if !self.lost.contains(&id) {
            return Ok(None);
        }
        let holder = self.job(id)?.and_then(|job| job.lease.holder);
        Ok(Some(holder.unwrap_or_else(|| "none".into())))
    }

    /// Gives up every lease this agent holds.
    pub(crate) fn release_all(&mut self) -> Result<(), LedgerError> {
        let ids = self.held_jobs();
        self.release(&ids)
    }

    /// Says that agent `info.name` runs now. Refused with [`LedgerError::AgentNameTaken`]
    /// while another agent of that name gives signs of life (a heartbeat within a lease,
    /// and no goodbye).
    pub(crate) fn register_agent(&mut self, info: &AgentInfo) -> Result<(), LedgerError> {
        let now = now_ms();
        let instance = format!("{}-{}", info.pid, now);
        let tx = self.begin()?;
        let other = tx.query_opt(
            "SELECT host, pid, heartbeat_at, stopped_at FROM agents WHERE name = ?1",
            p![&info.name],
        )?;
        if let Some(row) = other {
            let host: String = row.get(0)?;
            let pid: i64 = row.get(1)?;
            let heartbeat: i64 = row.get(2)?;
            let stopped: Option<i64> = row.get(3)?;
            let recent = stopped.is_none() && heartbeat > now - self.lease_end(0);
            let same_process = host == info.host && pid == i64::from(info.pid);
            // On this host, a process that is gone is not alive, however recent its beat.
            let gone_here = host == info.host && !pid_alive(pid);
            if recent && !same_process && !gone_here {
                return Err(LedgerError::AgentNameTaken {
                    name: info.name.clone(),
                    host,
                    pid,
                });
            }
        }
        tx.execute(
            "INSERT INTO agents (name, host, pid, version, instance, started_at, heartbeat_at, \
             stopped_at, metrics) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6, NULL, ?7) \
             ON CONFLICT (name) DO UPDATE SET host = excluded.host, pid = excluded.pid, \
             version = excluded.version, instance = excluded.instance, \
             started_at = excluded.started_at, heartbeat_at = excluded.heartbeat_at, \
             stopped_at = NULL, metrics = excluded.metrics",
            p![
                &info.name,
                &info.host,
                i64::from(info.pid),
                &info.version,
                instance,
                now,
                info.metrics.clone()
            ],
        )?;
        tx.commit()?;
        self.agent = info.name.clone();
        Ok(())
    }

    /// Says goodbye: this agent stopped cleanly, and its leases are free for the others.
    pub(crate) fn agent_stopped(&mut self) -> Result<(), LedgerError> {
        self.release_all()?;
        let tx = self.begin()?;
        tx.execute(
            "UPDATE agents SET stopped_at = ?1 WHERE name = ?2",
            p![now_ms(), &self.agent],
        )?;
        tx.commit()
    }

    /// Every agent that ever used this ledger, by name, with the jobs each holds now.
    pub(crate) fn agents(&self) -> Result<Vec<AgentRow>, LedgerError> {
        let now = now_ms();
        let rows = self.db.query(
            "SELECT name, host, pid, version, started_at, heartbeat_at, stopped_at, metrics \
             FROM agents ORDER BY name",
            p![],
        )?;
        let held = self.db.query(
            "SELECT id, lease_holder FROM jobs WHERE lease_holder IS NOT NULL \
             AND lease_until > ?1 ORDER BY id",
            p![now],
        )?;
        let mut agents = Vec::with_capacity(rows.len());
        for row in rows {
            let name: String = row.get(0)?;
            let mut jobs = Vec::new();
            for h in &held {
                if h.get::<String>(1)? == name {
                    jobs.push(h.get::<i64>(0)?);
                }
            }
            agents.push(AgentRow {
                pid: u32::try_from(row.get::<i64>(2)?).unwrap_or(0),
                host: row.get(1)?,
                version: row.get(3)?,
                started_at: from_ms(row.get(4)?),
                heartbeat_at: from_ms(row.get(5)?),
                stopped: row.get::<Option<i64>>(6)?.is_some(),
                metrics: row.get(7)?,
                name,
                jobs,
            });
        }
        Ok(agents)
    }

    /// The inbox paths (relative) of drops whose work nobody does: an unfinished job
    /// (Active, or Published and not archived, or an ended target of a drop still in the
    /// inbox) whose lease is free or expired, in a drop none of whose jobs has a live
    /// lease. An agent takes them over by handling the drop again.
    pub(crate) fn orphaned_drops(&self) -> Result<Vec<std::path::PathBuf>, LedgerError> {
        let rows = self.db.query(
            "SELECT DISTINCT video FROM jobs j WHERE (state IN ('active', 'published') \
               OR (archive_plan IS NOT NULL AND archived_to IS NULL \
                   AND state IN ('failed', 'duplicate'))) \
             AND (lease_holder IS NULL OR lease_until <= ?1) \
             AND NOT EXISTS (SELECT 1 FROM jobs o WHERE o.video = j.video \
                 AND o.lease_holder IS NOT NULL AND o.lease_until > ?1) \
             ORDER BY video",
            p![now_ms()],
        )?;
        rows.iter()
            .map(|r| Ok(super::blob_to_path(r.get(0)?)))
            .collect()
    }
}

/// The refusal of a write to `job`, which another agent took over from this one.
fn lost(job: &JobRecord) -> LedgerError {
    LedgerError::LeaseLost {
        id: job.id,
        holder: job.lease.holder.clone().unwrap_or_else(|| "none".into()),
    }
}

/// Whether process `pid` runs on this machine.
fn pid_alive(pid: i64) -> bool {
    #[cfg(unix)]
    {
        let Some(pid) = i32::try_from(pid)
            .ok()
            .and_then(rustix::process::Pid::from_raw)
        else {
            return false;
        };
        // EPERM: it exists, but belongs to another user (an agent run as a service user,
        // say): alive. Only "no such process" is gone.
        !matches!(
            rustix::process::test_kill_process(pid),
            Err(rustix::io::Errno::SRCH)
        )
    }
    #[cfg(windows)]
    {
        u32::try_from(pid).is_ok_and(crate::win::process_alive)
    }
    #[cfg(not(any(unix, windows)))]
    {
        let _ = pid;
        true
    }
}

#[cfg(all(test, unix))]
mod pid_tests {
    // Regression (issue 14 review): another user's process (EPERM) counted as gone, so a second agent of the same name could start beside one run by another user.
    #[test]
    fn a_process_of_another_user_is_alive() {
        // pid 1 runs as root: EPERM for a normal user, found for root; alive either way.
        assert!(super::pid_alive(1));
        assert!(super::pid_alive(i64::from(std::process::id())));
        assert!(!super::pid_alive(i64::from(i32::MAX)));
    }
}
