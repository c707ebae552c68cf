//! The `douyin-web` client against canned answers of every shape docs/douyin-web.md describes,
//! served by a small axum server on 127.0.0.1 that records what it was sent.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use axum::http::Method;
use common::canned::{Reply, Server, hang, ok, raw, reply};
use serde_json::{Value, json};

use dropcast::domain::{Collection, EntityKind, PostDraft, TextEntity, Visibility};
use dropcast::platform::{
    Account, ClientSettings, Created, DouyinWeb, Expired, PublishError, RetryPolicy, Upload,
    UploadCredentials, UploadTarget,
};
use dropcast::progress::Progress;
use dropcast::secret::Secret;
use dropcast::video::VideoFile;

const COOKIE: &str = "sessionid=SESSION-SECRET; csrf_token=CSRF-SECRET";
const AK: &str = "0123456789abcdef0123456789abcdef";
const AUTH: &str = "HMAC-SHA1:1.0:4102444800:0123456789abcdef0123456789abcdef:AUTH-SIG";
const TOS_SIGN: &str = "TOS-SIGN-SECRET";
const TOKEN: &str = "UPLOAD-TOKEN-SECRET";
const SECRETS: [&str; 5] = ["SESSION-SECRET", "CSRF-SECRET", "AUTH-SIG", TOS_SIGN, TOKEN];

// ---- the client against the canned server ----------------------------------------------

impl Server {
    fn client_with(&self, timeout: Duration, attempts: u32) -> DouyinWeb {
        let base: reqwest::Url = format!("http://{}", self.addr).parse().unwrap();
        DouyinWeb::new(ClientSettings {
            creator_url: base.clone(),
            vod_url: base,
            upload_scheme: "http".into(),
            timeout,
            retry: RetryPolicy {
                attempts,
                initial: Duration::from_millis(1),
                max: Duration::from_millis(20),
            },
            max_rate: None,
        })
        .unwrap()
    }

    fn client(&self) -> DouyinWeb {
        self.client_with(Duration::from_secs(5), 3)
    }
}

fn account() -> Account {
    Account::new("main", Secret::new(COOKIE), None).unwrap()
}

/// `err` asks for fresh credentials of this kind.
macro_rules! assert_expired {
    ($err:expr, $what:path) => {
        assert!(
            matches!($err, PublishError::AuthExpired { what: $what, .. }),
            "{:?}",
            $err
        )
    };
}

/// Step 5 of the usual upload and draft.
async fn post_via(client: &DouyinWeb) -> Result<Created, PublishError> {
    client.create_post(&account(), &upload(), &draft()).await
}

impl Server {
    /// A server that answers one request with `body`.
    async fn answer(body: Value) -> Server {
        Server::start(vec![ok(body)]).await
    }

    async fn post(&self) -> Result<Created, PublishError> {
        post_via(&self.client()).await
    }
}

/// `err` is the platform's refusal, naming `words`.
#[track_caller]
fn assert_rejected(err: &PublishError, words: &str) {
    assert_eq!(err.class(), "rejected");
    assert!(err.to_string().contains(words), "{err}");
}

/// The pairs of a query written out, to compare with
/// [`Seen::query`](common::canned::Seen::query).
fn pairs(query: &str) -> Vec<(String, String)> {
    serde_urlencoded::from_str(query).unwrap()
}

fn assert_no_secret(err: &PublishError) {
    let shown = format!("{err} {err:?}");
    for s in SECRETS {
        assert!(!shown.contains(s), "secret {s} in {shown}");
    }
}

/// Step 5's answer when it posted, with this id.
fn posted(aweme_id: &str) -> Reply {
    ok(json!({"status_code": 0, "aweme": {"aweme_id": aweme_id}}))
}

fn auth_ok() -> Reply {
    ok(json!({"status_code": 0, "ak": AK, "auth": AUTH}))
}

