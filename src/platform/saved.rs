//! Steps 1–2 kept across a restart: everything that rebuilds [`UploadCredentials`] and
//! [`UploadTarget`], so a multipart upload can resume with the same `uploadID`.
//!
//! The serialized form holds the secrets in plain text (it is meant for the ledger, which
//! must be able to send them again); `Debug` redacts them, and a saved upload is checked
//! when it is read back, so a [`SavedUpload`] that exists can always be restored.

use std::fmt;

use reqwest::Url;
use reqwest::header::HeaderValue;
use serde::{Deserialize, Serialize};

use super::{UploadCredentials, UploadTarget};
use crate::secret::Secret;

/// Credentials and target of one upload, ready to be stored and restored.
#[derive(Clone, Serialize, Deserialize)]
#[serde(into = "Raw", try_from = "Raw")]
pub struct SavedUpload {
    creds: UploadCredentials,
    target: UploadTarget,
}

/// Why stored upload state cannot be used (the upload then starts again from step 1).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SavedUploadError {
    #[error("saved upload: `{0}` is empty")]
    Empty(&'static str),
    #[error("saved upload: `{0}` cannot go into an HTTP header")]
    NotAHeader(&'static str),
    #[error("saved upload: the object URL is not an http(s) URL")]
    ObjectUrl,
}

impl SavedUpload {
    /// What steps 1 and 2 gave, to be stored.
    pub fn save(creds: &UploadCredentials, target: &UploadTarget) -> SavedUpload {
        SavedUpload {
            creds: creds.clone(),
            target: target.clone(),
        }
    }

    /// Credentials and target as they were saved.
    pub fn restore(self) -> (UploadCredentials, UploadTarget) {
        (self.creds, self.target)
    }

    pub fn vid(&self) -> &str {
        &self.target.vid
    }
}

impl fmt::Debug for SavedUpload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SavedUpload")
            .field("creds", &self.creds)
            .field("target", &self.target)
            .finish()
    }
}

/// The stored form (field names are part of the ledger's format: keep them).
#[derive(Serialize, Deserialize)]
struct Raw {
    ak: String,
    auth: String,
    #[serde(default)]
    expires_at: Option<i64>,
    vid: String,
    oid: String,
    object_url: String,
    tos_sign: String,
    token: String,
    extra_param: String,
}

impl From<SavedUpload> for Raw {
    fn from(s: SavedUpload) -> Raw {
        let SavedUpload { creds, target } = s;
        Raw {
            ak: creds.ak.expose().to_owned(),
            auth: creds.auth.expose().to_owned(),
            expires_at: creds.expires_at,
            vid: target.vid,
            oid: target.oid,
            object_url: target.object_url.into(),
            tos_sign: target.tos_sign.expose().to_owned(),
            token: target.token.expose().to_owned(),
            extra_param: target.extra_param,
        }
    }
}

impl TryFrom<Raw> for SavedUpload {
    type Error = SavedUploadError;

    fn try_from(raw: Raw) -> Result<SavedUpload, SavedUploadError> {
        for (name, value) in [
            ("ak", &raw.ak),
            ("auth", &raw.auth),
            ("vid", &raw.vid),
            ("oid", &raw.oid),
            ("tos_sign", &raw.tos_sign),
            ("token", &raw.token),
            ("extra_param", &raw.extra_param),
        ] {
            if value.is_empty() {
                return Err(SavedUploadError::Empty(name));
            }
        }
        for (name, value) in [
            ("ak", &raw.ak),
            ("auth", &raw.auth),
            ("tos_sign", &raw.tos_sign),
        ] {
            if HeaderValue::from_str(value).is_err() {
                return Err(SavedUploadError::NotAHeader(name));
            }
        }
        let object_url = Url::parse(&raw.object_url).map_err(|_| SavedUploadError::ObjectUrl)?;
        if !matches!(object_url.scheme(), "http" | "https")
            || object_url.host_str().is_none_or(str::is_empty)
        {
            return Err(SavedUploadError::ObjectUrl);
        }
        Ok(SavedUpload {
            creds: UploadCredentials {
                ak: Secret::new(raw.ak),
                auth: Secret::new(raw.auth),
                expires_at: raw.expires_at,
            },
            target: UploadTarget {
                vid: raw.vid,
                oid: raw.oid,
                object_url,
                tos_sign: Secret::new(raw.tos_sign),
                token: Secret::new(raw.token),
                extra_param: raw.extra_param,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn raw() -> serde_json::Value {
        json!({
            "ak": "AKAK", "auth": "HMAC-SHA1:1.0:4102444800:AKAK:SIG", "expires_at": 4102444800i64,
            "vid": "v02", "oid": "tos-cn-v-0000/abc", "object_url": "http://127.0.0.1:9/tos-cn-v-0000/abc",
            "tos_sign": "SIGN", "token": "TOKEN", "extra_param": "a=1&b=2"
        })
    }

    #[test]
    fn round_trips_and_redacts() {
        let saved: SavedUpload = serde_json::from_value(raw()).unwrap();
        let shown = format!("{saved:?}");
        for secret in ["AKAK", "SIG", "SIGN", "TOKEN"] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
        assert_eq!(saved.vid(), "v02");
        let (creds, target) = saved.restore();
        assert_eq!(creds.auth.expose(), "HMAC-SHA1:1.0:4102444800:AKAK:SIG");
        assert_eq!(target.object_url.path(), "/tos-cn-v-0000/abc");
        let again = serde_json::to_value(SavedUpload::save(&creds, &target)).unwrap();
        assert_eq!(again, raw());
    }

    #[test]
    fn bad_saved_state_is_refused_when_read() {
        let cases = [
            ("tos_sign", json!(""), "`tos_sign` is empty"),
            ("tos_sign", json!("a\nb"), "`tos_sign` cannot go"),
            ("object_url", json!("file:///etc/passwd"), "object URL"),
            ("object_url", json!("not a url"), "object URL"),
        ];
        for (key, value, want) in cases {
            let mut r = raw();
            r[key] = value;
            let err = serde_json::from_value::<SavedUpload>(r).unwrap_err();
            assert!(err.to_string().contains(want), "{key}: {err}");
        }
        let mut r = raw();
        r.as_object_mut().unwrap().remove("token");
        assert!(serde_json::from_value::<SavedUpload>(r).is_err());
    }
}
