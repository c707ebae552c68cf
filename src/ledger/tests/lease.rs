//! Leases and fencing on both databases: two handles on one ledger are two agents.

use std::time::Instant;

use super::*;

/// A lease that outlives the test.
const LONG: Duration = Duration::from_secs(600);
/// A lease that has expired by the time anyone else looks.
const BRIEF: Duration = Duration::from_millis(1);

/// Waits, without sleeping, until the lease clock (unix ms) is past `until`.
fn wait_past(until: i64) {
    let start = Instant::now();
    while now_ms() <= until {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the clock stands still"
        );
        std::thread::yield_now();
    }
}

/// Waits until job `id`'s lease has expired.
fn outlive(ledger: &Ledger, id: JobId) {
    let until = ledger
        .job(id)
        .unwrap()
        .unwrap()
        .lease
        .until
        .expect("a lease");
    wait_past(until);
}

fn lease(ledger: &Ledger, id: JobId) -> Lease {
    ledger.job(id).unwrap().unwrap().lease
}

/// Everything the ledger holds about a job.
type Snapshot = (
    Option<JobRecord>,
    Option<serde_json::Value>,
    Vec<PartRecord>,
    Option<serde_json::Value>,
);

/// Everything the ledger holds about job `id`, to tell that a refused write wrote nothing.
fn snapshot(ledger: &Ledger, id: JobId) -> Snapshot {
    (
        ledger.job(id).unwrap(),
        ledger.upload_session(id).unwrap(),
        ledger.parts(id).unwrap(),
        ledger.archive_plan(id).unwrap(),
    )
}

/// One write of a job, to try as an agent that lost it.
type Write<'a> = Box<dyn Fn(&mut Ledger) -> Result<(), LedgerError> + 'a>;

fn info(name: &str, host: &str, pid: u32) -> AgentInfo {
    AgentInfo {
        name: name.into(),
        host: host.into(),
        pid,
        version: "test".into(),
        metrics: None,
    }
}

both!(a_claim_leases_the_job_and_another_agent_finds_it_held);
fn a_claim_leases_the_job_and_another_agent_finds_it_held(backend: &Backend) {
    let mut a = backend.agent("a", LONG);
    let mut b = backend.agent("b", LONG);
    let before = now_ms();
    let job = claimed_new(a.claim(&new_job(1, "main", "clip.mp4"), false).unwrap());
    assert_eq!(job.lease.holder.as_deref(), Some("a"));
    assert_eq!(job.lease.fence, 1);
    assert!(job.lease.until.unwrap() >= before + 600_000);
    assert_eq!(a.held_jobs(), vec![job.id]);

    let all = |l: &Ledger| l.jobs_in(&JobState::ALL).unwrap();
    let was = all(&b);
    let claim = b.claim(&new_job(1, "main", "clip.mp4"), false).unwrap();
    assert!(
        matches!(&claim, Claim::Held { job: j, holder } if j.id == job.id && holder == "a"),
        "{claim:?}"
    );
    assert_eq!(all(&b), was, "a held claim writes nothing");
    assert!(b.held_jobs().is_empty());
    // Nor may it write the job without a claim.
    let err = b
        .record_step(job.id, &st("upload"), &json!({}), false)
        .unwrap_err();
    assert!(
        matches!(&err, LedgerError::LeaseHeld { id, holder } if *id == job.id && holder == "a"),
        "{err}"
    );
    assert_eq!(all(&b), was);

    // The same content under another name is a duplicate for every agent; for another
    // account it is a job of its own.
    let dup = b.claim(&new_job(1, "main", "copy.mp4"), false).unwrap();
    assert!(
        matches!(&dup, Claim::Duplicate { earlier, .. } if earlier.id == job.id),
        "{dup:?}"
    );
    let alt = claimed_new(b.claim(&new_job(1, "alt", "clip.mp4"), false).unwrap());
    assert_eq!(
        (alt.lease.holder.as_deref(), alt.lease.fence),
        (Some("b"), 1)
    );
    assert_eq!(lease(&a, job.id).holder.as_deref(), Some("a"));
}

