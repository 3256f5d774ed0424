//! Transport-wide congestion control toward subscribers: the TWCC header extension
//! (draft-holmer-rmcat-transport-wide-cc-extensions-01) under the id each subscriber negotiated.
//!
//! A subscriber's `rtpsession` (GStreamer 1.22) writes the transport-wide sequence number into
//! every packet it sends, but only when its send caps carry `extmap-<id>` = [`TWCC_URI`] and only
//! into the first *one-byte* header extension element with that id the packet already has (2
//! bytes, not checked: a shorter element would get its neighbour overwritten). A src pad with
//! `twcc-ext-id` set therefore announces that field in its caps (`crate::rtp::add_twcc_extmap`;
//! unless `twcc-in-caps` is false, when `laminartx` announces it after the bundle's funnel) and
//! makes every packet carry exactly one such element under that id ([`apply`]):
//!
//! - *rename* (the usual case with browsers, in place, no allocation): the packet has a one-byte
//!   (`0xBEDE`) extension block whose first element with the input's TWCC id has 2 bytes. Its id
//!   nibble becomes the output id; elements that had the output id get the input id (swap).
//! - *add* (rare, may allocate): no such element, a two-byte (`0x100x`) block, or no extension.
//!   The block is rebuilt in the one-byte form with [`gst_rtp::RTPBuffer`]: the other elements
//!   are kept (the input's TWCC element of a two-byte block gives its value to the new one),
//!   an element with the output id gets the input id if that is a free one-byte id, else it is
//!   dropped, and a 2-byte TWCC element with the output id is appended.
//! - *unrewritable* (the packet is left as it is): a malformed block (an element running past
//!   its end), a block of another profile, or a two-byte element the one-byte form cannot carry
//!   (id above 14, empty, or longer than 16 bytes).

pub use crate::rtp::TWCC_URI;

/// Structure name of the upstream event rtpsession (GStreamer 1.22, `gst_rtp_session_notify_twcc`)
/// sends for every transport-wide-cc feedback packet a subscriber sends, listing the packets it
/// covers (send and arrival times, sizes): what a bandwidth estimator of that subscriber reads.
pub const TWCC_PACKETS_EVENT: &str = "RTPTWCCPackets";

pub use crate::rtp::MAX_ONE_BYTE_ID;

use super::hdrext::{
    blank_element, next_one_byte, one_byte_elements, two_byte_elements, with_block, Malformed,
    ONE_BYTE_PROFILE, TWO_BYTE_PROFILE, TWO_BYTE_PROFILE_MASK,
};

/// Size of the TWCC element's data (the transport-wide sequence number).
const TWCC_LEN: usize = 2;

/// The id of the TWCC extension in `caps`: the first `extmap-<n>` field whose value is
/// [`TWCC_URI`] (a string, or an array `<direction, uri, attributes>` as webrtcbin writes it
/// for extmaps with a direction or attributes), `n` in 1..=255; 0 if none.
pub fn id_from_caps(caps: &gst::CapsRef) -> u8 {
    let Some(s) = caps.structure(0) else {
        return 0;
    };
    for (name, value) in s.iter() {
        let Some(id) = name
            .as_str()
            .strip_prefix("extmap-")
            .and_then(|n| n.parse::<u8>().ok())
            .filter(|id| *id != 0)
        else {
            continue;
        };
        let is_twcc = match value.get::<&str>() {
            Ok(uri) => uri == TWCC_URI,
            Err(_) => value.get::<gst::Array>().is_ok_and(|a| {
                a.as_slice()
                    .get(1)
                    .is_some_and(|v| v.get::<&str>().is_ok_and(|uri| uri == TWCC_URI))
            }),
        };
        if is_twcc {
            return id;
        }
    }
    0
}

/// What [`apply`] did to a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The input's TWCC element now has the output id (possibly it already had).
    Renamed,
    /// A TWCC element with the output id was added (the extension block was rebuilt).
    Added,
    /// The packet was left unchanged: malformed or not convertible extension block.
    Unrewritable,
}

/// What the in-place pass found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum InPlace {
    Done,
    Rebuild,
    Unrewritable,
}

