//! Sandbox fault injection, driven over real HTTP (reqwest against a sandbox on
//! 127.0.0.1:0): every action on some step, `times`/`after` counting, the control
//! endpoints, and faults given through `SandboxOptions`.

use std::time::{Duration, Instant};

use dropcast::sandbox::{
    self, Fault, FaultAction, FaultStep, ParamsLayout, SandboxHandle, SandboxOptions, cookie_for,
};
use reqwest::StatusCode;
use serde_json::{Value, json};

// ---------- a small, correct client ----------

struct Sb {
    handle: SandboxHandle,
    http: reqwest::Client,
    base: String,
}

#[derive(Debug)]
struct Reply {
    status: StatusCode,
    retry_after: Option<String>,
    json: Value,
}

struct Creds {
    ak: String,
    auth: String,
}

struct Params {
    vid: String,
    oid: String,
    tos_host: String,
    tos_sign: String,
    token: String,
    extra_param: String,
}

async fn start(options: SandboxOptions) -> Sb {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let handle = sandbox::start(
        listener,
        SandboxOptions {
            layout: ParamsLayout::Top,
            ..options
        },
    )
    .await
    .expect("start");
    let base = handle.base_url();
    Sb {
        handle,
        http: reqwest::Client::new(),
        base,
    }
}

async fn sb() -> Sb {
    start(SandboxOptions::default()).await
}

/// Send, and read the whole answer; `Err` when no HTTP answer came.
async fn try_send(req: reqwest::RequestBuilder) -> Result<Reply, reqwest::Error> {
    let resp = req.send().await?;
    let status = resp.status();
    let retry_after = resp
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let bytes = resp.bytes().await?;
    Ok(Reply {
        status,
        retry_after,
        json: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    })
}

async fn send(req: reqwest::RequestBuilder) -> Reply {
    try_send(req).await.expect("an HTTP answer")
}

/// The request got no HTTP answer at all: a reset or an early EOF, not a status.
fn assert_no_answer(result: Result<Reply, reqwest::Error>) {
    match result {
        Ok(r) => panic!("expected a dropped connection, got {} {}", r.status, r.json),
        Err(e) => {
            assert!(!e.is_status(), "{e:?}");
            assert_eq!(e.status(), None, "{e:?}");
            assert!(!e.is_timeout(), "{e:?}");
            assert!(e.is_request() || e.is_connect() || e.is_body(), "{e:?}");
        }
    }
}

fn crc_hex(bytes: &[u8]) -> String {
    format!("{:08x}", crc32fast::hash(bytes))
}

fn mp4_box(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
    let mut v = ((body.len() + 8) as u32).to_be_bytes().to_vec();
    v.extend_from_slice(kind);
    v.extend_from_slice(body);
    v
}

/// A small MP4: 2.5 s, 720x1280, `payload` bytes of media data.
fn tiny_mp4(payload: usize) -> Vec<u8> {
    let mut mvhd = vec![0u8; 12];
    mvhd.extend_from_slice(&1000u32.to_be_bytes());
    mvhd.extend_from_slice(&2500u32.to_be_bytes());
    mvhd.extend_from_slice(&[0; 80]);
    let mut tkhd = vec![0u8; 4 + 20 + 8 + 8 + 36];
    tkhd.extend_from_slice(&(720u32 << 16).to_be_bytes());
    tkhd.extend_from_slice(&(1280u32 << 16).to_be_bytes());
    let mut moov = mp4_box(b"mvhd", &mvhd);
    moov.extend(mp4_box(b"trak", &mp4_box(b"tkhd", &tkhd)));
    let mut file = mp4_box(b"ftyp", b"isom\0\0\x02\0isomiso2mp41");
    file.extend(mp4_box(b"moov", &moov));
    let media: Vec<u8> = (0..payload).map(|i| (i * 7 % 251) as u8).collect();
    file.extend(mp4_box(b"mdat", &media));
    file
}

fn csrf_of(account: &str) -> String {
    cookie_for(account)
        .split(';')
        .map(str::trim)
        .find_map(|kv| kv.strip_prefix("csrf_token="))
        .expect("cookie_for has csrf_token")
        .to_owned()
}

/// A correct step 5 form with a plain caption.
fn form(vid: &str, poster: &str) -> String {
    let fields = [
        ("video_id", vid),
        ("poster", poster),
        ("poster_delay", "0"),
        ("text", "hello sandbox"),
        ("text_extra", "[]"),
        ("challenges", "[]"),
        ("mentions", "[]"),
        ("visibility_type", "0"),
        ("third_text", "hello sandbox"),
        ("download", "0"),
        ("upload_source", "1"),
        ("mix_id", ""),
        ("mix_order", ""),
        ("is_preview", "0"),
        ("timing", "0"),
    ];
    serde_urlencoded::to_string(fields).expect("form encodes")
}

