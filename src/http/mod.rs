//! HTTP layer: warp routes for the WebSocket, the web client, health and metrics.

use std::convert::Infallible;
use std::sync::Arc;

use warp::Filter;

use crate::config::Config;
use crate::room::Rooms;

/// What every route handler may use.
#[derive(Clone)]
pub struct AppState {
    /// The server configuration.
    pub config: Arc<Config>,
    /// The rooms registry.
    pub rooms: Rooms,
}

/// All routes of the server.
pub fn routes(
    _state: AppState,
) -> impl Filter<Extract = (impl warp::Reply,), Error = Infallible> + Clone {
    warp::path("health")
        .and(warp::path::end())
        .map(|| "ok")
        .recover(|_| async { Ok::<_, Infallible>(warp::http::StatusCode::NOT_FOUND) })
}
