//! The browser session in real headless Chromium, against small pages this test serves
//! itself on 127.0.0.1 that follow the simulator's contract (docs/douyin-creator.md §0): a
//! login page with a real QR code that the test "scans" (by decoding the PNG dropcast
//! saved), a state endpoint, an upload page whose script signs every `fetch` to its origin
//! with a secret only that page load knows, and JSON endpoints that refuse unsigned
//! requests.
//!
//! Needs Chromium (Debian: `apt-get install -y chromium`; CI installs it); `CHROME_BIN`
//! overrides the program. Without it each test is skipped with one `SKIPPED (needs
//! Chromium…)` line, or fails when `DROPCAST_REQUIRE_TOOLS` is set (src/test_tools.rs);
//! `DROPCAST_SKIP_BROWSER=1` skips them.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use dropcast::browser::Search;
use dropcast::browser::login::{self, LoginError, LoginOptions, LoginOutcome};
use dropcast::browser::session::{SessionError, SessionSettings, Sessions};
use dropcast::config::Browser;
use dropcast::platform::in_page::{InPage, PageMethod, PageRequest};
use dropcast::platform::{Expired, PublishError};
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use tokio::io::AsyncWriteExt;

/// Generous: the machine is shared and Chromium starts slowly under load.
const BOUND: Duration = Duration::from_secs(90);

// ---------------------------------------------------------------------------------------
// Chromium

#[path = "../src/test_tools.rs"]
mod test_tools;

/// The Chromium to test with, or `None`: skipped, with one line (src/test_tools.rs).
fn chromium() -> Option<PathBuf> {
    test_tools::chromium()
}

fn settings(server: &Server, state_dir: &Path, chromium: &Path) -> SessionSettings {
    let mut s = SessionSettings::new(server.url(""), state_dir);
    s.browser = Browser::Path(chromium.to_path_buf());
    s.timeout = BOUND;
    s
}

// ---------------------------------------------------------------------------------------
// The pages

#[derive(Default)]
struct World {
    counter: u64,
    /// sessionid → uid.
    sessions: HashMap<String, String>,
    tokens: HashMap<String, Token>,
    /// page id → that page load's secret.
    secrets: HashMap<String, String>,
    upload_page_loads: u32,
    /// Signed requests that passed, with their headers.
    signed: Vec<(String, HeaderMap)>,
    sms_typed: Vec<String>,
}

struct Token {
    state: &'static str,
    sms_code: String,
    uid: String,
    /// The cookie was handed out.
    cookie_sent: bool,
}

impl World {
    fn next(&mut self, prefix: &str) -> String {
        self.counter += 1;
        format!(
            "{prefix}{:08x}{}",
            self.counter * 2_654_435_761 % 0xffff_ffff,
            self.counter
        )
    }
}

#[derive(Clone)]
struct Server {
    addr: SocketAddr,
    world: Arc<Mutex<World>>,
}

impl Server {
    async fn start() -> Server {
        let world = Arc::new(Mutex::new(World::default()));
        let app = Router::new()
            .route("/creator-micro/content/upload", get(upload_page))
            .route("/login", get(login_page))
            .route("/login/state", get(login_state))
            .route("/login/sms", post(login_sms))
            .route("/__test/login", get(test_login))
            .route("/web/api/media/upload/auth/v5/", get(auth_v5))
            .route("/web/api/media/user/info/", get(user_info))
            .route("/echo", post(echo))
            .route("/binary", get(binary))
            .with_state(world.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Server { addr, world }
    }

    fn url(&self, path: &str) -> reqwest::Url {
        reqwest::Url::parse(&format!("http://{}/{path}", self.addr)).unwrap()
    }

    fn world(&self) -> std::sync::MutexGuard<'_, World> {
        self.world.lock().unwrap()
    }

    /// The Douyin app scanned `token`'s code (wanting an SMS code next, if `sms`).
    fn scan(&self, token: &str, sms: bool) {
        let mut w = self.world();
        let t = w.tokens.get_mut(token).expect("a token this server made");
        t.state = if sms { "sms" } else { "confirmed" };
    }

    fn expire(&self, token: &str) {
        self.world().tokens.get_mut(token).unwrap().state = "expired";
    }
}

