//! Command-line and environment configuration of the `lamina` binary.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

/// Lamina: a multi-party video-room server (SFU) on GStreamer.
///
/// Every option can also be set through the environment variable named in brackets.
#[derive(Debug, Clone, Parser)]
#[command(name = "lamina", version, about, long_about = None)]
pub struct Config {
    /// HTTP/WebSocket listen address; port 0 picks a free port (the chosen address is logged).
    #[arg(long, env = "LAMINA_LISTEN", default_value = "127.0.0.1:4000")]
    pub listen: SocketAddr,

    /// Address announced in the server's ICE candidates and used as TURN relay address.
    #[arg(long, env = "LAMINA_PUBLIC_IP", default_value = "127.0.0.1")]
    pub public_ip: IpAddr,

    /// Lowest UDP port of the server's ICE (media) sockets.
    #[arg(long, env = "LAMINA_ICE_PORT_MIN", default_value_t = 50000)]
    pub ice_port_min: u16,

    /// Highest UDP port of the server's ICE (media) sockets.
    #[arg(long, env = "LAMINA_ICE_PORT_MAX", default_value_t = 59999)]
    pub ice_port_max: u16,

    /// Jitterbuffer latency of the server-side webrtcbins in milliseconds.
    #[arg(long, env = "LAMINA_LATENCY_MS", default_value_t = 30)]
    pub latency_ms: u32,

    /// Listen address of the embedded TURN server (UDP); port 0 picks a free port.
    #[arg(long, env = "LAMINA_TURN_LISTEN", default_value = "127.0.0.1:3478")]
    pub turn_listen: SocketAddr,

    /// Address browsers use to reach the TURN server (defaults to the TURN listen address).
    #[arg(long, env = "LAMINA_TURN_PUBLIC_IP")]
    pub turn_public_ip: Option<IpAddr>,

    /// Shared secret of TURN REST credentials (random per start when unset).
    #[arg(long, env = "LAMINA_TURN_SECRET", hide_env_values = true)]
    pub turn_secret: Option<Secret>,

    /// Lifetime of the TURN credentials handed to each peer, in seconds.
    #[arg(long, env = "LAMINA_TURN_TTL_SECS", default_value_t = 86400)]
    pub turn_ttl_secs: u64,

    /// Lowest UDP port of TURN relay allocations.
    #[arg(long, env = "LAMINA_TURN_RELAY_PORT_MIN", default_value_t = 49152)]
    pub turn_relay_port_min: u16,

    /// Highest UDP port of TURN relay allocations.
    #[arg(long, env = "LAMINA_TURN_RELAY_PORT_MAX", default_value_t = 49951)]
    pub turn_relay_port_max: u16,

    /// Announce this external TURN server (`host:port`, e.g. coturn with the same
    /// `--turn-secret`) instead of running the embedded one.
    #[arg(long, env = "LAMINA_EXTERNAL_TURN")]
    pub external_turn: Option<SocketAddr>,

    /// Largest accepted WebSocket frame, in bytes.
    #[arg(long, env = "LAMINA_MAX_FRAME_BYTES", default_value_t = 1024 * 1024)]
    pub max_frame_bytes: usize,

    /// Messages a socket may send per second (sustained; bursts up to twice that).
    #[arg(long, env = "LAMINA_MAX_EVENTS_PER_SEC", default_value_t = 200)]
    pub max_events_per_sec: u32,

    /// Largest number of peers in one room.
    #[arg(long, env = "LAMINA_MAX_PEERS_PER_ROOM", default_value_t = 16)]
    pub max_peers_per_room: usize,

    /// Largest number of tracks one peer may publish.
    #[arg(long, env = "LAMINA_MAX_TRACKS_PER_PEER", default_value_t = 8)]
    pub max_tracks_per_peer: usize,

    /// Largest number of rooms on this server.
    #[arg(long, env = "LAMINA_MAX_ROOMS", default_value_t = 100)]
    pub max_rooms: usize,

