//! Multipart uploads (docs/douyin-web.md §3b) and the benchmark sink, driven over real HTTP (reqwest
//! against a sandbox on 127.0.0.1:0): a correct client written here, then every rule
//! broken one at a time, faults on parts, and `/__sandbox/sink`.

mod common;

use std::path::{Path, PathBuf};

use common::fixtures::{crc_hex, mp4_of_size, noise, sha256_hex};
use common::sandbox_client::*;
use dropcast::sandbox::{Fault, FaultAction, FaultStep, ParamsLayout, SandboxOptions};
use reqwest::{Method, StatusCode};
use serde_json::json;

const MIB: usize = 1024 * 1024;
const PART: usize = 5 * MIB;

async fn start(faults: Vec<Fault>) -> Sb {
    Sb::with_storage(SandboxOptions {
        layout: ParamsLayout::Top,
        faults,
        ..SandboxOptions::default()
    })
    .await
}

fn split(bytes: &[u8]) -> Vec<&[u8]> {
    bytes.chunks(PART).collect()
}

/// Files left under `dir` (recursively), as paths relative to it.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read_dir").flatten() {
            let path = e.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path.strip_prefix(dir).expect("under").to_path_buf());
            }
        }
    }
    out
}

/// A sandbox and a `size`-byte video whose multipart upload is started.
async fn begun(size: usize) -> (Sb, Vec<u8>, Creds, Params, String) {
    let sb = start(Vec::new()).await;
    let bytes = mp4_of_size(size);
    let (creds, p, id) = sb.begin(&bytes).await;
    (sb, bytes, creds, p, id)
}

/// 5 MiB, 5 MiB, 1.3 MiB.
const ODD_SIZE: usize = 2 * PART + 1_363_149;

// ---------- the journey ----------

