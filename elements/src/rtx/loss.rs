//! The subscriber's recent loss, as its retransmission requests tell it.
//!
//! A receiver NACKs each packet it finds missing (and asks again for it while it stays
//! missing). Counting, per window, the packets first asked for (newer than any asked for
//! before on their SSRC) against the packets sent gives the share lost on the way, one round
//! trip after the loss: far sooner than RTCP receiver reports (about one a second) or a
//! congestion controller's loss-based cut. Windows with too few packets are extended.

/// Fewest packets sent in a window for its loss share to be taken.
pub const MIN_PACKETS: u32 = 10;

/// Packets sent and first-asked-for over the current window.
#[derive(Debug, Clone, Default)]
pub struct LossWindow {
    /// Window length in ns; 0 turns the measurement off.
    pub window_ns: u64,
    start_ns: Option<u64>,
    sent: u32,
    asked: u32,
    /// The share lost in the last window closed.
    pub last: f64,
}

impl LossWindow {
    /// A measurement over windows of `window_ns`.
    pub fn new(window_ns: u64) -> Self {
        Self {
            window_ns,
            ..Self::default()
        }
    }

    /// One packet sent at `now_ns`; the lost share when this closes a window.
    pub fn sent(&mut self, now_ns: u64) -> Option<f64> {
        if self.window_ns == 0 {
            return None;
        }
        self.sent = self.sent.saturating_add(1);
        let start = *self.start_ns.get_or_insert(now_ns);
        if now_ns.saturating_sub(start) < self.window_ns || self.sent < MIN_PACKETS {
            return None;
        }
        self.last = (f64::from(self.asked) / f64::from(self.sent)).min(1.0);
        self.start_ns = Some(now_ns);
        self.sent = 0;
        self.asked = 0;
        Some(self.last)
    }

    /// One packet asked for the first time.
    pub fn asked(&mut self) {
        if self.window_ns != 0 {
            self.asked = self.asked.saturating_add(1);
        }
    }
}

/// Whether `seq` is newer than `highest` (RFC 3550 sequence arithmetic); any is newer than none.
pub fn is_newer(seq: u16, highest: Option<u16>) -> bool {
    highest.is_none_or(|h| {
        let d = seq.wrapping_sub(h);
        d != 0 && d < 0x8000
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    #[test]
    fn a_window_closes_after_its_time_and_enough_packets() {
        let mut w = LossWindow::new(200 * MS);
        for i in 0..20 {
            assert_eq!(w.sent(i * MS), None);
        }
        w.asked();
        w.asked();
        // 200 ms in, 21 packets: 2 of them asked for.
        let share = w.sent(200 * MS).expect("window closed");
        assert!((share - 2.0 / 21.0).abs() < 1e-9, "{share}");
        // A slow stream: the window waits for enough packets.
        for i in 0..(MIN_PACKETS - 1) {
            assert_eq!(w.sent((500 + u64::from(i) * 100) * MS), None);
        }
        assert_eq!(w.sent(2_000 * MS), Some(0.0));
    }

    #[test]
    fn asked_beyond_sent_is_capped_and_off_means_off() {
        let mut w = LossWindow::new(MS);
        for _ in 0..50 {
            w.asked();
        }
        let closed: Vec<f64> = (0..20).filter_map(|i| w.sent(i * MS)).collect();
        assert_eq!(closed, [1.0, 0.0], "ten packets per window");
        let mut off = LossWindow::new(0);
        off.asked();
        assert!((0..100).all(|i| off.sent(i * 10 * MS).is_none()));
    }

    #[test]
    fn newer_follows_sequence_wrap() {
        assert!(is_newer(5, None));
        assert!(is_newer(6, Some(5)) && !is_newer(5, Some(5)) && !is_newer(4, Some(5)));
        assert!(is_newer(2, Some(65534)) && !is_newer(65534, Some(2)));
    }
}
