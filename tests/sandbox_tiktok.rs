//! The TikTok (Content Posting API) simulator, driven over real HTTP with plain reqwest
//! against a sandbox on 127.0.0.1:0: a correct client written here from the protocol page
//! (hex PKCE, the chunk arithmetic), then each rule broken to prove the simulator refuses
//! it with the documented HTTP status and error code. Time moves with `/__sandbox/advance`.

mod common;

use common::fixtures::{mp4_of_size, sha256_hex};
use dropcast::sandbox::{
    self, Fault, FaultAction, FaultStep, SandboxHandle, SandboxOptions, TiktokApp, TiktokOptions,
};
use reqwest::StatusCode;
use reqwest::header::{CONTENT_RANGE, CONTENT_TYPE, LOCATION};
use serde_json::{Value, json};

const KEY: &str = "awsandboxkey1";
const SECRET: &str = "sandbox-client-secret";
const REDIRECT: &str = "http://127.0.0.1:45123/callback/";
const ALL_SCOPES: &str = "user.info.basic,video.publish,video.upload";
const JSON: &str = "application/json; charset=UTF-8";
const MIB: u64 = 1024 * 1024;
/// The smallest chunk valid under both readings of "5 MB".
const CHUNK: u64 = 5 * MIB;

// ---------- a client written from the protocol page ----------

struct Sb {
    handle: SandboxHandle,
    http: reqwest::Client,
}

struct Reply {
    status: StatusCode,
    headers: reqwest::header::HeaderMap,
    text: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text)
            .unwrap_or_else(|_| panic!("not JSON ({}): {}", self.status, self.text))
    }

    /// The Content Posting `error.code`.
    fn code(&self) -> String {
        self.json()["error"]["code"]
            .as_str()
            .expect("error.code")
            .to_owned()
    }

    /// The OAuth `error`.
    fn oauth_error(&self) -> String {
        self.json()["error"].as_str().expect("error").to_owned()
    }

    /// Assert HTTP `status` and `error.code`.
    fn refused(&self, status: u16, code: &str) {
        assert_eq!(self.status.as_u16(), status, "{}", self.text);
        assert_eq!(self.code(), code, "{}", self.text);
    }

    fn ok(&self) -> Value {
        assert_eq!(self.status, StatusCode::OK, "{}", self.text);
        assert_eq!(self.code(), "ok", "{}", self.text);
        self.json()["data"].clone()
    }

    fn range(&self) -> &str {
        self.headers
            .get(CONTENT_RANGE)
            .and_then(|v| v.to_str().ok())
            .expect("Content-Range")
    }
}

async fn send(req: reqwest::RequestBuilder) -> Reply {
    let r = req.send().await.expect("an answer");
    Reply {
        status: r.status(),
        headers: r.headers().clone(),
        text: r.text().await.expect("body"),
    }
}

/// A PKCE pair: a verifier and the page's lower-case hex challenge.
fn pkce(seed: u8) -> (String, String) {
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~";
    let verifier: String = (0..64u32)
        .map(|i| alphabet[(i as usize * 7 + seed as usize * 13) % alphabet.len()] as char)
        .collect();
    let challenge = sha256_hex(verifier.as_bytes());
    (verifier, challenge)
}

/// The tokens of one authorization.
#[derive(Clone, Debug)]
struct Tokens {
    access: String,
    refresh: String,
    open_id: String,
}

fn query_of(url: &str) -> Vec<(String, String)> {
    let q = url.split_once('?').map_or("", |(_, q)| q);
    serde_urlencoded::from_str(q).expect("a query")
}

