//! One Phoenix socket: a reader loop (this task) and a writer task joined by a bounded queue.
//!
//! The reader decodes frames, applies the rate limit, answers heartbeats and routes topics to
//! [`RoomChannel`]s. It closes the WebSocket when:
//! - a binary message arrives (1003),
//! - a message exceeds `max_frame_bytes` (1009),
//! - nothing arrives for `idle_timeout_secs` (1001, so clients reconnect),
//! - the client keeps flooding beyond ten times the rate limit (1008),
//! - more than [`MAX_MALFORMED_FRAMES`] frames were not Phoenix frames (1002),
//! - the outbound queue is full because the client does not read (1008),
//! - the server stops (1001 "server shutting down", once its channels have been closed by
//!   their rooms or after [`SHUTDOWN_CHANNELS_TIMEOUT`]),
//! - a channel relayed to the room's node ([`RemoteChannel`]) lost that node (1001
//!   [`NODE_LOST_REASON`]: the client rejoins and the room is placed again).
//!
//! When the socket ends, every channel leaves its room. Each end is counted in the
//! `lamina_ws_disconnects_total` metric by reason.
//!
//! With room access tokens (`--jwt-secret`), a `phx_join` whose payload lacks a valid token for
//! the room is refused with `{"reason": "unauthorized"}`; the token's name is then enforced as
//! the peer's display name.
//!
//! In a cluster ([`Cluster`]), a join first asks where the room is placed: here, or on another
//! node, to which the channel is relayed ([`RemoteChannel`]).

use std::collections::HashMap;
use std::fmt::Display;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{Sink, Stream, StreamExt};
use serde_json::json;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::channel::{is_room_topic, room_id, ChannelEnded, ChannelError, RoomChannel};
use super::frame::{
    self, Frame, FrameError, ReplyStatus, HEARTBEAT, PHOENIX_TOPIC, PHX_JOIN, PHX_LEAVE,
};
use super::rate::{Decision, RateLimiter};
use super::transport::{spawn_writer, CloseFrame, Outbox, Queued, WsIn, WsOut, WsReadError};
use crate::auth::RoomTokens;
use crate::cluster::relay::{RelayTarget, RemoteChannel};
use crate::cluster::{Cluster, ClusterError, Placement};
use crate::config::Config;
use crate::metrics::{self, DisconnectReason as Reason, JoinRefusal};
use crate::room::{JoinError, Rooms};

/// Most channels one socket may join (Phoenix's default).
pub const MAX_CHANNELS: usize = 100;

/// Malformed frames a socket may send before it is closed. Those with a readable ref get an
/// error reply; the others cannot be answered, so a client sending only garbage would otherwise
/// never learn anything.
pub const MAX_MALFORMED_FRAMES: usize = 16;

/// How long to keep reading after sending a close frame, waiting for the client's close.
const CLOSE_DRAIN_TIMEOUT: Duration = Duration::from_secs(2);

/// The same wait when the server stops (browsers answer within a round trip).
const SHUTDOWN_DRAIN_TIMEOUT: Duration = Duration::from_millis(300);

/// How long a stopping server lets a socket wait for its rooms to close its channels (so the
/// clients see the rooms' last events before the close frame).
pub const SHUTDOWN_CHANNELS_TIMEOUT: Duration = Duration::from_secs(1);

/// Reason of the close frame sent when the server stops.
pub const SHUTDOWN_REASON: &str = "server shutting down";

/// Reason of the close frame sent when a relayed channel's node went away.
pub const NODE_LOST_REASON: &str = "the room's node went away";

/// What a socket needs from the server.
#[derive(Clone)]
pub struct SocketContext {
    /// Limits (frame size, rate, queue sizes, idle timeout).
    pub config: Arc<Config>,
    /// Where room channels join.
    pub rooms: Rooms,
    /// Verifier of room access tokens; `None` when joins need no token.
    pub tokens: Option<Arc<RoomTokens>>,
    /// Cancelled when the server stops: the socket closes with 1001.
    pub shutdown: CancellationToken,
    /// This node's cluster membership: `None` for a single node; an empty cell while a
    /// clustered node is still registering.
    pub cluster: Option<Arc<std::sync::OnceLock<Cluster>>>,
    /// The upgrade request's `Origin` header (passed on when a channel is relayed).
    pub origin: Option<String>,
    /// The node that relays this socket, when it is one (its joins must be owned here).
    pub relayed_by: Option<String>,
}

