//! Simulcast through the load generator in a few seconds: `lamina-bench` runs `room3-sim-mixed`
//! (Lamina only, a room of 3 whose publishers each send the three layers l/m/h with the RID
//! extension and no layer SSRCs, like Chrome; the middle participant asks for `l` of every
//! remote camera) against the `lamina` binary built next to it. Every stream must flow, every
//! layer must have been sent, the `l` receiver must have got `l` (told by `encodingSwitched`)
//! and the others `h`, the server's default. No speed thresholds.

mod support;

use support::run_bench;

#[test]
fn simulcast_publishers_and_a_low_layer_receiver() {
    let run = run_bench(
        "bench-simulcast",
        &[
            "--servers",
            "lamina",
            "--scenarios",
            "room3-sim-mixed",
            "--repeats",
            "1",
            "--measure-s",
            "3",
            "--warmup-s",
            "1",
            "--late-joins",
            "0",
        ],
    );
    let stdout = &run.stdout;
    assert!(
        stdout.contains("| room3-sim-mixed | lamina |") && stdout.contains("Simulcast:"),
        "no table rows:\n{stdout}"
    );

    let json = run.results();
    let r = &json["results"][0];
    let f = |k: &str| {
        r[k].as_f64()
            .unwrap_or_else(|| panic!("{k} missing in {r}"))
    };
    assert_eq!(r["simulcast"], serde_json::json!(true), "{r}");
    assert_eq!(f("low_receivers"), 1.0, "{r}");
    assert_eq!(f("streams_expected"), 12.0, "{r}");
    assert_eq!(
        f("streams_flowing"),
        f("streams_expected"),
        "every stream flowed: {r}"
    );
    for layer in ["l", "m", "h"] {
        assert!(
            f(&format!("tx_{layer}_pkts_per_s")) > 0.0,
            "{layer} sent: {r}"
        );
    }
    assert!(
        f("tx_l_pkts_per_s") < f("tx_m_pkts_per_s") && f("tx_m_pkts_per_s") < f("tx_h_pkts_per_s"),
        "layers at rising packet rates: {r}"
    );
    assert!(f("rx_l_pkts_per_s") > 0.0, "the l receiver got l: {r}");
    assert!(f("rx_h_pkts_per_s") > 0.0, "the others got h: {r}");
    assert!(f("pkts_per_cpu_s") > 0.0, "{r}");
    let switches = r["layer_switches"].as_str().unwrap_or_default();
    assert!(
        switches.contains("l other"),
        "encodingSwitched to l for the wish: {r}"
    );
}
