//! Test support: a harness that plays the room (builds OfferPlans from the clients' offers,
//! relays SDP and candidates) around one RoomPipeline and several webrtcbin [`Client`]s.
#![allow(dead_code)]

pub mod client;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard, Once};
use std::time::{Duration, Instant};

use lamina_pipelines::{
    MediaCommand, MediaError, MediaEvent, OfferPlan, PeerId, PipelineConfig, RoomPipeline, TrackId,
};

/// The seam's commands spelled as calls, for readable tests (each is one
/// [`RoomPipeline::execute`]).
pub trait Commands {
    /// `MediaCommand::AddPeer`.
    fn add_peer(&mut self, peer: &PeerId) -> Result<(), MediaError>;
    /// `MediaCommand::RemovePeer`.
    fn remove_peer(&mut self, peer: &PeerId);
    /// `MediaCommand::HandleOffer`.
    fn handle_offer(&mut self, peer: &PeerId, plan: OfferPlan) -> Result<(), MediaError>;
    /// `MediaCommand::AddCandidate`.
    fn add_remote_candidate(&mut self, peer: &PeerId, mline: u32, candidate: &str);
}

impl Commands for RoomPipeline {
    fn add_peer(&mut self, peer: &PeerId) -> Result<(), MediaError> {
        self.execute(MediaCommand::AddPeer(peer.clone()))
    }
    fn remove_peer(&mut self, peer: &PeerId) {
        self.execute(MediaCommand::RemovePeer(peer.clone()))
            .expect("removing never fails");
    }
    fn handle_offer(&mut self, peer: &PeerId, plan: OfferPlan) -> Result<(), MediaError> {
        self.execute(MediaCommand::HandleOffer {
            peer: peer.clone(),
            plan,
        })
    }
    fn add_remote_candidate(&mut self, peer: &PeerId, mline: u32, candidate: &str) {
        let _ = self.execute(MediaCommand::AddCandidate {
            peer: peer.clone(),
            mline,
            candidate: candidate.to_owned(),
        });
    }
}
use tokio::sync::mpsc::UnboundedReceiver;

pub use client::Client;

static SERIAL: Mutex<()> = Mutex::new(());
static INIT: Once = Once::new();

/// Tests of one binary run one at a time (2 cores, real media).
pub fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

pub fn init() {
    INIT.call_once(|| {
        gst::init().unwrap();
        gstlamina::plugin_register_static().unwrap();
        lamina_pipelines::prewarm();
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
    });
}

/// Aborts the whole test process if the guard is still alive after `secs` (a hang must fail,
/// not block CI).
pub struct Watchdog(Option<std::sync::mpsc::Sender<()>>);

impl Watchdog {
    pub fn new(name: &'static str, secs: u64) -> Self {
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        std::thread::spawn(move || {
            if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                rx.recv_timeout(Duration::from_secs(secs))
            {
                eprintln!("WATCHDOG: test {name} still running after {secs} s, aborting");
                std::process::abort();
            }
        });
        Self(Some(tx))
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        drop(self.0.take());
    }
}

/// Rewrites a candidate on its way between the server and a client (UDP relay tests).
pub type CandidateHook = Box<dyn FnMut(Direction, &str, &str) -> Option<String>>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Server candidate for the named client.
    ToClient,
    /// Client candidate for the server.
    ToServer,
}

/// A client as the room sees it.
pub struct Member {
    pub client: Client,
    pub publish: bool,
    /// mid → remote track carried (None: inactive).
    pub recv: BTreeMap<String, Option<TrackId>>,
    /// mids used once (never reused, like Membrane).
    pub used: Vec<String>,
    /// mid → mline.
    pub mlines: HashMap<String, u32>,
    pub rounds: u32,
    pub connected: u32,
}

