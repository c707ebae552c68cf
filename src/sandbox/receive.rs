//! Receiving a request body: streamed to a file on disk while its CRC-32 and SHA-256 are
//! computed, in bounded memory. Whole-file uploads, multipart parts and the benchmark sink
//! all receive through [`receive`], so they cost the same per byte.

use std::path::Path;

use axum::body::Body;
use futures_util::StreamExt;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncWriteExt, BufWriter};

/// Bytes gathered before one write to disk; the most a receive holds in memory besides
/// the chunk hyper hands over.
const WRITE_BUFFER: usize = 1024 * 1024;

/// What a streamed body turned out to be.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Received {
    pub size: u64,
    pub crc32: u32,
    /// Lower-case hex.
    pub sha256: String,
}

impl Received {
    /// The CRC-32 as 8 lower-case hex digits (the `Content-CRC32` form).
    pub(crate) fn crc32_hex(&self) -> String {
        format!("{:08x}", self.crc32)
    }
}

/// Stream `body` into a new file at `path`, hashing as it goes, and flush it to disk.
/// On an error the file may be left behind; the caller removes it.
pub async fn receive(body: Body, path: &Path) -> std::io::Result<Received> {
    let file = tokio::fs::File::create(path).await?;
    let mut out = BufWriter::with_capacity(WRITE_BUFFER, file);
    let mut crc = crc32fast::Hasher::new();
    let mut sha = Sha256::new();
    let mut size = 0u64;
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(std::io::Error::other)?;
        crc.update(&chunk);
        sha.update(&chunk);
        size += chunk.len() as u64;
        out.write_all(&chunk).await?;
    }
    out.flush().await?;
    out.into_inner().sync_all().await?;
    Ok(Received {
        size,
        crc32: crc.finalize(),
        sha256: base16ct::lower::encode_string(&sha.finalize()),
    })
}

/// A `Content-CRC32` value: exactly 8 lower-case hex digits.
pub(crate) fn parse_crc_hex(v: &str) -> Option<u32> {
    let ok = v.len() == 8 && v.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    ok.then(|| u32::from_str_radix(v, 16).ok()).flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn streams_a_chunked_body_to_disk_with_its_hashes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("body");
        let chunks: Vec<Result<Vec<u8>, std::io::Error>> = vec![
            Ok(b"hello ".to_vec()),
            Ok(vec![b'x'; 3 * WRITE_BUFFER]),
            Ok(b"!".to_vec()),
        ];
        let mut whole = Vec::new();
        for c in chunks.iter().flatten() {
            whole.extend_from_slice(c);
        }
        let body = Body::from_stream(futures_util::stream::iter(chunks));
        let got = receive(body, &path).await.expect("received");
        assert_eq!(got.size, whole.len() as u64);
        assert_eq!(got.crc32, crc32fast::hash(&whole));
        assert_eq!(
            got.sha256,
            base16ct::lower::encode_string(&Sha256::digest(&whole))
        );
        assert_eq!(std::fs::read(&path).expect("file"), whole);
    }

    #[tokio::test]
    async fn a_broken_body_is_an_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let chunks = vec![Ok(b"abc".to_vec()), Err(std::io::Error::other("cut"))];
        let body = Body::from_stream(futures_util::stream::iter(chunks));
        assert!(receive(body, &dir.path().join("b")).await.is_err());
    }

    #[test]
    fn crc_header_is_strict() {
        assert_eq!(parse_crc_hex("0000abcd"), Some(0xabcd));
        assert_eq!(parse_crc_hex("0000ABCD"), None);
        assert_eq!(parse_crc_hex("abcd"), None);
        assert_eq!(parse_crc_hex("+000abcd"), None);
    }
}
