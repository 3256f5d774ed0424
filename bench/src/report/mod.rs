//! Output of a benchmark: a side-by-side table on stdout (plus the repair table of the loss
//! scenarios), JSON and CSV files, and the chart. Each scenario runs `--repeats` times per
//! server; tables and `results.csv` give per scenario and server the median of the runs with
//! their min–max, `runs.csv` and `results.json` every run as well. The Lamina / Janus table gives
//! the ratios of the medians, and for pkt per CPU-s and delay p99 also run by run.

use std::fmt::Write as _;

use serde::Serialize;

use crate::result::RunResult;
use crate::scenario::Scenario;
use crate::summary::Summary;
mod files;
#[cfg(test)]
use files::flat_row;
pub use files::write;

/// Everything a benchmark run wrote.
#[derive(Debug, Serialize)]
pub struct Report {
    /// The command line.
    pub command: String,
    /// Host facts (cores, kernel, load average at start).
    pub host: String,
    /// Video loop bitrate actually encoded, kbit/s.
    pub video_kbps: f64,
    /// Runs of each scenario per server (interleaved between the servers).
    pub repeats: usize,
    /// Scenarios run.
    pub scenarios: Vec<Scenario>,
    /// Every run, in the order they ran.
    pub results: Vec<RunResult>,
    /// Per scenario and server: median, min and max of the runs.
    pub summaries: Vec<Summary>,
    /// Largest passing room per server found by the ramp (participants), if a ramp ran.
    pub ramp_max: Vec<(String, usize)>,
}

/// `median (min–max)` of a figure over the runs, or just the median when the runs agree.
fn spread(s: &Summary, f: fn(&RunResult) -> f64, decimals: usize) -> String {
    median_range(f(&s.median), f(&s.min), f(&s.max), decimals, "")
}

/// `<m><unit> (<lo>–<hi>)`, or just `<m><unit>` when `lo` and `hi` print alike.
fn median_range(m: f64, lo: f64, hi: f64, decimals: usize, unit: &str) -> String {
    let one = format!("{m:.decimals$}{unit}");
    if format!("{lo:.decimals$}") == format!("{hi:.decimals$}") {
        one
    } else {
        format!("{one} ({lo:.decimals$}–{hi:.decimals$})")
    }
}

fn ratio(a: f64, b: f64) -> String {
    if b > 0.0 {
        format!("{:.2}x", a / b)
    } else {
        "-".into()
    }
}

/// Lamina / Janus ratio of `f` run by run: each Lamina run against the Janus run of the same
/// repeat (they ran one after the other, so a machine that gets busier or quieter between
/// repeats moves both), as `median (min–max)` over the repeats; "-" without a pair.
fn paired_ratio(results: &[RunResult], scenario: &str, f: fn(&RunResult) -> f64) -> String {
    let mut ratios: Vec<f64> = results
        .iter()
        .filter(|l| l.server == "lamina" && l.scenario == scenario)
        .filter_map(|l| {
            let j = results
                .iter()
                .find(|j| j.server == "janus" && j.scenario == scenario && j.repeat == l.repeat)?;
            (f(j) > 0.0).then(|| f(l) / f(j))
        })
        .collect();
    if ratios.is_empty() {
        return "-".into();
    }
    let lo = ratios.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = ratios.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    median_range(crate::summary::median(&mut ratios), lo, hi, 2, "x")
}

