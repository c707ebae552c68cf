//! Step 1's answer read into types (docs/douyin-creator.md §1): the STS keys that sign
//! steps 2 and 4, when they expire, and the uploader's `UserId` from inside the
//! `SessionToken` (for `X-Storage-U` in step 3). Every key lives in a [`Secret`]; a
//! failure says which field is wrong, never its value.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::wire;
use crate::secret::Secret;

/// The keys SigV4 signs with.
#[derive(Clone)]
pub(crate) struct StsKeys {
    pub access_key_id: Secret,
    pub secret_access_key: Secret,
    pub session_token: Option<Secret>,
}

/// Step 1's result.
#[derive(Clone)]
pub struct StsCredentials {
    pub(crate) keys: StsKeys,
    /// The uploader's id (`X-Storage-U`).
    pub(crate) user_id: String,
    /// Unix seconds, when `ExpiredTime` says.
    pub(crate) expires_at: Option<i64>,
}

impl StsCredentials {
    /// When the keys expire, if the answer said.
    pub fn expires_at(&self) -> Option<SystemTime> {
        UNIX_EPOCH.checked_add(Duration::from_secs(u64::try_from(self.expires_at?).ok()?))
    }

    /// Expired, or expiring within `margin`, by the local clock.
    pub(crate) fn expires_within(&self, margin: Duration) -> bool {
        self.expires_at()
            .is_some_and(|at| at <= SystemTime::now() + margin)
    }

    pub fn user_id(&self) -> &str {
        &self.user_id
    }
}

impl fmt::Debug for StsCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StsCredentials")
            .field("access_key_id", &self.keys.access_key_id)
            .field("secret_access_key", &self.keys.secret_access_key)
            .field("session_token", &self.keys.session_token)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// Why step 1's `auth` cannot be used: the field, never its value.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum StsError {
    #[error("`auth` is missing or is not a JSON object in a string")]
    Auth,
    #[error("`{0}` is missing or empty")]
    Missing(&'static str),
    #[error("`{0}` cannot go into an HTTP header")]
    NotAHeader(&'static str),
    #[error(
        "`SessionToken` is not `STS2` + base64 JSON with PolicyString → Statement[0].Condition → UserId ({0})"
    )]
    Token(&'static str),
    #[error("`ExpiredTime` is not an RFC 3339 time")]
    ExpiredTime,
}

/// Reads step 1's `auth` (the inner JSON, as a string).
pub(crate) fn parse_auth(auth: Option<&str>) -> Result<StsCredentials, StsError> {
    let auth: wire::StsAuth =
        serde_json::from_str(auth.ok_or(StsError::Auth)?).map_err(|_| StsError::Auth)?;
    let field = |v: Option<String>, name: &'static str| -> Result<Secret, StsError> {
        let v = v.filter(|s| !s.is_empty()).ok_or(StsError::Missing(name))?;
        if reqwest::header::HeaderValue::from_str(&v).is_err() {
            return Err(StsError::NotAHeader(name));
        }
        Ok(Secret::new(v))
    };
    let access_key_id = field(auth.access_key_id, "AccessKeyID")?;
    let secret_access_key = field(auth.secret_access_key, "SecretAccessKey")?;
    let session_token = field(auth.session_token, "SessionToken")?;
    let user_id = user_id(session_token.expose())?;
    let expires_at = match auth.expired_time.filter(|s| !s.is_empty()) {
        Some(t) => Some(rfc3339_secs(&t).ok_or(StsError::ExpiredTime)?),
        None => None,
    };
    Ok(StsCredentials {
        keys: StsKeys {
            access_key_id,
            secret_access_key,
            session_token: Some(session_token),
        },
        user_id,
        expires_at,
    })
}

/// `UserId` from `STS2` + base64(JSON with `PolicyString` → `Statement[0].Condition`).
fn user_id(token: &str) -> Result<String, StsError> {
    let b64 = token
        .strip_prefix(wire::STS_TOKEN_PREFIX)
        .ok_or(StsError::Token("no STS2 prefix"))?;
    let json = crate::b64::decode(b64).ok_or(StsError::Token("not base64"))?;
    let token: wire::StsToken =
        serde_json::from_slice(&json).map_err(|_| StsError::Token("no PolicyString"))?;
    let policy: wire::StsPolicy = serde_json::from_str(&token.policy_string)
        .map_err(|_| StsError::Token("PolicyString is not JSON with Statement"))?;
    let condition = policy
        .statement
        .into_iter()
        .next()
        .and_then(|s| s.condition)
        .ok_or(StsError::Token("no Statement[0].Condition"))?;
    let condition: wire::StsCondition =
        serde_json::from_str(&condition).map_err(|_| StsError::Token("Condition is not JSON"))?;
    let id = condition
        .user_id
        .filter(|id| !id.is_empty())
        .ok_or(StsError::Token("no UserId"))?;
    if reqwest::header::HeaderValue::from_str(&id).is_err() {
        return Err(StsError::NotAHeader("UserId"));
    }
    Ok(id)
}

