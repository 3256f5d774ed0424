//! Prometheus metrics, served at `GET /metrics` in the text exposition format (0.0.4).
//!
//! Two sources:
//! - process-wide counters, bumped where things happen through typed helpers:
//!   [`socket_closed`], [`negotiation_failed`], [`join_refused`], [`forwarded_retired`];
//! - values gathered at scrape time by [`Scraper`]: rooms, peers and tracks from each room actor
//!   (`RoomCommand::Stats`, with a timeout so a stuck room cannot stall a scrape), forwarded
//!   packets and bytes (the room's live forwarders plus those already gone), and the TURN
//!   server's counters.
//!
//! | metric | type | labels |
//! | --- | --- | --- |
//! | `lamina_rooms` | gauge | |
//! | `lamina_rooms_unresponsive` | gauge (rooms that did not answer this scrape in time) | |
//! | `lamina_peers` | gauge | |
//! | `lamina_published_tracks` | gauge | |
//! | `lamina_forwarded_packets_total`, `lamina_forwarded_bytes_total` | counter | |
//! | `lamina_negotiation_failures_total` | counter | `reason`: [`NegotiationFailure`] |
//! | `lamina_join_refusals_total` | counter | `reason`: [`JoinRefusal`] |
//! | `lamina_layer_requests_dropped_total` | counter: `setTargetTrackVariant` requests dropped | `reason`: [`LayerRequestDrop`] |
//! | `lamina_ws_disconnects_total` | counter | `reason`: [`DisconnectReason`] |
//! | `lamina_uplink_nacks_total` | counter: packets the server asked publishers to resend | |
//! | `lamina_uplink_repaired_packets_total`, `lamina_uplink_lost_packets_total` | counter: missing publisher packets that came back after a NACK / never came | |
//! | `lamina_downlink_nack_requests_total` | counter: packets subscribers asked for (served from the retransmission history when still there) | |
//! | `lamina_downlink_nack_requests_dropped_total` | counter: requests over a subscriber's budget | |
//! | `lamina_downlink_nack_requests_not_cached_total` | counter: requests for packets not (or no longer) kept | |
//! | `lamina_downlink_retransmitted_packets_total` | counter: packets resent to subscribers (RTX) | |
//! | `lamina_track_keyframe_requests_total`, `lamina_track_keyframe_requests_throttled_total` | counter per live track: keyframe requests sent to its publisher / coalesced by the throttle | `room`, `track` |
//! | `lamina_turn_allocations` | gauge | |
//! | `lamina_turn_auth_failures_total`, `lamina_turn_peer_denials_total` | counter | |
//!
//! In a cluster (`--redis-url`) every series also carries `node="<node id>"`.
//!
//! The counters are per process (one server per process in production); the forwarded totals
//! never decrease for one [`Scraper`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use lamina_core::LayerRequestDrop;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::borrow::Cow;
use tokio::sync::oneshot;

use lamina_pipelines::repair::RepairStats;

use crate::room::{RoomCommand, RoomHandle, RoomStats, Rooms};
use crate::turn::TurnServer;

/// `Content-Type` of [`Scraper::render`]'s output.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

mod reasons;

pub use reasons::{DisconnectReason, JoinRefusal, NegotiationFailure};

