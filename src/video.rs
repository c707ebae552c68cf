//! The video being published, opened once: never through a symbolic link put in its place,
//! checked to be the very file that settled (same device and inode, unwritten since), and
//! read by position, so the hash pass and every upload part (several at a time) read the
//! same file through one descriptor. OS specifics live in the small `os` module below.

use std::fs::{File, Metadata};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use crate::watch::Settled;

/// Which file a `stat` saw, and when it was last changed in any way: two stats with equal
/// identities saw the same file, not written to in between (unix: device, inode and
/// ctime, which no user can set back; Windows: volume serial, file id and change time).
/// Where the OS tells none of this, every identity is equal and only size, mtime and the
/// CRC-32 checks guard the upload.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub(crate) struct FileIdentity {
    dev: u64,
    ino: u128,
    ctime_s: i64,
    ctime_ns: i64,
}

impl FileIdentity {
    /// The identity of the file named `path`, whose `symlink_metadata` is `meta` (unix
    /// reads it from `meta`; Windows keeps no file id there and asks the file system).
    pub fn at(path: &Path, meta: &Metadata) -> FileIdentity {
        os::identity_at(path, meta)
    }

    /// The same file (device and inode), written to since or not.
    pub(crate) fn same_file(&self, other: &FileIdentity) -> bool {
        self.dev == other.dev && self.ino == other.ino
    }
}

/// Why the settled video cannot be opened as itself.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("{} is gone", path.display())]
    Gone { path: PathBuf },
    /// Replaced (another file, a link, not a regular file) or written to since it settled.
    #[error("{} {what}", path.display())]
    Changed { path: PathBuf, what: &'static str },
    #[error("cannot read {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// An open video: one descriptor, shared (cheap to clone), read by position only.
#[derive(Clone, Debug)]
pub struct VideoFile {
    file: Arc<File>,
    path: PathBuf,
    size: u64,
    modified: SystemTime,
    identity: FileIdentity,
}

impl VideoFile {
    /// Opens the settled video without following a link at its name, and checks it is
    /// the file that settled: same device and inode, same size, mtime and ctime.
    /// Blocking.
    pub fn open(settled: &Settled) -> Result<VideoFile, OpenError> {
        let video = VideoFile::open_path(&settled.path)?;
        let changed = |what| OpenError::Changed {
            path: settled.path.clone(),
            what,
        };
        if !video.identity.same_file(&settled.identity) {
            return Err(changed("was replaced by another file after it settled"));
        }
        if video.size != settled.size
            || video.modified != settled.modified
            || video.identity != settled.identity
        {
            return Err(changed("was written to after it settled"));
        }
        Ok(video)
    }

    /// Opens a regular file without following a link at its name (what `open` checks
    /// against the settled stamp, for callers that have none). Blocking.
    pub fn open_path(path: &Path) -> Result<VideoFile, OpenError> {
        let file = os::open_no_follow(path).map_err(|source| match source.kind() {
            io::ErrorKind::NotFound => OpenError::Gone {
                path: path.to_path_buf(),
            },
            _ if os::is_link_refusal(&source) => OpenError::Changed {
                path: path.to_path_buf(),
                what: "is a symbolic link; links are not followed",
            },
            _ => OpenError::Io {
                path: path.to_path_buf(),
                source,
            },
        })?;
        let meta = file.metadata().map_err(|source| OpenError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        if !meta.file_type().is_file() {
            return Err(OpenError::Changed {
                path: path.to_path_buf(),
                what: "is not a regular file",
            });
        }
        Ok(VideoFile {
            path: path.to_path_buf(),
            size: meta.len(),
            modified: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
            identity: os::identity_of(&file, &meta),
            file: Arc::new(file),
        })
    }

    /// [`open`](Self::open) on the blocking thread pool.
    pub(crate) async fn open_async(settled: Settled) -> Result<VideoFile, OpenError> {
        let path = settled.path.clone();
        tokio::task::spawn_blocking(move || VideoFile::open(&settled))
            .await
            .unwrap_or_else(|join| {
                Err(OpenError::Io {
                    path,
                    source: io::Error::other(format!("open task failed: {join}")),
                })
            })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The size when it was opened.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Reads up to `buf.len()` bytes at `offset`; 0 at the end. Does not move any shared
    /// cursor, so parts may be read in parallel. Blocking.
    pub(crate) fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        loop {
            match os::read_at(&self.file, buf, offset) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                other => return other,
            }
        }
    }

    /// Fills `buf` from `offset`; `UnexpectedEof` if the file ends first. Blocking.
    pub(crate) fn read_exact_at(&self, mut buf: &mut [u8], mut offset: u64) -> io::Result<()> {
        while !buf.is_empty() {
            match self.read_at(buf, offset)? {
                0 => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the file ended early",
                    ));
                }
                n => {
                    buf = &mut buf[n..];
                    offset += n as u64;
                }
            }
        }
        Ok(())
    }
}

