//! Downlink estimation: how much a subscriber's link can take, from its transport-wide
//! congestion-control feedback.
//!
//! Each peer's webrtcbin gets `laminartx` as its aux sender (`request-aux-sender`), right
//! before its rtpsession's send path (one per transport: max-bundle makes it one per peer).
//! For each TWCC feedback of the subscriber, rtpsession sends an `RTPTWCCPackets` event
//! upstream (every reported packet with its send time, arrival time and size); a probe on
//! `laminartx`'s src pad hands it to the peer's [`Estimator`], an `rtpgccbwe` (gst-plugins-rs,
//! crate `gst-plugin-rtp`, registered here on first use) kept outside the media path. It runs
//! Google Congestion Control (delay- and loss-based) on those events alone and notifies
//! `estimated-bitrate`; notable changes become [`MediaEvent::DownlinkEstimate`], and the room
//! picks simulcast layers to fit.
//!
//! `rtpgccbwe` also paces what passes through it: a thread per peer woke every 5 ms and held
//! every packet in a queue until then (up to 30 ms). Forwarded media is paced by its publisher
//! already, and SFUs forward at once (Janus, mediasoup); in a room of 8 those threads took
//! 21–32 % of a core. So packets no longer pass through it: its src pad is activated for the
//! events and its pacing task stopped at once (docs/performance.md §5).
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
//! rtpsession numbers packets only when its send caps announce the id: `laminartx` announces it
//! ([`Estimator::announce_twcc`], its `twcc-ext-id`), not the forwarder outputs' caps
//! (`twcc-in-caps=false`), since caps announcing it into the bundle's `rtpfunnel` have the funnel
//! write a number of its own into every packet, which rtpsession overwrites.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use gst::prelude::*;
use tokio::sync::mpsc::UnboundedSender;

use gstlamina::forwarder::TWCC_PACKETS_EVENT;

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

/// Answers webrtcbin's `request-aux-sender` with `rtx`, whose loss shares go to `events` as
/// `DownlinkLoss` and, if `estimate`, whose TWCC events feed the returned estimator (notable
/// estimates go to `events` as `DownlinkEstimate` for `peer`). `None` when not `estimate` or
/// without the estimator (not registered or not made): then no estimates, and the peer's
/// subscriber m-lines are answered without `transport-cc`.
pub(crate) fn connect_aux_sender(
    webrtc: &gst::Element,
    peer: PeerId,
    events: UnboundedSender<MediaEvent>,
    rtx: fn() -> Option<gst::Element>,
    estimate: bool,
) -> Option<Estimator> {
    let estimator = (estimate && available())
        .then(|| Estimator::new(&peer, &events))
        .and_then(|made| {
            made.map_err(|e| tracing::warn!(%peer, "no downlink estimation for this peer: {e}"))
                .ok()
        });
    let feed = estimator
        .as_ref()
        .map(|e| (e.events_pad(), e.senders.clone()));
    webrtc.connect("request-aux-sender", false, move |_| {
        let rtx = rtx()?;
        report_loss(&rtx, peer.clone(), events.clone());
        if let Some((feed, senders)) = &feed {
            feed_twcc(&rtx, feed.clone());
            senders.add(&rtx);
        }
        Some(rtx.to_value())
    });
    estimator
}

/// A peer's aux senders (`laminartx`, one per transport) and the TWCC id they announce to
/// rtpsession.
#[derive(Debug, Default)]
struct Senders {
    inner: Mutex<(Vec<glib::WeakRef<gst::Element>>, u32)>,
}

impl Senders {
    /// A new aux sender: it announces the id known so far.
    fn add(&self, rtx: &gst::Element) {
        let id = {
            let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
            inner.0.push(rtx.downgrade());
            inner.1
        };
        if id != 0 {
            set_twcc_ext_id(rtx, id);
        }
    }

