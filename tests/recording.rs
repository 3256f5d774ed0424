//! Recording through the HTTP API: a synthetic call (two participants, audio and video) is
//! recorded for 5 s, with a third participant publishing while it runs and a one-track
//! recording alongside; then `gst-discoverer-1.0` checks each file's duration and stream, and a
//! `gst-launch-1.0` decodes each to EOS.

mod support;
mod tools;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use tools::{http, join, json, serial, wait_decoding, MEDIA_TIMEOUT};

/// Recorded time the test aims for.
const RECORD: Duration = Duration::from_secs(5);

/// `gst-discoverer-1.0` of a file: (duration, stdout).
fn discover(path: &Path) -> (Duration, String) {
    let output = Command::new("timeout")
        .args(["60", "gst-discoverer-1.0"])
        .arg(path)
        .output()
        .expect("run gst-discoverer-1.0");
    assert_ne!(
        output.status.code(),
        Some(127),
        "gst-discoverer-1.0 is missing: install gstreamer1.0-plugins-base-apps (scripts/setup.sh test)"
    );
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "discoverer failed on {}:\n{text}",
        path.display()
    );
    let duration = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Duration: "))
        .and_then(|d| {
            let mut parts = d.split(':');
            let h: f64 = parts.next()?.parse().ok()?;
            let m: f64 = parts.next()?.parse().ok()?;
            let s: f64 = parts.next()?.parse().ok()?;
            Some(Duration::from_secs_f64(h * 3600.0 + m * 60.0 + s))
        })
        .unwrap_or_else(|| panic!("no duration in:\n{text}"));
    (duration, text)
}

/// Decodes a recorded file to EOS with gst-launch.
fn decode(path: &Path, video: bool) {
    let decoder = if video { "vp8dec" } else { "opusdec" };
    let location = format!("location={}", path.display());
    let output = Command::new("timeout")
        .args(["60", "gst-launch-1.0", "filesrc"])
        .arg(&location)
        .args(["!", "matroskademux", "!", decoder, "!", "fakesink"])
        .output()
        .expect("run gst-launch-1.0");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("Got EOS from element"),
        "{} does not decode:\n{stdout}\n{}",
        path.display(),
        String::from_utf8_lossy(&output.stderr)
    );
}

async fn recordings(addr: std::net::SocketAddr) -> Vec<Value> {
    let (status, body) = http(addr, "GET", "/rooms/rec/recordings", None).await;
    assert_eq!(status, 200, "{body}");
    json(&body).as_array().cloned().expect("array")
}

