//! The ledger's tests: the same suite on SQLite and on PostgreSQL where it is backend-neutral.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;
use crate::test_postgres::TestPostgres;
use proptest::prelude::*;
use serde_json::json;

impl Ledger {
    /// The SQLite connection, for tests that look under the ledger.
    fn sqlite(&self) -> &rusqlite::Connection {
        match &self.db {
            Db::Sqlite(conn) => conn,
            Db::Postgres(_) => panic!("not an SQLite ledger"),
        }
    }

    /// Runs `sql` (`?N` placeholders) on either database, behind the ledger's back.
    fn raw(&self, sql: &str, params: &[db::Value]) -> Result<u64, LedgerError> {
        self.db.execute(sql, params)
    }
}

/// Where one test's ledger lives. Each [`open`](Backend::open) is another handle on it: a
/// restart, or (named with `set_agent`) another agent sharing the ledger.
enum Backend {
    Sqlite(tempfile::TempDir),
    /// The URL of the test's own database on this process's PostgreSQL server.
    Postgres(String),
}

impl Backend {
    fn sqlite() -> Backend {
        Backend::Sqlite(tempfile::tempdir().expect("tempdir"))
    }

    /// An empty database of its own for test `name`; `None` when PostgreSQL is not
    /// installed (each such test says it is skipped, or fails: `crate::test_tools`).
    fn postgres(name: &str) -> Option<Backend> {
        static SERVER: OnceLock<Option<TestPostgres>> = OnceLock::new();
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        if !TestPostgres::installed() {
            return None;
        }
        let server = SERVER.get_or_init(TestPostgres::start).as_ref()?;
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let name: String = name.chars().take(50).collect();
        Some(Backend::Postgres(
            server.create_database(&format!("t{n}_{name}")),
        ))
    }

    fn open(&self) -> Ledger {
        match self {
            Backend::Sqlite(dir) => Ledger::open(dir.path()).expect("open"),
            Backend::Postgres(url) => Ledger::open_postgres(url, Upgrade::Refuse).expect("open"),
        }
    }

    /// Deletes every row of a PostgreSQL ledger (an SQLite one is emptied by a new
    /// `Backend::sqlite()`).
    fn empty(&self) {
        self.open()
            .raw(
                "TRUNCATE jobs, steps, upload_sessions, upload_parts, agents, accounts, notes \
                 RESTART IDENTITY CASCADE",
                p![],
            )
            .expect("truncate");
    }

    /// A handle writing as agent `name` with leases of `ttl`.
    fn agent(&self, name: &str, ttl: Duration) -> Ledger {
        let mut ledger = self.open();
        ledger.set_agent(name, ttl);
        ledger
    }
}

/// `both!(name);` above `fn name(backend: &Backend)` makes the tests `name::sqlite` and
/// `name::postgres`, each on a fresh ledger of its own.
macro_rules! both {
    ($name:ident) => {
        mod $name {
            #[test]
            fn sqlite() {
                super::$name(&super::Backend::sqlite());
            }

            #[test]
            fn postgres() {
                if let Some(backend) = super::Backend::postgres(stringify!($name)) {
                    super::$name(&backend);
                }
            }
        }
    };
}

mod lease;
mod lease_model;
mod outbox;
mod pg;
mod plan;

fn hash(n: u8) -> ContentHash {
    ContentHash::from_digest(&[n; 32])
}

/// A step name.
fn st(name: &str) -> StepName {
    StepName::parse(name).unwrap()
}

/// A Douyin post with id `id`.
fn post(id: &str) -> Post {
    Post::live(id, format!("https://www.douyin.com/video/{id}"))
}

fn new_job(n: u8, account: &str, video: &str) -> NewJob {
    NewJob {
        sha256: hash(n),
        account: account.to_string(),
        platform: Platform::DouyinWeb,
        video: PathBuf::from(video),
        caption: Some(PathBuf::from(video).with_extension("yaml")),
        size: 1234,
    }
}

fn open_temp() -> (tempfile::TempDir, Ledger) {
    let dir = tempfile::tempdir().expect("tempdir");
    let ledger = Ledger::open(&dir.path().join("state")).expect("open");
    (dir, ledger)
}

fn claimed_new(claim: Claim) -> JobRecord {
    match claim {
        Claim::New(job) => job,
        other => panic!("expected New, got {other:?}"),
    }
}

#[test]
fn live_states_sql_matches_is_live() {
    for state in JobState::ALL {
        assert_eq!(
            LIVE_STATES_SQL.contains(&format!("'{}'", state.as_str())),
            state.is_live(),
            "{state}"
        );
        assert_eq!(JobState::parse(state.as_str()), Some(state));
    }
    assert_eq!(JobState::parse("Active"), None);
}

both!(one_plan_for_every_target_of_a_drop_each_finished_by_its_state);
fn one_plan_for_every_target_of_a_drop_each_finished_by_its_state(backend: &Backend) {
    let mut ledger = backend.open();
    let posted = claimed_new(
        ledger
            .claim(&new_job(1, "main", "clip.mp4"), false)
            .unwrap(),
    );
    let failed = claimed_new(ledger.claim(&new_job(1, "alt", "clip.mp4"), false).unwrap());
    ledger.mark_publish_sent(posted.id).unwrap();
    ledger.mark_published(posted.id, &post("7001")).unwrap();
    ledger
        .mark_failed(failed.id, None, "caption", "no privacy")
        .unwrap();

    // A target still running cannot be planned: the plan is all or nothing.
    let running = claimed_new(
        ledger
            .claim(&new_job(1, "third", "clip.mp4"), false)
            .unwrap(),
    );
    let plan = json!({"dest": "done"});
    assert!(
        ledger
            .set_archive_plan_for(&[posted.id, running.id], &plan)
            .is_err()
    );
    assert_eq!(ledger.archive_plan(posted.id).unwrap(), None);

    ledger
        .set_archive_plan_for(&[posted.id, failed.id], &plan)
        .unwrap();
    assert_eq!(ledger.pending_archives().unwrap().len(), 2);
    for id in [posted.id, failed.id] {
        ledger
            .mark_archived(id, Path::new("done/clip.mp4"))
            .unwrap();
    }
    assert_eq!(
        ledger.job(posted.id).unwrap().unwrap().state,
        JobState::Done
    );
    let failed_now = ledger.job(failed.id).unwrap().unwrap();
    assert_eq!(failed_now.state, JobState::Failed);
    assert_eq!(failed_now.archived_to, Some(PathBuf::from("done/clip.mp4")));
    assert!(ledger.pending_archives().unwrap().is_empty());

    // Its drop back in the inbox for another target's retry, a failed target stays
    // failed and forgets its archive (so it is not taken for an unfinished one).
    ledger.reopen_ended(failed.id).unwrap();
    let reopened = ledger.job(failed.id).unwrap().unwrap();
    assert_eq!(reopened.state, JobState::Failed);
    assert_eq!(reopened.archived_to, None);
    assert_eq!(ledger.archive_plan(failed.id).unwrap(), None);
    assert!(ledger.pending_archives().unwrap().is_empty());
    assert!(
        ledger.reopen_ended(posted.id).is_err(),
        "a posted target is never reopened"
    );
}

