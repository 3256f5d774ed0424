//! Per-output sequence number and RTP timestamp rewriting, as a pure state machine.
//!
//! Each forwarder src pad owns one [`Rewriter`]. It maps input `(ssrc, seq, ts)` to output
//! `(seq, ts)` with two offsets (`out = in + offset`, wrapping), so that what one subscriber
//! receives stays one continuous RTP stream even when:
//!
//! - the pad was gated (`active=false`) for a while ([`Rewriter::mark_gap`]);
//! - the input source changes: a new input SSRC, or a sequence jump larger than
//!   [`MAX_DROPOUT`] forward or [`MAX_MISORDER`] backward (RFC 3550 A.1 style limits).
//!
//! On such a *resync* the output continues at `last_out_seq + 1`, and the output timestamp at
//! `last_out_ts` plus the elapsed running time in clock-rate ticks (or [`FALLBACK_GAP_MS`] worth
//! of ticks when no running time is known). The very first packet is passed through unchanged
//! (both offsets 0), so a single steady source is forwarded transparently.
//!
//! Nothing here knows GStreamer; everything is wrapping `u16`/`u32` arithmetic.

/// Largest forward sequence jump still treated as packet loss inside one source.
pub const MAX_DROPOUT: u16 = 3000;
/// Largest backward sequence step still treated as reordering inside one source.
pub const MAX_MISORDER: u16 = 100;
/// Timestamp gap assumed on a resync when the elapsed running time is unknown.
pub const FALLBACK_GAP_MS: u32 = 20;
/// Upper bound for a timestamp gap on resync, so the jump never looks like a backward step.
const MAX_TS_GAP: u32 = i32::MAX as u32;

/// What the rewriter needs to know about one input packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Input {
    /// SSRC in the input RTP header.
    pub ssrc: u32,
    /// Sequence number in the input RTP header.
    pub seq: u16,
    /// RTP timestamp in the input RTP header.
    pub ts: u32,
    /// Running time of the packet in nanoseconds, if known.
    pub running_time_ns: Option<u64>,
    /// RTP clock rate of the stream in Hz, if known (from the caps).
    pub clock_rate: Option<u32>,
}

/// The rewritten header fields for one output packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Output {
    /// Sequence number to write.
    pub seq: u16,
    /// RTP timestamp to write.
    pub ts: u32,
    /// True when this packet starts a new mapping (first packet, after a gap or a source
    /// change); the buffer should carry the DISCONT flag.
    pub resynced: bool,
}

/// The current input → output mapping.
#[derive(Debug, Clone, Copy)]
struct Mapping {
    ssrc: u32,
    /// Input seq of the packet that started this mapping; older packets are stale.
    base_in_seq: u16,
    /// Highest input seq seen in this mapping.
    highest_in_seq: u16,
    seq_offset: u16,
    ts_offset: u32,
}

/// The highest output packet so far.
#[derive(Debug, Clone, Copy)]
struct LastOut {
    seq: u16,
    ts: u32,
    running_time_ns: Option<u64>,
}

/// Sequence number and timestamp rewriter for one output stream; see the module docs.
#[derive(Debug, Default, Clone)]
pub struct Rewriter {
    mapping: Option<Mapping>,
    last_out: Option<LastOut>,
    gap_pending: bool,
}

impl Rewriter {
    /// A rewriter that has not forwarded anything yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Declares that input packets were not forwarded for a while (the output was gated):
    /// the next packet starts a new mapping that continues the output numbering.
    pub fn mark_gap(&mut self) {
        self.gap_pending = true;
    }

    /// Maps one input packet. Returns `None` for a stale packet: one older than the start of
    /// the current mapping, which would otherwise reuse an output sequence number.
    pub fn rewrite(&mut self, input: &Input) -> Option<Output> {
        if !self.gap_pending {
            if let Some(mapping) = self.mapping.as_mut() {
                if mapping.ssrc == input.ssrc {
                    let delta = input.seq.wrapping_sub(mapping.highest_in_seq) as i16;
                    if delta > 0 && delta.unsigned_abs() <= MAX_DROPOUT {
                        mapping.highest_in_seq = input.seq;
                        let out = Self::map(mapping, input, false);
                        self.last_out = Some(LastOut {
                            seq: out.seq,
                            ts: out.ts,
                            running_time_ns: input.running_time_ns,
                        });
                        return Some(out);
                    }
                    if delta <= 0 && delta.unsigned_abs() <= MAX_MISORDER {
                        // Reordered or duplicated: keep the mapping, do not move last_out.
                        let since_base = input.seq.wrapping_sub(mapping.base_in_seq) as i16;
                        if since_base < 0 {
                            return None;
                        }
                        return Some(Self::map(mapping, input, false));
                    }
                }
            }
        }
        Some(self.resync(input))
    }

