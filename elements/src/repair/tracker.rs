//! Loss tracking for one received RTP stream, as a pure state machine.
//!
//! A [`Tracker`] sees every packet of one SSRC in arrival order and decides, without holding
//! any packet back:
//!
//! - [`Verdict::Forward`]: new, reordered or repaired (late but wanted) packet;
//! - [`Verdict::Duplicate`]: a sequence number already forwarded (a retransmission that came
//!   twice, or a network duplicate): drop it;
//!
//! and keeps the list of sequence numbers still missing. [`Tracker::poll`] names the missing
//! packets to ask for now (generic NACK): the first request goes out when the gap is seen,
//! each further one `retry_interval` later, at most `max_retries` times, for at most `max_age`.
//! A missing packet that is still missing after `max_age` (or pushed out of the bounded list)
//! counts as lost.
//!
//! Bounds: the duplicate window covers [`WINDOW`] sequence numbers, the missing list holds at
//! most [`MAX_MISSING`] entries (preallocated: no allocation per packet), a gap larger than
//! [`MAX_GAP`] is a stream jump (not NACKed, counted lost), and [`Tracker::poll`] names at most
//! [`MAX_REQUESTS_PER_POLL`] packets per call.
//!
//! Times are monotonic nanoseconds supplied by the caller; nothing here knows GStreamer.

use std::collections::VecDeque;

/// Sequence numbers remembered for duplicate detection.
pub const WINDOW: u64 = 1024;
/// Most missing packets tracked at once.
pub const MAX_MISSING: usize = 512;
/// A forward jump larger than this restarts tracking (a new source or a long outage) instead of
/// asking for every packet in between.
pub const MAX_GAP: u64 = 1000;
/// Most requests named by one [`Tracker::poll`] call.
pub const MAX_REQUESTS_PER_POLL: usize = 64;

/// What to do with a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Push it downstream now.
    Forward,
    /// Already forwarded: drop it.
    Duplicate,
}

/// Retransmission request policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Ask for missing packets at all.
    pub request: bool,
    /// Most requests per missing packet.
    pub max_retries: u32,
    /// Time between two requests for the same packet, in nanoseconds.
    pub retry_interval_ns: u64,
    /// How long a packet is waited for before it counts as lost, in nanoseconds.
    pub max_age_ns: u64,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            request: false,
            max_retries: 5,
            retry_interval_ns: 40_000_000,
            max_age_ns: 500_000_000,
        }
    }
}

/// Counters of one stream.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Packets forwarded.
    pub forwarded: u64,
    /// Packets that never arrived (gave up, or a jump over them).
    pub lost: u64,
    /// Packets dropped as duplicates.
    pub duplicates: u64,
    /// Packets older than the duplicate window (forwarded, the caller decides).
    pub late: u64,
    /// Retransmission requests named by [`Tracker::poll`].
    pub requests: u64,
    /// Missing packets that arrived after at least one request.
    pub repaired: u64,
    /// Missing packets that arrived before any request (reordering).
    pub reordered: u64,
}

#[derive(Debug, Clone, Copy)]
struct Missing {
    ext: u64,
    first_seen_ns: u64,
    next_request_ns: u64,
    retries: u32,
}

/// Loss tracker of one RTP stream; see the module docs.
#[derive(Debug)]
pub struct Tracker {
    policy: Policy,
    /// Highest extended sequence number seen.
    highest: Option<u64>,
    /// Received bits of the last [`WINDOW`] sequence numbers, indexed by `ext % WINDOW`.
    received: [u64; (WINDOW / 64) as usize],
    missing: VecDeque<Missing>,
    /// After a packet far behind the window: the sequence number that, arriving next, means
    /// the stream jumped there (RFC 3550 A.1 style resynchronisation).
    resync_probe: Option<u16>,
    counters: Counters,
}

impl Default for Tracker {
    fn default() -> Self {
        Self::new(Policy::default())
    }
}

impl Tracker {
    /// A tracker that has seen nothing yet.
    pub fn new(policy: Policy) -> Self {
        Self {
            policy,
            highest: None,
            received: [0; (WINDOW / 64) as usize],
            missing: VecDeque::with_capacity(MAX_MISSING),
            resync_probe: None,
            counters: Counters::default(),
        }
    }

    /// Changes the request policy (takes effect at the next [`Tracker::poll`]).
    pub fn set_policy(&mut self, policy: Policy) {
        self.policy = policy;
    }

    /// The current policy.
    pub fn policy(&self) -> Policy {
        self.policy
    }

    /// The counters so far.
    pub fn counters(&self) -> Counters {
        self.counters
    }

