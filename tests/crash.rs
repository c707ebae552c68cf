//! The crash matrix: for every failpoint, the real binary aborts there (as a power cut or
//! `kill -9` would), restarts, and the end state must be exactly right: one post per
//! video, every file in done/, failed/ or duplicates/ with its receipt, nothing lost,
//! nothing twice. Also `kill -9` while an upload or the publish request is in flight.
//!
//! Needs the `failpoints` feature: `cargo test --all-features`.

#![cfg(feature = "failpoints")]

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;
use dropcast::failpoint::NAMES;
use dropcast::sandbox::{Fault, FaultAction, FaultStep, SandboxOptions};
use serde_json::json;

/// The inbox of every crash run: a good bundle, the same video under another name, and a
/// bundle whose caption is refused.
fn fill_inbox(env: &Env) {
    env.write_inbox("a.mp4", clip_variant(1));
    env.drop_media("clip.yaml", "a.yaml");
    std::fs::create_dir_all(env.inbox().join("later")).unwrap();
    env.write_inbox("later/dup.mp4", clip_variant(1));
    env.write_inbox("later/dup.yaml", "text: same video again\n");
    env.write_inbox("bad.mp4", clip_variant(2));
    env.write_inbox("bad.yaml", "text: hi\nvisiblity: public\n");
}

/// Every file below `dir`, relative to it, sorted.
fn files(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p.strip_prefix(dir).unwrap().to_string_lossy().into_owned());
            }
        }
    }
    out.sort();
    out
}

/// The one right end state, whichever of `a` and `dup` was published first.
async fn assert_end_state(env: &Env, point: &str) {
    let posts = env.posts().await;
    assert_eq!(posts.len(), 1, "{point}: posts {posts:#?}");
    if point != "kill -9, answered after the restart" {
        // Never sent twice: a restart that finds the step-5 mark asks the platform (6a).
        let creates = env.requests().await["create"].clone();
        assert_eq!(creates, json!(1), "{point}: create requests");
    }
    assert_eq!(
        posts[0]["sha256"],
        json!(sha256_hex(&clip_variant(1))),
        "{point}"
    );
    // Only the agent's own inbox lock (a dot-file, never input) stays.
    let left: Vec<String> = files(&env.inbox())
        .into_iter()
        .filter(|f| f != ".dropcast.lock")
        .collect();
    assert!(left.is_empty(), "{point}: inbox {left:?}");
    let done = files(&env.path("done"));
    let dups = files(&env.path("duplicates"));
    let a_done = vec!["a.mp4", "a.receipt.json", "a.yaml"];
    let dup_done = vec!["later/dup.mp4", "later/dup.receipt.json", "later/dup.yaml"];
    assert!(
        (done == a_done && dups == dup_done) || (done == dup_done && dups == a_done),
        "{point}: done {done:?}, duplicates {dups:?}"
    );
    assert_eq!(
        files(&env.path("failed")),
        vec!["bad.error.json", "bad.mp4", "bad.yaml"],
        "{point}"
    );
    // The receipts name the one post.
    let receipt = read_json(&env.path("done").join(done[1].as_str()));
    assert_eq!(receipt["aweme_id"], posts[0]["aweme_id"], "{point}");
    let dup = read_json(&env.path("duplicates").join(dups[1].as_str()));
    assert_eq!(
        dup["earlier"]["aweme_id"], posts[0]["aweme_id"],
        "{point}: {dup:#}"
    );
    // Each file is exactly the one that was dropped.
    let video = env.path("done").join(done[0].as_str());
    assert_eq!(std::fs::read(video).unwrap(), clip_variant(1), "{point}");
}

/// Points this scenario passes through; each must really abort the first run.
const HIT: &[&str] = &[
    "after_request:credentials",
    "after_request:upload_params",
    "after_request:upload",
    "after_request:commit",
    "after_request:publish",
    "after_commit:claim",
    "after_commit:credentials",
    "after_commit:upload_params",
    "after_commit:upload",
    "after_commit:commit",
    "after_commit:publish_sent",
    "after_commit:published",
    "after_commit:archive_plan",
    "archive:after_receipt",
    "archive:after_caption",
    "archive:after_video",
    "after_commit:done",
    "after_commit:failed",
    "after_commit:duplicate",
    "after_commit:archived",
];

