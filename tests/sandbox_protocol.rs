//! The sandbox enforces docs/douyin-web.md: each rule is driven here over real HTTP (reqwest
//! against a sandbox on 127.0.0.1:0), with a correct client written in this file, and
//! then broken one rule at a time.

mod common;

use std::time::Duration;

use common::fixtures::{crc_hex, mp4_with_media, sha256_hex};
use common::sandbox_client::*;
use dropcast::sandbox::{self, ParamsLayout, SandboxOptions, cookie_for};
use reqwest::{Method, StatusCode};
use serde_json::json;

async fn start(options: SandboxOptions) -> Sb {
    Sb::start(options).await
}

/// A sandbox with the default options as `change` leaves them.
async fn start_with(change: impl FnOnce(&mut SandboxOptions)) -> Sb {
    let mut options = SandboxOptions::default();
    change(&mut options);
    start(options).await
}

/// Step 5 as `main` with `form` is refused with 2, the message naming `words`.
async fn assert_create_refused(sb: &Sb, form: &[(String, String)], words: &str) {
    let r = sb.create("main", form).await;
    assert_eq!(r.status_code(), 2);
    assert!(r.msg().contains(words), "{}", r.json);
}

async fn sb() -> Sb {
    start(SandboxOptions::default()).await
}

const TEXT: &str = "遇见就是一种缘分 #音乐 @小明";