both!(claim_new_then_resume_same_video);
fn claim_new_then_resume_same_video(backend: &Backend) {
    let mut ledger = backend.open();
    let job = claimed_new(
        ledger
            .claim(&new_job(1, "main", "a/clip.mp4"), false)
            .unwrap(),
    );
    assert_eq!(job.state, JobState::Active);
    assert_eq!(job.size, 1234);
    assert_eq!(job.attempts, 0);
    ledger
        .record_step(job.id, &st("credentials"), &json!({"ak": "x"}), false)
        .unwrap();

    let again = ledger
        .claim(&new_job(1, "main", "a/clip.mp4"), false)
        .unwrap();
    let Claim::Resume(resumed) = again else {
        panic!("expected Resume, got {again:?}");
    };
    assert_eq!(resumed.id, job.id);
    assert_eq!(
        resumed.steps.get(&st("credentials")).unwrap().result,
        json!({"ak": "x"})
    );
    assert_eq!(ledger.jobs_in(&JobState::ALL).unwrap().len(), 1);
}

both!(resume_updates_a_moved_caption);
fn resume_updates_a_moved_caption(backend: &Backend) {
    let mut ledger = backend.open();
    let job = claimed_new(
        ledger
            .claim(&new_job(1, "main", "clip.mp4"), false)
            .unwrap(),
    );
    let mut moved = new_job(1, "main", "clip.mp4");
    moved.caption = Some(PathBuf::from("caption.yaml"));
    let Claim::Resume(resumed) = ledger.claim(&moved, false).unwrap() else {
        panic!("expected Resume");
    };
    assert_eq!(resumed.id, job.id);
    assert_eq!(resumed.caption, Some(PathBuf::from("caption.yaml")));
}

both!(claim_duplicate_of_other_path_and_of_done_job);
fn claim_duplicate_of_other_path_and_of_done_job(backend: &Backend) {
    let mut ledger = backend.open();
    let first = claimed_new(
        ledger
            .claim(&new_job(1, "main", "clip.mp4"), false)
            .unwrap(),
    );

    // In flight under another name.
    let Claim::Duplicate { job, earlier } = ledger
        .claim(&new_job(1, "main", "copy.mp4"), false)
        .unwrap()
    else {
        panic!("expected Duplicate");
    };
    assert_eq!(earlier.id, first.id);
    assert_eq!(job.state, JobState::Duplicate);
    assert_eq!(job.duplicate_of, Some(first.id));
    assert_eq!(job.video, PathBuf::from("copy.mp4"));

    // Published and archived; the same path dropped again is a duplicate too.
    ledger.mark_publish_sent(first.id).unwrap();
    ledger.mark_published(first.id, &post("7001")).unwrap();
    ledger
        .mark_done(first.id, Path::new("done/clip.mp4"))
        .unwrap();
    let Claim::Duplicate { earlier, .. } = ledger
        .claim(&new_job(1, "main", "clip.mp4"), false)
        .unwrap()
    else {
        panic!("expected Duplicate");
    };
    assert_eq!(earlier.post.as_ref().map(|p| p.id.as_str()), Some("7001"));
    assert_eq!(earlier.state, JobState::Done);

    // Other account or other content: not a duplicate.
    claimed_new(ledger.claim(&new_job(1, "alt", "clip.mp4"), false).unwrap());
    claimed_new(
        ledger
            .claim(&new_job(2, "main", "clip.mp4"), false)
            .unwrap(),
    );
}

both!(a_post_awaiting_moderation_gets_its_public_id_later_and_an_inbox_draft_keeps_its_state);
fn a_post_awaiting_moderation_gets_its_public_id_later_and_an_inbox_draft_keeps_its_state(
    backend: &Backend,
) {
    let mut ledger = backend.open();
    let a = claimed_new(ledger.claim(&new_job(1, "main", "a.mp4"), false).unwrap());
    let b = claimed_new(ledger.claim(&new_job(2, "main", "b.mp4"), false).unwrap());
    // A pending post never carries an address; a live one always does.
    let bad = Post {
        url: "https://x".into(),
        ..Post::awaiting_moderation("p")
    };
    assert!(matches!(
        ledger.mark_published(a.id, &bad),
        Err(LedgerError::Invalid(_))
    ));
    let pending = Post::awaiting_moderation("v_pub~1");
    ledger.mark_published(a.id, &pending).unwrap();
    ledger.mark_done(a.id, Path::new("done/a.mp4")).unwrap();
    ledger
        .mark_published(b.id, &Post::in_creator_inbox("v_inbox~2"))
        .unwrap();
    assert_eq!(ledger.job(a.id).unwrap().unwrap().post, Some(pending));
    let waiting = ledger.awaiting_moderation().unwrap();
    assert_eq!(waiting.iter().map(|j| j.id).collect::<Vec<_>>(), vec![a.id]);
    let b_post = ledger.job(b.id).unwrap().unwrap().post.unwrap();
    assert_eq!(b_post.state, PostState::InCreatorInbox);
    // Only a post awaiting moderation takes a public id, and only a live one.
    assert!(ledger.record_public_post(b.id, &post("7")).is_err());
    assert!(
        ledger
            .record_public_post(a.id, &Post::awaiting_moderation("q"))
            .is_err()
    );
    ledger.record_public_post(a.id, &post("7301")).unwrap();
    let a = ledger.job(a.id).unwrap().unwrap();
    assert_eq!(a.post, Some(post("7301")));
    assert_eq!(a.state, JobState::Done);
    assert!(ledger.awaiting_moderation().unwrap().is_empty());
    assert!(ledger.record_public_post(a.id, &post("7302")).is_err());
}

