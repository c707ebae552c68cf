//! The job ledger: the single source of truth for every job: which content was claimed
//! for which account, which protocol steps finished with what result, how the job ended,
//! and which agent works on it now. One SQLite file in `state_dir` by default, or one
//! PostgreSQL database shared by several agents (`ledger: {url_env}`); every rule below is
//! written once, in SQL both run (`db`), and the same tests run on both.
//!
//! **Every state change is one committed transaction; the commit is the checkpoint.**
//! **At most one live job (Active, Published, Done, Unconfirmed) exists per
//! (sha256, account)**: `claim` checks it, and a partial UNIQUE index enforces it, so
//! no bug can create a second one, whichever agent tries. Illegal transitions return
//! [`LedgerError::Illegal`] instead of writing.
//!
//! **A job is worked by the agent holding its lease, and by nobody else** (`lease`): a
//! claim takes the lease with a new fencing number, and every write of the job checks, in
//! its transaction, that the number is still the writer's.
//!
//! **A job's files move only after their archive plan is committed** (schema v2), so a
//! restart finds every interrupted archive in [`Ledger::pending_archives`] and
//! finishes it. Each state-changing commit is followed by the failpoint
//! `after_commit:<what>` (see `crate::failpoint`).
//!
//! The API is synchronous; async callers use `spawn_blocking`. See docs/shared-ledger.md.

mod db;
mod lease;
mod outbox;
mod plan;
mod postgres;
mod schema;
mod shared;
mod sqlite;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::domain::{ContentHash, Platform, Post, PostState, StepName};
use crate::failpoint;

use db::{Db, Row, Sql, Tx, p};
pub(crate) use lease::DEFAULT_TTL as DEFAULT_LEASE;
pub(crate) use lease::{AgentInfo, AgentRow, Lease, default_agent_name as host_name};
pub(crate) use outbox::{Outbox, Pending};
pub use postgres::Upgrade;
pub(crate) use schema::VERSION as SCHEMA_VERSION;
pub(crate) use shared::SharedPause;
use sqlite::FileId;

/// A job's row id.
pub type JobId = i64;

/// The ledger's file name inside `state_dir`.
pub(crate) const FILE_NAME: &str = "ledger.sqlite3";

/// Jobs whose archive was planned and is not recorded as finished: Published jobs not
/// yet Done, Failed and Duplicate jobs without `archived_to`.
const PENDING_ARCHIVE_SQL: &str = "archive_plan IS NOT NULL AND (state = 'published' \
     OR (state IN ('failed', 'duplicate') AND archived_to IS NULL))";

/// The SQL list of live states; must match [`JobState::is_live`] (a test checks).
const LIVE_STATES_SQL: &str = "('active', 'published', 'done', 'unconfirmed')";

const JOB_COLUMNS: &str = "id, sha256, account, state, video, caption, size, publish_sent_at, \
     post_id, error_step, error_class, error_reason, duplicate_of, archived_to, attempts, \
     created_at, updated_at, publish_at, platform, post_url, post_state, lease_holder, \
     lease_until, fence, publish_sent_by";

/// Where a job stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum JobState {
    /// Claimed; being published (or waiting to be).
    Active,
    /// The post exists; the files are not archived yet.
    Published,
    /// Published and archived.
    Done,
    /// Gave up; the files went (or go) to `failed/`.
    Failed,
    /// Same content as an earlier live job for the same account.
    Duplicate,
    /// The video changed while it was being published; a new job starts over.
    Abandoned,
    /// Step 5 was sent and reconciliation could not tell whether the post exists.
    Unconfirmed,
}

impl JobState {
    pub const ALL: [JobState; 7] = [
        JobState::Active,
        JobState::Published,
        JobState::Done,
        JobState::Failed,
        JobState::Duplicate,
        JobState::Abandoned,
        JobState::Unconfirmed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Active => "active",
            JobState::Published => "published",
            JobState::Done => "done",
            JobState::Failed => "failed",
            JobState::Duplicate => "duplicate",
            JobState::Abandoned => "abandoned",
            JobState::Unconfirmed => "unconfirmed",
        }
    }

    pub fn parse(s: &str) -> Option<JobState> {
        JobState::ALL.into_iter().find(|state| state.as_str() == s)
    }

    /// A live job blocks any other job for the same (sha256, account).
    pub(crate) fn is_live(self) -> bool {
        matches!(
            self,
            JobState::Active | JobState::Published | JobState::Done | JobState::Unconfirmed
        )
    }

    /// A job in this state is picked up again when its video is claimed again.
    pub(crate) fn is_resumable(self) -> bool {
        matches!(
            self,
            JobState::Active | JobState::Published | JobState::Unconfirmed
        )
    }
}

impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for JobState {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// A video about to be claimed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewJob {
    pub sha256: ContentHash,
    pub account: String,
    /// The account's platform.
    pub platform: Platform,
    /// Relative to the inbox.
    pub video: PathBuf,
    pub caption: Option<PathBuf>,
    pub size: u64,
}

/// What [`Ledger::claim`] decided.
// One value per claim; boxing would only make matching on it clumsier.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq)]
pub enum Claim {
    /// A fresh job in state Active.
    New(JobRecord),
    /// The same video was already being worked on; carry on from its checkpoints.
    Resume(JobRecord),
    /// The content is already live for this account; `job` is the new job, recorded
    /// in state Duplicate with `duplicate_of = earlier.id`.
    Duplicate { job: JobRecord, earlier: JobRecord },
    /// The same video is being worked on by another agent (`holder`), whose lease has not
    /// expired: leave it alone.
    Held { job: JobRecord, holder: String },
}

/// Why a job failed, was abandoned or is unconfirmed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobError {
    pub step: Option<StepName>,
    pub class: String,
    pub reason: String,
}

/// One finished protocol step.
#[derive(Clone, Debug, PartialEq)]
pub struct StepRecord {
    pub at: SystemTime,
    pub result: serde_json::Value,
}

/// A job's finished steps, in the order they were recorded.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Steps(Vec<(StepName, StepRecord)>);

impl Steps {
    pub fn get(&self, step: &StepName) -> Option<&StepRecord> {
        self.0.iter().find(|(s, _)| s == step).map(|(_, r)| r)
    }

    pub fn contains(&self, step: &StepName) -> bool {
        self.get(step).is_some()
    }

    /// The step recorded last.
    pub fn last(&self) -> Option<&StepName> {
        self.0.last().map(|(s, _)| s)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The steps, in the order they were recorded.
    pub fn iter(&self) -> impl Iterator<Item = (&StepName, &StepRecord)> {
        self.0.iter().map(|(s, r)| (s, r))
    }

    pub fn names(&self) -> Vec<&str> {
        self.0.iter().map(|(s, _)| s.as_str()).collect()
    }
}

impl FromIterator<(StepName, StepRecord)> for Steps {
    fn from_iter<I: IntoIterator<Item = (StepName, StepRecord)>>(iter: I) -> Self {
        Steps(iter.into_iter().collect())
    }
}

/// Everything the ledger knows about one job.
#[derive(Clone, Debug, PartialEq)]
pub struct JobRecord {
    pub id: JobId,
    pub sha256: ContentHash,
    pub account: String,
    /// The account's platform when the job was claimed.
    pub platform: Platform,
    pub state: JobState,
    /// Relative to the inbox.
    pub video: PathBuf,
    pub caption: Option<PathBuf>,
    pub size: u64,
    /// Each finished step: when, and its JSON result.
    pub steps: Steps,
    /// Set just before step 5 is sent.
    pub publish_sent_at: Option<SystemTime>,
    /// The agent that set the mark (its name).
    pub(crate) publish_sent_by: Option<String>,
    /// The post, once its id is known.
    pub post: Option<Post>,
    pub error: Option<JobError>,
    pub(crate) duplicate_of: Option<JobId>,
    pub(crate) archived_to: Option<PathBuf>,
    pub attempts: u32,
    pub(crate) created_at: SystemTime,
    pub(crate) updated_at: SystemTime,
    /// When the post is scheduled to appear (unix seconds); `None`: at once.
    pub publish_at: Option<i64>,
    /// Which agent works on it (see `lease`).
    pub(crate) lease: Lease,
}

/// A part of a multipart upload that the platform confirmed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PartRecord {
    pub number: u32,
    pub size: u64,
    pub crc32: u32,
}

