//! The sandbox's memory saved as JSON and restored into a new sandbox, so that a test can
//! stop one sandbox and start another (on another port, in another process, months later)
//! that still knows what the first one issued and received: `auth`s, upload slots, their
//! objects and commits, multipart uploads with the parts that arrived, posts, request
//! counters and its clock. Fault rules and held requests are not state and are not saved.
//!
//! Rules (ours):
//! - Bytes are not in the snapshot: a part or object is named by its path relative to the
//!   storage folder, with its size and CRC-32. A restore checks every file the restored
//!   sandbox may still read (the parts of open multipart uploads, the objects of uploads
//!   not yet committed) and refuses to start when one is missing or differs.
//! - A restored sandbox hands out its own address: every upload's `extra_param` naming the
//!   saved `tos_host` is changed to name the new one (the saved `tos_sign`s, tokens and
//!   ids stay valid).
//! - A multipart upload saved while completing is restored open (the assembly was cut off,
//!   as when it fails).
//! - Times are absolute sandbox milliseconds; the clock offset is restored as saved.

use std::collections::BTreeMap;
use std::fmt;
use std::io::Read;
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::state::{
    Commit, Grant, Multipart, Object, Phase, PostRecord, RequestCounts, State, StoredPart, Upload,
};

/// The snapshot format this code writes and reads.
const FORMAT: u32 = 1;

/// Read size when checking a stored file's CRC-32.
const CHECK_BUFFER: usize = 1024 * 1024;

/// A sandbox's memory (from [`super::SandboxHandle::snapshot`]), restored with
/// [`super::SandboxOptions::restore`]. `Debug` shows counts only: it holds the sandbox's
/// `auth`s, `tos_sign`s and tokens.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Snapshot {
    format: u32,
    /// The `host:port` the saved sandbox handed out as `tos_host`.
    tos_host: String,
    /// The seed of fresh ids, hex.
    seed: String,
    next_id: u64,
    next_aweme: u64,
    clock_offset_ms: i64,
    params_served: u64,
    rate_limited: u64,
    grants: Vec<SavedGrant>,
    uploads: Vec<SavedUpload>,
    multiparts: Vec<SavedMultipart>,
    posts: Vec<SavedPost>,
    last_post_ms: BTreeMap<String, i64>,
    counts: RequestCounts,
}

#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SavedGrant {
    auth: String,
    ak: String,
    account: String,
    expires_ms: i64,
}

#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SavedObject {
    size: u64,
    sha256: String,
}

#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SavedCommit {
    poster_oid: String,
    width: u32,
    height: u32,
    duration: f64,
}

#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SavedUpload {
    vid: String,
    oid: String,
    account: String,
    file_size: u64,
    tos_sign: String,
    token: String,
    extra_param: String,
    sign_expires_ms: i64,
    object: Option<SavedObject>,
    commit: Option<SavedCommit>,
    aweme_id: Option<String>,
}

#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SavedPart {
    number: u32,
    size: u64,
    /// Eight lower-case hex digits.
    crc32: String,
    /// Relative to the storage folder.
    file: PathBuf,
}

#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SavedMultipart {
    upload_id: String,
    vid: String,
    oid: String,
    /// The (part number, CRC-32) list it was completed with; `None` = open.
    completed: Option<Vec<(u32, u32)>>,
    parts: Vec<SavedPart>,
    /// How many times each part number arrived whole.
    received: BTreeMap<u32, u32>,
}

#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SavedPost {
    seq: u64,
    aweme_id: String,
    account: String,
    uid: String,
    vid: String,
    oid: String,
    size: u64,
    sha256: String,
    create_time: i64,
    created_ms: i64,
    form: BTreeMap<String, String>,
}

/// A file a restored sandbox needs in its storage folder: a part of an open multipart
/// upload, or the object of an upload not yet committed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NeededFile {
    /// Relative to the storage folder.
    pub path: PathBuf,
    pub size: u64,
    pub crc32: u32,
    /// For a part: its upload's `vid` and its part number.
    pub part: Option<(String, u32)>,
}

