//! The command line (design.md §5): parses arguments, sets up logging, runs one command
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
use crate::lock::StateLock;
use crate::pipeline::{self, Bundle, Context, FatalError, Outcome, RunOptions};
use crate::sandbox::{self, SandboxOptions};
use crate::watch;

/// Publishes short videos dropped into a folder to Douyin, exactly once.
#[derive(Debug, Parser)]
#[command(name = "dropcast", version, about, long_about = None)]
pub struct Cli {
    /// Config file [default: $DROPCAST_CONFIG, else ./dropcast.yaml]
    #[arg(short = 'c', long = "config", global = true, env = "DROPCAST_CONFIG")]
    pub config: Option<PathBuf>,
    /// Log format on stderr
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormat {
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
    },
    /// Publish one video now
    Publish {
        video: PathBuf,
        /// Caption file [default: the one beside the video, per the folder rules]
        #[arg(long)]
        caption: Option<PathBuf>,
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
    },
    /// Check caption files; prints every problem with line and column
    Validate {
        #[arg(required = true)]
        captions: Vec<PathBuf>,
    },
    /// Run the platform simulator alone
    Sandbox {
        #[arg(long, default_value = "127.0.0.1:8930")]
        addr: SocketAddr,
    },
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
    init_logging(cli.log_format, if bar { "warn" } else { "info" });
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
    match runtime.block_on(run(cli)) {
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

fn init_logging(format: LogFormat, default: &str) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Watch { once } => watch_cmd(cli.config.as_deref(), once).await,
        Command::Publish { video, caption } => {
            publish_cmd(cli.config.as_deref(), &video, caption).await
        }
        Command::Check => check_cmd(cli.config.as_deref()).await,
        Command::Status { json } => status_cmd(cli.config.as_deref(), json),
        Command::History { n, json } => history_cmd(cli.config.as_deref(), n, json),
        Command::Retry { hash, all_failed } => {
            retry_cmd(cli.config.as_deref(), hash.as_deref(), all_failed)
        }
        Command::Validate { captions } => Ok(validate_cmd(cli.config.as_deref(), &captions)),
        Command::Sandbox { addr } => sandbox_cmd(addr).await,
    }
}

/// Ctrl-C, or SIGTERM from a service manager (systemd, launchd).
async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
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

async fn build_context(explicit: Option<&Path>) -> anyhow::Result<Arc<Context>> {
    let config = load_config(explicit)?;
    Ok(Arc::new(Context::build(config).await?))
}

