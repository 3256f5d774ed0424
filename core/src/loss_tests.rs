//! `DownlinkLoss` through the room core: a subscriber losing a notable share of its video is
//! cut at once to what got through, the cut's own aftermath does not cut again, and the
//! estimate rules once the cut has held.

use std::time::{Instant, SystemTime};

use super::simulcast_tests::{at, estimate, select, selected, simulcast_publisher, subscriber};
use super::tests::{id, room};
use super::*;

/// Whether each `SelectLayer` of `fx` is urgent.
fn urgent(fx: &[Effect]) -> Vec<bool> {
    fx.iter()
        .filter_map(|e| match e {
            Effect::Media(MediaCommand::SelectLayer { urgent, .. }) => Some(*urgent),
            _ => None,
        })
        .collect()
}

fn loss(r: &mut RoomCore, p: &str, fraction: f64) -> Vec<Effect> {
    r.media_event(MediaEvent::DownlinkLoss {
        peer: id(p),
        fraction,
    })
}

/// A publishes audio and a simulcast camera (default rates: l 150 k, m 500 k, h 2.5 M; audio
/// 50 k); B receives both and is estimated at 3 M: h.
fn room_on_h() -> (RoomCore, Instant) {
    let mut r = room();
    simulcast_publisher(&mut r, "A");
    subscriber(&mut r, "B", 1, 1);
    let t0 = Instant::now();
    r.advance(t0, SystemTime::UNIX_EPOCH);
    assert!(selected(&estimate(&mut r, "B", 3_000_000)).is_empty(), "h");
    (r, t0)
}

#[test]
fn heavy_loss_goes_straight_down_to_what_got_through() {
    let (mut r, _) = room_on_h();
    // Below the threshold: left to repair.
    assert!(selected(&loss(&mut r, "B", 0.05)).is_empty());
    // 80 % lost of 2.55 M: 0.85 × 510 k = 433 k fits l only; h stops at once.
    let fx = loss(&mut r, "B", 0.8);
    assert_eq!(selected(&fx), [select("B", "A:v", "l")]);
    assert_eq!(urgent(&fx), [true]);
}

#[test]
fn a_cut_settles_before_the_next_and_holds_until_probes_lift_it() {
    let (mut r, t0) = room_on_h();
    // 15 % of 2.55 M: 0.85 × 2.17 M = 1.84 M fits m.
    assert_eq!(
        selected(&loss(&mut r, "B", 0.15)),
        [select("B", "A:v", "m")]
    );
    // Loss reported right after the cut is the cut's own, unless heavy (next test).
    at(&mut r, t0, 200);
    assert!(selected(&loss(&mut r, "B", 0.2)).is_empty());
    // Loss that goes on cuts again: 0.85 × 80 % of m and audio (550 k) = 374 k fits l only.
    at(&mut r, t0, 350);
    let fx = loss(&mut r, "B", 0.2);
    assert_eq!(selected(&fx), [select("B", "A:v", "l")]);
    assert_eq!(urgent(&fx), [true]);
    // At the lowest, more loss changes nothing.
    at(&mut r, t0, 600);
    assert!(selected(&loss(&mut r, "B", 0.3)).is_empty());
    // The estimate does not lift the cut ...
    at(&mut r, t0, 1_500);
    assert!(selected(&estimate(&mut r, "B", 3_100_000)).is_empty());
    // ... probes do, one layer at a time: 2 s after the cut, m for 1.5 s ...
    at(&mut r, t0, 2_700);
    let fx = estimate(&mut r, "B", 3_000_000);
    assert_eq!(selected(&fx), [select("B", "A:v", "m")]);
    assert_eq!(urgent(&fx), [false], "going up is never urgent");
    // ... which passed: m stays (the cut now allows what was sent with it) ...
    at(&mut r, t0, 4_300);
    assert!(selected(&estimate(&mut r, "B", 3_010_000)).is_empty());
    // ... and half a second later the next probe takes h, which passes and stays too.
    at(&mut r, t0, 4_700);
    assert!(selected(&estimate(&mut r, "B", 3_015_000)).is_empty());
    at(&mut r, t0, 4_900);
    assert_eq!(
        selected(&estimate(&mut r, "B", 3_020_000)),
        [select("B", "A:v", "h")]
    );
    at(&mut r, t0, 6_500);
    assert!(selected(&estimate(&mut r, "B", 3_030_000)).is_empty());
    at(&mut r, t0, 12_000);
    assert!(selected(&estimate(&mut r, "B", 3_040_000)).is_empty());
}

