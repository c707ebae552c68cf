//! Exactly once, whatever happens: expired cookies, rate limits, lost answers, faults
//! at every step, a second agent — through the real binary against a sandbox that
//! breaks on purpose.

mod common;

use std::time::Duration;

use common::*;
use dropcast::sandbox::{self, Fault, FaultAction, FaultStep, SandboxOptions};
use serde_json::json;

fn drop_example(env: &Env, stem: &str, variant: u8) -> Vec<u8> {
    let bytes = clip_variant(variant);
    env.write_inbox(format!("{stem}.mp4"), &bytes);
    env.drop_media("clip.yaml", format!("{stem}.yaml"));
    bytes
}

#[tokio::test(flavor = "multi_thread")]
async fn expired_cookie_pauses_the_account_and_a_new_cookie_file_resumes_it() {
    let env = Env::with("accounts", "{main: {cookie_file: ./main.cookie}}").await;
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
    let posts = wait_for_posts(&env, &agent, 1).await;
    assert_eq!(posts[0]["sha256"], json!(sha256_hex(&bytes)));
    assert!(agent.log_text().contains("works again"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_agent_on_the_same_state_folder_exits_2_naming_the_first() {
    let env = Env::start("").await;
    let first = env.spawn_watching().await;
    let out = env.run(&["watch"]).await;
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("another dropcast agent"), "{err}");
    assert!(err.contains(&format!("pid {}", first.child.id())), "{err}");
}

fn fault(step: FaultStep, action: FaultAction, times: u32) -> Fault {
    Fault::new(step, action).times(times)
}

/// One bundle through `watch --once` against a sandbox with `faults`: it must be
/// published exactly once, bytes intact, and archived with its receipt.
async fn publishes_once_despite(faults: Vec<Fault>) -> Env {
    let options = SandboxOptions {
        faults,
        ..SandboxOptions::default()
    };
    let env = Env::configured(options, &[], "").await;
    let bytes = drop_example(&env, "clip", 1);
    let out = env.watch_once().await;
    assert!(out.status.success(), "{}", stderr(&out));
    let posts = env.posts().await;
    assert_eq!(posts.len(), 1, "{posts:#?}");
    assert_eq!(posts[0]["sha256"], json!(sha256_hex(&bytes)));
    let receipt = read_json(&env.path("done/clip.receipt.json"));
    assert_eq!(receipt["aweme_id"], posts[0]["aweme_id"]);
    env
}

const STEPS: [FaultStep; 6] = publish_steps_and(FaultStep::ChallengeSug);

#[tokio::test(flavor = "multi_thread")]
async fn service_unavailable_twice_at_each_step_is_retried() {
    for step in STEPS {
        let action = FaultAction::Status {
            status: 503,
            retry_after: None,
            body: None,
        };
        publishes_once_despite(vec![fault(step, action, 2)]).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn connection_reset_at_each_step_is_retried_or_reconciled() {
    for step in STEPS {
        let env = publishes_once_despite(vec![fault(step, FaultAction::Reset, 1)]).await;
        if step == FaultStep::Create {
            // A reset after the request went out is an unknown outcome: the agent asked
            // the platform (6a) before it sent the post again.
            assert!(env.requests().await["post_list"].as_u64().unwrap() >= 1);
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn too_many_requests_waits_retry_after_without_using_up_attempts() {
    let action = FaultAction::Status {
        status: 429,
        retry_after: Some(1),
        body: None,
    };
    // Three rate limits in a row, with publish.retry.attempts 3 in the test config.
    let started = std::time::Instant::now();
    publishes_once_despite(vec![fault(FaultStep::Create, action, 3)]).await;
    assert!(
        started.elapsed() >= Duration::from_secs(3),
        "Retry-After honoured"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn lost_publish_answer_sends_exactly_one_create_and_reconciles() {
    let env =
        publishes_once_despite(vec![fault(FaultStep::Create, FaultAction::DropAnswer, 1)]).await;
    let requests = env.requests().await;
    assert_eq!(requests["create"], json!(1), "{requests:#}");
    assert!(requests["post_list"].as_u64().unwrap() >= 1, "{requests:#}");
}

#[tokio::test(flavor = "multi_thread")]
async fn upload_credentials_expiring_mid_job_are_renewed_once() {
    let options = SandboxOptions {
        faults: vec![fault(FaultStep::Commit, FaultAction::Hold, 1)],
        ..SandboxOptions::default()
    };
    let env = Env::configured(options, &[], "").await;
    let agent = env.spawn_watch();
    let bytes = drop_example(&env, "clip", 1);
    tokio::time::timeout(Duration::from_secs(60), env.sandbox.wait_held(1))
        .await
        .expect("the commit never arrived");
    // Every auth, tos_sign and token expires while the commit is held open.
    let expire = format!("{}/__sandbox/expire", env.sandbox.base_url());
    reqwest::Client::new().post(expire).send().await.unwrap();
    env.sandbox.release();
    let posts = wait_for_posts(&env, &agent, 1).await;
    assert_eq!(posts[0]["sha256"], json!(sha256_hex(&bytes)));
    let requests = env.requests().await;
    assert_eq!(requests["credentials"], json!(2), "{requests:#}");
    assert_eq!(requests["upload"], json!(2), "{requests:#}");
    assert!(agent.log_text().contains("upload credentials expired"));
}

fn status(status: u16) -> FaultAction {
    FaultAction::Status {
        status,
        retry_after: None,
        body: None,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_post_fails_and_retry_brings_it_back_from_failed() {
    let refused = FaultAction::Body {
        body: json!({"status_code": 2, "status_msg": "text_extra: span 0..3 is not `#音乐`"}),
    };
    let options = SandboxOptions {
        faults: vec![fault(FaultStep::Create, refused, 1)],
        ..SandboxOptions::default()
    };
    let env = Env::configured(options, &[], "").await;
    let bytes = drop_example(&env, "clip", 1);
    let out = env.watch_once().await;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = read_json(&env.path("failed/clip.error.json"));
    assert_eq!(err["class"], "rejected");
    assert_eq!(err["step"], "publish");
    assert!(
        err["reason"].as_str().unwrap().contains("span 0..3"),
        "{err:#}"
    );

    let hash = sha256_hex(&bytes);
    let mut cmd = env.cmd();
    cmd.args(["retry", &hash[..10]]);
    let out = run(cmd).await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}{}", stderr(&out));
    assert!(text.contains("requeued job"), "{text}");
    assert!(
        env.inbox().join("clip.mp4").exists(),
        "moved back into the inbox"
    );
    assert!(env.inbox().join("clip.yaml").exists());
    assert!(
        env.path("failed/clip.error.json").exists(),
        "the error receipt stays"
    );

    let out = env.watch_once().await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(env.posts().await.len(), 1);
    assert!(env.path("done/clip.receipt.json").exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn unconfirmed_job_is_never_sent_again_on_its_own_only_after_retry() {
    // The publish request is cut before the platform does anything, and the post list
    // cannot be read to check: the outcome is unknown.
    let options = SandboxOptions {
        faults: vec![
            fault(FaultStep::Create, FaultAction::Reset, 1),
            // As many as the first run's tries (publish.retry.attempts: 3).
            fault(FaultStep::PostList, status(503), 3),
        ],
        ..SandboxOptions::default()
    };
    let env = Env::configured(options, &[], "").await;
    let bytes = drop_example(&env, "clip", 1);
    let out = env.watch_once().await;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        env.inbox().join("clip.mp4").exists(),
        "an unconfirmed job keeps its files"
    );
    assert_said(&out, "unconfirmed");
    let creates = env.requests().await["create"].as_u64().unwrap();

    // A restart can check now (no post with our vid), but does not send on its own.
    let out = env.watch_once().await;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(env.requests().await["create"].as_u64().unwrap(), creates);
    assert!(env.posts().await.is_empty());
    assert_said(&out, "dropcast retry");

    let mut cmd = env.cmd();
    cmd.args(["retry", &sha256_hex(&bytes)]);
    assert!(run(cmd).await.status.success());
    let out = env.watch_once().await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(env.posts().await.len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn retry_says_clearly_what_it_cannot_do() {
    let env = Env::start("").await;
    drop_example(&env, "clip", 1);
    assert!(env.watch_once().await.status.success());
    for (arg, wanted) in [
        ("zz", "not a content hash"),
        ("abcdef12", "no job has a hash starting with"),
        (
            &sha256_hex(&clip_variant(1))[..8],
            "only failed, unconfirmed or abandoned",
        ),
    ] {
        let out = env.run(&["retry", arg]).await;
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(1), "{arg}: {text}");
        assert!(text.contains(wanted), "{arg}: {text}");
    }
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread")]
async fn sigterm_from_a_service_manager_stops_the_agent_cleanly() {
    let env = Env::start("").await;
    let mut agent = env.spawn_watch();
    agent.wait_for_log("watching").await;
    let status = std::process::Command::new("kill")
        .args(["-TERM", &agent.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let start = std::time::Instant::now();
    loop {
        if let Some(status) = agent.child.try_wait().unwrap() {
            assert!(status.success(), "{status:?}\n{}", agent.log_text());
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "{}",
            agent.log_text()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The state folder is free again.
    let _again = env.spawn_watching().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_archive_that_cannot_be_written_keeps_the_job_and_finishes_later() {
    let env = Env::start("").await;
    let sub = env.inbox().join("shoot");
    std::fs::create_dir_all(&sub).unwrap();
    let bytes = clip_variant(1);
    std::fs::write(sub.join("clip.mp4"), &bytes).unwrap();
    std::fs::copy(media("clip.yaml"), sub.join("clip.yaml")).unwrap();
    // done/shoot is a file: nothing can be moved into it.
    std::fs::write(env.path("done/shoot"), "in the way").unwrap();
    let out = env.watch_once().await;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_said(&out, "cannot archive");
    assert!(
        sub.join("clip.mp4").exists(),
        "the video stays in the inbox"
    );
    assert!(sub.join("clip.yaml").exists());
    assert_eq!(env.posts().await.len(), 1, "published once");

    // Fixed: the next run finishes the archive without posting again.
    std::fs::remove_file(env.path("done/shoot")).unwrap();
    let out = env.watch_once().await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        std::fs::read(env.path("done/shoot/clip.mp4")).unwrap(),
        bytes
    );
    assert!(env.path("done/shoot/clip.receipt.json").exists());
    assert!(!sub.join("clip.mp4").exists());
    assert_eq!(env.posts().await.len(), 1);
    assert_eq!(env.requests().await["create"], json!(1));
}

const TWO_AT_ONCE: (&str, &str) = (
    "publish",
    "{concurrency: 2, retry: {attempts: 3, initial: 50ms, max: 500ms}}",
);

/// A second copy of a video that is still being published waits for that job: then it is
/// a duplicate naming the post, or, if the first copy was refused, it is published itself.
#[tokio::test(flavor = "multi_thread")]
async fn a_copy_waits_for_the_same_video_in_flight_then_names_its_post() {
    let options = SandboxOptions {
        faults: vec![fault(FaultStep::Create, FaultAction::Hold, 1)],
        ..SandboxOptions::default()
    };
    let env = Env::configured(options, &[TWO_AT_ONCE], "").await;
    let agent = env.spawn_watch();
    drop_example(&env, "a", 1);
    tokio::time::timeout(Duration::from_secs(60), env.sandbox.wait_held(1))
        .await
        .expect("the publish request never arrived");
    std::fs::create_dir_all(env.inbox().join("later")).unwrap();
    env.write_inbox("later/b.mp4", clip_variant(1));
    env.drop_media("clip.yaml", "later/b.yaml");
    agent.wait_for_log("waiting for that job").await;
    env.sandbox.release();
    let receipt = agent
        .wait_for_archive(env.path("duplicates/later/b.receipt.json"), 60)
        .await;
    let posts = env.posts().await;
    assert_eq!(posts.len(), 1);
    assert_eq!(
        read_json(&receipt)["earlier"]["aweme_id"],
        posts[0]["aweme_id"]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_copy_waiting_for_a_refused_video_is_published_itself() {
    let refused = FaultAction::Body {
        body: json!({"status_code": 2, "status_msg": "refused on purpose"}),
    };
    let options = SandboxOptions {
        faults: vec![
            fault(FaultStep::Commit, FaultAction::Hold, 1),
            fault(FaultStep::Create, refused, 1),
        ],
        ..SandboxOptions::default()
    };
    let env = Env::configured(options, &[TWO_AT_ONCE], "").await;
    let agent = env.spawn_watch();
    let bytes = drop_example(&env, "a", 1);
    tokio::time::timeout(Duration::from_secs(60), env.sandbox.wait_held(1))
        .await
        .expect("the commit never arrived");
    env.write_inbox("b.mp4", &bytes);
    env.drop_media("clip.yaml", "b.yaml");
    agent.wait_for_log("waiting for that job").await;
    env.sandbox.release();
    let posts = wait_for_posts(&env, &agent, 1).await;
    assert_eq!(posts[0]["sha256"], json!(sha256_hex(&bytes)));
    let receipt = env.path("done/b.receipt.json");
    wait_until(Duration::from_secs(30), || common::archived(&receipt))
        .await
        .unwrap();
    assert!(env.path("failed/a.error.json").exists());
}
