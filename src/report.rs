//! `dropcast status` and `dropcast history`: what the ledger, the running agent's live
//! snapshot (`state_dir/live.json`) and the agent lock say, gathered into reports that
//! serialize as the stable `--json` output and render as plain aligned tables for people.
//! The jobs come from the one read model ([`crate::read_model`]), which `/api/jobs` uses
//! too; this module judges the lock and `live.json`, names the model's fields and renders.
//!
//! Reading never changes anything: no folder or lock file is created, the ledger is only
//! opened when it exists. Nothing here can hold a secret: the reports are built from the
//! ledger, the live snapshot and receipts, none of which has one.
//!
//! # The `--json` of `status` ([`StatusReport`])
//! Times are RFC 3339 UTC strings, durations whole seconds, hashes 64 hex digits.
//! - `generated_at`; `agent`: `running`, `pid`, `host`, `since`, `holder` (the lock
//!   file's text), `watching`, and `live`: `state` (`fresh` | `stale` | `missing` |
//!   `unreadable`), `updated_at`, `age_seconds`, `pid`, `problem`.
//! - `counts`: jobs in the ledger by state (`active`, `published`, `done`, `failed`,
//!   `duplicate`, `abandoned`, `unconfirmed`) and `total`.
//! - `in_flight[]`: `file`, `sha256`, `account`, `step`, `bytes_done`, `bytes_total`,
//!   `percent`, `started_at`, `elapsed_seconds` (from the live snapshot).
//! - `queued[]`: ledger jobs not in flight: `file`, `sha256`, `account`, `state`
//!   (`active` | `published`), `last_step`, `next`, `publish_sent`, `attempts`, `since`.
//! - `waiting_for_caption[]`: `file`, `since`, `waiting_seconds`.
//! - `held_in_inbox[]`: videos the agent keeps in the inbox for a reason: `file`,
//!   `reason` (`archiving: …` for an archive it keeps trying, `cannot read this video: …`, or a
//!   caption shared by two videos), `since`.
//! - `scheduled[]`: posts that go public later: `file`, `sha256`, `account`,
//!   `publish_at`, `platform`, `post_id`, `url`, and `aweme_id` (the post id) for Douyin.
//! - `paused_accounts[]`: `account`, `reason`, `since`.
//! - `agents[]`: every agent that used the ledger: `name`, `host`, `pid`, `version`,
//!   `started_at`, `heartbeat_at`, `heartbeat_age_seconds`, `stopped`, `alive` (no
//!   goodbye and a heartbeat within two leases), `jobs[]` (`id`, `file`: the jobs whose
//!   lease it holds); `ledger_shared`: the ledger is on PostgreSQL. The text output lists
//!   the agents only when there are several or the ledger is shared.
//! - `failed[]` (newest first; failures whose video was published since are left out)
//!   and `unconfirmed[]`: `file`, `sha256`, `account`, `step`, `class`, `reason`,
//!   `hint`, `retry` (the command that puts the job back), `at`.
//!
//! A live snapshot that is `stale` (no agent holds the lock and it is older than
//! [`STALE_AFTER`], or it was written by another agent than the one running) is not
//! used: `in_flight`, `waiting_for_caption`, `held_in_inbox` and `paused_accounts` are
//! then empty.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, SystemTime};

use serde::Serialize;

use crate::agent_list::{AgentEntry, AgentList};
use crate::config::Config;
use crate::domain::{Platform, PostState, StepName};
use crate::ledger::{JobState, Ledger, LedgerError};
use crate::lock::{Holder, LockError, StateLock};
use crate::pipeline::live::{self, Snapshot};
use crate::read_model::{FailureClass, LedgerPart, Model, Query, Stage, age, unix};
use crate::receipt::UtcTime;
use crate::receipt::aweme_id_field;

/// A live snapshot older than this, with no agent holding the lock, is stale.
pub const STALE_AFTER: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("cannot read the ledger: {0}")]
    Ledger(#[from] LedgerError),
    #[error(transparent)]
    Lock(#[from] LockError),
}

/// Everything `dropcast status` shows (see the module docs for the JSON fields).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct StatusReport {
    pub generated_at: UtcTime,
    pub agent: AgentStatus,
    pub counts: Counts,
    pub in_flight: Vec<InFlightJob>,
    pub queued: Vec<QueuedJob>,
    pub waiting_for_caption: Vec<WaitingVideo>,
    pub held_in_inbox: Vec<HeldVideo>,
    pub scheduled: Vec<ScheduledPost>,
    pub paused_accounts: Vec<PausedAccount>,
    pub failed: Vec<ProblemJob>,
    pub unconfirmed: Vec<ProblemJob>,
    /// Posts awaiting moderation, and inbox drafts of the last week, newest first.
    pub not_public: Vec<NotPublicPost>,
    /// Every agent that used the ledger (see [`crate::agent_list`]).
    pub agents: Vec<AgentEntry>,
    /// The ledger is shared (PostgreSQL).
    pub ledger_shared: bool,
    /// Each account's posting plan: next free slot, planned videos (docs/posting-plan.md).
    pub plan: Vec<crate::read_model::plan::AccountPlanView>,
}

/// A post that exists but is not public (yet): its public id comes after moderation, or
/// the creator finishes it in the app.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct NotPublicPost {
    pub file: String,
    pub sha256: String,
    pub account: String,
    pub platform: Platform,
    /// `awaiting_moderation` or `in_creator_inbox`.
    pub post_state: PostState,
    pub note: Option<String>,
    pub published_at: UtcTime,
}

