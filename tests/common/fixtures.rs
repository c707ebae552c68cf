//! Test fixtures: the example media, and small well-formed MP4s built byte by byte.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

pub fn media(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples/media")
        .join(name)
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    base16ct::lower::encode_string(&Sha256::digest(bytes))
}

/// The CRC32 the upload endpoints want: eight lower-case hex digits.
pub fn crc_hex(bytes: &[u8]) -> String {
    format!("{:08x}", crc32fast::hash(bytes))
}

/// Deterministic pseudo-random bytes (xorshift), different for each `seed`.
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x.to_le_bytes()[0]
        })
        .collect()
}

/// One MP4 box: size, type, payload.
pub fn mp4_box(kind: &[u8; 4], payload: &[u8]) -> Vec<u8> {
    let mut b = u32::try_from(payload.len() + 8)
        .expect("box fits")
        .to_be_bytes()
        .to_vec();
    b.extend_from_slice(kind);
    b.extend_from_slice(payload);
    b
}

/// The example clip with an extra `free` box appended: still a well-formed MP4, other bytes.
pub fn clip_variant(n: u8) -> Vec<u8> {
    let mut bytes = std::fs::read(media("clip.mp4")).unwrap();
    bytes.extend_from_slice(&mp4_box(b"free", &[n; 8]));
    bytes
}

/// The top-level boxes of an MP4, as (type, bytes).
pub fn boxes(bytes: &[u8]) -> Vec<([u8; 4], Vec<u8>)> {
    let mut out = Vec::new();
    let mut at = 0;
    while at + 8 <= bytes.len() {
        let size = u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        let kind: [u8; 4] = bytes[at + 4..at + 8].try_into().unwrap();
        out.push((kind, bytes[at..at + size].to_vec()));
        at += size;
    }
    out
}

/// The example clip with its boxes reordered so `moov` comes last, as exporters write it.
pub fn clip_moov_last() -> Vec<Vec<u8>> {
    let all = boxes(&std::fs::read(media("clip.mp4")).unwrap());
    let (moov, rest): (Vec<_>, Vec<_>) = all.into_iter().partition(|(k, _)| k == b"moov");
    rest.into_iter().chain(moov).map(|(_, b)| b).collect()
}

/// A tiny, well-formed MP4 (ftyp, moov with an mvhd, mdat) whose bytes depend on `n`.
pub fn tiny_mp4(n: u32) -> Vec<u8> {
    let mut ftyp = b"isom".to_vec();
    ftyp.extend_from_slice(&0x200u32.to_be_bytes());
    ftyp.extend_from_slice(b"isomiso2mp41");
    let mut mvhd = vec![0u8; 100];
    mvhd[12..16].copy_from_slice(&1000u32.to_be_bytes()); // timescale
    mvhd[16..20].copy_from_slice(&2000u32.to_be_bytes()); // duration: 2 s
    let moov = mp4_box(b"moov", &mp4_box(b"mvhd", &mvhd));
    let mut out = mp4_box(b"ftyp", &ftyp);
    out.extend_from_slice(&moov);
    out.extend_from_slice(&mp4_box(b"mdat", &n.to_be_bytes().repeat(16)));
    out
}

/// The `ftyp` and `moov` of a 2.5 s (timescale 1000), 720x1280 video.
fn head_720x1280() -> Vec<u8> {
    let mut mvhd = vec![0u8; 12];
    mvhd.extend_from_slice(&1000u32.to_be_bytes());
    mvhd.extend_from_slice(&2500u32.to_be_bytes());
    mvhd.extend_from_slice(&[0; 80]);
    let mut tkhd = vec![0u8; 4 + 20 + 8 + 8 + 36];
    tkhd.extend_from_slice(&(720u32 << 16).to_be_bytes());
    tkhd.extend_from_slice(&(1280u32 << 16).to_be_bytes());
    let mut moov = mp4_box(b"mvhd", &mvhd);
    moov.extend(mp4_box(b"trak", &mp4_box(b"tkhd", &tkhd)));
    let mut file = mp4_box(b"ftyp", b"isom\0\0\x02\0isomiso2mp41");
    file.extend(mp4_box(b"moov", &moov));
    file
}

/// A small MP4: 2.5 s (timescale 1000), 720x1280, `payload` bytes of media data.
pub fn mp4_with_media(payload: usize) -> Vec<u8> {
    let mut file = head_720x1280();
    let media: Vec<u8> = (0..payload).map(|i| (i * 7 % 251) as u8).collect();
    file.extend(mp4_box(b"mdat", &media));
    file
}

/// An MP4 of exactly `size` bytes: 2.5 s, 720x1280, the rest pseudo-random media data
/// (so parts in the wrong order or place never look right).
pub fn mp4_of_size(size: usize) -> Vec<u8> {
    let mut file = head_720x1280();
    let payload = size - file.len() - 8;
    file.extend(mp4_box(b"mdat", &noise(payload, 7)));
    assert_eq!(file.len(), size);
    file
}

/// A well-formed MP4 of about `mib` MiB: the example clip's `ftyp` and `moov`, then an
/// `mdat` of deterministic bytes that depend on `seed`.
pub fn big_mp4(mib: u64, extra: u64, seed: u8) -> Vec<u8> {
    let clip = std::fs::read(media("clip.mp4")).unwrap();
    let all = boxes(&clip);
    let mut out = Vec::new();
    for (kind, bytes) in &all {
        if kind == b"ftyp" || kind == b"moov" {
            out.extend_from_slice(bytes);
        }
    }
    let payload = (mib << 20) + extra;
    out.extend_from_slice(&((payload + 8) as u32).to_be_bytes());
    out.extend_from_slice(b"mdat");
    let mut x: u32 = 0x9E37_79B9 ^ u32::from(seed);
    out.reserve(payload as usize);
    for _ in 0..payload {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        out.push(x as u8);
    }
    out
}
