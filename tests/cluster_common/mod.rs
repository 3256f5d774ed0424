//! Helpers of the cluster tests: a private `redis-server` (127.0.0.1, a free port, data in a
//! temporary directory), a TCP proxy in front of it that can turn to garbage or silence, and
//! cluster nodes (in this process, or as `lamina` processes that can be SIGKILLed).
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lamina::config::{Config, Secret};
use lamina::server::{self, Server};
use serde_json::Value;

/// A free TCP port on 127.0.0.1 (bound, then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .unwrap()
        .port()
}

/// A `redis-server` of this test.
pub struct Redis {
    child: Option<Child>,
    /// Its port on 127.0.0.1.
    pub port: u16,
    dir: PathBuf,
}

impl Redis {
    /// Starts one on a free port; waits until it answers PING.
    pub fn start() -> Redis {
        let port = free_port();
        let dir = std::env::temp_dir().join(format!("lamina-redis-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let mut redis = Redis {
            child: None,
            port,
            dir,
        };
        redis.spawn();
        redis
    }

    fn spawn(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--protected-mode", "no"])
            .arg("--dir")
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server (apt install redis-server; scripts/setup.sh test installs it)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !ping(self.port) {
            assert!(
                Instant::now() < deadline,
                "redis-server did not answer PING"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills it (its data is gone: it keeps nothing on disk).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Kills it and starts an empty one on the same port.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// Runs one command through `redis-cli`; returns its output.
    pub fn cli(&self, args: &[&str]) -> String {
        let out = Command::new("redis-cli")
            .args(["-p", &self.port.to_string()])
            .args(args)
            .output()
            .expect("redis-cli");
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn ping(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
    let mut buf = [0u8; 7];
    s.write_all(b"PING\r\n").is_ok() && s.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n"
}

/// What the [`Proxy`] does with traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum ProxyMode {
    /// Passes it both ways.
    Pass = 0,
    /// Answers every request with bytes that are not RESP.
    Garbage = 1,
    /// Swallows every request and never answers.
    Silent = 2,
}

/// A TCP proxy in front of Redis whose behaviour can change at any time.
pub struct Proxy {
    /// Its port on 127.0.0.1.
    pub port: u16,
    mode: Arc<AtomicU8>,
}

impl Proxy {
    /// Listens on a free port and forwards to `target` on 127.0.0.1.
    pub fn start(target: u16) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().unwrap().port();
        let mode = Arc::new(AtomicU8::new(ProxyMode::Pass as u8));
        let m = mode.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let Ok(upstream) = TcpStream::connect(("127.0.0.1", target)) else {
                    continue;
                };
                let (m1, m2) = (m.clone(), m.clone());
                let (c1, u1) = (client.try_clone().unwrap(), upstream.try_clone().unwrap());
                let c2 = client;
                std::thread::spawn(move || pump_up(c1, u1, m1));
                std::thread::spawn(move || pump_down(upstream, c2, m2));
            }
        });
        Proxy { port, mode }
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Changes what it does from now on.
    pub fn set(&self, mode: ProxyMode) {
        self.mode.store(mode as u8, Ordering::SeqCst);
    }
}

fn pump_up(mut client: TcpStream, mut upstream: TcpStream, mode: Arc<AtomicU8>) {
    let mut buf = [0u8; 16384];
    loop {
        let n = match client.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let ok = match mode.load(Ordering::SeqCst) {
            0 => upstream.write_all(&buf[..n]).is_ok(),
            1 => client.write_all(b"?this is not RESP\r\n").is_ok(),
            _ => true,
        };
        if !ok {
            return;
        }
    }
}

fn pump_down(mut upstream: TcpStream, mut client: TcpStream, mode: Arc<AtomicU8>) {
    let mut buf = [0u8; 16384];
    loop {
        let n = match upstream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if mode.load(Ordering::SeqCst) == ProxyMode::Pass as u8
            && client.write_all(&buf[..n]).is_err()
        {
            return;
        }
    }
}

/// A node in this process on `ip` (any free ports), registered with the Redis at `redis_url`.
pub async fn node(redis_url: &str, id: &str, ip: &str) -> Server {
    node_with(redis_url, id, ip, |_| {}).await
}

/// Like [`node`], with the configuration changed by `tweak`.
pub async fn node_with(
    redis_url: &str,
    id: &str,
    ip: &str,
    tweak: impl FnOnce(&mut Config),
) -> Server {
    let mut config = node_config(redis_url, id, ip);
    tweak(&mut config);
    server::start(config).await.expect("node starts")
}

/// The configuration of a node on `ip`.
pub fn node_config(redis_url: &str, id: &str, ip: &str) -> Config {
    let mut config = Config::for_tests();
    let ip = ip.parse().expect("ip");
    config.listen = SocketAddr::new(ip, 0);
    config.turn_listen = SocketAddr::new(ip, 0);
    config.public_ip = ip;
    config.debug_endpoints = true;
    config.redis_url = Some(Secret::new(redis_url));
    config.node_id = Some(id.to_owned());
    config
}

/// `GET /cluster` of the node at `addr`, parsed.
pub async fn cluster_view(addr: SocketAddr) -> Value {
    let (status, body) = crate::support::http_get(addr, "/cluster").await;
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).expect("JSON")
}

/// `GET /cluster` of the node at `addr`, if it answers 200 (Redis may be restarting).
pub async fn try_cluster_view(addr: SocketAddr) -> Option<Value> {
    let (status, body) = crate::support::http_get(addr, "/cluster").await;
    (status == 200).then(|| serde_json::from_str(&body).expect("JSON"))
}

/// Waits until `/cluster` at `addr` lists `room` on some node (nodes publish their rooms at
/// each refresh); returns the owners listed.
pub async fn wait_owners(addr: SocketAddr, room: &str) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(view) = try_cluster_view(addr).await {
            let found = owners(&view, room);
            if !found.is_empty() || Instant::now() > deadline {
                return found;
            }
        } else if Instant::now() > deadline {
            return Vec::new();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The ids of the nodes that list `room` in `view`.
pub fn owners(view: &Value, room: &str) -> Vec<String> {
    view["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .filter(|n| n["rooms"].as_array().unwrap().iter().any(|r| r == room))
        .map(|n| n["id"].as_str().unwrap().to_owned())
        .collect()
}

/// A `lamina` process (for the tests that kill a node).
pub struct NodeProcess {
    child: Child,
    /// Its HTTP/WebSocket address.
    pub addr: SocketAddr,
    /// Its node id.
    pub id: String,
    log: Arc<Mutex<Vec<String>>>,
}

impl NodeProcess {
    /// Starts `lamina` with `--listen <ip>:0` and the cluster flags; waits until it listens.
    pub fn start(
        redis_url: &str,
        id: &str,
        ip: &str,
        extra: &[&str],
    ) -> Result<NodeProcess, String> {
        let mut child = Command::new(env!("CARGO_BIN_EXE_lamina"))
            .args([
                "--listen",
                &format!("{ip}:0"),
                "--turn-listen",
                &format!("{ip}:0"),
            ])
            .args(["--public-ip", ip, "--redis-url", redis_url, "--node-id", id])
            .args([
                "--debug-endpoints",
                "--ice-port-min",
                "0",
                "--ice-port-max",
                "0",
            ])
            .args(extra)
            .env("LAMINA_LOG", "info")
            .env("NO_COLOR", "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start lamina: {e}"))?;
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        let stderr = child.stderr.take().unwrap();
        for (stream, tx) in [
            (Box::new(stdout) as Box<dyn Read + Send>, tx.clone()),
            (Box::new(stderr), tx),
        ] {
            let log = log.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    if let Some(addr) = line
                        .contains("lamina listening")
                        .then(|| line.split("addr=").nth(1))
                        .flatten()
                        .and_then(|s| s.split_whitespace().next())
                        .and_then(|s| s.parse::<SocketAddr>().ok())
                    {
                        let _ = tx.send(addr);
                    }
                    log.lock().unwrap().push(line);
                }
            });
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(addr) = rx.recv_timeout(Duration::from_millis(50)) {
                return Ok(NodeProcess {
                    child,
                    addr,
                    id: id.to_owned(),
                    log,
                });
            }
            if let Ok(Some(status)) = child.try_wait() {
                std::thread::sleep(Duration::from_millis(100));
                return Err(format!(
                    "lamina exited ({status}):\n{}",
                    log.lock().unwrap().join("\n")
                ));
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                return Err("lamina did not listen within 20 s".into());
            }
        }
    }

    /// `ws://<addr>/socket/websocket`.
    pub fn socket_url(&self) -> String {
        format!("ws://{}/socket/websocket", self.addr)
    }

    /// SIGKILL: no chance to deregister or close anything.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends SIGTERM (what systemd sends to stop it).
    pub fn terminate(&self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
    }

    /// Whether the process still runs.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Waits (bounded) for the process to exit by itself; its exit status.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    /// The log so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Percentile `p` (0-100) of `samples` (sorted here), in milliseconds.
pub fn percentile(samples: &mut [Duration], p: f64) -> f64 {
    samples.sort();
    let i = ((samples.len() as f64 - 1.0) * p / 100.0).round() as usize;
    samples[i].as_secs_f64() * 1000.0
}