    /// Every aux sender, now and later, announces `id`.
    fn announce(&self, id: u32) {
        let now: Vec<gst::Element> = {
            let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
            if inner.1 == id {
                return;
            }
            inner.1 = id;
            let mut alive = Vec::new();
            inner.0.retain(|w| match w.upgrade() {
                Some(rtx) => {
                    alive.push(rtx);
                    true
                }
                None => false,
            });
            alive
        };
        for rtx in &now {
            set_twcc_ext_id(rtx, id);
        }
    }
}

fn set_twcc_ext_id(rtx: &gst::Element, id: u32) {
    if rtx.find_property("twcc-ext-id").is_some() {
        rtx.set_property("twcc-ext-id", id);
    }
}

/// A peer's `rtpgccbwe`, outside the media path: it only receives the TWCC events (its src pad
/// is active, its pacing task stopped). Deactivated when dropped.
#[derive(Debug)]
pub(crate) struct Estimator {
    bwe: gst::Element,
    senders: Arc<Senders>,
}

impl Estimator {
    /// An estimator reporting its notable estimates to `events` for `peer`.
    fn new(peer: &PeerId, events: &UnboundedSender<MediaEvent>) -> Result<Self, glib::BoolError> {
        let bwe = gst::ElementFactory::make(ESTIMATOR_FACTORY)
            .property("max-bitrate", MAX_BITRATE)
            .build()?;
        let reporter = Reporter::new(peer.clone(), events.clone());
        bwe.connect_notify(Some("estimated-bitrate"), move |bwe, _| {
            reporter.estimate(u64::from(bwe.property::<u32>("estimated-bitrate")));
        });
        let src = bwe
            .static_pad("src")
            .ok_or_else(|| glib::bool_error!("rtpgccbwe has no src pad"))?;
        // Events are taken only by an active (not flushing) pad; activating starts the pacing
        // task, which has nothing to pace here.
        src.set_active(true)?;
        src.stop_task()?;
        Ok(Self {
            bwe,
            senders: Arc::default(),
        })
    }

    /// Has rtpsession number the packets it sends to the peer that carry a TWCC element with
    /// `id` (the subscriber's one-byte id; forwarder outputs carry it without announcing it).
    pub(crate) fn announce_twcc(&self, id: u32) {
        self.senders.announce(id);
    }

    /// The pad the TWCC events are sent to.
    fn events_pad(&self) -> gst::Pad {
        self.bwe.static_pad("src").expect("checked in new")
    }

    /// Has the estimator continue from `bps` if it estimates less
    /// (`MediaCommand::SeedDownlinkEstimate`). GCC alone regrows by about 8 % a second, and its
    /// loss controller, fed a policed period's losses a moment late, can drop it to a fraction
    /// of what the link carries again; a passed probe measured what the link carries.
    pub(crate) fn seed(&self, bps: u64) {
        let bps = u32::try_from(bps.min(u64::from(MAX_BITRATE))).unwrap_or(MAX_BITRATE);
        if self.bwe.property::<u32>("estimated-bitrate") < bps {
            tracing::debug!(bps, "downlink estimate seeded by a probe");
            self.bwe.set_property("estimated-bitrate", bps);
        }
    }
}

impl Drop for Estimator {
    fn drop(&mut self) {
        let _ = self.events_pad().set_active(false);
    }
}

