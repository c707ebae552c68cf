//! `dropcast status` and `history` reports, from a real ledger with a job in every state,
//! a live snapshot saved by `Live`, and the real agent lock.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use dropcast::archive::{ArchivePlan, Destination, Move};
use dropcast::config::Config;
use dropcast::domain::{ContentHash, Platform, PostDraft, StepName, Visibility};
use dropcast::ledger::{Claim, JobRecord, JobState, Ledger, NewJob};
use dropcast::lock::StateLock;
use dropcast::pipeline::live::{Live, PausedAccount, Waiting};
use dropcast::platform::douyin_post;
use dropcast::receipt::{FailureReceipt, PublishedReceipt, UtcTime};
use dropcast::report::{self, LiveState, StatusReport};
use dropcast::words::Stage;
use serde_json::{Value, json};

const MIB: u64 = 1024 * 1024;

fn hash(n: u8) -> ContentHash {
    ContentHash::from_digest(&[n; 32])
}

fn setup() -> (tempfile::TempDir, Config) {
    let dir = tempfile::tempdir().unwrap();
    let config = Config::defaults(dir.path());
    (dir, config)
}

fn claim(ledger: &mut Ledger, n: u8, video: impl Into<PathBuf>) -> JobRecord {
    claim_for(ledger, n, video, "main")
}

fn claim_for(ledger: &mut Ledger, n: u8, video: impl Into<PathBuf>, account: &str) -> JobRecord {
    let job = NewJob {
        sha256: hash(n),
        account: account.into(),
        platform: Platform::DouyinWeb,
        video: video.into(),
        caption: None,
        size: 1000,
    };
    match ledger.claim(&job, false).unwrap() {
        Claim::New(job) | Claim::Resume(job) => job,
        Claim::Duplicate { job, .. } | Claim::Held { job, .. } => job,
    }
}

fn draft(publish_at: Option<i64>) -> PostDraft {
    PostDraft {
        text: "遇见 #音乐".into(),
        plain_text: "遇见".into(),
        entities: Vec::new(),
        challenge_ids: Vec::new(),
        mention_ids: Vec::new(),
        visibility: Visibility::Public,
        allow_download: false,
        cover_at: Duration::ZERO,
        collection: None,
        publish_at,
        title: None,
        cover_image: None,
        ai_generated: false,
        declaration: None,
        tiktok: Default::default(),
    }
}

/// The plan the pipeline would store before moving the files, with `receipt` in it.
fn plan(
    config: &Config,
    job: &JobRecord,
    dest: Destination,
    receipt: &impl serde::Serialize,
) -> Value {
    let dir = match dest {
        Destination::Done => &config.done,
        Destination::Failed => &config.failed,
        Destination::Duplicates => &config.duplicates,
    };
    let to = dir.join(&job.video);
    let tail = if dest == Destination::Failed {
        "error.json"
    } else {
        "receipt.json"
    };
    let plan = ArchivePlan {
        dest,
        moves: vec![Move {
            from: config.inbox.join(&job.video),
            to: to.clone(),
        }],
        receipt: to.with_extension(tail),
        receipt_json: serde_json::to_string_pretty(receipt).unwrap(),
    };
    serde_json::to_value(plan).unwrap()
}

fn publish(
    ledger: &mut Ledger,
    config: &Config,
    job: &JobRecord,
    aweme: &str,
    at: Option<i64>,
    archive: bool,
) {
    ledger.mark_published(job.id, &douyin_post(aweme)).unwrap();
    let job = ledger.job(job.id).unwrap().unwrap();
    let post = douyin_post(aweme);
    let receipt = PublishedReceipt::new(&job, &draft(at), &post);
    ledger
        .set_archive_plan(job.id, &plan(config, &job, Destination::Done, &receipt))
        .unwrap();
    if archive {
        ledger
            .mark_done(job.id, &config.done.join(&job.video))
            .unwrap();
    }
}

fn unix_now() -> i64 {
    UtcTime::now().offset_date_time().unix_timestamp()
}

#[cfg(unix)]
fn odd_name() -> PathBuf {
    use std::os::unix::ffi::OsStrExt;
    PathBuf::from(std::ffi::OsStr::from_bytes(b"n/\xffbad.mp4"))
}

