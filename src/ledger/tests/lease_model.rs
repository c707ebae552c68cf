//! The randomized model of several agents sharing one ledger (issue 13): three handles
//! claim, write, renew, release and are paused past their leases in random order, against
//! the model of "one post per content per account" and of fencing: a write succeeds only
//! under the job's current fence, and a write of an agent that lost the lease changes
//! nothing.

use std::collections::HashMap;

use super::*;

const AGENTS: [&str; 3] = ["a", "b", "c"];
/// Leases expire only when an `Expire` says so (an agent paused past its lease).
const LONG: Duration = Duration::from_secs(3600);

#[derive(Clone, Debug)]
enum AgentOp {
    Claim {
        agent: usize,
        content: u8,
        account: u8,
        path: u8,
    },
    /// Every lease of `agent` expires: it was paused (SIGSTOP, a frozen VM) too long.
    Expire {
        agent: usize,
    },
    Step {
        agent: usize,
        pick: usize,
    },
    MarkSent {
        agent: usize,
        pick: usize,
    },
    Publish {
        agent: usize,
        pick: usize,
    },
    Fail {
        agent: usize,
        pick: usize,
    },
    /// Plans the archive of every target of the picked job's drop at once.
    Plan {
        agent: usize,
        pick: usize,
    },
    Done {
        agent: usize,
        pick: usize,
    },
    Renew {
        agent: usize,
    },
    Release {
        agent: usize,
    },
}

fn agent_op() -> impl Strategy<Value = AgentOp> {
    let agent = 0..AGENTS.len();
    prop_oneof![
        4 => (agent.clone(), 0..2u8, 0..2u8, 0..2u8).prop_map(|(agent, content, account, path)| {
            AgentOp::Claim { agent, content, account, path }
        }),
        2 => agent.clone().prop_map(|agent| AgentOp::Expire { agent }),
        2 => (agent.clone(), any::<usize>()).prop_map(|(agent, pick)| AgentOp::Step { agent, pick }),
        2 => (agent.clone(), any::<usize>()).prop_map(|(agent, pick)| AgentOp::MarkSent { agent, pick }),
        3 => (agent.clone(), any::<usize>()).prop_map(|(agent, pick)| AgentOp::Publish { agent, pick }),
        1 => (agent.clone(), any::<usize>()).prop_map(|(agent, pick)| AgentOp::Fail { agent, pick }),
        2 => (agent.clone(), any::<usize>()).prop_map(|(agent, pick)| AgentOp::Plan { agent, pick }),
        2 => (agent.clone(), any::<usize>()).prop_map(|(agent, pick)| AgentOp::Done { agent, pick }),
        1 => agent.clone().prop_map(|agent| AgentOp::Renew { agent }),
        1 => agent.prop_map(|agent| AgentOp::Release { agent }),
    ]
}

/// What the model says of a write of `job` by agent `who`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Permit {
    /// It holds the job's current fence.
    Mine,
    /// Nobody holds a live lease, and it believes in none: it takes the job.
    Free,
    /// It believes it holds a fence the job no longer has: refused with `LeaseLost`.
    Lost,
    /// Another agent holds a live lease: refused with `LeaseHeld`.
    Held,
}

fn permit(ledger: &Ledger, job: &JobRecord) -> Permit {
    let me = ledger.agent_name();
    if ledger.lost.contains(&job.id) {
        return Permit::Lost;
    }
    match ledger.held.get(&job.id) {
        Some(&fence) if job.lease.fence == fence && job.lease.holder.as_deref() == Some(me) => {
            Permit::Mine
        }
        Some(_) => Permit::Lost,
        None => match job.lease.live_holder(now_ms()) {
            Some(holder) if holder != me => Permit::Held,
            _ => Permit::Free,
        },
    }
}

/// Errors a random sequence may provoke whatever the leases; anything else is a bug.
fn legal(err: &LedgerError) -> bool {
    matches!(
        err,
        LedgerError::Illegal { .. } | LedgerError::LiveJobExists | LedgerError::PostTaken
    )
}

