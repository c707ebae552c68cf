//! The job ledger: one SQLite database (`state_dir/ledger.sqlite3`) that is the single
//! source of truth for every job: which content was claimed for which account, which
//! protocol steps finished with what result, and how the job ended.
//!
//! **Every state change is one committed transaction; the commit is the checkpoint.**
//! **At most one live job (Active, Published, Done, Unconfirmed) exists per
//! (sha256, account)**: `claim` checks it, and a partial UNIQUE index enforces it, so
//! no bug can create a second one. Illegal transitions return [`LedgerError::Illegal`]
//! instead of writing.
//!
//! **A job's files move only after their archive plan is committed** (schema v2), so a
//! restart finds every interrupted archive in [`Ledger::pending_archives`] and
//! finishes it. Each state-changing commit is followed by the failpoint
//! `after_commit:<what>` (see `crate::failpoint`).
//!
//! The API is synchronous; async callers use `spawn_blocking`.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, OptionalExtension, Row, Transaction, TransactionBehavior, params};

use crate::domain::{ContentHash, Platform, Post, PostState, StepName};
use crate::failpoint;

/// A job's row id.
pub(crate) type JobId = i64;

/// The ledger's file name inside `state_dir`.
pub(crate) const FILE_NAME: &str = "ledger.sqlite3";

const SCHEMA_VERSION: i64 = 5;
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// `MIGRATIONS[v]` takes the schema from version `v` to `v + 1`.
const MIGRATIONS: [&str; SCHEMA_VERSION as usize] =
    [SCHEMA_V1, SCHEMA_V2, SCHEMA_V3, SCHEMA_V4, SCHEMA_V5];

/// Schema version 1.
///
/// `generation` is 0 for every job except one claimed with `allow_duplicates` while an
/// earlier live job holds the same content; it is what lets the UNIQUE index allow
/// deliberate re-posts and nothing else.
const SCHEMA_V1: &str = "
CREATE TABLE jobs (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    sha256          TEXT    NOT NULL CHECK (length(sha256) = 64),
    account         TEXT    NOT NULL,
    state           TEXT    NOT NULL CHECK (state IN
                        ('active', 'published', 'done', 'failed', 'duplicate', 'abandoned', 'unconfirmed')),
    generation      INTEGER NOT NULL DEFAULT 0,
    video           BLOB    NOT NULL,
    caption         BLOB,
    size            INTEGER NOT NULL CHECK (size >= 0),
    publish_sent_at INTEGER,
    aweme_id        TEXT,
    error_step      TEXT,
    error_class     TEXT,
    error_reason    TEXT,
    duplicate_of    INTEGER REFERENCES jobs (id),
    archived_to     BLOB,
    attempts        INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
) STRICT;

CREATE UNIQUE INDEX jobs_one_live_per_content ON jobs (sha256, account, generation)
    WHERE state IN ('active', 'published', 'done', 'unconfirmed');
CREATE UNIQUE INDEX jobs_one_job_per_post ON jobs (aweme_id) WHERE aweme_id IS NOT NULL;
CREATE INDEX jobs_by_state ON jobs (state, id);

CREATE TABLE steps (
    job_id  INTEGER NOT NULL REFERENCES jobs (id),
    step    TEXT    NOT NULL CHECK (step IN
                ('credentials', 'upload_params', 'upload', 'commit', 'publish')),
    ordinal INTEGER NOT NULL,
    at      INTEGER NOT NULL,
    result  TEXT    NOT NULL,
    PRIMARY KEY (job_id, step)
) STRICT;
";

/// Schema version 2: the archive plan (`archive::ArchivePlan` as JSON), stored before
/// a job's files are moved so that a restart can finish an interrupted archive.
const SCHEMA_V2: &str = "
ALTER TABLE jobs ADD COLUMN archive_plan TEXT
    CHECK (archive_plan IS NULL OR json_valid(archive_plan));
";

/// Schema version 3: the scheduled time of a post, and multipart uploads in progress (the
/// session needed to go on after a restart, and each part that arrived) so that a restart
/// sends only the parts still missing.
const SCHEMA_V3: &str = "
ALTER TABLE jobs ADD COLUMN publish_at INTEGER;

CREATE TABLE upload_sessions (
    job_id     INTEGER PRIMARY KEY REFERENCES jobs (id),
    session    TEXT    NOT NULL CHECK (json_valid(session)),
    created_at INTEGER NOT NULL
) STRICT;

CREATE TABLE upload_parts (
    job_id INTEGER NOT NULL REFERENCES jobs (id),
    number INTEGER NOT NULL CHECK (number >= 1),
    size   INTEGER NOT NULL CHECK (size >= 0),
    crc32  INTEGER NOT NULL CHECK (crc32 >= 0),
    at     INTEGER NOT NULL,
    PRIMARY KEY (job_id, number)
) STRICT;
";

/// Schema version 4: many platforms (issue 10). Each job names its `platform` (every job
/// before was `douyin-web`); the post is `post_id` and `post_url` as the backend gave them
/// (was `aweme_id`, an address only Douyin's); a post id is unique per platform; step names
/// are each backend's own, so the `steps` table checks only their form (the backend checks
/// the name, see `checkpoint`).
const SCHEMA_V4: &str = "
ALTER TABLE jobs ADD COLUMN platform TEXT NOT NULL DEFAULT 'douyin-web'
    CHECK (platform IN ('douyin-web', 'douyin', 'tiktok'));
ALTER TABLE jobs RENAME COLUMN aweme_id TO post_id;
ALTER TABLE jobs ADD COLUMN post_url TEXT;
UPDATE jobs SET post_url = 'https://www.douyin.com/video/' || post_id WHERE post_id IS NOT NULL;
DROP INDEX jobs_one_job_per_post;
CREATE UNIQUE INDEX jobs_one_job_per_post ON jobs (platform, post_id) WHERE post_id IS NOT NULL;

CREATE TABLE steps_v4 (
    job_id  INTEGER NOT NULL REFERENCES jobs (id),
    step    TEXT    NOT NULL CHECK (length(step) BETWEEN 1 AND 32 AND step GLOB '[a-z]*'
                        AND step NOT GLOB '*[^a-z0-9_]*'),
    ordinal INTEGER NOT NULL,
    at      INTEGER NOT NULL,
    result  TEXT    NOT NULL,
    PRIMARY KEY (job_id, step)
) STRICT;
INSERT INTO steps_v4 (job_id, step, ordinal, at, result)
    SELECT job_id, step, ordinal, at, result FROM steps;
DROP TABLE steps;
ALTER TABLE steps_v4 RENAME TO steps;
";

/// Schema version 5: posts that are not public yet (`domain::PostState`). `post_state` is
/// NULL for a live post (every post before) and for no post; a post awaiting moderation or
/// in the creator's inbox has its `post_id` (the platform's reference) and no `post_url`.
const SCHEMA_V5: &str = "
ALTER TABLE jobs ADD COLUMN post_state TEXT
    CHECK (post_state IS NULL OR post_state IN ('awaiting_moderation', 'in_creator_inbox'));
";

/// Jobs whose archive was planned and is not recorded as finished: Published jobs not
/// yet Done, Failed and Duplicate jobs without `archived_to`.
const PENDING_ARCHIVE_SQL: &str = "archive_plan IS NOT NULL AND (state = 'published' \
     OR (state IN ('failed', 'duplicate') AND archived_to IS NULL))";

/// The SQL list of live states; must match [`JobState::is_live`] (a test checks).
const LIVE_STATES_SQL: &str = "('active', 'published', 'done', 'unconfirmed')";

const JOB_COLUMNS: &str = "id, sha256, account, state, video, caption, size, publish_sent_at, \
     post_id, error_step, error_class, error_reason, duplicate_of, archived_to, attempts, \
     created_at, updated_at, publish_at, platform, post_url, post_state";

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
    #[error(
        "the ledger was written by a newer dropcast (schema {found}; this one knows up to {supported})"
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

/// The ledger. Owns one SQLite connection.
pub struct Ledger {
    conn: Connection,
    path: PathBuf,
    /// The database file that was opened (device and inode), to notice it being
    /// deleted or replaced under the connection.
    file: Option<FileId>,
}

impl fmt::Debug for Ledger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ledger").field("path", &self.path).finish()
    }
}

