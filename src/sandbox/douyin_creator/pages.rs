//! The two HTML pages: the login page (QR code, polling, renewal, SMS) and the upload
//! page, whose inline script ([`SIGN_JS`]) signs every `fetch` to its origin with a
//! secret made for that page load alone.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::http::StatusCode;
use axum::http::header::{CACHE_CONTROL, LOCATION};
use axum::response::{Html, IntoResponse, Response};

use super::guard;
use super::state::{Page, millis};
use crate::sandbox::state::App;

/// The signing script (also loadable by node for its own check).
const SIGN_JS: &str = include_str!("sign.js");

/// The login page for `token`, its QR code as a base64 PNG.
pub(crate) fn login_html(token: &str, png_base64: &str) -> String {
    format!(
        r#"<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>登录 - 抖音创作者中心 (dropcast sandbox)</title></head>
<body>
<h1>扫码登录</h1>
<p id="login_hint">Scan with the Douyin app (sandbox: POST /__sandbox/douyin/login/scan {{"token": "{token}"}})</p>
<div id="animate_qrcode_container"><img id="qrcode_img" alt="QR code" src="data:image/png;base64,{png_base64}"></div>
<button id="qrcode_refresh" style="display:none">刷新二维码</button>
<div id="sms_box" style="display:none">
  <input id="sms_code" inputmode="numeric" autocomplete="one-time-code">
  <button id="sms_submit">验证</button>
  <span id="sms_error"></span>
</div>
<p id="login_state" data-token="{token}">waiting</p>
<script>
(function () {{
  var token = "{token}", done = false;
  var el = function (id) {{ return document.getElementById(id); }};
  el("qrcode_refresh").onclick = function () {{ location.href = "/login"; }};
  el("sms_submit").onclick = function () {{
    fetch("/login/sms", {{method: "POST", headers: {{"Content-Type": "application/json"}},
      body: JSON.stringify({{token: token, code: el("sms_code").value}})}})
      .then(function (r) {{ return r.json(); }})
      .then(function (j) {{ if (j.error) el("sms_error").textContent = j.error; show(j.state); }});
  }};
  function show(state) {{
    if (done) return;
    el("login_state").textContent = state;
    if (state === "confirmed") {{ done = true; location.href = "/creator-micro/content/upload"; }}
    if (state === "expired") {{
      done = true; el("qrcode_img").style.display = "none"; el("qrcode_refresh").style.display = "";
    }}
    if (state === "sms") el("sms_box").style.display = "";
  }}
  function poll() {{
    if (done) return;
    fetch("/login/state?token=" + token).then(function (r) {{ return r.json(); }})
      .then(function (j) {{ show(j.state); }}, function () {{}})
      .then(function () {{ if (!done) setTimeout(poll, 500); }});
  }}
  setTimeout(poll, 500);
}})();
</script>
</body></html>
"#
    )
}

/// The upload page of one page load.
fn upload_html(page_id: &str, secret: &str, nickname: &str) -> String {
    let nickname = nickname
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    format!(
        r#"<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>发布视频 - 抖音创作者中心 (dropcast sandbox)</title>
<script id="dropcast-guard" data-page="{page_id}" data-secret="{secret}">
{SIGN_JS}
</script></head>
<body><h1>发布视频</h1><p id="nickname">{nickname}</p></body></html>
"#
    )
}

/// `GET /creator-micro/content/upload`: the upload page with a fresh signing secret, or a
/// redirect to `/login` without a live session.
pub(crate) async fn upload(State(app): State<App>, headers: HeaderMap) -> Response {
    let Ok((sid, session)) = guard::logged_in(&app, &headers) else {
        return (StatusCode::FOUND, [(LOCATION, super::paths::LOGIN)]).into_response();
    };
    let now = super::now_ms(&app);
    let ttl = millis(app.creator.cfg.page_ttl);
    let (page_id, secret) = {
        let mut m = app.creator.lock();
        m.pages
            .retain(|_, p| now < p.created_ms.saturating_add(ttl));
        let page_id = m.hex("page", 16);
        let secret = m.hex("page-secret", 32);
        m.pages.insert(
            page_id.clone(),
            Page {
                secret: secret.clone(),
                session: sid,
                created_ms: now,
            },
        );
        (page_id, secret)
    };
    let html = upload_html(&page_id, &secret, &session.nickname);
    ([(CACHE_CONTROL, "no-store")], Html(html)).into_response()
}
