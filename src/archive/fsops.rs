//! The file-system moves an archive is made of, each safe against a crash: no-replace
//! renames, durable copies across file systems under recognizable temp names, and the
//! checks that tell a finished move from an unfinished one.

use std::ffi::{OsStr, OsString};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use super::ArchiveError;

/// Temp files `execute` creates are named `<PARTIAL_PREFIX><name>-<pid>`.
pub(super) const PARTIAL_PREFIX: &str = ".dropcast-partial-";

/// Longest part of the target's name kept in a temp name (file names are limited to
/// 255 bytes on most file systems).
const PARTIAL_NAME_MAX: usize = 200;

/// Whether anything (a dangling symlink included) has this name, or the name cannot
/// be used at all (too long for the file system): either way it is not free.
pub(super) fn exists(path: &Path) -> bool {
    match fs::symlink_metadata(path) {
        Ok(_) => true,
        Err(e) => e.kind() == io::ErrorKind::InvalidFilename,
    }
}

/// Like [`exists`], but an error that does not mean "absent" is an error.
pub(super) fn probe(path: &Path) -> io::Result<bool> {
    match fs::symlink_metadata(path) {
        Ok(_) => Ok(true),
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
            ) =>
        {
            Ok(false)
        }
        Err(e) => Err(e),
    }
}

pub(super) fn parent_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

#[cfg(unix)]
pub(super) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(not(unix))]
pub(super) fn sync_dir(_dir: &Path) -> io::Result<()> {
    Ok(())
}

#[cfg(unix)]
fn name_bytes(name: &OsStr) -> Vec<u8> {
    use std::os::unix::ffi::OsStrExt;
    name.as_bytes().to_vec()
}

#[cfg(unix)]
fn name_from_bytes(bytes: Vec<u8>) -> OsString {
    use std::os::unix::ffi::OsStringExt;
    OsString::from_vec(bytes)
}

#[cfg(not(unix))]
fn name_bytes(name: &OsStr) -> Vec<u8> {
    name.to_string_lossy().into_owned().into_bytes()
}

#[cfg(not(unix))]
fn name_from_bytes(bytes: Vec<u8>) -> OsString {
    OsString::from(String::from_utf8_lossy(&bytes).into_owned())
}

/// `.dropcast-partial-<name>-` for the target `to` (its name cut to a safe length).
fn partial_prefix(to: &Path) -> Vec<u8> {
    let name = to.file_name().map(name_bytes).unwrap_or_default();
    let mut prefix = PARTIAL_PREFIX.as_bytes().to_vec();
    prefix.extend_from_slice(&name[..name.len().min(PARTIAL_NAME_MAX)]);
    prefix.push(b'-');
    prefix
}

/// This process's temp name for a file on its way to `to`.
pub(super) fn partial_path(to: &Path) -> PathBuf {
    let mut name = partial_prefix(to);
    name.extend_from_slice(std::process::id().to_string().as_bytes());
    parent_of(to).join(name_from_bytes(name))
}

/// Removes temp files an earlier, interrupted run left on their way to `to`. Only
/// names of the exact form `.dropcast-partial-<name>-<digits>` are touched.
pub(super) fn remove_partials(to: &Path) -> io::Result<()> {
    let dir = parent_of(to);
    let prefix = partial_prefix(to);
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let name = name_bytes(&entry.file_name());
        let Some(pid) = name.strip_prefix(prefix.as_slice()) else {
            continue;
        };
        if pid.is_empty() || !pid.iter().all(u8::is_ascii_digit) {
            continue;
        }
        let path = entry.path();
        tracing::info!(path = %path.display(), "removing a temp file an interrupted archive left");
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// A temp file that is removed again unless it was renamed into place.
struct Partial {
    path: PathBuf,
    file: File,
    placed: bool,
}

impl Partial {
    fn create(to: &Path) -> io::Result<Partial> {
        let path = partial_path(to);
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)?;
        Ok(Partial {
            path,
            file,
            placed: false,
        })
    }

    /// fsync, no-replace rename to `to`, fsync the folder.
    fn place(mut self, to: &Path) -> io::Result<()> {
        self.file.sync_all()?;
        rename_noreplace(&self.path, to)?;
        self.placed = true;
        sync_dir(parent_of(to))
    }
}

