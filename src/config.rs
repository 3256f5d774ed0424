//! Configuration of the `lamina` server: command-line flags, environment variables and an
//! optional TOML file.
//!
//! Every option is one field of [`Config`], settable three ways: a flag (`--turn-listen`), an
//! environment variable (`LAMINA_TURN_LISTEN`) and a key of the configuration file given with
//! `--config` (`turn_listen`: the field's name). [`resolve`] merges them: a flag or an
//! environment variable given explicitly wins over the file, which wins over the default
//! (clap's `ArgMatches::value_source` tells an explicit value from a default). [`FileConfig`]
//! is generated from the same field list as [`Config`], so the file cannot miss an option;
//! `lamina.example.toml` at the repository root lists every key with its default.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use clap::parser::ValueSource;
use clap::{ArgMatches, Parser};
use serde::{Deserialize, Serialize};

/// Defines [`Config`] and, from the same field list, [`FileConfig`]: one optional key per field,
/// with the field's name and type, and no other key.
macro_rules! options {
    (
        $(#[$meta:meta])*
        pub struct Config {
            $(
                $(#[$field_meta:meta])*
                pub $field:ident: $ty:ty,
            )*
        }
    ) => {
        $(#[$meta])*
        pub struct Config {
            $(
                $(#[$field_meta])*
                pub $field: $ty,
            )*
        }

        /// The contents of a configuration file: one optional key per [`Config`] field (same
        /// name, same type, e.g. `turn_listen = "0.0.0.0:3478"`); any other key is an error.
        #[derive(Debug, Default, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct FileConfig {
            $(
                #[serde(default)]
                $field: Option<$ty>,
            )*
        }

        impl FileConfig {
            /// Every key a configuration file may set, in the order of `--help`.
            pub const KEYS: &'static [&'static str] = &[$(stringify!($field)),*];

            /// The keys this file sets.
            pub fn keys_set(&self) -> Vec<&'static str> {
                let mut keys = Vec::new();
                $(
                    if self.$field.is_some() {
                        keys.push(stringify!($field));
                    }
                )*
                keys
            }

            /// Writes the values of this file into `config`, except those of the options for
            /// which `explicit` is true; returns the keys written.
            fn apply(self, config: &mut Config, explicit: impl Fn(&str) -> bool) -> Vec<&'static str> {
                let mut applied = Vec::new();
                $(
                    if let Some(value) = self.$field {
                        if !explicit(stringify!($field)) {
                            config.$field = value;
                            applied.push(stringify!($field));
                        }
                    }
                )*
                applied
            }
        }
    };
}

options! {
/// Lamina: a multi-party video-room server (SFU) on GStreamer.
///
/// Every option can also be set through the environment variable named in brackets, or in the
/// configuration file (`--config`).
#[derive(Debug, Clone, Parser, Serialize)]
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

    /// Estimate each subscriber's downlink from its transport-wide congestion-control (TWCC)
    /// feedback and fit its simulcast layers to the estimate. `false`: subscribers are sent no
    /// TWCC and layers follow loss and the subscriber's own choice only; saves the estimator's
    /// CPU (about a tenth of the forwarding cost; docs/performance.md §16).
    #[arg(
        long,
        env = "LAMINA_DOWNLINK_ESTIMATION",
        default_value_t = true,
        action = clap::ArgAction::Set
    )]
    pub downlink_estimation: bool,

    /// libsrtp2 for the media's SRTP: the OpenSSL build `scripts/setup.sh` installs (AES-NI;
    /// Debian's own is built on NSS and costs far more CPU per packet), or `system` for the
    /// system's. A path that does not exist keeps the system's too, with a warning.
    #[arg(
        long,
        env = "LAMINA_SRTP_LIBRARY",
        default_value = lamina_pipelines::srtp_library::DEFAULT_PATH
    )]
    pub srtp_library: PathBuf,

    /// Listen address of the embedded TURN server (UDP); port 0 picks a free port.
    #[arg(long, env = "LAMINA_TURN_LISTEN", default_value = "127.0.0.1:3478")]
    pub turn_listen: SocketAddr,

    /// Address browsers use to reach the TURN server (defaults to the TURN listen address).
    #[arg(long, env = "LAMINA_TURN_PUBLIC_IP")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub turn_public_ip: Option<IpAddr>,

    /// Shared secret of TURN REST credentials (random per start when unset). Prefer
    /// `--turn-secret-file` or the environment: command lines are visible to every local user.
    #[arg(long, env = "LAMINA_TURN_SECRET", hide_env_values = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub turn_secret: Option<Secret>,

    /// File holding the TURN secret (one line), instead of `--turn-secret`.
    #[arg(long, env = "LAMINA_TURN_SECRET_FILE", value_name = "FILE")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub turn_secret_file: Option<PathBuf>,

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
    #[serde(skip_serializing_if = "Option::is_none")]
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
    /// `displayName` of the endpoint metadata the client sends. Prefer `--jwt-secret-file` or
    /// the environment: command lines are visible to every local user.
    #[arg(long, env = "LAMINA_JWT_SECRET", hide_env_values = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwt_secret: Option<Secret>,

    /// File holding the room token secret (one line), instead of `--jwt-secret`.
    #[arg(long, env = "LAMINA_JWT_SECRET_FILE", value_name = "FILE")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwt_secret_file: Option<PathBuf>,

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
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key (PKCS#8, PKCS#1 or SEC1) of `--tls-cert`.
    #[arg(
        long,
        env = "LAMINA_TLS_KEY",
        value_name = "PEM",
        requires = "tls_cert"
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_key: Option<PathBuf>,

    /// Serve `/metrics` on this address (plain HTTP) instead of on `--listen`, e.g. a private
    /// interface only the Prometheus server reaches. Unset: `/metrics` is on `--listen`.
    #[arg(long, env = "LAMINA_METRICS_LISTEN", value_name = "ADDR")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metrics_listen: Option<SocketAddr>,

    /// Redis of a cluster (`redis://10.0.0.9:6379/0`; `redis://:PASSWORD@host` with a password).
    /// Set: this node registers there, places new rooms on the least loaded node and relays
    /// channels of rooms owned by other nodes. Unset: a single node, no Redis.
    #[arg(long, env = "LAMINA_REDIS_URL", hide_env_values = true, value_name = "URL")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redis_url: Option<Secret>,

    /// This node's id in the cluster: 1-64 letters, digits, `-`, `_` or `.`, unique among live
    /// nodes. Unset: a random one (`node-1a2b3c4d`).
    #[arg(long, env = "LAMINA_NODE_ID", value_name = "ID")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_id: Option<String>,

    /// The URL clients and other nodes reach this node's WebSocket at (`ws://10.0.0.5:4000`,
    /// `wss://n1.example.org`). Unset: `ws://` (or `wss://`) and the bound listen address, with
    /// `--public-ip` for an unspecified address.
    #[arg(long, env = "LAMINA_PUBLIC_URL", value_name = "URL")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_url: Option<String>,

    /// With `--redis-url`: on SIGTERM, first drain for up to this many seconds (take no new
    /// rooms, let the rooms end), then stop. 0: stop at once.
    #[arg(long, env = "LAMINA_DRAIN_TIMEOUT", default_value_t = 0, value_name = "SECS")]
    pub drain_timeout: u64,

    /// Log format: `text` for people, `json` (one JSON object per line) for log shipping.
    /// The level filter comes from `LAMINA_LOG` (default `info`).
    #[arg(long, env = "LAMINA_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}
}

