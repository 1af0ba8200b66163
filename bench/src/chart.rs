//! The results as a PNG: throughput and latency against concurrency, one line per kind.
use std::path::Path;

use anyhow::{Context, Result, anyhow};
use plotters::prelude::*;

use crate::{Kind, Run};

const FONT: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";

pub fn draw(path: &Path, runs: &[Run]) -> Result<()> {
    let font =
        std::fs::read(FONT).with_context(|| format!("{FONT} (Debian: fonts-dejavu-core)"))?;
    // plotters keeps the font for the life of the process.
    plotters::style::register_font(
        "sans-serif",
        FontStyle::Normal,
        Box::leak(font.into_boxed_slice()),
    )
    .map_err(|_| anyhow!("cannot load {FONT}"))?;

    let root = BitMapBackend::new(path, (1400, 560)).into_drawing_area();
    root.fill(&WHITE)?;
    let (left, right) = root.split_horizontally(700);
    let mut cs: Vec<usize> = runs.iter().map(|r| r.concurrency).collect();
    cs.sort_unstable();
    cs.dedup();
    let x_max = cs.len().max(1) as f64 - 0.5;
    let label = |x: &f64| {
        let i = x.round();
        if (x - i).abs() < 1e-6 && i >= 0.0 {
            cs.get(i as usize)
                .map_or(String::new(), |c| format!("c={c}"))
        } else {
            String::new()
        }
    };
    let xi = |c: usize| cs.iter().position(|&v| v == c).unwrap_or(0) as f64;
    let kinds = [Kind::Floor, Kind::OrdersTemporal, Kind::OrdersApi];
    let color = |k: Kind| match k {
        Kind::Floor => RGBColor(120, 120, 120),
        Kind::OrdersTemporal => RGBColor(31, 119, 180),
        Kind::OrdersApi => RGBColor(214, 39, 40),
    };

    let tmax = runs.iter().map(|r| r.throughput).fold(1.0, f64::max) * 1.15;
    let mut chart = ChartBuilder::on(&left)
        .caption("Throughput (orders/s)", ("sans-serif", 24))
        .margin(16)
        .x_label_area_size(36)
        .y_label_area_size(56)
        .build_cartesian_2d(-0.5..x_max, 0.0..tmax)?;
    chart
        .configure_mesh()
        .x_labels(cs.len() * 2 + 1)
        .x_label_formatter(&label)
        .y_desc("orders/s")
        .draw()?;
    for k in kinds {
        let pts: Vec<(f64, f64)> = runs
            .iter()
            .filter(|r| r.kind == k)
            .map(|r| (xi(r.concurrency), r.throughput))
            .collect();
        if pts.is_empty() {
            continue;
        }
        let c = color(k);
        chart
            .draw_series(LineSeries::new(pts.clone(), c.stroke_width(3)))?
            .label(k.label())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(3)));
        chart.draw_series(pts.iter().map(|&p| Circle::new(p, 5, c.filled())))?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;

    let lmax = runs.iter().map(|r| r.end_to_end_ms.p99).fold(1.0, f64::max) * 1.15;
    let mut chart = ChartBuilder::on(&right)
        .caption(
            "Latency, placement + payment (ms): p50 solid, p99 dashed",
            ("sans-serif", 22),
        )
        .margin(16)
        .x_label_area_size(36)
        .y_label_area_size(56)
        .build_cartesian_2d(-0.5..x_max, 0.0..lmax)?;
    chart
        .configure_mesh()
        .x_labels(cs.len() * 2 + 1)
        .x_label_formatter(&label)
        .y_desc("ms")
        .draw()?;
    for k in kinds {
        let runs_k: Vec<&Run> = runs.iter().filter(|r| r.kind == k).collect();
        if runs_k.is_empty() {
            continue;
        }
        let c = color(k);
        let p50: Vec<(f64, f64)> = runs_k
            .iter()
            .map(|r| (xi(r.concurrency), r.end_to_end_ms.p50))
            .collect();
        let p99: Vec<(f64, f64)> = runs_k
            .iter()
            .map(|r| (xi(r.concurrency), r.end_to_end_ms.p99))
            .collect();
        chart
            .draw_series(LineSeries::new(p50.clone(), c.stroke_width(3)))?
            .label(k.label())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(3)));
        chart.draw_series(p50.iter().map(|&p| Circle::new(p, 5, c.filled())))?;
        chart.draw_series(DashedLineSeries::new(p99, 8, 6, c.stroke_width(2)))?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}
