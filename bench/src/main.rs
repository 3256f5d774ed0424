//! `lamina-bench`: starts N synthetic WebRTC participants (str0m peers replaying pre-encoded
//! VP8 + Opus) in R rooms against Lamina and, for comparison, Janus VideoRoom, and measures
//! forwarding throughput, server CPU and memory, loss, server-added delay and late-joiner
//! first-frame time, and, under simulated downlink loss, how many lost packets the server
//! repairs. See the "Performance" section of the README.

mod chart;
mod janus;
mod lamina;
mod late_join;
mod loss;
mod media;
mod metrics;
mod peer;
mod probe;
mod relay;
mod report;
mod result;
mod rtp;
mod scenario;
mod servers;
mod summary;

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::Command;

use clap::Parser;

use result::RunResult;
use scenario::{Env, Scenario};
use servers::ServerKind;

/// Failures of a benchmark run.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// A participant could not join.
    #[error("join: {0}")]
    Join(String),
    /// A server could not start.
    #[error("server: {0}")]
    Server(String),
    /// Media preparation.
    #[error(transparent)]
    Media(#[from] media::MediaError),
    /// Writing results.
    #[error("output: {0}")]
    Output(String),
    /// I/O.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Default measurement window, seconds.
const DEFAULT_MEASURE_S: u64 = 15;
/// Rooms of at most this many participants get twice the default window.
const SMALL_ROOM: usize = 4;

/// Environment variable set inside the benchmark's own network namespace.
const NETNS_ENV: &str = "LAMINA_BENCH_NETNS";
/// The veth address Janus gathers ICE candidates on inside the namespace.
const VETH_IP: &str = "198.18.0.1";

/// Load generator and side-by-side benchmark of Lamina and Janus VideoRoom.
#[derive(Debug, Clone, Parser)]
#[command(name = "lamina-bench")]
struct Args {
    /// Quick smoke run (Lamina only, one room of 3, one repeat, short window): checks that
    /// media flows and figures come out; no thresholds.
    #[arg(long)]
    quick: bool,
    /// Runs of each scenario per server, interleaved (Lamina, Janus, Lamina, Janus, …, each on
    /// a fresh server process); reports give the median and the min–max of the runs. The
    /// ramp runs once.
    #[arg(long, default_value_t = 3)]
    repeats: usize,
    /// Servers to benchmark (comma separated: lamina, janus).
    #[arg(long, value_delimiter = ',', default_value = "lamina,janus")]
    servers: Vec<String>,
    /// Scenarios (comma separated): room2, room4, room8 (all publish and subscribe),
    /// fanoutN (1 publisher, N receive-only subscribers), ramp (growing room until loss ≥ 1 % or CPU ≥
    /// the limit), roomN for any N, loss (room of 4 whose receivers drop --loss-percent of the
    /// video they receive and NACK it: repaired vs unrepaired), lossN for a room of N. A
    /// `-turn` suffix (e.g. room8-turn) makes the Lamina participants relay-only, like the
    /// Membrane browser client: every datagram crosses Lamina's embedded TURN server (Janus,
    /// without a TURN server here, skips these). A `-sim` suffix (before `-turn`, e.g.
    /// room8-sim) makes every publisher send its camera as three simulcast layers l/m/h (h is
    /// the usual loop, m and l about 1/3 and 1/8 of its packets) and every receiver take the
    /// default (the highest); `-sim-mixed`: every second participant of a room asks for l.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "room2,room4,room8,fanout20,ramp,loss"
    )]
    scenarios: Vec<String>,
    /// Share of received video packets each participant drops in the loss scenarios (percent;
    /// seeded, counted within the window).
    #[arg(long, default_value_t = 5.0)]
    loss_percent: f64,
    /// Seed of the loss scenarios' drop decisions.
    #[arg(long, default_value_t = 1)]
    loss_seed: u64,
    /// One-way latency every participant adds to what it receives in the loss scenarios, ms
    /// (Janus 1.1.2 answers no NACK while it measures a 0 ms round trip, as on loopback).
    #[arg(long, default_value_t = 10)]
    loss_latency_ms: u64,
    /// Make every scenario relay-only (as if each name had the `-turn` suffix).
    #[arg(long)]
    relay: bool,
    /// Rooms per scenario (each with the scenario's participants).
    #[arg(long, default_value_t = 1)]
    rooms: usize,
    /// Measurement window in seconds [default: 15, and twice that for rooms of 4 or fewer
    /// participants, whose few packets make short windows noisy]. A value given here applies to
    /// every scenario.
    #[arg(long)]
    measure_s: Option<u64>,
    /// Warm-up after all streams flow, in seconds.
    #[arg(long, default_value_t = 3)]
    warmup_s: u64,
    /// Late joiners per scenario (join → first decodable frame).
    #[arg(long, default_value_t = 5)]
    late_joins: usize,
    /// Video bitrate of the generated VP8 loop, kbit/s.
    #[arg(long, default_value_t = 500)]
    video_kbps: u32,
    /// Largest room the ramp tries (1 → 20: past where either server stops on this 2-core VM).
    #[arg(long, default_value_t = 20)]
    ramp_max: usize,
    /// Ramp step (participants).
    #[arg(long, default_value_t = 2)]
    ramp_step: usize,
    /// Ramp stops when the server uses more CPU than this (percent of one core).
    #[arg(long, default_value_t = 90.0)]
    ramp_cpu_limit: f64,
    /// Ramp stops when aggregate loss, or the delivery shortfall, reaches this (percent).
    #[arg(long, default_value_t = 1.0)]
    ramp_loss_limit: f64,
    /// Output directory (results.json, results.csv, results.md, chart.png, server logs).
    #[arg(long, default_value = "target/bench")]
    out: PathBuf,
    /// Where the pre-encoded media is kept.
    #[arg(long, default_value = "target/bench-media")]
    media_dir: PathBuf,
    /// The `lamina` binary (default: next to this one).
    #[arg(long)]
    lamina_bin: Option<PathBuf>,
    /// `apt-get install -y janus` first when it is missing.
    #[arg(long)]
    install_janus: bool,
    /// Do not enter a private network namespace (Janus then cannot run).
    #[arg(long)]
    no_netns: bool,
    /// Instead of benchmarking, measure what N webrtcbin participants (`lamina_client`)
    /// cost as load clients, for comparison with the str0m peers.
    #[arg(long)]
    probe_webrtcbin: Option<usize>,
    /// Only redraw `chart.png` in `--out` from a `results.json` of an earlier run.
    #[arg(long)]
    replot: Option<PathBuf>,
}

