//! Whether a quiet video file is also a *finished* one, judged from its container
//! (README "Folder rules"): MP4/MOV/M4V must be a walk of top-level boxes that tiles the file
//! exactly and holds `moov` (and `mdat`); WebM must start with the EBML magic.
//!
//! Only box headers are read (8 or 16 bytes each, with seeks in between), never payloads,
//! so checking a multi-gigabyte export costs a handful of small reads. The verdicts:
//!
//! - [`Completeness::Complete`]: the boxes end exactly at the end of the file, and `moov`
//!   and `mdat` were among them.
//! - [`Completeness::Incomplete`]: everything seen so far is consistent, but the last box
//!   runs past the end, the file ends inside a box header, or `moov`/`mdat` is missing.
//!   The writer may still be busy (exports often write `moov` last), so the caller waits.
//! - [`Completeness::NotAVideo`]: no amount of waiting helps: the file is empty, the first
//!   box is no ISO-BMFF box (a text file renamed `.mp4`), or a header is impossible.
//!
//! Known limit: a file cut exactly at a box boundary after both `moov` and an `mdat` tiles
//! and looks complete (a fragmented MP4 cut between `moof`+`mdat` pairs, or a file losing a
//! trailing `free`/`udta`/`mfra`). Writers put `moov` or `mdat` last, so this takes a
//! writer that pauses at exactly such a boundary; the settle period is the guard there,
//! as for WebM.

use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::Path;

/// What a settled video's content says about whether it is finished.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Completeness {
    /// Good to bundle and hash.
    Complete,
    /// Quiet but not finished (e.g. no `moov` yet): keep waiting, up to
    /// `watch.incomplete_timeout` after its last change.
    Incomplete { reason: String },
    /// Cannot become a video: fail it at once with this reason.
    NotAVideo { reason: String },
}

/// The container family of a video file, as far as completeness checks care.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Container {
    /// ISO base media file format: MP4, MOV (QuickTime), M4V, 3GP. [`check`] also walks a
    /// file with another extension when its first box is a known ISO-BMFF box.
    IsoBmff,
    /// WebM (and Matroska, which shares the EBML header).
    WebM,
    /// Anything else: only settling applies.
    Unknown,
}

/// The container a path names, by its extension (case-insensitive).
pub(crate) fn container_for(path: &Path) -> Container {
    let Some(ext) = path.extension().and_then(|e| e.to_str()) else {
        return Container::Unknown;
    };
    match ext.to_ascii_lowercase().as_str() {
        "mp4" | "m4v" | "mov" | "qt" | "3gp" | "3g2" => Container::IsoBmff,
        "webm" | "mkv" => Container::WebM,
        _ => Container::Unknown,
    }
}

/// Decides whether the video at `path`, whose settled size is `size`, is finished.
///
/// `size` is the size the file settled with; the walk never looks past it. If the file
/// turns out shorter than `size` (it changed under us), the verdict is `Incomplete`.
/// One open, a small buffered reader; errors are only real I/O errors (e.g. the file
/// vanished or cannot be read).
pub fn check(path: &Path, size: u64) -> io::Result<Completeness> {
    if size == 0 {
        return Ok(not_a_video("the file is empty (0 bytes)".into()));
    }
    // A FIFO swapped in under a video's name must not block the agent's loop.
    let file = crate::userfile::open_regular(path)?;
    check_reader(container_for(path), file, size)
}

/// More top-level boxes than any real video has; beyond this the walk gives up rather
/// than spend unbounded time on a hostile or broken file.
const MAX_BOXES: usize = 100_000;

/// Top-level box types a file may plausibly *start* with (ISO/IEC 14496-12 and the
/// QuickTime format: old `.mov` files may start with `wide`, `mdat`, `free` or `pnot`).
const KNOWN_TOP_LEVEL: [&[u8; 4]; 20] = [
    b"ftyp", b"styp", b"moov", b"mdat", b"imda", b"free", b"skip", b"wide", b"uuid", b"pnot",
    b"meta", b"moof", b"mfra", b"sidx", b"ssix", b"pdin", b"prft", b"emsg", b"meco", b"bloc",
];

/// The EBML magic every WebM/Matroska file starts with.
const EBML_MAGIC: [u8; 4] = [0x1A, 0x45, 0xDF, 0xA3];

/// Largest offset a file can have (`off_t` is signed 64-bit).
const MAX_OFFSET: u64 = i64::MAX as u64;

