//! PKCE for the authorization code flow (docs/tiktok.md §1.1): a random
//! `code_verifier`, its challenge as TikTok's desktop page computes it (**lower-case hex**
//! of SHA-256, not RFC 7636's base64url), and the random `state` the callback must return.

use sha2::{Digest, Sha256};

use super::wire;
use crate::secret::Secret;

/// One login's verifier and state; both secret until the flow ends.
pub(crate) struct Pkce {
    pub verifier: Secret,
    pub state: Secret,
}

impl Pkce {
    /// A fresh verifier ([`wire::VERIFIER_LEN`] characters of [`wire::VERIFIER_CHARS`]) and state.
    pub(crate) fn new() -> Result<Pkce, getrandom::Error> {
        Ok(Pkce {
            verifier: Secret::new(random_text(wire::VERIFIER_LEN)?),
            state: Secret::new(random_text(32)?),
        })
    }

    /// `code_challenge` for the authorize address.
    pub(crate) fn challenge(&self) -> String {
        challenge(self.verifier.expose())
    }
}

/// Lower-case hex of SHA-256(`verifier`) (§1.1, doc: TikTok's page computes hex).
pub(crate) fn challenge(verifier: &str) -> String {
    base16ct::lower::encode_string(&Sha256::digest(verifier.as_bytes()))
}

/// `len` characters drawn uniformly from the verifier alphabet (rejection sampling, so no
/// character is more likely than another).
fn random_text(len: usize) -> Result<String, getrandom::Error> {
    let alphabet = wire::VERIFIER_CHARS;
    // The largest multiple of the alphabet's size that fits in a byte.
    let limit = 256 - 256 % alphabet.len();
    let mut out = String::with_capacity(len);
    let mut buf = [0u8; 64];
    while out.len() < len {
        getrandom::fill(&mut buf)?;
        for &b in &buf {
            if (b as usize) < limit && out.len() < len {
                out.push(alphabet[b as usize % alphabet.len()] as char);
            }
        }
    }
    Ok(out)
}

/// Compares two secrets in time independent of where they differ.
pub(crate) fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 7636 appendix B: its verifier, whose S256 challenge is
    // `E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM` in base64url: the same digest in hex.
    #[test]
    fn the_challenge_is_the_rfc_7636_digest_in_lower_case_hex() {
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let hex = challenge(verifier);
        assert_eq!(
            hex,
            "13d31e961a1ad8ec2f16b10c4c982e0876a878ad6df144566ee1894acb70f9c3"
        );
        let digest = base16ct::lower::decode_vec(&hex).unwrap();
        let b64 = base64url(&digest);
        assert_eq!(b64, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
    }

    #[test]
    fn verifiers_and_states_are_long_random_and_in_the_alphabet() {
        let a = Pkce::new().unwrap();
        let b = Pkce::new().unwrap();
        let v = a.verifier.expose();
        assert!((43..=128).contains(&v.len()));
        assert!(v.bytes().all(|c| wire::VERIFIER_CHARS.contains(&c)));
        assert_ne!(v, b.verifier.expose());
        assert_ne!(a.state.expose(), b.state.expose());
        assert_eq!(a.challenge().len(), 64);
        assert!(same("abc", "abc") && !same("abc", "abd") && !same("abc", "ab"));
    }

    /// Unpadded base64url (RFC 4648 §5), for comparing with the RFC's vector.
    fn base64url(bytes: &[u8]) -> String {
        const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let mut out = String::new();
        for chunk in bytes.chunks(3) {
            let n = chunk
                .iter()
                .enumerate()
                .fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
            for i in 0..=chunk.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            }
        }
        out
    }
}
