//! [`decide`] on its own: the layer rules without a room.

use std::collections::BTreeMap;

use super::*;
use SwitchReason::{EncodingInactive, Other};

fn lmh() -> Layers {
    Layers::new(vec!["l".into(), "m".into(), "h".into()])
}

fn with_active(mut l: Layers, active: &[&str]) -> Layers {
    l.active = Some(active.iter().map(|s| s.to_string()).collect());
    l
}

fn video<'a>(layers: &'a Layers, wish: Option<&'a str>, priority: bool) -> Received<'a> {
    Received {
        kind: TrackKind::Video,
        layers: Some(layers),
        bps: 0,
        wish,
        priority,
        current: None,
        probe: None,
    }
}

fn single(kind: TrackKind, bps: u64, priority: bool) -> Received<'static> {
    Received {
        kind,
        layers: None,
        bps,
        wish: None,
        priority,
        current: None,
        probe: None,
    }
}

fn choice(layer: &str, reason: SwitchReason) -> Option<Choice> {
    Some(Choice {
        layer: layer.into(),
        reason,
    })
}

/// The decisions as (layer, reason) strings, `-` for a track without one.
fn summary(choices: &[Option<Choice>]) -> Vec<String> {
    choices
        .iter()
        .map(|c| match c {
            Some(c) => format!("{} {}", c.layer, c.reason.as_str()),
            None => "-".into(),
        })
        .collect()
}

#[test]
fn default_bitrates() {
    assert_eq!(lmh().bitrates, [150_000, 500_000, 2_500_000]);
    // Unknown names are spread by rank from the top; known names keep their value.
    let q = Layers::new(vec!["q0".into(), "q1".into(), "q2".into()]);
    assert_eq!(q.bitrates, [156_250, 625_000, 2_500_000]);
    let two = Layers::new(vec!["lo".into(), "h".into()]);
    assert_eq!(two.bitrates, [625_000, 2_500_000]);
    assert_eq!(single_bps(TrackKind::Audio, None), 50_000);
    assert_eq!(single_bps(TrackKind::Video, None), 2_500_000);
    assert_eq!(
        single_bps(TrackKind::Video, Some(&TrackBitrates::Single(300_000))),
        300_000
    );
}

#[test]
fn declared_bitrates_override_the_defaults_per_layer() {
    let mut l = lmh();
    let declared = TrackBitrates::Layers(BTreeMap::from([("m".into(), 400_000), ("x".into(), 1)]));
    assert!(l.set_bitrates(Some(&declared)));
    assert_eq!(l.bitrates, [150_000, 400_000, 2_500_000]);
    assert!(!l.set_bitrates(Some(&declared)), "no change");
    // A single number does not describe layers: back to the defaults.
    assert!(l.set_bitrates(Some(&TrackBitrates::Single(9))));
    assert_eq!(l.bitrates, lmh().bitrates);
}

#[test]
fn without_anything_the_highest_layer() {
    let l = lmh();
    assert_eq!(
        decide(None, &[video(&l, None, false)]),
        [choice("h", Other)]
    );
    // Single-encoding tracks get no decision.
    let out = decide(None, &[single(TrackKind::Audio, 50_000, false)]);
    assert_eq!(out, [None]);
}

#[test]
fn the_wish_is_followed() {
    let l = lmh();
    assert_eq!(
        decide(None, &[video(&l, Some("m"), false)]),
        [choice("m", Other)]
    );
    // A wish naming no layer falls back to the default.
    assert_eq!(
        decide(None, &[video(&l, Some("zz"), false)]),
        [choice("h", Other)]
    );
}

#[test]
fn inactive_layers_are_never_chosen() {
    // The wish is inactive: the nearest lower active layer…
    let l = with_active(lmh(), &["l", "h"]);
    assert_eq!(
        decide(None, &[video(&l, Some("m"), false)]),
        [choice("l", EncodingInactive)]
    );
    // …else the nearest higher one.
    let l = with_active(lmh(), &["m", "h"]);
    assert_eq!(
        decide(None, &[video(&l, Some("l"), false)]),
        [choice("m", EncodingInactive)]
    );
    let l = with_active(lmh(), &["l"]);
    assert_eq!(
        decide(None, &[video(&l, None, false)]),
        [choice("l", EncodingInactive)]
    );
    // An active wish is taken as is.
    let l = with_active(lmh(), &["l", "m"]);
    assert_eq!(
        decide(None, &[video(&l, Some("m"), false)]),
        [choice("m", Other)]
    );
    // Nothing arriving at all: the preferred layer stays.
    let l = with_active(lmh(), &[]);
    assert_eq!(
        decide(None, &[video(&l, None, false)]),
        [choice("h", EncodingInactive)]
    );
}

#[test]
fn the_budget_lowers_layers_to_fit() {
    let l = lmh();
    let one = |budget| summary(&decide(Some(budget), &[video(&l, None, false)]));
    assert_eq!(one(10_000_000), ["h other"]);
    assert_eq!(one(2_500_000), ["h other"]);
    assert_eq!(one(2_499_999), ["m low_bandwidth"]);
    assert_eq!(one(500_000), ["m low_bandwidth"]);
    assert_eq!(one(200_000), ["l low_bandwidth"]);
    // Never below the lowest layer, whatever the estimate.
    assert_eq!(one(1), ["l low_bandwidth"]);
    // Never above the wish, whatever the estimate.
    let wished = decide(Some(10_000_000), &[video(&l, Some("m"), false)]);
    assert_eq!(summary(&wished), ["m other"]);
}