// Pins the promise of issue 13: an agent paused past its lease, whose job another agent
// took over, can write nothing more about that job.
both!(a_job_taken_over_refuses_every_write_of_the_agent_that_lost_it);
fn a_job_taken_over_refuses_every_write_of_the_agent_that_lost_it(backend: &Backend) {
    let mut a = backend.agent("a", BRIEF);
    let mut b = backend.agent("b", LONG);
    let job = claimed_new(a.claim(&new_job(1, "main", "clip.mp4"), false).unwrap());
    a.record_step(job.id, &st("credentials"), &json!({"ak": 1}), false)
        .unwrap();
    a.save_upload_session(job.id, &json!({"upload_id": "u1"}))
        .unwrap();
    let part = PartRecord {
        number: 1,
        size: 5,
        crc32: 7,
    };
    a.record_part(job.id, part).unwrap();
    outlive(&a, job.id);

    let Claim::Resume(taken) = b.claim(&new_job(1, "main", "clip.mp4"), false).unwrap() else {
        panic!("an expired lease is taken over");
    };
    assert_eq!(taken.id, job.id);
    assert_eq!(
        (taken.lease.holder.as_deref(), taken.lease.fence),
        (Some("b"), 2)
    );
    assert!(
        taken.steps.contains(&st("credentials")),
        "its checkpoints go with it"
    );

    let before = snapshot(&a, job.id);
    let late = PathBuf::from("done/clip.mp4");
    let writes: Vec<(&str, Write)> = vec![
        (
            "record_step",
            Box::new(|l| l.record_step(job.id, &st("upload"), &json!({}), false)),
        ),
        (
            "save_upload_session",
            Box::new(|l| l.save_upload_session(job.id, &json!({"u": 2}))),
        ),
        ("record_part", Box::new(|l| l.record_part(job.id, part))),
        (
            "mark_publish_sent",
            Box::new(|l| l.mark_publish_sent(job.id)),
        ),
        (
            "mark_published",
            Box::new(|l| l.mark_published(job.id, &post("9"))),
        ),
        (
            "mark_posted_without_id",
            Box::new(|l| l.mark_posted_without_id(job.id)),
        ),
        (
            "set_publish_at",
            Box::new(|l| l.set_publish_at(job.id, Some(5))),
        ),
        (
            "bump_attempts",
            Box::new(|l| l.bump_attempts(job.id).map(drop)),
        ),
        ("forget_steps", Box::new(|l| l.forget_steps(job.id))),
        ("void_upload", Box::new(|l| l.void_upload(job.id))),
        (
            "mark_failed",
            Box::new(|l| l.mark_failed(job.id, None, "x", "y")),
        ),
        (
            "mark_abandoned",
            Box::new(|l| l.mark_abandoned(job.id, "changed")),
        ),
        (
            "mark_unconfirmed",
            Box::new(|l| l.mark_unconfirmed(job.id, "?")),
        ),
        (
            "set_archive_plan_for",
            Box::new(|l| l.set_archive_plan_for(&[job.id], &a_plan(0))),
        ),
        ("mark_done", Box::new(|l| l.mark_done(job.id, &late))),
        (
            "record_archived",
            Box::new(|l| l.record_archived(job.id, &late)),
        ),
        (
            "mark_archived",
            Box::new(|l| l.mark_archived(job.id, &late)),
        ),
        ("requeue", Box::new(|l| l.requeue(job.id))),
        ("reopen_ended", Box::new(|l| l.reopen_ended(job.id))),
        (
            "record_public_post",
            Box::new(|l| l.record_public_post(job.id, &post("9"))),
        ),
    ];
    for (name, write) in &writes {
        // As if this were the first write after the agent woke up.
        a.held.insert(job.id, 1);
        let err = write(&mut a).expect_err(name);
        assert!(
            matches!(&err, LedgerError::LeaseLost { id, holder } if *id == job.id && holder == "b"),
            "{name}: {err}"
        );
        assert_eq!(snapshot(&a, job.id), before, "{name} wrote");
    }
    // Nor does it give up the lease it lost.
    a.held.insert(job.id, 1);
    a.release(&[job.id]).unwrap();
    assert_eq!(
        snapshot(&a, job.id),
        before,
        "release freed another agent's lease"
    );
    // Its renewal reports the job lost, and forgets it.
    a.held.insert(job.id, 1);
    assert_eq!(a.renew_leases().unwrap(), vec![job.id]);
    assert!(a.held_jobs().is_empty());
    assert_eq!(snapshot(&a, job.id), before);

    // The agent that took it over goes on under its fence.
    b.mark_publish_sent(job.id).unwrap();
    b.mark_published(job.id, &post("9")).unwrap();
    let done = b.job(job.id).unwrap().unwrap();
    assert_eq!(done.state, JobState::Published);
    assert_eq!(
        (done.lease.holder.as_deref(), done.lease.fence),
        (Some("b"), 2)
    );
    assert_eq!(done.publish_sent_by.as_deref(), Some("b"));
}

