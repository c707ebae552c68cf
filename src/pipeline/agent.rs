//! The watch loop: discovers videos (events and scans), settles them, bundles them with
//! their captions and hands finished bundles to jobs, `publish.concurrency` at a time. It
//! also takes the work `publish` and `retry` hand over (`handoff`), and stops when its
//! ledger file is lost.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Semaphore, mpsc};
use tokio::task::{self, JoinSet};
use tokio::time::Instant;
use tracing::{debug, info, warn};

use crate::config::WatchMode;
use crate::watch::{
    self, Backend, CaptionLookup, Completeness, InboxWatcher, Settled, Settler, SharedCaption,
    WatchEvent, WatchOptions,
};

use super::context::Context;
use super::error::{FatalError, JobFailure};
use super::folders;
use super::handoff::{self, Answer, Request, Requests};
use super::job::{self, ArchiveAttempt, Bundle, Outcome};
use super::{live, requeue};

/// How long `watch --once` waits at its end for notifications still due.
const NOTIFY_FLUSH: Duration = Duration::from_secs(10);

/// How long a shutdown waits for jobs in flight before stopping them. A stopped job loses
/// nothing: it resumes from its last ledger checkpoint on the next start.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// How long stopped jobs get to wind down before the agent leaves them behind.
const ABORT_GRACE: Duration = Duration::from_secs(1);

/// The first wait before an archive that could not be finished is tried again; it
/// doubles with each failure, up to [`ARCHIVE_RETRY_MAX`].
const ARCHIVE_RETRY_FIRST: Duration = Duration::from_secs(2);
const ARCHIVE_RETRY_MAX: Duration = Duration::from_secs(5 * 60);

/// How often videos waiting for a caption look for one.
const CAPTION_LOOK_EVERY: Duration = Duration::from_millis(500);

/// How often the ledger's file is checked while nothing writes to it.
const LEDGER_LOOK_EVERY: Duration = Duration::from_secs(2);

/// How the agent runs.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Process what is in the inbox now, wait for it, then return (`watch --once`).
    pub once: bool,
    /// Let "a writer finished with this file" events (Linux close-after-write, a rename
    /// into place) shorten the settle wait. On by default; the benchmark turns it off to
    /// compare.
    pub finished_hints: bool,
    /// Where to report what the agent does, for tests, benchmarks and the status server.
    pub events: Option<mpsc::UnboundedSender<AgentEvent>>,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            once: false,
            finished_hints: true,
            events: None,
        }
    }
}

/// Something the agent did, as it happens.
#[derive(Debug, Clone)]
pub enum AgentEvent {
    /// A settled, complete video was handed to a job.
    JobStarted {
        video: PathBuf,
        at: std::time::Instant,
    },
    /// A job ended; `outcome` is `published`, `duplicate`, `failed`, `held`, `abandoned`
    /// or `vanished`.
    JobEnded {
        video: PathBuf,
        outcome: &'static str,
    },
}

/// What a run did, for the exit status and the final log line.
#[derive(Debug, Default, Clone)]
pub struct Summary {
    pub published: usize,
    pub duplicates: usize,
    pub failed: usize,
    pub held: usize,
    /// Videos still waiting for a caption when a `--once` run ended.
    pub waiting_for_caption: Vec<PathBuf>,
    /// Videos whose caption also fits another video (`clip.mp4`, `clip.mov`, `clip.yaml`).
    pub(crate) shared_caption: Vec<PathBuf>,
    /// Videos that could not be read (permission denied, say).
    pub unreadable: Vec<PathBuf>,
    /// Videos still being written when a `--once` run ended (a process held them open
    /// for writing, or a downloader's marker lay beside them).
    pub(crate) still_writing: Vec<PathBuf>,
    /// Videos whose archive could not be finished yet (they were posted or refused).
    pub(crate) archive_pending: Vec<PathBuf>,
    /// Jobs that uploaded and left their post waiting for its planned slot (not a
    /// failure: a later run, or this one, posts them then).
    pub scheduled: usize,
}

impl Summary {
    /// Whether the run left work undone: `watch --once` then exits 1. A video left in the
    /// inbox (no caption, a shared caption, unreadable, not archived) counts: the user
    /// asked for what is there to be processed, and it was not.
    pub(crate) fn any_failed(&self) -> bool {
        self.failed > 0
            || self.held > 0
            || !self.waiting_for_caption.is_empty()
            || !self.shared_caption.is_empty()
            || !self.unreadable.is_empty()
            || !self.still_writing.is_empty()
            || !self.archive_pending.is_empty()
    }
}

/// Where a path came from.
#[derive(Clone, Copy)]
enum Seen {
    /// Its metadata changed, or some event without more to say.
    Event,
    /// Created or written, and not closed since.
    Written,
    /// Closed after writing, or renamed into place.
    Finished,
    /// Found by a scan: exists, nothing more is known.
    Scan,
}

/// A quiet video whose content says it is not finished yet (no `moov`, say).
struct Incomplete {
    size: u64,
    modified: std::time::SystemTime,
    /// When it was first found incomplete with this size and mtime.
    since: Instant,
}

/// A settled video with no caption yet, or whose caption also fits another video.
struct Waiting {
    settled: Settled,
    since: Instant,
    /// The same moment on the wall clock, for status.
    since_wall: std::time::SystemTime,
    warned: bool,
    /// Its caption is shared with another video of the same stem: it is no one's.
    shared: Option<SharedCaption>,
}

/// A video that stays in the inbox for a reason the user should see in `status`.
struct Stuck {
    reason: String,
    since: std::time::SystemTime,
}

/// When unfinished archive plans are tried again.
struct ArchiveRetry {
    /// The next try; `None` when nothing is pending.
    at: Option<Instant>,
    /// The wait after the next failure.
    delay: Duration,
    /// A try is running (its result comes back on the agent's channel).
    running: Option<AbortOnDrop>,
}

