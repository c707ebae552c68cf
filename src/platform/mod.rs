//! The Douyin platform as the pipeline sees it: accounts, the steps of publishing in
//! domain terms, and the error classes of docs/douyin-web.md §7.
//!
//! Only this module knows URLs and wire types (they live in `wire`); the client itself
//! is [`DouyinWeb`]. Every type here that holds a secret redacts it in `Debug`, and no
//! error message ever contains one.

mod answer;
mod backend;
mod backoff;
mod body;
mod douyin_creator;
mod douyin_web;
pub mod in_page;
mod multipart;
mod ratelimit;
mod saved;
pub(crate) mod tiktok;
mod wire;

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::secret::Secret;

pub(crate) use backend::{Backend, Committed, Observer, StepFailure, UploadJob};
pub use backend::{BoxFuture, Created};
#[allow(unused_imports)]
pub(crate) use douyin_creator::DouyinCreatorBackend;
pub use douyin_creator::{
    CommittedVideo, CreateExtras, CreatorSettings, Declaration, DouyinCreator, StsCredentials,
    UploadSlot,
};
pub use douyin_web::DouyinWeb;
pub(crate) use douyin_web::{DouyinWebBackend, UploadSettings};
pub use multipart::{PartDone, part_layout};
pub use saved::{SavedUpload, SavedUploadError};

/// A `douyin-web` post by its `aweme_id`, with its public address.
pub fn douyin_post(aweme_id: &str) -> crate::domain::Post {
    douyin_web::post(aweme_id)
}

/// The steps a platform's backend records before the post, in order (its
/// [`Backend::steps`]): what `status` names as a job's next step.
pub(crate) fn steps_of(platform: crate::domain::Platform) -> &'static [crate::domain::StepName] {
    match platform {
        crate::domain::Platform::DouyinWeb => douyin_web::STEPS,
        crate::domain::Platform::Douyin => douyin_creator::STEPS,
        crate::domain::Platform::Tiktok => tiktok::STEPS,
    }
}

/// What `platform` accepts of a video file, where its protocol page says
/// (`None`: nothing stated, the platform judges for itself).
pub(crate) fn media_limits(
    platform: crate::domain::Platform,
) -> Option<&'static crate::media::limits::MediaLimits> {
    match platform {
        crate::domain::Platform::Tiktok => Some(&tiktok::MEDIA_LIMITS),
        crate::domain::Platform::DouyinWeb | crate::domain::Platform::Douyin => None,
    }
}

/// `platform`'s own timer for scheduled posts, where it has one (`None`: TikTok's
/// Content Posting API has none, docs/tiktok.md): the posting plan sends a post ahead
/// with its slot when the slot lies in this window.
pub(crate) fn post_timer(platform: crate::domain::Platform) -> Option<crate::plan::PostTimer> {
    match platform {
        crate::domain::Platform::DouyinWeb => Some(wire::POST_TIMER),
        crate::domain::Platform::Douyin => Some(douyin_creator::wire::POST_TIMER),
        crate::domain::Platform::Tiktok => None,
    }
}

/// Whether `platform` posts as its upload completes (TikTok), so that a planned slot must
/// be waited for before the upload starts; the Douyins post with a request of their own
/// (step 5), sent after the upload.
pub(crate) fn posts_with_upload(platform: crate::domain::Platform) -> bool {
    match platform {
        crate::domain::Platform::DouyinWeb | crate::domain::Platform::Douyin => false,
        crate::domain::Platform::Tiktok => tiktok::wire::POSTS_WITH_UPLOAD,
    }
}

/// One configured Douyin account: its name, cookie and the csrf token step 5 sends.
#[derive(Clone)]
pub struct Account {
    pub name: String,
    cookie: Secret,
    csrf: Secret,
}

/// Why an account cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AccountError {
    // The caller names the account (`account `main`: …`); these say only what is wrong.
    #[error("the cookie is empty")]
    EmptyCookie(String),
    #[error("the cookie holds characters that cannot go into an HTTP header")]
    CookieNotAHeader(String),
    #[error(
        "the cookie has no `sessionid=` entry, so it is not a logged-in session: copy the whole Cookie header of a logged-in creator.douyin.com page"
    )]
    NoSessionId(String),
    #[error("the cookie has no `csrf_token=` entry and no `csrf_token` is configured")]
    NoCsrfToken(String),
    #[error("the csrf token holds characters that cannot go into an HTTP header")]
    CsrfNotAHeader(String),
}

