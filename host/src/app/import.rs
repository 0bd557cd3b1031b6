//! CSV import of contacts: the whole file is read and checked before anything
//! is written, every bad row is reported with its line number, and the good
//! rows land in one transaction (or none do).
//!
//! Columns: `external_id,first_name,last_name,email,phone,owner,source,created_at`
//! (a header is required, order is free); further columns are kept as the
//! contact's attributes. UTF-8 only.

use std::collections::{BTreeMap, HashMap};

use crate::store::Conn;
use chrono::{DateTime, NaiveDate, Utc};

use crate::plugin::Contact;

pub const COLUMNS: [&str; 8] = [
    "external_id",
    "first_name",
    "last_name",
    "email",
    "phone",
    "owner",
    "source",
    "created_at",
];

/// A bad row: its line in the file and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowProblem {
    pub line: u64,
    pub message: String,
}

/// The file as read: good rows with their lines, and the problems.
#[derive(Debug, Default)]
pub struct Parsed {
    pub contacts: Vec<(u64, Contact)>,
    pub problems: Vec<RowProblem>,
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("the file has no header line")]
    NoHeader,
    #[error("the header is not valid UTF-8")]
    HeaderNotUtf8,
    #[error("the header lacks the column(s) {}; expected {}", .0.join(", "), COLUMNS.join(","))]
    MissingColumns(Vec<String>),
    #[error("the header names column {0} twice")]
    DuplicateColumn(String),
    #[error("failed to read the header")]
    Csv(#[from] csv::Error),
}

/// Reads and checks every row. `now` fills an empty `created_at`.
pub fn parse(bytes: &[u8], language: &str, now: DateTime<Utc>) -> Result<Parsed, ImportError> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .from_reader(bytes);
    let header = reader.byte_headers()?.clone();
    if header.is_empty() {
        return Err(ImportError::NoHeader);
    }
    let names: Vec<String> = header
        .iter()
        .map(|h| std::str::from_utf8(h).map(|s| s.trim().trim_start_matches('\u{feff}').to_owned()))
        .collect::<Result<_, _>>()
        .map_err(|_| ImportError::HeaderNotUtf8)?;
    let mut index = HashMap::new();
    for (i, name) in names.iter().enumerate() {
        if index.insert(name.as_str(), i).is_some() {
            return Err(ImportError::DuplicateColumn(name.clone()));
        }
    }
    let missing: Vec<String> = COLUMNS
        .iter()
        .filter(|c| !index.contains_key(*c))
        .map(|c| (*c).to_owned())
        .collect();
    if !missing.is_empty() {
        return Err(ImportError::MissingColumns(missing));
    }

    let mut parsed = Parsed::default();
    let mut first_line: HashMap<String, u64> = HashMap::new();
    let lines = LineStarts::of(bytes);
    for record in reader.byte_records() {
        let record = match record {
            Ok(record) => record,
            Err(err) => {
                let line = err.position().map_or(0, |p| lines.line_of(p.byte()));
                parsed.problems.push(RowProblem {
                    line,
                    message: format!("cannot be read: {err}"),
                });
                continue;
            }
        };
        let line = record.position().map_or(0, |p| lines.line_of(p.byte()));
        let problem = |message: String| RowProblem { line, message };
        if record.len() != names.len() {
            parsed.problems.push(problem(format!(
                "has {} field(s), the header has {}",
                record.len(),
                names.len()
            )));
            continue;
        }
        let mut fields = Vec::with_capacity(record.len());
        let mut bad_utf8 = None;
        for (i, raw) in record.iter().enumerate() {
            match std::str::from_utf8(raw) {
                Ok(text) => fields.push(text.trim().to_owned()),
                Err(_) => {
                    bad_utf8 = Some(names[i].clone());
                    break;
                }
            }
        }
        if let Some(column) = bad_utf8 {
            parsed
                .problems
                .push(problem(format!("column {column} is not valid UTF-8")));
            continue;
        }
        let row = Row {
            names: &names,
            fields: &fields,
            index: &index,
        };
        match contact(&row, language, now) {
            Ok(contact) => {
                if let Some(first) = first_line.get(&contact.id) {
                    parsed.problems.push(problem(format!(
                        "external_id {} appears again (first on line {first})",
                        contact.id
                    )));
                } else {
                    first_line.insert(contact.id.clone(), line);
                    parsed.contacts.push((line, contact));
                }
            }
            Err(messages) => {
                for message in messages {
                    parsed.problems.push(problem(message));
                }
            }
        }
    }
    Ok(parsed)
}

