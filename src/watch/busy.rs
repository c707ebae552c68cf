//! Is someone still writing this quiet file? Evidence beyond size and mtime (README "What
//! finished means"): a downloader's file beside it ([`super::names::download_marker`]),
//! and, per system, another process holding it open for writing.
//!
//! * Linux: `/proc/*/fd` links whose target has the file's device and inode, and whose
//!   `/proc/*/fdinfo` flags say write-only or read-write. Sees the processes whose `/proc`
//!   entries this user may read (its own, or all when run as root), in this PID namespace;
//!   a writer of another user, container or machine is not seen (the close-after-write
//!   events, [`super::Settler::await_close`], cover those). One walk answers a whole batch.
//! * Windows: an open that lets others read but not write; a sharing violation
//!   (`ERROR_SHARING_VIOLATION`) means some handle has it open for writing (or exclusively).
//!   The handle is closed at once; a writer opening the file in that instant would be refused.
//! * macOS: Finder marks a copy in progress with the creation date `kMagicBusyCreationDate`
//!   (1946-02-14 08:34:56 UTC). Other writers are not seen (FSEvents has no close event).
//!
//! Pure look-ups: nothing here waits or changes a file.

use std::collections::HashMap;
use std::path::PathBuf;
#[cfg(any(target_os = "macos", test))]
use std::time::{Duration, SystemTime};

/// Why each of `paths` is still being written; paths not in the map look finished.
pub(crate) fn still_writing(paths: &[PathBuf]) -> HashMap<PathBuf, String> {
    let mut busy: HashMap<PathBuf, String> = paths
        .iter()
        .filter_map(|p| {
            let marker = super::names::download_marker(p)?;
            let name = marker.file_name()?.to_string_lossy().into_owned();
            Some((
                p.clone(),
                format!("{name} beside it says it is still downloading"),
            ))
        })
        .collect();
    let rest: Vec<PathBuf> = paths
        .iter()
        .filter(|p| !busy.contains_key(*p))
        .cloned()
        .collect();
    busy.extend(held_open(&rest));
    busy
}

#[cfg(target_os = "linux")]
fn held_open(paths: &[PathBuf]) -> HashMap<PathBuf, String> {
    linux::writers(paths)
}

#[cfg(windows)]
fn held_open(paths: &[PathBuf]) -> HashMap<PathBuf, String> {
    paths
        .iter()
        .filter(|p| windows::open_for_writing(p))
        .map(|p| {
            let why = "another program has it open for writing (Windows refused to share it)";
            (p.clone(), why.to_owned())
        })
        .collect()
}

#[cfg(target_os = "macos")]
fn held_open(paths: &[PathBuf]) -> HashMap<PathBuf, String> {
    paths
        .iter()
        .filter(|p| {
            std::fs::symlink_metadata(p)
                .and_then(|m| m.created())
                .is_ok_and(finder_busy)
        })
        .map(|p| (p.clone(), "Finder is still copying it".to_owned()))
        .collect()
}

#[cfg(not(any(target_os = "linux", target_os = "macos", windows)))]
fn held_open(_paths: &[PathBuf]) -> HashMap<PathBuf, String> {
    HashMap::new()
}

/// Finder's "busy" creation date, `kMagicBusyCreationDate` (Finder.h).
#[cfg(any(target_os = "macos", test))]
const FINDER_BUSY: Duration = Duration::from_secs(753_549_904);

/// True for the creation date Finder gives a file while it copies it.
#[cfg(any(target_os = "macos", test))]
fn finder_busy(created: SystemTime) -> bool {
    SystemTime::UNIX_EPOCH.duration_since(created).ok() == Some(FINDER_BUSY)
}

#[cfg(target_os = "linux")]
mod linux {
    use std::collections::{HashMap, HashSet};
    use std::ffi::OsString;
    use std::fs;
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::MetadataExt;
    use std::path::{Path, PathBuf};

    /// Which of `paths` some readable process holds open for writing, and who.
    pub(super) fn writers(paths: &[PathBuf]) -> HashMap<PathBuf, String> {
        let mut wanted: HashMap<(u64, u64), &PathBuf> = HashMap::new();
        for path in paths {
            if let Ok(m) = fs::symlink_metadata(path) {
                wanted.insert((m.dev(), m.ino()), path);
            }
        }
        let names: HashSet<OsString> = paths
            .iter()
            .filter_map(|p| p.file_name().map(OsString::from))
            .collect();
        let mut found = HashMap::new();
        if wanted.is_empty() {
            return found;
        }
        let Ok(procs) = fs::read_dir("/proc") else {
            return found;
        };
        for entry in procs.flatten() {
            let pid = entry.file_name();
            if pid.is_empty() || !pid.as_bytes().iter().all(u8::is_ascii_digit) {
                continue;
            }
            for (key, fd) in open_files(&entry.path(), &names) {
                if let Some(path) = wanted.get(&key)
                    && !found.contains_key(*path)
                    && opened_for_writing(&entry.path().join("fdinfo").join(fd))
                {
                    let who = fs::read_to_string(entry.path().join("comm")).unwrap_or_default();
                    let why = format!(
                        "process {} ({}) holds it open for writing",
                        pid.to_string_lossy(),
                        who.trim()
                    );
                    found.insert((*path).clone(), why);
                }
            }
        }
        found
    }

