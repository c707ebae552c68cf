//! The dashboard: one self-contained HTML page (inline CSS and JS, nothing fetched from
//! elsewhere) that polls `/api/jobs` every second. Its `Content-Security-Policy` allows
//! exactly its own inline style and script (by hash) and requests to this server.

use std::sync::LazyLock;

use sha2::{Digest, Sha256};

const STYLE: &str = include_str!("dashboard.css");
const SCRIPT: &str = include_str!("dashboard.js");
const BODY: &str = include_str!("dashboard.html");

/// The page and its policy, put together once.
pub struct Page {
    pub html: String,
    pub csp: String,
}

pub static PAGE: LazyLock<Page> = LazyLock::new(|| Page {
    html: format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta name=\"referrer\" content=\"no-referrer\">\n\
         <title>dropcast</title>\n<style>{STYLE}</style>\n</head>\n<body>\n{BODY}\n\
         <script>{SCRIPT}</script>\n</body>\n</html>\n"
    ),
    csp: format!(
        "default-src 'none'; style-src '{}'; script-src '{}'; connect-src 'self'; \
         img-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
        csp_hash(STYLE),
        csp_hash(SCRIPT)
    ),
});

/// `sha256-<base64>` of an inline element's text, as CSP wants it.
fn csp_hash(text: &str) -> String {
    format!(
        "sha256-{}",
        crate::b64::encode(&Sha256::digest(text.as_bytes()))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_allows_exactly_the_inline_script_and_style() {
        let page = &*PAGE;
        assert!(page.html.contains(&format!("<script>{SCRIPT}</script>")));
        assert!(page.html.contains(&format!("<style>{STYLE}</style>")));
        assert!(page.csp.contains(&csp_hash(SCRIPT)));
        assert!(!page.csp.contains("unsafe"));
        assert!(!page.html.contains("http://") && !page.html.contains("src=\"//"));
    }
}
