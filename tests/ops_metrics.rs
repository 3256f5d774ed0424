//! `GET /metrics`: gauges and counters after real traffic. The media test uses two webrtcbin
//! participants exchanging audio and video through the server.

mod ops_common;
mod support;

use std::time::Duration;

use lamina::server::Server;
use lamina_client::{Participant, ParticipantConfig};
use ops_common::sample;
use serde_json::json;
use support::{http_get, spawn_server, wait_until, PhoenixClient};
use tokio_tungstenite::tungstenite::Message;

const MEDIA_TIMEOUT: Duration = Duration::from_secs(20);

async fn scrape(server: &Server) -> String {
    let (status, body) = http_get(server.addr, "/metrics").await;
    assert_eq!(status, 200, "{body}");
    body
}

fn value(text: &str, name: &str) -> f64 {
    sample(text, name).unwrap_or_else(|| panic!("no sample {name} in\n{text}"))
}

async fn participant(server: &Server, name: &str) -> Participant {
    Participant::join(ParticipantConfig {
        url: format!("ws://{}/socket/websocket", server.addr),
        room: "metered".into(),
        name: name.into(),
        audio: true,
        video: true,
        receive: true,
    })
    .await
    .expect("participant joins")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn room_gauges_and_forwarded_counters_follow_a_media_session() {
    let server = spawn_server(|_| {}).await;
    let before = scrape(&server).await;
    assert_eq!(value(&before, "lamina_rooms"), 0.0);
    assert_eq!(value(&before, "lamina_peers"), 0.0);
    assert_eq!(value(&before, "lamina_turn_allocations"), 0.0);

    let a = participant(&server, "A").await;
    let b = participant(&server, "B").await;
    for (p, other) in [(&a, &b.id), (&b, &a.id)] {
        p.wait_until("remote media decoded", MEDIA_TIMEOUT, |s| {
            s.playing(other, 10) == 2
        })
        .await
        .unwrap_or_else(|e| panic!("{}: {e}", p.id));
    }
    let during = scrape(&server).await;
    assert_eq!(value(&during, "lamina_rooms"), 1.0, "{during}");
    assert_eq!(value(&during, "lamina_rooms_unresponsive"), 0.0);
    assert_eq!(value(&during, "lamina_peers"), 2.0, "{during}");
    assert_eq!(value(&during, "lamina_published_tracks"), 4.0, "{during}");
    let packets = value(&during, "lamina_forwarded_packets_total");
    let bytes = value(&during, "lamina_forwarded_bytes_total");
    println!("while decoding: {packets} packets, {bytes} bytes forwarded");
    assert!(packets > 0.0, "{during}");
    assert!(bytes > packets * 10.0, "{during}");
    // Forwarding goes on: the counters grow.
    assert!(
        wait_until(
            || async { value(&scrape(&server).await, "lamina_forwarded_packets_total") > packets },
            support::TIMEOUT
        )
        .await
    );

    a.leave().await;
    b.leave().await;
    assert!(
        wait_until(
            || async { value(&scrape(&server).await, "lamina_rooms") == 0.0 },
            support::TIMEOUT
        )
        .await,
        "the room did not close"
    );
    let after = scrape(&server).await;
    assert_eq!(value(&after, "lamina_peers"), 0.0);
    assert_eq!(value(&after, "lamina_published_tracks"), 0.0);
    // The room is gone, its forwarded packets are still counted.
    assert!(
        value(&after, "lamina_forwarded_packets_total") > packets,
        "{after}"
    );
    assert!(
        value(
            &after,
            "lamina_ws_disconnects_total{reason=\"client_closed\"}"
        ) >= 2.0
    );
    server.stop().await;
}

#[tokio::test]
async fn disconnects_refusals_and_negotiation_failures_are_counted() {
    let server = spawn_server(|_| {}).await;
    let binary = "lamina_ws_disconnects_total{reason=\"binary_frame\"}";
    let invalid_room = "lamina_join_refusals_total{reason=\"invalid_room\"}";
    let invalid_offer = "lamina_negotiation_failures_total{reason=\"invalid_offer\"}";
    let before = scrape(&server).await;

    // A binary frame closes the socket.
    let mut c = PhoenixClient::connect(server.addr).await;
    c.send_message(Message::Binary(vec![1, 2, 3]))
        .await
        .expect("send");
    c.closed().await;

    // An invalid room id is refused.
    let mut c = PhoenixClient::connect(server.addr).await;
    assert!(c.join("room:").await.is_err());

    // An offer the room cannot parse fails the round.
    let topic = "room:bad-offer";
    let join_ref = c.join_ok(topic).await;
    for event in [
        json!({"type": "connect", "data": {"metadata": {"displayName": "A"}}}),
        json!({"type": "custom", "data": {"type": "renegotiateTracks", "data": {}}}),
    ] {
        let r = c.media_event(&join_ref, topic, event).await;
        assert_eq!(c.reply(&r).await.status(), "ok");
    }
    c.next_frame_where(|f| {
        f.media_event()
            .is_some_and(|e| e["type"] == "custom" && e["data"]["type"] == "offerData")
    })
    .await;
    let offer = json!({"type": "custom", "data": {"type": "sdpOffer", "data": {
        "sdpOffer": {"type": "offer", "sdp": "this is not SDP"},
        "trackIdToTrackMetadata": {}, "midToTrackId": {}}}});
    c.media_event(&join_ref, topic, offer).await;
    let error = c.media_event_of_type("error").await;
    assert!(error["data"]["message"].is_string(), "{error}");

    let after = scrape(&server).await;
    for name in [binary, invalid_room, invalid_offer] {
        // Other tests of this process may count too: at least one more.
        assert!(
            value(&after, name) >= value(&before, name) + 1.0,
            "{name}\n{after}"
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn metrics_use_the_text_exposition_format() {
    let server = spawn_server(|_| {}).await;
    let (status, body) = http_get(server.addr, "/metrics").await;
    assert_eq!(status, 200);
    assert!(body.contains("# TYPE lamina_rooms gauge"), "{body}");
    assert!(
        body.contains("# TYPE lamina_forwarded_packets_total counter"),
        "{body}"
    );
    assert!(!body.contains("# EOF"), "OpenMetrics trailer in 0.0.4 text");
    server.stop().await;
}