/// Whether an agent runs on this state folder, and how fresh its live snapshot is.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct AgentStatus {
    pub running: bool,
    pub pid: Option<u32>,
    pub host: Option<String>,
    pub since: Option<UtcTime>,
    /// The lock file's text, as the agent wrote it.
    pub holder: Option<String>,
    /// `native`, `poll` or `once`, from the live snapshot.
    pub watching: Option<String>,
    pub live: LiveStatus,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct LiveStatus {
    pub state: LiveState,
    pub updated_at: Option<UtcTime>,
    pub age_seconds: Option<u64>,
    /// The process that wrote the snapshot.
    pub pid: Option<u32>,
    /// Why an unreadable snapshot could not be read.
    pub problem: Option<String>,
}

#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum LiveState {
    /// Written by the running agent, or recently enough: used.
    Fresh,
    /// Left behind by an agent that is gone: not used.
    Stale,
    Missing,
    Unreadable,
}

/// Jobs in the ledger, by state.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Counts {
    pub active: u64,
    pub published: u64,
    pub done: u64,
    pub failed: u64,
    pub duplicate: u64,
    pub abandoned: u64,
    pub unconfirmed: u64,
    pub total: u64,
}

impl Counts {
    fn from_model(counts: &BTreeMap<JobState, u64>) -> Counts {
        let n = |state| counts.get(&state).copied().unwrap_or(0);
        Counts {
            active: n(JobState::Active),
            published: n(JobState::Published),
            done: n(JobState::Done),
            failed: n(JobState::Failed),
            duplicate: n(JobState::Duplicate),
            abandoned: n(JobState::Abandoned),
            unconfirmed: n(JobState::Unconfirmed),
            total: counts.values().sum(),
        }
    }

    /// `(state, count)` in ledger order.
    fn by_state(&self) -> [(JobState, u64); 7] {
        [
            (JobState::Active, self.active),
            (JobState::Published, self.published),
            (JobState::Done, self.done),
            (JobState::Failed, self.failed),
            (JobState::Duplicate, self.duplicate),
            (JobState::Abandoned, self.abandoned),
            (JobState::Unconfirmed, self.unconfirmed),
        ]
    }
}

/// A job the agent is working on right now.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct InFlightJob {
    pub file: String,
    pub sha256: Option<String>,
    pub account: Option<String>,
    /// `hash`, `ledger`, `credentials`, `upload_params`, `upload`, `commit`, `publish`,
    /// `archive`.
    pub step: Stage,
    pub bytes_done: u64,
    pub bytes_total: u64,
    /// Of the upload; `None` before its size is known.
    pub percent: Option<u8>,
    pub started_at: Option<UtcTime>,
    pub elapsed_seconds: Option<u64>,
}

/// A job the ledger holds open that no agent is working on at the moment.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct QueuedJob {
    pub file: String,
    pub sha256: String,
    pub account: String,
    /// `active` (being published) or `published` (files not archived yet).
    pub state: JobState,
    /// The last protocol step with a recorded result.
    pub last_step: Option<StepName>,
    /// What happens to it next, in words.
    pub next: String,
    /// Step 5 was sent without a recorded result: the next run asks the platform first.
    pub publish_sent: bool,
    pub attempts: u32,
    pub since: UtcTime,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct WaitingVideo {
    pub file: String,
    pub since: Option<UtcTime>,
    pub waiting_seconds: Option<u64>,
}

/// A video the agent keeps in the inbox, and why.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct HeldVideo {
    pub file: String,
    pub reason: String,
    pub since: Option<UtcTime>,
}

/// A published post that goes public at a later time.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ScheduledPost {
    pub file: String,
    pub sha256: String,
    pub account: String,
    pub publish_at: UtcTime,
    pub platform: Platform,
    pub post_id: Option<String>,
    /// Douyin's platforms only: the post id under its old name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aweme_id: Option<Option<String>>,
    pub url: Option<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PausedAccount {
    pub account: String,
    pub reason: String,
    pub since: Option<UtcTime>,
}

/// A failed or unconfirmed job: what went wrong and how to fix it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ProblemJob {
    pub file: String,
    pub sha256: String,
    pub account: String,
    pub step: Option<StepName>,
    pub class: FailureClass,
    pub reason: String,
    /// What the user can do (from the error receipt when there is one).
    pub hint: String,
    /// The command that puts the job back in the queue once fixed.
    pub retry: String,
    /// When it failed (or became unconfirmed).
    pub at: UtcTime,
}

/// One published post, for `dropcast history`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct HistoryRow {
    /// When it was published.
    pub time: UtcTime,
    pub file: String,
    pub sha256: String,
    pub account: String,
    pub platform: Platform,
    pub post_id: Option<String>,
    /// Douyin's platforms only: the post id under its old name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aweme_id: Option<Option<String>>,
    pub url: Option<String>,
    /// When the post goes public, if it was scheduled.
    pub scheduled_for: Option<UtcTime>,
    /// Absent when the post is live; `awaiting_moderation` (`post_id` and `url` come
    /// later) or `in_creator_inbox`.
    #[serde(skip_serializing_if = "PostState::is_live")]
    pub post_state: PostState,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// The status now.
pub fn status(config: &Config) -> Result<StatusReport, ReportError> {
    status_at(config, SystemTime::now())
}

