//! What the synthetic peers measure, shared between their tasks and the scenario runner.
//!
//! Server-added delay: a publisher records, when a video packet leaves its socket, the send
//! time under the packet's [`payload_key`](crate::rtp::payload_key) in the process-wide
//! [`SendTable`]; a subscriber looks the key up when the forwarded packet arrives at its
//! socket. The payload is what the server never rewrites (it rewrites SSRC, sequence numbers
//! and timestamps), and every publisher's VP8 descriptor carries its own picture-id range, so
//! keys are unique across publishers within the table's lifetime.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::loss::{LossSpec, Repair, RepairLedger};

/// How long a send record is kept.
const SEND_RECORD_TTL: Duration = Duration::from_secs(3);
/// Delay samples kept per peer and window.
const MAX_DELAY_SAMPLES: usize = 200_000;

/// Locks, ignoring poisoning (a panicking peer task must not take the others down).
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[derive(Default)]
struct SendRecords {
    /// Key → (send time, simulcast layer index: 0 `l`, 1 `m`, 2 `h` or a single stream).
    at: HashMap<u64, (Instant, u8)>,
    order: VecDeque<(Instant, u64)>,
}

/// Process-wide send times (and simulcast layers) of video packets by payload key.
#[derive(Default)]
pub struct SendTable {
    inner: Mutex<SendRecords>,
}

impl SendTable {
    /// Records that the packet with `key` of `layer` left its publisher at `at`.
    pub fn insert(&self, key: u64, at: Instant, layer: u8) {
        let mut r = lock(&self.inner);
        while let Some(&(t, k)) = r.order.front() {
            if at.saturating_duration_since(t) < SEND_RECORD_TTL {
                break;
            }
            r.order.pop_front();
            if r.at.get(&k).is_some_and(|(at, _)| *at == t) {
                r.at.remove(&k);
            }
        }
        r.at.insert(key, (at, layer));
        r.order.push_back((at, key));
    }

    /// When the packet with `key` was sent and on which layer, if it was recorded recently.
    pub fn get(&self, key: u64) -> Option<(Instant, u8)> {
        lock(&self.inner).at.get(&key).copied()
    }
}

/// State shared by every peer of a run.
#[derive(Default)]
pub struct Shared {
    /// Send times of video packets.
    pub sends: SendTable,
    /// Whether delay samples (and drops) are being counted.
    pub measuring: AtomicBool,
    /// Simulated downlink loss of every receiving peer, if any.
    pub loss: Option<LossSpec>,
    /// Peers started so far (numbers each peer's drop sequence).
    pub peers: AtomicU64,
}

impl Shared {
    /// A fresh shared state; receivers drop video as `loss` says.
    pub fn new(loss: Option<LossSpec>) -> Arc<Self> {
        Arc::new(Self {
            loss,
            ..Self::default()
        })
    }

    /// Whether the measurement window is open.
    pub fn is_measuring(&self) -> bool {
        self.measuring.load(Ordering::Relaxed)
    }
}

/// Counters of one received RTP stream.
#[derive(Debug, Clone, Default)]
pub struct RxStream {
    /// Video (else audio).
    pub video: bool,
    /// RTP packets received (duplicates included).
    pub packets: u64,
    /// RTP payload bytes received.
    pub bytes: u64,
    /// Highest extended sequence number seen.
    pub highest: u64,
    /// Packets with a sequence number above the previous highest (late or retransmitted
    /// packets that fill a gap count as lost: loss is the sequence gaps as they arrive).
    pub unique: u64,
    /// First complete keyframe (all packets from its start to its marker, in sequence).
    pub first_decodable: Option<Instant>,
    /// First packet.
    pub first_packet: Option<Instant>,
    /// Next sequence number of a keyframe being assembled.
    pub assembling: Option<u64>,
    /// What the server negotiated for repair on this stream's m-line.
    pub negotiated: Repair,
    /// Packets dropped on purpose and their repair.
    pub repair: RepairLedger,
}

