//! The posting plan (docs/posting-plan.md): an account's posting windows in a time zone,
//! a daily maximum, a least gap and random jitter, as a type that can only hold a valid
//! plan, and the pure scheduler that gives a video its slot. No clock, no randomness of
//! its own: `now` and the jitter's source are passed in, so tests are exact.

use std::num::NonZeroU32;
use std::time::Duration;

use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::TimeZone;

mod jitter;
mod timer;

#[cfg(test)]
mod tests;

pub use jitter::{Jitter, SplitMix};
pub use timer::{PostTimer, When, how_to_post};

/// Minutes in a day: a window's end may be `24:00`.
const DAY_MINUTES: u16 = 24 * 60;

/// A posting window: `start..end` local wall-clock minutes of a day, `start < end`, the
/// end excluded. A window written across midnight (`22:00-02:00`) is read as two,
/// `22:00-24:00` and `00:00-02:00`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Window {
    start: u16,
    end: u16,
}

impl Window {
    /// `HH:MM-HH:MM` (the end may be `24:00`): one window, or two when it crosses midnight.
    pub fn parse(s: &str) -> Result<Vec<Window>, String> {
        let bad = || format!("`{s}` is not a window like `09:00-11:00`");
        let (a, b) = s.split_once('-').ok_or_else(bad)?;
        let (start, end) = (
            minute_of_day(a.trim()).ok_or_else(bad)?,
            minute_of_day(b.trim()).ok_or_else(bad)?,
        );
        match start.cmp(&end) {
            std::cmp::Ordering::Less => Ok(vec![Window { start, end }]),
            std::cmp::Ordering::Equal => Err(format!("`{s}` is empty: it starts where it ends")),
            std::cmp::Ordering::Greater if end == 0 => Ok(vec![Window {
                start,
                end: DAY_MINUTES,
            }]),
            std::cmp::Ordering::Greater if start == DAY_MINUTES => {
                Ok(vec![Window { start: 0, end }])
            }
            std::cmp::Ordering::Greater => Ok(vec![
                Window { start: 0, end },
                Window {
                    start,
                    end: DAY_MINUTES,
                },
            ]),
        }
    }

    /// Its first and last instant (end excluded) on local `day`; `None` when the time
    /// zone leaves nothing of it that day (a window inside a DST gap).
    fn on(self, day: Date, zone: &TimeZone) -> Option<(Timestamp, Timestamp)> {
        let start = instant(day, self.start, zone)?;
        let end = instant(day, self.end, zone)?;
        (start < end).then_some((start, end))
    }
}

impl std::fmt::Display for Window {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let hm = |m: u16| format!("{:02}:{:02}", m / 60, m % 60);
        write!(f, "{}-{}", hm(self.start), hm(self.end))
    }
}

/// `HH:MM` → minutes since midnight; `24:00` is the day's end.
fn minute_of_day(s: &str) -> Option<u16> {
    let (h, m) = s.split_once(':')?;
    let digits = |t: &str| !t.is_empty() && t.len() <= 2 && t.bytes().all(|b| b.is_ascii_digit());
    if !digits(h) || m.len() != 2 || !digits(m) {
        return None;
    }
    let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
    match (h, m) {
        (24, 0) => Some(DAY_MINUTES),
        (0..=23, 0..=59) => Some(h * 60 + m),
        _ => None,
    }
}

/// Local `minute` of `day` as an instant. A wall-clock time the zone skips (a DST gap)
/// is read as the instant it would be with the offset before the gap (jiff's
/// "compatible": 02:30 on a spring-forward day is 03:30); a repeated one as its first.
fn instant(day: Date, minute: u16, zone: &TimeZone) -> Option<Timestamp> {
    let dt = if minute >= DAY_MINUTES {
        day.tomorrow().ok()?.at(0, 0, 0, 0)
    } else {
        let (h, m) = (
            i8::try_from(minute / 60).ok()?,
            i8::try_from(minute % 60).ok()?,
        );
        day.at(h, m, 0, 0)
    };
    zone.to_ambiguous_timestamp(dt).compatible().ok()
}

/// An account's posting plan: sorted, non-overlapping windows (at least one) in a time
/// zone, at most `daily_max` posts per local calendar day, at least `min_gap` between two,
/// each slot moved later by up to `jitter` (never out of its window).
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    windows: Vec<Window>,
    zone: TimeZone,
    /// How the zone was named in the config (`Asia/Shanghai`, or `local`).
    zone_name: String,
    pub daily_max: NonZeroU32,
    pub min_gap: Duration,
    pub jitter: Duration,
}