impl Drop for Partial {
    fn drop(&mut self) {
        if !self.placed {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// Writes `bytes` to a temp file beside `to`, fsyncs it and renames it to `to`
/// without replacing anything (`AlreadyExists` if `to` is taken).
pub(super) fn write_new_file(to: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut tmp = Partial::create(to)?;
    tmp.file.write_all(bytes)?;
    tmp.place(to)
}

/// Moves `from` to `to` without replacing anything; across file systems: copy to a
/// temp name beside `to`, fsync, rename, fsync the folder, then remove the source.
pub(super) fn move_file(from: &Path, to: &Path) -> Result<(), ArchiveError> {
    let result = match rename_noreplace(from, to) {
        Ok(()) => sync_dir(parent_of(to)),
        Err(e) if e.kind() == io::ErrorKind::CrossesDevices => copy_across(from, to),
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => {
            // The source folder's entry is gone; make that durable too (best effort).
            let _ = sync_dir(parent_of(from));
            Ok(())
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            Err(ArchiveError::Raced(to.to_path_buf()))
        }
        Err(source) => Err(ArchiveError::Io {
            action: "move",
            path: from.to_path_buf(),
            source,
        }),
    }
}

fn copy_across(from: &Path, to: &Path) -> io::Result<()> {
    let mut src = File::open(from)?;
    let meta = src.metadata()?;
    let mut tmp = Partial::create(to)?;
    io::copy(&mut src, &mut tmp.file)?;
    tmp.file.set_permissions(meta.permissions())?;
    if let Ok(modified) = meta.modified() {
        // Keeping the mtime is a courtesy; the copy is good without it.
        let _ = tmp.file.set_modified(modified);
    }
    // On failure the temp file (our own copy) is removed; the source is untouched.
    tmp.place(to)?;
    fs::remove_file(from)
}

/// Reads at most `limit` bytes of `path`; `None` if it does not exist.
pub(super) fn read_prefix(path: &Path, limit: u64) -> io::Result<Option<Vec<u8>>> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
            ) =>
        {
            return Ok(None);
        }
        Err(e) => return Err(e),
    };
    let mut bytes = Vec::new();
    file.take(limit).read_to_end(&mut bytes)?;
    Ok(Some(bytes))
}

/// Whether two files hold the same bytes (sizes first, then the content, streamed).
pub(super) fn same_content(a: &Path, b: &Path) -> io::Result<bool> {
    let (mut fa, mut fb) = (File::open(a)?, File::open(b)?);
    if fa.metadata()?.len() != fb.metadata()?.len() {
        return Ok(false);
    }
    let mut ba = vec![0u8; 64 * 1024];
    let mut bb = vec![0u8; 64 * 1024];
    loop {
        let na = read_full(&mut fa, &mut ba)?;
        let nb = read_full(&mut fb, &mut bb)?;
        if na != nb || ba[..na] != bb[..nb] {
            return Ok(false);
        }
        if na == 0 {
            return Ok(true);
        }
    }
}

