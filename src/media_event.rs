//! Membrane media events: the JSON carried in the `data` string of `"mediaEvent"` pushes.