/// How long a scrape waits for all rooms to report.
pub const ROOM_STATS_TIMEOUT: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TrackLabels {
    room: String,
    track: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Reason {
    reason: &'static str,
}

/// The process-wide counters.
struct Counters {
    disconnects: Family<Reason, Counter>,
    negotiation_failures: Family<Reason, Counter>,
    join_refusals: Family<Reason, Counter>,
    layer_requests_dropped: Family<Reason, Counter>,
    retired_packets: AtomicU64,
    retired_bytes: AtomicU64,
    retired_repair: Mutex<RepairStats>,
}

static COUNTERS: LazyLock<Counters> = LazyLock::new(|| {
    let c = Counters {
        disconnects: Family::default(),
        negotiation_failures: Family::default(),
        join_refusals: Family::default(),
        layer_requests_dropped: Family::default(),
        retired_packets: AtomicU64::new(0),
        retired_bytes: AtomicU64::new(0),
        retired_repair: Mutex::new(RepairStats::default()),
    };
    // Every label value is exported from the start (at 0), so rates work from the first scrape.
    for r in DisconnectReason::ALL {
        drop(c.disconnects.get_or_create(&Reason { reason: r.as_str() }));
    }
    for r in NegotiationFailure::ALL {
        drop(
            c.negotiation_failures
                .get_or_create(&Reason { reason: r.as_str() }),
        );
    }
    for r in LayerRequestDrop::ALL {
        drop(
            c.layer_requests_dropped
                .get_or_create(&Reason { reason: r.as_str() }),
        );
    }
    for r in JoinRefusal::ALL {
        drop(
            c.join_refusals
                .get_or_create(&Reason { reason: r.as_str() }),
        );
    }
    c
});

/// Counts a WebSocket connection that ended.
pub fn socket_closed(reason: DisconnectReason) {
    COUNTERS
        .disconnects
        .get_or_create(&Reason {
            reason: reason.as_str(),
        })
        .inc();
}

/// Counts a failed negotiation round.
pub fn negotiation_failed(reason: NegotiationFailure) {
    COUNTERS
        .negotiation_failures
        .get_or_create(&Reason {
            reason: reason.as_str(),
        })
        .inc();
}

/// Counts a dropped `setTargetTrackVariant` request.
pub fn layer_request_dropped(reason: LayerRequestDrop) {
    COUNTERS
        .layer_requests_dropped
        .get_or_create(&Reason {
            reason: reason.as_str(),
        })
        .inc();
}

/// Counts a refused channel join.
pub fn join_refused(reason: JoinRefusal) {
    COUNTERS
        .join_refusals
        .get_or_create(&Reason {
            reason: reason.as_str(),
        })
        .inc();
}

/// Adds the final forwarding totals of a room that stopped (its forwarders are gone, so scrapes
/// can no longer read them).
pub fn forwarded_retired(packets: u64, bytes: u64) {
    COUNTERS
        .retired_packets
        .fetch_add(packets, Ordering::Relaxed);
    COUNTERS.retired_bytes.fetch_add(bytes, Ordering::Relaxed);
}

/// Adds the final loss-repair counters of a room that stopped.
pub fn repair_retired(r: &RepairStats) {
    let mut t = COUNTERS
        .retired_repair
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    t.add(r);
}

/// Keyframe requests of one live track: (room, track, sent, throttled).
pub type TrackKeyframes = (String, String, u64, u64);

/// The TURN server as the scraper sees it: shared with `Server`, which takes it out to close it.
pub type SharedTurn = Arc<Mutex<Option<TurnServer>>>;

/// What one scrape gathered (besides the process-wide counters).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Running rooms (answered or not).
    pub rooms: u64,
    /// Rooms that did not answer within [`ROOM_STATS_TIMEOUT`].
    pub unresponsive_rooms: u64,
    /// Peers in the rooms that answered.
    pub peers: u64,
    /// Published tracks in the rooms that answered.
    pub tracks: u64,
    /// Packets forwarded since the start of the process (never decreases).
    pub forwarded_packets: u64,
    /// Bytes forwarded since the start of the process (never decreases).
    pub forwarded_bytes: u64,
    /// Loss-repair counters since the start of the process (never decrease).
    pub repair: RepairStats,
    /// Keyframe requests per live track.
    pub keyframes: Vec<TrackKeyframes>,
    /// TURN allocations, auth failures and peer denials, with the embedded TURN server.
    pub turn: Option<(u64, u64, u64)>,
    /// The cluster node id: every series then carries the label `node`.
    pub node: Option<String>,
}

/// Gathers the scrape-time values of one server and renders `/metrics`.
pub struct Scraper {
    rooms: Rooms,
    turn: SharedTurn,
    /// Highest forwarded totals reported so far: a room that stops between the reading of the
    /// retired totals and its stats query is missing from one scrape, never counted twice.
    high: Mutex<(u64, u64)>,
    /// Likewise for the repair counters.
    high_repair: Mutex<RepairStats>,
    /// The cluster node id, once registered.
    node: std::sync::OnceLock<String>,
}

impl Scraper {
    /// A scraper of `rooms` and of the TURN server in `turn`.
    pub fn new(rooms: Rooms, turn: SharedTurn) -> Self {
        Self {
            rooms,
            turn,
            high: Mutex::new((0, 0)),
            high_repair: Mutex::new(RepairStats::default()),
            node: std::sync::OnceLock::new(),
        }
    }

    /// Labels every series with this cluster node id from now on.
    pub fn set_node(&self, id: &str) {
        let _ = self.node.set(id.to_owned());
    }