impl Account {
    /// The csrf token is the cookie's `csrf_token=` entry, else `csrf_override`, else an error.
    pub fn new(
        name: &str,
        cookie: Secret,
        csrf_override: Option<Secret>,
    ) -> Result<Account, AccountError> {
        let trimmed = cookie.expose().trim();
        if trimmed.is_empty() {
            return Err(AccountError::EmptyCookie(name.to_owned()));
        }
        if !is_header_value(trimmed) {
            return Err(AccountError::CookieNotAHeader(name.to_owned()));
        }
        if cookie_entry(trimmed, wire::COOKIE_SESSION_NAME).is_none() {
            return Err(AccountError::NoSessionId(name.to_owned()));
        }
        let csrf = match csrf_from_cookie(trimmed) {
            Some(token) => Secret::new(token),
            None => match csrf_override {
                Some(token) if !token.expose().trim().is_empty() => {
                    Secret::new(token.expose().trim())
                }
                _ => return Err(AccountError::NoCsrfToken(name.to_owned())),
            },
        };
        if !is_header_value(csrf.expose()) {
            return Err(AccountError::CsrfNotAHeader(name.to_owned()));
        }
        Ok(Account {
            name: name.to_owned(),
            cookie: Secret::new(trimmed),
            csrf,
        })
    }

    /// An account whose session lives in a browser profile (`platform: douyin`): it has
    /// no cookie of its own (its requests to the creator site go through its page), so
    /// its cookie and csrf token are empty and only its name is used.
    pub fn browser_session(name: &str) -> Account {
        Account {
            name: name.to_owned(),
            cookie: Secret::new(""),
            csrf: Secret::new(""),
        }
    }

    pub(crate) fn cookie(&self) -> &Secret {
        &self.cookie
    }

    pub(crate) fn csrf(&self) -> &Secret {
        &self.csrf
    }
}

impl fmt::Debug for Account {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Account")
            .field("name", &self.name)
            .field("cookie", &self.cookie)
            .field("csrf", &self.csrf)
            .finish()
    }
}

/// The value of the cookie entry named exactly `csrf_token`, if present and non-empty.
fn csrf_from_cookie(cookie: &str) -> Option<&str> {
    cookie_entry(cookie, wire::COOKIE_CSRF_NAME)
}

/// The non-empty value of the cookie's entry named exactly `name`.
fn cookie_entry<'a>(cookie: &'a str, name: &str) -> Option<&'a str> {
    cookie
        .split(';')
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, _)| k.trim() == name)
        .map(|(_, v)| v.trim())
        .filter(|v| !v.is_empty())
}

fn is_header_value(s: &str) -> bool {
    reqwest::header::HeaderValue::from_str(s).is_ok()
}

/// Where the platform is and how patient to be with it.
#[derive(Clone, Debug)]
pub struct ClientSettings {
    pub creator_url: reqwest::Url,
    pub vod_url: reqwest::Url,
    /// `http` or `https`: the scheme of the TOS object URL (docs/douyin-web.md §3).
    pub upload_scheme: String,
    /// Per request; uploads get extra time in proportion to their size.
    pub timeout: Duration,
    pub retry: RetryPolicy,
    /// Bytes per second over all uploads of this client (whole files and parts);
    /// `None` = unlimited.
    pub max_rate: Option<u64>,
}

/// How steps are retried inside the client on transient and rate-limit errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Tries in all, the first included (0 counts as 1).
    pub attempts: u32,
    pub initial: Duration,
    /// Cap on one wait, `Retry-After` included.
    pub max: Duration,
}

