//! The one read model behind `dropcast status` (and `--json`), `/api/jobs`, `/metrics`
//! and the dashboard: one query over the ledger ([`LedgerPart::read`], whose SQL stays in
//! `ledger.rs`), the agent's live state and the receipts ([`Model::assemble`]), with one
//! wording per state and failure class ([`FailureClass`], [`Stage`]). `report` and
//! `status::view` only choose and rename fields; they compute nothing of their own.
//!
//! Nothing here can hold a secret: step results are never read, except step 5's
//! `publish_at`.

use std::collections::{BTreeMap, HashSet};
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::domain::{Platform, PostState, StepName};
use crate::ledger::{JobId, JobRecord, JobState, Ledger, LedgerError};
use crate::pipeline::live::{Held, PausedAccount, Snapshot, Waiting};
use crate::receipt::{UtcTime, file_label};

pub use crate::words::{FailureClass, Stage};

/// Posts not public yet that are listed, at most.
const MAX_NOT_PUBLIC: usize = 50;
/// How long an inbox draft is listed among the posts not public (ours: the creator has
/// finished it in the app, or chosen not to, after a week).
const INBOX_DRAFT_LISTED: i64 = 7 * 24 * 60 * 60;

/// Receipts larger than this are not read (a real one is a few KiB).
const MAX_RECEIPT_BYTES: u64 = 1024 * 1024;

/// What to read beyond what every view needs.
#[derive(Debug, Clone, Copy)]
pub struct Query {
    /// Recent posts listed (`history`).
    pub recent_posts: usize,
    /// At most this many failed or abandoned, and this many unconfirmed, jobs.
    pub max_problems: usize,
    /// Look for posts scheduled to go public later (reads every published job).
    pub scheduled: bool,
}

/// The ledger's side of the model, read in one go (under the ledger's lock).
#[derive(Debug, Clone, Default)]
pub struct LedgerPart {
    counts: BTreeMap<JobState, u64>,
    /// Active, published, failed, abandoned and unconfirmed jobs, oldest first.
    open: Vec<JobRecord>,
    /// Published and done jobs, most recent first.
    posts: Vec<JobRecord>,
    /// The most recent posts that are not public (awaiting moderation, in the inbox).
    not_public: Vec<JobRecord>,
    /// Published and done jobs that may be scheduled (only with [`Query::scheduled`]).
    published: Vec<JobRecord>,
    /// The (sha256, account) pairs a live job holds.
    live: HashSet<(String, String)>,
    /// The receipt text each job's archive plan stored, for the jobs whose receipt is read.
    planned_receipts: BTreeMap<JobId, String>,
    max_problems: usize,
}

impl LedgerPart {
    pub fn read(ledger: &Ledger, q: &Query) -> Result<LedgerPart, LedgerError> {
        let open = ledger.jobs_in(&[
            JobState::Active,
            JobState::Published,
            JobState::Failed,
            JobState::Abandoned,
            JobState::Unconfirmed,
        ])?;
        let posts = if q.recent_posts == 0 {
            Vec::new()
        } else {
            ledger.history(q.recent_posts)?
        };
        let published = if q.scheduled {
            ledger.jobs_in(&[JobState::Published, JobState::Done])?
        } else {
            Vec::new()
        };
        let mut planned_receipts = BTreeMap::new();
        let failed = open
            .iter()
            .rev()
            .filter(|j| j.state == JobState::Failed)
            .take(q.max_problems);
        for job in failed.chain(&posts).chain(&published) {
            if let Some(text) = ledger
                .archive_plan(job.id)?
                .and_then(|plan| serde_json::from_value::<PlanBits>(plan).ok())
            {
                planned_receipts.insert(job.id, text.receipt_json);
            }
        }
        Ok(LedgerPart {
            counts: ledger.count_by_state()?,
            open,
            posts,
            not_public: ledger.not_public(MAX_NOT_PUBLIC)?,
            published,
            live: ledger.live_contents()?.into_iter().collect(),
            planned_receipts,
            max_problems: q.max_problems,
        })
    }
}

