//! `accounts:` of the config (design §7): each account names its platform and carries that
//! platform's settings, nothing else. An account with a cookie and no `platform` is
//! `douyin-web`, as every account was before platforms had names.

use std::path::{Path, PathBuf};

use super::platforms::Platform;
use crate::secret::Secret;
use crate::yaml::{Fields, Node, Problems};

#[derive(Clone, Debug, PartialEq)]
pub struct AccountConfig {
    pub name: String,
    pub kind: AccountKind,
    /// The agents that may publish for it (`agents: [studio-a]`), when several share the
    /// ledger: its login lives on their machines. Empty: any agent.
    pub agents: Vec<String>,
    /// Its own posting plan (`plan:`), `off`, or `publish.plan`'s.
    pub plan: super::plan::AccountPlan,
}

impl AccountConfig {
    /// Whether agent `name` publishes for this account.
    pub fn served_by(&self, name: &str) -> bool {
        self.agents.is_empty() || self.agents.iter().any(|a| a == name)
    }

    pub fn platform(&self) -> Platform {
        match self.kind {
            AccountKind::DouyinWeb(_) => Platform::DouyinWeb,
            AccountKind::Douyin => Platform::Douyin,
            AccountKind::Tiktok(_) => Platform::Tiktok,
        }
    }

    /// The account's cookie settings, when it is a `douyin-web` account.
    pub(crate) fn douyin_web(&self) -> Option<&DouyinWebAccount> {
        match &self.kind {
            AccountKind::DouyinWeb(web) => Some(web),
            _ => None,
        }
    }
}

/// An account's platform and that platform's settings.
#[derive(Clone, Debug, PartialEq)]
pub enum AccountKind {
    DouyinWeb(DouyinWebAccount),
    /// Its session is a browser profile under `state_dir`, made by `dropcast login`.
    Douyin,
    Tiktok(TiktokAccount),
}

/// A `douyin-web` account: a cookie.
#[derive(Clone, Debug, PartialEq)]
pub struct DouyinWebAccount {
    pub cookie: CookieSource,
    /// Only where the cookie has no `csrf_token`.
    pub csrf_token: Option<Secret>,
}

/// Where an account's cookie (or a TikTok app's client secret) comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CookieSource {
    /// The name of an environment variable.
    Env(String),
    /// A file holding the cookie (resolved path).
    File(PathBuf),
}

/// A `tiktok` account: the user's own TikTok app; tokens are made by `dropcast login`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TiktokAccount {
    pub client_key: String,
    /// Where the app's client secret is: `client_secret_env` or `client_secret_file`.
    pub client_secret: CookieSource,
    pub mode: TiktokMode,
    /// The loopback port of `dropcast login`'s redirect (for apps that registered a fixed
    /// one); `None`: any free port.
    pub redirect_port: Option<u16>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TiktokMode {
    /// Post the video.
    Direct,
    /// Send it to the creator's inbox as a draft finished in the app.
    Inbox,
}

/// Platforms this version of dropcast can publish to.
const AVAILABLE: &[Platform] = &[Platform::DouyinWeb, Platform::Douyin, Platform::Tiktok];

/// The one sentence for an account whose platform has no backend yet.
pub(crate) fn not_available_yet(account: &str, platform: Platform) -> String {
    let available: Vec<String> = AVAILABLE.iter().map(|p| format!("`{p}`")).collect();
    format!(
        "account `{account}`: platform `{platform}` is not available yet in this version of \
         dropcast (only {})",
        available.join(", ")
    )
}

/// Every key any account may have; which ones a given account may have depends on its platform.
const ACCOUNT_KEYS: &[&str] = &[
    "platform",
    "cookie_env",
    "cookie_file",
    "csrf_token",
    "client_key",
    "client_secret_env",
    "client_secret_file",
    "mode",
    "redirect_port",
    "agents",
    "plan",
];

fn keys_of(platform: Platform) -> &'static [&'static str] {
    match platform {
        Platform::DouyinWeb => &["platform", "cookie_env", "cookie_file", "csrf_token"],
        Platform::Douyin => &["platform"],
        Platform::Tiktok => &[
            "platform",
            "client_key",
            "client_secret_env",
            "client_secret_file",
            "mode",
            "redirect_port",
        ],
    }
}

pub(super) fn read_accounts(
    node: &Node<'_>,
    base_dir: &Path,
    problems: &mut Problems,
) -> Option<Vec<AccountConfig>> {
    let entries = node.entries(problems)?;
    if entries.is_empty() {
        problems.push(node.problem("configure at least one account"));
        return None;
    }
    let mut accounts = Vec::new();
    let mut ok = true;
    for (name, n) in entries {
        match read_account(&name, &n, base_dir, problems) {
            Some(kind) => {
                let agents = account_agents(&n, problems);
                let plan = super::plan::account_plan(&n, problems);
                accounts.push(AccountConfig {
                    name,
                    kind,
                    agents,
                    plan,
                });
            }
            None => ok = false,
        }
    }
    ok.then_some(accounts)
}

