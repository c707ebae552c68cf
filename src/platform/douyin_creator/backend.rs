//! `douyin` behind the seam: steps 1–4 of docs/douyin-creator.md as [`Backend::upload`],
//! each checkpointed; the parts of step 3 recorded as they land, so a restart sends only
//! the missing ones; expired STS keys renewed once (step 1 again, the upload kept), an
//! expired TOS `Auth` once (steps 1–2 again, the upload started over). A caption's cover
//! image goes up after the commit as its own step (`cover`, §12), recorded so it is never
//! uploaded twice. Step 5 and the work list as the other calls, each from a freshly
//! loaded page.

use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use super::imagex::{CoverFile, UploadedCover};
use super::sts::{SavedSts, StsCredentials};
use super::tos::UploadSlot;
use super::vod::CommittedVideo;
use super::{DouyinCreator, wire};
use crate::checkpoint::{CheckpointError, Checkpoints, Record};
use crate::domain::{Post, PostDraft, StepName};
use crate::ledger::PartRecord;
use crate::platform::backend::{
    Backend, BoxFuture, Committed, Created, StepFailure, UploadJob, at, recorded_parts,
    resolve_tag_ids, start_over, transient,
};
use crate::platform::multipart::PartDone;
use crate::platform::{Account, Expired, PublishError};

/// Videos larger than this upload long enough that the browser is better closed during
/// the upload and started again for the post (about half a second) than kept open (ours).
const RELEASE_PAGE_ABOVE: u64 = 32 * 1024 * 1024;

/// Step 1 (§1): STS credentials, from the page.
pub(crate) const CREDENTIALS: StepName = StepName::of("credentials");
/// Step 2 (§2): `ApplyUploadInner`.
pub(crate) const APPLY_UPLOAD: StepName = StepName::of("apply_upload");
/// Step 3 (§3): the bytes, in parts.
pub(crate) const UPLOAD: StepName = StepName::of("upload");
/// Step 4 (§4): `CommitUploadInner`; its record is what step 5 posts.
pub(crate) const COMMIT: StepName = StepName::of("commit");
/// §12: the caption's cover image through ImageX (only when it names one).
pub(crate) const COVER: StepName = StepName::of("cover");

pub(crate) const STEPS: &[StepName] = &[CREDENTIALS, APPLY_UPLOAD, UPLOAD, COMMIT, COVER];

/// STS keys this close to their expiry are renewed before they are used (ours).
const STS_MARGIN: Duration = Duration::from_secs(60);

/// Step 1's record: that it finished (the keys live only in the upload session, which is
/// deleted at the commit).
#[derive(Serialize, Deserialize)]
struct CredentialsDone {}

impl Record for CredentialsDone {
    const STEP: StepName = CREDENTIALS;
}

/// Step 2's record.
#[derive(Serialize, Deserialize)]
struct Applied {
    vid: String,
    store_uri: String,
}

impl Record for Applied {
    const STEP: StepName = APPLY_UPLOAD;
}

/// Step 3's record.
#[derive(Serialize, Deserialize)]
struct Uploaded {
    size: u64,
    /// 8 hex digits.
    crc32: String,
    parts: usize,
}

impl Record for Uploaded {
    const STEP: StepName = UPLOAD;
}

impl Record for CommittedVideo {
    const STEP: StepName = COMMIT;
    const ENDS_UPLOAD: bool = true;
}

impl Record for UploadedCover {
    const STEP: StepName = COVER;
}

/// What step 5 posts: the committed video and the cover image uploaded for it, if any.
struct Ready {
    video: CommittedVideo,
    cover: Option<UploadedCover>,
}

/// What a restart needs to go on with the upload; kept in the ledger until the commit.
#[derive(Serialize, Deserialize)]
struct Session {
    sts: SavedSts,
    slot: UploadSlot,
    upload_id: String,
}

/// The `douyin` backend.
pub(crate) struct DouyinCreatorBackend {
    client: DouyinCreator,
}

/// Where one upload stands: the keys (renewable), the slot and the TOS upload id.
struct Started {
    creds: StsCredentials,
    slot: UploadSlot,
    upload_id: String,
}

impl DouyinCreatorBackend {
    pub(crate) fn new(client: DouyinCreator) -> Self {
        DouyinCreatorBackend { client }
    }

