//! Line charts as PNG and SVG (plotters). The PNG text uses DejaVu Sans, embedded, so plots
//! render the same on a machine without fonts.

use anyhow::{Context, Result};
use plotters::prelude::*;
use std::path::Path;

static FONT: &[u8] = include_bytes!("../../assets/DejaVuSans.ttf");

fn register_font() {
    use std::sync::Once;
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, FONT);
    });
}

/// One named curve.
pub struct Series {
    pub label: String,
    pub points: Vec<(f64, f64)>,
}

const COLORS: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

fn draw<DB: DrawingBackend>(
    root: DrawingArea<DB, plotters::coord::Shift>,
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series],
    log_y: bool,
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE).map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let pts = series.iter().flat_map(|s| s.points.iter()).filter(|p| p.0.is_finite() && p.1.is_finite());
    let (mut x0, mut x1, mut y0, mut y1) = (f64::INFINITY, f64::NEG_INFINITY, f64::INFINITY, f64::NEG_INFINITY);
    for &(x, y) in pts {
        if log_y && y <= 0.0 {
            continue;
        }
        x0 = x0.min(x);
        x1 = x1.max(x);
        y0 = y0.min(y);
        y1 = y1.max(y);
    }
    if !x0.is_finite() {
        (x0, x1, y0, y1) = (0.0, 1.0, 0.1, 1.0);
    }
    if x1 <= x0 {
        x1 = x0 + 1.0;
    }
    if y1 <= y0 {
        y1 = y0 + 1e-3 + y0.abs() * 0.1;
    }
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(x0..x1, if log_y { y0.ln()..y1.ln() } else { y0..y1 })
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    chart
        .configure_mesh()
        .x_desc(x_label)
        .y_desc(if log_y { format!("{y_label} (log scale)") } else { y_label.to_string() })
        .y_label_formatter(&|v| if log_y { format!("{:.3}", v.exp()) } else { format!("{v:.3}") })
        .label_style(("sans-serif", 14))
        .draw()
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    for (i, s) in series.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let points: Vec<(f64, f64)> = s
            .points
            .iter()
            .filter(|p| p.0.is_finite() && p.1.is_finite() && (!log_y || p.1 > 0.0))
            .map(|&(x, y)| (x, if log_y { y.ln() } else { y }))
            .collect();
        chart
            .draw_series(LineSeries::new(points, color.stroke_width(2)))
            .map_err(|e| anyhow::anyhow!("{e:?}"))?
            .label(s.label.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .label_font(("sans-serif", 14))
        .draw()
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    root.present().map_err(|e| anyhow::anyhow!("{e:?}"))?;
    Ok(())
}

/// Writes `<stem>.png` and `<stem>.svg`.
pub fn line_chart(
    stem: &Path,
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series],
    log_y: bool,
) -> Result<()> {
    register_font();
    let png = stem.with_extension("png");
    let svg = stem.with_extension("svg");
    adahessian_wgpu::files::replace_with(&png, |tmp| {
        draw(BitMapBackend::new(tmp, (800, 500)).into_drawing_area(), title, x_label, y_label, series, log_y)
    })
    .with_context(|| format!("drawing {}", png.display()))?;
    adahessian_wgpu::files::replace_with(&svg, |tmp| {
        draw(SVGBackend::new(tmp, (800, 500)).into_drawing_area(), title, x_label, y_label, series, log_y)
    })
    .with_context(|| format!("drawing {}", svg.display()))?;
    Ok(())
}

/// Line segments of the `level` contour of `z` (row-major `[a.len(), b.len()]`) by marching
/// squares, in (a, b) coordinates.
fn contour_segments(a: &[f64], b: &[f64], z: &[f64], level: f64) -> Vec<((f64, f64), (f64, f64))> {
    let nb = b.len();
    let mut out = Vec::new();
    let lerp = |p: (f64, f64, f64), q: (f64, f64, f64)| {
        let t = if (q.2 - p.2).abs() < 1e-300 { 0.5 } else { (level - p.2) / (q.2 - p.2) };
        (p.0 + t * (q.0 - p.0), p.1 + t * (q.1 - p.1))
    };
    for i in 0..a.len().saturating_sub(1) {
        for j in 0..nb.saturating_sub(1) {
            let c = [
                (a[i], b[j], z[i * nb + j]),
                (a[i + 1], b[j], z[(i + 1) * nb + j]),
                (a[i + 1], b[j + 1], z[(i + 1) * nb + j + 1]),
                (a[i], b[j + 1], z[i * nb + j + 1]),
            ];
            let mut crossings = Vec::new();
            for k in 0..4 {
                let (p, q) = (c[k], c[(k + 1) % 4]);
                if (p.2 < level) != (q.2 < level) {
                    crossings.push(lerp(p, q));
                }
            }
            for pair in crossings.chunks(2) {
                if pair.len() == 2 {
                    out.push((pair[0], pair[1]));
                }
            }
        }
    }
    out
}

