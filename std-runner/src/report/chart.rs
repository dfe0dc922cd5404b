//! The one chart helper every figure goes through (a training run's `loss.svg` and
//! `accuracy.svg`, every experiment's figures): a [`Chart`] is a plain value — title, axis labels,
//! [`Series`] — drawn as SVG by plotters, alone ([`chart_svg`], [`save_chart`]), in a grid
//! ([`save_grid`]) or as rows of [`Histogram`]s. Non-finite points are dropped from a series (a
//! diverged run draws as a gap), never passed to the backend.

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;
pub use plotters::style::RGBColor;

/// The colours series take in order (matplotlib's default cycle, so figures look like the book's).
pub const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// The `i`-th colour of [`PALETTE`], cycling.
pub fn color(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

/// `c` blended toward white by `t` in `0..=1` (faint copies of a series' colour).
pub fn lighten(c: RGBColor, t: f64) -> RGBColor {
    let f = |v: u8| (v as f64 + (255.0 - v as f64) * t).round().clamp(0.0, 255.0) as u8;
    RGBColor(f(c.0), f(c.1), f(c.2))
}

/// How a series is drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Style {
    /// A solid line.
    Line,
    /// A thin solid line (a noisy series under a smoother one, such as every step's loss).
    Thin,
    /// A dashed line.
    Dashed,
    /// A thin line with a dot on each point (optimizer paths).
    LineDots,
    /// Dots only (scatter).
    Dots,
}

/// One series of a chart.
#[derive(Clone, Debug)]
pub struct Series {
    /// Legend entry; `None` keeps it out of the legend.
    pub label: Option<String>,
    /// The points, in drawing order.
    pub points: Vec<(f64, f64)>,
    /// Colour.
    pub color: RGBColor,
    /// Line or markers.
    pub style: Style,
}

impl Series {
    /// A labelled solid line.
    pub fn line(label: impl Into<String>, points: Vec<(f64, f64)>, color: RGBColor) -> Self {
        Series { label: Some(label.into()), points, color, style: Style::Line }
    }

    /// Same series with another style.
    pub fn styled(mut self, style: Style) -> Self {
        self.style = style;
        self
    }

    /// Same series without a legend entry.
    pub fn unlabelled(mut self) -> Self {
        self.label = None;
        self
    }
}

/// A chart: title, axis labels, series and optional fixed ranges.
#[derive(Clone, Debug, Default)]
pub struct Chart {
    /// Caption above the plot area.
    pub title: String,
    /// X axis label.
    pub x_label: String,
    /// Y axis label.
    pub y_label: String,
    /// The series.
    pub series: Vec<Series>,
    /// Fixed x range (else the data's).
    pub x_range: Option<(f64, f64)>,
    /// Fixed y range (else the data's).
    pub y_range: Option<(f64, f64)>,
    /// Draw the legend (when any series is labelled).
    pub legend: bool,
    /// Legend in the lower right corner instead of the upper right (rising curves).
    pub legend_lower: bool,
}

impl Chart {
    /// An empty chart with a title and axis labels, legend on.
    pub fn new(title: impl Into<String>, x_label: impl Into<String>, y_label: impl Into<String>) -> Self {
        Chart {
            title: title.into(),
            x_label: x_label.into(),
            y_label: y_label.into(),
            legend: true,
            ..Chart::default()
        }
    }
}

fn err(e: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::other(e.to_string())
}