both!(allow_duplicates_creates_a_second_live_job);
fn allow_duplicates_creates_a_second_live_job(backend: &Backend) {
    let mut ledger = backend.open();
    let first = claimed_new(ledger.claim(&new_job(1, "main", "clip.mp4"), true).unwrap());
    ledger.mark_published(first.id, &post("7001")).unwrap();
    ledger
        .mark_done(first.id, Path::new("done/clip.mp4"))
        .unwrap();
    let second = claimed_new(ledger.claim(&new_job(1, "main", "clip.mp4"), true).unwrap());
    let third = claimed_new(
        ledger
            .claim(&new_job(1, "main", "again.mp4"), true)
            .unwrap(),
    );
    assert!(second.id != first.id && third.id != second.id);
    // The same path as an in-flight job still resumes.
    let Claim::Resume(r) = ledger.claim(&new_job(1, "main", "clip.mp4"), true).unwrap() else {
        panic!("expected Resume");
    };
    assert_eq!(r.id, second.id);
    // A post id belongs to one job only.
    assert!(matches!(
        ledger.mark_published(second.id, &post("7001")),
        Err(LedgerError::PostTaken)
    ));
}

both!(failed_abandoned_and_duplicate_jobs_do_not_block);
fn failed_abandoned_and_duplicate_jobs_do_not_block(backend: &Backend) {
    let mut ledger = backend.open();
    let a = claimed_new(
        ledger
            .claim(&new_job(1, "main", "clip.mp4"), false)
            .unwrap(),
    );
    ledger
        .mark_failed(a.id, Some(&st("upload")), "rejected", "bad video")
        .unwrap();
    let failed = ledger.job(a.id).unwrap().unwrap();
    assert_eq!(failed.state, JobState::Failed);
    assert_eq!(
        failed.error,
        Some(JobError {
            step: Some(st("upload")),
            class: "rejected".into(),
            reason: "bad video".into()
        })
    );
    let b = claimed_new(
        ledger
            .claim(&new_job(1, "main", "clip.mp4"), false)
            .unwrap(),
    );
    ledger.mark_abandoned(b.id, "video changed").unwrap();
    let c = claimed_new(
        ledger
            .claim(&new_job(1, "main", "clip.mp4"), false)
            .unwrap(),
    );
    assert!(c.id > b.id);
    // A failed job cannot be requeued while c is live.
    assert!(matches!(
        ledger.requeue(a.id),
        Err(LedgerError::LiveJobExists)
    ));
}

both!(illegal_transitions_are_refused_and_write_nothing);
fn illegal_transitions_are_refused_and_write_nothing(backend: &Backend) {
    let mut ledger = backend.open();
    let a = claimed_new(
        ledger
            .claim(&new_job(1, "main", "clip.mp4"), false)
            .unwrap(),
    );
    ledger.mark_failed(a.id, None, "rejected", "no").unwrap();
    let before = ledger.job(a.id).unwrap();
    for result in [
        ledger.mark_published(a.id, &post("1")),
        ledger.mark_done(a.id, Path::new("x")),
        ledger.mark_failed(a.id, None, "x", "y"),
        ledger.mark_publish_sent(a.id),
        ledger.record_step(a.id, &st("upload"), &json!(null), false),
        ledger.forget_steps(a.id),
        ledger.bump_attempts(a.id).map(drop),
    ] {
        assert!(
            matches!(
                result,
                Err(LedgerError::Illegal {
                    state: JobState::Failed,
                    ..
                })
            ),
            "{result:?}"
        );
    }
    assert_eq!(ledger.job(a.id).unwrap(), before);
    assert!(matches!(
        ledger.mark_done(999, Path::new("x")),
        Err(LedgerError::NoSuchJob(999))
    ));

    // Step 5 in doubt: neither abandoning nor forgetting is allowed; failing an
    // unconfirmed job is not either.
    let b = claimed_new(ledger.claim(&new_job(2, "main", "b.mp4"), false).unwrap());
    ledger.mark_publish_sent(b.id).unwrap();
    assert!(ledger.job(b.id).unwrap().unwrap().publish_in_doubt());
    assert!(matches!(
        ledger.mark_abandoned(b.id, "changed"),
        Err(LedgerError::Illegal { .. })
    ));
    assert!(matches!(
        ledger.forget_steps(b.id),
        Err(LedgerError::Illegal { .. })
    ));
    ledger
        .mark_unconfirmed(b.id, "timeout, list empty")
        .unwrap();
    assert!(matches!(
        ledger.mark_failed(b.id, None, "x", "y"),
        Err(LedgerError::Illegal {
            state: JobState::Unconfirmed,
            ..
        })
    ));
    // Reconciliation finds the post later.
    ledger.mark_published(b.id, &post("7002")).unwrap();
    let b = ledger.job(b.id).unwrap().unwrap();
    assert_eq!(b.state, JobState::Published);
    assert_eq!(b.error, None);
}

both!(steps_attempts_forget_and_history);
fn steps_attempts_forget_and_history(backend: &Backend) {
    let mut ledger = backend.open();
    let a = claimed_new(
        ledger
            .claim(&new_job(1, "main", "clip.mp4"), false)
            .unwrap(),
    );
    for step in ["credentials", "upload_params", "upload"] {
        ledger
            .record_step(a.id, &st(step), &json!({"step": step}), false)
            .unwrap();
    }
    assert_eq!(ledger.bump_attempts(a.id).unwrap(), 1);
    assert_eq!(ledger.bump_attempts(a.id).unwrap(), 2);
    ledger.forget_steps(a.id).unwrap();
    let job = ledger.job(a.id).unwrap().unwrap();
    assert!(job.steps.is_empty(), "{:?}", job.steps);
    assert_eq!(job.attempts, 2);

    ledger
        .record_step(a.id, &st("commit"), &json!({"vid": "v1"}), true)
        .unwrap();
    ledger.mark_publish_sent(a.id).unwrap();
    // The publish step's result comes with mark_published only.
    assert!(matches!(
        ledger.record_step(a.id, &StepName::PUBLISH, &json!({}), false),
        Err(LedgerError::Invalid(_))
    ));
    ledger.mark_published(a.id, &post("1")).unwrap();
    assert!(matches!(
        ledger.mark_publish_sent(a.id),
        Err(LedgerError::Illegal { .. })
    ));

    let b = claimed_new(ledger.claim(&new_job(2, "main", "b.mp4"), false).unwrap());
    ledger.mark_published(b.id, &post("2")).unwrap();
    ledger.mark_done(b.id, Path::new("done/b.mp4")).unwrap();
    claimed_new(ledger.claim(&new_job(3, "main", "c.mp4"), false).unwrap());

    let history = ledger.history(10).unwrap();
    assert_eq!(
        history.iter().map(|j| j.id).collect::<Vec<_>>(),
        vec![b.id, a.id]
    );
    assert_eq!(ledger.history(1).unwrap().len(), 1);
    assert_eq!(ledger.jobs_in(&[JobState::Active]).unwrap().len(), 1);
    assert_eq!(ledger.jobs_in(&[]).unwrap().len(), 0);
    assert_eq!(ledger.jobs_with_hash(&hash(2)).unwrap()[0].id, b.id);
}