#[tokio::test]
async fn three_parts_with_an_odd_last_part_are_assembled_committed_and_posted() {
    let sb = start(Vec::new()).await;
    let bytes = mp4_of_size(ODD_SIZE);
    let parts = split(&bytes);
    assert_eq!(parts.len(), 3);
    let (creds, p, id) = sb.begin(&bytes).await;
    sb.parts_ok(&p, &id, &parts).await;
    // Nothing to commit before completion.
    assert_eq!(sb.commit(&creds, &p).await.json["code"], json!(4004));
    sb.complete(&p, &id, &part_list(&parts)).await.ok();

    let stored = std::fs::read(sb.object_path(&p)).expect("object on disk");
    assert!(stored == bytes, "object is byte-identical to the file");
    let files = files_under(sb.storage());
    assert_eq!(
        files,
        vec![PathBuf::from(&p.oid)],
        "part files are cleaned up"
    );

    let c = sb.commit(&creds, &p).await;
    assert_eq!(c.json["code"], json!(2000), "{}", c.json);
    assert_eq!(c.json["data"]["video"]["width"], json!(720));
    assert_eq!(c.json["data"]["video"]["height"], json!(1280));
    let poster = c.json["data"]["poster"]["oid"].as_str().expect("poster");
    let r = sb.create("main", &plain_form(&p.vid, poster)).await;
    assert_eq!(r.json["status_code"], json!(0), "{}", r.json);

    let posts = sb.inspect("posts").await;
    assert_eq!(posts[0]["sha256"], json!(sha256_hex(&bytes)));
    assert_eq!(posts[0]["size"], json!(bytes.len()));
    let counts = sb.inspect("requests").await;
    assert_eq!(counts["upload_init"], json!(1), "{counts}");
    assert_eq!(counts["upload_part"], json!(3), "{counts}");
    assert_eq!(counts["upload_complete"], json!(1), "{counts}");
    assert_eq!(
        counts["upload"],
        json!(0),
        "whole-file count untouched: {counts}"
    );
    let uploads = sb.inspect("uploads").await;
    assert_eq!(
        uploads[&id],
        json!({"vid": p.vid, "oid": p.oid, "state": "completed",
               "parts": {"1": 1, "2": 1, "3": 1}})
    );
    sb.handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parts_sent_concurrently_and_out_of_order_assemble_in_order() {
    let (sb, bytes, creds, p, id) = begun(ODD_SIZE).await;
    let parts = split(&bytes);
    let sends = [3u32, 1, 2].map(|n| send(sb.part_request(&p, &id, n, parts[n as usize - 1])));
    for r in futures_util::future::join_all(sends).await {
        r.ok();
    }
    sb.complete(&p, &id, &part_list(&parts)).await.ok();
    assert!(std::fs::read(sb.object_path(&p)).expect("object") == bytes);
    assert_eq!(sb.commit(&creds, &p).await.json["code"], json!(2000));
    sb.handle.shutdown().await;
}

#[tokio::test]
async fn a_resent_part_replaces_the_earlier_copy() {
    let (sb, bytes, _, p, id) = begun(PART + 1000).await;
    let parts = split(&bytes);
    let wrong = noise(1000, 99);
    sb.part_ok(&p, &id, 1, parts[0]).await;
    sb.part_ok(&p, &id, 2, &wrong).await;
    sb.part_ok(&p, &id, 2, parts[1]).await;
    // The list must name the copy that is kept.
    let stale = part_list(&[parts[0], &wrong]);
    sb.complete(&p, &id, &stale)
        .await
        .refused(StatusCode::BAD_REQUEST, "part 2: CRC");
    sb.complete(&p, &id, &part_list(&parts)).await.ok();
    assert!(std::fs::read(sb.object_path(&p)).expect("object") == bytes);
    let uploads = sb.inspect("uploads").await;
    assert_eq!(uploads[&id]["parts"], json!({"1": 1, "2": 2}));
    sb.handle.shutdown().await;
}

// ---------- completion refusals ----------

#[tokio::test]
async fn completion_refuses_every_bad_list_and_then_accepts_the_right_one() {
    let (sb, bytes, _, p, id) = begun(2 * PART + 100).await;
    let parts = split(&bytes);
    sb.parts_ok(&p, &id, &parts).await;
    let [c1, c2, c3] = [0, 1, 2].map(|i| crc_hex(parts[i]));
    let bad = |list: String, words: &'static str| {
        let sb = &sb;
        let (p, id) = (&p, &id);
        async move {
            sb.complete(p, id, &list)
                .await
                .refused(StatusCode::BAD_REQUEST, words);
        }
    };
    bad(format!("1:{c1},3:{c3}"), "gap").await;
    bad(format!("2:{c2},1:{c1},3:{c3}"), "out of order").await;
    bad(
        format!("1:{c1},2:{c2},3:{c3},4:{c3}"),
        "part 4 was not received",
    )
    .await;
    bad(format!("1:{c1},2:00000000,3:{c3}"), "part 2: CRC 00000000").await;
    bad(format!("1:{c1},2:{c2}"), "add up to").await;
    bad(format!("1:{c1},2:{c2},3:{c3},"), "part list").await;
    bad(String::new(), "empty").await;

    // Part 1 one byte longer: the parts no longer have one size.
    let long = [parts[0], &[0u8][..]].concat();
    sb.part_ok(&p, &id, 1, &long).await;
    let cl = crc_hex(&long);
    bad(format!("1:{cl},2:{c2},3:{c3}"), "same size").await;
    // Part 1 under 5 MiB.
    let short = &parts[0][..MIB];
    sb.part_ok(&p, &id, 1, short).await;
    bad(format!("1:{},2:{c2},3:{c3}", crc_hex(short)), "5 MiB").await;
    // The last part larger than the others.
    sb.part_ok(&p, &id, 1, parts[0]).await;
    let big_last = [parts[1], &[1u8][..]].concat();
    sb.part_ok(&p, &id, 2, &big_last).await;
    bad(format!("1:{c1},2:{}", crc_hex(&big_last)), "not larger").await;

    // Nothing refused changed the upload: put part 2 back and it completes.
    sb.part_ok(&p, &id, 2, parts[1]).await;
    sb.complete(&p, &id, &part_list(&parts)).await.ok();
    assert!(std::fs::read(sb.object_path(&p)).expect("object") == bytes);
    // Completing again with the same list is answered the same; another list is not.
    sb.complete(&p, &id, &part_list(&parts)).await.ok();
    bad(format!("1:{c1},2:{c2}"), "already completed").await;
    // Parts are closed once completed.
    sb.part(&p, &id, 1, parts[0])
        .await
        .refused(StatusCode::CONFLICT, "completed");
    sb.handle.shutdown().await;
}

