//! The config file (README "Config reference"): every key, its default, and its checks, turned into a
//! [`Config`] that can only hold valid values. Every problem is reported at once, each with
//! the file, the dotted key, the line and the column.

use std::net::SocketAddr;
use std::num::{NonZeroU32, NonZeroUsize};
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use serde_yaml::Value;

use crate::caption::{self, CaptionFields};
use crate::secret::Secret;
use crate::yaml::{Document, Node, Problems};

pub use bind::check_bind;
pub use ledger::{LedgerBackend, LedgerConfig};
pub use notify::{NotifyFormat, NotifySink};
pub use plan::AccountPlan;
pub use routes::Route;

mod accounts;
mod bind;
mod ledger;
mod notify;
mod plan;
mod platforms;
mod routes;

pub(crate) use accounts::not_available_yet;
pub use accounts::{
    AccountConfig, AccountKind, CookieSource, DouyinWebAccount, TiktokAccount, TiktokMode,
};
pub use platforms::{
    Browser, DouyinSettings, DouyinWebSettings, Platform, PlatformConfig, TiktokSettings,
};

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;
const GIB: u64 = 1024 * MIB;

/// Smallest and largest multipart part (docs/douyin-web.md §3b, ours).
pub(crate) const MIN_PART_SIZE: u64 = 5 * MIB;
/// The slowest `upload.max_rate` accepted, in bytes per second.
const MIN_RATE: u64 = 64 * 1024;
pub(crate) const MAX_PART_SIZE: u64 = 64 * MIB;

/// The validated configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// The file it was read from, if any.
    pub file: Option<PathBuf>,
    pub inbox: PathBuf,
    pub done: PathBuf,
    pub failed: PathBuf,
    pub duplicates: PathBuf,
    pub state_dir: PathBuf,
    pub(crate) require_caption: bool,
    pub watch: WatchConfig,
    pub publish: PublishConfig,
    pub upload: UploadConfig,
    pub platform: PlatformConfig,
    /// In file order; never empty.
    pub accounts: Vec<AccountConfig>,
    pub status: StatusConfig,
    /// Caption fields every caption inherits.
    pub defaults: CaptionFields,
    /// Inbox subfolders whose videos go to given accounts.
    pub routes: Vec<Route>,
    /// Where the ledger lives, and this agent's name among those sharing it.
    pub ledger: LedgerConfig,
    /// Webhooks told about posts, failures and paused accounts (`notify:`).
    pub notify: Vec<NotifySink>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WatchMode {
    /// Native events, falling back to polling where they do not work.
    Auto,
    Native,
    Poll,
}

#[derive(Clone, Debug, PartialEq)]
pub struct WatchConfig {
    pub mode: WatchMode,
    pub poll_interval: Duration,
    pub settle: Duration,
    pub caption_wait: Duration,
    pub incomplete_timeout: Duration,
    pub rescan_interval: Duration,
    /// Video extensions: lower-case, without the dot, never empty.
    pub(crate) extensions: Vec<String>,
    /// Extra file-name patterns to ignore.
    pub ignore: Vec<glob::Pattern>,
}

