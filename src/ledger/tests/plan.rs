//! The posting plan's slots on both databases: a job keeps its slot (never planned
//! again, across a restart), the account's other live slots are what a new one is
//! planned from, and two agents booking at once never get the same slot.

use super::*;

const LONG: Duration = Duration::from_secs(600);

/// The scheduler's stand-in: one hour after the latest booked slot, or `base`.
fn hourly(base: SystemTime) -> impl Fn(&[SystemTime]) -> Option<SystemTime> {
    move |booked| {
        Some(
            booked
                .iter()
                .max()
                .map_or(base, |last| *last + Duration::from_secs(3600)),
        )
    }
}

fn base() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_900_000_000)
}

both!(a_job_keeps_its_slot_and_the_next_is_planned_from_the_live_ones);
fn a_job_keeps_its_slot_and_the_next_is_planned_from_the_live_ones(backend: &Backend) {
    let mut ledger = backend.open();
    let a = claimed_new(ledger.claim(&new_job(1, "main", "a.mp4"), false).unwrap());
    let b = claimed_new(ledger.claim(&new_job(2, "main", "b.mp4"), false).unwrap());
    let other = claimed_new(ledger.claim(&new_job(3, "alt", "c.mp4"), false).unwrap());
    assert_eq!(ledger.planned_at(a.id).unwrap(), None);
    let slot_a = ledger.book_planned_slot(a.id, hourly(base())).unwrap();
    assert_eq!(slot_a, base());
    // Booked once: asking again returns it and plans nothing.
    let again = ledger
        .book_planned_slot(a.id, |_| panic!("a job with a slot is never planned again"))
        .unwrap();
    assert_eq!(again, slot_a);
    // Another account's slots are not this one's.
    let slot_other = ledger.book_planned_slot(other.id, hourly(base())).unwrap();
    assert_eq!(slot_other, base());
    let slot_b = ledger.book_planned_slot(b.id, hourly(base())).unwrap();
    assert_eq!(slot_b, base() + Duration::from_secs(3600));
    // A restart reads the slots back.
    drop(ledger);
    let mut ledger = backend.open();
    assert_eq!(ledger.planned_at(a.id).unwrap(), Some(slot_a));
    assert_eq!(ledger.planned_at(b.id).unwrap(), Some(slot_b));
    assert_eq!(
        ledger.booked_slots("main", UNIX_EPOCH).unwrap(),
        vec![slot_a, slot_b]
    );
    // A failed job's slot is free again: the next is planned from the live ones only.
    ledger
        .mark_failed(b.id, None, "publish", "refused")
        .unwrap();
    let c = claimed_new(ledger.claim(&new_job(4, "main", "d.mp4"), false).unwrap());
    let seen = std::cell::RefCell::new(Vec::new());
    let slot_c = ledger
        .book_planned_slot(c.id, |booked| {
            seen.borrow_mut().extend_from_slice(booked);
            hourly(base())(booked)
        })
        .unwrap();
    assert_eq!(seen.into_inner(), vec![slot_a]);
    assert_eq!(slot_c, slot_b);
    let planned = ledger.planned().unwrap();
    let videos: Vec<&str> = planned.iter().map(|p| p.video.to_str().unwrap()).collect();
    assert_eq!(videos, ["a.mp4", "c.mp4", "d.mp4"], "by slot, then id");
    assert!(
        planned
            .iter()
            .all(|p| !p.sent && p.state == JobState::Active)
    );
}

both!(two_agents_booking_at_once_never_get_one_slot);
fn two_agents_booking_at_once_never_get_one_slot(backend: &Backend) {
    let mut a = backend.agent("host-a", LONG);
    let mut b = backend.agent("host-b", LONG);
    let mut jobs_a = Vec::new();
    let mut jobs_b = Vec::new();
    for n in 0..6u8 {
        let job = new_job(n + 1, "main", &format!("v{n}.mp4"));
        if n % 2 == 0 {
            jobs_a.push(claimed_new(a.claim(&job, false).unwrap()).id);
        } else {
            jobs_b.push(claimed_new(b.claim(&job, false).unwrap()).id);
        }
    }
    let barrier = std::sync::Barrier::new(2);
    let book_all = |ledger: &mut Ledger, jobs: &[JobId]| -> Vec<SystemTime> {
        barrier.wait();
        jobs.iter()
            .map(|id| ledger.book_planned_slot(*id, hourly(base())).unwrap())
            .collect()
    };
    let (slots_a, slots_b) = std::thread::scope(|s| {
        let ta = s.spawn(|| book_all(&mut a, &jobs_a));
        let tb = s.spawn(|| book_all(&mut b, &jobs_b));
        (ta.join().unwrap(), tb.join().unwrap())
    });
    let mut all: Vec<SystemTime> = slots_a.into_iter().chain(slots_b).collect();
    all.sort();
    let expected: Vec<SystemTime> = (0..6)
        .map(|k| base() + Duration::from_secs(3600 * k))
        .collect();
    assert_eq!(all, expected, "each slot booked once, each after the last");
}

both!(only_the_job_holder_books_its_slot);
fn only_the_job_holder_books_its_slot(backend: &Backend) {
    let mut a = backend.agent("host-a", LONG);
    let mut b = backend.agent("host-b", LONG);
    let job = claimed_new(a.claim(&new_job(1, "main", "a.mp4"), false).unwrap());
    assert!(b.book_planned_slot(job.id, hourly(base())).is_err());
    assert_eq!(a.planned_at(job.id).unwrap(), None);
}
