//! Where a backend keeps what it must remember between runs: typed records of its finished
//! steps, its multipart session and the parts that arrived, all in the job's ledger rows.
//! A record that is there but cannot be read back is an error, never taken for "not there".

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::domain::StepName;
use crate::failpoint;
use crate::ledger::{JobId, JobState, LedgerError, PartRecord};
use crate::shared_ledger::SharedLedger;

/// The result of one of a backend's steps, as it is stored.
pub(crate) trait Record: Serialize + DeserializeOwned + Send + 'static {
    /// The step it is the result of: one of the backend's [`steps`](crate::platform::Backend::steps).
    const STEP: StepName;
    /// Recording it means the upload is committed: the session and parts are deleted
    /// with it (credentials must not outlive their use).
    const ENDS_UPLOAD: bool = false;
}

/// Why a checkpoint could not be read or written.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CheckpointError {
    #[error("ledger: {0}")]
    Ledger(#[from] LedgerError),
    #[error("the ledger's record of {what} cannot be read: {reason}")]
    Unreadable { what: String, reason: String },
    #[error("`{0}` is not one of this platform's steps")]
    UnknownStep(StepName),
}

/// One job's checkpoints, for the backend publishing it. A clone is the same job's handle
/// (a backend may keep one with its committed upload, to record what `publish` learns).
#[derive(Clone)]
pub(crate) struct Checkpoints {
    ledger: SharedLedger,
    job: JobId,
    /// The backend's steps: the only names it may record.
    steps: &'static [StepName],
}

impl Checkpoints {
    pub(crate) fn new(ledger: SharedLedger, job: JobId, steps: &'static [StepName]) -> Self {
        Checkpoints { ledger, job, steps }
    }

    /// The job's record of `R::STEP`, if that step finished.
    pub(crate) async fn load<R: Record>(&self) -> Result<Option<R>, CheckpointError> {
        let id = self.job;
        let job = self.ledger.call(move |l| l.job(id)).await?;
        let Some(step) = job.as_ref().and_then(|j| j.steps.get(&R::STEP)) else {
            return Ok(None);
        };
        serde_json::from_value(step.result.clone())
            .map(Some)
            .map_err(|e| CheckpointError::Unreadable {
                what: format!("step `{}`", R::STEP),
                reason: e.to_string(),
            })
    }

    /// Records `record` as its step's result. The failpoint `after_request:<step>` comes
    /// first (the request succeeded, nothing is recorded yet), `after_commit:<step>` after.
    pub(crate) async fn save<R: Record>(&self, record: &R) -> Result<(), CheckpointError> {
        if !self.steps.contains(&R::STEP) {
            return Err(CheckpointError::UnknownStep(R::STEP));
        }
        failpoint::hit(&format!("after_request:{}", R::STEP));
        let value = serde_json::to_value(record).map_err(LedgerError::Json)?;
        let id = self.job;
        self.ledger
            .call(move |l| l.record_step(id, &R::STEP, &value, R::ENDS_UPLOAD))
            .await?;
        Ok(())
    }

    /// Forgets every step, the session and the parts: the upload starts over. Refused
    /// (an error) once the post may have been sent.
    pub(crate) async fn forget(&self) -> Result<(), CheckpointError> {
        let id = self.job;
        Ok(self.ledger.call(move |l| l.forget_steps(id)).await?)
    }

    /// The platform said the recorded upload can never post (TikTok's `FAILED`): forgets
    /// every step, the session, the parts and the publish mark, so a new upload starts
    /// (see [`Ledger::void_upload`](crate::ledger::Ledger::void_upload): only the
    /// platform's definitive word allows it). `Ok(false)`, nothing forgotten, when the job
    /// is not active (parked as unconfirmed: only `dropcast retry` starts it again).
    pub(crate) async fn void_upload(&self) -> Result<bool, CheckpointError> {
        let id = self.job;
        let voided = self
            .ledger
            .call(move |l| {
                let active = l.job(id)?.is_some_and(|j| j.state == JobState::Active);
                if active {
                    l.void_upload(id)?;
                }
                Ok::<_, LedgerError>(active)
            })
            .await?;
        Ok(voided)
    }

