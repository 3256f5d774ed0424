//! [`RemoteChannel`]: a room channel whose room runs on another node, relayed over one
//! WebSocket from this node to the owner's Phoenix socket.
//!
//! Signalling only: the client's frames of that topic go to the owner as the exact text the
//! client sent, and the owner's frames come back as the exact text the owner sent, so the
//! protocol is the owner's byte for byte. The client's heartbeats stay with the socket on this
//! node; the relay keeps its own WebSocket alive with heartbeats of its own every
//! [`RELAY_HEARTBEAT`], whose replies it drops, and counts the owner as gone when nothing came
//! from it for [`OWNER_SILENCE`] (a host that lost power or a network split never resets the
//! TCP connection). The two sides end together:
//! - the client's leave or socket end closes the relay's WebSocket (the owner removes the peer);
//! - the owner closing the channel (`phx_close`, `phx_error`, or an error reply to the join)
//!   ends the relay after passing that frame on, as a local channel would end;
//! - the owner's side ending (node gone, socket closed, silent, or not reading: the queue
//!   toward it is bounded) is reported as a lost node, on which the client's socket is closed
//!   so the client rejoins (and the room is placed again if its node died).

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;

use super::record::NodeRecord;
use super::ClusterError;
use crate::phoenix::channel::ChannelEnded;
use crate::phoenix::frame::{self, HEARTBEAT, PHOENIX_TOPIC};
use crate::phoenix::transport::{Outbox, Queued, WsOut};

/// Header a relaying node adds to its upgrade request: the receiving node must own the room
/// (relays are one hop; a forged header can only make a join fail).
pub const RELAYED_BY_HEADER: &str = "x-lamina-relayed-by";

/// Longest wait for the owner's WebSocket to open.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// How often the relay's own WebSocket sends a heartbeat (the owner's idle timeout is longer).
pub const RELAY_HEARTBEAT: Duration = Duration::from_secs(5);

/// How long the owner may send nothing (not even a heartbeat reply) before it counts as gone.
pub const OWNER_SILENCE: Duration = Duration::from_secs(12);

/// Longest wait for one frame to be written toward the owner.
const SEND_TIMEOUT: Duration = Duration::from_secs(5);

/// Client frames that may wait for the owner; beyond it the owner counts as not reading.
const UP_QUEUE: usize = 256;

/// After the client's `phx_leave` is passed on, how long to wait for the owner's answer.
const LEAVE_WAIT: Duration = Duration::from_secs(1);

/// Largest frame relayed from the owner (its own limits apply to what it sends).
const MAX_RELAYED_FRAME: usize = 1 << 20;

enum Up {
    Text(String),
    /// The client left (its `phx_leave` was the last text) or its socket ended.
    Leave,
}

/// One relayed channel.
#[derive(Debug)]
pub struct RemoteChannel {
    topic: String,
    join_ref: Option<String>,
    node: String,
    up: mpsc::Sender<Up>,
    task: JoinHandle<()>,
}

/// What the relay needs from the client's socket.
pub struct RelayTarget {
    /// The client's outbound queue.
    pub outbox: Outbox,
    /// Told when the owner's side ends (with `node_lost`).
    pub ended: mpsc::Sender<ChannelEnded>,
}

