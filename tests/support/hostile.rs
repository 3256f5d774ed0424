//! Fixture of the hostile-input suites (`tests/hostile_*.rs`) and the fault-isolation tests
//! (`tests/fault_*.rs`): a real server, a room with two healthy [`Participant`]s A and B
//! (Opus + 320x240 VP8, already decoding each other), and an [`Offender`]: a raw Phoenix client
//! in the same room that sends whatever the test wants.
//!
//! Each case ends with [`HostileRoom::assert_healthy`]: A and B keep decoding each other
//! (every track of the other grows by [`GROWTH`] frames after the attack, no `error` reached
//! them), a fresh client can still join the room, and nothing panicked in the process.
//!
//! Test files include it next to `support`:
//! ```ignore
//! mod support;
//! #[path = "support/hostile.rs"]
//! mod hostile;
//! ```
//! At most two cases of one file run at once ([`HostileRoom::start`] takes one of two file-wide
//! permits; [`HostileRoom::start_alone`], for cases that measure frame rates, takes both), so
//! two cores are never asked for more than two small rooms of encoders at once.
#![allow(dead_code)]

use std::cell::Cell;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Once;
use std::time::Duration;

use lamina::config::Config;
use lamina::server::Server;
use lamina_client::{ClientEvent, Participant, ParticipantConfig, ParticipantState, ServerEvent};
use serde_json::{json, Value};
use tokio::sync::{Semaphore, SemaphorePermit};

use crate::support::{spawn_server, Event, Frame, PhoenixClient};

/// Bound for media to start or keep flowing.
pub const MEDIA_TIMEOUT: Duration = Duration::from_secs(20);
/// Frames every remote track must decode after an attack to count as still flowing (video
/// runs at 15 fps, audio at 50 buffers/s).
pub const GROWTH: u64 = 10;
/// Room of the fixture.
pub const ROOM: &str = "hostile";

/// Panics seen in the process outside the cases' own test threads (the server, the healthy
/// participants): each is a bug, whichever case was running.
static PANICS: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// Set on a case's test thread: its own failed assertions are its own, not the server's.
    static CASE_THREAD: Cell<bool> = const { Cell::new(false) };
}

fn count_panics() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !CASE_THREAD.with(Cell::get) {
                PANICS.fetch_add(1, Ordering::SeqCst);
            }
            default(info);
        }));
    });
    CASE_THREAD.with(|c| c.set(true));
}

/// Cases of one test binary running at once.
const CONCURRENT_CASES: u32 = 2;

/// Admits a case: `permits` of [`CONCURRENT_CASES`].
async fn admit(permits: u32) -> SemaphorePermit<'static> {
    static CASES: Semaphore = Semaphore::const_new(CONCURRENT_CASES as usize);
    CASES
        .acquire_many(permits)
        .await
        .expect("the case semaphore is never closed")
}

/// `ws://<addr>/socket/websocket` (the participant adds `vsn`).
pub fn ws_url(server: &Server) -> String {
    format!("ws://{}/socket/websocket", server.addr)
}

/// A participant publishing audio and video and receiving everything.
pub async fn participant(server: &Server, room: &str, name: &str) -> Participant {
    Participant::join(ParticipantConfig {
        url: ws_url(server),
        room: room.into(),
        name: name.into(),
        audio: true,
        video: true,
        receive: true,
    })
    .await
    .unwrap_or_else(|e| panic!("{name} joins {room}: {e}"))
}

/// Decoded frames per track of `endpoint`, as `p` sees them.
pub fn frames_from(s: &ParticipantState, endpoint: &str) -> BTreeMap<String, u64> {
    s.tracks
        .iter()
        .filter(|(_, t)| t.endpoint == endpoint)
        .map(|(id, t)| (id.clone(), t.frames))
        .collect()
}

/// Waits until `p` decodes at least `min` frames of both tracks (audio, video) of `from`.
pub async fn wait_decoding(p: &Participant, from: &str, min: u64) {
    p.wait_until("remote audio and video decoded", MEDIA_TIMEOUT, |s| {
        let f = frames_from(s, from);
        f.len() == 2 && f.values().all(|n| *n >= min)
    })
    .await
    .unwrap_or_else(|e| panic!("{}: {e}", p.id));
}

/// Asserts that `p` keeps decoding every track of `from` (each grows by [`GROWTH`] from now),
/// still lists `from`, and got no `error` media event.
pub async fn keeps_decoding(p: &Participant, from: &str) {
    let before = frames_from(&p.snapshot(), from);
    assert_eq!(before.len(), 2, "{}: tracks of {from}: {before:?}", p.id);
    let s = p
        .wait_until("media keeps flowing", MEDIA_TIMEOUT, |s| {
            let now = frames_from(s, from);
            before
                .iter()
                .all(|(t, n)| now.get(t).is_some_and(|m| *m >= n + GROWTH))
        })
        .await
        .unwrap_or_else(|e| panic!("{}: {e}", p.id));
    assert!(s.endpoints.contains_key(from), "{}: lost {from}", p.id);
    assert!(s.errors.is_empty(), "{}: errors {:?}", p.id, s.errors);
}

