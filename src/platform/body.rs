//! Upload bodies: a byte range of a file streamed from disk in bounded chunks, each chunk
//! waiting for the bandwidth limit and counted in the job's progress as it goes out.
//!
//! Memory stays bounded whatever the file size: at most one chunk per stream is held.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use futures_util::StreamExt;
use tokio::io::AsyncReadExt;
use tokio_util::io::ReaderStream;

use super::ratelimit::RateLimiter;
use crate::progress::Progress;

/// Chunk size without a bandwidth limit: few syscalls and wakeups per MiB.
pub const CHUNK: usize = 512 * 1024;
/// The smallest chunk, used under a low bandwidth limit so it is not bursty.
const MIN_CHUNK: usize = 16 * 1024;

/// The read size for uploads: [`CHUNK`], or about an eighth of a second at `max_rate`.
pub fn chunk_size(max_rate: Option<u64>) -> usize {
    match max_rate {
        None => CHUNK,
        Some(rate) => usize::try_from(rate / 8)
            .unwrap_or(CHUNK)
            .clamp(MIN_CHUNK, CHUNK),
    }
}

/// Why a range of the file cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum RangeError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is {on_disk} bytes, expected {expected}: it changed")]
    Changed {
        path: PathBuf,
        on_disk: u64,
        expected: u64,
    },
}

/// `path` opened at `offset`, after checking it is still `file_size` bytes long, with the
/// CRC-32 of the `len` bytes there (read once, before sending, so the header can lead).
pub async fn open_range(
    path: &Path,
    file_size: u64,
    offset: u64,
    len: u64,
) -> Result<(tokio::fs::File, u32), RangeError> {
    let (file, crc) = open(path, file_size, offset, len, true).await?;
    Ok((file, crc.unwrap_or(0)))
}

/// `path` opened at its start, after checking it is still `file_size` bytes long.
pub async fn open_whole(path: &Path, file_size: u64) -> Result<tokio::fs::File, RangeError> {
    Ok(open(path, file_size, 0, file_size, false).await?.0)
}

async fn open(
    path: &Path,
    file_size: u64,
    offset: u64,
    len: u64,
    crc: bool,
) -> Result<(tokio::fs::File, Option<u32>), RangeError> {
    let owned = path.to_path_buf();
    let joined = tokio::task::spawn_blocking(move || {
        open_blocking(&owned, file_size, offset, len, crc).map_err(|e| e.at(&owned, file_size))
    })
    .await;
    let (file, crc) = match joined {
        Ok(result) => result?,
        Err(join) => {
            return Err(RangeError::Io {
                path: path.to_path_buf(),
                source: std::io::Error::other(join.to_string()),
            });
        }
    };
    Ok((tokio::fs::File::from_std(file), crc))
}

/// A [`RangeError`] before it knows its path.
enum Unplaced {
    Io(std::io::Error),
    Changed { on_disk: u64 },
}

impl From<std::io::Error> for Unplaced {
    fn from(e: std::io::Error) -> Self {
        Unplaced::Io(e)
    }
}

impl Unplaced {
    fn at(self, path: &Path, expected: u64) -> RangeError {
        let path = path.to_path_buf();
        match self {
            Unplaced::Io(source) => RangeError::Io { path, source },
            Unplaced::Changed { on_disk } => RangeError::Changed {
                path,
                on_disk,
                expected,
            },
        }
    }
}

/// Blocking: opens and checks the size; with `crc`, reads `len` bytes at `offset` into a
/// CRC-32. Leaves the file positioned at `offset`.
fn open_blocking(
    path: &Path,
    file_size: u64,
    offset: u64,
    len: u64,
    crc: bool,
) -> Result<(std::fs::File, Option<u32>), Unplaced> {
    let mut file = std::fs::File::open(path)?;
    let on_disk = file.metadata()?.len();
    if on_disk != file_size || offset.saturating_add(len) > on_disk {
        return Err(Unplaced::Changed { on_disk });
    }
    file.seek(SeekFrom::Start(offset))?;
    if !crc {
        return Ok((file, None));
    }
    let mut buf = vec![0u8; usize::try_from(len).unwrap_or(CHUNK).clamp(1, CHUNK)];
    let mut hasher = crc32fast::Hasher::new();
    let mut left = len;
    while left > 0 {
        let want = usize::try_from(left).unwrap_or(buf.len()).min(buf.len());
        let n = file.read(&mut buf[..want])?;
        if n == 0 {
            return Err(Unplaced::Changed { on_disk });
        }
        hasher.update(&buf[..n]);
        left -= n as u64;
    }
    file.seek(SeekFrom::Start(offset))?;
    Ok((file, Some(hasher.finalize())))
}

