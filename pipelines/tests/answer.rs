//! The answer to a Chrome-style offer (browser PT numbers, RTX, RED, H264, VP9, the full
//! extmap list; the same PT on several m-lines, as Chrome does): one codec per m-line with the
//! offer's PT (plus, on video, the offer's `rtx` for it with `nack`: loss repair both ways),
//! TWCC and audio-level extmaps kept under the offer's ids, directions as planned, `a=ssrc`
//! and a shared `msid` on the sending m-lines, an RTX `ssrc-group:FID` on sending video.

mod support;

use std::time::Duration;

use lamina_pipelines::{MediaEvent, OfferPlan, PeerId};
use support::{Commands, Harness, Watchdog};

const AUDIO_CODECS: &str = "a=rtpmap:111 opus/48000/2\r\na=rtcp-fb:111 transport-cc\r\n\
a=fmtp:111 minptime=10;useinbandfec=1\r\na=rtpmap:63 red/48000/2\r\na=fmtp:63 111/111\r\n\
a=rtpmap:9 G722/8000\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:13 CN/8000\r\n\
a=rtpmap:110 telephone-event/48000\r\na=rtpmap:126 telephone-event/8000\r\n";
const VIDEO_CODECS: &str = "a=rtpmap:96 VP8/90000\r\na=rtcp-fb:96 goog-remb\r\n\
a=rtcp-fb:96 transport-cc\r\na=rtcp-fb:96 ccm fir\r\na=rtcp-fb:96 nack\r\na=rtcp-fb:96 nack pli\r\n\
a=rtpmap:97 rtx/90000\r\na=fmtp:97 apt=96\r\na=rtpmap:98 VP9/90000\r\na=rtcp-fb:98 nack pli\r\n\
a=fmtp:98 profile-id=0\r\na=rtpmap:99 rtx/90000\r\na=fmtp:99 apt=98\r\na=rtpmap:102 H264/90000\r\n\
a=rtcp-fb:102 nack pli\r\na=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f\r\n\
a=rtpmap:103 rtx/90000\r\na=fmtp:103 apt=102\r\n";
const AUDIO_EXT: &str = "a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level\r\n\
a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time\r\n\
a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01\r\n\
a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid\r\n";
const VIDEO_EXT: &str = "a=extmap:14 urn:ietf:params:rtp-hdrext:toffset\r\n\
a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time\r\n\
a=extmap:13 urn:3gpp:video-orientation\r\n\
a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01\r\n\
a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid\r\n\
a=extmap:10 urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id\r\n";

fn media(kind: &str, pts: &str, mid: u32, dir: &str, extra: &str) -> String {
    let (codecs, ext) = if kind == "audio" {
        (AUDIO_CODECS, AUDIO_EXT)
    } else {
        (VIDEO_CODECS, VIDEO_EXT)
    };
    format!(
        "m={kind} 9 UDP/TLS/RTP/SAVPF {pts}\r\nc=IN IP4 0.0.0.0\r\na=rtcp:9 IN IP4 0.0.0.0\r\n\
a=ice-ufrag:Chr1\r\na=ice-pwd:chromepasswordchromepass\r\na=ice-options:trickle\r\n\
a=fingerprint:sha-256 6B:8B:5D:EA:59:04:20:23:29:C8:87:1C:CC:87:32:BE:DD:8C:66:A5:8E:50:55:EA:8C:D3:B6:5C:09:5E:D6:BC\r\n\
a=setup:actpass\r\na=mid:{mid}\r\n{ext}a={dir}\r\n{extra}a=rtcp-mux\r\na=rtcp-rsize\r\n{codecs}"
    )
}

fn chrome_offer() -> String {
    let a = "111 63 9 0 8 13 110 126";
    let v = "96 97 98 99 102 103";
    format!(
        "v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n\
a=group:BUNDLE 0 1 2 3\r\na=extmap-allow-mixed\r\na=msid-semantic: WMS s1\r\n{}{}{}{}",
        media("audio", a, 0, "sendonly", "a=msid:s1 ta\r\na=ssrc:1001 cname:c\r\na=ssrc:1001 msid:s1 ta\r\n"),
        media(
            "video",
            v,
            1,
            "sendonly",
            "a=msid:s1 tv\r\na=ssrc-group:FID 2001 2002\r\na=ssrc:2001 cname:c\r\na=ssrc:2002 cname:c\r\n"
        ),
        media("audio", a, 2, "recvonly", ""),
        media("video", v, 3, "recvonly", ""),
    )
}

fn attrs<'a>(m: &'a gst_sdp::SDPMediaRef, key: &str) -> Vec<&'a str> {
    m.attributes()
        .filter(|a| a.key() == key)
        .map(|a| a.value().unwrap_or(""))
        .collect()
}