/// Why a client cannot be built from its settings.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("platform.upload_scheme must be `http` or `https`, not `{0}`")]
    UploadScheme(String),
    #[error("upload.max_rate must be at least 1 byte per second")]
    MaxRate,
    #[error("platform.{key} must be an http or https URL, not `{url}`")]
    BaseUrl { key: &'static str, url: String },
    #[error("cannot build the HTTP client: {0}")]
    Http(#[source] reqwest::Error),
}

/// Step 1's result: the VOD access key and its signature.
#[derive(Clone)]
pub struct UploadCredentials {
    ak: Secret,
    auth: Secret,
    expires_at: Option<i64>,
}

impl UploadCredentials {
    /// When `auth` expires, if it says so.
    pub fn expires_at(&self) -> Option<SystemTime> {
        let secs = u64::try_from(self.expires_at?).ok()?;
        UNIX_EPOCH.checked_add(Duration::from_secs(secs))
    }
}

impl fmt::Debug for UploadCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UploadCredentials")
            .field("ak", &self.ak)
            .field("auth", &self.auth)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// Step 2's result: where and how to upload.
#[derive(Clone)]
pub struct UploadTarget {
    pub vid: String,
    /// A path (`tos-cn-v-0000/c747…`), `/` included.
    pub oid: String,
    /// `{upload_scheme}://{tos_host}/{oid}`, the `/` in `oid` intact.
    object_url: reqwest::Url,
    tos_sign: Secret,
    token: Secret,
    extra_param: String,
}

impl fmt::Debug for UploadTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UploadTarget")
            .field("vid", &self.vid)
            .field("oid", &self.oid)
            .field("object_url", &self.object_url.as_str())
            .field("tos_sign", &self.tos_sign)
            .field("token", &self.token)
            .finish_non_exhaustive()
    }
}

/// Step 4's result: a committed video, ready to be posted. The ledger stores it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Upload {
    pub vid: String,
    pub oid: String,
    pub poster_oid: Option<String>,
    pub width: u32,
    pub height: u32,
    pub duration_secs: f64,
}

/// Which right to post lapsed. The first three pause the account (its videos stay
/// queued) until it works again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expired {
    /// The account's cookie or browser session: the account needs a fresh login.
    Cookie,
    /// The account's authorization of the app (OAuth tokens refused, a scope missing, the
    /// app's credentials refused): `dropcast login` again.
    Authorization,
    /// The platform says the account cannot post for now (a daily cap): it resumes when
    /// the platform lets it.
    Posting,
    /// `auth` (step 1) or `tos_sign`/`token` (step 2): redo steps 1–2.
    UploadCredentials,
}

impl Expired {
    /// Whether the account pauses (nothing is sent for it until it works again).
    pub(crate) fn pauses_account(self) -> bool {
        !matches!(self, Expired::UploadCredentials)
    }
}

impl fmt::Display for Expired {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Expired::Cookie => "cookie expired",
            Expired::Authorization => "authorization refused",
            Expired::Posting => "posting blocked for now",
            Expired::UploadCredentials => "upload credentials expired",
        })
    }
}

/// The error classes of docs/douyin-web.md §7. `Display` never contains a secret.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum PublishError {
    /// Worth retrying later: connection trouble, a timeout before any response, a 5xx.
    #[error("transient: {reason}")]
    Transient {
        reason: String,
        retry_after: Option<Duration>,
    },
    /// Posting too often (HTTP 429 or `status_code` 7): wait, then retry.
    #[error("rate limited{}", fmt_after(*retry_after))]
    RateLimited { retry_after: Option<Duration> },
    #[error("{what}: {reason}")]
    AuthExpired { what: Expired, reason: String },
    /// The platform said no; retrying will not help.
    #[error("rejected: {reason}")]
    Rejected { reason: String },
    /// Step 5 was sent and no answer came: reconcile (docs/douyin-web.md §6a), never resend blindly.
    #[error("outcome unknown: {reason}")]
    Unknown { reason: String },
    /// The local video is not what was fingerprinted any more (written to, shortened or
    /// replaced while it was being read for the upload): nothing was stored from it; the
    /// job must start over from the file as it is now.
    #[error("the video changed: {reason}")]
    Changed { reason: String },
}

fn fmt_after(after: Option<Duration>) -> String {
    match after {
        Some(d) => format!(" (retry after {})", humantime::format_duration(d)),
        None => String::new(),
    }
}