impl JobRecord {
    /// Step 5 was (maybe) sent and no result is recorded: only reconciliation (6a)
    /// may tell what happened.
    pub fn publish_in_doubt(&self) -> bool {
        self.publish_sent_at.is_some() && !self.steps.contains(&StepName::PUBLISH)
    }

    /// Step 5 is known to have posted (the platform said the video is already published)
    /// but the post's id is not known yet: never sent again, never failed or abandoned;
    /// only the account's post list can finish it.
    pub fn posted_without_id(&self) -> bool {
        self.post.is_none() && self.steps.contains(&StepName::PUBLISH)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("cannot prepare the ledger at {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("ledger database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("shared ledger (PostgreSQL): {0}")]
    Postgres(String),
    #[error("the ledger's schema is not what this dropcast expects: {0}")]
    Schema(String),
    #[error(
        "the shared ledger has schema {found}; this dropcast writes {supported}. Run `dropcast ledger migrate` once (from any machine), then start the agents again"
    )]
    OlderSchema { found: i64, supported: i64 },
    /// Another agent took the job over (its lease expired while this one was stopped or
    /// cut off): this agent must leave the job and its files alone.
    #[error("job {id} was taken over by agent `{holder}`; this agent leaves it")]
    LeaseLost { id: JobId, holder: String },
    /// Another agent holds the job's lease and is alive.
    #[error("job {id} is being worked on by agent `{holder}`")]
    LeaseHeld { id: JobId, holder: String },
    #[error(
        "another agent named `{name}` is running (pid {pid} on {host}); give each agent its own `agent.name`"
    )]
    AgentNameTaken {
        name: String,
        host: String,
        pid: i64,
    },
    #[error(
        "the ledger was written by a newer dropcast (schema {found}; this one knows up to {supported}): upgrade dropcast to the version that wrote it (on every machine sharing the ledger); a ledger is never downgraded"
    )]
    NewerSchema { found: i64, supported: i64 },
    #[error(
        "the ledger could not switch to WAL journaling (got {0:?}); is state_dir on a network file system?"
    )]
    NoWal(String),
    #[error("no job {0} in the ledger")]
    NoSuchJob(JobId),
    #[error("job {id} is {state}: cannot {action} ({why})")]
    Illegal {
        id: JobId,
        state: JobState,
        action: &'static str,
        why: &'static str,
    },
    #[error("another live job already holds this content for this account")]
    LiveJobExists,
    #[error("a post id can belong to one job only")]
    PostTaken,
    #[error("ledger row for job {id} is corrupt: {what}")]
    Corrupt { id: JobId, what: String },
    #[error("step result cannot be stored: {0}")]
    Json(#[from] serde_json::Error),
    #[error("invalid argument: {0}")]
    Invalid(&'static str),
    /// The database file was deleted, replaced or emptied under the open connection:
    /// writing on would write to a file nobody will read again.
    #[error(
        "the ledger {} {what} while dropcast was using it. dropcast stopped so that nothing is posted twice. Put the file back from a backup, or run `dropcast ledger rebuild` to rebuild it from the receipts in done/ and duplicates/, then start dropcast again.",
        path.display()
    )]
    Lost { path: PathBuf, what: &'static str },
}

/// Where the ledger lives.
#[derive(Clone, Debug)]
enum Location {
    /// The SQLite file.
    File(PathBuf),
    /// The PostgreSQL server and database (`host:port/db`; never the password).
    Server(String),
}

/// The ledger: one database connection, and the leases this agent holds.
pub struct Ledger {
    db: Db,
    location: Location,
    /// The SQLite file that was opened (device and inode), to notice it being deleted or
    /// replaced under the connection.
    file: Option<FileId>,
    /// The agent this ledger writes for: the lease holder's name.
    agent: String,
    /// The fencing number of each lease this agent holds.
    held: HashMap<JobId, i64>,
    /// Jobs another agent took over from this one: every write is refused with
    /// `LeaseLost` until this agent claims the job again or is done with its drop.
    lost: HashSet<JobId>,
    /// How long a lease lasts unless renewed.
    lease_ttl: Duration,
    /// The notification sinks state changes are enqueued for (`outbox`).
    outbox: Outbox,
}

impl fmt::Debug for Ledger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ledger")
            .field("location", &self.location)
            .field("agent", &self.agent)
            .finish()
    }
}

impl Ledger {
    /// Opens (creating if needed) `state_dir/ledger.sqlite3`: the folder is created
    /// (mode 0700 on unix), the database file is mode 0600, WAL, `synchronous=FULL`,
    /// and the schema is migrated to the current version.
    pub fn open(state_dir: &Path) -> Result<Ledger, LedgerError> {
        sqlite::create_state_dir(state_dir)?;
        let path = state_dir.join(FILE_NAME);
        let conn = sqlite::open(&path)?;
        tracing::debug!(path = %path.display(), "ledger open");
        let file = FileId::of(&path);
        Ledger::with(Db::Sqlite(conn), Location::File(path), file)
    }

    /// Connects to the shared ledger at `url` (a `postgres://` URL), creating its schema in
    /// an empty database; an older schema is upgraded only with [`Upgrade::Migrate`].
    pub fn open_postgres(url: &str, upgrade: Upgrade) -> Result<Ledger, LedgerError> {
        let conn = postgres::PgConn::connect(url, upgrade)?;
        let location = Location::Server(conn.display.clone());
        tracing::debug!(server = %conn.display, "shared ledger open");
        Ledger::with(Db::Postgres(conn), location, None)
    }

    /// Opens the ledger `config` names (`ledger:`): SQLite in `state_dir`, or the shared
    /// PostgreSQL database, writing as this agent (`agent.name`, else the host name).
    pub(crate) fn open_configured(config: &crate::config::Config) -> Result<Ledger, LedgerError> {
        Ledger::open_with(config, Upgrade::Refuse)
    }

    /// [`open_configured`](Self::open_configured); `upgrade` says whether an older shared
    /// schema is upgraded (`dropcast ledger migrate`).
    pub(crate) fn open_with(
        config: &crate::config::Config,
        upgrade: Upgrade,
    ) -> Result<Ledger, LedgerError> {
        let mut ledger = match &config.ledger.backend {
            crate::config::LedgerBackend::Sqlite => Ledger::open(&config.state_dir)?,
            crate::config::LedgerBackend::Postgres { url, .. } => {
                Ledger::open_postgres(url.expose(), upgrade)?
            }
        };
        let name = config
            .ledger
            .agent
            .clone()
            .unwrap_or_else(lease::default_agent_name);
        ledger.set_agent(&name, config.ledger.lease);
        ledger.set_outbox(Outbox::from_config(config));
        Ok(ledger)
    }

    /// Whether the configured ledger exists yet (the SQLite file; a shared one always
    /// does), so that readers do not create one.
    pub(crate) fn exists(config: &crate::config::Config) -> bool {
        config.ledger.is_shared() || config.state_dir.join(FILE_NAME).is_file()
    }

    fn with(db: Db, location: Location, file: Option<FileId>) -> Result<Ledger, LedgerError> {
        let ledger = Ledger {
            db,
            location,
            file,
            agent: lease::default_agent_name(),
            held: HashMap::new(),
            lost: HashSet::new(),
            lease_ttl: lease::DEFAULT_TTL,
            outbox: Outbox::default(),
        };
        forget_ended_upload_sessions(&ledger.db)?;
        Ok(ledger)
    }

    /// The database file, or for a shared ledger `postgresql://host:port/db`.
    pub fn path(&self) -> PathBuf {
        match &self.location {
            Location::File(path) => path.clone(),
            Location::Server(server) => PathBuf::from(format!("postgresql://{server}")),
        }
    }

