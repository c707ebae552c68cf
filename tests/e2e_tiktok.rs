//! `tiktok` end to end: the real binary against the TikTok simulator the test starts
//! (docs/tiktok.md "Simulator"): login following the printed address, a post whose bytes
//! and `post_info` arrive intact, a video refused before upload.

mod common;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::Duration;

use common::fixtures::{media, sha256_hex};
use common::{Env, stderr, stdout};
use dropcast::sandbox::{SandboxOptions, TiktokOptions};
use serde_json::{Value, json};

const SECRET_VAR: &str = "DROPCAST_TEST_TIKTOK_SECRET";

/// A sandbox whose TikTok posts are public at once, and a config with one `tiktok`
/// account `global` pointed at it.
async fn env(tiktok: TiktokOptions) -> Env {
    configured(tiktok, |api, _| {
        (
            format!(
                "{{sandbox: false, timeout: 10s, tiktok: {{api_url: \"{api}\", auth_url: \"{api}\"}}}}"
            ),
            GLOBAL.to_owned(),
        )
    })
    .await
}

/// The `tiktok` account `global` of these tests, as YAML.
const GLOBAL: &str = "global: {platform: tiktok, client_key: aw1sandbox, client_secret_env: DROPCAST_TEST_TIKTOK_SECRET}";

