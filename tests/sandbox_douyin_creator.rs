//! The douyin (creator center) simulator, driven over real HTTP with plain reqwest against a
//! sandbox on 127.0.0.1:0: a correct client written here (the page signature computed with
//! hmac from the secret the upload page exposes, SigV4 from the aws-sigv4 crate), then each
//! rule broken to prove the simulator refuses what it must and accepts what it must.

mod common;

use std::time::SystemTime;

use common::fixtures::{crc_hex, mp4_of_size, sha256_hex};
use dropcast::sandbox::{self, SandboxHandle, SandboxOptions};
use hmac::{Hmac, KeyInit, Mac};
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sha2::Sha256;

const MIB: usize = 1024 * 1024;
const PART: usize = 5 * MIB;
const CREATE: &str = "/web/api/media/aweme/create_v2/?read_aid=2906&aid=1128&cookie_enabled=true&browser_language=zh-CN&support_h265=1";

// ---------- a client written from the protocol page ----------

struct Sb {
    handle: SandboxHandle,
    http: reqwest::Client,
}

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
    start(SandboxOptions::default()).await
}

/// An answer: status, headers, body as text.
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

    fn status_code(&self) -> i64 {
        self.json()["status_code"].as_i64().expect("status_code")
    }

    /// An empty 403: the page's guard refused it.
    fn guard_refused(&self) {
        assert_eq!(self.status, StatusCode::FORBIDDEN, "{}", self.text);
        assert!(self.text.is_empty(), "an empty 403, got {}", self.text);
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

/// Text between `start` and the next `end` in `s`.
fn between<'a>(s: &'a str, start: &str, end: &str) -> &'a str {
    let from = s
        .find(start)
        .unwrap_or_else(|| panic!("{start} not in {s}"))
        + start.len();
    let len = s[from..].find(end).expect("end");
    &s[from..from + len]
}

fn b64_decode(s: &str) -> Vec<u8> {
    let val = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => panic!("not base64: {c}"),
    };
    let bytes: Vec<u8> = s.bytes().filter(|&c| c != b'=').map(val).collect();
    let mut out = Vec::new();
    for chunk in bytes.chunks(4) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &v)| n | (u32::from(v) << (18 - 6 * i)));
        out.extend_from_slice(&n.to_be_bytes()[1..chunk.len()]);
    }
    out
}

/// One logged-in browser with one loaded upload page.
#[derive(Clone)]
struct Page {
    cookie: String,
    id: String,
    secret: String,
}

/// STS credentials from step 1.
struct Sts {
    ak: String,
    secret: String,
    token: String,
    uid: String,
}

/// An upload slot from step 2.
struct Slot {
    vid: String,
    host: String,
    store_uri: String,
    auth: String,
    session_key: String,
}

fn hmac_hex(secret: &str, text: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes()).expect("key");
    mac.update(text);
    base16ct::lower::encode_string(&mac.finalize().into_bytes())
}