#[cfg(not(unix))]
fn odd_name() -> PathBuf {
    PathBuf::from("n/bad.mp4")
}

/// `job` failed at `step`.
fn fail_at(ledger: &mut Ledger, job: &JobRecord, step: &'static str, class: &str, reason: &str) {
    ledger
        .mark_failed(job.id, Some(&StepName::of(step)), class, reason)
        .unwrap();
}

/// A ledger with jobs in every state, and a live snapshot with one upload in flight.
fn busy_world(config: &Config) {
    let mut ledger = Ledger::open(&config.state_dir).unwrap();

    // Active, in flight (the live snapshot has it).
    let flying = claim(&mut ledger, 1, "遇见/中文名.mp4");
    ledger
        .record_step(flying.id, &StepName::of("credentials"), &json!({}), false)
        .unwrap();
    // Active, not in flight: step 5 was sent, the next run must reconcile.
    let queued = claim(&mut ledger, 2, "q/queued.mp4");
    ledger
        .record_step(queued.id, &StepName::of("credentials"), &json!({}), false)
        .unwrap();
    ledger.mark_publish_sent(queued.id).unwrap();
    // Published, archive pending, goes public in a day.
    let sched = claim(&mut ledger, 3, "s/sched.mp4");
    publish(
        &mut ledger,
        config,
        &sched,
        "7001",
        Some(unix_now() + 86_400),
        false,
    );
    // Done; was scheduled, but for a time already past.
    let done = claim(&mut ledger, 4, "d/done.mp4");
    publish(
        &mut ledger,
        config,
        &done,
        "7002",
        Some(unix_now() - 3600),
        true,
    );
    // Failed and archived with an error receipt.
    let failed = claim(&mut ledger, 5, "f/fail.mp4");
    fail_at(
        &mut ledger,
        &failed,
        "upload",
        "rejected",
        "video too short",
    );
    let failed = ledger.job(failed.id).unwrap().unwrap();
    let receipt = FailureReceipt::new(
        Some(&failed),
        &failed.video,
        Some(StepName::of("upload")),
        "rejected",
        "video too short",
        "Re-export it at least 3 seconds long.",
    );
    ledger
        .set_archive_plan(
            failed.id,
            &plan(config, &failed, Destination::Failed, &receipt),
        )
        .unwrap();
    ledger
        .record_archived(failed.id, &config.failed.join("f/fail.mp4"))
        .unwrap();
    // Failed with no receipt at all, under a name that is not UTF-8.
    let odd = claim(&mut ledger, 6, odd_name());
    ledger
        .mark_failed(odd.id, None, "caption", "no text")
        .unwrap();
    // Failed once, then published by a later job: settled, not listed.
    let first = claim(&mut ledger, 7, "r/retried.mp4");
    fail_at(&mut ledger, &first, "credentials", "transient", "timeout");
    let again = claim(&mut ledger, 7, "r/retried.mp4");
    assert_ne!(again.id, first.id);
    publish(&mut ledger, config, &again, "7003", None, true);
    // Duplicate of the done job.
    let dup = claim(&mut ledger, 4, "dup/copy.mp4");
    assert_eq!(dup.state, JobState::Duplicate);
    // Abandoned.
    let ab = claim(&mut ledger, 8, "a/changed.mp4");
    ledger.mark_abandoned(ab.id, "the video changed").unwrap();
    // Unconfirmed.
    let unc = claim(&mut ledger, 9, "u/maybe.mp4");
    ledger.mark_publish_sent(unc.id).unwrap();
    ledger
        .mark_unconfirmed(unc.id, "cannot list the account's posts")
        .unwrap();

    let live = Live::new("native");
    let progress = live.job_started("遇见/中文名.mp4");
    live.job_step(
        "遇见/中文名.mp4",
        &Stage::parse("upload"),
        Some(hash(1).as_str()),
        Some("main"),
    );
    progress.start(100 * MIB);
    progress.add(40 * MIB);
    live.set_waiting(vec![Waiting {
        video: "w/nocap.mp4".into(),
        since: Some(UtcTime::now()),
    }]);
    live.set_paused(vec![PausedAccount {
        account: "second".into(),
        reason: "the cookie has expired".into(),
        since: Some(UtcTime::now()),
    }]);
    live.save(&config.state_dir).unwrap();
}

