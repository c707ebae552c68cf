//! What the agent is doing right now, beyond what the ledger records: jobs in flight with
//! their step and progress, videos waiting for a caption or held in the inbox, paused
//! accounts, counters since start. The status server serves it; a snapshot is kept in `state_dir/live.json` for
//! `dropcast status`. Never holds a secret.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::progress::Progress;
use crate::receipt::UtcTime;
use crate::words::Stage;

/// The file `dropcast status` reads.
pub(crate) const SNAPSHOT_FILE: &str = "live.json";

/// A moment's view of the agent, as served and as saved.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Snapshot {
    pub pid: u32,
    pub(crate) started_at: Option<UtcTime>,
    pub(crate) updated_at: Option<UtcTime>,
    /// `native`, `poll` or `once`.
    pub watching: String,
    pub in_flight: Vec<InFlight>,
    pub waiting_for_caption: Vec<Waiting>,
    /// Videos that stay in the inbox for a reason the user should know: an archive that
    /// cannot be finished, a video that cannot be read, a caption shared by two videos.
    #[serde(default)]
    pub held: Vec<Held>,
    pub paused_accounts: Vec<PausedAccount>,
    pub counters: Counters,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct InFlight {
    /// Relative to the inbox.
    pub video: String,
    pub sha256: Option<String>,
    pub account: Option<String>,
    /// What it is doing now (`hash`, `ledger`, a backend's step, `publish`, `archive`).
    pub step: Stage,
    pub bytes_done: u64,
    pub bytes_total: u64,
    pub(crate) started_at: Option<UtcTime>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Waiting {
    pub video: String,
    pub since: Option<UtcTime>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Held {
    /// Relative to the inbox.
    pub video: String,
    /// Why, with what to do (`archiving: cannot create folder …`).
    pub reason: String,
    pub since: Option<UtcTime>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct PausedAccount {
    pub account: String,
    pub reason: String,
    pub since: Option<UtcTime>,
}

/// Counts since the agent started, for `/metrics`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Counters {
    /// Jobs ended, by outcome (`published`, `duplicate`, `failed`, `held`, …).
    pub(crate) outcomes: BTreeMap<String, u64>,
    /// Errors seen, by class (`transient`, `rate_limited`, `auth_expired`, `rejected`, `unknown`).
    pub(crate) errors: BTreeMap<String, u64>,
    pub(crate) bytes_uploaded: u64,
    /// Seconds spent uploading (with `bytes_uploaded`: throughput).
    pub(crate) upload_seconds: f64,
    /// Publish latency (settled → published), seconds, one entry per published job.
    pub(crate) publish_latency: Histogram,
}

/// A Prometheus-style cumulative histogram.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct Histogram {
    pub(crate) bounds: Vec<f64>,
    /// `counts[i]`: observations ≤ `bounds[i]`; one more for +Inf.
    pub counts: Vec<u64>,
    pub sum: f64,
    pub count: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        let bounds = vec![1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0];
        Histogram {
            counts: vec![0; bounds.len() + 1],
            bounds,
            sum: 0.0,
            count: 0,
        }
    }
}

impl Histogram {
    pub fn observe(&mut self, value: f64) {
        for (i, bound) in self.bounds.iter().enumerate() {
            if value <= *bound {
                self.counts[i] += 1;
            }
        }
        if let Some(inf) = self.counts.last_mut() {
            *inf += 1;
        }
        self.sum += value;
        self.count += 1;
    }
}

/// The agent's live state, shared by jobs, the loop and the status server.
#[derive(Default)]
pub struct Live {
    inner: Mutex<State>,
}

#[derive(Default)]
struct State {
    snapshot: Snapshot,
    /// Progress counters of the jobs in flight, by video.
    progress: BTreeMap<String, Progress>,
    dirty: bool,
}

impl Live {
    pub fn new(watching: &str) -> Live {
        let live = Live::default();
        {
            let mut s = live.lock();
            s.snapshot.pid = std::process::id();
            s.snapshot.started_at = Some(UtcTime::now());
            s.snapshot.watching = watching.to_string();
            s.dirty = true;
        }
        live
    }