impl Sb {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.handle.base_url())
    }

    async fn get(&self, path: &str) -> Reply {
        send(self.http.get(self.url(path))).await
    }

    async fn post_json(&self, path: &str, body: Value) -> Reply {
        send(self.http.post(self.url(path)).json(&body)).await
    }

    /// Open `/login`: the token, after checking the QR code really says it.
    async fn login_token(&self) -> String {
        let page = self.get("/login").await;
        assert_eq!(page.status, StatusCode::OK);
        let token = between(&page.text, "data-token=\"", "\"").to_owned();
        let png = b64_decode(between(
            &page.text,
            "<div id=\"animate_qrcode_container\"><img id=\"qrcode_img\" alt=\"QR code\" src=\"data:image/png;base64,",
            "\"",
        ));
        let img = image::load_from_memory(&png).expect("a PNG").to_luma8();
        let mut prepared = rqrr::PreparedImage::prepare(img);
        let grids = prepared.detect_grids();
        assert_eq!(grids.len(), 1, "one QR code");
        let (_, text) = grids[0].decode().expect("decodes");
        assert_eq!(text, format!("dropcast-sandbox-login:{token}"));
        token
    }

    async fn poll(&self, token: &str) -> Reply {
        self.get(&format!("/login/state?token={token}")).await
    }

    /// Log in by scanning a QR code as `uid`; the `sessionid=…` cookie.
    async fn login(&self, uid: &str) -> String {
        let token = self.login_token().await;
        let scan = self
            .post_json(
                "/__sandbox/douyin/login/scan",
                json!({"token": token, "uid": uid, "nickname": "小明"}),
            )
            .await;
        assert_eq!(scan.status, StatusCode::OK, "{}", scan.text);
        assert_eq!(self.poll(&token).await.json()["state"], "scanned");
        let confirmed = self.poll(&token).await;
        assert_eq!(confirmed.json()["state"], "confirmed");
        cookie_of(&confirmed)
    }

    /// Load the upload page with `cookie`: its id and secret, read from its HTML.
    async fn load_page(&self, cookie: &str) -> Page {
        let r = send(
            self.http
                .get(self.url("/creator-micro/content/upload"))
                .header(COOKIE, cookie),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        assert!(r.text.contains("window.__dropcastReady = true"));
        Page {
            cookie: cookie.to_owned(),
            id: between(&r.text, "data-page=\"", "\"").to_owned(),
            secret: between(&r.text, "data-secret=\"", "\"").to_owned(),
        }
    }

    async fn logged_in_page(&self, uid: &str) -> Page {
        let cookie = self.login(uid).await;
        self.load_page(&cookie).await
    }

    /// A request as the page's fetch wrapper sends it.
    fn in_page(
        &self,
        page: &Page,
        method: Method,
        path_and_query: &str,
        body: &str,
    ) -> reqwest::RequestBuilder {
        let text = format!("{}\n{path_and_query}\n{body}", method.as_str());
        self.http
            .request(method, self.url(path_and_query))
            .header(COOKIE, &page.cookie)
            .header("x-dropcast-page", &page.id)
            .header("x-dropcast-sign", hmac_hex(&page.secret, text.as_bytes()))
            .header("content-type", "application/json")
            .body(body.to_owned())
    }

    async fn sts(&self, page: &Page) -> Sts {
        let r = send(self.in_page(page, Method::GET, "/web/api/media/upload/auth/v5/", "")).await;
        assert_eq!(r.status_code(), 0, "{}", r.text);
        let auth: Value = serde_json::from_str(r.json()["auth"].as_str().expect("auth string"))
            .expect("auth JSON");
        let token = auth["SessionToken"].as_str().expect("token").to_owned();
        let inner: Value =
            serde_json::from_slice(&b64_decode(token.strip_prefix("STS2").expect("STS2")))
                .expect("inner");
        let policy: Value = serde_json::from_str(inner["PolicyString"].as_str().expect("policy"))
            .expect("policy JSON");
        let cond: Value = serde_json::from_str(
            policy["Statement"][0]["Condition"]
                .as_str()
                .expect("condition"),
        )
        .expect("cond");
        let expires = auth["ExpiredTime"].as_str().expect("ExpiredTime");
        time::OffsetDateTime::parse(expires, &time::format_description::well_known::Rfc3339)
            .expect("RFC 3339");
        Sts {
            ak: auth["AccessKeyID"].as_str().expect("ak").to_owned(),
            secret: auth["SecretAccessKey"].as_str().expect("secret").to_owned(),
            token,
            uid: cond["UserId"].as_str().expect("UserId").to_owned(),
        }
    }

    /// A VOD request signed with SigV4 (aws-sigv4, as a client would); `tweak` may change
    /// the signed request before it goes.
    async fn vod(
        &self,
        sts: &Sts,
        region: &str,
        method: Method,
        query: &str,
        body: &str,
        tweak: impl FnOnce(&mut reqwest::Request),
    ) -> Reply {
        self.signed(sts, (region, "vod"), method, query, body, tweak)
            .await
    }

    /// A request to `/?{query}` signed with SigV4 for `(region, service)`.
    async fn signed(
        &self,
        sts: &Sts,
        (region, service): (&str, &str),
        method: Method,
        query: &str,
        body: &str,
        tweak: impl FnOnce(&mut reqwest::Request),
    ) -> Reply {
        use aws_credential_types::Credentials;
        use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
        use aws_sigv4::sign::v4;
        let identity =
            Credentials::new(&sts.ak, &sts.secret, Some(sts.token.clone()), None, "test").into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(region)
            .name(service)
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .expect("params")
            .into();
        let url = self.url(&format!("/?{query}"));
        let headers = [("content-type", "application/json")];
        let signable = SignableRequest::new(
            method.as_str(),
            &url,
            headers.into_iter(),
            SignableBody::Bytes(body.as_bytes()),
        )
        .expect("signable");
        let (instructions, _) = sign(signable, &params).expect("signs").into_parts();
        let mut req = self
            .http
            .request(method, &url)
            .header("content-type", "application/json")
            .body(body.to_owned());
        for (k, v) in instructions.headers() {
            req = req.header(k, v);
        }
        let mut built = req.build().expect("request");
        tweak(&mut built);
        let r = self.http.execute(built).await.expect("an answer");
        Reply {
            status: r.status(),
            headers: r.headers().clone(),
            text: r.text().await.expect("body"),
        }
    }

    async fn apply(&self, sts: &Sts, size: usize) -> Slot {
        let q = format!(
            "Action=ApplyUploadInner&Version=2020-11-19&SpaceName=aweme&FileType=video&IsInner=1&FileSize={size}"
        );
        let r = self
            .vod(sts, "cn-north-1", Method::GET, &q, "", |_| {})
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        let node = &r.json()["Result"]["InnerUploadAddress"]["UploadNodes"][0];
        Slot {
            vid: node["Vid"].as_str().expect("Vid").to_owned(),
            host: node["UploadHost"].as_str().expect("host").to_owned(),
            store_uri: node["StoreInfos"][0]["StoreUri"]
                .as_str()
                .expect("uri")
                .to_owned(),
            auth: node["StoreInfos"][0]["Auth"]
                .as_str()
                .expect("Auth")
                .to_owned(),
            session_key: node["SessionKey"].as_str().expect("key").to_owned(),
        }
    }

    fn tos(&self, slot: &Slot, uid: &str, query: &str) -> reqwest::RequestBuilder {
        let url = format!("http://{}/upload/v1/{}?{query}", slot.host, slot.store_uri);
        self.http
            .post(url)
            .header("authorization", &slot.auth)
            .header("x-storage-u", uid)
    }

    async fn tos_init(&self, slot: &Slot, uid: &str) -> String {
        let r = send(self.tos(slot, uid, "uploadmode=part&phase=init")).await;
        assert_eq!(r.json()["code"], 2000, "{}", r.text);
        r.json()["data"]["uploadid"]
            .as_str()
            .expect("uploadid")
            .to_owned()
    }

    async fn tos_part(&self, slot: &Slot, uid: &str, id: &str, n: usize, bytes: &[u8]) -> Reply {
        let q = format!("uploadid={id}&part_number={n}&phase=transfer");
        let req = self
            .tos(slot, uid, &q)
            .header("content-type", "application/octet-stream")
            .header("content-crc32", crc_hex(bytes))
            .body(bytes.to_vec());
        send(req).await
    }

    async fn tos_finish(&self, slot: &Slot, uid: &str, id: &str, list: &str) -> Reply {
        let q = format!("uploadmode=part&phase=finish&uploadid={id}");
        send(
            self.tos(slot, uid, &q)
                .header("content-type", "text/plain;charset=UTF-8")
                .body(list.to_owned()),
        )
        .await
    }

    async fn commit(&self, sts: &Sts, slot: &Slot) -> Reply {
        let body = json!({"SessionKey": slot.session_key, "Functions": [{"name": "GetMeta"}, {"name": "Snapshot", "input": {"SnapshotTime": 0}}]});
        self.vod(
            sts,
            "cn-north-1",
            Method::POST,
            "Action=CommitUploadInner&Version=2020-11-19&SpaceName=aweme",
            &body.to_string(),
            |_| {},
        )
        .await
    }

    /// Steps 1–4 for `bytes` (parts in parallel): the slot and the commit's poster.
    async fn uploaded(&self, page: &Page, bytes: &[u8]) -> (Slot, String) {
        let sts = self.sts(page).await;
        let slot = self.apply(&sts, bytes.len()).await;
        let id = self.tos_init(&slot, &sts.uid).await;
        let parts: Vec<&[u8]> = bytes.chunks(PART).collect();
        let sends = parts
            .iter()
            .enumerate()
            .map(|(i, p)| self.tos_part(&slot, &sts.uid, &id, i + 1, p));
        for r in futures_util::future::join_all(sends).await {
            assert_eq!(r.json()["code"], 2000, "{}", r.text);
        }
        let list: Vec<String> = parts
            .iter()
            .enumerate()
            .map(|(i, p)| format!("{}:{}", i + 1, crc_hex(p)))
            .collect();
        let r = self.tos_finish(&slot, &sts.uid, &id, &list.join(",")).await;
        assert_eq!(
            r.json()["data"]["key"],
            slot.store_uri.as_str(),
            "{}",
            r.text
        );
        let c = self.commit(&sts, &slot).await;
        assert_eq!(c.status, StatusCode::OK, "{}", c.text);
        let result = &c.json()["Result"]["Results"][0];
        assert_eq!(result["Vid"], slot.vid.as_str());
        let poster = result["PosterUri"].as_str().expect("poster").to_owned();
        (slot, poster)
    }

    async fn create(&self, page: &Page, body: &Value) -> Reply {
        send(self.in_page(page, Method::POST, CREATE, &body.to_string())).await
    }

    async fn posts(&self) -> Vec<Value> {
        self.get("/__sandbox/douyin/posts")
            .await
            .json()
            .as_array()
            .expect("list")
            .clone()
    }
}

