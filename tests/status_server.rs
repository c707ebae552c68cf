//! The status server, end to end in-process: a real Context (sandbox mode) over a real
//! ledger in a temp dir holding a job in every state, real live state, and real HTTP to
//! the server on 127.0.0.1:0.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use dropcast::config::Config;
use dropcast::domain::{ContentHash, Platform};
use dropcast::ledger::{Claim, JobRecord, JobState, NewJob};
use dropcast::pipeline::Context;
use dropcast::pipeline::live::{PausedAccount, Waiting};
use dropcast::platform::douyin_post;
use dropcast::receipt::UtcTime;
use dropcast::secret::Secret;
use dropcast::status::{self, StatusHandle};
use dropcast::words::Stage;
use reqwest::StatusCode;
use serde_json::Value;
use tokio::net::TcpListener;

#[path = "common/in_process.rs"]
mod in_process;

use in_process::{Failure, agent_context, claim, failed_job};

const TOKEN: &str = "status-token-5f1e9a";

struct Fixture {
    _dir: tempfile::TempDir,
    ctx: Arc<Context>,
    server: StatusHandle,
    /// Hashes by video, for the jobs put in the ledger.
    hashes: BTreeMap<&'static str, String>,
}

impl Fixture {
    async fn start(token: Option<&str>) -> Fixture {
        Fixture::configured(token, "").await
    }

    /// With `extra` lines added to the config.
    async fn configured(token: Option<&str>, extra: &str) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let mut text = String::from(
            "inbox: ./inbox\ndone: ./done\nfailed: ./failed\nduplicates: ./duplicates\n\
             state_dir: ./.dropcast\nplatform: {sandbox: true}\n",
        );
        text.push_str(extra);
        match token {
            Some(t) => text.push_str(&format!("status: {{listen: off, token: \"{t}\"}}\n")),
            None => text.push_str("status: {listen: off}\n"),
        }
        let config = Config::parse(&text, None, dir.path()).unwrap();
        let ctx = agent_context(config).await;
        let hashes = populate(&ctx).await;
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let token = ctx.config.status.token.clone();
        let server = status::start(listener, Arc::clone(&ctx), token)
            .await
            .unwrap();
        Fixture {
            _dir: dir,
            ctx,
            server,
            hashes,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.server.url())
    }

    async fn get(&self, path: &str) -> reqwest::Response {
        reqwest::get(self.url(path)).await.unwrap()
    }

    async fn jobs(&self) -> Value {
        let res = self.get("/api/jobs").await;
        assert_eq!(res.status(), StatusCode::OK);
        res.json().await.unwrap()
    }

    async fn state_of(&self, video: &'static str) -> JobState {
        let hash = ContentHash::parse(&self.hashes[video]).unwrap();
        let jobs = self
            .ctx
            .ledger(move |l| l.jobs_with_hash(&hash))
            .await
            .unwrap();
        jobs.last().unwrap().state
    }
}

/// How the failed job failed.
const FAILURE: Failure = Failure {
    caption: "text: \"hello \\\"world\\\"\"\n",
    reason: "the platform refused the caption: <b>\"too long\"</b>",
    hint: "Shorten the caption, then retry.",
};

