//! The dashboard in a real browser: headless Chromium driven over plain W3C WebDriver
//! (chromedriver, JSON over HTTP with reqwest). Loads `/` while a job is uploading, sees
//! it and a failed job listed, presses the failed job's Retry button, and sees the job
//! queued and its files back in the inbox. Saves a screenshot to `$DROPCAST_SCREENSHOT`
//! when set (the README's).
//!
//! Needs `chromium` and `chromedriver` (Debian: `apt-get install -y chromium
//! chromium-driver`; CI installs them). Without them the test is skipped with one
//! `SKIPPED (needs …)` line, or fails when `DROPCAST_REQUIRE_TOOLS` is set
//! (src/test_tools.rs); `DROPCAST_SKIP_BROWSER=1` skips it. `CHROME_BIN` and `CHROMEDRIVER`
//! override the programs.

use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use dropcast::config::Config;
use dropcast::ledger::JobState;
use dropcast::pipeline::live::{Held, Waiting};
use dropcast::platform::douyin_post;
use dropcast::receipt::UtcTime;
use dropcast::status;
use dropcast::words::Stage;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpListener;
use tokio::process::{Child, Command};

#[path = "common/in_process.rs"]
mod in_process;

use in_process::{Failure, agent_context, claim, failed_job};

/// The key W3C WebDriver puts element references under.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// How the failed job failed.
const FAILURE: Failure = Failure {
    caption: "text: \"sunset #travel\"\n",
    reason: "the platform refused the post: caption too long (status_code 8)",
    hint: "Shorten the caption, then press Retry (or run `dropcast retry`).",
};

/// Finds chromium and chromedriver, or skips with one line.
#[path = "../src/test_tools.rs"]
mod test_tools;

/// chromedriver, killed when dropped.
struct Driver {
    child: Child,
    base: String,
    http: reqwest::Client,
}

impl Driver {
    async fn start(chromedriver: &Path) -> Driver {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let mut child = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", chromedriver.display()));
        // It says when it listens.
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        tokio::time::timeout(Duration::from_secs(30), async {
            while let Some(line) = lines.next_line().await.unwrap() {
                if line.contains("started successfully") {
                    return;
                }
            }
            panic!("chromedriver ended before it was ready");
        })
        .await
        .expect("chromedriver did not start within 30s");
        // Keep draining its output so that it never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Driver {
            child,
            base: format!("http://127.0.0.1:{port}"),
            http: reqwest::Client::new(),
        }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut req = self
            .http
            .request(method.clone(), format!("{}{path}", self.base));
        if let Some(body) = body {
            req = req.json(&body);
        }
        let res = req.send().await.unwrap();
        let status = res.status();
        let v: Value = res.json().await.unwrap();
        assert!(status.is_success(), "{method} {path}: {status} {v}");
        v["value"].clone()
    }
}

struct Session<'a> {
    driver: &'a Driver,
    id: String,
}

