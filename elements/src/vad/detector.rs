//! [`Detector`]: speech and silence from RFC 6464 audio levels, with hysteresis. Free of
//! GStreamer: times are milliseconds of the stream (from RTP timestamps), levels are -dBov
//! (0 loudest, 127 silence).

/// What counts as voice and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// A packet whose level is at most this (-dBov) is voice.
    pub threshold: u8,
    /// Voice must go on this long (ms) before it is speech: a cough or a knock is not.
    pub speech_ms: u64,
    /// Speech ends after this long (ms) without voice.
    pub silence_ms: u64,
    /// Voice packets this far apart (ms) or less belong to one stretch of voice.
    pub gap_ms: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            threshold: 50,
            speech_ms: 150,
            silence_ms: 800,
            gap_ms: 100,
        }
    }
}

/// The voice state of one stream.
#[derive(Debug, Default, Clone)]
pub struct Detector {
    settings: Settings,
    speaking: bool,
    /// Start of the current stretch of voice.
    voice_since: Option<u64>,
    /// Last voice packet.
    last_voice: Option<u64>,
}

impl Detector {
    /// A detector in silence.
    pub fn new(settings: Settings) -> Self {
        Self {
            settings,
            ..Self::default()
        }
    }

    /// Whether the stream is in speech.
    pub fn speaking(&self) -> bool {
        self.speaking
    }

    /// Changes the settings (keeps the state).
    pub fn set_settings(&mut self, settings: Settings) {
        self.settings = settings;
    }

    /// One packet at `at_ms` with `level`; `Some(speech)` when the state changes.
    pub fn update(&mut self, at_ms: u64, level: u8) -> Option<bool> {
        let s = self.settings;
        if level <= s.threshold {
            let continues = self
                .last_voice
                .is_some_and(|last| at_ms.saturating_sub(last) <= s.gap_ms);
            if !continues || self.voice_since.is_none() {
                self.voice_since = Some(at_ms);
            }
            self.last_voice = Some(at_ms);
        }
        match (self.speaking, self.voice_since, self.last_voice) {
            (false, Some(since), Some(last)) if last == at_ms && at_ms - since >= s.speech_ms => {
                self.speaking = true;
                Some(true)
            }
            (true, _, Some(last)) if at_ms.saturating_sub(last) >= s.silence_ms => {
                self.speaking = false;
                self.voice_since = None;
                Some(false)
            }
            _ => None,
        }
    }

    /// The stream ended or was flushed: speech, if any, ends.
    pub fn reset(&mut self) -> Option<bool> {
        let was = self.speaking;
        *self = Self::new(self.settings);
        was.then_some(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds 20 ms packets with `level` for `ms`, starting at `*t`; returns the transitions.
    fn feed(d: &mut Detector, t: &mut u64, ms: u64, level: u8) -> Vec<(u64, bool)> {
        let mut out = Vec::new();
        let end = *t + ms;
        while *t < end {
            if let Some(s) = d.update(*t, level) {
                out.push((*t, s));
            }
            *t += 20;
        }
        out
    }

    #[test]
    fn speech_after_150_ms_of_voice_silence_after_800_ms_without() {
        let mut d = Detector::new(Settings::default());
        let mut t = 0;
        assert!(feed(&mut d, &mut t, 1000, 127).is_empty());
        assert_eq!(feed(&mut d, &mut t, 2000, 30), [(1160, true)]);
        assert!(d.speaking());
        assert_eq!(feed(&mut d, &mut t, 2000, 90), [(3780, false)]);
    }

    #[test]
    fn a_cough_is_not_speech() {
        let mut d = Detector::new(Settings::default());
        let mut t = 0;
        for _ in 0..5 {
            assert!(feed(&mut d, &mut t, 100, 20).is_empty());
            assert!(feed(&mut d, &mut t, 400, 110).is_empty());
        }
    }

    #[test]
    fn short_pauses_do_not_end_speech() {
        let mut d = Detector::new(Settings::default());
        let mut t = 0;
        assert_eq!(feed(&mut d, &mut t, 400, 30).len(), 1);
        for _ in 0..10 {
            // Pauses between words.
            assert!(feed(&mut d, &mut t, 300, 110).is_empty());
            assert!(feed(&mut d, &mut t, 300, 35).is_empty());
        }
        assert!(d.speaking());
        assert_eq!(d.reset(), Some(false));
        assert_eq!(d.reset(), None);
    }

    #[test]
    fn gaps_in_the_stream_count_as_time() {
        // Packets stop (DTX, loss) while speaking: the next packet, quiet, ends speech.
        let mut d = Detector::new(Settings::default());
        let mut t = 0;
        feed(&mut d, &mut t, 400, 30);
        assert_eq!(d.update(t + 5000, 127), Some(false));
    }
}
