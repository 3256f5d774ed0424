//! Embedded TURN server for the relay-only browser client.
