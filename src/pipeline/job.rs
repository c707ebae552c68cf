//! One bundle's journey after it settled: hash, claim in the ledger, the five protocol
//! steps with a checkpoint after each, and the archive.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use time::OffsetDateTime;
use tracing::{Instrument, debug, error, info, info_span, warn};

use crate::archive::{self, ArchivePlan, Archived, Destination};
use crate::caption::{self, Caption};
use crate::checkpoint::Checkpoints;
use crate::domain::{Fingerprint, Post, PostDraft, StepName};
use crate::failpoint;
use crate::hash;
use crate::ledger::{Claim, JobId, JobRecord, JobState, LedgerError, NewJob};
use crate::platform::{
    Committed, Created, Expired, Observer, PublishError, StepFailure, UploadJob,
};
use crate::progress::Progress;
use crate::receipt;
use crate::video::{OpenError, VideoFile};
use crate::watch::{self, Settled};
use crate::words::{FailureClass, Stage};

use super::accounts::AccountRef;
use super::context::Context;
use super::error::JobFailure;
use super::targets::{Ended, Ending, Turn};

/// A settled video and the caption that belongs to it.
#[derive(Debug, Clone)]
pub struct Bundle {
    pub video: PathBuf,
    /// `None`: no caption file; the config's `defaults` are the caption.
    pub caption: Option<PathBuf>,
    pub settled: Settled,
    /// `dropcast retry --account` of a drop in `done/`: the one target to re-run where
    /// the video lies, and the receipt beside it that gets its new outcome. `None`: the
    /// targets are routed as usual.
    pub rerun: Option<Rerun>,
}

/// One target of an archived drop, re-run in place.
#[derive(Debug, Clone)]
pub struct Rerun {
    pub account: String,
    pub receipt: PathBuf,
}

/// How a held job's reason starts when the ledger failed it.
const LEDGER_ERROR: &str = "ledger: ";

/// How a job ended.
#[derive(Debug)]
pub enum Outcome {
    /// Posted (now or earlier in a resumed job) and archived to `done/`.
    Published { url: String },
    /// The same content was already posted: moved to `duplicates/`.
    Duplicate { earlier: Option<String> },
    /// Moved to `failed/` with an error receipt.
    Failed(JobFailure),
    /// Left in the inbox, queued: tried again on the next scan (account paused, network
    /// down, outcome unconfirmed, archive folder not writable).
    Held { reason: String },
    /// The video changed while it was being published; it starts over once it settles.
    Abandoned { reason: String },
    /// The video vanished before it could be read.
    Vanished,
    /// The same video is in flight for this account from another file; this one is
    /// looked at again when that job ends (it may still need publishing).
    WaitingForEarlier { reason: String },
    /// Another agent sharing the ledger works on this drop (it holds the lease, or took
    /// the job over): this agent leaves it, and takes it over only if that lease expires.
    Elsewhere { agent: String },
    /// Its post waits for the posting plan's slot (docs/posting-plan.md), uploaded first
    /// unless the upload is the post (TikTok). The agent brings the drop back at `until`,
    /// holding no permit meanwhile.
    Scheduled { until: SystemTime },
}

impl Outcome {
    /// Whether this agent keeps the drop's leases: it keeps the drop queued to try again
    /// itself. A drop held by a ledger error is not kept: another agent sharing the ledger
    /// may do better than one whose database connection failed.
    pub(crate) fn keeps_leases(&self) -> bool {
        match self {
            Outcome::Held { reason } => !reason.starts_with(LEDGER_ERROR),
            Outcome::WaitingForEarlier { .. } | Outcome::Scheduled { .. } => true,
            _ => false,
        }
    }

    /// One word for logs and events.
    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Published { .. } => "published",
            Outcome::Duplicate { .. } => "duplicate",
            Outcome::Failed(_) => "failed",
            Outcome::Held { .. } => "held",
            Outcome::Abandoned { .. } => "abandoned",
            Outcome::Vanished => "vanished",
            Outcome::WaitingForEarlier { .. } => "waiting",
            Outcome::Elsewhere { .. } => "elsewhere",
            Outcome::Scheduled { .. } => "scheduled",
        }
    }
}

/// Why the publish steps stopped.
enum Stop {
    Failed(JobFailure),
    Held(String),
    /// The account lost its right to post (login refused, a platform cap): pause it.
    Paused(Expired, String),
    Abandoned(String),
    Unconfirmed(String),
    Ledger(LedgerError),
    /// The post waits for its planned slot.
    Scheduled(SystemTime),
}

impl From<LedgerError> for Stop {
    fn from(e: LedgerError) -> Self {
        Stop::Ledger(e)
    }
}

/// Runs one bundle to its end. Never panics on bad input; every outcome is logged.
pub async fn run(ctx: &Context, bundle: Bundle) -> Outcome {
    let video = live_name(ctx, &bundle);
    let started = std::time::Instant::now();
    ctx.live.job_started(&video);
    let relative = ctx.relative(&bundle.video).to_path_buf();
    let outcome = run_job(ctx, bundle).await;
    // This agent's work on the drop is over unless it keeps it queued: its leases go, so
    // that another agent sharing the ledger may finish what is left (see `lease`).
    if !outcome.keeps_leases()
        && let Err(e) = ctx.ledger(move |l| l.release_drop(&relative)).await
    {
        warn!(reason = %e, "cannot give up the drop's leases; they expire on their own");
    }
    if matches!(outcome, Outcome::Published { .. }) {
        ctx.live.published(started.elapsed().as_secs_f64());
    }
    ctx.live.job_ended(&video, outcome.label());
    outcome
}

/// How the live state names a bundle: its path relative to the inbox.
fn live_name(ctx: &Context, bundle: &Bundle) -> String {
    ctx.relative(&bundle.video).to_string_lossy().into_owned()
}

/// Tells the live state which step the bundle's job is at.
fn at_step(ctx: &Context, bundle: &Bundle, step: &StepName) {
    at_stage(ctx, bundle, Stage::Step(step.clone()));
}

/// Tells the live state what the bundle's job is doing.
pub(super) fn at_stage(ctx: &Context, bundle: &Bundle, stage: Stage) {
    ctx.live
        .job_step(&live_name(ctx, bundle), &stage, None, None);
}

