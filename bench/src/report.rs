//! Output of a benchmark: a side-by-side table on stdout (plus the repair table of the loss
//! scenarios), JSON and CSV files, and the chart.

use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;

use crate::scenario::{RunResult, Scenario};
use crate::BenchError;

/// Everything a benchmark run wrote.
#[derive(Debug, Serialize)]
pub struct Report {
    /// The command line.
    pub command: String,
    /// Host facts (cores, kernel, load average at start).
    pub host: String,
    /// Video loop bitrate actually encoded, kbit/s.
    pub video_kbps: f64,
    /// Scenarios run.
    pub scenarios: Vec<Scenario>,
    /// One result per server and scenario.
    pub results: Vec<RunResult>,
    /// Largest passing room per server found by the ramp (participants), if a ramp ran.
    pub ramp_max: Vec<(String, usize)>,
}

fn ratio(a: f64, b: f64) -> String {
    if b > 0.0 {
        format!("{:.2}x", a / b)
    } else {
        "-".into()
    }
}

/// The side-by-side table (Markdown, also fit for a terminal).
pub fn table(report: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| scenario | server | streams | pkt/s | kbit/s | delivered % | CPU % | pkt per CPU-s | peak RSS MiB | MiB/participant | threads | loss mean/max % | delay p50/p99 ms | first frame p50/p95 ms | bench CPU % |"
    );
    let _ = writeln!(
        out,
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
    );
    for r in &report.results {
        let _ = writeln!(
            out,
            "| {} | {} | {}/{} | {:.0} | {:.0} | {:.1} | {:.1} | {:.0} | {:.1} | {:.2} | {} | {:.2}/{:.2} | {:.2}/{:.2} | {:.0}/{:.0} ({}{}) | {:.0} |",
            r.scenario,
            r.server,
            r.streams_flowing,
            r.streams_expected,
            r.pkts_per_s,
            r.kbps,
            r.delivered_pct,
            r.server_cpu_pct,
            r.pkts_per_cpu_s,
            r.peak_rss_mib,
            r.mib_per_participant,
            r.threads,
            r.loss_mean_pct,
            r.loss_max_pct,
            r.delay_p50_ms,
            r.delay_p99_ms,
            r.first_frame_p50_ms,
            r.first_frame_p95_ms,
            r.first_frame_samples,
            if r.first_frame_missing > 0 { format!(", {} missing", r.first_frame_missing) } else { String::new() },
            r.bench_cpu_pct,
        );
    }
    let pairs: Vec<(&RunResult, &RunResult)> = report
        .results
        .iter()
        .filter(|r| r.server == "lamina")
        .filter_map(|l| {
            report
                .results
                .iter()
                .find(|j| j.server == "janus" && j.scenario == l.scenario)
                .map(|j| (l, j))
        })
        .collect();
    if !pairs.is_empty() {
        let _ = writeln!(out, "\nLamina / Janus ratios (pkt per CPU-s: higher is better for Lamina; CPU, RSS, delay, first frame: lower is better):\n");
        let _ = writeln!(
            out,
            "| scenario | pkt per CPU-s | CPU % | peak RSS | delay p99 | first frame p50 |"
        );
        let _ = writeln!(out, "|---|---|---|---|---|---|");
        for (l, j) in pairs {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} |",
                l.scenario,
                ratio(l.pkts_per_cpu_s, j.pkts_per_cpu_s),
                ratio(l.server_cpu_pct, j.server_cpu_pct),
                ratio(l.peak_rss_mib, j.peak_rss_mib),
                ratio(l.delay_p99_ms, j.delay_p99_ms),
                ratio(l.first_frame_p50_ms, j.first_frame_p50_ms),
            );
        }
    }
    repair_table(&mut out, &report.results);
    for (server, n) in &report.ramp_max {
        let _ = writeln!(out, "\nramp: largest room for {server} with loss and undelivered < 1 %, server CPU < limit: {n} participants");
    }
    let errors: Vec<String> = report
        .results
        .iter()
        .flat_map(|r| {
            r.errors
                .iter()
                .map(move |e| format!("{} {}: {e}", r.server, r.scenario))
        })
        .collect();
    if !errors.is_empty() {
        let _ = writeln!(out, "\nerrors:");
        for e in errors.iter().take(20) {
            let _ = writeln!(out, "- {e}");
        }
    }
    out
}

/// The loss scenarios' figures: what the receivers dropped and what the server repaired.
fn repair_table(out: &mut String, results: &[RunResult]) {
    let lossy: Vec<&RunResult> = results.iter().filter(|r| r.drop_pct > 0.0).collect();
    if lossy.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "\nRepair under simulated downlink loss (every receiver delays what it receives by the added latency, drops a share of the video packets and NACKs them where the server negotiated NACK; repaired: received again within {} s, as RTX or plain retransmission):\n",
        crate::loss::REPAIR_DEADLINE.as_secs_f64()
    );
    let _ = writeln!(
        out,
        "| scenario | server | drop % | added latency ms | video streams with NACK / RTX | dropped | repaired (by RTX) | repaired % | unrepaired | unrepaired % | repair p50/p95 ms | NACKs sent | pkt/s | CPU % |"
    );
    let _ = writeln!(
        out,
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
    );
    for r in lossy {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {}/{} of {} | {} | {} ({}) | {:.1} | {} | {:.1} | {:.0}/{:.0} | {} | {:.0} | {:.1} |",
            r.scenario,
            r.server,
            r.drop_pct,
            r.added_latency_ms,
            r.nack_streams,
            r.rtx_streams,
            r.video_streams,
            r.dropped,
            r.repaired,
            r.repaired_rtx,
            r.repaired_pct,
            r.unrepaired,
            r.unrepaired_pct,
            r.repair_p50_ms,
            r.repair_p95_ms,
            r.nacks_sent,
            r.pkts_per_s,
            r.server_cpu_pct,
        );
    }
}