    /// True for a ledger on PostgreSQL (several agents may share it).
    pub(crate) fn is_shared(&self) -> bool {
        self.db.is_postgres()
    }

    /// Claims `job` in one transaction.
    ///
    /// A live job for the same (sha256, account) that is Active/Published/Unconfirmed
    /// with the same video path is resumed (its caption path is updated if it moved).
    /// Any other live job makes the new one a Duplicate, unless `allow_duplicates`, in
    /// which case a new Active job is created beside it. Failed, Abandoned and
    /// Duplicate jobs never block.
    ///
    /// A new or resumed job is leased to this agent with a new fencing number; a job to
    /// resume that another live agent holds is [`Claim::Held`] and nothing is written.
    pub fn claim(&mut self, job: &NewJob, allow_duplicates: bool) -> Result<Claim, LedgerError> {
        let size = i64::try_from(job.size).map_err(|_| LedgerError::Invalid("size too large"))?;
        let now = now_ms();
        let tx = self.begin()?;
        let live = live_jobs(&tx, &job.sha256, &job.account)?;
        if let Some(same) = live
            .iter()
            .find(|j| j.state.is_resumable() && j.video == job.video)
        {
            if let Some(holder) = self.held_by_other(same, now) {
                return Ok(Claim::Held {
                    job: same.clone(),
                    holder,
                });
            }
            if same.caption != job.caption {
                tx.execute(
                    "UPDATE jobs SET caption = ?1, updated_at = ?2 WHERE id = ?3",
                    p![job.caption.as_deref().map(path_to_blob), now, same.id],
                )?;
            }
            let fence = self.take_lease(&tx, same.id, now)?;
            let same = load(&tx, same.id)?.ok_or(LedgerError::NoSuchJob(same.id))?;
            tx.commit()?;
            self.held.insert(same.id, fence);
            self.lost.remove(&same.id);
            failpoint::hit("after_commit:claim");
            return Ok(Claim::Resume(same));
        }

        let earlier = live
            .iter()
            .find(|j| j.post.is_some())
            .or(live.first())
            .cloned();
        let (state, generation, duplicate_of) = match &earlier {
            None => (JobState::Active, 0, None),
            Some(earlier) if !allow_duplicates => (JobState::Duplicate, 0, Some(earlier.id)),
            Some(_) => {
                let max: Option<i64> = tx.value(
                    &format!(
                        "SELECT MAX(generation) FROM jobs WHERE sha256 = ?1 AND account = ?2 \
                         AND state IN {LIVE_STATES_SQL}"
                    ),
                    p![job.sha256.as_str(), &job.account],
                )?;
                (JobState::Active, max.unwrap_or(0) + 1, None)
            }
        };
        let id: JobId = tx.value(
            "INSERT INTO jobs (sha256, account, state, generation, video, caption, size, \
             duplicate_of, created_at, updated_at, platform, lease_holder, lease_until, fence) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9, ?10, ?11, ?12, 1) RETURNING id",
            p![
                job.sha256.as_str(),
                &job.account,
                state.as_str(),
                generation,
                path_to_blob(&job.video),
                job.caption.as_deref().map(path_to_blob),
                size,
                duplicate_of,
                now,
                job.platform.as_str(),
                &self.agent,
                self.lease_end(now),
            ],
        )?;
        let record = load(&tx, id)?.ok_or(LedgerError::NoSuchJob(id))?;
        if let Some(earlier) = earlier.as_ref().filter(|_| state == JobState::Duplicate) {
            self.outbox.duplicate(&tx, &record, earlier, now)?;
        }
        tx.commit()?;
        self.held.insert(id, 1);
        failpoint::hit(if state == JobState::Duplicate {
            "after_commit:duplicate"
        } else {
            "after_commit:claim"
        });
        Ok(match earlier {
            Some(earlier) if state == JobState::Duplicate => Claim::Duplicate {
                job: record,
                earlier,
            },
            _ => Claim::New(record),
        })
    }

    /// Records a finished step's result (replacing an earlier result of that step), then
    /// hits `after_commit:<step>`. `ends_upload`: the upload is committed, so its session
    /// (credentials) and parts are deleted in the same transaction. Active or Unconfirmed
    /// jobs only; the publish step's result comes with [`mark_published`](Self::mark_published).
    pub fn record_step(
        &mut self,
        id: JobId,
        step: &StepName,
        result: &serde_json::Value,
        ends_upload: bool,
    ) -> Result<(), LedgerError> {
        if *step == StepName::PUBLISH {
            return Err(LedgerError::Invalid(
                "the publish step is recorded by mark_published",
            ));
        }
        let text = serde_json::to_string(result)?;
        let point = format!("after_commit:{step}");
        self.transition(
            id,
            "record a step",
            Some(&point),
            &[JobState::Active, JobState::Unconfirmed],
            |tx, _, now| {
                put_step(tx, id, step, now, &text)?;
                if ends_upload {
                    // The upload is committed: its session (credentials) is never used again.
                    forget_upload_session(tx, id)?;
                }
                touch(tx, id, now)
            },
        )
    }

    /// Marks that step 5 is about to be sent. Active jobs without a step-5 result only;
    /// calling it again (a resend after a definite refusal) renews the mark.
    pub fn mark_publish_sent(&mut self, id: JobId) -> Result<(), LedgerError> {
        let agent = self.agent.clone();
        self.transition(
            id,
            "mark publish sent",
            Some("after_commit:publish_sent"),
            &[JobState::Active],
            |tx, job, now| {
                if job.steps.contains(&StepName::PUBLISH) {
                    return Err(illegal(
                        job,
                        "mark publish sent",
                        "step 5 already has a result",
                    ));
                }
                tx.execute(
                    "UPDATE jobs SET publish_sent_at = ?1, publish_sent_by = ?2, updated_at = ?1 \
                     WHERE id = ?3",
                    p![now, &agent, id],
                )?;
                Ok(())
            },
        )
    }

    /// The post exists (maybe not public yet: see [`Post::state`]). Active or Unconfirmed
    /// → Published; clears any error.
    pub fn mark_published(&mut self, id: JobId, post: &Post) -> Result<(), LedgerError> {
        if !post.is_well_formed() {
            return Err(LedgerError::Invalid(
                "a post has an id, and an address exactly when it is live",
            ));
        }
        let outbox = self.outbox.clone();
        self.transition(
            id,
            "mark published",
            Some("after_commit:published"),
            &[JobState::Active, JobState::Unconfirmed],
            |tx, job, now| {
                outbox.published(tx, job, post, now)?;
                tx.execute(
                    "UPDATE jobs SET state = 'published', post_id = ?1, post_url = ?2, \
                     post_state = ?3, error_step = NULL, error_class = NULL, error_reason = NULL, \
                     updated_at = ?4 WHERE id = ?5",
                    p![&post.id, post.address(), pending_state(post), now, id],
                )?;
                // Step 5's result, in the same transaction: when it was published.
                let mut result = serde_json::json!({ "post_id": post.id });
                if let Some(state) = pending_state(post) {
                    result["post_state"] = state.into();
                }
                let result = result.to_string();
                put_step(tx, id, &StepName::PUBLISH, now, &result)?;
                forget_upload_session(tx, id)
            },
        )
    }

    /// The platform says step 5 posted (the video "already has a post"), but no post id is
    /// known yet. Active only; the job stays Active with step 5's result recorded, so it is
    /// never sent again (see [`JobRecord::posted_without_id`]) until
    /// [`mark_published`](Self::mark_published) records the id found in the post list.
    pub fn mark_posted_without_id(&mut self, id: JobId) -> Result<(), LedgerError> {
        self.transition(
            id,
            "mark posted without an id",
            None,
            &[JobState::Active],
            |tx, _, now| {
                let result =
                    serde_json::json!({ "post_id": null, "already_published": true }).to_string();
                put_step(tx, id, &StepName::PUBLISH, now, &result)?;
                forget_upload_session(tx, id)?;
                touch(tx, id, now)
            },
        )
    }