async fn run_job(ctx: &Context, bundle: Bundle) -> Outcome {
    let name = ctx.relative(&bundle.video).display().to_string();
    // Opened once, never through a link, and only if it is the file that settled: the
    // hash pass and every upload part read this one descriptor.
    let video = match VideoFile::open_async(bundle.settled.clone()).await {
        Ok(video) => video,
        Err(OpenError::Gone { .. }) => {
            info!(file = %name, "video vanished before it was read");
            return Outcome::Vanished;
        }
        Err(e @ OpenError::Changed { .. }) => {
            let reason = e.to_string();
            info!(file = %name, %reason, "the video is not the file that settled; it starts over once it settles");
            return Outcome::Abandoned { reason };
        }
        Err(OpenError::Io { source, .. }) => {
            let failure = JobFailure {
                step: None,
                class: FailureClass::Video,
                reason: format!("cannot read {name}: {source}"),
                hint: "Check the file's permissions, then move it back into the inbox.".into(),
            };
            warn!(file = %name, reason = %failure.reason, "cannot read video");
            return refuse(ctx, &bundle, failure).await;
        }
    };
    let part_size = ctx.config.upload.part_size;
    let fp = match hash::fingerprint_video_async(video.clone(), part_size).await {
        Ok(fp) => fp,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            info!(file = %name, "video vanished before it was read");
            return Outcome::Vanished;
        }
        Err(e) => {
            let failure = JobFailure {
                step: None,
                class: FailureClass::Video,
                reason: format!("cannot read {name}: {e}"),
                hint: "Check the file's permissions, then move it back into the inbox.".into(),
            };
            warn!(file = %name, reason = %failure.reason, "cannot read video");
            return refuse(ctx, &bundle, failure).await;
        }
    };
    if let Some(outcome) = finish_pending_for(ctx, &bundle.video).await {
        return outcome;
    }
    let span = info_span!("job", file = %name, hash = fp.sha256.short());
    run_hashed(ctx, bundle, video, fp).instrument(span).await
}

async fn run_hashed(ctx: &Context, bundle: Bundle, video: VideoFile, fp: Fingerprint) -> Outcome {
    if fp.size != bundle.settled.size {
        return Outcome::Abandoned {
            reason: "the video changed while it was being hashed".into(),
        };
    }
    info!(step = "hash", size = fp.size, "hashed");

    let caption_read = bundle.caption.as_deref().and_then(stamp);
    let (accounts, caption) = read_caption_and_route(ctx, &bundle).await;
    let several = accounts.len() > 1;
    let mut ended = Vec::new();
    let mut open = None;
    // One target after the other (design.md §8): each its own job, so a crash between
    // two leaves the first's post recorded and the second still to run.
    for account in &accounts {
        if let Some(owners) = served_elsewhere(ctx, account) {
            info!(%account, agents = %owners, "this account's videos are published by other agents (accounts.{account}.agents); leaving its target to them");
            open.get_or_insert(Outcome::Elsewhere { agent: owners });
            continue;
        }
        let turn = run_target(ctx, &bundle, &video, &fp, account, &caption);
        let turn = if several {
            turn.instrument(info_span!("target", account = %account))
                .await
        } else {
            turn.await
        };
        match turn {
            Turn::Ended(target) => ended.push(*target),
            Turn::Open(outcome @ Outcome::Abandoned { .. }) => return outcome,
            Turn::Open(outcome) => {
                open = Some(super::schedule::first_open(open, outcome));
            }
        }
    }
    if let Some(outcome) = open {
        if !ended.is_empty() {
            info!(
                ended = ended.len(),
                targets = accounts.len(),
                "the video stays in the inbox until every target has ended"
            );
        }
        return outcome;
    }
    if let Some(path) = &bundle.caption
        && stamp(path) != caption_read
        && ended.iter().any(Ended::posted)
    {
        info!(
            caption = %ctx.relative(path).display(),
            "the caption changed after publishing started; the post used the version read then (see the receipt); the edit is archived but not published"
        );
    }
    super::targets::archive(ctx, &bundle, ended).await
}

/// The agents named for `account` (`accounts.NAME.agents`) when this one is not among
/// them.
fn served_elsewhere(ctx: &Context, account: &str) -> Option<String> {
    let config = ctx.config.accounts.iter().find(|a| a.name == account)?;
    let me = ctx.agent_name();
    (!config.served_by(&me)).then(|| config.agents.join(", "))
}

/// One target of a bundle: its job claimed (or found ended), the caption checked for its
/// platform, and the publish steps run.
async fn run_target(
    ctx: &Context,
    bundle: &Bundle,
    video: &VideoFile,
    fp: &Fingerprint,
    account: &str,
    caption: &Result<Caption, String>,
) -> Turn {
    if let Some(ended) = super::targets::ended_before(ctx, bundle, fp, account).await {
        return Turn::Ended(Box::new(ended));
    }
    if let Some(waiting) = wait_for_earlier_copy(ctx, bundle, fp, account).await {
        return Turn::Open(waiting);
    }
    if let Some(gone) = finished_elsewhere(ctx, bundle) {
        return Turn::Open(gone);
    }
    let job = match claim_job(ctx, bundle, fp, account.to_owned()).await {
        Ok(Claimed::Job(job)) => job,
        Ok(Claimed::Duplicate { job, earlier }) => {
            return Turn::Ended(Box::new(super::targets::duplicate(job, *earlier)));
        }
        Err(outcome) => return Turn::Open(outcome),
    };
    let caption = match caption_for(ctx, caption, &job) {
        Ok(caption) => caption,
        Err(reason) => {
            warn!(step = "caption", %reason, "caption refused");
            return failed(ctx, job, JobFailure::caption(reason)).await;
        }
    };
    super::shared_pause::adopt(ctx, &job.account).await;
    let account = match usable_account(ctx, &job) {
        Ok(account) => account,
        Err(held) => return Turn::Open(held),
    };
    match publish(ctx, bundle, &job, caption, &account, video, fp).await {
        Ok((post, draft)) => Turn::Ended(Box::new(Ended {
            job,
            how: Ending::Published { draft, post },
        })),
        Err(stop) => stopped(ctx, &job, stop).await,
    }
}

/// With a shared inbox, another agent may have finished (and archived) this drop while
/// this one hashed it: a video that is no longer the file that settled is not claimed
/// (claiming it would record the drop as a duplicate of itself, whose files are gone).
fn finished_elsewhere(ctx: &Context, bundle: &Bundle) -> Option<Outcome> {
    if !ctx.config.ledger.is_shared() || unchanged(&bundle.settled) {
        return None;
    }
    if bundle.video.exists() {
        return Some(Outcome::Abandoned {
            reason: "the video changed before it was claimed".into(),
        });
    }
    info!("video vanished before it was claimed (another agent may have archived it)");
    Some(Outcome::Vanished)
}

