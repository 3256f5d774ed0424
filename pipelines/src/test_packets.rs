//! Test RTP packets for the relinking tests.

/// A 100-byte RTP packet (payload type 96, SSRC 1) with sequence number `seq`, filled with it.
pub(crate) fn packet(seq: u8) -> gst::Buffer {
    let mut b = vec![0x80, 96, 0, seq, 0, 0, 0, 0, 0, 0, 0, 1];
    b.resize(100, seq);
    gst::Buffer::from_slice(b)
}
