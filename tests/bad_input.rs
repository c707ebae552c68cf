//! The bad-input table, one test per row, each through the real binary against a sandbox
//! the test starts on 127.0.0.1:0: every bad caption or video ends in `failed/` with a
//! reason that names the file, the line and column (and the field), a good bundle next to
//! it is published anyway, and `dropcast validate` prints the same reason. Symlinks are
//! left alone and logged once; non-UTF-8 names keep their own names. Bad configs (accounts
//! and platforms) stop the agent with exit 2 before it touches anything, naming the position.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use serde_json::{Value, json};
use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, UtcOffset};

/// What a bad caption's reason must say.
struct Expect<'a> {
    /// The `line:column` the reason points at; `None` for a problem of the whole file.
    at: Option<(usize, usize)>,
    /// The field named after the position.
    field: Option<&'a str>,
    /// Specific wording the reason must contain.
    wording: &'a [&'a str],
    /// The reason and `validate` agree up to this text (the rest depends on the clock).
    same_until: Option<&'a str>,
}

impl Expect<'_> {
    const fn at(line: usize, column: usize) -> Self {
        Expect {
            at: Some((line, column)),
            field: None,
            wording: &[],
            same_until: None,
        }
    }
}

/// What a row's run left behind, for row-specific checks.
struct Ran {
    reason: String,
    elapsed: Duration,
}

/// Puts `stem.mp4` (distinct bytes per row) with the bad `caption` into the inbox together
/// with a good bundle, runs `watch --once`, and checks the row ends as the table says.
async fn bad_caption_row(n: u8, stem: &str, caption: &[u8], expect: Expect<'_>) -> Ran {
    let env = Env::start("").await;
    let video = clip_variant(n);
    env.write_inbox(format!("{stem}.mp4"), &video);
    env.write_inbox(format!("{stem}.yaml"), caption);
    put_good_bundle(&env, "good");

    let started = Instant::now();
    let out = env.watch_once().await;
    let elapsed = started.elapsed();
    let log = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "exit status\n{log}");

    // The bad bundle moved to failed/, byte for byte.
    assert!(!env.inbox().join(format!("{stem}.mp4")).exists(), "{log}");
    assert!(!env.inbox().join(format!("{stem}.yaml")).exists(), "{log}");
    assert_eq!(
        std::fs::read(env.path(&format!("failed/{stem}.mp4"))).unwrap(),
        video
    );
    assert_eq!(
        std::fs::read(env.path(&format!("failed/{stem}.yaml"))).unwrap(),
        caption
    );
    let err = read_json(&env.path(&format!("failed/{stem}.error.json")));
    let reason = err["reason"]
        .as_str()
        .unwrap_or_else(|| panic!("no reason: {err:#}"))
        .to_owned();
    assert_eq!(err["class"], json!("caption"), "{err:#}");
    assert!(
        err["hint"].as_str().is_some_and(|h| !h.trim().is_empty()),
        "{err:#}"
    );

    // Names the file, the position and the field, with the specific wording.
    let file = format!("{stem}.yaml");
    let mut head = match expect.at {
        Some((line, column)) => format!("{file}:{line}:{column}: "),
        None => format!("{file}: "),
    };
    if let Some(field) = expect.field {
        head.push_str(&format!("{field}: "));
    }
    assert!(reason.contains(&head), "reason lacks {head:?}:\n{reason}");
    for words in expect.wording {
        assert!(reason.contains(words), "reason lacks {words:?}:\n{reason}");
    }

    // The agent kept going: the good bundle was published, and nothing else was.
    assert_good_published(&env, "good", &log).await;

    // `dropcast validate` on the same caption exits 2 with the same reason.
    let moved = env.path(&format!("failed/{stem}.yaml"));
    let checked = env.validate(&moved).await;
    let printed = String::from_utf8_lossy(&checked.stdout).into_owned();
    assert_eq!(
        checked.status.code(),
        Some(2),
        "{printed}{}",
        stderr(&checked)
    );
    let cut = |text: &str| -> Vec<String> {
        messages(text, &file)
            .into_iter()
            .map(|m| match expect.same_until.and_then(|u| m.find(u)) {
                Some(at) => m[..at].to_owned(),
                None => m,
            })
            .collect()
    };
    assert_eq!(
        cut(&reason),
        cut(&printed),
        "validate differs from the receipt\nreceipt: {reason}\nvalidate: {printed}"
    );

    Ran { reason, elapsed }
}