impl RxStream {
    /// Counts one packet; returns whether it is new (not a duplicate or late arrival).
    pub fn on_packet(
        &mut self,
        seq: u64,
        len: usize,
        marker: bool,
        key_start: bool,
        now: Instant,
    ) -> bool {
        self.packets += 1;
        self.bytes += len as u64;
        self.first_packet.get_or_insert(now);
        let fresh = self.unique == 0 || seq > self.highest;
        if fresh {
            self.highest = seq;
            self.unique += 1;
        }
        if self.video && self.first_decodable.is_none() {
            if key_start {
                self.assembling = Some(seq);
            }
            match self.assembling {
                Some(next) if next == seq && marker => self.first_decodable = Some(now),
                Some(next) if next == seq => self.assembling = Some(seq + 1),
                Some(_) if !key_start => self.assembling = None,
                _ => {}
            }
        }
        fresh
    }
}

/// Everything one peer connection measured.
#[derive(Debug, Clone, Default)]
pub struct PeerStats {
    /// Received streams by SSRC.
    pub rx: HashMap<u32, RxStream>,
    /// Server-added delay samples in microseconds (video, while measuring).
    pub delays_us: Vec<u32>,
    /// Media packets sent.
    pub tx_packets: u64,
    /// Of those, audio packets.
    pub tx_audio: u64,
    /// Of those, video packets by simulcast layer (`l`, `m`, `h`; only when publishing
    /// simulcast).
    pub tx_layers: [u64; 3],
    /// Video packets received while measuring, by the simulcast layer they were sent on (`l`,
    /// `m`, `h`; a single stream counts as `h`), found by their payload (duplicates and packets
    /// no longer in the send table not counted).
    pub rx_layers: [u64; 3],
    /// The latest downlink estimate the server told (Lamina's `bandwidthEstimation`), bit/s.
    pub downlink_estimate: Option<u64>,
    /// `encodingSwitched` events received (Lamina): `"<encoding> <reason>"` → count.
    pub layer_switches: std::collections::BTreeMap<String, u64>,
    /// SRTCP datagrams (compound RTCP packets) received from the server.
    pub rtcp_rx: u64,
    /// Keyframe requests received from the server.
    pub keyframe_requests: u64,
    /// When the latest of them arrived (at most [`MAX_KEYFRAME_REQUEST_TIMES`], oldest first).
    pub keyframe_requested_at: Vec<Instant>,
    /// When the latest keyframes sent in answer to them left (as many, oldest first).
    pub keyframe_sent_at: Vec<Instant>,
    /// NACK messages sent (str0m's count, updated with its stats events when loss is on).
    pub nacks_sent: u64,
    /// When ICE + DTLS came up.
    pub connected: Option<Instant>,
    /// The peer's only candidate is a TURN relay (every datagram crosses the TURN server).
    pub relayed: bool,
    /// Datagrams that came in through the relay.
    pub relay_rx: u64,
    /// Fatal error of the peer task.
    pub error: Option<String>,
}

/// Keyframe request arrival times kept per peer.
pub const MAX_KEYFRAME_REQUEST_TIMES: usize = 64;

impl PeerStats {
    /// Counts a keyframe request that arrived at `at`.
    pub fn keyframe_requested(&mut self, at: Instant) {
        self.keyframe_requests += 1;
        if self.keyframe_requested_at.len() == MAX_KEYFRAME_REQUEST_TIMES {
            self.keyframe_requested_at.remove(0);
        }
        self.keyframe_requested_at.push(at);
    }

    /// Notes a keyframe sent at `at` in answer to a request.
    pub fn keyframe_sent(&mut self, at: Instant) {
        if self.keyframe_sent_at.len() == MAX_KEYFRAME_REQUEST_TIMES {
            self.keyframe_sent_at.remove(0);
        }
        self.keyframe_sent_at.push(at);
    }

    /// The first keyframe request that arrived at or after `since`.
    pub fn first_keyframe_request_since(&self, since: Instant) -> Option<Instant> {
        self.keyframe_requested_at
            .iter()
            .copied()
            .find(|&t| t >= since)
    }

    /// The first keyframe sent in answer to a request at or after `since`.
    pub fn first_keyframe_sent_since(&self, since: Instant) -> Option<Instant> {
        self.keyframe_sent_at.iter().copied().find(|&t| t >= since)
    }