/// Bytes one attempt handed to the connection, to take back from the progress if the
/// attempt fails and its bytes must be sent again.
#[derive(Clone, Debug, Default)]
pub struct Sent(Arc<AtomicU64>);

impl Sent {
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// How a body is paced and counted.
#[derive(Clone, Debug)]
pub struct Pacing {
    pub chunk: usize,
    pub limiter: Option<Arc<RateLimiter>>,
    pub progress: Progress,
}

/// The next `len` bytes of `file` as a streamed request body, paced and counted.
pub fn stream_body(file: tokio::fs::File, len: u64, pacing: &Pacing, sent: &Sent) -> reqwest::Body {
    reqwest::Body::wrap_stream(paced(file, len, pacing, sent))
}

/// The next `len` bytes of `file` in chunks of `pacing.chunk`. Every chunk waits for the
/// limiter, then is added to the progress and to `sent` as it is handed on.
fn paced(
    file: tokio::fs::File,
    len: u64,
    pacing: &Pacing,
    sent: &Sent,
) -> impl futures_util::Stream<Item = std::io::Result<bytes::Bytes>> + Send + 'static {
    let limiter = pacing.limiter.clone();
    let progress = pacing.progress.clone();
    let sent = sent.0.clone();
    ReaderStream::with_capacity(file.take(len), pacing.chunk).then(move |item| {
        let limiter = limiter.clone();
        let progress = progress.clone();
        let sent = sent.clone();
        async move {
            if let Ok(bytes) = &item {
                let n = bytes.len() as u64;
                if let Some(limiter) = &limiter {
                    limiter.acquire(n).await;
                }
                progress.add(n);
                sent.fetch_add(n, Ordering::Relaxed);
            }
            item
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn file_with(data: &[u8]) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(data).unwrap();
        f.flush().unwrap();
        f
    }

    #[tokio::test]
    async fn crc_of_a_range_and_the_file_left_at_its_offset() {
        let data: Vec<u8> = (0..3000u32).map(|i| (i * 7 % 251) as u8).collect();
        let f = file_with(&data);
        let (mut file, crc) = open_range(f.path(), 3000, 1000, 1500).await.unwrap();
        assert_eq!(crc, crc32fast::hash(&data[1000..2500]));
        let mut first = [0u8; 4];
        file.read_exact(&mut first).await.unwrap();
        assert_eq!(first, data[1000..1004]);
    }

    #[tokio::test]
    async fn a_file_of_another_size_is_refused() {
        let f = file_with(b"0123456789");
        let err = open_range(f.path(), 11, 0, 10).await.unwrap_err();
        assert!(
            matches!(err, RangeError::Changed { on_disk: 10, .. }),
            "{err}"
        );
        assert!(open_range(f.path(), 10, 5, 6).await.is_err());
        let err = open_range(Path::new("/nonexistent/x.mp4"), 1, 0, 1)
            .await
            .unwrap_err();
        assert!(matches!(err, RangeError::Io { .. }), "{err}");
    }

    #[tokio::test]
    async fn the_body_counts_what_it_hands_on() {
        let data = vec![5u8; 100_000];
        let f = file_with(&data);
        let (file, _) = open_range(f.path(), 100_000, 10_000, 50_000).await.unwrap();
        let progress = Progress::new();
        let pacing = Pacing {
            chunk: MIN_CHUNK,
            limiter: None,
            progress: progress.clone(),
        };
        let sent = Sent::default();
        let mut stream = std::pin::pin!(paced(file, 50_000, &pacing, &sent));
        let mut total = 0usize;
        let mut biggest = 0usize;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.unwrap();
            biggest = biggest.max(chunk.len());
            total += chunk.len();
        }
        assert_eq!(total, 50_000);
        assert!(biggest <= MIN_CHUNK, "{biggest}");
        assert_eq!((progress.done(), sent.get()), (50_000, 50_000));
    }

    #[test]
    fn chunk_size_follows_the_rate() {
        assert_eq!(chunk_size(None), CHUNK);
        assert_eq!(chunk_size(Some(1024)), MIN_CHUNK);
        assert_eq!(chunk_size(Some(1024 * 1024)), 128 * 1024);
        assert_eq!(chunk_size(Some(u64::MAX)), CHUNK);
    }
}