/// A reader over a [`VideoFile`] from its start, by position.
pub(crate) struct Reader<'a> {
    video: &'a VideoFile,
    pos: u64,
}

impl<'a> Reader<'a> {
    pub fn new(video: &'a VideoFile) -> Reader<'a> {
        Reader { video, pos: 0 }
    }
}

impl io::Read for Reader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.video.read_at(buf, self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

/// Seeking moves the position only (reads are by position), so header readers can skip
/// a payload without reading it.
impl io::Seek for Reader<'_> {
    fn seek(&mut self, to: io::SeekFrom) -> io::Result<u64> {
        let (base, delta) = match to {
            io::SeekFrom::Start(at) => {
                self.pos = at;
                return Ok(at);
            }
            io::SeekFrom::Current(d) => (self.pos, d),
            io::SeekFrom::End(d) => (self.video.size(), d),
        };
        self.pos = base.checked_add_signed(delta).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "seek before the start of the video",
            )
        })?;
        Ok(self.pos)
    }
}

#[cfg(unix)]
mod os {
    use std::fs::{File, Metadata};
    use std::io;
    use std::os::unix::fs::{FileExt, MetadataExt};
    use std::path::Path;

    use rustix::fs::{Mode, OFlags};

    use super::FileIdentity;

    pub(crate) fn identity_at(_path: &Path, meta: &Metadata) -> FileIdentity {
        FileIdentity {
            dev: meta.dev(),
            ino: u128::from(meta.ino()),
            ctime_s: meta.ctime(),
            ctime_ns: meta.ctime_nsec(),
        }
    }

    pub(crate) fn identity_of(_file: &File, meta: &Metadata) -> FileIdentity {
        identity_at(Path::new(""), meta)
    }

    /// `O_NOFOLLOW`: a link at the name is refused (ELOOP), not followed. `O_NONBLOCK`:
    /// a FIFO put in its place does not block the open (it is refused after, as not a
    /// regular file).
    pub(crate) fn open_no_follow(path: &Path) -> io::Result<File> {
        let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK;
        let fd = rustix::fs::open(path, flags, Mode::empty())?;
        Ok(File::from(fd))
    }

    pub(crate) fn is_link_refusal(e: &io::Error) -> bool {
        e.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error())
    }

    pub(crate) fn read_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        file.read_at(buf, offset)
    }
}

#[cfg(windows)]
mod os {
    use std::fs::{File, Metadata, OpenOptions};
    use std::io;
    use std::os::windows::fs::{FileExt, OpenOptionsExt};
    use std::path::Path;

    use super::FileIdentity;

    /// `FILE_FLAG_OPEN_REPARSE_POINT`: a link is opened as itself, then refused as not a
    /// regular file.
    const OPEN_REPARSE_POINT: u32 = 0x0020_0000;

    /// A name that cannot be asked (gone, delete pending) gets the empty identity, unlike
    /// any real file's, so it reads as changed.
    pub(crate) fn identity_at(path: &Path, _meta: &Metadata) -> FileIdentity {
        crate::win::stamp_at(path).map_or_else(|_| FileIdentity::default(), from_stamp)
    }

    pub(crate) fn identity_of(file: &File, _meta: &Metadata) -> FileIdentity {
        crate::win::stamp_of(file).map_or_else(|_| FileIdentity::default(), from_stamp)
    }

    fn from_stamp(stamp: crate::win::FileStamp) -> FileIdentity {
        FileIdentity {
            dev: stamp.volume,
            ino: stamp.file,
            ctime_s: stamp.changed,
            ctime_ns: 0,
        }
    }