/// A correct step 5 form for `TEXT`.
fn form(vid: &str, poster: &str) -> Vec<(String, String)> {
    let text_extra = json!([
        {"start": 9, "end": 12, "user_id": "", "type": 1, "hashtag_name": "音乐"},
        {"start": 13, "end": 16, "user_id": "84990209480", "type": 0, "hashtag_name": ""},
    ]);
    set(
        plain_form(vid, poster),
        &[
            ("text", TEXT),
            ("text_extra", &text_extra.to_string()),
            ("challenges", r#"["1550712576368642"]"#),
            ("mentions", r#"["84990209480"]"#),
            ("third_text", "遇见就是一种缘分"),
        ],
    )
}

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

// ---------- step 1 ----------

#[tokio::test]
async fn step1_issues_ak_and_expiring_auth() {
    let sb = sb().await;
    let r = sb.creds_reply(&cookie_for("main")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.status_code(), 0);
    let ak = r.json["ak"].as_str().expect("ak");
    assert!(is_hex(ak, 32), "{ak}");
    let auth = r.json["auth"].as_str().expect("auth");
    let parts: Vec<&str> = auth.split(':').collect();
    assert_eq!(parts.len(), 5, "{auth}");
    assert_eq!(&parts[..2], ["HMAC-SHA1", "1.0"]);
    assert_eq!(parts[3], ak);
    let expiry: i64 = parts[2].parse().expect("expiry");
    let now = sb.advance(0).await;
    assert!(
        (now + 3590..=now + 3610).contains(&expiry),
        "{expiry} vs {now}"
    );
    let again = sb.creds("main").await;
    assert_ne!(again.ak, ak, "fresh credentials each time");
}

#[tokio::test]
async fn step1_refuses_bad_cookies_with_8() {
    let sb = sb().await;
    for cookie in [
        "",
        "sessionid=abc123; csrf_token=x",
        "sessionid=sandbox-main",
        "sessionid=sandbox-bad name; csrf_token=x",
    ] {
        let r = sb.creds_reply(cookie).await;
        assert_eq!(r.status_code(), 8, "{cookie:?}: {}", r.json);
    }
    let r = sb.get_json("/web/api/media/upload/auth/", None).await;
    assert_eq!(r.status_code(), 8);
    // Any sandbox-<name> with a csrf_token is a user.
    let r = sb.creds_reply("sessionid=sandbox-x_1; csrf_token=t").await;
    assert_eq!(r.status_code(), 0);
}

// ---------- step 2 ----------

#[tokio::test]
async fn step2_requires_action_edge_node_and_file_size() {
    let sb = sb().await;
    let c = sb.creds("main").await;
    for q in [
        "use_edge_node=1&file_size=10",
        "action=UpdateVideoUploadInfos&use_edge_node=1&file_size=10",
        "action=GetVideoUploadParams&file_size=10",
        "action=GetVideoUploadParams&use_edge_node=0&file_size=10",
        "action=GetVideoUploadParams&use_edge_node=1",
        "action=GetVideoUploadParams&use_edge_node=1&file_size=0",
        "action=GetVideoUploadParams&use_edge_node=1&file_size=-5",
        "action=GetVideoUploadParams&use_edge_node=1&file_size=1.5",
        "action=GetVideoUploadParams&use_edge_node=1&file_size=",
    ] {
        let r = sb.params_reply(&c, q).await;
        assert_ne!(r.code(), 2000, "{q}");
        assert_eq!(r.code(), 4000, "{q}: {}", r.json);
    }
    let r = sb
        .params_reply(
            &c,
            "action=GetVideoUploadParams&use_edge_node=1&file_size=10",
        )
        .await;
    assert_eq!(r.code(), 2000);
}

#[tokio::test]
async fn step2_refuses_bad_or_expired_auth_with_4001() {
    let sb = sb().await;
    let q = "action=GetVideoUploadParams&use_edge_node=1&file_size=10";
    let c = sb.creds("main").await;
    let forged = Creds {
        ak: c.ak.clone(),
        auth: c.auth.replace("HMAC-SHA1:1.0:", "HMAC-SHA1:1.0:9"),
    };
    assert_eq!(sb.params_reply(&forged, q).await.code(), 4001);
    let wrong_ak = Creds {
        ak: "0".repeat(32),
        auth: c.auth.clone(),
    };
    assert_eq!(sb.params_reply(&wrong_ak, q).await.code(), 4001);
    let r = send(
        sb.http
            .get(sb.url(&format!("/video/openapi/v1/?{q}")))
            .header("authorization", &c.auth),
    )
    .await;
    assert_eq!(r.code(), 4001, "x-tt-access missing");
    assert_eq!(sb.params_reply(&c, q).await.code(), 2000);
    sb.expire().await;
    assert_eq!(sb.params_reply(&c, q).await.code(), 4001);
    let fresh = sb.creds("main").await;
    assert_eq!(sb.params_reply(&fresh, q).await.code(), 2000);
}

#[tokio::test]
async fn step2_auth_expires_after_its_ttl() {
    let sb = start_with(|o| o.auth_ttl = Duration::from_secs(60)).await;
    let q = "action=GetVideoUploadParams&use_edge_node=1&file_size=10";
    let c = sb.creds("main").await;
    sb.advance(59).await;
    assert_eq!(sb.params_reply(&c, q).await.code(), 2000);
    sb.advance(2).await;
    assert_eq!(sb.params_reply(&c, q).await.code(), 4001);
}

#[tokio::test]
async fn step2_alternates_layouts_and_formats_extra_param() {
    let sb = sb().await;
    let c = sb.creds("main").await;
    let q = "action=GetVideoUploadParams&use_edge_node=1&file_size=917394";
    let first = sb.params_reply(&c, q).await;
    let second = sb.params_reply(&c, q).await;
    let (d1, d2) = (&first.json["data"], &second.json["data"]);
    assert!(d1["vid"].is_string(), "first: top layout {d1}");
    assert_eq!(d1["edge_nodes"], json!([]));
    assert!(d2.get("vid").is_none(), "second: edge node layout {d2}");
    assert!(d2["edge_nodes"][0]["vid"].is_string());

    let now = sb.advance(0).await;
    let (p1, p2) = (params_from(d1), params_from(d2));
    for p in [&p1, &p2] {
        assert_eq!(p.tos_host, sb.handle.addr().to_string());
        let (bucket, name) = p.oid.split_once('/').expect("oid has a slash");
        assert_eq!(bucket, "tos-cn-v-0000");
        assert!(is_hex(name, 32), "{}", p.oid);
        assert!(p.vid.starts_with("v0200f"));
        let vts: i64 = p
            .extra_param
            .split('&')
            .find_map(|kv| kv.strip_prefix("vts="))
            .and_then(|v| v.parse().ok())
            .expect("vts");
        assert!((now - 5..=now).contains(&vts));
        assert_eq!(
            p.extra_param,
            format!(
                "vidc=lf&vts={vts}&host={}&edge_node=lf&upload_mode=serial&file_size=917394.000000",
                p.tos_host
            )
        );
    }
    assert_ne!(p1.vid, p2.vid);
    assert_ne!(p1.oid, p2.oid);
    assert_ne!(p1.tos_sign, p2.tos_sign);
    assert_ne!(p1.token, p2.token);
}

#[tokio::test]
async fn step2_fixed_layouts() {
    for (layout, top) in [(ParamsLayout::Top, true), (ParamsLayout::EdgeNodes, false)] {
        let sb = start_with(|o| o.layout = layout).await;
        let c = sb.creds("main").await;
        let q = "action=GetVideoUploadParams&use_edge_node=1&file_size=1";
        for _ in 0..2 {
            let r = sb.params_reply(&c, q).await;
            assert_eq!(r.json["data"]["vid"].is_string(), top, "{layout:?}");
        }
        sb.handle.shutdown().await;
    }
}

// ---------- step 3 ----------

#[tokio::test]
async fn step3_stores_the_bytes_on_disk_under_the_oid_path() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sb = start_with(|o| o.storage_dir = Some(dir.path().to_path_buf())).await;
    let bytes = mp4_with_media(300_000);
    let (_, p) = sb.prepared(&bytes).await;
    let r = sb.upload(&p, &bytes).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json, json!({"success": 0}));
    let stored = std::fs::read(dir.path().join(&p.oid)).expect("object on disk");
    assert_eq!(stored, bytes);
    // PUT works too, and replaces the object.
    let put = sb.signed(Method::PUT, &p, &crc_hex(&bytes));
    let r = send(put.body(bytes.clone())).await;
    assert_eq!(r.json, json!({"success": 0}));
    let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("tos-cn-v-0000"))
        .expect("bucket dir")
        .filter_map(Result::ok)
        .map(|e| e.file_name())
        .collect();
    assert_eq!(leftovers.len(), 1, "no temporary files left: {leftovers:?}");
}

