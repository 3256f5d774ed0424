//! HTTP routes: health, the static web client, path traversal, 404s.

mod support;

use std::path::PathBuf;

use support::{http_get, spawn_server};

/// A throw-away web client directory with a secret file next to (not inside) `assets/`.
struct WebDir(PathBuf);

impl WebDir {
    fn new() -> WebDir {
        let dir = std::env::temp_dir().join(format!("lamina-web-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(dir.join("assets")).unwrap();
        std::fs::write(dir.join("index.html"), "<h1>index page</h1>").unwrap();
        std::fs::write(dir.join("room.html"), "<h1>room page</h1>").unwrap();
        std::fs::write(dir.join("assets/app.js"), "console.log('app');").unwrap();
        std::fs::write(dir.join("secret.txt"), "top secret").unwrap();
        WebDir(dir)
    }
}

impl Drop for WebDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[tokio::test]
async fn health_is_ok() {
    let server = spawn_server(|_| {}).await;
    let (status, body) = http_get(server.addr, "/health").await;
    assert_eq!(status, 200);
    assert_eq!(body, "ok");
    server.stop().await;
}

#[tokio::test]
async fn serves_the_web_client() {
    let web = WebDir::new();
    let dir = web.0.clone();
    let server = spawn_server(move |c| c.web_dir = dir).await;
    let (status, body) = http_get(server.addr, "/").await;
    assert_eq!(status, 200);
    assert!(body.contains("index page"), "{body}");
    let (status, body) = http_get(server.addr, "/room/some-room").await;
    assert_eq!(status, 200);
    assert!(body.contains("room page"), "{body}");
    let (status, body) = http_get(server.addr, "/assets/app.js").await;
    assert_eq!(status, 200);
    assert!(body.contains("console.log"), "{body}");
    server.stop().await;
}

#[tokio::test]
async fn assets_do_not_escape_their_directory() {
    let web = WebDir::new();
    let dir = web.0.clone();
    let server = spawn_server(move |c| c.web_dir = dir).await;
    for path in [
        "/assets/../secret.txt",
        "/assets/%2e%2e/secret.txt",
        "/assets/..%2fsecret.txt",
        "/assets/%2e%2e%2fsecret.txt",
        "/assets/../../Cargo.toml",
        "/assets//etc/passwd",
        "/assets/../index.html",
    ] {
        let (status, body) = http_get(server.addr, path).await;
        assert!(!body.contains("top secret"), "{path} leaked the secret");
        assert!(!body.contains("index page"), "{path} escaped assets/");
        assert!(!body.contains("[package]"), "{path} leaked Cargo.toml");
        assert!(status >= 400, "{path}: {status}");
    }
    server.stop().await;
}

#[tokio::test]
async fn missing_web_client_answers_503() {
    let server = spawn_server(|c| c.web_dir = PathBuf::from("/nonexistent/lamina-web")).await;
    for path in ["/", "/room/abc"] {
        let (status, body) = http_get(server.addr, path).await;
        assert_eq!(status, 503, "{path}");
        assert_eq!(body, "web client not built: run scripts/build-web.sh");
    }
    let (status, _) = http_get(server.addr, "/assets/app.js").await;
    assert_eq!(status, 404);
    server.stop().await;
}

#[tokio::test]
async fn unknown_paths_are_404() {
    let web = WebDir::new();
    let dir = web.0.clone();
    let server = spawn_server(move |c| c.web_dir = dir).await;
    for path in [
        "/nope",
        "/room",
        "/room/a/b",
        "/health/x",
        "/socket",
        "/index.html",
    ] {
        let (status, _) = http_get(server.addr, path).await;
        assert_eq!(status, 404, "{path}");
    }
    // The socket path without a WebSocket upgrade is a bad request, not a page.
    let (status, _) = http_get(server.addr, "/socket/websocket?vsn=2.0.0").await;
    assert_eq!(status, 400);
    server.stop().await;
}

#[tokio::test]
async fn debug_endpoints_are_off_by_default() {
    let server = spawn_server(|_| {}).await;
    let (status, _) = http_get(server.addr, "/debug/rooms").await;
    assert_eq!(status, 404);
    server.stop().await;
}

#[tokio::test]
async fn debug_endpoints_list_rooms() {
    let server = spawn_server(|c| c.debug_endpoints = true).await;
    let (status, body) = http_get(server.addr, "/debug/rooms").await;
    assert_eq!(status, 200);
    assert_eq!(body, "[]");
    let mut c = support::PhoenixClient::connect(server.addr).await;
    c.join_ok("room:dbg").await;
    let (status, body) = http_get(server.addr, "/debug/rooms").await;
    assert_eq!(status, 200);
    let rooms: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(rooms[0]["id"], "dbg", "{body}");
    let (status, _) = http_get(server.addr, "/debug/rooms/nope/pipeline.dot").await;
    assert_eq!(status, 404);
    let (status, body) = http_get(server.addr, "/debug/rooms/dbg/pipeline.dot").await;
    assert!(
        status == 200 && body.contains("digraph") || status == 404,
        "{status} {body}"
    );
    server.stop().await;
}
