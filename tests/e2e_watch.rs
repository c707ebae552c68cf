//! How the watcher holds up on real folders (issue: never publish a half-written export):
//! exporters that pause, temp-then-rename, folders copied in, late and edited captions,
//! truncated and fake videos, poll mode and bursts, all through the real binary.

mod common;

use std::io::Write;
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

fn append(path: &std::path::Path, bytes: &[u8]) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    f.write_all(bytes).unwrap();
}

/// An env whose watcher settles in 200 ms and fails a video still incomplete after `timeout`.
async fn giving_up_on_incomplete_videos_after(timeout: &str) -> Env {
    let watch = format!("{{settle: 200ms, poll_interval: 100ms, incomplete_timeout: {timeout}}}");
    Env::start_watch(&watch, "").await
}

#[tokio::test(flavor = "multi_thread")]
async fn export_that_pauses_before_writing_moov_is_published_once_with_its_final_bytes() {
    let env = Env::start("").await;
    env.drop_media("clip.yaml", "export.yaml");
    let agent = env.spawn_watch();
    let video = env.inbox().join("export.mp4");
    let parts = clip_moov_last();
    let (moov, head) = parts.split_last().unwrap();
    // ftyp, free and mdat in chunks, each pause shorter than settle (300 ms)…
    for part in head {
        for chunk in part.chunks(16 * 1024) {
            append(&video, chunk);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    // …then a pause far longer than settle before `moov` arrives, as exporters do.
    agent.wait_for_log("not finished yet").await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(env.posts().await.is_empty(), "published without moov");
    append(&video, moov);

    let posts = wait_for_posts(&env, &agent, 1).await;
    // The post exists a moment before the archive: wait for the move, not the post.
    let archived = env.path("done/export.mp4");
    wait_until(Duration::from_secs(30), || archived.exists())
        .await
        .expect("archived");
    let final_bytes = std::fs::read(&archived).unwrap();
    assert_eq!(final_bytes, parts.concat());
    assert_eq!(posts[0]["sha256"], Value::from(sha256_hex(&final_bytes)));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(env.posts().await.len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn written_under_a_temp_name_then_renamed_is_published_once() {
    let env = Env::start("").await;
    let agent = env.spawn_watch();
    let part = env.inbox().join("clip.mp4.part");
    let bytes = std::fs::read(media("clip.mp4")).unwrap();
    for chunk in bytes.chunks(32 * 1024) {
        append(&part, chunk);
        tokio::time::sleep(Duration::from_millis(400)).await; // longer than settle
    }
    env.drop_media("clip.yaml", "clip.yaml");
    std::fs::rename(&part, env.inbox().join("clip.mp4")).unwrap();
    let posts = wait_for_posts(&env, &agent, 1).await;
    assert_eq!(posts[0]["sha256"], Value::from(sha256_hex(&bytes)));
    let archived = env.path("done/clip.mp4");
    wait_until(Duration::from_secs(30), || archived.exists())
        .await
        .expect("archived");
    assert!(!agent.log_text().contains("job{file=clip.mp4.part"));
}

#[tokio::test(flavor = "multi_thread")]
async fn folder_copied_in_with_cp_r_is_published() {
    let env = Env::start("").await;
    let agent = env.spawn_watch();
    let src = env.path("outside/shoot-42");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::copy(media("clip.mp4"), src.join("video.mp4")).unwrap();
    std::fs::write(src.join("caption.yaml"), "text: \"拍摄 #旅行\"\n").unwrap();
    let status = std::process::Command::new("cp")
        .arg("-r")
        .arg(&src)
        .arg(env.inbox())
        .status()
        .unwrap();
    assert!(status.success());
    wait_for_posts(&env, &agent, 1).await;
    let receipt = env.path("done/shoot-42/video.receipt.json");
    wait_until(Duration::from_secs(30), || common::archived(&receipt))
        .await
        .unwrap();
    assert!(env.path("done/shoot-42/caption.yaml").exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn nested_mkdir_p_tree_is_watched_at_once() {
    let env = Env::start("").await;
    let agent = env.spawn_watching().await;
    let deep = env.inbox().join("a/b/c");
    std::fs::create_dir_all(&deep).unwrap();
    std::fs::copy(media("clip.mp4"), deep.join("clip.mp4")).unwrap();
    std::fs::copy(media("clip.yaml"), deep.join("clip.yaml")).unwrap();
    wait_for_posts(&env, &agent, 1).await;
    let receipt = env.path("done/a/b/c/clip.receipt.json");
    wait_until(Duration::from_secs(30), || common::archived(&receipt))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn caption_arriving_5_s_late_is_used() {
    let env = Env::start("").await;
    let agent = env.spawn_watch();
    env.drop_media("clip.mp4", "late.mp4");
    // The scenario itself: the caption comes five seconds after the video.
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(env.posts().await.is_empty());
    assert!(agent.log_text().contains("waiting for a caption"));
    env.write_inbox("late.yaml", "text: \"晚到的字幕 #音乐\"\n");
    let posts = wait_for_posts(&env, &agent, 1).await;
    assert_eq!(posts[0]["form"]["text"], "晚到的字幕 #音乐");
}

#[tokio::test(flavor = "multi_thread")]
async fn caption_edited_before_publishing_is_read_in_its_final_form() {
    let env = Env::start_watch("{settle: 2s, poll_interval: 100ms}", "").await;
    let agent = env.spawn_watch();
    env.drop_media("clip.mp4", "clip.mp4");
    env.write_inbox("clip.yaml", "text: first draft\n");
    env.write_inbox("clip.yaml", "text: \"final words #音乐\"\n");
    let posts = wait_for_posts(&env, &agent, 1).await;
    assert_eq!(posts[0]["form"]["text"], "final words #音乐");
}

#[tokio::test(flavor = "multi_thread")]
async fn truncated_mp4_fails_after_incomplete_timeout() {
    let env = giving_up_on_incomplete_videos_after("2s").await;
    let bytes = std::fs::read(media("clip.mp4")).unwrap();
    env.write_inbox("cut.mp4", &bytes[..100_000]);
    env.drop_media("clip.yaml", "cut.yaml");
    let started = Instant::now();
    let out = env.watch_once().await;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "failed before the timeout"
    );
    let reason = env.failure_reason("failed/cut.error.json");
    assert!(reason.contains("still incomplete"), "{reason}");
    assert!(reason.contains("past the end"), "{reason}");
    assert!(env.posts().await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn text_file_named_mp4_fails_at_once() {
    let env = giving_up_on_incomplete_videos_after("1h").await;
    env.write_inbox("notes.mp4", "hello, this is not a video\n");
    env.drop_media("clip.yaml", "notes.yaml");
    let out = env.watch_once().await;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = read_json(&env.path("failed/notes.error.json"));
    assert!(
        err["reason"].as_str().unwrap().contains("not a video"),
        "{err:#}"
    );
    assert!(env.path("failed/notes.yaml").exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn poll_mode_finds_new_files() {
    let env = Env::start_watch(
        "{mode: poll, settle: 300ms, poll_interval: 100ms, rescan_interval: 10m}",
        "",
    )
    .await;
    let agent = env.spawn_watching().await;
    std::fs::create_dir_all(env.inbox().join("sub")).unwrap();
    env.drop_media("clip.mp4", "sub/clip.mp4");
    env.drop_media("clip.yaml", "sub/clip.yaml");
    wait_for_posts(&env, &agent, 1).await;
    agent.assert_logged("poll");
}

#[tokio::test(flavor = "multi_thread")]
async fn burst_of_500_bundles_each_published_exactly_once() {
    const N: u32 = 500;
    let env = Env::configured(
        Default::default(),
        &[
            (
                "watch",
                "{settle: 300ms, poll_interval: 100ms, rescan_interval: 1s}",
            ),
            (
                "publish",
                "{concurrency: 4, retry: {attempts: 3, initial: 50ms, max: 500ms}}",
            ),
        ],
        "",
    )
    .await;
    let agent = env.spawn_watching().await;
    for n in 0..N {
        let dir = env.inbox().join(format!("batch{}", n % 10));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("v{n}.mp4")), tiny_mp4(n)).unwrap();
        std::fs::write(dir.join(format!("v{n}.yaml")), format!("text: clip {n}\n")).unwrap();
    }
    let posts = wait_for_posts(&env, &agent, N as usize).await;
    // Rescans every second keep running meanwhile; give them a chance to misbehave.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let posts_after = env.posts().await;
    assert_eq!(posts_after.len(), N as usize, "{}", agent.log_text());
    let mut hashes: Vec<&str> = posts
        .iter()
        .map(|p| p["sha256"].as_str().unwrap())
        .collect();
    hashes.sort();
    hashes.dedup();
    assert_eq!(hashes.len(), N as usize);
    let receipts = walk(&env.path("done"), "receipt.json");
    wait_until(Duration::from_secs(30), || {
        walk(&env.path("done"), "receipt.json") == N as usize
    })
    .await
    .unwrap_or_else(|_| panic!("{} receipts", receipts));
    assert_eq!(walk(&env.inbox(), "mp4"), 0);
}

fn walk(dir: &std::path::Path, suffix: &str) -> usize {
    let mut n = 0;
    let Ok(rd) = std::fs::read_dir(dir) else {
        return 0;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            n += walk(&p, suffix);
        } else if p.to_string_lossy().ends_with(suffix) {
            n += 1;
        }
    }
    n
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread")]
async fn non_utf8_names_are_archived_under_their_own_name_and_symlinks_left_alone() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let env = Env::start("").await;
    let video = env.inbox().join(OsStr::from_bytes(b"clip-\xff.mp4"));
    let caption = env.inbox().join(OsStr::from_bytes(b"clip-\xff.yaml"));
    std::fs::copy(media("clip.mp4"), &video).unwrap();
    std::fs::copy(media("clip.yaml"), &caption).unwrap();
    let target = env.path("elsewhere.mp4");
    std::fs::write(&target, tiny_mp4(7)).unwrap();
    std::os::unix::fs::symlink(&target, env.inbox().join("link.mp4")).unwrap();
    env.write_inbox("link.yaml", "text: via a link\n");

    let out = env.watch_once().await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        env.path("done")
            .join(OsStr::from_bytes(b"clip-\xff.mp4"))
            .exists()
    );
    assert!(
        env.path("done")
            .join(OsStr::from_bytes(b"clip-\xff.receipt.json"))
            .exists()
    );
    assert!(
        env.inbox().join("link.mp4").symlink_metadata().is_ok(),
        "symlink left in place"
    );
    assert_eq!(env.posts().await.len(), 1);
    let log = stderr(&out);
    assert_eq!(
        log.matches("symlink in the inbox is not followed").count(),
        1,
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn video_replaced_while_waiting_for_its_caption_settles_again() {
    let env = Env::start("").await;
    let agent = env.spawn_watch();
    let video = env.inbox().join("clip.mp4");
    std::fs::write(&video, clip_variant(1)).unwrap();
    agent.wait_for_log("waiting for a caption").await;
    std::fs::write(&video, clip_variant(2)).unwrap();
    env.drop_media("clip.yaml", "clip.yaml");
    let posts = wait_for_posts(&env, &agent, 1).await;
    assert_eq!(
        posts[0]["sha256"],
        Value::from(sha256_hex(&clip_variant(2)))
    );
    assert_eq!(posts.len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn video_changed_while_being_published_is_abandoned_and_starts_over() {
    use dropcast::sandbox::FaultStep;
    let env = Env::holding_once(FaultStep::Commit).await;
    let agent = env.spawn_watch();
    let video = env.inbox().join("clip.mp4");
    std::fs::write(&video, clip_variant(1)).unwrap();
    env.drop_media("clip.yaml", "clip.yaml");

    // The upload is done and the commit is held open: now the export changes.
    tokio::time::timeout(Duration::from_secs(60), env.sandbox.wait_held(1))
        .await
        .expect("commit never arrived");
    std::fs::write(&video, clip_variant(2)).unwrap();
    env.sandbox.release();

    let posts = wait_for_posts(&env, &agent, 1).await;
    assert_eq!(
        posts[0]["sha256"],
        Value::from(sha256_hex(&clip_variant(2)))
    );
    let receipt = env.path("done/clip.receipt.json");
    wait_until(Duration::from_secs(30), || common::archived(&receipt))
        .await
        .unwrap();
    assert_eq!(
        std::fs::read(env.path("done/clip.mp4")).unwrap(),
        clip_variant(2)
    );
    assert!(
        !env.path("done/clip-1.mp4").exists(),
        "nothing archived for the abandoned job"
    );
    agent.assert_logged("abandoned");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(env.posts().await.len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn caption_edited_after_publishing_started_is_logged_and_ignored() {
    use dropcast::sandbox::FaultStep;
    let env = Env::holding_once(FaultStep::Create).await;
    let agent = env.spawn_watch();
    env.drop_media("clip.mp4", "clip.mp4");
    env.write_inbox("clip.yaml", "text: as sent\n");
    tokio::time::timeout(Duration::from_secs(60), env.sandbox.wait_held(1))
        .await
        .expect("publish request never arrived");
    env.write_inbox("clip.yaml", "text: too late\n");
    env.sandbox.release();

    let posts = wait_for_posts(&env, &agent, 1).await;
    assert_eq!(posts[0]["form"]["text"], "as sent");
    let receipt = env.path("done/clip.receipt.json");
    wait_until(Duration::from_secs(30), || common::archived(&receipt))
        .await
        .unwrap();
    assert_eq!(read_json(&receipt)["caption"]["text"], "as sent");
    agent
        .wait_for_log("the caption changed after publishing started")
        .await;
}
