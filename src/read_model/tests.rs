//! The read model: one test per job state, and the wording each failure class gets.

use std::path::Path;

use serde_json::json;

use super::*;
use crate::domain::ContentHash;
use crate::ledger::{Claim, NewJob};
use crate::pipeline::live::InFlight;

fn hash(n: u8) -> ContentHash {
    ContentHash::from_digest(&[n; 32])
}

fn claim(l: &mut Ledger, n: u8, video: &str) -> JobRecord {
    let job = NewJob {
        sha256: hash(n),
        account: "main".into(),
        platform: crate::domain::Platform::DouyinWeb,
        video: video.into(),
        caption: None,
        size: 10,
    };
    match l.claim(&job, false).unwrap() {
        Claim::New(j) | Claim::Resume(j) => j,
        Claim::Duplicate { job, .. } | Claim::Held { job, .. } => job,
    }
}

const ALL: Query = Query {
    recent_posts: 50,
    max_problems: usize::MAX,
    scheduled: true,
};

fn model(l: &Ledger, snapshot: Option<&Snapshot>) -> Model {
    Model::assemble(LedgerPart::read(l, &ALL).unwrap(), snapshot, UtcTime::now())
}

fn ledger() -> (tempfile::TempDir, Ledger) {
    let dir = tempfile::tempdir().unwrap();
    let l = Ledger::open(dir.path()).unwrap();
    (dir, l)
}

#[test]
fn active_jobs_are_queued_with_their_next_step_unless_in_flight() {
    let (_d, mut l) = ledger();
    let fresh = claim(&mut l, 1, "fresh.mp4");
    let uploaded = claim(&mut l, 2, "sub/up.mp4");
    l.record_step(uploaded.id, &StepName::of("credentials"), &json!({}), false)
        .unwrap();
    let sent = claim(&mut l, 3, "sent.mp4");
    l.mark_publish_sent(sent.id).unwrap();
    let busy = claim(&mut l, 4, "busy.mp4");
    let busy_by_hash = claim(&mut l, 5, "renamed.mp4");

    let snapshot = Snapshot {
        in_flight: vec![
            InFlight {
                video: "busy.mp4".into(),
                step: Stage::parse("upload"),
                bytes_done: 1,
                bytes_total: 4,
                ..InFlight::default()
            },
            InFlight {
                video: "elsewhere.mp4".into(),
                sha256: Some(busy_by_hash.sha256.to_string()),
                account: Some("main".into()),
                step: Stage::parse("ledger"),
                ..InFlight::default()
            },
        ],
        ..Snapshot::default()
    };
    let m = model(&l, Some(&snapshot));
    assert_eq!(m.counts[&JobState::Active], 5);
    let next: Vec<(&str, &str)> = m
        .queued
        .iter()
        .map(|q| (q.video.as_str(), q.next.as_str()))
        .collect();
    assert_eq!(
        next,
        [
            ("fresh.mp4", "step credentials"),
            ("sub/up.mp4", "step upload_params"),
            ("sent.mp4", "check if step 5 posted"),
        ]
    );
    assert!(m.queued[2].publish_sent);
    assert_eq!(m.queued[0].id, fresh.id);
    assert!(!m.queued.iter().any(|q| q.id == busy.id));
    assert_eq!(m.in_flight[0].stage, Stage::parse("upload"));
    assert_eq!(m.in_flight[0].percent, Some(25));
    assert_eq!(m.in_flight[1].stage, Stage::Ledger);
}

#[test]
fn a_published_job_waits_for_its_archive_and_is_a_recent_post() {
    let (_d, mut l) = ledger();
    let p = claim(&mut l, 1, "pub.mp4");
    l.mark_publish_sent(p.id).unwrap();
    l.mark_published(p.id, &crate::platform::douyin_post("7001"))
        .unwrap();
    let m = model(&l, None);
    assert_eq!(m.counts[&JobState::Published], 1);
    assert_eq!(m.queued.len(), 1);
    assert_eq!(m.queued[0].state, JobState::Published);
    assert_eq!(m.queued[0].next, "archive");
    assert_eq!(m.recent_posts[0].post_id.as_deref(), Some("7001"));
    assert_eq!(
        m.recent_posts[0].url.as_deref(),
        Some("https://www.douyin.com/video/7001")
    );
}

