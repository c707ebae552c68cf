//! A real PostgreSQL server for tests: `initdb` once per test process into a template, then
//! each [`TestPostgres::start`] copies it and runs its own `postgres` on a free 127.0.0.1
//! port, stopped (and its files removed) on drop, and killed with the test process even on
//! SIGKILL. Compiled by the lib's tests and, by path, by tests/common (so no `crate::`).
//!
//! As root (CI), `initdb` and `postgres` refuse to run, so both run as `postgres` (or
//! `nobody`) via `Command::uid`/`gid`. Unix only.

#![allow(dead_code)]

use std::fs::{self, File, Permissions};
use std::io;
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{OnceLock, mpsc};
use std::time::{Duration, Instant};

/// The superuser `initdb` creates; every URL logs in as it (trust auth).
const SUPERUSER: &str = "postgres";
/// The database every server starts with; [`TestPostgres::url`] names it.
const DATABASE: &str = "dropcast";
/// How long a server may take to accept connections.
const READY_WITHIN: Duration = Duration::from_secs(30);
/// How long a stopping server may take to exit before SIGKILL.
const STOP_WITHIN: Duration = Duration::from_secs(10);
const POLL: Duration = Duration::from_millis(20);
/// Tries at a free port (another process may take the one picked before postgres binds it).
const PORT_ATTEMPTS: usize = 5;
/// Where Debian's `postgresql` package puts the binaries (`<version>/bin`), off PATH.
const DEBIAN_ROOT: &str = "/usr/lib/postgresql";
/// A folder holding `initdb` and `postgres` to use instead of searching for them.
const PG_BIN_VAR: &str = "DROPCAST_PG_BIN";

/// A running PostgreSQL server of its own, on 127.0.0.1, trust auth, database `dropcast`.
pub struct TestPostgres {
    child: Option<Child>,
    port: u16,
    dir: Option<tempfile::TempDir>,
    log: PathBuf,
}

impl TestPostgres {
    /// A fresh server, or `None` when PostgreSQL is not installed (the calling test skipped
    /// with one `SKIPPED (needs PostgreSQL…)` line, or failed when `DROPCAST_REQUIRE_TOOLS`
    /// is set: `super::test_tools`). Panics when the server cannot start (its log's tail said).
    /// Safe to call from async tests: the blocking client runs on a thread of its own.
    /// Whether PostgreSQL is installed; when it is not, the calling test is skipped with
    /// its line (or fails), as by [`TestPostgres::start`].
    pub fn installed() -> bool {
        match binaries() {
            Ok(_) => true,
            Err(why) => {
                super::test_tools::missing(&super::test_tools::POSTGRES, &why);
                false
            }
        }
    }

    pub fn start() -> Option<TestPostgres> {
        let bin = match binaries() {
            Ok(bin) => bin,
            Err(why) => {
                super::test_tools::missing(&super::test_tools::POSTGRES, &why);
                return None;
            }
        };
        let cluster = match cluster(bin) {
            Ok(cluster) => cluster,
            Err(e) => panic!("PostgreSQL for tests: {e}"),
        };
        Some(on_plain_thread(|| TestPostgres::launch(cluster)))
    }

    /// `postgres://postgres@127.0.0.1:PORT/dropcast`.
    pub fn url(&self) -> String {
        self.url_of(DATABASE)
    }

    /// Creates the empty database `name` (lowercase letters, digits, `_`) on this server
    /// and returns its URL, so one server can serve several isolated tests.
    pub fn create_database(&self, name: &str) -> String {
        assert!(
            plain_identifier(name),
            "not a plain database name: {name:?}"
        );
        let admin = self.url_of("postgres");
        let sql = format!("CREATE DATABASE {name}");
        on_plain_thread(|| execute(&admin, &sql))
            .unwrap_or_else(|e| panic!("CREATE DATABASE {name}: {e}\n{}", self.log_tail()));
        self.url_of(name)
    }

