//! `lamina-soak`: starts the real `lamina` binary, churns rooms against it for a while
//! (participants joining and leaving at seeded random times, screen shares coming and going,
//! some participants dropped without leaving), samples the server's RSS, threads, open fds,
//! GStreamer elements, rooms and peers, and checks that once everyone has left every count
//! returns to its baseline: the idle server after start-up and one warm-up room. Writes
//! `samples.csv`, `soak.png` and `summary.txt` to `--out`; exits 1 when a count does not
//! return.

mod churn;
mod report;
mod server;
mod verdict;
mod warmup;

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;

use report::{Phase, Sample};
use server::{Probe, ServerProcess};

/// Command line.
#[derive(Debug, Parser)]
#[command(
    name = "lamina-soak",
    about = "Room churn against a lamina process; resources must return to baseline"
)]
struct Args {
    /// The server binary (default: `lamina` next to this binary).
    #[arg(long)]
    server: Option<PathBuf>,
    /// How long the churn runs (`30m`, `120s`, `1h`).
    #[arg(long, default_value = "30m", value_parser = parse_duration)]
    duration: Duration,
    /// Interval between samples during the churn.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    sample: Duration,
    /// Rooms.
    #[arg(long, default_value_t = 3)]
    rooms: usize,
    /// Participant slots per room.
    #[arg(long, default_value_t = 4)]
    participants: usize,
    /// Seed of the churn's random choices.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Shortest stay of a participant in a room.
    #[arg(long, default_value = "20s", value_parser = parse_duration)]
    stay_min: Duration,
    /// Longest stay of a participant in a room.
    #[arg(long, default_value = "90s", value_parser = parse_duration)]
    stay_max: Duration,
    /// Longest pause between a leave and the next join of the same slot.
    #[arg(long, default_value = "8s", value_parser = parse_duration)]
    max_pause: Duration,
    /// Probability that a stay includes a screen share.
    #[arg(long, default_value_t = 0.5)]
    share_probability: f64,
    /// Probability that a participant is dropped without leaving.
    #[arg(long, default_value_t = 0.3)]
    abrupt_probability: f64,
    /// How far above baseline the final RSS may stay (MiB): memory glibc keeps after frees.
    #[arg(long, default_value_t = 16)]
    rss_tolerance_mib: u64,
    /// Do not call `malloc_trim(0)` in the server (through gdb) before comparing RSS.
    #[arg(long)]
    no_malloc_trim: bool,
    /// How long to wait, after everyone left, for the counts to return.
    #[arg(long, default_value = "180s", value_parser = parse_duration)]
    drain_timeout: Duration,
    /// Extra environment of the server (`KEY=VALUE`, repeatable), e.g. malloc tunables for
    /// telling allocator retention from leaks.
    #[arg(long = "server-env", value_parser = parse_env)]
    server_env: Vec<(String, String)>,
    /// Output directory.
    #[arg(long, default_value = "target/soak")]
    out: PathBuf,
}

/// `KEY=VALUE`.
fn parse_env(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("expected KEY=VALUE, not {s:?}"))
}

/// `90s`, `2m`, `1h`, `500ms` or a bare number of seconds.
fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num.parse().map_err(|_| format!("not a duration: {s:?}"))?;
    let secs = match unit {
        "" | "s" => n,
        "ms" => n / 1000.0,
        "m" | "min" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(format!("unknown unit in {s:?} (use ms, s, m or h)")),
    };
    Ok(Duration::from_secs_f64(secs))
}

/// The run's samples and the server's start time.
struct Recorder {
    started: Instant,
    samples: Vec<Sample>,
}

