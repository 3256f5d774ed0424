//! Chaos on the client side of churn: a participant removes a screen share whose source is
//! already producing while its negotiation round may still be under way, many times over; the
//! participant must neither hang (webrtcbin blocks a sink pad until its transceiver is
//! negotiated: tearing the source down then waited forever for its streaming thread) nor stop
//! sending its camera, and it must be able to leave.

mod support;

use std::time::Duration;

use lamina_client::{Participant, ParticipantConfig};
use serde_json::json;

const T: Duration = Duration::from_secs(20);

async fn join(url: &str, name: &str) -> Participant {
    Participant::join(ParticipantConfig {
        url: url.to_owned(),
        room: "teardown".into(),
        name: name.into(),
        audio: false,
        video: true,
        receive: true,
    })
    .await
    .expect("participant joins")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn screen_share_removed_while_it_is_being_negotiated() {
    tokio::time::timeout(Duration::from_secs(60), async {
        let server = support::spawn_server(|_| {}).await;
        let url = format!("ws://{}/socket/websocket", server.addr);
        let a = join(&url, "A").await;
        let b = join(&url, "B").await;
        b.wait_until("A's camera", T, |s| s.playing(&a.id, 10) == 1)
            .await
            .unwrap();
        for round in 0..8 {
            let share = a.add_video_track(json!({"type": "screensharing", "active": true}));
            // The share's encoder has produced its first frame: the source is streaming into
            // webrtcbin while the negotiation round is (most likely) still under way. Polled
            // without a pause so the removal lands before the answer.
            let deadline = std::time::Instant::now() + T;
            while !a.snapshot().sent_keyframes.contains_key(&share) {
                assert!(
                    std::time::Instant::now() < deadline,
                    "the share never encoded"
                );
                tokio::task::yield_now().await;
            }
            let answers = a.snapshot().answers;
            a.remove_track(&share);
            println!("round {round}: share removed after {answers} answers");
            let before = b.snapshot().tracks.values().map(|t| t.frames).sum::<u64>();
            b.wait_until(&format!("A's camera after removal {round}"), T, |s| {
                s.tracks.values().map(|t| t.frames).sum::<u64>() >= before + 15
            })
            .await
            .unwrap();
        }
        tokio::time::timeout(Duration::from_secs(10), a.leave())
            .await
            .expect("A leaves without hanging");
        b.leave().await;
        server.stop().await;
    })
    .await
    .expect("no hang");
}
