//! [`RoomChannel`]: the channel of topic `room:<id>`, a thin relay between one socket and one
//! room, like Membrane's `PeerChannel`.
//!
//! - Join: a fresh peer id (UUID v4), a bounded [`PeerSender`] for the room's messages,
//!   [`Rooms::join`].
//! - In: `"mediaEvent"` `{"data": <string>}` goes to the room unread; `"chat"` `{"text":
//!   <string>}` goes to the room, whose verdict is the reply (ok, or error with a
//!   [`ChatError`] reason); anything else is refused.
//! - Out (relay task): [`PeerOutbound::MediaEvent`] becomes a `"mediaEvent"` push with the
//!   current join ref, [`PeerOutbound::Chat`] a `"chat"` push; [`PeerOutbound::Closed`] becomes
//!   `phx_close`; a room that stopped becomes `phx_error` (the client rejoins, as with a crashed
//!   Phoenix channel).

use std::time::Duration;

use serde_json::{json, Map, Value};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use lamina_protocol::chat::{ChatError, ChatPush, CHAT_EVENT};

use super::frame::Frame;
use super::transport::{Outbox, Queued};
use crate::room::{JoinError, PeerOutbound, RoomHandle, RoomId, Rooms};
use crate::PeerId;

/// Topic prefix of room channels.
pub const TOPIC_PREFIX: &str = "room:";
/// Longest accepted room id, in bytes.
pub const MAX_ROOM_ID_BYTES: usize = 128;
/// Channel event carrying media events, in both directions.
pub const MEDIA_EVENT: &str = "mediaEvent";

/// Why a channel join was refused; the `Display` text is the `reason` of the error reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChannelError {
    /// The room id is empty, too long or contains control characters.
    #[error("invalid room id")]
    InvalidRoomId,
    /// The room refused the peer.
    #[error(transparent)]
    Join(#[from] JoinError),
}

/// A room channel ended on the room's side; sent by the relay task to its socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelEnded {
    /// The channel's topic.
    pub topic: String,
    /// The join ref of the channel instance that ended.
    pub join_ref: Option<String>,
    /// The channel was relayed to another node and that node's side ended: the socket closes
    /// so the client rejoins.
    pub node_lost: bool,
}

/// True for topics this channel serves (`room:` followed by anything).
pub fn is_room_topic(topic: &str) -> bool {
    topic.starts_with(TOPIC_PREFIX)
}

/// The room id of a `room:<id>` topic, if the id is acceptable: non-empty, at most
/// [`MAX_ROOM_ID_BYTES`] bytes, no control characters.
pub fn room_id(topic: &str) -> Result<RoomId, ChannelError> {
    let id = topic
        .strip_prefix(TOPIC_PREFIX)
        .ok_or(ChannelError::InvalidRoomId)?;
    if id.is_empty() || id.len() > MAX_ROOM_ID_BYTES || id.chars().any(char::is_control) {
        return Err(ChannelError::InvalidRoomId);
    }
    Ok(RoomId(id.to_owned()))
}

/// One joined room channel of a socket.
#[derive(Debug)]
pub struct RoomChannel {
    topic: String,
    join_ref: Option<String>,
    peer: PeerId,
    room: RoomHandle,
    inbox: Option<mpsc::Receiver<PeerOutbound>>,
    relay: Option<JoinHandle<()>>,
}

