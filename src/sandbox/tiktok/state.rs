//! The TikTok simulator's memory: apps, creators, authorization codes, access and refresh
//! tokens, publishes with their bytes on disk, rate windows and request counts. Time is
//! the sandbox clock (shared with the other protocols, so `/__sandbox/advance` moves it).

use std::collections::hash_map::RandomState;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::layout::Layout;
use super::options::{TiktokCreator, TiktokOptions};

/// Settings fixed at start.
#[derive(Debug)]
pub(crate) struct Settings {
    pub access_ttl: Duration,
    pub refresh_ttl: Duration,
    pub processing: Duration,
    pub moderation: Duration,
    /// `http://127.0.0.1:PORT`, the start of every `upload_url`.
    pub base_url: String,
    /// Where each publish's bytes are written.
    pub dir: PathBuf,
}

/// A creator account and its stable `open_id`.
#[derive(Clone, Debug)]
pub(crate) struct Creator {
    pub open_id: String,
    pub info: TiktokCreator,
}

/// An authorization code from the authorize page.
#[derive(Debug)]
pub(crate) struct Code {
    pub client_key: String,
    pub redirect_uri: String,
    /// Lower-case hex SHA-256 of the verifier.
    pub challenge: String,
    pub scopes: Vec<String>,
    pub open_id: String,
    pub created_ms: i64,
    pub used: bool,
}

/// What a token was issued for.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Grant {
    pub open_id: String,
    pub client_key: String,
    pub scopes: Vec<String>,
}

#[derive(Debug)]
pub(crate) struct Access {
    pub grant: Grant,
    pub expires_ms: i64,
    pub revoked: bool,
}

/// Where a refresh token stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum RefreshState {
    Live,
    /// Replaced by a newer one: refused from then on.
    Rotated,
    Revoked,
}

#[derive(Debug)]
pub(crate) struct Refresh {
    pub grant: Grant,
    pub expires_ms: i64,
    pub state: RefreshState,
}

/// Direct post or upload to the creator's inbox.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Mode {
    Direct,
    Inbox,
}

/// What the bytes turned out to be, once every one arrived.
#[derive(Clone, Debug)]
pub(crate) struct Arrived {
    pub at_ms: i64,
    pub sha256: String,
    /// `Err(fail_reason)` when the media checks (or a queued failure) refuse it.
    pub verdict: Result<(), String>,
    pub post_id: String,
}

/// One init, followed through its chunks to its status.
pub(crate) struct Publish {
    pub publish_id: String,
    pub upload_id: String,
    pub upload_token: String,
    pub open_id: String,
    pub client_key: String,
    pub mode: Mode,
    /// The init body's `post_info` and `source_info`, as received.
    pub post_info: Option<Value>,
    pub source_info: Value,
    pub layout: Layout,
    /// The creator's maximum duration when it was initialized.
    pub max_duration_sec: u32,
    pub created_ms: i64,
    pub url_expires_ms: i64,
    /// Bytes received in order so far.
    pub received: u64,
    /// Times each chunk index was received whole.
    pub chunks: BTreeMap<u64, u32>,
    /// A chunk is being received right now.
    pub in_flight: bool,
    /// SHA-256 of the first `received` bytes.
    pub hasher: Sha256,
    pub path: PathBuf,
    pub arrived: Option<Arrived>,
}

/// What status fetch says about a publish at one moment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Status {
    pub status: &'static str,
    pub fail_reason: String,
    /// The public post id, once moderation is over.
    pub public_id: Option<String>,
}

impl Publish {
    /// Its status at sandbox time `now` (page §6).
    pub fn status(&self, now: i64, cfg: &Settings) -> Status {
        let st = |status, fail_reason: &str, public_id| Status {
            status,
            fail_reason: fail_reason.to_owned(),
            public_id,
        };
        let Some(a) = &self.arrived else {
            if now >= self.url_expires_ms {
                return st("FAILED", super::rules::EXPIRED_UPLOAD_REASON, None);
            }
            return st("PROCESSING_UPLOAD", "", None);
        };
        let processed = a.at_ms.saturating_add(super::millis(cfg.processing));
        if now < processed {
            return st("PROCESSING_UPLOAD", "", None);
        }
        if let Err(reason) = &a.verdict {
            return st("FAILED", reason, None);
        }
        match self.mode {
            Mode::Inbox => st("SEND_TO_USER_INBOX", "", None),
            Mode::Direct => {
                let public = now >= processed.saturating_add(super::millis(cfg.moderation));
                st("PUBLISH_COMPLETE", "", public.then(|| a.post_id.clone()))
            }
        }
    }
}

/// Calls per endpoint (refused and faulted ones included).
#[derive(Clone, Debug, Default, Serialize)]
pub(crate) struct Counts {
    pub authorize: u64,
    pub token: u64,
    pub revoke: u64,
    pub creator_info: u64,
    pub init: u64,
    pub inbox_init: u64,
    pub chunk: u64,
    pub status: u64,
}