#[tokio::test]
async fn step3_refuses_bad_or_expired_tos_sign_with_401() {
    let sb = sb().await;
    let bytes = b"0123456789".to_vec();
    let (_, p, other) = sb.prepared_twice(&bytes).await;
    for sign in ["", "nonsense", other.tos_sign.as_str()] {
        let bad = Params {
            tos_sign: sign.to_owned(),
            ..p.clone()
        };
        let r = sb.upload(&bad, &bytes).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{sign:?}");
        assert_eq!(r.json["success"], json!(1));
        assert!(r.json["error"]["message"].is_string());
    }
    sb.expire().await;
    let r = sb.upload(&p, &bytes).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.msg().contains("expired"), "{}", r.json);
}

#[tokio::test]
async fn step3_tos_sign_expires_after_its_ttl() {
    let sb = start_with(|o| o.sign_ttl = Duration::from_secs(100)).await;
    let bytes = b"abc".to_vec();
    let (_, p) = sb.prepared(&bytes).await;
    sb.advance(101).await;
    assert_eq!(sb.upload(&p, &bytes).await.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn step3_refuses_chunked_bodies_with_411() {
    let sb = sb().await;
    let bytes = b"0123456789".to_vec();
    let (_, p) = sb.prepared(&bytes).await;
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        vec![Ok(bytes[..5].to_vec()), Ok(bytes[5..].to_vec())];
    let body = reqwest::Body::wrap_stream(futures_util::stream::iter(chunks));
    let r = send(sb.signed(Method::POST, &p, &crc_hex(&bytes)).body(body)).await;
    assert_eq!(r.status, StatusCode::LENGTH_REQUIRED);
    assert_eq!(r.json["success"], json!(1));
}

#[tokio::test]
async fn step3_checks_content_type_crc_and_size() {
    let sb = sb().await;
    let bytes = b"0123456789".to_vec();
    let (c, p) = sb.prepared(&bytes).await;
    let post = |ctype: &str, crc: String, body: Vec<u8>| {
        sb.http
            .post(p.object_url())
            .header("Authorization", &p.tos_sign)
            .header("Content-Type", ctype)
            .header("Content-CRC32", crc)
            .body(body)
    };
    let ok_crc = crc_hex(&bytes);
    let cases = [
        (
            "wrong type",
            post("video/mp4", ok_crc.clone(), bytes.clone()),
        ),
        (
            "wrong crc",
            post("application/octet-stream", "00000000".into(), bytes.clone()),
        ),
        (
            "upper-case crc",
            post(
                "application/octet-stream",
                ok_crc.to_uppercase(),
                bytes.clone(),
            ),
        ),
        (
            "short crc",
            post(
                "application/octet-stream",
                ok_crc[1..].to_owned(),
                bytes.clone(),
            ),
        ),
        (
            "too short",
            post(
                "application/octet-stream",
                crc_hex(&bytes[..9]),
                bytes[..9].to_vec(),
            ),
        ),
        (
            "too long",
            post(
                "application/octet-stream",
                crc_hex(b"0123456789X"),
                b"0123456789X".to_vec(),
            ),
        ),
    ];
    let upper_differs = ok_crc.to_uppercase() != ok_crc;
    for (what, req) in cases {
        if what == "upper-case crc" && !upper_differs {
            continue;
        }
        let r = send(req).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{what}");
        assert_eq!(r.json["success"], json!(1), "{what}");
    }
    let r = send(
        sb.http
            .post(p.object_url())
            .header("Authorization", &p.tos_sign)
            .header("Content-Type", "application/octet-stream")
            .body(bytes.clone()),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "missing crc");
    // None of that left an object: commit says incomplete.
    assert_eq!(sb.commit(&c, &p).await.code(), 4004);
    assert_eq!(sb.upload(&p, &bytes).await.json, json!({"success": 0}));
    assert_eq!(sb.commit(&c, &p).await.code(), 2000);
}

#[tokio::test]
async fn step3_oid_slash_must_be_a_real_path_separator() {
    let sb = sb().await;
    let bytes = b"abc".to_vec();
    let (_, p) = sb.prepared(&bytes).await;
    let encoded = format!("http://{}/{}", p.tos_host, p.oid.replace('/', "%2F"));
    let r = send(
        sb.http
            .post(encoded)
            .header("Authorization", &p.tos_sign)
            .header("Content-Type", "application/octet-stream")
            .header("Content-CRC32", crc_hex(&bytes))
            .body(bytes.clone()),
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.json["success"], json!(1));
}

#[tokio::test]
async fn step4_commits_and_reports_the_video() {
    let sb = sb().await;
    let bytes = mp4_with_media(1000);
    let (c, p) = sb.uploaded(&bytes).await;
    let r = sb.commit(&c, &p).await;
    assert_eq!(r.code(), 2000, "{}", r.json);
    let v = &r.json["data"]["video"];
    assert_eq!(v["vid"], json!(p.vid));
    assert_eq!(v["oid"], json!(p.oid));
    assert_eq!(v["duration"].as_f64(), Some(2.5));
    assert_eq!(
        (v["width"].as_u64(), v["height"].as_u64()),
        (Some(720), Some(1280))
    );
    let poster = r.json["data"]["poster"]["oid"].as_str().expect("poster");
    assert!(poster.starts_with("tos-cn-p-0000/"), "{poster}");
    // Committing again (a client resuming) answers the same.
    let again = sb.commit(&c, &p).await;
    assert_eq!(again.json["data"]["poster"]["oid"], json!(poster));
}

#[tokio::test]
async fn step4_needs_extra_param_verbatim() {
    let sb = sb().await;
    let bytes = b"some bytes".to_vec();
    let (c, p, other) = sb.prepared_twice(&bytes).await;
    sb.upload(&p, &bytes).await;
    let body = commit_body(&p);
    let wrong_vts = p
        .extra_param
        .split('&')
        .map(|kv| {
            if kv.starts_with("vts=") {
                "vts=1".to_owned()
            } else {
                kv.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("&");
    for q in [
        "action=UpdateVideoUploadInfos".to_owned(),
        format!("action=GetVideoUploadParams&{}", p.extra_param),
        p.extra_param.clone(),
        format!("action=UpdateVideoUploadInfos&{wrong_vts}"),
        format!(
            "action=UpdateVideoUploadInfos&{}",
            other.extra_param.replace("file_size=10", "file_size=11")
        ),
        format!("action=UpdateVideoUploadInfos&{}&extra=1", p.extra_param),
    ] {
        let r = sb.commit_with(&c, &q, &body).await;
        assert_eq!(r.code(), 4000, "{q}: {}", r.json);
    }
    assert_eq!(sb.commit(&c, &p).await.code(), 2000);
}

#[tokio::test]
async fn step4_checks_auth_content_type_and_body() {
    let sb = sb().await;
    let bytes = b"some bytes".to_vec();
    let (c, p) = sb.uploaded(&bytes).await;
    let q = format!("action=UpdateVideoUploadInfos&{}", p.extra_param);
    let bad = Creds {
        ak: c.ak.clone(),
        auth: "HMAC-SHA1:1.0:0:x:y".into(),
    };
    assert_eq!(
        sb.commit_with(&bad, &q, &commit_body(&p)).await.code(),
        4001
    );
    let r = send(
        sb.http
            .post(sb.url(&format!("/video/openapi/v1/?{q}")))
            .header("authorization", &c.auth)
            .header("x-tt-access", &c.ak)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(commit_body(&p).to_string()),
    )
    .await;
    assert_eq!(r.code(), 4000, "content type: {}", r.json);
    let mut missing = commit_body(&p);
    missing.as_object_mut().expect("object").remove("poster_ss");
    assert_eq!(sb.commit_with(&c, &q, &missing).await.code(), 4000);
    // A fresh auth from the same cookie may commit.
    let fresh = sb.creds("main").await;
    assert_eq!(sb.commit(&fresh, &p).await.code(), 2000);
}

#[tokio::test]
async fn step4_refuses_mismatched_or_incomplete_uploads_with_4004() {
    let sb = sb().await;
    let bytes = b"some bytes".to_vec();
    let (c, p, other) = sb.prepared_twice(&bytes).await;
    let q = format!("action=UpdateVideoUploadInfos&{}", p.extra_param);
    assert_eq!(sb.commit(&c, &p).await.code(), 4004, "nothing uploaded yet");
    sb.upload(&p, &bytes).await;
    for (field, value) in [
        ("vid", &other.vid),
        ("oid", &other.oid),
        ("token", &other.token),
    ] {
        let mut body = commit_body(&p);
        body[field] = json!(value);
        let r = sb.commit_with(&c, &q, &body).await;
        assert_eq!(r.code(), 4004, "{field}: {}", r.json);
    }
    // Another account cannot commit this upload.
    let intruder = sb.creds("other").await;
    assert_eq!(sb.commit(&intruder, &p).await.code(), 4004);
    assert_eq!(sb.commit(&c, &p).await.code(), 2000);
}

#[tokio::test]
async fn step4_expired_token_is_http_401() {
    let sb = sb().await;
    let bytes = b"some bytes".to_vec();
    let (_, p) = sb.uploaded(&bytes).await;
    sb.expire().await;
    let fresh = sb.creds("main").await;
    let r = sb.commit(&fresh, &p).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.json);
}

// ---------- step 5 ----------

#[tokio::test]
async fn step5_publishes_and_records_everything() {
    let sb = sb().await;
    let bytes = mp4_with_media(5000);
    let ready = sb.ready("main", &bytes).await;
    let f = set(
        form(&ready.params.vid, &ready.poster),
        &[
            ("poster_delay", "1500"),
            ("mix_id", "7012345678901234567"),
            ("mix_order", "3"),
        ],
    );
    let r = sb.create("main", &f).await;
    assert_eq!(r.status_code(), 0, "{}", r.json);
    assert_eq!(r.json["status_msg"], json!(""));
    let aweme_id = r.json["aweme"]["aweme_id"].as_str().expect("aweme_id");
    assert_eq!(aweme_id.len(), 19);
    assert!(aweme_id.bytes().all(|b| b.is_ascii_digit()));

    let posts = sb.inspect("posts").await;
    let posts = posts.as_array().expect("list");
    assert_eq!(posts.len(), 1);
    let post = &posts[0];
    assert_eq!(post["aweme_id"], json!(aweme_id));
    assert_eq!(post["account"], json!("main"));
    assert_eq!(post["vid"], json!(ready.params.vid));
    assert_eq!(post["oid"], json!(ready.params.oid));
    assert_eq!(post["size"], json!(bytes.len()));
    assert_eq!(post["sha256"], json!(sha256_hex(&bytes)));
    assert!(post["create_time"].as_i64().expect("time") > 1_700_000_000);
    for (k, v) in &f {
        assert_eq!(post["form"][k], json!(v), "{k}");
    }

    // The video oid is an accepted poster too; a second video of the same account.
    let second = sb.ready("main", b"second video").await;
    let r = sb
        .create("main", &form(&second.params.vid, &second.params.oid))
        .await;
    assert_eq!(r.status_code(), 0, "{}", r.json);
}

#[tokio::test]
async fn step5_refuses_a_video_twice() {
    let sb = sb().await;
    let ready = sb.ready("main", b"video").await;
    let f = form(&ready.params.vid, &ready.poster);
    assert_eq!(sb.create("main", &f).await.status_code(), 0);
    let r = sb.create("main", &f).await;
    assert_eq!(r.status_code(), 2);
    assert_eq!(r.msg(), "video already published");
    assert_eq!(sb.inspect("posts").await.as_array().map(Vec::len), Some(1));
}

#[tokio::test]
async fn step5_needs_cookie_and_matching_csrf_token() {
    let sb = sb().await;
    let ready = sb.ready("main", b"video").await;
    let body = serde_urlencoded::to_string(form(&ready.params.vid, &ready.poster)).expect("form");
    let r = sb.create_raw("sessionid=nobody", "x", body.clone()).await;
    assert_eq!(r.status_code(), 8);
    let passport = cookie_for("main")
        .split(';')
        .map(str::trim)
        .find_map(|kv| kv.strip_prefix("passport_csrf_token="))
        .expect("passport token")
        .to_owned();
    for csrf in ["", "wrong", passport.as_str(), &csrf_of("other")] {
        let r = sb.create_raw(&cookie_for("main"), csrf, body.clone()).await;
        assert_eq!(r.status_code(), 2, "{csrf:?}");
        assert!(r.msg().contains("csrf_token"), "{}", r.json);
    }
    let r = send(
        sb.http
            .post(sb.url("/web/api/media/aweme/create/"))
            .header("Cookie", cookie_for("main"))
            .header("csrf_token", csrf_of("main"))
            .header("Content-Type", "application/json")
            .body(body.clone()),
    )
    .await;
    assert_eq!(r.status_code(), 2, "json content type");
    assert!(sb.posts().await.is_empty());
    assert_eq!(
        sb.create_raw(&cookie_for("main"), &csrf_of("main"), body)
            .await
            .status_code(),
        0
    );
}

#[tokio::test]
async fn step5_video_must_be_committed_by_the_same_user() {
    let sb = sb().await;
    // Uploaded but never committed.
    let c = sb.creds("main").await;
    let p = sb.params(&c, 5).await;
    sb.upload(&p, b"12345").await;
    assert_create_refused(&sb, &form(&p.vid, &p.oid), "video_id").await;
    // Unknown video.
    let r = sb.create("main", &form("v0200fnope", &p.oid)).await;
    assert_eq!(r.status_code(), 2);
    // Someone else's committed video.
    let theirs = sb.ready("other", b"their video").await;
    assert_create_refused(&sb, &form(&theirs.params.vid, &theirs.poster), "video_id").await;
    // A poster that is neither the committed poster nor the video oid.
    let mine = sb.ready("main", b"my video").await;
    assert_create_refused(&sb, &form(&mine.params.vid, &theirs.poster), "poster").await;
    assert_eq!(
        sb.create("main", &form(&mine.params.vid, &mine.poster))
            .await
            .status_code(),
        0
    );
}

#[tokio::test]
async fn step5_each_bad_field_is_refused_by_name() {
    let sb = sb().await;
    let ready = sb.ready("main", b"video").await;
    let good = form(&ready.params.vid, &ready.poster);
    let tag_only = r#"[{"start":9,"end":12,"user_id":"","type":1,"hashtag_name":"音乐"}]"#;
    let shifted = r#"[{"start":10,"end":13,"user_id":"","type":1,"hashtag_name":"音乐"},{"start":13,"end":16,"user_id":"84990209480","type":0,"hashtag_name":""}]"#;
    // UTF-8 byte offsets instead of UTF-16 units.
    let bytes_offsets = r#"[{"start":25,"end":32,"user_id":"","type":1,"hashtag_name":"音乐"},{"start":33,"end":40,"user_id":"84990209480","type":0,"hashtag_name":""}]"#;
    let swapped_types = r#"[{"start":9,"end":12,"user_id":"","type":0,"hashtag_name":"音乐"},{"start":13,"end":16,"user_id":"84990209480","type":1,"hashtag_name":""}]"#;
    let hashtag_with_uid = r#"[{"start":9,"end":12,"user_id":"1","type":1,"hashtag_name":"音乐"},{"start":13,"end":16,"user_id":"84990209480","type":0,"hashtag_name":""}]"#;
    let wrong_name = r#"[{"start":9,"end":12,"user_id":"","type":1,"hashtag_name":"音"},{"start":13,"end":16,"user_id":"84990209480","type":0,"hashtag_name":""}]"#;
    let now = sb.advance(0).await;
    let too_soon = (now + 3600).to_string();
    let too_late = (now + 15 * 24 * 3600).to_string();
    let cases: Vec<(&str, &str, &str)> = vec![
        ("video_id", "video_id", ""),
        ("poster", "poster", ""),
        ("poster_delay", "poster_delay", "-1"),
        ("poster_delay", "poster_delay", "1.5"),
        ("text_extra", "text_extra", tag_only),
        ("text_extra", "text_extra", shifted),
        ("text_extra", "text_extra", bytes_offsets),
        ("text_extra", "text_extra", swapped_types),
        ("text_extra", "text_extra", hashtag_with_uid),
        ("text_extra", "text_extra", wrong_name),
        ("text_extra", "text_extra", "[]"),
        ("text_extra", "text_extra", "not json"),
        ("text", "text_extra", "遇见就是一种缘分 #音乐 @小明 #旅行"),
        ("challenges", "challenges", r#"["音乐"]"#),
        ("challenges", "challenges", "1550712576368642"),
        ("mentions", "mentions", "[]"),
        ("mentions", "mentions", r#"["1"]"#),
        ("visibility_type", "visibility_type", "3"),
        ("visibility_type", "visibility_type", "public"),
        ("third_text", "third_text", "遇见就是一种缘分 #音乐 @小明"),
        ("third_text", "third_text", " 遇见就是一种缘分"),
        ("download", "download", "2"),
        ("upload_source", "upload_source", "0"),
        ("mix_id", "mix_order", "7012345678901234567"),
        ("mix_order", "mix_id", "3"),
        ("is_preview", "is_preview", "1"),
        ("timing", "timing", &too_soon),
        ("timing", "timing", &too_late),
        ("timing", "timing", "-1"),
    ];
    for (field, named, value) in cases {
        let r = sb
            .create("main", &set(good.clone(), &[(field, value)]))
            .await;
        assert_eq!(r.status_code(), 2, "{field}={value:?}: {}", r.json);
        assert!(r.msg().starts_with(named), "{field}={value:?}: {}", r.msg());
    }
    // Each field missing.
    for (field, _) in &good {
        let without: Vec<_> = good.iter().filter(|(k, _)| k != field).cloned().collect();
        let r = sb.create("main", &without).await;
        assert_eq!(r.status_code(), 2, "without {field}");
        assert!(r.msg().starts_with(field.as_str()), "{}", r.msg());
    }
    let mix = set(
        good.clone(),
        &[("mix_id", "7012345678901234567"), ("mix_order", "0")],
    );
    assert!(sb.create("main", &mix).await.msg().starts_with("mix_order"));
    assert!(sb.posts().await.is_empty());
    // A schedule inside the window is fine.
    let later = (now + 3 * 3600).to_string();
    let r = sb.create("main", &set(good, &[("timing", &later)])).await;
    assert_eq!(r.status_code(), 0, "{}", r.json);
}

#[tokio::test]
async fn step5_spans_count_utf16_units_for_astral_characters() {
    let sb = sb().await;
    let ready = sb.ready("main", b"video").await;
    let text = "😀 #🎵 @阿明\u{3000}结尾";
    let good_extra = json!([
        {"start": 3, "end": 6, "user_id": "", "type": 1, "hashtag_name": "🎵"},
        {"start": 7, "end": 10, "user_id": "123", "type": 0, "hashtag_name": ""},
    ]);
    let base = set(
        form(&ready.params.vid, &ready.poster),
        &[
            ("text", text),
            ("mentions", r#"["123"]"#),
            ("challenges", "[]"),
            ("third_text", "😀 结尾"),
        ],
    );
    // Counting code points (not UTF-16 units) is refused.
    let code_points = json!([
        {"start": 2, "end": 4, "user_id": "", "type": 1, "hashtag_name": "🎵"},
        {"start": 5, "end": 8, "user_id": "123", "type": 0, "hashtag_name": ""},
    ]);
    let r = sb
        .create(
            "main",
            &set(base.clone(), &[("text_extra", &code_points.to_string())]),
        )
        .await;
    assert_eq!(r.status_code(), 2);
    let r = sb
        .create(
            "main",
            &set(base, &[("text_extra", &good_extra.to_string())]),
        )
        .await;
    assert_eq!(r.status_code(), 0, "{}", r.json);
}

#[tokio::test]
async fn step5_rate_limit_answers_7_then_429_and_lifts() {
    let sb = start_with(|o| o.min_post_interval = Duration::from_secs(60)).await;
    let a = sb.ready("main", b"first").await;
    let b = sb.ready("main", b"second").await;
    let other = sb.ready("other", b"third").await;
    assert_eq!(
        sb.create("main", &form(&a.params.vid, &a.poster))
            .await
            .status_code(),
        0
    );
    let fb = form(&b.params.vid, &b.poster);
    let r = sb.create("main", &fb).await;
    assert_eq!(
        (r.status, r.status_code()),
        (StatusCode::OK, 7),
        "{}",
        r.json
    );
    let r = sb.create("main", &fb).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.status_code(), 7);
    let retry: u64 = r.headers["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert!((1..=60).contains(&retry), "{retry}");
    // Accounts are limited separately.
    assert_eq!(
        sb.create("other", &form(&other.params.vid, &other.poster))
            .await
            .status_code(),
        0
    );
    sb.advance(60).await;
    assert_eq!(sb.create("main", &fb).await.status_code(), 0);
    assert_eq!(sb.inspect("posts").await.as_array().map(Vec::len), Some(3));
}

// ---------- 6a, 6b ----------

#[tokio::test]
async fn post_list_pages_newest_first_and_only_own_posts() {
    let sb = sb().await;
    let mut vids = Vec::new();
    for i in 0..5 {
        let r = sb.ready("main", format!("video {i}").as_bytes()).await;
        assert_eq!(
            sb.create("main", &form(&r.params.vid, &r.poster))
                .await
                .status_code(),
            0
        );
        vids.push(r.params.vid);
    }
    let theirs = sb.ready("other", b"theirs").await;
    assert_eq!(
        sb.create("other", &form(&theirs.params.vid, &theirs.poster))
            .await
            .status_code(),
        0
    );

    let cookie = cookie_for("main");
    let mut seen = Vec::new();
    let mut cursor = 0;
    loop {
        let r = sb
            .get_json(
                &format!("/web/api/media/aweme/post/?count=2&max_cursor={cursor}"),
                Some(&cookie),
            )
            .await;
        assert_eq!(r.status_code(), 0, "{}", r.json);
        let list = r.json["aweme_list"].as_array().expect("list").clone();
        assert!(list.len() <= 2);
        for item in &list {
            seen.push(item["video"]["vid"].as_str().expect("vid").to_owned());
            assert_eq!(item["desc"], json!(TEXT));
            assert!(item["create_time"].is_i64());
        }
        if !r.json["has_more"].as_bool().expect("has_more") {
            break;
        }
        cursor = r.json["max_cursor"].as_i64().expect("cursor");
    }
    vids.reverse();
    assert_eq!(seen, vids);

    for bad in ["count=51", "count=0", "count=x", "max_cursor=0"] {
        let r = sb
            .get_json(&format!("/web/api/media/aweme/post/?{bad}"), Some(&cookie))
            .await;
        assert_eq!(r.status_code(), 2, "{bad}");
    }
    let r = sb
        .get_json("/web/api/media/aweme/post/?count=50", None)
        .await;
    assert_eq!(r.status_code(), 8);
}

#[tokio::test]
async fn challenge_sug_has_near_misses_and_needs_source_aid_and_cookie() {
    let sb = sb().await;
    let cookie = cookie_for("main");
    let path = |kw: &str| {
        format!(
            "/aweme/v1/search/challengesug/?{}",
            serde_urlencoded::to_string([
                ("keyword", kw),
                ("source", "challenge_create"),
                ("aid", "2906")
            ])
            .expect("query")
        )
    };
    let r = sb.get_json(&path("音乐"), Some(&cookie)).await;
    assert_eq!(r.status_code(), 0);
    let list = r.json["sug_list"].as_array().expect("list");
    assert!(list.len() >= 3);
    assert_ne!(
        list[0]["cha_name"],
        json!("音乐"),
        "exact match is not first"
    );
    let exact: Vec<_> = list
        .iter()
        .filter(|s| s["cha_name"] == json!("音乐"))
        .collect();
    assert_eq!(exact.len(), 1);
    assert_eq!(exact[0]["cid"], json!("1550712576368642"));
    assert!(list.iter().all(|s| s["view_count"].is_u64()));
    let r = sb.get_json(&path("没有的话题"), Some(&cookie)).await;
    let list = r.json["sug_list"].as_array().expect("list");
    assert!(list.iter().all(|s| s["cha_name"] != json!("没有的话题")));

    assert_eq!(sb.get_json(&path("音乐"), None).await.status_code(), 8);
    for q in [
        "keyword=a&aid=2906",
        "keyword=a&source=challenge_create",
        "keyword=a&source=x&aid=2906",
        "keyword=&source=challenge_create&aid=2906",
    ] {
        let r = sb
            .get_json(
                &format!("/aweme/v1/search/challengesug/?{q}"),
                Some(&cookie),
            )
            .await;
        assert_eq!(r.status_code(), 2, "{q}");
    }
}

// ---------- inspection and lifecycle ----------

#[tokio::test]
async fn request_counts_cover_every_endpoint() {
    let sb = sb().await;
    let ready = sb.ready("main", b"video").await;
    sb.create("main", &form(&ready.params.vid, &ready.poster))
        .await;
    sb.get_json(
        "/web/api/media/aweme/post/?count=1",
        Some(&cookie_for("main")),
    )
    .await;
    sb.get_json("/aweme/v1/search/challengesug/?keyword=a", None)
        .await;
    sb.creds_reply("bad").await;
    let counts = sb.inspect("requests").await;
    assert_eq!(
        counts,
        json!({"credentials": 2, "upload_params": 1, "upload": 1, "upload_init": 0, "upload_part": 0, "upload_complete": 0, "commit": 1, "create": 1,
               "post_list": 1, "challenge_sug": 1})
    );
}

#[tokio::test]
async fn shutdown_stops_the_server() {
    let sb = sb().await;
    let base = sb.base.clone();
    sb.creds("main").await;
    sb.handle.shutdown().await;
    let err = reqwest::Client::new()
        .get(format!("{base}/web/api/media/upload/auth/"))
        .send()
        .await;
    assert!(err.is_err(), "server still answers");
}

#[tokio::test]
async fn serve_runs_until_its_shutdown_future() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(sandbox::serve(listener, SandboxOptions::default(), async {
        let _ = stopped.await;
    }));
    let r = send(
        reqwest::Client::new()
            .get(format!("http://{addr}/web/api/media/upload/auth/"))
            .header("Cookie", cookie_for("main")),
    )
    .await;
    assert_eq!(r.status_code(), 0);
    stop.send(()).expect("server waiting");
    server.await.expect("joined").expect("served");
}
