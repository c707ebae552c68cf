//! The ledger's side of step 5 and of upload sessions: a post known to exist without its id
//! can never be sent again, failed or abandoned; the last send per account survives a
//! restart; a multipart session (credentials) is deleted once the upload is committed or
//! the job ends.

use std::path::PathBuf;

use dropcast::domain::{ContentHash, Platform, StepName};
use dropcast::ledger::{Claim, JobRecord, JobState, Ledger, LedgerError, NewJob, PartRecord};
use dropcast::platform::douyin_post;
use serde_json::json;

fn open() -> (tempfile::TempDir, Ledger) {
    let dir = tempfile::tempdir().unwrap();
    let ledger = Ledger::open(dir.path()).unwrap();
    (dir, ledger)
}

fn claim(ledger: &mut Ledger, n: u8, account: &str) -> JobRecord {
    let job = NewJob {
        sha256: ContentHash::from_digest(&[n; 32]),
        account: account.into(),
        platform: Platform::DouyinWeb,
        video: PathBuf::from(format!("v{n}.mp4")),
        caption: None,
        size: 10,
    };
    match ledger.claim(&job, false).unwrap() {
        Claim::New(job) => job,
        other => panic!("{other:?}"),
    }
}

fn session(ledger: &mut Ledger, id: i64) {
    ledger
        .save_upload_session(id, &json!({"upload_id": "u", "tos_sign": "SECRET"}))
        .unwrap();
    ledger
        .record_part(
            id,
            PartRecord {
                number: 1,
                size: 5,
                crc32: 7,
            },
        )
        .unwrap();
}

// Regression (issue 9 item 5): "already published" had no record; the job was parked as
// unconfirmed and could be sent again with `retry`.
#[test]
fn a_post_without_an_id_is_never_sent_again_failed_or_abandoned() {
    let (_dir, mut ledger) = open();
    let job = claim(&mut ledger, 1, "main");
    ledger.mark_publish_sent(job.id).unwrap();
    ledger.mark_posted_without_id(job.id).unwrap();
    let job = ledger.job(job.id).unwrap().unwrap();
    assert!(job.posted_without_id());
    assert!(!job.publish_in_doubt());
    assert_eq!(job.state, JobState::Active);
    assert!(matches!(
        ledger.mark_publish_sent(job.id),
        Err(LedgerError::Illegal { .. })
    ));
    assert!(matches!(
        ledger.mark_abandoned(job.id, "changed"),
        Err(LedgerError::Illegal { .. })
    ));
    assert!(matches!(
        ledger.mark_failed(job.id, None, "caption", "bad"),
        Err(LedgerError::Illegal { .. })
    ));
    // The post list names it later.
    ledger.mark_published(job.id, &douyin_post("7300")).unwrap();
    let job = ledger.job(job.id).unwrap().unwrap();
    assert_eq!(job.post.as_ref().map(|p| p.id.as_str()), Some("7300"));
    assert!(!job.posted_without_id());
}

// Regression (issue 9 item 11): the last post time per account was memory only.
#[test]
fn the_last_send_per_account_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let mut ledger = Ledger::open(dir.path()).unwrap();
    assert_eq!(ledger.last_publish_sent("main").unwrap(), None);
    let a = claim(&mut ledger, 1, "main");
    let b = claim(&mut ledger, 2, "main");
    let other = claim(&mut ledger, 3, "other");
    ledger.mark_publish_sent(a.id).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(5));
    ledger.mark_publish_sent(b.id).unwrap();
    let b_sent = ledger.job(b.id).unwrap().unwrap().publish_sent_at;
    drop(ledger);
    let ledger = Ledger::open(dir.path()).unwrap();
    assert_eq!(ledger.last_publish_sent("main").unwrap(), b_sent);
    assert_eq!(ledger.last_publish_sent("other").unwrap(), None);
    let _ = other;
}

// Regression (issue 9, smaller): upload credentials stayed in the ledger after their job.
#[test]
fn upload_sessions_go_when_the_upload_is_committed_or_the_job_ends() {
    let (dir, mut ledger) = open();
    let committed = claim(&mut ledger, 1, "main");
    session(&mut ledger, committed.id);
    ledger
        .record_step(
            committed.id,
            &StepName::of("commit"),
            &json!({"vid": "v"}),
            true,
        )
        .unwrap();
    assert_eq!(ledger.upload_session(committed.id).unwrap(), None);
    assert!(ledger.parts(committed.id).unwrap().is_empty());

    let failed = claim(&mut ledger, 2, "main");
    session(&mut ledger, failed.id);
    ledger
        .mark_failed(failed.id, Some(&StepName::of("upload")), "rejected", "no")
        .unwrap();
    assert_eq!(ledger.upload_session(failed.id).unwrap(), None);

    let abandoned = claim(&mut ledger, 3, "main");
    session(&mut ledger, abandoned.id);
    ledger.mark_abandoned(abandoned.id, "changed").unwrap();
    assert_eq!(ledger.upload_session(abandoned.id).unwrap(), None);

    // A job still uploading keeps its session, across a restart too.
    let uploading = claim(&mut ledger, 4, "main");
    session(&mut ledger, uploading.id);
    drop(ledger);
    let ledger = Ledger::open(dir.path()).unwrap();
    assert!(ledger.upload_session(uploading.id).unwrap().is_some());
    assert_eq!(ledger.parts(uploading.id).unwrap().len(), 1);
}
