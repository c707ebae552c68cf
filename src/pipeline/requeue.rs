//! `dropcast retry`: puts failed, unconfirmed or abandoned jobs back in the queue. A
//! failed job's files come back from `failed/` to where they were in the inbox (its
//! error receipt stays); a running agent is told to look at once. A target that failed
//! while another target of its drop posted lies in `done/`: it is re-run there, in place
//! ([`InPlace`]), and the receipt beside it is updated.

use std::path::{Path, PathBuf};

use crate::archive::{self, ArchivePlan};
use crate::config::Config;
use crate::ledger::{JobRecord, JobState, Ledger, LedgerError};

/// The file a running agent watches: `retry` touches it, the agent rescans.
pub(crate) const REQUEUED_MARKER: &str = "requeued";

/// One job put back in the queue.
#[derive(Debug)]
pub(crate) struct Retried {
    pub id: i64,
    pub video: PathBuf,
    pub was: JobState,
    /// Its recorded error, printed with it: where a backend knows what a retry does, the
    /// error says so (TikTok: "… `dropcast retry` starts a new upload").
    pub why: Option<String>,
    /// The files moved back into the inbox (to, from `failed/`).
    pub moved_back: Vec<PathBuf>,
    /// The target to re-run where its drop lies (in `done/`), when another target of the
    /// drop posted.
    pub in_place: Option<InPlace>,
}

/// A target to re-run on the video where it lies, updating the receipt beside it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct InPlace {
    pub video: PathBuf,
    pub caption: Option<PathBuf>,
    pub receipt: PathBuf,
    pub account: String,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum RetryError {
    #[error("`{0}` is not a content hash or the start of one (at least 6 hex digits)")]
    BadHash(String),
    #[error("no job has a hash starting with {0}")]
    NoMatch(String),
    #[error("no job of account `{account}` has a hash starting with {prefix}")]
    NoMatchFor { prefix: String, account: String },
    #[error("{prefix} matches several videos; give more digits: {}", candidates.join(", "))]
    Ambiguous {
        prefix: String,
        candidates: Vec<String>,
    },
    #[error("job {id} ({}) is {state}: only failed, unconfirmed or abandoned jobs can be retried", video.display())]
    NotRetryable {
        id: i64,
        video: PathBuf,
        state: &'static str,
    },
    #[error("job {id}: cannot move its files back into the inbox: {source}")]
    Restore {
        id: i64,
        source: archive::ArchiveError,
    },
    #[error(transparent)]
    Ledger(#[from] LedgerError),
}

/// Retries the newest retryable job whose hash starts with `prefix`.
pub(crate) fn retry_hash(
    config: &Config,
    ledger: &mut Ledger,
    prefix: &str,
) -> Result<Retried, RetryError> {
    retry_target(config, ledger, prefix, None)
}

/// Retries the newest retryable job whose hash starts with `prefix`, of `account` only
/// when one is given (one target of a drop to several accounts).
pub(crate) fn retry_target(
    config: &Config,
    ledger: &mut Ledger,
    prefix: &str,
    account: Option<&str>,
) -> Result<Retried, RetryError> {
    let prefix = prefix.trim().to_ascii_lowercase();
    if prefix.len() < 6 || prefix.len() > 64 || !prefix.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(RetryError::BadHash(prefix));
    }
    let all = ledger.jobs_in(&JobState::ALL)?;
    let matching: Vec<&JobRecord> = all
        .iter()
        .filter(|j| j.sha256.as_str().starts_with(&prefix))
        .collect();
    let mut hashes: Vec<&str> = matching.iter().map(|j| j.sha256.as_str()).collect();
    hashes.sort();
    hashes.dedup();
    match hashes.len() {
        0 => return Err(RetryError::NoMatch(prefix)),
        1 => {}
        _ => {
            return Err(RetryError::Ambiguous {
                prefix,
                candidates: hashes.iter().map(|h| h[..12].to_string()).collect(),
            });
        }
    }
    let siblings: Vec<JobRecord> = matching.iter().map(|j| (*j).clone()).collect();
    let candidates: Vec<&JobRecord> = matching
        .into_iter()
        .filter(|j| account.is_none_or(|a| j.account == a))
        .collect();
    let job = candidates
        .iter()
        .rev()
        .find(|j| retryable(j.state))
        .or(candidates.last())
        .copied()
        .cloned()
        .ok_or_else(|| match account {
            Some(a) => RetryError::NoMatchFor {
                prefix: prefix.clone(),
                account: a.to_owned(),
            },
            None => RetryError::NoMatch(prefix.clone()),
        })?;
    retry_job(config, ledger, job, &siblings, account.is_none())
}

