//! Step 3b, the multipart upload: start it, send the parts that are still missing (several
//! at a time, each retried on its own), and complete it with the list of part CRCs.
//!
//! A part is never held in memory: each attempt streams it from the open video by position
//! (parts in parallel share the one descriptor), with the CRC-32 the fingerprint pass
//! computed for it as `Content-CRC32`; the bytes are checked against that CRC as they go,
//! so a part whose bytes changed since they were hashed is cut off, never stored. The
//! caller is told about each part as it lands (`on_part`), so it can checkpoint it and
//! resume later with the same `uploadID` (see [`SavedUpload`](super::SavedUpload)).

use std::future::Future;

use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt};
use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderValue};
use serde::{Deserialize, Serialize};

use super::backoff::retrying;
use super::body::{self, Check, Pacing, Range, Sent};
use super::douyin_web::{
    Call, Reply, bad_answer, changed, checked_upload, hashed_size, parse, rejected, secret_header,
    tos_answer,
};
use super::{DouyinWeb, PublishError, UploadTarget, wire};
use crate::domain::PartCrcs;
use crate::progress::Progress;
use crate::video::VideoFile;

/// A part the platform has accepted: what the completion list needs, and what the ledger
/// keeps to resume.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartDone {
    /// 1-based.
    pub number: u32,
    pub size: u64,
    pub crc32: u32,
}

/// The parts of a `size`-byte file as `(number, offset, len)`: numbered from 1, every part
/// `part_size` bytes but the last, which holds the rest. No parts for an empty file;
/// `part_size` 0 means one part. Empty too if the file would need more than `u32::MAX`
/// parts (callers check [`wire::MAX_PARTS`] first).
pub fn part_layout(size: u64, part_size: u64) -> Vec<(u32, u64, u64)> {
    if size == 0 {
        return Vec::new();
    }
    let part_size = if part_size == 0 { size } else { part_size };
    let Ok(count) = u32::try_from(size.div_ceil(part_size)) else {
        return Vec::new();
    };
    (1..=count)
        .map(|number| {
            let offset = u64::from(number - 1) * part_size;
            (number, offset, part_size.min(size - offset))
        })
        .collect()
}

/// Checks 3b.2's `payload` where it is given: the part number and CRC must be ours.
fn check_part_payload(
    call: Call,
    reply: &Reply,
    number: u32,
    crc32: u32,
) -> Result<(), PublishError> {
    let Ok(answer) = serde_json::from_slice::<wire::TosPayload<wire::PartPayload>>(&reply.body)
    else {
        return Ok(());
    };
    let Some(payload) = answer.payload else {
        return Ok(());
    };
    if payload.part_number.is_some_and(|n| n != u64::from(number)) {
        return Err(bad_answer(
            call,
            format_args!("part {number} was stored as another part number"),
        ));
    }
    if payload
        .crc32
        .is_some_and(|c| !c.eq_ignore_ascii_case(&wire::crc32_hex(crc32)))
    {
        return Err(bad_answer(
            call,
            format_args!("part {number} was stored with another CRC-32"),
        ));
    }
    Ok(())
}

/// `target`'s object URL with `query` pairs.
fn object_url_with(target: &UploadTarget, pairs: &[(&str, &str)]) -> reqwest::Url {
    let mut url = target.object_url.clone();
    url.set_query(None);
    {
        let mut q = url.query_pairs_mut();
        for (k, v) in pairs {
            q.append_pair(k, v);
        }
    }
    url
}

/// One part to send.
#[derive(Clone, Copy, Debug)]
struct PartSpec {
    number: u32,
    offset: u64,
    len: u64,
    /// What the fingerprint pass found for these bytes.
    crc32: u32,
}

/// What every part of one upload shares.
struct PartJob<'a> {
    target: &'a UploadTarget,
    upload_id: &'a str,
    video: &'a VideoFile,
    streams: usize,
    sign: HeaderValue,
    pacing: Pacing,
}

impl DouyinWeb {
    /// 3b.1: starts a multipart upload of `target`'s object; the answer is its `uploadID`.
    pub async fn start_multipart(&self, target: &UploadTarget) -> Result<String, PublishError> {
        let call = Call::StartMultipart;
        let sign = secret_header(call, "tos_sign", &target.tos_sign)?;
        let mut url = target.object_url.clone();
        url.set_query(Some(wire::Q_UPLOADS));
        retrying(&self.inner.retry, call.name(), || async {
            let req = self
                .inner
                .http
                .post(url.clone())
                .header(wire::H_TOS_AUTHORIZATION, sign.clone())
                .header(CONTENT_LENGTH, 0)
                .body(Bytes::new());
            let reply = self.exchange(call, req).await?;
            tos_answer(call, &reply)?;
            let answer: wire::TosPayload<wire::UploadsPayload> = parse(call, &reply.body)?;
            answer
                .payload
                .and_then(|p| p.upload_id)
                .filter(|id| !id.is_empty())
                .ok_or_else(|| bad_answer(call, "no `payload.uploadID`"))
        })
        .await
    }