fn check_reader<R: Read + Seek>(
    container: Container,
    inner: R,
    size: u64,
) -> io::Result<Completeness> {
    if size == 0 {
        return Ok(not_a_video("the file is empty (0 bytes)".into()));
    }
    let mut r = Reader::new(inner, size);
    match container {
        Container::IsoBmff => walk_boxes(&mut r),
        Container::WebM => check_webm(&mut r),
        Container::Unknown => {
            // An unfamiliar extension still gets the box walk when the file plainly is
            // ISO-BMFF; anything else has only the settle period to go by.
            let mut head = [0u8; 8];
            let got = r.read_at(0, &mut head)?;
            if got == 8 && is_known_top_level(&head[4..8]) {
                walk_boxes(&mut r)
            } else {
                Ok(Completeness::Complete)
            }
        }
    }
}

/// Walks the top-level boxes from offset 0 to `r.size`.
fn walk_boxes<R: Read + Seek>(r: &mut Reader<R>) -> io::Result<Completeness> {
    let size = r.size;
    let mut pos = 0u64;
    let mut boxes = 0usize;
    let mut seen_moov = false;
    let mut seen_mdat = false;
    loop {
        if pos == size {
            return Ok(tiled(seen_moov, seen_mdat));
        }
        if boxes == MAX_BOXES {
            return Ok(not_a_video(format!(
                "more than {MAX_BOXES} top-level boxes; no video has that many"
            )));
        }
        let first = boxes == 0;
        boxes += 1;

        let mut head = [0u8; 8];
        let got = r.read_at(pos, &mut head)?;
        if got < head.len() && pos + (got as u64) < size {
            return Ok(shrank());
        }
        if let Some(verdict) = judge_header(first, pos, &head[..got]) {
            return Ok(verdict);
        }
        if got < head.len() {
            return Ok(incomplete(format!(
                "the file ends inside the header of the box at offset {pos} ({got} of 8 bytes)"
            )));
        }
        let declared = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
        let kind = [head[4], head[5], head[6], head[7]];
        let name = show(&kind);

        let len = match declared {
            // "Extends to the end of the file": only ever the last box.
            0 => size - pos,
            1 => {
                let mut large = [0u8; 8];
                let got = r.read_at(pos + 8, &mut large)?;
                if got < large.len() {
                    if pos + 8 + (got as u64) < size {
                        return Ok(shrank());
                    }
                    return Ok(incomplete(format!(
                        "the file ends inside the 64-bit header of box `{name}` at offset {pos} \
                         ({} of 16 bytes)",
                        8 + got
                    )));
                }
                let large = u64::from_be_bytes(large);
                if large == 0 {
                    // A recorder that reserved the field and fills it in when it stops:
                    // waiting is safer than failing (incomplete_timeout still ends it).
                    return Ok(incomplete(format!(
                        "box `{name}` at offset {pos} has a 64-bit size not filled in yet"
                    )));
                }
                if large < 16 {
                    return Ok(not_a_video(format!(
                        "box `{name}` at offset {pos} declares a 64-bit size of {large} bytes, \
                         less than its own 16-byte header"
                    )));
                }
                large
            }
            // Sizes 2..=7 were refused by `judge_header`.
            n => u64::from(n),
        };
        let end = match pos.checked_add(len) {
            Some(end) if end <= MAX_OFFSET => end,
            _ => {
                return Ok(not_a_video(format!(
                    "box `{name}` at offset {pos} declares {len} bytes, more than any file can hold"
                )));
            }
        };
        match &kind {
            b"moov" => seen_moov = true,
            b"mdat" | b"imda" => seen_mdat = true,
            _ => {}
        }
        if end > size {
            return Ok(incomplete(format!(
                "box `{name}` at offset {pos} runs {} bytes past the end of the file",
                end - size
            )));
        }
        pos = end;
    }
}

/// The verdict for a walk that ended exactly at the end of the file.
fn tiled(seen_moov: bool, seen_mdat: bool) -> Completeness {
    if !seen_moov {
        incomplete("no `moov` box yet".into())
    } else if !seen_mdat {
        // A faststart file cut right after `moov` tiles exactly; without media data it
        // cannot be a finished upload either way.
        incomplete("no `mdat` box yet (`moov` is there but no media data)".into())
    } else {
        Completeness::Complete
    }
}

