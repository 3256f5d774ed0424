//! Simulcast decisions, pure: a simulcast track's [`Layers`] (RIDs, bit rates, which are
//! arriving) and [`decide`], which picks the layer each subscriber gets of each simulcast
//! track it receives. The room core feeds it and turns its answers into
//! `MediaCommand::SelectLayer` (`layers.rs`).
//!
//! The rules, in order, for one subscriber:
//! 1. **Active layers only** (`encoding_inactive`): a layer not in the track's latest
//!    `LayersActive` report cannot be chosen (before the first report every layer counts as
//!    active). If the preferred layer is inactive, the nearest lower active layer is chosen,
//!    else the nearest higher one.
//! 2. **Downlink estimate** (`low_bandwidth`), when known: shared among the subscriber's
//!    received tracks, audio first, then video with priority (screen shares and the active
//!    speaker's video), then the other video, in slot order. Each simulcast video track gets
//!    the highest active layer not above the layer of rule 1 whose bit rate fits what is left,
//!    never below its lowest active layer; single-encoding tracks take their bit rate.
//! 3. **The subscriber's wish** (`setTargetTrackVariant`, reason `other`).
//! 4. **Default**: the highest layer (reason `other`).

use lamina_protocol::media_event::TrackBitrates;
use serde_json::{json, Value};

use crate::TrackKind;

/// Bit rate assumed for an audio track without a declared one (membrane-webrtc-js's default).
pub const DEFAULT_AUDIO_BPS: u64 = 50_000;

/// Bit rate assumed for a single-encoding video track without a declared one.
pub const DEFAULT_VIDEO_BPS: u64 = 2_500_000;

/// Default bit rates of the layers membrane-webrtc-js names (`l`, `m`, `h`).
const NAMED_LAYER_BPS: [(&str, u64); 3] = [("l", 150_000), ("m", 500_000), ("h", 2_500_000)];

/// Default bit rate of a layer: the named defaults for `l`, `m` and `h`; any other RID by its
/// rank from the top: 2 500 000 for the highest layer, a quarter of that per step down.
pub fn default_layer_bps(rid: &str, rank: usize, count: usize) -> u64 {
    if let Some((_, bps)) = NAMED_LAYER_BPS.iter().find(|(r, _)| *r == rid) {
        return *bps;
    }
    let steps_down = count.saturating_sub(rank + 1).min(16) as u32;
    DEFAULT_VIDEO_BPS >> (2 * steps_down)
}

/// Bit rate of a single-encoding track from its `trackIdToTrackBitrates` entry.
pub fn single_bps(kind: TrackKind, declared: Option<&TrackBitrates>) -> u64 {
    match (declared, kind) {
        (Some(TrackBitrates::Single(bps)), _) => *bps,
        (_, TrackKind::Audio) => DEFAULT_AUDIO_BPS,
        (_, TrackKind::Video) => DEFAULT_VIDEO_BPS,
    }
}

/// The layers of a simulcast track.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layers {
    /// RIDs in the publisher's offer order, taken as low → high quality.
    pub rids: Vec<String>,
    /// Bit rate of each layer (same order): declared in `trackIdToTrackBitrates`, else
    /// [`default_layer_bps`].
    pub bitrates: Vec<u64>,
    /// The layers arriving now (the latest `LayersActive`, in offer order); `None` before the
    /// first report, when every layer counts as active.
    pub active: Option<Vec<String>>,
    /// Measured bit rate of each layer (same order; `LayerBitrates`), once known.
    pub measured: Vec<Option<u64>>,
}

/// Headroom added to a measured layer bit rate when fitting it into a downlink estimate
/// (a layer's rate moves with the picture; keyframes come in bursts).
const MEASURED_HEADROOM: f64 = 1.2;
/// Smallest change of a measured bit rate that makes the room decide again.
const MEASURED_CHANGE: f64 = 0.25;