type Shared = State<Arc<Mutex<World>>>;

fn session_uid(w: &World, headers: &HeaderMap) -> Option<String> {
    let cookies = headers.get(header::COOKIE)?.to_str().ok()?;
    cookies
        .split(';')
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == "sessionid")
        .and_then(|(_, v)| w.sessions.get(v).cloned())
}

/// Whether the request carries the signature of a page load this server made.
fn signed(w: &mut World, method: &Method, uri: &Uri, headers: &HeaderMap, body: &[u8]) -> bool {
    let header = |n: &str| headers.get(n).and_then(|v| v.to_str().ok());
    let (Some(page), Some(sign)) = (header("x-dropcast-page"), header("x-dropcast-sign")) else {
        return false;
    };
    let Some(secret) = w.secrets.get(page) else {
        return false;
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    let path_and_query = uri.path_and_query().map_or("/", |p| p.as_str());
    mac.update(format!("{method}\n{path_and_query}\n").as_bytes());
    mac.update(body);
    let ok = base16ct::lower::encode_string(&mac.finalize().into_bytes()) == sign;
    if ok {
        w.signed.push((uri.path().to_string(), headers.clone()));
    }
    ok
}

async fn upload_page(State(world): Shared, headers: HeaderMap) -> Response {
    let mut w = world.lock().unwrap();
    if session_uid(&w, &headers).is_none() {
        return Redirect::to("/login").into_response();
    }
    w.upload_page_loads += 1;
    let page = w.next("page");
    let secret = w.next("secret");
    w.secrets.insert(page.clone(), secret.clone());
    // Ready only once its signing key is imported (asynchronously), as a real page is
    // ready only once its security script has run.
    Html(format!(
        r#"<!doctype html><html><head><meta charset="utf-8"><title>upload</title></head><body>
<h1>上传视频</h1>
<script>
window.__dropcastReady = false;
(async () => {{
  const PAGE = "{page}";
  const enc = new TextEncoder();
  const key = await crypto.subtle.importKey('raw', enc.encode("{secret}"),
      {{name: 'HMAC', hash: 'SHA-256'}}, false, ['sign']);
  const original = window.fetch.bind(window);
  window.fetch = async (input, init = {{}}) => {{
    const url = new URL(typeof input === 'string' ? input : input.url, location.href);
    if (url.origin === location.origin) {{
      const method = (init.method || 'GET').toUpperCase();
      const body = typeof init.body === 'string' ? init.body : '';
      const msg = method + '\n' + url.pathname + url.search + '\n' + body;
      const sig = new Uint8Array(await crypto.subtle.sign('HMAC', key, enc.encode(msg)));
      const headers = new Headers(init.headers || {{}});
      headers.set('x-dropcast-sign', Array.from(sig, b => b.toString(16).padStart(2, '0')).join(''));
      headers.set('x-dropcast-page', PAGE);
      init = Object.assign({{}}, init, {{headers}});
    }}
    return original(input, init);
  }};
  window.__dropcastReady = true;
}})();
</script></body></html>"#
    ))
    .into_response()
}

/// A QR code of `text` as a PNG, black modules on white with a quiet zone.
fn qr_png(text: &str) -> Vec<u8> {
    let code = qrcode::QrCode::new(text.as_bytes()).unwrap();
    let width = code.width() as u32;
    let colors = code.to_colors();
    let (scale, quiet) = (6u32, 4u32);
    let side = (width + 2 * quiet) * scale;
    let img = image::GrayImage::from_fn(side, side, |x, y| {
        let (mx, my) = (x / scale, y / scale);
        let dark = mx >= quiet
            && my >= quiet
            && mx < width + quiet
            && my < width + quiet
            && colors[((my - quiet) * width + (mx - quiet)) as usize] == qrcode::Color::Dark;
        image::Luma([if dark { 0 } else { 255 }])
    });
    let mut png = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    png
}

async fn login_page(State(world): Shared) -> Html<String> {
    let mut w = world.lock().unwrap();
    let token = w.next("tok");
    let uid = w.next("");
    let sms_code = format!("{:06}", w.counter * 7919 % 1_000_000);
    w.tokens.insert(
        token.clone(),
        Token {
            state: "waiting",
            sms_code,
            uid,
            cookie_sent: false,
        },
    );
    let png = base64(&qr_png(&format!("dropcast-sandbox-login:{token}")));
    Html(format!(
        r#"<!doctype html><html><head><meta charset="utf-8"></head><body>
<div id="animate_qrcode_container"><img id="qr" src="data:image/png;base64,{png}"></div>
<button id="qrcode_refresh" style="display:none" onclick="location.reload()">刷新</button>
<div id="sms" style="display:none"><input id="sms_code"><button id="sms_submit">确定</button></div>
<script>
const token = "{token}";
document.getElementById('sms_submit').onclick = () => fetch('/login/sms', {{
  method: 'POST', headers: {{'content-type': 'application/json'}},
  body: JSON.stringify({{token, code: document.getElementById('sms_code').value}})}});
async function poll() {{
  const state = (await (await fetch('/login/state?token=' + token)).json()).state;
  if (state === 'confirmed') {{ location.href = '/creator-micro/content/upload'; return; }}
  if (state === 'expired') {{
    document.getElementById('qr').style.display = 'none';
    document.getElementById('qrcode_refresh').style.display = '';
  }}
  if (state === 'sms') {{ document.getElementById('sms').style.display = ''; }}
  setTimeout(poll, 100);
}}
poll();
</script></body></html>"#
    ))
}

#[derive(serde::Deserialize)]
struct TokenQuery {
    token: String,
}

async fn login_state(State(world): Shared, Query(q): Query<TokenQuery>) -> Response {
    let mut w = world.lock().unwrap();
    let sessionid = w.next("sid");
    let Some(t) = w.tokens.get_mut(&q.token) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let state = t.state;
    if state == "confirmed" && !t.cookie_sent {
        t.cookie_sent = true;
        let uid = t.uid.clone();
        w.sessions.insert(sessionid.clone(), uid);
        // A lasting cookie, as the real site's: it must outlive a browser restart.
        let cookie = format!("sessionid={sessionid}; Path=/; HttpOnly; Max-Age=86400");
        return (
            [(header::SET_COOKIE, cookie)],
            axum::Json(json!({"state": state})),
        )
            .into_response();
    }
    axum::Json(json!({"state": state})).into_response()
}

async fn login_sms(State(world): Shared, body: Bytes) -> StatusCode {
    let v: Value = serde_json::from_slice(&body).unwrap();
    let mut w = world.lock().unwrap();
    let code = v["code"].as_str().unwrap().to_string();
    w.sms_typed.push(code.clone());
    let t = w.tokens.get_mut(v["token"].as_str().unwrap()).unwrap();
    if t.state == "sms" && t.sms_code == code {
        t.state = "confirmed";
        StatusCode::OK
    } else {
        StatusCode::FORBIDDEN
    }
}

#[derive(serde::Deserialize)]
struct UidQuery {
    uid: String,
}

/// Logs the browser in at once (test set-up), then sends it to the upload page.
async fn test_login(State(world): Shared, Query(q): Query<UidQuery>) -> Response {
    let mut w = world.lock().unwrap();
    let sid = w.next("sid");
    w.sessions.insert(sid.clone(), q.uid);
    let cookie = format!("sessionid={sid}; Path=/; HttpOnly; Max-Age=86400");
    (
        [(header::SET_COOKIE, cookie)],
        Redirect::to("/creator-micro/content/upload"),
    )
        .into_response()
}

async fn auth_v5(State(world): Shared, method: Method, uri: Uri, headers: HeaderMap) -> Response {
    let mut w = world.lock().unwrap();
    if !signed(&mut w, &method, &uri, &headers, b"") {
        return StatusCode::FORBIDDEN.into_response();
    }
    match session_uid(&w, &headers) {
        Some(_) => axum::Json(json!({"status_code": 0, "auth": "{}"})).into_response(),
        None => axum::Json(json!({"status_code": 8})).into_response(),
    }
}

async fn user_info(State(world): Shared, method: Method, uri: Uri, headers: HeaderMap) -> Response {
    let mut w = world.lock().unwrap();
    if !signed(&mut w, &method, &uri, &headers, b"") {
        return StatusCode::FORBIDDEN.into_response();
    }
    match session_uid(&w, &headers) {
        Some(uid) => {
            axum::Json(json!({"status_code": 0, "user": {"uid": uid, "nickname": "小明 🎬"}}))
                .into_response()
        }
        None => axum::Json(json!({"status_code": 8})).into_response(),
    }
}

/// Answers the body it was sent, if the page signed it.
async fn echo(
    State(world): Shared,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut w = world.lock().unwrap();
    if !signed(&mut w, &method, &uri, &headers, &body) {
        return StatusCode::FORBIDDEN.into_response();
    }
    (
        StatusCode::CREATED,
        [("X-Echo-Length", body.len().to_string())],
        body,
    )
        .into_response()
}

/// Every byte value, then UTF-8 text: what must survive the trip through the page.
fn binary_body() -> Vec<u8> {
    let mut b: Vec<u8> = (0..=255u8).collect();
    b.extend("中文 😀 #话题".as_bytes());
    b
}

async fn binary() -> Vec<u8> {
    binary_body()
}

fn base64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().fold(0u32, |n, &b| (n << 8) | u32::from(b)) << (8 * (3 - chunk.len()));
        for i in 0..=chunk.len() {
            out.push(char::from(A[(n >> (18 - 6 * i) & 63) as usize]));
        }
        out.push_str(&"=".repeat(3 - chunk.len()));
    }
    out
}

