//! The client's multipart upload (docs/douyin-web.md §3b), bandwidth limit and progress, against a
//! small TOS on 127.0.0.1 that records every request and checks each part's length and
//! CRC the way the real one does.

mod common;

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::Method;
use axum::response::Response;
use common::canned::{self, Seen, json_reply};
use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio::sync::watch;

use dropcast::domain::PartCrcs;
use dropcast::platform::{
    Account, ClientSettings, DouyinWeb, Expired, PartDone, PublishError, RetryPolicy, SavedUpload,
    UploadTarget, part_layout,
};
use dropcast::progress::Progress;
use dropcast::secret::Secret;
use dropcast::video::VideoFile;

const TOS_SIGN: &str = "TOS-SIGN-SECRET";
const UPLOAD_ID: &str = "UP-1/x y";
const PART: u64 = 64 * 1024;

// ---- the recording TOS ------------------------------------------------------------------

impl Seen {
    fn part(&self) -> Option<u32> {
        self.query_value("partNumber").map(|n| n.parse().unwrap())
    }
}

#[derive(Default)]
struct Tos {
    /// Statuses a part answers before it succeeds.
    fail: Mutex<HashMap<u32, VecDeque<u16>>>,
    /// Part requests hold their answer until this many have arrived (0: no gate).
    gate: usize,
    arrived: Option<watch::Sender<usize>>,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
}

/// Steps 1 and 2 as the platform answers them, then the TOS: its checks, the scripted
/// failures and the gate.
async fn answer(tos: Arc<Tos>, addr: SocketAddr, seen: Seen) -> Response {
    match seen.uri.path() {
        "/web/api/media/upload/auth/" => {
            return json_reply(
                200,
                json!({"status_code": 0, "ak": "AK", "auth": "HMAC-SHA1:1.0:4102444800:AK:SIG"}),
            );
        }
        "/video/openapi/v1/" => {
            return json_reply(
                200,
                json!({"code": 2000, "data": {"vid": "v02", "oid": "tos-cn-v-0000/obj1",
                    "tos_host": addr.to_string(), "tos_sign": TOS_SIGN, "token": "TOKEN",
                    "extra_param": "a=1"}}),
            );
        }
        _ => {}
    }
    if seen.header("authorization") != Some(TOS_SIGN) {
        return json_reply(401, json!({"success": 1, "error": {"code": 401}}));
    }
    if seen.header("transfer-encoding").is_some() {
        return json_reply(411, json!({"success": 1}));
    }
    if seen.uri.query() == Some("uploads") {
        return json_reply(
            200,
            json!({"success": 0, "payload": {"uploadID": UPLOAD_ID}}),
        );
    }
    let Some(part) = seen.part() else {
        // Completion or whole file.
        return json_reply(200, json!({"success": 0}));
    };
    let now = tos.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    tos.max_in_flight.fetch_max(now, Ordering::SeqCst);
    if let Some(arrived) = &tos.arrived {
        arrived.send_modify(|n| *n += 1);
        let mut rx = arrived.subscribe();
        // Not all arriving means they were not sent at once: answer anyway, the test
        // then sees a smaller `max_in_flight`.
        let _ = tokio::time::timeout(Duration::from_secs(5), rx.wait_for(|n| *n >= tos.gate)).await;
    }
    tos.in_flight.fetch_sub(1, Ordering::SeqCst);
    let scripted = tos
        .fail
        .lock()
        .unwrap()
        .get_mut(&part)
        .and_then(VecDeque::pop_front);
    if let Some(status) = scripted {
        return json_reply(
            status,
            json!({"success": 1, "error": {"code": status, "message": "scripted"}}),
        );
    }
    let crc = format!("{:08x}", crc32fast::hash(&seen.body));
    if seen.header("content-crc32") != Some(crc.as_str())
        || seen.header("content-length") != Some(seen.body.len().to_string().as_str())
    {
        return json_reply(
            400,
            json!({"success": 1, "error": {"code": 4, "message": "crc"}}),
        );
    }
    json_reply(
        200,
        json!({"success": 0, "payload": {"part_number": part, "crc32": crc}}),
    )
}

struct Server {
    canned: canned::Server,
    tos: Arc<Tos>,
}

impl Server {
    async fn start() -> Server {
        Server::with(Tos::default()).await
    }