impl Layers {
    /// The layers of `rids` (low → high) with default bit rates, all taken as active.
    pub fn new(rids: Vec<String>) -> Self {
        let n = rids.len();
        let bitrates = rids
            .iter()
            .enumerate()
            .map(|(i, r)| default_layer_bps(r, i, n))
            .collect();
        Self {
            measured: vec![None; rids.len()],
            rids,
            bitrates,
            active: None,
        }
    }

    /// What layer `i` costs a subscriber's downlink: its measured rate with
    /// [`MEASURED_HEADROOM`] (capped by the declared rate), else the declared rate.
    pub fn cost(&self, i: usize) -> u64 {
        let declared = self.bitrates.get(i).copied().unwrap_or(0);
        match self.measured.get(i).copied().flatten() {
            Some(m) => ((m as f64 * MEASURED_HEADROOM) as u64).min(declared.max(m)),
            None => declared,
        }
    }

    /// Takes measured rates (`(rid, bit/s)`); true when one moved by [`MEASURED_CHANGE`] or
    /// more, or became known.
    pub fn set_measured(&mut self, rates: &[(String, u64)]) -> bool {
        let mut notable = false;
        for (rid, bps) in rates {
            let Some(i) = self.index(rid) else { continue };
            let old = self.measured[i];
            notable |= old.is_none_or(|o| {
                (*bps as f64 - o as f64).abs() >= MEASURED_CHANGE * (o.max(1) as f64)
            });
            self.measured[i] = Some(*bps);
        }
        notable
    }

    /// Takes the declared bit rates (per RID; others keep their default); true when a bit
    /// rate changed. A single number for a simulcast track is ignored.
    pub fn set_bitrates(&mut self, declared: Option<&TrackBitrates>) -> bool {
        let n = self.rids.len();
        let new: Vec<u64> = self
            .rids
            .iter()
            .enumerate()
            .map(|(i, rid)| {
                match declared {
                    Some(TrackBitrates::Layers(m)) => m.get(rid).copied(),
                    _ => None,
                }
                .unwrap_or_else(|| default_layer_bps(rid, i, n))
            })
            .collect();
        let changed = new != self.bitrates;
        self.bitrates = new;
        changed
    }

    /// Position of a RID.
    pub fn index(&self, rid: &str) -> Option<usize> {
        self.rids.iter().position(|r| r == rid)
    }

    /// `{"layers": [rid…], "bitrates": [bps…], "measured": [bps | null…], "active": [rid…] |
    /// null}` (for `/debug/rooms`).
    pub fn to_json(&self) -> Value {
        json!({"layers": self.rids, "bitrates": self.bitrates, "measured": self.measured,
               "active": self.active})
    }

    /// Whether layer `i` is arriving (every layer is before the first report).
    pub fn is_active(&self, i: usize) -> bool {
        self.active
            .as_ref()
            .is_none_or(|a| a.iter().any(|r| Some(r) == self.rids.get(i)))
    }
}

/// Why a layer was chosen (the `reason` of `encodingSwitched`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SwitchReason {
    /// The subscriber's wish or the default.
    Other,
    /// The preferred layer is not arriving from the publisher.
    EncodingInactive,
    /// The subscriber's downlink does not fit the preferred layer.
    LowBandwidth,
}

impl SwitchReason {
    /// The wire value: `"other"`, `"encoding_inactive"`, `"low_bandwidth"`.
    pub fn as_str(self) -> &'static str {
        match self {
            SwitchReason::Other => "other",
            SwitchReason::EncodingInactive => "encoding_inactive",
            SwitchReason::LowBandwidth => "low_bandwidth",
        }
    }
}

/// A layer decision for one (subscriber, simulcast track).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    /// The layer's RID.
    pub layer: String,
    /// Why.
    pub reason: SwitchReason,
}

