//! The create_v2 body, parsed and judged: its shape (every block of the page, the JSON
//! strings inside it), the text's spans (a `#tag` without its span is `status_code` 49),
//! at most 5 hashtags, the title length, visibility 0/1/2 and the `timing` window.
//! Tags and mentions are found by douyin-web's rules ([`crate::sandbox::text`]).

use std::collections::BTreeSet;

use serde_json::{Map, Value};

use crate::sandbox::challenges;
use crate::sandbox::text::{self, SpanKind};

/// Most hashtags (occurrences) in a text.
pub(crate) const MAX_HASHTAGS: usize = 5;
/// Most characters of `item_title`.
pub(crate) const MAX_TITLE: usize = 30;
/// The `timing` window, in seconds from now.
pub(crate) const TIMING_MIN_S: i64 = 2 * 3600;
pub(crate) const TIMING_MAX_S: i64 = 14 * 24 * 3600;

/// Why a body is refused: a hashtag without its span (49), or anything else (4).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Invalid {
    MissingSpan(String),
    Bad(String),
}

impl Invalid {
    pub(crate) fn status_code(&self) -> i64 {
        match self {
            Invalid::MissingSpan(_) => 49,
            Invalid::Bad(_) => 4,
        }
    }

    pub(crate) fn message(&self) -> &str {
        match self {
            Invalid::MissingSpan(m) | Invalid::Bad(m) => m,
        }
    }
}

/// A create_v2 body that passed every check.
#[derive(Clone, Debug)]
pub(crate) struct Item {
    pub text: String,
    pub video_id: String,
    pub poster: String,
    /// `custom_cover_image_width` and `_height`.
    pub cover_size: (i64, i64),
    /// 0 = now, else the unix second it goes public.
    pub timing: i64,
}

fn bad(m: impl Into<String>) -> Invalid {
    Invalid::Bad(m.into())
}

fn obj<'a>(v: &'a Value, path: &str) -> Result<&'a Map<String, Value>, Invalid> {
    v.as_object()
        .ok_or_else(|| bad(format!("{path}: must be an object")))
}

fn field<'a>(o: &'a Map<String, Value>, path: &str, key: &str) -> Result<&'a Value, Invalid> {
    o.get(key)
        .ok_or_else(|| bad(format!("{path}.{key}: missing")))
}

fn string<'a>(o: &'a Map<String, Value>, path: &str, key: &str) -> Result<&'a str, Invalid> {
    field(o, path, key)?
        .as_str()
        .ok_or_else(|| bad(format!("{path}.{key}: must be a string")))
}

fn int(o: &Map<String, Value>, path: &str, key: &str) -> Result<i64, Invalid> {
    field(o, path, key)?
        .as_i64()
        .ok_or_else(|| bad(format!("{path}.{key}: must be an integer")))
}

/// A field holding JSON as a string, parsed.
fn json_string(o: &Map<String, Value>, path: &str, key: &str) -> Result<Value, Invalid> {
    let s = string(o, path, key)?;
    serde_json::from_str(s).map_err(|_| bad(format!("{path}.{key}: must be a JSON string")))
}

fn string_list(v: &Value, path: &str) -> Result<Vec<String>, Invalid> {
    let items = v
        .as_array()
        .ok_or_else(|| bad(format!("{path}: must be a JSON list")))?;
    items
        .iter()
        .map(|i| {
            i.as_str()
                .map(str::to_owned)
                .ok_or_else(|| bad(format!("{path}: items must be strings")))
        })
        .collect()
}

/// The challenge id of a hashtag name, if the sandbox knows one.
fn challenge_id(name: &str) -> Option<String> {
    if let Some(&(_, cid, _)) = challenges::BUILT_IN.iter().find(|(n, _, _)| *n == name) {
        return Some(cid.to_owned());
    }
    let keyword = name.strip_suffix("挑战")?;
    challenges::suggest(keyword)
        .into_iter()
        .find(|s| s.cha_name == name)
        .map(|s| s.cid)
}