// The dead-end `retry` of a TikTok job whose publish_id FAILED: forget_steps refused
// after the publish mark, so the job polled the dead publish_id forever.
both!(a_void_upload_forgets_steps_session_and_the_publish_mark_of_an_active_job_only);
fn a_void_upload_forgets_steps_session_and_the_publish_mark_of_an_active_job_only(
    backend: &Backend,
) {
    let mut ledger = backend.open();
    let a = claimed_new(
        ledger
            .claim(&new_job(1, "main", "clip.mp4"), false)
            .unwrap(),
    );
    ledger
        .save_upload_session(a.id, &json!({"url": "u"}))
        .unwrap();
    ledger
        .record_step(a.id, &st("upload"), &json!({"id": "p1"}), true)
        .unwrap();
    ledger.mark_publish_sent(a.id).unwrap();
    assert!(ledger.forget_steps(a.id).is_err(), "the fence holds");
    ledger.void_upload(a.id).unwrap();
    let job = ledger.job(a.id).unwrap().unwrap();
    assert!(job.steps.is_empty(), "{:?}", job.steps);
    assert_eq!(job.publish_sent_at, None);
    assert!(!job.publish_in_doubt());
    assert_eq!(ledger.upload_session(a.id).unwrap(), None);

    // Never for a job that is not active, nor once step 5 posted.
    ledger.mark_failed(a.id, None, "rejected", "no").unwrap();
    assert!(matches!(
        ledger.void_upload(a.id),
        Err(LedgerError::Illegal { .. })
    ));
    let b = claimed_new(ledger.claim(&new_job(2, "main", "b.mp4"), false).unwrap());
    ledger.mark_publish_sent(b.id).unwrap();
    ledger.mark_posted_without_id(b.id).unwrap();
    assert!(matches!(
        ledger.void_upload(b.id),
        Err(LedgerError::Illegal { .. })
    ));
    assert!(ledger.job(b.id).unwrap().unwrap().posted_without_id());
}

both!(reopen_after_drop_keeps_everything);
fn reopen_after_drop_keeps_everything(backend: &Backend) {
    let (id, before) = {
        let mut ledger = backend.open();
        let a = claimed_new(
            ledger
                .claim(&new_job(1, "main", "clip.mp4"), false)
                .unwrap(),
        );
        ledger
            .record_step(a.id, &st("upload_params"), &json!({"vid": "v9"}), false)
            .unwrap();
        ledger.bump_attempts(a.id).unwrap();
        ledger.mark_publish_sent(a.id).unwrap();
        (a.id, ledger.job(a.id).unwrap().unwrap())
    };
    let mut ledger = backend.open();
    let after = ledger.job(id).unwrap().unwrap();
    assert_eq!(after, before);
    assert!(after.publish_in_doubt());
    assert_eq!(
        after.steps.get(&st("upload_params")).unwrap().result["vid"],
        "v9"
    );
    // Restart: the same video resumes, carrying the step-5 mark.
    let Claim::Resume(r) = ledger
        .claim(&new_job(1, "main", "clip.mp4"), false)
        .unwrap()
    else {
        panic!("expected Resume");
    };
    assert_eq!(r.id, id);
    assert!(r.publish_sent_at.is_some());
}

#[test]
fn pragmas_are_set_and_file_is_private() {
    let (dir, ledger) = open_temp();
    let mode: String = ledger
        .sqlite()
        .pragma_query_value(None, "journal_mode", |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    let sync: i64 = ledger
        .sqlite()
        .pragma_query_value(None, "synchronous", |r| r.get(0))
        .unwrap();
    assert_eq!(sync, 2, "synchronous=FULL");
    let version: i64 = ledger
        .sqlite()
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(version, SCHEMA_VERSION);
    let busy: i64 = ledger
        .sqlite()
        .pragma_query_value(None, "busy_timeout", |r| r.get(0))
        .unwrap();
    assert!(busy > 0);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("state").join(FILE_NAME))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}

#[test]
fn newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    drop(Ledger::open(dir.path()).unwrap());
    let conn = rusqlite::Connection::open(dir.path().join(FILE_NAME)).unwrap();
    conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
        .unwrap();
    drop(conn);
    assert!(matches!(
        Ledger::open(dir.path()),
        Err(LedgerError::NewerSchema { .. })
    ));
}

#[test]
fn unique_index_refuses_a_second_live_job_even_via_raw_sql() {
    let (_dir, mut ledger) = open_temp();
    let a = claimed_new(
        ledger
            .claim(&new_job(1, "main", "clip.mp4"), false)
            .unwrap(),
    );
    let insert = |ledger: &Ledger, state: &str| {
        ledger.sqlite().execute(
            "INSERT INTO jobs (sha256, account, state, video, size, created_at, updated_at) \
             VALUES (?1, 'main', ?2, x'6f74686572', 1, 0, 0)",
            rusqlite::params![hash(1).as_str(), state],
        )
    };
    for state in ["active", "published", "done", "unconfirmed"] {
        let err = insert(&ledger, state).expect_err(state);
        assert!(matches!(
            sqlite::constraint_error(err),
            LedgerError::LiveJobExists
        ));
    }
    for state in ["failed", "duplicate", "abandoned"] {
        insert(&ledger, state).expect(state);
    }
    // Turning a failed row live behind the ledger's back is refused too.
    let err = ledger
        .sqlite()
        .execute(
            "UPDATE jobs SET state = 'active' WHERE state = 'failed'",
            [],
        )
        .expect_err("update");
    assert!(matches!(
        sqlite::constraint_error(err),
        LedgerError::LiveJobExists
    ));
    ledger.mark_failed(a.id, None, "x", "y").unwrap();
    insert(&ledger, "active").expect("no live job any more");
}

#[cfg(unix)]
both!(non_utf8_paths_round_trip);
#[cfg(unix)]
fn non_utf8_paths_round_trip(backend: &Backend) {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let video = PathBuf::from(OsStr::from_bytes(b"sub/\xff\xfeclip.mp4"));
    let caption = PathBuf::from(OsStr::from_bytes(b"sub/\xff\xfeclip.yaml"));
    let archived = PathBuf::from(OsStr::from_bytes(b"done/sub/\xff\xfeclip-1.mp4"));
    let id = {
        let mut ledger = backend.open();
        let job = NewJob {
            sha256: hash(7),
            account: "main".into(),
            platform: Platform::DouyinWeb,
            video: video.clone(),
            caption: Some(caption.clone()),
            size: 1,
        };
        let a = claimed_new(ledger.claim(&job, false).unwrap());
        ledger.mark_published(a.id, &post("9")).unwrap();
        ledger.mark_done(a.id, &archived).unwrap();
        a.id
    };
    let ledger = backend.open();
    let job = ledger.job(id).unwrap().unwrap();
    assert_eq!(job.video, video);
    assert_eq!(job.caption, Some(caption));
    assert_eq!(job.archived_to, Some(archived));
}