    pub(crate) fn open_no_follow(path: &Path) -> io::Result<File> {
        OpenOptions::new()
            .read(true)
            .custom_flags(OPEN_REPARSE_POINT)
            .open(path)
    }

    pub(crate) fn is_link_refusal(_e: &io::Error) -> bool {
        false
    }

    pub(crate) fn read_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        file.seek_read(buf, offset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Seek, SeekFrom, Write};

    #[test]
    fn a_reader_seeks_from_the_start_the_position_and_the_end() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v.mp4");
        std::fs::write(&path, b"0123456789").unwrap();
        let video = VideoFile::open_path(&path).unwrap();
        let mut r = Reader::new(&video);
        let mut two = [0u8; 2];
        assert_eq!(r.seek(SeekFrom::Start(3)).unwrap(), 3);
        r.read_exact(&mut two).unwrap();
        assert_eq!(&two, b"34");
        assert_eq!(r.seek(SeekFrom::Current(2)).unwrap(), 7);
        r.read_exact(&mut two).unwrap();
        assert_eq!(&two, b"78");
        assert_eq!(r.seek(SeekFrom::End(-10)).unwrap(), 0);
        r.read_exact(&mut two).unwrap();
        assert_eq!(&two, b"01");
        assert!(r.seek(SeekFrom::Current(-3)).is_err(), "before the start");
    }

    fn settled_of(path: &Path) -> Settled {
        let meta = std::fs::symlink_metadata(path).unwrap();
        Settled {
            path: path.to_path_buf(),
            size: meta.len(),
            modified: meta.modified().unwrap(),
            identity: FileIdentity::at(path, &meta),
        }
    }

    #[test]
    fn reads_by_position_from_one_descriptor() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("clip.mp4");
        let data: Vec<u8> = (0..5000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &data).unwrap();
        let video = VideoFile::open(&settled_of(&path)).unwrap();
        assert_eq!(video.size(), 5000);
        let mut buf = [0u8; 10];
        video.read_exact_at(&mut buf, 4000).unwrap();
        assert_eq!(buf, data[4000..4010]);
        let mut all = Vec::new();
        Reader::new(&video).read_to_end(&mut all).unwrap();
        assert_eq!(all, data);
        let err = video.read_exact_at(&mut buf, 4995).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    }

    #[test]
    fn a_write_after_settling_is_noticed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("clip.mp4");
        std::fs::write(&path, b"hello").unwrap();
        let settled = settled_of(&path);
        let before = std::fs::metadata(&path).unwrap().modified().unwrap();
        // Same size, mtime put back (`cp -p`): only the change time tells.
        std::thread::sleep(std::time::Duration::from_millis(20));
        let mut f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        f.write_all(b"HELLO").unwrap();
        f.set_modified(before).unwrap();
        drop(f);
        let err = VideoFile::open(&settled).unwrap_err();
        assert!(matches!(err, OpenError::Changed { .. }), "{err}");
    }

    #[cfg(unix)]
    #[test]
    fn a_link_is_not_followed_and_a_replacement_is_noticed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("clip.mp4");
        let outside = dir.path().join("outside.bin");
        std::fs::write(&path, b"video").unwrap();
        std::fs::write(&outside, b"other").unwrap();
        let settled = settled_of(&path);
        std::fs::remove_file(&path).unwrap();
        std::os::unix::fs::symlink(&outside, &path).unwrap();
        let err = VideoFile::open(&settled).unwrap_err();
        assert!(err.to_string().contains("symbolic link"), "{err}");
        std::fs::remove_file(&path).unwrap();
        // The settled file still exists elsewhere, so its inode cannot be reused.
        std::fs::write(dir.path().join("kept.mp4"), b"video").unwrap();
        let settled = settled_of(&dir.path().join("kept.mp4"));
        let settled = Settled {
            path: path.clone(),
            ..settled
        };
        std::fs::write(&path, b"video").unwrap();
        let err = VideoFile::open(&settled).unwrap_err();
        assert!(err.to_string().contains("replaced"), "{err}");
        std::fs::remove_file(&path).unwrap();
        assert!(matches!(
            VideoFile::open(&settled).unwrap_err(),
            OpenError::Gone { .. }
        ));
    }
}
