//! Simulcast through a real server (issue #17): a webrtcbin participant publishes its camera as
//! three VP8 layers `l`/`m`/`h` (160x120, 320x240, 640x480) on one m-line like Chrome (RIDs in
//! the offer and in the packets, no layer SSRCs announced); the server answers them
//! (`a=rid:<id> recv`, `a=simulcast:recv`) and forwards one layer per subscriber. Subscriber A
//! asks for `l` then `h` again (`setTargetTrackVariant`), B stays on the default `h`: A is told
//! (`encodingSwitched`) and decodes the layer's size without decoder errors. Prints the delays
//! from the request to `encodingSwitched` and to the first frame of the new size.

mod support;

use std::time::{Duration, Instant};

use lamina::server::Server;
use lamina_client::{Participant, ParticipantConfig, ParticipantOptions, ParticipantState};

const TIMEOUT: Duration = Duration::from_secs(20);
/// Bound on a layer switch: `encodingSwitched` and a frame of the new size.
const SWITCH_TIMEOUT: Duration = Duration::from_secs(10);
const ROOM: &str = "simulcast";

async fn join(server: &Server, name: &str, publish: bool) -> Participant {
    let config = ParticipantConfig {
        url: format!("ws://{}/socket/websocket", server.addr),
        room: ROOM.into(),
        name: name.into(),
        audio: false,
        video: publish,
        receive: !publish,
    };
    let options = ParticipantOptions {
        simulcast: publish,
        ..Default::default()
    };
    Participant::join_with(config, options)
        .await
        .expect("participant joins")
}

/// Messages of the decoding elements on `p`'s bus (frames they could not decode).
fn decoder_errors(s: &ParticipantState) -> Vec<String> {
    s.bus_errors
        .iter()
        .filter(|e| e.starts_with("vp8dec") || e.starts_with("rtpvp8depay"))
        .cloned()
        .collect()
}

/// What a layer switch took, from the request: to its `encodingSwitched` (and the reason
/// given), to the first decoded frame of the layer's size; the frames decoded by then.
struct Switch {
    event: Duration,
    reason: String,
    first_frame: Duration,
    frames: u64,
}

