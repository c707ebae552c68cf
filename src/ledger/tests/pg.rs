//! PostgreSQL's own versions of the tests that look under SQLite: the schema version in
//! `dropcast_schema`, the unique indexes against raw SQL, the CHECK on archive plans, the
//! session settings, and the URL's password kept out of messages.

use super::*;

fn schema_version(ledger: &Ledger) -> i64 {
    ledger
        .db
        .value("SELECT max(version) FROM dropcast_schema", p![])
        .unwrap()
}

fn set_schema_version(ledger: &Ledger, version: i64) {
    ledger
        .raw("UPDATE dropcast_schema SET version = ?1", p![version])
        .unwrap();
}

#[test]
fn a_newer_schema_is_refused() {
    let Some(Backend::Postgres(url)) = Backend::postgres("newer_schema") else {
        return;
    };
    let ledger = Ledger::open_postgres(&url, Upgrade::Refuse).unwrap();
    assert_eq!(schema_version(&ledger), SCHEMA_VERSION);
    set_schema_version(&ledger, SCHEMA_VERSION + 1);
    for upgrade in [Upgrade::Refuse, Upgrade::Migrate] {
        let err = Ledger::open_postgres(&url, upgrade).unwrap_err();
        assert!(
            matches!(err, LedgerError::NewerSchema { found, .. } if found == SCHEMA_VERSION + 1),
            "{err}"
        );
    }
    assert_eq!(
        schema_version(&ledger),
        SCHEMA_VERSION + 1,
        "left as it was"
    );
}

#[test]
fn an_older_schema_is_refused_unless_migrating() {
    let Some(Backend::Postgres(url)) = Backend::postgres("older_schema") else {
        return;
    };
    let mut ledger = Ledger::open_postgres(&url, Upgrade::Refuse).unwrap();
    let job = claimed_new(ledger.claim(&new_job(1, "main", "a.mp4"), false).unwrap());
    set_schema_version(&ledger, SCHEMA_VERSION - 1);
    let err = Ledger::open_postgres(&url, Upgrade::Refuse).unwrap_err();
    assert!(
        matches!(err, LedgerError::OlderSchema { found, supported }
            if found == SCHEMA_VERSION - 1 && supported == SCHEMA_VERSION),
        "{err}"
    );
    assert!(err.to_string().contains("dropcast ledger migrate"), "{err}");
    assert_eq!(
        schema_version(&ledger),
        SCHEMA_VERSION - 1,
        "nothing upgraded"
    );

    let migrated = Ledger::open_postgres(&url, Upgrade::Migrate).unwrap();
    assert_eq!(schema_version(&migrated), SCHEMA_VERSION);
    assert_eq!(migrated.job(job.id).unwrap().unwrap().video, job.video);
    drop(Ledger::open_postgres(&url, Upgrade::Refuse).unwrap());
}

#[test]
fn the_unique_indexes_refuse_a_second_live_job_or_post_even_via_raw_sql() {
    let Some(backend) = Backend::postgres("unique_raw") else {
        return;
    };
    let mut ledger = backend.open();
    let a = claimed_new(
        ledger
            .claim(&new_job(1, "main", "clip.mp4"), false)
            .unwrap(),
    );
    let insert = |ledger: &Ledger, state: &str, post_id: Option<&str>| {
        ledger.raw(
            "INSERT INTO jobs (sha256, account, state, video, size, post_id, created_at, \
             updated_at) VALUES (?1, 'main', ?2, ?3, 1, ?4, 0, 0)",
            p![hash(1).as_str(), state, b"other".to_vec(), post_id],
        )
    };
    for state in ["active", "published", "done", "unconfirmed"] {
        let err = insert(&ledger, state, None).expect_err(state);
        assert!(matches!(err, LedgerError::LiveJobExists), "{state}: {err}");
    }
    for state in ["failed", "duplicate", "abandoned"] {
        insert(&ledger, state, None).expect(state);
    }
    // Turning a failed row live behind the ledger's back is refused too.
    let err = ledger
        .raw(
            "UPDATE jobs SET state = 'active' WHERE state = 'failed'",
            p![],
        )
        .expect_err("update");
    assert!(matches!(err, LedgerError::LiveJobExists), "{err}");
    // A post belongs to one job, per platform.
    ledger.mark_published(a.id, &post("7001")).unwrap();
    let err = insert(&ledger, "failed", Some("7001")).expect_err("post");
    assert!(matches!(err, LedgerError::PostTaken), "{err}");
    ledger.mark_done(a.id, Path::new("done/clip.mp4")).unwrap();
    insert(&ledger, "active", None).expect_err("a done job is live");
    assert_eq!(
        ledger.job_count().unwrap(),
        4,
        "nothing refused was written"
    );
}

#[test]
fn a_corrupt_plan_is_refused_by_the_check_and_reported_not_skipped() {
    let Some(backend) = Backend::postgres("corrupt_plan") else {
        return;
    };
    let mut ledger = backend.open();
    let a = claimed_new(ledger.claim(&new_job(1, "main", "a.mp4"), false).unwrap());
    ledger.mark_published(a.id, &post("5")).unwrap();
    let spoil = "UPDATE jobs SET archive_plan = '{oops' WHERE id = ?1";
    assert!(
        ledger.raw(spoil, p![a.id]).is_err(),
        "the CHECK guards the column"
    );
    ledger.set_archive_plan(a.id, &a_plan(0)).unwrap();
    // Damage that got past the check (a hand-edited database, say).
    ledger
        .raw(
            "ALTER TABLE jobs DROP CONSTRAINT jobs_archive_plan_check",
            p![],
        )
        .unwrap();
    ledger.raw(spoil, p![a.id]).unwrap();
    assert!(matches!(
        ledger.pending_archives(),
        Err(LedgerError::Corrupt { .. })
    ));
}

#[test]
fn every_session_lets_go_of_a_frozen_transaction() {
    let Some(backend) = Backend::postgres("session") else {
        return;
    };
    let ledger = backend.open();
    let setting =
        |name: &str| -> String { ledger.db.value(&format!("SHOW {name}"), p![]).unwrap() };
    assert_eq!(setting("idle_in_transaction_session_timeout"), "15s");
    assert_eq!(setting("lock_timeout"), "30s");
    assert_eq!(setting("application_name"), "dropcast");
}

#[test]
fn the_password_in_the_url_is_never_in_a_path_or_an_error() {
    let Some(Backend::Postgres(url)) = Backend::postgres("password") else {
        return;
    };
    // The test server trusts every login, so a password is accepted and ignored.
    let with_password = url.replacen("postgres@", "postgres:s3cr3t-pw@", 1);
    assert_ne!(with_password, url);
    let ledger = Ledger::open_postgres(&with_password, Upgrade::Refuse).unwrap();
    let shown = ledger.path().display().to_string();
    assert!(shown.starts_with("postgresql://127.0.0.1:"), "{shown}");
    assert!(!shown.contains("s3cr3t"), "{shown}");
    assert!(!format!("{ledger:?}").contains("s3cr3t"));
    let missing = format!("{}_missing", with_password);
    let err = Ledger::open_postgres(&missing, Upgrade::Refuse).unwrap_err();
    assert!(!err.to_string().contains("s3cr3t"), "{err}");
    assert!(!format!("{err:?}").contains("s3cr3t"), "{err:?}");
}
