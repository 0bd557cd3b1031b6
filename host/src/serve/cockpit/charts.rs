//! The overview's charts as SVG, drawn on the server: readable without
//! JavaScript, each with a title and a description (its text alternative),
//! and each followed on the page by a table of the same figures. Only
//! numbers and klar's own words go into the markup, escaped all the same.

use std::fmt::Write as _;

use crate::store::report::{BandDay, Wave};

/// The bands' colours: dark enough for WCAG AA against white, and told
/// apart by the legend's words, not by colour alone.
const COLOURS: [&str; 3] = ["#1b6e3a", "#8a5a00", "#5b5b5b"];

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// One line per band over the recorded days.
pub fn trend(days: &[BandDay], names: [&str; 3], title: &str) -> String {
    let (w, h, left, bottom, top) = (640.0_f64, 220.0_f64, 48.0, 30.0, 12.0);
    let series: [Vec<i64>; 3] = [
        days.iter().map(|d| d.usable).collect(),
        days.iter().map(|d| d.to_clarify).collect(),
        days.iter().map(|d| d.removed).collect(),
    ];
    let max = series.iter().flatten().copied().max().unwrap_or(0).max(1) as f64;
    let n = days.len().max(2) as f64 - 1.0;
    let x = |i: usize| left + (w - left - 10.0) * (i as f64) / n;
    let y = |v: i64| top + (h - top - bottom) * (1.0 - v as f64 / max);
    let first = days.first();
    let last = days.last();
    let desc = match (first, last) {
        (Some(f), Some(l)) => format!(
            "{}: {} {} → {}; {} {} → {}; {} {} → {} ({} – {})",
            title,
            names[0],
            f.usable,
            l.usable,
            names[1],
            f.to_clarify,
            l.to_clarify,
            names[2],
            f.removed,
            l.removed,
            f.day,
            l.day
        ),
        _ => title.to_owned(),
    };
    let mut svg = format!(
        r#"<svg class="chart" viewBox="0 0 {w} {h}" role="img" aria-labelledby="trend-title trend-desc" xmlns="http://www.w3.org/2000/svg"><title id="trend-title">{}</title><desc id="trend-desc">{}</desc>"#,
        escape(title),
        escape(&desc)
    );
    // Axes and the top value.
    let _ = write!(
        svg,
        r##"<line x1="{left}" y1="{}" x2="{}" y2="{}" stroke="#333"/><line x1="{left}" y1="{top}" x2="{left}" y2="{}" stroke="#333"/><text x="{}" y="{}" font-size="12" text-anchor="end" fill="#222">{}</text><text x="{}" y="{}" font-size="12" text-anchor="end" fill="#222">0</text>"##,
        h - bottom,
        w - 10.0,
        h - bottom,
        h - bottom,
        left - 6.0,
        top + 10.0,
        max as i64,
        left - 6.0,
        h - bottom
    );
    if let (Some(f), Some(l)) = (first, last) {
        let _ = write!(
            svg,
            r##"<text x="{left}" y="{}" font-size="12" fill="#222">{}</text><text x="{}" y="{}" font-size="12" text-anchor="end" fill="#222">{}</text>"##,
            h - 10.0,
            escape(&f.day),
            w - 10.0,
            h - 10.0,
            escape(&l.day)
        );
    }
    for (i, values) in series.iter().enumerate() {
        let points: Vec<String> = values
            .iter()
            .enumerate()
            .map(|(j, v)| format!("{:.1},{:.1}", x(j), y(*v)))
            .collect();
        let dash = [
            "",
            r#" stroke-dasharray="6 3""#,
            r#" stroke-dasharray="2 3""#,
        ][i];
        let _ = write!(
            svg,
            r#"<polyline fill="none" stroke="{}" stroke-width="2.5"{dash} points="{}"/>"#,
            COLOURS[i],
            points.join(" ")
        );
    }
    svg.push_str("</svg>");
    svg
}

/// The newest wave as horizontal bars, one per stage.
pub fn funnel(wave: &Wave, labels: &[(&str, i64)], title: &str) -> String {
    let row = 24.0_f64;
    let (w, label_w) = (640.0_f64, 190.0_f64);
    let h = row * labels.len() as f64 + 8.0;
    let max = wave.sent.max(1) as f64;
    let desc = labels
        .iter()
        .map(|(l, v)| format!("{l}: {v}"))
        .collect::<Vec<_>>()
        .join("; ");
    let mut svg = format!(
        r#"<svg class="chart" viewBox="0 0 {w} {h}" role="img" aria-labelledby="funnel-title funnel-desc" xmlns="http://www.w3.org/2000/svg"><title id="funnel-title">{} {}</title><desc id="funnel-desc">{}</desc>"#,
        escape(title),
        escape(&wave.week),
        escape(&desc)
    );
    for (i, (label, value)) in labels.iter().enumerate() {
        let y = 4.0 + row * i as f64;
        let width = ((w - label_w - 60.0) * (*value as f64) / max).max(1.0);
        let _ = write!(
            svg,
            r##"<text x="{}" y="{}" font-size="13" text-anchor="end" fill="#222">{}</text><rect x="{label_w}" y="{y}" width="{width:.1}" height="{}" fill="#1f4e8c"/><text x="{}" y="{}" font-size="13" fill="#222">{value}</text>"##,
            label_w - 8.0,
            y + 15.0,
            escape(label),
            row - 6.0,
            label_w + width + 6.0,
            y + 15.0
        );
    }
    svg.push_str("</svg>");
    svg
}

