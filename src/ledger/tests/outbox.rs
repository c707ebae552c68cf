//! The notification outbox on both databases: rows written with the state change that
//! causes them (or not at all), claims that keep agents apart, backoff, give-up, restart.

use super::*;
use crate::notify::event::{Event, EventKind, EventSet};

const ALL: &str = "sink-all";
const FAILURES: &str = "sink-failures";

/// A handle (agent `name`) enqueueing for two sinks: one takes every event, one only
/// `failed` and `paused`.
fn notifying(backend: &Backend, name: &str) -> Ledger {
    let mut ledger = backend.agent(name, Duration::from_secs(600));
    let failures = EventSet::NONE
        .with(EventKind::Failed)
        .with(EventKind::Paused);
    ledger.set_outbox(Outbox::with_sinks(vec![
        (ALL.to_owned(), EventSet::ALL),
        (FAILURES.to_owned(), failures),
    ]));
    ledger
}

fn sinks() -> Vec<String> {
    vec![ALL.to_owned(), FAILURES.to_owned()]
}

/// Every outbox row as (event kind, sink, event id), in order.
fn rows(ledger: &Ledger) -> Vec<(String, String, String)> {
    ledger
        .db
        .query(
            "SELECT event, sink, event_id FROM notify_outbox ORDER BY id",
            p![],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0).unwrap(), r.get(1).unwrap(), r.get(2).unwrap()))
        .collect()
}

fn payload(ledger: &Ledger, kind: &str) -> Event {
    let text: String = ledger
        .db
        .value(
            "SELECT payload FROM notify_outbox WHERE event = ?1 ORDER BY id LIMIT 1",
            p![kind],
        )
        .unwrap();
    serde_json::from_str(&text).unwrap()
}

both!(each_state_change_enqueues_its_event_for_the_sinks_that_take_it);
fn each_state_change_enqueues_its_event_for_the_sinks_that_take_it(backend: &Backend) {
    let mut ledger = notifying(backend, "a");
    let posted = claimed_new(
        ledger
            .claim(&new_job(1, "main", "clips/a.mp4"), false)
            .unwrap(),
    );
    ledger.mark_publish_sent(posted.id).unwrap();
    ledger.mark_published(posted.id, &post("7001")).unwrap();
    let failed = claimed_new(ledger.claim(&new_job(2, "main", "b.mp4"), false).unwrap());
    ledger
        .mark_failed(failed.id, None, "rejected", "the platform refused it")
        .unwrap();
    let dup = ledger
        .claim(&new_job(1, "main", "copy.mp4"), false)
        .unwrap();
    assert!(matches!(dup, Claim::Duplicate { .. }));

    let kinds: Vec<(String, String)> = rows(&ledger).into_iter().map(|(k, s, _)| (k, s)).collect();
    let want = |k: &str, s: &str| (k.to_owned(), s.to_owned());
    assert_eq!(
        kinds,
        vec![
            want("published", ALL),
            want("failed", ALL),
            want("failed", FAILURES),
            want("duplicate", ALL),
        ]
    );
    // One event, one id, for every sink that takes it.
    let ids: Vec<String> = rows(&ledger).into_iter().map(|(_, _, id)| id).collect();
    assert_eq!(ids[1], ids[2]);
    assert_ne!(ids[0], ids[1]);

    let p = payload(&ledger, "published");
    assert_eq!(p.account.as_deref(), Some("main"));
    assert_eq!(p.platform.as_deref(), Some("douyin-web"));
    assert_eq!(p.file.as_deref(), Some("clips/a.mp4"));
    assert_eq!(p.hash.as_deref(), Some(&hash(1).as_str()[..12]));
    assert_eq!(
        p.post_url.as_deref(),
        Some("https://www.douyin.com/video/7001")
    );
    let f = payload(&ledger, "failed");
    assert_eq!(f.reason.as_deref(), Some("the platform refused it"));
    assert!(f.hint.unwrap().contains("refused"));
    let d = payload(&ledger, "duplicate");
    assert_eq!(d.file.as_deref(), Some("copy.mp4"));
    assert_eq!(
        d.post_url.as_deref(),
        Some("https://www.douyin.com/video/7001")
    );
}

both!(a_refused_state_change_enqueues_nothing);
fn a_refused_state_change_enqueues_nothing(backend: &Backend) {
    // The row and the change are one transaction: a change that is refused leaves no row.
    let mut ledger = notifying(backend, "a");
    let job = claimed_new(ledger.claim(&new_job(1, "main", "a.mp4"), false).unwrap());
    ledger.mark_publish_sent(job.id).unwrap();
    ledger.mark_published(job.id, &post("1")).unwrap();
    let before = rows(&ledger).len();
    assert!(
        ledger
            .mark_failed(job.id, None, "rejected", "late")
            .is_err()
    );
    assert!(ledger.mark_published(job.id, &post("2")).is_err());
    assert_eq!(rows(&ledger).len(), before);
    // Another agent's write to a job it does not hold is refused, and tells nothing.
    let mut other = notifying(backend, "b");
    let theirs = claimed_new(other.claim(&new_job(3, "main", "c.mp4"), false).unwrap());
    assert!(
        ledger
            .mark_failed(theirs.id, None, "rejected", "not mine")
            .is_err()
    );
    assert_eq!(rows(&ledger).len(), before);
}