fn param(url: &str, name: &str) -> Option<String> {
    query_of(url)
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

impl Sb {
    async fn start(options: SandboxOptions) -> Sb {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .expect("bind");
        let handle = sandbox::start(listener, options).await.expect("sandbox");
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        Sb { handle, http }
    }

    async fn started() -> Sb {
        let tiktok = TiktokOptions {
            apps: vec![TiktokApp {
                client_key: KEY.into(),
                client_secret: SECRET.into(),
            }],
            ..TiktokOptions::default()
        };
        Sb::start(SandboxOptions {
            tiktok,
            ..SandboxOptions::default()
        })
        .await
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.handle.base_url())
    }

    fn authorize_url(&self, scope: &str, challenge: &str) -> String {
        let q = serde_urlencoded::to_string([
            ("client_key", KEY),
            ("response_type", "code"),
            ("scope", scope),
            ("redirect_uri", REDIRECT),
            ("state", "st4te"),
            ("code_challenge", challenge),
            ("code_challenge_method", "S256"),
        ])
        .expect("query");
        self.url(&format!("/v2/auth/authorize/?{q}"))
    }

    /// Approve as `username` (the first account if `None`); the redirect's address.
    async fn approve(&self, scope: &str, challenge: &str, username: Option<&str>) -> String {
        let who = username.unwrap_or("1");
        let url = format!(
            "{}&sandbox_approve={who}",
            self.authorize_url(scope, challenge)
        );
        let r = send(self.http.get(url)).await;
        assert_eq!(r.status, StatusCode::FOUND, "{}", r.text);
        let location = r.headers[LOCATION].to_str().expect("location").to_owned();
        assert!(location.starts_with(REDIRECT), "{location}");
        assert_eq!(param(&location, "state").as_deref(), Some("st4te"));
        location
    }

    async fn token(&self, form: &[(&str, &str)]) -> Reply {
        let body = serde_urlencoded::to_string(form).expect("form");
        send(
            self.http
                .post(self.url("/v2/oauth/token/"))
                .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(body),
        )
        .await
    }

    async fn redeem(&self, code: &str, verifier: &str) -> Reply {
        self.token(&[
            ("client_key", KEY),
            ("client_secret", SECRET),
            ("code", code),
            ("grant_type", "authorization_code"),
            ("redirect_uri", REDIRECT),
            ("code_verifier", verifier),
        ])
        .await
    }

    async fn refresh(&self, refresh: &str) -> Reply {
        self.token(&[
            ("client_key", KEY),
            ("client_secret", SECRET),
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh),
        ])
        .await
    }

    /// A whole login: authorize (approved as `username`) and redeem the code.
    async fn login_as(&self, scope: &str, username: Option<&str>) -> Tokens {
        let (verifier, challenge) = pkce(1);
        let location = self.approve(scope, &challenge, username).await;
        let code = param(&location, "code").expect("code");
        let r = self.redeem(&code, &verifier).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        tokens(&r.json())
    }

    async fn login(&self) -> Tokens {
        self.login_as(ALL_SCOPES, None).await
    }

    async fn api(&self, path: &str, access: &str, body: Option<Value>) -> Reply {
        let mut req = self
            .http
            .post(self.url(path))
            .bearer_auth(access)
            .header(CONTENT_TYPE, JSON);
        if let Some(b) = body {
            req = req.body(b.to_string());
        }
        send(req).await
    }

    async fn creator_info(&self, access: &str) -> Reply {
        self.api("/v2/post/publish/creator_info/query/", access, None)
            .await
    }

    async fn init(&self, access: &str, post_info: Value, size: u64, chunk: u64) -> Reply {
        let body = json!({"post_info": post_info, "source_info": source(size, chunk)});
        self.api("/v2/post/publish/video/init/", access, Some(body))
            .await
    }

    async fn status(&self, access: &str, publish_id: &str) -> Value {
        let body = json!({"publish_id": publish_id});
        self.api("/v2/post/publish/status/fetch/", access, Some(body))
            .await
            .ok()
    }

    /// `PUT` bytes `first..first + bytes.len()` of a `total`-byte video.
    async fn put(&self, upload_url: &str, bytes: &[u8], first: u64, total: u64) -> Reply {
        let last = first + bytes.len() as u64 - 1;
        send(
            self.http
                .put(upload_url)
                .header(CONTENT_TYPE, "video/mp4")
                .header(CONTENT_RANGE, format!("bytes {first}-{last}/{total}"))
                .body(bytes.to_vec()),
        )
        .await
    }

    /// Send every chunk in order; the last answer must be 201.
    async fn upload_all(&self, upload_url: &str, video: &[u8], chunk: u64) {
        let total = video.len() as u64;
        let n = (total / chunk).max(1);
        for i in 0..n {
            let first = i * chunk;
            let end = if i + 1 == n { total } else { first + chunk };
            let r = self
                .put(
                    upload_url,
                    &video[first as usize..end as usize],
                    first,
                    total,
                )
                .await;
            let want = if i + 1 == n { 201 } else { 206 };
            assert_eq!(r.status.as_u16(), want, "chunk {i}: {}", r.text);
            assert_eq!(r.range(), format!("bytes 0-{}/{total}", end - 1));
        }
    }

    async fn advance(&self, seconds: u64) {
        let url = self.url(&format!("/__sandbox/advance?seconds={seconds}"));
        let r = send(self.http.post(url)).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    }

    async fn get(&self, path: &str) -> Value {
        let r = send(self.http.get(self.url(path))).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        r.json()
    }

    async fn inspect_post(&self, path: &str, body: Value) -> Value {
        let r = send(self.http.post(self.url(path)).json(&body)).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        r.json()
    }
}

fn tokens(v: &Value) -> Tokens {
    let s = |k: &str| {
        v[k].as_str()
            .unwrap_or_else(|| panic!("{k} in {v}"))
            .to_owned()
    };
    Tokens {
        access: s("access_token"),
        refresh: s("refresh_token"),
        open_id: s("open_id"),
    }
}

fn source(size: u64, chunk: u64) -> Value {
    json!({"source": "FILE_UPLOAD", "video_size": size, "chunk_size": chunk,
           "total_chunk_count": (size / chunk).max(1)})
}