/// Output format of the logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line (fields, spans, timestamp, level).
    Json,
}

/// A secret option value: its `Debug` never shows it, it has no `Display`, and it serializes
/// as `"<redacted>"`, so it cannot slip into a log line or `--print-config` by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

/// What a [`Secret`] shows instead of itself.
pub const REDACTED: &str = "<redacted>";

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
        f.write_str(REDACTED)
    }
}

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self(s.to_owned()))
    }
}

impl Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(REDACTED)
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Self)
    }
}

/// Each secret option with the option naming the file it may come from instead.
const SECRET_FILES: [(&str, &str); 2] = [
    ("turn_secret", "turn_secret_file"),
    ("jwt_secret", "jwt_secret_file"),
];

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

    /// Reads `turn_secret_file` and `jwt_secret_file` into `turn_secret` and `jwt_secret`
    /// where those are unset (the file's trailing line break removed). Returns a warning for
    /// each secret file every local user may read.
    pub fn read_secret_files(&mut self) -> anyhow::Result<Vec<String>> {
        let mut warnings = Vec::new();
        for (secret, file, key) in [
            (
                &mut self.turn_secret,
                &self.turn_secret_file,
                "turn_secret_file",
            ),
            (
                &mut self.jwt_secret,
                &self.jwt_secret_file,
                "jwt_secret_file",
            ),
        ] {
            if let (None, Some(path)) = (&*secret, file) {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read {key} {}", path.display()))?;
                let value = text.trim_end_matches(['\n', '\r']);
                if value.is_empty() {
                    bail!("{key} {} is empty", path.display());
                }
                *secret = Some(Secret::new(value));
                if let Some(mode) = world_readable(path) {
                    warnings.push(format!(
                        "secret file {} ({key}) is readable by every user (mode {mode:03o}); \
                         make it readable by lamina only (chmod o-r)",
                        path.display()
                    ));
                }
            }
        }
        Ok(warnings)
    }

    /// The configuration as a TOML configuration file: every option with its effective value,
    /// unset options left out, secrets as `"<redacted>"` (a secret read from a file as that
    /// file's path only).
    pub fn to_toml(&self) -> String {
        let mut shown = self.clone();
        if shown.turn_secret_file.is_some() {
            shown.turn_secret = None;
        }
        if shown.jwt_secret_file.is_some() {
            shown.jwt_secret = None;
        }
        toml::to_string(&shown).expect("the configuration is representable in TOML")
    }

    fn validate(&self) -> anyhow::Result<()> {
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            bail!("tls_cert and tls_key must be set together");
        }
        Ok(())
    }
}

