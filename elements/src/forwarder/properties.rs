//! Element-level properties of `laminaforwarder`: the `keyframe-min-interval` setting, the
//! read-only statistics, the `request-keyframe` action signal, and the `ObjectImpl` exposing them.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::LazyLock;

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;

use super::imp::{lock, LaminaForwarder};
use super::keyframe::KeyUnitRequest;

const PROP_KEYFRAME_MIN_INTERVAL: &str = "keyframe-min-interval";
const PROP_FORWARDED_PACKETS: &str = "forwarded-packets";
const PROP_FORWARDED_BYTES: &str = "forwarded-bytes";
const PROP_KEYFRAME_REQUESTS: &str = "keyframe-requests";
const PROP_KEYFRAME_REQUESTS_DROPPED: &str = "keyframe-requests-dropped";
const SIGNAL_REQUEST_KEYFRAME: &str = "request-keyframe";

const DEFAULT_KEYFRAME_MIN_INTERVAL_MS: u32 = 500;

/// Writable element settings (first in the lock order).
#[derive(Debug, Clone, Copy)]
pub(super) struct Settings {
    pub(super) keyframe_min_interval_ms: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            keyframe_min_interval_ms: DEFAULT_KEYFRAME_MIN_INTERVAL_MS,
        }
    }
}

/// Element statistics, read through the read-only properties.
#[derive(Debug, Default)]
pub(super) struct Stats {
    pub(super) forwarded_packets: AtomicU64,
    pub(super) forwarded_bytes: AtomicU64,
    pub(super) keyframe_requests: AtomicU64,
    pub(super) keyframe_requests_dropped: AtomicU64,
}

impl ObjectImpl for LaminaForwarder {
    fn properties() -> &'static [glib::ParamSpec] {
        static PROPERTIES: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            vec![
                glib::ParamSpecUInt::builder(PROP_KEYFRAME_MIN_INTERVAL)
                    .nick("Keyframe min interval")
                    .blurb(
                        "Minimum time in milliseconds between two keyframe requests sent \
                         upstream; requests arriving sooner are dropped (0 = no throttling)",
                    )
                    .default_value(DEFAULT_KEYFRAME_MIN_INTERVAL_MS)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt64::builder(PROP_FORWARDED_PACKETS)
                    .nick("Forwarded packets")
                    .blurb("Packets pushed successfully, summed over all src pads")
                    .read_only()
                    .build(),
                glib::ParamSpecUInt64::builder(PROP_FORWARDED_BYTES)
                    .nick("Forwarded bytes")
                    .blurb("Bytes of the packets counted in forwarded-packets")
                    .read_only()
                    .build(),
                glib::ParamSpecUInt64::builder(PROP_KEYFRAME_REQUESTS)
                    .nick("Keyframe requests")
                    .blurb("Force-key-unit requests sent upstream to the publisher")
                    .read_only()
                    .build(),
                glib::ParamSpecUInt64::builder(PROP_KEYFRAME_REQUESTS_DROPPED)
                    .nick("Keyframe requests dropped")
                    .blurb("Keyframe requests dropped by the keyframe-min-interval throttle")
                    .read_only()
                    .build(),
            ]
        });
        PROPERTIES.as_ref()
    }

    fn signals() -> &'static [glib::subclass::Signal] {
        static SIGNALS: LazyLock<Vec<glib::subclass::Signal>> = LazyLock::new(|| {
            vec![glib::subclass::Signal::builder(SIGNAL_REQUEST_KEYFRAME)
                .action()
                .class_handler(|args| {
                    let element = args
                        .first()
                        .and_then(|v| v.get::<super::LaminaForwarder>().ok());
                    if let Some(element) = element {
                        element.imp().send_keyframe_request(
                            KeyUnitRequest::default(),
                            SIGNAL_REQUEST_KEYFRAME,
                        );
                    }
                    None
                })
                .build()]
        });
        SIGNALS.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        match pspec.name() {
            PROP_KEYFRAME_MIN_INTERVAL => {
                lock(&self.settings).keyframe_min_interval_ms =
                    value.get().expect("type checked upstream");
            }
            other => unreachable!("unknown writable property {other}"),
        }
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        let stat = |c: &AtomicU64| c.load(Ordering::Relaxed).to_value();
        match pspec.name() {
            PROP_KEYFRAME_MIN_INTERVAL => lock(&self.settings).keyframe_min_interval_ms.to_value(),
            PROP_FORWARDED_PACKETS => stat(&self.stats.forwarded_packets),
            PROP_FORWARDED_BYTES => stat(&self.stats.forwarded_bytes),
            PROP_KEYFRAME_REQUESTS => stat(&self.stats.keyframe_requests),
            PROP_KEYFRAME_REQUESTS_DROPPED => stat(&self.stats.keyframe_requests_dropped),
            other => unreachable!("unknown property {other}"),
        }
    }

    fn constructed(&self) {
        self.parent_constructed();
        self.obj()
            .add_pad(&self.sinkpad)
            .expect("a new element accepts its always sink pad");
    }
}