/// Reads the caption and picks the accounts the video goes to. The caption is read now,
/// at the start of publishing: a caption edited while the video waited is read in its
/// final form. A caption that cannot be used is returned as the reason, so that each
/// target's job is recorded (under the accounts routing picks without it) before it fails.
async fn read_caption_and_route(
    ctx: &Context,
    bundle: &Bundle,
) -> (Vec<String>, Result<Caption, String>) {
    let now = OffsetDateTime::now_utc();
    let require_text = bundle.caption.is_some();
    let caption: Result<Caption, String> = match &bundle.caption {
        Some(path) => caption::load_caption_async(path, &ctx.config.defaults, require_text, now)
            .await
            .map_err(|e| e.to_string()),
        None => Caption::from_defaults(&ctx.config.defaults, now).map_err(|e| e.to_string()),
    };
    let configured: Vec<&str> = ctx
        .config
        .accounts
        .iter()
        .map(|a| a.name.as_str())
        .collect();
    let relative = ctx.relative(&bundle.video);
    let in_inbox = ctx.in_inbox(&bundle.video);
    let named = caption.as_ref().map_or(&[][..], |c| c.accounts.as_slice());
    let routed = in_inbox.then(|| ctx.config.routed(relative)).flatten();
    let accounts = match &bundle.rerun {
        Some(rerun) => vec![rerun.account.clone()],
        None => targets(relative, in_inbox, named, routed, &configured),
    };
    // An `account:` the config lacks fails the job, pointing at where it was written.
    let caption = caption.and_then(|c| {
        c.check_account(&configured)
            .map(|()| c)
            .map_err(|p| p.to_string())
    });
    (accounts, caption)
}

/// The caption as `job`'s platform takes it: refused where that platform cannot post it,
/// with one log line for the fields it has no place for.
fn caption_for<'c>(
    ctx: &Context,
    caption: &'c Result<Caption, String>,
    job: &JobRecord,
) -> Result<&'c Caption, String> {
    let caption = caption.as_ref().map_err(String::clone)?;
    let Some(platform) = ctx.accounts.get(&job.account).map(|a| a.platform) else {
        return Ok(caption);
    };
    caption.check_for(platform).map_err(|p| p.to_string())?;
    let ignored = caption.ignored_for(platform);
    if !ignored.is_empty() {
        info!(
            %platform,
            fields = ignored.join(", "),
            "caption fields this platform has no place for are left out of the post"
        );
    }
    Ok(caption)
}

/// The same video is being published for this account from another file (an earlier
/// copy still in flight, or resumed after a restart): wait for that job rather than
/// calling this one a duplicate now. The earlier one may yet fail, and then this copy
/// must be published; if it succeeds, this one's receipt can name its post.
async fn wait_for_earlier_copy(
    ctx: &Context,
    bundle: &Bundle,
    fp: &Fingerprint,
    account: &str,
) -> Option<Outcome> {
    let rel = ctx.relative(&bundle.video).to_path_buf();
    let (sha, account) = (fp.sha256.clone(), account.to_owned());
    let inbox = ctx.config.inbox.clone();
    let earlier = ctx
        .ledger(move |l| l.jobs_with_hash(&sha))
        .await
        .ok()
        .and_then(|jobs| {
            jobs.into_iter().find(|j| {
                j.account == account
                    && j.state == JobState::Active
                    && j.video != rel
                    && inbox.join(&j.video).exists()
            })
        })?;
    let reason = format!(
        "the same video is being published from {}; waiting for that job",
        earlier.video.display()
    );
    info!(step = "dedupe", %reason);
    Some(Outcome::WaitingForEarlier { reason })
}

/// What claiming a target's job gave.
enum Claimed {
    /// A new or resumed job, its attempt counted.
    Job(JobRecord),
    /// The account has this video already: `job` is recorded as its duplicate.
    Duplicate {
        job: JobRecord,
        earlier: Box<JobRecord>,
    },
}

/// Claims the ledger job for one target of the bundle (new, resumed, or a duplicate) and
/// counts the attempt; `Err` is how the target stays open instead.
async fn claim_job(
    ctx: &Context,
    bundle: &Bundle,
    fp: &Fingerprint,
    account: String,
) -> Result<Claimed, Outcome> {
    let Some(platform) = ctx.accounts.get(&account).map(|a| a.platform) else {
        return Err(Outcome::Held {
            reason: format!("account `{account}` is not configured"),
        });
    };
    let new = NewJob {
        sha256: fp.sha256.clone(),
        account,
        platform,
        video: ctx.relative(&bundle.video).to_path_buf(),
        caption: bundle
            .caption
            .as_deref()
            .map(|c| ctx.relative(c).to_path_buf()),
        size: fp.size,
    };
    let job = match ledger_claim(ctx, new).await? {
        Claim::Duplicate { job, earlier } => {
            return Ok(Claimed::Duplicate {
                job,
                earlier: Box::new(earlier),
            });
        }
        Claim::New(job) => {
            info!(step = "ledger", job = job.id, account = %job.account, "new job");
            job
        }
        Claim::Resume(job) => {
            info!(
                step = "ledger",
                job = job.id,
                state = job.state.as_str(),
                fence = job.lease.fence,
                "resuming job"
            );
            job
        }
        Claim::Held { job, holder } => {
            info!(step = "ledger", job = job.id, agent = %holder, "another agent works on this job; leaving it");
            return Err(Outcome::Elsewhere { agent: holder });
        }
    };

    ctx.live.job_step(
        &live_name(ctx, bundle),
        &Stage::Ledger,
        Some(job.sha256.as_str()),
        Some(&job.account),
    );
    let id = job.id;
    let counts = matches!(job.state, JobState::Active | JobState::Unconfirmed);
    if counts && let Err(e) = ctx.ledger(move |l| l.bump_attempts(id)).await {
        error!(reason = %e, "ledger error; the video stays in the inbox");
        return Err(Outcome::Held {
            reason: format!("{LEDGER_ERROR}{e}"),
        });
    }
    Ok(Claimed::Job(job))
}

/// Asks the ledger for the job (`publish.duplicates` decides whether a published video is
/// a duplicate); a ledger that cannot answer holds the video in the inbox.
async fn ledger_claim(ctx: &Context, new: NewJob) -> Result<Claim, Outcome> {
    let allow = matches!(
        ctx.config.publish.duplicates,
        crate::config::DuplicatePolicy::Allow
    );
    ctx.ledger(move |l| l.claim(&new, allow))
        .await
        .map_err(|e| {
            error!(reason = %e, "ledger error; the video stays in the inbox");
            Outcome::Held {
                reason: format!("{LEDGER_ERROR}{e}"),
            }
        })
}

/// The job's account, unless it is not configured or paused (then nothing is sent and
/// the video stays queued).
fn usable_account(ctx: &Context, job: &JobRecord) -> Result<AccountRef, Outcome> {
    let Some(account) = ctx.accounts.get(&job.account) else {
        return Err(Outcome::Held {
            reason: format!("account `{}` is not configured", job.account),
        });
    };
    if let Some(pause) = ctx.accounts.paused(&job.account) {
        return Err(Outcome::Held {
            reason: format!("account `{}` is paused: {}", job.account, pause.reason),
        });
    }
    Ok(account)
}

