//! What the command line says about itself, generated from its clap definitions
//! (`cli::Cli`): `dropcast completions SHELL` (clap_complete) and `dropcast man [COMMAND]`
//! (clap_mangen), both printed to stdout so packagers and users redirect them where their
//! system looks.

use std::io::{self, Write};

use clap::CommandFactory;
use clap_complete::Shell;

use crate::cli::Cli;

/// The name the scripts complete and the man pages are titled with.
const BIN: &str = "dropcast";

/// Writes the completion script for `shell` to `out`.
pub(crate) fn completions(shell: Shell, out: &mut dyn Write) -> io::Result<()> {
    let mut cmd = Cli::command();
    // Made in memory first: clap_complete panics when its writer fails (a closed pipe).
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut cmd, BIN, &mut script);
    out.write_all(&script)?;
    out.flush()
}

/// A man page asked for that does not exist: names the ones that do.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ManError {
    #[error("no command `{asked}`: man pages exist for {}", known.join(", "))]
    NoSuchCommand { asked: String, known: Vec<String> },
    #[error("cannot write the man page: {0}")]
    Write(#[from] io::Error),
}

/// Writes the man page (roff) of `dropcast`, or of the subcommand `path` names
/// (`["ledger", "rebuild"]` → `dropcast-ledger-rebuild(1)`), to `out`.
pub(crate) fn man_page(path: &[String], out: &mut dyn Write) -> Result<(), ManError> {
    let mut cmd = Cli::command().disable_help_subcommand(true);
    // Built, every subcommand knows its display name (`dropcast-watch`) and the global
    // options it inherits, as clap_mangen's own `generate_to` does.
    cmd.build();
    let mut page = &cmd;
    for (i, name) in path.iter().enumerate() {
        page = page
            .get_subcommands()
            .find(|c| c.get_name() == name && !c.is_hide_set())
            .ok_or_else(|| ManError::NoSuchCommand {
                asked: path[..=i].join(" "),
                known: page_names(&cmd),
            })?;
    }
    // Every page's footer names dropcast's version (a subcommand has none of its own).
    clap_mangen::Man::new(page.clone())
        .source(format!("{BIN} {}", crate::version::VERSION))
        .render(out)?;
    out.flush()?;
    Ok(())
}

/// Every command with a page, as `dropcast man` takes them (`watch`, `ledger rebuild`).
fn page_names(cmd: &clap::Command) -> Vec<String> {
    fn walk(cmd: &clap::Command, prefix: &str, out: &mut Vec<String>) {
        for sub in cmd.get_subcommands().filter(|c| !c.is_hide_set()) {
            let name = format!("{prefix}{}", sub.get_name());
            out.push(name.clone());
            walk(sub, &format!("{name} "), out);
        }
    }
    let mut out = Vec::new();
    walk(cmd, "", &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn man(path: &[&str]) -> Result<String, ManError> {
        let path: Vec<String> = path.iter().map(|s| s.to_string()).collect();
        let mut out = Vec::new();
        man_page(&path, &mut out)?;
        Ok(String::from_utf8(out).expect("roff is UTF-8"))
    }

    #[test]
    fn the_main_page_lists_the_subcommands_and_a_subcommand_has_its_own_page() {
        let main = man(&[]).unwrap();
        assert!(main.starts_with(".ie"), "roff: {}", &main[..40]);
        for sub in ["watch", "publish", "completions", "man", "init"] {
            assert!(main.contains(sub), "the main page names {sub}");
        }
        let rebuild = man(&["ledger", "rebuild"]).unwrap();
        assert!(rebuild.contains("dropcast\\-ledger\\-rebuild"), "{rebuild}");
    }

    #[test]
    fn an_unknown_page_names_the_pages_there_are() {
        let err = man(&["ledger", "nope"]).unwrap_err().to_string();
        assert!(err.contains("`ledger nope`"), "{err}");
        assert!(err.contains("ledger rebuild"), "{err}");
        assert!(
            !err.contains("help"),
            "the help subcommand has no page: {err}"
        );
    }

    #[test]
    fn every_shell_completes_every_subcommand() {
        for shell in [Shell::Bash, Shell::Zsh, Shell::Fish, Shell::PowerShell] {
            let mut out = Vec::new();
            completions(shell, &mut out).unwrap();
            let script = String::from_utf8(out).unwrap();
            for sub in ["watch", "status", "ledger", "completions", "init"] {
                assert!(script.contains(sub), "{shell} completes {sub}");
            }
        }
    }
}
