//! The servers under test as child processes: Lamina (the `lamina` binary) and Janus 1.1.2
//! (Debian's `janus`, with a loopback-only configuration written into a temp dir), plus the
//! `/proc` readings of a process: CPU seconds, resident memory, threads.

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::BenchError;

/// Clock ticks per second of `/proc/<pid>/stat` times (USER_HZ, 100 on Linux).
const USER_HZ: f64 = 100.0;

/// `/proc` readings of one process.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcSample {
    /// utime + stime in seconds.
    pub cpu_s: f64,
    /// Resident set size in bytes.
    pub rss: u64,
    /// Peak resident set size (VmHWM) in bytes.
    pub peak_rss: u64,
    /// Threads.
    pub threads: u64,
}

impl ProcSample {
    /// Reads `/proc/<pid>` (`self` for this process).
    pub fn read(pid: &str) -> Option<Self> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // Fields after the parenthesised command name: state is field 3, utime 14, stime 15.
        let rest = &stat[stat.rfind(')')? + 2..];
        let f: Vec<&str> = rest.split_whitespace().collect();
        let ticks = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let field = |name: &str| {
            status
                .lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        };
        Some(Self {
            cpu_s: ticks / USER_HZ,
            rss: field("VmRSS:") * 1024,
            peak_rss: field("VmHWM:") * 1024,
            threads: field("Threads:"),
        })
    }
}

/// Voluntary context switches of a process's threads (what `pidstat -w -t` reports as
/// cswch: a thread blocked and was woken again), summed, and those of GStreamer's RTCP threads
/// (`rtpsession-rtcp`, one per rtpsession); CPU by thread name. Threads that exit between two
/// readings take their switches and CPU with them.
#[derive(Debug, Clone, Default)]
pub struct Switches {
    /// All threads.
    pub all: u64,
    /// Threads named `rtpsession-rtcp`.
    pub rtcp: u64,
    /// How many `rtpsession-rtcp` threads there were.
    pub rtcp_threads: u64,
    /// CPU seconds (utime + stime) of the `rtpsession-rtcp` threads: building, encrypting and
    /// sending RTCP happens on them.
    pub rtcp_cpu_s: f64,
    /// CPU seconds by thread id: (name with its digits dropped, e.g. `queue12:src` →
    /// `queue:src`, CPU seconds).
    pub tasks: BTreeMap<u64, (String, f64)>,
}

impl Switches {
    /// Reads `/proc/<pid>/task/*/{comm,status}`.
    pub fn read(pid: &str) -> Self {
        let mut s = Self::default();
        let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
            return s;
        };
        for task in dir.flatten() {
            let path = task.path();
            let Ok(status) = std::fs::read_to_string(path.join("status")) else {
                continue;
            };
            let n = status
                .lines()
                .find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))
                .and_then(|v| v.trim().parse::<u64>().ok())
                .unwrap_or(0);
            s.all += n;
            let comm = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
            let comm = comm.trim_end();
            let cpu = task_cpu_s(&path).unwrap_or(0.0);
            if comm == "rtpsession-rtcp" {
                s.rtcp += n;
                s.rtcp_threads += 1;
                s.rtcp_cpu_s += cpu;
            }
            if let Some(tid) = task.file_name().to_str().and_then(|t| t.parse().ok()) {
                let name = comm.chars().filter(|c| !c.is_ascii_digit()).collect();
                s.tasks.insert(tid, (name, cpu));
            }
        }
        s
    }

    /// CPU seconds by thread name spent between `earlier` and this reading, thread by thread
    /// (threads that exited in between are not counted; threads started since count whole).
    pub fn cpu_by_name_since(&self, earlier: &Switches) -> BTreeMap<String, f64> {
        let mut by_name = BTreeMap::new();
        for (tid, (name, cpu)) in &self.tasks {
            let before = earlier.tasks.get(tid).map_or(0.0, |(_, c)| *c);
            *by_name.entry(name.clone()).or_insert(0.0) += (cpu - before).max(0.0);
        }
        by_name
    }
}

/// The name of Lamina's TURN thread (`lamina::turn::THREAD_NAME`; before it had one, the TURN
/// server ran on the tokio workers).
pub const TURN_THREAD: &str = "lamina-turn";

/// Whether a thread name (digits dropped) is one of tokio's: `tokio-rt-worker` (tokio ≥ 1.44
/// names its workers and blocking threads so), `tokio-runtime-w` (older, truncated).
pub fn is_tokio_thread(name: &str) -> bool {
    name.starts_with("tokio-rt-worker") || name.starts_with("tokio-runtime-w")
}