#[tokio::test(flavor = "multi_thread")]
async fn every_failpoint_then_restart_ends_in_exactly_one_post_and_every_file_archived() {
    for &point in NAMES {
        let env = Env::start("").await;
        fill_inbox(&env);
        let mut first = env.cmd();
        first
            .args(["watch", "--once"])
            .env("DROPCAST_FAILPOINT", point);
        let out = run(first).await;
        let aborted = stderr(&out).contains(&format!("failpoint {point}: aborting"));
        if HIT.contains(&point) {
            assert!(aborted, "{point} was never reached:\n{}", stderr(&out));
            assert!(!out.status.success(), "{point}");
        }
        let out = env.watch_once().await;
        assert!(
            !stderr(&out).contains("panicked"),
            "{point}: restart panicked:\n{}",
            stderr(&out)
        );
        assert_end_state(&env, point).await;
    }
}

/// A crash, a restart that crashes at the same point again, and a clean restart.
#[tokio::test(flavor = "multi_thread")]
async fn crashing_twice_at_the_same_point_still_ends_right() {
    for point in [
        "after_request:publish",
        "archive:after_caption",
        "after_commit:archive_plan",
    ] {
        let env = Env::start("").await;
        fill_inbox(&env);
        for _ in 0..2 {
            let mut cmd = env.cmd();
            cmd.args(["watch", "--once"])
                .env("DROPCAST_FAILPOINT", point);
            run(cmd).await;
        }
        env.watch_once().await;
        assert_end_state(&env, point).await;
    }
}

async fn kill_while_held(step: FaultStep, release_before_restart: bool) -> Env {
    let options = SandboxOptions {
        faults: vec![Fault::new(step, FaultAction::Hold).times(1)],
        ..SandboxOptions::default()
    };
    let env = Env::configured(options, &[], "").await;
    fill_inbox(&env);
    let mut agent = env.spawn_watch();
    tokio::time::timeout(Duration::from_secs(60), env.sandbox.wait_held(1))
        .await
        .expect("the request never arrived");
    agent.child.kill().unwrap(); // SIGKILL
    agent.child.wait().unwrap();
    if release_before_restart {
        // The platform finishes the work the dead agent asked for.
        env.sandbox.release();
    }
    let out = env.watch_once().await;
    if !release_before_restart {
        env.sandbox.release();
    }
    assert!(!stderr(&out).contains("panicked"), "{}", stderr(&out));
    env
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_while_an_upload_is_in_flight() {
    let env = kill_while_held(FaultStep::Upload, true).await;
    assert_end_state(&env, "kill -9 during upload").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_while_the_publish_request_is_held_open() {
    let env = kill_while_held(FaultStep::Create, true).await;
    assert_end_state(&env, "kill -9 during publish").await;
    // The restart found the post by its vid (6a) instead of sending it again.
    assert_eq!(env.requests().await["create"], json!(1));
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_while_publishing_and_the_platform_answers_only_after_the_restart() {
    let env = kill_while_held(FaultStep::Create, false).await;
    // The held request completes after the restart re-sent: the platform's one post per
    // video still leaves exactly one.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_end_state(&env, "kill -9, answered after the restart").await;
}

/// With the built-in sandbox, a restart meets an empty simulator: a job that crashed after
/// its upload was committed uploads again instead of failing on a `vid` the new sandbox
/// never saw.
#[tokio::test(flavor = "multi_thread")]
async fn built_in_sandbox_restart_uploads_again_and_publishes() {
    let env = Env::with("platform", "{sandbox: true}").await;
    env.write_inbox("a.mp4", clip_variant(1));
    env.drop_media("clip.yaml", "a.yaml");
    let mut first = env.cmd();
    first
        .args(["watch", "--once"])
        .env("DROPCAST_FAILPOINT", "after_commit:commit");
    let out = run(first).await;
    assert_said(&out, "aborting");
    let out = env.watch_once().await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert_said(&out, "unfinished uploads start over");
    let receipt = read_json(&env.path("done/a.receipt.json"));
    assert!(receipt["aweme_id"].as_str().is_some());
}
