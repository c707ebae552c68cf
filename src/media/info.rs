//! What a probe measured, as types that hold only sensible values, and the wording people
//! read: `12.5 s, 1080×1920, 29.97 fps, H.264 in MP4, 14.2 MB`, `11 min 3 s`.

use std::fmt;
use std::time::Duration;

/// A video's facts, read from its container (never from its name).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MediaInfo {
    pub size_bytes: u64,
    /// The container's duration (MP4: `mvhd`, else the fragments' sum; WebM: `Info`).
    /// `None` when the file does not say (a live WebM; a fragmented MP4 with no samples).
    pub duration: Option<Duration>,
    /// The size it is shown at: the stored size turned by `rotation`.
    pub width: u32,
    pub height: u32,
    /// How far a player turns the stored picture (MP4: the `tkhd` matrix). 90 and 270
    /// swap `width` and `height` relative to the stored frames.
    pub rotation: Rotation,
    /// `None` when the file does not say (a WebM track without `DefaultDuration`).
    pub frame_rate: Option<FrameRate>,
    pub codec: Codec,
    pub container: Container,
}

/// The video codec, from the MP4 sample entry or the Matroska `CodecID`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Codec {
    /// `avc1`, `avc3`, `V_MPEG4/ISO/AVC`.
    H264,
    /// `hvc1`, `hev1`, `V_MPEGH/ISO/HEVC`.
    H265,
    /// `vp09`, `V_VP9`.
    Vp9,
    /// `av01`, `V_AV1`.
    Av1,
    /// Any other: the four-character code or `CodecID` as written (non-printable bytes as
    /// `?`).
    Other(String),
}

impl Codec {
    pub(crate) fn from_fourcc(fourcc: [u8; 4]) -> Codec {
        match &fourcc {
            b"avc1" | b"avc3" => Codec::H264,
            b"hvc1" | b"hev1" => Codec::H265,
            b"vp09" => Codec::Vp9,
            b"av01" => Codec::Av1,
            _ => Codec::Other(printable(&fourcc)),
        }
    }

    pub(crate) fn from_matroska(id: &[u8]) -> Codec {
        match id {
            b"V_MPEG4/ISO/AVC" => Codec::H264,
            b"V_MPEGH/ISO/HEVC" => Codec::H265,
            b"V_VP9" => Codec::Vp9,
            b"V_AV1" => Codec::Av1,
            _ => Codec::Other(printable(id)),
        }
    }
}

/// Printable ASCII kept, anything else as `?`, so a hostile file cannot write to a terminal.
fn printable(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|&b| match b {
            0x20..=0x7e => b as char,
            _ => '?',
        })
        .collect()
}

impl fmt::Display for Codec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Codec::H264 => f.write_str("H.264"),
            Codec::H265 => f.write_str("H.265"),
            Codec::Vp9 => f.write_str("VP9"),
            Codec::Av1 => f.write_str("AV1"),
            Codec::Other(code) => write!(f, "`{code}`"),
        }
    }
}

/// The container format, from the file's first bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Container {
    /// ISO base media (`ftyp` with any brand but `qt  `).
    Mp4,
    /// Apple QuickTime (`ftyp` brand `qt  `, or no `ftyp` at all).
    QuickTime,
    /// EBML `DocType` `webm`.
    WebM,
    /// EBML `DocType` `matroska`.
    Matroska,
}

impl fmt::Display for Container {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Container::Mp4 => "MP4",
            Container::QuickTime => "QuickTime",
            Container::WebM => "WebM",
            Container::Matroska => "Matroska",
        })
    }
}

/// A right-angle turn, clockwise, as players apply it (ffmpeg's `rotate` tag).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Rotation {
    #[default]
    None,
    Cw90,
    Cw180,
    Cw270,
}

impl Rotation {
    pub fn degrees(self) -> u16 {
        match self {
            Rotation::None => 0,
            Rotation::Cw90 => 90,
            Rotation::Cw180 => 180,
            Rotation::Cw270 => 270,
        }
    }

    /// True for 90 and 270: the shown width is the stored height.
    pub fn swaps_sides(self) -> bool {
        matches!(self, Rotation::Cw90 | Rotation::Cw270)
    }
}

/// Frames per second as an exact fraction `num / den` (30000/1001 stays 30000/1001), with
/// whether every frame lasts as long (`constant`) or this is the average.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameRate {
    num: u64,
    den: u64,
    constant: bool,
}

