//! Upload bodies: a byte range of the open video streamed from disk in bounded chunks, each
//! chunk waiting for the bandwidth limit and counted in the job's progress as it goes out,
//! and the whole range checked against the CRC-32 the fingerprint pass computed for it.
//!
//! Memory stays bounded whatever the file size: at most one chunk per stream is held.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use super::ratelimit::RateLimiter;
use crate::progress::Progress;
use crate::video::VideoFile;

/// Chunk size without a bandwidth limit: few syscalls and wakeups per MiB.
pub(crate) const CHUNK: usize = 512 * 1024;
/// The smallest chunk, used under a low bandwidth limit so it is not bursty.
const MIN_CHUNK: usize = 16 * 1024;

/// The read size for uploads: [`CHUNK`], or about an eighth of a second at `max_rate`.
pub(crate) fn chunk_size(max_rate: Option<u64>) -> usize {
    match max_rate {
        None => CHUNK,
        Some(rate) => usize::try_from(rate / 8)
            .unwrap_or(CHUNK)
            .clamp(MIN_CHUNK, CHUNK),
    }
}

/// What the body of one attempt found wrong with the file, if anything: set before the
/// stream fails, so the caller can tell "the file changed" from a network error.
#[derive(Clone, Debug, Default)]
pub(crate) struct Check(Arc<Mutex<Option<String>>>);

impl Check {
    fn set(&self, why: String) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = Some(why);
    }

    /// Why the body stopped because of the file, if it did.
    pub fn failed(&self) -> Option<String> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// Where one body reads from and what its bytes must add up to.
#[derive(Clone, Debug)]
pub(crate) struct Range {
    pub video: VideoFile,
    pub offset: u64,
    pub len: u64,
    /// The CRC-32 the fingerprint pass computed for these bytes.
    pub crc32: u32,
}

impl Range {
    /// Whether the range lies inside the file as it was opened.
    pub fn fits(&self) -> bool {
        self.offset
            .checked_add(self.len)
            .is_some_and(|end| end <= self.video.size())
    }
}

/// One read of a stream: the range's state, carried through the blocking pool.
struct Cursor {
    range: Range,
    at: u64,
    crc: crc32fast::Hasher,
}

/// `range` as a streamed request body, read by position from the open video in chunks of
/// `pacing.chunk`, paced and counted. The bytes are run through CRC-32 as they are read;
/// before the last chunk goes out, the CRC must equal `range.crc32` (what was hashed).
/// If it does not, or the file ends early, `check` says why and the stream fails, so the
/// request is cut off and the platform never stores those bytes.
pub(crate) fn checked_body(
    range: Range,
    pacing: &Pacing,
    sent: &Sent,
    check: &Check,
) -> reqwest::Body {
    reqwest::Body::wrap_stream(checked(range, pacing, sent, check))
}

fn checked(
    range: Range,
    pacing: &Pacing,
    sent: &Sent,
    check: &Check,
) -> impl futures_util::Stream<Item = std::io::Result<bytes::Bytes>> + Send + 'static {
    let chunk = pacing.chunk.max(1) as u64;
    let limiter = pacing.limiter.clone();
    let progress = pacing.progress.clone();
    let sent = sent.0.clone();
    let check = check.clone();
    let start = Cursor {
        at: range.offset,
        range,
        crc: crc32fast::Hasher::new(),
    };
    futures_util::stream::try_unfold(start, move |cur| {
        let (limiter, progress, sent, check) = (
            limiter.clone(),
            progress.clone(),
            sent.clone(),
            check.clone(),
        );
        async move {
            let end = cur.range.offset + cur.range.len;
            if cur.at >= end {
                return Ok(None);
            }
            let want = usize::try_from((end - cur.at).min(chunk)).unwrap_or(CHUNK);
            let read = tokio::task::spawn_blocking(move || {
                let mut buf = vec![0u8; want];
                let result = cur.range.video.read_exact_at(&mut buf, cur.at);
                (cur, buf, result)
            })
            .await
            .map_err(|join| std::io::Error::other(format!("read task failed: {join}")))?;
            let (mut cur, buf, result) = read;
            if let Err(e) = result {
                if e.kind() == std::io::ErrorKind::UnexpectedEof {
                    check.set("the file got shorter while it was being uploaded".into());
                }
                return Err(e);
            }
            cur.crc.update(&buf);
            cur.at += buf.len() as u64;
            if cur.at >= end {
                let got = cur.crc.clone().finalize();
                if got != cur.range.crc32 {
                    let why = format!(
                        "the bytes at {}..{end} are not the ones hashed (CRC-32 {got:08x}, expected {:08x}): the file was written to while it was being uploaded",
                        cur.range.offset, cur.range.crc32
                    );
                    check.set(why.clone());
                    return Err(std::io::Error::other(why));
                }
            }
            let n = buf.len() as u64;
            if let Some(limiter) = &limiter {
                limiter.acquire(n).await;
            }
            progress.add(n);
            sent.fetch_add(n, Ordering::Relaxed);
            Ok(Some((bytes::Bytes::from(buf), cur)))
        }
    })
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
pub(crate) struct Pacing {
    pub chunk: usize,
    pub(crate) limiter: Option<Arc<RateLimiter>>,
    pub progress: Progress,
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;
    use std::io::Write;

