//! Caps normalisation: what a forwarder src pad announces downstream.
//!
//! The publisher's caps carry publisher-specific fields (`sprop-*`, `rtcp-fb-*`, `extmap-*`,
//! `rid-*`, `a-*`, `ssrc-*`, codec parameters) that would leak into every subscriber's
//! negotiation. A src pad announces only what identifies the stream, with its own payload type
//! and SSRC written in (and, with `twcc-ext-id`, its own TWCC `extmap-<id>`: `twcc.rs`).

/// Fields copied from the input caps; every other field is dropped.
const KEPT_FIELDS: [&str; 3] = ["media", "encoding-name", "clock-rate"];

/// Normalised `application/x-rtp` caps for one output: `media`, `encoding-name`, `clock-rate`
/// from `input`, `encoding-params` for audio (Opus defaults to `"2"`), `payload` = `pt` and
/// `ssrc` = `ssrc`, where 0 means "keep the input's value" (absent if the input has none).
pub fn forwarded_caps(input: &gst::CapsRef, pt: u32, ssrc: u32) -> gst::Caps {
    let mut out = gst::Structure::new_empty("application/x-rtp");
    if let Some(s) = input.structure(0) {
        for field in KEPT_FIELDS {
            if let Ok(value) = s.value(field) {
                out.set_value(field, value.clone());
            }
        }
        if s.get::<&str>("media").ok() == Some("audio") {
            if let Ok(value) = s.value("encoding-params") {
                out.set_value("encoding-params", value.clone());
            } else if s
                .get::<&str>("encoding-name")
                .is_ok_and(|n| n.eq_ignore_ascii_case("OPUS"))
            {
                out.set("encoding-params", "2");
            }
        }
        if pt == 0 {
            if let Ok(value) = s.value("payload") {
                out.set_value("payload", value.clone());
            }
        }
        if ssrc == 0 {
            if let Ok(value) = s.value("ssrc") {
                out.set_value("ssrc", value.clone());
            }
        }
    }
    if pt != 0 {
        // RTP caps carry the payload type as a signed int.
        out.set("payload", i32::try_from(pt).unwrap_or(i32::MAX));
    }
    if ssrc != 0 {
        out.set("ssrc", ssrc);
    }
    gst::Caps::builder_full().structure(out).build()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caps(s: &str) -> gst::Caps {
        gst::init().expect("gst init");
        s.parse().expect("valid caps")
    }

    #[test]
    fn video_drops_publisher_fields_and_rewrites() {
        let input = caps(
            "application/x-rtp, media=(string)video, encoding-name=(string)VP8, \
             clock-rate=(int)90000, payload=(int)96, ssrc=(uint)1111, \
             rtcp-fb-nack-pli=(boolean)true, extmap-3=(string)urn:foo, rid-h=(string)recv, \
             a-simulcast=(string)\"recv h;l\", ssrc-1111-cname=(string)x",
        );
        let out = forwarded_caps(&input, 101, 4242);
        assert_eq!(
            out,
            caps(
                "application/x-rtp, media=(string)video, encoding-name=(string)VP8, \
                 clock-rate=(int)90000, payload=(int)101, ssrc=(uint)4242"
            )
        );
    }

    #[test]
    fn zero_keeps_input_payload_and_ssrc() {
        let input = caps(
            "application/x-rtp, media=(string)video, encoding-name=(string)H264, \
             clock-rate=(int)90000, payload=(int)102, ssrc=(uint)7, packetization-mode=(string)1",
        );
        let out = forwarded_caps(&input, 0, 0);
        assert_eq!(
            out,
            caps(
                "application/x-rtp, media=(string)video, encoding-name=(string)H264, \
                 clock-rate=(int)90000, payload=(int)102, ssrc=(uint)7"
            )
        );
        let bare = caps("application/x-rtp, media=(string)video");
        assert_eq!(
            forwarded_caps(&bare, 0, 0),
            caps("application/x-rtp, media=(string)video")
        );
    }

    #[test]
    fn audio_keeps_encoding_params() {
        let input = caps(
            "application/x-rtp, media=(string)audio, encoding-name=(string)OPUS, \
             clock-rate=(int)48000, payload=(int)111, encoding-params=(string)2, \
             sprop-stereo=(string)0, sprop-maxcapturerate=(string)48000",
        );
        let expected = caps(
            "application/x-rtp, media=(string)audio, encoding-name=(string)OPUS, \
             clock-rate=(int)48000, encoding-params=(string)2, payload=(int)109",
        );
        assert_eq!(forwarded_caps(&input, 109, 0), expected);
        let without = caps(
            "application/x-rtp, media=(string)audio, encoding-name=(string)OPUS, \
             clock-rate=(int)48000, payload=(int)111",
        );
        assert_eq!(forwarded_caps(&without, 109, 0), expected);
    }
}