impl FrameRate {
    /// `None` for zero on either side; the fraction is kept in lowest terms.
    pub fn new(num: u64, den: u64, constant: bool) -> Option<FrameRate> {
        Self::reduced(num as u128, den as u128, constant)
    }

    /// In lowest terms; a fraction too big for u64 even then loses low bits on both sides
    /// (only averages of huge sample tables get there).
    pub(crate) fn reduced(num: u128, den: u128, constant: bool) -> Option<FrameRate> {
        if num == 0 || den == 0 {
            return None;
        }
        let g = gcd(num, den);
        let (mut num, mut den) = (num / g, den / g);
        while num > u64::MAX as u128 || den > u64::MAX as u128 {
            num >>= 1;
            den >>= 1;
        }
        if num == 0 || den == 0 {
            return None;
        }
        Some(FrameRate {
            num: num as u64,
            den: den as u64,
            constant,
        })
    }

    /// From a frame duration in nanoseconds (Matroska's `DefaultDuration`), recognising
    /// the NTSC rates ffmpeg and cameras round to whole nanoseconds (33366666 ns is
    /// 30000/1001, not 500000000/16683333).
    pub(crate) fn from_frame_nanos(nanos: u64) -> Option<FrameRate> {
        if nanos == 0 {
            return None;
        }
        let nanos = nanos as u128;
        for den in [1u128, 1001] {
            let num = (1_000_000_000 * den + nanos / 2) / nanos;
            if num == 0 || (den == 1001 && !num.is_multiple_of(1000)) {
                continue;
            }
            // The frame duration that rate gives, to the nanosecond as writers round it.
            let exact = 1_000_000_000 * den / num;
            if exact.abs_diff(nanos) <= 1 {
                return Self::reduced(num, den, true);
            }
        }
        Self::reduced(1_000_000_000, nanos, true)
    }

    pub fn num(&self) -> u64 {
        self.num
    }

    pub fn den(&self) -> u64 {
        self.den
    }

    /// False when frames last differently long and this is their average.
    pub fn is_constant(&self) -> bool {
        self.constant
    }

    pub fn fps(&self) -> f64 {
        self.num as f64 / self.den as f64
    }
}

fn gcd(mut a: u128, mut b: u128) -> u128 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

impl fmt::Display for FrameRate {
    /// `29.97 fps`, `25 fps`, `23.98 fps`; an average says so: `about 29.5 fps (variable)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let fps = trim_decimals(format!("{:.2}", self.fps()));
        match self.constant {
            true => write!(f, "{fps} fps"),
            false => write!(f, "about {fps} fps (variable)"),
        }
    }
}

/// `12.50` → `12.5`, `25.00` → `25`.
fn trim_decimals(s: String) -> String {
    match s.contains('.') {
        true => s.trim_end_matches('0').trim_end_matches('.').to_string(),
        false => s,
    }
}

/// A duration as people say it: `0.5 s`, `12.5 s`, `11 min 3 s`, `10 min 0.4 s`, `10 min`,
/// `1 h 2 min 5 s`. Tenths of a second under an hour, whole seconds above; always rounded
/// down, so it never shows more than the file holds (compare limits on the `Duration`).
pub fn humane_duration(d: Duration) -> String {
    let tenths = d.as_millis() / 100;
    let (h, rest) = (tenths / 36_000, tenths % 36_000);
    let (min, sec_tenths) = (rest / 600, rest % 600);
    let secs = match h {
        0 => trim_decimals(format!("{}.{}", sec_tenths / 10, sec_tenths % 10)),
        _ => (sec_tenths / 10).to_string(),
    };
    let mut parts = Vec::new();
    if h > 0 {
        parts.push(format!("{h} h"));
    }
    if min > 0 {
        parts.push(format!("{min} min"));
    }
    if secs != "0" || parts.is_empty() {
        parts.push(format!("{secs} s"));
    }
    parts.join(" ")
}

/// A size in decimal units as platforms state limits: `812 B`, `9.0 kB`, `14.2 MB`,
/// `4.3 GB` (one decimal, rounded down, so it never shows more than there is).
pub fn humane_size(bytes: u64) -> String {
    const UNITS: [(u64, &str); 4] = [
        (1_000_000_000_000, "TB"),
        (1_000_000_000, "GB"),
        (1_000_000, "MB"),
        (1_000, "kB"),
    ];
    for (unit, name) in UNITS {
        if bytes >= unit {
            let tenths = bytes as u128 * 10 / unit as u128;
            return format!("{}.{} {name}", tenths / 10, tenths % 10);
        }
    }
    format!("{bytes} B")
}

