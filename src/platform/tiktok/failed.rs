//! A publish_id whose status is `FAILED` never posts (§6), so §8 allows a new init for the
//! video: the verdict is recorded with the upload, the job fails with TikTok's reason, and
//! the run after `dropcast retry` voids the dead upload (its steps and the publish mark)
//! and inits anew. No other status, and no lost answer, ever voids an upload: while the
//! old publish_id may still post, it stays the only one.

use tracing::warn;

use super::{Handed, UPLOAD, Uploaded};
use crate::platform::PublishError;
use crate::platform::backend::{StepFailure, UploadJob, at};
use crate::platform::tiktok::wire;

/// Records that `handed`'s publish_id failed with `reason`; returns the error the job
/// fails with. A verdict that cannot be recorded is asked for again by the next run.
pub(super) async fn remember(handed: &Handed, reason: &str) -> PublishError {
    let publish_id = &handed.done.publish_id;
    let done = Uploaded {
        failed: Some(reason.to_owned()),
        ..handed.done.clone()
    };
    if let Err(e) = handed.checkpoints.save(&done).await {
        warn!(step = "publish", %publish_id, error = %e, "cannot record that TikTok failed this publish_id; the status is asked again on the next run");
    }
    dead(publish_id, reason)
}

/// The failure of a `FAILED` publish_id, saying what a retry does.
fn dead(publish_id: &str, reason: &str) -> PublishError {
    PublishError::Rejected {
        reason: format!(
            "{}; publish_id {publish_id} will never post, so `dropcast retry` starts a new upload",
            wire::fail_reason_words(reason)
        ),
    }
}

/// On resume: an upload whose publish_id is recorded as failed is voided, so that a new
/// init follows; `true` when it was. A job parked as unconfirmed keeps it until
/// `dropcast retry` makes it active again.
pub(super) async fn voided(job: &UploadJob<'_>, done: &Uploaded) -> Result<bool, StepFailure> {
    let Some(reason) = &done.failed else {
        return Ok(false);
    };
    let voided = job.checkpoints.void_upload().await.map_err(at(UPLOAD))?;
    if voided {
        warn!(step = "upload", publish_id = %done.publish_id, fail_reason = %reason, "TikTok failed this publish_id, which therefore never posts: a new upload starts with a new init (§8)");
    }
    Ok(voided)
}
