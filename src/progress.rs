//! How far an upload is: a counter the platform client advances as bytes leave, read by
//! the progress bar (`dropcast publish`), the agent's progress log lines and the status
//! server. Lock-free; cloning shares the same counter.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Bytes sent of a total. Cheap to clone (an `Arc`).
#[derive(Clone, Debug, Default)]
pub struct Progress(Arc<Counters>);

#[derive(Debug, Default)]
struct Counters {
    done: AtomicU64,
    total: AtomicU64,
}

impl Progress {
    pub fn new() -> Progress {
        Progress::default()
    }

    /// Starts counting towards `total` bytes (from zero).
    pub fn start(&self, total: u64) {
        self.0.total.store(total, Ordering::Relaxed);
        self.0.done.store(0, Ordering::Relaxed);
    }

    /// `n` more bytes went out.
    pub fn add(&self, n: u64) {
        self.0.done.fetch_add(n, Ordering::Relaxed);
    }

    /// Bytes of a part that must be sent again are taken back.
    pub fn sub(&self, n: u64) {
        let _ = self
            .0
            .done
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |d| {
                Some(d.saturating_sub(n))
            });
    }

    pub fn done(&self) -> u64 {
        self.0.done.load(Ordering::Relaxed)
    }

    pub fn total(&self) -> u64 {
        self.0.total.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_share_one_counter() {
        let p = Progress::new();
        p.start(100);
        let q = p.clone();
        q.add(60);
        p.sub(10);
        assert_eq!((p.done(), p.total()), (50, 100));
        p.sub(500);
        assert_eq!(q.done(), 0);
    }
}
