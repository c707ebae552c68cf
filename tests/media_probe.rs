//! `dropcast::media::probe` on real files made by ffmpeg (tests/fixtures/media/make.sh):
//! the exact facts of each, files whose facts cannot be read, a 64-bit `mdat` of 5 GiB in
//! a sparse file walked past, and `dropcast validate VIDEO` printing them.

use std::fs;
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use assert_cmd::Command;
use dropcast::media::{self, Codec, Container, MediaErrorKind, MediaInfo, Rotation};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/media")
        .join(name)
}

/// What a fixture must measure: (file, duration ms, width, height, fps num/den, codec,
/// container, rotation).
struct Expected {
    file: &'static str,
    millis: u64,
    size: (u32, u32),
    rate: (u64, u64),
    codec: Codec,
    container: Container,
    rotation: Rotation,
}

fn expected() -> Vec<Expected> {
    let e = |file, millis, size, rate, codec, container| Expected {
        file,
        millis,
        size,
        rate,
        codec,
        container,
        rotation: Rotation::None,
    };
    vec![
        e(
            "h264-faststart.mp4",
            1001,
            (160, 90),
            (30000, 1001),
            Codec::H264,
            Container::Mp4,
        ),
        e(
            "h264-moov-last.mp4",
            1000,
            (160, 90),
            (25, 1),
            Codec::H264,
            Container::Mp4,
        ),
        e(
            "h265-hvc1.mp4",
            1001,
            (160, 90),
            (24000, 1001),
            Codec::H265,
            Container::Mp4,
        ),
        e(
            "vp9.webm",
            500,
            (160, 90),
            (60, 1),
            Codec::Vp9,
            Container::WebM,
        ),
        e(
            "av1.mp4",
            500,
            (160, 90),
            (30, 1),
            Codec::Av1,
            Container::Mp4,
        ),
        Expected {
            rotation: Rotation::Cw90,
            ..e(
                "rotated-90.mp4",
                500,
                (90, 160),
                (30, 1),
                Codec::H264,
                Container::Mp4,
            )
        },
        Expected {
            rotation: Rotation::Cw270,
            ..e(
                "rotated-270.mp4",
                500,
                (90, 160),
                (30, 1),
                Codec::H264,
                Container::Mp4,
            )
        },
        e(
            "fragmented.mp4",
            1000,
            (160, 90),
            (30, 1),
            Codec::H264,
            Container::Mp4,
        ),
        e(
            "clip.mov",
            500,
            (160, 90),
            (60, 1),
            Codec::H264,
            Container::QuickTime,
        ),
    ]
}

fn probe(name: &str) -> MediaInfo {
    media::probe(&fixture(name)).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn every_fixture_measures_exactly_what_ffmpeg_made() {
    for want in expected() {
        let got = probe(want.file);
        let file = want.file;
        assert_eq!(
            got.size_bytes,
            fs::metadata(fixture(file)).unwrap().len(),
            "{file}"
        );
        assert_eq!(
            got.duration,
            Some(Duration::from_millis(want.millis)),
            "{file}"
        );
        assert_eq!((got.width, got.height), want.size, "{file}");
        let rate = got
            .frame_rate
            .unwrap_or_else(|| panic!("{file}: no frame rate"));
        assert_eq!((rate.num(), rate.den()), want.rate, "{file}");
        assert!(rate.is_constant(), "{file}");
        assert_eq!(got.codec, want.codec, "{file}");
        assert_eq!(got.container, want.container, "{file}");
        assert_eq!(got.rotation, want.rotation, "{file}");
    }
}

#[test]
fn the_facts_read_as_one_line_for_people() {
    let info = probe("h264-faststart.mp4");
    assert_eq!(
        info.to_string(),
        "1 s, 160×90, 29.97 fps, H.264 in MP4, 8.9 kB"
    );
    assert_eq!(
        probe("rotated-90.mp4").to_string(),
        "0.5 s, 90×160 (rotated 90°), 30 fps, H.264 in MP4, 3.5 kB"
    );
    assert_eq!(
        probe("h265-hvc1.mp4").frame_rate.unwrap().to_string(),
        "23.98 fps"
    );
}

#[test]
fn a_file_that_is_no_video_says_so_and_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("notes.mp4");
    fs::write(&text, "just some words, not a video at all").unwrap();
    let err = media::probe(&text).unwrap_err();
    assert!(matches!(err.kind, MediaErrorKind::NotMedia), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!("{}: not an MP4 or WebM file", text.display())
    );

    let empty = dir.path().join("empty.mp4");
    fs::write(&empty, "").unwrap();
    assert!(matches!(
        media::probe(&empty).unwrap_err().kind,
        MediaErrorKind::NotMedia
    ));

    let missing = dir.path().join("gone.mp4");
    assert!(matches!(
        media::probe(&missing).unwrap_err().kind,
        MediaErrorKind::Io(_)
    ));
}

