//! HTTP layer: warp routes for the WebSocket, the web client, health and metrics.