impl Default for WatchConfig {
    fn default() -> Self {
        WatchConfig {
            mode: WatchMode::Auto,
            poll_interval: Duration::from_secs(2),
            settle: Duration::from_secs(3),
            caption_wait: Duration::from_secs(5 * 60),
            incomplete_timeout: Duration::from_secs(10 * 60),
            rescan_interval: Duration::from_secs(5 * 60),
            extensions: ["mp4", "mov", "m4v", "webm"].map(String::from).to_vec(),
            ignore: Vec::new(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DuplicatePolicy {
    /// A video already published for the account goes to `duplicates/`.
    Skip,
    /// Publish it again.
    Allow,
}

#[derive(Clone, Debug, PartialEq)]
pub struct PublishConfig {
    pub concurrency: NonZeroUsize,
    /// Per account, between two posts.
    pub min_interval: Duration,
    pub duplicates: DuplicatePolicy,
    pub retry: RetryConfig,
    /// The posting plan of every account without its own (`publish.plan`).
    pub plan: Option<crate::plan::Plan>,
}

impl Default for PublishConfig {
    fn default() -> Self {
        PublishConfig {
            concurrency: NonZeroUsize::MIN,
            min_interval: Duration::ZERO,
            duplicates: DuplicatePolicy::Skip,
            retry: RetryConfig::default(),
            plan: None,
        }
    }
}

/// Backoff for transient failures; `initial <= max`.
#[derive(Clone, Debug, PartialEq)]
pub struct RetryConfig {
    pub attempts: NonZeroU32,
    pub initial: Duration,
    pub max: Duration,
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig {
            attempts: NonZeroU32::new(6).unwrap_or(NonZeroU32::MIN),
            initial: Duration::from_secs(2),
            max: Duration::from_secs(5 * 60),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct UploadConfig {
    /// Files larger than this are uploaded in parts.
    pub multipart_threshold: u64,
    /// [`MIN_PART_SIZE`]..=[`MAX_PART_SIZE`].
    pub part_size: u64,
    pub parallel_parts: NonZeroUsize,
    /// Bytes per second; `None` is unlimited.
    pub max_rate: Option<u64>,
}

impl Default for UploadConfig {
    fn default() -> Self {
        UploadConfig {
            multipart_threshold: 64 * MIB,
            part_size: 8 * MIB,
            parallel_parts: NonZeroUsize::new(3).unwrap_or(NonZeroUsize::MIN),
            max_rate: None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UploadScheme {
    Http,
    Https,
}

impl UploadScheme {
    pub fn as_str(self) -> &'static str {
        match self {
            UploadScheme::Http => "http",
            UploadScheme::Https => "https",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct StatusConfig {
    /// `None`: no status server.
    pub listen: Option<SocketAddr>,
    /// Bearer token the status server requires, if any.
    pub token: Option<Secret>,
}

impl Default for StatusConfig {
    fn default() -> Self {
        StatusConfig {
            listen: Some(SocketAddr::from(([127, 0, 0, 1], 8931))),
            token: None,
        }
    }
}

/// Why there is no config.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("config: {0}")]
    NotUsable(crate::userfile::UserFileError),
    #[error("{0}")]
    Invalid(Problems),
}

/// Config files larger than this are refused unread (a real one is a few KiB).
const MAX_CONFIG_BYTES: u64 = 1024 * 1024;

const TOP: &[&str] = &[
    "inbox",
    "done",
    "failed",
    "duplicates",
    "state_dir",
    "require_caption",
    "watch",
    "publish",
    "upload",
    "platform",
    "accounts",
    "status",
    "defaults",
    "routes",
    "ledger",
    "agent",
    "notify",
];

impl Config {
    /// The accounts `routes:` sends a video at `relative` (to the inbox) to, if any.
    pub(crate) fn routed(&self, relative: &Path) -> Option<&[String]> {
        routes::route_for(&self.routes, relative)
    }

    /// Read and check a config file; relative paths are relative to its folder.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        // Only a regular file of reasonable size is read: a FIFO or a device named as the
        // config must not hang or exhaust the program.
        let bytes = crate::userfile::read(path, MAX_CONFIG_BYTES).map_err(|e| match e {
            crate::userfile::UserFileError::Io { path, source } => {
                ConfigError::Read { path, source }
            }
            other => ConfigError::NotUsable(other),
        })?;
        let text = String::from_utf8(bytes).map_err(|e| ConfigError::Read {
            path: path.to_path_buf(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidData, e.utf8_error()),
        })?;
        let absolute = std::path::absolute(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let base_dir = absolute.parent().unwrap_or(Path::new("/"));
        Config::parse(&text, Some(path), base_dir)
    }

    /// Check config text; relative paths resolve against `base_dir`.
    pub fn parse(text: &str, file: Option<&Path>, base_dir: &Path) -> Result<Config, ConfigError> {
        let doc = Document::parse(text, file).map_err(ConfigError::Invalid)?;
        let mut problems = Problems::new();
        let config = read_config(&doc, base_dir, &mut problems);
        match config {
            Some(config) if problems.is_empty() => Ok(config),
            _ => {
                problems.sort();
                Err(ConfigError::Invalid(problems))
            }
        }
    }

    /// The config with every key at its default.
    pub fn defaults(base_dir: &Path) -> Config {
        Config {
            file: None,
            inbox: normalize(&base_dir.join("inbox")),
            done: normalize(&base_dir.join("done")),
            failed: normalize(&base_dir.join("failed")),
            duplicates: normalize(&base_dir.join("duplicates")),
            state_dir: normalize(&base_dir.join(".dropcast")),
            require_caption: true,
            watch: WatchConfig::default(),
            publish: PublishConfig::default(),
            upload: UploadConfig::default(),
            platform: PlatformConfig::default(),
            accounts: vec![AccountConfig {
                name: "main".to_owned(),
                kind: AccountKind::DouyinWeb(DouyinWebAccount {
                    cookie: CookieSource::Env("DOUYIN_COOKIE".to_owned()),
                    csrf_token: None,
                }),
                agents: Vec::new(),
                plan: AccountPlan::Inherit,
            }],
            status: StatusConfig::default(),
            defaults: CaptionFields::default(),
            routes: Vec::new(),
            ledger: LedgerConfig::default(),
            notify: Vec::new(),
        }
    }

    /// inbox, done, failed, duplicates, state_dir.
    pub(crate) fn folders_to_create(&self) -> [&Path; 5] {
        [
            &self.inbox,
            &self.done,
            &self.failed,
            &self.duplicates,
            &self.state_dir,
        ]
    }

    /// Folders that are never input, even when they lie inside the inbox.
    pub(crate) fn excluded_dirs(&self) -> Vec<PathBuf> {
        vec![
            self.done.clone(),
            self.failed.clone(),
            self.duplicates.clone(),
            self.state_dir.clone(),
        ]
    }

    pub fn account(&self, name: &str) -> Option<&AccountConfig> {
        self.accounts.iter().find(|a| a.name == name)
    }

    /// The posting plan of `account`: its own, else `publish.plan`; `None` when it has
    /// none (or `plan: off`).
    pub fn plan_for(&self, account: &str) -> Option<&crate::plan::Plan> {
        match self.account(account).map(|a| &a.plan) {
            Some(AccountPlan::Off) => None,
            Some(AccountPlan::Own(plan)) => Some(plan),
            Some(AccountPlan::Inherit) | None => self.publish.plan.as_ref(),
        }
    }
}

fn read_config(doc: &Document, base_dir: &Path, problems: &mut Problems) -> Option<Config> {
    let mut config = Config::defaults(base_dir);
    config.file = doc.file().map(Path::to_path_buf);
    let fields = doc.root().fields(TOP, problems)?;

    // Folders, kept with their nodes for the cross checks below.
    let mut folders: Vec<(&str, PathBuf, Option<Node<'_>>)> = Vec::new();
    for (name, slot) in [
        ("inbox", &mut config.inbox),
        ("done", &mut config.done),
        ("failed", &mut config.failed),
        ("duplicates", &mut config.duplicates),
        ("state_dir", &mut config.state_dir),
    ] {
        if let Some(n) = fields.get(name)
            && let Some(p) = path(n, base_dir, problems)
        {
            *slot = p;
        }
        folders.push((name, slot.clone(), fields.get(name).cloned()));
    }
    check_folders(&folders, doc, problems);

    if let Some(n) = fields.get("require_caption")
        && let Some(b) = n.bool(problems)
    {
        config.require_caption = b;
    }
    if let Some(n) = fields.get("watch") {
        read_watch(n, &mut config.watch, problems);
    }
    if let Some(n) = fields.get("publish") {
        read_publish(n, &mut config.publish, problems);
    }
    if let Some(n) = fields.get("upload") {
        read_upload(n, &mut config.upload, problems);
    }
    if let Some(n) = fields.get("platform") {
        platforms::read_platform(n, base_dir, &mut config.platform, problems);
    }
    if let Some(n) = fields.get("accounts")
        && let Some(accounts) = accounts::read_accounts(n, base_dir, problems)
    {
        config.accounts = accounts;
    }
    if let Some(n) = fields.get("status") {
        read_status(n, &mut config.status, problems);
    }
    if let Some(n) = fields.get("defaults") {
        config.defaults = caption::parse_fields(n, problems);
        let names: Vec<&str> = config.accounts.iter().map(|a| a.name.as_str()).collect();
        let unknown = config
            .defaults
            .accounts
            .iter()
            .flatten()
            .find(|name| !names.contains(&name.as_str()));
        if let Some(name) = unknown {
            let mut scratch = Problems::new();
            let at = n
                .entries(&mut scratch)
                .and_then(|e| e.into_iter().find(|(k, _)| k == "account"))
                .map_or_else(|| n.clone(), |(_, node)| node);
            problems.push(at.problem(format!(
                "no account named `{name}`; configured: {}",
                names.join(", ")
            )));
        }
    }
    if let Some(n) = fields.get("routes") {
        let names: Vec<&str> = config.accounts.iter().map(|a| a.name.as_str()).collect();
        config.routes = routes::read_routes(n, &names, problems);
    }
    if let Some(n) = fields.get("ledger") {
        ledger::read_ledger(n, &mut config.ledger, problems);
    }
    if let Some(n) = fields.get("agent") {
        ledger::read_agent(n, &mut config.ledger, problems);
    }
    if let Some(n) = fields.get("notify") {
        config.notify = notify::read_notify(n, problems);
    }
    Some(config)
}

/// Folders must differ, the inbox must not lie inside an output folder, and no output
/// folder may lie inside another (outputs may lie inside the inbox).
fn check_folders(
    folders: &[(&str, PathBuf, Option<Node<'_>>)],
    doc: &Document,
    problems: &mut Problems,
) {
    for (i, (name, dir, node)) in folders.iter().enumerate() {
        for (j, (other, other_dir, other_node)) in folders.iter().enumerate().take(i) {
            let message = if dir == other_dir {
                format!(
                    "`{name}` and `{other}` are the same folder ({})",
                    dir.display()
                )
            } else if j == 0 {
                // `other` is the inbox: outputs may lie inside it, not the other way round.
                if !other_dir.starts_with(dir) {
                    continue;
                }
                format!("`{other}` lies inside `{name}`")
            } else if dir.starts_with(other_dir) {
                format!("`{name}` lies inside `{other}`")
            } else if other_dir.starts_with(dir) {
                format!("`{other}` lies inside `{name}`")
            } else {
                continue;
            };
            // Blame a key the user wrote, the later one when both were.
            problems.push(match (node, other_node) {
                (Some(n), _) | (None, Some(n)) => n.problem(message),
                (None, None) => doc.problem_at_start(name, message),
            });
        }
    }
}

fn read_watch(node: &Node<'_>, out: &mut WatchConfig, problems: &mut Problems) {
    let Some(f) = node.fields(
        &[
            "mode",
            "poll_interval",
            "settle",
            "caption_wait",
            "incomplete_timeout",
            "rescan_interval",
            "extensions",
            "ignore",
        ],
        problems,
    ) else {
        return;
    };
    if let Some(n) = f.get("mode")
        && let Some(m) = n.choice(
            &[
                ("auto", WatchMode::Auto),
                ("native", WatchMode::Native),
                ("poll", WatchMode::Poll),
            ],
            problems,
        )
    {
        out.mode = m;
    }
    set_duration(
        f.get("poll_interval"),
        &mut out.poll_interval,
        (10 * MS, HOUR),
        problems,
    );
    set_duration(f.get("settle"), &mut out.settle, (10 * MS, HOUR), problems);
    set_duration(
        f.get("caption_wait"),
        &mut out.caption_wait,
        (Duration::ZERO, 30 * DAY),
        problems,
    );
    set_duration(
        f.get("incomplete_timeout"),
        &mut out.incomplete_timeout,
        (SEC, 30 * DAY),
        problems,
    );
    set_duration(
        f.get("rescan_interval"),
        &mut out.rescan_interval,
        (100 * MS, DAY),
        problems,
    );
    if let Some(n) = f.get("extensions")
        && let Some(items) = n.items(problems)
    {
        let mut exts = Vec::new();
        for item in &items {
            let ext = item.parse_str("an extension like `mp4`", problems, |s| {
                let e = s.trim().trim_start_matches('.').to_lowercase();
                if e.is_empty() || !e.chars().all(|c| c.is_ascii_alphanumeric()) {
                    Err(format!("`{s}` is not a file extension like `mp4`"))
                } else {
                    Ok(e)
                }
            });
            if let Some(e) = ext
                && !exts.contains(&e)
            {
                exts.push(e);
            }
        }
        if items.is_empty() {
            problems.push(n.problem("list at least one video extension"));
        } else if exts.len() == items.len() || !exts.is_empty() {
            out.extensions = exts;
        }
    }
    if let Some(n) = f.get("ignore")
        && let Some(items) = n.items(problems)
    {
        out.ignore = items
            .iter()
            .filter_map(|item| {
                item.parse_str("a glob pattern", problems, |s| {
                    glob::Pattern::new(s).map_err(|e| format!("`{s}` is not a glob pattern: {e}"))
                })
            })
            .collect();
    }
}

fn read_publish(node: &Node<'_>, out: &mut PublishConfig, problems: &mut Problems) {
    let Some(f) = node.fields(
        &["concurrency", "min_interval", "duplicates", "retry", "plan"],
        problems,
    ) else {
        return;
    };
    if let Some(n) = f.get("plan")
        && let Some(plan) = plan::read_plan(n, problems)
    {
        out.plan = plan;
    }
    if let Some(n) = f.get("concurrency")
        && let Some(c) = bounded(n, (1, 64), problems).and_then(non_zero_usize)
    {
        out.concurrency = c;
    }
    set_duration(
        f.get("min_interval"),
        &mut out.min_interval,
        (Duration::ZERO, 7 * DAY),
        problems,
    );
    if let Some(n) = f.get("duplicates")
        && let Some(d) = n.choice(
            &[
                ("skip", DuplicatePolicy::Skip),
                ("allow", DuplicatePolicy::Allow),
            ],
            problems,
        )
    {
        out.duplicates = d;
    }
    if let Some(n) = f.get("retry")
        && let Some(r) = n.fields(&["attempts", "initial", "max"], problems)
    {
        if let Some(a) = r.get("attempts")
            && let Some(v) = bounded(a, (1, 100), problems)
            && let Some(v) = u32::try_from(v).ok().and_then(NonZeroU32::new)
        {
            out.retry.attempts = v;
        }
        let initial_ok = set_duration(
            r.get("initial"),
            &mut out.retry.initial,
            (10 * MS, HOUR),
            problems,
        );
        let max_ok = set_duration(r.get("max"), &mut out.retry.max, (10 * MS, DAY), problems);
        if initial_ok && max_ok && out.retry.initial > out.retry.max {
            let at = r.get("initial").or(r.get("max")).unwrap_or(r.node());
            problems.push(at.problem(format!(
                "`initial` ({}) is longer than `max` ({})",
                humantime::format_duration(out.retry.initial),
                humantime::format_duration(out.retry.max)
            )));
        }
    }
}

fn read_upload(node: &Node<'_>, out: &mut UploadConfig, problems: &mut Problems) {
    let Some(f) = node.fields(
        &[
            "multipart_threshold",
            "part_size",
            "parallel_parts",
            "max_rate",
        ],
        problems,
    ) else {
        return;
    };
    if let Some(n) = f.get("multipart_threshold")
        && let Some(v) = size(n, problems)
    {
        out.multipart_threshold = v;
    }
    if let Some(n) = f.get("part_size")
        && let Some(v) = size(n, problems)
    {
        if (MIN_PART_SIZE..=MAX_PART_SIZE).contains(&v) {
            out.part_size = v;
        } else {
            problems.push(n.problem(format!(
                "a part must be between 5MiB and 64MiB, found {v} bytes"
            )));
        }
    }
    if let Some(n) = f.get("parallel_parts")
        && let Some(v) = bounded(n, (1, 32), problems).and_then(non_zero_usize)
    {
        out.parallel_parts = v;
    }
    if let Some(n) = f.get("max_rate") {
        if is_off(n.value()) {
            out.max_rate = None;
        } else if let Some(v) = size(n, problems) {
            if v == 0 {
                problems.push(n.problem("a rate of 0 would never upload; use `off` for no limit"));
            } else if v < MIN_RATE {
                problems.push(n.problem(format!(
                    "must be at least 64KiB (per second), found {v} bytes: slower than that a \
                     video would take days; use `off` for no limit"
                )));
            } else {
                out.max_rate = Some(v);
            }
        }
    }
}

fn read_status(node: &Node<'_>, out: &mut StatusConfig, problems: &mut Problems) {
    let Some(f) = node.fields(&["listen", "token"], problems) else {
        return;
    };
    if let Some(n) = f.get("listen") {
        if is_off(n.value()) {
            out.listen = None;
        } else if let Some(addr) =
            n.parse_str("`off` or an address like `127.0.0.1:8931`", problems, |s| {
                s.trim()
                    .parse::<SocketAddr>()
                    .map_err(|_| format!("`{s}` is not `off` or an address like `127.0.0.1:8931`"))
            })
        {
            out.listen = Some(addr);
        }
    }
    if let Some(n) = f.get("token") {
        out.token = secret(n, problems);
    }
    if let (Some(addr), Some(n)) = (out.listen, f.get("listen"))
        && let Err(reason) = check_bind(addr, out.token.as_ref())
    {
        problems.push(n.problem(reason.trim_start_matches("status.listen: ")));
    }
}

/// A secret string; its value never appears in a problem.
fn secret(node: &Node<'_>, problems: &mut Problems) -> Option<Secret> {
    match node.value() {
        Value::String(s) if !s.trim().is_empty() => Some(Secret::new(s.clone())),
        Value::String(_) => {
            problems.push(node.problem("the value is empty"));
            None
        }
        _ => {
            problems.push(node.problem("expected a string (quote it)"));
            None
        }
    }
}

fn is_off(value: &Value) -> bool {
    matches!(value, Value::Bool(false)) || matches!(value, Value::String(s) if s.trim() == "off")
}

/// Sets `slot` when the key is present and valid; false when it was present and invalid.
/// Sets `slot` from a duration within `min..=max`; says which bound a value breaks (a
/// value like `1ns` would make a loop spin, a week-long timeout would look like a hang).
fn set_duration(
    node: Option<&Node<'_>>,
    slot: &mut Duration,
    (min, max): (Duration, Duration),
    problems: &mut Problems,
) -> bool {
    let Some(n) = node else {
        return true;
    };
    let show = |d: Duration| humantime::format_duration(d).to_string();
    match caption::duration(n, problems) {
        Some(d) if d.is_zero() && !min.is_zero() => {
            problems.push(n.problem(format!("must be at least {}, found 0s", show(min))));
            false
        }
        Some(d) if d < min => {
            problems.push(n.problem(format!("must be at least {}, found {}", show(min), show(d))));
            false
        }
        Some(d) if d > max => {
            problems.push(n.problem(format!("must be at most {}, found {}", show(max), show(d))));
            false
        }
        Some(d) => {
            *slot = d;
            true
        }
        None => false,
    }
}

const MS: Duration = Duration::from_millis(1);
const SEC: Duration = Duration::from_secs(1);
const HOUR: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(86_400);

/// A whole number within `min..=max`.
fn bounded(node: &Node<'_>, (min, max): (u64, u64), problems: &mut Problems) -> Option<u64> {
    let v = node.u64(problems)?;
    if (min..=max).contains(&v) {
        Some(v)
    } else {
        problems.push(node.problem(format!("must be between {min} and {max}, found {v}")));
        None
    }
}

fn non_zero_usize(v: u64) -> Option<NonZeroUsize> {
    usize::try_from(v).ok().and_then(NonZeroUsize::new)
}

/// A size: plain bytes, or a string like `64MiB`, `8 MiB`, `512KiB`, `1GiB`, `20MB`.
fn size(node: &Node<'_>, problems: &mut Problems) -> Option<u64> {
    match node.value() {
        Value::Number(_) => node.u64(problems),
        _ => node.parse_str("a size like `8MiB`", problems, parse_size),
    }
}

/// Parses `64MiB`, `8 MiB`, `512KiB`, `1.5GiB`, `20MB`, `100KB`, `4096`, `4096B`.
/// Binary units are powers of 1024, `KB`/`MB`/`GB` powers of 1000; units ignore case.
pub(crate) fn parse_size(s: &str) -> Result<u64, String> {
    let bad = || {
        format!("`{s}` is not a size like `8MiB`, `512KiB`, `1GiB`, `20MB` or a number of bytes")
    };
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let multiplier: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kib" => KIB,
        "mib" => MIB,
        "gib" => GIB,
        "kb" => 1000,
        "mb" => 1000 * 1000,
        "gb" => 1000 * 1000 * 1000,
        _ => return Err(bad()),
    };
    let (whole, frac) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() || frac.contains('.') || (number.contains('.') && frac.is_empty()) {
        return Err(bad());
    }
    let too_big = || format!("`{s}` is too large");
    let whole: u128 = whole.parse().map_err(|_| too_big())?;
    let mut bytes = whole
        .checked_mul(u128::from(multiplier))
        .ok_or_else(too_big)?;
    if !frac.is_empty() {
        if frac.len() > 9 {
            return Err(bad());
        }
        let digits: u128 = frac.parse().map_err(|_| bad())?;
        let scale = 10u128.pow(frac.len() as u32);
        bytes += digits * u128::from(multiplier) / scale;
    }
    u64::try_from(bytes).map_err(|_| too_big())
}

/// A path: `~/` is the home folder, relative paths are relative to `base_dir`.
fn path(node: &Node<'_>, base_dir: &Path, problems: &mut Problems) -> Option<PathBuf> {
    let home = home_dir();
    node.parse_str("a path", problems, |s| {
        resolve_path(s, base_dir, home.as_deref())
    })
}

/// The home folder `~` stands for: `$HOME`; on Windows, where it is seldom set,
/// `%USERPROFILE%` after it.
pub(crate) fn home_dir() -> Option<PathBuf> {
    let home = std::env::var_os("HOME").filter(|h| !h.is_empty());
    #[cfg(windows)]
    let home = home.or_else(|| std::env::var_os("USERPROFILE").filter(|h| !h.is_empty()));
    home.map(PathBuf::from)
}

fn resolve_path(s: &str, base_dir: &Path, home: Option<&Path>) -> Result<PathBuf, String> {
    if s.trim().is_empty() {
        return Err("the path is empty".to_owned());
    }
    // `~\` too on Windows, where `\` separates folders.
    let separators: &[char] = if cfg!(windows) { &['/', '\\'] } else { &['/'] };
    let expanded = if s == "~"
        || s.strip_prefix('~')
            .is_some_and(|r| r.starts_with(separators))
    {
        let home = home.ok_or_else(|| format!("`{s}` starts with `~` but $HOME is not set"))?;
        home.join(s[1..].trim_start_matches(separators))
    } else {
        PathBuf::from(s)
    };
    Ok(normalize(&base_dir.join(expanded)))
}

/// Removes `.` and resolves `..` without touching the file system.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Visibility;

    fn base() -> &'static Path {
        Path::new("/srv/drop")
    }

    fn parse(text: &str) -> Config {
        Config::parse(text, Some(Path::new("dropcast.yaml")), base())
            .unwrap_or_else(|e| panic!("unexpected problems:\n{e}"))
    }

    fn web(account: &AccountConfig) -> &DouyinWebAccount {
        account
            .douyin_web()
            .unwrap_or_else(|| panic!("{} is not douyin-web", account.name))
    }

    fn bad(text: &str) -> String {
        match Config::parse(text, Some(Path::new("dropcast.yaml")), base()) {
            Ok(c) => panic!("expected problems, got {c:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn default_urls_parse() {
        let p = PlatformConfig::default();
        assert_eq!(
            p.douyin_web.creator_url.as_str(),
            "https://media.douyin.com/"
        );
        assert_eq!(
            p.douyin_web.vod_url.as_str(),
            "https://vas-lf-x.snssdk.com/"
        );
        assert_eq!(p.douyin_web.upload_scheme, UploadScheme::Https);
        assert_eq!(p.douyin.creator_url.as_str(), "https://creator.douyin.com/");
        assert_eq!(p.douyin.vod_url.as_str(), "https://vod.bytedanceapi.com/");
        assert_eq!(
            p.douyin.imagex_url.as_str(),
            "https://imagex.bytedanceapi.com/"
        );
        assert_eq!(p.douyin.upload_scheme, UploadScheme::Https);
        assert_eq!(p.tiktok.api_url.as_str(), "https://open.tiktokapis.com/");
        assert_eq!(p.tiktok.auth_url.as_str(), "https://www.tiktok.com/");
        assert_eq!(p.browser, Browser::Auto);
        assert_eq!(p.browser_idle, Duration::from_secs(30));
    }

    #[test]
    fn empty_file_is_all_defaults() {
        let mut expected = Config::defaults(base());
        expected.file = Some(PathBuf::from("dropcast.yaml"));
        assert_eq!(parse(""), expected);
        assert_eq!(parse("# nothing\n"), expected);
        let c = parse("");
        assert_eq!(c.accounts[0].name, "main");
        assert_eq!(c.accounts[0].platform(), Platform::DouyinWeb);
        assert_eq!(
            web(&c.accounts[0]).cookie,
            CookieSource::Env("DOUYIN_COOKIE".into())
        );
        assert_eq!(c.inbox, Path::new("/srv/drop/inbox"));
        assert_eq!(c.state_dir, Path::new("/srv/drop/.dropcast"));
    }

    #[test]
    fn sample_config_is_the_defaults_except_sandbox_and_defaults() {
        let text = include_str!("../sample-config.yaml");
        let sample = Config::parse(text, Some(Path::new("sample-config.yaml")), base())
            .unwrap_or_else(|e| panic!("sample-config.yaml:\n{e}"));
        let mut expected = Config::defaults(base());
        expected.file = Some(PathBuf::from("sample-config.yaml"));
        expected.platform.sandbox = true;
        expected.defaults.visibility = Some(Visibility::Public);
        expected.defaults.allow_download = Some(false);
        assert_eq!(sample, expected);
    }

    #[test]
    fn every_key_is_read() {
        let c = parse(
            r#"
inbox: /data/in
done: ~/done
failed: ../failed
duplicates: ./dups
state_dir: /data/in/.state
require_caption: false
watch:
  mode: poll
  poll_interval: 500ms
  settle: 2m 30s
  caption_wait: 0s
  incomplete_timeout: 1h
  rescan_interval: 30s
  extensions: [MP4, .mov]
  ignore: ["*.bak", "draft-*"]
publish:
  concurrency: 2
  min_interval: 10m
  duplicates: allow
  retry: {attempts: 3, initial: 1s, max: 1m}
upload:
  multipart_threshold: 100MB
  part_size: 5 MiB
  parallel_parts: 4
  max_rate: 20MiB
platform:
  sandbox: true
  creator_url: http://127.0.0.1:8930
  vod_url: http://127.0.0.1:8930/vod
  upload_scheme: http
  timeout: 5s
accounts:
  zeta:
    cookie_file: cookies/zeta.txt
    csrf_token: abc123
  alpha:
    cookie_env: ALPHA_COOKIE
status:
  listen: off
  token: s3cret
defaults:
  visibility: private
  account: alpha
"#,
        );
        let home = PathBuf::from(std::env::var_os("HOME").expect("HOME"));
        assert_eq!(c.inbox, Path::new("/data/in"));
        assert_eq!(c.done, normalize(&home.join("done")));
        assert_eq!(c.failed, Path::new("/srv/failed"));
        assert_eq!(c.duplicates, Path::new("/srv/drop/dups"));
        assert!(!c.require_caption);
        assert_eq!(c.watch.mode, WatchMode::Poll);
        assert_eq!(c.watch.poll_interval, Duration::from_millis(500));
        assert_eq!(c.watch.settle, Duration::from_secs(150));
        assert_eq!(c.watch.caption_wait, Duration::ZERO);
        assert_eq!(c.watch.incomplete_timeout, Duration::from_secs(3600));
        assert_eq!(c.watch.rescan_interval, Duration::from_secs(30));
        assert_eq!(c.watch.extensions, vec!["mp4", "mov"]);
        assert!(c.watch.ignore[1].matches("draft-1.mp4"));
        assert_eq!(c.publish.concurrency.get(), 2);
        assert_eq!(c.publish.min_interval, Duration::from_secs(600));
        assert_eq!(c.publish.duplicates, DuplicatePolicy::Allow);
        assert_eq!(c.publish.retry.attempts.get(), 3);
        assert_eq!(c.publish.retry.max, Duration::from_secs(60));
        assert_eq!(c.upload.multipart_threshold, 100_000_000);
        assert_eq!(c.upload.part_size, 5 * MIB);
        assert_eq!(c.upload.parallel_parts.get(), 4);
        assert_eq!(c.upload.max_rate, Some(20 * MIB));
        assert!(c.platform.sandbox);
        assert_eq!(
            c.platform.douyin_web.vod_url.as_str(),
            "http://127.0.0.1:8930/vod"
        );
        assert_eq!(c.platform.douyin_web.upload_scheme.as_str(), "http");
        assert_eq!(c.platform.timeout, Duration::from_secs(5));
        let names: Vec<&str> = c.accounts.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(names, vec!["zeta", "alpha"], "file order");
        assert_eq!(
            web(&c.accounts[0]).cookie,
            CookieSource::File("/srv/drop/cookies/zeta.txt".into())
        );
        assert_eq!(
            web(&c.accounts[0]).csrf_token.as_ref().map(Secret::expose),
            Some("abc123")
        );
        assert!(c.account("alpha").is_some() && c.account("beta").is_none());
        assert_eq!(c.status.listen, None);
        assert_eq!(c.status.token.as_ref().map(Secret::expose), Some("s3cret"));
        assert_eq!(c.defaults.visibility, Some(Visibility::Private));
        assert!(!format!("{c:?}").contains("s3cret"), "secrets are redacted");
        assert_eq!(c.excluded_dirs().len(), 4);
        assert_eq!(c.folders_to_create()[0], Path::new("/data/in"));
    }

    #[test]
    fn every_problem_is_reported_with_key_and_position() {
        let msg = bad(concat!(
            "watch:\n",
            "  setle: 3s\n",
            "  poll_interval: 0s\n",
            "  settle: 3\n",
            "upload:\n",
            "  part_size: 1MiB\n",
            "  max_rate: fast\n",
            "platform:\n",
            "  creator_url: ftp://x\n",
            "status:\n",
            "  listen: localhost\n",
            "defaults:\n",
            "  visiblity: public\n",
        ));
        let lines: Vec<&str> = msg.lines().collect();
        assert_eq!(
            lines,
            vec![
                "dropcast.yaml:2:3: watch: unknown field `setle`, did you mean `settle`?",
                "dropcast.yaml:3:18: watch.poll_interval: must be at least 10ms, found 0s",
                "dropcast.yaml:4:11: watch.settle: expected a duration with a unit, like `3s`, found a bare number",
                "dropcast.yaml:6:14: upload.part_size: a part must be between 5MiB and 64MiB, found 1048576 bytes",
                "dropcast.yaml:7:13: upload.max_rate: `fast` is not a size like `8MiB`, `512KiB`, `1GiB`, `20MB` or a number of bytes",
                "dropcast.yaml:9:16: platform.creator_url: `ftp://x` must start with http:// or https://",
                "dropcast.yaml:11:11: status.listen: `localhost` is not `off` or an address like `127.0.0.1:8931`",
                "dropcast.yaml:13:3: defaults: unknown field `visiblity`, did you mean `visibility`?",
            ]
        );
    }

    #[test]
    fn accounts_rules() {
        assert!(bad("accounts: {}\n").contains("accounts: configure at least one account"));
        assert!(bad("accounts:\n  a: {cookie_env: X, cookie_file: f}\n").contains("not both"));
        assert!(
            bad("accounts:\n  a: {platform: douyin-web}\n")
                .contains("dropcast.yaml:2:3: accounts.a: give `cookie_env` or `cookie_file`")
        );
        let msg = bad("accounts:\n  a: {cookie_env: \"sessionid=abc123\"}\n");
        assert!(
            msg.contains("accounts.a.cookie_env: expected the name of an environment variable"),
            "{msg}"
        );
        assert!(!msg.contains("abc123"), "{msg}");
        let msg = bad("accounts:\n  a: {cookie_env: X, csrf_token: 12345}\n");
        assert!(
            msg.contains("accounts.a.csrf_token: expected a string"),
            "{msg}"
        );
        assert!(!msg.contains("12345"), "{msg}");
        assert!(
            bad("defaults: {account: nobody}\n")
                .contains("defaults.account: no account named `nobody`; configured: main")
        );
    }

    #[test]
    fn folder_conflicts() {
        assert!(
            bad("inbox: ./x\ndone: x\n")
                .contains("dropcast.yaml:2:7: done: `done` and `inbox` are the same folder")
        );
        assert!(
            bad("state_dir: ./done/state\n").contains("state_dir: `state_dir` lies inside `done`")
        );
        assert!(bad("inbox: ./failed/in\n").contains("`inbox` lies inside `failed`"));
        assert!(
            bad("done: ./.dropcast/done\n")
                .contains("dropcast.yaml:1:7: done: `done` lies inside `state_dir`")
        );
        // Outputs inside the inbox are fine.
        let c = parse("inbox: .\ndone: ./done\n");
        assert!(c.done.starts_with(&c.inbox));
    }

    #[test]
    fn retry_initial_must_not_exceed_max() {
        assert!(
            bad("publish:\n  retry: {initial: 10m, max: 1m}\n")
                .contains("publish.retry.initial: `initial` (10m) is longer than `max` (1m)")
        );
        assert!(bad("publish:\n  retry: {initial: 10m}\n").contains("is longer than `max` (5m)"));
        assert!(
            bad("publish:\n  concurrency: 0\n")
                .contains("publish.concurrency: must be between 1 and 64, found 0")
        );
    }

    #[test]
    fn unusable_values_are_refused_with_their_bounds() {
        // Regression (issue 9): values that make the agent spin, hammer the platform or
        // never finish were accepted.
        for (yaml, says) in [
            (
                "publish:\n  retry: {attempts: 4294967295}\n",
                "publish.retry.attempts: must be between 1 and 100, found 4294967295",
            ),
            (
                "publish:\n  retry: {initial: 1ns}\n",
                "publish.retry.initial: must be at least 10ms, found 1ns",
            ),
            (
                "watch:\n  rescan_interval: 1ns\n",
                "watch.rescan_interval: must be at least 100ms, found 1ns",
            ),
            (
                "upload:\n  max_rate: 1\n",
                "upload.max_rate: must be at least 64KiB (per second), found 1 bytes",
            ),
            (
                "platform:\n  timeout: 30days\n",
                "platform.timeout: must be at most 1h, found 30days",
            ),
            (
                "upload:\n  parallel_parts: 1000\n",
                "upload.parallel_parts: must be between 1 and 32, found 1000",
            ),
        ] {
            let err = bad(yaml);
            assert!(err.contains(says), "{yaml}: {err}");
        }
    }

    #[test]
    fn watch_lists() {
        assert!(
            bad("watch:\n  extensions: []\n")
                .contains("watch.extensions: list at least one video extension")
        );
        assert!(
            bad("watch:\n  extensions: [mp4, \"m p4\"]\n").contains(
                "dropcast.yaml:2:21: watch.extensions[1]: `m p4` is not a file extension"
            )
        );
        assert!(
            bad("watch:\n  ignore: [\"[\"]\n")
                .contains("watch.ignore[0]: `[` is not a glob pattern")
        );
        assert!(bad("watch:\n  mode: pol\n").contains("did you mean `poll`?"));
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("64MiB"), Ok(64 * MIB));
        assert_eq!(parse_size("8 MiB"), Ok(8 * MIB));
        assert_eq!(parse_size("512KiB"), Ok(512 * KIB));
        assert_eq!(parse_size("1GiB"), Ok(GIB));
        assert_eq!(parse_size("1.5GiB"), Ok(GIB + GIB / 2));
        assert_eq!(parse_size("20MB"), Ok(20_000_000));
        assert_eq!(parse_size("100kb"), Ok(100_000));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("4096B"), Ok(4096));
        for bad in [
            "",
            "MiB",
            "1.MiB",
            ".5MiB",
            "1..2MiB",
            "5 parsecs",
            "-1MiB",
            "1e3",
        ] {
            assert!(parse_size(bad).is_err(), "{bad:?} should fail");
        }
        assert!(
            parse_size("99999999999GiB")
                .unwrap_err()
                .contains("too large")
        );
        assert_eq!(
            parse("upload:\n  multipart_threshold: 1048576\n")
                .upload
                .multipart_threshold,
            MIB
        );
    }

    #[test]
    fn paths_resolve() {
        let home = Path::new("/home/u");
        assert_eq!(
            resolve_path("~/x", base(), Some(home)),
            Ok(PathBuf::from("/home/u/x"))
        );
        assert_eq!(
            resolve_path("~", base(), Some(home)),
            Ok(PathBuf::from("/home/u"))
        );
        assert!(resolve_path("~/x", base(), None).is_err());
        assert_eq!(
            resolve_path("a/../b/./c", base(), None),
            Ok(PathBuf::from("/srv/drop/b/c"))
        );
        assert_eq!(
            resolve_path("/abs", base(), None),
            Ok(PathBuf::from("/abs"))
        );
        assert!(resolve_path("", base(), None).is_err());
    }

    #[test]
    fn load_resolves_against_the_config_folder() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("dropcast.yaml");
        std::fs::write(&path, "inbox: ./in\nstatus: {listen: \"127.0.0.1:0\"}\n").expect("write");
        let c = Config::load(&path).expect("valid");
        assert_eq!(c.inbox, dir.path().join("in"));
        assert_eq!(c.file.as_deref(), Some(path.as_path()));
        assert_eq!(c.status.listen, Some(SocketAddr::from(([127, 0, 0, 1], 0))));
        let missing = dir.path().join("nope.yaml");
        let err = Config::load(&missing).expect_err("missing");
        assert!(matches!(err, ConfigError::Read { .. }));
        assert!(err.to_string().contains("nope.yaml"));
        std::fs::write(&path, "watch: {settle: 1}\n").expect("write");
        let err = Config::load(&path).expect_err("invalid").to_string();
        assert!(
            err.starts_with(&format!("{}:1:17: watch.settle", path.display())),
            "{err}"
        );
    }

    #[test]
    fn sandbox_faults_are_read_and_bad_ones_named_with_their_line() {
        let dir = tempfile::tempdir().unwrap();
        let c = Config::parse(
            "platform:\n  sandbox: true\n  sandbox_faults:\n    - {step: create, action: drop_answer, times: 1}\n",
            None,
            dir.path(),
        )
        .unwrap();
        assert_eq!(c.platform.sandbox_faults.len(), 1);
        let err = Config::parse(
            "platform:\n  sandbox_faults:\n    - {step: create, action: drop_answer}\n    - {step: nowhere, action: reset}\n",
            Some(Path::new("dropcast.yaml")),
            dir.path(),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("dropcast.yaml:4:7: platform.sandbox_faults[1]"),
            "{err}"
        );
        assert!(err.contains("nowhere"), "{err}");
    }

    #[test]
    fn status_on_a_public_address_needs_a_token() {
        let dir = tempfile::tempdir().unwrap();
        let err = Config::parse(
            "status:\n  listen: 0.0.0.0:8931\n",
            Some(Path::new("dropcast.yaml")),
            dir.path(),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("dropcast.yaml:2:11: status.listen: refusing"),
            "{err}"
        );
        Config::parse(
            "status:\n  listen: 0.0.0.0:8931\n  token: s3cret-token\n",
            None,
            dir.path(),
        )
        .unwrap();
    }
}
