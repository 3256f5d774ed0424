//! The label values of the process-wide counters: why a socket ended, why a negotiation round
//! failed, why a join was refused.

/// Why a WebSocket connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DisconnectReason {
    /// The client closed the connection (close frame or end of stream).
    ClientClosed,
    /// The connection failed (reset, protocol error).
    TransportError,
    /// Nothing arrived within the idle timeout.
    IdleTimeout,
    /// The client kept flooding beyond the rate limit.
    RateLimited,
    /// The client did not read: its outbound queue filled up.
    QueueFull,
    /// A message larger than the frame limit.
    TooBig,
    /// A binary message.
    BinaryFrame,
    /// The server is stopping.
    ServerShutdown,
    /// Too many frames that were not Phoenix frames.
    Malformed,
    /// A channel relayed to another node lost that node.
    NodeLost,
}

impl DisconnectReason {
    /// Every reason, for pre-registering the label values.
    pub const ALL: [DisconnectReason; 10] = [
        Self::ClientClosed,
        Self::TransportError,
        Self::IdleTimeout,
        Self::RateLimited,
        Self::QueueFull,
        Self::TooBig,
        Self::BinaryFrame,
        Self::ServerShutdown,
        Self::Malformed,
        Self::NodeLost,
    ];

    /// The `reason` label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ClientClosed => "client_closed",
            Self::TransportError => "transport_error",
            Self::IdleTimeout => "idle_timeout",
            Self::RateLimited => "rate_limited",
            Self::QueueFull => "queue_full",
            Self::TooBig => "too_big",
            Self::BinaryFrame => "binary_frame",
            Self::ServerShutdown => "server_shutdown",
            Self::Malformed => "malformed_frames",
            Self::NodeLost => "node_lost",
        }
    }
}

/// Class of a failed negotiation round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NegotiationFailure {
    /// The room refused the client's offer (unparsable SDP, limits, inconsistent m-lines).
    InvalidOffer,
    /// The media engine refused the offer command (peer or pipeline gone).
    Refused,
    /// webrtcbin failed to apply the offer or to create the answer.
    AnswerFailed,
    /// The transport did not report `connected` in time after the answer.
    ConnectTimeout,
}

impl NegotiationFailure {
    /// Every class, for pre-registering the label values.
    pub const ALL: [NegotiationFailure; 4] = [
        Self::InvalidOffer,
        Self::Refused,
        Self::AnswerFailed,
        Self::ConnectTimeout,
    ];

    /// The `reason` label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidOffer => "invalid_offer",
            Self::Refused => "refused",
            Self::AnswerFailed => "answer_failed",
            Self::ConnectTimeout => "connect_timeout",
        }
    }
}

/// Why a channel join was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinRefusal {
    /// No valid room access token (with `--jwt-secret`).
    Unauthorized,
    /// Bad room id.
    InvalidRoom,
    /// The room is full.
    RoomFull,
    /// The server has too many rooms.
    TooManyRooms,
    /// The room could not start or was closing.
    Unavailable,
    /// The socket has joined too many channels.
    TooManyChannels,
}

impl JoinRefusal {
    /// Every reason, for pre-registering the label values.
    pub const ALL: [JoinRefusal; 6] = [
        Self::Unauthorized,
        Self::InvalidRoom,
        Self::RoomFull,
        Self::TooManyRooms,
        Self::Unavailable,
        Self::TooManyChannels,
    ];

    /// The `reason` label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unauthorized => "unauthorized",
            Self::InvalidRoom => "invalid_room",
            Self::RoomFull => "room_full",
            Self::TooManyRooms => "too_many_rooms",
            Self::Unavailable => "unavailable",
            Self::TooManyChannels => "too_many_channels",
        }
    }
}