    /// Stops the server (immediate shutdown, SIGKILL if it lingers) and removes its files.
    /// Idempotent; `Drop` calls it.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            stop_child(&mut child);
        }
        if let Some(dir) = self.dir.take() {
            let _ = dir.close();
        }
    }

    /// The server's TCP port on 127.0.0.1 (for the harness's own tests).
    pub(crate) fn port(&self) -> u16 {
        self.port
    }

    /// The server's dir (data, socket, log) while it runs (for the harness's own tests).
    pub(crate) fn dir(&self) -> Option<&Path> {
        self.dir.as_ref().map(tempfile::TempDir::path)
    }

    fn url_of(&self, database: &str) -> String {
        format!("postgres://{SUPERUSER}@127.0.0.1:{}/{database}", self.port)
    }

    /// Copies the template and boots a server on a free port, retrying a port taken meanwhile.
    fn launch(cluster: &Cluster) -> TestPostgres {
        let dir = cluster
            .server_dir()
            .unwrap_or_else(|e| panic!("PostgreSQL for tests: cannot copy the template: {e}"));
        let log = dir.path().join("postgres.log");
        let mut server = TestPostgres {
            child: None,
            port: 0,
            dir: Some(dir),
            log,
        };
        for attempt in 1..=PORT_ATTEMPTS {
            server.port = free_port();
            match server.boot(cluster) {
                Ok(()) => return server,
                Err(Boot::PortTaken) if attempt < PORT_ATTEMPTS => continue,
                Err(e) => panic!("PostgreSQL for tests: {e}\n{}", server.log_tail()),
            }
        }
        unreachable!("the last attempt returns or panics")
    }

    /// Starts `postgres`, waits until it accepts connections, creates `dropcast`.
    fn boot(&mut self, cluster: &Cluster) -> Result<(), Boot> {
        let dir = self
            .dir
            .as_ref()
            .expect("a booting server has its dir")
            .path();
        let log = File::create(&self.log).map_err(Boot::Io)?;
        let command = cluster
            .server_command(dir, self.port, log)
            .map_err(Boot::Io)?;
        self.child = Some(spawn_from_lasting_thread(command).map_err(Boot::Io)?);
        self.wait_ready()?;
        execute(
            &self.url_of("postgres"),
            &format!("CREATE DATABASE {DATABASE}"),
        )
        .map_err(Boot::Sql)
    }

    fn wait_ready(&mut self) -> Result<(), Boot> {
        let deadline = Instant::now() + READY_WITHIN;
        let admin = format!("{}?connect_timeout=5", self.url_of("postgres"));
        loop {
            let child = self
                .child
                .as_mut()
                .expect("a booting server has its process");
            if let Some(status) = child.try_wait().map_err(Boot::Io)? {
                self.child = None;
                let log = fs::read_to_string(&self.log).unwrap_or_default();
                let taken = log.contains("could not bind") || log.contains("already in use");
                return Err(if taken {
                    Boot::PortTaken
                } else {
                    Boot::Exited(status)
                });
            }
            match postgres::Client::connect(&admin, postgres::NoTls) {
                Ok(_) => return Ok(()),
                Err(_) if Instant::now() < deadline => std::thread::sleep(POLL),
                Err(e) => return Err(Boot::NotReady(e)),
            }
        }
    }

    fn log_tail(&self) -> String {
        tail(&self.log, 30)
    }
}

impl Drop for TestPostgres {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Why a server did not come up.
#[derive(Debug)]
enum Boot {
    PortTaken,
    Io(io::Error),
    Exited(std::process::ExitStatus),
    NotReady(postgres::Error),
    Sql(postgres::Error),
}

impl std::fmt::Display for Boot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Boot::PortTaken => write!(f, "every port tried was taken before postgres bound it"),
            Boot::Io(e) => write!(f, "cannot start postgres: {e}"),
            Boot::Exited(status) => {
                write!(f, "postgres exited while starting ({status}); its log:")
            }
            Boot::NotReady(e) => write!(f, "postgres accepted no connection within 30 s: {e}"),
            Boot::Sql(e) => write!(f, "CREATE DATABASE {DATABASE}: {e}"),
        }
    }
}

