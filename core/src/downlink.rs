//! One subscriber's downlink as the room core sees it: the estimate and its sharp drops, loss
//! cuts, bandwidth probes, and the budget they leave for its simulcast layers
//! (`layers.rs` decides the layers; this module holds the state the budget comes from).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::rate::RateLimiter;
use crate::simulcast::{Choice, SwitchReason, UP_MARGIN};
use crate::track::Track;
use crate::TrackId;

/// One subscriber and one simulcast track it was told about or receives.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Receiving {
    /// The layer the client asked for (`setTargetTrackVariant`).
    pub wish: Option<String>,
    /// The last decision; its layer was sent to the media graph (`SelectLayer`).
    pub chosen: Option<Choice>,
    /// The layer the media graph last reported the subscriber switched to.
    pub switched: Option<String>,
}

/// Least time between the start of two bandwidth probes of one subscriber (doubled after each
/// failed probe, up to [`PROBE_BACKOFF_MAX`]).
pub const PROBE_INTERVAL: Duration = Duration::from_secs(4);
/// Longest wait between two probes after failures.
pub const PROBE_BACKOFF_MAX: Duration = Duration::from_secs(32);
/// How long a probed layer is kept before it must fit the estimate.
pub const PROBE_HOLD: Duration = Duration::from_secs(3);
/// A probe fails when the estimate falls below this share of its value at the probe's start.
const PROBE_FAIL: f64 = 0.85;
/// An estimate below this share of the previous one is a sharp drop (the link just got much
/// narrower: GCC's loss controller takes a second or more to come down all the way).
const SHARP_DROP: f64 = 0.7;
/// After a sharp drop, layers are fitted into half the estimate for this long, so the
/// subscriber goes down in one switch (one keyframe through the congested link) rather than
/// one layer per estimate.
const SHARP_DROP_HOLD: Duration = Duration::from_secs(2);
/// Share of a subscriber's video packets lost (`DownlinkLoss`) from which its layers are cut
/// at once (GCC's loss controller also decreases from 10 %; below it, repair copes).
pub const LOSS_CUT: f64 = 0.1;
/// From this share lost the link is taken as badly overloaded: the layers go straight to the
/// lowest (one switch, one keyframe) rather than to what the measured share says got through.
pub const LOSS_HEAVY: f64 = 0.25;
/// A loss cut fits the layers into what got through (what was sent × (1 − loss)) times this.
const LOSS_BACKOFF: f64 = 0.85;
/// After a loss cut, no probe starts for this long, and switches down stop the current layer
/// at once (`urgent`).
const LOSS_HOLD: Duration = Duration::from_secs(2);
/// Between probes of a loss-capped subscriber (loss shows within a fraction of a second, so
/// these are quicker than estimate probes).
const LOSS_PROBE_INTERVAL: Duration = Duration::from_secs(2);
/// How long a probe of a loss-capped subscriber lasts.
const LOSS_PROBE_HOLD: Duration = Duration::from_millis(1500);
/// After a probe of a loss-capped subscriber passes, the next starts this soon (the link
/// took the last step: take the next one).
const LOSS_PROBE_AFTER_PASS: Duration = Duration::from_millis(500);
/// Loss reported this soon after a cut is taken as the cut's own (the report's window closed
/// mostly before the switch took effect) and does not cut again, unless it is heavy
/// ([`LOSS_HEAVY`]): then the layers go to the lowest. Later reports measure the new layers
/// (`laminartx` does not count requests for packets from before a switch): loss that goes on
/// cuts again, as GCC's loss controller decreases at most once per 300 ms and a round trip.
const LOSS_SETTLE: Duration = Duration::from_millis(300);

/// Bandwidth probing of one subscriber's downlink. `rtpgccbwe`'s estimate grows to at most
/// about 1.5 times what is actually sent, so a subscriber moved down a layer would never be
/// estimated high enough to move up again: from time to time one track held down for
/// bandwidth is sent one layer higher for [`PROBE_HOLD`]; if the link takes it the estimate
/// grows and the layer stays, if not (the estimate falls) it goes back and the next probe waits
/// twice as long. A loss cut holds until probes lift it: each probe that ends without a new
/// cut raises the cap to what was sent with the probed layer.
#[derive(Debug, Clone)]
struct Probe {
    /// No probe starts before this.
    next_at: Option<Instant>,
    /// Wait after the next probe.
    backoff: Duration,
    /// The probe running: its track and layer, start, and the estimate then.
    running: Option<(TrackId, usize, Instant, u64)>,
}

