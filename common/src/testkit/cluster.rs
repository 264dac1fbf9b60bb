//! A whole seatq deployment of a test's own, for fault injection: a private PostgreSQL
//! cluster and redis-server on random ports with their data in temp dirs, and the seatq
//! services as child processes, each of which can be killed with SIGKILL and restarted on
//! the same data.
//!
//! Tests that crash a dependency must not touch the shared stack other test binaries run
//! against, so everything here is private; the broker is [`super::PrivateBroker`].

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::free_port;

/// A fresh directory under the system temp dir, named for `what`.
fn temp_dir(what: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("seatq-{what}-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
    dir
}

fn log_file(path: &Path) -> std::fs::File {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap_or_else(|e| panic!("open {}: {e}", path.display()))
}

fn wait_port(port: u16, what: &str, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "{what} did not open port {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// SIGKILL to every process of the group led by `child` (a service and whatever it
/// forked: PostgreSQL's backends die with their postmaster, as in a machine crash), then
/// reap the leader.
fn kill_group(child: &mut Child) {
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{}", child.id())])
        .stderr(Stdio::null())
        .status();
    let _ = child.kill();
    let _ = child.wait();
}

fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// PostgreSQL's server binaries: `SEATQ_PG_BIN` or Debian's (as deploy/local/lib.sh).
pub fn pg_bin_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("SEATQ_PG_BIN") {
        return PathBuf::from(dir);
    }
    let debian = PathBuf::from("/usr/lib/postgresql/15/bin");
    if debian.join("postgres").exists() {
        return debian;
    }
    // Another Debian major version.
    std::fs::read_dir("/usr/lib/postgresql")
        .ok()
        .and_then(|dirs| {
            dirs.filter_map(Result::ok)
                .map(|d| d.path().join("bin"))
                .find(|b| b.join("postgres").exists())
        })
        .unwrap_or(debian)
}

/// A PostgreSQL cluster of the test's own (initdb into a temp dir, trust auth, user
/// `seatq`), killable with SIGKILL and restartable on the same data.
pub struct PrivatePostgres {
    pub port: u16,
    dir: PathBuf,
    /// As root PostgreSQL runs as the `postgres` user (it refuses root).
    as_postgres: bool,
    child: Option<Child>,
}

impl PrivatePostgres {
    pub fn start() -> Self {
        let dir = temp_dir("pg");
        let as_postgres = running_as_root();
        let data = dir.join("data");
        if as_postgres {
            let status = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&dir)
                .status()
                .expect("chown the cluster dir");
            assert!(status.success(), "chown {}", dir.display());
        }
        let mut pg = Self {
            port: free_port(),
            dir,
            as_postgres,
            child: None,
        };
        let status = pg
            .command("initdb")
            .arg("-D")
            .arg(&data)
            .args(["-U", "seatq", "--auth=trust", "-E", "UTF8", "--no-sync"])
            .stdout(Stdio::null())
            .stderr(log_file(&pg.dir.join("initdb.log")))
            .status()
            .expect("run initdb (deploy/local installs PostgreSQL)");
        assert!(status.success(), "initdb failed; see {}", pg.dir.display());
        // A process crash loses nothing the OS has, so fsync buys these tests nothing but
        // load on a shared machine.
        let conf = format!(
            "listen_addresses = '127.0.0.1'\nport = {}\nunix_socket_directories = ''\n\
             fsync = off\nmax_connections = 200\nshared_buffers = 64MB\n",
            pg.port
        );
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(data.join("postgresql.conf"))
            .expect("postgresql.conf");
        std::io::Write::write_all(&mut file, conf.as_bytes()).expect("write postgresql.conf");
        pg.spawn();
        pg
    }

    fn command(&self, program: &str) -> Command {
        let bin = pg_bin_dir().join(program);
        if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(bin);
            c
        } else {
            Command::new(bin)
        }
    }

    /// `postgres://seatq@…/{database}`.
    pub fn url(&self, database: &str) -> String {
        format!("postgres://seatq@127.0.0.1:{}/{database}", self.port)
    }

    fn spawn(&mut self) {
        use std::os::unix::process::CommandExt;
        // After a SIGKILL the old backends may take a moment to go, and the new postmaster
        // refuses to start while they hold the shared memory: retry until it stays up.
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let mut child = self
                .command("postgres")
                .arg("-D")
                .arg(self.dir.join("data"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log_file(&self.dir.join("postgres.log")))
                .process_group(0)
                .spawn()
                .expect("start postgres");
            let up = Instant::now() + Duration::from_secs(30);
            loop {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                    if let Ok(None) = child.try_wait() {
                        self.child = Some(child);
                        return;
                    }
                    break;
                }
                assert!(Instant::now() < up, "postgres did not open its port");
                std::thread::sleep(Duration::from_millis(50));
            }
            assert!(
                Instant::now() < deadline,
                "postgres keeps exiting at start; see {}",
                self.dir.join("postgres.log").display()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// SIGKILL to the postmaster and every backend at once; returns once they are gone
    /// (the postmaster is runuser's child, so reaping our child is not enough: a restart
    /// that saw the dying postmaster's port still open would think itself up).
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let postmaster = self.postmaster_pid();
            kill_group(&mut child);
            let deadline = Instant::now() + Duration::from_secs(30);
            while postmaster.is_some_and(|pid| Path::new(&format!("/proc/{pid}")).exists())
                || std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok()
            {
                assert!(Instant::now() < deadline, "postgres did not die");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }

    /// The running postmaster's pid, from its lock file.
    fn postmaster_pid(&self) -> Option<u32> {
        std::fs::read_to_string(self.dir.join("data/postmaster.pid"))
            .ok()?
            .lines()
            .next()?
            .trim()
            .parse()
            .ok()
    }

    pub fn restart(&mut self) {
        self.kill9();
        self.spawn();
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        self.kill9();
        remove_unless_panicking(&self.dir);
    }
}

/// A failing test keeps its data dirs (their logs say why).
fn remove_unless_panicking(dir: &Path) {
    if std::thread::panicking() {
        eprintln!("kept {}", dir.display());
    } else {
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// A redis-server of the test's own, with an append-only file (as deploy/local runs it),
/// killable with SIGKILL and restartable on the same data.
pub struct PrivateRedis {
    pub port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

impl PrivateRedis {
    pub fn start() -> Self {
        let mut redis = Self {
            port: free_port(),
            dir: temp_dir("redis"),
            child: None,
        };
        redis.spawn();
        redis
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    fn spawn(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .arg("--dir")
            .arg(&self.dir)
            .args(["--appendonly", "yes", "--appendfsync", "everysec"])
            .args(["--save", ""])
            .stdin(Stdio::null())
            .stdout(log_file(&self.dir.join("redis.log")))
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server (deploy/local installs it)");
        self.child = Some(child);
        wait_port(self.port, "redis-server", Duration::from_secs(30));
    }

    pub fn kill9(&mut self) {
        super::kill_now(&mut self.child);
    }

    pub fn restart(&mut self) {
        self.kill9();
        self.spawn();
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.kill9();
        remove_unless_panicking(&self.dir);
    }
}

/// A binary of the workspace, next to the test executable's `deps/` directory (or in
/// `SEATQ_BIN_DIR`). `cargo build --workspace --all-targets` builds them (`deploy/local/test`); a
/// test of one crate cannot name another crate's binaries with `CARGO_BIN_EXE_*`.
pub fn workspace_binary(name: &str) -> PathBuf {
    let dir = match std::env::var("SEATQ_BIN_DIR") {
        Ok(dir) => PathBuf::from(dir),
        Err(_) => {
            let exe = std::env::current_exe().expect("the test executable");
            // target/<profile>/deps/<test> → target/<profile>
            exe.parent()
                .and_then(Path::parent)
                .map(Path::to_path_buf)
                .expect("target dir")
        }
    };
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: build the service binaries first (cargo build --workspace --all-targets)",
        path.display()
    );
    path
}

/// `("section.key", value)` settings → `SEATQ_SECTION__KEY=value` for a child process.
pub fn settings_env(pairs: &[(&str, String)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(key, value)| {
            let name = key.replace('.', "__").to_ascii_uppercase();
            (format!("SEATQ_{name}"), value.clone())
        })
        .collect()
}

/// A seatq service binary as a child process with its own environment (the runner's
/// `SEATQ_*` variables removed, so a sourced deploy/local/lib.sh cannot leak in), logs
/// appended to a file, killable with SIGKILL and restartable.
pub struct ServiceProcess {
    pub name: String,
    binary: PathBuf,
    env: Vec<(String, String)>,
    pub log: PathBuf,
    child: Option<Child>,
}

impl ServiceProcess {
    pub fn start(name: &str, binary: PathBuf, env: Vec<(String, String)>, logs: &Path) -> Self {
        let mut service = Self {
            name: name.to_owned(),
            binary,
            env,
            log: logs.join(format!("{name}.log")),
            child: None,
        };
        service.spawn();
        service
    }

    fn spawn(&mut self) {
        let mut command = Command::new(&self.binary);
        for (key, _) in std::env::vars() {
            if key.starts_with("SEATQ_") {
                command.env_remove(key);
            }
        }
        let child = command
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(log_file(&self.log))
            .stderr(log_file(&self.log))
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", self.binary.display()));
        self.child = Some(child);
    }

    /// Still running (false after it exited on its own: look at its log).
    pub fn running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    pub fn kill9(&mut self) {
        super::kill_now(&mut self.child);
    }

    pub fn restart(&mut self) {
        self.kill9();
        self.spawn();
    }

    /// The last `lines` lines of its log, for failure messages.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

impl Drop for ServiceProcess {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// A temp dir for a test's service logs (kept after the test, printed on failure).
pub fn logs_dir() -> PathBuf {
    temp_dir("logs")
}
