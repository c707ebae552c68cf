//! Ledgers of an older schema open, migrate and resume: a v3 ledger written by the code
//! of commit 1b9570e (tests/fixtures/ledger-v3: a done job, a failed job, and an active
//! multipart job killed with `kill -9` after its first part), with the sandbox that
//! issued its upload restored from a snapshot, is picked up by today's binary. The same
//! video dropped again is a duplicate of the old post, the active job sends only its
//! missing parts and is published once, and `status` still shows the failure and the post.
//!
//! The fixture's README says how it was made; `make.rs` beside it is the generator.

mod common;

#[path = "fixtures/ledger-v3/make.rs"]
mod make;

use std::path::Path;

use common::*;
use dropcast::sandbox::{SandboxOptions, Snapshot};
use make::{FIXTURE, PART_SIZE, REFUSAL, UPLOAD, VIDEO_A, VIDEO_C, VIDEOS};
use serde_json::{Value, json};

/// Every JSON field this test reads from receipts, `status --json`, `history --json`
/// and the fixture's `made.json`, in one place (the names are those of schema v3's code).
mod fields {
    use serde_json::Value;

    /// The post a done receipt names: `post_id`, and `aweme_id` the same for a Douyin
    /// account (scripts written before platforms had names keep working). A receipt the
    /// old code wrote has only `aweme_id`.
    pub fn post_id(receipt: &Value) -> &str {
        let aweme = receipt["aweme_id"].as_str().expect("receipt: aweme_id");
        if let Some(id) = receipt.get("post_id") {
            assert_eq!(id, aweme, "post_id and aweme_id: {receipt:#}");
            assert_eq!(receipt["platform"], "douyin-web", "{receipt:#}");
        }
        aweme
    }

    /// The earlier post a duplicate receipt names (v4: `post_id` and, for Douyin, the same
    /// `aweme_id`).
    pub fn earlier_post_id(receipt: &Value) -> &str {
        let earlier = &receipt["earlier"];
        assert_eq!(earlier["platform"], "douyin-web", "{receipt:#}");
        assert_eq!(earlier["post_id"], earlier["aweme_id"], "{receipt:#}");
        earlier["post_id"]
            .as_str()
            .expect("duplicate receipt: earlier.post_id")
    }

    pub fn sha256(receipt: &Value) -> &str {
        receipt["sha256"].as_str().expect("receipt: sha256")
    }

    /// `status --json`: how many jobs are in `state`.
    pub fn count(status: &Value, state: &str) -> u64 {
        status["counts"][state].as_u64().expect("status: counts")
    }

    /// `status --json`: the `reason` of the failed job of `file`, if listed.
    pub fn failure_reason<'a>(status: &'a Value, file: &str) -> Option<&'a str> {
        status["failed"]
            .as_array()
            .expect("status: failed[]")
            .iter()
            .find(|f| f["file"] == file)
            .map(|f| f["reason"].as_str().expect("failed[]: reason"))
    }

    /// `status --json`: the files of the queued jobs.
    pub fn queued_files(status: &Value) -> Vec<&str> {
        let queued = status["queued"].as_array().expect("status: queued[]");
        queued.iter().filter_map(|q| q["file"].as_str()).collect()
    }

    /// `history --json`: (file, post id) of every post.
    pub fn history_posts(history: &Value) -> Vec<(String, String)> {
        let rows = history.as_array().expect("history: a list");
        rows.iter()
            .map(|r| {
                let file = r["file"].as_str().expect("history: file");
                let post = r["post_id"].as_str().expect("history: post_id");
                assert_eq!(r["aweme_id"], post, "Douyin rows keep aweme_id: {r:#}");
                assert_eq!(r["platform"], "douyin-web", "{r:#}");
                (file.to_owned(), post.to_owned())
            })
            .collect()
    }

    /// `/__sandbox/posts`: the post id and content hash of each.
    pub fn sandbox_posts(posts: &[Value]) -> Vec<(String, String)> {
        let text = |v: &Value| v.as_str().expect("sandbox post: a string").to_owned();
        posts
            .iter()
            .map(|p| (text(&p["aweme_id"]), text(&p["sha256"])))
            .collect()
    }
}

fn fixture(rel: &str) -> String {
    let path = Path::new(FIXTURE).join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Copies every file below `from` to the same place below `to`.
fn copy_tree(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        let (src, dest) = (entry.path(), to.join(entry.file_name()));
        if src.is_dir() {
            std::fs::create_dir_all(&dest).unwrap();
            copy_tree(&src, &dest);
        } else {
            std::fs::copy(&src, &dest).unwrap();
        }
    }
}