    /// Adds a delay sample (bounded).
    pub fn add_delay(&mut self, d: Duration) {
        if self.delays_us.len() < MAX_DELAY_SAMPLES {
            self.delays_us
                .push(d.as_micros().min(u128::from(u32::MAX)) as u32);
        }
    }
}

/// Receive totals at one instant, for differences over a window.
#[derive(Debug, Clone, Default)]
pub struct RxSnapshot {
    /// (peer, ssrc) → (packets, bytes, highest, unique).
    pub streams: HashMap<(usize, u32), (u64, u64, u64, u64)>,
}

impl RxSnapshot {
    /// Takes a snapshot of `peers`.
    pub fn take(peers: &[Arc<Mutex<PeerStats>>]) -> Self {
        let mut streams = HashMap::new();
        for (i, p) in peers.iter().enumerate() {
            for (ssrc, s) in &lock(p).rx {
                streams.insert((i, *ssrc), (s.packets, s.bytes, s.highest, s.unique));
            }
        }
        Self { streams }
    }
}

/// Receive figures over a window.
#[derive(Debug, Clone, Default)]
pub struct RxWindow {
    /// Packets received.
    pub packets: u64,
    /// Payload bytes received.
    pub bytes: u64,
    /// Loss per stream in percent (streams that expected packets).
    pub loss_pct: Vec<f64>,
    /// Streams that received nothing in the window.
    pub silent_streams: usize,
    /// Packets missing / expected over all streams, in percent.
    pub loss_total_pct: f64,
}

impl RxWindow {
    /// Differences between two snapshots.
    pub fn between(a: &RxSnapshot, b: &RxSnapshot) -> Self {
        let mut w = RxWindow::default();
        let (mut expected_all, mut missing_all) = (0u64, 0u64);
        for (k, &(p1, b1, h1, u1)) in &b.streams {
            let (p0, b0, h0, u0) = a.streams.get(k).copied().unwrap_or((0, 0, h1, 0));
            w.packets += p1 - p0;
            w.bytes += b1 - b0;
            let expected = h1.saturating_sub(h0);
            let got = u1 - u0;
            if expected == 0 {
                w.silent_streams += 1;
                continue;
            }
            expected_all += expected;
            missing_all += expected.saturating_sub(got);
            w.loss_pct
                .push(100.0 * expected.saturating_sub(got) as f64 / expected as f64);
        }
        if expected_all > 0 {
            w.loss_total_pct = 100.0 * missing_all as f64 / expected_all as f64;
        }
        w
    }
}

/// The `q`-quantile (0..=1) of `v` (sorted in place); 0 when empty.
pub fn quantile<T: Copy + PartialOrd + Into<f64>>(v: &mut [T], q: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    let i = ((v.len() - 1) as f64 * q).round() as usize;
    v[i.min(v.len() - 1)].into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyframe_request_times_are_bounded_and_found_from_an_instant() {
        let mut s = PeerStats::default();
        let t0 = Instant::now();
        let ms = |i: u64| t0 + Duration::from_millis(i);
        let n = MAX_KEYFRAME_REQUEST_TIMES as u64 + 5;
        for i in 0..n {
            s.keyframe_requested(ms(i));
        }
        assert_eq!(s.keyframe_requests, n);
        assert_eq!(s.keyframe_requested_at.len(), MAX_KEYFRAME_REQUEST_TIMES);
        assert_eq!(s.first_keyframe_request_since(t0), Some(ms(5)));
        assert_eq!(s.first_keyframe_request_since(ms(10)), Some(ms(10)));
        assert_eq!(s.first_keyframe_request_since(ms(n)), None);
    }

    #[test]
    fn keyframe_assembly_and_loss() {
        let now = Instant::now();
        let mut s = RxStream {
            video: true,
            ..Default::default()
        };
        s.on_packet(10, 100, false, false, now);
        s.on_packet(11, 100, false, true, now);
        s.on_packet(13, 100, true, false, now);
        assert!(s.first_decodable.is_none());
        s.on_packet(20, 100, false, true, now);
        s.on_packet(21, 100, true, false, now);
        assert!(s.first_decodable.is_some());
        assert_eq!((s.highest, s.unique), (21, 5));
        let mut v = vec![3u32, 1, 2];
        assert_eq!(quantile(&mut v, 0.5), 2.0);
    }
}
