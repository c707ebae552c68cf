//! The one convention of tests that need a program besides Rust (PostgreSQL, Chromium,
//! chromedriver, setpriv): each finds its program, or is skipped with ONE line naming what
//! to install, or, with `DROPCAST_REQUIRE_TOOLS=1` (`.ci/run` sets it), fails instead.
//!
//! The line goes straight to the process's stderr (`io::stderr().write`), not through
//! `eprintln!`: libtest captures only the print macros, so this line shows in the
//! `cargo test` output of a passing test, beside `test NAME ... ok`, and in CI logs (unlike
//! a write to /dev/tty, which CI has not). Under a runner that captures whole file
//! descriptors (cargo-nextest) it shows only with `--no-capture`; CI never relies on it,
//! since the variable turns every skip into a failure.
//!
//! Compiled into the lib for its unit tests and included by path into tests/common.

#![allow(dead_code)]

use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;

/// A program some tests need.
#[derive(Clone, Copy, Debug)]
pub struct Tool {
    /// What it is, as the skip line names it.
    pub name: &'static str,
    /// How to install it.
    pub install: &'static str,
}

pub const POSTGRES: Tool = Tool {
    name: "PostgreSQL",
    install: "apt-get install postgresql, or brew install postgresql; or DROPCAST_PG_BIN=DIR",
};

pub const CHROMIUM: Tool = Tool {
    name: "Chromium",
    install: "apt-get install chromium, or Google Chrome / Microsoft Edge; or CHROME_BIN=/path",
};

pub const CHROMEDRIVER: Tool = Tool {
    name: "chromedriver",
    install: "apt-get install chromium-driver, or brew install chromedriver; or CHROMEDRIVER=/path",
};

pub const SETPRIV: Tool = Tool {
    name: "setpriv, to run dropcast as `nobody` when the tests run as root",
    install: "apt-get install util-linux, or run the tests as a normal user",
};

pub const SYSTEMD_ANALYZE: Tool = Tool {
    name: "systemd-analyze, to check the example systemd unit",
    install: "apt-get install systemd",
};

/// The variable that turns every skip into a failure.
pub const REQUIRE_VAR: &str = "DROPCAST_REQUIRE_TOOLS";

/// Whether a missing tool fails the test: `DROPCAST_REQUIRE_TOOLS` (or its older name
/// `DROPCAST_REQUIRE_POSTGRES`) set to anything but empty or `0`.
pub fn required() -> bool {
    [REQUIRE_VAR, "DROPCAST_REQUIRE_POSTGRES"]
        .iter()
        .any(|var| std::env::var_os(var).is_some_and(|v| !v.is_empty() && v != "0"))
}

/// Says the calling test is skipped because `tool` is missing (`why`: what was looked
/// for), in one line on stderr; panics instead when tools are required. The caller then
/// returns without testing.
pub fn missing(tool: &Tool, why: &str) {
    let test = current_test();
    if required() {
        panic!(
            "{test} needs {} ({why}): {}. {REQUIRE_VAR} is set, so a missing tool fails the \
             test instead of skipping it",
            tool.name, tool.install
        );
    }
    say(&skip_line(tool, why, &test));
}

/// `SKIPPED (needs NAME: HOW): TEST; WHY`.
pub fn skip_line(tool: &Tool, why: &str, test: &str) -> String {
    let why = if why.is_empty() {
        String::new()
    } else {
        format!("; {why}")
    };
    format!(
        "SKIPPED (needs {}: {}): {test}{why}",
        tool.name, tool.install
    )
}

/// Whether the user asked to skip (`var=1`, e.g. `DROPCAST_SKIP_BROWSER`): then the
/// test is skipped with one line, unless tools are required, which wins.
pub fn skip_asked(var: &str) -> bool {
    if required() || std::env::var(var).as_deref() != Ok("1") {
        return false;
    }
    say(&format!("SKIPPED ({var}=1): {}", current_test()));
    true
}

/// `var`'s program when set (it must be a file, else it is missing: the reason says
/// so), else the first of `names` on `PATH`, else the first of `places` that is a file.
pub fn find_program(var: &str, names: &[&str], places: &[&str]) -> Result<PathBuf, String> {
    let set = std::env::var_os(var);
    find_in(var, set, std::env::var_os("PATH"), names, places)
}

/// [`find_program`] with `var`'s value and `PATH` given.
pub fn find_in(
    var: &str,
    set: Option<OsString>,
    path: Option<OsString>,
    names: &[&str],
    places: &[&str],
) -> Result<PathBuf, String> {
    if let Some(set) = set {
        let path = PathBuf::from(set);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(format!("{var}={} is not a file", path.display()))
        };
    }
    let path = path.unwrap_or_default();
    std::env::split_paths(&path)
        .filter(|dir| dir.is_absolute())
        .flat_map(|dir| names.iter().map(move |n| dir.join(n)))
        .chain(places.iter().map(PathBuf::from))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            let mut why = format!("no {} on PATH", names.join(" or "));
            if !places.is_empty() {
                why.push_str(&format!(" nor in {}", places.join(", ")));
            }
            why
        })
}

/// The browser the browser tests drive (`CHROME_BIN`, else Chromium, Chrome or Edge on
/// PATH or where Debian, snap, Google and macOS put them), or `None`: the calling test is
/// skipped with its line (also when `DROPCAST_SKIP_BROWSER=1`), or fails when required.
pub fn chromium() -> Option<PathBuf> {
    if skip_asked(SKIP_BROWSER_VAR) {
        return None;
    }
    let names = [
        "chromium",
        "chromium-browser",
        "google-chrome",
        "google-chrome-stable",
        "chrome",
        "microsoft-edge",
    ];
    let places = [
        "/usr/lib/chromium/chromium",
        "/snap/bin/chromium",
        "/opt/google/chrome/chrome",
        "/Applications/Chromium.app/Contents/MacOS/Chromium",
        "/Applications/Google Chrome.app/Contents/MacOS/Google Chrome",
        "/Applications/Microsoft Edge.app/Contents/MacOS/Microsoft Edge",
    ];
    found(&CHROMIUM, find_program("CHROME_BIN", &names, &places))
}

/// chromedriver (`CHROMEDRIVER`, else on PATH or in Debian's and Homebrew's places), or
/// `None` as for [`chromium`].
pub fn chromedriver() -> Option<PathBuf> {
    if skip_asked(SKIP_BROWSER_VAR) {
        return None;
    }
    let places = [
        "/usr/lib/chromium/chromedriver",
        "/opt/homebrew/bin/chromedriver",
        "/usr/local/bin/chromedriver",
    ];
    found(
        &CHROMEDRIVER,
        find_program("CHROMEDRIVER", &["chromedriver"], &places),
    )
}

/// Asks to skip the browser tests (ignored when tools are required).
pub const SKIP_BROWSER_VAR: &str = "DROPCAST_SKIP_BROWSER";

/// The program, or `None` after [`missing`].
fn found(tool: &Tool, program: Result<PathBuf, String>) -> Option<PathBuf> {
    program.map_err(|why| missing(tool, &why)).ok()
}

/// The running test's name: libtest names each test's thread after it.
fn current_test() -> String {
    match std::thread::current().name() {
        Some(name) if name != "main" && !name.starts_with("tokio-") => name.to_owned(),
        _ => "a test".to_owned(),
    }
}

/// One line on the process's stderr, past libtest's capture of `eprintln!`.
fn say(line: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}