    /// Steps 1–4, then the cover image when the caption names one. A cover record that
    /// cannot be read starts the whole upload over (said loudly), once.
    async fn upload_and_commit(&self, job: &UploadJob<'_>) -> Result<Committed, StepFailure> {
        let mut restarted = false;
        loop {
            let (video, creds) = self.committed_video(job).await?;
            let Some(path) = job.cover_image else {
                return Ok(committed(video, None));
            };
            match job.checkpoints.load::<UploadedCover>().await {
                Ok(Some(cover)) => {
                    info!(step = "cover", "reusing the uploaded cover image");
                    return Ok(committed(video, Some(cover)));
                }
                Ok(None) => {
                    let cover = self.upload_cover(job, path, creds).await?;
                    return Ok(committed(video, Some(cover)));
                }
                Err(e) if !restarted => {
                    restarted = true;
                    start_over(job.checkpoints, COVER, e).await?;
                }
                Err(e) => return Err(at(COVER)(e)),
            }
        }
    }

    /// The `cover` step: the image at `path` through ImageX with `creds` (the upload's
    /// keys, or fresh ones), renewed once if refused; recorded before it is used.
    async fn upload_cover(
        &self,
        job: &UploadJob<'_>,
        path: &std::path::Path,
        creds: Option<StsCredentials>,
    ) -> Result<UploadedCover, StepFailure> {
        let account = job.account.name.as_str();
        job.observer.step(&COVER);
        let file = CoverFile::open(path).await.map_err(at(COVER))?;
        let creds = match creds {
            Some(c) if !c.expires_within(STS_MARGIN) => c,
            _ => self.renew(account).await.map_err(at(COVER))?,
        };
        let cover = match self.client.upload_cover(&creds, &file).await {
            Err(PublishError::AuthExpired {
                what: Expired::UploadCredentials,
                reason,
            }) => {
                warn!(step = "cover", %reason, "upload credentials refused; renewing them once");
                let creds = self.renew(account).await.map_err(at(COVER))?;
                self.client.upload_cover(&creds, &file).await
            }
            other => other,
        }
        .map_err(at(COVER))?;
        job.checkpoints.save(&cover).await.map_err(at(COVER))?;
        info!(
            step = "cover",
            file = %cover.cover_file,
            bytes = cover.cover_bytes,
            uri = %cover.cover_uri,
            "cover image uploaded"
        );
        Ok(cover)
    }

    /// Steps 1–4; an expired TOS `Auth` starts the upload over once. With the video, the
    /// keys the commit used (none when the commit was recorded by an earlier run).
    async fn committed_video(
        &self,
        job: &UploadJob<'_>,
    ) -> Result<(CommittedVideo, Option<StsCredentials>), StepFailure> {
        match job.checkpoints.load::<CommittedVideo>().await {
            Ok(Some(video)) => {
                info!(step = "commit", vid = %video.vid, "reusing the committed upload");
                return Ok((video, None));
            }
            Ok(None) => {}
            Err(e) => start_over(job.checkpoints, COMMIT, e).await?,
        }
        let mut restarted = false;
        loop {
            match self.upload_once(job).await {
                Ok((video, creds)) => return Ok((video, Some(creds))),
                Err(StepFailure {
                    step,
                    error:
                        PublishError::AuthExpired {
                            what: Expired::UploadCredentials,
                            reason,
                        },
                }) if step == UPLOAD && !restarted => {
                    warn!(%step, %reason, "the upload's Auth expired; starting again from step 1");
                    restarted = true;
                    job.checkpoints.forget().await.map_err(at(step))?;
                }
                Err(failure) => return Err(failure),
            }
        }
    }

