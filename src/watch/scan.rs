//! A full walk of the inbox: every regular file under it, without following symlinks and
//! without entering the output folders that may live inside it (README "Folder rules").

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// What one walk found. Paths start with `root` exactly as it was given.
#[derive(Debug, Default)]
pub struct Scan {
    /// Regular files, sorted. Names are not filtered: apply a `NameFilter`.
    pub files: Vec<PathBuf>,
    /// Symlinks (to anything), sorted. Never followed; reported so the caller can warn.
    pub(crate) symlinks: Vec<PathBuf>,
    /// Directories or entries that could not be read. The walk goes on past them.
    pub(crate) errors: Vec<(PathBuf, io::Error)>,
}

/// Walks `root` recursively.
///
/// Symlinks are listed, never followed. Directories in `excluded` (`done/`, `failed/`,
/// `duplicates/`, `state_dir`, …) are skipped with everything below them; they are
/// compared by canonical path, so `./inbox/done` and `/abs/inbox/done` are the same folder.
/// Non-UTF-8 names are kept as they are. Sockets, FIFOs and devices are ignored.
pub fn scan(root: &Path, excluded: &[PathBuf]) -> Scan {
    let mut out = Scan::default();
    let excluded: Vec<PathBuf> = excluded
        .iter()
        .filter_map(|p| fs::canonicalize(p).ok())
        .collect();
    let canonical_root = match fs::canonicalize(root) {
        Ok(p) => p,
        Err(e) => {
            out.errors.push((root.to_path_buf(), e));
            return out;
        }
    };
    if excluded.contains(&canonical_root) {
        return out;
    }

    // Each stack entry: the path as the caller spells it, and its canonical form. A real
    // (non-symlink) directory's canonical path is its canonical parent joined with its
    // name, so no further canonicalize calls are needed.
    let mut stack = vec![(root.to_path_buf(), canonical_root)];
    while let Some((dir, canonical)) = stack.pop() {
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) => {
                out.errors.push((dir, e));
                continue;
            }
        };
        for entry in entries {
            let entry = match entry {
                Ok(entry) => entry,
                Err(e) => {
                    out.errors.push((dir.clone(), e));
                    continue;
                }
            };
            let path = entry.path();
            // `DirEntry::file_type` does not follow symlinks.
            let file_type = match entry.file_type() {
                Ok(t) => t,
                Err(e) => {
                    out.errors.push((path, e));
                    continue;
                }
            };
            if file_type.is_symlink() {
                out.symlinks.push(path);
            } else if file_type.is_dir() {
                let child = canonical.join(entry.file_name());
                if !excluded.contains(&child) {
                    stack.push((path, child));
                }
            } else if file_type.is_file() {
                out.files.push(path);
            }
        }
    }
    out.files.sort();
    out.symlinks.sort();
    out
}