/// How a target ends when its publish steps stopped short of a post: the ledger and the
/// account's pause are updated; a failure ends the target, anything else keeps the
/// bundle in the inbox.
async fn stopped(ctx: &Context, job: &JobRecord, stop: Stop) -> Turn {
    let outcome = match stop {
        Stop::Failed(failure) => return failed(ctx, job.clone(), failure).await,
        Stop::Held(reason) => {
            warn!(%reason, "job held; the video stays in the inbox and is tried again later");
            Outcome::Held { reason }
        }
        Stop::Paused(what, reason) => {
            if ctx.accounts.pause(&job.account, &reason) {
                let fix = match what {
                    Expired::Posting => {
                        "nothing to do: it resumes once the platform lets it post".to_owned()
                    }
                    _ => ctx.accounts.renew_hint(&job.account),
                };
                super::shared_pause::publish(ctx, &job.account, &reason, &fix).await;
                error!(
                    account = %job.account,
                    %reason,
                    "The account is paused: its videos stay queued in the inbox. To fix: {fix}. dropcast also re-checks the account every minute and resumes it once it works."
                );
            }
            Outcome::Held {
                reason: format!("account `{}` paused: {reason}", job.account),
            }
        }
        Stop::Unconfirmed(reason) => {
            error!(%reason, "publish outcome unknown and could not be checked; parked as unconfirmed, never re-sent on its own");
            let id = job.id;
            let r = reason.clone();
            if let Err(e) = ctx.ledger(move |l| l.mark_unconfirmed(id, &r)).await {
                error!(reason = %e, "ledger error");
            }
            Outcome::Held { reason }
        }
        Stop::Abandoned(reason) => {
            warn!(%reason, "job abandoned; it starts over once the video settles again");
            let id = job.id;
            let r = reason.clone();
            if let Err(e) = ctx.ledger(move |l| l.mark_abandoned(id, &r)).await {
                error!(reason = %e, "ledger error");
            }
            Outcome::Abandoned { reason }
        }
        Stop::Ledger(LedgerError::LeaseLost { holder, .. }) => {
            warn!(agent = %holder, job = job.id, "another agent took this job over while this one was away; leaving it and its files alone");
            Outcome::Elsewhere { agent: holder }
        }
        Stop::Scheduled(until) => Outcome::Scheduled { until },
        Stop::Ledger(e) => {
            error!(reason = %e, "ledger error; the video stays in the inbox");
            Outcome::Held {
                reason: format!("{LEDGER_ERROR}{e}"),
            }
        }
    };
    Turn::Open(outcome)
}

/// The account a video goes to when neither its caption nor `routes:` names any: an
/// inbox subfolder named after an account (`inbox/<account>/…`), else the first account.
/// `relative` is the video's path relative to the inbox.
fn route(relative: &Path, in_inbox: bool, configured: &[&str]) -> String {
    let known = |name: &str| configured.contains(&name);
    let mut parts = relative.components();
    let first = parts.next().and_then(|c| c.as_os_str().to_str());
    let in_subfolder = parts.next().is_some();
    match first {
        Some(folder) if in_inbox && in_subfolder && known(folder) => folder.to_string(),
        _ => configured.first().copied().unwrap_or_default().to_string(),
    }
}

/// The accounts a video goes to (design.md §8): those its caption names that the config
/// has; else, in the inbox, its `routes:` folder's; else the one [`route`] picks.
fn targets(
    relative: &Path,
    in_inbox: bool,
    named: &[String],
    routed: Option<&[String]>,
    configured: &[&str],
) -> Vec<String> {
    let known: Vec<String> = named
        .iter()
        .filter(|n| configured.contains(&n.as_str()))
        .cloned()
        .collect();
    if !known.is_empty() {
        return known;
    }
    if let Some(routed) = routed.filter(|_| in_inbox) {
        return routed.to_vec();
    }
    vec![route(relative, in_inbox, configured)]
}

/// The publish steps, resuming from what the ledger already holds: the backend brings the
/// video to a committed upload, then the post is sent behind the fence. Returns the post
/// and the draft that was sent.
async fn publish(
    ctx: &Context,
    bundle: &Bundle,
    job: &JobRecord,
    caption: &Caption,
    account: &AccountRef,
    video: &VideoFile,
    fp: &Fingerprint,
) -> Result<(Post, PostDraft), Stop> {
    if let Some(post) = &job.post {
        info!(step = "publish", post_id = %post.id, "already published; archiving");
        return Ok((post.clone(), sent_draft(caption)));
    }
    if crate::platform::posts_with_upload(account.platform) && job.steps.is_empty() {
        // Its upload is the post: a planned slot is kept before a byte goes.
        let draft = sent_draft(caption);
        let slot = super::schedule::slot_for(ctx, job, account.platform, draft).await?;
        if let super::schedule::Slot::WaitUntil(at) = slot {
            return Err(Stop::Scheduled(at));
        }
    }
    let upload = upload(ctx, bundle, job, account, video, fp, &sent_draft(caption)).await?;
    let publish = Publish {
        ctx,
        id: job.id,
        account,
        upload: &upload,
    };
    if job.posted_without_id() {
        // The platform said this video is published; only its post id is missing.
        let since = job
            .steps
            .get(&StepName::PUBLISH)
            .map_or_else(SystemTime::now, |s| s.at);
        let draft = sent_draft(caption);
        return match publish.reconcile(since, &draft).await? {
            Some(post) => Ok((post, draft)),
            None => Err(Stop::Held(ID_NOT_LISTED.into())),
        };
    }
    let draft = draft_for(ctx, caption, account).await?;
    // A previous run marked the post as sent but never saw its answer: ask the platform,
    // reading its list for the whole reconcile window from that send. (Read again: a
    // backend voids, mark included, an upload its platform says can never post.)
    let id = job.id;
    let now = ctx.ledger(move |l| l.job(id)).await?;
    let sent_at = now.as_ref().and_then(|j| j.publish_sent_at);
    let sent_by = now.and_then(|j| j.publish_sent_by);
    if sent_at.is_some() || job.state == JobState::Unconfirmed {
        let sent_at = sent_at.unwrap_or_else(SystemTime::now);
        if let Some(post) = publish.reconcile(sent_at, &draft).await? {
            return Ok((post, draft));
        }
        if job.state == JobState::Unconfirmed {
            // Parked: never sent again on its own, only after `dropcast retry`.
            return Err(Stop::Unconfirmed(format!(
                "still no post with our video; `dropcast retry {}` sends it again",
                job.sha256.short()
            )));
        }
        if let Some(other) = sent_by.filter(|by| *by != ctx.agent_name()) {
            // That agent may be alive, stopped past its lease, and still about to send:
            // only a person who looked at the account may say to send again.
            return Err(Stop::Unconfirmed(format!(
                "agent `{other}` sent this post and lost the job before its answer came; no post with our video appeared, but that agent may still send it, so dropcast does not send it again on its own. Check the account's posts, then `dropcast retry {}` sends it again",
                job.sha256.short()
            )));
        }
        info!(
            step = "publish",
            "no post with our upload appeared in the account's list; sending it now"
        );
    }
    let draft = match super::schedule::slot_for(ctx, job, account.platform, draft).await? {
        super::schedule::Slot::Go(draft) => *draft,
        super::schedule::Slot::WaitUntil(at) => return Err(Stop::Scheduled(at)),
    };
    at_step(ctx, bundle, &StepName::PUBLISH);
    let post = publish.send(&bundle.settled, &draft).await?;
    Ok((post, draft))
}