// ---------------------------------------------------------------------------------------
// Helpers

fn request(server: &Server, method: PageMethod, path: &str, body: Option<&str>) -> PageRequest {
    PageRequest {
        method,
        url: server.url(path),
        headers: vec![("X-Test".into(), "from-dropcast".into())],
        body: body.map(str::to_string),
    }
}

/// Logs `account`'s profile in through the test's own shortcut, in a browser of its own
/// that is then closed.
async fn seed_login(settings: &SessionSettings, server: &Server, account: &str, uid: &str) {
    let session = dropcast::browser::session::Session::open(settings, account, "test set-up")
        .await
        .unwrap();
    session
        .goto(&server.url(&format!("__test/login?uid={uid}")))
        .await
        .unwrap();
    session.load_upload_page().await.unwrap();
    session.close().await;
}

/// The terminal `login` writes to, readable while it runs.
#[derive(Clone)]
struct Terminal(tokio::sync::watch::Sender<String>);

impl std::io::Write for Terminal {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf).into_owned();
        self.0.send_modify(|t| t.push_str(&text));
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Terminal {
    /// Waits until `needle` has been written `n` times.
    async fn wait_for(&self, needle: &str, n: usize) -> String {
        let mut rx = self.0.subscribe();
        let r = tokio::time::timeout(BOUND, rx.wait_for(|t| t.matches(needle).count() >= n)).await;
        match r {
            Ok(Ok(t)) => t.clone(),
            _ => panic!(
                "`{needle}` (×{n}) not written within {BOUND:?}; the terminal shows:\n{}",
                *self.0.borrow()
            ),
        }
    }
}

