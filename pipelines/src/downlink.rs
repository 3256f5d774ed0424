//! Downlink estimation: how much a subscriber's link can take, from its transport-wide
//! congestion-control feedback.
//!
//! Each peer's webrtcbin gets, through `request-aux-sender`, a bin `laminartx ! rtpgccbwe`
//! right before its rtpsession's send path (one per transport: max-bundle makes it one per
//! peer). `rtpgccbwe` (gst-plugins-rs, crate `gst-plugin-rtp`, registered here on first use)
//! reads the `RTPTWCCPackets` events rtpsession sends upstream for each TWCC feedback of the
//! subscriber, runs Google Congestion Control (delay- and loss-based), paces what it sends at
//! the estimate (holding at most ~30 ms), and notifies `estimated-bitrate`. Notable changes
//! become [`MediaEvent::DownlinkEstimate`]; the room picks simulcast layers to fit.
//!
//! The estimator reacts to loss within a second or two; a link that suddenly drops most
//! packets (policing) freezes the picture until then. `laminartx` measures the subscriber's
//! loss from its NACKs over 200 ms windows (`loss-fraction`); a window with at least
//! [`LOSS_REPORTED`] lost becomes [`MediaEvent::DownlinkLoss`], on which the room cuts the
//! subscriber's layers at once.
//!
//! For the feedback to exist, subscriber m-lines are answered with `transport-cc` (extmap and
//! `rtcp-fb`), and each forwarder output carries a TWCC header extension under the
//! subscriber's id (`laminaforwarder`'s `twcc-ext-id`), whose sequence number rtpsession writes.

use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use gst::prelude::*;
use tokio::sync::mpsc::UnboundedSender;

use crate::ids::PeerId;
use crate::MediaEvent;

/// GStreamer factory name of the estimator.
pub const ESTIMATOR_FACTORY: &str = "rtpgccbwe";

/// Highest estimate `rtpgccbwe` may reach, in bit/s (its default, 8.192 Mbit/s, is below what
/// three high simulcast layers can take).
const MAX_BITRATE: u32 = 20_000_000;
/// Smallest change of the estimate that is reported at once.
const NOTABLE: f64 = 0.05;
/// Longest time an unchanged-enough estimate goes unreported.
const REFRESH: Duration = Duration::from_secs(1);
/// Least loss share of a window that is reported (the room acts from 10 %; lower shares are
/// left to repair).
pub const LOSS_REPORTED: f64 = 0.05;

/// Whether `rtpgccbwe` can be made (registering the `rsrtp` plugin statically on first call).
pub(crate) fn available() -> bool {
    static AVAILABLE: OnceLock<bool> = OnceLock::new();
    *AVAILABLE.get_or_init(|| {
        if gst::ElementFactory::find(ESTIMATOR_FACTORY).is_some() {
            return true;
        }
        match gstrsrtp::plugin_register_static() {
            Ok(()) => gst::ElementFactory::find(ESTIMATOR_FACTORY).is_some(),
            Err(e) => {
                tracing::warn!("no downlink estimation: cannot register rtpgccbwe: {e}");
                false
            }
        }
    })
}

/// Answers webrtcbin's `request-aux-sender` with `rtx` followed by an estimator whose notable
/// estimates go to `events` as `DownlinkEstimate` for `peer`. Without the estimator (not
/// registered), `rtx` alone.
pub(crate) fn connect_aux_sender(
    webrtc: &gst::Element,
    peer: PeerId,
    events: UnboundedSender<MediaEvent>,
    rtx: fn() -> Option<gst::Element>,
) {
    let estimate = available();
    webrtc.connect("request-aux-sender", false, move |_| {
        let rtx = rtx()?;
        report_loss(&rtx, peer.clone(), events.clone());
        if !estimate {
            return Some(rtx.to_value());
        }
        match send_bin(&rtx, &peer, &events) {
            Ok(bin) => Some(bin.to_value()),
            Err(e) => {
                tracing::warn!(%peer, "no downlink estimation for this peer: {e}");
                Some(rtx.to_value())
            }
        }
    });
}

/// Has the estimator inside `webrtc` (a peer's webrtcbin) continue from `bps` if it estimates
/// less (`MediaCommand::SeedDownlinkEstimate`). GCC alone regrows by about 8 % a second, and
/// its loss controller, fed a policed period's losses a moment late, can drop it to a fraction
/// of what the link carries again; a passed probe measured what the link carries.
pub(crate) fn seed(webrtc: &gst::Element, bps: u64) {
    let Some(bwe) = estimator_in(webrtc) else {
        return;
    };
    let bps = u32::try_from(bps.min(u64::from(MAX_BITRATE))).unwrap_or(MAX_BITRATE);
    if bwe.property::<u32>("estimated-bitrate") < bps {
        tracing::debug!(bps, "downlink estimate seeded by a probe");
        bwe.set_property("estimated-bitrate", bps);
    }
}

/// The estimator somewhere inside `bin` (a peer's webrtcbin: inside its rtpbin's aux sender).
fn estimator_in(bin: &gst::Element) -> Option<gst::Element> {
    let bin = bin.downcast_ref::<gst::Bin>()?;
    bin.iterate_recurse()
        .into_iter()
        .flatten()
        .find(|e| e.factory().is_some_and(|f| f.name() == ESTIMATOR_FACTORY))
}

