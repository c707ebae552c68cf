//! The whole journey through the real binary against a sandbox this test starts on
//! 127.0.0.1:0: inbox → settle → bundle → hash → ledger → five steps → done/.

mod common;

use common::*;
use serde_json::{Value, json};

fn form<'a>(post: &'a Value, field: &str) -> &'a str {
    post.get("form")
        .and_then(|f| f.get(field))
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("post has no form field {field}: {post:#}"))
}

fn copy_example(env: &Env, stem: &str) {
    env.drop_media("clip.mp4", format!("{stem}.mp4"));
    env.drop_media("clip.yaml", format!("{stem}.yaml"));
}

#[tokio::test(flavor = "multi_thread")]
async fn example_bundle_is_published_once_with_bytes_and_fields_intact() {
    let env = Env::start("").await;
    copy_example(&env, "clip");

    let out = env.watch_once().await;
    assert!(
        out.status.success(),
        "exit {:?}\n{}",
        out.status,
        stderr(&out)
    );

    // Files left the inbox for done/, with a receipt naming the post.
    assert!(!env.inbox().join("clip.mp4").exists());
    assert!(env.path("done/clip.mp4").exists());
    assert!(env.path("done/clip.yaml").exists());
    let receipt = read_json(&env.path("done/clip.receipt.json"));
    let bytes = std::fs::read(media("clip.mp4")).unwrap();
    let sha = sha256_hex(&bytes);
    assert_eq!(receipt["sha256"], json!(sha));
    let aweme_id = receipt["aweme_id"].as_str().expect("receipt has aweme_id");
    assert!(
        receipt
            .to_string()
            .contains(&format!("https://www.douyin.com/video/{aweme_id}"))
    );

    // Exactly one post, its object byte-identical to the file.
    let posts = env.posts().await;
    assert_eq!(posts.len(), 1, "{posts:#?}");
    let post = &posts[0];
    assert_eq!(post["sha256"], json!(sha));
    assert_eq!(post["aweme_id"], json!(aweme_id));

    // Every form field as docs/douyin-web.md §5 says, for
    // text: "第一次用 dropcast 发视频 #dropcast #音乐 @小明".
    let text = "第一次用 dropcast 发视频 #dropcast #音乐 @小明";
    assert_eq!(form(post, "text"), text);
    let extra: Value = serde_json::from_str(form(post, "text_extra")).unwrap();
    assert_eq!(
        extra,
        json!([
            {"start": 18, "end": 27, "user_id": "", "type": 1, "hashtag_name": "dropcast"},
            {"start": 28, "end": 31, "user_id": "", "type": 1, "hashtag_name": "音乐"},
            {"start": 32, "end": 35, "user_id": "84990209480", "type": 0, "hashtag_name": ""}
        ])
    );
    let challenges: Vec<String> = serde_json::from_str(form(post, "challenges")).unwrap();
    assert!(
        challenges.contains(&"1550712576368642".to_string()),
        "{challenges:?}"
    );
    let mentions: Vec<String> = serde_json::from_str(form(post, "mentions")).unwrap();
    assert_eq!(mentions, vec!["84990209480".to_string()]);
    assert_eq!(form(post, "third_text"), "第一次用 dropcast 发视频");
    assert_eq!(form(post, "visibility_type"), "0");
    assert_eq!(form(post, "download"), "0");
    assert_eq!(form(post, "poster_delay"), "1000");
    assert_eq!(form(post, "upload_source"), "1");
    assert_eq!(form(post, "is_preview"), "0");
    assert_eq!(form(post, "timing"), "0");
    assert_eq!(form(post, "mix_id"), "");
    assert_eq!(form(post, "mix_order"), "");
    assert!(!form(post, "poster").is_empty());
    assert_eq!(form(post, "video_id"), receipt["vid"].as_str().unwrap());

    // One line per step per job, with the file name and a short hash.
    let log = stderr(&out);
    for step in [
        "credentials",
        "upload_params",
        "upload",
        "commit",
        "publish",
        "archive",
    ] {
        assert!(
            log.contains(&format!("step=\"{step}\"")) || log.contains(&format!("step={step}")),
            "no log line for step {step}:\n{log}"
        );
    }
    assert!(
        log.contains(&sha[..12]),
        "log lines carry the short hash:\n{log}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn same_video_under_another_name_goes_to_duplicates_and_is_not_posted() {
    let env = Env::start("").await;
    copy_example(&env, "clip");
    let out = env.watch_once().await;
    assert!(out.status.success(), "{}", stderr(&out));
    let first = read_json(&env.path("done/clip.receipt.json"));

    std::fs::create_dir_all(env.inbox().join("later")).unwrap();
    env.drop_media("clip.mp4", "later/again.mp4");
    env.drop_media("clip.yaml", "later/again.yaml");
    let out = env.watch_once().await;
    assert!(
        out.status.success(),
        "a duplicate is not a failure: {}",
        stderr(&out)
    );

    assert!(env.path("duplicates/later/again.mp4").exists());
    assert!(env.path("duplicates/later/again.yaml").exists());
    let dup = read_json(&env.path("duplicates/later/again.receipt.json"));
    assert!(
        dup.to_string()
            .contains(first["aweme_id"].as_str().unwrap()),
        "the duplicate receipt names the earlier post: {dup:#}"
    );
    assert_eq!(env.posts().await.len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn caption_with_an_error_fails_with_a_reason_naming_the_line() {
    let env = Env::start("").await;
    env.drop_media("clip.mp4", "clip.mp4");
    env.write_inbox("clip.yaml", "text: \"hello #音乐\"\nvisiblity: public\n");

    let out = env.watch_once().await;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(env.path("failed/clip.mp4").exists());
    assert!(env.path("failed/clip.yaml").exists());
    let err = read_json(&env.path("failed/clip.error.json"));
    let reason = err["reason"].as_str().unwrap();
    assert!(reason.contains("clip.yaml"), "{reason}");
    assert!(reason.contains(":2:"), "names line 2: {reason}");
    assert!(reason.contains("did you mean `visibility`"), "{reason}");
    assert!(err["hint"].as_str().is_some_and(|h| !h.is_empty()));
    assert!(env.posts().await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn video_waits_for_a_caption_that_arrives_later() {
    let env = Env::start("").await;
    let agent = env.spawn_watch();
    env.drop_media("clip.mp4", "late.mp4");
    agent.wait_for_log("waiting for a caption").await;
    assert!(
        env.inbox().join("late.mp4").exists(),
        "a video without caption is not failed"
    );
    assert!(env.posts().await.is_empty());

    env.drop_media("clip.yaml", "late.yaml");
    agent
        .wait_for_archive(env.path("done/late.receipt.json"), 60)
        .await;
    assert_eq!(env.posts().await.len(), 1);
    assert!(env.path("done/late.mp4").exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn two_files_with_the_same_name_both_end_in_done_without_overwriting() {
    let env = Env::start("").await;
    env.write_inbox("clip.mp4", clip_variant(1));
    env.drop_media("clip.yaml", "clip.yaml");
    let out = env.watch_once().await;
    assert!(out.status.success(), "{}", stderr(&out));

    env.write_inbox("clip.mp4", clip_variant(2));
    env.drop_media("clip.yaml", "clip.yaml");
    let out = env.watch_once().await;
    assert!(out.status.success(), "{}", stderr(&out));

    assert_eq!(
        std::fs::read(env.path("done/clip.mp4")).unwrap(),
        clip_variant(1)
    );
    assert_eq!(
        std::fs::read(env.path("done/clip-1.mp4")).unwrap(),
        clip_variant(2)
    );
    assert!(env.path("done/clip-1.yaml").exists());
    let r0 = read_json(&env.path("done/clip.receipt.json"));
    let r1 = read_json(&env.path("done/clip-1.receipt.json"));
    assert_ne!(r0["aweme_id"], r1["aweme_id"]);
    assert_eq!(r1["sha256"], json!(sha256_hex(&clip_variant(2))));
    assert_eq!(env.posts().await.len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn nested_folder_keeps_its_path_and_folder_caption_is_used() {
    let env = Env::start("").await;
    let job = env.inbox().join("job1");
    std::fs::create_dir_all(&job).unwrap();
    std::fs::copy(media("clip.mp4"), job.join("video.mp4")).unwrap();
    std::fs::write(job.join("caption.yaml"), "text: \"文件夹里的视频 #旅行\"\n").unwrap();
    let out = env.watch_once().await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(env.path("done/job1/video.mp4").exists());
    assert!(env.path("done/job1/caption.yaml").exists());
    assert!(env.path("done/job1/video.receipt.json").exists());
    let posts = env.posts().await;
    assert_eq!(form(&posts[0], "text"), "文件夹里的视频 #旅行");
}

#[tokio::test(flavor = "multi_thread")]
async fn validate_prints_every_problem_with_line_and_column() {
    let env = Env::start("").await;
    let bad = env.path("bad.yaml");
    std::fs::write(
        &bad,
        "text: \"hi @nobody\"\nvisiblity: public\ncover_at: soon\n",
    )
    .unwrap();
    let out = env.validate(&bad).await;
    assert_eq!(out.status.code(), Some(2));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("bad.yaml:1:"), "{text}");
    assert!(text.contains("nobody"), "{text}");
    assert!(text.contains("bad.yaml:2:1"), "{text}");
    assert!(text.contains("visibility"), "{text}");
    assert!(text.contains("bad.yaml:3:"), "{text}");

    let out = env.validate(&media("clip.yaml")).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn check_tries_each_account_cookie() {
    let env = Env::start("").await;
    let out = env.run(&["check"]).await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}\n{}", stderr(&out));
    assert!(text.contains("main: session works"), "{text}");
    assert!(
        text.contains("native file events"),
        "says how the inbox is watched: {text}"
    );

    let mut cmd = env.cmd();
    cmd.arg("check")
        .env(COOKIE_VAR, "sessionid=expired-1234; csrf_token=abcd");
    let out = run(cmd).await;
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("main:"), "{text}");
    assert!(text.to_lowercase().contains("cookie"), "{text}");
    let all = format!("{text}{}", stderr(&out));
    assert!(
        !all.contains("expired-1234"),
        "the cookie is never printed: {all}"
    );

    // A cookie without csrf_token is a problem of that account's cookie: `check` reports
    // it on the account's line and exits 1, like any failed check (issue 9).
    let mut cmd = env.cmd();
    cmd.arg("check").env(COOKIE_VAR, "sessionid=nocsrf-5678");
    let out = run(cmd).await;
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("account     main:"), "{text}");
    let all = format!("{text}{}", stderr(&out));
    assert!(!all.contains("nocsrf-5678"), "{all}");
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_config_exits_2_naming_key_and_line() {
    let env = Env::start("").await;
    std::fs::write(&env.config, "inbox: ./inbox\nwatch:\n  setle: 3s\n").unwrap();
    let out = env.run(&["watch", "--once"]).await;
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains(":3:"), "{err}");
    assert!(err.contains("settle"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn publish_command_posts_one_video_now() {
    let env = Env::start("").await;
    let outside = env.path("elsewhere");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::copy(media("clip.mp4"), outside.join("one.mp4")).unwrap();
    std::fs::copy(media("clip.yaml"), outside.join("one.yaml")).unwrap();
    let mut cmd = env.cmd();
    cmd.arg("publish").arg(outside.join("one.mp4"));
    let out = run(cmd).await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}\n{}", stderr(&out));
    assert!(text.contains("https://www.douyin.com/video/"), "{text}");
    assert_eq!(env.posts().await.len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn caption_naming_an_unknown_account_fails_naming_the_caption() {
    let env = Env::start("").await;
    env.drop_media("clip.mp4", "clip.mp4");
    env.write_inbox("clip.yaml", "text: hi\naccount: other\n");
    let out = env.watch_once().await;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let reason = env.failure_reason("failed/clip.error.json");
    assert!(reason.contains("clip.yaml"), "{reason}");
    assert!(reason.contains("`other` is not configured"), "{reason}");
    assert!(env.posts().await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn empty_video_fails_at_once_as_not_a_video() {
    let env = Env::start("").await;
    env.write_inbox("empty.mp4", b"");
    env.drop_media("clip.yaml", "empty.yaml");
    let out = env.watch_once().await;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(env.path("failed/empty.mp4").exists());
    assert!(env.path("failed/empty.yaml").exists());
    let err = read_json(&env.path("failed/empty.error.json"));
    assert!(
        err["reason"].as_str().unwrap().contains("not a video"),
        "{err:#}"
    );
    assert!(env.posts().await.is_empty());
}
