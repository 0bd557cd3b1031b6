//! CSV import of contacts, streamed in two passes so that a file of
//! millions of rows needs little memory: the first pass reads and checks
//! every row and keeps only what the duplicate check needs; if a row is bad
//! nothing is written (unless the caller skips bad rows), and the second
//! pass writes the good rows in one transaction, all of them or none. An
//! import writes one audit row for the contacts it adds (see
//! `store/imports.rs`), not two for each.
//!
//! Columns: `external_id,first_name,last_name,email,phone,owner,source,created_at`
//! (a header is required, order is free); further columns are kept as the
//! contact's attributes. The file may be what Excel writes: CSV with
//! commas, semicolons or tabs, in UTF-8 (with or without a byte-order mark)
//! or Windows-1252, or an `.xlsx` workbook (see `format`).

mod format;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Read;

use crate::store::Conn;
use chrono::{DateTime, NaiveDate, Utc};

use crate::plugin::Contact;
pub use format::{Encoding, Format, Options, Records, detect};

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

/// A whole file as read in memory: good rows with their lines, and the
/// problems (for small files: the demo's, the tests').
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
    #[error("the header lacks the column(s) {}; expected {} (in any order, separated by commas, semicolons or tabs)", .0.join(", "), COLUMNS.join(","))]
    MissingColumns(Vec<String>),
    #[error("the header names column {0} twice")]
    DuplicateColumn(String),
    #[error("failed to read the header")]
    Csv(#[from] csv::Error),
    #[error("failed to read the file")]
    Read(#[source] std::io::Error),
    #[error("this is an Excel 97-2003 workbook (.xls); save it as .xlsx or as CSV and import that")]
    OldExcel,
    #[error("the workbook has no sheet {sheet:?}; its sheets: {}", .sheets.join(", "))]
    NoSheet { sheet: String, sheets: Vec<String> },
    #[error("the workbook cannot be read: {0}")]
    Xlsx(String),
    #[error("the file changed while it was imported; nothing was imported")]
    Changed,
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

impl From<crate::store::Error> for ImportError {
    fn from(err: crate::store::Error) -> ImportError {
        ImportError::Store(err.into())
    }
}

/// A file read row by row, each row checked.
pub struct Rows<'a> {
    records: Records<'a>,
    index: HashMap<String, usize>,
    language: String,
    now: DateTime<Utc>,
}

/// One row: its line, and the contact or what is wrong with it.
pub type ReadRow = (u64, Result<Contact, Vec<String>>);

impl<'a> Rows<'a> {
    /// Reads and checks the header. `language` is the contacts' language
    /// where the file names none; `now` fills an empty `created_at`.
    pub fn new<R: Read + 'a>(
        read: R,
        format: &Format,
        language: &str,
        now: DateTime<Utc>,
    ) -> Result<Rows<'a>, ImportError> {
        let records = Records::open(read, format)?;
        let mut index = HashMap::new();
        for (i, name) in records.names.iter().enumerate() {
            if name.is_empty() {
                continue;
            }
            if index.insert(name.clone(), i).is_some() {
                return Err(ImportError::DuplicateColumn(name.clone()));
            }
        }
        let missing: Vec<String> = COLUMNS
            .iter()
            .filter(|c| !index.contains_key(**c))
            .map(|c| (*c).to_owned())
            .collect();
        if !missing.is_empty() {
            return Err(ImportError::MissingColumns(missing));
        }
        Ok(Rows {
            records,
            index,
            language: language.to_owned(),
            now,
        })
    }

    /// The next row, or `None` at the end of the file.
    pub fn next_row(&mut self) -> Result<Option<ReadRow>, ImportError> {
        Ok(self.records.next_record()?.map(|(line, fields)| {
            let checked = match fields {
                Ok(fields) => contact(
                    &Row {
                        names: &self.records.names,
                        fields: &fields,
                        index: &self.index,
                    },
                    &self.language,
                    self.now,
                ),
                Err(problem) => Err(vec![problem]),
            };
            (line, checked)
        }))
    }

    /// The SHA-256 of every byte read so far: of the whole file once
    /// [`Rows::next_row`] has said it ended.
    pub fn sha256(&self) -> String {
        self.records.sha256()
    }
}

/// What the first pass found: the problems (every bad row, with its line)
/// and what the second pass needs to write the others.
#[derive(Debug)]
pub struct Check {
    pub problems: Vec<RowProblem>,
    /// Data rows in the file.
    pub rows: u64,
    /// Rows that may be written.
    pub good: u64,
    /// The lines of bad rows, which the second pass skips.
    bad: HashSet<u64>,
    /// The file's SHA-256: the second pass must read the same file.
    pub sha256: String,
    /// How the file was read; the second pass reads it the same way.
    pub format: Format,
}

impl Check {
    /// How many rows have problems.
    pub fn bad_rows(&self) -> usize {
        self.bad.len()
    }
}

