//! [`Participant`]: a webrtcbin peer in a Lamina room, driven by the room's media events.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gst::prelude::*;
use gst_webrtc::{WebRTCRTPTransceiver, WebRTCRTPTransceiverDirection, WebRTCSDPType};
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::media;
use super::options::{self, CandidateDirection, ParticipantOptions};
use super::signalling::{Signalling, SignallingError};

/// What the participant publishes and where it goes.
#[derive(Debug, Clone)]
pub struct ParticipantConfig {
    /// WebSocket URL, `ws://host:port/socket/websocket`.
    pub url: String,
    /// Room id.
    pub room: String,
    /// Display name (endpoint metadata `{"displayName": …}`).
    pub name: String,
    /// Publish a microphone-like Opus track.
    pub audio: bool,
    /// Publish a camera-like VP8 track.
    pub video: bool,
    /// Receive the others' tracks (add the recvonly m-lines `offerData` asks for). A client
    /// that receives nothing offers no recvonly m-line at all.
    pub receive: bool,
}

/// A remote track as this participant sees it.
#[derive(Debug, Clone, Default)]
pub struct RemoteTrack {
    /// Owner endpoint id.
    pub endpoint: String,
    /// Metadata from `tracksAdded` / `trackUpdated`.
    pub metadata: Value,
    /// The mid the last answer mapped it to.
    pub mid: Option<String>,
    /// Decoded video frames or audio buffers.
    pub frames: u64,
    /// When the first decoded frame arrived.
    pub first_frame: Option<Instant>,
    /// When the last decoded frame arrived.
    pub last_frame: Option<Instant>,
    /// Longest interval between two decoded frames.
    pub max_gap: Duration,
}

/// Everything the participant observed.
#[derive(Debug, Clone)]
pub struct ParticipantState {
    /// Own endpoint id (from `connected`).
    pub id: String,
    /// When `connect` was sent.
    pub joined_at: Instant,
    /// Other endpoints: id → metadata.
    pub endpoints: BTreeMap<String, Value>,
    /// Remote tracks announced and not removed: id → track.
    pub tracks: BTreeMap<String, RemoteTrack>,
    /// `error` media events received.
    pub errors: Vec<String>,
    /// `offerData` received.
    pub rounds: u32,
    /// `sdpAnswer` received.
    pub answers: u32,
    /// Last mid → track id map from the server.
    pub mid_to_track: BTreeMap<String, String>,
    /// Media event types received, in order.
    pub log: Vec<String>,
    /// Keyframes encoded so far per own video track id.
    pub sent_keyframes: BTreeMap<String, u64>,
}

impl ParticipantState {
    /// Remote tracks of `endpoint` that decoded at least `min_frames`.
    pub fn playing(&self, endpoint: &str, min_frames: u64) -> usize {
        self.tracks
            .values()
            .filter(|t| t.endpoint == endpoint && t.frames >= min_frames)
            .count()
    }

    /// Total decoded frames of all remote tracks.
    pub fn total_frames(&self) -> u64 {
        self.tracks.values().map(|t| t.frames).sum()
    }
}

enum Command {
    AddTrack {
        video: bool,
        metadata: Value,
        id: String,
    },
    /// A source built by the caller (custom description), with its fixed SSRC and track id.
    AddSource {
        video: bool,
        source: gst::Bin,
        ssrc: u32,
        id: String,
        metadata: Value,
    },
    RemoveTrack(String),
}

struct OwnTrack {
    id: String,
    metadata: Value,
    transceiver: WebRTCRTPTransceiver,
    source: gst::Bin,
    active: bool,
}

/// A running participant. Dropping it without [`Participant::leave`] also tears it down.
pub struct Participant {
    /// Own endpoint id.
    pub id: String,
    state: Arc<Mutex<ParticipantState>>,
    commands: mpsc::UnboundedSender<Command>,
    signalling: Signalling,
    pipeline: gst::Pipeline,
    task: JoinHandle<()>,
}

fn lock(state: &Mutex<ParticipantState>) -> std::sync::MutexGuard<'_, ParticipantState> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}

