//! The skip convention of `test_tools`, checked by running this test binary again on a
//! helper test that looks for a program that is not there: once plain (skipped, one line,
//! exit 0) and once with `DROPCAST_REQUIRE_TOOLS=1` (a failure naming what to install).

use std::path::Path;
use std::process::{Command, Output};

use crate::test_tools::{self, CHROMIUM, POSTGRES};

/// The child's test: acts only in the child the tests below start (`HELPER_VAR` set), with
/// `CHROME_BIN` naming a file that does not exist; a no-op in a plain run.
#[test]
fn helper_looks_for_a_missing_chromium() {
    if std::env::var_os(HELPER_VAR).is_none() {
        return;
    }
    assert!(
        test_tools::chromium().is_none(),
        "CHROME_BIN points nowhere"
    );
}

const HELPER_VAR: &str = "DROPCAST_TEST_TOOLS_HELPER";
const HELPER: &str = "test_tools_tests::helper_looks_for_a_missing_chromium";

fn run_helper(require: Option<&str>) -> Output {
    let mut cmd = Command::new(std::env::current_exe().expect("this test binary"));
    cmd.args(["--exact", HELPER, "--test-threads=1"])
        .env(HELPER_VAR, "1")
        .env("CHROME_BIN", "/nonexistent/chromium")
        .env_remove("DROPCAST_REQUIRE_TOOLS")
        .env_remove("DROPCAST_REQUIRE_POSTGRES")
        .env_remove("DROPCAST_SKIP_BROWSER");
    if let Some((var, value)) = require.and_then(|r| r.split_once('=')) {
        cmd.env(var, value);
    }
    cmd.output().expect("run the helper test")
}

#[test]
fn a_missing_tool_skips_the_test_with_one_line_on_stderr_past_the_capture() {
    let out = run_helper(None);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "skipped, not failed: {stderr}");
    let lines: Vec<_> = stderr
        .lines()
        .filter(|l| l.starts_with("SKIPPED"))
        .collect();
    assert_eq!(
        lines,
        [format!(
            "SKIPPED (needs Chromium: {}): {HELPER}; CHROME_BIN=/nonexistent/chromium is not a file",
            CHROMIUM.install
        )],
        "{stderr}"
    );
}

#[test]
fn with_dropcast_require_tools_a_missing_tool_fails_the_test() {
    for require in ["DROPCAST_REQUIRE_TOOLS=1", "DROPCAST_REQUIRE_POSTGRES=1"] {
        let out = run_helper(Some(require));
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            !out.status.success(),
            "{require}: failed, not skipped: {text}"
        );
        assert!(text.contains("needs Chromium"), "{text}");
        assert!(text.contains("apt-get install chromium"), "{text}");
        assert!(!text.contains("SKIPPED"), "{text}");
    }
    let out = run_helper(Some("DROPCAST_REQUIRE_TOOLS=0"));
    assert!(out.status.success(), "0 means not required");
}

#[test]
fn a_program_is_found_by_its_variable_on_path_or_in_its_usual_place() {
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    std::fs::write(bin.join("chromedriver"), b"").unwrap();
    let usual = dir.path().join("usual-chromedriver");
    std::fs::write(&usual, b"").unwrap();
    let find = |set: Option<&Path>, path: Option<&Path>, places: &[&str]| {
        test_tools::find_in(
            "CHROMEDRIVER",
            set.map(Into::into),
            path.map(Into::into),
            &["chromedriver"],
            places,
        )
    };
    let usual_str = usual.to_str().unwrap();
    assert_eq!(
        find(None, Some(&bin), &[usual_str]),
        Ok(bin.join("chromedriver"))
    );
    assert_eq!(
        find(None, Some(dir.path()), &[usual_str]),
        Ok(usual.clone())
    );
    assert_eq!(find(Some(&usual), Some(&bin), &[]), Ok(usual.clone()));
    let gone = dir.path().join("gone");
    assert_eq!(
        find(Some(&gone), Some(&bin), &[]),
        Err(format!("CHROMEDRIVER={} is not a file", gone.display())),
        "a variable naming a missing program means missing, not a search elsewhere"
    );
    let none = find(None, Some(dir.path()), &["/nonexistent/chromedriver"]).unwrap_err();
    assert_eq!(
        none,
        "no chromedriver on PATH nor in /nonexistent/chromedriver"
    );
}

#[test]
fn the_skip_line_names_the_tool_how_to_install_it_and_the_test() {
    let line = test_tools::skip_line(&POSTGRES, "", "ledger::tests::claim::postgres");
    assert!(line.starts_with("SKIPPED (needs PostgreSQL: apt-get install postgresql"));
    assert!(
        line.ends_with("): ledger::tests::claim::postgres"),
        "{line}"
    );
}