/// The rename pass on a one-byte block: gives the first element with `in_id`, if it has 2
/// bytes, the id `out_id` and elements with `out_id` the id `in_id`. Nothing is written unless
/// the whole block is well-formed.
fn rename_one_byte(block: &mut [u8], in_id: u8, out_id: u8) -> InPlace {
    let mut first_in: Option<(usize, usize)> = None;
    let parsed = one_byte_elements(block, |at, id, len| {
        if id == in_id && first_in.is_none() {
            first_in = Some((at, len));
        }
    });
    if parsed.is_err() {
        return InPlace::Unrewritable;
    }
    let Some((twcc_at, TWCC_LEN)) = first_in else {
        return InPlace::Rebuild;
    };
    if in_id == out_id {
        return InPlace::Done;
    }
    // Well-formed (checked above): only id nibbles change, lengths stay.
    let mut i = 0;
    while let Ok(Some((at, id, len))) = next_one_byte(block, i) {
        if id == out_id {
            block[at] = (in_id << 4) | (block[at] & 0x0F);
        }
        i = at + 1 + len;
    }
    block[twcc_at] = (out_id << 4) | (block[twcc_at] & 0x0F);
    InPlace::Done
}

/// The in-place pass on the extension block at byte `at` of `buf`.
fn rename_in_place(buf: &mut gst::BufferRef, at: usize, in_id: u8, out_id: u8) -> InPlace {
    with_block(buf, at, |bits, block| {
        if bits == ONE_BYTE_PROFILE {
            rename_one_byte(block, in_id, out_id)
        } else if bits & TWO_BYTE_PROFILE_MASK == TWO_BYTE_PROFILE {
            match two_byte_elements(block, |_, _, _| ()) {
                Ok(()) => InPlace::Rebuild,
                Err(Malformed) => InPlace::Unrewritable,
            }
        } else {
            InPlace::Unrewritable
        }
    })
    .unwrap_or(InPlace::Unrewritable)
}

/// Removes the input's TWCC element (the first with `in_id`) from the packet in `buf` (mapped
/// and rewritten before, writable), in place, for an output without TWCC: a subscriber with the
/// same id on another m-line of its bundle (its own publishing ones) would otherwise report the
/// publisher's transport-wide sequence numbers back. `ext_at` as for [`apply`]. Whether one
/// was removed.
pub fn remove(buf: &mut gst::BufferRef, ext_at: Option<usize>, in_id: u8) -> bool {
    match ext_at {
        Some(at) if in_id != 0 => {
            with_block(buf, at, |bits, block| blank_element(bits, block, in_id)).unwrap_or(false)
        }
        _ => false,
    }
}

/// Header extension elements as `(id, data)`.
type Elements = Vec<(u8, Vec<u8>)>;

/// The one-byte elements of the rebuilt block (without the TWCC element) and the TWCC value,
/// from the current block (`None` when the packet has no extension); `None` if the block
/// cannot be carried in the one-byte form.
fn rebuilt_elements(
    block: Option<(u16, &[u8])>,
    in_id: u8,
    out_id: u8,
) -> Option<(Elements, [u8; TWCC_LEN])> {
    let mut elements = Elements::new();
    let mut value = [0u8; TWCC_LEN];
    let Some((bits, data)) = block else {
        return Some((elements, value));
    };
    let mut collect = |at: usize, id: u8, len: usize, header: usize| {
        let start = at + header;
        elements.push((id, data[start..start + len].to_vec()));
    };
    let two_byte = if bits == ONE_BYTE_PROFILE {
        one_byte_elements(data, |at, id, len| collect(at, id, len, 1)).ok()?;
        false
    } else if bits & TWO_BYTE_PROFILE_MASK == TWO_BYTE_PROFILE {
        two_byte_elements(data, |at, id, len| collect(at, id, len, 2)).ok()?;
        true
    } else {
        return None;
    };
    // The input's TWCC element of a two-byte block becomes the new element (its value kept).
    if two_byte && in_id != 0 {
        if let Some(i) = elements.iter().position(|(id, _)| *id == in_id) {
            if let Ok(v) = <[u8; TWCC_LEN]>::try_from(elements[i].1.as_slice()) {
                value = v;
                elements.remove(i);
            }
        }
    }
    // The output id is the TWCC element's alone: others move to the input id if free, or go.
    let in_id_free = (1..=MAX_ONE_BYTE_ID).contains(&in_id)
        && in_id != out_id
        && !elements.iter().any(|(id, _)| *id == in_id);
    let mut moved = false;
    elements.retain_mut(|(id, _)| {
        if *id != out_id {
            true
        } else if in_id_free && !moved {
            *id = in_id;
            moved = true;
            true
        } else {
            false
        }
    });
    let fits = elements
        .iter()
        .all(|(id, d)| (1..=MAX_ONE_BYTE_ID).contains(id) && (1..=16).contains(&d.len()));
    fits.then_some((elements, value))
}

