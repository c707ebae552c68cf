//! `publish` and `retry` beside a running agent: the command hands its work to the agent
//! (the one driver of the state folder, ARCHITECTURE.md "Invariants") through files in
//! `state_dir/requests/`, and prints the answer as if it had done the work itself.
//!
//! - The command writes `<id>.json` (temp file, then rename) and waits.
//! - The agent looks every [`POLL_EVERY`]; it runs a publish request through its own
//!   dispatch (a video already in flight is not started twice: the request waits for
//!   that job's outcome), writes `<id>.outcome.json` the same atomic way and removes the
//!   request. The command reads the answer and removes it.
//! - A request nobody took within [`STALE_AFTER`] is removed unread (its command is gone
//!   or will write it again); answers nobody fetched are removed after [`FORGOTTEN_AFTER`].
//! - If the agent stops without answering (its lock is released), the command removes
//!   its request and becomes the driver itself; the ledger resumes the job safely.

use std::collections::HashSet;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::ledger::{JobState, Ledger, LedgerError};
use crate::lock::{Holder, StateLock};

use super::job::Outcome;
use super::requeue::{Retried, RetryError};

/// The folder in `state_dir`.
pub(crate) const DIR: &str = "requests";
/// How often the agent looks for requests.
pub(crate) const POLL_EVERY: Duration = Duration::from_millis(500);
/// A request older than this when the agent first sees it is removed unread.
pub(crate) const STALE_AFTER: Duration = Duration::from_secs(30);
/// An answer older than this is removed: the command that asked is gone.
pub(crate) const FORGOTTEN_AFTER: Duration = Duration::from_secs(600);
/// How often a waiting command looks for its answer.
const WAIT_STEP: Duration = Duration::from_millis(100);

/// What a command asks the agent to do.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Request {
    /// `dropcast publish VIDEO [--caption FILE]`: absolute paths.
    Publish {
        video: PathBuf,
        caption: Option<PathBuf>,
        /// When the command started (unix ms): a job for this video that ended since
        /// then is the answer when the video is gone by the time the agent looks.
        since_ms: i64,
    },
    /// `dropcast retry HASH [--account NAME]` / `--all-failed`.
    Retry {
        hash: Option<String>,
        /// One target of a drop to several accounts.
        #[serde(default)]
        account: Option<String>,
        all_failed: bool,
    },
}

/// The agent's answer; the command prints it exactly as it prints its own results.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Answer {
    Published {
        url: String,
    },
    Duplicate {
        earlier: Option<String>,
    },
    Failed {
        reason: String,
        hint: String,
    },
    NotPublished {
        reason: String,
    },
    /// `retry`: the lines it prints, and whether every job was requeued.
    Retried {
        lines: Vec<String>,
        ok: bool,
    },
}

impl Answer {
    /// How `publish` reports a job's outcome.
    pub fn of(outcome: &Outcome) -> Answer {
        match outcome {
            Outcome::Published { url } => Answer::Published { url: url.clone() },
            Outcome::Duplicate { earlier } => Answer::Duplicate {
                earlier: earlier.clone(),
            },
            Outcome::Failed(f) => Answer::Failed {
                reason: f.reason.clone(),
                hint: f.hint.clone(),
            },
            Outcome::Held { reason }
            | Outcome::Abandoned { reason }
            | Outcome::WaitingForEarlier { reason } => Answer::NotPublished {
                reason: reason.clone(),
            },
            Outcome::Vanished => Answer::NotPublished {
                reason: "the video vanished".into(),
            },
            Outcome::Elsewhere { agent } => Answer::NotPublished {
                reason: format!("agent `{agent}` is publishing it"),
            },
            Outcome::Scheduled { until } => Answer::NotPublished {
                reason: format!(
                    "uploaded; it is posted at its planned slot, {}",
                    humantime::format_rfc3339_seconds(*until)
                ),
            },
        }
    }

