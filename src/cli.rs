//! The command line (README "Commands"): parses arguments, sets up logging, runs one command
//! and turns its result into an exit status. anyhow stops here; nothing below uses it.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand, ValueEnum};
use time::OffsetDateTime;

use crate::caption::{self, CaptionFields};
use crate::config::Config;
use crate::driver::{self, Driver, DriverLock};
use crate::lock::Role;
use crate::pipeline::handoff::{self, Answer, Handoff, Request};
use crate::pipeline::{self, Access, Bundle, Context, FatalError, RunOptions};
use crate::sandbox::{self, SandboxOptions};
use crate::watch;

/// Publishes short videos dropped into a folder to Douyin, exactly once.
#[derive(Debug, Parser)]
#[command(name = "dropcast", version = crate::version::VERSION, about, long_about = None)]
pub(crate) struct Cli {
    /// Config file [default: $DROPCAST_CONFIG, else ./dropcast.yaml]
    #[arg(short = 'c', long = "config", global = true, env = "DROPCAST_CONFIG")]
    pub config: Option<PathBuf>,
    /// Log format on stderr
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub(crate) log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the agent: watch the inbox and publish what settles
    Watch {
        /// Process what is in the inbox now, wait for it, then exit (1 if any job failed)
        #[arg(long)]
        once: bool,
        /// Start with an empty ledger even though done/ or duplicates/ hold receipts of
        /// earlier posts (they will not be recognised as duplicates); needed once
        #[arg(long)]
        new_ledger: bool,
    },
    /// Publish one video now (handed to the running agent, if one runs)
    Publish {
        video: PathBuf,
        /// Caption file [default: the one beside the video, per the folder rules]
        #[arg(long)]
        caption: Option<PathBuf>,
        /// Start with an empty ledger even though done/ or duplicates/ hold receipts of
        /// earlier posts; needed once
        #[arg(long)]
        new_ledger: bool,
    },
    /// Check the config, the folders and each account's cookie (protocol step 1)
    Check,
    /// Queue by state, jobs in flight, videos waiting for a caption, paused accounts,
    /// failures with the fix
    Status {
        /// JSON for scripts
        #[arg(long)]
        json: bool,
    },
    /// Published posts, newest first: time, file, short hash, account, post address
    History {
        /// How many
        #[arg(short = 'n', long = "count", default_value_t = 20)]
        n: usize,
        /// JSON for scripts
        #[arg(long)]
        json: bool,
    },
    /// Put a failed, unconfirmed or abandoned job back in the queue (failed files return
    /// from failed/ to the inbox)
    Retry {
        /// The video's SHA-256, or its first 6+ hex digits (shown in logs and receipts)
        #[arg(required_unless_present = "all_failed")]
        hash: Option<String>,
        /// Every failed job
        #[arg(long, conflicts_with = "hash")]
        all_failed: bool,
        /// Only this account's target of a drop to several accounts (re-run where the
        /// video lies: in done/ when another target posted)
        #[arg(long, requires = "hash")]
        account: Option<String>,
    },
    /// The ledger: `rebuild` restores published posts from the receipts in done/ and
    /// duplicates/; `migrate` upgrades a shared ledger's schema
    Ledger {
        #[command(subcommand)]
        action: LedgerAction,
    },
    /// Check caption files (prints every problem with line and column) and videos (prints
    /// what was measured: duration, size, frame rate, codec)
    Validate {
        #[arg(required = true)]
        captions: Vec<PathBuf>,
    },
    /// Log a `douyin` account in: its browser profile opens the creator center (where there
    /// is no screen, or with --headless, the QR code to scan is printed and saved as a PNG);
    /// a `tiktok` account: prints the address to authorize dropcast at (opened in a browser
    /// unless --headless) and waits for TikTok's redirect; exits 0 once the session works, 1
    /// on timeout or refusal
    Login {
        /// The account, as named in the config
        account: String,
        /// Never open a window
        #[arg(long)]
        headless: bool,
    },
    /// Each account: its platform, who it is, and whether its session works
    Accounts,
    /// Notifications: `notify test` sends one of each event to every webhook in `notify:`
    Notify {
        #[command(subcommand)]
        action: crate::notify::NotifyCommand,
    },
    /// Run the platform simulator alone
    Sandbox {
        #[arg(long, default_value = "127.0.0.1:8930")]
        addr: SocketAddr,
        /// Listen on an address other machines can reach (anything but loopback). The
        /// sandbox has no authentication: anyone who reaches it can post and read posts.
        #[arg(long)]
        allow_remote: bool,
    },
    /// Write a commented starter config (DIR/dropcast.yaml, the sandbox on) and create the
    /// folders it names; never overwrites a config (exit 2 when one is there)
    Init {
        /// The folder to set up [default: the current folder]
        dir: Option<PathBuf>,
    },
    /// Print a shell completion script, e.g. `dropcast completions bash >
    /// ~/.local/share/bash-completion/completions/dropcast`
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff), e.g. `dropcast man | man -l -`; `dropcast man ledger
    /// rebuild` prints that command's page
    Man {
        /// A command (and subcommand) whose page to print [default: dropcast's]
        command: Vec<String>,
    },
}

