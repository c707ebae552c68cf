//! Notifications through the real binary: a webhook receiver on 127.0.0.1 started by the
//! test gets every event of a run, signed; a receiver that is down while the agent posts,
//! then up after the agent was killed with SIGKILL and restarted, gets every notification,
//! one distinct delivery per event id.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::HeaderMap;
use axum::routing::post;
use common::*;
use dropcast::sandbox::{self, Fault, FaultAction, FaultStep};
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

const SECRET_VAR: &str = "DROPCAST_TEST_NOTIFY_SECRET";
const SECRET: &str = "receiver-shared-key-0xC0FFEE";

/// One POST the receiver got.
#[derive(Clone, Debug)]
struct Delivery {
    headers: HeaderMap,
    body: Bytes,
}

impl Delivery {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }

    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .unwrap_or_else(|| panic!("no {name} header"))
            .to_str()
            .unwrap()
    }

    /// The signature checked here with HMAC-SHA256 of our own, not dropcast's code.
    fn assert_signed(&self) {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(SECRET.as_bytes()).unwrap();
        mac.update(&self.body);
        let want = format!(
            "sha256={}",
            base16ct::lower::encode_string(&mac.finalize().into_bytes())
        );
        assert_eq!(self.header("x-dropcast-signature"), want, "{:?}", self.body);
        let body = self.json();
        assert_eq!(self.header("x-dropcast-id"), body["id"].as_str().unwrap());
        assert_eq!(
            self.header("x-dropcast-event"),
            body["event"].as_str().unwrap()
        );
    }
}

/// A webhook receiver: records every POST to `/hook` and answers 200.
struct Receiver {
    got: Arc<Mutex<Vec<Delivery>>>,
    _server: tokio::task::JoinHandle<()>,
}

impl Receiver {
    async fn start(listener: tokio::net::TcpListener) -> Receiver {
        let got: Arc<Mutex<Vec<Delivery>>> = Arc::default();
        let sink = Arc::clone(&got);
        let app = axum::Router::new().route(
            "/hook",
            post(move |headers: HeaderMap, body: Bytes| {
                let sink = Arc::clone(&sink);
                async move {
                    sink.lock().unwrap().push(Delivery { headers, body });
                    "ok"
                }
            }),
        );
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Receiver {
            got,
            _server: server,
        }
    }

    fn deliveries(&self) -> Vec<Delivery> {
        self.got.lock().unwrap().clone()
    }

    /// The distinct events by id (a repeat must be the same body).
    fn events(&self) -> BTreeMap<String, Value> {
        let mut by_id: BTreeMap<String, Value> = BTreeMap::new();
        for d in self.deliveries() {
            let v = d.json();
            let id = v["id"].as_str().unwrap().to_owned();
            if let Some(earlier) = by_id.get(&id) {
                assert_eq!(earlier, &v, "a redelivery carries the same event");
            }
            by_id.insert(id, v);
        }
        by_id
    }

    async fn wait_for(
        &self,
        what: &str,
        agent: &Agent,
        cond: impl Fn(&BTreeMap<String, Value>) -> bool,
    ) {
        let got = Arc::clone(&self.got);
        let ok = wait_until(Duration::from_secs(90), || {
            let deliveries = got.lock().unwrap().clone();
            let mut by_id = BTreeMap::new();
            for d in deliveries {
                let v = d.json();
                by_id.insert(v["id"].as_str().unwrap().to_owned(), v);
            }
            cond(&by_id)
        })
        .await;
        assert!(
            ok.is_ok(),
            "the receiver never got {what}; it got {:#?}\nagent log:\n{}",
            self.events(),
            agent.log_text()
        );
    }
}

fn kinds(events: &BTreeMap<String, Value>) -> Vec<String> {
    let mut k: Vec<String> = events
        .values()
        .map(|v| v["event"].as_str().unwrap().to_owned())
        .collect();
    k.sort();
    k
}

fn notify_config(addr: SocketAddr) -> String {
    format!("notify:\n  - {{url: \"http://{addr}/hook\", secret_env: {SECRET_VAR}}}\n")
}

fn set_secret() {
    // SAFETY: every test of this file sets the same value before starting an agent.
    unsafe { std::env::set_var(SECRET_VAR, SECRET) };
}

