//! The `douyin` client (docs/douyin-creator.md) against a canned platform on 127.0.0.1 that
//! checks what the page says: SigV4 on steps 2 and 4 (verified here by hand with hmac and
//! sha2, independently of the client's crate), the TOS part rules with CRCs, create_v2's
//! body, and that steps 1, 5 and 6 came through the page. The page is a test `InPage` that
//! sends its requests over plain reqwest and marks them, as the browser's page signs them.

mod common;

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::response::Response;
use common::canned::{self, Seen, json_reply};
use hmac::{KeyInit, Mac};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use dropcast::domain::{EntityKind, PostDraft, TextEntity, Visibility};
use dropcast::platform::in_page::{InPage, PageMethod, PageReply, PageRequest};
use dropcast::platform::{
    BoxFuture, CreateExtras, Created, CreatorSettings, DouyinCreator, Expired, PartDone,
    PublishError, RetryPolicy,
};
use dropcast::progress::Progress;
use dropcast::video::VideoFile;

const UID: &str = "1234567890";
const AK: &str = "AKTPTESTKEY";
const SK: &str = "sts-secret-access-key";
const TOS_AUTH: &str = "SpaceKey/aweme/1/:version:v2:TOS-AUTH-SECRET";
const SESSION_KEY: &str = "eyJzZXNzaW9uIjoic2VjcmV0In0";
const VID: &str = "v0d00fg10000test";
const STORE_URI: &str = "tos-cn-ve-15/o4abc123";
const POSTER: &str = "tos-cn-p-0015/poster1";
const ITEM_ID: &str = "7300000000000000001";
const PART: u64 = 5 * 1024 * 1024;
/// The header the test page adds to every request it sends (the real page signs them).
const PAGE_MARK: &str = "x-test-page";

// ---- the canned platform ----------------------------------------------------------------

fn b64(data: &[u8]) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let n = chunk.iter().fold(0u32, |a, b| (a << 8) | u32::from(*b)) << (8 * (3 - chunk.len()));
        for i in 0..=chunk.len() {
            out.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
        out.extend(std::iter::repeat_n('=', 3 - chunk.len()));
    }
    out
}