/// Tick label: whole numbers without a fraction, others with up to 4 decimals, trailing zeros cut.
pub fn tick(v: &f64) -> String {
    if (v - v.round()).abs() < 1e-9 * v.abs().max(1.0) {
        return format!("{:.0}", v.round() + 0.0);
    }
    if v.abs() < 1e-3 {
        return format!("{v:.1e}");
    }
    let s = format!("{v:.4}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

fn finite_range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for v in values.filter(|v| v.is_finite()) {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    if hi - lo < 1e-12 {
        return (lo - 0.5, hi + 0.5);
    }
    let pad = 0.03 * (hi - lo);
    (lo - pad, hi + pad)
}

/// Draws `chart` into `area`.
pub fn draw_chart(area: &DrawingArea<SVGBackend, Shift>, chart: &Chart) -> std::io::Result<()> {
    let pts = || chart.series.iter().flat_map(|s| s.points.iter());
    let (x0, x1) = chart.x_range.unwrap_or_else(|| finite_range(pts().map(|p| p.0)));
    let (y0, y1) = chart.y_range.unwrap_or_else(|| finite_range(pts().map(|p| p.1)));
    let (w, _) = area.dim_in_pixel();
    let title_size = if w < 400 { 16 } else { 20 };
    let mut ctx = ChartBuilder::on(area)
        .caption(&chart.title, ("sans-serif", title_size))
        .margin(8)
        .margin_right(22)
        .x_label_area_size(if chart.x_label.is_empty() { 22 } else { 38 })
        .y_label_area_size(if chart.y_label.is_empty() { 40 } else { 56 })
        .build_cartesian_2d(x0..x1, y0..y1)
        .map_err(err)?;
    ctx.configure_mesh()
        .x_desc(&chart.x_label)
        .y_desc(&chart.y_label)
        .x_labels(6)
        .y_labels(6)
        .x_label_formatter(&tick)
        .y_label_formatter(&tick)
        .light_line_style(WHITE.mix(0.0))
        .label_style(("sans-serif", 14))
        .draw()
        .map_err(err)?;
    let inside = |p: &&(f64, f64)| p.0.is_finite() && p.1.is_finite();
    let mut labelled = false;
    for s in &chart.series {
        // Split at non-finite points so a gap stays a gap.
        let mut runs: Vec<Vec<(f64, f64)>> = vec![Vec::new()];
        for p in &s.points {
            if inside(&p) {
                if let Some(r) = runs.last_mut() {
                    r.push(*p);
                }
            } else if runs.last().is_some_and(|r| !r.is_empty()) {
                runs.push(Vec::new());
            }
        }
        let c = s.color;
        let mut first = true;
        for run in runs.into_iter().filter(|r| !r.is_empty()) {
            let anno = match s.style {
                Style::Line => ctx.draw_series(LineSeries::new(run, c.stroke_width(2))),
                Style::Thin => ctx.draw_series(LineSeries::new(run, c.stroke_width(1))),
                Style::Dashed => ctx.draw_series(DashedLineSeries::new(run, 6, 4, c.stroke_width(2))),
                Style::LineDots => {
                    ctx.draw_series(LineSeries::new(run.clone(), c.stroke_width(1))).map_err(err)?;
                    ctx.draw_series(run.into_iter().map(|p| Circle::new(p, 3, c.filled())))
                }
                Style::Dots => ctx.draw_series(run.into_iter().map(|p| Circle::new(p, 3, c.filled()))),
            }
            .map_err(err)?;
            if first && let Some(l) = &s.label {
                labelled = true;
                let style = s.style;
                anno.label(l).legend(move |(x, y)| match style {
                    Style::Dots => Circle::new((x + 8, y), 3, c.filled()).into_dyn(),
                    _ => PathElement::new(vec![(x, y), (x + 16, y)], c.stroke_width(2)).into_dyn(),
                });
            }
            first = false;
        }
    }
    if chart.legend && labelled {
        ctx.configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.4))
            .label_font(("sans-serif", 14))
            .position(if chart.legend_lower {
                SeriesLabelPosition::LowerRight
            } else {
                SeriesLabelPosition::UpperRight
            })
            .draw()
            .map_err(err)?;
    }
    Ok(())
}

/// An SVG document of `size` pixels on a white background, drawn by `draw`.
fn svg(
    size: (u32, u32),
    draw: impl FnOnce(&DrawingArea<SVGBackend, Shift>) -> std::io::Result<()>,
) -> std::io::Result<String> {
    let mut text = String::new();
    {
        let root = SVGBackend::with_string(&mut text, size).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        draw(&root)?;
        root.present().map_err(err)?;
    }
    Ok(text)
}

/// One chart as the text of an SVG file of `size` pixels.
pub fn chart_svg(chart: &Chart, size: (u32, u32)) -> std::io::Result<String> {
    svg(size, |root| draw_chart(root, chart))
}

/// One chart in its own SVG file of `size` pixels.
pub fn save_chart(path: &Path, chart: &Chart, size: (u32, u32)) -> std::io::Result<()> {
    std::fs::write(path, chart_svg(chart, size)?)
}

/// A `rows × cols` grid of charts under an overall title, in one SVG file.
pub fn save_grid(
    path: &Path,
    title: &str,
    rows: usize,
    cols: usize,
    charts: &[Chart],
    cell: (u32, u32),
) -> std::io::Result<()> {
    let size = (cell.0 * cols as u32, cell.1 * rows as u32 + 40);
    let text = svg(size, |root| {
        let (head, body) = root.split_vertically(40);
        head.titled(title, ("sans-serif", 24)).map_err(err)?;
        for (area, chart) in body.split_evenly((rows, cols)).iter().zip(charts) {
            draw_chart(area, chart)?;
        }
        Ok(())
    })?;
    std::fs::write(path, text)
}