#[test]
fn a_done_job_is_a_recent_post_and_nothing_else() {
    let (_d, mut l) = ledger();
    let d = claim(&mut l, 1, "done.mp4");
    l.mark_publish_sent(d.id).unwrap();
    l.mark_published(d.id, &crate::platform::douyin_post("7002"))
        .unwrap();
    l.mark_done(d.id, Path::new("/nowhere/done/done.mp4"))
        .unwrap();
    let m = model(&l, None);
    assert_eq!(m.counts[&JobState::Done], 1);
    assert!(m.queued.is_empty() && m.problems.is_empty() && m.scheduled.is_empty());
    assert_eq!(m.recent_posts[0].state, JobState::Done);
}

#[test]
fn a_scheduled_post_is_listed_until_it_goes_public() {
    let (_d, mut l) = ledger();
    let s = claim(&mut l, 1, "later.mp4");
    l.mark_publish_sent(s.id).unwrap();
    let at = UtcTime::now().offset_date_time().unix_timestamp() + 3600;
    l.set_publish_at(s.id, Some(at)).unwrap();
    l.mark_published(s.id, &crate::platform::douyin_post("7003"))
        .unwrap();
    let soon = claim(&mut l, 2, "soon.mp4");
    l.set_publish_at(soon.id, Some(at - 60)).unwrap();
    l.mark_publish_sent(soon.id).unwrap();
    l.mark_published(soon.id, &crate::platform::douyin_post("7005"))
        .unwrap();
    let past = claim(&mut l, 3, "past.mp4");
    l.set_publish_at(past.id, Some(at - 7200)).unwrap();
    l.mark_publish_sent(past.id).unwrap();
    l.mark_published(past.id, &crate::platform::douyin_post("7006"))
        .unwrap();
    let m = model(&l, None);
    let videos: Vec<&str> = m.scheduled.iter().map(|p| p.video.as_str()).collect();
    assert_eq!(
        videos,
        ["soon.mp4", "later.mp4"],
        "soonest first, past ones left out"
    );
    assert_eq!(m.scheduled[1].publish_at, UtcTime::from_unix(at));
}

#[test]
fn a_duplicate_is_only_counted() {
    let (_d, mut l) = ledger();
    let d = claim(&mut l, 1, "a.mp4");
    l.mark_publish_sent(d.id).unwrap();
    l.mark_published(d.id, &crate::platform::douyin_post("7004"))
        .unwrap();
    claim(&mut l, 1, "again.mp4");
    let m = model(&l, None);
    assert_eq!(m.counts[&JobState::Duplicate], 1);
    assert_eq!(m.counts.values().sum::<u64>(), 2);
    assert!(m.problems.is_empty());
}

#[test]
fn a_failed_job_quotes_its_receipt_else_its_class() {
    let (_d, mut l) = ledger();
    let quoted = claim(&mut l, 1, "quoted.mp4");
    l.mark_failed(
        quoted.id,
        Some(&StepName::of("publish")),
        "rejected",
        "too long",
    )
    .unwrap();
    let receipt = json!({ "hint": "Shorten the caption, then retry." }).to_string();
    l.set_archive_plan(quoted.id, &json!({ "receipt_json": receipt }))
        .unwrap();
    let bare = claim(&mut l, 2, "bare.mp4");
    l.mark_failed(bare.id, None, "caption", "no title").unwrap();

    let m = model(&l, None);
    assert_eq!(m.counts[&JobState::Failed], 2);
    // Newest first.
    assert_eq!(m.problems[0].video, "bare.mp4");
    assert_eq!(m.problems[0].class, Some(FailureClass::Caption));
    assert_eq!(m.problems[0].hint, FailureClass::Caption.hint());
    assert_eq!(m.problems[1].hint, "Shorten the caption, then retry.");
    assert_eq!(m.problems[1].step, Some(StepName::of("publish")));
    assert_eq!(m.problems[1].reason.as_deref(), Some("too long"));
    assert_eq!(
        m.problems[1].retry,
        format!("dropcast retry {}", hash(1).short())
    );
    assert!(!m.problems[0].settled);
}

#[test]
fn a_failure_is_settled_once_the_video_is_published_again() {
    let (_d, mut l) = ledger();
    let f = claim(&mut l, 1, "a.mp4");
    l.mark_failed(f.id, None, "transient", "timed out").unwrap();
    let again = claim(&mut l, 1, "a.mp4");
    assert_ne!(again.id, f.id);
    let m = model(&l, None);
    assert!(m.problems[0].settled);
}

