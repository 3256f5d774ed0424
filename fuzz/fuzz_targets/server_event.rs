//! Server media event decoding (the client's half) must never panic, and what decodes must
//! encode to an event that decodes again as the same type.
#![no_main]

use lamina_protocol::media_event::ServerEvent;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(event) = ServerEvent::decode(text) {
            let again = ServerEvent::decode(&event.encode()).expect("an encoded event decodes");
            assert_eq!(again.kind(), event.kind());
        }
    }
});
