//! A tiny MP4 box walk: duration from `moov/mvhd`, size from the first visual `tkhd`,
//! so step 4 can answer like the platform, and ([`probe_track`]) the visual track's codec
//! (`stsd`) and frame rate (`mdhd` + `stts`) for TikTok's media checks. Anything
//! unreadable yields zeros or `None`.

use std::io::{self, Read, Seek, SeekFrom};

/// What step 4 reports about a video.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct VideoInfo {
    pub width: u32,
    pub height: u32,
    /// Seconds.
    pub duration: f64,
}

/// Boxes looked at before giving up, so a hostile file cannot keep us walking.
const MAX_BOXES: usize = 4096;

struct BoxHeader {
    kind: [u8; 4],
    /// Offset of the box's payload.
    body: u64,
    /// Offset just past the box.
    end: u64,
}

fn read_u32<R: Read>(r: &mut R) -> io::Result<u32> {
    let mut b = [0; 4];
    r.read_exact(&mut b)?;
    Ok(u32::from_be_bytes(b))
}

fn read_u64<R: Read>(r: &mut R) -> io::Result<u64> {
    let mut b = [0; 8];
    r.read_exact(&mut b)?;
    Ok(u64::from_be_bytes(b))
}

/// The boxes tiling `[start, end)`.
fn children<R: Read + Seek>(r: &mut R, start: u64, end: u64) -> io::Result<Vec<BoxHeader>> {
    let mut found = Vec::new();
    let mut at = start;
    while at + 8 <= end && found.len() < MAX_BOXES {
        r.seek(SeekFrom::Start(at))?;
        let size32 = read_u32(r)?;
        let mut kind = [0; 4];
        r.read_exact(&mut kind)?;
        let (size, header) = match size32 {
            0 => (end - at, 8),
            1 => (read_u64(r)?, 16),
            n => (u64::from(n), 8),
        };
        if size < header || at + size > end {
            break;
        }
        found.push(BoxHeader {
            kind,
            body: at + header,
            end: at + size,
        });
        at += size;
    }
    Ok(found)
}

fn mvhd_duration<R: Read + Seek>(r: &mut R, b: &BoxHeader) -> io::Result<f64> {
    r.seek(SeekFrom::Start(b.body))?;
    let version = read_u32(r)? >> 24;
    let (timescale, duration) = if version == 1 {
        r.seek(SeekFrom::Current(16))?;
        (read_u32(r)?, read_u64(r)?)
    } else {
        r.seek(SeekFrom::Current(8))?;
        (read_u32(r)?, u64::from(read_u32(r)?))
    };
    Ok(if timescale == 0 {
        0.0
    } else {
        duration as f64 / f64::from(timescale)
    })
}

fn tkhd_size<R: Read + Seek>(r: &mut R, b: &BoxHeader) -> io::Result<(u32, u32)> {
    r.seek(SeekFrom::Start(b.body))?;
    let version = read_u32(r)? >> 24;
    // times, track id, reserved, duration; then reserved(8) layer volume etc.(8) matrix(36)
    let skip = if version == 1 { 32 } else { 20 } + 8 + 8 + 36;
    r.seek(SeekFrom::Current(skip))?;
    Ok((read_u32(r)? >> 16, read_u32(r)? >> 16))
}

/// Duration and size of the MP4 in `r` (of length `len`); zeros for what is not found.
pub fn probe<R: Read + Seek>(r: &mut R, len: u64) -> VideoInfo {
    probe_inner(r, len).unwrap_or_default()
}

fn probe_inner<R: Read + Seek>(r: &mut R, len: u64) -> io::Result<VideoInfo> {
    let mut info = VideoInfo::default();
    let top = children(r, 0, len)?;
    let Some(moov) = top.iter().find(|b| &b.kind == b"moov") else {
        return Ok(info);
    };
    for b in children(r, moov.body, moov.end)? {
        match &b.kind {
            b"mvhd" => info.duration = mvhd_duration(r, &b)?,
            b"trak" if info.width == 0 => {
                for t in children(r, b.body, b.end)? {
                    if &t.kind == b"tkhd" {
                        let (w, h) = tkhd_size(r, &t)?;
                        if w > 0 && h > 0 {
                            (info.width, info.height) = (w, h);
                        }
                    }
                }
            }
            _ => {}
        }
    }
    Ok(info)
}

/// The first visual (`vide`) track's sample entry type and frame rate, where the file
/// says them.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct TrackInfo {
    pub codec: Option<[u8; 4]>,
    pub fps: Option<f64>,
}

/// Most `stts` entries read (a hostile file cannot make us read more).
const MAX_STTS: u32 = 1 << 20;

/// The codec and frame rate of the MP4 in `r` (of length `len`).
pub(crate) fn probe_track<R: Read + Seek>(r: &mut R, len: u64) -> TrackInfo {
    track_inner(r, len).unwrap_or_default()
}

fn child<R: Read + Seek>(
    r: &mut R,
    parent: &BoxHeader,
    kind: &[u8; 4],
) -> io::Result<Option<BoxHeader>> {
    Ok(children(r, parent.body, parent.end)?
        .into_iter()
        .find(|b| &b.kind == kind))
}

fn fourcc_at<R: Read + Seek>(r: &mut R, at: u64) -> io::Result<[u8; 4]> {
    r.seek(SeekFrom::Start(at))?;
    let mut k = [0; 4];
    r.read_exact(&mut k)?;
    Ok(k)
}

