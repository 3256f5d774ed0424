//! Room peer.