/// Check `text_extra` against the text; the user ids of the mention spans.
fn check_spans(text: &str, extra: &Value) -> Result<Vec<String>, Invalid> {
    let list = extra
        .as_array()
        .ok_or_else(|| bad("common.text_extra: must be a JSON list"))?;
    let found = text::spans(text);
    let hashtags = found.iter().filter(|s| s.kind == SpanKind::Hashtag).count();
    if hashtags > MAX_HASHTAGS {
        return Err(bad(format!(
            "too many hashtags: {hashtags} (at most {MAX_HASHTAGS})"
        )));
    }
    let mut covered = BTreeSet::new();
    let mut mentions = Vec::new();
    for (i, span) in list.iter().enumerate() {
        let path = format!("common.text_extra[{i}]");
        let o = obj(span, &path)?;
        let start = usize::try_from(int(o, &path, "start")?)
            .map_err(|_| bad(format!("{path}.start: negative")))?;
        let end = usize::try_from(int(o, &path, "end")?)
            .map_err(|_| bad(format!("{path}.end: negative")))?;
        let kind = match int(o, &path, "type")? {
            1 => SpanKind::Hashtag,
            0 => SpanKind::Mention,
            t => {
                return Err(bad(format!(
                    "{path}.type: {t} is neither 1 (hashtag) nor 0 (mention)"
                )));
            }
        };
        let Some(hit) = found
            .iter()
            .find(|s| s.start == start && s.end == end && s.kind == kind)
        else {
            return Err(bad(format!(
                "{path}: no {} spans UTF-16 [{start}, {end}) of the text",
                kind.noun()
            )));
        };
        if !covered.insert(start) {
            return Err(bad(format!("{path}: a second span at {start}")));
        }
        match kind {
            SpanKind::Hashtag => {
                let name = string(o, &path, "hashtag_name")?;
                if name != hit.name {
                    return Err(bad(format!(
                        "{path}.hashtag_name: the text says {}",
                        hit.name
                    )));
                }
                let id = string(o, &path, "hashtag_id")?;
                if id != "0" && Some(id.to_owned()) != challenge_id(name) {
                    return Err(bad(format!(
                        "{path}.hashtag_id: not the id of #{name} (or \"0\")"
                    )));
                }
            }
            SpanKind::Mention => {
                let uid = string(o, &path, "user_id")?;
                if uid.is_empty() || !uid.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(bad(format!(
                        "{path}.user_id: a mention needs the user's id"
                    )));
                }
                mentions.push(uid.to_owned());
            }
        }
    }
    if let Some(missing) = found
        .iter()
        .find(|s| s.kind == SpanKind::Hashtag && !covered.contains(&s.start))
    {
        return Err(Invalid::MissingSpan(format!(
            "#{} has no span in text_extra",
            missing.name
        )));
    }
    Ok(mentions)
}

