//! A synthetic participant of a Lamina room: Lamina's real protocol (Phoenix channel +
//! Membrane media events, through [`lamina_client::Signalling`]) driving a str0m peer that
//! behaves like the Membrane browser client: it always offers, with sendonly m-lines for its
//! own tracks and as many recvonly m-lines as `offerData` asks for.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lamina_client::{ClientEvent, ServerEvent, Signalling};
use serde_json::{json, Value};
use str0m::media::{Direction, MediaKind};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::media::RIDS;
use crate::metrics::{lock, PeerStats, Shared};
use crate::peer::{ask, PeerCmd, PeerHandle, Publish};
use crate::relay::{Relay, TurnInfo};
use crate::BenchError;

/// A participant in a Lamina room.
pub struct LaminaPeer {
    /// Its one peer connection (publishes and receives).
    pub peer: PeerHandle,
    /// When the join started (before the WebSocket opened).
    pub join_started: Instant,
    sig: Signalling,
    task: JoinHandle<()>,
}

impl LaminaPeer {
    /// Joins `room` on the server at `url` (`ws://…/socket/websocket`), publishing audio and
    /// video when `publish` is set, receiving everyone else's tracks. A `relay_only`
    /// participant behaves like the Membrane browser client (`iceTransportPolicy: "relay"`):
    /// before its first offer it allocates a relay on the TURN server the first `offerData`
    /// names and offers only that relayed candidate. With `receive_layer` (an index into
    /// [`RIDS`]) the participant asks for that layer of every simulcast track it is told about
    /// (`setTargetTrackVariant`); otherwise it takes what the server sends (the highest).
    #[allow(clippy::too_many_arguments)]
    pub async fn join(
        url: &str,
        room: &str,
        name: &str,
        ip: IpAddr,
        publish: Option<Publish>,
        shared: Arc<Shared>,
        relay_only: bool,
        receive_layer: Option<usize>,
    ) -> Result<Self, BenchError> {
        let join_started = Instant::now();
        let (sig, mut events) = Signalling::connect(url, room)
            .await
            .map_err(|e| BenchError::Join(format!("lamina {name}: {e}")))?;
        let publishing = publish.is_some();
        // What a simulcast camera announces in `trackIdToTrackBitrates`, bit/s per layer.
        let layer_bps: BTreeMap<String, u64> = publish
            .as_ref()
            .map(|p| {
                p.layers()
                    .iter()
                    .map(|l| (l.rid.to_string(), (l.kbps * 1000.0 * LAYER_HEADROOM) as u64))
                    .collect()
            })
            .unwrap_or_default();
        let peer = PeerHandle::start(ip, publish, shared, relay_only).await?;
        sig.send(&ClientEvent::Connect {
            metadata: json!({"displayName": name}),
        });
        let id = loop {
            match tokio::time::timeout(Duration::from_secs(10), events.recv()).await {
                Ok(Some(ServerEvent::Connected { id, .. })) => break id,
                Ok(Some(_)) => {}
                _ => return Err(BenchError::Join(format!("lamina {name}: no `connected`"))),
            }
        };
        if publishing {
            sig.send(&ClientEvent::RenegotiateTracks);
        }
        // Tracks published before the join are announced again by `tracksAdded` after
        // `connected`: the layer wish goes out on `tracksAdded` only.
        let mut session = Session {
            id,
            sig: sig.clone(),
            cmd: peer.cmd.clone(),
            publishing,
            own: BTreeMap::new(),
            recv: (0, 0),
            relay_from: relay_only.then_some(ip),
            layer_bps,
            want: receive_layer.and_then(|i| RIDS.get(i)).copied(),
            stats: peer.stats.clone(),
        };
        let task = tokio::spawn(async move {
            while let Some(ev) = events.recv().await {
                if let Err(e) = session.event(ev).await {
                    tracing::warn!(id = %session.id, "lamina participant: {e}");
                }
            }
        });
        Ok(Self {
            peer,
            join_started,
            sig,
            task,
        })
    }

    /// Leaves the room (closes the channel and the peer connection).
    pub fn leave(self) {
        self.sig.close();
        self.task.abort();
    }
}

struct Session {
    id: String,
    sig: Signalling,
    cmd: mpsc::UnboundedSender<PeerCmd>,
    publishing: bool,
    /// Own tracks: mid → (track id, metadata).
    own: BTreeMap<String, (String, Value)>,
    /// Receive m-lines so far (audio, video).
    recv: (usize, usize),
    /// A relay-only participant that has no relay yet: the address to allocate from.
    relay_from: Option<IpAddr>,
    /// The own camera's simulcast layers: RID → bit/s announced (empty: a single stream).
    layer_bps: BTreeMap<String, u64>,
    /// The layer to ask for of every remote simulcast track (none: the server's choice).
    want: Option<&'static str>,
    /// Where `encodingSwitched` events are counted.
    stats: Arc<Mutex<PeerStats>>,
}

/// What a synthetic simulcast publisher announces per layer over the loop's average bitrate
/// (a browser announces each encoding's `maxBitrate`, above what it sends on average).
const LAYER_HEADROOM: f64 = 1.2;