impl Session<'_> {
    async fn new<'a>(driver: &'a Driver, chromium: &Path, profile: &Path) -> Session<'a> {
        let caps = json!({
            "capabilities": {"alwaysMatch": {
                "browserName": "chrome",
                "goog:chromeOptions": {
                    "binary": chromium,
                    "args": [
                        "--headless=new", "--no-sandbox", "--disable-gpu",
                        "--disable-dev-shm-usage",
                        "--disable-background-networking", "--disable-component-update",
                        "--disable-sync", "--no-first-run", "--window-size=1280,1400",
                        format!("--user-data-dir={}", profile.display()),
                    ],
                },
            }}
        });
        let v = driver
            .call(reqwest::Method::POST, "/session", Some(caps))
            .await;
        let id = v["sessionId"].as_str().unwrap().to_string();
        let session = Session { driver, id };
        session
            .post("/timeouts", json!({"script": 20_000, "implicit": 0}))
            .await;
        session
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        self.driver
            .call(
                reqwest::Method::POST,
                &format!("/session/{}{path}", self.id),
                Some(body),
            )
            .await
    }

    async fn get(&self, path: &str) -> Value {
        self.driver
            .call(
                reqwest::Method::GET,
                &format!("/session/{}{path}", self.id),
                None,
            )
            .await
    }

    /// Waits (on DOM changes, no polling) until `expr` is truthy in the page; returns it.
    async fn wait_for(&self, expr: &str) -> Value {
        let script = format!(
            "const done = arguments[arguments.length - 1];\n\
             const check = () => {{ const v = ({expr}); if (v) {{ done(v); return true; }} return false; }};\n\
             if (!check()) {{ const o = new MutationObserver(() => {{ if (check()) o.disconnect(); }});\n\
               o.observe(document.documentElement, {{subtree: true, childList: true, attributes: true, characterData: true}}); }}"
        );
        self.post("/execute/async", json!({"script": script, "args": []}))
            .await
    }

    async fn click(&self, css: &str) {
        let el = self
            .post("/element", json!({"using": "css selector", "value": css}))
            .await;
        let id = el[ELEMENT]
            .as_str()
            .unwrap_or_else(|| panic!("no element for {css}: {el}"))
            .to_string();
        self.post(&format!("/element/{id}/click"), json!({})).await;
    }

    async fn end(self) {
        self.driver
            .call(
                reqwest::Method::DELETE,
                &format!("/session/{}", self.id),
                None,
            )
            .await;
    }
}

/// Standard base64 (the screenshot) to bytes.
fn unbase64(text: &str) -> Vec<u8> {
    let value = |c: u8| -> u32 {
        match c {
            b'A'..=b'Z' => u32::from(c - b'A'),
            b'a'..=b'z' => u32::from(c - b'a') + 26,
            b'0'..=b'9' => u32::from(c - b'0') + 52,
            b'+' => 62,
            b'/' => 63,
            _ => panic!("not base64: {c}"),
        }
    };
    let clean: Vec<u8> = text
        .bytes()
        .filter(|b| !b.is_ascii_whitespace() && *b != b'=')
        .collect();
    let mut out = Vec::with_capacity(clean.len() * 3 / 4);
    for chunk in clean.chunks(4) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, c)| n | (value(*c) << (18 - 6 * i)));
        out.extend_from_slice(&n.to_be_bytes()[1..chunk.len()]);
    }
    out
}