fn cookie_of(r: &Reply) -> String {
    let set = r
        .headers
        .get(SET_COOKIE)
        .expect("Set-Cookie")
        .to_str()
        .expect("ascii");
    assert!(set.contains("Path=/") && set.contains("HttpOnly"), "{set}");
    set.split(';').next().expect("pair").to_owned()
}

/// A create_v2 body as the page says, for `text` with its spans.
fn create_body(vid: &str, poster: &str, text: &str, spans: Value) -> Value {
    json!({"item": {
        "common": {"text": text, "caption": text, "item_title": "标题",
            "text_extra": spans.to_string(), "challenges": "[]", "mentions": "[]",
            "activity": "[]", "hashtag_source": "", "hot_sentence": "", "interaction_stickers": "[]",
            "visibility_type": 0, "download": 0, "timing": 0,
            "creation_id": "0123456789abcdef0123456789abcdef", "media_type": 4,
            "video_id": vid, "music_source": 0, "music_id": null},
        "cover": {"poster": poster, "poster_delay": 0, "custom_cover_image_width": 1080,
            "custom_cover_image_height": 1920, "cover_tools_info": "{}", "cover_tools_extend_info": "{}"},
        "mix": {}, "anchor": {}, "sync": {"should_sync": false, "sync_to_toutiao": 0},
        "open_platform": {}, "assistant": {"is_preview": 0, "is_post_assistant": 1},
        "declare": {"user_declare_info": "{}"}}})
}

fn tag(start: u32, end: u32, name: &str) -> Value {
    json!({"start": start, "end": end, "type": 1, "hashtag_name": name, "hashtag_id": "0", "user_id": ""})
}

fn item_id(r: &Reply) -> String {
    let j = r.json();
    assert_eq!(j["status_code"], 0, "{}", r.text);
    j.get("item_id")
        .or_else(|| j.get("aweme_id"))
        .and_then(Value::as_str)
        .expect("item_id or aweme_id")
        .to_owned()
}

// ---------- login ----------

#[tokio::test]
async fn login_by_qr_scan_opens_a_session_the_upload_page_accepts() {
    let sb = started().await;
    let r = sb.get("/creator-micro/content/upload").await;
    assert_eq!(r.status, StatusCode::FOUND);
    assert_eq!(r.headers.get(LOCATION).expect("Location"), "/login");

    let token = sb.login_token().await;
    assert_eq!(sb.poll(&token).await.json()["state"], "waiting");
    let scan = json!({"token": token, "uid": "4242", "nickname": "小明"});
    assert_eq!(
        sb.post_json("/__sandbox/douyin/login/scan", scan.clone())
            .await
            .status,
        StatusCode::OK
    );
    // A code is scanned once.
    assert_eq!(
        sb.post_json("/__sandbox/douyin/login/scan", scan)
            .await
            .status,
        StatusCode::CONFLICT
    );
    let scanned = sb.poll(&token).await;
    assert_eq!(scanned.json()["state"], "scanned");
    assert!(scanned.headers.get(SET_COOKIE).is_none());
    let cookie = cookie_of(&sb.poll(&token).await);
    assert!(cookie.starts_with("sessionid="));

    let page = sb.load_page(&cookie).await;
    let me = send(sb.in_page(&page, Method::GET, "/web/api/media/user/info/", "")).await;
    assert_eq!(
        me.json(),
        json!({"status_code": 0, "user": {"uid": "4242", "nickname": "小明"}})
    );
    // Each load has its own secret.
    let again = sb.load_page(&cookie).await;
    assert_ne!(
        (again.id.clone(), again.secret.clone()),
        (page.id.clone(), page.secret.clone())
    );
}

#[tokio::test]
async fn a_qr_code_expires_and_an_sms_login_needs_the_right_code() {
    let sb = started().await;
    let old = sb.login_token().await;
    sb.post_json("/__sandbox/advance?seconds=121", json!({}))
        .await;
    assert_eq!(sb.poll(&old).await.json()["state"], "expired");
    let late = sb
        .post_json("/__sandbox/douyin/login/scan", json!({"token": old}))
        .await;
    assert_eq!(
        late.status,
        StatusCode::CONFLICT,
        "an expired code cannot be scanned"
    );
    let page = sb.get("/login").await.text;
    assert!(page.contains("id=\"qrcode_refresh\""));

    let token = sb.login_token().await;
    assert_ne!(token, old, "a reload shows a new code");
    sb.post_json(
        "/__sandbox/douyin/login/scan",
        json!({"token": token, "sms": true}),
    )
    .await;
    assert_eq!(sb.poll(&token).await.json()["state"], "sms");
    let wrong = sb
        .post_json("/login/sms", json!({"token": token, "code": "000000x"}))
        .await;
    assert_eq!(wrong.json()["state"], "sms");
    assert!(wrong.headers.get(SET_COOKIE).is_none());
    let code = sb
        .get(&format!("/__sandbox/douyin/login/sms_code?token={token}"))
        .await
        .json()["code"]
        .as_str()
        .expect("code")
        .to_owned();
    let right = sb
        .post_json("/login/sms", json!({"token": token, "code": code}))
        .await;
    assert_eq!(right.json()["state"], "confirmed");
    let cookie = cookie_of(&right);
    assert_eq!(
        cookie_of(&sb.poll(&token).await),
        cookie,
        "the poll hands over the same session"
    );
    sb.load_page(&cookie).await;
}

// ---------- the page's guard ----------

#[tokio::test]
async fn creator_requests_need_a_session_and_the_page_signature() {
    let sb = started().await;
    let path = "/web/api/media/upload/auth/v5/";
    let no_session = sb.get(path).await;
    assert_eq!(no_session.status_code(), 8);

    let page = sb.logged_in_page("1").await;
    assert_eq!(sb.sts(&page).await.uid, "1");
    // Cookie only (a client outside the page): refused.
    send(sb.http.get(sb.url(path)).header(COOKIE, &page.cookie))
        .await
        .guard_refused();
    // A wrong secret, another path, another page id.
    let forged = Page {
        secret: "0".repeat(64),
        ..page.clone()
    };
    send(sb.in_page(&forged, Method::GET, path, ""))
        .await
        .guard_refused();
    let signed_other = sb.in_page(&page, Method::GET, "/web/api/media/user/info/", "");
    let req = signed_other.build().expect("request");
    let mut moved = req.try_clone().expect("clone");
    *moved.url_mut() = sb.url(path).parse().expect("url");
    let r = sb.http.execute(moved).await.expect("answer");
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // Another session's page signs nothing for this one.
    let other = sb.logged_in_page("2").await;
    let borrowed = Page {
        cookie: page.cookie.clone(),
        ..other
    };
    send(sb.in_page(&borrowed, Method::GET, path, ""))
        .await
        .guard_refused();
    // A page older than an hour is refused; a fresh load works.
    sb.post_json("/__sandbox/advance?seconds=3601", json!({}))
        .await;
    send(sb.in_page(&page, Method::GET, path, ""))
        .await
        .guard_refused();
    let fresh = sb.load_page(&page.cookie).await;
    sb.sts(&fresh).await;
}

