//! Embedded TURN server for the relay-only browser client.
//!
//! The browser (`iceTransportPolicy: "relay"`) allocates a relay here with TURN REST credentials
//! from [`rest_credentials`] and reaches `webrtcbin`'s host candidates through it. Built on the
//! `turn` crate (webrtc-rs) over UDP, with three additions:
//! - TURN REST usernames `"<expiry>:<peer id>"` checked against the shared secret;
//! - a peer filter ([`AllowedPeers`]): CreatePermission / ChannelBind naming a disallowed peer
//!   are refused with 403, and relayed datagrams to or from a disallowed peer (e.g. a Send
//!   indication to another port of an allowed IP) are silently dropped;
//! - counters for metrics ([`TurnServer::allocation_count`], [`TurnServer::auth_failures`],
//!   [`TurnServer::peer_denials`]).
//!
//! The server runs on a tokio runtime of its own whose threads are named [`THREAD_NAME`] (one
//! worker per core): relayed datagrams never queue behind signalling work on the main runtime,
//! and the TURN server's CPU shows under that name in `/proc/<pid>/task/*/comm`.
//!
//! Secrets and passwords are never logged.

mod auth;
mod credentials;
mod filter;
mod gate;
mod relay;

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::sync::oneshot;
use turn::server::config::{ConnConfig, ServerConfig};
use turn::server::Server;

pub use credentials::{rest_credentials, TurnCredentials};
pub use filter::AllowedPeers;

use auth::RestAuth;
use gate::GateConn;
use relay::FilteredRelayGenerator;

/// How long [`TurnServer::close`] waits for the crate to release its sockets.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// Name of the thread the TURN server runs on.
pub const THREAD_NAME: &str = "lamina-turn";

/// Configuration of the embedded TURN server.
#[derive(Clone)]
pub struct TurnConfig {
    /// UDP listen address (port 0 = any free port).
    pub listen: SocketAddr,
    /// Address of the relayed sockets (the public IP, e.g. 127.0.0.1 in tests).
    pub relay_ip: IpAddr,
    /// Inclusive port range of relayed sockets; `(0, 0)` = any free port.
    pub relay_port_range: (u16, u16),
    /// TURN realm, e.g. `"lamina"`.
    pub realm: String,
    /// TURN REST shared secret.
    pub secret: String,
    /// Where relayed traffic may go.
    pub allowed_peers: AllowedPeers,
}

impl fmt::Debug for TurnConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TurnConfig")
            .field("listen", &self.listen)
            .field("relay_ip", &self.relay_ip)
            .field("relay_port_range", &self.relay_port_range)
            .field("realm", &self.realm)
            .field("secret", &"<redacted>")
            .field("allowed_peers", &self.allowed_peers)
            .finish()
    }
}

/// Errors starting the TURN server.
#[derive(Debug, thiserror::Error)]
pub enum TurnError {
    /// The configuration is inconsistent.
    #[error("invalid TURN configuration: {0}")]
    InvalidConfig(String),
    /// Binding the listening socket failed.
    #[error("cannot bind TURN socket {addr}: {source}")]
    Bind {
        /// The listen address.
        addr: SocketAddr,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The `turn` crate refused to start.
    #[error("TURN server: {0}")]
    Server(#[from] turn::Error),
    /// The TURN thread or its runtime could not start.
    #[error("TURN thread: {0}")]
    Thread(#[source] std::io::Error),
}

/// Counters shared by the gate, the relayed sockets and [`TurnServer`].
#[derive(Debug, Default)]
pub(crate) struct Stats {
    allocations: AtomicUsize,
    auth_failures: AtomicU64,
    peer_denials: AtomicU64,
}

/// A running embedded TURN server (UDP), on its own thread; dropping it stops the thread too
/// (without waiting for it).
pub struct TurnServer {
    /// Tells the TURN thread to close the server and end (dropped: the same).
    stop: Option<oneshot::Sender<()>>,
    local_addr: SocketAddr,
    stats: Arc<Stats>,
    /// Fires when the TURN thread has dropped its runtime, and with it every socket.
    released: oneshot::Receiver<()>,
}

impl fmt::Debug for TurnServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TurnServer")
            .field("local_addr", &self.local_addr)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl TurnServer {
    /// Binds the UDP socket and starts serving on a tokio runtime of its own (threads named
    /// [`THREAD_NAME`], one worker per core); returns once it listens.
    pub async fn start(config: TurnConfig) -> Result<TurnServer, TurnError> {
        validate(&config)?;
        let stats = Arc::new(Stats::default());
        let (ready_tx, ready) = oneshot::channel();
        let (stop, stopped) = oneshot::channel::<()>();
        let (released_tx, released) = oneshot::channel();
        let thread_stats = Arc::clone(&stats);
        std::thread::Builder::new()
            .name(THREAD_NAME.into())
            .spawn(move || {
                let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
                let runtime = match tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(workers)
                    .thread_name(THREAD_NAME)
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready_tx.send(Err(TurnError::Thread(e)));
                        return;
                    }
                };
                runtime.block_on(async move {
                    let server = match serve(config, thread_stats).await {
                        Ok((server, local_addr)) => {
                            let _ = ready_tx.send(Ok(local_addr));
                            server
                        }
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                            return;
                        }
                    };
                    // A stop message or a dropped TurnServer.
                    let _ = stopped.await;
                    if let Err(e) = server.close().await {
                        tracing::debug!(error = %e, "TURN server close");
                    }
                });
                // Dropping the runtime drops the crate's remaining tasks and with them the
                // listening socket and the relayed sockets; only then is the port free.
                drop(runtime);
                let _ = released_tx.send(());
            })
            .map_err(TurnError::Thread)?;
        let local_addr = ready.await.map_err(|_| {
            TurnError::Thread(std::io::Error::other("TURN thread ended before listening"))
        })??;
        Ok(TurnServer {
            stop: Some(stop),
            local_addr,
            stats,
            released,
        })
    }

