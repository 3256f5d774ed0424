//! Operations endpoints: `/metrics` on its own listener (`--metrics-listen`) and then absent
//! from the main port; `/health` (liveness) and `/ready` (readiness: 200 on a working server,
//! 503 naming what is missing on a server whose GStreamer finds no plugins).

mod ops_common;
mod support;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use ops_common::TIMEOUT;

/// `GET path` over plain HTTP/1.1: the status code and the body.
async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut tcp = TcpStream::connect(addr).await.expect("connect");
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    tcp.write_all(request.as_bytes()).await.expect("write");
    let mut raw = Vec::new();
    tokio::time::timeout(TIMEOUT, tcp.read_to_end(&mut raw))
        .await
        .expect("response in time")
        .expect("read");
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line: {text}"));
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

#[tokio::test]
async fn metrics_on_a_separate_listener() {
    let server =
        support::spawn_server(|c| c.metrics_listen = Some("127.0.0.1:0".parse().unwrap())).await;
    let metrics_addr = server.metrics_addr.expect("metrics listener");
    assert_ne!(metrics_addr.port(), server.addr.port());

    let (status, body) = get(metrics_addr, "/metrics").await;
    assert_eq!(status, 200, "{body}");
    assert!(
        ops_common::sample(&body, "lamina_rooms").is_some(),
        "{body}"
    );
    // Nothing else on the metrics listener, no metrics on the main port.
    assert_eq!(get(metrics_addr, "/health").await.0, 404);
    assert_eq!(get(metrics_addr, "/").await.0, 404);
    assert_eq!(get(server.addr, "/metrics").await.0, 404);
    assert_eq!(get(server.addr, "/health").await.0, 200);

    // Stopping the server closes the metrics listener too.
    server.stop().await;
    let closed = support::wait_until(
        || async { TcpStream::connect(metrics_addr).await.is_err() },
        TIMEOUT,
    )
    .await;
    assert!(closed, "metrics listener still open after stop");

    // Without the option, /metrics stays on the main port.
    let server = support::spawn_server(|_| {}).await;
    assert!(server.metrics_addr.is_none());
    let (status, body) = get(server.addr, "/metrics").await;
    assert_eq!(status, 200);
    assert!(ops_common::sample(&body, "lamina_rooms").is_some());
    server.stop().await;
}

#[tokio::test]
async fn health_and_ready_on_a_working_server() {
    let server = support::spawn_server(|_| {}).await;
    let (status, body) = get(server.addr, "/health").await;
    assert_eq!((status, body.as_str()), (200, "ok"));
    let (status, body) = get(server.addr, "/ready").await;
    assert_eq!(status, 200, "{body}");
    let ready: Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(ready["ready"], true, "{ready}");
    assert_eq!(ready["missing"], serde_json::json!([]), "{ready}");
    server.stop().await;
}

/// The `lamina` binary logging JSON lines; killed at the end of the test.
struct Lamina {
    child: Child,
    lines: mpsc::Receiver<Value>,
}

impl Lamina {
    fn start(cmd: &mut Command) -> Lamina {
        let mut child = cmd
            .args([
                "--listen",
                "127.0.0.1:0",
                "--turn-listen",
                "127.0.0.1:0",
                "--ice-port-min",
                "0",
                "--ice-port-max",
                "0",
                "--turn-relay-port-min",
                "0",
                "--turn-relay-port-max",
                "0",
                "--log-format",
                "json",
            ])
            .env("LAMINA_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start lamina");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let Ok(value) = serde_json::from_str(&line) else {
                    continue;
                };
                if tx.send(value).is_err() {
                    break;
                }
            }
        });
        Lamina { child, lines }
    }

    /// The log lines up to and including the one whose message is `message`.
    fn logs_until(&self, message: &str) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self
                .lines
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("no {message:?} log line; seen {seen:?}"));
            let done = line["fields"]["message"] == message;
            seen.push(line);
            if done {
                return seen;
            }
        }
    }
}

impl Drop for Lamina {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// GStreamer pointed at an empty plugin directory: the server still starts and is live, but
/// `/ready` answers 503 naming the missing elements (not the statically registered Lamina
/// ones, not TURN, which is bound). The world-readable secret file is logged as a warning.
#[tokio::test]
async fn without_gstreamer_plugins_the_server_is_live_but_not_ready() {
    let dir = std::env::temp_dir().join(format!("lamina-probes-{}", uuid::Uuid::new_v4()));
    let plugins = dir.join("no-plugins");
    std::fs::create_dir_all(&plugins).expect("temp dir");
    let secret = dir.join("turn-secret");
    std::fs::write(&secret, "probe-secret-51c2\n").expect("write secret");
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lamina"));
    cmd.env("GST_PLUGIN_SYSTEM_PATH_1_0", &plugins)
        .env("GST_PLUGIN_SYSTEM_PATH", &plugins)
        .env_remove("GST_PLUGIN_PATH")
        .env_remove("GST_PLUGIN_PATH_1_0")
        .env("GST_REGISTRY_1_0", dir.join("registry.bin"))
        .env("GST_REGISTRY", dir.join("registry.bin"))
        .arg("--turn-secret-file")
        .arg(&secret);
    let lamina = Lamina::start(&mut cmd);
    let logs = lamina.logs_until("lamina listening");
    let addr: SocketAddr = logs.last().unwrap()["fields"]["addr"]
        .as_str()
        .expect("addr field")
        .parse()
        .expect("socket address");
    let warning = logs
        .iter()
        .find(|l| l["level"] == "WARN" && l.to_string().contains("readable by every user"))
        .unwrap_or_else(|| panic!("no world-readable warning in {logs:?}"));
    assert!(warning.to_string().contains("turn-secret"), "{warning}");
    assert!(!logs
        .iter()
        .any(|l| l.to_string().contains("probe-secret-51c2")));

    assert_eq!(get(addr, "/health").await, (200, "ok".to_owned()));
    let (status, body) = get(addr, "/ready").await;
    assert_eq!(status, 503, "{body}");
    let ready: Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(ready["ready"], false, "{ready}");
    let missing: Vec<&str> = ready["missing"]
        .as_array()
        .expect("missing list")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for element in ["webrtcbin", "rtpbin", "nicesrc"] {
        assert!(
            missing.contains(&format!("element {element}").as_str()),
            "{element} not in {missing:?}"
        );
    }
    for present in ["element laminaforwarder", "turn server"] {
        assert!(!missing.contains(&present), "{present} in {missing:?}");
    }
    drop(lamina);
    let _ = std::fs::remove_dir_all(&dir);
}