    /// The multipart session an earlier run saved, if any.
    pub(crate) async fn session<S: DeserializeOwned>(&self) -> Result<Option<S>, CheckpointError> {
        let id = self.job;
        let Some(value) = self.ledger.call(move |l| l.upload_session(id)).await? else {
            return Ok(None);
        };
        serde_json::from_value(value)
            .map(Some)
            .map_err(|e| CheckpointError::Unreadable {
                what: "the upload session".into(),
                reason: e.to_string(),
            })
    }

    /// Saves a new multipart session (voiding the parts of an earlier one).
    pub(crate) async fn save_session<S: Serialize>(
        &self,
        session: &S,
    ) -> Result<(), CheckpointError> {
        let value = serde_json::to_value(session).map_err(LedgerError::Json)?;
        let id = self.job;
        self.ledger
            .call(move |l| l.save_upload_session(id, &value))
            .await?;
        Ok(())
    }

    /// The parts of the session that arrived.
    pub(crate) async fn parts(&self) -> Result<Vec<PartRecord>, CheckpointError> {
        let id = self.job;
        Ok(self.ledger.call(move |l| l.parts(id)).await?)
    }

    /// One more part arrived (after the failpoint `after_request:upload_part`).
    pub(crate) async fn record_part(&self, part: PartRecord) -> Result<(), CheckpointError> {
        failpoint::hit("after_request:upload_part");
        let id = self.job;
        Ok(self.ledger.call(move |l| l.record_part(id, part)).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{ContentHash, Platform};
    use crate::ledger::{Claim, Ledger, NewJob};
    use serde::Deserialize;

    const STEP_A: StepName = StepName::of("alpha");
    const STEP_B: StepName = StepName::of("beta");
    const ONLY_A: &[StepName] = &[STEP_A];

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Alpha {
        n: u32,
    }
    impl Record for Alpha {
        const STEP: StepName = STEP_A;
    }

    #[derive(Debug, Serialize, Deserialize)]
    struct Beta {
        text: String,
    }
    impl Record for Beta {
        const STEP: StepName = STEP_B;
    }

    /// Alpha's step, read as another shape.
    #[derive(Debug, Serialize, Deserialize)]
    struct AlphaAsText {
        text: String,
    }
    impl Record for AlphaAsText {
        const STEP: StepName = STEP_A;
    }

    fn checkpoints(dir: &std::path::Path, steps: &'static [StepName]) -> Checkpoints {
        let mut ledger = Ledger::open(dir).unwrap();
        let job = NewJob {
            sha256: ContentHash::from_digest(&[1; 32]),
            account: "main".into(),
            platform: Platform::DouyinWeb,
            video: "a.mp4".into(),
            caption: None,
            size: 1,
        };
        let Claim::New(job) = ledger.claim(&job, false).unwrap() else {
            panic!("a new job")
        };
        Checkpoints::new(SharedLedger::new(ledger), job.id, steps)
    }

    #[tokio::test]
    async fn a_record_reads_back_typed_and_only_the_backends_steps_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let c = checkpoints(dir.path(), ONLY_A);
        assert_eq!(c.load::<Alpha>().await.unwrap(), None);
        c.save(&Alpha { n: 7 }).await.unwrap();
        assert_eq!(c.load::<Alpha>().await.unwrap(), Some(Alpha { n: 7 }));
        let refused = c.save(&Beta { text: "x".into() }).await.unwrap_err();
        assert!(matches!(refused, CheckpointError::UnknownStep(s) if s == STEP_B));
        c.forget().await.unwrap();
        assert_eq!(c.load::<Alpha>().await.unwrap(), None);
    }

    // Regression (issue 10 item 1): a checkpoint that did not parse was taken for "no checkpoint".
    #[tokio::test]
    async fn a_record_that_cannot_be_read_is_an_error_not_an_absence() {
        let dir = tempfile::tempdir().unwrap();
        let c = checkpoints(dir.path(), ONLY_A);
        c.save(&Alpha { n: 7 }).await.unwrap();
        let err = c.load::<AlphaAsText>().await.unwrap_err();
        assert!(
            matches!(&err, CheckpointError::Unreadable { what, .. } if what.contains("alpha")),
            "{err}"
        );
        let id = c.job;
        c.ledger
            .call(move |l| l.save_upload_session(id, &serde_json::json!({"n": 1})))
            .await
            .unwrap();
        assert!(matches!(
            c.session::<AlphaAsText>().await,
            Err(CheckpointError::Unreadable { .. })
        ));
    }
}
