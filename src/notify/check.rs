//! `dropcast notify test`: one event of each kind, marked `"test": true`, sent straight to
//! every configured sink (not through the outbox, so it needs no ledger and never waits
//! for a backoff), with one line per sink and event: the HTTP status or the error.

use std::io::Write;

use crate::config::Config;

use super::event::{Event, EventKind, new_id};
use super::send::Sender;

/// `dropcast notify …`.
#[derive(Debug, clap::Subcommand)]
pub enum NotifyCommand {
    /// Send one of each event (marked as a test) to every webhook in `notify:`; prints each
    /// answer, exits 1 if any was not delivered
    Test,
}

/// Sends the test events; `true` when every sink took every event.
pub async fn test(config: &Config, out: &mut impl Write) -> std::io::Result<bool> {
    if config.notify.is_empty() {
        writeln!(
            out,
            "no webhooks configured (`notify:` in the config is empty)"
        )?;
        return Ok(true);
    }
    let sender = match Sender::new() {
        Ok(sender) => sender,
        Err(e) => {
            writeln!(out, "{e}")?;
            return Ok(false);
        }
    };
    let mut ok = true;
    for sink in &config.notify {
        for kind in EventKind::ALL {
            let event = sample(config, kind);
            let line = if !sink.events.contains(kind) {
                "not sent (not in this webhook's `events`)".to_owned()
            } else {
                match sender.send(sink, &event, &event.to_json()).await {
                    Ok(status) => format!("HTTP {status}"),
                    Err(e) => {
                        ok = false;
                        format!("FAILED: {e}")
                    }
                }
            };
            writeln!(out, "{:<28} {:<17} {line}", sink.display(), kind.as_str())?;
        }
    }
    Ok(ok)
}

/// A test event of `kind` for the config's first account.
pub fn sample(config: &Config, kind: EventKind) -> Event {
    let now = super::expiring::now_ms();
    let mut e = Event::with_id(kind, new_id(), now);
    e.test = true;
    let account = config.accounts.first();
    e.account = account.map(|a| a.name.clone());
    e.platform = account.map(|a| a.platform().as_str().to_owned());
    let (file, post, reason, hint) = match kind {
        EventKind::Published => (true, true, None, None),
        EventKind::Failed => (
            true,
            false,
            Some("a test: the platform refused the video"),
            Some("see the error receipt in failed/"),
        ),
        EventKind::Duplicate => (
            true,
            true,
            Some("a test: already posted for this account"),
            None,
        ),
        EventKind::Paused => (
            false,
            false,
            Some("a test: the session was refused"),
            Some("run `dropcast login ACCOUNT`"),
        ),
        EventKind::SessionExpiring => (
            false,
            false,
            Some("a test: the refresh token ends in 7 days"),
            Some("run `dropcast login ACCOUNT`"),
        ),
        EventKind::Resumed => (false, false, Some("a test: the account works again"), None),
    };
    if file {
        e.file = Some("test/example.mp4".to_owned());
        e.hash = Some("0123456789ab".to_owned());
    }
    if post {
        e.post_url = Some("https://example.com/dropcast-test-post".to_owned());
    }
    e.reason = reason.map(str::to_owned);
    e.hint = hint.map(str::to_owned);
    e
}