#[test]
fn heavy_loss_right_after_a_shallow_cut_goes_to_the_lowest_layer() {
    let (mut r, t0) = room_on_h();
    // The first window caught only the start of the loss: 15 % cuts to m.
    assert_eq!(
        selected(&loss(&mut r, "B", 0.15)),
        [select("B", "A:v", "m")]
    );
    // The link still drops most of m: no waiting for the settle time.
    at(&mut r, t0, 250);
    let fx = loss(&mut r, "B", 0.9);
    assert_eq!(selected(&fx), [select("B", "A:v", "l")]);
    assert_eq!(urgent(&fx), [true]);
    // At the lowest, more heavy loss within the settle time changes nothing.
    at(&mut r, t0, 450);
    assert!(selected(&loss(&mut r, "B", 1.0)).is_empty());
}

/// The `SeedDownlinkEstimate`s of `fx`.
fn seeds(fx: &[Effect]) -> Vec<(PeerId, u64)> {
    fx.iter()
        .filter_map(|e| match e {
            Effect::Media(MediaCommand::SeedDownlinkEstimate { peer, bps }) => {
                Some((peer.clone(), *bps))
            }
            _ => None,
        })
        .collect()
}

#[test]
fn a_passed_probe_seeds_an_estimate_that_collapsed_below_what_it_carried() {
    let (mut r, t0) = room_on_h();
    assert_eq!(selected(&loss(&mut r, "B", 0.9)), [select("B", "A:v", "l")]);
    // The policing ends; the estimator's loss controller, a moment late, collapses.
    at(&mut r, t0, 1_000);
    assert!(seeds(&estimate(&mut r, "B", 400_000)).is_empty());
    // The probe takes m (above the estimate) ...
    at(&mut r, t0, 2_100);
    assert_eq!(
        selected(&estimate(&mut r, "B", 410_000)),
        [select("B", "A:v", "m")]
    );
    // ... and passes: the link carried m and audio, 550 k; the estimator continues from there
    // and m stays.
    at(&mut r, t0, 3_700);
    let fx = estimate(&mut r, "B", 420_000);
    assert_eq!(seeds(&fx), [(id("B"), 550_000)]);
    assert!(selected(&fx).is_empty(), "m stays: {fx:?}");
    // Seeded once; the estimator's own estimates rule again.
    at(&mut r, t0, 3_800);
    assert!(seeds(&estimate(&mut r, "B", 560_000)).is_empty());
}

#[test]
fn probes_go_on_without_events_on_the_tick() {
    let (mut r, t0) = room_on_h();
    assert_eq!(selected(&loss(&mut r, "B", 0.9)), [select("B", "A:v", "l")]);
    // Nothing more is heard of B's link (an estimate pinned at its maximum reports nothing).
    at(&mut r, t0, 1_000);
    assert!(r.tick().is_empty());
    at(&mut r, t0, 2_100);
    assert_eq!(selected(&r.tick()), [select("B", "A:v", "m")], "probe");
    at(&mut r, t0, 3_700);
    assert!(selected(&r.tick()).is_empty(), "passed: m stays");
    at(&mut r, t0, 4_300);
    assert_eq!(selected(&r.tick()), [select("B", "A:v", "h")], "next probe");
}

#[test]
fn a_probe_that_meets_loss_fails_and_the_next_waits_longer() {
    let (mut r, t0) = room_on_h();
    assert_eq!(selected(&loss(&mut r, "B", 0.9)), [select("B", "A:v", "l")]);
    at(&mut r, t0, 2_100);
    assert_eq!(
        selected(&estimate(&mut r, "B", 3_001_000)),
        [select("B", "A:v", "m")],
        "probe"
    );
    // Loss during the probe: cut again, back to l; the next probe waits 4 s.
    at(&mut r, t0, 2_600);
    let fx = loss(&mut r, "B", 0.4);
    assert_eq!(selected(&fx), [select("B", "A:v", "l")]);
    assert_eq!(urgent(&fx), [true]);
    at(&mut r, t0, 6_000);
    assert!(selected(&estimate(&mut r, "B", 3_010_000)).is_empty());
    at(&mut r, t0, 6_700);
    assert_eq!(
        selected(&estimate(&mut r, "B", 3_020_000)),
        [select("B", "A:v", "m")]
    );
}

#[test]
fn loss_of_a_peer_not_connected_or_unknown_changes_nothing() {
    let (mut r, _) = room_on_h();
    assert!(loss(&mut r, "nobody", 0.9).is_empty());
    assert!(r.downlink(&id("nobody")).is_none());
}
