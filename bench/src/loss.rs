//! Simulated downlink loss and its repair. A receiving peer holds every datagram that reaches
//! its socket for a fixed latency, then drops a seeded share of the video RTP ones before str0m
//! sees them, so str0m's receive register finds the gaps and NACKs them where the server
//! negotiated NACK (str0m also un-wraps RTX answers back into the original sequence numbers).
//! A [`RepairLedger`] per received stream follows every dropped sequence number: repaired when
//! it arrives within [`REPAIR_DEADLINE`], unrepaired when it is still missing then.
//!
//! The latency keeps the round trip the server measures above 0 ms: Janus 1.1.2 sizes a
//! medium's retransmission buffer only when that medium's RTT changes, so on loopback (RTT
//! 0 ms) it keeps no buffer and answers no NACK.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// How long a dropped packet may take to come back before it counts as unrepaired.
pub const REPAIR_DEADLINE: Duration = Duration::from_secs(1);
/// Repair-time samples kept per stream.
const MAX_REPAIR_SAMPLES: usize = 20_000;

/// The simulated downlink of a run: drop share, the seed the droppers derive from, latency.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LossSpec {
    /// Share of received video packets dropped, percent.
    pub percent: f64,
    /// Base seed; peer `n` of the run draws from `seed` mixed with `n`.
    pub seed: u64,
    /// One-way latency added to everything a peer receives.
    pub latency: Duration,
}

/// Decides, datagram by datagram, whether to drop: a Bernoulli draw from a splitmix64 stream,
/// so the same seed gives the same sequence of decisions.
#[derive(Debug, Clone)]
pub struct Dropper {
    state: u64,
    share: f64,
}

impl Dropper {
    /// The dropper of peer number `peer` of a run.
    pub fn new(spec: LossSpec, peer: u64) -> Self {
        Self {
            state: spec.seed ^ peer.wrapping_mul(0xD1B5_4A32_D192_ED03),
            share: (spec.percent / 100.0).clamp(0.0, 1.0),
        }
    }

    /// Whether to drop the next candidate datagram.
    pub fn drop_next(&mut self) -> bool {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        ((z >> 11) as f64 / (1u64 << 53) as f64) < self.share
    }
}

/// A dropped sequence number not yet repaired.
#[derive(Debug, Clone, Copy)]
struct Missing {
    seq: u16,
    at: Instant,
    /// Dropped inside the measurement window (only those are counted).
    counted: bool,
}

/// The fate of the packets one received stream dropped on purpose (window drops only).
#[derive(Debug, Clone, Default)]
pub struct RepairLedger {
    missing: VecDeque<Missing>,
    /// Packets dropped.
    pub dropped: u64,
    /// Dropped packets that arrived again within [`REPAIR_DEADLINE`].
    pub repaired: u64,
    /// Of `repaired`, those that came as RTX (a datagram on another SSRC that str0m un-wrapped).
    pub repaired_rtx: u64,
    /// Dropped packets still missing after [`REPAIR_DEADLINE`].
    pub unrepaired: u64,
    /// Drop → repair times in microseconds.
    pub repair_us: Vec<u32>,
}

impl RepairLedger {
    /// Records that `seq` was dropped at `now`; `counted` while the window is open.
    pub fn on_drop(&mut self, seq: u16, now: Instant, counted: bool) {
        self.expire(now);
        self.dropped += u64::from(counted);
        self.missing.push_back(Missing {
            seq,
            at: now,
            counted,
        });
    }

    /// A packet with `seq` reached the peer (str0m let it through: it was missing).
    pub fn on_arrival(&mut self, seq: u16, now: Instant, via_rtx: bool) {
        self.expire(now);
        let Some(i) = self.missing.iter().position(|m| m.seq == seq) else {
            return;
        };
        let Some(m) = self.missing.remove(i) else {
            return;
        };
        if m.counted {
            self.repaired += 1;
            self.repaired_rtx += u64::from(via_rtx);
            if self.repair_us.len() < MAX_REPAIR_SAMPLES {
                let us = now.saturating_duration_since(m.at).as_micros();
                self.repair_us.push(us.min(u128::from(u32::MAX)) as u32);
            }
        }
    }

    /// Counts what has been missing for longer than [`REPAIR_DEADLINE`] as unrepaired.
    pub fn expire(&mut self, now: Instant) {
        while let Some(m) = self.missing.front() {
            if now.saturating_duration_since(m.at) < REPAIR_DEADLINE {
                break;
            }
            self.unrepaired += u64::from(m.counted);
            self.missing.pop_front();
        }
    }

