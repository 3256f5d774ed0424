//! Helpers of the tools tests (debug graphs, recording, taps, publish): plain HTTP requests and
//! webrtcbin participants against a server on 127.0.0.1.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use lamina::server::Server;
use lamina_client::{Participant, ParticipantConfig, ParticipantState};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Wait for media to flow.
pub const MEDIA_TIMEOUT: Duration = Duration::from_secs(30);

/// One HTTP/1.1 request (`Connection: close`); returns the status and the body.
pub async fn http(addr: SocketAddr, method: &str, path: &str, body: Option<&str>) -> (u16, String) {
    let mut tcp = TcpStream::connect(addr).await.expect("connect");
    let body = body.unwrap_or("");
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    tcp.write_all(request.as_bytes())
        .await
        .expect("write request");
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), tcp.read_to_end(&mut raw))
        .await
        .expect("response in time")
        .expect("read response");
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {text:?}"));
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// Parses a JSON body, panicking with the body on failure.
pub fn json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

/// The server's WebSocket URL.
pub fn url(server: &Server) -> String {
    format!("ws://{}/socket/websocket", server.addr)
}

/// Joins `room` as a participant publishing audio and/or video and receiving the others.
pub async fn join(
    server: &Server,
    room: &str,
    name: &str,
    audio: bool,
    video: bool,
) -> Participant {
    Participant::join(ParticipantConfig {
        url: url(server),
        room: room.into(),
        name: name.into(),
        audio,
        video,
        receive: true,
    })
    .await
    .expect("participant joins")
}

/// Waits until `p` decoded at least `min` frames of `tracks` tracks of `from`.
pub async fn wait_decoding(
    p: &Participant,
    from: &str,
    tracks: usize,
    min: u64,
) -> ParticipantState {
    p.wait_until("remote media decoded", MEDIA_TIMEOUT, |s| {
        s.playing(from, min) == tracks
    })
    .await
    .unwrap_or_else(|e| panic!("{}: {e}", p.id))
}

/// Tests of one binary run one at a time: they share two cores with their encoders.
pub async fn serial() -> tokio::sync::MutexGuard<'static, ()> {
    static LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    LOCK.lock().await
}
