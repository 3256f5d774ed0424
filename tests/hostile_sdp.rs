//! Hostile `sdpOffer`s and ICE candidates from one client of a room, through real WebSockets
//! against a real server (and its real webrtcbins). For each case the offender gets an `error`
//! media event (or is disconnected), the two healthy participants keep decoding each other,
//! and the server still serves newcomers.

#[path = "support/hostile.rs"]
mod hostile;
mod support;
#[path = "support/tamper.rs"]
mod tamper;

use hostile::{offer_sdp, recvonly, HostileRoom, Offender, Outcome, FINGERPRINT, M};
use serde_json::{json, Value};

/// A connected offender that has its first `offerData`: `(offender, audio, video)`.
async fn offered(room: &HostileRoom) -> (Offender, usize, usize) {
    let mut o = room.connected_offender().await;
    let (audio, video) = o.offer_data().await;
    assert_eq!((audio, video), (2, 2), "A's and B's tracks");
    (o, audio, video)
}

/// Asserts the offender's next error is an `error` media event containing `needle`.
async fn error_event_contains(o: &mut Offender, needle: &str) {
    let message = o.error_event().await;
    assert!(
        message.contains(needle),
        "error {message:?} lacks {needle:?}"
    );
}

/// Offers `sdp` with `mids`, expects an error containing `needle`.
async fn refused(o: &mut Offender, sdp: &str, mids: Value, needle: &str) {
    o.send_offer(sdp, mids).await;
    error_event_contains(o, needle).await;
}

/// After a refused offer the round is over: asks for a new one and waits for its `offerData`.
async fn fresh_round(o: &mut Offender) {
    o.custom("renegotiateTracks", json!(null)).await;
    o.offer_data().await;
}

