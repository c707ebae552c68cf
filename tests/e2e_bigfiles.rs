//! Big files: multipart uploads through the real binary against the sandbox, a part that
//! fails and is sent again alone, and a restart after `kill -9` that sends only the parts
//! still missing.

mod common;

use std::time::Duration;

use common::*;
use dropcast::sandbox::{Fault, FaultAction, FaultStep, SandboxOptions};
use serde_json::{Value, json};

/// Multipart above 5 MiB, parts of 5 MiB: a 12 MiB + 300 KiB video goes up in 3 parts,
/// the last one short.
const UPLOAD: &str = "{multipart_threshold: 5MiB, part_size: 5MiB, parallel_parts: 2}";

async fn env_with(faults: Vec<Fault>, upload: &str) -> Env {
    let options = SandboxOptions {
        faults,
        ..SandboxOptions::default()
    };
    Env::configured(options, &[("upload", upload)], "").await
}

async fn uploads(env: &Env) -> Value {
    let url = format!("{}/__sandbox/uploads", env.sandbox.base_url());
    reqwest::get(url).await.unwrap().json().await.unwrap()
}

fn drop_big(env: &Env, seed: u8) -> Vec<u8> {
    let bytes = big_mp4(12, 300 * 1024, seed);
    env.write_inbox("big.mp4", &bytes);
    env.write_inbox("big.yaml", "text: a big one\n");
    bytes
}

#[tokio::test(flavor = "multi_thread")]
async fn a_big_video_goes_up_in_parts_with_an_odd_last_part_bytes_intact() {
    let env = env_with(vec![], UPLOAD).await;
    let bytes = drop_big(&env, 1);
    let out = env.watch_once().await;
    assert!(out.status.success(), "{}", stderr(&out));
    let posts = env.posts().await;
    assert_eq!(posts.len(), 1);
    assert_eq!(posts[0]["sha256"], json!(sha256_hex(&bytes)));
    let requests = env.requests().await;
    assert_eq!(requests["upload_part"], json!(3), "{requests:#}");
    assert_eq!(requests["upload"], json!(0), "no whole-file upload");
    let receipt = read_json(&env.path("done/big.receipt.json"));
    assert_eq!(receipt["sha256"], json!(sha256_hex(&bytes)));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_part_failing_twice_is_sent_again_alone() {
    let failing = FaultAction::Status {
        status: 503,
        retry_after: None,
        body: None,
    };
    let env = env_with(
        vec![Fault::new(FaultStep::UploadPart, failing).times(2)],
        UPLOAD,
    )
    .await;
    let bytes = drop_big(&env, 2);
    let out = env.watch_once().await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(env.posts().await[0]["sha256"], json!(sha256_hex(&bytes)));
    // Three parts arrived once each; the two failures were retries of single parts.
    let all = uploads(&env).await;
    let (_, upload) = all.as_object().unwrap().iter().next().unwrap();
    assert_eq!(upload["parts"], json!({"1": 1, "2": 1, "3": 1}), "{all:#}");
    assert_eq!(env.requests().await["upload_part"], json!(5));
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_mid_multipart_then_restart_sends_only_the_missing_parts() {
    let env = env_with(
        vec![
            Fault::new(FaultStep::UploadPart, FaultAction::Hold)
                .after(1)
                .times(1),
        ],
        "{multipart_threshold: 5MiB, part_size: 5MiB, parallel_parts: 1}",
    )
    .await;
    let bytes = drop_big(&env, 3);
    let mut agent = env.spawn_watch();
    tokio::time::timeout(Duration::from_secs(60), env.sandbox.wait_held(1))
        .await
        .expect("part 2 never arrived");
    agent.child.kill().unwrap(); // SIGKILL, with part 1 done and part 2 in flight
    agent.child.wait().unwrap();
    env.sandbox.release();

    let out = env.watch_once().await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert_said(&out, "resuming the multipart upload");
    let posts = env.posts().await;
    assert_eq!(posts.len(), 1);
    assert_eq!(posts[0]["sha256"], json!(sha256_hex(&bytes)));
    let all = uploads(&env).await;
    assert_eq!(
        all.as_object().unwrap().len(),
        1,
        "one upload, resumed: {all:#}"
    );
    let (_, upload) = all.as_object().unwrap().iter().next().unwrap();
    // Part 1 went once, before the kill; only parts 2 and 3 were sent after the restart
    // (part 2 twice: the held copy the dead agent never heard back about, and again).
    assert_eq!(upload["parts"]["1"], json!(1), "{all:#}");
    assert_eq!(upload["parts"]["3"], json!(1), "{all:#}");
}