/// `STS2` + base64(JSON with PolicyString → Statement[0].Condition → UserId), as the page says.
fn session_token() -> String {
    let condition = json!({"UserId": UID}).to_string();
    let policy = json!({"Statement": [{"Effect": "Allow", "Condition": condition}]}).to_string();
    format!(
        "STS2{}",
        b64(json!({"PolicyString": policy}).to_string().as_bytes())
    )
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn hmac(key: &[u8], data: &str) -> Vec<u8> {
    let mut mac = hmac::Hmac::<Sha256>::new_from_slice(key).unwrap();
    mac.update(data.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

fn aws_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Verifies SigV4 as the SigV4 specification builds it; `Err` names what is wrong.
fn verify_sigv4(seen: &Seen) -> Result<(), String> {
    let auth = seen.header("authorization").ok_or("no authorization")?;
    let rest = auth
        .strip_prefix("AWS4-HMAC-SHA256 ")
        .ok_or("not AWS4-HMAC-SHA256")?;
    let mut fields = BTreeMap::new();
    for part in rest.split(", ") {
        let (k, v) = part.split_once('=').ok_or("bad authorization")?;
        fields.insert(k, v);
    }
    let credential: Vec<&str> = fields["Credential"].split('/').collect();
    if credential.len() != 5
        || credential[0] != AK
        || credential[2] != "cn-north-1"
        || credential[3] != "vod"
        || credential[4] != "aws4_request"
    {
        return Err(format!("bad credential scope {credential:?}"));
    }
    let signed: Vec<&str> = fields["SignedHeaders"].split(';').collect();
    for must in ["host", "x-amz-date", "x-amz-security-token"] {
        if !signed.contains(&must) {
            return Err(format!("{must} not signed"));
        }
    }
    if seen.header("x-amz-security-token") != Some(session_token().as_str()) {
        return Err("wrong security token".into());
    }
    let body_hash = hex(&Sha256::digest(&seen.body));
    if let Some(sent) = seen.header("x-amz-content-sha256")
        && (sent != body_hash || !signed.contains(&"x-amz-content-sha256"))
    {
        return Err("x-amz-content-sha256 wrong or unsigned".into());
    }
    let mut query: Vec<(String, String)> = seen
        .query()
        .into_iter()
        .map(|(k, v)| (aws_encode(&k), aws_encode(&v)))
        .collect();
    query.sort();
    let query = query
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    let headers: String = signed
        .iter()
        .map(|h| format!("{h}:{}\n", seen.header(h).unwrap_or("").trim()))
        .collect();
    let canonical = format!(
        "{}\n{}\n{query}\n{headers}\n{}\n{body_hash}",
        seen.method,
        seen.uri.path(),
        fields["SignedHeaders"]
    );
    let date = seen.header("x-amz-date").ok_or("no x-amz-date")?;
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n{date}\n{}/cn-north-1/vod/aws4_request\n{}",
        &date[..8],
        hex(&Sha256::digest(canonical.as_bytes()))
    );
    let mut key = hmac(format!("AWS4{SK}").as_bytes(), &date[..8]);
    for part in ["cn-north-1", "vod", "aws4_request"] {
        key = hmac(&key, part);
    }
    if hex(&hmac(&key, &to_sign)) != fields["Signature"] {
        return Err("signature does not match".into());
    }
    Ok(())
}

/// A scripted create_v2 answer: status, headers, body.
type Scripted = (u16, Vec<(&'static str, &'static str)>, String);

#[derive(Default)]
struct State {
    parts: BTreeMap<u32, Vec<u8>>,
    object: Option<Vec<u8>>,
    creates: Vec<Value>,
    /// Answers create_v2 gives before it posts: (status, headers, body).
    create_script: VecDeque<Scripted>,
    /// The next step-1 answer's `status_code`, once.
    auth_status: Option<i64>,
    /// The next VOD requests answer 403 with this `Error.Code`.
    vod_error: VecDeque<&'static str>,
    /// The next TOS part requests answer this HTTP status.
    tos_status: VecDeque<u16>,
    works: Vec<Value>,
}

type Shared = Arc<Mutex<State>>;

fn vod_error(code: &str) -> Response {
    json_reply(
        403,
        json!({"ResponseMetadata": {"Action": "x", "Error": {"Code": code, "Message": format!("{code} for {AK}")}}}),
    )
}

/// Holds part answers until `want` parts are in flight at once (or a time limit passes),
/// and records the most that were.
struct Gate {
    want: usize,
    arrived: tokio::sync::watch::Sender<usize>,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
}

impl Gate {
    async fn pass(&self) {
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_in_flight.fetch_max(now, Ordering::SeqCst);
        self.arrived.send_modify(|n| *n += 1);
        let mut rx = self.arrived.subscribe();
        // Not all arriving means they were not sent at once: answer anyway, the test then
        // sees a smaller `max_in_flight`.
        let _ =
            tokio::time::timeout(Duration::from_secs(10), rx.wait_for(|n| *n >= self.want)).await;
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn answer(state: Shared, gate: Option<Arc<Gate>>, addr: SocketAddr, seen: Seen) -> Response {
    if let Some(gate) = &gate
        && seen.query_value("phase").as_deref() == Some("transfer")
    {
        gate.pass().await;
    }
    let path = seen.uri.path().to_owned();
    let from_page = seen.header(PAGE_MARK).is_some();
    let mut st = state.lock().unwrap();
    match path.as_str() {
        "/web/api/media/upload/auth/v5/" => {
            if !from_page {
                return json_reply(403, json!({}));
            }
            if let Some(code) = st.auth_status.take() {
                return json_reply(200, json!({"status_code": code}));
            }
            let auth = json!({
                "AccessKeyID": AK, "SecretAccessKey": SK, "SessionToken": session_token(),
                "ExpiredTime": "2099-01-01T00:00:00+08:00", "CurrentTime": "2024-01-01T00:00:00+08:00"
            });
            json_reply(200, json!({"status_code": 0, "auth": auth.to_string()}))
        }
        "/" => {
            if let Err(why) = verify_sigv4(&seen) {
                return json_reply(
                    403,
                    json!({"ResponseMetadata": {"Error": {"Code": "SignatureDoesNotMatch", "Message": why}}}),
                );
            }
            if let Some(code) = st.vod_error.pop_front() {
                return vod_error(code);
            }
            match seen.query_value("Action").as_deref() {
                Some("ApplyUploadInner") => {
                    let q = seen.query();
                    let expected = [
                        ("Action", "ApplyUploadInner"),
                        ("Version", "2020-11-19"),
                        ("SpaceName", "aweme"),
                        ("FileType", "video"),
                        ("IsInner", "1"),
                    ];
                    for (i, (k, v)) in expected.iter().enumerate() {
                        assert_eq!((q[i].0.as_str(), q[i].1.as_str()), (*k, *v));
                    }
                    assert_eq!(q[5].0, "FileSize");
                    json_reply(
                        200,
                        json!({"ResponseMetadata": {"Action": "ApplyUploadInner"}, "Result": {"InnerUploadAddress": {"UploadNodes": [{
                            "Vid": VID, "UploadHost": addr.to_string(),
                            "StoreInfos": [{"StoreUri": STORE_URI, "Auth": TOS_AUTH}],
                            "SessionKey": SESSION_KEY, "UploadHeader": {"X-Upload-Extra": "e1"}}]}}}),
                    )
                }
                Some("CommitUploadInner") => {
                    let body: Value = serde_json::from_slice(&seen.body).unwrap();
                    assert_eq!(body["SessionKey"], SESSION_KEY);
                    assert_eq!(
                        body["Functions"],
                        json!([{"name": "GetMeta"}, {"name": "Snapshot", "input": {"SnapshotTime": 0}}])
                    );
                    if st.object.is_none() {
                        return json_reply(
                            400,
                            json!({"ResponseMetadata": {"Error": {"Code": "InvalidParameter", "Message": "object incomplete"}}}),
                        );
                    }
                    json_reply(
                        200,
                        json!({"Result": {"Results": [{"Vid": VID, "PosterUri": POSTER,
                            "VideoMeta": {"Width": 720, "Height": 1280, "Duration": 3.5}}]}}),
                    )
                }
                other => json_reply(400, json!({"unknown action": other})),
            }
        }
        p if p == format!("/upload/v1/{STORE_URI}") => tos(&mut st, &seen),
        "/web/api/media/aweme/create_v2/" => {
            if !from_page {
                return json_reply(403, json!({}));
            }
            let q = seen.query();
            assert_eq!(
                q.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(),
                [
                    "read_aid",
                    "aid",
                    "cookie_enabled",
                    "browser_language",
                    "support_h265"
                ]
            );
            if let Some((status, headers, body)) = st.create_script.pop_front() {
                let mut r = canned::raw(status, &body);
                r.headers = headers
                    .into_iter()
                    .map(|(k, v)| (k, v.to_owned()))
                    .collect();
                drop(st);
                return into_response(r);
            }
            let body: Value = serde_json::from_slice(&seen.body).unwrap();
            st.creates.push(body);
            json_reply(200, json!({"status_code": 0, "item_id": ITEM_ID}))
        }
        "/janus/douyin/creator/pc/work_list" => {
            if !from_page {
                return json_reply(403, json!({}));
            }
            // One work per page, newest first; the cursor is the next index.
            let at: usize = seen
                .query_value("max_cursor")
                .map_or(0, |c| c.parse().unwrap());
            let list: Vec<Value> = st.works.get(at).cloned().into_iter().collect();
            let more = at + 1 < st.works.len();
            json_reply(
                200,
                json!({"status_code": 0, "aweme_list": list, "has_more": more, "max_cursor": at + 1}),
            )
        }
        "/aweme/v1/search/challengesug/" => json_reply(
            200,
            json!({"status_code": 0, "sug_list": [{"cha_name": "音乐节", "cid": "9"}, {"cha_name": "音乐", "cid": "1550712576368642"}]}),
        ),
        _ => json_reply(404, json!({})),
    }
}

fn into_response(r: canned::Reply) -> Response {
    use axum::response::IntoResponse;
    let mut resp = (axum::http::StatusCode::from_u16(r.status).unwrap(), r.body).into_response();
    for (k, v) in r.headers {
        resp.headers_mut().insert(k, v.parse().unwrap());
    }
    resp
}

/// The TOS gateway: the headers every request carries, then init, parts and finish.
fn tos(st: &mut State, seen: &Seen) -> Response {
    if seen.header("authorization") != Some(TOS_AUTH) {
        return json_reply(401, json!({"code": 4001, "message": "auth"}));
    }
    assert_eq!(seen.header("x-storage-u"), Some(UID));
    assert_eq!(seen.header("x-upload-extra"), Some("e1"));
    match seen.query_value("phase").as_deref() {
        Some("init") => {
            assert_eq!(seen.query_value("uploadmode").as_deref(), Some("part"));
            json_reply(
                200,
                json!({"code": 2000, "message": "Success", "data": {"uploadid": "UP1"}}),
            )
        }
        Some("transfer") => {
            if let Some(status) = st.tos_status.pop_front() {
                return json_reply(status, json!({"code": status}));
            }
            assert_eq!(seen.query_value("uploadid").as_deref(), Some("UP1"));
            assert!(seen.header("transfer-encoding").is_none());
            assert_eq!(
                seen.header("content-type"),
                Some("application/octet-stream")
            );
            let n: u32 = seen.query_value("part_number").unwrap().parse().unwrap();
            let crc = format!("{:08x}", crc32fast::hash(&seen.body));
            if seen.header("content-crc32") != Some(crc.as_str()) {
                return json_reply(400, json!({"code": 4002, "message": "crc mismatch"}));
            }
            st.parts.insert(n, seen.body.to_vec());
            json_reply(200, json!({"code": 2000, "data": {"crc32": crc}}))
        }
        Some("finish") => {
            assert_eq!(
                seen.header("content-type"),
                Some("text/plain;charset=UTF-8")
            );
            let listed = String::from_utf8(seen.body.to_vec()).unwrap();
            let expected = st
                .parts
                .iter()
                .map(|(n, b)| format!("{n}:{:08x}", crc32fast::hash(b)))
                .collect::<Vec<_>>()
                .join(",");
            if listed != expected {
                return json_reply(400, json!({"code": 4003, "message": "part list"}));
            }
            st.object = Some(st.parts.values().flatten().copied().collect());
            json_reply(200, json!({"code": 2000, "data": {"key": STORE_URI}}))
        }
        other => json_reply(400, json!({"phase": other})),
    }
}

// ---- the test page ------------------------------------------------------------------------

/// Sends page requests over plain HTTP, marked as the browser's page would sign them.
#[derive(Default)]
struct HttpPage {
    http: reqwest::Client,
    reloads: AtomicUsize,
}

impl InPage for HttpPage {
    fn reload<'a>(&'a self, _account: &'a str) -> BoxFuture<'a, Result<(), PublishError>> {
        self.reloads.fetch_add(1, Ordering::SeqCst);
        Box::pin(async { Ok(()) })
    }

    fn fetch<'a>(
        &'a self,
        account: &'a str,
        request: PageRequest,
    ) -> BoxFuture<'a, Result<PageReply, PublishError>> {
        Box::pin(async move {
            let mut req = match request.method {
                PageMethod::Get => self.http.get(request.url),
                PageMethod::Post => self.http.post(request.url),
            }
            .timeout(Duration::from_secs(2))
            .header(PAGE_MARK, account);
            for (k, v) in request.headers {
                req = req.header(k, v);
            }
            if let Some(body) = request.body {
                req = req.body(body);
            }
            let resp = req.send().await.map_err(|e| PublishError::Transient {
                reason: format!("fetch failed in the page: {e}"),
                retry_after: None,
            })?;
            let status = resp.status().as_u16();
            let headers = resp
                .headers()
                .iter()
                .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
                .collect();
            let body =
                resp.bytes()
                    .await
                    .map(|b| b.to_vec())
                    .map_err(|e| PublishError::Transient {
                        reason: format!("fetch failed in the page: {e}"),
                        retry_after: None,
                    })?;
            Ok(PageReply {
                status,
                headers,
                body,
            })
        })
    }
}

// ---- harness --------------------------------------------------------------------------------

struct Platform {
    canned: canned::Server,
    gate: Option<Arc<Gate>>,
    state: Shared,
    page: Arc<HttpPage>,
    client: DouyinCreator,
}

impl Platform {
    async fn start() -> Platform {
        Platform::with_gate(None).await
    }

    /// Part answers held until `want` parts are in flight at once.
    async fn gated(want: usize) -> Platform {
        Platform::with_gate(Some(Arc::new(Gate {
            want,
            arrived: tokio::sync::watch::channel(0).0,
            in_flight: AtomicUsize::new(0),
            max_in_flight: AtomicUsize::new(0),
        })))
        .await
    }

    async fn with_gate(gate: Option<Arc<Gate>>) -> Platform {
        let state: Shared = Arc::default();
        let (shared, held) = (state.clone(), gate.clone());
        let canned = canned::Server::answering(move |addr| {
            move |seen| answer(shared.clone(), held.clone(), addr, seen)
        })
        .await;
        let page = Arc::new(HttpPage::default());
        let base: reqwest::Url = format!("http://{}", canned.addr).parse().unwrap();
        let client = DouyinCreator::new(
            CreatorSettings {
                creator_url: base.clone(),
                vod_url: base.clone(),
                imagex_url: base,
                upload_scheme: "http".into(),
                timeout: Duration::from_secs(20),
                retry: RetryPolicy {
                    attempts: 2,
                    initial: Duration::from_millis(1),
                    max: Duration::from_millis(10),
                },
                max_rate: None,
                parallel_parts: 3,
            },
            page.clone(),
        )
        .unwrap();
        Platform {
            canned,
            gate,
            state,
            page,
            client,
        }
    }

    fn st(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap()
    }

    fn seen_parts(&self) -> Vec<u32> {
        let mut n: Vec<u32> = self
            .canned
            .seen()
            .iter()
            .filter(|s| s.query_value("phase").as_deref() == Some("transfer"))
            .map(|s| s.query_value("part_number").unwrap().parse().unwrap())
            .collect();
        n.sort();
        n
    }
}

fn video_file(len: u64) -> (tempfile::NamedTempFile, Vec<u8>) {
    let data: Vec<u8> = (0..len).map(|i| (i * 7 + i / 251) as u8).collect();
    let mut file = tempfile::NamedTempFile::new().unwrap();
    std::io::Write::write_all(&mut file, &data).unwrap();
    (file, data)
}

fn open(path: &Path) -> VideoFile {
    VideoFile::open_path(path).unwrap()
}

/// "遇见😀 #音乐 @小明 #旅行" with its spans in UTF-16 units.
fn draft() -> PostDraft {
    PostDraft {
        text: "遇见😀 #音乐 @小明 #旅行".into(),
        plain_text: "遇见😀".into(),
        entities: vec![
            TextEntity {
                start: 5,
                end: 8,
                kind: EntityKind::Hashtag {
                    name: "音乐".into(),
                },
            },
            TextEntity {
                start: 9,
                end: 12,
                kind: EntityKind::Mention {
                    name: "小明".into(),
                    user_id: "84990209480".into(),
                },
            },
            TextEntity {
                start: 13,
                end: 16,
                kind: EntityKind::Hashtag {
                    name: "旅行".into(),
                },
            },
        ],
        challenge_ids: vec!["1550712576368642".into()],
        mention_ids: vec!["84990209480".into()],
        visibility: Visibility::Private,
        allow_download: false,
        cover_at: Duration::from_millis(1500),
        collection: None,
        publish_at: None,
        title: None,
        cover_image: None,
        ai_generated: false,
        declaration: None,
        tiktok: Default::default(),
    }
}

fn account_paused(e: &PublishError) -> bool {
    matches!(
        e,
        PublishError::AuthExpired {
            what: Expired::Cookie,
            ..
        }
    )
}

// ---- tests ------------------------------------------------------------------------------------

#[tokio::test]
async fn a_video_goes_up_in_parallel_parts_and_is_posted_from_the_page() {
    let p = Platform::gated(3).await;
    let (file, data) = video_file(2 * PART + 12_345);
    let fp = dropcast::hash::fingerprint(file.path(), PART).unwrap();
    let video = open(file.path());

    let creds = p.client.credentials("studio").await.unwrap();
    assert_eq!(creds.user_id(), UID);
    assert!(!format!("{creds:?}").contains(SK));
    let slot = p.client.apply_upload(&creds, fp.size).await.unwrap();
    assert_eq!(
        (slot.vid.as_str(), slot.store_uri.as_str()),
        (VID, STORE_URI)
    );
    let upload_id = p.client.init_upload(&slot, &creds).await.unwrap();
    let landed = Arc::new(Mutex::new(Vec::new()));
    let progress = Progress::new();
    let parts = p
        .client
        .upload_parts(
            &slot,
            &creds,
            &upload_id,
            &video,
            fp.size,
            &fp.parts,
            &[],
            &progress,
            |part| {
                let landed = landed.clone();
                async move {
                    landed.lock().unwrap().push(part);
                    Ok(())
                }
            },
        )
        .await
        .unwrap();
    assert_eq!(parts.len(), 3);
    assert_eq!(landed.lock().unwrap().len(), 3);
    let gate = p.gate.as_ref().unwrap();
    assert_eq!(
        gate.max_in_flight.load(Ordering::SeqCst),
        3,
        "the parts went in parallel"
    );
    assert_eq!(progress.done(), fp.size);
    p.client
        .finish_upload(&slot, &creds, &upload_id, &parts)
        .await
        .unwrap();
    let committed = p.client.commit(&creds, &slot).await.unwrap();
    assert_eq!(committed.poster.as_deref(), Some(POSTER));
    assert_eq!((committed.width, committed.height), (720, 1280));
    let object = p.st().object.clone().unwrap();
    assert_eq!(
        Sha256::digest(&object),
        Sha256::digest(&data),
        "the bytes arrived intact"
    );

    let created = p
        .client
        .create("studio", &committed, &draft(), &CreateExtras::default())
        .await
        .unwrap();
    let Created::Posted(post) = created else {
        panic!("{created:?}")
    };
    assert_eq!(post.id, ITEM_ID);
    assert_eq!(post.url, format!("https://www.douyin.com/video/{ITEM_ID}"));
    let body = p.st().creates[0].clone();
    let common = &body["item"]["common"];
    assert_eq!(common["text"], "遇见😀 #音乐 @小明 #旅行");
    assert_eq!(common["caption"], common["text"]);
    assert_eq!(common["item_title"], "遇见😀");
    assert_eq!(common["visibility_type"], 2);
    assert_eq!(common["video_id"], VID);
    assert_eq!(common["timing"], 0);
    assert_eq!(common["challenges"], r#"["1550712576368642"]"#);
    let spans: Value = serde_json::from_str(common["text_extra"].as_str().unwrap()).unwrap();
    assert_eq!(spans[0]["start"], 5);
    assert_eq!(spans[1]["type"], 0);
    assert_eq!(spans[1]["user_id"], "84990209480");
    assert_eq!(spans[2]["hashtag_name"], "旅行");
    assert_eq!(body["item"]["cover"]["poster"], POSTER);
    assert_eq!(body["item"]["cover"]["poster_delay"], 1500);
    assert_eq!(body["item"]["mix"], json!({}));

    // No step of the creator site went around the page.
    for seen in p.canned.seen() {
        let creator =
            seen.uri.path().starts_with("/web/") || seen.uri.path().starts_with("/janus/");
        assert_eq!(creator, seen.header(PAGE_MARK).is_some(), "{}", seen.uri);
        assert!(!format!("{:?}", seen.uri).contains(SK));
    }
}

// Regression (issue 11 item 1): a resumed upload must send only the parts not recorded yet.
#[tokio::test]
async fn a_resumed_upload_sends_only_the_missing_parts() {
    let p = Platform::start().await;
    let (file, data) = video_file(2 * PART + 7);
    let fp = dropcast::hash::fingerprint(file.path(), PART).unwrap();
    let video = open(file.path());
    let creds = p.client.credentials("studio").await.unwrap();
    let slot = p.client.apply_upload(&creds, fp.size).await.unwrap();
    let upload_id = p.client.init_upload(&slot, &creds).await.unwrap();
    // Part 2 arrived before the restart (the ledger says so) and the platform has it.
    p.st()
        .parts
        .insert(2, data[PART as usize..2 * PART as usize].to_vec());
    let done = [PartDone {
        number: 2,
        size: PART,
        crc32: fp.parts.get(2).unwrap(),
    }];
    let parts = p
        .client
        .upload_parts(
            &slot,
            &creds,
            &upload_id,
            &video,
            fp.size,
            &fp.parts,
            &done,
            &Progress::new(),
            |_| async { Ok(()) },
        )
        .await
        .unwrap();
    assert_eq!(p.seen_parts(), [1, 3]);
    assert_eq!(parts.len(), 3);
    p.client
        .finish_upload(&slot, &creds, &upload_id, &parts)
        .await
        .unwrap();
    assert_eq!(p.st().object.as_deref(), Some(&data[..]));
}

#[tokio::test]
async fn vod_and_tos_refusals_sort_into_their_classes() {
    let p = Platform::start().await;
    let creds = p.client.credentials("studio").await.unwrap();
    p.st().vod_error.push_back("InvalidAuthorization");
    let e = p.client.apply_upload(&creds, 10).await.unwrap_err();
    assert!(
        matches!(
            e,
            PublishError::AuthExpired {
                what: Expired::UploadCredentials,
                ..
            }
        ),
        "{e}"
    );
    assert!(!e.to_string().contains(AK), "{e}");
    p.st().vod_error.push_back("SignatureDoesNotMatch");
    let e = p.client.apply_upload(&creds, 10).await.unwrap_err();
    assert_eq!(e.class(), "rejected", "{e}");
    assert!(e.to_string().contains("signed wrong"), "{e}");

    let (file, _) = video_file(1000);
    let fp = dropcast::hash::fingerprint(file.path(), PART).unwrap();
    let slot = p.client.apply_upload(&creds, fp.size).await.unwrap();
    let upload_id = p.client.init_upload(&slot, &creds).await.unwrap();
    p.st().tos_status.push_back(403);
    let e = p
        .client
        .upload_parts(
            &slot,
            &creds,
            &upload_id,
            &open(file.path()),
            fp.size,
            &fp.parts,
            &[],
            &Progress::new(),
            |_| async { Ok(()) },
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            PublishError::AuthExpired {
                what: Expired::UploadCredentials,
                ..
            }
        ),
        "{e}"
    );
    assert!(!e.to_string().contains("TOS-AUTH-SECRET"), "{e}");
    // A commit of an object that is not complete is refused by the platform.
    assert_eq!(
        p.client.commit(&creds, &slot).await.unwrap_err().class(),
        "rejected"
    );
}

fn committed() -> dropcast::platform::CommittedVideo {
    dropcast::platform::CommittedVideo {
        vid: VID.into(),
        store_uri: STORE_URI.into(),
        poster: Some(POSTER.into()),
        width: 1080,
        height: 1920,
        duration_secs: 1.0,
    }
}

// Regression (issue 11 item 1): the page guard's empty 403 must reload once, not pause at once nor loop.
#[tokio::test]
async fn an_empty_403_reloads_the_page_once_then_pauses_the_account() {
    let p = Platform::start().await;
    p.st().create_script.push_back((403, vec![], String::new()));
    let created = p
        .client
        .create("studio", &committed(), &draft(), &CreateExtras::default())
        .await
        .unwrap();
    assert!(matches!(created, Created::Posted(_)));
    assert_eq!(p.page.reloads.load(Ordering::SeqCst), 1);

    for _ in 0..2 {
        p.st().create_script.push_back((403, vec![], String::new()));
    }
    let e = p
        .client
        .create("studio", &committed(), &draft(), &CreateExtras::default())
        .await
        .unwrap_err();
    assert!(account_paused(&e), "{e}");
    assert!(e.to_string().contains("dropcast login"), "{e}");
    assert_eq!(
        p.page.reloads.load(Ordering::SeqCst),
        2,
        "one reload per refusal pair"
    );
    assert_eq!(p.st().creates.len(), 1, "nothing else was posted");
}

#[tokio::test]
async fn logged_out_risk_checks_and_failed_verification_pause_the_account() {
    let p = Platform::start().await;
    p.st().auth_status = Some(8);
    let e = p.client.credentials("studio").await.unwrap_err();
    assert!(account_paused(&e), "{e}");
    let scripted: [Scripted; 2] = [
        (
            200,
            vec![("x-tt-verify-passport-decision", "verify")],
            r#"{"status_code":0,"item_id":"1"}"#.into(),
        ),
        (
            200,
            vec![],
            r#"{"status_code":110,"status_msg":"verify"}"#.into(),
        ),
    ];
    for scripted in scripted {
        p.st().create_script.push_back(scripted);
        let e = p
            .client
            .create("studio", &committed(), &draft(), &CreateExtras::default())
            .await
            .unwrap_err();
        assert!(account_paused(&e), "{e}");
    }
    p.st().create_script.push_back((
        200,
        vec![],
        r#"{"status_code":2,"status_msg":"video already published"}"#.into(),
    ));
    let again = p
        .client
        .create("studio", &committed(), &draft(), &CreateExtras::default())
        .await
        .unwrap();
    assert_eq!(again, Created::AlreadyPublished);
    p.st().create_script.push_back((
        200,
        vec![],
        r#"{"status_code":49,"status_msg":"text_extra"}"#.into(),
    ));
    let e = p
        .client
        .create("studio", &committed(), &draft(), &CreateExtras::default())
        .await
        .unwrap_err();
    assert_eq!(e.class(), "rejected");
    assert!(p.st().creates.is_empty());
}

#[tokio::test]
async fn a_create_answer_lost_in_the_page_is_unknown() {
    let p = Platform::start().await;
    // An answer that never comes: the page's fetch fails after its time limit.
    let hang = canned::Server::answering(|_| {
        |_seen| async {
            std::future::pending::<()>().await;
            json_reply(200, json!({}))
        }
    })
    .await;
    let base: reqwest::Url = format!("http://{}", hang.addr).parse().unwrap();
    let client = DouyinCreator::new(
        CreatorSettings {
            creator_url: base.clone(),
            vod_url: base.clone(),
            imagex_url: base,
            upload_scheme: "http".into(),
            timeout: Duration::from_secs(5),
            retry: RetryPolicy {
                attempts: 3,
                initial: Duration::from_millis(1),
                max: Duration::from_millis(5),
            },
            max_rate: None,
            parallel_parts: 1,
        },
        p.page.clone(),
    )
    .unwrap();
    let e = client
        .create("studio", &committed(), &draft(), &CreateExtras::default())
        .await
        .unwrap_err();
    assert_eq!(e.class(), "unknown", "{e}");
    assert_eq!(
        hang.seen().len(),
        1,
        "a lost create is never re-sent blindly"
    );
}

fn work(id: &str, desc: &str, create_time: i64, vid: Option<&str>) -> Value {
    let mut w = json!({"aweme_id": id, "desc": desc, "create_time": create_time, "public_time": create_time});
    if let Some(vid) = vid {
        w["video"] = json!({"vid": vid});
    }
    w
}

// Regression (issue 11 item 1): a work list without video ids and no match counted as "not posted", so the post was re-sent.
#[tokio::test]
async fn the_work_list_reconciles_by_vid_else_by_text_and_time_else_cannot_tell() {
    let p = Platform::start().await;
    let now = SystemTime::now();
    let secs = now.duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
    let text = draft().text;

    // By vid, on the third page.
    p.st().works = vec![
        work("1", "a", secs, Some("v-other")),
        work("2", &text, secs, Some("v-other2")),
        work("3", "b", secs - 99, Some(VID)),
    ];
    let found = p.client.find_post("studio", VID, &text, now).await.unwrap();
    assert_eq!(found.map(|p| p.id).as_deref(), Some("3"));
    // Every item names its video and none is ours: absent.
    p.st().works.truncate(2);
    assert_eq!(
        p.client.find_post("studio", VID, &text, now).await.unwrap(),
        None
    );

    // Without vids: exact text and a create time not before the mark (rounded down).
    p.st().works = vec![
        work("4", &text, secs - 60, None),
        work("5", &format!("{text} "), secs, None),
        work("6", &text, secs, None),
    ];
    let found = p.client.find_post("studio", VID, &text, now).await.unwrap();
    assert_eq!(found.map(|p| p.id).as_deref(), Some("6"));
    // Neither proves it: the list cannot tell, so the job must not be re-sent.
    p.st().works.pop();
    let e = p
        .client
        .find_post("studio", VID, &text, now)
        .await
        .unwrap_err();
    assert_eq!(e.class(), "unknown", "{e}");
}

#[tokio::test]
async fn challenge_ids_match_exact_names_only() {
    let p = Platform::start().await;
    assert_eq!(
        p.client
            .challenge_id("studio", "音乐")
            .await
            .unwrap()
            .as_deref(),
        Some("1550712576368642")
    );
    assert_eq!(p.client.challenge_id("studio", "音").await.unwrap(), None);
    let seen = p.canned.seen();
    assert_eq!(seen[0].query_value("keyword").as_deref(), Some("音乐"));
    assert_eq!(
        seen[0].query_value("source").as_deref(),
        Some("challenge_create")
    );
    assert!(seen[0].header(PAGE_MARK).is_some());
}

#[tokio::test]
async fn more_than_five_hashtags_are_refused_before_anything_is_sent() {
    let p = Platform::start().await;
    let mut d = draft();
    d.text = "#a #b #c #d #e #f".into();
    d.entities = (0..6)
        .map(|i| TextEntity {
            start: i * 3,
            end: i * 3 + 2,
            kind: EntityKind::Hashtag {
                name: ((b'a' + i as u8) as char).to_string(),
            },
        })
        .collect();
    let e = p
        .client
        .create("studio", &committed(), &d, &CreateExtras::default())
        .await
        .unwrap_err();
    assert_eq!(e.class(), "rejected", "{e}");
    assert!(e.to_string().contains("at most 5"), "{e}");
    assert!(p.canned.seen().is_empty());
}