/// `post_info` with `privacy` and every interaction off.
fn post_info(privacy: &str) -> Value {
    json!({"title": "funny #cat video @tiktok", "privacy_level": privacy,
           "disable_duet": true, "disable_comment": true, "disable_stitch": true,
           "video_cover_timestamp_ms": 1000, "brand_content_toggle": false,
           "brand_organic_toggle": false, "is_aigc": false})
}

/// The `chunk_size` for a video: whole under 5 MiB, else 5 MiB chunks.
fn chunk_for(size: u64) -> u64 {
    if size < CHUNK { size } else { CHUNK }
}

/// Init a direct post of `video` as `privacy`; its `(publish_id, upload_url)`.
async fn init_ok(sb: &Sb, access: &str, privacy: &str, video: &[u8]) -> (String, String) {
    let size = video.len() as u64;
    let d = sb
        .init(access, post_info(privacy), size, chunk_for(size))
        .await
        .ok();
    let s = |k: &str| d[k].as_str().expect(k).to_owned();
    (s("publish_id"), s("upload_url"))
}

/// `mp4_of_size(size)` whose `mvhd` says it lasts `seconds` (timescale 1000).
fn mp4_lasting(size: usize, seconds: u32) -> Vec<u8> {
    let mut v = mp4_of_size(size);
    // ftyp (28) + moov header (8) + mvhd header (8) + version/flags and times (12) + timescale.
    assert_eq!(&v[40..44], b"mvhd");
    v[60..64].copy_from_slice(&(seconds * 1000).to_be_bytes());
    v
}

// ---------- the happy path ----------

#[tokio::test]
async fn a_direct_post_from_authorize_to_public_id() {
    let sb = Sb::started().await;
    let t = sb.login().await;
    let info = sb.creator_info(&t.access).await.ok();
    assert_eq!(info["creator_username"], "dropcast_sandbox");
    assert_eq!(
        info["privacy_level_options"],
        json!(["PUBLIC_TO_EVERYONE", "MUTUAL_FOLLOW_FRIENDS", "SELF_ONLY"])
    );
    assert_eq!(info["max_video_post_duration_sec"], 300);

    let video = mp4_of_size(12_000_123);
    let (publish_id, upload_url) = init_ok(&sb, &t.access, "PUBLIC_TO_EVERYONE", &video).await;
    assert!(publish_id.len() <= 64 && upload_url.len() <= 256);
    let s = sb.status(&t.access, &publish_id).await;
    assert_eq!(s["status"], "PROCESSING_UPLOAD");
    assert_eq!(s["uploaded_bytes"], 0);

    sb.upload_all(&upload_url, &video, CHUNK).await;
    let s = sb.status(&t.access, &publish_id).await;
    assert_eq!(s["status"], "PROCESSING_UPLOAD", "still processing: {s}");
    assert_eq!(s["uploaded_bytes"], 12_000_123);
    sb.advance(2).await;
    let s = sb.status(&t.access, &publish_id).await;
    assert_eq!(s["status"], "PUBLISH_COMPLETE");
    assert_eq!(
        s["publicaly_available_post_id"],
        json!([]),
        "moderation first"
    );
    sb.advance(61).await;
    let s = sb.status(&t.access, &publish_id).await;
    let id = s["publicaly_available_post_id"][0]
        .as_u64()
        .expect("a u64 id");
    assert_eq!(id.to_string().len(), 19);

    let posts = sb.get("/__sandbox/tiktok/posts").await;
    let p = &posts[0];
    assert_eq!(p["publish_id"], publish_id.as_str());
    assert_eq!(p["sha256"], sha256_hex(&video).as_str());
    assert_eq!(p["size"], 12_000_123);
    assert_eq!(p["post_info"], post_info("PUBLIC_TO_EVERYONE"));
    assert_eq!(p["open_id"], t.open_id.as_str());
    assert_eq!(p["chunks"], json!({"0": 1, "1": 1}));
    assert_eq!(
        p["post_url"],
        format!("https://www.tiktok.com/@dropcast_sandbox/video/{id}").as_str()
    );
}

