//! What is uploaded is what was hashed: the video is opened once (no link followed), read
//! from that one descriptor, and every byte sent is checked against the fingerprint pass.
//! A video edited or swapped during its upload is abandoned and starts over; it never
//! fails as a platform refusal, and never posts bytes under a receipt naming other ones.

mod common;

use std::io::{Seek, SeekFrom, Write};
use std::path::Path;
use std::time::Duration;

use common::*;
use dropcast::sandbox::{Fault, FaultAction, FaultStep, SandboxOptions};
use serde_json::json;

/// Multipart above 5 MiB, parts of 5 MiB, one at a time: a 12 MiB + 300 KiB video goes up
/// in 3 parts, in order.
const UPLOAD: &str = "{multipart_threshold: 5MiB, part_size: 5MiB, parallel_parts: 1}";

/// Overwrites `path` in place (same inode, same size) with `bytes` from `offset`, then puts
/// the old mtime back, as `cp -p` or `rsync --inplace -t` do.
fn overwrite_keeping_mtime(path: &Path, offset: u64, bytes: &[u8]) {
    let mtime = std::fs::metadata(path).unwrap().modified().unwrap();
    let mut f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    f.seek(SeekFrom::Start(offset)).unwrap();
    f.write_all(bytes).unwrap();
    f.set_modified(mtime).unwrap();
    f.sync_all().unwrap();
}

/// Every file below `dir`.
fn all_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}

// Regression (issue 9 item 3): a same-size overwrite that kept the mtime during a multipart
// upload posted the new bytes under a receipt naming the old hash.
#[tokio::test(flavor = "multi_thread")]
async fn a_same_size_overwrite_keeping_the_mtime_mid_upload_is_abandoned_and_starts_over() {
    let options = SandboxOptions {
        faults: vec![Fault::new(FaultStep::UploadPart, FaultAction::Hold).times(1)],
        ..SandboxOptions::default()
    };
    let env = Env::configured(options, &[("upload", UPLOAD)], "").await;
    let agent = env.spawn_watch();
    let video = env.inbox().join("big.mp4");
    let old = big_mp4(12, 300 * 1024, 1);
    let new = big_mp4(12, 300 * 1024, 2);
    assert_eq!(old.len(), new.len());
    std::fs::write(&video, &old).unwrap();
    env.write_inbox("big.yaml", "text: a big one\n");

    // Part 1 is on its way (held); the rest is still to be read from the file.
    tokio::time::timeout(Duration::from_secs(60), env.sandbox.wait_held(1))
        .await
        .expect("part 1 never arrived");
    overwrite_keeping_mtime(&video, 0, &new);
    env.sandbox.release();

    let posts = wait_for_posts(&env, &agent, 1).await;
    assert_eq!(posts[0]["sha256"], json!(sha256_hex(&new)), "posted bytes");
    let receipt = agent
        .wait_for_archive(env.path("done/big.receipt.json"), 60)
        .await;
    assert_eq!(read_json(&receipt)["sha256"], json!(sha256_hex(&new)));
    agent.assert_logged("abandoned");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(env.posts().await.len(), 1);
}

// Regression (issue 9 item 7): a symlink swapped in mid-upload was followed, and bytes of a
// file outside the inbox went to the platform.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread")]
async fn a_symlink_swapped_in_mid_upload_is_not_followed() {
    let storage = tempfile::tempdir().unwrap();
    let options = SandboxOptions {
        faults: vec![Fault::new(FaultStep::UploadPart, FaultAction::Hold).times(1)],
        storage_dir: Some(storage.path().to_path_buf()),
        ..SandboxOptions::default()
    };
    let env = Env::configured(options, &[("upload", UPLOAD)], "").await;
    let agent = env.spawn_watch();
    let video = env.inbox().join("big.mp4");
    let bytes = big_mp4(12, 300 * 1024, 3);
    std::fs::write(&video, &bytes).unwrap();
    env.write_inbox("big.yaml", "text: a big one\n");
    // A private file of the same size, outside the inbox.
    const MARK: &[u8] = b"PRIVATE-FILE-OUTSIDE-THE-INBOX/";
    let private: Vec<u8> = MARK.iter().copied().cycle().take(bytes.len()).collect();
    let outside = env.path("private.bin");
    std::fs::write(&outside, &private).unwrap();

    tokio::time::timeout(Duration::from_secs(60), env.sandbox.wait_held(1))
        .await
        .expect("part 1 never arrived");
    std::fs::rename(&video, env.path("moved-away.mp4")).unwrap();
    std::os::unix::fs::symlink(&outside, &video).unwrap();
    env.sandbox.release();

    agent.wait_for_log("abandoned").await;
    // The upload went on from the file that settled, then the job stopped before step 5.
    tokio::time::sleep(Duration::from_millis(500)).await;
    for file in all_files(storage.path()) {
        let stored = std::fs::read(&file).unwrap();
        assert!(
            !stored.windows(MARK.len()).any(|w| w == MARK),
            "{} holds bytes of the file outside the inbox",
            file.display()
        );
    }
    assert!(env.posts().await.is_empty(), "nothing is posted");
    assert!(
        video.symlink_metadata().unwrap().file_type().is_symlink(),
        "the link is left alone"
    );
    assert_eq!(std::fs::read(&outside).unwrap(), private);
}

// Regression (issue 9 item 10): a video edited during a single-request upload went to
// failed/ as "the platform refused this post" (a CRC mismatch).
#[tokio::test(flavor = "multi_thread")]
async fn a_video_edited_during_a_single_request_upload_is_abandoned_and_starts_over() {
    // 2 MiB at 128 KiB/s: 16 s in one request; the progress line at 10 s comes when
    // about 1.25 MiB went out.
    let env = Env::with("upload", "{max_rate: 128KiB}").await;
    let agent = env.spawn_watch();
    let video = env.inbox().join("clip.mp4");
    let bytes = big_mp4(2, 0, 4);
    std::fs::write(&video, &bytes).unwrap();
    env.write_inbox("clip.yaml", "text: edited late\n");

    agent.wait_for_log("uploading").await;
    // The last 256 KiB (inside `mdat`) are not sent yet: the export is touched up there.
    let tail = 256 * 1024;
    let offset = bytes.len() as u64 - tail;
    overwrite_keeping_mtime(&video, offset, &vec![0x5a; tail as usize]);
    let mut edited = bytes.clone();
    edited[offset as usize..].fill(0x5a);

    let posts = wait_for_posts(&env, &agent, 1).await;
    assert_eq!(posts[0]["sha256"], json!(sha256_hex(&edited)));
    let receipt = agent
        .wait_for_archive(env.path("done/clip.receipt.json"), 60)
        .await;
    assert_eq!(read_json(&receipt)["sha256"], json!(sha256_hex(&edited)));
    assert!(
        all_files(&env.path("failed")).is_empty(),
        "failed/: {:?}\n{}",
        all_files(&env.path("failed")),
        agent.log_text()
    );
    agent.assert_logged("abandoned");
}
