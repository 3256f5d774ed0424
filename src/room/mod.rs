//! Rooms: one actor (tokio task) per videoroom, reached through a [`RoomHandle`].
//!
//! ```text
//!  channel (socket task)            room actor                       RoomPipeline (media graph)
//!  ── Join{peer, outbound} ───────▶ RoomCore::join
//!  ── MediaEvent{peer, data} ─────▶ decode → RoomCore::client_event ─▶ MediaCommand (offer, candidate…)
//!  ◀── PeerOutbound::MediaEvent ─── Effect::Push                ◀─── MediaEvent (answer, ice…)
//!  ── Chat{peer, text, reply} ─────▶ RoomCore::chat ─▶ reply ok/error to the sender
//!  ◀── PeerOutbound::Chat ───────── Effect::Chat (every connected peer)
//!  ── Leave{peer} ────────────────▶ RoomCore::leave → tracksRemoved, endpointRemoved to others
//! ```

pub mod actor;
pub mod media;
pub mod pipeline_backend;
pub mod registry;
pub mod stats;
pub mod tools;

/// The room's sans-IO decisions (the `lamina-core` crate).
pub use lamina_core as core;
pub use lamina_core::{peer, track, ChatError, ChatMessage, JoinError};

use tokio::sync::{mpsc, oneshot, watch};

use crate::PeerId;

pub use registry::Rooms;

/// Identifier of a room: the part after `room:` in the channel topic.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RoomId(pub String);

impl std::fmt::Display for RoomId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a room sends back to one peer's channel.
#[derive(Debug, Clone, PartialEq)]
pub enum PeerOutbound {
    /// A media event: the JSON text to put in `{"data": …}` of a `"mediaEvent"` push.
    MediaEvent(String),
    /// A chat message of the room: the channel pushes it as a `"chat"` event.
    Chat(ChatMessage),
    /// The room removed this peer (kicked, room closed or failed); the channel sends
    /// `phx_close` (or an error first when `error` is set) and stops relaying.
    Closed {
        /// Why, when it is an error the client should see.
        error: Option<String>,
    },
}

/// Sender half a channel gives the room for its peer. Bounded: a peer whose queue is full is
/// disconnected by the room instead of growing memory.
pub type PeerSender = mpsc::Sender<PeerOutbound>;

/// Messages a room actor accepts.
#[derive(Debug)]
pub enum RoomCommand {
    /// A channel joined: add the peer (it becomes visible to others on `connect`).
    Join {
        /// Server-chosen endpoint id.
        peer: PeerId,
        /// Where the room sends this peer's messages.
        outbound: PeerSender,
        /// Display name the room enforces in the peer's endpoint metadata (from its access
        /// token), if any.
        display_name: Option<String>,
        /// Join outcome.
        reply: oneshot::Sender<Result<(), JoinError>>,
    },
    /// A `"mediaEvent"` push from the peer's channel: the raw `data` string.
    MediaEvent {
        /// Sender.
        peer: PeerId,
        /// The media event JSON text, not yet decoded.
        data: String,
    },
    /// A `"chat"` push from the peer's channel (its shape checked, its text not yet).
    Chat {
        /// Sender.
        peer: PeerId,
        /// The message.
        text: String,
        /// Accepted (delivered to every connected peer) or why not.
        reply: oneshot::Sender<Result<(), ChatError>>,
    },
    /// The peer's channel left or its socket closed.
    Leave {
        /// Who left.
        peer: PeerId,
    },
    /// Debug snapshot of the room (peers, tracks, subscriptions) as JSON.
    Describe {
        /// Reply channel.
        reply: oneshot::Sender<serde_json::Value>,
    },
    /// The room pipeline's graph in Graphviz dot.
    Dot {
        /// Reply channel; `None` if the room has no pipeline.
        reply: oneshot::Sender<Option<String>>,
    },
    /// Counters for metrics.
    Stats {
        /// Reply channel.
        reply: oneshot::Sender<RoomStats>,
    },
    /// An operator tool on the room's media graph (recordings, taps).
    Tool(tools::ToolOp),
    /// Inject a real bus error into the room's media graph (failure-isolation tests; only
    /// reachable through `--debug-endpoints`).
    InjectFault {
        /// A peer's bin or the whole room.
        fault: lamina_pipelines::Fault,
        /// `Err` when the fault could not be injected (unknown peer, no pipeline).
        reply: oneshot::Sender<Result<(), lamina_pipelines::MediaError>>,
    },
    /// Close the room: tell every peer, tear the pipeline down, stop the actor.
    Shutdown,
}