impl Args {
    /// `--quick`: Lamina only, one room of 3, one run, a window of at most 6 s.
    fn apply_quick(&mut self) {
        if !self.quick {
            return;
        }
        self.servers = vec!["lamina".into()];
        self.scenarios = vec!["room3".into()];
        self.measure_s = Some(self.measure_s.unwrap_or(6).min(6));
        self.repeats = 1;
        self.warmup_s = self.warmup_s.min(1);
        self.late_joins = self.late_joins.min(2);
    }
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("LAMINA_BENCH_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let mut args = Args::parse();
    if let Some(json) = &args.replot {
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(json)?)?;
        let results: Vec<RunResult> = serde_json::from_value(v["results"].clone())?;
        let medians: Vec<RunResult> = summary::summarise(&results)
            .into_iter()
            .map(|s| s.median)
            .collect();
        chart::draw(&medians, &args.out.join("chart.png"))?;
        return Ok(());
    }
    args.apply_quick();
    let want_janus = args.servers.iter().any(|s| s == "janus");
    if want_janus && args.install_janus && which("janus").is_none() {
        let st = Command::new("apt-get")
            .args(["install", "-y", "-qq", "janus"])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()?;
        anyhow::ensure!(st.success(), "apt-get install janus failed");
    }
    if want_janus
        && args.probe_webrtcbin.is_none()
        && !args.no_netns
        && std::env::var_os(NETNS_ENV).is_none()
    {
        return reexec_in_netns();
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(run(args))
}

/// Runs this same command again inside `unshare -n` with `lo` up and a veth pair holding
/// [`VETH_IP`] (Janus does not gather on loopback); nothing can leave the namespace.
fn reexec_in_netns() -> anyhow::Result<()> {
    let exe = std::env::current_exe()?;
    let script = format!(
        "ip link set lo up && ip link add d0 type veth peer name d1 && ip addr add {VETH_IP}/32 dev d0 \
         && ip link set d1 up && ip link set d0 up && exec \"$0\" \"$@\""
    );
    let st = Command::new("unshare")
        .args(["-n", "--", "sh", "-c", &script])
        .arg(exe)
        .args(std::env::args_os().skip(1))
        .env(NETNS_ENV, "1")
        .status()?;
    std::process::exit(st.code().unwrap_or(1));
}

fn which(bin: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| PathBuf::from(d).join(bin))
        .find(|p| p.exists())
}

