//! `laminaforwarder` through `gst-launch-1.0`: one pipeline run against the `libgstlamina.so`
//! built by this `cargo test` run.

use std::process::Command;

mod support;

use support::plugin_library;

#[test]
fn gst_launch_forwards_through_the_plugin_to_eos() {
    // A private plugin dir and registry: only this build's plugin, no stale registry cache.
    let dir = std::env::temp_dir().join(format!("lamina-forwarder-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    std::fs::copy(plugin_library(), dir.join("libgstlamina.so")).expect("copy plugin");

    let pipeline = "videotestsrc num-buffers=60 ! vp8enc deadline=1 ! rtpvp8pay pt=96 ! \
         laminaforwarder name=f src_0::active=true src_0::pt=100 src_0::ssrc=1234 \
         f.src_0 ! queue ! rtpvp8depay ! vp8dec ! fakesink \
         f.src_1 ! queue ! fakesink async=false";
    let output = Command::new("timeout")
        .arg("120")
        .arg("gst-launch-1.0")
        .arg("-v")
        .args(pipeline.split_whitespace())
        .env("GST_PLUGIN_PATH", &dir)
        .env("GST_REGISTRY", dir.join("registry.bin"))
        .output()
        .expect("run timeout(1)");
    let _ = std::fs::remove_dir_all(&dir);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_ne!(
        output.status.code(),
        Some(127),
        "gst-launch-1.0 is missing: install gstreamer1.0-tools (scripts/setup.sh)"
    );
    assert!(
        output.status.success() && stdout.contains("Got EOS from element"),
        "gst-launch failed ({:?})\nstdout:\n{stdout}\nstderr:\n{stderr}",
        output.status
    );
    assert!(
        !stderr.contains("CRITICAL") && !stderr.contains("WARNING"),
        "no GLib criticals or warnings expected:\n{stderr}"
    );
    assert!(
        stdout.contains("GstLaminaForwarderPad:src_0: caps = application/x-rtp")
            && stdout.contains("payload=(int)100, ssrc=(uint)1234"),
        "rewritten caps on src_0 expected in:\n{stdout}"
    );
}
