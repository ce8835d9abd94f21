//! The report's charts, drawn by plotters as SVG text to embed in `summary.html` (no files, no
//! fonts needed: plotters' SVG backend writes text elements and estimates their size).

use plotters::prelude::*;

const W: u32 = 640;
const H: u32 = 360;

/// Engine colours, fixed so an engine has the same colour in every chart.
fn colour(i: usize) -> RGBColor {
    const C: [RGBColor; 7] = [
        RGBColor(31, 119, 180),
        RGBColor(255, 127, 14),
        RGBColor(44, 160, 44),
        RGBColor(214, 39, 40),
        RGBColor(148, 103, 189),
        RGBColor(140, 86, 75),
        RGBColor(127, 127, 127),
    ];
    C[i % C.len()]
}

/// The colour of an engine by name (the suite's engines first, in report order).
pub fn engine_colour(engine: &str) -> RGBColor {
    let order = ["torch", "lmrs", "candle", "burn", "mistralrs"];
    colour(order.iter().position(|e| *e == engine).unwrap_or(order.len() + engine.len() % 2))
}

fn nice_max(v: f64) -> f64 {
    if v <= 0.0 || !v.is_finite() {
        1.0
    } else {
        v * 1.15
    }
}

/// A bar per (label, value); `reference` draws a dashed line (e.g. 100% of the roofline).
pub fn bars(title: &str, y_label: &str, data: &[(String, f64)], reference: Option<(f64, &str)>) -> String {
    let mut svg = String::new();
    if data.is_empty() {
        return svg;
    }
    {
        let root = SVGBackend::with_string(&mut svg, (W, H)).into_drawing_area();
        let _ = draw_bars(&root, title, y_label, data, reference);
        let _ = root.present();
    }
    svg
}

fn draw_bars(
    root: &DrawingArea<SVGBackend, plotters::coord::Shift>,
    title: &str,
    y_label: &str,
    data: &[(String, f64)],
    reference: Option<(f64, &str)>,
) -> Result<(), Box<dyn std::error::Error>> {
    root.fill(&WHITE)?;
    let top = data.iter().map(|d| d.1).fold(reference.map_or(0.0, |r| r.0), f64::max);
    let mut chart = ChartBuilder::on(root)
        .caption(title, ("sans-serif", 18))
        .margin(10)
        .x_label_area_size(35)
        .y_label_area_size(60)
        .build_cartesian_2d((0..data.len()).into_segmented(), 0.0..nice_max(top))?;
    let labels: Vec<String> = data.iter().map(|d| d.0.clone()).collect();
    chart
        .configure_mesh()
        .disable_x_mesh()
        .y_desc(y_label)
        .x_label_formatter(&|x| match x {
            SegmentValue::CenterOf(i) => labels.get(*i).cloned().unwrap_or_default(),
            _ => String::new(),
        })
        .draw()?;
    chart.draw_series(data.iter().enumerate().map(|(i, (label, v))| {
        let c = engine_colour(label.split(' ').next().unwrap_or(label));
        let mut bar = Rectangle::new([(SegmentValue::Exact(i), 0.0), (SegmentValue::Exact(i + 1), *v)], c.filled());
        bar.set_margin(0, 0, 12, 12);
        bar
    }))?;
    chart.draw_series(data.iter().enumerate().map(|(i, (_, v))| {
        Text::new(format!("{}", fmt_value(*v)), (SegmentValue::CenterOf(i), *v), ("sans-serif", 13))
    }))?;
    if let Some((r, label)) = reference {
        chart
            .draw_series(LineSeries::new(
                [(SegmentValue::Exact(0), r), (SegmentValue::Exact(data.len()), r)],
                BLACK.stroke_width(1),
            ))?
            .label(label)
            .legend(|(x, y)| PathElement::new([(x, y), (x + 16, y)], BLACK));
        chart.configure_series_labels().background_style(WHITE.mix(0.8)).border_style(BLACK).draw()?;
    }
    Ok(())
}

fn fmt_value(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// One line per (series name, points); `log_x` for sizes that grow by factors.
pub fn lines(title: &str, x_label: &str, y_label: &str, series: &[(String, Vec<(f64, f64)>)], log_x: bool) -> String {
    let mut svg = String::new();
    let pts: Vec<(f64, f64)> = series.iter().flat_map(|s| s.1.iter().copied()).collect();
    if pts.is_empty() {
        return svg;
    }
    {
        let root = SVGBackend::with_string(&mut svg, (W, H)).into_drawing_area();
        let _ = draw_lines(&root, title, x_label, y_label, series, &pts, log_x);
        let _ = root.present();
    }
    svg
}

fn draw_lines(
    root: &DrawingArea<SVGBackend, plotters::coord::Shift>,
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[(String, Vec<(f64, f64)>)],
    pts: &[(f64, f64)],
    log_x: bool,
) -> Result<(), Box<dyn std::error::Error>> {
    root.fill(&WHITE)?;
    let (x0, x1) = pts.iter().fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p.0), b.max(p.0)));
    let y1 = nice_max(pts.iter().map(|p| p.1).fold(0.0, f64::max));
    let x1 = if x1 > x0 { x1 } else { x0 + 1.0 };
    let mut builder = ChartBuilder::on(root);
    builder.caption(title, ("sans-serif", 18)).margin(10).x_label_area_size(35).y_label_area_size(60);
    macro_rules! finish {
        ($chart:expr) => {{
            let mut chart = $chart;
            chart.configure_mesh().x_desc(x_label).y_desc(y_label).draw()?;
            for (name, points) in series {
                let c = engine_colour(name.split(' ').next().unwrap_or(name));
                chart
                    .draw_series(LineSeries::new(points.iter().copied(), c.stroke_width(2)))?
                    .label(name.as_str())
                    .legend(move |(x, y)| PathElement::new([(x, y), (x + 16, y)], c.stroke_width(2)));
                chart.draw_series(points.iter().map(|p| Circle::new(*p, 3, c.filled())))?;
            }
            chart.configure_series_labels().position(SeriesLabelPosition::UpperLeft).background_style(WHITE.mix(0.8)).border_style(BLACK).draw()?;
        }};
    }
    if log_x {
        finish!(builder.build_cartesian_2d((x0.max(1e-9)..x1 * 1.1).log_scale(), 0.0..y1)?);
    } else {
        finish!(builder.build_cartesian_2d(0.0..x1 * 1.05, 0.0..y1)?);
    }
    Ok(())
}
