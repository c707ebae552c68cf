//! The per-token rate limits of docs/tiktok.md §7, kept by the client itself:
//! a sliding one-minute window per account and endpoint (init 6, creator_info 20, status
//! 30), so dropcast waits its turn instead of collecting 429s.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use super::wire;

/// Which limit a request counts against.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Endpoint {
    Init,
    CreatorInfo,
    Status,
}

impl Endpoint {
    fn limit(self) -> usize {
        let n = match self {
            Endpoint::Init => wire::LIMIT_INIT,
            Endpoint::CreatorInfo => wire::LIMIT_CREATOR_INFO,
            Endpoint::Status => wire::LIMIT_STATUS,
        };
        n as usize
    }
}

/// Every account's windows.
#[derive(Debug, Default)]
pub(crate) struct Limits {
    sent: Mutex<HashMap<(String, Endpoint), VecDeque<Instant>>>,
}

impl Limits {
    /// Waits until `account` may send one more request to `endpoint`, and books it.
    pub(crate) async fn acquire(&self, account: &str, endpoint: Endpoint) {
        loop {
            let wait = self.try_book(account, endpoint, Instant::now());
            match wait {
                None => return,
                Some(d) => {
                    tracing::info!(
                        account,
                        endpoint = ?endpoint,
                        wait_ms = d.as_millis() as u64,
                        "keeping TikTok's per-minute limit"
                    );
                    tokio::time::sleep(d).await;
                }
            }
        }
    }

    /// Books a request at `now`, or says how long until one may go.
    fn try_book(&self, account: &str, endpoint: Endpoint, now: Instant) -> Option<Duration> {
        let mut sent = self.sent.lock().unwrap_or_else(|e| e.into_inner());
        let window = sent.entry((account.to_owned(), endpoint)).or_default();
        while window
            .front()
            .is_some_and(|t| now.duration_since(*t) >= wire::LIMIT_WINDOW)
        {
            window.pop_front();
        }
        if window.len() < endpoint.limit() {
            window.push_back(now);
            return None;
        }
        let oldest = *window.front()?;
        Some(wire::LIMIT_WINDOW - now.duration_since(oldest) + Duration::from_millis(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_seventh_init_in_a_minute_waits_for_the_first_to_age_out() {
        let limits = Limits::default();
        let start = Instant::now();
        for _ in 0..6 {
            limits.acquire("g", Endpoint::Init).await;
        }
        assert_eq!(start.elapsed(), Duration::ZERO);
        // Another account and another endpoint are not held up.
        limits.acquire("other", Endpoint::Init).await;
        limits.acquire("g", Endpoint::Status).await;
        assert_eq!(start.elapsed(), Duration::ZERO);
        limits.acquire("g", Endpoint::Init).await;
        assert!(
            start.elapsed() >= Duration::from_secs(60),
            "{:?}",
            start.elapsed()
        );
        assert!(start.elapsed() < Duration::from_secs(61));
    }

    #[tokio::test(start_paused = true)]
    async fn creator_info_and_status_have_their_own_sizes() {
        let limits = Limits::default();
        let start = Instant::now();
        for _ in 0..20 {
            limits.acquire("g", Endpoint::CreatorInfo).await;
        }
        for _ in 0..30 {
            limits.acquire("g", Endpoint::Status).await;
        }
        assert_eq!(start.elapsed(), Duration::ZERO);
        limits.acquire("g", Endpoint::CreatorInfo).await;
        assert!(start.elapsed() >= Duration::from_secs(60));
    }
}
