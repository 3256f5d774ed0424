//! The PNG chart: forwarded packets per second and server CPU against participants per room,
//! one line per server (all-publishing rooms without simulated loss: the room-N scenarios and
//! the ramp; simulcast runs left out). Text uses the Hack font embedded by
//! `epaint_default_fonts`, so no system font is needed.

use std::path::Path;

use plotters::prelude::*;
use plotters::style::FontStyle;

use crate::result::RunResult;
use crate::BenchError;

const FONT: &str = "sans-serif";

/// Title, y-axis label and the figure drawn.
type Panel = (&'static str, &'static str, fn(&RunResult) -> f64);

fn out_err(e: impl std::fmt::Display) -> BenchError {
    BenchError::Output(format!("chart: {e}"))
}

/// Series of one server: (participants per room, value), sorted, one point per size.
fn series(results: &[RunResult], server: &str, f: impl Fn(&RunResult) -> f64) -> Vec<(f64, f64)> {
    let mut v: Vec<(f64, f64)> = results
        .iter()
        .filter(|r| {
            r.server == server
                && r.publishers == r.per_room
                && r.rooms == 1
                && r.drop_pct == 0.0
                && !r.simulcast
        })
        .map(|r| (r.per_room as f64, f(r)))
        .collect();
    v.sort_by(|a, b| a.0.total_cmp(&b.0));
    v.dedup_by(|a, b| a.0 == b.0);
    v
}

/// Draws `path` from `results`.
pub fn draw(results: &[RunResult], path: &Path) -> Result<(), BenchError> {
    let _ =
        plotters::style::register_font(FONT, FontStyle::Normal, epaint_default_fonts::HACK_REGULAR);
    let root = BitMapBackend::new(path, (1000, 760)).into_drawing_area();
    root.fill(&WHITE).map_err(out_err)?;
    let (top, bottom) = root.split_vertically(380);
    let servers = [
        ("lamina", RGBColor(0x1f, 0x77, 0xb4)),
        ("janus", RGBColor(0xd6, 0x27, 0x28)),
    ];
    let panels: [Panel; 2] = [
        (
            "Forwarded packets per second (at receivers)",
            "pkt/s",
            |r| r.pkts_per_s,
        ),
        ("Server CPU (% of one core)", "CPU %", |r| r.server_cpu_pct),
    ];
    let xmax = results
        .iter()
        .filter(|r| r.publishers == r.per_room)
        .map(|r| r.per_room)
        .max()
        .unwrap_or(2)
        .max(2) as f64
        + 0.5;
    for (area, (title, ylabel, f)) in [top, bottom].into_iter().zip(panels) {
        let ymax = results.iter().map(f).fold(1.0f64, f64::max) * 1.15;
        let mut chart = ChartBuilder::on(&area)
            .caption(title, (FONT, 20))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(70)
            .build_cartesian_2d(1.5f64..xmax, 0f64..ymax)
            .map_err(out_err)?;
        chart
            .configure_mesh()
            .x_desc("participants per room (all publishing, all subscribing)")
            .y_desc(ylabel)
            .light_line_style(WHITE)
            .x_labels(xmax as usize)
            .x_label_formatter(&|x| format!("{x:.0}"))
            .label_style((FONT, 14))
            .draw()
            .map_err(out_err)?;
        for (name, color) in servers {
            let pts = series(results, name, f);
            if pts.is_empty() {
                continue;
            }
            chart
                .draw_series(LineSeries::new(pts.clone(), color.stroke_width(2)))
                .map_err(out_err)?
                .label(name)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                });
            chart
                .draw_series(pts.into_iter().map(|p| Circle::new(p, 4, color.filled())))
                .map_err(out_err)?;
        }
        chart
            .configure_series_labels()
            .label_font((FONT, 14))
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .position(SeriesLabelPosition::UpperLeft)
            .draw()
            .map_err(out_err)?;
    }
    root.present().map_err(out_err)?;
    Ok(())
}
