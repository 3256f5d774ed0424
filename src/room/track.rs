//! Room track.