impl Default for Probe {
    fn default() -> Self {
        Self {
            next_at: None,
            backoff: PROBE_INTERVAL,
            running: None,
        }
    }
}

/// One subscriber's simulcast state.
#[derive(Debug, Clone, Default)]
pub(crate) struct Downlink {
    /// Bandwidth probing.
    probe: Probe,
    /// Until when layers are fitted into half the estimate (after a sharp drop).
    sharp_until: Option<Instant>,
    /// The loss cut in force: the budget it allows (raised by passed probes) and when the
    /// last cut was made.
    loss_cap: Option<(u64, Instant)>,
    /// The media graph's latest estimate, bit/s.
    pub(crate) estimate: Option<u64>,
    /// An estimate a passed probe measured, for the media graph's estimator to continue from.
    seed: Option<u64>,
    /// The last `bandwidthEstimation` sent: value and when.
    pub(crate) reported: Option<(u64, Instant)>,
    /// The `setTargetTrackVariant` budget.
    pub(crate) requests: Option<RateLimiter>,
    /// Per simulcast track.
    pub(crate) tracks: BTreeMap<TrackId, Receiving>,
}

impl Downlink {
    /// Takes a new estimate (a sharp drop starts [`SHARP_DROP_HOLD`]); true if it changed.
    pub(crate) fn take_estimate(&mut self, now: Instant, bps: u64) -> bool {
        if self
            .estimate
            .is_some_and(|prev| (bps as f64) < prev as f64 * SHARP_DROP)
        {
            tracing::debug!(bps, "sharp drop of the downlink estimate");
            self.sharp_until = Some(now + SHARP_DROP_HOLD);
        }
        self.estimate.replace(bps) != Some(bps)
    }

    /// A loss report: from [`LOSS_CUT`] on, and unless it is the last cut's own (within
    /// [`LOSS_SETTLE`] and not heavy), cuts the budget to what got through of `sent` ([`LOSS_BACKOFF`] ×
    /// `sent` × (1 − loss); from [`LOSS_HEAVY`] on, nothing: the lowest layers), fails a
    /// running probe and waits before the next. True if it cut.
    pub(crate) fn loss_cut(&mut self, now: Instant, fraction: f64, sent: u64) -> bool {
        if fraction < LOSS_CUT {
            return false;
        }
        if let Some((cap, at)) = self.loss_cap {
            // Within the settle time only heavy loss cuts again, and only to the lowest layers
            // (a first cut taken on a window that straddled the start of the loss can be far
            // too shallow: a policed link still drops most of what it left).
            let settling = now.saturating_duration_since(at) < LOSS_SETTLE;
            if settling && (fraction < LOSS_HEAVY || cap == 0) {
                return false;
            }
        }
        let cap = if fraction >= LOSS_HEAVY {
            0
        } else {
            (sent as f64 * (1.0 - fraction) * LOSS_BACKOFF) as u64
        };
        tracing::debug!(fraction, sent, cap, "loss cut of the downlink");
        self.loss_cap = Some((cap, now));
        let probe = &mut self.probe;
        if probe.running.take().is_some() {
            probe.backoff = (probe.backoff * 2).min(PROBE_BACKOFF_MAX);
        } else {
            probe.backoff = LOSS_PROBE_INTERVAL;
        }
        probe.next_at = Some(now + probe.backoff.max(LOSS_HOLD));
        true
    }

    /// Whether the link is dropping packets now (a recent loss cut or sharp drop): a switch
    /// down then stops the current layer at once.
    pub(crate) fn congested(&self, now: Instant) -> bool {
        self.recently_cut(now) || self.sharp_until.is_some_and(|until| now < until)
    }

    /// What the subscriber's layers must fit into now: the estimate (halved after a sharp
    /// drop), bounded by the loss cut in force; `None` when nothing is known. Without an
    /// estimate (nothing to probe with) a cut lasts [`LOSS_HOLD`].
    pub(crate) fn budget(&self, now: Instant) -> Option<u64> {
        let sharp = self.sharp_until.is_some_and(|until| now < until);
        let estimate = self.estimate.map(|e| if sharp { e / 2 } else { e });
        let cap = self
            .loss_cap
            .filter(|_| self.estimate.is_some() || self.recently_cut(now))
            .map(|(c, _)| c);
        match (estimate, cap) {
            (Some(e), Some(c)) => Some(e.min(c)),
            (e, c) => e.or(c),
        }
    }

