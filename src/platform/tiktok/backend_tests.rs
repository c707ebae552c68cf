//! The backend against the unit-test fake: token rotation saved before use, the fence,
//! chunks resumed from `Content-Range`, a restart resuming the same publish_id, and the
//! checks of creator_info before any byte.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::*;
use crate::checkpoint::Checkpoints;
use crate::domain::{ContentHash, Fingerprint, Platform, TiktokPrivacy, Visibility};
use crate::ledger::{Claim, Ledger, NewJob};
use crate::platform::tiktok::fake::{self, Fake};
use crate::platform::tiktok::tokens::{TokenStore, Tokens};
use crate::platform::tiktok::{App, TiktokSettings};
use crate::progress::Progress;
use crate::shared_ledger::SharedLedger;
use crate::video::VideoFile;

struct Quiet;
impl crate::platform::backend::Observer for Quiet {
    fn step(&self, _: &StepName) {}
    fn uploaded(&self, _: u64, _: f64) {}
}

struct Job {
    dir: tempfile::TempDir,
    data: Vec<u8>,
    video: VideoFile,
    fp: Fingerprint,
    checkpoints: Checkpoints,
    account: Account,
    /// The ledger under `checkpoints`, for what the pipeline does between runs.
    ledger: SharedLedger,
    id: crate::ledger::JobId,
}

fn job(size: usize) -> Job {
    let dir = tempfile::tempdir().unwrap();
    let data: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
    let path = dir.path().join("v.mp4");
    std::fs::write(&path, &data).unwrap();
    let fp = crate::hash::fingerprint(&path, 0).unwrap();
    let mut ledger = Ledger::open(dir.path()).unwrap();
    let new = NewJob {
        sha256: ContentHash::from_digest(&[9; 32]),
        account: "g".into(),
        platform: Platform::Tiktok,
        video: "v.mp4".into(),
        caption: None,
        size: fp.size,
    };
    let Claim::New(record) = ledger.claim(&new, false).unwrap() else {
        panic!("a new job")
    };
    let ledger = SharedLedger::new(ledger);
    Job {
        video: VideoFile::open_path(&path).unwrap(),
        checkpoints: Checkpoints::new(ledger.clone(), record.id, STEPS),
        ledger,
        id: record.id,
        dir,
        data,
        fp,
        account: Account::browser_session("g"),
    }
}

fn draft(privacy: TiktokPrivacy) -> PostDraft {
    PostDraft {
        text: "hi #cat".into(),
        plain_text: "hi".into(),
        entities: vec![],
        challenge_ids: vec![],
        mention_ids: vec![],
        visibility: Visibility::Public,
        allow_download: false,
        cover_at: Duration::from_secs(1),
        collection: None,
        publish_at: None,
        title: None,
        cover_image: None,
        ai_generated: false,
        declaration: None,
        tiktok: TiktokOptions {
            privacy: Some(privacy),
            allow_comment: true,
            ..TiktokOptions::default()
        },
    }
}

/// The backend for account `g` against the fake, its tokens under `state` (access
/// token `A1` expiring at `access_expires_at`).
async fn backend(state: &std::path::Path, access_expires_at: u64) -> (Arc<Fake>, TiktokBackend) {
    let (fake, base) = fake::start().await;
    let store = TokenStore::new(state);
    store
        .save(
            "g",
            &Tokens {
                open_id: "o".into(),
                scope: "video.publish".into(),
                access: Secret::new("A1"),
                access_expires_at,
                refresh: Secret::new("R1"),
                refresh_expires_at: unix(SystemTime::now()) + 86_400,
                nickname: None,
                username: None,
            },
        )
        .unwrap();
    *fake.token_file.lock().unwrap() = Some(store.path("g"));
    let settings = TiktokSettings {
        api_url: base.clone(),
        auth_url: base,
        timeout: Duration::from_secs(30),
        retry: RetryPolicy {
            attempts: 3,
            initial: Duration::from_millis(1),
            max: Duration::from_millis(5),
        },
    };
    let app = App {
        client_key: "k".into(),
        client_secret: Secret::new("s"),
    };
    let accounts = HashMap::from([("g".to_owned(), AccountSettings { app, inbox: false })]);
    (
        fake,
        TiktokBackend::new(&settings, state, accounts).unwrap(),
    )
}