both!(a_restarted_agent_fences_out_its_own_old_handle);
fn a_restarted_agent_fences_out_its_own_old_handle(backend: &Backend) {
    let mut old = backend.agent("a", LONG);
    let job = claimed_new(old.claim(&new_job(1, "main", "clip.mp4"), false).unwrap());
    let mut new = backend.agent("a", LONG);
    let Claim::Resume(resumed) = new.claim(&new_job(1, "main", "clip.mp4"), false).unwrap() else {
        panic!("its own lease does not hold an agent back");
    };
    assert_eq!(resumed.lease.fence, 2);
    let err = old.mark_publish_sent(job.id).unwrap_err();
    assert!(matches!(err, LedgerError::LeaseLost { .. }), "{err}");
    new.mark_publish_sent(job.id).unwrap();
}

both!(renewal_extends_the_leases_held_and_the_heartbeat);
fn renewal_extends_the_leases_held_and_the_heartbeat(backend: &Backend) {
    let mut a = backend.agent("a", Duration::from_secs(60));
    a.register_agent(&info("a", "h1", 1)).unwrap();
    let x = claimed_new(a.claim(&new_job(1, "main", "x.mp4"), false).unwrap());
    let y = claimed_new(a.claim(&new_job(2, "main", "y.mp4"), false).unwrap());
    let was = lease(&a, x.id).until.unwrap();
    let heartbeat = a.agents().unwrap()[0].heartbeat_at;
    wait_past(was - 60_000);
    assert_eq!(a.renew_leases().unwrap(), Vec::<JobId>::new());
    for id in [x.id, y.id] {
        let l = lease(&a, id);
        assert!(l.until.unwrap() > was, "{l:?}");
        assert_eq!((l.holder.as_deref(), l.fence), (Some("a"), 1));
    }
    let agents = a.agents().unwrap();
    assert!(agents[0].heartbeat_at > heartbeat);
    assert_eq!(agents[0].jobs, vec![x.id, y.id]);
}

