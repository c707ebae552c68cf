//! The scheduler with a fixed `now` and seeded jitter: windows, day ends, DST change
//! days, the daily maximum, the least gap, jitter's bounds, and the platform timer.

use std::num::NonZeroU32;
use std::time::Duration;

use jiff::Timestamp;
use jiff::civil::{Date, DateTime};
use jiff::tz::TimeZone;
use proptest::prelude::*;

use super::*;

/// China: UTC+8, no DST (the zone's POSIX rule, so the test needs no tz database).
fn shanghai() -> TimeZone {
    TimeZone::posix("CST-8").unwrap()
}

/// Central Europe: DST from the last Sunday of March 02:00 to the last Sunday of October
/// 03:00.
fn berlin() -> TimeZone {
    TimeZone::posix("CET-1CEST,M3.5.0,M10.5.0/3").unwrap()
}

fn plan(windows: &[&str], zone: TimeZone, daily_max: u32, gap_min: u64, jitter_min: u64) -> Plan {
    let windows = windows
        .iter()
        .flat_map(|w| Window::parse(w).unwrap())
        .collect();
    Plan::new(
        windows,
        zone,
        "test".into(),
        NonZeroU32::new(daily_max).unwrap(),
        Duration::from_secs(gap_min * 60),
        Duration::from_secs(jitter_min * 60),
    )
    .unwrap()
}

fn at(zone: &TimeZone, s: &str) -> Timestamp {
    let dt: DateTime = s.parse().unwrap();
    zone.to_ambiguous_timestamp(dt).compatible().unwrap()
}

fn local(zone: &TimeZone, t: Timestamp) -> String {
    zone.to_datetime(t)
        .strftime("%Y-%m-%d %H:%M:%S")
        .to_string()
}

/// Books `n` slots one after the other from `now`, as `n` videos dropped at once.
fn book(plan: &Plan, now: Timestamp, n: usize, seed: u64) -> Vec<Timestamp> {
    let mut rng = SplitMix::seeded(seed);
    let mut booked = Vec::new();
    for _ in 0..n {
        let slot = plan.next_slot(&booked, now, &mut rng).expect("a slot");
        booked.push(slot);
    }
    booked
}

#[test]
fn ten_videos_two_windows_three_a_day() {
    let tz = shanghai();
    let p = plan(&["09:00-11:00", "18:30-22:00"], tz.clone(), 3, 120, 0);
    // Monday 07:00: nothing is open yet.
    let slots = book(&p, at(&tz, "2026-06-01T07:00"), 10, 1);
    let shown: Vec<String> = slots.iter().map(|t| local(&tz, *t)).collect();
    assert_eq!(
        shown,
        [
            "2026-06-01 09:00:00",
            "2026-06-01 18:30:00",
            "2026-06-01 20:30:00",
            "2026-06-02 09:00:00",
            "2026-06-02 18:30:00",
            "2026-06-02 20:30:00",
            "2026-06-03 09:00:00",
            "2026-06-03 18:30:00",
            "2026-06-03 20:30:00",
            "2026-06-04 09:00:00",
        ]
    );
}

#[test]
fn a_video_dropped_inside_an_open_window_goes_now_without_jitter() {
    let tz = shanghai();
    let p = plan(&["09:00-11:00"], tz.clone(), 3, 30, 10);
    let now = at(&tz, "2026-06-01T09:17:42");
    let mut rng = SplitMix::seeded(7);
    assert_eq!(p.next_slot(&[], now, &mut rng), Some(now));
    // The next one keeps the gap, and is jittered.
    let second = p.next_slot(&[now], now, &mut rng).unwrap();
    let base = at(&tz, "2026-06-01T09:47:42");
    assert!(second >= base && second <= base + jiff::SignedDuration::from_mins(10));
}

#[test]
fn a_window_closing_before_the_gap_ends_pushes_to_the_next_one() {
    let tz = shanghai();
    let p = plan(&["09:00-10:00", "12:00-13:00"], tz.clone(), 5, 90, 0);
    let booked = [at(&tz, "2026-06-01T09:40")];
    let slot = p.next_slot(
        &booked,
        at(&tz, "2026-06-01T09:41"),
        &mut SplitMix::seeded(1),
    );
    assert_eq!(local(&tz, slot.unwrap()), "2026-06-01 12:00:00");
    // A window's end is not in it: a gap ending exactly at 13:00 goes to the next day.
    let booked = [at(&tz, "2026-06-01T11:30")];
    let slot = p.next_slot(
        &booked,
        at(&tz, "2026-06-01T11:31"),
        &mut SplitMix::seeded(1),
    );
    assert_eq!(local(&tz, slot.unwrap()), "2026-06-02 09:00:00");
}

