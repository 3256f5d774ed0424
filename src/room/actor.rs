//! Room actor.
