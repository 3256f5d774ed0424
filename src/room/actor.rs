//! The room actor: a tokio task that owns a room's peers, its [`RoomCore`] and its media
//! backend, and executes the core's [`Effect`]s. No lock guards any room state: everything
//! happens in this task.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{mpsc, watch};
use tracing::Instrument;

use super::core::{Effect, Limits, Outcome, RoomCore, TurnProvider};
use super::media::{BackendFactory, MediaBackend};
use super::registry::RoomSpawner;

/// How often the room core re-decides time-driven things (bandwidth probes) when no event
/// arrives.
const TICK: Duration = Duration::from_millis(250);
use super::stats::ForwardTally;
use super::{
    JoinError, PeerOutbound, PeerSender, RoomCommand, RoomHandle, RoomId, RoomStats, Rooms,
};
use crate::media_event::{self, ServerEvent};
use crate::metrics::{self, NegotiationFailure};
use crate::PeerId;
use lamina_pipelines::{MediaCommand, MediaEvent};

/// How long a stopping room waits for its media engine to be torn down (pipeline NULL).
pub const ENGINE_STOP_TIMEOUT: Duration = Duration::from_secs(3);

/// What every room actor shares.
pub struct RoomContext {
    /// Room limits.
    pub limits: Limits,
    /// TURN servers handed to peers.
    pub turn: Arc<dyn TurnProvider>,
    /// Creates each room's media backend.
    pub backend: Box<BackendFactory>,
}

/// A spawner for [`Rooms`] that starts room actors with this context.
pub fn spawner(ctx: Arc<RoomContext>) -> Box<RoomSpawner> {
    Box::new(move |id: RoomId, rooms: Rooms| spawn(id, ctx.clone(), rooms))
}

/// Starts the actor of room `id`.
pub fn spawn(id: RoomId, ctx: Arc<RoomContext>, rooms: Rooms) -> RoomHandle {
    let (tx, rx) = mpsc::channel::<RoomCommand>(1024);
    let (done_tx, done) = watch::channel(());
    let handle = RoomHandle::with_done(id.clone(), tx, done);
    let me = handle.clone();
    // Every line logged by the room (its core included) carries the room id.
    let span = tracing::info_span!("room", room = %id);
    tokio::spawn(
        async move {
            run(id, ctx, rx).await;
            rooms.remove(&me);
            drop(done_tx);
        }
        .instrument(span),
    );
    handle
}

struct Actor {
    id: RoomId,
    core: RoomCore,
    senders: HashMap<PeerId, PeerSender>,
    backend: Option<Box<dyn MediaBackend>>,
    timers: mpsc::UnboundedSender<(PeerId, u64)>,
    closing: bool,
    forwarded: ForwardTally,
}

async fn run(id: RoomId, ctx: Arc<RoomContext>, mut rx: mpsc::Receiver<RoomCommand>) {
    let (backend, mut events) = match (ctx.backend)(&id) {
        Ok((b, e)) => (Some(b), e),
        Err(e) => {
            tracing::error!(room = %id, error = %e, "room media engine failed to start");
            refuse_all(&mut rx).await;
            return;
        }
    };
    let (timers, mut timer_rx) = mpsc::unbounded_channel();
    let mut actor = Actor {
        id: id.clone(),
        core: RoomCore::new(ctx.limits, ctx.turn.clone()),
        senders: HashMap::new(),
        backend,
        timers,
        closing: false,
        forwarded: ForwardTally::default(),
    };
    tracing::info!(room = %id, "room started");
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while !actor.closing {
        tokio::select! {
            _ = tick.tick() => {
                actor.advance();
                let fx = actor.core.tick();
                actor.apply(fx);
            }
            cmd = rx.recv() => match cmd {
                Some(cmd) => actor.command(cmd),
                None => break,
            },
            Some(ev) = events.recv() => {
                tracing::debug!(room = %id, event = ?short(&ev), "media event");
                actor.advance();
                let fx = actor.core.media_event(ev);
                actor.apply(fx);
            }
            Some((peer, round)) = timer_rx.recv() => {
                actor.advance();
                let fx = actor.core.round_timeout(&peer, round);
                actor.apply(fx);
            }
        }
    }
    rx.close();
    for (_, s) in actor.senders.drain() {
        let _ = s.try_send(PeerOutbound::Closed {
            error: Some("room closed".into()),
        });
    }
    actor.refresh_forwarded();
    let (packets, bytes) = actor.forwarded.total();
    metrics::forwarded_retired(packets, bytes);
    if let Some(b) = actor.backend.as_ref() {
        metrics::repair_retired(&b.repair());
    }
    if let Some(b) = actor.backend.take() {
        if tokio::time::timeout(ENGINE_STOP_TIMEOUT, b.shutdown_wait())
            .await
            .is_err()
        {
            tracing::warn!(room = %id, "media engine did not stop in time");
        }
    }
    tracing::info!(room = %id, packets, bytes, "room closed");
}

