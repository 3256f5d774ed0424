//! The soak's output: samples as CSV, the curves as a PNG (text in an embedded font, so no
//! system font is needed), and the verdict.

use std::io::Write;
use std::path::Path;

use plotters::prelude::*;
use plotters::style::FontStyle;

use crate::server::Probe;

/// Writing an output file failed.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The CSV could not be written.
    #[error("csv {0}: {1}")]
    Csv(String, std::io::Error),
    /// The chart could not be drawn.
    #[error("chart {0}: {1}")]
    Chart(String, String),
}

/// One sample of the server during the run.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    /// Seconds since the server started.
    pub t: f64,
    /// Phase the sample was taken in.
    pub phase: Phase,
    /// What the server looked like.
    pub probe: Probe,
    /// Participants in rooms (client side).
    pub live: u64,
}

/// Phases of a soak run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Idle after start-up.
    Start,
    /// The warm-up room.
    Warmup,
    /// Waiting for the idle server to settle: the last sample of it is the baseline.
    Baseline,
    /// Room churn.
    Churn,
    /// Everyone left: waiting for the counts to return to baseline.
    Drain,
}

impl Phase {
    fn name(self) -> &'static str {
        match self {
            Phase::Start => "start",
            Phase::Warmup => "warmup",
            Phase::Baseline => "baseline",
            Phase::Churn => "churn",
            Phase::Drain => "drain",
        }
    }
}

/// Writes the samples to `path`.
pub fn write_csv(samples: &[Sample], path: &Path) -> Result<(), ReportError> {
    let err = |e| ReportError::Csv(path.display().to_string(), e);
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).map_err(err)?);
    writeln!(
        f,
        "t_s,phase,rss_kib,threads,fds,elements,rooms,peers,participants"
    )
    .map_err(err)?;
    for s in samples {
        let p = s.probe;
        writeln!(
            f,
            "{:.1},{},{},{},{},{},{},{},{}",
            s.t,
            s.phase.name(),
            p.rss_kib,
            p.threads,
            p.fds,
            p.elements,
            p.rooms,
            p.peers,
            s.live
        )
        .map_err(err)?;
    }
    f.flush().map_err(err)
}

const FONT: &str = "sans-serif";