/// How long the process waits at exit for blocking work still running; after that it
/// exits anyway (what was unfinished resumes from its ledger checkpoint next time).
const RUNTIME_SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(2);
#[derive(Debug, Subcommand)]
pub enum LedgerAction {
    /// Record every post named by a receipt in done/ and duplicates/, so that the same
    /// videos are duplicates again (after the ledger was lost)
    Rebuild,
    /// Upgrade the ledger's schema to this dropcast's (needed once for a shared PostgreSQL
    /// ledger, from any machine; a SQLite ledger is upgraded whenever it is opened) and say
    /// which version it is at
    Migrate,
}

/// Parses the command line and runs it.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    // `publish` at a terminal draws a progress bar; routine log lines would tear it.
    let bar = matches!(cli.command, Command::Publish { .. }) && std::io::stderr().is_terminal();
    crate::logging::init(
        match cli.log_format {
            LogFormat::Text => crate::logging::Format::Text,
            LogFormat::Json => crate::logging::Format::Json,
        },
        // chromiumoxide reports CDP events it does not model as warnings: noise to users.
        if bar {
            "warn,chromiumoxide=error"
        } else {
            "info,chromiumoxide=error"
        },
        std::io::stderr().is_terminal(),
    );
    // Blocking work (hashing, SQLite, file moves) is bounded: a handful of threads, not
    // tokio's default of 512, keeps memory flat however many parts an upload has.
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(8)
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let result = runtime.block_on(run(cli));
    // A blocking task that never returns (a read stuck on a hung file system, say) must
    // not keep the process alive after its work is done or SIGTERM asked it to stop.
    runtime.shutdown_timeout(RUNTIME_SHUTDOWN_GRACE);
    match result {
        Ok(code) => code,
        Err(e) => {
            // Our errors say their cause themselves; `{e:#}` would repeat it.
            tracing::error!("{e}");
            eprintln!("error: {e}");
            let code = e
                .downcast_ref::<FatalError>()
                .map(FatalError::exit_code)
                .unwrap_or(1);
            ExitCode::from(code)
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Watch { once, new_ledger } => {
            watch_cmd(cli.config.as_deref(), once, new_ledger).await
        }
        Command::Publish {
            video,
            caption,
            new_ledger,
        } => publish_cmd(cli.config.as_deref(), &video, caption, new_ledger).await,
        Command::Check => check_cmd(cli.config.as_deref()).await,
        Command::Login { account, headless } => {
            login_cmd(cli.config.as_deref(), &account, headless).await
        }
        Command::Accounts => accounts_cmd(cli.config.as_deref()).await,
        Command::Status { json } => status_cmd(cli.config.as_deref(), json),
        Command::History { n, json } => history_cmd(cli.config.as_deref(), n, json),
        Command::Retry {
            hash,
            all_failed,
            account,
        } => retry_cmd(cli.config.as_deref(), hash, account, all_failed).await,
        Command::Ledger {
            action: LedgerAction::Rebuild,
        } => ledger_rebuild_cmd(cli.config.as_deref()).await,
        Command::Ledger {
            action: LedgerAction::Migrate,
        } => ledger_migrate_cmd(cli.config.as_deref()),
        Command::Validate { captions } => Ok(validate_cmd(cli.config.as_deref(), &captions)),
        Command::Sandbox { addr, allow_remote } => sandbox_cmd(addr, allow_remote).await,
        Command::Init { dir } => Ok(init_cmd(dir.as_deref().unwrap_or(Path::new(".")))),
        Command::Completions { shell } => {
            crate::cli_docs::completions(shell, &mut std::io::stdout().lock())
                .or_else(closed_pipe)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Man { command } => man_cmd(&command),
        Command::Notify { action } => notify_cmd(cli.config.as_deref(), action).await,
    }
}

/// `dropcast init [DIR]`: exit 2, with nothing made, when DIR holds a config already.
fn init_cmd(dir: &Path) -> ExitCode {
    match crate::init::init(dir) {
        Ok(made) => {
            let cwd = std::env::current_dir().ok();
            let env_set = std::env::var_os("DROPCAST_CONFIG").is_some();
            print!("{}", made.render(cwd.as_deref(), env_set));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(match e {
                crate::init::InitError::Exists(_) => 2,
                _ => 1,
            })
        }
    }
}

/// `dropcast man [COMMAND…]`: exit 2 for a command that has no page.
fn man_cmd(command: &[String]) -> anyhow::Result<ExitCode> {
    use crate::cli_docs::ManError;
    match crate::cli_docs::man_page(command, &mut std::io::stdout().lock()) {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(ManError::Write(e)) => {
            closed_pipe(e)?;
            Ok(ExitCode::SUCCESS)
        }
        Err(e @ ManError::NoSuchCommand { .. }) => {
            eprintln!("error: {e}");
            Ok(ExitCode::from(2))
        }
    }
}

/// Output cut short by its reader (`dropcast man | head`) is not an error.
fn closed_pipe(e: std::io::Error) -> std::io::Result<()> {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        Ok(())
    } else {
        Err(e)
    }
}

/// Ctrl-C, or the service manager's stop (SIGTERM; Windows' console events): `stop`.
async fn stop_signal() {
    crate::stop::requested().await
}