fn check_common(c: &Map<String, Value>, now_s: i64) -> Result<(String, String, i64), Invalid> {
    let p = "item.common";
    let text = string(c, p, "text")?;
    if string(c, p, "caption")? != text {
        return Err(bad("item.common.caption: must equal text"));
    }
    let title = string(c, p, "item_title")?;
    if title.chars().count() > MAX_TITLE {
        return Err(bad(format!(
            "item.common.item_title: over {MAX_TITLE} characters"
        )));
    }
    let mention_ids = check_spans(text, &json_string(c, p, "text_extra")?)?;
    let mentions = string_list(&json_string(c, p, "mentions")?, "item.common.mentions")?;
    if mentions.iter().collect::<BTreeSet<_>>() != mention_ids.iter().collect::<BTreeSet<_>>() {
        return Err(bad(
            "item.common.mentions: must be the user ids of the mention spans",
        ));
    }
    let names: Vec<String> = text::spans(text)
        .into_iter()
        .filter(|s| s.kind == SpanKind::Hashtag)
        .map(|s| s.name)
        .collect();
    for id in string_list(&json_string(c, p, "challenges")?, "item.common.challenges")? {
        if !names
            .iter()
            .any(|n| challenge_id(n).as_deref() == Some(id.as_str()))
        {
            return Err(bad(format!(
                "item.common.challenges: {id} is not a hashtag of the text"
            )));
        }
    }
    for key in ["activity", "interaction_stickers"] {
        if !json_string(c, p, key)?.is_array() {
            return Err(bad(format!("item.common.{key}: must be a JSON list")));
        }
    }
    for key in ["hashtag_source", "hot_sentence"] {
        string(c, p, key)?;
    }
    let visibility = int(c, p, "visibility_type")?;
    if !(0..=2).contains(&visibility) {
        return Err(bad(
            "item.common.visibility_type: 0 public, 1 friends, 2 private",
        ));
    }
    if !(0..=1).contains(&int(c, p, "download")?) {
        return Err(bad("item.common.download: 0 or 1"));
    }
    let timing = int(c, p, "timing")?;
    if timing != 0 && !(now_s + TIMING_MIN_S..=now_s + TIMING_MAX_S).contains(&timing) {
        return Err(bad(
            "item.common.timing: 0, or between now + 2 h and now + 14 days",
        ));
    }
    let creation_id = string(c, p, "creation_id")?;
    if creation_id.len() != 32 || !creation_id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad("item.common.creation_id: 32 hex digits"));
    }
    if int(c, p, "media_type")? != 4 {
        return Err(bad("item.common.media_type: must be 4 (video)"));
    }
    int(c, p, "music_source")?;
    if !matches!(field(c, p, "music_id")?, Value::Null | Value::String(_)) {
        return Err(bad("item.common.music_id: null or a string"));
    }
    for key in ["poi_id", "poi_name"] {
        if c.get(key).is_some_and(|v| !v.is_string()) {
            return Err(bad(format!("item.common.{key}: must be a string")));
        }
    }
    let video_id = string(c, p, "video_id")?;
    Ok((text.to_owned(), video_id.to_owned(), timing))
}

fn check_cover(c: &Map<String, Value>) -> Result<(String, (i64, i64)), Invalid> {
    let p = "item.cover";
    let poster = string(c, p, "poster")?;
    int(c, p, "poster_delay")?;
    let size = (
        int(c, p, "custom_cover_image_width")?,
        int(c, p, "custom_cover_image_height")?,
    );
    for key in ["cover_tools_info", "cover_tools_extend_info"] {
        json_string(c, p, key)?;
    }
    Ok((poster.to_owned(), size))
}

fn check_mix(m: &Map<String, Value>) -> Result<(), Invalid> {
    if m.is_empty() {
        return Ok(());
    }
    if string(m, "item.mix", "mix_id")?.is_empty() {
        return Err(bad("item.mix.mix_id: empty (use {} without a collection)"));
    }
    int(m, "item.mix", "mix_order")?;
    Ok(())
}

/// Judge a create_v2 body at sandbox time `now_s`.
pub(crate) fn parse(body: &Value, now_s: i64) -> Result<Item, Invalid> {
    let item = obj(field(obj(body, "body")?, "body", "item")?, "item")?;
    let block = |key: &str| obj(field(item, "item", key)?, &format!("item.{key}"));
    for key in ["anchor", "sync", "open_platform", "assistant"] {
        block(key)?;
    }
    let declare = block("declare")?;
    if !json_string(declare, "item.declare", "user_declare_info")?.is_object() {
        return Err(bad("item.declare.user_declare_info: must be a JSON object"));
    }
    check_mix(block("mix")?)?;
    let (poster, cover_size) = check_cover(block("cover")?)?;
    let (text, video_id, timing) = check_common(block("common")?, now_s)?;
    Ok(Item {
        text,
        video_id,
        poster,
        cover_size,
        timing,
    })
}

#[cfg(test)]
mod tests;
