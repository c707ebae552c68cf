//! Hangs, leaks and stuck files (issue 9): hostile user files (a FIFO or a device as a
//! cookie or a caption), names too long for the archive, archives that cannot finish,
//! unreadable videos, captions outside the inbox or shared by two videos. Each through
//! the real binary against a sandbox the test starts.

mod common;

use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use common::*;
use dropcast::sandbox::{self, SandboxOptions};
use serde_json::Value;

fn drop_bundle(env: &Env, rel: &str, variant: u8) {
    let video = env.inbox().join(rel);
    std::fs::create_dir_all(video.parent().unwrap()).unwrap();
    std::fs::write(&video, clip_variant(variant)).unwrap();
    std::fs::copy(media("clip.yaml"), video.with_extension("yaml")).unwrap();
}

fn mkfifo(path: &Path) {
    rustix::fs::mkfifoat(
        rustix::fs::CWD,
        path,
        rustix::fs::Mode::from_raw_mode(0o600),
    )
    .unwrap();
}

/// Waits (generously) for `child` to exit; kills it and returns `None` if it does not.
fn wait_exit(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

/// Runs `cmd` to its end, but at most `limit` (off the async threads).
async fn run_bounded(mut cmd: Command, limit: Duration) -> (Option<ExitStatus>, String, String) {
    tokio::task::spawn_blocking(move || {
        let dir = tempfile::tempdir().unwrap();
        let (out, err) = (dir.path().join("out"), dir.path().join("err"));
        let mut child = cmd
            .stdout(std::fs::File::create(&out).unwrap())
            .stderr(std::fs::File::create(&err).unwrap())
            .spawn()
            .unwrap();
        let status = wait_exit(&mut child, limit);
        let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
        (status, read(&out), read(&err))
    })
    .await
    .unwrap()
}

/// `dropcast status --json`, run to its end (blocking; for `wait_until`).
fn status_json(env: &Env) -> Value {
    let mut cmd = env.cmd();
    cmd.args(["status", "--json"]);
    status_json_of(cmd)
}

fn status_json_of(mut cmd: Command) -> Value {
    let out = cmd.output().unwrap();
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)))
}

fn held_reason(status: &Value, file: &str) -> Option<String> {
    status["held_in_inbox"]
        .as_array()?
        .iter()
        .find(|h| h["file"] == file)
        .and_then(|h| h["reason"].as_str().map(str::to_string))
}

/// The user's files in `dir`: the agent's own inbox lock (`.dropcast.lock`) left out.
fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name != ".dropcast.lock")
        .collect();
    names.sort();
    names
}

