//! The `lamina` binary: parses the command line; without a subcommand it merges the
//! configuration file (`--config`) under the flags and environment and starts the server
//! (stopping on SIGINT/SIGTERM), or prints the merged configuration (`--print-config`);
//! `lamina publish` publishes GStreamer fragments into a room; `lamina drain` drains a cluster
//! node.

use clap::{CommandFactory, FromArgMatches};
use tracing_subscriber::EnvFilter;

use lamina::cli::{Cli, Command};
use lamina::config::{self, Config, LogFormat};

fn main() -> anyhow::Result<()> {
    slice_allocator_off();
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    if let Some(Command::Publish(args)) = cli.command {
        init_logs(cli.server.log_format);
        let options = lamina_client::publish::PublishOptions {
            url: args.url,
            room: args.room,
            name: args.name,
            video: args.video,
            audio: args.audio,
        };
        return tokio::runtime::Runtime::new()?.block_on(async {
            Ok(lamina_client::publish::run(options, wait_for_signal()).await?)
        });
    }
    if let Some(Command::Drain(args)) = cli.command {
        init_logs(cli.server.log_format);
        return tokio::runtime::Runtime::new()?.block_on(drain(args));
    }
    let resolved = match config::resolve(cli.server, cli.config.as_deref(), &matches) {
        Ok(resolved) => resolved,
        Err(e) => {
            eprintln!("lamina: configuration error: {e:#}");
            std::process::exit(2);
        }
    };
    if cli.print_config {
        for warning in &resolved.warnings {
            eprintln!("lamina: warning: {warning}");
        }
        print!("{}", resolved.config.to_toml());
        return Ok(());
    }
    init_logs(resolved.config.log_format);
    for warning in &resolved.warnings {
        tracing::warn!("{warning}");
    }
    tokio::runtime::Runtime::new()?.block_on(run(resolved.config))
}

/// GLib 2.74 (Debian 12) allocates GStreamer's buffers and events from its slice allocator,
/// which keeps freed slabs for good: after a 4-minute room churn the idle server held 18.8 MB
/// more than at start (after `malloc_trim`), 4.4 MB with `G_SLICE=always-malloc`, what GLib
/// ≥ 2.76 always does. GLib reads `G_SLICE` while the libraries load, before `main`, so the
/// binary re-executes itself once with it set; an explicit `G_SLICE` in the environment wins.
fn slice_allocator_off() {
    use std::os::unix::process::CommandExt;
    if std::env::var_os("G_SLICE").is_some() {
        return;
    }
    let mut args = std::env::args_os();
    let argv0 = args.next().unwrap_or_else(|| "lamina".into());
    let err = std::process::Command::new("/proc/self/exe")
        .arg0(argv0)
        .args(args)
        .env("G_SLICE", "always-malloc")
        .exec();
    // `exec` returns only on failure: run on with the slice allocator.
    eprintln!("lamina: cannot re-execute with G_SLICE=always-malloc ({err}); continuing");
}

async fn run(config: Config) -> anyhow::Result<()> {
    let drain_for = std::time::Duration::from_secs(config.drain_timeout);
    let server = lamina::server::start(config).await?;
    tokio::select! {
        _ = wait_for_signal() => {
            if server.cluster.is_some() && !drain_for.is_zero() {
                tracing::info!(timeout = ?drain_for, "draining before shutting down");
                server.drain();
                tokio::select! {
                    _ = server.drained() => {}
                    _ = tokio::time::sleep(drain_for) => tracing::warn!("drain timeout: closing the rooms left"),
                    _ = wait_for_signal() => tracing::warn!("second signal: closing the rooms left"),
                }
            }
        }
        _ = server.drained() => tracing::info!("drained: no room left"),
    }
    tracing::info!("shutting down");
    server.stop().await;
    Ok(())
}

/// `lamina drain`: asks a node to drain through Redis; with `--wait`, until it has stopped.
async fn drain(args: lamina::cli::DrainArgs) -> anyhow::Result<()> {
    use lamina::cluster::Directory;
    let dir = Directory::connect(&args.redis_url).await?;
    let Some(node) = dir.node(&args.node_id).await? else {
        anyhow::bail!(
            "node {:?} is not registered (not running, or another Redis)",
            args.node_id
        );
    };
    dir.request_drain(&args.node_id).await?;
    println!(
        "node {} draining: {} room(s) left",
        node.id,
        node.rooms.len()
    );
    if !args.wait {
        return Ok(());
    }
    let mut left = node.rooms.len();
    while let Some(node) = dir.node(&args.node_id).await? {
        if node.rooms.len() != left {
            left = node.rooms.len();
            println!("node {} draining: {left} room(s) left", node.id);
        }
        tokio::time::sleep(lamina::cluster::REFRESH_INTERVAL).await;
    }
    println!("node {} stopped", args.node_id);
    Ok(())
}

/// Logs to stdout as text or JSON lines (`--log-format`); the filter comes from `LAMINA_LOG`
/// (default `info`).
fn init_logs(format: LogFormat) {
    let filter = EnvFilter::try_from_env("LAMINA_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt().with_env_filter(filter);
    match format {
        LogFormat::Text => logs
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
            .init(),
        LogFormat::Json => logs.json().with_current_span(true).init(),
    }
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
