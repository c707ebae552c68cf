//! The pipeline: what happens to a video between the inbox and `done/` (README "Folder rules").
//!
//! `agent` finds and settles files, `job` publishes one bundle (`targets`: to each of its
//! accounts), `context` holds what
//! jobs share, `error` says which errors stop the agent and which end one job, `folders`
//! checks that the archive folders can take files, `moderation` fills in the public id of
//! posts archived while awaiting moderation.

pub mod accounts;
pub mod agent;
pub mod context;
pub(crate) mod cookie;
pub mod error;
pub mod folders;
pub(crate) mod handoff;
pub mod job;
mod limits;
pub mod live;
pub(crate) mod moderation;
mod pacing;
pub(crate) mod requeue;
mod schedule;
mod shared_pause;
mod targets;

pub use agent::{AgentEvent, RunOptions, Summary, run};
pub use context::{Access, Context};
pub use error::{FatalError, JobFailure};
pub use job::{Bundle, Outcome};