fn sigterm(child: &Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

fn status_url(agent: &Agent) -> String {
    agent
        .log_text()
        .split("url=")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap()
        .trim_end_matches('/')
        .to_string()
}

// ---------------------------------------------------------------------------------------
// Item 6: user files that are no regular files

// Regression (issue 9 item 6): a FIFO as cookie_file froze the whole agent (status server
// dead, new videos ignored, SIGTERM ignored).
#[tokio::test(flavor = "multi_thread")]
async fn a_fifo_as_cookie_file_freezes_nothing_and_sigterm_still_stops_the_agent() {
    let env = Env::configured(
        SandboxOptions::default(),
        &[
            ("accounts", "{main: {cookie_file: ./main.cookie}}"),
            ("status", "{listen: \"127.0.0.1:0\"}"),
        ],
        "",
    )
    .await;
    let cookie = env.path("main.cookie");
    std::fs::write(&cookie, "sessionid=logged-out-1; csrf_token=abcd\n").unwrap();
    let mut agent = env.spawn_watch();
    agent.wait_for_log("status server and dashboard").await;
    let url = status_url(&agent);
    drop_bundle(&env, "first.mp4", 1);
    agent.wait_for_log("The account is paused").await;

    // The cookie file is swapped for a FIFO nobody writes to: the re-check reads it.
    std::fs::remove_file(&cookie).unwrap();
    mkfifo(&cookie);
    agent.wait_for_log("FIFO").await;
    let log = agent.log_text();
    assert!(
        log.contains("the cookie file changed but cannot be used"),
        "{log}"
    );

    // The agent still answers and still takes new videos.
    let health = reqwest::Client::new()
        .get(format!("{url}/healthz"))
        .timeout(Duration::from_secs(20))
        .send()
        .await
        .unwrap();
    assert!(health.status().is_success());
    drop_bundle(&env, "second.mp4", 2);
    let mut seen = Value::Null;
    let queued = wait_until(Duration::from_secs(60), || {
        seen = status_json(&env);
        seen["queued"]
            .as_array()
            .is_some_and(|q| q.iter().any(|j| j["file"] == "second.mp4"))
    })
    .await;
    assert!(
        queued.is_ok(),
        "second.mp4 never queued: {seen:#}\n{}",
        agent.log_text()
    );

    // SIGTERM stops it within its grace time.
    sigterm(&agent.child);
    let child = &mut agent.child;
    let status = tokio::task::block_in_place(|| wait_exit(child, Duration::from_secs(30)));
    assert!(status.is_some(), "SIGTERM did not stop the agent");
    assert!(env.posts().await.is_empty());
}

// Regression (issue 9 item 6): `cookie_file: /dev/zero` grew to gigabytes of memory; a huge
// file was read whole.
#[tokio::test(flavor = "multi_thread")]
async fn a_device_or_a_huge_file_as_cookie_file_is_refused_unread() {
    for (cookie_file, says) in [
        ("/dev/zero", "is a character device, not a regular file"),
        ("./huge.cookie", "is larger than 65536 bytes"),
    ] {
        let accounts = format!("{{main: {{cookie_file: {cookie_file}}}}}");
        let env = Env::configured(SandboxOptions::default(), &[("accounts", &accounts)], "").await;
        // Sparse: 8 GiB that take no disk space, and must take no memory.
        let huge = std::fs::File::create(env.path("huge.cookie")).unwrap();
        huge.set_len(8 << 30).unwrap();
        let mut cmd = env.cmd();
        cmd.args(["watch", "--once"]);
        let (status, _, err) = run_bounded(cmd, Duration::from_secs(30)).await;
        let status = status.unwrap_or_else(|| panic!("{cookie_file}: still reading"));
        assert_eq!(status.code(), Some(2), "{cookie_file}: {err}");
        assert!(err.contains(says), "{cookie_file}: {err}");
        assert!(err.contains("account `main`"), "{err}");
    }
}

// Regression (issue 9 item 6): a FIFO as a caption blocked the job (and the command) forever.
#[tokio::test(flavor = "multi_thread")]
async fn a_fifo_as_caption_fails_the_job_at_once() {
    let env = Env::start("").await;
    env.write_inbox("clip.mp4", clip_variant(1));
    let fifo = env.path("fifo.yaml");
    mkfifo(&fifo);
    let mut cmd = env.cmd();
    cmd.arg("publish")
        .arg(env.inbox().join("clip.mp4"))
        .arg("--caption")
        .arg(&fifo);
    let (status, out, err) = run_bounded(cmd, Duration::from_secs(60)).await;
    let status = status.expect("publish hung on a FIFO caption");
    assert_eq!(status.code(), Some(1), "{out}\n{err}");
    assert!(out.contains("FIFO"), "{out}\n{err}");
    assert!(env.posts().await.is_empty());
    // The FIFO is outside the inbox: it stays where it is.
    assert!(fifo.exists());
}

// ---------------------------------------------------------------------------------------
// Item 8: names too long for the archive

// Regression (issue 9 item 8): a 243+ byte stem was posted, then never archived
// (`<stem>.receipt.json` is longer than the file system allows): stuck forever.
#[tokio::test(flavor = "multi_thread")]
async fn a_250_byte_stem_is_published_and_archived_under_a_name_that_fits() {
    let env = Env::start("").await;
    let stem = "a".repeat(250);
    drop_bundle(&env, &format!("{stem}.mp4"), 1);
    let out = env.watch_once().await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(env.posts().await.len(), 1);
    assert!(
        files_in(&env.inbox()).is_empty(),
        "{:?}",
        files_in(&env.inbox())
    );
    let done = files_in(&env.path("done"));
    assert_eq!(done.len(), 3, "{done:?}");
    for name in &done {
        assert!(name.len() <= 255, "{name}");
        assert!(name.starts_with("aaaa"), "{name}");
    }
    let receipt = done.iter().find(|n| n.ends_with(".receipt.json")).unwrap();
    let video = done.iter().find(|n| n.ends_with(".mp4")).unwrap();
    assert_eq!(
        receipt.trim_end_matches(".receipt.json"),
        video.trim_end_matches(".mp4"),
        "the receipt is beside its video"
    );
    assert!(done.iter().any(|n| n.ends_with(".yaml")), "{done:?}");
}

// ---------------------------------------------------------------------------------------
// Item 9: a half-done archive

// Regression (issue 9 item 9): an archive that could not be finished was never retried by
// the running agent, and `status` called the video "waiting for a caption".
#[tokio::test(flavor = "multi_thread")]
async fn an_archive_that_cannot_finish_is_retried_and_status_says_archiving() {
    let env = Env::start("").await;
    // `done/trip` is a file where the archive needs a folder: the move fails after the
    // post, for root too.
    std::fs::write(env.path("done/trip"), "in the way").unwrap();
    let agent = env.spawn_watch();
    drop_bundle(&env, "trip/clip.mp4", 1);
    let start = Instant::now();
    while env.posts().await.is_empty() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{}",
            agent.log_text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut seen = Value::Null;
    let shown = wait_until(Duration::from_secs(60), || {
        seen = status_json(&env);
        held_reason(&seen, "trip/clip.mp4").is_some_and(|r| r.starts_with("archiving: "))
    })
    .await;
    assert!(shown.is_ok(), "{seen:#}\n{}", agent.log_text());
    assert_eq!(
        seen["waiting_for_caption"],
        serde_json::json!([]),
        "not waiting for a caption: {seen:#}"
    );
    let mut cmd = env.cmd();
    cmd.arg("status");
    let text = String::from_utf8_lossy(&run(cmd).await.stdout).into_owned();
    assert!(text.contains("archiving: "), "{text}");

    // The user moves the file out of the way; the agent finishes the archive by itself.
    std::fs::rename(env.path("done/trip"), env.path("done/trip.old")).unwrap();
    agent
        .wait_for_archive(env.path("done/trip/clip.receipt.json"), 90)
        .await;
    assert!(env.path("done/trip/clip.mp4").exists());
    assert!(env.path("done/trip/clip.yaml").exists());
    assert!(!env.inbox().join("trip/clip.mp4").exists());
    assert_eq!(env.posts().await.len(), 1, "archived without posting again");
    let cleared = wait_until(Duration::from_secs(30), || {
        seen = status_json(&env);
        held_reason(&seen, "trip/clip.mp4").is_none()
    })
    .await;
    assert!(cleared.is_ok(), "{seen:#}");
}

// ---------------------------------------------------------------------------------------
// Item 12 and the archive-folder check: things root cannot be refused

/// `cmd` run as the unprivileged user `nobody` when the tests run as root (root reads
/// any file and writes any folder, so it cannot meet a permission problem). `None`, said
/// loudly, when that is impossible here.
fn unprivileged(env: &Env, cmd: Command) -> Option<Command> {
    // The test's own folder belongs to whoever the test runs as.
    use std::os::unix::fs::MetadataExt;
    if std::fs::metadata(env.dir.path()).unwrap().uid() != 0 {
        return Some(cmd);
    }
    // Everything the agent touches must be usable by `nobody`.
    for dir in [
        env.dir.path().to_path_buf(),
        env.inbox(),
        env.path("done"),
        env.path("failed"),
        env.path("duplicates"),
    ] {
        set_mode(&dir, 0o777);
    }
    // A copy of the binary `nobody` can reach wherever the clone lives (a checkout under
    // /root is not reachable for other users).
    let bin = env.path("bin/dropcast");
    if !bin.exists() {
        std::fs::create_dir_all(env.path("bin")).unwrap();
        std::fs::copy(assert_cmd::cargo::cargo_bin!("dropcast"), &bin).unwrap();
        set_mode(&env.path("bin"), 0o755);
        set_mode(&bin, 0o755);
    }
    let ours = assert_cmd::cargo::cargo_bin!("dropcast");
    let wrap = |cmd: &Command| {
        let mut wrapped = Command::new("setpriv");
        let program = if Path::new(cmd.get_program()) == Path::new(ours) {
            bin.as_os_str()
        } else {
            cmd.get_program()
        };
        wrapped
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .arg(program)
            .args(cmd.get_args());
        for (k, v) in cmd.get_envs() {
            match v {
                Some(v) => wrapped.env(k, v),
                None => wrapped.env_remove(k),
            };
        }
        if let Some(dir) = cmd.get_current_dir() {
            wrapped.current_dir(dir);
        }
        wrapped
    };
    let mut probe = Command::new(ours);
    probe.arg("--version");
    let works = wrap(&probe).output().is_ok_and(|out| out.status.success());
    if !works {
        common::tools::missing(
            &common::tools::SETPRIV,
            "running as root and cannot run dropcast as `nobody` (setpriv missing, or the \
             binary is not reachable for other users): root ignores permissions, so this \
             test cannot make a file unreadable or a folder unwritable",
        );
        return None;
    }
    Some(wrap(&cmd))
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn spawn_agent(env: &Env, mut cmd: Command) -> Agent {
    let log = env.path("agent.log");
    let child = cmd
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    Agent { child, log }
}

// Regression (issue 9 item 12): an unreadable video was ignored silently and
// `watch --once` exited 0.
#[tokio::test(flavor = "multi_thread")]
async fn an_unreadable_video_is_said_once_shown_in_status_and_fails_once() {
    let env = Env::start("").await;
    drop_bundle(&env, "good.mp4", 1);
    drop_bundle(&env, "locked.mp4", 2);
    let locked = env.inbox().join("locked.mp4");
    set_mode(&locked, 0o000);
    let mut once = env.cmd();
    once.args(["watch", "--once"]);
    let Some(once) = unprivileged(&env, once) else {
        return;
    };
    let out = run(once).await;
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(err.matches("cannot read this video").count(), 1, "{err}");
    assert!(err.contains("locked.mp4"), "{err}");
    assert!(
        err.contains("left in the inbox: it cannot be read"),
        "{err}"
    );
    assert_eq!(env.posts().await.len(), 1, "the readable one is published");
    assert!(locked.exists(), "the unreadable one stays where it is");

    // A running agent shows it in `status`, says it once, and publishes it once readable.
    let mut watch = env.cmd();
    watch.arg("watch");
    let agent = spawn_agent(&env, unprivileged(&env, watch).unwrap());
    let mut seen = Value::Null;
    let shown = wait_until(Duration::from_secs(60), || {
        // As the agent's user: the ledger's files stay theirs.
        let mut status = env.cmd();
        status.args(["status", "--json"]);
        seen = status_json_of(unprivileged(&env, status).unwrap());
        held_reason(&seen, "locked.mp4").is_some_and(|r| r.contains("cannot read this video"))
    })
    .await;
    assert!(shown.is_ok(), "{seen:#}\n{}", agent.log_text());
    // Many settle periods later (another video came and went), still said only once.
    drop_bundle(&env, "later.mp4", 3);
    agent
        .wait_for_archive(env.path("done/later.receipt.json"), 60)
        .await;
    assert_eq!(
        agent.log_text().matches("cannot read this video").count(),
        1,
        "{}",
        agent.log_text()
    );
    set_mode(&locked, 0o644);
    agent
        .wait_for_archive(env.path("done/locked.receipt.json"), 60)
        .await;
    assert_eq!(env.posts().await.len(), 3);
}

// Regression (issue 9, small): `watch` published before finding that done/ was not
// writable: checked at start (exit 2, naming it) and before step 5 (held, nothing posted).
#[tokio::test(flavor = "multi_thread")]
async fn an_unwritable_done_folder_is_found_before_anything_is_posted() {
    let env = Env::start_watch(&watch_rescanning("1s"), "").await;
    drop_bundle(&env, "clip.mp4", 1);
    let mut once = env.cmd();
    once.args(["watch", "--once"]);
    let Some(once) = unprivileged(&env, once) else {
        return;
    };
    set_mode(&env.path("done"), 0o555);
    let out = run(once).await;
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains(&env.path("done").display().to_string()),
        "{err}"
    );
    assert!(env.posts().await.is_empty());

    // Writable at start, then not: the job is held before step 5.
    set_mode(&env.path("done"), 0o777);
    std::fs::remove_file(env.inbox().join("clip.mp4")).unwrap();
    let mut watch = env.cmd();
    watch.arg("watch");
    let agent = spawn_agent(&env, unprivileged(&env, watch).unwrap());
    agent.wait_for_log("watching").await;
    set_mode(&env.path("done"), 0o555);
    drop_bundle(&env, "clip.mp4", 1);
    agent.wait_for_log("nothing is posted until it can").await;
    assert!(env.posts().await.is_empty());
    assert!(env.inbox().join("clip.mp4").exists());
    set_mode(&env.path("done"), 0o777);
    agent
        .wait_for_archive(env.path("done/clip.receipt.json"), 60)
        .await;
    assert_eq!(env.posts().await.len(), 1);
}

// ---------------------------------------------------------------------------------------
// Item 13: files outside the inbox

// Regression (issue 9 item 13): `publish VIDEO --caption FILE` moved a caption from outside
// the inbox into done/.
#[tokio::test(flavor = "multi_thread")]
async fn publish_with_a_caption_from_elsewhere_leaves_that_caption_where_it_is() {
    let env = Env::start("").await;
    env.write_inbox("clip.mp4", clip_variant(1));
    let elsewhere = env.path("notes");
    std::fs::create_dir_all(&elsewhere).unwrap();
    let caption = elsewhere.join("notes.yaml");
    std::fs::copy(media("clip.yaml"), &caption).unwrap();
    let mut cmd = env.cmd();
    cmd.arg("publish")
        .arg(env.inbox().join("clip.mp4"))
        .arg("--caption")
        .arg(&caption);
    let out = run(cmd).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(caption.exists(), "the caption outside the inbox stays");
    assert_eq!(
        files_in(&env.path("done")),
        vec!["clip.mp4".to_string(), "clip.receipt.json".to_string()]
    );
    assert_eq!(env.posts().await.len(), 1);
}

// ---------------------------------------------------------------------------------------
// Item 14: two videos, one caption

// Regression (issue 9 item 14): of `clip.mp4`, `clip.mov` and `clip.yaml`, the second video
// was marked failed while its files stayed in the inbox.
#[tokio::test(flavor = "multi_thread")]
async fn a_caption_shared_by_two_videos_publishes_neither_until_renamed() {
    let env = Env::start("").await;
    env.write_inbox("clip.mp4", clip_variant(1));
    env.write_inbox("clip.mov", clip_variant(2));
    env.drop_media("clip.yaml", "clip.yaml");
    let reason = "clip.yaml fits clip.mov and clip.mp4; rename one video and its caption";

    let out = env.watch_once().await;
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains(reason), "{err}");
    assert!(env.posts().await.is_empty());
    assert_eq!(
        files_in(&env.inbox()),
        vec!["clip.mov", "clip.mp4", "clip.yaml"],
        "nothing moved"
    );
    assert!(files_in(&env.path("failed")).is_empty());
    assert_eq!(status_json(&env)["counts"]["total"], 0, "no ledger job");

    let agent = env.spawn_watch();
    let mut seen = Value::Null;
    let shown = wait_until(Duration::from_secs(60), || {
        seen = status_json(&env);
        ["clip.mp4", "clip.mov"]
            .iter()
            .all(|f| held_reason(&seen, f).as_deref() == Some(reason))
    })
    .await;
    assert!(shown.is_ok(), "{seen:#}\n{}", agent.log_text());
    assert_eq!(seen["waiting_for_caption"], serde_json::json!([]));

    // Renaming one video (with a caption of its own) resolves it: both are published.
    env.drop_media("clip.yaml", "other.yaml");
    std::fs::rename(env.inbox().join("clip.mov"), env.inbox().join("other.mov")).unwrap();
    for receipt in ["done/clip.receipt.json", "done/other.receipt.json"] {
        agent.wait_for_archive(env.path(receipt), 60).await;
    }
    assert_eq!(env.posts().await.len(), 2);
    assert!(env.path("done/clip.yaml").exists());
    assert!(files_in(&env.path("failed")).is_empty());
}

