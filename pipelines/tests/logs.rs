//! Every log line written on a room's media thread and bus thread carries the room's name as a
//! field (JSON logs: in the `spans` list), and lines about one peer carry the peer.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lamina_pipelines::{Fault, MediaCommand, MediaEvent, PeerId, PipelineConfig, RoomPipeline};

/// Collects the JSON log lines.
#[derive(Clone, Default)]
struct Lines(Arc<Mutex<Vec<u8>>>);

impl Write for Lines {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn media_and_bus_thread_lines_carry_the_room() {
    let lines = Lines::default();
    let writer = lines.clone();
    tracing_subscriber::fmt()
        .json()
        .with_thread_names(true)
        .with_env_filter("lamina_pipelines=debug")
        .with_writer(move || writer.clone())
        .init();
    gst::init().unwrap();
    gstlamina::plugin_register_static().unwrap();
    let (mut room, mut events) = RoomPipeline::new(PipelineConfig {
        name: "kitchen".into(),
        ice_addresses: vec!["127.0.0.1".parse().unwrap()],
        ice_port_range: (0, 0),
        latency_ms: 30,
        downlink_estimation: true,
    })
    .unwrap();
    let alice = PeerId::new("alice");
    room.execute(MediaCommand::AddPeer(alice.clone())).unwrap();
    // An element error inside alice's bin: the bus thread reports it, the media thread removes
    // her (both log).
    let deadline = Instant::now() + Duration::from_secs(10);
    // The peer's bin appears once the media thread has run the command.
    while room.inject_fault(&Fault::Peer(alice.clone())).is_err() {
        assert!(Instant::now() < deadline, "alice's bin never appeared");
        std::thread::sleep(Duration::from_millis(10));
    }
    let failed = loop {
        match events.try_recv() {
            Ok(MediaEvent::PeerFailed { peer, .. }) => break peer == alice,
            Ok(_) => {}
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Err(_) => break false,
        }
    };
    assert!(failed, "no PeerFailed for the injected fault");
    let rx = room.shutdown();
    let _ = rx.blocking_recv();

    let text = String::from_utf8(lines.0.lock().unwrap().clone()).unwrap();
    let mut seen = (0, 0);
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line).expect("a JSON log line");
        let thread = v["threadName"].as_str().unwrap_or_default();
        let (media, bus) = (thread.starts_with("media-"), thread.starts_with("bus-"));
        if !media && !bus {
            continue;
        }
        let spans = v["spans"].as_array().cloned().unwrap_or_default();
        assert!(
            spans.iter().any(|s| s["room"] == "kitchen"),
            "line without the room: {line}"
        );
        let message = v["fields"]["message"].as_str().unwrap_or_default();
        if message == "pipeline error" || message == "peer removed" {
            assert_eq!(
                v["fields"]["peer"], "alice",
                "line without the peer: {line}"
            );
        }
        seen.0 += usize::from(media);
        seen.1 += usize::from(bus);
    }
    assert!(
        seen.0 > 0 && seen.1 > 0,
        "media and bus lines expected, saw {seen:?}:\n{text}"
    );
}
