//! [`Outcome`]: what the core reports for metrics. The actor counts these; it never inspects
//! the core's state to find out what happened.

/// Something countable that happened in a room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The room refused a client's offer (unparsable SDP, limits, inconsistent m-lines, out of
    /// round).
    InvalidOffer,
    /// The media graph refused the offer command (peer or graph gone).
    Refused,
    /// The media graph failed to apply the offer or to create the answer.
    AnswerFailed,
    /// The transport did not report `connected` in time after the answer.
    ConnectTimeout,
}