/// A sandbox with `tiktok`, and a config whose `platform:` and `accounts:` (mappings'
/// insides for the latter) `lines` gives from the sandbox's address (without and with
/// its final slash).
async fn configured(tiktok: TiktokOptions, lines: impl Fn(&str, &str) -> (String, String)) -> Env {
    let options = SandboxOptions {
        tiktok,
        ..SandboxOptions::default()
    };
    let env = Env::configured(options, &[], "").await;
    let url = env.sandbox.base_url();
    let (platform, accounts) = lines(url.trim_end_matches('/'), &url);
    let text = std::fs::read_to_string(&env.config).unwrap();
    let text = text
        .lines()
        .map(|l| match l.split_once(':').map(|(k, _)| k) {
            Some("platform") => format!("platform: {platform}"),
            Some("accounts") => format!("accounts: {{{accounts}}}"),
            _ => l.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(&env.config, text + "\n").unwrap();
    env
}

fn quick() -> TiktokOptions {
    TiktokOptions {
        processing: Duration::from_millis(200),
        moderation: Duration::ZERO,
        ..TiktokOptions::default()
    }
}

/// `dropcast login global --headless`, approving the printed address at the simulator as
/// a user would in a browser.
async fn login(env: &Env) -> String {
    let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin!("dropcast"));
    cmd.arg("-c")
        .arg(&env.config)
        .args(["login", "global", "--headless"])
        .env(SECRET_VAR, "s3cret")
        .env_remove("DROPCAST_CONFIG")
        .current_dir(env.path(""))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let out = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        let mut all = String::new();
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if line.starts_with("http") {
                let _ = tx.send(line.clone());
            }
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    let address = tokio::task::spawn_blocking(move || rx.recv_timeout(Duration::from_secs(60)))
        .await
        .unwrap()
        .expect("the authorize address on a line of its own");
    assert!(address.contains("/v2/auth/authorize/"), "{address}");
    assert!(address.contains("code_challenge_method=S256"), "{address}");
    // The user approves: the simulator redirects the browser to dropcast's listener.
    reqwest::get(format!("{address}&sandbox_approve=1"))
        .await
        .unwrap();
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    let said = reader.join().unwrap();
    assert!(status.success(), "login failed: {said}");
    said
}

/// No token, code, upload address or app secret the simulator issued or was shown is in
/// `texts` (what the commands printed, debug logs included) or in anything the run wrote
/// outside the state folder (receipts above all).
async fn no_secret_in(env: &Env, texts: &[&str]) {
    let secrets: Vec<String> = sandbox_get(env, "/__sandbox/secrets")
        .await
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .filter(|s| s.len() >= 8)
        .collect();
    assert!(secrets.iter().any(|s| s.starts_with("act.")), "{secrets:?}");
    let mut written = Vec::new();
    for dir in ["done", "failed", "duplicates", "inbox"] {
        for entry in std::fs::read_dir(env.path(dir)).unwrap().flatten() {
            if entry.path().is_file() {
                written.push(
                    String::from_utf8_lossy(&std::fs::read(entry.path()).unwrap()).into_owned(),
                );
            }
        }
    }
    for secret in &secrets {
        for text in texts
            .iter()
            .copied()
            .chain(written.iter().map(String::as_str))
        {
            assert!(!text.contains(secret.as_str()), "a secret leaked: {text}");
        }
    }
}

async fn sandbox_get(env: &Env, path: &str) -> Value {
    let url = format!("{}{path}", env.sandbox.base_url().trim_end_matches('/'));
    reqwest::get(url).await.unwrap().json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn login_then_a_post_with_its_bytes_and_every_post_info_field() {
    let env = env(quick()).await;
    let said = login(&env).await;
    assert!(
        said.contains("logged in to TikTok as Dropcast Sandbox (@dropcast_sandbox)"),
        "{said}"
    );
    let tokens = env.path(".dropcast/tokens/global.json");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&tokens).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    let mut cmd = env.cmd();
    cmd.env(SECRET_VAR, "s3cret").arg("accounts");
    let out = common::run(cmd).await;
    let listed = stdout(&out);
    assert!(
        listed.contains("Dropcast Sandbox (@dropcast_sandbox)") && listed.contains("session works"),
        "{listed}\n{}",
        stderr(&out)
    );

    std::fs::copy(media("clip.mp4"), env.inbox().join("clip.mp4")).unwrap();
    env.write_inbox(
        "clip.yaml",
        "text: \"funny #cat video\"\ncover_at: 1s\nai_generated: true\ntiktok: {privacy: SELF_ONLY, allow_comment: true, brand_organic: true}\n",
    );
    let mut cmd = env.cmd();
    cmd.env(SECRET_VAR, "s3cret")
        .env("RUST_LOG", "debug")
        .args(["watch", "--once"]);
    let out = common::run(cmd).await;
    assert!(out.status.success(), "{}", stderr(&out));
    no_secret_in(&env, &[&said, &listed, &stdout(&out), &stderr(&out)]).await;

    let posts = sandbox_get(&env, "/__sandbox/tiktok/posts").await;
    let posts = posts.as_array().cloned().unwrap_or_default();
    assert_eq!(posts.len(), 1, "{posts:?}\n{}", stderr(&out));
    let post = &posts[0];
    let bytes = std::fs::read(media("clip.mp4")).unwrap();
    assert_eq!(post["sha256"], sha256_hex(&bytes));
    let info = &post["post_info"];
    assert_eq!(info["title"], "funny #cat video");
    assert_eq!(info["privacy_level"], "SELF_ONLY");
    assert_eq!(info["disable_comment"], false);
    assert_eq!(info["disable_duet"], true);
    assert_eq!(info["disable_stitch"], true);
    assert_eq!(info["video_cover_timestamp_ms"], 1000);
    assert_eq!(info["brand_organic_toggle"], true);
    assert_eq!(info["brand_content_toggle"], false);
    assert_eq!(info["is_aigc"], true);
    assert!(env.path("done/clip.mp4").exists(), "{}", stderr(&out));
    let receipt = common::read_json(&env.path("done/clip.receipt.json"));
    assert_eq!(
        receipt["url"],
        format!(
            "https://www.tiktok.com/@dropcast_sandbox/video/{}",
            post["post_id"].as_str().unwrap_or_default()
        ),
        "{receipt}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unaudited_app_posting_publicly_is_refused_before_upload() {
    let env = env(TiktokOptions {
        audited: false,
        ..quick()
    })
    .await;
    login(&env).await;
    std::fs::copy(media("clip.mp4"), env.inbox().join("clip.mp4")).unwrap();
    env.write_inbox(
        "clip.yaml",
        "text: hi\ntiktok: {privacy: PUBLIC_TO_EVERYONE}\n",
    );
    let mut cmd = env.cmd();
    cmd.env(SECRET_VAR, "s3cret").args(["watch", "--once"]);
    let out = common::run(cmd).await;
    let requests = sandbox_get(&env, "/__sandbox/tiktok/requests").await;
    assert_eq!(requests["chunk"], 0, "no byte went: {requests}");
    let reason = env.failure_reason("failed/clip.error.json");
    assert!(
        reason.contains("unaudited_client_can_only_post_to_private_accounts"),
        "{reason}\n{}",
        stderr(&out)
    );
}

/// The reason `clip.mp4` failed with, once it is sure TikTok got neither an init nor a
/// byte of it.
async fn refused_before_upload(env: &Env) -> String {
    let requests = sandbox_get(env, "/__sandbox/tiktok/requests").await;
    assert_eq!(
        (requests["init"].as_u64(), requests["chunk"].as_u64()),
        (Some(0), Some(0)),
        "{requests}"
    );
    env.failure_reason("failed/clip.error.json")
}

/// One video through `watch --once` (caption `SELF_ONLY`); returns the output.
async fn post_once(env: &Env) -> std::process::Output {
    env.write_inbox("clip.yaml", "text: hi\ntiktok: {privacy: SELF_ONLY}\n");
    let mut cmd = env.cmd();
    cmd.env(SECRET_VAR, "s3cret").args(["watch", "--once"]);
    common::run(cmd).await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_too_long_video_is_refused_before_upload() {
    let mut creator =
        dropcast::sandbox::TiktokCreator::public("dropcast_sandbox", "Dropcast Sandbox");
    creator.max_video_post_duration_sec = 1;
    let env = env(TiktokOptions {
        creators: vec![creator],
        ..quick()
    })
    .await;
    login(&env).await;
    std::fs::copy(media("clip.mp4"), env.inbox().join("clip.mp4")).unwrap();
    let out = post_once(&env).await;
    let reason = refused_before_upload(&env).await;
    assert!(
        reason.contains("duration") && reason.contains("at most 1 s"),
        "{reason}\n{}",
        stderr(&out)
    );
}

// The "150 MB in sequential chunks whose last chunk absorbs the remainder", with a
// chunk answer lost and a 503: one publish_id, bytes intact.
#[tokio::test(flavor = "multi_thread")]
async fn a_150_mb_video_in_sequential_chunks_survives_a_lost_answer_and_a_503() {
    use dropcast::sandbox::{Fault, FaultAction, FaultStep};
    let env = env(quick()).await;
    login(&env).await;
    let bytes = common::fixtures::big_mp4(143, 30_000, 3);
    assert!(bytes.len() > 149_000_000 && bytes.len() < 151_000_000);
    env.write_inbox("clip.mp4", &bytes);
    let faults = [
        Fault::new(FaultStep::TiktokChunk, FaultAction::DropAnswer)
            .after(2)
            .times(1),
        Fault::new(
            FaultStep::TiktokChunk,
            FaultAction::Status {
                status: 503,
                retry_after: None,
                body: None,
            },
        )
        .after(5)
        .times(1),
    ];
    let url = format!(
        "{}/__sandbox/faults",
        env.sandbox.base_url().trim_end_matches('/')
    );
    for f in faults {
        let r = reqwest::Client::new()
            .post(&url)
            .json(&f)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    }
    let out = post_once(&env).await;
    let publishes = sandbox_get(&env, "/__sandbox/tiktok/publishes").await;
    let publishes = publishes.as_array().cloned().unwrap_or_default();
    assert_eq!(
        publishes.len(),
        1,
        "one init: {publishes:?}\n{}",
        stderr(&out)
    );
    let p = &publishes[0];
    assert_eq!(p["sha256"], sha256_hex(&bytes), "{}", stderr(&out));
    assert_eq!(p["chunk_size"], 16_777_216);
    let chunks = bytes.len() as u64 / 16_777_216;
    assert_eq!(p["total_chunk_count"], chunks);
    // Each fault cost one more PUT: the lost one re-sent (a 416 saying the server has it)
    // and the 503 one re-sent.
    let requests = sandbox_get(&env, "/__sandbox/tiktok/requests").await;
    assert_eq!(
        requests["chunk"].as_u64(),
        Some(chunks + 2),
        "{requests}\n{}",
        stderr(&out)
    );
    assert!(env.path("done/clip.mp4").exists(), "{}", stderr(&out));
}

async fn add_fault(env: &Env, fault: &dropcast::sandbox::Fault) {
    let url = format!(
        "{}/__sandbox/faults",
        env.sandbox.base_url().trim_end_matches('/')
    );
    let r = reqwest::Client::new()
        .post(&url)
        .json(fault)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
}

async fn sandbox_post(env: &Env, path: &str, body: Value) -> Value {
    let url = format!("{}{path}", env.sandbox.base_url().trim_end_matches('/'));
    let r = reqwest::Client::new()
        .post(url)
        .json(&body)
        .send()
        .await
        .unwrap();
    r.json().await.unwrap_or(Value::Null)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_429_is_waited_out() {
    use dropcast::sandbox::{Fault, FaultAction, FaultStep};
    let env = env(quick()).await;
    login(&env).await;
    let limited = FaultAction::Status {
        status: 429,
        retry_after: Some(1),
        body: None,
    };
    add_fault(
        &env,
        &Fault::new(FaultStep::TiktokCreatorInfo, limited.clone()).times(1),
    )
    .await;
    add_fault(&env, &Fault::new(FaultStep::TiktokInit, limited).times(1)).await;
    std::fs::copy(media("clip.mp4"), env.inbox().join("clip.mp4")).unwrap();
    let out = post_once(&env).await;
    assert!(env.path("done/clip.mp4").exists(), "{}", stderr(&out));
    let requests = sandbox_get(&env, "/__sandbox/tiktok/requests").await;
    assert_eq!(requests["init"].as_u64(), Some(2), "{requests}");
    let posts = sandbox_get(&env, "/__sandbox/tiktok/posts").await;
    assert_eq!(posts.as_array().map(Vec::len), Some(1));
}

// The access token dies while the bytes go up: the status call after them is refused,
// the token is refreshed (rotating the refresh token) and the post completes.
#[tokio::test(flavor = "multi_thread")]
async fn an_access_token_expiring_mid_upload_is_refreshed_with_rotation() {
    use dropcast::sandbox::{Fault, FaultAction, FaultStep};
    let env = env(quick()).await;
    login(&env).await;
    let before = std::fs::read_to_string(env.path(".dropcast/tokens/global.json")).unwrap();
    env.write_inbox("clip.mp4", common::fixtures::big_mp4(70, 0, 5));
    add_fault(
        &env,
        &Fault::new(FaultStep::TiktokChunk, FaultAction::Hold)
            .after(1)
            .times(1),
    )
    .await;
    env.write_inbox("clip.yaml", "text: hi\ntiktok: {privacy: SELF_ONLY}\n");
    let mut cmd = env.cmd();
    cmd.env(SECRET_VAR, "s3cret").args(["watch", "--once"]);
    let run = tokio::spawn(common::run(cmd));
    // Wait for the held second chunk, expire every access token, let it go.
    tokio::time::timeout(Duration::from_secs(60), env.sandbox.wait_held(1))
        .await
        .expect("the second chunk is held");
    sandbox_post(
        &env,
        "/__sandbox/tiktok/expire",
        serde_json::json!({"access": true}),
    )
    .await;
    env.sandbox.release();
    let out = run.await.unwrap();
    assert!(env.path("done/clip.mp4").exists(), "{}", stderr(&out));
    let after = std::fs::read_to_string(env.path(".dropcast/tokens/global.json")).unwrap();
    let refresh = |t: &str| serde_json::from_str::<Value>(t).unwrap()["refresh_token"].clone();
    assert_ne!(
        refresh(&before),
        refresh(&after),
        "the refresh token rotated"
    );
    let tokens = sandbox_get(&env, "/__sandbox/tiktok/tokens").await;
    let old = refresh(&before);
    let old_state = tokens["refresh"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["token"] == old)
        .map(|t| t["state"].clone());
    assert_eq!(old_state, Some(Value::from("rotated")), "{tokens}");
    assert!(
        !stderr(&out).contains(old.as_str().unwrap()),
        "a token in the log"
    );
}

// kill -9 while a chunk is on the wire: the restart asks the server where it stands
// (its 416 `Content-Range`) and finishes the same publish_id; never a second init.
#[tokio::test(flavor = "multi_thread")]
async fn a_kill_mid_upload_resumes_the_same_publish_id() {
    use dropcast::sandbox::{Fault, FaultAction, FaultStep};
    let env = env(quick()).await;
    login(&env).await;
    let bytes = common::fixtures::big_mp4(80, 123, 9);
    env.write_inbox("clip.mp4", &bytes);
    env.write_inbox("clip.yaml", "text: hi\ntiktok: {privacy: SELF_ONLY}\n");
    add_fault(
        &env,
        &Fault::new(FaultStep::TiktokChunk, FaultAction::Hold)
            .after(2)
            .times(1),
    )
    .await;
    let mut first = std::process::Command::new(assert_cmd::cargo::cargo_bin!("dropcast"));
    first
        .arg("-c")
        .arg(&env.config)
        .args(["watch", "--once"])
        .env(SECRET_VAR, "s3cret")
        .env_remove("DROPCAST_CONFIG")
        .current_dir(env.path(""))
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut child = first.spawn().unwrap();
    tokio::time::timeout(Duration::from_secs(60), env.sandbox.wait_held(1))
        .await
        .expect("the third chunk is held");
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    env.sandbox.release();

    let mut again = env.cmd();
    again.env(SECRET_VAR, "s3cret").args(["watch", "--once"]);
    let out = common::run(again).await;
    assert!(env.path("done/clip.mp4").exists(), "{}", stderr(&out));
    let publishes = sandbox_get(&env, "/__sandbox/tiktok/publishes").await;
    let publishes = publishes.as_array().cloned().unwrap_or_default();
    assert_eq!(publishes.len(), 1, "one publish_id: {publishes:?}");
    assert_eq!(publishes[0]["sha256"], sha256_hex(&bytes));
    assert!(
        stderr(&out).contains("resuming the upload"),
        "{}",
        stderr(&out)
    );
}

// Regression (issue 12 item 7): with `platform.sandbox: true` each command starts its own simulator, and the tokens `dropcast login` got were unknown to the next `watch`.
#[tokio::test(flavor = "multi_thread")]
async fn in_sandbox_mode_a_login_then_a_separate_watch_publishes() {
    let env = Env::configured(
        SandboxOptions::default(),
        &[
            ("platform", "{sandbox: true}"),
            (
                "accounts",
                &format!(
                    "{{global: {{platform: tiktok, client_key: aw1sandbox, client_secret_env: {SECRET_VAR}}}}}"
                ),
            ),
        ],
        "",
    )
    .await;
    let mut cmd = env.cmd();
    cmd.env(SECRET_VAR, "s3cret")
        .args(["login", "global", "--headless"]);
    let out = common::run(cmd).await;
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));

    std::fs::copy(media("clip.mp4"), env.inbox().join("clip.mp4")).unwrap();
    env.write_inbox("clip.yaml", "text: hello\ntiktok: {privacy: SELF_ONLY}\n");
    let mut cmd = env.cmd();
    cmd.env(SECRET_VAR, "s3cret").args(["watch", "--once"]);
    let out = common::run(cmd).await;
    let log = stderr(&out);
    assert!(out.status.success(), "{log}");
    assert!(
        !log.contains("dropcast login global"),
        "the session works: {log}"
    );
    let receipt = env.path("done/clip.receipt.json");
    assert!(common::archived(&receipt), "{log}");
    let receipt = common::read_json(&receipt);
    assert_eq!(receipt["platform"], "tiktok", "{receipt}");
}

// Regression (issue 12 item 6): a video TikTok's media rules refuse (each side 360–4096 px) was uploaded and refused only after every byte.
#[tokio::test(flavor = "multi_thread")]
async fn a_video_breaking_tiktoks_media_limits_fails_before_a_byte_with_the_limit() {
    let env = env(quick()).await;
    login(&env).await;
    let small = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/media/h264-faststart.mp4");
    std::fs::copy(&small, env.inbox().join("clip.mp4")).unwrap();
    let out = post_once(&env).await;
    let reason = refused_before_upload(&env).await;
    assert_eq!(
        reason,
        "picture 160×90, TikTok allows each side from 360 to 4096 pixels through the API",
        "{}",
        stderr(&out)
    );
}

/// A config with a `douyin` account `studio` and a `tiktok` account `global`, both on
/// the simulator, the one driven through `chromium`.
async fn two_platform_env(chromium: &std::path::Path) -> Env {
    configured(quick(), |api, url| {
        (
            format!(
                "{{sandbox: false, timeout: 20s, browser: \"{}\", \
                 douyin: {{creator_url: \"{url}\", vod_url: \"{url}\", imagex_url: \"{url}\", upload_scheme: http}}, \
                 tiktok: {{api_url: \"{api}\", auth_url: \"{api}\"}}}}",
                chromium.display()
            ),
            format!("studio: {{platform: douyin}}, {GLOBAL}"),
        )
    })
    .await
}

/// [`two_platform_env`] with both accounts logged in; `None` when the browser tests are
/// skipped.
async fn two_platforms_logged_in() -> Option<Env> {
    let chromium = common::douyin::chromium()?;
    let env = two_platform_env(&chromium).await;
    common::douyin::login_by_scanning(&env).await;
    login(&env).await;
    Some(env)
}

/// `clip.mp4` into the inbox for both accounts, `SELF_ONLY` on TikTok.
fn drop_clip_to_both(env: &Env, text: &str) {
    std::fs::copy(media("clip.mp4"), env.inbox().join("clip.mp4")).unwrap();
    env.write_inbox(
        "clip.yaml",
        format!("text: {text}\naccount: [studio, global]\ntiktok: {{privacy: SELF_ONLY}}\n"),
    );
}

/// `watch --once` with the app secret; returns the output.
async fn watch_once(env: &Env, failpoint: Option<&str>) -> std::process::Output {
    let mut cmd = env.cmd();
    cmd.env(SECRET_VAR, "s3cret").args(["watch", "--once"]);
    if let Some(point) = failpoint {
        cmd.env("DROPCAST_FAILPOINT", point);
    }
    common::run(cmd).await
}

/// The posts the simulator holds on `platform` (`douyin` or `tiktok`).
async fn posts_on(env: &Env, platform: &str) -> Vec<Value> {
    let posts = sandbox_get(env, &format!("/__sandbox/{platform}/posts")).await;
    posts.as_array().cloned().unwrap_or_default()
}

// Issue 12 item 5: one drop to a Douyin and a TikTok account gives one post on each and
// one receipt; a drop whose TikTok target is refused still posts on Douyin.
#[tokio::test(flavor = "multi_thread")]
async fn one_drop_to_a_douyin_and_a_tiktok_account_posts_on_each_with_one_receipt() {
    let Some(env) = two_platforms_logged_in().await else {
        return;
    };

    drop_clip_to_both(&env, "\"both #cat\"");
    let out = watch_once(&env, None).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let (douyin, tiktok) = (
        posts_on(&env, "douyin").await,
        posts_on(&env, "tiktok").await,
    );
    assert_eq!((douyin.len(), tiktok.len()), (1, 1), "{}", stderr(&out));
    let receipt = common::read_json(&env.path("done/clip.receipt.json"));
    assert_eq!(receipt["outcome"], "published", "{receipt}");
    assert_eq!(receipt["file"], "clip.mp4", "{receipt}");
    assert!(
        receipt.get("post_id").is_none(),
        "several targets: {receipt}"
    );
    let targets = receipt["targets"].as_array().unwrap();
    assert_eq!(targets.len(), 2, "{receipt}");
    let (studio, global) = (&targets[0], &targets[1]);
    assert_eq!(
        (&studio["account"], &studio["platform"], &studio["outcome"]),
        (&json!("studio"), &json!("douyin"), &json!("published")),
        "{receipt}"
    );
    assert_eq!(studio["aweme_id"], studio["post_id"], "{receipt}");
    assert_eq!(studio["post_id"], douyin[0]["item_id"], "{receipt}");
    assert_eq!(
        (&global["account"], &global["platform"], &global["outcome"]),
        (&json!("global"), &json!("tiktok"), &json!("published")),
        "{receipt}"
    );
    assert_eq!(global["post_id"], tiktok[0]["post_id"], "{receipt}");
    assert!(global.get("aweme_id").is_none(), "{receipt}");
    assert!(!env.inbox().join("clip.mp4").exists());
    // `history` shows the drop once per target.
    let history = json_of(&env, &["history"]).await;
    let mut rows: Vec<(String, String)> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["account"].to_string(), p["file"].to_string()))
        .collect();
    rows.sort();
    assert_eq!(
        rows,
        [
            ("\"global\"".to_owned(), "\"clip.mp4\"".to_owned()),
            ("\"studio\"".to_owned(), "\"clip.mp4\"".to_owned())
        ],
        "{history}"
    );

    // The TikTok target has no privacy (TikTok requires one): it fails, Douyin posts,
    // and the bundle goes to done/ with both outcomes.
    env.write_inbox("two.mp4", common::fixtures::big_mp4(1, 0, 9));
    env.write_inbox("two.yaml", "text: only douyin\naccount: [studio, global]\n");
    let out = watch_once(&env, None).await;
    let (douyin, tiktok) = (
        posts_on(&env, "douyin").await,
        posts_on(&env, "tiktok").await,
    );
    assert_eq!((douyin.len(), tiktok.len()), (2, 1), "{}", stderr(&out));
    let receipt = common::read_json(&env.path("done/two.receipt.json"));
    assert_eq!(receipt["outcome"], "published", "{receipt}");
    let targets = receipt["targets"].as_array().unwrap();
    assert_eq!(targets[0]["outcome"], "published", "{receipt}");
    assert_eq!(targets[1]["outcome"], "failed", "{receipt}");
    assert_eq!(targets[1]["account"], "global", "{receipt}");
    let reason = targets[1]["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("privacy"), "{receipt}");
    assert!(!env.path("failed/two.mp4").exists());

    // Fixed in done/, the TikTok target is retried where the video lies: one TikTok post
    // more, none on Douyin, and the receipt there says both posted.
    std::fs::write(
        env.path("done/two.yaml"),
        "text: only douyin\naccount: [studio, global]\ntiktok: {privacy: SELF_ONLY}\n",
    )
    .unwrap();
    let hash = receipt["sha256"].as_str().unwrap()[..12].to_owned();
    let mut cmd = env.cmd();
    cmd.env(SECRET_VAR, "s3cret")
        .args(["retry", &hash, "--account", "global"]);
    let out = common::run(cmd).await;
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    assert!(stdout(&out).contains("where it lies"), "{}", stdout(&out));
    let (douyin, tiktok) = (
        posts_on(&env, "douyin").await,
        posts_on(&env, "tiktok").await,
    );
    assert_eq!((douyin.len(), tiktok.len()), (2, 2), "{}", stderr(&out));
    let receipt = common::read_json(&env.path("done/two.receipt.json"));
    let targets = receipt["targets"].as_array().unwrap();
    assert_eq!(targets.len(), 2, "{receipt}");
    assert_eq!(targets[1]["outcome"], "published", "{receipt}");
    assert_eq!(targets[1]["post_id"], tiktok[1]["post_id"], "{receipt}");
    assert_eq!(targets[1]["file"], "two.mp4", "{receipt}");
    assert_eq!(targets[0]["post_id"], douyin[1]["item_id"], "{receipt}");
    assert!(
        env.path("done/two.mp4").exists(),
        "the video stays where it lies"
    );
    assert!(!env.inbox().join("two.mp4").exists());
}

// Issue 12 item 5: a crash between two targets (the first posted, the second not begun)
// loses nothing and posts nothing twice: the run after it posts the second only.
#[tokio::test(flavor = "multi_thread")]
async fn a_crash_between_targets_posts_the_rest_once() {
    let Some(env) = two_platforms_logged_in().await else {
        return;
    };
    drop_clip_to_both(&env, "both");
    let out = watch_once(&env, Some("after_commit:published")).await;
    assert!(
        !out.status.success(),
        "the failpoint aborts: {}",
        stderr(&out)
    );
    let (douyin, tiktok) = (
        posts_on(&env, "douyin").await,
        posts_on(&env, "tiktok").await,
    );
    assert_eq!((douyin.len(), tiktok.len()), (1, 0), "{}", stderr(&out));
    assert!(env.inbox().join("clip.mp4").exists(), "nothing moved yet");

    let out = watch_once(&env, None).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let (douyin, tiktok) = (
        posts_on(&env, "douyin").await,
        posts_on(&env, "tiktok").await,
    );
    assert_eq!((douyin.len(), tiktok.len()), (1, 1), "{}", stderr(&out));
    let receipt = common::read_json(&env.path("done/clip.receipt.json"));
    let outcomes: Vec<&Value> = receipt["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| &t["outcome"])
        .collect();
    assert_eq!(
        outcomes,
        [&json!("published"), &json!("published")],
        "{receipt}"
    );
}

// The dead end of `dropcast retry` after TikTok's status said FAILED: the retried job
// polled the same dead publish_id and failed again, forever. Now the retry inits anew.
#[tokio::test(flavor = "multi_thread")]
async fn a_retry_after_a_failed_publish_id_posts_once_with_a_new_publish_id() {
    let env = env(quick()).await;
    login(&env).await;
    sandbox_post(
        &env,
        "/__sandbox/tiktok/fail_next",
        serde_json::json!({"reason": "spam_risk_text"}),
    )
    .await;
    std::fs::copy(media("clip.mp4"), env.inbox().join("clip.mp4")).unwrap();
    let out = post_once(&env).await;
    assert!(!out.status.success(), "the job failed: {}", stderr(&out));
    assert!(env.path("failed/clip.mp4").exists(), "{}", stderr(&out));
    let reason = env.failure_reason("failed/clip.error.json");
    let publishes = sandbox_get(&env, "/__sandbox/tiktok/publishes").await;
    let first = publishes[0]["publish_id"].as_str().unwrap().to_owned();
    assert_eq!(publishes[0]["status"], "FAILED", "{publishes}");
    for words in [
        "spam_risk_text",
        first.as_str(),
        "never post",
        "`dropcast retry` starts a new upload",
    ] {
        assert!(reason.contains(words), "{words}: {reason}");
    }

    let bytes = std::fs::read(media("clip.mp4")).unwrap();
    let hash = sha256_hex(&bytes);
    let mut cmd = env.cmd();
    cmd.env(SECRET_VAR, "s3cret").args(["retry", &hash[..12]]);
    let retried = common::run(cmd).await;
    let said = stdout(&retried);
    assert!(retried.status.success(), "{said}{}", stderr(&retried));
    assert!(
        said.contains("requeued") && said.contains("starts a new upload"),
        "{said}"
    );

    let mut cmd = env.cmd();
    cmd.env(SECRET_VAR, "s3cret").args(["watch", "--once"]);
    let out = common::run(cmd).await;
    let log = stderr(&out);
    assert!(out.status.success(), "{log}");
    assert!(env.path("done/clip.mp4").exists(), "{log}");
    let publishes = sandbox_get(&env, "/__sandbox/tiktok/publishes").await;
    let publishes = publishes.as_array().cloned().unwrap_or_default();
    assert_eq!(publishes.len(), 2, "one new init: {publishes:?}");
    let second = publishes[1]["publish_id"].as_str().unwrap();
    assert_ne!(second, first);
    let posts = sandbox_get(&env, "/__sandbox/tiktok/posts").await;
    let posts = posts.as_array().cloned().unwrap_or_default();
    assert_eq!(posts.len(), 1, "exactly one post: {posts:?}");
    assert_eq!(posts[0]["publish_id"], second);
    assert_eq!(posts[0]["sha256"], hash);
    let receipt = common::read_json(&env.path("done/clip.receipt.json"));
    assert_eq!(receipt["post_id"], posts[0]["post_id"], "{receipt}");
    assert!(
        !log.contains("lists lag"),
        "a new upload is not reconciled as if it had been sent: {log}"
    );
}

/// `dropcast ARGS… --json` with the app secret, its stdout as JSON.
async fn json_of(env: &Env, args: &[&str]) -> Value {
    let mut cmd = env.cmd();
    cmd.env(SECRET_VAR, "s3cret").args(args).arg("--json");
    let out = common::run(cmd).await;
    assert!(out.status.success(), "{}", stderr(&out));
    serde_json::from_str(&stdout(&out)).unwrap_or_else(|e| panic!("{e}: {}", stdout(&out)))
}

/// Issue 12 item 3: a post TikTok completed while moderation still hides its public id ends
/// the job at once (done/, receipt "awaiting moderation"); the running agent fills the id
/// in, in the receipt and the ledger, once moderation ends.
#[tokio::test(flavor = "multi_thread")]
async fn a_post_awaiting_moderation_is_archived_at_once_and_its_public_id_filled_in_later() {
    let env = env(TiktokOptions {
        moderation: Duration::from_secs(600),
        ..quick()
    })
    .await;
    login(&env).await;
    std::fs::copy(media("clip.mp4"), env.inbox().join("clip.mp4")).unwrap();
    env.write_inbox("clip.yaml", "text: hi\ntiktok: {privacy: SELF_ONLY}\n");
    let log = env.path("agent.log");
    let child = env
        .cmd()
        .env(SECRET_VAR, "s3cret")
        .arg("watch")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let agent = common::Agent { child, log };
    let receipt = agent
        .wait_for_archive(env.path("done/clip.receipt.json"), 120)
        .await;

    let publishes = sandbox_get(&env, "/__sandbox/tiktok/publishes").await;
    let publish_id = publishes[0]["publish_id"].as_str().unwrap().to_owned();
    let pending = common::read_json(&receipt);
    assert_eq!(pending["post_state"], "awaiting_moderation", "{pending}");
    assert_eq!(pending["post_id"], publish_id.as_str());
    assert_eq!(pending["url"], "");
    assert!(pending["note"].as_str().unwrap().contains("moderation"));
    let status = json_of(&env, &["status"]).await;
    assert_eq!(
        status["not_public"][0]["post_state"], "awaiting_moderation",
        "{status}"
    );
    let history = json_of(&env, &["history"]).await;
    assert_eq!(history[0]["post_state"], "awaiting_moderation", "{history}");
    assert_eq!(history[0]["post_id"], Value::Null);

    // Moderation ends (the simulator's clock moves past it).
    sandbox_post(&env, "/__sandbox/advance?seconds=700", Value::Null).await;
    let public_id = wait_for_public_id(&env).await;
    let probe = receipt.clone();
    let wanted = public_id.clone();
    common::wait_until(Duration::from_secs(120), move || {
        std::fs::read_to_string(&probe).is_ok_and(|t| t.contains(&wanted))
    })
    .await
    .unwrap_or_else(|_| panic!("the receipt was never rewritten:\n{}", agent.log_text()));
    let public = common::read_json(&receipt);
    let url = format!("https://www.tiktok.com/@dropcast_sandbox/video/{public_id}");
    assert_eq!(public["post_id"], public_id.as_str());
    assert_eq!(public["url"], url.as_str());
    assert!(public.get("post_state").is_none(), "{public}");
    assert_eq!(public["sha256"], pending["sha256"]);
    let history = wait_for_history_id(&env, &public_id).await;
    assert_eq!(history[0]["url"], url.as_str());
    assert!(history[0].get("post_state").is_none(), "{history}");
    let status = json_of(&env, &["status"]).await;
    assert_eq!(status["not_public"], serde_json::json!([]), "{status}");
    // No file was lost or left half-written beside the receipt.
    let mut names: Vec<String> = std::fs::read_dir(env.path("done"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["clip.mp4", "clip.receipt.json", "clip.yaml"]);
}

/// The simulator's public id of its only post, once moderation made it public.
async fn wait_for_public_id(env: &Env) -> String {
    for _ in 0..600 {
        let posts = sandbox_get(env, "/__sandbox/tiktok/posts").await;
        if let Some(id) = posts[0]["post_id"].as_str() {
            return id.to_owned();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the simulator never made the post public");
}

/// `history --json` once the ledger has the public id.
async fn wait_for_history_id(env: &Env, id: &str) -> Value {
    for _ in 0..120 {
        let history = json_of(env, &["history"]).await;
        if history[0]["post_id"] == id {
            return history;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    panic!("the ledger never got the public id {id}");
}

/// Issue 12 item 3: in inbox mode the job ends when the draft reaches the creator's inbox;
/// receipt and status say so and how to finish it, with no made-up address.
#[tokio::test(flavor = "multi_thread")]
async fn an_inbox_draft_is_archived_as_in_the_creators_inbox_with_what_to_do() {
    let env = env(quick()).await;
    let config = std::fs::read_to_string(&env.config).unwrap();
    let inbox_mode = config.replace(
        &format!("client_secret_env: {SECRET_VAR}}}"),
        &format!("client_secret_env: {SECRET_VAR}, mode: inbox}}"),
    );
    assert_ne!(config, inbox_mode);
    std::fs::write(&env.config, inbox_mode).unwrap();
    login(&env).await;
    std::fs::copy(media("clip.mp4"), env.inbox().join("clip.mp4")).unwrap();
    let out = post_once(&env).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let publishes = sandbox_get(&env, "/__sandbox/tiktok/publishes").await;
    assert_eq!(publishes[0]["mode"], "inbox", "{publishes}");
    assert_eq!(publishes[0]["status"], "SEND_TO_USER_INBOX", "{publishes}");

    let receipt = common::read_json(&env.path("done/clip.receipt.json"));
    assert_eq!(receipt["post_state"], "in_creator_inbox", "{receipt}");
    assert_eq!(receipt["url"], "");
    assert_eq!(receipt["post_id"], publishes[0]["publish_id"]);
    let note = receipt["note"].as_str().unwrap();
    assert!(
        note.contains("finish") && note.contains("TikTok app"),
        "{note}"
    );

    let status = json_of(&env, &["status"]).await;
    let listed = &status["not_public"][0];
    assert_eq!(listed["post_state"], "in_creator_inbox", "{status}");
    assert_eq!(listed["note"], note);
    let mut cmd = env.cmd();
    cmd.env(SECRET_VAR, "s3cret").arg("status");
    let text = stdout(&common::run(cmd).await);
    assert!(
        text.contains("Not public yet") && text.contains("in the creator's inbox"),
        "{text}"
    );
    assert!(text.contains("TikTok app"), "{text}");
    let mut cmd = env.cmd();
    cmd.env(SECRET_VAR, "s3cret").arg("history");
    let text = stdout(&common::run(cmd).await);
    assert!(text.contains("(in the creator's inbox)"), "{text}");
}

// Regression (issue 14 merge): TikTok posts as its upload completes, and the posting plan waited for a slot only after the upload, so a planned video went out at once.
#[tokio::test(flavor = "multi_thread")]
async fn a_planned_tiktok_video_waits_for_its_slot_before_its_upload() {
    let env = env(quick()).await;
    login(&env).await;
    let text = std::fs::read_to_string(&env.config).unwrap();
    let plan = "publish: {retry: {attempts: 3, initial: 50ms, max: 500ms}, plan: {windows: [\"00:00-24:00\"], time_zone: UTC, daily_max: 100, min_gap: 1h, jitter: 0s}}";
    let text: Vec<String> = text
        .lines()
        .map(|l| match l.starts_with("publish:") {
            true => plan.to_owned(),
            false => l.to_owned(),
        })
        .collect();
    std::fs::write(&env.config, text.join("\n") + "\n").unwrap();
    for n in 0..2u8 {
        let video = env.inbox().join(format!("v{n}.mp4"));
        std::fs::write(&video, common::fixtures::clip_variant(n)).unwrap();
        env.write_inbox(
            format!("v{n}.yaml"),
            "text: hi\ntiktok: {privacy: SELF_ONLY}\n",
        );
    }
    let mut cmd = env.cmd();
    cmd.env(SECRET_VAR, "s3cret").args(["watch", "--once"]);
    let out = common::run(cmd).await;
    let log = stderr(&out);
    assert!(out.status.success(), "{log}");
    // The first slot is now; the second is an hour later, so its video is not sent yet.
    let publishes = sandbox_get(&env, "/__sandbox/tiktok/publishes").await;
    let publishes = publishes.as_array().cloned().unwrap_or_default();
    assert_eq!(publishes.len(), 1, "{publishes:?}\n{log}");
    let waiting: Vec<_> = ["v0.mp4", "v1.mp4"]
        .into_iter()
        .filter(|v| env.inbox().join(v).exists())
        .collect();
    assert_eq!(waiting.len(), 1, "{log}");
    let slots: Vec<Option<i64>> = env
        .ledger()
        .prepare("SELECT planned_at FROM jobs ORDER BY planned_at")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let [Some(first), Some(second)] = slots[..] else {
        panic!("{slots:?}")
    };
    assert!(second - first >= 3_600_000, "{slots:?}");
    assert!(log.contains("the post waits for its planned slot"), "{log}");
}