both!(a_released_lease_is_claimed_at_once_by_another_agent);
fn a_released_lease_is_claimed_at_once_by_another_agent(backend: &Backend) {
    let mut a = backend.agent("a", LONG);
    let mut b = backend.agent("b", LONG);
    let clip = new_job(1, "main", "clip.mp4");
    let job = claimed_new(a.claim(&clip, false).unwrap());
    assert!(matches!(b.claim(&clip, false).unwrap(), Claim::Held { .. }));
    a.release(&[job.id]).unwrap();
    assert!(a.held_jobs().is_empty());
    assert_eq!(
        lease(&a, job.id),
        Lease {
            holder: None,
            until: None,
            fence: 1
        }
    );
    let Claim::Resume(r) = b.claim(&clip, false).unwrap() else {
        panic!("a released job is free");
    };
    assert_eq!((r.lease.holder.as_deref(), r.lease.fence), (Some("b"), 2));

    // Releasing a drop gives up only this agent's leases on it.
    let alt = claimed_new(a.claim(&new_job(1, "alt", "clip.mp4"), false).unwrap());
    b.release_drop(Path::new("clip.mp4")).unwrap();
    assert_eq!(lease(&b, job.id).holder, None);
    assert_eq!(lease(&b, alt.id).holder.as_deref(), Some("a"));
    assert!(b.held_jobs().is_empty());
    a.release_drop(Path::new("other.mp4")).unwrap();
    assert_eq!(a.held_jobs(), vec![alt.id]);
    let Claim::Resume(r) = a.claim(&clip, false).unwrap() else {
        panic!("a released drop is free");
    };
    assert_eq!(r.lease.fence, 3);

    // A clean stop gives up every lease.
    a.agent_stopped().unwrap();
    assert!(a.held_jobs().is_empty());
    assert!(matches!(b.claim(&clip, false).unwrap(), Claim::Resume(_)));
    assert_eq!(lease(&b, alt.id).holder, None);
}

both!(an_agent_name_is_taken_while_its_agent_lives);
fn an_agent_name_is_taken_while_its_agent_lives(backend: &Backend) {
    let mut first = backend.agent("x", LONG);
    let mut second = backend.agent("y", LONG);
    first
        .register_agent(&info("studio", "host-a", 100))
        .unwrap();
    assert_eq!(first.agent_name(), "studio");
    let err = second
        .register_agent(&info("studio", "host-b", 200))
        .unwrap_err();
    assert!(
        matches!(&err, LedgerError::AgentNameTaken { name, host, pid }
            if name == "studio" && host == "host-a" && *pid == 100),
        "{err}"
    );
    // The same process registering again (a reopened ledger) is no other agent.
    first
        .register_agent(&info("studio", "host-a", 100))
        .unwrap();
    first.agent_stopped().unwrap();
    second
        .register_agent(&info("studio", "host-b", 200))
        .unwrap();
    let agents = second.agents().unwrap();
    assert_eq!(agents.len(), 1);
    assert_eq!((agents[0].host.as_str(), agents[0].pid), ("host-b", 200));
    assert!(!agents[0].stopped);

    // An agent without a heartbeat for a lease is gone: its name is free again.
    let mut third = backend.agent("z", BRIEF);
    let heartbeat = crate::ledger::to_ms(agents[0].heartbeat_at);
    wait_past(heartbeat + 1);
    third
        .register_agent(&info("studio", "host-c", 300))
        .unwrap();
}

both!(orphaned_drops_are_unfinished_work_without_a_live_lease);
fn orphaned_drops_are_unfinished_work_without_a_live_lease(backend: &Backend) {
    let mut a = backend.agent("a", BRIEF);
    let mut b = backend.agent("b", LONG);
    let dead = claimed_new(a.claim(&new_job(1, "main", "dead.mp4"), false).unwrap());
    claimed_new(b.claim(&new_job(2, "main", "live.mp4"), false).unwrap());
    // One target of a drop expired, the other held: somebody works on that drop.
    let half = claimed_new(a.claim(&new_job(3, "main", "half.mp4"), false).unwrap());
    claimed_new(b.claim(&new_job(3, "alt", "half.mp4"), false).unwrap());
    // Finished work is nobody's business.
    let done = claimed_new(a.claim(&new_job(4, "main", "done.mp4"), false).unwrap());
    a.mark_published(done.id, &post("4")).unwrap();
    a.mark_done(done.id, Path::new("done/done.mp4")).unwrap();
    // A published job not yet archived, its lease released, is unfinished.
    let posted = claimed_new(b.claim(&new_job(5, "main", "posted.mp4"), false).unwrap());
    b.mark_published(posted.id, &post("5")).unwrap();
    b.release(&[posted.id]).unwrap();
    outlive(&a, dead.id);
    outlive(&a, half.id);
    assert_eq!(
        b.orphaned_drops().unwrap(),
        vec![PathBuf::from("dead.mp4"), PathBuf::from("posted.mp4")]
    );
    // Taken over, it is no orphan any more.
    assert!(matches!(
        b.claim(&new_job(1, "main", "dead.mp4"), false).unwrap(),
        Claim::Resume(_)
    ));
    assert_eq!(
        b.orphaned_drops().unwrap(),
        vec![PathBuf::from("posted.mp4")]
    );
}

