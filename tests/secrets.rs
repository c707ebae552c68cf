//! Secrets never leak (ARCHITECTURE.md "Invariants"): with `RUST_LOG=trace`, the account cookie (and its
//! `sessionid` and `csrf_token` alone), every `auth`, `tos_sign` and upload `token` appear
//! nowhere in stderr, stdout, receipts, `error.json` files or anything else the binary
//! writes under its folders. What to look for comes from the sandbox itself
//! (`GET /__sandbox/secrets`: everything it issued or was shown), so a secret the test
//! did not think of is still covered.
//!
//! The SQLite ledger is inspected too, but only reported on (stderr of the test), not
//! failed on: whether it may hold a secret is the ledger's own contract.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Output;

use common::*;
use dropcast::sandbox::{self, Fault, FaultAction, FaultStep, SandboxOptions};
use serde_json::json;

/// One string that must not appear, and what it is (for the report).
#[derive(Clone, Debug)]
struct Needle {
    what: String,
    value: String,
}

/// The cookie-derived secrets of the test account: the whole cookie and the values of
/// its credential cookies, each of which is a secret on its own.
fn cookie_needles() -> Vec<Needle> {
    let cookie = sandbox::cookie_for("main");
    let mut out = vec![Needle {
        what: "cookie".into(),
        value: cookie.clone(),
    }];
    for pair in cookie.split(';') {
        if let Some((name, value)) = pair.split_once('=') {
            let name = name.trim();
            if ["sessionid", "csrf_token", "passport_csrf_token"].contains(&name) {
                out.push(Needle {
                    what: format!("cookie {name} value"),
                    value: value.trim().to_owned(),
                });
            }
        }
    }
    assert_eq!(out.len(), 4, "the sandbox cookie changed shape: {cookie}");
    out
}

/// `GET /__sandbox/secrets`.
async fn sandbox_secrets(env: &Env) -> Vec<String> {
    let url = format!("{}/__sandbox/secrets", env.sandbox.base_url());
    let resp = reqwest::get(url).await.unwrap();
    assert!(resp.status().is_success(), "{}", resp.status());
    resp.json().await.unwrap()
}

/// What a sandbox secret is, from its shape.
fn classify(value: &str) -> &'static str {
    if value.starts_with("HMAC-SHA1:") {
        "auth"
    } else if value.starts_with("TOS-SIGN-") {
        "tos_sign"
    } else {
        "token"
    }
}

/// Every needle: the cookie's, the sandbox's, the secret tail of `auth` and `tos_sign`
/// alone, and the URL-encoded form of each where it differs.
fn needles(from_sandbox: &[String]) -> Vec<Needle> {
    let mut out = cookie_needles();
    let known: BTreeSet<String> = out.iter().map(|n| n.value.clone()).collect();
    for value in from_sandbox {
        if known.contains(value) {
            continue;
        }
        let what = classify(value);
        out.push(Needle {
            what: what.into(),
            value: value.clone(),
        });
        // `HMAC-SHA1:1.0:<expiry>:<ak>:<signature>`: the signature is the secret part.
        let tail = match what {
            "auth" => value.rsplit(':').next(),
            "tos_sign" => value.strip_prefix("TOS-SIGN-"),
            _ => None,
        };
        if let Some(tail) = tail.filter(|t| t.len() >= 16) {
            out.push(Needle {
                what: format!("{what} signature alone"),
                value: tail.to_owned(),
            });
        }
    }
    let encoded: Vec<Needle> = out
        .iter()
        .filter_map(|n| {
            let enc = serde_urlencoded::to_string([("", n.value.as_str())]).ok()?;
            let enc = enc.strip_prefix('=')?.to_owned();
            (enc != n.value).then(|| Needle {
                what: format!("{} (url-encoded)", n.what),
                value: enc,
            })
        })
        .collect();
    out.extend(encoded);
    out
}

/// Everything a run may show: asserts the sandbox saw the cookie, builds the needles.
async fn needles_after_run(env: &Env) -> (Vec<String>, Vec<Needle>) {
    let seen = sandbox_secrets(env).await;
    let cookie = sandbox::cookie_for("main");
    assert!(
        seen.contains(&cookie),
        "/__sandbox/secrets lacks the cookie the client sent: {seen:?}"
    );
    let needles = needles(&seen);
    (seen, needles)
}