struct Agent {
    ctx: Arc<Context>,
    once: bool,
    events: Option<mpsc::UnboundedSender<AgentEvent>>,
    excluded: Vec<PathBuf>,
    settler: Settler,
    waiting: HashMap<PathBuf, Waiting>,
    incomplete: HashMap<PathBuf, Incomplete>,
    in_flight: HashSet<PathBuf>,
    /// Videos waiting for an earlier job of the same content to end.
    blocked: HashSet<PathBuf>,
    /// Drops another agent sharing the ledger works on: scans leave them alone (a change
    /// to the file, or their lease expiring, brings them back).
    elsewhere: HashSet<PathBuf>,
    /// Uploaded drops whose posts wait for their planned slot: brought back then.
    scheduled: super::schedule::Wakes,
    jobs: JoinSet<(PathBuf, Outcome)>,
    /// Which video each job task is for (a task that panics returns no path).
    task_paths: HashMap<task::Id, PathBuf>,
    permits: Arc<Semaphore>,
    symlinks_logged: HashSet<PathBuf>,
    last_caption_look: Instant,
    summary: Summary,
    /// Videos that cannot be read, with why (warned about once).
    unreadable: HashMap<PathBuf, Stuck>,
    /// Videos whose archive plan could not be finished, with why: never bundled again,
    /// only their plan is tried, with backoff.
    archiving: HashMap<PathBuf, Stuck>,
    archive_retry: ArchiveRetry,
    archive_results: mpsc::UnboundedSender<Vec<ArchiveAttempt>>,
    /// Work handed over by `dropcast publish` and `dropcast retry`.
    requests: Requests,
    /// Publish requests waiting for the outcome of their video's job.
    waiters: HashMap<PathBuf, Vec<String>>,
    last_ledger_look: Instant,
}

/// Runs the agent until `shutdown` resolves (or, with `once`, until the inbox is drained).
pub async fn run(
    ctx: Arc<Context>,
    options: RunOptions,
    shutdown: impl Future<Output = ()>,
) -> Result<Summary, FatalError> {
    // Nothing is posted that could not be archived: an archive folder that cannot take
    // files stops the agent before it starts, naming the folder.
    folders::check_async(&ctx.folders)
        .await
        .map_err(|problem| FatalError::Folder {
            path: problem.path,
            source: problem.source,
        })?;
    register(&ctx).await?;
    let (tx, events) = mpsc::unbounded_channel();
    // Kept alive for the whole run; dropping it stops the watcher.
    let discovery = start_discovery(&ctx, &options, tx)?;
    let (archive_results, archive_rx) = mpsc::unbounded_channel();
    let mut agent = Agent::new(Arc::clone(&ctx), &options, archive_results);
    if let Discovery::Events(watcher) = &discovery
        && watcher.reports_closes()
    {
        // A file seen being written waits for its close-after-write.
        agent.settler.await_close();
    }
    // Paused accounts are tried again in the background; a resumed one brings its
    // queued videos back through a full scan.
    let (resumed_tx, resumed_rx) = mpsc::unbounded_channel::<Nudge>();
    let _rechecks = (!options.once)
        .then(|| AbortOnDrop(tokio::spawn(recheck_accounts(Arc::clone(&ctx), resumed_tx))));
    // Posts archived while awaiting moderation get their public id when it comes.
    let _moderation = (!options.once)
        .then(|| AbortOnDrop(tokio::spawn(super::moderation::run(Arc::clone(&ctx)))));
    // Notifications go out from the outbox in the background, never on a job's path.
    let _notify = AbortOnDrop(tokio::spawn(crate::notify::worker::run(Arc::clone(&ctx))));
    info!(inbox = %ctx.config.inbox.display(), once = options.once, "watching");
    // Files half-way out of the inbox when the last run stopped go where they were going
    // before anything else is looked at; those that still cannot go are tried again.
    let recovered = job::recover_archives(&ctx).await;
    agent.on_archive_attempts(recovered);
    agent.full_scan().await;

    let inputs = Inputs {
        events,
        resumed: resumed_rx,
        archived: archive_rx,
        polling: matches!(discovery, Discovery::Polling),
    };
    let ended = agent.event_loop(inputs, shutdown).await;
    // A clean stop frees this agent's leases at once for the others sharing the ledger.
    if let Err(e) = ctx.ledger(|l| l.agent_stopped()).await {
        warn!(reason = %e, "cannot tell the ledger this agent stopped; its leases expire on their own");
    }
    ended?;
    drop(discovery);
    if options.once {
        // The run's notifications go out before a one-off run exits, as far as they can.
        crate::notify::worker::flush(&ctx, NOTIFY_FLUSH).await;
    }
    agent.publish_held();
    Ok(agent.into_summary(options.once))
}

/// Tells the ledger this agent runs (name, host, pid, version): the agents sharing a
/// ledger see each other in `status`, and a second agent of the same name is refused.
async fn register(ctx: &Context) -> Result<(), FatalError> {
    let info = crate::ledger::AgentInfo {
        name: String::new(),
        host: crate::ledger::host_name(),
        pid: std::process::id(),
        version: crate::version::VERSION.to_owned(),
        metrics: ctx
            .config
            .status
            .listen
            .map(|addr| format!("http://{addr}/metrics")),
    };
    let registered = ctx
        .ledger(move |l| {
            let info = crate::ledger::AgentInfo {
                name: l.agent_name().to_owned(),
                ..info
            };
            l.register_agent(&info)?;
            // A restart tries its accounts again, as it always did.
            l.forget_own_pauses()
        })
        .await;
    registered.map_err(FatalError::from)?;
    Ok(())
}

/// Starts finding files in the inbox (none but scans with `once`) and tells the live
/// state how.
fn start_discovery(
    ctx: &Context,
    options: &RunOptions,
    tx: mpsc::UnboundedSender<WatchEvent>,
) -> Result<Discovery, FatalError> {
    let config = &ctx.config;
    let discovery = if options.once {
        Discovery::ScansOnly
    } else {
        start_watcher(
            &config.inbox,
            config.watch.mode,
            config.watch.poll_interval,
            options.finished_hints,
            tx,
        )?
    };
    ctx.live.set_watching(match discovery {
        Discovery::Events(_) => "native",
        Discovery::Polling => "poll",
        Discovery::ScansOnly => "once",
    });
    Ok(discovery)
}

/// What the agent's loop listens to besides its own timers and jobs.
struct Inputs {
    /// File events from the watcher.
    events: mpsc::UnboundedReceiver<WatchEvent>,
    /// Paused accounts that work again, and `dropcast retry`.
    resumed: mpsc::UnboundedReceiver<Nudge>,
    /// Archive plans tried again in the background.
    archived: mpsc::UnboundedReceiver<Vec<ArchiveAttempt>>,
    /// The inbox is scanned every `watch.poll_interval`.
    polling: bool,
}