fn a_plan(n: u32) -> serde_json::Value {
    json!({"dest": "done", "moves": [{"from": "/in/a.mp4", "to": format!("/done/a-{n}.mp4")}],
           "receipt": "/done/a.receipt.json", "receipt_json": "{}\n"})
}

fn pending_ids(ledger: &Ledger) -> Vec<JobId> {
    ledger
        .pending_archives()
        .unwrap()
        .into_iter()
        .map(|(job, _)| job.id)
        .collect()
}

both!(archive_plans_are_pending_until_the_archive_is_recorded);
fn archive_plans_are_pending_until_the_archive_is_recorded(backend: &Backend) {
    let mut ledger = backend.open();
    let published = claimed_new(ledger.claim(&new_job(1, "main", "a.mp4"), false).unwrap());
    let failed = claimed_new(ledger.claim(&new_job(2, "main", "b.mp4"), false).unwrap());
    let Claim::Duplicate { job: dup, .. } = ledger
        .claim(&new_job(1, "main", "copy.mp4"), false)
        .unwrap()
    else {
        panic!("expected Duplicate");
    };
    let active = claimed_new(ledger.claim(&new_job(3, "main", "c.mp4"), false).unwrap());

    // Not before the job has ended, and not for jobs whose files stay in the inbox.
    let refused = |ledger: &mut Ledger, id| {
        matches!(
            ledger.set_archive_plan(id, &a_plan(0)),
            Err(LedgerError::Illegal {
                action: "plan the archive",
                ..
            })
        )
    };
    assert!(refused(&mut ledger, published.id));
    ledger.mark_published(published.id, &post("11")).unwrap();
    ledger
        .mark_failed(failed.id, Some(&st("upload")), "rejected", "too long")
        .unwrap();
    assert!(matches!(
        ledger.set_archive_plan(published.id, &json!("not an object")),
        Err(LedgerError::Invalid(_))
    ));
    assert!(pending_ids(&ledger).is_empty());

    for id in [published.id, failed.id, dup.id] {
        ledger.set_archive_plan(id, &a_plan(1)).unwrap();
    }
    // Planning again (a name was taken before anything moved) replaces the plan.
    ledger.set_archive_plan(published.id, &a_plan(2)).unwrap();
    let pending = ledger.pending_archives().unwrap();
    assert_eq!(
        pending.iter().map(|(j, _)| j.id).collect::<Vec<_>>(),
        vec![published.id, failed.id, dup.id]
    );
    assert_eq!(pending[0].1, a_plan(2));
    assert_eq!(pending[0].0.state, JobState::Published);
    assert_eq!(ledger.archive_plan(failed.id).unwrap(), Some(a_plan(1)));
    assert_eq!(ledger.archive_plan(active.id).unwrap(), None);
    assert!(matches!(
        ledger.archive_plan(999),
        Err(LedgerError::NoSuchJob(999))
    ));

    // The files of a failed job cannot go back to the queue halfway through a move.
    assert!(matches!(
        ledger.requeue(failed.id),
        Err(LedgerError::Illegal {
            action: "requeue",
            ..
        })
    ));

    ledger
        .mark_done(published.id, Path::new("/done/a-2.mp4"))
        .unwrap();
    ledger
        .record_archived(failed.id, Path::new("/failed/b.mp4"))
        .unwrap();
    assert_eq!(pending_ids(&ledger), vec![dup.id]);
    assert!(refused(&mut ledger, failed.id), "archived already");
    assert!(refused(&mut ledger, published.id), "done");
    ledger
        .record_archived(dup.id, Path::new("/duplicates/copy.mp4"))
        .unwrap();
    assert!(pending_ids(&ledger).is_empty());
    // The finished plan is still on record.
    assert_eq!(ledger.archive_plan(published.id).unwrap(), Some(a_plan(2)));

    // Retrying the failed job starts it over: a later failure plans a new archive.
    ledger.requeue(failed.id).unwrap();
    let again = ledger.job(failed.id).unwrap().unwrap();
    assert_eq!((again.state, again.archived_to), (JobState::Active, None));
    assert_eq!(ledger.archive_plan(failed.id).unwrap(), None);
    ledger
        .mark_failed(failed.id, None, "rejected", "again")
        .unwrap();
    ledger.set_archive_plan(failed.id, &a_plan(3)).unwrap();
    assert_eq!(pending_ids(&ledger), vec![failed.id]);

    // Abandoned and Unconfirmed jobs keep their files in the inbox.
    ledger.mark_abandoned(active.id, "changed").unwrap();
    assert!(refused(&mut ledger, active.id));
    let unsure = claimed_new(ledger.claim(&new_job(4, "main", "d.mp4"), false).unwrap());
    ledger.mark_unconfirmed(unsure.id, "?").unwrap();
    assert!(refused(&mut ledger, unsure.id));
}

both!(pending_archives_survive_a_restart);
fn pending_archives_survive_a_restart(backend: &Backend) {
    let id = {
        let mut ledger = backend.open();
        let a = claimed_new(ledger.claim(&new_job(1, "main", "a.mp4"), false).unwrap());
        ledger.mark_published(a.id, &post("5")).unwrap();
        ledger.set_archive_plan(a.id, &a_plan(0)).unwrap();
        a.id
    };
    let mut ledger = backend.open();
    let pending = ledger.pending_archives().unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!((pending[0].0.id, &pending[0].1), (id, &a_plan(0)));
    ledger.mark_done(id, Path::new("/done/a-0.mp4")).unwrap();
    assert!(ledger.pending_archives().unwrap().is_empty());
}