    /// 3b.2: sends every part of the open `size`-byte video that is not in `done`,
    /// `parallel` at a time, and returns all parts (those of `done` included), sorted.
    /// The parts are those of `crcs` (its part size, and each part's CRC-32 from the
    /// fingerprint pass); a part whose bytes no longer match is [`PublishError::Changed`],
    /// and so is a video that is no longer `size` bytes. A part of `done` whose size or
    /// CRC does not match is sent again.
    ///
    /// Each part is retried on its own (transient errors and rate limits, as every step);
    /// a rejection or expired credentials end the whole call, and parts still in flight
    /// are dropped. `on_part` is awaited after each part lands, before it counts as done:
    /// the caller checkpoints it there. `progress` is started at `size`, counts the parts
    /// of `done` at once, and follows the bytes of the others as they go out.
    #[allow(clippy::too_many_arguments)]
    pub async fn upload_parts<F, Fut>(
        &self,
        target: &UploadTarget,
        upload_id: &str,
        video: &VideoFile,
        size: u64,
        crcs: &PartCrcs,
        parallel: usize,
        done: &[PartDone],
        progress: &Progress,
        on_part: F,
    ) -> Result<Vec<PartDone>, PublishError>
    where
        F: Fn(PartDone) -> Fut + Sync,
        Fut: Future<Output = Result<(), PublishError>>,
    {
        let call = Call::UploadPart;
        let part_size = crcs.part_size;
        if size == 0 || part_size == 0 {
            return Err(rejected(
                call,
                format_args!("cannot split {size} bytes into parts of {part_size}"),
            ));
        }
        let count = size.div_ceil(part_size);
        if count > wire::MAX_PARTS {
            return Err(rejected(
                call,
                format_args!(
                    "{count} parts of {part_size} bytes are more than the {} allowed",
                    wire::MAX_PARTS
                ),
            ));
        }
        hashed_size(call, video, size)?;
        let parallel = parallel.max(1);
        let job = PartJob {
            target,
            upload_id,
            video,
            streams: parallel,
            sign: secret_header(call, "tos_sign", &target.tos_sign)?,
            pacing: self.pacing(progress),
        };
        progress.start(size);
        let mut parts = Vec::with_capacity(usize::try_from(count).unwrap_or(0));
        let mut todo = Vec::new();
        for (number, offset, len) in part_layout(size, part_size) {
            let Some(crc32) = crcs.get(number) else {
                return Err(rejected(
                    call,
                    format_args!("no CRC-32 from the fingerprint pass for part {number}"),
                ));
            };
            match done.iter().find(|d| d.number == number) {
                Some(d) if d.size == len && d.crc32 == crc32 => {
                    parts.push(*d);
                    progress.add(len);
                }
                found => {
                    if let Some(d) = found {
                        tracing::warn!(
                            part = number,
                            saved_size = d.size,
                            size = len,
                            "a saved part does not fit this layout or these bytes; sending it again"
                        );
                    }
                    todo.push(PartSpec {
                        number,
                        offset,
                        len,
                        crc32,
                    });
                }
            }
        }
        tracing::debug!(
            parts = count,
            resumed = parts.len(),
            parallel,
            "uploading parts"
        );
        let (job, on_part) = (&job, &on_part);
        let mut landed = futures_util::stream::iter(todo)
            .map(|spec| async move {
                let part = self.upload_part(job, spec).await?;
                on_part(part).await?;
                Ok::<_, PublishError>(part)
            })
            .buffer_unordered(parallel);
        while let Some(part) = landed.try_next().await? {
            parts.push(part);
        }
        parts.sort_by_key(|p| p.number);
        Ok(parts)
    }