/// Why a snapshot cannot be read or restored.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("sandbox snapshot: not valid JSON of a snapshot: {0}")]
    Json(#[from] serde_json::Error),
    #[error("sandbox snapshot: format {0}; this sandbox reads format {FORMAT}")]
    Format(u32),
    #[error("sandbox snapshot: {0}")]
    Invalid(String),
    #[error(
        "sandbox snapshot: {path}: {why} (a restored sandbox needs the storage folder's files)"
    )]
    File { path: PathBuf, why: String },
}

impl fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Snapshot")
            .field("tos_host", &self.tos_host)
            .field("uploads", &self.uploads.len())
            .field("multiparts", &self.multiparts.len())
            .field("posts", &self.posts.len())
            .finish_non_exhaustive()
    }
}

fn invalid(why: impl Into<String>) -> SnapshotError {
    SnapshotError::Invalid(why.into())
}

/// A stored file's path as saved: relative to `dir`, without `..`.
fn relative(dir: &Path, path: &Path) -> Result<PathBuf, SnapshotError> {
    path.strip_prefix(dir)
        .map(Path::to_path_buf)
        .map_err(|_| invalid(format!("{} is outside the storage folder", path.display())))
}

/// A saved relative path, checked: no root, no `..`, not empty.
fn checked_relative(path: &Path) -> Result<&Path, SnapshotError> {
    let plain = path.components().all(|c| matches!(c, Component::Normal(_)));
    if plain && path.components().next().is_some() {
        Ok(path)
    } else {
        Err(invalid(format!(
            "{}: a stored file must be a relative path inside the storage folder",
            path.display()
        )))
    }
}

fn crc_hex(crc: u32) -> String {
    format!("{crc:08x}")
}

fn parse_crc(text: &str) -> Result<u32, SnapshotError> {
    let ok = text.len() == 8 && text.bytes().all(|b| b.is_ascii_hexdigit());
    ok.then(|| u32::from_str_radix(text, 16).ok())
        .flatten()
        .ok_or_else(|| invalid(format!("crc32 {text:?} is not 8 hex digits")))
}

