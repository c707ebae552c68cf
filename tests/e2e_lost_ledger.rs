//! A lost ledger (issue 9 item 4), through the real binary: deleted under a running agent
//! it stops the agent; missing or emptied at a start while receipts exist it blocks
//! publishing until `dropcast ledger rebuild` (dedupe restored) or `--new-ledger`.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::*;
use serde_json::Value;

const LIMIT: Duration = Duration::from_secs(90);

fn copy_example(env: &Env, stem: &str) {
    env.drop_media("clip.mp4", format!("{stem}.mp4"));
    env.drop_media("clip.yaml", format!("{stem}.yaml"));
}

fn ledger(env: &Env) -> PathBuf {
    env.path(".dropcast/ledger.sqlite3")
}

/// Publishes the example clip as `first.mp4` with `watch --once`.
async fn publish_first(env: &Env) -> Value {
    copy_example(env, "first");
    let out = env.watch_once().await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(env.posts().await.len(), 1);
    read_json(&env.path("done/first.receipt.json"))
}

// Regression (issue 9 item 4): a ledger deleted while the agent ran went unnoticed (writes went to the unlinked file) and its videos were posted again.
#[tokio::test(flavor = "multi_thread")]
async fn a_ledger_deleted_under_a_running_agent_stops_it_and_nothing_more_is_posted() {
    let env = Env::start("").await;
    let mut agent = env.spawn_watch();
    agent.wait_for_log("watching").await;
    copy_example(&env, "first");
    agent
        .wait_for_file(env.path("done/first.receipt.json"), LIMIT.as_secs())
        .await;

    std::fs::remove_file(ledger(&env)).unwrap();
    // The same video again, and another one: neither may be posted.
    copy_example(&env, "again");
    env.write_inbox("other.mp4", clip_variant(1));
    env.drop_media("clip.yaml", "other.yaml");

    let child = &mut agent.child;
    let stopped = wait_until(LIMIT, || child.try_wait().unwrap().is_some()).await;
    assert!(
        stopped.is_ok(),
        "the agent kept running:\n{}",
        agent.log_text()
    );
    let status = agent.child.wait().unwrap();
    assert!(!status.success(), "exit {status:?}");
    let log = agent.log_text();
    assert!(
        log.contains("was deleted while dropcast was using it"),
        "{log}"
    );
    assert!(log.contains("dropcast ledger rebuild"), "{log}");
    assert_eq!(env.posts().await.len(), 1, "{log}");
    assert!(env.inbox().join("again.mp4").exists());
    assert!(env.inbox().join("other.mp4").exists());
}

// Regression (issue 9 item 4): an emptied (0-byte) ledger was accepted as new, so a video published before was posted again.
#[tokio::test(flavor = "multi_thread")]
async fn an_emptied_ledger_blocks_publishing_until_rebuilt_and_the_rebuild_restores_dedupe() {
    let env = Env::start("").await;
    let first = publish_first(&env).await;
    std::fs::File::create(ledger(&env)).unwrap(); // 0 bytes
    std::fs::write(env.path("done/junk.receipt.json"), "not json").unwrap();
    copy_example(&env, "again");

    let out = env.watch_once().await;
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("dropcast ledger rebuild"), "{err}");
    assert!(err.contains("--new-ledger"), "{err}");
    assert!(env.inbox().join("again.mp4").exists());
    let out = env.run(&["publish", "inbox/again.mp4"]).await;
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert_eq!(env.posts().await.len(), 1);

    let out = env.run(&["ledger", "rebuild"]).await;
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}\n{}", stderr(&out));
    assert!(
        text.contains("1 read, 1 restored, 0 skipped, 1 unreadable"),
        "{text}"
    );
    assert!(text.contains("junk.receipt.json: not a receipt"), "{text}");

    let out = env.watch_once().await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(!env.inbox().join("again.mp4").exists());
    let dup = read_json(&env.path("duplicates/again.receipt.json"));
    assert_eq!(dup["earlier"]["url"], first["url"], "{dup:#}");
    assert_eq!(env.posts().await.len(), 1);
}

// Regression (issue 9 item 4): a start without a ledger while done/ held receipts published as if nothing had been posted before.
#[tokio::test(flavor = "multi_thread")]
async fn new_ledger_starts_fresh_and_is_needed_once() {
    let env = Env::start("").await;
    publish_first(&env).await;
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(env.path(&format!(".dropcast/ledger.sqlite3{suffix}")));
    }
    let out = env.watch_once().await;
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert_said(&out, "is missing");

    let out = env.run(&["watch", "--once", "--new-ledger"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = env.watch_once().await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

// Regression (issue 9 item 4): a ledger rebuild beside a running agent would change the ledger under it.
#[tokio::test(flavor = "multi_thread")]
async fn ledger_rebuild_refuses_while_an_agent_runs() {
    let env = Env::start("").await;
    let agent = env.spawn_watching().await;
    let out = env.run(&["ledger", "rebuild"]).await;
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    assert!(
        stderr(&out).contains(&format!("pid {}", agent.child.id())),
        "{}",
        stderr(&out)
    );
}
