//! The results as a PNG: throughput, latency and the tail against concurrency, one line per
//! kind, and the scale-out setups side by side.
use std::path::Path;

use anyhow::{Context, Result, anyhow};
use plotters::coord::Shift;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

use crate::runs::{Kind, Run};

const FONT: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";

pub fn draw(path: &Path, runs: &[Run], scale: &[Run]) -> Result<()> {
    let font =
        std::fs::read(FONT).with_context(|| format!("{FONT} (Debian: fonts-dejavu-core)"))?;
    // plotters keeps the font for the life of the process.
    plotters::style::register_font(
        "sans-serif",
        FontStyle::Normal,
        Box::leak(font.into_boxed_slice()),
    )
    .map_err(|_| anyhow!("cannot load {FONT}"))?;

    let root = BitMapBackend::new(path, (1400, 1120)).into_drawing_area();
    root.fill(&WHITE)?;
    let (top, bottom) = root.split_vertically(560);
    let (left, right) = top.split_horizontally(700);
    let (tail_area, scale_area) = bottom.split_horizontally(700);
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
    let x = XAxis {
        max: x_max,
        labels: cs.len() * 2 + 1,
        format: &label,
    };
    let mut chart = panel(&left, ("Throughput (orders/s)", 24), &x, (tmax, "orders/s"))?;
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
    legend(&mut chart)?;

    let lmax = runs.iter().map(|r| r.end_to_end_ms.p99).fold(1.0, f64::max) * 1.15;
    let mut chart = panel(
        &right,
        (
            "Latency, placement + payment (ms): p50 solid, p99 dashed",
            22,
        ),
        &x,
        (lmax, "ms"),
    )?;
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
    legend(&mut chart)?;
    tail(&tail_area, runs, &x, &xi, kinds, color)?;
    scale_out(&scale_area, scale)?;
    root.present()?;
    Ok(())
}

/// p99 ÷ p50 per phase against concurrency (placement solid, payment dashed), with the
/// performance issue's target, 4.
fn tail(
    area: &Area<'_>,
    runs: &[Run],
    x: &XAxis<'_>,
    xi: &dyn Fn(usize) -> f64,
    kinds: [Kind; 3],
    color: impl Fn(Kind) -> RGBColor,
) -> Result<()> {
    let ratio = |p: &crate::stats::Percentiles| if p.p50 > 0.0 { p.p99 / p.p50 } else { 0.0 };
    let ymax = runs
        .iter()
        .flat_map(|r| [ratio(&r.placement_ms), ratio(&r.payment_ms)])
        .fold(5.0, f64::max)
        * 1.15;
    let caption = "Tail: p99 ÷ p50, placement solid, payment dashed (target ≤ 4)";
    let mut chart = panel(area, (caption, 20), x, (ymax, "p99 / p50"))?;
    chart.draw_series(DashedLineSeries::new(
        vec![(-0.5, 4.0), (x.max, 4.0)],
        4,
        4,
        BLACK.stroke_width(1),
    ))?;
    for k in kinds {
        let runs_k: Vec<&Run> = runs.iter().filter(|r| r.kind == k).collect();
        if runs_k.is_empty() {
            continue;
        }
        let c = color(k);
        let place: Vec<(f64, f64)> = runs_k
            .iter()
            .map(|r| (xi(r.concurrency), ratio(&r.placement_ms)))
            .collect();
        let pay: Vec<(f64, f64)> = runs_k
            .iter()
            .map(|r| (xi(r.concurrency), ratio(&r.payment_ms)))
            .collect();
        chart
            .draw_series(LineSeries::new(place.clone(), c.stroke_width(3)))?
            .label(k.label())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(3)));
        chart.draw_series(place.iter().map(|&p| Circle::new(p, 5, c.filled())))?;
        chart.draw_series(DashedLineSeries::new(pay, 8, 6, c.stroke_width(2)))?;
    }
    legend(&mut chart)
}

/// The scale-out setups: throughput bars, each labelled with its CPU per order and p99s.
fn scale_out(area: &Area<'_>, scale: &[Run]) -> Result<()> {
    if scale.is_empty() {
        return Ok(());
    }
    let n = scale.len();
    let tmax = scale.iter().map(|r| r.throughput).fold(1.0, f64::max) * 1.35;
    let names: Vec<String> = scale
        .iter()
        .map(|r| r.setup.clone().unwrap_or_default())
        .collect();
    let label = |x: &f64| {
        let i = x.round();
        if (x - i).abs() < 1e-6 && i >= 0.0 {
            names.get(i as usize).cloned().unwrap_or_default()
        } else {
            String::new()
        }
    };
    let x = XAxis {
        max: n as f64 - 0.5,
        labels: n * 2 + 1,
        format: &label,
    };
    let c = scale.first().map_or(0, |r| r.concurrency);
    let caption = format!("Scale-out, client at c={c}: orders/s (CPU ms per order, p99 place/pay)");
    let mut chart = panel(area, (&caption, 18), &x, (tmax, "orders/s"))?;
    let blue = RGBColor(31, 119, 180);
    for (i, r) in scale.iter().enumerate() {
        let x0 = i as f64 - 0.3;
        let x1 = i as f64 + 0.3;
        chart.draw_series(std::iter::once(Rectangle::new(
            [(x0, 0.0), (x1, r.throughput)],
            blue.mix(0.7).filled(),
        )))?;
        let cpu: f64 = r.cpu_seconds_per_order.values().sum::<f64>() * 1000.0;
        let text = [
            format!("{:.1}/s, {cpu:.1} ms", r.throughput),
            format!("p99 {:.0} / {:.0} ms", r.placement_ms.p99, r.payment_ms.p99),
        ];
        for (line, t) in text.iter().enumerate() {
            chart.draw_series(std::iter::once(Text::new(
                t.clone(),
                (x0, r.throughput + tmax * (0.09 - 0.045 * line as f64)),
                ("sans-serif", 14),
            )))?;
        }
    }
    Ok(())
}

type Area<'b> = DrawingArea<BitMapBackend<'b>, Shift>;
type Chart<'a, 'b> =
    ChartContext<'a, BitMapBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// The concurrencies across, one position each from 0 (the same in both panels).
struct XAxis<'l> {
    max: f64,
    labels: usize,
    format: &'l dyn Fn(&f64) -> String,
}

/// One of the two panels: `x` across, 0 to `y_max` up.
fn panel<'a, 'b>(
    area: &'a Area<'b>,
    (caption, size): (&str, u32),
    x: &XAxis<'_>,
    (y_max, y_desc): (f64, &str),
) -> Result<Chart<'a, 'b>> {
    let mut chart = ChartBuilder::on(area)
        .caption(caption, ("sans-serif", size))
        .margin(16)
        .x_label_area_size(36)
        .y_label_area_size(56)
        .build_cartesian_2d(-0.5..x.max, 0.0..y_max)?;
    chart
        .configure_mesh()
        .x_labels(x.labels)
        .x_label_formatter(x.format)
        .y_desc(y_desc)
        .draw()?;
    Ok(chart)
}

fn legend<'a, 'b: 'a>(chart: &mut Chart<'a, 'b>) -> Result<()> {
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    Ok(())
}