fn node(addr: SocketAddr, vid: &str) -> Value {
    json!({
        "vid": vid, "oid": "tos-cn-v-0000/c747f5e1", "tos_host": addr.to_string(),
        "tos_sign": TOS_SIGN, "token": TOKEN,
        "extra_param": "vidc=lf&vts=1&host=tos&edge_node=lf&upload_mode=serial&file_size=917394.000000",
        "upload_mode": "serial"
    })
}

fn params_top(addr: SocketAddr) -> Reply {
    let mut data = node(addr, "v0200top");
    data["bucket"] = json!("tos-cn-v-0000");
    data["edge_nodes"] = json!([node(addr, "v0200edge")]);
    ok(json!({"code": 2000, "message": "ok", "data": data}))
}

/// Steps 1 and 2 of a 917394-byte video against `server`, answered as `params_top`.
async fn target_top(server: &Server) -> (DouyinWeb, UploadCredentials, UploadTarget) {
    server.push(auth_ok());
    server.push(params_top(server.addr));
    let client = server.client();
    let creds = client.credentials(&account()).await.unwrap();
    let target = client.upload_target(&creds, 917_394).await.unwrap();
    (client, creds, target)
}

/// A server, and steps 1 and 2 against it, their requests forgotten.
async fn creds_and_target() -> (Server, DouyinWeb, UploadCredentials, UploadTarget) {
    let server = Server::start(vec![]).await;
    let (client, creds, target) = target_top(&server).await;
    server.forget();
    (server, client, creds, target)
}

/// What step 3a of a file did.
struct Sent {
    server: Server,
    result: Result<(), PublishError>,
    data: Vec<u8>,
    crc: u32,
    progress: Progress,
}

/// Step 3a of a `len`-byte file after steps 1 and 2, the server answering `answers`.
async fn upload_answered(answers: Vec<Reply>, len: usize) -> Sent {
    let (server, client, _creds, target) = creds_and_target().await;
    let (file, data, crc) = video_file(len);
    for answer in answers {
        server.push(answer);
    }
    let progress = Progress::new();
    let result = send_file(&client, &target, &file, &data, crc, &progress).await;
    Sent {
        server,
        result,
        data,
        crc,
        progress,
    }
}

fn upload() -> Upload {
    Upload {
        vid: "v0200top".into(),
        oid: "tos-cn-v-0000/c747f5e1".into(),
        poster_oid: Some("tos-cn-p-0015/poster1".into()),
        width: 1080,
        height: 1920,
        duration_secs: 12.5,
    }
}

fn draft() -> PostDraft {
    // "#音乐 遇见就是一种缘分 @小明 😀" — UTF-16 offsets computed upstream.
    PostDraft {
        text: "#音乐 遇见就是一种缘分 @小明 😀".into(),
        plain_text: "遇见就是一种缘分 😀".into(),
        entities: vec![
            TextEntity {
                start: 0,
                end: 3,
                kind: EntityKind::Hashtag {
                    name: "音乐".into(),
                },
            },
            TextEntity {
                start: 13,
                end: 16,
                kind: EntityKind::Mention {
                    name: "小明".into(),
                    user_id: "84990209480".into(),
                },
            },
        ],
        challenge_ids: vec!["1550712576368642".into()],
        mention_ids: vec!["84990209480".into()],
        visibility: Visibility::Private,
        allow_download: false,
        cover_at: Duration::from_millis(1500),
        collection: Some(Collection {
            id: "7012345678901234567".into(),
            order: 3,
        }),
        publish_at: Some(1_796_000_000),
        title: None,
        cover_image: None,
        ai_generated: false,
        declaration: None,
        tiktok: Default::default(),
    }
}

// ---- step 1 -----------------------------------------------------------------------------

