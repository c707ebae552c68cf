//! dropcast's benchmarks: `cargo run --release --example bench [-- SECTION…]`.
//!
//! Sections (all by default):
//! - `latency`: from a finished file's rename into the inbox to its job starting, with
//!   native events and close/rename hints, native events without hints, and polling.
//! - `idle`: CPU time of an idle agent over 60 s watching an empty inbox that holds
//!   10,000 archived files under `done/`.
//!
//! Everything runs in this process against the built-in sandbox on 127.0.0.1, with the
//! config defaults users get (settle 3 s, poll every 2 s). Results are printed and written
//! into BENCHMARKS.md between `<!-- bench:SECTION -->` markers.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dropcast::config::Config;
use dropcast::pipeline::{self, AgentEvent, Context, RunOptions};
use tokio::sync::{mpsc, oneshot};

const LATENCY_FILES: usize = 60;
const IDLE_FILES: usize = 10_000;
const IDLE_SECONDS: u64 = 60;

type Error = Box<dyn std::error::Error + Send + Sync>;

fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let wants = |s: &str| args.is_empty() || args.iter().any(|a| a == s || a == "all");
    let runtime = tokio::runtime::Runtime::new()?;
    let machine = machine();
    println!("{machine}\n");
    if wants("latency") {
        let table = runtime.block_on(latency())?;
        println!("{table}");
        write_section("latency", &format!("{machine}\n\n{table}"))?;
    }
    if wants("idle") {
        let table = runtime.block_on(idle())?;
        println!("{table}");
        write_section("idle", &format!("{machine}\n\n{table}"))?;
    }
    Ok(())
}

/// A config in `dir` on the built-in sandbox, with `watch` settings (flow style).
fn config(dir: &Path, watch: &str, done: &str) -> Result<Config, Error> {
    let text = format!(
        "inbox: ./inbox\ndone: {done}\nfailed: ./failed\nduplicates: ./duplicates\n\
         state_dir: ./.dropcast\nwatch: {watch}\nplatform: {{sandbox: true}}\nstatus: {{listen: off}}\n"
    );
    Ok(Config::parse(&text, None, dir)?)
}

struct Running {
    events: mpsc::UnboundedReceiver<AgentEvent>,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

async fn start_agent(config: Config, finished_hints: bool) -> Result<Running, Error> {
    let ctx = Arc::new(Context::build(config).await?);
    let (tx, events) = mpsc::unbounded_channel();
    let (stop, stopped) = oneshot::channel::<()>();
    let options = RunOptions {
        once: false,
        finished_hints,
        events: Some(tx),
    };
    let task = tokio::spawn(async move {
        let shutdown = async {
            let _ = stopped.await;
        };
        if let Err(e) = pipeline::run(ctx, options, shutdown).await {
            eprintln!("agent: {e}");
        }
    });
    Ok(Running { events, stop, task })
}

impl Running {
    async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

fn example_clip() -> Result<Vec<u8>, Error> {
    Ok(std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/media/clip.mp4"),
    )?)
}

/// The example clip with a `free` box appended so every copy has its own hash.
fn variant(clip: &[u8], n: usize) -> Vec<u8> {
    let mut bytes = clip.to_vec();
    bytes.extend_from_slice(&16u32.to_be_bytes());
    bytes.extend_from_slice(b"free");
    bytes.extend_from_slice(&(n as u64).to_be_bytes());
    bytes
}

async fn latency() -> Result<String, Error> {
    let clip = example_clip()?;
    let modes = [
        ("native, close/rename hints", "{mode: native}", true),
        ("native, no hints", "{mode: native}", false),
        ("poll (every 2 s)", "{mode: poll}", true),
    ];
    let mut rows = Vec::new();
    for (label, watch, hints) in modes {
        let dir = tempfile::tempdir()?;
        let config = config(dir.path(), watch, "./done")?;
        let inbox = config.inbox.clone();
        let staging = dir.path().join("staging");
        std::fs::create_dir_all(&staging)?;
        let mut agent = start_agent(config, hints).await?;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let mut samples = Vec::with_capacity(LATENCY_FILES);
        for n in 0..LATENCY_FILES {
            // The caption is there first; the video is written elsewhere on the same file
            // system and renamed in finished, as exporters and sync tools do.
            std::fs::write(
                inbox.join(format!("v{n}.yaml")),
                format!("text: clip {n}\n"),
            )?;
            let staged = staging.join(format!("v{n}.mp4"));
            std::fs::write(&staged, variant(&clip, n))?;
            let target = inbox.join(format!("v{n}.mp4"));
            let t0 = Instant::now();
            std::fs::rename(&staged, &target)?;
            samples.push(wait_started(&mut agent.events, &target, t0).await?);
        }
        agent.stop().await;
        samples.sort();
        rows.push(format!(
            "| {label} | {} | {} | {} | {} |",
            LATENCY_FILES,
            ms(percentile(&samples, 50)),
            ms(percentile(&samples, 95)),
            ms(*samples.last().unwrap_or(&Duration::ZERO)),
        ));
        eprintln!("latency: {label} done");
    }
    Ok(format!(
        "Latency from a finished file's rename into the inbox to its job starting \
         (settle 3 s, poll interval 2 s: the defaults; caption already present).\n\n\
         | watching | files | p50 | p95 | max |\n|---|---|---|---|---|\n{}",
        rows.join("\n")
    ))
}

async fn wait_started(
    events: &mut mpsc::UnboundedReceiver<AgentEvent>,
    video: &Path,
    t0: Instant,
) -> Result<Duration, Error> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        match tokio::time::timeout_at(deadline, events.recv()).await {
            Ok(Some(AgentEvent::JobStarted { video: v, at })) if v == video => {
                return Ok(at.duration_since(t0));
            }
            Ok(Some(_)) => {}
            Ok(None) => return Err("agent stopped".into()),
            Err(_) => return Err(format!("no job for {} in 60 s", video.display()).into()),
        }
    }
}

