//! The server under test: a `lamina` child process started with debug endpoints on loopback,
//! and probes of its resources (`/proc/<pid>`) and rooms (`GET /debug/rooms`).

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Failures starting or probing the server.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The binary could not be spawned.
    #[error("cannot start {0}: {1}")]
    Spawn(String, std::io::Error),
    /// The server exited or stayed silent before logging its address.
    #[error("the server did not log `lamina listening addr=…` within {0:?}")]
    NoAddress(Duration),
    /// `/proc/<pid>` could not be read (the server died?).
    #[error("cannot read /proc/{0}: {1}")]
    Proc(u32, std::io::Error),
    /// `malloc_trim` through gdb failed.
    #[error("malloc_trim through gdb: {0}")]
    Trim(String),
    /// `GET /debug/rooms` failed or answered something unexpected.
    #[error("GET /debug/rooms: {0}")]
    Debug(String),
}

/// A running `lamina` process.
pub struct ServerProcess {
    child: Child,
    /// Its HTTP/WebSocket address.
    pub addr: SocketAddr,
}

/// One look at the server: resources of the process and what its rooms hold.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Probe {
    /// Resident set size (VmRSS), KiB.
    pub rss_kib: u64,
    /// Threads (`/proc/<pid>/task` entries).
    pub threads: u64,
    /// Open file descriptors (`/proc/<pid>/fd` entries).
    pub fds: u64,
    /// GStreamer elements in all room pipelines (sum of `elements` of `/debug/rooms`).
    pub elements: u64,
    /// Running rooms.
    pub rooms: u64,
    /// Peers in all rooms.
    pub peers: u64,
}