fn heat(t: f64) -> RGBColor {
    // dark blue → cyan → yellow → red
    let t = t.clamp(0.0, 1.0);
    let stops = [
        (0.0, (20.0, 30.0, 110.0)),
        (0.35, (30.0, 160.0, 200.0)),
        (0.7, (250.0, 220.0, 60.0)),
        (1.0, (200.0, 30.0, 30.0)),
    ];
    for w in stops.windows(2) {
        let ((t0, c0), (t1, c1)) = (w[0], w[1]);
        if t <= t1 {
            let f = (t - t0) / (t1 - t0);
            return RGBColor(
                (c0.0 + f * (c1.0 - c0.0)) as u8,
                (c0.1 + f * (c1.1 - c0.1)) as u8,
                (c0.2 + f * (c1.2 - c0.2)) as u8,
            );
        }
    }
    RGBColor(200, 30, 30)
}

fn draw_heatmap<DB: DrawingBackend>(
    root: DrawingArea<DB, plotters::coord::Shift>,
    title: &str,
    a: &[f64],
    b: &[f64],
    z: &[f64],
    path: &[(f64, f64)],
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let e = |e: DrawingAreaErrorKind<DB::ErrorType>| anyhow::anyhow!("{e:?}");
    root.fill(&WHITE).map_err(e)?;
    let logz: Vec<f64> = z.iter().map(|v| v.max(1e-12).ln()).collect();
    let (lo, hi) = logz
        .iter()
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), &v| (l.min(v), h.max(v)));
    let span = (hi - lo).max(1e-12);
    let (da, db) = (if a.len() > 1 { a[1] - a[0] } else { 1.0 }, if b.len() > 1 { b[1] - b[0] } else { 1.0 });
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(50)
        .build_cartesian_2d(
            (a[0] - da / 2.0)..(a[a.len() - 1] + da / 2.0),
            (b[0] - db / 2.0)..(b[b.len() - 1] + db / 2.0),
        )
        .map_err(e)?;
    chart
        .configure_mesh()
        .disable_mesh()
        .x_desc("a (direction 1)")
        .y_desc("b (direction 2)")
        .label_style(("sans-serif", 14))
        .draw()
        .map_err(e)?;
    let nb = b.len();
    chart
        .draw_series(a.iter().enumerate().flat_map(|(i, &x)| {
            let logz = &logz;
            b.iter().enumerate().map(move |(j, &y)| {
                Rectangle::new(
                    [(x - da / 2.0, y - db / 2.0), (x + da / 2.0, y + db / 2.0)],
                    heat((logz[i * nb + j] - lo) / span).filled(),
                )
            })
        }))
        .map_err(e)?;
    for k in 1..12 {
        let level = lo + span * k as f64 / 12.0;
        let segments = contour_segments(a, b, &logz, level);
        chart
            .draw_series(segments.into_iter().map(|(p, q)| PathElement::new(vec![p, q], BLACK.mix(0.6))))
            .map_err(e)?;
    }
    if !path.is_empty() {
        chart.draw_series(LineSeries::new(path.iter().copied(), WHITE.stroke_width(2))).map_err(e)?;
        chart.draw_series(path.iter().map(|&p| Circle::new(p, 3, WHITE.filled()))).map_err(e)?;
    }
    chart.draw_series(std::iter::once(Cross::new((0.0, 0.0), 6, BLACK.stroke_width(2)))).map_err(e)?;
    root.present().map_err(e)?;
    Ok(())
}

