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
//! contact's attributes. UTF-8 only.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::io::Read;
use std::rc::Rc;

use crate::store::Conn;
use chrono::{DateTime, NaiveDate, Utc};
use sha2::{Digest, Sha256};

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
    #[error("the header lacks the column(s) {}; expected {}", .0.join(", "), COLUMNS.join(","))]
    MissingColumns(Vec<String>),
    #[error("the header names column {0} twice")]
    DuplicateColumn(String),
    #[error("failed to read the header")]
    Csv(#[from] csv::Error),
    #[error("failed to read the file")]
    Read(#[source] std::io::Error),
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

/// Where the lines of a streamed file start, for naming a record's line.
/// The csv reader's own count, and the byte offset it gives a record, stop
/// one short in a file with CRLF line ends: a record "starts" at the `\n`
/// of the line before. So a record's line is found from the first byte at or
/// after that offset that ends no line; lines end in `\n`, `\r\n` or a lone
/// `\r`. The bytes pass through here as the csv reader reads them, and only
/// the runs of line ends it has not passed yet are kept.
#[derive(Debug, Default)]
struct Lines {
    seen: u64,
    /// The last byte seen was `\r`: a `\n` next belongs to the same line end.
    cr: bool,
    /// The run of line-end bytes being read: where it began, lines it ends.
    run: Option<(u64, u64)>,
    /// Finished runs: (start, lines they end).
    runs: VecDeque<(u64, u64)>,
    /// Lines ended by runs already passed.
    passed: u64,
    sha256: Sha256,
}

impl Lines {
    fn feed(&mut self, bytes: &[u8]) {
        self.sha256.update(bytes);
        for &b in bytes {
            let at = self.seen;
            if self.cr && b != b'\n' {
                self.line_ends();
            }
            if b == b'\r' || b == b'\n' {
                if self.run.is_none() {
                    self.run = Some((at, 0));
                }
                if b == b'\n' {
                    self.line_ends();
                }
            } else if let Some(run) = self.run.take() {
                self.runs.push_back(run);
            }
            self.cr = b == b'\r';
            self.seen += 1;
        }
    }

    fn line_ends(&mut self) {
        if let Some(run) = &mut self.run {
            run.1 += 1;
        }
    }

    fn end(&mut self) {
        if self.cr {
            self.line_ends();
            self.cr = false;
        }
        if let Some(run) = self.run.take() {
            self.runs.push_back(run);
        }
    }

    /// The 1-based line of the record the csv reader places at `offset`
    /// (asked in increasing order).
    fn line_of(&mut self, offset: u64) -> u64 {
        // A run that starts at or before the offset ends before the record
        // or holds the offset: either way the record starts after it.
        while let Some(&(start, lines)) = self.runs.front() {
            if start > offset {
                break;
            }
            self.passed += lines;
            self.runs.pop_front();
        }
        let open = match self.run {
            Some((start, lines)) if start <= offset => lines,
            _ => 0,
        };
        1 + self.passed + open
    }
}

/// The file's bytes on their way to the csv reader, through [`Lines`].
struct Tracked<R> {
    inner: R,
    lines: Rc<RefCell<Lines>>,
}

impl<R: Read> Read for Tracked<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        let mut lines = self.lines.borrow_mut();
        if n == 0 {
            lines.end();
        } else {
            lines.feed(&buf[..n]);
        }
        Ok(n)
    }
}

/// A CSV file read row by row, each row checked.
pub struct Rows<R: Read> {
    reader: csv::Reader<Tracked<R>>,
    names: Vec<String>,
    index: HashMap<String, usize>,
    language: String,
    now: DateTime<Utc>,
    lines: Rc<RefCell<Lines>>,
    record: csv::ByteRecord,
}

/// One row: its line, and the contact or what is wrong with it.
pub type ReadRow = (u64, Result<Contact, Vec<String>>);

