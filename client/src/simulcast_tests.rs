//! What webrtcbin 1.22 does with a simulcast source ([`media::simulcast_source`]) and the
//! simulcast `codec-preferences` ([`media::simulcast_caps`]): a Chrome-like offer, three
//! streams that reach the answering webrtcbin with their RID and MID extensions, and a
//! keyframe request for one layer that reaches that layer's encoder
//! ([`media::route_layer_keyframe_requests`]).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gst::prelude::*;
use gst_webrtc::{
    WebRTCRTPTransceiver, WebRTCRTPTransceiverDirection, WebRTCSDPType, WebRTCSessionDescription,
};

use crate::media;

/// RID → SSRC and MID of the packets that arrived.
type Seen = BTreeMap<String, (u32, Option<String>)>;

fn call(
    webrtc: &gst::Element,
    signal: &str,
    arg: Option<&WebRTCSessionDescription>,
) -> gst::Structure {
    let promise = gst::Promise::new();
    match arg {
        Some(d) => webrtc.emit_by_name::<()>(signal, &[d, &promise]),
        None => webrtc.emit_by_name::<()>(signal, &[&None::<gst::Structure>, &promise]),
    }
    promise.wait();
    promise
        .get_reply()
        .map(|s| s.to_owned())
        .unwrap_or_else(|| gst::Structure::new_empty("empty"))
}

fn webrtcbin() -> gst::Element {
    gst::ElementFactory::make("webrtcbin")
        .property_from_str("bundle-policy", "max-bundle")
        .build()
        .unwrap()
}