    /// Ends the count: whatever is still missing is unrepaired.
    pub fn settle(&mut self) {
        self.unrepaired += self.missing.drain(..).filter(|m| m.counted).count() as u64;
    }
}

/// What the remote side's SDP negotiated for repair on one m-line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Repair {
    /// `a=rtcp-fb:<pt> nack` (generic NACK, not `nack pli`).
    pub nack: bool,
    /// An `rtx/…` payload type.
    pub rtx: bool,
}

/// Repair features of every m-line of `sdp` that has an `a=mid`, as `(mid, features)`.
/// str0m itself NACKs a received stream only when RTX was negotiated; this also covers a
/// server that negotiates generic NACK and retransmits on the original SSRC.
pub fn negotiated_repair(sdp: &str) -> Vec<(String, Repair)> {
    let mut out = Vec::new();
    for section in sdp.split("\nm=").skip(1) {
        let mut mid = None;
        let mut r = Repair::default();
        for line in section.lines().map(str::trim) {
            if let Some(m) = line.strip_prefix("a=mid:") {
                mid = Some(m.to_owned());
            } else if let Some(fb) = line.strip_prefix("a=rtcp-fb:") {
                r.nack |= fb.split_whitespace().skip(1).eq(["nack"]);
            } else if line.starts_with("a=rtpmap:") {
                r.rtx |= line
                    .split_whitespace()
                    .nth(1)
                    .is_some_and(|c| c.to_ascii_lowercase().starts_with("rtx/"));
            }
        }
        if let Some(mid) = mid {
            out.push((mid, r));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dropper_is_seeded_and_keeps_its_share() {
        let spec = LossSpec {
            percent: 5.0,
            seed: 7,
            latency: Duration::ZERO,
        };
        let run = |peer| {
            let mut d = Dropper::new(spec, peer);
            (0..100_000).map(|_| d.drop_next()).collect::<Vec<_>>()
        };
        assert_eq!(run(3), run(3));
        assert_ne!(run(3), run(4));
        let share = run(3).iter().filter(|d| **d).count() as f64 / 1000.0;
        assert!((4.7..5.3).contains(&share), "{share} %");
        let mut none = Dropper::new(
            LossSpec {
                percent: 0.0,
                ..spec
            },
            1,
        );
        assert!((0..10_000).all(|_| !none.drop_next()));
    }

    #[test]
    fn ledger_counts_repaired_and_unrepaired() {
        let t = Instant::now();
        let ms = |n| t + Duration::from_millis(n);
        let mut l = RepairLedger::default();
        l.on_drop(10, t, false);
        l.on_drop(11, ms(10), true);
        l.on_drop(12, ms(20), true);
        l.on_drop(65535, ms(30), true);
        l.on_arrival(11, ms(60), true);
        l.on_arrival(10, ms(70), false);
        l.on_arrival(99, ms(80), false);
        assert_eq!((l.dropped, l.repaired, l.repaired_rtx), (3, 1, 1));
        assert_eq!(l.repair_us, vec![50_000]);
        l.expire(ms(1025));
        assert_eq!(l.unrepaired, 1);
        l.on_arrival(12, ms(1026), false);
        assert_eq!(l.repaired, 1, "too late to count as repaired");
        l.settle();
        assert_eq!((l.repaired, l.unrepaired), (1, 2));
    }

    #[test]
    fn reads_nack_and_rtx_per_mline() {
        let sdp = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\n\
            m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\na=rtpmap:111 opus/48000/2\r\n\
            m=video 9 UDP/TLS/RTP/SAVPF 96 97\r\na=mid:1\r\na=rtpmap:96 VP8/90000\r\n\
            a=rtcp-fb:96 nack\r\na=rtcp-fb:96 nack pli\r\na=rtpmap:97 rtx/90000\r\na=fmtp:97 apt=96\r\n\
            m=video 9 UDP/TLS/RTP/SAVPF 100\r\na=mid:v2\r\na=rtpmap:100 VP8/90000\r\n\
            a=rtcp-fb:100 nack pli\r\n";
        let none = Repair::default();
        assert_eq!(
            negotiated_repair(sdp),
            vec![
                ("0".to_owned(), none),
                (
                    "1".to_owned(),
                    Repair {
                        nack: true,
                        rtx: true
                    }
                ),
                ("v2".to_owned(), none),
            ]
        );
    }
}
