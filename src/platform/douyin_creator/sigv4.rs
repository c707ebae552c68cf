//! AWS Signature Version 4 for steps 2 and 4 (docs/douyin-creator.md §2), with the
//! maintained `aws-sigv4` crate: the one place the STS keys are used to sign.
//!
//! The headers signed are `host`, `x-amz-date`, `x-amz-security-token` and, when sent,
//! `x-amz-content-sha256` (the body's SHA-256). The unit tests prove the way the crate is
//! called on AWS's published test-suite vector `get-vanilla`, and the full VOD form against
//! a signature computed by hand.

use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    PayloadChecksumKind, SignableBody, SignableRequest, SigningSettings, sign,
};
use aws_sigv4::sign::v4;
use reqwest::header::{HeaderName, HeaderValue};

use super::sts::StsKeys;

/// Region and service a request is signed for.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Scope {
    pub region: &'static str,
    pub service: &'static str,
    /// Send and sign `x-amz-content-sha256`.
    pub content_sha256: bool,
}

/// The headers that sign `method url` with `body` at `time`: `authorization`,
/// `x-amz-date`, `x-amz-security-token` (when the keys have a token) and
/// `x-amz-content-sha256` (when the scope says so). Secret values are marked sensitive.
/// The error says what could not be signed, never a key.
pub(crate) fn signed_headers(
    method: &str,
    url: &reqwest::Url,
    body: &[u8],
    keys: &StsKeys,
    scope: Scope,
    time: SystemTime,
) -> Result<Vec<(HeaderName, HeaderValue)>, String> {
    let identity = Credentials::new(
        keys.access_key_id.expose(),
        keys.secret_access_key.expose(),
        keys.session_token.as_ref().map(|t| t.expose().to_owned()),
        None,
        "dropcast-sts",
    )
    .into();
    let mut settings = SigningSettings::default();
    if scope.content_sha256 {
        settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
    }
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(scope.region)
        .name(scope.service)
        .time(time)
        .settings(settings)
        .build()
        .map_err(|e| format!("cannot sign the request: {e}"))?
        .into();
    let request = SignableRequest::new(
        method,
        url.as_str(),
        std::iter::empty(),
        SignableBody::Bytes(body),
    )
    .map_err(|e| format!("cannot sign the request: {e}"))?;
    let (instructions, _signature) = sign(request, &params)
        .map_err(|e| format!("cannot sign the request: {e}"))?
        .into_parts();
    let (headers, _params) = instructions.into_parts();
    headers
        .into_iter()
        .map(|h| {
            let name = HeaderName::from_static(h.name());
            let mut value = HeaderValue::from_str(h.value())
                .map_err(|_| format!("the signed header `{}` is not a header value", h.name()))?;
            value.set_sensitive(h.sensitive() || name == reqwest::header::AUTHORIZATION);
            Ok((name, value))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;
    use hmac::{KeyInit, Mac};
    use sha2::{Digest, Sha256};
    use std::time::{Duration, UNIX_EPOCH};

    /// 20150830T123600Z, the test suite's time.
    fn suite_time() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_440_938_160)
    }

    fn header<'a>(headers: &'a [(HeaderName, HeaderValue)], name: &str) -> Option<&'a str> {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.to_str().unwrap())
    }

    // AWS SigV4 test suite, `get-vanilla`: proves the crate is called the way AWS signs.
    #[test]
    fn get_vanilla_from_the_aws_test_suite() {
        let keys = StsKeys {
            access_key_id: Secret::new("AKIDEXAMPLE"),
            secret_access_key: Secret::new("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
            session_token: None,
        };
        let scope = Scope {
            region: "us-east-1",
            service: "service",
            content_sha256: false,
        };
        let url = reqwest::Url::parse("https://example.amazonaws.com/").unwrap();
        let headers = signed_headers("GET", &url, b"", &keys, scope, suite_time()).unwrap();
        assert_eq!(header(&headers, "x-amz-date"), Some("20150830T123600Z"));
        assert_eq!(
            header(&headers, "authorization"),
            Some(
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
                 SignedHeaders=host;x-amz-date, \
                 Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
            )
        );
        assert!(header(&headers, "x-amz-security-token").is_none());
    }

    fn hmac(key: &[u8], data: &str) -> Vec<u8> {
        let mut mac = hmac::Hmac::<Sha256>::new_from_slice(key).unwrap();
        mac.update(data.as_bytes());
        mac.finalize().into_bytes().to_vec()
    }

    fn hex(bytes: &[u8]) -> String {
        base16ct::lower::encode_string(bytes)
    }

    // The VOD form (query, token, content hash, a port in the host) against the
    // canonical request of the SigV4 specification, computed here by hand.
    #[test]
    fn the_vod_form_matches_a_signature_computed_by_hand() {
        let keys = StsKeys {
            access_key_id: Secret::new("AKTPEXAMPLE"),
            secret_access_key: Secret::new("secret/key+1"),
            session_token: Some(Secret::new("STS2eyJhIjoxfQ==")),
        };
        let scope = Scope {
            region: "cn-north-1",
            service: "vod",
            content_sha256: true,
        };
        let url = reqwest::Url::parse(
            "http://127.0.0.1:8080/?Action=CommitUploadInner&Version=2020-11-19&SpaceName=aweme",
        )
        .unwrap();
        let body = br#"{"SessionKey":"k"}"#;
        let headers = signed_headers("POST", &url, body, &keys, scope, suite_time()).unwrap();
        let body_hash = hex(&Sha256::digest(body));
        assert_eq!(
            header(&headers, "x-amz-content-sha256"),
            Some(body_hash.as_str())
        );
        assert_eq!(
            header(&headers, "x-amz-security-token"),
            Some("STS2eyJhIjoxfQ==")
        );
        let canonical = format!(
            "POST\n/\nAction=CommitUploadInner&SpaceName=aweme&Version=2020-11-19\n\
             host:127.0.0.1:8080\nx-amz-content-sha256:{body_hash}\nx-amz-date:20150830T123600Z\n\
             x-amz-security-token:STS2eyJhIjoxfQ==\n\n\
             host;x-amz-content-sha256;x-amz-date;x-amz-security-token\n{body_hash}"
        );
        let to_sign = format!(
            "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/cn-north-1/vod/aws4_request\n{}",
            hex(&Sha256::digest(canonical.as_bytes()))
        );
        let key = hmac(b"AWS4secret/key+1", "20150830");
        let key = hmac(&key, "cn-north-1");
        let key = hmac(&key, "vod");
        let key = hmac(&key, "aws4_request");
        let signature = hex(&hmac(&key, &to_sign));
        assert_eq!(
            header(&headers, "authorization").unwrap(),
            format!(
                "AWS4-HMAC-SHA256 Credential=AKTPEXAMPLE/20150830/cn-north-1/vod/aws4_request, \
                 SignedHeaders=host;x-amz-content-sha256;x-amz-date;x-amz-security-token, \
                 Signature={signature}"
            )
        );
        let auth = headers.iter().find(|(n, _)| n == "authorization").unwrap();
        assert!(auth.1.is_sensitive());
    }
}
