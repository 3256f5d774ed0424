//! Keyframe detection on RTP payloads, without decoding, for simulcast layer switching.
//!
//! A subscriber switches to another layer on the first packet of one of its keyframes; this
//! module answers "does this packet start a keyframe?" from the RTP payload only:
//!
//! - VP8 (RFC 7741 §4.2–4.3): the payload descriptor (with its optional `X` extension byte and
//!   the `I`/`L`/`T`/`K` fields) must have `S=1` and `PID=0`, and the VP8 payload header that
//!   follows must have its `P` (inverse key frame) bit clear.
//! - H264 (RFC 6184 §5.6–5.8): an IDR slice (NAL type 5) or a sequence parameter set (type 7) in
//!   a single NAL unit packet, inside a STAP-A aggregate, or at the start (`S` bit) of an FU-A.
//! - VP9 (RFC 9628 §4.2): `B=1` (start of a frame), `P=0` (not inter-predicted) and, when layer
//!   indices are present, spatial layer 0.
//! - AV1 (AV1 RTP spec §4.4): the aggregation header's `N` bit (first packet of a coded video
//!   sequence).
//!
//! Other encodings are [`Codec::Other`]: every packet counts as a switch point (the switched
//! stream may be undecodable until the keyframe the forwarder asked for arrives).

/// The encodings the forwarder can find keyframes in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Codec {
    /// VP8, RFC 7741.
    Vp8,
    /// VP9, RFC 9628.
    Vp9,
    /// H264, RFC 6184 (packetization modes 0 and 1).
    H264,
    /// AV1, "RTP Payload Format For AV1" (AOMedia).
    Av1,
    /// Anything else, or not known yet.
    #[default]
    Other,
}

impl Codec {
    /// The codec named by an RTP `encoding-name` (case-insensitive).
    pub fn from_encoding_name(name: &str) -> Self {
        if name.eq_ignore_ascii_case("VP8") {
            Codec::Vp8
        } else if name.eq_ignore_ascii_case("VP9") {
            Codec::Vp9
        } else if name.eq_ignore_ascii_case("H264") {
            Codec::H264
        } else if name.eq_ignore_ascii_case("AV1") {
            Codec::Av1
        } else {
            Codec::Other
        }
    }

    /// The codec of `application/x-rtp` caps (from `encoding-name`).
    pub fn from_caps(caps: &gst::CapsRef) -> Self {
        caps.structure(0)
            .and_then(|s| s.get::<&str>("encoding-name").ok())
            .map_or(Codec::Other, Self::from_encoding_name)
    }

    /// Whether an RTP payload of this codec is the first packet of a keyframe (always true for
    /// [`Codec::Other`]).
    pub fn starts_keyframe(self, payload: &[u8]) -> bool {
        match self {
            Codec::Vp8 => vp8_starts_keyframe(payload),
            Codec::Vp9 => vp9_starts_keyframe(payload),
            Codec::H264 => h264_starts_keyframe(payload),
            Codec::Av1 => payload.first().is_some_and(|b| b & 0x08 != 0),
            Codec::Other => true,
        }
    }
}

/// RFC 7741: the payload descriptor, then the first byte of the VP8 payload header.
pub fn vp8_starts_keyframe(payload: &[u8]) -> bool {
    let Some(&first) = payload.first() else {
        return false;
    };
    let extended = first & 0x80 != 0;
    let start = first & 0x10 != 0;
    let pid = first & 0x07;
    if !start || pid != 0 {
        return false;
    }
    let mut offset = 1;
    if extended {
        let Some(&ext) = payload.get(offset) else {
            return false;
        };
        offset += 1;
        if ext & 0x80 != 0 {
            // I: PictureID, 7 or (M bit) 15 bits.
            let Some(&pic) = payload.get(offset) else {
                return false;
            };
            offset += if pic & 0x80 != 0 { 2 } else { 1 };
        }
        if ext & 0x40 != 0 {
            // L: TL0PICIDX.
            offset += 1;
        }
        if ext & 0x30 != 0 {
            // T or K: TID|Y|KEYIDX.
            offset += 1;
        }
    }
    // VP8 payload header: bit 0 of the first byte is P, 0 for a key frame.
    payload.get(offset).is_some_and(|b| b & 0x01 == 0)
}

