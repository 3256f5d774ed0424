//! Small RTP helpers shared by the elements that look at packets without a full parse.

use std::sync::LazyLock;

/// The transport-wide congestion control header extension URI
/// (draft-holmer-rmcat-transport-wide-cc-extensions-01), as in SDP `a=extmap` and in
/// `extmap-<id>` caps fields.
pub const TWCC_URI: &str =
    "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01";

/// Largest id of the one-byte header extension form (RFC 8285; 15 is reserved).
pub const MAX_ONE_BYTE_ID: u8 = 14;

/// `caps` with `extmap-<id>` = [`TWCC_URI`] added (what makes rtpsession number the packets it
/// sends); unchanged for `id` 0.
pub(crate) fn add_twcc_extmap(mut caps: gst::Caps, id: u32) -> gst::Caps {
    if id != 0 {
        if let Some(s) = caps.make_mut().structure_mut(0) {
            s.set(format!("extmap-{id}").as_str(), TWCC_URI);
        }
    }
    caps
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn twcc_extmap_added() {
        gst::init().expect("gst init");
        let plain = gst::Caps::new_empty_simple("application/x-rtp");
        let out = add_twcc_extmap(plain.clone(), 4);
        assert_eq!(
            out.structure(0)
                .and_then(|s| s.get::<&str>("extmap-4").ok()),
            Some(TWCC_URI)
        );
        assert_eq!(add_twcc_extmap(plain.clone(), 0), plain);
    }
}
