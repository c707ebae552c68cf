//! Finding `#hashtags` and `@mentions` in caption text (docs/douyin-web.md §5), pure functions.
//!
//! A hashtag is `#` followed by one or more characters up to (not including) white space,
//! `#`, `@`, or the end of the text; a mention is the same with `@`. Offsets count UTF-16
//! code units (the platform's front end is JavaScript), `end` exclusive, and a span
//! includes its `#` or `@`.

use std::ops::Range;

/// Hashtag or mention.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RawKind {
    Hashtag,
    Mention,
}

/// One `#name` or `@name` found in a text, before mentions are given their ids.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawEntity {
    pub kind: RawKind,
    /// Without the `#`/`@`.
    pub name: String,
    /// UTF-16 offset of the `#`/`@`.
    pub start: usize,
    /// UTF-16 offset just past the name.
    pub end: usize,
    /// The same span in bytes of the Rust string.
    pub bytes: Range<usize>,
}

fn ends_name(c: char) -> bool {
    c.is_whitespace() || c == '#' || c == '@'
}

/// Every hashtag and mention in `text`, in order.
pub fn entities(text: &str) -> Vec<RawEntity> {
    let mut out = Vec::new();
    // (byte offset, utf-16 offset, char) for every char.
    let mut chars = Vec::with_capacity(text.len());
    let mut utf16 = 0usize;
    for (byte, c) in text.char_indices() {
        chars.push((byte, utf16, c));
        utf16 += c.len_utf16();
    }
    let byte_at = |i: usize| chars.get(i).map_or(text.len(), |&(b, _, _)| b);
    let utf16_at = |i: usize| chars.get(i).map_or(utf16, |&(_, u, _)| u);

    let mut i = 0;
    while i < chars.len() {
        let kind = match chars[i].2 {
            '#' => RawKind::Hashtag,
            '@' => RawKind::Mention,
            _ => {
                i += 1;
                continue;
            }
        };
        let mut j = i + 1;
        while j < chars.len() && !ends_name(chars[j].2) {
            j += 1;
        }
        if j == i + 1 {
            // `#` alone, or followed at once by a terminator: no entity.
            i += 1;
            continue;
        }
        out.push(RawEntity {
            kind,
            name: text[byte_at(i + 1)..byte_at(j)].to_owned(),
            start: utf16_at(i),
            end: utf16_at(j),
            bytes: byte_at(i)..byte_at(j),
        });
        i = j;
    }
    out
}