fn read_account(
    name: &str,
    n: &Node<'_>,
    base_dir: &Path,
    problems: &mut Problems,
) -> Option<AccountKind> {
    if name.trim().is_empty() || name.chars().any(char::is_control) {
        problems.push(n.key_problem("an account needs a printable name"));
        return None;
    }
    let f = n.fields(ACCOUNT_KEYS, problems)?;
    let stated = f.get("platform");
    let platform = match stated {
        Some(p) => p.choice(&Platform::CHOICES, problems)?,
        None if f.contains("cookie_env") || f.contains("cookie_file") => Platform::DouyinWeb,
        None => {
            problems.push(n.key_problem(
                "name the account's platform: `platform: douyin-web` (with `cookie_env` or \
                 `cookie_file`), `platform: douyin` or `platform: tiktok`",
            ));
            return None;
        }
    };
    let mut ok = true;
    for key in ACCOUNT_KEYS {
        if let Some(k) = f.get(key)
            && !matches!(*key, "agents" | "plan")
            && !keys_of(platform).contains(key)
        {
            let why = if stated.is_none() {
                " (an account with a cookie and no `platform` is `douyin-web`)"
            } else {
                ""
            };
            problems.push(k.key_problem(format!(
                "`{key}` is not a key of a `{platform}` account{why}"
            )));
            ok = false;
        }
    }
    let kind = match platform {
        Platform::DouyinWeb => {
            read_douyin_web(n, &f, base_dir, problems).map(AccountKind::DouyinWeb)
        }
        Platform::Douyin => Some(AccountKind::Douyin),
        Platform::Tiktok => read_tiktok(n, &f, base_dir, problems).map(AccountKind::Tiktok),
    };
    if let Some(p) = stated
        && !AVAILABLE.contains(&platform)
    {
        problems.push(p.problem(not_available_yet(name, platform)));
        ok = false;
    }
    kind.filter(|_| ok)
}

fn read_douyin_web(
    n: &Node<'_>,
    f: &Fields<'_>,
    base_dir: &Path,
    problems: &mut Problems,
) -> Option<DouyinWebAccount> {
    let cookie = match (f.get("cookie_env"), f.get("cookie_file")) {
        (Some(e), None) => env_var(e, "the cookie", problems).map(CookieSource::Env),
        (None, Some(p)) => super::path(p, base_dir, problems).map(CookieSource::File),
        (Some(_), Some(p)) => {
            problems.push(p.key_problem("give `cookie_env` or `cookie_file`, not both"));
            None
        }
        (None, None) => {
            problems.push(n.key_problem("give `cookie_env` or `cookie_file`"));
            None
        }
    };
    let csrf_token = f.get("csrf_token").and_then(|t| super::secret(t, problems));
    Some(DouyinWebAccount {
        cookie: cookie?,
        csrf_token,
    })
}

fn read_tiktok(
    n: &Node<'_>,
    f: &Fields<'_>,
    base_dir: &Path,
    problems: &mut Problems,
) -> Option<TiktokAccount> {
    let client_key = match f.get("client_key") {
        Some(k) => k.parse_str("a string (quote it)", problems, |s| {
            let s = s.trim();
            if s.is_empty() || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
                // Never echo the value: it may be the secret pasted in the wrong place.
                Err("expected your TikTok app's client key, one word".to_owned())
            } else {
                Ok(s.to_owned())
            }
        }),
        None => {
            problems.push(f.missing("client_key"));
            None
        }
    };
    let client_secret = match (f.get("client_secret_env"), f.get("client_secret_file")) {
        (Some(e), None) => env_var(e, "the client secret", problems).map(CookieSource::Env),
        (None, Some(p)) => super::path(p, base_dir, problems).map(CookieSource::File),
        (Some(_), Some(p)) => {
            problems
                .push(p.key_problem("give `client_secret_env` or `client_secret_file`, not both"));
            None
        }
        (None, None) => {
            problems.push(n.key_problem(
                "give `client_secret_env` (an environment variable) or `client_secret_file` \
                 (a file) holding your TikTok app's client secret",
            ));
            None
        }
    };
    let redirect_port = match f.get("redirect_port") {
        Some(p) => match p.u64(problems) {
            Some(port) if (1..=65535).contains(&port) => u16::try_from(port).ok(),
            Some(_) => {
                problems.push(p.problem("a port is a number from 1 to 65535"));
                None
            }
            None => None,
        },
        None => None,
    };
    let mode = match f.get("mode") {
        Some(m) => m.choice(
            &[("direct", TiktokMode::Direct), ("inbox", TiktokMode::Inbox)],
            problems,
        )?,
        None => TiktokMode::Direct,
    };
    Some(TiktokAccount {
        client_key: client_key?,
        client_secret: client_secret?,
        mode,
        redirect_port,
    })
}