/// Asks for layer `encoding` of `track` at `p`; waits (bounded) until `p` was told
/// (`encodingSwitched`) and decodes frames whose width satisfies `size_ok`.
async fn switch(
    p: &Participant,
    track: &str,
    encoding: &str,
    size_ok: impl Fn(u32) -> bool,
) -> Switch {
    let asked = Instant::now();
    let before = p.snapshot().encoding_switches.len();
    assert!(p.set_target_variant(track, encoding));
    let s = p
        .wait_until(
            &format!("encodingSwitched to {encoding} and frames of its size"),
            SWITCH_TIMEOUT,
            |s| {
                s.encoding_switches[before..]
                    .iter()
                    .any(|e| e.track_id == track && e.encoding == encoding)
                    && size_ok(s.width(track))
            },
        )
        .await
        .unwrap_or_else(|e| panic!("{}: {e}", p.id));
    let event = s.encoding_switches[before..]
        .iter()
        .find(|e| e.track_id == track && e.encoding == encoding)
        .unwrap();
    let t = &s.tracks[track];
    assert_eq!(
        t.encoding.as_ref().map(|(e, _)| e.as_str()),
        Some(encoding),
        "the last encodingSwitched of {track}"
    );
    let first = t
        .sizes
        .iter()
        .find(|(at, w, _)| *at >= asked && size_ok(*w))
        .map(|(at, _, _)| *at)
        .expect("a size change after the request");
    Switch {
        event: event.at - asked,
        reason: event.reason.clone(),
        first_frame: first - asked,
        frames: t.frames,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribers_choose_their_simulcast_layer() {
    let server = support::spawn_server(|_| {}).await;
    let publisher = join(&server, "publisher", true).await;

    // (a) The server receives the three layers.
    let s = publisher
        .wait_until("the publisher's answer", TIMEOUT, |s| s.answers > 0)
        .await
        .unwrap();
    assert!(s.errors.is_empty(), "{:?}", s.errors);
    let answer = s.last_answer.expect("answer SDP");
    let lines: Vec<&str> = answer.lines().map(|l| l.trim_end_matches('\r')).collect();
    assert!(
        lines.iter().any(|l| l.starts_with("a=simulcast:recv")),
        "no a=simulcast:recv in the answer:\n{answer}"
    );
    for rid in ["l", "m", "h"] {
        let line = format!("a=rid:{rid} recv");
        assert!(lines.contains(&line.as_str()), "no {line}:\n{answer}");
    }

    // (b) Both subscribers decode the camera.
    let a = join(&server, "A", false).await;
    let b = join(&server, "B", false).await;
    let pub_id = publisher.id.clone();
    for p in [&a, &b] {
        p.wait_until("the simulcast camera decoded", TIMEOUT, |s| {
            s.playing(&pub_id, 10) == 1
        })
        .await
        .unwrap_or_else(|e| panic!("{}: {e}", p.id));
    }
    let s = a.snapshot();
    let (track, info) = s
        .tracks
        .iter()
        .find(|(_, t)| t.endpoint == pub_id)
        .map(|(id, t)| (id.clone(), t.clone()))
        .unwrap();
    println!(
        "announced simulcast layers of the camera: {:?}",
        info.simulcast
    );
    // The default layer is the highest: 640x480.
    for p in [&a, &b] {
        p.wait_until("the full-size layer", SWITCH_TIMEOUT, |s| {
            s.width(&track) == 640
        })
        .await
        .unwrap_or_else(|e| panic!("{}: {e}", p.id));
    }

    // (c) A asks for the low layer; B stays on the high one.
    let b_width = b.snapshot().width(&track);
    let low = switch(&a, &track, "l", |w| w > 0 && w * 2 <= b_width).await;
    let (sa, sb) = (a.snapshot(), b.snapshot());
    assert!(
        sa.width(&track) * 2 <= sb.width(&track),
        "A {:?}, B {:?}",
        sa.tracks[&track].size,
        sb.tracks[&track].size
    );

    // (d) A goes back to the high layer, decoding on.
    let high = switch(&a, &track, "h", |w| w == b_width).await;
    let frames = high.frames;
    a.wait_until("A decodes on after the switch back", TIMEOUT, |s| {
        s.tracks[&track].frames >= frames + 10
    })
    .await
    .unwrap();
    let (sa, sb) = (a.snapshot(), b.snapshot());
    assert_eq!(sa.width(&track), sb.width(&track));
    assert!(
        !sb.encoding_switches
            .iter()
            .any(|e| e.track_id == track && e.encoding != "h"),
        "B was switched: {:?}",
        sb.encoding_switches
    );
    assert_eq!(sb.width(&track), 640, "B left the high layer");
    for (name, s) in [("A", &sa), ("B", &sb)] {
        assert!(
            decoder_errors(s).is_empty(),
            "{name}'s decoder: {:?}",
            decoder_errors(s)
        );
        assert!(s.errors.is_empty(), "{name}: {:?}", s.errors);
    }

    // (e) Figures.
    let sent = publisher.snapshot().sent_layer_keyframes;
    println!(
        "[metric] simulcast: l requested → encodingSwitched {:?} (reason {}), → first frame of its size {:?}; \
         h requested → encodingSwitched {:?} (reason {}), → first 640-wide frame {:?}",
        low.event, low.reason, low.first_frame, high.event, high.reason, high.first_frame
    );
    let switches = |s: &ParticipantState| -> Vec<(String, String)> {
        s.encoding_switches
            .iter()
            .map(|e| (e.encoding.clone(), e.reason.clone()))
            .collect()
    };
    println!(
        "[metric] simulcast: A's sizes {:?}; encodingSwitched at A {:?}, at B {:?}; publisher \
         keyframes per layer {:?}; A bus {:?}; B bus {:?}",
        sa.tracks[&track]
            .sizes
            .iter()
            .map(|(_, w, h)| (w, h))
            .collect::<Vec<_>>(),
        switches(&sa),
        switches(&sb),
        sent.values().next(),
        sa.bus_errors,
        sb.bus_errors
    );
    for p in [publisher, a, b] {
        p.leave().await;
    }
    server.stop().await;
}
