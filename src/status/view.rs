//! What `/api/jobs` serves and the dashboard shows: the fields of the one read model
//! ([`crate::read_model`]) under the names this API has always used. Built from selected
//! fields only, so no secret can slip in (step results are never served).

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;

use crate::agent_list::{AgentEntry, AgentList};
use crate::domain::{Platform, PostState, StepName};
use crate::ledger::{JobState, LedgerError};
use crate::pipeline::Context;
use crate::pipeline::live::{Counters, Held, PausedAccount, Waiting};
use crate::read_model::{self, FailureClass, LedgerPart, Model, Query, Stage};
use crate::receipt::UtcTime;
use crate::receipt::aweme_id_field;

use super::login_code::{self, LoginCode};

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
    pub in_flight: Vec<InFlightJob>,
    /// Active in the ledger, not being worked on right now (new, requeued, or between tries).
    pub queued: Vec<QueuedJob>,
    pub waiting_for_caption: Vec<Waiting>,
    /// Videos the agent keeps in the inbox, and why.
    pub held_in_inbox: Vec<Held>,
    pub paused_accounts: Vec<PausedAccount>,
    /// `dropcast login` runs waiting for their QR code to be scanned.
    pub login_codes: Vec<LoginCode>,
    /// Failed and abandoned jobs, newest first.
    pub failures: Vec<ProblemJob>,
    /// Step 5 was sent and nobody knows whether the post exists.
    pub unconfirmed: Vec<ProblemJob>,
    /// Published jobs, most recent first.
    pub recent_posts: Vec<PostedJob>,
    /// Every agent that used the ledger, with the jobs each holds (see
    /// [`crate::agent_list`]).
    pub agents: Vec<AgentEntry>,
    /// The ledger is shared (PostgreSQL): the dashboard lists the agents even when one.
    pub ledger_shared: bool,
    /// Each account's posting plan: next free slot, planned videos (docs/posting-plan.md).
    pub plan: Vec<crate::read_model::plan::AccountPlanView>,
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

