//! HTTP layer: warp routes for the WebSocket, the web client and health.
//!
//! - [`routes`]: the route table and the rejection → status mapping.
//! - [`ws`]: `/socket/websocket`, adapting warp's WebSocket to [`crate::phoenix::socket::run`].
//! - [`web`]: the built browser client from `config.web_dir`.
//! - [`debug`]: room snapshots and pipeline graphs (only with `--debug-endpoints`).

pub mod debug;
pub mod routes;
pub mod web;
pub mod ws;

use std::sync::Arc;

use crate::config::Config;
use crate::room::Rooms;

pub use routes::routes;

/// What every route handler may use.
#[derive(Clone)]
pub struct AppState {
    /// The server configuration.
    pub config: Arc<Config>,
    /// The rooms registry.
    pub rooms: Rooms,
}
