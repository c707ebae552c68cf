//! Caption text as the platform reads it: where the `#hashtags` and `@mentions` are
//! (in UTF-16 code units, as the JavaScript front end counts) and what `third_text` must be.
//!
//! Written from docs/douyin-web.md §5 on its own, not shared with the client.

/// Whether a span is a `#hashtag` or an `@mention`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SpanKind {
    Hashtag,
    Mention,
}

impl SpanKind {
    pub(crate) fn sigil(self) -> char {
        match self {
            SpanKind::Hashtag => '#',
            SpanKind::Mention => '@',
        }
    }

    pub(crate) fn noun(self) -> &'static str {
        match self {
            SpanKind::Hashtag => "hashtag",
            SpanKind::Mention => "mention",
        }
    }
}

/// One hashtag or mention found in a text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Span {
    pub kind: SpanKind,
    /// UTF-16 offset of the `#`/`@`.
    pub start: usize,
    /// UTF-16 offset just past the name.
    pub end: usize,
    /// The name, without the sigil.
    pub name: String,
}

fn ends_name(c: char) -> bool {
    c.is_whitespace() || c == '#' || c == '@'
}

/// Every hashtag and mention in `text`, in order: `#` or `@` followed by one or more
/// characters up to (not including) white space, `#`, `@` or the end of the text.
pub(crate) fn spans(text: &str) -> Vec<Span> {
    let chars: Vec<char> = text.chars().collect();
    let mut found = Vec::new();
    let mut offset = 0; // UTF-16 offset of chars[i]
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let kind = match c {
            '#' => Some(SpanKind::Hashtag),
            '@' => Some(SpanKind::Mention),
            _ => None,
        };
        let name_len = chars[i + 1..]
            .iter()
            .take_while(|&&n| !ends_name(n))
            .count();
        match kind {
            Some(kind) if name_len > 0 => {
                let name: String = chars[i + 1..i + 1 + name_len].iter().collect();
                let end = offset + 1 + name.encode_utf16().count();
                found.push(Span {
                    kind,
                    start: offset,
                    end,
                    name,
                });
                offset = end;
                i += 1 + name_len;
            }
            _ => {
                offset += c.len_utf16();
                i += 1;
            }
        }
    }
    found
}

/// The part of `text` between UTF-16 offsets `start` and `end`, or `None` when the range
/// is empty, reversed, past the end or cuts a surrogate pair.
pub(crate) fn utf16_slice(text: &str, start: usize, end: usize) -> Option<String> {
    let units: Vec<u16> = text.encode_utf16().collect();
    if start >= end || end > units.len() {
        return None;
    }
    String::from_utf16(&units[start..end]).ok()
}

/// `text` with every span removed, runs of white space folded to one space, trimmed.
pub fn third_text(text: &str, spans: &[Span]) -> String {
    let mut kept = String::with_capacity(text.len());
    let mut offset = 0;
    for c in text.chars() {
        let inside = spans.iter().any(|s| s.start <= offset && offset < s.end);
        if !inside {
            kept.push(c);
        }
        offset += c.len_utf16();
    }
    kept.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(start: usize, end: usize, name: &str) -> Span {
        Span {
            kind: SpanKind::Hashtag,
            start,
            end,
            name: name.into(),
        }
    }

    fn at(start: usize, end: usize, name: &str) -> Span {
        Span {
            kind: SpanKind::Mention,
            start,
            end,
            name: name.into(),
        }
    }

    #[test]
    fn seed_example_counts_utf16() {
        assert_eq!(spans("#音乐 遇见就是一种缘分"), vec![tag(0, 3, "音乐")]);
    }

    #[test]
    fn hashtags_and_mentions_in_order() {
        let text = "遇见就是一种缘分 #音乐 @小明";
        assert_eq!(spans(text), vec![tag(9, 12, "音乐"), at(13, 16, "小明")]);
        assert_eq!(third_text(text, &spans(text)), "遇见就是一种缘分");
    }

    #[test]
    fn names_stop_at_sigils_and_white_space() {
        assert_eq!(
            spans("#a#b@c\u{3000}#d"),
            vec![
                tag(0, 2, "a"),
                tag(2, 4, "b"),
                at(4, 6, "c"),
                tag(7, 9, "d")
            ]
        );
    }

    #[test]
    fn lone_sigils_are_plain_text() {
        assert_eq!(spans("# @ a## b@"), vec![]);
        assert_eq!(spans("##x"), vec![tag(1, 3, "x")]);
        assert_eq!(third_text("a # b ##x", &spans("a # b ##x")), "a # b #");
    }

    #[test]
    fn astral_characters_take_two_units() {
        let text = "😀 #🎵x @y";
        assert_eq!(spans(text), vec![tag(3, 7, "🎵x"), at(8, 10, "y")]);
        assert_eq!(utf16_slice(text, 3, 7).as_deref(), Some("#🎵x"));
        assert_eq!(utf16_slice(text, 0, 1), None, "cuts a surrogate pair");
        assert_eq!(utf16_slice(text, 8, 11), None, "past the end");
        assert_eq!(utf16_slice(text, 4, 4), None, "empty");
    }

    #[test]
    fn third_text_folds_white_space() {
        let text = "  a \t#x\n\n b  @y c ";
        assert_eq!(third_text(text, &spans(text)), "a b c");
    }
}
