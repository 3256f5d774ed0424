//! One synthetic WebRTC peer connection: a str0m `Rtc` in RTP mode on its own UDP socket,
//! driven by a tokio task. It publishes the pre-encoded media on its sendonly m-lines
//! (honouring keyframe requests by jumping to the next keyframe of the loop) and counts what
//! arrives on the others, without decoding. Under simulated loss (see [`crate::loss`]) it drops
//! a share of the video datagrams it receives before str0m sees them and follows their repair.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use str0m::change::{SdpAnswer, SdpOffer, SdpPendingOffer};
use str0m::media::{Direction, MediaKind, Mid, Rid, Simulcast, SimulcastLayer};
use str0m::{Candidate, Input, Output, Rtc, RtcConfig};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::loss::{Dropper, Repair};
use crate::media::{self, Frame, MediaSet};
use crate::metrics::{lock, PeerStats, Shared};
use crate::relay::Relay;
use crate::rtp;

mod crypto;
mod recv;
mod send;
use send::TxTrack;

/// A request to the peer task; replies are SDP strings or errors.
pub enum PeerCmd {
    /// Create an offer adding these m-lines; replies with the offer and the new mids.
    Offer(
        Vec<(MediaKind, Direction)>,
        oneshot::Sender<Result<(String, Vec<String>), String>>,
    ),
    /// Apply the answer to the last offer.
    Answer(String, oneshot::Sender<Result<(), String>>),
    /// Accept a remote offer; replies with the answer.
    AcceptOffer(String, oneshot::Sender<Result<String, String>>),
    /// A remote ICE candidate (`candidate:…` line).
    Candidate(String),
    /// From now on send and receive only through this TURN relay, whose relayed address is
    /// the peer's only local candidate (before the first offer).
    UseRelay(Relay, oneshot::Sender<Result<(), String>>),
}

/// What a peer publishes.
#[derive(Clone)]
pub struct Publish {
    /// The media to replay.
    pub media: MediaSet,
    /// Index of the publisher in the run (spreads picture ids and loop positions).
    pub index: u32,
    /// Send the camera as the simulcast layers of `media` (`media.layers`, low to high), one
    /// SSRC per layer with the RID header extension and no `a=ssrc` lines for them, as Chrome
    /// does.
    pub simulcast: bool,
}

impl Publish {
    /// The simulcast layers this publisher sends (none without simulcast).
    pub fn layers(&self) -> &[media::Layer] {
        if self.simulcast {
            &self.media.layers
        } else {
            &[]
        }
    }
}

/// A running peer connection.
pub struct PeerHandle {
    /// Commands to the task.
    pub cmd: mpsc::UnboundedSender<PeerCmd>,
    /// What it measured.
    pub stats: Arc<Mutex<PeerStats>>,
    task: JoinHandle<()>,
}

