//! Element-level properties of `laminaforwarder`: the `keyframe-min-interval` setting, the
//! simulcast settings (`rid-extension-id`, `rids`, `layer-timeout`, read-only `active-layers`
//! and `layer-bytes`),
//! the read-only statistics, the `request-keyframe` action signal, and the `ObjectImpl` exposing
//! them.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::LazyLock;
use std::time::Duration;

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;

use super::imp::{lock, LaminaForwarder, CAT};
use super::rid::parse_rid_list;
use super::simulcast::DEFAULT_LAYER_TIMEOUT_MS;

const PROP_KEYFRAME_MIN_INTERVAL: &str = "keyframe-min-interval";
const PROP_FORWARDED_PACKETS: &str = "forwarded-packets";
const PROP_FORWARDED_BYTES: &str = "forwarded-bytes";
const PROP_KEYFRAME_REQUESTS: &str = "keyframe-requests";
const PROP_KEYFRAME_REQUESTS_DROPPED: &str = "keyframe-requests-dropped";
const PROP_RID_EXTENSION_ID: &str = "rid-extension-id";
const PROP_RIDS: &str = "rids";
const PROP_LAYER_TIMEOUT: &str = "layer-timeout";
const PROP_ACTIVE_LAYERS: &str = "active-layers";
const PROP_LAYER_BYTES: &str = "layer-bytes";
const PROP_DROPPED_UNKNOWN_RID: &str = "dropped-unknown-rid";
const PROP_LAYER_SWITCHES: &str = "layer-switches";
const PROP_TWCC_EXT_UNREWRITABLE: &str = "twcc-ext-unrewritable";
const SIGNAL_REQUEST_KEYFRAME: &str = "request-keyframe";

pub(super) const DEFAULT_KEYFRAME_MIN_INTERVAL_MS: u32 = 500;

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
    pub(super) dropped_unknown_rid: AtomicU64,
    pub(super) layer_switches: AtomicU64,
    pub(super) twcc_ext_unrewritable: AtomicU64,
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
                glib::ParamSpecUInt::builder(PROP_RID_EXTENSION_ID)
                    .nick("RID extension id")
                    .blurb(
                        "Id of the RTP header extension urn:ietf:params:rtp-hdrext:sdes:\
                         rtp-stream-id (RFC 8852) the sink_%u pads learn their RID from \
                         (0 = none)",
                    )
                    .maximum(255)
                    .default_value(0)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecString::builder(PROP_RIDS)
                    .nick("RIDs")
                    .blurb(
                        "Comma-separated simulcast RIDs accepted on the sink_%u pads, in the \
                         order of active-layers (empty = any RID of 1-16 [A-Za-z0-9_-])",
                    )
                    .default_value(Some(""))
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt::builder(PROP_LAYER_TIMEOUT)
                    .nick("Layer timeout")
                    .blurb(
                        "Milliseconds without packets after which a simulcast layer counts as \
                         inactive (noticed when packets of a layer arrive)",
                    )
                    .minimum(1)
                    .default_value(DEFAULT_LAYER_TIMEOUT_MS)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecString::builder(PROP_ACTIVE_LAYERS)
                    .nick("Active layers")
                    .blurb("Comma-separated RIDs of the simulcast layers whose packets arrive")
                    .read_only()
                    .build(),
                glib::ParamSpecString::builder(PROP_LAYER_BYTES)
                    .nick("Layer bytes")
                    .blurb(
                        "Bytes received per simulcast layer so far, as comma-separated \
                         rid=bytes pairs (for rates: read it twice)",
                    )
                    .read_only()
                    .build(),
                glib::ParamSpecUInt64::builder(PROP_DROPPED_UNKNOWN_RID)
                    .nick("Dropped for unknown RID")
                    .blurb(
                        "Packets of sink_%u pads dropped because their RID is not known yet \
                         or not accepted (not in rids, invalid, or another than the pad's)",
                    )
                    .read_only()
                    .build(),
                glib::ParamSpecUInt64::builder(PROP_LAYER_SWITCHES)
                    .nick("Layer switches")
                    .blurb("Times a src pad switched its current simulcast layer")
                    .read_only()
                    .build(),
                glib::ParamSpecUInt64::builder(PROP_TWCC_EXT_UNREWRITABLE)
                    .nick("TWCC extension unrewritable")
                    .blurb(
                        "Packets of src pads with twcc-ext-id forwarded without a TWCC element \
                         because their header extension block is malformed or cannot be \
                         converted to the one-byte form",
                    )
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
                        element.imp().request_keyframe_everywhere();
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
                let ms: u32 = value.get().expect("type checked upstream");
                lock(&self.settings).keyframe_min_interval_ms = ms;
                lock(&self.simulcast).config.keyframe_min_interval =
                    Duration::from_millis(u64::from(ms));
            }
            PROP_RID_EXTENSION_ID => {
                let id: u32 = value.get().expect("type checked upstream");
                lock(&self.simulcast).config.rid_extension_id = u8::try_from(id).unwrap_or(0);
            }
            PROP_RIDS => {
                let list = value
                    .get::<Option<String>>()
                    .expect("type checked upstream")
                    .unwrap_or_default();
                let (rids, invalid) = parse_rid_list(&list);
                if !invalid.is_empty() {
                    gst::warning!(CAT, imp = self, "ignoring invalid RIDs {invalid:?}");
                }
                lock(&self.simulcast).config.rids = rids;
            }
            PROP_LAYER_TIMEOUT => {
                lock(&self.simulcast).config.layer_timeout_ms =
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
            PROP_DROPPED_UNKNOWN_RID => stat(&self.stats.dropped_unknown_rid),
            PROP_LAYER_SWITCHES => stat(&self.stats.layer_switches),
            PROP_TWCC_EXT_UNREWRITABLE => stat(&self.stats.twcc_ext_unrewritable),
            PROP_RID_EXTENSION_ID => {
                u32::from(lock(&self.simulcast).config.rid_extension_id).to_value()
            }
            PROP_RIDS => {
                let sc = lock(&self.simulcast);
                let rids: Vec<&str> = sc.config.rids.iter().map(|r| &**r).collect();
                rids.join(",").to_value()
            }
            PROP_LAYER_TIMEOUT => lock(&self.simulcast).config.layer_timeout_ms.to_value(),
            PROP_ACTIVE_LAYERS => lock(&self.simulcast).active_layers().to_value(),
            PROP_LAYER_BYTES => lock(&self.simulcast).layer_bytes().to_value(),
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
