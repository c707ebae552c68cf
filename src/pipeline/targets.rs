//! One drop, several accounts (design.md §8): how each target of a bundle ended, a target
//! that ended earlier while the bundle stayed in the inbox, and the one archive (with
//! one receipt listing every target) once all of them have ended.

use tracing::{info, warn};

use crate::archive::Destination;
use crate::domain::{Fingerprint, Post, PostDraft};
use crate::ledger::{JobRecord, JobState};
use crate::receipt::{self, TargetReceipt};

use super::context::Context;
use super::error::JobFailure;
use super::job::{Bundle, Outcome, archive_bundle};

/// How one target of a bundle ended for good.
pub(super) struct Ended {
    pub job: JobRecord,
    pub how: Ending,
}

pub(super) enum Ending {
    Published {
        draft: PostDraft,
        post: Post,
    },
    /// The account has this video already (`earlier`).
    Duplicate {
        earlier: JobRecord,
    },
    Failed(JobFailure),
}

/// Where one target stands after its turn.
pub(super) enum Turn {
    Ended(Box<Ended>),
    /// Not ended (held, waiting, abandoned): the bundle stays in the inbox.
    Open(Outcome),
}

impl Ended {
    pub(super) fn posted(&self) -> bool {
        matches!(self.how, Ending::Published { .. })
    }
}

/// A target found to be a duplicate of `earlier`.
pub(super) fn duplicate(job: JobRecord, earlier: JobRecord) -> Ended {
    info!(
        step = "dedupe",
        account = %job.account,
        earlier = %earlier.video.display(),
        post = earlier.post.as_ref().map_or_else(|| "(still being published)".to_owned(), ToString::to_string),
        "same video already published for this account"
    );
    Ended {
        job,
        how: Ending::Duplicate { earlier },
    }
}

/// A target of this very file that already ended (failed, or found a duplicate) while
/// another target kept the bundle in the inbox: its end stands and it is not run again.
/// Only in the inbox: `dropcast publish` of a file elsewhere always runs afresh.
pub(super) async fn ended_before(
    ctx: &Context,
    bundle: &Bundle,
    fp: &Fingerprint,
    account: &str,
) -> Option<Ended> {
    if !ctx.in_inbox(&bundle.video) {
        return None;
    }
    let video = ctx.relative(&bundle.video).to_path_buf();
    let (sha, name) = (fp.sha256.clone(), account.to_owned());
    let jobs = ctx.ledger(move |l| l.jobs_with_hash(&sha)).await.ok()?;
    let job = jobs.into_iter().rev().find(|j| {
        j.account == name
            && j.video == video
            && j.archived_to.is_none()
            && matches!(j.state, JobState::Failed | JobState::Duplicate)
    })?;
    info!(job = job.id, account, state = %job.state, "this target ended in an earlier run");
    let how = match job.state {
        JobState::Duplicate => {
            let earlier = match job.duplicate_of {
                Some(id) => ctx.ledger(move |l| l.job(id)).await.ok().flatten(),
                None => None,
            }?;
            Ending::Duplicate { earlier }
        }
        _ => Ending::Failed(JobFailure::earlier(&job)),
    };
    Some(Ended { job, how })
}