    /// The `limit` most recent posts that are not public (awaiting moderation, or in the
    /// creator's inbox), of Published and Done jobs, newest first.
    pub fn not_public(&self, limit: usize) -> Result<Vec<JobRecord>, LedgerError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.load_where(
            "state IN ('published', 'done') AND post_state IS NOT NULL ORDER BY id DESC LIMIT ?1",
            p![limit],
        )
    }

    /// Archived (Done) jobs whose post still awaits moderation, oldest first. (A Published
    /// job is archived first, so that its receipt exists to be rewritten.)
    pub fn awaiting_moderation(&self) -> Result<Vec<JobRecord>, LedgerError> {
        self.load_where(
            "state = 'done' AND post_state = 'awaiting_moderation' ORDER BY id",
            p![],
        )
    }

    /// The public post a post awaiting moderation became (its id and address replace the
    /// reference). Published or Done, whose post awaits moderation, only.
    pub fn record_public_post(&mut self, id: JobId, post: &Post) -> Result<(), LedgerError> {
        if !(post.is_well_formed() && post.state.is_live()) {
            return Err(LedgerError::Invalid(
                "a public post has an id and an address",
            ));
        }
        self.transition_and_release(
            id,
            "record the public post",
            Some("after_commit:public_post"),
            &[JobState::Published, JobState::Done],
            |tx, job, now| {
                if job.post.as_ref().map(|p| p.state) != Some(PostState::AwaitingModeration) {
                    return Err(illegal(job, "record the public post", "no post awaits moderation"));
                }
                tx.execute(
                    "UPDATE jobs SET post_id = ?1, post_url = ?2, post_state = NULL, updated_at = ?3 \
                     WHERE id = ?4",
                    p![&post.id, &post.url, now, id],
                )?;
                Ok(())
            },
        )
    }

    /// When step 5 was last sent for `account`, answered or not (for
    /// `publish.min_interval` across restarts).
    pub fn last_publish_sent(&self, account: &str) -> Result<Option<SystemTime>, LedgerError> {
        let ms: Option<i64> = self.db.value(
            "SELECT MAX(publish_sent_at) FROM jobs WHERE account = ?1",
            p![account],
        )?;
        Ok(ms.map(from_ms))
    }

    /// The files are archived. Published → Done.
    pub fn mark_done(&mut self, id: JobId, archived_to: &Path) -> Result<(), LedgerError> {
        self.transition_and_release(
            id,
            "mark done",
            Some("after_commit:done"),
            &[JobState::Published],
            |tx, _, now| {
                tx.execute(
                "UPDATE jobs SET state = 'done', archived_to = ?1, updated_at = ?2 WHERE id = ?3",
                p![path_to_blob(archived_to), now, id],
            )?;
                forget_upload_session(tx, id)
            },
        )
    }

    /// Records where a Failed, Duplicate or Abandoned job's files were archived
    /// (the state does not change).
    pub fn record_archived(&mut self, id: JobId, archived_to: &Path) -> Result<(), LedgerError> {
        self.transition_and_release(
            id,
            "record archived",
            Some("after_commit:archived"),
            &[JobState::Failed, JobState::Duplicate, JobState::Abandoned],
            |tx, _, now| {
                tx.execute(
                    "UPDATE jobs SET archived_to = ?1, updated_at = ?2 WHERE id = ?3",
                    p![path_to_blob(archived_to), now, id],
                )?;
                Ok(())
            },
        )
    }

    /// Stores where the job's files are about to go (an `archive::ArchivePlan` as a JSON
    /// object), before any of them moves; replaces an earlier plan of the same job.
    /// Published, Failed and Duplicate jobs whose archive is not finished only
    /// (Abandoned and Unconfirmed jobs keep their files in the inbox).
    /// [`mark_done`](Self::mark_done) or [`record_archived`](Self::record_archived)
    /// finish it; until then [`pending_archives`](Self::pending_archives) lists it.
    pub fn set_archive_plan(
        &mut self,
        id: JobId,
        plan: &serde_json::Value,
    ) -> Result<(), LedgerError> {
        self.set_archive_plan_for(&[id], plan)
    }

    /// The same plan for every job of one bundle (one job per target account), in one
    /// transaction: a crash leaves every target planned or none.
    pub fn set_archive_plan_for(
        &mut self,
        ids: &[JobId],
        plan: &serde_json::Value,
    ) -> Result<(), LedgerError> {
        if !plan.is_object() {
            return Err(LedgerError::Invalid("an archive plan is a JSON object"));
        }
        let text = serde_json::to_string(plan)?;
        let now = now_ms();
        let tx = self.begin()?;
        let mut fences = Vec::with_capacity(ids.len());
        for &id in ids {
            let job = load(&tx, id)?.ok_or(LedgerError::NoSuchJob(id))?;
            // Whoever plans a drop's archive moves its files: it must hold (or take) the
            // lease of every target.
            match self.fence_for(&tx, &job, now) {
                Ok(fence) => fences.push((id, fence)),
                Err(e) => {
                    drop(tx);
                    self.forget_if_lost(id, &e);
                    return Err(e);
                }
            }
            let planned = [JobState::Published, JobState::Failed, JobState::Duplicate];
            if !planned.contains(&job.state) {
                return Err(illegal(
                    &job,
                    "plan the archive",
                    "not allowed in this state",
                ));
            }
            if job.archived_to.is_some() {
                return Err(illegal(&job, "plan the archive", "it is archived already"));
            }
            tx.execute(
                "UPDATE jobs SET archive_plan = ?1, updated_at = ?2 WHERE id = ?3",
                p![&text, now, id],
            )?;
        }
        tx.commit()?;
        self.held.extend(fences);
        failpoint::hit("after_commit:archive_plan");
        Ok(())
    }

    /// The files of the job's bundle are archived: Published → Done; a Failed, Duplicate
    /// or Abandoned job records where they went.
    pub fn mark_archived(&mut self, id: JobId, archived_to: &Path) -> Result<(), LedgerError> {
        match self.job(id)?.map(|j| j.state) {
            Some(JobState::Published) => self.mark_done(id, archived_to),
            Some(_) => self.record_archived(id, archived_to),
            None => Err(LedgerError::NoSuchJob(id)),
        }
    }

    /// Jobs with a stored archive plan whose archive is not recorded as finished,
    /// oldest first, each with its plan: what a restart must finish before it looks
    /// at the inbox.
    pub(crate) fn pending_archives(
        &self,
    ) -> Result<Vec<(JobRecord, serde_json::Value)>, LedgerError> {
        let rows = self.db.query(
            &format!("SELECT id, archive_plan FROM jobs WHERE {PENDING_ARCHIVE_SQL} ORDER BY id"),
            p![],
        )?;
        rows.into_iter()
            .map(|row| {
                let (id, text): (JobId, String) = (row.get(0)?, row.get(1)?);
                let plan = parse_json(id, "archive plan", &text)?;
                let job = load(&self.db, id)?.ok_or(LedgerError::NoSuchJob(id))?;
                Ok((job, plan))
            })
            .collect()
    }

    /// The stored archive plan of one job, finished or not.
    pub fn archive_plan(&self, id: JobId) -> Result<Option<serde_json::Value>, LedgerError> {
        let text: Option<Option<String>> = self
            .db
            .query_opt("SELECT archive_plan FROM jobs WHERE id = ?1", p![id])?
            .map(|row| row.get(0))
            .transpose()?;
        match text {
            None => Err(LedgerError::NoSuchJob(id)),
            Some(None) => Ok(None),
            Some(Some(text)) => parse_json(id, "archive plan", &text).map(Some),
        }
    }

    /// The job failed for good. Active → Failed. (An Unconfirmed job cannot fail: its
    /// post may exist.)
    pub fn mark_failed(
        &mut self,
        id: JobId,
        step: Option<&StepName>,
        class: &str,
        reason: &str,
    ) -> Result<(), LedgerError> {
        let outbox = self.outbox.clone();
        self.transition(
            id,
            "mark failed",
            Some("after_commit:failed"),
            &[JobState::Active],
            |tx, job, now| {
                if job.posted_without_id() {
                    return Err(illegal(job, "mark failed", "step 5 posted"));
                }
                outbox.failed(tx, job, class, reason, now)?;
                set_error(tx, id, JobState::Failed, step, class, reason, now)?;
                forget_upload_session(tx, id)
            },
        )
    }

    /// The video changed under the job. Active → Abandoned; refused while step 5 is in
    /// doubt (abandoning would allow a second post).
    pub fn mark_abandoned(&mut self, id: JobId, reason: &str) -> Result<(), LedgerError> {
        self.transition_and_release(
            id,
            "mark abandoned",
            Some("after_commit:abandoned"),
            &[JobState::Active],
            |tx, job, now| {
                if job.publish_in_doubt() {
                    return Err(illegal(
                        job,
                        "mark abandoned",
                        "step 5 was sent without a recorded result; reconcile first",
                    ));
                }
                if job.posted_without_id() {
                    return Err(illegal(job, "mark abandoned", "step 5 posted"));
                }
                set_error(tx, id, JobState::Abandoned, None, "abandoned", reason, now)?;
                forget_upload_session(tx, id)
            },
        )
    }

    /// Reconciliation could not tell whether step 5 posted. Active (or Unconfirmed,
    /// renewing the reason) → Unconfirmed.
    pub fn mark_unconfirmed(&mut self, id: JobId, reason: &str) -> Result<(), LedgerError> {
        self.transition_and_release(
            id,
            "mark unconfirmed",
            Some("after_commit:unconfirmed"),
            &[JobState::Active, JobState::Unconfirmed],
            |tx, _, now| {
                set_error(
                    tx,
                    id,
                    JobState::Unconfirmed,
                    Some(&StepName::PUBLISH),
                    "unconfirmed",
                    reason,
                    now,
                )
            },
        )
    }

    /// Puts a Failed, Abandoned or Unconfirmed job back to Active (the `retry`
    /// command): clears the error, the archive plan and `archived_to`, and resets
    /// attempts; steps are kept, and so is the publish mark, but no longer who set it
    /// (a person said to send again). Refused with [`LedgerError::LiveJobExists`] if another
    /// live job holds the same content, and while a planned archive is unfinished.
    pub(crate) fn requeue(&mut self, id: JobId) -> Result<(), LedgerError> {
        self.transition_and_release(
            id,
            "requeue",
            None,
            &[JobState::Failed, JobState::Abandoned, JobState::Unconfirmed],
            |tx, job, now| {
                let archiving: bool = tx.value(
                    &format!(
                        "SELECT EXISTS (SELECT 1 FROM jobs WHERE id = ?1 AND {PENDING_ARCHIVE_SQL})"
                    ),
                    p![id],
                )?;
                if archiving {
                    return Err(illegal(
                        job,
                        "requeue",
                        "its files are still being archived; the agent finishes that first",
                    ));
                }
                // A requeued job starts over: its next ending plans a new archive.
                tx.execute(
                    "UPDATE jobs SET state = 'active', error_step = NULL, error_class = NULL, \
                     error_reason = NULL, attempts = 0, archive_plan = NULL, archived_to = NULL, \
                     publish_sent_by = NULL, updated_at = ?1 WHERE id = ?2",
                    p![now, id],
                )?;
                Ok(())
            },
        )
    }

    /// A target that ended (Failed, Duplicate) whose drop comes back into the inbox for
    /// another target's retry: it forgets where its files went, so that it stays ended
    /// while the drop is in the inbox and is archived again with it.
    pub(crate) fn reopen_ended(&mut self, id: JobId) -> Result<(), LedgerError> {
        self.transition_and_release(
            id,
            "reopen",
            None,
            &[JobState::Failed, JobState::Duplicate],
            |tx, _, now| {
                tx.execute(
                    "UPDATE jobs SET archive_plan = NULL, archived_to = NULL, updated_at = ?1 \
                     WHERE id = ?2",
                    p![now, id],
                )?;
                Ok(())
            },
        )
    }

    /// Counts one more attempt; returns the new count. Active or Unconfirmed jobs.
    pub(crate) fn bump_attempts(&mut self, id: JobId) -> Result<u32, LedgerError> {
        let mut count = 0;
        self.transition(
            id,
            "count an attempt",
            None,
            &[JobState::Active, JobState::Unconfirmed],
            |tx, job, now| {
                count = job.attempts.saturating_add(1);
                tx.execute(
                    "UPDATE jobs SET attempts = ?1, updated_at = ?2 WHERE id = ?3",
                    p![count, now, id],
                )?;
                Ok(())
            },
        )?;
        Ok(count)
    }

    /// Forgets every step's result, the upload session and its parts: the upload starts
    /// over (its credentials expired, or the simulator it went to is gone). Active jobs
    /// only; refused once step 5 was sent, since the recorded upload is what
    /// reconciliation needs.
    pub(crate) fn forget_steps(&mut self, id: JobId) -> Result<(), LedgerError> {
        self.transition(
            id,
            "forget steps",
            None,
            &[JobState::Active],
            |tx, job, now| {
                if job.publish_sent_at.is_some() {
                    return Err(illegal(job, "forget steps", "step 5 was already sent"));
                }
                tx.execute("DELETE FROM steps WHERE job_id = ?1", p![id])?;
                forget_upload_session(tx, id)?;
                touch(tx, id, now)
            },
        )
    }

    /// The platform said the recorded upload can never post (TikTok's `FAILED` publish_id):
    /// forgets every step's result, the upload session and its parts, and the publish mark
    /// with them, so the job starts a new upload as if step 5 had never been sent. Active
    /// jobs only, and refused once step 5 is known to have posted. Unlike
    /// [`forget_steps`](Self::forget_steps) it lifts the never-post-twice fence: only a
    /// backend holding the platform's definitive word that the old upload is dead calls it.
    pub(crate) fn void_upload(&mut self, id: JobId) -> Result<(), LedgerError> {
        self.transition(
            id,
            "void the upload",
            None,
            &[JobState::Active],
            |tx, job, now| {
                if job.posted_without_id() {
                    return Err(illegal(job, "void the upload", "step 5 posted"));
                }
                tx.execute("DELETE FROM steps WHERE job_id = ?1", p![id])?;
                forget_upload_session(tx, id)?;
                tx.execute(
                    "UPDATE jobs SET publish_sent_at = NULL, publish_sent_by = NULL, \
                     updated_at = ?1 WHERE id = ?2",
                    p![now, id],
                )?;
                Ok(())
            },
        )
    }

    /// When the job's post is scheduled to appear (unix seconds), or `None` for at once.
    /// Active jobs only.
    pub(crate) fn set_publish_at(&mut self, id: JobId, at: Option<i64>) -> Result<(), LedgerError> {
        self.transition(id, "schedule", None, &[JobState::Active], |tx, _, now| {
            tx.execute(
                "UPDATE jobs SET publish_at = ?1, updated_at = ?2 WHERE id = ?3",
                p![at, now, id],
            )?;
            Ok(())
        })
    }

    /// Stores what a restart needs to go on with a multipart upload (upload id, target,
    /// credentials: the ledger is as private as a cookie file). A new session voids the
    /// parts of an earlier one. Active jobs only. The session is deleted (overwritten, with
    /// `secure_delete`) once the upload is committed or the job ends.
    pub fn save_upload_session(
        &mut self,
        id: JobId,
        session: &serde_json::Value,
    ) -> Result<(), LedgerError> {
        let text = serde_json::to_string(session)?;
        self.transition(
            id,
            "save the upload session",
            Some("after_commit:upload_session"),
            &[JobState::Active],
            |tx, _, now| {
                tx.execute("DELETE FROM upload_parts WHERE job_id = ?1", p![id])?;
                tx.execute(
                    "INSERT INTO upload_sessions (job_id, session, created_at) VALUES (?1, ?2, ?3) \
                     ON CONFLICT (job_id) DO UPDATE SET session = excluded.session, \
                     created_at = excluded.created_at",
                    p![id, text, now],
                )?;
                touch(tx, id, now)
            },
        )
    }

    /// The job's multipart session, if one is in progress.
    pub fn upload_session(&self, id: JobId) -> Result<Option<serde_json::Value>, LedgerError> {
        let text: Option<String> = self
            .db
            .query_opt(
                "SELECT session FROM upload_sessions WHERE job_id = ?1",
                p![id],
            )?
            .map(|row| row.get(0))
            .transpose()?;
        text.map(|t| parse_json(id, "upload session", &t))
            .transpose()
    }

    /// One part of the job's multipart upload arrived. Active jobs with a session only.
    pub fn record_part(&mut self, id: JobId, part: PartRecord) -> Result<(), LedgerError> {
        self.transition(
            id,
            "record a part",
            Some("after_commit:part"),
            &[JobState::Active],
            |tx, job, now| {
                let has_session: bool = tx.value(
                    "SELECT EXISTS (SELECT 1 FROM upload_sessions WHERE job_id = ?1)",
                    p![id],
                )?;
                if !has_session {
                    return Err(illegal(job, "record a part", "it has no upload session"));
                }
                tx.execute(
                    "INSERT INTO upload_parts (job_id, number, size, crc32, at) \
                     VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (job_id, number) DO UPDATE SET \
                     size = excluded.size, crc32 = excluded.crc32, at = excluded.at",
                    p![
                        id,
                        part.number,
                        i64::try_from(part.size).map_err(|_| LedgerError::Invalid("part size"))?,
                        part.crc32,
                        now
                    ],
                )?;
                touch(tx, id, now)
            },
        )
    }

    /// The parts of the job's multipart upload that arrived, by number.
    pub fn parts(&self, id: JobId) -> Result<Vec<PartRecord>, LedgerError> {
        let rows = self.db.query(
            "SELECT number, size, crc32 FROM upload_parts WHERE job_id = ?1 ORDER BY number",
            p![id],
        )?;
        rows.into_iter()
            .map(|row| {
                let (number, size, crc32): (i64, i64, i64) =
                    (row.get(0)?, row.get(1)?, row.get(2)?);
                Ok(PartRecord {
                    number: u32::try_from(number)
                        .map_err(|_| LedgerError::Invalid("part number"))?,
                    size: u64::try_from(size).map_err(|_| LedgerError::Invalid("part size"))?,
                    crc32: u32::try_from(crc32).map_err(|_| LedgerError::Invalid("part crc32"))?,
                })
            })
            .collect()
    }

    /// One job, if it exists.
    pub fn job(&self, id: JobId) -> Result<Option<JobRecord>, LedgerError> {
        load(&self.db, id)
    }

    /// All jobs in any of `states`, oldest first.
    pub fn jobs_in(&self, states: &[JobState]) -> Result<Vec<JobRecord>, LedgerError> {
        if states.is_empty() {
            return Ok(Vec::new());
        }
        let list = states
            .iter()
            .map(|s| format!("'{}'", s.as_str()))
            .collect::<Vec<_>>()
            .join(", ");
        self.load_where(&format!("state IN ({list}) ORDER BY id"), p![])
    }

    /// All jobs for one content hash, oldest first (the `retry HASH` command).
    pub fn jobs_with_hash(&self, sha256: &ContentHash) -> Result<Vec<JobRecord>, LedgerError> {
        self.load_where("sha256 = ?1 ORDER BY id", p![sha256.as_str()])
    }

    /// Published and Done jobs, most recently updated first.
    pub fn history(&self, limit: usize) -> Result<Vec<JobRecord>, LedgerError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.load_where(
            "state IN ('done', 'published') ORDER BY updated_at DESC, id DESC LIMIT ?1",
            p![limit],
        )
    }

    /// Jobs per state, every state present (one `COUNT`, not every job loaded).
    pub fn count_by_state(&self) -> Result<BTreeMap<JobState, u64>, LedgerError> {
        let mut counts: BTreeMap<JobState, u64> = JobState::ALL.iter().map(|s| (*s, 0)).collect();
        let rows = self
            .db
            .query("SELECT state, COUNT(*) FROM jobs GROUP BY state", p![])?;
        for row in rows {
            let (state, n): (String, i64) = (row.get(0)?, row.get(1)?);
            if let Some(state) = JobState::parse(&state) {
                counts.insert(state, u64::try_from(n).unwrap_or(0));
            }
        }
        Ok(counts)
    }

    /// The (sha256, account) pairs some live job holds: a failure of the same content
    /// for the same account is settled.
    pub fn live_contents(&self) -> Result<Vec<(String, String)>, LedgerError> {
        let list = JobState::ALL
            .iter()
            .filter(|s| s.is_live())
            .map(|s| format!("'{}'", s.as_str()))
            .collect::<Vec<_>>()
            .join(", ");
        let rows = self.db.query(
            &format!("SELECT DISTINCT sha256, account FROM jobs WHERE state IN ({list})"),
            p![],
        )?;
        rows.iter()
            .map(|row| Ok((row.get(0)?, row.get(1)?)))
            .collect()
    }

    fn load_where(
        &self,
        clause: &str,
        params: &[db::Value],
    ) -> Result<Vec<JobRecord>, LedgerError> {
        let rows = self.db.query(
            &format!("SELECT {JOB_COLUMNS} FROM jobs WHERE {clause}"),
            params,
        )?;
        rows.iter()
            .map(|row| {
                let raw = RawJob::from_row(row)?;
                let steps = load_steps(&self.db, raw.id)?;
                raw.into_record(steps)
            })
            .collect()
    }

    fn begin(&self) -> Result<Tx<'_>, LedgerError> {
        // Never write to a database file that is no longer the ledger.
        self.check_file()?;
        self.db.begin()
    }

    /// Loads the job inside a write transaction, checks this agent may write it (its
    /// lease, see `lease`) and that its state is one of `allowed`, runs `change`, commits.
    fn transition(
        &mut self,
        id: JobId,
        action: &'static str,
        point: Option<&str>,
        allowed: &[JobState],
        change: impl FnOnce(&Tx<'_>, &JobRecord, i64) -> Result<(), LedgerError>,
    ) -> Result<(), LedgerError> {
        self.write(id, action, point, allowed, Keep::Lease, change)
    }

    /// [`transition`](Self::transition) after which no work is left on the job: its
    /// lease is given up in the same transaction.
    fn transition_and_release(
        &mut self,
        id: JobId,
        action: &'static str,
        point: Option<&str>,
        allowed: &[JobState],
        change: impl FnOnce(&Tx<'_>, &JobRecord, i64) -> Result<(), LedgerError>,
    ) -> Result<(), LedgerError> {
        self.write(id, action, point, allowed, Keep::Nothing, change)
    }

    fn write(
        &mut self,
        id: JobId,
        action: &'static str,
        point: Option<&str>,
        allowed: &[JobState],
        keep: Keep,
        change: impl FnOnce(&Tx<'_>, &JobRecord, i64) -> Result<(), LedgerError>,
    ) -> Result<(), LedgerError> {
        let now = now_ms();
        let tx = self.begin()?;
        let job = load(&tx, id)?.ok_or(LedgerError::NoSuchJob(id))?;
        let fence = match self.fence_for(&tx, &job, now) {
            Ok(fence) => fence,
            Err(e) => {
                drop(tx);
                self.forget_if_lost(id, &e);
                return Err(e);
            }
        };
        if !allowed.contains(&job.state) {
            return Err(illegal(&job, action, "not allowed in this state"));
        }
        change(&tx, &job, now)?;
        if keep == Keep::Nothing {
            lease::release_in(&tx, id)?;
        }
        tx.commit()?;
        match keep {
            Keep::Lease => self.held.insert(id, fence),
            Keep::Nothing => self.held.remove(&id),
        };
        if let Some(point) = point {
            failpoint::hit(point);
        }
        Ok(())
    }
}

/// Whether a write keeps the job's lease.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Keep {
    Lease,
    Nothing,
}

/// A post known from a receipt, restored by `dropcast ledger rebuild`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct RestoredPost {
    pub sha256: ContentHash,
    pub account: String,
    /// The video's original path relative to the inbox.
    pub video: PathBuf,
    pub size: u64,
    pub platform: Platform,
    pub post: Post,
    /// Where the archived video lies now, when known.
    pub(crate) archived_to: Option<PathBuf>,
    pub(crate) published_at: SystemTime,
}