/// A room whose engine failed: answer joins with an error until the registry forgets it.
async fn refuse_all(rx: &mut mpsc::Receiver<RoomCommand>) {
    rx.close();
    while let Some(cmd) = rx.recv().await {
        if let RoomCommand::Join { reply, .. } = cmd {
            let _ = reply.send(Err(JoinError::StartFailed));
        }
    }
}

fn short(ev: &MediaEvent) -> String {
    let s = format!("{ev:?}");
    s.chars().take(160).collect()
}

impl Actor {
    /// Gives the core the time of the input about to be handled.
    fn advance(&mut self) {
        self.core
            .advance(std::time::Instant::now(), std::time::SystemTime::now());
    }

    fn command(&mut self, cmd: RoomCommand) {
        self.advance();
        match cmd {
            RoomCommand::Join {
                peer,
                outbound,
                display_name,
                reply,
            } => {
                let res = self.core.join(peer.clone());
                if res.is_ok() {
                    tracing::info!(room = %self.id, %peer, "peer joined");
                    if let Some(name) = display_name {
                        self.core.enforce_display_name(&peer, name);
                    }
                    self.senders.insert(peer, outbound);
                }
                let _ = reply.send(res);
            }
            RoomCommand::MediaEvent { peer, data } => {
                let fx = match media_event::decode(&data) {
                    Ok(ev) => self.core.client_event(&peer, ev),
                    Err(e) => {
                        tracing::warn!(room = %self.id, %peer, error = %e, "bad media event");
                        self.core.reject(&peer, e.to_string())
                    }
                };
                self.apply(fx);
            }
            RoomCommand::Chat { peer, text, reply } => {
                let verdict = match self.core.chat(&peer, text) {
                    Ok(fx) => {
                        self.apply(fx);
                        Ok(())
                    }
                    Err(e) => {
                        tracing::debug!(room = %self.id, %peer, reason = %e, "chat message refused");
                        Err(e)
                    }
                };
                let _ = reply.send(verdict);
            }
            RoomCommand::Leave { peer } => {
                if self.senders.remove(&peer).is_some() {
                    tracing::info!(room = %self.id, %peer, "peer left");
                }
                let fx = self.core.leave(&peer);
                self.apply(fx);
            }
            RoomCommand::Describe { reply } => {
                let _ = reply.send(self.describe());
            }
            RoomCommand::Stats { reply } => {
                self.refresh_forwarded();
                let (forwarded_packets, forwarded_bytes) = self.forwarded.total();
                let (repair, keyframe_requests) = match self.backend.as_ref() {
                    Some(b) => (
                        b.repair(),
                        self.core
                            .tracks()
                            .filter_map(|t| {
                                let (sent, dropped) = b.keyframe_requests(&t.id)?;
                                Some((t.id.clone(), sent, dropped))
                            })
                            .collect(),
                    ),
                    None => Default::default(),
                };
                let _ = reply.send(RoomStats {
                    peers: self.core.peer_count(),
                    tracks: self.core.tracks().count(),
                    forwarded_packets,
                    forwarded_bytes,
                    repair,
                    keyframe_requests,
                });
            }
            RoomCommand::Dot { reply } => {
                let _ = reply.send(self.backend.as_ref().and_then(|b| b.dot()));
            }
            RoomCommand::Tool(op) => match self.backend.as_ref() {
                Some(b) => b.tool(op),
                None => op.refuse("room has no media pipeline"),
            },
            RoomCommand::InjectFault { fault, reply } => {
                tracing::warn!(room = %self.id, %fault, "fault injection requested");
                let res = match self.backend.as_mut() {
                    Some(b) => b.inject_fault(&fault),
                    None => Err(lamina_pipelines::MediaError::NoMedia),
                };
                let _ = reply.send(res);
            }
            RoomCommand::Shutdown => {
                for (_, s) in self.senders.drain() {
                    let _ = s.try_send(PeerOutbound::MediaEvent(
                        ServerEvent::Error {
                            message: "server shutting down".into(),
                        }
                        .encode(),
                    ));
                    let _ = s.try_send(PeerOutbound::Closed { error: None });
                }
                self.closing = true;
            }
        }
    }

    /// Executes effects; peers whose queue overflowed are removed afterwards.
    fn apply(&mut self, effects: Vec<Effect>) {
        let mut queue = effects;
        while !queue.is_empty() {
            let mut dropped = Vec::new();
            for fx in queue.drain(..) {
                self.effect(fx, &mut dropped);
            }
            for peer in dropped {
                tracing::warn!(room = %self.id, %peer, "peer does not read its messages; removing it");
                self.senders.remove(&peer);
                queue.extend(self.core.leave(&peer));
            }
        }
    }

