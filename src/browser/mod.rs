//! The browser session of `douyin` accounts (docs/douyin-creator.md §0): Chromium found on
//! the machine ([`find`]), one profile per account ([`profile`]), a browser started when a
//! request needs it and closed cleanly when idle ([`session`], the
//! [`InPage`](crate::platform::in_page::InPage) of the douyin backend), and `dropcast login`
//! ([`login`]).
//!
//! Every name the creator site's pages use (paths, selectors) is in [`site`].

pub mod find;
pub mod login;
pub mod profile;
pub mod session;
pub mod site;

pub use find::{NoBrowser, Search, find_browser};
pub use login::{Identity, LoginError, LoginOptions, LoginOutcome};
pub use profile::{ProfileBusy, Profiles};
pub use session::{SessionError, SessionSettings, Sessions};
