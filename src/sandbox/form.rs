//! Step 5's form, parsed then validated into a [`PostForm`] that can only hold what the
//! platform accepts (docs/douyin-web.md §5). State checks (is the video committed, and whose)
//! are the handler's; everything that the form alone decides is here.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::text::{self, SpanKind};

/// A refused field: `status_code: 2`, with this as `status_msg`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub(crate) struct FieldError {
    pub field: &'static str,
    pub message: String,
}

fn bad(field: &'static str, message: impl Into<String>) -> FieldError {
    FieldError {
        field,
        message: message.into(),
    }
}

/// The fields step 5 must carry, in the seed order.
pub(crate) const FIELDS: [&str; 15] = [
    "video_id",
    "poster",
    "poster_delay",
    "text",
    "text_extra",
    "challenges",
    "mentions",
    "visibility_type",
    "third_text",
    "download",
    "upload_source",
    "mix_id",
    "mix_order",
    "is_preview",
    "timing",
];

/// Scheduled posts must lie this far ahead at least…
pub(crate) const TIMING_MIN_AHEAD_S: i64 = 2 * 3600;
/// …and at most this far.
pub(crate) const TIMING_MAX_AHEAD_S: i64 = 14 * 24 * 3600;

/// A valid step 5 form.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PostForm {
    pub video_id: String,
    pub poster: String,
    pub(crate) poster_delay_ms: u64,
    pub text: String,
    pub challenges: Vec<String>,
    pub mentions: Vec<String>,
    pub visibility_type: u8,
    pub download: bool,
    pub mix: Option<(String, u32)>,
    /// 0 = now, else unix seconds.
    pub timing: i64,
    /// Every field as received.
    pub fields: BTreeMap<String, String>,
}

/// One `text_extra` entry as sent.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    start: usize,
    end: usize,
    user_id: String,
    #[serde(rename = "type")]
    kind: u8,
    hashtag_name: String,
}

fn is_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

fn string_list(field: &'static str, raw: &str) -> Result<Vec<String>, FieldError> {
    serde_json::from_str::<Vec<String>>(raw)
        .map_err(|e| bad(field, format!("not a JSON list of strings ({e})")))
}

fn flag(field: &'static str, raw: &str, allowed: &[&str]) -> Result<u8, FieldError> {
    allowed
        .iter()
        .position(|a| *a == raw)
        .and_then(|_| raw.parse().ok())
        .ok_or_else(|| bad(field, format!("must be one of {allowed:?}, got {raw:?}")))
}

/// Check `text_extra` against the hashtags and mentions that `text` contains; returns the
/// mention user ids in order.
fn check_text_extra(text: &str, raw: &str) -> Result<Vec<String>, FieldError> {
    const F: &str = "text_extra";
    let entries: Vec<Entry> = serde_json::from_str(raw)
        .map_err(|e| bad(F, format!("not a JSON list of entries ({e})")))?;
    for (i, e) in entries.iter().enumerate() {
        let kind = match e.kind {
            1 => SpanKind::Hashtag,
            0 => SpanKind::Mention,
            other => return Err(bad(F, format!("[{i}]: type must be 0 or 1, got {other}"))),
        };
        let Some(slice) = text::utf16_slice(text, e.start, e.end) else {
            return Err(bad(
                F,
                format!(
                    "[{i}]: span {}..{} is not inside text (UTF-16 code units)",
                    e.start, e.end
                ),
            ));
        };
        match kind {
            SpanKind::Hashtag => {
                if !e.user_id.is_empty() {
                    return Err(bad(F, format!("[{i}]: a hashtag's user_id must be \"\"")));
                }
                if slice != format!("#{}", e.hashtag_name) {
                    return Err(bad(
                        F,
                        format!(
                            "[{i}]: text[{}..{}] is {slice:?}, not \"#{}\"",
                            e.start, e.end, e.hashtag_name
                        ),
                    ));
                }
            }
            SpanKind::Mention => {
                if !e.hashtag_name.is_empty() {
                    return Err(bad(
                        F,
                        format!("[{i}]: a mention's hashtag_name must be \"\""),
                    ));
                }
                if !is_digits(&e.user_id) {
                    return Err(bad(F, format!("[{i}]: user_id must be digits")));
                }
                if !slice.starts_with('@') {
                    return Err(bad(
                        F,
                        format!(
                            "[{i}]: text[{}..{}] is {slice:?}, not an @mention",
                            e.start, e.end
                        ),
                    ));
                }
            }
        }
    }
    let spans = text::spans(text);
    for (i, span) in spans.iter().enumerate() {
        let Some(e) = entries.get(i) else {
            return Err(bad(
                F,
                format!(
                    "has {} entries but text contains {} hashtags/mentions; missing {} \"{}{}\" at {}..{}",
                    entries.len(),
                    spans.len(),
                    span.kind.noun(),
                    span.kind.sigil(),
                    span.name,
                    span.start,
                    span.end
                ),
            ));
        };
        let same_kind = (e.kind == 1) == (span.kind == SpanKind::Hashtag);
        if !same_kind || e.start != span.start || e.end != span.end {
            return Err(bad(
                F,
                format!(
                    "[{i}] is {}..{}, but the {i}th hashtag/mention of text is {} \"{}{}\" at {}..{}",
                    e.start,
                    e.end,
                    span.kind.noun(),
                    span.kind.sigil(),
                    span.name,
                    span.start,
                    span.end
                ),
            ));
        }
    }
    if entries.len() > spans.len() {
        return Err(bad(
            F,
            format!(
                "has {} entries but text contains only {} hashtags/mentions",
                entries.len(),
                spans.len()
            ),
        ));
    }
    Ok(entries
        .into_iter()
        .filter(|e| e.kind == 0)
        .map(|e| e.user_id)
        .collect())
}

