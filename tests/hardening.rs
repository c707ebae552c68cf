//! Regression tests for the smaller holes an adversarial run found (issue 9, "smaller, all
//! worth doing"), each through the real binary.

mod common;

use std::process::Command;

use common::{Env, stderr};

fn dropcast() -> Command {
    let mut cmd = Command::new(assert_cmd::cargo::cargo_bin!("dropcast"));
    cmd.env_remove("DROPCAST_CONFIG");
    cmd
}

// Regression (issue 9): `dropcast sandbox --addr 0.0.0.0:…` bound every interface silently.
#[tokio::test]
async fn sandbox_refuses_an_address_other_machines_reach_without_allow_remote() {
    let mut child = dropcast()
        .args(["sandbox", "--addr", "0.0.0.0:0"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Before the fix it listened and ran until stopped: give it ten seconds to refuse.
    let limit = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while child.try_wait().unwrap().is_none() && std::time::Instant::now() < limit {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    if child.try_wait().unwrap().is_none() {
        child.kill().unwrap();
    }
    let out = child.wait_with_output().unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("--allow-remote"), "{err}");
    assert!(err.contains("0.0.0.0:0"), "{err}");
    assert!(out.stdout.is_empty(), "it must not have started listening");
}

// Regression (issue 9): `validate` said ok for a caption naming an account the config lacks.
#[tokio::test]
async fn validate_refuses_an_unknown_account_with_line_and_column() {
    let env = Env::start("").await;
    let caption = env.inbox().join("clip.yaml");
    std::fs::write(&caption, "text: hello\naccount: mian\n").unwrap();
    let out = env.validate(&caption).await;
    assert_eq!(out.status.code(), Some(2));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains("clip.yaml:2:10: account: `mian` is not configured (configured: main), did you mean `main`?"),
        "{said}"
    );
    // The same caption naming a configured account is fine.
    std::fs::write(&caption, "text: hello\naccount: main\n").unwrap();
    let out = env.validate(&caption).await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

// Regression (issue 9): `text: !!binary …` posted the base64 text.
#[tokio::test]
async fn a_yaml_tag_in_a_caption_is_refused_and_nothing_is_posted() {
    let env = Env::start("").await;
    env.drop_media("clip.mp4", "clip.mp4");
    let caption = env.inbox().join("clip.yaml");
    std::fs::write(&caption, "text: !!binary aGVsbG8gd29ybGQ=\n").unwrap();
    let out = env.validate(&caption).await;
    assert_eq!(out.status.code(), Some(2));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("clip.yaml:1:"), "{said}");
    assert!(
        said.contains("YAML tags like `!!binary` are not accepted"),
        "{said}"
    );

    let out = env.watch_once().await;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(env.posts().await.is_empty(), "nothing may be posted");
    let error = common::read_json(&env.path("failed/clip.error.json"));
    assert!(
        error["reason"].as_str().unwrap_or("").contains("!!binary"),
        "{error}"
    );
}

// Regression (issue 9): a file name with terminal escape sequences went raw into the log.
#[tokio::test]
async fn control_characters_in_file_names_are_escaped_in_the_log() {
    let env = Env::start("").await;
    let name = "evil\u{1b}[2J\u{1b}[31mred\nFAKE line";
    env.drop_media("clip.mp4", format!("{name}.mp4"));
    env.write_inbox(format!("{name}.yaml"), "text: hello\n");
    let out = env.watch_once().await;
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        !err.contains('\u{1b}'),
        "a raw escape reached the log: {err:?}"
    );
    assert!(
        !err.lines().any(|l| l.starts_with("FAKE line")),
        "a newline in a name started a line of its own: {err}"
    );
    assert!(err.contains("evil\\u{1b}[2J"), "{err}");
    assert_eq!(env.posts().await.len(), 1);
}

// Regression (issue 9): unusable values (`attempts: 4294967295`, `initial: 1ns`,
// `rescan_interval: 1ns`, `max_rate: 1`) were accepted.
#[tokio::test]
async fn unusable_config_values_are_refused_with_key_line_and_column() {
    let env = Env::configured(
        dropcast::sandbox::SandboxOptions::default(),
        &[
            (
                "publish",
                "{retry: {attempts: 4294967295, initial: 1ns, max: 500ms}}",
            ),
            ("upload", "{max_rate: 1}"),
        ],
        "",
    )
    .await;
    let out = env.run(&["check"]).await;
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    for says in [
        "publish.retry.attempts: must be between 1 and 100, found 4294967295",
        "publish.retry.initial: must be at least 10ms, found 1ns",
        "upload.max_rate: must be at least 64KiB",
    ] {
        assert!(err.contains(says), "{says}: {err}");
    }
    assert!(err.contains("dropcast.yaml:"), "{err}");
}