/// The fixture: a server and a room with A and B decoding each other.
pub struct HostileRoom {
    /// The server.
    pub server: Server,
    /// Healthy participant A.
    pub a: Participant,
    /// Healthy participant B.
    pub b: Participant,
    _admitted: SemaphorePermit<'static>,
}

impl HostileRoom {
    /// Starts a server (`Config::for_tests()` changed by `tweak`) and the room [`ROOM`] with A
    /// and B decoding each other's audio and video; another case may run meanwhile.
    pub async fn start(tweak: impl FnOnce(&mut Config)) -> HostileRoom {
        Self::start_with(1, tweak).await
    }

    /// [`HostileRoom::start`] with no other case running meanwhile (for frame-rate figures).
    pub async fn start_alone(tweak: impl FnOnce(&mut Config)) -> HostileRoom {
        Self::start_with(CONCURRENT_CASES, tweak).await
    }

    async fn start_with(permits: u32, tweak: impl FnOnce(&mut Config)) -> HostileRoom {
        let admitted = admit(permits).await;
        count_panics();
        let server = spawn_server(tweak).await;
        let a = participant(&server, ROOM, "A").await;
        let b = participant(&server, ROOM, "B").await;
        tokio::join!(wait_decoding(&a, &b.id, 5), wait_decoding(&b, &a.id, 5));
        HostileRoom {
            server,
            a,
            b,
            _admitted: admitted,
        }
    }

    /// The server's address.
    pub fn addr(&self) -> SocketAddr {
        self.server.addr
    }

    /// A raw client joined to the fixture's room (not `connect`ed).
    pub async fn offender(&self) -> Offender {
        Offender::join(self.server.addr, ROOM).await
    }

    /// A raw client joined to the fixture's room and `connect`ed; its first `offerData`
    /// (the room has tracks for it) is left queued.
    pub async fn connected_offender(&self) -> Offender {
        let mut o = self.offender().await;
        o.connect("Mallory").await;
        o
    }

    /// A and B keep decoding each other, a fresh client can join and sees both, and nothing
    /// panicked.
    pub async fn assert_healthy(&self) {
        tokio::join!(
            keeps_decoding(&self.a, &self.b.id),
            keeps_decoding(&self.b, &self.a.id)
        );
        self.assert_server_up().await;
    }

    /// A fresh client can join the room and sees A and B; no panic so far.
    pub async fn assert_server_up(&self) {
        let mut fresh = Offender::join(self.server.addr, ROOM).await;
        fresh.connect("Fresh").await;
        let others = fresh.other_endpoints.clone();
        assert!(
            others.contains(&self.a.id) && others.contains(&self.b.id),
            "fresh client sees {others:?}"
        );
        fresh.client.close().await;
        assert_no_panic();
    }

    /// Leaves and stops the server.
    pub async fn finish(self) {
        self.a.leave().await;
        self.b.leave().await;
        self.server.stop().await;
        assert_no_panic();
    }
}

/// Fails if anything outside the cases' test threads panicked in this process.
pub fn assert_no_panic() {
    assert_eq!(PANICS.load(Ordering::SeqCst), 0, "something panicked");
}

/// A media event of a frame with its `custom` wrapper removed: `(type, data)`.
pub fn media(f: &Frame) -> Option<(String, Value)> {
    let mut ev = f.media_event()?;
    if ev["type"] == "custom" {
        ev = ev["data"].clone();
    }
    Some((ev["type"].as_str()?.to_owned(), ev["data"].clone()))
}

/// How an attack ended for the offender.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// An `error` media event with this message.
    ErrorEvent(String),
    /// An error reply with this reason.
    ErrorReply(String),
    /// The server closed the connection (code, reason) or it dropped.
    Disconnected(Option<(u16, String)>),
}

/// A raw Phoenix client in a room: sends anything, reads what comes back.
pub struct Offender {
    /// The connection.
    pub client: PhoenixClient,
    /// `room:<id>`.
    pub topic: String,
    /// Join ref of the channel.
    pub join_ref: String,
    /// Endpoint id once connected.
    pub id: String,
    /// The other endpoints `connected` listed.
    pub other_endpoints: Vec<String>,
}

