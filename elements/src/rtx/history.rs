//! The packets sent on one SSRC, kept for retransmission, indexed by sequence number.
//!
//! A ring of [`SLOTS`] entries where packet `seq` lives in slot `seq % SLOTS`: storing and
//! finding are O(1) and do not depend on the order packets were sent in (a repaired packet
//! forwarded late lands in its own slot). A slot keeps the newest packet whose sequence number
//! maps to it, so the ring holds at most the last [`SLOTS`] sequence numbers. No allocation
//! after creation.

/// Slots per SSRC (a power of two dividing 65536).
pub const SLOTS: usize = 512;

/// Retransmission history of one SSRC.
#[derive(Debug)]
pub struct History<T> {
    slots: Vec<Option<(u16, T)>>,
}

impl<T: Clone> Default for History<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Clone> History<T> {
    /// An empty history.
    pub fn new() -> Self {
        Self {
            slots: vec![None; SLOTS],
        }
    }

    /// Keeps `packet`, sent with sequence number `seq`.
    pub fn store(&mut self, seq: u16, packet: T) {
        self.slots[usize::from(seq) % SLOTS] = Some((seq, packet));
    }

    /// The packet sent with `seq`, if it is still kept.
    pub fn get(&self, seq: u16) -> Option<&T> {
        match &self.slots[usize::from(seq) % SLOTS] {
            Some((s, p)) if *s == seq => Some(p),
            _ => None,
        }
    }

    /// Packets kept.
    pub fn len(&self) -> usize {
        self.slots.iter().filter(|s| s.is_some()).count()
    }

    /// Whether nothing is kept.
    pub fn is_empty(&self) -> bool {
        self.slots.iter().all(|s| s.is_none())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_packets_whatever_order_they_were_sent_in() {
        let mut h = History::new();
        for seq in [10u16, 11, 13, 14, 12] {
            h.store(seq, seq * 2);
        }
        for seq in 10u16..=14 {
            assert_eq!(h.get(seq), Some(&(seq * 2)));
        }
        assert_eq!(h.get(15), None);
    }

    #[test]
    fn keeps_only_the_last_slots_sequence_numbers() {
        let mut h = History::new();
        for seq in 0..(SLOTS as u16 + 10) {
            h.store(seq, ());
        }
        assert_eq!(h.get(5), None, "overwritten by {}", 5 + SLOTS);
        assert!(h.get(SLOTS as u16 + 5).is_some());
        assert_eq!(h.len(), SLOTS);
    }

    #[test]
    fn works_across_the_sequence_wrap() {
        let mut h = History::new();
        for seq in (65530u16..=65535).chain(0..5) {
            h.store(seq, seq);
        }
        assert_eq!(h.get(65533), Some(&65533));
        assert_eq!(h.get(2), Some(&2));
    }
}