/// The side-by-side table (Markdown, also fit for a terminal): medians of the runs, min–max
/// in brackets.
pub fn table(report: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Median of {} run(s) per scenario and server, (min–max) where they differ.\n",
        report.repeats
    );
    table_head(&mut out, "| scenario | server | runs | streams | pkt/s | kbit/s | delivered % | CPU % | pkt per CPU-s | peak RSS MiB | MiB/participant | threads | loss mean/max % | delay p50/p99 ms | first frame p50/p95 ms | RTCP pkt per participant/s | wake-ups/s | RTCP-thread wake-ups/s | RTCP-thread CPU % | bench CPU % |");
    for s in &report.summaries {
        let r = &s.median;
        let _ = writeln!(
            out,
            "| {} | {} | {} | {}/{} | {} | {:.0} | {} | {} | {} | {} | {:.2} | {} | {:.2}/{:.2} | {} / {} | {} / {}, n={}{} | {} | {} | {} | {} | {:.0} |",
            s.scenario,
            s.server,
            s.runs,
            s.min.streams_flowing,
            r.streams_expected,
            spread(s, |r| r.pkts_per_s, 0),
            r.kbps,
            spread(s, |r| r.delivered_pct, 1),
            spread(s, |r| r.server_cpu_pct, 1),
            spread(s, |r| r.pkts_per_cpu_s, 0),
            spread(s, |r| r.peak_rss_mib, 1),
            r.mib_per_participant,
            s.max.threads,
            r.loss_mean_pct,
            s.max.loss_max_pct,
            spread(s, |r| r.delay_p50_ms, 2),
            spread(s, |r| r.delay_p99_ms, 1),
            spread(s, |r| r.first_frame_p50_ms, 0),
            spread(s, |r| r.first_frame_p95_ms, 0),
            r.first_frame_samples,
            if s.max.first_frame_missing > 0 { format!(", up to {} missing", s.max.first_frame_missing) } else { String::new() },
            spread(s, |r| r.rtcp_per_participant_s, 1),
            spread(s, |r| r.server_wakeups_per_s, 0),
            spread(s, |r| r.rtcp_thread_wakeups_per_s, 0),
            spread(s, |r| r.rtcp_thread_cpu_pct, 2),
            r.bench_cpu_pct,
        );
    }
    let pairs: Vec<(&RunResult, &RunResult)> = report
        .summaries
        .iter()
        .filter(|s| s.server == "lamina")
        .filter_map(|l| {
            report
                .summaries
                .iter()
                .find(|j| j.server == "janus" && j.scenario == l.scenario)
                .map(|j| (&l.median, &j.median))
        })
        .collect();
    if !pairs.is_empty() {
        let _ = writeln!(out, "\nLamina / Janus ratios of the medians, and run by run (each Lamina run against the Janus run of the same repeat: median (min–max)) (pkt per CPU-s: higher is better for Lamina; CPU, RSS, delay, first frame: lower is better):\n");
        table_head(
            &mut out,
            "| scenario | pkt per CPU-s | pkt per CPU-s, run by run | CPU % | peak RSS | delay p99 | delay p99, run by run | first frame p50 |",
        );
        for (l, j) in pairs {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} | {} |",
                l.scenario,
                ratio(l.pkts_per_cpu_s, j.pkts_per_cpu_s),
                paired_ratio(&report.results, &l.scenario, |r| r.pkts_per_cpu_s),
                ratio(l.server_cpu_pct, j.server_cpu_pct),
                ratio(l.peak_rss_mib, j.peak_rss_mib),
                ratio(l.delay_p99_ms, j.delay_p99_ms),
                paired_ratio(&report.results, &l.scenario, |r| r.delay_p99_ms),
                ratio(l.first_frame_p50_ms, j.first_frame_p50_ms),
            );
        }
    }
    if report.results.len() > report.summaries.len() {
        runs_table(&mut out, &report.results);
    }
    first_frame_table(&mut out, &report.summaries);
    turn_table(&mut out, &report.summaries);
    simulcast_table(&mut out, &report.summaries);
    let medians: Vec<RunResult> = report.summaries.iter().map(|s| s.median.clone()).collect();
    repair_table(&mut out, &medians);
    for (server, n) in &report.ramp_max {
        let _ = writeln!(out, "\nramp: largest room for {server} with loss and undelivered < 1 %, server CPU < limit: {n} participants");
    }
    let errors: Vec<String> = report
        .results
        .iter()
        .flat_map(|r| {
            r.errors
                .iter()
                .map(move |e| format!("{} {} run {}: {e}", r.server, r.scenario, r.repeat))
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

/// Writes a markdown table's header row and its separator (one `---` per column of `header`).
fn table_head(out: &mut String, header: &str) {
    let columns = header.matches('|').count().saturating_sub(1);
    let _ = writeln!(out, "{header}\n|{}", "---|".repeat(columns));
}

/// Where a late joiner's first frame time goes, for the scenarios that had late joiners.
fn first_frame_table(out: &mut String, summaries: &[Summary]) {
    let joined: Vec<&Summary> = summaries
        .iter()
        .filter(|s| s.median.first_frame_samples > 0)
        .collect();
    if joined.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "\nLate joiners, where the time to the first frame goes (medians, ms): join → the joiner's receiving connection up (ICE + DTLS); from then on, to the publishers' first keyframe request, to the keyframe they sent in answer, to the joiner's first video packet per stream, and to the first complete keyframe (first frame − connected):\n"
    );
    table_head(out, "| scenario | server | first frame p50 | join → connected | → keyframe request | → keyframe sent | → first video packet | → first frame |");
    for s in joined {
        let r = &s.median;
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {:.0} |",
            s.scenario,
            s.server,
            spread(s, |r| r.first_frame_p50_ms, 0),
            spread(s, |r| r.first_frame_connect_p50_ms, 0),
            spread(s, |r| r.first_frame_request_p50_ms, 0),
            spread(s, |r| r.first_frame_key_sent_p50_ms, 0),
            spread(s, |r| r.first_frame_packet_p50_ms, 0),
            r.first_frame_p50_ms - r.first_frame_connect_p50_ms,
        );
    }
}

