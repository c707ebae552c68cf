//! `ledger:` and `agent:`: where the ledger lives (SQLite in `state_dir`, or a PostgreSQL
//! database several agents share), how long a job's lease lasts, and this agent's name.
//! See docs/shared-ledger.md.

use std::time::Duration;

use super::{Problems, set_duration};
use crate::secret::Secret;
use serde_yaml::Value;

use crate::yaml::Node;

/// Where the ledger lives.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum LedgerBackend {
    /// `state_dir/ledger.sqlite3` (the default): one agent per state folder and inbox.
    #[default]
    Sqlite,
    /// A PostgreSQL database shared by several agents. The URL may hold a password: it
    /// is a secret, never logged.
    Postgres {
        url: Secret,
        /// Where it came from, for messages: `DROPCAST_LEDGER_URL` or `ledger.url`.
        source: String,
    },
}

#[derive(Clone, Debug, PartialEq)]
pub struct LedgerConfig {
    pub backend: LedgerBackend,
    /// How long a job's lease lasts unless renewed (renewed every third of it).
    pub lease: Duration,
    /// This agent's name among those sharing the ledger (default: the host name).
    pub agent: Option<String>,
}

impl Default for LedgerConfig {
    fn default() -> Self {
        LedgerConfig {
            backend: LedgerBackend::Sqlite,
            lease: crate::ledger::DEFAULT_LEASE,
            agent: None,
        }
    }
}

impl LedgerConfig {
    pub(crate) fn is_shared(&self) -> bool {
        matches!(self.backend, LedgerBackend::Postgres { .. })
    }
}

/// `ledger: {url_env: NAME | url: postgres://…, lease: 30s}`.
pub(super) fn read_ledger(node: &Node<'_>, out: &mut LedgerConfig, problems: &mut Problems) {
    let Some(f) = node.fields(&["url_env", "url", "lease"], problems) else {
        return;
    };
    match (f.get("url_env"), f.get("url")) {
        (Some(_), Some(u)) => problems.push(u.key_problem("give `url_env` or `url`, not both")),
        (Some(e), None) => {
            if let Some(name) = super::accounts::env_var(e, "the URL", problems) {
                match std::env::var(&name) {
                    Ok(url) if !url.trim().is_empty() => {
                        out.backend = postgres(url, name, e, problems);
                    }
                    _ => problems.push(e.problem(format!(
                        "the environment variable `{name}` is not set; it should hold the shared ledger's URL, like postgres://dropcast:PASSWORD@db.lan/dropcast"
                    ))),
                }
            }
        }
        (None, Some(u)) => match u.value() {
            Value::String(url) if !url.trim().is_empty() => {
                out.backend = postgres(url.clone(), "ledger.url".into(), u, problems);
            }
            _ => problems.push(u.problem("expected a URL like postgres://db.lan/dropcast")),
        },
        (None, None) => {}
    }
    set_duration(
        f.get("lease"),
        &mut out.lease,
        (Duration::from_secs(3), Duration::from_secs(3600)),
        problems,
    );
}

fn postgres(url: String, source: String, at: &Node<'_>, problems: &mut Problems) -> LedgerBackend {
    let scheme = url.split_once("://").map(|(s, _)| s);
    if !matches!(scheme, Some("postgres" | "postgresql")) {
        // The value is not shown: it may hold a password.
        problems.push(at.problem(format!(
            "{source} must be a postgres:// URL (like postgres://dropcast:PASSWORD@db.lan/dropcast)"
        )));
    }
    LedgerBackend::Postgres {
        url: Secret::new(url),
        source,
    }
}

/// `agent: {name: studio-a}`.
pub(super) fn read_agent(node: &Node<'_>, out: &mut LedgerConfig, problems: &mut Problems) {
    let Some(f) = node.fields(&["name"], problems) else {
        return;
    };
    if let Some(n) = f.get("name")
        && let Some(name) = agent_name(n, problems)
    {
        out.agent = Some(name);
    }
}

/// An agent name: letters, digits, `.`, `-`, `_`, at most 64.
pub(super) fn agent_name(node: &Node<'_>, problems: &mut Problems) -> Option<String> {
    node.parse_str("an agent name", problems, |s| {
        let ok = !s.is_empty()
            && s.len() <= 64
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
        if ok {
            Ok(s.to_owned())
        } else {
            Err(format!(
                "`{s}` is not an agent name (letters, digits, `.`, `-`, `_`; a host name)"
            ))
        }
    })
}
