//! Whether the server came back to its baseline, and the run's summary.
//!
//! Threads, fds, GStreamer elements, rooms and peers must return exactly (no more than at
//! baseline). RSS cannot: glibc keeps freed memory in its per-thread arenas for reuse, and
//! the churn's threads spread allocations over many arenas. So both baseline and end RSS are
//! also measured after `malloc_trim(0)` (free memory handed back), and the end may exceed the
//! baseline by the tolerance: memory the process still holds after every room closed (GLib's
//! slice caches, pages fragmented by live data). Without gdb the raw RSS is compared.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::churn::ChurnStats;
use crate::report::{Phase, Sample};
use crate::server::Probe;

/// The end of a run against its baseline.
#[derive(Debug, Clone)]
pub struct Verdict {
    /// The idle server after start-up and the warm-up room.
    pub baseline: Probe,
    /// Once everyone left (counts back, or the drain timed out).
    pub end: Probe,
    /// (baseline, end) RSS in KiB after `malloc_trim(0)`, when it could be called.
    pub trimmed: Option<(u64, u64)>,
    /// Why trimming was not possible.
    pub trim_error: Option<String>,
    /// How far above baseline the compared RSS may end, KiB.
    pub tolerance_kib: u64,
    /// Seconds from the churn's end until the counts were back (or the drain gave up).
    pub drain_secs: f64,
}

/// Whether threads, fds, elements, rooms and peers are back at `base`.
pub fn counts_returned(p: &Probe, base: &Probe) -> bool {
    p.rooms == 0
        && p.peers == 0
        && p.elements <= base.elements
        && p.threads <= base.threads
        && p.fds <= base.fds
}

impl Verdict {
    /// The RSS pair the verdict compares: trimmed when available, raw otherwise.
    fn rss_pair(&self) -> (u64, u64) {
        self.trimmed
            .unwrap_or((self.baseline.rss_kib, self.end.rss_kib))
    }

    /// Whether RSS ended within the tolerance.
    pub fn rss_returned(&self) -> bool {
        let (base, end) = self.rss_pair();
        end <= base + self.tolerance_kib
    }

    /// Whether every count returned.
    pub fn passed(&self) -> bool {
        counts_returned(&self.end, &self.baseline) && self.rss_returned()
    }

    /// The summary table and churn figures.
    pub fn summary(&self, samples: &[Sample], stats: &ChurnStats) -> String {
        let (base, end) = (&self.baseline, &self.end);
        let start = samples.first().map(|s| s.probe).unwrap_or_default();
        let churn = samples.iter().filter(|s| s.phase == Phase::Churn);
        let peak = |f: fn(&Probe) -> u64| churn.clone().map(|s| f(&s.probe)).max().unwrap_or(0);
        let row = |name: &str, f: fn(&Probe) -> u64, verdict: &str| {
            format!(
                "{name:<9} {:>10} {:>10} {:>10} {:>10}  {verdict}\n",
                f(&start),
                f(base),
                peak(f),
                f(end)
            )
        };
        let back = |ok: bool| if ok { "returned" } else { "NOT returned" };
        let mut s = format!(
            "{:<9} {:>10} {:>10} {:>10} {:>10}\n",
            "", "start", "baseline", "peak", "end"
        );
        s += &row(
            "rss_kib",
            |p| p.rss_kib,
            &format!(
                "end − baseline = {:+} KiB",
                end.rss_kib as i64 - base.rss_kib as i64
            ),
        );
        s += &row("threads", |p| p.threads, back(end.threads <= base.threads));
        s += &row("fds", |p| p.fds, back(end.fds <= base.fds));
        s += &row(
            "elements",
            |p| p.elements,
            back(end.elements <= base.elements),
        );
        s += &row("rooms", |p| p.rooms, back(end.rooms == 0));
        s += &row("peers", |p| p.peers, back(end.peers == 0));
        let (b, e) = self.rss_pair();
        s += &match (self.trimmed, &self.trim_error) {
            (Some(_), _) => format!(
                "rss after malloc_trim(0): baseline {b} KiB, end {e} KiB, end − baseline = {:+} KiB \
                 (tolerance {} KiB): {}\n",
                e as i64 - b as i64,
                self.tolerance_kib,
                back(self.rss_returned())
            ),
            (None, err) => format!(
                "rss compared untrimmed ({}): end − baseline = {:+} KiB (tolerance {} KiB): {}\n",
                err.as_deref().unwrap_or("trim off"),
                e as i64 - b as i64,
                self.tolerance_kib,
                back(self.rss_returned())
            ),
        };
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        s += &format!(
            "churn: {} joins ({} failed), {} leaves, {} dropped without leaving, {} screen shares \
             ({} removed before leaving), {} stays decoded remote video, {} stays had a remote \
             video track ≥ 8 s but decoded none, {} frames decoded\n",
            l(&stats.joins),
            l(&stats.join_failures),
            l(&stats.leaves),
            l(&stats.drops),
            l(&stats.shares_added),
            l(&stats.shares_removed),
            l(&stats.stays_with_media),
            l(&stats.stays_without_media),
            l(&stats.frames)
        );
        s += &format!(
            "drain: {} {:.0} s after the churn\n",
            if counts_returned(end, base) {
                "threads, fds, elements, rooms and peers back at baseline"
            } else {
                "counts did NOT return to baseline"
            },
            self.drain_secs
        );
        s
    }
}
