//! The embedded ledger: one SQLite file in `state_dir` (WAL, `synchronous=FULL`, mode
//! 0600), its migrations by `user_version`, and noticing the file being deleted or replaced
//! under the open connection.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::Connection;
use rusqlite::types::{Value as SqlValue, ValueRef};

use super::db::{Row, Value};
use super::{LedgerError, schema};

const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Opens (creating if needed) the database file `path` and migrates it.
pub(super) fn open(path: &Path) -> Result<Connection, LedgerError> {
    create_private_file(path)?;
    let mut conn = Connection::open(path)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.set_prepared_statement_cache_capacity(64);
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
    Ok(conn)
}

fn migrate(conn: &mut Connection) -> Result<(), LedgerError> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let found: i64 = tx.pragma_query_value(None, "user_version", |row| row.get(0))?;
    if found > schema::VERSION {
        return Err(LedgerError::NewerSchema {
            found,
            supported: schema::VERSION,
        });
    }
    for (version, sql) in schema::SQLITE
        .iter()
        .enumerate()
        .skip(found.max(0) as usize)
    {
        tracing::info!(to = version + 1, "migrating the ledger schema");
        tx.execute_batch(sql)?;
    }
    tx.pragma_update(None, "user_version", schema::VERSION)?;
    tx.commit()?;
    Ok(())
}

fn bind(params: &[Value]) -> impl Iterator<Item = SqlValue> + '_ {
    params.iter().map(|v| match v {
        Value::Null => SqlValue::Null,
        Value::Int(i) => SqlValue::Integer(*i),
        Value::Text(s) => SqlValue::Text(s.clone()),
        Value::Bytes(b) => SqlValue::Blob(b.clone()),
    })
}

pub(super) fn execute(conn: &Connection, sql: &str, params: &[Value]) -> Result<u64, LedgerError> {
    let mut stmt = conn.prepare_cached(sql)?;
    let n = stmt
        .execute(rusqlite::params_from_iter(bind(params)))
        .map_err(constraint_error)?;
    Ok(n as u64)
}

pub(super) fn query(
    conn: &Connection,
    sql: &str,
    params: &[Value],
) -> Result<Vec<Row>, LedgerError> {
    let mut stmt = conn.prepare_cached(sql)?;
    let columns = stmt.column_count();
    let mut rows = stmt
        .query(rusqlite::params_from_iter(bind(params)))
        .map_err(constraint_error)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(constraint_error)? {
        let mut values = Vec::with_capacity(columns);
        for i in 0..columns {
            values.push(match row.get_ref(i)? {
                ValueRef::Null => Value::Null,
                ValueRef::Integer(n) => Value::Int(n),
                ValueRef::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
                ValueRef::Blob(b) => Value::Bytes(b.to_vec()),
                ValueRef::Real(r) => {
                    return Err(LedgerError::Schema(format!("column {i} holds a real {r}")));
                }
            });
        }
        out.push(Row(values));
    }
    Ok(out)
}

/// Turns UNIQUE violations of the partial indexes into their meaning.
pub(super) fn constraint_error(err: rusqlite::Error) -> LedgerError {
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

/// The database file a connection has open: device and inode (unix), volume serial and
/// file id (Windows), to notice the file being deleted or replaced while the connection
/// writes on. (Windows refuses to delete or replace a file SQLite holds open, so there
/// the check guards against what a restore tool or another OS does to the folder.)
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct FileId {
    #[cfg(unix)]
    dev: u64,
    #[cfg(unix)]
    ino: u64,
    #[cfg(windows)]
    volume: u64,
    #[cfg(windows)]
    file: u128,
}

impl FileId {
    pub(super) fn of(path: &Path) -> Option<FileId> {
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            let meta = std::fs::metadata(path).ok()?;
            Some(FileId {
                dev: meta.dev(),
                ino: meta.ino(),
            })
        }
        #[cfg(windows)]
        {
            let stamp = crate::win::stamp_at(path).ok()?;
            Some(FileId {
                volume: stamp.volume,
                file: stamp.file,
            })
        }
        #[cfg(not(any(unix, windows)))]
        {
            std::fs::metadata(path).ok().map(|_| FileId {})
        }
    }
}

/// Fails with [`LedgerError::Lost`] when the file at `path` was deleted, replaced by
/// another file (`opened` is the one the connection has), or emptied.
pub(super) fn check_file(path: &Path, opened: Option<FileId>) -> Result<(), LedgerError> {
    let lost = |what| {
        Err(LedgerError::Lost {
            path: path.to_path_buf(),
            what,
        })
    };
    match std::fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => lost("was deleted"),
        Err(source) => Err(LedgerError::Io {
            path: path.to_path_buf(),
            source,
        }),
        Ok(meta) if meta.len() == 0 => lost("was emptied (0 bytes)"),
        Ok(_) if FileId::of(path) != opened => lost("was replaced by another file"),
        Ok(_) => Ok(()),
    }
}

/// Creates the state folder, the user's alone (0700 on unix; on Windows a DACL for its
/// owner and the system, `crate::win::make_private`). A folder already there is left as
/// it is.
pub(super) fn create_state_dir(dir: &Path) -> Result<(), LedgerError> {
    let io = |source| LedgerError::Io {
        path: dir.to_path_buf(),
        source,
    };
    #[cfg(windows)]
    let new = !dir.exists();
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir).map_err(io)?;
    #[cfg(windows)]
    if new {
        crate::win::make_private(dir).map_err(io)?;
    }
    Ok(())
}

/// Creates the database file with mode 0600 (SQLite gives its -wal and -shm files
/// the same mode), and tightens an existing one. On Windows the file gets its owner's
/// DACL; -wal and -shm inherit the state folder's.
fn create_private_file(path: &Path) -> Result<(), LedgerError> {
    let io = |source| LedgerError::Io {
        path: PathBuf::from(path),
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
    #[cfg(windows)]
    crate::win::make_private(path).map_err(io)?;
    Ok(())
}
