//! Shared test harness: a sandbox on 127.0.0.1:0 started by the test, a config pointing at
//! it, and the real `dropcast` binary.

#![allow(dead_code)]

pub mod canned;
pub mod douyin;
pub mod fixtures;
pub mod pg;
pub mod sandbox_client;
/// Tests that need a program: found, or skipped with one line (src/test_tools.rs).
#[path = "../../src/test_tools.rs"]
pub mod tools;

#[allow(unused_imports)]
pub use fixtures::*;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use dropcast::sandbox::{self, Fault, FaultAction, FaultStep, SandboxHandle, SandboxOptions};
use serde_json::Value;

pub const COOKIE_VAR: &str = "DROPCAST_TEST_COOKIE";

/// The tests' usual `watch:` settings: short settle, fast polling.
pub const DEFAULT_WATCH: &str =
    "{settle: 300ms, poll_interval: 100ms, caption_wait: 30s, rescan_interval: 10m}";

/// The test defaults for `watch:` with another `rescan_interval`.
pub fn watch_rescanning(every: &str) -> String {
    format!("{{settle: 300ms, poll_interval: 100ms, caption_wait: 30s, rescan_interval: {every}}}")
}

pub struct Env {
    pub dir: tempfile::TempDir,
    pub sandbox: SandboxHandle,
    pub config: PathBuf,
}

impl Env {
    /// A sandbox and a config with short settle times; `extra` is appended to the config.
    pub async fn start(extra: &str) -> Env {
        Self::configured(SandboxOptions::default(), &[], extra).await
    }

    /// A default sandbox and a config whose top-level `key` is `value` (YAML flow style).
    pub async fn with(key: &str, value: &str) -> Env {
        Self::configured(SandboxOptions::default(), &[(key, value)], "").await
    }

    /// A sandbox armed with `faults` and the test defaults.
    pub async fn with_faults(faults: Vec<Fault>) -> Env {
        let options = SandboxOptions {
            faults,
            ..SandboxOptions::default()
        };
        Self::configured(options, &[], "").await
    }

    /// A sandbox that holds the first request to `step` until released.
    pub async fn holding_once(step: FaultStep) -> Env {
        Self::with_faults(vec![Fault::new(step, FaultAction::Hold).times(1)]).await
    }

    /// Like [`start`](Self::start) with the config's `watch:` mapping (flow style) given.
    pub async fn start_watch(watch: &str, extra: &str) -> Env {
        Self::configured(SandboxOptions::default(), &[("watch", watch)], extra).await
    }