fn fail(e: impl std::fmt::Display) -> TestCaseError {
    TestCaseError::fail(e.to_string())
}

struct World {
    agents: Vec<Ledger>,
    /// The highest fence seen of each job.
    fences: HashMap<JobId, i64>,
    next_post: u32,
}

impl World {
    fn new(backend: &Backend) -> World {
        World {
            agents: AGENTS.iter().map(|n| backend.agent(n, LONG)).collect(),
            fences: HashMap::new(),
            next_post: 0,
        }
    }

    fn jobs(&self) -> Result<Vec<JobRecord>, TestCaseError> {
        self.agents[0].jobs_in(&JobState::ALL).map_err(fail)
    }

    fn job(&self, id: JobId) -> Result<JobRecord, TestCaseError> {
        self.agents[0]
            .job(id)
            .map_err(fail)?
            .ok_or_else(|| fail(format!("job {id} vanished")))
    }

    fn apply(&mut self, op: &AgentOp) -> Result<(), TestCaseError> {
        let ids: Vec<JobId> = self.jobs()?.iter().map(|j| j.id).collect();
        let pick = |p: usize| ids.get(p % ids.len().max(1)).copied();
        match *op {
            AgentOp::Claim {
                agent,
                content,
                account,
                path,
            } => self.claim(agent, content, account, path),
            AgentOp::Expire { agent } => {
                self.agents[0]
                    .raw(
                        "UPDATE jobs SET lease_until = 0 WHERE lease_holder = ?1",
                        p![AGENTS[agent]],
                    )
                    .map_err(fail)?;
                Ok(())
            }
            AgentOp::Renew { agent } => self.renew(agent),
            AgentOp::Release { agent } => self.release(agent),
            AgentOp::Step { agent, pick: p } => match pick(p) {
                Some(id) => self.write(agent, &[id], |l| {
                    l.record_step(id, &st("upload"), &json!({"n": p % 5}), false)
                }),
                None => Ok(()),
            },
            AgentOp::MarkSent { agent, pick: p } => match pick(p) {
                Some(id) => self.write(agent, &[id], |l| l.mark_publish_sent(id)),
                None => Ok(()),
            },
            AgentOp::Publish { agent, pick: p } => match pick(p) {
                Some(id) => self.publish(agent, id),
                None => Ok(()),
            },
            AgentOp::Fail { agent, pick: p } => match pick(p) {
                Some(id) => self.write(agent, &[id], |l| l.mark_failed(id, None, "x", "no")),
                None => Ok(()),
            },
            AgentOp::Plan { agent, pick: p } => match pick(p) {
                Some(id) => self.plan(agent, id),
                None => Ok(()),
            },
            AgentOp::Done { agent, pick: p } => match pick(p) {
                Some(id) => self.write(agent, &[id], |l| {
                    l.mark_archived(id, Path::new("done/x.mp4"))
                }),
                None => Ok(()),
            },
        }
    }

