//! The `lamina` command line: the server (no subcommand, every [`Config`] option as before) or
//! a tool subcommand such as `lamina publish`.
//!
//! ```text
//! lamina [--config FILE] [server options]       run the server (Config)
//! lamina [--config FILE] [...] --print-config   print the effective configuration
//! lamina publish --url … --room … --video "…"   publish GStreamer fragments into a room
//! lamina drain --redis-url … --node-id …        drain a cluster node
//! ```

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::config::Config;

/// Lamina: a multi-party video-room server (SFU) on GStreamer.
///
/// Without a subcommand it runs the server. Every server option can also be set through the
/// environment variable named in brackets.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "lamina",
    version,
    long_about = None,
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true
)]
pub struct Cli {
    /// Server options (used when no subcommand is given).
    #[command(flatten)]
    pub server: Config,

    /// TOML configuration file setting any server option by its long name with `_` for `-`
    /// (`turn_listen = "0.0.0.0:3478"`, `allowed_origins = [...]`; every key is in
    /// `lamina.example.toml`). Flags and environment variables override it.
    #[arg(long, env = "LAMINA_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Print the effective server configuration (file, environment and flags merged, secrets
    /// redacted) as TOML and exit.
    #[arg(long)]
    pub print_config: bool,

    /// A tool to run instead of the server.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Subcommands of `lamina`.
#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Join a room as a participant and publish media from gst-launch style pipeline
    /// fragments; leaves on Ctrl-C (SIGINT) or SIGTERM.
    Publish(PublishArgs),
    /// Drain a cluster node: it takes no new rooms, and stops once its rooms have ended.
    Drain(DrainArgs),
}

/// Options of `lamina drain`.
#[derive(Debug, Clone, Args)]
pub struct DrainArgs {
    /// The cluster's Redis.
    #[arg(
        long,
        env = "LAMINA_REDIS_URL",
        hide_env_values = true,
        value_name = "URL"
    )]
    pub redis_url: String,

    /// The node to drain.
    #[arg(long, env = "LAMINA_NODE_ID", value_name = "ID")]
    pub node_id: String,

    /// Wait until the node has stopped (its rooms ended), printing the rooms left.
    #[arg(long)]
    pub wait: bool,
}

/// Options of `lamina publish`.
#[derive(Debug, Clone, Args)]
pub struct PublishArgs {
    /// The server's Phoenix socket URL.
    #[arg(long, default_value = "ws://127.0.0.1:4000/socket/websocket")]
    pub url: String,

    /// Room to join.
    #[arg(long)]
    pub room: String,

    /// Display name of the participant.
    #[arg(long, default_value = "gstreamer")]
    pub name: String,

    /// Video pipeline fragment (gst-launch syntax) ending in a VP8 RTP payloader, e.g.
    /// "videotestsrc is-live=true ! video/x-raw,width=320,height=240 ! vp8enc deadline=1 !
    /// rtpvp8pay". Its payload type and SSRC are set by lamina.
    #[arg(long, value_name = "PIPELINE")]
    pub video: Option<String>,

    /// Audio pipeline fragment ending in an Opus RTP payloader, e.g.
    /// "audiotestsrc is-live=true ! opusenc ! rtpopuspay".
    #[arg(long, value_name = "PIPELINE")]
    pub audio: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_subcommand_is_the_server_with_its_flags() {
        let cli = Cli::parse_from(["lamina", "--listen", "127.0.0.1:4555", "--debug-endpoints"]);
        assert!(cli.command.is_none());
        assert_eq!(cli.server.listen.port(), 4555);
        assert!(cli.server.debug_endpoints);
    }

    #[test]
    fn publish_takes_fragments() {
        let cli = Cli::parse_from([
            "lamina",
            "publish",
            "--room",
            "r",
            "--name",
            "n",
            "--video",
            "videotestsrc ! vp8enc ! rtpvp8pay",
        ]);
        let Some(Command::Publish(args)) = cli.command else {
            panic!("publish expected");
        };
        assert_eq!(args.room, "r");
        assert_eq!(
            args.video.as_deref(),
            Some("videotestsrc ! vp8enc ! rtpvp8pay")
        );
        assert!(args.audio.is_none());
        assert!(Cli::try_parse_from([
            "lamina",
            "--listen",
            "127.0.0.1:1",
            "publish",
            "--room",
            "r"
        ])
        .is_err());
    }
}
