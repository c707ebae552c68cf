//! The conventions of a Rust CLI, through the real binary: `completions` for each shell and
//! `man` generated from the clap definitions, `init` writing a starter config that `check`
//! accepts and refusing to overwrite one, and `--version` naming the commit it was built from.

use std::path::Path;
use std::process::{Command, Output};

fn dropcast(dir: &Path, args: &[&str]) -> Output {
    Command::new(assert_cmd::cargo::cargo_bin!("dropcast"))
        .args(args)
        .current_dir(dir)
        .env_remove("DROPCAST_CONFIG")
        .env_remove("DOUYIN_COOKIE")
        .output()
        .expect("run dropcast")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// What every generated script and the main man page must name.
const SUBCOMMANDS: &[&str] = &[
    "watch",
    "publish",
    "check",
    "status",
    "history",
    "retry",
    "ledger",
    "validate",
    "login",
    "accounts",
    "sandbox",
    "init",
    "completions",
    "man",
];

#[test]
fn each_shells_completion_script_names_every_subcommand() {
    let dir = tempfile::tempdir().unwrap();
    for shell in ["bash", "zsh", "fish", "powershell"] {
        let out = dropcast(dir.path(), &["completions", shell]);
        assert!(out.status.success(), "{shell}: {}", text(&out.stderr));
        let script = text(&out.stdout);
        for sub in SUBCOMMANDS {
            assert!(script.contains(sub), "{shell} script lacks `{sub}`");
        }
        assert!(
            script.contains("rebuild"),
            "{shell} completes `ledger rebuild`"
        );
    }
    let out = dropcast(dir.path(), &["completions", "tcsh"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "an unknown shell is a usage error"
    );
}

#[test]
fn the_bash_script_is_valid_bash() {
    let dir = tempfile::tempdir().unwrap();
    let out = dropcast(dir.path(), &["completions", "bash"]);
    let script = dir.path().join("dropcast.bash");
    std::fs::write(&script, &out.stdout).unwrap();
    let Ok(checked) = Command::new("bash").arg("-n").arg(&script).output() else {
        return; // no bash here (Windows): the script is still checked by name above
    };
    assert!(checked.status.success(), "{}", text(&checked.stderr));
}

#[test]
fn the_man_page_is_roff_naming_every_subcommand_and_each_command_has_its_page() {
    let dir = tempfile::tempdir().unwrap();
    let out = dropcast(dir.path(), &["man"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let page = text(&out.stdout);
    assert!(page.contains("\n.TH dropcast 1 "), "a roff title: {page}");
    assert!(page.contains(".SH SUBCOMMANDS"), "{page}");
    for sub in SUBCOMMANDS {
        assert!(
            page.contains(&format!("dropcast\\-{sub}(1)")),
            "the page lacks {sub}"
        );
    }
    let watch = text(&dropcast(dir.path(), &["man", "watch"]).stdout);
    let footer = format!("\"dropcast {}", env!("CARGO_PKG_VERSION"));
    assert!(watch.contains(".TH dropcast-watch 1 "), "{watch}");
    assert!(
        watch.contains(&footer),
        "the version in the footer: {watch}"
    );
    assert!(watch.contains("\\-\\-once"), "{watch}");
    let missing = dropcast(dir.path(), &["man", "nope"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(text(&missing.stderr).contains("no command `nope`"));
}

#[test]
fn init_makes_a_config_check_accepts_and_the_folders_it_names() {
    let dir = tempfile::tempdir().unwrap();
    let out = dropcast(dir.path(), &["init", "studio"]);
    let said = text(&out.stdout);
    assert!(out.status.success(), "{said}{}", text(&out.stderr));
    let studio = dir.path().join("studio");
    for folder in ["inbox", "done", "failed", "duplicates", ".dropcast"] {
        assert!(studio.join(folder).is_dir(), "{folder} made");
        assert!(said.contains(&format!("created     {}", studio.join(folder).display())));
    }
    let config = studio.join("dropcast.yaml");
    let next = format!("next:       dropcast -c {} watch", config.display());
    assert!(said.contains(&next), "{said}");

    let checked = dropcast(dir.path(), &["-c", config.to_str().unwrap(), "check"]);
    let report = text(&checked.stdout);
    assert!(
        checked.status.success(),
        "{report}{}",
        text(&checked.stderr)
    );
    assert!(
        report.contains("platform    sandbox at http://127.0.0.1:"),
        "{report}"
    );
    assert!(
        report.contains("account     main: session works"),
        "{report}"
    );
}

// Pins: `init` must never overwrite a config, even one the user edited since.
#[test]
fn a_second_init_is_refused_with_exit_2_and_leaves_the_config_alone() {
    let dir = tempfile::tempdir().unwrap();
    assert!(dropcast(dir.path(), &["init"]).status.success());
    let config = dir.path().join("dropcast.yaml");
    let edited = format!("{}\n# mine\n", std::fs::read_to_string(&config).unwrap());
    std::fs::write(&config, &edited).unwrap();

    let again = dropcast(dir.path(), &["init", "."]);
    assert_eq!(again.status.code(), Some(2));
    let said = text(&again.stderr);
    assert!(said.contains("dropcast.yaml already exists"), "{said}");
    assert!(said.contains("never overwrites"), "{said}");
    assert_eq!(std::fs::read_to_string(&config).unwrap(), edited);
}

#[test]
fn init_in_the_current_folder_says_plain_dropcast_watch() {
    let dir = tempfile::tempdir().unwrap();
    let out = dropcast(dir.path(), &["init"]);
    assert!(text(&out.stdout).contains("next:       dropcast watch\n"));
}

#[test]
fn the_version_names_the_commit_when_built_in_a_git_tree() {
    let dir = tempfile::tempdir().unwrap();
    let out = dropcast(dir.path(), &["--version"]);
    assert!(out.status.success());
    let version = text(&out.stdout);
    let plain = format!("dropcast {}", env!("CARGO_PKG_VERSION"));
    assert!(version.starts_with(&plain), "{version}");
    let manifest = env!("CARGO_MANIFEST_DIR");
    let git = |args: &[&str]| {
        Command::new("git")
            .arg("-C")
            .arg(manifest)
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| text(&o.stdout).trim().to_owned())
    };
    let top = git(&["rev-parse", "--show-toplevel"]);
    let in_tree = top.is_some_and(|top| {
        Path::new(&top).canonicalize().ok() == Path::new(manifest).canonicalize().ok()
    });
    match git(&["rev-parse", "--short=12", "HEAD"]) {
        Some(_) if in_tree && option_env!("DROPCAST_COMMIT").is_none() => {
            // The commit the binary was built from: HEAD then, and a commit of this
            // repository still (HEAD may have moved on since the build).
            let named = version
                .trim_end()
                .strip_prefix(&format!("{plain} ("))
                .and_then(|rest| rest.strip_suffix(')'))
                .unwrap_or_else(|| panic!("{version} names no commit"));
            let commit = named.strip_suffix("-dirty").unwrap_or(named);
            assert!(
                commit.len() == 12 && commit.bytes().all(|b| b.is_ascii_hexdigit()),
                "{version}"
            );
            assert!(
                git(&[
                    "rev-parse",
                    "--verify",
                    "--quiet",
                    &format!("{commit}^{{commit}}")
                ])
                .is_some(),
                "{version} names {commit}, which is no commit of this repository"
            );
        }
        _ => {} // a tarball build: the version alone, or DROPCAST_COMMIT as given
    }
}
