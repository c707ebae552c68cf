//! Several accounts on one agent: routing by caption and by inbox subfolder, dedupe per
//! account, and an expired cookie pausing only its own account.

mod common;

use common::*;
use dropcast::sandbox::{self, SandboxOptions};
use serde_json::Value;

const STUDIO_VAR: &str = "DROPCAST_TEST_STUDIO_COOKIE";

async fn two_accounts() -> Env {
    let accounts =
        format!("{{main: {{cookie_env: {COOKIE_VAR}}}, studio: {{cookie_env: {STUDIO_VAR}}}}}");
    Env::configured(SandboxOptions::default(), &[("accounts", &accounts)], "").await
}

fn bundle(env: &Env, rel: &str, variant: u8, caption: &str) {
    let video = env.inbox().join(format!("{rel}.mp4"));
    std::fs::create_dir_all(video.parent().unwrap()).unwrap();
    std::fs::write(&video, clip_variant(variant)).unwrap();
    env.write_inbox(format!("{rel}.yaml"), caption);
}

fn account_of<'a>(posts: &'a [Value], sha: &str) -> Vec<&'a str> {
    posts
        .iter()
        .filter(|p| p["sha256"] == sha)
        .map(|p| p["account"].as_str().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn jobs_go_to_the_account_their_caption_or_subfolder_names() {
    let env = two_accounts().await;
    bundle(&env, "plain", 1, "text: to the first account\n");
    bundle(
        &env,
        "by-caption",
        2,
        "text: to the studio\naccount: studio\n",
    );
    bundle(&env, "studio/by-folder", 3, "text: studio by folder\n");
    // The same video for both accounts: dedupe is per account, so both post it.
    bundle(&env, "again-main", 4, "text: one\n");
    bundle(&env, "studio/again-studio", 4, "text: two\n");
    let mut cmd = env.cmd();
    cmd.args(["watch", "--once"])
        .env(STUDIO_VAR, sandbox::cookie_for("studio"));
    let out = run(cmd).await;
    assert!(out.status.success(), "{}", stderr(&out));

    let posts = env.posts().await;
    assert_eq!(posts.len(), 5, "{posts:#?}");
    let sha = |n| sha256_hex(&clip_variant(n));
    assert_eq!(account_of(&posts, &sha(1)), vec!["main"]);
    assert_eq!(account_of(&posts, &sha(2)), vec!["studio"]);
    assert_eq!(account_of(&posts, &sha(3)), vec!["studio"]);
    let mut both = account_of(&posts, &sha(4));
    both.sort();
    assert_eq!(both, vec!["main", "studio"]);
    let receipt = read_json(&env.path("done/studio/by-folder.receipt.json"));
    assert_eq!(receipt["account"], "studio");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_expired_cookie_pauses_only_its_own_account() {
    let env = two_accounts().await;
    let mut cmd = env.cmd();
    cmd.arg("watch")
        .env(STUDIO_VAR, "sessionid=expired-studio-77; csrf_token=abcd")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(env.path("agent.log")).unwrap());
    let child = cmd.spawn().unwrap();
    let agent = Agent {
        child,
        log: env.path("agent.log"),
    };
    bundle(&env, "studio/for-studio", 1, "text: studio\n");
    agent.wait_for_log("The account is paused").await;
    bundle(&env, "for-main", 2, "text: main\n");
    agent
        .wait_for_archive(env.path("done/for-main.receipt.json"), 60)
        .await;
    let posts = env.posts().await;
    assert_eq!(posts.len(), 1);
    assert_eq!(posts[0]["account"], "main");
    assert!(
        env.inbox().join("studio/for-studio.mp4").exists(),
        "queued, not failed"
    );
    assert!(!agent.log_text().contains("expired-studio-77"));
}
