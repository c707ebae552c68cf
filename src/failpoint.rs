//! Crash points for tests: with the `failpoints` cargo feature, `DROPCAST_FAILPOINT=<name>`
//! makes the process abort (as a power cut or `kill -9` would) when it reaches the point
//! of that name. Without the feature, [`hit`] compiles to nothing.
//!
//! Names: `after_request:<step>` (the step's request got its answer, before the ledger
//! hears of it), `after_commit:<what>` (a ledger transaction committed), and
//! `archive:<stage>` (between the moves of an archive). [`NAMES`] lists them all.

/// Every failpoint, for the crash-matrix test.
pub const NAMES: &[&str] = &[
    "after_request:credentials",
    "after_request:upload_params",
    "after_request:upload",
    "after_request:commit",
    "after_request:publish",
    "after_commit:claim",
    "after_commit:credentials",
    "after_commit:upload_params",
    "after_commit:upload",
    "after_commit:commit",
    "after_commit:publish_sent",
    "after_commit:published",
    "after_commit:archive_plan",
    "archive:after_receipt",
    "archive:after_caption",
    "archive:after_video",
    "after_commit:done",
    "after_commit:failed",
    "after_commit:duplicate",
    "after_commit:abandoned",
    "after_commit:unconfirmed",
    "after_commit:archived",
    "after_commit:upload_session",
    "after_commit:part",
    // The `douyin` backend's own steps (docs/douyin-creator.md).
    "after_request:apply_upload",
    "after_commit:apply_upload",
    "after_request:upload_part",
    "after_request:cover",
    "after_commit:cover",
    // The `tiktok` backend's own (docs/tiktok.md): its init fence and the
    // token file (after a rotated refresh token is saved, before its access token is used).
    "after_request:init",
    "after_commit:init",
    "after_commit:tiktok_tokens",
];

/// Aborts the process if `DROPCAST_FAILPOINT` names this point.
#[cfg(feature = "failpoints")]
pub(crate) fn hit(name: &str) {
    use std::sync::OnceLock;
    static ARMED: OnceLock<Option<String>> = OnceLock::new();
    let armed = ARMED.get_or_init(|| std::env::var("DROPCAST_FAILPOINT").ok());
    if armed.as_deref() == Some(name) {
        eprintln!("failpoint {name}: aborting");
        std::process::abort();
    }
}

/// Failpoints are compiled out without the `failpoints` feature.
#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub(crate) fn hit(_name: &str) {}
