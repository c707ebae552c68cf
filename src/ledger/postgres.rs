//! The shared ledger: a PostgreSQL connection that several agents use at once. The
//! synchronous `postgres` client lives on a thread of its own, so the ledger can be called
//! from anywhere (a command's main thread, `spawn_blocking`, a test) without nesting
//! runtimes. TLS follows the URL's `sslmode` (`prefer` by default, `require` to insist),
//! with the server's certificate checked against the system's roots. A dropped connection
//! is opened again before the next transaction. See docs/shared-ledger.md.

use std::error::Error as StdError;
use std::sync::mpsc;

use bytes::BytesMut;
use postgres::Client;
use postgres::types::{IsNull, ToSql, Type, to_sql_checked};
use tokio_postgres_rustls::MakeRustlsConnect;

use super::db::{Row, Value, dollar_placeholders};
use super::{LedgerError, schema};

/// The key of the transaction-level advisory lock every write transaction takes: the
/// shared ledger has one writer at a time, as SQLite has.
const WRITE_LOCK: i64 = 0x6472_6f70_6361_7374; // "dropcast"

/// Set on every session: a writer stopped inside a transaction (SIGSTOP, a frozen VM)
/// loses its connection, and so the write lock, instead of stopping every agent.
const SESSION: &str = "SET application_name = 'dropcast'; \
     SET idle_in_transaction_session_timeout = '15s'; SET lock_timeout = '30s'";

type Job = Box<dyn FnOnce(&mut Session) + Send>;

/// A PostgreSQL ledger connection.
pub(crate) struct PgConn {
    jobs: mpsc::Sender<Job>,
    /// `host:port/database`, for messages (never the password).
    pub(crate) display: String,
}

struct Session {
    config: postgres::Config,
    tls: MakeRustlsConnect,
    client: Option<Client>,
    in_tx: bool,
    /// Statements prepared on this connection, by text: a statement is parsed once, then
    /// each use is one round trip.
    prepared: std::collections::HashMap<String, postgres::Statement>,
}

/// What to do with a schema older than this binary's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Upgrade {
    /// Refuse, naming `dropcast ledger migrate` (agents never upgrade a shared schema
    /// behind the others' backs).
    Refuse,
    /// `dropcast ledger migrate`.
    Migrate,
}

impl PgConn {
    /// Connects to `url` and creates the schema in an empty database, or checks its version.
    pub(crate) fn connect(url: &str, upgrade: Upgrade) -> Result<PgConn, LedgerError> {
        let config: postgres::Config = url
            .parse()
            .map_err(|e: postgres::Error| LedgerError::Postgres(format!("ledger URL: {e}")))?;
        let display = describe(&config);
        let tls = tls()?;
        let (jobs, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("ledger-postgres".into())
            .spawn(move || {
                let mut session = Session {
                    config,
                    tls,
                    client: None,
                    in_tx: false,
                    prepared: Default::default(),
                };
                for job in rx {
                    job(&mut session);
                }
            })
            .map_err(|e| LedgerError::Postgres(format!("cannot start the ledger thread: {e}")))?;
        let conn = PgConn { jobs, display };
        conn.call(move |s| migrate(s.client()?, upgrade))?;
        Ok(conn)
    }

    /// Runs `f` on the connection's thread and waits for it.
    fn call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Session) -> Result<T, LedgerError> + Send + 'static,
    ) -> Result<T, LedgerError> {
        let (tx, rx) = mpsc::sync_channel(1);
        let job: Job = Box::new(move |s| {
            let _ = tx.send(f(s));
        });
        let gone = || LedgerError::Postgres("the ledger connection thread ended".into());
        self.jobs.send(job).map_err(|_| gone())?;
        rx.recv().map_err(|_| gone())?
    }

    pub(crate) fn begin(&self) -> Result<(), LedgerError> {
        self.call(|s| {
            let client = s.client()?;
            client
                .batch_execute(&format!(
                    "BEGIN; SELECT pg_advisory_xact_lock({WRITE_LOCK})"
                ))
                .map_err(pg_error)?;
            s.in_tx = true;
            Ok(())
        })
    }

    pub(crate) fn commit(&self) -> Result<(), LedgerError> {
        self.end("COMMIT")
    }

    pub(crate) fn rollback(&self) -> Result<(), LedgerError> {
        self.end("ROLLBACK")
    }

    fn end(&self, how: &'static str) -> Result<(), LedgerError> {
        self.call(move |s| {
            s.in_tx = false;
            match s.client.as_mut() {
                Some(client) => client.batch_execute(how).map_err(pg_error),
                None => Err(LedgerError::Postgres("the connection was lost".into())),
            }
        })
    }

    pub(crate) fn execute(&self, sql: &str, params: &[Value]) -> Result<u64, LedgerError> {
        self.run(sql, params, |client, statement, params| {
            client.execute(statement, params).map_err(pg_error)
        })
    }

    pub(crate) fn query(&self, sql: &str, params: &[Value]) -> Result<Vec<Row>, LedgerError> {
        self.run(sql, params, |client, statement, params| {
            let rows = client.query(statement, params).map_err(pg_error)?;
            rows.iter().map(row).collect()
        })
    }

    /// Runs `f` with `sql` (placeholders as PostgreSQL's) prepared and `params` bound.
    fn run<T: Send + 'static>(
        &self,
        sql: &str,
        params: &[Value],
        f: impl FnOnce(
            &mut Client,
            &postgres::Statement,
            &[&(dyn ToSql + Sync)],
        ) -> Result<T, LedgerError>
        + Send
        + 'static,
    ) -> Result<T, LedgerError> {
        let sql = dollar_placeholders(sql);
        let params = params.to_vec();
        self.call(move |s| {
            let statement = s.prepare(&sql)?;
            let refs: Vec<&(dyn ToSql + Sync)> =
                params.iter().map(|v| v as &(dyn ToSql + Sync)).collect();
            f(s.client()?, &statement, &refs)
        })
    }
}