#[tokio::test]
async fn a_create_v2_sent_from_outside_the_page_is_refused() {
    let sb = started().await;
    let page = sb.logged_in_page("7").await;
    let bytes = mp4_of_size(300_000);
    let (slot, poster) = sb.uploaded(&page, &bytes).await;
    let body = create_body(&slot.vid, &poster, "hello", json!([]));
    // The session cookie alone, as a plain HTTP client would send it.
    let outside = sb
        .http
        .post(sb.url(CREATE))
        .header(COOKIE, &page.cookie)
        .json(&body);
    send(outside).await.guard_refused();
    // The body changed after signing.
    let tampered = sb
        .in_page(&page, Method::POST, CREATE, &body.to_string())
        .body(body.to_string().replace("hello", "hellO"));
    send(tampered).await.guard_refused();
    assert!(sb.posts().await.is_empty());
    item_id(&sb.create(&page, &body).await);
    assert_eq!(sb.posts().await.len(), 1);
}

// ---------- SigV4 and STS ----------

#[tokio::test]
async fn vod_checks_sigv4_exactly_and_the_sts_expiry() {
    let sb = started().await;
    let page = sb.logged_in_page("9").await;
    let sts = sb.sts(&page).await;
    let q = "Action=ApplyUploadInner&Version=2020-11-19&SpaceName=aweme&FileType=video&IsInner=1&FileSize=10";
    let ok = sb.vod(&sts, "cn-north-1", Method::GET, q, "", |_| {}).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text);
    let slot = &ok.json()["Result"]["InnerUploadAddress"]["UploadNodes"][0];
    assert_eq!(slot["UploadHost"], sb.handle.addr().to_string().as_str());
    assert!(
        slot["StoreInfos"][0]["StoreUri"]
            .as_str()
            .expect("uri")
            .contains('/')
    );

    let code = |r: &Reply| {
        r.json()["ResponseMetadata"]["Error"]["Code"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    let wrong_secret = Sts {
        secret: format!("{}x", sts.secret),
        ..Sts { ..clone_sts(&sts) }
    };
    let r = sb
        .vod(&wrong_secret, "cn-north-1", Method::GET, q, "", |_| {})
        .await;
    assert_eq!(
        (r.status, code(&r)),
        (StatusCode::FORBIDDEN, "SignatureDoesNotMatch".to_owned())
    );
    let r = sb.vod(&sts, "us-east-1", Method::GET, q, "", |_| {}).await;
    assert_eq!(
        (r.status, code(&r)),
        (StatusCode::FORBIDDEN, "SignatureDoesNotMatch".to_owned())
    );
    // A parameter changed after signing.
    let r = sb
        .vod(&sts, "cn-north-1", Method::GET, q, "", |r| {
            let changed = r.url().as_str().replace("FileSize=10", "FileSize=11");
            *r.url_mut() = changed.parse().expect("url");
        })
        .await;
    assert_eq!(code(&r), "SignatureDoesNotMatch");
    // Another user's SessionToken with this key.
    let r = sb
        .vod(&sts, "cn-north-1", Method::GET, q, "", |r| {
            let other = reqwest::header::HeaderValue::from_static("STS2e30=");
            r.headers_mut().insert("x-amz-security-token", other);
        })
        .await;
    assert_eq!(code(&r), "SignatureDoesNotMatch");
    // No signature at all.
    let r = send(sb.http.get(sb.url(&format!("/?{q}")))).await;
    assert_eq!(
        (r.status, code(&r)),
        (StatusCode::FORBIDDEN, "SignatureDoesNotMatch".to_owned())
    );
    // Bad parameters, signed right.
    let r = sb
        .vod(
            &sts,
            "cn-north-1",
            Method::GET,
            &q.replace("IsInner=1", "IsInner=0"),
            "",
            |_| {},
        )
        .await;
    assert_eq!(
        (r.status, code(&r)),
        (StatusCode::BAD_REQUEST, "InvalidParameter".to_owned())
    );

    // The credentials last an hour (sandbox clock).
    sb.post_json("/__sandbox/advance?seconds=3601", json!({}))
        .await;
    let r = sb.vod(&sts, "cn-north-1", Method::GET, q, "", |_| {}).await;
    assert_eq!(
        (r.status, code(&r)),
        (StatusCode::FORBIDDEN, "InvalidAuthorization".to_owned())
    );
    let page = sb.load_page(&page.cookie).await;
    let fresh = sb.sts(&page).await;
    assert_eq!(
        sb.vod(&fresh, "cn-north-1", Method::GET, q, "", |_| {})
            .await
            .status,
        StatusCode::OK
    );
}

fn clone_sts(s: &Sts) -> Sts {
    Sts {
        ak: s.ak.clone(),
        secret: s.secret.clone(),
        token: s.token.clone(),
        uid: s.uid.clone(),
    }
}

// ---------- TOS parts and commit ----------

#[tokio::test]
async fn tos_parts_follow_the_rules_and_commit_needs_the_whole_object() {
    let sb = started().await;
    let page = sb.logged_in_page("11").await;
    let sts = sb.sts(&page).await;
    let bytes = mp4_of_size(2 * PART + 1_234_567);
    let parts: Vec<&[u8]> = bytes.chunks(PART).collect();
    let slot = sb.apply(&sts, bytes.len()).await;

    // Wrong Auth, wrong user.
    let bad_auth = Slot {
        auth: "SpaceKey/aweme/1/:version:v2:nope".into(),
        ..clone_slot(&slot)
    };
    let r = send(sb.tos(&bad_auth, &sts.uid, "uploadmode=part&phase=init")).await;
    assert_eq!(
        (r.status, r.json()["code"].clone()),
        (StatusCode::FORBIDDEN, json!(4030))
    );
    let r = send(sb.tos(&slot, "999", "uploadmode=part&phase=init")).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    let id = sb.tos_init(&slot, &sts.uid).await;
    // A wrong CRC is refused and not stored.
    let q = format!("uploadid={id}&part_number=1&phase=transfer");
    let wrong = sb
        .tos(&slot, &sts.uid, &q)
        .header("content-type", "application/octet-stream")
        .header("content-crc32", "00000000")
        .body(parts[0].to_vec());
    let r = send(wrong).await;
    assert_eq!(
        (r.status, r.json()["code"].clone()),
        (StatusCode::BAD_REQUEST, json!(4001))
    );

    // Parts in parallel, out of order; part 2 sent twice (the second replaces it).
    let sends = [3, 1, 2].map(|n| sb.tos_part(&slot, &sts.uid, &id, n, parts[n - 1]));
    for r in futures_util::future::join_all(sends).await {
        assert_eq!(r.json()["code"], 2000, "{}", r.text);
    }
    let r = sb.tos_part(&slot, &sts.uid, &id, 2, parts[1]).await;
    assert_eq!(r.json()["data"]["crc32"], crc_hex(parts[1]).as_str());
    let uploads = sb.get("/__sandbox/douyin/uploads").await.json();
    assert_eq!(
        uploads["part_uploads"][&id]["parts"],
        json!({"1": 1, "2": 2, "3": 1})
    );

    // Commit before finish: the object is not complete.
    let c = sb.commit(&sts, &slot).await;
    assert_eq!(c.status, StatusCode::BAD_REQUEST, "{}", c.text);
    assert!(c.text.contains("not complete"), "{}", c.text);

    let list = |crcs: &[String]| {
        crcs.iter()
            .enumerate()
            .map(|(i, c)| format!("{}:{c}", i + 1))
            .collect::<Vec<_>>()
            .join(",")
    };
    let crcs: Vec<String> = parts.iter().map(|p| crc_hex(p)).collect();
    for bad in [
        list(&crcs[..2]),                                           // part 3 left out
        list(&[crcs[0].clone(), crcs[2].clone(), crcs[1].clone()]), // CRCs swapped
        format!("2:{},1:{},3:{}", crcs[1], crcs[0], crcs[2]),       // out of order
    ] {
        let r = sb.tos_finish(&slot, &sts.uid, &id, &bad).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}: {}", r.text);
    }
    let r = sb.tos_finish(&slot, &sts.uid, &id, &list(&crcs)).await;
    assert_eq!(
        r.json(),
        json!({"code": 2000, "message": "Success", "data": {"key": slot.store_uri}})
    );
    // A repeated finish is fine; a part after it is not.
    assert_eq!(
        sb.tos_finish(&slot, &sts.uid, &id, &list(&crcs))
            .await
            .json()["code"],
        2000
    );
    assert_eq!(
        sb.tos_part(&slot, &sts.uid, &id, 1, parts[0]).await.status,
        StatusCode::CONFLICT
    );

    let c = sb.commit(&sts, &slot).await;
    assert_eq!(c.status, StatusCode::OK, "{}", c.text);
    assert_eq!(
        c.json()["Result"]["Results"][0]["VideoMeta"]["Size"],
        bytes.len()
    );
    let uploads = sb.get("/__sandbox/douyin/uploads").await.json();
    assert_eq!(
        uploads["uploads"][&slot.vid]["sha256"],
        sha256_hex(&bytes).as_str()
    );
}

