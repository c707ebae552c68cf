//! The `douyin` platform end to end: the real binary, real headless Chromium, and the
//! simulator of docs/douyin-creator.md started by the test. `dropcast login` by scanning
//! the QR code it prints, then a bundle published once with its bytes and every create_v2
//! field as the page says, and a lost create answer reconciled without a second create.
//!
//! Needs Chromium (CI installs it; `CHROME_BIN` overrides the program). Without it each test
//! is skipped with one `SKIPPED (needs Chromium…)` line, or fails when
//! `DROPCAST_REQUIRE_TOOLS` is set (src/test_tools.rs); `DROPCAST_SKIP_BROWSER=1` skips them.

mod common;

use std::path::Path;

use common::douyin::*;
use common::*;
use dropcast::sandbox::{Fault, FaultAction, FaultStep, SandboxOptions};
use serde_json::{Value, json};

/// A simulator with `options` and a config with one `douyin` account, `studio`, on it.
async fn douyin_env(options: SandboxOptions, chromium: &Path) -> Env {
    let platform = |url: &str| {
        format!(
            "{{sandbox: false, timeout: 20s, browser: \"{}\", douyin: {{creator_url: \"{url}\", \
             vod_url: \"{url}\", imagex_url: \"{url}\", upload_scheme: http}}}}",
            chromium.display()
        )
    };
    // The simulator's address is known once it runs: write the config after.
    let env = Env::configured(options, &[("accounts", "{studio: {platform: douyin}}")], "").await;
    let url = env.sandbox.base_url();
    let text = std::fs::read_to_string(&env.config).unwrap();
    let text: String = text
        .lines()
        .map(|l| {
            if l.starts_with("platform:") {
                format!("platform: {}\n", platform(&url))
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    std::fs::write(&env.config, text).unwrap();
    env
}

async fn sandbox_json(env: &Env, path: &str) -> Value {
    let url = format!("{}{path}", env.sandbox.base_url());
    reqwest::get(url).await.unwrap().json().await.unwrap()
}

// Regression (issue 11 item 3): there was no way to log a `douyin` account in, nor to publish with it.
#[tokio::test(flavor = "multi_thread")]
async fn login_by_qr_then_a_bundle_is_published_once_with_every_field_as_the_page_says() {
    let Some(chromium) = chromium() else { return };
    let env = douyin_env(SandboxOptions::default(), &chromium).await;
    login_by_scanning(&env).await;

    let accounts = env.run(&["accounts"]).await;
    let text = String::from_utf8_lossy(&accounts.stdout);
    assert!(accounts.status.success(), "{text}");
    assert!(
        text.contains("studio") && text.contains("douyin") && text.contains("遇见工作室"),
        "{text}"
    );
    assert!(text.contains("session works"), "{text}");

    let video = clip_variant(41);
    std::fs::write(env.inbox().join("clip.mp4"), &video).unwrap();
    std::fs::write(
        env.inbox().join("clip.yaml"),
        "text: \"遇见就是一种缘分 😀 #音乐 #旅行 @小明\"\nmentions: {小明: \"84990209480\"}\n\
         title: 遇见\nvisibility: friends\nai_generated: true\n",
    )
    .unwrap();
    let out = env.watch_once().await;
    assert!(out.status.success(), "{}", stderr(&out));
    let receipt = env.path("done/clip.receipt.json");
    assert!(archived(&receipt), "{}", stderr(&out));

    let posts = sandbox_json(&env, "/__sandbox/douyin/posts").await;
    let posts = posts.as_array().unwrap();
    assert_eq!(posts.len(), 1, "{posts:#?}");
    let post = &posts[0];
    assert_eq!(
        post["sha256"],
        sha256_hex(&video),
        "the bytes arrived intact"
    );
    let common = &post["item"]["common"];
    let text = "遇见就是一种缘分 😀 #音乐 #旅行 @小明";
    assert_eq!(common["text"], text);
    assert_eq!(common["caption"], text);
    assert_eq!(common["item_title"], "遇见");
    assert_eq!(
        common["visibility_type"], 1,
        "friends is 1 on this platform"
    );
    let spans: Value = serde_json::from_str(common["text_extra"].as_str().unwrap()).unwrap();
    // UTF-16 offsets: the emoji is two code units.
    assert_eq!(spans[0]["start"], 12);
    assert_eq!(spans[0]["hashtag_name"], "音乐");
    assert_eq!(spans[2]["type"], 0);
    assert_eq!(spans[2]["user_id"], "84990209480");
    let mentions: Value = serde_json::from_str(common["mentions"].as_str().unwrap()).unwrap();
    assert_eq!(mentions, json!(["84990209480"]));
    let declared = post["item"]["declare"]["user_declare_info"]
        .as_str()
        .unwrap();
    assert_ne!(declared, "{}", "ai_generated is declared");

    let receipt = read_json(&receipt);
    assert_eq!(receipt["platform"], "douyin");
    assert_eq!(receipt["post_id"], post["item_id"]);
    assert_eq!(
        receipt["aweme_id"], post["item_id"],
        "Douyin receipts keep aweme_id"
    );
    assert_eq!(
        receipt["url"],
        format!(
            "https://www.douyin.com/video/{}",
            post["item_id"].as_str().unwrap()
        )
    );
    // Dropped again, it is a duplicate: nothing more is created.
    std::fs::write(env.inbox().join("again.mp4"), &video).unwrap();
    std::fs::write(env.inbox().join("again.yaml"), "text: again\n").unwrap();
    let out = env.watch_once().await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(archived(&env.path("duplicates/again.receipt.json")));
    let posts = sandbox_json(&env, "/__sandbox/douyin/posts").await;
    assert_eq!(posts.as_array().unwrap().len(), 1);
}

// Regression (issue 11 item 1): a create_v2 whose answer is lost must be reconciled through the work list, never sent twice.
#[tokio::test(flavor = "multi_thread")]
async fn a_lost_create_answer_is_reconciled_with_one_create_request() {
    let Some(chromium) = chromium() else { return };
    let options = SandboxOptions {
        // Cut off, not dropped before any byte: Chromium re-sends a request whose reused
        // connection closed without an answer (a POST too), which would be its retry, not ours.
        faults: vec![Fault::new(FaultStep::CreateV2, FaultAction::CutAnswer).times(1)],
        ..SandboxOptions::default()
    };
    let env = douyin_env(options, &chromium).await;
    login_by_scanning(&env).await;
    std::fs::write(env.inbox().join("clip.mp4"), clip_variant(42)).unwrap();
    std::fs::write(env.inbox().join("clip.yaml"), "text: \"遇见 #音乐\"\n").unwrap();
    let out = env.watch_once().await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        archived(&env.path("done/clip.receipt.json")),
        "{}",
        stderr(&out)
    );
    let posts = sandbox_json(&env, "/__sandbox/douyin/posts").await;
    assert_eq!(posts.as_array().unwrap().len(), 1, "{posts:#}");
    let counts = sandbox_json(&env, "/__sandbox/douyin/requests").await;
    assert_eq!(
        counts["create_v2"], 1,
        "one create, its answer lost: {counts:#}"
    );
    assert!(counts["work_list"].as_u64().unwrap() >= 1, "{counts:#}");
}

// Regression (issue 11 item 4): a logged-out `douyin` account must pause with the fix (`dropcast login`), its video kept queued.
#[tokio::test(flavor = "multi_thread")]
async fn a_logged_out_account_pauses_with_the_login_command_and_keeps_its_video() {
    let Some(chromium) = chromium() else { return };
    let env = douyin_env(SandboxOptions::default(), &chromium).await;
    // Never logged in: the page lands on the login page.
    std::fs::write(env.inbox().join("clip.mp4"), clip_variant(43)).unwrap();
    std::fs::write(env.inbox().join("clip.yaml"), "text: hello\n").unwrap();
    let out = env.watch_once().await;
    let log = stderr(&out);
    assert!(log.contains("dropcast login studio"), "{log}");
    assert!(env.inbox().join("clip.mp4").exists(), "kept queued");
    assert!(
        sandbox_json(&env, "/__sandbox/douyin/posts")
            .await
            .as_array()
            .unwrap()
            .is_empty()
    );
    // Logged in, the next run publishes it.
    login_by_scanning(&env).await;
    let out = env.watch_once().await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        archived(&env.path("done/clip.receipt.json")),
        "{}",
        stderr(&out)
    );
}

/// The address of the agent's status server, from its log.
async fn dashboard_of(agent: &Agent) -> String {
    agent.wait_for_log("status server listening").await;
    let log = agent.log_text();
    let at = log.find("address=http://").expect("the address is logged") + "address=".len();
    log[at..]
        .split(|c: char| c.is_whitespace())
        .next()
        .unwrap()
        .to_owned()
}

// Regression (issue 11 item 4): a renewed login was noticed only at the agent's minute re-check, and its QR code was not on the dashboard.
#[tokio::test(flavor = "multi_thread")]
async fn a_logout_mid_queue_pauses_the_account_and_a_login_resumes_it_at_once() {
    let Some(chromium) = chromium() else { return };
    let env = douyin_env(SandboxOptions::default(), &chromium).await;
    let text = std::fs::read_to_string(&env.config).unwrap();
    let text = text
        .replace("timeout: 20s,", "timeout: 20s, browser_idle: 1s,")
        .replace("status: {listen: off}", "status: {listen: \"127.0.0.1:0\"}");
    std::fs::write(&env.config, text).unwrap();
    login_by_scanning(&env).await;
    let agent = env.spawn_watching().await;
    let dashboard = dashboard_of(&agent).await;
    std::fs::write(env.inbox().join("one.mp4"), clip_variant(61)).unwrap();
    std::fs::write(env.inbox().join("one.yaml"), "text: first\n").unwrap();
    agent
        .wait_for_archive(env.path("done/one.receipt.json"), BOUND.as_secs())
        .await;

    // Logged out on the site while the agent runs: the next videos pause the account.
    let logout = format!("{}/__sandbox/douyin/logout", env.sandbox.base_url());
    let res = reqwest::Client::new()
        .post(logout)
        .body("{}")
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "{}", res.status());
    for (name, n) in [("two", 62), ("three", 63)] {
        std::fs::write(env.inbox().join(format!("{name}.mp4")), clip_variant(n)).unwrap();
        std::fs::write(
            env.inbox().join(format!("{name}.yaml")),
            format!("text: {name}\n"),
        )
        .unwrap();
    }
    agent.wait_for_log("dropcast login studio").await;
    assert!(env.inbox().join("two.mp4").exists() && env.inbox().join("three.mp4").exists());
    let posts = sandbox_json(&env, "/__sandbox/douyin/posts").await;
    assert_eq!(posts.as_array().unwrap().len(), 1, "{posts:#}");

    // `dropcast login` beside the running agent: its code is on the agent's dashboard too.
    let (child, token) = start_login(&env).await;
    let jobs: Value = reqwest::get(format!("{dashboard}/api/jobs"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let codes = jobs["login_codes"].as_array().unwrap();
    assert_eq!(codes.len(), 1, "{jobs:#}");
    assert_eq!(codes[0]["account"], "studio");
    let shown = reqwest::get(format!(
        "{dashboard}{}",
        codes[0]["image"].as_str().unwrap()
    ))
    .await
    .unwrap()
    .bytes()
    .await
    .unwrap();
    let text = qr_text(&shown).expect("the dashboard serves a readable code");
    assert!(text.ends_with(&token), "{text}");
    finish_login(&env, child, &token).await;

    // The agent notices the login at once (not at its minute re-check) and publishes both.
    agent
        .wait_for_log("`dropcast login` renewed the session")
        .await;
    agent
        .wait_for_archive(env.path("done/two.receipt.json"), BOUND.as_secs())
        .await;
    agent
        .wait_for_archive(env.path("done/three.receipt.json"), BOUND.as_secs())
        .await;
    let posts = sandbox_json(&env, "/__sandbox/douyin/posts").await;
    assert_eq!(posts.as_array().unwrap().len(), 3, "{posts:#}");
}

/// A real PNG of `width`×`height` (the simulator reads its size from the header).
fn png(width: u32, height: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(width, height, |x, y| {
        image::Rgb([(x % 256) as u8, (y % 256) as u8, 77])
    });
    let mut out = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
        .unwrap();
    out
}

// Regression (issue 11 item 5): a douyin caption's `cover` image was ignored; it must be the post's cover, its bytes intact, once.
#[tokio::test(flavor = "multi_thread")]
async fn a_cover_image_is_published_as_the_posts_cover_and_a_failed_upload_is_retried() {
    let Some(chromium) = chromium() else { return };
    let options = SandboxOptions {
        faults: vec![
            Fault::new(
                FaultStep::ImagexUpload,
                FaultAction::Status {
                    status: 503,
                    retry_after: None,
                    body: None,
                },
            )
            .times(1),
        ],
        ..SandboxOptions::default()
    };
    let env = douyin_env(options, &chromium).await;
    login_by_scanning(&env).await;
    let cover = png(720, 1280);
    std::fs::write(env.inbox().join("clip.mp4"), clip_variant(47)).unwrap();
    std::fs::write(env.inbox().join("cover.png"), &cover).unwrap();
    std::fs::write(
        env.inbox().join("clip.yaml"),
        "text: \"封面 #音乐\"\ncover: cover.png\n",
    )
    .unwrap();
    let out = env.watch_once().await;
    assert!(out.status.success(), "{}", stderr(&out));
    let receipt = env.path("done/clip.receipt.json");
    assert!(archived(&receipt), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("cover image uploaded"),
        "{}",
        stderr(&out)
    );

    let posts = sandbox_json(&env, "/__sandbox/douyin/posts").await;
    let post = &posts.as_array().unwrap()[0];
    let uri = post["cover"]["uri"].as_str().expect("a custom cover");
    assert_eq!(post["item"]["cover"]["poster"], uri);
    assert!(uri.starts_with("tos-cn-i-"), "{uri}");
    assert_eq!(
        post["cover"]["sha256"],
        sha256_hex(&cover),
        "the image arrived intact"
    );
    assert_eq!(post["cover"]["size"], cover.len());
    assert_eq!(post["item"]["cover"]["custom_cover_image_width"], 720);
    assert_eq!(post["item"]["cover"]["custom_cover_image_height"], 1280);
    let counts = sandbox_json(&env, "/__sandbox/douyin/requests").await;
    assert_eq!(counts["imagex_upload"], 2, "retried once: {counts:#}");
    assert_eq!(counts["imagex_commit"], 1, "{counts:#}");
    let receipt = read_json(&receipt);
    assert_eq!(
        receipt["cover"],
        json!({"file": "cover.png", "sha256": sha256_hex(&cover), "uri": uri})
    );
    // Referenced, not owned: the image stays where it was.
    assert_eq!(std::fs::read(env.inbox().join("cover.png")).unwrap(), cover);
}

/// Copies the browser profiles of `from` (logged in) into `to`'s state folder: the
/// simulator's sessions are sealed, so a copy works with another simulator too.
fn copy_profiles(from: &Env, to: &Env) {
    fn copy(src: &Path, dst: &Path) {
        std::fs::create_dir_all(dst).unwrap();
        for entry in std::fs::read_dir(src).unwrap().flatten() {
            let (s, d) = (entry.path(), dst.join(entry.file_name()));
            let kind = entry.file_type().unwrap();
            if kind.is_dir() {
                copy(&s, &d);
            } else if kind.is_file() {
                std::fs::copy(&s, &d).unwrap();
            }
        }
    }
    copy(
        &from.path(".dropcast/browser"),
        &to.path(".dropcast/browser"),
    );
}

/// The `douyin` backend's points one bundle passes through, besides the pipeline's own.
#[cfg(feature = "failpoints")]
const DOUYIN_POINTS: &[&str] = &[
    "after_request:credentials",
    "after_commit:credentials",
    "after_request:apply_upload",
    "after_commit:apply_upload",
    "after_commit:upload_session",
    "after_request:upload_part",
    "after_commit:part",
    "after_request:upload",
    "after_commit:upload",
    "after_request:commit",
    "after_commit:commit",
    "after_request:cover",
    "after_commit:cover",
    "after_commit:publish_sent",
    "after_request:publish",
    "after_commit:published",
    "after_commit:archive_plan",
    "archive:after_video",
    "after_commit:done",
];

// Regression (issue 11, done means): the crash matrix for the douyin backend's failpoints.
#[cfg(feature = "failpoints")]
#[tokio::test(flavor = "multi_thread")]
async fn every_douyin_failpoint_then_restart_ends_in_exactly_one_post() {
    let Some(chromium) = chromium() else { return };
    let template = douyin_env(SandboxOptions::default(), &chromium).await;
    login_by_scanning(&template).await;
    let video = clip_variant(44);
    let cover = png(720, 1280);
    // The points after which the cover's upload is recorded: it never goes up again.
    let recorded = DOUYIN_POINTS
        .iter()
        .position(|p| *p == "after_commit:cover")
        .unwrap();
    for (at, &point) in DOUYIN_POINTS.iter().enumerate() {
        let env = douyin_env(SandboxOptions::default(), &chromium).await;
        copy_profiles(&template, &env);
        std::fs::write(env.inbox().join("a.mp4"), &video).unwrap();
        std::fs::write(env.inbox().join("cover.png"), &cover).unwrap();
        std::fs::write(
            env.inbox().join("a.yaml"),
            "text: \"遇见 #音乐\"\ncover: cover.png\n",
        )
        .unwrap();
        let mut first = env.cmd();
        first
            .args(["watch", "--once"])
            .env("DROPCAST_FAILPOINT", point);
        let out = run(first).await;
        assert!(
            stderr(&out).contains(&format!("failpoint {point}: aborting")),
            "{point} was never reached:\n{}",
            stderr(&out)
        );
        let out = env.watch_once().await;
        assert!(out.status.success(), "{point}: restart:\n{}", stderr(&out));
        assert!(
            archived(&env.path("done/a.receipt.json")),
            "{point}:\n{}",
            stderr(&out)
        );
        let posts = sandbox_json(&env, "/__sandbox/douyin/posts").await;
        let posts = posts.as_array().unwrap();
        assert_eq!(posts.len(), 1, "{point}: {posts:#?}");
        assert_eq!(posts[0]["sha256"], sha256_hex(&video), "{point}");
        let counts = sandbox_json(&env, "/__sandbox/douyin/requests").await;
        assert_eq!(
            counts["create_v2"], 1,
            "{point}: never sent twice: {counts:#}"
        );
        let receipt = read_json(&env.path("done/a.receipt.json"));
        assert_eq!(receipt["post_id"], posts[0]["item_id"], "{point}");
        assert_eq!(
            std::fs::read(env.path("done/a.mp4")).unwrap(),
            video,
            "{point}"
        );
        assert_eq!(posts[0]["cover"]["sha256"], sha256_hex(&cover), "{point}");
        assert_eq!(receipt["cover"]["uri"], posts[0]["cover"]["uri"], "{point}");
        if at >= recorded {
            assert_eq!(
                (
                    counts["imagex_apply"].clone(),
                    counts["imagex_upload"].clone()
                ),
                (json!(1), json!(1)),
                "{point}: the recorded cover never goes up again: {counts:#}"
            );
        }
        assert!(
            env.inbox().join("cover.png").exists(),
            "{point}: the cover stays"
        );
    }
}

// Regression (issue 11 item 1): a kill -9 in the middle of a multipart upload must resume with only the missing parts.
#[tokio::test(flavor = "multi_thread")]
async fn kill_9_mid_upload_resumes_with_only_the_missing_parts() {
    let Some(chromium) = chromium() else { return };
    let options = SandboxOptions {
        // Part 2 is held: part 1 arrived and was recorded before it.
        faults: vec![
            Fault::new(FaultStep::TosPart, FaultAction::Hold)
                .after(1)
                .times(1),
        ],
        ..SandboxOptions::default()
    };
    let env = douyin_env(options, &chromium).await;
    let text = std::fs::read_to_string(&env.config).unwrap();
    std::fs::write(
        &env.config,
        format!(
            "{text}upload: {{part_size: 5MiB, parallel_parts: 1, multipart_threshold: 5MiB}}\n"
        ),
    )
    .unwrap();
    login_by_scanning(&env).await;
    let video = big_mp4(12, 300 * 1024, 45);
    std::fs::write(env.inbox().join("big.mp4"), &video).unwrap();
    std::fs::write(env.inbox().join("big.yaml"), "text: big\n").unwrap();
    let mut agent = env.spawn_watch();
    tokio::time::timeout(BOUND, env.sandbox.wait_held(1))
        .await
        .expect("part 2 never arrived");
    agent.child.kill().unwrap(); // SIGKILL
    agent.child.wait().unwrap();
    env.sandbox.release();
    let out = env.watch_once().await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        archived(&env.path("done/big.receipt.json")),
        "{}",
        stderr(&out)
    );
    let posts = sandbox_json(&env, "/__sandbox/douyin/posts").await;
    assert_eq!(posts.as_array().unwrap().len(), 1, "{posts:#}");
    assert_eq!(
        posts[0]["sha256"],
        sha256_hex(&video),
        "the bytes arrived intact"
    );
    let uploads = sandbox_json(&env, "/__sandbox/douyin/uploads").await;
    let parts = uploads["part_uploads"].as_object().unwrap();
    assert_eq!(parts.len(), 1, "one upload, resumed: {uploads:#}");
    let received = &parts.values().next().unwrap()["parts"];
    assert_eq!(received["1"], 1, "part 1 is never sent again: {uploads:#}");
    assert!(received["3"].as_u64().unwrap() >= 1, "{uploads:#}");
}

// Regression (issue 11 item 1): a big video goes up in parallel parts straight to the upload host, bytes intact.
#[tokio::test(flavor = "multi_thread")]
async fn a_150_mb_video_goes_up_in_parallel_parts_with_its_bytes_intact() {
    let Some(chromium) = chromium() else { return };
    let env = douyin_env(SandboxOptions::default(), &chromium).await;
    let text = std::fs::read_to_string(&env.config).unwrap();
    std::fs::write(
        &env.config,
        format!("{text}upload: {{part_size: 8MiB, parallel_parts: 3}}\n"),
    )
    .unwrap();
    login_by_scanning(&env).await;
    let video = big_mp4(150, 123_457, 46);
    std::fs::write(env.inbox().join("long.mp4"), &video).unwrap();
    std::fs::write(env.inbox().join("long.yaml"), "text: \"长视频 #旅行\"\n").unwrap();
    let out = env.watch_once().await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        archived(&env.path("done/long.receipt.json")),
        "{}",
        stderr(&out)
    );
    let posts = sandbox_json(&env, "/__sandbox/douyin/posts").await;
    assert_eq!(posts.as_array().unwrap().len(), 1, "{posts:#}");
    assert_eq!(
        posts[0]["sha256"],
        sha256_hex(&video),
        "the bytes arrived intact"
    );
    let uploads = sandbox_json(&env, "/__sandbox/douyin/uploads").await;
    let parts = uploads["part_uploads"].as_object().unwrap();
    let received = parts.values().next().unwrap()["parts"]
        .as_object()
        .unwrap()
        .clone();
    let expected = video.len().div_ceil(8 << 20);
    assert_eq!(received.len(), expected, "{uploads:#}");
    assert!(
        received.values().all(|n| n == 1),
        "each part once: {uploads:#}"
    );
    let counts = sandbox_json(&env, "/__sandbox/douyin/requests").await;
    assert_eq!(counts["create_v2"], 1, "{counts:#}");
}
