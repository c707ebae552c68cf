//! The bytes of §5: the video's chunks PUT in order, one at a time, each streamed from
//! the open video by position (never held in memory), and resumed from what the server
//! says it has (`Content-Range` of a 206 or 416) after a lost answer, a 5xx or a restart.
//! Before the very last byte leaves, the whole file's CRC-32 must be the one hashed, so TikTok never completes an upload of a file
//! that changed.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use super::client::{Api, ChunkReply};
use super::wire::{self, ChunkPlan};
use crate::platform::backoff::retrying;
use crate::platform::{PublishError, RetryPolicy};
use crate::progress::Progress;
use crate::secret::Secret;
use crate::video::VideoFile;

/// Reads per body item.
const READ: usize = 512 * 1024;
/// Each chunk gets the request timeout plus a second per this many bytes (ours).
const MIN_BYTES_PER_SEC: u64 = 64 * 1024;

/// One upload's fixed facts.
pub(crate) struct Upload<'a> {
    pub api: &'a Api,
    pub url: &'a Secret,
    pub video: &'a VideoFile,
    pub plan: ChunkPlan,
    /// CRC-32 of the whole file, from the hash pass.
    pub crc32: u32,
    pub progress: &'a Progress,
    pub retry: RetryPolicy,
    pub timeout: Duration,
}

/// How an upload ended, short of an error.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Ended {
    /// Every byte is in (201, or a 416 saying so).
    Complete,
    /// The upload URL expired (403) or the upload is gone (404).
    Lost,
}

impl Upload<'_> {
    /// Sends the chunks from `start` (a chunk index), calling `accepted(index)` as each
    /// lands, until the server has every byte.
    pub(crate) async fn run<F, Fut>(&self, start: u64, accepted: F) -> Result<Ended, PublishError>
    where
        F: Fn(u64) -> Fut,
        Fut: std::future::Future<Output = Result<(), PublishError>>,
    {
        self.progress.start(self.plan.video_size);
        let mut index = start;
        let mut prefix = Prefix::default();
        loop {
            let (first, len) = self.plan.chunk(index);
            if index + 1 == self.plan.total_chunk_count {
                // Only the last chunk checks the whole file's CRC-32 (ours: one read of
                // the earlier bytes, from the page cache as a rule).
                prefix.cover(self.video, first).await?;
            }
            self.progress.sub(self.progress.done());
            self.progress.add(first);
            let reply = retrying(&self.retry, "upload", || self.put(index, &prefix)).await?;
            let next = match reply {
                ChunkReply::Complete => return Ok(Ended::Complete),
                ChunkReply::Expired | ChunkReply::NotFound => return Ok(Ended::Lost),
                ChunkReply::More { received } => {
                    accepted(index).await?;
                    received.unwrap_or(first + len)
                }
                ChunkReply::Mismatch { received: Some(r) } => {
                    tracing::info!(
                        step = "upload",
                        server_has = r,
                        "the upload server has other bytes than expected; resuming from what it says"
                    );
                    r
                }
                ChunkReply::Mismatch { received: None } => {
                    return Err(PublishError::Rejected {
                        reason: "the upload server refused the range and did not say what it has"
                            .into(),
                    });
                }
            };
            if next >= self.plan.video_size {
                return Ok(Ended::Complete);
            }
            index = self
                .plan
                .chunk_at(next)
                .ok_or_else(|| PublishError::Rejected {
                    reason: format!(
                        "the upload server holds {next} bytes, which is not a chunk boundary"
                    ),
                })?;
        }
    }

    /// One attempt at chunk `index`, its body streamed afresh from the file.
    async fn put(&self, index: u64, prefix: &Prefix) -> Result<ChunkReply, PublishError> {
        let (first, len) = self.plan.chunk(index);
        let last = index + 1 == self.plan.total_chunk_count;
        let check = Arc::new(Mutex::new(None::<String>));
        let expected = last.then_some(self.crc32);
        let body = chunk_body(
            self.video.clone(),
            first,
            len,
            prefix.hasher(),
            expected,
            check.clone(),
            self.progress.clone(),
        );
        let timeout = self.timeout + Duration::from_secs(len / MIN_BYTES_PER_SEC);
        let content_type = wire::video_type(self.video.path());
        let result = self
            .api
            .put_chunk(
                self.url,
                content_type,
                (first, len, self.plan.video_size),
                body,
                timeout,
            )
            .await;
        if let Some(why) = check.lock().unwrap_or_else(PoisonError::into_inner).take() {
            return Err(PublishError::Changed { reason: why });
        }
        result
    }
}