fn scenario(name: &str, args: &Args) -> Option<Scenario> {
    let (base, relay) = match name.strip_suffix("-turn") {
        Some(base) => (base, true),
        None => (name, args.relay),
    };
    let (plain, simulcast, mixed) = if let Some(p) = base.strip_suffix("-sim-mixed") {
        (p, true, true)
    } else if let Some(p) = base.strip_suffix("-sim") {
        (p, true, false)
    } else {
        (base, false, false)
    };
    let mut sc = plain_scenario(plain, args)?;
    sc.name = base.to_string();
    sc.simulcast = simulcast;
    sc.mixed_layers = mixed;
    sc.relay = relay;
    if relay {
        sc.name = format!("{base}-turn");
    }
    Some(sc)
}

fn plain_scenario(name: &str, args: &Args) -> Option<Scenario> {
    let room = |n: &str| n.parse::<usize>().ok().filter(|n| *n >= 2);
    let mut loss_percent = 0.0;
    let mut late_joins = args.late_joins;
    let (publishers, subscribers) = if let Some(n) = name.strip_prefix("fanout") {
        (1, n.parse::<usize>().ok().filter(|n| *n >= 1)?)
    } else if let Some(n) = name.strip_prefix("loss") {
        loss_percent = args.loss_percent;
        // No late joiners: a lossy keyframe seldom arrives complete and in order.
        late_joins = 0;
        (if n.is_empty() { Some(4) } else { room(n) }?, 0)
    } else {
        (room(name.strip_prefix("room")?)?, 0)
    };
    let per_room = publishers + subscribers;
    Some(Scenario {
        measure_s: args.measure_s.unwrap_or(if per_room <= SMALL_ROOM {
            2 * DEFAULT_MEASURE_S
        } else {
            DEFAULT_MEASURE_S
        }),
        name: name.to_string(),
        rooms: args.rooms,
        publishers,
        subscribers,
        late_joins,
        warmup_s: args.warmup_s,
        loss_percent,
        loss_seed: args.loss_seed,
        loss_latency_ms: args.loss_latency_ms,
        relay: false,
        simulcast: false,
        mixed_layers: false,
    })
}

