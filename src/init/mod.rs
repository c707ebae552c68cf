//! `dropcast init [DIR]`: a commented starter config (`starter.yaml`: the sandbox on, so it
//! works at once) and the folders it names, asking nothing. An existing config is never
//! touched: init refuses before creating anything.

use std::fs::OpenOptions;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::config::{Config, ConfigError};

/// The config `init` writes, as it is written.
pub(crate) const STARTER: &str = include_str!("starter.yaml");

/// The file name `init` writes, the one commands read by default.
pub(crate) const CONFIG_NAME: &str = "dropcast.yaml";

/// Why `init` did nothing, or stopped.
#[derive(Debug, thiserror::Error)]
pub(crate) enum InitError {
    #[error(
        "{} already exists; dropcast init never overwrites a config (edit it, or init another folder)",
        .0.display()
    )]
    Exists(PathBuf),
    #[error("cannot create {}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    /// The starter config does not load: a bug in dropcast, caught by its tests.
    #[error("the starter config does not load: {0}")]
    Starter(#[from] ConfigError),
}

/// What `init` made.
#[derive(Debug)]
pub(crate) struct Made {
    /// The config written.
    pub config: PathBuf,
    /// Each folder the config names, and whether `init` created it (false: it was there).
    pub folders: Vec<(PathBuf, bool)>,
}

/// Writes `dir/dropcast.yaml` and creates the folders it names (and `dir` itself).
/// Refuses, creating nothing, when the config is there (even as a dangling link).
pub(crate) fn init(dir: &Path) -> Result<Made, InitError> {
    let dir = std::path::absolute(dir).map_err(|source| InitError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let path = dir.join(CONFIG_NAME);
    if path.symlink_metadata().is_ok() {
        return Err(InitError::Exists(path));
    }
    let config = Config::parse(STARTER, Some(&path), &dir)?;
    let mut folders = Vec::new();
    for folder in config.folders_to_create() {
        let created = !folder.exists();
        std::fs::create_dir_all(folder).map_err(|source| InitError::Io {
            path: folder.to_path_buf(),
            source,
        })?;
        folders.push((folder.to_path_buf(), created));
    }
    write_new(&path, STARTER)?;
    Ok(Made {
        config: path,
        folders,
    })
}

/// Writes `text` to a file that must not exist yet (`create_new`: a file that appeared since
/// the check above is refused, not overwritten).
fn write_new(path: &Path, text: &str) -> Result<(), InitError> {
    let mut file = match OpenOptions::new().write(true).create_new(true).open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            return Err(InitError::Exists(path.to_path_buf()));
        }
        Err(source) => {
            return Err(InitError::Io {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|source| InitError::Io {
            path: path.to_path_buf(),
            source,
        })
}

impl Made {
    /// What was made, then the command to run next: `-c` is left out only when the
    /// config is the one `dropcast` reads by default from `cwd`.
    pub(crate) fn render(&self, cwd: Option<&Path>, config_env_set: bool) -> String {
        let mut out = format!(
            "created     {} (platform.sandbox: true: nothing is posted for real)\n",
            self.config.display()
        );
        for (folder, created) in &self.folders {
            let what = if *created { "created" } else { "kept" };
            out.push_str(&format!("{what:<11} {}{}\n", folder.display(), sep()));
        }
        let default = !config_env_set
            && cwd.is_some_and(|cwd| same_dir(cwd, self.config.parent().unwrap_or(cwd)));
        let dropcast = if default {
            "dropcast".to_owned()
        } else {
            format!("dropcast -c {}", quoted(&self.config))
        };
        let inbox = self.folders.first().map(|(p, _)| p.as_path());
        out.push_str(&format!(
            "next:       {dropcast} watch\n\
             \x20           then drop a video and its caption into {}{} (see the README's \"Quick start\")\n",
            inbox.unwrap_or(Path::new("inbox")).display(),
            sep()
        ));
        out
    }
}

fn sep() -> char {
    std::path::MAIN_SEPARATOR
}

fn same_dir(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// `path` as a shell word: as is when it holds only safe characters, else in quotes.
fn quoted(path: &Path) -> String {
    let text = path.display().to_string();
    let safe = |c: char| c.is_ascii_alphanumeric() || "/\\._-+:,@=".contains(c);
    if text.chars().all(safe) {
        text
    } else if cfg!(windows) {
        format!("\"{text}\"")
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests;
