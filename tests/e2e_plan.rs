//! The posting plan end to end (docs/posting-plan.md), through the real binary and the
//! `douyin-web` simulator: ten videos spread over two windows a day, at most three a day,
//! through the platform's timer, each keeping its slot across a crash and restarts; and
//! a video that must wait for its slot (under the timer's two hours) is uploaded, waits
//! without a job, and is posted at its slot.

mod common;

use common::*;
use jiff::Timestamp;
use jiff::tz::TimeZone;
use rusqlite::OptionalExtension;
use serde_json::Value;

/// A fixed-offset zone (no DST) in which it is now between 00:00 and 01:00, so that the
/// windows below lie ahead today whenever the test runs.
fn zone_just_past_midnight() -> (String, TimeZone) {
    let utc_hour = i64::from(Timestamp::now().to_zoned_datetime(TimeZone::UTC).hour());
    let offset = if utc_hour <= 12 {
        -utc_hour
    } else {
        24 - utc_hour
    };
    let name = match offset {
        0 => "UTC".to_owned(),
        o if o > 0 => format!("Etc/GMT-{o}"),
        o => format!("Etc/GMT+{}", -o),
    };
    let tz = TimeZone::get(&name).expect("the system knows the Etc zones");
    (name, tz)
}

fn drop_bundle(env: &Env, n: u8) {
    let video = env.inbox().join(format!("v{n:02}.mp4"));
    std::fs::write(&video, clip_variant(n)).unwrap();
    std::fs::copy(media("clip.yaml"), video.with_extension("yaml")).unwrap();
}

fn timing(post: &Value) -> i64 {
    post["form"]["timing"].as_str().unwrap().parse().unwrap()
}