fn rfc3339_secs(t: &str) -> Option<i64> {
    let at = time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok()?;
    Some(at.unix_timestamp())
}

/// The keys and id as a multipart session stores them (the ledger must be able to send
/// them again; it is deleted when the upload is committed).
#[derive(Serialize, Deserialize)]
pub(crate) struct SavedSts {
    access_key_id: String,
    secret_access_key: String,
    session_token: Option<String>,
    user_id: String,
    #[serde(default)]
    expires_at: Option<i64>,
}

impl From<&StsCredentials> for SavedSts {
    fn from(c: &StsCredentials) -> Self {
        SavedSts {
            access_key_id: c.keys.access_key_id.expose().to_owned(),
            secret_access_key: c.keys.secret_access_key.expose().to_owned(),
            session_token: c.keys.session_token.as_ref().map(|t| t.expose().to_owned()),
            user_id: c.user_id.clone(),
            expires_at: c.expires_at,
        }
    }
}

impl From<SavedSts> for StsCredentials {
    fn from(s: SavedSts) -> Self {
        StsCredentials {
            keys: StsKeys {
                access_key_id: Secret::new(s.access_key_id),
                secret_access_key: Secret::new(s.secret_access_key),
                session_token: s.session_token.map(Secret::new),
            },
            user_id: s.user_id,
            expires_at: s.expires_at,
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A `SessionToken` carrying `user_id`, as the page describes it.
    pub(crate) fn token_for(user_id: &str) -> String {
        let condition = serde_json::json!({"UserId": user_id, "Other": 1}).to_string();
        let policy =
            serde_json::json!({"Statement": [{"Effect": "Allow", "Condition": condition}]})
                .to_string();
        let inner = serde_json::json!({"PolicyString": policy, "Signature": "x"}).to_string();
        format!("STS2{}", crate::b64::encode(inner.as_bytes()))
    }

    /// Usable credentials for user 42, as step 1 would give them.
    pub(crate) fn credentials() -> StsCredentials {
        parse_auth(Some(&auth(&token_for("42")))).unwrap()
    }

    fn auth(token: &str) -> String {
        serde_json::json!({
            "AccessKeyID": "AKTP1", "SecretAccessKey": "SK-SECRET", "SessionToken": token,
            "ExpiredTime": "2030-01-02T03:04:05+08:00", "CurrentTime": "2030-01-02T02:04:05+08:00"
        })
        .to_string()
    }

    #[test]
    fn the_user_id_comes_from_inside_the_session_token() {
        let creds = parse_auth(Some(&auth(&token_for("9876543210")))).unwrap();
        assert_eq!(creds.user_id(), "9876543210");
        assert_eq!(creds.keys.access_key_id.expose(), "AKTP1");
        // 2030-01-01T19:04:05Z
        assert_eq!(creds.expires_at, Some(1_893_524_645));
        assert!(!creds.expires_within(Duration::from_secs(60)));
        let shown = format!("{creds:?}");
        assert!(
            !shown.contains("SK-SECRET") && !shown.contains("STS2"),
            "{shown}"
        );
    }

    #[test]
    fn a_bad_auth_names_the_field_not_the_value() {
        assert_eq!(parse_auth(None).unwrap_err(), StsError::Auth);
        assert_eq!(parse_auth(Some("{")).unwrap_err(), StsError::Auth);
        let err = parse_auth(Some(&auth("SECRET-TOKEN"))).unwrap_err();
        assert!(matches!(err, StsError::Token(_)));
        assert!(!err.to_string().contains("SECRET-TOKEN"));
        let no_user = format!(
            "STS2{}",
            crate::b64::encode(
                serde_json::json!({"PolicyString": "{\"Statement\":[{\"Condition\":\"{}\"}]}"})
                    .to_string()
                    .as_bytes()
            )
        );
        assert_eq!(
            parse_auth(Some(&auth(&no_user))).unwrap_err(),
            StsError::Token("no UserId")
        );
        let missing = serde_json::json!({"AccessKeyID": "a", "SessionToken": "t"}).to_string();
        assert_eq!(
            parse_auth(Some(&missing)).unwrap_err(),
            StsError::Missing("SecretAccessKey")
        );
    }
}
