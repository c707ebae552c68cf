//! What a test or a demo may set about the TikTok simulator (`SandboxOptions::tiktok`):
//! the registered apps, whether the app is audited, lifetimes, processing and moderation
//! delays, and the creator accounts with what their creator_info says.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::rules;

/// One app registered at TikTok for Developers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TiktokApp {
    pub client_key: String,
    pub client_secret: String,
}

/// Why creator_info says "cannot post now" (page §3), as its `error.code`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CannotPost {
    SpamRiskTooManyPosts,
    SpamRiskUserBannedFromPosting,
    ReachedActiveUserCap,
}

impl CannotPost {
    pub fn code(self) -> &'static str {
        match self {
            CannotPost::SpamRiskTooManyPosts => "spam_risk_too_many_posts",
            CannotPost::SpamRiskUserBannedFromPosting => "spam_risk_user_banned_from_posting",
            CannotPost::ReachedActiveUserCap => "reached_active_user_cap",
        }
    }
}

/// A TikTok account that can authorize the app, with what creator_info reports about it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TiktokCreator {
    pub username: String,
    pub nickname: String,
    /// Private accounts are offered `FOLLOWER_OF_CREATOR` instead of `PUBLIC_TO_EVERYONE`.
    pub private: bool,
    pub comment_disabled: bool,
    pub duet_disabled: bool,
    pub stitch_disabled: bool,
    pub max_video_post_duration_sec: u32,
    /// Set: creator_info answers this code (HTTP 200) and init refuses with it (HTTP 403).
    pub cannot_post: Option<CannotPost>,
}

impl TiktokCreator {
    /// A public account with every interaction allowed and the doc's 300 s maximum.
    pub fn public(username: &str, nickname: &str) -> TiktokCreator {
        TiktokCreator {
            username: username.to_owned(),
            nickname: nickname.to_owned(),
            private: false,
            comment_disabled: false,
            duet_disabled: false,
            stitch_disabled: false,
            max_video_post_duration_sec: rules::DEFAULT_MAX_DURATION_SEC,
            cannot_post: None,
        }
    }

    /// A private account whose duet and stitch are disabled.
    pub fn private(username: &str, nickname: &str) -> TiktokCreator {
        TiktokCreator {
            private: true,
            duet_disabled: true,
            stitch_disabled: true,
            ..TiktokCreator::public(username, nickname)
        }
    }
}

/// How the TikTok simulator behaves.
#[derive(Clone, Debug)]
pub struct TiktokOptions {
    /// Registered apps. Empty (the default): any `client_key` is accepted, and the first
    /// `client_secret` presented for it at the token endpoint is its secret from then on.
    pub apps: Vec<TiktokApp>,
    /// `false`: an unaudited app (page §4). Switchable at `/__sandbox/tiktok/app`.
    pub audited: bool,
    pub access_ttl: Duration,
    pub refresh_ttl: Duration,
    /// After the last byte, status stays `PROCESSING_UPLOAD` this long.
    pub processing: Duration,
    /// After processing, `publicaly_available_post_id` stays empty this long.
    pub moderation: Duration,
    /// The accounts; the first one authorizes when the approval names none.
    pub creators: Vec<TiktokCreator>,
}

impl Default for TiktokOptions {
    fn default() -> Self {
        TiktokOptions {
            apps: Vec::new(),
            audited: true,
            access_ttl: rules::ACCESS_TTL,
            refresh_ttl: rules::REFRESH_TTL,
            processing: rules::PROCESSING,
            moderation: rules::MODERATION,
            creators: vec![
                TiktokCreator::public("dropcast_sandbox", "Dropcast Sandbox"),
                TiktokCreator::private("dropcast_private", "Dropcast Private"),
            ],
        }
    }
}