both!(the_publish_mark_names_its_agent_until_a_requeue);
fn the_publish_mark_names_its_agent_until_a_requeue(backend: &Backend) {
    let mut a = backend.agent("a", BRIEF);
    let mut b = backend.agent("b", LONG);
    let clip = new_job(1, "main", "clip.mp4");
    let job = claimed_new(a.claim(&clip, false).unwrap());
    a.mark_publish_sent(job.id).unwrap();
    assert_eq!(
        a.job(job.id).unwrap().unwrap().publish_sent_by.as_deref(),
        Some("a")
    );
    outlive(&a, job.id);
    let Claim::Resume(r) = b.claim(&clip, false).unwrap() else {
        panic!("taken over");
    };
    assert_eq!(
        r.publish_sent_by.as_deref(),
        Some("a"),
        "a takeover keeps who sent"
    );
    assert!(r.publish_in_doubt());
    b.mark_unconfirmed(job.id, "not in the post list").unwrap();
    assert_eq!(
        lease(&b, job.id).holder,
        None,
        "an unconfirmed job is released"
    );
    b.requeue(job.id).unwrap();
    let requeued = b.job(job.id).unwrap().unwrap();
    assert_eq!(requeued.state, JobState::Active);
    assert_eq!(requeued.publish_sent_by, None);
    assert!(requeued.publish_sent_at.is_some(), "the mark itself stays");
}

both!(planning_an_archive_takes_every_targets_lease_or_none);
fn planning_an_archive_takes_every_targets_lease_or_none(backend: &Backend) {
    let mut a = backend.agent("a", LONG);
    let mut b = backend.agent("b", LONG);
    let main = claimed_new(a.claim(&new_job(1, "main", "clip.mp4"), false).unwrap());
    let alt = claimed_new(b.claim(&new_job(1, "alt", "clip.mp4"), false).unwrap());
    a.mark_published(main.id, &post("1")).unwrap();
    b.mark_failed(alt.id, None, "rejected", "no").unwrap();
    let err = a
        .set_archive_plan_for(&[main.id, alt.id], &a_plan(0))
        .unwrap_err();
    assert!(matches!(err, LedgerError::LeaseHeld { .. }), "{err}");
    assert_eq!(a.archive_plan(main.id).unwrap(), None, "all or nothing");
    assert_eq!(lease(&a, alt.id).fence, 1);
    b.release(&[alt.id]).unwrap();
    a.set_archive_plan_for(&[main.id, alt.id], &a_plan(0))
        .unwrap();
    assert_eq!(lease(&a, alt.id).holder.as_deref(), Some("a"));
    assert_eq!(lease(&a, alt.id).fence, 2);
    // Only the planner finishes it.
    assert!(matches!(
        b.record_archived(alt.id, Path::new("failed/clip.mp4")),
        Err(LedgerError::LeaseHeld { .. })
    ));
    a.mark_archived(main.id, Path::new("done/clip.mp4"))
        .unwrap();
    a.mark_archived(alt.id, Path::new("done/clip.mp4")).unwrap();
    assert!(a.held_jobs().is_empty(), "archived jobs are released");
    assert_eq!(lease(&a, alt.id).holder, None);
}