    /// The input `(ssrc, seq)` that produced output sequence number `out_seq` under the
    /// current mapping, for translating retransmission requests back upstream.
    pub fn input_for(&self, out_seq: u16) -> Option<(u32, u16)> {
        self.mapping
            .map(|m| (m.ssrc, out_seq.wrapping_sub(m.seq_offset)))
    }

    fn map(mapping: &Mapping, input: &Input, resynced: bool) -> Output {
        Output {
            seq: input.seq.wrapping_add(mapping.seq_offset),
            ts: input.ts.wrapping_add(mapping.ts_offset),
            resynced,
        }
    }

    fn resync(&mut self, input: &Input) -> Output {
        let (seq_offset, ts_offset) = match self.last_out {
            None => (0, 0),
            Some(last) => {
                let out_seq = last.seq.wrapping_add(1);
                let gap = ts_gap(
                    last.running_time_ns,
                    input.running_time_ns,
                    input.clock_rate,
                );
                let out_ts = last.ts.wrapping_add(gap);
                (
                    out_seq.wrapping_sub(input.seq),
                    out_ts.wrapping_sub(input.ts),
                )
            }
        };
        let mapping = Mapping {
            ssrc: input.ssrc,
            base_in_seq: input.seq,
            highest_in_seq: input.seq,
            seq_offset,
            ts_offset,
        };
        self.mapping = Some(mapping);
        self.gap_pending = false;
        let out = Self::map(&mapping, input, true);
        self.last_out = Some(LastOut {
            seq: out.seq,
            ts: out.ts,
            running_time_ns: input.running_time_ns,
        });
        out
    }
}

