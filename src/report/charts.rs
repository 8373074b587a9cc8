//! Inline SVG charts for the weekly report (plotters' SVG backend): every chart has a title,
//! labelled axes with units, and a legend where it has more than one series.

use plotters::prelude::*;

const W: u32 = 720;
const H: u32 = 300;

/// One line of a chart.
pub struct Series<'a> {
    pub name: &'a str,
    pub points: Vec<(f64, f64)>,
    pub color: RGBColor,
}

pub const BLUE: RGBColor = RGBColor(31, 119, 180);
pub const ORANGE: RGBColor = RGBColor(255, 127, 14);
pub const GREEN: RGBColor = RGBColor(44, 160, 44);
pub const GREY: RGBColor = RGBColor(150, 150, 150);

fn bounds(series: &[Series], band: &[(f64, f64, f64)]) -> ((f64, f64), (f64, f64)) {
    let xs = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.0))
        .chain(band.iter().map(|b| b.0));
    let ys = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1))
        .chain(band.iter().flat_map(|b| [b.1, b.2]));
    let (mut x0, mut x1) = xs.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), x| {
        (a.min(x), b.max(x))
    });
    let (mut y0, mut y1) = ys
        .filter(|y| y.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), y| {
            (a.min(y), b.max(y))
        });
    if !x0.is_finite() {
        (x0, x1) = (0.0, 1.0);
    }
    if !y0.is_finite() {
        (y0, y1) = (0.0, 1.0);
    }
    if x1 <= x0 {
        x1 = x0 + 1.0;
    }
    let pad = ((y1 - y0) * 0.1).max(1e-9);
    ((x0, x1), (y0 - pad, y1 + pad))
}

/// A line chart; `band` is an optional shaded interval (x, low, high).
pub fn lines(
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series],
    band: &[(f64, f64, f64)],
    x_fmt: &dyn Fn(&f64) -> String,
) -> String {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (W, H)).into_drawing_area();
        let _ = root.fill(&WHITE);
        let ((x0, x1), (y0, y1)) = bounds(series, band);
        let chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(64)
            .build_cartesian_2d(x0..x1, y0..y1);
        let Ok(mut chart) = chart else {
            return String::new();
        };
        let _ = chart
            .configure_mesh()
            .x_desc(x_label)
            .y_desc(y_label)
            .x_labels(8)
            .x_label_formatter(x_fmt)
            .draw();
        if !band.is_empty() {
            let mut poly: Vec<(f64, f64)> = band.iter().map(|b| (b.0, b.2)).collect();
            poly.extend(band.iter().rev().map(|b| (b.0, b.1)));
            let _ = chart.draw_series(std::iter::once(Polygon::new(poly, BLUE.mix(0.15).filled())));
        }
        for s in series {
            let color = s.color;
            if let Ok(a) =
                chart.draw_series(LineSeries::new(s.points.clone(), color.stroke_width(2)))
            {
                a.label(s.name).legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2))
                });
            }
        }
        if series.len() > 1 || !band.is_empty() {
            let _ = chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.8))
                .border_style(GREY)
                .draw();
        }
        let _ = root.present();
    }
    svg
}

/// A heat map of shares in [0, 1]; `None` cells (incomplete or suppressed) are hatched grey.
pub fn heatmap(
    title: &str,
    x_label: &str,
    y_labels: &[String],
    cells: &[Vec<Option<f64>>],
) -> String {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (W, H + 40)).into_drawing_area();
        let _ = root.fill(&WHITE);
        let cols = cells.iter().map(Vec::len).max().unwrap_or(1).max(1);
        let rows = cells.len().max(1);
        let chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(90)
            .build_cartesian_2d(0f64..cols as f64, 0f64..rows as f64);
        let Ok(mut chart) = chart else {
            return String::new();
        };
        let labels = y_labels.to_vec();
        let _ = chart
            .configure_mesh()
            .disable_mesh()
            .x_desc(x_label)
            .y_desc("cohort (week of first activity)")
            .x_labels(cols)
            .y_labels(rows)
            .x_label_formatter(&|x| format!("+{}", x.floor()))
            .y_label_formatter(&move |y| {
                let i = y.floor() as usize;
                labels
                    .get(rows.saturating_sub(i + 1))
                    .cloned()
                    .unwrap_or_default()
            })
            .draw();
        for (r, row) in cells.iter().enumerate() {
            let y = (rows - r - 1) as f64;
            for (c, v) in row.iter().enumerate() {
                let x = c as f64;
                let style = match v {
                    Some(v) => {
                        let t = v.clamp(0.0, 1.0);
                        RGBColor(
                            (255.0 - 220.0 * t) as u8,
                            (255.0 - 140.0 * t) as u8,
                            (255.0 - 60.0 * t) as u8,
                        )
                        .filled()
                    }
                    None => RGBColor(235, 235, 235).filled(),
                };
                let _ = chart.draw_series(std::iter::once(Rectangle::new(
                    [(x, y), (x + 1.0, y + 1.0)],
                    style,
                )));
                if let Some(v) = v {
                    let _ = chart.draw_series(std::iter::once(Text::new(
                        format!("{:.0}%", v * 100.0),
                        (x + 0.3, y + 0.6),
                        ("sans-serif", 12),
                    )));
                }
            }
        }
        let _ = root.present();
    }
    svg
}