/// `text` with every entity span removed, runs of white space folded to one space, trimmed.
pub fn plain_text(text: &str, entities: &[RawEntity]) -> String {
    let mut kept = String::with_capacity(text.len());
    let mut from = 0;
    for entity in entities {
        if entity.bytes.start >= from && entity.bytes.end <= text.len() {
            kept.push_str(&text[from..entity.bytes.start]);
            // Keep words on either side of a removed span apart.
            kept.push(' ');
            from = entity.bytes.end;
        }
    }
    kept.push_str(&text[from..]);
    kept.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spans(text: &str) -> Vec<(RawKind, &'static str, usize, usize)> {
        entities(text)
            .into_iter()
            .map(|e| (e.kind, &*e.name.leak(), e.start, e.end))
            .collect()
    }

    use RawKind::{Hashtag as H, Mention as M};

    #[test]
    fn seed_example_cjk() {
        assert_eq!(spans("#音乐 遇见就是一种缘分"), vec![(H, "音乐", 0, 3)]);
        let e = entities("#音乐 遇见就是一种缘分");
        assert_eq!(plain_text("#音乐 遇见就是一种缘分", &e), "遇见就是一种缘分");
    }

    #[test]
    fn design_example_tag_and_mention_at_the_end() {
        let text = "遇见就是一种缘分 #音乐 @小明";
        assert_eq!(spans(text), vec![(H, "音乐", 9, 12), (M, "小明", 13, 16)]);
        assert_eq!(plain_text(text, &entities(text)), "遇见就是一种缘分");
    }

    #[test]
    fn emoji_before_a_tag_counts_two_units() {
        // 😀 is one char, two UTF-16 code units.
        let text = "😀 #fun";
        assert_eq!(spans(text), vec![(H, "fun", 3, 7)]);
    }

    #[test]
    fn emoji_inside_a_tag() {
        let text = "a #🎉party b";
        assert_eq!(spans(text), vec![(H, "🎉party", 2, 10)]);
        assert_eq!(plain_text(text, &entities(text)), "a b");
    }

    #[test]
    fn several_tags_back_to_back() {
        let text = "#a#b@c d";
        assert_eq!(
            spans(text),
            vec![(H, "a", 0, 2), (H, "b", 2, 4), (M, "c", 4, 6)]
        );
        assert_eq!(plain_text(text, &entities(text)), "d");
    }

    #[test]
    fn hash_alone_is_no_tag() {
        assert_eq!(spans("#"), vec![]);
        assert_eq!(spans("a # b"), vec![]);
        assert_eq!(spans("@ @"), vec![]);
        assert_eq!(plain_text("a # b", &[]), "a # b");
    }

    #[test]
    fn double_hash_tags_from_the_second() {
        assert_eq!(spans("##a"), vec![(H, "a", 1, 3)]);
        assert_eq!(plain_text("##a", &entities("##a")), "#");
    }

    #[test]
    fn hash_inside_a_word_starts_a_tag() {
        // The rule (docs/douyin-web.md §5, ours) needs no boundary before `#`.
        assert_eq!(spans("a#b"), vec![(H, "b", 1, 3)]);
        assert_eq!(plain_text("a#b", &entities("a#b")), "a");
    }

    #[test]
    fn tag_ends_at_any_unicode_white_space() {
        // U+3000 IDEOGRAPHIC SPACE, tab, newline.
        let text = "#一\u{3000}#二\t#三\n@四";
        assert_eq!(
            spans(text),
            vec![
                (H, "一", 0, 2),
                (H, "二", 3, 5),
                (H, "三", 6, 8),
                (M, "四", 9, 11)
            ]
        );
        assert_eq!(plain_text(text, &entities(text)), "");
    }

    #[test]
    fn plain_text_folds_and_trims_white_space() {
        let text = "  hello   #x\n\n world  @y  ";
        assert_eq!(plain_text(text, &entities(text)), "hello world");
        assert_eq!(plain_text("no tags here", &[]), "no tags here");
        assert_eq!(plain_text("", &[]), "");
    }

    #[test]
    fn entity_text_matches_its_utf16_span() {
        let text = "前😀#音🎵乐 mid @名字😀 end#t";
        let utf16: Vec<u16> = text.encode_utf16().collect();
        for e in entities(text) {
            let span = String::from_utf16(&utf16[e.start..e.end]).expect("valid span");
            assert_eq!(span, &text[e.bytes.clone()]);
            let sigil = if e.kind == H { '#' } else { '@' };
            assert_eq!(span, format!("{sigil}{}", e.name));
        }
        assert_eq!(entities(text).len(), 3);
    }

    proptest::proptest! {
        #[test]
        fn spans_are_exact_and_maximal(text in "[#@ a音😀\u{3000}\n]{0,24}") {
            let utf16: Vec<u16> = text.encode_utf16().collect();
            let mut last_end = 0;
            for e in entities(&text) {
                proptest::prop_assert!(e.start >= last_end && e.end > e.start + 1);
                last_end = e.end;
                let span = String::from_utf16(&utf16[e.start..e.end]).expect("whole chars");
                proptest::prop_assert_eq!(&span, &text[e.bytes.clone()]);
                proptest::prop_assert!(!e.name.is_empty());
                proptest::prop_assert!(!e.name.chars().any(ends_name));
                // Maximal: the name stops only at a terminator or the end.
                proptest::prop_assert!(text[e.bytes.end..].chars().next().is_none_or(ends_name));
            }
            let plain = plain_text(&text, &entities(&text));
            proptest::prop_assert_eq!(plain.trim(), plain.as_str());
            proptest::prop_assert!(!plain.contains("  "));
        }
    }
}