#[test]
fn unbase64_decodes() {
    assert_eq!(unbase64("Zm9vYmFy"), b"foobar");
    assert_eq!(unbase64("Zm9vYg=="), b"foob");
    assert_eq!(unbase64("Zm9vYmE="), b"fooba");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_shows_live_jobs_and_retry_requeues_a_failed_one() {
    let Some(chromium) = test_tools::chromium() else {
        return;
    };
    let Some(chromedriver) = test_tools::chromedriver() else {
        return;
    };

    // An agent's context: a failed job archived in failed/, one uploading, one queued,
    // a post, a video waiting for its caption.
    let dir = tempfile::tempdir().unwrap();
    let config = Config::parse(
        "inbox: ./inbox\ndone: ./done\nfailed: ./failed\nduplicates: ./duplicates\n\
         state_dir: ./.dropcast\nplatform: {sandbox: true}\nstatus: {listen: off}\n",
        None,
        dir.path(),
    )
    .unwrap();
    let ctx = agent_context(config).await;
    let c = Arc::clone(&ctx);
    let (failed, uploading) = ctx
        .ledger(move |l| {
            let failed = failed_job(&c, l, "trips/sunset.mp4", b"sunset video", &FAILURE);
            let p = claim(l, "cats/nap.mp4", b"earlier post", None);
            l.mark_publish_sent(p.id).unwrap();
            l.mark_published(p.id, &douyin_post("7301234567890123456"))
                .unwrap();
            l.mark_done(p.id, Path::new("done/cats/nap.mp4")).unwrap();
            let uploading = claim(l, "trips/harbour.mp4", b"uploading now", None);
            claim(l, "trips/market.mp4", b"queued next", None);
            Ok((failed, uploading))
        })
        .await
        .unwrap();
    let progress = ctx.live.job_started("trips/harbour.mp4");
    ctx.live.job_step(
        "trips/harbour.mp4",
        &Stage::parse("upload"),
        Some(uploading.sha256.as_str()),
        Some("main"),
    );
    progress.start(48 << 20);
    progress.add(20 << 20);
    ctx.live.set_watching("native");
    ctx.live.set_waiting(vec![Waiting {
        video: "drafts/untitled.mp4".into(),
        since: Some(UtcTime::now()),
    }]);
    ctx.live.set_held(vec![Held {
        video: "trips/locked.mp4".into(),
        reason: "cannot read this video: permission denied".into(),
        since: Some(UtcTime::now()),
    }]);

    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = status::start(listener, Arc::clone(&ctx), None)
        .await
        .unwrap();

    let driver = Driver::start(&chromedriver).await;
    let profile = tempfile::tempdir().unwrap();
    let session = Session::new(&driver, &chromium, profile.path()).await;
    session
        .post("/url", json!({"url": format!("{}/", server.url())}))
        .await;

    // The job in flight and the failed job are listed.
    let row = session
        .wait_for(&format!(
            "document.querySelector('#in-flight tr[data-sha256=\"{}\"]')?.textContent",
            uploading.sha256.as_str()
        ))
        .await;
    let row = row.as_str().unwrap();
    for words in ["trips/harbour.mp4", "upload", "41%"] {
        assert!(row.contains(words), "{row}");
    }
    let hash = failed.sha256.as_str();
    let failed_row = format!("#failures tr[data-sha256=\"{hash}\"]");
    let text = session
        .wait_for(&format!(
            "document.querySelector('{failed_row}')?.textContent"
        ))
        .await;
    let text = text.as_str().unwrap();
    for words in [
        "trips/sunset.mp4",
        "caption too long",
        "Shorten the caption",
    ] {
        assert!(text.contains(words), "{text}");
    }

    // Regression (issue 10 item 5): the dashboard did not show videos held in the inbox,
    // which `dropcast status` lists from the same read model.
    let held = session
        .wait_for(
            "document.querySelector('#held tr[data-video=\"trips/locked.mp4\"]')?.textContent",
        )
        .await;
    assert!(
        held.as_str().unwrap().contains("permission denied"),
        "{held}"
    );

    // Progress moves on the page as the upload does.
    progress.add(10 << 20);
    session
        .wait_for(&format!(
            "document.querySelector('#in-flight tr[data-sha256=\"{}\"]')?.textContent.includes('62%')",
            uploading.sha256.as_str()
        ))
        .await;

    // The screenshot of everything listed (for the README when asked for).
    let png = unbase64(session.get("/screenshot").await.as_str().unwrap());
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    if let Some(path) = std::env::var_os("DROPCAST_SCREENSHOT") {
        std::fs::write(&path, &png).unwrap();
        eprintln!("screenshot saved to {}", Path::new(&path).display());
    }

    // Retry: the job leaves the failures and is queued; its files are back in the inbox.
    session.click(&format!("{failed_row} button.retry")).await;
    let queued = session
        .wait_for(&format!(
            "!document.querySelector('{failed_row}') && \
             document.querySelector('#queued tr[data-sha256=\"{hash}\"][data-state=\"queued\"]')?.textContent"
        ))
        .await;
    assert!(
        queued.as_str().unwrap().contains("trips/sunset.mp4"),
        "{queued}"
    );
    let message = session
        .wait_for("document.getElementById('message').textContent")
        .await;
    assert_eq!(message, "Requeued trips/sunset.mp4.");
    let id = failed.id;
    let job = ctx.ledger(move |l| l.job(id)).await.unwrap().unwrap();
    assert_eq!(job.state, JobState::Active);
    assert_eq!(
        std::fs::read(ctx.config.inbox.join("trips/sunset.mp4")).unwrap(),
        b"sunset video"
    );
    assert!(ctx.config.inbox.join("trips/sunset.yaml").exists());

    session.end().await;
    let mut child = driver.child;
    let _ = child.kill().await;
    server.shutdown().await;
}