fn drop_clip(env: &Env, stem: &str, bytes: &[u8]) {
    env.write_inbox(format!("{stem}.mp4"), bytes);
    env.drop_media("clip.yaml", format!("{stem}.yaml"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_receiver_gets_every_event_of_a_run_signed() {
    set_secret();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let receiver = Receiver::start(listener).await;
    let env = Env::configured(
        sandbox::SandboxOptions::default(),
        &[("accounts", "{main: {cookie_file: ./main.cookie}}")],
        &notify_config(addr),
    )
    .await;
    let cookie = env.path("main.cookie");
    std::fs::write(&cookie, "sessionid=logged-out-1234; csrf_token=abcd\n").unwrap();
    let agent = env.spawn_watch();

    // A refused session pauses the account; a renewed cookie resumes it and it posts.
    let bytes = clip_variant(1);
    drop_clip(&env, "clip", &bytes);
    receiver
        .wait_for("paused", &agent, |e| kinds(e).contains(&"paused".into()))
        .await;
    std::fs::write(&cookie, sandbox::cookie_for("main")).unwrap();
    agent
        .wait_for_archive(env.path("done/clip.receipt.json"), 90)
        .await;
    // The same video again: a duplicate.
    drop_clip(&env, "again", &bytes);
    agent
        .wait_for_archive(env.path("duplicates/again.receipt.json"), 90)
        .await;
    // A post the platform refuses: failed, with a ledger job.
    let refused = FaultAction::Body {
        body: json!({"status_code": 2, "status_msg": "refused by the test"}),
    };
    env.sandbox
        .inject(Fault::new(FaultStep::Create, refused).times(1));
    drop_clip(&env, "bad", &clip_variant(2));
    agent
        .wait_for_archive(env.path("failed/bad.error.json"), 90)
        .await;
    // A caption that does not parse: failed before any ledger job.
    env.write_inbox("oops.mp4", clip_variant(3));
    env.write_inbox("oops.yaml", "text: [unclosed\n");
    agent
        .wait_for_archive(env.path("failed/oops.error.json"), 90)
        .await;

    let want = [
        "duplicate",
        "failed",
        "failed",
        "paused",
        "published",
        "resumed",
    ];
    receiver
        .wait_for("every event", &agent, |e| kinds(e) == want)
        .await;
    let events = receiver.events();
    for d in receiver.deliveries() {
        d.assert_signed();
        let text = String::from_utf8_lossy(&d.body);
        assert!(
            !text.contains("logged-out-1234") && !text.contains(SECRET),
            "{text}"
        );
        assert!(!text.contains(&sandbox::cookie_for("main")), "{text}");
    }
    let by_kind =
        |k: &str| -> Vec<&Value> { events.values().filter(|v| v["event"] == k).collect() };
    let published = by_kind("published")[0];
    let hash = sha256_hex(&bytes);
    assert_eq!(published["file"], "clip.mp4");
    assert_eq!(published["account"], "main");
    assert_eq!(published["platform"], "douyin-web");
    assert_eq!(published["hash"], json!(&hash[..12]));
    let receipt = read_json(&env.path("done/clip.receipt.json"));
    assert_eq!(published["post_url"], receipt["url"], "{receipt:#}");
    let dup = by_kind("duplicate")[0];
    assert_eq!(dup["file"], "again.mp4");
    assert_eq!(dup["post_url"], published["post_url"]);
    let paused = by_kind("paused")[0];
    assert!(
        paused["hint"].as_str().unwrap().contains("main.cookie"),
        "{paused}"
    );
    let failed: Vec<&str> = by_kind("failed")
        .iter()
        .map(|v| v["file"].as_str().unwrap())
        .collect();
    assert!(
        failed.contains(&"bad.mp4") && failed.contains(&"oops.mp4"),
        "{failed:?}"
    );
    for v in events.values() {
        let time = v["time"].as_str().unwrap();
        assert!(time.ends_with('Z') && time.contains('T'), "{time}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_receiver_down_through_a_kill_gets_every_notification_once_per_id() {
    set_secret();
    // A port nobody listens on yet: the receiver is down (connections refused).
    let addr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let env = Env::start(&notify_config(addr)).await;
    let mut agent = env.spawn_watching().await;
    for n in 1..=3u8 {
        drop_clip(&env, &format!("v{n}"), &clip_variant(n));
    }
    for n in 1..=3u8 {
        agent
            .wait_for_archive(env.path(&format!("done/v{n}.receipt.json")), 120)
            .await;
    }
    // Every notification was tried against the refusing port and is still owed.
    let db = env.ledger();
    let tried = || -> i64 {
        db.query_row(
            "SELECT COUNT(*) FROM notify_outbox WHERE attempts >= 1 AND delivered_at IS NULL",
            [],
            |r| r.get(0),
        )
        .unwrap()
    };
    // (A row counts as tried when it is claimed, before its send fails and is logged:
    // wait for the log line too.)
    let said = "notification not delivered; tried again with backoff";
    wait_until(Duration::from_secs(60), || {
        tried() == 3 && agent.log_text().contains(said)
    })
    .await
    .unwrap_or_else(|_| panic!("not tried: {}\n{}", tried(), agent.log_text()));

    agent.child.kill().unwrap(); // SIGKILL
    agent.child.wait().unwrap();
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    let receiver = Receiver::start(listener).await;
    let agent = env.spawn_watch();

    let outbox: BTreeSet<String> = column(&db, "SELECT DISTINCT event_id FROM notify_outbox")
        .into_iter()
        .collect();
    assert_eq!(outbox.len(), 3);
    receiver
        .wait_for("the three posts", &agent, |e| e.len() == 3)
        .await;
    let delivered = || -> i64 {
        db.query_row(
            "SELECT COUNT(*) FROM notify_outbox WHERE delivered_at IS NOT NULL",
            [],
            |r| r.get(0),
        )
        .unwrap()
    };
    wait_until(Duration::from_secs(30), || delivered() == 3)
        .await
        .expect("every row acknowledged");
    let events = receiver.events();
    let ids: BTreeSet<String> = events.keys().cloned().collect();
    assert_eq!(ids, outbox, "exactly the owed events, by id");
    let files: BTreeSet<&str> = events
        .values()
        .map(|v| v["file"].as_str().unwrap())
        .collect();
    assert_eq!(files, BTreeSet::from(["v1.mp4", "v2.mp4", "v3.mp4"]));
    assert!(events.values().all(|v| v["event"] == "published"));
    // Nothing was in flight at the kill (no receiver), so no id came twice.
    assert_eq!(receiver.deliveries().len(), 3);
    for d in receiver.deliveries() {
        d.assert_signed();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn notify_test_sends_one_of_each_and_says_what_each_sink_answered() {
    set_secret();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let receiver = Receiver::start(listener).await;
    let down = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let extra = format!(
        "{}  - {{url: \"http://{down}/hook\", events: [failed]}}\n",
        notify_config(addr)
    );
    let env = Env::start(&extra).await;
    let out = env.run(&["notify", "test"]).await;
    let text = stdout(&out);
    assert_eq!(
        out.status.code(),
        Some(1),
        "one sink is down:\n{text}{}",
        stderr(&out)
    );
    let events = receiver.events();
    assert_eq!(
        kinds(&events),
        [
            "duplicate",
            "failed",
            "paused",
            "published",
            "resumed",
            "session_expiring"
        ]
    );
    for d in receiver.deliveries() {
        d.assert_signed();
        assert_eq!(d.json()["test"], true);
    }
    assert_eq!(text.matches("HTTP 200").count(), 6, "{text}");
    assert!(text.contains(&format!("http://{down}/…")), "{text}");
    assert!(text.contains("FAILED: cannot connect"), "{text}");
    assert_eq!(text.matches("not sent").count(), 5, "{text}");
    assert!(
        !text.contains("/hook"),
        "the URL's path is never printed:\n{text}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn watch_once_sends_its_notifications_before_it_exits() {
    set_secret();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let receiver = Receiver::start(listener).await;
    let env = Env::start(&notify_config(addr)).await;
    drop_clip(&env, "clip", &clip_variant(1));
    let out = env.watch_once().await;
    assert!(out.status.success(), "{}", stderr(&out));
    // No waiting: the run's event was delivered before the process exited.
    assert_eq!(kinds(&receiver.events()), ["published"]);
}

// Regression (issue 14 review): `dropcast publish` without a running agent only enqueued its notifications; they went out at the next `watch`.
#[tokio::test(flavor = "multi_thread")]
async fn publish_sends_its_notifications_before_it_exits() {
    set_secret();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let receiver = Receiver::start(listener).await;
    let env = Env::start(&notify_config(addr)).await;
    drop_clip(&env, "clip", &clip_variant(2));
    let out = env.run(&["publish", "inbox/clip.mp4"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(kinds(&receiver.events()), ["published"]);
}