impl Sb {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn creds_req(&self) -> reqwest::RequestBuilder {
        self.http
            .get(self.url("/web/api/media/upload/auth/"))
            .header("Cookie", cookie_for("main"))
    }

    async fn creds(&self) -> Creds {
        let r = send(self.creds_req()).await;
        assert_eq!(r.json["status_code"], 0, "{}", r.json);
        Creds {
            ak: r.json["ak"].as_str().expect("ak").to_owned(),
            auth: r.json["auth"].as_str().expect("auth").to_owned(),
        }
    }

    async fn params(&self, c: &Creds, size: usize) -> Params {
        let url = self.url(&format!(
            "/video/openapi/v1/?action=GetVideoUploadParams&use_edge_node=1&file_size={size}"
        ));
        let r = send(
            self.http
                .get(url)
                .header("authorization", &c.auth)
                .header("x-tt-access", &c.ak),
        )
        .await;
        assert_eq!(r.json["code"], 2000, "{}", r.json);
        let s = |k: &str| r.json["data"][k].as_str().expect(k).to_owned();
        Params {
            vid: s("vid"),
            oid: s("oid"),
            tos_host: s("tos_host"),
            tos_sign: s("tos_sign"),
            token: s("token"),
            extra_param: s("extra_param"),
        }
    }

    fn upload_req(&self, p: &Params, bytes: &[u8]) -> reqwest::RequestBuilder {
        self.http
            .post(format!("http://{}/{}", p.tos_host, p.oid))
            .header("Authorization", &p.tos_sign)
            .header("Content-Type", "application/octet-stream")
            .header("Content-CRC32", crc_hex(bytes))
            .body(bytes.to_vec())
    }

    fn commit_req(&self, c: &Creds, p: &Params) -> reqwest::RequestBuilder {
        let url = self.url(&format!(
            "/video/openapi/v1/?action=UpdateVideoUploadInfos&{}",
            p.extra_param
        ));
        let body = json!({"vid": p.vid, "oid": p.oid, "token": p.token, "poster_ss": 0,
                          "is_exact_poster": true, "user_reference": ""});
        self.http
            .post(url)
            .header("authorization", &c.auth)
            .header("x-tt-access", &c.ak)
            .json(&body)
    }

    /// Steps 1–4; returns the `vid` and the poster oid for step 5.
    async fn ready(&self) -> (String, String) {
        let bytes = tiny_mp4(4096);
        let c = self.creds().await;
        let p = self.params(&c, bytes.len()).await;
        let up = send(self.upload_req(&p, &bytes)).await;
        assert_eq!(up.json, json!({"success": 0}), "{}", up.status);
        let r = send(self.commit_req(&c, &p)).await;
        assert_eq!(r.json["code"], 2000, "{}", r.json);
        let poster = r.json["data"]["poster"]["oid"]
            .as_str()
            .expect("poster")
            .to_owned();
        (p.vid, poster)
    }

    fn create_req(&self, vid: &str, poster: &str) -> reqwest::RequestBuilder {
        self.http
            .post(self.url("/web/api/media/aweme/create/"))
            .header("Cookie", cookie_for("main"))
            .header("csrf_token", csrf_of("main"))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(form(vid, poster))
    }

    async fn inspect(&self, what: &str) -> Value {
        send(self.http.get(self.url(&format!("/__sandbox/{what}"))))
            .await
            .json
    }

    async fn add_faults(&self, faults: Value) -> Reply {
        send(self.http.post(self.url("/__sandbox/faults")).json(&faults)).await
    }

    async fn count(&self, step: &str) -> u64 {
        self.inspect("requests").await[step]
            .as_u64()
            .expect("a count")
    }

