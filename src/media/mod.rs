//! A video's facts (duration, shown size, frame rate, codec, container, size) read from the
//! file itself, streamed: only headers are read and payloads (`mdat`, clusters) are seeked
//! past, so a probe of a multi-gigabyte file costs a few small reads. Every target platform
//! checks these against its limits before a byte is sent; `dropcast validate VIDEO` prints
//! them.
//!
//! The reader is picked from the file's first bytes, never its name: `mp4` for ISO base
//! media (MP4, MOV, M4V), `webm` for EBML (WebM, Matroska). Both walk through `source`,
//! which bounds the steps and bytes of one probe, so a hostile file cannot make it loop or
//! read without end. (`sandbox::mp4` is the simulator's own reader and shares nothing.)

mod fragments;
mod info;
pub mod limits;
mod mp4;
mod source;
mod tally;
mod webm;

use std::fs::File;
use std::io::{self, Read, Seek};
use std::path::{Path, PathBuf};

pub use info::{Codec, Container, FrameRate, MediaInfo, Rotation, humane_duration, humane_size};

use source::Source;

/// Why a video's facts cannot be read; names the file.
#[derive(Debug, thiserror::Error)]
#[error("{}: {kind}", path.display())]
pub struct MediaError {
    pub path: PathBuf,
    pub kind: MediaErrorKind,
}

/// What is wrong with the file. Only `Io` may pass (a disk or permission problem); every
/// other kind is the file's own and stays until the file changes.
#[derive(Debug, thiserror::Error)]
pub enum MediaErrorKind {
    #[error("cannot read it: {0}")]
    Io(#[source] io::Error),
    #[error("not an MP4 or WebM file")]
    NotMedia,
    #[error("moov box missing: the export may be unfinished")]
    NoMoov,
    #[error("no video track")]
    NoVideo,
    /// A header runs past the end of the file (at this offset).
    #[error("the file ends inside its headers (at byte {0}): the export may be unfinished")]
    Truncated(u64),
    #[error("damaged: {0}")]
    Malformed(String),
    #[error("too complex to read safely ({0})")]
    TooComplex(&'static str),
}

impl MediaErrorKind {
    /// True when reading failed (missing file, permissions, a disk error) rather than the
    /// file being what it is: only this may go away by trying again.
    pub fn is_io(&self) -> bool {
        matches!(self, MediaErrorKind::Io(_))
    }
}

pub(crate) use MediaErrorKind as Fault;

/// The container family the first bytes announce.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Family {
    IsoBmff,
    Ebml,
}

/// Box types an ISO base media file starts with (ftyp first in MP4; old QuickTime files
/// start with any of their top-level atoms).
const FIRST_BOXES: &[&[u8; 4]] = &[
    b"ftyp", b"moov", b"mdat", b"free", b"skip", b"wide", b"pnot", b"styp", b"uuid",
];

const EBML_MAGIC: [u8; 4] = [0x1a, 0x45, 0xdf, 0xa3];

fn sniff(head: &[u8]) -> Option<Family> {
    if head.starts_with(&EBML_MAGIC) {
        return Some(Family::Ebml);
    }
    let kind: &[u8; 4] = head.get(4..8)?.try_into().ok()?;
    FIRST_BOXES.contains(&kind).then_some(Family::IsoBmff)
}

/// True when the file's first bytes are those of an MP4/MOV or WebM/Matroska file (a
/// quick look for callers choosing what a path is; [`probe`] says what is wrong).
pub fn looks_like_media(path: &Path) -> bool {
    let Ok(mut file) = crate::userfile::open_regular(path) else {
        return false;
    };
    let mut head = [0; 8];
    file.read_exact(&mut head).is_ok() && sniff(&head).is_some()
}

/// Reads the facts of the video at `path` (a regular file; a FIFO is refused, not waited
/// on).
pub fn probe(path: &Path) -> Result<MediaInfo, MediaError> {
    let error = |kind| MediaError {
        path: path.to_owned(),
        kind,
    };
    let file: File = crate::userfile::open_regular(path).map_err(|e| error(Fault::Io(e)))?;
    let len = file.metadata().map_err(|e| error(Fault::Io(e)))?.len();
    probe_reader(file, len, path)
}

/// [`probe`] over an open file (or any reader) of length `len`; `path` names it in errors.
/// The reader's position is moved.
pub fn probe_reader<R: Read + Seek>(
    reader: R,
    len: u64,
    path: &Path,
) -> Result<MediaInfo, MediaError> {
    read(&mut Source::new(reader, len)).map_err(|kind| MediaError {
        path: path.to_owned(),
        kind,
    })
}

fn read<R: Read + Seek>(src: &mut Source<R>) -> Result<MediaInfo, Fault> {
    let mut head = [0; 8];
    let n = src.remaining().min(8) as usize;
    src.read_exact(&mut head[..n])?;
    src.seek(0);
    match sniff(&head[..n]) {
        Some(Family::IsoBmff) => mp4::read(src),
        Some(Family::Ebml) => webm::read(src),
        None => Err(Fault::NotMedia),
    }
}

#[cfg(test)]
mod tests;
