//! [`Speakers`]: which audio tracks carry speech now, and the room's active speaker (the one
//! whose speech started last among those still speaking), from the `VoiceActivity` events of
//! the media graph's `laminavad` elements.

use lamina_protocol::media_event::ServerEvent;

use crate::{Effect, RoomCore, TrackId};

/// The speaking tracks, most recent start last.
#[derive(Debug, Default, Clone)]
pub struct Speakers {
    speaking: Vec<TrackId>,
}

impl Speakers {
    /// Records a transition; returns false when it changes nothing (a repeated status).
    pub fn set(&mut self, track: &TrackId, speech: bool) -> bool {
        let was = self.speaking.iter().position(|t| t == track);
        match (was, speech) {
            (None, true) => {
                self.speaking.push(track.clone());
                true
            }
            (Some(i), false) => {
                self.speaking.remove(i);
                true
            }
            _ => false,
        }
    }

    /// Forgets a track that is gone; true when it was speaking.
    pub fn forget(&mut self, track: &TrackId) -> bool {
        self.set(track, false)
    }

    /// The active speaker: the last track to start speaking among those still speaking.
    pub fn active(&self) -> Option<&TrackId> {
        self.speaking.last()
    }

    /// Every speaking track, in the order their speech started.
    pub fn speaking(&self) -> &[TrackId] {
        &self.speaking
    }
}

impl RoomCore {
    /// A `laminavad` transition: `vadNotification` to the track's subscribers (only those told
    /// about the track: 0.5.3 fails on an unknown track id).
    pub(crate) fn voice_activity(&mut self, track: &TrackId, speech: bool, fx: &mut Vec<Effect>) {
        let before = self.speakers.active().cloned();
        if !self.tracks.get(track).is_some_and(|t| t.announced) || !self.speakers.set(track, speech)
        {
            return;
        }
        let ev = ServerEvent::VadNotification {
            track_id: track.to_string(),
            speech,
        };
        self.tell_subscribers(track, ev, fx);
        if self.speakers.active() != before.as_ref() {
            // The active speaker's video is served first on a short downlink.
            self.select_layers_all(fx);
        }
    }

    /// Voice activity: the speaking tracks and the active speaker.
    pub fn speakers(&self) -> &Speakers {
        &self.speakers
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_to_start_is_active_until_it_stops() {
        let (a, b) = (TrackId::new("a"), TrackId::new("b"));
        let mut s = Speakers::default();
        assert!(s.active().is_none());
        assert!(s.set(&a, true));
        assert!(!s.set(&a, true), "a repeated status changes nothing");
        assert!(s.set(&b, true));
        assert_eq!(s.active(), Some(&b));
        assert!(s.set(&b, false));
        assert_eq!(s.active(), Some(&a));
        assert!(s.forget(&a));
        assert!(!s.forget(&a));
        assert!(s.active().is_none());
    }
}
