//! MP4 and QuickTime (ISO base media): the top-level boxes are walked by their headers
//! (`mdat` is seeked past wherever it lies, 64-bit and to-the-end sizes included), then
//! `moov` is read: `mvhd` for the duration, the first `trak` whose `hdlr` is `vide` for its
//! `tkhd` (shown size, rotation matrix), `mdhd` (timescale), `stsd` (codec) and `stts`
//! (frame durations). A fragmented file (`mvex`) adds its `moof` fragments (`fragments`).

use std::io::{Read, Seek};
use std::time::Duration;

use super::info::{Codec, Container, MediaInfo, Rotation};
use super::source::Source;
use super::tally::Tally;
use super::{Fault, fragments};

/// One box: its type, where its payload starts and where it ends.
#[derive(Clone, Copy)]
pub(super) struct BoxHeader {
    pub(super) kind: [u8; 4],
    pub(super) at: u64,
    pub(super) body: u64,
    pub(super) end: u64,
}

impl BoxHeader {
    fn body_len(&self) -> u64 {
        self.end - self.body
    }

    /// A payload shorter than `n` bytes is damage, named by the box.
    pub(super) fn need(&self, n: u64) -> Result<(), Fault> {
        match self.body_len() >= n {
            true => Ok(()),
            false => Err(Fault::Malformed(format!(
                "box `{}` at byte {} is too short",
                name(self.kind),
                self.at
            ))),
        }
    }
}

/// The four-character code as text (non-printable bytes as `?`).
pub(super) fn name(kind: [u8; 4]) -> String {
    kind.iter()
        .map(|&b| {
            if b.is_ascii_graphic() || b == b' ' {
                b as char
            } else {
                '?'
            }
        })
        .collect()
}

/// The header of the box at `at` (which must leave at least 8 bytes before
/// `parent_end`). Size 1 means a 64-bit size follows; size 0, "to the end of the parent".
/// The box may end past `parent_end`: the caller decides what that means.
pub(super) fn header<R: Read + Seek>(
    src: &mut Source<R>,
    at: u64,
    parent_end: u64,
) -> Result<BoxHeader, Fault> {
    src.step()?;
    src.seek(at);
    let size = src.u32()?;
    let kind = src.array::<4>()?;
    let bad = |what: &str| Fault::Malformed(format!("box `{}` at byte {at} {what}", name(kind)));
    let (body, end) = match size {
        0 => (at + 8, parent_end),
        1 => {
            let large = src.u64()?;
            if large < 16 {
                return Err(bad("has an impossible 64-bit size"));
            }
            (
                at + 16,
                at.checked_add(large).ok_or_else(|| bad("is too big"))?,
            )
        }
        2..=7 => return Err(bad("has an impossible size")),
        n => (at + 8, at + u64::from(n)),
    };
    if body > end {
        return Err(bad("is shorter than its header"));
    }
    Ok(BoxHeader {
        kind,
        at,
        body,
        end,
    })
}

/// Calls `f` on each child box of `parent`, in order. A child running past its parent is
/// damage; a tail shorter than a header (QuickTime's 4-byte terminators) is ignored.
pub(super) fn each_child<R: Read + Seek>(
    src: &mut Source<R>,
    parent: &BoxHeader,
    mut f: impl FnMut(&mut Source<R>, &BoxHeader) -> Result<(), Fault>,
) -> Result<(), Fault> {
    let mut at = parent.body;
    while parent.end.saturating_sub(at) >= 8 {
        let child = header(src, at, parent.end)?;
        if child.end > parent.end {
            return Err(Fault::Malformed(format!(
                "box `{}` at byte {at} runs past the end of its parent `{}`",
                name(child.kind),
                name(parent.kind)
            )));
        }
        f(src, &child)?;
        at = child.end;
    }
    Ok(())
}

/// Reads the facts of an ISO base media file.
pub(super) fn read<R: Read + Seek>(src: &mut Source<R>) -> Result<MediaInfo, Fault> {
    let top = walk_top(src)?;
    let Some(moov) = top.moov else {
        return Err(Fault::NoMoov);
    };
    let mut movie = Movie::default();
    each_child(src, &moov, |src, b| movie.child(src, b))?;
    let Some(mut video) = movie.video.take() else {
        return Err(Fault::NoVideo);
    };
    if movie.fragmented {
        let default = movie.trex.iter().find(|(id, _)| *id == video.id);
        let default = default.map_or(0, |(_, d)| *d);
        fragments::add(src, video.id, default, &mut video.tally)?;
    }
    assemble(src.len(), top.container, &movie, video)
}

/// What the top level holds up to the first `moov`: the container brand and that `moov`.
struct Top {
    container: Container,
    moov: Option<BoxHeader>,
}

