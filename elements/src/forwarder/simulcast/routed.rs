//! What [`Simulcast`](super::Simulcast) tells its callers: a src pad's layers
//! ([`RouteLayers`]), what to do with one packet of a layer sink ([`Routed`], [`Verdict`]) and
//! the outcome of a keyframe request ([`LayerKeyframe`]).

use std::sync::Arc;

use super::super::rewrite::Input;

/// A src pad's wanted and current layer.
#[derive(Debug, Clone)]
pub(in crate::forwarder) struct RouteLayers {
    /// The pad's `layer` (`None` = "").
    pub wanted: Option<Arc<str>>,
    /// The layer forwarded now.
    pub current: Option<Arc<str>>,
}

/// Why a packet of a layer sink is not forwarded, if it is not.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(in crate::forwarder) enum Verdict {
    /// Forwarded to the `targets`.
    #[default]
    Forward,
    /// The pad's RID is unknown, or the packet carries a RID that is not accepted.
    UnknownRid,
    /// Another sink pad took the RID over.
    Superseded,
    /// No src pad has the layer as current or wanted layer.
    Paused,
    /// The sink pad is not (anymore) a layer sink of this element.
    Released,
}

/// Src pads a packet goes to, each with whether it switched to the packet's layer with it: on
/// the stack up to 16.
pub(in crate::forwarder) type Targets =
    smallvec::SmallVec<[(super::super::LaminaForwarderPad, bool); 16]>;

/// What the streaming thread must do with one packet of a layer sink.
#[derive(Debug, Default)]
pub(in crate::forwarder) struct Routed {
    pub verdict: Verdict,
    /// The rewriter input (valid when forwarded).
    pub input: Option<Input>,
    /// The normalised layer caps.
    pub caps: Option<gst::Caps>,
    /// Id of the TWCC header extension in the caps of the packet's layer sink (0 = none).
    pub twcc_in_id: u8,
    /// Src pads to push to, and whether each switched to this layer with this packet.
    pub targets: Targets,
    /// Src pads that switched with this packet (for `lamina-layer-switched`).
    pub switched: Vec<(super::super::LaminaForwarderPad, Arc<str>)>,
    /// The new `active-layers` value when it changed.
    pub layers_changed: Option<String>,
    /// Send a force-key-unit upstream on this layer sink pad.
    pub keyframe_request: Option<gst::Pad>,
}

/// Outcome of a keyframe request for a layer.
#[derive(Debug)]
pub(in crate::forwarder) enum LayerKeyframe {
    /// No sink pad carries the layer (yet); the first packets of a pending switch will ask.
    NoSink,
    /// Throttled; retried on a later packet while a switch to the layer is pending.
    Throttled,
    /// Send it on this sink pad.
    Send(gst::Pad),
}
