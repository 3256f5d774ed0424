//! The packets sent on one SSRC, kept for retransmission, indexed by sequence number.
//!
//! A ring of [`SLOTS`] entries where packet `seq` lives in slot `seq % SLOTS`: storing and
//! finding are O(1) and do not depend on the order packets were sent in (a repaired packet
//! forwarded late lands in its own slot). A slot keeps the newest packet whose sequence number
//! maps to it, so the ring holds at most the last [`SLOTS`] sequence numbers, and packets older
//! than the history's `max_age` are let go as newer ones are stored (so a slow stream does not
//! keep seconds of packets). No allocation after creation.

/// Slots per SSRC (a power of two dividing 65536).
pub const SLOTS: usize = 512;

/// Retransmission history of one SSRC.
#[derive(Debug)]
pub struct History<T> {
    /// (sequence number, time stored in ns, packet).
    slots: Vec<Option<(u16, u64, T)>>,
    max_age_ns: u64,
    /// The oldest sequence number that may still be kept (the age check starts there).
    oldest: Option<u16>,
}

impl<T: Clone> History<T> {
    /// An empty history keeping packets for at most `max_age_ns`.
    pub fn new(max_age_ns: u64) -> Self {
        Self {
            slots: vec![None; SLOTS],
            max_age_ns,
            oldest: None,
        }
    }

    /// Keeps `packet`, sent with sequence number `seq` at `now_ns`, and lets go of the oldest
    /// packets while they are older than the age bound (amortised O(1)).
    pub fn store(&mut self, seq: u16, packet: T, now_ns: u64) {
        self.slots[usize::from(seq) % SLOTS] = Some((seq, now_ns, packet));
        let window = SLOTS as u16 - 1;
        let mut oldest = match self.oldest {
            // Only a newer packet moves the window; a late one just fills its slot.
            Some(o) if seq.wrapping_sub(o) <= window => o,
            Some(o) if (seq.wrapping_sub(o) as i16) < 0 => return,
            _ => seq.wrapping_sub(window),
        };
        while oldest != seq {
            let slot = &mut self.slots[usize::from(oldest) % SLOTS];
            match slot {
                Some((s, t, _)) if *s == oldest => {
                    if now_ns.saturating_sub(*t) <= self.max_age_ns {
                        break;
                    }
                    *slot = None;
                }
                _ => {}
            }
            oldest = oldest.wrapping_add(1);
        }
        self.oldest = Some(oldest);
    }

    /// Lets go of every packet (the receiver's decoder no longer needs them).
    pub fn clear(&mut self) {
        self.slots.fill(None);
        self.oldest = None;
    }

    /// The packet sent with `seq`, if it is still kept.
    pub fn get(&self, seq: u16) -> Option<&T> {
        match &self.slots[usize::from(seq) % SLOTS] {
            Some((s, _, p)) if *s == seq => Some(p),
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

    const AGE: u64 = 1_000_000_000;

    #[test]
    fn finds_packets_whatever_order_they_were_sent_in() {
        let mut h = History::new(AGE);
        for seq in [10u16, 11, 13, 14, 12] {
            h.store(seq, seq * 2, 0);
        }
        for seq in 10u16..=14 {
            assert_eq!(h.get(seq), Some(&(seq * 2)));
        }
        assert_eq!(h.get(15), None);
    }

    #[test]
    fn keeps_only_the_last_slots_sequence_numbers() {
        let mut h = History::new(AGE);
        for seq in 0..(SLOTS as u16 + 10) {
            h.store(seq, (), 0);
        }
        assert_eq!(h.get(5), None, "overwritten by {}", 5 + SLOTS);
        assert!(h.get(SLOTS as u16 + 5).is_some());
        assert_eq!(h.len(), SLOTS);
    }

    #[test]
    fn works_across_the_sequence_wrap() {
        let mut h = History::new(AGE);
        for seq in (65530u16..=65535).chain(0..5) {
            h.store(seq, seq, 0);
        }
        assert_eq!(h.get(65533), Some(&65533));
        assert_eq!(h.get(2), Some(&2));
    }

    #[test]
    fn clear_lets_go_of_everything_and_storing_starts_afresh() {
        let mut h = History::new(AGE);
        for seq in 0u16..20 {
            h.store(seq, seq, 0);
        }
        h.clear();
        assert!(h.is_empty());
        h.store(20, 20, 0);
        assert_eq!((h.get(19), h.get(20), h.len()), (None, Some(&20), 1));
    }

    #[test]
    fn packets_older_than_the_age_bound_are_let_go() {
        let ms = 1_000_000;
        let mut h = History::new(AGE);
        // A slow stream: one packet every 100 ms.
        for (i, seq) in (100u16..130).enumerate() {
            h.store(seq, seq, i as u64 * 100 * ms);
        }
        assert_eq!(h.get(100), None);
        assert_eq!(h.get(118), None, "stored 1.1 s before the last");
        assert_eq!(h.get(119), Some(&119), "stored 1.0 s before the last");
        assert_eq!(h.len(), 11);
    }
}