/// Everything the views show.
#[derive(Debug, Clone, PartialEq)]
pub struct Model {
    pub now: UtcTime,
    /// Jobs by state, every state present.
    pub counts: BTreeMap<JobState, u64>,
    pub in_flight: Vec<InFlightJob>,
    /// Active or published jobs no agent works on right now, oldest first.
    pub queued: Vec<QueuedJob>,
    pub waiting_for_caption: Vec<Waiting>,
    pub held_in_inbox: Vec<Held>,
    pub paused_accounts: Vec<PausedAccount>,
    /// Failed, abandoned and unconfirmed jobs, newest first.
    pub problems: Vec<ProblemJob>,
    pub recent_posts: Vec<PostedJob>,
    /// Posts that go public later, soonest first.
    pub scheduled: Vec<PostedJob>,
    /// Posts awaiting moderation, and inbox drafts of the last week, newest first.
    pub not_public: Vec<PostedJob>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct InFlightJob {
    /// Relative to the inbox.
    pub video: String,
    pub sha256: Option<String>,
    pub account: Option<String>,
    pub stage: Stage,
    pub bytes_done: u64,
    pub bytes_total: u64,
    /// Of the upload; `None` before its size is known.
    pub percent: Option<u8>,
    pub started_at: Option<UtcTime>,
    pub elapsed_seconds: Option<u64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct QueuedJob {
    pub id: JobId,
    pub video: String,
    pub sha256: String,
    pub account: String,
    /// `Active` or `Published`.
    pub state: JobState,
    /// The last protocol step with a recorded result.
    pub last_step: Option<StepName>,
    /// What happens to it next, in words.
    pub next: String,
    /// Step 5 was sent without a recorded result: the next run asks the platform first.
    pub publish_sent: bool,
    pub attempts: u32,
    pub created_at: UtcTime,
    pub updated_at: UtcTime,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ProblemJob {
    pub id: JobId,
    pub video: String,
    pub sha256: String,
    pub account: String,
    /// `Failed`, `Abandoned` or `Unconfirmed`.
    pub state: JobState,
    pub step: Option<StepName>,
    pub class: Option<FailureClass>,
    pub reason: Option<String>,
    /// What the user can do: the error receipt's hint, else the class's (or state's) wording.
    pub hint: String,
    /// The command that puts the job back in the queue once fixed.
    pub retry: String,
    pub at: UtcTime,
    /// The same video was published for the account since.
    pub settled: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PostedJob {
    pub id: JobId,
    pub video: String,
    pub sha256: String,
    pub account: String,
    pub platform: Platform,
    /// The public post's id: `None` while it is not public.
    pub post_id: Option<String>,
    pub url: Option<String>,
    /// Live, awaiting moderation, or in the creator's inbox.
    pub post_state: PostState,
    /// What the creator should know about a post that is not public (yet).
    pub note: Option<String>,
    pub published_at: UtcTime,
    /// When the post goes public, if it is scheduled for later.
    pub publish_at: Option<UtcTime>,
    /// `Done`, or `Published` while its files are being archived.
    pub state: JobState,
}

impl Model {
    /// Joins the ledger's part with the live snapshot (`None`: not known) and the
    /// receipts. Reads receipt files: call it off the async threads.
    pub fn assemble(l: LedgerPart, snapshot: Option<&Snapshot>, now: UtcTime) -> Model {
        let now_s = unix(now);
        let empty = Snapshot::default();
        let snapshot = snapshot.unwrap_or(&empty);
        let in_flight: Vec<InFlightJob> = snapshot
            .in_flight
            .iter()
            .map(|j| InFlightJob {
                video: j.video.clone(),
                sha256: j.sha256.clone(),
                account: j.account.clone(),
                stage: j.step.clone(),
                bytes_done: j.bytes_done,
                bytes_total: j.bytes_total,
                percent: percent(j.bytes_done, j.bytes_total),
                started_at: j.started_at,
                elapsed_seconds: j.started_at.map(|t| age(now_s, t)),
            })
            .collect();
        let busy_files: HashSet<&str> = in_flight.iter().map(|j| j.video.as_str()).collect();
        let busy_hashes: HashSet<(&str, &str)> = in_flight
            .iter()
            .filter_map(|j| Some((j.sha256.as_deref()?, j.account.as_deref()?)))
            .collect();
        let queued = l
            .open
            .iter()
            .filter(|j| matches!(j.state, JobState::Active | JobState::Published))
            .filter(|j| {
                !busy_files.contains(file_label(&j.video).as_str())
                    && !busy_hashes.contains(&(j.sha256.as_str(), j.account.as_str()))
            })
            .map(queued_job)
            .collect();

        let (mut failed, mut unconfirmed) = (0, 0);
        let mut problems = Vec::new();
        for job in l.open.iter().rev() {
            let slot = match job.state {
                JobState::Failed | JobState::Abandoned => &mut failed,
                JobState::Unconfirmed => &mut unconfirmed,
                _ => continue,
            };
            if *slot >= l.max_problems {
                continue;
            }
            *slot += 1;
            problems.push(problem_job(&l, job));
        }

        let recent_posts = l.posts.iter().map(|j| posted_job(&l, j)).collect();
        let mut scheduled: Vec<PostedJob> = l
            .published
            .iter()
            .map(|j| posted_job(&l, j))
            .filter(|p| p.publish_at.is_some_and(|at| at > now))
            .collect();
        scheduled.sort_by_key(|s| s.publish_at);
        let not_public = l
            .not_public
            .iter()
            .map(|j| posted_job(&l, j))
            .filter(|p| {
                p.post_state == PostState::AwaitingModeration
                    || now_s.saturating_sub(unix(p.published_at)) < INBOX_DRAFT_LISTED
            })
            .collect();

        Model {
            now,
            counts: l.counts.clone(),
            in_flight,
            queued,
            waiting_for_caption: snapshot.waiting_for_caption.clone(),
            held_in_inbox: snapshot.held.clone(),
            paused_accounts: snapshot.paused_accounts.clone(),
            problems,
            recent_posts,
            scheduled,
            not_public,
        }
    }
}

fn percent(done: u64, total: u64) -> Option<u8> {
    (total > 0)
        .then(|| u8::try_from((u128::from(done) * 100 / u128::from(total)).min(100)).unwrap_or(100))
}

fn queued_job(job: &JobRecord) -> QueuedJob {
    let last_step = job.steps.last().cloned();
    let publish_sent = job.publish_in_doubt();
    let next = if job.state == JobState::Published {
        "archive".to_string()
    } else if publish_sent {
        "check if step 5 posted".to_string()
    } else {
        // The platform's steps in order, then the post.
        let steps = crate::platform::steps_of(job.platform);
        let next = match &last_step {
            None => steps.first().cloned(),
            Some(done) => steps
                .iter()
                .position(|s| s == done)
                .map(|i| steps.get(i + 1).cloned().unwrap_or(StepName::PUBLISH)),
        };
        match next {
            Some(step) => format!("step {step}"),
            None => "publish".to_string(),
        }
    };
    QueuedJob {
        id: job.id,
        video: file_label(&job.video),
        sha256: job.sha256.to_string(),
        account: job.account.clone(),
        state: job.state,
        last_step,
        next,
        publish_sent,
        attempts: job.attempts,
        created_at: UtcTime::from(job.created_at),
        updated_at: UtcTime::from(job.updated_at),
    }
}

fn problem_job(l: &LedgerPart, job: &JobRecord) -> ProblemJob {
    let class = job.error.as_ref().map(|e| FailureClass::parse(&e.class));
    let hint = match job.state {
        JobState::Unconfirmed => FailureClass::Unconfirmed.hint().to_string(),
        JobState::Abandoned => FailureClass::Abandoned.hint().to_string(),
        _ => receipt_of(l, job, "error.json")
            .and_then(|r| r.hint)
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| {
                class
                    .as_ref()
                    .map_or(FailureClass::Other(String::new()).hint(), |c| c.hint())
                    .to_string()
            }),
    };
    ProblemJob {
        id: job.id,
        video: file_label(&job.video),
        sha256: job.sha256.to_string(),
        account: job.account.clone(),
        state: job.state,
        step: job.error.as_ref().and_then(|e| e.step.clone()),
        class,
        reason: job.error.as_ref().map(|e| e.reason.clone()),
        hint,
        retry: format!("dropcast retry {}", job.sha256.short()),
        at: UtcTime::from(job.updated_at),
        settled: l
            .live
            .contains(&(job.sha256.to_string(), job.account.clone())),
    }
}

fn posted_job(l: &LedgerPart, job: &JobRecord) -> PostedJob {
    let post_state = job.post.as_ref().map(|p| p.state).unwrap_or_default();
    PostedJob {
        id: job.id,
        video: file_label(&job.video),
        sha256: job.sha256.to_string(),
        account: job.account.clone(),
        platform: job.platform,
        post_id: job
            .post
            .as_ref()
            .filter(|p| p.state.is_live())
            .map(|p| p.id.clone()),
        url: job
            .post
            .as_ref()
            .and_then(|p| p.address().map(str::to_owned)),
        post_state,
        note: post_note(job, post_state),
        published_at: published_at(job),
        publish_at: scheduled_for(l, job),
        state: job.state,
    }
}

/// The note of a post that is not public; a post awaiting moderation longer than the agent
/// looks it up says so.
fn post_note(job: &JobRecord, state: PostState) -> Option<String> {
    use crate::pipeline::moderation::{LOOKUP_BOUND, given_up_note};
    let age = std::time::SystemTime::now()
        .duration_since(std::time::SystemTime::from(
            published_at(job).offset_date_time(),
        ))
        .unwrap_or_default();
    match state {
        PostState::AwaitingModeration if age >= LOOKUP_BOUND => Some(given_up_note(job.platform)),
        state => state.note(job.platform),
    }
}

/// When it was published: step 5's result, else the job's last change.
pub fn published_at(job: &JobRecord) -> UtcTime {
    UtcTime::from(
        job.steps
            .get(&StepName::PUBLISH)
            .map(|s| s.at)
            .unwrap_or(job.updated_at),
    )
}

/// The fields of a receipt that the views need; receipts have more.
#[derive(Debug, Default, Deserialize)]
struct ReceiptBits {
    #[serde(default)]
    publish_at: Option<UtcTime>,
    #[serde(default)]
    hint: Option<String>,
}

/// The part of an archive plan that the views need.
#[derive(Deserialize)]
struct PlanBits {
    receipt_json: String,
}

/// A job's receipt: the text its archive plan stored in the ledger, else the file
/// beside its archived video (`<stem>.<tail>`).
fn receipt_of(l: &LedgerPart, job: &JobRecord, tail: &str) -> Option<ReceiptBits> {
    let planned = l
        .planned_receipts
        .get(&job.id)
        .and_then(|text| serde_json::from_str(text).ok());
    planned.or_else(|| {
        let path = receipt_beside(job.archived_to.as_deref()?, tail)?;
        let meta = std::fs::metadata(&path).ok()?;
        if !meta.is_file() || meta.len() > MAX_RECEIPT_BYTES {
            return None;
        }
        serde_json::from_slice(&std::fs::read(&path).ok()?).ok()
    })
}

fn receipt_beside(video: &Path, tail: &str) -> Option<PathBuf> {
    let mut name = OsString::from(video.file_stem()?);
    name.push(".");
    name.push(tail);
    Some(video.with_file_name(name))
}

/// When a published job's post goes public, if it was scheduled: the ledger's
/// `publish_at`, else step 5's result (`publish_at`, unix seconds or RFC 3339), else the
/// published receipt.
fn scheduled_for(l: &LedgerPart, job: &JobRecord) -> Option<UtcTime> {
    if let Some(at) = job.publish_at.and_then(UtcTime::from_unix) {
        return Some(at);
    }
    let recorded = job
        .steps
        .get(&StepName::PUBLISH)
        .and_then(|s| s.result.get("publish_at"))
        .and_then(|v| match v {
            serde_json::Value::Number(n) => n.as_i64().and_then(UtcTime::from_unix),
            other => serde_json::from_value(other.clone()).ok(),
        });
    recorded.or_else(|| receipt_of(l, job, "receipt.json")?.publish_at)
}

pub(crate) fn unix(t: UtcTime) -> i64 {
    t.offset_date_time().unix_timestamp()
}

/// Whole seconds from `t` to `now_s` (0 for a time in the future).
pub(crate) fn age(now_s: i64, t: UtcTime) -> u64 {
    u64::try_from(now_s.saturating_sub(unix(t))).unwrap_or(0)
}

pub mod plan;
#[cfg(test)]
mod tests;
