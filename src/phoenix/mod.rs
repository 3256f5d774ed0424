//! Phoenix Channels v2 over WebSocket: frames, the socket task, the room channel.
//!
//! - [`frame`]: pure `[join_ref, ref, topic, event, payload]` encode/decode.
//! - [`rate`]: the per-socket token bucket.
//! - [`transport`]: the WebSocket seen as `Stream<WsIn>` + `Sink<WsOut>`, the bounded outbound
//!   queue and its writer task.
//! - [`socket`]: one reader loop per WebSocket (heartbeats, limits, topic routing).
//! - [`channel`]: the `room:<id>` channel relaying `"mediaEvent"`s to and from a room.
//!
//! Nothing here knows warp: the HTTP layer adapts its WebSocket and calls [`socket::run`].

pub mod channel;
/// Token buckets (the room core's, shared: `lamina_core::rate`).
pub use lamina_core::rate;
/// Frame encode/decode (defined in `lamina-protocol`).
pub use lamina_protocol::phoenix_frame as frame;
pub mod socket;
pub mod transport;

pub use channel::RoomChannel;
pub use frame::{Frame, FrameError};
pub use socket::{run, SocketContext};
pub use transport::{CloseFrame, WsIn, WsOut, WsReadError};
