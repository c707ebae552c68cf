//! The douyin-creator simulator's memory: login codes, sessions, page loads with their
//! signing secrets, STS credentials, uploads and their TOS part uploads, posts, pending
//! risk checks and request counts. Time comes from the sandbox clock (shared with
//! douyin-web, so `/__sandbox/advance` moves both).

use std::collections::hash_map::RandomState;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use serde::Serialize;
use sha2::{Digest, Sha256};

/// Settings fixed at start.
#[derive(Debug)]
pub(crate) struct Settings {
    /// Lifetime of a login QR code.
    pub qr_ttl: Duration,
    /// Lifetime of STS credentials (step 1).
    pub sts_ttl: Duration,
    /// Lifetime of a page load's signing secret.
    pub page_ttl: Duration,
    /// Lifetime of a TOS `Auth` (step 2).
    pub tos_auth_ttl: Duration,
    /// `127.0.0.1:PORT`, handed out as `UploadHost`.
    pub upload_host: String,
    /// Where parts and finished objects live.
    pub dir: PathBuf,
}

/// Where a login code stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LoginState {
    Waiting,
    /// Scanned; the next poll answers `scanned` once, then the login is confirmed.
    Scanned,
    /// Scanned, and the site wants the SMS code first.
    Sms,
    Confirmed,
}

/// One login code shown on `/login`.
pub(crate) struct Login {
    pub created_ms: i64,
    pub state: LoginState,
    pub uid: String,
    pub nickname: String,
    pub sms_code: String,
    /// The session made when the login was confirmed.
    pub session: Option<String>,
}

/// A logged-in browser session (`sessionid` cookie value → who).
#[derive(Clone)]
pub(crate) struct Session {
    pub uid: String,
    pub nickname: String,
}

/// One load of the upload page: its signing secret, whose session loaded it, when.
pub(crate) struct Page {
    pub secret: String,
    pub session: String,
    pub created_ms: i64,
}

/// STS credentials handed out by step 1.
pub(crate) struct Sts {
    pub secret: String,
    pub session_token: String,
    pub uid: String,
    pub expires_ms: i64,
}

/// A finished TOS object.
#[derive(Clone)]
pub(crate) struct Object {
    pub size: u64,
    pub sha256: String,
    pub path: PathBuf,
}

/// What CommitUploadInner produced.
#[derive(Clone)]
pub(crate) struct Commit {
    pub poster_uri: String,
    pub width: u32,
    pub height: u32,
    pub duration: f64,
}

/// One upload slot from ApplyUploadInner, followed through commit and create.
pub(crate) struct Upload {
    pub vid: String,
    pub store_uri: String,
    pub uid: String,
    pub file_size: u64,
    /// The TOS `Auth` value and when it stops working.
    pub auth: String,
    pub auth_expires_ms: i64,
    pub session_key: String,
    pub object: Option<Object>,
    pub commit: Option<Commit>,
    pub item_id: Option<String>,
}

/// A part received whole and CRC-checked.
#[derive(Clone)]
pub(crate) struct Part {
    pub size: u64,
    pub crc32: u32,
    pub path: PathBuf,
}

/// A TOS part upload (init → parts → finish).
pub(crate) struct PartUpload {
    pub vid: String,
    pub dir: PathBuf,
    pub parts: BTreeMap<u32, Part>,
    /// Times each part number arrived whole, replacements included.
    pub received: BTreeMap<u32, u32>,
    /// Set while the finish assembles the object.
    pub finishing: bool,
    /// The `n:crc` list it finished with.
    pub finished: Option<Vec<(u32, u32)>>,
}

/// An image uploaded through ImageX (the custom cover), by `StoreUri`.
pub(crate) struct Image {
    pub store_uri: String,
    pub uid: String,
    /// The upload's `Authorization` and when it stops working.
    pub auth: String,
    pub auth_expires_ms: i64,
    pub session_key: String,
    /// The bytes received whole and CRC-checked, read as an image.
    pub object: Option<ImageObject>,
    pub committed: bool,
}

/// What the sandbox read from an uploaded image.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct ImageObject {
    pub size: u64,
    pub sha256: String,
    /// `png`, `jpeg` or `webp`.
    pub format: &'static str,
    pub width: u32,
    pub height: u32,
    #[serde(skip)]
    pub path: PathBuf,
}

/// A post's custom cover, as the inspection endpoint shows it.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct PostCover {
    pub uri: String,
    pub sha256: String,
    pub size: u64,
    pub width: u32,
    pub height: u32,
}

/// A published post.
#[derive(Clone, Serialize)]
pub(crate) struct Post {
    #[serde(skip)]
    pub seq: u64,
    pub item_id: String,
    pub uid: String,
    pub vid: String,
    pub store_uri: String,
    pub size: u64,
    pub sha256: String,
    pub desc: String,
    pub create_time: i64,
    pub public_time: i64,
    #[serde(skip)]
    pub created_ms: i64,
    /// The create_v2 body's `item`, as received.
    pub item: serde_json::Value,
    /// The ImageX image posted as its cover, if one was (else the video's poster).
    pub cover: Option<PostCover>,
}