    /// Outbound messages queued per socket before a client that does not read is disconnected.
    #[arg(long, env = "LAMINA_OUTBOUND_QUEUE", default_value_t = 1024)]
    pub outbound_queue: usize,

    /// Seconds without any message (heartbeat included) before a socket is closed.
    #[arg(long, env = "LAMINA_IDLE_TIMEOUT_SECS", default_value_t = 60)]
    pub idle_timeout_secs: u64,

    /// Directory holding the built web client (`index.html`, `room.html`, `assets/`).
    #[arg(long, env = "LAMINA_WEB_DIR", default_value = "web/dist")]
    pub web_dir: PathBuf,

    /// Serve the debugging endpoints under `/debug/` (room listing, pipeline graphs).
    #[arg(long, env = "LAMINA_DEBUG_ENDPOINTS")]
    pub debug_endpoints: bool,

    /// Serve the recording API (`/rooms/<id>/recordings`) even without `--debug-endpoints`.
    /// It is an operator API: keep it off on servers reachable by participants.
    #[arg(long, env = "LAMINA_RECORDING_API")]
    pub recording_api: bool,

    /// Directory recordings are written to (one subdirectory per recording).
    #[arg(long, env = "LAMINA_RECORDINGS_DIR", default_value = "recordings")]
    pub recordings_dir: PathBuf,

    /// HS256 secret of room access tokens. When set, `phx_join` on `room:<id>` must carry
    /// `{"token": "<JWT>"}` with claims `room` (the room id), `name` (display name) and `exp`;
    /// other joins are refused with reason `unauthorized`. The token's `name` replaces the
    /// `displayName` of the endpoint metadata the client sends.
    #[arg(long, env = "LAMINA_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<Secret>,

    /// Accept WebSocket upgrades only with this `Origin` header (e.g. `https://meet.example.org`;
    /// repeatable, the environment variable takes a comma-separated list). When set, upgrades
    /// with any other Origin, or none, get 403. Unset: any origin.
    #[arg(
        long = "allowed-origin",
        env = "LAMINA_ALLOWED_ORIGINS",
        value_name = "ORIGIN",
        value_delimiter = ','
    )]
    pub allowed_origins: Vec<String>,

    /// PEM certificate chain; with `--tls-key` the listen address serves HTTPS and WSS only.
    #[arg(
        long,
        env = "LAMINA_TLS_CERT",
        value_name = "PEM",
        requires = "tls_key"
    )]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key (PKCS#8, PKCS#1 or SEC1) of `--tls-cert`.
    #[arg(
        long,
        env = "LAMINA_TLS_KEY",
        value_name = "PEM",
        requires = "tls_cert"
    )]
    pub tls_key: Option<PathBuf>,

    /// Log format: `text` for people, `json` (one JSON object per line) for log shipping.
    /// The level filter comes from `LAMINA_LOG` (default `info`).
    #[arg(long, env = "LAMINA_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

/// Output format of the logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line (fields, spans, timestamp, level).
    Json,
}

/// A secret option value: its `Debug` never shows it, and it has no `Display`, so it cannot
/// slip into a log line by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(secret: impl Into<String>) -> Self {
        Self(secret.into())
    }

    /// The secret itself, for the code that uses it (never for logs).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self(s.to_owned()))
    }
}

impl Config {
    /// A configuration for tests: loopback, any free ports, defaults elsewhere.
    pub fn for_tests() -> Self {
        let mut c = Config::parse_from(["lamina"]);
        c.listen = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0);
        c.turn_listen = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0);
        c.ice_port_min = 0;
        c.ice_port_max = 0;
        c.turn_relay_port_min = 0;
        c.turn_relay_port_max = 0;
        c
    }

    /// The idle timeout as a [`Duration`].
    pub fn idle_timeout(&self) -> Duration {
        Duration::from_secs(self.idle_timeout_secs)
    }
}