async fn upload(b: &TiktokBackend, job: &Job, draft: &PostDraft) -> Result<Committed, StepFailure> {
    let progress = Progress::new();
    b.upload(UploadJob {
        account: &job.account,
        video: &job.video,
        fingerprint: &job.fp,
        checkpoints: &job.checkpoints,
        observer: &Quiet,
        progress: &progress,
        draft: Some(draft),
        cover_image: None,
    })
    .await
}

fn later() -> u64 {
    unix(SystemTime::now()) + 7200
}

// Issue 12: a rotated refresh token must be on disk before its access token is used.
#[tokio::test]
async fn a_refreshed_token_is_saved_before_its_access_token_is_used() {
    let state = tempfile::tempdir().unwrap();
    let (fake, b) = backend(state.path(), unix(SystemTime::now()) + 10).await;
    b.check_account(&Account::browser_session("g"))
        .await
        .unwrap();
    assert_eq!(fake.count("token"), 1, "refreshed before expiry");
    assert_eq!(*fake.saved_before_use.lock().unwrap(), vec![true]);
    let stored = TokenStore::new(state.path()).load("g").unwrap();
    assert_eq!(stored.refresh.expose(), "R2");
    assert_eq!(stored.nickname.as_deref(), Some("Cat"));
    let who = b.identity(&Account::browser_session("g")).await.unwrap();
    assert_eq!(who.as_deref(), Some("Cat (@cat)"));

    // A refresh the platform refuses pauses the account with the command that fixes it.
    *fake.refresh.lock().unwrap() = "R-elsewhere".into();
    fake.access.lock().unwrap().clear();
    let err = b
        .check_account(&Account::browser_session("g"))
        .await
        .unwrap_err();
    assert_eq!(err.class(), "auth_expired");
    assert!(err.to_string().contains("authorize again"), "{err}");
    assert!(!err.to_string().contains("R2"), "{err}");
}

#[tokio::test]
async fn chunks_resume_from_the_servers_content_range_with_one_publish_id() {
    let state = tempfile::tempdir().unwrap();
    let (fake, b) = backend(state.path(), later()).await;
    let job = job(70_000_000);
    // The second chunk's answer is lost after the server took it; the fourth gets a 503.
    fake.lose_answer_of_put.lock().unwrap().push(2);
    fake.fail_put.lock().unwrap().push(5);
    *fake.post_ids.lock().unwrap() = vec![7_300_000_000_000_000_001];
    let committed = upload(&b, &job, &draft(TiktokPrivacy::SelfOnly))
        .await
        .unwrap();
    assert_eq!(committed.media(), "v_pub_file~1");
    assert_eq!(fake.count("init"), 1);
    assert!(*fake.bytes.lock().unwrap() == job.data, "bytes intact");
    let init = fake.last_init.lock().unwrap().clone().unwrap();
    assert_eq!(
        init["source_info"],
        serde_json::json!({"source": "FILE_UPLOAD", "video_size": 70000000, "chunk_size": 16777216, "total_chunk_count": 4})
    );
    assert_eq!(init["post_info"]["privacy_level"], "SELF_ONLY");
    assert_eq!(init["post_info"]["disable_comment"], false);
    assert_eq!(init["post_info"]["disable_stitch"], true);
    assert_eq!(init["post_info"]["video_cover_timestamp_ms"], 1000);
    let created = b
        .publish(&job.account, &committed, &draft(TiktokPrivacy::SelfOnly))
        .await
        .unwrap();
    assert_eq!(
        created,
        Created::Posted(Post::live(
            "7300000000000000001",
            "https://www.tiktok.com/@cat/video/7300000000000000001"
        ))
    );
    // Uploaded: a second run sends nothing.
    upload(&b, &job, &draft(TiktokPrivacy::SelfOnly))
        .await
        .unwrap();
    // 1, 2 (answer lost), 2 again (416: the server has it), 3, 4 (503), 4 again (201).
    assert_eq!((fake.count("init"), fake.count("put")), (1, 6));
}