impl Ledger {
    /// Opens (creating if needed) `state_dir/ledger.sqlite3`: the folder is created
    /// (mode 0700 on unix), the database file is mode 0600, WAL, `synchronous=FULL`,
    /// and the schema is migrated to the current version.
    pub fn open(state_dir: &Path) -> Result<Ledger, LedgerError> {
        create_state_dir(state_dir)?;
        let path = state_dir.join(FILE_NAME);
        create_private_file(&path)?;
        let mut conn = Connection::open(&path)?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        let mode: String =
            conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(LedgerError::NoWal(mode));
        }
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", true)?;
        // Deleted upload credentials are overwritten, not left in free pages.
        conn.pragma_update(None, "secure_delete", true)?;
        migrate(&mut conn)?;
        forget_ended_upload_sessions(&conn)?;
        tracing::debug!(path = %path.display(), "ledger open");
        let file = FileId::of(&path);
        Ok(Ledger { conn, path, file })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Claims `job` in one transaction.
    ///
    /// A live job for the same (sha256, account) that is Active/Published/Unconfirmed
    /// with the same video path is resumed (its caption path is updated if it moved).
    /// Any other live job makes the new one a Duplicate, unless `allow_duplicates`, in
    /// which case a new Active job is created beside it. Failed, Abandoned and
    /// Duplicate jobs never block.
    pub fn claim(&mut self, job: &NewJob, allow_duplicates: bool) -> Result<Claim, LedgerError> {
        let size = i64::try_from(job.size).map_err(|_| LedgerError::Invalid("size too large"))?;
        let now = now_ms();
        let tx = self.begin()?;
        let live: Vec<JobRecord> = {
            let mut stmt = tx.prepare_cached(&format!(
                "SELECT id FROM jobs WHERE sha256 = ?1 AND account = ?2 \
                 AND state IN {LIVE_STATES_SQL} ORDER BY id"
            ))?;
            let ids = stmt
                .query_map(params![job.sha256.as_str(), job.account], |row| {
                    row.get::<_, JobId>(0)
                })?
                .collect::<Result<Vec<_>, _>>()?;
            ids.into_iter()
                .map(|id| load(&tx, id)?.ok_or(LedgerError::NoSuchJob(id)))
                .collect::<Result<_, _>>()?
        };

        if let Some(same) = live
            .iter()
            .find(|j| j.state.is_resumable() && j.video == job.video)
        {
            let mut same = same.clone();
            if same.caption != job.caption {
                tx.execute(
                    "UPDATE jobs SET caption = ?1, updated_at = ?2 WHERE id = ?3",
                    params![job.caption.as_deref().map(path_to_blob), now, same.id],
                )?;
                same = load(&tx, same.id)?.ok_or(LedgerError::NoSuchJob(same.id))?;
            }
            tx.commit()?;
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
                let max = tx.query_row(
                    &format!(
                        "SELECT MAX(generation) FROM jobs WHERE sha256 = ?1 AND account = ?2 \
                         AND state IN {LIVE_STATES_SQL}"
                    ),
                    params![job.sha256.as_str(), job.account],
                    |row| row.get::<_, Option<i64>>(0),
                )?;
                (JobState::Active, max.unwrap_or(0) + 1, None)
            }
        };
        tx.execute(
            "INSERT INTO jobs (sha256, account, state, generation, video, caption, size, \
             duplicate_of, created_at, updated_at, platform) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9, ?10)",
            params![
                job.sha256.as_str(),
                job.account,
                state.as_str(),
                generation,
                path_to_blob(&job.video),
                job.caption.as_deref().map(path_to_blob),
                size,
                duplicate_of,
                now,
                job.platform.as_str(),
            ],
        )
        .map_err(constraint_error)?;
        let id = tx.last_insert_rowid();
        let record = load(&tx, id)?.ok_or(LedgerError::NoSuchJob(id))?;
        tx.commit()?;
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
                    "UPDATE jobs SET publish_sent_at = ?1, updated_at = ?1 WHERE id = ?2",
                    params![now, id],
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
        self.transition(
            id,
            "mark published",
            Some("after_commit:published"),
            &[JobState::Active, JobState::Unconfirmed],
            |tx, _, now| {
                tx.execute(
                    "UPDATE jobs SET state = 'published', post_id = ?1, post_url = ?2, \
                     post_state = ?3, error_step = NULL, error_class = NULL, error_reason = NULL, \
                     updated_at = ?4 WHERE id = ?5",
                    params![post.id, post.address(), pending_state(post), now, id],
                )
                .map_err(constraint_error)?;
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
            [limit],
        )
    }

