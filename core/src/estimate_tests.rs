//! The downlink estimate through the room core: a subscriber held down for bandwidth is
//! probed one layer up (backing off when probes fail), and a sharp drop of the estimate fits
//! its layers into half of it for a while.

use std::time::{Instant, SystemTime};

use super::simulcast_tests::{at, estimate, select, selected, simulcast_publisher, subscriber};
use super::tests::{id, room};

#[test]
fn a_subscriber_held_down_probes_one_layer_up_and_backs_off_when_it_fails() {
    let mut r = room();
    simulcast_publisher(&mut r, "A");
    subscriber(&mut r, "B", 1, 1);
    let t0 = Instant::now();
    at(&mut r, t0, 0);
    // 400 k: l fits (m needs 500 k): held down for bandwidth.
    assert_eq!(
        selected(&estimate(&mut r, "B", 400_000)),
        [select("B", "A:v", "l")]
    );
    // No probe before an interval has passed since the track was first seen held down.
    at(&mut r, t0, 1_000);
    assert!(selected(&estimate(&mut r, "B", 401_000)).is_empty());
    at(&mut r, t0, 3_000);
    assert!(selected(&estimate(&mut r, "B", 402_000)).is_empty());
    // 4 s later: a probe sends m although it does not fit.
    at(&mut r, t0, 5_000);
    assert_eq!(
        selected(&estimate(&mut r, "B", 403_000)),
        [select("B", "A:v", "m")]
    );
    // It holds while the estimate does not fall ...
    at(&mut r, t0, 6_000);
    assert!(selected(&estimate(&mut r, "B", 410_000)).is_empty());
    // ... and fails when it does: back to l; the next probe waits 8 s.
    at(&mut r, t0, 7_000);
    assert_eq!(
        selected(&estimate(&mut r, "B", 300_000)),
        [select("B", "A:v", "l")]
    );
    at(&mut r, t0, 14_000);
    assert!(selected(&estimate(&mut r, "B", 301_000)).is_empty());
    at(&mut r, t0, 15_000);
    assert_eq!(
        selected(&estimate(&mut r, "B", 302_000)),
        [select("B", "A:v", "m")]
    );
    // This one works: the estimate grows past m's cost with headroom; m stays after the hold.
    at(&mut r, t0, 16_000);
    assert!(selected(&estimate(&mut r, "B", 700_000)).is_empty());
    at(&mut r, t0, 19_000);
    assert!(selected(&estimate(&mut r, "B", 720_000)).is_empty());
    assert_eq!(
        r.receiving(&id("B"))
            .next()
            .unwrap()
            .1
            .chosen
            .as_ref()
            .unwrap()
            .layer,
        "m"
    );
}

#[test]
fn a_sharp_drop_fits_layers_into_half_the_estimate_for_a_while() {
    let mut r = room();
    simulcast_publisher(&mut r, "A");
    subscriber(&mut r, "B", 1, 1);
    let t0 = Instant::now();
    r.advance(t0, SystemTime::UNIX_EPOCH);
    assert!(
        selected(&estimate(&mut r, "B", 3_000_000)).is_empty(),
        "h fits"
    );
    // 3 M → 1 M: m would fit 1 M, but half of it only fits l.
    assert_eq!(
        selected(&estimate(&mut r, "B", 1_000_000)),
        [select("B", "A:v", "l")]
    );
    // 2 s later the whole estimate counts again (m needs 550 k + 50 k with headroom).
    at(&mut r, t0, 3_000);
    assert_eq!(
        selected(&estimate(&mut r, "B", 1_010_000)),
        [select("B", "A:v", "m")]
    );
}
