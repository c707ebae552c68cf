//! Are the archive folders (`done/`, `failed/`, `duplicates/`) usable? Checked when the
//! agent starts (a problem stops it, naming the folder) and again right before each
//! step 5 (a problem holds the job: nothing is posted that could not be archived).

use std::io;
use std::path::{Path, PathBuf};

use crate::archive::Folders;

/// An archive folder that cannot take files.
#[derive(Debug, thiserror::Error)]
#[error("archive folder {} cannot take files: {source}", path.display())]
pub struct FolderProblem {
    pub path: PathBuf,
    #[source]
    pub source: io::Error,
}

/// Checks that each archive folder is a folder in which a file can be created (a file
/// is made and removed again). Blocking: see [`check_async`].
pub fn check(folders: &Folders) -> Result<(), FolderProblem> {
    for dir in [&folders.done, &folders.failed, &folders.duplicates] {
        check_one(dir).map_err(|source| FolderProblem {
            path: dir.clone(),
            source,
        })?;
    }
    Ok(())
}

/// [`check`] off the async threads.
pub(crate) async fn check_async(folders: &Folders) -> Result<(), FolderProblem> {
    let folders = folders.clone();
    match tokio::task::spawn_blocking(move || check(&folders)).await {
        Ok(result) => result,
        Err(e) => Err(FolderProblem {
            path: PathBuf::new(),
            source: io::Error::other(e.to_string()),
        }),
    }
}

/// The hook `job::publish` calls right before it marks step 5 as sent: `Err` holds the job
/// (its files stay in the inbox and nothing is posted) with the reason.
pub(crate) async fn ready_to_publish(ctx: &super::Context) -> Result<(), String> {
    check_async(&ctx.folders).await.map_err(|e| {
        tracing::error!(reason = %e, "the archive folder cannot take files; nothing is posted until it can");
        format!("{e}; nothing was posted")
    })
}

fn check_one(dir: &Path) -> io::Result<()> {
    let meta = std::fs::metadata(dir)?;
    if !meta.is_dir() {
        return Err(io::Error::new(
            io::ErrorKind::NotADirectory,
            "it is not a folder",
        ));
    }
    tempfile::Builder::new()
        .prefix(".dropcast-check-")
        .tempfile_in(dir)
        .map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_where_a_folder_belongs_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let folders = Folders {
            inbox: dir.path().join("inbox"),
            done: dir.path().join("done"),
            failed: dir.path().join("failed"),
            duplicates: dir.path().join("duplicates"),
        };
        for d in ["inbox", "done", "failed"] {
            std::fs::create_dir(dir.path().join(d)).unwrap();
        }
        std::fs::write(&folders.duplicates, "a file").unwrap();
        let err = check(&folders).unwrap_err();
        assert_eq!(err.path, folders.duplicates);
        assert!(err.to_string().contains("duplicates"), "{err}");
        std::fs::remove_file(&folders.duplicates).unwrap();
        std::fs::create_dir(&folders.duplicates).unwrap();
        check(&folders).unwrap();
        assert_eq!(
            std::fs::read_dir(&folders.done).unwrap().count(),
            0,
            "the probe file is removed"
        );
    }
}