#[tokio::test]
async fn small_parts_but_the_last_and_wrong_sizes_are_refused_at_finish() {
    let sb = started().await;
    let page = sb.logged_in_page("12").await;
    let sts = sb.sts(&page).await;
    let bytes = mp4_of_size(PART + 100);
    let slot = sb.apply(&sts, bytes.len()).await;
    let id = sb.tos_init(&slot, &sts.uid).await;
    let (small, rest) = bytes.split_at(PART - 1);
    sb.tos_part(&slot, &sts.uid, &id, 1, small).await;
    sb.tos_part(&slot, &sts.uid, &id, 2, rest).await;
    let r = sb
        .tos_finish(
            &slot,
            &sts.uid,
            &id,
            &format!("1:{},2:{}", crc_hex(small), crc_hex(rest)),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.text.contains("5 MiB"), "{}", r.text);

    // One part for the whole file is fine, once it matches FileSize.
    let id = sb.tos_init(&slot, &sts.uid).await;
    sb.tos_part(&slot, &sts.uid, &id, 1, &bytes[..bytes.len() - 1])
        .await;
    let r = sb
        .tos_finish(
            &slot,
            &sts.uid,
            &id,
            &format!("1:{}", crc_hex(&bytes[..bytes.len() - 1])),
        )
        .await;
    assert!(r.text.contains("FileSize"), "{}", r.text);
    sb.tos_part(&slot, &sts.uid, &id, 1, &bytes).await;
    let r = sb
        .tos_finish(&slot, &sts.uid, &id, &format!("1:{}", crc_hex(&bytes)))
        .await;
    assert_eq!(r.json()["code"], 2000, "{}", r.text);

    // An expired Auth is a 401.
    sb.post_json("/__sandbox/douyin/expire", json!({})).await;
    let r = send(sb.tos(&slot, &sts.uid, "uploadmode=part&phase=init")).await;
    assert_eq!(
        (r.status, r.json()["code"].clone()),
        (StatusCode::UNAUTHORIZED, json!(4010))
    );
}

fn clone_slot(s: &Slot) -> Slot {
    Slot {
        vid: s.vid.clone(),
        host: s.host.clone(),
        store_uri: s.store_uri.clone(),
        auth: s.auth.clone(),
        session_key: s.session_key.clone(),
    }
}

// ---------- create_v2 ----------

#[tokio::test]
async fn create_v2_judges_the_body_and_publishes_a_vid_once() {
    let sb = started().await;
    let page = sb.logged_in_page("21").await;
    let bytes = mp4_of_size(400_000);
    let (slot, poster) = sb.uploaded(&page, &bytes).await;
    let text = "😀 遇见 #音乐 #旅行 @小明";
    let mention = json!({"start": 14, "end": 17, "type": 0, "hashtag_name": "", "hashtag_id": "", "user_id": "123"});
    let spans = json!([tag(6, 9, "音乐"), tag(10, 13, "旅行"), mention]);
    let good = create_body(&slot.vid, &poster, text, spans);
    let good = {
        let mut g = good;
        g["item"]["common"]["mentions"] = json!("[\"123\"]");
        g["item"]["common"]["challenges"] = json!("[\"1550712576368642\",\"1566402359587846\"]");
        g
    };
    let refused = |r: Reply, code: i64, words: &str| {
        assert_eq!(r.status_code(), code, "{}", r.text);
        assert!(
            r.json()["status_msg"]
                .as_str()
                .expect("msg")
                .contains(words),
            "{words}: {}",
            r.text
        );
    };

    // A #tag without its span: 49.
    let mut b = good.clone();
    b["item"]["common"]["text_extra"] = json!(
        json!([tag(6, 9, "音乐"), {"start": 14, "end": 17, "type": 0, "user_id": "123"}])
            .to_string()
    );
    refused(sb.create(&page, &b).await, 49, "旅行");
    // Six hashtags.
    let six = "#a #b #c #d #e #f";
    let spans6: Vec<Value> = ["a", "b", "c", "d", "e", "f"]
        .iter()
        .enumerate()
        .map(|(i, n)| tag(3 * i as u32, 3 * i as u32 + 2, n))
        .collect();
    refused(
        sb.create(&page, &create_body(&slot.vid, &poster, six, json!(spans6)))
            .await,
        4,
        "too many hashtags",
    );
    // Visibility 3, timing too soon, a title over 30.
    let mut b = good.clone();
    b["item"]["common"]["visibility_type"] = json!(3);
    refused(sb.create(&page, &b).await, 4, "visibility_type");
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let mut b = good.clone();
    b["item"]["common"]["timing"] = json!(now + 3600);
    refused(sb.create(&page, &b).await, 4, "timing");
    let mut b = good.clone();
    b["item"]["common"]["item_title"] = json!("一".repeat(31));
    refused(sb.create(&page, &b).await, 4, "item_title");
    // Another poster, an unknown Vid.
    refused(
        sb.create(
            &page,
            &create_body(&slot.vid, "tos-cn-p-0015/other", "x", json!([])),
        )
        .await,
        4,
        "poster",
    );
    refused(
        sb.create(
            &page,
            &create_body("v0d00fg10000nope", &poster, "x", json!([])),
        )
        .await,
        4,
        "video_id",
    );
    assert!(sb.posts().await.is_empty(), "nothing refused was posted");

    // Accepted once, scheduled within the window.
    let mut b = good.clone();
    b["item"]["common"]["timing"] = json!(now + 3 * 3600);
    b["item"]["common"]["visibility_type"] = json!(2);
    let id = item_id(&sb.create(&page, &b).await);
    assert!(
        id.len() >= 19 && id.bytes().all(|c| c.is_ascii_digit()),
        "{id}"
    );
    refused(sb.create(&page, &good).await, 2, "video already published");
    let posts = sb.posts().await;
    assert_eq!(posts.len(), 1);
    assert_eq!(posts[0]["item_id"], id.as_str());
    assert_eq!(posts[0]["sha256"], sha256_hex(&bytes).as_str());
    assert_eq!(posts[0]["desc"], text);
    assert_eq!(posts[0]["public_time"], now + 3 * 3600);
}