#[tokio::test]
async fn the_authorize_page_is_a_form_and_can_be_approved_without_a_browser() {
    let sb = Sb::started().await;
    let (verifier, challenge) = pkce(2);
    let url = sb.authorize_url(ALL_SCOPES, &challenge);
    let page = send(sb.http.get(&url)).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.text.contains("<form method=post"), "{}", page.text);

    // The form's answer, as a browser would send it.
    let mut form = query_of(&url);
    form.push(("sandbox_username".into(), "dropcast_private".into()));
    form.push(("sandbox_action".into(), "approve".into()));
    let r = send(
        sb.http
            .post(sb.url("/v2/auth/authorize/"))
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(serde_urlencoded::to_string(&form).expect("form")),
    )
    .await;
    assert_eq!(r.status, StatusCode::FOUND, "{}", r.text);
    let location = r.headers[LOCATION].to_str().expect("location");
    assert_eq!(param(location, "scopes").as_deref(), Some(ALL_SCOPES));
    let code = param(location, "code").expect("code");
    let t = tokens(&sb.redeem(&code, &verifier).await.json());
    let info = sb.creator_info(&t.access).await.ok();
    assert_eq!(info["creator_username"], "dropcast_private");
    assert_eq!(
        info["privacy_level_options"],
        json!(["FOLLOWER_OF_CREATOR", "MUTUAL_FOLLOW_FRIENDS", "SELF_ONLY"])
    );

    // The inspection endpoint answers the redirect; denying says access_denied.
    let a = sb
        .inspect_post("/__sandbox/tiktok/approve", json!({"url": url}))
        .await;
    let location = a["location"].as_str().expect("location");
    assert!(param(location, "code").is_some());
    let d = sb
        .inspect_post(
            "/__sandbox/tiktok/approve",
            json!({"url": url, "deny": true}),
        )
        .await;
    let location = d["location"].as_str().expect("location");
    assert_eq!(param(location, "error").as_deref(), Some("access_denied"));
    assert_eq!(param(location, "state").as_deref(), Some("st4te"));
}

// ---------- OAuth ----------

#[tokio::test]
async fn codes_need_their_hex_verifier_once_within_ten_minutes() {
    let sb = Sb::started().await;
    let (verifier, challenge) = pkce(3);
    let location = sb.approve(ALL_SCOPES, &challenge, None).await;
    let code = param(&location, "code").expect("code");
    assert!(
        location.contains("%21"),
        "the code needs URL-decoding: {location}"
    );

    let (other, _) = pkce(4);
    let r = sb.redeem(&code, &other).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.oauth_error(), "invalid_grant");
    // A code sent still URL-encoded is not the code.
    let raw = location
        .split("code=")
        .nth(1)
        .and_then(|s| s.split('&').next())
        .expect("raw code");
    assert_eq!(
        sb.redeem(raw, &verifier).await.oauth_error(),
        "invalid_grant"
    );
    // A wrong secret is the app's fault.
    let r = sb
        .token(&[
            ("client_key", KEY),
            ("client_secret", "nope"),
            ("code", &code),
            ("grant_type", "authorization_code"),
            ("redirect_uri", REDIRECT),
            ("code_verifier", &verifier),
        ])
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.oauth_error(), "invalid_client");

    let r = sb.redeem(&code, &verifier).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let body = r.json();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 7200);
    assert_eq!(body["refresh_expires_in"], 180 * 24 * 3600);
    assert_eq!(body["scope"], ALL_SCOPES);
    let again = sb.redeem(&code, &verifier).await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST);
    assert_eq!(again.oauth_error(), "invalid_grant");

    let location = sb.approve(ALL_SCOPES, &challenge, None).await;
    sb.advance(601).await;
    let late = sb
        .redeem(&param(&location, "code").expect("code"), &verifier)
        .await;
    assert_eq!(late.oauth_error(), "invalid_grant");
    assert!(late.text.contains("expired"), "{}", late.text);
}

#[tokio::test]
async fn a_base64url_challenge_is_refused_at_the_authorize_page() {
    let sb = Sb::started().await;
    // base64url of a SHA-256 (43 characters), as RFC 7636 would have it: not TikTok's hex.
    let url = format!(
        "{}&sandbox_approve=1",
        sb.authorize_url(ALL_SCOPES, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM")
    );
    let r = send(sb.http.get(url)).await;
    assert_eq!(r.status, StatusCode::FOUND);
    let location = r.headers[LOCATION].to_str().expect("location");
    assert_eq!(param(location, "error").as_deref(), Some("invalid_request"));
    // A redirect_uri that is not a loopback callback gets no redirect at all.
    let bad = sb
        .authorize_url(ALL_SCOPES, &pkce(1).1)
        .replace("%2Fcallback%2F", "%2Fother%2F");
    let r = send(sb.http.get(format!("{bad}&sandbox_approve=1"))).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.headers.get(LOCATION).is_none());
}

#[tokio::test]
async fn refresh_tokens_rotate_and_the_old_one_is_refused() {
    let sb = Sb::started().await;
    let first = sb.login().await;
    let r = sb.refresh(&first.refresh).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let second = tokens(&r.json());
    assert_ne!(second.refresh, first.refresh);
    assert_ne!(second.access, first.access);
    assert_eq!(second.open_id, first.open_id);

    let old = sb.refresh(&first.refresh).await;
    assert_eq!(old.status, StatusCode::BAD_REQUEST);
    assert_eq!(old.oauth_error(), "invalid_grant");
    // The access token issued before the refresh works until it expires (ours).
    sb.creator_info(&first.access).await.ok();
    let third = tokens(&sb.refresh(&second.refresh).await.json());
    sb.creator_info(&third.access).await.ok();

    let state = sb.get("/__sandbox/tiktok/tokens").await;
    let of = |t: &str| {
        state["refresh"]
            .as_array()
            .expect("list")
            .iter()
            .find(|r| r["token"] == t)
            .map(|r| r["state"].clone())
    };
    assert_eq!(of(&first.refresh), Some(json!("rotated")));
    assert_eq!(of(&third.refresh), Some(json!("live")));
}

