//! Wiring: starts the TURN server, the rooms registry, the HTTP(S) server, (with
//! `--metrics-listen`) the metrics server and (with `--redis-url`) the cluster membership, and
//! stops them.

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::{CancellationToken, DropGuard};
use tokio_util::task::TaskTracker;

use lamina_pipelines::PipelineConfig;

use crate::auth::RoomTokens;
use crate::cluster::{random_node_id, Cluster, NodeIdentity};
use crate::config::Config;
use crate::http::routes::metrics_routes;
use crate::http::{routes, AppState};
use crate::metrics::{Scraper, SharedTurn};
use crate::room::core::Limits;
use crate::room::{actor, pipeline_backend, RoomCommand, Rooms};
use crate::turn::{AllowedPeers, TurnConfig, TurnServer};
use crate::turn_grant::RestTurnGrant;

/// How long [`Server::stop`] waits for the rooms to close (their pipelines reaching NULL).
pub const ROOMS_STOP_TIMEOUT: Duration = Duration::from_secs(4);
/// How long [`Server::stop`] waits for the WebSockets to close.
pub const SOCKETS_STOP_TIMEOUT: Duration = Duration::from_secs(3);
/// How long [`Server::stop`] waits for the HTTP server to finish.
pub const HTTP_STOP_TIMEOUT: Duration = Duration::from_secs(2);

/// A running server.
pub struct Server {
    /// The address HTTP/WebSocket (or HTTPS/WSS with TLS) listens on.
    pub addr: SocketAddr,
    /// True when the listen address serves HTTPS/WSS.
    pub tls: bool,
    /// The address browsers reach TURN at.
    pub turn_addr: SocketAddr,
    /// The address serving `/metrics` when it is not `addr` (`--metrics-listen`).
    pub metrics_addr: Option<SocketAddr>,
    /// The rooms registry (for tests and debugging).
    pub rooms: Rooms,
    /// Gathers the `/metrics` values (for tests).
    pub metrics: Arc<Scraper>,
    /// The cluster membership (with `--redis-url`).
    pub cluster: Option<Cluster>,
    turn: SharedTurn,
    http_stop: CancellationToken,
    /// Stops the HTTP servers when the `Server` is dropped without [`Server::stop`].
    _http_stop_on_drop: DropGuard,
    sockets_stop: CancellationToken,
    sockets: TaskTracker,
    task: JoinHandle<()>,
    metrics_task: Option<JoinHandle<()>>,
}

impl Server {
    /// Stops the server, each step bounded in time: stop accepting connections; close every
    /// room (peers get an `error` media event "server shutting down" and `phx_close`) and wait
    /// for the room pipelines to reach NULL; close every WebSocket (1001); wait for the HTTP
    /// servers; close TURN.
    pub async fn stop(mut self) {
        if let Some(cluster) = &self.cluster {
            // First, so no join is placed here any more.
            cluster.leave().await;
        }
        self.http_stop.cancel();
        self.sockets_stop.cancel();
        self.sockets.close();
        // Twice: a room started by a join racing with the first pass is closed by the second.
        for _ in 0..2 {
            let rooms = self.rooms.handles();
            let stops = rooms.iter().map(|room| async move {
                let _ = tokio::time::timeout(ROOMS_STOP_TIMEOUT, async {
                    room.send(RoomCommand::Shutdown).await;
                    room.stopped().await;
                })
                .await;
            });
            futures_util::future::join_all(stops).await;
        }
        let left = self.rooms.len();
        if left > 0 {
            tracing::warn!(rooms = left, "rooms did not stop in time");
        }
        if tokio::time::timeout(SOCKETS_STOP_TIMEOUT, self.sockets.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                sockets = self.sockets.len(),
                "websockets did not close in time"
            );
        }
        if tokio::time::timeout(HTTP_STOP_TIMEOUT, &mut self.task)
            .await
            .is_err()
        {
            tracing::warn!("HTTP server did not stop in time");
            self.task.abort();
        }
        if let Some(mut task) = self.metrics_task.take() {
            if tokio::time::timeout(HTTP_STOP_TIMEOUT, &mut task)
                .await
                .is_err()
            {
                tracing::warn!("metrics server did not stop in time");
                task.abort();
            }
        }
        let turn = self.turn.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(turn) = turn {
            turn.close().await;
        }
        tracing::info!("server stopped");
    }
}

impl Server {
    /// Starts draining (a cluster node takes no new rooms); no effect on a single node.
    pub fn drain(&self) {
        if let Some(cluster) = &self.cluster {
            cluster.drain();
        }
    }

    /// Resolves once a draining cluster node has no room left (never on a single node).
    pub async fn drained(&self) {
        match &self.cluster {
            Some(cluster) => cluster.drained().await,
            None => std::future::pending().await,
        }
    }
}

type ServeFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Registers the `lamina` plugin once per process. Registering it again (a second server in
/// the same process, as in tests) replaces its element factories and frees the old ones, while
/// the element classes keep pointing at them: `gst_element_get_factory` then reads freed memory.
fn register_elements() -> anyhow::Result<()> {
    static REGISTERED: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    REGISTERED
        .get_or_init(|| gstlamina::plugin_register_static().map_err(|e| e.to_string()))
        .clone()
        .map_err(|e| anyhow::anyhow!("cannot register the lamina plugin: {e}"))
}

/// Loads the configured libsrtp2 before GStreamer can load the system's (once per process).
fn choose_srtp_library(path: &Path) {
    use lamina_pipelines::srtp_library::{use_library, SrtpLibrary, DEFAULT_PATH, SYSTEM};
    let chosen = (path != Path::new(SYSTEM)).then_some(path);
    match use_library(chosen) {
        Ok(SrtpLibrary::Loaded(path)) => {
            tracing::info!(path = %path.display(), "SRTP: libsrtp2 OpenSSL build")
        }
        Ok(SrtpLibrary::System) if chosen.is_none() => {
            tracing::info!("SRTP: the system's libsrtp2")
        }
        Ok(SrtpLibrary::System) if path == Path::new(DEFAULT_PATH) => tracing::info!(
            "SRTP: the system's libsrtp2 (scripts/setup.sh installs the faster build)"
        ),
        Ok(SrtpLibrary::System) => tracing::warn!(
            path = %path.display(),
            "SRTP: no such file; using the system's libsrtp2"
        ),
        Err(err) => tracing::warn!("SRTP: {err}; using the system's libsrtp2"),
    }
}

/// Starts a server with `config`; returns once it listens. Secrets still unset are read from
/// their files (`turn_secret_file`, `jwt_secret_file`).
pub async fn start(mut config: Config) -> anyhow::Result<Server> {
    for warning in config.read_secret_files()? {
        tracing::warn!("{warning}");
    }
    choose_srtp_library(&config.srtp_library);
    gst::init()?;
    register_elements()?;
    // The first webrtcbin of a process pays ~0.5 s for its DTLS certificate: pay it now, not
    // on the first join.
    let warm = std::time::Instant::now();
    tokio::task::spawn_blocking(lamina_pipelines::prewarm).await?;
    tracing::debug!(elapsed = ?warm.elapsed(), "media engine pre-warmed");
    let missing = routes::missing_elements();
    if !missing.is_empty() {
        tracing::warn!(
            ?missing,
            "GStreamer elements not found: rooms will fail and /ready answers 503"
        );
    }
    let config = Arc::new(config);
    let secret = config
        .turn_secret
        .as_ref()
        .map(|s| s.expose().to_owned())
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
    let turn: SharedTurn = Arc::new(Mutex::new(turn));

    let pipeline_config = PipelineConfig {
        name: String::new(),
        ice_addresses: vec![config.public_ip],
        ice_port_range: (config.ice_port_min, config.ice_port_max),
        latency_ms: config.latency_ms,
        downlink_estimation: config.downlink_estimation,
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
    let metrics = Arc::new(Scraper::new(rooms.clone(), turn.clone()));
    let state = AppState {
        config: config.clone(),
        rooms: rooms.clone(),
        tokens: config
            .jwt_secret
            .as_ref()
            .map(|s| Arc::new(RoomTokens::new(s))),
        shutdown: CancellationToken::new(),
        sockets: TaskTracker::new(),
        metrics: metrics.clone(),
        turn: turn.clone(),
        cluster: config
            .redis_url
            .as_ref()
            .map(|_| Arc::new(std::sync::OnceLock::new())),
    };
    let cluster_cell = state.cluster.clone();
    let (sockets_stop, sockets) = (state.shutdown.clone(), state.sockets.clone());
    let http_stop = CancellationToken::new();
    // Bound now, served once the main listener is bound too.
    let metrics_serve = match config.metrics_listen {
        Some(listen) => Some(
            warp::serve(metrics_routes(metrics.clone()))
                .try_bind_with_graceful_shutdown(listen, http_stop.clone().cancelled_owned())?,
        ),
        None => None,
    };
    let metrics_addr = metrics_serve.as_ref().map(|(addr, _)| *addr);
    let signal = http_stop.clone().cancelled_owned();
    let (addr, fut, tls): (SocketAddr, ServeFuture, bool) =
        match (&config.tls_cert, &config.tls_key) {
            (Some(cert), Some(key)) => {
                let (addr, fut) = warp::serve(routes(state))
                    .tls()
                    .cert_path(cert)
                    .key_path(key)
                    .try_bind_with_graceful_shutdown(config.listen, signal)?;
                (addr, Box::pin(fut), true)
            }
            (None, None) => {
                let (addr, fut) = warp::serve(routes(state))
                    .try_bind_with_graceful_shutdown(config.listen, signal)?;
                (addr, Box::pin(fut), false)
            }
            _ => anyhow::bail!("--tls-cert and --tls-key must be given together"),
        };
    let cluster = match (&config.redis_url, cluster_cell) {
        (Some(url), Some(cell)) => {
            let me = NodeIdentity {
                id: config.node_id.clone().unwrap_or_else(random_node_id),
                url: public_url(&config, addr, tls),
            };
            let cluster = Cluster::join(url.expose(), me, rooms.clone(), metrics.clone())
                .await
                .map_err(|e| anyhow::anyhow!("cannot join the cluster: {e}"))?;
            metrics.set_node(cluster.node_id());
            let _ = cell.set(cluster.clone());
            Some(cluster)
        }
        _ => None,
    };
    tracing::info!(%addr, tls, "lamina listening");
    let task = tokio::spawn(fut);
    let metrics_task = metrics_serve.map(|(addr, fut)| {
        tracing::info!(%addr, "metrics listening");
        tokio::spawn(fut)
    });
    Ok(Server {
        addr,
        tls,
        turn_addr,
        metrics_addr,
        rooms,
        metrics,
        cluster,
        turn,
        _http_stop_on_drop: http_stop.clone().drop_guard(),
        http_stop,
        sockets_stop,
        sockets,
        task,
        metrics_task,
    })
}

/// `--public-url`, or `ws(s)://` and the bound address (`--public-ip` for an unspecified IP).
fn public_url(config: &Config, addr: SocketAddr, tls: bool) -> String {
    if let Some(url) = &config.public_url {
        return url.trim_end_matches('/').to_owned();
    }
    let ip = if addr.ip().is_unspecified() {
        config.public_ip
    } else {
        addr.ip()
    };
    let scheme = if tls { "wss" } else { "ws" };
    format!("{scheme}://{}", SocketAddr::new(ip, addr.port()))
}
