//! Fencing across a renewal: a job an agent lost stays lost to it.

use std::path::PathBuf;
use std::time::Duration;

use super::super::{Claim, ContentHash, Ledger, LedgerError, NewJob, Platform, StepName};

fn new_job() -> NewJob {
    NewJob {
        sha256: ContentHash::from_digest(&[7; 32]),
        account: "main".into(),
        platform: Platform::DouyinWeb,
        video: PathBuf::from("clip.mp4"),
        caption: None,
        size: 1234,
    }
}

/// Two agents on one ledger file: `a1` with leases that expire at once, `a2`.
fn two_agents() -> (tempfile::TempDir, Ledger, Ledger) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut a1 = Ledger::open(dir.path()).expect("open");
    a1.set_agent("a1", Duration::from_millis(1));
    let mut a2 = Ledger::open(dir.path()).expect("open");
    a2.set_agent("a2", Duration::from_secs(3600));
    (dir, a1, a2)
}

fn upload() -> StepName {
    StepName::parse("upload").expect("a step")
}

// Defect: a renewal that found the job taken over forgot its fence, so the stale task's
// next write, once the new holder had let the lease go, silently took a new lease.
#[test]
fn a_job_lost_at_renewal_refuses_the_stale_writers_next_write() {
    let (_dir, mut a1, mut a2) = two_agents();
    let Claim::New(job) = a1.claim(&new_job(), false).expect("claim") else {
        panic!("a new job")
    };
    std::thread::sleep(Duration::from_millis(5));
    assert!(matches!(a2.claim(&new_job(), false), Ok(Claim::Resume(_))));
    assert_eq!(a1.renew_leases().expect("renew"), vec![job.id]);
    a2.release(&[job.id]).expect("release");

    let refused = a1.record_step(job.id, &upload(), &serde_json::json!({}), false);
    assert!(
        matches!(refused, Err(LedgerError::LeaseLost { .. })),
        "{refused:?}"
    );
    assert_eq!(
        a1.lost_to(job.id).expect("lost_to").as_deref(),
        Some("none")
    );
    let fence = a2.job(job.id).expect("job").expect("there").lease.fence;
    assert_eq!(fence, 2, "the stale writer took no lease");
}

#[test]
fn a_drop_given_up_or_claimed_again_is_no_longer_lost() {
    let (_dir, mut a1, mut a2) = two_agents();
    let Claim::New(job) = a1.claim(&new_job(), false).expect("claim") else {
        panic!("a new job")
    };
    std::thread::sleep(Duration::from_millis(5));
    assert!(matches!(a2.claim(&new_job(), false), Ok(Claim::Resume(_))));
    a1.renew_leases().expect("renew");
    assert_eq!(a1.lost_to(job.id).expect("lost_to").as_deref(), Some("a2"));
    a1.release_drop(&job.video).expect("release");
    assert_eq!(a1.lost_to(job.id).expect("lost_to"), None);

    a2.release(&[job.id]).expect("release");
    a1.renew_leases().expect("renew");
    assert!(matches!(a1.claim(&new_job(), false), Ok(Claim::Resume(_))));
    a1.record_step(job.id, &upload(), &serde_json::json!({}), false)
        .expect("a claimed job is written");
}