#[tokio::test]
async fn step1_ok_sends_the_cookie_and_redacts_credentials() {
    let server = Server::start(vec![auth_ok(), params_top("127.0.0.1:1".parse().unwrap())]).await;
    let client = server.client();
    let creds = client.credentials(&account()).await.unwrap();
    let shown = format!("{creds:?}");
    assert!(
        !shown.contains("AUTH-SIG") && !shown.contains(AK),
        "{shown}"
    );
    assert_eq!(
        creds
            .expires_at()
            .unwrap()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
        4_102_444_800
    );
    // Step 2 carries what step 1 gave.
    client.upload_target(&creds, 10).await.unwrap();
    let seen = server.seen();
    assert_eq!(seen[0].method, Method::GET);
    assert_eq!(seen[0].uri.path(), "/web/api/media/upload/auth/");
    assert_eq!(seen[0].header("cookie"), Some(COOKIE));
    assert_eq!(seen[1].header("authorization"), Some(AUTH));
    assert_eq!(seen[1].header("x-tt-access"), Some(AK));
}

#[tokio::test]
async fn step1_status_8_is_an_expired_cookie() {
    let server = Server::answer(json!({"status_code": 8, "status_msg": "user not login"})).await;
    let err = server.client().credentials(&account()).await.unwrap_err();
    assert_expired!(err, Expired::Cookie);
    assert_eq!(err.class(), "auth_expired");
    assert_no_secret(&err);
    assert_eq!(server.seen().len(), 1, "an expired cookie is not retried");
}

// Regression (issue 9, smaller): answers were read whole, however large.
#[tokio::test]
async fn an_answer_over_the_cap_is_refused_naming_the_step() {
    let huge = "x".repeat(2 << 20);
    let server = Server::start(vec![
        ok(json!({"status_code": 0, "ak": AK, "auth": AUTH, "pad": huge})),
        ok(json!({"status_code": 0, "aweme": {"aweme_id": "1"}, "pad": huge})),
    ])
    .await;
    let client = server.client();
    let err = client.credentials(&account()).await.unwrap_err();
    assert_rejected(&err, "credentials");
    assert!(
        err.to_string().contains("larger than 1048576 bytes"),
        "{err}"
    );
    // At step 5 the post may exist all the same: the outcome is unknown, not refused.
    let err = post_via(&client).await.unwrap_err();
    assert_eq!(err.class(), "unknown", "{err}");
    assert!(err.to_string().contains("larger than"), "{err}");
}

#[tokio::test]
async fn step1_other_code_is_rejected_with_the_platforms_message() {
    let server = Server::answer(json!({"status_code": 5, "status_msg": "account banned"})).await;
    let err = server.client().credentials(&account()).await.unwrap_err();
    assert_rejected(&err, "account banned");
    assert_eq!(server.seen().len(), 1);
}

// ---- step 2 -----------------------------------------------------------------------------

#[tokio::test]
async fn step2_top_level_layout() {
    let server = Server::start(vec![]).await;
    let (_, _, target) = target_top(&server).await;
    assert_eq!(target.vid, "v0200top");
    assert_eq!(target.oid, "tos-cn-v-0000/c747f5e1");
    let shown = format!("{target:?}");
    assert!(
        !shown.contains(TOS_SIGN) && !shown.contains(TOKEN),
        "{shown}"
    );
    let seen = &server.seen()[1];
    assert_eq!(seen.uri.path(), "/video/openapi/v1/");
    assert_eq!(
        seen.query(),
        pairs("action=GetVideoUploadParams&use_edge_node=1&file_size=917394")
    );
}

#[tokio::test]
async fn step2_edge_nodes_only_layout() {
    let server = Server::start(vec![]).await;
    server.push(auth_ok());
    server.push(ok(json!({"code": 2000, "message": "ok", "data": {
        "bucket": "tos-cn-v-0000", "edge_nodes": [node(server.addr, "v0200edge")]}})));
    let client = server.client();
    let creds = client.credentials(&account()).await.unwrap();
    let target = client.upload_target(&creds, 5).await.unwrap();
    assert_eq!(target.vid, "v0200edge");
    assert_eq!(target.oid, "tos-cn-v-0000/c747f5e1");
}