impl Session {
    /// The open client; a closed one is replaced, except inside a transaction (whose
    /// statements died with it).
    fn client(&mut self) -> Result<&mut Client, LedgerError> {
        let closed = self.client.as_ref().is_none_or(Client::is_closed);
        if closed {
            if self.in_tx {
                self.in_tx = false;
                self.client = None;
                return Err(LedgerError::Postgres(
                    "the connection was lost inside a transaction; nothing of it was written"
                        .into(),
                ));
            }
            let mut client = self.config.connect(self.tls.clone()).map_err(pg_error)?;
            client.batch_execute(SESSION).map_err(pg_error)?;
            self.client = Some(client);
            self.prepared.clear();
        }
        self.client
            .as_mut()
            .ok_or_else(|| LedgerError::Postgres("no connection".into()))
    }

    /// `sql` prepared on the open connection (once per connection).
    fn prepare(&mut self, sql: &str) -> Result<postgres::Statement, LedgerError> {
        if let Some(statement) = self.prepared.get(sql)
            && self.client.as_ref().is_some_and(|c| !c.is_closed())
        {
            return Ok(statement.clone());
        }
        let statement = self.client()?.prepare(sql).map_err(pg_error)?;
        self.prepared.insert(sql.to_owned(), statement.clone());
        Ok(statement)
    }
}

/// TLS for the connection: used when the server offers it (`sslmode=prefer`, the default)
/// or required (`sslmode=require`); the certificate is checked against the system's roots.
fn tls() -> Result<MakeRustlsConnect, LedgerError> {
    use rustls_platform_verifier::BuilderVerifierExt;
    let failed = |e: rustls::Error| LedgerError::Postgres(format!("cannot set up TLS: {e}"));
    let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(failed)?
        .with_platform_verifier()
        .map_err(failed)?
        .with_no_client_auth();
    Ok(MakeRustlsConnect::new(config))
}

/// Creates the schema in an empty database, refuses a newer one, and upgrades an older
/// one only for `dropcast ledger migrate`.
fn migrate(client: &mut Client, upgrade: Upgrade) -> Result<(), LedgerError> {
    let mut tx = client.transaction().map_err(pg_error)?;
    tx.batch_execute(&format!(
        "SELECT pg_advisory_xact_lock({WRITE_LOCK}); \
         CREATE TABLE IF NOT EXISTS dropcast_schema (version BIGINT NOT NULL)"
    ))
    .map_err(pg_error)?;
    let found: i64 = tx
        .query_opt("SELECT max(version) FROM dropcast_schema", &[])
        .map_err(pg_error)?
        .and_then(|r| r.get::<_, Option<i64>>(0))
        .unwrap_or(0);
    if found > schema::VERSION {
        return Err(LedgerError::NewerSchema {
            found,
            supported: schema::VERSION,
        });
    }
    if found == 0 {
        tracing::info!(
            version = schema::VERSION,
            "creating the shared ledger's schema"
        );
        tx.batch_execute(schema::POSTGRES).map_err(pg_error)?;
        for sql in schema::POSTGRES_UPGRADES {
            tx.batch_execute(sql).map_err(pg_error)?;
        }
    } else if found < schema::VERSION {
        if upgrade == Upgrade::Refuse {
            return Err(LedgerError::OlderSchema {
                found,
                supported: schema::VERSION,
            });
        }
        for (from, sql) in schema::POSTGRES_UPGRADES.iter().enumerate() {
            let from = schema::POSTGRES_FIRST + from as i64;
            if from >= found {
                tracing::info!(to = from + 1, "migrating the shared ledger's schema");
                tx.batch_execute(sql).map_err(pg_error)?;
            }
        }
    }
    tx.execute("DELETE FROM dropcast_schema", &[])
        .map_err(pg_error)?;
    tx.execute(
        "INSERT INTO dropcast_schema (version) VALUES ($1)",
        &[&schema::VERSION],
    )
    .map_err(pg_error)?;
    tx.commit().map_err(pg_error)
}