/// The post to send: the caption with the platform's ids for its hashtags.
async fn draft_for(
    ctx: &Context,
    caption: &Caption,
    account: &AccountRef,
) -> Result<PostDraft, Stop> {
    let hashtags: Vec<(String, Option<String>)> = caption
        .hashtags()
        .map(|h| (h.to_string(), caption.challenges.get(h).cloned()))
        .collect();
    let tag_ids = account
        .backend
        .tag_ids(&account.account, &hashtags)
        .await
        .map_err(|e| stop(ctx, StepName::PUBLISH, e))?;
    Ok(caption.to_draft(tag_ids))
}

/// The draft of a post that exists already: the caption's own tag ids (nothing is looked
/// up for a post that is not sent again).
fn sent_draft(caption: &Caption) -> PostDraft {
    let known = caption
        .hashtags()
        .filter_map(|h| caption.challenges.get(h).cloned())
        .collect();
    caption.to_draft(known)
}

/// Hands the video to the account's backend until its upload is committed (at once when a
/// commit is recorded), logging progress while it lasts.
async fn upload(
    ctx: &Context,
    bundle: &Bundle,
    job: &JobRecord,
    account: &AccountRef,
    video: &VideoFile,
    fp: &Fingerprint,
    draft: &PostDraft,
) -> Result<Committed, Stop> {
    let Some(ledger) = ctx.ledger.clone() else {
        return Err(Stop::Held("this command did not open the ledger".into()));
    };
    super::limits::check(account.platform, video)
        .await
        .map_err(Stop::Failed)?;
    let checkpoints = Checkpoints::new(ledger, job.id, account.backend.steps());
    let name = live_name(ctx, bundle);
    let progress = ctx.live.progress(&name);
    let observer = JobObserver { ctx, name };
    let upload = account.backend.upload(UploadJob {
        account: &account.account,
        video,
        fingerprint: fp,
        checkpoints: &checkpoints,
        observer: &observer,
        progress: &progress,
        cover_image: draft.cover_image.as_deref(),
        draft: Some(draft),
    });
    let failure = match log_progress(upload, &progress, std::time::Instant::now()).await {
        Ok(committed) => return Ok(committed),
        Err(failure) => failure,
    };
    // A checkpoint write refused because another agent took the job over reaches us as
    // a step's failure: the job is the other agent's now, not held here.
    let id = job.id;
    if let Ok(Some(holder)) = ctx.ledger(move |l| l.lost_to(id)).await {
        return Err(Stop::Ledger(LedgerError::LeaseLost { id, holder }));
    }
    match failure {
        // The bytes sent were not the ones hashed, or the platform refused them and the
        // file is no longer the one that settled: an edit, not a refusal. Start over.
        StepFailure { step, error }
            if matches!(error, PublishError::Changed { .. }) || !unchanged(&bundle.settled) =>
        {
            Err(Stop::Abandoned(format!(
                "the video changed while it was being uploaded ({step}: {error})"
            )))
        }
        StepFailure { step, error } => Err(stop(ctx, step, error)),
    }
}

/// Tells the live state what the backend is doing for one job.
struct JobObserver<'a> {
    ctx: &'a Context,
    /// The video, as the live state names it.
    name: String,
}

impl Observer for JobObserver<'_> {
    fn step(&self, step: &StepName) {
        self.ctx
            .live
            .job_step(&self.name, &Stage::Step(step.clone()), None, None);
    }

    fn uploaded(&self, bytes: u64, secs: f64) {
        self.ctx.live.uploaded(bytes, secs);
    }
}

/// Why a job that posted is held: the platform said so, but its post list does not show
/// the post yet, so its id (for the receipt) is still unknown.
const ID_NOT_LISTED: &str = "published (the platform says this video already has a post), but the post is not in the account's list yet; its address is looked up again on the next scan, and the video is never sent again";

/// How long after a publish request the account's post list is read before a post that
/// is not in it counts as not made (ours): lists lag behind new posts, and absence from
/// one read is no proof.
const RECONCILE_WINDOW: Duration = Duration::from_secs(30);
/// The first wait between two reads of the list; it doubles up to [`RECONCILE_MAX_WAIT`].
const RECONCILE_FIRST_WAIT: Duration = Duration::from_secs(1);
const RECONCILE_MAX_WAIT: Duration = Duration::from_secs(8);
/// Reads of the list, at least, before absence counts (even long after the send).
const RECONCILE_MIN_READS: u32 = 2;
/// Sends without an answer (and without a post found after each) before the job is
/// parked as unconfirmed.
const MAX_UNANSWERED_SENDS: u32 = 3;

/// Sending one job's post, and finding out whether it exists.
struct Publish<'a> {
    ctx: &'a Context,
    id: JobId,
    account: &'a AccountRef,
    upload: &'a Committed,
}

