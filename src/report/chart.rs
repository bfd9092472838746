//! The recall@k chart as inline SVG (drawn here, no charting library).

use std::fmt::Write;

use super::{escape, ReportRun};

const WIDTH: f64 = 860.0;
const HEIGHT: f64 = 380.0;
const LEFT: f64 = 56.0;
const RIGHT: f64 = 300.0;
const TOP: f64 = 16.0;
const BOTTOM: f64 = 44.0;
const COLORS: [&str; 8] = [
    "#2b6cb0", "#c05621", "#2f855a", "#9b2c2c", "#6b46c1", "#b7791f", "#2c7a7b", "#4a5568",
];

/// Each run's average recall@k as one line (IVF runs dashed), k on x, recall in percent on y.
pub(super) fn recall_chart(runs: &[ReportRun]) -> String {
    let max_k = runs
        .iter()
        .map(|r| r.curve.average.len())
        .max()
        .unwrap_or(0);
    if max_k == 0 {
        return "<p>No curve: no query was answered.</p>\n".into();
    }
    let top = runs
        .iter()
        .flat_map(|r| r.curve.average.iter().copied())
        .fold(0.0f64, f64::max);
    // The y axis ends at the next 10% above the highest point.
    let y_max = ((top * 10.0).ceil() / 10.0).clamp(0.1, 1.0);
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let x = |k: usize| LEFT + plot_w * (k as f64 - 1.0) / ((max_k.max(2) - 1) as f64);
    let y = |r: f64| TOP + plot_h * (1.0 - r / y_max);
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        "<svg class=\"chart\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" width=\"{WIDTH}\" height=\"{HEIGHT}\" \
         role=\"img\" aria-label=\"recall at k\" xmlns=\"http://www.w3.org/2000/svg\">"
    );
    // Grid and axes.
    for step in 0..=5 {
        let r = y_max * step as f64 / 5.0;
        let _ = writeln!(
            svg,
            "<line class=\"grid\" x1=\"{LEFT}\" x2=\"{:.1}\" y1=\"{y:.1}\" y2=\"{y:.1}\"/>\
             <text class=\"tick\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{:.0}%</text>",
            LEFT + plot_w,
            LEFT - 6.0,
            y(r) + 4.0,
            100.0 * r,
            y = y(r)
        );
    }
    let mut ticks = vec![1];
    ticks.extend((10..=max_k).step_by(10));
    if *ticks.last().unwrap_or(&1) != max_k {
        ticks.push(max_k);
    }
    for k in ticks {
        let _ = writeln!(
            svg,
            "<text class=\"tick\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{k}</text>",
            x(k),
            TOP + plot_h + 16.0
        );
    }
    let _ = writeln!(
        svg,
        "<text class=\"label\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">k</text>\
         <text class=\"label\" transform=\"translate(14 {:.1}) rotate(-90)\" text-anchor=\"middle\">recall@k</text>",
        LEFT + plot_w / 2.0,
        HEIGHT - 8.0,
        TOP + plot_h / 2.0
    );
    // One line per run, and its legend entry; a fusion's IVF and exact runs share a color (the name
    // before the first comma), the IVF one dashed.
    let mut fusions: Vec<&str> = Vec::new();
    for (i, run) in runs.iter().enumerate() {
        let fusion = run.name.split(',').next().unwrap_or_default();
        let slot = match fusions.iter().position(|f| *f == fusion) {
            Some(slot) => slot,
            None => {
                fusions.push(fusion);
                fusions.len() - 1
            }
        };
        let color = COLORS[slot % COLORS.len()];
        let dash = if run.ivf {
            " stroke-dasharray=\"6 4\""
        } else {
            ""
        };
        let points: Vec<String> = run
            .curve
            .average
            .iter()
            .enumerate()
            .map(|(i, &r)| format!("{:.1},{:.1}", x(i + 1), y(r)))
            .collect();
        let _ = writeln!(
            svg,
            "<polyline class=\"curve\" fill=\"none\" stroke=\"{color}\" stroke-width=\"2\"{dash} points=\"{}\"><title>{}</title></polyline>",
            points.join(" "),
            escape(&run.name)
        );
        let ly = TOP + 10.0 + 20.0 * i as f64;
        let lx = LEFT + plot_w + 16.0;
        let last = run.curve.average.last().copied().unwrap_or(0.0);
        let _ = writeln!(
            svg,
            "<line x1=\"{lx:.1}\" x2=\"{:.1}\" y1=\"{ly:.1}\" y2=\"{ly:.1}\" stroke=\"{color}\" stroke-width=\"2\"{dash}/>\
             <text class=\"legend\" x=\"{:.1}\" y=\"{:.1}\">{} ({:.1}%)</text>",
            lx + 24.0,
            lx + 30.0,
            ly + 4.0,
            escape(&run.name),
            100.0 * last
        );
    }
    svg.push_str("</svg>\n");
    svg
}
