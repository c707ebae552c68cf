//! What `/api/jobs` serves and the dashboard shows: the ledger's jobs by state (counts,
//! the queue, recent posts, failures) joined with the agent's live state (jobs in
//! flight, videos waiting for a caption, paused accounts). Built from selected fields
//! only, so no secret can slip in (step results are never served).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;

use crate::archive::ArchivePlan;
use crate::domain::Step;
use crate::ledger::{JobRecord, JobState, LedgerError};
use crate::pipeline::Context;
use crate::pipeline::live::{Counters, InFlight, PausedAccount, Waiting};
use crate::receipt::{FailureReceipt, UtcTime, file_label, post_url};

/// How many recent posts are listed.
pub const RECENT_POSTS: usize = 50;
/// How many failures (newest first) are listed; `counts` has the total.
pub const MAX_FAILURES: usize = 100;

/// Everything the dashboard shows.
#[derive(Debug, Clone, Serialize)]
pub struct JobsView {
    pub agent: AgentView,
    /// Jobs in the ledger by state; every state is present.
    pub counts: BTreeMap<&'static str, u64>,
    pub in_flight: Vec<InFlight>,
    /// Active in the ledger, not being worked on right now (new, requeued, or between tries).
    pub queued: Vec<QueuedJob>,
    pub waiting_for_caption: Vec<Waiting>,
    pub paused_accounts: Vec<PausedAccount>,
    /// Failed and abandoned jobs, newest first.
    pub failures: Vec<ProblemJob>,
    /// Step 5 was sent and nobody knows whether the post exists.
    pub unconfirmed: Vec<ProblemJob>,
    /// Published jobs, most recent first.
    pub recent_posts: Vec<PostedJob>,
}