#[test]
fn webrtcbin_offers_simulcast_and_the_layers_carry_their_rids() {
    gst::init().unwrap();
    let pipeline = gst::Pipeline::new();
    let (client, server) = (webrtcbin(), webrtcbin());
    pipeline.add_many([&client, &server]).unwrap();
    let ssrcs = [11, 22, 33];
    let layers = media::simulcast_source("ball", ssrcs).unwrap();
    pipeline.add(&layers.bin).unwrap();
    let keyframes: Vec<Arc<AtomicU64>> = layers
        .layers
        .iter()
        .map(|(_, _, payloader, _)| {
            let count = Arc::new(AtomicU64::new(0));
            let c = count.clone();
            media::count_payloader_keyframes(payloader, move || {
                c.fetch_add(1, Ordering::Relaxed);
            });
            count
        })
        .collect();
    let sink = client.request_pad_simple("sink_%u").unwrap();
    let transceiver = sink.property::<WebRTCRTPTransceiver>("transceiver");
    transceiver.set_direction(WebRTCRTPTransceiverDirection::Sendonly);
    let mut caps = media::rtp_caps(true, true);
    media::simulcast_caps(&mut caps);
    transceiver.set_property("codec-preferences", caps);
    layers.bin.static_pad("src").unwrap().link(&sink).unwrap();
    let payloaders = media::LayerPayloaders::default();
    for (_, ssrc, payloader, _) in &layers.layers {
        payloaders.lock().unwrap().insert(*ssrc, payloader.clone());
    }
    media::route_layer_keyframe_requests(&client, payloaders);
    for (from, to) in [(&client, &server), (&server, &client)] {
        let to = to.downgrade();
        from.connect("on-ice-candidate", false, move |v| {
            let (mline, c) = (v[1].get::<u32>().ok()?, v[2].get::<String>().ok()?);
            to.upgrade()?
                .emit_by_name::<()>("add-ice-candidate", &[&mline, &c]);
            None
        });
    }
    // RID → (SSRC, MID) of the packets reaching the server.
    let seen: Arc<Mutex<Seen>> = Arc::default();
    let seen_in_probe = seen.clone();
    server.connect_pad_added(move |webrtc, pad| {
        let seen = seen_in_probe.clone();
        pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
            if let Some(gst::PadProbeData::Buffer(buf)) = &info.data {
                if let Ok(rtp) = gst_rtp::RTPBuffer::from_buffer_readable(buf) {
                    let ext = |id: u8| {
                        rtp.extension_onebyte_header(id, 0)
                            .map(|d| String::from_utf8_lossy(d).into_owned())
                    };
                    if let Some(rid) = ext(media::RID_EXT_ID) {
                        let mid = ext(media::MID_EXT_ID);
                        seen.lock().unwrap().insert(rid, (rtp.ssrc(), mid));
                    }
                }
            }
            gst::PadProbeReturn::Ok
        });
        let sink = gst::ElementFactory::make("fakesink")
            .property("async", false)
            .build()
            .unwrap();
        let bin = webrtc.parent().and_downcast::<gst::Bin>().unwrap();
        bin.add(&sink).unwrap();
        sink.sync_state_with_parent().unwrap();
        pad.link(&sink.static_pad("sink").unwrap()).unwrap();
    });
    pipeline.set_state(gst::State::Playing).unwrap();

    let offer = call(&client, "create-offer", None)
        .get::<WebRTCSessionDescription>("offer")
        .unwrap();
    let text = offer.sdp().as_text().unwrap();
    for line in [
        "a=sendonly",
        "a=rid:l send",
        "a=rid:m send",
        "a=rid:h send",
        "a=simulcast:send l;m;h",
        "a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid",
        "a=extmap:10 urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id",
        "a=extmap:11 urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id",
    ] {
        assert!(text.lines().any(|l| l == line), "no {line} in\n{text}");
    }
    assert!(!text.contains("a=ssrc"), "layer SSRCs announced:\n{text}");
    let mid = text
        .lines()
        .find_map(|l| l.strip_prefix("a=mid:"))
        .unwrap()
        .to_owned();
    layers.set_mid(&mid);
    call(&client, "set-local-description", Some(&offer));

    // The answering side receives the three layers like the server does.
    let mut recv = media::rtp_caps(true, true);
    {
        let s = recv.make_mut();
        s.set("extmap-4", media::MID_URI);
        s.set("extmap-10", media::RID_URI);
        for rid in ["l", "m", "h"] {
            s.set(format!("rid-{rid}"), "recv");
        }
        s.set("a-simulcast", "recv l;m;h");
    }
    server.emit_by_name::<WebRTCRTPTransceiver>(
        "add-transceiver",
        &[&WebRTCRTPTransceiverDirection::Recvonly, &recv],
    );
    let remote = WebRTCSessionDescription::new(WebRTCSDPType::Offer, offer.sdp().to_owned());
    call(&server, "set-remote-description", Some(&remote));
    let answer = call(&server, "create-answer", None)
        .get::<WebRTCSessionDescription>("answer")
        .unwrap();
    let answer_text = answer.sdp().as_text().unwrap();
    assert!(
        answer_text.contains("a=simulcast:recv l;m;h"),
        "{answer_text}"
    );
    call(&server, "set-local-description", Some(&answer));
    call(&client, "set-remote-description", Some(&answer));

    let deadline = Instant::now() + Duration::from_secs(15);
    while seen.lock().unwrap().len() < 3 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    // A keyframe request for one layer (the server's PLI) reaches that layer's encoder.
    let before: Vec<u64> = keyframes
        .iter()
        .map(|k| k.load(Ordering::Relaxed))
        .collect();
    let pads = server.src_pads();
    let h_pad = pads
        .iter()
        .find(|p| {
            p.current_caps()
                .and_then(|c| c.structure(0)?.get::<u32>("ssrc").ok())
                == Some(33)
        })
        .expect("the h stream's pad");
    let request = gst::event::CustomUpstream::new(
        gst::Structure::builder("GstForceKeyUnit")
            .field("all-headers", true)
            .build(),
    );
    h_pad.send_event(request);
    let deadline = Instant::now() + Duration::from_secs(5);
    while keyframes[2].load(Ordering::Relaxed) == before[2] && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let after: Vec<u64> = keyframes
        .iter()
        .map(|k| k.load(Ordering::Relaxed))
        .collect();
    pipeline.set_state(gst::State::Null).unwrap();
    assert!(
        after[2] > before[2],
        "no h keyframe: {before:?} → {after:?}"
    );
    let seen = seen.lock().unwrap().clone();
    let expected: Seen = [("l", 11), ("m", 22), ("h", 33)]
        .into_iter()
        .map(|(rid, ssrc)| (rid.to_owned(), (ssrc, Some(mid.clone()))))
        .collect();
    assert_eq!(seen, expected);
}
