//! The log on stderr (tracing): the filter from `RUST_LOG`, text or JSON, and no raw control
//! characters in text lines, so a file name cannot rewrite the terminal or forge log lines.

use std::fmt::Write as _;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::field::MakeExt;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    Text,
    Json,
}

/// Installs the global subscriber: `RUST_LOG`, else `default`, as the filter.
pub(crate) fn init(format: Format, default: &str, ansi: bool) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
    match format {
        // Every field (the message too) is escaped: a name like `a\x1b[2Jb.mp4` is logged
        // as `a\u{1b}[2Jb.mp4`, and a newline in a name cannot start a fake line.
        Format::Text => builder
            .fmt_fields(
                tracing_subscriber::fmt::format::debug_fn(|w, field, value| {
                    let raw = format!("{value:?}");
                    let text = escape_controls(&raw);
                    if field.name() == "message" {
                        w.write_str(&text)
                    } else {
                        write!(w, "{field}={text}")
                    }
                })
                .delimited(" "),
            )
            .init(),
        // JSON strings escape control characters already.
        Format::Json => builder.json().init(),
    }
}

/// `text` with control characters (and the bidirectional overrides that reorder what a
/// terminal shows) written as escapes; everything else, CJK and emoji included, unchanged.
pub(crate) fn escape_controls(text: &str) -> std::borrow::Cow<'_, str> {
    let unsafe_char =
        |c: char| c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
    if !text.chars().any(unsafe_char) {
        return text.into();
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if unsafe_char(c) {
            let _ = match c {
                '\n' => out.write_str("\\n"),
                '\r' => out.write_str("\\r"),
                '\t' => out.write_str("\\t"),
                _ => write!(out, "\\u{{{:x}}}", c as u32),
            };
        } else {
            out.push(c);
        }
    }
    out.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped_and_the_rest_kept() {
        assert_eq!(escape_controls("遇见 clip.mp4"), "遇见 clip.mp4");
        assert_eq!(
            escape_controls("a\u{1b}[2Jb\nc\td\u{7f}"),
            "a\\u{1b}[2Jb\\nc\\td\\u{7f}"
        );
        assert_eq!(escape_controls("x\u{202e}4pm.exe"), "x\\u{202e}4pm.exe");
    }
}