pub struct Harness {
    pub room: RoomPipeline,
    pub events: UnboundedReceiver<MediaEvent>,
    pub members: BTreeMap<String, Member>,
    pub published: HashMap<TrackId, (PeerId, String)>,
    pub answers: HashMap<String, String>,
    pub failures: Vec<MediaEvent>,
    pub hook: Option<CandidateHook>,
    pub log: Vec<(Instant, MediaEvent)>,
    /// The server's candidates per peer, as emitted (before the hook).
    pub server_candidates: HashMap<String, Vec<(u32, String)>>,
    /// Kinds of tracks as the room learns them from the publishers' offers (true = video).
    pub kinds: HashMap<TrackId, bool>,
}

pub fn config(name: &str) -> PipelineConfig {
    PipelineConfig {
        name: name.into(),
        ice_addresses: vec!["127.0.0.1".parse().unwrap()],
        ice_port_range: (0, 0),
        latency_ms: 30,
        downlink_estimation: true,
    }
}

impl Harness {
    pub fn new(name: &str) -> Self {
        Self::with_config(config(name))
    }

    pub fn with_config(config: PipelineConfig) -> Self {
        init();
        let (room, events) = RoomPipeline::new(config).unwrap();
        Self::with_room(room, events)
    }

    pub fn with_room(room: RoomPipeline, events: UnboundedReceiver<MediaEvent>) -> Self {
        Self {
            room,
            events,
            members: BTreeMap::new(),
            published: HashMap::new(),
            answers: HashMap::new(),
            failures: Vec::new(),
            hook: None,
            log: Vec::new(),
            server_candidates: HashMap::new(),
            kinds: HashMap::new(),
        }
    }

    /// Moves events and candidates once.
    pub fn pump(&mut self) {
        while let Ok(ev) = self.events.try_recv() {
            self.log.push((Instant::now(), ev.clone()));
            match ev {
                MediaEvent::LocalCandidate {
                    peer,
                    mline,
                    candidate,
                } => {
                    self.server_candidates
                        .entry(peer.to_string())
                        .or_default()
                        .push((mline, candidate.clone()));
                    self.send_to_client(peer.as_str(), mline, &candidate);
                }
                MediaEvent::AnswerReady { peer, sdp } => {
                    self.answers.insert(peer.to_string(), sdp);
                }
                MediaEvent::PeerConnected { peer } => {
                    if let Some(m) = self.members.get_mut(peer.as_str()) {
                        m.connected += 1;
                    }
                }
                MediaEvent::TrackPublished {
                    peer, track, codec, ..
                } => {
                    self.published.insert(track, (peer, codec));
                }
                other => {
                    eprintln!("failure event: {other:?}");
                    self.failures.push(other);
                }
            }
        }
        let names: Vec<String> = self.members.keys().cloned().collect();
        for name in names {
            let cands = self
                .members
                .get_mut(&name)
                .unwrap()
                .client
                .take_candidates();
            for (mline, c) in cands {
                let c = match &mut self.hook {
                    Some(h) => h(Direction::ToServer, &name, &c),
                    None => Some(c),
                };
                if let Some(c) = c {
                    self.room
                        .add_remote_candidate(&PeerId::from(name.as_str()), mline, &c);
                }
            }
        }
    }

    fn send_to_client(&mut self, name: &str, mline: u32, candidate: &str) {
        let c = match &mut self.hook {
            Some(h) => h(Direction::ToClient, name, candidate),
            None => Some(candidate.to_owned()),
        };
        if let (Some(m), Some(c)) = (self.members.get_mut(name), c) {
            m.client.add_candidate(mline, &c);
        }
    }

