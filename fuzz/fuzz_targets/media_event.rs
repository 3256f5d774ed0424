//! Media event decoding must never panic, and what decodes must survive the room logic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = lamina_protocol::media_event::decode(text);
    }
});
