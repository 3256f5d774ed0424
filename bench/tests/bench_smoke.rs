//! Smoke test of the load generator: `lamina-bench --quick` against the `lamina` binary built
//! next to it must make media flow on every stream and write every output. No speed
//! thresholds: figures depend on the machine.

mod support;

use support::run_bench;

#[test]
fn quick_benchmark_moves_media_and_writes_figures() {
    let run = run_bench("bench-smoke", &["--quick"]);
    let (out, stdout) = (&run.out, &run.stdout);
    assert!(
        stdout.contains("| room3 | lamina |"),
        "no table row:\n{stdout}"
    );

    let json = run.results();
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
