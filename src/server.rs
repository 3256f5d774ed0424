//! Wiring: starts the rooms registry and the HTTP server (and, with the media engine, TURN).

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::config::Config;
use crate::http::{routes, AppState};
use crate::room::{actor, Rooms};

/// A running server.
pub struct Server {
    /// The address HTTP/WebSocket listens on.
    pub addr: SocketAddr,
    /// The rooms registry (for tests and debugging).
    pub rooms: Rooms,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl Server {
    /// Stops accepting connections and waits for the HTTP server to finish.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let _ = (&mut self.task).await;
    }
}

/// Starts a server with `config`; returns once it listens.
pub async fn start(config: Config) -> anyhow::Result<Server> {
    gst::init()?;
    gstlamina::plugin_register_static()?;
    let config = Arc::new(config);
    let rooms = Rooms::new(config.max_rooms, actor::spawner(config.clone()));
    let state = AppState {
        config: config.clone(),
        rooms: rooms.clone(),
    };
    let (tx, rx) = oneshot::channel::<()>();
    let (addr, fut) = warp::serve(routes(state)).try_bind_with_graceful_shutdown(config.listen, async {
        let _ = rx.await;
    })?;
    tracing::info!(%addr, "lamina listening");
    let task = tokio::spawn(fut);
    Ok(Server {
        addr,
        rooms,
        shutdown: Some(tx),
        task,
    })
}