/// The fixture's videos made again, checked against what the old run hashed.
fn videos(made: &Value) -> Vec<(&'static str, Vec<u8>)> {
    VIDEOS
        .iter()
        .map(|v| {
            let bytes = (v.make)();
            let recorded = made["videos"]
                .as_array()
                .unwrap()
                .iter()
                .find(|r| r["at"] == v.at)
                .unwrap_or_else(|| panic!("made.json lists no {}", v.at));
            assert_eq!(
                recorded["sha256"],
                json!(sha256_hex(&bytes)),
                "{} ({}) is no longer the video the fixture was made with",
                v.at,
                v.recipe
            );
            (v.at, bytes)
        })
        .collect()
}

/// A storage folder holding the files the snapshot's sandbox had received and a restore
/// needs (part 1 of C), made again from C's bytes; the restore checks their CRC-32.
fn storage_for(snapshot: &Snapshot, c: &[u8]) -> tempfile::TempDir {
    let storage = tempfile::tempdir().unwrap();
    let needed = snapshot.needed_files().unwrap();
    assert_eq!(
        needed.len(),
        1,
        "the fixture has one part received: {needed:?}"
    );
    for file in needed {
        let (_, number) = file.part.clone().expect("a part");
        let start = (number as usize - 1) * PART_SIZE;
        let bytes = &c[start..start + file.size as usize];
        let path = storage.path().join(&file.path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }
    storage
}

/// Loads the fixture's SQL dump into a fresh `state_dir/ledger.sqlite3`. The ledger holds
/// absolute paths of the old run's folders (archive plans, `archived_to`) and the old
/// sandbox's `host:port` (the saved upload session's object URL and `extra_param`); a
/// user's folders and platform stay where they are between two runs, but this test's
/// temporary folder and port are new, so both are rewritten to the test's own.
fn load_ledger(env: &Env, made: &Value) {
    let old_root = made["root"].as_str().unwrap();
    let old_host = made["tos_host"].as_str().unwrap();
    let root = env.dir.path().to_str().unwrap();
    let host = env.sandbox.addr().to_string();
    assert!(
        !root.contains(['\'', '"', '\\']),
        "{root} fits SQL and JSON strings as it is"
    );
    let sql = fixture("ledger.sql");
    assert!(
        sql.contains(old_root) && sql.contains(old_host),
        "made.json fits ledger.sql"
    );
    let sql = sql.replace(old_root, root).replace(old_host, &host);
    let state = env.path(".dropcast");
    std::fs::create_dir_all(&state).unwrap();
    env.ledger().execute_batch(&sql).unwrap();
}

fn stdout_json(out: &std::process::Output) -> Value {
    assert!(out.status.success(), "{}", stderr(out));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", stdout(out)))
}

async fn uploads(env: &Env) -> Value {
    let url = format!("{}/__sandbox/uploads", env.sandbox.base_url());
    reqwest::get(url).await.unwrap().json().await.unwrap()
}

/// How many more calls `endpoint` got between two `/__sandbox/requests`.
fn more(before: &Value, after: &Value, endpoint: &str) -> u64 {
    after[endpoint].as_u64().unwrap() - before[endpoint].as_u64().unwrap()
}

// Regression (issue 10 item 2): nothing proved that a ledger written by an older release opens and resumes under today's code.
#[tokio::test(flavor = "multi_thread")]
async fn a_v3_ledger_written_by_the_old_code_resumes() {
    let made: Value = serde_json::from_str(&fixture("made.json")).unwrap();
    let videos = videos(&made);
    let video = |at: &str| &videos.iter().find(|(a, _)| *a == at).unwrap().1;
    let snapshot = Snapshot::from_json(&fixture("sandbox.json")).unwrap();
    let storage = storage_for(&snapshot, video(VIDEO_C.at));
    let options = SandboxOptions {
        restore: Some(snapshot),
        storage_dir: Some(storage.path().to_path_buf()),
        ..SandboxOptions::default()
    };
    let env = Env::configured(options, &[("upload", UPLOAD)], "").await;
    copy_tree(&Path::new(FIXTURE).join("files"), env.dir.path());
    for (at, bytes) in &videos {
        std::fs::write(env.path(at), bytes).unwrap();
    }
    load_ledger(&env, &made);
    let old_post = fields::post_id(&read_json(&env.path("done/a.receipt.json"))).to_owned();
    let upload_id = {
        let all = uploads(&env).await;
        let open: Vec<_> = all
            .as_object()
            .unwrap()
            .iter()
            .filter(|(_, u)| u["state"] == "open")
            .collect();
        assert_eq!(open.len(), 1, "C's upload, restored open: {all:#}");
        assert_eq!(open[0].1["parts"], json!({"1": 1}), "{all:#}");
        open[0].0.clone()
    };

    // Today's binary reads the old ledger as it is.
    let status = stdout_json(&env.run(&["status", "--json"]).await);
    assert_eq!(fields::count(&status, "done"), 1, "{status:#}");
    assert_eq!(fields::count(&status, "failed"), 1, "{status:#}");
    assert_eq!(fields::count(&status, "active"), 1, "{status:#}");
    assert_eq!(fields::queued_files(&status), ["c.mp4"], "{status:#}");

    // A, dropped again, and the rest of C.
    env.write_inbox("a.mp4", video(VIDEO_A.at));
    env.write_inbox("a.yaml", "text: the first video again\n");
    let before = env.requests().await;
    let out = env.watch_once().await;
    assert!(out.status.success(), "{}", stderr(&out));
    let after = env.requests().await;

    // a) A is a duplicate of the old post; nothing of it was uploaded.
    let dup = env.path("duplicates/a.receipt.json");
    assert!(archived(&dup), "{}", stderr(&out));
    assert_eq!(fields::earlier_post_id(&read_json(&dup)), old_post);
    assert!(!env.inbox().join("a.mp4").exists());
    for whole_file_or_new_upload in ["upload", "upload_params", "upload_init"] {
        let n = more(&before, &after, whole_file_or_new_upload);
        assert_eq!(n, 0, "{whole_file_or_new_upload}: {after:#}");
    }

    // b) C finished its own upload, sending parts 2 and 3 only, and was published once.
    let all = uploads(&env).await;
    assert_eq!(all[&upload_id]["state"], "completed", "{all:#}");
    assert_eq!(
        all[&upload_id]["parts"],
        json!({"1": 1, "2": 1, "3": 1}),
        "{all:#}"
    );
    assert_eq!(more(&before, &after, "upload_part"), 2, "{after:#}");
    assert_eq!(more(&before, &after, "create"), 1, "{after:#}");
    let receipt = read_json(&env.path("done/c.receipt.json"));
    let c_sha = sha256_hex(video(VIDEO_C.at));
    assert_eq!(fields::sha256(&receipt), c_sha);
    let new_post = fields::post_id(&receipt).to_owned();
    let posts = fields::sandbox_posts(&env.posts().await);
    let a_sha = sha256_hex(video(VIDEO_A.at));
    assert_eq!(
        posts,
        [(old_post.clone(), a_sha), (new_post.clone(), c_sha)],
        "one post each for A (before) and C (now)"
    );

    // c) status and history still show the failure and both posts.
    let status = stdout_json(&env.run(&["status", "--json"]).await);
    assert_eq!(fields::count(&status, "done"), 2, "{status:#}");
    assert_eq!(fields::count(&status, "duplicate"), 1, "{status:#}");
    assert_eq!(fields::count(&status, "active"), 0, "{status:#}");
    let reason = fields::failure_reason(&status, "b.mp4").expect("b.mp4 in failed[]");
    assert!(reason.contains(REFUSAL), "{reason}");
    let history = stdout_json(&env.run(&["history", "--json"]).await);
    let mut posts = fields::history_posts(&history);
    posts.sort();
    assert_eq!(
        posts,
        [
            ("a.mp4".into(), old_post.clone()),
            ("c.mp4".into(), new_post)
        ]
    );

    // d) The ledger was migrated to schema 4 (then 5, then 6): every old job is douyin-web's, and
    // the old post's id and address moved to post_id and post_url; every post is live.
    let db = env.ledger();
    let version: i64 = db
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, 7);
    let pending: Vec<i64> = column(&db, "SELECT id FROM jobs WHERE post_state IS NOT NULL");
    assert!(pending.is_empty());
    let platforms: Vec<String> = column(&db, "SELECT DISTINCT platform FROM jobs");
    assert_eq!(platforms, ["douyin-web"]);
    let (id, url): (String, String) = db
        .query_row(
            "SELECT post_id, post_url FROM jobs WHERE state = 'done' ORDER BY id LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(id, old_post);
    assert_eq!(url, format!("https://www.douyin.com/video/{old_post}"));
}
