//! The ledger's schema on each database, versioned: SQLite's numbered migrations (the
//! file's `user_version`), and PostgreSQL's schema, created whole at the version it first
//! shipped in, then upgraded only by `dropcast ledger migrate`.

/// The schema version this binary reads and writes.
pub(crate) const VERSION: i64 = 7;

/// `SQLITE[v]` takes an SQLite ledger from version `v` to `v + 1`.
pub(super) const SQLITE: [&str; VERSION as usize] = [
    SCHEMA_V1, SCHEMA_V2, SCHEMA_V3, SCHEMA_V4, SCHEMA_V5, SCHEMA_V6, SCHEMA_V7,
];

/// Schema version 1.
///
/// `generation` is 0 for every job except one claimed with `allow_duplicates` while an
/// earlier live job holds the same content; it is what lets the UNIQUE index allow
/// deliberate re-posts and nothing else.
pub(super) const SCHEMA_V1: &str = "
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
pub(super) const SCHEMA_V2: &str = "
ALTER TABLE jobs ADD COLUMN archive_plan TEXT
    CHECK (archive_plan IS NULL OR json_valid(archive_plan));
";

/// Schema version 3: the scheduled time of a post, and multipart uploads in progress (the
/// session needed to go on after a restart, and each part that arrived) so that a restart
/// sends only the parts still missing.
pub(super) const SCHEMA_V3: &str = "
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
pub(super) const SCHEMA_V4: &str = "
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
pub(super) const SCHEMA_V5: &str = "
ALTER TABLE jobs ADD COLUMN post_state TEXT
    CHECK (post_state IS NULL OR post_state IN ('awaiting_moderation', 'in_creator_inbox'));
";

/// Schema version 6: several agents (issue 13). A job's lease: who works on it
/// (`lease_holder`, an agent's name), until when (`lease_until`, unix ms), and its fencing
/// number (`fence`), raised by every new holder, which every write of a job checks; which
/// agent set the publish mark (`publish_sent_by`: another agent's send is never repeated
/// on its own). The
/// agents that use the ledger (`agents`), and what all of them share per account
/// (`accounts`: the pause, the next post slot). `notes` (issue 9, created on first use
/// until now) joins the numbered schema.
pub(super) const SCHEMA_V6: &str = "
ALTER TABLE jobs ADD COLUMN lease_holder TEXT;
ALTER TABLE jobs ADD COLUMN lease_until INTEGER;
ALTER TABLE jobs ADD COLUMN fence INTEGER NOT NULL DEFAULT 0 CHECK (fence >= 0);
ALTER TABLE jobs ADD COLUMN publish_sent_by TEXT;
CREATE INDEX jobs_by_lease ON jobs (lease_holder) WHERE lease_holder IS NOT NULL;
CREATE INDEX jobs_by_video ON jobs (video);