/// Why an id cannot be imported a second time in one file: only its first
/// line is kept, by id (about 50 bytes each, so a million ids fit well).
#[derive(Default)]
struct Seen(HashMap<Box<str>, u64>);

impl Seen {
    fn first(&mut self, id: &str, line: u64) -> Option<u64> {
        match self.0.get(id) {
            Some(&first) => Some(first),
            None => {
                self.0.insert(id.into(), line);
                None
            }
        }
    }
}

fn repeated(id: &str, first: u64) -> String {
    format!("external_id {id} appears again (first on line {first})")
}

/// The first pass: reads and checks every row of the file. Rows repeating
/// an id, and rows whose e-mail address or phone number belongs to a
/// contact klar erased, are problems too.
pub fn check<R: Read>(
    (read, format): (R, &Format),
    conn: &Conn,
    tenant: &str,
    (language, now): (&str, DateTime<Utc>),
) -> Result<Check, ImportError> {
    let mut rows = Rows::new(read, format, language, now)?;
    let tombstones = crate::store::imports::any_tombstone(conn, tenant)?;
    let mut seen = Seen::default();
    let mut check = Check {
        problems: Vec::new(),
        rows: 0,
        good: 0,
        bad: HashSet::new(),
        sha256: String::new(),
        format: format.clone(),
    };
    while let Some((line, row)) = rows.next_row()? {
        check.rows += 1;
        let mut problems = match row {
            Ok(contact) => {
                let mut problems = Vec::new();
                if let Some(first) = seen.first(&contact.id, line) {
                    problems.push(repeated(&contact.id, first));
                } else if tombstones
                    && let Some(erased) = super::contacts::erased_address(conn, tenant, &contact)?
                {
                    problems.push(format!(
                        "the {} of {} belongs to a contact erased on {}; it cannot be imported again",
                        erased.kind,
                        contact.id,
                        erased.day()
                    ));
                }
                problems
            }
            Err(problems) => problems,
        };
        if problems.is_empty() {
            check.good += 1;
        } else {
            check.bad.insert(line);
            check.problems.extend(
                problems
                    .drain(..)
                    .map(|message| RowProblem { line, message }),
            );
        }
    }
    check.sha256 = rows.sha256();
    Ok(check)
}

/// Reads and checks a whole file in memory (without the erasure check).
pub fn parse(bytes: &[u8], language: &str, now: DateTime<Utc>) -> Result<Parsed, ImportError> {
    let format = detect(bytes, &Options::default())?;
    let mut rows = Rows::new(bytes, &format, language, now)?;
    let mut seen = Seen::default();
    let mut parsed = Parsed::default();
    while let Some((line, row)) = rows.next_row()? {
        match row {
            Ok(contact) => match seen.first(&contact.id, line) {
                Some(first) => parsed.problems.push(RowProblem {
                    line,
                    message: repeated(&contact.id, first),
                }),
                None => parsed.contacts.push((line, contact)),
            },
            Err(messages) => parsed.problems.extend(
                messages
                    .into_iter()
                    .map(|message| RowProblem { line, message }),
            ),
        }
    }
    Ok(parsed)
}

/// Both passes over a file held in memory (the demo's, a benchmark's):
/// nothing is written if a row is bad.
pub fn import_bytes(
    store: &mut crate::store::Store,
    tenant: &str,
    (bytes, name): (&[u8], &str),
    (language, now): (&str, DateTime<Utc>),
) -> Result<Result<Counts, Vec<RowProblem>>, ImportError> {
    let format = detect(bytes, &Options::default())?;
    let check = check(
        (bytes, &format),
        store.connection(),
        tenant,
        (language, now),
    )?;
    if !check.problems.is_empty() {
        return Ok(Err(check.problems));
    }
    write(
        store,
        tenant,
        (bytes, name),
        &check,
        (language, now),
        &mut |_| {},
    )
    .map(Ok)
}

/// What storing an import did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub added: usize,
    pub updated: usize,
    pub unchanged: usize,
    pub opened: usize,
}

