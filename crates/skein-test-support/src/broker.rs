//! One `skein` process for a test: free 127.0.0.1 ports, a temporary data directory kept across restarts, stderr in
//! a log file, and a bounded wait for every state change.

use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::client::RawClient;

/// How long the broker may take to accept connections after it is spawned.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the broker may take to exit after SIGTERM.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);
/// Lines of the broker log shown when something goes wrong.
const LOG_TAIL_LINES: usize = 40;
/// Start attempts on freshly chosen ports when a port was taken meanwhile.
const PORT_ATTEMPTS: usize = 3;
/// How the OS reports a port already bound (in the broker's log).
const ADDRESS_IN_USE: &str = "Address already in use";

/// A running (or stopped) `skein` broker owned by one test. Dropping it kills the process; the temporary directory
/// (data and log) is removed with it.
#[derive(Debug)]
pub struct TestBroker {
    binary: PathBuf,
    dir: tempfile::TempDir,
    config_file: Option<PathBuf>,
    addr: SocketAddr,
    metrics_addr: SocketAddr,
    node_id: i32,
    child: Option<Child>,
}

impl TestBroker {
    /// Starts a broker with default settings.
    pub fn start() -> anyhow::Result<Self> {
        Self::start_with_yaml("")
    }

    /// Starts a broker with `yaml` as its `--config` file (Kafka setting names, e.g. `num.partitions: 3`).
    pub fn start_with_yaml(yaml: &str) -> anyhow::Result<Self> {
        let binary = find_binary()?;
        let dir = tempfile::Builder::new().prefix("skein-test-").tempdir().context("cannot create a temp dir")?;
        let config_file = if yaml.trim().is_empty() {
            None
        } else {
            let path = dir.path().join("skein.yaml");
            std::fs::write(&path, yaml).with_context(|| format!("cannot write {}", path.display()))?;
            Some(path)
        };
        let (addr, metrics_addr) = two_free_ports()?;
        let mut broker = TestBroker { binary, dir, config_file, addr, metrics_addr, node_id: 1, child: None };
        // The ports are free when chosen but not reserved: another process may take one before skein binds it.
        for _ in 0..PORT_ATTEMPTS {
            match broker.spawn() {
                Ok(()) => return Ok(broker),
                Err(err) if broker.log_tail().contains(ADDRESS_IN_USE) => {
                    eprintln!("retrying on other ports: {err:#}");
                    (broker.addr, broker.metrics_addr) = two_free_ports()?;
                }
                Err(err) => return Err(err),
            }
        }
        broker.spawn()?;
        Ok(broker)
    }

    /// Starts an `size`-node cluster (node ids 1..=size, every node a broker and a voter on its own controller
    /// port), with `yaml` added to every node's configuration. The nodes are spawned together (a node serves only
    /// once a quorum of them runs), then each is waited for.
    pub fn start_cluster(size: i32, yaml: &str) -> anyhow::Result<Vec<Self>> {
        let binary = find_binary()?;
        let controllers = (0..size).map(|_| free_port()).collect::<anyhow::Result<Vec<_>>>()?;
        let voters: Vec<String> = (1..=size).zip(&controllers).map(|(id, addr)| format!("{id}@{addr}")).collect();
        let mut nodes = Vec::new();
        for node_id in 1..=size {
            let dir = tempfile::Builder::new().prefix("skein-test-").tempdir().context("cannot create a temp dir")?;
            let path = dir.path().join("skein.yaml");
            let config = format!(
                "controller.quorum.voters: {}\nbroker.session.timeout.ms: 6000\nbroker.heartbeat.interval.ms: 500\n{yaml}\n",
                voters.join(",")
            );
            std::fs::write(&path, config).with_context(|| format!("cannot write {}", path.display()))?;
            let (addr, metrics_addr) = two_free_ports()?;
            let mut node = TestBroker {
                binary: binary.clone(),
                dir,
                config_file: Some(path),
                addr,
                metrics_addr,
                node_id,
                child: None,
            };
            node.launch()?;
            nodes.push(node);
        }
        for node in &mut nodes {
            node.wait_until_accepting()?;
        }
        Ok(nodes)
    }

    /// This broker's node id.
    pub fn node_id(&self) -> i32 {
        self.node_id
    }

    /// The Kafka listener (also the advertised address).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `"127.0.0.1:PORT"`, as clients take it.
    pub fn bootstrap(&self) -> String {
        self.addr.to_string()
    }

    /// The `/health`, `/ready`, `/metrics` listener.
    pub fn metrics_addr(&self) -> SocketAddr {
        self.metrics_addr
    }