#[test]
fn a_corrupt_plan_is_reported_not_skipped() {
    let (_dir, mut ledger) = open_temp();
    let a = claimed_new(ledger.claim(&new_job(1, "main", "a.mp4"), false).unwrap());
    ledger.mark_published(a.id, &post("5")).unwrap();
    // json_valid guards the column itself.
    assert!(
        ledger
            .sqlite()
            .execute(
                "UPDATE jobs SET archive_plan = '{oops' WHERE id = ?1",
                [a.id]
            )
            .is_err()
    );
    ledger.set_archive_plan(a.id, &a_plan(0)).unwrap();
    // Damage that got past the check (a hand-edited file, say).
    ledger
        .sqlite()
        .pragma_update(None, "ignore_check_constraints", true)
        .unwrap();
    ledger
        .sqlite()
        .execute(
            "UPDATE jobs SET archive_plan = '{oops' WHERE id = ?1",
            [a.id],
        )
        .unwrap();
    assert!(matches!(
        ledger.pending_archives(),
        Err(LedgerError::Corrupt { .. })
    ));
}

#[test]
fn migration_from_v1_keeps_every_job() {
    let dir = tempfile::tempdir().unwrap();
    {
        let conn = rusqlite::Connection::open(dir.path().join(FILE_NAME)).unwrap();
        let _: String = conn
            .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))
            .unwrap();
        conn.execute_batch(schema::SCHEMA_V1).unwrap();
        conn.pragma_update(None, "user_version", 1).unwrap();
        conn.execute_batch(&format!(
            "INSERT INTO jobs (sha256, account, state, video, caption, size, aweme_id, \
               archived_to, attempts, created_at, updated_at) VALUES \
             ('{h1}', 'main', 'done', CAST('a.mp4' AS BLOB), CAST('a.yaml' AS BLOB), 10, \
               '71', CAST('done/a.mp4' AS BLOB), 1, 1000, 2000), \
             ('{h2}', 'main', 'published', CAST('b.mp4' AS BLOB), NULL, 20, '72', NULL, 0, \
               1000, 3000), \
             ('{h3}', 'alt', 'active', CAST('c.mp4' AS BLOB), NULL, 30, NULL, NULL, 2, \
               1000, 4000); \
             INSERT INTO steps (job_id, step, ordinal, at, result) VALUES \
               (3, 'upload_params', 1, 3500, '{{\"vid\":\"v3\"}}');",
            h1 = hash(1),
            h2 = hash(2),
            h3 = hash(3),
        ))
        .unwrap();
    }
    let mut ledger = Ledger::open(dir.path()).unwrap();
    let version: i64 = ledger
        .sqlite()
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(version, SCHEMA_VERSION);
    let jobs = ledger.jobs_in(&JobState::ALL).unwrap();
    assert_eq!(jobs.len(), 3);
    let done = &jobs[0];
    assert_eq!(done.state, JobState::Done);
    assert_eq!(done.caption, Some(PathBuf::from("a.yaml")));
    assert_eq!(done.archived_to, Some(PathBuf::from("done/a.mp4")));
    assert_eq!(done.post.as_ref().map(|p| p.id.as_str()), Some("71"));
    // Schema 4: every job before it was douyin-web's, and its address is kept.
    assert!(jobs.iter().all(|j| j.platform == Platform::DouyinWeb));
    assert_eq!(
        done.post.as_ref().map(|p| p.url.as_str()),
        Some("https://www.douyin.com/video/71")
    );
    assert_eq!(done.updated_at, from_ms(2000));
    assert_eq!(jobs[1].state, JobState::Published);
    assert_eq!(jobs[2].attempts, 2);
    assert_eq!(
        jobs[2].steps.get(&st("upload_params")).unwrap().result["vid"],
        "v3"
    );
    assert!(ledger.pending_archives().unwrap().is_empty());

    // The old jobs go on under the new schema.
    ledger.set_archive_plan(jobs[1].id, &a_plan(0)).unwrap();
    assert_eq!(pending_ids(&ledger), vec![jobs[1].id]);
    let Claim::Resume(c) = ledger
        .claim(
            &NewJob {
                sha256: hash(3),
                account: "alt".into(),
                platform: Platform::DouyinWeb,
                video: "c.mp4".into(),
                caption: None,
                size: 30,
            },
            false,
        )
        .unwrap()
    else {
        panic!("expected Resume");
    };
    assert_eq!(c.id, jobs[2].id);
    // And the migration is not run twice.
    drop(ledger);
    let ledger = Ledger::open(dir.path()).unwrap();
    assert_eq!(ledger.jobs_in(&JobState::ALL).unwrap().len(), 3);
    assert_eq!(ledger.archive_plan(jobs[1].id).unwrap(), Some(a_plan(0)));
}

#[test]
fn ledger_failpoints_are_listed() {
    let names = [
        "after_commit:claim",
        "after_commit:duplicate",
        "after_commit:publish_sent",
        "after_commit:published",
        "after_commit:archive_plan",
        "after_commit:done",
        "after_commit:archived",
        "after_commit:failed",
        "after_commit:abandoned",
        "after_commit:unconfirmed",
    ];
    let steps =
        ["credentials", "upload_params", "upload", "commit"].map(|s| format!("after_commit:{s}"));
    for name in names.into_iter().chain(steps.iter().map(String::as_str)) {
        assert!(failpoint::NAMES.contains(&name), "{name}");
    }
}

/// Plays one job through to Done in a child process that aborts at a failpoint;
/// only does something when started by `real_crashes_keep_every_commit`.
#[cfg(feature = "failpoints")]
#[test]
#[ignore = "run as a child process by real_crashes_keep_every_commit"]
fn crash_child() {
    let Some(dir) = std::env::var_os("DROPCAST_TEST_STATE") else {
        return;
    };
    let mut ledger = Ledger::open(Path::new(&dir)).unwrap();
    let a = claimed_new(ledger.claim(&new_job(1, "main", "a.mp4"), false).unwrap());
    ledger
        .record_step(a.id, &st("credentials"), &json!({}), false)
        .unwrap();
    ledger.mark_publish_sent(a.id).unwrap();
    ledger.mark_published(a.id, &post("5")).unwrap();
    ledger.set_archive_plan(a.id, &a_plan(0)).unwrap();
    ledger.mark_done(a.id, Path::new("/done/a-0.mp4")).unwrap();
}

#[cfg(feature = "failpoints")]
#[test]
fn real_crashes_keep_every_commit() {
    let points = [
        ("after_commit:claim", JobState::Active, false),
        ("after_commit:credentials", JobState::Active, false),
        ("after_commit:publish_sent", JobState::Active, false),
        ("after_commit:published", JobState::Published, false),
        ("after_commit:archive_plan", JobState::Published, true),
        ("after_commit:done", JobState::Done, false),
    ];
    for (point, state, pending) in points {
        let dir = tempfile::tempdir().unwrap();
        let status = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "ledger::tests::crash_child", "--ignored"])
            .args(["--test-threads=1", "--nocapture"])
            .env("DROPCAST_TEST_STATE", dir.path())
            .env("DROPCAST_FAILPOINT", point)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(!status.success(), "{point}: the child did not crash");
        let ledger = Ledger::open(dir.path()).unwrap();
        let jobs = ledger.jobs_in(&JobState::ALL).unwrap();
        assert_eq!(jobs.len(), 1, "{point}");
        assert_eq!(jobs[0].state, state, "{point}");
        assert_eq!(
            jobs[0].steps.contains(&st("credentials")),
            point != "after_commit:claim",
            "{point}"
        );
        assert_eq!(
            !ledger.pending_archives().unwrap().is_empty(),
            pending,
            "{point}"
        );
    }
}