    /// The (device, inode) and fd number of each file `process` has open under one of
    /// `names`. The link's name is compared first, so only likely files are stat-ed (a
    /// stat could hang on a dead network mount; a readlink does not).
    fn open_files(process: &Path, names: &HashSet<OsString>) -> Vec<((u64, u64), OsString)> {
        let Ok(fds) = fs::read_dir(process.join("fd")) else {
            return Vec::new();
        };
        fds.flatten()
            .filter(|fd| {
                fs::read_link(fd.path())
                    .ok()
                    .and_then(|t| t.file_name().map(OsString::from))
                    .is_some_and(|n| names.contains(&n))
            })
            .filter_map(|fd| {
                let m = fs::metadata(fd.path()).ok()?;
                Some(((m.dev(), m.ino()), fd.file_name()))
            })
            .collect()
    }

    /// Whether the `flags:` line of an fdinfo file says O_WRONLY or O_RDWR.
    fn opened_for_writing(fdinfo: &Path) -> bool {
        fs::read_to_string(fdinfo).is_ok_and(|text| writable_flags(&text))
    }

    pub(super) fn writable_flags(fdinfo: &str) -> bool {
        const O_ACCMODE: u32 = 0o3;
        fdinfo
            .lines()
            .find_map(|l| l.strip_prefix("flags:"))
            .and_then(|v| u32::from_str_radix(v.trim(), 8).ok())
            .is_some_and(|flags| flags & O_ACCMODE != 0)
    }
}

#[cfg(windows)]
mod windows {
    use std::fs::OpenOptions;
    use std::os::windows::fs::OpenOptionsExt;
    use std::path::Path;

    /// `FILE_SHARE_READ`: others may read while we look, nobody may write.
    const FILE_SHARE_READ: u32 = 0x1;
    /// `ERROR_SHARING_VIOLATION`.
    const SHARING_VIOLATION: i32 = 32;

    /// True when opening `path` for reading while refusing writers fails with a sharing
    /// violation: a handle open for writing (or one that shares nothing) exists. Any other
    /// failure says nothing here; the content check reports an unreadable file.
    pub(super) fn open_for_writing(path: &Path) -> bool {
        match OpenOptions::new()
            .read(true)
            .share_mode(FILE_SHARE_READ)
            .open(path)
        {
            Ok(_) => false,
            Err(e) => e.raw_os_error() == Some(SHARING_VIOLATION),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::{File, OpenOptions};
    use std::io::Write;

    #[test]
    fn finder_busy_date_is_the_magic_one() {
        let magic = SystemTime::UNIX_EPOCH - FINDER_BUSY;
        assert!(finder_busy(magic));
        assert!(!finder_busy(magic + Duration::from_secs(1)));
        assert!(!finder_busy(SystemTime::now()));
        assert!(!finder_busy(SystemTime::UNIX_EPOCH));
    }

    #[test]
    fn a_download_marker_makes_a_video_busy_until_it_goes() {
        let dir = tempfile::tempdir().unwrap();
        let video = dir.path().join("clip.mp4");
        std::fs::write(&video, b"data").unwrap();
        let marker = dir.path().join("clip.mp4.aria2");
        std::fs::write(&marker, b"").unwrap();
        let busy = still_writing(std::slice::from_ref(&video));
        assert!(busy[&video].contains("clip.mp4.aria2"), "{busy:?}");
        std::fs::remove_file(&marker).unwrap();
        assert!(still_writing(&[video]).is_empty());
    }

    #[cfg(any(target_os = "linux", windows))]
    #[test]
    fn a_file_held_open_for_writing_is_busy_until_closed() {
        let dir = tempfile::tempdir().unwrap();
        let (held, read, idle) = (
            dir.path().join("held.mp4"),
            dir.path().join("read.mp4"),
            dir.path().join("idle.mp4"),
        );
        let mut writer = File::create(&held).unwrap();
        writer.write_all(b"data").unwrap();
        std::fs::write(&read, b"data").unwrap();
        std::fs::write(&idle, b"data").unwrap();
        let reader = File::open(&read).unwrap();
        let all = [held.clone(), read.clone(), idle.clone()];
        let busy = still_writing(&all);
        assert_eq!(busy.keys().collect::<Vec<_>>(), vec![&held], "{busy:?}");
        #[cfg(target_os = "linux")]
        assert!(
            busy[&held].contains(&format!("process {} (", std::process::id())),
            "{busy:?}"
        );
        drop(writer);
        drop(reader);
        assert!(still_writing(&all).is_empty());
        // Open for appending (write-only) counts as well.
        let appender = OpenOptions::new().append(true).open(&idle).unwrap();
        assert!(still_writing(std::slice::from_ref(&idle)).contains_key(&idle));
        drop(appender);
        assert!(still_writing(&[idle]).is_empty());
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn fdinfo_flags_are_read_as_octal_access_modes() {
        use super::linux::writable_flags;
        assert!(!writable_flags("pos:\t0\nflags:\t0100000\nmnt_id:\t29\n"));
        assert!(writable_flags("pos:\t0\nflags:\t0100001\nmnt_id:\t29\n"));
        assert!(writable_flags("pos:\t0\nflags:\t02100002\n"));
        assert!(!writable_flags("pos:\t0\n"));
        assert!(!writable_flags("flags:\tnonsense\n"));
    }
}