    async fn gated(gate: usize) -> Server {
        Server::with(Tos {
            gate,
            arrived: Some(watch::channel(0).0),
            ..Tos::default()
        })
        .await
    }

    async fn with(tos: Tos) -> Server {
        let tos = Arc::new(tos);
        let state = tos.clone();
        let canned =
            canned::Server::answering(move |addr| move |seen| answer(state.clone(), addr, seen))
                .await;
        Server { canned, tos }
    }

    fn fail(&self, part: u32, statuses: &[u16]) {
        self.tos
            .fail
            .lock()
            .unwrap()
            .insert(part, statuses.iter().copied().collect());
    }

    fn seen(&self) -> Vec<Seen> {
        self.canned.seen()
    }

    fn forget(&self) {
        self.canned.forget();
    }

    fn parts_seen(&self) -> Vec<Seen> {
        self.seen()
            .into_iter()
            .filter(|s| s.part().is_some())
            .collect()
    }

    fn client(&self, max_rate: Option<u64>) -> DouyinWeb {
        client_for(self.canned.addr, max_rate)
    }

    /// Steps 1–2 against this server, their requests forgotten.
    async fn target(&self, client: &DouyinWeb, size: u64) -> UploadTarget {
        let account = Account::new("main", Secret::new("sessionid=s; csrf_token=c"), None).unwrap();
        let creds = client.credentials(&account).await.unwrap();
        let target = client.upload_target(&creds, size).await.unwrap();
        self.forget();
        target
    }
}

fn client_for(addr: SocketAddr, max_rate: Option<u64>) -> DouyinWeb {
    let base: reqwest::Url = format!("http://{addr}").parse().unwrap();
    DouyinWeb::new(ClientSettings {
        creator_url: base.clone(),
        vod_url: base,
        upload_scheme: "http".into(),
        timeout: Duration::from_secs(10),
        retry: RetryPolicy {
            attempts: 3,
            initial: Duration::from_millis(1),
            max: Duration::from_millis(10),
        },
        max_rate,
    })
    .unwrap()
}

fn video_file(len: u64) -> (tempfile::NamedTempFile, Vec<u8>) {
    let data: Vec<u8> = (0..len).map(|i| (i * 7 + i / 251) as u8).collect();
    let mut file = tempfile::NamedTempFile::new().unwrap();
    std::io::Write::write_all(&mut file, &data).unwrap();
    (file, data)
}

/// The file opened as the agent opens a video.
fn open(path: &Path) -> VideoFile {
    VideoFile::open_path(path).unwrap()
}

/// The per-part CRCs the fingerprint pass finds.
fn crcs(path: &Path, part_size: u64) -> PartCrcs {
    dropcast::hash::fingerprint(path, part_size).unwrap().parts
}

fn expected_parts(data: &[u8], part_size: u64) -> Vec<PartDone> {
    part_layout(data.len() as u64, part_size)
        .into_iter()
        .map(|(number, offset, len)| PartDone {
            number,
            size: len,
            crc32: crc32fast::hash(&data[offset as usize..(offset + len) as usize]),
        })
        .collect()
}

/// An `on_part` that records what it was told.
fn recorder() -> Arc<Mutex<Vec<PartDone>>> {
    Arc::new(Mutex::new(Vec::new()))
}

/// A video file and steps 1–2 for it.
struct Staged {
    client: DouyinWeb,
    target: UploadTarget,
    file: tempfile::NamedTempFile,
    data: Vec<u8>,
}

impl Server {
    /// A `size`-byte file and steps 1–2 for it, their requests forgotten.
    async fn stage(&self, max_rate: Option<u64>, size: u64) -> Staged {
        let client = self.client(max_rate);
        let (file, data) = video_file(size);
        let target = self.target(&client, size).await;
        Staged {
            client,
            target,
            file,
            data,
        }
    }
}

impl Staged {
    /// The parts of the whole file.
    async fn upload(
        &self,
        parallel: usize,
        done: &[PartDone],
        progress: &Progress,
        told: &Arc<Mutex<Vec<PartDone>>>,
    ) -> Result<Vec<PartDone>, PublishError> {
        let size = self.data.len() as u64;
        self.upload_as(size, parallel, done, progress, told).await
    }

