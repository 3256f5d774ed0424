//! Media event decoding must never panic, and what decodes must encode to an event that
//! decodes again as the same type (both halves of the client events agree).
#![no_main]

use lamina_protocol::media_event::{decode, ClientEvent};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(event) = decode(text) {
            // Metadata floats need not survive exactly (serde_json parses them best-effort),
            // so the type is compared, not the whole event.
            let again = ClientEvent::decode(&event.encode()).expect("an encoded event decodes");
            assert_eq!(again.kind(), event.kind());
        }
    }
});
