//! What webrtcbin 1.22 offers for a recvonly transceiver with the transport-cc
//! `codec-preferences` ([`media::transport_cc_caps`]): the `transport-cc` feedback and the TWCC
//! extmap, like a browser.

use gst::prelude::*;
use gst_webrtc::{WebRTCRTPTransceiver, WebRTCRTPTransceiverDirection, WebRTCSessionDescription};

use crate::media;

#[test]
fn recvonly_m_lines_offer_transport_cc_like_a_browser() {
    gst::init().unwrap();
    let pipeline = gst::Pipeline::new();
    let webrtc = gst::ElementFactory::make("webrtcbin")
        .property_from_str("bundle-policy", "max-bundle")
        .build()
        .unwrap();
    pipeline.add(&webrtc).unwrap();
    for video in [false, true] {
        let mut caps = media::rtp_caps(video, video);
        media::transport_cc_caps(&mut caps);
        webrtc.emit_by_name::<WebRTCRTPTransceiver>(
            "add-transceiver",
            &[&WebRTCRTPTransceiverDirection::Recvonly, &caps],
        );
    }
    pipeline.set_state(gst::State::Ready).unwrap();
    let promise = gst::Promise::new();
    webrtc.emit_by_name::<()>("create-offer", &[&None::<gst::Structure>, &promise]);
    promise.wait();
    let offer = promise
        .get_reply()
        .unwrap()
        .get::<WebRTCSessionDescription>("offer")
        .unwrap();
    let text = offer.sdp().as_text().unwrap();
    pipeline.set_state(gst::State::Null).unwrap();
    let medias: Vec<&str> = text.split("\nm=").skip(1).collect();
    assert_eq!(medias.len(), 2, "{text}");
    for (media, pt) in medias.iter().zip([media::OPUS_PT, media::VP8_PT]) {
        let lines: Vec<&str> = media.lines().map(|l| l.trim_end_matches('\r')).collect();
        assert!(lines.contains(&"a=recvonly"), "{media}");
        let fb = format!("a=rtcp-fb:{pt} transport-cc");
        assert!(lines.contains(&fb.as_str()), "no {fb}:\n{media}");
        let extmap = format!("a=extmap:{} {}", media::TWCC_EXT_ID, media::TWCC_URI);
        assert!(lines.contains(&extmap.as_str()), "no {extmap}:\n{media}");
    }
}

#[test]
fn twcc_feedback_is_found_in_compound_rtcp() {
    // A receiver report (PT 201, no blocks), a TWCC feedback (PT 205, FMT 15), a generic
    // NACK (PT 205, FMT 1).
    let mut rtcp = vec![0x80, 201, 0, 1, 0, 0, 0, 1];
    rtcp.extend([
        0x8f, 205, 0, 4, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0,
    ]);
    rtcp.extend([0x81, 205, 0, 3, 0, 0, 0, 1, 0, 0, 0, 2, 0, 5, 0, 0]);
    assert_eq!(media::twcc_feedback_packets(&rtcp), 1);
    assert_eq!(media::twcc_feedback_packets(&rtcp[..8]), 0);
}