/// The add pass: rebuilds the packet's extension block in the one-byte form with a TWCC
/// element under `out_id`.
fn rebuild(buf: &mut gst::BufferRef, in_id: u8, out_id: u8) -> Outcome {
    // GStreamer 1.22 splits the packet into header, extension, payload and padding memories
    // before resizing the extension, and gets the order wrong when a later part already is a
    // memory of its own but an earlier one is not (e.g. a payloader's header memory holding an
    // extension, then the payload memory): the payload would be lost. From one memory every
    // part is copied out, in order.
    if buf.n_memory() > 1 {
        let Some(merged) = buf.all_memory() else {
            return Outcome::Unrewritable;
        };
        buf.replace_all_memory(merged);
    }
    let Ok(mut rtp) = gst_rtp::RTPBuffer::from_buffer_writable(buf) else {
        return Outcome::Unrewritable;
    };
    let current = rtp.extension_bytes();
    let block = current.as_ref().map(|(bits, data)| (*bits, &data[..]));
    let Some((elements, value)) = rebuilt_elements(block, in_id, out_id) else {
        return Outcome::Unrewritable;
    };
    if current.is_some() {
        rtp.remove_extension_data();
    }
    for (id, data) in elements
        .iter()
        .map(|(id, data)| (*id, data.as_slice()))
        .chain(std::iter::once((out_id, &value[..])))
    {
        // Cannot fail on a block holding only well-formed one-byte elements (had it failed, the
        // packet would miss elements but still be valid RTP).
        if rtp.add_extension_onebyte_header(id, data).is_err() {
            return Outcome::Unrewritable;
        }
    }
    Outcome::Added
}

