//! A sink's body: the event as JSON (`json`), as ntfy's publish-by-POST plain text with
//! `Title`, `Tags` and `Priority` headers (`ntfy`), or as a Slack incoming webhook's
//! `{"text": …}` (`slack`). Rendering is pure: the same event always gives the same bytes,
//! so a redelivered body carries the same signature.

use crate::config::NotifyFormat;

use super::event::{Event, EventKind};

/// What is POSTed: the body, its content type, and headers of the format.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Body {
    pub bytes: Vec<u8>,
    pub content_type: &'static str,
    pub headers: Vec<(&'static str, String)>,
}

/// The body for `format`; `json` is the event's stored JSON text, sent as it is.
pub fn render(format: NotifyFormat, event: &Event, json: &str) -> Body {
    match format {
        NotifyFormat::Json => Body {
            bytes: json.as_bytes().to_vec(),
            content_type: "application/json",
            headers: Vec::new(),
        },
        NotifyFormat::Ntfy => Body {
            bytes: message(event).into_bytes(),
            content_type: "text/plain; charset=utf-8",
            headers: vec![
                ("Title", ascii(&title(event))),
                ("Tags", tags(event)),
                ("Priority", priority(event.event).to_string()),
            ],
        },
        NotifyFormat::Slack => {
            let text = format!("*{}*\n{}", title(event), message(event));
            Body {
                bytes: serde_json::json!({ "text": text }).to_string().into_bytes(),
                content_type: "application/json",
                headers: Vec::new(),
            }
        }
    }
}

/// One line saying what happened: "dropcast: published (main)".
pub fn title(event: &Event) -> String {
    let test = if event.test { " [test]" } else { "" };
    let what = event.event.as_str().replace('_', " ");
    match &event.account {
        Some(account) => format!("dropcast: {what} ({account}){test}"),
        None => format!("dropcast: {what}{test}"),
    }
}

/// The readable lines: file, post, reason, hint, hash; each only when known.
pub fn message(event: &Event) -> String {
    let mut lines: Vec<String> = Vec::new();
    if let Some(file) = &event.file {
        lines.push(file.clone());
    }
    if let Some(url) = &event.post_url {
        lines.push(url.clone());
    }
    if let Some(reason) = &event.reason {
        lines.push(reason.clone());
    }
    if let Some(hint) = &event.hint {
        lines.push(format!("To fix: {hint}"));
    }
    let mut tail = Vec::new();
    if let Some(platform) = &event.platform {
        tail.push(platform.clone());
    }
    if let Some(hash) = &event.hash {
        tail.push(format!("sha256 {hash}"));
    }
    tail.push(format!("event {}", event.id));
    lines.push(tail.join(" · "));
    lines.join("\n")
}

/// ntfy's priority: 4 (high) for what needs a person, 3 (default) for the rest.
fn priority(kind: EventKind) -> u8 {
    match kind {
        EventKind::Failed | EventKind::Paused | EventKind::SessionExpiring => 4,
        EventKind::Published | EventKind::Duplicate | EventKind::Resumed => 3,
    }
}

/// ntfy's tags: an emoji short code per kind, then `dropcast` (and `test`).
fn tags(event: &Event) -> String {
    let emoji = match event.event {
        EventKind::Published => "white_check_mark",
        EventKind::Failed => "x",
        EventKind::Duplicate => "repeat",
        EventKind::Paused => "pause_button",
        EventKind::SessionExpiring => "hourglass",
        EventKind::Resumed => "arrow_forward",
    };
    let mut tags = format!("{emoji},dropcast");
    if event.test {
        tags.push_str(",test");
    }
    tags
}

/// A header value of printable ASCII (a title may name a non-ASCII account).
fn ascii(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed() -> Event {
        let mut e = Event::with_id(EventKind::Failed, "abc".into(), 0);
        e.account = Some("main".into());
        e.platform = Some("douyin-web".into());
        e.file = Some("clips/a.mp4".into());
        e.hash = Some("0123456789ab".into());
        e.reason = Some("the platform refused the video".into());
        e.hint = Some("see failed/".into());
        e
    }

    #[test]
    fn json_is_the_stored_text_byte_for_byte() {
        let e = failed();
        let json = e.to_json();
        let body = render(NotifyFormat::Json, &e, &json);
        assert_eq!(body.bytes, json.as_bytes());
        assert_eq!(body.content_type, "application/json");
    }

    #[test]
    fn ntfy_is_plain_text_with_title_tags_and_priority() {
        let mut e = failed();
        e.test = true;
        let body = render(NotifyFormat::Ntfy, &e, &e.to_json());
        let text = String::from_utf8(body.bytes).unwrap();
        assert!(
            text.starts_with("clips/a.mp4\nthe platform refused the video\nTo fix: see failed/\n"),
            "{text}"
        );
        assert!(
            text.ends_with("douyin-web · sha256 0123456789ab · event abc"),
            "{text}"
        );
        let header = |name: &str| {
            body.headers
                .iter()
                .find(|(n, _)| *n == name)
                .unwrap()
                .1
                .clone()
        };
        assert_eq!(header("Title"), "dropcast: failed (main) [test]");
        assert_eq!(header("Tags"), "x,dropcast,test");
        assert_eq!(header("Priority"), "4");
        assert!(body.content_type.starts_with("text/plain"));
    }

    #[test]
    fn slack_is_one_text_field() {
        let e = failed();
        let body = render(NotifyFormat::Slack, &e, &e.to_json());
        let v: serde_json::Value = serde_json::from_slice(&body.bytes).unwrap();
        let text = v["text"].as_str().unwrap();
        assert!(
            text.starts_with("*dropcast: failed (main)*\nclips/a.mp4"),
            "{text}"
        );
        assert_eq!(v.as_object().unwrap().len(), 1);
    }

    #[test]
    fn header_values_stay_ascii() {
        let mut e = failed();
        e.account = Some("工作室".into());
        let body = render(NotifyFormat::Ntfy, &e, &e.to_json());
        assert_eq!(body.headers[0].1, "dropcast: failed (???)");
    }
}