/// Scans the QR code the way a phone does: decodes the PNG dropcast saved.
fn scan_png(path: &Path) -> String {
    let img = image::open(path).unwrap().to_luma8();
    let mut prepared = rqrr::PreparedImage::prepare(img);
    let grids = prepared.detect_grids();
    let (_, text) = grids[0].decode().unwrap();
    text.strip_prefix("dropcast-sandbox-login:")
        .expect("the login page's code")
        .to_string()
}

/// Starts `login::run` for `account`; returns its terminal, the writer of its keyboard and
/// its outcome.
fn start_login(
    settings: SessionSettings,
    account: &str,
) -> (
    Terminal,
    tokio::io::DuplexStream,
    PathBuf,
    tokio::task::JoinHandle<Result<LoginOutcome, LoginError>>,
) {
    let mut options = LoginOptions::new(settings, account);
    options.timeout = BOUND;
    let png = options.qr_png.clone();
    let terminal = Terminal(tokio::sync::watch::channel(String::new()).0);
    let (keyboard, keys) = tokio::io::duplex(64);
    let mut out = terminal.clone();
    let task = tokio::spawn(async move {
        let mut keys = tokio::io::BufReader::new(keys);
        login::run(&options, &mut out, &mut keys).await
    });
    (terminal, keyboard, png, task)
}

