//! Finished means finished (issue 14 part 3), through the real binary: a copy that sets
//! its final size first and pauses holding the file open, a file created and never
//! closed, and every downloader's temp name or marker file.

mod common;

use std::collections::BTreeSet;
use std::io::Write;
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

/// Waits (generously) until the agent's log has one of `needles`.
async fn wait_for_any_log(agent: &Agent, needles: &[&str]) {
    let found = wait_until(Duration::from_secs(60), || {
        let log = agent.log_text();
        needles.iter().any(|n| log.contains(n))
    })
    .await;
    found.unwrap_or_else(|_| panic!("agent never said {needles:?}:\n{}", agent.log_text()));
}

// Regression (issue 14 part 3): Explorer, torrent clients and `fallocate` set the final
// size first; a faststart MP4 then tiles its boxes while its payload is still zeros, so a
// writer pausing past `settle` got a half-copied video published.
#[tokio::test(flavor = "multi_thread")]
async fn preallocated_faststart_copy_paused_past_settle_is_never_published_early() {
    let env = Env::start("").await;
    env.drop_media("clip.yaml", "copy.yaml");
    let agent = env.spawn_watching().await;
    // The example clip is faststart with `mdat` last: once its header is written, every
    // box header is in place and only zeros in the payload tell it is unfinished.
    let bytes = std::fs::read(media("clip.mp4")).unwrap();
    let video = env.inbox().join("copy.mp4");
    let mut writer = std::fs::File::create(&video).unwrap();
    writer.set_len(bytes.len() as u64).unwrap();
    // ftyp, moov, the mdat header and a third of the payload: the boxes already tile.
    let head = bytes.len() / 3;
    writer.write_all(&bytes[..head]).unwrap();
    writer.flush().unwrap();

    // Held by the close it waits for (Linux events) or by the open handle (busy check)…
    // (or, were it not, taken: the asserts below then fail).
    wait_for_any_log(
        &agent,
        &[
            "its writer has not closed it",
            "still being written; waiting",
            "job{file=copy.mp4",
        ],
    )
    .await;
    // …through a pause of ten settle periods, the file open all along.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        env.posts().await.is_empty(),
        "published while being written"
    );
    assert!(
        !agent.log_text().contains("job{file=copy.mp4"),
        "{}",
        agent.log_text()
    );

    writer.write_all(&bytes[head..]).unwrap();
    drop(writer);
    let posts = wait_for_posts(&env, &agent, 1).await;
    assert_eq!(posts[0]["sha256"], Value::from(sha256_hex(&bytes)));
    let archived = env.path("done/copy.mp4");
    wait_until(Duration::from_secs(30), || archived.exists())
        .await
        .expect("archived");
    assert_eq!(std::fs::read(&archived).unwrap(), bytes);
    assert_eq!(env.posts().await.len(), 1);
}

// A hard link is created without an open, so no close-after-write ever follows: the wait
// for it is bounded by `watch.incomplete_timeout`, then the content decides.
#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread")]
async fn a_file_created_and_never_closed_waits_incomplete_timeout_then_its_content_decides() {
    let watch = "{settle: 200ms, poll_interval: 100ms, caption_wait: 30s, incomplete_timeout: 3s}";
    let env = Env::start_watch(watch, "").await;
    let source = env.path("outside.mp4");
    std::fs::write(&source, clip_variant(15)).unwrap();
    env.drop_media("clip.yaml", "linked.yaml");
    let agent = env.spawn_watching().await;
    let linked_at = Instant::now();
    std::fs::hard_link(&source, env.inbox().join("linked.mp4")).unwrap();
    agent.wait_for_log("its writer has not closed it").await;
    let posts = wait_for_posts(&env, &agent, 1).await;
    assert!(
        linked_at.elapsed() >= Duration::from_secs(3),
        "published {:?} after the link, before incomplete_timeout",
        linked_at.elapsed()
    );
    agent.assert_logged("never closed; its content decides");
    assert_eq!(
        posts[0]["sha256"],
        Value::from(sha256_hex(&clip_variant(15)))
    );
}

/// One way a tool keeps a video unfinished, and how it ends.
struct Case {
    video: &'static str,
    start: fn(&Env, &[u8]),
    finish: fn(&Env),
}