/// What [`Ledger::restore_done`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Restore {
    /// A Done job was recorded.
    Restored(JobId),
    /// The ledger already knows this content for this account, or this post.
    Known(JobId),
}

/// Lost ledgers (issue 9): noticing the file going away, telling an empty ledger from a
/// used one, and rebuilding from receipts. The `notes` table holds facts about the ledger
/// itself, not jobs.
impl Ledger {
    /// Fails with [`LedgerError::Lost`] when the database file was deleted, replaced by
    /// another file, or emptied since it was opened. Every write checks it first; the
    /// agent also checks it now and then while idle.
    pub(crate) fn check_file(&self) -> Result<(), LedgerError> {
        match &self.location {
            Location::File(path) => sqlite::check_file(path, self.file),
            Location::Server(_) => Ok(()),
        }
    }

    /// How many jobs were ever recorded.
    pub(crate) fn job_count(&self) -> Result<u64, LedgerError> {
        let n: i64 = self.db.value("SELECT COUNT(*) FROM jobs", p![])?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// True once a start was told to begin with this empty ledger although receipts
    /// of earlier posts exist (`--new-ledger`).
    pub(crate) fn fresh_start_accepted(&self) -> Result<bool, LedgerError> {
        let found = self
            .db
            .query_opt("SELECT value FROM notes WHERE key = 'fresh_start'", p![])?;
        Ok(found.is_some())
    }

    /// Remembers that this ledger starts fresh on purpose (`--new-ledger`).
    pub(crate) fn accept_fresh_start(&mut self) -> Result<(), LedgerError> {
        let now = crate::receipt::UtcTime::now().to_rfc3339();
        let tx = self.begin()?;
        tx.execute(
            "INSERT INTO notes (key, value) VALUES ('fresh_start', ?1) \
             ON CONFLICT (key) DO NOTHING",
            p![now],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Records a post known from a receipt as a Done job, so that the same content is
    /// a duplicate again. Nothing is written when a live job already holds this content
    /// for this account, or another job holds this post.
    pub(crate) fn restore_done(&mut self, post: &RestoredPost) -> Result<Restore, LedgerError> {
        if !post.post.is_well_formed() {
            return Err(LedgerError::Invalid(
                "a post has an id, and an address exactly when it is live",
            ));
        }
        let size = i64::try_from(post.size).map_err(|_| LedgerError::Invalid("size too large"))?;
        let at = to_ms(post.published_at);
        let tx = self.begin()?;
        let known: Option<JobId> = tx
            .query_opt(
                &format!(
                    "SELECT id FROM jobs WHERE (sha256 = ?1 AND account = ?2 \
                     AND state IN {LIVE_STATES_SQL}) OR (platform = ?3 AND post_id = ?4) \
                     ORDER BY id LIMIT 1"
                ),
                p![
                    post.sha256.as_str(),
                    &post.account,
                    post.platform.as_str(),
                    &post.post.id
                ],
            )?
            .map(|row| row.get(0))
            .transpose()?;
        if let Some(id) = known {
            return Ok(Restore::Known(id));
        }
        let id: JobId = tx.value(
            "INSERT INTO jobs (sha256, account, state, generation, video, size, post_id, post_url, \
             archived_to, created_at, updated_at, platform, post_state) \
             VALUES (?1, ?2, 'done', 0, ?3, ?4, ?5, ?6, ?7, ?8, ?8, ?9, ?10) RETURNING id",
            p![
                post.sha256.as_str(),
                &post.account,
                path_to_blob(&post.video),
                size,
                &post.post.id,
                post.post.address(),
                post.archived_to.as_deref().map(path_to_blob),
                at,
                post.platform.as_str(),
                pending_state(&post.post),
            ],
        )?;
        let result = serde_json::json!({ "post_id": post.post.id, "restored_from": "receipt" });
        put_step(&tx, id, &StepName::PUBLISH, at, &result.to_string())?;
        tx.commit()?;
        Ok(Restore::Restored(id))
    }
}

/// The `post_state` column of a post: NULL when it is live.
fn pending_state(post: &Post) -> Option<&'static str> {
    (!post.state.is_live()).then(|| post.state.as_str())
}

fn illegal(job: &JobRecord, action: &'static str, why: &'static str) -> LedgerError {
    LedgerError::Illegal {
        id: job.id,
        state: job.state,
        action,
        why,
    }
}

/// Inserts or replaces one step's result; a new step goes after the job's others.
fn put_step(
    tx: &Tx<'_>,
    id: JobId,
    step: &StepName,
    at: i64,
    result: &str,
) -> Result<(), LedgerError> {
    tx.execute(
        "INSERT INTO steps (job_id, step, ordinal, at, result) VALUES (?1, ?2, \
         (SELECT COALESCE(MAX(ordinal), 0) + 1 FROM steps WHERE job_id = ?1), ?3, ?4) \
         ON CONFLICT (job_id, step) DO UPDATE SET at = excluded.at, result = excluded.result",
        p![id, step.as_str(), at, result],
    )?;
    Ok(())
}

/// Deletes a job's multipart session (upload id, credentials, `tos_sign`, token) and its
/// parts: once the upload is committed or the job has ended they are never used again,
/// and credentials must not outlive their use.
fn forget_upload_session(tx: &Tx<'_>, id: JobId) -> Result<(), LedgerError> {
    tx.execute("DELETE FROM upload_parts WHERE job_id = ?1", p![id])?;
    tx.execute("DELETE FROM upload_sessions WHERE job_id = ?1", p![id])?;
    Ok(())
}

/// [`forget_upload_session`] for every job that no longer needs one (a ledger written
/// before sessions were deleted when their job ended).
fn forget_ended_upload_sessions(db: &Db) -> Result<(), LedgerError> {
    const ENDED: &str = "SELECT j.id FROM jobs j WHERE j.state NOT IN ('active', 'unconfirmed')";
    db.execute(
        &format!("DELETE FROM upload_parts WHERE job_id IN ({ENDED})"),
        p![],
    )?;
    db.execute(
        &format!("DELETE FROM upload_sessions WHERE job_id IN ({ENDED})"),
        p![],
    )?;
    Ok(())
}

fn touch(tx: &Tx<'_>, id: JobId, now: i64) -> Result<(), LedgerError> {
    tx.execute("UPDATE jobs SET updated_at = ?1 WHERE id = ?2", p![now, id])?;
    Ok(())
}

fn set_error(
    tx: &Tx<'_>,
    id: JobId,
    state: JobState,
    step: Option<&StepName>,
    class: &str,
    reason: &str,
    now: i64,
) -> Result<(), LedgerError> {
    tx.execute(
        "UPDATE jobs SET state = ?1, error_step = ?2, error_class = ?3, error_reason = ?4, \
         updated_at = ?5 WHERE id = ?6",
        p![
            state.as_str(),
            step.map(StepName::as_str),
            class,
            reason,
            now,
            id
        ],
    )?;
    Ok(())
}

/// A `jobs` row as stored, before its values are checked.
struct RawJob {
    id: JobId,
    sha256: String,
    account: String,
    state: String,
    video: Vec<u8>,
    caption: Option<Vec<u8>>,
    size: i64,
    publish_sent_at: Option<i64>,
    post_id: Option<String>,
    error_step: Option<String>,
    error_class: Option<String>,
    error_reason: Option<String>,
    duplicate_of: Option<JobId>,
    archived_to: Option<Vec<u8>>,
    attempts: i64,
    created_at: i64,
    updated_at: i64,
    publish_at: Option<i64>,
    platform: String,
    post_url: Option<String>,
    post_state: Option<String>,
    lease: Lease,
    publish_sent_by: Option<String>,
}

impl RawJob {
    fn from_row(row: &Row) -> Result<RawJob, LedgerError> {
        Ok(RawJob {
            id: row.get(0)?,
            sha256: row.get(1)?,
            account: row.get(2)?,
            state: row.get(3)?,
            video: row.get(4)?,
            caption: row.get(5)?,
            size: row.get(6)?,
            publish_sent_at: row.get(7)?,
            post_id: row.get(8)?,
            error_step: row.get(9)?,
            error_class: row.get(10)?,
            error_reason: row.get(11)?,
            duplicate_of: row.get(12)?,
            archived_to: row.get(13)?,
            attempts: row.get(14)?,
            created_at: row.get(15)?,
            updated_at: row.get(16)?,
            publish_at: row.get(17)?,
            platform: row.get(18)?,
            post_url: row.get(19)?,
            post_state: row.get(20)?,
            lease: Lease {
                holder: row.get(21)?,
                until: row.get(22)?,
                fence: row.get(23)?,
            },
            publish_sent_by: row.get(24)?,
        })
    }

    fn into_record(self, steps: Steps) -> Result<JobRecord, LedgerError> {
        let id = self.id;
        let corrupt = |what: String| LedgerError::Corrupt { id, what };
        let sha256 = ContentHash::parse(&self.sha256)
            .ok_or_else(|| corrupt(format!("bad sha256 {:?}", self.sha256)))?;
        let state = JobState::parse(&self.state)
            .ok_or_else(|| corrupt(format!("unknown state {:?}", self.state)))?;
        let error_step = match &self.error_step {
            None => None,
            Some(s) => Some(StepName::parse(s).ok_or_else(|| corrupt(format!("bad step {s:?}")))?),
        };
        let platform = Platform::parse(&self.platform)
            .ok_or_else(|| corrupt(format!("unknown platform {:?}", self.platform)))?;
        let pending = match self.post_state.as_deref() {
            None => None,
            Some(s) => Some(
                PostState::parse(s).ok_or_else(|| corrupt(format!("unknown post state {s:?}")))?,
            ),
        };
        let post = match (self.post_id, self.post_url, pending) {
            (Some(id), Some(url), None) => Some(Post::live(id, url)),
            (Some(id), None, Some(PostState::AwaitingModeration)) => {
                Some(Post::awaiting_moderation(id))
            }
            (Some(id), None, Some(PostState::InCreatorInbox)) => Some(Post::in_creator_inbox(id)),
            (None, None, None) => None,
            _ => {
                return Err(corrupt(
                    "a post id without its address, or the reverse".into(),
                ));
            }
        };
        let error = match (self.error_class, self.error_reason) {
            (Some(class), Some(reason)) => Some(JobError {
                step: error_step,
                class,
                reason,
            }),
            _ => None,
        };
        Ok(JobRecord {
            id,
            sha256,
            account: self.account,
            platform,
            state,
            video: blob_to_path(self.video),
            caption: self.caption.map(blob_to_path),
            size: u64::try_from(self.size).map_err(|_| corrupt("negative size".into()))?,
            steps,
            publish_sent_at: self.publish_sent_at.map(from_ms),
            publish_sent_by: self.publish_sent_by,
            post,
            error,
            duplicate_of: self.duplicate_of,
            archived_to: self.archived_to.map(blob_to_path),
            attempts: u32::try_from(self.attempts)
                .map_err(|_| corrupt("attempts out of range".into()))?,
            created_at: from_ms(self.created_at),
            updated_at: from_ms(self.updated_at),
            publish_at: self.publish_at,
            lease: self.lease,
        })
    }
}

/// A JSON column of job `id`; unreadable JSON means the ledger was damaged.
fn parse_json(id: JobId, what: &str, text: &str) -> Result<serde_json::Value, LedgerError> {
    serde_json::from_str(text).map_err(|e| LedgerError::Corrupt {
        id,
        what: format!("{what}: {e}"),
    })
}

fn load(db: &impl Sql, id: JobId) -> Result<Option<JobRecord>, LedgerError> {
    let row = db.query_opt(
        &format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?1"),
        p![id],
    )?;
    match row {
        None => Ok(None),
        Some(row) => {
            let raw = RawJob::from_row(&row)?;
            let steps = load_steps(db, id)?;
            raw.into_record(steps).map(Some)
        }
    }
}

/// The live jobs of one content for one account, oldest first.
fn live_jobs(
    db: &impl Sql,
    sha256: &ContentHash,
    account: &str,
) -> Result<Vec<JobRecord>, LedgerError> {
    let rows = db.query(
        &format!(
            "SELECT id FROM jobs WHERE sha256 = ?1 AND account = ?2 \
             AND state IN {LIVE_STATES_SQL} ORDER BY id"
        ),
        p![sha256.as_str(), account],
    )?;
    rows.iter()
        .map(|row| {
            let id: JobId = row.get(0)?;
            load(db, id)?.ok_or(LedgerError::NoSuchJob(id))
        })
        .collect()
}

fn load_steps(db: &impl Sql, id: JobId) -> Result<Steps, LedgerError> {
    let rows = db.query(
        "SELECT step, at, result FROM steps WHERE job_id = ?1 ORDER BY ordinal",
        p![id],
    )?;
    let mut steps = Vec::new();
    for row in rows {
        let (step, at, result): (String, i64, String) = (row.get(0)?, row.get(1)?, row.get(2)?);
        let step = StepName::parse(&step).ok_or_else(|| LedgerError::Corrupt {
            id,
            what: format!("bad step name {step:?}"),
        })?;
        let result = serde_json::from_str(&result).map_err(|e| LedgerError::Corrupt {
            id,
            what: format!("step {step} result: {e}"),
        })?;
        steps.push((
            step,
            StepRecord {
                at: from_ms(at),
                result,
            },
        ));
    }
    Ok(Steps(steps))
}

fn now_ms() -> i64 {
    to_ms(SystemTime::now())
}

fn to_ms(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_millis()).unwrap_or(i64::MAX),
    }
}