async fn idle() -> Result<String, Error> {
    let mut rows = Vec::new();
    for (label, watch) in [
        ("native", "{mode: native}"),
        ("poll (every 2 s)", "{mode: poll}"),
    ] {
        let dir = tempfile::tempdir()?;
        // The worst case: done/ inside the inbox, so the watcher sees its folders.
        let config = config(dir.path(), watch, "./inbox/done")?;
        fill_done(&config.done)?;
        let agent = start_agent(config, true).await?;
        // Let start-up (the first scan, the watcher's set-up) finish first.
        tokio::time::sleep(Duration::from_secs(3)).await;
        let before = cpu_time()?;
        tokio::time::sleep(Duration::from_secs(IDLE_SECONDS)).await;
        let used = cpu_time()? - before;
        agent.stop().await;
        rows.push(format!(
            "| {label} | {IDLE_FILES} | {IDLE_SECONDS} s | {:.3} s |",
            used.as_secs_f64()
        ));
        eprintln!("idle: {label} done");
    }
    Ok(format!(
        "CPU time (user + system) of an idle agent watching an empty inbox whose `done/` \
         (inside the inbox) holds {IDLE_FILES} archived files in 100 folders; target: under \
         0.1 s per 60 s.\n\n| watching | files under done/ | measured over | CPU time |\n\
         |---|---|---|---|\n{}",
        rows.join("\n")
    ))
}

fn fill_done(done: &Path) -> Result<(), Error> {
    for n in 0..IDLE_FILES {
        let dir = done.join(format!("batch{:03}", n % 100));
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join(format!("v{n}.mp4")), b"archived")?;
    }
    Ok(())
}

/// This process's user + system CPU time (Linux `/proc/self/stat`).
fn cpu_time() -> Result<Duration, Error> {
    let stat = std::fs::read_to_string("/proc/self/stat")?;
    let after = stat.rsplit_once(')').map(|(_, r)| r).ok_or("bad stat")?;
    let fields: Vec<&str> = after.split_whitespace().collect();
    // After the command name: state is field 3; utime and stime are fields 14 and 15.
    let utime: u64 = fields.get(11).ok_or("no utime")?.parse()?;
    let stime: u64 = fields.get(12).ok_or("no stime")?.parse()?;
    let ticks = clock_ticks();
    Ok(Duration::from_secs_f64((utime + stime) as f64 / ticks))
}

fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

fn percentile(sorted: &[Duration], p: usize) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = (p * sorted.len()).div_ceil(100).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    let date = time::OffsetDateTime::now_utc().date();
    format!("Measured {date} on {cpu}, {cores} cores, Linux {kernel}, release build.")
}

/// Replaces the text between `<!-- bench:NAME -->` and `<!-- /bench:NAME -->` in
/// BENCHMARKS.md (appending the section if it is not there yet).
fn write_section(name: &str, body: &str) -> Result<(), Error> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("BENCHMARKS.md");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|_| "# Benchmarks\n".into());
    let open = format!("<!-- bench:{name} -->");
    let close = format!("<!-- /bench:{name} -->");
    let block = format!("{open}\n{body}\n{close}");
    let new = match (text.find(&open), text.find(&close)) {
        (Some(a), Some(b)) if a < b => {
            format!("{}{}{}", &text[..a], block, &text[b + close.len()..])
        }
        _ => format!("{}\n{block}\n", text.trim_end()),
    };
    std::fs::write(path, new)?;
    Ok(())
}
