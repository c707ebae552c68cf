//! The width and height of a PNG, JPEG or WebP image, read from its header by the sandbox
//! itself (the judge of create_v2's `custom_cover_image_width/height`): PNG's `IHDR`,
//! JPEG's first start-of-frame segment, WebP's `VP8 `, `VP8L` or `VP8X` chunk.

use std::io::Read;
use std::path::Path;

/// The most bytes read looking for a JPEG frame header (ours: EXIF and ICC segments come
/// first and may be large).
const MAX_HEAD: u64 = 4 * 1024 * 1024;

/// `(format, width, height)` of the image file at `path`; `None` if it is not one.
pub(crate) fn of_file(path: &Path) -> Option<(&'static str, u32, u32)> {
    let mut head = Vec::new();
    std::fs::File::open(path)
        .ok()?
        .take(MAX_HEAD)
        .read_to_end(&mut head)
        .ok()?;
    of_bytes(&head)
}

/// `(format, width, height)` of the image starting with `b`.
pub(crate) fn of_bytes(b: &[u8]) -> Option<(&'static str, u32, u32)> {
    let found = if b.starts_with(b"\x89PNG\r\n\x1a\n") {
        png(b).map(|(w, h)| ("png", w, h))
    } else if b.starts_with(&[0xff, 0xd8]) {
        jpeg(b).map(|(w, h)| ("jpeg", w, h))
    } else if b.len() >= 12 && &b[..4] == b"RIFF" && &b[8..12] == b"WEBP" {
        webp(b).map(|(w, h)| ("webp", w, h))
    } else {
        None
    };
    found.filter(|(_, w, h)| *w > 0 && *h > 0)
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn be16(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from(u16::from_be_bytes(
        b.get(at..at + 2)?.try_into().ok()?,
    )))
}

fn le(b: &[u8], at: usize, n: usize) -> Option<u32> {
    let bytes = b.get(at..at + n)?;
    Some(
        bytes
            .iter()
            .rev()
            .fold(0u32, |a, x| (a << 8) | u32::from(*x)),
    )
}

/// The first chunk must be `IHDR`: width and height, big-endian.
fn png(b: &[u8]) -> Option<(u32, u32)> {
    (b.get(12..16)? == b"IHDR").then_some(())?;
    Some((be32(b, 16)?, be32(b, 20)?))
}

/// Walks the segments to the first SOFn (not DHT, JPG or DAC): height then width.
fn jpeg(b: &[u8]) -> Option<(u32, u32)> {
    let mut at = 2;
    loop {
        // Fill bytes (0xff) may pad between segments.
        while *b.get(at)? == 0xff && *b.get(at + 1)? == 0xff {
            at += 1;
        }
        if *b.get(at)? != 0xff {
            return None;
        }
        let marker = *b.get(at + 1)?;
        match marker {
            0xd8 | 0x01 | 0xd0..=0xd7 => at += 2,
            0xd9 | 0xda => return None,
            0xc0..=0xcf if !matches!(marker, 0xc4 | 0xc8 | 0xcc) => {
                return Some((be16(b, at + 7)?, be16(b, at + 5)?));
            }
            _ => at += 2 + usize::try_from(be16(b, at + 2)?).ok()?,
        }
    }
}

/// `VP8 ` (lossy), `VP8L` (lossless) or `VP8X` (extended), the first chunk after the header.
fn webp(b: &[u8]) -> Option<(u32, u32)> {
    match b.get(12..16)? {
        b"VP8 " => {
            (b.get(23..26)? == [0x9d, 0x01, 0x2a]).then_some(())?;
            Some((le(b, 26, 2)? & 0x3fff, le(b, 28, 2)? & 0x3fff))
        }
        b"VP8L" => {
            (*b.get(20)? == 0x2f).then_some(())?;
            let bits = le(b, 21, 4)?;
            Some(((bits & 0x3fff) + 1, ((bits >> 14) & 0x3fff) + 1))
        }
        b"VP8X" => Some((le(b, 24, 3)? + 1, le(b, 27, 3)? + 1)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn png_sizes_come_from_ihdr() {
        let img = image::RgbImage::from_pixel(7, 13, image::Rgb([1, 2, 3]));
        let mut png = Vec::new();
        img.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
            .unwrap();
        assert_eq!(of_bytes(&png), Some(("png", 7, 13)));
        assert_eq!(of_bytes(&png[..20]), None, "cut short");
    }

    #[test]
    fn jpeg_sizes_come_from_the_first_frame_after_other_segments() {
        let mut j = vec![0xff, 0xd8];
        // APP0 (16 bytes of payload + length), a DHT, then SOF2 with 1280 high, 720 wide.
        j.extend([0xff, 0xe0, 0x00, 0x10]);
        j.extend([0u8; 14]);
        j.extend([0xff, 0xc4, 0x00, 0x04, 0, 0]);
        j.extend([0xff, 0xc2, 0x00, 0x11, 8, 0x05, 0x00, 0x02, 0xd0, 3]);
        j.extend([0u8; 9]);
        assert_eq!(of_bytes(&j), Some(("jpeg", 720, 1280)));
        assert_eq!(of_bytes(&[0xff, 0xd8, 0xff, 0xda, 0, 2]), None);
    }

    #[test]
    fn webp_sizes_come_from_each_chunk_kind() {
        let riff = |chunk: &[u8], body: &[u8]| {
            let mut v = b"RIFF\0\0\0\0WEBP".to_vec();
            v.extend(chunk);
            v.extend([0u8; 4]);
            v.extend(body);
            v
        };
        let lossy = riff(
            b"VP8 ",
            &[0, 0, 0, 0x9d, 0x01, 0x2a, 0xd0, 0x02, 0x00, 0x05],
        );
        assert_eq!(of_bytes(&lossy), Some(("webp", 720, 1280)));
        // Lossless: 14 bits each of width-1 and height-1 after the 0x2f signature.
        let bits: u32 = 719 | (1279 << 14);
        let mut body = vec![0x2f];
        body.extend(bits.to_le_bytes());
        assert_eq!(of_bytes(&riff(b"VP8L", &body)), Some(("webp", 720, 1280)));
        let mut ext = vec![0u8; 4];
        ext.extend([0xcf, 0x02, 0x00, 0xff, 0x04, 0x00]);
        assert_eq!(of_bytes(&riff(b"VP8X", &ext)), Some(("webp", 720, 1280)));
        assert_eq!(of_bytes(b"GIF89a"), None);
    }
}