#[tokio::test]
async fn a_restart_resumes_the_same_publish_id_and_never_inits_again() {
    let state = tempfile::tempdir().unwrap();
    let (fake, b) = backend(state.path(), later()).await;
    let job = job(70_000_000);
    // Chunk 3 fails three times: the step fails (held), as a crash would stop it.
    fake.fail_put.lock().unwrap().extend([3, 4, 5]);
    let failed = upload(&b, &job, &draft(TiktokPrivacy::SelfOnly))
        .await
        .unwrap_err();
    assert_eq!((failed.step, failed.error.class()), (UPLOAD, "transient"));
    assert_eq!(job.checkpoints.parts().await.unwrap().len(), 2);
    let fence: InitRecord = job.checkpoints.load().await.unwrap().unwrap();
    assert_eq!(fence.publish_id.as_deref(), Some("v_pub_file~1"));

    // A new backend (a restarted agent) over the same ledger resumes at chunk 3.
    let (fake2, b2) = (fake.clone(), b);
    let committed = upload(&b2, &job, &draft(TiktokPrivacy::SelfOnly))
        .await
        .unwrap();
    assert_eq!(committed.media(), "v_pub_file~1");
    assert_eq!(
        fake2.count("init"),
        1,
        "never a second init once bytes went"
    );
    assert_eq!(fake2.count("put"), 7, "2 sent, 3 refused, 2 resumed");
    assert!(*fake.bytes.lock().unwrap() == job.data);
    drop(job.dir);
}

#[tokio::test]
async fn what_the_creator_cannot_post_is_refused_before_init_or_any_byte() {
    let state = tempfile::tempdir().unwrap();
    let (fake, b) = backend(state.path(), later()).await;
    let job = job(1000);
    let failed = upload(&b, &job, &draft(TiktokPrivacy::FollowerOfCreator))
        .await
        .unwrap_err();
    assert_eq!((failed.step, failed.error.class()), (INIT, "rejected"));
    assert!(
        failed.error.to_string().contains("not offered"),
        "{}",
        failed.error
    );
    assert_eq!(
        (
            fake.count("creator_info"),
            fake.count("init"),
            fake.count("put")
        ),
        (1, 0, 0)
    );
}

impl Job {
    /// Runs `f` on the job's ledger (what the pipeline records between the backend's calls).
    async fn ledger<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Ledger, crate::ledger::JobId) -> Result<T, crate::ledger::LedgerError>
        + Send
        + 'static,
    ) -> T {
        let id = self.id;
        self.ledger.call(move |l| f(l, id)).await.unwrap()
    }
}

/// The job's record of its finished upload.
async fn uploaded(job: &Job) -> Uploaded {
    job.checkpoints.load::<Uploaded>().await.unwrap().unwrap()
}

// The dead end of `dropcast retry` after a FAILED status: the retried job polled the same
// dead publish_id and failed again, forever.
#[tokio::test]
async fn after_a_failed_publish_id_the_retried_job_inits_anew_once() {
    let state = tempfile::tempdir().unwrap();
    let (fake, b) = backend(state.path(), later()).await;
    let job = job(1000);
    let d = draft(TiktokPrivacy::SelfOnly);
    let committed = upload(&b, &job, &d).await.unwrap();
    assert_eq!(committed.media(), "v_pub_file~1");
    *fake.status.lock().unwrap() = "FAILED";
    *fake.fail_reason.lock().unwrap() = "spam_risk_text";
    job.ledger(|l, id| l.mark_publish_sent(id)).await;
    let e = b.publish(&job.account, &committed, &d).await.unwrap_err();
    assert_eq!(e.class(), "rejected");
    let said = e.to_string();
    for words in [
        "spam",
        "(spam_risk_text)",
        "v_pub_file~1",
        "never post",
        "`dropcast retry` starts a new upload",
    ] {
        assert!(said.contains(words), "{words}: {said}");
    }
    assert_eq!(
        uploaded(&job).await.failed.as_deref(),
        Some("spam_risk_text")
    );

    // The pipeline fails the job; `dropcast retry` makes it active again.
    job.ledger(|l, id| l.mark_failed(id, Some(&StepName::PUBLISH), "rejected", "x"))
        .await;
    job.ledger(|l, id| l.requeue(id)).await;
    *fake.status.lock().unwrap() = "PUBLISH_COMPLETE";
    *fake.post_ids.lock().unwrap() = vec![7_300_000_000_000_000_002];
    let again = upload(&b, &job, &d).await.unwrap();
    assert_eq!(again.media(), "v_pub_file~2", "a new publish_id");
    assert_eq!(fake.count("init"), 2);
    let record = job.ledger(|l, id| l.job(id)).await.unwrap();
    assert_eq!(
        record.publish_sent_at, None,
        "the void upload's mark went with it"
    );
    assert_eq!(uploaded(&job).await.failed, None);
    assert!(*fake.bytes.lock().unwrap() == job.data, "bytes intact");
    let created = b.publish(&job.account, &again, &d).await.unwrap();
    assert!(matches!(created, Created::Posted(p) if p.id == "7300000000000000002"));
    // Resumed once more: the new upload stands, no third init.
    upload(&b, &job, &d).await.unwrap();
    assert_eq!(fake.count("init"), 2);
}