/// The status as of `now` (tests move the clock; ages and staleness count from it).
pub fn status_at(config: &Config, now: SystemTime) -> Result<StatusReport, ReportError> {
    let now = UtcTime::from(now);
    let now_s = unix(now);
    let state_dir = &config.state_dir;

    let holder_text = StateLock::is_held(state_dir)?;
    let holder = holder_text.as_deref().and_then(Holder::parse);
    let (snapshot, live) = read_live(state_dir, holder_text.is_some(), holder.as_ref(), now_s);
    let agent = AgentStatus {
        running: holder_text.is_some(),
        pid: holder.as_ref().map(|h| h.pid),
        host: holder.as_ref().map(|h| h.host.clone()),
        since: holder.as_ref().and_then(|h| h.since),
        holder: holder_text,
        watching: snapshot
            .as_ref()
            .map(|s| s.watching.clone())
            .filter(|w| !w.is_empty()),
        live,
    };

    let ledger = open_ledger(config)?;
    let query = Query {
        recent_posts: 0,
        max_problems: usize::MAX,
        scheduled: true,
    };
    let part = match &ledger {
        Some(l) => LedgerPart::read(l, &query)?,
        None => LedgerPart::default(),
    };
    let model = Model::assemble(part, snapshot.as_ref(), now);
    let mut report = StatusReport::from_model(model, agent);
    if let Some(l) = &ledger {
        let list = AgentList::read(l, SystemTime::from(now.offset_date_time()))?;
        report.agents = list.agents;
        report.ledger_shared = list.shared;
        report.plan =
            crate::read_model::plan::read(l, config, SystemTime::from(now.offset_date_time()))?;
    }
    Ok(report)
}

impl StatusReport {
    /// Chooses and names the model's fields for `status` (see the module docs).
    pub(crate) fn from_model(m: Model, agent: AgentStatus) -> StatusReport {
        // A failure is settled once the same video was published for the account since.
        let problems = |state: JobState| {
            m.problems
                .iter()
                .filter(move |p| p.state == state && !(state == JobState::Failed && p.settled))
                .map(|p| ProblemJob {
                    file: p.video.clone(),
                    sha256: p.sha256.clone(),
                    account: p.account.clone(),
                    step: p.step.clone(),
                    class: p
                        .class
                        .clone()
                        .unwrap_or(FailureClass::Other(String::new())),
                    reason: p.reason.clone().unwrap_or_default(),
                    hint: p.hint.clone(),
                    retry: p.retry.clone(),
                    at: p.at,
                })
        };
        let failed = problems(JobState::Failed).collect();
        let unconfirmed = problems(JobState::Unconfirmed).collect();
        StatusReport {
            generated_at: m.now,
            agent,
            counts: Counts::from_model(&m.counts),
            in_flight: m
                .in_flight
                .iter()
                .map(|j| InFlightJob {
                    file: j.video.clone(),
                    sha256: j.sha256.clone(),
                    account: j.account.clone(),
                    step: j.stage.clone(),
                    bytes_done: j.bytes_done,
                    bytes_total: j.bytes_total,
                    percent: j.percent,
                    started_at: j.started_at,
                    elapsed_seconds: j.elapsed_seconds,
                })
                .collect(),
            queued: m
                .queued
                .iter()
                .map(|j| QueuedJob {
                    file: j.video.clone(),
                    sha256: j.sha256.clone(),
                    account: j.account.clone(),
                    state: j.state,
                    last_step: j.last_step.clone(),
                    next: j.next.clone(),
                    publish_sent: j.publish_sent,
                    attempts: j.attempts,
                    since: j.created_at,
                })
                .collect(),
            waiting_for_caption: m
                .waiting_for_caption
                .iter()
                .map(|w| WaitingVideo {
                    file: w.video.clone(),
                    since: w.since,
                    waiting_seconds: w.since.map(|t| age(unix(m.now), t)),
                })
                .collect(),
            held_in_inbox: m
                .held_in_inbox
                .iter()
                .map(|h| HeldVideo {
                    file: h.video.clone(),
                    reason: h.reason.clone(),
                    since: h.since,
                })
                .collect(),
            scheduled: m
                .scheduled
                .iter()
                .filter_map(|s| {
                    Some(ScheduledPost {
                        file: s.video.clone(),
                        sha256: s.sha256.clone(),
                        account: s.account.clone(),
                        publish_at: s.publish_at?,
                        platform: s.platform,
                        post_id: s.post_id.clone(),
                        aweme_id: aweme_id_field(s.platform, s.post_id.as_ref()),
                        url: s.url.clone(),
                    })
                })
                .collect(),
            paused_accounts: m
                .paused_accounts
                .iter()
                .map(|p| PausedAccount {
                    account: p.account.clone(),
                    reason: p.reason.clone(),
                    since: p.since,
                })
                .collect(),
            failed,
            unconfirmed,
            not_public: m
                .not_public
                .iter()
                .map(|p| NotPublicPost {
                    file: p.video.clone(),
                    sha256: p.sha256.clone(),
                    account: p.account.clone(),
                    platform: p.platform,
                    post_state: p.post_state,
                    note: p.note.clone(),
                    published_at: p.published_at,
                })
                .collect(),
            agents: Vec::new(),
            plan: Vec::new(),
            ledger_shared: false,
        }
    }
}

/// The `n` most recent posts, newest first.
pub fn history(config: &Config, n: usize) -> Result<Vec<HistoryRow>, ReportError> {
    let Some(ledger) = open_ledger(config)? else {
        return Ok(Vec::new());
    };
    if n == 0 {
        return Ok(Vec::new());
    }
    let query = Query {
        recent_posts: n,
        max_problems: 0,
        scheduled: false,
    };
    let model = Model::assemble(LedgerPart::read(&ledger, &query)?, None, UtcTime::now());
    let mut rows: Vec<HistoryRow> = model
        .recent_posts
        .into_iter()
        .map(|p| HistoryRow {
            time: p.published_at,
            file: p.video,
            sha256: p.sha256,
            account: p.account,
            platform: p.platform,
            aweme_id: aweme_id_field(p.platform, p.post_id.as_ref()),
            post_id: p.post_id,
            url: p.url,
            scheduled_for: p.publish_at,
            post_state: p.post_state,
            note: p.note,
        })
        .collect();
    // Stable: the ledger's order (last change, newest first) breaks ties.
    rows.sort_by_key(|r| std::cmp::Reverse(r.time));
    Ok(rows)
}