/// SIGQUIT (immediate shutdown: the postmaster takes its backends down, then exits), then
/// SIGKILL if it is still there after [`STOP_WITHIN`].
fn stop_child(child: &mut Child) {
    let pid = rustix::process::Pid::from_child(child);
    let _ = rustix::process::kill_process(pid, rustix::process::Signal::QUIT);
    let deadline = Instant::now() + STOP_WITHIN;
    while Instant::now() < deadline {
        match child.try_wait() {
            Ok(None) => std::thread::sleep(POLL),
            _ => return,
        }
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// The two binaries a server needs, from one directory.
#[derive(Clone, Debug)]
struct Binaries {
    initdb: PathBuf,
    postgres: PathBuf,
}

/// The folder `DROPCAST_PG_BIN` names (it must hold both), else the first PATH directory
/// holding both, else the newest `/usr/lib/postgresql/<version>/bin`; what was looked for
/// when none does.
fn binaries() -> Result<Binaries, String> {
    let in_dir = |dir: PathBuf| {
        let found = Binaries {
            initdb: dir.join("initdb"),
            postgres: dir.join("postgres"),
        };
        (found.initdb.is_file() && found.postgres.is_file()).then_some(found)
    };
    if let Some(dir) = std::env::var_os(PG_BIN_VAR) {
        let dir = PathBuf::from(dir);
        return in_dir(dir.clone()).ok_or_else(|| {
            format!(
                "{PG_BIN_VAR}={} holds no initdb and postgres",
                dir.display()
            )
        });
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(debian_bin_dirs(Path::new(DEBIAN_ROOT)))
        .find_map(in_dir)
        .ok_or_else(|| format!("no initdb and postgres on PATH nor under {DEBIAN_ROOT}/*/bin"))
}

/// `<root>/<version>/bin`, newest version first.
pub(crate) fn debian_bin_dirs(root: &Path) -> Vec<PathBuf> {
    let mut versions: Vec<(Vec<u32>, PathBuf)> = fs::read_dir(root)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().into_string().ok()?;
            let key = name
                .split('.')
                .map(str::parse)
                .collect::<Result<_, _>>()
                .ok()?;
            Some((key, entry.path().join("bin")))
        })
        .collect();
    versions.sort_by(|a, b| b.0.cmp(&a.0));
    versions.into_iter().map(|(_, dir)| dir).collect()
}

/// The unprivileged account the server runs as when the tests run as root.
#[derive(Clone, Copy, Debug)]
struct RunAs {
    uid: u32,
    gid: u32,
}

/// `None` when not root; as root, `postgres` (Debian's package creates it) or `nobody`.
fn server_user() -> Result<Option<RunAs>, String> {
    if !rustix::process::geteuid().is_root() {
        return Ok(None);
    }
    let passwd = fs::read_to_string("/etc/passwd").map_err(|e| format!("/etc/passwd: {e}"))?;
    ["postgres", "nobody"]
        .into_iter()
        .find_map(|name| passwd_entry(&passwd, name))
        .map(Some)
        .ok_or_else(|| {
            "running as root, and no user `postgres` or `nobody` to run initdb and postgres as \
             (they refuse root)"
                .to_owned()
        })
}

fn passwd_entry(passwd: &str, name: &str) -> Option<RunAs> {
    passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        (fields.next()? == name).then_some(())?;
        let uid = fields.nth(1)?.parse().ok()?;
        let gid = fields.next()?.parse().ok()?;
        Some(RunAs { uid, gid })
    })
}

/// Hands `path` to the server's account (nothing to do when not root).
fn give(path: &Path, owner: Option<RunAs>) -> io::Result<()> {
    let Some(owner) = owner else { return Ok(()) };
    let uid = rustix::fs::Uid::from_raw(owner.uid);
    let gid = rustix::fs::Gid::from_raw(owner.gid);
    Ok(rustix::fs::chown(path, Some(uid), Some(gid))?)
}

/// The per-process state: the binaries, the account, and the `initdb`'d template.
struct Cluster {
    bin: Binaries,
    run_as: Option<RunAs>,
    /// `dropcast-pg-<pid>-XXXX` (0755): the template and every server's dir; a watchdog
    /// removes it once this process is gone.
    root: PathBuf,
    template: PathBuf,
}

/// The process's cluster, set up (with `initdb`) by the first caller; a failure is kept and
/// reported to every caller.
fn cluster(bin: Binaries) -> Result<&'static Cluster, &'static str> {
    static CLUSTER: OnceLock<Result<Cluster, String>> = OnceLock::new();
    CLUSTER
        .get_or_init(|| Cluster::init(bin))
        .as_ref()
        .map_err(String::as_str)
}

impl Cluster {
    fn init(bin: Binaries) -> Result<Cluster, String> {
        let run_as = server_user()?;
        let root = process_root(run_as).map_err(|e| format!("cannot make a temp dir: {e}"))?;
        spawn_watchdog(&root).map_err(|e| format!("cannot start the cleanup watchdog: {e}"))?;
        let template = root.join("template");
        let cluster = Cluster {
            bin,
            run_as,
            root,
            template,
        };
        cluster.initdb()?;
        Ok(cluster)
    }