impl PublishError {
    /// `transient`, `rate_limited`, `auth_expired`, `rejected`, `unknown` or `changed`.
    pub fn class(&self) -> &'static str {
        match self {
            PublishError::Transient { .. } => "transient",
            PublishError::RateLimited { .. } => "rate_limited",
            PublishError::AuthExpired { .. } => "auth_expired",
            PublishError::Rejected { .. } => "rejected",
            PublishError::Unknown { .. } => "unknown",
            PublishError::Changed { .. } => "changed",
        }
    }

    /// How long the platform asked us to wait, if it did.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            PublishError::Transient { retry_after, .. }
            | PublishError::RateLimited { retry_after } => *retry_after,
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csrf_comes_from_the_cookie_entry_named_exactly() {
        let a = Account::new(
            "main",
            Secret::new("passport_csrf_token=no; sessionid=s; csrf_token=yes"),
            Some(Secret::new("override")),
        )
        .unwrap();
        assert_eq!(a.csrf().expose(), "yes");
    }

    #[test]
    fn csrf_override_when_cookie_has_none() {
        let a = Account::new("main", Secret::new("sessionid=s"), Some(Secret::new("cfg"))).unwrap();
        assert_eq!(a.csrf().expose(), "cfg");
        assert_eq!(
            Account::new("main", Secret::new("sessionid=s; csrf_token="), None).unwrap_err(),
            AccountError::NoCsrfToken("main".into())
        );
        assert_eq!(
            Account::new("main", Secret::new("  "), None).unwrap_err(),
            AccountError::EmptyCookie("main".into())
        );
        assert_eq!(
            Account::new("main", Secret::new("a=b\ncsrf_token=x"), None).unwrap_err(),
            AccountError::CookieNotAHeader("main".into())
        );
    }

    // Regression (issue 9, small): a cookie without `sessionid` was reported as "no csrf_token".
    #[test]
    fn a_cookie_without_a_session_says_so() {
        let err = Account::new("main", Secret::new("ttwid=1; odin_tt=2"), None).unwrap_err();
        assert_eq!(err, AccountError::NoSessionId("main".into()));
        assert!(err.to_string().contains("no `sessionid=`"), "{err}");
        assert!(
            !err.to_string().contains("account `main`"),
            "the caller names it: {err}"
        );
        let err = Account::new("main", Secret::new("csrf_token=x"), None).unwrap_err();
        assert_eq!(err, AccountError::NoSessionId("main".into()));
    }

    #[test]
    fn debug_redacts_every_secret() {
        let a = Account::new(
            "main",
            Secret::new("sessionid=SEKRIT; csrf_token=CSRF"),
            None,
        )
        .unwrap();
        let creds = UploadCredentials {
            ak: Secret::new("AKAK"),
            auth: Secret::new("AUTHAUTH"),
            expires_at: Some(1),
        };
        let target = UploadTarget {
            vid: "v".into(),
            oid: "o/p".into(),
            object_url: reqwest::Url::parse("http://h/o/p").unwrap(),
            tos_sign: Secret::new("SIGN"),
            token: Secret::new("TOKEN"),
            extra_param: "x=1".into(),
        };
        let all = format!("{a:?} {creds:?} {target:?}");
        for secret in ["SEKRIT", "CSRF", "AKAK", "AUTHAUTH", "SIGN", "TOKEN"] {
            assert!(!all.contains(secret), "{secret} leaked in {all}");
        }
        assert!(all.contains("main"));
    }

    #[test]
    fn classes_and_display() {
        let e = PublishError::RateLimited {
            retry_after: Some(Duration::from_secs(30)),
        };
        assert_eq!(e.class(), "rate_limited");
        assert_eq!(e.to_string(), "rate limited (retry after 30s)");
        let e = PublishError::AuthExpired {
            what: Expired::Cookie,
            reason: "status_code 8".into(),
        };
        assert_eq!(e.class(), "auth_expired");
        assert_eq!(e.to_string(), "cookie expired: status_code 8");
        // What TikTok's refusals read like: no cookie in them (issue 12).
        let e = PublishError::AuthExpired {
            what: Expired::Posting,
            reason: "TikTok says this account cannot post now".into(),
        };
        assert_eq!(
            e.to_string(),
            "posting blocked for now: TikTok says this account cannot post now"
        );
        assert_eq!(
            PublishError::Unknown { reason: "x".into() }.class(),
            "unknown"
        );
    }
}