/// `by_name` CPU seconds over `wall` seconds as percent of one core, the busiest first, names
/// under 0.5 % left out: `"queue:src 12.3, tokio-rt-worker 8.1"`.
pub fn format_thread_cpu(by_name: &BTreeMap<String, f64>, wall: f64) -> String {
    let mut v: Vec<(&String, f64)> = by_name
        .iter()
        .map(|(k, cpu)| (k, 100.0 * cpu / wall.max(1e-9)))
        .filter(|(_, pct)| *pct >= 0.5)
        .collect();
    v.sort_by(|a, b| b.1.total_cmp(&a.1));
    v.iter()
        .map(|(k, pct)| format!("{k} {pct:.1}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// utime + stime of one task (`/proc/<pid>/task/<tid>`), seconds.
fn task_cpu_s(task: &Path) -> Option<f64> {
    let stat = std::fs::read_to_string(task.join("stat")).ok()?;
    let f: Vec<&str> = stat[stat.rfind(')')? + 2..].split_whitespace().collect();
    Some((f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?) / USER_HZ)
}

/// Which server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum ServerKind {
    /// Lamina.
    Lamina,
    /// Janus VideoRoom.
    Janus,
}

impl std::fmt::Display for ServerKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ServerKind::Lamina => "lamina",
            ServerKind::Janus => "janus",
        })
    }
}

/// A running server process, stopped on drop.
pub struct ServerProc {
    /// Which server.
    pub kind: ServerKind,
    /// Its signalling URL.
    pub url: String,
    /// Lamina's HTTP listener (where `/metrics` is).
    http: Option<SocketAddr>,
    child: Child,
    _dir: Option<TempDir>,
}

impl ServerProc {
    /// The process id, as `/proc` wants it.
    pub fn pid(&self) -> String {
        self.child.id().to_string()
    }

    /// The files the server has mapped as libsrtp2 (`/proc/<pid>/maps`): which SRTP build it
    /// runs (Lamina: its OpenSSL build when installed; Janus: Debian's, on NSS).
    pub fn srtp_library(&self) -> String {
        let maps =
            std::fs::read_to_string(format!("/proc/{}/maps", self.pid())).unwrap_or_default();
        let mut paths: Vec<&str> = maps
            .lines()
            .filter_map(|line| line.split_whitespace().nth(5))
            .filter(|p| p.ends_with("/libsrtp2.so.1"))
            .collect();
        paths.sort_unstable();
        paths.dedup();
        if paths.is_empty() {
            "none".into()
        } else {
            paths.join(" ")
        }
    }

    /// Context switches of the server's threads now.
    pub fn switches(&self) -> Switches {
        Switches::read(&self.pid())
    }

    /// Lamina's `lamina_turn_allocations` gauge from `/metrics` now (none for Janus, or when
    /// the server does not answer within a second).
    pub async fn turn_allocations(&self) -> Option<u64> {
        let text = http_get(self.http?, "/metrics").await?;
        text.lines()
            .find_map(|l| l.strip_prefix("lamina_turn_allocations "))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .map(|v| v as u64)
    }

    /// Current `/proc` readings.
    pub fn sample(&self) -> ProcSample {
        ProcSample::read(&self.pid()).unwrap_or_default()
    }

