//! Content fingerprints: SHA-256 (the dedupe key), CRC-32 (for the upload) and the CRC-32
//! of each upload part, computed together in one streamed pass so a video is read from
//! disk once.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::domain::{ContentHash, Fingerprint, PartCrcs};
use crate::video::{self, VideoFile};

/// Read size. Large enough that syscall overhead vanishes next to SHA-256 itself.
const BUF_SIZE: usize = 1 << 20;

/// SHA-256, CRC-32, size and per-part CRC-32s (parts of `part_size` bytes; 0 = one part)
/// of the file at `path`, from one streamed read with a 1 MiB buffer. The file is never
/// held in memory whole.
///
/// The size is the number of bytes actually read, so a file that grows or shrinks while
/// being hashed yields a fingerprint of what was read; callers compare it with the settled
/// size (see `watch::settle::unchanged`) to catch that.
pub fn fingerprint(path: &Path, part_size: u64) -> io::Result<Fingerprint> {
    let file = File::open(path)?;
    fingerprint_reader(file, part_size)
}

/// [`fingerprint`] of an open video, read by position from its one descriptor (the one the
/// upload reads too).
pub(crate) fn fingerprint_video(video: &VideoFile, part_size: u64) -> io::Result<Fingerprint> {
    fingerprint_reader(video::Reader::new(video), part_size)
}

/// [`fingerprint_video`] on the blocking thread pool, for async callers.
pub(crate) async fn fingerprint_video_async(
    video: VideoFile,
    part_size: u64,
) -> io::Result<Fingerprint> {
    tokio::task::spawn_blocking(move || fingerprint_video(&video, part_size))
        .await
        .map_err(|join| io::Error::other(format!("hashing task failed: {join}")))?
}

/// The CRC-32 of each part, as it streams by; the whole file's CRC-32 is the parts'
/// CRCs combined, so no byte is run through CRC-32 twice.
struct Parts {
    part_size: u64,
    current: crc32fast::Hasher,
    in_current: u64,
    whole: crc32fast::Hasher,
    crcs: Vec<u32>,
}

impl Parts {
    fn new(part_size: u64) -> Parts {
        Parts {
            part_size: if part_size == 0 { u64::MAX } else { part_size },
            current: crc32fast::Hasher::new(),
            in_current: 0,
            whole: crc32fast::Hasher::new(),
            crcs: Vec::new(),
        }
    }

    fn update(&mut self, mut chunk: &[u8]) {
        while !chunk.is_empty() {
            let room = self.part_size - self.in_current;
            let take = usize::try_from(room).map_or(chunk.len(), |r| r.min(chunk.len()));
            self.current.update(&chunk[..take]);
            self.in_current += take as u64;
            chunk = &chunk[take..];
            if self.in_current == self.part_size {
                self.close_part();
            }
        }
    }

    fn close_part(&mut self) {
        let part = std::mem::replace(&mut self.current, crc32fast::Hasher::new());
        self.whole.combine(&part);
        self.crcs.push(part.finalize());
        self.in_current = 0;
    }

    /// The whole file's CRC-32 and the parts'.
    fn finish(mut self, part_size: u64) -> (u32, PartCrcs) {
        if self.in_current > 0 {
            self.close_part();
        }
        (
            self.whole.finalize(),
            PartCrcs {
                part_size,
                crcs: self.crcs,
            },
        )
    }
}