/// The ledger, if there is one yet (opening it would create it).
fn open_ledger(config: &crate::config::Config) -> Result<Option<Ledger>, ReportError> {
    if !Ledger::exists(config) {
        return Ok(None);
    }
    Ok(Some(Ledger::open_configured(config)?))
}

/// Reads `live.json` and judges it; the snapshot is returned only when it may be used.
fn read_live(
    state_dir: &Path,
    running: bool,
    holder: Option<&Holder>,
    now_s: i64,
) -> (Option<Snapshot>, LiveStatus) {
    let path = live::Live::snapshot_path(state_dir);
    let mut status = LiveStatus {
        state: LiveState::Missing,
        updated_at: None,
        age_seconds: None,
        pid: None,
        problem: None,
    };
    let text = match std::fs::read(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return (None, status),
        Err(e) => {
            status.state = LiveState::Unreadable;
            status.problem = Some(format!("cannot read {}: {e}", path.display()));
            return (None, status);
        }
    };
    let snapshot: Snapshot = match serde_json::from_slice(&text) {
        Ok(s) => s,
        Err(e) => {
            status.state = LiveState::Unreadable;
            status.problem = Some(format!("{} is not a live snapshot: {e}", path.display()));
            return (None, status);
        }
    };
    let updated_at = snapshot.updated_at.or_else(|| {
        std::fs::metadata(&path)
            .and_then(|m| m.modified())
            .ok()
            .map(UtcTime::from)
    });
    status.updated_at = updated_at;
    status.age_seconds = updated_at.map(|t| age(now_s, t));
    status.pid = (snapshot.pid != 0).then_some(snapshot.pid);
    let stale = if running {
        // The agent saves only when something changes, so its snapshot may be old;
        // one written by another process is a leftover of an earlier run.
        matches!((holder, status.pid), (Some(h), Some(pid)) if h.pid != pid)
    } else {
        status.age_seconds.is_none_or(|a| a > STALE_AFTER.as_secs())
    };
    if stale {
        status.state = LiveState::Stale;
        (None, status)
    } else {
        status.state = LiveState::Fresh;
        (Some(snapshot), status)
    }
}

// ---------------------------------------------------------------------------------------
// Human output