/// Where each line of the file starts, to name a record's line. The csv
/// reader's own count, and the byte offset it gives a record, stop one short
/// in a file with CRLF line ends: a record "starts" at the `\n` of the line
/// before. So the line is found from the first byte at or after that offset
/// that ends no line; lines end in `\n`, `\r\n` or a lone `\r`.
struct LineStarts<'a> {
    bytes: &'a [u8],
    starts: Vec<usize>,
}

impl LineStarts<'_> {
    fn of(bytes: &[u8]) -> LineStarts<'_> {
        let mut starts = vec![0];
        let mut i = 0;
        while i < bytes.len() {
            let end = match (bytes[i], bytes.get(i + 1)) {
                (b'\r', Some(b'\n')) => Some(i + 2),
                (b'\r' | b'\n', _) => Some(i + 1),
                _ => None,
            };
            i = end.unwrap_or(i + 1);
            if let Some(next) = end {
                starts.push(next);
            }
        }
        LineStarts { bytes, starts }
    }

    /// The 1-based line of the record the csv reader places at `offset`.
    fn line_of(&self, offset: u64) -> u64 {
        let mut at = usize::try_from(offset).unwrap_or(usize::MAX);
        while self
            .bytes
            .get(at)
            .is_some_and(|b| matches!(b, b'\r' | b'\n'))
        {
            at += 1;
        }
        self.starts.partition_point(|&start| start <= at) as u64
    }
}

/// One record, its fields found by column name.
struct Row<'a> {
    names: &'a [String],
    fields: &'a [String],
    index: &'a HashMap<&'a str, usize>,
}

impl Row<'_> {
    fn get(&self, name: &str) -> &str {
        self.index
            .get(name)
            .and_then(|&i| self.fields.get(i))
            .map_or("", String::as_str)
    }
}

fn contact(row: &Row<'_>, language: &str, now: DateTime<Utc>) -> Result<Contact, Vec<String>> {
    let field = |name: &str| row.get(name);
    let mut problems = Vec::new();
    let id = field("external_id");
    if id.is_empty() {
        problems.push("external_id is empty".to_owned());
    } else if let Some(problem) = super::contacts::id_problem(id) {
        problems.push(problem.replace("a contact id", "external_id"));
    }
    let owner = field("owner");
    if owner.is_empty() {
        problems.push("owner is empty: every contact needs a responsible person".to_owned());
    }
    let email = Some(field("email")).filter(|e| !e.is_empty());
    if let Some(email) = email
        && !plausible_email(email)
    {
        problems.push(format!("email {email:?} is not an e-mail address"));
    }
    let phone = Some(field("phone")).filter(|p| !p.is_empty());
    if let Some(phone) = phone
        && !plausible_phone(phone)
    {
        problems.push(format!("phone {phone:?} is not a phone number"));
    }
    let created_at = match field("created_at") {
        "" => Some(now),
        text => parse_time(text).or_else(|| {
            problems.push(format!(
                "created_at {text:?} is not a date (use 2026-11-30 or 2026-11-30T09:00:00Z)"
            ));
            None
        }),
    };
    // Optional: the language to write to this contact in (default: the tenant's).
    let language = match field("language") {
        "" => language,
        l if l.len() <= 16 && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') => l,
        l => {
            problems.push(format!(
                "language {l:?} is not a language tag (use de, en or en-GB)"
            ));
            language
        }
    };
    if !problems.is_empty() {
        return Err(problems);
    }
    let attributes: BTreeMap<String, String> = row
        .names
        .iter()
        .zip(row.fields)
        .filter(|(name, value)| {
            !COLUMNS.contains(&name.as_str()) && name.as_str() != "language" && !value.is_empty()
        })
        .map(|(name, value)| (name.clone(), value.clone()))
        .collect();
    let source = match field("source") {
        "" => "import",
        s => s,
    };
    let contact = Contact {
        id: id.to_owned(),
        first_name: field("first_name").to_owned(),
        last_name: field("last_name").to_owned(),
        email: email.map(str::to_owned),
        phone: phone.map(str::to_owned),
        owner: owner.to_owned(),
        source: source.to_owned(),
        language: language.to_owned(),
        created_at: created_at.unwrap_or(now),
        attributes,
    };
    let problems = super::contacts::field_problems(&contact);
    if problems.is_empty() {
        Ok(contact)
    } else {
        Err(problems)
    }
}