impl ServerProcess {
    /// Starts `binary --listen 127.0.0.1:0 --turn-listen 127.0.0.1:0 --debug-endpoints`,
    /// with `env` added to its environment, copies its output to `log`, and waits for its
    /// address.
    pub fn start(
        binary: &Path,
        env: &[(String, String)],
        log: &Path,
    ) -> Result<ServerProcess, ServerError> {
        let name = binary.display().to_string();
        let mut child = Command::new(binary)
            .args([
                "--listen",
                "127.0.0.1:0",
                "--turn-listen",
                "127.0.0.1:0",
                "--debug-endpoints",
            ])
            .env("LAMINA_LOG", "info")
            .env("LAMINA_LOG_FORMAT", "text")
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| ServerError::Spawn(name.clone(), e))?;
        let mut log = std::fs::File::create(log).map_err(|e| ServerError::Spawn(name, e))?;
        let (tx, rx) = mpsc::channel::<String>();
        let stdout = child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>);
        let stderr = child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>);
        for stream in [stdout, stderr].into_iter().flatten() {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            });
        }
        drop(tx);
        let wait = Duration::from_secs(30);
        let deadline = std::time::Instant::now() + wait;
        let addr = loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let Ok(line) = rx.recv_timeout(left) else {
                let _ = child.kill();
                return Err(ServerError::NoAddress(wait));
            };
            let _ = writeln!(log, "{line}");
            if let Some(addr) = listening_addr(&line) {
                break addr;
            }
        };
        // Keep copying the log until the server exits.
        std::thread::spawn(move || {
            for line in rx {
                let _ = writeln!(log, "{line}");
            }
        });
        Ok(ServerProcess { child, addr })
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// The room WebSocket URL.
    pub fn ws_url(&self) -> String {
        format!("ws://{}/socket/websocket", self.addr)
    }

    /// Asks the server's allocator to return its free memory to the system: `malloc_trim(0)`
    /// called through `gdb` (attached for a moment). glibc keeps freed memory in its arenas
    /// for reuse; after trimming, RSS is what the process still uses.
    pub fn malloc_trim(&self) -> Result<(), ServerError> {
        let pid = self.pid().to_string();
        let out = Command::new("timeout")
            .args(["60", "gdb", "-p", &pid, "-batch", "-nx"])
            .args(["-ex", "call (int) malloc_trim(0)"])
            .output()
            .map_err(|e| ServerError::Trim(e.to_string()))?;
        let text = String::from_utf8_lossy(&out.stdout);
        // gdb prints the call's result as `$1 = 0|1`.
        if out.status.success() && text.lines().any(|l| l.starts_with("$1 = ")) {
            Ok(())
        } else {
            let err = String::from_utf8_lossy(&out.stderr);
            Err(ServerError::Trim(format!("{text}{err}").trim().to_owned()))
        }
    }

    /// Reads the process's resources and the rooms' contents.
    pub async fn probe(&self) -> Result<Probe, ServerError> {
        let pid = self.pid();
        let proc_err = |e| ServerError::Proc(pid, e);
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).map_err(proc_err)?;
        let rss_kib = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0);
        let count = |dir: &str| -> Result<u64, ServerError> {
            Ok(std::fs::read_dir(format!("/proc/{pid}/{dir}"))
                .map_err(proc_err)?
                .count() as u64)
        };
        let (threads, fds) = (count("task")?, count("fd")?);
        let rooms = debug_rooms(self.addr).await?;
        let rooms = rooms
            .as_array()
            .ok_or_else(|| ServerError::Debug(format!("not an array: {rooms}")))?;
        let mut probe = Probe {
            rss_kib,
            threads,
            fds,
            rooms: rooms.len() as u64,
            ..Probe::default()
        };
        for room in rooms {
            probe.elements += room["state"]["elements"].as_u64().unwrap_or(0);
            probe.peers += room["state"]["peers"]
                .as_array()
                .map_or(0, |p| p.len() as u64);
        }
        Ok(probe)
    }

    /// Stops the server with SIGTERM (its graceful stop), killing it after 15 s.
    pub fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status();
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        while std::time::Instant::now() < deadline {
            if !self.is_running() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if self.is_running() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The address in a `lamina listening addr=…` log line (text format, colours off).
fn listening_addr(line: &str) -> Option<SocketAddr> {
    let rest = &line[line.find("lamina listening")?..];
    rest.split_whitespace()
        .find_map(|w| w.strip_prefix("addr="))
        .and_then(|a| a.parse().ok())
}

/// `GET /debug/rooms` over HTTP/1.0 (no chunking), parsed.
async fn debug_rooms(addr: SocketAddr) -> Result<serde_json::Value, ServerError> {
    let fetch = async {
        let mut tcp = TcpStream::connect(addr).await?;
        let req = format!("GET /debug/rooms HTTP/1.0\r\nHost: {addr}\r\n\r\n");
        tcp.write_all(req.as_bytes()).await?;
        let mut raw = Vec::new();
        tcp.read_to_end(&mut raw).await?;
        Ok::<_, std::io::Error>(String::from_utf8_lossy(&raw).into_owned())
    };
    let text = tokio::time::timeout(Duration::from_secs(10), fetch)
        .await
        .map_err(|_| ServerError::Debug("no answer within 10 s".into()))?
        .map_err(|e| ServerError::Debug(e.to_string()))?;
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| ServerError::Debug(format!("no HTTP header end in {text:?}")))?;
    if !head.starts_with("HTTP/1.") || head.split_whitespace().nth(1) != Some("200") {
        return Err(ServerError::Debug(format!(
            "{} (is --debug-endpoints on?)",
            head.lines().next().unwrap_or_default()
        )));
    }
    serde_json::from_str(body).map_err(|e| ServerError::Debug(format!("{e}: {body}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_listening_line() {
        let line = "2025-01-01T00:00:00.000000Z  INFO lamina::server: lamina listening \
                    addr=127.0.0.1:41234 tls=false";
        assert_eq!(
            listening_addr(line),
            Some("127.0.0.1:41234".parse().unwrap())
        );
        assert_eq!(
            listening_addr("INFO embedded TURN server listening addr=1.2.3.4:5"),
            None
        );
    }
}
