//! The files of a benchmark report: `results.json` (every run and the summaries),
//! `results.csv` (medians with min–max), `runs.csv` and `results.md`.

use std::path::Path;

use serde::Serialize;

use super::{table, Report};
use crate::result::RunResult;
use crate::BenchError;

/// Writes `results.json`, `results.csv` (medians with min and max), `runs.csv` (every run) and
/// `results.md` into `dir`.
pub fn write(report: &Report, dir: &Path) -> Result<(), BenchError> {
    let err = |e: &dyn std::fmt::Display| BenchError::Output(e.to_string());
    std::fs::create_dir_all(dir)?;
    let json = serde_json::to_string_pretty(report).map_err(|e| err(&e))?;
    std::fs::write(dir.join("results.json"), json)?;
    let mut w = csv::Writer::from_path(dir.join("runs.csv")).map_err(|e| err(&e))?;
    for r in &report.results {
        w.serialize(FlatResult::from(r)).map_err(|e| err(&e))?;
    }
    w.flush()?;
    let mut w = csv::Writer::from_path(dir.join("results.csv")).map_err(|e| err(&e))?;
    for (i, s) in report.summaries.iter().enumerate() {
        let (names, median) = flat_row(&s.median)?;
        let (_, min) = flat_row(&s.min)?;
        let (_, max) = flat_row(&s.max)?;
        // server, scenario, runs, then each figure as median, min, max.
        let mut header = vec![names[0].clone(), names[1].clone(), "runs".to_string()];
        let mut row = vec![median[0].clone(), median[1].clone(), s.runs.to_string()];
        for k in 2..names.len() {
            match names[k].as_str() {
                "repeat" => {}
                // Errors of every run (the median's errors hold them all); words of the first.
                "errors" | "relay" | "thread_cpu" | "srtp_library" => {
                    header.push(names[k].clone());
                    row.push(median[k].clone());
                }
                name => {
                    header.extend([
                        name.to_string(),
                        format!("{name}_min"),
                        format!("{name}_max"),
                    ]);
                    row.extend([median[k].clone(), min[k].clone(), max[k].clone()]);
                }
            }
        }
        if i == 0 {
            w.write_record(&header).map_err(|e| err(&e))?;
        }
        w.write_record(&row).map_err(|e| err(&e))?;
    }
    w.flush()?;
    std::fs::write(dir.join("results.md"), table(report))?;
    Ok(())
}

/// Column names and values of one [`FlatResult`] row.
pub(super) fn flat_row(r: &RunResult) -> Result<(Vec<String>, Vec<String>), BenchError> {
    let err = |e: &dyn std::fmt::Display| BenchError::Output(e.to_string());
    let mut w = csv::Writer::from_writer(Vec::new());
    w.serialize(FlatResult::from(r)).map_err(|e| err(&e))?;
    let bytes = w.into_inner().map_err(|e| err(&e))?;
    let mut rd = csv::Reader::from_reader(bytes.as_slice());
    let names = rd
        .headers()
        .map_err(|e| err(&e))?
        .iter()
        .map(str::to_string)
        .collect();
    let values = rd
        .records()
        .next()
        .transpose()
        .map_err(|e| err(&e))?
        .map(|rec| rec.iter().map(str::to_string).collect())
        .unwrap_or_default();
    Ok((names, values))
}

/// A CSV row: every figure of a [`RunResult`], errors joined.
#[derive(Serialize)]
struct FlatResult<'a> {
    server: &'a str,
    scenario: &'a str,
    repeat: usize,
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
    first_frame_connect_p50_ms: f64,
    first_frame_request_p50_ms: f64,
    first_frame_key_sent_p50_ms: f64,
    first_frame_packet_p50_ms: f64,
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
    rtcp_per_participant_s: f64,
    server_wakeups_per_s: f64,
    rtcp_thread_wakeups_per_s: f64,
    rtcp_threads: u64,
    rtcp_thread_cpu_pct: f64,
    bench_cpu_pct: f64,
    loadavg: f64,
    relay: bool,
    relayed_peers: usize,
    relay_rx_per_s: f64,
    turn_allocations: u64,
    tokio_cpu_pct: f64,
    turn_cpu_pct: f64,
    thread_cpu: &'a str,
    srtp_library: &'a str,
    simulcast: bool,
    low_receivers: usize,
    ingest_pkts_per_s: f64,
    tx_l_pkts_per_s: f64,
    tx_m_pkts_per_s: f64,
    tx_h_pkts_per_s: f64,
    rx_l_pkts_per_s: f64,
    rx_m_pkts_per_s: f64,
    rx_h_pkts_per_s: f64,
    downlink_estimate_p50_kbps: f64,
    downlink_estimate_min_kbps: f64,
    layer_switches: &'a str,
    errors: String,
}

impl<'a> From<&'a RunResult> for FlatResult<'a> {
    fn from(r: &'a RunResult) -> Self {
        Self {
            server: &r.server,
            scenario: &r.scenario,
            repeat: r.repeat,
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
            first_frame_connect_p50_ms: r.first_frame_connect_p50_ms,
            first_frame_request_p50_ms: r.first_frame_request_p50_ms,
            first_frame_key_sent_p50_ms: r.first_frame_key_sent_p50_ms,
            first_frame_packet_p50_ms: r.first_frame_packet_p50_ms,
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
            rtcp_per_participant_s: r.rtcp_per_participant_s,
            server_wakeups_per_s: r.server_wakeups_per_s,
            rtcp_thread_wakeups_per_s: r.rtcp_thread_wakeups_per_s,
            rtcp_threads: r.rtcp_threads,
            rtcp_thread_cpu_pct: r.rtcp_thread_cpu_pct,
            bench_cpu_pct: r.bench_cpu_pct,
            loadavg: r.loadavg,
            relay: r.relay,
            relayed_peers: r.relayed_peers,
            relay_rx_per_s: r.relay_rx_per_s,
            turn_allocations: r.turn_allocations,
            tokio_cpu_pct: r.tokio_cpu_pct,
            turn_cpu_pct: r.turn_cpu_pct,
            thread_cpu: &r.thread_cpu,
            srtp_library: &r.srtp_library,
            simulcast: r.simulcast,
            low_receivers: r.low_receivers,
            ingest_pkts_per_s: r.ingest_pkts_per_s,
            tx_l_pkts_per_s: r.tx_l_pkts_per_s,
            tx_m_pkts_per_s: r.tx_m_pkts_per_s,
            tx_h_pkts_per_s: r.tx_h_pkts_per_s,
            rx_l_pkts_per_s: r.rx_l_pkts_per_s,
            rx_m_pkts_per_s: r.rx_m_pkts_per_s,
            rx_h_pkts_per_s: r.rx_h_pkts_per_s,
            downlink_estimate_p50_kbps: r.downlink_estimate_p50_kbps,
            downlink_estimate_min_kbps: r.downlink_estimate_min_kbps,
            layer_switches: &r.layer_switches,
            errors: r.errors.join("; "),
        }
    }
}
