//! Exactly once, whatever happens: expired cookies, rate limits, lost answers, faults
//! at every step, a second agent — through the real binary against a sandbox that
//! breaks on purpose.

mod common;

use std::time::Duration;

use common::*;
use dropcast::sandbox::{self, Fault, FaultAction, FaultStep, SandboxOptions};
use serde_json::{Value, json};

async fn wait_posts(env: &Env, agent: &Agent, n: usize) -> Vec<Value> {
    let start = std::time::Instant::now();
    loop {
        let posts = env.posts().await;
        if posts.len() >= n {
            return posts;
        }
        assert!(
            start.elapsed() < Duration::from_secs(90),
            "only {} of {n} posts:\n{}",
            posts.len(),
            agent.log_text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn drop_example(env: &Env, stem: &str, variant: u8) -> Vec<u8> {
    let bytes = clip_variant(variant);
    std::fs::write(env.inbox().join(format!("{stem}.mp4")), &bytes).unwrap();
    std::fs::copy(media("clip.yaml"), env.inbox().join(format!("{stem}.yaml"))).unwrap();
    bytes
}

#[tokio::test(flavor = "multi_thread")]
async fn expired_cookie_pauses_the_account_and_a_new_cookie_file_resumes_it() {
    let env = Env::configured(
        SandboxOptions::default(),
        &[("accounts", "{main: {cookie_file: ./main.cookie}}")],
        "",
    )
    .await;
    let cookie = env.path("main.cookie");
    std::fs::write(&cookie, "sessionid=logged-out-1234; csrf_token=abcd\n").unwrap();
    let agent = env.spawn_watch();
    let bytes = drop_example(&env, "clip", 1);
    agent.wait_for_log("The account is paused").await;
    // Queued, not failed: the files stay in the inbox, nothing is posted.
    assert!(env.inbox().join("clip.mp4").exists());
    assert!(!env.path("failed/clip.mp4").exists());
    assert!(env.posts().await.is_empty());
    assert!(
        !agent.log_text().contains("logged-out-1234"),
        "the cookie is never logged"
    );

    std::fs::write(&cookie, sandbox::cookie_for("main")).unwrap();
    let posts = wait_posts(&env, &agent, 1).await;
    assert_eq!(posts[0]["sha256"], json!(sha256_hex(&bytes)));
    assert!(agent.log_text().contains("works again"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_agent_on_the_same_state_folder_exits_2_naming_the_first() {
    let env = Env::start("").await;
    let first = env.spawn_watch();
    first.wait_for_log("watching").await;
    let mut cmd = env.cmd();
    cmd.arg("watch");
    let out = run(cmd).await;
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("another dropcast agent"), "{err}");
    assert!(err.contains(&format!("pid {}", first.child.id())), "{err}");
}
