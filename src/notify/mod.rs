//! Notifications (`notify:` in the config, docs/notifications.md): webhooks told when a
//! video is published, fails or is a duplicate, when an account is paused or resumed, and
//! when a session nears its end. The ledger enqueues each event in the transaction of the
//! state change it tells of (`ledger::outbox`); the agent's background [`worker`] sends the
//! outbox with backoff, off every job's path.
//!
//! `event` what is sent, `format` the body per receiver kind, `sign` the HMAC header,
//! `send` one POST, `worker` the delivery loop, `expiring` sessions near their end,
//! `refused` files failed before any ledger job, `check` `dropcast notify test`.

pub mod check;
pub mod event;
pub(crate) mod expiring;
pub mod format;
pub(crate) mod refused;
pub(crate) mod send;
pub mod sign;
pub(crate) mod worker;

pub use check::NotifyCommand;
