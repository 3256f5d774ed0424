//! Phoenix v2 frame decoding (and reply-ref recovery) must never panic, and a decoded frame
//! must encode to a frame that decodes again with the same refs, topic and event.
#![no_main]

use lamina_protocol::phoenix_frame::{decode, recover};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(frame) = decode(text, 1 << 20) {
            let again = decode(&frame.encode(), usize::MAX).expect("an encoded frame decodes");
            assert_eq!(
                (
                    &again.join_ref,
                    &again.reference,
                    &again.topic,
                    &again.event
                ),
                (
                    &frame.join_ref,
                    &frame.reference,
                    &frame.topic,
                    &frame.event
                )
            );
        }
        let _ = recover(text);
    }
});