    /// The text to print on stdout and the exit status.
    pub(crate) fn render(&self) -> (String, u8) {
        match self {
            Answer::Published { url } => (format!("published: {url}"), 0),
            Answer::Duplicate { earlier } => (
                format!(
                    "duplicate: already published as {}",
                    earlier.as_deref().unwrap_or("(a post still in progress)")
                ),
                0,
            ),
            Answer::Failed { reason, hint } => (format!("failed: {reason}\nhint: {hint}"), 1),
            Answer::NotPublished { reason } => (format!("not published: {reason}"), 1),
            Answer::Retried { lines, ok } => (lines.join("\n"), if *ok { 0 } else { 1 }),
        }
    }

    /// How the ledger says the last job for `video` (relative to the inbox) ended, if it
    /// ended at or after `since`: the answer for a video that is gone because that job
    /// archived it. `None` when no such job ended.
    pub(crate) fn from_ledger(
        ledger: &Ledger,
        video: &Path,
        since: SystemTime,
    ) -> Result<Option<Answer>, LedgerError> {
        let Some(job) = ledger
            .jobs_in(&JobState::ALL)?
            .into_iter()
            .filter(|j| j.video == video && j.updated_at >= since)
            .max_by_key(|j| j.id)
        else {
            return Ok(None);
        };
        Ok(match job.state {
            JobState::Done | JobState::Published => job.post.map(|post| Answer::Published {
                url: post.to_string(),
            }),
            JobState::Duplicate => {
                let earlier = match job.duplicate_of {
                    Some(id) => ledger.job(id)?.and_then(|e| e.post),
                    None => None,
                };
                Some(Answer::Duplicate {
                    earlier: earlier.map(|post| post.to_string()),
                })
            }
            JobState::Failed => Some(Answer::Failed {
                reason: job
                    .error
                    .map(|e| e.reason)
                    .unwrap_or_else(|| "the job failed".into()),
                hint: format!(
                    "The error receipt beside the video in failed/ says what to do; then run `dropcast retry {}`.",
                    job.sha256.short()
                ),
            }),
            JobState::Active | JobState::Unconfirmed | JobState::Abandoned => None,
        })
    }
}

/// What `retry` prints for its results, and whether all went well.
pub(crate) fn render_retry(results: &[Result<Retried, RetryError>]) -> Answer {
    let mut lines = Vec::new();
    if results.is_empty() {
        lines.push("no failed jobs".to_string());
    }
    let mut ok = true;
    for result in results {
        match result {
            Ok(r) if let Some(place) = &r.in_place => {
                lines.push(format!(
                    "job {} ({}, was {}): re-run for `{}` where it lies, {} (its receipt is updated)",
                    r.id,
                    r.video.display(),
                    r.was.as_str(),
                    place.account,
                    place.video.display()
                ));
            }
            Ok(r) => {
                lines.push(format!(
                    "requeued job {} ({}, was {})",
                    r.id,
                    r.video.display(),
                    r.was.as_str()
                ));
                if let Some(why) = &r.why {
                    lines.push(format!("  last error: {why}"));
                }
                for path in &r.moved_back {
                    lines.push(format!("  moved back: {}", path.display()));
                }
            }
            Err(e) => {
                ok = false;
                lines.push(format!("not requeued: {e}"));
            }
        }
    }
    Answer::Retried { lines, ok }
}