#[test]
fn audio_is_served_first_then_priority_video() {
    let (cam, screen) = (lmh(), lmh());
    let tracks = [
        single(TrackKind::Audio, 100_000, false),
        video(&cam, None, false),
        video(&screen, None, true),
    ];
    // 3.1 M: audio 0.1, the screen share h (2.5), what is left (0.5) gives the camera m.
    assert_eq!(
        summary(&decide(Some(3_100_000), &tracks)),
        ["-", "m low_bandwidth", "h other"]
    );
    // 2.7 M: screen h, camera l (0.1 left).
    assert_eq!(
        summary(&decide(Some(2_700_000), &tracks)),
        ["-", "l low_bandwidth", "h other"]
    );
    // 0.9 M: screen m (0.5), camera l (0.15) fits the 0.3 left.
    assert_eq!(
        summary(&decide(Some(900_000), &tracks)),
        ["-", "l low_bandwidth", "m low_bandwidth"]
    );
    // Without priority, slot order decides.
    let plain = [video(&cam, None, false), video(&screen, None, false)];
    assert_eq!(
        summary(&decide(Some(3_000_000), &plain)),
        ["h other", "m low_bandwidth"]
    );
}

#[test]
fn single_encoding_video_takes_its_share() {
    let cam = lmh();
    let tracks = [
        single(TrackKind::Video, 2_000_000, true),
        video(&cam, None, false),
    ];
    assert_eq!(
        summary(&decide(Some(2_600_000), &tracks)),
        ["-", "m low_bandwidth"]
    );
}

#[test]
fn inactive_rule_comes_before_the_budget() {
    // Only m and h arrive: even a tiny budget cannot go below m, and m stays
    // `encoding_inactive` when it is what rule 1 chose.
    let l = with_active(lmh(), &["m", "h"]);
    assert_eq!(
        summary(&decide(Some(1), &[video(&l, None, false)])),
        ["m low_bandwidth"]
    );
    assert_eq!(
        summary(&decide(Some(1), &[video(&l, Some("l"), false)])),
        ["m encoding_inactive"]
    );
    // The budget skips inactive layers on the way down.
    let l = with_active(lmh(), &["l", "h"]);
    assert_eq!(
        summary(&decide(Some(600_000), &[video(&l, None, false)])),
        ["l low_bandwidth"]
    );
}

#[test]
fn measured_rates_replace_the_declared_ones_when_fitting() {
    // Declared h (2.5 Mbit/s) does not fit 1.5 Mbit/s; the measured 900 kbit/s (+20 %) does.
    let mut cam = lmh();
    assert_eq!(
        summary(&decide(Some(1_500_000), &[video(&cam, None, false)])),
        ["m low_bandwidth"]
    );
    assert!(cam.set_measured(&[("h".into(), 900_000), ("x".into(), 1)]));
    assert_eq!(cam.cost(2), 1_080_000);
    assert_eq!(
        cam.cost(0),
        150_000,
        "unmeasured layers keep their declared rate"
    );
    assert_eq!(
        summary(&decide(Some(1_500_000), &[video(&cam, None, false)])),
        ["h other"]
    );
    // Small moves are not worth a new decision; big ones are.
    assert!(!cam.set_measured(&[("h".into(), 1_000_000)]));
    assert!(cam.set_measured(&[("h".into(), 2_000_000)]));
    // A measured rate above the declared one counts as measured, without headroom.
    assert!(cam.set_measured(&[("l".into(), 200_000)]));
    assert_eq!(cam.cost(0), 200_000);
}

#[test]
fn going_up_needs_headroom_and_a_probe_goes_one_layer_above_the_fit() {
    let cam = lmh();
    // m costs 500 kbit/s: from l it needs 550 kbit/s, staying on m needs 500.
    let from = |cur: Option<usize>, probe: Option<usize>| Received {
        current: cur,
        probe,
        ..video(&cam, None, false)
    };
    assert_eq!(
        summary(&decide(Some(520_000), &[from(Some(0), None)])),
        ["l low_bandwidth"]
    );
    assert_eq!(
        summary(&decide(Some(520_000), &[from(Some(1), None)])),
        ["m low_bandwidth"]
    );
    assert_eq!(
        summary(&decide(Some(560_000), &[from(Some(0), None)])),
        ["m low_bandwidth"]
    );
    // A probe: at least its layer, whatever fits; never above the preferred one.
    assert_eq!(
        summary(&decide(Some(200_000), &[from(Some(0), Some(1))])),
        ["m low_bandwidth"]
    );
    assert_eq!(
        summary(&decide(Some(9_000_000), &[from(Some(1), Some(1))])),
        ["h other"]
    );
    let wants_m = Received {
        current: Some(0),
        probe: Some(2),
        ..video(&cam, Some("m"), false)
    };
    assert_eq!(
        summary(&decide(Some(200_000), &[wants_m])),
        ["l low_bandwidth"]
    );
}