impl Session {
    async fn event(&mut self, ev: ServerEvent) -> Result<(), String> {
        match ev {
            ServerEvent::OfferData { audio, video, .. } => {
                if let Some(ip) = self.relay_from {
                    let turn = TurnInfo::from_offer_data(&ev)
                        .ok_or("relay only, but offerData lists no UDP TURN server")?;
                    let relay = Relay::allocate(ip, &turn).await?;
                    ask(&self.cmd, |r| PeerCmd::UseRelay(relay, r)).await?;
                    self.relay_from = None;
                }
                self.offer(audio, video).await
            }
            ServerEvent::SdpAnswer { sdp, .. } => ask(&self.cmd, |r| PeerCmd::Answer(sdp, r)).await,
            ServerEvent::Candidate { candidate, .. } => {
                let _ = self.cmd.send(PeerCmd::Candidate(candidate));
                Ok(())
            }
            ServerEvent::Error { message } => Err(format!("server error: {message}")),
            ServerEvent::TracksAdded { tracks, .. } => {
                self.want_layer(tracks.iter().map(|t| (&t.id[..], t.simulcast.as_deref())));
                Ok(())
            }
            ServerEvent::BandwidthEstimation { estimation } => {
                lock(&self.stats).downlink_estimate = Some(estimation);
                Ok(())
            }
            ServerEvent::EncodingSwitched {
                encoding, reason, ..
            } => {
                *lock(&self.stats)
                    .layer_switches
                    .entry(format!("{encoding} {reason}"))
                    .or_default() += 1;
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// Asks for the wanted layer of each of `tracks` (id, simulcast layers) that has it.
    fn want_layer<'a>(&self, tracks: impl IntoIterator<Item = (&'a str, Option<&'a [String]>)>) {
        let Some(want) = self.want else { return };
        for (id, layers) in tracks {
            if layers.is_some_and(|l| l.iter().any(|r| r == want)) {
                self.sig.send(&ClientEvent::SetTargetTrackVariant {
                    track_id: id.to_owned(),
                    variant: want.to_string(),
                });
            }
        }
    }

    async fn offer(&mut self, audio: usize, video: usize) -> Result<(), String> {
        let mut add = Vec::new();
        let first = self.publishing && self.own.is_empty();
        if first {
            add.push((MediaKind::Audio, Direction::SendOnly));
            add.push((MediaKind::Video, Direction::SendOnly));
        }
        for _ in self.recv.0..audio {
            add.push((MediaKind::Audio, Direction::RecvOnly));
        }
        for _ in self.recv.1..video {
            add.push((MediaKind::Video, Direction::RecvOnly));
        }
        self.recv = (self.recv.0.max(audio), self.recv.1.max(video));
        let (sdp, mids) = ask(&self.cmd, |r| PeerCmd::Offer(add, r)).await?;
        if first {
            for (mid, kind) in mids.iter().zip(["audio", "camera"]) {
                let track = format!("{}:{}", self.id, uuid_like());
                self.own
                    .insert(mid.clone(), (track, json!({"type": kind, "active": true})));
            }
        }
        let track_metadata = self
            .own
            .values()
            .map(|(t, m)| (t.clone(), m.clone()))
            .collect();
        let mid_to_track_id = self
            .own
            .iter()
            .map(|(mid, (t, _))| (mid.clone(), t.clone()))
            .collect();
        let offer = ClientEvent::SdpOffer {
            sdp: with_rtcp_rsize(&sdp),
            track_metadata,
            mid_to_track_id,
            track_bitrates: Default::default(),
        };
        // The camera's layer bit rates, as membrane-webrtc-js sends them (`{trackId: {rid:
        // bit/s}}`); the typed event's map cannot be filled from here (its value type is not
        // re-exported by `lamina_client`).
        let camera = self
            .own
            .values()
            .find(|(_, m)| m["type"] == "camera")
            .map(|(t, _)| t.clone());
        match camera.filter(|_| !self.layer_bps.is_empty()) {
            Some(track) => {
                let mut v = offer.to_json();
                let bitrates = json!({ track: self.layer_bps });
                match sdp_offer_body(&mut v) {
                    Some(body) => {
                        body.insert("trackIdToTrackBitrates".into(), bitrates);
                        self.sig.send_raw(&v);
                    }
                    None => {
                        self.sig.send(&offer);
                    }
                }
            }
            None => {
                self.sig.send(&offer);
            }
        }
        Ok(())
    }
}

/// The object of an encoded `sdpOffer` event that holds its `sdpOffer` field (under the
/// `custom` wrapping).
fn sdp_offer_body(v: &mut Value) -> Option<&mut serde_json::Map<String, Value>> {
    let obj = v.as_object_mut()?;
    if obj.contains_key("sdpOffer") {
        return Some(obj);
    }
    obj.get_mut("data").and_then(sdp_offer_body)
}

/// The offer with `a=rtcp-rsize` on every m-line, as browsers offer (RFC 5506: they take
/// reduced-size RTCP), which str0m's SDP leaves out; str0m parses reduced-size RTCP.
fn with_rtcp_rsize(sdp: &str) -> String {
    if sdp.contains("a=rtcp-rsize") {
        return sdp.to_owned();
    }
    sdp.replace("a=rtcp-mux\r\n", "a=rtcp-mux\r\na=rtcp-rsize\r\n")
}

fn uuid_like() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(1);
    let n = N.fetch_add(1, Ordering::Relaxed);
    format!(
        "{:08x}-{:04x}-4000-8000-{:012x}",
        std::process::id(),
        n & 0xffff,
        n
    )
}