impl Participant {
    /// Joins the room, sends `connect`, and publishes the configured tracks once connected.
    pub async fn join(config: ParticipantConfig) -> Result<Participant, SignallingError> {
        Self::join_with(config, ParticipantOptions::default()).await
    }

    /// Like [`Participant::join`], with fault-injection `options`.
    pub async fn join_with(
        config: ParticipantConfig,
        options: ParticipantOptions,
    ) -> Result<Participant, SignallingError> {
        let (signalling, mut events) = Signalling::connect(&config.url, &config.room).await?;
        let pipeline = gst::Pipeline::with_name(&format!("client-{}", config.name));
        let webrtc = gst::ElementFactory::make("webrtcbin")
            .property_from_str("bundle-policy", "max-bundle")
            .property("latency", 100u32)
            .build()
            .map_err(|e| SignallingError::Connect(e.to_string()))?;
        pipeline
            .add(&webrtc)
            .map_err(|e| SignallingError::Connect(e.to_string()))?;
        if let Some(ice) = webrtc.property::<Option<glib::Object>>("ice-agent") {
            ice.emit_by_name::<bool>("add-local-ip-address", &[&"127.0.0.1"]);
        }
        let state = Arc::new(Mutex::new(ParticipantState {
            id: String::new(),
            joined_at: Instant::now(),
            endpoints: BTreeMap::new(),
            tracks: BTreeMap::new(),
            errors: Vec::new(),
            rounds: 0,
            answers: 0,
            mid_to_track: BTreeMap::new(),
            log: Vec::new(),
            sent_keyframes: BTreeMap::new(),
        }));
        let (ice_tx, mut ice_rx) = mpsc::unbounded_channel::<(u32, String)>();
        webrtc.connect("on-ice-candidate", false, move |v| {
            let mline = v[1].get::<u32>().unwrap_or(0);
            if let Ok(c) = v[2].get::<String>() {
                let _ = ice_tx.send((mline, c));
            }
            None
        });
        connect_decoders(&pipeline, &webrtc, &state, options.keyframe_on_loss);
        pipeline
            .set_state(gst::State::Playing)
            .map_err(|e| SignallingError::Connect(e.to_string()))?;

        signalling
            .send(json!({"type": "connect", "data": {"metadata": {"displayName": config.name}}}));
        // Wait for `connected` to learn our id.
        let id = loop {
            match tokio::time::timeout(Duration::from_secs(10), events.recv()).await {
                Ok(Some(ev)) if ev["type"] == "connected" => {
                    let mut s = lock(&state);
                    s.log.push("connected".into());
                    s.id = ev["data"]["id"].as_str().unwrap_or_default().to_owned();
                    for e in ev["data"]["otherEndpoints"]
                        .as_array()
                        .into_iter()
                        .flatten()
                    {
                        if let Some(eid) = e["id"].as_str() {
                            s.endpoints.insert(eid.to_owned(), e["metadata"].clone());
                        }
                    }
                    break s.id.clone();
                }
                Ok(Some(ev)) => lock(&state).log.push(ev["type"].to_string()),
                _ => return Err(SignallingError::Closed),
            }
        };
        let (commands, mut cmd_rx) = mpsc::unbounded_channel();
        let mut session = Session {
            id: id.clone(),
            sig: signalling.clone(),
            pipeline: pipeline.clone(),
            webrtc,
            state: state.clone(),
            own: Vec::new(),
            recv: (0, 0),
            receive: config.receive,
            options,
        };
        if config.audio {
            let id = format!("{id}:{}", uuid::Uuid::new_v4());
            session.add_track(false, json!({"type": "audio", "active": true}), id);
        }
        if config.video {
            let id = format!("{id}:{}", uuid::Uuid::new_v4());
            session.add_track(true, json!({"type": "camera", "active": true}), id);
        }
        let task = tokio::spawn(async move {
            loop {
                tokio::select! {
                    ev = events.recv() => match ev {
                        Some(ev) => session.server_event(ev).await,
                        None => break,
                    },
                    Some((mline, c)) = ice_rx.recv() => {
                        let c = match &session.options.candidate_filter {
                            Some(f) => match f(CandidateDirection::ToServer, &c) {
                                Some(c) => c,
                                None => continue,
                            },
                            None => c,
                        };
                        session.sig.send(json!({"type": "custom", "data": {"type": "candidate",
                            "data": {"candidate": c, "sdpMLineIndex": mline}}}));
                    }
                    Some(cmd) = cmd_rx.recv() => match cmd {
                        Command::AddTrack { video, metadata, id } => {
                            session.add_track(video, metadata, id)
                        }
                        Command::AddSource { video, source, ssrc, id, metadata } => {
                            session.add_source(video, source, ssrc, id, metadata)
                        }
                        Command::RemoveTrack(id) => session.remove_track(&id),
                    },
                }
            }
        });
        Ok(Participant {
            id,
            state,
            commands,
            signalling,
            pipeline,
            task,
        })
    }