#[tokio::test]
async fn an_expired_bearer_is_refused() {
    let sb = Sb::started().await;
    let t = sb.login().await;
    sb.creator_info(&t.access).await.ok();
    sb.advance(7200).await;
    sb.creator_info(&t.access)
        .await
        .refused(401, "access_token_invalid");
    // A refresh gives a live one; the inspection endpoint expires it on demand.
    let fresh = tokens(&sb.refresh(&t.refresh).await.json());
    sb.creator_info(&fresh.access).await.ok();
    let e = sb
        .inspect_post("/__sandbox/tiktok/expire", json!({"token": fresh.access}))
        .await;
    assert_eq!(e["expired"]["access"], 1);
    sb.creator_info(&fresh.access)
        .await
        .refused(401, "access_token_invalid");
    sb.creator_info("not-a-token")
        .await
        .refused(401, "access_token_invalid");
}

#[tokio::test]
async fn each_endpoint_needs_its_scope_and_the_json_content_type() {
    let sb = Sb::started().await;
    let t = sb.login_as("user.info.basic,video.upload", None).await;
    sb.creator_info(&t.access)
        .await
        .refused(401, "scope_not_authorized");
    sb.init(&t.access, post_info("SELF_ONLY"), 1000, 1000)
        .await
        .refused(401, "scope_not_authorized");
    let inbox = json!({"source_info": source(1000, 1000)});
    sb.api("/v2/post/publish/inbox/video/init/", &t.access, Some(inbox))
        .await
        .ok();

    let full = sb.login().await;
    let bare = send(
        sb.http
            .post(sb.url("/v2/post/publish/creator_info/query/"))
            .bearer_auth(&full.access),
    )
    .await;
    bare.refused(400, "invalid_param");
    let no_charset = send(
        sb.http
            .post(sb.url("/v2/post/publish/creator_info/query/"))
            .bearer_auth(&full.access)
            .header(CONTENT_TYPE, "application/json"),
    )
    .await;
    no_charset.refused(400, "invalid_param");
}

// ---------- init rules ----------

#[tokio::test]
async fn init_checks_the_creators_options_and_its_fields() {
    let sb = Sb::started().await;
    let private = sb.login_as(ALL_SCOPES, Some("dropcast_private")).await;
    sb.init(&private.access, post_info("PUBLIC_TO_EVERYONE"), 1000, 1000)
        .await
        .refused(403, "privacy_level_option_mismatch");
    // Duet and stitch are disabled on this account: turning them on is refused.
    let mut duet = post_info("SELF_ONLY");
    duet["disable_duet"] = json!(false);
    sb.init(&private.access, duet, 1000, 1000)
        .await
        .refused(400, "invalid_param");
    let mut missing = post_info("SELF_ONLY");
    missing
        .as_object_mut()
        .expect("map")
        .remove("privacy_level");
    sb.init(&private.access, missing, 1000, 1000)
        .await
        .refused(400, "invalid_param");
    let mut typo = post_info("SELF_ONLY");
    typo["disable_comments"] = json!(true);
    sb.init(&private.access, typo, 1000, 1000)
        .await
        .refused(400, "invalid_param");
    let mut long = post_info("SELF_ONLY");
    long["title"] = json!("😀".repeat(1101));
    sb.init(&private.access, long, 1000, 1000)
        .await
        .refused(400, "invalid_param");
    sb.init(
        &private.access,
        post_info("FOLLOWER_OF_CREATOR"),
        1000,
        1000,
    )
    .await
    .ok();

    // The chunk arithmetic of the page.
    let t = sb.login().await;
    let size = 50_000_123;
    let ceil = json!({"source": "FILE_UPLOAD", "video_size": size, "chunk_size": 10_000_000, "total_chunk_count": 6});
    let body = json!({"post_info": post_info("SELF_ONLY"), "source_info": ceil});
    sb.api("/v2/post/publish/video/init/", &t.access, Some(body))
        .await
        .refused(400, "invalid_param");
    sb.init(&t.access, post_info("SELF_ONLY"), size, 5_000_000)
        .await
        .refused(400, "invalid_param");
    sb.init(&t.access, post_info("SELF_ONLY"), 64_000_000, 64_000_000)
        .await
        .refused(400, "invalid_param");
    sb.init(&t.access, post_info("SELF_ONLY"), size, 10_000_000)
        .await
        .ok();
}

