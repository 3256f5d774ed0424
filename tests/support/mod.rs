//! Shared helpers of the protocol tests: a server on 127.0.0.1:0 and a Phoenix v2 client over a
//! real WebSocket. Every wait has a timeout; nothing sleeps for a fixed time. Frames and media
//! events are built and read with `lamina-protocol`'s types; raw text stays possible for the
//! hostile tests ([`PhoenixClient::send_text`], [`PhoenixClient::media_event`]).
#![allow(dead_code)]

use std::collections::VecDeque;
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use lamina::config::Config;
use lamina::server::{self, Server};
use lamina_protocol::chat::{ChatMessage, ChatPush, CHAT_EVENT};
use lamina_protocol::media_event::{ClientEvent, ServerEvent};
use lamina_protocol::phoenix_frame::{self, ReplyStatus, MEDIA_EVENT, PHX_REPLY};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// Default wait for anything the server should do promptly.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// Logs to the test output when `RUST_LOG` is set.
pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

/// Starts a server with `Config::for_tests()` changed by `tweak`.
pub async fn spawn_server(tweak: impl FnOnce(&mut Config)) -> Server {
    init_tracing();
    let mut config = Config::for_tests();
    tweak(&mut config);
    server::start(config).await.expect("server starts")
}

/// Polls `cond` until it holds or `timeout` passes; returns whether it held.
pub async fn wait_until<F, Fut>(mut cond: F, timeout: Duration) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    loop {
        if cond().await {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tick.tick().await;
    }
}

/// One frame received from the server.
#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    /// Element 0.
    pub join_ref: Option<String>,
    /// Element 1.
    pub reference: Option<String>,
    /// Element 2.
    pub topic: String,
    /// Element 3.
    pub event: String,
    /// Element 4.
    pub payload: Value,
}

impl Frame {
    /// Parses a server frame, panicking on anything that is not a valid v2 frame.
    pub fn parse(text: &str) -> Frame {
        let f = phoenix_frame::decode(text, usize::MAX)
            .unwrap_or_else(|e| panic!("server frame {text}: {e}"));
        Frame {
            join_ref: f.join_ref,
            reference: f.reference,
            topic: f.topic,
            event: f.event,
            payload: Value::Object(f.payload),
        }
    }

    /// True for a `phx_reply` to `reference`.
    pub fn is_reply_to(&self, reference: &str) -> bool {
        self.event == PHX_REPLY && self.reference.as_deref() == Some(reference)
    }

    /// `payload.status` of a reply.
    pub fn status(&self) -> &str {
        self.payload["status"].as_str().unwrap_or("")
    }

    /// Whether this is an `ok` reply.
    pub fn is_ok(&self) -> bool {
        ReplyStatus::parse(self.status()) == Some(ReplyStatus::Ok)
    }

    /// `payload.response` of a reply.
    pub fn response(&self) -> &Value {
        &self.payload["response"]
    }

    /// The media event of a `"mediaEvent"` push, as JSON.
    pub fn media_event(&self) -> Option<Value> {
        if self.event != MEDIA_EVENT {
            return None;
        }
        let data = self.payload["data"]
            .as_str()
            .expect("mediaEvent data is a string");
        Some(serde_json::from_str(data).expect("mediaEvent data is JSON"))
    }

    /// The media event of a `"mediaEvent"` push, decoded (panics if the server sent one that
    /// does not decode).
    pub fn server_event(&self) -> Option<ServerEvent> {
        if self.event != MEDIA_EVENT {
            return None;
        }
        let data = self.payload["data"]
            .as_str()
            .expect("mediaEvent data is a string");
        Some(ServerEvent::decode(data).unwrap_or_else(|e| panic!("server event {data}: {e}")))
    }
}

/// Something the client saw on the connection.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A text frame.
    Frame(Frame),
    /// A close frame from the server.
    Closed {
        /// Close code.
        code: u16,
        /// Close reason.
        reason: String,
    },
    /// The connection ended without a close frame (or failed).
    Gone(String),
}

