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

    #[test]
    fn the_example_clip_passes() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/media/clip.mp4");
        let len = std::fs::metadata(path).expect("clip").len();
        assert_eq!(verdict(Path::new(path), len, 300), Ok(()));
    }
}
