//! RTP header extension blocks (RFC 8285) as they sit in a packet: the one- and two-byte
//! forms, walking their elements, mapping a packet's block writable in place, and turning an
//! element into padding. `twcc.rs` builds the TWCC rewrite on these.

/// "Defined by profile" value of a one-byte extension block.
pub(super) const ONE_BYTE_PROFILE: u16 = 0xBEDE;
/// Two-byte blocks: `0x100` and 4 application bits.
pub(super) const TWO_BYTE_PROFILE_MASK: u16 = 0xFFF0;
pub(super) const TWO_BYTE_PROFILE: u16 = 0x1000;
/// The element was running past the end of its block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Malformed;

/// The first element of a one-byte block at or after byte `i`: `(offset of its header byte, id,
/// data length)`, skipping padding; `None` at the end or at id 15, which ends the block
/// (RFC 8285 4.2).
pub(super) fn next_one_byte(
    block: &[u8],
    mut i: usize,
) -> Result<Option<(usize, u8, usize)>, Malformed> {
    while let Some(&b) = block.get(i) {
        let id = b >> 4;
        match id {
            0 => i += 1,
            15 => return Ok(None),
            _ => {
                let len = usize::from(b & 0x0F) + 1;
                if i + 1 + len > block.len() {
                    return Err(Malformed);
                }
                return Ok(Some((i, id, len)));
            }
        }
    }
    Ok(None)
}

/// Calls `f(offset, id, len)` for each element of a one-byte block; `f` may have been called
/// when `Malformed` is returned.
pub(super) fn one_byte_elements(
    block: &[u8],
    mut f: impl FnMut(usize, u8, usize),
) -> Result<(), Malformed> {
    let mut i = 0;
    while let Some((at, id, len)) = next_one_byte(block, i)? {
        f(at, id, len);
        i = at + 1 + len;
    }
    Ok(())
}

/// Calls `f(offset, id, len)` for each element of a two-byte block (RFC 8285 4.3), skipping
/// padding.
pub(super) fn two_byte_elements(
    block: &[u8],
    mut f: impl FnMut(usize, u8, usize),
) -> Result<(), Malformed> {
    let mut i = 0;
    while let Some(&id) = block.get(i) {
        if id == 0 {
            i += 1;
            continue;
        }
        let len = usize::from(*block.get(i + 1).ok_or(Malformed)?);
        let end = i + 2 + len;
        if end > block.len() {
            return Err(Malformed);
        }
        f(i, id, len);
        i = end;
    }
    Ok(())
}

/// Calls `f(bits, block)` on the extension block (`bits`, length, data) at byte `at` of `buf`,
/// mapped writable; `None` when it cannot be mapped whole.
pub(super) fn with_block<R>(
    buf: &mut gst::BufferRef,
    at: usize,
    f: impl FnOnce(u16, &mut [u8]) -> R,
) -> Option<R> {
    // The RTP map of the rewrite made the memory holding the block writable (copy-on-write),
    // so this maps it without copying.
    let (memories, skip) = buf.find_memory(at..at + 4)?;
    let mut map = buf.map_range_writable(memories).ok()?;
    let ext = map.as_mut_slice().get_mut(skip..)?;
    let [b0, b1, l0, l1, ..] = *ext else {
        return None;
    };
    let bits = u16::from_be_bytes([b0, b1]);
    let len = 4 * usize::from(u16::from_be_bytes([l0, l1]));
    let block = ext.get_mut(4..4 + len)?;
    Some(f(bits, block))
}

/// Turns the first element with `id` of a block of the form `bits` into padding (zero bytes,
/// RFC 8285 4.2 and 4.3); whether there was one. Nothing is written unless the whole block is
/// well-formed.
pub(super) fn blank_element(bits: u16, block: &mut [u8], id: u8) -> bool {
    let mut found = None;
    let mut first = |at: usize, el: u8, end: usize| {
        if el == id && found.is_none() {
            found = Some(at..end);
        }
    };
    let parsed = if bits == ONE_BYTE_PROFILE {
        one_byte_elements(block, |at, el, len| first(at, el, at + 1 + len))
    } else if bits & TWO_BYTE_PROFILE_MASK == TWO_BYTE_PROFILE {
        two_byte_elements(block, |at, el, len| first(at, el, at + 2 + len))
    } else {
        return false;
    };
    match (parsed, found) {
        (Ok(()), Some(range)) => {
            block[range].fill(0);
            true
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_byte_parsing() {
        let mut seen = Vec::new();
        // id 3 len 1, padding, id 5 len 2, id 15 stops.
        let block = [0x30, b'h', 0x00, 0x51, 0xAA, 0xBB, 0xF0, 0xFF];
        assert_eq!(
            one_byte_elements(&block, |at, id, len| seen.push((at, id, len))),
            Ok(())
        );
        assert_eq!(seen, vec![(0, 3, 1), (3, 5, 2)]);
        // Length past the end.
        assert_eq!(
            one_byte_elements(&[0x32, 1, 2], |_, _, _| ()),
            Err(Malformed)
        );
        assert_eq!(
            one_byte_elements(&[0, 0, 0, 0x30], |_, _, _| ()),
            Err(Malformed)
        );
    }

    #[test]
    fn two_byte_parsing() {
        let mut seen = Vec::new();
        let block = [3, 2, b'h', b'i', 0, 200, 0, 7, 1, 9];
        assert_eq!(
            two_byte_elements(&block, |at, id, len| seen.push((at, id, len))),
            Ok(())
        );
        assert_eq!(seen, vec![(0, 3, 2), (5, 200, 0), (7, 7, 1)]);
        assert_eq!(two_byte_elements(&[3], |_, _, _| ()), Err(Malformed));
        assert_eq!(
            two_byte_elements(&[3, 4, 1, 2, 3], |_, _, _| ()),
            Err(Malformed)
        );
    }

    #[test]
    fn blanking_leaves_padding_and_validates_first() {
        // One-byte: id 3 len 1, TWCC under 5 (2 bytes), id 7 len 1.
        let mut block = [0x30, b'x', 0x51, 0x12, 0x34, 0x70, b'y', 0];
        assert!(blank_element(ONE_BYTE_PROFILE, &mut block, 5));
        assert_eq!(block, [0x30, b'x', 0, 0, 0, 0x70, b'y', 0]);
        let mut seen = Vec::new();
        one_byte_elements(&block, |_, id, len| seen.push((id, len))).unwrap();
        assert_eq!(seen, vec![(3, 1), (7, 1)], "the rest parses as before");
        assert!(!blank_element(ONE_BYTE_PROFILE, &mut block, 5), "gone");
        // Two-byte: TWCC under 5, then id 9.
        let mut block = [5, 2, 0x12, 0x34, 9, 1, b'z', 0];
        assert!(blank_element(0x1000, &mut block, 5));
        assert_eq!(block, [0, 0, 0, 0, 9, 1, b'z', 0]);
        // Malformed after the element: untouched.
        let mut block = [0x51, 0x12, 0x34, 0x3F];
        assert!(!blank_element(ONE_BYTE_PROFILE, &mut block, 5));
        assert_eq!(block, [0x51, 0x12, 0x34, 0x3F]);
        // Another profile: untouched.
        let mut block = [0x51, 0x12, 0x34, 0];
        assert!(!blank_element(0xABCD, &mut block, 5));
    }
}