/// The relay-only scenarios next to their plain counterparts (same scenario without `-turn`,
/// same server), when both ran: what routing every datagram through the embedded TURN server
/// costs.
fn turn_table(out: &mut String, summaries: &[Summary]) {
    let relayed: Vec<&Summary> = summaries.iter().filter(|s| s.median.relay).collect();
    if relayed.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "\nThe browser-shaped path: relay-only participants (every datagram through Lamina's embedded TURN server) against the plain scenario; tokio threads: where the TURN server (and signalling) runs:\n"
    );
    table_head(out, "| scenario | server | relayed participants | TURN allocations | relayed datagrams in/s | pkt/s | CPU % | tokio-thread CPU % | pkt per CPU-s | vs plain: pkt per CPU-s | vs plain: CPU % added | vs plain: tokio CPU % added | delay p50/p99 ms |");
    for s in relayed {
        let r = &s.median;
        let base = s.scenario.trim_end_matches("-turn");
        let plain = summaries
            .iter()
            .find(|p| p.server == s.server && p.scenario == base && !p.median.relay)
            .map(|p| &p.median);
        let (vs_rate, vs_cpu, vs_tokio) = match plain {
            Some(p) => (
                ratio(r.pkts_per_cpu_s, p.pkts_per_cpu_s),
                format!("{:+.1}", r.server_cpu_pct - p.server_cpu_pct),
                format!(
                    "{:+.1}",
                    r.turn_cpu_pct + r.tokio_cpu_pct - p.turn_cpu_pct - p.tokio_cpu_pct
                ),
            ),
            None => ("-".into(), "-".into(), "-".into()),
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {:.0} | {} | {} | {} | {} | {} | {} | {} | {} | {} / {} |",
            s.scenario,
            s.server,
            s.min.relayed_peers,
            s.max.turn_allocations,
            r.relay_rx_per_s,
            spread(s, |r| r.pkts_per_s, 0),
            spread(s, |r| r.server_cpu_pct, 1),
            spread(s, |r| r.turn_cpu_pct, 1),
            spread(s, |r| r.tokio_cpu_pct, 1),
            spread(s, |r| r.pkts_per_cpu_s, 0),
            vs_rate,
            vs_cpu,
            vs_tokio,
            spread(s, |r| r.delay_p50_ms, 2),
            spread(s, |r| r.delay_p99_ms, 1),
        );
    }
}

/// The simulcast scenarios next to their plain counterparts (same scenario without `-sim…`,
/// same server), when both ran: what taking in three layers and forwarding one costs.
fn simulcast_table(out: &mut String, summaries: &[Summary]) {
    let sim: Vec<&Summary> = summaries.iter().filter(|s| s.median.simulcast).collect();
    if sim.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "\nSimulcast: every publisher sends l/m/h, receivers take one layer of each (h by default; `-sim-mixed`: every second participant asks for l); packets in = all publishers' audio and layers, by layer: what the publishers sent and what the receivers got (identified by payload), per second:\n"
    );
    table_head(out, "| scenario | server | pkt/s in | sent l/m/h | received l/m/h | pkt/s out | delivered % | CPU % | pkt per CPU-s | vs plain: pkt per CPU-s | vs plain: CPU % added | downlink estimate p50/min kbit/s | layer switches |");
    for s in sim {
        let r = &s.median;
        let base = r
            .scenario
            .replacen("-sim-mixed", "", 1)
            .replacen("-sim", "", 1);
        let plain = summaries
            .iter()
            .find(|p| p.server == s.server && p.scenario == base && !p.median.simulcast)
            .map(|p| &p.median);
        let (vs_rate, vs_cpu) = match plain {
            Some(p) => (
                ratio(r.pkts_per_cpu_s, p.pkts_per_cpu_s),
                format!("{:+.1}", r.server_cpu_pct - p.server_cpu_pct),
            ),
            None => ("-".into(), "-".into()),
        };
        let _ = writeln!(
            out,
            "| {} | {} | {:.0} | {:.0}/{:.0}/{:.0} | {:.0}/{:.0}/{:.0} | {} | {} | {} | {} | {} | {} | {} | {} |",
            s.scenario,
            s.server,
            r.ingest_pkts_per_s,
            r.tx_l_pkts_per_s,
            r.tx_m_pkts_per_s,
            r.tx_h_pkts_per_s,
            r.rx_l_pkts_per_s,
            r.rx_m_pkts_per_s,
            r.rx_h_pkts_per_s,
            spread(s, |r| r.pkts_per_s, 0),
            spread(s, |r| r.delivered_pct, 1),
            spread(s, |r| r.server_cpu_pct, 1),
            spread(s, |r| r.pkts_per_cpu_s, 0),
            vs_rate,
            vs_cpu,
            if r.downlink_estimate_p50_kbps > 0.0 {
                format!(
                    "{:.0}/{:.0}",
                    r.downlink_estimate_p50_kbps, r.downlink_estimate_min_kbps
                )
            } else {
                "-".into()
            },
            if r.layer_switches.is_empty() { "none" } else { &r.layer_switches },
        );
    }
}