// The fence: a publish_id whose status is anything but FAILED (still processing, or no
// answer at all) may still post, so it is never replaced by a new init.
#[tokio::test]
async fn a_publish_id_not_known_to_have_failed_is_never_inited_again() {
    let state = tempfile::tempdir().unwrap();
    let (fake, b) = backend(state.path(), later()).await;
    let job = job(1000);
    let d = draft(TiktokPrivacy::SelfOnly);
    let committed = upload(&b, &job, &d).await.unwrap();
    job.ledger(|l, id| l.mark_publish_sent(id)).await;
    for status in ["PROCESSING_UPLOAD", "PROCESSING_DOWNLOAD", "SOMETHING_NEW"] {
        *fake.status.lock().unwrap() = status;
        let found = b
            .find_post(&job.account, &committed, &d, SystemTime::now())
            .await;
        assert!(matches!(found, Ok(None) | Err(_)), "{status}: {found:?}");
        assert_eq!(uploaded(&job).await.failed, None, "{status}");
    }
    *fake.status_down.lock().unwrap() = true;
    let lost = b
        .find_post(&job.account, &committed, &d, SystemTime::now())
        .await;
    assert_eq!(lost.unwrap_err().class(), "transient");
    // The job is held, or failed and retried: it resumes the same publish_id.
    job.ledger(|l, id| l.mark_failed(id, None, "transient", "x"))
        .await;
    job.ledger(|l, id| l.requeue(id)).await;
    let again = upload(&b, &job, &d).await.unwrap();
    assert_eq!(again.media(), "v_pub_file~1");
    assert_eq!(fake.count("init"), 1, "never a second init");
    let record = job.ledger(|l, id| l.job(id)).await.unwrap();
    assert!(record.publish_in_doubt(), "the fence stands");
}

// A FAILED status seen while reconciling (a held job's next run) is recorded too, and a
// job parked as unconfirmed keeps its upload until `dropcast retry`.
#[tokio::test]
async fn a_failed_status_found_by_reconciling_voids_the_upload_only_after_retry() {
    let state = tempfile::tempdir().unwrap();
    let (fake, b) = backend(state.path(), later()).await;
    let job = job(1000);
    let d = draft(TiktokPrivacy::SelfOnly);
    let committed = upload(&b, &job, &d).await.unwrap();
    job.ledger(|l, id| l.mark_publish_sent(id)).await;
    *fake.status.lock().unwrap() = "FAILED";
    *fake.fail_reason.lock().unwrap() = "internal";
    let found = b
        .find_post(&job.account, &committed, &d, SystemTime::now())
        .await;
    assert_eq!(found.unwrap(), None, "no post, and none ever");
    assert_eq!(uploaded(&job).await.failed.as_deref(), Some("internal"));
    job.ledger(|l, id| l.mark_unconfirmed(id, "x")).await;
    let parked = upload(&b, &job, &d).await.unwrap();
    assert_eq!((parked.media(), fake.count("init")), ("v_pub_file~1", 1));
    job.ledger(|l, id| l.requeue(id)).await;
    let again = upload(&b, &job, &d).await.unwrap();
    assert_eq!((again.media(), fake.count("init")), ("v_pub_file~2", 2));
}
