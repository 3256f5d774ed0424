//! The WebSocket as the socket task sees it, independent of the HTTP library, and the bounded
//! outbound queue ([`Outbox`]) with its writer task.
//!
//! The HTTP layer adapts its WebSocket type to a `Stream<Item = Result<WsIn, WsReadError>>` and a
//! `Sink<WsOut>`; tests can drive the socket with in-memory channels the same way.

use std::fmt::Display;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{Sink, SinkExt};
use tokio::sync::{mpsc, oneshot, Notify};

use super::frame::Frame;

/// A message received on the WebSocket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WsIn {
    /// A text message.
    Text(String),
    /// A binary message (refused by the Phoenix socket); its length in bytes.
    Binary(usize),
    /// A ping or pong (answered by the WebSocket library; only keeps the socket alive).
    Control,
    /// The client's close frame.
    Close,
}

/// Why reading the WebSocket failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WsReadError {
    /// The client sent a message larger than the WebSocket limit.
    #[error("message too big")]
    TooBig,
    /// Any other transport or protocol error; the connection is unusable.
    #[error("websocket error: {0}")]
    Other(String),
}

/// A WebSocket close code and reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseFrame {
    /// The close code (RFC 6455 section 7.4).
    pub code: u16,
    /// A short human-readable reason (at most 123 bytes on the wire).
    pub reason: String,
}

impl CloseFrame {
    /// Normal closure (1000).
    pub const NORMAL: u16 = 1000;
    /// Going away (1001): used for the idle timeout so clients reconnect.
    pub const GOING_AWAY: u16 = 1001;
    /// Protocol error (1002).
    pub const PROTOCOL_ERROR: u16 = 1002;
    /// Unsupported data (1003): binary frames.
    pub const UNSUPPORTED_DATA: u16 = 1003;
    /// Policy violation (1008): flooding, not reading.
    pub const POLICY_VIOLATION: u16 = 1008;
    /// Message too big (1009).
    pub const TOO_BIG: u16 = 1009;

    /// A close frame with `code` and `reason`.
    pub fn new(code: u16, reason: impl Into<String>) -> Self {
        Self {
            code,
            reason: reason.into(),
        }
    }
}

/// A message to send on the WebSocket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WsOut {
    /// A text message.
    Text(String),
    /// Close the connection with this code and reason.
    Close(CloseFrame),
}

/// Sending half of a socket's bounded outbound queue. Cheap to clone; shared by the socket task
/// and its channels' relay tasks.
///
/// Never waits: when the queue is full the client is not reading, the message is dropped and the
/// socket task is told to close the connection (see [`Outbox::overflowed`]).
#[derive(Clone, Debug)]
pub struct Outbox {
    tx: mpsc::Sender<WsOut>,
    overflow: Arc<Notify>,
}

/// Result of queueing a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Queued {
    /// In the queue.
    Yes,
    /// Dropped: the queue is full (overflow signalled) or the writer has stopped.
    No,
}

impl Outbox {
    /// Queues a frame.
    pub fn send(&self, frame: &Frame) -> Queued {
        self.send_raw(WsOut::Text(frame.encode()))
    }

    /// Queues a WebSocket message.
    pub fn send_raw(&self, msg: WsOut) -> Queued {
        match self.tx.try_send(msg) {
            Ok(()) => Queued::Yes,
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.overflow.notify_one();
                Queued::No
            }
            Err(mpsc::error::TrySendError::Closed(_)) => Queued::No,
        }
    }

    /// Completes once a send found the queue full.
    pub async fn overflowed(&self) {
        self.overflow.notified().await
    }
}

/// Control handle of the writer task.
#[derive(Debug)]
pub struct Writer {
    /// Closes the connection at once, skipping whatever is still queued.
    pub abort_with: oneshot::Sender<CloseFrame>,
    /// The writer task; ends after sending a close frame or when the sink fails.
    pub task: tokio::task::JoinHandle<()>,
}

/// How long the writer tries to deliver a close frame to a client that does not read.
const CLOSE_SEND_TIMEOUT: Duration = Duration::from_secs(2);

/// Creates an outbox of `capacity` messages and spawns the task that writes it to `sink`.
pub fn spawn_writer<Si>(sink: Si, capacity: usize) -> (Outbox, Writer)
where
    Si: Sink<WsOut> + Unpin + Send + 'static,
    Si::Error: Display,
{
    let (tx, rx) = mpsc::channel(capacity.max(1));
    let (abort_with, abort_rx) = oneshot::channel();
    let outbox = Outbox {
        tx,
        overflow: Arc::new(Notify::new()),
    };
    let task = tokio::spawn(write_loop(sink, rx, abort_rx));
    (outbox, Writer { abort_with, task })
}

async fn write_loop<Si>(
    mut sink: Si,
    mut rx: mpsc::Receiver<WsOut>,
    mut abort_rx: oneshot::Receiver<CloseFrame>,
) where
    Si: Sink<WsOut> + Unpin + Send + 'static,
    Si::Error: Display,
{
    // A dropped abort handle only means nobody will abort any more.
    let mut can_abort = true;
    let close = 'outer: loop {
        let msg = tokio::select! {
            biased;
            close = &mut abort_rx, if can_abort => match close {
                Ok(close) => break Some(close),
                Err(_) => {
                    can_abort = false;
                    continue;
                }
            },
            msg = rx.recv() => msg,
        };
        match msg {
            None => break None,
            Some(WsOut::Close(close)) => break Some(close),
            Some(text @ WsOut::Text(_)) => {
                let send = sink.send(text);
                tokio::pin!(send);
                loop {
                    tokio::select! {
                        biased;
                        close = &mut abort_rx, if can_abort => match close {
                            Ok(close) => break 'outer Some(close),
                            Err(_) => can_abort = false,
                        },
                        res = &mut send => {
                            if let Err(e) = res {
                                tracing::debug!(error = %e, "websocket write failed");
                                return;
                            }
                            break;
                        }
                    }
                }
            }
        }
    };
    if let Some(close) = close {
        tracing::debug!(code = close.code, reason = %close.reason, "closing websocket");
        let sent = tokio::time::timeout(CLOSE_SEND_TIMEOUT, sink.send(WsOut::Close(close))).await;
        if !matches!(sent, Ok(Ok(()))) {
            tracing::debug!("close frame not delivered");
        }
    } else {
        let _ = tokio::time::timeout(CLOSE_SEND_TIMEOUT, sink.close()).await;
    }
}
