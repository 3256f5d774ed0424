//! Client side of Phoenix Channels v2 for one room channel, through `lamina-protocol`'s typed
//! frames ([`Frame`]) and media events ([`ClientEvent`] out, [`ServerEvent`] in).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use lamina_protocol::media_event::{ClientEvent, ServerEvent};
use lamina_protocol::phoenix_frame::{self, Frame, ReplyStatus, MEDIA_EVENT, PHX_CLOSE, PHX_ERROR};
use serde_json::{Map, Value};
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::Message;

/// Ref of the channel join (also its join ref).
const JOIN_REF: &str = "1";

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
    next_ref: Arc<AtomicU64>,
}

impl Signalling {
    /// Connects to `url` (`ws://host:port/socket/websocket`) and joins `room:<room>`.
    /// Media events pushed by the server arrive decoded on the returned receiver (events that
    /// do not decode are logged and skipped); it ends when the connection or channel closes.
    pub async fn connect(
        url: &str,
        room: &str,
    ) -> Result<(Signalling, mpsc::UnboundedReceiver<ServerEvent>), SignallingError> {
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
            next_ref: Arc::new(AtomicU64::new(2)),
        };
        let (events_tx, events_rx) = mpsc::unbounded_channel();
        let (joined_tx, joined_rx) = oneshot::channel::<Result<(), String>>();
        let mut joined_tx = Some(joined_tx);
        tokio::spawn(async move {
            while let Some(Ok(msg)) = stream.next().await {
                let Message::Text(text) = msg else { continue };
                let frame = match phoenix_frame::decode(&text, usize::MAX) {
                    Ok(frame) => frame,
                    Err(e) => {
                        tracing::warn!(error = %e, "client got a malformed frame");
                        continue;
                    }
                };
                let on_channel = frame.topic == topic;
                if let Some((status, response)) = frame.as_reply() {
                    if on_channel && frame.reference.as_deref() == Some(JOIN_REF) {
                        if let Some(tx) = joined_tx.take() {
                            let res = match status {
                                ReplyStatus::Ok => Ok(()),
                                ReplyStatus::Error => Err(response.to_string()),
                            };
                            let _ = tx.send(res);
                        }
                    }
                } else if let Some(data) = frame.media_event_data() {
                    match ServerEvent::decode(data) {
                        Ok(event) => {
                            if events_tx.send(event).is_err() {
                                break;
                            }
                        }
                        Err(e) => tracing::warn!(error = %e, "client got a bad media event"),
                    }
                } else if on_channel && (frame.event == PHX_CLOSE || frame.event == PHX_ERROR) {
                    break;
                }
            }
        });
        sig.send_frame(&Frame::join(JOIN_REF, sig.topic.as_str(), Map::new()));
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
                if out
                    .send(Message::Text(Frame::heartbeat(r).encode()))
                    .is_err()
                {
                    break;
                }
            }
        });
        Ok((sig, events_rx))
    }

    fn send_frame(&self, frame: &Frame) -> bool {
        self.out.send(Message::Text(frame.encode())).is_ok()
    }

    fn fresh_ref(&self) -> String {
        self.next_ref.fetch_add(1, Ordering::Relaxed).to_string()
    }

    /// Pushes `data` as a `"mediaEvent"`; `false` if the connection is gone.
    fn push_media_event(&self, data: String) -> bool {
        self.send_frame(&Frame::request(
            Some(JOIN_REF.into()),
            self.fresh_ref(),
            self.topic.as_str(),
            MEDIA_EVENT,
            Frame::media_event_payload(data),
        ))
    }

    /// Pushes a media event; `false` if the connection is gone.
    pub fn send(&self, event: &ClientEvent) -> bool {
        self.push_media_event(event.encode())
    }

    /// Pushes any JSON as a media event, unchecked (for tests of odd inputs); `false` if the
    /// connection is gone.
    pub fn send_raw(&self, event: &Value) -> bool {
        self.push_media_event(event.to_string())
    }

    /// Leaves the channel and closes the socket.
    pub fn close(&self) {
        self.send_frame(&Frame::leave(
            Some(JOIN_REF.into()),
            self.fresh_ref(),
            self.topic.as_str(),
        ));
        let _ = self.out.send(Message::Close(None));
    }
}
