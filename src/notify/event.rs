//! One notification: its kind (`published`, `failed`, …), and the JSON object every sink
//! gets (docs/notifications.md "Fields"). Built where the state change happens (the
//! ledger's transaction) and stored whole in the outbox, so a redelivery sends the same
//! object with the same `id`. No field can hold a secret: only names, paths relative to
//! the inbox, a short hash, a post address, and the ledger's own reason and hint words.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// What happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    Published,
    Failed,
    Duplicate,
    Paused,
    SessionExpiring,
    Resumed,
}

impl EventKind {
    /// Every kind, in the order docs and `notify test` list them.
    pub const ALL: [EventKind; 6] = [
        EventKind::Published,
        EventKind::Failed,
        EventKind::Duplicate,
        EventKind::Paused,
        EventKind::SessionExpiring,
        EventKind::Resumed,
    ];

    /// The name in the config, the JSON and the ledger.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Published => "published",
            EventKind::Failed => "failed",
            EventKind::Duplicate => "duplicate",
            EventKind::Paused => "paused",
            EventKind::SessionExpiring => "session_expiring",
            EventKind::Resumed => "resumed",
        }
    }

    pub fn parse(name: &str) -> Option<EventKind> {
        EventKind::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

/// A set of kinds (a sink's `events:`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EventSet(u8);

impl EventSet {
    pub const ALL: EventSet = EventSet(0b11_1111);
    pub const NONE: EventSet = EventSet(0);

    fn bit(kind: EventKind) -> u8 {
        1 << EventKind::ALL.iter().position(|k| *k == kind).unwrap_or(0)
    }

    pub fn with(self, kind: EventKind) -> EventSet {
        EventSet(self.0 | Self::bit(kind))
    }

    pub fn contains(self, kind: EventKind) -> bool {
        self.0 & Self::bit(kind) != 0
    }
}

/// The object a receiver gets (as JSON, or rendered for ntfy or Slack).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub event: EventKind,
    /// Unique per event, the same on every delivery of it: receivers drop repeats by it.
    pub id: String,
    /// When it happened, RFC 3339 UTC.
    pub time: String,
    pub account: Option<String>,
    pub platform: Option<String>,
    /// The video, relative to the inbox.
    pub file: Option<String>,
    /// The first 12 hex digits of the video's SHA-256.
    pub hash: Option<String>,
    pub post_url: Option<String>,
    pub reason: Option<String>,
    /// What to do about it, where there is something to do.
    pub hint: Option<String>,
    /// Sent by `dropcast notify test`: nothing happened.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub test: bool,
}

/// Length of the short hash in an event.
pub const SHORT_HASH: usize = 12;

impl Event {
    /// A new event of `kind` at `at_ms` (unix ms) with a fresh random id; the other
    /// fields empty.
    pub fn new(kind: EventKind, at_ms: i64) -> Event {
        Event::with_id(kind, new_id(), at_ms)
    }

    /// An event whose id the caller derived (the same fact always gives the same id,
    /// so enqueuing it twice enqueues it once).
    pub fn with_id(kind: EventKind, id: String, at_ms: i64) -> Event {
        Event {
            event: kind,
            id,
            time: rfc3339(at_ms),
            account: None,
            platform: None,
            file: None,
            hash: None,
            post_url: None,
            reason: None,
            hint: None,
            test: false,
        }
    }

    /// The JSON text stored in the outbox and sent as the `json` format's body.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "{}".to_owned())
    }
}

/// The short form of a SHA-256 hex digest.
pub fn short_hash(sha256: &str) -> String {
    sha256.chars().take(SHORT_HASH).collect()
}

/// 128 random bits as 32 hex digits (`getrandom`: the OS's generator).
pub fn new_id() -> String {
    let mut bytes = [0u8; 16];
    if getrandom::fill(&mut bytes).is_err() {
        // No OS randomness: time and the process make the id unique enough on one host.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        bytes = (nanos ^ (u128::from(std::process::id()) << 96)).to_be_bytes();
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// An id derived from `parts` (SHA-256, the first 32 hex digits).
pub fn derived_id(parts: &[&str]) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0u8]);
    }
    h.finalize()
        .iter()
        .take(16)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Unix milliseconds as RFC 3339 UTC.
pub fn rfc3339(ms: i64) -> String {
    let nanos = i128::from(ms) * 1_000_000;
    OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| "1970-01-01T00:00:00Z".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_through_their_names() {
        for kind in EventKind::ALL {
            assert_eq!(EventKind::parse(kind.as_str()), Some(kind));
            let json = serde_json::to_string(&kind).unwrap();
            assert_eq!(json, format!("\"{}\"", kind.as_str()));
        }
        assert_eq!(EventKind::parse("publish"), None);
    }

    #[test]
    fn sets_hold_what_was_added() {
        let set = EventSet::NONE
            .with(EventKind::Failed)
            .with(EventKind::Paused);
        assert!(set.contains(EventKind::Failed) && set.contains(EventKind::Paused));
        assert!(!set.contains(EventKind::Published));
        assert!(EventKind::ALL.iter().all(|k| EventSet::ALL.contains(*k)));
    }

    #[test]
    fn ids_are_fresh_or_derived_the_same_way() {
        assert_ne!(new_id(), new_id());
        assert_eq!(new_id().len(), 32);
        assert_eq!(derived_id(&["a", "b"]), derived_id(&["a", "b"]));
        // The separator keeps ("ab", "") apart from ("a", "b").
        assert_ne!(derived_id(&["ab", ""]), derived_id(&["a", "b"]));
    }

    #[test]
    fn json_has_every_field_and_test_only_when_set() {
        let mut e = Event::with_id(EventKind::Published, "x".into(), 1_700_000_000_123);
        assert_eq!(e.time, "2023-11-14T22:13:20.123Z");
        let v: serde_json::Value = serde_json::from_str(&e.to_json()).unwrap();
        for key in [
            "event", "id", "time", "account", "platform", "file", "hash", "post_url", "reason",
            "hint",
        ] {
            assert!(v.get(key).is_some(), "{key} missing from {v}");
        }
        assert!(v.get("test").is_none());
        e.test = true;
        let v: serde_json::Value = serde_json::from_str(&e.to_json()).unwrap();
        assert_eq!(v["test"], true);
    }
}