/// True when `path` lies in (or is) one of the `excluded` folders, compared by path
/// components as spelled. For event paths, which notify builds from the watched root;
/// give root and excluded folders in the same spelling (e.g. both absolute).
pub fn is_excluded(path: &Path, excluded: &[PathBuf]) -> bool {
    excluded.iter().any(|dir| path.starts_with(dir))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::File;

    fn touch(path: &Path) {
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).unwrap();
        }
        File::create(path).unwrap();
    }

    #[test]
    fn finds_nested_files_sorted() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        touch(&root.join("b.mp4"));
        touch(&root.join("a/x.mp4"));
        touch(&root.join("a/deeper/still/y.yaml"));
        fs::create_dir(root.join("empty")).unwrap();
        let s = scan(root, &[]);
        assert_eq!(
            s.files,
            vec![
                root.join("a/deeper/still/y.yaml"),
                root.join("a/x.mp4"),
                root.join("b.mp4"),
            ]
        );
        assert!(s.symlinks.is_empty());
        assert!(s.errors.is_empty(), "{:?}", s.errors);
    }

    #[test]
    fn skips_excluded_dirs_inside_root_in_any_spelling() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("inbox");
        touch(&root.join("keep.mp4"));
        touch(&root.join("done/old.mp4"));
        touch(&root.join("done/job1/old.mp4"));
        touch(&root.join("failed/bad.mp4"));
        touch(&root.join(".dropcast/ledger.sqlite3"));
        touch(&root.join("sub/done/not-excluded.mp4"));
        let excluded = vec![
            root.join("done"),
            // Spelled differently from the root: still the same folder.
            root.join("sub/../failed"),
            root.join(".dropcast"),
            // Does not exist: harmless.
            root.join("duplicates"),
        ];
        let s = scan(&root, &excluded);
        assert_eq!(
            s.files,
            vec![
                root.join("keep.mp4"),
                root.join("sub/done/not-excluded.mp4")
            ]
        );
        assert!(s.errors.is_empty());
    }

    #[test]
    fn excluded_root_yields_nothing() {
        let dir = tempfile::tempdir().unwrap();
        touch(&dir.path().join("a.mp4"));
        let s = scan(dir.path(), &[dir.path().to_path_buf()]);
        assert!(s.files.is_empty());
    }

    #[test]
    fn missing_root_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let s = scan(&dir.path().join("nope"), &[]);
        assert!(s.files.is_empty());
        assert_eq!(s.errors.len(), 1);
        assert_eq!(s.errors[0].1.kind(), io::ErrorKind::NotFound);
    }

    #[cfg(unix)]
    #[test]
    fn symlinks_to_files_and_dirs_are_listed_not_followed() {
        use std::os::unix::fs::symlink;
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("inbox");
        let outside = dir.path().join("outside");
        touch(&root.join("real.mp4"));
        touch(&outside.join("elsewhere.mp4"));
        symlink(outside.join("elsewhere.mp4"), root.join("link.mp4")).unwrap();
        symlink(&outside, root.join("linkdir")).unwrap();
        // A loop would hang a walker that follows links.
        symlink(&root, root.join("loop")).unwrap();
        let s = scan(&root, &[]);
        assert_eq!(s.files, vec![root.join("real.mp4")]);
        assert_eq!(
            s.symlinks,
            vec![
                root.join("link.mp4"),
                root.join("linkdir"),
                root.join("loop")
            ]
        );
    }

    #[cfg(unix)]
    #[test]
    fn non_utf8_file_names_are_kept() {
        use std::ffi::OsStr;
        use std::os::unix::ffi::OsStrExt;
        let dir = tempfile::tempdir().unwrap();
        let name = OsStr::from_bytes(b"clip-\xff\xfe.mp4");
        let sub = OsStr::from_bytes(b"dir-\xc3");
        let a = dir.path().join(name);
        let b = dir.path().join(sub).join(name);
        touch(&a);
        touch(&b);
        let s = scan(dir.path(), &[]);
        assert!(s.errors.is_empty(), "{:?}", s.errors);
        let mut want = vec![a, b];
        want.sort();
        assert_eq!(s.files, want);
    }

    #[cfg(unix)]
    #[test]
    fn unreadable_subdir_is_reported_and_walk_goes_on() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        touch(&root.join("ok.mp4"));
        touch(&root.join("locked/x.mp4"));
        fs::set_permissions(root.join("locked"), fs::Permissions::from_mode(0o000)).unwrap();
        let s = scan(root, &[]);
        fs::set_permissions(root.join("locked"), fs::Permissions::from_mode(0o755)).unwrap();
        assert!(s.files.contains(&root.join("ok.mp4")));
        // Root can read anything; only assert the error when the lock actually held.
        if !s.files.contains(&root.join("locked/x.mp4")) {
            assert_eq!(s.errors.len(), 1);
            assert_eq!(s.errors[0].0, root.join("locked"));
        }
    }

    #[test]
    fn is_excluded_by_components() {
        let ex = vec![PathBuf::from("/in/done")];
        assert!(is_excluded(Path::new("/in/done"), &ex));
        assert!(is_excluded(Path::new("/in/done/a/b.mp4"), &ex));
        assert!(!is_excluded(Path::new("/in/done-not/b.mp4"), &ex));
        assert!(!is_excluded(Path::new("/in/b.mp4"), &ex));
    }
}
