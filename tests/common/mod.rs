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

/// The tests' usual `watch:` settings: short settle, fast polling.
pub const DEFAULT_WATCH: &str =
    "{settle: 300ms, poll_interval: 100ms, caption_wait: 30s, rescan_interval: 10m}";

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

/// The top-level boxes of an MP4, as (type, bytes).
pub fn boxes(bytes: &[u8]) -> Vec<([u8; 4], Vec<u8>)> {
    let mut out = Vec::new();
    let mut at = 0;
    while at + 8 <= bytes.len() {
        let size = u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        let kind: [u8; 4] = bytes[at + 4..at + 8].try_into().unwrap();
        out.push((kind, bytes[at..at + size].to_vec()));
        at += size;
    }
    out
}

/// The example clip with its boxes reordered so `moov` comes last, as exporters write it.
pub fn clip_moov_last() -> Vec<Vec<u8>> {
    let all = boxes(&std::fs::read(media("clip.mp4")).unwrap());
    let (moov, rest): (Vec<_>, Vec<_>) = all.into_iter().partition(|(k, _)| k == b"moov");
    rest.into_iter().chain(moov).map(|(_, b)| b).collect()
}

fn mp4_box(kind: &[u8; 4], payload: &[u8]) -> Vec<u8> {
    let mut b = ((8 + payload.len()) as u32).to_be_bytes().to_vec();
    b.extend_from_slice(kind);
    b.extend_from_slice(payload);
    b
}

/// A tiny, well-formed MP4 (ftyp, moov with an mvhd, mdat) whose bytes depend on `n`.
pub fn tiny_mp4(n: u32) -> Vec<u8> {
    let mut ftyp = b"isom".to_vec();
    ftyp.extend_from_slice(&0x200u32.to_be_bytes());
    ftyp.extend_from_slice(b"isomiso2mp41");
    let mut mvhd = vec![0u8; 100];
    mvhd[12..16].copy_from_slice(&1000u32.to_be_bytes()); // timescale
    mvhd[16..20].copy_from_slice(&2000u32.to_be_bytes()); // duration: 2 s
    let moov = mp4_box(b"moov", &mp4_box(b"mvhd", &mvhd));
    let mut out = mp4_box(b"ftyp", &ftyp);
    out.extend_from_slice(&moov);
    out.extend_from_slice(&mp4_box(b"mdat", &n.to_be_bytes().repeat(16)));
    out
}

/// A well-formed MP4 of about `mib` MiB: the example clip's `ftyp` and `moov`, then an
/// `mdat` of deterministic bytes that depend on `seed`.
pub fn big_mp4(mib: u64, extra: u64, seed: u8) -> Vec<u8> {
    let clip = std::fs::read(media("clip.mp4")).unwrap();
    let all = boxes(&clip);
    let mut out = Vec::new();
    for (kind, bytes) in &all {
        if kind == b"ftyp" || kind == b"moov" {
            out.extend_from_slice(bytes);
        }
    }
    let payload = (mib << 20) + extra;
    out.extend_from_slice(&((payload + 8) as u32).to_be_bytes());
    out.extend_from_slice(b"mdat");
    let mut x: u32 = 0x9E37_79B9 ^ u32::from(seed);
    out.reserve(payload as usize);
    for _ in 0..payload {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        out.push(x as u8);
    }
    out
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