    /// One part, retried on its own. A failed attempt's bytes are taken back from the
    /// progress before the part is sent again.
    async fn upload_part(
        &self,
        job: &PartJob<'_>,
        spec: PartSpec,
    ) -> Result<PartDone, PublishError> {
        let call = Call::UploadPart;
        let PartSpec {
            number,
            offset,
            len,
            crc32,
        } = spec;
        let range = Range {
            video: job.video.clone(),
            offset,
            len,
            crc32,
        };
        if !range.fits() {
            return Err(changed(
                call,
                format_args!("part {number} lies past the end of the file"),
            ));
        }
        let url = object_url_with(
            job.target,
            &[
                (wire::Q_PART_NUMBER, &number.to_string()),
                (wire::Q_UPLOAD_ID, job.upload_id),
            ],
        );
        let timeout = self.upload_timeout(len, job.streams);
        retrying(&self.inner.retry, call.name(), || async {
            let (sent, check) = (Sent::default(), Check::default());
            let req = self
                .inner
                .http
                .put(url.clone())
                .timeout(timeout)
                .header(wire::H_TOS_AUTHORIZATION, job.sign.clone())
                .header(CONTENT_TYPE, wire::CT_OCTET_STREAM)
                .header(CONTENT_LENGTH, len)
                .header(wire::H_CONTENT_CRC32, wire::crc32_hex(crc32))
                .body(body::checked_body(
                    range.clone(),
                    &job.pacing,
                    &sent,
                    &check,
                ));
            let result = match self.exchange(call, req).await {
                Ok(reply) => tos_answer(call, &reply)
                    .and_then(|()| check_part_payload(call, &reply, number, crc32)),
                Err(e) => Err(e),
            };
            let result = checked_upload(call, &check, result);
            match &result {
                Ok(()) => tracing::debug!(part = number, bytes = len, "part uploaded"),
                Err(e) => {
                    job.pacing.progress.sub(sent.get());
                    tracing::debug!(part = number, class = e.class(), "part failed");
                }
            }
            result.map(|()| PartDone {
                number,
                size: len,
                crc32,
            })
        })
        .await
    }

    /// 3b.3: completes the upload with every part, which must be numbered 1 to N.
    pub async fn finish_multipart(
        &self,
        target: &UploadTarget,
        upload_id: &str,
        parts: &[PartDone],
    ) -> Result<(), PublishError> {
        let call = Call::FinishMultipart;
        let mut sorted = parts.to_vec();
        sorted.sort_by_key(|p| p.number);
        let numbered = sorted
            .iter()
            .enumerate()
            .all(|(i, p)| u64::from(p.number) == i as u64 + 1);
        if sorted.is_empty() || !numbered {
            return Err(rejected(
                call,
                "the parts are not numbered 1 to N without gaps or repeats",
            ));
        }
        let body = Bytes::from(wire::completion_body(
            sorted.iter().map(|p| (p.number, p.crc32)),
        ));
        let sign = secret_header(call, "tos_sign", &target.tos_sign)?;
        let url = object_url_with(target, &[(wire::Q_UPLOAD_ID, upload_id)]);
        retrying(&self.inner.retry, call.name(), || async {
            let req = self
                .inner
                .http
                .post(url.clone())
                .header(wire::H_TOS_AUTHORIZATION, sign.clone())
                .header(CONTENT_TYPE, wire::CT_TEXT)
                .body(body.clone());
            let reply = self.exchange(call, req).await?;
            tos_answer(call, &reply)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_numbers_from_one_with_a_short_last_part() {
        assert_eq!(
            part_layout(25, 10),
            vec![(1, 0, 10), (2, 10, 10), (3, 20, 5)]
        );
        assert_eq!(part_layout(20, 10), vec![(1, 0, 10), (2, 10, 10)]);
        assert_eq!(part_layout(3, 10), vec![(1, 0, 3)]);
        assert_eq!(part_layout(0, 10), vec![]);
        assert_eq!(part_layout(7, 0), vec![(1, 0, 7)]);
        assert_eq!(part_layout(u64::MAX, 1), vec![]);
    }

    #[test]
    fn layout_tiles_the_file() {
        for (size, part) in [(1u64, 1u64), (99, 7), (5 << 20, 1 << 20), (1000, 999)] {
            let parts = part_layout(size, part);
            let mut next = 0;
            for (i, (n, off, len)) in parts.iter().enumerate() {
                assert_eq!(*n as usize, i + 1);
                assert_eq!(*off, next);
                assert!(*len > 0 && *len <= part);
                next += len;
            }
            assert_eq!(next, size);
        }
    }

    #[test]
    fn completion_body_is_number_colon_crc() {
        assert_eq!(
            wire::completion_body([(1, 0xdead_beef), (2, 0x0000_00ab)]),
            "1:deadbeef,2:000000ab"
        );
    }
}