async fn run(args: Args) -> anyhow::Result<()> {
    let spec = media::VideoSpec {
        kbps: args.video_kbps,
        ..Default::default()
    };
    let mut media = media::prepare(&args.media_dir, spec)?;
    if args
        .scenarios
        .iter()
        .any(|n| scenario(n, &args).is_some_and(|s| s.simulcast))
    {
        media::add_layers(&args.media_dir, &mut media, spec)?;
    }
    let lamina_bin = match &args.lamina_bin {
        Some(p) => p.clone(),
        None => std::env::current_exe()?.with_file_name("lamina"),
    };
    let in_netns = std::env::var_os(NETNS_ENV).is_some();
    let env = Env {
        video_kbps: media.video_kbps(),
        media,
        lamina_ip: IpAddr::from([127, 0, 0, 1]),
        janus_ip: VETH_IP.parse()?,
        janus_if: "d0".into(),
        lamina_bin,
        log_dir: args.out.join("logs"),
    };
    if let Some(n) = args.probe_webrtcbin {
        return probe::webrtcbin(n.max(2), args.measure_s.unwrap_or(DEFAULT_MEASURE_S), &env).await;
    }
    let servers: Vec<ServerKind> = args
        .servers
        .iter()
        .filter_map(|s| match s.as_str() {
            "lamina" => Some(ServerKind::Lamina),
            "janus" => Some(ServerKind::Janus),
            _ => None,
        })
        .collect();
    eprintln!(
        "lamina-bench: VP8 loop {:.0} kbit/s ({} frames), Opus {} packets; servers {:?}; netns {}",
        env.video_kbps,
        env.media.video.len(),
        env.media.audio.len(),
        servers,
        in_netns
    );
    for l in env.media.layers.iter() {
        let pkts: usize = l
            .video
            .iter()
            .map(|f| f.data.len().div_ceil(rtp::MAX_CHUNK).max(1))
            .sum();
        let fps = f64::from(env.media.fps) / f64::from(l.every);
        eprintln!(
            "   simulcast layer {}: {:.0} kbit/s at {fps:.1} fps, {:.1} packets/s",
            l.rid,
            l.kbps,
            pkts as f64 * fps / l.video.len().max(1) as f64
        );
    }
    let mut report = report::Report {
        command: std::env::args().collect::<Vec<_>>().join(" "),
        host: host_facts(),
        video_kbps: env.video_kbps,
        repeats: args.repeats.max(1),
        scenarios: Vec::new(),
        results: Vec::new(),
        summaries: Vec::new(),
        ramp_max: Vec::new(),
    };
    for name in &args.scenarios {
        if name == "ramp" {
            for &kind in &servers {
                let best = ramp(kind, &args, &env, &mut report).await;
                report.ramp_max.push((kind.to_string(), best));
            }
            continue;
        }
        let Some(sc) = scenario(name, &args) else {
            eprintln!("unknown scenario {name}");
            continue;
        };
        let repeats = args.repeats.max(1);
        if sc.relay && servers.contains(&ServerKind::Janus) {
            eprintln!(
                "== janus {}: skipped (no TURN server in the Janus setup)",
                sc.name
            );
        }
        for repeat in 1..=repeats {
            for &kind in servers
                .iter()
                .filter(|k| !sc.relay || **k == ServerKind::Lamina)
            {
                eprintln!("== {kind} {} (run {repeat} of {repeats})", sc.name);
                match scenario::run(kind, &sc, &env).await {
                    Ok(mut r) => {
                        r.repeat = repeat;
                        eprintln!("   {}", r.one_line());
                        report.results.push(r);
                    }
                    Err(e) => eprintln!("   failed: {e}"),
                }
            }
        }
        report.scenarios.push(sc);
    }
    report.summaries = summary::summarise(&report.results);
    report::write(&report, &args.out)?;
    let medians: Vec<RunResult> = report.summaries.iter().map(|s| s.median.clone()).collect();
    if let Err(e) = chart::draw(&medians, &args.out.join("chart.png")) {
        eprintln!("{e}");
    }
    println!("{}", report::table(&report));
    println!(
        "(written to {}/results.{{json,csv,md}} and chart.png)",
        args.out.display()
    );
    Ok(())
}