/// Takes the TWCC events that reach `rtx`'s src pad from rtpsession and sends them to the
/// estimator's `feed` pad instead of upstream (the forwarders have no use for them: the
/// publishers' own feedback is separate).
fn feed_twcc(rtx: &gst::Element, feed: gst::Pad) {
    let Some(src) = rtx.static_pad("src") else {
        return;
    };
    src.add_probe(gst::PadProbeType::EVENT_UPSTREAM, move |_, info| {
        let Some(gst::PadProbeData::Event(event)) = &info.data else {
            return gst::PadProbeReturn::Ok;
        };
        if !event.has_name(TWCC_PACKETS_EVENT) {
            return gst::PadProbeReturn::Ok;
        }
        if let Some(gst::PadProbeData::Event(event)) = info.data.take() {
            feed.send_event(event);
        }
        gst::PadProbeReturn::Handled
    });
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
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

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

    /// Counts the upstream events named `name` that reach `pad`.
    fn count_events(pad: &gst::Pad, name: &'static str) -> Arc<AtomicUsize> {
        let n = Arc::new(AtomicUsize::new(0));
        let seen = n.clone();
        pad.add_probe(gst::PadProbeType::EVENT_UPSTREAM, move |_, info| {
            if let Some(gst::PadProbeData::Event(e)) = &info.data {
                if e.has_name(name) {
                    seen.fetch_add(1, Ordering::SeqCst);
                }
            }
            gst::PadProbeReturn::Ok
        });
        n
    }

    #[test]
    fn twcc_events_at_laminartx_go_to_the_estimator_only() {
        gst::init().unwrap();
        assert!(available());
        let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
        let estimator = Estimator::new(&PeerId::from("p"), &tx).unwrap();
        let feed = estimator.events_pad();
        assert!(feed.is_active(), "takes events");
        assert_eq!(
            feed.task_state(),
            gst::TaskState::Stopped,
            "no pacing thread"
        );
        let at_estimator = count_events(&feed, TWCC_PACKETS_EVENT);

        // `rtx` (an identity here) with a pad upstream of it, as the forwarders' funnel is.
        let rtx = gst::ElementFactory::make("identity").build().unwrap();
        feed_twcc(&rtx, feed.clone());
        let upstream = gst::Pad::builder(gst::PadDirection::Src).build();
        upstream.set_active(true).unwrap();
        upstream.link(&rtx.static_pad("sink").unwrap()).unwrap();
        let twcc_upstream = count_events(&upstream, TWCC_PACKETS_EVENT);
        let other_upstream = count_events(&upstream, "other");
        rtx.set_state(gst::State::Playing).unwrap();

        let src = rtx.static_pad("src").unwrap();
        // rtpsession's events carry the packets reported (none here).
        let event = |name: &str| {
            use glib::translate::ToGlibPtr;
            let s = gst::Structure::new_empty(name);
            let packets = glib::ValueArray::new(std::iter::empty::<glib::Value>()).to_value();
            // SAFETY: the structure takes a copy of the value, an empty GValueArray (rtpgccbwe
            // reads a GValueArray; the typed setters only take values that are Send).
            unsafe {
                gst::ffi::gst_structure_set_value(
                    s.as_mut_ptr(),
                    c"packets".as_ptr(),
                    packets.to_glib_none().0,
                );
            }
            gst::event::CustomUpstream::new(s)
        };
        src.send_event(event(TWCC_PACKETS_EVENT));
        src.send_event(event("other"));
        assert_eq!(at_estimator.load(Ordering::SeqCst), 1);
        assert_eq!(twcc_upstream.load(Ordering::SeqCst), 0, "not passed on");
        assert_eq!(other_upstream.load(Ordering::SeqCst), 1, "others pass");

        drop(estimator);
        assert!(!feed.is_active(), "deactivated with the estimator");
        rtx.set_state(gst::State::Null).unwrap();
    }

    #[test]
    fn a_seed_raises_the_estimate_and_never_lowers_it() {
        gst::init().unwrap();
        assert!(available());
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let estimator = Estimator::new(&PeerId::from("p"), &tx).unwrap();
        let estimate = || estimator.bwe.property::<u32>("estimated-bitrate");
        let start = estimate();
        estimator.seed(u64::from(start) + 3_000_000);
        assert_eq!(estimate(), start + 3_000_000);
        // The room hears of it as of any estimate.
        assert!(matches!(
            rx.try_recv(),
            Ok(MediaEvent::DownlinkEstimate { bps, .. }) if bps == u64::from(start) + 3_000_000
        ));
        estimator.seed(500_000);
        assert_eq!(
            estimate(),
            start + 3_000_000,
            "a lower seed changes nothing"
        );
        estimator.seed(100_000_000);
        assert_eq!(
            estimate(),
            MAX_BITRATE,
            "bounded by the estimator's maximum"
        );
    }
}
