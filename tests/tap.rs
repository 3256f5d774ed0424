//! Taps under `/debug`: a live track's RTP sent to a UDP port on 127.0.0.1 reaches a local
//! GStreamer pipeline (`udpsrc ! rtpvp8depay ! vp8dec`) that decodes it, with the caps the
//! tap announced; removing the tap stops the flow.

mod support;
mod tools;

use gst::prelude::*;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tools::{http, join, json, serial, wait_decoding, MEDIA_TIMEOUT};

/// A receiving pipeline on a free UDP port of 127.0.0.1, built from the tap's caps; counts
/// RTP packets and decoded frames.
struct Receiver {
    pipeline: gst::Pipeline,
    port: u16,
    packets: Arc<AtomicU64>,
    frames: Arc<AtomicU64>,
}

impl Receiver {
    fn new(caps: &str) -> Receiver {
        gst::init().unwrap();
        let desc = format!(
            "udpsrc name=src address=127.0.0.1 port=0 caps=\"{caps}\" ! rtpjitterbuffer latency=50 \
             ! rtpvp8depay ! vp8dec ! fakesink name=sink sync=false async=false"
        );
        let pipeline = gst::parse::launch(&desc)
            .unwrap()
            .downcast::<gst::Pipeline>()
            .unwrap();
        let (packets, frames) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let src = pipeline.by_name("src").unwrap();
        let p = packets.clone();
        src.static_pad("src")
            .unwrap()
            .add_probe(gst::PadProbeType::BUFFER, move |_, info| {
                // Count RTP v2 packets with the tap's payload type (96) only.
                let rtp = info
                    .buffer()
                    .and_then(|b| b.map_readable().ok())
                    .is_some_and(|m| m.len() >= 12 && m[0] >> 6 == 2 && m[1] & 0x7f == 96);
                if rtp {
                    p.fetch_add(1, Ordering::Relaxed);
                }
                gst::PadProbeReturn::Ok
            });
        let f = frames.clone();
        let sink = pipeline.by_name("sink").unwrap();
        sink.static_pad("sink")
            .unwrap()
            .add_probe(gst::PadProbeType::BUFFER, move |_, _| {
                f.fetch_add(1, Ordering::Relaxed);
                gst::PadProbeReturn::Ok
            });
        pipeline.set_state(gst::State::Playing).unwrap();
        // The socket is bound once the pipeline runs: read the port the kernel picked.
        let port = src.property::<i32>("port") as u16;
        assert_ne!(port, 0, "udpsrc bound a port");
        Receiver {
            pipeline,
            port,
            packets,
            frames,
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}

async fn wait_for(what: &str, counter: &AtomicU64, min: u64) {
    assert!(
        support::wait_until(
            || async { counter.load(Ordering::Relaxed) >= min },
            MEDIA_TIMEOUT
        )
        .await,
        "timed out waiting for {min} {what} (got {})",
        counter.load(Ordering::Relaxed)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tapped_track_decodes_in_a_local_pipeline() {
    let _serial = serial().await;
    let server = support::spawn_server(|c| c.debug_endpoints = true).await;
    let a = join(&server, "tap", "A", true, true).await;
    let b = join(&server, "tap", "B", false, false).await;
    let s = wait_decoding(&b, &a.id, 2, 5).await;
    let video = s
        .tracks
        .iter()
        .find(|(_, t)| t.endpoint == a.id && t.metadata["type"] == "camera")
        .map(|(id, _)| id.clone())
        .unwrap();

    const CAPS: &str =
        "application/x-rtp,media=video,encoding-name=VP8,clock-rate=90000,payload=96";
    let rx = Receiver::new(CAPS);
    let path = format!("/debug/rooms/tap/tracks/{video}/tap?port={}", rx.port);
    let (status, body) = http(server.addr, "POST", &path, None).await;
    assert_eq!(status, 201, "{body}");
    let tap = json(&body);
    assert_eq!(
        tap["caps"], CAPS,
        "the tap announces the caps the receiver uses"
    );
    assert_eq!(tap["host"], "127.0.0.1");
    assert!(tap["receive"]
        .as_str()
        .unwrap()
        .contains(&format!("port={}", rx.port)));
    let (status, _) = http(server.addr, "POST", &path, None).await;
    assert_eq!(status, 409, "one tap per track and port");

    wait_for("decoded frames", &rx.frames, 20).await;
    wait_for("RTP packets with payload type 96", &rx.packets, 20).await;
    println!(
        "[metric] tap_packets={} tap_frames={}",
        rx.packets.load(Ordering::Relaxed),
        rx.frames.load(Ordering::Relaxed)
    );

    // Removing the tap stops the flow; the room goes on.
    let (status, body) = http(server.addr, "DELETE", &path, None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(json(&body).as_array().unwrap().len(), 1);
    let settle = rx.packets.load(Ordering::Relaxed);
    let frames_b = b.snapshot().total_frames();
    b.wait_until("the room keeps flowing", MEDIA_TIMEOUT, |s| {
        s.total_frames() > frames_b + 30
    })
    .await
    .unwrap();
    let after = rx.packets.load(Ordering::Relaxed);
    assert!(
        after - settle < 10,
        "packets after removal: {}",
        after - settle
    );
    let (status, _) = http(server.addr, "DELETE", &path, None).await;
    assert_eq!(status, 404);
    let (status, _) = http(
        server.addr,
        "POST",
        "/debug/rooms/tap/tracks/nope/tap?port=5004",
        None,
    )
    .await;
    assert_eq!(status, 404);
    let (status, _) = http(
        server.addr,
        "POST",
        &format!("/debug/rooms/tap/tracks/{video}/tap"),
        None,
    )
    .await;
    assert_eq!(status, 400, "a port is required");

    a.leave().await;
    b.leave().await;
    server.stop().await;
    drop(rx);
}
