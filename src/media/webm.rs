//! WebM and Matroska (EBML): the header's `DocType`, then the `Segment`'s `Info`
//! (`TimecodeScale`, `Duration`) and `Tracks` (the first `TrackEntry` of type video: its
//! `CodecID`, `PixelWidth`/`PixelHeight`, `DefaultDuration`). Clusters are seeked past;
//! one of unknown size (a live recording) is stepped through by its blocks' headers. The
//! walk stops as soon as `Info` and `Tracks` were read, which writers put first.

use std::io::{Read, Seek};
use std::time::Duration;

use super::Fault;
use super::info::{Codec, Container, FrameRate, MediaInfo, Rotation};
use super::source::Source;

const EBML: u32 = 0x1a45_dfa3;
const DOC_TYPE: u32 = 0x4282;
const SEGMENT: u32 = 0x1853_8067;
const INFO: u32 = 0x1549_a966;
const TIMECODE_SCALE: u32 = 0x2a_d7b1;
const DURATION: u32 = 0x4489;
const TRACKS: u32 = 0x1654_ae6b;
const TRACK_ENTRY: u32 = 0xae;
const TRACK_TYPE: u32 = 0x83;
const CODEC_ID: u32 = 0x86;
const DEFAULT_DURATION: u32 = 0x23_e383;
const VIDEO: u32 = 0xe0;
const PIXEL_WIDTH: u32 = 0xb0;
const PIXEL_HEIGHT: u32 = 0xba;
const CLUSTER: u32 = 0x1f43_b675;
/// The Segment's children (and the top-level IDs): where an element of unknown size ends.
const LEVEL_1: &[u32] = &[
    EBML,
    SEGMENT,
    0x114d_9b74,
    INFO,
    TRACKS,
    CLUSTER,
    0x1c53_bb6b,
    0x1254_c367,
    0x1043_a770,
    0x1941_a469,
];
/// Longest `DocType` or `CodecID` kept (real ones are under 20 bytes).
const MAX_TEXT: u64 = 64;

/// One element: its ID, where its payload starts and ends (the parent's end when its size
/// is unknown).
struct Element {
    id: u32,
    at: u64,
    body: u64,
    end: u64,
    unknown_size: bool,
}

fn bad(what: String) -> Fault {
    Fault::Malformed(what)
}

/// A variable-length integer's length from its first byte (1 to `max`).
fn vint_len(first: u8, max: u32, at: u64) -> Result<u32, Fault> {
    let len = first.leading_zeros() + 1;
    match len <= max {
        true => Ok(len),
        false => Err(bad(format!("an EBML number at byte {at} is invalid"))),
    }
}

fn element<R: Read + Seek>(
    src: &mut Source<R>,
    at: u64,
    parent_end: u64,
) -> Result<Element, Fault> {
    src.step()?;
    src.seek(at);
    let first = src.u8()?;
    let mut id = u32::from(first);
    for _ in 1..vint_len(first, 4, at)? {
        id = id << 8 | u32::from(src.u8()?);
    }
    let first = src.u8()?;
    let len = vint_len(first, 8, at)?;
    let mut size = u64::from(first) & (0xff >> len);
    for _ in 1..len {
        size = size << 8 | u64::from(src.u8()?);
    }
    let unknown_size = size == (1u64 << (7 * len)) - 1;
    let body = src.pos();
    let end = match unknown_size {
        true => parent_end,
        false => body
            .checked_add(size)
            .ok_or_else(|| bad(format!("element {id:X} at byte {at} is too big")))?,
    };
    Ok(Element {
        id,
        at,
        body,
        end,
        unknown_size,
    })
}

/// Calls `f` on each child of `parent`; returns where the children end (for a parent of
/// unknown size: at the first element that belongs to a higher level).
fn children<R: Read + Seek>(
    src: &mut Source<R>,
    parent: &Element,
    mut f: impl FnMut(&mut Source<R>, &Element) -> Result<(), Fault>,
) -> Result<u64, Fault> {
    let mut at = parent.body;
    while at < parent.end {
        let e = element(src, at, parent.end)?;
        if parent.unknown_size && LEVEL_1.contains(&e.id) {
            return Ok(at);
        }
        if e.unknown_size || e.end > parent.end {
            return Err(bad(format!(
                "element {:X} at byte {at} runs past its parent {:X}",
                e.id, parent.id
            )));
        }
        f(src, &e)?;
        at = e.end;
    }
    Ok(parent.end)
}

fn uint<R: Read + Seek>(src: &mut Source<R>, e: &Element) -> Result<u64, Fault> {
    let len = e.end - e.body;
    if len > 8 {
        return Err(bad(format!(
            "number {:X} at byte {} is too long",
            e.id, e.at
        )));
    }
    let mut v = 0u64;
    for _ in 0..len {
        v = v << 8 | u64::from(src.u8()?);
    }
    Ok(v)
}

fn float<R: Read + Seek>(src: &mut Source<R>, e: &Element) -> Result<f64, Fault> {
    match e.end - e.body {
        0 => Ok(0.0),
        4 => Ok(f64::from(f32::from_bits(src.u32()?))),
        8 => Ok(f64::from_bits(src.u64()?)),
        _ => Err(bad(format!(
            "float {:X} at byte {} has a bad size",
            e.id, e.at
        ))),
    }
}

