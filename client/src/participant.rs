//! [`Participant`]: a webrtcbin peer in a Lamina room, driven by the room's media events.
//!
//! Its negotiation (the [`Session`] its task drives) lives in `session.rs`, what it observed in
//! `state.rs`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gst::prelude::*;
use lamina_protocol::media_event::{ClientEvent, ServerEvent};
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::media;
use crate::options::{CandidateDirection, ParticipantOptions};
use crate::session::{rand_ssrc, Command, Sending, Session};
use crate::signalling::{Signalling, SignallingError};
use crate::state::{connect_decoders, lock, ParticipantState};

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

/// A running participant. Dropping it without [`Participant::leave`] also tears it down.
pub struct Participant {
    /// Own endpoint id.
    pub id: String,
    state: Arc<Mutex<ParticipantState>>,
    commands: mpsc::UnboundedSender<Command>,
    signalling: Signalling,
    pipeline: gst::Pipeline,
    webrtc: gst::Element,
    task: JoinHandle<()>,
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
            vad: Vec::new(),
            encoding_switches: Vec::new(),
            bandwidth_estimation: None,
            bandwidth_estimations: Vec::new(),
            sent_layer_keyframes: BTreeMap::new(),
            last_answer: None,
            bus_errors: Vec::new(),
            twcc_feedback_sent: 0,
        }));
        record_bus_errors(&pipeline, &state);
        let (ice_tx, mut ice_rx) = mpsc::unbounded_channel::<(u32, String)>();
        webrtc.connect("on-ice-candidate", false, move |v| {
            let mline = v[1].get::<u32>().unwrap_or(0);
            if let Ok(c) = v[2].get::<String>() {
                let _ = ice_tx.send((mline, c));
            }
            None
        });
        connect_decoders(&pipeline, &webrtc, &state, options.keyframe_on_loss);
        media::browser_like_feedback(&webrtc);
        let feedback_state = state.clone();
        media::count_twcc_feedback(&webrtc, move || {
            lock(&feedback_state).twcc_feedback_sent += 1
        });
        let layer_payloaders = media::LayerPayloaders::default();
        media::route_layer_keyframe_requests(&webrtc, layer_payloaders.clone());
        pipeline
            .set_state(gst::State::Playing)
            .map_err(|e| SignallingError::Connect(e.to_string()))?;

        signalling.send(&ClientEvent::Connect {
            metadata: json!({"displayName": config.name}),
        });
        // Wait for `connected` to learn our id.
        let id = loop {
            match tokio::time::timeout(Duration::from_secs(10), events.recv()).await {
                Ok(Some(ServerEvent::Connected {
                    id,
                    other_endpoints,
                })) => {
                    let mut s = lock(&state);
                    s.log.push("connected".into());
                    s.id = id.clone();
                    for e in other_endpoints {
                        s.endpoints.insert(e.id, e.metadata);
                    }
                    break id;
                }
                Ok(Some(ev)) => lock(&state).log.push(ev.kind().into()),
                _ => return Err(SignallingError::Closed),
            }
        };
        let (commands, mut cmd_rx) = mpsc::unbounded_channel();
        let mut session = Session {
            id: id.clone(),
            sig: signalling.clone(),
            pipeline: pipeline.clone(),
            webrtc: webrtc.clone(),
            state: state.clone(),
            own: Vec::new(),
            recv: (0, 0),
            receive: config.receive,
            options,
            layer_payloaders,
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
                        session.sig.send(&ClientEvent::Candidate {
                            candidate: c,
                            sdp_mline_index: mline,
                        });
                    }
                    Some(cmd) = cmd_rx.recv() => match cmd {
                        Command::AddTrack { video, metadata, id } => {
                            session.add_track(video, metadata, id)
                        }
                        Command::AddSource { video, source, ssrc, id, metadata } => {
                            session.add_source(video, source, Sending::Single(ssrc), id, metadata)
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
            webrtc,
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

    /// The participant's `webrtcbin`, for tests that read or tamper with its internals (its
    /// `rtpbin`, RTX elements, RTCP).
    pub fn webrtcbin(&self) -> gst::Element {
        self.webrtc.clone()
    }

    /// Sends a media event; `false` if the connection is gone.
    pub fn send(&self, event: &ClientEvent) -> bool {
        self.signalling.send(event)
    }

    /// Asks the server for the simulcast layer `variant` (a RID: `"l"`, `"m"`, `"h"`) of the
    /// remote track `track_id` (custom `setTargetTrackVariant`, what membrane-webrtc-js's
    /// `setTargetTrackEncoding` sends). The server answers with `encodingSwitched` once it
    /// forwards that layer ([`ParticipantState::encoding_switches`]). `false` if the
    /// connection is gone.
    pub fn set_target_variant(&self, track_id: &str, variant: &str) -> bool {
        self.signalling.send(&ClientEvent::SetTargetTrackVariant {
            track_id: track_id.to_owned(),
            variant: variant.to_owned(),
        })
    }

    /// Sends any JSON as a media event, unchecked (for tests of odd inputs).
    pub fn send_raw(&self, event: Value) -> bool {
        self.signalling.send_raw(&event)
    }

    /// Leaves the room and tears the pipeline down.
    pub async fn leave(self) {
        self.signalling.close();
        self.task.abort();
        let pipeline = self.pipeline.clone();
        let _ = tokio::task::spawn_blocking(move || pipeline.set_state(gst::State::Null)).await;
    }
}

/// Records the errors and warnings posted on `pipeline`'s bus (decoders report frames they
/// cannot decode as warnings) into the state's `bus_errors`; the messages stay on the bus.
fn record_bus_errors(pipeline: &gst::Pipeline, state: &Arc<Mutex<ParticipantState>>) {
    let Some(bus) = pipeline.bus() else {
        return;
    };
    let state = Arc::downgrade(state);
    bus.set_sync_handler(move |_, msg| {
        let text = match msg.view() {
            gst::MessageView::Error(e) => Some(format!("error: {}", e.error())),
            gst::MessageView::Warning(w) => Some(format!("warning: {}", w.error())),
            _ => None,
        };
        if let (Some(text), Some(state)) = (text, state.upgrade()) {
            let from = msg.src().map(|s| s.name().to_string()).unwrap_or_default();
            let mut s = lock(&state);
            // Bounded: a storm of warnings must not grow the state forever.
            if s.bus_errors.len() < 1000 {
                s.bus_errors.push(format!("{from}: {text}"));
            }
        }
        gst::BusSyncReply::Pass
    });
}

impl Drop for Participant {
    fn drop(&mut self) {
        self.task.abort();
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}