#[test]
fn times_round_trip_in_millis() {
    for ms in [0, 1, 1_700_000_000_123, -5] {
        assert_eq!(to_ms(from_ms(ms)), ms);
    }
}

#[derive(Clone, Debug)]
enum Op {
    Claim { content: u8, account: u8, path: u8 },
    Step { pick: usize, step: usize },
    Publish { pick: usize },
    SendOnly { pick: usize },
    Unconfirm { pick: usize },
    Fail { pick: usize },
    Abandon { pick: usize },
    Done { pick: usize },
    Requeue { pick: usize },
    Forget { pick: usize },
    Plan { pick: usize },
    Archived { pick: usize },
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..2u8, 0..2u8, 0..3u8)
            .prop_map(|(content, account, path)| Op::Claim { content, account, path }),
        2 => (any::<usize>(), 0..5usize).prop_map(|(pick, step)| Op::Step { pick, step }),
        2 => any::<usize>().prop_map(|pick| Op::Publish { pick }),
        1 => any::<usize>().prop_map(|pick| Op::SendOnly { pick }),
        1 => any::<usize>().prop_map(|pick| Op::Unconfirm { pick }),
        1 => any::<usize>().prop_map(|pick| Op::Fail { pick }),
        1 => any::<usize>().prop_map(|pick| Op::Abandon { pick }),
        1 => any::<usize>().prop_map(|pick| Op::Done { pick }),
        1 => any::<usize>().prop_map(|pick| Op::Requeue { pick }),
        1 => any::<usize>().prop_map(|pick| Op::Forget { pick }),
        2 => any::<usize>().prop_map(|pick| Op::Plan { pick }),
        1 => any::<usize>().prop_map(|pick| Op::Archived { pick }),
        1 => Just(Op::Reopen),
    ]
}

/// Errors a random sequence may legitimately provoke; anything else is a bug.
fn expected(result: Result<(), LedgerError>) -> Result<(), TestCaseError> {
    match result {
        Ok(())
        | Err(LedgerError::Illegal { .. })
        | Err(LedgerError::LiveJobExists)
        | Err(LedgerError::PostTaken) => Ok(()),
        Err(e) => Err(TestCaseError::fail(format!("unexpected error: {e}"))),
    }
}

fn check_invariants(ledger: &Ledger) -> Result<(), TestCaseError> {
    let jobs = ledger
        .jobs_in(&JobState::ALL)
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    let mut live = std::collections::HashMap::new();
    let mut posts = std::collections::HashMap::new();
    for job in &jobs {
        let key = (job.sha256.clone(), job.account.clone());
        if job.state.is_live() {
            *live.entry(key.clone()).or_insert(0) += 1;
        }
        if job.post.is_some() {
            prop_assert!(
                matches!(job.state, JobState::Published | JobState::Done),
                "a post on a job in state {}",
                job.state
            );
            *posts.entry(key).or_insert(0) += 1;
        }
        if job.state == JobState::Duplicate {
            prop_assert!(job.duplicate_of.is_some());
        }
    }
    prop_assert!(live.values().all(|n| *n <= 1), "two live jobs: {live:?}");
    let pending = ledger
        .pending_archives()
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    for (job, _) in &pending {
        prop_assert!(
            matches!(
                job.state,
                JobState::Published | JobState::Failed | JobState::Duplicate
            ) && (job.state == JobState::Published || job.archived_to.is_none()),
            "job {} in state {} listed as a pending archive",
            job.id,
            job.state
        );
    }
    prop_assert!(posts.values().all(|n| *n <= 1), "two posts: {posts:?}");
    Ok(())
}

/// Plays `ops` on one agent's ledger at `backend` (empty), checking the invariants after
/// each.
fn run_ops(backend: &Backend, ops: Vec<Op>) -> Result<(), TestCaseError> {
    let mut ledger = backend.open();
    let mut next_post = 0u32;
    for op in ops {
        let ids: Vec<JobId> = ledger
            .jobs_in(&JobState::ALL)
            .unwrap()
            .iter()
            .map(|j| j.id)
            .collect();
        if ids.is_empty() && !matches!(op, Op::Claim { .. } | Op::Reopen) {
            continue;
        }
        let pick = |p: usize| ids[p % ids.len()];
        match op {
            Op::Claim {
                content,
                account,
                path,
            } => {
                let job = NewJob {
                    sha256: hash(content),
                    account: format!("acct{account}"),
                    platform: Platform::DouyinWeb,
                    video: PathBuf::from(format!("v{path}.mp4")),
                    caption: None,
                    size: 10,
                };
                let live_before = ledger
                    .jobs_in(&JobState::ALL)
                    .unwrap()
                    .into_iter()
                    .any(|j| {
                        j.state.is_live() && j.sha256 == job.sha256 && j.account == job.account
                    });
                let claim = ledger.claim(&job, false).unwrap();
                match &claim {
                    Claim::New(j) => prop_assert!(!live_before && j.state == JobState::Active),
                    Claim::Resume(j) => prop_assert!(live_before && j.video == job.video),
                    Claim::Duplicate { job: j, earlier } => {
                        prop_assert!(live_before && earlier.state.is_live());
                        prop_assert_eq!(j.duplicate_of, Some(earlier.id));
                    }
                    Claim::Held { .. } => prop_assert!(false, "one agent never finds a job held"),
                }
            }
            Op::Step { pick: p, step } => {
                let name = st(["credentials", "upload_params", "upload", "commit"][step % 4]);
                expected(ledger.record_step(pick(p), &name, &json!({"n": step}), step % 4 == 3))?;
            }
            Op::Publish { pick: p } => {
                let id = pick(p);
                if ledger.mark_publish_sent(id).is_ok() {
                    next_post += 1;
                    expected(ledger.mark_published(id, &post(&next_post.to_string())))?;
                }
            }
            Op::SendOnly { pick: p } => expected(ledger.mark_publish_sent(pick(p)))?,
            Op::Unconfirm { pick: p } => expected(ledger.mark_unconfirmed(pick(p), "?"))?,
            Op::Fail { pick: p } => expected(ledger.mark_failed(pick(p), None, "rejected", "no"))?,
            Op::Abandon { pick: p } => expected(ledger.mark_abandoned(pick(p), "changed"))?,
            Op::Done { pick: p } => expected(ledger.mark_done(pick(p), Path::new("done/x.mp4")))?,
            Op::Requeue { pick: p } => expected(ledger.requeue(pick(p)))?,
            Op::Forget { pick: p } => expected(ledger.forget_steps(pick(p)))?,
            Op::Plan { pick: p } => {
                expected(ledger.set_archive_plan(pick(p), &json!({"n": p % 7})))?;
            }
            Op::Archived { pick: p } => {
                expected(ledger.record_archived(pick(p), Path::new("failed/x.mp4")))?;
            }
            Op::Reopen => {
                drop(ledger);
                ledger = backend.open();
            }
        }
        check_invariants(&ledger)?;
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]
    #[test]
    fn random_sequences_never_give_two_live_jobs_or_two_posts(ops in prop::collection::vec(op(), 1..40)) {
        run_ops(&Backend::sqlite(), ops)?;
    }
}