// Pins a defect found in review: after its first refused write, a handle forgot the job
// was lost, and once the other agent's lease lapsed its next write took the job back.
both!(a_lost_job_stays_refused_until_it_is_claimed_again);
fn a_lost_job_stays_refused_until_it_is_claimed_again(backend: &Backend) {
    let mut a = backend.agent("a", BRIEF);
    let mut b = backend.agent("b", BRIEF);
    let job = claimed_new(a.claim(&new_job(1, "main", "clip.mp4"), false).unwrap());
    outlive(&a, job.id);
    assert!(matches!(
        b.claim(&new_job(1, "main", "clip.mp4"), false).unwrap(),
        Claim::Resume(_)
    ));
    let lost = |e: &LedgerError| matches!(e, LedgerError::LeaseLost { .. });
    assert!(lost(&a.mark_publish_sent(job.id).unwrap_err()));
    // b's lease lapses: still not a's to write, however many times it tries.
    outlive(&b, job.id);
    for _ in 0..2 {
        assert!(lost(&a.mark_publish_sent(job.id).unwrap_err()));
    }
    assert_eq!(lease(&a, job.id).holder.as_deref(), Some("b"));
    // Claimed again (the drop handled anew), it is a's once more, under a new fence.
    assert!(matches!(
        a.claim(&new_job(1, "main", "clip.mp4"), false).unwrap(),
        Claim::Resume(_)
    ));
    a.mark_publish_sent(job.id).unwrap();
    assert_eq!(lease(&a, job.id).fence, 3);
}

// Defect: a renewal that found the job taken over forgot its fence, so the stale task's
// next write, once the new holder had let the lease go, silently took a new lease.
both!(a_job_lost_at_renewal_refuses_the_stale_writers_next_write);
fn a_job_lost_at_renewal_refuses_the_stale_writers_next_write(backend: &Backend) {
    let mut a1 = backend.agent("a1", BRIEF);
    let mut a2 = backend.agent("a2", LONG);
    let job = claimed_new(a1.claim(&new_job(1, "main", "clip.mp4"), false).unwrap());
    outlive(&a1, job.id);
    assert!(matches!(
        a2.claim(&new_job(1, "main", "clip.mp4"), false),
        Ok(Claim::Resume(_))
    ));
    assert_eq!(a1.renew_leases().unwrap(), vec![job.id]);
    a2.release(&[job.id]).unwrap();

    let refused = a1.record_step(job.id, &st("upload"), &json!({}), false);
    assert!(
        matches!(refused, Err(LedgerError::LeaseLost { .. })),
        "{refused:?}"
    );
    assert_eq!(a1.lost_to(job.id).unwrap().as_deref(), Some("none"));
    assert_eq!(
        lease(&a2, job.id).fence,
        2,
        "the stale writer took no lease"
    );
}

both!(a_drop_given_up_or_claimed_again_is_no_longer_lost);
fn a_drop_given_up_or_claimed_again_is_no_longer_lost(backend: &Backend) {
    let mut a1 = backend.agent("a1", BRIEF);
    let mut a2 = backend.agent("a2", LONG);
    let job = claimed_new(a1.claim(&new_job(1, "main", "clip.mp4"), false).unwrap());
    outlive(&a1, job.id);
    assert!(matches!(
        a2.claim(&new_job(1, "main", "clip.mp4"), false),
        Ok(Claim::Resume(_))
    ));
    a1.renew_leases().unwrap();
    assert_eq!(a1.lost_to(job.id).unwrap().as_deref(), Some("a2"));
    a1.release_drop(&job.video).unwrap();
    assert_eq!(a1.lost_to(job.id).unwrap(), None);

    a2.release(&[job.id]).unwrap();
    a1.renew_leases().unwrap();
    assert!(matches!(
        a1.claim(&new_job(1, "main", "clip.mp4"), false),
        Ok(Claim::Resume(_))
    ));
    a1.record_step(job.id, &st("upload"), &json!({}), false)
        .expect("a claimed job is written");
}
