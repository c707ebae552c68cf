//! The one SQL seam of the ledger: a connection to SQLite or PostgreSQL that runs the
//! ledger's statements (written once, with `?N` placeholders) and hands back rows of plain
//! [`Value`]s, so that every ledger rule is written once and holds on both databases.
//!
//! A write transaction is exclusive on both: SQLite's `BEGIN IMMEDIATE` takes the one
//! writer lock; on PostgreSQL, `BEGIN` plus a transaction-level advisory lock does the same
//! for every agent sharing the database (see docs/shared-ledger.md).

use super::LedgerError;
use super::postgres::PgConn;

/// One SQL value as the ledger stores it.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Value {
    Null,
    Int(i64),
    Text(String),
    Bytes(Vec<u8>),
}

impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::Int(v)
    }
}

impl From<u32> for Value {
    fn from(v: u32) -> Self {
        Value::Int(i64::from(v))
    }
}

impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Value::Int(i64::from(v))
    }
}

impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::Text(v.to_owned())
    }
}

impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::Text(v)
    }
}

impl From<&String> for Value {
    fn from(v: &String) -> Self {
        Value::Text(v.clone())
    }
}

impl From<Vec<u8>> for Value {
    fn from(v: Vec<u8>) -> Self {
        Value::Bytes(v)
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        v.map_or(Value::Null, Into::into)
    }
}

/// The parameters of one statement: `p![a, b]`.
macro_rules! p {
    ($($v:expr),* $(,)?) => {
        &[$($crate::ledger::db::Value::from($v)),*][..]
    };
}
pub(crate) use p;

/// A value read back from a row.
pub(crate) trait FromValue: Sized {
    fn from_value(v: &Value) -> Option<Self>;
}

impl FromValue for i64 {
    fn from_value(v: &Value) -> Option<Self> {
        match v {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }
}

impl FromValue for bool {
    fn from_value(v: &Value) -> Option<Self> {
        i64::from_value(v).map(|i| i != 0)
    }
}

impl FromValue for String {
    fn from_value(v: &Value) -> Option<Self> {
        match v {
            Value::Text(s) => Some(s.clone()),
            _ => None,
        }
    }
}

impl FromValue for Vec<u8> {
    fn from_value(v: &Value) -> Option<Self> {
        match v {
            Value::Bytes(b) => Some(b.clone()),
            _ => None,
        }
    }
}

impl<T: FromValue> FromValue for Option<T> {
    fn from_value(v: &Value) -> Option<Self> {
        match v {
            Value::Null => Some(None),
            v => T::from_value(v).map(Some),
        }
    }
}

/// One result row.
#[derive(Clone, Debug)]
pub(crate) struct Row(pub(crate) Vec<Value>);

impl Row {
    /// Column `i` as a `T`; a column of another type means the schema is not ours.
    pub(crate) fn get<T: FromValue>(&self, i: usize) -> Result<T, LedgerError> {
        let value = self.0.get(i).unwrap_or(&Value::Null);
        T::from_value(value).ok_or_else(|| {
            LedgerError::Schema(format!(
                "column {i} holds {value:?}, not a {}",
                std::any::type_name::<T>()
            ))
        })
    }
}

/// What runs statements: the connection itself (reads), or an open transaction.
pub(crate) trait Sql {
    fn execute(&self, sql: &str, params: &[Value]) -> Result<u64, LedgerError>;
    fn query(&self, sql: &str, params: &[Value]) -> Result<Vec<Row>, LedgerError>;

    /// The first row, if any.
    fn query_opt(&self, sql: &str, params: &[Value]) -> Result<Option<Row>, LedgerError> {
        Ok(self.query(sql, params)?.into_iter().next())
    }

    /// The first column of the one row `sql` returns.
    fn value<T: FromValue>(&self, sql: &str, params: &[Value]) -> Result<T, LedgerError>
    where
        Self: Sized,
    {
        match self.query_opt(sql, params)? {
            Some(row) => row.get(0),
            None => Err(LedgerError::Schema(format!("no row from {sql}"))),
        }
    }
}

/// The ledger's database.
pub(crate) enum Db {
    Sqlite(rusqlite::Connection),
    Postgres(PgConn),
}

impl Db {
    /// Starts the exclusive write transaction; dropped without [`Tx::commit`], it rolls back.
    pub(crate) fn begin(&self) -> Result<Tx<'_>, LedgerError> {
        match self {
            Db::Sqlite(conn) => {
                conn.execute_batch("BEGIN IMMEDIATE")?;
            }
            Db::Postgres(pg) => pg.begin()?,
        }
        Ok(Tx {
            db: self,
            open: true,
        })
    }

    pub(crate) fn is_postgres(&self) -> bool {
        matches!(self, Db::Postgres(_))
    }
}

impl Sql for Db {
    fn execute(&self, sql: &str, params: &[Value]) -> Result<u64, LedgerError> {
        match self {
            Db::Sqlite(conn) => super::sqlite::execute(conn, sql, params),
            Db::Postgres(pg) => pg.execute(sql, params),
        }
    }

    fn query(&self, sql: &str, params: &[Value]) -> Result<Vec<Row>, LedgerError> {
        match self {
            Db::Sqlite(conn) => super::sqlite::query(conn, sql, params),
            Db::Postgres(pg) => pg.query(sql, params),
        }
    }
}

/// An open write transaction.
pub(crate) struct Tx<'a> {
    db: &'a Db,
    open: bool,
}

impl Tx<'_> {
    pub(crate) fn commit(mut self) -> Result<(), LedgerError> {
        self.open = false;
        match self.db {
            Db::Sqlite(conn) => conn.execute_batch("COMMIT")?,
            Db::Postgres(pg) => pg.commit()?,
        }
        Ok(())
    }
}

impl Drop for Tx<'_> {
    fn drop(&mut self) {
        if self.open {
            // Nothing of this transaction was committed; a failed rollback leaves the
            // connection to report its state at the next statement.
            let _ = match self.db {
                Db::Sqlite(conn) => conn.execute_batch("ROLLBACK").map_err(LedgerError::from),
                Db::Postgres(pg) => pg.rollback(),
            };
        }
    }
}

impl Sql for Tx<'_> {
    fn execute(&self, sql: &str, params: &[Value]) -> Result<u64, LedgerError> {
        self.db.execute(sql, params)
    }

    fn query(&self, sql: &str, params: &[Value]) -> Result<Vec<Row>, LedgerError> {
        self.db.query(sql, params)
    }
}

/// `sql` with SQLite's `?N` placeholders as PostgreSQL's `$N` (no placeholder of the
/// ledger's statements sits inside a string literal; quoted text is copied as it is).
pub(crate) fn dollar_placeholders(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut quoted = false;
    for c in sql.chars() {
        match c {
            '\'' => {
                quoted = !quoted;
                out.push(c);
            }
            '?' if !quoted => out.push('$'),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_become_numbered_dollars_outside_quotes() {
        assert_eq!(
            dollar_placeholders("SELECT '?1' FROM t WHERE a = ?1 AND b = ?12"),
            "SELECT '?1' FROM t WHERE a = $1 AND b = $12"
        );
    }

    #[test]
    fn rows_refuse_a_value_of_another_type() {
        let row = Row(vec![Value::Int(3), Value::Null, Value::Text("x".into())]);
        assert_eq!(row.get::<i64>(0).unwrap(), 3);
        assert_eq!(row.get::<Option<String>>(1).unwrap(), None);
        assert!(row.get::<i64>(2).is_err());
        assert!(row.get::<String>(1).is_err());
    }
}