fn track_inner<R: Read + Seek>(r: &mut R, len: u64) -> io::Result<TrackInfo> {
    let top = children(r, 0, len)?;
    let Some(moov) = top.iter().find(|b| &b.kind == b"moov") else {
        return Ok(TrackInfo::default());
    };
    for trak in children(r, moov.body, moov.end)?
        .iter()
        .filter(|b| &b.kind == b"trak")
    {
        let Some(mdia) = child(r, trak, b"mdia")? else {
            continue;
        };
        let Some(hdlr) = child(r, &mdia, b"hdlr")? else {
            continue;
        };
        if &fourcc_at(r, hdlr.body + 8)? != b"vide" {
            continue;
        }
        let timescale = match child(r, &mdia, b"mdhd")? {
            Some(m) => {
                r.seek(SeekFrom::Start(m.body))?;
                let skip = if read_u32(r)? >> 24 == 1 { 16 } else { 8 };
                r.seek(SeekFrom::Current(skip))?;
                read_u32(r)?
            }
            None => 0,
        };
        let stbl = match child(r, &mdia, b"minf")? {
            Some(minf) => child(r, &minf, b"stbl")?,
            None => None,
        };
        let Some(stbl) = stbl else {
            return Ok(TrackInfo::default());
        };
        let codec = match child(r, &stbl, b"stsd")? {
            Some(stsd) if stsd.end >= stsd.body + 16 => Some(fourcc_at(r, stsd.body + 12)?),
            _ => None,
        };
        let fps = match child(r, &stbl, b"stts")? {
            Some(stts) => stts_fps(r, &stts, timescale)?,
            None => None,
        };
        return Ok(TrackInfo { codec, fps });
    }
    Ok(TrackInfo::default())
}

/// Samples per second from a `stts` box and the track's timescale.
fn stts_fps<R: Read + Seek>(
    r: &mut R,
    stts: &BoxHeader,
    timescale: u32,
) -> io::Result<Option<f64>> {
    r.seek(SeekFrom::Start(stts.body + 4))?;
    let fits = (stts.end.saturating_sub(stts.body + 8) / 8).min(u64::from(MAX_STTS));
    let entries = u64::from(read_u32(r)?).min(fits);
    let (mut samples, mut ticks) = (0u64, 0u64);
    for _ in 0..entries {
        let count = u64::from(read_u32(r)?);
        let delta = u64::from(read_u32(r)?);
        samples = samples.saturating_add(count);
        ticks = ticks.saturating_add(count.saturating_mul(delta));
    }
    Ok((ticks > 0 && timescale > 0).then(|| samples as f64 * f64::from(timescale) / ticks as f64))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::io::Cursor;

    fn mp4_box(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let mut v = u32::try_from(body.len() + 8)
            .expect("small box")
            .to_be_bytes()
            .to_vec();
        v.extend_from_slice(kind);
        v.extend_from_slice(body);
        v
    }

    /// A minimal MP4: ftyp, moov(mvhd v0, trak(tkhd v0)), mdat with `payload`.
    pub(crate) fn tiny_mp4(
        timescale: u32,
        duration: u32,
        w: u32,
        h: u32,
        payload: &[u8],
    ) -> Vec<u8> {
        let mut mvhd = vec![0; 4 + 8];
        mvhd.extend_from_slice(&timescale.to_be_bytes());
        mvhd.extend_from_slice(&duration.to_be_bytes());
        mvhd.extend_from_slice(&[0; 80]);
        let mut tkhd = vec![0; 4 + 20 + 8 + 8 + 36];
        tkhd.extend_from_slice(&(w << 16).to_be_bytes());
        tkhd.extend_from_slice(&(h << 16).to_be_bytes());
        let trak = mp4_box(b"trak", &mp4_box(b"tkhd", &tkhd));
        let mut moov_body = mp4_box(b"mvhd", &mvhd);
        moov_body.extend(trak);
        let mut file = mp4_box(b"ftyp", b"isom\0\0\x02\0isomiso2mp41");
        file.extend(mp4_box(b"moov", &moov_body));
        file.extend(mp4_box(b"mdat", payload));
        file
    }

    #[test]
    fn reads_duration_and_size() {
        let file = tiny_mp4(1000, 12_500, 1080, 1920, b"frames");
        let info = probe(&mut Cursor::new(&file), file.len() as u64);
        assert_eq!(
            info,
            VideoInfo {
                width: 1080,
                height: 1920,
                duration: 12.5
            }
        );
    }

    #[test]
    fn reads_codec_and_frame_rate_of_a_real_clip() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/media/clip.mp4");
        let file = std::fs::read(path).expect("the example clip");
        let t = probe_track(&mut Cursor::new(&file), file.len() as u64);
        assert_eq!(t.codec, Some(*b"avc1"));
        let fps = t.fps.expect("a frame rate");
        assert!((fps - 30.0).abs() < 0.01, "{fps}");
        let tiny = tiny_mp4(1000, 5000, 1, 1, b"x");
        assert_eq!(
            probe_track(&mut Cursor::new(&tiny), tiny.len() as u64),
            TrackInfo::default()
        );
    }

    #[test]
    fn garbage_yields_zeros() {
        let junk = b"definitely not an mp4 file at all".to_vec();
        let info = probe(&mut Cursor::new(&junk), junk.len() as u64);
        assert_eq!(info, VideoInfo::default());
        let truncated = &tiny_mp4(1000, 5000, 1, 1, b"x")[..40];
        let info = probe(&mut Cursor::new(truncated), truncated.len() as u64);
        assert_eq!(info, VideoInfo::default());
    }
}