impl<R: Read> Rows<R> {
    /// Reads and checks the header. `language` is the contacts' language
    /// where the file names none; `now` fills an empty `created_at`.
    pub fn new(read: R, language: &str, now: DateTime<Utc>) -> Result<Rows<R>, ImportError> {
        let lines = Rc::new(RefCell::new(Lines::default()));
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(true)
            .flexible(true)
            .from_reader(Tracked {
                inner: read,
                lines: Rc::clone(&lines),
            });
        let header = reader.byte_headers().map_err(read_error)?.clone();
        if header.is_empty() {
            return Err(ImportError::NoHeader);
        }
        let names: Vec<String> = header
            .iter()
            .map(|h| {
                std::str::from_utf8(h).map(|s| s.trim().trim_start_matches('\u{feff}').to_owned())
            })
            .collect::<Result<_, _>>()
            .map_err(|_| ImportError::HeaderNotUtf8)?;
        let mut index = HashMap::new();
        for (i, name) in names.iter().enumerate() {
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
            reader,
            names,
            index,
            language: language.to_owned(),
            now,
            lines,
            record: csv::ByteRecord::new(),
        })
    }

    /// The next row, or `None` at the end of the file.
    pub fn next_row(&mut self) -> Result<Option<ReadRow>, ImportError> {
        match self.reader.read_byte_record(&mut self.record) {
            Ok(false) => Ok(None),
            Ok(true) => {
                let line = self.line(self.record.position());
                Ok(Some((line, self.check_record())))
            }
            Err(err) if err.is_io_error() => Err(read_error(err)),
            Err(err) => {
                let line = self.line(err.position());
                Ok(Some((line, Err(vec![format!("cannot be read: {err}")]))))
            }
        }
    }

    /// The SHA-256 of every byte read so far: of the whole file once
    /// [`Rows::next_row`] has said it ended.
    pub fn sha256(&self) -> String {
        crate::hex(&self.lines.borrow().sha256.clone().finalize())
    }

    fn line(&self, position: Option<&csv::Position>) -> u64 {
        position.map_or(0, |p| self.lines.borrow_mut().line_of(p.byte()))
    }

    fn check_record(&self) -> Result<Contact, Vec<String>> {
        let record = &self.record;
        if record.len() != self.names.len() {
            return Err(vec![format!(
                "has {} field(s), the header has {}",
                record.len(),
                self.names.len()
            )]);
        }
        let mut fields = Vec::with_capacity(record.len());
        for (i, raw) in record.iter().enumerate() {
            match std::str::from_utf8(raw) {
                Ok(text) => fields.push(text.trim().to_owned()),
                Err(_) => return Err(vec![format!("column {} is not valid UTF-8", self.names[i])]),
            }
        }
        let row = Row {
            names: &self.names,
            fields: &fields,
            index: &self.index,
        };
        contact(&row, &self.language, self.now)
    }
}

fn read_error(err: csv::Error) -> ImportError {
    if !err.is_io_error() {
        return ImportError::Csv(err);
    }
    match err.into_kind() {
        csv::ErrorKind::Io(io) => ImportError::Read(io),
        _ => ImportError::Read(std::io::Error::other("the csv reader failed")),
    }
}

/// What the first pass found: the problems (every bad row, with its line)
/// and what the second pass needs to write the others.
#[derive(Debug, Default)]
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
    read: R,
    conn: &Conn,
    tenant: &str,
    (language, now): (&str, DateTime<Utc>),
) -> Result<Check, ImportError> {
    let mut rows = Rows::new(read, language, now)?;
    let tombstones = crate::store::imports::any_tombstone(conn, tenant)?;
    let mut seen = Seen::default();
    let mut check = Check::default();
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
    let mut rows = Rows::new(bytes, language, now)?;
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
    let check = check(bytes, store.connection(), tenant, (language, now))?;
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
    let mut rows = Rows::new(read, language, now)?;
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
