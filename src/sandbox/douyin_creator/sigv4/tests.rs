//! The verifier on AWS's SigV4 test suite (aws-signing-test-suite/v4, as shipped in the
//! aws-sigv4 crate), and against the aws-sigv4 crate's own signer as a client would use it.

use super::*;

const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
const DATE: &str = "20150830T123600Z";
const SCOPE: &str = "AKIDEXAMPLE/20150830/us-east-1/service/aws4_request";
const STS_TOKEN: &str = "AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfpSPfIeoIYRqTflfKD8YUuwthAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYwT7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBAz+scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA==";

struct Case {
    name: &'static str,
    method: &'static str,
    target: &'static str,
    headers: &'static [(&'static str, &'static str)],
    body: &'static str,
    signed: &'static str,
    signature: &'static str,
}

const CASES: &[Case] = &[
    Case {
        name: "get-vanilla",
        method: "GET",
        target: "/",
        headers: &[],
        body: "",
        signed: "host;x-amz-date",
        signature: "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
    },
    Case {
        name: "get-slash-dot-slash-normalized",
        method: "GET",
        target: "/./",
        headers: &[],
        body: "",
        signed: "host;x-amz-date",
        signature: "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
    },
    Case {
        name: "get-vanilla-query-order-key-case",
        method: "GET",
        target: "/?Param2=value2&Param1=value1",
        headers: &[],
        body: "",
        signed: "host;x-amz-date",
        signature: "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500",
    },
    Case {
        name: "get-vanilla-query-unreserved",
        method: "GET",
        target: "/?-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz=-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
        headers: &[],
        body: "",
        signed: "host;x-amz-date",
        signature: "9c3e54bfcdf0b19771a7f523ee5669cdf59bc7cc0884027167c21bb143a40197",
    },
    Case {
        name: "get-utf8",
        method: "GET",
        target: "/ሴ",
        headers: &[],
        body: "",
        signed: "host;x-amz-date",
        signature: "8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85",
    },
    Case {
        name: "get-header-value-trim",
        method: "GET",
        target: "/",
        headers: &[("My-Header1", " value1"), ("My-Header2", " \"a   b   c\"")],
        body: "",
        signed: "host;my-header1;my-header2;x-amz-date",
        signature: "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736",
    },
    Case {
        name: "post-header-key-sort",
        method: "POST",
        target: "/",
        headers: &[("My-Header1", "value1")],
        body: "",
        signed: "host;my-header1;x-amz-date",
        signature: "c5410059b04c1ee005303aed430f6e6645f61f4dc9e1461ec8f8916fdf18852c",
    },
    Case {
        name: "post-vanilla-query",
        method: "POST",
        target: "/?Param1=value1",
        headers: &[],
        body: "",
        signed: "host;x-amz-date",
        signature: "28038455d6de14eafc1f9222cf5aa6f1a96197d7deb8263271d420d138af7f11",
    },
    Case {
        name: "post-sts-header-before",
        method: "POST",
        target: "/",
        headers: &[("X-Amz-Security-Token", STS_TOKEN)],
        body: "",
        signed: "host;x-amz-date;x-amz-security-token",
        signature: "85d96828115b5dc0cfc3bd16ad9e210dd772bbebba041836c64533a82be05ead",
    },
    Case {
        name: "post-x-www-form-urlencoded",
        method: "POST",
        target: "/",
        headers: &[
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("Content-Length", "13"),
            (
                "x-amz-content-sha256",
                "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e",
            ),
        ],
        body: "Param1=value1",
        signed: "content-length;content-type;host;x-amz-content-sha256;x-amz-date",
        signature: "d3875051da38690788ef43de4db0d8f280229d82040bfac253562e56c3f20e0b",
    },
];

fn check(case: &Case, host: &str, amz_date: &str, auth_header: &str) -> Result<(), Refused> {
    let mut headers = vec![
        ("Host".to_owned(), host.to_owned()),
        ("X-Amz-Date".to_owned(), amz_date.to_owned()),
    ];
    headers.extend(
        case.headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string())),
    );
    let (path, query) = case.target.split_once('?').unwrap_or((case.target, ""));
    let req = Received {
        method: case.method,
        path,
        query,
        headers: &headers,
        body: case.body.as_bytes(),
    };
    let auth = parse_authorization(auth_header).map_err(Refused::Malformed)?;
    verify(&req, &auth, SECRET)
}

fn header_of(scope: &str, signed: &str, signature: &str) -> String {
    format!("AWS4-HMAC-SHA256 Credential={scope}, SignedHeaders={signed}, Signature={signature}")
}

#[test]
fn aws_test_suite_vectors_verify() {
    for case in CASES {
        let auth = header_of(SCOPE, case.signed, case.signature);
        assert_eq!(
            check(case, "example.amazonaws.com", DATE, &auth),
            Ok(()),
            "{}",
            case.name
        );
    }
}