fn ms(v: &Value) -> Duration {
    Duration::from_millis(v.as_u64().unwrap_or_else(|| panic!("not a number: {v}")))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_recorded_over_http_gives_playable_files_in_sync() {
    let _serial = serial().await;
    let dir = std::env::temp_dir().join(format!("lamina-rec-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let recordings_dir = dir.clone();
    let server = support::spawn_server(move |c| {
        c.recording_api = true;
        c.recordings_dir = recordings_dir;
    })
    .await;
    let a = join(&server, "rec", "A", true, true).await;
    let b = join(&server, "rec", "B", true, true).await;
    wait_decoding(&a, &b.id, 2, 5).await;
    let sb = wait_decoding(&b, &a.id, 2, 5).await;
    let a_video = sb
        .tracks
        .iter()
        .find(|(_, t)| t.endpoint == a.id && t.metadata["type"] == "camera")
        .map(|(id, _)| id.clone())
        .expect("A's camera track");

    // Everything in the room, and A's camera alone.
    let (status, body) = http(server.addr, "POST", "/rooms/rec/recordings", None).await;
    assert_eq!(status, 201, "{body}");
    let all = json(&body);
    assert_eq!(all["running"], true);
    assert_eq!(all["files"].as_array().unwrap().len(), 4, "{all}");
    let one_body = format!("{{\"track\": \"{a_video}\"}}");
    let (status, body) = http(
        server.addr,
        "POST",
        "/rooms/rec/recordings",
        Some(&one_body),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let one = json(&body);
    assert_eq!(one["files"].as_array().unwrap().len(), 1);
    let (status, _) = http(
        server.addr,
        "POST",
        "/rooms/rec/recordings",
        Some("{\"track\": \"nope\"}"),
    )
    .await;
    assert_eq!(status, 404);

    // A track published while the recording runs (after 1.5 s) joins it.
    let all_id = all["id"].clone();
    assert!(
        support::wait_until(
            || async {
                let list = recordings(server.addr).await;
                let r = list.iter().find(|r| r["id"] == all_id).expect("listed");
                ms(&r["duration_ms"]) >= Duration::from_millis(1500)
            },
            MEDIA_TIMEOUT,
        )
        .await
    );
    let c = join(&server, "rec", "C", false, true).await;
    wait_decoding(&a, &c.id, 1, 5).await;

    // Wait until 5 s are recorded, with progress growing.
    let last_bytes = std::sync::atomic::AtomicU64::new(0);
    assert!(
        support::wait_until(
            || async {
                let list = recordings(server.addr).await;
                let r = list.iter().find(|r| r["id"] == all_id).expect("listed");
                last_bytes.store(
                    r["bytes"].as_u64().unwrap(),
                    std::sync::atomic::Ordering::Relaxed,
                );
                ms(&r["duration_ms"]) >= RECORD
            },
            RECORD + MEDIA_TIMEOUT,
        )
        .await
    );
    let last_bytes = last_bytes.into_inner();
    assert!(
        last_bytes > 10_000,
        "files grow while recording: {last_bytes} bytes"
    );

    let path = format!("/rooms/rec/recordings/{}", one["id"].as_str().unwrap());
    let (status, body) = http(server.addr, "DELETE", &path, None).await;
    assert_eq!(status, 200, "{body}");
    let (status, again) = http(server.addr, "DELETE", &path, None).await;
    assert_eq!(
        status, 200,
        "stopping twice answers the final state again: {again}"
    );
    let (status, _) = http(server.addr, "DELETE", "/rooms/rec/recordings/nope", None).await;
    assert_eq!(status, 404);
    let (status, body) = http(server.addr, "DELETE", "/rooms/rec/recordings", None).await;
    assert_eq!(status, 200, "{body}");
    let stopped = json(&body);
    let stopped = stopped.as_array().unwrap();
    assert_eq!(
        stopped.len(),
        1,
        "only the room recording was still running: {body}"
    );
    let rec = &stopped[0];
    assert_eq!(rec["running"], false);
    let recorded = ms(&rec["duration_ms"]);
    let files = rec["files"].as_array().unwrap();
    assert_eq!(
        files.len(),
        5,
        "A, B (audio+video) and C's later video: {rec}"
    );
    println!(
        "[metric] recorded_ms={} files={}",
        recorded.as_millis(),
        files.len()
    );

    let c_prefix = format!("{}:", c.id);
    let is_late = |f: &Value| f["track"].as_str().unwrap().starts_with(&c_prefix);
    // The recording's time base: its first frame (audio flows from the first moment).
    let first = files.iter().map(|f| ms(&f["start_ms"])).min().unwrap();
    let last_end = files.iter().map(|f| ms(&f["end_ms"])).max().unwrap();
    let secs = |d: Duration| d.as_secs_f64();
    for f in files {
        assert_eq!(f["finished"], true, "{f}");
        assert!(f["error"].is_null(), "{f}");
        let path = Path::new(f["path"].as_str().unwrap());
        assert!(path.starts_with(&dir), "{}", path.display());
        let video = f["kind"] == "video";
        let (discovered, text) = discover(path);
        let (start, end) = (ms(&f["start_ms"]), ms(&f["end_ms"]));
        println!(
            "[metric] file kind={} late={} offset_ms={} discovered_ms={} bytes={}",
            f["kind"],
            is_late(f),
            (start - first).as_millis(),
            discovered.as_millis(),
            f["bytes"]
        );
        // The file holds what went in: its duration is the span of its frames (within 10 %).
        let span = end - start;
        assert!(
            secs(discovered.abs_diff(span)) <= secs(span) * 0.10,
            "{}: {discovered:?} discovered vs {span:?} written",
            path.display()
        );
        // Every file ends at the stop, on the common time base.
        assert!(last_end - end < Duration::from_millis(500), "{f}");
        if is_late(f) {
            // Published a while after the start: the file starts at its offset in the recording.
            assert!(start - first > Duration::from_secs(1), "{f}");
        } else if video {
            // The call's video starts at the first keyframe asked for at the start, and spans
            // the rest of the recording (within 10 %).
            let wait = start - first;
            assert!(
                wait < Duration::from_millis(1500),
                "keyframe after {wait:?}: {f}"
            );
            assert!(
                secs((discovered + wait).abs_diff(recorded)) <= secs(recorded) * 0.10,
                "{}: {discovered:?} + {wait:?} vs {recorded:?} recorded",
                path.display()
            );
        } else {
            // The call's audio starts when the recording starts (0 = its start)...
            assert!(start < Duration::from_millis(500), "{f}");
            // ...and spans the recorded time (within 10 %).
            assert!(
                secs(discovered.abs_diff(recorded)) <= secs(recorded) * 0.10,
                "{}: {discovered:?} discovered vs {recorded:?} recorded",
                path.display()
            );
        }
        let stream = if video { "video #" } else { "audio #" };
        let codec = if video { ": VP8" } else { ": Opus" };
        assert!(
            text.lines()
                .any(|l| l.contains(stream) && l.contains(codec)),
            "{} should hold {stream}{codec}:\n{text}",
            path.display()
        );
        decode(path, video);
    }
    // The one-track recording wrote one decodable VP8 file.
    let list = recordings(server.addr).await;
    let one = list
        .iter()
        .find(|r| r["id"] == one["id"])
        .expect("listed after stop");
    let one_file = Path::new(one["files"][0]["path"].as_str().unwrap());
    assert!(discover(one_file).1.contains("VP8"));
    decode(one_file, true);

    for p in [a, b, c] {
        p.leave().await;
    }
    server.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_are_finalized_when_the_publisher_leaves_and_the_room_closes() {
    let _serial = serial().await;
    let dir = std::env::temp_dir().join(format!("lamina-rec-close-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let recordings_dir = dir.clone();
    let server = support::spawn_server(move |c| {
        c.debug_endpoints = true;
        c.recordings_dir = recordings_dir;
    })
    .await;
    let a = join(&server, "rec", "A", true, true).await;
    let b = join(&server, "rec", "B", false, false).await;
    wait_decoding(&b, &a.id, 2, 5).await;
    let (status, body) = http(server.addr, "POST", "/rooms/rec/recordings", None).await;
    assert_eq!(status, 201, "{body}");
    let rec = json(&body);
    let id = rec["id"].clone();
    let progress = |min_video_frames: u64| {
        let id = id.clone();
        let addr = server.addr;
        async move {
            let list = recordings(addr).await;
            let r = list.iter().find(|r| r["id"] == id).expect("listed").clone();
            r["files"]
                .as_array()
                .unwrap()
                .iter()
                .all(|f| f["frames"].as_u64().unwrap() >= min_video_frames)
                && ms(&r["duration_ms"]) >= Duration::from_secs(2)
        }
    };
    assert!(support::wait_until(|| progress(10), MEDIA_TIMEOUT).await);
    let files: Vec<std::path::PathBuf> = recordings(server.addr)
        .await
        .iter()
        .find(|r| r["id"] == id)
        .unwrap()["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap().into())
        .collect();
    assert_eq!(files.len(), 2);
    // The publisher leaves (its tracks end their files), then the room closes.
    a.leave().await;
    b.leave().await;
    assert!(
        support::wait_until(
            || async {
                server
                    .rooms
                    .get(&lamina::room::RoomId("rec".into()))
                    .is_none()
            },
            MEDIA_TIMEOUT
        )
        .await,
        "the empty room closes"
    );
    for path in &files {
        let video = path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("video-");
        let (duration, _) = discover(path);
        assert!(
            duration >= Duration::from_secs(1),
            "{}: {duration:?}",
            path.display()
        );
        decode(path, video);
    }
    server.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}