impl fmt::Display for MediaInfo {
    /// `12.5 s, 1080×1920, 29.97 fps, H.264 in MP4, 14.2 MB`; a turned picture adds
    /// `(rotated 90°)` after its size; an unknown says `duration unknown`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.duration {
            Some(d) => write!(f, "{}", humane_duration(d))?,
            None => f.write_str("duration unknown")?,
        }
        write!(f, ", {}×{}", self.width, self.height)?;
        if self.rotation != Rotation::None {
            write!(f, " (rotated {}°)", self.rotation.degrees())?;
        }
        match &self.frame_rate {
            Some(rate) => write!(f, ", {rate}")?,
            None => f.write_str(", frame rate unknown")?,
        }
        write!(
            f,
            ", {} in {}, {}",
            self.codec,
            self.container,
            humane_size(self.size_bytes)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_people_say_them_and_never_round_up() {
        let ms = Duration::from_millis;
        for (d, text) in [
            (ms(0), "0 s"),
            (ms(500), "0.5 s"),
            (ms(12_500), "12.5 s"),
            (ms(12_499), "12.4 s"),
            (ms(9_000), "9 s"),
            (ms(663_000), "11 min 3 s"),
            (ms(600_400), "10 min 0.4 s"),
            (ms(600_000), "10 min"),
            (ms(599_999), "9 min 59.9 s"),
            (ms(3_725_900), "1 h 2 min 5 s"),
            (ms(7_200_000), "2 h"),
        ] {
            assert_eq!(humane_duration(d), text, "{d:?}");
        }
    }

    #[test]
    fn sizes_read_in_decimal_units_rounded_down() {
        for (bytes, text) in [
            (812, "812 B"),
            (8_981, "8.9 kB"),
            (14_299_999, "14.2 MB"),
            (4_294_967_296, "4.2 GB"),
            (1_000_000_000_000, "1.0 TB"),
        ] {
            assert_eq!(humane_size(bytes), text);
        }
    }

    #[test]
    fn matroska_frame_durations_give_the_ntsc_fractions_back() {
        for (nanos, num, den, text) in [
            (33_366_666, 30000, 1001, "29.97 fps"),
            (33_366_667, 30000, 1001, "29.97 fps"),
            (41_708_333, 24000, 1001, "23.98 fps"),
            (16_683_333, 60000, 1001, "59.94 fps"),
            (40_000_000, 25, 1, "25 fps"),
            (16_666_667, 60, 1, "60 fps"),
            (33_333_333, 30, 1, "30 fps"),
            // Not a common rate: kept as the exact fraction of a second.
            (33_000_000, 1000, 33, "30.3 fps"),
        ] {
            let rate = FrameRate::from_frame_nanos(nanos).unwrap();
            assert_eq!((rate.num(), rate.den()), (num, den), "{nanos}");
            assert_eq!(rate.to_string(), text);
        }
        assert_eq!(FrameRate::from_frame_nanos(0), None);
    }

    #[test]
    fn a_variable_rate_says_it_is_an_average() {
        let rate = FrameRate::new(59, 2, false).unwrap();
        assert_eq!(rate.to_string(), "about 29.5 fps (variable)");
    }

    #[test]
    fn an_unknown_codec_is_shown_without_control_characters() {
        assert_eq!(Codec::from_fourcc(*b"mp4v"), Codec::Other("mp4v".into()));
        assert_eq!(
            Codec::from_fourcc([0x1b, b'[', b'2', b'J']).to_string(),
            "`?[2J`"
        );
        assert_eq!(Codec::from_matroska(b"V_VP8"), Codec::Other("V_VP8".into()));
    }

    #[test]
    fn unknowns_are_said_in_the_line() {
        let info = MediaInfo {
            size_bytes: 14_200_000,
            duration: None,
            width: 1080,
            height: 1920,
            rotation: Rotation::None,
            frame_rate: None,
            codec: Codec::H265,
            container: Container::Matroska,
        };
        assert_eq!(
            info.to_string(),
            "duration unknown, 1080×1920, frame rate unknown, H.265 in Matroska, 14.2 MB"
        );
    }
}
