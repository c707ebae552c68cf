//! Who drives a state folder's jobs (ARCHITECTURE.md "Invariants"): one process at a time. Every command
//! that can publish or move files becomes the driver (it holds the state lock and the
//! inbox lock, see `crate::lock`) or hands its work to the agent that is the driver.
//!
//! A one-off command that holds the locks (`publish`, `retry`, `ledger rebuild`) ends
//! soon, so the others wait for it; an agent (`watch`) runs until stopped, so `publish`
//! and `retry` hand their work to it (`pipeline::handoff`), and a second agent refuses to
//! start. An agent of *another* state folder watching the same inbox cannot take work
//! from us: that is refused too (one inbox, one agent).

use std::time::Duration;

use crate::config::Config;
use crate::lock::{self, Attempt, Holder, InboxLock, LockError, Role, StateLock};

/// How often a waiting command tries the locks again.
const WAIT_STEP: Duration = Duration::from_millis(100);

/// Proof that this process drives the state folder and the inbox: both locks, released
/// when it drops.
#[derive(Debug)]
pub struct DriverLock {
    _state: StateLock,
    /// `None` with a shared ledger: agents of several state folders may watch one inbox,
    /// and leases (not the inbox lock) keep them off each other's jobs.
    _inbox: Option<InboxLock>,
}

/// The inbox lock, unless the ledger is shared (see [`DriverLock`]).
fn try_inbox(config: &Config, role: Role) -> Result<Attempt<Option<InboxLock>>, LockError> {
    if config.ledger.is_shared() {
        return Ok(Attempt::Taken(None));
    }
    Ok(
        match InboxLock::try_acquire(&config.inbox, role, &config.state_dir)? {
            Attempt::Taken(lock) => Attempt::Taken(Some(lock)),
            Attempt::Busy(text) => Attempt::Busy(text),
        },
    )
}

impl DriverLock {
    /// Takes both locks now or fails naming the holder; never waits (for tests and
    /// tools that build a [`Context`](crate::pipeline::Context) themselves).
    pub fn take(config: &Config, role: Role) -> Result<DriverLock, LockError> {
        match StateLock::try_acquire(&config.state_dir, role)? {
            Attempt::Taken(state) => match try_inbox(config, role)? {
                Attempt::Taken(inbox) => Ok(DriverLock {
                    _state: state,
                    _inbox: inbox,
                }),
                Attempt::Busy(text) => Err(LockError::InboxHeld {
                    inbox: config.inbox.clone(),
                    holder: lock::describe(&text),
                }),
            },
            Attempt::Busy(text) => Err(LockError::Held {
                state_dir: config.state_dir.clone(),
                holder: lock::describe(&text),
            }),
        }
    }
}

/// Who drives, as [`acquire`] found it.
#[derive(Debug)]
pub enum Driver {
    /// This process: it holds both locks.
    Us(DriverLock),
    /// An agent (`watch`) of this state folder; work can be handed to it.
    Agent(Holder),
}

/// Becomes the driver of `config`'s state folder and inbox in `role`, waiting while a
/// one-off command holds either lock (`waiting` is called once, with that command, the
/// first time). Returns [`Driver::Agent`] when an agent of this state folder runs. An
/// agent of another state folder on the same inbox is an error ([`LockError::InboxHeld`]).
pub async fn acquire(
    config: &Config,
    role: Role,
    mut waiting: impl FnMut(&Holder),
) -> Result<Driver, LockError> {
    let mut said = false;
    let mut wait_for = |holder: &Holder| {
        if !said {
            said = true;
            waiting(holder);
        }
    };
    loop {
        let state = match StateLock::try_acquire(&config.state_dir, role)? {
            Attempt::Taken(state) => state,
            Attempt::Busy(text) => {
                match Holder::parse(&text) {
                    Some(holder) if holder.is_agent() => return Ok(Driver::Agent(holder)),
                    Some(holder) => wait_for(&holder),
                    // Its holder is writing who it is right now.
                    None => {}
                }
                tokio::time::sleep(WAIT_STEP).await;
                continue;
            }
        };
        match try_inbox(config, role)? {
            Attempt::Taken(inbox) => {
                return Ok(Driver::Us(DriverLock {
                    _state: state,
                    _inbox: inbox,
                }));
            }
            Attempt::Busy(text) => match Holder::parse(&text) {
                Some(holder) if holder.is_agent() => {
                    return Err(LockError::InboxHeld {
                        inbox: config.inbox.clone(),
                        holder: holder.describe(),
                    });
                }
                Some(holder) => wait_for(&holder),
                None => {}
            },
        }
        // Not both: let go of the state lock while waiting, so nobody waits on us.
        drop(state);
        tokio::time::sleep(WAIT_STEP).await;
    }
}

/// The line a waiting command prints once on stderr.
pub(crate) fn waiting_line(holder: &Holder) -> String {
    format!(
        "waiting for {} (pid {}) to finish with this folder…",
        holder.role.unwrap_or(Role::Agent).command(),
        holder.pid
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(dir: &std::path::Path, state: &str) -> Config {
        let mut c = Config::defaults(dir);
        c.inbox = dir.join("inbox");
        c.state_dir = dir.join(state);
        c
    }

    #[tokio::test]
    async fn an_agent_is_found_and_a_command_is_waited_for() {
        let dir = tempfile::tempdir().unwrap();
        let c = config(dir.path(), "state");
        let agent = DriverLock::take(&c, Role::Agent).unwrap();
        match acquire(&c, Role::Publish, |_| panic!("no wait for an agent"))
            .await
            .unwrap()
        {
            Driver::Agent(h) => assert_eq!(h.pid, std::process::id()),
            Driver::Us(_) => panic!("the agent holds the lock"),
        }
        drop(agent);

        let publish = DriverLock::take(&c, Role::Publish).unwrap();
        let waited = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let w = waited.clone();
        let c2 = c.clone();
        let task = tokio::spawn(async move {
            acquire(&c2, Role::Retry, move |h| {
                assert_eq!(h.role, Some(Role::Publish));
                w.store(true, std::sync::atomic::Ordering::SeqCst);
            })
            .await
        });
        while !waited.load(std::sync::atomic::Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(!task.is_finished());
        drop(publish);
        assert!(matches!(task.await.unwrap().unwrap(), Driver::Us(_)));
    }

    #[tokio::test]
    async fn an_agent_of_another_state_folder_on_the_same_inbox_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let first = DriverLock::take(&config(dir.path(), "a"), Role::Agent).unwrap();
        let err = acquire(&config(dir.path(), "b"), Role::Agent, |_| {})
            .await
            .unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, LockError::InboxHeld { .. }), "{msg}");
        assert!(
            msg.contains(&format!("pid {}", std::process::id())),
            "{msg}"
        );
        assert!(
            msg.contains(&dir.path().join("a").display().to_string()),
            "{msg}"
        );
        drop(first);
    }
}