/// [`run_ops`] on PostgreSQL: one database, emptied before each case.
#[test]
fn random_sequences_never_give_two_live_jobs_or_two_posts_on_postgres() {
    let Some(backend) = Backend::postgres("ops") else {
        return;
    };
    run_cases(16, prop::collection::vec(op(), 1..40), |ops| {
        backend.empty();
        run_ops(&backend, ops)
    });
}

/// Runs `test` on `cases` values of `strategy` (and shrinks a failure), as `proptest!` does.
fn run_cases<S: Strategy>(
    cases: u32,
    strategy: S,
    test: impl Fn(S::Value) -> Result<(), TestCaseError>,
) {
    let config = ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    let mut runner = proptest::test_runner::TestRunner::new(config);
    if let Err(e) = runner.run(&strategy, test) {
        panic!("{e}");
    }
}

both!(multipart_session_and_parts_survive_a_restart_and_reset_with_the_upload);
fn multipart_session_and_parts_survive_a_restart_and_reset_with_the_upload(backend: &Backend) {
    let mut l = backend.open();
    let job = match l.claim(&new_job(1, "main", "a.mp4"), false).unwrap() {
        Claim::New(j) => j,
        other => panic!("{other:?}"),
    };
    assert!(
        l.record_part(
            job.id,
            PartRecord {
                number: 1,
                size: 5,
                crc32: 7
            }
        )
        .is_err(),
        "no session yet"
    );
    l.save_upload_session(job.id, &serde_json::json!({"upload_id": "u1"}))
        .unwrap();
    l.record_part(
        job.id,
        PartRecord {
            number: 2,
            size: 5,
            crc32: 9,
        },
    )
    .unwrap();
    l.record_part(
        job.id,
        PartRecord {
            number: 1,
            size: 5,
            crc32: 7,
        },
    )
    .unwrap();
    l.set_publish_at(job.id, Some(1_800_000_000)).unwrap();
    drop(l);
    let mut l = backend.open();
    assert_eq!(
        l.upload_session(job.id).unwrap().unwrap()["upload_id"],
        "u1"
    );
    let parts = l.parts(job.id).unwrap();
    assert_eq!(
        parts.iter().map(|p| p.number).collect::<Vec<_>>(),
        vec![1, 2]
    );
    assert_eq!(
        l.job(job.id).unwrap().unwrap().publish_at,
        Some(1_800_000_000)
    );
    // A new session voids the old parts; forgetting the upload voids both.
    l.save_upload_session(job.id, &serde_json::json!({"upload_id": "u2"}))
        .unwrap();
    assert!(l.parts(job.id).unwrap().is_empty());
    l.record_part(
        job.id,
        PartRecord {
            number: 1,
            size: 5,
            crc32: 7,
        },
    )
    .unwrap();
    l.forget_steps(job.id).unwrap();
    assert!(l.upload_session(job.id).unwrap().is_none());
    assert!(l.parts(job.id).unwrap().is_empty());
}

// Regression (issue 9 item 4): writes went on into a deleted ledger file.
#[test]
fn a_deleted_replaced_or_emptied_file_refuses_every_write() {
    for (what, spoil) in [
        ("was deleted", 0),
        ("was replaced by another file", 1),
        ("was emptied (0 bytes)", 2),
    ] {
        let (dir, mut ledger) = open_temp();
        let path = ledger.path().to_path_buf();
        ledger.check_file().unwrap();
        match spoil {
            0 => std::fs::remove_file(&path).unwrap(),
            1 => {
                let other = dir.path().join("other");
                std::fs::write(&other, b"x").unwrap();
                std::fs::rename(&other, &path).unwrap();
            }
            _ => std::fs::File::create(&path).unwrap().set_len(0).unwrap(),
        }
        let err = ledger
            .claim(&new_job(1, "main", "clip.mp4"), false)
            .unwrap_err();
        assert!(
            matches!(&err, LedgerError::Lost { what: w, .. } if *w == what),
            "{err}"
        );
        assert!(err.to_string().contains("dropcast ledger rebuild"), "{err}");
    }
}

both!(a_restored_post_makes_its_content_a_duplicate_and_is_restored_once);
fn a_restored_post_makes_its_content_a_duplicate_and_is_restored_once(backend: &Backend) {
    let mut ledger = backend.open();
    assert_eq!(ledger.job_count().unwrap(), 0);
    assert!(!ledger.fresh_start_accepted().unwrap());
    let post = RestoredPost {
        sha256: hash(1),
        account: "main".into(),
        video: "a/clip.mp4".into(),
        size: 5,
        platform: Platform::DouyinWeb,
        post: post("7001"),
        archived_to: None,
        published_at: UNIX_EPOCH + Duration::from_secs(1_700_000_000),
    };
    let Restore::Restored(id) = ledger.restore_done(&post).unwrap() else {
        panic!("restored");
    };
    assert_eq!(ledger.restore_done(&post).unwrap(), Restore::Known(id));
    let job = ledger.job(id).unwrap().unwrap();
    assert_eq!(job.state, JobState::Done);
    assert_eq!(job.post.as_ref().map(|p| p.id.as_str()), Some("7001"));
    let again = ledger
        .claim(&new_job(1, "main", "b/copy.mp4"), false)
        .unwrap();
    assert!(
        matches!(&again, Claim::Duplicate { earlier, .. } if earlier.id == id),
        "{again:?}"
    );
    ledger.accept_fresh_start().unwrap();
    assert!(ledger.fresh_start_accepted().unwrap());
}