    /// A sandbox with `options`, and a config whose top-level keys `overrides` replace the
    /// test defaults (values in YAML flow style); `extra` is appended.
    pub async fn configured(
        options: SandboxOptions,
        overrides: &[(&str, &str)],
        extra: &str,
    ) -> Env {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let sandbox = sandbox::start(listener, options).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let url = sandbox.base_url();
        let platform = format!(
            "{{sandbox: false, creator_url: \"{url}\", vod_url: \"{url}\", upload_scheme: http, timeout: 10s}}"
        );
        let accounts = format!("{{main: {{cookie_env: {COOKIE_VAR}}}}}");
        let mut keys: Vec<(&str, String)> = vec![
            ("inbox", "./inbox".into()),
            ("done", "./done".into()),
            ("failed", "./failed".into()),
            ("duplicates", "./duplicates".into()),
            ("state_dir", "./.dropcast".into()),
            ("watch", DEFAULT_WATCH.into()),
            (
                "publish",
                "{retry: {attempts: 3, initial: 50ms, max: 500ms}}".into(),
            ),
            ("platform", platform),
            ("accounts", accounts),
            ("status", "{listen: off}".into()),
        ];
        for (key, value) in overrides {
            match keys.iter_mut().find(|(k, _)| k == key) {
                Some(slot) => slot.1 = value.to_string(),
                None => keys.push((key, value.to_string())),
            }
        }
        let mut text: String = keys.iter().map(|(k, v)| format!("{k}: {v}\n")).collect();
        text.push_str(extra);
        let config = dir.path().join("dropcast.yaml");
        std::fs::write(&config, text).unwrap();
        for d in ["inbox", "done", "failed", "duplicates"] {
            std::fs::create_dir_all(dir.path().join(d)).unwrap();
        }
        Env {
            dir,
            sandbox,
            config,
        }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn inbox(&self) -> PathBuf {
        self.path("inbox")
    }

    /// The agent's ledger (in the config's `state_dir`), opened beside it.
    pub fn ledger(&self) -> rusqlite::Connection {
        rusqlite::Connection::open(self.path(".dropcast/ledger.sqlite3")).unwrap()
    }

    /// Copies the example media file `name` to `rel` in the inbox.
    pub fn drop_media(&self, name: &str, rel: impl AsRef<Path>) {
        std::fs::copy(media(name), self.inbox().join(rel)).unwrap();
    }

    /// The `reason` of the error file at `rel` (`failed/clip.error.json`).
    pub fn failure_reason(&self, rel: &str) -> String {
        let error = read_json(&self.path(rel));
        error["reason"].as_str().unwrap().to_owned()
    }

    /// Writes `bytes` to `rel` in the inbox, as a user drops a file.
    pub fn write_inbox(&self, rel: impl AsRef<Path>, bytes: impl AsRef<[u8]>) {
        std::fs::write(self.inbox().join(rel), bytes).unwrap();
    }

    /// The `dropcast` command with this env's config and the sandbox account's cookie.
    pub fn cmd(&self) -> Command {
        let mut cmd = Command::new(assert_cmd::cargo::cargo_bin!("dropcast"));
        cmd.arg("-c")
            .arg(&self.config)
            .env(COOKIE_VAR, sandbox::cookie_for("main"))
            .env("RUST_LOG", "dropcast=debug")
            .env_remove("DROPCAST_CONFIG")
            .current_dir(self.dir.path());
        cmd
    }

    /// Runs `dropcast ARGS…` to the end (off the async threads, so the in-process sandbox
    /// keeps serving).
    pub async fn run(&self, args: &[&str]) -> Output {
        let mut cmd = self.cmd();
        cmd.args(args);
        run(cmd).await
    }

    /// Runs `dropcast validate PATH` to the end.
    pub async fn validate(&self, path: &Path) -> Output {
        let mut cmd = self.cmd();
        cmd.arg("validate").arg(path);
        run(cmd).await
    }

    /// Runs `dropcast watch --once` to the end (off the async threads, so the in-process
    /// sandbox keeps serving).
    pub async fn watch_once(&self) -> Output {
        let mut cmd = self.cmd();
        cmd.args(["watch", "--once"]);
        run(cmd).await
    }

    /// Starts `dropcast watch` in the background, stderr captured to a file.
    pub fn spawn_watch(&self) -> Agent {
        let log = self.path("agent.log");
        let file = std::fs::File::create(&log).unwrap();
        let child = self
            .cmd()
            .arg("watch")
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .unwrap();
        Agent { child, log }
    }

    /// Starts `dropcast watch` in the background and waits until it is watching.
    pub async fn spawn_watching(&self) -> Agent {
        let agent = self.spawn_watch();
        agent.wait_for_log("watching").await;
        agent
    }

    pub async fn posts(&self) -> Vec<Value> {
        let url = format!("{}/__sandbox/posts", self.sandbox.base_url());
        let v: Value = reqwest::get(url).await.unwrap().json().await.unwrap();
        v.as_array().cloned().unwrap_or_else(|| {
            v.get("posts")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
        })
    }

    pub async fn requests(&self) -> Value {
        let url = format!("{}/__sandbox/requests", self.sandbox.base_url());
        reqwest::get(url).await.unwrap().json().await.unwrap()
    }
}

/// The sandbox's posts once there are at least `n`, waiting (generously) for the agent.
pub async fn wait_for_posts(env: &Env, agent: &Agent, n: usize) -> Vec<Value> {
    let start = Instant::now();
    loop {
        let posts = env.posts().await;
        if posts.len() >= n {
            return posts;
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "only {} of {n} posts after 120 s:\n{}",
            posts.len(),
            agent.log_text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The five steps of every publish, then `last`.
pub const fn publish_steps_and(last: FaultStep) -> [FaultStep; 6] {
    [
        FaultStep::Credentials,
        FaultStep::UploadParams,
        FaultStep::Upload,
        FaultStep::Commit,
        FaultStep::Create,
        last,
    ]
}

pub async fn run(mut cmd: Command) -> Output {
    tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap()
}

pub struct Agent {
    pub child: Child,
    pub log: PathBuf,
}

impl Agent {
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The agent's log says `words`.
    #[track_caller]
    pub fn assert_logged(&self, words: &str) {
        assert!(self.log_text().contains(words), "{}", self.log_text());
    }

    /// Waits up to `secs` seconds until `path` exists (a receipt, an archived file); `path`
    /// back.
    pub async fn wait_for_file(&self, path: PathBuf, secs: u64) -> PathBuf {
        let probe = path.clone();
        wait_until(Duration::from_secs(secs), move || probe.exists())
            .await
            .unwrap_or_else(|_| panic!("{} never appeared:\n{}", path.display(), self.log_text()));
        path
    }

    /// Waits up to `secs` seconds until the archive whose receipt is `receipt` is complete
    /// (see [`archived`]); `receipt` back.
    pub async fn wait_for_archive(&self, receipt: PathBuf, secs: u64) -> PathBuf {
        let probe = receipt.clone();
        wait_until(Duration::from_secs(secs), move || archived(&probe))
            .await
            .unwrap_or_else(|_| {
                let log = self.log_text();
                panic!("{} was never archived:\n{log}", receipt.display())
            });
        receipt
    }

    /// Waits (generously) until the agent's log contains `needle`.
    pub async fn wait_for_log(&self, needle: &str) {
        let log = self.log.clone();
        let wanted = needle.to_string();
        wait_until(Duration::from_secs(60), move || {
            std::fs::read_to_string(&log)
                .map(|t| t.contains(&wanted))
                .unwrap_or(false)
        })
        .await
        .unwrap_or_else(|_| panic!("agent log never said {:?}:\n{}", needle, self.log_text()));
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `cond` every 50 ms until it holds or `limit` passes.
pub async fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> Result<(), ()> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if cond() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    if cond() { Ok(()) } else { Err(()) }
}

pub fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

/// The first column of every row `sql` selects, in order.
pub fn column<T: rusqlite::types::FromSql>(db: &rusqlite::Connection, sql: &str) -> Vec<T> {
    db.prepare(sql)
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The command's stderr says `words`.
#[track_caller]
pub fn assert_said(out: &Output, words: &str) {
    assert!(stderr(out).contains(words), "{}", stderr(out));
}

/// Whether the archive whose receipt is `receipt` is complete. An archive writes its
/// receipt first and moves the video last, so a receipt alone means "under way": wait on
/// this, not on the receipt, before looking at the archived files.
pub fn archived(receipt: &Path) -> bool {
    let Some(name) = receipt.file_name().and_then(|n| n.to_str()) else {
        return false;
    };
    let Some(stem) = name
        .strip_suffix(".receipt.json")
        .or_else(|| name.strip_suffix(".error.json"))
    else {
        return false;
    };
    receipt.exists()
        && ["mp4", "mov", "m4v", "webm"]
            .iter()
            .any(|ext| receipt.with_file_name(format!("{stem}.{ext}")).exists())
}
