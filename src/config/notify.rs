//! `notify:` in the config: the webhooks that hear about posts, failures, duplicates and
//! paused accounts (docs/notifications.md). A list of `{url, secret_env, events, format}`,
//! read and checked into [`NotifySink`]s: an http(s) URL, the signing key read from its
//! variable as a [`Secret`], a set of event kinds, and a body format.

use serde_yaml::Value;

use crate::notify::event::{EventKind, EventSet};
use crate::secret::Secret;
use crate::yaml::{Node, Problems};

/// How a sink's body is shaped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NotifyFormat {
    /// The event as a JSON object (the default).
    Json,
    /// ntfy's publish-by-POST: a plain-text message with `Title`, `Tags` and `Priority`.
    Ntfy,
    /// A Slack (or Mattermost, Discord `/slack`) incoming webhook: `{"text": …}`.
    Slack,
}

impl NotifyFormat {
    const CHOICES: [(&'static str, NotifyFormat); 3] = [
        ("json", NotifyFormat::Json),
        ("ntfy", NotifyFormat::Ntfy),
        ("slack", NotifyFormat::Slack),
    ];
}

/// One webhook.
#[derive(Clone, PartialEq)]
pub struct NotifySink {
    /// An http or https URL. It may hold a token (Slack's and ntfy's do): never logged
    /// whole, see [`NotifySink::display`].
    pub url: reqwest::Url,
    /// The HMAC key, from the variable `secret_env` names; `None`: bodies are not signed.
    pub secret: Option<Secret>,
    pub events: EventSet,
    pub format: NotifyFormat,
}

impl NotifySink {
    /// The sink's stable key in the outbox: derived from its URL, so a restart with the
    /// same config resumes its deliveries (and the URL itself is not stored).
    pub fn key(&self) -> String {
        crate::notify::event::derived_id(&["sink", self.url.as_str()])[..16].to_owned()
    }

    /// The URL without path, query or credentials: what logs and `notify test` show.
    pub fn display(&self) -> String {
        let host = self.url.host_str().unwrap_or("?");
        match self.url.port() {
            Some(port) => format!("{}://{host}:{port}/…", self.url.scheme()),
            None => format!("{}://{host}/…", self.url.scheme()),
        }
    }
}

/// Shows the URL as [`NotifySink::display`] does: a Slack or ntfy URL is a credential.
impl std::fmt::Debug for NotifySink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NotifySink")
            .field("url", &self.display())
            .field("secret", &self.secret)
            .field("events", &self.events)
            .field("format", &self.format)
            .finish()
    }
}

const KEYS: &[&str] = &["url", "secret_env", "events", "format"];

/// Reads `notify:`, a list of sinks.
pub(super) fn read_notify(node: &Node<'_>, problems: &mut Problems) -> Vec<NotifySink> {
    let Some(items) = node.items(problems) else {
        return Vec::new();
    };
    let mut sinks: Vec<NotifySink> = Vec::new();
    for item in items {
        if let Some(sink) = read_sink(&item, problems) {
            if sinks.iter().any(|s| s.url == sink.url) {
                problems.push(item.problem("this URL is listed twice"));
            } else {
                sinks.push(sink);
            }
        }
    }
    sinks
}

fn read_sink(node: &Node<'_>, problems: &mut Problems) -> Option<NotifySink> {
    let f = node.fields(KEYS, problems)?;
    let Some(url_node) = f.get("url") else {
        problems.push(f.missing("url"));
        return None;
    };
    let url = url(url_node, problems);
    let secret = match f.get("secret_env") {
        Some(n) => secret(n, problems).map(Some),
        None => Some(None),
    };
    let events = match f.get("events") {
        Some(n) => events(n, problems),
        None => Some(EventSet::ALL),
    };
    let format = match f.get("format") {
        Some(n) => n.choice(&NotifyFormat::CHOICES, problems),
        None => Some(NotifyFormat::Json),
    };
    Some(NotifySink {
        url: url?,
        secret: secret?,
        events: events?,
        format: format?,
    })
}

/// An http(s) URL. The value is never repeated in a problem: it may hold a token.
fn url(node: &Node<'_>, problems: &mut Problems) -> Option<reqwest::Url> {
    node.parse_str(
        "a URL like https://hooks.example.com/dropcast",
        problems,
        |s| {
            let parsed = reqwest::Url::parse(s.trim())
                .map_err(|e| format!("not a URL ({e}); expected one like https://ntfy.sh/TOPIC"))?;
            match parsed.scheme() {
                "http" | "https" if parsed.host_str().is_some() => Ok(parsed),
                "http" | "https" => Err("the URL has no host".to_owned()),
                other => Err(format!(
                    "`{other}:` URLs cannot take a webhook; use http or https"
                )),
            }
        },
    )
}