/// Serves one Phoenix socket over a WebSocket split into `stream` and `sink`; returns when the
/// connection is over and every channel has left its room.
pub async fn run<St, Si>(mut stream: St, sink: Si, ctx: SocketContext)
where
    St: Stream<Item = Result<WsIn, WsReadError>> + Unpin + Send,
    Si: Sink<WsOut> + Unpin + Send + 'static,
    Si::Error: Display,
{
    let (outbox, writer) = spawn_writer(sink, ctx.config.outbound_queue);
    let (ended_tx, mut ended_rx) = mpsc::channel(MAX_CHANNELS + 1);
    let idle = ctx.config.idle_timeout();
    let shutdown = ctx.shutdown.clone();
    let mut stopping: Option<Instant> = None;
    let mut socket = Socket {
        limiter: RateLimiter::new(ctx.config.max_events_per_sec, std::time::Instant::now()),
        ctx,
        outbox: outbox.clone(),
        channels: HashMap::new(),
        ended_tx,
        malformed: 0,
    };

    let mut deadline = Instant::now() + idle;
    let end = loop {
        let msg = tokio::select! {
            biased;
            _ = outbox.overflowed() => break End::Overflow,
            Some(ended) = ended_rx.recv() => {
                if socket.channel_ended(ended) {
                    break End::Close(
                        CloseFrame::new(CloseFrame::GOING_AWAY, NODE_LOST_REASON),
                        Reason::NodeLost,
                    );
                }
                if stopping.is_some() && socket.channels.is_empty() {
                    break shutdown_close();
                }
                continue;
            }
            _ = shutdown.cancelled(), if stopping.is_none() => {
                if socket.channels.is_empty() {
                    break shutdown_close();
                }
                // The rooms are closing the channels: let their last events through first.
                stopping = Some(Instant::now() + SHUTDOWN_CHANNELS_TIMEOUT);
                continue;
            }
            _ = tokio::time::sleep_until(stopping.unwrap_or(deadline)), if stopping.is_some() => {
                break shutdown_close();
            }
            _ = tokio::time::sleep_until(deadline) => {
                break End::Close(
                    CloseFrame::new(CloseFrame::GOING_AWAY, "idle timeout"),
                    Reason::IdleTimeout,
                );
            }
            msg = stream.next() => msg,
        };
        deadline = Instant::now() + idle;
        match msg {
            None | Some(Ok(WsIn::Close)) => break End::Gone(Reason::ClientClosed),
            Some(Err(WsReadError::TooBig)) => break End::Close(too_big(), Reason::TooBig),
            Some(Err(WsReadError::Other(e))) => {
                tracing::debug!(error = %e, "websocket read failed");
                break End::Gone(Reason::TransportError);
            }
            Some(Ok(WsIn::Binary(len))) => {
                tracing::debug!(len, "binary frame refused");
                break End::Close(
                    CloseFrame::new(
                        CloseFrame::UNSUPPORTED_DATA,
                        "binary frames are not supported",
                    ),
                    Reason::BinaryFrame,
                );
            }
            Some(Ok(WsIn::Control)) => {}
            Some(Ok(WsIn::Text(text))) => {
                if let Some((close, reason)) = socket.on_text(text).await {
                    break End::Close(close, reason);
                }
            }
        }
    };

    match &end {
        End::Overflow => tracing::info!("client does not read: outbound queue full, closing"),
        End::Close(c, _) => tracing::debug!(code = c.code, reason = %c.reason, "closing socket"),
        End::Gone(reason) => tracing::debug!(reason = reason.as_str(), "socket closed"),
    }
    metrics::socket_closed(match &end {
        End::Overflow => Reason::QueueFull,
        End::Close(_, reason) | End::Gone(reason) => *reason,
    });
    let close = match end {
        End::Overflow => {
            // The queue is full: skip it and close at once.
            let _ = writer.abort_with.send(CloseFrame::new(
                CloseFrame::POLICY_VIOLATION,
                "outbound queue full: client is not reading",
            ));
            None
        }
        End::Close(close, reason) => {
            if outbox.send_raw(WsOut::Close(close.clone())) == Queued::No {
                let _ = writer.abort_with.send(close);
            }
            // A stopping server waits less for the answer to its close frame.
            Some(if reason == Reason::ServerShutdown {
                SHUTDOWN_DRAIN_TIMEOUT
            } else {
                CLOSE_DRAIN_TIMEOUT
            })
        }
        End::Gone(_) => None,
    };
    socket.leave_all().await;
    drop(socket);
    drop(outbox);
    if let Some(drain) = close {
        // Read until the client answers the close frame, so the connection ends cleanly and
        // the close frame is not lost to a TCP reset.
        let _ = tokio::time::timeout(drain, async {
            while let Some(Ok(msg)) = stream.next().await {
                if msg == WsIn::Close {
                    break;
                }
            }
        })
        .await;
    }
    drop(stream);
    let mut task = writer.task;
    if tokio::time::timeout(CLOSE_DRAIN_TIMEOUT, &mut task)
        .await
        .is_err()
    {
        task.abort();
    }
}