    fn file_with(data: &[u8]) -> (tempfile::NamedTempFile, VideoFile) {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(data).unwrap();
        f.flush().unwrap();
        let video = VideoFile::open_path(f.path()).unwrap();
        (f, video)
    }

    fn pacing() -> Pacing {
        Pacing {
            chunk: MIN_CHUNK,
            limiter: None,
            progress: Progress::new(),
        }
    }

    async fn drain(
        range: Range,
        pacing: &Pacing,
        sent: &Sent,
        check: &Check,
    ) -> (Vec<u8>, Option<std::io::Error>) {
        let mut stream = std::pin::pin!(checked(range, pacing, sent, check));
        let mut out = Vec::new();
        while let Some(item) = stream.next().await {
            match item {
                Ok(chunk) => {
                    assert!(chunk.len() <= MIN_CHUNK);
                    out.extend_from_slice(&chunk);
                }
                Err(e) => return (out, Some(e)),
            }
        }
        (out, None)
    }

    #[tokio::test]
    async fn the_body_is_the_range_and_counts_what_it_hands_on() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let (_f, video) = file_with(&data);
        let range = Range {
            video,
            offset: 10_000,
            len: 50_000,
            crc32: crc32fast::hash(&data[10_000..60_000]),
        };
        assert!(range.fits());
        let (pacing, sent, check) = (pacing(), Sent::default(), Check::default());
        let (body, err) = drain(range, &pacing, &sent, &check).await;
        assert!(err.is_none());
        assert_eq!(body, data[10_000..60_000]);
        assert_eq!((pacing.progress.done(), sent.get()), (50_000, 50_000));
        assert_eq!(check.failed(), None);
    }

    #[tokio::test]
    async fn bytes_that_are_not_the_hashed_ones_never_all_go_out() {
        let data = vec![5u8; 40_000];
        let (_f, video) = file_with(&data);
        let range = Range {
            video: video.clone(),
            offset: 0,
            len: 40_000,
            crc32: crc32fast::hash(b"something else"),
        };
        let (pacing, sent, check) = (pacing(), Sent::default(), Check::default());
        let (body, err) = drain(range, &pacing, &sent, &check).await;
        assert!(err.is_some());
        assert!(body.len() < 40_000, "the last chunk is held back");
        assert!(check.failed().unwrap().contains("written to"), "{check:?}");

        // A range past the end of the file: refused up front, and cut off if tried.
        let range = Range {
            video,
            offset: 30_000,
            len: 20_000,
            crc32: 0,
        };
        assert!(!range.fits());
        let check = Check::default();
        let (_, err) = drain(range, &pacing, &sent, &check).await;
        assert!(err.is_some());
        assert!(check.failed().unwrap().contains("shorter"));
    }

    #[test]
    fn chunk_size_follows_the_rate() {
        assert_eq!(chunk_size(None), CHUNK);
        assert_eq!(chunk_size(Some(1024)), MIN_CHUNK);
        assert_eq!(chunk_size(Some(1024 * 1024)), 128 * 1024);
        assert_eq!(chunk_size(Some(u64::MAX)), CHUNK);
    }
}