impl RemoteChannel {
    /// Opens the owner's socket and sends the client's `phx_join` text (`join`) through it.
    /// `origin` is the client's `Origin` header (the owner checks it like its own clients');
    /// `me` marks the request as relayed.
    pub async fn open(
        owner: &NodeRecord,
        me: &str,
        origin: Option<&str>,
        topic: &str,
        join_ref: Option<String>,
        join: String,
        target: RelayTarget,
    ) -> Result<Self, ClusterError> {
        let unreachable = |error: String| ClusterError::OwnerUnreachable {
            node: owner.id.clone(),
            error,
        };
        let url = format!(
            "{}/socket/websocket?vsn=2.0.0",
            owner.url.trim_end_matches('/')
        );
        let mut request = url
            .as_str()
            .into_client_request()
            .map_err(|e| unreachable(format!("bad node URL {url:?}: {e}")))?;
        let headers = request.headers_mut();
        if let Ok(v) = HeaderValue::from_str(me) {
            headers.insert(RELAYED_BY_HEADER, v);
        }
        if let Some(Ok(v)) = origin.map(HeaderValue::from_str) {
            headers.insert("origin", v);
        }
        let (ws, _) =
            tokio::time::timeout(CONNECT_TIMEOUT, tokio_tungstenite::connect_async(request))
                .await
                .map_err(|_| {
                    unreachable(format!(
                        "no WebSocket within {} s",
                        CONNECT_TIMEOUT.as_secs()
                    ))
                })?
                .map_err(|e| unreachable(e.to_string()))?;
        let (up, rx) = mpsc::channel(UP_QUEUE);
        let _ = up.try_send(Up::Text(join));
        let task = tokio::spawn(run(
            ws,
            rx,
            target,
            ChannelEnded {
                topic: topic.to_owned(),
                join_ref: join_ref.clone(),
                node_lost: true,
            },
        ));
        tracing::debug!(node = %owner.id, %topic, "channel relayed to the room's node");
        Ok(Self {
            topic: topic.to_owned(),
            join_ref,
            node: owner.id.clone(),
            up,
            task,
        })
    }

    /// The channel's topic.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// The join ref of this channel instance.
    pub fn join_ref(&self) -> Option<&str> {
        self.join_ref.as_deref()
    }

    /// The node the channel is relayed to.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// Passes one client frame (its exact text) to the owner. False when the queue toward the
    /// owner is full (it does not read): the caller closes the client's socket as for a lost
    /// node.
    #[must_use]
    pub fn forward(&self, text: &str) -> bool {
        match self.up.try_send(Up::Text(text.to_owned())) {
            Err(mpsc::error::TrySendError::Full(_)) => {
                tracing::warn!(node = %self.node, topic = %self.topic, "the room's node does not read");
                self.task.abort();
                false
            }
            _ => true,
        }
    }

