//! The readers on hostile input: arbitrary bytes, every truncation and random bit flips of
//! the ffmpeg fixtures, impossible sizes, and files far bigger than what is read (a
//! reader that makes up terabytes of zeros and counts what is pulled from it).

use std::io::{self, Cursor, Read, Seek, SeekFrom};
use std::path::Path;
use std::time::Duration;

use proptest::prelude::*;

use super::source::{MAX_READ, Source};
use super::*;

fn fixtures() -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/media");
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e != "sh"))
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&p).unwrap())
        })
        .collect();
    files.sort();
    assert!(files.len() >= 9, "fixtures missing: {files:?}");
    files
}

/// Probes bytes in memory; returns the answer and the bytes pulled from the reader.
fn probe_bytes(bytes: &[u8]) -> (Result<MediaInfo, Fault>, u64) {
    probe_sparse(Sparse::new(bytes.len() as u64, vec![(0, bytes.to_vec())]))
}

fn probe_sparse(sparse: Sparse) -> (Result<MediaInfo, Fault>, u64) {
    let len = sparse.len;
    let mut src = Source::new(sparse, len);
    let answer = read(&mut src);
    (answer, src.bytes_read())
}

/// A file of `len` bytes that are zero except for the pieces given: terabytes cost
/// nothing, and nothing is read unless asked for.
struct Sparse {
    len: u64,
    pieces: Vec<(u64, Vec<u8>)>,
    pos: u64,
}

impl Sparse {
    fn new(len: u64, pieces: Vec<(u64, Vec<u8>)>) -> Sparse {
        Sparse {
            len,
            pieces,
            pos: 0,
        }
    }
}

impl Read for Sparse {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = (buf.len() as u64).min(self.len.saturating_sub(self.pos)) as usize;
        let (start, end) = (self.pos, self.pos + n as u64);
        let buf = &mut buf[..n];
        buf.fill(0);
        // Pieces are in order and apart: start at the first one ending after `start`.
        let first = self
            .pieces
            .partition_point(|(at, b)| at + b.len() as u64 <= start);
        for (at, bytes) in self.pieces[first..].iter().take_while(|(at, _)| *at < end) {
            let (from, to) = (start.max(*at), end.min(at + bytes.len() as u64));
            buf[(from - start) as usize..(to - start) as usize]
                .copy_from_slice(&bytes[(from - at) as usize..(to - at) as usize]);
        }
        self.pos = end;
        Ok(n)
    }
}

impl Seek for Sparse {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        self.pos = match to {
            SeekFrom::Start(p) => p,
            SeekFrom::End(d) => self.len.saturating_add_signed(d),
            SeekFrom::Current(d) => self.pos.saturating_add_signed(d),
        };
        Ok(self.pos)
    }
}

fn mp4_box(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
    let mut b = ((body.len() + 8) as u32).to_be_bytes().to_vec();
    b.extend_from_slice(kind);
    b.extend_from_slice(body);
    b
}

/// Offset and length of the first top-level box of this type.
fn find_top(bytes: &[u8], kind: &[u8; 4]) -> (usize, usize) {
    let mut at = 0;
    while at + 8 <= bytes.len() {
        let size = u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        if &bytes[at + 4..at + 8] == kind {
            return (at, size);
        }
        at += size;
    }
    panic!("no {kind:?}")
}

fn fixture(name: &str) -> Vec<u8> {
    fixtures().into_iter().find(|(n, _)| n == name).unwrap().1
}

#[test]
fn every_truncation_of_every_fixture_is_an_answer_not_a_panic() {
    for (name, bytes) in fixtures() {
        for len in 0..bytes.len() {
            let (answer, read) = probe_bytes(&bytes[..len]);
            assert!(read <= len as u64, "{name} cut at {len} read {read}");
            // Cut inside the headers it needs: an error, never made-up facts.
            if len < 8 {
                assert!(answer.is_err(), "{name} cut at {len}: {answer:?}");
            }
        }
    }
}

#[test]
fn a_faststart_mp4_cut_anywhere_after_its_moov_keeps_its_facts() {
    let bytes = fixture("h264-faststart.mp4");
    let (whole, _) = probe_bytes(&bytes);
    let whole = whole.unwrap();
    let (moov, size) = find_top(&bytes, b"moov");
    for len in (moov + size..bytes.len()).step_by(97) {
        let cut = probe_bytes(&bytes[..len]).0.unwrap();
        assert_eq!(cut.size_bytes, len as u64);
        assert_eq!(
            MediaInfo {
                size_bytes: whole.size_bytes,
                ..cut
            },
            whole,
            "cut at {len}"
        );
    }
    for len in moov + 8..moov + size {
        let cut = probe_bytes(&bytes[..len]).0;
        assert!(
            matches!(cut, Err(Fault::Truncated(_))),
            "cut at {len}: {cut:?}"
        );
    }
}