/// Every run in the order they ran (servers interleaved), for the spread behind the medians.
fn runs_table(out: &mut String, results: &[RunResult]) {
    let _ = writeln!(out, "\nRuns in order:\n");
    table_head(out, "| scenario | server | run | pkt/s | CPU % | pkt per CPU-s | peak RSS MiB | delay p50/p99 ms | first frame p50 ms | RTCP pkt per participant/s | wake-ups/s | RTCP-thread CPU % | tokio-thread CPU % | TURN-thread CPU % | load average | libsrtp2 |");
    for r in results {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {:.0} | {:.1} | {:.0} | {:.1} | {:.2}/{:.1} | {:.0} | {:.1} | {:.0} | {:.2} | {:.2} | {:.2} | {:.1} | {} |",
            r.scenario,
            r.server,
            r.repeat,
            r.pkts_per_s,
            r.server_cpu_pct,
            r.pkts_per_cpu_s,
            r.peak_rss_mib,
            r.delay_p50_ms,
            r.delay_p99_ms,
            r.first_frame_p50_ms,
            r.rtcp_per_participant_s,
            r.server_wakeups_per_s,
            r.rtcp_thread_cpu_pct,
            r.tokio_cpu_pct,
            r.turn_cpu_pct,
            r.loadavg,
            r.srtp_library,
        );
    }
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
    table_head(out, "| scenario | server | drop % | added latency ms | video streams with NACK / RTX | dropped | repaired (by RTX) | repaired % | unrepaired | unrepaired % | repair p50/p95 ms | NACKs sent | pkt/s | CPU % |");
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::summary::{median, summarise};

    fn run(server: &str, repeat: usize, pkt_per_cpu: f64, threads: u64) -> RunResult {
        RunResult {
            server: server.into(),
            scenario: "room4".into(),
            repeat,
            pkts_per_cpu_s: pkt_per_cpu,
            threads,
            ..Default::default()
        }
    }

    #[test]
    fn summaries_hold_median_min_and_max_per_scenario_and_server() {
        let mut bad = run("lamina", 3, 30.0, 60);
        bad.errors.push("late joiner failed".into());
        let results = vec![
            run("lamina", 1, 10.0, 64),
            run("janus", 1, 5.0, 20),
            run("lamina", 2, 20.0, 61),
            run("janus", 2, 7.0, 21),
            bad,
        ];
        let s = summarise(&results);
        assert_eq!(s.len(), 2);
        assert_eq!((s[0].server.as_str(), s[0].runs), ("lamina", 3));
        assert_eq!(s[0].median.pkts_per_cpu_s, 20.0);
        assert_eq!(
            (s[0].min.pkts_per_cpu_s, s[0].max.pkts_per_cpu_s),
            (10.0, 30.0)
        );
        assert_eq!(s[0].median.threads, 61);
        assert_eq!(s[0].median.scenario, "room4");
        assert_eq!(s[0].median.errors, vec!["run 3: late joiner failed"]);
        // Two runs: the mean of both; integers rounded.
        assert_eq!(s[1].median.pkts_per_cpu_s, 6.0);
        assert_eq!(s[1].median.threads, 21);
        let report = Report {
            command: String::new(),
            host: String::new(),
            video_kbps: 0.0,
            repeats: 3,
            scenarios: Vec::new(),
            results: results.clone(),
            summaries: s,
            ramp_max: Vec::new(),
        };
        let t = table(&report);
        assert!(t.contains("| room4 | lamina | 3 |"), "{t}");
        assert!(t.contains("20 (10–30)"), "{t}");
        assert!(t.contains("Runs in order"), "{t}");
        // Medians 20 / 6; run by run 10 / 5 and 20 / 7 (the third Lamina run has no pair);
        // no delays measured: no ratio.
        assert!(
            t.contains("| room4 | 3.33x | 2.43x (2.00–2.86) | - | - | - | - | - |"),
            "{t}"
        );
        let (names, values) = flat_row(&results[0]).unwrap();
        assert_eq!(names.len(), values.len());
        assert_eq!(&names[..3], ["server", "scenario", "repeat"]);
    }

    #[test]
    fn median_of_an_even_count_is_the_mean_of_the_middle_two() {
        assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut []), 0.0);
    }
}
