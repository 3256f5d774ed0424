//! Wiring: starts the TURN server, the rooms registry and the HTTP server.
