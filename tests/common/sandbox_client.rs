//! A small, correct client of the sandbox, written from docs/douyin-web.md for the sandbox's
//! own tests. It is the second implementation that judges the sandbox, so it never uses
//! `dropcast::platform`: the agent's client and the sandbox cannot agree by sharing a bug.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use dropcast::sandbox::{self, SandboxHandle, SandboxOptions, cookie_for};
use reqwest::header::HeaderMap;
use reqwest::{Method, RequestBuilder, StatusCode};
use serde_json::{Value, json};

use super::fixtures::{crc_hex, mp4_with_media};

/// An HTTP answer, read whole; `json` is `Null` when the body is not JSON.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub json: Value,
}

impl Reply {
    /// The VOD API's `code`.
    pub fn code(&self) -> i64 {
        self.json["code"].as_i64().unwrap_or(-1)
    }

    /// The creator API's `status_code`.
    pub fn status_code(&self) -> i64 {
        self.json["status_code"].as_i64().unwrap_or(-1)
    }

    /// The message of whichever API answered.
    pub fn msg(&self) -> String {
        let m = &self.json;
        [&m["status_msg"], &m["message"], &m["error"]["message"]]
            .iter()
            .find_map(|v| v.as_str())
            .unwrap_or_default()
            .to_owned()
    }

    pub fn retry_after(&self) -> Option<&str> {
        self.headers
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
    }

    /// A TOS refusal: this HTTP status, `success: 1`, a message containing `words`.
    #[track_caller]
    pub fn refused(&self, status: StatusCode, words: &str) {
        assert_eq!(self.status, status, "{}", self.json);
        assert_eq!(self.json["success"], json!(1), "{}", self.json);
        assert!(
            self.msg().contains(words),
            "{:?} lacks {words:?}",
            self.msg()
        );
    }

    /// A TOS success: 200 and `success: 0`.
    #[track_caller]
    pub fn ok(&self) {
        assert_eq!(self.status, StatusCode::OK, "{}", self.json);
        assert_eq!(self.json["success"], json!(0), "{}", self.json);
    }
}

/// Send, and read the whole answer; `Err` when no HTTP answer came.
pub async fn try_send(req: RequestBuilder) -> Result<Reply, reqwest::Error> {
    let resp = req.send().await?;
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = resp.bytes().await?;
    Ok(Reply {
        status,
        headers,
        json: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    })
}

pub async fn send(req: RequestBuilder) -> Reply {
    try_send(req).await.expect("an HTTP answer")
}

/// The request got no HTTP answer at all: a reset or an early EOF, not a status.
pub fn assert_no_answer(result: Result<Reply, reqwest::Error>) {
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

/// Step 1's answer.
#[derive(Clone)]
pub struct Creds {
    pub ak: String,
    pub auth: String,
}

/// Step 2's answer, from either layout.
#[derive(Clone, Debug)]
pub struct Params {
    pub vid: String,
    pub oid: String,
    pub tos_host: String,
    pub tos_sign: String,
    pub token: String,
    pub extra_param: String,
}

impl Params {
    pub fn object_url(&self) -> String {
        format!("http://{}/{}", self.tos_host, self.oid)
    }
}

/// Step 2's `data`, top-level or first edge node.
pub fn params_from(data: &Value) -> Params {
    let node = if data["vid"].is_string() {
        data
    } else {
        &data["edge_nodes"][0]
    };
    let s = |k: &str| node[k].as_str().expect(k).to_owned();
    Params {
        vid: s("vid"),
        oid: s("oid"),
        tos_host: s("tos_host"),
        tos_sign: s("tos_sign"),
        token: s("token"),
        extra_param: s("extra_param"),
    }
}

/// Steps 1–4 done for one video.
pub struct Ready {
    pub params: Params,
    pub poster: String,
}

/// The headers of a part `PUT`, each settable to a wrong value.
pub struct PartHeaders<'a> {
    pub sign: &'a str,
    pub content_type: &'a str,
    pub crc: &'a str,
}

/// `1:<crc1>,2:<crc2>,…` for these parts.
pub fn part_list(parts: &[&[u8]]) -> String {
    let entries: Vec<String> = (1..)
        .zip(parts)
        .map(|(n, p)| format!("{n}:{}", crc_hex(p)))
        .collect();
    entries.join(",")
}

/// Step 4's JSON body for these params.
pub fn commit_body(p: &Params) -> Value {
    json!({"vid": p.vid, "oid": p.oid, "token": p.token, "poster_ss": 0,
           "is_exact_poster": true, "user_reference": ""})
}

