//! Serde for paths that need not be UTF-8: a UTF-8 path is a JSON string, any other
//! is the array of its OS bytes. Both forms read back to the same path.
//!
//! Use as `#[serde(with = "os_path")]` on a `PathBuf` field.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::{self, SeqAccess, Visitor};
use serde::{Deserializer, Serializer};

pub(crate) fn serialize<S: Serializer>(path: &Path, s: S) -> Result<S::Ok, S::Error> {
    match path.to_str() {
        Some(text) => s.serialize_str(text),
        None => s.collect_seq(os_bytes(path)),
    }
}

pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<PathBuf, D::Error> {
    d.deserialize_any(PathVisitor)
}

struct PathVisitor;

impl<'de> Visitor<'de> for PathVisitor {
    type Value = PathBuf;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a path: a string, or an array of its bytes")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<PathBuf, E> {
        Ok(PathBuf::from(v))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<PathBuf, E> {
        Ok(PathBuf::from(v))
    }

    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<PathBuf, E> {
        from_os_bytes(v.to_vec())
    }

    fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<PathBuf, E> {
        from_os_bytes(v)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<PathBuf, A::Error> {
        let mut bytes = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(b) = seq.next_element::<u8>()? {
            bytes.push(b);
        }
        from_os_bytes(bytes)
    }
}

#[cfg(unix)]
fn os_bytes(path: &Path) -> Vec<u8> {
    use std::os::unix::ffi::OsStrExt;
    path.as_os_str().as_bytes().to_vec()
}

#[cfg(unix)]
fn from_os_bytes<E: de::Error>(bytes: Vec<u8>) -> Result<PathBuf, E> {
    use std::os::unix::ffi::OsStringExt;
    Ok(PathBuf::from(std::ffi::OsString::from_vec(bytes)))
}

/// Windows: WTF-8, which keeps a name with a lone surrogate (`crate::wtf8`).
#[cfg(windows)]
fn os_bytes(path: &Path) -> Vec<u8> {
    use std::os::windows::ffi::OsStrExt;
    crate::wtf8::encode(path.as_os_str().encode_wide())
}

#[cfg(windows)]
fn from_os_bytes<E: de::Error>(bytes: Vec<u8>) -> Result<PathBuf, E> {
    use std::os::windows::ffi::OsStringExt;
    crate::wtf8::decode(&bytes)
        .map(|units| PathBuf::from(std::ffi::OsString::from_wide(&units)))
        .ok_or_else(|| {
            E::custom("a path that is neither UTF-8 nor WTF-8 cannot be used on Windows")
        })
}

#[cfg(not(any(unix, windows)))]
fn os_bytes(path: &Path) -> Vec<u8> {
    path.to_string_lossy().into_owned().into_bytes()
}

#[cfg(not(any(unix, windows)))]
fn from_os_bytes<E: de::Error>(bytes: Vec<u8>) -> Result<PathBuf, E> {
    String::from_utf8(bytes)
        .map(PathBuf::from)
        .map_err(|_| E::custom("a path that is not UTF-8 cannot be used on this system"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::{Deserialize, Serialize};

    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct Holder {
        #[serde(with = "super")]
        path: PathBuf,
    }

    #[test]
    fn utf8_paths_are_plain_strings() {
        let h = Holder {
            path: PathBuf::from("/in/视频 1.mp4"),
        };
        let json = serde_json::to_string(&h).unwrap();
        assert_eq!(json, r#"{"path":"/in/视频 1.mp4"}"#);
        assert_eq!(serde_json::from_str::<Holder>(&json).unwrap(), h);
    }

    #[cfg(unix)]
    #[test]
    fn other_paths_are_byte_arrays_and_round_trip() {
        use std::ffi::OsStr;
        use std::os::unix::ffi::OsStrExt;
        let h = Holder {
            path: PathBuf::from(OsStr::from_bytes(b"/a/\xff\xfe.mp4")),
        };
        let json = serde_json::to_string(&h).unwrap();
        assert_eq!(json, r#"{"path":[47,97,47,255,254,46,109,112,52]}"#);
        assert_eq!(serde_json::from_str::<Holder>(&json).unwrap(), h);
        // Through a serde_json::Value too, as the ledger stores it.
        let value = serde_json::to_value(&h).unwrap();
        assert_eq!(serde_json::from_value::<Holder>(value).unwrap(), h);
    }

    #[test]
    fn numbers_out_of_byte_range_are_refused() {
        assert!(serde_json::from_str::<Holder>(r#"{"path":[47,256]}"#).is_err());
        assert!(serde_json::from_str::<Holder>(r#"{"path":7}"#).is_err());
    }
}
