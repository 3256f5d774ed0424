//! `--allowed-origin`: WebSocket upgrades from other origins (or none) get 403.

mod ops_common;
mod support;

use std::net::SocketAddr;

use support::{socket_url, spawn_server, TIMEOUT};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Error;

/// Tries an upgrade with this `Origin`; returns the HTTP status of a refusal, or `None` when
/// the socket opened and answered a heartbeat.
async fn upgrade(addr: SocketAddr, origin: Option<&str>) -> Option<u16> {
    let mut request = socket_url(addr).into_client_request().expect("request");
    if let Some(origin) = origin {
        request
            .headers_mut()
            .insert("origin", HeaderValue::from_str(origin).expect("header"));
    }
    let connected = tokio::time::timeout(TIMEOUT, tokio_tungstenite::connect_async(request))
        .await
        .expect("answer in time");
    match connected {
        Ok((mut ws, _)) => {
            ops_common::heartbeat(&mut ws).await;
            None
        }
        Err(Error::Http(response)) => Some(response.status().as_u16()),
        Err(e) => panic!("unexpected error: {e}"),
    }
}

#[tokio::test]
async fn only_listed_origins_may_open_sockets() {
    let server = spawn_server(|c| {
        c.allowed_origins = vec![
            "https://meet.example.org".into(),
            "http://localhost:4000/".into(),
        ]
    })
    .await;
    let addr = server.addr;
    assert_eq!(upgrade(addr, Some("https://meet.example.org")).await, None);
    assert_eq!(upgrade(addr, Some("HTTPS://Meet.Example.org")).await, None);
    assert_eq!(upgrade(addr, Some("http://localhost:4000")).await, None);
    assert_eq!(upgrade(addr, Some("https://evil.example")).await, Some(403));
    assert_eq!(
        upgrade(addr, Some("http://meet.example.org")).await,
        Some(403)
    );
    assert_eq!(upgrade(addr, Some("null")).await, Some(403));
    assert_eq!(upgrade(addr, None).await, Some(403));
    // Other routes do not care about the origin.
    assert_eq!(support::http_get(addr, "/health").await, (200, "ok".into()));
    server.stop().await;
}

#[tokio::test]
async fn any_origin_without_the_option() {
    let server = spawn_server(|_| {}).await;
    assert_eq!(
        upgrade(server.addr, Some("https://evil.example")).await,
        None
    );
    assert_eq!(upgrade(server.addr, None).await, None);
    server.stop().await;
}
