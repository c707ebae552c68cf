//! Reading the small files a user names (cookie files, captions, the config) without
//! trusting them: only a regular file is read, never more than a cap, and a FIFO or a
//! device can neither block the open nor feed endless bytes.
//!
//! The open uses `O_NONBLOCK`, so a FIFO without a writer does not wait; the open
//! descriptor is then checked with `fstat` (what was opened, not what the name pointed at
//! a moment earlier) and read up to `cap + 1` bytes. Async code calls [`read_async`],
//! which does the same off the async threads with a time limit.

use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long [`read_async`] waits for a read (a hung network file system, say).
pub(crate) const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a user's file was not read.
#[derive(Debug, thiserror::Error)]
pub enum UserFileError {
    #[error("cannot read {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{} is {kind}, not a regular file; only regular files are read", path.display())]
    NotRegular { path: PathBuf, kind: &'static str },
    #[error("{} is larger than {cap} bytes; it is not read", path.display())]
    TooLarge { path: PathBuf, cap: u64 },
    #[error("reading {} took longer than {}s; it is not read", path.display(), READ_TIMEOUT.as_secs())]
    TimedOut { path: PathBuf },
}

/// Reads `path` if it is a regular file of at most `cap` bytes. Never blocks on a FIFO
/// or a device, and never holds more than `cap + 1` bytes in memory.
pub fn read(path: &Path, cap: u64) -> Result<Vec<u8>, UserFileError> {
    let io_err = |source| UserFileError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = open_nonblocking(path).map_err(io_err)?;
    let meta = file.metadata().map_err(io_err)?;
    if !meta.is_file() {
        return Err(UserFileError::NotRegular {
            path: path.to_path_buf(),
            kind: kind_of(&meta.file_type()),
        });
    }
    let mut bytes = Vec::with_capacity(meta.len().min(cap + 1) as usize);
    file.take(cap + 1).read_to_end(&mut bytes).map_err(io_err)?;
    if bytes.len() as u64 > cap {
        return Err(UserFileError::TooLarge {
            path: path.to_path_buf(),
            cap,
        });
    }
    Ok(bytes)
}

/// Opens `path` for reading, without blocking on a FIFO and only if it is a regular file
/// (`InvalidInput` otherwise), for callers that read it themselves.
pub(crate) fn open_regular(path: &Path) -> io::Result<File> {
    let file = open_nonblocking(path)?;
    let kind = file.metadata()?.file_type();
    if kind.is_file() {
        Ok(file)
    } else {
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "{} is {}, not a regular file",
                path.display(),
                kind_of(&kind)
            ),
        ))
    }
}

/// [`read`] off the async threads, giving up after [`READ_TIMEOUT`].
pub(crate) async fn read_async(path: PathBuf, cap: u64) -> Result<Vec<u8>, UserFileError> {
    read_async_with(path, cap, READ_TIMEOUT).await
}

async fn read_async_with(
    path: PathBuf,
    cap: u64,
    limit: Duration,
) -> Result<Vec<u8>, UserFileError> {
    let for_task = path.clone();
    let task = tokio::task::spawn_blocking(move || read(&for_task, cap));
    match tokio::time::timeout(limit, task).await {
        Ok(Ok(result)) => result,
        Ok(Err(join)) => Err(UserFileError::Io {
            path,
            source: io::Error::other(join.to_string()),
        }),
        // The blocking read is left behind; the process's shutdown does not wait for it.
        Err(_) => Err(UserFileError::TimedOut { path }),
    }
}

#[cfg(unix)]
fn open_nonblocking(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    let flags = rustix::fs::OFlags::NONBLOCK | rustix::fs::OFlags::NOCTTY;
    OpenOptions::new()
        .read(true)
        .custom_flags(flags.bits() as i32)
        .open(path)
}

#[cfg(not(unix))]
fn open_nonblocking(path: &Path) -> io::Result<File> {
    OpenOptions::new().read(true).open(path)
}

fn kind_of(kind: &std::fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if kind.is_fifo() {
            return "a FIFO (named pipe)";
        }
        if kind.is_char_device() {
            return "a character device";
        }
        if kind.is_block_device() {
            return "a block device";
        }
        if kind.is_socket() {
            return "a socket";
        }
    }
    if kind.is_dir() {
        "a folder"
    } else {
        "not a regular file"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_small_regular_file_and_refuses_a_big_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"12345").unwrap();
        assert_eq!(read(&path, 5).unwrap(), b"12345");
        let err = read(&path, 4).unwrap_err();
        assert!(
            matches!(err, UserFileError::TooLarge { cap: 4, .. }),
            "{err}"
        );
        let err = read(dir.path(), 4).unwrap_err();
        assert!(err.to_string().contains("a folder"), "{err}");
        let err = read(&dir.path().join("none"), 4).unwrap_err();
        assert!(
            matches!(&err, UserFileError::Io { source, .. } if source.kind() == io::ErrorKind::NotFound),
            "{err}"
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_fifo_and_a_device_are_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        rustix::fs::mkfifoat(
            rustix::fs::CWD,
            &fifo,
            rustix::fs::Mode::from_raw_mode(0o600),
        )
        .unwrap();
        let err = read(&fifo, 100).unwrap_err();
        assert!(err.to_string().contains("FIFO"), "{err}");
        let err = read(Path::new("/dev/zero"), 100).unwrap_err();
        assert!(err.to_string().contains("character device"), "{err}");
    }

    #[tokio::test]
    async fn async_read_has_a_time_limit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"ok").unwrap();
        assert_eq!(read_async(path.clone(), 10).await.unwrap(), b"ok");
        let err = read_async_with(path, 10, Duration::ZERO).await;
        // Either finished at once or timed out; never hangs.
        if let Err(e) = err {
            assert!(matches!(e, UserFileError::TimedOut { .. }), "{e}");
        }
    }
}