#[tokio::test]
async fn step2_code_4001_means_fresh_upload_credentials() {
    let server = Server::start(vec![
        auth_ok(),
        ok(json!({"code": 4001, "message": "auth expired"})),
    ])
    .await;
    let client = server.client();
    let creds = client.credentials(&account()).await.unwrap();
    let err = client.upload_target(&creds, 5).await.unwrap_err();
    assert_expired!(err, Expired::UploadCredentials);
    assert_no_secret(&err);
}

#[tokio::test]
async fn step2_missing_fields_are_rejected_naming_the_field() {
    let server = Server::start(vec![]).await;
    let mut partial = node(server.addr, "v1");
    partial.as_object_mut().unwrap().remove("tos_sign");
    server.push(auth_ok());
    server.push(ok(
        json!({"code": 2000, "message": "ok", "data": {"edge_nodes": [partial]}}),
    ));
    let client = server.client();
    let creds = client.credentials(&account()).await.unwrap();
    let err = client.upload_target(&creds, 5).await.unwrap_err();
    assert_rejected(&err, "tos_sign");
}

// ---- step 3a ----------------------------------------------------------------------------

/// The post of a step 5 that posted.
fn post_of(created: &Created) -> &dropcast::domain::Post {
    match created {
        Created::Posted(post) => post,
        other => panic!("not posted: {other:?}"),
    }
}

/// The file opened as the agent opens a video.
fn open(path: &std::path::Path) -> VideoFile {
    VideoFile::open_path(path).unwrap()
}

/// Step 3a of `file`, which holds `data`, said to have this CRC.
async fn send_file(
    client: &DouyinWeb,
    target: &UploadTarget,
    file: &tempfile::NamedTempFile,
    data: &[u8],
    crc: u32,
    progress: &Progress,
) -> Result<(), PublishError> {
    let len = data.len() as u64;
    client
        .upload_file(target, &open(file.path()), len, crc, progress)
        .await
}

/// A TOS refusal.
fn tos_error(status: u16, code: u16, message: &str) -> Reply {
    reply(
        status,
        json!({"success": 1, "error": {"code": code, "message": message}}),
    )
}

fn video_file(len: usize) -> (tempfile::NamedTempFile, Vec<u8>, u32) {
    let data: Vec<u8> = (0..len).map(|i| (i * 7 + i / 251) as u8).collect();
    let mut file = tempfile::NamedTempFile::new().unwrap();
    std::io::Write::write_all(&mut file, &data).unwrap();
    let crc = crc32fast::hash(&data);
    (file, data, crc)
}

#[tokio::test]
async fn step3a_streams_exact_bytes_with_length_crc_and_slashed_object_url() {
    let answers = vec![ok(json!({"success": 0}))];
    let sent = upload_answered(answers, 300_000).await;
    sent.result.unwrap();
    let (server, data, crc, progress) = (sent.server, sent.data, sent.crc, sent.progress);
    assert_eq!((progress.done(), progress.total()), (300_000, 300_000));
    let seen = &server.seen()[0];
    assert_eq!(seen.method, Method::POST);
    assert_eq!(seen.uri.path(), "/tos-cn-v-0000/c747f5e1", "the `/` stays");
    assert_eq!(seen.header("content-length"), Some("300000"));
    assert_eq!(seen.header("transfer-encoding"), None, "never chunked");
    assert_eq!(
        seen.header("content-crc32"),
        Some(format!("{crc:08x}").as_str())
    );
    assert_eq!(seen.header("authorization"), Some(TOS_SIGN));
    assert_eq!(
        seen.header("content-type"),
        Some("application/octet-stream")
    );
    assert_eq!(seen.body.as_ref(), data.as_slice());
}

#[tokio::test]
async fn step3a_5xx_then_success_is_retried_with_the_whole_file_again() {
    let answers = vec![tos_error(503, 1, "busy"), ok(json!({"success": 0}))];
    let sent = upload_answered(answers, 10_000).await;
    sent.result.unwrap();
    let (data, progress) = (sent.data, sent.progress);
    // The failed try's bytes were taken back: the bar ends at the size, not twice it.
    assert_eq!((progress.done(), progress.total()), (10_000, 10_000));
    let seen = sent.server.seen();
    assert_eq!(seen.len(), 2);
    for s in &seen {
        assert_eq!(s.body.as_ref(), data.as_slice());
        assert_eq!(s.header("content-length"), Some("10000"));
    }
}