/// One job in every ledger state, plus live state: a job in flight, a video waiting for
/// its caption, a paused account, counters.
async fn populate(ctx: &Arc<Context>) -> BTreeMap<&'static str, String> {
    let c = Arc::clone(ctx);
    let hashes = ctx
        .ledger(move |l| {
            let mut h = BTreeMap::new();
            let mut note = |name: &'static str, job: &JobRecord| {
                h.insert(name, job.sha256.as_str().to_string());
            };
            let q = claim(l, "queue/q.mp4", b"queued", None);
            note("queue/q.mp4", &q);
            let live = claim(l, "live.mp4", b"in flight", None);
            note("live.mp4", &live);
            let f = failed_job(&c, l, "bad/clip.mp4", b"failed video", &FAILURE);
            note("bad/clip.mp4", &f);
            let a = claim(l, "changed.mp4", b"abandoned", None);
            l.mark_abandoned(a.id, "the video changed while it was uploaded")
                .unwrap();
            note("changed.mp4", &a);
            let u = claim(l, "doubt.mp4", b"unconfirmed", None);
            l.mark_publish_sent(u.id).unwrap();
            l.mark_unconfirmed(u.id, "step 5 answer lost").unwrap();
            note("doubt.mp4", &u);
            let p = claim(l, "pub.mp4", b"published", None);
            l.mark_publish_sent(p.id).unwrap();
            l.mark_published(p.id, &douyin_post("7001")).unwrap();
            note("pub.mp4", &p);
            let d = claim(l, "done.mp4", b"done", None);
            l.mark_publish_sent(d.id).unwrap();
            l.mark_published(d.id, &douyin_post("7002")).unwrap();
            l.mark_done(d.id, Path::new("/tmp/done/done.mp4")).unwrap();
            note("done.mp4", &d);
            let dup = NewJob {
                sha256: d.sha256.clone(),
                account: "main".into(),
                platform: Platform::DouyinWeb,
                video: "again.mp4".into(),
                caption: None,
                size: 4,
            };
            assert!(matches!(
                l.claim(&dup, false).unwrap(),
                Claim::Duplicate { .. }
            ));
            Ok(h)
        })
        .await
        .unwrap();
    let progress = ctx.live.job_started("live.mp4");
    ctx.live.job_step(
        "live.mp4",
        &Stage::parse("upload"),
        Some(&hashes["live.mp4"]),
        Some("main"),
    );
    progress.start(1000);
    progress.add(400);
    ctx.live.set_watching("native");
    ctx.live.set_waiting(vec![Waiting {
        video: "nocaption.mp4".into(),
        since: Some(UtcTime::now()),
    }]);
    ctx.live.set_paused(vec![PausedAccount {
        account: "main".into(),
        reason: "cookie expired".into(),
        since: Some(UtcTime::now()),
    }]);
    ctx.live.error("rejected");
    ctx.live.error("odd \"class\"\\\nx");
    ctx.live.uploaded(4000, 2.0);
    ctx.live.published(3.0);
    ctx.live.published(45.0);
    ctx.live.job_ended("pub.mp4", "published");
    hashes
}

fn videos(list: &Value) -> Vec<&str> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|j| j["video"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn healthz_answers_ok() {
    let f = Fixture::start(None).await;
    let res = f.get("/healthz").await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.text().await.unwrap(), "ok\n");
    f.server.shutdown().await;
}

#[tokio::test]
async fn api_jobs_lists_every_state() {
    let f = Fixture::start(None).await;
    let v = f.jobs().await;
    let counts = &v["counts"];
    for (state, n) in [
        ("active", 2),
        ("failed", 1),
        ("abandoned", 1),
        ("unconfirmed", 1),
        ("published", 1),
        ("done", 1),
        ("duplicate", 1),
    ] {
        assert_eq!(counts[state], n, "{state}: {counts}");
    }
    assert_eq!(v["agent"]["watching"], "native");
    assert_eq!(v["agent"]["sandbox"], true);

    let in_flight = &v["in_flight"][0];
    assert_eq!(in_flight["video"], "live.mp4");
    assert_eq!(in_flight["step"], "upload");
    assert_eq!(in_flight["bytes_done"], 400);
    assert_eq!(in_flight["bytes_total"], 1000);
    // The job in flight is active in the ledger but not listed as queued.
    assert_eq!(videos(&v["queued"]), ["queue/q.mp4"]);
    assert_eq!(v["queued"][0]["sha256"], f.hashes["queue/q.mp4"]);

    assert_eq!(videos(&v["failures"]), ["changed.mp4", "bad/clip.mp4"]);
    let failed = &v["failures"][1];
    assert_eq!(failed["state"], "failed");
    assert_eq!(failed["step"], "publish");
    assert_eq!(failed["class"], "rejected");
    assert!(failed["reason"].as_str().unwrap().contains("too long"));
    assert_eq!(failed["hint"], "Shorten the caption, then retry.");
    assert_eq!(failed["sha256"], f.hashes["bad/clip.mp4"]);
    assert_eq!(v["failures"][0]["state"], "abandoned");

    assert_eq!(videos(&v["unconfirmed"]), ["doubt.mp4"]);
    assert_eq!(v["unconfirmed"][0]["step"], "publish");
    assert!(
        v["unconfirmed"][0]["hint"]
            .as_str()
            .unwrap()
            .contains("Douyin")
    );

    let posts = &v["recent_posts"];
    let mut posted = videos(posts);
    posted.sort();
    assert_eq!(posted, ["done.mp4", "pub.mp4"]);
    for p in posts.as_array().unwrap() {
        let id = p["aweme_id"].as_str().unwrap();
        assert_eq!(p["url"], format!("https://www.douyin.com/video/{id}"));
    }
    assert_eq!(v["waiting_for_caption"][0]["video"], "nocaption.mp4");
    assert_eq!(v["paused_accounts"][0]["account"], "main");
    assert_eq!(v["paused_accounts"][0]["reason"], "cookie expired");
    f.server.shutdown().await;
}