    /// Pumps until `cond` holds; false on timeout.
    pub fn wait(&mut self, timeout: Duration, mut cond: impl FnMut(&Harness) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            self.pump();
            if cond(self) {
                return true;
            }
            if Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    pub fn join(&mut self, name: &str, publish: bool) {
        self.room.add_peer(&PeerId::from(name)).unwrap();
        self.members.insert(
            name.to_owned(),
            Member {
                client: Client::new(name, publish),
                publish,
                recv: BTreeMap::new(),
                used: Vec::new(),
                mlines: HashMap::new(),
                rounds: 0,
                connected: 0,
            },
        );
    }

    pub fn leave(&mut self, name: &str) {
        self.room.remove_peer(&PeerId::from(name));
        self.members.remove(name);
    }

    /// Track id of a client's own m-line.
    pub fn track_id(name: &str, mid: &str) -> TrackId {
        TrackId::new(format!("{name}:{mid}"))
    }

    /// Tracks published (media arrived) by `name`, (audio, video).
    pub fn tracks_of(&self, name: &str) -> Vec<TrackId> {
        let mut v: Vec<TrackId> = self
            .published
            .iter()
            .filter(|(_, (p, _))| p.as_str() == name)
            .map(|(t, _)| t.clone())
            .collect();
        v.sort();
        v
    }

    pub fn is_video(&self, track: &TrackId) -> bool {
        if let Some(v) = self.kinds.get(track) {
            return *v;
        }
        self.published
            .get(track)
            .is_some_and(|(_, c)| c.eq_ignore_ascii_case("VP8"))
    }

    /// One negotiation round for `name`, the way the Membrane client and engine do it: the
    /// client adds missing recvonly transceivers, (re)offers (with an ICE restart when
    /// `restart`), the room answers sending `want` on recvonly m-lines, and the round ends at
    /// the next PeerConnected. Returns the offer's m-lines.
    pub fn round(
        &mut self,
        name: &str,
        want: &[TrackId],
        publish_mids: Option<&[&str]>,
        restart: bool,
    ) -> Vec<client::OfferedMline> {
        let want_video: Vec<bool> = want.iter().map(|t| self.is_video(t)).collect();
        let m = self.members.get_mut(name).unwrap();
        // Keep existing assignments; free the ones not wanted any more.
        for slot in m.recv.values_mut() {
            if slot.as_ref().is_some_and(|t| !want.contains(t)) {
                *slot = None;
            }
        }
        let mut new: Vec<(TrackId, bool)> = want
            .iter()
            .zip(want_video.iter())
            .filter(|(t, _)| !m.recv.values().any(|x| x.as_ref() == Some(*t)))
            .map(|(t, v)| (t.clone(), *v))
            .collect();
        for (_, video) in &new {
            m.client.add_recv(*video);
        }
        let offer = m.client.create_offer(restart);
        let mlines = Client::offered(&offer);
        let mut publish = Vec::new();
        for ml in &mlines {
            m.mlines.insert(ml.mid.clone(), ml.mline);
            if ml.sendonly && m.publish && publish_mids.is_none_or(|p| p.contains(&ml.mid.as_str()))
            {
                let t = Self::track_id(name, &ml.mid);
                self.kinds.insert(t.clone(), ml.video);
                publish.push((ml.mid.clone(), t));
            }
            if ml.recvonly && !m.recv.contains_key(&ml.mid) && !m.used.contains(&ml.mid) {
                // A fresh recvonly m-line: give it the next new track of its kind.
                let pos = new.iter().position(|(_, v)| *v == ml.video);
                let track = pos.map(|p| new.remove(p).0);
                m.used.push(ml.mid.clone());
                m.recv.insert(ml.mid.clone(), track);
            }
        }
        assert!(new.is_empty(), "not enough recvonly m-lines for {new:?}");
        let subscribe: Vec<(String, Option<TrackId>)> = m
            .recv
            .iter()
            .map(|(mid, t)| (mid.clone(), t.clone()))
            .collect();
        let connected_before = m.connected;
        m.rounds += 1;
        let peer = PeerId::from(name);
        self.answers.remove(name);
        self.room
            .handle_offer(
                &peer,
                OfferPlan::new(offer, publish, subscribe).expect("offer summarises"),
            )
            .unwrap();
        let n = name.to_owned();
        assert!(
            self.wait(Duration::from_secs(10), |h| h.answers.contains_key(&n)),
            "no answer for {name}"
        );
        let answer = self.answers[name].clone();
        let m = self.members.get_mut(name).unwrap();
        m.client.set_answer(&answer);
        if restart {
            // The client's own restart dropped the server's candidates: a browser keeps them
            // (the server's ufrag did not change), so add them again.
            let server = self
                .server_candidates
                .get(name)
                .cloned()
                .unwrap_or_default();
            for (mline, c) in server {
                self.send_to_client(name, mline, &c);
            }
            let m = self.members.get_mut(name).unwrap();
            // New generation of the client's candidates (same addresses).
            let own = m.client.own_candidates.clone();
            for (mline, c) in own {
                let c = match &mut self.hook {
                    Some(h) => h(Direction::ToServer, name, &c),
                    None => Some(c),
                };
                if let Some(c) = c {
                    self.room.add_remote_candidate(&peer, mline, &c);
                }
            }
        }
        assert!(
            self.wait(Duration::from_secs(10), |h| h.members[&n].connected
                > connected_before),
            "{name} not connected after round"
        );
        mlines
    }

    /// mline on which `name` receives `track`.
    pub fn mline_of(&self, name: &str, track: &TrackId) -> Option<u32> {
        let m = &self.members[name];
        let mid = m.recv.iter().find(|(_, t)| t.as_ref() == Some(track))?.0;
        m.mlines.get(mid).copied()
    }

    /// Decoded video frames (or audio RTP buffers) `name` got for `track`.
    pub fn received(&self, name: &str, track: &TrackId) -> u64 {
        self.mline_of(name, track)
            .map_or(0, |ml| self.members[name].client.stats(ml).buffers)
    }

    /// Waits until `name` got `n` more buffers of `track` than now.
    pub fn wait_media(&mut self, name: &str, track: &TrackId, n: u64, timeout: Duration) -> bool {
        let base = self.received(name, track);
        let (name, track) = (name.to_owned(), track.clone());
        self.wait(timeout, move |h| h.received(&name, &track) >= base + n)
    }
}

impl Harness {
    /// Joins `name` (publishing camera + microphone) into a room where everybody receives
    /// everybody: the newcomer's round subscribes all published tracks, then every other
    /// member renegotiates (with an ICE restart, like the Membrane client) to get the
    /// newcomer's tracks.
    pub fn join_mesh(&mut self, name: &str) {
        self.join(name, true);
        let others: Vec<TrackId> = self.published.keys().cloned().collect();
        let mut want = others;
        want.sort();
        self.round(name, &want, None, false);
        let n = name.to_owned();
        assert!(
            self.wait(Duration::from_secs(10), |h| h.tracks_of(&n).len() == 2),
            "{name}'s tracks not published"
        );
        let members: Vec<String> = self
            .members
            .keys()
            .filter(|m| *m != name)
            .cloned()
            .collect();
        for m in members {
            let mut want: Vec<TrackId> = self
                .published
                .iter()
                .filter(|(_, (p, _))| p.as_str() != m)
                .map(|(t, _)| t.clone())
                .collect();
            want.sort();
            self.round(&m, &want, None, true);
        }
    }

    /// Every member gets at least `n` more video frames and audio buffers of every other
    /// member's tracks.
    pub fn assert_all_receive(&mut self, n: u64) {
        let names: Vec<String> = self.members.keys().cloned().collect();
        for who in &names {
            let tracks: Vec<TrackId> = self
                .published
                .iter()
                .filter(|(_, (p, _))| p.as_str() != who)
                .map(|(t, _)| t.clone())
                .collect();
            for t in tracks {
                assert!(
                    self.wait_media(who, &t, n, Duration::from_secs(10)),
                    "{who} got no media of {t}"
                );
            }
        }
    }
}

/// Threads of this process.
pub fn thread_count() -> usize {
    std::fs::read_dir("/proc/self/task").map_or(0, |d| d.count())
}