/// Writes `results.json`, `results.csv` and `results.md` into `dir`.
pub fn write(report: &Report, dir: &Path) -> Result<(), BenchError> {
    std::fs::create_dir_all(dir)?;
    let json =
        serde_json::to_string_pretty(report).map_err(|e| BenchError::Output(e.to_string()))?;
    std::fs::write(dir.join("results.json"), json)?;
    let mut w = csv::Writer::from_path(dir.join("results.csv"))
        .map_err(|e| BenchError::Output(e.to_string()))?;
    for r in &report.results {
        w.serialize(FlatResult::from(r))
            .map_err(|e| BenchError::Output(e.to_string()))?;
    }
    w.flush()?;
    std::fs::write(dir.join("results.md"), table(report))?;
    Ok(())
}

/// A CSV row: every figure of a [`RunResult`], errors joined.
#[derive(Serialize)]
struct FlatResult<'a> {
    server: &'a str,
    scenario: &'a str,
    rooms: usize,
    per_room: usize,
    publishers: usize,
    streams_expected: usize,
    streams_flowing: usize,
    setup_s: f64,
    window_s: f64,
    pkts_per_s: f64,
    kbps: f64,
    delivered_pct: f64,
    server_cpu_s: f64,
    server_cpu_pct: f64,
    pkts_per_cpu_s: f64,
    peak_rss_mib: f64,
    idle_rss_mib: f64,
    mib_per_participant: f64,
    threads: u64,
    loss_mean_pct: f64,
    loss_p50_pct: f64,
    loss_max_pct: f64,
    loss_total_pct: f64,
    delay_p50_ms: f64,
    delay_p99_ms: f64,
    delay_samples: usize,
    first_frame_p50_ms: f64,
    first_frame_p95_ms: f64,
    first_frame_samples: usize,
    first_frame_missing: usize,
    drop_pct: f64,
    added_latency_ms: u64,
    video_streams: usize,
    nack_streams: usize,
    rtx_streams: usize,
    dropped: u64,
    repaired: u64,
    repaired_rtx: u64,
    unrepaired: u64,
    repaired_pct: f64,
    unrepaired_pct: f64,
    repair_p50_ms: f64,
    repair_p95_ms: f64,
    nacks_sent: u64,
    bench_cpu_pct: f64,
    loadavg: f64,
    errors: String,
}

impl<'a> From<&'a RunResult> for FlatResult<'a> {
    fn from(r: &'a RunResult) -> Self {
        Self {
            server: &r.server,
            scenario: &r.scenario,
            rooms: r.rooms,
            per_room: r.per_room,
            publishers: r.publishers,
            streams_expected: r.streams_expected,
            streams_flowing: r.streams_flowing,
            setup_s: r.setup_s,
            window_s: r.window_s,
            pkts_per_s: r.pkts_per_s,
            kbps: r.kbps,
            delivered_pct: r.delivered_pct,
            server_cpu_s: r.server_cpu_s,
            server_cpu_pct: r.server_cpu_pct,
            pkts_per_cpu_s: r.pkts_per_cpu_s,
            peak_rss_mib: r.peak_rss_mib,
            idle_rss_mib: r.idle_rss_mib,
            mib_per_participant: r.mib_per_participant,
            threads: r.threads,
            loss_mean_pct: r.loss_mean_pct,
            loss_p50_pct: r.loss_p50_pct,
            loss_max_pct: r.loss_max_pct,
            loss_total_pct: r.loss_total_pct,
            delay_p50_ms: r.delay_p50_ms,
            delay_p99_ms: r.delay_p99_ms,
            delay_samples: r.delay_samples,
            first_frame_p50_ms: r.first_frame_p50_ms,
            first_frame_p95_ms: r.first_frame_p95_ms,
            first_frame_samples: r.first_frame_samples,
            first_frame_missing: r.first_frame_missing,
            drop_pct: r.drop_pct,
            added_latency_ms: r.added_latency_ms,
            video_streams: r.video_streams,
            nack_streams: r.nack_streams,
            rtx_streams: r.rtx_streams,
            dropped: r.dropped,
            repaired: r.repaired,
            repaired_rtx: r.repaired_rtx,
            unrepaired: r.unrepaired,
            repaired_pct: r.repaired_pct,
            unrepaired_pct: r.unrepaired_pct,
            repair_p50_ms: r.repair_p50_ms,
            repair_p95_ms: r.repair_p95_ms,
            nacks_sent: r.nacks_sent,
            bench_cpu_pct: r.bench_cpu_pct,
            loadavg: r.loadavg,
            errors: r.errors.join("; "),
        }
    }
}
