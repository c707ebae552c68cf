//! The service files users copy from examples/service/ (README "Running as a service"):
//! each parses, runs `dropcast … watch` with the config it names, restarts after an
//! error, and keeps secrets out of itself. systemd's own checker runs where it is.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Tests that need a program: found, or skipped with one line (src/test_tools.rs).
#[path = "../src/test_tools.rs"]
mod test_tools;

fn service_file(name: &str) -> (PathBuf, String) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples/service")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
    (path, text)
}

/// `[Section]` → `Key=value` lines, as systemd reads a unit (comments and blanks skipped).
fn unit_keys(text: &str) -> Vec<(String, String, String)> {
    let mut section = String::new();
    let mut out = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.to_string();
            continue;
        }
        let (key, value) = line
            .split_once('=')
            .unwrap_or_else(|| panic!("not a key=value line: {line}"));
        out.push((section.clone(), key.trim().into(), value.trim().into()));
    }
    out
}

#[test]
fn the_systemd_unit_restarts_on_failure_and_reads_secrets_from_a_file() {
    let (_, text) = service_file("dropcast.service");
    let keys = unit_keys(&text);
    let get = |section: &str, key: &str| {
        keys.iter()
            .find(|(s, k, _)| s == section && k == key)
            .map(|(_, _, v)| v.as_str())
            .unwrap_or_else(|| panic!("[{section}] {key}= missing"))
    };
    let exec = get("Service", "ExecStart");
    assert!(exec.starts_with("%h/.cargo/bin/dropcast -c "), "{exec}");
    assert!(exec.ends_with(" watch"), "{exec}");
    assert_eq!(get("Service", "Restart"), "on-failure");
    assert_eq!(
        get("Service", "EnvironmentFile"),
        "-%h/.config/dropcast/env"
    );
    assert_eq!(get("Install", "WantedBy"), "default.target");
    assert!(
        !keys.iter().any(|(_, k, _)| k == "Environment"),
        "secrets belong in the 0600 EnvironmentFile, not in the unit"
    );
    assert!(text.contains("install -m 600 /dev/null ~/.config/dropcast/env"));
}

/// systemd's own check, on a copy whose ExecStart names the binary just built (the checker
/// insists the program exists). Skipped, saying so, where systemd-analyze is missing.
#[test]
fn systemd_analyze_verifies_the_unit() {
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_err()
    {
        test_tools::missing(&test_tools::SYSTEMD_ANALYZE, "no systemd-analyze on PATH");
        return;
    }
    let (_, text) = service_file("dropcast.service");
    let dir = tempfile::tempdir().unwrap();
    let unit = dir.path().join("dropcast.service");
    let text = text.replace("%h/.cargo/bin/dropcast", env!("CARGO_BIN_EXE_dropcast"));
    std::fs::write(&unit, text).unwrap();
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&unit)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let about_ours: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("dropcast.service"))
        .collect();
    assert!(
        out.status.success() && about_ours.is_empty(),
        "systemd-analyze verify: {stderr}"
    );
}

/// A plist `<dict>` as (key, value node) pairs.
fn dict<'a, 'i>(node: roxmltree::Node<'a, 'i>) -> Vec<(&'a str, roxmltree::Node<'a, 'i>)> {
    let children: Vec<_> = node.children().filter(|n| n.is_element()).collect();
    children
        .chunks(2)
        .map(|pair| {
            assert_eq!(
                pair[0].tag_name().name(),
                "key",
                "a dict alternates key and value"
            );
            (pair[0].text().unwrap_or_default(), pair[1])
        })
        .collect()
}

#[test]
fn the_launchd_plist_is_well_formed_and_keeps_the_agent_alive_after_errors() {
    let (_, text) = service_file("com.dropcast.agent.plist");
    let options = roxmltree::ParsingOptions {
        allow_dtd: true,
        ..Default::default()
    };
    let doc = roxmltree::Document::parse_with_options(&text, options)
        .unwrap_or_else(|e| panic!("com.dropcast.agent.plist is not well-formed XML: {e}"));
    let plist = doc.root_element();
    assert_eq!(plist.tag_name().name(), "plist");
    let top = plist.first_element_child().expect("a dict");
    let entries = dict(top);
    let value = |key: &str| {
        entries
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| *v)
            .unwrap_or_else(|| panic!("{key} missing"))
    };
    assert_eq!(value("Label").text(), Some("com.dropcast.agent"));
    let args: Vec<&str> = value("ProgramArguments")
        .children()
        .filter(|n| n.is_element())
        .map(|n| n.text().unwrap_or_default())
        .collect();
    assert!(args[0].ends_with("/.cargo/bin/dropcast"), "{args:?}");
    assert_eq!(args[1], "-c");
    assert_eq!(args.last(), Some(&"watch"));
    assert_eq!(value("RunAtLoad").tag_name().name(), "true");
    let keep_alive = dict(value("KeepAlive"));
    assert_eq!(keep_alive.len(), 1);
    assert_eq!(keep_alive[0].0, "SuccessfulExit");
    assert_eq!(keep_alive[0].1.tag_name().name(), "false");
    let log = value("StandardErrorPath").text().unwrap_or_default();
    assert!(
        log.ends_with("/Library/Logs/dropcast/dropcast.log"),
        "{log}"
    );
}

/// No PowerShell here to run them: the two scripts name each other, the binary, the
/// config and the `watch` command, and lift the time limit schtasks.exe would set.
#[test]
fn the_windows_task_scripts_run_watch_without_a_time_limit() {
    let (_, runner) = service_file("dropcast-run.ps1");
    let (_, install) = service_file("install-task.ps1");
    assert!(runner.contains(r#"-ArgumentList "-c `"$Config`" --log-format json watch""#));
    assert!(
        runner.contains("$run.ExitCode -eq 0"),
        "stops after a clean exit"
    );
    assert!(runner.contains("RedirectStandardError"), "keeps the log");
    assert!(install.contains("'dropcast-run.ps1'"));
    assert!(install.contains("-AtLogOn"));
    assert!(install.contains("-ExecutionTimeLimit ([TimeSpan]::Zero)"));
    for script in [&runner, &install] {
        assert!(
            script.contains(r#"[string]$Dropcast = "$env:USERPROFILE\.cargo\bin\dropcast.exe""#)
        );
        assert!(script.contains(r#"[string]$Config = "$env:LOCALAPPDATA\dropcast\dropcast.yaml""#));
    }
}
