//! `lamina publish`: the built binary joins a room through the protocol and publishes
//! gst-launch fragments; a participant in the room decodes them; SIGINT makes it leave.

mod support;
mod tools;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use lamina_client::{Participant, ParticipantConfig};
use tools::{serial, url, MEDIA_TIMEOUT};

const VIDEO: &str = "videotestsrc is-live=true pattern=ball ! video/x-raw,width=320,height=240,framerate=15/1 ! vp8enc deadline=1 ! rtpvp8pay";
const AUDIO: &str = "audiotestsrc is-live=true ! opusenc ! rtpopuspay";

/// Kills the child on drop (a failed assertion must not leave it running).
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn signal(child: &std::process::Child, sig: &str) {
    let status = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(child.id().to_string())
        .status()
        .expect("run kill(1)");
    assert!(status.success());
}

/// Waits (polling, bounded) for the child to exit; returns its status.
async fn exited(child: &mut Child, timeout: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.0.try_wait().expect("try_wait") {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "lamina publish did not exit in {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_subcommand_streams_into_a_room_and_leaves_on_sigint() {
    let _serial = serial().await;
    let server = support::spawn_server(|_| {}).await;
    let viewer = Participant::join(ParticipantConfig {
        url: url(&server),
        room: "pub".into(),
        name: "viewer".into(),
        audio: false,
        video: false,
        receive: true,
    })
    .await
    .expect("viewer joins");

    let mut child = Child(
        Command::new(env!("CARGO_BIN_EXE_lamina"))
            .args([
                "publish",
                "--url",
                &url(&server),
                "--room",
                "pub",
                "--name",
                "gst-camera",
            ])
            .args(["--video", VIDEO, "--audio", AUDIO])
            .env("LAMINA_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start lamina publish"),
    );

    let s = viewer
        .wait_until(
            "the publisher's video and audio decoded",
            MEDIA_TIMEOUT,
            |s| {
                let Some((id, _)) = s
                    .endpoints
                    .iter()
                    .find(|(_, m)| m["displayName"] == "gst-camera")
                else {
                    return false;
                };
                s.playing(id, 10) == 2
            },
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let publisher = s
        .endpoints
        .iter()
        .find(|(_, m)| m["displayName"] == "gst-camera")
        .map(|(id, _)| id.clone())
        .unwrap();
    let kinds: Vec<&str> = s
        .tracks
        .values()
        .filter(|t| t.endpoint == publisher)
        .filter_map(|t| t.metadata["type"].as_str())
        .collect();
    assert!(
        kinds.contains(&"camera") && kinds.contains(&"audio"),
        "{kinds:?}"
    );
    assert!(
        child.0.try_wait().expect("try_wait").is_none(),
        "publisher still runs"
    );

    // Ctrl-C: the publisher leaves the room and exits cleanly.
    signal(&child.0, "INT");
    viewer
        .wait_until("the publisher left", MEDIA_TIMEOUT, |s| {
            !s.endpoints.contains_key(&publisher)
                && s.tracks.values().all(|t| t.endpoint != publisher)
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let status = exited(&mut child, Duration::from_secs(10)).await;
    assert!(status.success(), "lamina publish exit status {status:?}");

    viewer.leave().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_refuses_a_fragment_without_payloader() {
    let _serial = serial().await;
    let output = Command::new(env!("CARGO_BIN_EXE_lamina"))
        .args([
            "publish",
            "--url",
            "ws://127.0.0.1:9/socket/websocket",
            "--room",
            "r",
        ])
        .args(["--video", "videotestsrc ! vp8enc"])
        .output()
        .expect("run lamina publish");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("RTP payloader"), "{stderr}");
}