fn row(r: &postgres::Row) -> Result<Row, LedgerError> {
    let mut values = Vec::with_capacity(r.len());
    for (i, column) in r.columns().iter().enumerate() {
        let get = |e: postgres::Error| LedgerError::Schema(format!("column {i}: {e}"));
        let value = match *column.type_() {
            Type::INT8 => r.try_get::<_, Option<i64>>(i).map_err(get)?.map(Value::Int),
            Type::INT4 => r
                .try_get::<_, Option<i32>>(i)
                .map_err(get)?
                .map(|v| Value::Int(v.into())),
            Type::BOOL => r
                .try_get::<_, Option<bool>>(i)
                .map_err(get)?
                .map(|v| Value::Int(v.into())),
            Type::TEXT | Type::VARCHAR | Type::NAME => r
                .try_get::<_, Option<String>>(i)
                .map_err(get)?
                .map(Value::Text),
            Type::BYTEA => r
                .try_get::<_, Option<Vec<u8>>>(i)
                .map_err(get)?
                .map(Value::Bytes),
            ref other => {
                return Err(LedgerError::Schema(format!("column {i} has type {other}")));
            }
        };
        values.push(value.unwrap_or(Value::Null));
    }
    Ok(Row(values))
}

impl ToSql for Value {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn StdError + Sync + Send>> {
        match self {
            Value::Null => Ok(IsNull::Yes),
            Value::Int(i) => match *ty {
                Type::INT8 => i.to_sql(ty, out),
                Type::INT4 => i32::try_from(*i)?.to_sql(ty, out),
                Type::INT2 => i16::try_from(*i)?.to_sql(ty, out),
                Type::BOOL => (*i != 0).to_sql(ty, out),
                _ => Err(format!("an integer cannot be a {ty}").into()),
            },
            Value::Text(s) => match *ty {
                Type::TEXT | Type::VARCHAR | Type::NAME | Type::UNKNOWN => s.to_sql(ty, out),
                _ => Err(format!("text cannot be a {ty}").into()),
            },
            Value::Bytes(b) => match *ty {
                Type::BYTEA => b.to_sql(ty, out),
                _ => Err(format!("bytes cannot be a {ty}").into()),
            },
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

/// UNIQUE violations of the ledger's indexes keep their meaning; any other error is
/// reported as PostgreSQL gave it (its messages never hold the password).
fn pg_error(err: postgres::Error) -> LedgerError {
    if let Some(db) = err.as_db_error()
        && *db.code() == postgres::error::SqlState::UNIQUE_VIOLATION
    {
        match db.constraint() {
            Some("jobs_one_job_per_post") => return LedgerError::PostTaken,
            Some("jobs_one_live_per_content") => return LedgerError::LiveJobExists,
            _ => {}
        }
    }
    let detail = match err.as_db_error() {
        Some(db) => format!("{}: {}", db.severity(), db.message()),
        None => err.to_string(),
    };
    LedgerError::Postgres(detail)
}

/// `host:port/database` of a connection config: what messages name.
fn describe(config: &postgres::Config) -> String {
    let host = match config.get_hosts().first() {
        Some(postgres::config::Host::Tcp(h)) => h.clone(),
        #[cfg(unix)]
        Some(postgres::config::Host::Unix(p)) => p.display().to_string(),
        None => "localhost".into(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let db = config.get_dbname().unwrap_or("(default)");
    format!("{host}:{port}/{db}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::{Claim, Ledger, NewJob};
    use crate::test_postgres::TestPostgres;

    /// Connects (TLS offered, the test server answers plain: `sslmode=prefer`), creates the
    /// schema, claims, and a second connection sees the schema as current.
    #[test]
    fn a_shared_ledger_opens_on_a_real_server_and_claims() {
        let Some(pg) = TestPostgres::start() else {
            return;
        };
        let url = pg.url();
        let mut ledger = Ledger::open_postgres(&url, Upgrade::Refuse).unwrap();
        assert!(ledger.is_shared());
        assert!(
            ledger
                .path()
                .to_string_lossy()
                .starts_with("postgresql://127.0.0.1:")
        );
        let job = NewJob {
            sha256: crate::domain::ContentHash::from_digest(&[7; 32]),
            account: "main".into(),
            platform: crate::domain::Platform::Tiktok,
            video: "a.mp4".into(),
            caption: None,
            size: 10,
        };
        let Claim::New(record) = ledger.claim(&job, false).unwrap() else {
            panic!("a new job")
        };
        assert_eq!(record.lease.fence, 1);
        let other = Ledger::open_postgres(&url, Upgrade::Refuse).unwrap();
        assert_eq!(other.job(record.id).unwrap().unwrap().sha256, job.sha256);
        // The URL's password never shows: the location names host, port and database.
        let with_password = url.replacen("postgres@", "postgres:hunter2@", 1);
        let third = Ledger::open_postgres(&with_password, Upgrade::Refuse).unwrap();
        assert!(!format!("{third:?} {}", third.path().display()).contains("hunter2"));
    }
}