#[test]
fn every_bit_flip_in_a_moov_is_an_answer_not_a_panic() {
    for name in ["h264-faststart.mp4", "fragmented.mp4", "clip.mov"] {
        let bytes = fixture(name);
        let (moov, size) = find_top(&bytes, b"moov");
        for at in moov..moov + size {
            for bit in 0..8 {
                let mut flipped = bytes.clone();
                flipped[at] ^= 1 << bit;
                let (_, read) = probe_bytes(&flipped);
                assert!(read <= MAX_READ, "{name} flip {at}:{bit}");
            }
        }
    }
}

#[test]
fn every_bit_flip_in_a_webm_header_is_an_answer_not_a_panic() {
    let bytes = fixture("vp9.webm");
    // The EBML header, SeekHead, Info and Tracks come well within the first 400 bytes.
    for at in 0..400 {
        for bit in 0..8 {
            let mut flipped = bytes.clone();
            flipped[at] ^= 1 << bit;
            let _ = probe_bytes(&flipped);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic(
        start in prop_oneof![
            Just(Vec::new()),
            Just(b"\0\0\0\x10ftypisom".to_vec()),
            Just(b"\0\0\0\x01mdat".to_vec()),
            Just(b"\0\0\0\0moov".to_vec()),
            Just(vec![0x1a, 0x45, 0xdf, 0xa3]),
        ],
        rest in proptest::collection::vec(any::<u8>(), 0..2048),
    ) {
        let bytes = [start, rest].concat();
        let (_, read) = probe_bytes(&bytes);
        prop_assert!(read <= bytes.len() as u64);
    }

    #[test]
    fn random_bit_flips_anywhere_in_a_fixture_never_panic(
        which in 0usize..9,
        flips in proptest::collection::vec((any::<prop::sample::Index>(), 0u8..8), 1..8),
    ) {
        let all = fixtures();
        let (_, mut bytes) = all[which % all.len()].clone();
        for (at, bit) in flips {
            let at = at.index(bytes.len());
            bytes[at] ^= 1 << bit;
        }
        let _ = probe_bytes(&bytes);
    }
}

#[test]
fn a_1_tib_mdat_with_a_64_bit_size_is_seeked_past() {
    // ftyp, mdat of 1 TiB (size 1 + 64-bit size), then the moov of a real file.
    let bytes = fixture("h264-moov-last.mp4");
    let (ftyp, ftyp_len) = find_top(&bytes, b"ftyp");
    let (moov, moov_len) = find_top(&bytes, b"moov");
    let mdat_len: u64 = 1 << 40;
    let mut head = bytes[ftyp..ftyp + ftyp_len].to_vec();
    head.extend_from_slice(&1u32.to_be_bytes());
    head.extend_from_slice(b"mdat");
    head.extend_from_slice(&mdat_len.to_be_bytes());
    let moov_at = ftyp_len as u64 + mdat_len;
    let len = moov_at + moov_len as u64;
    let sparse = Sparse::new(
        len,
        vec![(0, head), (moov_at, bytes[moov..moov + moov_len].to_vec())],
    );
    let (answer, read) = probe_sparse(sparse);
    let info = answer.unwrap();
    assert_eq!(info.duration, Some(Duration::from_secs(1)));
    assert_eq!(info.size_bytes, len);
    assert!(read < 64 << 10, "read {read} bytes");
}

#[test]
fn a_fragmented_mp4_of_twenty_thousand_fragments_is_read_within_budget() {
    // The fixture's first moof (10 frames of 512 ticks at 15360/s) repeated 20000 times,
    // each followed by a 1 MiB mdat: a 20 GiB file, one window read per fragment.
    let bytes = fixture("fragmented.mp4");
    let (moof, moof_len) = find_top(&bytes, b"moof");
    let fragment = bytes[moof..moof + moof_len].to_vec();
    let mdat_len: u64 = 1 << 20;
    let mdat = [&(mdat_len as u32).to_be_bytes()[..], b"mdat"].concat();
    let mut pieces = vec![(0, bytes[..moof].to_vec())];
    let mut at = moof as u64;
    for _ in 0..20_000 {
        pieces.push((at, [fragment.clone(), mdat.clone()].concat()));
        at += moof_len as u64 + mdat_len;
    }
    let (answer, read) = probe_sparse(Sparse::new(at, pieces));
    let info = answer.unwrap();
    // 200000 frames of 1/30 s.
    assert_eq!(info.duration, Some(Duration::from_nanos(6_666_666_666_666)));
    let rate = info.frame_rate.unwrap();
    assert_eq!((rate.num(), rate.den(), rate.is_constant()), (30, 1, true));
    assert!(read < MAX_READ / 2, "read {read} bytes");
}

#[test]
fn an_mdat_of_size_zero_runs_to_the_end_of_the_file() {
    let bytes = fixture("h264-faststart.mp4");
    let (mdat, _) = find_top(&bytes, b"mdat");
    let mut zero = bytes.clone();
    zero[mdat..mdat + 4].copy_from_slice(&0u32.to_be_bytes());
    let (answer, _) = probe_bytes(&zero);
    assert_eq!(answer.unwrap().duration, Some(Duration::from_millis(1001)));
}

#[test]
fn impossible_sizes_are_damage_not_loops() {
    // A box of size 4 (smaller than its header) and a 64-bit size of 8.
    for bad in [
        [&4u32.to_be_bytes()[..], b"free"].concat(),
        [&1u32.to_be_bytes()[..], b"free", &8u64.to_be_bytes()].concat(),
    ] {
        let bytes = [mp4_box(b"ftyp", b"isom\0\0\0\0"), bad, vec![0; 16]].concat();
        let (answer, _) = probe_bytes(&bytes);
        assert!(matches!(answer, Err(Fault::Malformed(_))), "{answer:?}");
    }
}

#[test]
fn an_stts_claiming_four_billion_entries_is_refused_without_reading_them() {
    let stts = mp4_box(
        b"stts",
        &[
            0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 1, 0, 0, 3, 0xe9,
        ],
    );
    let stbl = mp4_box(b"stbl", &stts);
    let minf = mp4_box(b"minf", &stbl);
    let hdlr = mp4_box(b"hdlr", b"\0\0\0\0\0\0\0\0vide\0\0\0\0\0\0\0\0\0\0\0\0\0");
    let mdia = mp4_box(b"mdia", &[hdlr, minf].concat());
    let moov = mp4_box(b"moov", &mp4_box(b"trak", &mdia));
    let bytes = [mp4_box(b"ftyp", b"isom\0\0\0\0"), moov].concat();
    let (answer, read) = probe_bytes(&bytes);
    assert!(
        matches!(&answer, Err(Fault::Malformed(m)) if m.contains("stts")),
        "{answer:?}"
    );
    assert!(read <= bytes.len() as u64);
}

#[test]
fn half_a_million_boxes_give_up_instead_of_walking_on() {
    // 500000 empty `free` boxes before any moov: 4 MB of headers, over the step budget.
    let mut bytes = mp4_box(b"ftyp", b"isom\0\0\0\0");
    for _ in 0..500_000 {
        bytes.extend_from_slice(&mp4_box(b"free", b""));
    }
    let (answer, _) = probe_bytes(&bytes);
    assert!(matches!(answer, Err(Fault::TooComplex(_))), "{answer:?}");
}

/// An EBML element: ID bytes as written, then an 8-byte size (or unknown).
fn ebml(id: &[u8], body: &[u8]) -> Vec<u8> {
    let size = 0x0100_0000_0000_0000u64 | body.len() as u64;
    [id, &size.to_be_bytes(), body].concat()
}

fn ebml_unknown(id: &[u8]) -> Vec<u8> {
    [id, &[0x01, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]].concat()
}

fn webm_header() -> Vec<u8> {
    ebml(&[0x1a, 0x45, 0xdf, 0xa3], &ebml(&[0x42, 0x82], b"webm"))
}

fn webm_tracks() -> Vec<u8> {
    let video = ebml(
        &[0xe0],
        &[ebml(&[0xb0], &[0x07, 0x80]), ebml(&[0xba], &[0x04, 0x38])].concat(),
    );
    let audio = ebml(
        &[0xae],
        &[ebml(&[0x83], &[2]), ebml(&[0x86], b"A_OPUS")].concat(),
    );
    let entry = ebml(
        &[0xae],
        &[
            ebml(&[0x83], &[1]),
            ebml(&[0x86], b"V_AV1"),
            ebml(&[0x23, 0xe3, 0x83], &41_708_333u32.to_be_bytes()),
            video,
        ]
        .concat(),
    );
    ebml(&[0x16, 0x54, 0xae, 0x6b], &[audio, entry].concat())
}

fn webm_info(seconds: f64) -> Vec<u8> {
    let scale = ebml(&[0x2a, 0xd7, 0xb1], &1_000_000u32.to_be_bytes());
    let duration = ebml(&[0x44, 0x89], &(seconds * 1000.0).to_be_bytes());
    ebml(&[0x15, 0x49, 0xa9, 0x66], &[scale, duration].concat())
}

#[test]
fn a_live_webm_with_unknown_sizes_and_tracks_after_a_cluster_is_read() {
    // Segment and Cluster of unknown size (as a live recorder writes them), the Tracks
    // only after the first cluster's blocks.
    let cluster = [
        ebml_unknown(&[0x1f, 0x43, 0xb6, 0x75]),
        ebml(&[0xe7], &[0]),
        ebml(&[0xa3], &[0x81, 0, 0, 0x80, 1, 2, 3]),
    ]
    .concat();
    let bytes = [
        webm_header(),
        ebml_unknown(&[0x18, 0x53, 0x80, 0x67]),
        webm_info(12.5),
        cluster,
        webm_tracks(),
    ]
    .concat();
    let info = probe_bytes(&bytes).0.unwrap();
    assert_eq!(info.duration, Some(Duration::from_millis(12_500)));
    assert_eq!((info.width, info.height), (1920, 1080));
    assert_eq!(info.codec, Codec::Av1);
    let rate = info.frame_rate.unwrap();
    assert_eq!((rate.num(), rate.den()), (24000, 1001));
    assert_eq!(info.container, Container::WebM);
}

#[test]
fn a_1_tib_webm_cluster_is_seeked_past() {
    let mut head = [
        webm_header(),
        ebml_unknown(&[0x18, 0x53, 0x80, 0x67]),
        webm_info(3.0),
    ]
    .concat();
    let cluster_len: u64 = 1 << 40;
    head.extend_from_slice(&[0x1f, 0x43, 0xb6, 0x75]);
    head.extend_from_slice(&(0x0100_0000_0000_0000u64 | cluster_len).to_be_bytes());
    let tracks_at = head.len() as u64 + cluster_len;
    let tracks = webm_tracks();
    let len = tracks_at + tracks.len() as u64;
    let (answer, read) = probe_sparse(Sparse::new(len, vec![(0, head), (tracks_at, tracks)]));
    assert_eq!(answer.unwrap().duration, Some(Duration::from_secs(3)));
    assert!(read < 64 << 10, "read {read} bytes");
}

#[test]
fn a_webm_without_a_video_track_or_with_a_nan_duration_says_so() {
    let audio_only = ebml(
        &[0x16, 0x54, 0xae, 0x6b],
        &ebml(
            &[0xae],
            &[ebml(&[0x83], &[2]), ebml(&[0x86], b"A_OPUS")].concat(),
        ),
    );
    let segment = ebml(
        &[0x18, 0x53, 0x80, 0x67],
        &[webm_info(1.0), audio_only].concat(),
    );
    let answer = probe_bytes(&[webm_header(), segment].concat()).0;
    assert!(matches!(answer, Err(Fault::NoVideo)), "{answer:?}");

    let segment = ebml(
        &[0x18, 0x53, 0x80, 0x67],
        &[webm_info(f64::NAN), webm_tracks()].concat(),
    );
    let answer = probe_bytes(&[webm_header(), segment].concat()).0;
    assert!(
        matches!(&answer, Err(Fault::Malformed(m)) if m.contains("Duration")),
        "{answer:?}"
    );
}

#[test]
fn another_ebml_document_is_not_a_video() {
    let header = ebml(&[0x1a, 0x45, 0xdf, 0xa3], &ebml(&[0x42, 0x82], b"notwebm"));
    let answer = probe_bytes(&[header, vec![0; 32]].concat()).0;
    assert!(matches!(answer, Err(Fault::NotMedia)), "{answer:?}");
}

#[test]
fn a_cursor_reader_works_through_the_public_entry_point() {
    let bytes = fixture("clip.mov");
    let len = bytes.len() as u64;
    let info = probe_reader(Cursor::new(bytes), len, Path::new("clip.mov")).unwrap();
    assert_eq!(info.container, Container::QuickTime);
}