/// Unix milliseconds.
pub(crate) fn unix_ms(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

pub(crate) fn from_unix_ms(ms: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

fn request_path(dir: &Path, id: &str) -> PathBuf {
    dir.join(format!("{id}.json"))
}

fn answer_path(dir: &Path, id: &str) -> PathBuf {
    dir.join(format!("{id}.outcome.json"))
}

/// Writes `value` to `path` through a temp file in the same folder and a rename, so a
/// reader never sees half of it.
fn write_atomic(path: &Path, value: &impl Serialize) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .prefix(".")
        .suffix(".tmp")
        .tempfile_in(dir)?;
    serde_json::to_writer(&mut tmp, value)?;
    tmp.as_file().sync_data()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// How a handed-off request ended for the command.
#[derive(Debug)]
pub(crate) enum Handoff {
    /// The agent answered.
    Answered(Answer),
    /// The agent stopped (or a one-off command drives now) before answering; the
    /// request is withdrawn and the command must become the driver itself.
    AgentGone,
}

/// Hands `request` to the agent `holder` of `state_dir` and waits for its answer.
pub(crate) async fn ask(
    state_dir: &Path,
    holder: &Holder,
    request: &Request,
) -> io::Result<Handoff> {
    let dir = state_dir.join(DIR);
    std::fs::create_dir_all(&dir)?;
    let id = format!("{}-{}", std::process::id(), unix_ms(SystemTime::now()));
    let (req, ans) = (request_path(&dir, &id), answer_path(&dir, &id));
    write_atomic(&req, request)?;
    tracing::debug!(agent = holder.pid, request = %req.display(), "handed to the running agent");
    loop {
        if let Some(answer) = read_answer(&ans)? {
            return Ok(Handoff::Answered(answer));
        }
        // Still an agent holding the lock? (Text not written yet: its holder is starting;
        // look again next time.)
        let agent_runs = match StateLock::holder_text(state_dir) {
            Ok(Some(text)) => Holder::parse(&text).is_none_or(|h| h.is_agent()),
            Ok(None) => false,
            Err(_) => true,
        };
        if !agent_runs {
            // One last look: it may have answered just before it stopped.
            if let Some(answer) = read_answer(&ans)? {
                return Ok(Handoff::Answered(answer));
            }
            let _ = std::fs::remove_file(&req);
            return Ok(Handoff::AgentGone);
        }
        if !req.exists() && !ans.exists() {
            // Removed unread (a new agent found it stale): ask again.
            write_atomic(&req, request)?;
        }
        tokio::time::sleep(WAIT_STEP).await;
    }
}

fn read_answer(path: &Path) -> io::Result<Option<Answer>> {
    let text = match std::fs::read(path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let _ = std::fs::remove_file(path);
    serde_json::from_slice(&text)
        .map(Some)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// The agent's side: the requests it has taken and not answered yet.
#[derive(Debug)]
pub struct Requests {
    dir: PathBuf,
    taken: HashSet<String>,
    /// The folder's modification time at the last full look, and when that was: an idle
    /// agent only stats the folder between full looks.
    last_look: Option<(SystemTime, std::time::Instant)>,
}

/// A full look at the requests folder at least this often, even when its modification
/// time says nothing changed (file systems with coarse timestamps; stale files to clean).
const FULL_LOOK_EVERY: Duration = Duration::from_secs(2);

impl Requests {
    pub fn new(state_dir: &Path) -> Requests {
        let dir = state_dir.join(DIR);
        if let Err(e) = std::fs::create_dir_all(&dir) {
            tracing::warn!(folder = %dir.display(), reason = %e, "cannot create the requests folder; `dropcast publish` beside this agent will wait for it to stop");
        }
        Requests {
            dir,
            taken: HashSet::new(),
            last_look: None,
        }
    }

    /// New requests since the last look, oldest first. Stale requests and forgotten
    /// answers are removed; an unreadable request is answered with the reason.
    pub fn poll(&mut self) -> Vec<(String, Request)> {
        let mut out = Vec::new();
        for (path, id) in self.new_requests() {
            let parsed = std::fs::read(&path)
                .map_err(|e| e.to_string())
                .and_then(|t| serde_json::from_slice::<Request>(&t).map_err(|e| e.to_string()));
            self.taken.insert(id.clone());
            match parsed {
                Ok(request) => out.push((id, request)),
                Err(e) => self.answer(
                    &id,
                    &Answer::NotPublished {
                        reason: format!("the agent could not read the request: {e}"),
                    },
                ),
            }
        }
        out
    }

    /// The request files not taken yet, oldest name first (path and id); stale requests
    /// and old answers are removed on the way. The folder is read only when its
    /// modification time changed (a request arrives by rename) or now and then.
    fn new_requests(&mut self) -> Vec<(PathBuf, String)> {
        let stamp = std::fs::metadata(&self.dir).and_then(|m| m.modified()).ok();
        if let (Some(stamp), Some((seen, at))) = (stamp, self.last_look)
            && stamp == seen
            && at.elapsed() < FULL_LOOK_EVERY
        {
            return Vec::new();
        }
        if let Some(stamp) = stamp {
            self.last_look = Some((stamp, std::time::Instant::now()));
        }
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let now = SystemTime::now();
        let mut found = Vec::new();
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            let age = entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|m| now.duration_since(m).ok())
                .unwrap_or_default();
            if name.ends_with(".outcome.json") || name.ends_with(".tmp") {
                if age > FORGOTTEN_AFTER {
                    let _ = std::fs::remove_file(entry.path());
                }
                continue;
            }
            let Some(id) = name.strip_suffix(".json") else {
                continue;
            };
            if self.taken.contains(id) || !is_id(id) {
                continue;
            }
            if age > STALE_AFTER {
                tracing::info!(request = %name, "removing a request nobody took in time");
                let _ = std::fs::remove_file(entry.path());
                continue;
            }
            found.push((entry.path(), id.to_string()));
        }
        found.sort();
        found
    }

    /// Answers request `id` and removes it.
    pub fn answer(&mut self, id: &str, answer: &Answer) {
        if let Err(e) = write_atomic(&answer_path(&self.dir, id), answer) {
            tracing::warn!(request = id, reason = %e, "cannot write the answer to a request");
        }
        let _ = std::fs::remove_file(request_path(&self.dir, id));
        self.taken.remove(id);
    }
}

fn is_id(id: &str) -> bool {
    !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit() || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_is_taken_once_and_its_answer_replaces_it() {
        let dir = tempfile::tempdir().unwrap();
        let mut agent = Requests::new(dir.path());
        let req = Request::Publish {
            video: "/in/clip.mp4".into(),
            caption: None,
            since_ms: 1,
        };
        write_atomic(&request_path(&agent.dir, "1-2"), &req).unwrap();
        std::fs::write(agent.dir.join("junk.json"), "x").unwrap();
        let got = agent.poll();
        assert_eq!(got, vec![("1-2".to_string(), req)]);
        assert!(agent.poll().is_empty(), "taken once");
        let answer = Answer::Published {
            url: "https://www.douyin.com/video/7".into(),
        };
        agent.answer("1-2", &answer);
        assert!(!request_path(&agent.dir, "1-2").exists());
        let ans = answer_path(&agent.dir, "1-2");
        assert_eq!(read_answer(&ans).unwrap(), Some(answer));
        assert!(!ans.exists(), "the command removes the answer it read");
    }

    #[test]
    fn stale_requests_and_forgotten_answers_are_removed_unread() {
        let dir = tempfile::tempdir().unwrap();
        let mut agent = Requests::new(dir.path());
        let old = SystemTime::now() - FORGOTTEN_AFTER - Duration::from_secs(1);
        let req = Request::Retry {
            hash: None,
            account: None,
            all_failed: true,
        };
        let stale = request_path(&agent.dir, "1-1");
        let forgotten = answer_path(&agent.dir, "2-2");
        write_atomic(&stale, &req).unwrap();
        write_atomic(&forgotten, &Answer::NotPublished { reason: "x".into() }).unwrap();
        for path in [&stale, &forgotten] {
            std::fs::File::options()
                .write(true)
                .open(path)
                .unwrap()
                .set_modified(old)
                .unwrap();
        }
        assert!(agent.poll().is_empty());
        assert!(!stale.exists() && !forgotten.exists());
    }

    #[test]
    fn answers_print_as_publish_prints() {
        let (text, code) = Answer::Duplicate { earlier: None }.render();
        assert_eq!(
            (text.as_str(), code),
            (
                "duplicate: already published as (a post still in progress)",
                0
            )
        );
        let (text, code) = Answer::Failed {
            reason: "r".into(),
            hint: "h".into(),
        }
        .render();
        assert_eq!((text.as_str(), code), ("failed: r\nhint: h", 1));
    }
}