    /// The parts of the file, said to be `size` bytes.
    async fn upload_as(
        &self,
        size: u64,
        parallel: usize,
        done: &[PartDone],
        progress: &Progress,
        told: &Arc<Mutex<Vec<PartDone>>>,
    ) -> Result<Vec<PartDone>, PublishError> {
        let path = self.file.path();
        self.client
            .upload_parts(
                &self.target,
                UPLOAD_ID,
                &open(path),
                size,
                &crcs(path, PART),
                parallel,
                done,
                progress,
                |part| {
                    let told = told.clone();
                    async move {
                        told.lock().unwrap().push(part);
                        Ok(())
                    }
                },
            )
            .await
    }

    /// The whole file in one request.
    async fn upload_whole(&self, progress: &Progress) -> Result<(), PublishError> {
        let (size, crc) = (self.data.len() as u64, crc32fast::hash(&self.data));
        self.client
            .upload_file(&self.target, &open(self.file.path()), size, crc, progress)
            .await
    }
}

// ---- the happy path ---------------------------------------------------------------------

#[tokio::test]
async fn three_parts_with_a_short_last_one_start_upload_and_complete() {
    let server = Server::start().await;
    let size = 2 * PART + 10_001;
    let up = server.stage(None, size).await;

    let id = up.client.start_multipart(&up.target).await.unwrap();
    assert_eq!(id, UPLOAD_ID);
    let start = &server.seen()[0];
    assert_eq!(start.method, Method::POST);
    assert_eq!(start.uri.path(), "/tos-cn-v-0000/obj1");
    assert_eq!(start.uri.query(), Some("uploads"));
    assert_eq!(start.header("authorization"), Some(TOS_SIGN));
    assert!(start.body.is_empty());
    assert_eq!(start.header("transfer-encoding"), None);

    let progress = Progress::new();
    let told = recorder();
    let parts = up.upload(2, &[], &progress, &told).await.unwrap();
    let want = expected_parts(&up.data, PART);
    assert_eq!(parts, want);
    assert_eq!(
        want.iter().map(|p| p.size).collect::<Vec<_>>(),
        [PART, PART, 10_001]
    );
    let mut told = told.lock().unwrap().clone();
    told.sort_by_key(|p| p.number);
    assert_eq!(told, want, "on_part once per part");
    assert_eq!((progress.done(), progress.total()), (size, size));

    let mut sent = server.parts_seen();
    assert_eq!(sent.len(), 3);
    sent.sort_by_key(|s| s.part());
    let mut joined = Vec::new();
    for (s, p) in sent.iter().zip(&want) {
        assert_eq!(s.method, Method::PUT);
        assert_eq!(s.uri.path(), "/tos-cn-v-0000/obj1");
        assert_eq!(s.query_value("uploadID").as_deref(), Some(UPLOAD_ID));
        assert_eq!(
            s.header("content-length"),
            Some(p.size.to_string().as_str())
        );
        assert_eq!(
            s.header("content-crc32"),
            Some(format!("{:08x}", p.crc32).as_str())
        );
        assert_eq!(s.header("content-type"), Some("application/octet-stream"));
        assert_eq!(s.header("transfer-encoding"), None);
        joined.extend_from_slice(&s.body);
    }
    assert_eq!(joined, up.data, "the parts put together are the file");

    server.forget();
    up.client
        .finish_multipart(&up.target, &id, &parts)
        .await
        .unwrap();
    let finish = &server.seen()[0];
    assert_eq!(finish.method, Method::POST);
    assert_eq!(
        finish.query(),
        [("uploadID".to_owned(), UPLOAD_ID.to_owned())]
    );
    assert_eq!(finish.header("content-type"), Some("text/plain"));
    let body = format!(
        "1:{:08x},2:{:08x},3:{:08x}",
        want[0].crc32, want[1].crc32, want[2].crc32
    );
    assert_eq!(std::str::from_utf8(&finish.body).unwrap(), body);
}

