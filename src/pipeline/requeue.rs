//! `dropcast retry`: puts failed, unconfirmed or abandoned jobs back in the queue. A
//! failed job's files come back from `failed/` to where they were in the inbox (its
//! error receipt stays); a running agent is told to look at once.

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
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum RetryError {
    #[error("`{0}` is not a content hash or the start of one (at least 6 hex digits)")]
    BadHash(String),
    #[error("no job has a hash starting with {0}")]
    NoMatch(String),
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
    let job = matching
        .iter()
        .rev()
        .find(|j| retryable(j.state))
        .or(matching.last())
        .copied()
        .cloned()
        .ok_or_else(|| RetryError::NoMatch(prefix.clone()))?;
    retry_job(config, ledger, job)
}

/// Retries every failed job.
pub(crate) fn retry_all_failed(
    config: &Config,
    ledger: &mut Ledger,
) -> Vec<Result<Retried, RetryError>> {
    match ledger.jobs_in(&[JobState::Failed]) {
        Ok(jobs) => jobs
            .into_iter()
            .map(|job| retry_job(config, ledger, job))
            .collect(),
        Err(e) => vec![Err(e.into())],
    }
}

fn retryable(state: JobState) -> bool {
    matches!(
        state,
        JobState::Failed | JobState::Unconfirmed | JobState::Abandoned
    )
}

fn retry_job(config: &Config, ledger: &mut Ledger, job: JobRecord) -> Result<Retried, RetryError> {
    if !retryable(job.state) {
        return Err(RetryError::NotRetryable {
            id: job.id,
            video: job.video.clone(),
            state: job.state.as_str(),
        });
    }
    let mut moved_back = Vec::new();
    if job.state == JobState::Failed
        && let Some(value) = ledger.archive_plan(job.id)?
        && let Ok(plan) = serde_json::from_value::<ArchivePlan>(value)
    {
        archive::restore(&plan).map_err(|source| RetryError::Restore { id: job.id, source })?;
        moved_back = plan.moves.iter().map(|m| m.from.clone()).collect();
    }
    ledger.requeue(job.id)?;
    nudge(&config.state_dir);
    Ok(Retried {
        id: job.id,
        video: job.video,
        was: job.state,
        why: job.error.map(|e| e.reason),
        moved_back,
    })
}

/// Tells a running agent to look at the inbox now.
fn nudge(state_dir: &Path) {
    let marker = state_dir.join(REQUEUED_MARKER);
    let _ = std::fs::write(marker, crate::receipt::UtcTime::now().to_rfc3339());
}