/// A log-loss heat map with 11 contour lines, the weights at (0, 0) marked, and an optional
/// trajectory, as `<stem>.png` and `<stem>.svg`.
pub fn heatmap(stem: &Path, title: &str, a: &[f64], b: &[f64], z: &[f64], path: &[(f64, f64)]) -> Result<()> {
    register_font();
    let png = stem.with_extension("png");
    let svg = stem.with_extension("svg");
    adahessian_wgpu::files::replace_with(&png, |tmp| {
        draw_heatmap(BitMapBackend::new(tmp, (700, 620)).into_drawing_area(), title, a, b, z, path)
    })
    .with_context(|| format!("drawing {}", png.display()))?;
    adahessian_wgpu::files::replace_with(&svg, |tmp| {
        draw_heatmap(SVGBackend::new(tmp, (700, 620)).into_drawing_area(), title, a, b, z, path)
    })
    .with_context(|| format!("drawing {}", svg.display()))?;
    Ok(())
}

/// Bars of `values` (one per label, side by side in groups of `series.len()`), as PNG and SVG:
/// e.g. each tensor's top eigenvalue and trace. Values are drawn on a log axis (magnitudes; a
/// negative value is drawn at its absolute value).
pub fn bar_chart(stem: &Path, title: &str, labels: &[String], series: &[(&str, Vec<f64>)]) -> Result<()> {
    register_font();
    fn draw_bars<DB: DrawingBackend>(
        root: DrawingArea<DB, plotters::coord::Shift>,
        title: &str,
        labels: &[String],
        series: &[(&str, Vec<f64>)],
    ) -> Result<()>
    where
        DB::ErrorType: 'static,
    {
        root.fill(&WHITE).map_err(|e| anyhow::anyhow!("{e:?}"))?;
        let all = series.iter().flat_map(|s| s.1.iter()).map(|v| v.abs()).filter(|v| *v > 0.0);
        let (lo, hi) = all.fold((f64::INFINITY, 0.0f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
        let (lo, hi) = if hi > 0.0 { (lo / 2.0, hi * 2.0) } else { (1e-3, 1.0) };
        let n = labels.len().max(1);
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(60)
            .y_label_area_size(70)
            .build_cartesian_2d(0f64..n as f64, (lo..hi).log_scale())
            .map_err(|e| anyhow::anyhow!("{e:?}"))?;
        chart.configure_mesh().x_labels(0).draw().map_err(|e| anyhow::anyhow!("{e:?}"))?;

        let width = 0.8 / series.len().max(1) as f64;
        for (k, (name, values)) in series.iter().enumerate() {
            let color = COLORS[k % COLORS.len()];
            let bars = values.iter().enumerate().filter(|(_, v)| v.abs() > 0.0).map(move |(i, v)| {
                let x0 = i as f64 + 0.1 + k as f64 * width;
                Rectangle::new([(x0, lo), (x0 + width, v.abs())], color.filled())
            });
            chart
                .draw_series(bars)
                .map_err(|e| anyhow::anyhow!("{e:?}"))?
                .label(*name)
                .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 10, y + 5)], color.filled()));
        }
        // each group's label above its bars, inside the plot (the mesh's own labels land on
        // "nice" numbers, not on the groups; every bar ends below hi / 2)
        let names = labels
            .iter()
            .enumerate()
            .map(|(i, l)| Text::new(l.clone(), (i as f64 + 0.1, hi / 1.4), ("sans-serif", 14).into_font()));
        chart.draw_series(names).map_err(|e| anyhow::anyhow!("{e:?}"))?;
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(|e| anyhow::anyhow!("{e:?}"))?;
        root.present().map_err(|e| anyhow::anyhow!("{e:?}"))?;
        Ok(())
    }
    let png = stem.with_extension("png");
    let svg = stem.with_extension("svg");
    adahessian_wgpu::files::replace_with(&png, |tmp| {
        draw_bars(BitMapBackend::new(tmp, (800, 500)).into_drawing_area(), title, labels, series)
    })
    .with_context(|| format!("drawing {}", png.display()))?;
    adahessian_wgpu::files::replace_with(&svg, |tmp| {
        draw_bars(SVGBackend::new(tmp, (800, 500)).into_drawing_area(), title, labels, series)
    })
    .with_context(|| format!("drawing {}", svg.display()))
}
