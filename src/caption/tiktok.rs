//! A caption's `tiktok:` block (design.md §3, §8): the privacy level (no default, as TikTok
//! requires the creator's own choice) and the interaction and branding switches, each
//! optional so that a caption's value wins over the config's `defaults.tiktok`.

use crate::domain::{TiktokOptions, TiktokPrivacy};
use crate::yaml::{Node, Problems};

/// The keys of `tiktok:`.
const KEYS: &[&str] = &[
    "privacy",
    "allow_comment",
    "allow_duet",
    "allow_stitch",
    "brand_organic",
    "branded_content",
];

/// `tiktok:` as written; `None`: left out.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TiktokFields {
    pub privacy: Option<TiktokPrivacy>,
    pub allow_comment: Option<bool>,
    pub allow_duet: Option<bool>,
    pub allow_stitch: Option<bool>,
    pub brand_organic: Option<bool>,
    pub branded_content: Option<bool>,
}

impl TiktokFields {
    /// Whether any field is set.
    pub fn is_set(&self) -> bool {
        *self != TiktokFields::default()
    }

    /// These fields, with the ones left out taken from `defaults`.
    pub fn or(self, defaults: &TiktokFields) -> TiktokFields {
        TiktokFields {
            privacy: self.privacy.or(defaults.privacy),
            allow_comment: self.allow_comment.or(defaults.allow_comment),
            allow_duet: self.allow_duet.or(defaults.allow_duet),
            allow_stitch: self.allow_stitch.or(defaults.allow_stitch),
            brand_organic: self.brand_organic.or(defaults.brand_organic),
            branded_content: self.branded_content.or(defaults.branded_content),
        }
    }

    /// The post's options: every switch off unless turned on (TikTok's rule).
    pub fn options(&self) -> TiktokOptions {
        TiktokOptions {
            privacy: self.privacy,
            allow_comment: self.allow_comment.unwrap_or(false),
            allow_duet: self.allow_duet.unwrap_or(false),
            allow_stitch: self.allow_stitch.unwrap_or(false),
            brand_organic: self.brand_organic.unwrap_or(false),
            branded_content: self.branded_content.unwrap_or(false),
        }
    }
}

/// Reads `tiktok: {…}`, reporting every malformed key.
pub(crate) fn parse(node: &Node<'_>, problems: &mut Problems) -> TiktokFields {
    let mut out = TiktokFields::default();
    let Some(f) = node.fields(KEYS, problems) else {
        return out;
    };
    if let Some(n) = f.get("privacy") {
        out.privacy = n.choice(&TiktokPrivacy::CHOICES, problems);
    }
    let flag = |key: &str, problems: &mut Problems| f.get(key).and_then(|n| n.bool(problems));
    out.allow_comment = flag("allow_comment", problems);
    out.allow_duet = flag("allow_duet", problems);
    out.allow_stitch = flag("allow_stitch", problems);
    out.brand_organic = flag("brand_organic", problems);
    out.branded_content = flag("branded_content", problems);
    out
}