#[test]
fn double_url_encode_vector_verifies() {
    let case = Case {
        name: "double-url-encode",
        method: "POST",
        target: "/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-west-2%3A892717189312%3Afunction%3Amy-rusty-fun/invocations",
        headers: &[],
        body: "",
        signed: "host;x-amz-date",
        signature: "4b93abbcc68be32bd64c18e2c71150660ab4c29bbd6c32a383a7517a88fc1804",
    };
    let auth = header_of(
        "AKIDEXAMPLE/20210511/us-east-2/lambda/aws4_request",
        case.signed,
        case.signature,
    );
    let got = check(
        &case,
        "lambda.us-east-2.amazonaws.com",
        "20210511T154045Z",
        &auth,
    );
    assert_eq!(got, Ok(()));
}

#[test]
fn any_change_breaks_the_signature() {
    let case = &CASES[2];
    let good = header_of(SCOPE, case.signed, case.signature);
    assert_eq!(check(case, "example.amazonaws.com", DATE, &good), Ok(()));
    // Another host, another second, another region: each a mismatch (the key picks the secret).
    assert_eq!(
        check(case, "example.amazonaws.com:8080", DATE, &good),
        Err(Refused::Mismatch)
    );
    assert_eq!(
        check(case, "example.amazonaws.com", "20150830T123601Z", &good),
        Err(Refused::Mismatch)
    );
    let other_region = good.replace("us-east-1", "us-west-2");
    assert_eq!(
        check(case, "example.amazonaws.com", DATE, &other_region),
        Err(Refused::Mismatch)
    );
}

#[test]
fn malformed_headers_are_refused_with_a_reason() {
    for bad in [
        "AWS4-HMAC-SHA1 Credential=a/20150830/r/s/aws4_request, SignedHeaders=host, Signature=00",
        "AWS4-HMAC-SHA256 Credential=a/20150830/r/s, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
        "AWS4-HMAC-SHA256 Credential=a/20150830/r/s/aws4_request, SignedHeaders=x-amz-date;host, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
        "AWS4-HMAC-SHA256 Credential=a/20150830/r/s/aws4_request, SignedHeaders=host;x-amz-date, Signature=xyz",
    ] {
        assert!(parse_authorization(bad).is_err(), "{bad}");
    }
    // Host not signed; a signed header that was not sent; the wrong day in x-amz-date.
    let case = &CASES[0];
    let unsigned_host = header_of(SCOPE, "x-amz-date", case.signature);
    assert!(matches!(
        check(case, "example.amazonaws.com", DATE, &unsigned_host),
        Err(Refused::Malformed(_))
    ));
    let missing = header_of(SCOPE, "host;my-header;x-amz-date", case.signature);
    assert!(matches!(
        check(case, "example.amazonaws.com", DATE, &missing),
        Err(Refused::Malformed(_))
    ));
    let good = header_of(SCOPE, case.signed, case.signature);
    assert!(matches!(
        check(case, "example.amazonaws.com", "20150831T123600Z", &good),
        Err(Refused::Malformed(_))
    ));
}

#[test]
fn a_body_hash_header_must_match_the_body() {
    let mut case = CASES
        .iter()
        .find(|c| c.name == "post-x-www-form-urlencoded")
        .expect("case");
    let tampered = Case {
        body: "Param1=value2",
        ..*case
    };
    case = &tampered;
    let auth = header_of(SCOPE, case.signed, case.signature);
    assert!(matches!(
        check(case, "example.amazonaws.com", DATE, &auth),
        Err(Refused::Malformed(_))
    ));
}

/// What a client using the aws-sigv4 crate sends for ApplyUploadInner verifies here.
#[test]
fn the_aws_sigv4_crate_signature_verifies() {
    use aws_credential_types::Credentials;
    use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
    use aws_sigv4::sign::v4;
    use aws_smithy_runtime_api::client::identity::Identity;

    let identity: Identity = Credentials::new(
        "AKTPEXAMPLE",
        "c2VjcmV0",
        Some("STS2eyJ9".into()),
        None,
        "test",
    )
    .into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region("cn-north-1")
        .name("vod")
        .time(std::time::SystemTime::now())
        .settings(SigningSettings::default())
        .build()
        .expect("params")
        .into();
    let url = "http://127.0.0.1:4567/?Action=ApplyUploadInner&Version=2020-11-19&SpaceName=aweme&FileType=video&IsInner=1&FileSize=123";
    let signable = SignableRequest::new("GET", url, std::iter::empty(), SignableBody::Bytes(&[]))
        .expect("signable");
    let (instructions, _) = sign(signable, &params).expect("signed").into_parts();
    let mut headers = vec![("host".to_owned(), "127.0.0.1:4567".to_owned())];
    headers.extend(
        instructions
            .headers()
            .map(|(k, v)| (k.to_owned(), v.to_owned())),
    );
    let auth = parse_authorization(header(&headers, "authorization").expect("authorization"))
        .expect("parses");
    assert_eq!(
        (auth.region.as_str(), auth.service.as_str()),
        ("cn-north-1", "vod")
    );
    assert!(
        auth.signed_headers
            .contains(&"x-amz-security-token".to_owned())
    );
    let (path, query) = url
        .trim_start_matches("http://127.0.0.1:4567")
        .split_once('?')
        .expect("query");
    let req = Received {
        method: "GET",
        path,
        query,
        headers: &headers,
        body: b"",
    };
    assert_eq!(verify(&req, &auth, "c2VjcmV0"), Ok(()));
    assert_eq!(verify(&req, &auth, "c2VjcmV1"), Err(Refused::Mismatch));
}