impl PeerHandle {
    /// Starts a peer bound to `ip` (any port). A `relay_only` peer gets no host candidate
    /// and no socket: it waits for [`PeerCmd::UseRelay`].
    pub async fn start(
        ip: IpAddr,
        publish: Option<Publish>,
        shared: Arc<Shared>,
        relay_only: bool,
    ) -> std::io::Result<Self> {
        let socket = if relay_only { None } else { Some(bind(ip)?) };
        let local = match &socket {
            Some(s) => s.local_addr()?,
            None => SocketAddr::new(ip, 0),
        };
        let peer = shared
            .peers
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dropper = shared.loss.map(|spec| Dropper::new(spec, peer));
        let latency = shared.loss.map(|spec| spec.latency);
        // str0m counts the NACKs it sends only in its stats events.
        let mut rtc =
            rtc_config(dropper.as_ref().map(|_| NACK_COUNT_INTERVAL)).build(Instant::now());
        if socket.is_some() {
            let cand = Candidate::host(local, "udp").map_err(std::io::Error::other)?;
            rtc.add_local_candidate(cand);
        }
        let stats = Arc::new(Mutex::new(PeerStats::default()));
        let (cmd, rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(
            Driver {
                rtc,
                socket,
                relay: None,
                local,
                stats: stats.clone(),
                shared,
                publish,
                pending: None,
                audio: None,
                video: Vec::new(),
                video_ticks: 0,
                sent_keys: HashMap::new(),
                dropper,
                latency,
                held: VecDeque::new(),
                rx_video: HashMap::new(),
                datagram_ssrc: None,
                negotiated: HashMap::new(),
                nacks: HashMap::new(),
            }
            .run(rx),
        );
        Ok(Self { cmd, stats, task })
    }
}

/// How often str0m reports (among its stats) the NACKs it sent, when loss is simulated.
const NACK_COUNT_INTERVAL: Duration = Duration::from_millis(250);

/// The peers' str0m configuration: RTP mode, Opus and VP8 (str0m's VP8 default offers RTX and
/// the `nack`, `nack pli`, `ccm fir` feedback).
fn rtc_config(stats_interval: Option<Duration>) -> RtcConfig {
    RtcConfig::new()
        .set_rtp_mode(true)
        .clear_codecs()
        .enable_opus(true, false)
        .enable_vp8(true)
        .set_stats_interval(stats_interval)
        .set_crypto_provider(crypto::provider())
}

/// Sends a command to a peer task and waits for its reply.
pub async fn ask<T>(
    cmd: &mpsc::UnboundedSender<PeerCmd>,
    make: impl FnOnce(oneshot::Sender<Result<T, String>>) -> PeerCmd,
) -> Result<T, String> {
    let (tx, rx) = oneshot::channel();
    cmd.send(make(tx))
        .map_err(|_| "peer task ended".to_string())?;
    match tokio::time::timeout(Duration::from_secs(10), rx).await {
        Ok(Ok(r)) => r,
        Ok(Err(_)) => Err("peer task ended".into()),
        Err(_) => Err("peer task did not answer".into()),
    }
}

impl Drop for PeerHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A non-blocking UDP socket on `ip`, any port, with 4 MiB buffers.
pub fn bind(ip: IpAddr) -> std::io::Result<UdpSocket> {
    use socket2::{Domain, Socket, Type};
    let s = Socket::new(
        Domain::for_address(SocketAddr::new(ip, 0)),
        Type::DGRAM,
        None,
    )?;
    let _ = s.set_recv_buffer_size(4 << 20);
    let _ = s.set_send_buffer_size(4 << 20);
    s.set_nonblocking(true)?;
    s.bind(&SocketAddr::new(ip, 0).into())?;
    UdpSocket::from_std(s.into())
}

/// A received datagram held back by the simulated latency.
struct Held {
    due: Instant,
    source: SocketAddr,
    data: Vec<u8>,
}

struct Driver {
    rtc: Rtc,
    /// The host candidate's socket (none for a relay-only peer).
    socket: Option<UdpSocket>,
    /// The TURN relay a relay-only peer talks through, once allocated.
    relay: Option<Relay>,
    /// The local candidate's address: the socket's, or the relayed address.
    local: SocketAddr,
    stats: Arc<Mutex<PeerStats>>,
    shared: Arc<Shared>,
    publish: Option<Publish>,
    pending: Option<SdpPendingOffer>,
    audio: Option<TxTrack>,
    /// The video track: one, or one per simulcast layer.
    video: Vec<TxTrack>,
    /// Video ticks so far (a layer sends on every `every`-th).
    video_ticks: u64,
    /// Own video packets not yet on the wire: (SSRC, seq) → (payload key, layer).
    sent_keys: HashMap<(u32, u16), (u64, u8)>,
    /// Simulated downlink loss, if any.
    dropper: Option<Dropper>,
    /// Simulated downlink latency: received datagrams wait this long before str0m sees them.
    latency: Option<Duration>,
    /// Datagrams waiting out `latency`, oldest first.
    held: VecDeque<Held>,
    /// Received streams seen so far by main SSRC: whether video.
    rx_video: HashMap<u32, bool>,
    /// SSRC on the wire of the datagram whose events are being drained (differs from the
    /// packet's SSRC when str0m un-wrapped an RTX packet).
    datagram_ssrc: Option<u32>,
    /// Repair features the server negotiated, by mid.
    negotiated: HashMap<String, Repair>,
    /// NACKs sent by mid (cumulative, from str0m's stats).
    nacks: HashMap<Mid, u64>,
}

impl Driver {
    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<PeerCmd>) {
        let mut buf = vec![0u8; 2048];
        let fps = self.publish.as_ref().map_or(30, |p| p.media.fps.max(1));
        let mut video_tick = tokio::time::interval(Duration::from_secs(1) / fps);
        let mut audio_tick = tokio::time::interval(Duration::from_millis(20));
        video_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        audio_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            let deadline = match self.drain() {
                Ok(t) => t,
                Err(e) => {
                    lock(&self.stats).error = Some(e);
                    return;
                }
            };
            let sleep = tokio::time::Instant::from_std(deadline.max(Instant::now()));
            let sending = self.publish.is_some() && lock(&self.stats).connected.is_some();
            let held_due = self
                .held
                .front()
                .map(|h| tokio::time::Instant::from_std(h.due));
            tokio::select! {
                r = recv_udp(self.socket.as_ref(), &mut buf) => {
                    let now = Instant::now();
                    if let Ok((n, source)) = r {
                        match self.latency {
                            Some(d) => self.held.push_back(Held { due: now + d, source, data: buf[..n].to_vec() }),
                            None => self.receive(&buf[..n], source, now),
                        }
                    }
                }
                r = recv_relay(self.relay.as_mut()) => {
                    let now = Instant::now();
                    let Some((data, source)) = r else {
                        lock(&self.stats).error = Some("TURN relay closed".into());
                        return;
                    };
                    lock(&self.stats).relay_rx += 1;
                    match self.latency {
                        Some(d) => self.held.push_back(Held { due: now + d, source, data }),
                        None => self.receive(&data, source, now),
                    }
                }
                _ = tokio::time::sleep_until(held_due.unwrap_or(sleep)), if held_due.is_some() => {
                    // One datagram per turn: its events are drained before the next one.
                    if let Some(h) = self.held.pop_front() {
                        self.receive(&h.data, h.source, Instant::now());
                    }
                }
                _ = tokio::time::sleep_until(sleep) => {
                    let _ = self.rtc.handle_input(Input::Timeout(Instant::now()));
                }
                _ = video_tick.tick(), if sending && !self.video.is_empty() => self.send_video(),
                _ = audio_tick.tick(), if sending && self.audio.is_some() => self.send_audio(),
                c = rx.recv() => match c {
                    Some(c) => self.command(c),
                    None => return,
                },
            }
        }
    }

    /// Polls str0m until it wants a timeout: sends datagrams, handles events.
    fn drain(&mut self) -> Result<Instant, String> {
        loop {
            match self.rtc.poll_output().map_err(|e| e.to_string())? {
                Output::Timeout(t) => {
                    self.datagram_ssrc = None;
                    return Ok(t);
                }
                Output::Transmit(t) => {
                    if let Some(ids) = rtp::srtp_ids(&t.contents) {
                        if let Some((key, layer)) = self.sent_keys.remove(&ids) {
                            self.shared.sends.insert(key, Instant::now(), layer);
                        }
                    }
                    match (&self.relay, &self.socket) {
                        (Some(r), _) => {
                            // A full queue drops, as a full socket buffer would.
                            let _ = r.tx.try_send((t.contents.to_vec(), t.destination));
                        }
                        (None, Some(s)) => {
                            let _ = s.try_send_to(&t.contents, t.destination);
                        }
                        (None, None) => {}
                    }
                }
                Output::Event(e) => self.event(e),
            }
        }
    }

    fn command(&mut self, c: PeerCmd) {
        match c {
            PeerCmd::Offer(add, reply) => {
                let _ = reply.send(self.offer(add));
            }
            PeerCmd::Answer(sdp, reply) => {
                let r = match (SdpAnswer::from_sdp_string(&sdp), self.pending.take()) {
                    (Ok(a), Some(p)) => self
                        .rtc
                        .sdp_api()
                        .accept_answer(p, a)
                        .map_err(|e| e.to_string()),
                    (Err(e), _) => Err(e.to_string()),
                    (_, None) => Err("answer without a pending offer".into()),
                };
                if r.is_ok() {
                    self.note_repair(&sdp);
                    self.bind_tracks();
                }
                let _ = reply.send(r);
            }
            PeerCmd::AcceptOffer(sdp, reply) => {
                self.note_repair(&sdp);
                let r = SdpOffer::from_sdp_string(&sdp)
                    .map_err(|e| e.to_string())
                    .and_then(|o| {
                        self.rtc
                            .sdp_api()
                            .accept_offer(o)
                            .map_err(|e| e.to_string())
                    })
                    .map(|a| a.to_sdp_string());
                let _ = reply.send(r);
            }
            PeerCmd::Candidate(c) => {
                let line = c.trim().trim_start_matches("a=");
                if let Ok(c) = Candidate::from_sdp_string(line) {
                    self.rtc.add_remote_candidate(c);
                }
            }
            PeerCmd::UseRelay(relay, reply) => {
                let r = Candidate::relayed(relay.addr, relay.local, "udp")
                    .map_err(|e| e.to_string())
                    .map(|c| {
                        self.rtc.add_local_candidate(c);
                        self.local = relay.addr;
                        self.socket = None;
                        self.relay = Some(relay);
                        lock(&self.stats).relayed = true;
                    });
                let _ = reply.send(r);
            }
        }
    }

    fn offer(&mut self, add: Vec<(MediaKind, Direction)>) -> Result<(String, Vec<String>), String> {
        let layers: Vec<media::Layer> = self
            .publish
            .as_ref()
            .map(|p| p.layers().to_vec())
            .unwrap_or_default();
        // str0m 0.24 draws each new mid at random, checked against the session's m-lines but
        // not against those added in the same change, so two can collide (the server then
        // refuses the offer: "duplicate mid"). Such a change is dropped and drawn again.
        let mut attempts = 0;
        let (mut api, mids, simulcast_mid) = loop {
            let added = add_mlines(self.rtc.sdp_api(), &add, &layers);
            attempts += 1;
            let unique = added
                .1
                .iter()
                .enumerate()
                .all(|(i, m)| !added.1[..i].contains(m));
            if unique || attempts == MAX_OFFER_ATTEMPTS {
                break added;
            }
        };
        if !api.has_changes() {
            // Nothing new to negotiate, but the protocol wants an offer: add one spare
            // receive m-line (the server answers it inactive).
            api.add_media(MediaKind::Audio, Direction::RecvOnly, None, None, None);
        }
        let (offer, pending) = api.apply().ok_or("no offer")?;
        self.pending = Some(pending);
        let Some(p) = self.publish.clone() else {
            return Ok((
                offer.to_sdp_string(),
                mids.iter().map(|m| m.to_string()).collect(),
            ));
        };
        let track =
            |mid: Mid, rid: Option<Rid>, layer: u8, frames: &Arc<Vec<Frame>>, every| TxTrack {
                mid,
                rid,
                layer,
                frames: frames.clone(),
                every,
                seq: 1000 + u64::from(rand16() % 20000),
                pos: 0,
                picture_id: 0,
                want_key: false,
                t0: Instant::now(),
                ts0: u32::from(rand16()) << 8,
            };
        for ((kind, dir), mid) in add.iter().zip(&mids) {
            if *dir != Direction::SendOnly {
                continue;
            }
            match kind {
                MediaKind::Audio => self.audio = Some(track(*mid, None, 2, &p.media.audio, 1)),
                MediaKind::Video if simulcast_mid == Some(*mid) => {
                    self.video = layers
                        .iter()
                        .enumerate()
                        .map(|(i, l)| {
                            track(*mid, Some(Rid::from(l.rid)), i as u8, &l.video, l.every)
                        })
                        .collect();
                }
                MediaKind::Video => self.video = vec![track(*mid, None, 2, &p.media.video, 1)],
            }
        }
        self.bind_tracks();
        let mut sdp = offer.to_sdp_string();
        if let Some(mid) = simulcast_mid {
            sdp = without_ssrc_lines(&sdp, &mid.to_string());
        }
        Ok((sdp, mids.iter().map(|m| m.to_string()).collect()))
    }
}

