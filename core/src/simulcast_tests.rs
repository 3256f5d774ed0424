//! Simulcast through the room core: layer choices (`SelectLayer`), `LayersActive`,
//! `LayerSwitched` → `encodingSwitched`, `DownlinkEstimate` → `bandwidthEstimation`, and
//! `setTargetTrackVariant` (wishes, drops, rate limit).

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime};

use lamina_protocol::media_event::TrackBitrates;
use serde_json::json;

use super::tests::{
    answer, connect, connected, events, id, kinds, publisher, renegotiate, reports, room,
};
use super::*;

/// A sendonly m-line: (kind, mid, track name, metadata type, simulcast).
type Send<'a> = (&'a str, &'a str, &'a str, &'a str, bool);

fn sdp(send: &[Send<'_>], recv: &[(&str, &str)]) -> String {
    let mut s = String::from("v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n");
    for (kind, mid, _, _, simulcast) in send {
        s += &format!(
            "m={kind} 9 UDP/TLS/RTP/SAVPF 96\r\na=ice-ufrag:u\r\na=mid:{mid}\r\na=sendonly\r\n"
        );
        if *simulcast {
            s += "a=rid:l send\r\na=rid:m send\r\na=rid:h send\r\na=simulcast:send l;m;h\r\n";
        }
    }
    for (kind, mid) in recv {
        s += &format!("m={kind} 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:{mid}\r\na=recvonly\r\n");
    }
    s
}

fn offer(
    r: &mut RoomCore,
    p: &str,
    send: &[Send<'_>],
    recv: &[(&str, &str)],
    bitrates: &[(&str, TrackBitrates)],
) -> Vec<Effect> {
    let track = |t: &str| format!("{p}:{t}");
    r.client_event(
        &id(p),
        ClientEvent::SdpOffer {
            sdp: sdp(send, recv),
            track_metadata: send
                .iter()
                .map(|(_, _, t, ty, _)| (track(t), json!({ "type": ty })))
                .collect(),
            mid_to_track_id: send
                .iter()
                .map(|(_, mid, t, _, _)| (mid.to_string(), track(t)))
                .collect(),
            track_bitrates: bitrates
                .iter()
                .map(|(t, b)| (track(t), b.clone()))
                .collect(),
        },
    )
}

const CAMERA: [Send<'static>; 2] = [
    ("audio", "0", "a", "audio", false),
    ("video", "1", "v", "camera", true),
];

/// `p` connected, publishing audio `a` and a simulcast camera `v`, its round over.
pub(crate) fn simulcast_publisher(r: &mut RoomCore, p: &str) {
    connect(r, p, p);
    renegotiate(r, p);
    offer(r, p, &CAMERA, &[], &[]);
    answer(r, p);
    connected(r, p);
}

/// `p` connects and receives everything announced to it (`audio`, `video` recvonly m-lines);
/// the effects of its answer.
pub(crate) fn subscriber(r: &mut RoomCore, p: &str, audio: usize, video: usize) -> Vec<Effect> {
    connect(r, p, p);
    let mut recv = Vec::new();
    let mids: Vec<String> = (0..audio + video).map(|i| i.to_string()).collect();
    for (i, mid) in mids.iter().enumerate() {
        recv.push((if i < audio { "audio" } else { "video" }, mid.as_str()));
    }
    offer(r, p, &[], &recv, &[]);
    let fx = answer(r, p);
    connected(r, p);
    fx
}

/// The `SelectLayer`s of `fx`: (subscriber, track, layer).
pub(crate) fn selected(fx: &[Effect]) -> Vec<(String, String, String)> {
    fx.iter()
        .filter_map(|e| match e {
            Effect::Media(MediaCommand::SelectLayer {
                peer, track, layer, ..
            }) => Some((peer.to_string(), track.to_string(), layer.clone())),
            _ => None,
        })
        .collect()
}

pub(crate) fn select(peer: &str, track: &str, layer: &str) -> (String, String, String) {
    (peer.into(), track.into(), layer.into())
}

fn wish(r: &mut RoomCore, p: &str, track: &str, variant: &str) -> Vec<Effect> {
    r.client_event(
        &id(p),
        ClientEvent::SetTargetTrackVariant {
            track_id: track.into(),
            variant: variant.into(),
        },
    )
}

fn switched(r: &mut RoomCore, p: &str, track: &str, layer: &str) -> Vec<Effect> {
    r.media_event(MediaEvent::LayerSwitched {
        peer: id(p),
        track: TrackId::new(track),
        layer: layer.into(),
    })
}

fn active(r: &mut RoomCore, track: &str, layers: &[&str]) -> Vec<Effect> {
    r.media_event(MediaEvent::LayersActive {
        track: TrackId::new(track),
        layers: layers.iter().map(|l| l.to_string()).collect(),
    })
}

/// Moves the room's clock to `ms` after `t0`.
pub(crate) fn at(r: &mut RoomCore, t0: Instant, ms: u64) {
    r.advance(t0 + Duration::from_millis(ms), SystemTime::UNIX_EPOCH);
}

pub(crate) fn estimate(r: &mut RoomCore, p: &str, bps: u64) -> Vec<Effect> {
    r.media_event(MediaEvent::DownlinkEstimate { peer: id(p), bps })
}

fn encoding_switched(fx: &[Effect], peer: &str) -> Vec<(String, String, String, String)> {
    events(fx, peer)
        .into_iter()
        .filter_map(|e| match e {
            ServerEvent::EncodingSwitched {
                endpoint_id,
                track_id,
                encoding,
                reason,
            } => Some((
                endpoint_id.clone(),
                track_id.clone(),
                encoding.clone(),
                reason.clone(),
            )),
            _ => None,
        })
        .collect()
}

#[test]
fn a_simulcast_track_is_announced_with_its_layers_and_selected_after_the_answer() {
    let mut r = room();
    simulcast_publisher(&mut r, "A");
    let t = r.tracks().find(|t| t.id.as_str() == "A:v").unwrap();
    let layers = t.simulcast.as_ref().expect("a simulcast track");
    assert_eq!(layers.rids, ["l", "m", "h"]);
    assert_eq!(layers.bitrates, [150_000, 500_000, 2_500_000]);
    let audio = r.tracks().find(|t| t.id.as_str() == "A:a").unwrap();
    assert!(audio.simulcast.is_none());
    assert_eq!(audio.bitrate, 50_000);

    let fx = connect(&mut r, "B", "Bob");
    let ServerEvent::TracksAdded { tracks, .. } = events(&fx, "B")[1] else {
        panic!("{fx:?}")
    };
    let layers: Vec<_> = tracks.iter().map(|t| t.simulcast.clone()).collect();
    assert_eq!(
        layers,
        [None, Some(vec!["l".into(), "m".into(), "h".into()])]
    );
    let ServerEvent::Connected {
        other_endpoints, ..
    } = events(&fx, "B")[0]
    else {
        panic!("{fx:?}")
    };
    assert_eq!(other_endpoints[0].tracks[1].simulcast, layers[1]);

    // The first decision goes out with B's answer; nothing more until something changes.
    offer(&mut r, "B", &[], &[("audio", "0"), ("video", "1")], &[]);
    let fx = answer(&mut r, "B");
    assert_eq!(selected(&fx), [select("B", "A:v", "h")]);
    assert!(selected(&connected(&mut r, "B")).is_empty());
    renegotiate(&mut r, "B");
    offer(&mut r, "B", &[], &[("audio", "0"), ("video", "1")], &[]);
    assert!(selected(&answer(&mut r, "B")).is_empty());
}

#[test]
fn single_encoding_tracks_get_no_layer_choice() {
    let mut r = room();
    publisher(&mut r, "A");
    let fx = subscriber(&mut r, "B", 1, 1);
    assert!(selected(&fx).is_empty());
    assert!(selected(&estimate(&mut r, "B", 100_000)).is_empty());
    assert!(r.receiving(&id("B")).next().is_none());
}

#[test]
fn inactive_layers_move_subscribers_and_encoding_switched_says_why() {
    let mut r = room();
    simulcast_publisher(&mut r, "A");
    subscriber(&mut r, "B", 1, 1);
    // h stops arriving: B goes down to m.
    let fx = active(&mut r, "A:v", &["l", "m"]);
    assert_eq!(selected(&fx), [select("B", "A:v", "m")]);
    assert!(active(&mut r, "A:v", &["m", "l"]).is_empty(), "same set");
    let fx = switched(&mut r, "B", "A:v", "m");
    assert_eq!(
        encoding_switched(&fx, "B"),
        [(
            "A".into(),
            "A:v".into(),
            "m".into(),
            "encoding_inactive".into()
        )]
    );
    // h is back.
    let fx = active(&mut r, "A:v", &["l", "m", "h"]);
    assert_eq!(selected(&fx), [select("B", "A:v", "h")]);
    let fx = switched(&mut r, "B", "A:v", "h");
    assert_eq!(encoding_switched(&fx, "B")[0].3, "other");
    // Unknown layers in a report are ignored; a layer nobody chose is reported as "other".
    assert!(selected(&active(&mut r, "A:v", &["l", "m", "h", "x"])).is_empty());
    let fx = switched(&mut r, "B", "A:v", "l");
    assert_eq!(encoding_switched(&fx, "B")[0].3, "other");
    assert!(switched(&mut r, "B", "A:v", "x").is_empty(), "not a layer");
}

#[test]
fn encoding_switched_only_to_peers_told_about_the_track() {
    let mut r = room();
    simulcast_publisher(&mut r, "A");
    r.join(id("C")).unwrap();
    assert!(
        switched(&mut r, "C", "A:v", "h").is_empty(),
        "not connected"
    );
    assert!(
        switched(&mut r, "A", "A:v", "h").is_empty(),
        "its own track"
    );
    assert!(switched(&mut r, "Z", "A:v", "h").is_empty(), "no such peer");
    assert!(
        switched(&mut r, "A", "Z:v", "h").is_empty(),
        "no such track"
    );
    // Told but not yet receiving: 0.5.3 knows the track, so it may be told.
    connect(&mut r, "B", "Bob");
    assert_eq!(
        kinds(&switched(&mut r, "B", "A:v", "h"), "B"),
        ["encodingSwitched"]
    );
}

#[test]
fn the_wish_is_followed_and_kept_until_the_track_is_received() {
    let mut r = room();
    simulcast_publisher(&mut r, "A");
    connect(&mut r, "B", "Bob");
    // Announced, not received yet: stored, nothing to select.
    let fx = wish(&mut r, "B", "A:v", "l");
    assert!(fx.is_empty(), "{fx:?}");
    offer(&mut r, "B", &[], &[("audio", "0"), ("video", "1")], &[]);
    assert_eq!(selected(&answer(&mut r, "B")), [select("B", "A:v", "l")]);
    connected(&mut r, "B");
    assert_eq!(
        selected(&wish(&mut r, "B", "A:v", "m")),
        [select("B", "A:v", "m")]
    );
    assert!(wish(&mut r, "B", "A:v", "m").is_empty(), "same wish");
    let fx = switched(&mut r, "B", "A:v", "m");
    assert_eq!(encoding_switched(&fx, "B")[0].3, "other");
    let (track, receiving) = r.receiving(&id("B")).next().unwrap();
    assert_eq!(track.as_str(), "A:v");
    assert_eq!(receiving.wish.as_deref(), Some("m"));
    assert_eq!(receiving.switched.as_deref(), Some("m"));
}

#[test]
fn bad_variant_requests_are_dropped_and_counted_not_errors() {
    let mut r = room();
    simulcast_publisher(&mut r, "A");
    subscriber(&mut r, "B", 1, 1);
    let dropped = |fx: &[Effect]| {
        assert!(kinds(fx, "B").is_empty(), "no event, no error: {fx:?}");
        assert!(selected(fx).is_empty());
        reports(fx)
    };
    let drop = |why| [Outcome::LayerRequestDropped(why)];
    assert_eq!(
        dropped(&wish(&mut r, "B", "Z:v", "l")),
        drop(LayerRequestDrop::UnknownTrack)
    );
    assert_eq!(
        dropped(&wish(&mut r, "B", "A:a", "l")),
        drop(LayerRequestDrop::NotSimulcast)
    );
    assert_eq!(
        dropped(&wish(&mut r, "B", "A:v", "q")),
        drop(LayerRequestDrop::UnknownVariant)
    );
    // The publisher's own track is not announced to it.
    let fx = wish(&mut r, "A", "A:v", "l");
    assert!(kinds(&fx, "A").is_empty());
    assert_eq!(reports(&fx), drop(LayerRequestDrop::NotAnnounced));
    // A track announced to B, then gone while B's request was in flight.
    r.leave(&id("A"));
    assert_eq!(
        dropped(&wish(&mut r, "B", "A:v", "l")),
        drop(LayerRequestDrop::UnknownTrack)
    );
}

#[test]
fn variant_floods_are_dropped_and_counted_never_a_stall() {
    let mut r = room();
    simulcast_publisher(&mut r, "A");
    subscriber(&mut r, "B", 1, 1);
    let t0 = Instant::now();
    r.advance(t0, SystemTime::UNIX_EPOCH);
    let mut limited = 0;
    let mut selections = 0;
    for i in 0..1000 {
        let fx = wish(&mut r, "B", "A:v", ["l", "h"][i % 2]);
        assert!(kinds(&fx, "B").is_empty(), "never an error");
        assert!(!fx.iter().any(|e| matches!(e, Effect::Disconnect { .. })));
        limited += reports(&fx)
            .iter()
            .filter(|o| **o == Outcome::LayerRequestDropped(LayerRequestDrop::RateLimited))
            .count();
        selections += selected(&fx).len();
    }
    let burst = 2 * LAYER_REQUESTS_PER_SEC as usize;
    assert_eq!(limited, 1000 - burst);
    assert_eq!(selections, burst);
    // A second later requests pass again.
    r.advance(t0 + Duration::from_secs(1), SystemTime::UNIX_EPOCH);
    assert_eq!(
        selected(&wish(&mut r, "B", "A:v", "m")),
        [select("B", "A:v", "m")]
    );
}

#[test]
fn downlink_estimates_lower_layers_and_are_reported_sparingly() {
    let mut r = room();
    simulcast_publisher(&mut r, "A");
    subscriber(&mut r, "B", 1, 1);
    let t0 = Instant::now();
    r.advance(t0, SystemTime::UNIX_EPOCH);
    let told = |fx: &[Effect]| -> Vec<u64> {
        events(fx, "B")
            .into_iter()
            .filter_map(|e| match e {
                ServerEvent::BandwidthEstimation { estimation } => Some(*estimation),
                _ => None,
            })
            .collect()
    };
    // 600 k: audio 50 k, then m (500 k) fits.
    let fx = estimate(&mut r, "B", 600_000);
    assert_eq!(told(&fx), [600_000]);
    assert_eq!(selected(&fx), [select("B", "A:v", "m")]);
    assert_eq!(r.downlink(&id("B")), Some(600_000));
    let fx = switched(&mut r, "B", "A:v", "m");
    assert_eq!(encoding_switched(&fx, "B")[0].3, "low_bandwidth");
    // Within a second: stored and acted on, not reported.
    let fx = estimate(&mut r, "B", 3_000_000);
    assert!(told(&fx).is_empty());
    assert_eq!(selected(&fx), [select("B", "A:v", "h")]);
    // A second later: reported (a notable change from the 600 k last sent)...
    r.advance(t0 + Duration::from_secs(1), SystemTime::UNIX_EPOCH);
    assert_eq!(told(&estimate(&mut r, "B", 2_900_000)), [2_900_000]);
    // ...but not a change of less than 10 %.
    r.advance(t0 + Duration::from_secs(3), SystemTime::UNIX_EPOCH);
    assert!(told(&estimate(&mut r, "B", 2_700_000)).is_empty());
    assert_eq!(told(&estimate(&mut r, "B", 2_610_000)), [2_610_000]);
    // The wish still caps the layer.
    assert_eq!(
        selected(&wish(&mut r, "B", "A:v", "l")),
        [select("B", "A:v", "l")]
    );
    assert!(selected(&estimate(&mut r, "B", 9_000_000)).is_empty());
    // Estimates of unknown or not connected peers are ignored.
    assert!(estimate(&mut r, "Z", 1).is_empty());
    r.join(id("C")).unwrap();
    assert!(estimate(&mut r, "C", 1).is_empty());
}

#[test]
fn declared_bitrates_are_used() {
    let mut r = room();
    connect(&mut r, "A", "A");
    renegotiate(&mut r, "A");
    let layers = TrackBitrates::Layers(BTreeMap::from([
        ("l".into(), 100_000),
        ("m".into(), 300_000),
        ("h".into(), 1_200_000),
    ]));
    let bitrates = [("a", TrackBitrates::Single(40_000)), ("v", layers)];
    offer(&mut r, "A", &CAMERA, &[], &bitrates);
    answer(&mut r, "A");
    connected(&mut r, "A");
    let v = r.tracks().find(|t| t.id.as_str() == "A:v").unwrap();
    assert_eq!(
        v.simulcast.as_ref().unwrap().bitrates,
        [100_000, 300_000, 1_200_000]
    );
    subscriber(&mut r, "B", 1, 1);
    // 40 k of audio + 1.2 M fit in 1.25 M.
    assert!(selected(&estimate(&mut r, "B", 1_250_000)).is_empty());
    assert_eq!(
        selected(&estimate(&mut r, "B", 1_230_000)),
        [select("B", "A:v", "m")]
    );
    // Back up needs 10 % headroom: 40 k + 1.32 M.
    assert!(selected(&estimate(&mut r, "B", 1_300_000)).is_empty());
    assert_eq!(
        selected(&estimate(&mut r, "B", 1_400_000)),
        [select("B", "A:v", "h")]
    );
    // A later offer declaring other bit rates (none: the defaults) decides again.
    renegotiate(&mut r, "A");
    let fx = offer(&mut r, "A", &CAMERA, &[], &[]);
    assert_eq!(selected(&fx), [select("B", "A:v", "m")]);
}

#[test]
fn screen_shares_and_the_active_speaker_are_served_first() {
    let mut r = room();
    simulcast_publisher(&mut r, "A");
    connect(&mut r, "C", "C");
    renegotiate(&mut r, "C");
    let screen = [
        ("audio", "0", "a", "audio", false),
        ("video", "1", "s", "screensharing", true),
    ];
    offer(&mut r, "C", &screen, &[("audio", "2"), ("video", "3")], &[]);
    answer(&mut r, "C");
    connected(&mut r, "C");
    let fx = subscriber(&mut r, "B", 2, 2);
    assert_eq!(
        selected(&fx),
        [select("B", "A:v", "h"), select("B", "C:s", "h")]
    );
    // 3.1 M: two audio tracks (0.1 M), C's screen share first (h), A's camera m.
    assert_eq!(
        selected(&estimate(&mut r, "B", 3_100_000)),
        [select("B", "A:v", "m")]
    );
    // C's screen share stops being one: slot order, A's camera first.
    let fx = r.client_event(
        &id("C"),
        ClientEvent::UpdateTrackMetadata {
            track_id: "C:s".into(),
            metadata: json!({"type": "camera"}),
        },
    );
    assert_eq!(
        selected(&fx),
        [select("B", "A:v", "h"), select("B", "C:s", "m")]
    );
    // C speaks: its video comes first again.
    let fx = r.media_event(MediaEvent::VoiceActivity {
        track: TrackId::new("C:a"),
        speech: true,
    });
    assert_eq!(
        selected(&fx),
        [select("B", "A:v", "m"), select("B", "C:s", "h")]
    );
    // C leaves: A's camera has the downlink to itself.
    let fx = r.leave(&id("C"));
    assert_eq!(selected(&fx), [select("B", "A:v", "h")]);
    assert_eq!(r.receiving(&id("B")).count(), 1, "C's track forgotten");
}

#[test]
fn state_is_forgotten_with_peers_and_tracks() {
    let mut r = room();
    simulcast_publisher(&mut r, "A");
    subscriber(&mut r, "B", 1, 1);
    estimate(&mut r, "B", 1_000_000);
    wish(&mut r, "B", "A:v", "m");
    assert_eq!(r.receiving(&id("B")).count(), 1);
    // A stops its camera: B's state for it goes.
    renegotiate(&mut r, "A");
    offer(&mut r, "A", &CAMERA[..1], &[], &[]);
    assert_eq!(r.receiving(&id("B")).count(), 0);
    assert!(switched(&mut r, "B", "A:v", "m").is_empty());
    assert!(active(&mut r, "A:v", &["l"]).is_empty());
    r.leave(&id("B"));
    assert_eq!(r.downlink(&id("B")), None);
}

#[test]
fn a_refused_selection_is_sent_again_on_the_next_decision() {
    let mut r = room();
    simulcast_publisher(&mut r, "A");
    subscriber(&mut r, "B", 1, 1);
    let cmd = MediaCommand::SelectLayer {
        peer: id("B"),
        track: TrackId::new("A:v"),
        layer: "h".into(),
        urgent: false,
    };
    assert!(r
        .media_refused(&cmd, lamina_seam::MediaError::Closed)
        .is_empty());
    // The decision is the same, but the media graph never took it.
    assert_eq!(
        selected(&estimate(&mut r, "B", 10_000_000)),
        [select("B", "A:v", "h")]
    );
}

#[test]
fn debug_snapshot_shows_layers_and_choices() {
    let mut r = room();
    simulcast_publisher(&mut r, "A");
    subscriber(&mut r, "B", 1, 1);
    active(&mut r, "A:v", &["l", "m"]);
    switched(&mut r, "B", "A:v", "m");
    let v = r.tracks().find(|t| t.id.as_str() == "A:v").unwrap();
    assert_eq!(
        v.simulcast.as_ref().unwrap().to_json(),
        json!({"layers": ["l", "m", "h"], "bitrates": [150000, 500000, 2500000],
               "measured": [null, null, null], "active": ["l", "m"]})
    );
    assert_eq!(
        r.describe_layers(&id("B")),
        json!({"downlinkEstimate": null, "layers": [{"track": "A:v", "wish": null,
               "layer": "m", "reason": "encoding_inactive", "switched": "m"}]})
    );
}