/// The slot the ledger booked for `video`, in unix seconds.
/// (`None` also when `video` has no job yet.)
fn planned(env: &Env, video: &str) -> Option<i64> {
    env.ledger()
        .query_row(
            "SELECT planned_at FROM jobs WHERE CAST(video AS TEXT) LIKE ?1",
            [format!("%{video}")],
            |row| row.get::<_, Option<i64>>(0),
        )
        .optional()
        .unwrap()
        .flatten()
        .map(|ms| ms / 1000)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_videos_two_windows_three_a_day_are_posted_at_their_slots_across_restarts() {
    let (zone, tz) = zone_just_past_midnight();
    let publish = format!(
        "{{retry: {{attempts: 3, initial: 50ms, max: 500ms}}, plan: {{windows: [\"04:00-07:00\", \"10:00-15:00\"], time_zone: \"{zone}\", daily_max: 3, min_gap: 2h, jitter: 0s}}}}"
    );
    let env = Env::configured(Default::default(), &[("publish", &publish)], "").await;
    let today = Timestamp::now().to_zoned_datetime(tz.clone()).date();
    let expected: Vec<i64> = (0..10)
        .map(|k| {
            let day = today.checked_add(jiff::Span::new().days(k / 3)).unwrap();
            let (h, m) = [(4, 0), (6, 0), (10, 0)][usize::try_from(k % 3).unwrap()];
            tz.to_timestamp(day.at(h, m, 0, 0)).unwrap().as_second()
        })
        .collect();

    // First run: four videos; it crashes right after booking the first slot.
    for n in 0..4 {
        drop_bundle(&env, n);
    }
    let mut crashing = env.cmd();
    crashing
        .args(["watch", "--once"])
        .env("DROPCAST_FAILPOINT", "after_commit:planned");
    let out = run(crashing).await;
    assert!(
        stderr(&out).contains("failpoint after_commit:planned: aborting"),
        "{}",
        stderr(&out)
    );
    // Which of the four settles first is the watcher's business; exactly one was booked.
    let booked: Vec<(String, i64)> = (0..4u8)
        .filter_map(|n| {
            let video = format!("v{n:02}.mp4");
            planned(&env, &video).map(|slot| (video, slot))
        })
        .collect();
    let [(first_video, booked_before_crash)] = &booked[..] else {
        panic!("one slot booked before the crash: {booked:?}")
    };
    let (first_video, booked_before_crash) = (first_video.clone(), *booked_before_crash);
    assert_eq!(booked_before_crash, expected[0]);
    assert!(env.posts().await.is_empty(), "nothing was sent");

    // The restart keeps that slot and books the next three after it.
    let out = env.watch_once().await;
    assert!(out.status.success(), "{}", stderr(&out));
    // Another run later: six more continue the plan where it stands.
    for n in 4..10 {
        drop_bundle(&env, n);
    }
    let out = env.watch_once().await;
    assert!(out.status.success(), "{}", stderr(&out));

    let posts = env.posts().await;
    // The platform's timer posts each at its slot, whatever order they were sent in (a
    // restart may send another video before the one whose slot was booked first).
    let mut timings: Vec<i64> = posts.iter().map(timing).collect();
    timings.sort();
    assert_eq!(timings, expected, "each post at its slot");
    assert_eq!(planned(&env, &first_video), Some(booked_before_crash));
    for n in 0..10u8 {
        let slot = planned(&env, &format!("v{n:02}.mp4")).expect("planned");
        assert!(expected.contains(&slot));
        let receipt = read_json(&env.path(&format!("done/v{n:02}.receipt.json")));
        assert!(!receipt["publish_at"].is_null(), "{receipt}");
    }
    // The plan's rules, said once more on what was sent.
    let mut per_day = std::collections::BTreeMap::new();
    for (i, t) in timings.iter().enumerate() {
        let local = Timestamp::from_second(*t)
            .unwrap()
            .to_zoned_datetime(tz.clone());
        let minute = i32::from(local.hour()) * 60 + i32::from(local.minute());
        assert!((240..420).contains(&minute) || (600..900).contains(&minute));
        *per_day.entry(local.date()).or_insert(0) += 1;
        if i > 0 {
            assert!(t - timings[i - 1] >= 2 * 3600);
        }
    }
    assert!(per_day.values().all(|n| *n <= 3), "{per_day:?}");

    // `status --json` shows the plan: the next free slot (day 4, 06:00) and each video,
    // sent with the platform's timer, at its slot.
    let out = env.run(&["status", "--json"]).await;
    let status: Value = serde_json::from_slice(&out.stdout).expect("json");
    let plan = &status["plan"][0];
    assert_eq!(plan["account"], "main", "{status}");
    let next: Timestamp = plan["next_free"].as_str().unwrap().parse().unwrap();
    let day4 = today.checked_add(jiff::Span::new().days(3)).unwrap();
    assert_eq!(next, tz.to_timestamp(day4.at(6, 0, 0, 0)).unwrap());
    let planned = plan["planned"].as_array().unwrap();
    let slots: Vec<i64> = planned
        .iter()
        .map(|p| {
            p["slot"]
                .as_str()
                .unwrap()
                .parse::<Timestamp>()
                .unwrap()
                .as_second()
        })
        .collect();
    assert_eq!(slots, expected);
    assert!(planned.iter().all(|p| p["state"] == "sent"), "{plan}");
    let text = stdout(&env.run(&["status"]).await);
    assert!(text.contains("Plan of main (10)"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slot_under_the_timer_window_is_waited_for_without_holding_the_queue() {
    let publish = "{retry: {attempts: 3, initial: 50ms, max: 500ms}, plan: {windows: [\"00:00-24:00\"], time_zone: UTC, daily_max: 100, min_gap: 4s, jitter: 0s}}";
    let env = Env::configured(Default::default(), &[("publish", publish)], "").await;
    for n in 0..3 {
        drop_bundle(&env, n);
    }
    let agent = env.spawn_watching().await;
    let posts = wait_for_posts(&env, &agent, 3).await;
    // The window is open: the first goes at once; the others wait here (four seconds is
    // under the platform timer's two hours), then go without a timer at their slots.
    assert!(posts.iter().all(|p| timing(p) == 0), "{posts:?}");
    let mut slots: Vec<i64> = (0..3u8)
        .map(|n| planned(&env, &format!("v{n:02}.mp4")).expect("planned"))
        .collect();
    slots.sort();
    // (A slot is a whole second, rounded up; one within a second counts as now.)
    for (post, slot) in posts.iter().zip(&slots) {
        assert!(
            post["create_time"].as_i64().unwrap() >= *slot - 1,
            "{post} before {slot}"
        );
    }
    assert!(slots[1] - slots[0] >= 4 && slots[2] - slots[1] >= 4);
    // With `publish.concurrency: 1`, the second and third videos were both uploaded and
    // waiting before the first wait ended: a waiting post holds no permit.
    let log = agent.log_text();
    let first_wake = log.find("its planned slot has come").expect("woken");
    let waits = log[..first_wake]
        .matches("the post waits for its planned slot")
        .count();
    assert_eq!(waits, 2, "{log}");
}