    fn claim(
        &mut self,
        agent: usize,
        content: u8,
        account: u8,
        path: u8,
    ) -> Result<(), TestCaseError> {
        let new = NewJob {
            sha256: hash(content),
            account: format!("acct{account}"),
            platform: Platform::DouyinWeb,
            video: PathBuf::from(format!("v{path}.mp4")),
            caption: None,
            size: 10,
        };
        let before = self.jobs()?;
        let live: Vec<&JobRecord> = before
            .iter()
            .filter(|j| j.state.is_live() && j.sha256 == new.sha256 && j.account == new.account)
            .collect();
        let same = live
            .iter()
            .find(|j| j.state.is_resumable() && j.video == new.video);
        let me = AGENTS[agent];
        let claim = self.agents[agent].claim(&new, false).map_err(fail)?;
        match (&claim, same) {
            (Claim::Held { job, holder }, Some(same)) => {
                prop_assert_eq!(job.id, same.id);
                prop_assert_eq!(same.lease.live_holder(now_ms()), Some(holder.as_str()));
                prop_assert!(holder != me, "held by itself");
                prop_assert_eq!(self.jobs()?, before, "a held claim wrote");
            }
            (Claim::Resume(job), Some(same)) => {
                prop_assert!(
                    same.lease.live_holder(now_ms()).is_none_or(|h| h == me),
                    "took over a live lease of {:?}",
                    same.lease
                );
                prop_assert_eq!(job.id, same.id);
                prop_assert_eq!(job.lease.fence, same.lease.fence + 1);
                prop_assert_eq!(job.lease.holder.as_deref(), Some(me));
            }
            (Claim::Duplicate { earlier, job }, None) => {
                prop_assert!(!live.is_empty() && earlier.state.is_live());
                prop_assert_eq!(job.lease.fence, 1);
            }
            (Claim::New(job), None) => {
                prop_assert!(live.is_empty(), "a second live job: {:?}", live);
                prop_assert_eq!(job.lease.fence, 1);
                prop_assert_eq!(job.lease.holder.as_deref(), Some(me));
            }
            (claim, same) => prop_assert!(false, "{:?} when resumable was {:?}", claim, same),
        }
        Ok(())
    }

    /// Runs `write` as `agent` on jobs `ids`, checked against the model: refused while
    /// another agent holds a job or once the agent lost one, and then nothing changes;
    /// when it succeeds, the agent held (or took) every job's current fence.
    fn write(
        &mut self,
        agent: usize,
        ids: &[JobId],
        write: impl FnOnce(&mut Ledger) -> Result<(), LedgerError>,
    ) -> Result<(), TestCaseError> {
        let before = self.jobs()?;
        let mut permits = Vec::new();
        for &id in ids {
            let job = self.job(id)?;
            permits.push((id, permit(&self.agents[agent], &job), job.lease.fence));
        }
        let result = write(&mut self.agents[agent]);
        let first_refusal = permits
            .iter()
            .find(|(_, p, _)| matches!(p, Permit::Lost | Permit::Held));
        match (&result, first_refusal, ids.len()) {
            (Ok(()), None, _) => {
                for &(id, permit, fence) in &permits {
                    let job = self.job(id)?;
                    let want = if permit == Permit::Mine {
                        fence
                    } else {
                        fence + 1
                    };
                    prop_assert_eq!(job.lease.fence, want, "job {}: {:?}", id, permit);
                }
                return Ok(());
            }
            (Ok(()), Some(refusal), _) => {
                prop_assert!(false, "a write went through: {:?}", refusal)
            }
            (Err(LedgerError::LeaseLost { id, .. }), Some((r, Permit::Lost, _)), 1) => {
                prop_assert_eq!(id, r)
            }
            (Err(LedgerError::LeaseHeld { id, .. }), Some((r, Permit::Held, _)), 1) => {
                prop_assert_eq!(id, r)
            }
            (Err(LedgerError::LeaseLost { .. } | LedgerError::LeaseHeld { .. }), Some(_), _) => {}
            (Err(e), None, _) if legal(e) => {}
            (Err(e), refusal, _) => {
                prop_assert!(false, "{} with permits {:?} ({:?})", e, permits, refusal)
            }
        }
        prop_assert_eq!(self.jobs()?, before, "a refused write changed the ledger");
        Ok(())
    }

    fn publish(&mut self, agent: usize, id: JobId) -> Result<(), TestCaseError> {
        self.write(agent, &[id], |l| l.mark_publish_sent(id))?;
        self.next_post += 1;
        let post = post(&self.next_post.to_string());
        self.write(agent, &[id], |l| l.mark_published(id, &post))
    }

    /// Plans the archive of every target of job `id`'s drop that has ended.
    fn plan(&mut self, agent: usize, id: JobId) -> Result<(), TestCaseError> {
        let video = self.job(id)?.video;
        let targets: Vec<JobId> = self
            .jobs()?
            .iter()
            .filter(|j| j.video == video && j.archived_to.is_none() && !j.state.is_resumable())
            .filter(|j| j.state != JobState::Done)
            .map(|j| j.id)
            .collect();
        if targets.is_empty() {
            return Ok(());
        }
        self.write(agent, &targets, |l| {
            l.set_archive_plan_for(&targets, &json!({"video": "x"}))
        })
    }

