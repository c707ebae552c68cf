//! `dropcast ledger migrate` through the real binary on a SQLite ledger: an older ledger
//! is upgraded and the versions said, a current one is left as it is, no ledger is never
//! created by it, and a ledger of a newer dropcast is refused saying to upgrade dropcast.

mod common;

use common::*;

fn user_version(env: &Env) -> i64 {
    column::<i64>(&env.ledger(), "PRAGMA user_version")[0]
}

fn load_v3_ledger(env: &Env) {
    std::fs::create_dir_all(env.path(".dropcast")).unwrap();
    let sql = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/ledger-v3/ledger.sql"),
    )
    .unwrap();
    env.ledger().execute_batch(&sql).unwrap();
    assert_eq!(user_version(env), 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_older_ledger_is_migrated_and_a_current_one_left_alone() {
    let env = Env::start("").await;
    load_v3_ledger(&env);
    let out = env.run(&["ledger", "migrate"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let now = user_version(&env);
    assert!(now > 3, "migrated to {now}");
    let text = stdout(&out);
    assert!(
        text.contains(&format!("schema {now} (was 3; migrated)")),
        "{text}"
    );
    assert!(text.contains("ledger.sqlite3"), "names the ledger: {text}");
    assert!(text.contains("whenever dropcast opens it"), "{text}");

    let out = env.run(&["ledger", "migrate"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains(&format!("schema {now} (was {now}; nothing to do)")),
        "{}",
        stdout(&out)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_ledger_nothing_is_created() {
    let env = Env::start("").await;
    let out = env.run(&["ledger", "migrate"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("nothing to migrate"),
        "{}",
        stdout(&out)
    );
    assert!(!env.path(".dropcast/ledger.sqlite3").exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_ledger_of_a_newer_dropcast_is_refused_naming_the_fix() {
    let env = Env::start("").await;
    load_v3_ledger(&env);
    env.ledger()
        .pragma_update(None, "user_version", 99)
        .unwrap();
    for args in [&["ledger", "migrate"][..], &["watch", "--once"][..]] {
        let out = env.run(args).await;
        assert!(!out.status.success(), "{args:?} ran on schema 99");
        let err = stderr(&out);
        assert!(err.contains("schema 99"), "{args:?}: {err}");
        assert!(err.contains("upgrade dropcast"), "{args:?}: {err}");
    }
    assert_eq!(user_version(&env), 99, "never downgraded");
}
