//! `laminartx` from the GStreamer tools: the `gst-launch-1.0` line of its docs
//! (`elements/src/rtx/mod.rs`) runs to EOS, and `gst-inspect-1.0` describes it, both against the
//! `libgstlamina.so` built by this run.

mod support;

use support::run_with_plugin;

/// The ```text command line of elements/src/rtx/mod.rs's docs, continuation lines joined.
fn documented_command() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/src/rtx/mod.rs");
    let source = std::fs::read_to_string(path).expect("read mod.rs");
    let doc: Vec<&str> = source
        .lines()
        .filter_map(|l| l.strip_prefix("//!"))
        .map(|l| l.strip_prefix(' ').unwrap_or(l))
        .collect();
    let start = doc
        .iter()
        .position(|l| *l == "```text")
        .expect("a ```text block in the docs of mod.rs");
    let len = doc[start + 1..]
        .iter()
        .position(|l| *l == "```")
        .expect("end of the ```text block");
    doc[start + 1..start + 1 + len]
        .iter()
        .map(|l| l.trim().trim_end_matches('\\').trim())
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn gst_launch_runs_the_documented_pipeline_to_eos() {
    let command = documented_command();
    // The doc sets GST_PLUGIN_PATH=target/debug; this run points it at its own build instead.
    let launch = command
        .split_once("gst-launch-1.0")
        .map(|(env, rest)| {
            assert!(
                env.split_whitespace()
                    .all(|w| w.starts_with("GST_PLUGIN_PATH=")),
                "unexpected prefix {env:?} in {command}"
            );
            format!("gst-launch-1.0{rest}")
        })
        .unwrap_or_else(|| panic!("no gst-launch-1.0 in {command}"));
    assert!(launch.contains("laminartx "), "{launch}");
    // Through sh, so that the doc's quoting is read as a shell would.
    let (ok, stdout, stderr) = run_with_plugin("launch", "sh", &["-c", &launch]);
    assert!(
        ok && stdout.contains("Got EOS from element"),
        "{launch}\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(
        !stderr.contains("CRITICAL") && !stderr.contains("WARNING"),
        "no GLib criticals or warnings expected:\n{stderr}"
    );
}

#[test]
fn gst_inspect_describes_the_element() {
    let (ok, stdout, stderr) = run_with_plugin("inspect", "gst-inspect-1.0", &["laminartx"]);
    assert!(
        ok,
        "gst-inspect failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    for expected in [
        "GstLaminaRtx",
        "lamina",
        "ssrc-map",
        "payload-type-map",
        "max-requests-per-sec",
        "loss-window",
        "loss-fraction",
        "stats",
        "application/x-rtp",
    ] {
        assert!(
            stdout.contains(expected),
            "{expected} missing in:\n{stdout}"
        );
    }
}
