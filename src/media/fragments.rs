//! A fragmented MP4's frames: every top-level `moof` is read (`traf` → `tfhd`, `trun`) for
//! the video track's frame durations; the `mdat` between them is seeked past. Each
//! fragment costs a few small reads, within the probe's step and byte budget.

use std::io::{Read, Seek};

use super::Fault;
use super::mp4::{BoxHeader, each_child, header};
use super::source::Source;
use super::tally::Tally;

/// `tfhd` flag: a default frame duration follows.
const DEFAULT_DURATION: u32 = 0x08;
/// `trun` flags: a data offset, a first-sample-flags field, then per sample these fields.
const DATA_OFFSET: u32 = 0x01;
const FIRST_FLAGS: u32 = 0x04;
const SAMPLE_DURATION: u32 = 0x100;
const SAMPLE_FIELDS: u32 = 0xf00;

/// Adds the frames of track `track_id` in every fragment to `tally`; `trex_default` is the
/// frame duration where a fragment states none.
pub(super) fn add<R: Read + Seek>(
    src: &mut Source<R>,
    track_id: u32,
    trex_default: u32,
    tally: &mut Tally,
) -> Result<(), Fault> {
    let len = src.len();
    let mut at = 0;
    while len.saturating_sub(at) >= 8 {
        let b = header(src, at, len)?;
        if b.end > len {
            break;
        }
        if &b.kind == b"moof" {
            each_child(src, &b, |src, traf| match &traf.kind {
                b"traf" => track_fragment(src, traf, track_id, trex_default, tally),
                _ => Ok(()),
            })?;
        }
        at = b.end;
    }
    Ok(())
}

fn track_fragment<R: Read + Seek>(
    src: &mut Source<R>,
    traf: &BoxHeader,
    track_id: u32,
    trex_default: u32,
    tally: &mut Tally,
) -> Result<(), Fault> {
    // `tfhd` comes first (ISO 14496-12 8.8.6); a `trun` before it is nobody's.
    let mut ours = false;
    let mut default = trex_default;
    each_child(src, traf, |src, b| {
        match &b.kind {
            b"tfhd" => {
                b.need(8)?;
                let flags = src.u32()? & 0xff_ffff;
                ours = src.u32()? == track_id;
                if flags & DEFAULT_DURATION != 0 {
                    // Optional fields before it: base data offset (0x01), sample
                    // description index (0x02).
                    let skip = 8 * u64::from(flags & 0x01) + 4 * u64::from((flags >> 1) & 1);
                    b.need(12 + skip)?;
                    src.skip(skip);
                    default = src.u32()?;
                }
            }
            b"trun" if ours => track_run(src, b, default, tally)?,
            _ => {}
        }
        Ok(())
    })
}

/// `trun`: its frames' durations, each or all at `default`.
fn track_run<R: Read + Seek>(
    src: &mut Source<R>,
    b: &BoxHeader,
    default: u32,
    tally: &mut Tally,
) -> Result<(), Fault> {
    b.need(8)?;
    let flags = src.u32()? & 0xff_ffff;
    let count = src.u32()?;
    let head = 8 + 4 * u64::from(flags & DATA_OFFSET) + 4 * u64::from((flags & FIRST_FLAGS) >> 2);
    let per_sample = 4 * u64::from((flags & SAMPLE_FIELDS).count_ones());
    b.need(head + u64::from(count) * per_sample)?;
    if flags & SAMPLE_DURATION == 0 {
        tally.add(count, default);
        return Ok(());
    }
    src.seek(b.body + head);
    for _ in 0..count {
        let duration = src.u32()?;
        src.skip(per_sample - 4);
        tally.add(1, duration);
    }
    Ok(())
}