impl Event {
    /// The frame, if this is one.
    pub fn frame(&self) -> Option<&Frame> {
        match self {
            Event::Frame(f) => Some(f),
            _ => None,
        }
    }
}

/// A Phoenix v2 client on a real WebSocket. Frames not consumed by a wait stay queued for later
/// waits.
pub struct PhoenixClient {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    next_ref: u64,
    backlog: VecDeque<Event>,
    ended: bool,
}

/// `ws://<addr>/socket/websocket?vsn=2.0.0`.
pub fn socket_url(addr: SocketAddr) -> String {
    format!("ws://{addr}/socket/websocket?vsn=2.0.0")
}

impl PhoenixClient {
    /// Connects to the server's Phoenix socket.
    pub async fn connect(addr: SocketAddr) -> PhoenixClient {
        Self::connect_url(&socket_url(addr)).await
    }

    /// Connects to a WebSocket URL.
    pub async fn connect_url(url: &str) -> PhoenixClient {
        let (ws, _) = tokio::time::timeout(TIMEOUT, tokio_tungstenite::connect_async(url))
            .await
            .expect("connect in time")
            .expect("websocket handshake");
        PhoenixClient {
            ws,
            next_ref: 0,
            backlog: VecDeque::new(),
            ended: false,
        }
    }

    /// A fresh ref.
    pub fn make_ref(&mut self) -> String {
        self.next_ref += 1;
        self.next_ref.to_string()
    }

    /// Sends a raw WebSocket message.
    pub async fn send_message(&mut self, msg: Message) -> Result<(), String> {
        self.ws.send(msg).await.map_err(|e| e.to_string())
    }

    /// Sends a raw text frame.
    pub async fn send_text(&mut self, text: impl Into<String>) {
        self.send_message(Message::Text(text.into()))
            .await
            .expect("send");
    }

    /// Sends a frame.
    pub async fn send_frame(&mut self, frame: &phoenix_frame::Frame) {
        self.send_text(frame.encode()).await;
    }

    /// Sends `[join_ref, ref, topic, event, payload]` (a payload that is not an object is
    /// sent as is, as raw JSON).
    pub async fn send(
        &mut self,
        join_ref: Option<&str>,
        reference: Option<&str>,
        topic: &str,
        event: &str,
        payload: Value,
    ) {
        let Value::Object(payload) = payload else {
            let text = json!([join_ref, reference, topic, event, payload]).to_string();
            return self.send_text(text).await;
        };
        let frame = phoenix_frame::Frame {
            join_ref: join_ref.map(str::to_owned),
            reference: reference.map(str::to_owned),
            topic: topic.into(),
            event: event.into(),
            payload,
        };
        self.send_frame(&frame).await;
    }

    /// Sends a heartbeat; returns its ref.
    pub async fn heartbeat(&mut self) -> String {
        let r = self.make_ref();
        self.send_frame(&phoenix_frame::Frame::heartbeat(r.clone()))
            .await;
        r
    }

    /// Sends a push on a channel; returns its ref.
    pub async fn push(
        &mut self,
        join_ref: &str,
        topic: &str,
        event: &str,
        payload: Value,
    ) -> String {
        let r = self.make_ref();
        self.send(Some(join_ref), Some(&r), topic, event, payload)
            .await;
        r
    }

    /// Sends a `phx_join` (join_ref = ref); returns its ref.
    pub async fn send_join(&mut self, topic: &str) -> String {
        let r = self.make_ref();
        self.send_frame(&phoenix_frame::Frame::join(
            r.clone(),
            topic,
            Default::default(),
        ))
        .await;
        r
    }

    /// Joins `topic` and waits for the reply; returns the join ref, or the reply on error.
    pub async fn join(&mut self, topic: &str) -> Result<String, Frame> {
        let r = self.send_join(topic).await;
        let reply = self.reply(&r).await;
        if reply.is_ok() {
            Ok(r)
        } else {
            Err(reply)
        }
    }