#[tokio::test]
async fn step3a_401_means_fresh_upload_credentials() {
    let sent = upload_answered(vec![tos_error(401, 401, "sign expired")], 100).await;
    let (server, err) = (sent.server, sent.result.unwrap_err());
    assert_expired!(err, Expired::UploadCredentials);
    assert_no_secret(&err);
    assert_eq!(server.seen().len(), 1);
}

#[tokio::test]
async fn step3a_crc_mismatch_400_is_rejected() {
    let sent = upload_answered(vec![tos_error(400, 4, "crc32 mismatch")], 100).await;
    let (server, err, crc) = (sent.server, sent.result.unwrap_err(), sent.crc);
    assert_rejected(&err, "crc32 mismatch");
    assert_eq!(
        server.seen()[0].header("content-crc32"),
        Some(format!("{crc:08x}").as_str())
    );
}

// Regression (issue 9 item 10): bytes that were not the ones hashed went out whole and the
// platform's CRC refusal failed the job.
#[tokio::test]
async fn step3a_bytes_other_than_the_hashed_ones_are_a_change_and_never_arrive_whole() {
    let (server, client, _creds, target) = creds_and_target().await;
    let (file, data, _) = video_file(100_000);
    server.push(ok(json!({"success": 0})));
    let err = send_file(
        &client,
        &target,
        &file,
        &data,
        0xdead_beef,
        &Progress::new(),
    )
    .await
    .unwrap_err();
    assert_eq!(err.class(), "changed", "{err}");
    assert!(
        server.seen().iter().all(|s| s.body.len() < data.len()),
        "the whole body arrived"
    );
}

#[tokio::test]
async fn step3a_file_of_another_size_is_not_sent() {
    let (server, client, _creds, target) = creds_and_target().await;
    let (file, _, crc) = video_file(100);
    let err = client
        .upload_file(&target, &open(file.path()), 101, crc, &Progress::new())
        .await
        .unwrap_err();
    assert_eq!(err.class(), "changed");
    assert!(server.seen().is_empty());
}

// ---- step 4 -----------------------------------------------------------------------------

#[tokio::test]
async fn step4_ok_appends_extra_param_verbatim_and_describes_the_video() {
    let (server, client, creds, target) = creds_and_target().await;
    server.push(ok(json!({"code": 2000, "message": "ok", "data": {
        "video": {"vid": "v0200top", "oid": "tos-cn-v-0000/c747f5e1", "width": 1080, "height": 1920, "duration": 12.5},
        "poster": {"oid": "tos-cn-p-0015/poster1"}}})));
    let up = client.commit(&creds, &target).await.unwrap();
    assert_eq!(up, upload());
    let seen = &server.seen()[0];
    assert_eq!(seen.method, Method::POST);
    assert_eq!(seen.uri.path(), "/video/openapi/v1/");
    assert_eq!(
        seen.uri.query(),
        Some(
            "action=UpdateVideoUploadInfos&vidc=lf&vts=1&host=tos&edge_node=lf&upload_mode=serial&file_size=917394.000000"
        )
    );
    assert_eq!(seen.header("authorization"), Some(AUTH));
    assert_eq!(seen.header("x-tt-access"), Some(AK));
    assert_eq!(seen.header("content-type"), Some("application/json"));
    let body: Value = serde_json::from_slice(&seen.body).unwrap();
    assert_eq!(
        body,
        json!({"vid": "v0200top", "oid": "tos-cn-v-0000/c747f5e1", "token": TOKEN,
               "poster_ss": 0, "is_exact_poster": true, "user_reference": ""})
    );
}

