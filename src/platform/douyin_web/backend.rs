//! `douyin-web` behind the seam: steps 1–4 of docs/douyin-web.md as [`Backend::upload`],
//! each checkpointed, a multipart upload resumed with only its missing parts, expired upload
//! credentials renewed once; step 5 and lookups 6a/6b as the other calls.

use std::time::Instant;

use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use super::DouyinWeb;
use crate::checkpoint::{CheckpointError, Checkpoints, Record};
use crate::domain::{Post, PostDraft, StepName};
use crate::ledger::PartRecord;
use crate::platform::backend::{
    Backend, BoxFuture, Committed, Created, StepFailure, UploadJob, at, recorded_parts,
    resolve_tag_ids, start_over, transient,
};
use crate::platform::{
    Account, Expired, PublishError, SavedUpload, Upload, UploadCredentials, UploadTarget, wire,
};

/// Step 1 (docs/douyin-web.md §1): upload credentials.
pub(crate) const CREDENTIALS: StepName = StepName::of("credentials");
/// Step 2 (§2): where to upload.
pub(crate) const UPLOAD_PARAMS: StepName = StepName::of("upload_params");
/// Step 3 (§3): the bytes, whole or in parts.
pub(crate) const UPLOAD: StepName = StepName::of("upload");
/// Step 4 (§4): the upload committed; its record is what step 5 posts.
pub(crate) const COMMIT: StepName = StepName::of("commit");

pub(crate) const STEPS: &[StepName] = &[CREDENTIALS, UPLOAD_PARAMS, UPLOAD, COMMIT];

/// Step 1's record: that it finished (the credentials themselves are kept only in a
/// multipart session, which is deleted when the upload is committed).
#[derive(Serialize, Deserialize)]
struct CredentialsDone {}

impl Record for CredentialsDone {
    const STEP: StepName = CREDENTIALS;
}

/// Step 2's record.
#[derive(Serialize, Deserialize)]
struct Params {
    vid: String,
    oid: String,
}

impl Record for Params {
    const STEP: StepName = UPLOAD_PARAMS;
}

/// Step 3's record.
#[derive(Serialize, Deserialize)]
struct Uploaded {
    size: u64,
    /// 8 hex digits.
    crc32: String,
    multipart: bool,
}

impl Record for Uploaded {
    const STEP: StepName = UPLOAD;
}

impl Record for Upload {
    const STEP: StepName = COMMIT;
    const ENDS_UPLOAD: bool = true;
}

/// What a restart needs to go on with a multipart upload; kept in the ledger.
#[derive(Serialize, Deserialize)]
struct MultipartSession {
    upload_id: String,
    saved: SavedUpload,
}

/// How `douyin-web` uploads: whole files up to the threshold, parts above it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct UploadSettings {
    /// Files larger than this go up in parts.
    pub multipart_threshold: u64,
    /// Parts in flight at once.
    pub parallel_parts: usize,
}

/// The `douyin-web` backend: the client and how it uploads.
pub(crate) struct DouyinWebBackend {
    client: DouyinWeb,
    settings: UploadSettings,
}

impl DouyinWebBackend {
    pub(crate) fn new(client: DouyinWeb, settings: UploadSettings) -> Self {
        DouyinWebBackend { client, settings }
    }

    /// Steps 1–4, with expired upload credentials renewed once (from step 1 again).
    async fn upload_and_commit(&self, job: &UploadJob<'_>) -> Result<Committed, StepFailure> {
        match job.checkpoints.load::<Upload>().await {
            Ok(Some(upload)) => {
                info!(step = "commit", vid = %upload.vid, "reusing the committed upload");
                return Ok(committed(upload));
            }
            Ok(None) => {}
            Err(e) => start_over(job.checkpoints, COMMIT, e).await?,
        }
        let mut renewed = false;
        loop {
            match self.upload_once(job).await {
                Ok(upload) => return Ok(committed(upload)),
                Err(StepFailure {
                    step,
                    error:
                        PublishError::AuthExpired {
                            what: Expired::UploadCredentials,
                            reason,
                        },
                }) if !renewed => {
                    warn!(%step, %reason, "upload credentials expired; starting again from step 1");
                    renewed = true;
                    job.checkpoints.forget().await.map_err(at(step))?;
                }
                Err(failure) => return Err(failure),
            }
        }
    }