// ---------------------------------------------------------------------------------------
// Smaller ones

// Regression (issue 9, small): `--once` exited 0 with videos left waiting for a caption,
// and the caption-wait line always named `clip.yaml beside clip.mp4`.
#[tokio::test(flavor = "multi_thread")]
async fn once_with_a_video_left_without_caption_exits_1_naming_it() {
    let env = Env::start("").await;
    std::fs::create_dir_all(env.inbox().join("trip")).unwrap();
    env.write_inbox("trip/sunset.mp4", clip_variant(1));
    let out = env.watch_once().await;
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("left in the inbox: no caption"), "{err}");
    assert!(err.contains("trip/sunset.mp4"), "{err}");
    assert!(err.contains("put sunset.yaml"), "{err}");
    assert!(!err.contains("clip.yaml"), "{err}");
}

// Regression (issue 9, small): a cookie file starting with a byte-order mark paused the
// account as expired, and a cookie file others can read was accepted silently.
#[tokio::test(flavor = "multi_thread")]
async fn a_cookie_file_with_a_bom_works_and_loose_permissions_are_warned_about() {
    let env = Env::with("accounts", "{main: {cookie_file: ./main.cookie}}").await;
    let cookie = env.path("main.cookie");
    std::fs::write(
        &cookie,
        format!("\u{feff}{}\r\n", sandbox::cookie_for("main")),
    )
    .unwrap();
    set_mode(&cookie, 0o644);
    drop_bundle(&env, "clip.mp4", 1);
    let out = env.watch_once().await;
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert_eq!(env.posts().await.len(), 1);
    assert_eq!(err.matches("chmod 600").count(), 1, "{err}");
    assert!(err.contains(&cookie.display().to_string()), "{err}");

    set_mode(&cookie, 0o600);
    drop_bundle(&env, "again.mp4", 2);
    let out = env.watch_once().await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!stderr(&out).contains("chmod 600"), "{}", stderr(&out));
}

// Regression (issue 9, small): a cookie without `sessionid` was reported as "no csrf_token",
// and the error said "account `main`: account `main`: …".
#[tokio::test(flavor = "multi_thread")]
async fn a_cookie_without_a_session_says_so_once() {
    let env = Env::start("").await;
    let mut cmd = env.cmd();
    cmd.args(["watch", "--once"])
        .env(COOKIE_VAR, "ttwid=1%7Cx; odin_tt=abc");
    let out = run(cmd).await;
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("no `sessionid=`"), "{err}");
    assert!(!err.contains("csrf_token"), "{err}");
    assert!(!err.contains("account `main`: account `main`"), "{err}");
    assert!(
        !err.contains("odin_tt=abc"),
        "never the cookie itself: {err}"
    );
}
