//! `platform:` of the config (design §4, §7): the simulator switch, the request timeout, the
//! browser, and each platform's base URLs under `platform.<name>`. The old flat
//! `platform.creator_url`, `vod_url` and `upload_scheme` stay accepted as `douyin-web`'s.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{DAY, HOUR, SEC, UploadScheme, set_duration};
use crate::yaml::{Fields, Node, Problems};

pub use crate::domain::Platform;

#[derive(Clone, Debug, PartialEq)]
pub struct PlatformConfig {
    /// Run the built-in simulator on 127.0.0.1 and point everything at it.
    pub sandbox: bool,
    pub timeout: Duration,
    /// Faults the built-in sandbox injects, for demos (protocol steps failing on purpose).
    pub sandbox_faults: Vec<crate::sandbox::Fault>,
    /// The browser `douyin` accounts use.
    pub browser: Browser,
    /// Close the browser after this long unused.
    pub(crate) browser_idle: Duration,
    /// `platform.douyin-web` (or the old flat keys).
    pub(crate) douyin_web: DouyinWebSettings,
    /// `platform.douyin`.
    pub douyin: DouyinSettings,
    /// `platform.tiktok`.
    pub tiktok: TiktokSettings,
}

impl Default for PlatformConfig {
    fn default() -> Self {
        PlatformConfig {
            sandbox: false,
            timeout: Duration::from_secs(60),
            sandbox_faults: Vec::new(),
            browser: Browser::Auto,
            browser_idle: Duration::from_secs(30),
            douyin_web: DouyinWebSettings::default(),
            douyin: DouyinSettings::default(),
            tiktok: TiktokSettings::default(),
        }
    }
}

/// `platform.browser`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Browser {
    /// Find Chromium, Chrome or Edge.
    Auto,
    /// This executable (resolved path).
    Path(PathBuf),
}

/// Base URLs of the `douyin-web` platform (docs/douyin-web.md).
#[derive(Clone, Debug, PartialEq)]
pub struct DouyinWebSettings {
    pub creator_url: reqwest::Url,
    pub vod_url: reqwest::Url,
    /// Scheme for the upload host the platform hands out.
    pub upload_scheme: UploadScheme,
}

impl Default for DouyinWebSettings {
    fn default() -> Self {
        DouyinWebSettings {
            creator_url: known_url("https://media.douyin.com"),
            vod_url: known_url("https://vas-lf-x.snssdk.com"),
            upload_scheme: UploadScheme::Https,
        }
    }
}

/// Base URLs of the `douyin` platform (the creator center as it is today).
#[derive(Clone, Debug, PartialEq)]
pub struct DouyinSettings {
    pub creator_url: reqwest::Url,
    pub vod_url: reqwest::Url,
    /// Where covers are uploaded.
    pub(crate) imagex_url: reqwest::Url,
    pub upload_scheme: UploadScheme,
}

impl Default for DouyinSettings {
    fn default() -> Self {
        DouyinSettings {
            creator_url: known_url("https://creator.douyin.com"),
            vod_url: known_url("https://vod.bytedanceapi.com"),
            imagex_url: known_url("https://imagex.bytedanceapi.com"),
            upload_scheme: UploadScheme::Https,
        }
    }
}

/// Base URLs of the `tiktok` platform (the Content Posting API).
#[derive(Clone, Debug, PartialEq)]
pub struct TiktokSettings {
    pub(crate) api_url: reqwest::Url,
    /// Where the user authorizes dropcast (OAuth).
    pub(crate) auth_url: reqwest::Url,
}

impl Default for TiktokSettings {
    fn default() -> Self {
        TiktokSettings {
            api_url: known_url("https://open.tiktokapis.com"),
            auth_url: known_url("https://www.tiktok.com"),
        }
    }
}

/// One of the built-in URLs above (never user input).
fn known_url(url: &str) -> reqwest::Url {
    reqwest::Url::parse(url).expect("built-in URL is valid")
}

