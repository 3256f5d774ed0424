//! The browser-shaped path in a few seconds: `lamina-bench --quick --relay` (Lamina only, a
//! room of 3 relay-only participants) against the `lamina` binary built next to it. Every
//! participant must have allocated a relay on the embedded TURN server (its `/metrics` gauge
//! `lamina_turn_allocations`), connected through it (its only candidate is the relayed one)
//! and media must have flowed on every stream, through the relays. No speed thresholds.

mod support;

use support::run_bench;

#[test]
fn relay_only_participants_move_media_through_the_embedded_turn_server() {
    let run = run_bench(
        "bench-turn",
        &[
            "--quick",
            "--relay",
            "--measure-s",
            "3",
            "--late-joins",
            "0",
        ],
    );
    let stdout = &run.stdout;
    assert!(
        stdout.contains("| room3-turn | lamina |"),
        "no table row:\n{stdout}"
    );
    assert!(
        stdout.contains("The browser-shaped path"),
        "no TURN table:\n{stdout}"
    );

    let json = run.results();
    let r = &json["results"][0];
    let f = |k: &str| {
        r[k].as_f64()
            .unwrap_or_else(|| panic!("{k} missing in {r}"))
    };
    assert_eq!(r["relay"], serde_json::json!(true), "{r}");
    assert_eq!(r["scenario"], serde_json::json!("room3-turn"), "{r}");
    assert_eq!(f("relayed_peers"), 3.0, "every participant relayed: {r}");
    assert!(
        f("turn_allocations") >= 3.0,
        "the server's TURN allocations: {r}"
    );
    assert!(f("streams_expected") >= 12.0, "{r}");
    assert_eq!(
        f("streams_flowing"),
        f("streams_expected"),
        "every stream flowed: {r}"
    );
    assert!(f("pkts_per_s") > 0.0 && f("pkts_per_cpu_s") > 0.0, "{r}");
    // Everything the participants receive comes through their relays: at least the forwarded
    // media (RTCP and STUN come on top).
    assert!(
        f("relay_rx_per_s") >= 0.9 * f("pkts_per_s"),
        "media came through the relays: {r}"
    );
}