fn lines_fit(text: &str, width: usize) {
    for line in text.lines() {
        // Every character here is 1 column wide except the CJK ones (2).
        let cols: usize = line
            .chars()
            .map(|c| {
                if ('\u{4e00}'..='\u{9fff}').contains(&c) {
                    2
                } else {
                    1
                }
            })
            .sum();
        assert!(cols <= width, "line wider than {width}: {line:?}\n{text}");
    }
}

#[test]
fn status_with_a_running_agent_shows_every_kind_of_job() {
    let (_dir, config) = setup();
    busy_world(&config);
    let _agent = StateLock::acquire(&config.state_dir).unwrap();

    let r = report::status(&config).unwrap();
    assert!(r.agent.running);
    assert_eq!(r.agent.pid, Some(std::process::id()));
    assert!(r.agent.since.is_some());
    assert_eq!(r.agent.watching.as_deref(), Some("native"));
    assert_eq!(r.agent.live.state, LiveState::Fresh);

    let c = &r.counts;
    assert_eq!(
        (
            c.active,
            c.published,
            c.done,
            c.failed,
            c.duplicate,
            c.abandoned,
            c.unconfirmed,
            c.total
        ),
        (2, 1, 2, 3, 1, 1, 1, 11)
    );

    assert_eq!(r.in_flight.len(), 1);
    let f = &r.in_flight[0];
    assert_eq!(f.file, "遇见/中文名.mp4");
    assert_eq!((f.step.as_str(), f.percent), ("upload", Some(40)));
    assert_eq!((f.bytes_done, f.bytes_total), (40 * MIB, 100 * MIB));

    // The in-flight job is not also queued; the reconcile-pending one is.
    let queued: Vec<_> = r.queued.iter().map(|q| q.file.as_str()).collect();
    assert_eq!(queued, ["q/queued.mp4", "s/sched.mp4"]);
    assert!(r.queued[0].publish_sent);
    assert_eq!(r.queued[0].last_step, Some(StepName::of("credentials")));
    assert_eq!(r.queued[1].next, "archive");

    assert_eq!(r.scheduled.len(), 1, "{:?}", r.scheduled);
    assert_eq!(r.scheduled[0].file, "s/sched.mp4");
    assert_eq!(
        r.scheduled[0].url.as_deref(),
        Some("https://www.douyin.com/video/7001")
    );

    assert_eq!(r.waiting_for_caption[0].file, "w/nocap.mp4");
    assert_eq!(r.paused_accounts[0].account, "second");

    // Newest first; the failure settled by a later post is left out.
    let failed: Vec<_> = r.failed.iter().map(|f| f.file.as_str()).collect();
    assert_eq!(failed, ["n/\u{fffd}bad.mp4", "f/fail.mp4"]);
    let fail = &r.failed[1];
    assert_eq!(fail.hint, "Re-export it at least 3 seconds long.");
    assert_eq!(fail.step, Some(StepName::of("upload")));
    assert_eq!(fail.retry, format!("dropcast retry {}", hash(5).short()));
    assert!(
        r.failed[0].hint.contains("dropcast validate"),
        "fallback hint by class"
    );

    assert_eq!(r.unconfirmed.len(), 1);
    assert_eq!(r.unconfirmed[0].reason, "cannot list the account's posts");
    assert_eq!(
        r.unconfirmed[0].retry,
        format!("dropcast retry {}", hash(9).short())
    );

    // JSON: the documented field names.
    let v = serde_json::to_value(&r).unwrap();
    assert_eq!(v["agent"]["live"]["state"], "fresh");
    assert_eq!(v["counts"]["total"], 11);
    assert_eq!(v["in_flight"][0]["percent"], 40);
    assert_eq!(v["in_flight"][0]["sha256"], hash(1).as_str());
    assert_eq!(v["queued"][0]["last_step"], "credentials");
    assert_eq!(v["failed"][1]["step"], "upload");
    assert_eq!(v["failed"][1]["class"], "rejected");
    let publish_at = v["scheduled"][0]["publish_at"].as_str().unwrap();
    assert!(publish_at.ends_with('Z'), "{publish_at}");
    assert!(v["generated_at"].is_string());

    let text = report::render_status(&r, None);
    for needle in [
        "running: pid",
        "watching native",
        "11 in the ledger",
        "1 unconfirmed",
        "In flight (1)",
        "遇见/中文名.mp4",
        " 40%  40.0 / 100.0 MiB",
        "Queued (2)",
        "check if step 5 posted",
        "Waiting for a caption (1)",
        "w/nocap.mp4",
        "Scheduled (1)",
        "post:  https://www.douyin.com/video/7001",
        "Paused accounts (1)",
        "the cookie has expired",
        "Failed (2)",
        "fix:   Re-export it at least 3 seconds long.",
        "why:   video too short",
        &format!("retry: dropcast retry {}", hash(5).short()),
        "n/\u{fffd}bad.mp4",
        "Unconfirmed (1)",
        &format!("retry: dropcast retry {}", hash(9).short()),
    ] {
        assert!(text.contains(needle), "missing {needle:?} in\n{text}");
    }
    assert!(!text.contains("nothing queued"), "{text}");
    assert!(
        !text.contains("r/retried.mp4"),
        "settled failure listed:\n{text}"
    );
    assert!(!text.contains('\u{1b}'), "no colour codes:\n{text}");

    let narrow = report::render_status(&r, Some(100));
    lines_fit(&narrow, 100);
    assert!(narrow.contains("中文名.mp4"), "{narrow}");
}

