//! Helpers shared by the `ops_*` tests: a heartbeat over any WebSocket stream, `/metrics`
//! parsing, tokens.
#![allow(dead_code)]

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

/// Wait for anything the server should do promptly.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// Sends a Phoenix heartbeat and waits for its `ok` reply on any WebSocket stream.
pub async fn heartbeat<S>(ws: &mut WebSocketStream<S>)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let frame = json!([null, "hb-1", "phoenix", "heartbeat", {}]).to_string();
    ws.send(Message::Text(frame)).await.expect("send heartbeat");
    let reply = tokio::time::timeout(TIMEOUT, async {
        while let Some(msg) = ws.next().await {
            if let Message::Text(text) = msg.expect("read") {
                let v: Value = serde_json::from_str(&text).expect("JSON frame");
                if v[1] == "hb-1" {
                    return v;
                }
            }
        }
        panic!("connection ended before the heartbeat reply");
    })
    .await
    .expect("heartbeat reply in time");
    assert_eq!(reply[3], "phx_reply");
    assert_eq!(reply[4]["status"], "ok", "{reply}");
}

/// The value of the sample `name` (with its labels, e.g. `x_total{reason="a"}`) in a
/// Prometheus text exposition, if present.
pub fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        let (key, value) = l.rsplit_once(' ')?;
        (key == name).then(|| value.parse().ok()).flatten()
    })
}
