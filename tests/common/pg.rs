//! A real PostgreSQL server for the end-to-end tests: the lib's own harness
//! (`src/test_postgres.rs`, compiled into the lib only for its unit tests), included by path.
//! `TestPostgres::start()` gives `None` (one `SKIPPED (needs PostgreSQL…)` line per test, or
//! a failure with `DROPCAST_REQUIRE_TOOLS`) where PostgreSQL is missing.

#[path = "../../src/test_postgres.rs"]
mod test_postgres;

// test_postgres.rs reaches the skip convention as `super::test_tools`, as in the lib.
use super::tools as test_tools;

#[allow(unused_imports)]
pub use test_postgres::TestPostgres;