#[test]
fn the_daily_maximum_counts_local_calendar_days() {
    let tz = shanghai();
    let p = plan(&["00:00-24:00"], tz.clone(), 2, 0, 0);
    // 23:30 and 23:40 local fill the day (15:30 and 15:40 UTC: the same UTC day as the
    // morning after would be, so a UTC count would be wrong).
    let booked = [at(&tz, "2026-06-01T23:30"), at(&tz, "2026-06-01T23:40")];
    let slot = p.next_slot(
        &booked,
        at(&tz, "2026-06-01T23:45"),
        &mut SplitMix::seeded(1),
    );
    assert_eq!(local(&tz, slot.unwrap()), "2026-06-02 00:00:00");
}

#[test]
fn windows_at_the_day_ends_and_across_midnight() {
    let tz = shanghai();
    let p = plan(&["22:00-02:00"], tz.clone(), 10, 60, 0);
    assert_eq!(
        p.windows()
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        ["00:00-02:00", "22:00-24:00"]
    );
    let slots = book(&p, at(&tz, "2026-06-01T21:00"), 5, 1);
    let shown: Vec<String> = slots.iter().map(|t| local(&tz, *t)).collect();
    assert_eq!(
        shown,
        [
            "2026-06-01 22:00:00",
            "2026-06-01 23:00:00",
            "2026-06-02 00:00:00",
            "2026-06-02 01:00:00",
            "2026-06-02 22:00:00",
        ]
    );
    // 24:00 is the day's end; 00:00 as an end means the same.
    assert_eq!(Window::parse("20:00-24:00"), Window::parse("20:00-00:00"));
}

#[test]
fn dst_spring_forward_a_window_in_the_gap_is_gone_that_day_only() {
    let tz = berlin();
    // 2026-03-29: 02:00 CET jumps to 03:00 CEST.
    let p = plan(&["02:00-03:00"], tz.clone(), 3, 0, 0);
    let slot = p.next_slot(&[], at(&tz, "2026-03-29T00:30"), &mut SplitMix::seeded(1));
    assert_eq!(local(&tz, slot.unwrap()), "2026-03-30 02:00:00");
    // A window overlapping the gap is shorter that day, and starts at its wall time.
    let p = plan(&["01:30-03:30"], tz.clone(), 3, 30, 0);
    let slots = book(&p, at(&tz, "2026-03-29T00:00"), 3, 1);
    let shown: Vec<String> = slots.iter().map(|t| local(&tz, *t)).collect();
    // 01:30 CET, 03:00 CEST (30 real minutes later), 03:30 CEST is the end.
    assert_eq!(
        shown,
        [
            "2026-03-29 01:30:00",
            "2026-03-29 03:00:00",
            "2026-03-30 01:30:00"
        ]
    );
}

#[test]
fn dst_fall_back_the_repeated_hour_is_real_time() {
    let tz = berlin();
    // 2026-10-25: 03:00 CEST falls back to 02:00 CET; 02:00-03:00 happens twice.
    let p = plan(&["02:00-03:00"], tz.clone(), 5, 45, 0);
    let slots = book(&p, at(&tz, "2026-10-25T00:00"), 3, 1);
    let secs: Vec<i64> = slots.iter().map(|t| t.as_second()).collect();
    // The window runs from the first 02:00 (CEST) to 03:00 CET: two real hours.
    assert_eq!(secs[1] - secs[0], 45 * 60);
    assert_eq!(secs[2] - secs[1], 45 * 60);
    assert_eq!(
        tz.to_datetime(slots[2]).date(),
        Date::constant(2026, 10, 25)
    );
}

#[test]
fn windows_are_checked_when_read() {
    assert!(Window::parse("9-11").is_err());
    assert!(Window::parse("09:00-09:00").unwrap_err().contains("empty"));
    assert!(Window::parse("09:60-10:00").is_err());
    assert!(Window::parse("25:00-26:00").is_err());
    let overlap = Plan::new(
        [
            Window::parse("09:00-11:00").unwrap(),
            Window::parse("10:30-12:00").unwrap(),
        ]
        .concat(),
        shanghai(),
        "x".into(),
        NonZeroU32::MIN,
        Duration::ZERO,
        Duration::ZERO,
    );
    assert_eq!(
        overlap.unwrap_err(),
        "windows 09:00-11:00 and 10:30-12:00 overlap"
    );
    let none = Plan::new(
        Vec::new(),
        shanghai(),
        "x".into(),
        NonZeroU32::MIN,
        Duration::ZERO,
        Duration::ZERO,
    );
    assert!(none.is_err());
}