/// `dropcast status` for people: plain text (no colour, so pipes and logs stay clean),
/// tables fitted to `width` columns when given.
pub fn render_status(r: &StatusReport, width: Option<usize>) -> String {
    let mut out = String::new();
    let now_s = unix(r.generated_at);

    // The agent.
    let agent = if r.agent.running {
        let who = match (r.agent.pid, &r.agent.host) {
            (Some(pid), Some(host)) => format!("pid {pid} on {}", clean(host)),
            _ => clean(r.agent.holder.as_deref().unwrap_or_default()),
        };
        let up = r
            .agent
            .since
            .map(|t| format!(", up {}", fmt_secs(age(now_s, t))))
            .unwrap_or_default();
        let watching = r
            .agent
            .watching
            .as_deref()
            .map(|w| format!(", watching {}", clean(w)))
            .unwrap_or_default();
        format!("running: {who}{up}{watching}")
    } else {
        "not running (start it with `dropcast watch`)".to_string()
    };
    line(&mut out, width, "agent", &agent);
    let live = &r.agent.live;
    let live_age = live
        .age_seconds
        .map(|a| format!("{} ago", fmt_secs(a)))
        .unwrap_or_else(|| "at an unknown time".into());
    match live.state {
        LiveState::Fresh => line(
            &mut out,
            width,
            "live",
            &format!("live.json updated {live_age}"),
        ),
        LiveState::Stale => {
            let by = live.pid.map(|p| format!(" by pid {p}")).unwrap_or_default();
            let why = if r.agent.running {
                "an earlier agent wrote it"
            } else {
                "no agent holds the lock"
            };
            line(
                &mut out,
                width,
                "live",
                &format!(
                    "live.json is stale (written {live_age}{by}; {why}): in-flight jobs, \
                     videos waiting or held and paused accounts are not known"
                ),
            );
        }
        LiveState::Missing if r.agent.running => line(
            &mut out,
            width,
            "live",
            "no live.json yet: in-flight progress is not known",
        ),
        LiveState::Missing => {}
        LiveState::Unreadable => line(
            &mut out,
            width,
            "live",
            &clean(live.problem.as_deref().unwrap_or("live.json is unreadable")),
        ),
    }

    // The ledger.
    let counts = if r.counts.total == 0 {
        "none yet".to_string()
    } else {
        let parts: Vec<String> = r
            .counts
            .by_state()
            .iter()
            .filter(|(_, n)| *n > 0)
            .map(|(s, n)| format!("{n} {s}"))
            .collect();
        format!("{} in the ledger: {}", r.counts.total, parts.join(", "))
    };
    line(&mut out, width, "jobs", &counts);
    if r.in_flight.is_empty()
        && r.queued.is_empty()
        && r.waiting_for_caption.is_empty()
        && r.held_in_inbox.is_empty()
    {
        line(&mut out, width, "queue", "nothing queued");
    }

    if !r.in_flight.is_empty() {
        section(&mut out, width, "In flight", r.in_flight.len(), None);
        let mut t = Table::new(&["FILE", "ACCOUNT", "STEP", "PROGRESS", "ELAPSED"]);
        t.shrink(0, Keep::End);
        for j in &r.in_flight {
            let progress = match j.percent {
                Some(p) => format!(
                    "{p:>3}%  {} / {} MiB",
                    mib(j.bytes_done),
                    mib(j.bytes_total)
                ),
                None => "-".into(),
            };
            t.row(vec![
                j.file.clone(),
                j.account.clone().unwrap_or_else(|| "-".into()),
                j.step.to_string(),
                progress,
                j.elapsed_seconds
                    .map(fmt_secs)
                    .unwrap_or_else(|| "-".into()),
            ]);
        }
        t.render(&mut out, width);
    }

    if !r.queued.is_empty() {
        let note = if r.agent.running {
            None
        } else {
            Some("the agent is not running; `dropcast watch` resumes them")
        };
        section(&mut out, width, "Queued", r.queued.len(), note);
        let mut t = Table::new(&["FILE", "HASH", "ACCOUNT", "NEXT", "ATTEMPTS", "SINCE"]);
        t.shrink(3, Keep::Start);
        t.shrink(0, Keep::End);
        for j in &r.queued {
            t.row(vec![
                j.file.clone(),
                short(&j.sha256).to_string(),
                j.account.clone(),
                j.next.clone(),
                j.attempts.to_string(),
                format!("{} ago", fmt_secs(age(now_s, j.since))),
            ]);
        }
        t.render(&mut out, width);
    }

    if !r.waiting_for_caption.is_empty() {
        section(
            &mut out,
            width,
            "Waiting for a caption",
            r.waiting_for_caption.len(),
            Some("put `<name>.yaml` beside each video; `dropcast validate` checks it"),
        );
        let mut t = Table::new(&["FILE", "WAITING"]);
        t.shrink(0, Keep::End);
        for w in &r.waiting_for_caption {
            t.row(vec![
                w.file.clone(),
                w.waiting_seconds
                    .map(fmt_secs)
                    .unwrap_or_else(|| "-".into()),
            ]);
        }
        t.render(&mut out, width);
    }

    if !r.held_in_inbox.is_empty() {
        section(
            &mut out,
            width,
            "Held in the inbox",
            r.held_in_inbox.len(),
            Some("they stay until the reason is gone; the agent looks again by itself"),
        );
        let mut t = Table::new(&["FILE", "SINCE"]);
        t.shrink(0, Keep::End);
        for h in &r.held_in_inbox {
            t.row_with_notes(
                vec![
                    h.file.clone(),
                    h.since
                        .map(|t| format!("{} ago", fmt_secs(age(now_s, t))))
                        .unwrap_or_else(|| "-".into()),
                ],
                vec![("why:", h.reason.clone())],
            );
        }
        t.render(&mut out, width);
    }

    if !r.not_public.is_empty() {
        section(&mut out, width, "Not public yet", r.not_public.len(), None);
        let mut t = Table::new(&["FILE", "ACCOUNT", "POST", "PUBLISHED"]);
        t.shrink(0, Keep::End);
        for p in &r.not_public {
            t.row_with_notes(
                vec![
                    p.file.clone(),
                    p.account.clone(),
                    p.post_state.describe().to_string(),
                    fmt_time(p.published_at),
                ],
                p.note.iter().map(|n| ("note:", n.clone())).collect(),
            );
        }
        t.render(&mut out, width);
    }

    render_plan(&mut out, width, r);

    if !r.scheduled.is_empty() {
        section(&mut out, width, "Scheduled", r.scheduled.len(), None);
        let mut t = Table::new(&["FILE", "ACCOUNT", "GOES PUBLIC", "IN"]);
        t.shrink(0, Keep::End);
        for s in &r.scheduled {
            let wait = unix(s.publish_at).saturating_sub(now_s).max(0);
            t.row_with_notes(
                vec![
                    s.file.clone(),
                    s.account.clone(),
                    fmt_time(s.publish_at),
                    fmt_secs(u64::try_from(wait).unwrap_or(0)),
                ],
                vec![("post:", s.url.clone().unwrap_or_else(|| "-".into()))],
            );
        }
        t.render(&mut out, width);
    }

    if !r.paused_accounts.is_empty() {
        section(
            &mut out,
            width,
            "Paused accounts",
            r.paused_accounts.len(),
            Some("their videos wait in the inbox"),
        );
        let mut t = Table::new(&["ACCOUNT", "SINCE", "REASON"]);
        t.shrink(2, Keep::Start);
        for p in &r.paused_accounts {
            t.row(vec![
                p.account.clone(),
                p.since
                    .map(|t| format!("{} ago", fmt_secs(age(now_s, t))))
                    .unwrap_or_else(|| "-".into()),
                p.reason.clone(),
            ]);
        }
        t.render(&mut out, width);
    }

    problems(&mut out, "Failed", &r.failed, now_s, width);
    problems(&mut out, "Unconfirmed", &r.unconfirmed, now_s, width);
    agents(&mut out, r, width);
    out
}

/// Every agent using the ledger, when there are several or the ledger is shared.
fn agents(out: &mut String, r: &StatusReport, width: Option<usize>) {
    let list = AgentList {
        shared: r.ledger_shared,
        agents: r.agents.clone(),
    };
    if !list.worth_showing() {
        return;
    }
    let alive = r.agents.iter().filter(|a| a.alive).count();
    let note =
        format!("{alive} alive; a silent agent's jobs are taken over when their leases expire");
    section(out, width, "Agents", r.agents.len(), Some(&note));
    let mut t = Table::new(&[
        "AGENT",
        "HOST",
        "PID",
        "VERSION",
        "HEARTBEAT",
        "STATE",
        "JOBS",
    ]);
    t.shrink(1, Keep::End);
    for a in &r.agents {
        let jobs: Vec<String> = a
            .jobs
            .iter()
            .map(|j| match j.file.as_str() {
                "" => format!("#{}", j.id),
                file => format!("#{} {}", j.id, clean(file)),
            })
            .collect();
        let mut notes: Vec<Note> = Vec::new();
        if jobs.len() > 1 {
            notes.push(("jobs:", jobs.join(", ")));
        }
        t.row_with_notes(
            vec![
                clean(&a.name),
                clean(&a.host),
                a.pid.to_string(),
                clean(&a.version),
                format!("{} ago", fmt_secs(a.heartbeat_age_seconds)),
                a.state().to_string(),
                match jobs.len() {
                    0 => "-".into(),
                    1 => jobs[0].clone(),
                    n => n.to_string(),
                },
            ],
            notes,
        );
    }
    t.render(out, width);
}

