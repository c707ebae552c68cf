//! A platform's limits on the video file itself (size, duration, sides, frame rate,
//! codec), and the words for a video that breaks one: the limit and the measured value,
//! e.g. "duration 11 min 3 s, TikTok allows at most 10 min through the API". The numbers
//! belong to each backend's wire module; the pipeline and `validate` apply them before a
//! byte is sent.

use std::time::Duration;

use super::{Codec, MediaInfo, humane_duration, humane_size};

/// What a platform accepts. `None` (or an empty range) means no limit of that kind.
#[derive(Debug)]
pub struct MediaLimits {
    /// The platform as users call it ("TikTok").
    pub platform: &'static str,
    /// Where the limits apply, appended to each message (" through the API").
    pub scope: &'static str,
    pub max_bytes: Option<u64>,
    pub max_duration: Option<Duration>,
    /// Each side of the shown picture, in pixels.
    pub sides: Option<(u32, u32)>,
    /// Frames per second.
    pub frame_rate: Option<(f64, f64)>,
    pub codec: Option<Codecs>,
}

/// The codecs a platform takes: a test, and the accepted ones in words.
#[derive(Debug)]
pub struct Codecs {
    pub accepts: fn(&Codec) -> bool,
    pub words: &'static str,
}

/// Each limit `info` breaks, in words; empty when it breaks none. A fact the file does not
/// state (a duration, a frame rate) breaks nothing: the platform judges it itself.
pub fn breaches(limits: &MediaLimits, info: &MediaInfo) -> Vec<String> {
    let (who, scope) = (limits.platform, limits.scope);
    let mut out = Vec::new();
    if let Some(max) = limits.max_bytes
        && info.size_bytes > max
    {
        out.push(format!(
            "size {}, {who} allows at most {}{scope}",
            humane_size(info.size_bytes),
            humane_size(max)
        ));
    }
    if let (Some(max), Some(d)) = (limits.max_duration, info.duration)
        && d > max
    {
        out.push(format!(
            "duration {}, {who} allows at most {}{scope}",
            humane_duration(d),
            humane_duration(max)
        ));
    }
    if let Some((min, max)) = limits.sides
        && info.width > 0
        && info.height > 0
        && [info.width, info.height]
            .iter()
            .any(|s| *s < min || *s > max)
    {
        out.push(format!(
            "picture {}×{}, {who} allows each side from {min} to {max} pixels{scope}",
            info.width, info.height
        ));
    }
    if let (Some((min, max)), Some(rate)) = (limits.frame_rate, info.frame_rate.as_ref()) {
        let fps = rate.fps();
        // Rates within a hundredth of a frame of a bound count as on it (29.97 vs 30 is
        // not at stake here, 59.94 vs 60 is).
        if fps < min - 0.01 || fps > max + 0.01 {
            out.push(format!(
                "frame rate {rate}, {who} allows {min} to {max} fps{scope}"
            ));
        }
    }
    if let Some(codecs) = &limits.codec
        && !(codecs.accepts)(&info.codec)
    {
        let words = codecs.words;
        out.push(format!("codec {}, {who} takes {words}{scope}", info.codec));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::{Container, FrameRate, Rotation};

    const LIMITS: MediaLimits = MediaLimits {
        platform: "TikTok",
        scope: " through the API",
        max_bytes: Some(4_000_000_000),
        max_duration: Some(Duration::from_secs(600)),
        sides: Some((360, 4096)),
        frame_rate: Some((23.0, 60.0)),
        codec: Some(Codecs {
            accepts: |c| matches!(c, Codec::H264 | Codec::H265 | Codec::Vp9),
            words: "H.264, H.265 or VP9",
        }),
    };

    fn video() -> MediaInfo {
        MediaInfo {
            size_bytes: 14_200_000,
            duration: Some(Duration::from_millis(12_500)),
            width: 1080,
            height: 1920,
            rotation: Rotation::None,
            frame_rate: FrameRate::new(30_000, 1_001, true),
            codec: Codec::H264,
            container: Container::Mp4,
        }
    }

    #[test]
    fn a_video_within_every_limit_breaks_none() {
        assert!(breaches(&LIMITS, &video()).is_empty());
        let mut edge = video();
        edge.frame_rate = FrameRate::new(60_000, 1_001, true);
        edge.width = 360;
        edge.height = 4096;
        assert!(breaches(&LIMITS, &edge).is_empty());
    }

    #[test]
    fn each_breach_names_the_measure_and_the_limit() {
        let mut v = video();
        v.duration = Some(Duration::from_secs(663));
        v.size_bytes = 4_100_000_000;
        v.width = 160;
        v.height = 90;
        v.frame_rate = FrameRate::new(120, 1, true);
        v.codec = Codec::Av1;
        let said = breaches(&LIMITS, &v);
        assert_eq!(
            said,
            [
                "size 4.1 GB, TikTok allows at most 4.0 GB through the API",
                "duration 11 min 3 s, TikTok allows at most 10 min through the API",
                "picture 160×90, TikTok allows each side from 360 to 4096 pixels through the API",
                "frame rate 120 fps, TikTok allows 23 to 60 fps through the API",
                "codec AV1, TikTok takes H.264, H.265 or VP9 through the API",
            ]
        );
    }

    #[test]
    fn facts_the_file_does_not_state_break_nothing() {
        let mut v = video();
        v.duration = None;
        v.frame_rate = None;
        v.width = 0;
        v.height = 0;
        assert!(breaches(&LIMITS, &v).is_empty());
    }
}