fn walk_top<R: Read + Seek>(src: &mut Source<R>) -> Result<Top, Fault> {
    let len = src.len();
    let mut top = Top {
        container: Container::QuickTime,
        moov: None,
    };
    let mut at = 0;
    while len.saturating_sub(at) >= 8 {
        let b = header(src, at, len)?;
        if b.end > len {
            // Cut short. A cut `moov` is unreadable; a cut payload after it is no concern
            // of the facts (watch::media refuses unfinished files).
            if &b.kind == b"moov" {
                return Err(Fault::Truncated(len));
            }
            break;
        }
        match &b.kind {
            b"ftyp" if at == 0 => {
                b.need(4)?;
                top.container = match &src.array::<4>()? {
                    b"qt  " => Container::QuickTime,
                    _ => Container::Mp4,
                };
            }
            // What follows (`mdat`, fragments) is no concern of this walk.
            b"moov" => {
                top.moov = Some(b);
                break;
            }
            _ => {}
        }
        at = b.end;
    }
    Ok(top)
}

/// What `moov` says.
#[derive(Default)]
struct Movie {
    timescale: u32,
    /// In `timescale` ticks; `None` when `mvhd` says unknown.
    duration: Option<u64>,
    fragmented: bool,
    /// `mehd`: the whole fragmented movie's duration, in `timescale` ticks.
    fragment_duration: Option<u64>,
    /// `trex`: (track id, default frame duration), the first few.
    trex: Vec<(u32, u32)>,
    video: Option<Track>,
}

/// Tracks' defaults kept, at most (one per track; files have a handful).
const MAX_TREX: usize = 64;

impl Movie {
    fn child<R: Read + Seek>(&mut self, src: &mut Source<R>, b: &BoxHeader) -> Result<(), Fault> {
        match &b.kind {
            b"mvhd" => (self.timescale, self.duration) = times(src, b)?,
            b"trak" if self.video.is_none() => {
                let track = track(src, b)?;
                if &track.handler == b"vide" {
                    self.video = Some(track);
                }
            }
            b"mvex" => {
                self.fragmented = true;
                each_child(src, b, |src, c| self.mvex_child(src, c))?;
            }
            _ => {}
        }
        Ok(())
    }

    fn mvex_child<R: Read + Seek>(
        &mut self,
        src: &mut Source<R>,
        b: &BoxHeader,
    ) -> Result<(), Fault> {
        match &b.kind {
            b"mehd" => {
                b.need(4)?;
                let version = src.u8()?;
                src.skip(3);
                let ticks = if version == 1 {
                    b.need(12)?;
                    src.u64()?
                } else {
                    b.need(8)?;
                    u64::from(src.u32()?)
                };
                self.fragment_duration = (ticks > 0).then_some(ticks);
            }
            b"trex" if self.trex.len() < MAX_TREX => {
                b.need(16)?;
                src.skip(4);
                let id = src.u32()?;
                src.skip(4);
                self.trex.push((id, src.u32()?));
            }
            _ => {}
        }
        Ok(())
    }
}

/// `mvhd` or `mdhd`: (timescale, duration in its ticks, `None` when unknown).
fn times<R: Read + Seek>(src: &mut Source<R>, b: &BoxHeader) -> Result<(u32, Option<u64>), Fault> {
    b.need(4)?;
    let version = src.u8()?;
    src.skip(3);
    let (timescale, duration) = if version == 1 {
        b.need(32)?;
        src.skip(16);
        let ts = src.u32()?;
        (ts, Some(src.u64()?).filter(|&d| d != u64::MAX))
    } else {
        b.need(20)?;
        src.skip(8);
        let ts = src.u32()?;
        (
            ts,
            Some(u64::from(src.u32()?)).filter(|&d| d != u64::from(u32::MAX)),
        )
    };
    Ok((timescale, duration))
}

/// What one `trak` says.
#[derive(Default)]
pub(super) struct Track {
    pub(super) id: u32,
    handler: [u8; 4],
    /// `tkhd`, whole pixels.
    width: u32,
    height: u32,
    rotation: Rotation,
    timescale: u32,
    media_duration: Option<u64>,
    /// The first sample entry's code, and the coded size it states.
    fourcc: Option<[u8; 4]>,
    coded: (u16, u16),
    pub(super) tally: Tally,
}

fn track<R: Read + Seek>(src: &mut Source<R>, trak: &BoxHeader) -> Result<Track, Fault> {
    let mut t = Track::default();
    each_child(src, trak, |src, b| match &b.kind {
        b"tkhd" => tkhd(src, b, &mut t),
        b"mdia" => each_child(src, b, |src, b| match &b.kind {
            b"mdhd" => {
                (t.timescale, t.media_duration) = times(src, b)?;
                Ok(())
            }
            b"hdlr" => {
                b.need(12)?;
                src.skip(8);
                t.handler = src.array()?;
                Ok(())
            }
            b"minf" => each_child(src, b, |src, b| match &b.kind {
                b"stbl" => each_child(src, b, |src, b| sample_table(src, b, &mut t)),
                _ => Ok(()),
            }),
            _ => Ok(()),
        }),
        _ => Ok(()),
    })?;
    Ok(t)
}

