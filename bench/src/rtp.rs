//! Small RTP and VP8 helpers for the synthetic peers: packetizing a VP8 frame (RFC 7741),
//! reading the clear header of an outgoing SRTP packet, and recognising keyframe starts.

use std::hash::Hasher;

/// Largest VP8 payload chunk per RTP packet (plus a 4-byte descriptor).
pub const MAX_CHUNK: usize = 1100;

/// Splits one VP8 frame into RTP payloads: a 4-byte descriptor (X=1, S on the first chunk,
/// I=1 with a 15-bit picture id) followed by at most [`MAX_CHUNK`] bytes of the frame. With a
/// `tag` (5 bits) the descriptor also carries it as KEYIDX (K=1, one more byte): what tells
/// the publishers of one loop apart at the receivers when a server rewrites picture ids, as
/// Janus does on simulcast streams (see [`payload_key`]).
pub fn vp8_packets(frame: &[u8], picture_id: u16, tag: Option<u8>) -> Vec<Vec<u8>> {
    let n = frame.len().div_ceil(MAX_CHUNK).max(1);
    let chunk = frame.len().div_ceil(n).max(1);
    frame
        .chunks(chunk)
        .enumerate()
        .map(|(i, c)| {
            let mut p = Vec::with_capacity(c.len() + 5);
            p.push(if i == 0 { 0x90 } else { 0x80 });
            p.push(if tag.is_some() { 0x90 } else { 0x80 });
            p.push(0x80 | ((picture_id >> 8) as u8 & 0x7f));
            p.push(picture_id as u8);
            if let Some(t) = tag {
                p.push(t & 0x1f);
            }
            p.extend_from_slice(c);
            p
        })
        .collect()
}

/// `(ssrc, seq)` of a datagram that holds an SRTP packet (the RTP header is sent in clear);
/// `None` for STUN, DTLS and RTCP.
pub fn srtp_ids(datagram: &[u8]) -> Option<(u32, u16)> {
    if datagram.len() < 12 || datagram[0] >> 6 != 2 || (192..=223).contains(&datagram[1]) {
        return None;
    }
    let seq = u16::from_be_bytes([datagram[2], datagram[3]]);
    let ssrc = u32::from_be_bytes([datagram[8], datagram[9], datagram[10], datagram[11]]);
    Some((ssrc, seq))
}

/// Whether a datagram holds an SRTCP packet (RFC 5761 demultiplexing: version 2, second byte
/// 192..=223). A compound packet counts once: this is one RTCP transmission of the sender.
pub fn is_rtcp(datagram: &[u8]) -> bool {
    datagram.len() >= 8 && datagram[0] >> 6 == 2 && (192..=223).contains(&datagram[1])
}

/// Whether a VP8 RTP payload starts a keyframe (S=1, partition 0, VP8 P bit 0).
pub fn vp8_keyframe_start(payload: &[u8]) -> bool {
    let Some(&b0) = payload.first() else {
        return false;
    };
    if b0 & 0x10 == 0 || b0 & 0x0f != 0 {
        return false;
    }
    let mut at = 1;
    if b0 & 0x80 != 0 {
        let Some(&x) = payload.get(1) else {
            return false;
        };
        at = 2;
        if x & 0x80 != 0 {
            at += if payload.get(2).is_some_and(|b| b & 0x80 != 0) {
                2
            } else {
                1
            };
        }
        if x & 0x40 != 0 {
            at += 1;
        }
        if x & 0x30 != 0 {
            at += 1;
        }
    }
    payload.get(at).is_some_and(|b| b & 1 == 0)
}

/// A 64-bit hash of a payload: what identifies a media packet across the server, which
/// rewrites SSRC, sequence number and timestamp but never the payload. A VP8 payload whose
/// descriptor carries a KEYIDX tag ([`vp8_packets`]) is hashed without its picture id
/// and TL0PICIDX, which a server switching simulcast layers rewrites (Janus does; the tag
/// keeps the publishers apart instead).
pub fn payload_key(payload: &[u8]) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    match rewritable_ids(payload) {
        Some((from, to)) => {
            h.write(&payload[..from]);
            h.write(&payload[to..]);
        }
        None => h.write(payload),
    }
    h.finish()
}

/// Where the picture id and TL0PICIDX of a VP8 payload with a KEYIDX tag are (`from..to`).
fn rewritable_ids(payload: &[u8]) -> Option<(usize, usize)> {
    let (&b0, &x) = (payload.first()?, payload.get(1)?);
    if b0 & 0x80 == 0 || x & 0x10 == 0 {
        return None;
    }
    let mut to = 2;
    if x & 0x80 != 0 {
        to += if payload.get(2)? & 0x80 != 0 { 2 } else { 1 };
    }
    if x & 0x40 != 0 {
        to += 1;
    }
    (to <= payload.len()).then_some((2, to))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packetizes_and_recognises_keyframes() {
        let frame: Vec<u8> = (0..2500u32).map(|i| (i as u8) & 0xfe).collect();
        let pkts = vp8_packets(&frame, 0x1234, None);
        assert_eq!(pkts.len(), 3);
        assert!(vp8_keyframe_start(&pkts[0]));
        assert!(!vp8_keyframe_start(&pkts[1]));
        let total: usize = pkts.iter().map(|p| p.len() - 4).sum();
        assert_eq!(total, frame.len());
        let mut delta = frame.clone();
        delta[0] |= 1;
        assert!(!vp8_keyframe_start(&vp8_packets(&delta, 1, None)[0]));
    }

    #[test]
    fn tagged_packets_keep_their_key_when_picture_ids_are_rewritten() {
        let frame: Vec<u8> = (0..1500u32).map(|i| (i as u8) & 0xfe).collect();
        let a = vp8_packets(&frame, 0x1234, Some(3));
        assert_eq!((a.len(), a[0].len()), (2, 5 + 750));
        assert!(vp8_keyframe_start(&a[0]));
        let b = vp8_packets(&frame, 0x0777, Some(3));
        assert_eq!(payload_key(&a[0]), payload_key(&b[0]));
        assert_eq!(payload_key(&a[1]), payload_key(&b[1]));
        assert_ne!(payload_key(&a[0]), payload_key(&a[1]));
        let other = vp8_packets(&frame, 0x1234, Some(4));
        assert_ne!(payload_key(&a[0]), payload_key(&other[0]));
        // Untagged packets: the whole payload, picture id included.
        let c = vp8_packets(&frame, 0x1234, None);
        let d = vp8_packets(&frame, 0x0777, None);
        assert_eq!(c[0].len(), 4 + 750);
        assert_ne!(payload_key(&c[0]), payload_key(&d[0]));
    }

    #[test]
    fn reads_clear_srtp_header() {
        let mut d = vec![
            0x80, 96, 0x01, 0x02, 0, 0, 0, 0, 0xde, 0xad, 0xbe, 0xef, 1, 2,
        ];
        assert_eq!(srtp_ids(&d), Some((0xdeadbeef, 0x0102)));
        assert!(!is_rtcp(&d));
        d[1] = 200;
        assert_eq!(srtp_ids(&d), None);
        assert!(is_rtcp(&d));
        assert_eq!(srtp_ids(&[0, 1, 2]), None);
    }
}
