//! What every job of one agent (or one command) shares: the config, the accounts with their
//! backends, the ledger, the folders and the live state. Built by [`crate::root`].

use std::path::Path;

use crate::archive::Folders;
use crate::config::Config;
use crate::ledger::{Ledger, LedgerError};
use crate::sandbox::SandboxHandle;
use crate::shared_ledger::SharedLedger;
use crate::watch::NameFilter;

use super::accounts::Accounts;
use super::live::Live;
use super::pacing::PostPacer;

/// What a [`Context`] may do to the state folder.
#[derive(Clone, Copy, Debug)]
pub enum Access<'a> {
    /// This process drives the state folder (it holds the lock): it opens the ledger and
    /// may write it. `new_ledger`: start with an empty ledger even though receipts of
    /// earlier posts exist (`--new-ledger`).
    Driver {
        lock: &'a crate::driver::DriverLock,
        new_ledger: bool,
    },
    /// Looks only (`dropcast check`): the ledger is not opened, let alone written, so a
    /// running agent's checkpoints are never touched.
    Inspect,
}

/// Shared by every job of one agent (or one command).
pub struct Context {
    pub config: Config,
    pub accounts: Accounts,
    /// What the agent is doing now (status server, `dropcast status`).
    pub live: Live,
    pub filter: NameFilter,
    pub folders: Folders,
    /// `None` for [`Access::Inspect`].
    pub(crate) ledger: Option<SharedLedger>,
    /// Keeps `publish.min_interval` between two posts of an account.
    pub(crate) pacer: PostPacer,
    /// The built-in simulator, kept alive as long as the context.
    pub(crate) sandbox: Option<SandboxHandle>,
    /// Every backend, to let go of what they hold open when the run ends.
    pub(crate) backends: Vec<std::sync::Arc<dyn crate::platform::Backend>>,
}

impl Context {
    /// The simulator's address when running in sandbox mode.
    pub fn sandbox_url(&self) -> Option<String> {
        self.sandbox.as_ref().map(|s| s.base_url())
    }

    /// Runs `f` on the ledger off the async threads (SQLite commits fsync).
    /// This agent's name among those sharing the ledger (`agent.name`, else the host's).
    pub(crate) fn agent_name(&self) -> String {
        self.config
            .ledger
            .agent
            .clone()
            .unwrap_or_else(crate::ledger::host_name)
    }

    pub async fn ledger<T, F>(&self, f: F) -> Result<T, LedgerError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Ledger) -> Result<T, LedgerError> + Send + 'static,
    {
        match &self.ledger {
            Some(ledger) => ledger.call(f).await,
            None => Err(LedgerError::Invalid(
                "this command only looks: it did not open the ledger",
            )),
        }
    }

    /// The ledger's file was found deleted, replaced or emptied: the error that must stop
    /// the agent. Also looks at the file itself when `look` is set.
    pub(crate) async fn ledger_lost(&self, look: bool) -> Option<LedgerError> {
        let ledger = self.ledger.as_ref()?;
        if look {
            // A `Lost` answer is remembered; other errors are not a lost ledger.
            let _ = ledger.call(|l| l.check_file()).await;
        }
        ledger.lost()
    }

    /// The path of `file` relative to the inbox, or the path itself when outside it
    /// ([`archive::inbox_relative`](crate::archive::inbox_relative)).
    pub fn relative<'a>(&self, file: &'a Path) -> &'a Path {
        crate::archive::inbox_relative(&self.config.inbox, file)
    }

    /// Whether `file` lies in the inbox (only those files are ever moved).
    pub(crate) fn in_inbox(&self, file: &Path) -> bool {
        // The archive's own rule: `inbox/../elsewhere` is not in the inbox.
        file.starts_with(&self.config.inbox) && crate::archive::in_inbox(&self.config.inbox, file)
    }

    /// Closes what the backends hold open (browsers, cleanly) and stops the built-in
    /// sandbox, if any.
    pub async fn shutdown(self) {
        for backend in &self.backends {
            backend.shutdown().await;
        }
        if let Some(sandbox) = self.sandbox {
            sandbox.shutdown().await;
        }
    }
}
