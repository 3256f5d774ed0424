//! Voice activity (`MediaEvent::VoiceActivity` → `vadNotification`) through the room core.

use super::tests::{connect, events, id, kinds, publisher, room};
use super::*;

#[test]
fn voice_activity_goes_to_the_tracks_subscribers_once_per_change() {
    let mut r = room();
    publisher(&mut r, "A");
    connect(&mut r, "B", "Bob");
    let vad = |speech| MediaEvent::VoiceActivity {
        track: TrackId::new("A:a"),
        speech,
    };
    let fx = r.media_event(vad(true));
    assert_eq!(
        events(&fx, "B"),
        [&ServerEvent::VadNotification {
            track_id: "A:a".into(),
            speech: true
        }]
    );
    assert!(kinds(&fx, "A").is_empty(), "not to the publisher itself");
    assert_eq!(r.speakers().active(), Some(&TrackId::new("A:a")));
    assert!(r.media_event(vad(true)).is_empty(), "no repeat");
    assert_eq!(kinds(&r.media_event(vad(false)), "B"), ["vadNotification"]);
    assert!(r.speakers().active().is_none());
    // Unknown tracks and tracks nobody was told about are ignored.
    let fx = r.media_event(MediaEvent::VoiceActivity {
        track: TrackId::new("Z:z"),
        speech: true,
    });
    assert!(fx.is_empty());
    // A speaking track that goes away is no longer the active speaker.
    r.media_event(vad(true));
    r.leave(&id("A"));
    assert!(r.speakers().active().is_none());
}