/// RFC 9628: `I|P|L|F|B|E|V|Z`, PictureID, then the layer indices if `L`.
pub fn vp9_starts_keyframe(payload: &[u8]) -> bool {
    let Some(&first) = payload.first() else {
        return false;
    };
    let picture_id = first & 0x80 != 0;
    let inter = first & 0x40 != 0;
    let layers = first & 0x20 != 0;
    let begin = first & 0x08 != 0;
    if inter || !begin {
        return false;
    }
    let mut offset = 1;
    if picture_id {
        let Some(&pic) = payload.get(offset) else {
            return false;
        };
        offset += if pic & 0x80 != 0 { 2 } else { 1 };
    }
    if layers {
        // TID(3) U(1) SID(3) D(1): a keyframe starts at spatial layer 0.
        let Some(&idx) = payload.get(offset) else {
            return false;
        };
        return (idx >> 1) & 0x07 == 0;
    }
    offset <= payload.len()
}

/// H264 NAL unit types that start a keyframe: IDR slice and sequence parameter set.
fn h264_keyframe_nal(nal_type: u8) -> bool {
    nal_type == 5 || nal_type == 7
}

/// RFC 6184: single NAL unit (types 1–23), STAP-A (24), FU-A (28).
pub fn h264_starts_keyframe(payload: &[u8]) -> bool {
    let Some(&header) = payload.first() else {
        return false;
    };
    match header & 0x1F {
        t @ 1..=23 => h264_keyframe_nal(t),
        24 => {
            // STAP-A: (16-bit size, NAL unit)*
            let mut rest = &payload[1..];
            while rest.len() >= 3 {
                let size = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
                if size == 0 || rest.len() < 2 + size {
                    return false;
                }
                if h264_keyframe_nal(rest[2] & 0x1F) {
                    return true;
                }
                rest = &rest[2 + size..];
            }
            false
        }
        28 => payload
            .get(1)
            .is_some_and(|fu| fu & 0x80 != 0 && h264_keyframe_nal(fu & 0x1F)),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding_names() {
        assert_eq!(Codec::from_encoding_name("vp8"), Codec::Vp8);
        assert_eq!(Codec::from_encoding_name("H264"), Codec::H264);
        assert_eq!(Codec::from_encoding_name("VP9"), Codec::Vp9);
        assert_eq!(Codec::from_encoding_name("AV1"), Codec::Av1);
        assert_eq!(Codec::from_encoding_name("OPUS"), Codec::Other);
        gst::init().expect("gst init");
        let caps: gst::Caps = "application/x-rtp, encoding-name=(string)VP8"
            .parse()
            .expect("caps");
        assert_eq!(Codec::from_caps(&caps), Codec::Vp8);
        assert_eq!(
            Codec::from_caps(&gst::Caps::new_empty_simple("application/x-rtp")),
            Codec::Other
        );
    }

    #[test]
    fn vp8_minimal_descriptor() {
        // S=1, PID=0; payload header P=0 (key) or 1 (delta).
        assert!(vp8_starts_keyframe(&[0x10, 0x00, 0x9d]));
        assert!(!vp8_starts_keyframe(&[0x10, 0x01, 0x9d]));
        // Not the start of a partition, or not partition 0.
        assert!(!vp8_starts_keyframe(&[0x00, 0x00]));
        assert!(!vp8_starts_keyframe(&[0x11, 0x00]));
        // Truncated.
        assert!(!vp8_starts_keyframe(&[0x10]));
        assert!(!vp8_starts_keyframe(&[]));
    }

    #[test]
    fn vp8_extended_descriptor() {
        // X=1, I=1 with a 15-bit PictureID (M=1), then the payload header.
        assert!(vp8_starts_keyframe(&[0x90, 0x80, 0x81, 0x23, 0x00]));
        assert!(!vp8_starts_keyframe(&[0x90, 0x80, 0x81, 0x23, 0x01]));
        // 7-bit PictureID: the byte after it is the payload header.
        assert!(vp8_starts_keyframe(&[0x90, 0x80, 0x05, 0x00]));
        assert!(!vp8_starts_keyframe(&[0x90, 0x80, 0x05, 0x01]));
        // I, L, T and K all present (as Chrome sends with temporal layers).
        assert!(vp8_starts_keyframe(&[
            0x90, 0xF0, 0x81, 0x23, 0x07, 0x20, 0x00
        ]));
        assert!(!vp8_starts_keyframe(&[
            0x90, 0xF0, 0x81, 0x23, 0x07, 0x20, 0x01
        ]));
        // Only K: one TID/KEYIDX byte.
        assert!(vp8_starts_keyframe(&[0x90, 0x10, 0x00, 0x00]));
        // A delta byte that would look like a key frame if the extensions were ignored.
        assert!(!vp8_starts_keyframe(&[0x90, 0x40, 0x00, 0x01]));
        // Truncated inside the extensions.
        assert!(!vp8_starts_keyframe(&[0x90]));
        assert!(!vp8_starts_keyframe(&[0x90, 0x80]));
        assert!(!vp8_starts_keyframe(&[0x90, 0x80, 0x81, 0x23]));
    }

    #[test]
    fn h264_single_nal_units() {
        // IDR slice (nal_ref_idc 3, type 5) and SPS (type 7).
        assert!(h264_starts_keyframe(&[0x65, 0x88, 0x84]));
        assert!(h264_starts_keyframe(&[0x67, 0x42, 0xc0, 0x1f]));
        // Non-IDR slice, PPS, SEI.
        assert!(!h264_starts_keyframe(&[0x41, 0x9a]));
        assert!(!h264_starts_keyframe(&[0x68, 0xce]));
        assert!(!h264_starts_keyframe(&[0x06, 0x05]));
        assert!(!h264_starts_keyframe(&[]));
    }

    #[test]
    fn h264_stap_a() {
        // STAP-A: SPS (4 bytes), PPS (2 bytes), IDR (3 bytes).
        let stap = [
            0x78, 0x00, 0x04, 0x67, 0x42, 0xc0, 0x1f, 0x00, 0x02, 0x68, 0xce, 0x00, 0x03, 0x65,
            0x88, 0x84,
        ];
        assert!(h264_starts_keyframe(&stap));
        // IDR only as the last unit.
        let idr_last = [0x78, 0x00, 0x02, 0x68, 0xce, 0x00, 0x02, 0x65, 0x88];
        assert!(h264_starts_keyframe(&idr_last));
        // Only PPS and SEI.
        let no_key = [0x78, 0x00, 0x02, 0x68, 0xce, 0x00, 0x02, 0x06, 0x05];
        assert!(!h264_starts_keyframe(&no_key));
        // A size running past the end is not trusted.
        assert!(!h264_starts_keyframe(&[0x78, 0x00, 0x09, 0x68, 0xce]));
        assert!(!h264_starts_keyframe(&[0x78, 0x00, 0x00, 0x65]));
        assert!(!h264_starts_keyframe(&[0x78]));
    }

    #[test]
    fn h264_fu_a() {
        // FU indicator (type 28), FU header S=1 type 5: start of an IDR.
        assert!(h264_starts_keyframe(&[0x7c, 0x85, 0x88]));
        // Middle and end fragments of the same IDR.
        assert!(!h264_starts_keyframe(&[0x7c, 0x05, 0x88]));
        assert!(!h264_starts_keyframe(&[0x7c, 0x45, 0x88]));
        // Start of a non-IDR slice.
        assert!(!h264_starts_keyframe(&[0x7c, 0x81, 0x9a]));
        assert!(!h264_starts_keyframe(&[0x7c]));
        // FU-B (29) and STAP-B (25) are not used by WebRTC.
        assert!(!h264_starts_keyframe(&[0x7d, 0x85, 0x00, 0x00]));
        assert!(!h264_starts_keyframe(&[
            0x79, 0x00, 0x00, 0x00, 0x02, 0x65, 0x88
        ]));
    }

    #[test]
    fn vp9_and_av1() {
        // B=1, P=0, no picture id.
        assert!(vp9_starts_keyframe(&[0x08, 0x00]));
        // Inter-predicted, or not the beginning of a frame.
        assert!(!vp9_starts_keyframe(&[0x48, 0x00]));
        assert!(!vp9_starts_keyframe(&[0x00, 0x00]));
        // I=1 (15-bit id), L=1 with SID 0 and SID 1.
        assert!(vp9_starts_keyframe(&[0xA8, 0x80, 0x01, 0x00]));
        assert!(!vp9_starts_keyframe(&[0xA8, 0x80, 0x01, 0x02]));
        assert!(!vp9_starts_keyframe(&[0xA8, 0x80]));
        assert!(Codec::Av1.starts_keyframe(&[0x18]));
        assert!(!Codec::Av1.starts_keyframe(&[0x10]));
        assert!(Codec::Other.starts_keyframe(&[]));
    }
}
