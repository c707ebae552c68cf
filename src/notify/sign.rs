//! The signature of a body: HMAC-SHA256 with the sink's secret over the exact bytes sent,
//! as `X-Dropcast-Signature: sha256=<hex>` (the GitHub webhook convention), so a receiver
//! can check a body came from this agent. See docs/notifications.md for a receiver's check.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::secret::Secret;

/// The header carrying the signature.
pub const SIGNATURE_HEADER: &str = "X-Dropcast-Signature";

/// `sha256=` and the hex HMAC-SHA256 of `body` under `secret`.
pub fn signature(secret: &Secret, body: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.expose().as_bytes())
        .expect("HMAC takes a key of any length");
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_rfc_4231_test_case_2() {
        // RFC 4231 §4.3: key "Jefe", data "what do ya want for nothing?".
        let sig = signature(&Secret::new("Jefe"), b"what do ya want for nothing?");
        assert_eq!(
            sig,
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn another_body_or_key_gives_another_signature() {
        let k = Secret::new("k");
        assert_ne!(signature(&k, b"a"), signature(&k, b"b"));
        assert_ne!(signature(&k, b"a"), signature(&Secret::new("l"), b"a"));
    }
}
