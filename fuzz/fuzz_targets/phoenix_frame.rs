//! Phoenix v2 frame decoding (and reply-ref recovery) must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = lamina_protocol::phoenix_frame::decode(text, 1 << 20);
        let _ = lamina_protocol::phoenix_frame::recover(text);
    }
});