    /// Starts Lamina from `bin`, logging into `log`.
    pub fn lamina(bin: &Path, log: &Path) -> Result<Self, BenchError> {
        let port = free_port()?;
        let child = Command::new(bin)
            .args([
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--turn-listen",
                "127.0.0.1:0",
            ])
            .args(["--max-peers-per-room", "64", "--max-events-per-sec", "2000"])
            .args(["--web-dir", "/nonexistent"])
            .env(
                "LAMINA_LOG",
                std::env::var("LAMINA_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdout(Stdio::null())
            .stderr(log_file(log)?)
            .spawn()
            .map_err(|e| BenchError::Server(format!("{}: {e}", bin.display())))?;
        let mut s = Self {
            kind: ServerKind::Lamina,
            url: format!("ws://127.0.0.1:{port}/socket/websocket"),
            http: Some(SocketAddr::from(([127, 0, 0, 1], port))),
            child,
            _dir: None,
        };
        s.wait_port(port)?;
        Ok(s)
    }

    /// Starts Janus with a private configuration; ICE only on `ice_if` (a veth holding
    /// `ice_ip`), WebSocket API on 127.0.0.1.
    pub fn janus(ice_if: &str, log: &Path) -> Result<Self, BenchError> {
        let dir = TempDir::new("lamina-bench-janus")?;
        let port = free_port()?;
        write_janus_config(&dir.0, ice_if, port)?;
        let child = Command::new("janus")
            .arg("-C")
            .arg(dir.0.join("janus.jcfg"))
            .arg("-F")
            .arg(&dir.0)
            .arg("-o")
            .stdout(log_file(log)?)
            .stderr(log_file(log)?)
            .spawn()
            .map_err(|e| {
                BenchError::Server(format!("janus (install with --install-janus): {e}"))
            })?;
        let mut s = Self {
            kind: ServerKind::Janus,
            url: format!("ws://127.0.0.1:{port}/"),
            http: None,
            child,
            _dir: Some(dir),
        };
        s.wait_port(port)?;
        Ok(s)
    }

    fn wait_port(&mut self, port: u16) -> Result<(), BenchError> {
        let deadline = Instant::now() + Duration::from_secs(20);
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            if let Ok(Some(st)) = self.child.try_wait() {
                return Err(BenchError::Server(format!(
                    "{} exited at start: {st}",
                    self.kind
                )));
            }
            if Instant::now() > deadline {
                return Err(BenchError::Server(format!(
                    "{} did not listen on {port}",
                    self.kind
                )));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }

    /// Stops the server: SIGTERM, then SIGKILL after 5 s.
    pub fn stop(mut self) {
        self.terminate();
    }

    fn terminate(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        let _ = Command::new("kill").arg(self.pid()).status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ServerProc {
    fn drop(&mut self) {
        self.terminate();
    }
}

/// The body of a plain HTTP/1.0 GET of `path` on `addr`, if it answers 200 within a second.
async fn http_get(addr: SocketAddr, path: &str) -> Option<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let get = async {
        let mut s = tokio::net::TcpStream::connect(addr).await.ok()?;
        s.write_all(format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())
            .await
            .ok()?;
        let mut out = Vec::new();
        s.read_to_end(&mut out).await.ok()?;
        let text = String::from_utf8_lossy(&out).into_owned();
        let (head, body) = text.split_once("\r\n\r\n")?;
        head.split_whitespace()
            .nth(1)
            .filter(|code| *code == "200")?;
        Some(body.to_string())
    };
    tokio::time::timeout(Duration::from_secs(1), get)
        .await
        .ok()
        .flatten()
}

fn log_file(path: &Path) -> Result<std::fs::File, BenchError> {
    if let Some(p) = path.parent() {
        std::fs::create_dir_all(p)?;
    }
    Ok(std::fs::File::create(path)?)
}

/// A free TCP port on 127.0.0.1 (bound, read, released).
fn free_port() -> Result<u16, BenchError> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A directory removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(prefix: &str) -> std::io::Result<Self> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let p = std::env::temp_dir().join(format!("{prefix}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&p)?;
        Ok(Self(p))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Where Debian puts Janus's plugins and transports.
fn janus_lib_dir() -> PathBuf {
    let multiarch = Path::new("/usr/lib/x86_64-linux-gnu/janus");
    if multiarch.exists() {
        return multiarch.to_path_buf();
    }
    PathBuf::from("/usr/lib/janus")
}

/// Writes `janus.jcfg`, the WebSocket transport and an empty VideoRoom configuration:
/// only the VideoRoom plugin and the WebSocket transport load; everything else stays default.
fn write_janus_config(dir: &Path, ice_if: &str, ws_port: u16) -> std::io::Result<()> {
    let lib = janus_lib_dir();
    let d = dir.display();
    let l = lib.display();
    std::fs::write(
        dir.join("janus.jcfg"),
        format!(
            r#"general: {{
    configs_folder = "{d}"
    plugins_folder = "{l}/plugins"
    transports_folder = "{l}/transports"
    events_folder = "{l}/events"
    loggers_folder = "{l}/loggers"
    debug_level = 3
    admin_secret = "bench"
}}
certificates: {{
}}
media: {{
    rtp_port_range = "40000-44999"
}}
nat: {{
    ice_enforce_list = "{ice_if}"
    ignore_mdns = true
}}
plugins: {{
    disable = "libjanus_voicemail.so,libjanus_recordplay.so,libjanus_audiobridge.so,libjanus_duktape.so,libjanus_lua.so,libjanus_nosip.so,libjanus_sip.so,libjanus_streaming.so,libjanus_textroom.so,libjanus_videocall.so,libjanus_echotest.so"
}}
transports: {{
    disable = "libjanus_rabbitmq.so,libjanus_mqtt.so,libjanus_nanomsg.so,libjanus_pfunix.so,libjanus_http.so"
}}
events: {{
    broadcast = false
}}
loggers: {{
    disable = "libjanus_jsonlog.so"
}}
"#
        ),
    )?;
    std::fs::write(
        dir.join("janus.transport.websockets.jcfg"),
        format!(
            "general: {{\n    json = \"compact\"\n    ws = true\n    ws_port = {ws_port}\n    ws_ip = \"127.0.0.1\"\n    wss = false\n}}\nadmin: {{\n    admin_ws = false\n    admin_wss = false\n}}\n"
        ),
    )?;
    std::fs::write(dir.join("janus.plugin.videoroom.jcfg"), "general: {\n}\n")
}