/// Calls per endpoint (refused and faulted ones included).
#[derive(Clone, Debug, Default, Serialize)]
pub(crate) struct Counts {
    pub auth: u64,
    pub apply_upload: u64,
    pub tos_init: u64,
    pub tos_part: u64,
    pub tos_finish: u64,
    pub commit_upload: u64,
    pub imagex_apply: u64,
    pub imagex_upload: u64,
    pub imagex_commit: u64,
    pub create_v2: u64,
    pub work_list: u64,
    pub challenge_sug: u64,
    pub user_info: u64,
}

#[derive(Default)]
pub(crate) struct Memory {
    seed: [u8; 32],
    next_id: u64,
    next_item: u64,
    pub logins: HashMap<String, Login>,
    pub sessions: HashMap<String, Session>,
    /// Users logged out here: their sealed session ids from another run are not revived.
    pub revoked_uids: std::collections::HashSet<String>,
    /// Every session was ended here: no sealed id from another run is revived.
    pub revoked_all: bool,
    pub pages: HashMap<String, Page>,
    pub sts: HashMap<String, Sts>,
    pub uploads: HashMap<String, Upload>,
    /// StoreUri → Vid.
    pub store_uris: HashMap<String, String>,
    /// SessionKey → Vid.
    pub session_keys: HashMap<String, String>,
    pub part_uploads: HashMap<String, PartUpload>,
    /// ImageX images by StoreUri, and their SessionKeys → StoreUri.
    pub images: HashMap<String, Image>,
    pub image_sessions: HashMap<String, String>,
    pub posts: Vec<Post>,
    /// create_v2 calls still to answer with a risk check.
    pub risk: u32,
    /// Which of `item_id`/`aweme_id` the next create answer uses (alternating).
    pub answers: u64,
    pub counts: Counts,
}

impl Memory {
    /// `2 * bytes` fresh, unpredictable lower-case hex digits (at most 64).
    pub fn hex(&mut self, label: &str, bytes: usize) -> String {
        self.next_id += 1;
        let mut h = Sha256::new();
        h.update(self.seed);
        h.update(label.as_bytes());
        h.update(self.next_id.to_le_bytes());
        base16ct::lower::encode_string(&h.finalize()[..bytes.min(32)])
    }

    /// `n` fresh decimal digits (n ≤ 19), never starting with 0.
    pub fn digits(&mut self, label: &str, n: u32) -> String {
        let hex = self.hex(label, 8);
        let v = u64::from_str_radix(&hex, 16).unwrap_or(0);
        let low = 10u64.pow(n - 1);
        (low + v % (9 * low)).to_string()
    }

    /// A fresh 19-digit post id, unique in this sandbox.
    pub fn item_id(&mut self) -> String {
        self.next_item += 1;
        self.next_item.to_string()
    }

    /// Every secret handed out, for `/__sandbox/secrets`.
    pub fn secrets(&self) -> Vec<String> {
        let mut all = Vec::new();
        all.extend(self.sessions.keys().cloned());
        for l in self.logins.values() {
            all.push(l.sms_code.clone());
        }
        for p in self.pages.values() {
            all.push(p.secret.clone());
        }
        for (ak, s) in &self.sts {
            all.extend([ak.clone(), s.secret.clone(), s.session_token.clone()]);
        }
        for u in self.uploads.values() {
            all.extend([u.auth.clone(), u.session_key.clone()]);
        }
        for i in self.images.values() {
            all.extend([i.auth.clone(), i.session_key.clone()]);
        }
        all
    }
}

/// The simulator's shared state.
pub(crate) struct Creator {
    pub cfg: Settings,
    memory: Mutex<Memory>,
}

impl fmt::Debug for Creator {
    // Never the memory: it holds secrets.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Creator")
            .field("cfg", &self.cfg)
            .finish_non_exhaustive()
    }
}

impl Creator {
    pub fn new(cfg: Settings) -> Creator {
        let mut h = Sha256::new();
        for _ in 0..4 {
            h.update(RandomState::new().build_hasher().finish().to_le_bytes());
        }
        h.update(std::process::id().to_le_bytes());
        let seed: [u8; 32] = h.finalize().into();
        let start = u64::from_le_bytes([seed[0], seed[1], seed[2], 0, 0, 0, 0, 0]);
        let memory = Memory {
            seed,
            // 19 digits, like real ids.
            next_item: 7_400_000_000_000_000_000 + (start % 1_000_000) * 1_000_000_000,
            ..Memory::default()
        };
        Creator {
            cfg,
            memory: Mutex::new(memory),
        }
    }

    /// The memory, locked. Never hold the guard across an `.await`.
    pub fn lock(&self) -> MutexGuard<'_, Memory> {
        self.memory.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A duration in whole milliseconds, saturating.
pub(crate) fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_values_differ_and_have_their_shape() {
        let mut m = Memory::default();
        assert_ne!(m.hex("a", 16), m.hex("a", 16));
        let d = m.digits("uid", 11);
        assert_eq!(d.len(), 11);
        assert!(!d.starts_with('0'));
    }
}