    /// Joins `topic`, panicking if refused; returns the join ref.
    pub async fn join_ok(&mut self, topic: &str) -> String {
        match self.join(topic).await {
            Ok(r) => r,
            Err(reply) => panic!("join {topic} refused: {reply:?}"),
        }
    }

    /// Sends any JSON as a media event (`{"data": JSON text of event}`); returns the push's ref.
    pub async fn media_event(&mut self, join_ref: &str, topic: &str, event: Value) -> String {
        self.media_event_data(join_ref, topic, event.to_string())
            .await
    }

    /// Sends a media event; returns the push's ref.
    pub async fn client_event(
        &mut self,
        join_ref: &str,
        topic: &str,
        event: &ClientEvent,
    ) -> String {
        self.media_event_data(join_ref, topic, event.encode()).await
    }

    /// Sends a `"mediaEvent"` push whose `data` is `data`; returns its ref.
    async fn media_event_data(&mut self, join_ref: &str, topic: &str, data: String) -> String {
        let r = self.make_ref();
        let frame = phoenix_frame::Frame::request(
            Some(join_ref.into()),
            r.clone(),
            topic,
            MEDIA_EVENT,
            phoenix_frame::Frame::media_event_payload(data),
        );
        self.send_frame(&frame).await;
        r
    }

    /// Waits for the reply to `reference`.
    pub async fn reply(&mut self, reference: &str) -> Frame {
        let r = reference.to_owned();
        self.next_frame_where(move |f| f.is_reply_to(&r)).await
    }

    /// Reads the next event from the connection (backlog first), waiting at most `timeout`.
    pub async fn next_event_within(&mut self, timeout: Duration) -> Option<Event> {
        if let Some(e) = self.backlog.pop_front() {
            return Some(e);
        }
        self.read_event(timeout).await
    }