enum End {
    /// Close with this frame after what is already queued.
    Close(CloseFrame, Reason),
    /// The client does not read.
    Overflow,
    /// The client closed or the connection failed.
    Gone(Reason),
}

fn too_big() -> CloseFrame {
    CloseFrame::new(CloseFrame::TOO_BIG, "message too big")
}

fn shutdown_close() -> End {
    End::Close(
        CloseFrame::new(CloseFrame::GOING_AWAY, SHUTDOWN_REASON),
        Reason::ServerShutdown,
    )
}

/// Reader-side state of one socket.
struct Socket {
    ctx: SocketContext,
    outbox: Outbox,
    channels: HashMap<String, Joined>,
    ended_tx: mpsc::Sender<ChannelEnded>,
    limiter: RateLimiter,
    /// Malformed frames received so far.
    malformed: usize,
}

impl Socket {
    /// Handles one text message; `Some` closes the socket.
    async fn on_text(&mut self, text: String) -> Option<(CloseFrame, Reason)> {
        let decoded = frame::decode(&text, self.ctx.config.max_frame_bytes);
        if let Err(FrameError::TooLarge { .. }) = decoded {
            return Some((too_big(), Reason::TooBig));
        }
        match self.limiter.check(std::time::Instant::now()) {
            Decision::Allow => {}
            Decision::Limit => {
                self.reply_to_invalid(&text, decoded.as_ref().ok(), "rate_limited");
                return None;
            }
            Decision::Disconnect => {
                return Some((
                    CloseFrame::new(CloseFrame::POLICY_VIOLATION, "rate limit exceeded"),
                    Reason::RateLimited,
                ))
            }
        }
        match decoded {
            Ok(frame) => {
                if let Some(close) = self.route(frame, text).await {
                    return Some(close);
                }
            }
            Err(e) => {
                tracing::debug!(error = %e, "malformed frame");
                self.reply_to_invalid(&text, None, "malformed frame");
                self.malformed += 1;
                if self.malformed > MAX_MALFORMED_FRAMES {
                    return Some((
                        CloseFrame::new(CloseFrame::PROTOCOL_ERROR, "too many malformed frames"),
                        Reason::Malformed,
                    ));
                }
            }
        }
        None
    }

    /// Sends an error reply to a frame that is refused before routing, if it has a ref.
    fn reply_to_invalid(&self, text: &str, decoded: Option<&Frame>, reason: &str) {
        let reply = match decoded {
            Some(f) => Frame::error_reply(f, reason),
            None => match frame::recover(text) {
                Some(r) => Frame::reply(
                    r.join_ref,
                    Some(r.reference),
                    r.topic.unwrap_or_else(|| PHOENIX_TOPIC.to_owned()),
                    ReplyStatus::Error,
                    frame::reason(reason),
                ),
                None => {
                    tracing::debug!(reason, "no ref to reply to; frame ignored");
                    return;
                }
            },
        };
        self.send(&reply);
    }

    fn send(&self, frame: &Frame) {
        self.outbox.send(frame);
    }