/// The CRC-32 of the file's first `upto` bytes, kept as chunks go.
#[derive(Default)]
struct Prefix {
    upto: u64,
    crc: crc32fast::Hasher,
}

impl Prefix {
    /// Makes the prefix end at `first`, reading from the file when it must (a resume).
    async fn cover(&mut self, video: &VideoFile, first: u64) -> Result<(), PublishError> {
        if first < self.upto {
            *self = Prefix::default();
        }
        if first == self.upto {
            return Ok(());
        }
        let (video, from, mut crc) = (video.clone(), self.upto, self.crc.clone());
        let crc = tokio::task::spawn_blocking(move || -> std::io::Result<crc32fast::Hasher> {
            let mut buf = vec![0u8; READ];
            let mut at = from;
            while at < first {
                let n = usize::try_from((first - at).min(READ as u64)).unwrap_or(READ);
                video.read_exact_at(&mut buf[..n], at)?;
                crc.update(&buf[..n]);
                at += n as u64;
            }
            Ok(crc)
        })
        .await
        .map_err(|e| PublishError::Transient {
            reason: format!("read task failed: {e}"),
            retry_after: None,
        })?
        .map_err(|e| PublishError::Changed {
            reason: format!("the video cannot be read back: {e}"),
        })?;
        self.crc = crc;
        self.upto = first;
        Ok(())
    }

    fn hasher(&self) -> crc32fast::Hasher {
        self.crc.clone()
    }
}

/// Bytes `first..first + len` of `video` as a streamed body. With `expected`, the CRC-32
/// of everything up to the end (prefix included) must equal it before the final read
/// goes out; otherwise `check` says why and the stream fails.
fn chunk_body(
    video: VideoFile,
    first: u64,
    len: u64,
    crc: crc32fast::Hasher,
    expected: Option<u32>,
    check: Arc<Mutex<Option<String>>>,
    progress: Progress,
) -> reqwest::Body {
    struct Cur {
        video: VideoFile,
        at: u64,
        crc: crc32fast::Hasher,
    }
    let end = first + len;
    let start = Cur {
        video,
        at: first,
        crc,
    };
    let stream = futures_util::stream::try_unfold(start, move |cur| {
        let (check, progress) = (check.clone(), progress.clone());
        async move {
            if cur.at >= end {
                return Ok::<_, std::io::Error>(None);
            }
            let want = usize::try_from((end - cur.at).min(READ as u64)).unwrap_or(READ);
            let (mut cur, buf, read) = tokio::task::spawn_blocking(move || {
                let mut buf = vec![0u8; want];
                let read = cur.video.read_exact_at(&mut buf, cur.at);
                (cur, buf, read)
            })
            .await
            .map_err(|e| std::io::Error::other(format!("read task failed: {e}")))?;
            if let Err(e) = read {
                let why = format!("the video changed while it was being uploaded: {e}");
                *check.lock().unwrap_or_else(PoisonError::into_inner) = Some(why);
                return Err(e);
            }
            cur.crc.update(&buf);
            cur.at += buf.len() as u64;
            if let Some(want) = expected.filter(|_| cur.at >= end) {
                let got = cur.crc.clone().finalize();
                if got != want {
                    let why = format!(
                        "the bytes sent are not the ones hashed (CRC-32 {got:08x}, expected {want:08x}): the file was written to while it was being uploaded"
                    );
                    *check.lock().unwrap_or_else(PoisonError::into_inner) = Some(why.clone());
                    return Err(std::io::Error::other(why));
                }
            }
            progress.add(buf.len() as u64);
            Ok(Some((bytes::Bytes::from(buf), cur)))
        }
    });
    reqwest::Body::wrap_stream(stream)
}