    /// Asks every room for its stats (concurrently, bounded by [`ROOM_STATS_TIMEOUT`]).
    pub async fn gather(&self) -> Snapshot {
        // Retired totals first: a room adds its totals there only after it stopped answering.
        let mut packets = COUNTERS.retired_packets.load(Ordering::Relaxed);
        let mut bytes = COUNTERS.retired_bytes.load(Ordering::Relaxed);
        let mut repair = *COUNTERS
            .retired_repair
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let handles = self.rooms.handles();
        let answers = futures_util::future::join_all(handles.iter().map(room_stats)).await;
        let mut snap = Snapshot {
            node: self.node.get().cloned(),
            ..Snapshot::default()
        };
        for (answer, handle) in answers.into_iter().zip(handles.iter()) {
            match answer {
                Answer::Stats(s) => {
                    repair.add(&s.repair);
                    let room = handle.id().to_string();
                    snap.keyframes.extend(
                        s.keyframe_requests.iter().map(|(t, sent, dropped)| {
                            (room.clone(), t.to_string(), *sent, *dropped)
                        }),
                    );
                    snap.rooms += 1;
                    snap.peers += s.peers as u64;
                    snap.tracks += s.tracks as u64;
                    packets += s.forwarded_packets;
                    bytes += s.forwarded_bytes;
                }
                Answer::Late => {
                    snap.rooms += 1;
                    snap.unresponsive_rooms += 1;
                }
                Answer::Stopped => {}
            }
        }
        {
            let mut high = self.high.lock().unwrap_or_else(|e| e.into_inner());
            high.0 = high.0.max(packets);
            high.1 = high.1.max(bytes);
            (snap.forwarded_packets, snap.forwarded_bytes) = *high;
            let mut high = self.high_repair.lock().unwrap_or_else(|e| e.into_inner());
            high.max(&repair);
            snap.repair = *high;
        }
        snap.turn = self
            .turn
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map(|t| {
                (
                    t.allocation_count() as u64,
                    t.auth_failures(),
                    t.peer_denials(),
                )
            });
        snap
    }

    /// The metrics in the Prometheus text format.
    pub async fn render(&self) -> String {
        encode(&self.gather().await)
    }
}

enum Answer {
    Stats(RoomStats),
    /// Running but no answer in time.
    Late,
    /// Stopped meanwhile.
    Stopped,
}

async fn room_stats(room: &RoomHandle) -> Answer {
    let (reply, rx) = oneshot::channel();
    let ask = async {
        if !room.send(RoomCommand::Stats { reply }).await {
            return Answer::Stopped;
        }
        match rx.await {
            Ok(s) => Answer::Stats(s),
            Err(_) => Answer::Stopped,
        }
    };
    tokio::time::timeout(ROOM_STATS_TIMEOUT, ask)
        .await
        .unwrap_or(Answer::Late)
}

fn gauge(registry: &mut Registry, name: &str, help: &str, value: u64) {
    let g: Gauge = Gauge::default();
    g.set(i64::try_from(value).unwrap_or(i64::MAX));
    registry.register(name, help, g);
}

fn counter(registry: &mut Registry, name: &str, help: &str, value: u64) {
    let c: Counter = Counter::default();
    c.inc_by(value);
    registry.register(name, help, c);
}