/// The next datagram of `socket`; never, without one.
async fn recv_udp(
    socket: Option<&UdpSocket>,
    buf: &mut [u8],
) -> std::io::Result<(usize, SocketAddr)> {
    match socket {
        Some(s) => s.recv_from(buf).await,
        None => std::future::pending().await,
    }
}

/// The next datagram through `relay`; never, without one.
async fn recv_relay(relay: Option<&mut Relay>) -> Option<(Vec<u8>, SocketAddr)> {
    match relay {
        Some(r) => r.rx.recv().await,
        None => std::future::pending().await,
    }
}

/// `sdp` without the `a=ssrc` and `a=ssrc-group` lines of the m-section of `mid`: Chrome
/// announces no SSRCs for simulcast layers (servers learn them from the RID extension), str0m
/// does.
fn without_ssrc_lines(sdp: &str, mid: &str) -> String {
    let mid_line = format!("a=mid:{mid}");
    let mut out = String::with_capacity(sdp.len());
    let mut sections = Vec::<Vec<&str>>::new();
    for line in sdp.split_inclusive("\r\n") {
        if line.starts_with("m=") || sections.is_empty() {
            sections.push(Vec::new());
        }
        sections.last_mut().expect("a section").push(line);
    }
    for section in sections {
        let ours = section.iter().any(|l| l.trim_end() == mid_line);
        for line in section {
            if ours && (line.starts_with("a=ssrc:") || line.starts_with("a=ssrc-group:")) {
                continue;
            }
            out.push_str(line);
        }
    }
    out
}

