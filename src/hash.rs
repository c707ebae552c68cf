//! Content fingerprints: SHA-256 (the dedupe key) and CRC-32 (for the upload) of a file,
//! computed together in one streamed pass so a video is read from disk once.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::domain::{ContentHash, Fingerprint};

/// Read size. Large enough that syscall overhead vanishes next to SHA-256 itself.
const BUF_SIZE: usize = 1 << 20;

/// SHA-256, CRC-32 and size of the file at `path`, from one streamed read with a 1 MiB
/// buffer. The file is never held in memory whole.
///
/// The size is the number of bytes actually read, so a file that grows or shrinks while
/// being hashed yields a fingerprint of what was read; callers compare it with the settled
/// size (see `watch::settle::unchanged`) to catch that.
pub fn fingerprint(path: &Path) -> io::Result<Fingerprint> {
    let file = File::open(path)?;
    fingerprint_reader(file)
}

/// [`fingerprint`] on the blocking thread pool, for async callers.
pub async fn fingerprint_async(path: PathBuf) -> io::Result<Fingerprint> {
    tokio::task::spawn_blocking(move || fingerprint(&path))
        .await
        .map_err(|join| io::Error::other(format!("hashing task failed: {join}")))?
}

/// The streaming core, over any reader.
fn fingerprint_reader(mut reader: impl Read) -> io::Result<Fingerprint> {
    let mut buf = vec![0u8; BUF_SIZE];
    let mut sha = Sha256::new();
    let mut crc = crc32fast::Hasher::new();
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
        crc.update(chunk);
        size += n as u64;
    }
    Ok(Fingerprint {
        sha256: ContentHash::from_digest(&sha.finalize()),
        crc32: crc.finalize(),
        size,
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
        let fp = fingerprint(f.path()).unwrap();
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
        let fp = fingerprint(f.path()).unwrap();
        assert_eq!(
            fp.sha256.as_str(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(fp.size, 3);

        // The standard CRC-32/IEEE check value.
        let f = write_file(b"123456789");
        let fp = fingerprint(f.path()).unwrap();
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
        let fp = fingerprint(f.path()).unwrap();
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
        let fp = fingerprint(f.path()).unwrap();
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
        let fp = fingerprint_reader(Choppy { data, calls: 0 }).unwrap();
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
        let err = fingerprint(&dir.path().join("nope.mp4")).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
    }

    #[tokio::test]
    async fn async_variant_agrees() {
        let f = write_file(b"abc");
        let fp = fingerprint_async(f.path().to_path_buf()).await.unwrap();
        assert_eq!(fp, fingerprint(f.path()).unwrap());
    }
}