fn problems(out: &mut String, title: &str, jobs: &[ProblemJob], now_s: i64, width: Option<usize>) {
    if jobs.is_empty() {
        return;
    }
    section(out, width, title, jobs.len(), Some("fix, then retry"));
    let mut t = Table::new(&["FILE", "HASH", "ACCOUNT", "STEP", "CLASS", "WHEN"]);
    t.shrink(0, Keep::End);
    for j in jobs {
        t.row_with_notes(
            vec![
                j.file.clone(),
                short(&j.sha256).to_string(),
                j.account.clone(),
                j.step
                    .as_ref()
                    .map(|s| s.to_string())
                    .unwrap_or_else(|| "-".into()),
                j.class.to_string(),
                format!("{} ago", fmt_secs(age(now_s, j.at))),
            ],
            vec![
                ("why:", j.reason.clone()),
                ("fix:", j.hint.clone()),
                ("retry:", j.retry.clone()),
            ],
        );
    }
    t.render(out, width);
}

/// `dropcast history` for people.
pub fn render_history(rows: &[HistoryRow]) -> String {
    if rows.is_empty() {
        return "no posts yet\n".into();
    }
    let scheduled = rows.iter().any(|r| r.scheduled_for.is_some());
    let mut head = vec!["TIME", "FILE", "HASH", "ACCOUNT", "POST"];
    if scheduled {
        head.push("SCHEDULED FOR");
    }
    let mut t = Table::new(&head);
    t.indent = "";
    for r in rows {
        let mut cells = vec![
            fmt_time(r.time),
            r.file.clone(),
            short(&r.sha256).to_string(),
            r.account.clone(),
            match (&r.url, r.post_state) {
                (Some(url), _) => url.clone(),
                (None, PostState::Live) => "-".into(),
                (None, state) => format!("({})", state.describe()),
            },
        ];
        if scheduled {
            cells.push(r.scheduled_for.map(fmt_time).unwrap_or_default());
        }
        t.row(cells);
    }
    let mut out = String::new();
    t.render(&mut out, None);
    out
}

const LABEL_WIDTH: usize = 7;

/// `label   text`, the text wrapped under itself to `width`.
fn line(out: &mut String, width: Option<usize>, label: &str, text: &str) {
    let avail = width.map(|w| w.saturating_sub(LABEL_WIDTH + 1).max(20));
    for (i, piece) in wrap(text, avail).iter().enumerate() {
        let label = if i == 0 { label } else { "" };
        let _ = writeln!(out, "{label:<LABEL_WIDTH$} {piece}");
    }
}

/// The posting plan: per account its next free slot, then each planned video.
fn render_plan(out: &mut String, width: Option<usize>, r: &StatusReport) {
    for p in &r.plan {
        let next = p.next_free.map_or_else(|| "none".to_owned(), fmt_time);
        let note = format!(
            "{} ({}), at most {} a day; next free slot {next}",
            p.windows.join(", "),
            p.time_zone,
            p.daily_max
        );
        let title = format!("Plan of {}", p.account);
        section(out, width, &title, p.planned.len(), Some(&note));
        if p.planned.is_empty() {
            continue;
        }
        let mut t = Table::new(&["FILE", "SLOT", "STATE"]);
        t.shrink(0, Keep::End);
        for v in &p.planned {
            t.row_with_notes(
                vec![v.file.clone(), fmt_time(v.slot), v.state.to_owned()],
                Vec::new(),
            );
        }
        t.render(out, width);
    }
}

fn section(out: &mut String, width: Option<usize>, title: &str, n: usize, note: Option<&str>) {
    out.push('\n');
    let text = match note {
        Some(note) => format!("{title} ({n}): {note}"),
        None => format!("{title} ({n})"),
    };
    for (i, piece) in wrap(&text, width).iter().enumerate() {
        let lead = if i == 0 { "" } else { "  " };
        let _ = writeln!(out, "{lead}{piece}");
    }
}

fn short(sha256: &str) -> &str {
    sha256.get(..12).unwrap_or(sha256)
}

fn mib(bytes: u64) -> String {
    format!("{:.1}", bytes as f64 / (1024.0 * 1024.0))
}

/// `2026-12-01 12:00:00 UTC`.
fn fmt_time(t: UtcTime) -> String {
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
    match t.offset_date_time().format(&format) {
        Ok(text) => format!("{text} UTC"),
        Err(_) => t.to_rfc3339(),
    }
}

/// `42s`, `3m 5s`, `2h 4m`, `3d 2h`.
fn fmt_secs(s: u64) -> String {
    let (d, h, m, s) = (s / 86_400, s / 3600 % 24, s / 60 % 60, s % 60);
    if d > 0 {
        format!("{d}d {h}h")
    } else if h > 0 {
        format!("{h}h {m}m")
    } else if m > 0 {
        format!("{m}m {s}s")
    } else {
        format!("{s}s")
    }
}

/// Which end of a too-long cell to keep.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Keep {
    /// Reasons: the start says most.
    Start,
    /// Paths: the file name is at the end.
    End,
}

/// A cell never shrinks below this many columns.
const MIN_CELL: usize = 10;
const GAP: usize = 2;
/// Width of a note's label (`retry:`).
const NOTE_LABEL: usize = 6;