/// The old flat keys of `platform:`, now `platform.douyin-web.*`.
const LEGACY_DOUYIN_WEB: [&str; 3] = ["creator_url", "vod_url", "upload_scheme"];

pub(super) fn read_platform(
    node: &Node<'_>,
    base_dir: &Path,
    out: &mut PlatformConfig,
    problems: &mut Problems,
) {
    let Some(f) = node.fields(
        &[
            "sandbox",
            "timeout",
            "sandbox_faults",
            "browser",
            "browser_idle",
            "douyin-web",
            "douyin",
            "tiktok",
            "creator_url",
            "vod_url",
            "upload_scheme",
        ],
        problems,
    ) else {
        return;
    };
    if let Some(n) = f.get("sandbox_faults")
        && let Some(items) = n.items(problems)
    {
        for item in items {
            match serde_yaml::from_value::<crate::sandbox::Fault>(item.value().clone()) {
                Ok(fault) => out.sandbox_faults.push(fault),
                Err(e) => problems.push(item.problem(format!(
                    "not a sandbox fault: {e} (e.g. {{step: create, action: drop_answer, times: 1}})"
                ))),
            }
        }
    }
    if let Some(n) = f.get("sandbox")
        && let Some(b) = n.bool(problems)
    {
        out.sandbox = b;
    }
    set_duration(f.get("timeout"), &mut out.timeout, (SEC, HOUR), problems);
    if let Some(n) = f.get("browser") {
        read_browser(n, base_dir, &mut out.browser, problems);
    }
    set_duration(
        f.get("browser_idle"),
        &mut out.browser_idle,
        (SEC, DAY),
        problems,
    );

    // douyin-web: the old flat keys, then its own section; one setting, one place.
    read_douyin_web(&f, &mut out.douyin_web, problems);
    let section = f
        .get("douyin-web")
        .and_then(|n| n.fields(&LEGACY_DOUYIN_WEB, problems));
    if let Some(s) = &section {
        read_douyin_web(s, &mut out.douyin_web, problems);
        for key in LEGACY_DOUYIN_WEB {
            if let (Some(old), Some(new)) = (f.get(key), s.get(key)) {
                let line = new.key_position().line;
                problems.push(old.key_problem(format!(
                    "`platform.{key}` and `platform.douyin-web.{key}` (line {line}) are the same \
                     setting, given twice; keep `platform.douyin-web.{key}` (`platform.{key}` is \
                     its old name)"
                )));
            }
        }
    }

    if let Some(s) = f.get("douyin").and_then(|n| {
        n.fields(
            &["creator_url", "vod_url", "imagex_url", "upload_scheme"],
            problems,
        )
    }) {
        let d = &mut out.douyin;
        set_url(&s, "creator_url", &mut d.creator_url, problems);
        set_url(&s, "vod_url", &mut d.vod_url, problems);
        set_url(&s, "imagex_url", &mut d.imagex_url, problems);
        set_scheme(&s, &mut d.upload_scheme, problems);
    }
    if let Some(s) = f
        .get("tiktok")
        .and_then(|n| n.fields(&["api_url", "auth_url"], problems))
    {
        set_url(&s, "api_url", &mut out.tiktok.api_url, problems);
        set_url(&s, "auth_url", &mut out.tiktok.auth_url, problems);
    }
}

/// `creator_url`, `vod_url`, `upload_scheme` from either `platform:` (old) or
/// `platform.douyin-web:`.
fn read_douyin_web(f: &Fields<'_>, out: &mut DouyinWebSettings, problems: &mut Problems) {
    set_url(f, "creator_url", &mut out.creator_url, problems);
    set_url(f, "vod_url", &mut out.vod_url, problems);
    set_scheme(f, &mut out.upload_scheme, problems);
}

fn set_url(f: &Fields<'_>, key: &str, slot: &mut reqwest::Url, problems: &mut Problems) {
    if let Some(n) = f.get(key)
        && let Some(u) = n.parse_str("an http(s) URL", problems, parse_url)
    {
        *slot = u;
    }
}