    /// Routes a decoded frame; `text` is the frame as received (relayed as is). `Some` closes
    /// the socket (a relayed channel's node does not read).
    async fn route(&mut self, frame: Frame, text: String) -> Option<(CloseFrame, Reason)> {
        if frame.topic == PHOENIX_TOPIC && frame.event == HEARTBEAT {
            self.send(&Frame::ok_reply(&frame, json!({})));
        } else if frame.event == PHX_JOIN && is_room_topic(&frame.topic) {
            self.join(frame, text).await;
        } else if let Some(Joined::Remote(channel)) = self.channels.get(&frame.topic) {
            if frame.event == PHX_LEAVE {
                if let Some(Joined::Remote(channel)) = self.channels.remove(&frame.topic) {
                    channel.leave(Some(&text));
                }
            } else if !channel.forward(&text) {
                return Some((
                    CloseFrame::new(CloseFrame::GOING_AWAY, NODE_LOST_REASON),
                    Reason::NodeLost,
                ));
            }
        } else if let Some(Joined::Local(channel)) = self.channels.get(&frame.topic) {
            if frame.event == PHX_LEAVE {
                self.leave(frame).await;
            } else {
                let reply = channel.handle_in(&frame).await;
                self.send(&reply);
            }
        } else {
            tracing::debug!(topic = %frame.topic, event = %frame.event, "unmatched topic");
            self.send(&Frame::unmatched_topic(&frame));
        }
        None
    }

    async fn join(&mut self, frame: Frame, text: String) {
        let join_ref = frame.join_ref.clone().or_else(|| frame.reference.clone());
        let reply = |status, response| {
            Frame::reply(
                join_ref.clone(),
                frame.reference.clone(),
                frame.topic.clone(),
                status,
                response,
            )
        };
        let display_name = match self.authorize(&frame) {
            Ok(name) => name,
            Err(()) => {
                metrics::join_refused(JoinRefusal::Unauthorized);
                self.send(&reply(ReplyStatus::Error, frame::reason("unauthorized")));
                return;
            }
        };
        if let Some(old) = self.channels.remove(&frame.topic) {
            tracing::debug!(topic = %frame.topic, "duplicate join: closing the old channel");
            let close = Frame::close(old.join_ref().map(str::to_owned), &frame.topic);
            old.leave().await;
            self.send(&close);
        } else if self.channels.len() >= MAX_CHANNELS {
            metrics::join_refused(JoinRefusal::TooManyChannels);
            self.send(&reply(
                ReplyStatus::Error,
                frame::reason("too many channels joined"),
            ));
            return;
        }
        match self.place(&frame.topic).await {
            Ok(Placement::Local) => {}
            Ok(Placement::Remote(owner)) => {
                let me = self
                    .cluster()
                    .map(|c| c.node_id().to_owned())
                    .unwrap_or_default();
                let target = RelayTarget {
                    outbox: self.outbox.clone(),
                    ended: self.ended_tx.clone(),
                };
                let opened = RemoteChannel::open(
                    &owner,
                    &me,
                    self.ctx.origin.as_deref(),
                    &frame.topic,
                    join_ref.clone(),
                    text,
                    target,
                )
                .await;
                match opened {
                    Ok(channel) => {
                        self.channels
                            .insert(frame.topic.clone(), Joined::Remote(channel));
                    }
                    Err(e) => self.refuse_placement(
                        &frame,
                        reply(ReplyStatus::Error, frame::reason(&e.to_string())),
                        &e,
                    ),
                }
                return;
            }
            Err(e) => {
                self.refuse_placement(
                    &frame,
                    reply(ReplyStatus::Error, frame::reason(&e.to_string())),
                    &e,
                );
                return;
            }
        }
        let queue = self.ctx.config.outbound_queue;
        let joined = RoomChannel::join(
            &frame.topic,
            join_ref.clone(),
            &self.ctx.rooms,
            queue,
            display_name,
        )
        .await;
        match joined {
            Ok(mut channel) => {
                self.send(&reply(ReplyStatus::Ok, json!({})));
                channel.start_relay(self.outbox.clone(), self.ended_tx.clone());
                self.channels
                    .insert(frame.topic.clone(), Joined::Local(channel));
            }
            Err(e) => {
                tracing::debug!(topic = %frame.topic, error = %e, "join refused");
                metrics::join_refused(match &e {
                    ChannelError::InvalidRoomId => JoinRefusal::InvalidRoom,
                    ChannelError::Join(JoinError::RoomFull) => JoinRefusal::RoomFull,
                    ChannelError::Join(JoinError::TooManyRooms) => JoinRefusal::TooManyRooms,
                    ChannelError::Join(_) => JoinRefusal::Unavailable,
                });
                self.send(&reply(ReplyStatus::Error, frame::reason(&e.to_string())));
            }
        }
    }