    /// Posts made so far, waiting (bounded) until there are `n`: work detached from a
    /// request that the client gave up on finishes on its own time.
    async fn wait_posts(&self, n: usize) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let posts = self.inspect("posts").await;
            let posts = posts.as_array().expect("a list").clone();
            if posts.len() >= n || Instant::now() > deadline {
                return posts;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

// ---------- one test per action ----------

#[tokio::test]
async fn status_with_retry_after_replaces_create_once() {
    let sb = sb().await;
    let (vid, poster) = sb.ready().await;
    let r = sb
        .add_faults(json!({"step": "create", "action": {"kind": "status", "status": 429, "retry_after": 3}, "times": 1}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);

    let limited = send(sb.create_req(&vid, &poster)).await;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(limited.retry_after.as_deref(), Some("3"));
    assert_eq!(limited.json["status_code"], 7, "{}", limited.json);
    assert_eq!(sb.inspect("posts").await, json!([]), "no work was done");

    let ok = send(sb.create_req(&vid, &poster)).await;
    assert_eq!(ok.json["status_code"], 0, "{}", ok.json);
    assert_eq!(sb.count("create").await, 2, "the faulted call counts");
}

#[tokio::test]
async fn status_on_upload_drains_the_body_so_the_client_sees_it() {
    let sb = sb().await;
    let bytes = tiny_mp4(2 * 1024 * 1024);
    let c = sb.creds().await;
    let p = sb.params(&c, bytes.len()).await;
    sb.handle.inject(
        Fault::new(
            FaultStep::Upload,
            FaultAction::Status {
                status: 503,
                retry_after: None,
                body: None,
            },
        )
        .times(1),
    );
    let r = send(sb.upload_req(&p, &bytes)).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.json["success"], 1, "TOS-style failure body: {}", r.json);
    assert_eq!(r.json["error"]["code"], 503);
    let r = send(sb.upload_req(&p, &bytes)).await;
    assert_eq!(r.json, json!({"success": 0}));
}

#[tokio::test]
async fn body_on_credentials_says_not_logged_in() {
    let sb = sb().await;
    sb.handle.inject(
        Fault::new(
            FaultStep::Credentials,
            FaultAction::Body {
                body: json!({"status_code": 8, "status_msg": "cookie expired"}),
            },
        )
        .times(1),
    );
    let r = send(sb.creds_req()).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.json,
        json!({"status_code": 8, "status_msg": "cookie expired"})
    );
    sb.creds().await;
    assert_eq!(sb.count("credentials").await, 2);
}

#[tokio::test]
async fn reset_on_credentials_is_a_request_error_not_a_status() {
    let sb = sb().await;
    sb.handle
        .inject(Fault::new(FaultStep::Credentials, FaultAction::Reset).times(1));
    assert_no_answer(try_send(sb.creds_req()).await);
    sb.creds().await;
    assert_eq!(sb.count("credentials").await, 2);
}

#[tokio::test]
async fn reset_on_upload_cuts_it_off_before_the_body_is_stored() {
    let sb = sb().await;
    // Large enough that the client is still sending when the connection goes.
    let bytes = tiny_mp4(8 * 1024 * 1024);
    let c = sb.creds().await;
    let p = sb.params(&c, bytes.len()).await;
    sb.handle
        .inject(Fault::new(FaultStep::Upload, FaultAction::Reset).times(1));
    assert_no_answer(try_send(sb.upload_req(&p, &bytes)).await);

    let r = send(sb.commit_req(&c, &p)).await;
    assert_eq!(r.json["code"], 4004, "no object was stored: {}", r.json);
    let r = send(sb.upload_req(&p, &bytes)).await;
    assert_eq!(r.json, json!({"success": 0}));
    assert_eq!(sb.count("upload").await, 2);
}

#[tokio::test]
async fn delay_on_commit_waits_then_works() {
    let sb = sb().await;
    let bytes = tiny_mp4(1024);
    let c = sb.creds().await;
    let p = sb.params(&c, bytes.len()).await;
    send(sb.upload_req(&p, &bytes)).await;
    sb.add_faults(json!({"step": "commit", "action": {"kind": "delay", "ms": 150}}))
        .await;
    let started = Instant::now();
    let r = send(sb.commit_req(&c, &p)).await;
    assert!(started.elapsed() >= Duration::from_millis(150));
    assert_eq!(r.json["code"], 2000, "{}", r.json);
    assert_eq!(sb.count("commit").await, 1);
}

#[tokio::test]
async fn drop_answer_on_create_posts_but_the_client_gets_no_answer() {
    let sb = sb().await;
    let (vid, poster) = sb.ready().await;
    sb.add_faults(json!({"step": "create", "action": "drop_answer", "times": 1}))
        .await;
    assert_no_answer(try_send(sb.create_req(&vid, &poster)).await);

    let posts = sb.inspect("posts").await;
    assert_eq!(posts.as_array().map(Vec::len), Some(1), "{posts}");
    assert_eq!(posts[0]["vid"], vid.as_str());
    // Reconciliation (6a) finds it; publishing again is refused.
    let list = send(
        sb.http
            .get(sb.url("/web/api/media/aweme/post/?count=10&max_cursor=0"))
            .header("Cookie", cookie_for("main")),
    )
    .await;
    assert_eq!(list.json["aweme_list"][0]["video"]["vid"], vid.as_str());
    let again = send(sb.create_req(&vid, &poster)).await;
    assert_eq!(again.json["status_code"], 2);
    assert_eq!(again.json["status_msg"], "video already published");
    assert_eq!(sb.count("create").await, 2);
}

#[tokio::test]
async fn lag_on_post_list_hides_new_posts_until_they_are_old_enough() {
    let sb = sb().await;
    let (vid, poster) = sb.ready().await;
    sb.add_faults(json!({"step": "post_list", "action": {"kind": "lag", "ms": 60000}}))
        .await;
    let created = send(sb.create_req(&vid, &poster)).await;
    assert_eq!(created.json["status_code"], 0, "{}", created.json);
    let list = || {
        send(
            sb.http
                .get(sb.url("/web/api/media/aweme/post/?count=10&max_cursor=0"))
                .header("Cookie", cookie_for("main")),
        )
    };
    assert_eq!(list().await.json["aweme_list"], json!([]), "not listed yet");
    send(sb.http.post(sb.url("/__sandbox/advance?seconds=61"))).await;
    assert_eq!(
        list().await.json["aweme_list"][0]["video"]["vid"],
        vid.as_str()
    );
    assert_eq!(sb.inspect("posts").await.as_array().map(Vec::len), Some(1));
}

#[tokio::test]
async fn hold_keeps_create_open_until_released() {
    let sb = sb().await;
    let (vid, poster) = sb.ready().await;
    sb.handle
        .inject(Fault::new(FaultStep::Create, FaultAction::Hold).times(1));
    let pending = tokio::spawn(try_send(sb.create_req(&vid, &poster)));
    sb.handle.wait_held(1).await;
    assert_eq!(sb.inspect("faults").await["held"], 1);
    assert!(!pending.is_finished());
    assert_eq!(
        sb.inspect("posts").await,
        json!([]),
        "nothing done while held"
    );

    let r = send(sb.http.post(sb.url("/__sandbox/release"))).await;
    assert_eq!(r.json, json!({"released": 1}));
    let answer = pending.await.expect("task").expect("an answer");
    assert_eq!(answer.json["status_code"], 0, "{}", answer.json);
    assert_eq!(sb.handle.held(), 0);
    assert_eq!(sb.inspect("posts").await[0]["vid"], vid.as_str());
}

#[tokio::test]
async fn held_create_is_done_on_release_even_when_the_client_left() {
    let sb = sb().await;
    let (vid, poster) = sb.ready().await;
    sb.handle
        .inject(Fault::new(FaultStep::Create, FaultAction::Hold).times(1));
    let gave_up = try_send(
        sb.create_req(&vid, &poster)
            .timeout(Duration::from_millis(100)),
    )
    .await;
    assert!(gave_up.is_err_and(|e| e.is_timeout()));
    sb.handle.wait_held(1).await;
    assert_eq!(sb.handle.release(), 1);
    let posts = sb.wait_posts(1).await;
    assert_eq!(posts.len(), 1, "the held work ran after release");
    assert_eq!(posts[0]["vid"], vid.as_str());
}

// ---------- counting and control ----------

#[tokio::test]
async fn after_and_times_count_requests_to_the_step() {
    let sb = sb().await;
    sb.add_faults(json!([
        {"step": "credentials", "action": {"kind": "status", "status": 503}, "times": 2, "after": 1},
        {"step": "upload_params", "action": "reset"},
    ]))
    .await;
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(send(sb.creds_req()).await.status.as_u16());
    }
    assert_eq!(statuses, [200, 503, 503, 200]);
    assert_eq!(sb.count("credentials").await, 4);

