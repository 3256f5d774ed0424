//! [`ForwardTally`]: a room's forwarded packets and bytes, kept monotonic while forwarders come
//! and go.
//!
//! Each forwarder counts what it forwarded, but its counters vanish with it (its publisher left
//! or unpublished). The room actor refreshes the tally before commands that may remove
//! forwarders and on every stats query: the last reading of a forwarder that is gone is kept in
//! `retired`.

use std::collections::HashMap;

use crate::TrackId;

/// Forwarding totals of one room.
#[derive(Debug, Default)]
pub struct ForwardTally {
    /// Last reading (packets, bytes) per forwarder still known.
    last: HashMap<TrackId, (u64, u64)>,
    /// Sum of the last readings of forwarders that are gone.
    retired: (u64, u64),
}

impl ForwardTally {
    /// Reads the forwarders of `tracks` (the room's current tracks) and of every track read
    /// before; tracks that are no longer current are retired after this last reading.
    pub fn refresh(
        &mut self,
        tracks: impl IntoIterator<Item = TrackId>,
        read: impl Fn(&TrackId) -> Option<(u64, u64)>,
    ) {
        let current: Vec<TrackId> = tracks.into_iter().collect();
        for track in &current {
            if let Some(value) = read(track) {
                let entry = self.last.entry(track.clone()).or_default();
                if value.0 < entry.0 {
                    // A new forwarder under a known id: bank the old one.
                    self.retired.0 += entry.0;
                    self.retired.1 += entry.1;
                }
                *entry = value;
            }
        }
        let gone: Vec<TrackId> = self
            .last
            .keys()
            .filter(|t| !current.contains(t))
            .cloned()
            .collect();
        for track in gone {
            let mut value = self.last.remove(&track).unwrap_or_default();
            if let Some(now) = read(&track) {
                // Not current any more, but its forwarder is still there: its final reading.
                value = (value.0.max(now.0), value.1.max(now.1));
            }
            self.retired.0 += value.0;
            self.retired.1 += value.1;
        }
    }

    /// Total (packets, bytes) forwarded by this room so far, as of the last refresh.
    pub fn total(&self) -> (u64, u64) {
        self.last
            .values()
            .fold(self.retired, |(p, b), (lp, lb)| (p + lp, b + lb))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::collections::HashMap;

    fn t(s: &str) -> TrackId {
        TrackId::new(s.to_owned())
    }

    #[test]
    fn keeps_the_last_reading_of_gone_forwarders() {
        let counters = RefCell::new(HashMap::from([(t("a"), (10, 1000)), (t("b"), (5, 500))]));
        let read = |id: &TrackId| counters.borrow().get(id).copied();
        let mut tally = ForwardTally::default();
        tally.refresh([t("a"), t("b")], read);
        assert_eq!(tally.total(), (15, 1500));

        // "a" is unpublished; its forwarder still exists while the removal is under way.
        counters.borrow_mut().insert(t("a"), (12, 1200));
        tally.refresh([t("b")], read);
        assert_eq!(tally.total(), (17, 1700));

        // Its forwarder is gone; "b" goes on.
        counters.borrow_mut().remove(&t("a"));
        counters.borrow_mut().insert(t("b"), (8, 800));
        tally.refresh([t("b")], read);
        assert_eq!(tally.total(), (20, 2000));

        // "b" vanishes without a final reading: its last one counts.
        counters.borrow_mut().clear();
        tally.refresh([], read);
        assert_eq!(tally.total(), (20, 2000));
    }

    #[test]
    fn a_reused_track_id_does_not_lower_the_total() {
        let counters = RefCell::new(HashMap::from([(t("a"), (10, 100))]));
        let read = |id: &TrackId| counters.borrow().get(id).copied();
        let mut tally = ForwardTally::default();
        tally.refresh([t("a")], read);
        counters.borrow_mut().insert(t("a"), (2, 20));
        tally.refresh([t("a")], read);
        assert_eq!(tally.total(), (12, 120));
    }
}
