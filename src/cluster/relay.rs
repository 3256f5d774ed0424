//! [`RemoteChannel`]: a room channel whose room runs on another node, relayed over one
//! WebSocket from this node to the owner's Phoenix socket.
//!
//! Signalling only: the client's frames of that topic go to the owner as the exact text the
//! client sent, and the owner's frames come back as the exact text the owner sent, so the
//! protocol is the owner's byte for byte. The client's heartbeats stay with the socket on this
//! node; the relay keeps its own WebSocket alive with heartbeats of its own, whose replies it
//! drops. The two sides end together: the client's leave or socket end closes the relay's
//! WebSocket (the owner then removes the peer), and the owner's side ending (node gone, socket
//! closed) is reported as a lost node, on which the client's socket is closed so the client
//! rejoins (and the room is placed again if its node died).

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
pub const RELAY_HEARTBEAT: Duration = Duration::from_secs(20);

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
    up: mpsc::UnboundedSender<Up>,
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
        let (up, rx) = mpsc::unbounded_channel();
        let _ = up.send(Up::Text(join));
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

    /// Passes one client frame (its exact text) to the owner.
    pub fn forward(&self, text: &str) {
        let _ = self.up.send(Up::Text(text.to_owned()));
    }

    /// Passes the client's `phx_leave` (if any) and ends the relay once the owner answered.
    pub fn leave(self, leave: Option<&str>) {
        if let Some(text) = leave {
            self.forward(text);
        }
        let _ = self.up.send(Up::Leave);
        // The task ends by itself (bounded by LEAVE_WAIT).
        drop(self.task);
    }
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn run(
    mut ws: Ws,
    mut rx: mpsc::UnboundedReceiver<Up>,
    target: RelayTarget,
    lost: ChannelEnded,
) {
    let mut heartbeat = tokio::time::interval_at(
        tokio::time::Instant::now() + RELAY_HEARTBEAT,
        RELAY_HEARTBEAT,
    );
    let mut beats = 0u64;
    let mut leaving: Option<tokio::time::Instant> = None;
    let owner_gone = loop {
        tokio::select! {
            up = rx.recv(), if leaving.is_none() => match up {
                Some(Up::Text(text)) => {
                    if ws.send(Message::Text(text)).await.is_err() {
                        break true;
                    }
                }
                Some(Up::Leave) => leaving = Some(tokio::time::Instant::now() + LEAVE_WAIT),
                None => break false,
            },
            msg = ws.next() => match msg {
                Some(Ok(Message::Text(text))) => {
                    let decoded = frame::decode(&text, MAX_RELAYED_FRAME).ok();
                    let topic = decoded.as_ref().map(|f| f.topic.as_str());
                    if topic == Some(PHOENIX_TOPIC) {
                        continue; // a reply to the relay's own heartbeat
                    }
                    let closes = decoded.as_ref().is_some_and(|f| f.event == "phx_close");
                    if target.outbox.send_raw(WsOut::Text(text)) == Queued::No {
                        break false; // the client's socket is closing itself
                    }
                    if closes && leaving.is_some() {
                        break false;
                    }
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break leaving.is_none(),
                Some(Ok(_)) => {}
            },
            _ = heartbeat.tick() => {
                beats += 1;
                let beat = format!("[null,\"relay-{beats}\",\"{PHOENIX_TOPIC}\",\"{HEARTBEAT}\",{{}}]");
                if ws.send(Message::Text(beat)).await.is_err() {
                    break leaving.is_none();
                }
            }
            _ = tokio::time::sleep_until(leaving.unwrap_or_else(tokio::time::Instant::now)), if leaving.is_some() => break false,
        }
    };
    if owner_gone {
        tracing::info!(topic = %lost.topic, "the room's node went away: closing the client's socket");
        let _ = target.ended.send(lost).await;
    }
    let _ = tokio::time::timeout(Duration::from_secs(1), ws.close(None)).await;
}