    /// Steps 1–4 once; an upload an earlier run started goes on where it stopped.
    async fn upload_once(
        &self,
        job: &UploadJob<'_>,
    ) -> Result<(CommittedVideo, StsCredentials), StepFailure> {
        let account = job.account.name.as_str();
        let (mut started, resumed) = match self.saved_session(job.checkpoints).await? {
            Some(session) => {
                info!(step = "upload", vid = %session.slot.vid, "resuming the upload");
                let started = Started {
                    creds: session.sts.into(),
                    slot: session.slot,
                    upload_id: session.upload_id,
                };
                (started, true)
            }
            None => (self.start(job).await?, false),
        };

        // A resumed upload whose bytes were all sent and finished goes on to the commit.
        let finished = resumed
            && job
                .checkpoints
                .load::<Uploaded>()
                .await
                .map_err(at(UPLOAD))?
                .is_some();
        if !finished {
            job.observer.step(&UPLOAD);
            let began = Instant::now();
            let parts = self.send_parts(job, &started).await.map_err(at(UPLOAD))?;
            self.client
                .finish_upload(&started.slot, &started.creds, &started.upload_id, &parts)
                .await
                .map_err(at(UPLOAD))?;
            let size = job.fingerprint.size;
            let secs = began.elapsed().as_secs_f64().max(1e-6);
            job.observer.uploaded(size, secs);
            let record = Uploaded {
                size,
                crc32: wire::crc32_hex(job.fingerprint.crc32),
                parts: parts.len(),
            };
            job.checkpoints.save(&record).await.map_err(at(UPLOAD))?;
            info!(
                step = "upload",
                bytes = size,
                parts = parts.len(),
                mib_per_s = format!("{:.1}", size as f64 / secs / 1048576.0),
                "uploaded"
            );
        }

        job.observer.step(&COMMIT);
        if started.creds.expires_within(STS_MARGIN) {
            info!(
                step = "commit",
                "the upload credentials are expiring; renewing them first"
            );
            started.creds = self.renew(account).await.map_err(at(COMMIT))?;
        }
        let video = match self.client.commit(&started.creds, &started.slot).await {
            Err(PublishError::AuthExpired {
                what: Expired::UploadCredentials,
                reason,
            }) => {
                warn!(step = "commit", %reason, "upload credentials expired; renewing them once");
                started.creds = self.renew(account).await.map_err(at(COMMIT))?;
                self.client.commit(&started.creds, &started.slot).await
            }
            other => other,
        }
        .map_err(at(COMMIT))?;
        job.checkpoints.save(&video).await.map_err(at(COMMIT))?;
        info!(step = "commit", vid = %video.vid, "upload committed");
        Ok((video, started.creds))
    }

    /// Fresh STS keys from a freshly loaded page (step 1 again, not recorded: the
    /// upload goes on).
    async fn renew(&self, account: &str) -> Result<StsCredentials, PublishError> {
        self.client.reload_page(account).await?;
        self.client.credentials(account).await
    }

    /// The session an earlier run saved; one that cannot be read is forgotten (said
    /// loudly) and the upload starts over.
    async fn saved_session(
        &self,
        checkpoints: &Checkpoints,
    ) -> Result<Option<Session>, StepFailure> {
        match checkpoints.session::<Session>().await {
            Ok(session) => Ok(session),
            Err(e @ CheckpointError::Unreadable { .. }) => {
                start_over(checkpoints, UPLOAD, e).await?;
                Ok(None)
            }
            Err(e) => Err(at(UPLOAD)(e)),
        }
    }

    /// Steps 1 and 2 and the TOS init, the session saved before any part goes.
    async fn start(&self, job: &UploadJob<'_>) -> Result<Started, StepFailure> {
        let account = job.account.name.as_str();
        job.observer.step(&CREDENTIALS);
        // A fresh page for each publish (docs/douyin-creator.md §0).
        self.client
            .reload_page(account)
            .await
            .map_err(at(CREDENTIALS))?;
        let creds = self
            .client
            .credentials(account)
            .await
            .map_err(at(CREDENTIALS))?;
        job.checkpoints
            .save(&CredentialsDone {})
            .await
            .map_err(at(CREDENTIALS))?;
        info!(step = "credentials", "got upload credentials");
        let size = job.fingerprint.size;
        if size > RELEASE_PAGE_ABOVE {
            // Steps 2–4 go straight to the upload hosts: the browser is closed for the
            // upload and opened again for the post, so its time does not grow with the video.
            self.client.release_page(account).await;
        }

        job.observer.step(&APPLY_UPLOAD);
        let (creds, slot) = match self.client.apply_upload(&creds, size).await {
            Err(PublishError::AuthExpired {
                what: Expired::UploadCredentials,
                reason,
            }) => {
                warn!(step = "apply_upload", %reason, "upload credentials refused; renewing them once");
                let creds = self.renew(account).await.map_err(at(APPLY_UPLOAD))?;
                let slot = self.client.apply_upload(&creds, size).await;
                (creds, slot)
            }
            other => (creds, other),
        };
        let slot = slot.map_err(at(APPLY_UPLOAD))?;
        let applied = Applied {
            vid: slot.vid.clone(),
            store_uri: slot.store_uri.clone(),
        };
        job.checkpoints
            .save(&applied)
            .await
            .map_err(at(APPLY_UPLOAD))?;
        info!(step = "apply_upload", vid = %slot.vid, "got an upload slot");

        job.observer.step(&UPLOAD);
        let upload_id = self
            .client
            .init_upload(&slot, &creds)
            .await
            .map_err(at(UPLOAD))?;
        let session = Session {
            sts: SavedSts::from(&creds),
            slot: slot.clone(),
            upload_id: upload_id.clone(),
        };
        job.checkpoints
            .save_session(&session)
            .await
            .map_err(at(UPLOAD))?;
        Ok(Started {
            creds,
            slot,
            upload_id,
        })
    }