/// A histogram panel: bin edges `lo..hi` split evenly into `counts.len()` bars.
#[derive(Clone, Debug)]
pub struct Histogram {
    /// Caption.
    pub title: String,
    /// Range of the bins.
    pub range: (f64, f64),
    /// Count per bin.
    pub counts: Vec<u64>,
    /// Bar colour.
    pub color: RGBColor,
    /// Scale the y axis to the bins after the first, letting the first bar run off the top (ReLU's
    /// spike of exact zeros would flatten everything else).
    pub clip_first: bool,
    /// X axis title (what the bins count).
    pub x_label: String,
    /// Y axis title.
    pub y_label: String,
}

fn draw_histogram(area: &DrawingArea<SVGBackend, Shift>, h: &Histogram, y_max: f64) -> std::io::Result<()> {
    let (lo, hi) = h.range;
    let mut ctx = ChartBuilder::on(area)
        .caption(&h.title, ("sans-serif", 15))
        .margin(6)
        .x_label_area_size(if h.x_label.is_empty() { 22 } else { 38 })
        .y_label_area_size(if h.y_label.is_empty() { 50 } else { 62 })
        .build_cartesian_2d(lo..hi, 0.0..y_max)
        .map_err(err)?;
    ctx.configure_mesh()
        .x_desc(&h.x_label)
        .y_desc(&h.y_label)
        .x_labels(5)
        .y_labels(5)
        .x_label_formatter(&tick)
        .y_label_formatter(&|v| if *v >= 1000.0 { format!("{}k", v / 1000.0) } else { format!("{v:.0}") })
        .light_line_style(WHITE.mix(0.0))
        .label_style(("sans-serif", 15))
        .draw()
        .map_err(err)?;
    let n = h.counts.len().max(1) as f64;
    let bw = (hi - lo) / n;
    ctx.draw_series(h.counts.iter().enumerate().map(|(i, &c)| {
        let x0 = lo + i as f64 * bw;
        Rectangle::new([(x0, 0.0), (x0 + bw, (c as f64).min(y_max))], h.color.mix(0.85).filled())
    }))
    .map_err(err)?;
    Ok(())
}

/// Rows of histogram panels sharing one y scale per row (like the book's 1×5 layer figures),
/// each row optionally led by a label.
pub fn save_histogram_rows(
    path: &Path,
    title: &str,
    rows: &[Vec<Histogram>],
    cell: (u32, u32),
) -> std::io::Result<()> {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(1).max(1);
    let size = (cell.0 * cols as u32, cell.1 * rows.len().max(1) as u32 + 40);
    let text = svg(size, |root| {
        let (head, body) = root.split_vertically(40);
        head.titled(title, ("sans-serif", 24)).map_err(err)?;
        let cells = body.split_evenly((rows.len().max(1), cols));
        for (r, row) in rows.iter().enumerate() {
            let tallest = |skip: bool| {
                row.iter()
                    .flat_map(|h| h.counts.iter().skip(usize::from(skip && h.clip_first)))
                    .copied()
                    .max()
                    .unwrap_or(0)
            };
            let y_max = if tallest(true) > 0 { tallest(true) } else { tallest(false).max(1) } as f64 * 1.05;
            for (c, h) in row.iter().enumerate() {
                draw_histogram(&cells[r * cols + c], h, y_max)?;
            }
        }
        Ok(())
    })?;
    std::fs::write(path, text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tick_labels() {
        assert_eq!(tick(&100.0), "100");
        assert_eq!(tick(&-5.0), "-5");
        assert_eq!(tick(&0.25), "0.25");
        assert_eq!(tick(&0.30000000004), "0.3");
        assert_eq!(tick(&2e-4), "2.0e-4");
    }

    #[test]
    fn charts_with_gaps_and_nan_render() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = Chart::new("t", "x", "y");
        c.series.push(Series::line("a", vec![(0.0, 1.0), (1.0, f64::NAN), (2.0, 0.5), (3.0, 0.2)], color(0)));
        c.series.push(Series::line("b", vec![(0.0, f64::NAN)], color(1)).styled(Style::Dashed));
        let p = dir.path().join("c.svg");
        save_chart(&p, &c, (400, 300)).unwrap();
        let svg = std::fs::read_to_string(&p).unwrap();
        // Title, axis labels and the legend entry of the labelled series are all there.
        for t in ["t", "x", "y", "a"] {
            assert!(svg.contains(&format!(">\n{t}\n</text>")), "missing text {t}");
        }
        let h = Histogram {
            title: "h".into(),
            range: (0.0, 1.0),
            counts: vec![1, 5, 2],
            color: color(0),
            clip_first: true,
            x_label: "activation".into(),
            y_label: "count".into(),
        };
        save_histogram_rows(&dir.path().join("h.svg"), "hist", &[vec![h.clone(), h]], (200, 150)).unwrap();
        save_grid(&dir.path().join("g.svg"), "grid", 1, 2, &[c.clone(), c], (300, 200)).unwrap();
    }
}