impl Offender {
    /// Connects and joins `room`.
    pub async fn join(addr: SocketAddr, room: &str) -> Offender {
        let mut client = PhoenixClient::connect(addr).await;
        let topic = format!("room:{room}");
        let join_ref = client.join_ok(&topic).await;
        Offender {
            client,
            topic,
            join_ref,
            id: String::new(),
            other_endpoints: Vec::new(),
        }
    }

    /// Sends `connect` and waits for `connected`; returns that event as JSON.
    pub async fn connect(&mut self, name: &str) -> Value {
        let connect = ClientEvent::Connect {
            metadata: json!({"displayName": name}),
        };
        let (jr, topic) = (self.join_ref.clone(), self.topic.clone());
        self.client.client_event(&jr, &topic, &connect).await;
        let f = self
            .client
            .next_frame_where(|f| media(f).is_some_and(|(t, _)| t == "connected"))
            .await;
        let Some(ServerEvent::Connected {
            id,
            other_endpoints,
        }) = f.server_event()
        else {
            unreachable!("a connected event")
        };
        self.id = id;
        self.other_endpoints = other_endpoints.into_iter().map(|e| e.id).collect();
        f.media_event().expect("media event")
    }

    /// Pushes any JSON as a media event; returns the push's ref.
    pub async fn event(&mut self, ev: Value) -> String {
        self.client
            .media_event(&self.join_ref, &self.topic, ev)
            .await
    }

    /// Pushes `{"type":"custom","data":{"type":kind,"data":data}}`.
    pub async fn custom(&mut self, kind: &str, data: Value) -> String {
        self.event(json!({"type": "custom", "data": {"type": kind, "data": data}}))
            .await
    }

    /// Pushes a `"mediaEvent"` whose `data` is this raw string.
    pub async fn data(&mut self, data: &str) -> String {
        self.push("mediaEvent", json!({ "data": data })).await
    }

    /// Pushes any event on the channel.
    pub async fn push(&mut self, event: &str, payload: Value) -> String {
        let (jr, topic) = (self.join_ref.clone(), self.topic.clone());
        self.client.push(&jr, &topic, event, payload).await
    }

    /// Waits for the next media event of type `ty`; returns its data.
    pub async fn wait_media(&mut self, ty: &str) -> Value {
        let f = self
            .client
            .next_frame_where(|f| media(f).is_some_and(|(t, _)| t == ty))
            .await;
        media(&f).expect("media event").1
    }

    /// Waits for `offerData`; returns `(audio, video)` of `tracksTypes`.
    pub async fn offer_data(&mut self) -> (usize, usize) {
        match self.client.server_event_of_kind("offerData").await {
            ServerEvent::OfferData { audio, video, .. } => (audio, video),
            other => unreachable!("{other:?}"),
        }
    }

    /// Waits for an `error` media event; returns its message.
    pub async fn error_event(&mut self) -> String {
        match self.client.server_event_of_kind("error").await {
            ServerEvent::Error { message } => message,
            other => unreachable!("{other:?}"),
        }
    }

    /// Waits for the reply to `reference` and asserts it is an error; returns the reason.
    pub async fn error_reply(&mut self, reference: &str) -> String {
        let reply = self.client.reply(reference).await;
        assert_eq!(reply.status(), "error", "reply {reply:?}");
        reply.response()["reason"]
            .as_str()
            .expect("reason")
            .to_owned()
    }

    /// Waits until the server gives an error (media event or reply to any push) or ends the
    /// connection.
    pub async fn outcome(&mut self) -> Outcome {
        let e = self
            .client
            .next_where(|e| match e {
                Event::Frame(f) => {
                    media(f).is_some_and(|(t, _)| t == "error")
                        || (f.event == "phx_reply" && f.status() == "error")
                }
                _ => true,
            })
            .await;
        match e {
            Event::Frame(f) if f.event == "phx_reply" => {
                Outcome::ErrorReply(f.response()["reason"].as_str().unwrap_or("").to_owned())
            }
            Event::Frame(f) => Outcome::ErrorEvent(
                media(&f)
                    .and_then(|(_, d)| d["message"].as_str().map(str::to_owned))
                    .unwrap_or_default(),
            ),
            Event::Closed { code, reason } => Outcome::Disconnected(Some((code, reason))),
            Event::Gone(_) => Outcome::Disconnected(None),
        }
    }

    /// Like [`PhoenixClient::barrier`], for a client that may be rate limited: heartbeats until
    /// one is answered `ok`; returns the frames received before it (error replies included).
    pub async fn settled_barrier(&mut self) -> Vec<Frame> {
        let mut tick = tokio::time::interval(Duration::from_millis(50));
        let mut seen = Vec::new();
        for _ in 0..200 {
            tick.tick().await;
            let r = self.client.heartbeat().await;
            let reply = self.client.reply(&r).await;
            while let Some(e) = self.client.next_event_within(Duration::ZERO).await {
                match e {
                    Event::Frame(f) => seen.push(f),
                    other => panic!("connection ended: {other:?}"),
                }
            }
            if reply.status() == "ok" {
                return seen;
            }
        }
        panic!("heartbeats never answered ok");
    }