    /// The parts not recorded yet, each recorded as it lands.
    async fn send_parts(
        &self,
        job: &UploadJob<'_>,
        started: &Started,
    ) -> Result<Vec<PartDone>, PublishError> {
        let done = recorded_parts(job.checkpoints).await?;
        let checkpoints = job.checkpoints;
        self.client
            .upload_parts(
                &started.slot,
                &started.creds,
                &started.upload_id,
                job.video,
                job.fingerprint.size,
                &job.fingerprint.parts,
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
            .await
    }

    /// Challenge ids: the caption's own first, then exact-name suggestions, for at most
    /// [`wire::MAX_CHALLENGE_LOOKUPS`] hashtags.
    async fn challenge_ids(
        &self,
        account: &Account,
        hashtags: &[(String, Option<String>)],
    ) -> Result<Vec<String>, PublishError> {
        resolve_tag_ids(hashtags, wire::MAX_CHALLENGE_LOOKUPS, |name| {
            self.client.challenge_id(&account.name, name)
        })
        .await
    }
}

impl Backend for DouyinCreatorBackend {
    fn steps(&self) -> &'static [StepName] {
        STEPS
    }

    fn login_page(&self) -> &'static str {
        wire::LOGIN_PAGE
    }

    fn renew_hint(&self, account: &str) -> Option<String> {
        Some(format!(
            "run `dropcast login {account}` (it shows a QR code to scan with the Douyin app); dropcast resumes by itself once the session works"
        ))
    }

    fn shutdown(&self) -> BoxFuture<'_, ()> {
        self.client.close_pages()
    }

    fn identity<'a>(
        &'a self,
        account: &'a Account,
    ) -> BoxFuture<'a, Result<Option<String>, PublishError>> {
        Box::pin(async move { self.client.whoami(&account.name).await.map(Some) })
    }

    fn check_account<'a>(
        &'a self,
        account: &'a Account,
    ) -> BoxFuture<'a, Result<(), PublishError>> {
        Box::pin(async move { self.renew(&account.name).await.map(|_| ()) })
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
            let ready = ours(upload)?;
            // A fresh page for each publish (docs/douyin-creator.md §0).
            self.client.reload_page(&account.name).await?;
            let extras = wire::CreateExtras::for_draft(draft, ready.cover.as_ref());
            self.client
                .create(&account.name, &ready.video, draft, &extras)
                .await
        })
    }

    fn find_post<'a>(
        &'a self,
        account: &'a Account,
        upload: &'a Committed,
        draft: &'a PostDraft,
        since: SystemTime,
    ) -> BoxFuture<'a, Result<Option<Post>, PublishError>> {
        Box::pin(async move {
            let video = &ours(upload)?.video;
            self.client
                .find_post(&account.name, &video.vid, &draft.text, since)
                .await
        })
    }
}

fn committed(video: CommittedVideo, cover: Option<UploadedCover>) -> Committed {
    Committed::new(video.vid.clone(), Ready { video, cover })
}