    /// The bound UDP address (with the actual port when `listen` had port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Current number of allocations (relayed sockets); a relaxed atomic load.
    pub fn allocation_count(&self) -> usize {
        self.stats.allocations.load(Ordering::Relaxed)
    }

    /// Authenticated requests refused so far: malformed or expired username, wrong realm, or
    /// a MESSAGE-INTEGRITY that does not match the REST password (wrong password).
    pub fn auth_failures(&self) -> u64 {
        self.stats.auth_failures.load(Ordering::Relaxed)
    }

    /// Peer-filter hits so far: CreatePermission/ChannelBind requests refused with 403 plus
    /// relayed datagrams dropped because the peer is not in [`AllowedPeers`].
    pub fn peer_denials(&self) -> u64 {
        self.stats.peer_denials.load(Ordering::Relaxed)
    }

    /// Stops serving, closes all allocations and waits (up to 2 s) until the listening socket
    /// is released.
    pub async fn close(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if tokio::time::timeout(CLOSE_GRACE, &mut self.released)
            .await
            .is_err()
        {
            tracing::warn!(local_addr = %self.local_addr, "TURN server sockets still held after close");
        }
    }
}

/// Binds the listening socket and starts the crate's server on the current (TURN) runtime.
async fn serve(config: TurnConfig, stats: Arc<Stats>) -> Result<(Server, SocketAddr), TurnError> {
    let socket = UdpSocket::bind(config.listen)
        .await
        .map_err(|source| TurnError::Bind {
            addr: config.listen,
            source,
        })?;
    let local_addr = socket.local_addr().map_err(|source| TurnError::Bind {
        addr: config.listen,
        source,
    })?;
    let allowed = Arc::new(config.allowed_peers);
    let auth = Arc::new(RestAuth::new(config.secret, config.realm.clone()));
    let gate = GateConn::new(
        Arc::new(socket),
        local_addr,
        Arc::clone(&auth),
        Arc::clone(&allowed),
        Arc::clone(&stats),
    );
    let generator =
        FilteredRelayGenerator::new(config.relay_ip, config.relay_port_range, allowed, stats);
    let server = Server::new(ServerConfig {
        conn_configs: vec![ConnConfig {
            conn: Arc::new(gate),
            relay_addr_generator: Box::new(generator),
        }],
        realm: config.realm,
        auth_handler: auth,
        // 0 = the crate's default (10 minutes).
        channel_bind_timeout: Duration::ZERO,
        alloc_close_notify: None,
    })
    .await?;
    tracing::info!(%local_addr, relay_ip = %config.relay_ip, "TURN server listening");
    Ok((server, local_addr))
}

fn validate(config: &TurnConfig) -> Result<(), TurnError> {
    let invalid = |s: &str| Err(TurnError::InvalidConfig(s.to_owned()));
    match config.relay_port_range {
        (0, 0) => {}
        (0, _) | (_, 0) => {
            return invalid("relay_port_range: both ends must be non-zero, or (0, 0)")
        }
        (lo, hi) if lo > hi => return invalid("relay_port_range: start above end"),
        _ => {}
    }
    if config.relay_ip.is_unspecified() {
        return invalid("relay_ip must be a concrete address");
    }
    if config.realm.is_empty() {
        return invalid("realm is empty");
    }
    if config.secret.is_empty() {
        return invalid("secret is empty");
    }
    Ok(())
}