/// Text, at most `MAX_TEXT` bytes of it, without its NUL padding.
fn text<R: Read + Seek>(src: &mut Source<R>, e: &Element) -> Result<Vec<u8>, Fault> {
    let mut bytes = vec![0; (e.end - e.body).min(MAX_TEXT) as usize];
    src.read_exact(&mut bytes)?;
    while bytes.last() == Some(&0) {
        bytes.pop();
    }
    Ok(bytes)
}

/// What the file says, as read so far.
struct Facts {
    container: Container,
    timecode_scale: u64,
    /// In `timecode_scale` units.
    duration: Option<f64>,
    info_read: bool,
    tracks_read: bool,
    video: Option<VideoTrack>,
}

#[derive(Default)]
struct VideoTrack {
    codec: Vec<u8>,
    width: Option<u64>,
    height: Option<u64>,
    /// Nanoseconds per frame.
    default_duration: Option<u64>,
}

/// Reads the facts of a WebM or Matroska file.
pub(super) fn read<R: Read + Seek>(src: &mut Source<R>) -> Result<MediaInfo, Fault> {
    let len = src.len();
    let header = element(src, 0, len)?;
    if header.id != EBML || header.unknown_size || header.end > len {
        return Err(Fault::NotMedia);
    }
    let mut doc_type = b"matroska".to_vec();
    children(src, &header, |src, e| {
        if e.id == DOC_TYPE {
            doc_type = text(src, e)?;
        }
        Ok(())
    })?;
    let container = match doc_type.as_slice() {
        b"webm" => Container::WebM,
        b"matroska" => Container::Matroska,
        _ => return Err(Fault::NotMedia),
    };
    let mut facts = Facts {
        container,
        timecode_scale: 1_000_000,
        duration: None,
        info_read: false,
        tracks_read: false,
        video: None,
    };
    let mut at = header.end;
    loop {
        let e = element(src, at, len)?;
        if e.id == SEGMENT {
            segment(src, &e, &mut facts)?;
            return assemble(len, facts);
        }
        if e.unknown_size || e.end > len {
            return Err(Fault::Truncated(len));
        }
        at = e.end;
    }
}

/// The Segment's children until `Info` and `Tracks` were read.
fn segment<R: Read + Seek>(
    src: &mut Source<R>,
    seg: &Element,
    facts: &mut Facts,
) -> Result<(), Fault> {
    let mut at = seg.body;
    while at < seg.end && !(facts.info_read && facts.tracks_read) {
        let e = element(src, at, seg.end)?;
        if e.end > seg.end {
            if e.id == CLUSTER {
                break;
            }
            return Err(Fault::Truncated(src.len().min(seg.end)));
        }
        at = match e.id {
            INFO => info(src, &e, facts)?,
            TRACKS => tracks(src, &e, facts)?,
            // A cluster of unknown size: its blocks are stepped through here.
            _ if e.unknown_size => e.body,
            _ => e.end,
        };
    }
    Ok(())
}

fn info<R: Read + Seek>(src: &mut Source<R>, e: &Element, facts: &mut Facts) -> Result<u64, Fault> {
    facts.info_read = true;
    children(src, e, |src, c| {
        match c.id {
            TIMECODE_SCALE => facts.timecode_scale = uint(src, c)?,
            DURATION => facts.duration = Some(float(src, c)?),
            _ => {}
        }
        Ok(())
    })
}

fn tracks<R: Read + Seek>(
    src: &mut Source<R>,
    e: &Element,
    facts: &mut Facts,
) -> Result<u64, Fault> {
    facts.tracks_read = true;
    children(src, e, |src, entry| {
        if entry.id != TRACK_ENTRY || facts.video.is_some() {
            return Ok(());
        }
        let mut kind = 0;
        let mut track = VideoTrack::default();
        children(src, entry, |src, c| {
            match c.id {
                TRACK_TYPE => kind = uint(src, c)?,
                CODEC_ID => track.codec = text(src, c)?,
                DEFAULT_DURATION => track.default_duration = Some(uint(src, c)?),
                VIDEO => {
                    children(src, c, |src, v| {
                        match v.id {
                            PIXEL_WIDTH => track.width = Some(uint(src, v)?),
                            PIXEL_HEIGHT => track.height = Some(uint(src, v)?),
                            _ => {}
                        }
                        Ok(())
                    })?;
                }
                _ => {}
            }
            Ok(())
        })?;
        if kind == 1 {
            facts.video = Some(track);
        }
        Ok(())
    })
}

fn assemble(size_bytes: u64, facts: Facts) -> Result<MediaInfo, Fault> {
    let Some(video) = facts.video else {
        return Err(Fault::NoVideo);
    };
    let side = |v: Option<u64>| {
        v.and_then(|v| u32::try_from(v).ok())
            .ok_or_else(|| bad("the video track states no usable PixelWidth/PixelHeight".into()))
    };
    if facts.timecode_scale == 0 {
        return Err(bad("TimecodeScale is 0".into()));
    }
    let duration = match facts.duration {
        None => None,
        Some(units) => {
            let nanos = units * facts.timecode_scale as f64;
            // Up to about 584 years: what a u64 of nanoseconds holds.
            if !(0.0..1.8e19).contains(&nanos) {
                return Err(bad(format!("Duration {units} is out of range")));
            }
            Some(Duration::from_nanos(nanos.round() as u64))
        }
    };
    Ok(MediaInfo {
        size_bytes,
        duration,
        width: side(video.width)?,
        height: side(video.height)?,
        rotation: Rotation::None,
        frame_rate: video.default_duration.and_then(FrameRate::from_frame_nanos),
        codec: Codec::from_matroska(&video.codec),
        container: facts.container,
    })
}
