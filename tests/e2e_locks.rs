//! One driver per state folder, one agent per inbox (issue 9 items 1 and 2), through the
//! real binary: `publish` and `retry` beside a running agent hand their work to it,
//! concurrent `publish` commands take turns, a second agent on the same inbox refuses to
//! start, and `check` only looks. Overlaps are made certain with the sandbox's held
//! requests, not with sleeps.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use common::*;
use dropcast::sandbox::{self, Fault, FaultAction, FaultStep};
use serde_json::Value;

const LIMIT: Duration = Duration::from_secs(90);

fn copy_example(env: &Env, stem: &str) {
    env.drop_media("clip.mp4", format!("{stem}.mp4"));
    env.drop_media("clip.yaml", format!("{stem}.yaml"));
}

/// Starts `cmd` with stdout piped and stderr to `log`.
fn spawn_logged(mut cmd: Command, log: &Path) -> Child {
    cmd.stdout(Stdio::piped())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap()
}

async fn finish(child: Child) -> Output {
    tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap()
}

async fn held(env: &Env, n: usize) {
    tokio::time::timeout(LIMIT, env.sandbox.wait_held(n))
        .await
        .expect("the sandbox never held the request");
}

/// `child`'s stdout, once it exited 0 (its log, `log` in the test folder, said otherwise).
async fn finished_ok(env: &Env, child: Child, log: &str) -> String {
    let out = finish(child).await;
    let text = stdout(&out);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{log}: {text}\n{}",
        std::fs::read_to_string(env.path(log)).unwrap_or_default()
    );
    text
}

/// One upload and one publish request reached the sandbox.
async fn assert_one_upload_and_create(env: &Env) {
    let requests = env.requests().await;
    assert_eq!(
        (&requests["upload"], &requests["create"]),
        (&Value::from(1), &Value::from(1)),
        "{requests}"
    );
}

fn url_of(post: &Value) -> String {
    format!(
        "https://www.douyin.com/video/{}",
        post["aweme_id"].as_str().expect("aweme_id")
    )
}

// Regression (issue 9 item 1): `publish` beside a running agent ran a second job for the video the agent was publishing and posted it twice.
#[tokio::test(flavor = "multi_thread")]
async fn publish_beside_a_running_agent_is_handed_to_it_and_posts_once() {
    let env = Env::start("").await;
    // The agent's upload waits until released: its job is certainly in flight.
    env.sandbox
        .inject(Fault::new(FaultStep::Upload, FaultAction::Hold).times(1));
    let agent = env.spawn_watching().await;
    copy_example(&env, "clip");
    held(&env, 1).await;

    let mut publish = env.cmd();
    publish.args(["publish", "inbox/clip.mp4"]);
    let mut publish = spawn_logged(publish, &env.path("publish.log"));
    // The agent took the request for its job in flight (or, as before the fix, the
    // command published by itself and ended).
    wait_until(LIMIT, || {
        agent
            .log_text()
            .contains("asked for a video already in flight")
            || publish.try_wait().unwrap().is_some()
    })
    .await
    .unwrap_or_else(|_| panic!("the request was never taken:\n{}", agent.log_text()));
    assert_eq!(env.sandbox.release(), 1);
    // Before the fix the agent's job went on after the command's post: let it end.
    wait_until(LIMIT, || {
        env.path("done/clip.receipt.json").exists() || agent.log_text().contains("ledger error")
    })
    .await
    .unwrap_or_else(|_| panic!("the agent's job never ended:\n{}", agent.log_text()));

    let text = finished_ok(&env, publish, "publish.log").await;
    // The agent answered after its job ended: one upload, one publish request, one post.
    assert_one_upload_and_create(&env).await;
    let posts = env.posts().await;
    assert_eq!(posts.len(), 1, "{posts:#?}\n{}", agent.log_text());
    assert_eq!(text.trim(), format!("published: {}", url_of(&posts[0])));
    assert!(env.path("done/clip.receipt.json").exists());
}

// Regression (issue 9 item 1): three `publish` of one file at once made three posts, and printed "ledger: job 1 is done" while a post existed.
#[tokio::test(flavor = "multi_thread")]
async fn three_publish_of_one_file_post_once_and_print_the_same_address() {
    let env = Env::start("").await;
    env.sandbox
        .inject(Fault::new(FaultStep::Upload, FaultAction::Hold).times(1));
    copy_example(&env, "clip");
    let command = || {
        let mut c = env.cmd();
        c.args(["publish", "inbox/clip.mp4"]);
        c
    };
    let first = spawn_logged(command(), &env.path("p1.log"));
    held(&env, 1).await;
    let mut second = spawn_logged(command(), &env.path("p2.log"));
    let mut third = spawn_logged(command(), &env.path("p3.log"));
    // Both wait for the first (before the fix they published at once, by themselves).
    for (log, child) in [("p2.log", &mut second), ("p3.log", &mut third)] {
        let path = env.path(log);
        wait_until(LIMIT, || {
            std::fs::read_to_string(&path)
                .is_ok_and(|t| t.contains("waiting for dropcast publish (pid"))
                || child.try_wait().unwrap().is_some()
        })
        .await
        .unwrap_or_else(|_| panic!("{log} neither waited nor ended"));
    }
    assert_eq!(env.sandbox.release(), 1);

    let mut printed = Vec::new();
    for (child, log) in [(first, "p1.log"), (second, "p2.log"), (third, "p3.log")] {
        let text = finished_ok(&env, child, log).await;
        printed.push(text.trim().to_string());
    }
    assert_one_upload_and_create(&env).await;
    let posts = env.posts().await;
    assert_eq!(posts.len(), 1, "{posts:#?}");
    let expected = format!("published: {}", url_of(&posts[0]));
    assert_eq!(printed, vec![expected; 3]);
}