    async fn read_event(&mut self, timeout: Duration) -> Option<Event> {
        if self.ended {
            return Some(Event::Gone("connection already ended".into()));
        }
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let msg = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .ok()?;
            let event = match msg {
                Some(Ok(Message::Text(t))) => Event::Frame(Frame::parse(&t)),
                Some(Ok(Message::Close(frame))) => {
                    self.ended = true;
                    let (code, reason) = frame
                        .map(|f| (u16::from(f.code), f.reason.into_owned()))
                        .unwrap_or((u16::from(CloseCode::Status), String::new()));
                    Event::Closed { code, reason }
                }
                Some(Ok(Message::Binary(b))) => panic!("server sent a binary frame: {b:?}"),
                Some(Ok(_)) => continue,
                Some(Err(e)) => {
                    self.ended = true;
                    Event::Gone(e.to_string())
                }
                None => {
                    self.ended = true;
                    Event::Gone("stream ended".into())
                }
            };
            return Some(event);
        }
    }

    /// Waits (at most [`TIMEOUT`]) for an event matching `pred`; other events stay queued.
    /// Panics on timeout, or if the connection ends first (unless `pred` accepts that).
    pub async fn next_where(&mut self, mut pred: impl FnMut(&Event) -> bool) -> Event {
        if let Some(i) = self.backlog.iter().position(&mut pred) {
            return self.backlog.remove(i).expect("index is valid");
        }
        let deadline = tokio::time::Instant::now() + TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let Some(event) = self.read_event(left).await else {
                panic!("timed out; unmatched events: {:?}", self.backlog);
            };
            if pred(&event) {
                return event;
            }
            if !matches!(event, Event::Frame(_)) {
                panic!(
                    "connection ended while waiting: {event:?}; earlier: {:?}",
                    self.backlog
                );
            }
            self.backlog.push_back(event);
        }
    }

    /// Waits for a frame matching `pred`.
    pub async fn next_frame_where(&mut self, mut pred: impl FnMut(&Frame) -> bool) -> Frame {
        match self.next_where(|e| e.frame().is_some_and(&mut pred)).await {
            Event::Frame(f) => f,
            _ => unreachable!("predicate only accepts frames"),
        }
    }

    /// Waits for a `"mediaEvent"` push whose (unwrapped) type is `ty`; returns it decoded.
    pub async fn server_event_of_kind(&mut self, ty: &str) -> ServerEvent {
        let f = self
            .next_frame_where(|f| f.server_event().is_some_and(|e| e.kind() == ty))
            .await;
        f.server_event().expect("is a media event")
    }

    /// Waits for a `"mediaEvent"` push whose decoded `type` is `ty`; returns the decoded event.
    pub async fn media_event_of_type(&mut self, ty: &str) -> Value {
        let f = self
            .next_frame_where(|f| f.media_event().is_some_and(|e| e["type"] == ty))
            .await;
        f.media_event().expect("is a media event")
    }

    /// Waits for the server's close frame (frames before it are kept); returns code and reason.
    /// Panics if the connection ends without a close frame.
    pub async fn closed(&mut self) -> (u16, String) {
        match self
            .next_where(|e| matches!(e, Event::Closed { .. } | Event::Gone(_)))
            .await
        {
            Event::Closed { code, reason } => (code, reason),
            other => panic!("connection ended without a close frame: {other:?}"),
        }
    }

    /// Waits until the connection ends in any way (close frame, reset or EOF).
    pub async fn ended(&mut self) -> Event {
        self.next_where(|e| matches!(e, Event::Closed { .. } | Event::Gone(_)))
            .await
    }

    /// Sends a heartbeat and waits for its reply; returns the frames that arrived before it
    /// and were not consumed yet. The server answers in order, so this proves what it sent
    /// before the barrier without waiting a fixed time.
    pub async fn barrier(&mut self) -> Vec<Frame> {
        let r = self.heartbeat().await;
        let reply = self.reply(&r).await;
        assert!(reply.is_ok(), "heartbeat reply: {reply:?}");
        self.backlog
            .drain(..)
            .filter_map(|e| e.frame().cloned())
            .collect()
    }

    /// Closes the connection from the client side.
    pub async fn close(mut self) {
        let _ = self.ws.close(None).await;
    }
}

/// A minimal HTTP/1.1 GET over a raw TCP stream (the path is sent verbatim, unnormalised);
/// returns the status code and the body.
pub async fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tcp = TcpStream::connect(addr).await.expect("connect");
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    tcp.write_all(request.as_bytes())
        .await
        .expect("write request");
    let mut raw = Vec::new();
    tokio::time::timeout(TIMEOUT, tcp.read_to_end(&mut raw))
        .await
        .expect("response in time")
        .expect("read response");
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {text:?}"));
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// Room chat (`"chat"` channel event, `lamina_protocol::chat`).
impl Frame {
    /// The message of a `"chat"` push, decoded and checked (panics on a malformed one).
    pub fn chat_message(&self) -> Option<ChatMessage> {
        if self.event != CHAT_EVENT {
            return None;
        }
        let Value::Object(payload) = &self.payload else {
            panic!("chat payload is not an object: {self:?}");
        };
        Some(ChatMessage::decode(payload).unwrap_or_else(|e| panic!("chat push {payload:?}: {e}")))
    }
}

/// Room chat (`"chat"` channel event, `lamina_protocol::chat`).
impl PhoenixClient {
    /// Pushes `"chat"` `{"text": text}` on a channel; returns the push's ref.
    pub async fn chat(&mut self, join_ref: &str, topic: &str, text: &str) -> String {
        let payload = Value::Object(ChatPush::new(text).to_payload());
        self.push(join_ref, topic, CHAT_EVENT, payload).await
    }

    /// Waits for the next `"chat"` push; returns its message.
    pub async fn chat_message(&mut self) -> ChatMessage {
        let f = self.next_frame_where(|f| f.event == CHAT_EVENT).await;
        f.chat_message().expect("is a chat push")
    }
}
