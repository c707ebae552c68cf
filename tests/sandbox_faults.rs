//! Sandbox fault injection, driven over real HTTP (reqwest against a sandbox on
//! 127.0.0.1:0): every action on some step, `times`/`after` counting, the control
//! endpoints, and faults given through `SandboxOptions`.

mod common;

use std::time::{Duration, Instant};

use common::fixtures::mp4_with_media;
use common::sandbox_client::*;
use dropcast::sandbox::{Fault, FaultAction, FaultStep, ParamsLayout, SandboxOptions, cookie_for};
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn start(options: SandboxOptions) -> Sb {
    Sb::start(SandboxOptions {
        layout: ParamsLayout::Top,
        ..options
    })
    .await
}

async fn sb() -> Sb {
    start(SandboxOptions::default()).await
}

/// The next step 5 is held until released.
fn hold_next_create(sb: &Sb) {
    sb.handle
        .inject(Fault::new(FaultStep::Create, FaultAction::Hold).times(1));
}

// ---------- one test per action ----------

#[tokio::test]
async fn status_with_retry_after_replaces_create_once() {
    let sb = sb().await;
    let (vid, poster) = sb.ready_video().await;
    let r = sb
        .add_faults(json!({"step": "create", "action": {"kind": "status", "status": 429, "retry_after": 3}, "times": 1}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);

    let limited = send(sb.create_req(&vid, &poster)).await;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(limited.retry_after(), Some("3"));
    assert_eq!(limited.json["status_code"], 7, "{}", limited.json);
    assert_eq!(sb.inspect("posts").await, json!([]), "no work was done");

    let ok = send(sb.create_req(&vid, &poster)).await;
    assert_eq!(ok.json["status_code"], 0, "{}", ok.json);
    assert_eq!(sb.count("create").await, 2, "the faulted call counts");
}

#[tokio::test]
async fn status_on_upload_drains_the_body_so_the_client_sees_it() {
    let sb = sb().await;
    let bytes = mp4_with_media(2 * 1024 * 1024);
    let (_, p) = sb.prepared(&bytes).await;
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
    sb.creds("main").await;
    assert_eq!(sb.count("credentials").await, 2);
}

#[tokio::test]
async fn reset_on_credentials_is_a_request_error_not_a_status() {
    let sb = sb().await;
    sb.handle
        .inject(Fault::new(FaultStep::Credentials, FaultAction::Reset).times(1));
    assert_no_answer(try_send(sb.creds_req()).await);
    sb.creds("main").await;
    assert_eq!(sb.count("credentials").await, 2);
}

#[tokio::test]
async fn reset_on_upload_cuts_it_off_before_the_body_is_stored() {
    let sb = sb().await;
    // Large enough that the client is still sending when the connection goes.
    let bytes = mp4_with_media(8 * 1024 * 1024);
    let (c, p) = sb.prepared(&bytes).await;
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
    let bytes = mp4_with_media(1024);
    let (c, p) = sb.prepared(&bytes).await;
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
    let (vid, poster) = sb.ready_video().await;
    sb.add_faults(json!({"step": "create", "action": "drop_answer", "times": 1}))
        .await;
    assert_no_answer(try_send(sb.create_req(&vid, &poster)).await);

    let posts = sb.inspect("posts").await;
    assert_eq!(posts.as_array().map(Vec::len), Some(1), "{posts}");
    assert_eq!(posts[0]["vid"], vid.as_str());
    // Reconciliation (6a) finds it; publishing again is refused.
    let list = sb.post_list().await;
    assert_eq!(list.json["aweme_list"][0]["video"]["vid"], vid.as_str());
    let again = send(sb.create_req(&vid, &poster)).await;
    assert_eq!(again.json["status_code"], 2);
    assert_eq!(again.json["status_msg"], "video already published");
    assert_eq!(sb.count("create").await, 2);
}

#[tokio::test]
async fn lag_on_post_list_hides_new_posts_until_they_are_old_enough() {
    let sb = sb().await;
    let (vid, poster) = sb.ready_video().await;
    sb.add_faults(json!({"step": "post_list", "action": {"kind": "lag", "ms": 60000}}))
        .await;
    let created = send(sb.create_req(&vid, &poster)).await;
    assert_eq!(created.json["status_code"], 0, "{}", created.json);
    let list = || sb.post_list();
    assert_eq!(list().await.json["aweme_list"], json!([]), "not listed yet");
    sb.advance(61).await;
    assert_eq!(
        list().await.json["aweme_list"][0]["video"]["vid"],
        vid.as_str()
    );
    assert_eq!(sb.inspect("posts").await.as_array().map(Vec::len), Some(1));
}

#[tokio::test]
async fn hold_keeps_create_open_until_released() {
    let sb = sb().await;
    let (vid, poster) = sb.ready_video().await;
    hold_next_create(&sb);
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
    let (vid, poster) = sb.ready_video().await;
    hold_next_create(&sb);
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
    sb.creds("main").await;

    sb.handle
        .inject(Fault::new(FaultStep::Credentials, FaultAction::Reset));
    assert_no_answer(try_send(sb.creds_req()).await);
    sb.handle.clear_faults();
    sb.creds("main").await;
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
    sb.creds("main").await;
}

#[tokio::test]
async fn control_endpoints_are_never_faulted() {
    // Rules only match protocol steps; inspecting works while every step is broken.
    let steps = [
        "credentials",
        "upload_params",
        "upload",
        "commit",
        "create",
        "post_list",
        "challenge_sug",
    ];
    let sb = sb().await;
    for step in steps {
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
    let (vid, poster) = sb.ready_video().await;
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
