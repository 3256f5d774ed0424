//! Phoenix Channels v2 over WebSocket: frames, the socket task, the room channel.
