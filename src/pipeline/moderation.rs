//! Posts whose public id comes after the job ended (TikTok: `PUBLISH_COMPLETE` before
//! moderation ends, docs/tiktok.md §6). The job archives such a post at once as awaiting
//! moderation; this task of the running agent asks the account's backend about each one
//! with backoff, records the public post in the ledger and rewrites the receipt in `done/`
//! when it appears, and after [`LOOKUP_BOUND`] stops and says so in the log and the receipt.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::time::Instant;
use tracing::{debug, info, warn};

use super::context::Context;
use crate::archive::ArchivePlan;
use crate::domain::{Platform, Post, StepName};
use crate::ledger::{JobId, JobRecord};
use crate::platform::PublishError;
use crate::receipt;

/// How often the ledger is read for posts awaiting moderation.
const LOOK_EVERY: Duration = Duration::from_secs(2);
/// The first wait before a post is asked about; it doubles up to [`MAX_WAIT`] (ours:
/// moderation takes minutes to hours).
const FIRST_WAIT: Duration = Duration::from_secs(3);
const MAX_WAIT: Duration = Duration::from_secs(30 * 60);
/// At most one lookup per account this often (ours): 10 a minute, a third of TikTok's 30
/// status requests per minute per token, so that the posts being published keep the rest.
const ACCOUNT_SPACING: Duration = Duration::from_secs(6);
/// How long after it was published a post is looked up at all (ours).
pub(crate) const LOOKUP_BOUND: Duration = Duration::from_secs(3 * 24 * 60 * 60);

/// When a post is asked about next.
struct Due {
    at: Instant,
    wait: Duration,
}

/// Asks about every post awaiting moderation until the agent stops (spawned by
/// `agent::run`, aborted when it ends).
pub(crate) async fn run(ctx: Arc<Context>) {
    let mut lookups = Lookups::default();
    let mut tick = tokio::time::interval(LOOK_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let waiting = match ctx.ledger(|l| l.awaiting_moderation()).await {
            Ok(jobs) => jobs,
            Err(e) => {
                debug!(reason = %e, "cannot read the posts awaiting moderation");
                continue;
            }
        };
        lookups
            .due
            .retain(|id, _| waiting.iter().any(|j| j.id == *id));
        for job in waiting {
            lookups.consider(&ctx, job).await;
        }
    }
}

#[derive(Default)]
struct Lookups {
    due: HashMap<JobId, Due>,
    /// The last lookup of each account.
    last: HashMap<String, Instant>,
    /// Posts no longer looked up (in this run).
    given_up: HashSet<JobId>,
}

impl Lookups {
    async fn consider(&mut self, ctx: &Context, job: JobRecord) {
        let (Some(pending), false) = (job.post.clone(), self.given_up.contains(&job.id)) else {
            return;
        };
        let now = Instant::now();
        let due = self.due.entry(job.id).or_insert(Due {
            at: now + FIRST_WAIT,
            wait: FIRST_WAIT,
        });
        if due.at > now || ctx.accounts.paused(&job.account).is_some() {
            return;
        }
        if self
            .last
            .get(&job.account)
            .is_some_and(|t| now < *t + ACCOUNT_SPACING)
        {
            return;
        }
        if published_at(&job).elapsed().unwrap_or_default() >= LOOKUP_BOUND {
            self.given_up.insert(job.id);
            give_up(ctx, &job, &pending, given_up_note(job.platform)).await;
            return;
        }
        let Some(account) = ctx.accounts.get(&job.account) else {
            return;
        };
        self.last.insert(job.account.clone(), now);
        let found = account
            .backend
            .public_post(&account.account, &pending)
            .await;
        match found {
            Ok(Some(public)) => {
                self.due.remove(&job.id);
                record(ctx, &job, &pending, public).await;
            }
            Ok(None) => self.later(job.id, None),
            Err(e @ PublishError::Rejected { .. }) => {
                self.given_up.insert(job.id);
                let note = refused_note(job.platform, &e);
                give_up(ctx, &job, &pending, note).await;
            }
            Err(e) => self.later(job.id, Some(e)),
        }
    }

    /// Asks again after twice the last wait (at most [`MAX_WAIT`]).
    fn later(&mut self, id: JobId, error: Option<PublishError>) {
        if let Some(due) = self.due.get_mut(&id) {
            due.wait = (due.wait * 2).min(MAX_WAIT);
            due.at = Instant::now() + due.wait;
            let wait = humantime::format_duration(due.wait);
            match error {
                Some(e) => debug!(job = id, reason = %e, %wait, "cannot ask about the post now"),
                None => debug!(job = id, %wait, "still awaiting moderation"),
            }
        }
    }
}

/// When the job's post was published (step 5's time), else when the job last changed.
fn published_at(job: &JobRecord) -> SystemTime {
    job.steps
        .get(&StepName::PUBLISH)
        .map_or(job.updated_at, |s| s.at)
}

