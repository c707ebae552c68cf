//! Tests of the test PostgreSQL harness (`test_postgres`), apart from it because
//! integration tests include that file by path and would otherwise run these in every binary.

use std::net::TcpStream;
use std::path::{Path, PathBuf};

use crate::test_postgres::{TestPostgres, debian_bin_dirs};

fn connect(url: &str) -> postgres::Client {
    postgres::Client::connect(url, postgres::NoTls).unwrap()
}

/// The postmaster's pid, from the lock file it writes in its data dir.
fn postmaster_pid(server: &TestPostgres) -> rustix::process::Pid {
    let lock = server.dir().unwrap().join("data/postmaster.pid");
    let text = std::fs::read_to_string(lock).unwrap();
    let raw: i32 = text.lines().next().unwrap().parse().unwrap();
    rustix::process::Pid::from_raw(raw).unwrap()
}

/// A stopped server: its port refuses, its process is gone, its files are removed.
#[track_caller]
fn assert_gone(port: u16, pid: rustix::process::Pid, dir: &Path) {
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_err(),
        "port {port} still open"
    );
    assert!(
        rustix::process::test_kill_process(pid).is_err(),
        "postmaster still there"
    );
    assert!(!dir.exists(), "{} was not removed", dir.display());
}

fn round_trip(url: &str, value: &str) -> String {
    let mut client = connect(url);
    client
        .batch_execute("CREATE TABLE notes (body TEXT NOT NULL)")
        .unwrap();
    client
        .execute("INSERT INTO notes (body) VALUES ($1)", &[&value])
        .unwrap();
    client
        .query_one("SELECT body FROM notes", &[])
        .unwrap()
        .get(0)
}

#[test]
fn two_servers_run_at_once_and_one_stops_alone() {
    let Some(mut first) = TestPostgres::start() else {
        return;
    };
    let Some(second) = TestPostgres::start().map(Box::new) else {
        return;
    };
    assert_ne!(first.port(), second.port());
    assert_eq!(round_trip(&first.url(), "one"), "one");
    assert_eq!(round_trip(&second.url(), "two"), "two");

    let (port, pid, dir) = (
        first.port(),
        postmaster_pid(&first),
        first.dir().unwrap().to_owned(),
    );
    first.stop();
    assert_gone(port, pid, &dir);
    first.stop(); // a second stop (and the drop after it) does nothing

    let mut client = connect(&second.url());
    let rows = client.query("SELECT body FROM notes", &[]).unwrap();
    assert_eq!(rows.len(), 1, "the other server lost its rows");
}

#[test]
fn create_database_gives_an_isolated_database() {
    let Some(server) = TestPostgres::start() else {
        return;
    };
    let other = server.create_database("other_test");
    assert_eq!(other, server.url().replace("/dropcast", "/other_test"));
    round_trip(&server.url(), "main");

    let mut client = connect(&other);
    let missing = client.query("SELECT body FROM notes", &[]).unwrap_err();
    let message = missing.as_db_error().map(|e| e.message().to_owned());
    assert!(
        message.as_deref().unwrap_or("").contains("notes"),
        "{missing:?}"
    );
    assert_eq!(round_trip(&other, "isolated"), "isolated");
}

#[test]
fn dropping_the_server_stops_it_and_removes_its_files() {
    let Some(server) = TestPostgres::start() else {
        return;
    };
    let (port, pid, dir) = (
        server.port(),
        postmaster_pid(&server),
        server.dir().unwrap().to_owned(),
    );
    drop(server);
    assert_gone(port, pid, &dir);
}

// Defect pinned: the blocking `postgres` client panics when called inside a runtime, so
// `start()` from an async test died before the server was ready.
#[tokio::test]
async fn start_works_inside_an_async_test() {
    let Some(server) = TestPostgres::start() else {
        return;
    };
    let url = server.create_database("from_async");
    assert!(url.ends_with("/from_async"), "{url}");
}

#[test]
fn debian_versions_are_tried_newest_first() {
    let root = tempfile::tempdir().unwrap();
    for version in ["9.6", "15", "10", "notes"] {
        std::fs::create_dir(root.path().join(version)).unwrap();
    }
    let found: Vec<PathBuf> = debian_bin_dirs(root.path());
    let want: Vec<PathBuf> = ["15", "10", "9.6"]
        .iter()
        .map(|v| root.path().join(v).join("bin"))
        .collect();
    assert_eq!(found, want);
}