/// Every target has ended: the bundle moves, with one receipt listing each target, to
/// `done/` when any posted, `duplicates/` when all were duplicates, else `failed/`.
pub(super) async fn archive(ctx: &Context, bundle: &Bundle, ended: Vec<Ended>) -> Outcome {
    let ended = reloaded(ctx, ended).await;
    if ended.iter().any(Ended::posted) && !super::job::unchanged(&bundle.settled) {
        warn!(
            "the video changed after it was published; it stays in the inbox and will be published as a new video"
        );
        return Outcome::Abandoned {
            reason: "the video changed after it was published".into(),
        };
    }
    let outcome = outcome_of(&ended);
    if !ctx.in_inbox(&bundle.video) {
        // `dropcast publish` of a file elsewhere, or a target re-run in `done/`: the
        // files stay where they are.
        for target in ended.iter().filter(|t| t.posted()) {
            let (id, to) = (target.job.id, bundle.video.clone());
            if let Err(e) = ctx.ledger(move |l| l.mark_done(id, &to)).await {
                tracing::error!(reason = %e, "ledger error");
            }
        }
        if let Some(rerun) = &bundle.rerun {
            let entries: Vec<TargetReceipt> = ended.iter().map(target_receipt).collect();
            let path = rerun.receipt.clone();
            let updated =
                tokio::task::spawn_blocking(move || receipt::update_targets(&path, &entries)).await;
            match updated {
                Ok(Ok(())) => {
                    info!(receipt = %rerun.receipt.display(), "the receipt has the target's new outcome")
                }
                Ok(Err(e)) => {
                    warn!(receipt = %rerun.receipt.display(), reason = %e, "cannot update the receipt; the ledger has the outcome")
                }
                Err(e) => warn!(reason = %e, "receipt task failed"),
            }
        }
        return outcome;
    }
    let receipts: Vec<TargetReceipt> = ended.iter().map(target_receipt).collect();
    let dest = match receipt::bundle_outcome(&receipts) {
        "published" => Destination::Done,
        "duplicate" => Destination::Duplicates,
        _ => Destination::Failed,
    };
    let Some(sha) = ended.first().map(|t| &t.job.sha256) else {
        return Outcome::Held {
            reason: "no account to publish to".into(),
        };
    };
    let text = match receipt::bundle_receipt(sha, ctx.relative(&bundle.video), &receipts) {
        Ok(text) => text,
        Err(e) => {
            return Outcome::Held {
                reason: format!("receipt: {e}"),
            };
        }
    };
    let ids: Vec<i64> = ended.iter().map(|t| t.job.id).collect();
    super::job::at_stage(ctx, bundle, crate::words::Stage::Archive);
    match archive_bundle(ctx, bundle, &ids, dest, text).await {
        Ok(archived) => {
            let to = archived.video.display().to_string();
            let receipt = archived.receipt.display().to_string();
            match &outcome {
                Outcome::Published { url } => info!(step = "archive", %to, %receipt, %url, "done"),
                Outcome::Failed(f) => {
                    warn!(step = "archive", %to, reason = %f.reason, "failed; moved to failed/")
                }
                _ => info!(step = "archive", %to, "moved to duplicates/"),
            }
            outcome
        }
        Err(held) => held,
    }
}

/// The targets with their jobs as the ledger holds them now (steps and attempts for the
/// receipt).
async fn reloaded(ctx: &Context, ended: Vec<Ended>) -> Vec<Ended> {
    let mut out = Vec::with_capacity(ended.len());
    for mut target in ended {
        let id = target.job.id;
        if let Ok(Some(job)) = ctx.ledger(move |l| l.job(id)).await {
            target.job = job;
        }
        out.push(target);
    }
    out
}

/// The bundle's outcome: the first post, else the first duplicate when all are, else the
/// first failure.
fn outcome_of(ended: &[Ended]) -> Outcome {
    let post = ended.iter().find_map(|t| match &t.how {
        Ending::Published { post, .. } => Some(post.to_string()),
        _ => None,
    });
    if let Some(url) = post {
        return Outcome::Published { url };
    }
    let failure = ended.iter().find_map(|t| match &t.how {
        Ending::Failed(f) => Some(f.clone()),
        _ => None,
    });
    match (failure, ended.first().map(|t| &t.how)) {
        (Some(failure), _) => Outcome::Failed(failure),
        (None, Some(Ending::Duplicate { earlier })) => Outcome::Duplicate {
            earlier: earlier.post.as_ref().map(ToString::to_string),
        },
        (None, _) => Outcome::Duplicate { earlier: None },
    }
}

/// One target's entry in the receipt.
fn target_receipt(target: &Ended) -> TargetReceipt {
    let job = &target.job;
    match &target.how {
        Ending::Published { draft, post } => {
            TargetReceipt::Published(Box::new(receipt::PublishedReceipt::new(job, draft, post)))
        }
        Ending::Duplicate { earlier } => TargetReceipt::Duplicate(receipt::DuplicateReceipt::new(
            job,
            earlier,
            receipt::UtcTime::now(),
        )),
        Ending::Failed(f) => TargetReceipt::Failed(receipt::FailureReceipt::new(
            Some(job),
            &job.video,
            f.step.clone(),
            f.class.as_str(),
            &f.reason,
            &f.hint,
        )),
    }
}