impl Plan {
    /// A plan from its parts: windows are sorted, and refused if they overlap or there are
    /// none.
    pub fn new(
        mut windows: Vec<Window>,
        zone: TimeZone,
        zone_name: String,
        daily_max: NonZeroU32,
        min_gap: Duration,
        jitter: Duration,
    ) -> Result<Plan, String> {
        if windows.is_empty() {
            return Err("list at least one window, like `09:00-11:00`".into());
        }
        windows.sort();
        if let Some(pair) = windows.windows(2).find(|w| w[1].start < w[0].end) {
            return Err(format!("windows {} and {} overlap", pair[0], pair[1]));
        }
        Ok(Plan {
            windows,
            zone,
            zone_name,
            daily_max,
            min_gap,
            jitter,
        })
    }

    pub fn windows(&self) -> &[Window] {
        &self.windows
    }

    pub fn zone(&self) -> &TimeZone {
        &self.zone
    }

    pub fn zone_name(&self) -> &str {
        &self.zone_name
    }

    /// The local calendar day of `t` in the plan's zone.
    fn day_of(&self, t: Timestamp) -> Date {
        self.zone.to_datetime(t).date()
    }

    /// The next slot for a video: the earliest instant ≥ `now`, ≥ `min_gap` after the
    /// latest of `booked` (the account's slots already booked), inside a window, on a local
    /// day with fewer than `daily_max` booked slots; then moved later by a random part of
    /// `jitter` that keeps it inside its window (not when the slot is `now` itself: a
    /// video that may go now goes now). Whole seconds. `None` only when the calendar
    /// runs out.
    pub fn next_slot(
        &self,
        booked: &[Timestamp],
        now: Timestamp,
        jitter: &mut dyn Jitter,
    ) -> Option<Timestamp> {
        let gap = jiff::SignedDuration::try_from(self.min_gap).ok()?;
        let after_gap = booked
            .iter()
            .max()
            .and_then(|last| last.checked_add(gap).ok());
        let earliest = ceil_second(after_gap.map_or(now, |t| t.max(now)))?;
        let mut per_day: std::collections::HashMap<Date, u32> = std::collections::HashMap::new();
        for t in booked {
            *per_day.entry(self.day_of(*t)).or_default() += 1;
        }
        let mut day = self.day_of(earliest);
        // Each day passed over is full, before `earliest`, or lost to a DST gap: a
        // bounded number of them.
        for _ in 0..booked.len() + 8 {
            let full = per_day.get(&day).copied().unwrap_or(0) >= self.daily_max.get();
            if !full && let Some((base, end)) = self.first_fit(day, earliest) {
                return Some(self.jittered(base, end, now, jitter));
            }
            day = day.tomorrow().ok()?;
        }
        None
    }

    /// The earliest instant ≥ `earliest` inside one of `day`'s windows, with that window's
    /// end.
    fn first_fit(&self, day: Date, earliest: Timestamp) -> Option<(Timestamp, Timestamp)> {
        self.windows.iter().find_map(|w| {
            let (start, end) = w.on(day, &self.zone)?;
            let base = start.max(earliest);
            (base < end).then_some((base, end))
        })
    }

    /// `base` moved later by up to `jitter`, staying before `end`; `base` itself when it
    /// is `now`.
    fn jittered(
        &self,
        base: Timestamp,
        end: Timestamp,
        now: Timestamp,
        jitter: &mut dyn Jitter,
    ) -> Timestamp {
        if base <= now || self.jitter.is_zero() {
            return base;
        }
        let room = end.as_second() - base.as_second() - 1;
        let most = i64::try_from(self.jitter.as_secs())
            .unwrap_or(i64::MAX)
            .min(room)
            .max(0);
        let moved = jitter.below(most.unsigned_abs() + 1);
        let moved = i64::try_from(moved).unwrap_or(0);
        base.checked_add(jiff::SignedDuration::from_secs(moved))
            .unwrap_or(base)
    }
}

/// `t` rounded up to a whole second.
fn ceil_second(t: Timestamp) -> Option<Timestamp> {
    let s = t.as_second();
    let whole = Timestamp::from_second(s).ok()?;
    if whole < t {
        Timestamp::from_second(s + 1).ok()
    } else {
        Some(whole)
    }
}