/// No track of `endpoint` reached A.
fn a_sees_no_tracks_of(room: &HostileRoom, endpoint: &str) {
    let s = room.a.snapshot();
    assert!(
        s.tracks.values().all(|t| t.endpoint != endpoint),
        "A got tracks of the offender: {:?}",
        s.tracks
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offer_without_offer_data() {
    let room = HostileRoom::start(|_| {}).await;
    let (mut o, a, v) = offered(&room).await;
    // A valid offer gets an answer…
    o.send_offer(&offer_sdp(&recvonly(a, v)), json!({})).await;
    let answer = o.wait_media("sdpAnswer").await;
    assert!(answer["sdp"].as_str().is_some_and(|s| s.starts_with("v=0")));
    // …a second one without a new offerData does not.
    refused(
        &mut o,
        &offer_sdp(&recvonly(a, v)),
        json!({}),
        "without a pending offerData",
    )
    .await;
    room.assert_healthy().await;
    room.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offer_fields_of_wrong_type() {
    let room = HostileRoom::start(|_| {}).await;
    let (mut o, a, v) = offered(&room).await;
    let sdp = offer_sdp(&recvonly(a, v));
    for (data, needle) in [
        (
            json!({"sdpOffer": {"type": "offer", "sdp": 5}, "midToTrackId": {}}),
            "sdpOffer.sdp must be a string",
        ),
        (
            json!({"sdpOffer": {"type": "offer", "sdp": [sdp]}, "midToTrackId": {}}),
            "sdpOffer.sdp must be a string",
        ),
        (
            json!({"sdpOffer": {"type": "answer", "sdp": sdp}, "midToTrackId": {}}),
            "sdpOffer.type must be \"offer\"",
        ),
        (
            json!({"sdpOffer": sdp, "midToTrackId": {}}),
            "sdpOffer must be an object",
        ),
        (json!({"midToTrackId": {}}), "missing field \"sdpOffer\""),
        (
            json!({"sdpOffer": {"type": "offer", "sdp": sdp}, "midToTrackId": []}),
            "midToTrackId must be an object",
        ),
        (
            json!({"sdpOffer": {"type": "offer", "sdp": sdp}, "midToTrackId": "0"}),
            "midToTrackId must be an object",
        ),
        (
            json!({"sdpOffer": {"type": "offer", "sdp": sdp}}),
            "missing field \"midToTrackId\"",
        ),
        (
            json!({"sdpOffer": {"type": "offer", "sdp": sdp}, "midToTrackId": {"0": 7}}),
            "midToTrackId values must be strings",
        ),
        (
            json!({"sdpOffer": {"type": "offer", "sdp": sdp}, "midToTrackId": {"0": null}}),
            "midToTrackId values must be strings",
        ),
        (
            json!({"sdpOffer": {"type": "offer", "sdp": sdp}, "midToTrackId": {},
                   "trackIdToTrackMetadata": "x"}),
            "trackIdToTrackMetadata must be an object",
        ),
    ] {
        o.custom("sdpOffer", data).await;
        error_event_contains(&mut o, needle).await;
    }
    // The round is still open for a good offer.
    o.send_offer(&sdp, json!({})).await;
    o.wait_media("sdpAnswer").await;
    room.assert_healthy().await;
    room.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdp_without_m_lines() {
    let room = HostileRoom::start(|_| {}).await;
    let (mut o, _, _) = offered(&room).await;
    let sdp = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n";
    refused(&mut o, sdp, json!({}), "no m-lines").await;
    fresh_round(&mut o).await;
    refused(&mut o, "", json!({}), "not an SDP").await;
    room.assert_healthy().await;
    room.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_after_v0() {
    let room = HostileRoom::start(|_| {}).await;
    let (mut o, _, _) = offered(&room).await;
    // Enough structure to pass the room's checks; the rest is for GStreamer to choke on.
    let sdp = "v=0\r\n\u{1}\u{2}garbage\r\nxx\r\no=\r\n==\r\nm=audio x y z\r\n\
               a=mid:0\r\na=recvonly\r\na=rtpmap:\r\na=fingerprint:\r\nc=IN IP9 ::::\r\n\
               m=video -1 UDP/TLS/RTP/SAVPF 4294967296\r\na=mid:1\r\na=recvonly\r\n\
               a=rtpmap:4294967296 VP8/90000\r\n\u{0}\r\n";
    refused(&mut o, sdp, json!({}), "negotiation failed").await;
    room.assert_healthy().await;
    room.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sendrecv_m_lines() {
    let room = HostileRoom::start(|_| {}).await;
    let (mut o, _, _) = offered(&room).await;
    let sdp = offer_sdp(&[
        M {
            kind: "audio",
            dir: "sendrecv",
        },
        M {
            kind: "video",
            dir: "recvonly",
        },
    ]);
    let mids = json!({"0": format!("{}:a", o.id)});
    refused(&mut o, &sdp, mids, "sendrecv").await;
    fresh_round(&mut o).await;
    // No direction attribute at all means sendrecv too.
    let sdp = offer_sdp(&recvonly(1, 1)).replacen("a=recvonly\r\n", "", 1);
    refused(&mut o, &sdp, json!({}), "sendrecv").await;
    let id = o.id.clone();
    room.assert_healthy().await;
    a_sees_no_tracks_of(&room, &id);
    room.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_codecs_only() {
    let room = HostileRoom::start(|_| {}).await;
    let (mut o, a, v) = offered(&room).await;
    let mut mlines = recvonly(a, v);
    mlines.push(M {
        kind: "video",
        dir: "sendonly",
    });
    let sdp = offer_sdp(&mlines)
        .replace("opus/48000/2", "L16/8000/1")
        .replace("VP8/90000", "H265/90000");
    let mids = json!({(a + v).to_string(): format!("{}:v", o.id)});
    refused(&mut o, &sdp, mids, "no supported codec").await;
    fresh_round(&mut o).await;
    // Static payload types only (PCMU, PCMA).
    let sdp = offer_sdp(&recvonly(1, 0))
        .replace("SAVPF 111", "SAVPF 0 8")
        .replace("a=rtpmap:111 opus/48000/2\r\n", "");
    refused(&mut o, &sdp, json!({}), "no supported codec").await;
    let id = o.id.clone();
    room.assert_healthy().await;
    a_sees_no_tracks_of(&room, &id);
    room.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_m_lines() {
    let room = HostileRoom::start(|_| {}).await;
    let (mut o, _, _) = offered(&room).await;
    let mut sdp = String::from("v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n");
    for i in 0..1000 {
        sdp += &format!("m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:{i}\r\na=inactive\r\n");
    }
    refused(&mut o, &sdp, json!({}), "too many m-lines").await;
    room.assert_healthy().await;
    room.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_fingerprint() {
    let room = HostileRoom::start(|_| {}).await;
    let (mut o, a, v) = offered(&room).await;
    let sdp =
        offer_sdp(&recvonly(a, v)).replace(&format!("a=fingerprint:sha-256 {FINGERPRINT}\r\n"), "");
    refused(&mut o, &sdp, json!({}), "no DTLS fingerprint").await;
    room.assert_healthy().await;
    room.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_fingerprint() {
    let room = HostileRoom::start(|_| {}).await;
    let (mut o, a, v) = offered(&room).await;
    for forged in [
        "md5 00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF",
        "sha-256 not-a-fingerprint",
        "sha-256 4F:1A",
    ] {
        let sdp = offer_sdp(&recvonly(a, v)).replace(&format!("sha-256 {FINGERPRINT}"), forged);
        refused(&mut o, &sdp, json!({}), "fingerprint is malformed").await;
        fresh_round(&mut o).await;
    }
    room.assert_healthy().await;
    room.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_recvonly_than_tracks_types() {
    let room = HostileRoom::start(|_| {}).await;
    let (mut o, a, v) = offered(&room).await;
    refused(
        &mut o,
        &offer_sdp(&recvonly(a, v + 1)),
        json!({}),
        "more recvonly m-lines than offerData asked for",
    )
    .await;
    room.assert_healthy().await;
    room.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mid_to_track_id_claims_another_peers_tracks() {
    let room = HostileRoom::start(|_| {}).await;
    let (mut o, _, _) = offered(&room).await;
    let b_tracks: Vec<String> = hostile::frames_from(&room.a.snapshot(), &room.b.id)
        .into_keys()
        .collect();
    let sdp = offer_sdp(&[
        M {
            kind: "audio",
            dir: "sendonly",
        },
        M {
            kind: "video",
            dir: "sendonly",
        },
    ]);
    // B's real track ids…
    let mids = json!({"0": b_tracks[0], "1": b_tracks[1]});
    refused(&mut o, &sdp, mids, "invalid track id").await;
    // …ids in B's name, and ids without any prefix.
    for mids in [
        json!({"0": format!("{}:forged", room.b.id), "1": format!("{}:v", o.id)}),
        json!({"0": "naked", "1": format!("{}:v", o.id)}),
    ] {
        fresh_round(&mut o).await;
        refused(&mut o, &sdp, mids, "invalid track id").await;
    }
    let id = o.id.clone();
    room.assert_healthy().await;
    a_sees_no_tracks_of(&room, &id);
    // B's tracks are still B's, with their metadata.
    let s = room.a.snapshot();
    for t in &b_tracks {
        assert_eq!(s.tracks[t].endpoint, room.b.id);
    }
    room.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mid_to_track_id_names_bad_mids() {
    let room = HostileRoom::start(|_| {}).await;
    let (mut o, a, v) = offered(&room).await;
    let sdp = offer_sdp(&recvonly(a, v));
    let own = format!("{}:t", o.id);
    refused(&mut o, &sdp, json!({"9": own}), "unknown mid").await;
    fresh_round(&mut o).await;
    refused(&mut o, &sdp, json!({"0": own}), "not sendonly").await;
    room.assert_healthy().await;
    room.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_sdp() {
    let room = HostileRoom::start(|_| {}).await;
    let (mut o, a, v) = offered(&room).await;
    let padding = "a=x-padding:".to_owned() + &"p".repeat(300 * 1024) + "\r\n";
    let sdp = offer_sdp(&recvonly(a, v)) + &padding;
    refused(&mut o, &sdp, json!({}), "sdp is too large").await;
    room.assert_healthy().await;
    room.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_candidates_after_an_offer() {
    let room = HostileRoom::start(|_| {}).await;
    let (mut o, a, v) = offered(&room).await;
    o.send_offer(&offer_sdp(&recvonly(a, v)), json!({})).await;
    o.wait_media("sdpAnswer").await;
    let long = "candidate:".to_owned() + &"9".repeat(100_000);
    for c in [
        "garbage",
        "candidate:",
        "candidate:1 1 UDP 1 999.999.999.999 99999 typ host",
        "candidate:1 1 UDP 1 127.0.0.1 -5 typ host",
        "candidate:1 1 UDP 1 evil.local 9 typ host",
        "candidate:1 1 TCP 1 127.0.0.1 9 typ nonsense raddr x rport y",
        "candidate:\u{0}\u{1}\u{7f}",
        long.as_str(),
    ] {
        o.candidate(json!(c), json!(0)).await;
        error_event_contains(&mut o, "candidate").await;
    }
    // Well-formed candidates for m-lines that do not exist are harmless too.
    o.candidate(
        json!("candidate:1 1 udp 2122260223 127.0.0.1 9 typ host"),
        json!(1023),
    )
    .await;
    room.assert_healthy().await;
    room.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_candidates_after_an_offer() {
    let room = HostileRoom::start(|_| {}).await;
    let (mut o, a, v) = offered(&room).await;
    o.send_offer(&offer_sdp(&recvonly(a, v)), json!({})).await;
    o.wait_media("sdpAnswer").await;
    for i in 0..1000u32 {
        let ip = format!("10.{}.{}.{}", i / 65536, (i / 256) % 256, i % 256);
        o.candidate(
            json!(format!(
                "candidate:{i} 1 udp 2122260223 {ip} {} typ host",
                10_000 + i
            )),
            json!(0),
        )
        .await;
    }
    match o.outcome().await {
        Outcome::ErrorEvent(m) => assert!(m.contains("candidates"), "{m}"),
        Outcome::ErrorReply(r) => assert_eq!(r, "rate_limited"),
        Outcome::Disconnected(_) => {}
    }
    room.assert_healthy().await;
    room.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_fingerprint_from_a_real_peer() {
    let room = HostileRoom::start(|_| {}).await;
    // C is a real webrtcbin participant whose offers carry a fingerprint of no certificate
    // (a man in the middle of its signalling): the DTLS handshake must not be accepted.
    let proxy = tamper::tamper_proxy(room.addr(), tamper::forge_fingerprint).await;
    let c = lamina_client::Participant::join(lamina_client::ParticipantConfig {
        url: proxy.url.clone(),
        room: hostile::ROOM.into(),
        name: "C".into(),
        audio: true,
        video: true,
        receive: true,
    })
    .await
    .expect("C joins");
    let s = c
        .wait_until("C refused", hostile::MEDIA_TIMEOUT, |s| {
            !s.errors.is_empty()
        })
        .await
        .unwrap();
    println!("C: errors {:?}, frames {}", s.errors, s.total_frames());
    let c_id = c.id.clone();
    room.a
        .wait_until("C removed", hostile::MEDIA_TIMEOUT, |s| {
            !s.endpoints.contains_key(&c_id)
        })
        .await
        .unwrap();
    room.assert_healthy().await;
    c.leave().await;
    room.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_track_id_on_two_m_lines() {
    let room = HostileRoom::start(|_| {}).await;
    let (mut o, a, v) = offered(&room).await;
    let mut mlines = recvonly(a, v);
    for kind in ["video", "video"] {
        mlines.push(M {
            kind,
            dir: "sendonly",
        });
    }
    let t = format!("{}:twice", o.id);
    let mids = json!({(a + v).to_string(): t, (a + v + 1).to_string(): t});
    refused(&mut o, &offer_sdp(&mlines), mids, "more than one m-line").await;
    let id = o.id.clone();
    room.assert_healthy().await;
    a_sees_no_tracks_of(&room, &id);
    room.finish().await;
}