async fn outcome(
    task: tokio::task::JoinHandle<Result<LoginOutcome, LoginError>>,
) -> Result<LoginOutcome, LoginError> {
    tokio::time::timeout(BOUND, task)
        .await
        .expect("login ends")
        .unwrap()
}

// ---------------------------------------------------------------------------------------
// Tests

const SCAN: &str = "Scan the QR code with the Douyin app";

// Regression (issue 11 item 3): there was no way to log a douyin account's browser
// profile in; the QR code must reach a terminal with no screen, and the login must end
// once upload/auth/v5 from the page answers status_code 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_by_scanning_the_qr_code_then_the_session_works_and_says_who_it_is() {
    let Some(chromium) = chromium() else { return };
    let server = Server::start().await;
    let state = tempfile::tempdir().unwrap();
    let settings = settings(&server, state.path(), &chromium);

    let (terminal, _keyboard, png, task) = start_login(settings.clone(), "main");
    terminal.wait_for(SCAN, 1).await;
    let shown = terminal.wait_for(&format!("{}).", png.display()), 1).await;
    // The code is drawn in the terminal on lines of its own, and the PNG path given.
    assert!(shown.contains("Account `main` is not logged in"), "{shown}");
    assert!(
        shown
            .lines()
            .any(|l| !l.is_empty() && l.chars().all(|c| " █▀▄".contains(c))),
        "no QR code drawn:\n{shown}"
    );
    assert!(shown.contains(&png.display().to_string()), "{shown}");
    let token = scan_png(&png);
    server.scan(&token, false);
    assert_eq!(outcome(task).await.unwrap(), LoginOutcome::LoggedIn);
    assert!(terminal.0.borrow().contains("Logged in: account `main`."));

    // The profile kept the session: a second login has nothing to do, and the agent's
    // sessions work and say who the account is.
    let (_, _keyboard, _, again) = start_login(settings.clone(), "main");
    assert_eq!(outcome(again).await.unwrap(), LoginOutcome::AlreadyLoggedIn);
    let sessions = Sessions::new(settings.clone());
    login::check_session(&sessions, "main", &settings.creator_url)
        .await
        .unwrap();
    let who = login::whoami(&sessions, "main", &settings.creator_url)
        .await
        .unwrap();
    let uid = server.world().tokens[&token].uid.clone();
    assert_eq!(who.uid, uid);
    assert_eq!(who.nickname.as_deref(), Some("小明 🎬"));
    sessions.close_all().await;
}

// Regression (issue 11 item 3): an expired QR code must be renewed (#qrcode_refresh) and an
// SMS code the site asks for must be read from the terminal and submitted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_code_is_renewed_and_an_sms_code_is_asked_for_and_submitted() {
    let Some(chromium) = chromium() else { return };
    let server = Server::start().await;
    let state = tempfile::tempdir().unwrap();
    let settings = settings(&server, state.path(), &chromium);

    let (terminal, mut keyboard, png, task) = start_login(settings, "main");
    terminal.wait_for(SCAN, 1).await;
    let first = scan_png(&png);
    server.expire(&first);
    terminal.wait_for("The QR code expired", 1).await;
    terminal.wait_for(SCAN, 2).await;
    let second = scan_png(&png);
    assert_ne!(first, second, "a new code after the refresh");

    server.scan(&second, true);
    terminal.wait_for("Type it and press Enter", 1).await;
    let code = server.world().tokens[&second].sms_code.clone();
    keyboard
        .write_all(format!("{code}\n").as_bytes())
        .await
        .unwrap();
    assert_eq!(outcome(task).await.unwrap(), LoginOutcome::LoggedIn);
    assert_eq!(server.world().sms_typed, vec![code]);
}