/// Renders a snapshot and the process-wide counters.
pub fn encode(snap: &Snapshot) -> String {
    let labels = snap
        .node
        .iter()
        .map(|id| (Cow::Borrowed("node"), Cow::Owned(id.clone())));
    let mut r = Registry::with_prefix_and_labels("lamina", labels);
    gauge(&mut r, "rooms", "Running rooms", snap.rooms);
    gauge(
        &mut r,
        "rooms_unresponsive",
        "Rooms that did not answer the last scrape in time",
        snap.unresponsive_rooms,
    );
    gauge(
        &mut r,
        "peers",
        "Peers (joined channels) in rooms",
        snap.peers,
    );
    gauge(
        &mut r,
        "published_tracks",
        "Tracks published in rooms",
        snap.tracks,
    );
    counter(
        &mut r,
        "forwarded_packets",
        "RTP packets forwarded to subscribers",
        snap.forwarded_packets,
    );
    counter(
        &mut r,
        "forwarded_bytes",
        "Bytes of RTP packets forwarded to subscribers",
        snap.forwarded_bytes,
    );
    let rp = &snap.repair;
    for (name, help, v) in [
        (
            "uplink_nacks",
            "Packets the server asked publishers to resend (NACK)",
            rp.uplink_nacks,
        ),
        (
            "uplink_repaired_packets",
            "Missing publisher packets that arrived after a NACK",
            rp.uplink_repaired,
        ),
        (
            "uplink_lost_packets",
            "Missing publisher packets that never arrived",
            rp.uplink_lost,
        ),
        (
            "downlink_nack_requests",
            "Packets subscribers asked to be resent (NACK)",
            rp.downlink_requests,
        ),
        (
            "downlink_nack_requests_dropped",
            "Subscriber resend requests over the per-subscriber budget",
            rp.downlink_requests_dropped,
        ),
        (
            "downlink_nack_requests_not_cached",
            "Subscriber resend requests for packets not (or no longer) kept",
            rp.downlink_not_cached,
        ),
        (
            "downlink_retransmitted_packets",
            "Packets resent to subscribers (RTX)",
            rp.downlink_retransmitted,
        ),
    ] {
        counter(&mut r, name, help, v);
    }
    let sent: Family<TrackLabels, Counter> = Family::default();
    let throttled: Family<TrackLabels, Counter> = Family::default();
    for (room, track, s, d) in &snap.keyframes {
        let labels = TrackLabels {
            room: room.clone(),
            track: track.clone(),
        };
        sent.get_or_create(&labels).inc_by(*s);
        throttled.get_or_create(&labels).inc_by(*d);
    }
    r.register(
        "track_keyframe_requests",
        "Keyframe requests sent to the publisher of a live track",
        sent,
    );
    r.register(
        "track_keyframe_requests_throttled",
        "Keyframe requests of a live track coalesced by the throttle",
        throttled,
    );
    let c = &*COUNTERS;
    r.register(
        "negotiation_failures",
        "Failed negotiation rounds by reason class",
        c.negotiation_failures.clone(),
    );
    r.register(
        "layer_requests_dropped",
        "setTargetTrackVariant requests dropped, by reason",
        c.layer_requests_dropped.clone(),
    );
    r.register(
        "join_refusals",
        "Refused room channel joins by reason",
        c.join_refusals.clone(),
    );
    r.register(
        "ws_disconnects",
        "Ended WebSocket connections by reason",
        c.disconnects.clone(),
    );
    if let Some((allocations, auth_failures, denials)) = snap.turn {
        gauge(
            &mut r,
            "turn_allocations",
            "Active allocations of the embedded TURN server",
            allocations,
        );
        counter(
            &mut r,
            "turn_auth_failures",
            "TURN requests refused for bad credentials",
            auth_failures,
        );
        counter(
            &mut r,
            "turn_peer_denials",
            "TURN permissions or relayed datagrams refused by the peer filter",
            denials,
        );
    }
    let mut out = String::new();
    prometheus_client::encoding::prometheus_text::encode(&mut out, &r)
        .expect("writing to a String cannot fail");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_gauges_counters_and_labels() {
        socket_closed(DisconnectReason::IdleTimeout);
        let text = encode(&Snapshot {
            rooms: 2,
            peers: 3,
            tracks: 4,
            forwarded_packets: 5,
            forwarded_bytes: 6,
            turn: Some((1, 7, 0)),
            ..Snapshot::default()
        });
        for line in [
            "# TYPE lamina_rooms gauge",
            "lamina_rooms 2",
            "lamina_peers 3",
            "lamina_published_tracks 4",
            "# TYPE lamina_forwarded_packets_total counter",
            "lamina_forwarded_packets_total 5",
            "lamina_forwarded_bytes_total 6",
            "lamina_turn_allocations 1",
            "lamina_turn_auth_failures_total 7",
            "lamina_negotiation_failures_total{reason=\"invalid_offer\"}",
            "lamina_join_refusals_total{reason=\"unauthorized\"}",
            "lamina_ws_disconnects_total{reason=\"server_shutdown\"}",
        ] {
            assert!(text.contains(line), "missing {line:?} in\n{text}");
        }
        let idle = text
            .lines()
            .find(|l| l.starts_with("lamina_ws_disconnects_total{reason=\"idle_timeout\"}"))
            .expect("idle_timeout line");
        let n: u64 = idle.rsplit(' ').next().unwrap().parse().unwrap();
        assert!(n >= 1, "{idle}");
    }

    #[test]
    fn no_turn_section_without_embedded_turn() {
        let text = encode(&Snapshot::default());
        assert!(!text.contains("lamina_turn_"), "{text}");
    }
}