/// A room's counters, for metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoomStats {
    /// Peers (joined channels).
    pub peers: usize,
    /// Published tracks.
    pub tracks: usize,
    /// Packets forwarded by this room's forwarders since it started.
    pub forwarded_packets: u64,
    /// Bytes forwarded by this room's forwarders since it started.
    pub forwarded_bytes: u64,
    /// Loss-repair counters since the room started.
    pub repair: lamina_pipelines::repair::RepairStats,
    /// Per live track: (track, keyframe requests sent to its publisher, requests throttled).
    pub keyframe_requests: Vec<(lamina_pipelines::TrackId, u64, u64)>,
}

/// Clonable handle to a running room actor.
#[derive(Debug, Clone)]
pub struct RoomHandle {
    id: RoomId,
    tx: mpsc::Sender<RoomCommand>,
    done: Option<watch::Receiver<()>>,
}

impl RoomHandle {
    /// Wraps the command sender of a room actor.
    pub fn new(id: RoomId, tx: mpsc::Sender<RoomCommand>) -> Self {
        Self { id, tx, done: None }
    }

    /// Like [`RoomHandle::new`], for an actor that drops the sender of `done` when it has
    /// finished (media engine torn down included): see [`RoomHandle::stopped`].
    pub fn with_done(id: RoomId, tx: mpsc::Sender<RoomCommand>, done: watch::Receiver<()>) -> Self {
        Self {
            id,
            tx,
            done: Some(done),
        }
    }

    /// Completes once the actor has finished: with [`RoomHandle::with_done`] after its media
    /// engine is torn down, otherwise once it stops taking commands.
    pub async fn stopped(&self) {
        match &self.done {
            Some(done) => {
                let mut done = done.clone();
                while done.changed().await.is_ok() {}
            }
            None => self.tx.closed().await,
        }
    }

    /// The room's id.
    pub fn id(&self) -> &RoomId {
        &self.id
    }

    /// True when both handles reach the same actor.
    pub fn same_room(&self, other: &RoomHandle) -> bool {
        self.tx.same_channel(&other.tx)
    }

    /// True once the actor has stopped.
    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }

    /// Sends a command; `false` if the room has stopped.
    pub async fn send(&self, cmd: RoomCommand) -> bool {
        self.tx.send(cmd).await.is_ok()
    }

    /// Adds a peer and waits for the room's verdict.
    pub async fn join(&self, peer: PeerId, outbound: PeerSender) -> Result<(), JoinError> {
        self.join_as(peer, outbound, None).await
    }

    /// Adds a peer whose endpoint `displayName` the room enforces (when `Some`), and waits for
    /// the room's verdict.
    pub async fn join_as(
        &self,
        peer: PeerId,
        outbound: PeerSender,
        display_name: Option<String>,
    ) -> Result<(), JoinError> {
        let (reply, rx) = oneshot::channel();
        if !self
            .send(RoomCommand::Join {
                peer,
                outbound,
                display_name,
                reply,
            })
            .await
        {
            return Err(JoinError::Closing);
        }
        rx.await.unwrap_or(Err(JoinError::Closing))
    }

    /// Relays a media event from the peer's channel.
    pub async fn media_event(&self, peer: PeerId, data: String) -> bool {
        self.send(RoomCommand::MediaEvent { peer, data }).await
    }

    /// Relays a chat message from the peer's channel and waits for the room's verdict
    /// ([`ChatError::RoomClosed`] when the room has stopped).
    pub async fn chat(&self, peer: PeerId, text: String) -> Result<(), ChatError> {
        let (reply, rx) = oneshot::channel();
        if !self.send(RoomCommand::Chat { peer, text, reply }).await {
            return Err(ChatError::RoomClosed);
        }
        rx.await.unwrap_or(Err(ChatError::RoomClosed))
    }

    /// Tells the room the peer is gone.
    pub async fn leave(&self, peer: PeerId) {
        let _ = self.send(RoomCommand::Leave { peer }).await;
    }
}