impl Recorder {
    fn record(&mut self, phase: Phase, probe: Probe, live: u64, print: bool) {
        let t = self.started.elapsed().as_secs_f64();
        if print {
            println!(
                "[sample] t={t:>7.1}s {:<8} rss={:>7} KiB threads={:>3} fds={:>4} elements={:>4} rooms={} peers={:>2} participants={live}",
                format!("{phase:?}").to_lowercase(),
                probe.rss_kib,
                probe.threads,
                probe.fds,
                probe.elements,
                probe.rooms,
                probe.peers,
            );
        }
        self.samples.push(Sample {
            t,
            phase,
            probe,
            live,
        });
    }
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    match run(&args).await {
        Ok(true) => println!("soak: PASS"),
        Ok(false) => {
            println!("soak: FAIL");
            std::process::exit(1);
        }
        Err(e) => {
            eprintln!("soak: error: {e}");
            std::process::exit(2);
        }
    }
}

/// Errors that end a run early.
#[derive(Debug, thiserror::Error)]
enum SoakError {
    #[error(transparent)]
    Server(#[from] server::ServerError),
    #[error(transparent)]
    Report(#[from] report::ReportError),
    #[error(transparent)]
    Warmup(#[from] warmup::WarmupError),
    #[error("{0}")]
    Setup(String),
}

async fn run(args: &Args) -> Result<bool, SoakError> {
    gst::init().map_err(|e| SoakError::Setup(format!("GStreamer: {e}")))?;
    std::fs::create_dir_all(&args.out)
        .map_err(|e| SoakError::Setup(format!("{}: {e}", args.out.display())))?;
    let binary = match &args.server {
        Some(b) => b.clone(),
        None => std::env::current_exe()
            .map_err(|e| SoakError::Setup(e.to_string()))?
            .with_file_name("lamina"),
    };
    let server = ServerProcess::start(&binary, &args.server_env, &args.out.join("server.log"))?;
    println!(
        "soak: server pid {} at {} ({})",
        server.pid(),
        server.addr,
        binary.display()
    );
    let mut rec = Recorder {
        started: Instant::now(),
        samples: Vec::new(),
    };
    rec.record(Phase::Start, server.probe().await?, 0, true);

    warmup::run(&server.ws_url()).await?;
    rec.record(Phase::Warmup, server.probe().await?, 0, true);
    let baseline = settle(&server, &mut rec).await?;
    println!("soak: baseline {baseline:?}");
    let mut trim_error = args.no_malloc_trim.then(|| "--no-malloc-trim".to_owned());
    let trimmed_baseline = if args.no_malloc_trim {
        None
    } else {
        trimmed_rss(&server, &mut trim_error).await?
    };

    let stats = Arc::new(churn::ChurnStats::default());
    let plan = churn::ChurnPlan {
        url: server.ws_url(),
        room_prefix: "soak".into(),
        rooms: args.rooms,
        slots: args.participants,
        seed: args.seed,
        stay: (args.stay_min, args.stay_max.max(args.stay_min)),
        max_pause: args.max_pause,
        share_probability: args.share_probability,
        abrupt_probability: args.abrupt_probability,
    };
    // The participants run on their own runtime: a client that hangs cannot stop the
    // sampling, and is reported instead of stalling the run.
    let clients = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("soak-clients")
        .enable_all()
        .build()
        .map_err(|e| SoakError::Setup(format!("client runtime: {e}")))?;
    let churn_end = Instant::now() + args.duration;
    let mut churn = clients.spawn(churn::run(plan, churn_end, stats.clone()));
    let give_up = tokio::time::Instant::from_std(churn_end + CHURN_GRACE);
    let mut tick = tokio::time::interval(args.sample);
    let mut last_ticks = u64::MAX;
    let stalled = loop {
        tokio::select! {
            _ = tick.tick() => {
                let probe = server.probe().await?;
                let live = stats.live.load(Ordering::Relaxed);
                rec.record(Phase::Churn, probe, live, true);
                let ticks = stats.ticks.load(Ordering::Relaxed);
                if live > 0 && ticks == last_ticks {
                    break Some("the participants made no progress for a whole sample interval");
                }
                last_ticks = ticks;
            }
            _ = &mut churn => break None,
            _ = tokio::time::sleep_until(give_up) => {
                break Some("participants were still in rooms long after the churn's end");
            }
        }
    };
    clients.shutdown_background();
    if let Some(why) = stalled {
        return Err(SoakError::Setup(format!("client side stuck: {why}")));
    }
    rec.record(Phase::Churn, server.probe().await?, 0, true);

    let deadline = Instant::now() + args.drain_timeout;
    let drained_at = Instant::now();
    let end = loop {
        let probe = server.probe().await?;
        rec.record(Phase::Drain, probe, 0, false);
        if verdict::counts_returned(&probe, &baseline) || Instant::now() >= deadline {
            break probe;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    };
    let drain_secs = drained_at.elapsed().as_secs_f64();
    rec.record(Phase::Drain, end, 0, true);
    let trimmed_end = match trimmed_baseline {
        Some(_) => trimmed_rss(&server, &mut trim_error).await?,
        None => None,
    };
    let verdict = verdict::Verdict {
        baseline,
        end,
        trimmed: trimmed_baseline.zip(trimmed_end),
        trim_error,
        tolerance_kib: args.rss_tolerance_mib * 1024,
        drain_secs,
    };
    let summary = verdict.summary(&rec.samples, &stats);
    println!("{summary}");
    std::fs::write(args.out.join("summary.txt"), &summary)
        .map_err(|e| SoakError::Setup(e.to_string()))?;
    report::write_csv(&rec.samples, &args.out.join("samples.csv"))?;
    report::draw(
        &rec.samples,
        &baseline,
        args.rss_tolerance_mib * 1024,
        verdict.trimmed,
        &args.out.join("soak.png"),
    )?;
    println!(
        "soak: wrote {}/{{samples.csv,soak.png,summary.txt,server.log}}",
        args.out.display()
    );
    let media_ok = stats.stays_with_media.load(Ordering::Relaxed) > 0;
    server.stop();
    Ok(verdict.passed() && media_ok)
}

/// How long after the churn's end participants may take to leave.
const CHURN_GRACE: Duration = Duration::from_secs(90);

/// How long the idle counts must hold still to be the baseline.
const SETTLED_AFTER: Duration = Duration::from_secs(12);

/// Polls the idle server until threads, fds, rooms and elements are unchanged for
/// [`SETTLED_AFTER`] (pools that outlived the warm-up room retire their idle threads: tokio's
/// blocking threads after 10 s), at most 120 s; the last probe is the baseline.
async fn settle(server: &ServerProcess, rec: &mut Recorder) -> Result<Probe, SoakError> {
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut last = server.probe().await?;
    let mut since = Instant::now();
    while Instant::now() < deadline && since.elapsed() < SETTLED_AFTER {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let p = server.probe().await?;
        if (p.threads, p.fds, p.rooms, p.elements)
            != (last.threads, last.fds, last.rooms, last.elements)
        {
            since = Instant::now();
        }
        rec.record(Phase::Baseline, p, 0, false);
        last = p;
    }
    rec.record(Phase::Baseline, last, 0, true);
    Ok(last)
}

/// RSS after `malloc_trim(0)`; `None` (and the reason in `error`) when it cannot be called.
async fn trimmed_rss(
    server: &ServerProcess,
    error: &mut Option<String>,
) -> Result<Option<u64>, SoakError> {
    match server.malloc_trim() {
        Ok(()) => Ok(Some(server.probe().await?.rss_kib)),
        Err(e) => {
            eprintln!("soak: {e}; comparing untrimmed RSS");
            *error = Some(e.to_string());
            Ok(None)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("120s"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("30m"), Ok(Duration::from_secs(1800)));
        assert_eq!(parse_duration("45"), Ok(Duration::from_secs(45)));
        assert_eq!(parse_duration("1.5h"), Ok(Duration::from_secs(5400)));
        assert!(parse_duration("3 parsecs").is_err());
    }
}