#[test]
fn stale_live_snapshot_without_an_agent_is_not_used() {
    let (_dir, config) = setup();
    busy_world(&config);

    // Just after the agent stopped, its snapshot still counts…
    let soon = report::status_at(&config, SystemTime::now() + Duration::from_secs(5)).unwrap();
    assert!(!soon.agent.running);
    assert_eq!(soon.agent.live.state, LiveState::Fresh);
    assert_eq!(soon.in_flight.len(), 1);

    // …a minute later it is stale: the in-flight job shows as queued instead.
    let later = report::status_at(&config, SystemTime::now() + Duration::from_secs(60)).unwrap();
    assert_eq!(later.agent.live.state, LiveState::Stale);
    assert!(later.agent.live.age_seconds.unwrap() >= 59);
    assert_eq!(later.agent.live.pid, Some(std::process::id()));
    assert!(later.in_flight.is_empty());
    assert!(later.waiting_for_caption.is_empty());
    assert!(later.paused_accounts.is_empty());
    assert!(later.queued.iter().any(|q| q.file == "遇见/中文名.mp4"));

    let text = report::render_status(&later, Some(80));
    assert!(text.contains("not running"), "{text}");
    assert!(text.contains("live.json is stale"), "{text}");
    assert!(text.contains("`dropcast watch` resumes them"), "{text}");
    lines_fit(&text, 80);
    let v = serde_json::to_value(&later).unwrap();
    assert_eq!(v["agent"]["running"], false);
    assert_eq!(v["agent"]["live"]["state"], "stale");
}

#[test]
fn empty_state_folder_reports_nothing_and_creates_nothing() {
    let (_dir, config) = setup();
    let r: StatusReport = report::status(&config).unwrap();
    assert!(
        !config.state_dir.exists(),
        "status must not create the state folder"
    );
    assert!(!r.agent.running);
    assert_eq!(r.agent.live.state, LiveState::Missing);
    assert_eq!(r.counts.total, 0);
    let text = report::render_status(&r, Some(80));
    assert!(text.contains("nothing queued"), "{text}");
    assert!(text.contains("none yet"), "{text}");
    assert!(!text.contains("Failed"), "{text}");

    assert!(report::history(&config, 10).unwrap().is_empty());
    assert_eq!(report::render_history(&[]), "no posts yet\n");
    assert!(!config.state_dir.exists());

    // A ledger with no jobs reads the same.
    drop(Ledger::open(&config.state_dir).unwrap());
    let r = report::status(&config).unwrap();
    assert_eq!(r.counts.total, 0);
    assert!(report::render_status(&r, None).contains("nothing queued"));
}