/// Judges a box header from the bytes present (all 8, or fewer when the file ends inside
/// it): `Some` verdict when it settles the question, `None` when the header is plausible.
fn judge_header(first: bool, pos: u64, head: &[u8]) -> Option<Completeness> {
    // Zeros where a header belongs: space allocated up front (some copy tools and
    // recorders preallocate) and not written yet. Waiting may help; the incomplete
    // timeout ends it if not.
    if head.iter().all(|&b| b == 0) {
        return Some(incomplete(format!(
            "zeros where the box header at offset {pos} should be (not written yet?)"
        )));
    }
    let kind = head.get(4..).unwrap_or_default();
    if first {
        if !KNOWN_TOP_LEVEL.iter().any(|k| k.starts_with(kind)) {
            let hint = if head.starts_with(&EBML_MAGIC) {
                "; it looks like WebM/Matroska"
            } else {
                ""
            };
            return Some(not_a_video(format!(
                "first box type is not an MP4 box (the file starts with \"{}\"){hint}",
                show(head)
            )));
        }
    } else if !kind.iter().all(|&b| is_printable(b)) {
        return Some(not_a_video(format!(
            "the box at offset {pos} has no valid type (\"{}\"); the file is damaged",
            show(kind)
        )));
    }
    if let Some(declared) = head.get(..4) {
        let declared = u32::from_be_bytes([declared[0], declared[1], declared[2], declared[3]]);
        if (2..8).contains(&declared) {
            return Some(not_a_video(format!(
                "box `{}` at offset {pos} declares {declared} bytes, less than its own \
                 8-byte header",
                show(kind)
            )));
        }
    }
    None
}

/// WebM: only the EBML magic is checked.
///
/// Beyond the magic, WebM cannot be proven complete cheaply: live and streaming writers
/// leave the Segment size "unknown" and Cues are optional, so there is no size to tile
/// against without parsing every cluster. The file is called complete and the settle
/// period is the guard.
fn check_webm<R: Read + Seek>(r: &mut Reader<R>) -> io::Result<Completeness> {
    let mut head = [0u8; 4];
    let got = r.read_at(0, &mut head)?;
    if (got as u64) < r.size.min(4) {
        return Ok(shrank());
    }
    let head = &head[..got];
    if !EBML_MAGIC.starts_with(head) {
        return Ok(not_a_video(format!(
            "not a WebM file: it does not start with the EBML magic 1A 45 DF A3 \
             (starts with \"{}\")",
            show(head)
        )));
    }
    if got < EBML_MAGIC.len() {
        return Ok(incomplete(format!(
            "only {got} of the 4 bytes of the WebM header so far"
        )));
    }
    Ok(Completeness::Complete)
}

fn is_known_top_level(kind: &[u8]) -> bool {
    KNOWN_TOP_LEVEL.iter().any(|k| k.as_slice() == kind)
}

fn is_printable(b: u8) -> bool {
    (0x20..=0x7E).contains(&b)
}