    /// Sequence numbers currently missing.
    pub fn missing(&self) -> usize {
        self.missing.len()
    }

    fn bit(ext: u64) -> (usize, u64) {
        let i = ext % WINDOW;
        ((i / 64) as usize, 1u64 << (i % 64))
    }

    fn is_received(&self, ext: u64) -> bool {
        let (w, b) = Self::bit(ext);
        self.received[w] & b != 0
    }

    fn set_received(&mut self, ext: u64, on: bool) {
        let (w, b) = Self::bit(ext);
        if on {
            self.received[w] |= b;
        } else {
            self.received[w] &= !b;
        }
    }

    /// Forgets the stream position (a new source); counters stay.
    fn restart(&mut self, ext: u64) {
        self.counters.lost += self.missing.len() as u64;
        self.missing.clear();
        self.received = [0; (WINDOW / 64) as usize];
        self.highest = Some(ext);
        self.set_received(ext, true);
    }

    /// Records one arriving packet with sequence number `seq` at `now_ns`.
    pub fn on_packet(&mut self, seq: u16, now_ns: u64) -> Verdict {
        let Some(highest) = self.highest else {
            // Start high enough that a few backward steps never go below zero.
            self.restart(u64::from(seq) + (1 << 16));
            self.counters.forwarded += 1;
            return Verdict::Forward;
        };
        let delta = i64::from(seq.wrapping_sub(highest as u16) as i16);
        let ext = highest.wrapping_add_signed(delta);
        if delta > 0 {
            let delta = delta as u64;
            if delta > MAX_GAP {
                self.counters.lost += delta - 1;
                self.restart(ext);
            } else {
                for gap in highest + 1..ext {
                    self.set_received(gap, false);
                    if self.missing.len() == MAX_MISSING {
                        self.missing.pop_front();
                        self.counters.lost += 1;
                    }
                    self.missing.push_back(Missing {
                        ext: gap,
                        first_seen_ns: now_ns,
                        next_request_ns: now_ns,
                        retries: 0,
                    });
                }
                self.set_received(ext, true);
                self.highest = Some(ext);
            }
            self.counters.forwarded += 1;
            return Verdict::Forward;
        }
        if delta == 0 {
            self.counters.duplicates += 1;
            return Verdict::Duplicate;
        }
        if highest - ext >= WINDOW {
            if self.resync_probe == Some(seq) {
                // Two consecutive packets far from the old position: the stream jumped.
                self.resync_probe = None;
                self.restart((((highest >> 16) + 2) << 16) + u64::from(seq));
                self.counters.forwarded += 1;
                return Verdict::Forward;
            }
            self.resync_probe = Some(seq.wrapping_add(1));
            self.counters.late += 1;
            self.counters.forwarded += 1;
            return Verdict::Forward;
        }
        if self.is_received(ext) {
            self.counters.duplicates += 1;
            return Verdict::Duplicate;
        }
        self.set_received(ext, true);
        if let Ok(i) = self.missing.binary_search_by_key(&ext, |m| m.ext) {
            let m = self.missing.remove(i).expect("index from binary search");
            if m.retries > 0 {
                self.counters.repaired += 1;
            } else {
                self.counters.reordered += 1;
            }
        }
        self.counters.forwarded += 1;
        Verdict::Forward
    }

