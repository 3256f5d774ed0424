//! [`Timers`]: the media thread's delayed work, checked between commands.

use std::time::{Duration, Instant};

use crate::ids::{PeerId, TrackId};

/// After an answer on an already connected transport, wait this long (about one RTT plus the
/// client applying the answer) before opening new links, so the first keyframe is not dropped.
pub(crate) const ACTIVATE_AFTER_ANSWER: Duration = Duration::from_millis(150);
/// After an ICE-restart answer, report `PeerConnected` anyway if the state never left
/// `connected` within this time (see `transport.rs`).
pub(crate) const RESTART_GRACE: Duration = Duration::from_secs(3);
/// How often the layer bitrates of simulcast tracks are measured and reported.
pub(crate) const LAYER_RATES: Duration = Duration::from_secs(1);

/// Something to do later.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Timer {
    /// Open the links of a connected peer.
    Activate(PeerId),
    /// A keyframe request for a newly opened output was throttled: ask again.
    Keyframe(TrackId),
    /// The ICE-restart grace of this peer's round ran out.
    RestartGrace(PeerId, u64),
    /// Measure the simulcast layers' bitrates (re-armed every [`LAYER_RATES`]).
    LayerRates,
}

/// Pending timers (a handful per room: a plain list).
#[derive(Debug, Default)]
pub(crate) struct Timers {
    pending: Vec<(Instant, Timer)>,
}

impl Timers {
    /// Runs `timer` after `delay`.
    pub(crate) fn after(&mut self, delay: Duration, timer: Timer) {
        self.pending.push((Instant::now() + delay, timer));
    }

    /// How long the media thread may wait for a command before a timer is due.
    pub(crate) fn next_wait(&self) -> Duration {
        let now = Instant::now();
        self.pending
            .iter()
            .map(|(at, _)| at.saturating_duration_since(now))
            .min()
            .unwrap_or(Duration::from_secs(3600))
    }

    /// Removes and returns the timers that are due.
    pub(crate) fn take_due(&mut self) -> Vec<Timer> {
        let now = Instant::now();
        let (due, rest): (Vec<_>, Vec<_>) = self.pending.drain(..).partition(|(at, _)| *at <= now);
        self.pending = rest;
        due.into_iter().map(|(_, t)| t).collect()
    }

    /// Forgets a removed peer's timers.
    pub(crate) fn forget_peer(&mut self, peer: &PeerId) {
        self.pending.retain(|(_, t)| match t {
            Timer::Activate(x) | Timer::RestartGrace(x, _) => x != peer,
            Timer::Keyframe(_) | Timer::LayerRates => true,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_timers_come_out_once_and_removed_peers_are_forgotten() {
        let mut t = Timers::default();
        let a = PeerId::new("a");
        t.after(Duration::ZERO, Timer::Activate(a.clone()));
        t.after(Duration::from_secs(60), Timer::RestartGrace(a.clone(), 1));
        t.after(
            Duration::from_secs(60),
            Timer::Keyframe(TrackId::new("a:v")),
        );
        assert_eq!(t.take_due(), vec![Timer::Activate(a.clone())]);
        assert!(t.take_due().is_empty());
        assert!(t.next_wait() > Duration::from_secs(50));
        t.forget_peer(&a);
        assert_eq!(t.pending.len(), 1);
    }
}