/// Fills `buf` as far as the file allows; returns how much was read (0 at the end).
fn read_full(file: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// `rename` that fails with `AlreadyExists` instead of replacing `to`: `renameat2` with
/// `RENAME_NOREPLACE` (Linux), `renameatx_np` with `RENAME_EXCL` (macOS), `MoveFileExW`
/// without `MOVEFILE_REPLACE_EXISTING` (Windows, where std's `rename` replaces), else a
/// hard link then unlink.
pub(super) fn rename_noreplace(from: &Path, to: &Path) -> io::Result<()> {
    #[cfg(windows)]
    {
        crate::win::move_no_replace(from, to)
    }
    #[cfg(not(windows))]
    rename_noreplace_unix(from, to)
}

#[cfg(not(windows))]
fn rename_noreplace_unix(from: &Path, to: &Path) -> io::Result<()> {
    #[cfg(any(target_os = "linux", target_os = "android", target_vendor = "apple"))]
    {
        use rustix::fs::{CWD, RenameFlags, renameat_with};
        use rustix::io::Errno;
        match renameat_with(CWD, from, CWD, to, RenameFlags::NOREPLACE) {
            Ok(()) => return Ok(()),
            // The kernel or the file system does not know the flag: fall back.
            Err(Errno::INVAL | Errno::NOSYS | Errno::OPNOTSUPP) => {}
            // macOS says so with ENOTSUP, which is not EOPNOTSUPP there.
            #[cfg(target_vendor = "apple")]
            Err(Errno::NOTSUP) => {}
            Err(e) => return Err(e.into()),
        }
    }
    link_then_unlink(from, to)
}

/// Hard-link then unlink; where the file system has no hard links, check then rename
/// (the documented, racy last resort; never on Windows, whose `rename` replaces and whose
/// no-replace move needs no fallback). A crash between link and unlink leaves both
/// names on one file, which `execute` recognizes as a finished copy.
#[cfg_attr(windows, allow(dead_code))]
pub(super) fn link_then_unlink(from: &Path, to: &Path) -> io::Result<()> {
    match fs::hard_link(from, to) {
        Ok(()) => {
            if let Err(e) = fs::remove_file(from) {
                tracing::warn!(
                    from = %from.display(),
                    error = %e,
                    "archived by hard link; the inbox name could not be removed"
                );
            }
            Ok(())
        }
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::AlreadyExists
                    | io::ErrorKind::CrossesDevices
                    | io::ErrorKind::NotFound
            ) =>
        {
            Err(e)
        }
        Err(_) => {
            if exists(to) {
                return Err(io::Error::from(io::ErrorKind::AlreadyExists));
            }
            fs::rename(from, to)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(path: &Path, content: &[u8]) -> PathBuf {
        fs::write(path, content).unwrap();
        path.to_path_buf()
    }

    #[test]
    fn rename_noreplace_refuses_to_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let a = put(&dir.path().join("a"), b"A");
        let b = put(&dir.path().join("b"), b"B");
        let err = rename_noreplace(&a, &b).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(fs::read(&a).unwrap(), b"A");
        assert_eq!(fs::read(&b).unwrap(), b"B");
        let err = link_then_unlink(&a, &b).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        let c = dir.path().join("c");
        link_then_unlink(&a, &c).unwrap();
        assert!(!a.exists());
        assert_eq!(fs::read(&c).unwrap(), b"A");
    }

    #[test]
    fn same_content_compares_sizes_and_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let big: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let a = put(&dir.path().join("a"), &big);
        let b = put(&dir.path().join("b"), &big);
        assert!(same_content(&a, &b).unwrap());
        let mut other = big.clone();
        other[150_000] ^= 1;
        let c = put(&dir.path().join("c"), &other);
        assert!(!same_content(&a, &c).unwrap());
        let d = put(&dir.path().join("d"), &big[..big.len() - 1]);
        assert!(!same_content(&a, &d).unwrap());
        let e = put(&dir.path().join("e"), b"");
        let f = put(&dir.path().join("f"), b"");
        assert!(same_content(&e, &f).unwrap());
    }

    #[test]
    fn partials_are_recognized_by_exact_name_only() {
        let dir = tempfile::tempdir().unwrap();
        let to = dir.path().join("clip.mp4");
        let ours = partial_path(&to);
        assert!(
            ours.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(".dropcast-partial-clip.mp4-")
        );
        put(&ours, b"half");
        let stale = put(&dir.path().join(".dropcast-partial-clip.mp4-4242"), b"old");
        let keep = [
            put(&dir.path().join(".dropcast-partial-clip.mp4-42x"), b"k"),
            put(&dir.path().join(".dropcast-partial-clip.mp4-"), b"k"),
            put(&dir.path().join(".dropcast-partial-clip.mp4.yaml-1"), b"k"),
            put(&dir.path().join("clip.mp4-1"), b"k"),
        ];
        remove_partials(&to).unwrap();
        assert!(!ours.exists() && !stale.exists());
        for path in keep {
            assert!(path.exists(), "{}", path.display());
        }
        // A folder that does not exist has no partials.
        remove_partials(&dir.path().join("nowhere/clip.mp4")).unwrap();
    }

    // Regression (issue 9 item 8): a name too long for the file system counted as free.
    #[test]
    fn a_name_too_long_is_not_free() {
        let dir = tempfile::tempdir().unwrap();
        assert!(exists(&dir.path().join("x".repeat(300))));
        assert!(!exists(&dir.path().join("x".repeat(200))));
    }

    #[test]
    fn long_names_get_short_enough_temp_names() {
        let dir = tempfile::tempdir().unwrap();
        let to = dir.path().join(format!("{}.mp4", "x".repeat(250)));
        let tmp = partial_path(&to);
        assert!(tmp.file_name().unwrap().len() <= 255);
        write_new_file(&to, b"bytes").unwrap();
        assert_eq!(fs::read(&to).unwrap(), b"bytes");
        assert!(!tmp.exists());
    }

    #[test]
    fn write_new_file_never_replaces_and_cleans_up() {
        let dir = tempfile::tempdir().unwrap();
        let to = put(&dir.path().join("r.json"), b"theirs");
        let err = write_new_file(&to, b"ours").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(fs::read(&to).unwrap(), b"theirs");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1, "temp removed");
    }
}