CREATE TABLE IF NOT EXISTS notes (key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT;

CREATE TABLE agents (
    name         TEXT    PRIMARY KEY,
    host         TEXT    NOT NULL,
    pid          INTEGER NOT NULL,
    version      TEXT    NOT NULL,
    instance     TEXT    NOT NULL,
    started_at   INTEGER NOT NULL,
    heartbeat_at INTEGER NOT NULL,
    stopped_at   INTEGER,
    metrics      TEXT
) STRICT;

CREATE TABLE accounts (
    account       TEXT    PRIMARY KEY,
    paused_reason TEXT,
    paused_at     INTEGER,
    paused_by     TEXT,
    post_slot     INTEGER
) STRICT;
";

/// Schema version 7 (issue 14): the posting plan's slot of each job (`planned_at`), and
/// the notification outbox.
pub(super) const SCHEMA_V7: &str = "
-- PLAN (issue 14)
ALTER TABLE jobs ADD COLUMN planned_at INTEGER;
CREATE INDEX jobs_planned ON jobs (account, planned_at) WHERE planned_at IS NOT NULL;
-- NOTIFY (issue 14)
CREATE TABLE IF NOT EXISTS notify_outbox (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id      TEXT    NOT NULL CHECK (length(event_id) BETWEEN 1 AND 64),
    sink          TEXT    NOT NULL CHECK (length(sink) BETWEEN 1 AND 64),
    event         TEXT    NOT NULL CHECK (event IN
                      ('published', 'failed', 'duplicate', 'paused', 'session_expiring', 'resumed')),
    payload       TEXT    NOT NULL CHECK (json_valid(payload)),
    created_at    INTEGER NOT NULL,
    next_at       INTEGER NOT NULL,
    attempts      INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    claimed_by    TEXT,
    claimed_until INTEGER,
    delivered_at  INTEGER,
    gave_up_at    INTEGER,
    last_error    TEXT,
    UNIQUE (event_id, sink)
) STRICT;
CREATE INDEX IF NOT EXISTS notify_outbox_pending ON notify_outbox (next_at)
    WHERE delivered_at IS NULL AND gave_up_at IS NULL;
";

/// The PostgreSQL schema at version 6, the first a shared ledger has: the same tables,
/// columns, checks and unique indexes as SQLite's (integers are BIGINT, paths BYTEA, JSON
/// kept as checked text).
pub(super) const POSTGRES: &str = "
CREATE TABLE jobs (
    id              BIGSERIAL PRIMARY KEY,
    sha256          TEXT   NOT NULL CHECK (length(sha256) = 64),
    account         TEXT   NOT NULL,
    state           TEXT   NOT NULL CHECK (state IN
                        ('active', 'published', 'done', 'failed', 'duplicate', 'abandoned', 'unconfirmed')),
    generation      BIGINT NOT NULL DEFAULT 0,
    video           BYTEA  NOT NULL,
    caption         BYTEA,
    size            BIGINT NOT NULL CHECK (size >= 0),
    publish_sent_at BIGINT,
    post_id         TEXT,
    error_step      TEXT,
    error_class     TEXT,
    error_reason    TEXT,
    duplicate_of    BIGINT REFERENCES jobs (id),
    archived_to     BYTEA,
    attempts        BIGINT NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    archive_plan    TEXT   CHECK (archive_plan IS NULL OR archive_plan::jsonb IS NOT NULL),
    publish_at      BIGINT,
    platform        TEXT   NOT NULL DEFAULT 'douyin-web'
                        CHECK (platform IN ('douyin-web', 'douyin', 'tiktok')),
    post_url        TEXT,
    post_state      TEXT   CHECK (post_state IS NULL
                        OR post_state IN ('awaiting_moderation', 'in_creator_inbox')),
    lease_holder    TEXT,
    lease_until     BIGINT,
    fence           BIGINT NOT NULL DEFAULT 0 CHECK (fence >= 0),
    publish_sent_by TEXT
);
CREATE UNIQUE INDEX jobs_one_live_per_content ON jobs (sha256, account, generation)
    WHERE state IN ('active', 'published', 'done', 'unconfirmed');
CREATE UNIQUE INDEX jobs_one_job_per_post ON jobs (platform, post_id) WHERE post_id IS NOT NULL;
CREATE INDEX jobs_by_state ON jobs (state, id);
CREATE INDEX jobs_by_lease ON jobs (lease_holder) WHERE lease_holder IS NOT NULL;
CREATE INDEX jobs_by_video ON jobs (video);

CREATE TABLE steps (
    job_id  BIGINT NOT NULL REFERENCES jobs (id),
    step    TEXT   NOT NULL CHECK (step ~ '^[a-z][a-z0-9_]{0,31}$'),
    ordinal BIGINT NOT NULL,
    at      BIGINT NOT NULL,
    result  TEXT   NOT NULL,
    PRIMARY KEY (job_id, step)
);

CREATE TABLE upload_sessions (
    job_id     BIGINT PRIMARY KEY REFERENCES jobs (id),
    session    TEXT   NOT NULL CHECK (session::jsonb IS NOT NULL),
    created_at BIGINT NOT NULL
);

CREATE TABLE upload_parts (
    job_id BIGINT NOT NULL REFERENCES jobs (id),
    number BIGINT NOT NULL CHECK (number >= 1),
    size   BIGINT NOT NULL CHECK (size >= 0),
    crc32  BIGINT NOT NULL CHECK (crc32 >= 0),
    at     BIGINT NOT NULL,
    PRIMARY KEY (job_id, number)
);

CREATE TABLE notes (key TEXT PRIMARY KEY, value TEXT NOT NULL);

CREATE TABLE agents (
    name         TEXT   PRIMARY KEY,
    host         TEXT   NOT NULL,
    pid          BIGINT NOT NULL,
    version      TEXT   NOT NULL,
    instance     TEXT   NOT NULL,
    started_at   BIGINT NOT NULL,
    heartbeat_at BIGINT NOT NULL,
    stopped_at   BIGINT,
    metrics      TEXT
);

CREATE TABLE accounts (
    account       TEXT   PRIMARY KEY,
    paused_reason TEXT,
    paused_at     BIGINT,
    paused_by     TEXT,
    post_slot     BIGINT
);
";

/// The first version a PostgreSQL ledger can have.
pub(super) const POSTGRES_FIRST: i64 = 6;

/// `POSTGRES_UPGRADES[i]` takes a PostgreSQL ledger from version `POSTGRES_FIRST + i` to
/// the next. A new database gets [`POSTGRES`] and then every upgrade, so both paths give
/// one schema.
pub(super) const POSTGRES_UPGRADES: [&str; (VERSION - POSTGRES_FIRST) as usize] = [POSTGRES_V7];

/// PostgreSQL's version 7: [`SCHEMA_V7`] in PostgreSQL's types.
pub(super) const POSTGRES_V7: &str = "
-- PLAN (issue 14)
ALTER TABLE jobs ADD COLUMN IF NOT EXISTS planned_at BIGINT;
CREATE INDEX IF NOT EXISTS jobs_planned ON jobs (account, planned_at) WHERE planned_at IS NOT NULL;
-- NOTIFY (issue 14)
CREATE TABLE IF NOT EXISTS notify_outbox (
    id            BIGSERIAL PRIMARY KEY,
    event_id      TEXT   NOT NULL CHECK (length(event_id) BETWEEN 1 AND 64),
    sink          TEXT   NOT NULL CHECK (length(sink) BETWEEN 1 AND 64),
    event         TEXT   NOT NULL CHECK (event IN
                      ('published', 'failed', 'duplicate', 'paused', 'session_expiring', 'resumed')),
    payload       TEXT   NOT NULL CHECK (payload::jsonb IS NOT NULL),
    created_at    BIGINT NOT NULL,
    next_at       BIGINT NOT NULL,
    attempts      BIGINT NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    claimed_by    TEXT,
    claimed_until BIGINT,
    delivered_at  BIGINT,
    gave_up_at    BIGINT,
    last_error    TEXT,
    UNIQUE (event_id, sink)
);
CREATE INDEX IF NOT EXISTS notify_outbox_pending ON notify_outbox (next_at)
    WHERE delivered_at IS NULL AND gave_up_at IS NULL;
";