    /// Waits for the server to close the connection; returns code and reason if it sent a
    /// close frame.
    pub async fn disconnected(&mut self) -> Option<(u16, String)> {
        match self.client.ended().await {
            Event::Closed { code, reason } => Some((code, reason)),
            _ => None,
        }
    }

    /// Answers the pending `offerData` with `sdp` and this `midToTrackId`, as raw JSON (`mids`
    /// may be anything).
    pub async fn send_offer(&mut self, sdp: &str, mids: Value) -> String {
        self.custom(
            "sdpOffer",
            json!({
                "sdpOffer": {"type": "offer", "sdp": sdp},
                "trackIdToTrackMetadata": {},
                "trackIdToTrackBitrates": {},
                "midToTrackId": mids,
            }),
        )
        .await
    }

    /// A candidate event, as raw JSON (`candidate` and `index` may be anything).
    pub async fn candidate(&mut self, candidate: Value, index: Value) -> String {
        self.custom(
            "candidate",
            json!({"candidate": candidate, "sdpMLineIndex": index}),
        )
        .await
    }
}

/// Direction and kind of one m-line of a crafted offer.
#[derive(Debug, Clone, Copy)]
pub struct M {
    /// `"audio"` or `"video"`.
    pub kind: &'static str,
    /// `"sendonly"`, `"recvonly"`, `"sendrecv"` or `"inactive"`.
    pub dir: &'static str,
}

/// `n` recvonly audio m-lines then `m` recvonly video m-lines.
pub fn recvonly(audio: usize, video: usize) -> Vec<M> {
    let mut v = vec![
        M {
            kind: "audio",
            dir: "recvonly"
        };
        audio
    ];
    v.extend(std::iter::repeat_n(
        M {
            kind: "video",
            dir: "recvonly",
        },
        video,
    ));
    v
}

/// A browser-like offer (BUNDLE, rtcp-mux, ICE credentials, a DTLS fingerprint, Opus/VP8) with
/// these m-lines; mids are "0", "1", … Sending m-lines carry an `a=ssrc`.
pub fn offer_sdp(mlines: &[M]) -> String {
    let mids: Vec<String> = (0..mlines.len()).map(|i| i.to_string()).collect();
    let mut s = format!(
        "v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n\
         a=group:BUNDLE {}\r\na=msid-semantic: WMS\r\n",
        mids.join(" ")
    );
    for (i, m) in mlines.iter().enumerate() {
        let (pt, rtpmap) = if m.kind == "audio" {
            (
                111,
                "a=rtpmap:111 opus/48000/2\r\na=fmtp:111 minptime=10;useinbandfec=1\r\n",
            )
        } else {
            (
                96,
                "a=rtpmap:96 VP8/90000\r\na=rtcp-fb:96 nack pli\r\na=rtcp-fb:96 ccm fir\r\n",
            )
        };
        s.push_str(&format!(
            "m={kind} 9 UDP/TLS/RTP/SAVPF {pt}\r\nc=IN IP4 0.0.0.0\r\na=rtcp:9 IN IP4 0.0.0.0\r\n\
             a=ice-ufrag:hstl\r\na=ice-pwd:hostilehostilehostile00\r\na=ice-options:trickle\r\n\
             a=fingerprint:sha-256 {FINGERPRINT}\r\na=setup:actpass\r\na=mid:{i}\r\na={dir}\r\n\
             a=rtcp-mux\r\n{rtpmap}",
            kind = m.kind,
            dir = m.dir,
        ));
        if m.dir == "sendonly" || m.dir == "sendrecv" {
            let ssrc = 1000 + i;
            s.push_str(&format!(
                "a=ssrc:{ssrc} cname:hostile\r\na=ssrc:{ssrc} msid:hostile track{i}\r\n"
            ));
        }
    }
    s
}

/// A syntactically valid SHA-256 fingerprint (of no real certificate).
pub const FINGERPRINT: &str = "4F:1A:77:0C:9B:3E:D2:65:A8:11:F0:5C:2D:84:E9:36:\
7B:C3:58:0A:DE:92:41:6F:B5:27:8C:E0:13:9D:64:AF";

/// `POST <path>` over a raw TCP stream; returns the status code and the body.
pub async fn http_post(addr: SocketAddr, path: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    tcp.write_all(request.as_bytes())
        .await
        .expect("write request");
    let mut raw = Vec::new();
    tokio::time::timeout(crate::support::TIMEOUT, tcp.read_to_end(&mut raw))
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