#[tokio::test]
async fn an_unaudited_app_posts_only_self_only_to_private_accounts() {
    let sb = Sb::started().await;
    let a = sb
        .inspect_post("/__sandbox/tiktok/app", json!({"audited": false}))
        .await;
    assert_eq!(a["audited"], false);
    let public = sb.login().await;
    let reason = "unaudited_client_can_only_post_to_private_accounts";
    sb.init(&public.access, post_info("PUBLIC_TO_EVERYONE"), 1000, 1000)
        .await
        .refused(403, reason);
    sb.init(&public.access, post_info("SELF_ONLY"), 1000, 1000)
        .await
        .refused(403, reason);
    let private = sb.login_as(ALL_SCOPES, Some("dropcast_private")).await;
    sb.init(
        &private.access,
        post_info("MUTUAL_FOLLOW_FRIENDS"),
        1000,
        1000,
    )
    .await
    .refused(403, reason);
    sb.init(&private.access, post_info("SELF_ONLY"), 1000, 1000)
        .await
        .ok();
}

#[tokio::test]
async fn a_video_longer_than_the_creators_maximum_fails_its_duration_check() {
    let sb = Sb::started().await;
    let t = sb.login().await;
    let video = mp4_lasting(300_000, 301);
    let (publish_id, upload_url) = init_ok(&sb, &t.access, "SELF_ONLY", &video).await;
    sb.upload_all(&upload_url, &video, video.len() as u64).await;
    sb.advance(2).await;
    let s = sb.status(&t.access, &publish_id).await;
    assert_eq!(s["status"], "FAILED");
    assert_eq!(s["fail_reason"], "duration_check_failed");
    assert!(
        sb.get("/__sandbox/tiktok/posts")
            .await
            .as_array()
            .expect("list")
            .is_empty()
    );

    // At the maximum it passes.
    let video = mp4_lasting(300_000, 300);
    let (publish_id, upload_url) = init_ok(&sb, &t.access, "SELF_ONLY", &video).await;
    sb.upload_all(&upload_url, &video, video.len() as u64).await;
    sb.advance(2).await;
    assert_eq!(
        sb.status(&t.access, &publish_id).await["status"],
        "PUBLISH_COMPLETE"
    );
}

// ---------- chunks ----------

#[tokio::test]
async fn chunks_go_in_order_with_their_exact_sizes() {
    let sb = Sb::started().await;
    let t = sb.login().await;
    let video = mp4_of_size(16_000_000); // 3 chunks: 5 MiB, 5 MiB, 5,514,240
    let total = video.len() as u64;
    let (publish_id, url) = init_ok(&sb, &t.access, "SELF_ONLY", &video).await;
    let chunk = |i: u64| {
        let first = i * CHUNK;
        let end = if i == 2 { total } else { first + CHUNK };
        (&video[first as usize..end as usize], first)
    };

    // Not a chunk of the layout: 400, nothing arrived.
    let r = sb.put(&url, &video[..1_000_000], 0, total).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert_eq!(r.range(), format!("bytes */{total}"));
    // Out of order: chunk 1 before chunk 0.
    let (b, first) = chunk(1);
    let r = sb.put(&url, b, first, total).await;
    assert_eq!(r.status, StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(r.range(), format!("bytes */{total}"));
    // Wrong Content-Type, wrong total.
    let (b, first) = chunk(0);
    let wrong_type = send(
        sb.http
            .put(&url)
            .header(CONTENT_TYPE, "application/octet-stream")
            .header(CONTENT_RANGE, format!("bytes 0-{}/{total}", CHUNK - 1))
            .body(b.to_vec()),
    )
    .await;
    assert_eq!(wrong_type.status, StatusCode::BAD_REQUEST);
    let r = sb.put(&url, b, first, total + 1).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);

    let r = sb.put(&url, b, first, total).await;
    assert_eq!(r.status, StatusCode::PARTIAL_CONTENT, "{}", r.text);
    assert_eq!(r.range(), format!("bytes 0-{}/{total}", CHUNK - 1));
    // A gap: chunk 2 after chunk 0 is a 416 saying what the server has.
    let (b, first) = chunk(2);
    let r = sb.put(&url, b, first, total).await;
    assert_eq!(r.status, StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(r.range(), format!("bytes 0-{}/{total}", CHUNK - 1));
    // A repeat of chunk 0 too.
    let (b, first) = chunk(0);
    let r = sb.put(&url, b, first, total).await;
    assert_eq!(r.status, StatusCode::RANGE_NOT_SATISFIABLE);
    // The last chunk without its remainder is not a chunk.
    let r = sb
        .put(&url, &video[..CHUNK as usize], 2 * CHUNK, total)
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);

    for i in 1..3 {
        let (b, first) = chunk(i);
        let r = sb.put(&url, b, first, total).await;
        let want = if i == 2 { 201 } else { 206 };
        assert_eq!(r.status.as_u16(), want, "{}", r.text);
    }
    assert_eq!(
        sb.status(&t.access, &publish_id).await["uploaded_bytes"],
        total
    );
    let posts = sb.get("/__sandbox/tiktok/publishes").await;
    assert_eq!(posts[0]["sha256"], sha256_hex(&video).as_str());
    assert_eq!(posts[0]["chunks"], json!({"0": 1, "1": 1, "2": 1}));
}

