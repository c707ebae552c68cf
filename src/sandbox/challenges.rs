//! The sandbox's built-in challenges (hashtags with ids) and its suggestion list for
//! docs/douyin-web.md §6b. Suggestions include near misses, so a client must pick the exact name.

use serde::Serialize;
use sha2::{Digest, Sha256};

/// Built-in challenges: name, id, view count.
pub(crate) const BUILT_IN: &[(&str, &str, u64)] = &[
    ("音乐", "1550712576368642", 98_765_432_100),
    ("古典音乐", "1563401234567890", 1_234_567_890),
    ("音乐分享", "1571234567890123", 5_678_901_234),
    ("旅行", "1566402359587846", 45_678_901_234),
    ("旅行vlog", "1652345678901234", 3_456_789_012),
    ("美食", "1565799542374414", 76_543_210_987),
    ("美食探店", "1649876543210987", 8_765_432_109),
    ("搞笑", "1563928399123458", 87_654_321_098),
    ("dance", "1580123456789012", 9_876_543_210),
    ("dancechallenge", "1600123456789012", 876_543_210),
    ("宠物", "1566110221188102", 23_456_789_012),
    ("日常", "1587654321098765", 34_567_890_123),
];

/// One `sug_list` entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub(crate) struct Suggestion {
    pub cha_name: String,
    pub cid: String,
    pub view_count: u64,
}

/// A stable 16-digit id for a made-up suggestion.
fn made_up_cid(name: &str) -> String {
    let digest = Sha256::digest(name.as_bytes());
    let n = u64::from_be_bytes([
        digest[0], digest[1], digest[2], digest[3], digest[4], digest[5], digest[6], digest[7],
    ]);
    format!("17{:014}", n % 100_000_000_000_000)
}

/// Suggestions for `keyword`: a made-up `<keyword>挑战` first (never an exact match),
/// then every built-in challenge whose name contains the keyword (ASCII case ignored),
/// the exact one (if any) last.
pub(crate) fn suggest(keyword: &str) -> Vec<Suggestion> {
    let needle = keyword.to_lowercase();
    let made_up = format!("{keyword}挑战");
    let mut list = vec![Suggestion {
        cid: made_up_cid(&made_up),
        cha_name: made_up,
        view_count: 1_024,
    }];
    let mut exact = None;
    for &(name, cid, views) in BUILT_IN {
        if !name.to_lowercase().contains(&needle) {
            continue;
        }
        let s = Suggestion {
            cha_name: name.to_owned(),
            cid: cid.to_owned(),
            view_count: views,
        };
        if name == keyword {
            exact = Some(s);
        } else if name != list[0].cha_name {
            list.push(s);
        }
    }
    list.extend(exact);
    list
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_match_is_there_but_not_first() {
        let list = suggest("音乐");
        assert!(list.len() >= 3);
        assert_ne!(list[0].cha_name, "音乐");
        let exact: Vec<_> = list.iter().filter(|s| s.cha_name == "音乐").collect();
        assert_eq!(exact.len(), 1);
        assert_eq!(exact[0].cid, "1550712576368642");
        assert!(list.iter().any(|s| s.cha_name == "古典音乐"));
    }

    #[test]
    fn unknown_keyword_has_no_exact_match() {
        let list = suggest("没有这个");
        assert!(!list.is_empty());
        assert!(list.iter().all(|s| s.cha_name != "没有这个"));
        assert!(
            list.iter()
                .all(|s| s.cid.len() == 16 && s.cid.bytes().all(|b| b.is_ascii_digit()))
        );
    }

    #[test]
    fn case_differs_is_not_exact() {
        let list = suggest("Dance");
        assert!(list.iter().any(|s| s.cha_name == "dance"));
        assert!(list.iter().all(|s| s.cha_name != "Dance"));
    }
}
