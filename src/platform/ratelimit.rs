//! The upload bandwidth limit (`upload.max_rate`): one token bucket shared by every upload
//! stream of a client, awaited before each chunk is handed to the connection.
//!
//! It is kept as a "theoretical arrival time" (GCRA): each chunk books `len / rate` of
//! link time after the previous booking, and may go once that booking lies no further
//! than `burst` ahead of now. Bookings are made under a short lock and waited out without
//! it, so many streams share the rate in the order they asked.

use std::num::NonZeroU64;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

/// Bytes per second over all streams, with a small allowance for a burst after idling.
#[derive(Debug)]
pub(crate) struct RateLimiter {
    rate: NonZeroU64,
    /// Link time that may be booked ahead of now without waiting.
    burst: Duration,
    /// When every byte booked so far has been paid for; `None` before the first booking.
    booked_until: Mutex<Option<Instant>>,
}

impl RateLimiter {
    /// At most `rate` bytes per second in the long run, of which `burst` bytes may go at
    /// once after an idle spell.
    pub fn new(rate: NonZeroU64, burst: u64) -> RateLimiter {
        RateLimiter {
            rate,
            burst: link_time(burst, rate),
            booked_until: Mutex::new(None),
        }
    }

    /// Books `n` bytes and says when they may go.
    fn book(&self, n: u64) -> Instant {
        let now = Instant::now();
        let mut booked = self
            .booked_until
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let start = match *booked {
            Some(t) if t > now => t,
            _ => now,
        };
        let end = start + link_time(n, self.rate);
        *booked = Some(end);
        end.checked_sub(self.burst).map_or(now, |t| t.max(now))
    }

    /// Waits until `n` more bytes may be sent.
    pub async fn acquire(&self, n: u64) {
        let at = self.book(n);
        if at > Instant::now() {
            tokio::time::sleep_until(at).await;
        }
    }
}

/// How long `bytes` take at `rate` bytes per second.
fn link_time(bytes: u64, rate: NonZeroU64) -> Duration {
    let nanos = u128::from(bytes) * 1_000_000_000 / u128::from(rate.get());
    Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn rate(r: u64) -> NonZeroU64 {
        NonZeroU64::new(r).unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn a_burst_goes_at_once_then_the_rate_holds() {
        let limiter = RateLimiter::new(rate(1000), 100);
        let start = Instant::now();
        limiter.acquire(100).await;
        assert_eq!(start.elapsed(), Duration::ZERO, "the burst is free");
        for _ in 0..10 {
            limiter.acquire(100).await;
        }
        // 1100 bytes at 1000 B/s with 100 bytes of burst: one second exactly.
        assert_eq!(start.elapsed(), Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn streams_share_one_rate() {
        let limiter = Arc::new(RateLimiter::new(rate(1000), 0));
        let start = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..4 {
            let l = limiter.clone();
            tasks.push(tokio::spawn(async move {
                for _ in 0..5 {
                    l.acquire(100).await;
                }
                Instant::now()
            }));
        }
        let mut ends = Vec::new();
        for t in tasks {
            ends.push(t.await.unwrap().duration_since(start));
        }
        // 2000 bytes in all at 1000 B/s: two seconds, whoever sent them.
        assert_eq!(ends.iter().max().copied(), Some(Duration::from_secs(2)));
        // And shared fairly: nobody finished before the others had most of their share.
        assert!(
            ends.iter().all(|e| *e >= Duration::from_millis(1700)),
            "{ends:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn idle_time_is_not_saved_up_beyond_the_burst() {
        let limiter = RateLimiter::new(rate(1000), 200);
        limiter.acquire(200).await;
        tokio::time::sleep(Duration::from_secs(60)).await;
        let start = Instant::now();
        // After a minute idle only the burst is free, not 60 000 bytes.
        limiter.acquire(1200).await;
        assert_eq!(start.elapsed(), Duration::from_secs(1));
    }

    #[test]
    fn link_time_is_exact_and_saturates() {
        assert_eq!(link_time(1500, rate(1000)), Duration::from_millis(1500));
        assert_eq!(link_time(0, rate(1)), Duration::ZERO);
        assert_eq!(link_time(u64::MAX, rate(1)), Duration::from_nanos(u64::MAX));
    }
}