/// `extra_param` with its `host=` pair naming `to` where it named `from`.
fn rehost(extra_param: &str, from: &str, to: &str) -> String {
    let old = format!("host={from}");
    extra_param
        .split('&')
        .map(|pair| {
            if pair == old {
                format!("host={to}")
            } else {
                pair.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("&")
}

impl Snapshot {
    /// The state of a sandbox whose objects live in `objects_dir` and whose `tos_host`
    /// is `tos_host`.
    pub(crate) fn take(
        st: &State,
        objects_dir: &Path,
        tos_host: &str,
    ) -> Result<Snapshot, SnapshotError> {
        let mut grants: Vec<SavedGrant> = st
            .grants
            .iter()
            .map(|(auth, g)| SavedGrant {
                auth: auth.clone(),
                ak: g.ak.clone(),
                account: g.account.clone(),
                expires_ms: g.expires_ms,
            })
            .collect();
        grants.sort_by(|a, b| a.auth.cmp(&b.auth));
        let mut uploads: Vec<SavedUpload> = st.uploads.values().map(save_upload).collect();
        uploads.sort_by(|a, b| a.vid.cmp(&b.vid));
        let mut multiparts = st
            .multiparts
            .iter()
            .map(|(id, m)| save_multipart(id, m, objects_dir))
            .collect::<Result<Vec<_>, _>>()?;
        multiparts.sort_by(|a, b| a.upload_id.cmp(&b.upload_id));
        Ok(Snapshot {
            format: FORMAT,
            tos_host: tos_host.to_owned(),
            seed: base16ct::lower::encode_string(&st.seed),
            next_id: st.next_id,
            next_aweme: st.next_aweme,
            clock_offset_ms: st.clock_offset_ms,
            params_served: st.params_served,
            rate_limited: st.rate_limited,
            grants,
            uploads,
            multiparts,
            posts: st.posts.iter().map(save_post).collect(),
            last_post_ms: st
                .last_post_ms
                .iter()
                .map(|(k, v)| (k.clone(), *v))
                .collect(),
            counts: st.counts.clone(),
        })
    }

    /// Pretty JSON, for files meant to be read and diffed.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// A snapshot from [`Snapshot::to_json`]'s text, checked.
    pub fn from_json(text: &str) -> Result<Snapshot, SnapshotError> {
        let snapshot: Snapshot = serde_json::from_str(text)?;
        if snapshot.format != FORMAT {
            return Err(SnapshotError::Format(snapshot.format));
        }
        snapshot.seed_bytes()?;
        for m in &snapshot.multiparts {
            for p in &m.parts {
                checked_relative(&p.file)?;
                parse_crc(&p.crc32)?;
            }
        }
        Ok(snapshot)
    }

    /// The `host:port` the saved sandbox handed out.
    pub fn tos_host(&self) -> &str {
        &self.tos_host
    }

    /// The files a restore checks (see the module rules), relative to the storage folder.
    pub fn needed_files(&self) -> Result<Vec<NeededFile>, SnapshotError> {
        let mut files = Vec::new();
        for m in self.multiparts.iter().filter(|m| m.completed.is_none()) {
            for p in &m.parts {
                files.push(NeededFile {
                    path: checked_relative(&p.file)?.to_path_buf(),
                    size: p.size,
                    crc32: parse_crc(&p.crc32)?,
                    part: Some((m.vid.clone(), p.number)),
                });
            }
        }
        Ok(files)
    }

    fn seed_bytes(&self) -> Result<[u8; 32], SnapshotError> {
        let mut seed = [0u8; 32];
        base16ct::lower::decode(&self.seed, &mut seed)
            .ok()
            .filter(|s| s.len() == 32)
            .ok_or_else(|| invalid("seed: not 64 lower-case hex digits"))?;
        Ok(seed)
    }

    /// The state to serve, for a sandbox storing objects in `objects_dir` and handing out
    /// `tos_host`. Checks the files the state refers to (blocking reads).
    pub(crate) fn restore(
        &self,
        objects_dir: &Path,
        tos_host: &str,
    ) -> Result<State, SnapshotError> {
        let mut st = State::new();
        st.seed = self.seed_bytes()?;
        st.next_id = self.next_id;
        st.next_aweme = self.next_aweme;
        st.clock_offset_ms = self.clock_offset_ms;
        st.params_served = self.params_served;
        st.rate_limited = self.rate_limited;
        st.counts = self.counts.clone();
        st.last_post_ms = self.last_post_ms.clone().into_iter().collect();
        st.grants = self
            .grants
            .iter()
            .map(|g| {
                let grant = Grant {
                    ak: g.ak.clone(),
                    account: g.account.clone(),
                    expires_ms: g.expires_ms,
                };
                (g.auth.clone(), grant)
            })
            .collect();
        for u in &self.uploads {
            let upload = restore_upload(u, &self.tos_host, tos_host);
            st.oids.insert(upload.oid.clone(), upload.vid.clone());
            st.uploads.insert(upload.vid.clone(), upload);
        }
        for m in &self.multiparts {
            let multipart = restore_multipart(m, objects_dir)?;
            st.multiparts.insert(m.upload_id.clone(), multipart);
        }
        st.posts = self.posts.iter().map(restore_post).collect();
        for file in self.needed_files()? {
            check_file(objects_dir, &file)?;
        }
        Ok(st)
    }
}

fn save_upload(u: &Upload) -> SavedUpload {
    SavedUpload {
        vid: u.vid.clone(),
        oid: u.oid.clone(),
        account: u.account.clone(),
        file_size: u.file_size,
        tos_sign: u.tos_sign.clone(),
        token: u.token.clone(),
        extra_param: u.extra_param.clone(),
        sign_expires_ms: u.sign_expires_ms,
        object: u.object.as_ref().map(|o| SavedObject {
            size: o.size,
            sha256: o.sha256.clone(),
        }),
        commit: u.commit.as_ref().map(|c| SavedCommit {
            poster_oid: c.poster_oid.clone(),
            width: c.width,
            height: c.height,
            duration: c.duration,
        }),
        aweme_id: u.aweme_id.clone(),
    }
}

fn restore_upload(u: &SavedUpload, saved_host: &str, tos_host: &str) -> Upload {
    Upload {
        vid: u.vid.clone(),
        oid: u.oid.clone(),
        account: u.account.clone(),
        file_size: u.file_size,
        tos_sign: u.tos_sign.clone(),
        token: u.token.clone(),
        extra_param: rehost(&u.extra_param, saved_host, tos_host),
        sign_expires_ms: u.sign_expires_ms,
        object: u.object.as_ref().map(|o| Object {
            size: o.size,
            sha256: o.sha256.clone(),
        }),
        commit: u.commit.as_ref().map(|c| Commit {
            poster_oid: c.poster_oid.clone(),
            width: c.width,
            height: c.height,
            duration: c.duration,
        }),
        aweme_id: u.aweme_id.clone(),
    }
}

fn save_multipart(id: &str, m: &Multipart, dir: &Path) -> Result<SavedMultipart, SnapshotError> {
    let parts = m
        .parts
        .iter()
        .map(|(&number, p)| {
            Ok(SavedPart {
                number,
                size: p.size,
                crc32: crc_hex(p.crc32),
                file: relative(dir, &p.path)?,
            })
        })
        .collect::<Result<Vec<_>, SnapshotError>>()?;
    let completed = match &m.phase {
        Phase::Completed(list) => Some(list.clone()),
        Phase::Open | Phase::Completing => None,
    };
    Ok(SavedMultipart {
        upload_id: id.to_owned(),
        vid: m.vid.clone(),
        oid: m.oid.clone(),
        completed,
        parts,
        received: m.received.clone(),
    })
}

fn restore_multipart(m: &SavedMultipart, dir: &Path) -> Result<Multipart, SnapshotError> {
    let parts = m
        .parts
        .iter()
        .map(|p| {
            let stored = StoredPart {
                size: p.size,
                crc32: parse_crc(&p.crc32)?,
                path: dir.join(checked_relative(&p.file)?),
            };
            Ok((p.number, stored))
        })
        .collect::<Result<BTreeMap<_, _>, SnapshotError>>()?;
    let phase = match &m.completed {
        Some(list) => Phase::Completed(list.clone()),
        None => Phase::Open,
    };
    let parts_dir = super::multipart::parts_dir(dir, &m.upload_id);
    if phase == Phase::Open {
        std::fs::create_dir_all(&parts_dir).map_err(|e| SnapshotError::File {
            path: parts_dir.clone(),
            why: format!("cannot create the parts folder: {e}"),
        })?;
    }
    Ok(Multipart {
        vid: m.vid.clone(),
        oid: m.oid.clone(),
        dir: parts_dir,
        parts,
        received: m.received.clone(),
        phase,
    })
}

/// [`SavedPost`] has the fields of [`PostRecord`]: this one list copies them either way, so
/// a field added to one type and not to the other does not compile.
macro_rules! copy_post {
    ($p:expr => $to:ident) => {
        $to {
            seq: $p.seq,
            aweme_id: $p.aweme_id.clone(),
            account: $p.account.clone(),
            uid: $p.uid.clone(),
            vid: $p.vid.clone(),
            oid: $p.oid.clone(),
            size: $p.size,
            sha256: $p.sha256.clone(),
            create_time: $p.create_time,
            created_ms: $p.created_ms,
            form: $p.form.clone(),
        }
    };
}

fn save_post(p: &PostRecord) -> SavedPost {
    copy_post!(p => SavedPost)
}

fn restore_post(p: &SavedPost) -> PostRecord {
    copy_post!(p => PostRecord)
}

/// `file` is in `dir` with its size and CRC-32.
fn check_file(dir: &Path, file: &NeededFile) -> Result<(), SnapshotError> {
    let path = dir.join(&file.path);
    let fail = |why: String| SnapshotError::File {
        path: file.path.clone(),
        why,
    };
    let mut f = std::fs::File::open(&path).map_err(|e| fail(format!("cannot open: {e}")))?;
    let mut crc = crc32fast::Hasher::new();
    let mut buf = vec![0u8; CHECK_BUFFER];
    let mut size = 0u64;
    loop {
        let n = f
            .read(&mut buf)
            .map_err(|e| fail(format!("cannot read: {e}")))?;
        if n == 0 {
            break;
        }
        crc.update(buf.get(..n).unwrap_or_default());
        size += n as u64;
    }
    let crc = crc.finalize();
    if size != file.size || crc != file.crc32 {
        return Err(fail(format!(
            "holds {size} bytes with CRC-32 {crc:08x}; the snapshot says {} bytes, {:08x}",
            file.size, file.crc32
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const OLD_HOST: &str = "127.0.0.1:1111";
    const NEW_HOST: &str = "127.0.0.1:2222";

    /// A state with one grant, one upload whose multipart upload holds part 1 (a real file
    /// in `dir`), and one post; the part's bytes back.
    fn sample(dir: &Path) -> (State, Vec<u8>) {
        let mut st = State::new();
        st.grants.insert(
            "auth-1".into(),
            Grant {
                ak: "ak-1".into(),
                account: "main".into(),
                expires_ms: 4_102_444_800_000,
            },
        );
        let upload = Upload {
            vid: "v1".into(),
            oid: "tos-cn-v-0000/o1".into(),
            account: "main".into(),
            file_size: 12,
            tos_sign: "TOS-SIGN-1".into(),
            token: "token-1".into(),
            extra_param: format!("vidc=lf&vts=1&host={OLD_HOST}&edge_node=lf&file_size=12.000000"),
            sign_expires_ms: 4_102_444_800_000,
            object: None,
            commit: None,
            aweme_id: None,
        };
        st.oids.insert(upload.oid.clone(), upload.vid.clone());
        st.uploads.insert(upload.vid.clone(), upload);
        let bytes = b"first part".to_vec();
        let parts_dir = super::super::multipart::parts_dir(dir, "up-1");
        std::fs::create_dir_all(&parts_dir).expect("parts dir");
        let path = parts_dir.join("1-abc");
        std::fs::write(&path, &bytes).expect("part");
        let part = StoredPart {
            size: bytes.len() as u64,
            crc32: crc32fast::hash(&bytes),
            path,
        };
        st.multiparts.insert(
            "up-1".into(),
            Multipart {
                vid: "v1".into(),
                oid: "tos-cn-v-0000/o1".into(),
                dir: parts_dir,
                parts: BTreeMap::from([(1, part)]),
                received: BTreeMap::from([(1, 2)]),
                phase: Phase::Open,
            },
        );
        st.counts.upload_part = 3;
        st.clock_offset_ms = 5_000;
        let id = st.fresh_aweme_id();
        st.posts.push(PostRecord {
            seq: 1,
            aweme_id: id,
            account: "main".into(),
            uid: "42".into(),
            vid: "v0".into(),
            oid: "tos-cn-v-0000/o0".into(),
            size: 7,
            sha256: "00".repeat(32),
            create_time: 1,
            created_ms: 1_000,
            form: BTreeMap::from([("text".into(), "hi".into())]),
        });
        (st, bytes)
    }

    #[test]
    fn a_restored_state_is_the_saved_one_at_its_new_address() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (mut st, bytes) = sample(dir.path());
        let text = Snapshot::take(&st, dir.path(), OLD_HOST)
            .expect("taken")
            .to_json();
        let snapshot = Snapshot::from_json(&text).expect("read back");
        assert_eq!(snapshot.tos_host(), OLD_HOST);
        let needed = snapshot.needed_files().expect("files");
        assert_eq!(needed.len(), 1);
        assert_eq!(needed[0].path, Path::new(".multipart/up-1/1-abc"));
        assert_eq!(needed[0].part, Some(("v1".to_owned(), 1)));
        assert_eq!(needed[0].crc32, crc32fast::hash(&bytes));

        let mut back = snapshot.restore(dir.path(), NEW_HOST).expect("restored");
        let upload = &back.uploads["v1"];
        assert_eq!(upload.tos_sign, "TOS-SIGN-1");
        assert!(upload.extra_param.contains(&format!("&host={NEW_HOST}&")));
        assert!(!upload.extra_param.contains(OLD_HOST));
        assert_eq!(back.oids["tos-cn-v-0000/o1"], "v1");
        assert!(back.live_grant("auth-1").is_some());
        let m = &back.multiparts["up-1"];
        assert_eq!(m.phase, Phase::Open);
        assert_eq!(m.received, BTreeMap::from([(1, 2)]));
        assert_eq!(m.parts[&1], st.multiparts["up-1"].parts[&1]);
        assert_eq!(back.counts.upload_part, 3);
        assert_eq!(back.clock_offset_ms, 5_000);
        assert_eq!(back.posts.len(), 1);
        assert_eq!(back.posts[0].created_ms, 1_000);
        // Fresh ids go on from where the saved sandbox stopped.
        assert_eq!(back.fresh_hex("x", 8), st.fresh_hex("x", 8));
        assert_eq!(back.fresh_aweme_id(), st.fresh_aweme_id());
    }

    #[test]
    fn a_restore_refuses_a_missing_or_different_part_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (st, _) = sample(dir.path());
        let snapshot = Snapshot::take(&st, dir.path(), OLD_HOST).expect("taken");
        let part = dir.path().join(".multipart/up-1/1-abc");
        std::fs::write(&part, b"other part").expect("rewrite");
        let why = snapshot
            .restore(dir.path(), NEW_HOST)
            .expect_err("refused")
            .to_string();
        assert!(why.contains("1-abc") && why.contains("CRC-32"), "{why}");
        std::fs::remove_file(&part).expect("remove");
        let why = snapshot
            .restore(dir.path(), NEW_HOST)
            .expect_err("refused")
            .to_string();
        assert!(why.contains("cannot open"), "{why}");
    }

    #[test]
    fn a_snapshot_naming_a_file_outside_the_storage_folder_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (st, _) = sample(dir.path());
        let text = Snapshot::take(&st, dir.path(), OLD_HOST)
            .expect("taken")
            .to_json();
        for evil in ["../../etc/passwd", "/etc/passwd", ""] {
            let bad = text.replace(".multipart/up-1/1-abc", evil);
            let why = Snapshot::from_json(&bad).expect_err("refused").to_string();
            assert!(why.contains("relative path"), "{evil}: {why}");
        }
        let future = text.replace("\"format\": 1", "\"format\": 2");
        assert!(matches!(
            Snapshot::from_json(&future),
            Err(SnapshotError::Format(2))
        ));
    }

    #[test]
    fn rehost_changes_only_the_host_pair() {
        let extra = format!("vidc=lf&host={OLD_HOST}&ahost={OLD_HOST}");
        assert_eq!(
            rehost(&extra, OLD_HOST, NEW_HOST),
            format!("vidc=lf&host={NEW_HOST}&ahost={OLD_HOST}")
        );
    }
}