/// Sends `rtx`'s notable `loss-fraction`s as `DownlinkLoss` for `peer`.
fn report_loss(rtx: &gst::Element, peer: PeerId, events: UnboundedSender<MediaEvent>) {
    if rtx.find_property("loss-fraction").is_none() {
        return;
    }
    rtx.connect_notify(Some("loss-fraction"), move |rtx, _| {
        let fraction = rtx.property::<f64>("loss-fraction");
        if fraction >= LOSS_REPORTED {
            let _ = events.send(MediaEvent::DownlinkLoss {
                peer: peer.clone(),
                fraction,
            });
        }
    });
}

/// `rtx ! rtpgccbwe` in a bin with ghost pads `sink` and `src`.
fn send_bin(
    rtx: &gst::Element,
    peer: &PeerId,
    events: &UnboundedSender<MediaEvent>,
) -> Result<gst::Element, glib::BoolError> {
    let bwe = gst::ElementFactory::make(ESTIMATOR_FACTORY)
        .property("max-bitrate", MAX_BITRATE)
        .build()?;
    let bin = gst::Bin::builder().name("downlink").build();
    bin.add_many([rtx, &bwe])?;
    rtx.link(&bwe)?;
    let pad = |e: &gst::Element, name: &str| {
        e.static_pad(name)
            .ok_or_else(|| glib::bool_error!("no {name} pad"))
    };
    let sink = gst::GhostPad::builder_with_target(&pad(rtx, "sink")?)?
        .name("sink")
        .build();
    let src = gst::GhostPad::builder_with_target(&pad(&bwe, "src")?)?
        .name("src")
        .build();
    bin.add_pad(&sink)?;
    bin.add_pad(&src)?;
    let reporter = Reporter::new(peer.clone(), events.clone());
    bwe.connect_notify(Some("estimated-bitrate"), move |bwe, _| {
        reporter.estimate(u64::from(bwe.property::<u32>("estimated-bitrate")));
    });
    Ok(bin.upcast())
}

/// Turns the estimator's notifications (every TWCC feedback that moved it, up to ten a
/// second) into events: a change of [`NOTABLE`] or more at once, otherwise at most one per
/// [`REFRESH`].
struct Reporter {
    peer: PeerId,
    events: UnboundedSender<MediaEvent>,
    /// The last value reported and when; only the estimator's thread takes it.
    last: Mutex<Option<(u64, Instant)>>,
}

impl Reporter {
    fn new(peer: PeerId, events: UnboundedSender<MediaEvent>) -> Self {
        Self {
            peer,
            events,
            last: Mutex::new(None),
        }
    }

    fn estimate(&self, bps: u64) {
        let now = Instant::now();
        let report = {
            let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
            let due = last.is_none_or(|(v, at)| notable(v, bps) || now - at >= REFRESH);
            if due {
                *last = Some((bps, now));
            }
            due
        };
        if report {
            let _ = self.events.send(MediaEvent::DownlinkEstimate {
                peer: self.peer.clone(),
                bps,
            });
        }
    }
}

/// Whether `new` differs from `old` by [`NOTABLE`] or more.
fn notable(old: u64, new: u64) -> bool {
    let base = old.max(1) as f64;
    (new as f64 - old as f64).abs() / base >= NOTABLE
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_notable_changes_are_reported_at_once() {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let r = Reporter::new(PeerId::from("p"), tx);
        for bps in [1_000_000, 1_020_000, 1_049_000, 1_100_000, 900_000] {
            r.estimate(bps);
        }
        let mut got = Vec::new();
        while let Ok(MediaEvent::DownlinkEstimate { bps, .. }) = rx.try_recv() {
            got.push(bps);
        }
        assert_eq!(got, [1_000_000, 1_100_000, 900_000]);
        assert!(notable(0, 1) && !notable(100, 104) && notable(100, 95));
    }

    #[test]
    fn the_estimator_registers_and_builds_behind_laminartx() {
        gst::init().unwrap();
        assert!(available());
        let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
        let rtx = gst::ElementFactory::make("identity").build().unwrap();
        let bin = send_bin(&rtx, &PeerId::from("p"), &tx).unwrap();
        assert!(bin.static_pad("sink").is_some() && bin.static_pad("src").is_some());
    }

    #[test]
    fn a_seed_raises_the_estimate_and_never_lowers_it() {
        gst::init().unwrap();
        assert!(available());
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let rtx = gst::ElementFactory::make("identity").build().unwrap();
        // Nested as in webrtcbin (webrtcbin > rtpbin > the aux sender bin).
        let outer = gst::Bin::new();
        outer
            .add(&send_bin(&rtx, &PeerId::from("p"), &tx).unwrap())
            .unwrap();
        let outer = outer.upcast::<gst::Element>();
        let estimate = || {
            estimator_in(&outer)
                .expect("the estimator inside")
                .property::<u32>("estimated-bitrate")
        };
        let start = estimate();
        seed(&outer, u64::from(start) + 3_000_000);
        assert_eq!(estimate(), start + 3_000_000);
        // The room hears of it as of any estimate.
        assert!(matches!(
            rx.try_recv(),
            Ok(MediaEvent::DownlinkEstimate { bps, .. }) if bps == u64::from(start) + 3_000_000
        ));
        seed(&outer, 500_000);
        assert_eq!(
            estimate(),
            start + 3_000_000,
            "a lower seed changes nothing"
        );
        seed(&outer, 100_000_000);
        assert_eq!(
            estimate(),
            MAX_BITRATE,
            "bounded by the estimator's maximum"
        );
    }
}