/// Each problem line of a reason with everything up to the file name cut off (the
/// receipt names the inbox path, `validate` the path it was given).
fn messages(text: &str, file: &str) -> Vec<String> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| match l.find(file) {
            Some(at) => l[at + file.len()..].to_owned(),
            None => l.to_owned(),
        })
        .collect()
}

/// The example clip and caption under `stem`: bytes no bad row uses.
fn put_good_bundle(env: &Env, stem: &str) {
    env.drop_media("clip.mp4", format!("{stem}.mp4"));
    env.drop_media("clip.yaml", format!("{stem}.yaml"));
}

/// The good bundle is in `done/` and is the only post.
async fn assert_good_published(env: &Env, stem: &str, log: &str) {
    assert!(
        env.path(&format!("done/{stem}.mp4")).exists(),
        "the good bundle was not published:\n{log}"
    );
    let receipt = read_json(&env.path(&format!("done/{stem}.receipt.json")));
    let sha = sha256_hex(&std::fs::read(media("clip.mp4")).unwrap());
    assert_eq!(receipt["sha256"], json!(sha));
    let posts = env.posts().await;
    assert_eq!(posts.len(), 1, "only the good bundle is posted: {posts:#?}");
    assert_eq!(posts[0]["sha256"], json!(sha));
}

fn form<'a>(post: &'a Value, field: &str) -> &'a str {
    post.get("form")
        .and_then(|f| f.get(field))
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("post has no form field {field}: {post:#}"))
}

/// `at`, whole seconds, written in +08:00 as a caption would.
fn rfc3339_beijing(at: OffsetDateTime) -> String {
    let offset = UtcOffset::from_hms(8, 0, 0).unwrap();
    at.replace_nanosecond(0)
        .unwrap()
        .to_offset(offset)
        .format(&Rfc3339)
        .unwrap()
}

/// The allowed range a `publish_at` reason states (`… i.e. between A and B`).
fn stated_window(reason: &str) -> (OffsetDateTime, OffsetDateTime, String) {
    let rest = reason
        .split("i.e. between ")
        .nth(1)
        .unwrap_or_else(|| panic!("no range in {reason}"));
    let (a, b) = rest
        .split_once(" and ")
        .unwrap_or_else(|| panic!("no range in {reason}"));
    let b = b.split_whitespace().next().unwrap_or_default();
    let parse = |s: &str| {
        OffsetDateTime::parse(s, &Rfc3339).unwrap_or_else(|e| panic!("{s:?} in {reason}: {e}"))
    };
    (parse(a), parse(b), a.to_owned())
}

/// A `publish_at` row: the stated range is now + 2 h … now + 14 d, as the agent's clock
/// saw it during the run, shown in the caption's own offset.
async fn publish_at_row(n: u8, stem: &str, at: OffsetDateTime, when: &str) {
    let caption = format!("text: \"定时发布\"\npublish_at: {}\n", rfc3339_beijing(at));
    let before = OffsetDateTime::now_utc();
    let ran = bad_caption_row(
        n,
        stem,
        caption.as_bytes(),
        Expect {
            field: Some("publish_at"),
            wording: &[when, "between 2 hours and 14 days from now"],
            same_until: Some("i.e. between"),
            ..Expect::at(2, 13)
        },
    )
    .await;
    let after = OffsetDateTime::now_utc();
    let (earliest, latest, shown) = stated_window(&ran.reason);
    let hours = time::Duration::hours;
    let second = time::Duration::seconds(1);
    assert!(
        earliest >= before + hours(2) - second && earliest <= after + hours(2) + second,
        "earliest {earliest} not now + 2 h: {}",
        ran.reason
    );
    assert!(
        latest >= before + hours(14 * 24) - second && latest <= after + hours(14 * 24) + second,
        "latest {latest} not now + 14 days: {}",
        ran.reason
    );
    assert!(
        shown.ends_with("+08:00"),
        "the range is shown in the caption's offset: {}",
        ran.reason
    );
}