/// An interval whose missed ticks are not made up.
fn interval_at(start: Instant, period: Duration) -> tokio::time::Interval {
    let mut interval = tokio::time::interval_at(start, period);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    interval
}
/// How often paused accounts are looked at (a changed cookie file is noticed this fast).
const ACCOUNT_LOOK_EVERY: Duration = Duration::from_secs(2);
/// How often a paused account is tried again even if nothing changed.
const ACCOUNT_RECHECK_EVERY: Duration = Duration::from_secs(60);

/// Why the agent should look at the whole inbox now.
enum Nudge {
    /// A paused account works again: its queued videos can go.
    Resumed(String),
    /// `dropcast retry` put jobs back in the queue.
    Requeued,
}

/// Tries paused accounts again (protocol step 1) when their cookie file changes or a
/// minute has passed, and notices `dropcast retry`; says when the inbox is worth a look.
async fn recheck_accounts(ctx: Arc<Context>, resumed: mpsc::UnboundedSender<Nudge>) {
    let mut tick = tokio::time::interval(ACCOUNT_LOOK_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let marker = ctx.config.state_dir.join(super::requeue::REQUEUED_MARKER);
    let stamp = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let mut requeued = stamp(&marker);
    loop {
        tick.tick().await;
        for name in super::shared_pause::sync(&ctx).await {
            if resumed.send(Nudge::Resumed(name)).is_err() {
                return;
            }
        }
        let paused = ctx
            .accounts
            .paused_list()
            .into_iter()
            .map(|(account, p)| live::PausedAccount {
                account,
                reason: p.reason,
                since: Some(p.since.into()),
            })
            .collect();
        ctx.live.set_paused(paused);
        if let Err(e) = ctx.live.save(&ctx.config.state_dir) {
            debug!(reason = %e, "cannot save live.json");
        }
        let now = stamp(&marker);
        if now != requeued {
            requeued = now;
            if resumed.send(Nudge::Requeued).is_err() {
                return;
            }
        }
        for due in ctx.accounts.due_for_check(ACCOUNT_RECHECK_EVERY).await {
            match due.backend.check_account(&due.account).await {
                Ok(_) => {
                    ctx.accounts.resume(&due.name);
                    super::shared_pause::clear(&ctx, &due.name).await;
                    info!(account = %due.name, "the account works again; its queued videos go on");
                    if resumed.send(Nudge::Resumed(due.name)).is_err() {
                        return;
                    }
                }
                Err(e) => debug!(account = %due.name, reason = %e, "still paused"),
            }
        }
    }
}

/// Aborts a background task when the agent stops.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// How new files are noticed besides the start-up and periodic scans.
enum Discovery {
    /// Native file events (kept alive by holding the watcher).
    Events(#[allow(dead_code)] InboxWatcher),
    /// A scan of the inbox every `watch.poll_interval`: for network file systems and
    /// wherever native events cannot work. Our own scan, not notify's poll watcher: it
    /// skips `done/`, `failed/`, `duplicates/` and the state folder when they lie inside
    /// the inbox (notify's walks them every time: 10x the idle CPU with 10,000 archived
    /// files, see BENCHMARKS.md), and the settler already notices changed files.
    Polling,
    /// `--once`: the start-up scan and the settler are enough.
    ScansOnly,
}

fn start_watcher(
    inbox: &Path,
    mode: WatchMode,
    poll_interval: Duration,
    finished_hints: bool,
    tx: mpsc::UnboundedSender<WatchEvent>,
) -> Result<Discovery, FatalError> {
    let options = WatchOptions { finished_hints };
    let every = humantime::format_duration(poll_interval);
    let native = |tx| {
        watch::watch_with(inbox, Backend::Native, options, tx).map(|w| {
            info!("file events: native");
            Discovery::Events(w)
        })
    };
    let discovery = match mode {
        WatchMode::Native => native(tx),
        WatchMode::Poll => Ok(Discovery::Polling),
        WatchMode::Auto => {
            if let Some(remote) = watch::remote_fs(inbox) {
                // Native events only report changes made by this machine.
                warn!(
                    "the inbox is on a {remote}: file events from other machines never arrive there, so the inbox is polled"
                );
                Ok(Discovery::Polling)
            } else {
                match native(tx) {
                    Err(e) if e.should_poll() => {
                        warn!(reason = %e, "native file events unavailable; polling the inbox instead");
                        Ok(Discovery::Polling)
                    }
                    other => other,
                }
            }
        }
    }
    .map_err(|e| FatalError::Watch {
        path: inbox.to_path_buf(),
        reason: e.to_string(),
    })?;
    if matches!(discovery, Discovery::Polling) {
        info!(%every, "file events: polling the inbox");
    }
    Ok(discovery)
}

impl Agent {
    fn new(
        ctx: Arc<Context>,
        options: &RunOptions,
        archive_results: mpsc::UnboundedSender<Vec<ArchiveAttempt>>,
    ) -> Agent {
        let config = &ctx.config;
        Agent {
            unreadable: HashMap::new(),
            archiving: HashMap::new(),
            archive_retry: ArchiveRetry {
                at: None,
                delay: ARCHIVE_RETRY_FIRST,
                running: None,
            },
            archive_results,
            excluded: config.excluded_dirs(),
            settler: Settler::new(config.watch.settle, config.watch.incomplete_timeout),
            waiting: HashMap::new(),
            incomplete: HashMap::new(),
            in_flight: HashSet::new(),
            blocked: HashSet::new(),
            elsewhere: HashSet::new(),
            scheduled: super::schedule::Wakes::default(),
            jobs: JoinSet::new(),
            task_paths: HashMap::new(),
            permits: Arc::new(Semaphore::new(config.publish.concurrency.get())),
            symlinks_logged: HashSet::new(),
            last_caption_look: Instant::now(),
            summary: Summary::default(),
            requests: Requests::new(&config.state_dir),
            waiters: HashMap::new(),
            last_ledger_look: Instant::now(),
            once: options.once,
            events: options.events.clone(),
            ctx: Arc::clone(&ctx),
        }
    }

    /// Settles, bundles and publishes until `shutdown` (or, with `once`, until nothing is
    /// left to do); `Err` when the ledger is gone.
    async fn event_loop(
        &mut self,
        mut inputs: Inputs,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), FatalError> {
        let watch = &self.ctx.config.watch;
        let mut poll = interval_at(Instant::now(), watch.poll_interval);
        let mut rescan = interval_at(
            Instant::now() + watch.rescan_interval,
            watch.rescan_interval,
        );
        let mut requests = interval_at(Instant::now(), handoff::POLL_EVERY);
        let lease_every = self.ctx.config.ledger.lease / 3;
        let mut leases = interval_at(Instant::now() + lease_every, lease_every);
        let polling = inputs.polling;
        tokio::pin!(shutdown);
        loop {
            self.settle_due().await;
            self.check_waiting();
            self.retry_archives_if_due();
            self.wake_scheduled();
            // Files still being written are not waited for by `--once`: they stay.
            if self.once && self.settler.only_held() && self.jobs.is_empty() {
                return Ok(());
            }
            let tick = self.next_tick();
            tokio::select! {
                _ = &mut shutdown => {
                    self.drain(SHUTDOWN_GRACE).await;
                    return Ok(());
                }
                Some(event) = inputs.events.recv() => self.on_event(event).await,
                Some(nudge) = inputs.resumed.recv() => {
                    match nudge {
                        Nudge::Resumed(account) => info!(%account, "account resumed; looking for its queued videos"),
                        Nudge::Requeued => info!("jobs were put back in the queue (dropcast retry); looking at the inbox"),
                    }
                    self.full_scan().await;
                }
                Some(done) = self.jobs.join_next_with_id(), if !self.jobs.is_empty() => self.on_joined(done),
                Some(attempts) = inputs.archived.recv() => {
                    self.archive_retry.running = None;
                    self.on_archive_attempts(attempts);
                }
                _ = rescan.tick() => {
                    debug!("periodic rescan");
                    self.full_scan().await;
                }
                _ = poll.tick(), if polling => self.full_scan().await,
                _ = leases.tick() => self.on_lease_tick().await,
                _ = requests.tick() => {
                    if let Some(lost) = self.on_requests_tick().await {
                        // Not one more write: jobs stop where they are (dropping the agent
                        // aborts them); the ledger they would write to is gone.
                        self.jobs.abort_all();
                        return Err(FatalError::Ledger(lost));
                    }
                }
                _ = tokio::time::sleep_until(tick) => {}
            }
        }
    }

    /// Renews this agent's leases and heartbeat, and takes over the drops whose agent
    /// went away (their leases expired): they are looked at again as if just found.
    async fn on_lease_tick(&mut self) {
        match self.ctx.ledger(|l| l.renew_leases()).await {
            Ok(lost) if !lost.is_empty() => {
                warn!(jobs = ?lost, "another agent took these jobs over (this agent was away past its lease); they are left to it");
            }
            Ok(_) => {}
            Err(e) => {
                warn!(reason = %e, "cannot renew the leases; they expire unless the next try works")
            }
        }
        let orphans = match self.ctx.ledger(|l| l.orphaned_drops()).await {
            Ok(orphans) => orphans,
            Err(e) => {
                warn!(reason = %e, "cannot look for drops whose agent went away");
                return;
            }
        };
        for relative in orphans {
            let path = self.ctx.config.inbox.join(&relative);
            if self.in_flight.contains(&path) || !path.is_file() {
                continue;
            }
            if self.elsewhere.remove(&path) || !self.settler.contains(&path) {
                info!(video = %relative.display(), "taking over a drop whose agent went away");
                self.settler.track(path, Instant::now().into_std());
            }
        }
    }

    /// The run's summary: what was done, and what is left in the inbox and why (said in
    /// the log too at the end of a `once` run).
    fn into_summary(mut self, once: bool) -> Summary {
        let mut summary = std::mem::take(&mut self.summary);
        // Copies still waiting for an earlier job when a `--once` run ends stay queued.
        summary.held += self.blocked.len();
        for (path, w) in self.waiting {
            match w.shared {
                Some(_) => summary.shared_caption.push(path),
                None => summary.waiting_for_caption.push(path),
            }
        }
        summary.waiting_for_caption.sort();
        summary.shared_caption.sort();
        summary.unreadable = self.unreadable.into_keys().collect();
        summary.unreadable.sort();
        summary.archive_pending = self.archiving.into_keys().collect();
        summary.archive_pending.sort();
        summary.still_writing = self.settler.held();
        if once {
            let name = |p: &PathBuf| self.ctx.relative(p).display().to_string();
            for path in &summary.shared_caption {
                warn!(file = %name(path), "left in the inbox: its caption also fits another video");
            }
            for path in &summary.unreadable {
                warn!(file = %name(path), "left in the inbox: it cannot be read");
            }
            for path in &summary.archive_pending {
                warn!(file = %name(path), "left in the inbox: its archive could not be finished");
            }
            for path in &summary.still_writing {
                warn!(file = %name(path), "left in the inbox: it is still being written");
            }
        }
        summary
    }

    /// When the loop should look again even if nothing happens.
    fn next_tick(&self) -> Instant {
        let now = Instant::now();
        let mut next = now + Duration::from_secs(1);
        if let Some(at) = self.settler.next_check() {
            next = next.min(Instant::from_std(at));
        }
        if !self.waiting.is_empty() {
            next = next.min(self.last_caption_look + CAPTION_LOOK_EVERY);
        }
        if let Some(at) = self.archive_retry.at {
            next = next.min(at);
        }
        if let Some(wait) = self.scheduled.next_in(std::time::SystemTime::now()) {
            next = next.min(now + wait);
        }
        // Never spin: at least a few milliseconds between two looks.
        next.max(now + Duration::from_millis(20))
    }

    fn is_excluded(&self, path: &Path) -> bool {
        watch::is_excluded(path, &self.excluded)
    }

    async fn full_scan(&mut self) {
        let root = self.ctx.config.inbox.clone();
        let excluded = self.excluded.clone();
        let scan = match tokio::task::spawn_blocking(move || watch::scan(&root, &excluded)).await {
            Ok(scan) => scan,
            Err(e) => {
                warn!(reason = %e, "scan task failed");
                return;
            }
        };
        for (path, err) in &scan.errors {
            warn!(path = %path.display(), reason = %err, "cannot read part of the inbox");
        }
        for link in scan.symlinks {
            if self.symlinks_logged.insert(link.clone()) {
                warn!(path = %link.display(), "symlink in the inbox is not followed; it stays where it is");
            }
        }
        for file in scan.files {
            self.consider(file, Seen::Scan);
        }
    }

    async fn on_event(&mut self, event: WatchEvent) {
        match event {
            WatchEvent::Rescan => {
                info!("the file watcher asked for a rescan");
                self.full_scan().await;
            }
            WatchEvent::Changed(paths) => self.on_paths(paths, Seen::Event).await,
            WatchEvent::Written(paths) => self.on_paths(paths, Seen::Written).await,
            WatchEvent::Finished(paths) => self.on_paths(paths, Seen::Finished).await,
        }
    }

    async fn on_paths(&mut self, paths: Vec<PathBuf>, seen: Seen) {
        for path in paths {
            if path.is_dir() && !self.is_excluded(&path) {
                // A folder moved or copied in: its files may bring no events of their own.
                let excluded = self.excluded.clone();
                let scan = tokio::task::spawn_blocking(move || watch::scan(&path, &excluded)).await;
                if let Ok(scan) = scan {
                    for file in scan.files {
                        self.consider(file, Seen::Scan);
                    }
                }
            } else {
                self.consider(path, seen);
            }
        }
    }

    /// A path was seen (event or scan): start settling a video, or re-check the videos a
    /// caption belongs to.
    fn consider(&mut self, path: PathBuf, seen: Seen) {
        if self.is_excluded(&path)
            || self.in_flight.contains(&path)
            || (matches!(seen, Seen::Scan) && self.elsewhere.contains(&path))
            // Waits for its slot; a change to it (not a scan) brings it back now.
            || (matches!(seen, Seen::Scan) && self.scheduled.contains(&path))
            // Its archive plan is finished by the archive retries, never by a new bundle.
            || self.archiving.contains_key(&path)
        {
            return;
        }
        self.scheduled.remove(&path);
        let filter = &self.ctx.filter;
        if filter.is_video(&path) {
            if self.waiting.contains_key(&path) {
                // Already settled; a change makes it settle again.
                match std::fs::symlink_metadata(&path) {
                    Ok(meta) => {
                        let w = &self.waiting[&path];
                        let changed = meta.len() != w.settled.size
                            || meta.modified().ok() != Some(w.settled.modified);
                        if !changed {
                            return;
                        }
                        self.waiting.remove(&path);
                    }
                    Err(_) => {
                        self.waiting.remove(&path);
                        return;
                    }
                }
            }
            match seen {
                // A change restarts the file's settle clock.
                Seen::Event => self.settler.observe(path, Instant::now().into_std()),
                // So does a write, and where closes are reported it waits for one.
                Seen::Written => self
                    .settler
                    .observe_written(path, Instant::now().into_std()),
                // A writer closed it or renamed it into place: a short confirm window,
                // then the same content checks.
                Seen::Finished => self
                    .settler
                    .observe_finished(path, Instant::now().into_std()),
                // A scan only starts tracking: a periodic rescan must not reset files that
                // are part-way through settling.
                Seen::Scan => self.settler.track(path, Instant::now().into_std()),
            }
        }
        // Caption files need no bookkeeping: waiting videos look for theirs on every tick.
    }

    /// Bundles every video that settled since the last look.
    async fn settle_due(&mut self) {
        let settled = self.settler.poll(Instant::now().into_std());
        for file in settled {
            if self.in_flight.contains(&file.path) || self.archiving.contains_key(&file.path) {
                continue;
            }
            let content = watch::check_content(&file);
            if content.is_ok() && self.unreadable.remove(&file.path).is_some() {
                info!(file = %self.ctx.relative(&file.path).display(), "the video can be read now");
            }
            match content {
                Ok(Completeness::Complete) => {}
                Ok(Completeness::Incomplete { reason }) => {
                    self.on_incomplete(file, reason);
                    continue;
                }
                Ok(Completeness::NotAVideo { reason }) => {
                    let reason = format!("not a video: {reason}");
                    let caption = watch::find_caption(&file.path, &self.ctx.filter)
                        .ok()
                        .and_then(|c| c.path().map(Path::to_path_buf));
                    self.refuse(file, caption, reason);
                    continue;
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    debug!(file = %file.path.display(), "vanished before it could be read");
                    continue;
                }
                Err(e) => {
                    self.on_unreadable(file, "cannot read this video", e);
                    continue;
                }
            }
            let lookup = watch::find_caption(&file.path, &self.ctx.filter);
            match lookup {
                Ok(CaptionLookup::Own(caption)) | Ok(CaptionLookup::Folder(caption)) => {
                    self.dispatch(file, Some(caption));
                }
                Ok(CaptionLookup::Missing) => {
                    if self.once && !self.ctx.config.require_caption {
                        self.dispatch(file, None);
                    } else {
                        info!(
                            file = %self.ctx.relative(&file.path).display(),
                            "waiting for a caption: put {} beside it",
                            caption_names(&file.path)
                        );
                        self.wait(file, None);
                    }
                }
                Ok(CaptionLookup::Shared(shared)) => self.wait(file, Some(shared)),
                Err(e) => self.on_unreadable(file, "cannot look for its caption", e),
            }
        }
    }

    /// Keeps a settled video in the inbox until it has a caption of its own.
    fn wait(&mut self, settled: Settled, shared: Option<SharedCaption>) {
        let path = settled.path.clone();
        let mut waiting = Waiting {
            settled,
            since: Instant::now(),
            since_wall: std::time::SystemTime::now(),
            warned: false,
            shared: None,
        };
        self.set_shared(&path, &mut waiting, shared);
        self.waiting.insert(path, waiting);
    }

    /// Records whether a waiting video's caption is shared; says so once when it becomes so.
    fn set_shared(&self, path: &Path, waiting: &mut Waiting, shared: Option<SharedCaption>) {
        if let Some(shared) = &shared
            && waiting.shared.as_ref() != Some(shared)
        {
            warn!(
                file = %self.ctx.relative(path).display(),
                reason = %shared,
                "the caption fits more than one video, so neither is published; they wait in the inbox"
            );
        }
        waiting.shared = shared;
    }

    /// A video that cannot be read (permission denied, say) or whose folder cannot be
    /// listed: said once at warn level, shown in `status`, counted as left undone by
    /// `--once`, and looked at again (a running agent publishes it once it can be read).
    fn on_unreadable(&mut self, file: Settled, what: &str, e: std::io::Error) {
        let path = file.path;
        if !self.unreadable.contains_key(&path) {
            warn!(
                file = %self.ctx.relative(&path).display(),
                reason = %e,
                "{what}; it stays in the inbox and is looked at again (check its permissions)"
            );
            self.unreadable.insert(
                path.clone(),
                Stuck {
                    reason: format!("{what}: {e}"),
                    since: std::time::SystemTime::now(),
                },
            );
        }
        if !self.once {
            self.settler.track(path, Instant::now().into_std());
        }
    }

    /// Videos waiting for a caption: dispatch once one appears; warn (or, without
    /// `require_caption`, publish with the defaults) after `watch.caption_wait`.
    fn check_waiting(&mut self) {
        self.publish_waiting();
        if self.waiting.is_empty() || self.last_caption_look.elapsed() < CAPTION_LOOK_EVERY {
            return;
        }
        self.last_caption_look = Instant::now();
        let wait = self.ctx.config.watch.caption_wait;
        let require = self.ctx.config.require_caption;
        let now = Instant::now();
        let paths: Vec<PathBuf> = self.waiting.keys().cloned().collect();
        for path in paths {
            if !path.exists() {
                self.waiting.remove(&path);
                continue;
            }
            let caption = match watch::find_caption(&path, &self.ctx.filter) {
                Ok(CaptionLookup::Own(c)) | Ok(CaptionLookup::Folder(c)) => Some(c),
                lookup => {
                    let shared = match lookup {
                        Ok(CaptionLookup::Shared(shared)) => Some(shared),
                        _ => None,
                    };
                    if let Some(mut w) = self.waiting.remove(&path) {
                        self.set_shared(&path, &mut w, shared);
                        self.waiting.insert(path.clone(), w);
                    }
                    None
                }
            };
            let overdue = now.duration_since(self.waiting[&path].since) >= wait;
            if let Some(caption) = caption {
                // The caption may still be being written: let it settle briefly by checking
                // it parses at job start; a half-written caption fails with a clear reason.
                if let Some(w) = self.waiting.remove(&path) {
                    self.dispatch(w.settled, Some(caption));
                }
            } else if overdue && !require && self.waiting[&path].shared.is_none() {
                if let Some(w) = self.waiting.remove(&path) {
                    info!(file = %self.ctx.relative(&path).display(), "no caption after watch.caption_wait; publishing with the config's defaults");
                    self.dispatch(w.settled, None);
                }
            } else if overdue
                && let Some(w) = self.waiting.get_mut(&path)
                && !w.warned
                && w.shared.is_none()
            {
                w.warned = true;
                warn!(
                    file = %self.ctx.relative(&path).display(),
                    waited = %humantime::format_duration(wait),
                    "still no caption; put {} beside the video (or set require_caption: false)",
                    caption_names(&path)
                );
            }
        }
    }

    /// Tells the live state which videos wait for a caption, and which stay in the inbox
    /// for another reason.
    fn publish_waiting(&self) {
        self.publish_held();
        let mut waiting: Vec<live::Waiting> = self
            .waiting
            .iter()
            .filter(|(_, w)| w.shared.is_none())
            .map(|(path, w)| live::Waiting {
                video: self.ctx.relative(path).to_string_lossy().into_owned(),
                since: Some(w.since_wall.into()),
            })
            .collect();
        waiting.sort_by(|a, b| a.video.cmp(&b.video));
        self.ctx.live.set_waiting(waiting);
    }

    /// Tells the live state which videos stay in the inbox, and why: an archive that
    /// cannot be finished, a video that cannot be read, a caption shared by two videos.
    fn publish_held(&self) {
        let rel = |p: &Path| self.ctx.relative(p).to_string_lossy().into_owned();
        let stuck = |(path, s): (&PathBuf, &Stuck), prefix: &str| live::Held {
            video: rel(path),
            reason: format!("{prefix}{}", s.reason),
            since: Some(s.since.into()),
        };
        let mut held: Vec<live::Held> = self
            .archiving
            .iter()
            .map(|e| stuck(e, "archiving: "))
            .chain(self.unreadable.iter().map(|e| stuck(e, "")))
            .chain(self.waiting.iter().filter_map(|(path, w)| {
                w.shared.as_ref().map(|shared| live::Held {
                    video: rel(path),
                    reason: shared.to_string(),
                    since: Some(w.since_wall.into()),
                })
            }))
            .collect();
        held.sort_by(|a, b| a.video.cmp(&b.video));
        self.ctx.live.set_held(held);
    }

    /// Brings back the drops whose planned slot has come: they settle (their file is
    /// checked anew) and their job sends the post.
    fn wake_scheduled(&mut self) {
        for path in self.scheduled.take_due(std::time::SystemTime::now()) {
            info!(video = %self.ctx.relative(&path).display(), "its planned slot has come");
            self.settler.track(path, Instant::now().into_std());
        }
    }

    /// Starts a try at every unfinished archive plan when one is due and none is running.
    fn retry_archives_if_due(&mut self) {
        let due = self.archive_retry.at.is_some_and(|at| at <= Instant::now());
        if !due || self.archive_retry.running.is_some() {
            return;
        }
        self.archive_retry.at = None;
        let ctx = Arc::clone(&self.ctx);
        let skip = self.in_flight.clone();
        let results = self.archive_results.clone();
        self.archive_retry.running = Some(AbortOnDrop(tokio::spawn(async move {
            let attempts = job::finish_pending_archives(&ctx, &skip).await;
            let _ = results.send(attempts);
        })));
    }

    /// What a try at the unfinished archives found: finished ones leave the list, the
    /// others are tried again later, waiting twice as long each time (up to 5 minutes).
    fn on_archive_attempts(&mut self, attempts: Vec<ArchiveAttempt>) {
        let mut still = HashMap::new();
        let mut any_new = false;
        for attempt in attempts {
            match attempt.result {
                Ok(to) => {
                    info!(
                        file = %self.ctx.relative(&attempt.video).display(),
                        to = %to.display(),
                        job = attempt.job,
                        dest = ?attempt.dest,
                        "archived after all"
                    );
                    self.archiving.remove(&attempt.video);
                }
                Err(reason) => {
                    let (since, new_problem) = match self.archiving.remove(&attempt.video) {
                        Some(old) => (old.since, old.reason != reason),
                        None => (std::time::SystemTime::now(), true),
                    };
                    any_new |= new_problem;
                    if new_problem {
                        warn!(
                            file = %self.ctx.relative(&attempt.video).display(),
                            %reason,
                            "cannot finish archiving; the files stay where they are and the move is tried again by itself"
                        );
                    }
                    still.insert(attempt.video, Stuck { reason, since });
                }
            }
        }
        // Plans that are no longer pending (a job finished them) leave the list too.
        self.archiving = still;
        if self.archiving.is_empty() {
            self.archive_retry.delay = ARCHIVE_RETRY_FIRST;
            return;
        }
        if any_new {
            self.archive_retry.delay = ARCHIVE_RETRY_FIRST;
        }
        let delay = self.archive_retry.delay;
        self.archive_retry.at = Some(Instant::now() + delay);
        self.archive_retry.delay = (delay * 2).min(ARCHIVE_RETRY_MAX);
        self.publish_held();
    }

    fn dispatch(&mut self, settled: Settled, caption: Option<PathBuf>) {
        self.dispatch_bundle(settled, caption, None);
    }

    /// Starts a job for a bundle; `rerun`: one target of an archived drop, where it lies.
    fn dispatch_bundle(
        &mut self,
        settled: Settled,
        caption: Option<PathBuf>,
        rerun: Option<job::Rerun>,
    ) {
        let path = settled.path.clone();
        self.incomplete.remove(&path);
        self.emit(AgentEvent::JobStarted {
            video: path.clone(),
            at: std::time::Instant::now(),
        });
        let settled_path = path.clone();
        self.in_flight.insert(path.clone());
        let ctx = Arc::clone(&self.ctx);
        let permits = Arc::clone(&self.permits);
        let bundle = Bundle {
            video: path.clone(),
            caption,
            settled,
            rerun,
        };
        let task = self.jobs.spawn(async move {
            let _permit = permits.acquire_owned().await;
            let outcome = job::run(&ctx, bundle).await;
            (path, outcome)
        });
        self.task_paths.insert(task.id(), settled_path);
    }

    /// Lets jobs in flight finish for up to `grace`, then stops the rest.
    async fn drain(&mut self, grace: Duration) {
        if self.jobs.is_empty() {
            return;
        }
        info!(
            jobs = self.jobs.len(),
            "shutting down; waiting briefly for jobs in flight"
        );
        let deadline = Instant::now() + grace;
        while !self.jobs.is_empty() {
            match tokio::time::timeout_at(deadline, self.jobs.join_next_with_id()).await {
                Ok(Some(done)) => self.on_joined(done),
                Ok(None) => {}
                Err(_) => {
                    info!(
                        jobs = self.jobs.len(),
                        "stopping jobs in flight; they resume from their last checkpoint next time"
                    );
                    self.jobs.abort_all();
                    // A task stuck in a blocking call cannot be stopped: wait briefly,
                    // then leave it behind (the runtime's shutdown does not wait for it).
                    let deadline = Instant::now() + ABORT_GRACE;
                    while let Ok(Some(done)) =
                        tokio::time::timeout_at(deadline, self.jobs.join_next_with_id()).await
                    {
                        self.on_joined(done);
                    }
                    return;
                }
            }
        }
    }

    /// Keeps waiting for an unfinished video; fails it once it has stayed unfinished and
    /// unchanged for `watch.incomplete_timeout`.
    fn on_incomplete(&mut self, file: Settled, reason: String) {
        let now = Instant::now();
        let timeout = self.ctx.config.watch.incomplete_timeout;
        let entry = self
            .incomplete
            .entry(file.path.clone())
            .or_insert(Incomplete {
                size: file.size,
                modified: file.modified,
                since: now,
            });
        if entry.size != file.size || entry.modified != file.modified {
            *entry = Incomplete {
                size: file.size,
                modified: file.modified,
                since: now,
            };
        }
        let waited = now.duration_since(entry.since);
        if waited >= timeout {
            self.incomplete.remove(&file.path);
            let caption = watch::find_caption(&file.path, &self.ctx.filter)
                .ok()
                .and_then(|c| c.path().map(Path::to_path_buf));
            let reason = format!(
                "still incomplete {} after its last change: {reason}",
                humantime::format_duration(timeout)
            );
            self.refuse(file, caption, reason);
            return;
        }
        debug!(file = %file.path.display(), %reason, "not finished yet; waiting");
        // Looked at again after another settle period (sooner if it changes).
        self.settler.track(file.path, now.into_std());
    }

    /// A file that cannot be a video fails at once, without waiting or hashing.
    fn refuse(&mut self, settled: Settled, caption: Option<PathBuf>, reason: String) {
        let path = settled.path.clone();
        self.in_flight.insert(path.clone());
        let ctx = Arc::clone(&self.ctx);
        let bundle = Bundle {
            video: path.clone(),
            caption,
            settled,
            rerun: None,
        };
        let settled_path = path.clone();
        let task = self.jobs.spawn(async move {
            let failure = JobFailure {
                step: None,
                class: crate::words::FailureClass::Video,
                reason: format!("{}: {reason}", ctx.relative(&path).display()),
                hint: "Only finished video files belong in the inbox; check the export.".into(),
            };
            let outcome = job::refuse(&ctx, &bundle, failure).await;
            (path, outcome)
        });
        self.task_paths.insert(task.id(), settled_path);
    }

    fn on_joined(&mut self, done: Result<(task::Id, (PathBuf, Outcome)), task::JoinError>) {
        match done {
            Ok((id, (path, outcome))) => {
                self.task_paths.remove(&id);
                self.on_outcome(path, outcome);
            }
            Err(e) => {
                // Cancelled at shutdown, or a bug: either way the video is looked at again
                // on the next scan, and the ledger resumes its job.
                if let Some(path) = self.task_paths.remove(&e.id()) {
                    self.in_flight.remove(&path);
                }
                if e.is_panic() {
                    tracing::error!(reason = %e, "a job task panicked");
                }
            }
        }
    }

    fn emit(&self, event: AgentEvent) {
        if let Some(tx) = &self.events {
            let _ = tx.send(event);
        }
    }

    /// Every [`handoff::POLL_EVERY`]: is the ledger still there (the error that must
    /// stop the agent if not), and has a command handed over work?
    async fn on_requests_tick(&mut self) -> Option<crate::ledger::LedgerError> {
        let look = self.last_ledger_look.elapsed() >= LEDGER_LOOK_EVERY;
        if look {
            self.last_ledger_look = Instant::now();
        }
        if let Some(lost) = self.ctx.ledger_lost(look).await {
            return Some(lost);
        }
        for (id, request) in self.requests.poll() {
            match request {
                Request::Publish {
                    video,
                    caption,
                    since_ms,
                } => self.on_publish_request(id, video, caption, since_ms).await,
                Request::Retry {
                    hash,
                    account,
                    all_failed,
                } => self.on_retry_request(id, hash, account, all_failed).await,
            }
        }
        None
    }

    /// `dropcast publish VIDEO` beside this agent: the video goes through this agent's
    /// dispatch, never a second job for a video in flight; the command gets its outcome.
    async fn on_publish_request(
        &mut self,
        id: String,
        video: PathBuf,
        caption: Option<PathBuf>,
        since_ms: i64,
    ) {
        let name = self.ctx.relative(&video).display().to_string();
        if self.in_flight.contains(&video) || self.blocked.contains(&video) {
            info!(file = %name, "`dropcast publish` asked for a video already in flight; it gets that job's outcome");
            self.waiters.entry(video).or_default().push(id);
            return;
        }
        match std::fs::symlink_metadata(&video) {
            Ok(meta) if meta.is_file() => {
                info!(file = %name, "`dropcast publish` handed this video to the agent");
                self.waiting.remove(&video);
                self.incomplete.remove(&video);
                self.settler.forget(&video);
                let settled = Settled::from_metadata(video.clone(), &meta);
                self.waiters.entry(video).or_default().push(id);
                self.dispatch(settled, caption);
            }
            Ok(_) => self.requests.answer(
                &id,
                &Answer::NotPublished {
                    reason: format!("{} is not a file", video.display()),
                },
            ),
            Err(_) => {
                // Gone: a job that ended since the command started may have archived it.
                let rel = self.ctx.relative(&video).to_path_buf();
                let since = handoff::from_unix_ms(since_ms);
                let answer = self
                    .ctx
                    .ledger(move |l| Answer::from_ledger(l, &rel, since))
                    .await
                    .ok()
                    .flatten()
                    .unwrap_or(Answer::NotPublished {
                        reason: "the video vanished".into(),
                    });
                self.requests.answer(&id, &answer);
            }
        }
    }

    /// `dropcast retry` beside this agent: done here, then the inbox is looked at.
    async fn on_retry_request(
        &mut self,
        id: String,
        hash: Option<String>,
        account: Option<String>,
        all_failed: bool,
    ) {
        let ctx = Arc::clone(&self.ctx);
        let results = self
            .ctx
            .ledger(move |l| {
                Ok(match hash {
                    Some(hash) if !all_failed => vec![requeue::retry_target(
                        &ctx.config,
                        l,
                        &hash,
                        account.as_deref(),
                    )],
                    _ => requeue::retry_all_failed(&ctx.config, l),
                })
            })
            .await;
        for retried in results.iter().flatten().flatten() {
            if let Some(place) = &retried.in_place {
                self.rerun_in_place(place);
            }
        }
        let answer = match results {
            Ok(results) => handoff::render_retry(&results),
            Err(e) => Answer::Retried {
                lines: vec![format!("not requeued: ledger: {e}")],
                ok: false,
            },
        };
        info!("`dropcast retry` was handed to the agent; looking at the inbox");
        self.requests.answer(&id, &answer);
        self.full_scan().await;
    }

    /// Re-runs one target of a drop archived in `done/`, on the files where they lie.
    fn rerun_in_place(&mut self, place: &requeue::InPlace) {
        if self.in_flight.contains(&place.video) {
            info!(video = %place.video.display(), "already being re-run");
            return;
        }
        match std::fs::symlink_metadata(&place.video) {
            Ok(meta) if meta.is_file() => {
                info!(video = %place.video.display(), account = %place.account, "re-running a target where its video lies");
                let settled = Settled::from_metadata(place.video.clone(), &meta);
                let rerun = job::Rerun {
                    account: place.account.clone(),
                    receipt: place.receipt.clone(),
                };
                self.dispatch_bundle(settled, place.caption.clone(), Some(rerun));
            }
            _ => warn!(video = %place.video.display(), "the video to re-run is gone"),
        }
    }

    fn on_outcome(&mut self, path: PathBuf, outcome: Outcome) {
        self.in_flight.remove(&path);
        // Commands waiting for this video hear how it ended; a job that starts over
        // (abandoned, or waiting for an earlier copy) has not ended yet.
        if !matches!(
            outcome,
            Outcome::Abandoned { .. } | Outcome::WaitingForEarlier { .. }
        ) && let Some(ids) = self.waiters.remove(&path)
        {
            let answer = Answer::of(&outcome);
            for id in ids {
                self.requests.answer(&id, &answer);
            }
        }
        if !matches!(outcome, Outcome::WaitingForEarlier { .. }) {
            // A job ended: copies that waited for an earlier one of the same video are
            // looked at again (they settle first, so their file is checked anew).
            for blocked in std::mem::take(&mut self.blocked) {
                self.settler.observe(blocked, Instant::now().into_std());
            }
        }
        self.emit(AgentEvent::JobEnded {
            video: path.clone(),
            outcome: outcome.label(),
        });
        match &outcome {
            Outcome::Published { .. } => self.summary.published += 1,
            Outcome::Duplicate { .. } => self.summary.duplicates += 1,
            Outcome::Failed(_) => self.summary.failed += 1,
            Outcome::Held { .. } => {
                self.summary.held += 1;
                // If it was its archive that failed, the plan is tried again with backoff.
                self.archive_retry.at = Some(Instant::now());
            }
            Outcome::Abandoned { .. } => {
                // Starts over once it settles again.
                self.settler.observe(path, Instant::now().into_std());
            }
            Outcome::Vanished => {}
            Outcome::Elsewhere { .. } => {
                self.elsewhere.insert(path);
            }
            Outcome::WaitingForEarlier { .. } => {
                self.blocked.insert(path);
            }
            Outcome::Scheduled { until } => {
                self.summary.scheduled += 1;
                self.scheduled.insert(path, *until);
            }
        }
    }
}

/// The caption names a video can have, for messages: `clip.yaml (or clip.yml,
/// clip.caption.yaml)`.
fn caption_names(video: &Path) -> String {
    let stem = video
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    format!("{stem}.yaml (or {stem}.yml, {stem}.caption.yaml)")
}
