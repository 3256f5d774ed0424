//! A synthetic participant of a Janus VideoRoom (Janus 1.x WebSocket API, `janus-protocol`):
//! a publisher handle with a sendonly peer connection and a multistream subscriber handle
//! whose peer connection receives every other publisher's feed, renegotiated (Janus offers,
//! we answer with `start`) whenever feeds come or go. The same str0m peers and media as the
//! Lamina participants.

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use str0m::media::{Direction, MediaKind};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

use crate::media::RIDS;
use crate::metrics::{lock, PeerStats, Shared};
use crate::peer::{ask, PeerCmd, PeerHandle, Publish};
use crate::BenchError;

type Pending = Arc<Mutex<HashMap<String, oneshot::Sender<Value>>>>;

/// One Janus session over one WebSocket.
pub struct JanusConn {
    out: mpsc::UnboundedSender<Message>,
    pending: Pending,
    next: Arc<AtomicU64>,
    session: u64,
    tasks: Vec<JoinHandle<()>>,
}

fn err(e: impl std::fmt::Display) -> BenchError {
    BenchError::Join(format!("janus: {e}"))
}

impl JanusConn {
    /// Connects to `url` (`ws://host:8188/`) and creates a session; unsolicited messages
    /// (events without a waiting request, trickles, hangups) arrive on the returned receiver.
    pub async fn connect(url: &str) -> Result<(Self, mpsc::UnboundedReceiver<Value>), BenchError> {
        let mut req = url.into_client_request().map_err(err)?;
        req.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            "janus-protocol".parse().map_err(err)?,
        );
        let (ws, _) = tokio_tungstenite::connect_async(req).await.map_err(err)?;
        let (mut sink, mut stream) = ws.split();
        let (out, mut out_rx) = mpsc::unbounded_channel::<Message>();
        let writer = tokio::spawn(async move {
            while let Some(m) = out_rx.recv().await {
                if sink.send(m).await.is_err() {
                    break;
                }
            }
        });
        let pending: Pending = Arc::default();
        let (ev_tx, ev_rx) = mpsc::unbounded_channel();
        let p = pending.clone();
        let reader = tokio::spawn(async move {
            while let Some(Ok(msg)) = stream.next().await {
                let Message::Text(text) = msg else { continue };
                let Ok(v) = serde_json::from_str::<Value>(&text) else {
                    continue;
                };
                if v["janus"] == "ack" {
                    continue;
                }
                let waiter = v["transaction"].as_str().and_then(|t| lock(&p).remove(t));
                match waiter {
                    Some(w) => {
                        let _ = w.send(v);
                    }
                    None => {
                        let _ = ev_tx.send(v);
                    }
                }
            }
        });
        let mut conn = Self {
            out,
            pending,
            next: Arc::new(AtomicU64::new(1)),
            session: 0,
            tasks: vec![writer, reader],
        };
        let r = conn.request(json!({"janus": "create"})).await?;
        conn.session = r["data"]["id"]
            .as_u64()
            .ok_or_else(|| err(format!("create: {r}")))?;
        let (out, session) = (conn.out.clone(), conn.session);
        conn.tasks.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(20));
            loop {
                tick.tick().await;
                let m = json!({"janus": "keepalive", "session_id": session, "transaction": "ka"});
                if out.send(Message::Text(m.to_string())).is_err() {
                    break;
                }
            }
        }));
        Ok((conn, ev_rx))
    }

    /// Sends a request and waits for the reply carrying its transaction (`success`, `error`,
    /// or the plugin `event` that answers an asynchronous message).
    pub async fn request(&self, mut body: Value) -> Result<Value, BenchError> {
        let t = format!("t{}", self.next.fetch_add(1, Ordering::Relaxed));
        body["transaction"] = json!(t);
        if self.session != 0 {
            body["session_id"] = json!(self.session);
        }
        let (tx, rx) = oneshot::channel();
        lock(&self.pending).insert(t.clone(), tx);
        self.out
            .send(Message::Text(body.to_string()))
            .map_err(|_| err("connection closed"))?;
        let r = tokio::time::timeout(Duration::from_secs(15), rx)
            .await
            .map_err(|_| err(format!("no reply to {body}")))?
            .map_err(|_| err("connection closed"))?;
        if r["janus"] == "error" || r["plugindata"]["data"]["error"].is_string() {
            return Err(err(format!("{body} → {r}")));
        }
        Ok(r)
    }

    /// Attaches a VideoRoom handle.
    pub async fn attach(&self) -> Result<u64, BenchError> {
        let r = self
            .request(json!({"janus": "attach", "plugin": "janus.plugin.videoroom"}))
            .await?;
        r["data"]["id"]
            .as_u64()
            .ok_or_else(|| err(format!("attach: {r}")))
    }

    /// A plugin message on `handle`, with an optional JSEP.
    pub async fn message(
        &self,
        handle: u64,
        body: Value,
        jsep: Option<Value>,
    ) -> Result<Value, BenchError> {
        let mut m = json!({"janus": "message", "handle_id": handle, "body": body});
        if let Some(j) = jsep {
            m["jsep"] = j;
        }
        self.request(m).await
    }

    /// Creates VideoRoom room `room` for up to `publishers` VP8/Opus publishers.
    pub async fn create_room(
        &self,
        handle: u64,
        room: u64,
        publishers: usize,
    ) -> Result<(), BenchError> {
        self.message(
            handle,
            json!({"request": "create", "room": room, "publishers": publishers,
            "bitrate": 0, "videocodec": "vp8", "audiocodec": "opus", "permanent": false}),
            None,
        )
        .await
        .map(|_| ())
    }
}

