//! Douyin (`platform: douyin`) helpers for end-to-end tests: the Chromium to drive, and
//! `dropcast login` by scanning the QR code the binary saves.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use serde_json::json;

use super::Env;

/// Generous bounds: the machine may be busy.
pub const BOUND: Duration = Duration::from_secs(90);

/// The browser these tests drive, or `None` when they are skipped (one line said so:
/// `super::tools::chromium`).
pub fn chromium() -> Option<PathBuf> {
    super::tools::chromium()
}

/// The text of the QR code in a PNG, read independently of dropcast's own decoder.
pub fn qr_text(png: &[u8]) -> Option<String> {
    let img = image::load_from_memory_with_format(png, image::ImageFormat::Png).ok()?;
    let mut prepared = rqrr::PreparedImage::prepare(img.to_luma8());
    let grids = prepared.detect_grids();
    let (_, text) = grids.first()?.decode().ok()?;
    Some(text)
}

/// `dropcast login studio --headless`, with the code it saves scanned through the
/// simulator's inspection endpoint, as a person would with the Douyin app.
pub async fn login_by_scanning(env: &Env) {
    let (child, token) = start_login(env).await;
    finish_login(env, child, &token).await;
}

/// Starts `dropcast login studio --headless` and waits for the QR code it saves; the
/// child and the code's token.
pub async fn start_login(env: &Env) -> (std::process::Child, String) {
    let mut cmd = env.cmd();
    cmd.args(["login", "studio", "--headless"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = cmd.spawn().unwrap();
    let png = env.path(".dropcast/browser/studio.login-qr.png");
    let started = std::time::Instant::now();
    let token = loop {
        assert!(
            started.elapsed() < BOUND,
            "no QR code saved at {}",
            png.display()
        );
        if let Ok(bytes) = std::fs::read(&png)
            && let Some(text) = qr_text(&bytes)
        {
            break text
                .strip_prefix("dropcast-sandbox-login:")
                .expect("the simulator's code")
                .to_owned();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    (child, token)
}

/// Scans the code `token` names and checks that `login` ends well.
pub async fn finish_login(env: &Env, child: std::process::Child, token: &str) {
    let png = env.path(".dropcast/browser/studio.login-qr.png");
    let scan = format!("{}/__sandbox/douyin/login/scan", env.sandbox.base_url());
    let answer = reqwest::Client::new()
        .post(scan)
        .json(&json!({"token": token, "nickname": "遇见工作室"}))
        .send()
        .await
        .unwrap();
    assert!(answer.status().is_success(), "{}", answer.status());
    let out = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "login failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("studio: logged in"), "{stdout}");
    assert!(
        stdout.contains(&png.display().to_string()),
        "the PNG's path is printed: {stdout}"
    );
    // The code is drawn in the terminal too (unicode half blocks).
    assert!(stdout.contains('█') || stdout.contains('▀'), "{stdout}");
    assert!(!png.exists(), "the code is removed once the login ended");
}