/// One sample of the text format.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// A strict reader of the Prometheus text format (0.0.4): HELP/TYPE comments, samples
/// with escaped label values. Checks that every sample's family was typed first, that
/// no family is typed twice, that no series repeats, and the histogram rules.
fn parse_prometheus(text: &str) -> Vec<Sample> {
    assert!(text.ends_with('\n'), "the exposition ends with a line feed");
    let mut types: BTreeMap<String, String> = BTreeMap::new();
    let mut helps: BTreeMap<String, String> = BTreeMap::new();
    let mut samples: Vec<Sample> = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    let valid_name = |n: &str| {
        !n.is_empty()
            && n.chars().enumerate().all(|(i, c)| {
                c.is_ascii_alphabetic() || c == '_' || c == ':' || (i > 0 && c.is_ascii_digit())
            })
    };
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').unwrap();
            assert!(valid_name(name), "{line}");
            // Only \\ and \n escapes are allowed in HELP.
            let mut chars = help.chars();
            while let Some(c) = chars.next() {
                if c == '\\' {
                    assert!(
                        matches!(chars.next(), Some('\\' | 'n')),
                        "bad escape: {line}"
                    );
                }
            }
            assert!(
                helps.insert(name.into(), help.into()).is_none(),
                "two HELPs: {line}"
            );
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            assert!(
                ["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind),
                "{line}"
            );
            assert!(
                !samples.iter().any(|s| family(&s.name, &types) == name),
                "TYPE after samples: {line}"
            );
            assert!(
                types.insert(name.into(), kind.into()).is_none(),
                "two TYPEs: {line}"
            );
            continue;
        }
        assert!(!line.starts_with('#') || line.starts_with("# "), "{line}");
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let (name, labels, rest) = match line.find('{') {
            Some(open) => {
                let (labels, rest) = parse_labels(&line[open + 1..]);
                (&line[..open], labels, rest)
            }
            None => {
                let (name, rest) = line.split_once(' ').unwrap();
                (name, BTreeMap::new(), rest)
            }
        };
        assert!(valid_name(name), "{line}");
        let value_text = rest.trim().split(' ').next().unwrap();
        let value = match value_text {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            "NaN" => f64::NAN,
            v => v.parse().unwrap_or_else(|_| panic!("bad value in {line}")),
        };
        let fam = family(name, &types);
        assert!(types.contains_key(&fam), "sample before its TYPE: {line}");
        assert!(helps.contains_key(&fam), "no HELP for {fam}");
        assert!(
            seen.insert((name.to_string(), format!("{labels:?}"))),
            "repeated series: {line}"
        );
        samples.push(Sample {
            name: name.into(),
            labels,
            value,
        });
    }
    for (fam, kind) in &types {
        if kind == "histogram" {
            let buckets: Vec<&Sample> = samples
                .iter()
                .filter(|s| s.name == format!("{fam}_bucket"))
                .collect();
            let les: Vec<f64> = buckets
                .iter()
                .map(|s| match s.labels["le"].as_str() {
                    "+Inf" => f64::INFINITY,
                    le => le.parse().unwrap(),
                })
                .collect();
            assert!(les.windows(2).all(|w| w[0] < w[1]), "le not increasing");
            assert_eq!(les.last(), Some(&f64::INFINITY), "no +Inf bucket");
            assert!(
                buckets.windows(2).all(|w| w[0].value <= w[1].value),
                "buckets not cumulative"
            );
            let count = samples
                .iter()
                .find(|s| s.name == format!("{fam}_count"))
                .expect("_count");
            assert!(samples.iter().any(|s| s.name == format!("{fam}_sum")));
            assert_eq!(buckets.last().unwrap().value, count.value);
        }
        if kind == "counter" {
            assert!(fam.ends_with("_total"), "counter {fam} is not named _total");
        }
    }
    samples
}