    /// Steps 1–4 once; a multipart upload an earlier run started goes on where it stopped.
    async fn upload_once(&self, job: &UploadJob<'_>) -> Result<Upload, StepFailure> {
        let size = job.fingerprint.size;
        let multipart = size > self.settings.multipart_threshold;
        let resumed = if multipart {
            self.resumable_session(job.checkpoints).await?
        } else {
            None
        };
        let (creds, target, upload_id) = match resumed {
            Some(session) => {
                let (creds, target) = session.saved.restore();
                info!(step = "upload", vid = %target.vid, "resuming the multipart upload");
                (creds, target, Some(session.upload_id))
            }
            None => {
                let (creds, target) = self.prepare(job).await?;
                (creds, target, None)
            }
        };

        job.observer.step(&UPLOAD);
        let started = Instant::now();
        let sent = if multipart {
            self.upload_parts(job, &creds, &target, upload_id).await
        } else {
            let fp = job.fingerprint;
            self.client
                .upload_file(&target, job.video, size, fp.crc32, job.progress)
                .await
        };
        sent.map_err(at(UPLOAD))?;
        let secs = started.elapsed().as_secs_f64().max(1e-6);
        job.observer.uploaded(size, secs);
        let record = Uploaded {
            size,
            crc32: format!("{:08x}", job.fingerprint.crc32),
            multipart,
        };
        job.checkpoints.save(&record).await.map_err(at(UPLOAD))?;
        info!(
            step = "upload",
            bytes = size,
            mib_per_s = format!("{:.1}", size as f64 / secs / 1048576.0),
            "uploaded"
        );

        job.observer.step(&COMMIT);
        let upload = self
            .client
            .commit(&creds, &target)
            .await
            .map_err(at(COMMIT))?;
        job.checkpoints.save(&upload).await.map_err(at(COMMIT))?;
        info!(step = "commit", vid = %upload.vid, "upload committed");
        Ok(upload)
    }

    /// The multipart session an earlier run saved; one that cannot be read is forgotten
    /// (said loudly) and the upload starts over.
    async fn resumable_session(
        &self,
        checkpoints: &Checkpoints,
    ) -> Result<Option<MultipartSession>, StepFailure> {
        match checkpoints.session::<MultipartSession>().await {
            Ok(session) => Ok(session),
            Err(e @ CheckpointError::Unreadable { .. }) => {
                start_over(checkpoints, UPLOAD, e).await?;
                Ok(None)
            }
            Err(e) => Err(at(UPLOAD)(e)),
        }
    }

    /// Steps 1 and 2.
    async fn prepare(
        &self,
        job: &UploadJob<'_>,
    ) -> Result<(UploadCredentials, UploadTarget), StepFailure> {
        job.observer.step(&CREDENTIALS);
        let creds = self
            .client
            .credentials(job.account)
            .await
            .map_err(at(CREDENTIALS))?;
        job.checkpoints
            .save(&CredentialsDone {})
            .await
            .map_err(at(CREDENTIALS))?;
        info!(step = "credentials", "got upload credentials");

        job.observer.step(&UPLOAD_PARAMS);
        let target = self
            .client
            .upload_target(&creds, job.fingerprint.size)
            .await
            .map_err(at(UPLOAD_PARAMS))?;
        let params = Params {
            vid: target.vid.clone(),
            oid: target.oid.clone(),
        };
        job.checkpoints
            .save(&params)
            .await
            .map_err(at(UPLOAD_PARAMS))?;
        info!(step = "upload_params", vid = %target.vid, "got upload parameters");
        Ok((creds, target))
    }