// Regression (issue 9 item 1): `retry` beside a running agent wrote the ledger and moved files itself, a second driver beside the agent.
#[tokio::test(flavor = "multi_thread")]
async fn retry_beside_a_running_agent_is_done_by_the_agent() {
    let env = Env::start("").await;
    let agent = env.spawn_watching().await;
    env.drop_media("clip.mp4", "clip.mp4");
    env.write_inbox("clip.yaml", "txet: typo\n");
    agent
        .wait_for_file(env.path("failed/clip.mp4"), LIMIT.as_secs())
        .await;
    std::fs::copy(media("clip.yaml"), env.path("failed/clip.yaml")).unwrap();

    let sha = sha256_hex(&std::fs::read(media("clip.mp4")).unwrap());
    let mut retry = env.cmd();
    retry.args(["retry", &sha[..12]]);
    let out = run(retry).await;
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}\n{}", stderr(&out));
    assert!(
        text.starts_with("requeued job 1 (clip.mp4, was failed)"),
        "{text}"
    );
    assert!(
        agent
            .log_text()
            .contains("`dropcast retry` was handed to the agent"),
        "{}",
        agent.log_text()
    );
    agent
        .wait_for_file(env.path("done/clip.receipt.json"), LIMIT.as_secs())
        .await;
    assert_eq!(env.posts().await.len(), 1);
}

/// The same config with another state folder.
fn second_config(env: &Env) -> PathBuf {
    let text = std::fs::read_to_string(&env.config).unwrap();
    assert!(text.contains("state_dir: ./.dropcast\n"));
    let other = text.replace("state_dir: ./.dropcast\n", "state_dir: ./.dropcast-2\n");
    let path = env.path("dropcast-2.yaml");
    std::fs::write(&path, other).unwrap();
    path
}

// Regression (issue 9 item 2): two agents with different state folders on one inbox both published its videos, some twice.
#[tokio::test(flavor = "multi_thread")]
async fn a_second_agent_on_the_same_inbox_exits_2_naming_the_first() {
    let env = Env::start("").await;
    let first = env.spawn_watching().await;

    let mut second = Command::new(assert_cmd::cargo::cargo_bin!("dropcast"));
    second
        .arg("-c")
        .arg(second_config(&env))
        .arg("watch")
        .env(COOKIE_VAR, sandbox::cookie_for("main"))
        .env_remove("DROPCAST_CONFIG")
        .current_dir(env.dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = second.spawn().unwrap();
    let exited = wait_until(LIMIT, || child.try_wait().unwrap().is_some()).await;
    if exited.is_err() {
        let _ = child.kill();
    }
    let out = finish(child).await;
    assert!(exited.is_ok(), "the second agent kept running");
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains(&format!("pid {}", first.child.id())), "{err}");
    assert!(
        err.contains(".dropcast,") || err.contains(".dropcast)"),
        "{err}"
    );
    assert!(err.contains("One inbox has one agent"), "{err}");

    // The first agent still works, alone.
    copy_example(&env, "clip");
    first
        .wait_for_file(env.path("done/clip.receipt.json"), LIMIT.as_secs())
        .await;
    assert_eq!(env.posts().await.len(), 1);
    assert!(!env.path(".dropcast-2/ledger.sqlite3").exists());
}

// Regression (issue 9, smaller): `check` exited 2 for a cookie problem (the README says 1), before any account was checked.
#[tokio::test(flavor = "multi_thread")]
async fn check_reports_a_cookie_problem_with_exit_1() {
    let env = Env::start("").await;
    let mut check = env.cmd();
    check.env_remove(COOKIE_VAR).arg("check");
    let out = run(check).await;
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}\n{}", stderr(&out));
    assert!(text.contains("account     main:"), "{text}");
    assert!(text.contains(COOKIE_VAR), "{text}");
    // A bad config is still exit 2.
    std::fs::write(&env.config, "inbox: [\n").unwrap();
    let mut check = env.cmd();
    check.arg("check");
    assert_eq!(run(check).await.status.code(), Some(2));
}

/// Every step a job of the ledger in `state` has committed.
fn steps(state: &Path) -> Vec<String> {
    let ledger = dropcast::ledger::Ledger::open(state).unwrap();
    ledger
        .jobs_in(&dropcast::ledger::JobState::ALL)
        .unwrap()
        .iter()
        .flat_map(|j| {
            j.steps
                .iter()
                .map(|(s, _)| s.to_string())
                .collect::<Vec<_>>()
        })
        .collect()
}

// Regression (issue 9 item 1): `check` beside a running agent in sandbox mode rewrote the agent's checkpoints in the ledger.
#[tokio::test(flavor = "multi_thread")]
async fn check_beside_a_running_agent_leaves_its_ledger_alone() {
    let env = Env::configured(
        Default::default(),
        &[(
            "platform",
            "{sandbox: true, sandbox_faults: [{step: commit, action: hold}]}",
        )],
        "",
    )
    .await;
    let agent = env.spawn_watching().await;
    copy_example(&env, "clip");
    // Held at step 4: steps 1–3 are committed.
    let state = env.path(".dropcast");
    wait_until(LIMIT, || steps(&state).contains(&"upload".to_string()))
        .await
        .unwrap_or_else(|_| panic!("never uploaded:\n{}", agent.log_text()));
    let before = steps(&state);

    let out = env.run(&["check"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert_eq!(steps(&state), before, "check changed the agent's ledger");
}
