//! Shared test harness: a sandbox on 127.0.0.1:0 started by the test, a config pointing at
//! it, and the real `dropcast` binary.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use dropcast::sandbox::{self, SandboxHandle, SandboxOptions};
use serde_json::Value;
use sha2::{Digest, Sha256};

pub const COOKIE_VAR: &str = "DROPCAST_TEST_COOKIE";

pub struct Env {
    pub dir: tempfile::TempDir,
    pub sandbox: SandboxHandle,
    pub config: PathBuf,
}

impl Env {
    /// A sandbox and a config with short settle times; `extra` is appended to the config.
    pub async fn start(extra: &str) -> Env {
        Self::start_with(SandboxOptions::default(), extra).await
    }

    pub async fn start_with(options: SandboxOptions, extra: &str) -> Env {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let sandbox = sandbox::start(listener, options).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let url = sandbox.base_url();
        let config = dir.path().join("dropcast.yaml");
        let text = format!(
            "inbox: ./inbox\n\
             done: ./done\n\
             failed: ./failed\n\
             duplicates: ./duplicates\n\
             state_dir: ./.dropcast\n\
             watch:\n  settle: 300ms\n  poll_interval: 100ms\n  caption_wait: 30s\n  rescan_interval: 10m\n\
             publish:\n  retry: {{attempts: 3, initial: 50ms, max: 500ms}}\n\
             platform:\n  sandbox: false\n  creator_url: {url}\n  vod_url: {url}\n  upload_scheme: http\n  timeout: 10s\n\
             accounts:\n  main: {{cookie_env: {COOKIE_VAR}}}\n\
             status:\n  listen: off\n{extra}"
        );
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

pub fn media(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples/media")
        .join(name)
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    base16ct::lower::encode_string(&Sha256::digest(bytes))
}

/// The example clip with an extra `free` box appended: still a well-formed MP4, other bytes.
pub fn clip_variant(n: u8) -> Vec<u8> {
    let mut bytes = std::fs::read(media("clip.mp4")).unwrap();
    let payload = [n; 8];
    bytes.extend_from_slice(&(8u32 + payload.len() as u32).to_be_bytes());
    bytes.extend_from_slice(b"free");
    bytes.extend_from_slice(&payload);
    bytes
}

pub fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}