    /// `initdb` into the template: superuser `postgres`, trust auth, C locale, 1 MiB WAL
    /// segments (a smaller copy per server).
    fn initdb(&self) -> Result<(), String> {
        let log_path = self.root.join("initdb.log");
        let log = File::create(&log_path).map_err(|e| format!("initdb log: {e}"))?;
        fs::create_dir(&self.template)
            .and_then(|()| give(&self.template, self.run_as))
            .map_err(|e| format!("{}: {e}", self.template.display()))?;
        let mut cmd = Command::new(&self.bin.initdb);
        cmd.arg("-D").arg(&self.template);
        cmd.args(["-U", SUPERUSER, "--auth=trust", "-E", "UTF8", "--locale=C"])
            .args(["--no-sync", "--wal-segsize=1"])
            .current_dir(&self.root)
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log);
        self.as_server_user(&mut cmd);
        let status = cmd
            .status()
            .map_err(|e| format!("cannot run {}: {e}", self.bin.initdb.display()))?;
        if status.success() {
            return Ok(());
        }
        Err(format!(
            "initdb failed ({status}):\n{}",
            tail(&log_path, 30)
        ))
    }

    fn as_server_user(&self, cmd: &mut Command) {
        if let Some(owner) = self.run_as {
            cmd.uid(owner.uid).gid(owner.gid);
        }
    }

    /// A new `srv-XXXX` dir (the server's account owns it) holding a copy of the template
    /// as `data`; the server's socket and log go beside `data`.
    fn server_dir(&self) -> io::Result<tempfile::TempDir> {
        let dir = tempfile::Builder::new()
            .prefix("srv-")
            .tempdir_in(&self.root)?;
        copy_tree(&self.template, &dir.path().join("data"), self.run_as)?;
        give(dir.path(), self.run_as)?;
        Ok(dir)
    }

    /// `postgres` on `port` over `dir/data`, tuned for speed (no fsync: a test's data need
    /// not survive a crash of the machine), dying with this process.
    fn server_command(&self, dir: &Path, port: u16, log: File) -> io::Result<Command> {
        let mut cmd = Command::new(&self.bin.postgres);
        cmd.arg("-D").arg(dir.join("data"));
        cmd.arg("-k").arg(dir).arg("-p").arg(port.to_string());
        for setting in [
            "listen_addresses=127.0.0.1",
            "fsync=off",
            "synchronous_commit=off",
            "full_page_writes=off",
            "max_connections=200",
        ] {
            cmd.arg("-c").arg(setting);
        }
        cmd.current_dir(dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        self.as_server_user(&mut cmd);
        die_with_this_process(&mut cmd);
        Ok(cmd)
    }
}

/// This process's dir for PostgreSQL files, mode 0755 so the server's account can enter
/// it, under [`base_dir`].
fn process_root(run_as: Option<RunAs>) -> io::Result<PathBuf> {
    let dir = tempfile::Builder::new()
        .prefix(&format!("dropcast-pg-{}-", std::process::id()))
        .tempdir_in(base_dir(run_as))?
        .keep();
    fs::set_permissions(&dir, Permissions::from_mode(0o755))?;
    Ok(dir)
}

/// `/dev/shm` when it has room (RAM: a server's copy of the template is made 4 to 8 times
/// faster than on disk), else the temp dir, else `/tmp` when the server's account could not
/// reach the temp dir.
fn base_dir(run_as: Option<RunAs>) -> PathBuf {
    const SHM: &str = "/dev/shm";
    const ROOM: u64 = 2 << 30;
    if let Ok(fs) = rustix::fs::statvfs(SHM)
        && fs.f_bavail.saturating_mul(fs.f_frsize) >= ROOM
        && reachable_by_all(Path::new(SHM))
    {
        return PathBuf::from(SHM);
    }
    let temp = std::env::temp_dir();
    if run_as.is_some() && !reachable_by_all(&temp) {
        return PathBuf::from("/tmp");
    }
    temp
}

/// Whether every directory from `/` down to `dir` may be entered by anyone.
fn reachable_by_all(dir: &Path) -> bool {
    let Ok(dir) = dir.canonicalize() else {
        return false;
    };
    dir.ancestors().all(|d| {
        fs::metadata(d)
            .map(|m| m.permissions().mode() & 0o001 != 0)
            .unwrap_or(false)
    })
}