    /// Whether a probe may start or end now: layer decisions are made on events, and a quiet
    /// link (an estimate pinned at its maximum reports nothing) must not stall probing.
    pub(crate) fn probe_due(&self, now: Instant) -> bool {
        self.probe.running.is_some() || self.probe.next_at.is_some_and(|at| at <= now)
    }

    /// The estimate the last passed probe measured, once (`SeedDownlinkEstimate`).
    pub(crate) fn take_seed(&mut self) -> Option<u64> {
        self.seed.take()
    }

    /// Whether the last loss cut was less than [`LOSS_HOLD`] ago.
    fn recently_cut(&self, now: Instant) -> bool {
        self.loss_cap
            .is_some_and(|(_, at)| now.saturating_duration_since(at) < LOSS_HOLD)
    }

    /// A probe passed: the link carried `sent` (what the subscriber gets with the probed
    /// layer), so an estimate below it is raised to it (and seeds the media graph's estimator:
    /// [`Downlink::take_seed`]); a loss cut in force is raised to `sent` plus [`UP_MARGIN`], and
    /// ends once the estimate binds instead.
    fn probe_passed(&mut self, sent: u64) {
        if self.estimate.is_some_and(|e| e < sent) {
            tracing::debug!(sent, estimate = ?self.estimate, "estimate seeded by a probe");
            self.estimate = Some(sent);
            self.seed = Some(sent);
        }
        if let Some((cap, at)) = self.loss_cap {
            let raised = cap.max((sent as f64 * UP_MARGIN) as u64);
            self.loss_cap = match self.estimate {
                Some(e) if raised >= e => None,
                _ => Some((raised, at)),
            };
            tracing::debug!(cap = ?self.loss_cap.map(|(c, _)| c), "loss cut raised by a probe");
        }
    }

    /// The track to probe with now, if any: the running probe's track while it holds, else a
    /// new probe's once [`Probe::next_at`] is reached and a track is held down for bandwidth.
    /// Ends a probe that failed (estimate fell) or ran its time, adjusting the backoff; one
    /// that ran its time passed ([`Downlink::probe_passed`], `sent` being what the subscriber
    /// gets with the probed layer).
    pub(crate) fn probe_track(
        &mut self,
        now: Instant,
        received: &[&Track],
        sent: u64,
    ) -> Option<(TrackId, usize)> {
        if self.recently_cut(now) {
            return None;
        }
        let estimate = self.estimate?;
        let capped = self.loss_cap.is_some();
        let (interval, hold) = if capped {
            (LOSS_PROBE_INTERVAL, LOSS_PROBE_HOLD)
        } else {
            (PROBE_INTERVAL, PROBE_HOLD)
        };
        let probe = &mut self.probe;
        if let Some((track, layer, started, at_start)) = probe.running.clone() {
            let failed = (estimate as f64) < at_start as f64 * PROBE_FAIL;
            let over = now.saturating_duration_since(started) >= hold;
            let still_held = received.iter().any(|t| t.id == track);
            if !failed && !over && still_held {
                return Some((track, layer));
            }
            probe.running = None;
            let passed = !failed && over;
            probe.backoff = if failed {
                (probe.backoff * 2).min(PROBE_BACKOFF_MAX)
            } else {
                interval
            };
            let wait = if passed && capped {
                LOSS_PROBE_AFTER_PASS
            } else {
                probe.backoff
            };
            probe.next_at = Some(now + wait);
            tracing::debug!(%track, failed, estimate, "bandwidth probe ended");
            if passed {
                self.probe_passed(sent);
            }
            return None;
        }
        if probe.next_at.is_some_and(|at| now < at) {
            return None;
        }
        // A track held down for bandwidth, and the layer above its current one.
        let (held, layer) = received.iter().find_map(|t| {
            let chosen = self.tracks.get(&t.id)?.chosen.as_ref()?;
            if chosen.reason != SwitchReason::LowBandwidth {
                return None;
            }
            let layers = t.simulcast.as_ref()?;
            let up = (layers.index(&chosen.layer)? + 1..layers.rids.len())
                .find(|&j| layers.is_active(j))?;
            Some((t.id.clone(), up))
        })?;
        if probe.next_at.is_none() {
            // The first time a track is held down: wait one interval before probing.
            probe.next_at = Some(now + interval);
            return None;
        }
        tracing::debug!(track = %held, layer, estimate, "bandwidth probe");
        probe.running = Some((held.clone(), layer, now, estimate));
        Some((held, layer))
    }
}
