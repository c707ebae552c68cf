//! The agents that use the ledger, as `dropcast status`, the dashboard (`/api/jobs`) and
//! `/metrics` show them: who and where each is, its last heartbeat, whether it is alive,
//! and the jobs whose lease it holds. Several agents share a PostgreSQL ledger (issue 13);
//! on SQLite there is usually one, and the text status shows the list only when there is
//! more than one or the ledger is shared ([`AgentList::worth_showing`]).

use std::time::{Duration, SystemTime};

use serde::Serialize;

use crate::ledger::{AgentRow, Ledger, LedgerError};
use crate::receipt::{UtcTime, file_label};

/// Every agent the ledger knows, and whether the ledger is shared.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct AgentList {
    /// The ledger is on PostgreSQL, where several agents may share it.
    pub shared: bool,
    pub agents: Vec<AgentEntry>,
}

/// One agent that used the ledger.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct AgentEntry {
    pub name: String,
    pub host: String,
    pub pid: u32,
    pub version: String,
    pub started_at: UtcTime,
    pub heartbeat_at: UtcTime,
    /// Seconds since its last heartbeat.
    pub heartbeat_age_seconds: u64,
    /// It said goodbye (a clean stop).
    pub stopped: bool,
    /// Not stopped, and a heartbeat within two leases.
    pub alive: bool,
    /// The jobs whose live lease it holds.
    pub jobs: Vec<HeldJob>,
}

/// A job an agent holds.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct HeldJob {
    pub id: i64,
    /// The video, relative to the inbox; empty when the job was not found.
    pub file: String,
}

impl AgentList {
    /// Reads the agents from `ledger` as of `now`.
    pub(crate) fn read(ledger: &Ledger, now: SystemTime) -> Result<AgentList, LedgerError> {
        let lease = ledger.lease_ttl();
        let mut agents = Vec::new();
        for row in ledger.agents()? {
            let mut jobs = Vec::with_capacity(row.jobs.len());
            for &id in &row.jobs {
                let file = ledger
                    .job(id)?
                    .map(|j| file_label(&j.video))
                    .unwrap_or_default();
                jobs.push(HeldJob { id, file });
            }
            agents.push(AgentEntry::of(row, jobs, lease, now));
        }
        Ok(AgentList {
            shared: ledger.is_shared(),
            agents,
        })
    }

    /// Whether people need the list: several agents, or a shared ledger. A single agent on
    /// SQLite sees `status` as it always was.
    pub fn worth_showing(&self) -> bool {
        self.shared || self.agents.len() > 1
    }
}

impl AgentEntry {
    fn of(row: AgentRow, jobs: Vec<HeldJob>, lease: Duration, now: SystemTime) -> AgentEntry {
        let age = now.duration_since(row.heartbeat_at).unwrap_or_default();
        AgentEntry {
            alive: !row.stopped && age <= lease * 2,
            heartbeat_age_seconds: age.as_secs(),
            started_at: row.started_at.into(),
            heartbeat_at: row.heartbeat_at.into(),
            stopped: row.stopped,
            name: row.name,
            host: row.host,
            pid: row.pid,
            version: row.version,
            jobs,
        }
    }

    /// `alive`, `stopped`, or `silent` (no goodbye, no heartbeat for two leases: killed,
    /// frozen or cut off; its jobs are taken over once their leases expire).
    pub fn state(&self) -> &'static str {
        match (self.alive, self.stopped) {
            (true, _) => "alive",
            (false, true) => "stopped",
            (false, false) => "silent",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{ContentHash, Platform};
    use crate::ledger::{AgentInfo, Claim, NewJob};

    fn info(name: &str, pid: u32) -> AgentInfo {
        AgentInfo {
            name: name.into(),
            host: format!("{name}.local"),
            pid,
            version: "9.9.9".into(),
            metrics: None,
        }
    }

    #[test]
    fn two_agents_on_one_sqlite_ledger_are_listed_with_the_jobs_each_holds() {
        let dir = tempfile::tempdir().unwrap();
        let lease = Duration::from_secs(30);
        let mut a = Ledger::open(dir.path()).unwrap();
        a.set_agent("host-a", lease);
        a.register_agent(&info("host-a", 11)).unwrap();
        let mut b = Ledger::open(dir.path()).unwrap();
        b.set_agent("host-b", lease);
        b.register_agent(&info("host-b", 22)).unwrap();
        let job = NewJob {
            sha256: ContentHash::from_digest(&[1; 32]),
            account: "main".into(),
            platform: Platform::DouyinWeb,
            video: "clips/a.mp4".into(),
            caption: None,
            size: 1,
        };
        let id = match b.claim(&job, false).unwrap() {
            Claim::New(j) => j.id,
            other => panic!("{other:?}"),
        };

        let list = AgentList::read(&a, SystemTime::now()).unwrap();
        assert!(!list.shared);
        assert!(list.worth_showing(), "two agents are worth a list");
        let names: Vec<&str> = list.agents.iter().map(|x| x.name.as_str()).collect();
        assert_eq!(names, ["host-a", "host-b"]);
        let hb = &list.agents[1];
        assert_eq!(
            (hb.host.as_str(), hb.pid, hb.version.as_str()),
            ("host-b.local", 22, "9.9.9")
        );
        assert_eq!(
            hb.jobs,
            [HeldJob {
                id,
                file: "clips/a.mp4".into()
            }]
        );
        assert!(list.agents[0].jobs.is_empty());
        assert!(list.agents.iter().all(|x| x.alive && x.state() == "alive"));

        // A goodbye, and a minute and a half later (three leases of 30 s) silence.
        b.agent_stopped().unwrap();
        let later = SystemTime::now() + Duration::from_secs(90);
        let list = AgentList::read(&a, later).unwrap();
        assert_eq!(list.agents[0].state(), "silent");
        assert!(list.agents[0].heartbeat_age_seconds >= 89);
        assert_eq!(list.agents[1].state(), "stopped");
        assert!(list.agents[1].jobs.is_empty(), "a goodbye frees its leases");
    }

    #[test]
    fn a_single_agent_on_sqlite_is_not_worth_a_list() {
        let dir = tempfile::tempdir().unwrap();
        let mut a = Ledger::open(dir.path()).unwrap();
        a.register_agent(&info("solo", 1)).unwrap();
        let list = AgentList::read(&a, SystemTime::now()).unwrap();
        assert_eq!(list.agents.len(), 1);
        assert!(!list.worth_showing());
    }
}