    /// How the inbox is watched (`native`, `poll`, `once`), once the agent knows.
    pub fn set_watching(&self, watching: &str) {
        let mut s = self.lock();
        s.snapshot.watching = watching.to_string();
        s.dirty = true;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A job started on `video`; returns the progress counter its upload advances.
    pub fn job_started(&self, video: &str) -> Progress {
        let mut s = self.lock();
        let progress = Progress::new();
        s.progress.insert(video.to_string(), progress.clone());
        s.snapshot.in_flight.retain(|j| j.video != video);
        s.snapshot.in_flight.push(InFlight {
            video: video.to_string(),
            step: Stage::Hash,
            started_at: Some(UtcTime::now()),
            ..InFlight::default()
        });
        s.dirty = true;
        progress
    }

    /// The progress counter of the job on `video` (a detached one if there is no such job).
    pub fn progress(&self, video: &str) -> Progress {
        self.lock().progress.get(video).cloned().unwrap_or_default()
    }

    /// The job on `video` is at `step` (for `account`, once known).
    pub fn job_step(&self, video: &str, step: &Stage, sha256: Option<&str>, account: Option<&str>) {
        let mut s = self.lock();
        if let Some(j) = s.snapshot.in_flight.iter_mut().find(|j| j.video == video) {
            j.step = step.clone();
            if let Some(h) = sha256 {
                j.sha256 = Some(h.to_string());
            }
            if let Some(a) = account {
                j.account = Some(a.to_string());
            }
        }
        s.dirty = true;
    }

    /// The job on `video` ended with `outcome`.
    pub fn job_ended(&self, video: &str, outcome: &str) {
        let mut s = self.lock();
        s.snapshot.in_flight.retain(|j| j.video != video);
        s.progress.remove(video);
        *s.snapshot
            .counters
            .outcomes
            .entry(outcome.to_string())
            .or_default() += 1;
        s.dirty = true;
    }

    pub fn error(&self, class: &str) {
        let mut s = self.lock();
        *s.snapshot
            .counters
            .errors
            .entry(class.to_string())
            .or_default() += 1;
        s.dirty = true;
    }

    pub fn uploaded(&self, bytes: u64, seconds: f64) {
        let mut s = self.lock();
        s.snapshot.counters.bytes_uploaded += bytes;
        s.snapshot.counters.upload_seconds += seconds;
        s.dirty = true;
    }

    pub fn published(&self, latency_seconds: f64) {
        let mut s = self.lock();
        s.snapshot.counters.publish_latency.observe(latency_seconds);
        s.dirty = true;
    }

    pub fn set_waiting(&self, waiting: Vec<Waiting>) {
        let mut s = self.lock();
        if s.snapshot.waiting_for_caption != waiting {
            s.snapshot.waiting_for_caption = waiting;
            s.dirty = true;
        }
    }

    pub fn set_held(&self, held: Vec<Held>) {
        let mut s = self.lock();
        if s.snapshot.held != held {
            s.snapshot.held = held;
            s.dirty = true;
        }
    }

    pub fn set_paused(&self, paused: Vec<PausedAccount>) {
        let mut s = self.lock();
        if s.snapshot.paused_accounts != paused {
            s.snapshot.paused_accounts = paused;
            s.dirty = true;
        }
    }

    /// The current view, with upload progress read fresh.
    pub fn snapshot(&self) -> Snapshot {
        let mut s = self.lock();
        let State {
            snapshot, progress, ..
        } = &mut *s;
        for job in &mut snapshot.in_flight {
            if let Some(p) = progress.get(&job.video) {
                job.bytes_done = p.done();
                job.bytes_total = p.total();
            }
        }
        snapshot.updated_at = Some(UtcTime::now());
        snapshot.clone()
    }

    /// Writes the snapshot to `state_dir/live.json` (atomically) when something changed
    /// or uploads are moving.
    pub fn save(&self, state_dir: &Path) -> std::io::Result<()> {
        let moving = {
            let s = self.lock();
            s.dirty || !s.snapshot.in_flight.is_empty()
        };
        if !moving {
            return Ok(());
        }
        let snapshot = self.snapshot();
        let json = serde_json::to_vec_pretty(&snapshot).map_err(std::io::Error::other)?;
        let path = state_dir.join(SNAPSHOT_FILE);
        let tmp = state_dir.join(format!(".{SNAPSHOT_FILE}.tmp"));
        std::fs::write(&tmp, json)?;
        std::fs::rename(&tmp, &path)?;
        self.lock().dirty = false;
        Ok(())
    }

    /// Reads the snapshot a running agent saved.
    pub fn load(state_dir: &Path) -> Option<Snapshot> {
        let text = std::fs::read_to_string(state_dir.join(SNAPSHOT_FILE)).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// The path of the saved snapshot.
    pub fn snapshot_path(state_dir: &Path) -> PathBuf {
        state_dir.join(SNAPSHOT_FILE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_is_cumulative() {
        let mut h = Histogram::default();
        h.observe(0.5);
        h.observe(3.0);
        h.observe(10_000.0);
        assert_eq!(h.counts[0], 1); // ≤ 1
        assert_eq!(h.counts[2], 2); // ≤ 5
        assert_eq!(*h.counts.last().unwrap(), 3); // +Inf
        assert_eq!(h.count, 3);
    }

    #[test]
    fn snapshot_reads_progress_and_round_trips_through_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let live = Live::new("native");
        let p = live.job_started("a/clip.mp4");
        let upload = Stage::parse("upload");
        live.job_step("a/clip.mp4", &upload, Some("abc"), Some("main"));
        p.start(100);
        p.add(40);
        live.save(dir.path()).unwrap();
        let saved = Live::load(dir.path()).unwrap();
        assert_eq!(saved.in_flight[0].bytes_done, 40);
        assert_eq!(saved.in_flight[0].step, upload);
        live.job_ended("a/clip.mp4", "published");
        assert!(live.snapshot().in_flight.is_empty());
        assert_eq!(live.snapshot().counters.outcomes["published"], 1);
    }
}