    /// The data directory; it survives [`stop`](Self::stop), [`kill9`](Self::kill9) and [`restart`](Self::restart).
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The broker's stderr (and stdout), appended to across restarts.
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("skein.log")
    }

    /// The process id while the process runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether the process is still running (false once it exited, was stopped or killed).
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// A new raw client connected to the Kafka listener.
    pub fn client(&self) -> anyhow::Result<RawClient> {
        RawClient::connect(self.addr)
    }

    /// The last lines of the broker log.
    pub fn log_tail(&self) -> String {
        log_tail(&self.log_path(), LOG_TAIL_LINES)
    }

    /// Sends SIGTERM and waits for the process to exit; returns its exit status (graceful shutdown exits 0).
    pub fn stop(&mut self) -> anyhow::Result<ExitStatus> {
        let Some(mut child) = self.child.take() else {
            bail!("the broker is not running");
        };
        if !signal("-TERM", child.id())?.success() {
            // Already gone (it crashed): report how it ended.
            return child.wait().context("cannot wait for the broker");
        }
        match wait_with_timeout(&mut child, STOP_TIMEOUT)? {
            Some(status) => Ok(status),
            None => {
                let _ = child.kill();
                let _ = child.wait();
                bail!("the broker did not exit within {STOP_TIMEOUT:?} after SIGTERM; log tail:\n{}", self.log_tail())
            }
        }
    }

    /// Kills the process with SIGKILL (no chance to flush) and waits for it.
    pub fn kill9(&mut self) -> anyhow::Result<ExitStatus> {
        let Some(mut child) = self.child.take() else {
            bail!("the broker is not running");
        };
        child.kill().context("cannot SIGKILL the broker")?;
        child.wait().context("cannot wait for the broker")
    }

    /// Stops the process with SIGSTOP: it keeps its connections and its place in the cluster but does nothing, as a
    /// hung broker would, until the returned guard is [resumed](PausedBroker::resume) or dropped (SIGCONT), so a
    /// failing test does not leave it stopped.
    pub fn pause(&self) -> anyhow::Result<PausedBroker> {
        let pid = self.pid().context("the broker is not running")?;
        let status = signal("-STOP", pid)?;
        anyhow::ensure!(status.success(), "kill -STOP {pid} failed: {status}");
        Ok(PausedBroker { pid: Some(pid) })
    }

    /// Starts the broker again on the same ports and data directory, stopping it first (SIGTERM) if it runs.
    pub fn restart(&mut self) -> anyhow::Result<()> {
        if self.child.is_some() {
            let status = self.stop()?;
            if !status.success() {
                bail!("the broker exited with {status} when stopped for a restart; log tail:\n{}", self.log_tail());
            }
        }
        self.spawn()
    }

    /// A plain HTTP/1.1 GET on the metrics listener: (status code, body).
    pub fn http_get(&self, path: &str) -> anyhow::Result<(u16, String)> {
        let mut stream = TcpStream::connect_timeout(&self.metrics_addr, Duration::from_secs(5))
            .with_context(|| format!("cannot connect to {}", self.metrics_addr))?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        stream.set_write_timeout(Some(Duration::from_secs(10)))?;
        write!(stream, "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n", self.metrics_addr)?;
        let mut response = String::new();
        stream.read_to_string(&mut response).context("cannot read the HTTP response")?;
        let status = response
            .split_whitespace()
            .nth(1)
            .and_then(|code| code.parse::<u16>().ok())
            .with_context(|| format!("not an HTTP response: {response:?}"))?;
        let body = response.split_once("\r\n\r\n").map(|(_, body)| body.to_string()).unwrap_or_default();
        Ok((status, body))
    }

    /// A memory figure of the process in bytes from Linux `/proc/PID/status`: `"VmRSS"` (resident) or `"VmSize"`
    /// (virtual, which also counts memory allocated but not yet touched).
    pub fn memory_bytes(&self, field: &str) -> anyhow::Result<u64> {
        let pid = self.pid().context("the broker is not running")?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).context("cannot read /proc status")?;
        let prefix = format!("{field}:");
        let kib = status
            .lines()
            .find_map(|line| line.strip_prefix(prefix.as_str()))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse::<u64>().ok())
            .with_context(|| format!("no {field} line in /proc status"))?;
        Ok(kib * 1024)
    }

    fn spawn(&mut self) -> anyhow::Result<()> {
        self.launch()?;
        self.wait_until_accepting()
    }

    /// Starts the process without waiting for it.
    fn launch(&mut self) -> anyhow::Result<()> {
        let log_path = self.log_path();
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .with_context(|| format!("cannot open {}", log_path.display()))?;
        writeln!(log, "---- skein-test-support: starting {} ----", self.binary.display())?;
        let mut command = Command::new(&self.binary);
        command
            .arg("--listen")
            .arg(self.addr.to_string())
            .arg("--advertised-listener")
            .arg(self.addr.to_string())
            .arg("--data-dir")
            .arg(self.data_dir())
            .arg("--metrics-listen")
            .arg(self.metrics_addr.to_string())
            .arg("--node-id")
            .arg(self.node_id.to_string());
        if let Some(config) = &self.config_file {
            command.arg("--config").arg(config);
        }
        command.stdin(Stdio::null()).stdout(log.try_clone()?).stderr(log);
        let child = command.spawn().with_context(|| format!("cannot spawn {}", self.binary.display()))?;
        self.child = Some(child);
        Ok(())
    }

    fn wait_until_accepting(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let Some(child) = self.child.as_mut() else {
                bail!("the broker is not running");
            };
            if let Some(status) = child.try_wait()? {
                self.child = None;
                let tail = self.log_tail();
                eprintln!("skein exited during start-up with {status}; log tail:\n{tail}");
                bail!("skein exited during start-up with {status}; log tail:\n{tail}");
            }
            // Ready means registered and unfenced: before that a restarted broker's partitions have no leader
            // yet (LEADER_NOT_AVAILABLE), which clients retry but a test's first request should not meet.
            if TcpStream::connect_timeout(&self.addr, Duration::from_millis(500)).is_ok()
                && self.http_get("/ready").is_ok_and(|(status, _)| status == 200)
            {
                return Ok(());
            }
            if Instant::now() >= deadline {
                if let Some(mut child) = self.child.take() {
                    let _ = child.kill();
                    let _ = child.wait();
                }
                let tail = self.log_tail();
                eprintln!(
                    "skein did not accept connections on {} within {START_TIMEOUT:?}; log tail:\n{tail}",
                    self.addr
                );
                bail!("skein did not accept connections on {} within {START_TIMEOUT:?}; log tail:\n{tail}", self.addr);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for TestBroker {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A broker process stopped by [`TestBroker::pause`]; dropping this resumes it (SIGCONT), also when a test fails.
#[derive(Debug)]
#[must_use = "dropping the guard resumes the broker at once"]
pub struct PausedBroker {
    /// The process id until it is resumed.
    pid: Option<u32>,
}

impl PausedBroker {
    /// Resumes the process (SIGCONT).
    pub fn resume(mut self) -> anyhow::Result<()> {
        let Some(pid) = self.pid.take() else {
            return Ok(());
        };
        let status = signal("-CONT", pid)?;
        anyhow::ensure!(status.success(), "kill -CONT {pid} failed: {status}");
        Ok(())
    }
}

impl Drop for PausedBroker {
    fn drop(&mut self) {
        if let Some(pid) = self.pid.take() {
            let _ = signal("-CONT", pid);
        }
    }
}

/// Sends `which` (`"-TERM"`, `"-STOP"`, ...) to process `pid` with `kill`; its exit status says whether it was sent.
fn signal(which: &str, pid: u32) -> anyhow::Result<ExitStatus> {
    Command::new("kill").args([which, pid.to_string().as_str()]).status().context("cannot run kill")
}

/// `SKEIN_BIN`, else `target/release/skein` next to the `deps` directory the test executable runs from.
fn find_binary() -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os("SKEIN_BIN") {
        let path = PathBuf::from(path);
        if !path.is_file() {
            bail!("SKEIN_BIN={} is not a file", path.display());
        }
        return Ok(path);
    }
    let exe = std::env::current_exe().context("cannot locate the test executable")?;
    // target/<profile>/deps/<test> or target/<profile>/<bench binary> → target/<profile>/skein
    let exe_dir = exe.parent().with_context(|| format!("unexpected executable path {}", exe.display()))?;
    let profile_dir = if exe_dir.ends_with("deps") {
        exe_dir.parent().with_context(|| format!("unexpected test executable path {}", exe.display()))?
    } else {
        exe_dir
    };
    let path = profile_dir.join("skein");
    if !path.is_file() {
        bail!("{} does not exist: run `cargo build --release -p skein-server` or set SKEIN_BIN", path.display());
    }
    Ok(path)
}

/// Ports handed to brokers come from below the kernel's ephemeral range (32768 and up): a port from that range
/// can be taken, between choosing it and the broker binding it, as the source port of an outgoing connection,
/// and cluster nodes make many. Python tests use 20000-28999; these never collide with them.
const PORT_RANGE: std::ops::Range<u16> = 29_100..32_000;

/// A free port on 127.0.0.1 outside the ephemeral range, never the same one twice in this process.
fn free_port() -> anyhow::Result<SocketAddr> {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let span = u32::from(PORT_RANGE.end - PORT_RANGE.start);
    // Test processes started together begin at different points of the range.
    let seed = std::process::id().wrapping_mul(7919) % span;
    for _ in 0..span {
        let step = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = PORT_RANGE.start + u16::try_from((seed + step) % span).unwrap_or(0);
        if let Ok(listener) = TcpListener::bind(("127.0.0.1", port)) {
            return Ok(listener.local_addr()?);
        }
    }
    bail!("no free port in {PORT_RANGE:?}")
}

/// Two distinct free ports on 127.0.0.1.
fn two_free_ports() -> anyhow::Result<(SocketAddr, SocketAddr)> {
    Ok((free_port()?, free_port()?))
}

/// Polls `child` until it exits or `timeout` passes (`None`).
fn wait_with_timeout(child: &mut Child, timeout: Duration) -> anyhow::Result<Option<ExitStatus>> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().context("cannot wait for the broker")? {
            return Ok(Some(status));
        }
        if Instant::now() >= deadline {
            return Ok(None);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn log_tail(path: &Path, lines: usize) -> String {
    match std::fs::read(path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let all: Vec<&str> = text.lines().collect();
            all[all.len().saturating_sub(lines)..].join("\n")
        }
        Err(err) => format!("(cannot read {}: {err})", path.display()),
    }
}