impl RoomChannel {
    /// Joins the room of `topic` as a new peer whose outbound queue holds `queue` messages;
    /// with `display_name` the room enforces it in the peer's endpoint metadata.
    /// Call [`RoomChannel::start_relay`] once the join reply is queued.
    pub async fn join(
        topic: &str,
        join_ref: Option<String>,
        rooms: &Rooms,
        queue: usize,
        display_name: Option<String>,
    ) -> Result<Self, ChannelError> {
        let id = room_id(topic)?;
        let peer = PeerId::new(uuid::Uuid::new_v4().to_string());
        let (tx, rx) = mpsc::channel(queue.max(1));
        let room = rooms.join_as(&id, peer.clone(), tx, display_name).await?;
        tracing::debug!(%peer, room = %id, "peer joined");
        Ok(Self {
            topic: topic.to_owned(),
            join_ref,
            peer,
            room,
            inbox: Some(rx),
            relay: None,
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

    /// The peer id the server gave this channel.
    pub fn peer(&self) -> &PeerId {
        &self.peer
    }

    /// Starts relaying the room's messages to `outbox`; `ended` learns when the room closes
    /// the channel or stops. Does nothing the second time.
    pub fn start_relay(&mut self, outbox: Outbox, ended: mpsc::Sender<ChannelEnded>) {
        if let Some(inbox) = self.inbox.take() {
            self.relay = Some(tokio::spawn(relay(
                inbox,
                outbox,
                self.topic.clone(),
                self.join_ref.clone(),
                self.room.clone(),
                ended,
            )));
        }
    }

    /// Handles a message for this channel other than `phx_join`/`phx_leave`; returns the reply.
    pub async fn handle_in(&self, frame: &Frame) -> Frame {
        if frame.event == CHAT_EVENT {
            return self.chat(frame).await;
        }
        if frame.event != MEDIA_EVENT {
            return Frame::error_reply(frame, "unknown event");
        }
        let Some(Value::String(data)) = frame.payload.get("data") else {
            return Frame::error_reply(frame, "mediaEvent payload must be {\"data\": string}");
        };
        if self.room.media_event(self.peer.clone(), data.clone()).await {
            Frame::ok_reply(frame, json!({}))
        } else {
            Frame::error_reply(frame, "room closed")
        }
    }

    /// A `"chat"` push: its shape is checked here, everything else by the room.
    async fn chat(&self, frame: &Frame) -> Frame {
        let verdict: Result<(), ChatError> = match ChatPush::from_payload(&frame.payload) {
            Ok(push) => self.room.chat(self.peer.clone(), push.text).await,
            Err(e) => Err(e),
        };
        match verdict {
            Ok(()) => Frame::ok_reply(frame, json!({})),
            Err(e) => Frame::error_reply(frame, e.reason()),
        }
    }

    /// Leaves the room: stops relaying and tells the room the peer is gone.
    pub async fn leave(mut self) {
        self.stop_relay();
        self.room.leave(self.peer.clone()).await;
        tracing::debug!(peer = %self.peer, room = %self.room.id(), "peer left");
    }

    fn stop_relay(&mut self) {
        if let Some(relay) = self.relay.take() {
            relay.abort();
        }
    }
}

impl Drop for RoomChannel {
    fn drop(&mut self) {
        self.stop_relay();
    }
}

/// Forwards the room's messages for one channel instance to the socket.
async fn relay(
    mut inbox: mpsc::Receiver<PeerOutbound>,
    outbox: Outbox,
    topic: String,
    join_ref: Option<String>,
    room: RoomHandle,
    ended: mpsc::Sender<ChannelEnded>,
) {
    let end = ChannelEnded {
        topic: topic.clone(),
        join_ref: join_ref.clone(),
        node_lost: false,
    };
    loop {
        match inbox.recv().await {
            Some(PeerOutbound::MediaEvent(data)) => {
                let mut payload = Map::new();
                payload.insert("data".into(), Value::String(data));
                let push = Frame::push(join_ref.clone(), topic.clone(), MEDIA_EVENT, payload);
                if outbox.send(&push) == Queued::No {
                    // Queue full: the socket closes itself; or the socket is gone.
                    return;
                }
            }
            Some(PeerOutbound::Chat(message)) => {
                let push = Frame::push(
                    join_ref.clone(),
                    topic.clone(),
                    CHAT_EVENT,
                    message.to_payload(),
                );
                if outbox.send(&push) == Queued::No {
                    return;
                }
            }
            Some(PeerOutbound::Closed { error }) => {
                // With an error the room has already sent an `error` media event.
                tracing::debug!(%topic, ?error, "room closed the channel");
                outbox.send(&Frame::close(join_ref.clone(), topic.clone()));
                let _ = ended.send(end).await;
                return;
            }
            None => {
                if room_stopped(&room).await {
                    tracing::warn!(%topic, "room stopped: channel crashed");
                    outbox.send(&Frame::crash(join_ref.clone(), topic.clone()));
                    let _ = ended.send(end).await;
                } else {
                    tracing::debug!(%topic, "room dropped the peer's queue; relay stops");
                }
                return;
            }
        }
    }
}

/// Whether the room actor has stopped. The peer queue's senders and the actor's command
/// receiver are dropped together when the actor ends, so give the latter a moment.
async fn room_stopped(room: &RoomHandle) -> bool {
    for _ in 0..20 {
        if room.is_closed() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    room.is_closed()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::phoenix::frame::decode;
    use crate::phoenix::transport::{spawn_writer, WsOut};
    use crate::room::RoomCommand;

    /// Runs a relay for `room:r` with join ref `"7"`; returns the room's sender for the peer,
    /// the frames written to the socket and the ended notifications.
    fn relay_fixture(
        room: RoomHandle,
    ) -> (
        mpsc::Sender<PeerOutbound>,
        mpsc::UnboundedReceiver<WsOut>,
        mpsc::Receiver<ChannelEnded>,
    ) {
        let (written_tx, written) = mpsc::unbounded_channel();
        let sink = futures_util::sink::unfold(written_tx, |tx, out: WsOut| async move {
            let _ = tx.send(out);
            Ok::<_, std::convert::Infallible>(tx)
        });
        let (outbox, _writer) = spawn_writer(Box::pin(sink), 16);
        let (peer_tx, peer_rx) = mpsc::channel(16);
        let (ended_tx, ended) = mpsc::channel(4);
        tokio::spawn(relay(
            peer_rx,
            outbox,
            "room:r".into(),
            Some("7".into()),
            room,
            ended_tx,
        ));
        (peer_tx, written, ended)
    }

    async fn next_frame(written: &mut mpsc::UnboundedReceiver<WsOut>) -> Frame {
        match written.recv().await {
            Some(WsOut::Text(t)) => decode(&t, usize::MAX).unwrap(),
            other => panic!("expected a text frame, got {other:?}"),
        }
    }

    fn room() -> (RoomHandle, mpsc::Receiver<RoomCommand>) {
        let (tx, rx) = mpsc::channel(4);
        (RoomHandle::new(RoomId("r".into()), tx), rx)
    }

    #[tokio::test]
    async fn relays_media_events_as_pushes_with_the_join_ref() {
        let (handle, _commands) = room();
        let (peer, mut written, _ended) = relay_fixture(handle);
        peer.send(PeerOutbound::MediaEvent("{\"type\":\"x\"}".into()))
            .await
            .unwrap();
        let f = next_frame(&mut written).await;
        assert_eq!(f.join_ref.as_deref(), Some("7"));
        assert_eq!(f.reference, None);
        assert_eq!(f.topic, "room:r");
        assert_eq!(f.event, "mediaEvent");
        assert_eq!(f.payload.get("data"), Some(&json!("{\"type\":\"x\"}")));
    }

    #[tokio::test]
    async fn relays_chat_messages_as_chat_pushes_with_the_join_ref() {
        let (handle, _commands) = room();
        let (peer, mut written, _ended) = relay_fixture(handle);
        let message = crate::room::ChatMessage {
            from: "a".into(),
            name: "Alice".into(),
            text: "<b>hi</b>".into(),
            at: 1_700_000_000_000,
        };
        peer.send(PeerOutbound::Chat(message)).await.unwrap();
        let f = next_frame(&mut written).await;
        assert_eq!(f.join_ref.as_deref(), Some("7"));
        assert_eq!(f.reference, None);
        assert_eq!(f.topic, "room:r");
        assert_eq!(f.event, "chat");
        assert_eq!(
            Value::Object(f.payload),
            json!({"from": "a", "name": "Alice", "text": "<b>hi</b>", "at": 1_700_000_000_000u64})
        );
    }

    #[tokio::test]
    async fn closed_by_the_room_sends_phx_close() {
        let (handle, _commands) = room();
        let (peer, mut written, mut ended) = relay_fixture(handle);
        peer.send(PeerOutbound::Closed {
            error: Some("kicked".into()),
        })
        .await
        .unwrap();
        let f = next_frame(&mut written).await;
        assert_eq!(f.event, "phx_close");
        assert_eq!(f.join_ref.as_deref(), Some("7"));
        assert_eq!(
            ended.recv().await,
            Some(ChannelEnded {
                topic: "room:r".into(),
                join_ref: Some("7".into()),
                node_lost: false,
            })
        );
    }

    #[tokio::test]
    async fn stopped_room_sends_phx_error() {
        let (handle, commands) = room();
        let (peer, mut written, mut ended) = relay_fixture(handle);
        drop(commands);
        drop(peer);
        let f = next_frame(&mut written).await;
        assert_eq!(f.event, "phx_error");
        assert_eq!(f.payload.get("reason"), Some(&json!("channel_crash")));
        assert!(ended.recv().await.is_some());
    }

    #[tokio::test]
    async fn peer_queue_dropped_by_a_live_room_ends_the_relay_quietly() {
        let (handle, _commands) = room();
        let (peer, mut written, mut ended) = relay_fixture(handle);
        drop(peer);
        // The relay ends without a frame and without an ended notification: both channels
        // close once it has dropped its ends.
        assert_eq!(ended.recv().await, None);
        assert_eq!(written.recv().await, None);
    }

    #[test]
    fn room_ids() {
        assert_eq!(room_id("room:abc"), Ok(RoomId("abc".into())));
        assert_eq!(room_id("room:a b-é"), Ok(RoomId("a b-é".into())));
        assert_eq!(room_id("room:"), Err(ChannelError::InvalidRoomId));
        assert_eq!(room_id("room:a\nb"), Err(ChannelError::InvalidRoomId));
        assert_eq!(room_id("room:a\u{7f}"), Err(ChannelError::InvalidRoomId));
        assert_eq!(
            room_id(&format!("room:{}", "x".repeat(128))).map(|r| r.0.len()),
            Ok(128)
        );
        assert_eq!(
            room_id(&format!("room:{}", "x".repeat(129))),
            Err(ChannelError::InvalidRoomId)
        );
        assert_eq!(room_id("lobby:abc"), Err(ChannelError::InvalidRoomId));
        assert!(is_room_topic("room:"));
        assert!(!is_room_topic("rooms"));
    }

    #[test]
    fn join_errors_display_as_reasons() {
        assert_eq!(ChannelError::InvalidRoomId.to_string(), "invalid room id");
        assert_eq!(
            ChannelError::from(JoinError::RoomFull).to_string(),
            "room_full"
        );
    }
}