    /// Ages the missing list at `now_ns` and calls `request(seq)` for every missing packet due
    /// a (re)request, oldest first, at most [`MAX_REQUESTS_PER_POLL`] times.
    pub fn poll(&mut self, now_ns: u64, mut request: impl FnMut(u16)) {
        while let Some(front) = self.missing.front() {
            if now_ns.saturating_sub(front.first_seen_ns) < self.policy.max_age_ns {
                break;
            }
            self.missing.pop_front();
            self.counters.lost += 1;
        }
        if !self.policy.request {
            return;
        }
        let mut named = 0;
        for m in self.missing.iter_mut() {
            if named == MAX_REQUESTS_PER_POLL {
                break;
            }
            if m.retries >= self.policy.max_retries || now_ns < m.next_request_ns {
                continue;
            }
            m.retries += 1;
            m.next_request_ns = now_ns + self.policy.retry_interval_ns;
            named += 1;
            self.counters.requests += 1;
            request(m.ext as u16);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    fn nacking() -> Tracker {
        Tracker::new(Policy {
            request: true,
            ..Policy::default()
        })
    }

    fn polled(t: &mut Tracker, now: u64) -> Vec<u16> {
        let mut v = Vec::new();
        t.poll(now, |s| v.push(s));
        v
    }

    #[test]
    fn in_order_stream_forwards_everything_and_asks_nothing() {
        let mut t = nacking();
        for (i, seq) in (65530u16..=65535).chain(0..10).enumerate() {
            assert_eq!(t.on_packet(seq, i as u64 * MS), Verdict::Forward);
            assert!(polled(&mut t, i as u64 * MS).is_empty());
        }
        assert_eq!(t.counters().forwarded, 16);
        assert_eq!(t.counters().lost, 0);
    }

    #[test]
    fn gap_is_requested_at_once_then_retried_then_given_up() {
        let mut t = nacking();
        t.on_packet(10, 0);
        t.on_packet(13, MS);
        assert_eq!(polled(&mut t, MS), vec![11, 12]);
        assert!(
            polled(&mut t, 20 * MS).is_empty(),
            "not before the retry interval"
        );
        assert_eq!(polled(&mut t, 41 * MS), vec![11, 12]);
        assert_eq!(polled(&mut t, 81 * MS), vec![11, 12]);
        assert_eq!(polled(&mut t, 121 * MS), vec![11, 12]);
        assert_eq!(polled(&mut t, 161 * MS), vec![11, 12]);
        assert!(polled(&mut t, 300 * MS).is_empty(), "max_retries reached");
        assert_eq!(t.counters().requests, 10);
        polled(&mut t, 502 * MS);
        assert_eq!(t.counters().lost, 2);
        assert_eq!(t.missing(), 0);
    }

    #[test]
    fn retransmission_fills_the_hole_and_a_second_copy_is_a_duplicate() {
        let mut t = nacking();
        t.on_packet(100, 0);
        t.on_packet(102, MS);
        assert_eq!(polled(&mut t, MS), vec![101]);
        assert_eq!(t.on_packet(101, 5 * MS), Verdict::Forward);
        assert_eq!(t.on_packet(101, 6 * MS), Verdict::Duplicate);
        assert_eq!(t.on_packet(102, 7 * MS), Verdict::Duplicate);
        assert!(polled(&mut t, 100 * MS).is_empty());
        let c = t.counters();
        assert_eq!((c.repaired, c.duplicates, c.lost), (1, 2, 0));
    }

    #[test]
    fn reordering_before_a_request_is_not_a_repair() {
        let mut t = nacking();
        t.on_packet(1, 0);
        t.on_packet(3, 0);
        t.on_packet(2, 0);
        assert!(polled(&mut t, 0).is_empty());
        assert_eq!(t.counters().reordered, 1);
        assert_eq!(t.counters().repaired, 0);
    }

    #[test]
    fn without_requests_losses_are_still_counted() {
        let mut t = Tracker::default();
        t.on_packet(1, 0);
        t.on_packet(5, 0);
        assert!(polled(&mut t, 0).is_empty());
        polled(&mut t, 2000 * MS);
        assert_eq!(t.counters().lost, 3);
        assert_eq!(t.counters().requests, 0);
    }

    #[test]
    fn huge_jump_restarts_without_requests() {
        let mut t = nacking();
        t.on_packet(1, 0);
        t.on_packet(30000, MS);
        assert!(polled(&mut t, MS).is_empty());
        assert_eq!(t.counters().lost, 29998);
        assert_eq!(t.on_packet(30001, 2 * MS), Verdict::Forward);
    }

    #[test]
    fn missing_list_and_requests_are_bounded() {
        let mut t = nacking();
        let mut seq = 0u16;
        t.on_packet(seq, 0);
        // Many gaps of 9 packets: more than MAX_MISSING in total.
        for _ in 0..100 {
            seq = seq.wrapping_add(10);
            t.on_packet(seq, 0);
        }
        assert_eq!(t.missing(), MAX_MISSING);
        assert_eq!(t.counters().lost, 900 - MAX_MISSING as u64);
        assert_eq!(polled(&mut t, 0).len(), MAX_REQUESTS_PER_POLL);
    }

    #[test]
    fn jump_of_more_than_half_the_sequence_space_resynchronises() {
        let mut t = nacking();
        t.on_packet(1, 0);
        assert_eq!(t.on_packet(40000, 0), Verdict::Forward);
        assert_eq!(t.on_packet(40001, 0), Verdict::Forward);
        assert_eq!(t.on_packet(40001, 0), Verdict::Duplicate);
        t.on_packet(40003, 0);
        assert_eq!(polled(&mut t, 0), vec![40002]);
    }

    #[test]
    fn very_old_packet_is_late_not_duplicate() {
        let mut t = nacking();
        t.on_packet(5000, 0);
        for s in 5001..6500u16 {
            t.on_packet(s, 0);
        }
        assert_eq!(t.on_packet(5000, 0), Verdict::Forward);
        assert_eq!(t.counters().late, 1);
    }
}