/// The signing key from the variable `node` names.
fn secret(node: &Node<'_>, problems: &mut Problems) -> Option<Secret> {
    let name = super::accounts::env_var(node, "the secret", problems)?;
    match std::env::var(&name) {
        Ok(value) if !value.is_empty() => Some(Secret::new(value)),
        _ => {
            problems.push(node.problem(format!(
                "the environment variable `{name}` is not set; it should hold the key the \
                 webhook's bodies are signed with"
            )));
            None
        }
    }
}

/// `events: [published, failed]` (or one name); never empty.
fn events(node: &Node<'_>, problems: &mut Problems) -> Option<EventSet> {
    let items = match node.value() {
        Value::Sequence(_) => node.items(problems)?,
        _ => vec![node.clone()],
    };
    if items.is_empty() {
        problems.push(node.problem("name at least one event, or leave `events` out for all"));
        return None;
    }
    let choices = EventKind::ALL.map(|k| (k.as_str(), k));
    let mut set = EventSet::NONE;
    let mut ok = true;
    for item in items {
        match item.choice(&choices, problems) {
            Some(kind) => set = set.with(kind),
            None => ok = false,
        }
    }
    ok.then_some(set)
}

#[cfg(test)]
mod tests {
    use crate::config::Config;
    use crate::notify::event::{EventKind, EventSet};
    use std::path::Path;

    use super::NotifyFormat;

    fn parse(notify: &str) -> Result<Config, String> {
        let text = format!("accounts: {{main: {{cookie_env: X}}}}\nnotify:\n{notify}");
        Config::parse(&text, None, Path::new("/base")).map_err(|e| e.to_string())
    }

    #[test]
    fn sinks_are_read_with_their_defaults() {
        let c = parse("  - url: https://ntfy.sh/my-topic\n    format: ntfy\n  - {url: http://127.0.0.1:9/hook, events: [failed, paused]}\n").unwrap();
        assert_eq!(c.notify.len(), 2);
        assert_eq!(c.notify[0].format, NotifyFormat::Ntfy);
        assert_eq!(c.notify[0].events, EventSet::ALL);
        assert!(c.notify[0].secret.is_none());
        let second = &c.notify[1];
        assert_eq!(second.format, NotifyFormat::Json);
        assert!(second.events.contains(EventKind::Paused));
        assert!(!second.events.contains(EventKind::Published));
        assert_ne!(c.notify[0].key(), second.key());
        assert_eq!(second.display(), "http://127.0.0.1:9/…");
    }

    #[test]
    fn the_secret_comes_from_its_variable_and_never_shows() {
        // SAFETY: a variable no other test reads.
        unsafe { std::env::set_var("DROPCAST_TEST_NOTIFY_KEY", "s3cr3t-key") };
        let c = parse("  - {url: https://h.example/x, secret_env: DROPCAST_TEST_NOTIFY_KEY}\n")
            .unwrap();
        let secret = c.notify[0].secret.as_ref().unwrap();
        assert_eq!(secret.expose(), "s3cr3t-key");
        assert!(!format!("{:?}", c.notify).contains("s3cr3t"));
    }

    #[test]
    fn every_problem_names_its_key_and_place() {
        let e = parse(concat!(
            "  - {url: ftp://h.example/x, events: [published, publishd], format: xml}\n",
            "  - {url: https://h.example/x, secret_env: DROPCAST_TEST_NOTIFY_UNSET}\n",
            "  - {secret_env: 1X, urll: https://h.example/y}\n",
        ))
        .unwrap_err();
        for words in [
            "notify[0].url",
            "`ftp:` URLs cannot take a webhook",
            "notify[0].events[1]",
            "did you mean `published`?",
            "notify[0].format",
            "notify[1].secret_env",
            "`DROPCAST_TEST_NOTIFY_UNSET` is not set",
            "notify[2]",
            "unknown field `urll`",
            "4:44: notify[1].secret_env",
        ] {
            assert!(e.contains(words), "{words:?} missing from:\n{e}");
        }
    }

    #[test]
    fn a_url_with_a_token_is_shown_neither_in_a_problem_nor_in_debug() {
        let e = parse("  - {url: \"https://hooks slack.com/SECRETTOKEN\"}\n").unwrap_err();
        assert!(!e.contains("SECRETTOKEN"), "{e}");
        // Regression: the config's Debug printed a Slack webhook URL whole.
        let c =
            parse("  - {url: \"https://hooks.slack.com/services/T0/B0/SECRETTOKEN\"}\n").unwrap();
        assert!(!format!("{c:?}").contains("SECRETTOKEN"));
        assert!(format!("{c:?}").contains("https://hooks.slack.com/…"));
    }

    #[test]
    fn an_empty_event_list_and_a_repeated_url_are_refused() {
        let e = parse("  - {url: https://a.example/, events: []}\n  - {url: https://b.example/}\n  - {url: https://b.example/}\n").unwrap_err();
        assert!(e.contains("name at least one event"), "{e}");
        assert!(e.contains("listed twice"), "{e}");
    }
}