#[test]
fn an_abandoned_job_says_the_new_version_is_a_new_job() {
    let (_d, mut l) = ledger();
    let a = claim(&mut l, 1, "changed.mp4");
    l.mark_abandoned(a.id, "the video changed").unwrap();
    let m = model(&l, None);
    assert_eq!(m.problems[0].state, JobState::Abandoned);
    assert_eq!(m.problems[0].class, Some(FailureClass::Abandoned));
    assert_eq!(m.problems[0].hint, FailureClass::Abandoned.hint());
}

#[test]
fn an_unconfirmed_job_says_to_look_before_retrying() {
    let (_d, mut l) = ledger();
    let u = claim(&mut l, 1, "doubt.mp4");
    l.mark_publish_sent(u.id).unwrap();
    l.mark_unconfirmed(u.id, "answer lost").unwrap();
    let m = model(&l, None);
    assert_eq!(m.counts[&JobState::Unconfirmed], 1);
    assert_eq!(m.problems[0].state, JobState::Unconfirmed);
    assert_eq!(m.problems[0].step, Some(StepName::of("publish")));
    assert_eq!(m.problems[0].hint, FailureClass::Unconfirmed.hint());
    assert!(m.queued.is_empty());
}

#[test]
fn problems_are_capped_per_list() {
    let (_d, mut l) = ledger();
    for n in 1..=3 {
        let f = claim(&mut l, n, &format!("{n}.mp4"));
        l.mark_failed(f.id, None, "rejected", "no").unwrap();
    }
    let u = claim(&mut l, 9, "u.mp4");
    l.mark_publish_sent(u.id).unwrap();
    l.mark_unconfirmed(u.id, "lost").unwrap();
    let q = Query {
        max_problems: 2,
        ..ALL
    };
    let m = Model::assemble(LedgerPart::read(&l, &q).unwrap(), None, UtcTime::now());
    let videos: Vec<&str> = m.problems.iter().map(|p| p.video.as_str()).collect();
    assert_eq!(videos, ["u.mp4", "3.mp4", "2.mp4"]);
}

#[test]
fn receipt_beside_keeps_non_utf8_stems() {
    let p = receipt_beside(Path::new("/done/a/clip.mp4"), "receipt.json").unwrap();
    assert_eq!(p, Path::new("/done/a/clip.receipt.json"));
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        let video = Path::new(std::ffi::OsStr::from_bytes(b"/done/\xffx.mp4"));
        let p = receipt_beside(video, "error.json").unwrap();
        assert_eq!(p.as_os_str().as_bytes(), b"/done/\xffx.error.json");
    }
}

// Regression (issue 10 item 5): `status` and `/api/jobs` worded an unconfirmed job
// differently, and `/api/jobs` had no hint at all for a failure without a receipt.
#[test]
fn status_and_api_jobs_word_every_problem_alike() {
    use crate::report::{AgentStatus, LiveState, LiveStatus, StatusReport};
    use crate::status::view::{AgentView, JobsView};
    let (_d, mut l) = ledger();
    let f = claim(&mut l, 1, "failed.mp4");
    l.mark_failed(
        f.id,
        Some(&StepName::of("upload")),
        "auth_expired",
        "cookie expired",
    )
    .unwrap();
    let u = claim(&mut l, 2, "doubt.mp4");
    l.mark_publish_sent(u.id).unwrap();
    l.mark_unconfirmed(u.id, "answer lost").unwrap();

    let status = StatusReport::from_model(
        model(&l, None),
        AgentStatus {
            running: false,
            pid: None,
            host: None,
            since: None,
            holder: None,
            watching: None,
            live: LiveStatus {
                state: LiveState::Missing,
                updated_at: None,
                age_seconds: None,
                pid: None,
                problem: None,
            },
        },
    );
    let api = JobsView::from_model(
        model(&l, None),
        AgentView {
            pid: 1,
            started_at: None,
            updated_at: None,
            watching: String::new(),
            sandbox: true,
        },
    );
    let (status, api) = (
        serde_json::to_value(&status).unwrap(),
        serde_json::to_value(&api).unwrap(),
    );
    for (ours, theirs) in [
        (&status["failed"][0], &api["failures"][0]),
        (&status["unconfirmed"][0], &api["unconfirmed"][0]),
    ] {
        for key in ["sha256", "step", "class", "reason", "hint", "retry", "at"] {
            assert_eq!(ours[key], theirs[key], "{key}: {ours:#} vs {theirs:#}");
        }
    }
    assert_eq!(api["failures"][0]["class"], "auth_expired");
    assert_eq!(api["failures"][0]["hint"], FailureClass::AuthExpired.hint());
    assert_eq!(
        api["unconfirmed"][0]["hint"],
        FailureClass::Unconfirmed.hint()
    );
}