/// Parse and validate the form's pairs at sandbox time `now_s`.
pub fn validate(pairs: Vec<(String, String)>, now_s: i64) -> Result<PostForm, FieldError> {
    let mut fields = BTreeMap::new();
    for (k, v) in pairs {
        if let Some(&known) = FIELDS.iter().find(|f| **f == k)
            && fields.contains_key(&k)
        {
            return Err(bad(known, "given more than once"));
        }
        fields.entry(k).or_insert(v);
    }
    let get = |name: &'static str| -> Result<String, FieldError> {
        fields
            .get(name)
            .cloned()
            .ok_or_else(|| bad(name, "missing"))
    };
    let video_id = get("video_id")?;
    if video_id.is_empty() {
        return Err(bad("video_id", "empty"));
    }
    let poster = get("poster")?;
    if poster.is_empty() {
        return Err(bad("poster", "empty"));
    }
    let raw_delay = get("poster_delay")?;
    let poster_delay_ms = is_digits(&raw_delay)
        .then(|| raw_delay.parse::<u64>().ok())
        .flatten()
        .ok_or_else(|| {
            bad(
                "poster_delay",
                format!("must be an integer >= 0, got {raw_delay:?}"),
            )
        })?;
    let text = get("text")?;
    let mention_ids = check_text_extra(&text, &get("text_extra")?)?;
    let challenges = string_list("challenges", &get("challenges")?)?;
    if let Some(c) = challenges.iter().find(|c| !is_digits(c)) {
        return Err(bad(
            "challenges",
            format!("{c:?} is not a challenge id (digits)"),
        ));
    }
    let mentions = string_list("mentions", &get("mentions")?)?;
    if mentions != mention_ids {
        return Err(bad(
            "mentions",
            format!(
                "must be the text_extra mentions' user ids in order, {mention_ids:?}; got {mentions:?}"
            ),
        ));
    }
    let visibility_type = flag(
        "visibility_type",
        &get("visibility_type")?,
        &["0", "1", "2"],
    )?;
    let third = get("third_text")?;
    let expected = text::third_text(&text, &text::spans(&text));
    if third != expected {
        return Err(bad(
            "third_text",
            format!(
                "must be {expected:?} (text without hashtags/mentions, white space folded, trimmed); got {third:?}"
            ),
        ));
    }
    let download = flag("download", &get("download")?, &["0", "1"])? == 1;
    flag("upload_source", &get("upload_source")?, &["1"])?;
    let (mix_id, mix_order) = (get("mix_id")?, get("mix_order")?);
    let mix = match (mix_id.is_empty(), mix_order.is_empty()) {
        (true, true) => None,
        (false, false) => {
            if !is_digits(&mix_id) {
                return Err(bad(
                    "mix_id",
                    format!("{mix_id:?} is not a collection id (digits)"),
                ));
            }
            let order = is_digits(&mix_order)
                .then(|| mix_order.parse::<u32>().ok())
                .flatten()
                .filter(|o| *o >= 1)
                .ok_or_else(|| {
                    bad(
                        "mix_order",
                        format!("must be an integer >= 1, got {mix_order:?}"),
                    )
                })?;
            Some((mix_id, order))
        }
        (true, false) => return Err(bad("mix_id", "empty while mix_order is set")),
        (false, true) => return Err(bad("mix_order", "empty while mix_id is set")),
    };
    flag("is_preview", &get("is_preview")?, &["0"])?;
    let raw_timing = get("timing")?;
    let timing: i64 = raw_timing
        .parse()
        .ok()
        .filter(|_| is_digits(&raw_timing))
        .ok_or_else(|| {
            bad(
                "timing",
                format!("must be unix seconds or 0, got {raw_timing:?}"),
            )
        })?;
    if timing != 0 && !(now_s + TIMING_MIN_AHEAD_S..=now_s + TIMING_MAX_AHEAD_S).contains(&timing) {
        return Err(bad(
            "timing",
            format!(
                "{timing} is not between now + 2 h ({}) and now + 14 days ({})",
                now_s + TIMING_MIN_AHEAD_S,
                now_s + TIMING_MAX_AHEAD_S
            ),
        ));
    }
    Ok(PostForm {
        video_id,
        poster,
        poster_delay_ms,
        text,
        challenges,
        mentions,
        visibility_type,
        download,
        mix,
        timing,
        fields,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000;

    fn good() -> Vec<(String, String)> {
        let text = "遇见就是一种缘分 #音乐 @小明";
        [
            ("video_id", "v0200fabc"),
            ("poster", "tos-cn-p-0000/abc"),
            ("poster_delay", "1500"),
            ("text", text),
            (
                "text_extra",
                r#"[{"start":9,"end":12,"user_id":"","type":1,"hashtag_name":"音乐"},{"start":13,"end":16,"user_id":"84990209480","type":0,"hashtag_name":""}]"#,
            ),
            ("challenges", r#"["1550712576368642"]"#),
            ("mentions", r#"["84990209480"]"#),
            ("visibility_type", "0"),
            ("third_text", "遇见就是一种缘分"),
            ("download", "0"),
            ("upload_source", "1"),
            ("mix_id", ""),
            ("mix_order", ""),
            ("is_preview", "0"),
            ("timing", "0"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    }

    fn with(field: &str, value: &str) -> Vec<(String, String)> {
        good()
            .into_iter()
            .map(|(k, v)| {
                if k == field {
                    (k, value.to_owned())
                } else {
                    (k, v)
                }
            })
            .collect()
    }

    fn refused(pairs: Vec<(String, String)>) -> FieldError {
        match validate(pairs, NOW) {
            Ok(form) => panic!("accepted {form:?}"),
            Err(e) => e,
        }
    }

    #[test]
    fn accepts_the_seed_form() {
        let form = validate(good(), NOW).expect("valid");
        assert_eq!(form.mentions, vec!["84990209480"]);
        assert_eq!(form.poster_delay_ms, 1500);
        assert_eq!(form.fields.len(), FIELDS.len());
    }

    #[test]
    fn each_missing_field_is_named() {
        for field in FIELDS {
            let pairs = good().into_iter().filter(|(k, _)| k != field).collect();
            assert_eq!(refused(pairs).field, field);
        }
    }

    #[test]
    fn duplicate_field_is_refused() {
        let mut pairs = good();
        pairs.push(("visibility_type".into(), "1".into()));
        assert_eq!(refused(pairs).field, "visibility_type");
    }

    #[test]
    fn span_off_by_one_is_refused() {
        let e = refused(with(
            "text_extra",
            r#"[{"start":8,"end":11,"user_id":"","type":1,"hashtag_name":"音乐"},{"start":13,"end":16,"user_id":"84990209480","type":0,"hashtag_name":""}]"#,
        ));
        assert_eq!(e.field, "text_extra");
        assert!(e.message.contains("[0]"), "{e}");
    }

    #[test]
    fn utf8_byte_offsets_are_refused() {
        let t = "音乐 #x";
        let mut pairs = with("text", t);
        pairs = pairs
            .into_iter()
            .map(|(k, v)| match k.as_str() {
                "text_extra" => (
                    k,
                    r#"[{"start":7,"end":9,"user_id":"","type":1,"hashtag_name":"x"}]"#.into(),
                ),
                "mentions" => (k, "[]".into()),
                "third_text" => (k, "音乐".into()),
                _ => (k, v),
            })
            .collect();
        assert_eq!(refused(pairs.clone()).field, "text_extra");
        let fixed = pairs
            .into_iter()
            .map(|(k, v)| match k.as_str() {
                "text_extra" => (
                    k,
                    r#"[{"start":3,"end":5,"user_id":"","type":1,"hashtag_name":"x"}]"#.into(),
                ),
                _ => (k, v),
            })
            .collect();
        assert!(validate(fixed, NOW).is_ok());
    }

    #[test]
    fn missing_or_extra_or_reordered_entries_are_refused() {
        let only_tag = r#"[{"start":9,"end":12,"user_id":"","type":1,"hashtag_name":"音乐"}]"#;
        assert!(
            refused(with("text_extra", only_tag))
                .message
                .contains("missing mention")
        );
        let swapped = r#"[{"start":13,"end":16,"user_id":"84990209480","type":0,"hashtag_name":""},{"start":9,"end":12,"user_id":"","type":1,"hashtag_name":"音乐"}]"#;
        assert_eq!(refused(with("text_extra", swapped)).field, "text_extra");
        let wrong_kind = r#"[{"start":9,"end":12,"user_id":"1","type":0,"hashtag_name":""},{"start":13,"end":16,"user_id":"84990209480","type":0,"hashtag_name":""}]"#;
        assert_eq!(refused(with("text_extra", wrong_kind)).field, "text_extra");
        let unknown_key =
            r#"[{"start":9,"end":12,"user_id":"","type":1,"hashtag_name":"音乐","x":1}]"#;
        assert_eq!(refused(with("text_extra", unknown_key)).field, "text_extra");
    }

    #[test]
    fn mentions_must_follow_text_extra() {
        assert_eq!(refused(with("mentions", "[]")).field, "mentions");
        assert_eq!(refused(with("mentions", r#"["1"]"#)).field, "mentions");
        assert_eq!(refused(with("mentions", "84990209480")).field, "mentions");
    }

    #[test]
    fn third_text_must_match() {
        assert_eq!(
            refused(with("third_text", "遇见就是一种缘分 ")).field,
            "third_text"
        );
        assert_eq!(
            refused(with("third_text", "遇见就是一种缘分 #音乐")).field,
            "third_text"
        );
    }

    #[test]
    fn flags_and_ids() {
        assert_eq!(
            refused(with("visibility_type", "3")).field,
            "visibility_type"
        );
        assert_eq!(
            refused(with("visibility_type", "public")).field,
            "visibility_type"
        );
        assert_eq!(refused(with("download", "true")).field, "download");
        assert_eq!(refused(with("upload_source", "2")).field, "upload_source");
        assert_eq!(refused(with("is_preview", "1")).field, "is_preview");
        assert_eq!(refused(with("poster_delay", "-1")).field, "poster_delay");
        assert_eq!(refused(with("poster_delay", "1.5")).field, "poster_delay");
        assert_eq!(
            refused(with("challenges", r#"["音乐"]"#)).field,
            "challenges"
        );
        assert_eq!(
            refused(with("challenges", "[1550712576368642]")).field,
            "challenges"
        );
        assert_eq!(refused(with("video_id", "")).field, "video_id");
    }

    #[test]
    fn mix_needs_both_halves() {
        assert_eq!(
            refused(with("mix_id", "7012345678901234567")).field,
            "mix_order"
        );
        assert_eq!(refused(with("mix_order", "3")).field, "mix_id");
        let both: Vec<_> = with("mix_id", "7012345678901234567")
            .into_iter()
            .map(|(k, v)| {
                if k == "mix_order" {
                    (k, "3".into())
                } else {
                    (k, v)
                }
            })
            .collect();
        let form = validate(both.clone(), NOW).expect("valid");
        assert_eq!(form.mix, Some(("7012345678901234567".into(), 3)));
        let zero: Vec<_> = both
            .into_iter()
            .map(|(k, v)| {
                if k == "mix_order" {
                    (k, "0".into())
                } else {
                    (k, v)
                }
            })
            .collect();
        assert_eq!(refused(zero).field, "mix_order");
    }

    #[test]
    fn timing_window() {
        let at = |t: i64| with("timing", &t.to_string());
        assert!(validate(at(NOW + TIMING_MIN_AHEAD_S), NOW).is_ok());
        assert!(validate(at(NOW + TIMING_MAX_AHEAD_S), NOW).is_ok());
        assert_eq!(refused(at(NOW + TIMING_MIN_AHEAD_S - 1)).field, "timing");
        assert_eq!(refused(at(NOW + TIMING_MAX_AHEAD_S + 1)).field, "timing");
        assert_eq!(refused(with("timing", "-5")).field, "timing");
        assert_eq!(refused(with("timing", "soon")).field, "timing");
    }

    #[test]
    fn text_without_entities_needs_empty_lists() {
        let pairs: Vec<_> = good()
            .into_iter()
            .map(|(k, v)| match k.as_str() {
                "text" => (k, "  plain   text ".into()),
                "text_extra" | "mentions" | "challenges" => (k, "[]".into()),
                "third_text" => (k, "plain text".into()),
                _ => (k, v),
            })
            .collect();
        assert!(validate(pairs, NOW).is_ok());
    }
}
