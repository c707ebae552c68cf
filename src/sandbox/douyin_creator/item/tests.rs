//! The create_v2 body rules, each refusing what it must and accepting what it must.

use serde_json::json;

use super::*;

const NOW: i64 = 1_700_000_000;

/// A valid body for `text` with the given spans (as values).
fn body(text: &str, spans: Value) -> Value {
    json!({"item": {
        "common": {"text": text, "caption": text, "item_title": "标题",
            "text_extra": spans.to_string(), "challenges": "[]", "mentions": "[]",
            "activity": "[]", "hashtag_source": "", "hot_sentence": "", "interaction_stickers": "[]",
            "visibility_type": 0, "download": 0, "timing": 0,
            "creation_id": "0123456789abcdef0123456789abcdef", "media_type": 4,
            "video_id": "v0d00fg10000abc", "music_source": 0, "music_id": null},
        "cover": {"poster": "tos-cn-p-0015/x", "poster_delay": 0, "custom_cover_image_width": 1080,
            "custom_cover_image_height": 1920, "cover_tools_info": "{}", "cover_tools_extend_info": "{}"},
        "mix": {}, "anchor": {}, "sync": {"should_sync": false, "sync_to_toutiao": 0},
        "open_platform": {}, "assistant": {"is_preview": 0, "is_post_assistant": 1},
        "declare": {"user_declare_info": "{}"}}})
}

fn tag(start: u32, end: u32, name: &str) -> Value {
    json!({"start": start, "end": end, "type": 1, "hashtag_name": name, "hashtag_id": "0", "user_id": ""})
}

fn set(mut b: Value, block: &str, key: &str, v: Value) -> Value {
    b["item"][block][key] = v;
    b
}

#[test]
fn a_full_body_with_cjk_emoji_tags_and_a_mention_passes() {
    let text = "😀 遇见 #音乐 @小明";
    let spans = json!([tag(6, 9, "音乐"),
        {"start": 10, "end": 13, "type": 0, "hashtag_name": "", "hashtag_id": "", "user_id": "123"}]);
    let b = set(body(text, spans), "common", "mentions", json!("[\"123\"]"));
    let b = set(b, "common", "challenges", json!("[\"1550712576368642\"]"));
    let item = parse(&b, NOW).expect("valid");
    assert_eq!(item.text, text);
    assert_eq!(item.video_id, "v0d00fg10000abc");
}

#[test]
fn a_hashtag_without_its_span_is_status_49() {
    let got = parse(&body("a #音乐 #旅行", json!([tag(2, 5, "音乐")])), NOW).unwrap_err();
    assert_eq!(got.status_code(), 49, "{got:?}");
    assert!(got.message().contains("旅行"));
}

#[test]
fn spans_must_sit_on_their_tags() {
    for spans in [
        json!([tag(2, 4, "音乐")]),                    // cut short
        json!([tag(2, 5, "旅行")]),                    // wrong name
        json!([tag(2, 5, "音乐"), tag(2, 5, "音乐")]), // twice
        json!([{"start": 2, "end": 5, "type": 3}]),    // unknown type
    ] {
        let got = parse(&body("a #音乐", spans.clone()), NOW).unwrap_err();
        assert_eq!(got.status_code(), 4, "{spans}");
    }
}

#[test]
fn at_most_five_hashtags_counted_as_occurrences() {
    let text5 = "#a #a #a #a #a";
    let spans5: Vec<Value> = (0..5).map(|i| tag(3 * i, 3 * i + 2, "a")).collect();
    assert!(parse(&body(text5, json!(spans5)), NOW).is_ok());
    let text6 = "#a #a #a #a #a #a";
    let spans6: Vec<Value> = (0..6).map(|i| tag(3 * i, 3 * i + 2, "a")).collect();
    let got = parse(&body(text6, json!(spans6)), NOW).unwrap_err();
    assert!(got.message().contains("too many hashtags"), "{got:?}");
}

#[test]
fn visibility_is_0_1_2() {
    for v in 0..=2 {
        assert!(
            parse(
                &set(body("x", json!([])), "common", "visibility_type", json!(v)),
                NOW
            )
            .is_ok()
        );
    }
    assert!(
        parse(
            &set(body("x", json!([])), "common", "visibility_type", json!(3)),
            NOW
        )
        .is_err()
    );
}

#[test]
fn timing_is_now_or_between_2_hours_and_14_days() {
    let at = |t: i64| {
        parse(
            &set(body("x", json!([])), "common", "timing", json!(t)),
            NOW,
        )
    };
    assert!(at(0).is_ok());
    assert!(at(NOW + TIMING_MIN_S).is_ok());
    assert!(at(NOW + TIMING_MAX_S).is_ok());
    assert!(at(NOW + TIMING_MIN_S - 1).is_err());
    assert!(at(NOW + TIMING_MAX_S + 1).is_err());
}

#[test]
fn shape_rules() {
    let ok = body("x", json!([]));
    assert!(parse(&ok, NOW).is_ok());
    let long_title = "一".repeat(31);
    for (block, key, v) in [
        ("common", "caption", json!("y")),
        ("common", "item_title", json!(long_title)),
        ("common", "text_extra", json!([])),
        ("common", "media_type", json!(2)),
        ("common", "creation_id", json!("short")),
        ("common", "mentions", json!("[\"1\"]")),
        ("common", "challenges", json!("[\"1550712576368642\"]")),
        ("declare", "user_declare_info", json!("[]")),
        ("mix", "mix_id", json!("")),
    ] {
        assert!(
            parse(&set(ok.clone(), block, key, v.clone()), NOW).is_err(),
            "{block}.{key} = {v}"
        );
    }
    let mut no_cover = ok.clone();
    no_cover["item"]
        .as_object_mut()
        .expect("object")
        .remove("cover");
    assert!(parse(&no_cover, NOW).is_err());
    let title30 = "一".repeat(30);
    assert!(parse(&set(ok, "common", "item_title", json!(title30)), NOW).is_ok());
}