#[tokio::test]
async fn parts_really_go_in_parallel() {
    let server = Server::gated(3).await;
    let up = server.stage(None, 3 * PART).await;
    let parts = up
        .upload(3, &[], &Progress::new(), &recorder())
        .await
        .unwrap();
    assert_eq!(parts.len(), 3);
    assert_eq!(server.tos.max_in_flight.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn one_at_a_time_when_parallel_is_one() {
    let server = Server::start().await;
    let up = server.stage(None, 4 * PART).await;
    up.upload(1, &[], &Progress::new(), &recorder())
        .await
        .unwrap();
    assert_eq!(server.tos.max_in_flight.load(Ordering::SeqCst), 1);
    let order: Vec<_> = server
        .parts_seen()
        .iter()
        .map(|s| s.part().unwrap())
        .collect();
    assert_eq!(order, [1, 2, 3, 4]);
}

// ---- failures and resume ----------------------------------------------------------------

#[tokio::test]
async fn a_part_failing_503_twice_is_resent_alone() {
    let server = Server::start().await;
    server.fail(2, &[503, 503]);
    let size = 2 * PART + 1;
    let up = server.stage(None, size).await;
    let progress = Progress::new();
    let told = recorder();
    let parts = up.upload(3, &[], &progress, &told).await.unwrap();
    assert_eq!(parts, expected_parts(&up.data, PART));
    let mut per_part: HashMap<u32, usize> = HashMap::new();
    for s in server.parts_seen() {
        *per_part.entry(s.part().unwrap()).or_default() += 1;
        let (n, off, len) = part_layout(size, PART)[s.part().unwrap() as usize - 1];
        assert_eq!(n, s.part().unwrap());
        assert_eq!(
            s.body.as_ref(),
            &up.data[off as usize..(off + len) as usize]
        );
    }
    assert_eq!(per_part, HashMap::from([(1, 1), (2, 3), (3, 1)]));
    assert_eq!(
        told.lock().unwrap().len(),
        3,
        "on_part once per part, retries or not"
    );
    // The two failed tries were taken back: the count ends at the size exactly.
    assert_eq!((progress.done(), progress.total()), (size, size));
}

#[tokio::test]
async fn resume_sends_only_the_missing_parts() {
    let server = Server::start().await;
    let size = 2 * PART + 777;
    let up = server.stage(None, size).await;
    let want = expected_parts(&up.data, PART);
    // Part 1 landed before a restart; the saved part 3 does not fit this layout.
    let done = [
        want[0],
        PartDone {
            number: 3,
            size: PART,
            crc32: 1,
        },
    ];
    let progress = Progress::new();
    let told = recorder();
    let parts = up.upload(2, &done, &progress, &told).await.unwrap();
    assert_eq!(parts, want);
    let mut sent: Vec<_> = server
        .parts_seen()
        .iter()
        .map(|s| s.part().unwrap())
        .collect();
    sent.sort();
    assert_eq!(sent, [2, 3]);
    let mut told: Vec<_> = told.lock().unwrap().iter().map(|p| p.number).collect();
    told.sort();
    assert_eq!(told, [2, 3]);
    assert_eq!((progress.done(), progress.total()), (size, size));

    // Everything done: nothing is sent, all parts come back.
    server.forget();
    let again = up.upload(2, &want, &progress, &recorder()).await.unwrap();
    assert_eq!(again, want);
    assert!(server.seen().is_empty());
    assert_eq!(progress.done(), size);
}

#[tokio::test]
async fn a_part_400_is_rejected_and_stops_the_upload() {
    let server = Server::start().await;
    server.fail(1, &[400]);
    let up = server.stage(None, 3 * PART).await;
    let told = recorder();
    let progress = Progress::new();
    let err = up.upload(1, &[], &progress, &told).await.unwrap_err();
    assert_eq!(err.class(), "rejected", "{err:?}");
    assert!(err.to_string().contains("scripted"), "{err}");
    assert!(!err.to_string().contains(TOS_SIGN));
    assert_eq!(server.parts_seen().len(), 1, "no retry, no further part");
    assert!(told.lock().unwrap().is_empty());
    assert_eq!(progress.done(), 0);
}

#[tokio::test]
async fn a_part_401_means_fresh_upload_credentials() {
    let server = Server::start().await;
    server.fail(2, &[401]);
    let up = server.stage(None, 2 * PART).await;
    let err = up
        .upload(1, &[], &Progress::new(), &recorder())
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            PublishError::AuthExpired {
                what: Expired::UploadCredentials,
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn an_on_part_error_ends_the_upload() {
    let server = Server::start().await;
    let size = 3 * PART;
    let up = server.stage(None, size).await;
    let err = up
        .client
        .upload_parts(
            &up.target,
            UPLOAD_ID,
            &open(up.file.path()),
            size,
            &crcs(up.file.path(), PART),
            1,
            &[],
            &Progress::new(),
            |_| async {
                Err(PublishError::Transient {
                    reason: "ledger busy".into(),
                    retry_after: None,
                })
            },
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("ledger busy"), "{err}");
    assert_eq!(server.parts_seen().len(), 1);
}

#[tokio::test]
async fn a_file_that_changed_is_not_sent() {
    let server = Server::start().await;
    let up = server.stage(None, 3 * PART).await;
    let err = up
        .upload_as(3 * PART + 1, 2, &[], &Progress::new(), &recorder())
        .await
        .unwrap_err();
    assert_eq!(err.class(), "changed");
    assert!(err.to_string().contains("were hashed"), "{err}");
    assert!(server.seen().is_empty());
}

#[tokio::test]
async fn finish_refuses_gaps_and_repeats_without_asking() {
    let server = Server::start().await;
    let client = server.client(None);
    let target = server.target(&client, 10).await;
    let p = |number| PartDone {
        number,
        size: 1,
        crc32: 0,
    };
    for parts in [vec![], vec![p(1), p(3)], vec![p(2)], vec![p(1), p(1), p(2)]] {
        let err = client
            .finish_multipart(&target, UPLOAD_ID, &parts)
            .await
            .unwrap_err();
        assert_eq!(err.class(), "rejected", "{parts:?}");
    }
    assert!(server.seen().is_empty());
    // Out of order is fine: the list goes sorted.
    client
        .finish_multipart(&target, UPLOAD_ID, &[p(2), p(1)])
        .await
        .unwrap();
    assert_eq!(server.seen()[0].body.as_ref(), b"1:00000000,2:00000000");
}

#[tokio::test]
async fn a_saved_upload_resumes_after_a_restart() {
    let server = Server::start().await;
    let size = 2 * PART + 5;
    let (file, data) = video_file(size);
    let want = expected_parts(&data, PART);
    let stored = {
        let client = server.client(None);
        let account = Account::new("main", Secret::new("sessionid=s; csrf_token=c"), None).unwrap();
        let creds = client.credentials(&account).await.unwrap();
        let target = client.upload_target(&creds, size).await.unwrap();
        serde_json::to_string(&SavedUpload::save(&creds, &target)).unwrap()
    };
    server.forget();
    // A new process: a new client and what the ledger kept.
    let saved: SavedUpload = serde_json::from_str(&stored).unwrap();
    assert!(!format!("{saved:?}").contains(TOS_SIGN));
    let (_creds, target) = saved.restore();
    let up = Staged {
        client: server.client(None),
        target,
        file,
        data,
    };
    let parts = up
        .upload(2, &want[..1], &Progress::new(), &recorder())
        .await
        .unwrap();
    assert_eq!(parts, want);
    up.client
        .finish_multipart(&up.target, UPLOAD_ID, &parts)
        .await
        .unwrap();
    let seen = server.seen();
    assert_eq!(seen.len(), 3, "parts 2 and 3, then completion");
    assert!(seen.iter().all(|s| s.uri.path() == "/tos-cn-v-0000/obj1"));
}

// ---- bandwidth limit --------------------------------------------------------------------

#[tokio::test]
async fn max_rate_is_shared_by_parallel_parts() {
    let server = Server::start().await;
    let rate = 512 * 1024;
    let size = 12 * PART; // 768 KiB
    let up = server.stage(Some(rate), size).await;
    let progress = Progress::new();
    let started = Instant::now();
    up.upload(3, &[], &progress, &recorder()).await.unwrap();
    let took = started.elapsed();
    // One limit for all three streams: 768 KiB at 512 KiB/s, less one chunk of burst
    // (64 KiB), is 1.375 s. Three separate limits would take under half a second.
    assert!(took >= Duration::from_millis(1300), "{took:?}");
    assert!(took < Duration::from_secs(6), "{took:?}");
    assert_eq!(progress.done(), size);
}

#[tokio::test]
async fn max_rate_holds_for_a_whole_file() {
    let server = Server::start().await;
    let size = 320 * 1024;
    let up = server.stage(Some(256 * 1024), size).await;
    let progress = Progress::new();
    let started = Instant::now();
    up.upload_whole(&progress).await.unwrap();
    let took = started.elapsed();
    // (320 − 32) KiB at 256 KiB/s after a 32 KiB burst: 1.125 s.
    assert!(took >= Duration::from_millis(1050), "{took:?}");
    assert!(took < Duration::from_secs(6), "{took:?}");
    assert_eq!((progress.done(), progress.total()), (size, size));
    assert_eq!(server.seen()[0].body.as_ref(), up.data.as_slice());
}

#[test]
fn max_rate_zero_is_refused() {
    let base: reqwest::Url = "http://127.0.0.1:1".parse().unwrap();
    let err = DouyinWeb::new(ClientSettings {
        creator_url: base.clone(),
        vod_url: base,
        upload_scheme: "http".into(),
        timeout: Duration::from_secs(1),
        retry: RetryPolicy {
            attempts: 1,
            initial: Duration::from_millis(1),
            max: Duration::from_millis(1),
        },
        max_rate: Some(0),
    })
    .unwrap_err();
    assert!(err.to_string().contains("max_rate"), "{err}");
}

#[test]
fn part_layout_edges() {
    assert_eq!(
        part_layout(30, 10).len(),
        3,
        "an exact multiple has no empty part"
    );
    assert_eq!(part_layout(31, 10).last(), Some(&(4, 30, 1)));
    assert_eq!(part_layout(9, 10), [(1, 0, 9)]);
    assert!(part_layout(0, 10).is_empty());
}

// ---- throughput (run by hand: cargo test --test client_multipart -- --ignored --nocapture) --

async fn sink(State(n): State<Arc<AtomicU64>>, body: Body) -> axum::Json<Value> {
    let mut s = body.into_data_stream();
    while let Some(Ok(c)) = s.next().await {
        n.fetch_add(c.len() as u64, Ordering::Relaxed);
    }
    axum::Json(json!({"success": 0}))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a throughput measurement, not a check"]
async fn bench_whole_file_upload() {
    let n = Arc::new(AtomicU64::new(0));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let params = json!({"code": 2000, "data": {"vid": "v", "oid": "o/p",
        "tos_host": addr.to_string(), "tos_sign": "s", "token": "t", "extra_param": "x=1"}});
    let app = Router::new()
        .route(
            "/web/api/media/upload/auth/",
            axum::routing::get(|| async {
                axum::Json(json!({"status_code": 0, "ak": "a", "auth": "b"}))
            }),
        )
        .route(
            "/video/openapi/v1/",
            axum::routing::get(move || async move { axum::Json(params) }),
        )
        .fallback(sink)
        .with_state(n.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let client = client_for(addr, None);
    let account = Account::new("m", Secret::new("sessionid=s; csrf_token=x"), None).unwrap();
    let creds = client.credentials(&account).await.unwrap();
    let size: u64 = 512 << 20;
    let file = tempfile::NamedTempFile::new().unwrap();
    {
        use std::io::Write;
        let chunk = vec![7u8; 1 << 20];
        let mut f = file.reopen().unwrap();
        for _ in 0..(size >> 20) {
            f.write_all(&chunk).unwrap();
        }
    }
    let target = client.upload_target(&creds, size).await.unwrap();
    for _ in 0..3 {
        let t = Instant::now();
        client
            .upload_file(
                &target,
                &open(file.path()),
                size,
                crc32fast::hash(&vec![7u8; size as usize]),
                &Progress::new(),
            )
            .await
            .unwrap();
        let s = t.elapsed().as_secs_f64();
        eprintln!("whole file: {:.0} MiB/s", size as f64 / s / 1048576.0);
    }
    for parallel in [1, 3] {
        let t = Instant::now();
        client
            .upload_parts(
                &target,
                "u",
                &open(file.path()),
                size,
                &crcs(file.path(), 8 << 20),
                parallel,
                &[],
                &Progress::new(),
                |_| async { Ok(()) },
            )
            .await
            .unwrap();
        let s = t.elapsed().as_secs_f64();
        eprintln!(
            "parts x{parallel}: {:.0} MiB/s",
            size as f64 / s / 1048576.0
        );
    }
}
