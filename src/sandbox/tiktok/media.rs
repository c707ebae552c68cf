//! The media checks of page §5, read from the uploaded file itself once every byte is in:
//! container, codec, duration (`mvhd`), each side (`tkhd`) and frame rate (`mdhd` +
//! `stts`), failing with the documented `fail_reason`. A WebM file (EBML magic) is
//! accepted unread (ours: the sandbox reads only ISO BMFF), as is a check whose box the file
//! lacks (codec, frame rate).

use std::io::{BufReader, Read};
use std::path::Path;

use super::rules;
use crate::sandbox::mp4;

/// `Ok` or the `fail_reason`, for a file of `len` bytes at `path` whose creator allows
/// `max_duration_sec`.
pub(crate) fn verdict(path: &Path, len: u64, max_duration_sec: u32) -> Result<(), String> {
    check(path, len, max_duration_sec).map_err(str::to_owned)
}

fn check(path: &Path, len: u64, max_duration_sec: u32) -> Result<(), &'static str> {
    let format = "file_format_check_failed";
    let mut file = BufReader::new(std::fs::File::open(path).map_err(|_| "internal")?);
    let mut magic = [0u8; 8];
    file.read_exact(&mut magic).map_err(|_| format)?;
    if magic[..4] == [0x1a, 0x45, 0xdf, 0xa3] {
        return Ok(());
    }
    if !matches!(
        &magic[4..],
        b"ftyp" | b"moov" | b"free" | b"mdat" | b"wide" | b"skip"
    ) {
        return Err(format);
    }
    let info = mp4::probe(&mut file, len);
    if info.width == 0 || info.height == 0 || info.duration <= 0.0 {
        return Err(format);
    }
    let track = mp4::probe_track(&mut file, len);
    if track.codec.is_some_and(|c| !rules::CODECS.contains(&&c)) {
        return Err(format);
    }
    let max = max_duration_sec.min(rules::API_MAX_DURATION_SEC);
    if info.duration > f64::from(max) {
        return Err("duration_check_failed");
    }
    let (low, high) = rules::FPS;
    let fps_ok = |f: f64| f >= low - rules::FPS_SLACK && f <= high + rules::FPS_SLACK;
    if track.fps.is_some_and(|f| !fps_ok(f)) {
        return Err("frame_rate_check_failed");
    }
    if !rules::SIDE_PX.contains(&info.width) || !rules::SIDE_PX.contains(&info.height) {
        return Err("picture_size_check_failed");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::mp4::tests::tiny_mp4;

    fn judge(bytes: &[u8], max: u32) -> Result<(), String> {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("v");
        std::fs::write(&path, bytes).expect("write");
        verdict(&path, bytes.len() as u64, max)
    }

    #[test]
    fn each_rule_has_its_reason() {
        assert_eq!(judge(&tiny_mp4(1000, 12_000, 720, 1280, b"x"), 300), Ok(()));
        let long = tiny_mp4(1000, 301_000, 720, 1280, b"x");
        assert_eq!(judge(&long, 300).unwrap_err(), "duration_check_failed");
        let over_api = tiny_mp4(1000, 601_000, 720, 1280, b"x");
        assert_eq!(judge(&over_api, 900).unwrap_err(), "duration_check_failed");
        let small = tiny_mp4(1000, 2000, 320, 1280, b"x");
        assert_eq!(judge(&small, 300).unwrap_err(), "picture_size_check_failed");
        let big = tiny_mp4(1000, 2000, 720, 4097, b"x");
        assert_eq!(judge(&big, 300).unwrap_err(), "picture_size_check_failed");
        assert_eq!(
            judge(b"not a video at all", 300).unwrap_err(),
            "file_format_check_failed"
        );
        let no_track = tiny_mp4(1000, 2000, 0, 0, b"x");
        assert_eq!(
            judge(&no_track, 300).unwrap_err(),
            "file_format_check_failed"
        );
    }

    fn mp4_box(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let mut v = u32::try_from(body.len() + 8)
            .expect("small")
            .to_be_bytes()
            .to_vec();
        v.extend_from_slice(kind);
        v.extend_from_slice(body);
        v
    }

    /// A 2 s 720x1280 MP4 whose video track is `codec` with 30 samples of `delta` ticks
    /// at timescale 15000.
    fn with_track(codec: &[u8; 4], delta: u32) -> Vec<u8> {
        let mut mvhd = vec![0; 12];
        mvhd.extend_from_slice(&1000u32.to_be_bytes());
        mvhd.extend_from_slice(&2000u32.to_be_bytes());
        mvhd.extend_from_slice(&[0; 80]);
        let mut tkhd = vec![0; 4 + 20 + 8 + 8 + 36];
        tkhd.extend_from_slice(&(720u32 << 16).to_be_bytes());
        tkhd.extend_from_slice(&(1280u32 << 16).to_be_bytes());
        let hdlr = [&[0u8; 8][..], b"vide", &[0; 12]].concat();
        let mdhd = [&[0u8; 12][..], &15000u32.to_be_bytes(), &[0; 8]].concat();
        let stsd = [&[0u8, 0, 0, 0, 0, 0, 0, 1][..], &mp4_box(codec, &[0; 8])].concat();
        let stts = [
            &[0u8, 0, 0, 0, 0, 0, 0, 1][..],
            &30u32.to_be_bytes(),
            &delta.to_be_bytes(),
        ]
        .concat();
        let stbl = mp4_box(
            b"stbl",
            &[mp4_box(b"stsd", &stsd), mp4_box(b"stts", &stts)].concat(),
        );
        let mdia = [
            mp4_box(b"hdlr", &hdlr),
            mp4_box(b"mdhd", &mdhd),
            mp4_box(b"minf", &stbl),
        ]
        .concat();
        let trak = [mp4_box(b"tkhd", &tkhd), mp4_box(b"mdia", &mdia)].concat();
        let moov = [mp4_box(b"mvhd", &mvhd), mp4_box(b"trak", &trak)].concat();
        [
            mp4_box(b"ftyp", b"isom\0\0\x02\0isomiso2mp41"),
            mp4_box(b"moov", &moov),
            mp4_box(b"mdat", b"frames"),
        ]
        .concat()
    }

    #[test]
    fn frame_rate_and_codec_come_from_the_track() {
        assert_eq!(judge(&with_track(b"avc1", 500), 300), Ok(()), "30 fps");
        assert_eq!(judge(&with_track(b"hvc1", 250), 300), Ok(()), "60 fps");
        let slow = with_track(b"avc1", 1000);
        assert_eq!(
            judge(&slow, 300).unwrap_err(),
            "frame_rate_check_failed",
            "15 fps"
        );
        let fast = with_track(b"avc1", 200);
        assert_eq!(
            judge(&fast, 300).unwrap_err(),
            "frame_rate_check_failed",
            "75 fps"
        );
        let mpeg4 = with_track(b"mp4v", 500);
        assert_eq!(judge(&mpeg4, 300).unwrap_err(), "file_format_check_failed");
    }

    #[test]
    fn the_example_clip_passes() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/media/clip.mp4");
        let len = std::fs::metadata(path).expect("clip").len();
        assert_eq!(verdict(Path::new(path), len, 300), Ok(()));
    }
}