async fn watch_cmd(config: Option<&Path>, once: bool) -> anyhow::Result<ExitCode> {
    let config = load_config(config)?;
    let _lock = StateLock::acquire(&config.state_dir).map_err(FatalError::from)?;
    let status_listen = config.status.listen;
    let status_token = config.status.token.clone();
    let ctx = Arc::new(Context::build(config).await?);
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
) -> anyhow::Result<ExitCode> {
    let ctx = build_context(config).await?;
    let video = std::path::absolute(video)?;
    let meta = std::fs::metadata(&video)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", video.display()))?;
    if !meta.is_file() {
        anyhow::bail!("{} is not a file", video.display());
    }
    let caption = match caption {
        Some(c) => Some(std::path::absolute(c)?),
        None => match watch::find_caption(&video, &ctx.filter)? {
            watch::CaptionLookup::Own(c) | watch::CaptionLookup::Folder(c) => Some(c),
            watch::CaptionLookup::Missing if ctx.config.require_caption => anyhow::bail!(
                "no caption for {}: put {} beside it or pass --caption FILE",
                video.display(),
                video.with_extension("yaml").display()
            ),
            watch::CaptionLookup::Missing => None,
        },
    };
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
        },
    )
    .await;
    if let Some(bar) = bar {
        bar.abort();
        let _ = bar.await;
    }
    let code = match &outcome {
        Outcome::Published { url } => {
            println!("published: {url}");
            ExitCode::SUCCESS
        }
        Outcome::Duplicate { earlier } => {
            println!(
                "duplicate: already published as {}",
                earlier.as_deref().unwrap_or("(a post still in progress)")
            );
            ExitCode::SUCCESS
        }
        Outcome::Failed(f) => {
            println!("failed: {}\nhint: {}", f.reason, f.hint);
            ExitCode::from(1)
        }
        Outcome::Held { reason }
        | Outcome::Abandoned { reason }
        | Outcome::WaitingForEarlier { reason } => {
            println!("not published: {reason}");
            ExitCode::from(1)
        }
        Outcome::Vanished => {
            println!("not published: the video vanished");
            ExitCode::from(1)
        }
    };
    if let Ok(ctx) = Arc::try_unwrap(ctx) {
        ctx.shutdown().await;
    }
    Ok(code)
}

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
    let mut step = String::new();
    loop {
        if let Some(job) = ctx
            .live
            .snapshot()
            .in_flight
            .into_iter()
            .find(|j| j.video == video)
        {
            if job.step != step {
                // A new step: its own rate and time left.
                bar.0.reset();
                step = job.step.clone();
            }
            bar.0.set_prefix(job.step);
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
    let ctx = Context::build(config).await?;
    if let Some(url) = ctx.sandbox_url() {
        println!("platform    sandbox at {url} (platform.sandbox: true; nothing reaches Douyin)");
    }
    for acc in &ctx.config.accounts {
        let Some(account) = ctx.accounts.get(&acc.name) else {
            continue;
        };
        match ctx.client.credentials(&account).await {
            Ok(_) => println!(
                "account     {}: cookie ok (upload credentials granted)",
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

fn retry_cmd(
    config: Option<&Path>,
    hash: Option<&str>,
    all_failed: bool,
) -> anyhow::Result<ExitCode> {
    use crate::pipeline::retry;
    let config = load_config(config)?;
    let mut ledger = crate::ledger::Ledger::open(&config.state_dir).map_err(FatalError::from)?;
    let results = match hash {
        Some(hash) if !all_failed => vec![retry::retry_hash(&config, &mut ledger, hash)],
        _ => retry::retry_all_failed(&config, &mut ledger),
    };
    if results.is_empty() {
        println!("no failed jobs");
    }
    let mut ok = true;
    for result in results {
        match result {
            Ok(r) => {
                println!(
                    "requeued job {} ({}, was {})",
                    r.id,
                    r.video.display(),
                    r.was.as_str()
                );
                for path in &r.moved_back {
                    println!("  moved back: {}", path.display());
                }
            }
            Err(e) => {
                ok = false;
                println!("not requeued: {e}");
            }
        }
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn check_writable(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    tempfile::NamedTempFile::new_in(dir).map(drop)
}

/// Validates caption files against the config's defaults when a config is found.
fn validate_cmd(config: Option<&Path>, captions: &[PathBuf]) -> ExitCode {
    let path = config_path(config);
    let (defaults, require) = if config.is_some() || path.exists() {
        match Config::load(&path) {
            Ok(c) => (c.defaults, true),
            Err(e) => {
                eprintln!("{e}");
                return ExitCode::from(2);
            }
        }
    } else {
        (CaptionFields::default(), true)
    };
    let now = OffsetDateTime::now_utc();
    let mut bad = false;
    for file in captions {
        match caption::load_caption(file, &defaults, require, now) {
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

async fn sandbox_cmd(addr: SocketAddr) -> anyhow::Result<ExitCode> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {addr}: {e}"))?;
    let local = listener.local_addr()?;
    println!("dropcast sandbox listening on http://{local}");
    println!("point a config at it:");
    println!(
        "  platform: {{sandbox: false, creator_url: http://{local}, vod_url: http://{local}, upload_scheme: http}}"
    );
    println!("  accounts: any `sessionid=sandbox-<name>; csrf_token=<any text>` is a sandbox user");
    println!("inspect posts at http://{local}/__sandbox/posts");
    sandbox::serve(listener, SandboxOptions::default(), stop_signal()).await?;
    Ok(ExitCode::SUCCESS)
}