#[tokio::test]
async fn a_part_over_64_mib_is_refused_before_it_is_stored() {
    let sb = start(Vec::new()).await;
    let creds = sb.creds("main").await;
    let p = sb.params(&creds, 200 * MIB).await;
    let id = sb.init(&p).await;
    let len = 64 * MIB as u64 + 1;
    // Streamed zeros with an exact Content-Length: the test holds 1 MiB, not 64.
    static ZEROS: [u8; MIB] = [0; MIB];
    let chunks = (0..=64u64).map(move |i| {
        let n = if i == 64 { 1 } else { MIB };
        Ok::<_, std::io::Error>(bytes::Bytes::from_static(&ZEROS[..n]))
    });
    let body = reqwest::Body::wrap_stream(futures_util::stream::iter(chunks));
    let r = send(
        sb.http
            .put(format!("{}?partNumber=1&uploadID={id}", p.object_url()))
            .header("Authorization", &p.tos_sign)
            .header("Content-Type", "application/octet-stream")
            .header("Content-Length", len)
            .header("Content-CRC32", "00000000")
            .body(body),
    )
    .await;
    r.refused(StatusCode::BAD_REQUEST, "at most");
    assert_eq!(sb.inspect("uploads").await[&id]["parts"], json!({}));
    sb.handle.shutdown().await;
}

// ---------- request rules ----------

#[tokio::test]
async fn each_request_rule_is_enforced() {
    let sb = start(Vec::new()).await;
    let bytes = mp4_of_size(PART + 10);
    let parts = split(&bytes);
    let creds = sb.creds("main").await;
    let p = sb.params(&creds, bytes.len()).await;
    let other = sb.params(&creds, bytes.len()).await;
    let id = sb.init(&p).await;
    let url = |q: &str| format!("{}?{q}", p.object_url());

    // Init: POST only, empty body, this upload's tos_sign.
    let init = |method, sign: &str| {
        let req = sb.http.request(method, url("uploads"));
        send(req.header("Authorization", sign))
    };
    let r = init(Method::PUT, &p.tos_sign).await;
    r.refused(StatusCode::METHOD_NOT_ALLOWED, "POST");
    let r = send(
        sb.http
            .post(url("uploads"))
            .header("Authorization", &p.tos_sign)
            .body("x"),
    )
    .await;
    r.refused(StatusCode::BAD_REQUEST, "empty");
    let r = init(Method::POST, &other.tos_sign).await;
    r.refused(StatusCode::UNAUTHORIZED, "tos_sign");

    // Parts.
    let part = |q: String| {
        sb.http
            .put(url(&q))
            .header("Authorization", &p.tos_sign)
            .header("Content-Type", "application/octet-stream")
            .header("Content-CRC32", crc_hex(parts[0]))
    };
    let chunked =
        reqwest::Body::wrap_stream(futures_util::stream::iter([Ok::<_, std::io::Error>(
            parts[0].to_vec(),
        )]));
    let r = send(part(format!("partNumber=1&uploadID={id}")).body(chunked)).await;
    r.refused(StatusCode::LENGTH_REQUIRED, "chunked");
    for n in ["0", "x", "10001", ""] {
        let r = send(part(format!("partNumber={n}&uploadID={id}")).body(parts[0].to_vec())).await;
        r.refused(StatusCode::BAD_REQUEST, "partNumber");
    }
    let r = send(part("partNumber=1".to_owned()).body(parts[0].to_vec())).await;
    r.refused(StatusCode::BAD_REQUEST, "uploadID");
    let r = send(part("partNumber=1&uploadID=nope".to_owned()).body(parts[0].to_vec())).await;
    r.refused(StatusCode::NOT_FOUND, "uploadID");
    let good_crc = crc_hex(parts[0]);
    let good = PartHeaders {
        sign: &p.tos_sign,
        content_type: "application/octet-stream",
        crc: &good_crc,
    };
    let cases = [
        (
            PartHeaders {
                crc: "0badc0de",
                ..good
            },
            StatusCode::BAD_REQUEST,
            "CRC mismatch",
        ),
        (
            PartHeaders {
                crc: "ABCDEF01",
                ..good
            },
            StatusCode::BAD_REQUEST,
            "Content-CRC32",
        ),
        (
            PartHeaders {
                content_type: "text/plain",
                ..good
            },
            StatusCode::BAD_REQUEST,
            "Content-Type",
        ),
        (
            PartHeaders {
                sign: "TOS-SIGN-forged",
                ..good
            },
            StatusCode::UNAUTHORIZED,
            "tos_sign",
        ),
    ];
    for (headers, status, words) in cases {
        let req = sb.raw_part(url(&format!("partNumber=1&uploadID={id}")), headers);
        send(req.body(parts[0].to_vec()))
            .await
            .refused(status, words);
    }
    let r = send(
        sb.http
            .post(url(&format!("partNumber=1&uploadID={id}")))
            .header("Authorization", &p.tos_sign)
            .body(parts[0].to_vec()),
    )
    .await;
    r.refused(StatusCode::METHOD_NOT_ALLOWED, "PUT");
    // The upload id belongs to its own object only.
    sb.part(&other, &id, 1, parts[0])
        .await
        .refused(StatusCode::NOT_FOUND, "uploadID");
    assert_eq!(
        sb.inspect("uploads").await[&id]["parts"],
        json!({}),
        "no refused part was stored"
    );

    // Completion: text/plain, this object's upload id.
    sb.part_ok(&p, &id, 1, parts[0]).await;
    sb.part_ok(&p, &id, 2, parts[1]).await;
    let list = part_list(&parts);
    let r = send(
        sb.http
            .post(url(&format!("uploadID={id}")))
            .header("Authorization", &p.tos_sign)
            .header("Content-Type", "application/json")
            .body(list.clone()),
    )
    .await;
    r.refused(StatusCode::BAD_REQUEST, "text/plain");
    let chunked =
        reqwest::Body::wrap_stream(futures_util::stream::iter([Ok::<_, std::io::Error>(
            list.clone().into_bytes(),
        )]));
    let r = send(
        sb.http
            .post(url(&format!("uploadID={id}")))
            .header("Authorization", &p.tos_sign)
            .header("Content-Type", "text/plain")
            .body(chunked),
    )
    .await;
    r.refused(StatusCode::LENGTH_REQUIRED, "chunked");
    sb.complete(&other, &id, &list)
        .await
        .refused(StatusCode::NOT_FOUND, "uploadID");
    sb.complete(&p, &id, &list).await.ok();
    sb.handle.shutdown().await;
}

