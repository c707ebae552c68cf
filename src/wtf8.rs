//! Windows names as bytes that round-trip. A Windows file name is UTF-16 that may hold an
//! unpaired surrogate, which no UTF-8 can carry; WTF-8 (UTF-8 extended to lone surrogates,
//! as std keeps `OsStr` inside) can, and is plain UTF-8 for every valid name, so ledgers and
//! archive plans stay readable. Unix names are their own bytes and never come here.
#![cfg_attr(not(windows), allow(dead_code))]

/// WTF-8 of UTF-16 code units.
pub(crate) fn encode(units: impl IntoIterator<Item = u16>) -> Vec<u8> {
    let mut out = Vec::new();
    for unit in char::decode_utf16(units) {
        match unit {
            Ok(c) => out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes()),
            Err(lone) => {
                let u = lone.unpaired_surrogate();
                out.extend_from_slice(&[
                    0xE0 | (u >> 12) as u8,
                    0x80 | ((u >> 6) & 0x3F) as u8,
                    0x80 | (u & 0x3F) as u8,
                ]);
            }
        }
    }
    out
}

/// The UTF-16 code units of WTF-8 `bytes`; `None` when they are not WTF-8.
pub(crate) fn decode(mut bytes: &[u8]) -> Option<Vec<u16>> {
    let mut out = Vec::with_capacity(bytes.len());
    loop {
        match std::str::from_utf8(bytes) {
            Ok(text) => {
                out.extend(text.encode_utf16());
                return Some(out);
            }
            Err(e) => {
                let (valid, rest) = bytes.split_at(e.valid_up_to());
                out.extend(std::str::from_utf8(valid).ok()?.encode_utf16());
                // Only a lone surrogate (ED A0..BF 80..BF) may interrupt the UTF-8.
                let [0xED, b1 @ 0xA0..=0xBF, b2 @ 0x80..=0xBF, ..] = *rest else {
                    return None;
                };
                out.push(0xD000 | (u16::from(b1 & 0x3F) << 6) | u16::from(b2 & 0x3F));
                bytes = &rest[3..];
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_names_are_plain_utf8() {
        let name: Vec<u16> = "clip 视频 🎬.mp4".encode_utf16().collect();
        assert_eq!(encode(name.iter().copied()), "clip 视频 🎬.mp4".as_bytes());
        assert_eq!(decode("clip 视频 🎬.mp4".as_bytes()), Some(name));
    }

    // Pins the defect that a Windows name with a lone surrogate was stored lossily
    // (U+FFFD), so the ledger named a file that does not exist.
    #[test]
    fn lone_surrogates_round_trip() {
        for units in [
            vec![0x61, 0xD800, 0x62],
            vec![0xDC00],
            vec![0xDBFF, 0x61, 0xDFFF],
            vec![0xD83C, 0xDFAC, 0xDFAC], // a pair, then a lone trail
        ] {
            let bytes = encode(units.iter().copied());
            assert!(std::str::from_utf8(&bytes).is_err(), "{units:x?}");
            assert_eq!(decode(&bytes), Some(units));
        }
    }

    #[test]
    fn other_bytes_are_not_wtf8() {
        assert_eq!(decode(b"a\xFFb"), None);
        assert_eq!(decode(b"\xED\x9F"), None, "cut short");
        assert_eq!(decode(b"\xC3"), None);
        assert_eq!(decode(b""), Some(vec![]));
    }
}
