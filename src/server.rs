//! Wiring: starts the TURN server, the rooms registry and the HTTP server.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use lamina_pipelines::PipelineConfig;

use crate::config::Config;
use crate::http::{routes, AppState};
use crate::room::core::Limits;
use crate::room::{actor, pipeline_backend, Rooms};
use crate::turn::{AllowedPeers, TurnConfig, TurnServer};
use crate::turn_grant::RestTurnGrant;

/// A running server.
pub struct Server {
    /// The address HTTP/WebSocket listens on.
    pub addr: SocketAddr,
    /// The address browsers reach TURN at.
    pub turn_addr: SocketAddr,
    /// The rooms registry (for tests and debugging).
    pub rooms: Rooms,
    turn: Option<TurnServer>,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl Server {
    /// Closes every room, stops accepting connections and waits for the HTTP server to finish.
    pub async fn stop(mut self) {
        for room in self.rooms.handles() {
            room.send(crate::room::RoomCommand::Shutdown).await;
        }
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let _ = (&mut self.task).await;
        if let Some(turn) = self.turn.take() {
            turn.close().await;
        }
    }
}

/// Starts a server with `config`; returns once it listens.
pub async fn start(config: Config) -> anyhow::Result<Server> {
    gst::init()?;
    gstlamina::plugin_register_static()?;
    // The first webrtcbin of a process pays ~0.5 s for its DTLS certificate: pay it now, not
    // on the first join.
    let warm = std::time::Instant::now();
    tokio::task::spawn_blocking(lamina_pipelines::prewarm).await?;
    tracing::debug!(elapsed = ?warm.elapsed(), "media engine pre-warmed");
    let config = Arc::new(config);
    let secret = config
        .turn_secret
        .clone()
        .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());

    let (turn, turn_addr) = match config.external_turn {
        Some(addr) => (None, addr),
        None => {
            let turn = TurnServer::start(TurnConfig {
                listen: config.turn_listen,
                relay_ip: config.public_ip,
                relay_port_range: (config.turn_relay_port_min, config.turn_relay_port_max),
                realm: "lamina".into(),
                secret: secret.clone(),
                allowed_peers: AllowedPeers {
                    ips: vec![config.public_ip],
                    ports: (config.ice_port_min, config.ice_port_max),
                },
            })
            .await?;
            let local = turn.local_addr();
            let public = SocketAddr::new(config.turn_public_ip.unwrap_or(local.ip()), local.port());
            tracing::info!(addr = %local, public = %public, "embedded TURN server listening");
            (Some(turn), public)
        }
    };

    let pipeline_config = PipelineConfig {
        name: String::new(),
        ice_addresses: vec![config.public_ip],
        ice_port_range: (config.ice_port_min, config.ice_port_max),
        latency_ms: config.latency_ms,
    };
    let ctx = Arc::new(actor::RoomContext {
        limits: Limits {
            max_peers: config.max_peers_per_room,
            max_tracks_per_peer: config.max_tracks_per_peer,
        },
        turn: Arc::new(RestTurnGrant {
            addr: turn_addr,
            secret,
            ttl: Duration::from_secs(config.turn_ttl_secs),
        }),
        backend: Box::new(move |room| pipeline_backend::start(room, pipeline_config.clone())),
    });
    let rooms = Rooms::new(config.max_rooms, actor::spawner(ctx));
    let state = AppState {
        config: config.clone(),
        rooms: rooms.clone(),
    };
    let (tx, rx) = oneshot::channel::<()>();
    let (addr, fut) =
        warp::serve(routes(state)).try_bind_with_graceful_shutdown(config.listen, async {
            let _ = rx.await;
        })?;
    tracing::info!(%addr, "lamina listening");
    let task = tokio::spawn(fut);
    Ok(Server {
        addr,
        turn_addr,
        rooms,
        turn,
        shutdown: Some(tx),
        task,
    })
}