/// `-c`, else `$DROPCAST_CONFIG` (clap fills both), else `./dropcast.yaml`.
fn config_path(explicit: Option<&Path>) -> PathBuf {
    explicit
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("dropcast.yaml"))
}

fn load_config(explicit: Option<&Path>) -> Result<Config, FatalError> {
    let path = config_path(explicit);
    // Absolute, so that every folder the config names is absolute too.
    let path = std::path::absolute(&path).unwrap_or(path);
    Ok(Config::load(&path)?)
}

/// Says once on stderr which one-off command this one waits for.
fn say_waiting(holder: &crate::lock::Holder) {
    eprintln!("{}", driver::waiting_line(holder));
}

/// Prints an answer as `publish` and `retry` print their results.
fn print_answer(answer: &Answer) -> ExitCode {
    let (text, code) = answer.render();
    println!("{text}");
    ExitCode::from(code)
}

/// Becomes the one driver of the state folder, or fails: an agent runs there.
async fn drive_or_refuse(
    config: &crate::config::Config,
    role: Role,
) -> Result<DriverLock, FatalError> {
    crate::root::drive(config, role, say_waiting).await
}

async fn watch_cmd(
    config: Option<&Path>,
    once: bool,
    new_ledger: bool,
) -> anyhow::Result<ExitCode> {
    let config = load_config(config)?;
    let lock = drive_or_refuse(&config, Role::Agent).await?;
    let status_listen = config.status.listen;
    let status_token = config.status.token.clone();
    let ctx = Arc::new(
        crate::root::build(
            config,
            Access::Driver {
                lock: &lock,
                new_ledger,
            },
        )
        .await?,
    );
    // The status server and dashboard, for as long as the agent runs.
    let _status = match status_listen {
        Some(addr) => {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|e| anyhow::anyhow!("status.listen: cannot listen on {addr}: {e}"))?;
            let handle = crate::status::start(listener, Arc::clone(&ctx), status_token).await?;
            tracing::info!(url = %handle.url(), "status server and dashboard");
            Some(handle)
        }
        None => None,
    };
    let shutdown = stop_signal();
    let summary = pipeline::run(
        Arc::clone(&ctx),
        RunOptions {
            once,
            ..RunOptions::default()
        },
        shutdown,
    )
    .await?;
    for waiting in &summary.waiting_for_caption {
        tracing::warn!(file = %ctx.relative(waiting).display(), "left in the inbox: no caption");
    }
    tracing::info!(
        published = summary.published,
        duplicates = summary.duplicates,
        failed = summary.failed,
        held = summary.held,
        waiting_for_caption = summary.waiting_for_caption.len(),
        "finished"
    );
    if let Ok(ctx) = Arc::try_unwrap(ctx) {
        ctx.shutdown().await;
    }
    Ok(if summary.any_failed() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

async fn publish_cmd(
    config: Option<&Path>,
    video: &Path,
    caption: Option<PathBuf>,
    new_ledger: bool,
) -> anyhow::Result<ExitCode> {
    let config = load_config(config)?;
    // A job for this video that ended after this moment (less a margin for a job that
    // archived it while this command was starting) is this command's answer.
    let since = std::time::SystemTime::now() - std::time::Duration::from_secs(2);
    let video = std::path::absolute(video)?;
    let rel = crate::archive::inbox_relative(&config.inbox, &video).to_path_buf();
    let meta = match std::fs::metadata(&video) {
        Ok(meta) => meta,
        Err(e) => {
            // Published (and archived) a moment ago, by the agent or another `publish`?
            if e.kind() == std::io::ErrorKind::NotFound
                && let Some(answer) = answer_from_ledger(&config, &rel, since)?
            {
                return Ok(print_answer(&answer));
            }
            anyhow::bail!("cannot read {}: {e}", video.display());
        }
    };
    if !meta.is_file() {
        anyhow::bail!("{} is not a file", video.display());
    }
    let filter = watch::NameFilter::new(&config.watch.extensions, config.watch.ignore.clone());
    let caption = match caption {
        Some(c) => Some(std::path::absolute(c)?),
        None => match watch::find_caption(&video, &filter)? {
            watch::CaptionLookup::Own(c) | watch::CaptionLookup::Folder(c) => Some(c),
            watch::CaptionLookup::Missing if config.require_caption => anyhow::bail!(
                "no caption for {}: put {} beside it or pass --caption FILE",
                video.display(),
                video.with_extension("yaml").display()
            ),
            watch::CaptionLookup::Missing => None,
            watch::CaptionLookup::Shared(shared) => {
                anyhow::bail!("{shared} (or pass --caption FILE)")
            }
        },
    };
    // One driver per state folder: the running agent publishes it, or this command does
    // once no other command holds the folder.
    loop {
        match crate::root::acquire(&config, Role::Publish, say_waiting).await? {
            Driver::Agent(holder) => {
                tracing::info!(
                    agent = holder.pid,
                    "an agent is running; handing the video to it"
                );
                let request = Request::Publish {
                    video: video.clone(),
                    caption: caption.clone(),
                    since_ms: handoff::unix_ms(since),
                };
                match handoff::ask(&config.state_dir, &holder, &request).await? {
                    Handoff::Answered(answer) => return Ok(print_answer(&answer)),
                    Handoff::AgentGone => {
                        tracing::info!("the agent stopped before answering; publishing here");
                    }
                }
            }
            Driver::Us(lock) => {
                return publish_as_driver(config, &lock, video, caption, since, new_ledger).await;
            }
        }
    }
}

/// The ledger's answer for a video that is gone, without taking any lock (reading is
/// safe beside a driver). `None` without a ledger or a matching job.
fn answer_from_ledger(
    config: &crate::config::Config,
    rel: &Path,
    since: std::time::SystemTime,
) -> anyhow::Result<Option<Answer>> {
    if !crate::ledger::Ledger::exists(config) {
        return Ok(None);
    }
    let ledger = crate::ledger::Ledger::open_configured(config).map_err(FatalError::from)?;
    Ok(Answer::from_ledger(&ledger, rel, since).map_err(FatalError::from)?)
}

/// `publish` as the driver of the state folder: runs the job here.
async fn publish_as_driver(
    config: crate::config::Config,
    lock: &DriverLock,
    video: PathBuf,
    caption: Option<PathBuf>,
    since: std::time::SystemTime,
    new_ledger: bool,
) -> anyhow::Result<ExitCode> {
    let ctx = Arc::new(crate::root::build(config, Access::Driver { lock, new_ledger }).await?);
    let answer = match std::fs::metadata(&video) {
        Ok(meta) if meta.is_file() => {
            let settled = watch::Settled::from_metadata(video.clone(), &meta);
            let name = ctx.relative(&video).to_string_lossy().into_owned();
            let bar = std::io::stderr()
                .is_terminal()
                .then(|| tokio::spawn(draw_progress(Arc::clone(&ctx), name)));
            let outcome = pipeline::job::run(
                &ctx,
                Bundle {
                    video,
                    caption,
                    settled,
                    rerun: None,
                },
            )
            .await;
            if let Some(bar) = bar {
                bar.abort();
                let _ = bar.await;
            }
            Answer::of(&outcome)
        }
        _ => {
            // Gone while this command waited for another one: that one may have
            // published it; the ledger says.
            let rel = ctx.relative(&video).to_path_buf();
            ctx.ledger(move |l| Answer::from_ledger(l, &rel, since))
                .await
                .map_err(FatalError::from)?
                .unwrap_or(Answer::NotPublished {
                    reason: "the video vanished".into(),
                })
        }
    };
    let code = print_answer(&answer);
    // Its notifications go out now, as far as they can; the rest wait in the outbox.
    crate::notify::worker::flush(&ctx, PUBLISH_NOTIFY_FLUSH).await;
    if let Ok(ctx) = Arc::try_unwrap(ctx) {
        ctx.shutdown().await;
    }
    Ok(code)
}

/// How long `dropcast publish` tries to deliver its notifications before it exits.
const PUBLISH_NOTIFY_FLUSH: std::time::Duration = std::time::Duration::from_secs(10);

/// Draws `dropcast publish`'s progress bar (step, bytes, rate, time left) on stderr until
/// aborted; the bar is cleared when it is dropped.
async fn draw_progress(ctx: Arc<Context>, video: String) {
    use indicatif::{ProgressBar, ProgressStyle};
    let bar = ProgressBar::new(0);
    let style = ProgressStyle::with_template(
        "{prefix:>13} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} {eta} left",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .progress_chars("=> ");
    bar.set_style(style);
    struct Clear(ProgressBar);
    impl Drop for Clear {
        fn drop(&mut self) {
            self.0.finish_and_clear();
        }
    }
    let bar = Clear(bar);
    let mut step = None;
    loop {
        if let Some(job) = ctx
            .live
            .snapshot()
            .in_flight
            .into_iter()
            .find(|j| j.video == video)
        {
            if step.as_ref() != Some(&job.step) {
                // A new step: its own rate and time left.
                bar.0.reset();
                step = Some(job.step.clone());
            }
            bar.0.set_prefix(job.step.to_string());
            bar.0.set_length(job.bytes_total);
            bar.0.set_position(job.bytes_done);
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

async fn check_cmd(config: Option<&Path>) -> anyhow::Result<ExitCode> {
    let path = config_path(config);
    let config = load_config(config)?;
    println!("config      {}: ok", path.display());
    let mut ok = true;
    for dir in config.folders_to_create() {
        match check_writable(dir) {
            Ok(()) => println!("folder      {}: writable", dir.display()),
            Err(e) => {
                ok = false;
                println!("folder      {}: NOT writable: {e}", dir.display());
            }
        }
    }
    let watching = match config.watch.mode {
        crate::config::WatchMode::Poll => format!(
            "polled every {} (watch.mode: poll)",
            humantime::format_duration(config.watch.poll_interval)
        ),
        crate::config::WatchMode::Native => "native file events (watch.mode: native)".into(),
        crate::config::WatchMode::Auto => match watch::remote_fs(&config.inbox) {
            Some(remote) => format!(
                "polled every {}: it is on a {remote}, where native events miss other machines' changes",
                humantime::format_duration(config.watch.poll_interval)
            ),
            None => "native file events (polled instead if they cannot start)".into(),
        },
    };
    println!("inbox       {}: {watching}", config.inbox.display());
    // `check` only looks (it never opens the ledger). A cookie it cannot load is a
    // problem of that account (exit 1), not of the config: the others are still checked.
    let mut config = config;
    let ctx = loop {
        match crate::root::build(config.clone(), Access::Inspect).await {
            Ok(ctx) => break Some(ctx),
            Err(FatalError::Account { account, reason }) => {
                ok = false;
                println!("account     {account}: {reason}");
                config.accounts.retain(|a| a.name != account);
                if config.accounts.is_empty() {
                    break None;
                }
            }
            Err(e) => return Err(e.into()),
        }
    };
    let Some(ctx) = ctx else {
        return Ok(ExitCode::from(1));
    };
    if let Some(url) = ctx.sandbox_url() {
        println!("platform    sandbox at {url} (platform.sandbox: true; nothing reaches Douyin)");
    }
    for acc in &ctx.config.accounts {
        let Some(account) = ctx.accounts.get(&acc.name) else {
            continue;
        };
        match account.backend.check_account(&account.account).await {
            Ok(_) => println!(
                "account     {}: session works (one harmless request answered)",
                acc.name
            ),
            Err(e) => {
                ok = false;
                println!("account     {}: {e}", acc.name);
            }
        }
    }
    ctx.shutdown().await;
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn status_cmd(config: Option<&Path>, json: bool) -> anyhow::Result<ExitCode> {
    let config = load_config(config)?;
    let report = crate::report::status(&config)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!(
            "{}",
            crate::report::render_status(&report, terminal_width())
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn history_cmd(config: Option<&Path>, n: usize, json: bool) -> anyhow::Result<ExitCode> {
    let config = load_config(config)?;
    let rows = crate::report::history(&config, n)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else {
        print!("{}", crate::report::render_history(&rows));
    }
    Ok(ExitCode::SUCCESS)
}

/// The terminal's width when stdout is one (`$COLUMNS`, else 100); `None` when piped.
fn terminal_width() -> Option<usize> {
    std::io::stdout().is_terminal().then(|| {
        std::env::var("COLUMNS")
            .ok()
            .and_then(|c| c.parse().ok())
            .unwrap_or(100)
    })
}

async fn retry_cmd(
    config: Option<&Path>,
    hash: Option<String>,
    account: Option<String>,
    all_failed: bool,
) -> anyhow::Result<ExitCode> {
    use crate::pipeline::requeue;
    let config = load_config(config)?;
    loop {
        match crate::root::acquire(&config, Role::Retry, say_waiting).await? {
            Driver::Agent(holder) => {
                let request = Request::Retry {
                    hash: hash.clone(),
                    account: account.clone(),
                    all_failed,
                };
                match handoff::ask(&config.state_dir, &holder, &request).await? {
                    Handoff::Answered(answer) => return Ok(print_answer(&answer)),
                    Handoff::AgentGone => continue,
                }
            }
            Driver::Us(lock) => {
                let results = {
                    let mut ledger = crate::root::ledger(&config, &lock, false)?;
                    match hash.as_deref() {
                        Some(hash) if !all_failed => vec![requeue::retry_target(
                            &config,
                            &mut ledger,
                            hash,
                            account.as_deref(),
                        )],
                        _ => requeue::retry_all_failed(&config, &mut ledger),
                    }
                };
                let code = print_answer(&handoff::render_retry(&results));
                let places: Vec<requeue::InPlace> = results
                    .iter()
                    .flatten()
                    .filter_map(|r| r.in_place.clone())
                    .collect();
                if places.is_empty() {
                    return Ok(code);
                }
                return rerun_as_driver(config, &lock, places).await;
            }
        }
    }
}

/// `retry` of targets whose drop lies in `done/`, as the driver: each re-run there.
async fn rerun_as_driver(
    config: crate::config::Config,
    lock: &DriverLock,
    places: Vec<crate::pipeline::requeue::InPlace>,
) -> anyhow::Result<ExitCode> {
    let ctx = crate::root::build(
        config,
        Access::Driver {
            lock,
            new_ledger: false,
        },
    )
    .await?;
    let mut code = ExitCode::SUCCESS;
    for place in places {
        let meta = match std::fs::metadata(&place.video) {
            Ok(meta) => meta,
            Err(e) => {
                println!("not re-run: cannot read {}: {e}", place.video.display());
                code = ExitCode::FAILURE;
                continue;
            }
        };
        let bundle = Bundle {
            settled: watch::Settled::from_metadata(place.video.clone(), &meta),
            video: place.video,
            caption: place.caption,
            rerun: Some(pipeline::job::Rerun {
                account: place.account,
                receipt: place.receipt,
            }),
        };
        let outcome = pipeline::job::run(&ctx, bundle).await;
        if print_answer(&Answer::of(&outcome)) != ExitCode::SUCCESS {
            code = ExitCode::FAILURE;
        }
    }
    ctx.shutdown().await;
    Ok(code)
}

/// `dropcast ledger rebuild`: as the driver (never beside a running agent), records every
/// post the receipts in done/ and duplicates/ name.
async fn ledger_rebuild_cmd(config: Option<&Path>) -> anyhow::Result<ExitCode> {
    let config = load_config(config)?;
    let lock = drive_or_refuse(&config, Role::Rebuild).await?;
    let mut ledger = crate::root::ledger_to_rebuild(&config, &lock)?;
    let report = tokio::task::block_in_place(|| crate::lost_ledger::rebuild(&config, &mut ledger))
        .map_err(FatalError::from)?;
    println!(
        "ledger rebuilt from the receipts in {} and {}: {} read, {} restored, {} skipped, {} unreadable",
        config.done.display(),
        config.duplicates.display(),
        report.read,
        report.restored,
        report.skipped.len(),
        report.unreadable.len()
    );
    for (path, reason) in &report.unreadable {
        println!("  unreadable {}: {reason}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// `dropcast ledger migrate`: upgrades the configured ledger's schema and says from which
/// version (see `Ledger::migrate_configured`).
fn ledger_migrate_cmd(config: Option<&Path>) -> anyhow::Result<ExitCode> {
    let config = load_config(config)?;
    let migrated =
        tokio::task::block_in_place(|| crate::ledger::Ledger::migrate_configured(&config))
            .map_err(FatalError::from)?;
    println!("{migrated}");
    Ok(ExitCode::SUCCESS)
}

fn check_writable(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    tempfile::NamedTempFile::new_in(dir).map(drop)
}

/// Validates caption files against the config's defaults and accounts when a config is
/// found.
fn validate_cmd(config: Option<&Path>, captions: &[PathBuf]) -> ExitCode {
    let path = config_path(config);
    let (defaults, accounts) = if config.is_some() || path.exists() {
        match Config::load(&path) {
            Ok(c) => {
                let accounts: Vec<(String, crate::domain::Platform)> = c
                    .accounts
                    .iter()
                    .map(|a| (a.name.clone(), a.platform()))
                    .collect();
                (c.defaults, Some(accounts))
            }
            Err(e) => {
                eprintln!("{e}");
                return ExitCode::from(2);
            }
        }
    } else {
        (CaptionFields::default(), None)
    };
    let now = OffsetDateTime::now_utc();
    let mut bad = false;
    for file in captions {
        if is_video(file) {
            bad |= !validate_video(file, accounts.as_deref());
            continue;
        }
        let checked = caption::load_caption(file, &defaults, true, now).and_then(|c| {
            // Without a config there is no list of accounts to hold the name against.
            let Some(accounts) = accounts.as_ref() else {
                return Ok(c);
            };
            let names: Vec<&str> = accounts.iter().map(|(n, _)| n.as_str()).collect();
            if let Err(problem) = c.check_account(&names) {
                return Err(caption::CaptionError::Invalid(crate::yaml::Problems(vec![
                    problem,
                ])));
            }
            // The platforms of the accounts it goes to (its `account:`, else the first).
            let targets: Vec<&str> = if c.accounts.is_empty() {
                names.first().copied().into_iter().collect()
            } else {
                c.accounts.iter().map(String::as_str).collect()
            };
            let mut platforms: Vec<crate::domain::Platform> = Vec::new();
            for (_, platform) in accounts
                .iter()
                .filter(|(n, _)| targets.contains(&n.as_str()))
            {
                if !platforms.contains(platform) {
                    platforms.push(*platform);
                }
            }
            let mut problems = crate::yaml::Problems::new();
            for platform in platforms {
                if let Err(p) = c.check_for(platform) {
                    problems.extend(p);
                }
            }
            problems
                .into_result(c)
                .map_err(caption::CaptionError::Invalid)
        });
        match checked {
            Ok(c) => println!(
                "{}: ok ({} hashtags, {} mentions{})",
                file.display(),
                c.hashtags().count(),
                c.mention_ids().len(),
                c.publish_at
                    .map(|at| format!(", scheduled for {at}"))
                    .unwrap_or_default()
            ),
            Err(e) => {
                bad = true;
                println!("{e}");
            }
        }
    }
    if bad {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    }
}

/// A video by its extension (MP4/MOV/WebM…) or its first bytes; anything else is read as
/// a caption.
fn is_video(path: &Path) -> bool {
    watch::media::container_for(path) != watch::media::Container::Unknown
        || crate::media::looks_like_media(path)
}

/// Prints a video's measured facts on one line, or why they cannot be read; false then.
/// Prints what `path` measures and every limit it breaks on the platforms of the config's
/// `accounts` (every platform without a config); `false` when it cannot be read or breaks
/// one.
fn validate_video(path: &Path, accounts: Option<&[(String, crate::domain::Platform)]>) -> bool {
    let info = match crate::media::probe(path) {
        Ok(info) => info,
        Err(e) => {
            println!("{e}");
            return false;
        }
    };
    println!("{}: {info}", path.display());
    let mut platforms: Vec<crate::domain::Platform> = match accounts {
        Some(accounts) => accounts.iter().map(|(_, p)| *p).collect(),
        None => crate::domain::Platform::CHOICES
            .iter()
            .map(|(_, p)| *p)
            .collect(),
    };
    platforms.sort_by_key(|p| p.as_str());
    platforms.dedup();
    let mut ok = true;
    for limits in platforms
        .into_iter()
        .filter_map(crate::platform::media_limits)
    {
        for breach in crate::media::limits::breaches(limits, &info) {
            println!("{}: {breach}", path.display());
            ok = false;
        }
    }
    ok
}

/// `dropcast login ACCOUNT`: a `douyin` account's browser session, made by the user (or,
/// with `platform.sandbox: true`, by scanning the simulator's code for them).
async fn login_cmd(
    config: Option<&Path>,
    account: &str,
    headless: bool,
) -> anyhow::Result<ExitCode> {
    use crate::browser::login;
    let config = load_config(config)?;
    let Some(acc) = config.accounts.iter().find(|a| a.name == account) else {
        let names: Vec<&str> = config.accounts.iter().map(|a| a.name.as_str()).collect();
        let hint = crate::yaml::did_you_mean(account, &names)
            .map(|n| format!(", did you mean `{n}`?"))
            .unwrap_or_default();
        eprintln!("error: the config has no account `{account}`{hint}");
        return Ok(ExitCode::from(2));
    };
    if let crate::config::AccountKind::Tiktok(tiktok) = &acc.kind {
        return tiktok_login(&config, account, tiktok, headless).await;
    }
    if acc.platform() != crate::domain::Platform::Douyin {
        eprintln!(
            "error: account `{account}` is a `{}` account: its login is the cookie the config \
             names (cookie_env or cookie_file). `dropcast login` is for `douyin` accounts.",
            acc.platform()
        );
        return Ok(ExitCode::from(2));
    }
    std::fs::create_dir_all(&config.state_dir)?;
    let sandbox = match config.platform.sandbox {
        true => Some(crate::root::start_sandbox(&config).await?),
        false => None,
    };
    let base = sandbox.as_ref().map(|(_, base)| base.clone());
    let mut settings = crate::root::browser_settings(&config, base.as_ref());
    settings.show = !headless && login::display_available();
    let options = login::LoginOptions::new(settings, account);
    // In sandbox mode nobody has the Douyin app: the simulator's code is scanned for them.
    let scanner = base.map(|base| tokio::spawn(scan_sandbox_codes(options.qr_png.clone(), base)));
    let mut out = std::io::stdout();
    let mut sms = tokio::io::BufReader::new(tokio::io::stdin());
    let result = login::run(&options, &mut out, &mut sms).await;
    if let Some(scanner) = scanner {
        scanner.abort();
    }
    if let Some((handle, _)) = sandbox {
        handle.shutdown().await;
    }
    match result {
        Ok(login::LoginOutcome::AlreadyLoggedIn) => {
            println!("{account}: already logged in; the session works");
            Ok(ExitCode::SUCCESS)
        }
        Ok(login::LoginOutcome::LoggedIn) => {
            println!("{account}: logged in; the session works");
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("error: {account}: {e}");
            Ok(ExitCode::from(1))
        }
    }
}

/// How long `dropcast login` waits for TikTok's redirect (ours).
const TIKTOK_LOGIN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10 * 60);

/// `dropcast login ACCOUNT` for a `tiktok` account: the OAuth code flow with PKCE and a
/// loopback redirect (docs/tiktok.md §1). Exit 0 once the tokens are saved, 1
/// on timeout or refusal.
async fn tiktok_login(
    config: &Config,
    account: &str,
    tiktok: &crate::config::TiktokAccount,
    headless: bool,
) -> anyhow::Result<ExitCode> {
    use crate::platform::tiktok::{App, login};
    std::fs::create_dir_all(&config.state_dir)?;
    let sandbox = match config.platform.sandbox {
        true => Some(crate::root::start_sandbox(config).await?),
        false => None,
    };
    let base = sandbox.as_ref().map(|(_, base)| base.clone());
    let client_secret = match (
        crate::root::client_secret(account, &tiktok.client_secret),
        &base,
    ) {
        (Ok(secret), _) => secret,
        // The simulator with no registered apps takes any secret (docs/tiktok.md).
        (Err(_), Some(_)) => crate::secret::Secret::new("sandbox-secret"),
        (Err(e), None) => return Err(e.into()),
    };
    let options = login::LoginOptions {
        settings: crate::root::tiktok_settings(config, base.as_ref()),
        state_dir: config.state_dir.clone(),
        account: account.to_owned(),
        app: App {
            client_key: tiktok.client_key.clone(),
            client_secret,
        },
        port: tiktok.redirect_port.unwrap_or(0),
        timeout: TIKTOK_LOGIN_TIMEOUT,
        open_browser: !headless,
        sandbox: base.is_some(),
    };
    let result = login::run(&options, &mut std::io::stdout()).await;
    if let Some((handle, _)) = sandbox {
        handle.shutdown().await;
    }
    match result {
        Ok(who) => {
            println!("{account}: logged in to TikTok as {who}; the tokens are saved");
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("error: {account}: {e}");
            Ok(ExitCode::from(1))
        }
    }
}

/// What `dropcast sandbox` prints: how to point a config at the simulator, per platform.
fn sandbox_banner(local: &str) -> Vec<String> {
    let url = format!("http://{local}");
    vec![
        format!("dropcast sandbox listening on {url}"),
        "point a config at it: under `platform:` (with `sandbox: false`), one key per platform:"
            .into(),
        format!("  douyin-web: {{creator_url: {url}, vod_url: {url}, upload_scheme: http}}"),
        format!(
            "  douyin:     {{creator_url: {url}, vod_url: {url}, imagex_url: {url}, upload_scheme: http}}"
        ),
        format!("  tiktok:     {{api_url: {url}, auth_url: {url}}}"),
        "douyin-web accounts: any cookie whose session id is `sandbox-<name>` (and any CSRF \
         token) is a sandbox user"
            .into(),
        format!(
            "douyin login: the code at {url}/login is scanned by curl -d '{{\"token\": \"TOKEN\"}}' \
             {url}/__sandbox/douyin/login/scan (TOKEN is printed under the code)"
        ),
        "tiktok login: open the address `dropcast login` prints and approve, or add \
         &sandbox_approve=1 to it"
            .into(),
        format!(
            "inspect posts at {url}/__sandbox/posts, {url}/__sandbox/douyin/posts and \
             {url}/__sandbox/tiktok/posts"
        ),
    ]
}

/// Scans each new QR code `login` saves at `png` with the simulator at `base` (its
/// inspection endpoint), as a user would with the Douyin app.
async fn scan_sandbox_codes(png: PathBuf, base: reqwest::Url) {
    let http = reqwest::Client::new();
    let mut scanned = None;
    loop {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        let Ok(bytes) = tokio::fs::read(&png).await else {
            continue;
        };
        let Some(text) = crate::browser::login::qr_text(&bytes) else {
            continue;
        };
        let Some(token) = text.strip_prefix("dropcast-sandbox-login:") else {
            continue;
        };
        if scanned.as_deref() == Some(token) {
            continue;
        }
        let Ok(url) = base.join("__sandbox/douyin/login/scan") else {
            return;
        };
        let body = serde_json::json!({ "token": token });
        if http.post(url).json(&body).send().await.is_ok() {
            println!("(sandbox: the simulator's code was scanned for you)");
            scanned = Some(token.to_owned());
        }
    }
}

/// `dropcast accounts`: each account's platform, who it is, and whether its session works
/// (one harmless request each; the ledger is not opened).
async fn accounts_cmd(config: Option<&Path>) -> anyhow::Result<ExitCode> {
    let config = load_config(config)?;
    let ctx = crate::root::build(config, Access::Inspect).await?;
    let mut ok = true;
    for acc in &ctx.config.accounts {
        let Some(account) = ctx.accounts.get(&acc.name) else {
            continue;
        };
        let who = match account.backend.identity(&account.account).await {
            Ok(Some(who)) => who,
            Ok(None) => "-".into(),
            Err(_) => "unknown".into(),
        };
        let session = match account.backend.check_account(&account.account).await {
            Ok(()) => "works".to_string(),
            Err(e) => {
                ok = false;
                let fix = account
                    .backend
                    .renew_hint(&acc.name)
                    .unwrap_or_else(|| ctx.accounts.renew_hint(&acc.name));
                format!("does not work: {e}; to fix: {fix}")
            }
        };
        println!(
            "{:<12} {:<11} {:<28} session {session}",
            acc.name,
            acc.platform(),
            who
        );
    }
    ctx.shutdown().await;
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// `dropcast notify test`: exit 1 when any webhook did not take its test events.
async fn notify_cmd(
    config: Option<&Path>,
    action: crate::notify::NotifyCommand,
) -> anyhow::Result<ExitCode> {
    let config = load_config(config)?;
    let crate::notify::NotifyCommand::Test = action;
    let ok = crate::notify::check::test(&config, &mut std::io::stdout()).await?;
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

async fn sandbox_cmd(addr: SocketAddr, allow_remote: bool) -> anyhow::Result<ExitCode> {
    if !addr.ip().is_loopback() && !allow_remote {
        eprintln!(
            "error: --addr {addr} is reachable from other machines, and the sandbox has no \
             authentication. Use a loopback address (127.0.0.1:PORT), or pass --allow-remote \
             if that is really what you want."
        );
        return Ok(ExitCode::from(2));
    }
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {addr}: {e}"))?;
    let local = listener.local_addr()?;
    for line in sandbox_banner(&local.to_string()) {
        println!("{line}");
    }
    sandbox::serve(listener, SandboxOptions::default(), stop_signal()).await?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Regression (issue 12 item 7): `dropcast sandbox` told users only how to point douyin-web at it.
    #[test]
    fn the_sandbox_banner_gives_config_that_parses_for_every_platform() {
        let banner = sandbox_banner("127.0.0.1:8930");
        let keys: Vec<String> = banner
            .iter()
            .filter_map(|l| l.strip_prefix("  "))
            .map(|l| l.trim().to_owned())
            .collect();
        assert_eq!(keys.len(), 3, "{banner:#?}");
        let text = format!(
            "platform:\n  sandbox: false\n{}\naccounts: {{studio: {{platform: douyin}}}}\n",
            keys.iter()
                .map(|k| format!("  {k}"))
                .collect::<Vec<_>>()
                .join("\n")
        );
        let dir = tempfile::tempdir().unwrap();
        let config = crate::config::Config::parse(&text, None, dir.path())
            .unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(
            config.platform.douyin.imagex_url.as_str(),
            "http://127.0.0.1:8930/"
        );
        assert!(banner.iter().any(|l| l.contains("sandbox_approve")));
    }
}
