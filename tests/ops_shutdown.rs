//! SIGTERM on the real binary: peers get the `error` media event and `phx_close`, sockets close
//! with 1001, room pipelines are torn down, and the process exits 0 within 5 s. The binary logs
//! JSON lines (`--log-format json`), which the test reads to find the listen address.

mod support;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::PhoenixClient;

/// The server process; killed if the test fails before it exits.
struct Lamina {
    child: Child,
    lines: mpsc::Receiver<Value>,
    seen: Vec<Value>,
}

impl Lamina {
    fn start() -> Lamina {
        let mut child = Command::new(env!("CARGO_BIN_EXE_lamina"))
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
                let value = serde_json::from_str(&line)
                    .unwrap_or_else(|e| panic!("log line is not JSON ({e}): {line}"));
                if tx.send(value).is_err() {
                    break;
                }
            }
        });
        Lamina {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits (blocking, bounded) for a log line whose message is `message`.
    fn wait_log(&mut self, message: &str, timeout: Duration) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self
                .lines
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("no {message:?} log line; seen {:?}", self.seen));
            self.seen.push(line.clone());
            if line["fields"]["message"] == message {
                return line;
            }
        }
    }

    fn drain_logs(&mut self) {
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(2)) {
            self.seen.push(line);
        }
    }
}

impl Drop for Lamina {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn connect(addr: SocketAddr, name: &str) -> (PhoenixClient, String) {
    let topic = "room:bye";
    let mut c = PhoenixClient::connect(addr).await;
    let join_ref = c.join_ok(topic).await;
    let r = c
        .media_event(
            &join_ref,
            topic,
            json!({"type": "connect", "data": {"metadata": {"displayName": name}}}),
        )
        .await;
    assert_eq!(c.reply(&r).await.status(), "ok");
    c.media_event_of_type("connected").await;
    (c, join_ref)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_closes_rooms_and_sockets_then_exits_zero() {
    let mut lamina = Lamina::start();
    let listening = tokio::task::block_in_place(|| {
        lamina.wait_log("lamina listening", Duration::from_secs(30))
    });
    let addr: SocketAddr = listening["fields"]["addr"]
        .as_str()
        .expect("addr field")
        .parse()
        .expect("socket address");

    let (mut a, a_ref) = connect(addr, "A").await;
    let (mut b, b_ref) = connect(addr, "B").await;
    a.media_event_of_type("endpointAdded").await;

    let pid = lamina.child.id().to_string();
    let term = Instant::now();
    let status = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("run kill");
    assert!(status.success());

    for (c, join_ref) in [(&mut a, &a_ref), (&mut b, &b_ref)] {
        let error = c.media_event_of_type("error").await;
        assert_eq!(error["data"]["message"], "server shutting down", "{error}");
        let close = c.next_frame_where(|f| f.event == "phx_close").await;
        assert_eq!(close.join_ref.as_deref(), Some(join_ref.as_str()));
        assert_eq!(c.closed().await, (1001, "server shutting down".to_owned()));
    }
    // Answer the close frames (as browsers do at once), so the server need not wait for them.
    a.close().await;
    b.close().await;

    let exit = tokio::task::block_in_place(|| loop {
        if let Some(status) = lamina.child.try_wait().expect("wait") {
            break status;
        }
        assert!(
            term.elapsed() < Duration::from_secs(5),
            "still running 5 s after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    });
    assert!(exit.success(), "exit status {exit}");
    println!("exited {:?} after SIGTERM", term.elapsed());

    tokio::task::block_in_place(|| lamina.drain_logs());
    let messages: Vec<&str> = lamina
        .seen
        .iter()
        .filter_map(|l| l["fields"]["message"].as_str())
        .collect();
    let closed = lamina
        .seen
        .iter()
        .find(|l| l["fields"]["message"] == "room closed")
        .unwrap_or_else(|| panic!("no room closed line: {messages:?}"));
    assert_eq!(closed["fields"]["room"], "bye");
    assert!(messages.contains(&"server stopped"), "{messages:?}");
    assert!(
        !messages.contains(&"media engine did not stop in time"),
        "{messages:?}"
    );
    // Peer lines carry the room (field or span) and the peer.
    let joined = lamina
        .seen
        .iter()
        .find(|l| l["fields"]["message"] == "peer joined")
        .expect("peer joined line");
    assert_eq!(joined["fields"]["room"], "bye");
    assert!(joined["fields"]["peer"].is_string(), "{joined}");
}

/// Names of this process's threads.
fn thread_names() -> Vec<String> {
    std::fs::read_dir("/proc/self/task")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("comm")).ok())
        .map(|n| n.trim().to_owned())
        .collect()
}

/// `Server::stop` while media flows: the participants are told, the room's media thread ends
/// (it ends only after the pipeline is NULL) and the stop stays well within its bound.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_with_live_media_tears_the_pipeline_down() {
    use lamina_client::{Participant, ParticipantConfig};
    let server = support::spawn_server(|_| {}).await;
    let join = |name: &str| {
        Participant::join(ParticipantConfig {
            url: format!("ws://{}/socket/websocket", server.addr),
            room: "stopme".into(),
            name: name.into(),
            audio: true,
            video: true,
            receive: true,
        })
    };
    let a = join("A").await.expect("A joins");
    let b = join("B").await.expect("B joins");
    for (p, other) in [(&a, &b.id), (&b, &a.id)] {
        p.wait_until("remote media decoded", Duration::from_secs(20), |s| {
            s.playing(other, 10) == 2
        })
        .await
        .unwrap_or_else(|e| panic!("{}: {e}", p.id));
    }
    assert!(thread_names().iter().any(|n| n == "media-stopme"));

    let rooms = server.rooms.clone();
    let started = Instant::now();
    server.stop().await;
    let took = started.elapsed();
    println!("stop took {took:?}");
    assert!(took < Duration::from_secs(5), "stop took {took:?}");
    assert!(rooms.is_empty());
    assert!(
        !thread_names().iter().any(|n| n == "media-stopme"),
        "media thread still running: {:?}",
        thread_names()
    );
    for p in [&a, &b] {
        p.wait_until("told of the shutdown", Duration::from_secs(5), |s| {
            s.errors.iter().any(|e| e.contains("server shutting down"))
        })
        .await
        .unwrap_or_else(|e| panic!("{}: {e}", p.id));
    }
    a.leave().await;
    b.leave().await;
}
