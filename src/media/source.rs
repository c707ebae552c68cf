//! The bounded reader both container readers walk a file with: reads by position through a
//! small window of its own (so skipping a box is a seek, never a read), and a budget of
//! steps and bytes, so no file, however hostile, makes a probe loop or read without end.

use std::io::{self, Read, Seek, SeekFrom};

use super::Fault;

/// Elements or boxes looked at in one probe, at most. Real files need a few dozen; a
/// fragmented MP4 about 8 per fragment (so some 50000 fragments fit).
pub(crate) const MAX_STEPS: u32 = 400_000;
/// Bytes pulled from the file in one probe, at most: sample tables of long variable-rate
/// videos and one window per fragment are the most read; payloads never are.
pub(crate) const MAX_READ: u64 = 128 << 20;
/// Bytes pulled from the file per refill of the window (a fragment's `moof` fits).
const WINDOW: usize = 2 << 10;

/// A file (or any `Read + Seek`) of known length, read by position.
pub(crate) struct Source<R> {
    inner: R,
    len: u64,
    /// The next byte a read returns.
    pos: u64,
    window: Vec<u8>,
    /// File offset of `window[0]`.
    window_at: u64,
    steps: u32,
    read: u64,
}

impl<R: Read + Seek> Source<R> {
    pub(crate) fn new(inner: R, len: u64) -> Source<R> {
        Source {
            inner,
            len,
            pos: 0,
            window: Vec::new(),
            window_at: 0,
            steps: 0,
            read: 0,
        }
    }

    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    pub(crate) fn pos(&self) -> u64 {
        self.pos
    }

    /// Bytes pulled from the underlying reader so far.
    #[cfg(test)]
    pub(crate) fn bytes_read(&self) -> u64 {
        self.read
    }

    /// Counts one box or element looked at; too many and the probe gives up.
    pub(crate) fn step(&mut self) -> Result<(), Fault> {
        self.steps += 1;
        if self.steps > MAX_STEPS {
            return Err(Fault::TooComplex("too many boxes or elements"));
        }
        Ok(())
    }

    /// Moves to `pos` (no read happens until the next `read_exact`).
    pub(crate) fn seek(&mut self, pos: u64) {
        self.pos = pos;
    }

    /// Bytes left between the position and the end of the file.
    pub(crate) fn remaining(&self) -> u64 {
        self.len.saturating_sub(self.pos)
    }

    /// Exactly `buf.len()` bytes at the position; a file ending first is `Fault::Truncated`.
    pub(crate) fn read_exact(&mut self, buf: &mut [u8]) -> Result<(), Fault> {
        let n = buf.len() as u64;
        if n > self.remaining() {
            return Err(Fault::Truncated(self.pos));
        }
        let window_end = self.window_at + self.window.len() as u64;
        if self.pos < self.window_at || self.pos + n > window_end {
            self.refill(buf.len())?;
        }
        let from = (self.pos - self.window_at) as usize;
        buf.copy_from_slice(&self.window[from..from + buf.len()]);
        self.pos += n;
        Ok(())
    }

    /// Loads the window at the position, at least `need` bytes long (reads are small, so a
    /// window bigger than WINDOW happens only for a caller's own large read).
    fn refill(&mut self, need: usize) -> Result<(), Fault> {
        let want = (need.max(WINDOW) as u64).min(self.remaining()) as usize;
        self.read += want as u64;
        if self.read > MAX_READ {
            return Err(Fault::TooComplex("too much to read"));
        }
        self.inner
            .seek(SeekFrom::Start(self.pos))
            .map_err(Fault::Io)?;
        self.window.resize(want, 0);
        self.window_at = self.pos;
        match self.inner.read_exact(&mut self.window) {
            Ok(()) => Ok(()),
            // Shorter than its length said: the file shrank while being read.
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                self.window.clear();
                Err(Fault::Truncated(self.pos))
            }
            Err(e) => {
                self.window.clear();
                Err(Fault::Io(e))
            }
        }
    }

    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N], Fault> {
        let mut b = [0; N];
        self.read_exact(&mut b)?;
        Ok(b)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, Fault> {
        Ok(self.array::<1>()?[0])
    }

    pub(crate) fn u16(&mut self) -> Result<u16, Fault> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    pub(crate) fn u32(&mut self) -> Result<u32, Fault> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    pub(crate) fn u64(&mut self) -> Result<u64, Fault> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    /// Skips `n` bytes forward (a seek, nothing is read).
    pub(crate) fn skip(&mut self, n: u64) {
        self.pos = self.pos.saturating_add(n);
    }
}