fn family(name: &str, types: &BTreeMap<String, String>) -> String {
    for suffix in ["_bucket", "_sum", "_count"] {
        if let Some(base) = name.strip_suffix(suffix)
            && types.get(base).is_some_and(|k| k == "histogram")
        {
            return base.to_string();
        }
    }
    name.to_string()
}

/// Parses `a="x",b="y"}` and returns the labels and what follows the `}`.
fn parse_labels(s: &str) -> (BTreeMap<String, String>, &str) {
    let mut labels = BTreeMap::new();
    let mut rest = s;
    loop {
        if let Some(after) = rest.strip_prefix('}') {
            return (labels, after);
        }
        let eq = rest.find('=').unwrap();
        let key = rest[..eq].trim_start_matches(',').to_string();
        rest = rest[eq + 1..]
            .strip_prefix('"')
            .expect("label value is quoted");
        let mut value = String::new();
        let mut chars = rest.char_indices();
        let end = loop {
            let (i, c) = chars.next().expect("unterminated label value");
            match c {
                '\\' => match chars.next().map(|(_, c)| c) {
                    Some('\\') => value.push('\\'),
                    Some('"') => value.push('"'),
                    Some('n') => value.push('\n'),
                    other => panic!("bad escape \\{other:?}"),
                },
                '\n' => panic!("raw line feed in a label value"),
                '"' => break i,
                c => value.push(c),
            }
        };
        rest = &rest[end + 1..];
        assert!(labels.insert(key, value).is_none(), "repeated label");
        if let Some(after) = rest.strip_prefix(',') {
            rest = after;
        }
    }
}

fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .find(|s| {
            s.name == name
                && s.labels.len() == labels.len()
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .unwrap_or_else(|| panic!("no sample {name}{labels:?}"))
        .value
}

#[tokio::test]
async fn metrics_are_valid_prometheus_text_with_the_right_values() {
    let f = Fixture::start(None).await;
    let res = f.get("/metrics").await;
    assert_eq!(res.status(), StatusCode::OK);
    let ctype = res.headers()["content-type"].to_str().unwrap().to_string();
    assert!(ctype.starts_with("text/plain; version=0.0.4"), "{ctype}");
    let text = res.text().await.unwrap();
    let s = parse_prometheus(&text);

    assert_eq!(value(&s, "dropcast_up", &[]), 1.0);
    for state in JobState::ALL {
        let expected = if state == JobState::Active { 2.0 } else { 1.0 };
        assert_eq!(
            value(&s, "dropcast_jobs", &[("state", state.as_str())]),
            expected,
            "{state}"
        );
    }
    assert_eq!(value(&s, "dropcast_posts_total", &[]), 2.0);
    assert_eq!(value(&s, "dropcast_uploaded_bytes_total", &[]), 4000.0);
    assert_eq!(
        value(&s, "dropcast_upload_throughput_bytes_per_second", &[]),
        2000.0
    );
    let latency = "dropcast_publish_latency_seconds";
    assert_eq!(value(&s, &format!("{latency}_count"), &[]), 2.0);
    assert_eq!(value(&s, &format!("{latency}_sum"), &[]), 48.0);
    assert_eq!(value(&s, &format!("{latency}_bucket"), &[("le", "5")]), 1.0);
    assert_eq!(
        value(&s, &format!("{latency}_bucket"), &[("le", "60")]),
        2.0
    );
    assert_eq!(
        value(&s, "dropcast_errors_total", &[("class", "rejected")]),
        1.0
    );
    assert_eq!(
        value(&s, "dropcast_errors_total", &[("class", "transient")]),
        0.0
    );
    // A class with a quote, a backslash and a line feed survives escaping.
    assert_eq!(
        value(
            &s,
            "dropcast_errors_total",
            &[("class", "odd \"class\"\\\nx")]
        ),
        1.0
    );
    assert_eq!(value(&s, "dropcast_accounts_paused", &[]), 1.0);
    assert_eq!(value(&s, "dropcast_jobs_in_flight", &[]), 1.0);
    f.server.shutdown().await;
}

#[test]
fn the_test_parser_rejects_broken_exposition() {
    for bad in [
        "x 1\n",                                                   // no TYPE
        "# HELP x h\n# TYPE x gauge\nx{a=\"b} 1\n",                // unterminated
        "# HELP x h\n# TYPE x gauge\nx{a=\"\\q\"} 1\n",            // bad escape
        "# HELP x h\n# TYPE x gauge\nx 1\nx 2\n",                  // repeated series
        "# HELP x_total h\n# TYPE x_total counter\nx_total one\n", // bad value
    ] {
        assert!(
            std::panic::catch_unwind(|| parse_prometheus(bad)).is_err(),
            "accepted: {bad:?}"
        );
    }
}

#[tokio::test]
async fn the_dashboard_is_one_self_contained_page_with_a_strict_policy() {
    let f = Fixture::start(None).await;
    let res = f.get("/").await;
    assert_eq!(res.status(), StatusCode::OK);
    let h = res.headers().clone();
    assert!(h["content-type"].to_str().unwrap().starts_with("text/html"));
    let csp = h["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("script-src 'sha256-"), "{csp}");
    assert!(csp.contains("connect-src 'self'"), "{csp}");
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    assert_eq!(h["x-frame-options"], "DENY");
    assert_eq!(h["x-content-type-options"], "nosniff");
    let body = res.text().await.unwrap();
    assert!(body.contains("<script>") && body.contains("/api/jobs"));
    assert!(!body.contains("<script src") && !body.contains("<link"));
    f.server.shutdown().await;
}

async fn post_retry(f: &Fixture, hash: &str, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut req = reqwest::Client::new().post(f.url(&format!("/api/retry/{hash}")));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.send().await.unwrap()
}

#[tokio::test]
async fn retry_refuses_cross_site_requests_and_requeues_a_failed_job() {
    let f = Fixture::start(None).await;
    let hash = f.hashes["bad/clip.mp4"].clone();
    let origin = f.server.url();

    let res = post_retry(&f, &hash, &[]).await;
    assert_eq!(
        res.status(),
        StatusCode::FORBIDDEN,
        "without X-Dropcast-Request"
    );
    for (headers, why) in [
        (
            "x-dropcast-request=1&sec-fetch-site=cross-site",
            "cross-site",
        ),
        (
            "x-dropcast-request=1&sec-fetch-site=same-site",
            "same-site is not same-origin",
        ),
        (
            "x-dropcast-request=1&origin=http://evil.example",
            "foreign Origin",
        ),
    ] {
        let headers: Vec<(&str, &str)> = serde_urlencoded::from_str(headers).unwrap();
        let res = post_retry(&f, &hash, &headers).await;
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "{why}");
    }
    assert_eq!(f.state_of("bad/clip.mp4").await, JobState::Failed);
    assert!(!f.ctx.config.inbox.join("bad/clip.mp4").exists());

    // A GET cannot retry.
    let res = f.get(&format!("/api/retry/{hash}")).await;
    assert_eq!(res.status(), StatusCode::METHOD_NOT_ALLOWED);

    let ok = [
        ("x-dropcast-request", "1"),
        ("sec-fetch-site", "same-origin"),
        ("origin", origin.as_str()),
    ];
    let res = post_retry(&f, &hash[..10], &ok).await;
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["video"], "bad/clip.mp4");
    assert_eq!(body["was"], "failed");
    let mut back: Vec<&str> = body["moved_back"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    back.sort();
    assert_eq!(back, ["bad/clip.mp4", "bad/clip.yaml"]);
    assert_eq!(f.state_of("bad/clip.mp4").await, JobState::Active);
    assert_eq!(
        std::fs::read(f.ctx.config.inbox.join("bad/clip.mp4")).unwrap(),
        b"failed video"
    );
    let v = f.jobs().await;
    assert!(videos(&v["queued"]).contains(&"bad/clip.mp4"));
    assert!(!videos(&v["failures"]).contains(&"bad/clip.mp4"));

    // Again: nothing to retry any more.
    let res = post_retry(&f, &hash, &ok).await;
    assert_eq!(res.status(), StatusCode::CONFLICT);
    let res = post_retry(&f, "xyz", &ok).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let res = post_retry(&f, "abcdef0123", &ok).await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    f.server.shutdown().await;
}

#[tokio::test]
async fn without_a_token_only_loopback_host_names_are_answered() {
    let f = Fixture::start(None).await;
    let client = reqwest::Client::new();
    for (host, status) in [
        ("evil.example", StatusCode::MISDIRECTED_REQUEST),
        ("localhost", StatusCode::OK),
    ] {
        let host = format!("{host}:{}", f.server.addr().port());
        let res = client
            .get(f.url("/api/jobs"))
            .header("host", &host)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), status, "{host}");
    }
    f.server.shutdown().await;
}