/// Retries every failed job.
pub(crate) fn retry_all_failed(
    config: &Config,
    ledger: &mut Ledger,
) -> Vec<Result<Retried, RetryError>> {
    let jobs = match ledger.jobs_in(&[JobState::Failed]) {
        Ok(jobs) => jobs,
        Err(e) => return vec![Err(e.into())],
    };
    let mut results = Vec::new();
    for job in &jobs {
        // A target retried with an earlier one of its drop is queued already.
        match ledger.job(job.id) {
            Ok(Some(now)) if now.state == JobState::Failed => {
                let siblings = ledger.jobs_with_hash(&now.sha256).unwrap_or_default();
                results.push(retry_job(config, ledger, now, &siblings, true));
            }
            Ok(_) => {}
            Err(e) => results.push(Err(e.into())),
        }
    }
    results
}

fn retryable(state: JobState) -> bool {
    matches!(
        state,
        JobState::Failed | JobState::Unconfirmed | JobState::Abandoned
    )
}

/// Retries `job`; `siblings` are every job of its hash. When its drop comes back from
/// `failed/`, the drop's other ended targets are re-run too with `all_targets`, else they
/// keep their ends (they are archived again with the drop).
fn retry_job(
    config: &Config,
    ledger: &mut Ledger,
    job: JobRecord,
    siblings: &[JobRecord],
    all_targets: bool,
) -> Result<Retried, RetryError> {
    if !retryable(job.state) {
        return Err(RetryError::NotRetryable {
            id: job.id,
            video: job.video.clone(),
            state: job.state.as_str(),
        });
    }
    let plan = match job.state {
        JobState::Failed => ledger
            .archive_plan(job.id)?
            .and_then(|value| serde_json::from_value::<ArchivePlan>(value).ok()),
        _ => None,
    };
    let mut retried = Retried {
        id: job.id,
        video: job.video.clone(),
        was: job.state,
        why: job.error.as_ref().map(|e| e.reason.clone()),
        moved_back: Vec::new(),
        in_place: None,
    };
    let Some(plan) = plan else {
        ledger.requeue(job.id)?;
        nudge(&config.state_dir);
        return Ok(retried);
    };
    if plan.dest == archive::Destination::Done {
        retried.in_place = in_place(&plan, &job.account);
        return Ok(retried);
    }
    archive::restore(&plan).map_err(|source| RetryError::Restore { id: job.id, source })?;
    retried.moved_back = plan.moves.iter().map(|m| m.from.clone()).collect();
    let drop = siblings
        .iter()
        .filter(|s| s.id != job.id && s.video == job.video && s.archived_to == job.archived_to);
    for sibling in drop {
        match sibling.state {
            JobState::Failed if all_targets => ledger.requeue(sibling.id)?,
            JobState::Failed | JobState::Duplicate => ledger.reopen_ended(sibling.id)?,
            _ => {}
        }
    }
    ledger.requeue(job.id)?;
    nudge(&config.state_dir);
    Ok(retried)
}

/// The target `account` to re-run on an archived drop where it lies.
fn in_place(plan: &ArchivePlan, account: &str) -> Option<InPlace> {
    let archived = plan.archived()?;
    Some(InPlace {
        video: archived.video,
        caption: archived.caption,
        receipt: archived.receipt,
        account: account.to_owned(),
    })
}

/// Tells a running agent to look at the inbox now.
fn nudge(state_dir: &Path) {
    let marker = state_dir.join(REQUEUED_MARKER);
    let _ = std::fs::write(marker, crate::receipt::UtcTime::now().to_rfc3339());
}