// Regression (issue 11 item 2): requests to the creator site must go out as `fetch` inside
// the upload page, so that the page's own script signs them; any bytes must come back
// intact; a page that shows the login instead pauses the account (cookie expired).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_in_the_page_is_signed_by_the_page_and_carries_any_bytes() {
    let Some(chromium) = chromium() else { return };
    let server = Server::start().await;
    let state = tempfile::tempdir().unwrap();
    let settings = settings(&server, state.path(), &chromium);
    seed_login(&settings, &server, "main", "42").await;
    let sessions = Sessions::new(settings);

    let text = r#"{"text":"中文 😀 #话题 @某人","n":1}"#;
    let reply = sessions
        .fetch(
            "main",
            request(&server, PageMethod::Post, "echo", Some(text)),
        )
        .await
        .unwrap();
    assert_eq!(reply.status, 201);
    assert_eq!(reply.body, text.as_bytes());
    assert_eq!(
        reply.header("x-echo-length"),
        Some(text.len().to_string().as_str())
    );
    {
        let w = server.world();
        let (path, headers) = w.signed.last().unwrap();
        assert_eq!(path, "/echo");
        assert_eq!(
            headers["x-test"], "from-dropcast",
            "the caller's header went too"
        );
    }
    let reply = sessions
        .fetch("main", request(&server, PageMethod::Get, "binary", None))
        .await
        .unwrap();
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, binary_body());

    // A fetch the page cannot make is a transient failure; the browser stays up.
    let pid = sessions.browser_pid("main").await;
    let unreachable = PageRequest {
        url: reqwest::Url::parse("http://127.0.0.1:1/nothing").unwrap(),
        ..request(&server, PageMethod::Get, "", None)
    };
    let err = sessions.fetch("main", unreachable).await.unwrap_err();
    assert_eq!(err.class(), "transient", "{err}");
    assert_eq!(sessions.browser_pid("main").await, pid);

    // The same request from outside the page is refused: the signature is the page's.
    let outside = reqwest::Client::new()
        .post(server.url("echo"))
        .body(text)
        .send()
        .await
        .unwrap();
    assert_eq!(outside.status(), 403);

    // Each reload is a fresh page load (a new secret), and requests still pass after it.
    let loads = server.world().upload_page_loads;
    sessions.reload("main").await.unwrap();
    assert_eq!(server.world().upload_page_loads, loads + 1);
    let reply = sessions
        .fetch(
            "main",
            request(
                &server,
                PageMethod::Get,
                "web/api/media/upload/auth/v5/",
                None,
            ),
        )
        .await
        .unwrap();
    assert_eq!(
        serde_json::from_slice::<Value>(&reply.body).unwrap()["status_code"],
        0
    );

    // An account never logged in lands on the login page: its cookie has expired.
    match sessions.reload("nobody").await {
        Err(PublishError::AuthExpired {
            what: Expired::Cookie,
            reason,
        }) => assert!(reason.contains("dropcast login nobody"), "{reason}"),
        other => panic!("expected the cookie class, got {other:?}"),
    }
    sessions.close_all().await;
}

// Regression (issue 11 item 2): an idle agent must hold no browser: it is closed cleanly
// (so the profile is written back) after `browser_idle`, and the next request starts a
// new one on the same profile, still logged in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_browser_is_closed_cleanly_and_the_session_survives_a_reopen() {
    let Some(chromium) = chromium() else { return };
    let server = Server::start().await;
    let state = tempfile::tempdir().unwrap();
    let mut settings = settings(&server, state.path(), &chromium);
    seed_login(&settings, &server, "main", "7").await;
    settings.idle = Duration::from_secs(1);
    let sessions = Sessions::new(settings.clone());

    let auth = || {
        request(
            &server,
            PageMethod::Get,
            "web/api/media/upload/auth/v5/",
            None,
        )
    };
    let reply = sessions.fetch("main", auth()).await.unwrap();
    assert_eq!(
        serde_json::from_slice::<Value>(&reply.body).unwrap()["status_code"],
        0
    );
    let pid = sessions.browser_pid("main").await.expect("a browser runs");
    let mut open = sessions.watch_open("main");
    assert!(*open.borrow());
    tokio::time::timeout(BOUND, open.wait_for(|open| !open))
        .await
        .expect("closed when idle")
        .unwrap();
    assert_eq!(sessions.browser_pid("main").await, None);
    #[cfg(target_os = "linux")]
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists(),
        "the browser process {pid} ended"
    );
    // Chromium notes a clean exit in the profile (a kill leaves "Crashed").
    let prefs: Value = serde_json::from_slice(
        &std::fs::read(state.path().join("browser/main/Default/Preferences")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        prefs["profile"]["exit_type"], "Normal",
        "{}",
        prefs["profile"]
    );

    let reply = sessions.fetch("main", auth()).await.unwrap();
    assert_eq!(
        serde_json::from_slice::<Value>(&reply.body).unwrap()["status_code"],
        0
    );
    assert_ne!(
        sessions.browser_pid("main").await,
        Some(pid),
        "a new browser"
    );
    sessions.close_all().await;
}