/// The rate-limited endpoint groups (page §7).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Limit {
    CreatorInfo,
    Init,
    InboxInit,
    Status,
}

pub(crate) struct Memory {
    seed: [u8; 32],
    next_id: u64,
    next_post: u64,
    /// client_key → secret; `None` = not known yet (open registration).
    pub apps: HashMap<String, Option<String>>,
    /// Any client_key is accepted (no apps were configured).
    pub open_registration: bool,
    pub audited: bool,
    pub creators: Vec<Creator>,
    pub codes: HashMap<String, Code>,
    pub access: HashMap<String, Access>,
    pub refresh: HashMap<String, Refresh>,
    pub publishes: BTreeMap<String, Publish>,
    /// upload_id → publish_id.
    pub upload_ids: HashMap<String, String>,
    /// Times of accepted calls per (access token, group), for the sliding windows.
    pub windows: HashMap<(String, Limit), VecDeque<i64>>,
    /// Fail reasons the next publishes whose bytes arrive get, in order.
    pub fail_next: VecDeque<String>,
    /// Answers so far, to alternate `log_id` and `logid`.
    pub answers: u64,
    pub counts: Counts,
}

impl Memory {
    fn new(options: &TiktokOptions) -> Memory {
        let mut h = Sha256::new();
        for _ in 0..4 {
            h.update(RandomState::new().build_hasher().finish().to_le_bytes());
        }
        h.update(std::process::id().to_le_bytes());
        let seed: [u8; 32] = h.finalize().into();
        let start = u64::from_le_bytes([seed[0], seed[1], seed[2], 0, 0, 0, 0, 0]);
        let mut m = Memory {
            seed,
            next_id: 0,
            // 19 digits, like real ids.
            next_post: 7_300_000_000_000_000_000 + (start % 1_000_000) * 1_000_000_000,
            apps: options
                .apps
                .iter()
                .map(|a| (a.client_key.clone(), Some(a.client_secret.clone())))
                .collect(),
            open_registration: options.apps.is_empty(),
            audited: options.audited,
            creators: Vec::new(),
            codes: HashMap::new(),
            access: HashMap::new(),
            refresh: HashMap::new(),
            publishes: BTreeMap::new(),
            upload_ids: HashMap::new(),
            windows: HashMap::new(),
            fail_next: VecDeque::new(),
            answers: 0,
            counts: Counts::default(),
        };
        m.creators = options
            .creators
            .iter()
            .map(|info| Creator {
                open_id: super::seal::open_id(&info.username),
                info: info.clone(),
            })
            .collect();
        m
    }

    /// `2 * bytes` fresh, unpredictable lower-case hex digits (at most 64).
    pub fn hex(&mut self, label: &str, bytes: usize) -> String {
        self.next_id += 1;
        let mut h = Sha256::new();
        h.update(self.seed);
        h.update(label.as_bytes());
        h.update(self.next_id.to_le_bytes());
        base16ct::lower::encode_string(&h.finalize()[..bytes.min(32)])
    }

    /// A fresh 19-digit post id.
    pub fn post_id(&mut self) -> String {
        self.next_post += 1;
        self.next_post.to_string()
    }

    /// A fresh `log_id` value.
    pub fn log_id(&mut self) -> String {
        self.answers += 1;
        format!("2026{}", self.hex("log", 10).to_uppercase())
    }

    pub fn creator(&self, open_id: &str) -> Option<&Creator> {
        self.creators.iter().find(|c| c.open_id == open_id)
    }

    pub fn creator_mut(&mut self, username: &str) -> Option<&mut Creator> {
        self.creators
            .iter_mut()
            .find(|c| c.info.username == username)
    }

    /// Every secret handed out or registered, for `/__sandbox/secrets`.
    pub fn secrets(&self) -> Vec<String> {
        let mut all: Vec<String> = self.apps.values().flatten().cloned().collect();
        all.extend(self.codes.keys().cloned());
        all.extend(self.access.keys().cloned());
        all.extend(self.refresh.keys().cloned());
        all.extend(self.publishes.values().map(|p| p.upload_token.clone()));
        all
    }
}

/// The simulator's shared state.
pub(crate) struct Tiktok {
    pub cfg: Settings,
    memory: Mutex<Memory>,
}

impl fmt::Debug for Tiktok {
    // Never the memory: it holds secrets.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tiktok")
            .field("cfg", &self.cfg)
            .finish_non_exhaustive()
    }
}

impl Tiktok {
    pub fn new(options: &TiktokOptions, base_url: String, dir: PathBuf) -> Tiktok {
        Tiktok {
            cfg: Settings {
                access_ttl: options.access_ttl,
                refresh_ttl: options.refresh_ttl,
                processing: options.processing,
                moderation: options.moderation,
                base_url,
                dir,
            },
            memory: Mutex::new(Memory::new(options)),
        }
    }

    /// The memory, locked. Never hold the guard across an `.await`.
    pub fn lock(&self) -> MutexGuard<'_, Memory> {
        self.memory.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
