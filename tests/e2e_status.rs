//! `dropcast status`, `history` and the status server of a running agent, through the
//! real binary.

mod common;

use std::time::Duration;

use common::*;
use serde_json::Value;

#[tokio::test(flavor = "multi_thread")]
async fn status_and_history_after_a_run_human_and_json() {
    let env = Env::start("").await;
    env.write_inbox("good.mp4", clip_variant(1));
    env.drop_media("clip.yaml", "good.yaml");
    env.write_inbox("bad.mp4", clip_variant(2));
    env.write_inbox("bad.yaml", "text: hi\nvisiblity: public\n");
    env.write_inbox("lonely.mp4", clip_variant(3));
    assert_eq!(env.watch_once().await.status.code(), Some(1));

    let out = env.run(&["status"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("bad.mp4"), "{text}");
    assert!(text.contains("did you mean `visibility`"), "{text}");
    let bad_hash = sha256_hex(&clip_variant(2));
    assert!(
        text.contains(&format!("dropcast retry {}", &bad_hash[..12])),
        "{text}"
    );

    let mut cmd = env.cmd();
    cmd.args(["status", "--json"]);
    let json: Value = serde_json::from_slice(&run(cmd).await.stdout).unwrap();
    assert_eq!(json["failed"][0]["class"], "caption", "{json:#}");

    let out = env.run(&["history", "-n", "5"]).await;
    let text = stdout(&out);
    let posts = env.posts().await;
    let aweme = posts[0]["aweme_id"].as_str().unwrap();
    assert!(
        text.contains(&format!("https://www.douyin.com/video/{aweme}")),
        "{text}"
    );
    assert!(text.contains("good.mp4"), "{text}");
    assert!(text.contains(&sha256_hex(&clip_variant(1))[..12]), "{text}");

    let mut cmd = env.cmd();
    cmd.args(["history", "--json"]);
    let json: Value = serde_json::from_slice(&run(cmd).await.stdout).unwrap();
    assert_eq!(json[0]["aweme_id"], aweme);
    assert_eq!(json[0]["account"], "main");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_running_agent_serves_its_status_and_shows_in_dropcast_status() {
    let env = Env::with("status", "{listen: \"127.0.0.1:0\"}").await;
    let agent = env.spawn_watch();
    agent.wait_for_log("status server and dashboard").await;
    let log = agent.log_text();
    let url = log
        .split("url=")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap()
        .to_string();
    let health = reqwest::get(format!("{url}/healthz")).await.unwrap();
    assert!(health.status().is_success());
    let metrics = reqwest::get(format!("{url}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("dropcast_up 1"), "{metrics}");

    // A video waiting for its caption shows in `dropcast status` (from live.json).
    env.write_inbox("waiting.mp4", clip_variant(4));
    agent.wait_for_log("waiting for a caption").await;
    let mut seen = String::new();
    let ok = wait_until(Duration::from_secs(30), || {
        let out = std::process::Command::new(assert_cmd::cargo::cargo_bin!("dropcast"))
            .arg("-c")
            .arg(&env.config)
            .arg("status")
            .output()
            .unwrap();
        seen = String::from_utf8_lossy(&out.stdout).into_owned();
        seen.contains("waiting.mp4")
    })
    .await;
    assert!(ok.is_ok(), "{seen}");
    assert!(
        seen.contains(&format!("pid {}", agent.child.id()))
            || seen.contains(&agent.child.id().to_string()),
        "{seen}"
    );
}
