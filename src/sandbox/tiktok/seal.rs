//! Tokens that outlive one simulator. With `platform.sandbox: true` every dropcast process
//! starts its own simulator, so the tokens `dropcast login` got must still work for the
//! `dropcast watch` that follows, as TikTok's own do. Each token therefore carries its
//! grant and expiry, sealed with an HMAC: a token this run issued is judged by its memory
//! (expired, rotated, revoked); one it does not know is taken only when its seal holds.
//! (A refresh token rotated by an earlier run is not known to be rotated: a limit of the
//! simulator, documented in docs/tiktok.md.) `open_id`s are stable per username for the
//! same reason.

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

use super::state::Grant;

/// The simulator's own key (it guards nothing real: sandbox tokens are not secrets of a
/// user, and a forged one is refused like any unknown token).
const KEY: &[u8] = b"dropcast sandbox tiktok token v1";

/// A token's grant and expiry (sandbox milliseconds).
pub(crate) struct Sealed {
    pub grant: Grant,
    pub expires_ms: i64,
}

fn mac(prefix: &str, payload: &str) -> String {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(KEY).expect("HMAC takes any key");
    mac.update(prefix.as_bytes());
    mac.update(b"\0");
    mac.update(payload.as_bytes());
    base16ct::lower::encode_string(&mac.finalize().into_bytes()[..16])
}

/// A token of kind `prefix` (`act`, `rft`) for `grant` until `expires_ms`; `nonce` makes
/// two tokens of one grant differ.
pub(crate) fn seal(prefix: &str, grant: &Grant, expires_ms: i64, nonce: &str) -> String {
    let fields = serde_json::json!([
        grant.open_id,
        grant.client_key,
        grant.scopes,
        expires_ms,
        nonce
    ]);
    let payload = base16ct::lower::encode_string(fields.to_string().as_bytes());
    format!("{prefix}.{payload}!{}.va", mac(prefix, &payload))
}

/// The grant inside `token`, if it is a `prefix` token whose seal holds.
pub(crate) fn unseal(prefix: &str, token: &str) -> Option<Sealed> {
    let rest = token.strip_prefix(prefix)?.strip_prefix('.')?;
    let rest = rest.strip_suffix(".va")?;
    let (payload, tag) = rest.split_once('!')?;
    // Constant time is not needed here: the key protects nothing of a user's.
    if mac(prefix, payload) != tag {
        return None;
    }
    let bytes = base16ct::lower::decode_vec(payload).ok()?;
    let (open_id, client_key, scopes, expires_ms, _nonce): (
        String,
        String,
        Vec<String>,
        i64,
        String,
    ) = serde_json::from_slice(&bytes).ok()?;
    Some(Sealed {
        grant: Grant {
            open_id,
            client_key,
            scopes,
        },
        expires_ms,
    })
}

/// The stable `open_id` of the creator `username`.
pub(crate) fn open_id(username: &str) -> String {
    let digest = Sha256::digest(format!("tiktok-open-id\0{username}").as_bytes());
    format!("-000{}", base16ct::lower::encode_string(&digest[..14]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant() -> Grant {
        Grant {
            open_id: open_id("dropcast_sandbox"),
            client_key: "aw1x".into(),
            scopes: vec!["video.publish".into(), "user.info.basic".into()],
        }
    }

    #[test]
    fn a_sealed_token_gives_back_its_grant_and_nothing_forged_passes() {
        let token = seal("act", &grant(), 1_234, "n1");
        let back = unseal("act", &token).expect("sealed");
        assert_eq!(back.grant.open_id, grant().open_id);
        assert_eq!(back.grant.scopes, grant().scopes);
        assert_eq!(back.expires_ms, 1_234);
        assert!(
            unseal("rft", &token).is_none(),
            "an access token is no refresh token"
        );
        assert_ne!(token, seal("act", &grant(), 1_234, "n2"));
        // Any change to the payload breaks the seal.
        let payload_at = token.find('.').unwrap() + 1;
        let mut forged = token.clone().into_bytes();
        forged[payload_at] = if forged[payload_at] == b'7' {
            b'8'
        } else {
            b'7'
        };
        assert!(unseal("act", &String::from_utf8(forged).unwrap()).is_none());
        assert!(unseal("act", "act.00!00.va").is_none());
    }

    #[test]
    fn open_ids_are_stable_per_username() {
        assert_eq!(open_id("a"), open_id("a"));
        assert_ne!(open_id("a"), open_id("b"));
        assert!(open_id("a").starts_with("-000"));
    }
}