    fn effect(&mut self, fx: Effect, dropped: &mut Vec<PeerId>) {
        match fx {
            Effect::Push { peer, event } => {
                self.deliver(peer, || PeerOutbound::MediaEvent(event.encode()), dropped)
            }
            Effect::Chat { peer, message } => {
                self.deliver(peer, || PeerOutbound::Chat(message), dropped)
            }
            Effect::Media(cmd) => self.media(cmd),
            Effect::Report(outcome) => metrics::negotiation_failed(match outcome {
                Outcome::InvalidOffer => NegotiationFailure::InvalidOffer,
                Outcome::Refused => NegotiationFailure::Refused,
                Outcome::AnswerFailed => NegotiationFailure::AnswerFailed,
                Outcome::ConnectTimeout => NegotiationFailure::ConnectTimeout,
                Outcome::LayerRequestDropped(why) => return metrics::layer_request_dropped(why),
            }),
            Effect::Disconnect { peer, error } => {
                if let Some(s) = self.senders.remove(&peer) {
                    let _ = s.try_send(PeerOutbound::Closed { error });
                }
            }
            Effect::StartTimer { peer, round, after } => {
                let tx = self.timers.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(after).await;
                    let _ = tx.send((peer, round));
                });
            }
            Effect::CloseRoom => self.closing = true,
        }
    }

    /// Queues a message for a peer (built only if the peer has a queue); a peer whose queue is
    /// full or closed goes to `dropped`.
    fn deliver(
        &self,
        peer: PeerId,
        message: impl FnOnce() -> PeerOutbound,
        dropped: &mut Vec<PeerId>,
    ) {
        let Some(s) = self.senders.get(&peer) else {
            return;
        };
        match s.try_send(message()) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Closed(_)) => {
                if !dropped.contains(&peer) {
                    dropped.push(peer);
                }
            }
        }
    }

    /// Reads the forwarders' counters (before commands that may remove forwarders, so their
    /// last packets are counted, and for stats queries).
    fn refresh_forwarded(&mut self) {
        let Some(backend) = self.backend.as_ref() else {
            return;
        };
        let tracks = self.core.tracks().map(|t| t.id.clone());
        self.forwarded.refresh(tracks, |t| backend.forwarded(t));
    }

    fn media(&mut self, cmd: MediaCommand) {
        if matches!(
            cmd,
            MediaCommand::RemovePeer(_) | MediaCommand::HandleOffer { .. }
        ) {
            self.refresh_forwarded();
        }
        let Some(backend) = self.backend.as_mut() else {
            return;
        };
        if let Err(error) = backend.execute(cmd.clone()) {
            tracing::warn!(room = %self.id, %error, "media command refused");
            let fx = self.core.media_refused(&cmd, error);
            self.apply(fx);
        }
    }

    fn describe(&self) -> serde_json::Value {
        let peers: Vec<_> = self
            .core
            .peers()
            .map(|p| {
                json!({
                    "id": p.id.as_str(),
                    "bin": lamina_pipelines::bin_name(&p.id),
                    "metadata": p.metadata,
                    "connected": p.connected,
                    "round": format!("{:?}", p.round),
                    "published": p.published.iter().map(|t| t.as_str()).collect::<Vec<_>>(),
                    "subscriptions": p.slots.iter().map(|s| json!({
                        "mid": s.mid, "kind": s.kind.as_str(),
                        "track": s.track.as_ref().map(|t| t.as_str()),
                    })).collect::<Vec<_>>(),
                    "simulcast": self.core.describe_layers(&p.id),
                })
            })
            .collect();
        let tracks: Vec<_> = self
            .core
            .tracks()
            .map(|t| {
                json!({"id": t.id.as_str(), "owner": t.owner.as_str(),
                       "forwarder": lamina_pipelines::forwarder::element_name(&t.id), "kind": t.kind.as_str(),
                       "metadata": t.metadata, "announced": t.announced,
                       "simulcast": t.simulcast.as_ref().map(|l| l.to_json())})
            })
            .collect();
        let speakers = self.core.speakers();
        let active = speakers.active().map(|t| {
            let owner = self
                .core
                .tracks()
                .find(|x| &x.id == t)
                .map(|x| x.owner.as_str());
            json!({"track": t.as_str(), "peer": owner})
        });
        json!({
            "id": self.id.0,
            "peers": peers,
            "tracks": tracks,
            "speaking": speakers.speaking().iter().map(|t| t.as_str()).collect::<Vec<_>>(),
            "activeSpeaker": active,
            "elements": self.backend.as_ref().map(|b| b.element_count()),
        })
    }
}