/// One track a subscriber receives, as [`decide`] sees it.
#[derive(Debug, Clone, Copy)]
pub struct Received<'a> {
    /// Audio or video.
    pub kind: TrackKind,
    /// The layers of a simulcast track; `None` for a single encoding.
    pub layers: Option<&'a Layers>,
    /// Bit rate of a single-encoding track (unused for simulcast ones).
    pub bps: u64,
    /// The layer the subscriber asked for, if any.
    pub wish: Option<&'a str>,
    /// A screen share or the active speaker's video: served first when the downlink is short.
    pub priority: bool,
    /// The layer chosen last time (its index), if any: going above it needs
    /// [`UP_MARGIN`] of headroom, so an estimate hovering at a layer's cost does not flap.
    pub current: Option<usize>,
    /// A bandwidth probe (see `layers.rs`): the track gets at least this layer, whatever the
    /// estimate fits, to find out whether the link takes it.
    pub probe: Option<usize>,
}

/// Headroom a layer above the current one needs in the estimate (hysteresis).
pub const UP_MARGIN: f64 = 1.1;

/// Rules 1, 3 and 4 for one track: the preferred layer (the wish if it names a layer, else
/// the highest), moved to the nearest active one.
fn preferred(layers: &Layers, wish: Option<&str>) -> (usize, SwitchReason) {
    let n = layers.rids.len();
    let want = wish
        .and_then(|w| layers.index(w))
        .unwrap_or(n.saturating_sub(1));
    if layers.is_active(want) {
        return (want, SwitchReason::Other);
    }
    let lower = (0..want).rev().find(|&i| layers.is_active(i));
    let higher = (want + 1..n).find(|&i| layers.is_active(i));
    // With no layer arriving at all the preferred one stays (nothing better to pick).
    (
        lower.or(higher).unwrap_or(want),
        SwitchReason::EncodingInactive,
    )
}

/// The layer of each simulcast track in `received` (`None` for the others), for a subscriber
/// whose downlink is estimated at `budget` bit/s (`None`: unknown, no bandwidth rule).
pub fn decide(budget: Option<u64>, received: &[Received<'_>]) -> Vec<Option<Choice>> {
    let mut picks: Vec<Option<(usize, SwitchReason)>> = received
        .iter()
        .map(|r| r.layers.map(|l| preferred(l, r.wish)))
        .collect();
    if let Some(mut left) = budget {
        for r in received.iter().filter(|r| r.kind == TrackKind::Audio) {
            left = left.saturating_sub(r.bps);
        }
        let video = |priority: bool| {
            (0..received.len())
                .filter(move |&i| received[i].kind == TrackKind::Video)
                .filter(move |&i| received[i].priority == priority)
        };
        for i in video(true).chain(video(false)) {
            let (Some(layers), Some((cap, reason))) = (received[i].layers, picks[i]) else {
                left = left.saturating_sub(received[i].bps);
                continue;
            };
            let bps = |j: usize| layers.cost(j);
            let needs = |j: usize| match received[i].current {
                Some(cur) if j > cur => (bps(j) as f64 * UP_MARGIN) as u64,
                _ => bps(j),
            };
            let active_up_to_cap = || (0..=cap).rev().filter(|&j| layers.is_active(j));
            let fits = active_up_to_cap().find(|&j| needs(j) <= left);
            let mut pick = fits
                .or_else(|| (0..=cap).find(|&j| layers.is_active(j)))
                .unwrap_or(cap);
            if let Some(floor) = received[i].probe.filter(|f| *f > pick && *f <= cap) {
                if layers.is_active(floor) {
                    pick = floor;
                }
            }
            let reason = if pick < cap {
                SwitchReason::LowBandwidth
            } else {
                reason
            };
            left = left.saturating_sub(bps(pick));
            picks[i] = Some((pick, reason));
        }
    }
    received
        .iter()
        .zip(picks)
        .map(|(r, pick)| {
            let (i, reason) = pick?;
            Some(Choice {
                layer: r.layers?.rids.get(i)?.clone(),
                reason,
            })
        })
        .collect()
}

#[cfg(test)]
#[path = "decide_tests.rs"]
mod tests;