/// The second pass: writes the good rows of the file `check` read, in one
/// transaction, all of them or none. A new contact gets a case for every
/// purpose; a known one is updated (with its own audit row) and gets the
/// cases it lacks. One audit row (`import`) names the file by name and
/// SHA-256, the counts, and the Merkle root of the ids it added.
/// `progress` hears of each row written.
pub fn write<R: Read>(
    store: &mut crate::store::Store,
    tenant: &str,
    (read, name): (R, &str),
    check: &Check,
    (language, now): (&str, DateTime<Utc>),
    progress: &mut dyn FnMut(usize),
) -> Result<Counts, ImportError> {
    use crate::store::contacts::{self, Upsert};
    use crate::store::{audit, imports};
    let at = now.timestamp();
    let mut rows = Rows::new(read, &check.format, language, now)?;
    // The write lock from the start: nothing else writes between the
    // import's number and its audit row.
    store.write(|tx| {
        let n = imports::begin(tx, tenant)?;
        let mut counts = Counts::default();
        let mut ids = crate::merkle::Builder::default();
        while let Some((line, row)) = rows.next_row()? {
            let contact = match row {
                Ok(contact) if !check.bad.contains(&line) => contact,
                _ => continue,
            };
            if imports::add_contact(tx, tenant, &contact, (n, ids.len() as i64))? {
                ids.push(crate::merkle::leaf(&contact.id));
                counts.added += 1;
            } else {
                match contacts::upsert(tx, tenant, &contact, at)? {
                    Upsert::Updated => counts.updated += 1,
                    Upsert::Unchanged => counts.unchanged += 1,
                    Upsert::Added => counts.added += 1,
                }
                counts.opened += contacts::open_cases(tx, tenant, &contact.id, at)?;
            }
            progress(1);
        }
        if rows.sha256() != check.sha256 {
            return Err(ImportError::Changed);
        }
        counts.opened += imports::open_cases(tx, tenant, n, at)?;
        let row = audit::append(
            tx,
            tenant,
            audit::Entry::tenant(
                at,
                "import",
                &serde_json::json!({
                    "import": n,
                    "file": name,
                    "file_sha256": check.sha256,
                    "rows": check.rows,
                    "skipped": check.bad_rows(),
                    "added": counts.added,
                    "updated": counts.updated,
                    "unchanged": counts.unchanged,
                    "cases_opened": counts.opened,
                    "added_ids": {
                        "count": ids.len(),
                        "merkle_root": crate::hex(&ids.root()),
                        "tree": crate::merkle::DESCRIPTION,
                    },
                }),
            ),
        )?;
        imports::finish(tx, tenant, n, row.seq)?;
        Ok(counts)
    })
}

/// One record, its fields found by column name.
struct Row<'a> {
    names: &'a [String],
    fields: &'a [String],
    index: &'a HashMap<String, usize>,
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
        text => parse_time(text).or_else(|| german_date(text)).or_else(|| {
            problems.push(format!(
                "created_at {text:?} is not a date (use 30.11.2026, 2026-11-30 or 2026-11-30T09:00:00Z)"
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
    for (i, (name, value)) in row.names.iter().zip(row.fields).enumerate() {
        if name.is_empty() && !value.is_empty() {
            problems.push(format!(
                "has a value in column {}, which the header does not name",
                i + 1
            ));
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    let attributes: BTreeMap<String, String> = row
        .names
        .iter()
        .zip(row.fields)
        .filter(|(name, value)| {
            !name.is_empty()
                && !COLUMNS.contains(&name.as_str())
                && name.as_str() != "language"
                && !value.is_empty()
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

/// A day as German Excel writes it (`31.12.2025`), at midnight UTC as an
/// ISO day is.
fn german_date(text: &str) -> Option<DateTime<Utc>> {
    NaiveDate::parse_from_str(text, "%d.%m.%Y")
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
                    "created_at \"yesterday\" is not a date (use 30.11.2026, 2026-11-30 or 2026-11-30T09:00:00Z)"
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
    fn invalid_utf8_is_read_as_windows_1252_unless_utf8_is_said() {
        let mut csv = HEADER.as_bytes().to_vec();
        csv.extend_from_slice(b"C1,J\xfcrgen,B,,,jk,web,,\n");
        let parsed = parse(&csv, "de", now()).expect("parses");
        assert_eq!(parsed.problems, []);
        assert_eq!(parsed.contacts[0].1.first_name, "Jürgen");

        let mut rows = Rows::new(&csv[..], &Format::plain_csv(), "de", now()).expect("header");
        let (_, row) = rows.next_row().expect("reads").expect("a row");
        assert!(row.expect_err("refused")[0].starts_with("column first_name is not valid UTF-8"),);
    }

    #[test]
    fn german_excel_csv_reads_with_its_dates() {
        let csv = format!(
            "\u{feff}{}\r\nC1;Jürgen;Groß;;;jk;;31.12.2025;IFA\r\nC2;A;B;;;jk;;1.2.2026;\r\n",
            HEADER.trim_end().replace(',', ";")
        );
        let parsed = parse(csv.as_bytes(), "de", now()).expect("parses");
        assert_eq!(parsed.problems, []);
        let days: Vec<String> = parsed
            .contacts
            .iter()
            .map(|(_, c)| c.created_at.format("%Y-%m-%d").to_string())
            .collect();
        assert_eq!(days, ["2025-12-31", "2026-02-01"]);
        assert_eq!(parsed.contacts[0].1.last_name, "Groß");
    }

    #[test]
    fn a_value_under_no_column_name_is_a_problem() {
        let csv = format!(
            "{},\nC1,A,B,,,jk,,,,\nC2,A,B,,,jk,,,,stray\n",
            HEADER.trim_end()
        );
        let parsed = parse(csv.as_bytes(), "de", now()).expect("parses");
        assert_eq!(parsed.contacts.len(), 1);
        assert_eq!(
            parsed.problems,
            [RowProblem {
                line: 3,
                message: "has a value in column 10, which the header does not name".to_owned()
            }]
        );
    }
}