#[tokio::test]
async fn step4_without_poster_or_size_still_commits() {
    let (server, client, creds, target) = creds_and_target().await;
    server.push(ok(json!({"code": 2000, "data": {
        "video": {"vid": "v0200top", "width": 0, "height": 0, "duration": 3.25}}})));
    let up = client.commit(&creds, &target).await.unwrap();
    assert_eq!(up.poster_oid, None);
    assert_eq!((up.width, up.height), (0, 0));
    assert_eq!(up.duration_secs, 3.25);
}

#[tokio::test]
async fn step4_code_4004_is_rejected() {
    let (server, client, creds, target) = creds_and_target().await;
    server.push(ok(json!({"code": 4004, "message": "object incomplete"})));
    let err = client.commit(&creds, &target).await.unwrap_err();
    assert_rejected(&err, "object incomplete");
    assert_no_secret(&err);
    assert_eq!(server.seen().len(), 1);
}

#[tokio::test]
async fn step4_401_means_fresh_upload_credentials() {
    let (server, client, creds, target) = creds_and_target().await;
    server.push(raw(401, ""));
    let err = client.commit(&creds, &target).await.unwrap_err();
    assert_expired!(err, Expired::UploadCredentials);
}

// ---- step 5 -----------------------------------------------------------------------------