#[tokio::test]
async fn create_v2_needs_a_committed_video_of_the_same_user() {
    let sb = started().await;
    let page = sb.logged_in_page("31").await;
    let sts = sb.sts(&page).await;
    let bytes = mp4_of_size(200_000);
    let slot = sb.apply(&sts, bytes.len()).await;
    let id = sb.tos_init(&slot, &sts.uid).await;
    sb.tos_part(&slot, &sts.uid, &id, 1, &bytes).await;
    sb.tos_finish(&slot, &sts.uid, &id, &format!("1:{}", crc_hex(&bytes)))
        .await;
    let r = sb
        .create(
            &page,
            &create_body(&slot.vid, "tos-cn-p-0015/x", "x", json!([])),
        )
        .await;
    assert_eq!(r.status_code(), 4);
    assert!(r.text.contains("not committed"), "{}", r.text);
    let poster = sb.commit(&sts, &slot).await.json()["Result"]["Results"][0]["PosterUri"]
        .as_str()
        .expect("poster")
        .to_owned();
    let other = sb.logged_in_page("32").await;
    let r = sb
        .create(&other, &create_body(&slot.vid, &poster, "x", json!([])))
        .await;
    assert!(r.text.contains("not this user's"), "{}", r.text);
    item_id(
        &sb.create(&page, &create_body(&slot.vid, &poster, "x", json!([])))
            .await,
    );
}

// ---------- work list, risk checks, logout ----------

#[tokio::test]
async fn the_work_list_pages_newest_first_with_each_vid() {
    let sb = started().await;
    let page = sb.logged_in_page("41").await;
    let mut made = Vec::new();
    let mut keys = Vec::new();
    for i in 0..3 {
        let (slot, poster) = sb.uploaded(&page, &mp4_of_size(100_000 + i)).await;
        let r = sb
            .create(
                &page,
                &create_body(&slot.vid, &poster, &format!("post {i}"), json!([])),
            )
            .await;
        keys.push(if r.json().get("item_id").is_some() {
            "item_id"
        } else {
            "aweme_id"
        });
        made.push((item_id(&r), slot.vid));
    }
    assert_eq!(
        keys,
        ["item_id", "aweme_id", "item_id"],
        "the reply names the post both ways by turns"
    );
    let list = |cursor: Option<i64>| {
        let q = match cursor {
            Some(c) => {
                format!("/janus/douyin/creator/pc/work_list?status=0&page_size=2&max_cursor={c}")
            }
            None => "/janus/douyin/creator/pc/work_list?status=0&page_size=2".to_owned(),
        };
        send(sb.in_page(&page, Method::GET, &q, ""))
    };
    let first = list(None).await.json();
    assert_eq!(first["has_more"], true);
    let items = first["aweme_list"].as_array().expect("list");
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["aweme_id"], made[2].0.as_str());
    assert_eq!(items[0]["video"]["vid"], made[2].1.as_str());
    assert_eq!(items[0]["desc"], "post 2");
    let second = list(first["max_cursor"].as_i64()).await.json();
    assert_eq!(second["has_more"], false);
    assert_eq!(second["aweme_list"][0]["aweme_id"], made[0].0.as_str());
    // Unsigned: refused; another user sees none of them.
    send(
        sb.http
            .get(sb.url("/janus/douyin/creator/pc/work_list?status=0&page_size=20"))
            .header(COOKIE, &page.cookie),
    )
    .await
    .guard_refused();
    let other = sb.logged_in_page("42").await;
    let theirs = send(sb.in_page(
        &other,
        Method::GET,
        "/janus/douyin/creator/pc/work_list?status=0&page_size=20",
        "",
    ))
    .await
    .json();
    assert_eq!(theirs["aweme_list"], json!([]));
}

#[tokio::test]
async fn risk_checks_and_logouts_on_demand() {
    let sb = started().await;
    let page = sb.logged_in_page("51").await;
    let (slot, poster) = sb.uploaded(&page, &mp4_of_size(100_000)).await;
    let body = create_body(&slot.vid, &poster, "x", json!([]));
    sb.post_json("/__sandbox/douyin/risk", json!({"times": 1}))
        .await;
    let r = sb.create(&page, &body).await;
    assert!(
        r.headers.get("x-tt-verify-passport-decision").is_some(),
        "{}",
        r.text
    );
    assert_ne!(r.status_code(), 0);
    assert!(sb.posts().await.is_empty());
    item_id(&sb.create(&page, &body).await);

    let ended = sb
        .post_json("/__sandbox/douyin/logout", json!({"uid": "51"}))
        .await
        .json();
    assert_eq!(ended["ended"], 1);
    let r = send(sb.in_page(&page, Method::GET, "/web/api/media/upload/auth/v5/", "")).await;
    assert_eq!(r.status_code(), 8, "logged out");
    let again = send(
        sb.http
            .get(sb.url("/creator-micro/content/upload"))
            .header(COOKIE, &page.cookie),
    )
    .await;
    assert_eq!(again.status, StatusCode::FOUND);
}

// ---------- faults, suggestions, inspection ----------