// ---- Caption rows ----

#[tokio::test(flavor = "multi_thread")]
async fn yaml_syntax_error_names_line_and_column() {
    // An unquoted `: ` inside the text: the most common way to break a caption.
    let ran = bad_caption_row(
        1,
        "syntax",
        "text: 注意: 这是一个视频\nvisibility: public\n".as_bytes(),
        Expect {
            wording: &["invalid YAML"],
            ..Expect::at(1, 9)
        },
    )
    .await;
    assert!(ran.reason.contains("mapping values"), "{}", ran.reason);
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_field_suggests_the_known_one() {
    bad_caption_row(
        2,
        "unknown",
        b"text: \"hello #dropcast\"\nvisiblity: public\n",
        Expect {
            wording: &["unknown field `visiblity`", "did you mean `visibility`"],
            ..Expect::at(2, 1)
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_type_says_what_was_expected_and_found() {
    // `yes` is a string in YAML 1.2, not a boolean.
    bad_caption_row(
        3,
        "wrongtype",
        b"text: hello\nallow_download: yes\n",
        Expect {
            field: Some("allow_download"),
            wording: &["expected true or false", "found a string"],
            ..Expect::at(2, 17)
        },
    )
    .await;
}

/// Nine levels of nine aliases each: 9^9 (387 million) strings if expanded.
fn billion_laughs() -> Vec<u8> {
    let mut text = String::from(
        "text: hi\na: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n",
    );
    let names = ["a", "b", "c", "d", "e", "f", "g", "h", "i"];
    for w in names.windows(2) {
        let refs = vec![format!("*{}", w[0]); 9].join(",");
        text.push_str(&format!("{}: &{} [{}]\n", w[1], w[1], refs));
    }
    text.into_bytes()
}

/// Reported at the first alias (`b: &b [*a, …]`, line 3 column 8), quickly, and the
/// agent keeps going.
#[tokio::test(flavor = "multi_thread")]
async fn alias_bomb_fails_quickly_naming_the_aliases() {
    let ran = bad_caption_row(
        4,
        "bomb",
        &billion_laughs(),
        Expect {
            wording: &["invalid YAML", "aliases", "alias bomb"],
            ..Expect::at(3, 8)
        },
    )
    .await;
    assert!(
        ran.elapsed < Duration::from_secs(20),
        "took {:?}",
        ran.elapsed
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn caption_over_64_kib_is_refused_naming_size_and_limit() {
    // 70,000 bytes of real text, not a comment: `text: "好好…a"\n`.
    let mut caption = String::from("text: \"");
    caption.push_str(&"好".repeat(23_330));
    caption.push_str("a\"\n");
    assert_eq!(caption.len(), 70_000);
    // A whole-file problem: no line and column to point at.
    bad_caption_row(
        6,
        "big",
        caption.as_bytes(),
        Expect {
            at: None,
            field: None,
            wording: &["70000 bytes", "64 KiB"],
            same_until: None,
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn mention_without_an_id_names_the_mention() {
    let ran = bad_caption_row(
        7,
        "mention",
        "text: \"合拍 @小红 和 @小明\"\nmentions: {小明: \"84990209480\"}\n".as_bytes(),
        Expect {
            field: Some("text"),
            wording: &["`@小红` has no user id", "小红: \"<id>\"", "mentions"],
            ..Expect::at(1, 7)
        },
    )
    .await;
    assert!(
        !ran.reason.contains("@小明"),
        "the mention that has an id is fine: {}",
        ran.reason
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn publish_at_in_the_past_states_the_allowed_range() {
    let at = OffsetDateTime::now_utc() - time::Duration::days(1);
    publish_at_row(8, "past", at, "too soon").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn publish_at_20_days_ahead_states_the_allowed_range() {
    let at = OffsetDateTime::now_utc() + time::Duration::days(20);
    publish_at_row(9, "far", at, "too far ahead").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn caption_that_is_not_utf8_names_the_first_bad_byte() {
    // Latin-1 `é` (0xE9), as an old editor would save it.
    bad_caption_row(
        10,
        "latin1",
        b"text: \"caf\xe9 au lait\"\n",
        Expect {
            wording: &["not UTF-8"],
            ..Expect::at(1, 11)
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn caption_that_is_a_list_says_a_mapping_was_expected() {
    let ran = bad_caption_row(
        11,
        "list",
        b"- text: hello\n- visibility: public\n",
        Expect {
            wording: &["expected a mapping, found a list"],
            ..Expect::at(1, 1)
        },
    )
    .await;
    let first = ran.reason.lines().next().unwrap_or_default();
    assert!(
        first.contains("expected a mapping, found a list"),
        "the shape comes first: {}",
        ran.reason
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn duplicate_key_points_at_the_second_one() {
    bad_caption_row(
        12,
        "dupkey",
        b"text: \"one\"\nvisibility: public\ntext: \"two\"\n",
        Expect {
            wording: &["duplicate key `text`"],
            ..Expect::at(3, 1)
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn empty_text_is_refused() {
    bad_caption_row(
        13,
        "emptytext",
        b"text: \"\"\nvisibility: public\n",
        Expect {
            field: Some("text"),
            wording: &["empty"],
            ..Expect::at(1, 7)
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_visibility_lists_the_allowed_values() {
    bad_caption_row(
        14,
        "everyone",
        b"text: hello\nvisibility: everyone\n",
        Expect {
            field: Some("visibility"),
            wording: &["`everyone`", "`public`", "`private`", "`friends`"],
            ..Expect::at(2, 13)
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn cover_at_that_is_no_duration_shows_an_example() {
    bad_caption_row(
        15,
        "soon",
        b"text: hello\ncover_at: soon\n",
        Expect {
            field: Some("cover_at"),
            wording: &["`soon` is not a duration", "1.5s"],
            ..Expect::at(2, 11)
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn collection_without_order_names_the_missing_key() {
    bad_caption_row(
        16,
        "noorder",
        b"text: hello\ncollection: {id: \"7012345678901234567\"}\n",
        Expect {
            field: Some("collection"),
            wording: &["missing required field `order`"],
            ..Expect::at(2, 1)
        },
    )
    .await;
}

// ---- publish_at inside the window ----

#[tokio::test(flavor = "multi_thread")]
async fn publish_at_3_hours_ahead_is_sent_as_timing() {
    let env = Env::start("").await;
    let at = OffsetDateTime::now_utc().replace_nanosecond(0).unwrap() + time::Duration::hours(3);
    env.write_inbox("later.mp4", clip_variant(17));
    env.write_inbox(
        "later.yaml",
        format!(
            "text: \"三小时后见 #dropcast\"\npublish_at: {}\n",
            rfc3339_beijing(at)
        ),
    );
    let out = env.watch_once().await;
    assert!(out.status.success(), "{}", stderr(&out));
    let posts = env.posts().await;
    assert_eq!(posts.len(), 1, "{posts:#?}");
    assert_eq!(form(&posts[0], "timing"), at.unix_timestamp().to_string());
    let receipt = read_json(&env.path("done/later.receipt.json"));
    let recorded = receipt["publish_at"]
        .as_str()
        .and_then(|s| OffsetDateTime::parse(s, &Rfc3339).ok());
    assert_eq!(recorded, Some(at), "{receipt:#}");
}

// ---- Video rows ----

/// A file that cannot be a video, with a good caption, next to a good bundle: failed at
/// once (not after `watch.incomplete_timeout`, 10 minutes by default) as "not a video".
async fn not_a_video_row(name: &str, bytes: &[u8], wording: &str) {
    let env = Env::start("").await;
    let stem = Path::new(name).file_stem().unwrap().to_str().unwrap();
    env.write_inbox(name, bytes);
    env.drop_media("clip.yaml", format!("{stem}.yaml"));
    put_good_bundle(&env, "good");

    let started = Instant::now();
    let out = env.watch_once().await;
    let log = stderr(&out);
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "not failed at once: {:?}",
        started.elapsed()
    );
    assert_eq!(out.status.code(), Some(1), "{log}");
    assert!(!env.inbox().join(name).exists(), "{log}");
    assert_eq!(
        std::fs::read(env.path(&format!("failed/{name}"))).unwrap(),
        bytes
    );
    assert!(env.path(&format!("failed/{stem}.yaml")).exists(), "{log}");
    let err = read_json(&env.path(&format!("failed/{stem}.error.json")));
    let reason = err["reason"].as_str().unwrap_or_default();
    assert!(reason.contains(name), "names the file: {err:#}");
    assert!(reason.contains("not a video"), "{err:#}");
    assert!(reason.contains(wording), "{err:#}");
    assert_eq!(err["class"], json!("video"), "{err:#}");
    assert!(
        err["hint"].as_str().is_some_and(|h| !h.trim().is_empty()),
        "{err:#}"
    );
    assert_good_published(&env, "good", &log).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn zero_byte_video_fails_at_once() {
    not_a_video_row("empty.mp4", b"", "0 bytes").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn text_file_named_mp4_fails_at_once() {
    not_a_video_row(
        "notes.mp4",
        b"shot list: intro, b-roll, outro\n",
        "not an MP4 box",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn png_named_mov_fails_at_once() {
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend_from_slice(
        b"\x00\x00\x00\x0dIHDR\x00\x00\x00\x10\x00\x00\x00\x10\x08\x06\x00\x00\x00",
    );
    png.extend_from_slice(&[0x1f, 0xf3, 0xff, 0x61]);
    png.extend_from_slice(b"\x00\x00\x00\x00IEND\xae\x42\x60\x82");
    not_a_video_row("poster.mov", &png, "PNG").await;
}

// ---- Symlinks ----

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread")]
async fn symlinked_video_is_left_alone_not_posted_and_logged_once() {
    let env = Env::start_watch(&watch_rescanning("200ms"), "").await;
    let target = env.path("outside/real.mp4");
    std::fs::create_dir_all(target.parent().unwrap()).unwrap();
    std::fs::write(&target, clip_variant(18)).unwrap();
    let link = env.inbox().join("link.mp4");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    env.drop_media("clip.yaml", "link.yaml");
    put_good_bundle(&env, "good");

    let agent = env.spawn_watch();
    agent
        .wait_for_file(env.path("done/good.receipt.json"), 60)
        .await;
    // Several full scans see the link again; it is logged only the first time.
    let log_path = agent.log.clone();
    wait_until(Duration::from_secs(60), move || {
        std::fs::read_to_string(&log_path)
            .map(|t| t.matches("periodic rescan").count() >= 3)
            .unwrap_or(false)
    })
    .await
    .unwrap_or_else(|_| panic!("no rescans:\n{}", agent.log_text()));

    // The agent is still running: a bundle dropped now is published.
    env.write_inbox("later.mp4", clip_variant(19));
    env.drop_media("clip.yaml", "later.yaml");
    agent
        .wait_for_file(env.path("done/later.receipt.json"), 60)
        .await;

    let log = agent.log_text();
    assert_eq!(
        std::fs::read_link(&link).ok().as_deref(),
        Some(target.as_path()),
        "the symlink stays where it is"
    );
    assert_eq!(std::fs::read(&target).unwrap(), clip_variant(18));
    assert!(env.inbox().join("link.yaml").exists(), "{log}");
    for dir in ["done", "failed", "duplicates"] {
        assert!(
            !env.path(&format!("{dir}/link.mp4")).exists(),
            "{dir}: {log}"
        );
    }
    let posts = env.posts().await;
    assert_eq!(posts.len(), 2, "{posts:#?}");
    let linked = sha256_hex(&clip_variant(18));
    assert!(
        posts.iter().all(|p| p["sha256"] != json!(linked)),
        "{posts:#?}"
    );
    assert_eq!(
        log.matches("symlink in the inbox is not followed").count(),
        1,
        "logged once:\n{log}"
    );
    assert!(log.contains("link.mp4"), "the log names the link:\n{log}");
}

// ---- Non-UTF-8 names ----

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread")]
async fn non_utf8_names_are_published_and_archived_under_their_own_names() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let env = Env::start("").await;
    let name = |ext: &str| {
        let mut bytes = b"\xe5\xbd\xb1\xff-clip.".to_vec();
        bytes.extend_from_slice(ext.as_bytes());
        OsStr::from_bytes(&bytes).to_owned()
    };
    env.write_inbox(name("mp4"), clip_variant(20));
    env.drop_media("clip.yaml", name("yaml"));

    let out = env.watch_once().await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!env.inbox().join(name("mp4")).exists());
    assert_eq!(
        std::fs::read(env.path("done").join(name("mp4"))).unwrap(),
        clip_variant(20)
    );
    assert!(env.path("done").join(name("yaml")).exists());
    let receipt = read_json(&env.path("done").join(name("receipt.json")));
    assert_eq!(receipt["sha256"], json!(sha256_hex(&clip_variant(20))));
    let posts = env.posts().await;
    assert_eq!(posts.len(), 1, "{posts:#?}");
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread")]
async fn non_utf8_named_bundle_with_a_bad_caption_fails_under_its_own_name() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let env = Env::start("").await;
    let name = |ext: &str| {
        let mut bytes = b"bad-\xfe.".to_vec();
        bytes.extend_from_slice(ext.as_bytes());
        OsStr::from_bytes(&bytes).to_owned()
    };
    env.write_inbox(name("mp4"), clip_variant(21));
    env.write_inbox(name("yaml"), "text: hello\nvisiblity: public\n");
    put_good_bundle(&env, "good");

    let out = env.watch_once().await;
    let log = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{log}");
    assert!(env.path("failed").join(name("mp4")).exists(), "{log}");
    assert!(env.path("failed").join(name("yaml")).exists(), "{log}");
    let err = read_json(&env.path("failed").join(name("error.json")));
    let reason = err["reason"].as_str().unwrap_or_default();
    // The name is shown with U+FFFD for the bad byte.
    assert!(
        reason.contains("bad-\u{fffd}.yaml:2:1: unknown field `visiblity`"),
        "{err:#}"
    );
    assert_good_published(&env, "good", &log).await;
}

// ---- Config rows: accounts and platforms (issue 10 item 3) ----

/// The `line:column` where `marker` (unique in the config) starts.
fn position_of(config: &str, marker: &str) -> String {
    assert_eq!(config.matches(marker).count(), 1, "{marker:?} in\n{config}");
    let at = config.find(marker).unwrap();
    let line = config[..at].matches('\n').count() + 1;
    let line_start = config[..at].rfind('\n').map_or(0, |i| i + 1);
    let column = config[line_start..at].chars().count() + 1;
    format!("{line}:{column}")
}

/// A bad config through the real binary: `watch --once` exits 2 before it creates or
/// publishes anything, naming the file, the position of `marker`, the key, and `message`.
async fn bad_config_row(overrides: &[(&str, &str)], marker: &str, key: &str, message: &str) {
    let env = Env::configured(dropcast::sandbox::SandboxOptions::default(), overrides, "").await;
    put_good_bundle(&env, "good");
    let text = std::fs::read_to_string(&env.config).unwrap();
    let out = env.watch_once().await;
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    let expected = format!(
        "{}:{}: {key}: {message}",
        env.config.display(),
        position_of(&text, marker)
    );
    assert!(err.contains(&expected), "lacks {expected:?}:\n{err}");
    assert!(env.inbox().join("good.mp4").exists(), "{err}");
    assert!(!env.path(".dropcast").exists(), "state was created: {err}");
    assert!(env.posts().await.is_empty());
}

// Issue 12: `tiktok` accounts are available now; one giving its client secret two ways
// stops the agent at load with its line, not later.
#[tokio::test(flavor = "multi_thread")]
async fn config_tiktok_account_with_two_secret_sources_is_refused_at_load() {
    bad_config_row(
        &[(
            "accounts",
            "{global: {platform: tiktok, client_key: aw1, client_secret_env: TT_SECRET, client_secret_file: ./s}}",
        )],
        "client_secret_file",
        "accounts.global.client_secret_file",
        "give `client_secret_env` or `client_secret_file`, not both",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn config_unknown_platform_suggests_the_near_one() {
    bad_config_row(
        &[("accounts", "{main: {platform: tiktk}}")],
        "tiktk",
        "accounts.main.platform",
        "unknown value `tiktk`, did you mean `tiktok`?",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn config_key_of_another_platform_is_named() {
    let accounts =
        format!("{{main: {{platform: douyin-web, cookie_env: {COOKIE_VAR}, client_key: k}}}}");
    bad_config_row(
        &[("accounts", &accounts)],
        "client_key",
        "accounts.main.client_key",
        "`client_key` is not a key of a `douyin-web` account",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn config_account_without_platform_or_cookie_lists_the_platforms() {
    bad_config_row(
        &[("accounts", "{main: {}}")],
        "main",
        "accounts.main",
        "name the account's platform: `platform: douyin-web` (with `cookie_env` or \
         `cookie_file`), `platform: douyin` or `platform: tiktok`",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn config_old_and_new_name_of_one_setting_is_an_error_naming_both() {
    bad_config_row(
        &[(
            "platform",
            "{upload_scheme: http, douyin-web: {upload_scheme: http}}",
        )],
        "upload_scheme: http,",
        "platform.upload_scheme",
        "`platform.upload_scheme` and `platform.douyin-web.upload_scheme` (line",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn config_unknown_key_under_a_platform_suggests_the_near_one() {
    bad_config_row(
        &[(
            "platform",
            "{douyin-web: {creator_ur: \"http://127.0.0.1:9\"}}",
        )],
        "creator_ur:",
        "platform.douyin-web",
        "unknown field `creator_ur`, did you mean `creator_url`?",
    )
    .await;
}

// Regression (issue 10 item 3): the control row: the new form (`platform.douyin-web`,
// `platform: douyin-web` on the account) must reach the client, not just parse.
#[tokio::test(flavor = "multi_thread")]
async fn config_in_the_new_form_publishes_through_the_douyin_web_settings() {
    let env = Env::start("").await;
    let url = env.sandbox.base_url();
    let text = std::fs::read_to_string(&env.config).unwrap();
    let text: String = text
        .lines()
        .map(|line| match line.split_once(':').map(|(k, _)| k) {
            Some("platform") => format!(
                "platform: {{sandbox: false, timeout: 10s, douyin-web: {{creator_url: \"{url}\", \
                 vod_url: \"{url}\", upload_scheme: http}}}}\n"
            ),
            Some("accounts") => {
                format!("accounts: {{main: {{platform: douyin-web, cookie_env: {COOKIE_VAR}}}}}\n")
            }
            _ => format!("{line}\n"),
        })
        .collect();
    assert!(
        !text.contains(" creator_url: \"http"),
        "old flat keys gone:\n{text}"
    );
    std::fs::write(&env.config, &text).unwrap();
    put_good_bundle(&env, "good");
    let out = env.watch_once().await;
    let log = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{log}");
    assert_good_published(&env, "good", &log).await;
}