/// Timestamp ticks to put between the last output packet and the first packet of a new
/// mapping: the elapsed running time at the clock rate, at least 1 tick, at most `i32::MAX`.
fn ts_gap(last_rt: Option<u64>, now_rt: Option<u64>, clock_rate: Option<u32>) -> u32 {
    let rate = clock_rate.filter(|r| *r > 0);
    match (last_rt, now_rt, rate) {
        (Some(last), Some(now), Some(rate)) if now > last => {
            let ticks = u128::from(now - last) * u128::from(rate) / 1_000_000_000;
            u32::try_from(ticks)
                .unwrap_or(MAX_TS_GAP)
                .clamp(1, MAX_TS_GAP)
        }
        (_, _, Some(rate)) => (rate / 1000 * FALLBACK_GAP_MS).max(1),
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: u64 = 1_000_000_000;

    fn pkt(ssrc: u32, seq: u16, ts: u32, rt: Option<u64>) -> Input {
        Input {
            ssrc,
            seq,
            ts,
            running_time_ns: rt,
            clock_rate: Some(90_000),
        }
    }

    fn out(r: &mut Rewriter, i: Input) -> (u16, u32, bool) {
        let o = r.rewrite(&i).expect("not stale");
        (o.seq, o.ts, o.resynced)
    }

    #[test]
    fn first_packet_passes_through_then_steady() {
        let mut r = Rewriter::new();
        assert_eq!(out(&mut r, pkt(1, 100, 5000, None)), (100, 5000, true));
        assert_eq!(out(&mut r, pkt(1, 101, 8000, None)), (101, 8000, false));
        assert_eq!(out(&mut r, pkt(1, 105, 9000, None)), (105, 9000, false));
    }

    #[test]
    fn sequence_and_timestamp_wrap_inside_one_source() {
        let mut r = Rewriter::new();
        assert_eq!(
            out(&mut r, pkt(1, 65534, u32::MAX - 10, None)),
            (65534, u32::MAX - 10, true)
        );
        assert_eq!(
            out(&mut r, pkt(1, 65535, u32::MAX, None)),
            (65535, u32::MAX, false)
        );
        assert_eq!(out(&mut r, pkt(1, 0, 2989, None)), (0, 2989, false));
        assert_eq!(out(&mut r, pkt(1, 1, 5989, None)), (1, 5989, false));
    }

    #[test]
    fn gap_continues_at_last_plus_one_with_running_time_delta() {
        let mut r = Rewriter::new();
        out(&mut r, pkt(1, 10, 1000, Some(SEC)));
        out(&mut r, pkt(1, 11, 1000, Some(SEC)));
        r.mark_gap();
        // 500 packets were not forwarded; 2 s of running time passed.
        let (seq, ts, resynced) = out(&mut r, pkt(1, 512, 777_000, Some(3 * SEC)));
        assert_eq!((seq, ts, resynced), (12, 1000 + 180_000, true));
        // The new mapping holds for the following packets.
        assert_eq!(
            out(&mut r, pkt(1, 513, 780_000, Some(3 * SEC))),
            (13, 184_000, false)
        );
    }

    #[test]
    fn gap_without_running_time_uses_fallback() {
        let mut r = Rewriter::new();
        out(&mut r, pkt(1, 10, 1000, None));
        r.mark_gap();
        let gap = 90_000 / 1000 * FALLBACK_GAP_MS;
        assert_eq!(out(&mut r, pkt(1, 50, 9, None)), (11, 1000 + gap, true));
        let mut r = Rewriter::new();
        let no_rate = Input {
            clock_rate: None,
            ..pkt(1, 10, 1000, None)
        };
        r.rewrite(&no_rate);
        r.mark_gap();
        let next = Input { seq: 99, ..no_rate };
        assert_eq!(r.rewrite(&next).map(|o| (o.seq, o.ts)), Some((11, 1001)));
    }

    #[test]
    fn ssrc_change_resyncs_and_wraps() {
        let mut r = Rewriter::new();
        out(&mut r, pkt(1, 65535, u32::MAX - 100, Some(SEC)));
        // New source with unrelated numbering, 20 ms later.
        let (seq, ts, resynced) = out(&mut r, pkt(2, 3000, 42, Some(SEC + SEC / 50)));
        assert_eq!(
            (seq, ts, resynced),
            (0, (u32::MAX - 100).wrapping_add(1800), true)
        );
        assert_eq!(
            out(&mut r, pkt(2, 3001, 3042, None)),
            (1, ts.wrapping_add(3000), false)
        );
    }

    #[test]
    fn big_seq_jump_resyncs() {
        let mut r = Rewriter::new();
        out(&mut r, pkt(1, 100, 1000, Some(SEC)));
        let (seq, _, resynced) = out(&mut r, pkt(1, 100 + MAX_DROPOUT + 1, 1000, Some(SEC)));
        assert_eq!((seq, resynced), (101, true));
        // Just inside the dropout window: kept as loss.
        let mut r = Rewriter::new();
        out(&mut r, pkt(1, 100, 1000, None));
        assert!(!out(&mut r, pkt(1, 100 + MAX_DROPOUT, 1000, None)).2);
        // A big backward jump is a restart too.
        let mut r = Rewriter::new();
        out(&mut r, pkt(1, 5000, 1000, None));
        let (seq, _, resynced) = out(&mut r, pkt(1, 5000 - MAX_MISORDER - 1, 1000, None));
        assert_eq!((seq, resynced), (5001, true));
    }

    #[test]
    fn reordered_packets_keep_mapping_and_stale_ones_are_dropped() {
        let mut r = Rewriter::new();
        out(&mut r, pkt(1, 10, 1000, Some(SEC)));
        r.mark_gap();
        assert_eq!(out(&mut r, pkt(1, 200, 5000, Some(SEC))).0, 11);
        assert_eq!(out(&mut r, pkt(1, 202, 5000, None)).0, 13);
        // 201 arrives late: mapped, not a resync, last_out untouched.
        assert_eq!(out(&mut r, pkt(1, 201, 5000, None)), (12, 2800, false));
        // 199 predates the mapping start (it belongs to the gated period): dropped.
        assert_eq!(r.rewrite(&pkt(1, 199, 5000, None)), None);
        assert_eq!(out(&mut r, pkt(1, 203, 5000, None)).0, 14);
    }

    #[test]
    fn input_for_inverts_the_mapping() {
        let mut r = Rewriter::new();
        assert_eq!(r.input_for(5), None);
        out(&mut r, pkt(7, 65530, 0, None));
        r.mark_gap();
        out(&mut r, pkt(8, 20, 0, None));
        assert_eq!(r.input_for(65531), Some((8, 20)));
        assert_eq!(r.input_for(65535), Some((8, 24)));
        assert_eq!(r.input_for(0), Some((8, 25)));
    }

    #[test]
    fn running_time_gap_is_clamped() {
        assert_eq!(ts_gap(Some(SEC), Some(SEC), Some(90_000)), 1800);
        assert_eq!(ts_gap(Some(SEC), Some(SEC + 1), Some(90_000)), 1);
        assert_eq!(ts_gap(Some(0), Some(u64::MAX), Some(90_000)), MAX_TS_GAP);
        assert_eq!(ts_gap(Some(2 * SEC), Some(SEC), Some(48_000)), 960);
        assert_eq!(ts_gap(None, None, Some(0)), 1);
    }
}
