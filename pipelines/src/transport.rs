//! [`Transport`]: the negotiation facts of one peer that belong to its transport.
//!
//! Owned here, and nowhere else (the room core owns the round itself, the m-line ↔ track
//! mapping and the client's early candidates):
//! - **the remote ICE ufrag** of the last offer, read from the offer's summary: a new one is an
//!   ICE restart;
//! - **local candidates gathered before the peer's first answer**: held here and released
//!   right after `AnswerReady`, so the room never sees a candidate before an answer;
//! - **whether the round's transport is connected** (`awaiting_connected`): after an answer the
//!   round waits for the next transition to `connected` when it restarted ICE or was not
//!   connected yet; an ICE restart that never leaves `connected` counts as connected after
//!   [`crate::timers::RESTART_GRACE`];
//! - **the DTLS fingerprint** the peer's certificate must match, from the last offer.

use gst_webrtc::WebRTCPeerConnectionState as ConnState;

use crate::dtls::Fingerprint;

/// The transport side of one peer's negotiation.
#[derive(Debug)]
pub(crate) struct Transport {
    last_ufrag: Option<String>,
    answered: bool,
    queued: Vec<(u32, String)>,
    state: ConnState,
    awaiting_connected: bool,
    round: u64,
    fingerprint: Option<Fingerprint>,
}

/// What a connection-state change means for the room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Change {
    /// Nothing to report.
    None,
    /// The transport became connected after an answer: authenticate, then report
    /// `PeerConnected` and open links.
    Connected,
    /// ICE/DTLS failed.
    Failed,
}

impl Default for Transport {
    fn default() -> Self {
        Self {
            last_ufrag: None,
            answered: false,
            queued: Vec::new(),
            state: ConnState::New,
            awaiting_connected: false,
            round: 0,
            fingerprint: None,
        }
    }
}

impl Transport {
    /// A new offer with this ufrag and fingerprint: starts a round. Returns the round number
    /// and whether the offer restarts ICE (a ufrag different from the last one).
    pub(crate) fn offer(&mut self, ufrag: Option<&str>, fingerprint: Fingerprint) -> (u64, bool) {
        self.round += 1;
        self.fingerprint = Some(fingerprint);
        let restarted = matches!((&self.last_ufrag, ufrag), (Some(old), Some(new)) if old != new);
        if let Some(u) = ufrag {
            self.last_ufrag = Some(u.to_owned());
        }
        self.awaiting_connected = false;
        (self.round, restarted)
    }

    /// The answer is set locally: the round now waits for `connected` if it restarted ICE or
    /// the transport is not connected.
    pub(crate) fn answer_set(&mut self, restarted: bool) {
        self.awaiting_connected = restarted || self.state != ConnState::Connected;
    }

    /// The answer went out: returns the candidates held until now, and whether the round's
    /// transport already counts as connected.
    pub(crate) fn answered(&mut self) -> (Vec<(u32, String)>, bool) {
        self.answered = true;
        (std::mem::take(&mut self.queued), !self.awaiting_connected)
    }

    /// A gathered local candidate: returned when it may go to the room now, held otherwise.
    pub(crate) fn local_candidate(
        &mut self,
        mline: u32,
        candidate: String,
    ) -> Option<(u32, String)> {
        if self.answered {
            Some((mline, candidate))
        } else {
            self.queued.push((mline, candidate));
            None
        }
    }

    /// webrtcbin's connection state changed.
    pub(crate) fn state_changed(&mut self, state: ConnState) -> Change {
        let previous = std::mem::replace(&mut self.state, state);
        match state {
            ConnState::Connected if previous != ConnState::Connected && self.answered => {
                self.awaiting_connected = false;
                Change::Connected
            }
            ConnState::Failed => Change::Failed,
            _ => Change::None,
        }
    }

    /// The restart grace of `round` ran out: true when that round still waits although the
    /// transport stayed connected (it then counts as connected).
    pub(crate) fn grace_expired(&mut self, round: u64) -> bool {
        let stale = self.round == round && self.awaiting_connected && self.is_connected();
        if stale {
            self.awaiting_connected = false;
        }
        stale
    }

    /// The number of the current round (offers so far).
    pub(crate) fn round(&self) -> u64 {
        self.round
    }

    /// The transport is connected now.
    pub(crate) fn is_connected(&self) -> bool {
        self.state == ConnState::Connected
    }

    /// The fingerprint of the last offer.
    pub(crate) fn fingerprint(&self) -> Option<&Fingerprint> {
        self.fingerprint.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fp() -> Fingerprint {
        Fingerprint {
            hash: "sha-256".into(),
            digest: vec![0; 32],
        }
    }

    #[test]
    fn candidates_wait_for_the_first_answer_only() {
        let mut t = Transport::default();
        t.offer(Some("u1"), fp());
        assert_eq!(t.local_candidate(0, "c1".into()), None);
        t.answer_set(false);
        let (queued, connected) = t.answered();
        assert_eq!(queued, vec![(0, "c1".to_string())]);
        assert!(!connected, "not connected yet: wait for the transition");
        assert_eq!(t.local_candidate(0, "c2".into()), Some((0, "c2".into())));
        assert_eq!(t.state_changed(ConnState::Connecting), Change::None);
        assert_eq!(t.state_changed(ConnState::Connected), Change::Connected);
    }

    #[test]
    fn a_new_ufrag_is_a_restart_that_waits_for_connected() {
        let mut t = Transport::default();
        t.offer(Some("u1"), fp());
        t.answer_set(false);
        t.answered();
        t.state_changed(ConnState::Connected);
        // Same ufrag on a connected transport: connected at once.
        let (_, restarted) = t.offer(Some("u1"), fp());
        assert!(!restarted);
        t.answer_set(restarted);
        assert!(t.answered().1);
        // New ufrag: waits; the grace counts it connected when the state never moved.
        let (round, restarted) = t.offer(Some("u2"), fp());
        assert!(restarted);
        t.answer_set(restarted);
        assert!(!t.answered().1);
        assert!(!t.grace_expired(round - 1));
        assert!(t.grace_expired(round));
        assert!(!t.grace_expired(round), "only once");
    }

    #[test]
    fn failure_is_reported() {
        let mut t = Transport::default();
        assert_eq!(t.state_changed(ConnState::Failed), Change::Failed);
        // Connected before any answer is not a round's connection.
        assert_eq!(t.state_changed(ConnState::Connected), Change::None);
    }
}