    let listing = sb.inspect("faults").await;
    assert_eq!(listing["faults"][0]["seen"], 4, "{listing}");
    assert_eq!(listing["faults"][0]["remaining"], 0);
    assert_eq!(listing["faults"][0]["action"]["kind"], "status");
    assert_eq!(listing["faults"][1]["remaining"], Value::Null);
    assert_eq!(listing["faults"][1]["seen"], 0);
}

#[tokio::test]
async fn first_due_rule_wins() {
    let sb = sb().await;
    sb.add_faults(json!([
        {"step": "challenge_sug", "action": {"kind": "body", "body": {"first": true}}, "times": 1},
        {"step": "challenge_sug", "action": {"kind": "body", "body": {"second": true}}, "times": 1},
    ]))
    .await;
    let sug = || {
        sb.http
            .get(
                sb.url("/aweme/v1/search/challengesug/?keyword=x&source=challenge_create&aid=2906"),
            )
            .header("Cookie", cookie_for("main"))
    };
    assert_eq!(send(sug()).await.json, json!({"first": true}));
    assert_eq!(send(sug()).await.json, json!({"second": true}));
    assert_eq!(send(sug()).await.json["status_code"], 0);
}

#[tokio::test]
async fn clear_removes_every_rule() {
    let sb = sb().await;
    sb.add_faults(json!({"step": "credentials", "action": "reset"}))
        .await;
    assert_no_answer(try_send(sb.creds_req()).await);
    assert_no_answer(try_send(sb.creds_req()).await);
    let r = send(sb.http.delete(sb.url("/__sandbox/faults"))).await;
    assert_eq!(r.json["faults"], json!([]));
    sb.creds().await;

    sb.handle
        .inject(Fault::new(FaultStep::Credentials, FaultAction::Reset));
    assert_no_answer(try_send(sb.creds_req()).await);
    sb.handle.clear_faults();
    sb.creds().await;
}