    fn renew(&mut self, agent: usize) -> Result<(), TestCaseError> {
        let me = AGENTS[agent];
        let mut stale = Vec::new();
        for (&id, &fence) in &self.agents[agent].held {
            let job = self.job(id)?;
            if job.lease.fence != fence || job.lease.holder.as_deref() != Some(me) {
                stale.push(id);
            }
        }
        stale.sort_unstable();
        let now = now_ms();
        let lost = self.agents[agent].renew_leases().map_err(fail)?;
        prop_assert_eq!(lost, stale);
        for id in self.agents[agent].held_jobs() {
            let until = self.job(id)?.lease.until.unwrap_or(0);
            prop_assert!(until > now, "job {} not renewed", id);
        }
        Ok(())
    }

    fn release(&mut self, agent: usize) -> Result<(), TestCaseError> {
        let before = self.jobs()?;
        self.agents[agent].release_all().map_err(fail)?;
        prop_assert!(self.agents[agent].held_jobs().is_empty());
        for (old, new) in before.iter().zip(self.jobs()?) {
            if old.lease.holder.as_deref() == Some(AGENTS[agent]) {
                prop_assert_eq!(new.lease.holder, None);
            } else {
                prop_assert_eq!(old, &new, "released another agent's lease");
            }
        }
        Ok(())
    }

    /// One post (one live job) per content per account; every lease held by exactly the
    /// agent the row names, under the fence it believes; fences never go down.
    fn check(&mut self) -> Result<(), TestCaseError> {
        let jobs = self.jobs()?;
        let mut live = HashMap::new();
        let mut posts = HashMap::new();
        for job in &jobs {
            let key = (job.sha256.clone(), job.account.clone());
            if job.state.is_live() {
                *live.entry(key.clone()).or_insert(0) += 1;
            }
            if job.post.is_some() {
                *posts.entry(key).or_insert(0) += 1;
            }
            let seen = self.fences.insert(job.id, job.lease.fence).unwrap_or(0);
            prop_assert!(job.lease.fence >= seen, "job {}: fence went down", job.id);
            let believers: Vec<&str> = self
                .agents
                .iter()
                .filter(|l| l.held.get(&job.id) == Some(&job.lease.fence))
                .filter(|l| job.lease.holder.as_deref() == Some(l.agent_name()))
                .map(Ledger::agent_name)
                .collect();
            match job.lease.holder.as_deref() {
                Some(holder) => prop_assert_eq!(
                    believers,
                    vec![holder],
                    "job {} held by {} at fence {}",
                    job.id,
                    holder,
                    job.lease.fence
                ),
                None => prop_assert!(believers.is_empty()),
            }
        }
        prop_assert!(live.values().all(|n| *n <= 1), "two live jobs: {:?}", live);
        prop_assert!(posts.values().all(|n| *n <= 1), "two posts: {:?}", posts);
        Ok(())
    }
}

fn run_agents(backend: &Backend, ops: Vec<AgentOp>) -> Result<(), TestCaseError> {
    let mut world = World::new(backend);
    for op in &ops {
        world.apply(op)?;
        world.check()?;
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]
    #[test]
    fn three_agents_never_post_twice_and_a_lost_lease_writes_nothing_on_sqlite(
        ops in prop::collection::vec(agent_op(), 1..50)
    ) {
        run_agents(&Backend::sqlite(), ops)?;
    }
}

#[test]
fn three_agents_never_post_twice_and_a_lost_lease_writes_nothing_on_postgres() {
    let Some(backend) = Backend::postgres("agents") else {
        return;
    };
    run_cases(16, prop::collection::vec(agent_op(), 1..50), |ops| {
        backend.empty();
        run_agents(&backend, ops)
    });
}