/// The streaming core, over any reader.
fn fingerprint_reader(mut reader: impl Read, part_size: u64) -> io::Result<Fingerprint> {
    let mut buf = vec![0u8; BUF_SIZE];
    let mut sha = Sha256::new();
    let mut parts = Parts::new(part_size);
    let mut size: u64 = 0;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let chunk = &buf[..n];
        sha.update(chunk);
        parts.update(chunk);
        size += n as u64;
    }
    let (crc32, parts) = parts.finish(part_size);
    Ok(Fingerprint {
        sha256: ContentHash::from_digest(&sha.finalize()),
        crc32,
        size,
        parts,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn write_file(bytes: &[u8]) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(bytes).unwrap();
        f.flush().unwrap();
        f
    }

    #[test]
    fn empty_file_matches_known_vectors() {
        let f = write_file(b"");
        let fp = fingerprint(f.path(), 0).unwrap();
        assert_eq!(
            fp.sha256.as_str(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(fp.crc32, 0);
        assert_eq!(fp.size, 0);
    }

    #[test]
    fn abc_and_check_string_match_known_vectors() {
        let f = write_file(b"abc");
        let fp = fingerprint(f.path(), 0).unwrap();
        assert_eq!(
            fp.sha256.as_str(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(fp.size, 3);

        // The standard CRC-32/IEEE check value.
        let f = write_file(b"123456789");
        let fp = fingerprint(f.path(), 0).unwrap();
        assert_eq!(fp.crc32, 0xCBF4_3926);
        assert_eq!(
            fp.sha256.as_str(),
            "15e2b0d3c33891ebb0f1ef609ec419420c20e320ce94c65fbc8c3312448eb225"
        );
    }

    #[test]
    fn million_a_spans_no_buffer_boundary_issue() {
        // FIPS 180-2 long vector: one million 'a'.
        let f = write_file(&vec![b'a'; 1_000_000]);
        let fp = fingerprint(f.path(), 0).unwrap();
        assert_eq!(
            fp.sha256.as_str(),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"
        );
        assert_eq!(fp.size, 1_000_000);
    }

    #[test]
    fn multi_mib_file_equals_one_shot_digest() {
        // 5 MiB + 123 bytes: several full buffers and a short tail.
        let data: Vec<u8> = (0..(5 * BUF_SIZE + 123))
            .map(|i| (i.wrapping_mul(31) ^ (i >> 7)) as u8)
            .collect();
        let f = write_file(&data);
        let fp = fingerprint(f.path(), 0).unwrap();
        assert_eq!(
            fp.sha256,
            ContentHash::from_digest(&Sha256::digest(&data)),
            "streamed SHA-256 differs from one-shot"
        );
        assert_eq!(fp.crc32, crc32fast::hash(&data));
        assert_eq!(fp.size, data.len() as u64);
    }

    /// A reader that returns tiny, uneven chunks and an `Interrupted` now and then.
    struct Choppy<'a> {
        data: &'a [u8],
        calls: usize,
    }

    impl Read for Choppy<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.calls += 1;
            if self.calls.is_multiple_of(3) {
                return Err(io::Error::from(io::ErrorKind::Interrupted));
            }
            let n = (self.calls % 7 + 1).min(self.data.len()).min(buf.len());
            buf[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            Ok(n)
        }
    }

    #[test]
    fn short_reads_and_interrupts_are_handled() {
        let data = b"The quick brown fox jumps over the lazy dog";
        let fp = fingerprint_reader(Choppy { data, calls: 0 }, 0).unwrap();
        assert_eq!(
            fp.sha256.as_str(),
            "d7a8fbb307d7809469ca9abcb0082e4f8d5651e46d3cdb762d02d0bf37c9e592"
        );
        assert_eq!(fp.crc32, 0x414F_A339);
        assert_eq!(fp.size, data.len() as u64);
    }

    #[test]
    fn missing_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let err = fingerprint(&dir.path().join("nope.mp4"), 0).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
    }

    #[tokio::test]
    async fn the_open_video_variant_agrees() {
        let f = write_file(b"abc");
        let video = VideoFile::open_path(f.path()).unwrap();
        let fp = fingerprint_video_async(video, 2).await.unwrap();
        assert_eq!(fp, fingerprint(f.path(), 2).unwrap());
    }

    #[test]
    fn part_crcs_cover_every_part_and_combine_to_the_whole() {
        // Parts that do not line up with the read buffer, a short last part, and the
        // boundary cases: one part, an exact multiple, an empty file.
        let data: Vec<u8> = (0..(2 * BUF_SIZE + 777))
            .map(|i| (i.wrapping_mul(131) ^ (i >> 9)) as u8)
            .collect();
        let f = write_file(&data);
        for part in [1000u64, 300_000, BUF_SIZE as u64, data.len() as u64, 0] {
            let fp = fingerprint(f.path(), part).unwrap();
            let step = if part == 0 { data.len() } else { part as usize };
            let expected: Vec<u32> = data.chunks(step).map(crc32fast::hash).collect();
            assert_eq!(fp.parts.crcs, expected, "part size {part}");
            assert_eq!(fp.parts.part_size, part);
            assert_eq!(fp.crc32, crc32fast::hash(&data), "part size {part}");
            assert_eq!(fp.parts.get(1), expected.first().copied());
            assert_eq!(fp.parts.get(0), None);
        }
        let f = write_file(&vec![1u8; 3000]);
        assert_eq!(fingerprint(f.path(), 1000).unwrap().parts.crcs.len(), 3);
        let empty = write_file(b"");
        assert!(
            fingerprint(empty.path(), 1000)
                .unwrap()
                .parts
                .crcs
                .is_empty()
        );
    }
}
