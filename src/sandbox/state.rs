//! The sandbox's memory: issued credentials, uploads and their objects, multipart uploads
//! and their parts, posts, request counters, and its clock (real time plus an offset tests
//! can move forward).

use std::collections::hash_map::RandomState;
use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasher, Hasher};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::ParamsLayout;

/// What every handler shares: fixed settings plus the mutable state.
#[derive(Clone)]
pub(crate) struct App {
    pub cfg: Arc<Settings>,
    pub state: Arc<Mutex<State>>,
    pub faults: Arc<super::faults::Faults>,
    /// The douyin (creator center) simulator's memory.
    pub creator: Arc<super::douyin_creator::state::Creator>,
    /// The TikTok simulator's memory.
    pub tiktok: Arc<super::tiktok::state::Tiktok>,
}

impl App {
    /// The state, locked. Never hold the guard across an `.await`.
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Settings fixed when the sandbox starts.
#[derive(Debug)]
pub(crate) struct Settings {
    pub auth_ttl: Duration,
    pub sign_ttl: Duration,
    pub layout: ParamsLayout,
    pub min_post_interval: Duration,
    /// `127.0.0.1:PORT` of the listener, handed out as `tos_host`.
    pub tos_host: String,
    /// Where finished objects live, as `<objects_dir>/<oid>`.
    pub(crate) objects_dir: PathBuf,
}

/// An `auth` issued by step 1.
#[derive(Debug)]
pub(crate) struct Grant {
    pub ak: String,
    pub account: String,
    pub(crate) expires_ms: i64,
}

/// A finished object: every byte arrived and matched its CRC.
#[derive(Clone, Debug)]
pub(crate) struct Object {
    pub size: u64,
    pub sha256: String,
}

/// What step 4 produced.
#[derive(Clone, Debug)]
pub struct Commit {
    pub poster_oid: String,
    pub width: u32,
    pub height: u32,
    pub duration: f64,
}

/// One upload slot issued by step 2, followed through steps 3–5.
#[derive(Debug)]
pub struct Upload {
    pub vid: String,
    pub oid: String,
    pub account: String,
    pub file_size: u64,
    pub tos_sign: String,
    pub token: String,
    pub extra_param: String,
    /// When `tos_sign` and `token` stop working.
    pub(crate) sign_expires_ms: i64,
    pub object: Option<Object>,
    pub commit: Option<Commit>,
    pub aweme_id: Option<String>,
}

/// A part of a multipart upload, received whole and CRC-checked, on disk at `path`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct StoredPart {
    pub size: u64,
    pub crc32: u32,
    pub path: PathBuf,
}

/// Where a multipart upload stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Taking parts.
    Open,
    /// Its parts are being assembled into the object; parts are refused meanwhile.
    Completing,
    /// Assembled from this list of (part number, CRC-32); a repeat of the same list
    /// succeeds again, anything else is refused.
    Completed(Vec<(u32, u32)>),
}

impl Phase {
    pub fn name(&self) -> &'static str {
        match self {
            Phase::Open => "open",
            Phase::Completing => "completing",
            Phase::Completed(_) => "completed",
        }
    }
}

/// One multipart upload (docs/douyin-web.md §3b), from `?uploads` to its completion. It belongs to
/// one upload slot (`vid`/`oid`) and lives as long as that slot's `tos_sign`.
#[derive(Debug)]
pub struct Multipart {
    pub vid: String,
    pub oid: String,
    /// The folder its part files live in until completion.
    pub dir: PathBuf,
    /// The parts received so far, by part number (the latest copy of each).
    pub parts: BTreeMap<u32, StoredPart>,
    /// How many times each part number was received whole, replacements included.
    pub received: BTreeMap<u32, u32>,
    pub(crate) phase: Phase,
}

/// A published post, as `/__sandbox/posts` shows it.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct PostRecord {
    #[serde(skip)]
    pub(crate) seq: u64,
    pub aweme_id: String,
    pub account: String,
    /// The account's numeric user id.
    pub uid: String,
    pub vid: String,
    pub oid: String,
    pub size: u64,
    pub sha256: String,
    pub create_time: i64,
    /// Sandbox time of creation in milliseconds (for a lagging post list).
    #[serde(skip)]
    pub(crate) created_ms: i64,
    /// Every form field of the step 5 request, as received.
    pub form: BTreeMap<String, String>,
}

/// How often each endpoint was called (rejected calls included).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RequestCounts {
    pub credentials: u64,
    pub upload_params: u64,
    /// Whole-file uploads (3a).
    pub upload: u64,
    /// `POST {object}?uploads` (3b.1).
    pub upload_init: u64,
    /// `PUT {object}?partNumber=N&uploadID=…` (3b.2).
    pub upload_part: u64,
    /// `POST {object}?uploadID=…` (3b.3).
    pub upload_complete: u64,
    pub commit: u64,
    pub create: u64,
    pub post_list: u64,
    pub challenge_sug: u64,
}