#[tokio::test]
async fn step5_sends_every_form_field_exactly() {
    let server = Server::answer(
        json!({"status_code": 0, "status_msg": "", "aweme": {"aweme_id": "7300000000000000001"}}),
    )
    .await;
    let post = server.post().await.unwrap();
    assert_eq!(post_of(&post).id, "7300000000000000001");
    let seen = &server.seen()[0];
    assert_eq!(seen.method, Method::POST);
    assert_eq!(seen.uri.path(), "/web/api/media/aweme/create/");
    assert_eq!(seen.header("cookie"), Some(COOKIE));
    assert_eq!(seen.header("csrf_token"), Some("CSRF-SECRET"));
    assert_eq!(
        seen.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    let form: Vec<(String, String)> = serde_urlencoded::from_bytes(&seen.body).unwrap();
    let expected = [
        ("video_id", "v0200top"),
        ("poster", "tos-cn-p-0015/poster1"),
        ("poster_delay", "1500"),
        ("text", "#音乐 遇见就是一种缘分 @小明 😀"),
        (
            "text_extra",
            r#"[{"start":0,"end":3,"user_id":"","type":1,"hashtag_name":"音乐"},{"start":13,"end":16,"user_id":"84990209480","type":0,"hashtag_name":""}]"#,
        ),
        ("challenges", r#"["1550712576368642"]"#),
        ("mentions", r#"["84990209480"]"#),
        ("visibility_type", "1"),
        ("third_text", "遇见就是一种缘分 😀"),
        ("download", "0"),
        ("upload_source", "1"),
        ("mix_id", "7012345678901234567"),
        ("mix_order", "3"),
        ("is_preview", "0"),
        ("timing", "1796000000"),
    ];
    let expected: Vec<(String, String)> = expected
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    assert_eq!(form, expected);
}

#[tokio::test]
async fn step5_accepts_item_id_and_falls_back_to_the_video_oid_as_poster() {
    let server = Server::answer(json!({"status_code": 0, "item_id": "7300000000000000002"})).await;
    let mut up = upload();
    up.poster_oid = None;
    let mut d = draft();
    d.collection = None;
    d.publish_at = None;
    let post = server
        .client()
        .create_post(&account(), &up, &d)
        .await
        .unwrap();
    assert_eq!(post_of(&post).id, "7300000000000000002");
    assert_eq!(
        post_of(&post).url,
        "https://www.douyin.com/video/7300000000000000002"
    );
    let form: Vec<(String, String)> = serde_urlencoded::from_bytes(&server.seen()[0].body).unwrap();
    let get = |k: &str| form.iter().find(|(n, _)| n == k).unwrap().1.clone();
    assert_eq!(get("poster"), "tos-cn-v-0000/c747f5e1");
    assert_eq!(get("mix_id"), "");
    assert_eq!(get("mix_order"), "");
    assert_eq!(get("timing"), "0");
}

#[tokio::test]
async fn step5_status_2_is_rejected_once() {
    let server = Server::answer(
        json!({"status_code": 2, "status_msg": "text_extra: span 3..5 is not a hashtag"}),
    )
    .await;
    let err = server.post().await.unwrap_err();
    assert_rejected(&err, "not a hashtag");
    assert_no_secret(&err);
    assert_eq!(server.seen().len(), 1);
}

// Regression (issue 9 item 5): the pipeline matched the platform's wording itself.
#[tokio::test]
async fn step5_already_published_is_a_domain_outcome_not_a_refusal() {
    let server =
        Server::answer(json!({"status_code": 2, "status_msg": "video already published"})).await;
    let created = server.post().await.unwrap();
    assert_eq!(created, Created::AlreadyPublished);
    assert_eq!(server.seen().len(), 1);
}

#[tokio::test]
async fn step5_status_8_is_an_expired_cookie() {
    let server = Server::answer(json!({"status_code": 8, "status_msg": ""})).await;
    let err = server.post().await.unwrap_err();
    assert_expired!(err, Expired::Cookie);
    assert_eq!(server.seen().len(), 1);
}

#[tokio::test]
async fn step5_status_7_is_retried_then_succeeds() {
    let server = Server::start(vec![
        ok(json!({"status_code": 7, "status_msg": "too often"})),
        posted("1"),
    ])
    .await;
    let post = server.post().await.unwrap();
    assert_eq!(post_of(&post).id, "1");
    assert_eq!(server.seen().len(), 2);
}

#[tokio::test]
async fn step5_rate_limits_do_not_use_up_attempts() {
    let server = Server::start(vec![
        ok(json!({"status_code": 7})),
        ok(json!({"status_code": 7})),
        ok(json!({"status_code": 7})),
        posted("9"),
    ])
    .await;
    // One attempt allowed: the three rate limits are waited out, not counted.
    let post = post_via(&server.client_with(Duration::from_secs(5), 1))
        .await
        .unwrap();
    assert_eq!(post_of(&post).id, "9");
    assert_eq!(server.seen().len(), 4);
}

#[tokio::test]
async fn step5_429_honours_retry_after() {
    let mut limited = reply(429, json!({"status_code": 7}));
    limited.headers.push(("retry-after", "1".into()));
    let server = Server::start(vec![limited, posted("5")]).await;
    let started = std::time::Instant::now();
    let post = post_via(&server.client_with(Duration::from_secs(5), 1))
        .await
        .unwrap();
    assert_eq!(post_of(&post).id, "5");
    assert_eq!(server.seen().len(), 2);
    // Waited the second the platform asked for (not the policy's 20 ms backoff).
    let waited = started.elapsed();
    assert!(waited >= Duration::from_secs(1), "{waited:?}");
    assert!(waited < Duration::from_secs(5), "{waited:?}");
}

#[tokio::test]
async fn step5_5xx_then_success_is_retried() {
    let server = Server::start(vec![raw(502, "bad gateway"), posted("6")]).await;
    let post = server.post().await.unwrap();
    assert_eq!(post_of(&post).id, "6");
    assert_eq!(server.seen().len(), 2);
}

#[tokio::test]
async fn step5_sent_without_an_answer_is_unknown_and_never_resent() {
    let server = Server::start(vec![hang(), posted("twice")]).await;
    let err = post_via(&server.client_with(Duration::from_millis(300), 5))
        .await
        .unwrap_err();
    assert!(matches!(err, PublishError::Unknown { .. }), "{err:?}");
    assert_no_secret(&err);
    assert_eq!(server.seen().len(), 1, "step 5 must not be resent");
}

#[tokio::test]
async fn step5_answer_without_an_id_is_unknown() {
    let server = Server::answer(json!({"status_code": 0})).await;
    let err = server.post().await.unwrap_err();
    assert_eq!(err.class(), "unknown");
    assert_eq!(server.seen().len(), 1);
}

#[tokio::test]
async fn step5_connection_refused_is_transient() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let base: reqwest::Url = format!("http://{addr}").parse().unwrap();
    let client = DouyinWeb::new(ClientSettings {
        creator_url: base.clone(),
        vod_url: base,
        upload_scheme: "http".into(),
        timeout: Duration::from_secs(5),
        retry: RetryPolicy {
            attempts: 2,
            initial: Duration::from_millis(1),
            max: Duration::from_millis(5),
        },
        max_rate: None,
    })
    .unwrap();
    let err = post_via(&client).await.unwrap_err();
    assert_eq!(err.class(), "transient", "{err:?}");
}

// ---- 6a and 6b --------------------------------------------------------------------------

fn listed(aweme_id: &str, vid: &str) -> Value {
    json!({"aweme_id": aweme_id, "desc": "x", "create_time": 1_700_000_000, "video": {"vid": vid}})
}

#[tokio::test]
async fn find_post_follows_the_cursor_until_found() {
    let server = Server::start(vec![
        ok(
            json!({"status_code": 0, "aweme_list": [listed("1", "va"), listed("2", "vb")],
                  "has_more": true, "max_cursor": 1_699_999_000}),
        ),
        ok(
            json!({"status_code": 0, "aweme_list": [listed("3", "vc"), listed("4", "v0200top")],
                  "has_more": true, "max_cursor": 1_699_000_000}),
        ),
    ])
    .await;
    let post = server
        .client()
        .find_post(&account(), "v0200top")
        .await
        .unwrap();
    assert_eq!(post.unwrap().id, "4");
    let seen = server.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].uri.path(), "/web/api/media/aweme/post/");
    assert_eq!(seen[0].query_value("count").as_deref(), Some("50"));
    assert_eq!(seen[0].query_value("max_cursor").as_deref(), Some("0"));
    assert_eq!(
        seen[1].query_value("max_cursor").as_deref(),
        Some("1699999000")
    );
    assert_eq!(seen[1].header("cookie"), Some(COOKIE));
}

