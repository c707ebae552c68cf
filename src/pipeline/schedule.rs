//! The posting plan in a job (docs/posting-plan.md): just before a post is sent (before
//! the upload where the upload is the post: `platform::posts_with_upload`), the job books
//! its slot in the ledger (or reads the one it booked in an earlier run), then the post
//! goes now, goes now with the platform's timer set to the slot, or the job ends as
//! scheduled and the agent brings the drop back at the slot (`agent::Scheduled`). A
//! caption's `publish_at` wins: such a video has no slot.

use std::sync::{Mutex, PoisonError};
use std::time::SystemTime;

use jiff::Timestamp;
use tracing::info;

use crate::domain::{Platform, PostDraft};
use crate::ledger::{JobRecord, LedgerError};
use crate::plan::{Jitter, Plan, SplitMix, When, how_to_post};

use super::context::Context;

/// What the job does with its post.
pub(super) enum Slot {
    /// Send this draft now (its `publish_at` set when the platform's timer holds the
    /// slot).
    Go(Box<PostDraft>),
    /// Come back at this time (uploaded already, unless the upload is the post).
    WaitUntil(SystemTime),
}

/// The agent's jitter: seeded once from the OS.
static JITTER: Mutex<Option<SplitMix>> = Mutex::new(None);

/// Books (or re-reads) job `job`'s slot when its account has a plan, and says how the
/// post reaches it.
pub(super) async fn slot_for(
    ctx: &Context,
    job: &JobRecord,
    platform: Platform,
    mut draft: PostDraft,
) -> Result<Slot, LedgerError> {
    let Some(plan) = ctx.config.plan_for(&job.account) else {
        return Ok(Slot::Go(Box::new(draft)));
    };
    if draft.publish_at.is_some() {
        return Ok(Slot::Go(Box::new(draft)));
    }
    let (id, plan) = (job.id, plan.clone());
    let now = SystemTime::now();
    let slot = ctx
        .ledger(move |l| l.book_planned_slot(id, |booked| pick(&plan, booked, now)))
        .await?;
    let (slot_ts, now_ts) = (stamp(slot), stamp(SystemTime::now()));
    Ok(
        match how_to_post(slot_ts, now_ts, crate::platform::post_timer(platform)) {
            When::Now => Slot::Go(Box::new(draft)),
            When::Timer(at) => {
                info!(step = "publish", slot = %at, "the platform's timer posts it at its planned slot");
                draft.publish_at = Some(at.as_second());
                Slot::Go(Box::new(draft))
            }
            When::Wait { wake } => {
                info!(step = "publish", slot = %slot_ts, wake = %wake, "the post waits for its planned slot");
                Slot::WaitUntil(SystemTime::try_from(wake).unwrap_or(slot))
            }
        },
    )
}

/// The plan's next slot after `booked`, from `now`, with the agent's jitter.
fn pick(plan: &Plan, booked: &[SystemTime], now: SystemTime) -> Option<SystemTime> {
    let booked: Vec<Timestamp> = booked.iter().map(|t| stamp(*t)).collect();
    let mut guard = JITTER.lock().unwrap_or_else(PoisonError::into_inner);
    let jitter: &mut dyn Jitter = guard.get_or_insert_with(SplitMix::from_os);
    let slot = plan.next_slot(&booked, stamp(now), jitter)?;
    SystemTime::try_from(slot).ok()
}

/// A `SystemTime` as a jiff timestamp (clamped to jiff's range).
fn stamp(t: SystemTime) -> Timestamp {
    Timestamp::try_from(t).unwrap_or(Timestamp::MAX)
}

/// The outcome a drop keeps when two of its targets are not done: the first, except
/// that of two scheduled ones the earlier slot brings the drop back.
pub(super) fn first_open(open: Option<super::Outcome>, outcome: super::Outcome) -> super::Outcome {
    use super::Outcome::Scheduled;
    match (open, outcome) {
        (Some(Scheduled { until: a }), Scheduled { until: b }) => Scheduled { until: a.min(b) },
        (Some(first), _) => first,
        (None, outcome) => outcome,
    }
}

/// The drops whose posts wait for their slot, and when each comes back: the agent leaves
/// them alone (no job, no permit) until then, and a scan does not bring them back early.
#[derive(Debug, Default)]
pub(crate) struct Wakes(std::collections::HashMap<std::path::PathBuf, SystemTime>);

impl Wakes {
    pub(crate) fn insert(&mut self, video: std::path::PathBuf, at: SystemTime) {
        self.0.insert(video, at);
    }

    pub(crate) fn contains(&self, video: &std::path::Path) -> bool {
        self.0.contains_key(video)
    }

    /// Forgets `video` (it changed: it settles and is looked at anew).
    pub(crate) fn remove(&mut self, video: &std::path::Path) -> bool {
        self.0.remove(video).is_some()
    }

    /// How long until the next drop comes back, from `now`.
    pub(crate) fn next_in(&self, now: SystemTime) -> Option<std::time::Duration> {
        let next = self.0.values().min()?;
        Some(next.duration_since(now).unwrap_or_default())
    }

    /// The drops due at `now`, taken out, by path.
    pub(crate) fn take_due(&mut self, now: SystemTime) -> Vec<std::path::PathBuf> {
        let mut due: Vec<_> = self
            .0
            .iter()
            .filter(|(_, at)| **at <= now)
            .map(|(p, _)| p.clone())
            .collect();
        due.sort();
        for p in &due {
            self.0.remove(p);
        }
        due
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::time::{Duration, SystemTime};

    use super::*;

    #[test]
    fn waiting_drops_come_back_at_their_slots_earliest_first() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_900_000_000);
        let mut wakes = Wakes::default();
        assert_eq!(wakes.next_in(t0), None);
        wakes.insert(PathBuf::from("b.mp4"), t0 + Duration::from_secs(60));
        wakes.insert(PathBuf::from("a.mp4"), t0 + Duration::from_secs(60));
        wakes.insert(PathBuf::from("c.mp4"), t0 + Duration::from_secs(600));
        assert_eq!(wakes.next_in(t0), Some(Duration::from_secs(60)));
        assert!(wakes.take_due(t0 + Duration::from_secs(59)).is_empty());
        assert!(wakes.contains(std::path::Path::new("a.mp4")));
        let due = wakes.take_due(t0 + Duration::from_secs(60));
        assert_eq!(due, [PathBuf::from("a.mp4"), PathBuf::from("b.mp4")]);
        assert_eq!(
            wakes.next_in(t0 + Duration::from_secs(60)),
            Some(Duration::from_secs(540))
        );
        // Late (the machine slept): due at once, never a negative wait.
        assert_eq!(
            wakes.next_in(t0 + Duration::from_secs(900)),
            Some(Duration::ZERO)
        );
        assert!(wakes.remove(std::path::Path::new("c.mp4")));
        assert_eq!(wakes.next_in(t0), None);
    }

    #[test]
    fn of_two_scheduled_targets_the_earlier_slot_brings_the_drop_back() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(100);
        let later = super::super::Outcome::Scheduled {
            until: t + Duration::from_secs(50),
        };
        let sooner = super::super::Outcome::Scheduled { until: t };
        match first_open(Some(later), sooner) {
            super::super::Outcome::Scheduled { until } => assert_eq!(until, t),
            other => panic!("{other:?}"),
        }
        let held = super::super::Outcome::Held {
            reason: "paused".into(),
        };
        assert!(matches!(
            first_open(Some(held), super::super::Outcome::Scheduled { until: t }),
            super::super::Outcome::Held { .. }
        ));
    }
}