/// The three bands as one stacked bar.
pub fn bands(values: [i64; 3], names: [&str; 3], title: &str) -> String {
    let (w, h) = (640.0_f64, 36.0_f64);
    let total = values.iter().sum::<i64>().max(1) as f64;
    let desc = (0..3)
        .map(|i| format!("{}: {}", names[i], values[i]))
        .collect::<Vec<_>>()
        .join("; ");
    let mut svg = format!(
        r#"<svg class="chart" viewBox="0 0 {w} {h}" role="img" aria-labelledby="bands-title bands-desc" xmlns="http://www.w3.org/2000/svg"><title id="bands-title">{}</title><desc id="bands-desc">{}</desc>"#,
        escape(title),
        escape(&desc)
    );
    let mut x = 0.0;
    for i in 0..3 {
        let width = w * values[i] as f64 / total;
        let _ = write!(
            svg,
            r#"<rect x="{x:.1}" y="0" width="{width:.1}" height="{h}" fill="{}"/>"#,
            COLOURS[i]
        );
        x += width;
    }
    svg.push_str("</svg>");
    svg
}

/// A dry run's weeks: one group of bars per week, one bar per series.
pub fn forecast(series: &[(String, Vec<u64>)], title: &str) -> String {
    const BARS: [&str; 4] = ["#1f4e8c", "#1b6e3a", "#8a1c1c", "#5b5b5b"];
    let weeks = series.first().map_or(0, |(_, v)| v.len()).max(1);
    let (w, h, left, bottom, top) = (640.0_f64, 220.0_f64, 40.0, 28.0, 10.0);
    let max = series
        .iter()
        .flat_map(|(_, v)| v.iter().copied())
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let group = (w - left - 10.0) / weeks as f64;
    let bar = (group * 0.8 / series.len().max(1) as f64).max(1.0);
    let desc = series
        .iter()
        .map(|(name, v)| {
            format!(
                "{name}: {}",
                v.iter().map(u64::to_string).collect::<Vec<_>>().join(", ")
            )
        })
        .collect::<Vec<_>>()
        .join("; ");
    let mut svg = format!(
        r#"<svg class="chart" viewBox="0 0 {w} {h}" role="img" aria-labelledby="forecast-title forecast-desc" xmlns="http://www.w3.org/2000/svg"><title id="forecast-title">{}</title><desc id="forecast-desc">{}</desc>"#,
        escape(title),
        escape(&desc)
    );
    let _ = write!(
        svg,
        r##"<line x1="{left}" y1="{}" x2="{}" y2="{}" stroke="#333"/><text x="{}" y="{}" font-size="12" text-anchor="end" fill="#222">{}</text>"##,
        h - bottom,
        w - 10.0,
        h - bottom,
        left - 6.0,
        top + 10.0,
        max as u64
    );
    for (s, (_, values)) in series.iter().enumerate() {
        for (i, v) in values.iter().enumerate() {
            let height = (h - top - bottom) * (*v as f64) / max;
            let x = left + group * i as f64 + group * 0.1 + bar * s as f64;
            let _ = write!(
                svg,
                r#"<rect x="{x:.1}" y="{:.1}" width="{bar:.1}" height="{height:.1}" fill="{}"/>"#,
                h - bottom - height,
                BARS[s % BARS.len()]
            );
        }
    }
    for i in 0..weeks {
        let _ = write!(
            svg,
            r##"<text x="{:.1}" y="{}" font-size="11" text-anchor="middle" fill="#222">{}</text>"##,
            left + group * (i as f64 + 0.5),
            h - 10.0,
            i + 1
        );
    }
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_chart_has_a_title_and_a_description() {
        let day = |d: &str, u| BandDay {
            day: d.to_owned(),
            usable: u,
            to_clarify: 3,
            removed: 1,
        };
        let names = ["nutzbar", "zu klären", "entfernt"];
        let svg = trend(
            &[day("2026-11-01", 2), day("2026-11-08", 5)],
            names,
            "Entwicklung",
        );
        assert!(svg.contains("<title id=\"trend-title\">Entwicklung</title>"));
        assert!(svg.contains("nutzbar 2 → 5"), "{svg}");
        let svg = bands([1, 2, 3], names, "Stand <b>");
        assert!(svg.contains("Stand &lt;b&gt;"), "escaped: {svg}");
        assert!(
            svg.contains("<desc id=\"bands-desc\">nutzbar: 1; zu klären: 2; entfernt: 3</desc>")
        );
    }
}