    /// A copy of what the participant observed so far.
    pub fn snapshot(&self) -> ParticipantState {
        lock(&self.state).clone()
    }

    /// Waits until `cond` holds on the state; returns the state, or an error naming `what`
    /// with the last state after `timeout`.
    pub async fn wait_until(
        &self,
        what: &str,
        timeout: Duration,
        cond: impl Fn(&ParticipantState) -> bool,
    ) -> Result<ParticipantState, String> {
        let deadline = Instant::now() + timeout;
        loop {
            {
                let s = lock(&self.state);
                if cond(&s) {
                    return Ok(s.clone());
                }
                if Instant::now() > deadline {
                    return Err(format!("timed out waiting for {what}: {s:#?}"));
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Publishes one more video track (e.g. a screen share) with this metadata; returns the
    /// new track's id.
    pub fn add_video_track(&self, metadata: Value) -> String {
        let id = format!("{}:{}", self.id, uuid::Uuid::new_v4());
        let _ = self.commands.send(Command::AddTrack {
            video: true,
            metadata,
            id: id.clone(),
        });
        id
    }

    /// Publishes a track whose media comes from a gst-launch style pipeline `description`
    /// ending in an RTP payloader (VP8 for `video`, Opus otherwise), e.g.
    /// `"videotestsrc is-live=true ! vp8enc deadline=1 ! rtpvp8pay"`. The payloader's `pt` and
    /// `ssrc` are set by the participant. Returns the new track's id.
    pub fn add_custom_track(
        &self,
        description: &str,
        video: bool,
        metadata: Value,
    ) -> Result<String, media::CustomSourceError> {
        let ssrc = rand_ssrc();
        let source = media::custom_source(video, description, ssrc)?;
        let id = format!("{}:{}", self.id, uuid::Uuid::new_v4());
        self.commands
            .send(Command::AddSource {
                video,
                source,
                ssrc,
                id: id.clone(),
                metadata,
            })
            .map_err(|_| media::CustomSourceError::Closed)?;
        Ok(id)
    }

    /// False once the connection to the server is gone (or the participant left).
    pub fn is_connected(&self) -> bool {
        !self.task.is_finished()
    }

    /// Stops publishing a track (its m-line becomes inactive).
    pub fn remove_track(&self, track_id: &str) {
        let _ = self
            .commands
            .send(Command::RemoveTrack(track_id.to_owned()));
    }

    /// Sends a raw media event (for tests of odd inputs).
    pub fn send_raw(&self, event: Value) -> bool {
        self.signalling.send(event)
    }

    /// Leaves the room and tears the pipeline down.
    pub async fn leave(self) {
        self.signalling.close();
        self.task.abort();
        let pipeline = self.pipeline.clone();
        let _ = tokio::task::spawn_blocking(move || pipeline.set_state(gst::State::Null)).await;
    }
}

impl Drop for Participant {
    fn drop(&mut self) {
        self.task.abort();
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}

/// Links every incoming stream of `webrtc` to a decoder that counts frames for its track.
fn connect_decoders(
    pipeline: &gst::Pipeline,
    webrtc: &gst::Element,
    state: &Arc<Mutex<ParticipantState>>,
    keyframe_on_loss: bool,
) {
    let pipeline = pipeline.downgrade();
    let state = state.clone();
    webrtc.connect_pad_added(move |_, pad| {
        if pad.direction() != gst::PadDirection::Src {
            return;
        }
        let Some(pipeline) = pipeline.upgrade() else {
            return;
        };
        let mid = pad
            .property::<Option<WebRTCRTPTransceiver>>("transceiver")
            .and_then(|t| t.mid())
            .map(|m| m.to_string())
            .unwrap_or_default();
        let video = pad
            .current_caps()
            .and_then(|c| c.structure(0).and_then(|s| s.get::<String>("media").ok()))
            .is_some_and(|m| m == "video");
        let track = lock(&state)
            .mid_to_track
            .get(&mid)
            .cloned()
            .unwrap_or_else(|| format!("mid:{mid}"));
        let counter_state = state.clone();
        let on_frame = move || {
            let now = Instant::now();
            let mut s = lock(&counter_state);
            let t = s.tracks.entry(track.clone()).or_default();
            t.frames += 1;
            if let Some(last) = t.last_frame {
                t.max_gap = t.max_gap.max(now - last);
            }
            t.first_frame.get_or_insert(now);
            t.last_frame = Some(now);
        };
        let Ok(bin) = media::decoder(video, keyframe_on_loss, on_frame) else {
            return;
        };
        if pipeline.add(&bin).is_err() {
            return;
        }
        let _ = bin.sync_state_with_parent();
        if let Some(sink) = bin.static_pad("sink") {
            if pad.link(&sink).is_err() {
                tracing::warn!(%mid, "client could not link a received stream");
            }
        }
    });
}

/// The participant's negotiation state, owned by its task.
struct Session {
    id: String,
    sig: Signalling,
    pipeline: gst::Pipeline,
    webrtc: gst::Element,
    state: Arc<Mutex<ParticipantState>>,
    own: Vec<OwnTrack>,
    /// Recvonly transceivers created so far (audio, video).
    recv: (usize, usize),
    /// Whether to add recvonly transceivers at all.
    receive: bool,
    options: ParticipantOptions,
}

impl Session {
    fn add_track(&mut self, video: bool, metadata: Value, id: String) {
        let pattern = if self.own.iter().any(|t| t.metadata["type"] == "camera") {
            "smpte"
        } else {
            "ball"
        };
        let ssrc = rand_ssrc();
        let Ok(source) = media::source(video, pattern, ssrc) else {
            return;
        };
        self.add_source(video, source, ssrc, id, metadata);
    }

    /// Links `source` (ending in a payloader sending with `ssrc`) to a new sendonly m-line and
    /// asks the server for a negotiation round.
    fn add_source(
        &mut self,
        video: bool,
        source: gst::Bin,
        ssrc: u32,
        id: String,
        metadata: Value,
    ) {
        let Some(sink) = self.webrtc.request_pad_simple("sink_%u") else {
            tracing::warn!("client webrtcbin refused a sink pad");
            return;
        };
        let Some(transceiver) = sink.property::<Option<WebRTCRTPTransceiver>>("transceiver") else {
            return;
        };
        transceiver.set_direction(WebRTCRTPTransceiverDirection::Sendonly);
        let mut caps = media::rtp_caps(video);
        caps.make_mut().set("ssrc", ssrc);
        transceiver.set_property("codec-preferences", caps);
        if video {
            let (state, track) = (self.state.clone(), id.clone());
            media::count_keyframes(&source, move || {
                *lock(&state)
                    .sent_keyframes
                    .entry(track.clone())
                    .or_default() += 1;
            });
        }
        let _ = self.pipeline.add(&source);
        if let Some(src) = source.static_pad("src") {
            let _ = src.link(&sink);
        }
        let _ = source.sync_state_with_parent();
        self.own.push(OwnTrack {
            id,
            metadata,
            transceiver,
            source,
            active: true,
        });
        self.sig
            .send(json!({"type": "custom", "data": {"type": "renegotiateTracks"}}));
    }

    fn remove_track(&mut self, id: &str) {
        let Some(t) = self.own.iter_mut().find(|t| t.id == id && t.active) else {
            return;
        };
        t.active = false;
        t.transceiver
            .set_direction(WebRTCRTPTransceiverDirection::Inactive);
        if let Some(src) = t.source.static_pad("src") {
            if let Some(peer) = src.peer() {
                let _ = src.unlink(&peer);
                // webrtcbin blocks a sink pad until its transceiver is negotiated: a track
                // removed before that has its streaming thread parked there, and stopping the
                // source would wait for it forever. Deactivating the now unused pad (flushing,
                // local to it) releases the thread.
                let _ = peer.set_active(false);
            }
        }
        let _ = t.source.set_state(gst::State::Null);
        let _ = self.pipeline.remove(&t.source);
        self.sig
            .send(json!({"type": "custom", "data": {"type": "renegotiateTracks"}}));
    }

    async fn server_event(&mut self, ev: Value) {
        // Custom events are wrapped once.
        let ev = if ev["type"] == "custom" {
            ev["data"].clone()
        } else {
            ev
        };
        let kind = ev["type"].as_str().unwrap_or_default().to_owned();
        let data = &ev["data"];
        {
            let mut s = lock(&self.state);
            s.log.push(kind.clone());
            match kind.as_str() {
                "endpointAdded" | "endpointUpdated" => {
                    if let Some(id) = data["id"].as_str() {
                        s.endpoints.insert(id.to_owned(), data["metadata"].clone());
                    }
                }
                "endpointRemoved" => {
                    let id = data["id"].as_str().unwrap_or_default().to_owned();
                    s.endpoints.remove(&id);
                    s.tracks.retain(|_, t| t.endpoint != id);
                }
                "tracksAdded" => {
                    let owner = data["endpointId"].as_str().unwrap_or_default();
                    for (tid, info) in data["tracks"].as_object().into_iter().flatten() {
                        let t = s.tracks.entry(tid.clone()).or_default();
                        t.endpoint = owner.to_owned();
                        t.metadata = info["metadata"].clone();
                    }
                }
                "tracksRemoved" => {
                    for tid in data["trackIds"].as_array().into_iter().flatten() {
                        if let Some(tid) = tid.as_str() {
                            s.tracks.remove(tid);
                        }
                    }
                }
                "trackUpdated" => {
                    if let Some(t) = data["trackId"].as_str().and_then(|t| s.tracks.get_mut(t)) {
                        t.metadata = data["metadata"].clone();
                    }
                }
                "error" => s
                    .errors
                    .push(data["message"].as_str().unwrap_or_default().to_owned()),
                _ => {}
            }
        }
        match kind.as_str() {
            "offerData" => {
                let audio = data["tracksTypes"]["audio"].as_u64().unwrap_or(0) as usize;
                let video = data["tracksTypes"]["video"].as_u64().unwrap_or(0) as usize;
                lock(&self.state).rounds += 1;
                if let Err(e) = self.offer(audio, video).await {
                    lock(&self.state)
                        .errors
                        .push(format!("client offer failed: {e}"));
                }
            }
            "sdpAnswer" => {
                if let Err(e) = self.answer(data).await {
                    lock(&self.state)
                        .errors
                        .push(format!("client answer failed: {e}"));
                }
            }
            "candidate" => {
                let mline = data["sdpMLineIndex"].as_u64().unwrap_or(0) as u32;
                let filtered = match (&self.options.candidate_filter, data["candidate"].as_str()) {
                    (Some(f), Some(c)) => f(CandidateDirection::FromServer, c),
                    (None, c) => c.map(str::to_owned),
                    _ => None,
                };
                if let Some(c) = filtered.as_deref() {
                    self.webrtc
                        .emit_by_name::<()>("add-ice-candidate", &[&mline, &c]);
                }
            }
            _ => {}
        }
    }

    async fn offer(&mut self, audio: usize, video: usize) -> Result<(), String> {
        // The Membrane client adds recvonly transceivers up to the asked counts, audio first.
        let (audio, video) = if self.receive { (audio, video) } else { (0, 0) };
        for (want, is_video) in [(audio, false), (video, true)] {
            let have = if is_video { self.recv.1 } else { self.recv.0 };
            for _ in have..want {
                self.webrtc.emit_by_name::<WebRTCRTPTransceiver>(
                    "add-transceiver",
                    &[
                        &WebRTCRTPTransceiverDirection::Recvonly,
                        &media::rtp_caps(is_video),
                    ],
                );
            }
            if is_video {
                self.recv.1 = self.recv.1.max(want);
            } else {
                self.recv.0 = self.recv.0.max(want);
            }
        }
        let (promise, fut) = gst::Promise::new_future();
        self.webrtc
            .emit_by_name::<()>("create-offer", &[&None::<gst::Structure>, &promise]);
        let reply = fut.await.map_err(|e| format!("{e:?}"))?.ok_or("no offer")?;
        let offer = reply
            .value("offer")
            .map_err(|e| e.to_string())?
            .get::<gst_webrtc::WebRTCSessionDescription>()
            .map_err(|e| e.to_string())?;
        let (promise, fut) = gst::Promise::new_future();
        self.webrtc
            .emit_by_name::<()>("set-local-description", &[&offer, &promise]);
        let _ = fut.await;
        let sdp = offer.sdp().as_text().map_err(|e| e.to_string())?;
        tracing::trace!(id = %self.id, %sdp, "client offer");
        let mut mids = serde_json::Map::new();
        let mut metadata = serde_json::Map::new();
        for t in &self.own {
            if !t.active {
                continue;
            }
            metadata.insert(t.id.clone(), t.metadata.clone());
            // webrtcbin 1.22 assigns mids only once the answer is applied; in the offer the
            // transceiver is named by its `a=ssrc … msid:<stream> <transceiver name>` line.
            let mid = mid_of_transceiver(&sdp, t.transceiver.name().as_str())
                .or_else(|| t.transceiver.mid().map(|m| m.to_string()));
            if let Some(mid) = mid {
                mids.insert(mid, json!(t.id));
            }
        }
        self.sig.send(
            json!({"type": "custom", "data": {"type": "sdpOffer", "data": {
                "sdpOffer": {"type": "offer", "sdp": sdp},
                "trackIdToTrackMetadata": metadata,
                "trackIdToTrackBitrates": {},
                "midToTrackId": mids,
            }}}),
        );
        Ok(())
    }

    async fn answer(&mut self, data: &Value) -> Result<(), String> {
        let sdp = data["sdp"].as_str().ok_or("answer without sdp")?;
        let filtered = self
            .options
            .candidate_filter
            .as_ref()
            .map(|f| options::filter_sdp(sdp, f));
        let sdp = filtered.as_deref().unwrap_or(sdp);
        tracing::trace!(id = %self.id, %sdp, "client got answer");
        {
            let mut s = lock(&self.state);
            s.answers += 1;
            s.mid_to_track = data["midToTrackId"]
                .as_object()
                .into_iter()
                .flatten()
                .filter_map(|(m, t)| Some((m.clone(), t.as_str()?.to_owned())))
                .collect();
            let map = s.mid_to_track.clone();
            for (mid, tid) in map {
                if let Some(t) = s.tracks.get_mut(&tid) {
                    t.mid = Some(mid);
                }
            }
        }
        let msg = gst_sdp::SDPMessage::parse_buffer(sdp.as_bytes()).map_err(|e| e.to_string())?;
        let answer = gst_webrtc::WebRTCSessionDescription::new(WebRTCSDPType::Answer, msg);
        let (promise, fut) = gst::Promise::new_future();
        self.webrtc
            .emit_by_name::<()>("set-remote-description", &[&answer, &promise]);
        let _ = fut.await;
        Ok(())
    }
}

/// The mid of the m-line whose `a=ssrc` msid names `transceiver`.
fn mid_of_transceiver(sdp: &str, transceiver: &str) -> Option<String> {
    let mut mid = None;
    let mut found = false;
    for line in sdp.lines().map(|l| l.trim_end_matches('\r')) {
        if line.starts_with("m=") {
            if found {
                return mid;
            }
            mid = None;
        } else if let Some(m) = line.strip_prefix("a=mid:") {
            mid = Some(m.to_owned());
        } else if line.starts_with("a=ssrc:")
            && line.contains(" msid:")
            && line.split_whitespace().last() == Some(transceiver)
        {
            found = true;
        }
    }
    if found {
        mid
    } else {
        None
    }
}

fn rand_ssrc() -> u32 {
    let b = *uuid::Uuid::new_v4().as_bytes();
    u32::from_le_bytes([b[0], b[1], b[2], b[3]]) | 1
}