    /// Archived (Done) jobs whose post still awaits moderation, oldest first. (A Published
    /// job is archived first, so that its receipt exists to be rewritten.)
    pub fn awaiting_moderation(&self) -> Result<Vec<JobRecord>, LedgerError> {
        self.load_where(
            "state = 'done' AND post_state = 'awaiting_moderation' ORDER BY id",
            [],
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
        self.transition(
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
                    params![post.id, post.url, now, id],
                )
                .map_err(constraint_error)?;
                Ok(())
            },
        )
    }

    /// When step 5 was last sent for `account`, answered or not (for
    /// `publish.min_interval` across restarts).
    pub fn last_publish_sent(&self, account: &str) -> Result<Option<SystemTime>, LedgerError> {
        let ms: Option<i64> = self.conn.query_row(
            "SELECT MAX(publish_sent_at) FROM jobs WHERE account = ?1",
            [account],
            |row| row.get(0),
        )?;
        Ok(ms.map(from_ms))
    }

    /// The files are archived. Published → Done.
    pub fn mark_done(&mut self, id: JobId, archived_to: &Path) -> Result<(), LedgerError> {
        self.transition(
            id,
            "mark done",
            Some("after_commit:done"),
            &[JobState::Published],
            |tx, _, now| {
                tx.execute(
                "UPDATE jobs SET state = 'done', archived_to = ?1, updated_at = ?2 WHERE id = ?3",
                params![path_to_blob(archived_to), now, id],
            )?;
                forget_upload_session(tx, id)
            },
        )
    }

    /// Records where a Failed, Duplicate or Abandoned job's files were archived
    /// (the state does not change).
    pub fn record_archived(&mut self, id: JobId, archived_to: &Path) -> Result<(), LedgerError> {
        self.transition(
            id,
            "record archived",
            Some("after_commit:archived"),
            &[JobState::Failed, JobState::Duplicate, JobState::Abandoned],
            |tx, _, now| {
                tx.execute(
                    "UPDATE jobs SET archived_to = ?1, updated_at = ?2 WHERE id = ?3",
                    params![path_to_blob(archived_to), now, id],
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
        for &id in ids {
            let job = load(&tx, id)?.ok_or(LedgerError::NoSuchJob(id))?;
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
                params![text, now, id],
            )?;
        }
        tx.commit()?;
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
        let rows: Vec<(JobId, String)> = {
            let mut stmt = self.conn.prepare(&format!(
                "SELECT id, archive_plan FROM jobs WHERE {PENDING_ARCHIVE_SQL} ORDER BY id"
            ))?;
            stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
                .collect::<Result<_, _>>()?
        };
        rows.into_iter()
            .map(|(id, text)| {
                let plan = parse_json(id, "archive plan", &text)?;
                let job = load(&self.conn, id)?.ok_or(LedgerError::NoSuchJob(id))?;
                Ok((job, plan))
            })
            .collect()
    }

    /// The stored archive plan of one job, finished or not.
    pub fn archive_plan(&self, id: JobId) -> Result<Option<serde_json::Value>, LedgerError> {
        let text: Option<Option<String>> = self
            .conn
            .query_row("SELECT archive_plan FROM jobs WHERE id = ?1", [id], |row| {
                row.get(0)
            })
            .optional()?;
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
        self.transition(
            id,
            "mark failed",
            Some("after_commit:failed"),
            &[JobState::Active],
            |tx, job, now| {
                if job.posted_without_id() {
                    return Err(illegal(job, "mark failed", "step 5 posted"));
                }
                set_error(tx, id, JobState::Failed, step, class, reason, now)?;
                forget_upload_session(tx, id)
            },
        )
    }

    /// The video changed under the job. Active → Abandoned; refused while step 5 is in
    /// doubt (abandoning would allow a second post).
    pub fn mark_abandoned(&mut self, id: JobId, reason: &str) -> Result<(), LedgerError> {
        self.transition(
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
        self.transition(
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
    /// attempts; steps are kept. Refused with [`LedgerError::LiveJobExists`] if another
    /// live job holds the same content, and while a planned archive is unfinished.
    pub(crate) fn requeue(&mut self, id: JobId) -> Result<(), LedgerError> {
        self.transition(
            id,
            "requeue",
            None,
            &[JobState::Failed, JobState::Abandoned, JobState::Unconfirmed],
            |tx, job, now| {
                let archiving: bool = tx.query_row(
                    &format!(
                        "SELECT EXISTS (SELECT 1 FROM jobs WHERE id = ?1 AND {PENDING_ARCHIVE_SQL})"
                    ),
                    [id],
                    |row| row.get(0),
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
                     updated_at = ?1 WHERE id = ?2",
                    params![now, id],
                )
                .map_err(constraint_error)?;
                Ok(())
            },
        )
    }

    /// A target that ended (Failed, Duplicate) whose drop comes back into the inbox for
    /// another target's retry: it forgets where its files went, so that it stays ended
    /// while the drop is in the inbox and is archived again with it.
    pub(crate) fn reopen_ended(&mut self, id: JobId) -> Result<(), LedgerError> {
        self.transition(
            id,
            "reopen",
            None,
            &[JobState::Failed, JobState::Duplicate],
            |tx, _, now| {
                tx.execute(
                    "UPDATE jobs SET archive_plan = NULL, archived_to = NULL, updated_at = ?1 \
                     WHERE id = ?2",
                    params![now, id],
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
                    params![count, now, id],
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
                tx.execute("DELETE FROM steps WHERE job_id = ?1", [id])?;
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
                tx.execute("DELETE FROM steps WHERE job_id = ?1", [id])?;
                forget_upload_session(tx, id)?;
                tx.execute(
                    "UPDATE jobs SET publish_sent_at = NULL, updated_at = ?1 WHERE id = ?2",
                    params![now, id],
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
                params![at, now, id],
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
                tx.execute("DELETE FROM upload_parts WHERE job_id = ?1", [id])?;
                tx.execute(
                    "INSERT INTO upload_sessions (job_id, session, created_at) VALUES (?1, ?2, ?3) \
                     ON CONFLICT (job_id) DO UPDATE SET session = excluded.session, \
                     created_at = excluded.created_at",
                    params![id, text, now],
                )?;
                touch(tx, id, now)
            },
        )
    }

    /// The job's multipart session, if one is in progress.
    pub fn upload_session(&self, id: JobId) -> Result<Option<serde_json::Value>, LedgerError> {
        let text: Option<String> = self
            .conn
            .query_row(
                "SELECT session FROM upload_sessions WHERE job_id = ?1",
                [id],
                |row| row.get(0),
            )
            .optional()?;
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
                let has_session: bool = tx.query_row(
                    "SELECT EXISTS (SELECT 1 FROM upload_sessions WHERE job_id = ?1)",
                    [id],
                    |row| row.get(0),
                )?;
                if !has_session {
                    return Err(illegal(job, "record a part", "it has no upload session"));
                }
                tx.execute(
                    "INSERT INTO upload_parts (job_id, number, size, crc32, at) \
                     VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (job_id, number) DO UPDATE SET \
                     size = excluded.size, crc32 = excluded.crc32, at = excluded.at",
                    params![
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
        let mut stmt = self.conn.prepare_cached(
            "SELECT number, size, crc32 FROM upload_parts WHERE job_id = ?1 ORDER BY number",
        )?;
        let rows = stmt
            .query_map([id], |row| {
                Ok((
                    row.get::<_, i64>(0)?,
                    row.get::<_, i64>(1)?,
                    row.get::<_, i64>(2)?,
                ))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        rows.into_iter()
            .map(|(number, size, crc32)| {
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
        load(&self.conn, id)
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
        self.load_where(&format!("state IN ({list}) ORDER BY id"), [])
    }

    /// All jobs for one content hash, oldest first (the `retry HASH` command).
    pub fn jobs_with_hash(&self, sha256: &ContentHash) -> Result<Vec<JobRecord>, LedgerError> {
        self.load_where("sha256 = ?1 ORDER BY id", [sha256.as_str()])
    }

    /// Published and Done jobs, most recently updated first.
    pub fn history(&self, limit: usize) -> Result<Vec<JobRecord>, LedgerError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.load_where(
            "state IN ('done', 'published') ORDER BY updated_at DESC, id DESC LIMIT ?1",
            [limit],
        )
    }

    /// Jobs per state, every state present (one `COUNT`, not every job loaded).
    pub fn count_by_state(&self) -> Result<BTreeMap<JobState, u64>, LedgerError> {
        let mut counts: BTreeMap<JobState, u64> = JobState::ALL.iter().map(|s| (*s, 0)).collect();
        let mut stmt = self
            .conn
            .prepare("SELECT state, COUNT(*) FROM jobs GROUP BY state")?;
        let rows = stmt.query_map([], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?))
        })?;
        for row in rows {
            let (state, n) = row?;
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
        let mut stmt = self.conn.prepare(&format!(
            "SELECT DISTINCT sha256, account FROM jobs WHERE state IN ({list})"
        ))?;
        let rows = stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn load_where(
        &self,
        clause: &str,
        params: impl rusqlite::Params,
    ) -> Result<Vec<JobRecord>, LedgerError> {
        let mut stmt = self
            .conn
            .prepare(&format!("SELECT {JOB_COLUMNS} FROM jobs WHERE {clause}"))?;
        let rows = stmt
            .query_map(params, RawJob::from_row)?
            .collect::<Result<Vec<_>, _>>()?;
        rows.into_iter()
            .map(|raw| {
                let steps = load_steps(&self.conn, raw.id)?;
                raw.into_record(steps)
            })
            .collect()
    }

    fn begin(&mut self) -> Result<Transaction<'_>, LedgerError> {
        // Never write to a database file that is no longer the ledger.
        self.check_file()?;
        Ok(self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?)
    }

    /// Loads the job inside an IMMEDIATE transaction, checks its state is one of
    /// `allowed`, runs `change`, commits.
    fn transition(
        &mut self,
        id: JobId,
        action: &'static str,
        point: Option<&str>,
        allowed: &[JobState],
        change: impl FnOnce(&Transaction<'_>, &JobRecord, i64) -> Result<(), LedgerError>,
    ) -> Result<(), LedgerError> {
        let now = now_ms();
        let tx = self.begin()?;
        let job = load(&tx, id)?.ok_or(LedgerError::NoSuchJob(id))?;
        if !allowed.contains(&job.state) {
            return Err(illegal(&job, action, "not allowed in this state"));
        }
        change(&tx, &job, now)?;
        tx.commit()?;
        if let Some(point) = point {
            failpoint::hit(point);
        }
        Ok(())
    }
}

/// The database file a connection has open: device and inode (unix), to notice the
/// file being deleted or replaced while the connection writes on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct FileId {
    #[cfg(unix)]
    dev: u64,
    #[cfg(unix)]
    ino: u64,
}

impl FileId {
    fn of(path: &Path) -> Option<FileId> {
        let meta = std::fs::metadata(path).ok()?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            Some(FileId {
                dev: meta.dev(),
                ino: meta.ino(),
            })
        }
        #[cfg(not(unix))]
        {
            let _ = meta;
            Some(FileId {})
        }
    }
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
/// used one, and rebuilding from receipts. The `notes` table is created on first use,
/// outside the numbered schema: it holds facts about the ledger itself, not jobs.
impl Ledger {
    /// Fails with [`LedgerError::Lost`] when the database file was deleted, replaced by
    /// another file, or emptied since it was opened. Every write checks it first; the
    /// agent also checks it now and then while idle.
    pub(crate) fn check_file(&self) -> Result<(), LedgerError> {
        let lost = |what| {
            Err(LedgerError::Lost {
                path: self.path.clone(),
                what,
            })
        };
        match std::fs::metadata(&self.path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => lost("was deleted"),
            Err(source) => Err(LedgerError::Io {
                path: self.path.clone(),
                source,
            }),
            Ok(meta) if meta.len() == 0 => lost("was emptied (0 bytes)"),
            Ok(_) if FileId::of(&self.path) != self.file => lost("was replaced by another file"),
            Ok(_) => Ok(()),
        }
    }

    /// How many jobs were ever recorded.
    pub(crate) fn job_count(&self) -> Result<u64, LedgerError> {
        let n: i64 = self
            .conn
            .query_row("SELECT COUNT(*) FROM jobs", [], |row| row.get(0))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// True once a start was told to begin with this empty ledger although receipts
    /// of earlier posts exist (`--new-ledger`).
    pub(crate) fn fresh_start_accepted(&self) -> Result<bool, LedgerError> {
        if !self.has_notes()? {
            return Ok(false);
        }
        let found: Option<String> = self
            .conn
            .query_row(
                "SELECT value FROM notes WHERE key = 'fresh_start'",
                [],
                |row| row.get(0),
            )
            .optional()?;
        Ok(found.is_some())
    }

    /// Remembers that this ledger starts fresh on purpose (`--new-ledger`).
    pub(crate) fn accept_fresh_start(&mut self) -> Result<(), LedgerError> {
        let now = crate::receipt::UtcTime::now().to_rfc3339();
        let tx = self.begin()?;
        tx.execute_batch(
            "CREATE TABLE IF NOT EXISTS notes (key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT",
        )?;
        tx.execute(
            "INSERT INTO notes (key, value) VALUES ('fresh_start', ?1) \
             ON CONFLICT (key) DO NOTHING",
            [now],
        )?;
        tx.commit()?;
        Ok(())
    }

    fn has_notes(&self) -> Result<bool, LedgerError> {
        let n: i64 = self.conn.query_row(
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'notes'",
            [],
            |row| row.get(0),
        )?;
        Ok(n > 0)
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
            .query_row(
                &format!(
                    "SELECT id FROM jobs WHERE (sha256 = ?1 AND account = ?2 \
                     AND state IN {LIVE_STATES_SQL}) OR (platform = ?3 AND post_id = ?4) \
                     ORDER BY id LIMIT 1"
                ),
                params![
                    post.sha256.as_str(),
                    post.account,
                    post.platform.as_str(),
                    post.post.id
                ],
                |row| row.get(0),
            )
            .optional()?;
        if let Some(id) = known {
            return Ok(Restore::Known(id));
        }
        tx.execute(
            "INSERT INTO jobs (sha256, account, state, generation, video, size, post_id, post_url, \
             archived_to, created_at, updated_at, platform, post_state) \
             VALUES (?1, ?2, 'done', 0, ?3, ?4, ?5, ?6, ?7, ?8, ?8, ?9, ?10)",
            params![
                post.sha256.as_str(),
                post.account,
                path_to_blob(&post.video),
                size,
                post.post.id,
                post.post.address(),
                post.archived_to.as_deref().map(path_to_blob),
                at,
                post.platform.as_str(),
                pending_state(&post.post),
            ],
        )
        .map_err(constraint_error)?;
        let id = tx.last_insert_rowid();
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
    tx: &Transaction<'_>,
    id: JobId,
    step: &StepName,
    at: i64,
    result: &str,
) -> Result<(), LedgerError> {
    tx.execute(
        "INSERT INTO steps (job_id, step, ordinal, at, result) VALUES (?1, ?2, \
         (SELECT COALESCE(MAX(ordinal), 0) + 1 FROM steps WHERE job_id = ?1), ?3, ?4) \
         ON CONFLICT (job_id, step) DO UPDATE SET at = excluded.at, result = excluded.result",
        params![id, step.as_str(), at, result],
    )?;
    Ok(())
}

/// Deletes a job's multipart session (upload id, credentials, `tos_sign`, token) and its
/// parts: once the upload is committed or the job has ended they are never used again,
/// and credentials must not outlive their use.
fn forget_upload_session(tx: &Transaction<'_>, id: JobId) -> Result<(), LedgerError> {
    tx.execute("DELETE FROM upload_parts WHERE job_id = ?1", [id])?;
    tx.execute("DELETE FROM upload_sessions WHERE job_id = ?1", [id])?;
    Ok(())
}

/// [`forget_upload_session`] for every job that no longer needs one (a ledger written
/// before sessions were deleted when their job ended).
fn forget_ended_upload_sessions(conn: &Connection) -> Result<(), LedgerError> {
    const ENDED: &str = "SELECT j.id FROM jobs j WHERE j.state NOT IN ('active', 'unconfirmed')";
    conn.execute(
        &format!("DELETE FROM upload_parts WHERE job_id IN ({ENDED})"),
        [],
    )?;
    conn.execute(
        &format!("DELETE FROM upload_sessions WHERE job_id IN ({ENDED})"),
        [],
    )?;
    Ok(())
}

fn touch(tx: &Transaction<'_>, id: JobId, now: i64) -> Result<(), LedgerError> {
    tx.execute(
        "UPDATE jobs SET updated_at = ?1 WHERE id = ?2",
        params![now, id],
    )?;
    Ok(())
}

fn set_error(
    tx: &Transaction<'_>,
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
        params![
            state.as_str(),
            step.map(StepName::as_str),
            class,
            reason,
            now,
            id
        ],
    )
    .map_err(constraint_error)?;
    Ok(())
}

/// Turns UNIQUE violations of the partial indexes into their meaning.
fn constraint_error(err: rusqlite::Error) -> LedgerError {
    if let rusqlite::Error::SqliteFailure(code, Some(msg)) = &err
        && code.code == rusqlite::ErrorCode::ConstraintViolation
    {
        if msg.contains("jobs.post_id") {
            return LedgerError::PostTaken;
        }
        if msg.contains("jobs.sha256") {
            return LedgerError::LiveJobExists;
        }
    }
    LedgerError::Sqlite(err)
}

fn migrate(conn: &mut Connection) -> Result<(), LedgerError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let found: i64 = tx.pragma_query_value(None, "user_version", |row| row.get(0))?;
    if found > SCHEMA_VERSION {
        return Err(LedgerError::NewerSchema {
            found,
            supported: SCHEMA_VERSION,
        });
    }
    for (version, sql) in MIGRATIONS.iter().enumerate().skip(found.max(0) as usize) {
        tracing::info!(to = version + 1, "migrating the ledger schema");
        tx.execute_batch(sql)?;
    }
    tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
    tx.commit()?;
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
}

impl RawJob {
    fn from_row(row: &Row<'_>) -> rusqlite::Result<RawJob> {
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
            post,
            error,
            duplicate_of: self.duplicate_of,
            archived_to: self.archived_to.map(blob_to_path),
            attempts: u32::try_from(self.attempts)
                .map_err(|_| corrupt("attempts out of range".into()))?,
            created_at: from_ms(self.created_at),
            updated_at: from_ms(self.updated_at),
            publish_at: self.publish_at,
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

fn load(conn: &Connection, id: JobId) -> Result<Option<JobRecord>, LedgerError> {
    let raw = conn
        .prepare_cached(&format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?1"))?
        .query_row([id], RawJob::from_row)
        .optional()?;
    match raw {
        None => Ok(None),
        Some(raw) => {
            let steps = load_steps(conn, id)?;
            raw.into_record(steps).map(Some)
        }
    }
}

fn load_steps(conn: &Connection, id: JobId) -> Result<Steps, LedgerError> {
    let mut stmt = conn
        .prepare_cached("SELECT step, at, result FROM steps WHERE job_id = ?1 ORDER BY ordinal")?;
    let rows = stmt
        .query_map([id], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, i64>(1)?,
                row.get::<_, String>(2)?,
            ))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let mut steps = Vec::new();
    for (step, at, result) in rows {
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

#[cfg(not(unix))]
fn path_to_blob(path: &Path) -> Vec<u8> {
    path.to_string_lossy().into_owned().into_bytes()
}

#[cfg(not(unix))]
fn blob_to_path(bytes: Vec<u8>) -> PathBuf {
    PathBuf::from(String::from_utf8_lossy(&bytes).into_owned())
}

fn create_state_dir(dir: &Path) -> Result<(), LedgerError> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir).map_err(|source| LedgerError::Io {
        path: dir.to_path_buf(),
        source,
    })
}

/// Creates the database file with mode 0600 (SQLite gives its -wal and -shm files
/// the same mode), and tightens an existing one.
fn create_private_file(path: &Path) -> Result<(), LedgerError> {
    let io = |source| LedgerError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut options = std::fs::OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let file = options.open(path).map_err(io)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(io)?;
    }
    drop(file);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn hash(n: u8) -> ContentHash {
        ContentHash::from_digest(&[n; 32])
    }

    /// A step name.
    fn st(name: &str) -> StepName {
        StepName::parse(name).unwrap()
    }

    /// A Douyin post with id `id`.
    fn post(id: &str) -> Post {
        Post::live(id, format!("https://www.douyin.com/video/{id}"))
    }

    fn new_job(n: u8, account: &str, video: &str) -> NewJob {
        NewJob {
            sha256: hash(n),
            account: account.to_string(),
            platform: Platform::DouyinWeb,
            video: PathBuf::from(video),
            caption: Some(PathBuf::from(video).with_extension("yaml")),
            size: 1234,
        }
    }

    fn open_temp() -> (tempfile::TempDir, Ledger) {
        let dir = tempfile::tempdir().expect("tempdir");
        let ledger = Ledger::open(&dir.path().join("state")).expect("open");
        (dir, ledger)
    }

    fn claimed_new(claim: Claim) -> JobRecord {
        match claim {
            Claim::New(job) => job,
            other => panic!("expected New, got {other:?}"),
        }
    }

    #[test]
    fn live_states_sql_matches_is_live() {
        for state in JobState::ALL {
            assert_eq!(
                LIVE_STATES_SQL.contains(&format!("'{}'", state.as_str())),
                state.is_live(),
                "{state}"
            );
            assert_eq!(JobState::parse(state.as_str()), Some(state));
        }
        assert_eq!(JobState::parse("Active"), None);
    }

    #[test]
    fn one_plan_for_every_target_of_a_drop_each_finished_by_its_state() {
        let (_dir, mut ledger) = open_temp();
        let posted = claimed_new(
            ledger
                .claim(&new_job(1, "main", "clip.mp4"), false)
                .unwrap(),
        );
        let failed = claimed_new(ledger.claim(&new_job(1, "alt", "clip.mp4"), false).unwrap());
        ledger.mark_publish_sent(posted.id).unwrap();
        ledger.mark_published(posted.id, &post("7001")).unwrap();
        ledger
            .mark_failed(failed.id, None, "caption", "no privacy")
            .unwrap();

        // A target still running cannot be planned: the plan is all or nothing.
        let running = claimed_new(
            ledger
                .claim(&new_job(1, "third", "clip.mp4"), false)
                .unwrap(),
        );
        let plan = json!({"dest": "done"});
        assert!(
            ledger
                .set_archive_plan_for(&[posted.id, running.id], &plan)
                .is_err()
        );
        assert_eq!(ledger.archive_plan(posted.id).unwrap(), None);

        ledger
            .set_archive_plan_for(&[posted.id, failed.id], &plan)
            .unwrap();
        assert_eq!(ledger.pending_archives().unwrap().len(), 2);
        for id in [posted.id, failed.id] {
            ledger
                .mark_archived(id, Path::new("done/clip.mp4"))
                .unwrap();
        }
        assert_eq!(
            ledger.job(posted.id).unwrap().unwrap().state,
            JobState::Done
        );
        let failed_now = ledger.job(failed.id).unwrap().unwrap();
        assert_eq!(failed_now.state, JobState::Failed);
        assert_eq!(failed_now.archived_to, Some(PathBuf::from("done/clip.mp4")));
        assert!(ledger.pending_archives().unwrap().is_empty());

        // Its drop back in the inbox for another target's retry, a failed target stays
        // failed and forgets its archive (so it is not taken for an unfinished one).
        ledger.reopen_ended(failed.id).unwrap();
        let reopened = ledger.job(failed.id).unwrap().unwrap();
        assert_eq!(reopened.state, JobState::Failed);
        assert_eq!(reopened.archived_to, None);
        assert_eq!(ledger.archive_plan(failed.id).unwrap(), None);
        assert!(ledger.pending_archives().unwrap().is_empty());
        assert!(
            ledger.reopen_ended(posted.id).is_err(),
            "a posted target is never reopened"
        );
    }

    #[test]
    fn claim_new_then_resume_same_video() {
        let (_dir, mut ledger) = open_temp();
        let job = claimed_new(
            ledger
                .claim(&new_job(1, "main", "a/clip.mp4"), false)
                .unwrap(),
        );
        assert_eq!(job.state, JobState::Active);
        assert_eq!(job.size, 1234);
        assert_eq!(job.attempts, 0);
        ledger
            .record_step(job.id, &st("credentials"), &json!({"ak": "x"}), false)
            .unwrap();

        let again = ledger
            .claim(&new_job(1, "main", "a/clip.mp4"), false)
            .unwrap();
        let Claim::Resume(resumed) = again else {
            panic!("expected Resume, got {again:?}");
        };
        assert_eq!(resumed.id, job.id);
        assert_eq!(
            resumed.steps.get(&st("credentials")).unwrap().result,
            json!({"ak": "x"})
        );
        assert_eq!(ledger.jobs_in(&JobState::ALL).unwrap().len(), 1);
    }

    #[test]
    fn resume_updates_a_moved_caption() {
        let (_dir, mut ledger) = open_temp();
        let job = claimed_new(
            ledger
                .claim(&new_job(1, "main", "clip.mp4"), false)
                .unwrap(),
        );
        let mut moved = new_job(1, "main", "clip.mp4");
        moved.caption = Some(PathBuf::from("caption.yaml"));
        let Claim::Resume(resumed) = ledger.claim(&moved, false).unwrap() else {
            panic!("expected Resume");
        };
        assert_eq!(resumed.id, job.id);
        assert_eq!(resumed.caption, Some(PathBuf::from("caption.yaml")));
    }

    #[test]
    fn claim_duplicate_of_other_path_and_of_done_job() {
        let (_dir, mut ledger) = open_temp();
        let first = claimed_new(
            ledger
                .claim(&new_job(1, "main", "clip.mp4"), false)
                .unwrap(),
        );

        // In flight under another name.
        let Claim::Duplicate { job, earlier } = ledger
            .claim(&new_job(1, "main", "copy.mp4"), false)
            .unwrap()
        else {
            panic!("expected Duplicate");
        };
        assert_eq!(earlier.id, first.id);
        assert_eq!(job.state, JobState::Duplicate);
        assert_eq!(job.duplicate_of, Some(first.id));
        assert_eq!(job.video, PathBuf::from("copy.mp4"));

        // Published and archived; the same path dropped again is a duplicate too.
        ledger.mark_publish_sent(first.id).unwrap();
        ledger.mark_published(first.id, &post("7001")).unwrap();
        ledger
            .mark_done(first.id, Path::new("done/clip.mp4"))
            .unwrap();
        let Claim::Duplicate { earlier, .. } = ledger
            .claim(&new_job(1, "main", "clip.mp4"), false)
            .unwrap()
        else {
            panic!("expected Duplicate");
        };
        assert_eq!(earlier.post.as_ref().map(|p| p.id.as_str()), Some("7001"));
        assert_eq!(earlier.state, JobState::Done);

        // Other account or other content: not a duplicate.
        claimed_new(ledger.claim(&new_job(1, "alt", "clip.mp4"), false).unwrap());
        claimed_new(
            ledger
                .claim(&new_job(2, "main", "clip.mp4"), false)
                .unwrap(),
        );
    }

    #[test]
    fn a_post_awaiting_moderation_gets_its_public_id_later_and_an_inbox_draft_keeps_its_state() {
        let (_dir, mut ledger) = open_temp();
        let a = claimed_new(ledger.claim(&new_job(1, "main", "a.mp4"), false).unwrap());
        let b = claimed_new(ledger.claim(&new_job(2, "main", "b.mp4"), false).unwrap());
        // A pending post never carries an address; a live one always does.
        let bad = Post {
            url: "https://x".into(),
            ..Post::awaiting_moderation("p")
        };
        assert!(matches!(
            ledger.mark_published(a.id, &bad),
            Err(LedgerError::Invalid(_))
        ));
        let pending = Post::awaiting_moderation("v_pub~1");
        ledger.mark_published(a.id, &pending).unwrap();
        ledger.mark_done(a.id, Path::new("done/a.mp4")).unwrap();
        ledger
            .mark_published(b.id, &Post::in_creator_inbox("v_inbox~2"))
            .unwrap();
        assert_eq!(ledger.job(a.id).unwrap().unwrap().post, Some(pending));
        let waiting = ledger.awaiting_moderation().unwrap();
        assert_eq!(waiting.iter().map(|j| j.id).collect::<Vec<_>>(), vec![a.id]);
        let b_post = ledger.job(b.id).unwrap().unwrap().post.unwrap();
        assert_eq!(b_post.state, PostState::InCreatorInbox);
        // Only a post awaiting moderation takes a public id, and only a live one.
        assert!(ledger.record_public_post(b.id, &post("7")).is_err());
        assert!(
            ledger
                .record_public_post(a.id, &Post::awaiting_moderation("q"))
                .is_err()
        );
        ledger.record_public_post(a.id, &post("7301")).unwrap();
        let a = ledger.job(a.id).unwrap().unwrap();
        assert_eq!(a.post, Some(post("7301")));
        assert_eq!(a.state, JobState::Done);
        assert!(ledger.awaiting_moderation().unwrap().is_empty());
        assert!(ledger.record_public_post(a.id, &post("7302")).is_err());
    }

    #[test]
    fn allow_duplicates_creates_a_second_live_job() {
        let (_dir, mut ledger) = open_temp();
        let first = claimed_new(ledger.claim(&new_job(1, "main", "clip.mp4"), true).unwrap());
        ledger.mark_published(first.id, &post("7001")).unwrap();
        ledger
            .mark_done(first.id, Path::new("done/clip.mp4"))
            .unwrap();
        let second = claimed_new(ledger.claim(&new_job(1, "main", "clip.mp4"), true).unwrap());
        let third = claimed_new(
            ledger
                .claim(&new_job(1, "main", "again.mp4"), true)
                .unwrap(),
        );
        assert!(second.id != first.id && third.id != second.id);
        // The same path as an in-flight job still resumes.
        let Claim::Resume(r) = ledger.claim(&new_job(1, "main", "clip.mp4"), true).unwrap() else {
            panic!("expected Resume");
        };
        assert_eq!(r.id, second.id);
        // A post id belongs to one job only.
        assert!(matches!(
            ledger.mark_published(second.id, &post("7001")),
            Err(LedgerError::PostTaken)
        ));
    }

    #[test]
    fn failed_abandoned_and_duplicate_jobs_do_not_block() {
        let (_dir, mut ledger) = open_temp();
        let a = claimed_new(
            ledger
                .claim(&new_job(1, "main", "clip.mp4"), false)
                .unwrap(),
        );
        ledger
            .mark_failed(a.id, Some(&st("upload")), "rejected", "bad video")
            .unwrap();
        let failed = ledger.job(a.id).unwrap().unwrap();
        assert_eq!(failed.state, JobState::Failed);
        assert_eq!(
            failed.error,
            Some(JobError {
                step: Some(st("upload")),
                class: "rejected".into(),
                reason: "bad video".into()
            })
        );
        let b = claimed_new(
            ledger
                .claim(&new_job(1, "main", "clip.mp4"), false)
                .unwrap(),
        );
        ledger.mark_abandoned(b.id, "video changed").unwrap();
        let c = claimed_new(
            ledger
                .claim(&new_job(1, "main", "clip.mp4"), false)
                .unwrap(),
        );
        assert!(c.id > b.id);
        // A failed job cannot be requeued while c is live.
        assert!(matches!(
            ledger.requeue(a.id),
            Err(LedgerError::LiveJobExists)
        ));
    }

    #[test]
    fn illegal_transitions_are_refused_and_write_nothing() {
        let (_dir, mut ledger) = open_temp();
        let a = claimed_new(
            ledger
                .claim(&new_job(1, "main", "clip.mp4"), false)
                .unwrap(),
        );
        ledger.mark_failed(a.id, None, "rejected", "no").unwrap();
        let before = ledger.job(a.id).unwrap();
        for result in [
            ledger.mark_published(a.id, &post("1")),
            ledger.mark_done(a.id, Path::new("x")),
            ledger.mark_failed(a.id, None, "x", "y"),
            ledger.mark_publish_sent(a.id),
            ledger.record_step(a.id, &st("upload"), &json!(null), false),
            ledger.forget_steps(a.id),
            ledger.bump_attempts(a.id).map(drop),
        ] {
            assert!(
                matches!(
                    result,
                    Err(LedgerError::Illegal {
                        state: JobState::Failed,
                        ..
                    })
                ),
                "{result:?}"
            );
        }
        assert_eq!(ledger.job(a.id).unwrap(), before);
        assert!(matches!(
            ledger.mark_done(999, Path::new("x")),
            Err(LedgerError::NoSuchJob(999))
        ));

        // Step 5 in doubt: neither abandoning nor forgetting is allowed; failing an
        // unconfirmed job is not either.
        let b = claimed_new(ledger.claim(&new_job(2, "main", "b.mp4"), false).unwrap());
        ledger.mark_publish_sent(b.id).unwrap();
        assert!(ledger.job(b.id).unwrap().unwrap().publish_in_doubt());
        assert!(matches!(
            ledger.mark_abandoned(b.id, "changed"),
            Err(LedgerError::Illegal { .. })
        ));
        assert!(matches!(
            ledger.forget_steps(b.id),
            Err(LedgerError::Illegal { .. })
        ));
        ledger
            .mark_unconfirmed(b.id, "timeout, list empty")
            .unwrap();
        assert!(matches!(
            ledger.mark_failed(b.id, None, "x", "y"),
            Err(LedgerError::Illegal {
                state: JobState::Unconfirmed,
                ..
            })
        ));
        // Reconciliation finds the post later.
        ledger.mark_published(b.id, &post("7002")).unwrap();
        let b = ledger.job(b.id).unwrap().unwrap();
        assert_eq!(b.state, JobState::Published);
        assert_eq!(b.error, None);
    }

    #[test]
    fn steps_attempts_forget_and_history() {
        let (_dir, mut ledger) = open_temp();
        let a = claimed_new(
            ledger
                .claim(&new_job(1, "main", "clip.mp4"), false)
                .unwrap(),
        );
        for step in ["credentials", "upload_params", "upload"] {
            ledger
                .record_step(a.id, &st(step), &json!({"step": step}), false)
                .unwrap();
        }
        assert_eq!(ledger.bump_attempts(a.id).unwrap(), 1);
        assert_eq!(ledger.bump_attempts(a.id).unwrap(), 2);
        ledger.forget_steps(a.id).unwrap();
        let job = ledger.job(a.id).unwrap().unwrap();
        assert!(job.steps.is_empty(), "{:?}", job.steps);
        assert_eq!(job.attempts, 2);

        ledger
            .record_step(a.id, &st("commit"), &json!({"vid": "v1"}), true)
            .unwrap();
        ledger.mark_publish_sent(a.id).unwrap();
        // The publish step's result comes with mark_published only.
        assert!(matches!(
            ledger.record_step(a.id, &StepName::PUBLISH, &json!({}), false),
            Err(LedgerError::Invalid(_))
        ));
        ledger.mark_published(a.id, &post("1")).unwrap();
        assert!(matches!(
            ledger.mark_publish_sent(a.id),
            Err(LedgerError::Illegal { .. })
        ));

        let b = claimed_new(ledger.claim(&new_job(2, "main", "b.mp4"), false).unwrap());
        ledger.mark_published(b.id, &post("2")).unwrap();
        ledger.mark_done(b.id, Path::new("done/b.mp4")).unwrap();
        claimed_new(ledger.claim(&new_job(3, "main", "c.mp4"), false).unwrap());

        let history = ledger.history(10).unwrap();
        assert_eq!(
            history.iter().map(|j| j.id).collect::<Vec<_>>(),
            vec![b.id, a.id]
        );
        assert_eq!(ledger.history(1).unwrap().len(), 1);
        assert_eq!(ledger.jobs_in(&[JobState::Active]).unwrap().len(), 1);
        assert_eq!(ledger.jobs_in(&[]).unwrap().len(), 0);
        assert_eq!(ledger.jobs_with_hash(&hash(2)).unwrap()[0].id, b.id);
    }

    // The dead-end `retry` of a TikTok job whose publish_id FAILED: forget_steps refused
    // after the publish mark, so the job polled the dead publish_id forever.
    #[test]
    fn a_void_upload_forgets_steps_session_and_the_publish_mark_of_an_active_job_only() {
        let (_dir, mut ledger) = open_temp();
        let a = claimed_new(
            ledger
                .claim(&new_job(1, "main", "clip.mp4"), false)
                .unwrap(),
        );
        ledger
            .save_upload_session(a.id, &json!({"url": "u"}))
            .unwrap();
        ledger
            .record_step(a.id, &st("upload"), &json!({"id": "p1"}), true)
            .unwrap();
        ledger.mark_publish_sent(a.id).unwrap();
        assert!(ledger.forget_steps(a.id).is_err(), "the fence holds");
        ledger.void_upload(a.id).unwrap();
        let job = ledger.job(a.id).unwrap().unwrap();
        assert!(job.steps.is_empty(), "{:?}", job.steps);
        assert_eq!(job.publish_sent_at, None);
        assert!(!job.publish_in_doubt());
        assert_eq!(ledger.upload_session(a.id).unwrap(), None);

        // Never for a job that is not active, nor once step 5 posted.
        ledger.mark_failed(a.id, None, "rejected", "no").unwrap();
        assert!(matches!(
            ledger.void_upload(a.id),
            Err(LedgerError::Illegal { .. })
        ));
        let b = claimed_new(ledger.claim(&new_job(2, "main", "b.mp4"), false).unwrap());
        ledger.mark_publish_sent(b.id).unwrap();
        ledger.mark_posted_without_id(b.id).unwrap();
        assert!(matches!(
            ledger.void_upload(b.id),
            Err(LedgerError::Illegal { .. })
        ));
        assert!(ledger.job(b.id).unwrap().unwrap().posted_without_id());
    }

    #[test]
    fn reopen_after_drop_keeps_everything() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        let (id, before) = {
            let mut ledger = Ledger::open(&state).unwrap();
            let a = claimed_new(
                ledger
                    .claim(&new_job(1, "main", "clip.mp4"), false)
                    .unwrap(),
            );
            ledger
                .record_step(a.id, &st("upload_params"), &json!({"vid": "v9"}), false)
                .unwrap();
            ledger.bump_attempts(a.id).unwrap();
            ledger.mark_publish_sent(a.id).unwrap();
            (a.id, ledger.job(a.id).unwrap().unwrap())
        };
        let mut ledger = Ledger::open(&state).unwrap();
        let after = ledger.job(id).unwrap().unwrap();
        assert_eq!(after, before);
        assert!(after.publish_in_doubt());
        assert_eq!(
            after.steps.get(&st("upload_params")).unwrap().result["vid"],
            "v9"
        );
        // Restart: the same video resumes, carrying the step-5 mark.
        let Claim::Resume(r) = ledger
            .claim(&new_job(1, "main", "clip.mp4"), false)
            .unwrap()
        else {
            panic!("expected Resume");
        };
        assert_eq!(r.id, id);
        assert!(r.publish_sent_at.is_some());
    }

    #[test]
    fn pragmas_are_set_and_file_is_private() {
        let (dir, ledger) = open_temp();
        let mode: String = ledger
            .conn
            .pragma_query_value(None, "journal_mode", |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        let sync: i64 = ledger
            .conn
            .pragma_query_value(None, "synchronous", |r| r.get(0))
            .unwrap();
        assert_eq!(sync, 2, "synchronous=FULL");
        let version: i64 = ledger
            .conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
        let busy: i64 = ledger
            .conn
            .pragma_query_value(None, "busy_timeout", |r| r.get(0))
            .unwrap();
        assert!(busy > 0);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("state").join(FILE_NAME))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        drop(Ledger::open(dir.path()).unwrap());
        let conn = Connection::open(dir.path().join(FILE_NAME)).unwrap();
        conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .unwrap();
        drop(conn);
        assert!(matches!(
            Ledger::open(dir.path()),
            Err(LedgerError::NewerSchema { .. })
        ));
    }

    #[test]
    fn unique_index_refuses_a_second_live_job_even_via_raw_sql() {
        let (_dir, mut ledger) = open_temp();
        let a = claimed_new(
            ledger
                .claim(&new_job(1, "main", "clip.mp4"), false)
                .unwrap(),
        );
        let insert = |ledger: &Ledger, state: &str| {
            ledger.conn.execute(
                "INSERT INTO jobs (sha256, account, state, video, size, created_at, updated_at) \
                 VALUES (?1, 'main', ?2, x'6f74686572', 1, 0, 0)",
                params![hash(1).as_str(), state],
            )
        };
        for state in ["active", "published", "done", "unconfirmed"] {
            let err = insert(&ledger, state).expect_err(state);
            assert!(matches!(constraint_error(err), LedgerError::LiveJobExists));
        }
        for state in ["failed", "duplicate", "abandoned"] {
            insert(&ledger, state).expect(state);
        }
        // Turning a failed row live behind the ledger's back is refused too.
        let err = ledger
            .conn
            .execute(
                "UPDATE jobs SET state = 'active' WHERE state = 'failed'",
                [],
            )
            .expect_err("update");
        assert!(matches!(constraint_error(err), LedgerError::LiveJobExists));
        ledger.mark_failed(a.id, None, "x", "y").unwrap();
        insert(&ledger, "active").expect("no live job any more");
    }

    #[cfg(unix)]
    #[test]
    fn non_utf8_paths_round_trip() {
        use std::ffi::OsStr;
        use std::os::unix::ffi::OsStrExt;
        let dir = tempfile::tempdir().unwrap();
        let video = PathBuf::from(OsStr::from_bytes(b"sub/\xff\xfeclip.mp4"));
        let caption = PathBuf::from(OsStr::from_bytes(b"sub/\xff\xfeclip.yaml"));
        let archived = PathBuf::from(OsStr::from_bytes(b"done/sub/\xff\xfeclip-1.mp4"));
        let id = {
            let mut ledger = Ledger::open(dir.path()).unwrap();
            let job = NewJob {
                sha256: hash(7),
                account: "main".into(),
                platform: Platform::DouyinWeb,
                video: video.clone(),
                caption: Some(caption.clone()),
                size: 1,
            };
            let a = claimed_new(ledger.claim(&job, false).unwrap());
            ledger.mark_published(a.id, &post("9")).unwrap();
            ledger.mark_done(a.id, &archived).unwrap();
            a.id
        };
        let ledger = Ledger::open(dir.path()).unwrap();
        let job = ledger.job(id).unwrap().unwrap();
        assert_eq!(job.video, video);
        assert_eq!(job.caption, Some(caption));
        assert_eq!(job.archived_to, Some(archived));
    }

    fn a_plan(n: u32) -> serde_json::Value {
        json!({"dest": "done", "moves": [{"from": "/in/a.mp4", "to": format!("/done/a-{n}.mp4")}],
               "receipt": "/done/a.receipt.json", "receipt_json": "{}\n"})
    }

    fn pending_ids(ledger: &Ledger) -> Vec<JobId> {
        ledger
            .pending_archives()
            .unwrap()
            .into_iter()
            .map(|(job, _)| job.id)
            .collect()
    }

    #[test]
    fn archive_plans_are_pending_until_the_archive_is_recorded() {
        let (_dir, mut ledger) = open_temp();
        let published = claimed_new(ledger.claim(&new_job(1, "main", "a.mp4"), false).unwrap());
        let failed = claimed_new(ledger.claim(&new_job(2, "main", "b.mp4"), false).unwrap());
        let Claim::Duplicate { job: dup, .. } = ledger
            .claim(&new_job(1, "main", "copy.mp4"), false)
            .unwrap()
        else {
            panic!("expected Duplicate");
        };
        let active = claimed_new(ledger.claim(&new_job(3, "main", "c.mp4"), false).unwrap());

        // Not before the job has ended, and not for jobs whose files stay in the inbox.
        let refused = |ledger: &mut Ledger, id| {
            matches!(
                ledger.set_archive_plan(id, &a_plan(0)),
                Err(LedgerError::Illegal {
                    action: "plan the archive",
                    ..
                })
            )
        };
        assert!(refused(&mut ledger, published.id));
        ledger.mark_published(published.id, &post("11")).unwrap();
        ledger
            .mark_failed(failed.id, Some(&st("upload")), "rejected", "too long")
            .unwrap();
        assert!(matches!(
            ledger.set_archive_plan(published.id, &json!("not an object")),
            Err(LedgerError::Invalid(_))
        ));
        assert!(pending_ids(&ledger).is_empty());

        for id in [published.id, failed.id, dup.id] {
            ledger.set_archive_plan(id, &a_plan(1)).unwrap();
        }
        // Planning again (a name was taken before anything moved) replaces the plan.
        ledger.set_archive_plan(published.id, &a_plan(2)).unwrap();
        let pending = ledger.pending_archives().unwrap();
        assert_eq!(
            pending.iter().map(|(j, _)| j.id).collect::<Vec<_>>(),
            vec![published.id, failed.id, dup.id]
        );
        assert_eq!(pending[0].1, a_plan(2));
        assert_eq!(pending[0].0.state, JobState::Published);
        assert_eq!(ledger.archive_plan(failed.id).unwrap(), Some(a_plan(1)));
        assert_eq!(ledger.archive_plan(active.id).unwrap(), None);
        assert!(matches!(
            ledger.archive_plan(999),
            Err(LedgerError::NoSuchJob(999))
        ));

        // The files of a failed job cannot go back to the queue halfway through a move.
        assert!(matches!(
            ledger.requeue(failed.id),
            Err(LedgerError::Illegal {
                action: "requeue",
                ..
            })
        ));

        ledger
            .mark_done(published.id, Path::new("/done/a-2.mp4"))
            .unwrap();
        ledger
            .record_archived(failed.id, Path::new("/failed/b.mp4"))
            .unwrap();
        assert_eq!(pending_ids(&ledger), vec![dup.id]);
        assert!(refused(&mut ledger, failed.id), "archived already");
        assert!(refused(&mut ledger, published.id), "done");
        ledger
            .record_archived(dup.id, Path::new("/duplicates/copy.mp4"))
            .unwrap();
        assert!(pending_ids(&ledger).is_empty());
        // The finished plan is still on record.
        assert_eq!(ledger.archive_plan(published.id).unwrap(), Some(a_plan(2)));

        // Retrying the failed job starts it over: a later failure plans a new archive.
        ledger.requeue(failed.id).unwrap();
        let again = ledger.job(failed.id).unwrap().unwrap();
        assert_eq!((again.state, again.archived_to), (JobState::Active, None));
        assert_eq!(ledger.archive_plan(failed.id).unwrap(), None);
        ledger
            .mark_failed(failed.id, None, "rejected", "again")
            .unwrap();
        ledger.set_archive_plan(failed.id, &a_plan(3)).unwrap();
        assert_eq!(pending_ids(&ledger), vec![failed.id]);

        // Abandoned and Unconfirmed jobs keep their files in the inbox.
        ledger.mark_abandoned(active.id, "changed").unwrap();
        assert!(refused(&mut ledger, active.id));
        let unsure = claimed_new(ledger.claim(&new_job(4, "main", "d.mp4"), false).unwrap());
        ledger.mark_unconfirmed(unsure.id, "?").unwrap();
        assert!(refused(&mut ledger, unsure.id));
    }

    #[test]
    fn pending_archives_survive_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let id = {
            let mut ledger = Ledger::open(dir.path()).unwrap();
            let a = claimed_new(ledger.claim(&new_job(1, "main", "a.mp4"), false).unwrap());
            ledger.mark_published(a.id, &post("5")).unwrap();
            ledger.set_archive_plan(a.id, &a_plan(0)).unwrap();
            a.id
        };
        let mut ledger = Ledger::open(dir.path()).unwrap();
        let pending = ledger.pending_archives().unwrap();
        assert_eq!(pending.len(), 1);
        assert_eq!((pending[0].0.id, &pending[0].1), (id, &a_plan(0)));
        ledger.mark_done(id, Path::new("/done/a-0.mp4")).unwrap();
        assert!(ledger.pending_archives().unwrap().is_empty());
    }

    #[test]
    fn a_corrupt_plan_is_reported_not_skipped() {
        let (_dir, mut ledger) = open_temp();
        let a = claimed_new(ledger.claim(&new_job(1, "main", "a.mp4"), false).unwrap());
        ledger.mark_published(a.id, &post("5")).unwrap();
        // json_valid guards the column itself.
        assert!(
            ledger
                .conn
                .execute(
                    "UPDATE jobs SET archive_plan = '{oops' WHERE id = ?1",
                    [a.id]
                )
                .is_err()
        );
        ledger.set_archive_plan(a.id, &a_plan(0)).unwrap();
        // Damage that got past the check (a hand-edited file, say).
        ledger
            .conn
            .pragma_update(None, "ignore_check_constraints", true)
            .unwrap();
        ledger
            .conn
            .execute(
                "UPDATE jobs SET archive_plan = '{oops' WHERE id = ?1",
                [a.id],
            )
            .unwrap();
        assert!(matches!(
            ledger.pending_archives(),
            Err(LedgerError::Corrupt { .. })
        ));
    }

    #[test]
    fn migration_from_v1_keeps_every_job() {
        let dir = tempfile::tempdir().unwrap();
        {
            let conn = Connection::open(dir.path().join(FILE_NAME)).unwrap();
            let _: String = conn
                .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))
                .unwrap();
            conn.execute_batch(SCHEMA_V1).unwrap();
            conn.pragma_update(None, "user_version", 1).unwrap();
            conn.execute_batch(&format!(
                "INSERT INTO jobs (sha256, account, state, video, caption, size, aweme_id, \
                   archived_to, attempts, created_at, updated_at) VALUES \
                 ('{h1}', 'main', 'done', CAST('a.mp4' AS BLOB), CAST('a.yaml' AS BLOB), 10, \
                   '71', CAST('done/a.mp4' AS BLOB), 1, 1000, 2000), \
                 ('{h2}', 'main', 'published', CAST('b.mp4' AS BLOB), NULL, 20, '72', NULL, 0, \
                   1000, 3000), \
                 ('{h3}', 'alt', 'active', CAST('c.mp4' AS BLOB), NULL, 30, NULL, NULL, 2, \
                   1000, 4000); \
                 INSERT INTO steps (job_id, step, ordinal, at, result) VALUES \
                   (3, 'upload_params', 1, 3500, '{{\"vid\":\"v3\"}}');",
                h1 = hash(1),
                h2 = hash(2),
                h3 = hash(3),
            ))
            .unwrap();
        }
        let mut ledger = Ledger::open(dir.path()).unwrap();
        let version: i64 = ledger
            .conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
        let jobs = ledger.jobs_in(&JobState::ALL).unwrap();
        assert_eq!(jobs.len(), 3);
        let done = &jobs[0];
        assert_eq!(done.state, JobState::Done);
        assert_eq!(done.caption, Some(PathBuf::from("a.yaml")));
        assert_eq!(done.archived_to, Some(PathBuf::from("done/a.mp4")));
        assert_eq!(done.post.as_ref().map(|p| p.id.as_str()), Some("71"));
        // Schema 4: every job before it was douyin-web's, and its address is kept.
        assert!(jobs.iter().all(|j| j.platform == Platform::DouyinWeb));
        assert_eq!(
            done.post.as_ref().map(|p| p.url.as_str()),
            Some("https://www.douyin.com/video/71")
        );
        assert_eq!(done.updated_at, from_ms(2000));
        assert_eq!(jobs[1].state, JobState::Published);
        assert_eq!(jobs[2].attempts, 2);
        assert_eq!(
            jobs[2].steps.get(&st("upload_params")).unwrap().result["vid"],
            "v3"
        );
        assert!(ledger.pending_archives().unwrap().is_empty());

        // The old jobs go on under the new schema.
        ledger.set_archive_plan(jobs[1].id, &a_plan(0)).unwrap();
        assert_eq!(pending_ids(&ledger), vec![jobs[1].id]);
        let Claim::Resume(c) = ledger
            .claim(
                &NewJob {
                    sha256: hash(3),
                    account: "alt".into(),
                    platform: Platform::DouyinWeb,
                    video: "c.mp4".into(),
                    caption: None,
                    size: 30,
                },
                false,
            )
            .unwrap()
        else {
            panic!("expected Resume");
        };
        assert_eq!(c.id, jobs[2].id);
        // And the migration is not run twice.
        drop(ledger);
        let ledger = Ledger::open(dir.path()).unwrap();
        assert_eq!(ledger.jobs_in(&JobState::ALL).unwrap().len(), 3);
        assert_eq!(ledger.archive_plan(jobs[1].id).unwrap(), Some(a_plan(0)));
    }

    #[test]
    fn ledger_failpoints_are_listed() {
        let names = [
            "after_commit:claim",
            "after_commit:duplicate",
            "after_commit:publish_sent",
            "after_commit:published",
            "after_commit:archive_plan",
            "after_commit:done",
            "after_commit:archived",
            "after_commit:failed",
            "after_commit:abandoned",
            "after_commit:unconfirmed",
        ];
        let steps = ["credentials", "upload_params", "upload", "commit"]
            .map(|s| format!("after_commit:{s}"));
        for name in names.into_iter().chain(steps.iter().map(String::as_str)) {
            assert!(failpoint::NAMES.contains(&name), "{name}");
        }
    }

    /// Plays one job through to Done in a child process that aborts at a failpoint;
    /// only does something when started by `real_crashes_keep_every_commit`.
    #[cfg(feature = "failpoints")]
    #[test]
    #[ignore = "run as a child process by real_crashes_keep_every_commit"]
    fn crash_child() {
        let Some(dir) = std::env::var_os("DROPCAST_TEST_STATE") else {
            return;
        };
        let mut ledger = Ledger::open(Path::new(&dir)).unwrap();
        let a = claimed_new(ledger.claim(&new_job(1, "main", "a.mp4"), false).unwrap());
        ledger
            .record_step(a.id, &st("credentials"), &json!({}), false)
            .unwrap();
        ledger.mark_publish_sent(a.id).unwrap();
        ledger.mark_published(a.id, &post("5")).unwrap();
        ledger.set_archive_plan(a.id, &a_plan(0)).unwrap();
        ledger.mark_done(a.id, Path::new("/done/a-0.mp4")).unwrap();
    }

    #[cfg(feature = "failpoints")]
    #[test]
    fn real_crashes_keep_every_commit() {
        let points = [
            ("after_commit:claim", JobState::Active, false),
            ("after_commit:credentials", JobState::Active, false),
            ("after_commit:publish_sent", JobState::Active, false),
            ("after_commit:published", JobState::Published, false),
            ("after_commit:archive_plan", JobState::Published, true),
            ("after_commit:done", JobState::Done, false),
        ];
        for (point, state, pending) in points {
            let dir = tempfile::tempdir().unwrap();
            let status = std::process::Command::new(std::env::current_exe().unwrap())
                .args(["--exact", "ledger::tests::crash_child", "--ignored"])
                .args(["--test-threads=1", "--nocapture"])
                .env("DROPCAST_TEST_STATE", dir.path())
                .env("DROPCAST_FAILPOINT", point)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status()
                .unwrap();
            assert!(!status.success(), "{point}: the child did not crash");
            let ledger = Ledger::open(dir.path()).unwrap();
            let jobs = ledger.jobs_in(&JobState::ALL).unwrap();
            assert_eq!(jobs.len(), 1, "{point}");
            assert_eq!(jobs[0].state, state, "{point}");
            assert_eq!(
                jobs[0].steps.contains(&st("credentials")),
                point != "after_commit:claim",
                "{point}"
            );
            assert_eq!(
                !ledger.pending_archives().unwrap().is_empty(),
                pending,
                "{point}"
            );
        }
    }

    #[test]
    fn times_round_trip_in_millis() {
        for ms in [0, 1, 1_700_000_000_123, -5] {
            assert_eq!(to_ms(from_ms(ms)), ms);
        }
    }

    #[derive(Clone, Debug)]
    enum Op {
        Claim { content: u8, account: u8, path: u8 },
        Step { pick: usize, step: usize },
        Publish { pick: usize },
        SendOnly { pick: usize },
        Unconfirm { pick: usize },
        Fail { pick: usize },
        Abandon { pick: usize },
        Done { pick: usize },
        Requeue { pick: usize },
        Forget { pick: usize },
        Plan { pick: usize },
        Archived { pick: usize },
        Reopen,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (0..2u8, 0..2u8, 0..3u8)
                .prop_map(|(content, account, path)| Op::Claim { content, account, path }),
            2 => (any::<usize>(), 0..5usize).prop_map(|(pick, step)| Op::Step { pick, step }),
            2 => any::<usize>().prop_map(|pick| Op::Publish { pick }),
            1 => any::<usize>().prop_map(|pick| Op::SendOnly { pick }),
            1 => any::<usize>().prop_map(|pick| Op::Unconfirm { pick }),
            1 => any::<usize>().prop_map(|pick| Op::Fail { pick }),
            1 => any::<usize>().prop_map(|pick| Op::Abandon { pick }),
            1 => any::<usize>().prop_map(|pick| Op::Done { pick }),
            1 => any::<usize>().prop_map(|pick| Op::Requeue { pick }),
            1 => any::<usize>().prop_map(|pick| Op::Forget { pick }),
            2 => any::<usize>().prop_map(|pick| Op::Plan { pick }),
            1 => any::<usize>().prop_map(|pick| Op::Archived { pick }),
            1 => Just(Op::Reopen),
        ]
    }

    /// Errors a random sequence may legitimately provoke; anything else is a bug.
    fn expected(result: Result<(), LedgerError>) -> Result<(), TestCaseError> {
        match result {
            Ok(())
            | Err(LedgerError::Illegal { .. })
            | Err(LedgerError::LiveJobExists)
            | Err(LedgerError::PostTaken) => Ok(()),
            Err(e) => Err(TestCaseError::fail(format!("unexpected error: {e}"))),
        }
    }

    fn check_invariants(ledger: &Ledger) -> Result<(), TestCaseError> {
        let jobs = ledger
            .jobs_in(&JobState::ALL)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let mut live = std::collections::HashMap::new();
        let mut posts = std::collections::HashMap::new();
        for job in &jobs {
            let key = (job.sha256.clone(), job.account.clone());
            if job.state.is_live() {
                *live.entry(key.clone()).or_insert(0) += 1;
            }
            if job.post.is_some() {
                prop_assert!(
                    matches!(job.state, JobState::Published | JobState::Done),
                    "a post on a job in state {}",
                    job.state
                );
                *posts.entry(key).or_insert(0) += 1;
            }
            if job.state == JobState::Duplicate {
                prop_assert!(job.duplicate_of.is_some());
            }
        }
        prop_assert!(live.values().all(|n| *n <= 1), "two live jobs: {live:?}");
        let pending = ledger
            .pending_archives()
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        for (job, _) in &pending {
            prop_assert!(
                matches!(
                    job.state,
                    JobState::Published | JobState::Failed | JobState::Duplicate
                ) && (job.state == JobState::Published || job.archived_to.is_none()),
                "job {} in state {} listed as a pending archive",
                job.id,
                job.state
            );
        }
        prop_assert!(posts.values().all(|n| *n <= 1), "two posts: {posts:?}");
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]
        #[test]
        fn random_sequences_never_give_two_live_jobs_or_two_posts(ops in prop::collection::vec(op(), 1..40)) {
            let dir = tempfile::tempdir().unwrap();
            let mut ledger = Ledger::open(dir.path()).unwrap();
            let mut next_post = 0u32;
            for op in ops {
                let ids: Vec<JobId> = ledger
                    .jobs_in(&JobState::ALL)
                    .unwrap()
                    .iter()
                    .map(|j| j.id)
                    .collect();
                if ids.is_empty() && !matches!(op, Op::Claim { .. } | Op::Reopen) {
                    continue;
                }
                let pick = |p: usize| ids[p % ids.len()];
                match op {
                    Op::Claim { content, account, path } => {
                        let job = NewJob {
                            sha256: hash(content),
                            account: format!("acct{account}"),
                            platform: Platform::DouyinWeb,
                            video: PathBuf::from(format!("v{path}.mp4")),
                            caption: None,
                            size: 10,
                        };
                        let live_before = ledger
                            .jobs_in(&JobState::ALL)
                            .unwrap()
                            .into_iter()
                            .any(|j| j.state.is_live() && j.sha256 == job.sha256 && j.account == job.account);
                        let claim = ledger.claim(&job, false).unwrap();
                        match &claim {
                            Claim::New(j) => prop_assert!(!live_before && j.state == JobState::Active),
                            Claim::Resume(j) => prop_assert!(live_before && j.video == job.video),
                            Claim::Duplicate { job: j, earlier } => {
                                prop_assert!(live_before && earlier.state.is_live());
                                prop_assert_eq!(j.duplicate_of, Some(earlier.id));
                            }
                        }
                    }
                    Op::Step { pick: p, step } => {
                        expected(ledger.record_step(pick(p), &st(["credentials", "upload_params", "upload", "commit"][step % 4]), &json!({"n": step}), step % 4 == 3))?;
                    }
                    Op::Publish { pick: p } => {
                        let id = pick(p);
                        if ledger.mark_publish_sent(id).is_ok() {
                            next_post += 1;
                            expected(ledger.mark_published(id, &post(&next_post.to_string())))?;
                        }
                    }
                    Op::SendOnly { pick: p } => expected(ledger.mark_publish_sent(pick(p)))?,
                    Op::Unconfirm { pick: p } => expected(ledger.mark_unconfirmed(pick(p), "?"))?,
                    Op::Fail { pick: p } => expected(ledger.mark_failed(pick(p), None, "rejected", "no"))?,
                    Op::Abandon { pick: p } => expected(ledger.mark_abandoned(pick(p), "changed"))?,
                    Op::Done { pick: p } => expected(ledger.mark_done(pick(p), Path::new("done/x.mp4")))?,
                    Op::Requeue { pick: p } => expected(ledger.requeue(pick(p)))?,
                    Op::Forget { pick: p } => expected(ledger.forget_steps(pick(p)))?,
                    Op::Plan { pick: p } => expected(ledger.set_archive_plan(pick(p), &json!({"n": p % 7})))?,
                    Op::Archived { pick: p } => expected(ledger.record_archived(pick(p), Path::new("failed/x.mp4")))?,
                    Op::Reopen => {
                        drop(ledger);
                        ledger = Ledger::open(dir.path()).unwrap();
                    }
                }
                check_invariants(&ledger)?;
            }
        }
    }

    #[test]
    fn multipart_session_and_parts_survive_a_restart_and_reset_with_the_upload() {
        let dir = tempfile::tempdir().unwrap();
        let mut l = Ledger::open(dir.path()).unwrap();
        let job = match l.claim(&new_job(1, "main", "a.mp4"), false).unwrap() {
            Claim::New(j) => j,
            other => panic!("{other:?}"),
        };
        assert!(
            l.record_part(
                job.id,
                PartRecord {
                    number: 1,
                    size: 5,
                    crc32: 7
                }
            )
            .is_err(),
            "no session yet"
        );
        l.save_upload_session(job.id, &serde_json::json!({"upload_id": "u1"}))
            .unwrap();
        l.record_part(
            job.id,
            PartRecord {
                number: 2,
                size: 5,
                crc32: 9,
            },
        )
        .unwrap();
        l.record_part(
            job.id,
            PartRecord {
                number: 1,
                size: 5,
                crc32: 7,
            },
        )
        .unwrap();
        l.set_publish_at(job.id, Some(1_800_000_000)).unwrap();
        drop(l);
        let mut l = Ledger::open(dir.path()).unwrap();
        assert_eq!(
            l.upload_session(job.id).unwrap().unwrap()["upload_id"],
            "u1"
        );
        let parts = l.parts(job.id).unwrap();
        assert_eq!(
            parts.iter().map(|p| p.number).collect::<Vec<_>>(),
            vec![1, 2]
        );
        assert_eq!(
            l.job(job.id).unwrap().unwrap().publish_at,
            Some(1_800_000_000)
        );
        // A new session voids the old parts; forgetting the upload voids both.
        l.save_upload_session(job.id, &serde_json::json!({"upload_id": "u2"}))
            .unwrap();
        assert!(l.parts(job.id).unwrap().is_empty());
        l.record_part(
            job.id,
            PartRecord {
                number: 1,
                size: 5,
                crc32: 7,
            },
        )
        .unwrap();
        l.forget_steps(job.id).unwrap();
        assert!(l.upload_session(job.id).unwrap().is_none());
        assert!(l.parts(job.id).unwrap().is_empty());
    }

    // Regression (issue 9 item 4): writes went on into a deleted ledger file.
    #[test]
    fn a_deleted_replaced_or_emptied_file_refuses_every_write() {
        for (what, spoil) in [
            ("was deleted", 0),
            ("was replaced by another file", 1),
            ("was emptied (0 bytes)", 2),
        ] {
            let (dir, mut ledger) = open_temp();
            let path = ledger.path().to_path_buf();
            ledger.check_file().unwrap();
            match spoil {
                0 => std::fs::remove_file(&path).unwrap(),
                1 => {
                    let other = dir.path().join("other");
                    std::fs::write(&other, b"x").unwrap();
                    std::fs::rename(&other, &path).unwrap();
                }
                _ => std::fs::File::create(&path).unwrap().set_len(0).unwrap(),
            }
            let err = ledger
                .claim(&new_job(1, "main", "clip.mp4"), false)
                .unwrap_err();
            assert!(
                matches!(&err, LedgerError::Lost { what: w, .. } if *w == what),
                "{err}"
            );
            assert!(err.to_string().contains("dropcast ledger rebuild"), "{err}");
        }
    }

    #[test]
    fn a_restored_post_makes_its_content_a_duplicate_and_is_restored_once() {
        let (_dir, mut ledger) = open_temp();
        assert_eq!(ledger.job_count().unwrap(), 0);
        assert!(!ledger.fresh_start_accepted().unwrap());
        let post = RestoredPost {
            sha256: hash(1),
            account: "main".into(),
            video: "a/clip.mp4".into(),
            size: 5,
            platform: Platform::DouyinWeb,
            post: post("7001"),
            archived_to: None,
            published_at: UNIX_EPOCH + Duration::from_secs(1_700_000_000),
        };
        let Restore::Restored(id) = ledger.restore_done(&post).unwrap() else {
            panic!("restored");
        };
        assert_eq!(ledger.restore_done(&post).unwrap(), Restore::Known(id));
        let job = ledger.job(id).unwrap().unwrap();
        assert_eq!(job.state, JobState::Done);
        assert_eq!(job.post.as_ref().map(|p| p.id.as_str()), Some("7001"));
        let again = ledger
            .claim(&new_job(1, "main", "b/copy.mp4"), false)
            .unwrap();
        assert!(
            matches!(&again, Claim::Duplicate { earlier, .. } if earlier.id == id),
            "{again:?}"
        );
        ledger.accept_fresh_start().unwrap();
        assert!(ledger.fresh_start_accepted().unwrap());
    }
}
