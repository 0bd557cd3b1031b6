//! The consent texts the company's legal team writes: set as numbered
//! versions with author and message, checked before they are stored, and
//! audited. A text may name the company and the purpose through the
//! placeholders `{company}` and `{purpose}`, filled in when the version is
//! set: what is stored (and hashed, and shown, and named in evidence) is
//! the exact wording contacts read. A new version is used for the requests
//! issued from then on; a link already sent keeps the version it named.

use crate::plugin::Diagnostic;
use crate::store::audit::{self, Entry};
use crate::store::texts::{self, ConsentText, NewText};
use crate::store::{Store, StoreError, tenants};

/// The placeholders a text may use.
pub const PLACEHOLDERS: [&str; 2] = ["company", "purpose"];

/// The longest text, in characters: a consent text is read on a phone.
pub const MAX_CHARS: usize = 10_000;

#[derive(Debug, thiserror::Error)]
pub enum TextError {
    #[error("there is no tenant {0}")]
    UnknownTenant(String),
    #[error("tenant {tenant} has no purpose {purpose} (klar purpose list {tenant})")]
    UnknownPurpose { tenant: String, purpose: String },
    #[error(
        "language {0:?} is not a language code: use two or three lower-case letters, e.g. de, en, fr"
    )]
    BadLanguage(String),
    #[error("the text is empty")]
    Empty,
    #[error("the text is longer than {MAX_CHARS} characters")]
    TooLong,
    /// Mistakes with their line and column, for `diagnostics::render`.
    #[error("the text has {} mistake(s)", .0.len())]
    Mistakes(Vec<Diagnostic>),
    #[error("{0}")]
    Field(String),
    #[error("purpose {purpose} has no version {version} of its text in {language}")]
    UnknownVersion {
        purpose: String,
        language: String,
        version: i64,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<crate::store::Error> for TextError {
    fn from(err: crate::store::Error) -> TextError {
        TextError::Store(err.into())
    }
}

impl From<tenants::TenantError> for TextError {
    fn from(err: tenants::TenantError) -> TextError {
        match err {
            tenants::TenantError::Unknown(id) => TextError::UnknownTenant(id),
            tenants::TenantError::Sql(err) => TextError::Store(err.into()),
            other => TextError::Field(other.to_string()),
        }
    }
}

/// One piece of a text: words as written, or a placeholder.
#[derive(Debug, PartialEq, Eq)]
enum Piece<'a> {
    Words(String),
    Placeholder(&'a str),
}

/// Splits a text into words and placeholders, or names every mistake by
/// line and column (1-based, in characters): an unknown placeholder, an
/// unclosed `{`, a lone `}`, a control character. `{{` and `}}` are braces.
fn parse(source: &str) -> Result<Vec<Piece<'_>>, Vec<Diagnostic>> {
    let mut pieces = Vec::new();
    let mut mistakes = Vec::new();
    let mut words = String::new();
    for (index, line) in source.split('\n').enumerate() {
        let line_no = index as u32 + 1;
        if index > 0 {
            words.push('\n');
        }
        let chars: Vec<(usize, char)> = line.char_indices().collect();
        let mut i = 0;
        while i < chars.len() {
            let (at, c) = chars[i];
            let column = i as u32 + 1;
            match c {
                '{' if chars.get(i + 1).is_some_and(|&(_, n)| n == '{') => {
                    words.push('{');
                    i += 2;
                }
                '}' if chars.get(i + 1).is_some_and(|&(_, n)| n == '}') => {
                    words.push('}');
                    i += 2;
                }
                '{' => match line[at..].find('}') {
                    Some(end) => {
                        let name = &line[at + 1..at + end];
                        if PLACEHOLDERS.contains(&name.trim()) {
                            pieces.push(Piece::Words(std::mem::take(&mut words)));
                            pieces.push(Piece::Placeholder(name.trim()));
                        } else {
                            mistakes.push(Diagnostic::error(
                                line_no,
                                column,
                                format!(
                                    "unknown placeholder {{{name}}}: use {{company}} or {{purpose}} (write {{{{ for a brace)"
                                ),
                            ));
                        }
                        i += line[at..at + end].chars().count() + 1;
                    }
                    None => {
                        mistakes.push(Diagnostic::error(
                            line_no,
                            column,
                            "this { opens no placeholder: close it on the same line, or write {{ for a brace",
                        ));
                        i += 1;
                    }
                },
                '}' => {
                    mistakes.push(Diagnostic::error(
                        line_no,
                        column,
                        "a } that closes nothing: write }} for a brace",
                    ));
                    i += 1;
                }
                c if c.is_control() && c != '\t' => {
                    mistakes.push(Diagnostic::error(
                        line_no,
                        column,
                        format!(
                            "a control character (U+{:04X}) does not belong in a text",
                            c as u32
                        ),
                    ));
                    i += 1;
                }
                c => {
                    words.push(c);
                    i += 1;
                }
            }
        }
    }
    pieces.push(Piece::Words(words));
    if mistakes.is_empty() {
        Ok(pieces)
    } else {
        Err(mistakes)
    }
}

/// The text as written, with Windows line ends and trailing blank lines
/// and spaces taken away.
pub fn normalise(source: &str) -> String {
    let unix = source.replace("\r\n", "\n");
    let lines: Vec<&str> = unix.lines().map(str::trim_end).collect();
    lines.join("\n").trim().to_owned()
}

