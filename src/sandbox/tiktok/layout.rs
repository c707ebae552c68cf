//! The chunk arithmetic of page §5: which (`video_size`, `chunk_size`,
//! `total_chunk_count`) an init may declare, and where each chunk starts and ends. A
//! [`Layout`] can only hold a valid declaration.

use super::rules::{MAX_CHUNK, MAX_CHUNKS, MAX_LAST_CHUNK, MAX_VIDEO_SIZE, MIN_CHUNK};

/// A valid chunk layout of one video.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Layout {
    video_size: u64,
    chunk_size: u64,
    chunks: u64,
}

impl Layout {
    /// The layout an init declares, or why it is refused (`invalid_param`).
    pub fn new(video_size: u64, chunk_size: u64, total: u64) -> Result<Layout, String> {
        if video_size == 0 {
            return Err("source_info.video_size must be at least 1".into());
        }
        if video_size > MAX_VIDEO_SIZE {
            return Err(format!(
                "source_info.video_size {video_size} is over the 4 GB limit ({MAX_VIDEO_SIZE} bytes)"
            ));
        }
        if video_size < MIN_CHUNK {
            if chunk_size != video_size || total != 1 {
                return Err(format!(
                    "a video under {MIN_CHUNK} bytes goes in one chunk: chunk_size = video_size \
                     ({video_size}) and total_chunk_count = 1"
                ));
            }
            return Ok(Layout {
                video_size,
                chunk_size,
                chunks: 1,
            });
        }
        if !(MIN_CHUNK..=MAX_CHUNK).contains(&chunk_size) {
            return Err(format!(
                "source_info.chunk_size {chunk_size} is not between {MIN_CHUNK} and {MAX_CHUNK} bytes"
            ));
        }
        let expected = video_size / chunk_size;
        if expected == 0 || expected > MAX_CHUNKS {
            return Err(format!(
                "{expected} chunks: a video takes 1 to {MAX_CHUNKS} chunks"
            ));
        }
        if total != expected {
            return Err(format!(
                "source_info.total_chunk_count must be floor(video_size / chunk_size) = {expected}, not {total}"
            ));
        }
        if video_size >= MAX_CHUNK && expected < 2 {
            return Err(format!(
                "a video of {MAX_CHUNK} bytes or more must be sent in chunks"
            ));
        }
        let layout = Layout {
            video_size,
            chunk_size,
            chunks: expected,
        };
        if layout.chunk(expected - 1).1 > MAX_LAST_CHUNK {
            return Err(format!(
                "the last chunk would be over {MAX_LAST_CHUNK} bytes"
            ));
        }
        Ok(layout)
    }

    pub fn video_size(&self) -> u64 {
        self.video_size
    }

    pub fn chunk_size(&self) -> u64 {
        self.chunk_size
    }

    pub fn chunks(&self) -> u64 {
        self.chunks
    }

    /// First byte and length of chunk `index` (the last takes the remainder).
    pub fn chunk(&self, index: u64) -> (u64, u64) {
        let first = index * self.chunk_size;
        let len = if index + 1 == self.chunks {
            self.video_size - first
        } else {
            self.chunk_size
        };
        (first, len)
    }

    /// The index of the chunk that is exactly bytes `first..=last`, if one is.
    pub fn chunk_of(&self, first: u64, last: u64) -> Option<u64> {
        if !first.is_multiple_of(self.chunk_size) {
            return None;
        }
        let index = first / self.chunk_size;
        let (_, len) = (index < self.chunks).then(|| self.chunk(index))?;
        (last.checked_sub(first)? + 1 == len).then_some(index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MB: u64 = 1_000_000;

    #[test]
    fn small_videos_go_whole() {
        let l = Layout::new(1000, 1000, 1).expect("whole");
        assert_eq!(l.chunk(0), (0, 1000));
        assert!(Layout::new(1000, 500, 2).is_err());
        assert!(Layout::new(MIN_CHUNK - 1, MIN_CHUNK - 1, 1).is_ok());
        assert!(
            Layout::new(5 * MB, 5 * MB, 1).is_ok(),
            "5 MB decimal is under 5 MiB"
        );
        assert!(Layout::new(0, 0, 1).is_err());
    }

    #[test]
    fn chunk_sizes_valid_under_both_readings() {
        assert!(Layout::new(MIN_CHUNK, MIN_CHUNK, 1).is_ok());
        assert!(
            Layout::new(20 * MB, 5 * MB, 4).is_err(),
            "5 MB decimal chunk"
        );
        assert!(Layout::new(200 * MB, 64 * MB, 3).is_ok());
        assert!(
            Layout::new(200 * MB, 64 * 1024 * 1024, 2).is_err(),
            "64 MiB chunk"
        );
    }

    #[test]
    fn the_last_chunk_takes_the_remainder() {
        let l = Layout::new(150 * MB, 10 * MB, 15).expect("valid");
        assert_eq!(l.chunk(14), (140 * MB, 10 * MB));
        let l = Layout::new(50_000_123, 10 * MB, 5).expect("doc example");
        assert_eq!(l.chunk(4), (40 * MB, 10 * MB + 123));
        assert_eq!(l.chunk_of(40 * MB, 50_000_122), Some(4));
        assert_eq!(
            l.chunk_of(40 * MB, 50 * MB - 1),
            None,
            "the remainder belongs to it"
        );
        assert_eq!(l.chunk_of(10 * MB, 20 * MB - 1), Some(1));
        assert_eq!(l.chunk_of(10 * MB + 1, 20 * MB), None);
        assert!(
            Layout::new(50_000_123, 10 * MB, 6).is_err(),
            "ceil is wrong"
        );
        let l = Layout::new(127 * MB, 63 * MB, 2).expect("last under 128 MB");
        assert_eq!(l.chunk(1), (63 * MB, 64 * MB));
    }

    #[test]
    fn big_videos_are_chunked_and_bounded() {
        assert!(
            Layout::new(64 * MB, 64 * MB, 1).is_err(),
            "64 MB must be chunked"
        );
        assert!(Layout::new(64 * MB - 1, 64 * MB - 1, 1).is_ok());
        assert!(Layout::new(64 * MB, 32 * MB, 2).is_ok());
        assert!(Layout::new(4_000 * MB, 40 * MB, 100).is_ok(), "4 GB");
        assert!(
            Layout::new(4_000 * MB + 1, 40 * MB, 100).is_err(),
            "over 4 GB"
        );
        assert!(
            Layout::new(4 * 1024 * MB, 64 * MB, 67).is_err(),
            "4 GiB is over 4 GB"
        );
        assert!(Layout::new(3_000 * MB, MIN_CHUNK, 572).is_ok());
    }
}