/// A `sh` that waits for this process to end (however it ends) and then removes `root`
/// (the template and any server dir a SIGKILL left). Its own process group, so a Ctrl-C
/// of the tests does not take it down before it cleans up.
fn spawn_watchdog(root: &Path) -> io::Result<()> {
    const SCRIPT: &str = r#"while kill -0 "$1" 2>/dev/null; do sleep 1; done
sleep 1; rm -rf "$2" 2>/dev/null || { sleep 2; rm -rf "$2"; }"#;
    Command::new("sh")
        .args(["-c", SCRIPT, "dropcast-pg-watchdog"])
        .arg(std::process::id().to_string())
        .arg(root)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .map(drop)
}

/// On Linux, the kernel sends the postmaster SIGQUIT (immediate shutdown) when the thread
/// that forked it ends: [`spawn_from_lasting_thread`] makes that the end of this process.
/// Set after `Command::uid` changed the credentials (a change clears it), and a parent
/// already gone by then is caught by the `getppid` check.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn die_with_this_process(cmd: &mut Command) {
    use rustix::process::{Signal, getpid, getppid, set_parent_process_death_signal};
    let parent = getpid();
    let hook = move || {
        set_parent_process_death_signal(Some(Signal::QUIT))?;
        if getppid() != Some(parent) {
            // The test process is already gone (ESRCH: no allocation after fork).
            return Err(rustix::io::Errno::SRCH.into());
        }
        Ok(())
    };
    // SAFETY: the hook makes two raw system calls (prctl, getppid) and allocates nothing,
    // so it is sound between fork and exec.
    unsafe { cmd.pre_exec(hook) };
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn die_with_this_process(_cmd: &mut Command) {}

type SpawnJob = (Command, mpsc::Sender<io::Result<Child>>);

/// Spawns `command` from one thread that lives as long as the process: the parent-death
/// signal fires when the forking *thread* ends, and a test's thread ends with the test even
/// when its server is kept for others (in a static).
fn spawn_from_lasting_thread(command: Command) -> io::Result<Child> {
    static SPAWNER: OnceLock<mpsc::Sender<SpawnJob>> = OnceLock::new();
    let spawner = SPAWNER.get_or_init(|| {
        let (jobs, queue) = mpsc::channel::<SpawnJob>();
        std::thread::Builder::new()
            .name("test-postgres-spawner".into())
            .spawn(move || {
                for (mut command, reply) in queue {
                    let _ = reply.send(command.spawn());
                }
            })
            .expect("cannot start the thread that spawns the test servers");
        jobs
    });
    let (reply, answer) = mpsc::channel();
    let gone = || io::Error::other("the spawner thread is gone");
    spawner.send((command, reply)).map_err(|_| gone())?;
    answer.recv().map_err(|_| gone())?
}

/// Runs `f` on a fresh thread: the `postgres` client blocks on a runtime of its own, which
/// panics inside an async test's runtime.
fn on_plain_thread<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|scope| scope.spawn(f).join())
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

/// Runs `sql` on the database at `url` over one fresh connection.
fn execute(url: &str, sql: &str) -> Result<(), postgres::Error> {
    let mut client = postgres::Client::connect(url, postgres::NoTls)?;
    client.batch_execute(sql)
}

fn plain_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some('a'..='z' | '_'))
        && chars.all(|c| matches!(c, 'a'..='z' | '0'..='9' | '_'))
        && name.len() <= 63
}

/// A port free on 127.0.0.1 a moment ago.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("cannot bind 127.0.0.1:0")
}

/// Copies the directory tree `from` to `to` (which must not exist), keeping modes, owned by
/// `owner` when given.
fn copy_tree(from: &Path, to: &Path, owner: Option<RunAs>) -> io::Result<()> {
    fs::create_dir(to)?;
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        let kind = entry.file_type()?;
        if kind.is_dir() {
            copy_tree(&entry.path(), &target, owner)?;
        } else if kind.is_file() {
            fs::copy(entry.path(), &target)?;
            give(&target, owner)?;
        } else {
            let what = entry.path().display().to_string();
            return Err(io::Error::other(format!("not a file or dir: {what}")));
        }
    }
    fs::set_permissions(to, fs::metadata(from)?.permissions())?;
    give(to, owner)
}

/// The last `n` lines of the file at `path` (or why it cannot be read).
fn tail(path: &Path, n: usize) -> String {
    match fs::read_to_string(path) {
        Ok(text) => {
            let lines: Vec<&str> = text.lines().collect();
            lines[lines.len().saturating_sub(n)..].join("\n")
        }
        Err(e) => format!("(no log at {}: {e})", path.display()),
    }
}
