//! HTTP layer: warp routes for the WebSocket, the web client, health, readiness and metrics.
//!
//! - [`routes`]: the route table, `/health`, `/ready`, `/metrics` (also served alone on
//!   `--metrics-listen`) and the rejection → status mapping.
//! - [`ws`]: `/socket/websocket`, adapting warp's WebSocket to [`crate::phoenix::socket::run`]
//!   (with the `--allowed-origin` check).
//! - [`web`]: the built browser client from `config.web_dir`.
//! - [`debug`]: room snapshots and pipeline graphs (only with `--debug-endpoints`).
//! - [`cluster`]: `/cluster` and the redirects of operator routes to a room's owner node.

pub mod cluster;
pub mod debug;
pub mod recordings;
pub mod routes;
pub mod web;
pub mod ws;

use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::auth::RoomTokens;
use crate::cluster::Cluster;
use crate::config::Config;
use crate::metrics::{Scraper, SharedTurn};
use crate::room::Rooms;

pub use routes::routes;

/// What every route handler may use.
#[derive(Clone)]
pub struct AppState {
    /// The server configuration.
    pub config: Arc<Config>,
    /// The rooms registry.
    pub rooms: Rooms,
    /// Verifier of room access tokens (with `--jwt-secret`).
    pub tokens: Option<Arc<RoomTokens>>,
    /// Cancelled when the server stops; every socket then closes.
    pub shutdown: CancellationToken,
    /// Tracks the running WebSocket tasks, so the server can wait for them when it stops.
    pub sockets: TaskTracker,
    /// Gathers `/metrics`.
    pub metrics: Arc<Scraper>,
    /// The embedded TURN server while it runs (for `/ready`).
    pub turn: SharedTurn,
    /// The cluster membership (with `--redis-url`), set once the node has registered.
    pub cluster: Option<Arc<std::sync::OnceLock<Cluster>>>,
}
