//! Thin wrapper around one `laminaforwarder` element (`fwd-<track>`): one RTP sink fed by the
//! publisher's webrtcbin, one request pad `src_%u` per subscriber m-line.
//!
//! The element's API (from `elements/`): request-pad properties `active` (gate; false until
//! the subscriber is connected; switching it on requests a keyframe), `pt` and `ssrc` (rewrite
//! targets) and `layer` (simulcast layer); action signal `request-keyframe`; element properties
//! `forwarded-packets`, `rid-extension-id` and `rids` (simulcast); request sink pads `sink_%u`
//! (one per simulcast layer stream); bus messages `lamina-layers` and `lamina-layer-switched`.

use gst::prelude::*;

use crate::ids::TrackId;

/// GStreamer factory name of the forwarder.
pub const FACTORY: &str = "laminaforwarder";

/// Prefix of [`element_name`].
pub(crate) const ELEMENT_PREFIX: &str = "fwd-";

/// Pipeline element name of a track's forwarder.
pub fn element_name(track: &TrackId) -> String {
    format!("{ELEMENT_PREFIX}{track}")
}

/// One track's forwarder element.
#[derive(Debug, Clone)]
pub(crate) struct Forwarder {
    element: gst::Element,
}

impl Forwarder {
    /// Creates `fwd-<track>` (not yet in a bin).
    pub(crate) fn new(track: &TrackId) -> Result<Self, crate::MediaError> {
        let element = gst::ElementFactory::make(FACTORY)
            .name(element_name(track))
            .build()
            .map_err(|_| crate::MediaError::MissingElement(FACTORY.into()))?;
        Ok(Self { element })
    }

    /// The element.
    pub(crate) fn element(&self) -> &gst::Element {
        &self.element
    }

    /// The RTP sink pad.
    pub(crate) fn sink_pad(&self) -> gst::Pad {
        self.element
            .static_pad("sink")
            .expect("laminaforwarder has an always sink pad")
    }

    /// Requests an inactive output pad rewriting to `pt`/`ssrc`.
    pub(crate) fn request_src(&self, pt: u32, ssrc: u32) -> Option<gst::Pad> {
        let pad = self.element.request_pad_simple("src_%u")?;
        pad.set_property("pt", pt);
        pad.set_property("ssrc", ssrc);
        pad.set_property("active", false);
        Some(pad)
    }

    /// Makes the forwarder a simulcast one: its layers arrive on request sink pads `sink_%u`,
    /// told apart by the RID header extension `rid_ext`; only `rids` are accepted.
    pub(crate) fn set_simulcast(&self, rids: &[String], rid_ext: u32) {
        self.element.set_property("rid-extension-id", rid_ext);
        self.element.set_property("rids", rids.join(","));
    }

    /// Bytes received per simulcast layer so far (`layer-bytes`), in the layers' order.
    pub(crate) fn layer_bytes(&self) -> Vec<(String, u64)> {
        if self.element.find_property("layer-bytes").is_none() {
            return Vec::new();
        }
        parse_layer_bytes(&self.element.property::<String>("layer-bytes"))
    }

    /// The simulcast layer (RID) one output forwards; switched on the layer's next keyframe.
    /// `urgent`: nothing of the current layer is forwarded while waiting for it.
    pub(crate) fn set_layer(pad: &gst::Pad, layer: &str, urgent: bool) {
        pad.set_property("drop-while-switching", urgent);
        pad.set_property("layer", layer);
    }

    /// Makes one output carry the subscriber's TWCC header extension (id `id`), whose
    /// transport-wide sequence numbers the subscriber's rtpsession writes. The output's caps do
    /// not announce it (that would have the bundle's rtpfunnel number every packet too): the
    /// peer's `laminartx` announces it to rtpsession (`Estimator::announce_twcc`).
    pub(crate) fn set_twcc_ext(pad: &gst::Pad, id: u32) {
        if pad.find_property("twcc-ext-id").is_some() {
            pad.set_property("twcc-in-caps", false);
            pad.set_property("twcc-ext-id", id);
        }
    }

    /// Opens or closes the gate of one output. Opening requests a keyframe from the publisher.
    pub(crate) fn set_active(pad: &gst::Pad, active: bool) {
        pad.set_property("active", active);
    }

    /// Opens a gated output; returns, when the element's keyframe throttle swallowed the
    /// keyframe request that opening makes, how long until a retry can pass it.
    pub(crate) fn open(&self, pad: &gst::Pad) -> Option<std::time::Duration> {
        if pad.property::<bool>("active") {
            return None;
        }
        let dropped = self.stat("keyframe-requests-dropped");
        Self::set_active(pad, true);
        if self.stat("keyframe-requests-dropped") > dropped {
            let ms = self.element.property::<u32>("keyframe-min-interval");
            return Some(std::time::Duration::from_millis(u64::from(ms) + 20));
        }
        None
    }

    fn stat(&self, name: &str) -> u64 {
        if self.element.find_property(name).is_some() {
            self.element.property::<u64>(name)
        } else {
            0
        }
    }

    /// Asks the publisher for a keyframe (deduplicated by the element).
    pub(crate) fn request_keyframe(&self) {
        self.element.emit_by_name::<()>("request-keyframe", &[]);
    }

    /// Detaches one output in the safe order: gate closed, unlink from inside an IDLE probe
    /// (never waits for an in-flight push), then release the request pad.
    pub(crate) fn release_src(&self, pad: &gst::Pad) {
        Self::set_active(pad, false);
        crate::teardown::unlink_when_idle(pad);
        self.element.release_request_pad(pad);
    }
}

/// Parses `rid=bytes,rid=bytes` (`layer-bytes`); malformed pairs are skipped.
fn parse_layer_bytes(value: &str) -> Vec<(String, u64)> {
    value
        .split(',')
        .filter_map(|pair| {
            let (rid, bytes) = pair.split_once('=')?;
            Some((rid.to_owned(), bytes.parse().ok()?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn layer_bytes_parse_in_order_and_skip_garbage() {
        assert_eq!(
            super::parse_layer_bytes("l=10,m=x,h=30,=,q"),
            [("l".to_owned(), 10), ("h".to_owned(), 30)]
        );
        assert!(super::parse_layer_bytes("").is_empty());
    }
}