/// `tkhd`: track id, matrix, and the shown size (16.16 fixed point) before the matrix.
fn tkhd<R: Read + Seek>(src: &mut Source<R>, b: &BoxHeader, t: &mut Track) -> Result<(), Fault> {
    b.need(4)?;
    let version = src.u8()?;
    src.skip(3);
    if version == 1 {
        b.need(96)?;
        src.skip(16);
        t.id = src.u32()?;
        src.skip(12);
    } else {
        b.need(84)?;
        src.skip(8);
        t.id = src.u32()?;
        src.skip(8);
    }
    src.skip(16);
    let mut matrix = [0i32; 9];
    for m in &mut matrix {
        *m = src.u32()? as i32;
    }
    t.rotation = rotation(&matrix);
    t.width = fixed_16_16(src.u32()?);
    t.height = fixed_16_16(src.u32()?);
    Ok(())
}

/// 16.16 fixed point to whole pixels, rounded.
fn fixed_16_16(v: u32) -> u32 {
    ((u64::from(v) + 0x8000) >> 16) as u32
}

/// The right-angle turn a `tkhd` matrix `[a b u; c d v; x y w]` makes, clockwise as
/// shown: (0, 1, -1, 0) is a phone's portrait recording, 90° (ffprobe: "rotation of -90
/// degrees", counter-clockwise). A matrix that is not a right angle (a skew, a mirror)
/// counts as none: the picture is not turned on its side.
fn rotation(m: &[i32; 9]) -> Rotation {
    let (a, b, c, d) = (m[0], m[1], m[3], m[4]);
    match (a.signum(), b.signum(), c.signum(), d.signum()) {
        (0, 1, -1, 0) => Rotation::Cw90,
        (-1, 0, 0, -1) => Rotation::Cw180,
        (0, -1, 1, 0) => Rotation::Cw270,
        _ => Rotation::None,
    }
}

/// `stbl` children: `stsd` (first sample entry) and `stts` (frame durations).
fn sample_table<R: Read + Seek>(
    src: &mut Source<R>,
    b: &BoxHeader,
    t: &mut Track,
) -> Result<(), Fault> {
    match &b.kind {
        b"stsd" => {
            b.need(8)?;
            src.skip(4);
            if src.u32()? == 0 || b.body_len() < 16 {
                return Ok(());
            }
            let entry = header(src, b.body + 8, b.end)?;
            if entry.end > b.end {
                return Err(Fault::Malformed(
                    "the first sample entry runs past `stsd`".into(),
                ));
            }
            t.fourcc = Some(entry.kind);
            // A visual sample entry: 24 bytes of fields, then width and height.
            if entry.body_len() >= 28 {
                src.seek(entry.body + 24);
                t.coded = (src.u16()?, src.u16()?);
            }
        }
        b"stts" => {
            b.need(8)?;
            src.skip(4);
            let count = u64::from(src.u32()?);
            if count * 8 > b.body_len() - 8 {
                return Err(Fault::Malformed(
                    "`stts` lists more entries than it holds".into(),
                ));
            }
            for _ in 0..count {
                let frames = src.u32()?;
                t.tally.add(frames, src.u32()?);
            }
        }
        _ => {}
    }
    Ok(())
}

/// The facts from what `moov` (and the fragments) said.
fn assemble(
    size_bytes: u64,
    container: Container,
    movie: &Movie,
    video: Track,
) -> Result<MediaInfo, Fault> {
    let Some(fourcc) = video.fourcc else {
        return Err(Fault::Malformed(
            "the video track has no sample description".into(),
        ));
    };
    let (mut width, mut height) = match (video.width, video.height) {
        (0, _) | (_, 0) => (u32::from(video.coded.0), u32::from(video.coded.1)),
        size => size,
    };
    if video.rotation.swaps_sides() {
        (width, height) = (height, width);
    }
    Ok(MediaInfo {
        size_bytes,
        duration: duration(movie, &video),
        width,
        height,
        rotation: video.rotation,
        frame_rate: video.tally.rate(video.timescale),
        codec: Codec::from_fourcc(fourcc),
        container,
    })
}

/// `mvhd`'s duration; for a fragmented file `mehd`'s, else the frames' own sum (the
/// sample table and every fragment); `None` when nothing says.
fn duration(movie: &Movie, video: &Track) -> Option<Duration> {
    let movie_time = |ticks: Option<u64>| {
        ticks
            .filter(|&t| t > 0)
            .map(|t| (u128::from(t), movie.timescale))
    };
    let frames = (video.tally.ticks > 0).then_some((video.tally.ticks, video.timescale));
    let media = video
        .media_duration
        .filter(|&t| t > 0)
        .map(|t| (u128::from(t), video.timescale));
    let (ticks, timescale) = match movie.fragmented {
        true => movie_time(movie.fragment_duration)
            .or(frames)
            .or(movie_time(movie.duration)),
        false => movie_time(movie.duration).or(media).or(frames),
    }?;
    if timescale == 0 {
        return None;
    }
    let nanos = ticks.saturating_mul(1_000_000_000) / u128::from(timescale);
    Some(Duration::from_nanos(
        u64::try_from(nanos).unwrap_or(u64::MAX),
    ))
}