/// The name of an environment variable that holds `what`; never echoed, as it may be the
/// secret itself pasted in the wrong place.
/// `agents: studio-a` or `agents: [studio-a, studio-b]`.
fn account_agents(n: &Node<'_>, problems: &mut Problems) -> Vec<String> {
    let mut scratch = Problems::new();
    let Some(node) = n
        .entries(&mut scratch)
        .and_then(|e| e.into_iter().find(|(k, _)| k == "agents"))
        .map(|(_, node)| node)
    else {
        return Vec::new();
    };
    let items = match node.value() {
        serde_yaml::Value::Sequence(_) => node.items(problems).unwrap_or_default(),
        _ => vec![node],
    };
    let names: Vec<String> = items
        .iter()
        .filter_map(|i| super::ledger::agent_name(i, problems))
        .collect();
    if names.is_empty() && items.is_empty() {
        problems.push(n.problem("`agents` names at least one agent"));
    }
    names
}

pub(super) fn env_var(node: &Node<'_>, what: &str, problems: &mut Problems) -> Option<String> {
    node.parse_str("an environment variable name", problems, |s| {
        let valid = s
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if valid {
            Ok(s.to_owned())
        } else {
            Err(format!(
                "expected the name of an environment variable (letters, digits, `_`), not {what} \
                 itself"
            ))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::yaml::Document;

    fn parse(text: &str) -> Result<Config, String> {
        Config::parse(
            text,
            Some(Path::new("dropcast.yaml")),
            Path::new("/srv/drop"),
        )
        .map_err(|e| e.to_string())
    }

    fn bad(text: &str) -> String {
        match parse(text) {
            Ok(c) => panic!("expected problems, got {c:?}"),
            Err(e) => e,
        }
    }

    /// The accounts as read, before the "not available yet" gate is applied to the result.
    fn read(text: &str) -> (Option<Vec<AccountConfig>>, Vec<String>) {
        let doc = Document::parse(text, Some(Path::new("dropcast.yaml"))).expect("yaml");
        let mut problems = Problems::new();
        let node = doc
            .root()
            .fields(&["accounts"], &mut problems)
            .expect("mapping");
        let accounts = read_accounts(
            node.get("accounts").expect("accounts"),
            Path::new("/srv/drop"),
            &mut problems,
        );
        (accounts, problems.iter().map(ToString::to_string).collect())
    }

    // Regression (issue 10 item 3): an account could not name its platform; `platform:`
    // was an unknown field.
    #[test]
    fn an_account_names_its_platform_and_a_cookie_alone_still_means_douyin_web() {
        let c = parse(
            "accounts:\n  a: {platform: douyin-web, cookie_env: A}\n  b: {cookie_file: ./b.cookie}\n",
        )
        .expect("valid");
        assert_eq!(c.accounts[0].platform(), Platform::DouyinWeb);
        assert_eq!(
            c.accounts[0].douyin_web().map(|w| &w.cookie),
            Some(&CookieSource::Env("A".into()))
        );
        assert_eq!(c.accounts[1].platform(), Platform::DouyinWeb);
        assert_eq!(
            c.accounts[1].douyin_web().map(|w| &w.cookie),
            Some(&CookieSource::File("/srv/drop/b.cookie".into()))
        );
    }

    // Issue 12: `platform: tiktok` accounts are available, with the secret in a variable
    // or a file and an optional fixed redirect port.
    #[test]
    fn tiktok_accounts_are_read_with_their_secret_source_and_port() {
        let (accounts, problems) = read(concat!(
            "accounts:\n",
            "  studio: {platform: douyin}\n",
            "  global: {platform: tiktok, client_key: aw1x, client_secret_env: TIKTOK_SECRET, mode: inbox}\n",
            "  fixed: {platform: tiktok, client_key: aw2, client_secret_file: ./tt.secret, redirect_port: 8765}\n",
        ));
        assert!(problems.is_empty(), "{problems:?}");
        let accounts = accounts.expect("valid");
        assert_eq!(
            accounts[1].kind,
            AccountKind::Tiktok(TiktokAccount {
                client_key: "aw1x".into(),
                client_secret: CookieSource::Env("TIKTOK_SECRET".into()),
                mode: TiktokMode::Inbox,
                redirect_port: None,
            })
        );
        assert_eq!(
            accounts[2].kind,
            AccountKind::Tiktok(TiktokAccount {
                client_key: "aw2".into(),
                client_secret: CookieSource::File("/srv/drop/tt.secret".into()),
                mode: TiktokMode::Direct,
                redirect_port: Some(8765),
            })
        );
        let (_, problems) = read(
            "accounts:\n  g: {platform: tiktok, client_key: k, client_secret_env: S, client_secret_file: f}\n",
        );
        assert!(
            problems.iter().any(|p| p.contains("not both")),
            "{problems:?}"
        );
        let (_, problems) = read(
            "accounts:\n  g: {platform: tiktok, client_key: k, client_secret_env: S, redirect_port: 70000}\n",
        );
        assert!(
            problems.iter().any(|p| p.contains("accounts.g.redirect_port: a port is a number from 1 to 65535")),
            "{problems:?}"
        );
    }

    #[test]
    fn an_unknown_platform_suggests_the_near_one() {
        assert_eq!(
            bad("accounts:\n  a: {platform: tiktk}\n"),
            "dropcast.yaml:2:17: accounts.a.platform: unknown value `tiktk`, did you mean `tiktok`?"
        );
        assert!(
            bad("accounts:\n  a: {platform: douyin_web, cookie_env: X}\n").contains(
                "accounts.a.platform: unknown value `douyin_web`, did you mean `douyin-web`?"
            )
        );
        assert!(
            bad("accounts:\n  a: {platform: youtube}\n").contains(
                "unknown value `youtube`; expected one of `douyin-web`, `douyin`, `tiktok`"
            )
        );
        assert!(
            bad("accounts:\n  a: {platfrom: douyin-web, cookie_env: X}\n")
                .contains("accounts.a: unknown field `platfrom`, did you mean `platform`?")
        );
    }

    // Regression (issue 10 item 3): keys of one platform were accepted on another's account.
    #[test]
    fn keys_a_platform_does_not_have_are_named_with_their_position() {
        let (_, problems) = read("accounts:\n  studio: {platform: douyin, cookie_env: X}\n");
        assert!(
            problems.contains(
                &"dropcast.yaml:2:30: accounts.studio.cookie_env: `cookie_env` is not a key of a \
              `douyin` account"
                    .to_owned()
            )
        );
        let msg = bad(
            "accounts:\n  a:\n    platform: douyin-web\n    cookie_env: X\n    client_key: k\n",
        );
        assert_eq!(
            msg,
            "dropcast.yaml:5:5: accounts.a.client_key: `client_key` is not a key of a \
             `douyin-web` account"
        );
        // Without `platform:`, say why the account counts as douyin-web.
        assert!(
            bad("accounts:\n  a: {cookie_env: X, mode: direct}\n").contains(
                "accounts.a.mode: `mode` is not a key of a `douyin-web` account (an account with a \
             cookie and no `platform` is `douyin-web`)"
            )
        );
        let (_, problems) = read(
            "accounts:\n  g: {platform: tiktok, client_key: k, client_secret_env: S, csrf_token: t}\n",
        );
        assert!(
            problems.iter().any(|p| p.contains(
                "accounts.g.csrf_token: `csrf_token` is not a key of a `tiktok` account"
            )),
            "{problems:?}"
        );
    }

    #[test]
    fn an_account_with_no_platform_and_no_cookie_is_told_the_choices() {
        for yaml in [
            "accounts:\n  a: {}\n",
            "accounts:\n  a:\n",
            "accounts:\n  a: {csrf_token: t}\n",
        ] {
            let msg = bad(yaml);
            assert!(
                msg.contains(
                    "dropcast.yaml:2:3: accounts.a: name the account's platform: `platform: \
                     douyin-web` (with `cookie_env` or `cookie_file`), `platform: douyin` or \
                     `platform: tiktok`"
                ),
                "{yaml}: {msg}"
            );
        }
    }

    #[test]
    fn tiktok_settings_are_checked_and_secrets_never_echoed() {
        let (_, problems) = read("accounts:\n  g: {platform: tiktok, mode: drafts}\n");
        let all = problems.join("\n");
        for says in [
            "accounts.g: missing required field `client_key`",
            "accounts.g: give `client_secret_env` (an environment variable) or `client_secret_file`",
            "accounts.g.mode: unknown value `drafts`",
        ] {
            assert!(all.contains(says), "{says}: {all}");
        }
        let (_, problems) = read(
            "accounts:\n  g: {platform: tiktok, client_key: \"k 1\", client_secret_env: \"s3cr3t-value!\"}\n",
        );
        let all = problems.join("\n");
        assert!(
            all.contains(
                "accounts.g.client_secret_env: expected the name of an environment variable"
            ),
            "{all}"
        );
        assert!(
            all.contains("accounts.g.client_key: expected your TikTok app's client key"),
            "{all}"
        );
        assert!(!all.contains("s3cr3t") && !all.contains("k 1"), "{all}");
    }
}