/// Makes the packet in `buf` (mapped and rewritten before, writable) carry a one-byte TWCC
/// element under `out_id` (1..=14); see the module docs. `ext_at` is the byte offset of its
/// extension block, `None` when it has none; `in_id` the input's TWCC id (0 = unknown).
pub fn apply(buf: &mut gst::BufferRef, ext_at: Option<usize>, in_id: u8, out_id: u8) -> Outcome {
    debug_assert!((1..=MAX_ONE_BYTE_ID).contains(&out_id));
    if !(1..=MAX_ONE_BYTE_ID).contains(&out_id) {
        return Outcome::Unrewritable;
    }
    if let Some(at) = ext_at {
        match rename_in_place(buf, at, in_id, out_id) {
            InPlace::Done => return Outcome::Renamed,
            InPlace::Unrewritable => return Outcome::Unrewritable,
            InPlace::Rebuild => (),
        }
    }
    rebuild(buf, in_id, out_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rename_swaps_and_validates_first() {
        // TWCC under 5 (2 bytes), another element under 3 (the output id).
        let mut block = [0x51, 0x12, 0x34, 0x30, b'x', 0, 0, 0];
        assert_eq!(rename_one_byte(&mut block, 5, 3), InPlace::Done);
        assert_eq!(block, [0x31, 0x12, 0x34, 0x50, b'x', 0, 0, 0]);
        // Equal ids: nothing to do.
        let mut block = [0x51, 0x12, 0x34, 0];
        assert_eq!(rename_one_byte(&mut block, 5, 5), InPlace::Done);
        assert_eq!(block, [0x51, 0x12, 0x34, 0]);
        // The first element with the input id has 1 byte: not TWCC.
        let mut block = [0x50, 0x12, 0x51, 0x12, 0x34, 0, 0, 0];
        assert_eq!(rename_one_byte(&mut block, 5, 3), InPlace::Rebuild);
        // Malformed after the TWCC element: untouched.
        let mut block = [0x51, 0x12, 0x34, 0x3F];
        assert_eq!(rename_one_byte(&mut block, 5, 3), InPlace::Unrewritable);
        assert_eq!(block, [0x51, 0x12, 0x34, 0x3F]);
    }

    #[test]
    fn rebuilt_elements_resolve_ids() {
        // No extension: just the TWCC element.
        assert_eq!(rebuilt_elements(None, 5, 3), Some((vec![], [0, 0])));
        // One-byte without TWCC, an element under the output id moves to the input id.
        let block = [0x30, b'x', 0x70, b'y'];
        assert_eq!(
            rebuilt_elements(Some((ONE_BYTE_PROFILE, &block)), 5, 3),
            Some((vec![(5, vec![b'x']), (7, vec![b'y'])], [0, 0]))
        );
        // ... or goes when the input id is unknown.
        assert_eq!(
            rebuilt_elements(Some((ONE_BYTE_PROFILE, &block)), 0, 3),
            Some((vec![(7, vec![b'y'])], [0, 0]))
        );
        // Two-byte: the input's TWCC element gives its value; others are converted.
        let block = [5, 2, 0x12, 0x34, 9, 1, b'z', 0];
        assert_eq!(
            rebuilt_elements(Some((0x1000, &block)), 5, 3),
            Some((vec![(9, vec![b'z'])], [0x12, 0x34]))
        );
        // Two-byte elements the one-byte form cannot carry.
        for block in [[20u8, 1, b'z', 0], [9, 0, 0, 0]] {
            assert_eq!(rebuilt_elements(Some((0x1000, &block)), 5, 3), None);
        }
        // Another profile.
        assert_eq!(rebuilt_elements(Some((0x1234, &[0; 4])), 5, 3), None);
    }

    /// A buffer of two memories: RTP header with a one-byte block (TWCC under 5, an element
    /// under 3), then the payload.
    fn split_packet() -> gst::Buffer {
        let header = vec![
            0x90, 96, 0, 1, 0, 0, 0, 0, 0, 0, 0, 7, 0xBE, 0xDE, 0, 2, 0x51, 0xAB, 0xCD, 0x30, b'x',
            0, 0, 0,
        ];
        let mut buf = gst::Buffer::from_mut_slice(header);
        buf.get_mut()
            .unwrap()
            .append_memory(gst::Memory::from_mut_slice(vec![0x10, 0x00, 0xEE]));
        buf
    }

    #[test]
    fn rename_maps_the_rewritten_memory_without_copying() {
        gst::init().expect("gst init");
        let input = split_packet();
        // A second pad's copy: memories shared with the input.
        let mut out = input.copy();
        let buf = out.make_mut();
        let ext_at = {
            // What the rewrite does: this copies the shared header memory once.
            let mut rtp = gst_rtp::RTPBuffer::from_buffer_writable(buf).unwrap();
            rtp.set_seq(2);
            rtp.is_extension()
                .then(|| 12 + 4 * usize::from(rtp.csrc_count()))
        };
        let header_mem = buf.peek_memory(0).as_ptr();
        let payload_mem = buf.peek_memory(1).as_ptr();
        assert_eq!(apply(buf, ext_at, 5, 3), Outcome::Renamed);
        assert_eq!(buf.n_memory(), 2);
        assert_eq!(buf.peek_memory(0).as_ptr(), header_mem, "not replaced");
        assert_eq!(buf.peek_memory(1).as_ptr(), payload_mem);
        let rtp = gst_rtp::RTPBuffer::from_buffer_readable(&out).unwrap();
        assert_eq!(rtp.extension_onebyte_header(3, 0), Some(&[0xAB, 0xCD][..]));
        assert_eq!(rtp.extension_onebyte_header(5, 0), Some(&b"x"[..]));
        assert_eq!(rtp.payload().unwrap(), &[0x10, 0x00, 0xEE]);
        drop(rtp);
        // The input is untouched.
        let rtp = gst_rtp::RTPBuffer::from_buffer_readable(&input).unwrap();
        assert_eq!(rtp.seq(), 1);
        assert_eq!(rtp.extension_onebyte_header(5, 0), Some(&[0xAB, 0xCD][..]));
    }

    #[test]
    fn add_keeps_a_split_payload() {
        gst::init().expect("gst init");
        let mut out = split_packet();
        let buf = out.make_mut();
        // TWCC id 9 unknown to the packet: add, the element under 3 moves to 9.
        assert_eq!(apply(buf, Some(12), 9, 3), Outcome::Added);
        let rtp = gst_rtp::RTPBuffer::from_buffer_readable(&out).unwrap();
        assert_eq!(rtp.extension_onebyte_header(3, 0), Some(&[0, 0][..]));
        assert_eq!(rtp.extension_onebyte_header(5, 0), Some(&[0xAB, 0xCD][..]));
        assert_eq!(rtp.extension_onebyte_header(9, 0), Some(&b"x"[..]));
        assert_eq!(rtp.payload().unwrap(), &[0x10, 0x00, 0xEE]);
        assert_eq!((rtp.seq(), rtp.ssrc()), (1, 7));
    }

    #[test]
    fn add_keeps_payload_and_padding() {
        gst::init().expect("gst init");
        // A payloader's layout: a 12-byte header memory without extension, a payload memory.
        let mut out = gst::Buffer::from_mut_slice(vec![0x80, 96, 0, 1, 0, 0, 0, 0, 0, 0, 0, 7]);
        out.get_mut()
            .unwrap()
            .append_memory(gst::Memory::from_mut_slice(vec![0x10, 0x00, 0xEE]));
        assert_eq!(apply(out.make_mut(), None, 5, 3), Outcome::Added);
        let rtp = gst_rtp::RTPBuffer::from_buffer_readable(&out).unwrap();
        assert_eq!(rtp.extension_onebyte_header(3, 0), Some(&[0, 0][..]));
        assert_eq!(rtp.payload().unwrap(), &[0x10, 0x00, 0xEE]);
        drop(rtp);
        // RTP padding (P bit, 3 bytes) after the payload, with a two-byte block.
        let mut out = gst::Buffer::from_mut_slice(vec![
            0xB0, 96, 0, 1, 0, 0, 0, 0, 0, 0, 0, 7, 0x10, 0x00, 0, 1, 5, 2, 0xAB, 0xCD, 0x10, 0x00,
            0xEE, 0, 0, 3,
        ]);
        assert_eq!(apply(out.make_mut(), Some(12), 5, 3), Outcome::Added);
        let rtp = gst_rtp::RTPBuffer::from_buffer_readable(&out).unwrap();
        assert_eq!(rtp.extension_onebyte_header(3, 0), Some(&[0xAB, 0xCD][..]));
        assert_eq!(rtp.payload().unwrap(), &[0x10, 0x00, 0xEE]);
        assert!(rtp.has_padding());
        let size = rtp.buffer().size();
        let mut last = [0u8; 1];
        rtp.buffer().copy_to_slice(size - 1, &mut last).unwrap();
        assert_eq!(last, [3]);
    }

    #[test]
    fn caps_ids() {
        gst::init().expect("gst init");
        let caps: gst::Caps = format!(
            "application/x-rtp, extmap-3=(string)urn:ietf:params:rtp-hdrext:sdes:mid, \
             extmap-5=(string){TWCC_URI}"
        )
        .parse()
        .expect("caps");
        assert_eq!(id_from_caps(&caps), 5);
        let caps = gst::Caps::builder("application/x-rtp")
            .field("extmap-7", gst::Array::new(["", TWCC_URI, ""]))
            .build();
        assert_eq!(id_from_caps(&caps), 7);
        let none: gst::Caps = "application/x-rtp, extmap-0=(string)x"
            .parse()
            .expect("caps");
        assert_eq!(id_from_caps(&none), 0);
        assert_eq!(
            id_from_caps(&crate::rtp::add_twcc_extmap(none.clone(), 4)),
            4
        );
    }
}
