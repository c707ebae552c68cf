//! The ImageX answers sorted and read (§12), and the three requests' shapes against the
//! fake: query, SigV4 scope, the upload's headers and streamed bytes, the commit's body.

use super::*;
use crate::platform::douyin_creator::fake::{self, IMAGE_URI};

fn reply(status: u16, body: &str) -> Reply {
    Reply {
        status: reqwest::StatusCode::from_u16(status).unwrap(),
        retry_after: None,
        body: Bytes::from(body.to_owned()),
    }
}

const OK_UPLOAD: &str =
    r#"{"success":0,"error":{"code":200,"error":"Success"},"payload":{"hash":"0000abcd"}}"#;

#[test]
fn upload_answers_sort_into_the_classes() {
    assert!(upload_answer(&reply(200, OK_UPLOAD), "0000abcd", "A").is_ok());
    let class = |status, body: &str| {
        upload_answer(&reply(status, body), "0000abcd", "IMGAUTH")
            .err()
            .map(|e| e.class())
    };
    assert_eq!(class(401, "{}"), Some("auth_expired"));
    assert_eq!(class(403, ""), Some("auth_expired"));
    assert_eq!(class(503, ""), Some("transient"));
    assert_eq!(class(429, ""), Some("rate_limited"));
    let refused = r#"{"success":1,"error":{"code":4001,"error":"bad crc for IMGAUTH"}}"#;
    assert_eq!(class(400, refused), Some("rejected"));
    assert_eq!(class(200, refused), Some("rejected"));
    let e = upload_answer(&reply(400, refused), "0000abcd", "IMGAUTH").unwrap_err();
    assert!(
        !e.to_string().contains("IMGAUTH"),
        "the Auth is never quoted: {e}"
    );
    let other_crc = OK_UPLOAD.replace("0000abcd", "ffffffff");
    assert_eq!(class(200, &other_crc), Some("rejected"));
    assert_eq!(class(200, "not json"), Some("rejected"));
}

#[test]
fn the_commit_gives_the_uri_and_the_plugins_size() {
    let parse = |json: &str| {
        let result: wire::ImageCommitResult = serde_json::from_str(json).unwrap();
        committed_image(Call::ImageCommit, result)
    };
    let got = parse(
        r#"{"Results":[{"Uri":"tos-cn-i-x/a","UriStatus":2000}],
            "PluginResult":[{"ImageUri":"tos-cn-i-x/a","ImageWidth":720,"ImageHeight":1280}]}"#,
    )
    .unwrap();
    assert_eq!(got, ("tos-cn-i-x/a".to_owned(), Some(720), Some(1280)));
    // No PluginResult: no size (create_v2 then falls back to the video's).
    let got = parse(r#"{"Results":[{"Uri":"u"}]}"#).unwrap();
    assert_eq!(got, ("u".to_owned(), None, None));
    let bad = parse(r#"{"Results":[{"Uri":"u","UriStatus":4001}]}"#).unwrap_err();
    assert_eq!(bad.class(), "rejected");
    assert_eq!(parse(r#"{"Results":[]}"#).unwrap_err().class(), "rejected");
    assert_eq!(
        parse(r#"{"Results":[{"Uri":""}]}"#).unwrap_err().class(),
        "rejected"
    );
}

#[test]
fn a_slot_must_make_a_plain_upload_url() {
    let slot = |host: &str, uri: &str| {
        ImageSlot::new("http", host, uri.into(), "A".into(), "S".into()).map(|s| s.url)
    };
    assert_eq!(
        slot("h:1", "tos-cn-i-x/ab").unwrap().as_str(),
        "http://h:1/tos-cn-i-x/ab"
    );
    assert!(slot("h/x", "a/b").is_err());
    assert!(slot("h", "/a").is_err());
    assert!(slot("h", "a/../b").is_err());
    assert!(slot("h", "a b").is_err());
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

#[tokio::test]
async fn the_three_requests_have_their_shapes_and_the_bytes_arrive() {
    let (fake, client) = fake::start().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("Cover.PNG");
    let data: Vec<u8> = (0..3000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(&path, &data).unwrap();
    let creds = crate::platform::douyin_creator::sts::tests::credentials();
    let file = CoverFile::open(&path).await.unwrap();
    let cover = client.upload_cover(&creds, &file).await.unwrap();
    assert_eq!(cover.cover_uri, IMAGE_URI);
    assert_eq!(cover.size(), Some((720, 1280)));
    assert_eq!(cover.cover_file, "Cover.PNG");
    assert_eq!(cover.cover_bytes, 3000);
    use sha2::Digest;
    let sha = base16ct::lower::encode_string(&sha2::Sha256::digest(&data));
    assert_eq!(cover.cover_sha256, sha);

    let seen = fake.images.lock().unwrap().clone();
    let calls: Vec<&str> = seen.iter().map(|s| s.0.as_str()).collect();
    assert_eq!(calls, ["image_apply", "image_put", "image_commit"]);
    let (_, target, headers, _) = &seen[0];
    assert_eq!(
        target,
        "/?Action=ApplyImageUpload&Version=2018-08-01&ServiceId=jm8ajry58r&UploadNum=1&FileExtension=.png"
    );
    let auth = header(headers, "authorization").unwrap();
    assert!(auth.contains("/cn-north-1/imagex/aws4_request"), "{auth}");
    assert!(header(headers, "x-amz-security-token").is_some());
    let (_, target, headers, body) = &seen[1];
    assert_eq!(target, &format!("/{IMAGE_URI}"));
    assert_eq!(header(headers, "authorization"), Some("IMGAUTH"));
    assert_eq!(
        header(headers, "content-crc32"),
        Some(format!("{:08x}", crc32fast::hash(&data)).as_str())
    );
    assert_eq!(header(headers, "content-length"), Some("3000"));
    assert_eq!(&body[..], &data[..]);
    let (_, target, headers, body) = &seen[2];
    assert_eq!(
        target,
        "/?Action=CommitImageUpload&Version=2018-08-01&ServiceId=jm8ajry58r"
    );
    assert!(
        header(headers, "authorization")
            .unwrap()
            .contains("/imagex/")
    );
    let body: serde_json::Value = serde_json::from_slice(body).unwrap();
    assert_eq!(body, serde_json::json!({"SessionKey": "isk"}));
}

#[tokio::test]
async fn an_expired_image_auth_applies_again_once() {
    let (fake, client) = fake::start().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.jpg");
    std::fs::write(&path, b"\xff\xd8\xff\xe0jpeg").unwrap();
    let creds = crate::platform::douyin_creator::sts::tests::credentials();
    let file = CoverFile::open(&path).await.unwrap();
    fake.fail("image_put", 401, serde_json::json!({"success": 1}));
    client.upload_cover(&creds, &file).await.unwrap();
    assert_eq!((fake.count("image_apply"), fake.count("image_put")), (2, 2));
    fake.fail("image_put", 403, serde_json::json!({}));
    fake.fail("image_put", 403, serde_json::json!({}));
    let e = client.upload_cover(&creds, &file).await.unwrap_err();
    assert_eq!(e.class(), "auth_expired");
}