impl Publish<'_> {
    /// Sends the post behind the fence: the video is checked unchanged, the account's
    /// interval kept, the archive folders checked, and the send recorded in the ledger
    /// before it goes. A lost answer is reconciled, never blindly repeated.
    async fn send(&self, settled: &Settled, draft: &PostDraft) -> Result<Post, Stop> {
        let (ctx, id) = (self.ctx, self.id);
        let publish_at = draft.publish_at;
        ctx.ledger(move |l| l.set_publish_at(id, publish_at))
            .await?;
        let mut sends = 0;
        loop {
            if !unchanged(settled) {
                return Err(Stop::Abandoned(
                    "the video changed while it was being published".into(),
                ));
            }
            super::pacing::wait_post_slot(ctx, &self.account.account.name).await;
            super::folders::ready_to_publish(ctx)
                .await
                .map_err(Stop::Held)?;
            ctx.ledger(move |l| l.mark_publish_sent(id)).await?;
            let sent_at = SystemTime::now();
            sends += 1;
            let account = &self.account.account;
            match self
                .account
                .backend
                .publish(account, self.upload, draft)
                .await
            {
                Ok(Created::Posted(post)) => {
                    failpoint::hit("after_request:publish");
                    let recorded = post.clone();
                    ctx.ledger(move |l| l.mark_published(id, &recorded)).await?;
                    info!(step = "publish", post_id = %post.id, url = %post, "published");
                    return Ok(post);
                }
                Ok(Created::AlreadyPublished) => {
                    return self.already_published(sent_at, draft).await;
                }
                Err(PublishError::Unknown { reason }) => {
                    warn!(step = "publish", %reason, "no answer to the publish request; checking the account's posts");
                    if let Some(post) = self.reconcile(sent_at, draft).await? {
                        return Ok(post);
                    }
                    if sends >= MAX_UNANSWERED_SENDS {
                        return Err(Stop::Unconfirmed(format!(
                            "no answer to {sends} publish requests and no post found: {reason}"
                        )));
                    }
                    info!(
                        step = "publish",
                        "no post with our upload appeared in the account's list; sending it again"
                    );
                }
                Err(e) => return Err(stop(ctx, StepName::PUBLISH, e)),
            }
        }
    }

    /// The platform says the upload already has a post: an earlier send whose answer was
    /// lost did post. Finds its id, or records that it posted and holds the job.
    async fn already_published(
        &self,
        sent_at: SystemTime,
        draft: &PostDraft,
    ) -> Result<Post, Stop> {
        info!(
            step = "publish",
            "the platform says this video is already published; looking for its post"
        );
        if let Some(post) = self.reconcile(sent_at, draft).await? {
            return Ok(post);
        }
        let id = self.id;
        self.ctx
            .ledger(move |l| l.mark_posted_without_id(id))
            .await?;
        warn!(step = "publish", "{ID_NOT_LISTED}");
        Err(Stop::Held(ID_NOT_LISTED.into()))
    }

    /// Asks the platform whether a post of our upload exists, reading the account's list
    /// with backoff until [`RECONCILE_WINDOW`] has passed since `since` (the send) and it
    /// was read at least [`RECONCILE_MIN_READS`] times. A post found is recorded. A list
    /// that cannot tell either way (`Unknown`, e.g. it does not name uploads and no post
    /// has our text) is read for the whole window too, then the job is unconfirmed: never
    /// re-sent on its own.
    async fn reconcile(&self, since: SystemTime, draft: &PostDraft) -> Result<Option<Post>, Stop> {
        let started = std::time::Instant::now();
        let mut wait = RECONCILE_FIRST_WAIT;
        let mut reads = 0u32;
        let account = &self.account.account;
        loop {
            let undecided = match self
                .account
                .backend
                .find_post(account, self.upload, draft, since)
                .await
            {
                Ok(Some(post)) => {
                    let (id, recorded) = (self.id, post.clone());
                    self.ctx
                        .ledger(move |l| l.mark_published(id, &recorded))
                        .await?;
                    info!(step = "publish", post_id = %post.id, reads = reads + 1, "reconciled: the post exists");
                    return Ok(Some(post));
                }
                Ok(None) => None,
                Err(PublishError::Unknown { reason }) => Some(reason),
                Err(e) => {
                    return Err(Stop::Unconfirmed(format!(
                        "cannot list the account's posts to check: {e}"
                    )));
                }
            };
            reads += 1;
            // Wall clock from the send (which may be from an earlier run), but never less
            // than this process has itself waited, whatever the wall clock does.
            let waited = SystemTime::now()
                .duration_since(since)
                .unwrap_or_default()
                .max(started.elapsed());
            if reads >= RECONCILE_MIN_READS && waited >= RECONCILE_WINDOW {
                if let Some(reason) = undecided {
                    return Err(Stop::Unconfirmed(format!(
                        "the account's posts cannot show whether ours exists: {reason}"
                    )));
                }
                info!(step = "publish", reads, media = %self.upload.media(), "no post of our upload in the account's list");
                return Ok(None);
            }
            if reads == 1 {
                info!(
                    step = "publish",
                    window = %humantime::format_duration(RECONCILE_WINDOW),
                    "our post is not in the account's list (yet); lists lag, so it is read again before anything is re-sent"
                );
            }
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(RECONCILE_MAX_WAIT);
        }
    }
}

/// How often a long upload says how far it is.
const PROGRESS_LOG_EVERY: Duration = Duration::from_secs(10);

/// Runs `upload`, logging a progress line (percent, MiB/s, time left) every ten seconds
/// while it lasts.
async fn log_progress<T>(
    upload: impl std::future::Future<Output = T>,
    progress: &Progress,
    started: std::time::Instant,
) -> T {
    tokio::pin!(upload);
    let mut tick = tokio::time::interval_at(
        tokio::time::Instant::now() + PROGRESS_LOG_EVERY,
        PROGRESS_LOG_EVERY,
    );
    loop {
        tokio::select! {
            out = &mut upload => return out,
            _ = tick.tick() => {
                let (done, total) = (progress.done(), progress.total().max(1));
                let secs = started.elapsed().as_secs_f64().max(1e-6);
                let rate = done as f64 / secs;
                let left = if rate > 0.0 { (total.saturating_sub(done)) as f64 / rate } else { f64::INFINITY };
                info!(
                    step = "upload",
                    percent = format!("{:.0}", done as f64 * 100.0 / total as f64),
                    mib_per_s = format!("{:.1}", rate / 1048576.0),
                    eta = %humantime::format_duration(Duration::from_secs(left.min(1e7) as u64)),
                    "uploading"
                );
            }
        }
    }
}

/// Counts the error for `/metrics`, then [`stop_for`].
fn stop(ctx: &Context, step: StepName, e: PublishError) -> Stop {
    ctx.live.error(e.class());
    stop_for(step, e)
}

/// What a platform error means for the job (its class, see [`PublishError`]).
fn stop_for(step: StepName, e: PublishError) -> Stop {
    match &e {
        PublishError::Rejected { .. } => Stop::Failed(JobFailure::from_publish(step, &e)),
        PublishError::AuthExpired { what, .. } if what.pauses_account() => {
            Stop::Paused(*what, format!("{step}: {e}"))
        }
        PublishError::AuthExpired { .. } => Stop::Failed(JobFailure::from_publish(step, &e)),
        PublishError::Transient { .. } | PublishError::RateLimited { .. } => {
            Stop::Held(format!("{step}: {e}"))
        }
        PublishError::Unknown { reason } => Stop::Unconfirmed(format!("{step}: {reason}")),
        PublishError::Changed { reason } => Stop::Abandoned(format!("{step}: {reason}")),
    }
}

pub(super) fn unchanged(settled: &Settled) -> bool {
    watch::unchanged(settled).unwrap_or(false)
}

/// Records a target's failure in the ledger; the target has ended (its files move with
/// the bundle's), unless the ledger cannot say so.
async fn failed(ctx: &Context, job: JobRecord, failure: JobFailure) -> Turn {
    let id = job.id;
    let (step, class, reason) = (
        failure.step.clone(),
        failure.class.clone(),
        failure.reason.clone(),
    );
    if let Err(e) = ctx
        .ledger(move |l| l.mark_failed(id, step.as_ref(), class.as_str(), &reason))
        .await
    {
        error!(reason = %e, "ledger error; the video stays in the inbox");
        return Turn::Open(Outcome::Held {
            reason: format!("{LEDGER_ERROR}{e}"),
        });
    }
    Turn::Ended(Box::new(Ended {
        job,
        how: Ending::Failed(failure),
    }))
}