fn rand16() -> u16 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(7);
    let x = t.wrapping_mul(2_654_435_761) ^ (std::process::id() << 7);
    (x >> 9) as u16
}

/// Times an offer's new m-lines are drawn again when str0m gave two the same mid.
const MAX_OFFER_ATTEMPTS: u32 = 8;

/// Adds `add` to `api` (the first sending video m-line with `layers` as simulcast layers);
/// returns it with the new mids, and that of the simulcast m-line.
fn add_mlines<'a>(
    mut api: str0m::change::SdpApi<'a>,
    add: &[(MediaKind, Direction)],
    layers: &[media::Layer],
) -> (str0m::change::SdpApi<'a>, Vec<Mid>, Option<Mid>) {
    let mut mids = Vec::new();
    let mut simulcast_mid = None;
    for (kind, dir) in add {
        let sim = (*kind == MediaKind::Video
            && *dir == Direction::SendOnly
            && !layers.is_empty()
            && simulcast_mid.is_none())
        .then(|| {
            let mut s = Simulcast::new();
            for l in layers {
                s.add_send_layer(SimulcastLayer::new(l.rid));
            }
            s
        });
        let with_layers = sim.is_some();
        let mid = api.add_media(*kind, *dir, None, None, sim);
        if with_layers {
            simulcast_mid = Some(mid);
        }
        mids.push(mid);
    }
    (api, mids, simulcast_mid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offer_asks_for_nack_and_rtx_on_video() {
        let mut rtc = rtc_config(None).build(Instant::now());
        let mut api = rtc.sdp_api();
        api.add_media(MediaKind::Video, Direction::RecvOnly, None, None, None);
        let (offer, _) = api.apply().expect("an offer");
        let repair = crate::loss::negotiated_repair(&offer.to_sdp_string());
        assert_eq!(repair.len(), 1, "{repair:?}");
        assert_eq!(
            repair[0].1,
            Repair {
                nack: true,
                rtx: true
            }
        );
    }
    #[test]
    fn simulcast_offer_lists_rids_low_to_high_without_layer_ssrcs() {
        let mut rtc = rtc_config(None).build(Instant::now());
        let mut api = rtc.sdp_api();
        api.add_media(MediaKind::Audio, Direction::SendOnly, None, None, None);
        let mut sim = Simulcast::new();
        for rid in media::RIDS {
            sim.add_send_layer(SimulcastLayer::new(rid));
        }
        let video = api.add_media(MediaKind::Video, Direction::SendOnly, None, None, Some(sim));
        let (offer, _) = api.apply().expect("an offer");
        let sdp = without_ssrc_lines(&offer.to_sdp_string(), &video.to_string());
        let (audio, video) = sdp.split_at(sdp.find("m=video").expect("a video m-line"));
        assert!(audio.contains("a=ssrc:"), "audio keeps its SSRC: {audio}");
        assert!(!video.contains("a=ssrc"), "no layer SSRCs: {video}");
        for line in [
            "a=rid:l send",
            "a=rid:m send",
            "a=rid:h send",
            "a=simulcast:send l;m;h",
            "urn:ietf:params:rtp-hdrext:sdes:mid",
            "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id",
            "urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id",
        ] {
            assert!(video.contains(line), "{line} missing: {video}");
        }
    }
}