fn find_in(bytes: &[u8], needle: &str) -> bool {
    let n = needle.as_bytes();
    !n.is_empty() && bytes.windows(n.len()).any(|w| w == n)
}

/// Where each needle occurs in a text: `"<source> line N: <needle what>: <line>"`.
fn leaks_in_text(source: &str, text: &str, needles: &[Needle]) -> Vec<String> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        for n in needles {
            if line.contains(&n.value) {
                let shown: String = line.chars().take(400).collect();
                out.push(format!("{source} line {}: {}: {shown}", i + 1, n.what));
            }
        }
    }
    out
}

fn is_ledger(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with("ledger.sqlite3"))
}

fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files_under(&path, out);
        } else {
            out.push(path);
        }
    }
}

/// Where each needle occurs in the files of the run's folder (done/, failed/,
/// duplicates/, the state dir, the inbox, the config), the ledger excepted.
fn leaks_in_files(env: &Env, needles: &[Needle]) -> (Vec<String>, usize) {
    let mut files = Vec::new();
    files_under(env.dir.path(), &mut files);
    let mut out = Vec::new();
    let mut scanned = 0;
    for file in files.iter().filter(|f| !is_ledger(f)) {
        let bytes = std::fs::read(file).unwrap();
        scanned += 1;
        let rel = file.strip_prefix(env.dir.path()).unwrap().display();
        for n in needles {
            if find_in(&bytes, &n.value) {
                out.push(format!("file {rel}: {}", n.what));
            }
        }
    }
    (out, scanned)
}

/// Where each needle occurs in the ledger: rows (table.column) and raw file bytes (which
/// include freed pages and the WAL). Reported, not failed on.
fn ledger_findings(env: &Env, needles: &[Needle]) -> Vec<String> {
    let mut out = Vec::new();
    let state = env.path(".dropcast");
    let db = state.join("ledger.sqlite3");
    if !db.exists() {
        return vec!["(no ledger at .dropcast/ledger.sqlite3)".into()];
    }
    let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY;
    match rusqlite::Connection::open_with_flags(&db, flags) {
        Ok(conn) => {
            let tables: Vec<String> = conn
                .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
                .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
                .unwrap_or_default();
            for table in tables {
                let sql = format!("SELECT * FROM \"{}\"", table.replace('"', "\"\""));
                let Ok(mut stmt) = conn.prepare(&sql) else {
                    continue;
                };
                let columns: Vec<String> = stmt.column_names().map(str::to_owned).collect();
                let Ok(mut rows) = stmt.query([]) else {
                    continue;
                };
                while let Ok(Some(row)) = rows.next() {
                    for (i, column) in columns.iter().enumerate() {
                        let bytes = match row.get_ref(i) {
                            Ok(rusqlite::types::ValueRef::Text(b))
                            | Ok(rusqlite::types::ValueRef::Blob(b)) => b.to_vec(),
                            _ => continue,
                        };
                        for n in needles {
                            if find_in(&bytes, &n.value) {
                                out.push(format!("ledger row {table}.{column}: {}", n.what));
                            }
                        }
                    }
                }
            }
        }
        Err(e) => out.push(format!("(cannot open the ledger: {e})")),
    }
    let mut files = Vec::new();
    files_under(&state, &mut files);
    for file in files.iter().filter(|f| is_ledger(f)) {
        let bytes = std::fs::read(file).unwrap_or_default();
        let name = file.file_name().unwrap().to_string_lossy();
        for n in needles {
            if find_in(&bytes, &n.value) {
                out.push(format!("ledger file {name} bytes: {}", n.what));
            }
        }
    }
    out
}

/// Fails, listing every leak, if any needle appears in the runs' output or files; prints
/// (but does not fail on) what the ledger holds.
fn assert_no_leaks(env: &Env, runs: &[(&str, &Output)], needles: &[Needle]) {
    let mut leaks = Vec::new();
    for (name, out) in runs {
        let err = String::from_utf8_lossy(&out.stderr);
        let std = String::from_utf8_lossy(&out.stdout);
        leaks.extend(leaks_in_text(&format!("{name} stderr"), &err, needles));
        leaks.extend(leaks_in_text(&format!("{name} stdout"), &std, needles));
    }
    let (in_files, scanned) = leaks_in_files(env, needles);
    leaks.extend(in_files);
    let ledger = ledger_findings(env, needles);
    if ledger.is_empty() {
        eprintln!("ledger: no secret found");
    } else {
        eprintln!("ledger findings (reported, not failed on):");
        for f in &ledger {
            eprintln!("  {f}");
        }
    }
    assert!(scanned > 0, "no files were scanned");
    assert!(
        leaks.is_empty(),
        "{} leak(s):\n{}",
        leaks.len(),
        leaks.join("\n")
    );
}

