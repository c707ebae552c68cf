//! Finding input in the inbox: which names count ([`names`]), full walks ([`scan`]),
//! file system events ([`native`]), whether native events can see changes at all
//! ([`mounts`]: network and FUSE mounts), deciding when a file is complete ([`settle`],
//! with [`busy`]: is a process still writing it?) and pairing videos with captions
//! ([`bundle`]). Design.md §1 steps 1–3.
//!
//! How the pieces fit (the agent loop owns the wiring): scans and [`WatchEvent`]s yield
//! candidate paths; paths under excluded folders and temp names are dropped with
//! [`NameFilter`] and [`is_excluded`]; videos are fed to a [`Settler`]; each [`Settled`]
//! video passes [`check_content`] (the [`media`] box walk) and then [`find_caption`].
//! Nothing here touches the ledger or moves files.

pub mod bundle;
pub(crate) mod busy;
pub mod media;
pub(crate) mod mounts;
pub mod names;
pub mod native;
pub mod scan;
pub mod settle;

pub use bundle::{CaptionLookup, SharedCaption, find_caption};
pub use media::Completeness;
pub(crate) use mounts::remote_fs;
pub use names::NameFilter;
pub use native::{Backend, InboxWatcher, WatchError, WatchEvent, WatchOptions, watch, watch_with};
pub use scan::{Scan, is_excluded, scan};
pub use settle::{Settled, Settler, check_content, unchanged};
