//! The ledger as async code shares it: one connection behind a mutex, every call run off
//! the async threads, and a lost database file (deleted, replaced, emptied) remembered so
//! that the agent stops.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use crate::ledger::{Ledger, LedgerError};

/// A cheap-to-clone handle on the open ledger.
#[derive(Clone)]
pub(crate) struct SharedLedger {
    ledger: Arc<Mutex<Ledger>>,
    /// Set when a ledger call found its file deleted, replaced or emptied.
    lost: Arc<Mutex<Option<(PathBuf, &'static str)>>>,
}

impl SharedLedger {
    pub(crate) fn new(ledger: Ledger) -> SharedLedger {
        SharedLedger {
            ledger: Arc::new(Mutex::new(ledger)),
            lost: Arc::new(Mutex::new(None)),
        }
    }

    /// Runs `f` on the ledger off the async threads (SQLite commits fsync).
    pub(crate) async fn call<T, F>(&self, f: F) -> Result<T, LedgerError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Ledger) -> Result<T, LedgerError> + Send + 'static,
    {
        let ledger = Arc::clone(&self.ledger);
        let result = match tokio::task::spawn_blocking(move || {
            let mut guard = ledger
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            f(&mut guard)
        })
        .await
        {
            Ok(result) => result,
            Err(join) => std::panic::resume_unwind(join.into_panic()),
        };
        if let Err(LedgerError::Lost { path, what }) = &result {
            *self.lost.lock().unwrap_or_else(|p| p.into_inner()) = Some((path.clone(), what));
        }
        result
    }

    /// The error that must stop the agent, once a call found the file lost.
    pub(crate) fn lost(&self) -> Option<LedgerError> {
        self.lost
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .map(|(path, what)| LedgerError::Lost {
                path: path.clone(),
                what,
            })
    }
}