// Regression (issue 11 item 2): with no browser installed, a douyin account's first request
// and `login` must say plainly what to install or to set `platform.browser`.
#[tokio::test]
async fn no_browser_found_says_what_to_install() {
    let server = Server::start().await;
    let state = tempfile::tempdir().unwrap();
    let empty = tempfile::tempdir().unwrap();
    let mut settings = SessionSettings::new(server.url(""), state.path());
    settings.search = Search {
        path: Some(empty.path().as_os_str().to_owned()),
        well_known: Vec::new(),
    };
    let sessions = Sessions::new(settings.clone());
    let err = sessions
        .fetch("main", request(&server, PageMethod::Get, "binary", None))
        .await
        .unwrap_err();
    let PublishError::Rejected { reason } = err else {
        panic!("expected a rejection, got {err:?}")
    };
    assert!(
        reason.contains("no Chromium, Google Chrome or Microsoft Edge found"),
        "{reason}"
    );
    assert!(reason.contains("apt-get install chromium"), "{reason}");
    assert!(reason.contains("platform.browser"), "{reason}");

    let (_, _keyboard, _, task) = start_login(settings, "main");
    match outcome(task).await {
        Err(LoginError::Session(SessionError::NoBrowser(e))) => {
            assert_eq!(e.to_string(), reason)
        }
        other => panic!("expected no browser, got {other:?}"),
    }
}

// Regression (issue 11 item 3): `login` and a running agent share a profile: one Chromium
// per profile, so `login` says who holds it and waits for the agent to close its browser,
// and the agent's next request uses the new session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_waits_for_the_agents_browser_to_close_then_the_agent_is_logged_in() {
    let Some(chromium) = chromium() else { return };
    let server = Server::start().await;
    let state = tempfile::tempdir().unwrap();
    let mut settings = settings(&server, state.path(), &chromium);
    settings.idle = Duration::from_secs(2);
    let agent = Sessions::new(settings.clone());
    let logged_out = agent.reload("main").await.unwrap_err();
    assert_eq!(logged_out.class(), "auth_expired");
    assert!(
        *agent.watch_open("main").borrow(),
        "the agent's browser is open"
    );

    let (terminal, _keyboard, png, task) = start_login(settings.clone(), "main");
    let waiting = terminal.wait_for("waiting up to", 1).await;
    assert!(
        waiting.contains(&format!(
            "the browser profile of account `main` is in use by pid {}: dropcast agent",
            std::process::id()
        )),
        "{waiting}"
    );
    terminal.wait_for(SCAN, 1).await;
    assert!(
        !*agent.watch_open("main").borrow(),
        "the agent closed its browser first"
    );
    server.scan(&scan_png(&png), false);
    assert_eq!(outcome(task).await.unwrap(), LoginOutcome::LoggedIn);

    login::check_session(&agent, "main", &settings.creator_url)
        .await
        .unwrap();
    agent.close_all().await;
}

// Regression (issue 11 item 3): a login nobody completes must end with an error (`login`
// exits 1), not wait forever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_nobody_completes_times_out() {
    let Some(chromium) = chromium() else { return };
    let server = Server::start().await;
    let state = tempfile::tempdir().unwrap();
    let mut options = LoginOptions::new(settings(&server, state.path(), &chromium), "main");
    options.timeout = Duration::from_secs(3);
    let mut out = std::io::sink();
    let err = tokio::time::timeout(
        BOUND,
        login::run(&options, &mut out, &mut tokio::io::empty()),
    )
    .await
    .expect("login ends")
    .unwrap_err();
    assert!(matches!(err, LoginError::Timeout(_)), "{err:?}");
    assert_eq!(
        err.to_string(),
        "not logged in after 3s: run `dropcast login` again to get a new code"
    );
}