/// Draws the curves of `samples` to `path`: one panel per quantity, with the baseline as a
/// green dashed line and the churn period shaded. The RSS panel also shows, when `trimmed`
/// (baseline, end RSS after `malloc_trim(0)`, KiB) is known, those two values as orange
/// diamonds, and the limit the end is held to (compared baseline + tolerance) in red.
pub fn draw(
    samples: &[Sample],
    baseline: &Probe,
    rss_tolerance_kib: u64,
    trimmed: Option<(u64, u64)>,
    path: &Path,
) -> Result<(), ReportError> {
    let err =
        |e: &dyn std::fmt::Display| ReportError::Chart(path.display().to_string(), e.to_string());
    let _ =
        plotters::style::register_font(FONT, FontStyle::Normal, epaint_default_fonts::HACK_REGULAR);
    let root = BitMapBackend::new(path, (1200, 900)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let tmax = samples
        .iter()
        .map(|s| s.t / 60.0)
        .fold(1.0 / 60.0, f64::max);
    let churn: Vec<f64> = samples
        .iter()
        .filter(|s| s.phase == Phase::Churn)
        .map(|s| s.t / 60.0)
        .collect();
    let churn_span = churn.first().zip(churn.last()).map(|(a, b)| (*a, *b));
    type Get = fn(&Sample) -> f64;
    let panels: [(&str, Get, Option<f64>); 6] = [
        (
            "Server RSS (MiB)",
            |s| s.probe.rss_kib as f64 / 1024.0,
            Some(baseline.rss_kib as f64 / 1024.0),
        ),
        (
            "Server threads",
            |s| s.probe.threads as f64,
            Some(baseline.threads as f64),
        ),
        (
            "Server open fds",
            |s| s.probe.fds as f64,
            Some(baseline.fds as f64),
        ),
        (
            "GStreamer elements (all rooms)",
            |s| s.probe.elements as f64,
            Some(baseline.elements as f64),
        ),
        (
            "Peers (blue: server) / participants (red: client)",
            |s| s.probe.peers as f64,
            None,
        ),
        ("Rooms", |s| s.probe.rooms as f64, None),
    ];
    let areas = root.split_evenly((3, 2));
    for (i, (area, (title, get, base))) in areas.iter().zip(panels).enumerate() {
        let ymax = samples.iter().map(get).fold(base.unwrap_or(0.0), f64::max);
        let ymax = if i == 0 {
            ymax.max(base.unwrap_or(0.0) + rss_tolerance_kib as f64 / 1024.0) * 1.1
        } else {
            (ymax * 1.15).max(1.0)
        };
        let mut chart = ChartBuilder::on(area)
            .caption(title, (FONT, 18))
            .margin(10)
            .x_label_area_size(35)
            .y_label_area_size(60)
            .build_cartesian_2d(0f64..tmax, 0f64..ymax)
            .map_err(|e| err(&e))?;
        chart
            .configure_mesh()
            .x_desc("minutes since server start")
            .y_label_formatter(&|v| {
                // Counts: label whole numbers only.
                if (v - v.round()).abs() < 1e-6 || *v >= 10.0 {
                    format!("{v:.0}")
                } else {
                    String::new()
                }
            })
            .label_style((FONT, 12))
            .draw()
            .map_err(|e| err(&e))?;
        if let Some((a, b)) = churn_span {
            chart
                .draw_series(std::iter::once(Rectangle::new(
                    [(a, 0.0), (b, ymax)],
                    RGBColor(0xff, 0xf1, 0xd6).filled(),
                )))
                .map_err(|e| err(&e))?;
        }
        let blue = RGBColor(0x1f, 0x77, 0xb4);
        let pts: Vec<(f64, f64)> = samples.iter().map(|s| (s.t / 60.0, get(s))).collect();
        chart
            .draw_series(LineSeries::new(pts.clone(), blue.stroke_width(2)))
            .map_err(|e| err(&e))?;
        chart
            .draw_series(pts.iter().map(|p| Circle::new(*p, 2, blue.filled())))
            .map_err(|e| err(&e))?;
        if i == 4 {
            let live = samples.iter().map(|s| (s.t / 60.0, s.live as f64));
            chart
                .draw_series(LineSeries::new(live, RED.stroke_width(1)))
                .map_err(|e| err(&e))?;
        }
        let mut dashed = |y: f64, color: RGBColor| {
            chart
                .draw_series(DashedLineSeries::new(
                    [(0.0, y), (tmax, y)],
                    6,
                    4,
                    color.stroke_width(1),
                ))
                .map(|_| ())
                .map_err(|e| err(&e))
        };
        if let Some(b) = base {
            dashed(b, RGBColor(0x2c, 0xa0, 0x2c))?;
        }
        if i == 0 {
            let mib = |kib: u64| kib as f64 / 1024.0;
            let compared = trimmed.map_or(baseline.rss_kib, |(b, _)| b);
            dashed(mib(compared + rss_tolerance_kib), RED)?;
            let at = |phase: Phase| {
                samples
                    .iter()
                    .rev()
                    .find(|s| s.phase == phase)
                    .map(|s| s.t / 60.0)
            };
            if let (Some((b, e)), Some(tb), Some(te)) =
                (trimmed, at(Phase::Baseline), at(Phase::Drain))
            {
                let orange = RGBColor(0xff, 0x7f, 0x0e);
                chart
                    .draw_series([(tb, mib(b)), (te, mib(e))].map(|p| {
                        EmptyElement::at(p)
                            + Polygon::new(vec![(0, -6), (6, 0), (0, 6), (-6, 0)], orange.filled())
                    }))
                    .map_err(|e| err(&e))?;
            }
        }
    }
    root.present().map_err(|e| err(&e))
}