/// The env's command at `RUST_LOG=trace`: every crate's every log line.
fn traced(env: &Env) -> std::process::Command {
    let mut cmd = env.cmd();
    cmd.env("RUST_LOG", "trace");
    cmd
}

async fn watch_once_traced(env: &Env) -> Output {
    let mut cmd = traced(env);
    cmd.args(["watch", "--once"]);
    run(cmd).await
}

async fn check_traced(env: &Env) -> Output {
    let mut cmd = traced(env);
    cmd.arg("check");
    run(cmd).await
}

fn drop_example(env: &Env, stem: &str) {
    env.drop_media("clip.mp4", format!("{stem}.mp4"));
    env.drop_media("clip.yaml", format!("{stem}.yaml"));
}

/// The kinds of the non-cookie secrets the sandbox lists.
fn kinds(seen: &[String]) -> BTreeSet<&'static str> {
    let cookie: Vec<String> = cookie_needles().into_iter().map(|n| n.value).collect();
    seen.iter()
        .filter(|s| !cookie.contains(s))
        .map(|s| classify(s))
        .collect()
}

/// Checks the test itself: a leak planted in an output is found and named.
#[test]
fn a_planted_secret_is_found() {
    let seen = vec!["HMAC-SHA1:1.0:1:ak:0123456789abcdef0123".to_string()];
    let needles = needles(&seen);
    let whats: Vec<&str> = needles.iter().map(|n| n.what.as_str()).collect();
    assert!(whats.contains(&"auth signature alone"), "{whats:?}");
    assert!(whats.contains(&"auth (url-encoded)"), "{whats:?}");
    let sessionid = &cookie_needles()[2];
    assert_eq!(sessionid.what, "cookie sessionid value");
    let text = format!("ok\nheader cookie: x; sessionid={}; y\n", sessionid.value);
    let leaks = leaks_in_text("stderr", &text, &needles);
    assert_eq!(leaks.len(), 1, "{leaks:?}");
    assert!(leaks[0].starts_with("stderr line 2: cookie sessionid value"));
    let partial = "sig 0123456789abcdef0123 logged";
    assert_eq!(leaks_in_text("x", partial, &needles).len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn full_publish_at_trace_leaks_no_secret() {
    let env = Env::start("").await;
    drop_example(&env, "clip");
    env.drop_media("clip.mp4", "again.mp4");
    env.drop_media("clip.yaml", "again.yaml");

    let out = watch_once_traced(&env).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        env.path("done/clip.receipt.json").exists() || env.path("done/again.receipt.json").exists()
    );
    let dups: Vec<PathBuf> = {
        let mut f = Vec::new();
        files_under(&env.path("duplicates"), &mut f);
        f
    };
    assert!(
        dups.iter()
            .any(|p| p.to_string_lossy().ends_with(".receipt.json")),
        "the second copy should be a duplicate with a receipt: {dups:?}"
    );
    assert!(
        stderr(&out).contains("TRACE"),
        "RUST_LOG=trace took no effect:\n{}",
        stderr(&out)
    );

    let (seen, needles) = needles_after_run(&env).await;
    let kinds = kinds(&seen);
    for kind in ["auth", "tos_sign", "token"] {
        assert!(
            kinds.contains(kind),
            "the run never used a {kind}: {seen:?}"
        );
    }
    let csrf = &cookie_needles()[3];
    assert_eq!(csrf.what, "cookie csrf_token value");
    assert!(seen.contains(&csrf.value), "step 5 sent no csrf_token");

    // `publish` of a third copy: a duplicate, said on stdout.
    let third = env.path("third.mp4");
    std::fs::copy(media("clip.mp4"), &third).unwrap();
    let mut cmd = traced(&env);
    cmd.arg("publish")
        .arg(&third)
        .arg("--caption")
        .arg(media("clip.yaml"));
    let publish = run(cmd).await;
    assert!(publish.status.success(), "{}", stderr(&publish));

    assert_no_leaks(&env, &[("watch", &out), ("publish", &publish)], &needles);
}

#[tokio::test(flavor = "multi_thread")]
async fn json_logs_at_trace_leak_no_secret() {
    let env = Env::start("").await;
    drop_example(&env, "clip");
    let mut cmd = traced(&env);
    cmd.args(["--log-format", "json", "watch", "--once"]);
    let out = run(cmd).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(env.path("done/clip.receipt.json").exists());
    let (_, needles) = needles_after_run(&env).await;
    assert_no_leaks(&env, &[("watch --log-format json", &out)], &needles);
}

#[tokio::test(flavor = "multi_thread")]
async fn expired_cookie_leaks_no_secret() {
    // The sandbox says "not logged in" to every step 1.
    let expired = Fault::new(
        FaultStep::Credentials,
        FaultAction::Body {
            body: json!({"status_code": 8}),
        },
    );
    let options = SandboxOptions {
        faults: vec![expired],
        ..SandboxOptions::default()
    };
    let env = Env::configured(options, &[], "").await;
    drop_example(&env, "clip");

    let out = watch_once_traced(&env).await;
    assert!(env.posts().await.is_empty());
    assert!(
        env.inbox().join("clip.mp4").exists(),
        "a job with an expired cookie is held in the inbox"
    );
    let check = check_traced(&env).await;
    assert!(!check.status.success(), "check passed an expired cookie");
    let said = String::from_utf8_lossy(&check.stdout);
    assert!(said.contains("expired"), "check did not say so: {said}");
    let mut cmd = traced(&env);
    cmd.arg("publish").arg(env.inbox().join("clip.mp4"));
    let publish = run(cmd).await;
    assert!(!publish.status.success());

    let (_, needles) = needles_after_run(&env).await;
    assert_no_leaks(
        &env,
        &[("watch", &out), ("check", &check), ("publish", &publish)],
        &needles,
    );
}

/// A traced `watch --once` of the example clip with `fault` armed: it fails the job,
/// posts nothing and writes an error.json to scan.
async fn failed_run_with(fault: Fault) -> (Env, Output) {
    let env = Env::with_faults(vec![fault]).await;
    drop_example(&env, "clip");
    let out = watch_once_traced(&env).await;
    assert!(!out.status.success(), "{}", stderr(&out));
    assert!(env.posts().await.is_empty());
    assert!(
        env.path("failed/clip.error.json").exists(),
        "no error.json to scan:\n{}",
        stderr(&out)
    );
    (env, out)
}

#[tokio::test(flavor = "multi_thread")]
async fn upload_refused_with_401_leaks_no_secret() {
    // Every upload is refused as if `tos_sign` had expired.
    let refused = Fault::new(
        FaultStep::Upload,
        FaultAction::Status {
            status: 401,
            retry_after: None,
            body: None,
        },
    );
    let (env, out) = failed_run_with(refused).await;
    let counts = env.requests().await;
    assert!(counts["upload"].as_u64().unwrap_or(0) >= 1, "{counts}");

    let (seen, needles) = needles_after_run(&env).await;
    assert!(kinds(&seen).contains("tos_sign"), "{seen:?}");
    assert_no_leaks(&env, &[("watch", &out)], &needles);
}

#[tokio::test(flavor = "multi_thread")]
async fn check_at_trace_leaks_no_secret() {
    let env = Env::start("").await;
    let out = check_traced(&env).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("session works"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let (seen, needles) = needles_after_run(&env).await;
    assert!(kinds(&seen).contains("auth"), "check got no auth: {seen:?}");
    assert_no_leaks(&env, &[("check", &out)], &needles);
}

/// A platform that quotes the request's credentials back in its error message (real
/// services do, e.g. "invalid csrf_token: …"): the reason must be scrubbed before it
/// reaches logs, stdout or `error.json`.
#[tokio::test(flavor = "multi_thread")]
async fn platform_error_quoting_the_cookie_leaks_no_secret() {
    let cookies = cookie_needles();
    let message = format!(
        "csrf_token {} does not match session {} (cookie: {})",
        cookies[3].value, cookies[2].value, cookies[0].value
    );
    let echo = Fault::new(
        FaultStep::Create,
        FaultAction::Body {
            body: json!({"status_code": 2, "status_msg": message}),
        },
    );
    let (env, out) = failed_run_with(echo).await;

    let (_, needles) = needles_after_run(&env).await;
    assert_no_leaks(&env, &[("watch", &out)], &needles);
}
