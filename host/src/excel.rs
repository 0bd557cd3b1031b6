//! CSV for German Excel, as every face writes it (`klar cases --csv`, the
//! cockpit's export): UTF-8 with a byte-order mark (without it Excel reads
//! Windows-1252 and breaks every umlaut), semicolons (a comma is the German
//! decimal mark, so Excel splits on `;`), CRLF line ends, times as
//! `31.12.2026 09:00` in the tenant's zone (which Excel takes as a date), and
//! no cell that Excel would run as a formula.

use std::io::Write;

use chrono_tz::Tz;

/// A CSV writer for German Excel; the byte-order mark is written first.
pub fn writer<W: Write>(mut out: W) -> std::io::Result<csv::Writer<W>> {
    out.write_all(b"\xEF\xBB\xBF")?;
    Ok(csv::WriterBuilder::new()
        .delimiter(b';')
        .terminator(csv::Terminator::CRLF)
        .from_writer(out))
}

/// Text as a cell Excel shows as it is: a leading `=`, `+`, `-` or `@`
/// would make it a formula (CSV injection), so it gets a `'` first.
pub fn cell(text: &str) -> String {
    if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{text}")
    } else {
        text.to_owned()
    }
}

/// Unix seconds as a local time German Excel reads as one:
/// `31.12.2026 09:00`.
pub fn time(at: i64, tz: Tz) -> String {
    chrono::DateTime::from_timestamp(at, 0)
        .unwrap_or_default()
        .with_timezone(&tz)
        .format("%d.%m.%Y %H:%M")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excel_gets_a_bom_semicolons_crlf_and_no_formulas() {
        let mut out = Vec::new();
        {
            let mut w = writer(&mut out).expect("writes");
            w.write_record([
                "Jörg; Müller",
                &cell("=HYPERLINK(\"x\")"),
                &cell("+49 30 1"),
            ])
            .expect("writes");
            w.flush().expect("flushes");
        }
        assert_eq!(
            String::from_utf8(out).expect("utf-8"),
            "\u{feff}\"Jörg; Müller\";\"'=HYPERLINK(\"\"x\"\")\";'+49 30 1\r\n"
        );
        // 2026-12-31 08:00 UTC is 09:00 in Berlin.
        assert_eq!(
            time(1_798_704_000, chrono_tz::Europe::Berlin),
            "31.12.2026 09:00"
        );
    }
}
