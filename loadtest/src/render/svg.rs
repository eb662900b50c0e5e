//! SVG: a run's timeline as latency lines (log scale, left axis) over throughput bars (right axis).

use std::fmt::Write;

use super::{decimal, finite};
use crate::report::{Report, Second};

const WIDTH: f64 = 900.0;
const HEIGHT: f64 = 420.0;
/// The plot area, inside the axes.
const LEFT: f64 = 70.0;
const RIGHT: f64 = 820.0;
const TOP: f64 = 70.0;
const BOTTOM: f64 = 360.0;

const P50_COLOUR: &str = "#1f77b4";
const P99_COLOUR: &str = "#ff7f0e";
const MAX_COLOUR: &str = "#d62728";
const BAR_COLOUR: &str = "#c7d3e0";
const GRID_COLOUR: &str = "#e5e5e5";
const TEXT_COLOUR: &str = "#333333";

/// A self-contained SVG (900 × 420, no fonts or scripts to fetch) of the run's timeline: p50,
/// p99 and max latency as lines on a log scale (left axis, ms), completed requests per second as
/// light bars (right axis), seconds since the start along the bottom, with the title and a legend.
/// An empty timeline renders a "no data" note; NaN and infinite figures count as 0.
pub fn chart_svg(report: &Report) -> String {
    let title = escape(&report.title);
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12" fill="{TEXT_COLOUR}">"#
    );
    let _ = writeln!(out, "<title>{title}</title>");
    let _ = writeln!(out, r#"<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/>"#);
    let _ = writeln!(out, r#"<text x="{LEFT}" y="28" font-size="16" font-weight="bold">{title}</text>"#);
    let points = points(&report.timeline);
    if points.is_empty() {
        no_data(&mut out);
    } else {
        plot(&mut out, &points);
    }
    out.push_str("</svg>\n");
    out
}

/// One second of the timeline with every figure finite.
struct Point {
    t: f64,
    completed: f64,
    p50: f64,
    p99: f64,
    max: f64,
}

/// The timeline in time order, NaN and infinite figures as 0.
fn points(timeline: &[Second]) -> Vec<Point> {
    let mut points: Vec<_> = timeline
        .iter()
        .map(|second| Point {
            t: second.t_s as f64,
            completed: second.completed as f64,
            p50: finite(second.p50_ms),
            p99: finite(second.p99_ms),
            max: finite(second.max_ms),
        })
        .collect();
    points.sort_by(|a, b| a.t.total_cmp(&b.t));
    points
}

fn no_data(out: &mut String) {
    frame(out);
    let (x, y) = ((LEFT + RIGHT) / 2.0, (TOP + BOTTOM) / 2.0);
    let _ = writeln!(
        out,
        r#"<text x="{x}" y="{y}" text-anchor="middle" font-size="14">no data: the run recorded no timeline</text>"#
    );
}

fn plot(out: &mut String, points: &[Point]) {
    let (first, last) = match (points.first(), points.last()) {
        (Some(first), Some(last)) => (first.t, last.t),
        _ => return,
    };
    // Half a second either side, so the first and last bars fit and one point has a width.
    let time = Linear::new(first - 0.5, last + 0.5, LEFT, RIGHT);
    let latency = Log::fit(points.iter().flat_map(|p| [p.p50, p.p99, p.max]));
    let busiest = points.iter().map(|p| p.completed).fold(0.0, f64::max);
    let rate_step = nice_step(busiest, 5.0).max(1.0);
    let rate_top = ((busiest / rate_step).ceil() * rate_step).max(rate_step);
    let rate = Linear::new(0.0, rate_top, BOTTOM, TOP);

    bars(out, points, &time, &rate);
    latency_axis(out, &latency);
    frame(out);
    rate_axis(out, &rate, rate_step);
    time_axis(out, &time, first, last);
    for series in &SERIES {
        line(out, points, &time, &latency, series);
    }
    legend(out);
}

/// A latency line: its colour, dash pattern ("" for solid), legend label and figure.
struct Series {
    colour: &'static str,
    dash: &'static str,
    label: &'static str,
    value: fn(&Point) -> f64,
}

/// The latency lines in drawing order, so p50 ends up on top.
const SERIES: [Series; 3] = [
    Series { colour: MAX_COLOUR, dash: "4 3", label: "max", value: |p| p.max },
    Series { colour: P99_COLOUR, dash: "", label: "p99", value: |p| p.p99 },
    Series { colour: P50_COLOUR, dash: "", label: "p50", value: |p| p.p50 },
];

fn frame(out: &mut String) {
    let _ = writeln!(
        out,
        r##"<rect x="{LEFT}" y="{TOP}" width="{}" height="{}" fill="none" stroke="#999999"/>"##,
        RIGHT - LEFT,
        BOTTOM - TOP
    );
}

/// Grid lines and labels at 1, 2 and 5 × each power of ten (only the powers over wide ranges).
fn latency_axis(out: &mut String, latency: &Log) {
    let dense = latency.hi - latency.lo <= 3;
    for exponent in latency.lo..=latency.hi {
        let multiples: &[f64] = if dense && exponent < latency.hi { &[1.0, 2.0, 5.0] } else { &[1.0] };
        for &multiple in multiples {
            let value = multiple * 10f64.powi(exponent);
            let y = latency.at(value);
            let label = decimal(value, usize::try_from(-exponent).unwrap_or(0));
            let _ = writeln!(out, r#"<line x1="{LEFT}" y1="{y:.1}" x2="{RIGHT}" y2="{y:.1}" stroke="{GRID_COLOUR}"/>"#);
            let _ = writeln!(out, r#"<text x="{}" y="{:.1}" text-anchor="end">{label}</text>"#, LEFT - 6.0, y + 4.0);
        }
    }
    let y = (TOP + BOTTOM) / 2.0;
    let _ = writeln!(
        out,
        r#"<text transform="translate(20 {y}) rotate(-90)" text-anchor="middle">latency, ms (log scale)</text>"#
    );
}

fn rate_axis(out: &mut String, rate: &Linear, step: f64) {
    for value in ticks(0.0, rate.hi, step) {
        let y = rate.at(value);
        let _ = writeln!(out, r#"<text x="{}" y="{:.1}">{}</text>"#, RIGHT + 6.0, y + 4.0, decimal(value, 0));
    }
    let y = (TOP + BOTTOM) / 2.0;
    let _ = writeln!(
        out,
        r#"<text transform="translate({} {y}) rotate(90)" text-anchor="middle">completed per second (bars)</text>"#,
        WIDTH - 14.0
    );
}

fn time_axis(out: &mut String, time: &Linear, first: f64, last: f64) {
    let step = nice_step(last - first, 10.0).max(1.0);
    for value in ticks((first / step).ceil() * step, last, step) {
        let x = time.at(value);
        let _ =
            writeln!(out, r##"<line x1="{x:.1}" y1="{BOTTOM}" x2="{x:.1}" y2="{}" stroke="#999999"/>"##, BOTTOM + 4.0);
        let _ = writeln!(
            out,
            r#"<text x="{x:.1}" y="{}" text-anchor="middle">{}</text>"#,
            BOTTOM + 18.0,
            decimal(value, 0)
        );
    }
    let _ = writeln!(
        out,
        r#"<text x="{}" y="{}" text-anchor="middle">seconds since the start</text>"#,
        (LEFT + RIGHT) / 2.0,
        BOTTOM + 40.0
    );
}

fn bars(out: &mut String, points: &[Point], time: &Linear, rate: &Linear) {
    let width = ((time.at(1.0) - time.at(0.0)) * 0.8).clamp(0.5, 40.0);
    for point in points {
        let top = rate.at(point.completed);
        let _ = writeln!(
            out,
            r#"<rect x="{:.1}" y="{top:.1}" width="{width:.2}" height="{:.1}" fill="{BAR_COLOUR}"/>"#,
            time.at(point.t) - width / 2.0,
            BOTTOM - top
        );
    }
}

fn line(out: &mut String, points: &[Point], time: &Linear, latency: &Log, series: &Series) {
    let Series { colour, dash, value, .. } = *series;
    if let [point] = points {
        let (x, y) = (time.at(point.t), latency.at(value(point)));
        let _ = writeln!(out, r#"<circle cx="{x:.1}" cy="{y:.1}" r="3" fill="{colour}"/>"#);
        return;
    }
    let mut coordinates = String::new();
    for point in points {
        let _ = write!(coordinates, "{:.1},{:.1} ", time.at(point.t), latency.at(value(point)));
    }
    let _ = writeln!(
        out,
        r#"<polyline points="{}" fill="none" stroke="{colour}" stroke-width="1.5"{} stroke-linejoin="round"/>"#,
        coordinates.trim_end(),
        dashes(dash)
    );
}

fn legend(out: &mut String) {
    let mut x = LEFT;
    let y = 50.0;
    for &Series { colour, dash, label, .. } in SERIES.iter().rev() {
        let _ = writeln!(
            out,
            r#"<line x1="{x}" y1="{y}" x2="{}" y2="{y}" stroke="{colour}" stroke-width="2"{}/>"#,
            x + 20.0,
            dashes(dash)
        );
        let _ = writeln!(out, r#"<text x="{}" y="{}">{label}</text>"#, x + 25.0, y + 4.0);
        x += 70.0;
    }
    let _ = writeln!(out, r#"<rect x="{x}" y="{}" width="20" height="10" fill="{BAR_COLOUR}"/>"#, y - 5.0);
    let _ = writeln!(out, r#"<text x="{}" y="{}">completed per second (right axis)</text>"#, x + 25.0, y + 4.0);
}

/// The `stroke-dasharray` attribute for a dash pattern, nothing for a solid line ("").
fn dashes(pattern: &str) -> String {
    if pattern.is_empty() { String::new() } else { format!(r#" stroke-dasharray="{pattern}""#) }
}

/// A linear map from values `lo..hi` onto pixels `from..to`.
struct Linear {
    lo: f64,
    hi: f64,
    from: f64,
    to: f64,
}

impl Linear {
    fn new(lo: f64, hi: f64, from: f64, to: f64) -> Self {
        let hi = if hi > lo { hi } else { lo + 1.0 };
        Self { lo, hi, from, to }
    }

    fn at(&self, value: f64) -> f64 {
        self.from + (value - self.lo) / (self.hi - self.lo) * (self.to - self.from)
    }
}

/// A log-scale map of latency from 10^`lo` ms (the bottom, where zero and anything below it sit)
/// to 10^`hi` ms (the top) onto the plot's height.
struct Log {
    lo: i32,
    hi: i32,
}

impl Log {
    /// The whole powers of ten around the positive values, at most six of them down from the top,
    /// and the top between 0.01 ms and 10^7 ms (beyond it is a broken figure, drawn at the top).
    fn fit(values: impl Iterator<Item = f64>) -> Self {
        let (smallest, largest) =
            values.filter(|&v| v > 0.0).fold((f64::INFINITY, 0.0_f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
        if largest <= 0.0 {
            return Self { lo: -1, hi: 0 };
        }
        let hi = (largest.log10().ceil() as i32).clamp(-2, 7);
        let lo = (smallest.log10().floor() as i32).clamp(hi - 6, hi - 1);
        Self { lo, hi }
    }

    fn at(&self, value: f64) -> f64 {
        let (lo, hi) = (f64::from(self.lo), f64::from(self.hi));
        let exponent = if value > 0.0 { value.log10().clamp(lo, hi) } else { lo };
        BOTTOM - (exponent - lo) / (hi - lo) * (BOTTOM - TOP)
    }
}

/// A round step (1, 2 or 5 × a power of ten) cutting `span` into about `parts` parts.
fn nice_step(span: f64, parts: f64) -> f64 {
    let raw = span / parts;
    if !(raw.is_finite() && raw > 0.0) {
        return 1.0;
    }
    let magnitude = 10f64.powf(raw.log10().floor());
    let nice = match raw / magnitude {
        n if n <= 1.0 => 1.0,
        n if n <= 2.0 => 2.0,
        n if n <= 5.0 => 5.0,
        _ => 10.0,
    };
    nice * magnitude
}

/// `start`, `start + step`, … up to `end` (a small tolerance for rounding), at most 100 of them.
fn ticks(start: f64, end: f64, step: f64) -> impl Iterator<Item = f64> {
    (0..100).map(move |i| start + f64::from(i) * step).take_while(move |&v| v <= end + step * 1e-9)
}

/// Text for XML content or an attribute value: `&`, `<`, `>`, `"` and `'` as entities, and the
/// control characters XML forbids dropped.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(' '),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn second(t_s: u64, completed: u64, p50_ms: f64, p99_ms: f64, max_ms: f64) -> Second {
        Second { t_s, completed, errors: 0, p50_ms, p99_ms, max_ms }
    }

    fn chart(title: &str, timeline: Vec<Second>) -> String {
        chart_svg(&Report { title: title.to_owned(), timeline, ..Report::default() })
    }

    /// One `<svg` … `</svg>` and no figure that failed to render.
    fn assert_whole(svg: &str) {
        assert!(svg.starts_with("<svg "), "{svg}");
        assert!(svg.trim_end().ends_with("</svg>"), "{svg}");
        assert_eq!(svg.matches("<svg").count(), 1);
        assert_eq!(svg.matches("</svg>").count(), 1);
        assert_eq!(svg.matches('<').count(), svg.matches('>').count(), "{svg}");
        for broken in ["NaN", "inf"] {
            assert!(!svg.contains(broken), "{broken} in {svg}");
        }
    }

    #[test]
    fn a_timeline_draws_lines_bars_axes_and_legend() {
        let timeline = (0..30).map(|t| second(t, 2_000 + t, 1.2, 9.0, 40.0 + t as f64)).collect();
        let svg = chart("Mixed, RSA2", timeline);
        assert_whole(&svg);
        assert!(svg.contains(r#"width="900" height="420""#));
        assert_eq!(svg.matches("<polyline").count(), 3);
        assert!(svg.contains("latency, ms (log scale)"));
        assert!(svg.contains("completed per second"));
        assert!(svg.contains(">p50<") && svg.contains(">p99<") && svg.contains(">max<"));
        assert!(svg.contains(">2,500<"), "throughput ticks: {svg}");
        assert!(svg.contains(">100<"), "latency ticks: {svg}");
    }

    #[test]
    fn the_title_is_escaped() {
        let svg = chart(r#"A & <B> "c""#, vec![second(0, 1, 1.0, 2.0, 3.0)]);
        assert_whole(&svg);
        assert!(svg.contains("<title>A &amp; &lt;B&gt; &quot;c&quot;</title>"));
        assert!(!svg.contains("<B>"));
    }

    #[test]
    fn an_empty_timeline_says_no_data() {
        let svg = chart("", Vec::new());
        assert_whole(&svg);
        assert!(svg.contains("no data"));
    }

    #[test]
    fn a_single_point_draws_dots() {
        let svg = chart("one", vec![second(7, 10, 1.0, 2.0, 3.0)]);
        assert_whole(&svg);
        assert_eq!(svg.matches("<circle").count(), 3);
        assert!(svg.contains(">7<"));
    }

    #[test]
    fn zero_nan_and_infinite_figures_render_as_zero() {
        let timeline = vec![
            second(0, 0, 0.0, 0.0, 0.0),
            second(1, 5, f64::NAN, f64::INFINITY, f64::NEG_INFINITY),
            second(2, 0, 1e-300, f64::MAX, f64::MIN_POSITIVE),
        ];
        assert_whole(&chart("odd", timeline));
        assert_whole(&chart("zeros", vec![second(0, 0, 0.0, 0.0, 0.0), second(1, 0, 0.0, 0.0, 0.0)]));
    }

    #[test]
    fn out_of_order_and_sparse_seconds_still_render() {
        let timeline = vec![second(3_600, 1, 5.0, 6.0, 7.0), second(0, 1, 5.0, 6.0, 7.0)];
        let svg = chart("sparse", timeline);
        assert_whole(&svg);
        assert!(svg.contains(">3,500<"));
    }

    #[test]
    fn log_scale_spans_the_values_in_whole_powers_of_ten() {
        let scale = Log::fit([0.0, 0.3, 1.5, 420.0].into_iter());
        assert_eq!((scale.lo, scale.hi), (-1, 3));
        assert_eq!(scale.at(0.0), BOTTOM);
        assert_eq!(scale.at(1_000.0), TOP);
        let exact = Log::fit([10.0].into_iter());
        assert_eq!((exact.lo, exact.hi), (0, 1));
        let absurd = Log::fit([1e-300, f64::MAX].into_iter());
        assert_eq!((absurd.lo, absurd.hi), (1, 7));
    }

    #[test]
    fn nice_steps_are_round() {
        assert_eq!(nice_step(2_345.0, 5.0), 500.0);
        assert_eq!(nice_step(30.0, 10.0), 5.0);
        assert_eq!(nice_step(0.0, 5.0), 1.0);
    }
}