#[tokio::test]
async fn bad_rules_are_refused_with_the_reason() {
    let sb = sb().await;
    for (bad, why) in [
        (
            json!({"step": "create", "action": "reset", "tims": 1}),
            "tims",
        ),
        (json!({"step": "publish", "action": "reset"}), "publish"),
        (json!({"step": "create", "action": {"kind": "delay"}}), "ms"),
        (json!([{"step": "create"}]), "action"),
    ] {
        let r = sb.add_faults(bad.clone()).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}");
        let msg = r.json["error"].as_str().unwrap_or_default();
        assert!(msg.contains(why), "{bad}: {msg}");
    }
    assert_eq!(sb.inspect("faults").await["faults"], json!([]));
}

#[tokio::test]
async fn faults_from_options_apply_from_the_start() {
    let sb = start(SandboxOptions {
        faults: vec![
            Fault::new(
                FaultStep::Credentials,
                FaultAction::Body {
                    body: json!({"status_code": 8}),
                },
            )
            .times(1),
        ],
        ..SandboxOptions::default()
    })
    .await;
    assert_eq!(send(sb.creds_req()).await.json, json!({"status_code": 8}));
    sb.creds().await;
}

#[tokio::test]
async fn control_endpoints_are_never_faulted() {
    let sb = sb().await;
    // Rules only match protocol steps; inspecting works while every step is broken.
    for step in [
        "credentials",
        "upload_params",
        "upload",
        "commit",
        "create",
        "post_list",
        "challenge_sug",
    ] {
        sb.add_faults(json!({"step": step, "action": "reset"}))
            .await;
    }
    assert_eq!(sb.inspect("posts").await, json!([]));
    assert_eq!(
        sb.inspect("faults").await["faults"]
            .as_array()
            .map(Vec::len),
        Some(7)
    );
    assert_no_answer(try_send(sb.creds_req()).await);
}

/// Raw TCP: not one byte of an HTTP answer reaches the client, for `reset` (body not
/// read) and `drop_answer` (body read, work done).
#[tokio::test]
async fn lost_answers_send_no_bytes_at_all() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let sb = sb().await;
    sb.handle
        .inject(Fault::new(FaultStep::Credentials, FaultAction::Reset).times(1));
    sb.handle
        .inject(Fault::new(FaultStep::Credentials, FaultAction::DropAnswer).times(1));
    let cookie = cookie_for("main");
    for _ in 0..2 {
        let mut tcp = tokio::net::TcpStream::connect(sb.handle.addr())
            .await
            .expect("connect");
        let request = format!(
            "GET /web/api/media/upload/auth/ HTTP/1.1\r\nHost: x\r\nCookie: {cookie}\r\n\r\n"
        );
        tcp.write_all(request.as_bytes()).await.expect("write");
        let mut got = Vec::new();
        match tcp.read_to_end(&mut got).await {
            Ok(_) => assert!(got.is_empty(), "{}", String::from_utf8_lossy(&got)),
            Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e}"),
        }
    }
    assert_eq!(sb.count("credentials").await, 2);
}

#[tokio::test]
async fn shutdown_does_not_wait_for_held_requests() {
    let sb = sb().await;
    let (vid, poster) = sb.ready().await;
    sb.handle
        .inject(Fault::new(FaultStep::Create, FaultAction::Hold));
    let pending = tokio::spawn(try_send(sb.create_req(&vid, &poster)));
    sb.handle.wait_held(1).await;
    let Sb { handle, .. } = sb;
    tokio::time::timeout(Duration::from_secs(5), handle.shutdown())
        .await
        .expect("shutdown does not wait for the held request");
    assert_no_answer(pending.await.expect("task"));
}
