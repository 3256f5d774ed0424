//! Hostile peer behaviour (vanishing mid-negotiation, publishing then vanishing, closing its
//! DTLS connection but staying, not reading, churning, bad TURN credentials), through real
//! WebSockets against a real server. The two
//! healthy participants of the room keep decoding each other, and the server still serves
//! newcomers.

#[path = "support/hostile.rs"]
mod hostile;
mod support;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use gst::prelude::*;
use hostile::{
    offer_sdp, participant, recvonly, wait_decoding, HostileRoom, Offender, M, MEDIA_TIMEOUT, ROOM,
};
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

/// Waits until neither A nor B lists `id` (nor any track of it).
async fn gone_for_everyone(room: &HostileRoom, id: &str) {
    for p in [&room.a, &room.b] {
        p.wait_until("offender gone", MEDIA_TIMEOUT, |s| {
            !s.endpoints.contains_key(id) && s.tracks.values().all(|t| t.endpoint != id)
        })
        .await
        .unwrap_or_else(|e| panic!("{}: {e}", p.id));
    }
}

/// Waits until both A and B list `id`.
async fn known_to_everyone(room: &HostileRoom, id: &str) {
    for p in [&room.a, &room.b] {
        p.wait_until("offender listed", MEDIA_TIMEOUT, |s| {
            s.endpoints.contains_key(id)
        })
        .await
        .unwrap_or_else(|e| panic!("{}: {e}", p.id));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vanishes_between_offer_data_and_sdp_offer() {
    let room = HostileRoom::start(|_| {}).await;
    let mut o = room.connected_offender().await;
    let id = o.id.clone();
    o.offer_data().await;
    known_to_everyone(&room, &id).await;
    // Gone without a close frame, right after offerData.
    drop(o);
    gone_for_everyone(&room, &id).await;
    room.assert_healthy().await;
    room.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vanishes_right_after_sdp_offer() {
    let room = HostileRoom::start(|_| {}).await;
    let mut o = room.connected_offender().await;
    let id = o.id.clone();
    let (a, v) = o.offer_data().await;
    let mut mlines = recvonly(a, v);
    mlines.push(M {
        kind: "video",
        dir: "sendonly",
    });
    let mids = json!({(a + v).to_string(): format!("{id}:v")});
    o.send_offer(&offer_sdp(&mlines), mids).await;
    // The room is answering (media thread busy with this peer) when the socket goes.
    o.client.close().await;
    gone_for_everyone(&room, &id).await;
    room.assert_healthy().await;
    room.finish().await;
}

/// C publishes to A and B, then closes its DTLS connection (close_notify, what a browser's
/// `close()` sends) without leaving. The server's dtlsdec for C returns EOS and C's nicesrc
/// pushes an EOS event; it must not reach A's and B's send paths through C's forwarders (their
/// bundle `rtpfunnel` would end them): A and B keep decoding each other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closes_its_dtls_connection_and_stays() {
    let room = HostileRoom::start(|_| {}).await;
    let c = participant(&room.server, ROOM, "C").await;
    tokio::join!(
        wait_decoding(&room.a, &c.id, 5),
        wait_decoding(&room.b, &c.id, 5)
    );
    let webrtc = c.webrtcbin();
    let dtlsenc = webrtc
        .downcast_ref::<gst::Bin>()
        .expect("webrtcbin is a bin")
        .iterate_all_by_element_factory_name("dtlsenc")
        .next()
        .expect("iterates")
        .expect("C's webrtcbin has a dtlsenc");
    // dtlsenc sends close_notify when EOS reaches its sink pad.
    let sink = dtlsenc.static_pad("sink").unwrap();
    tokio::task::spawn_blocking(move || sink.send_event(gst::event::Eos::new()))
        .await
        .unwrap();
    room.assert_healthy().await;
    c.leave().await;
    room.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishes_then_vanishes() {
    let room = HostileRoom::start(|_| {}).await;
    let mut o = room.connected_offender().await;
    let id = o.id.clone();
    let (a, v) = o.offer_data().await;
    let mut mlines = recvonly(a, v);
    mlines.push(M {
        kind: "audio",
        dir: "sendonly",
    });
    mlines.push(M {
        kind: "video",
        dir: "sendonly",
    });
    let mids = json!({
        (a + v).to_string(): format!("{id}:a"),
        (a + v + 1).to_string(): format!("{id}:v"),
    });
    o.send_offer(&offer_sdp(&mlines), mids).await;
    o.wait_media("sdpAnswer").await;
    // Its (never flowing) tracks are announced: A and B renegotiate to receive them…
    for p in [&room.a, &room.b] {
        p.wait_until("offender's tracks mapped", MEDIA_TIMEOUT, |s| {
            s.tracks
                .values()
                .filter(|t| t.endpoint == id && t.mid.is_some())
                .count()
                == 2
        })
        .await
        .unwrap();
    }
    // …then it vanishes: they renegotiate again and keep decoding each other throughout.
    drop(o);
    gone_for_everyone(&room, &id).await;
    room.assert_healthy().await;
    room.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_that_stops_reading() {
    let room = HostileRoom::start(|c| {
        c.outbound_queue = 64;
    })
    .await;
    let mut o = room.connected_offender().await;
    let id = o.id.clone();
    known_to_everyone(&room, &id).await;
    // Heartbeat replies echo a 60 kB ref: the socket buffers fill, then the bounded queue.
    let pad = "r".repeat(60_000);
    for i in 0..300 {
        let frame = json!([null, format!("{i}{pad}"), "phoenix", "heartbeat", {}]).to_string();
        if o.client.send_message(Message::Text(frame)).await.is_err() {
            break;
        }
    }
    // Reading now finds the connection ended by the server (not 300 replies).
    o.client.ended().await;
    gone_for_everyone(&room, &id).await;
    room.assert_healthy().await;
    room.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_join_on_the_same_topic() {
    let room = HostileRoom::start(|_| {}).await;
    let mut o = room.connected_offender().await;
    let old_id = o.id.clone();
    known_to_everyone(&room, &old_id).await;
    let topic = o.topic.clone();
    let old_ref = o.join_ref.clone();
    let new_ref = o.client.send_join(&topic).await;
    let close = o
        .client
        .next_frame_where(|f| f.event == "phx_close" && f.join_ref.as_deref() == Some(&old_ref))
        .await;
    assert_eq!(close.topic, topic);
    assert_eq!(o.client.reply(&new_ref).await.status(), "ok");
    o.join_ref = new_ref;
    gone_for_everyone(&room, &old_id).await;
    o.connect("Mallory again").await;
    assert_ne!(o.id, old_id);
    known_to_everyone(&room, &o.id.clone()).await;
    room.assert_healthy().await;
    room.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn join_leave_churn() {
    let room = HostileRoom::start(|_| {}).await;
    let mut last = String::new();
    for i in 0..15 {
        let mut o = Offender::join(room.addr(), ROOM).await;
        o.connect(&format!("churn-{i}")).await;
        last = o.id.clone();
        if i % 2 == 0 {
            let r = o.push("phx_leave", json!({})).await;
            assert_eq!(o.client.reply(&r).await.status(), "ok");
        } else {
            drop(o);
        }
    }
    gone_for_everyone(&room, &last).await;
    for p in [&room.a, &room.b] {
        p.wait_until("only each other left", MEDIA_TIMEOUT, |s| {
            s.endpoints.len() == 1
        })
        .await
        .unwrap();
    }
    room.assert_healthy().await;
    room.finish().await;
}

/// A `turn` crate client (the role a browser plays) for the server's TURN address.
async fn turn_client(
    server: &lamina::server::Server,
    user: &str,
    pass: &str,
) -> turn::client::Client {
    let conn = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = server.turn_addr.to_string();
    let client = turn::client::Client::new(turn::client::ClientConfig {
        stun_serv_addr: addr.clone(),
        turn_serv_addr: addr,
        username: user.into(),
        password: pass.into(),
        realm: String::new(),
        software: String::new(),
        rto_in_ms: 0,
        conn: Arc::new(conn),
        vnet: None,
    })
    .await
    .unwrap();
    client.listen().await.unwrap();
    client
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn turn_allocation_with_wrong_credentials() {
    const SECRET: &str = "hostile-turn-secret";
    let room =
        HostileRoom::start(|c| c.turn_secret = Some(lamina::config::Secret::new(SECRET))).await;
    let good = lamina::turn::rest_credentials(
        SECRET,
        "mallory",
        Duration::from_secs(600),
        SystemTime::now(),
    );
    let expired = lamina::turn::rest_credentials(
        SECRET,
        "mallory",
        Duration::ZERO,
        SystemTime::now() - Duration::from_secs(3600),
    );
    for (user, pass) in [
        (good.username.as_str(), "wrong password"),
        (expired.username.as_str(), expired.password.as_str()),
        ("not-a-rest-username", good.password.as_str()),
        ("", ""),
    ] {
        let client = turn_client(&room.server, user, pass).await;
        let res = tokio::time::timeout(Duration::from_secs(5), client.allocate())
            .await
            .expect("TURN answers in time");
        assert!(res.is_err(), "allocation as {user:?} succeeded");
        client.close().await.unwrap();
    }
    // The TURN server still allocates for correct credentials…
    let client = turn_client(&room.server, &good.username, &good.password).await;
    let relay = tokio::time::timeout(Duration::from_secs(5), client.allocate())
        .await
        .expect("TURN answers in time")
        .expect("allocation with correct credentials");
    assert!(webrtc_util::Conn::local_addr(&relay).is_ok());
    client.close().await.unwrap();
    // …and the room (host candidates, not TURN) is unharmed.
    room.assert_healthy().await;
    room.finish().await;
}
