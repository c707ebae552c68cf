//! Records the commit dropcast is built from, for `dropcast --version` (src/version.rs).
//!
//! `DROPCAST_COMMIT` (set by a packager building from a tarball) wins; else, when this
//! folder is the top of a git work tree and git runs, `git rev-parse --short=12 HEAD`, with
//! `-dirty` when tracked files differ from that commit; else nothing (the version alone).
//! Cargo reruns this script only when HEAD, the branch it points to, the index or the
//! sources change, so builds stay incremental.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-env-changed=DROPCAST_COMMIT");
    let version = std::env::var("CARGO_PKG_VERSION").unwrap_or_default();
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let commit = from_env().or_else(|| from_git(&manifest));
    match &commit {
        Some(commit) => {
            println!("cargo::rustc-env=DROPCAST_BUILD_COMMIT={commit}");
            println!("cargo::rustc-env=DROPCAST_BUILD_VERSION={version} ({commit})");
        }
        None => println!("cargo::rustc-env=DROPCAST_BUILD_VERSION={version}"),
    }
}

/// `DROPCAST_COMMIT`, if it looks like a commit name (letters, digits, `.`, `-`, `_`).
fn from_env() -> Option<String> {
    let value = std::env::var("DROPCAST_COMMIT").ok()?;
    let value = value.trim();
    let fine = !value.is_empty()
        && value.len() <= 64
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
    if !fine && !value.is_empty() {
        println!("cargo::warning=DROPCAST_COMMIT={value:?} ignored: not a commit name");
    }
    fine.then(|| value.to_owned())
}

/// The short commit of HEAD (`-dirty` appended when tracked files changed), when
/// `manifest` is the top of a git work tree; `None` without git or a repository.
fn from_git(manifest: &Path) -> Option<String> {
    // A tarball unpacked inside some other repository must not take that one's commit.
    let top = git(manifest, &["rev-parse", "--show-toplevel"])?;
    if !same_dir(Path::new(&top), manifest) {
        return None;
    }
    watch_git_files(manifest);
    let commit = git(manifest, &["rev-parse", "--short=12", "HEAD"])?;
    // No optional locks: `status` would otherwise refresh the index, which is watched.
    let dirty = git(
        manifest,
        &[
            "--no-optional-locks",
            "status",
            "--porcelain",
            "--untracked-files=no",
        ],
    )
    .is_some_and(|out| !out.is_empty());
    Some(if dirty {
        format!("{commit}-dirty")
    } else {
        commit
    })
}

/// Reruns this script when HEAD moves (a commit, a checkout), when the index changes
/// (`git add`), or when a source the binary is built from changes (so `-dirty` follows).
fn watch_git_files(manifest: &Path) {
    let mut watched = vec![
        "HEAD".to_owned(),
        "index".to_owned(),
        "packed-refs".to_owned(),
    ];
    if let Some(branch) = git(manifest, &["symbolic-ref", "-q", "HEAD"]) {
        watched.push(branch);
    }
    for name in watched {
        let Some(path) = git(
            manifest,
            &["rev-parse", "--path-format=absolute", "--git-path", &name],
        ) else {
            continue;
        };
        // A missing file would make cargo rerun this script on every build.
        if Path::new(&path).exists() {
            println!("cargo::rerun-if-changed={path}");
        }
    }
    for source in ["src", "Cargo.toml", "Cargo.lock"] {
        println!("cargo::rerun-if-changed={source}");
    }
}

/// `git ARGS` in `dir`: its trimmed output, or `None` when git is missing or fails.
fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    Some(String::from_utf8(out.stdout).ok()?.trim().to_owned())
}

fn same_dir(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}