/// The `douyin` upload inside `committed`; another backend's is a bug, refused.
fn ours(committed: &Committed) -> Result<&Ready, PublishError> {
    committed
        .get::<Ready>()
        .ok_or_else(|| PublishError::Rejected {
            reason: "internal error: the upload was not made by douyin".into(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{ContentHash, Fingerprint, Platform};
    use crate::ledger::{Claim, Ledger, NewJob};
    use crate::platform::douyin_creator::fake::{self, Fake};
    use crate::progress::Progress;
    use crate::shared_ledger::SharedLedger;
    use crate::video::VideoFile;
    use std::sync::Arc;

    const PART: u64 = wire::MIN_PART;

    struct Quiet;
    impl crate::platform::backend::Observer for Quiet {
        fn step(&self, _: &StepName) {}
        fn uploaded(&self, _: u64, _: f64) {}
    }

    /// A three-part video, its fingerprint, and a job's checkpoints in a fresh ledger.
    struct Job {
        _dir: tempfile::TempDir,
        data: Vec<u8>,
        video: VideoFile,
        fp: Fingerprint,
        checkpoints: Checkpoints,
        account: Account,
        /// The caption's cover image, if the test gives one.
        cover: Option<std::path::PathBuf>,
    }

    fn job() -> Job {
        let dir = tempfile::tempdir().unwrap();
        let data: Vec<u8> = (0..2 * PART + 999).map(|i| (i % 253) as u8).collect();
        let path = dir.path().join("v.mp4");
        std::fs::write(&path, &data).unwrap();
        let fp = crate::hash::fingerprint(&path, PART).unwrap();
        let mut ledger = Ledger::open(dir.path()).unwrap();
        let new = NewJob {
            sha256: ContentHash::from_digest(&[7; 32]),
            account: "studio".into(),
            platform: Platform::Douyin,
            video: "v.mp4".into(),
            caption: None,
            size: fp.size,
        };
        let Claim::New(record) = ledger.claim(&new, false).unwrap() else {
            panic!("a new job")
        };
        Job {
            video: VideoFile::open_path(&path).unwrap(),
            checkpoints: Checkpoints::new(SharedLedger::new(ledger), record.id, STEPS),
            _dir: dir,
            data,
            fp,
            account: Account::browser_session("studio"),
            cover: None,
        }
    }

    async fn upload(backend: &DouyinCreatorBackend, job: &Job) -> Result<Committed, StepFailure> {
        let progress = Progress::new();
        backend
            .upload(UploadJob {
                account: &job.account,
                video: &job.video,
                fingerprint: &job.fp,
                checkpoints: &job.checkpoints,
                observer: &Quiet,
                progress: &progress,
                cover_image: job.cover.as_deref(),
                draft: None,
            })
            .await
    }

    async fn backend() -> (Arc<Fake>, DouyinCreatorBackend) {
        let (fake, client) = fake::start().await;
        (fake, DouyinCreatorBackend::new(client))
    }

    #[tokio::test]
    async fn steps_are_recorded_and_a_restart_sends_only_the_missing_parts() {
        let (fake, backend) = backend().await;
        let job = job();
        fake.fail(
            "part:3",
            400,
            serde_json::json!({"code": 4000, "message": "no"}),
        );
        let failed = upload(&backend, &job).await.unwrap_err();
        assert_eq!(failed.step, UPLOAD);
        assert_eq!(failed.error.class(), "rejected");
        assert!(job.checkpoints.load::<Applied>().await.unwrap().is_some());
        assert_eq!(job.checkpoints.parts().await.unwrap().len(), 2);

        // The next run (a restart reads the same ledger) resumes the session.
        let committed = upload(&backend, &job).await.unwrap();
        assert_eq!(committed.media(), "v1");
        assert_eq!(fake.count("auth"), 1, "step 1 is not redone");
        assert_eq!(fake.count("apply"), 1, "step 2 is not redone");
        assert_eq!(fake.count("init"), 1);
        assert_eq!((fake.count("part:1"), fake.count("part:2")), (1, 1));
        assert_eq!(fake.count("part:3"), 2);
        assert_eq!(
            fake.finished.lock().unwrap().as_deref(),
            Some(&job.data[..])
        );
        let video = job
            .checkpoints
            .load::<CommittedVideo>()
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (video.vid.as_str(), video.poster.as_deref()),
            ("v1", Some("poster"))
        );
        // Committed: the session (with its keys) is gone, and a third run sends nothing.
        assert!(
            job.checkpoints
                .session::<Session>()
                .await
                .unwrap()
                .is_none()
        );
        upload(&backend, &job).await.unwrap();
        assert_eq!(fake.count("commit"), 1);
        assert_eq!(fake.reloads.load(std::sync::atomic::Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn expired_sts_keys_are_renewed_once_and_the_upload_kept() {
        let (fake, backend) = backend().await;
        let job = job();
        let expired =
            serde_json::json!({"ResponseMetadata": {"Error": {"Code": "InvalidAuthorization"}}});
        fake.fail("commit", 403, expired.clone());
        upload(&backend, &job).await.unwrap();
        assert_eq!(fake.count("auth"), 2, "step 1 again for fresh keys");
        assert_eq!(fake.count("part:1"), 1, "the bytes are not sent again");
        assert_eq!(fake.count("commit"), 2);

        // Refused twice: the job fails at the commit with the class the page names.
        let (fake, backend) = self::backend().await;
        let job = self::job();
        fake.fail("apply", 403, expired.clone());
        fake.fail("apply", 403, expired);
        let failed = upload(&backend, &job).await.unwrap_err();
        assert_eq!(failed.step, APPLY_UPLOAD);
        assert!(matches!(
            failed.error,
            PublishError::AuthExpired {
                what: Expired::UploadCredentials,
                ..
            }
        ));
        assert_eq!(fake.count("apply"), 2);
    }

    #[tokio::test]
    async fn an_expired_upload_auth_starts_the_upload_over_once() {
        let (fake, backend) = backend().await;
        let job = job();
        fake.fail("part:2", 401, serde_json::json!({"code": 401}));
        let committed = upload(&backend, &job).await.unwrap();
        assert_eq!(committed.media(), "v2", "a new slot from step 2");
        assert_eq!((fake.count("auth"), fake.count("apply")), (2, 2));

        let (fake, backend) = self::backend().await;
        let job = self::job();
        fake.fail("part:1", 403, serde_json::json!({"code": 403}));
        fake.fail("part:1", 403, serde_json::json!({"code": 403}));
        let failed = upload(&backend, &job).await.unwrap_err();
        assert_eq!(
            (failed.step, failed.error.class()),
            (UPLOAD, "auth_expired")
        );
    }

    // Regression (issue 11 item 5): a caption's cover image never reached the post; once recorded it must never go up again.
    #[tokio::test]
    async fn the_cover_goes_up_once_after_the_commit_and_is_reused_on_resume() {
        let (fake, backend) = backend().await;
        let mut job = job();
        let path = job._dir.path().join("cover.png");
        std::fs::write(&path, b"\x89PNG not really").unwrap();
        job.cover = Some(path.clone());
        // The first try is refused as expired keys: renewed once, then it goes up.
        let expired =
            serde_json::json!({"ResponseMetadata": {"Error": {"Code": "InvalidAuthorization"}}});
        fake.fail("image_apply", 403, expired);
        let committed = upload(&backend, &job).await.unwrap();
        let cover = ours(&committed).unwrap().cover.clone().unwrap();
        assert_eq!(cover.cover_uri, fake::IMAGE_URI);
        assert_eq!(cover.size(), Some((720, 1280)));
        assert_eq!(fake.count("auth"), 2, "renewed once for the cover");
        let recorded = job.checkpoints.load::<UploadedCover>().await.unwrap();
        assert_eq!(recorded.as_ref(), Some(&cover));

        // Resumed (the commit and the cover recorded): nothing goes up again, even if
        // the file is gone by now.
        std::fs::remove_file(&path).unwrap();
        let again = upload(&backend, &job).await.unwrap();
        assert_eq!(ours(&again).unwrap().cover.as_ref(), Some(&cover));
        assert_eq!((fake.count("image_put"), fake.count("commit")), (1, 1));

        // Without a cover image in the caption, no ImageX request is made.
        let (fake, backend) = self::backend().await;
        let job = self::job();
        upload(&backend, &job).await.unwrap();
        assert_eq!(fake.count("image_apply"), 0);
    }

    #[tokio::test]
    async fn each_publish_loads_the_page_afresh_and_find_post_reads_the_list() {
        let (fake, backend) = backend().await;
        let job = job();
        let committed = upload(&backend, &job).await.unwrap();
        let draft = crate::domain::PostDraft {
            text: "hi".into(),
            plain_text: "hi".into(),
            entities: vec![],
            challenge_ids: vec![],
            mention_ids: vec![],
            visibility: crate::domain::Visibility::Public,
            allow_download: false,
            cover_at: std::time::Duration::ZERO,
            collection: None,
            publish_at: None,
            title: None,
            cover_image: None,
            ai_generated: false,
            declaration: None,
            tiktok: Default::default(),
        };
        let before = fake.reloads.load(std::sync::atomic::Ordering::SeqCst);
        let created = backend
            .publish(&job.account, &committed, &draft)
            .await
            .unwrap();
        assert_eq!(created, Created::Posted(super::super::post("123")));
        assert_eq!(
            fake.reloads.load(std::sync::atomic::Ordering::SeqCst),
            before + 1
        );
        let found = backend
            .find_post(&job.account, &committed, &draft, SystemTime::now())
            .await
            .unwrap();
        assert_eq!(found, None);
        assert_eq!(fake.count("work_list"), 1);
    }
}
