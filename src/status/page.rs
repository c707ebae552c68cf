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
    format!("sha256-{}", base64(&Sha256::digest(text.as_bytes())))
}

/// Standard base64 with padding.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc_4648_vectors() {
        let cases = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ];
        for (plain, encoded) in cases {
            assert_eq!(base64(plain.as_bytes()), encoded);
        }
    }

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