const CASES: [Case; 5] = [
    // WinSCP: `*.filepart`, renamed when the transfer is done.
    Case {
        video: "winscp.mp4",
        start: |env, b| env.write_inbox("winscp.mp4.filepart", b),
        finish: |env| rename(env, "winscp.mp4.filepart", "winscp.mp4"),
    },
    // qBittorrent with "Append .!qB extension to incomplete files".
    Case {
        video: "torrent.mp4",
        start: |env, b| env.write_inbox("torrent.mp4.!qB", b),
        finish: |env| rename(env, "torrent.mp4.!qB", "torrent.mp4"),
    },
    // aria2: the video under its own name, its control file beside it until done.
    Case {
        video: "aria.mp4",
        start: |env, b| {
            env.write_inbox("aria.mp4", b);
            env.write_inbox("aria.mp4.aria2", b"control");
        },
        finish: |env| std::fs::remove_file(env.inbox().join("aria.mp4.aria2")).unwrap(),
    },
    // Firefox: an empty placeholder under the final name, the bytes in `*.part`.
    Case {
        video: "firefox.mp4",
        start: |env, b| {
            env.write_inbox("firefox.mp4", b"");
            env.write_inbox("firefox.mp4.part", b);
        },
        finish: |env| rename(env, "firefox.mp4.part", "firefox.mp4"),
    },
    // Safari: the video under its final name inside a `*.download` folder.
    Case {
        video: "safari.mp4",
        start: |env, b| {
            std::fs::create_dir(env.inbox().join("safari.mp4.download")).unwrap();
            env.write_inbox("safari.mp4.download/safari.mp4", b);
            env.write_inbox("safari.mp4.download/Info.plist", b"<plist/>");
        },
        finish: |env| {
            rename(env, "safari.mp4.download/safari.mp4", "safari.mp4");
            std::fs::remove_dir_all(env.inbox().join("safari.mp4.download")).unwrap();
        },
    },
];

fn rename(env: &Env, from: &str, to: &str) {
    std::fs::rename(env.inbox().join(from), env.inbox().join(to)).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn videos_under_temp_names_or_beside_a_marker_are_taken_only_once_done() {
    let env = Env::start("").await;
    let agent = env.spawn_watching().await;
    let mut hashes = BTreeSet::new();
    for (n, case) in (0u8..).zip(&CASES) {
        let stem = case.video.trim_end_matches(".mp4");
        env.drop_media("clip.yaml", format!("{stem}.yaml"));
        let bytes = clip_variant(20 + n);
        hashes.insert(sha256_hex(&bytes));
        (case.start)(&env, &bytes);
    }
    // The two cases with a final name in place are seen and held back (or, were they
    // not, taken: the asserts below then fail)…
    wait_until(Duration::from_secs(60), || {
        let log = agent.log_text();
        log.matches("beside it says it is still downloading")
            .count()
            >= 2
            || log.contains("job{file=")
    })
    .await
    .unwrap_or_else(|_| panic!("markers never noticed:\n{}", agent.log_text()));
    // …for ten settle periods, with nothing posted or failed.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(env.posts().await.is_empty(), "{}", agent.log_text());
    assert_eq!(walk_files(&env.path("failed")), 0, "{}", agent.log_text());

    for case in &CASES {
        (case.finish)(&env);
    }
    let posts = wait_for_posts(&env, &agent, CASES.len()).await;
    let posted: BTreeSet<String> = posts
        .iter()
        .map(|p| p["sha256"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(posted, hashes);
    for case in &CASES {
        let stem = case.video.trim_end_matches(".mp4");
        agent
            .wait_for_archive(env.path(&format!("done/{stem}.receipt.json")), 60)
            .await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(env.posts().await.len(), CASES.len());
}

#[tokio::test(flavor = "multi_thread")]
async fn watch_once_leaves_a_video_still_downloading_and_says_so() {
    let env = Env::start("").await;
    env.drop_media("clip.mp4", "aria.mp4");
    env.drop_media("clip.yaml", "aria.yaml");
    env.write_inbox("aria.mp4.aria2", b"control");
    let out = env.watch_once().await;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_said(&out, "left in the inbox: it is still being written");
    assert!(env.inbox().join("aria.mp4").exists());
    assert!(env.posts().await.is_empty());
}

fn walk_files(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| match e.file_type() {
                    Ok(t) if t.is_dir() => walk_files(&e.path()),
                    _ => 1,
                })
                .sum()
        })
        .unwrap_or(0)
}