#[tokio::test]
async fn upload_ids_expire_with_their_tos_sign() {
    let (sb, bytes, _, p, id) = begun(PART + 10).await;
    let parts = split(&bytes);
    sb.part_ok(&p, &id, 1, parts[0]).await;
    let r = send(sb.http.post(sb.url("/__sandbox/advance?seconds=3601"))).await;
    assert_eq!(r.status, StatusCode::OK);
    sb.part(&p, &id, 2, parts[1])
        .await
        .refused(StatusCode::UNAUTHORIZED, "expired");
    sb.complete(&p, &id, &part_list(&parts))
        .await
        .refused(StatusCode::UNAUTHORIZED, "expired");
    sb.init_reply(&p)
        .await
        .refused(StatusCode::UNAUTHORIZED, "expired");
    sb.handle.shutdown().await;
}

// ---------- faults on parts ----------

#[tokio::test]
async fn a_part_that_fails_twice_then_succeeds_is_counted_once_as_received() {
    let (sb, bytes, _, p, id) = begun(PART + 10).await;
    let parts = split(&bytes);
    // Armed over HTTP, as the documented JSON.
    let rule =
        json!({"step": "upload_part", "action": {"kind": "status", "status": 503}, "times": 2});
    let r = send(sb.http.post(sb.url("/__sandbox/faults")).json(&rule)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);

    sb.part(&p, &id, 1, parts[0])
        .await
        .refused(StatusCode::SERVICE_UNAVAILABLE, "503");
    sb.part(&p, &id, 1, parts[0])
        .await
        .refused(StatusCode::SERVICE_UNAVAILABLE, "503");
    sb.parts_ok(&p, &id, &parts).await;
    sb.complete(&p, &id, &part_list(&parts)).await.ok();

    let counts = sb.inspect("requests").await;
    assert_eq!(counts["upload_part"], json!(4), "{counts}");
    assert_eq!(counts["upload_init"], json!(1), "{counts}");
    assert_eq!(counts["upload_complete"], json!(1), "{counts}");
    assert_eq!(counts["upload"], json!(0), "{counts}");
    let uploads = sb.inspect("uploads").await;
    assert_eq!(uploads[&id]["parts"], json!({"1": 1, "2": 1}));
    let rules = sb.inspect("faults").await;
    assert_eq!(rules["faults"][0]["remaining"], json!(0), "{rules}");
    sb.handle.shutdown().await;
}

