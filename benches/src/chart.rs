//! A small hand-written SVG: no plotting crate needed for two line charts.

use std::fmt::Write;

/// One panel: a series of (x, y) points and an optional horizontal reference.
pub struct Panel<'a> {
    /// Title above the panel.
    pub title: &'a str,
    /// X axis label.
    pub x_label: &'a str,
    /// Y axis label.
    pub y_label: &'a str,
    /// The measured points.
    pub points: &'a [(f64, f64)],
    /// A horizontal line (for example the floor), with its label.
    pub reference: Option<(f64, &'a str)>,
    /// Plot x on a log scale.
    pub log_x: bool,
}

const W: f64 = 460.0;
const H: f64 = 300.0;
const M: f64 = 55.0;

fn panel(svg: &mut String, p: &Panel<'_>, x0: f64) {
    let tx = |x: f64| if p.log_x { x.max(1e-9).log10() } else { x };
    let xs: Vec<f64> = p.points.iter().map(|&(x, _)| tx(x)).collect();
    let (xmin, xmax) = xs
        .iter()
        .fold((f64::MAX, f64::MIN), |(a, b), &x| (a.min(x), b.max(x)));
    let (xmin, xmax) = if xmax > xmin {
        (xmin, xmax)
    } else {
        (xmin - 1.0, xmax + 1.0)
    };
    let ymax = p
        .points
        .iter()
        .map(|&(_, y)| y)
        .chain(p.reference.map(|(y, _)| y))
        .fold(0.0, f64::max)
        * 1.1;
    let ymax = if ymax > 0.0 { ymax } else { 1.0 };
    let px = |x: f64| x0 + M + (tx(x) - xmin) / (xmax - xmin) * (W - 2.0 * M);
    let py = |y: f64| H - M + -(y / ymax) * (H - 2.0 * M);
    let _ = write!(
        svg,
        r##"<text x="{:.0}" y="20" font-size="14" text-anchor="middle">{}</text>
<line x1="{:.0}" y1="{:.0}" x2="{:.0}" y2="{:.0}" stroke="black"/>
<line x1="{:.0}" y1="{:.0}" x2="{:.0}" y2="{:.0}" stroke="black"/>
<text x="{:.0}" y="{:.0}" font-size="12" text-anchor="middle">{}</text>
<text x="{:.0}" y="{:.0}" font-size="12" text-anchor="middle" transform="rotate(-90 {:.0} {:.0})">{}</text>
<text x="{:.0}" y="{:.0}" font-size="10" text-anchor="end">{:.3e}</text>
"##,
        x0 + W / 2.0,
        p.title,
        x0 + M,
        H - M,
        x0 + W - M,
        H - M,
        x0 + M,
        M,
        x0 + M,
        H - M,
        x0 + W / 2.0,
        H - 15.0,
        p.x_label,
        x0 + 15.0,
        H / 2.0,
        x0 + 15.0,
        H / 2.0,
        p.y_label,
        x0 + M - 4.0,
        M + 4.0,
        ymax,
    );
    let path: Vec<String> = p
        .points
        .iter()
        .map(|&(x, y)| format!("{:.1},{:.1}", px(x), py(y)))
        .collect();
    let _ = writeln!(
        svg,
        r##"<polyline fill="none" stroke="#1f77b4" stroke-width="2" points="{}"/>"##,
        path.join(" ")
    );
    for &(x, y) in p.points {
        let _ = writeln!(
            svg,
            r##"<circle cx="{:.1}" cy="{:.1}" r="3" fill="#1f77b4"/><text x="{:.1}" y="{:.1}" font-size="9" text-anchor="middle">{}</text>"##,
            px(x),
            py(y),
            px(x),
            H - M + 12.0,
            x
        );
    }
    if let Some((y, label)) = p.reference {
        let _ = writeln!(
            svg,
            r##"<line x1="{:.0}" y1="{:.1}" x2="{:.0}" y2="{:.1}" stroke="#d62728" stroke-dasharray="5,4"/><text x="{:.0}" y="{:.1}" font-size="10" fill="#d62728" text-anchor="end">{}</text>"##,
            x0 + M,
            py(y),
            x0 + W - M,
            py(y),
            x0 + W - M,
            py(y) - 4.0,
            label
        );
    }
}

/// Panels side by side in one SVG document.
pub fn render(panels: &[Panel<'_>]) -> String {
    let mut svg = format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{:.0}" height="{:.0}" font-family="sans-serif">
<rect width="100%" height="100%" fill="white"/>
"##,
        W * panels.len() as f64,
        H
    );
    for (i, p) in panels.iter().enumerate() {
        panel(&mut svg, p, W * i as f64);
    }
    svg.push_str("</svg>\n");
    svg
}
