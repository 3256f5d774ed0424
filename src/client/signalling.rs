//! Client side of Phoenix Channels v2 for one room channel.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::Message;

/// Signalling failures.
#[derive(Debug, thiserror::Error)]
pub enum SignallingError {
    /// The WebSocket could not be opened.
    #[error("websocket: {0}")]
    Connect(String),
    /// The server refused the channel join.
    #[error("join refused: {0}")]
    JoinRefused(String),
    /// The connection closed.
    #[error("connection closed")]
    Closed,
}

/// A joined room channel: send media events; incoming ones arrive on the receiver given by
/// [`Signalling::connect`].
#[derive(Clone)]
pub struct Signalling {
    out: mpsc::UnboundedSender<Message>,
    topic: Arc<String>,
    join_ref: Arc<String>,
    next_ref: Arc<AtomicU64>,
}

impl Signalling {
    /// Connects to `url` (`ws://host:port/socket/websocket`) and joins `room:<room>`.
    /// Media events pushed by the server (decoded JSON) arrive on the returned receiver; it
    /// ends when the connection or channel closes.
    pub async fn connect(
        url: &str,
        room: &str,
    ) -> Result<(Signalling, mpsc::UnboundedReceiver<Value>), SignallingError> {
        let url = format!("{url}?vsn=2.0.0");
        let (ws, _) = tokio_tungstenite::connect_async(url.as_str())
            .await
            .map_err(|e| SignallingError::Connect(e.to_string()))?;
        let (mut sink, mut stream) = ws.split();
        let (out, mut out_rx) = mpsc::unbounded_channel::<Message>();
        tokio::spawn(async move {
            while let Some(m) = out_rx.recv().await {
                if sink.send(m).await.is_err() {
                    break;
                }
            }
            let _ = sink.close().await;
        });
        let topic = format!("room:{room}");
        let sig = Signalling {
            out,
            topic: Arc::new(topic.clone()),
            join_ref: Arc::new("1".into()),
            next_ref: Arc::new(AtomicU64::new(2)),
        };
        let (events_tx, events_rx) = mpsc::unbounded_channel();
        let (joined_tx, joined_rx) = oneshot::channel::<Result<(), String>>();
        let mut joined_tx = Some(joined_tx);
        tokio::spawn(async move {
            while let Some(Ok(msg)) = stream.next().await {
                let Message::Text(text) = msg else { continue };
                let Ok(frame) = serde_json::from_str::<Value>(&text) else {
                    continue;
                };
                let (r, t, ev, payload) = (&frame[1], &frame[2], &frame[3], &frame[4]);
                match ev.as_str() {
                    Some("phx_reply") if r == "1" && t == topic.as_str() => {
                        if let Some(tx) = joined_tx.take() {
                            let res = if payload["status"] == "ok" {
                                Ok(())
                            } else {
                                Err(payload["response"].to_string())
                            };
                            let _ = tx.send(res);
                        }
                    }
                    Some("mediaEvent") => {
                        let parsed = payload["data"]
                            .as_str()
                            .and_then(|d| serde_json::from_str::<Value>(d).ok());
                        if let Some(e) = parsed {
                            if events_tx.send(e).is_err() {
                                break;
                            }
                        }
                    }
                    Some("phx_close") | Some("phx_error") if t == topic.as_str() => break,
                    _ => {}
                }
            }
        });
        sig.frame("1", "phx_join", json!({}));
        match tokio::time::timeout(Duration::from_secs(10), joined_rx).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(reason))) => return Err(SignallingError::JoinRefused(reason)),
            _ => return Err(SignallingError::Closed),
        }
        // The heartbeat holds the writer weakly: once every handle is dropped (a participant
        // dropped without leaving), the writer ends and the socket closes instead of staying
        // alive on heartbeats alone.
        let (hb_out, hb_ref) = (sig.out.downgrade(), sig.next_ref.clone());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(20));
            tick.tick().await;
            loop {
                tick.tick().await;
                let Some(out) = hb_out.upgrade() else { break };
                let r = hb_ref.fetch_add(1, Ordering::Relaxed).to_string();
                let frame = json!([null, r, "phoenix", "heartbeat", {}]).to_string();
                if out.send(Message::Text(frame)).is_err() {
                    break;
                }
            }
        });
        Ok((sig, events_rx))
    }

    fn frame(&self, r: &str, event: &str, payload: Value) -> bool {
        let f = json!([
            self.join_ref.as_str(),
            r,
            self.topic.as_str(),
            event,
            payload
        ]);
        self.out.send(Message::Text(f.to_string())).is_ok()
    }

    /// Pushes a media event (JSON); `false` if the connection is gone.
    pub fn send(&self, event: Value) -> bool {
        let r = self.next_ref.fetch_add(1, Ordering::Relaxed).to_string();
        self.frame(&r, "mediaEvent", json!({"data": event.to_string()}))
    }

    /// Leaves the channel and closes the socket.
    pub fn close(&self) {
        let r = self.next_ref.fetch_add(1, Ordering::Relaxed).to_string();
        self.frame(&r, "phx_leave", json!({}));
        let _ = self.out.send(Message::Close(None));
    }
}