#[tokio::test]
async fn an_upload_url_expires_after_an_hour() {
    let sb = Sb::started().await;
    let t = sb.login().await;
    let video = mp4_of_size(11_000_000);
    let total = video.len() as u64;
    let (publish_id, url) = init_ok(&sb, &t.access, "SELF_ONLY", &video).await;
    let r = sb.put(&url, &video[..CHUNK as usize], 0, total).await;
    assert_eq!(r.status, StatusCode::PARTIAL_CONTENT);
    sb.advance(3600).await;
    let r = sb.put(&url, &video[CHUNK as usize..], CHUNK, total).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    assert_eq!(r.range(), format!("bytes 0-{}/{total}", CHUNK - 1));
    let s = sb.status(&t.access, &publish_id).await;
    assert_eq!(s["status"], "FAILED");
    assert_eq!(s["fail_reason"], "internal");
    // An upload_url whose query was cut is no upload.
    let cut = url.split('&').next().expect("upload_id part");
    let r = sb.put(cut, &video[..CHUNK as usize], 0, total).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = sb
        .put(&sb.url("/tiktok/upload/video/?upload_id=nope"), b"x", 0, 1)
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_chunk_whose_answer_was_lost_is_found_by_its_416() {
    let sb = Sb::started().await;
    let t = sb.login().await;
    let video = mp4_of_size(11_000_000);
    let total = video.len() as u64;
    let (publish_id, url) = init_ok(&sb, &t.access, "SELF_ONLY", &video).await;
    sb.handle
        .inject(Fault::new(FaultStep::TiktokChunk, FaultAction::CutAnswer).times(1));
    let lost = sb
        .http
        .put(&url)
        .header(CONTENT_TYPE, "video/mp4")
        .header(CONTENT_RANGE, format!("bytes 0-{}/{total}", CHUNK - 1))
        .body(video[..CHUNK as usize].to_vec())
        .send()
        .await;
    let failed = match lost {
        Err(_) => true,
        Ok(r) => r.text().await.is_err(),
    };
    assert!(failed, "the answer was cut off");
    let again = sb.put(&url, &video[..CHUNK as usize], 0, total).await;
    assert_eq!(again.status, StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(again.range(), format!("bytes 0-{}/{total}", CHUNK - 1));
    let r = sb.put(&url, &video[CHUNK as usize..], CHUNK, total).await;
    assert_eq!(r.status, StatusCode::CREATED);
    sb.advance(2).await;
    assert_eq!(
        sb.status(&t.access, &publish_id).await["status"],
        "PUBLISH_COMPLETE"
    );
    let requests = sb.get("/__sandbox/tiktok/requests").await;
    assert_eq!(requests["chunk"], 3);

    // A status fault answers in TikTok's envelope.
    sb.handle.inject(
        Fault::new(
            FaultStep::TiktokStatus,
            FaultAction::Status {
                status: 429,
                retry_after: None,
                body: None,
            },
        )
        .times(1),
    );
    let body = json!({"publish_id": publish_id});
    sb.api("/v2/post/publish/status/fetch/", &t.access, Some(body))
        .await
        .refused(429, "rate_limit_exceeded");
}

// ---------- limits ----------

#[tokio::test]
async fn rate_limits_per_token_and_minute() {
    let sb = Sb::started().await;
    let t = sb.login().await;
    for _ in 0..20 {
        sb.creator_info(&t.access).await.ok();
    }
    sb.creator_info(&t.access)
        .await
        .refused(429, "rate_limit_exceeded");
    // Another token of the same user has its own window.
    let other = tokens(&sb.refresh(&t.refresh).await.json());
    sb.creator_info(&other.access).await.ok();
    sb.advance(61).await;
    sb.creator_info(&t.access).await.ok();

    for _ in 0..6 {
        sb.init(&t.access, post_info("SELF_ONLY"), 1000, 1000)
            .await
            .ok();
    }
    sb.init(&t.access, post_info("SELF_ONLY"), 1000, 1000)
        .await
        .refused(429, "rate_limit_exceeded");
    sb.advance(61).await;
    sb.init(&t.access, post_info("SELF_ONLY"), 1000, 1000)
        .await
        .ok();
}

#[tokio::test]
async fn the_daily_caps_and_cannot_post_now() {
    let sb = Sb::started().await;
    let t = sb.login().await;
    for i in 0..15 {
        if i % 6 == 5 {
            sb.advance(61).await;
        }
        sb.init(&t.access, post_info("SELF_ONLY"), 1000, 1000)
            .await
            .ok();
    }
    sb.advance(61).await;
    sb.init(&t.access, post_info("SELF_ONLY"), 1000, 1000)
        .await
        .refused(403, "spam_risk_too_many_posts");
    let r = sb.creator_info(&t.access).await;
    assert_eq!(r.status, StatusCode::OK, "HTTP 200 says cannot post now");
    assert_eq!(r.code(), "spam_risk_too_many_posts");
    sb.advance(24 * 3600).await;
    let t = tokens(&sb.refresh(&t.refresh).await.json());
    sb.creator_info(&t.access).await.ok();

    sb.inspect_post(
        "/__sandbox/tiktok/creator",
        json!({"username": "dropcast_sandbox", "cannot_post": "spam_risk_user_banned_from_posting"}),
    )
    .await;
    let r = sb.creator_info(&t.access).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.code(), "spam_risk_user_banned_from_posting");
    sb.init(&t.access, post_info("SELF_ONLY"), 1000, 1000)
        .await
        .refused(403, "spam_risk_user_banned_from_posting");
    sb.inspect_post(
        "/__sandbox/tiktok/creator",
        json!({"username": "dropcast_sandbox", "cannot_post": null}),
    )
    .await;
    sb.creator_info(&t.access).await.ok();
}

// ---------- inbox ----------

#[tokio::test]
async fn an_inbox_upload_ends_in_the_creators_inbox() {
    let sb = Sb::started().await;
    let t = sb.login_as("user.info.basic,video.upload", None).await;
    let video = mp4_of_size(300_000);
    let size = video.len() as u64;
    let path = "/v2/post/publish/inbox/video/init/";
    let with_post_info =
        json!({"post_info": post_info("SELF_ONLY"), "source_info": source(size, size)});
    sb.api(path, &t.access, Some(with_post_info))
        .await
        .refused(400, "invalid_param");
    let body = json!({"source_info": source(size, size)});
    let d = sb.api(path, &t.access, Some(body.clone())).await.ok();
    let (publish_id, url) = (
        d["publish_id"].as_str().expect("id"),
        d["upload_url"].as_str().expect("url"),
    );
    sb.upload_all(url, &video, size).await;
    sb.advance(2).await;
    let s = sb.status(&t.access, publish_id).await;
    assert_eq!(s["status"], "SEND_TO_USER_INBOX");
    let posts = sb.get("/__sandbox/tiktok/posts").await;
    assert_eq!(posts[0]["mode"], "inbox");
    assert_eq!(posts[0]["sha256"], sha256_hex(&video).as_str());
    assert_eq!(posts[0]["post_info"], Value::Null);

    for _ in 0..4 {
        sb.api(path, &t.access, Some(body.clone())).await.ok();
    }
    sb.advance(61).await; // six calls this minute already, the refused one included
    sb.api(path, &t.access, Some(body))
        .await
        .refused(403, "spam_risk_too_many_pending_share");
}

#[tokio::test]
async fn issued_tokens_are_listed_as_secrets() {
    let sb = Sb::started().await;
    let t = sb.login().await;
    let secrets = sb.get("/__sandbox/secrets").await;
    let all: Vec<&str> = secrets
        .as_array()
        .expect("list")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for s in [t.access.as_str(), t.refresh.as_str(), SECRET] {
        assert!(all.contains(&s), "{s} is listed");
    }
}

// Regression (issue 12 item 7): tokens issued by one simulator (one `platform.sandbox: true` process) were unknown to the next.
#[tokio::test]
async fn tokens_of_an_earlier_simulator_are_honoured_and_forged_ones_are_not() {
    let first = Sb::started().await;
    let t = first.login().await;
    let creator = first.creator_info(&t.access).await.ok();

    let second = Sb::started().await;
    let info = second.creator_info(&t.access).await.ok();
    assert_eq!(info["creator_username"], creator["creator_username"]);
    // A forged token (one character of its sealed grant changed) is unknown.
    let mut forged = t.access.clone().into_bytes();
    let at = forged.iter().position(|&b| b == b'.').unwrap() + 3;
    forged[at] = if forged[at] == b'1' { b'2' } else { b'1' };
    let forged = String::from_utf8(forged).unwrap();
    second
        .creator_info(&forged)
        .await
        .refused(401, "access_token_invalid");

    // The earlier refresh token rotates here, and then this simulator refuses it.
    let rotated = tokens(&second.refresh(&t.refresh).await.json());
    assert_ne!(rotated.refresh, t.refresh);
    assert_eq!(
        second.refresh(&t.refresh).await.oauth_error(),
        "invalid_grant"
    );
    second.creator_info(&rotated.access).await.ok();
}