    /// Passes the client's `phx_leave` and ends the relay once the owner answered; without
    /// one (the client's socket ended), closes the relay's WebSocket at once.
    pub fn leave(self, leave: Option<&str>) {
        match leave {
            Some(text) => {
                let _ = self.forward(text);
                let _ = self.up.try_send(Up::Leave);
                // The task ends by itself (bounded by LEAVE_WAIT).
            }
            // Dropping the sender ends the task, which closes the WebSocket.
            None => drop(self.up),
        }
    }
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn run(mut ws: Ws, mut rx: mpsc::Receiver<Up>, target: RelayTarget, lost: ChannelEnded) {
    let mut heartbeat = tokio::time::interval_at(
        tokio::time::Instant::now() + RELAY_HEARTBEAT,
        RELAY_HEARTBEAT,
    );
    let mut beats = 0u64;
    let mut heard = tokio::time::Instant::now();
    let mut leaving: Option<tokio::time::Instant> = None;
    let end = loop {
        tokio::select! {
            up = rx.recv(), if leaving.is_none() => match up {
                Some(Up::Text(text)) => {
                    if !send(&mut ws, text).await {
                        break End::OwnerGone;
                    }
                }
                Some(Up::Leave) => leaving = Some(tokio::time::Instant::now() + LEAVE_WAIT),
                None => break End::ClientGone,
            },
            msg = ws.next() => match msg {
                Some(Ok(Message::Text(text))) => {
                    heard = tokio::time::Instant::now();
                    let decoded = frame::decode(&text, MAX_RELAYED_FRAME).ok();
                    if decoded.as_ref().is_some_and(|f| f.topic == PHOENIX_TOPIC) {
                        continue; // a reply to the relay's own heartbeat
                    }
                    let closes = decoded.as_ref().is_some_and(|f| closes_channel(f, lost.join_ref.as_deref()));
                    if target.outbox.send_raw(WsOut::Text(text)) == Queued::No {
                        break End::ClientGone; // the client's socket is closing itself
                    }
                    if closes {
                        break if leaving.is_some() { End::ClientGone } else { End::OwnerClosed };
                    }
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => {
                    break if leaving.is_some() { End::ClientGone } else { End::OwnerGone };
                }
                Some(Ok(_)) => heard = tokio::time::Instant::now(),
            },
            _ = heartbeat.tick() => {
                if heard.elapsed() > OWNER_SILENCE {
                    tracing::warn!(topic = %lost.topic, "the room's node has been silent for {OWNER_SILENCE:?}");
                    break End::OwnerGone;
                }
                beats += 1;
                let beat = format!("[null,\"relay-{beats}\",\"{PHOENIX_TOPIC}\",\"{HEARTBEAT}\",{{}}]");
                if !send(&mut ws, beat).await {
                    break End::OwnerGone;
                }
            }
            _ = tokio::time::sleep_until(leaving.unwrap_or_else(tokio::time::Instant::now)), if leaving.is_some() => break End::ClientGone,
        }
    };
    match end {
        End::OwnerGone => {
            tracing::info!(topic = %lost.topic, "the room's node went away: closing the client's socket");
            let _ = target.ended.send(lost).await;
        }
        End::OwnerClosed => {
            let _ = target
                .ended
                .send(ChannelEnded {
                    node_lost: false,
                    ..lost
                })
                .await;
        }
        End::ClientGone => {}
    }
    let _ = tokio::time::timeout(Duration::from_secs(1), ws.close(None)).await;
}

/// How a relay ended.
enum End {
    /// The owner's side ended, went silent or stopped reading.
    OwnerGone,
    /// The owner closed the channel (the client was told by the frame passed on).
    OwnerClosed,
    /// The client left or its socket ended.
    ClientGone,
}

/// Writes one frame toward the owner, bounded by [`SEND_TIMEOUT`]; false when it failed.
async fn send(ws: &mut Ws, text: String) -> bool {
    matches!(
        tokio::time::timeout(SEND_TIMEOUT, ws.send(Message::Text(text))).await,
        Ok(Ok(()))
    )
}

/// Whether an owner frame ends the channel: `phx_close`, `phx_error`, or an error reply to
/// the join.
fn closes_channel(f: &frame::Frame, join_ref: Option<&str>) -> bool {
    match f.event.as_str() {
        "phx_close" | "phx_error" => true,
        "phx_reply" => {
            f.reference.as_deref().is_some()
                && f.reference.as_deref() == join_ref
                && f.payload.get("status").and_then(|v| v.as_str()) == Some("error")
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(text: &str) -> frame::Frame {
        frame::decode(text, 4096).unwrap()
    }

    #[test]
    fn the_owner_ends_the_channel_by_close_error_or_a_refused_join() {
        let join = Some("3");
        assert!(closes_channel(
            &f(r#"["3",null,"room:r","phx_close",{}]"#),
            join
        ));
        assert!(closes_channel(
            &f(r#"["3",null,"room:r","phx_error",{}]"#),
            join
        ));
        let refused = r#"["3","3","room:r","phx_reply",{"status":"error","response":{"reason":"room full"}}]"#;
        assert!(closes_channel(&f(refused), join));
        let joined = r#"["3","3","room:r","phx_reply",{"status":"ok","response":{}}]"#;
        assert!(!closes_channel(&f(joined), join));
        // An error reply to another push (a refused media event) does not end the channel.
        let other =
            r#"["3","7","room:r","phx_reply",{"status":"error","response":{"reason":"x"}}]"#;
        assert!(!closes_channel(&f(other), join));
        assert!(!closes_channel(
            &f(r#"["3",null,"room:r","mediaEvent",{"data":"{}"}]"#),
            join
        ));
    }
}