#[derive(Debug)]
pub struct State {
    pub(crate) seed: [u8; 32],
    pub(crate) next_id: u64,
    /// Milliseconds added to the real clock (`/__sandbox/advance`).
    pub(crate) clock_offset_ms: i64,
    pub(crate) grants: HashMap<String, Grant>,
    /// Uploads by `vid`.
    pub uploads: HashMap<String, Upload>,
    /// `oid` → `vid`.
    pub(crate) oids: HashMap<String, String>,
    /// Multipart uploads by `uploadID`.
    pub(crate) multiparts: HashMap<String, Multipart>,
    pub posts: Vec<PostRecord>,
    /// Sandbox time (ms) of each account's last post.
    pub(crate) last_post_ms: HashMap<String, i64>,
    pub counts: RequestCounts,
    /// Step 2 calls so far, for the alternating layout.
    pub(crate) params_served: u64,
    /// Rate-limited step 5 calls so far, to alternate the two ways of saying so.
    pub(crate) rate_limited: u64,
    pub(crate) next_aweme: u64,
}

fn real_now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

impl State {
    pub fn new() -> Self {
        let mut h = Sha256::new();
        for _ in 0..4 {
            h.update(RandomState::new().build_hasher().finish().to_le_bytes());
        }
        h.update(real_now_ms().to_le_bytes());
        h.update(std::process::id().to_le_bytes());
        let seed: [u8; 32] = h.finalize().into();
        let start = u64::from_le_bytes([seed[0], seed[1], seed[2], seed[3], 0, 0, 0, 0]);
        State {
            seed,
            next_id: 0,
            clock_offset_ms: 0,
            grants: HashMap::new(),
            uploads: HashMap::new(),
            oids: HashMap::new(),
            multiparts: HashMap::new(),
            posts: Vec::new(),
            last_post_ms: HashMap::new(),
            counts: RequestCounts::default(),
            params_served: 0,
            rate_limited: 0,
            // 19 digits, starting like real ids, unique within this sandbox.
            next_aweme: 7_300_000_000_000_000_000 + (start % 1_000_000) * 1_000_000_000,
        }
    }

    /// Sandbox time in milliseconds since the epoch.
    pub(crate) fn now_ms(&self) -> i64 {
        real_now_ms().saturating_add(self.clock_offset_ms)
    }

    /// Sandbox time in seconds since the epoch.
    pub(crate) fn now_s(&self) -> i64 {
        self.now_ms().div_euclid(1000)
    }

    /// `2 * bytes` fresh lower-case hex digits (at most 64).
    pub(crate) fn fresh_hex(&mut self, label: &str, bytes: usize) -> String {
        self.next_id += 1;
        let mut h = Sha256::new();
        h.update(self.seed);
        h.update(label.as_bytes());
        h.update(self.next_id.to_le_bytes());
        let digest = h.finalize();
        base16ct::lower::encode_string(&digest[..bytes.min(32)])
    }

    /// A fresh 19-digit post id.
    pub(crate) fn fresh_aweme_id(&mut self) -> String {
        self.next_aweme += 1;
        self.next_aweme.to_string()
    }

    /// The grant behind an `auth`, if it was issued and has not expired.
    pub(crate) fn live_grant(&self, auth: &str) -> Option<&Grant> {
        let now = self.now_ms();
        self.grants.get(auth).filter(|g| now < g.expires_ms)
    }

    /// Expire every issued `auth`, `tos_sign` and `token` now; returns how many of each
    /// kind (grants, uploads) were touched.
    pub(crate) fn expire_all(&mut self) -> (usize, usize) {
        let now = self.now_ms();
        for g in self.grants.values_mut() {
            g.expires_ms = g.expires_ms.min(now);
        }
        for u in self.uploads.values_mut() {
            u.sign_expires_ms = u.sign_expires_ms.min(now);
        }
        (self.grants.len(), self.uploads.len())
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
    fn fresh_ids_differ_and_have_the_asked_length() {
        let mut s = State::new();
        let a = s.fresh_hex("x", 16);
        let b = s.fresh_hex("x", 16);
        assert_eq!(a.len(), 32);
        assert_ne!(a, b);
        let id = s.fresh_aweme_id();
        assert_eq!(id.len(), 19);
        assert_ne!(id, s.fresh_aweme_id());
    }

    #[test]
    fn expire_all_kills_live_grants() {
        let mut s = State::new();
        let far = s.now_ms() + 3_600_000;
        s.grants.insert(
            "auth".into(),
            Grant {
                ak: "ak".into(),
                account: "main".into(),
                expires_ms: far,
            },
        );
        assert!(s.live_grant("auth").is_some());
        s.expire_all();
        assert!(s.live_grant("auth").is_none());
    }
}