fn set_scheme(f: &Fields<'_>, slot: &mut UploadScheme, problems: &mut Problems) {
    if let Some(n) = f.get("upload_scheme")
        && let Some(s) = n.choice(
            &[("http", UploadScheme::Http), ("https", UploadScheme::Https)],
            problems,
        )
    {
        *slot = s;
    }
}

/// `auto`, or the path of a browser executable (relative to the config's folder).
fn read_browser(node: &Node<'_>, base_dir: &Path, slot: &mut Browser, problems: &mut Problems) {
    let home = super::home_dir();
    if let Some(b) = node.parse_str("`auto` or the path of a browser", problems, |s| {
        if s.trim() == "auto" {
            Ok(Browser::Auto)
        } else {
            super::resolve_path(s, base_dir, home.as_deref()).map(Browser::Path)
        }
    }) {
        *slot = b;
    }
}

fn parse_url(s: &str) -> Result<reqwest::Url, String> {
    let url = reqwest::Url::parse(s.trim()).map_err(|e| format!("`{s}` is not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("`{s}` must start with http:// or https://"));
    }
    if url.host().is_none() {
        return Err(format!("`{s}` has no host"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!("`{s}` must not have a query or fragment"));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn parse(text: &str) -> Config {
        Config::parse(
            text,
            Some(Path::new("dropcast.yaml")),
            Path::new("/srv/drop"),
        )
        .unwrap_or_else(|e| panic!("unexpected problems:\n{e}"))
    }

    fn bad(text: &str) -> String {
        match Config::parse(
            text,
            Some(Path::new("dropcast.yaml")),
            Path::new("/srv/drop"),
        ) {
            Ok(c) => panic!("expected problems, got {c:?}"),
            Err(e) => e.to_string(),
        }
    }

    // Regression (issue 10 item 3): base URLs could not be given per platform;
    // `platform.douyin-web` was an unknown field.
    #[test]
    fn douyin_web_urls_under_their_platform_equal_the_old_flat_keys() {
        let new = parse(concat!(
            "platform:\n",
            "  douyin-web: {creator_url: \"http://127.0.0.1:9/c\", vod_url: \"http://127.0.0.1:9/v\", upload_scheme: http}\n",
        ));
        let old = parse(concat!(
            "platform:\n",
            "  creator_url: \"http://127.0.0.1:9/c\"\n",
            "  vod_url: \"http://127.0.0.1:9/v\"\n",
            "  upload_scheme: http\n",
        ));
        assert_eq!(new.platform, old.platform);
        let web = &new.platform.douyin_web;
        assert_eq!(web.creator_url.as_str(), "http://127.0.0.1:9/c");
        assert_eq!(web.vod_url.as_str(), "http://127.0.0.1:9/v");
        assert_eq!(web.upload_scheme, UploadScheme::Http);
        // The other platforms keep their defaults.
        assert_eq!(new.platform.douyin, DouyinSettings::default());
        // Old and new keys for different settings mix.
        let mixed = parse(
            "platform:\n  creator_url: \"http://a.test\"\n  douyin-web: {vod_url: \"http://b.test\"}\n",
        );
        assert_eq!(
            mixed.platform.douyin_web.creator_url.as_str(),
            "http://a.test/"
        );
        assert_eq!(mixed.platform.douyin_web.vod_url.as_str(), "http://b.test/");
    }

    #[test]
    fn douyin_tiktok_and_browser_settings_are_read() {
        let c = parse(concat!(
            "platform:\n",
            "  browser: ./bin/chromium\n",
            "  browser_idle: 2m\n",
            "  douyin: {creator_url: \"http://d.test\", vod_url: \"http://v.test\", imagex_url: \"http://i.test\", upload_scheme: http}\n",
            "  tiktok: {api_url: \"http://api.test\", auth_url: \"http://auth.test\"}\n",
        ));
        let p = &c.platform;
        assert_eq!(p.browser, Browser::Path("/srv/drop/bin/chromium".into()));
        assert_eq!(p.browser_idle, Duration::from_secs(120));
        assert_eq!(p.douyin.creator_url.as_str(), "http://d.test/");
        assert_eq!(p.douyin.vod_url.as_str(), "http://v.test/");
        assert_eq!(p.douyin.imagex_url.as_str(), "http://i.test/");
        assert_eq!(p.douyin.upload_scheme, UploadScheme::Http);
        assert_eq!(p.tiktok.api_url.as_str(), "http://api.test/");
        assert_eq!(p.tiktok.auth_url.as_str(), "http://auth.test/");
        assert_eq!(p.douyin_web, DouyinWebSettings::default());
        assert_eq!(
            parse("platform: {browser: auto}\n").platform.browser,
            Browser::Auto
        );
    }

    // Regression (issue 10 item 3): the same douyin-web setting given under its old and its
    // new name must not silently pick one.
    #[test]
    fn an_old_key_and_its_new_name_together_are_an_error_naming_both() {
        let msg = bad(concat!(
            "platform:\n",
            "  creator_url: \"http://a.test\"\n",
            "  douyin-web:\n",
            "    creator_url: \"http://b.test\"\n",
            "    upload_scheme: http\n",
            "  upload_scheme: https\n",
        ));
        assert_eq!(
            msg.lines().collect::<Vec<_>>(),
            vec![
                "dropcast.yaml:2:3: platform.creator_url: `platform.creator_url` and \
                 `platform.douyin-web.creator_url` (line 4) are the same setting, given twice; \
                 keep `platform.douyin-web.creator_url` (`platform.creator_url` is its old name)",
                "dropcast.yaml:6:3: platform.upload_scheme: `platform.upload_scheme` and \
                 `platform.douyin-web.upload_scheme` (line 5) are the same setting, given twice; \
                 keep `platform.douyin-web.upload_scheme` (`platform.upload_scheme` is its old name)",
            ]
        );
    }

    #[test]
    fn unknown_platforms_and_keys_under_a_platform_suggest_the_near_one() {
        assert_eq!(
            bad("platform:\n  tiktk: {api_url: \"http://a.test\"}\n"),
            "dropcast.yaml:2:3: platform: unknown field `tiktk`, did you mean `tiktok`?"
        );
        assert_eq!(
            bad("platform:\n  douyin_web: {}\n"),
            "dropcast.yaml:2:3: platform: unknown field `douyin_web`, did you mean `douyin-web`?"
        );
        assert_eq!(
            bad("platform:\n  douyin-web:\n    creator_ur: \"http://a.test\"\n"),
            "dropcast.yaml:3:5: platform.douyin-web: unknown field `creator_ur`, did you mean \
             `creator_url`?"
        );
        // A key of another platform's section.
        assert!(
            bad("platform:\n  douyin-web: {imagex_url: \"http://a.test\"}\n").contains(
                "dropcast.yaml:2:16: platform.douyin-web: unknown field `imagex_url`; expected \
                 one of: `creator_url`, `vod_url`, `upload_scheme`"
            )
        );
        assert!(
            bad("platform:\n  tiktok: {api_url: \"ftp://a.test\"}\n")
                .contains("dropcast.yaml:2:21: platform.tiktok.api_url: `ftp://a.test` must start with http:// or https://")
        );
        assert!(
            bad("platform:\n  douyin: {upload_scheme: htps}\n").contains(
                "platform.douyin.upload_scheme: unknown value `htps`, did you mean `https`?"
            )
        );
        assert!(
            bad("platform:\n  browser_idle: 0s\n").contains(
                "dropcast.yaml:2:17: platform.browser_idle: must be at least 1s, found 0s"
            )
        );
        assert!(bad("platform:\n  browser: 3\n").contains(
            "platform.browser: expected `auto` or the path of a browser, found an integer"
        ));
    }
}
