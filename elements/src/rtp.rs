//! Small RTP helpers shared by the elements that look at packets without a full parse.

use std::sync::LazyLock;

/// `(ssrc, seq)` of an RTP packet, read from its fixed header without mapping it as RTP, or
/// `None` if it is shorter than a fixed header or not RTP version 2.
pub(crate) fn ssrc_and_seq(buffer: &gst::BufferRef) -> Option<(u32, u16)> {
    let mut head = [0u8; 12];
    if buffer.size() < head.len()
        || buffer.copy_to_slice(0, &mut head).is_err()
        || head[0] >> 6 != 2
    {
        return None;
    }
    Some((
        u32::from_be_bytes([head[8], head[9], head[10], head[11]]),
        u16::from_be_bytes([head[2], head[3]]),
    ))
}

/// The pad templates of a one-in one-out RTP filter: always `sink` and `src`, `application/x-rtp`.
pub(crate) fn filter_pad_templates() -> &'static [gst::PadTemplate] {
    static TEMPLATES: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
        let caps = gst::Caps::new_empty_simple("application/x-rtp");
        [
            ("sink", gst::PadDirection::Sink),
            ("src", gst::PadDirection::Src),
        ]
        .into_iter()
        .map(|(name, dir)| {
            gst::PadTemplate::new(name, dir, gst::PadPresence::Always, &caps)
                .expect("valid pad template")
        })
        .collect()
    });
    TEMPLATES.as_ref()
}