#[test]
fn the_same_seed_gives_the_same_plan() {
    let tz = shanghai();
    let p = plan(&["09:00-11:00", "18:30-22:00"], tz.clone(), 3, 120, 10);
    let now = at(&tz, "2026-06-01T07:00");
    assert_eq!(book(&p, now, 10, 42), book(&p, now, 10, 42));
    assert_ne!(book(&p, now, 10, 42), book(&p, now, 10, 43));
}

#[test]
fn the_platform_timer_takes_slots_it_can_hold() {
    let now = Timestamp::from_second(1_800_000_000).unwrap();
    let timer = Some(PostTimer {
        min_ahead: Duration::from_secs(2 * 3600),
        max_ahead: Duration::from_secs(14 * 86_400),
    });
    let plus = |s: i64| now + jiff::SignedDuration::from_secs(s);
    assert_eq!(how_to_post(now, now, timer), When::Now);
    assert_eq!(how_to_post(plus(-600), now, timer), When::Now, "late: now");
    assert_eq!(
        how_to_post(plus(3 * 3600), now, timer),
        When::Timer(plus(3 * 3600))
    );
    // Under 2 h (with our margin): the agent waits.
    assert_eq!(
        how_to_post(plus(7200), now, timer),
        When::Wait { wake: plus(7200) }
    );
    assert_eq!(
        how_to_post(plus(3600), now, None),
        When::Wait { wake: plus(3600) }
    );
    assert_eq!(
        how_to_post(plus(5 * 86_400), now, None),
        When::Wait {
            wake: plus(5 * 86_400)
        }
    );
    // Too far ahead: come back when the timer can hold it.
    let far = plus(20 * 86_400);
    let When::Wait { wake } = how_to_post(far, now, timer) else {
        panic!("waits")
    };
    assert_eq!(how_to_post(far, wake, timer), When::Timer(far));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Whatever was booked before and whatever the seed: the new slot is ≥ now, in a
    /// window, ≥ min_gap after the last booked slot, on a day under its maximum, and
    /// jitter moved it by no more than `jitter`.
    #[test]
    fn every_slot_keeps_the_plan(
        seed in any::<u64>(),
        start in 0i64..(400 * 86_400),
        videos in 1usize..12,
        daily_max in 1u32..4,
        gap in 0u64..300,
        jitter in 0u64..40,
        berlin_zone in any::<bool>(),
    ) {
        let tz = if berlin_zone { berlin() } else { shanghai() };
        let p = plan(&["06:00-07:15", "12:00-12:20", "23:00-24:00"], tz.clone(), daily_max, gap, jitter);
        let now = Timestamp::from_second(1_767_225_600 + start).unwrap();
        let slots = book(&p, now, videos, seed);
        let mut per_day = std::collections::HashMap::new();
        for (i, slot) in slots.iter().enumerate() {
            prop_assert!(*slot >= now);
            if i > 0 {
                let gap_s = i64::try_from(gap * 60).unwrap();
                prop_assert!(slot.as_second() - slots[i - 1].as_second() >= gap_s);
            }
            let dt = tz.to_datetime(*slot);
            let minute = i64::from(dt.hour()) * 60 + i64::from(dt.minute());
            let inside = p.windows().iter().any(|w| {
                let (s, e) = (i64::from(w.start), i64::from(w.end));
                (s..e).contains(&minute)
            });
            prop_assert!(inside, "{} outside the windows", local(&tz, *slot));
            *per_day.entry(dt.date()).or_insert(0u32) += 1;
            // The unjittered slot is no earlier than `jitter` before it.
            let unjittered = p.next_slot(&slots[..i], now, &mut Never).unwrap();
            let moved = slot.as_second() - unjittered.as_second();
            prop_assert!((0..=i64::try_from(jitter * 60).unwrap()).contains(&moved));
        }
        prop_assert!(per_day.values().all(|n| *n <= daily_max));
    }
}

/// Jitter that never moves a slot.
struct Never;

impl Jitter for Never {
    fn below(&mut self, _: u64) -> u64 {
        0
    }
}