impl FileConfig {
    /// Parses `text`, the contents of the configuration file `path`. Errors name the file, the
    /// line and the key, e.g. `lamina.toml, line 3: unknown key `lisen`, expected one of …`.
    pub fn parse(text: &str, path: &Path) -> anyhow::Result<FileConfig> {
        let document = toml::Deserializer::parse(text)
            .map_err(|e| file_error(path, text, e.span(), None, e.message()))?;
        serde_path_to_error::deserialize(document).map_err(|e| {
            let key = e.path().to_string();
            let key = (key != ".").then_some(key);
            file_error(path, text, e.inner().span(), key, e.inner().message())
        })
    }

    /// Reads and parses the configuration file `path`.
    pub fn read(path: &Path) -> anyhow::Result<(FileConfig, String)> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the configuration file {}", path.display()))?;
        Ok((Self::parse(&text, path)?, text))
    }
}

/// An error of the configuration file `path`, located by the byte `span` of `text`.
fn file_error(
    path: &Path,
    text: &str,
    span: Option<std::ops::Range<usize>>,
    key: Option<String>,
    message: &str,
) -> anyhow::Error {
    let message = message
        .trim_end()
        .replacen("unknown field", "unknown key", 1);
    let location = match span {
        Some(span) => {
            let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
            format!("{}, line {line}", path.display())
        }
        None => path.display().to_string(),
    };
    match key {
        Some(key) if !message.contains(&format!("`{key}`")) => {
            anyhow::anyhow!("{location}: key `{key}`: {message}")
        }
        _ => anyhow::anyhow!("{location}: {message}"),
    }
}

/// The permission bits of `path` when every user may read it.
fn world_readable(path: &Path) -> Option<u32> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o777;
    (mode & 0o004 != 0).then_some(mode)
}

/// The effective configuration and what the operator should hear about it.
#[derive(Debug)]
pub struct Resolved {
    /// Flags, environment and file merged, secrets read from their files.
    pub config: Config,
    /// Warnings to log (world-readable secrets, secrets on the command line).
    pub warnings: Vec<String>,
}

/// Merges the configuration file `file` (if any) under `config`, the options parsed from
/// `matches`: an option given as a flag or environment variable keeps that value, any other
/// takes the file's value if the file sets it, else keeps its default. A secret and its file
/// (`turn_secret`, `turn_secret_file`) count as one option: the one given by the strongest
/// source wins, both from the same source is an error. Then the secret files are read.
pub fn resolve(
    mut config: Config,
    file: Option<&Path>,
    matches: &ArgMatches,
) -> anyhow::Result<Resolved> {
    let explicit = |id: &str| {
        matches!(
            matches.value_source(id),
            Some(ValueSource::CommandLine | ValueSource::EnvVariable)
        )
    };
    let mut warnings = Vec::new();
    let mut from_file = Vec::new();
    if let Some(path) = file {
        let (parsed, _) = FileConfig::read(path)?;
        let set = parsed.keys_set();
        if set.iter().any(|k| SECRET_FILES.iter().any(|(s, _)| s == k)) {
            if let Some(mode) = world_readable(path) {
                warnings.push(format!(
                    "configuration file {} holds a secret and is readable by every user \
                     (mode {mode:03o}); make it readable by lamina only (chmod o-r) or move the \
                     secret to a *_secret_file",
                    path.display()
                ));
            }
        }
        from_file = parsed.apply(&mut config, explicit);
    }
    // Strength of the source of each option: flag, environment, file, default.
    let rank = |id: &str| match matches.value_source(id) {
        Some(ValueSource::CommandLine) => 3,
        Some(ValueSource::EnvVariable) => 2,
        _ if from_file.contains(&id) => 1,
        _ => 0,
    };
    for (secret, file) in SECRET_FILES {
        let secret_set = match secret {
            "turn_secret" => config.turn_secret.is_some(),
            _ => config.jwt_secret.is_some(),
        };
        let file_set = match file {
            "turn_secret_file" => config.turn_secret_file.is_some(),
            _ => config.jwt_secret_file.is_some(),
        };
        if !(secret_set && file_set) {
            continue;
        }
        let drop_file = match rank(secret).cmp(&rank(file)) {
            std::cmp::Ordering::Greater => true,
            std::cmp::Ordering::Less => false,
            std::cmp::Ordering::Equal => bail!("{secret} and {file} are both set; set only one"),
        };
        match (secret, drop_file) {
            ("turn_secret", true) => config.turn_secret_file = None,
            ("turn_secret", false) => config.turn_secret = None,
            (_, true) => config.jwt_secret_file = None,
            (_, false) => config.jwt_secret = None,
        }
    }
    for (id, flag) in [
        ("turn_secret", "--turn-secret"),
        ("jwt_secret", "--jwt-secret"),
    ] {
        if matches.value_source(id) == Some(ValueSource::CommandLine) {
            warnings.push(format!(
                "{flag} on the command line is visible to every local user (ps, /proc); \
                 prefer {flag}-file or the environment"
            ));
        }
    }
    warnings.extend(config.read_secret_files()?);
    config.validate()?;
    Ok(Resolved { config, warnings })
}