/// A line under a table row: a label (`fix:`) and its text.
type Note = (&'static str, String);

/// A plain table with aligned columns, some of which may shrink to fit a width.
struct Table {
    head: Vec<String>,
    /// Cells, and labelled notes printed under the row.
    rows: Vec<(Vec<String>, Vec<Note>)>,
    /// Columns that may shrink, in the order they give way.
    shrink: Vec<(usize, Keep)>,
    indent: &'static str,
}

impl Table {
    fn new(head: &[&str]) -> Table {
        Table {
            head: head.iter().map(|h| h.to_string()).collect(),
            rows: Vec::new(),
            shrink: Vec::new(),
            indent: "  ",
        }
    }

    fn shrink(&mut self, column: usize, keep: Keep) {
        self.shrink.push((column, keep));
    }

    fn row(&mut self, cells: Vec<String>) {
        self.row_with_notes(cells, Vec::new());
    }

    /// A row with `label text` lines printed under it, indented and wrapped.
    fn row_with_notes(&mut self, cells: Vec<String>, notes: Vec<Note>) {
        let cells = cells.iter().map(|c| clean(c)).collect();
        let notes = notes.into_iter().map(|(l, n)| (l, clean(&n))).collect();
        self.rows.push((cells, notes));
    }

    fn render(&self, out: &mut String, width: Option<usize>) {
        let n = self.head.len();
        let mut widths: Vec<usize> = self.head.iter().map(|h| display_width(h)).collect();
        for (cells, _) in &self.rows {
            for (w, cell) in widths.iter_mut().zip(cells) {
                *w = (*w).max(display_width(cell));
            }
        }
        if let Some(max) = width {
            let total =
                self.indent.len() + widths.iter().sum::<usize>() + GAP * n.saturating_sub(1);
            let mut over = total.saturating_sub(max);
            for (col, _) in &self.shrink {
                let Some(w) = widths.get_mut(*col) else {
                    continue;
                };
                let floor = MIN_CELL.max(display_width(&self.head[*col]));
                let give = over.min(w.saturating_sub(floor));
                *w -= give;
                over -= give;
            }
        }
        let keep = |col: usize| {
            self.shrink
                .iter()
                .find(|(c, _)| *c == col)
                .map(|(_, k)| *k)
                .unwrap_or(Keep::Start)
        };
        let emit = |out: &mut String, cells: &[String]| {
            let mut text = String::from(self.indent);
            for (i, cell) in cells.iter().enumerate().take(n) {
                let cell = fit(cell, widths[i], keep(i));
                if i + 1 == n {
                    text.push_str(&cell);
                } else {
                    text.push_str(&cell);
                    let pad = widths[i].saturating_sub(display_width(&cell)) + GAP;
                    text.extend(std::iter::repeat_n(' ', pad));
                }
            }
            out.push_str(text.trim_end());
            out.push('\n');
        };
        emit(out, &self.head);
        for (cells, notes) in &self.rows {
            emit(out, cells);
            let lead = format!("{}    ", self.indent);
            let avail = width.map(|w| w.saturating_sub(lead.len() + NOTE_LABEL + 1).max(20));
            for (label, note) in notes {
                for (i, piece) in wrap(note, avail).iter().enumerate() {
                    let label = if i == 0 { label } else { "" };
                    let _ = writeln!(out, "{lead}{label:<NOTE_LABEL$} {piece}");
                }
            }
        }
    }
}

/// `text` cut to at most `width` columns, marked with `…` where it was cut.
fn fit(text: &str, width: usize, keep: Keep) -> String {
    if display_width(text) <= width {
        return text.to_string();
    }
    let budget = width.saturating_sub(1);
    let mut used = 0;
    let mut kept: Vec<char> = Vec::new();
    let chars: Box<dyn Iterator<Item = char>> = match keep {
        Keep::Start => Box::new(text.chars()),
        Keep::End => Box::new(text.chars().rev()),
    };
    for c in chars {
        let w = char_width(c);
        if used + w > budget {
            break;
        }
        used += w;
        kept.push(c);
    }
    match keep {
        Keep::Start => kept.into_iter().chain(['…']).collect(),
        Keep::End => ['…'].into_iter().chain(kept.into_iter().rev()).collect(),
    }
}

/// Words of `text` in lines of at most `width` columns (a longer word gets a line alone).
fn wrap(text: &str, width: Option<usize>) -> Vec<String> {
    let Some(width) = width else {
        return vec![text.to_string()];
    };
    let mut lines = Vec::new();
    let mut current = String::new();
    for word in text.split(' ').filter(|w| !w.is_empty()) {
        if !current.is_empty() && display_width(&current) + 1 + display_width(word) > width {
            lines.push(std::mem::take(&mut current));
        }
        if !current.is_empty() {
            current.push(' ');
        }
        current.push_str(word);
    }
    if !current.is_empty() || lines.is_empty() {
        lines.push(current);
    }
    lines
}

/// Text safe for a terminal: control characters (a newline in a file name, an escape
/// sequence in a platform's message) are shown escaped instead of acting.
fn clean(text: &str) -> String {
    if !text.chars().any(char::is_control) {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// Columns a string takes in a terminal.
fn display_width(text: &str) -> usize {
    text.chars().map(char_width).sum()
}

/// 2 for East Asian wide and full-width characters and emoji, 0 for combining marks and
/// zero-width characters, 1 otherwise. Close enough for aligning file names.
fn char_width(c: char) -> usize {
    let c = c as u32;
    match c {
        0x0300..=0x036F | 0x200B..=0x200F | 0x20D0..=0x20FF | 0xFE00..=0xFE0F | 0xFE20..=0xFE2F => {
            0
        }
        0x1100..=0x115F
        | 0x2E80..=0x303E
        | 0x3041..=0x33FF
        | 0x3400..=0x4DBF
        | 0x4E00..=0x9FFF
        | 0xA000..=0xA4CF
        | 0xAC00..=0xD7A3
        | 0xF900..=0xFAFF
        | 0xFE30..=0xFE4F
        | 0xFF00..=0xFF60
        | 0xFFE0..=0xFFE6
        | 0x1F300..=0x1F64F
        | 0x1F900..=0x1F9FF
        | 0x20000..=0x3FFFD => 2,
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn widths_count_wide_characters_twice() {
        assert_eq!(display_width("clip.mp4"), 8);
        assert_eq!(display_width("遇见.mp4"), 8);
        assert_eq!(display_width("e\u{301}"), 1);
    }

    #[test]
    fn fit_keeps_the_file_name_end_and_the_reason_start() {
        assert_eq!(fit("short", 10, Keep::End), "short");
        assert_eq!(
            fit("a/very/long/path/clip.mp4", 10, Keep::End),
            "…/clip.mp4"
        );
        assert_eq!(fit("the platform refused", 8, Keep::Start), "the pla…");
        // A wide character never straddles the limit.
        let cut = fit("音乐音乐音乐", 6, Keep::Start);
        assert_eq!(cut, "音乐…");
        assert!(display_width(&cut) <= 6);
    }

    #[test]
    fn clean_escapes_control_characters() {
        assert_eq!(clean("a\nb\u{1b}[31m"), "a\\nb\\u{1b}[31m");
        assert_eq!(clean("遇见"), "遇见");
    }

    #[test]
    fn wrap_breaks_between_words() {
        assert_eq!(wrap("aa bb cc", Some(5)), vec!["aa bb", "cc"]);
        assert_eq!(wrap("aa bb cc", None), vec!["aa bb cc"]);
        assert_eq!(wrap("", Some(5)), vec![""]);
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(fmt_secs(42), "42s");
        assert_eq!(fmt_secs(185), "3m 5s");
        assert_eq!(fmt_secs(2 * 3600 + 4 * 60 + 9), "2h 4m");
        assert_eq!(fmt_secs(3 * 86_400 + 7200), "3d 2h");
    }

    #[test]
    fn table_aligns_wide_names_and_shrinks_to_width() {
        let mut t = Table::new(&["FILE", "STEP"]);
        t.shrink(0, Keep::End);
        t.row(vec!["遇见.mp4".into(), "upload".into()]);
        t.row(vec!["b.mp4".into(), "publish".into()]);
        let mut out = String::new();
        t.render(&mut out, None);
        let lines: Vec<&str> = out.lines().collect();
        let step_col: Vec<usize> = lines
            .iter()
            .map(|l| {
                let (before, _) = l.split_at(l.rfind(' ').unwrap() + 1);
                display_width(before)
            })
            .collect();
        assert!(step_col.windows(2).all(|w| w[0] == w[1]), "{out}");

        let mut t = Table::new(&["FILE", "STEP"]);
        t.shrink(0, Keep::End);
        t.row(vec![
            format!("{}/clip.mp4", "deep/".repeat(20)),
            "upload".into(),
        ]);
        let mut out = String::new();
        t.render(&mut out, Some(30));
        assert!(out.lines().all(|l| display_width(l) <= 30), "{out}");
        assert!(out.contains("…"), "{out}");
        assert!(out.contains("clip.mp4"), "{out}");
    }

    fn report_with_agents(agents: Vec<AgentEntry>, shared: bool) -> StatusReport {
        let agent = AgentStatus {
            running: false,
            pid: None,
            host: None,
            since: None,
            holder: None,
            watching: None,
            live: LiveStatus {
                state: LiveState::Missing,
                updated_at: None,
                age_seconds: None,
                pid: None,
                problem: None,
            },
        };
        let model = Model::assemble(LedgerPart::default(), None, UtcTime::now());
        let mut r = StatusReport::from_model(model, agent);
        r.agents = agents;
        r.ledger_shared = shared;
        r
    }

    fn entry(name: &str, alive: bool, stopped: bool, jobs: &[(i64, &str)]) -> AgentEntry {
        AgentEntry {
            name: name.into(),
            host: format!("{name}.lan"),
            pid: 4242,
            version: "1.2.3".into(),
            started_at: UtcTime::now(),
            heartbeat_at: UtcTime::now(),
            heartbeat_age_seconds: 12,
            stopped,
            alive,
            jobs: jobs
                .iter()
                .map(|(id, file)| crate::agent_list::HeldJob {
                    id: *id,
                    file: (*file).into(),
                })
                .collect(),
        }
    }

    #[test]
    fn agents_are_listed_when_several_share_the_ledger() {
        let r = report_with_agents(
            vec![
                entry("host-a", true, false, &[(7, "clips/a.mp4")]),
                entry("host-b", false, true, &[]),
                entry("host-c", false, false, &[(8, "b.mp4"), (9, "c.mp4")]),
            ],
            false,
        );
        let out = render_status(&r, None);
        assert!(out.contains("Agents (3): 1 alive"), "{out}");
        let row = |name: &str| out.lines().find(|l| l.contains(name)).unwrap().to_owned();
        let a = row("host-a ");
        for word in [
            "host-a.lan",
            "4242",
            "1.2.3",
            "12s ago",
            "alive",
            "#7 clips/a.mp4",
        ] {
            assert!(a.contains(word), "{word}: {a}");
        }
        assert!(row("host-b ").contains("stopped"), "{out}");
        assert!(row("host-c ").contains("silent"), "{out}");
        assert!(row("jobs:").ends_with("#8 b.mp4, #9 c.mp4"), "{out}");
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["agents"][0]["jobs"][0]["id"], 7);
        assert_eq!(json["agents"][1]["stopped"], true);
    }

    #[test]
    fn one_agent_on_sqlite_shows_no_agents_section_but_json_lists_it() {
        let r = report_with_agents(vec![entry("solo", true, false, &[])], false);
        let out = render_status(&r, None);
        assert!(!out.contains("Agents"), "{out}");
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["agents"][0]["name"], "solo");
        // A shared ledger lists even one agent.
        let r = report_with_agents(vec![entry("solo", true, false, &[])], true);
        assert!(render_status(&r, None).contains("Agents (1)"));
    }
}
