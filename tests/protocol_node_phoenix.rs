//! The real `phoenix` JS client (npm `phoenix` 1.8.16 on Node, `ws` as transport) against the
//! server: connect, join, heartbeat, `connect` media event → `connected`, leave.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use support::spawn_server;

fn node_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/node")
}

fn node() -> PathBuf {
    let usr = PathBuf::from("/usr/bin/node");
    if usr.exists() {
        usr
    } else {
        PathBuf::from("node")
    }
}

/// Installs the npm packages of tests/node from its lock file if they are missing.
fn ensure_node_modules() {
    let dir = node_dir();
    if dir.join("node_modules/phoenix").exists() && dir.join("node_modules/ws").exists() {
        return;
    }
    let out = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
        .current_dir(&dir)
        .output()
        .expect("npm runs");
    assert!(
        out.status.success(),
        "npm ci in tests/node failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

async fn run_client(url: String, expect: &str) -> Output {
    let expect = expect.to_owned();
    let script = node_dir().join("phoenix_client.mjs");
    let run = tokio::task::spawn_blocking(move || {
        Command::new(node())
            .arg(script)
            .arg(url)
            .args(["--expect", &expect])
            .output()
            .expect("node runs")
    });
    // The script has its own 20 s timeout; this one only guards against a hung node.
    tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("node finishes")
        .expect("join node task")
}

#[tokio::test]
async fn phoenix_js_client_joins_and_gets_connected() {
    tokio::task::spawn_blocking(ensure_node_modules)
        .await
        .expect("npm ci task");
    let server = spawn_server(|_| {}).await;
    let out = run_client(format!("ws://{}/socket", server.addr), "connected").await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "phoenix_client.mjs failed ({}):\nstdout:\n{stdout}\nstderr:\n{stderr}",
        out.status
    );
    assert!(stdout.contains("phoenix_client: ok"), "{stdout}");
    server.stop().await;
}