/// Grows one room until loss or CPU crosses the limits; returns the largest passing size.
async fn ramp(kind: ServerKind, args: &Args, env: &Env, report: &mut report::Report) -> usize {
    let mut best = 0;
    let mut n = 2;
    while n <= args.ramp_max {
        let name = format!("room{n}");
        let mut sc = match scenario(&name, args) {
            Some(s) => s,
            None => break,
        };
        if sc.relay && kind == ServerKind::Janus {
            eprintln!("== janus ramp: skipped (relay-only, no TURN server in the Janus setup)");
            break;
        }
        sc.name = format!("ramp{n}{}", if sc.relay { "-turn" } else { "" });
        sc.late_joins = 0;
        eprintln!("== {kind} {}", sc.name);
        let r = match scenario::run(kind, &sc, env).await {
            Ok(mut r) => {
                r.repeat = 1;
                r
            }
            Err(e) => {
                eprintln!("   failed: {e}");
                break;
            }
        };
        eprintln!("   {}", r.one_line());
        // Loss counts sequence gaps only; packets a saturated server holds back (queues
        // growing) show as a delivery shortfall instead, so both must stay under the limit.
        let pass = r.loss_total_pct < args.ramp_loss_limit
            && r.delivered_pct > 100.0 - args.ramp_loss_limit
            && r.server_cpu_pct < args.ramp_cpu_limit
            && r.streams_flowing == r.streams_expected;
        report.results.push(r);
        if !pass {
            break;
        }
        best = n;
        n += args.ramp_step;
    }
    best
}

fn host_facts() -> String {
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    format!(
        "{cores} cores, kernel {}, loadavg at start {}",
        kernel.trim(),
        load.trim()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(extra: &[&str]) -> Args {
        let mut v = vec!["lamina-bench"];
        v.extend_from_slice(extra);
        Args::parse_from(v)
    }

    #[test]
    fn small_rooms_get_twice_the_window_unless_one_is_given() {
        let a = args(&[]);
        assert_eq!(a.repeats, 3);
        let window = |name: &str, a: &Args| scenario(name, a).unwrap().measure_s;
        assert_eq!(window("room2", &a), 30);
        assert_eq!(window("room4", &a), 30);
        assert_eq!(window("loss", &a), 30);
        assert_eq!(window("room8", &a), 15);
        assert_eq!(window("fanout20", &a), 15);
        let a = args(&["--measure-s", "5"]);
        assert_eq!(window("room2", &a), 5);
        assert_eq!(window("room8", &a), 5);
        let mut a = args(&["--quick"]);
        a.apply_quick();
        assert_eq!((a.repeats, window("room3", &a)), (1, 6));
        assert_eq!(a.servers, ["lamina"]);
    }

    #[test]
    fn turn_suffix_or_flag_makes_a_scenario_relay_only() {
        let a = args(&[]);
        let sc = scenario("room8-turn", &a).unwrap();
        assert!(sc.relay);
        assert_eq!(
            (sc.name.as_str(), sc.publishers, sc.measure_s),
            ("room8-turn", 8, 15)
        );
        assert!(!scenario("room8", &a).unwrap().relay);
        assert!(scenario("room8-turn-turn", &a).is_none());
        let a = args(&["--relay"]);
        let sc = scenario("fanout4", &a).unwrap();
        assert!(sc.relay);
        assert_eq!(sc.name, "fanout4-turn");
        assert_eq!(scenario("room3-turn", &a).unwrap().name, "room3-turn");
    }

    #[test]
    fn sim_suffixes_make_simulcast_scenarios() {
        let a = args(&[]);
        let sc = scenario("room8-sim", &a).unwrap();
        assert!(sc.simulcast && !sc.mixed_layers && !sc.relay);
        assert_eq!(
            (sc.name.as_str(), sc.publishers, sc.measure_s),
            ("room8-sim", 8, 15)
        );
        assert_eq!(sc.receive_layer(1), None);
        let sc = scenario("room8-sim-mixed", &a).unwrap();
        assert!(sc.simulcast && sc.mixed_layers);
        assert_eq!(sc.name, "room8-sim-mixed");
        let low: Vec<usize> = (0..8)
            .filter_map(|i| sc.receive_layer(i).map(|_| i))
            .collect();
        assert_eq!(low, [1, 3, 5, 7]);
        let sc = scenario("fanout4-sim-turn", &a).unwrap();
        assert!(sc.simulcast && sc.relay);
        assert_eq!((sc.name.as_str(), sc.subscribers), ("fanout4-sim-turn", 4));
        assert!(!scenario("room8", &a).unwrap().simulcast);
        assert!(scenario("room8-turn-sim", &a).is_none());
        assert!(scenario("room-sim", &a).is_none());
    }
}