#[tokio::test]
async fn with_a_token_every_page_but_healthz_needs_it() {
    let f = Fixture::start(Some(TOKEN)).await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    assert_eq!(f.get("/healthz").await.status(), StatusCode::OK);
    for path in ["/", "/metrics", "/api/jobs"] {
        let res = f.get(path).await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{path}");
        assert_eq!(res.headers()["www-authenticate"], "Bearer");
        let res = client
            .get(f.url(path))
            .bearer_auth("wrong")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{path}");
        let res = client
            .get(f.url(path))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{path}");
        // Regression (issue 9): `Authorization: bearer …` in lower case was refused; the
        // scheme is case-insensitive.
        let res = client
            .get(f.url(path))
            .header("authorization", format!("bearer {TOKEN}"))
            .send()
            .await
            .unwrap();
        assert_eq!(
            res.status(),
            StatusCode::OK,
            "{path} with lower-case bearer"
        );
    }
    // ?token= once: a cookie, and the token leaves the address.
    let res = client
        .get(f.url(&format!("/?token={TOKEN}")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(res.headers()["location"], "/");
    let cookie = res.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    assert!(!cookie.contains(TOKEN));
    let pair = cookie.split(';').next().unwrap().to_string();
    let res = client
        .get(f.url("/api/jobs"))
        .header("cookie", &pair)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let res = client.get(f.url("/?token=wrong")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);

    // With the token, a POST still needs the header.
    let hash = f.hashes["bad/clip.mp4"].clone();
    let url = f.url(&format!("/api/retry/{hash}"));
    let res = client.post(&url).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let res = client
        .post(&url)
        .header("x-dropcast-request", "1")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let res = client
        .post(&url)
        .bearer_auth(TOKEN)
        .header("x-dropcast-request", "1")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    f.server.shutdown().await;
}

#[tokio::test]
async fn no_response_ever_holds_a_secret() {
    let f = Fixture::start(Some(TOKEN)).await;
    let cookie = dropcast::sandbox::cookie_for("main");
    let mut secrets: Vec<String> = vec![cookie.clone(), TOKEN.to_string()];
    // Each value of the cookie too (csrf_token, sessionid, …).
    secrets.extend(
        cookie
            .split(';')
            .filter_map(|p| p.split_once('=').map(|(_, v)| v.trim().to_string()))
            .filter(|v| v.len() >= 8),
    );
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let hash = f.hashes["bad/clip.mp4"].clone();
    let mut requests = vec![
        client.get(f.url("/healthz")),
        client.get(f.url("/")),
        client.get(f.url("/?token=nope")),
        client.get(f.url(&format!("/?token={TOKEN}"))),
        client.get(f.url("/nowhere")).bearer_auth(TOKEN),
        client.post(f.url(&format!("/api/retry/{hash}"))),
    ];
    for path in ["/", "/metrics", "/api/jobs", "/nowhere", "/api/retry/zz"] {
        requests.push(client.get(f.url(path)).bearer_auth(TOKEN));
    }
    for path in [format!("/api/retry/{hash}"), "/api/retry/0123456789".into()] {
        for _ in 0..2 {
            requests.push(
                client
                    .post(f.url(&path))
                    .bearer_auth(TOKEN)
                    .header("x-dropcast-request", "1"),
            );
        }
    }
    let mut answered = 0;
    for req in requests {
        let res = req.send().await.unwrap();
        let head = format!("{} {:?}", res.status(), res.headers());
        let body = res.text().await.unwrap();
        for secret in &secrets {
            assert!(
                !head.contains(secret.as_str()),
                "a secret in the headers: {head}"
            );
            assert!(
                !body.contains(secret.as_str()),
                "a secret in the body: {body}"
            );
        }
        answered += 1;
    }
    assert_eq!(answered, 15);
    f.server.shutdown().await;
}

#[tokio::test]
async fn start_refuses_a_public_address_without_a_token() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config::parse(
        "platform: {sandbox: true}\nstatus: {listen: off}\n",
        None,
        dir.path(),
    )
    .unwrap();
    let ctx = agent_context(config).await;
    let listener = TcpListener::bind("0.0.0.0:0").await.unwrap();
    let err = status::start(listener, Arc::clone(&ctx), None)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    assert!(err.to_string().contains("status.token"), "{err}");

    let public = "0.0.0.0:8931".parse().unwrap();
    assert!(status::check_bind(public, None).is_err());
    assert!(status::check_bind(public, Some(&Secret::new(TOKEN))).is_ok());
    assert!(status::check_bind("127.0.0.1:8931".parse().unwrap(), None).is_ok());
    // The bound address is what the handle reports.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = status::start(listener, ctx, None).await.unwrap();
    assert_eq!(server.addr(), addr);
    server.shutdown().await;
    assert!(
        reqwest::get(format!("http://{addr}/healthz"))
            .await
            .is_err()
    );
    drop(dir);
}

// Regression (issue 11 item 3): the QR code of a waiting `dropcast login` was only in the terminal and a file, never on the dashboard.
#[tokio::test]
async fn a_waiting_login_shows_its_qr_code_and_only_while_it_is_fresh() {
    let accounts = "accounts: {main: {platform: douyin-web, cookie_env: DROPCAST_TEST_NO_COOKIE}, \
                    studio: {platform: douyin}}\n";
    let f = Fixture::configured(None, accounts).await;
    assert_eq!(f.jobs().await["login_codes"], serde_json::json!([]));
    let res = f.get("/api/login-qr/studio").await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND, "no login is waiting");

    // `dropcast login studio` saved its code where it always does.
    let png = f.ctx.config.state_dir.join("browser/studio.login-qr.png");
    std::fs::create_dir_all(png.parent().unwrap()).unwrap();
    let bytes = b"\x89PNG\r\n\x1a\n a code".to_vec();
    std::fs::write(&png, &bytes).unwrap();
    let codes = f.jobs().await["login_codes"].clone();
    let codes = codes.as_array().unwrap();
    assert_eq!(codes.len(), 1, "{codes:?}");
    assert_eq!(codes[0]["account"], "studio");
    let image = codes[0]["image"].as_str().unwrap();
    assert!(image.starts_with("/api/login-qr/studio?v="), "{image}");
    let res = f.get(image).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-type"], "image/png");
    assert_eq!(res.headers()["cache-control"], "no-store");
    assert_eq!(res.bytes().await.unwrap().to_vec(), bytes);

    // Only browser-session accounts have codes, and only configured ones.
    for other in ["main", "nobody", "..%2Fstudio"] {
        let res = f.get(&format!("/api/login-qr/{other}")).await;
        assert_eq!(res.status(), StatusCode::NOT_FOUND, "{other}");
    }

    // A code left by a login that died long ago is not shown.
    let old = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    std::fs::File::options()
        .write(true)
        .open(&png)
        .unwrap()
        .set_modified(old)
        .unwrap();
    assert_eq!(f.jobs().await["login_codes"], serde_json::json!([]));
    assert_eq!(
        f.get("/api/login-qr/studio").await.status(),
        StatusCode::NOT_FOUND
    );
}
