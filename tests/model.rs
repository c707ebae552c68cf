//! A randomized check of the promises of ARCHITECTURE.md "Invariants": random bundles (some the same
//! video, some with a broken caption), random platform faults and random crashes at the
//! failpoints, then clean restarts. Whatever happened:
//! - at most one post per content hash (one account);
//! - every file dropped is, byte for byte, in exactly one of the inbox (still queued),
//!   `done/`, `failed/` or `duplicates/`;
//! - every video in `done/` has a receipt naming its post; a broken caption is never posted.
//!
//! Needs the `failpoints` feature: `cargo test --all-features`.

#![cfg(feature = "failpoints")]

mod common;

use std::collections::HashMap;

use common::*;
use dropcast::failpoint::NAMES;
use dropcast::sandbox::{Fault, FaultAction, FaultStep, SandboxOptions};
use proptest::prelude::*;
use serde_json::json;

const STEPS: [FaultStep; 6] = publish_steps_and(FaultStep::PostList);

fn action(n: u8) -> FaultAction {
    match n {
        0 => FaultAction::Status {
            status: 503,
            retry_after: None,
            body: None,
        },
        1 => FaultAction::Reset,
        2 => FaultAction::DropAnswer,
        3 => FaultAction::Body {
            body: json!({"status_code": 2, "status_msg": "refused on purpose"}),
        },
        _ => FaultAction::Status {
            status: 429,
            retry_after: Some(0),
            body: None,
        },
    }
}

#[derive(Debug, Clone)]
struct Case {
    /// (which content, caption broken?)
    bundles: Vec<(u8, bool)>,
    faults: Vec<(usize, u8, u32)>,
    crashes: Vec<usize>,
}

fn cases() -> impl Strategy<Value = Case> {
    (
        prop::collection::vec((0u8..3, prop::bool::weighted(0.2)), 1..5),
        prop::collection::vec((0usize..STEPS.len(), 0u8..5, 1u32..3), 0..3),
        prop::collection::vec(0usize..NAMES.len(), 0..3),
    )
        .prop_map(|(bundles, faults, crashes)| Case {
            bundles,
            faults,
            crashes,
        })
}

fn place(dirs: &[(&str, std::path::PathBuf)], name: &str) -> Vec<(String, Vec<u8>)> {
    dirs.iter()
        .filter_map(|(label, dir)| {
            std::fs::read(dir.join(name))
                .ok()
                .map(|b| (label.to_string(), b))
        })
        .collect()
}

async fn check(case: Case) {
    let faults = case
        .faults
        .iter()
        .map(|&(step, a, times)| Fault::new(STEPS[step], action(a)).times(times))
        .collect();
    let options = SandboxOptions {
        faults,
        ..SandboxOptions::default()
    };
    let env = Env::configured(options, &[], "").await;
    for (i, &(content, broken)) in case.bundles.iter().enumerate() {
        env.write_inbox(format!("b{i}.mp4"), clip_variant(content));
        let caption = if broken {
            "text: hi\nvisiblity: public\n".to_string()
        } else {
            format!("text: bundle {i}\n")
        };
        env.write_inbox(format!("b{i}.yaml"), caption);
    }
    for &k in &case.crashes {
        let mut cmd = env.cmd();
        cmd.args(["watch", "--once"])
            .env("DROPCAST_FAILPOINT", NAMES[k]);
        run(cmd).await;
    }
    for _ in 0..2 {
        let out = env.watch_once().await;
        assert!(!stderr(&out).contains("panicked"), "{}", stderr(&out));
    }

    let posts = env.posts().await;
    let mut per_hash: HashMap<String, usize> = HashMap::new();
    for p in &posts {
        *per_hash
            .entry(p["sha256"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    assert!(per_hash.values().all(|&n| n == 1), "{case:?}: {per_hash:?}");

    let dirs = [
        ("inbox", env.inbox()),
        ("done", env.path("done")),
        ("failed", env.path("failed")),
        ("duplicates", env.path("duplicates")),
    ];
    for (i, &(content, broken)) in case.bundles.iter().enumerate() {
        let video = place(&dirs, &format!("b{i}.mp4"));
        assert_eq!(
            video.len(),
            1,
            "{case:?}: b{i}.mp4 is in {:?}",
            video.iter().map(|v| &v.0).collect::<Vec<_>>()
        );
        assert_eq!(
            video[0].1,
            clip_variant(content),
            "{case:?}: b{i}.mp4 changed"
        );
        let caption = place(&dirs, &format!("b{i}.yaml"));
        assert_eq!(caption.len(), 1, "{case:?}: b{i}.yaml");
        assert_eq!(caption[0].0, video[0].0, "{case:?}: b{i} split up");
        match video[0].0.as_str() {
            "done" => {
                assert!(!broken, "{case:?}: a broken caption was published");
                let receipt = read_json(&env.path(&format!("done/b{i}.receipt.json")));
                let sha = sha256_hex(&clip_variant(content));
                assert_eq!(receipt["sha256"], json!(sha), "{case:?}");
                let post = posts.iter().find(|p| p["sha256"] == json!(sha));
                assert_eq!(
                    post.map(|p| &p["aweme_id"]),
                    Some(&receipt["aweme_id"]),
                    "{case:?}: receipt names no post"
                );
            }
            "failed" => assert!(env.path(&format!("failed/b{i}.error.json")).exists()),
            "duplicates" => {
                assert!(env.path(&format!("duplicates/b{i}.receipt.json")).exists())
            }
            _ => {}
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, failure_persistence: None, .. ProptestConfig::default() })]

    #[test]
    fn faults_and_crashes_never_break_the_promises(case in cases()) {
        let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
        rt.block_on(check(case));
    }
}
