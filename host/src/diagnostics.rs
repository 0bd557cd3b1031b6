//! Policy diagnostics for people: `FILE:LINE:COL: message`, then the line of the
//! policy with a caret under the place (drawn by ariadne). The message is
//! written once, in that first line; the drawing only shows the place.

use std::ops::Range;

use ariadne::{Config, IndexType, Label, Report, ReportKind, Source};

use crate::plugin::{Diagnostic, Severity};

/// Renders diagnostics in source order. `color` is for terminals only.
pub fn render(file: &str, source: &str, diagnostics: &[Diagnostic], color: bool) -> String {
    let mut sorted: Vec<&Diagnostic> = diagnostics.iter().collect();
    sorted.sort_by_key(|d| (d.line, d.column, d.severity == Severity::Warning));
    let mut out = String::new();
    for d in sorted {
        out.push_str(&render_one(file, source, d, color));
    }
    out
}

fn render_one(file: &str, source: &str, d: &Diagnostic, color: bool) -> String {
    let kind = match d.severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
    };
    let mut out = format!("{file}:{}:{}: {kind}: {}\n", d.line, d.column, d.message);
    let Some(span) = span(source, d.line, d.column) else {
        return out;
    };
    let report_kind = match d.severity {
        Severity::Error => ReportKind::Error,
        Severity::Warning => ReportKind::Warning,
    };
    let id = file.to_owned();
    let mut buf = Vec::new();
    let written = Report::build(report_kind, (id.clone(), span.clone()))
        .with_config(
            Config::default()
                .with_color(color)
                .with_index_type(IndexType::Char),
        )
        .with_label(Label::new((id.clone(), span)).with_message("here"))
        .finish()
        .write((id, Source::from(source)), &mut buf);
    if written.is_ok() {
        // ariadne's first line is its own header ("Error: …"), which would
        // say the message a second time.
        let drawn = String::from_utf8_lossy(&buf);
        out.push_str(drawn.split_once('\n').map_or("", |(_, place)| place));
    }
    out
}

/// The character range of one character at LINE:COL (1-based), if it exists.
fn span(source: &str, line: u32, column: u32) -> Option<Range<usize>> {
    if line == 0 {
        return None;
    }
    let mut offset = 0;
    for (number, text) in source.split_inclusive('\n').enumerate() {
        let chars = text.chars().count();
        if number + 1 == line as usize {
            let col = (column.max(1) as usize - 1).min(chars.saturating_sub(1));
            return Some(offset + col..offset + col + 1);
        }
        offset += chars;
    }
    // A place just past the end (an unexpected end of input).
    Some(offset.saturating_sub(1)..offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_names_file_line_and_column_and_draws_the_line() {
        let source = "fn reminder_days(contact) {\n  [7, 14\n}\n";
        let d = Diagnostic::error(3, 1, "Expecting ']' to end this array literal");
        let text = render("rules/x.rhai", source, &[d], false);
        let mut lines = text.lines();
        assert_eq!(
            lines.next(),
            Some("rules/x.rhai:3:1: error: Expecting ']' to end this array literal")
        );
        assert!(text.contains("3 │ }"), "{text}");
        assert!(text.contains('┬') || text.contains('^'), "{text}");
        assert_eq!(
            text.matches("Expecting ']'").count(),
            1,
            "the message once, not again in a box: {text}"
        );
    }

    #[test]
    fn a_place_past_the_end_still_renders() {
        let text = render(
            "p.rhai",
            "fn a(",
            &[Diagnostic::error(9, 9, "unexpected end")],
            false,
        );
        assert!(
            text.starts_with("p.rhai:9:9: error: unexpected end\n"),
            "{text}"
        );
    }

    #[test]
    fn an_unknown_place_prints_only_the_line() {
        let text = render("p.rhai", "", &[Diagnostic::warning(0, 0, "odd")], false);
        assert_eq!(text, "p.rhai:0:0: warning: odd\n");
    }
}
