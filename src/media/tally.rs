//! Frame durations added up run by run (an MP4 `stts` table, a fragment's `trun`), giving
//! the total and the frame rate: exact when every frame lasts as long, else the average.

use super::info::FrameRate;

/// Runs of (frame count, frame duration in media ticks) seen so far.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Tally {
    pub(crate) frames: u64,
    pub(crate) ticks: u128,
    /// The duration of the first run.
    main: Option<u32>,
    /// A single frame of another duration, allowed once, last (writers often give the
    /// last frame its own duration).
    odd_last: bool,
    variable: bool,
}

impl Tally {
    pub(crate) fn add(&mut self, count: u32, delta: u32) {
        if count == 0 {
            return;
        }
        self.frames += u64::from(count);
        self.ticks += u128::from(count) * u128::from(delta);
        match self.main {
            None => self.main = Some(delta),
            // A run after the odd frame: it was not the last.
            Some(_) if self.odd_last => self.variable = true,
            Some(main) if main == delta => {}
            Some(_) if count == 1 => self.odd_last = true,
            Some(_) => self.variable = true,
        }
    }

    /// The rate in frames per second for a media `timescale` (ticks per second).
    pub(crate) fn rate(&self, timescale: u32) -> Option<FrameRate> {
        match (self.main, self.variable) {
            (Some(main), false) => FrameRate::new(u64::from(timescale), u64::from(main), true),
            _ => FrameRate::reduced(
                u128::from(self.frames) * u128::from(timescale),
                self.ticks,
                false,
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_runs_give_the_exact_rate_and_a_last_odd_frame_is_forgiven() {
        let mut t = Tally::default();
        t.add(29, 1001);
        t.add(1, 500);
        let rate = t.rate(30000).unwrap();
        assert_eq!(
            (rate.num(), rate.den(), rate.is_constant()),
            (30000, 1001, true)
        );
        assert_eq!(t.frames, 30);
        assert_eq!(t.ticks, 29 * 1001 + 500);
    }

    #[test]
    fn mixed_runs_give_the_average_marked_variable() {
        let mut t = Tally::default();
        t.add(10, 1000);
        t.add(1, 2000);
        t.add(10, 1000);
        let rate = t.rate(30000).unwrap();
        assert!(!rate.is_constant());
        // 21 frames in 22000 ticks of 1/30000 s: 630000/22000 = 315/11.
        assert_eq!((rate.num(), rate.den()), (315, 11));
    }

    #[test]
    fn no_frames_or_zero_durations_give_no_rate() {
        assert_eq!(Tally::default().rate(30000), None);
        let mut t = Tally::default();
        t.add(5, 0);
        assert_eq!(t.rate(30000), None);
    }
}