/// Bytes for a reason: printable ASCII as is, anything else as `\xNN`.
fn show(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        if is_printable(b) && b != b'"' && b != b'\\' {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

fn incomplete(reason: String) -> Completeness {
    Completeness::Incomplete { reason }
}

fn not_a_video(reason: String) -> Completeness {
    Completeness::NotAVideo { reason }
}

fn shrank() -> Completeness {
    incomplete("the file got shorter while it was being checked".into())
}

/// Positioned reads over a small buffer, never past `size`. Seeks within the buffer keep
/// it (many small boxes cost one read), longer ones go to the file.
struct Reader<R> {
    inner: BufReader<R>,
    /// Where `inner` stands.
    pos: u64,
    /// The settled size: the end of the walk.
    size: u64,
}

impl<R: Read + Seek> Reader<R> {
    fn new(inner: R, size: u64) -> Reader<R> {
        Reader {
            inner: BufReader::with_capacity(4096, inner),
            pos: 0,
            size,
        }
    }

    /// Reads up to `buf.len()` bytes at offset `at`, stopping at `size` or at the real end
    /// of the file, whichever comes first; returns how many bytes were read.
    fn read_at(&mut self, at: u64, buf: &mut [u8]) -> io::Result<usize> {
        self.seek_to(at)?;
        let room = self.size.saturating_sub(at);
        let want = buf.len().min(usize::try_from(room).unwrap_or(usize::MAX));
        let mut got = 0;
        while got < want {
            match self.inner.read(&mut buf[got..want]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.pos = at + got as u64;
        Ok(got)
    }

    fn seek_to(&mut self, at: u64) -> io::Result<()> {
        if at == self.pos {
            return Ok(());
        }
        let delta = i128::from(at) - i128::from(self.pos);
        match i64::try_from(delta) {
            Ok(delta) => self.inner.seek_relative(delta)?,
            Err(_) => {
                self.inner.seek(SeekFrom::Start(at))?;
            }
        }
        self.pos = at;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::io::Cursor;
    use std::path::PathBuf;

    /// A box with a 32-bit size and `payload` filler bytes.
    fn bx(kind: &[u8; 4], payload: usize) -> Vec<u8> {
        let mut out = u32::try_from(8 + payload).unwrap().to_be_bytes().to_vec();
        out.extend_from_slice(kind);
        out.resize(8 + payload, 0xAB);
        out
    }

    /// A box with size 1 and a 64-bit `largesize`.
    fn bx64(kind: &[u8; 4], payload: usize) -> Vec<u8> {
        let mut out = 1u32.to_be_bytes().to_vec();
        out.extend_from_slice(kind);
        out.extend_from_slice(&(16 + payload as u64).to_be_bytes());
        out.resize(16 + payload, 0xCD);
        out
    }

    /// A box with size 0 ("extends to the end of the file").
    fn bx0(kind: &[u8; 4], payload: &[u8]) -> Vec<u8> {
        let mut out = 0u32.to_be_bytes().to_vec();
        out.extend_from_slice(kind);
        out.extend_from_slice(payload);
        out
    }

    /// A raw 8-byte header with any declared size.
    fn header(declared: u32, kind: &[u8; 4]) -> Vec<u8> {
        let mut out = declared.to_be_bytes().to_vec();
        out.extend_from_slice(kind);
        out
    }

    fn cat(parts: &[Vec<u8>]) -> Vec<u8> {
        parts.concat()
    }

    fn faststart() -> Vec<u8> {
        cat(&[bx(b"ftyp", 24), bx(b"moov", 300), bx(b"mdat", 5000)])
    }

    fn moov_at_end() -> Vec<u8> {
        cat(&[bx(b"ftyp", 24), bx(b"mdat", 5000), bx(b"moov", 300)])
    }

    fn large_mdat() -> Vec<u8> {
        // Nothing after `mdat`: a cut before a trailing box would tile (see the module doc).
        cat(&[
            bx(b"ftyp", 24),
            bx(b"moov", 300),
            bx(b"free", 0),
            bx64(b"mdat", 3000),
        ])
    }

    fn clip_path() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/media/clip.mp4")
    }

    /// Writes `bytes` to `name` in a fresh temp dir and checks it with its real size.
    fn check_file(name: &str, bytes: &[u8]) -> Completeness {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        check(&path, bytes.len() as u64).unwrap()
    }

    fn reason(c: &Completeness) -> &str {
        match c {
            Completeness::Complete => "",
            Completeness::Incomplete { reason } | Completeness::NotAVideo { reason } => reason,
        }
    }

    #[track_caller]
    fn assert_incomplete(c: &Completeness, needle: &str) {
        assert!(
            matches!(c, Completeness::Incomplete { .. }) && reason(c).contains(needle),
            "expected Incomplete mentioning {needle:?}, got {c:?}"
        );
    }

    #[track_caller]
    fn assert_not_a_video(c: &Completeness, needle: &str) {
        assert!(
            matches!(c, Completeness::NotAVideo { .. }) && reason(c).contains(needle),
            "expected NotAVideo mentioning {needle:?}, got {c:?}"
        );
    }

    #[test]
    fn container_is_chosen_by_extension_case_insensitively() {
        let c = |p: &str| container_for(Path::new(p));
        assert_eq!(c("a/clip.mp4"), Container::IsoBmff);
        assert_eq!(c("clip.MP4"), Container::IsoBmff);
        assert_eq!(c("clip.Mov"), Container::IsoBmff);
        assert_eq!(c("clip.m4v"), Container::IsoBmff);
        assert_eq!(c("clip.webm"), Container::WebM);
        assert_eq!(c("clip.WebM"), Container::WebM);
        assert_eq!(c("clip.avi"), Container::Unknown);
        assert_eq!(c("clip"), Container::Unknown);
        assert_eq!(c("mp4"), Container::Unknown);
    }

    #[test]
    fn faststart_file_is_complete() {
        assert_eq!(check_file("a.mp4", &faststart()), Completeness::Complete);
    }

    #[test]
    fn moov_after_mdat_is_complete() {
        assert_eq!(check_file("a.mp4", &moov_at_end()), Completeness::Complete);
    }

    #[test]
    fn ftyp_after_free_is_complete() {
        let file = cat(&[bx(b"free", 16), faststart()]);
        assert_eq!(check_file("a.m4v", &file), Completeness::Complete);
    }

    #[test]
    fn quicktime_starting_with_wide_or_mdat_is_complete() {
        // ffmpeg's and old QuickTime's layout: an 8-byte `wide` reserve, then `mdat`.
        let wide = cat(&[bx(b"wide", 0), bx(b"mdat", 4000), bx(b"moov", 200)]);
        assert_eq!(check_file("old.mov", &wide), Completeness::Complete);
        let bare = cat(&[bx(b"mdat", 4000), bx(b"moov", 200)]);
        assert_eq!(check_file("older.MOV", &bare), Completeness::Complete);
    }

    #[test]
    fn large_size_mdat_is_complete() {
        assert_eq!(check_file("a.mp4", &large_mdat()), Completeness::Complete);
    }

    #[test]
    fn large_size_of_zero_is_a_placeholder_to_wait_for() {
        let mut file = cat(&[bx(b"ftyp", 24), bx(b"moov", 30)]);
        file.extend_from_slice(&header(1, b"mdat"));
        file.extend_from_slice(&0u64.to_be_bytes());
        file.resize(file.len() + 100, 1);
        match check_file("a.mp4", &file) {
            Completeness::Incomplete { reason } => {
                assert!(reason.contains("not filled in"), "{reason}")
            }
            other => panic!("expected Incomplete, got {other:?}"),
        }
    }

    #[test]
    fn large_size_below_its_header_is_not_a_video() {
        let mut file = cat(&[bx(b"ftyp", 24), bx(b"moov", 30)]);
        file.extend_from_slice(&header(1, b"mdat"));
        file.extend_from_slice(&15u64.to_be_bytes());
        file.resize(file.len() + 100, 1);
        let c = check_file("a.mp4", &file);
        assert_not_a_video(
            &c,
            "box `mdat` at offset 70 declares a 64-bit size of 15 bytes",
        );
    }

    #[test]
    fn size_zero_last_box_is_complete_when_moov_came_before() {
        let file = cat(&[bx(b"ftyp", 24), bx(b"moov", 100), bx0(b"mdat", &[7; 900])]);
        assert_eq!(check_file("a.mp4", &file), Completeness::Complete);
    }

    #[test]
    fn size_zero_mdat_without_moov_before_is_incomplete() {
        // What ffmpeg leaves while still writing: the mdat size is patched at the end and
        // `moov` follows. Bytes spelling `moov` inside the payload must not count.
        let payload = cat(&[bx(b"moov", 40), vec![9; 500]]);
        let file = cat(&[bx(b"ftyp", 24), bx(b"wide", 0), bx0(b"mdat", &payload)]);
        assert_incomplete(&check_file("a.mp4", &file), "no `moov` box yet");
    }

    #[test]
    fn truncated_mid_mdat_names_the_box_and_the_shortfall() {
        let full = cat(&[bx(b"ftyp", 24), bx(b"free", 8), bx(b"mdat", 5000)]);
        let cut = &full[..full.len() - 1200];
        let c = check_file("a.mp4", cut);
        assert_eq!(
            c,
            Completeness::Incomplete {
                reason: "box `mdat` at offset 48 runs 1200 bytes past the end of the file".into()
            }
        );
    }

    #[test]
    fn truncated_inside_a_header_is_incomplete() {
        let file = faststart();
        let c = check_file("a.mp4", &file[..32 + 5]);
        assert_incomplete(
            &c,
            "ends inside the header of the box at offset 32 (5 of 8 bytes)",
        );

        let file = large_mdat();
        let at = 32 + 308 + 8; // start of the 64-bit mdat
        let c = check_file("a.mp4", &file[..at + 12]);
        assert_incomplete(
            &c,
            "64-bit header of box `mdat` at offset 348 (12 of 16 bytes)",
        );

        // The first header cut short, but what is there could start an MP4.
        let c = check_file("a.mp4", &faststart()[..6]);
        assert_incomplete(&c, "offset 0 (6 of 8 bytes)");
    }

    #[test]
    fn no_moov_is_incomplete() {
        let file = cat(&[bx(b"ftyp", 24), bx(b"mdat", 5000)]);
        assert_eq!(
            check_file("a.mp4", &file),
            Completeness::Incomplete {
                reason: "no `moov` box yet".into()
            }
        );
    }

    #[test]
    fn faststart_cut_right_after_moov_is_incomplete() {
        // Tiles exactly and has `moov`, yet the media data never arrived.
        let file = cat(&[bx(b"ftyp", 24), bx(b"moov", 300), bx(b"free", 8)]);
        assert_incomplete(&check_file("a.mp4", &file), "no `mdat` box yet");
    }

    #[test]
    fn text_renamed_to_mp4_is_not_a_video() {
        let c = check_file("notes.mp4", b"hello world, this is not a video\n");
        assert_eq!(
            c,
            Completeness::NotAVideo {
                reason: "first box type is not an MP4 box (the file starts with \"hello wo\")"
                    .into()
            }
        );
        // Too short for a full header, but already no box type can start like this.
        assert_not_a_video(&check_file("n.mp4", b"hello"), "not an MP4 box");
    }

    #[test]
    fn webm_renamed_to_mp4_is_not_a_video_with_a_hint() {
        let mut file = EBML_MAGIC.to_vec();
        file.extend_from_slice(&[0x9F, 0x42, 0x86, 0x81, 0x01, 0x42]);
        assert_not_a_video(&check_file("x.mp4", &file), "looks like WebM");
    }

    #[test]
    fn empty_file_is_not_a_video() {
        for name in ["a.mp4", "a.webm", "a.avi"] {
            assert_not_a_video(&check_file(name, b""), "empty");
        }
    }

    #[test]
    fn huge_declared_size_runs_past_the_end() {
        let file = cat(&[
            bx(b"ftyp", 24),
            bx(b"moov", 30),
            header(u32::MAX, b"mdat"),
            vec![3; 100],
        ]);
        assert_incomplete(
            &check_file("a.mp4", &file),
            &format!("runs {} bytes past the end", u64::from(u32::MAX) - 108),
        );
    }

    #[test]
    fn size_beyond_any_file_is_not_a_video() {
        let mut file = cat(&[bx(b"ftyp", 24), header(1, b"mdat")]);
        file.extend_from_slice(&u64::MAX.to_be_bytes());
        file.resize(file.len() + 10, 1);
        assert_not_a_video(&check_file("a.mp4", &file), "more than any file can hold");
    }

    #[test]
    fn size_below_the_header_is_not_a_video() {
        for declared in 2..8 {
            let file = cat(&[bx(b"ftyp", 24), header(declared, b"free"), vec![1; 64]]);
            assert_not_a_video(
                &check_file("a.mp4", &file),
                &format!("box `free` at offset 32 declares {declared} bytes"),
            );
        }
    }

    #[test]
    fn later_box_without_a_printable_type_is_not_a_video() {
        let file = cat(&[bx(b"ftyp", 24), header(16, b"mo\x01v"), vec![1; 8]]);
        assert_not_a_video(
            &check_file("a.mp4", &file),
            "box at offset 32 has no valid type (\"mo\\x01v\")",
        );
    }

    #[test]
    fn zeros_where_a_header_belongs_mean_not_written_yet() {
        let file = cat(&[bx(b"ftyp", 24), bx(b"moov", 30), vec![0; 4000]]);
        assert_incomplete(
            &check_file("a.mp4", &file),
            "zeros where the box header at offset 70",
        );
    }

    #[test]
    fn box_count_is_bounded() {
        let tail = cat(&[bx(b"moov", 0), bx(b"mdat", 0)]);
        let exactly = cat(&[bx(b"free", 0).repeat(MAX_BOXES - 2), tail.clone()]);
        assert_eq!(check_file("a.mp4", &exactly), Completeness::Complete);
        let over = cat(&[bx(b"free", 0).repeat(MAX_BOXES - 1), tail]);
        assert_not_a_video(
            &check_file("a.mp4", &over),
            "more than 100000 top-level boxes",
        );
    }

    #[test]
    fn file_shorter_than_its_settled_size_is_incomplete() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.mp4");
        let file = faststart();
        std::fs::write(&path, &file).unwrap();
        let c = check(&path, file.len() as u64 + 100).unwrap();
        assert_incomplete(&c, "got shorter");
        // And a file longer than the settled size is judged up to that size only.
        let c = check(&path, file.len() as u64 - 10).unwrap();
        assert_incomplete(&c, "runs 10 bytes past the end");
    }

    #[test]
    fn missing_file_is_an_io_error() {
        let dir = tempfile::tempdir().unwrap();
        let err = check(&dir.path().join("gone.mp4"), 10).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
    }

    #[test]
    fn webm_magic_decides() {
        let mut file = EBML_MAGIC.to_vec();
        file.extend_from_slice(&[0x9F, 0x42, 0x86, 0x81, 0x01]);
        assert_eq!(check_file("a.webm", &file), Completeness::Complete);
        assert_eq!(check_file("a.mkv", &file), Completeness::Complete);

        let c = check_file("a.webm", &faststart());
        assert_not_a_video(&c, "does not start with the EBML magic");

        assert_incomplete(&check_file("a.webm", &EBML_MAGIC[..2]), "2 of the 4 bytes");
        assert_not_a_video(&check_file("a.webm", b"he"), "EBML magic");
    }

    #[test]
    fn unknown_extension_is_complete_unless_it_is_plainly_an_mp4() {
        assert_eq!(
            check_file("a.avi", b"RIFF....AVI LIST"),
            Completeness::Complete
        );
        assert_eq!(check_file("a.bin", &faststart()), Completeness::Complete);
        let cut = &faststart()[..1000];
        assert_incomplete(&check_file("a.bin", cut), "runs");
    }

    #[test]
    fn real_example_clip_is_complete_and_a_cut_copy_is_not() {
        let bytes = std::fs::read(clip_path()).unwrap();
        let size = bytes.len() as u64;
        assert_eq!(check(&clip_path(), size).unwrap(), Completeness::Complete);

        let dir = tempfile::tempdir().unwrap();
        let copy = dir.path().join("clip.mp4");
        std::fs::copy(clip_path(), &copy).unwrap();
        let f = std::fs::OpenOptions::new().write(true).open(&copy).unwrap();
        f.set_len(size / 2).unwrap();
        drop(f);
        assert_incomplete(&check(&copy, size / 2).unwrap(), "box `mdat`");
    }

    /// Finds where each top-level box of `file` ends (for 32-bit sizes).
    fn box_ends(file: &[u8]) -> Vec<usize> {
        let mut ends = Vec::new();
        let mut pos = 0;
        while pos < file.len() {
            let size = u32::from_be_bytes(file[pos..pos + 4].try_into().unwrap()) as usize;
            pos += size;
            ends.push(pos);
        }
        ends
    }

    #[test]
    fn cuts_at_box_boundaries_are_not_complete() {
        // The cuts a random truncation almost never hits: the walk tiles exactly there.
        let clip = std::fs::read(clip_path()).unwrap();
        for bytes in [clip, faststart(), moov_at_end()] {
            let ends = box_ends(&bytes);
            assert!(ends.len() >= 3, "several boxes: {ends:?}");
            for &end in &ends[..ends.len() - 1] {
                let c = check_reader(Container::IsoBmff, Cursor::new(&bytes[..end]), end as u64);
                assert!(
                    matches!(c, Ok(Completeness::Incomplete { .. })),
                    "cut at {end}: {c:?}"
                );
            }
        }
    }

    fn samples() -> Vec<Vec<u8>> {
        let clip = std::fs::read(clip_path()).unwrap();
        vec![clip, faststart(), moov_at_end(), large_mdat()]
    }

    proptest! {
        #[test]
        fn truncations_are_never_complete(
            which in 0usize..4,
            cut in any::<prop::sample::Index>(),
        ) {
            let file = &samples()[which];
            let len = cut.index(file.len() + 1);
            let verdict = check_reader(
                Container::IsoBmff,
                Cursor::new(&file[..len]),
                len as u64,
            )
            .unwrap();
            if len == file.len() {
                prop_assert_eq!(verdict, Completeness::Complete);
            } else {
                prop_assert!(verdict != Completeness::Complete, "cut at {}/{}", len, file.len());
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic(
            bytes in prop::collection::vec(any::<u8>(), 0..256),
            container in prop::sample::select(vec![
                Container::IsoBmff, Container::WebM, Container::Unknown,
            ]),
        ) {
            let size = bytes.len() as u64;
            let verdict = check_reader(container, Cursor::new(bytes), size);
            prop_assert!(verdict.is_ok());
        }
    }
}