/// A video that could not even be hashed (or cannot be a video at all): no ledger job can
/// name it, so only the receipt says why it was moved.
pub async fn refuse(ctx: &Context, bundle: &Bundle, failure: JobFailure) -> Outcome {
    let receipt = receipt::FailureReceipt::new(
        None,
        ctx.relative(&bundle.video),
        failure.step.clone(),
        failure.class.as_str(),
        &failure.reason,
        &failure.hint,
    );
    crate::notify::refused::enqueue(ctx, &bundle.video, &failure).await;
    move_failed(ctx, bundle, None, receipt, failure).await
}

async fn move_failed(
    ctx: &Context,
    bundle: &Bundle,
    job: Option<i64>,
    receipt: receipt::FailureReceipt,
    failure: JobFailure,
) -> Outcome {
    if !ctx.in_inbox(&bundle.video) {
        return Outcome::Failed(failure);
    }
    let jobs: Vec<i64> = job.into_iter().collect();
    match archive_bundle(ctx, bundle, &jobs, Destination::Failed, receipt).await {
        Ok(archived) => {
            warn!(step = "archive", to = %archived.video.display(), reason = %failure.reason, "failed; moved to failed/");
            Outcome::Failed(failure)
        }
        Err(held) => held,
    }
}

/// Size and mtime of a file, to notice edits.
fn stamp(path: &Path) -> Option<(u64, std::time::SystemTime)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.len(), meta.modified().ok()?))
}

/// Moves the bundle with its receipt, off the async threads, crash-safely: for ledger
/// jobs (one per target) the plan (the names chosen, the receipt's text) is committed to
/// every one of them first, then carried out, and a restart that finds the plan
/// unfinished finishes it. A move that cannot be made leaves the files in the inbox and
/// holds the job, to be tried again later.
pub(super) async fn archive_bundle<R>(
    ctx: &Context,
    bundle: &Bundle,
    jobs: &[i64],
    dest: Destination,
    receipt: R,
) -> Result<Archived, Outcome>
where
    R: serde::Serialize + Send + Sync + 'static,
{
    let held = |reason: String| {
        error!(%reason, "cannot archive; the files stay in the inbox and the move is tried again later");
        Outcome::Held { reason }
    };
    let Some(&id) = jobs.first() else {
        let folders = ctx.folders.clone();
        let (video, caption) = (bundle.video.clone(), bundle.caption.clone());
        return blocking(move || {
            archive::archive(&folders, dest, &video, caption.as_deref(), &receipt)
        })
        .await
        .map_err(held);
    };
    // An earlier run may have planned this archive already: finish that plan.
    let mut plan: Option<ArchivePlan> = match ctx.ledger(move |l| l.archive_plan(id)).await {
        Ok(Some(value)) => serde_json::from_value(value).ok(),
        Ok(None) => None,
        Err(e) => return Err(held(format!("{LEDGER_ERROR}{e}"))),
    };
    let receipt = Arc::new(receipt);
    for _ in 0..5 {
        let current = match plan.take() {
            Some(plan) => plan,
            None => plan_archive(ctx, bundle, jobs, dest, Arc::clone(&receipt))
                .await
                .map_err(held)?,
        };
        match tokio::task::spawn_blocking(move || archive::execute(&current)).await {
            Ok(Ok(archived)) => {
                finish_archive(ctx, jobs.to_vec(), &archived).await;
                return Ok(archived);
            }
            // A name was taken before anything moved: choose again.
            Ok(Err(archive::ArchiveError::Taken(_))) => continue,
            Ok(Err(e)) => return Err(held(format!("archive: {e}"))),
            Err(e) => return Err(held(format!("archive task: {e}"))),
        }
    }
    Err(held(
        "archive: every name chosen was taken meanwhile".into(),
    ))
}

/// Chooses the archive's names and writes the receipt's text into a plan, and commits
/// the plan to the ledger before anything moves; `Err` is the hold reason.
async fn plan_archive<R>(
    ctx: &Context,
    bundle: &Bundle,
    jobs: &[i64],
    dest: Destination,
    receipt: Arc<R>,
) -> Result<ArchivePlan, String>
where
    R: serde::Serialize + Send + Sync + 'static,
{
    let folders = ctx.folders.clone();
    let (video, caption) = (bundle.video.clone(), bundle.caption.clone());
    let new =
        blocking(move || archive::plan(&folders, dest, &video, caption.as_deref(), &*receipt))
            .await?;
    let value = serde_json::to_value(&new).map_err(|e| format!("archive plan: {e}"))?;
    let jobs = jobs.to_vec();
    ctx.ledger(move |l| l.set_archive_plan_for(&jobs, &value))
        .await
        .map_err(|e| format!("{LEDGER_ERROR}{e}"))?;
    Ok(new)
}

/// Runs an archive step off the async threads; errors become the hold reason.
async fn blocking<T, F>(f: F) -> Result<T, String>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, archive::ArchiveError> + Send + 'static,
{
    match tokio::task::spawn_blocking(f).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(format!("archive: {e}")),
        Err(e) => Err(format!("archive task: {e}")),
    }
}

/// Records in the ledger that the archive of these jobs' bundle is complete.
async fn finish_archive(ctx: &Context, jobs: Vec<i64>, archived: &Archived) {
    let to = archived.video.clone();
    let result = ctx
        .ledger(move |l| jobs.iter().try_for_each(|&id| l.mark_archived(id, &to)))
        .await;
    if let Err(e) = result {
        error!(reason = %e, "ledger error after archiving");
    }
}

/// If an earlier run planned to archive this very video and did not finish (the
/// destination was not writable, say), finishes that instead of starting a new job: a
/// failed job's video must reach `failed/`, not be published again.
async fn finish_pending_for(ctx: &Context, video: &Path) -> Option<Outcome> {
    let pending = ctx.ledger(|l| l.pending_archives()).await.ok()?;
    // Every target of the bundle holds the same plan.
    let mut jobs: Vec<(JobRecord, ArchivePlan)> = pending
        .into_iter()
        .filter_map(|(job, value)| {
            let plan: ArchivePlan = serde_json::from_value(value).ok()?;
            (plan.moves.last()?.from == video).then_some((job, plan))
        })
        .collect();
    let (job, plan) = jobs.first().cloned()?;
    let ids: Vec<i64> = jobs.drain(..).map(|(j, _)| j.id).collect();
    let dest = plan.dest;
    info!(job = job.id, "finishing the archive an earlier run started");
    match tokio::task::spawn_blocking(move || archive::execute(&plan)).await {
        Ok(Ok(archived)) => {
            finish_archive(ctx, ids, &archived).await;
            let url = job.post.as_ref().map(ToString::to_string);
            Some(match dest {
                Destination::Done => Outcome::Published {
                    url: url.unwrap_or_default(),
                },
                Destination::Duplicates => Outcome::Duplicate { earlier: None },
                Destination::Failed => Outcome::Failed(JobFailure::earlier(&job)),
            })
        }
        Ok(Err(e)) => Some(Outcome::Held {
            reason: format!("archive: {e}"),
        }),
        Err(e) => Some(Outcome::Held {
            reason: format!("archive task: {e}"),
        }),
    }
}