    /// Step 3 in parts (§3b): a new session is saved before the first part, and each part
    /// is recorded as it arrives, so a restart sends only the parts still missing.
    async fn upload_parts(
        &self,
        job: &UploadJob<'_>,
        creds: &UploadCredentials,
        target: &UploadTarget,
        upload_id: Option<String>,
    ) -> Result<(), PublishError> {
        let upload_id = match upload_id {
            Some(upload_id) => upload_id,
            None => {
                let upload_id = self.client.start_multipart(target).await?;
                let session = MultipartSession {
                    upload_id: upload_id.clone(),
                    saved: SavedUpload::save(creds, target),
                };
                job.checkpoints
                    .save_session(&session)
                    .await
                    .map_err(transient)?;
                upload_id
            }
        };
        let done = recorded_parts(job.checkpoints).await?;
        let fp = job.fingerprint;
        let checkpoints = job.checkpoints;
        let parts = self
            .client
            .upload_parts(
                target,
                &upload_id,
                job.video,
                fp.size,
                &fp.parts,
                self.settings.parallel_parts,
                &done,
                job.progress,
                |part| async move {
                    let record = PartRecord {
                        number: part.number,
                        size: part.size,
                        crc32: part.crc32,
                    };
                    checkpoints.record_part(record).await.map_err(transient)
                },
            )
            .await?;
        self.client
            .finish_multipart(target, &upload_id, &parts)
            .await
    }

    /// Challenge ids (§6b): the caption's own first, then the platform's suggestions, exact
    /// names only, for at most [`wire::MAX_CHALLENGE_LOOKUPS`] hashtags.
    async fn challenge_ids(
        &self,
        account: &Account,
        hashtags: &[(String, Option<String>)],
    ) -> Result<Vec<String>, PublishError> {
        resolve_tag_ids(hashtags, wire::MAX_CHALLENGE_LOOKUPS, |name| {
            self.client.challenge_id(account, name)
        })
        .await
    }
}

impl Backend for DouyinWebBackend {
    fn steps(&self) -> &'static [StepName] {
        STEPS
    }

    fn login_page(&self) -> &'static str {
        wire::LOGIN_PAGE
    }

    fn check_account<'a>(
        &'a self,
        account: &'a Account,
    ) -> BoxFuture<'a, Result<(), PublishError>> {
        Box::pin(async move { self.client.credentials(account).await.map(|_| ()) })
    }

    fn upload<'a>(&'a self, job: UploadJob<'a>) -> BoxFuture<'a, Result<Committed, StepFailure>> {
        Box::pin(async move { self.upload_and_commit(&job).await })
    }

    fn tag_ids<'a>(
        &'a self,
        account: &'a Account,
        hashtags: &'a [(String, Option<String>)],
    ) -> BoxFuture<'a, Result<Vec<String>, PublishError>> {
        Box::pin(self.challenge_ids(account, hashtags))
    }

    fn publish<'a>(
        &'a self,
        account: &'a Account,
        upload: &'a Committed,
        draft: &'a PostDraft,
    ) -> BoxFuture<'a, Result<Created, PublishError>> {
        Box::pin(async move {
            let upload = ours(upload)?;
            self.client.create_post(account, upload, draft).await
        })
    }

    fn find_post<'a>(
        &'a self,
        account: &'a Account,
        upload: &'a Committed,
        _draft: &'a PostDraft,
        _since: std::time::SystemTime,
    ) -> BoxFuture<'a, Result<Option<Post>, PublishError>> {
        Box::pin(async move {
            let upload = ours(upload)?;
            self.client.find_post(account, &upload.vid).await
        })
    }
}

fn committed(upload: Upload) -> Committed {
    Committed::new(upload.vid.clone(), upload)
}

/// The `douyin-web` upload inside `committed`; another backend's is a bug, refused.
fn ours(committed: &Committed) -> Result<&Upload, PublishError> {
    committed
        .get::<Upload>()
        .ok_or_else(|| PublishError::Rejected {
            reason: "internal error: the upload was not made by douyin-web".into(),
        })
}