#[test]
fn chrome_style_offer_gets_a_membrane_style_answer() {
    let _s = support::serial();
    let _w = Watchdog::new("chrome_style_offer_gets_a_membrane_style_answer", 60);
    let mut h = Harness::new("chrome-answer");
    h.join_mesh("a");
    let base_elements = h.room.element_count();
    let a_tracks = h.tracks_of("a"); // [a:audio0, a:video1]

    let chrome = PeerId::from("chrome");
    h.room.add_peer(&chrome).unwrap();
    h.room
        .handle_offer(
            &chrome,
            OfferPlan::new(
                chrome_offer(),
                vec![
                    ("0".into(), "chrome:mic".into()),
                    ("1".into(), "chrome:cam".into()),
                ],
                vec![
                    ("2".into(), Some(a_tracks[0].clone())),
                    ("3".into(), Some(a_tracks[1].clone())),
                ],
            )
            .expect("offer summarises"),
        )
        .unwrap();
    let mut answer = None;
    assert!(h.wait(Duration::from_secs(10), |h| {
        answer = h.log.iter().find_map(|(_, e)| match e {
            MediaEvent::AnswerReady { peer, sdp } if peer == &chrome => Some(sdp.clone()),
            _ => None,
        });
        answer.is_some()
    }));
    let text = answer.unwrap();
    println!("{text}");
    let sdp = gst_sdp::SDPMessage::parse_buffer(text.as_bytes()).unwrap();
    assert_eq!(sdp.attribute_val("group"), Some("BUNDLE 0 1 2 3"));
    assert_eq!(sdp.medias_len(), 4);
    let expect: [(&str, &str, &[&str]); 4] = [
        ("0", "recvonly", &["111"]),
        ("1", "recvonly", &["96", "97"]),
        ("2", "sendonly", &["111"]),
        ("3", "sendonly", &["96", "97"]),
    ];
    for (i, (mid, dir, pts)) in expect.iter().enumerate() {
        let m = sdp.media(i as u32).unwrap();
        assert_eq!(m.attribute_val("mid"), Some(*mid));
        assert!(
            m.attributes().any(|a| a.key() == *dir),
            "m-line {i} not {dir}"
        );
        let formats: Vec<&str> = m.formats().collect();
        assert_eq!(
            formats,
            pts.to_vec(),
            "m-line {i}: the offer's codec (+ its rtx)"
        );
    }
    for i in [1, 3] {
        let m = sdp.media(i).unwrap();
        assert!(attrs(m, "fmtp").contains(&"97 apt=96"), "m-line {i}");
        assert!(attrs(m, "rtpmap").contains(&"97 rtx/90000"), "m-line {i}");
        assert!(attrs(m, "rtcp-fb").contains(&"96 nack"), "m-line {i}");
    }
    let fid = attrs(sdp.media(3).unwrap(), "ssrc-group");
    assert!(
        fid.len() == 1 && fid[0].starts_with("FID ") && fid[0].split(' ').count() == 3,
        "sending video announces its RTX SSRC: {fid:?}"
    );
    assert!(
        !attrs(sdp.media(0).unwrap(), "rtcp-fb")
            .iter()
            .any(|f| f.ends_with(" nack")),
        "no NACK on audio"
    );
    // Publisher side: TWCC (id 3) everywhere, audio level (id 1) on audio, nothing else.
    let ext0 = attrs(sdp.media(0).unwrap(), "extmap");
    assert!(
        ext0.iter()
            .any(|e| e.starts_with("1 ") && e.contains("ssrc-audio-level")),
        "{ext0:?}"
    );
    assert!(
        ext0.iter()
            .any(|e| e.starts_with("3 ") && e.contains("transport-wide-cc")),
        "{ext0:?}"
    );
    assert_eq!(ext0.len(), 2, "{ext0:?}");
    let m1 = sdp.media(1).unwrap();
    let ext1 = attrs(m1, "extmap");
    assert_eq!(ext1.len(), 1, "{ext1:?}");
    assert!(ext1[0].starts_with("3 "));
    let fb1 = attrs(m1, "rtcp-fb");
    for want in ["96 nack", "96 nack pli", "96 ccm fir", "96 transport-cc"] {
        assert!(fb1.contains(&want), "{want} missing: {fb1:?}");
    }
    // Subscriber side: fixed SSRC with the publisher's stream id in msid on both m-lines.
    for i in [2, 3] {
        let m = sdp.media(i).unwrap();
        let ssrcs = attrs(m, "ssrc");
        assert!(
            ssrcs.iter().any(|s| s.contains("msid:a ")),
            "m-line {i}: {ssrcs:?}"
        );
    }
    h.room.remove_peer(&chrome);
    assert!(h.wait(Duration::from_secs(5), |h| h.room.element_count()
        == base_elements));
    assert!(h.failures.is_empty(), "{:?}", h.failures);
    assert!(h.room.shutdown().blocking_recv().is_ok());
}