#[test]
fn unreadable_live_snapshot_is_reported_not_fatal() {
    let (_dir, config) = setup();
    std::fs::create_dir_all(&config.state_dir).unwrap();
    std::fs::write(Live::snapshot_path(&config.state_dir), "{not json").unwrap();
    let r = report::status(&config).unwrap();
    assert_eq!(r.agent.live.state, LiveState::Unreadable);
    assert!(
        r.agent
            .live
            .problem
            .as_deref()
            .unwrap()
            .contains("live.json")
    );
    assert!(report::render_status(&r, None).contains("is not a live snapshot"));
}

#[test]
fn history_is_newest_first_limited_and_shows_schedules() {
    let (_dir, config) = setup();
    let mut ledger = Ledger::open(&config.state_dir).unwrap();
    let at = unix_now() + 7200;
    for (n, name) in [(1u8, "one.mp4"), (2, "two.mp4"), (3, "three.mp4")] {
        let job = claim(&mut ledger, n, name);
        let when = (n == 3).then_some(at);
        publish(&mut ledger, &config, &job, &format!("70{n}"), when, n != 2);
    }
    // Not posts: never in history.
    let failed = claim(&mut ledger, 9, "failed.mp4");
    ledger
        .mark_failed(failed.id, None, "caption", "no text")
        .unwrap();
    claim_for(&mut ledger, 8, "other.mp4", "second");

    // Publish times may tie at the ledger's millisecond: the later job still comes first.
    let all = report::history(&config, 50).unwrap();
    let files: Vec<_> = all.iter().map(|r| r.file.as_str()).collect();
    assert_eq!(files, ["three.mp4", "two.mp4", "one.mp4"]);
    assert!(all.windows(2).all(|w| w[0].time >= w[1].time));
    assert_eq!(all[0].scheduled_for, UtcTime::from_unix(at));
    assert_eq!(all[1].scheduled_for, None);
    assert_eq!(
        all[2].url.as_deref(),
        Some("https://www.douyin.com/video/701")
    );

    let two = report::history(&config, 2).unwrap();
    assert_eq!(two.len(), 2);
    assert_eq!(two[0].file, "three.mp4");
    assert!(report::history(&config, 0).unwrap().is_empty());

    let v = serde_json::to_value(&two).unwrap();
    assert_eq!(v[0]["sha256"], hash(3).as_str());
    assert!(v[0]["scheduled_for"].is_string());
    assert_eq!(v[1]["scheduled_for"], Value::Null);

    let text = report::render_history(&all);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "{text}");
    assert!(lines[0].starts_with("TIME"), "{text}");
    assert!(lines[0].contains("SCHEDULED FOR"), "{text}");
    assert!(
        lines[1].contains("three.mp4") && lines[1].contains(hash(3).short()),
        "{text}"
    );
    assert!(
        !lines[1].contains(hash(3).as_str()),
        "full hash in the table:\n{text}"
    );
    // Columns line up: each row's POST column starts where the header's does.
    let col = lines[0].find("POST").unwrap();
    for l in &lines[1..] {
        assert_eq!(l.find("https://").unwrap(), col, "{text}");
    }
}

#[test]
fn a_receipt_file_beside_the_archived_video_is_read_when_the_plan_is_gone() {
    // Jobs archived by `dropcast publish` outside the inbox, or an older ledger: only the
    // receipt file says when the post goes public.
    let (_dir, config) = setup();
    let mut ledger = Ledger::open(&config.state_dir).unwrap();
    let job = claim(&mut ledger, 1, "x/clip.mp4");
    ledger.mark_published(job.id, &douyin_post("7100")).unwrap();
    let archived = config.done.join("x/clip.mp4");
    let job = ledger.job(job.id).unwrap().unwrap();
    let at = unix_now() + 600;
    let receipt = PublishedReceipt::new(&job, &draft(Some(at)), &douyin_post("7100"));
    std::fs::create_dir_all(archived.parent().unwrap()).unwrap();
    std::fs::write(
        Path::new(&config.done).join("x/clip.receipt.json"),
        serde_json::to_string_pretty(&receipt).unwrap(),
    )
    .unwrap();
    ledger.mark_done(job.id, &archived).unwrap();

    let r = report::status(&config).unwrap();
    assert_eq!(r.scheduled.len(), 1);
    assert_eq!(Some(r.scheduled[0].publish_at), UtcTime::from_unix(at));
    assert_eq!(
        report::history(&config, 1).unwrap()[0].scheduled_for,
        UtcTime::from_unix(at)
    );
}