/// Checks a text as written: its mistakes with line and column in the
/// file as given, if any.
pub fn check(source: &str) -> Result<(), TextError> {
    let normalised = normalise(source);
    if normalised.is_empty() {
        return Err(TextError::Empty);
    }
    if normalised.chars().count() > MAX_CHARS {
        return Err(TextError::TooLong);
    }
    parse(&source.replace("\r\n", "\n"))
        .map(|_| ())
        .map_err(TextError::Mistakes)
}

/// The words contacts read: the placeholders filled in.
pub fn fill(source: &str, company: &str, purpose: &str) -> Result<String, TextError> {
    let source = normalise(source);
    let pieces = parse(&source).map_err(TextError::Mistakes)?;
    Ok(pieces
        .into_iter()
        .map(|piece| match piece {
            Piece::Words(words) => words,
            Piece::Placeholder("company") => company.to_owned(),
            Piece::Placeholder(_) => purpose.to_owned(),
        })
        .collect())
}

fn valid_language(language: &str) -> bool {
    (2..=3).contains(&language.len()) && language.chars().all(|c| c.is_ascii_lowercase())
}

/// What `set` is given.
#[derive(Debug, Clone, Copy)]
pub struct Written<'a> {
    pub purpose: &'a str,
    pub language: &'a str,
    pub source: &'a str,
    pub author: &'a str,
    pub message: &'a str,
}

/// Sets the next version of a purpose's text in a language, checked, with
/// one audit row (`text-set`) naming the version, its SHA-256, author and
/// message.
pub fn set(
    store: &mut Store,
    tenant: &str,
    written: &Written<'_>,
    now: i64,
) -> Result<ConsentText, TextError> {
    if !valid_language(written.language) {
        return Err(TextError::BadLanguage(written.language.to_owned()));
    }
    super::text::authored(written.author, written.message).map_err(TextError::Field)?;
    check(written.source)?;
    let source = normalise(written.source);
    store.write(|tx| {
        let tenant_row = tenants::require(tx, tenant)?;
        let description = tenants::purposes(tx, tenant)?
            .into_iter()
            .find(|(id, _)| id == written.purpose)
            .map(|(id, d)| tenants::purpose_in(&id, &d, written.language))
            .ok_or_else(|| TextError::UnknownPurpose {
                tenant: tenant.to_owned(),
                purpose: written.purpose.to_owned(),
            })?;
        let body = fill(&source, &tenant_row.name, &description)?;
        let text = texts::add(
            tx,
            tenant,
            (written.purpose, written.language),
            &NewText {
                body: &body,
                source: Some(&source),
                author: Some(written.author),
                message: Some(written.message),
            },
            now,
        )?;
        audit::append(
            tx,
            tenant,
            Entry::purpose(
                now,
                written.purpose,
                "text-set",
                &serde_json::json!({
                    "language": text.language,
                    "version": text.version,
                    "sha256": text.sha256,
                    "author": written.author,
                    "message": written.message,
                }),
            ),
        )?;
        Ok(text)
    })
}

/// One version, or the current one (`version` `None`).
pub fn version(
    conn: &crate::store::Conn,
    tenant: &str,
    (purpose, language): (&str, &str),
    version: Option<i64>,
) -> Result<ConsentText, TextError> {
    let found = match version {
        Some(v) => texts::get(conn, tenant, purpose, v, language)?,
        None => texts::current(conn, tenant, purpose, language)?,
    };
    found.ok_or_else(|| TextError::UnknownVersion {
        purpose: purpose.to_owned(),
        language: language.to_owned(),
        version: version.unwrap_or(0),
    })
}

/// A unified diff from one version's words to another's.
pub fn diff(a: &ConsentText, b: &ConsentText) -> String {
    similar::TextDiff::from_lines(&a.body, &b.body)
        .unified_diff()
        // Stored texts end without a line end; saying so on every diff is noise.
        .missing_newline_hint(false)
        .header(
            &format!("{} {} v{}", a.purpose, a.language, a.version),
            &format!("{} {} v{}", b.purpose, b.language, b.version),
        )
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_filled_and_braces_escaped() {
        let text =
            "Ich willige ein, dass {company} mir zum Zweck „{ purpose }“ schreibt.\n{{Stand 2026}}";
        assert_eq!(
            fill(text, "Müller GmbH", "Newsletter").expect("fills"),
            "Ich willige ein, dass Müller GmbH mir zum Zweck „Newsletter“ schreibt.\n{Stand 2026}"
        );
    }

    #[test]
    fn mistakes_are_named_by_line_and_column() {
        let Err(TextError::Mistakes(found)) =
            check("Erste Zeile\nIch, {firma}, und {purpose\nsowie }.")
        else {
            panic!("refused");
        };
        let places: Vec<(u32, u32, &str)> = found
            .iter()
            .map(|d| {
                (
                    d.line,
                    d.column,
                    d.message.split(':').next().unwrap_or_default(),
                )
            })
            .collect();
        assert_eq!(
            places,
            [
                (2, 6, "unknown placeholder {firma}"),
                (2, 19, "this { opens no placeholder"),
                (3, 7, "a } that closes nothing"),
            ]
        );
    }

    #[test]
    fn columns_count_characters_not_bytes() {
        let Err(TextError::Mistakes(found)) = check("Größe {x}") else {
            panic!("refused");
        };
        assert_eq!((found[0].line, found[0].column), (1, 7));
    }

    #[test]
    fn windows_line_ends_and_trailing_blanks_are_not_part_of_the_text() {
        assert_eq!(
            normalise("  Zeile 1  \r\nZeile 2\r\n\r\n"),
            "Zeile 1\nZeile 2"
        );
        assert!(matches!(check(" \n\n"), Err(TextError::Empty)));
    }
}
