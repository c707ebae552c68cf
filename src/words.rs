//! The words the pipeline and every view share: [`FailureClass`] (why a job ended without a post) and
//! [`Stage`] (what a job in flight is doing), each serialized to the strings the ledger,
//! receipts, `status --json` and `/api/jobs` have always used, and the one wording per
//! class that every view shows when nothing more precise (a receipt's hint) is known.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::domain::StepName;

/// Why a job failed, was abandoned or is unconfirmed, as the ledger's `error_class`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FailureClass {
    /// The platform could not be reached (`PublishError::Transient`).
    Transient,
    /// The platform asked to slow down.
    RateLimited,
    /// The account lost its right to post: its login expired or was refused, or the
    /// platform blocks it for now.
    AuthExpired,
    /// The platform refused the post.
    Rejected,
    /// It is not known what the platform did.
    Unknown,
    /// The video changed while it was being uploaded.
    Changed,
    /// The caption is invalid.
    Caption,
    /// The video cannot be read or is not a video.
    Video,
    /// Failed in an earlier run; its archive is being finished.
    Earlier,
    /// The ledger's class of an abandoned job.
    Abandoned,
    /// The ledger's class of an unconfirmed job.
    Unconfirmed,
    /// A class this version does not know (a newer ledger, a new backend): kept verbatim.
    Other(String),
}

impl FailureClass {
    /// The classes a platform error can have, always exported by `/metrics`.
    pub const PUBLISH: [FailureClass; 5] = [
        FailureClass::Transient,
        FailureClass::RateLimited,
        FailureClass::AuthExpired,
        FailureClass::Rejected,
        FailureClass::Unknown,
    ];

    const KNOWN: [FailureClass; 11] = [
        FailureClass::Transient,
        FailureClass::RateLimited,
        FailureClass::AuthExpired,
        FailureClass::Rejected,
        FailureClass::Unknown,
        FailureClass::Changed,
        FailureClass::Caption,
        FailureClass::Video,
        FailureClass::Earlier,
        FailureClass::Abandoned,
        FailureClass::Unconfirmed,
    ];

    pub fn as_str(&self) -> &str {
        match self {
            FailureClass::Transient => "transient",
            FailureClass::RateLimited => "rate_limited",
            FailureClass::AuthExpired => "auth_expired",
            FailureClass::Rejected => "rejected",
            FailureClass::Unknown => "unknown",
            FailureClass::Changed => "changed",
            FailureClass::Caption => "caption",
            FailureClass::Video => "video",
            FailureClass::Earlier => "earlier",
            FailureClass::Abandoned => "abandoned",
            FailureClass::Unconfirmed => "unconfirmed",
            FailureClass::Other(s) => s,
        }
    }

    /// Never fails: an unknown class is kept as [`FailureClass::Other`].
    pub fn parse(s: &str) -> FailureClass {
        FailureClass::KNOWN
            .into_iter()
            .find(|c| c.as_str() == s)
            .unwrap_or_else(|| FailureClass::Other(s.to_string()))
    }

    /// What the user can do, when no receipt says more.
    pub fn hint(&self) -> &'static str {
        match self {
            FailureClass::Caption => {
                "Fix the caption (`dropcast validate <file>` shows every problem)."
            }
            FailureClass::AuthExpired => {
                "The account's cookie has expired: log in to creator.douyin.com and renew it."
            }
            FailureClass::Rejected => "The platform refused this post; fix what the reason names.",
            FailureClass::Transient | FailureClass::RateLimited => {
                "The platform could not be reached or was busy."
            }
            FailureClass::Unknown => "Check the account's posts before trying again.",
            FailureClass::Changed | FailureClass::Abandoned => {
                "The video changed while it was being published; the new version is a new job."
            }
            FailureClass::Unconfirmed => {
                "Step 5 was sent but its answer was lost, so it is not known whether the post \
                 exists: check the account's posts on Douyin (creator.douyin.com) and retry \
                 only if the video is not there."
            }
            FailureClass::Video | FailureClass::Earlier | FailureClass::Other(_) => {
                "See the error receipt beside the video in failed/."
            }
        }
    }
}

impl fmt::Display for FailureClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for FailureClass {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// What a job in flight is doing, as the live state names it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Stage {
    /// Hashing the video.
    #[default]
    Hash,
    /// Claiming it in the ledger.
    Ledger,
    /// One of the backend's steps, or `publish`.
    Step(StepName),
    /// Moving the files out of the inbox.
    Archive,
    /// A step this version does not know (a backend's own): kept verbatim.
    Other(String),
}

impl Stage {
    pub fn as_str(&self) -> &str {
        match self {
            Stage::Hash => "hash",
            Stage::Ledger => "ledger",
            Stage::Step(step) => step.as_str(),
            Stage::Archive => "archive",
            Stage::Other(s) => s,
        }
    }

    /// Never fails: an unknown stage is kept as [`Stage::Other`].
    pub fn parse(s: &str) -> Stage {
        match s {
            "hash" => Stage::Hash,
            "ledger" => Stage::Ledger,
            "archive" => Stage::Archive,
            other => StepName::parse(other)
                .map(Stage::Step)
                .unwrap_or_else(|| Stage::Other(other.to_string())),
        }
    }
}

impl<'de> Deserialize<'de> for Stage {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(|s| Stage::parse(&s))
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Stage {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_class_reads_back_and_serializes_as_today() {
        for class in FailureClass::KNOWN {
            let text = class.as_str().to_string();
            assert_eq!(FailureClass::parse(&text), class);
            assert_eq!(serde_json::to_value(&class).unwrap(), text);
        }
        let odd = FailureClass::parse("incomplete");
        assert_eq!(odd, FailureClass::Other("incomplete".into()));
        assert_eq!(serde_json::to_value(&odd).unwrap(), "incomplete");
    }

    #[test]
    fn each_class_has_one_wording() {
        use FailureClass as C;
        assert!(C::Caption.hint().contains("dropcast validate"));
        assert!(C::AuthExpired.hint().contains("cookie"));
        assert!(C::Rejected.hint().contains("refused"));
        assert_eq!(C::Transient.hint(), C::RateLimited.hint());
        assert!(C::Unknown.hint().contains("Check the account's posts"));
        assert_eq!(C::Changed.hint(), C::Abandoned.hint());
        assert!(C::Unconfirmed.hint().contains("Douyin"));
        assert!(C::Video.hint().contains("failed/"));
        assert_eq!(C::Other("x".into()).hint(), C::Earlier.hint());
    }

    #[test]
    fn stages_read_back_and_keep_unknown_names() {
        for name in [
            "hash",
            "ledger",
            "credentials",
            "upload_params",
            "upload",
            "commit",
            "publish",
            "archive",
        ] {
            assert_eq!(Stage::parse(name).as_str(), name);
            assert_eq!(serde_json::to_value(Stage::parse(name)).unwrap(), name);
        }
        assert_eq!(
            Stage::parse("upload"),
            Stage::Step(StepName::parse("upload").unwrap())
        );
        assert_eq!(
            Stage::parse("Not a step"),
            Stage::Other("Not a step".into())
        );
    }
}
