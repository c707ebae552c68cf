//! A real PostgreSQL server for the end-to-end tests: the lib's own harness
//! (`src/test_postgres.rs`, compiled into the lib only for its unit tests), included by path.
//! `TestPostgres::start()` gives `None` (one `SKIPPED:` line) where PostgreSQL is missing.

#[path = "../../src/test_postgres.rs"]
mod test_postgres;

#[allow(unused_imports)]
pub use test_postgres::TestPostgres;
