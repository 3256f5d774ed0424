//! RTP stream identifiers (RIDs) of simulcast layers: the RFC 8852 header extension
//! (`urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id`) and which values are accepted.

use std::sync::Arc;

/// Longest RID accepted (RFC 8851 allows more; browsers use one or two characters).
pub const MAX_RID_LEN: usize = 16;

/// Whether `rid` is a RID the forwarder accepts: 1–16 characters of `[A-Za-z0-9_-]`.
pub fn is_valid_rid(rid: &[u8]) -> bool {
    (1..=MAX_RID_LEN).contains(&rid.len())
        && rid
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_')
}

/// Parses the `rids` property: comma-separated RIDs, blanks around them ignored. Returns the
/// valid ones (duplicates removed, order kept) and the invalid entries.
pub fn parse_rid_list(list: &str) -> (Vec<Arc<str>>, Vec<String>) {
    let mut valid: Vec<Arc<str>> = Vec::new();
    let mut invalid = Vec::new();
    for entry in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        if !is_valid_rid(entry.as_bytes()) {
            invalid.push(entry.to_owned());
        } else if !valid.iter().any(|v| &**v == entry) {
            valid.push(Arc::from(entry));
        }
    }
    (valid, invalid)
}

/// The value of header extension `id` in `rtp` (one-byte form for ids 1–14, else or
/// additionally the two-byte form), if the packet carries it.
pub fn extension_value<'a, T>(rtp: &'a gst_rtp::RTPBuffer<'_, T>, id: u8) -> Option<&'a [u8]> {
    if id == 0 || !rtp.is_extension() {
        return None;
    }
    // The one-byte lookup takes only ids 1..=14 (a GLib critical otherwise); both check the
    // extension's profile bits (0xBEDE and 0x100x) themselves.
    if id < 15 {
        if let Some(data) = rtp.extension_onebyte_header(id, 0) {
            return Some(data);
        }
    }
    rtp.extension_twobytes_header(id, 0).map(|(_, data)| data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_rids() {
        for ok in ["l", "m", "h", "q0", "hi-res", "a_b", "0123456789abcdef"] {
            assert!(is_valid_rid(ok.as_bytes()), "{ok}");
        }
        for bad in ["", "0123456789abcdefg", "a b", "é", "l\0", "h,l"] {
            assert!(!is_valid_rid(bad.as_bytes()), "{bad:?}");
        }
    }

    #[test]
    fn rid_lists() {
        let (valid, invalid) = parse_rid_list(" l, m ,h,,m, bad rid ");
        let valid: Vec<&str> = valid.iter().map(|r| &**r).collect();
        assert_eq!(valid, vec!["l", "m", "h"]);
        assert_eq!(invalid, vec!["bad rid".to_owned()]);
        assert!(parse_rid_list("").0.is_empty());
    }

    fn packet_with_extension(bits: u16, ext: &[u8]) -> gst::Buffer {
        assert_eq!(ext.len() % 4, 0);
        let mut data = vec![0x90, 96, 0, 1, 0, 0, 0, 0, 0, 0, 0, 7];
        data.extend_from_slice(&bits.to_be_bytes());
        data.extend_from_slice(&u16::try_from(ext.len() / 4).unwrap().to_be_bytes());
        data.extend_from_slice(ext);
        data.extend_from_slice(&[0x10, 0x00]);
        gst::Buffer::from_mut_slice(data)
    }

    fn read(buf: &gst::Buffer, id: u8) -> Option<Vec<u8>> {
        let rtp = gst_rtp::RTPBuffer::from_buffer_readable(buf).expect("valid rtp");
        extension_value(&rtp, id).map(<[u8]>::to_vec)
    }

    #[test]
    fn one_and_two_byte_forms() {
        gst::init().expect("gst init");
        // One-byte: id 3 "h", padding byte, id 10 (another extension, 2 bytes).
        let one = packet_with_extension(0xBEDE, &[0x30, b'h', 0x00, 0xA1, 0xAA, 0xBB, 0, 0]);
        assert_eq!(read(&one, 3), Some(b"h".to_vec()));
        assert_eq!(read(&one, 10), Some(vec![0xAA, 0xBB]));
        assert_eq!(read(&one, 4), None);
        assert_eq!(read(&one, 0), None);
        assert_eq!(read(&one, 200), None);
        // Two-byte: id 3 "hi", id 200 "m".
        let two = packet_with_extension(0x1000, &[3, 2, b'h', b'i', 200, 1, b'm', 0]);
        assert_eq!(read(&two, 3), Some(b"hi".to_vec()));
        assert_eq!(read(&two, 200), Some(b"m".to_vec()));
        assert_eq!(read(&two, 4), None);
        // Another profile: not an RFC 8285 extension block.
        let other = packet_with_extension(0x1234, &[0x30, b'h', 0, 0]);
        assert_eq!(read(&other, 3), None);
    }
}