/// The receipt in `done/` of a job whose files were archived (none for a video published
/// from outside the inbox).
async fn receipt_of(ctx: &Context, id: JobId) -> Option<PathBuf> {
    let plan = ctx.ledger(move |l| l.archive_plan(id)).await.ok()??;
    let plan: ArchivePlan = serde_json::from_value(plan).ok()?;
    Some(plan.receipt)
}

/// The public post is there: the receipt first (a rewrite that fails is tried again, as
/// the ledger still says "awaiting"), then the ledger.
async fn record(ctx: &Context, job: &JobRecord, pending: &Post, public: Post) {
    let note = format!(
        "{} gave the public id after moderation; dropcast filled it in at {}.",
        job.platform.brand(),
        receipt::UtcTime::now()
    );
    if let Some(path) = receipt_of(ctx, job.id).await {
        let (account, pending_c, public_c) = (job.account.clone(), pending.clone(), public.clone());
        let path_c = path.clone();
        let rewritten = tokio::task::spawn_blocking(move || {
            receipt::rewrite_post(&path_c, &account, &pending_c, &public_c, Some(&note))
        })
        .await;
        if let Ok(Err(e)) | Err(e) = rewritten.map_err(std::io::Error::other) {
            warn!(receipt = %path.display(), reason = %e, "cannot rewrite the receipt with the public post; tried again later");
            return;
        }
    }
    let (id, recorded) = (job.id, public.clone());
    match ctx
        .ledger(move |l| l.record_public_post(id, &recorded))
        .await
    {
        Ok(()) => {
            info!(job = job.id, account = %job.account, post_id = %public.id, url = %public.url, "moderation ended: the post is public")
        }
        Err(e) => warn!(job = job.id, reason = %e, "cannot record the public post"),
    }
}

/// No longer looked up (past [`LOOKUP_BOUND`], or the platform refused to say): `note`
/// says why, in the log and in the receipt.
async fn give_up(ctx: &Context, job: &JobRecord, pending: &Post, note: String) {
    warn!(job = job.id, account = %job.account, video = %job.video.display(), "{note}");
    let Some(path) = receipt_of(ctx, job.id).await else {
        return;
    };
    let (account, pending) = (job.account.clone(), pending.clone());
    let rewritten = tokio::task::spawn_blocking(move || {
        receipt::rewrite_post(&path, &account, &pending, &pending, Some(&note))
    })
    .await;
    if let Ok(Err(e)) = rewritten {
        warn!(reason = %e, "cannot rewrite the receipt");
    }
}

/// The note of a post the platform will not say more of (TikTok: its status turned
/// `FAILED` during moderation).
fn refused_note(platform: Platform, e: &PublishError) -> String {
    format!(
        "Posted, but {name} then refused to say what became of it ({e}): taken down during moderation, most likely. dropcast no longer looks it up; see the {name} app.",
        name = platform.brand(),
    )
}

/// The note of a post whose public id did not come within [`LOOKUP_BOUND`].
pub(crate) fn given_up_note(platform: Platform) -> String {
    format!(
        "Posted, but {name} had not given its public id {days} days after it was published (still in moderation, or taken down); dropcast no longer looks it up. Find the post in the {name} app.",
        name = platform.brand(),
        days = LOOKUP_BOUND.as_secs() / (24 * 60 * 60),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn lookups_back_off_doubling_up_to_the_longest_wait() {
        let mut lookups = Lookups::default();
        lookups.due.insert(
            1,
            Due {
                at: Instant::now(),
                wait: FIRST_WAIT,
            },
        );
        let mut waits = Vec::new();
        for _ in 0..12 {
            lookups.later(1, None);
            waits.push(lookups.due[&1].wait.as_secs());
        }
        assert_eq!(&waits[..4], &[6, 12, 24, 48]);
        assert_eq!(*waits.last().unwrap(), MAX_WAIT.as_secs());
        assert_eq!(lookups.due[&1].at, Instant::now() + MAX_WAIT);
        // An unknown job is left alone.
        lookups.later(2, None);
        assert!(!lookups.due.contains_key(&2));
    }

    #[test]
    fn the_note_of_a_post_no_longer_looked_up_says_so_and_where_to_look() {
        let note = given_up_note(Platform::Tiktok);
        assert!(
            note.contains("3 days after") && note.contains("TikTok app"),
            "{note}"
        );
        // A post TikTok failed during moderation was only logged; its receipt kept
        // saying "awaiting moderation" without a word of it.
        let e = PublishError::Rejected {
            reason: "TikTok failed the post: spam".into(),
        };
        let note = refused_note(Platform::Tiktok, &e);
        assert!(
            note.contains("spam") && note.contains("TikTok app"),
            "{note}"
        );
        // Within TikTok's status limit of 30 a minute, with room to spare.
        assert!(Duration::from_secs(60).as_secs() / ACCOUNT_SPACING.as_secs() <= 10);
    }
}