    /// Checks the join's access token when tokens are required; returns the display name to
    /// enforce. The token itself is never logged.
    fn authorize(&self, frame: &Frame) -> Result<Option<String>, ()> {
        let Some(tokens) = &self.ctx.tokens else {
            return Ok(None);
        };
        let verified = room_id(&frame.topic)
            .map_err(|_| crate::auth::AuthError::WrongRoom)
            .and_then(|room| tokens.verify_join(&frame.payload, &room));
        match verified {
            Ok(claims) => Ok(Some(claims.name)),
            Err(e) => {
                tracing::info!(topic = %frame.topic, reason = %e, "join refused: unauthorized");
                Err(())
            }
        }
    }

    /// This node's cluster membership, once registered.
    fn cluster(&self) -> Option<&Cluster> {
        self.ctx.cluster.as_ref().and_then(|cell| cell.get())
    }

    /// Where a join of `topic` goes: always here on a single node.
    async fn place(&self, topic: &str) -> Result<Placement, ClusterError> {
        let Some(cell) = &self.ctx.cluster else {
            return Ok(Placement::Local);
        };
        let Some(cluster) = cell.get() else {
            return Err(ClusterError::Unavailable(
                "this node is still registering".into(),
            ));
        };
        let Ok(room) = room_id(topic) else {
            // The local join refuses it with the usual reason.
            return Ok(Placement::Local);
        };
        cluster.place(&room, self.ctx.relayed_by.is_some()).await
    }

    fn refuse_placement(&self, frame: &Frame, reply: Frame, e: &ClusterError) {
        tracing::info!(topic = %frame.topic, error = %e, "join refused by the cluster");
        metrics::join_refused(JoinRefusal::Unavailable);
        self.send(&reply);
    }

    async fn leave(&mut self, frame: Frame) {
        let Some(Joined::Local(channel)) = self.channels.get(&frame.topic) else {
            return;
        };
        let ok = Frame::ok_reply(&frame, json!({}));
        if frame.join_ref.is_some() && frame.join_ref.as_deref() != channel.join_ref() {
            // A leave from an older instance of this channel: acknowledge, keep the current one.
            self.send(&ok);
            return;
        }
        let Some(Joined::Local(channel)) = self.channels.remove(&frame.topic) else {
            return;
        };
        let close = Frame::close(channel.join_ref().map(str::to_owned), channel.topic());
        channel.leave().await;
        self.send(&ok);
        self.send(&close);
    }

    /// The room closed a channel (or stopped, or its node went away); forget it if it is still
    /// the current instance. True when the socket must close because the node was lost.
    fn channel_ended(&mut self, ended: ChannelEnded) -> bool {
        let current = self
            .channels
            .get(&ended.topic)
            .is_some_and(|c| c.join_ref() == ended.join_ref.as_deref());
        if current {
            self.channels.remove(&ended.topic);
        }
        current && ended.node_lost
    }

    async fn leave_all(&mut self) {
        for (_, channel) in self.channels.drain() {
            channel.leave().await;
        }
    }
}

/// A joined channel: the room runs here, or on the node it is relayed to.
enum Joined {
    Local(RoomChannel),
    Remote(RemoteChannel),
}

impl Joined {
    fn join_ref(&self) -> Option<&str> {
        match self {
            Joined::Local(c) => c.join_ref(),
            Joined::Remote(c) => c.join_ref(),
        }
    }

    async fn leave(self) {
        match self {
            Joined::Local(c) => c.leave().await,
            Joined::Remote(c) => c.leave(None),
        }
    }
}