#[test]
fn an_mp4_cut_before_its_moov_says_the_export_may_be_unfinished() {
    // moov comes after mdat here: cutting the file inside mdat loses it.
    let bytes = fs::read(fixture("h264-moov-last.mp4")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cut = dir.path().join("cut.mp4");
    fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let err = media::probe(&cut).unwrap_err();
    assert!(matches!(err.kind, MediaErrorKind::NoMoov), "{err:?}");
    assert!(
        err.to_string()
            .ends_with("moov box missing: the export may be unfinished"),
        "{err}"
    );
}

#[test]
fn an_audio_only_file_has_no_video_track() {
    // The faststart fixture with its video trak's handler renamed: only audio remains.
    let mut bytes = fs::read(fixture("h264-faststart.mp4")).unwrap();
    let vide = bytes.windows(4).position(|w| w == b"vide").unwrap();
    bytes[vide..vide + 4].copy_from_slice(b"soun");
    let dir = tempfile::tempdir().unwrap();
    let audio = dir.path().join("audio.m4a");
    fs::write(&audio, &bytes).unwrap();
    let err = media::probe(&audio).unwrap_err();
    assert!(matches!(err.kind, MediaErrorKind::NoVideo), "{err:?}");
    assert!(err.to_string().ends_with(": no video track"), "{err}");
}

/// The moov of `h264-moov-last.mp4`, and everything before its mdat.
fn split_moov_last() -> (Vec<u8>, Vec<u8>) {
    let bytes = fs::read(fixture("h264-moov-last.mp4")).unwrap();
    let moov = bytes.windows(4).rposition(|w| w == b"moov").unwrap() - 4;
    let mdat = bytes.windows(4).position(|w| w == b"mdat").unwrap() - 4;
    (bytes[..mdat].to_vec(), bytes[moov..].to_vec())
}

#[test]
fn a_5_gib_mdat_with_a_64_bit_size_is_walked_past_not_read() {
    // A sparse file: ftyp, an mdat of 5 GiB announced with size 1 + a 64-bit size, then
    // the moov. Reading the mdat would take many seconds; the probe seeks past it. (The
    // sample offsets in moov point nowhere real; the probe never follows them.)
    let (head, moov) = split_moov_last();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("huge.mp4");
    let mut file = fs::File::create(&path).unwrap();
    let mdat_len: u64 = 5 << 30;
    file.write_all(&head).unwrap();
    file.write_all(&1u32.to_be_bytes()).unwrap();
    file.write_all(b"mdat").unwrap();
    file.write_all(&mdat_len.to_be_bytes()).unwrap();
    let moov_at = head.len() as u64 + mdat_len;
    file.set_len(moov_at).unwrap();
    file.seek(SeekFrom::Start(moov_at)).unwrap();
    file.write_all(&moov).unwrap();
    drop(file);

    let started = Instant::now();
    let info = media::probe(&path).unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(info.size_bytes, moov_at + moov.len() as u64);
    assert_eq!(info.duration, Some(Duration::from_secs(1)));
    assert_eq!((info.width, info.height), (160, 90));
    assert!(info.to_string().ends_with("H.264 in MP4, 5.3 GB"), "{info}");
}

#[test]
fn validate_prints_a_videos_facts_on_one_line() {
    let dir = tempfile::tempdir().unwrap();
    // A config whose one account's platform states no media limits.
    std::fs::write(
        dir.path().join("dropcast.yaml"),
        "accounts: {studio: {platform: douyin}}\n",
    )
    .unwrap();
    let out = Command::cargo_bin("dropcast")
        .unwrap()
        .current_dir(dir.path())
        .env_remove("DROPCAST_CONFIG")
        .arg("validate")
        .arg(fixture("h265-hvc1.mp4"))
        .arg(fixture("vp9.webm"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines,
        [
            format!(
                "{}: 1 s, 160×90, 23.98 fps, H.265 in MP4, 4.9 kB",
                fixture("h265-hvc1.mp4").display()
            ),
            format!(
                "{}: 0.5 s, 160×90, 60 fps, VP9 in WebM, 10.2 kB",
                fixture("vp9.webm").display()
            ),
        ]
    );
}

#[test]
fn validate_refuses_a_video_it_cannot_read_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let fake = dir.path().join("clip.mp4");
    fs::write(&fake, "title: not a video\n").unwrap();
    let out = Command::cargo_bin("dropcast")
        .unwrap()
        .current_dir(dir.path())
        .env_remove("DROPCAST_CONFIG")
        .args(["validate", "clip.mp4"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "clip.mp4: not an MP4 or WebM file\n"
    );
}

// Regression (issue 12 item 6): `validate VIDEO` printed the facts but not the limits a platform would refuse the video for.
#[test]
fn validate_names_each_limit_a_video_breaks_on_the_configured_platforms() {
    let dir = tempfile::tempdir().unwrap();
    let run = |video: &Path| {
        Command::cargo_bin("dropcast")
            .unwrap()
            .current_dir(dir.path())
            .env_remove("DROPCAST_CONFIG")
            .arg("validate")
            .arg(video)
            .output()
            .unwrap()
    };
    // No config: every platform's limits apply.
    let small = fixture("h264-faststart.mp4");
    let out = run(&small);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(
        stdout.contains(&format!(
            "{}: picture 160×90, TikTok allows each side from 360 to 4096 pixels through the API",
            small.display()
        )),
        "{stdout}"
    );
    // A TikTok account, and a video within its limits.
    std::fs::write(
        dir.path().join("dropcast.yaml"),
        "accounts: {global: {platform: tiktok, client_key: aw1x, client_secret_env: S}}\n",
    )
    .unwrap();
    let clip = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/media/clip.mp4");
    let out = run(&clip);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 1);
    assert_eq!(run(&small).status.code(), Some(2));
}