/// A job being worked on right now.
#[derive(Debug, Clone, Serialize)]
pub struct InFlightJob {
    /// Relative to the inbox.
    pub video: String,
    pub sha256: Option<String>,
    pub account: Option<String>,
    /// `hash`, `ledger`, `credentials`, …, `publish`, `archive`.
    pub step: Stage,
    pub bytes_done: u64,
    pub bytes_total: u64,
    pub started_at: Option<UtcTime>,
    pub percent: Option<u8>,
    pub elapsed_seconds: Option<u64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct QueuedJob {
    pub id: i64,
    pub sha256: String,
    pub video: String,
    pub account: String,
    pub attempts: u32,
    pub since: UtcTime,
    /// What happens to it next, in words.
    pub next: String,
}

/// A job that needs the user: failed, abandoned or unconfirmed. All can be retried.
#[derive(Debug, Clone, Serialize)]
pub struct ProblemJob {
    pub id: i64,
    pub sha256: String,
    pub video: String,
    pub account: String,
    pub state: JobState,
    pub step: Option<StepName>,
    pub class: Option<FailureClass>,
    pub reason: Option<String>,
    /// What the user can do about it (from the error receipt when there is one).
    pub hint: Option<String>,
    pub at: UtcTime,
    /// The command that puts it back in the queue.
    pub retry: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct PostedJob {
    pub id: i64,
    pub sha256: String,
    pub video: String,
    pub account: String,
    pub platform: Platform,
    pub post_id: Option<String>,
    /// Douyin's platforms only: the post id under its old name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aweme_id: Option<Option<String>>,
    pub url: Option<String>,
    /// Absent when the post is live; `awaiting_moderation` or `in_creator_inbox`.
    #[serde(skip_serializing_if = "PostState::is_live")]
    pub post_state: PostState,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    pub published_at: UtcTime,
    /// `done`, or `published` while its files are being archived.
    pub state: JobState,
    /// When the post goes public, if it is scheduled for later.
    pub publish_at: Option<UtcTime>,
}

#[derive(Debug, thiserror::Error)]
pub enum ViewError {
    #[error(transparent)]
    Ledger(#[from] LedgerError),
}

/// Reads the ledger and the live state into one view.
pub async fn collect(ctx: &Arc<Context>) -> Result<(JobsView, Counters), ViewError> {
    let query = Query {
        recent_posts: RECENT_POSTS,
        max_problems: MAX_FAILURES,
        scheduled: false,
    };
    let cx = Arc::clone(ctx);
    let (part, agents, plan) = ctx
        .ledger(move |l| {
            let now = std::time::SystemTime::now();
            let agents = AgentList::read(l, now)?;
            let plan = crate::read_model::plan::read(l, &cx.config, now)?;
            Ok((LedgerPart::read(l, &query)?, agents, plan))
        })
        .await?;
    let snapshot = ctx.live.snapshot();
    let agent = AgentView {
        pid: snapshot.pid,
        started_at: snapshot.started_at,
        updated_at: snapshot.updated_at,
        watching: snapshot.watching.clone(),
        sandbox: ctx.config.platform.sandbox,
    };
    // Receipts are files: read them off the async threads.
    let (model, snapshot) = tokio::task::spawn_blocking(move || {
        let model = Model::assemble(part, Some(&snapshot), UtcTime::now());
        (model, snapshot)
    })
    .await
    .unwrap_or_else(|join| std::panic::resume_unwind(join.into_panic()));
    let mut view = JobsView::from_model(model, agent);
    view.agents = agents.agents;
    view.ledger_shared = agents.shared;
    view.plan = plan;
    let ctx = Arc::clone(ctx);
    view.login_codes = tokio::task::spawn_blocking(move || login_code::waiting(&ctx.config))
        .await
        .unwrap_or_default();
    Ok((view, snapshot.counters))
}

impl JobsView {
    /// Chooses and names the model's fields for `/api/jobs`.
    pub(crate) fn from_model(m: Model, agent: AgentView) -> JobsView {
        let problem = |p: &read_model::ProblemJob| ProblemJob {
            id: p.id,
            sha256: p.sha256.clone(),
            video: p.video.clone(),
            account: p.account.clone(),
            state: p.state,
            step: p.step.clone(),
            class: p.class.clone(),
            reason: p.reason.clone(),
            hint: Some(p.hint.clone()),
            at: p.at,
            retry: p.retry.clone(),
        };
        JobsView {
            agent,
            counts: m.counts.iter().map(|(s, n)| (s.as_str(), *n)).collect(),
            in_flight: m
                .in_flight
                .iter()
                .map(|j| InFlightJob {
                    video: j.video.clone(),
                    sha256: j.sha256.clone(),
                    account: j.account.clone(),
                    step: j.stage.clone(),
                    bytes_done: j.bytes_done,
                    bytes_total: j.bytes_total,
                    started_at: j.started_at,
                    percent: j.percent,
                    elapsed_seconds: j.elapsed_seconds,
                })
                .collect(),
            queued: m
                .queued
                .iter()
                .filter(|j| j.state == JobState::Active)
                .map(|j| QueuedJob {
                    id: j.id,
                    sha256: j.sha256.clone(),
                    video: j.video.clone(),
                    account: j.account.clone(),
                    attempts: j.attempts,
                    since: j.updated_at,
                    next: j.next.clone(),
                })
                .collect(),
            waiting_for_caption: m.waiting_for_caption,
            held_in_inbox: m.held_in_inbox,
            paused_accounts: m.paused_accounts,
            login_codes: Vec::new(),
            plan: Vec::new(),
            failures: m
                .problems
                .iter()
                .filter(|p| matches!(p.state, JobState::Failed | JobState::Abandoned))
                .map(problem)
                .collect(),
            unconfirmed: m
                .problems
                .iter()
                .filter(|p| p.state == JobState::Unconfirmed)
                .map(problem)
                .collect(),
            recent_posts: m
                .recent_posts
                .iter()
                .map(|p| PostedJob {
                    id: p.id,
                    sha256: p.sha256.clone(),
                    video: p.video.clone(),
                    account: p.account.clone(),
                    platform: p.platform,
                    post_id: p.post_id.clone(),
                    aweme_id: aweme_id_field(p.platform, p.post_id.as_ref()),
                    url: p.url.clone(),
                    post_state: p.post_state,
                    note: p.note.clone(),
                    published_at: p.published_at,
                    state: p.state,
                    publish_at: p.publish_at,
                })
                .collect(),
            agents: Vec::new(),
            ledger_shared: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ContentHash;
    use crate::ledger::{Claim, JobRecord, Ledger, NewJob};
    use crate::pipeline::live::{InFlight, Snapshot};

    fn hash(n: u8) -> ContentHash {
        ContentHash::from_digest(&[n; 32])
    }

    fn claim(l: &mut Ledger, n: u8, video: &str) -> JobRecord {
        let job = NewJob {
            sha256: hash(n),
            account: "main".into(),
            platform: Platform::DouyinWeb,
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
        l.mark_failed(c.id, Some(&StepName::of("upload")), "rejected", "too short")
            .unwrap();
        let d = claim(&mut l, 4, "d.mp4");
        l.mark_publish_sent(d.id).unwrap();
        l.mark_published(d.id, &crate::platform::douyin_post("7001"))
            .unwrap();

        let query = Query {
            recent_posts: RECENT_POSTS,
            max_problems: MAX_FAILURES,
            scheduled: false,
        };
        let part = LedgerPart::read(&l, &query).unwrap();
        let snapshot = Snapshot {
            in_flight: vec![InFlight {
                video: "a.mp4".into(),
                sha256: Some(a.sha256.as_str().into()),
                step: Stage::parse("upload"),
                ..InFlight::default()
            }],
            ..Snapshot::default()
        };
        let agent = AgentView {
            pid: 1,
            started_at: None,
            updated_at: None,
            watching: "native".into(),
            sandbox: true,
        };
        let model = Model::assemble(part, Some(&snapshot), UtcTime::now());
        let view = JobsView::from_model(model, agent);
        assert_eq!(view.counts.len(), JobState::ALL.len());
        assert_eq!(view.counts["active"], 2);
        assert_eq!(view.counts["failed"], 1);
        assert_eq!(view.counts["published"], 1);
        assert_eq!(view.counts["done"], 0);
        let queued: Vec<&str> = view.queued.iter().map(|j| j.video.as_str()).collect();
        assert_eq!(
            queued,
            ["b.mp4"],
            "a published job is archived, not queued here"
        );
        assert_eq!(view.failures.len(), 1);
        assert_eq!(view.failures[0].step, Some(StepName::of("upload")));
        assert_eq!(
            view.failures[0].hint.as_deref(),
            Some(FailureClass::Rejected.hint())
        );
        assert_eq!(view.recent_posts[0].post_id.as_deref(), Some("7001"));
        assert_eq!(
            view.recent_posts[0].aweme_id,
            Some(Some("7001".into())),
            "Douyin posts keep their aweme_id"
        );
        assert_eq!(
            view.recent_posts[0].url.as_deref(),
            Some("https://www.douyin.com/video/7001")
        );
        let json = serde_json::to_value(&view).unwrap();
        assert_eq!(json["in_flight"][0]["step"], "upload");
        assert_eq!(json["failures"][0]["class"], "rejected");
        assert_eq!(json["failures"][0]["state"], "failed");
        assert_eq!(json["recent_posts"][0]["state"], "published");
    }
}
