//! Where a peer's EOS must stop.
//!
//! A subscriber's send path starts with webrtcbin's `rtpfunnel`, shared by every track the
//! subscriber receives, and `rtpfunnel` forwards EOS from any of its sink pads: one EOS that
//! reaches it leaves the subscriber's whole send path refusing media (`GST_FLOW_EOS`) for the
//! rest of the connection. A publisher's stream must therefore never carry EOS into a
//! forwarder: neither the one nicesrc pushes when the peer closes its DTLS connection, nor the
//! one webrtcbin sends out of a src pad whose m-line goes inactive.

/// Drops every EOS event pushed through `pad`; other events and data pass.
pub(crate) fn drop_eos(pad: &gst::Pad) {
    crate::event_drop::drop_downstream_events(pad, |e| e.type_() == gst::EventType::Eos);
}

#[cfg(test)]
mod tests {
    use super::*;
    use gst::prelude::*;

    #[test]
    fn eos_stops_at_the_pad_and_other_events_pass() {
        gst::init().unwrap();
        let src = gst::Pad::builder(gst::PadDirection::Src).build();
        let sink = gst::Pad::builder(gst::PadDirection::Sink)
            .event_function(|_, _, _| true)
            .build();
        src.link(&sink).unwrap();
        src.set_active(true).unwrap();
        sink.set_active(true).unwrap();
        drop_eos(&src);
        src.push_event(gst::event::StreamStart::new("s"));
        src.push_event(gst::event::Eos::new());
        assert!(sink.sticky_event::<gst::event::StreamStart>(0).is_some());
        assert!(sink.sticky_event::<gst::event::Eos>(0).is_none());
        assert!(!sink.pad_flags().contains(gst::PadFlags::EOS));
    }
}