#[derive(Debug, Clone, Serialize)]
pub struct AgentView {
    pub pid: u32,
    pub started_at: Option<UtcTime>,
    pub updated_at: Option<UtcTime>,
    /// `native`, `poll`, `once`, or empty before the agent has started watching.
    pub watching: String,
    /// Publishing to the built-in simulator, not to Douyin.
    pub sandbox: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct QueuedJob {
    pub id: i64,
    pub sha256: String,
    pub video: String,
    pub account: String,
    pub attempts: u32,
    pub since: UtcTime,
}

/// A job that needs the user: failed, abandoned or unconfirmed. All can be retried.
#[derive(Debug, Clone, Serialize)]
pub struct ProblemJob {
    pub id: i64,
    pub sha256: String,
    pub video: String,
    pub account: String,
    pub state: &'static str,
    pub step: Option<Step>,
    pub class: Option<String>,
    pub reason: Option<String>,
    /// What the user can do about it (from the error receipt when there is one).
    pub hint: Option<String>,
    pub at: UtcTime,
}

#[derive(Debug, Clone, Serialize)]
pub struct PostedJob {
    pub id: i64,
    pub sha256: String,
    pub video: String,
    pub account: String,
    pub aweme_id: Option<String>,
    pub url: Option<String>,
    pub published_at: UtcTime,
    /// `done`, or `published` while its files are being archived.
    pub state: &'static str,
}

#[derive(Debug, thiserror::Error)]
pub enum ViewError {
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error("cannot count the ledger's jobs: {0}")]
    Count(#[from] rusqlite::Error),
}

/// The ledger's side of the view, read in one go.
struct FromLedger {
    counts: BTreeMap<&'static str, u64>,
    open: Vec<JobRecord>,
    posts: Vec<JobRecord>,
    /// Where each listed failed job's error receipt is.
    receipts: BTreeMap<i64, PathBuf>,
}

/// Reads the ledger and the live state into one view.
pub async fn collect(ctx: &Arc<Context>) -> Result<(JobsView, Counters), ViewError> {
    let from_ledger = ctx
        .ledger(|l| {
            let counts = count_states(l.path());
            let open = l.jobs_in(&[
                JobState::Active,
                JobState::Failed,
                JobState::Abandoned,
                JobState::Unconfirmed,
            ])?;
            let posts = l.history(RECENT_POSTS)?;
            let mut receipts = BTreeMap::new();
            for job in open
                .iter()
                .rev()
                .filter(|j| j.state == JobState::Failed)
                .take(MAX_FAILURES)
            {
                if let Some(value) = l.archive_plan(job.id)?
                    && let Ok(plan) = serde_json::from_value::<ArchivePlan>(value)
                {
                    receipts.insert(job.id, plan.receipt);
                }
            }
            Ok(counts.map(|counts| FromLedger {
                counts,
                open,
                posts,
                receipts,
            }))
        })
        .await??;
    let hints = read_hints(from_ledger.receipts.clone()).await;
    let snapshot = ctx.live.snapshot();
    let view = assemble(
        from_ledger,
        &hints,
        AgentView {
            pid: snapshot.pid,
            started_at: snapshot.started_at,
            updated_at: snapshot.updated_at,
            watching: snapshot.watching.clone(),
            sandbox: ctx.config.platform.sandbox,
        },
        snapshot.in_flight,
        snapshot.waiting_for_caption,
        snapshot.paused_accounts,
    );
    Ok((view, snapshot.counters))
}

fn assemble(
    l: FromLedger,
    hints: &BTreeMap<i64, String>,
    agent: AgentView,
    in_flight: Vec<InFlight>,
    waiting_for_caption: Vec<Waiting>,
    paused_accounts: Vec<PausedAccount>,
) -> JobsView {
    let busy: BTreeSet<&str> = in_flight.iter().map(|j| j.video.as_str()).collect();
    let mut queued = Vec::new();
    let mut failures = Vec::new();
    let mut unconfirmed = Vec::new();
    for job in l.open.iter().rev() {
        let video = file_label(&job.video);
        match job.state {
            JobState::Active if !busy.contains(video.as_str()) => queued.push(QueuedJob {
                id: job.id,
                sha256: job.sha256.as_str().to_string(),
                video,
                account: job.account.clone(),
                attempts: job.attempts,
                since: job.updated_at.into(),
            }),
            JobState::Failed | JobState::Abandoned if failures.len() < MAX_FAILURES => {
                failures.push(problem(job, video, hints.get(&job.id).cloned()));
            }
            JobState::Unconfirmed if unconfirmed.len() < MAX_FAILURES => {
                unconfirmed.push(problem(job, video, None));
            }
            _ => {}
        }
    }
    // Oldest first: the order they will be picked up in.
    queued.reverse();
    let recent_posts = l
        .posts
        .iter()
        .map(|job| PostedJob {
            id: job.id,
            sha256: job.sha256.as_str().to_string(),
            video: file_label(&job.video),
            account: job.account.clone(),
            aweme_id: job.aweme_id.clone(),
            url: job.aweme_id.as_deref().map(post_url),
            published_at: job
                .steps
                .get(&Step::Publish)
                .map_or(job.updated_at, |s| s.at)
                .into(),
            state: job.state.as_str(),
        })
        .collect();
    JobsView {
        agent,
        counts: l.counts,
        in_flight,
        queued,
        waiting_for_caption,
        paused_accounts,
        failures,
        unconfirmed,
        recent_posts,
    }
}

fn problem(job: &JobRecord, video: String, hint: Option<String>) -> ProblemJob {
    let hint = hint.or_else(|| match job.state {
        JobState::Unconfirmed => Some(
            "Step 5 was sent but its answer was lost. Check the account's posts on Douyin; \
             retry only if the video is not there."
                .to_string(),
        ),
        JobState::Abandoned => Some(
            "The video changed while it was being published; the new version is a new job."
                .to_string(),
        ),
        _ => None,
    });
    ProblemJob {
        id: job.id,
        sha256: job.sha256.as_str().to_string(),
        video,
        account: job.account.clone(),
        state: job.state.as_str(),
        step: job.error.as_ref().and_then(|e| e.step),
        class: job.error.as_ref().map(|e| e.class.clone()),
        reason: job.error.as_ref().map(|e| e.reason.clone()),
        hint,
        at: job.updated_at.into(),
    }
}

/// The hints of failed jobs, from their `*.error.json` receipts (missing ones are skipped).
async fn read_hints(receipts: BTreeMap<i64, PathBuf>) -> BTreeMap<i64, String> {
    let mut hints = BTreeMap::new();
    for (id, path) in receipts {
        if let Ok(bytes) = tokio::fs::read(&path).await
            && let Ok(receipt) = serde_json::from_slice::<FailureReceipt>(&bytes)
        {
            hints.insert(id, receipt.hint);
        }
    }
    hints
}

/// Jobs per state, every state present, with one `COUNT` on a read-only connection (the
/// `Ledger` API would load every job to count them).
fn count_states(ledger_file: &Path) -> Result<BTreeMap<&'static str, u64>, rusqlite::Error> {
    use rusqlite::OpenFlags;
    let conn = rusqlite::Connection::open_with_flags(
        ledger_file,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    let mut counts: BTreeMap<&'static str, u64> =
        JobState::ALL.iter().map(|s| (s.as_str(), 0)).collect();
    let mut stmt = conn.prepare("SELECT state, COUNT(*) FROM jobs GROUP BY state")?;
    let rows = stmt.query_map([], |row| {
        Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?))
    })?;
    for row in rows {
        let (state, n) = row?;
        if let Some(state) = JobState::parse(&state) {
            counts.insert(state.as_str(), u64::try_from(n).unwrap_or(0));
        }
    }
    Ok(counts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ContentHash;
    use crate::ledger::{Claim, Ledger, NewJob};

    fn hash(n: u8) -> ContentHash {
        ContentHash::from_digest(&[n; 32])
    }

    fn claim(l: &mut Ledger, n: u8, video: &str) -> JobRecord {
        let job = NewJob {
            sha256: hash(n),
            account: "main".into(),
            video: video.into(),
            caption: None,
            size: 10,
        };
        match l.claim(&job, false).unwrap() {
            Claim::New(j) => j,
            other => panic!("expected a new job, got {other:?}"),
        }
    }

    #[test]
    fn counts_every_state_and_splits_queue_from_in_flight() {
        let dir = tempfile::tempdir().unwrap();
        let mut l = Ledger::open(dir.path()).unwrap();
        let a = claim(&mut l, 1, "a.mp4");
        let _b = claim(&mut l, 2, "b.mp4");
        let c = claim(&mut l, 3, "c.mp4");
        l.mark_failed(c.id, Some(Step::Upload), "rejected", "too short")
            .unwrap();
        let d = claim(&mut l, 4, "d.mp4");
        l.mark_publish_sent(d.id).unwrap();
        l.mark_published(d.id, "7001").unwrap();

        let counts = count_states(l.path()).unwrap();
        assert_eq!(counts.len(), JobState::ALL.len());
        assert_eq!(counts["active"], 2);
        assert_eq!(counts["failed"], 1);
        assert_eq!(counts["published"], 1);
        assert_eq!(counts["done"], 0);

        let from_ledger = FromLedger {
            counts,
            open: l
                .jobs_in(&[JobState::Active, JobState::Failed, JobState::Unconfirmed])
                .unwrap(),
            posts: l.history(RECENT_POSTS).unwrap(),
            receipts: BTreeMap::new(),
        };
        let live = InFlight {
            video: "a.mp4".into(),
            sha256: Some(a.sha256.as_str().into()),
            step: "upload".into(),
            ..InFlight::default()
        };
        let agent = AgentView {
            pid: 1,
            started_at: None,
            updated_at: None,
            watching: "native".into(),
            sandbox: true,
        };
        let hints = BTreeMap::from([(c.id, "shoot a longer one".to_string())]);
        let view = assemble(from_ledger, &hints, agent, vec![live], vec![], vec![]);
        let queued: Vec<&str> = view.queued.iter().map(|j| j.video.as_str()).collect();
        assert_eq!(queued, ["b.mp4"]);
        assert_eq!(view.failures.len(), 1);
        assert_eq!(view.failures[0].step, Some(Step::Upload));
        assert_eq!(view.failures[0].hint.as_deref(), Some("shoot a longer one"));
        assert_eq!(view.recent_posts[0].aweme_id.as_deref(), Some("7001"));
        assert_eq!(
            view.recent_posts[0].url.as_deref(),
            Some("https://www.douyin.com/video/7001")
        );
    }
}