fn from_ms(ms: i64) -> SystemTime {
    let d = Duration::from_millis(ms.unsigned_abs());
    if ms >= 0 {
        UNIX_EPOCH + d
    } else {
        UNIX_EPOCH - d
    }
}

#[cfg(unix)]
fn path_to_blob(path: &Path) -> Vec<u8> {
    use std::os::unix::ffi::OsStrExt;
    path.as_os_str().as_bytes().to_vec()
}

#[cfg(unix)]
fn blob_to_path(bytes: Vec<u8>) -> PathBuf {
    use std::os::unix::ffi::OsStringExt;
    PathBuf::from(std::ffi::OsString::from_vec(bytes))
}

/// Windows: WTF-8, which keeps a name with a lone surrogate (`crate::wtf8`).
#[cfg(windows)]
fn path_to_blob(path: &Path) -> Vec<u8> {
    use std::os::windows::ffi::OsStrExt;
    crate::wtf8::encode(path.as_os_str().encode_wide())
}

/// A blob that is not WTF-8 (a ledger written on unix, say) is read lossily.
#[cfg(windows)]
fn blob_to_path(bytes: Vec<u8>) -> PathBuf {
    use std::os::windows::ffi::OsStringExt;
    match crate::wtf8::decode(&bytes) {
        Some(units) => PathBuf::from(std::ffi::OsString::from_wide(&units)),
        None => PathBuf::from(String::from_utf8_lossy(&bytes).into_owned()),
    }
}

#[cfg(not(any(unix, windows)))]
fn path_to_blob(path: &Path) -> Vec<u8> {
    path.to_string_lossy().into_owned().into_bytes()
}

#[cfg(not(any(unix, windows)))]
fn blob_to_path(bytes: Vec<u8>) -> PathBuf {
    PathBuf::from(String::from_utf8_lossy(&bytes).into_owned())
}

#[cfg(test)]
mod tests;