#[tokio::test]
async fn faults_hit_douyin_steps_by_name() {
    let sb = started().await;
    let page = sb.logged_in_page("61").await;
    let rules = json!([
        {"step": "auth", "action": {"kind": "body", "body": {"status_code": 8}}, "times": 1},
        {"step": "tos_part", "action": {"kind": "status", "status": 503}, "times": 1},
        {"step": "create_v2", "action": "drop_answer", "times": 1},
    ]);
    let armed = sb.post_json("/__sandbox/faults", rules).await;
    assert_eq!(armed.status, StatusCode::OK, "{}", armed.text);
    let r = send(sb.in_page(&page, Method::GET, "/web/api/media/upload/auth/v5/", "")).await;
    assert_eq!(r.status_code(), 8);
    let sts = sb.sts(&page).await;
    let bytes = mp4_of_size(100_000);
    let slot = sb.apply(&sts, bytes.len()).await;
    let id = sb.tos_init(&slot, &sts.uid).await;
    let r = sb.tos_part(&slot, &sts.uid, &id, 1, &bytes).await;
    assert_eq!(
        (r.status, r.json()["code"].clone()),
        (StatusCode::SERVICE_UNAVAILABLE, json!(503))
    );
    assert_eq!(
        sb.tos_part(&slot, &sts.uid, &id, 1, &bytes).await.json()["code"],
        2000
    );
    sb.tos_finish(&slot, &sts.uid, &id, &format!("1:{}", crc_hex(&bytes)))
        .await;
    let poster = sb.commit(&sts, &slot).await.json()["Result"]["Results"][0]["PosterUri"]
        .as_str()
        .expect("poster")
        .to_owned();
    let body = create_body(&slot.vid, &poster, "lost answer", json!([]));
    let lost = sb
        .in_page(&page, Method::POST, CREATE, &body.to_string())
        .send()
        .await;
    assert!(lost.is_err(), "the answer is dropped");
    assert_eq!(sb.posts().await.len(), 1, "but the post was made");
    let counts = sb.get("/__sandbox/douyin/requests").await.json();
    assert_eq!(
        (
            counts["auth"].clone(),
            counts["tos_part"].clone(),
            counts["create_v2"].clone()
        ),
        (json!(2), json!(2), json!(1))
    );
    let bad = sb
        .post_json(
            "/__sandbox/faults",
            json!({"step": "create_v3", "action": "reset"}),
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn hashtag_suggestions_serve_both_protocols_and_secrets_are_listed() {
    let sb = started().await;
    let page = sb.logged_in_page("71").await;
    let q = "/aweme/v1/search/challengesug/?keyword=%E9%9F%B3%E4%B9%90&source=challenge_create&aid=2906";
    let mine = send(sb.in_page(&page, Method::GET, q, "")).await.json();
    assert!(
        mine["sug_list"]
            .as_array()
            .expect("list")
            .iter()
            .any(|s| s["cha_name"] == "音乐")
    );
    let web = send(
        sb.http
            .get(sb.url(q))
            .header(COOKIE, sandbox::cookie_for("main")),
    )
    .await
    .json();
    assert_eq!(web["sug_list"], mine["sug_list"]);
    let nobody = sb.get(q).await;
    assert_eq!(nobody.status_code(), 8);

    let sts = sb.sts(&page).await;
    let secrets = sb.get("/__sandbox/secrets").await.json();
    let all: Vec<&str> = secrets
        .as_array()
        .expect("list")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for s in [
        page.secret.as_str(),
        sts.secret.as_str(),
        sts.token.as_str(),
        page.cookie.trim_start_matches("sessionid="),
    ] {
        assert!(all.contains(&s), "a secret is listed");
    }
}

#[tokio::test]
async fn a_session_can_be_made_without_a_browser() {
    let sb = started().await;
    let sid = sb.handle.douyin_session(Some("81"), Some("测试"));
    let page = sb.load_page(&format!("sessionid={sid}")).await;
    let me = send(sb.in_page(&page, Method::GET, "/web/api/media/user/info/", ""))
        .await
        .json();
    assert_eq!(me["user"], json!({"uid": "81", "nickname": "测试"}));
    let cookie = sb
        .post_json("/__sandbox/douyin/session", json!({"uid": "82"}))
        .await
        .json()["cookie"]
        .as_str()
        .expect("cookie")
        .to_owned();
    assert_eq!(sb.sts(&sb.load_page(&cookie).await).await.uid, "82");
}

// ---------- the cover image through ImageX (docs/douyin-creator.md §12) ----------

const IMAGEX_APPLY: &str = "Action=ApplyImageUpload&Version=2018-08-01&ServiceId=jm8ajry58r&UploadNum=1&FileExtension=.png";
const IMAGEX_COMMIT: &str = "Action=CommitImageUpload&Version=2018-08-01&ServiceId=jm8ajry58r";

/// A real PNG of `width`×`height`.
fn png(width: u32, height: u32) -> Vec<u8> {
    let img = image::RgbImage::from_pixel(width, height, image::Rgb([200, 30, 60]));
    let mut out = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
        .expect("encodes");
    out
}

/// An ImageX slot: the upload URL, its `Auth`, the `SessionKey`, the `StoreUri`.
struct ImageSlot {
    url: String,
    auth: String,
    session_key: String,
    store_uri: String,
}

impl Sb {
    async fn imagex(&self, sts: &Sts, method: Method, query: &str, body: &str) -> Reply {
        self.signed(sts, ("cn-north-1", "imagex"), method, query, body, |_| {})
            .await
    }

    async fn apply_image(&self, sts: &Sts) -> ImageSlot {
        let r = self.imagex(sts, Method::GET, IMAGEX_APPLY, "").await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        let a = &r.json()["Result"]["UploadAddress"];
        let store_uri = a["StoreInfos"][0]["StoreUri"]
            .as_str()
            .expect("uri")
            .to_owned();
        let host = a["UploadHosts"][0].as_str().expect("host");
        ImageSlot {
            url: format!("http://{host}/{store_uri}"),
            auth: a["StoreInfos"][0]["Auth"]
                .as_str()
                .expect("Auth")
                .to_owned(),
            session_key: a["SessionKey"].as_str().expect("key").to_owned(),
            store_uri,
        }
    }

    async fn put_image(&self, slot: &ImageSlot, bytes: &[u8], crc: &str) -> Reply {
        let req = self
            .http
            .put(&slot.url)
            .header("authorization", &slot.auth)
            .header("content-crc32", crc)
            .body(bytes.to_vec());
        send(req).await
    }

    async fn commit_image(&self, sts: &Sts, slot: &ImageSlot) -> Reply {
        let body = json!({"SessionKey": slot.session_key}).to_string();
        self.imagex(sts, Method::POST, IMAGEX_COMMIT, &body).await
    }
}

// Regression (issue 11 item 5): the simulator had no ImageX, so a cover image could not be judged.
#[tokio::test]
async fn imagex_checks_its_signature_the_crc_and_the_order() {
    let sb = started().await;
    let page = sb.logged_in_page("71").await;
    let sts = sb.sts(&page).await;
    // Signed for the wrong service: refused as a bad signature.
    let r = sb
        .vod(&sts, "cn-north-1", Method::GET, IMAGEX_APPLY, "", |_| {})
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    assert_eq!(
        r.json()["ResponseMetadata"]["Error"]["Code"],
        "SignatureDoesNotMatch"
    );
    let r = sb
        .signed(
            &sts,
            ("cn-north-1", "imagex"),
            Method::GET,
            IMAGEX_APPLY,
            "",
            |req| {
                let q = req
                    .url()
                    .query()
                    .unwrap()
                    .replace("UploadNum=1", "UploadNum=2");
                req.url_mut().set_query(Some(&q));
            },
        )
        .await;
    assert_eq!(
        r.json()["ResponseMetadata"]["Error"]["Code"],
        "SignatureDoesNotMatch"
    );
    let gif = IMAGEX_APPLY.replace(".png", ".gif");
    let r = sb.imagex(&sts, Method::GET, &gif, "").await;
    assert_eq!(
        r.json()["ResponseMetadata"]["Error"]["Code"],
        "InvalidParameter"
    );

    let slot = sb.apply_image(&sts).await;
    assert!(
        slot.store_uri.starts_with("tos-cn-i-jm8ajry58r/"),
        "{}",
        slot.store_uri
    );
    // Commit before the upload: refused.
    let r = sb.commit_image(&sts, &slot).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert!(r.text.contains("not uploaded"), "{}", r.text);
    let image = png(720, 1280);
    // A wrong CRC is refused and nothing is stored; a wrong Auth is 403.
    let r = sb.put_image(&slot, &image, "00000000").await;
    assert_eq!(
        (r.status, r.json()["error"]["code"].clone()),
        (StatusCode::BAD_REQUEST, json!(4001))
    );
    let forged = ImageSlot {
        auth: "x".into(),
        ..slot_clone(&slot)
    };
    assert_eq!(
        sb.put_image(&forged, &image, &crc_hex(&image)).await.status,
        StatusCode::FORBIDDEN
    );
    assert!(
        sb.commit_image(&sts, &slot)
            .await
            .text
            .contains("not uploaded")
    );
    // Not an image: refused.
    let text = b"hello, not an image";
    let r = sb.put_image(&slot, text, &crc_hex(text)).await;
    assert_eq!(r.json()["error"]["code"], 4002, "{}", r.text);
    let r = sb.put_image(&slot, &image, &crc_hex(&image)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json()["payload"]["hash"], crc_hex(&image));
    let r = sb.commit_image(&sts, &slot).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let result = &r.json()["Result"];
    assert_eq!(result["Results"][0]["Uri"], slot.store_uri.as_str());
    assert_eq!(result["Results"][0]["UriStatus"], 2000);
    assert_eq!(
        (
            result["PluginResult"][0]["ImageWidth"].clone(),
            result["PluginResult"][0]["ImageHeight"].clone()
        ),
        (json!(720), json!(1280)),
        "read by the sandbox from the PNG"
    );
    // An unknown session, and another user's: refused.
    let unknown = ImageSlot {
        session_key: "eyJnope".into(),
        ..slot_clone(&slot)
    };
    assert!(
        sb.commit_image(&sts, &unknown)
            .await
            .text
            .contains("unknown")
    );
    let other = sb.sts(&sb.logged_in_page("72").await).await;
    assert!(
        sb.commit_image(&other, &slot)
            .await
            .text
            .contains("not this user's")
    );
    let counts = sb.get("/__sandbox/douyin/requests").await.json();
    assert_eq!(counts["imagex_upload"], 4, "{counts}");
}

fn slot_clone(s: &ImageSlot) -> ImageSlot {
    ImageSlot {
        url: s.url.clone(),
        auth: s.auth.clone(),
        session_key: s.session_key.clone(),
        store_uri: s.store_uri.clone(),
    }
}

// Regression (issue 11 item 5): create_v2 must take an uploaded cover only at the image's real size.
#[tokio::test]
async fn create_v2_takes_a_committed_cover_image_at_its_real_size() {
    let sb = started().await;
    let page = sb.logged_in_page("73").await;
    let (slot, _poster) = sb.uploaded(&page, &mp4_of_size(150_000)).await;
    let sts = sb.sts(&page).await;
    let image = png(720, 1280);
    let cover = sb.apply_image(&sts).await;
    sb.put_image(&cover, &image, &crc_hex(&image)).await;
    let with_cover = |w: u32, h: u32, poster: &str| {
        let mut body = create_body(&slot.vid, poster, "封面", json!([]));
        body["item"]["cover"]["custom_cover_image_width"] = json!(w);
        body["item"]["cover"]["custom_cover_image_height"] = json!(h);
        body
    };
    // Uploaded but not committed: not a cover yet.
    let r = sb
        .create(&page, &with_cover(720, 1280, &cover.store_uri))
        .await;
    assert_eq!(r.status_code(), 4, "{}", r.text);
    sb.commit_image(&sts, &cover).await;
    let r = sb
        .create(&page, &with_cover(1080, 1920, &cover.store_uri))
        .await;
    assert_eq!(r.status_code(), 4, "{}", r.text);
    assert!(
        r.text.contains("not the image's size 720x1280"),
        "{}",
        r.text
    );
    // Another user's committed image is no cover for this one.
    let other_page = sb.logged_in_page("74").await;
    let (other_slot, _) = sb.uploaded(&other_page, &mp4_of_size(120_000)).await;
    let mut theirs = with_cover(720, 1280, &cover.store_uri);
    theirs["item"]["common"]["video_id"] = json!(other_slot.vid);
    assert_eq!(sb.create(&other_page, &theirs).await.status_code(), 4);
    item_id(
        &sb.create(&page, &with_cover(720, 1280, &cover.store_uri))
            .await,
    );
    let posts = sb.posts().await;
    let post = posts
        .iter()
        .find(|p| p["vid"] == slot.vid.as_str())
        .expect("posted");
    assert_eq!(post["cover"]["sha256"], sha256_hex(&image));
    assert_eq!(post["cover"]["size"], image.len());
    assert_eq!(post["cover"]["uri"], cover.store_uri.as_str());
}

#[tokio::test]
async fn faults_hit_the_imagex_steps_by_name() {
    let sb = started().await;
    let page = sb.logged_in_page("75").await;
    let rules = json!([
        {"step": "imagex_apply", "action": {"kind": "status", "status": 503}, "times": 1},
        {"step": "imagex_upload", "action": {"kind": "status", "status": 500}, "times": 1},
        {"step": "imagex_commit", "action": {"kind": "status", "status": 502}, "times": 1},
    ]);
    let armed = sb.post_json("/__sandbox/faults", rules).await;
    assert_eq!(armed.status, StatusCode::OK, "{}", armed.text);
    let sts = sb.sts(&page).await;
    let r = sb.imagex(&sts, Method::GET, IMAGEX_APPLY, "").await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        r.json()["ResponseMetadata"]["Error"].is_object(),
        "{}",
        r.text
    );
    let slot = sb.apply_image(&sts).await;
    let image = png(16, 9);
    let r = sb.put_image(&slot, &image, &crc_hex(&image)).await;
    assert_eq!(
        (r.status, r.json()["success"].clone()),
        (StatusCode::INTERNAL_SERVER_ERROR, json!(1))
    );
    assert_eq!(
        sb.put_image(&slot, &image, &crc_hex(&image)).await.status,
        StatusCode::OK
    );
    assert_eq!(
        sb.commit_image(&sts, &slot).await.status,
        StatusCode::BAD_GATEWAY
    );
    assert_eq!(sb.commit_image(&sts, &slot).await.status, StatusCode::OK);
    let counts = sb.get("/__sandbox/douyin/requests").await.json();
    assert_eq!(
        (
            counts["imagex_apply"].clone(),
            counts["imagex_upload"].clone(),
            counts["imagex_commit"].clone()
        ),
        (json!(2), json!(2), json!(2))
    );
}
