//! The two kinds of error the agent knows: those that stop it, and those that end one job.

use std::io;
use std::path::PathBuf;

use crate::config::ConfigError;
use crate::domain::StepName;
use crate::ledger::LedgerError;
use crate::platform::PublishError;
use crate::words::FailureClass;

/// An error that stops the agent (or a command) as a whole.
#[derive(Debug, thiserror::Error)]
pub enum FatalError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("cannot use folder {}: {source}", path.display())]
    Folder { path: PathBuf, source: io::Error },
    #[error("account `{account}`: {reason}")]
    Account { account: String, reason: String },
    #[error("ledger: {0}")]
    Ledger(#[from] LedgerError),
    #[error("cannot start the built-in sandbox: {0}")]
    Sandbox(io::Error),
    #[error("cannot watch {}: {reason}", path.display())]
    Watch { path: PathBuf, reason: String },
    #[error("platform client: {0}")]
    Client(String),
    #[error(transparent)]
    Lock(#[from] crate::lock::LockError),
    /// No ledger (or an empty one) while receipts show earlier posts (issue 9).
    #[error(
        "the ledger {} {what}, but {} records a post made before: publishing now could post those videos again. Run `dropcast ledger rebuild` to restore the ledger from the receipts in done/ and duplicates/, or start `dropcast watch --new-ledger` (or `publish --new-ledger`) to begin with an empty ledger anyway.",
        ledger.display(),
        receipt.display()
    )]
    LedgerMissing {
        ledger: PathBuf,
        what: &'static str,
        receipt: PathBuf,
    },
}

impl FatalError {
    /// Exit status: 2 for what the user must fix in config or setup, 1 otherwise.
    pub(crate) fn exit_code(&self) -> u8 {
        match self {
            FatalError::Config(_)
            | FatalError::Folder { .. }
            | FatalError::Account { .. }
            | FatalError::Lock(_)
            | FatalError::LedgerMissing { .. } => 2,
            _ => 1,
        }
    }
}

/// Why one job ended without a post. Goes into `failed/<stem>.error.json`.
#[derive(Debug, Clone)]
pub struct JobFailure {
    pub step: Option<StepName>,
    /// `caption`, `video`, or the platform error's class.
    pub class: FailureClass,
    pub reason: String,
    pub hint: String,
}

impl JobFailure {
    pub fn caption(reason: String) -> Self {
        JobFailure {
            step: None,
            class: FailureClass::Caption,
            reason,
            hint: "Fix the caption here in failed/ (`dropcast validate <file>` shows every \
                   problem), then run `dropcast retry <first digits of sha256>`: the video and \
                   its caption go back into the inbox and are published."
                .into(),
        }
    }

    /// The failure a job recorded in an earlier run, as its ledger record has it.
    pub(crate) fn earlier(job: &crate::ledger::JobRecord) -> Self {
        let error = job.error.clone();
        JobFailure {
            step: error.as_ref().and_then(|e| e.step.clone()),
            class: FailureClass::Earlier,
            reason: error.map(|e| e.reason).unwrap_or_default(),
            hint: "See the error receipt beside the video.".into(),
        }
    }

    pub(crate) fn from_publish(step: StepName, err: &PublishError) -> Self {
        let hint = match err {
            PublishError::Rejected { .. } => {
                "The platform refused this post; fix what the reason names, then run \
                 `dropcast retry <first digits of sha256>` to publish it again."
            }
            // An expired login pauses the account instead; what fails a job is the
            // platform's upload credentials expiring again after they were renewed.
            PublishError::AuthExpired { .. } => {
                "The platform's upload credentials expired again right after they were \
                 renewed; check the machine's clock, then run \
                 `dropcast retry <first digits of sha256>`."
            }
            PublishError::Transient { .. } | PublishError::RateLimited { .. } => {
                "The platform could not be reached or was busy; run \
                 `dropcast retry <first digits of sha256>` to try again."
            }
            PublishError::Unknown { .. } => {
                "It is not known whether the post went out; check the account's posts before \
                 trying again."
            }
            PublishError::Changed { .. } => {
                "The video changed while it was being uploaded; it is published again from \
                 its new content once it settles."
            }
        };
        JobFailure {
            step: Some(step),
            class: FailureClass::parse(err.class()),
            reason: err.to_string(),
            hint: hint.into(),
        }
    }
}
