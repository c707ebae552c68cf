//! Every name the creator site's pages use that the browser side relies on
//! (docs/douyin-creator.md §0, §1, and the contract with the simulator): kept in one place,
//! since the site changes them.

/// The page requests are made from, relative to `creator_url` (seen).
pub const UPLOAD_PAGE: &str = "creator-micro/content/upload";

/// Step 1, fetched from the page: `status_code` 0 means logged in (ours: the one test of a
/// session, never page selectors).
pub const AUTH_PATH: &str = "web/api/media/upload/auth/v5/";

/// Who the account is: `{"status_code": 0, "user": {"uid": "…", "nickname": "…"}}` (ours).
pub const USER_INFO_PATH: &str = "web/api/media/user/info/";

/// `status_code` of a reply when the session is not logged in (seen).
pub const NOT_LOGGED_IN: i64 = 8;

/// The QR code image of the login page, a `data:image/png;base64,…` (seen).
pub const QR_IMAGE: &str = "div#animate_qrcode_container img";

/// The button that asks for a new code once the shown one expired (seen).
pub const QR_REFRESH: &str = "#qrcode_refresh";

/// The SMS code field the site shows when it wants one, and its submit button (ours for the
/// button).
pub const SMS_INPUT: &str = "input#sms_code";
pub const SMS_SUBMIT: &str = "#sms_submit";

/// Evaluated in a freshly loaded page; resolves once the page can sign requests: when the
/// document has loaded and, if the page declares `window.__dropcastReady` (the simulator's
/// page does, ours), once that is `true`. A page that becomes ready late must set it to
/// `false` first thing.
pub const READY_JS: &str = r#"() => new Promise((resolve) => {
    const check = () => {
        if (document.readyState === 'complete'
            && (!('__dropcastReady' in window) || window.__dropcastReady === true)) {
            resolve(true);
        } else {
            setTimeout(check, 25);
        }
    };
    check();
})"#;

/// `fetch(url, {method, headers, body, credentials: 'include'})` in the page, answering
/// `{status, headers: [[name, value]…] (lower-case names), body: base64}` so that any bytes
/// survive the DevTools boundary. Its arguments are passed as values, never spliced into
/// the source.
pub const FETCH_JS: &str = r#"async (url, method, headers, body) => {
    const init = {method, headers: Object.fromEntries(headers), credentials: 'include'};
    if (body !== null) { init.body = body; }
    const r = await fetch(url, init);
    const bytes = new Uint8Array(await r.arrayBuffer());
    let bin = '';
    for (let i = 0; i < bytes.length; i += 0x8000) {
        bin += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
    }
    const hs = [];
    r.headers.forEach((value, name) => hs.push([name.toLowerCase(), value]));
    return {status: r.status, headers: hs, body: btoa(bin)};
}"#;

/// What the login page shows, in one look: `{path, qr, refresh, sms}` where `qr` is the
/// visible QR image's `src` (or null) and `refresh`/`sms` say whether those are visible.
pub const LOGIN_LOOK_JS: &str = r#"(qrSel, refreshSel, smsSel) => {
    const shown = (sel) => {
        const el = document.querySelector(sel);
        if (!el || el.hidden) return null;
        const style = getComputedStyle(el);
        if (style.display === 'none' || style.visibility === 'hidden') return null;
        return el.getClientRects().length > 0 ? el : null;
    };
    const img = shown(qrSel);
    return {
        path: location.pathname,
        qr: img ? img.getAttribute('src') : null,
        refresh: shown(refreshSel) !== null,
        sms: shown(smsSel) !== null,
    };
}"#;

/// Clicks the element the selector names, if there is one; says whether it did.
pub const CLICK_JS: &str = r#"(sel) => {
    const el = document.querySelector(sel);
    if (!el) return false;
    el.click();
    return true;
}"#;