#[tokio::test]
async fn upload_rules_hit_every_object_request_and_upload_part_rules_only_parts() {
    // Init and complete are `upload` but not `upload_part`; a part is both.
    let sb = start(vec![
        Fault::new(FaultStep::UploadPart, FaultAction::Reset).times(1),
        Fault::new(
            FaultStep::Upload,
            FaultAction::Status {
                status: 500,
                retry_after: None,
                body: None,
            },
        )
        .times(1),
    ])
    .await;
    let bytes = mp4_of_size(PART + 10);
    let parts = split(&bytes);
    let creds = sb.creds("main").await;
    let p = sb.params(&creds, bytes.len()).await;
    // The init meets the `upload` rule (the part rule does not see it).
    sb.init_reply(&p)
        .await
        .refused(StatusCode::INTERNAL_SERVER_ERROR, "500");
    let id = sb.init(&p).await;
    // The first part meets the `upload_part` reset: no answer at all.
    let lost = sb.part_request(&p, &id, 1, parts[0]).send().await;
    assert!(lost.is_err(), "connection dropped: {lost:?}");
    sb.parts_ok(&p, &id, &parts).await;
    sb.complete(&p, &id, &part_list(&parts)).await.ok();
    let counts = sb.inspect("requests").await;
    assert_eq!(counts["upload_init"], json!(2), "{counts}");
    assert_eq!(counts["upload_part"], json!(3), "{counts}");
    let rules = sb.inspect("faults").await;
    assert_eq!(
        rules["faults"][0]["seen"],
        json!(3),
        "part rule saw parts only: {rules}"
    );
    assert_eq!(
        rules["faults"][1]["seen"],
        json!(6),
        "upload rule saw all: {rules}"
    );
    sb.handle.shutdown().await;
}

#[tokio::test]
async fn a_held_part_is_stored_when_released() {
    let sb = start(vec![
        Fault::new(FaultStep::UploadPart, FaultAction::Hold).times(1),
    ])
    .await;
    let bytes = mp4_of_size(PART + 10);
    let parts = split(&bytes);
    let (_, p, id) = sb.begin(&bytes).await;
    let held = tokio::spawn(send(sb.part_request(&p, &id, 2, parts[1])));
    sb.handle.wait_held(1).await;
    assert_eq!(sb.inspect("uploads").await[&id]["parts"], json!({}));
    assert_eq!(sb.handle.release(), 1);
    held.await.expect("held request ends").ok();
    sb.part_ok(&p, &id, 1, parts[0]).await;
    assert_eq!(
        sb.inspect("uploads").await[&id]["parts"],
        json!({"1": 1, "2": 1})
    );
    sb.complete(&p, &id, &part_list(&parts)).await.ok();
    assert!(std::fs::read(sb.object_path(&p)).expect("object") == bytes);
    sb.handle.shutdown().await;
}

// ---------- the sink ----------

#[tokio::test]
async fn the_sink_receives_any_body_and_keeps_nothing() {
    let sb = start(Vec::new()).await;
    let bytes = noise(3 * MIB + 17, 5);
    let expected = json!({"size": bytes.len(), "crc32": crc_hex(&bytes),
                          "sha256": sha256_hex(&bytes)});
    let r = send(sb.http.put(sb.url("/__sandbox/sink")).body(bytes.clone())).await;
    assert_eq!((r.status, &r.json), (StatusCode::OK, &expected));

    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        bytes.chunks(100_000).map(|c| Ok(c.to_vec())).collect();
    let body = reqwest::Body::wrap_stream(futures_util::stream::iter(chunks));
    let r = send(sb.http.post(sb.url("/__sandbox/sink")).body(body)).await;
    assert_eq!((r.status, &r.json), (StatusCode::OK, &expected));

    let r = send(sb.http.post(sb.url("/__sandbox/sink"))).await;
    assert_eq!(r.json["size"], json!(0));
    assert_eq!(r.json["crc32"], json!("00000000"));

    // Sink bodies leave no file behind, and the sink is no upload.
    let left: Vec<PathBuf> = files_under(sb.storage());
    assert!(left.is_empty(), "{left:?}");
    let counts = sb.inspect("requests").await;
    assert_eq!(counts["upload"], json!(0), "{counts}");
    sb.handle.shutdown().await;
}
