//! `failed` for a file refused before any ledger job could name it (a bad caption, a file
//! that is no video, one never finished): enqueued in a transaction of its own just before
//! the file moves to `failed/`. A crash between the two leaves the file in the inbox; it is
//! refused again, and the event id, derived from the file's path, size, mtime and reason,
//! is the same, so the outbox holds it once.

use std::path::Path;

use tracing::debug;

use crate::pipeline::{Context, JobFailure};

use super::event::{Event, EventKind, derived_id};

/// Enqueues `failed` for `video`, refused with `failure`.
pub(crate) async fn enqueue(ctx: &Context, video: &Path, failure: &JobFailure) {
    if ctx.config.notify.is_empty() {
        return;
    }
    let file = ctx.relative(video).to_string_lossy().into_owned();
    let stamp = std::fs::metadata(video)
        .map(|m| {
            let mtime = m
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_nanos());
            format!("{}:{mtime}", m.len())
        })
        .unwrap_or_default();
    let id = derived_id(&["refused", &file, &stamp, &failure.reason]);
    let mut event = Event::with_id(EventKind::Failed, id, super::expiring::now_ms());
    event.file = Some(file);
    event.reason = Some(failure.reason.clone());
    event.hint = Some(failure.hint.clone());
    if let Err(e) = ctx.ledger(move |l| l.enqueue_notification(&event)).await {
        debug!(reason = %e, "cannot enqueue the failed notification");
    }
}
