//! webrtcbin's FEC and RED receive machinery, kept out of the per-packet path.
//!
//! rtpbin 1.22 puts an `rtpstorage` in every session's receive path (between the aux receiver
//! and the SSRC demuxer), and webrtcbin sets it to keep every received packet for the
//! jitterbuffer latency plus 50 ms (`on_rtpbin_new_storage`): a window that only
//! `rtpulpfecdec` reads, to rebuild packets from ULPFEC. Lamina answers one codec per m-line,
//! never ULPFEC or RED (`negotiation.rs`), so nothing reads it. Storing cost a buffer map, a
//! lock, a hash lookup and a queue node per received packet, and the reference it kept made
//! the buffer shared, so the `rtpulpfecdec` after the payload demuxer (which makes every
//! packet writable even as a pass-through) copied it (docs/performance.md §20). The storage's
//! `size-time` is set to 0, which makes it pass packets on untouched.

use gst::prelude::*;

/// GType name of rtpbin's per-session packet storage.
const STORAGE_TYPE: &str = "GstRtpStorage";

/// Turns off the packet storage of every rtpbin session `bin` gets (on `deep-element-added`,
/// so also those of later rounds).
pub(crate) fn trim(bin: &gst::Bin) {
    bin.connect_deep_element_added(|_, _, element| {
        if element.type_().name() == STORAGE_TYPE {
            keep_nothing(element);
        }
    });
}

/// Sets `storage`'s window to 0, now and whenever it is set again (webrtcbin sets it from its
/// `latency` when the storage is made, before rtpbin adds it, and again when `latency` changes).
fn keep_nothing(storage: &gst::Element) {
    storage.set_property("size-time", 0u64);
    storage.connect_notify(Some("size-time"), |storage, _| {
        if storage.property::<u64>("size-time") != 0 {
            storage.set_property("size-time", 0u64);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_storage_keeps_nothing_however_often_its_window_is_set() {
        gst::init().unwrap();
        let bin = gst::Bin::new();
        trim(&bin);
        let storage = gst::ElementFactory::make("rtpstorage").build().unwrap();
        // What webrtcbin does from its `new-storage` handler: 200 ms latency + 50 ms.
        storage.set_property("size-time", 250_000_000u64);
        bin.add(&storage).unwrap();
        assert_eq!(storage.property::<u64>("size-time"), 0);
        // What webrtcbin does when its `latency` is set later.
        storage.set_property("size-time", 250_000_000u64);
        assert_eq!(storage.property::<u64>("size-time"), 0);

        // A packet passes and nothing keeps a reference to it.
        let mut h = gst_check::Harness::with_element(&storage, Some("sink"), Some("src"));
        h.set_src_caps_str("application/x-rtp");
        let mut b = vec![0x80, 96, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1];
        b.resize(100, 7);
        h.push(gst::Buffer::from_slice(b)).unwrap();
        let out = h.pull().unwrap();
        assert!(out.is_writable(), "the storage kept a reference");
    }
}