pub(crate) fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(t.with_timezone(&Utc));
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
}

pub(crate) fn plausible_email(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !email.chars().any(char::is_whitespace)
}

pub(crate) fn plausible_phone(phone: &str) -> bool {
    phone
        .chars()
        .all(|c| c.is_ascii_digit() || " +-()/.".contains(c))
        && phone.chars().filter(char::is_ascii_digit).count() >= 5
}

/// Adds a problem for every row whose e-mail address or phone number was
/// erased earlier: such a contact must not come back through an import.
pub fn check_erased(conn: &Conn, tenant: &str, parsed: &mut Parsed) -> crate::store::Result<()> {
    let mut keep = Vec::with_capacity(parsed.contacts.len());
    for (line, contact) in std::mem::take(&mut parsed.contacts) {
        match super::contacts::erased_address(conn, tenant, &contact)? {
            Some(erased) => parsed.problems.push(RowProblem {
                line,
                message: format!(
                    "the {} of {} belongs to a contact erased on {}; it cannot be imported again",
                    erased.kind,
                    contact.id,
                    erased.day()
                ),
            }),
            None => keep.push((line, contact)),
        }
    }
    parsed.contacts = keep;
    parsed.problems.sort_by_key(|p| p.line);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 30, 9, 0, 0)
            .single()
            .expect("valid")
    }

    const HEADER: &str =
        "external_id,first_name,last_name,email,phone,owner,source,created_at,fair\n";

    #[test]
    fn good_rows_become_contacts_with_attributes() {
        let csv = format!(
            "{HEADER}C1,Jürgen,Groß,j.gross@example.de,+49 30 123456,jk,trade-fair,2026-10-01,IFA\nC2,Zoë,Weiß,,,mb,,,\n"
        );
        let parsed = parse(csv.as_bytes(), "de", now()).expect("parses");
        assert_eq!(parsed.problems, []);
        let (line, first) = &parsed.contacts[0];
        assert_eq!(*line, 2);
        assert_eq!(first.last_name, "Groß");
        assert_eq!(
            first.attributes.get("fair").map(String::as_str),
            Some("IFA")
        );
        let second = &parsed.contacts[1].1;
        assert_eq!(second.source, "import");
        assert_eq!(second.created_at, now());
        assert!(second.attributes.is_empty());
    }

    #[test]
    fn lines_are_counted_the_same_whatever_the_line_ends() {
        // The second data row is bad; a quoted field (an attribute, where a
        // line break is allowed) spans two lines before it.
        let rows = [
            HEADER.trim_end(),
            "C1,Anna,B,,,jk,web,,\"Halle 4\nStand 12\"",
            "C2,A,B,not-an-address,,jk,web,,",
            "C3,A,B,,,jk,web,,",
        ];
        for end in ["\n", "\r\n", "\r"] {
            let csv = rows.join(end) + end;
            let parsed = parse(csv.as_bytes(), "de", now()).expect("parses");
            let lines: Vec<u64> = parsed.problems.iter().map(|p| p.line).collect();
            assert_eq!(lines, [4], "line ends {end:?}");
            let good: Vec<u64> = parsed.contacts.iter().map(|(l, _)| *l).collect();
            assert_eq!(good, [2, 5], "line ends {end:?}");
        }
    }

    #[test]
    fn every_bad_row_is_reported_with_its_line() {
        let csv = format!(
            "{HEADER}C1,A,B,not-an-address,,jk,web,2026-10-01,\n,A,B,,,jk,web,,\nC3,A,B,,12,,web,yesterday,\nC1,A,B,,,jk,web,,\nC5,too,few\n"
        );
        let parsed = parse(csv.as_bytes(), "de", now()).expect("parses");
        let lines: Vec<(u64, &str)> = parsed
            .problems
            .iter()
            .map(|p| (p.line, p.message.as_str()))
            .collect();
        assert_eq!(
            lines,
            [
                (2, "email \"not-an-address\" is not an e-mail address"),
                (3, "external_id is empty"),
                (
                    4,
                    "owner is empty: every contact needs a responsible person"
                ),
                (4, "phone \"12\" is not a phone number"),
                (
                    4,
                    "created_at \"yesterday\" is not a date (use 2026-11-30 or 2026-11-30T09:00:00Z)"
                ),
                (6, "has 3 field(s), the header has 9"),
            ]
        );
        // Row 5 repeats C1, whose first row (line 2) was bad, so it stands.
        assert_eq!(parsed.contacts.len(), 1);
    }

    #[test]
    fn a_repeated_id_is_a_problem() {
        let csv = format!("{HEADER}C1,A,B,,,jk,web,,\nC1,A,B,,,jk,web,,\n");
        let parsed = parse(csv.as_bytes(), "de", now()).expect("parses");
        assert_eq!(
            parsed.problems[0].message,
            "external_id C1 appears again (first on line 2)"
        );
    }

    #[test]
    fn a_bad_header_is_refused_whole() {
        let err = parse(b"id,name\n1,x\n", "de", now()).expect_err("refused");
        assert!(
            err.to_string()
                .starts_with("the header lacks the column(s) external_id, first_name"),
            "{err}"
        );
        let err = parse(b"", "de", now()).expect_err("refused");
        assert_eq!(err.to_string(), "the file has no header line");
    }

    #[test]
    fn invalid_utf8_is_reported_by_column() {
        let mut csv = HEADER.as_bytes().to_vec();
        csv.extend_from_slice(b"C1,J\xfcrgen,B,,,jk,web,,\n");
        let parsed = parse(&csv, "de", now()).expect("parses");
        assert_eq!(
            parsed.problems[0].message,
            "column first_name is not valid UTF-8"
        );
    }
}

/// What storing an import did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub added: usize,
    pub updated: usize,
    pub unchanged: usize,
    pub opened: usize,
}

/// Stores the good rows of `parsed` in one transaction: all of them or none.
/// `progress` hears of each row stored.
pub fn store(
    store: &mut crate::store::Store,
    tenant: &str,
    parsed: &Parsed,
    now: i64,
    progress: &mut dyn FnMut(usize),
) -> Result<Counts, crate::store::StoreError> {
    use crate::store::contacts::Upsert;
    let list = parsed.contacts.iter().map(|(_, contact)| contact);
    let mut counts = Counts::default();
    for stored in super::contacts::store_all(store, tenant, list, now, progress)? {
        match stored.upsert {
            Upsert::Added => counts.added += 1,
            Upsert::Updated => counts.updated += 1,
            Upsert::Unchanged => counts.unchanged += 1,
        }
        counts.opened += stored.cases_opened;
    }
    Ok(counts)
}
