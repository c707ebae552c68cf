//! dropcast: a watch-folder agent that publishes short videos exactly once.
//!
//! See ARCHITECTURE.md for the bird's-eye view and the code map.

pub mod agent_list;
pub mod archive;
mod b64;
pub mod browser;
pub mod caption;
mod checkpoint;
pub mod cli;
mod cli_docs;
pub mod config;
pub mod domain;
pub mod driver;
pub mod failpoint;
pub mod hash;
mod init;
pub mod ledger;
pub mod lock;
mod logging;
pub mod lost_ledger;
pub mod media;
pub mod notify;
pub mod pipeline;
pub mod plan;
pub mod platform;
pub mod progress;
pub mod read_model;
pub mod receipt;
pub mod report;
pub mod root;
pub mod sandbox;
pub mod secret;
mod shared_ledger;
pub mod status;
mod stop;
#[cfg(test)]
mod test_postgres;
#[cfg(test)]
mod test_postgres_tests;
#[cfg(test)]
mod test_tools;
#[cfg(test)]
mod test_tools_tests;
pub mod userfile;
pub mod version;
pub mod video;
pub mod watch;
#[cfg(windows)]
mod win;
pub mod words;
mod wtf8;
pub mod yaml;