impl Drop for JanusConn {
    fn drop(&mut self) {
        let m = json!({"janus": "destroy", "session_id": self.session, "transaction": "bye"});
        let _ = self.out.send(Message::Text(m.to_string()));
        let _ = self.out.send(Message::Close(None));
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// A participant in a Janus VideoRoom.
pub struct JanusPeer {
    /// Publisher peer connection (when publishing).
    pub publisher: Option<PeerHandle>,
    /// Subscriber peer connection (all other feeds).
    pub subscriber: PeerHandle,
    /// When the join started.
    pub join_started: Instant,
    task: JoinHandle<()>,
}

impl JanusPeer {
    /// Joins room `room` at `url`, publishing when `publish` is set and subscribing to every
    /// other publisher, now and later. A simulcast publisher tells Janus its RIDs are listed
    /// low to high (`rid_order: "lmh"`, so that substream 0 is `l`); with `receive_layer`
    /// (0 `l`, 1 `m`, 2 `h`) every video feed is subscribed with that `substream` (Janus's
    /// default is the highest).
    pub async fn join(
        url: &str,
        room: u64,
        name: &str,
        ip: IpAddr,
        publish: Option<Publish>,
        shared: Arc<Shared>,
        receive_layer: Option<usize>,
    ) -> Result<Self, BenchError> {
        let join_started = Instant::now();
        let (conn, events) = JanusConn::connect(url).await?;
        let pub_handle = conn.attach().await?;
        // Everyone joins as a publisher (receive-only participants simply never publish), so
        // that Janus tells them about publishers that appear later.
        let r = conn
            .message(
                pub_handle,
                json!({"request": "join", "ptype": "publisher", "room": room, "display": name}),
                None,
            )
            .await?;
        let d = &r["plugindata"]["data"];
        let own_id = d["id"].as_u64().unwrap_or(0);
        let feeds: BTreeSet<u64> = publisher_ids(d).into_iter().collect();
        let publisher = match publish {
            Some(p) => {
                let simulcast = !p.layers().is_empty();
                let peer = PeerHandle::start(ip, Some(p), shared.clone(), false).await?;
                let add = vec![
                    (MediaKind::Audio, Direction::SendOnly),
                    (MediaKind::Video, Direction::SendOnly),
                ];
                let (sdp, _) = ask(&peer.cmd, |r| PeerCmd::Offer(add, r))
                    .await
                    .map_err(err)?;
                let mut jsep = json!({"type": "offer", "sdp": sdp, "trickle": false});
                if simulcast {
                    jsep["rid_order"] = json!("lmh");
                }
                let r = conn
                    .message(
                        pub_handle,
                        json!({"request": "publish", "audio": true, "video": true}),
                        Some(jsep),
                    )
                    .await?;
                let answer = r["jsep"]["sdp"]
                    .as_str()
                    .ok_or_else(|| err(format!("publish: {r}")))?
                    .to_owned();
                ask(&peer.cmd, |r| PeerCmd::Answer(answer, r))
                    .await
                    .map_err(err)?;
                Some(peer)
            }
            None => None,
        };
        let sub_handle = conn.attach().await?;
        let subscriber = PeerHandle::start(ip, None, shared, false).await?;
        let mut s = Subscriber {
            conn,
            room,
            own_id,
            handle: sub_handle,
            pub_handle,
            cmd: subscriber.cmd.clone(),
            pub_cmd: publisher.as_ref().map(|p| p.cmd.clone()),
            joined: false,
            feeds: BTreeSet::new(),
            substream: receive_layer.filter(|l| *l < RIDS.len()),
            stats: subscriber.stats.clone(),
        };
        s.subscribe(feeds).await?;
        let task = tokio::spawn(s.run(events));
        Ok(Self {
            publisher,
            subscriber,
            join_started,
            task,
        })
    }

    /// Leaves (the session is destroyed with the connection).
    pub fn leave(self) {
        self.task.abort();
    }
}

fn publisher_ids(d: &Value) -> Vec<u64> {
    d["publishers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p["id"].as_u64())
        .collect()
}

struct Subscriber {
    conn: JanusConn,
    room: u64,
    own_id: u64,
    handle: u64,
    pub_handle: u64,
    cmd: mpsc::UnboundedSender<PeerCmd>,
    pub_cmd: Option<mpsc::UnboundedSender<PeerCmd>>,
    joined: bool,
    feeds: BTreeSet<u64>,
    /// The substream asked for on every video feed (none: Janus's default, the highest).
    substream: Option<usize>,
    /// The subscriber peer's figures (substream switches are counted there).
    stats: Arc<Mutex<PeerStats>>,
}

impl Subscriber {
    /// Subscribes to the feeds not yet subscribed, answering Janus's offer.
    async fn subscribe(&mut self, feeds: BTreeSet<u64>) -> Result<(), BenchError> {
        let new: Vec<u64> = feeds
            .into_iter()
            .filter(|f| *f != self.own_id && !self.feeds.contains(f))
            .collect();
        if new.is_empty() {
            return Ok(());
        }
        let streams: Vec<Value> = new
            .iter()
            .map(|f| match self.substream {
                Some(s) => json!({"feed": f, "substream": s}),
                None => json!({"feed": f}),
            })
            .collect();
        let body = if self.joined {
            json!({"request": "subscribe", "streams": streams})
        } else {
            json!({"request": "join", "ptype": "subscriber", "room": self.room, "streams": streams})
        };
        let r = self.conn.message(self.handle, body, None).await?;
        self.joined = true;
        self.feeds.extend(new);
        self.answer(&r).await
    }

    /// Answers a JSEP offer in `r`, if any, with `start`.
    async fn answer(&self, r: &Value) -> Result<(), BenchError> {
        let Some(offer) = r["jsep"]["sdp"].as_str().map(str::to_owned) else {
            return Ok(());
        };
        let sdp = ask(&self.cmd, |t| PeerCmd::AcceptOffer(offer, t))
            .await
            .map_err(err)?;
        self.conn
            .message(
                self.handle,
                json!({"request": "start"}),
                Some(json!({"type": "answer", "sdp": sdp, "trickle": false})),
            )
            .await
            .map(|_| ())
    }

    async fn run(mut self, mut events: mpsc::UnboundedReceiver<Value>) {
        while let Some(v) = events.recv().await {
            let sender = v["sender"].as_u64();
            if v["janus"] == "trickle" {
                let c = v["candidate"]["candidate"].as_str().map(str::to_owned);
                let target = if sender == Some(self.handle) {
                    Some(&self.cmd)
                } else {
                    self.pub_cmd.as_ref()
                };
                if let (Some(c), Some(t)) = (c, target) {
                    let _ = t.send(PeerCmd::Candidate(c));
                }
                continue;
            }
            if v["janus"] != "event" {
                continue;
            }
            let r = if sender == Some(self.pub_handle) {
                let feeds: BTreeSet<u64> = publisher_ids(&v["plugindata"]["data"])
                    .into_iter()
                    .collect();
                self.subscribe(feeds).await
            } else if sender == Some(self.handle) {
                let d = &v["plugindata"]["data"];
                if let Some(rid) = d["substream"].as_u64().and_then(|s| RIDS.get(s as usize)) {
                    *lock(&self.stats)
                        .layer_switches
                        .entry(format!("{rid} substream"))
                        .or_default() += 1;
                }
                self.answer(&v).await
            } else {
                Ok(())
            };
            if let Err(e) = r {
                tracing::warn!("janus participant: {e}");
            }
        }
    }
}