/// One try at an archive that was planned but not finished.
#[derive(Debug)]
pub(crate) struct ArchiveAttempt {
    /// The video the plan moves (where it lies in the inbox).
    pub video: PathBuf,
    pub job: i64,
    pub dest: Destination,
    /// Where the video went, or why it could not go yet.
    pub result: Result<PathBuf, String>,
}

/// Finishes every archive an earlier run planned but did not complete (a crash or a power
/// cut in the middle of moving files, a full or unwritable archive folder). Returns what
/// happened to each.
pub(crate) async fn recover_archives(ctx: &Context) -> Vec<ArchiveAttempt> {
    finish_pending_archives(ctx, &std::collections::HashSet::new()).await
}

/// Tries every unfinished archive plan again, except those whose video is in `skip` (a
/// job working on it right now finishes its own plan). The running agent calls this with
/// backoff until each one is done.
pub(crate) async fn finish_pending_archives(
    ctx: &Context,
    skip: &std::collections::HashSet<PathBuf>,
) -> Vec<ArchiveAttempt> {
    let pending = match ctx.ledger(|l| l.pending_archives()).await {
        Ok(pending) => pending,
        Err(e) => {
            error!(reason = %e, "cannot list unfinished archives");
            return Vec::new();
        }
    };
    let mut attempts = Vec::new();
    for (job, value) in pending {
        let plan: ArchivePlan = match serde_json::from_value(value) {
            Ok(plan) => plan,
            Err(e) => {
                error!(job = job.id, reason = %e, "unreadable archive plan in the ledger");
                continue;
            }
        };
        let Some(video) = plan.moves.last().map(|m| m.from.clone()) else {
            continue;
        };
        if skip.contains(&video) {
            continue;
        }
        let dest = plan.dest;
        let result = match blocking(move || archive::execute(&plan)).await {
            Ok(archived) => {
                finish_archive(ctx, vec![job.id], &archived).await;
                info!(job = job.id, to = %archived.video.display(), "finished an archive that could not be finished before");
                Ok(archived.video)
            }
            Err(reason) => {
                debug!(job = job.id, %reason, "cannot finish an archive yet");
                Err(reason)
            }
        };
        attempts.push(ArchiveAttempt {
            video,
            job: job.id,
            dest,
            result,
        });
    }
    attempts
}

#[cfg(test)]
mod tests {
    use super::*;

    const ACCOUNTS: &[&str] = &["main", "studio", "global"];

    fn routed(relative: &str, in_inbox: bool, caption: Option<&str>) -> String {
        let named: Vec<String> = caption.map(str::to_owned).into_iter().collect();
        let all = targets(Path::new(relative), in_inbox, &named, None, ACCOUNTS);
        assert_eq!(all.len(), 1, "{all:?}");
        all[0].clone()
    }

    #[test]
    fn the_caption_account_wins_then_the_subfolder_then_the_first_account() {
        assert_eq!(routed("studio/clip.mp4", true, Some("global")), "global");
        assert_eq!(routed("studio/clip.mp4", true, None), "studio");
        assert_eq!(routed("studio/deep/clip.mp4", true, None), "studio");
        assert_eq!(routed("clip.mp4", true, None), "main");
        // A folder that is no account's, or a file named like an account, routes nowhere.
        assert_eq!(routed("holiday/clip.mp4", true, None), "main");
        assert_eq!(routed("studio", true, None), "main");
        // Outside the inbox the path means nothing.
        assert_eq!(routed("/tmp/studio/clip.mp4", false, None), "main");
        // An account the config lacks is the caption's error; the job goes by the rest.
        assert_eq!(routed("studio/clip.mp4", true, Some("nope")), "studio");
        assert_eq!(routed("clip.mp4", true, Some("nope")), "main");
    }

    #[test]
    fn a_caption_list_wins_then_routes_then_the_single_route() {
        let owned = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let both = owned(&["studio", "global"]);
        let at = |rel: &str, inbox: bool, named: &[&str], routes: Option<&[String]>| {
            targets(Path::new(rel), inbox, &owned(named), routes, ACCOUNTS)
        };
        assert_eq!(
            at("a/clip.mp4", true, &["global", "main"], Some(&both)),
            ["global", "main"]
        );
        // Names the config lacks are the caption's error; the rest still go.
        assert_eq!(at("clip.mp4", true, &["nope", "studio"], None), ["studio"]);
        assert_eq!(at("a/clip.mp4", true, &[], Some(&both)), both);
        assert_eq!(at("a/clip.mp4", true, &["nope"], Some(&both)), both);
        // Outside the inbox a route's folder means nothing.
        assert_eq!(at("/x/a/clip.mp4", false, &[], Some(&both)), ["main"]);
        assert_eq!(at("studio/clip.mp4", true, &[], None), ["studio"]);
    }

    fn stop_kind(e: PublishError) -> &'static str {
        match stop_for(StepName::of("upload"), e) {
            Stop::Failed(_) => "failed",
            Stop::Held(_) => "held",
            Stop::Paused(..) => "pause account",
            Stop::Abandoned(_) => "abandoned",
            Stop::Unconfirmed(_) => "unconfirmed",
            Stop::Ledger(_) => "ledger",
            Stop::Scheduled(_) => "scheduled",
        }
    }

    #[test]
    fn each_error_class_ends_the_job_its_own_way() {
        let reason = || "r".to_string();
        assert_eq!(
            stop_kind(PublishError::Rejected { reason: reason() }),
            "failed"
        );
        assert_eq!(
            stop_kind(PublishError::AuthExpired {
                what: Expired::Cookie,
                reason: reason()
            }),
            "pause account"
        );
        // Issue 12: a refused TikTok authorization or a daily cap paused the account too,
        // but every message about it spoke of a cookie.
        for what in [Expired::Authorization, Expired::Posting] {
            assert_eq!(
                stop_kind(PublishError::AuthExpired {
                    what,
                    reason: reason()
                }),
                "pause account"
            );
        }
        assert_eq!(
            stop_kind(PublishError::AuthExpired {
                what: Expired::UploadCredentials,
                reason: reason()
            }),
            "failed"
        );
        assert_eq!(
            stop_kind(PublishError::Transient {
                reason: reason(),
                retry_after: None
            }),
            "held"
        );
        assert_eq!(
            stop_kind(PublishError::RateLimited { retry_after: None }),
            "held"
        );
        assert_eq!(
            stop_kind(PublishError::Unknown { reason: reason() }),
            "unconfirmed"
        );
        assert_eq!(
            stop_kind(PublishError::Changed { reason: reason() }),
            "abandoned"
        );
    }
}
