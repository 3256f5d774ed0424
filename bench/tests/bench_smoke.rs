//! Smoke test of the load generator: `lamina-bench --quick` against the `lamina` binary built
//! next to it must make media flow on every stream and write every output. No speed
//! thresholds: figures depend on the machine.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

#[test]
fn quick_benchmark_moves_media_and_writes_figures() {
    let bench = PathBuf::from(env!("CARGO_BIN_EXE_lamina-bench"));
    let lamina = bench.with_file_name("lamina");
    assert!(
        lamina.exists(),
        "{} is missing: build the workspace (cargo build --workspace) first",
        lamina.display()
    );
    let tmp = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let out = tmp.join("bench-smoke");
    let _ = std::fs::remove_dir_all(&out);
    let started = Instant::now();
    let output = Command::new(&bench)
        .arg("--quick")
        .arg("--out")
        .arg(&out)
        .arg("--media-dir")
        .arg(tmp.join("bench-media"))
        .arg("--lamina-bin")
        .arg(&lamina)
        .output()
        .expect("lamina-bench runs");
    let took = started.elapsed();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "lamina-bench failed\n{stdout}\n{stderr}"
    );
    assert!(took < Duration::from_secs(90), "quick mode took {took:?}");
    assert!(
        stdout.contains("| room3 | lamina |"),
        "no table row:\n{stdout}"
    );

    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("results.json")).expect("results.json"))
            .expect("results.json is JSON");
    let r = &json["results"][0];
    let f = |k: &str| {
        r[k].as_f64()
            .unwrap_or_else(|| panic!("{k} missing in {r}"))
    };
    assert!(f("streams_expected") >= 12.0, "{r}");
    assert_eq!(
        f("streams_flowing"),
        f("streams_expected"),
        "every stream flowed: {r}"
    );
    assert!(f("pkts_per_s") > 0.0 && f("kbps") > 0.0, "{r}");
    assert!(f("server_cpu_s") > 0.0 && f("pkts_per_cpu_s") > 0.0, "{r}");
    assert!(f("peak_rss_mib") > 0.0 && f("threads") > 0.0, "{r}");
    assert!(f("delay_samples") > 0.0, "delay was measured: {r}");
    assert!(
        f("first_frame_samples") > 0.0,
        "a late joiner got a frame: {r}"
    );

    let csv = std::fs::read_to_string(out.join("results.csv")).expect("results.csv");
    assert!(
        csv.lines().count() >= 2 && csv.starts_with("server,scenario"),
        "{csv}"
    );
    let png = std::fs::read(out.join("chart.png")).expect("chart.png");
    assert!(
        png.len() > 1000 && png.starts_with(b"\x89PNG"),
        "chart.png is a PNG"
    );
}