/// The `csrf_token` in `account`'s sandbox cookie.
pub fn csrf_of(account: &str) -> String {
    cookie_for(account)
        .split(';')
        .map(str::trim)
        .find_map(|kv| kv.strip_prefix("csrf_token="))
        .expect("cookie_for has csrf_token")
        .to_owned()
}

/// The caption of [`plain_form`].
pub const PLAIN_TEXT: &str = "hello sandbox";

/// A correct step 5 form with a plain caption.
pub fn plain_form(vid: &str, poster: &str) -> Vec<(String, String)> {
    [
        ("video_id", vid),
        ("poster", poster),
        ("poster_delay", "0"),
        ("text", PLAIN_TEXT),
        ("text_extra", "[]"),
        ("challenges", "[]"),
        ("mentions", "[]"),
        ("visibility_type", "0"),
        ("third_text", PLAIN_TEXT),
        ("download", "0"),
        ("upload_source", "1"),
        ("mix_id", ""),
        ("mix_order", ""),
        ("is_preview", "0"),
        ("timing", "0"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

/// `form` with these fields replaced in place (or added at the end).
pub fn set(mut form: Vec<(String, String)>, changes: &[(&str, &str)]) -> Vec<(String, String)> {
    for (k, v) in changes {
        match form.iter_mut().find(|(fk, _)| fk == k) {
            Some(pair) => pair.1 = (*v).to_owned(),
            None => form.push(((*k).to_owned(), (*v).to_owned())),
        }
    }
    form
}

/// A sandbox on 127.0.0.1:0 and the client that talks to it.
pub struct Sb {
    pub handle: SandboxHandle,
    pub http: reqwest::Client,
    pub base: String,
    storage: Option<tempfile::TempDir>,
}

impl Sb {
    pub async fn start(options: SandboxOptions) -> Sb {
        Self::started(options, None).await
    }

    /// Like [`start`](Self::start), the sandbox keeping its objects in a temporary folder.
    pub async fn with_storage(options: SandboxOptions) -> Sb {
        let storage = tempfile::tempdir().expect("tempdir");
        let options = SandboxOptions {
            storage_dir: Some(storage.path().to_path_buf()),
            ..options
        };
        Self::started(options, Some(storage)).await
    }

    async fn started(options: SandboxOptions, storage: Option<tempfile::TempDir>) -> Sb {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let handle = sandbox::start(listener, options).await.expect("start");
        let base = handle.base_url();
        Sb {
            handle,
            http: reqwest::Client::new(),
            base,
            storage,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The folder of [`with_storage`](Self::with_storage).
    pub fn storage(&self) -> &Path {
        self.storage.as_ref().expect("started with storage").path()
    }

    pub fn object_path(&self, p: &Params) -> PathBuf {
        self.storage().join(&p.oid)
    }

    // ---- step 1 ----

    pub fn creds_request(&self, cookie: &str) -> RequestBuilder {
        self.http
            .get(self.url("/web/api/media/upload/auth/"))
            .header("Cookie", cookie)
    }

    /// Step 1 as `main`.
    pub fn creds_req(&self) -> RequestBuilder {
        self.creds_request(&cookie_for("main"))
    }

    pub async fn creds_reply(&self, cookie: &str) -> Reply {
        send(self.creds_request(cookie)).await
    }

    pub async fn creds(&self, account: &str) -> Creds {
        let r = self.creds_reply(&cookie_for(account)).await;
        assert_eq!(r.status_code(), 0, "{}", r.json);
        Creds {
            ak: r.json["ak"].as_str().expect("ak").to_owned(),
            auth: r.json["auth"].as_str().expect("auth").to_owned(),
        }
    }

    // ---- steps 2 and 4 ----

    fn vod(&self, c: &Creds, get: bool, query: &str) -> RequestBuilder {
        let url = self.url(&format!("/video/openapi/v1/?{query}"));
        let req = if get {
            self.http.get(url)
        } else {
            self.http.post(url)
        };
        req.header("authorization", &c.auth)
            .header("x-tt-access", &c.ak)
    }

    pub async fn params_reply(&self, c: &Creds, query: &str) -> Reply {
        send(self.vod(c, true, query)).await
    }

    pub async fn params(&self, c: &Creds, size: usize) -> Params {
        let q = format!("action=GetVideoUploadParams&use_edge_node=1&file_size={size}");
        let r = self.params_reply(c, &q).await;
        assert_eq!(r.code(), 2000, "{}", r.json);
        params_from(&r.json["data"])
    }

    /// A step 4 `POST` with this query and no body yet.
    pub fn commit_request(&self, c: &Creds, query: &str) -> RequestBuilder {
        self.vod(c, false, query)
    }

    pub fn commit_req(&self, c: &Creds, p: &Params) -> RequestBuilder {
        let q = format!("action=UpdateVideoUploadInfos&{}", p.extra_param);
        self.commit_request(c, &q).json(&commit_body(p))
    }

    pub async fn commit_with(&self, c: &Creds, query: &str, body: &Value) -> Reply {
        send(self.commit_request(c, query).json(body)).await
    }

    pub async fn commit(&self, c: &Creds, p: &Params) -> Reply {
        send(self.commit_req(c, p)).await
    }

    // ---- step 3a ----

    /// An object request to `url` with exactly these headers (reqwest appends, never
    /// replaces, headers) and no body yet.
    pub fn object_request(
        &self,
        method: Method,
        url: String,
        h: PartHeaders<'_>,
    ) -> RequestBuilder {
        self.http
            .request(method, url)
            .header("Authorization", h.sign)
            .header("Content-Type", h.content_type)
            .header("Content-CRC32", h.crc)
    }

    /// A whole-file `POST` to `url` with these headers and no body yet.
    pub fn object_post(&self, url: String, h: PartHeaders<'_>) -> RequestBuilder {
        self.object_request(Method::POST, url, h)
    }

    /// An object request for `p` with its tos_sign, a binary type and this CRC, no body yet.
    pub fn signed(&self, method: Method, p: &Params, crc: &str) -> RequestBuilder {
        let headers = PartHeaders {
            sign: &p.tos_sign,
            content_type: "application/octet-stream",
            crc,
        };
        self.object_request(method, p.object_url(), headers)
    }

    pub fn upload_req(&self, p: &Params, bytes: &[u8]) -> RequestBuilder {
        let crc = crc_hex(bytes);
        self.signed(Method::POST, p, &crc).body(bytes.to_vec())
    }

    pub async fn upload(&self, p: &Params, bytes: &[u8]) -> Reply {
        send(self.upload_req(p, bytes)).await
    }

    /// Steps 1 and 2 for `bytes` as `main`.
    pub async fn prepared(&self, bytes: &[u8]) -> (Creds, Params) {
        let c = self.creds("main").await;
        let p = self.params(&c, bytes.len()).await;
        (c, p)
    }

    /// Like [`prepared`](Self::prepared), and step 2 once more: another object of that size.
    pub async fn prepared_twice(&self, bytes: &[u8]) -> (Creds, Params, Params) {
        let (c, p) = self.prepared(bytes).await;
        let other = self.params(&c, bytes.len()).await;
        (c, p, other)
    }

    /// Steps 1–3 for `bytes` as `main`.
    pub async fn uploaded(&self, bytes: &[u8]) -> (Creds, Params) {
        let (c, p) = self.prepared(bytes).await;
        self.upload(&p, bytes).await;
        (c, p)
    }

    /// Steps 1–4 for `bytes`, as `account`.
    pub async fn ready(&self, account: &str, bytes: &[u8]) -> Ready {
        let creds = self.creds(account).await;
        let params = self.params(&creds, bytes.len()).await;
        let up = self.upload(&params, bytes).await;
        assert_eq!(up.json, json!({"success": 0}), "{}", up.status);
        let r = self.commit(&creds, &params).await;
        assert_eq!(r.code(), 2000, "{}", r.json);
        let poster = r.json["data"]["poster"]["oid"]
            .as_str()
            .expect("poster oid")
            .to_owned();
        Ready { params, poster }
    }

    /// Steps 1–4 for a small MP4 as `main`; the `vid` and the poster oid for step 5.
    pub async fn ready_video(&self) -> (String, String) {
        let r = self.ready("main", &mp4_with_media(4096)).await;
        (r.params.vid, r.poster)
    }

    // ---- step 3b ----

    pub async fn init_reply(&self, p: &Params) -> Reply {
        send(
            self.http
                .post(format!("{}?uploads", p.object_url()))
                .header("Authorization", &p.tos_sign),
        )
        .await
    }

    pub async fn init(&self, p: &Params) -> String {
        let r = self.init_reply(p).await;
        r.ok();
        r.json["payload"]["uploadID"]
            .as_str()
            .expect("uploadID")
            .to_owned()
    }

    /// Steps 1, 2 and the multipart init for `bytes` as `main`.
    pub async fn begin(&self, bytes: &[u8]) -> (Creds, Params, String) {
        let creds = self.creds("main").await;
        let p = self.params(&creds, bytes.len()).await;
        let id = self.init(&p).await;
        (creds, p, id)
    }

    pub fn part_request(&self, p: &Params, id: &str, n: u32, bytes: &[u8]) -> RequestBuilder {
        let url = format!("{}?partNumber={n}&uploadID={id}", p.object_url());
        let headers = PartHeaders {
            sign: &p.tos_sign,
            content_type: "application/octet-stream",
            crc: &crc_hex(bytes),
        };
        self.raw_part(url, headers).body(bytes.to_vec())
    }

    /// A part `PUT` with these headers and no body yet.
    pub fn raw_part(&self, url: String, h: PartHeaders<'_>) -> RequestBuilder {
        self.object_request(Method::PUT, url, h)
    }

    pub async fn part(&self, p: &Params, id: &str, n: u32, bytes: &[u8]) -> Reply {
        send(self.part_request(p, id, n, bytes)).await
    }

    /// Sends a part and checks the answer names it and its CRC.
    pub async fn part_ok(&self, p: &Params, id: &str, n: u32, bytes: &[u8]) {
        let r = self.part(p, id, n, bytes).await;
        r.ok();
        assert_eq!(
            r.json["payload"],
            json!({"part_number": n, "crc32": crc_hex(bytes)})
        );
    }

    /// Sends every part in order, each checked as [`part_ok`](Self::part_ok) does.
    pub async fn parts_ok(&self, p: &Params, id: &str, parts: &[&[u8]]) {
        for (n, part) in (1..).zip(parts) {
            self.part_ok(p, id, n, part).await;
        }
    }

    pub async fn complete(&self, p: &Params, id: &str, list: &str) -> Reply {
        send(
            self.http
                .post(format!("{}?uploadID={id}", p.object_url()))
                .header("Authorization", &p.tos_sign)
                .header("Content-Type", "text/plain")
                .body(list.to_owned()),
        )
        .await
    }

    // ---- step 5 ----

    pub fn create_request(&self, cookie: &str, csrf: &str, body: String) -> RequestBuilder {
        self.http
            .post(self.url("/web/api/media/aweme/create/"))
            .header("Cookie", cookie)
            .header("csrf_token", csrf)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(body)
    }

    /// Step 5 as `main` with [`plain_form`].
    pub fn create_req(&self, vid: &str, poster: &str) -> RequestBuilder {
        let body = serde_urlencoded::to_string(plain_form(vid, poster)).expect("form encodes");
        self.create_request(&cookie_for("main"), &csrf_of("main"), body)
    }

    pub async fn create_raw(&self, cookie: &str, csrf: &str, body: String) -> Reply {
        send(self.create_request(cookie, csrf, body)).await
    }

    pub async fn create(&self, account: &str, form: &[(String, String)]) -> Reply {
        let body = serde_urlencoded::to_string(form).expect("form encodes");
        self.create_raw(&cookie_for(account), &csrf_of(account), body)
            .await
    }

    // ---- 6a, 6b and the control endpoints ----

    pub async fn get_json(&self, path: &str, cookie: Option<&str>) -> Reply {
        let mut req = self.http.get(self.url(path));
        if let Some(c) = cookie {
            req = req.header("Cookie", c);
        }
        send(req).await
    }

    /// The newest posts of `main`, as 6a lists them.
    pub async fn post_list(&self) -> Reply {
        let path = "/web/api/media/aweme/post/?count=10&max_cursor=0";
        self.get_json(path, Some(&cookie_for("main"))).await
    }

    /// The sandbox's posts, as `/__sandbox/posts` lists them.
    pub async fn posts(&self) -> Vec<Value> {
        let posts = self.inspect("posts").await;
        posts.as_array().expect("list").clone()
    }

    pub async fn inspect(&self, what: &str) -> Value {
        self.get_json(&format!("/__sandbox/{what}"), None)
            .await
            .json
    }

    pub async fn expire(&self) {
        let r = send(self.http.post(self.url("/__sandbox/expire"))).await;
        assert_eq!(r.status, StatusCode::OK);
    }

    /// Moves the sandbox clock on; its time afterwards.
    pub async fn advance(&self, seconds: u64) -> i64 {
        let path = format!("/__sandbox/advance?seconds={seconds}");
        let r = send(self.http.post(self.url(&path))).await;
        assert_eq!(r.status, StatusCode::OK);
        r.json["now"].as_i64().expect("now")
    }

    pub async fn add_faults(&self, faults: Value) -> Reply {
        send(self.http.post(self.url("/__sandbox/faults")).json(&faults)).await
    }

    /// Requests the sandbox counted to `step`.
    pub async fn count(&self, step: &str) -> u64 {
        self.inspect("requests").await[step]
            .as_u64()
            .expect("a count")
    }

    /// Posts made so far, waiting (bounded) until there are `n`: work detached from a
    /// request that the client gave up on finishes on its own time.
    pub async fn wait_posts(&self, n: usize) -> Vec<Value> {
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