both!(a_pause_and_its_resume_are_told_once_whichever_agent_sees_them);
fn a_pause_and_its_resume_are_told_once_whichever_agent_sees_them(backend: &Backend) {
    let mut a = notifying(backend, "a");
    let mut b = notifying(backend, "b");
    a.pause_account("main", "cookie expired", "dropcast login main")
        .unwrap();
    b.pause_account("main", "refused again", "dropcast login main")
        .unwrap();
    b.resume_account("main").unwrap();
    a.resume_account("main").unwrap();
    let kinds: Vec<String> = rows(&a).into_iter().map(|(k, _, _)| k).collect();
    assert_eq!(
        kinds,
        ["paused", "paused", "resumed"],
        "paused for both sinks"
    );
    let p = payload(&a, "paused");
    assert_eq!(p.reason.as_deref(), Some("cookie expired"));
    assert_eq!(p.hint.as_deref(), Some("dropcast login main"));
}

both!(an_event_id_is_enqueued_once);
fn an_event_id_is_enqueued_once(backend: &Backend) {
    let mut ledger = notifying(backend, "a");
    let event = Event::with_id(EventKind::SessionExpiring, "fixed-id".into(), 0);
    ledger.enqueue_notification(&event).unwrap();
    ledger.enqueue_notification(&event).unwrap();
    assert_eq!(rows(&ledger).len(), 1, "session_expiring goes to one sink");
}

both!(one_agent_holds_a_row_at_a_time_and_a_delivered_row_is_never_sent_again);
fn one_agent_holds_a_row_at_a_time_and_a_delivered_row_is_never_sent_again(backend: &Backend) {
    let mut a = notifying(backend, "a");
    let mut b = notifying(backend, "b");
    for n in 1..=3u8 {
        let job = claimed_new(
            a.claim(&new_job(n, "main", &format!("{n}.mp4")), false)
                .unwrap(),
        );
        a.mark_failed(job.id, None, "rejected", "no").unwrap();
    }
    let hold = Duration::from_secs(600);
    let first = a.claim_notifications(&sinks(), 4, hold).unwrap();
    assert_eq!(first.len(), 4, "a batch of at most 4 of the 6 rows");
    assert!(first.iter().all(|p| p.attempts == 1));
    let second = b.claim_notifications(&sinks(), 10, hold).unwrap();
    assert_eq!(second.len(), 2, "b gets only the rows a does not hold");
    assert!(
        b.claim_notifications(&sinks(), 10, hold)
            .unwrap()
            .is_empty()
    );
    for p in &first {
        a.notification_delivered(p.row).unwrap();
    }
    // A row another agent holds is not b's to fail.
    b.notification_failed(first[0].row, "late", Some(0))
        .unwrap();
    assert_eq!(a.notification_counts().unwrap(), (2, 4, 0));
    // b retries its two at once: due again, the event ids unchanged.
    for p in &second {
        b.notification_failed(p.row, "HTTP 503", Some(0)).unwrap();
    }
    let again = a.claim_notifications(&sinks(), 10, hold).unwrap();
    assert_eq!(
        again
            .iter()
            .map(|p| (&p.event_id, p.attempts))
            .collect::<Vec<_>>(),
        second.iter().map(|p| (&p.event_id, 2)).collect::<Vec<_>>()
    );
    // Given up: never claimed again.
    for p in &again {
        a.notification_failed(p.row, "HTTP 410", None).unwrap();
    }
    assert_eq!(a.notification_counts().unwrap(), (0, 4, 2));
    assert!(
        a.claim_notifications(&sinks(), 10, hold)
            .unwrap()
            .is_empty()
    );
    assert_eq!(a.next_notification_due(&sinks()).unwrap(), None);
    // Old rows are forgotten.
    assert_eq!(a.forget_notifications(now_ms() + 1).unwrap(), 6);
}

both!(a_restart_frees_its_own_dead_claims_and_tries_at_once);
fn a_restart_frees_its_own_dead_claims_and_tries_at_once(backend: &Backend) {
    let mut a = notifying(backend, "a");
    let job = claimed_new(a.claim(&new_job(1, "main", "a.mp4"), false).unwrap());
    a.mark_failed(job.id, None, "rejected", "no").unwrap();
    let hold = Duration::from_secs(600);
    let held = a.claim_notifications(&sinks(), 10, hold).unwrap();
    assert_eq!(held.len(), 2);
    // Agent a dies holding both; a's next run (the same name) takes them at once, while
    // another agent still waits for the claim to lapse.
    let mut b = notifying(backend, "b");
    assert!(
        b.claim_notifications(&sinks(), 10, hold)
            .unwrap()
            .is_empty()
    );
    let mut a2 = notifying(backend, "a");
    a2.restart_notifications(&sinks()).unwrap();
    let retaken = a2.claim_notifications(&sinks(), 10, hold).unwrap();
    assert_eq!(retaken.len(), 2);
    assert_eq!(retaken[0].event_id, held[0].event_id, "the same event id");
    // A row backing off far ahead is due at once after a restart.
    a2.notification_failed(retaken[0].row, "down", Some(now_ms() + 3_600_000))
        .unwrap();
    a2.notification_delivered(retaken[1].row).unwrap();
    let due = a2.next_notification_due(&sinks()).unwrap().unwrap();
    assert!(due > now_ms() + 3_000_000);
    a2.restart_notifications(&sinks()).unwrap();
    assert!(a2.next_notification_due(&sinks()).unwrap().unwrap() <= now_ms());
    // Sinks this agent does not have are never its to claim.
    assert!(
        a2.claim_notifications(&["other".to_owned()], 10, hold)
            .unwrap()
            .is_empty()
    );
}

#[test]
fn no_sinks_no_rows() {
    let (_dir, mut ledger) = open_temp();
    let job = claimed_new(ledger.claim(&new_job(1, "main", "a.mp4"), false).unwrap());
    ledger.mark_failed(job.id, None, "rejected", "no").unwrap();
    ledger.pause_account("main", "expired", "log in").unwrap();
    assert!(rows(&ledger).is_empty());
}