#[tokio::test]
async fn find_post_stops_at_the_last_page() {
    let server = Server::start(vec![
        ok(json!({"status_code": 0, "aweme_list": [listed("1", "va")], "has_more": true, "max_cursor": 5})),
        ok(json!({"status_code": 0, "aweme_list": [listed("2", "vb")], "has_more": false, "max_cursor": 0})),
    ])
    .await;
    let post = server.client().find_post(&account(), "vz").await.unwrap();
    assert_eq!(post, None);
    assert_eq!(server.seen().len(), 2);
}

#[tokio::test]
async fn find_post_with_expired_cookie_says_so() {
    let server = Server::answer(json!({"status_code": 8})).await;
    let err = server
        .client()
        .find_post(&account(), "vz")
        .await
        .unwrap_err();
    assert_eq!(err.class(), "auth_expired");
}

#[tokio::test]
async fn challenge_id_counts_only_an_exact_name() {
    let server = Server::start(vec![
        ok(json!({"status_code": 0, "sug_list": [
            {"cha_name": "音乐人", "cid": "111", "view_count": 9},
            {"cha_name": "音乐", "cid": "1550712576368642", "view_count": 123}]})),
        ok(json!({"status_code": 0, "sug_list": [
            {"cha_name": "音乐人", "cid": "111", "view_count": 9}]})),
        ok(json!({"status_code": 0, "sug_list": null})),
    ])
    .await;
    let client = server.client();
    assert_eq!(
        client.challenge_id(&account(), "音乐").await.unwrap(),
        Some("1550712576368642".to_owned())
    );
    assert_eq!(client.challenge_id(&account(), "音乐").await.unwrap(), None);
    assert_eq!(client.challenge_id(&account(), "音乐").await.unwrap(), None);
    let seen = &server.seen()[0];
    assert_eq!(seen.uri.path(), "/aweme/v1/search/challengesug/");
    assert_eq!(
        seen.query(),
        pairs("keyword=音乐&source=challenge_create&aid=2906")
    );
}
