//! The files people really have: what the admin's Excel writes. German Excel
//! saves "CSV UTF-8" with a byte-order mark, CRLF and semicolons, and plain
//! "CSV" in Windows-1252; and it saves `.xlsx`. [`detect`] finds out which
//! of these a file is, and [`Records`] reads its rows as text fields, each
//! with the line (or sheet row) a person finds it under.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io::Read;
use std::rc::Rc;

use sha2::{Digest, Sha256};

use super::{COLUMNS, ImportError};

/// A CSV file's character encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Utf8,
    /// German Excel's plain "CSV" (and most older Windows programs).
    Windows1252,
}

impl Encoding {
    pub fn name(self) -> &'static str {
        match self {
            Encoding::Utf8 => "UTF-8",
            Encoding::Windows1252 => "Windows-1252",
        }
    }
}

/// What the user said about the file, overriding the guesses.
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub delimiter: Option<u8>,
    pub encoding: Option<Encoding>,
    /// The worksheet of an `.xlsx` file (default: the first).
    pub sheet: Option<String>,
}

/// How a file is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Format {
    Csv {
        delimiter: u8,
        encoding: Encoding,
        /// Why the encoding was guessed to be Windows-1252, for the one
        /// line the import prints about it.
        guessed: Option<String>,
    },
    Xlsx {
        sheet: String,
    },
}

impl Format {
    /// Plain CSV: UTF-8 with commas (what klar writes, and the API's tests).
    pub fn plain_csv() -> Format {
        Format::Csv {
            delimiter: b',',
            encoding: Encoding::Utf8,
            guessed: None,
        }
    }

    /// The one line worth saying about a guess (an encoding other than the
    /// one klar expects), if any.
    pub fn note(&self) -> Option<String> {
        match self {
            Format::Csv {
                guessed: Some(why), ..
            } => Some(format!(
                "read as Windows-1252 (German Excel's plain CSV): {why}; --encoding utf-8 refuses such a file instead"
            )),
            _ => None,
        }
    }

    /// Where a row is, for a person: `line 7`, or `sheet Kontakte, row 7`.
    pub fn place(&self, line: u64) -> String {
        match self {
            Format::Csv { .. } => format!("line {line}"),
            Format::Xlsx { sheet } => format!("sheet {sheet}, row {line}"),
        }
    }
}

/// The first bytes of every zip file, and so of every `.xlsx`.
const ZIP: &[u8] = b"PK\x03\x04";
/// The first bytes of an Excel 97–2003 `.xls` (an OLE compound file).
const OLE: &[u8] = b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1";
const BOM: &[u8] = b"\xEF\xBB\xBF";
/// The header line is looked at for the separator up to this size.
const HEAD_LIMIT: usize = 1 << 20;

/// Finds out how to read a file: `.xlsx` by its content (a zip), else CSV,
/// whose separator is the one that makes the most of klar's columns out of
/// the header line, and whose encoding is UTF-8 unless some byte of it is
/// not (then Windows-1252, in which every byte is a character). A CSV file
/// is read to its end for that, unless `options` names the encoding or the
/// file starts with a UTF-8 byte-order mark.
pub fn detect<R: Read>(mut read: R, options: &Options) -> Result<Format, ImportError> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut head: Vec<u8> = Vec::new();
    let mut head_done = false;
    let mut carry: Vec<u8> = Vec::new();
    let mut lines_before = 1u64;
    let mut invalid_at: Option<u64> = None;
    let mut first = true;
    let mut encoding = options.encoding;
    loop {
        let n = read_some(&mut read, &mut buf)?;
        let chunk = &buf[..n];
        if first {
            first = false;
            if chunk.starts_with(ZIP) {
                return xlsx_format(chunk, read, options);
            }
            if chunk.starts_with(OLE) {
                return Err(ImportError::OldExcel);
            }
            if chunk.starts_with(BOM) {
                encoding.get_or_insert(Encoding::Utf8);
            }
        }
        if !head_done {
            let end = chunk.iter().position(|&b| b == b'\n');
            let take = end.map_or(chunk.len(), |e| e + 1);
            head.extend_from_slice(&chunk[..take.min(HEAD_LIMIT.saturating_sub(head.len()))]);
            head_done = end.is_some() || head.len() >= HEAD_LIMIT || n == 0;
        }
        if n == 0 {
            if !carry.is_empty() && invalid_at.is_none() {
                invalid_at = Some(lines_before);
            }
            break;
        }
        if encoding.is_none() && invalid_at.is_none() {
            // Valid UTF-8 so far; a character cut by the chunk's end is
            // carried over to the next.
            let mut data = std::mem::take(&mut carry);
            data.extend_from_slice(chunk);
            match std::str::from_utf8(&data) {
                Ok(_) => {}
                Err(e) if e.error_len().is_none() => carry = data[e.valid_up_to()..].to_vec(),
                Err(e) => {
                    let before = &data[..e.valid_up_to()];
                    invalid_at = Some(lines_before + newlines(before));
                }
            }
            lines_before += newlines(&data[..data.len() - carry.len()]);
        }
        if head_done && (encoding.is_some() || invalid_at.is_some()) {
            break;
        }
    }
    let (encoding, guessed) = match (encoding, invalid_at) {
        (Some(e), _) => (e, None),
        (None, None) => (Encoding::Utf8, None),
        (None, Some(line)) => (
            Encoding::Windows1252,
            Some(format!("line {line} is not valid UTF-8")),
        ),
    };
    let delimiter = match options.delimiter {
        Some(d) => d,
        None => guess_delimiter(&decode(&head, encoding)),
    };
    Ok(Format::Csv {
        delimiter,
        encoding,
        guessed,
    })
}

fn read_some<R: Read>(read: &mut R, buf: &mut [u8]) -> Result<usize, ImportError> {
    loop {
        match read.read(buf) {
            Ok(n) => return Ok(n),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(ImportError::Read(e)),
        }
    }
}

fn newlines(bytes: &[u8]) -> u64 {
    bytes.iter().filter(|&&b| b == b'\n').count() as u64
}

fn decode(bytes: &[u8], encoding: Encoding) -> String {
    let bytes = bytes.strip_prefix(BOM).unwrap_or(bytes);
    match encoding {
        Encoding::Utf8 => String::from_utf8_lossy(bytes).into_owned(),
        Encoding::Windows1252 => encoding_rs::WINDOWS_1252
            .decode_without_bom_handling(bytes)
            .0
            .into_owned(),
    }
}

/// The separator that finds the most of klar's columns in the header line;
/// among equals, the one that splits it into the most fields; a comma when
/// nothing tells.
fn guess_delimiter(header: &str) -> u8 {
    let score = |delimiter: u8| {
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .delimiter(delimiter)
            .from_reader(header.as_bytes());
        let mut record = csv::StringRecord::new();
        match reader.read_record(&mut record) {
            Ok(true) => {
                let known = record
                    .iter()
                    .filter(|f| COLUMNS.contains(&f.trim()))
                    .count();
                (known, record.len())
            }
            _ => (0, 0),
        }
    };
    let mut best = (b',', score(b','));
    for delimiter in [b';', b'\t'] {
        let s = score(delimiter);
        if s > best.1 {
            best = (delimiter, s);
        }
    }
    best.0
}

/// An `.xlsx` file's format: the sheet asked for, or the first.
fn xlsx_format<R: Read>(
    start: &[u8],
    mut rest: R,
    options: &Options,
) -> Result<Format, ImportError> {
    use calamine::Reader;
    let mut bytes = start.to_vec();
    rest.read_to_end(&mut bytes).map_err(ImportError::Read)?;
    let names = workbook(bytes)?.sheet_names();
    let sheet = match &options.sheet {
        Some(sheet) if names.contains(sheet) => sheet.clone(),
        Some(sheet) => {
            return Err(ImportError::NoSheet {
                sheet: sheet.clone(),
                sheets: names,
            });
        }
        None => names.into_iter().next().ok_or(ImportError::NoHeader)?,
    };
    Ok(Format::Xlsx { sheet })
}

fn workbook(bytes: Vec<u8>) -> Result<calamine::Xlsx<std::io::Cursor<Vec<u8>>>, ImportError> {
    use calamine::Reader;
    calamine::Xlsx::new(std::io::Cursor::new(bytes)).map_err(|e| ImportError::Xlsx(e.to_string()))
}

/// The raw bytes of a file on their way to be read, hashed as they pass:
/// the audit row names the file by the SHA-256 of what is on disk, whatever
/// it was decoded from.
struct Hashed<R> {
    inner: R,
    sha256: Rc<RefCell<Sha256>>,
}

impl<R: Read> Read for Hashed<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.sha256.borrow_mut().update(&buf[..n]);
        Ok(n)
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
}

impl Lines {
    fn feed(&mut self, bytes: &[u8]) {
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

/// The decoded text on its way to the csv reader, through [`Lines`]. Line
/// ends are the same bytes in every encoding read here, so lines counted
/// after decoding are the file's lines.
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

/// One record's fields, trimmed, or why it cannot be read.
pub type Fields = Result<Vec<String>, String>;

/// A file's records after its header, one at a time.
pub struct Records<'a> {
    source: Source<'a>,
    sha256: Rc<RefCell<Sha256>>,
    /// The header's column names, trimmed.
    pub names: Vec<String>,
}

enum Source<'a> {
    Csv {
        reader: csv::Reader<Tracked<Box<dyn Read + 'a>>>,
        lines: Rc<RefCell<Lines>>,
        record: csv::ByteRecord,
    },
    Sheet {
        range: calamine::Range<calamine::Data>,
        /// The index in `range` of the next row to read.
        next: usize,
        /// The sheet's row number (1-based, as Excel shows it) of the
        /// range's first row.
        first_row: u64,
    },
}

impl<'a> Records<'a> {
    /// Opens `read` as `format` says and reads its header.
    pub fn open<R: Read + 'a>(read: R, format: &Format) -> Result<Records<'a>, ImportError> {
        let sha256 = Rc::new(RefCell::new(Sha256::new()));
        let hashed = Hashed {
            inner: read,
            sha256: Rc::clone(&sha256),
        };
        let (source, names) = match format {
            Format::Csv {
                delimiter,
                encoding,
                ..
            } => csv_source(hashed, *delimiter, *encoding)?,
            Format::Xlsx { sheet } => sheet_source(hashed, sheet)?,
        };
        Ok(Records {
            source,
            sha256,
            names,
        })
    }

    /// The next record with its line (sheet row), or `None` at the end.
    pub fn next_record(&mut self) -> Result<Option<(u64, Fields)>, ImportError> {
        match &mut self.source {
            Source::Csv {
                reader,
                lines,
                record,
            } => match reader.read_byte_record(record) {
                Ok(false) => Ok(None),
                Ok(true) => {
                    let line = line(lines, record.position());
                    Ok(Some((line, csv_fields(record, &self.names))))
                }
                Err(err) if err.is_io_error() => Err(read_error(err)),
                Err(err) => {
                    let line = line(lines, err.position());
                    Ok(Some((line, Err(format!("cannot be read: {err}")))))
                }
            },
            Source::Sheet {
                range,
                next,
                first_row,
            } => {
                // A row with nothing in it is no record, as an empty line
                // in a CSV file is none.
                // (`Range::rows().nth` walks from the start: cells are
                // taken by position instead.)
                let (height, width) = range.get_size();
                while *next < height {
                    let row: Vec<&calamine::Data> =
                        (0..width).filter_map(|c| range.get((*next, c))).collect();
                    let at = *first_row + *next as u64;
                    *next += 1;
                    if row.iter().all(|c| matches!(c, calamine::Data::Empty)) {
                        continue;
                    }
                    return Ok(Some((at, sheet_fields(&row, &self.names))));
                }
                Ok(None)
            }
        }
    }

    /// The SHA-256 of every byte read so far: of the whole file once
    /// [`Records::next_record`] has said it ended.
    pub fn sha256(&self) -> String {
        crate::hex(&self.sha256.borrow().clone().finalize())
    }
}

fn csv_source<'a, R: Read + 'a>(
    hashed: R,
    delimiter: u8,
    encoding: Encoding,
) -> Result<(Source<'a>, Vec<String>), ImportError> {
    let decoded: Box<dyn Read + 'a> = match encoding {
        Encoding::Utf8 => Box::new(hashed),
        Encoding::Windows1252 => Box::new(
            encoding_rs_io::DecodeReaderBytesBuilder::new()
                .encoding(Some(encoding_rs::WINDOWS_1252))
                .build(hashed),
        ),
    };
    let lines = Rc::new(RefCell::new(Lines::default()));
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .delimiter(delimiter)
        .from_reader(Tracked {
            inner: decoded,
            lines: Rc::clone(&lines),
        });
    let header = reader.byte_headers().map_err(read_error)?.clone();
    let names: Vec<String> = header
        .iter()
        .map(|h| std::str::from_utf8(h).map(|s| s.trim_start_matches('\u{feff}').trim().to_owned()))
        .collect::<Result<_, _>>()
        .map_err(|_| ImportError::HeaderNotUtf8)?;
    if names.iter().all(String::is_empty) {
        return Err(ImportError::NoHeader);
    }
    let source = Source::Csv {
        reader,
        lines,
        record: csv::ByteRecord::new(),
    };
    Ok((source, names))
}

fn sheet_source<'a, R: Read>(
    mut hashed: R,
    sheet: &str,
) -> Result<(Source<'a>, Vec<String>), ImportError> {
    use calamine::Reader;
    let mut bytes = Vec::new();
    hashed.read_to_end(&mut bytes).map_err(ImportError::Read)?;
    let range = workbook(bytes)?
        .worksheet_range(sheet)
        .map_err(|e| ImportError::Xlsx(e.to_string()))?;
    let (first_row, _) = range.start().ok_or(ImportError::NoHeader)?;
    let names = match range.rows().next() {
        Some(row) => row
            .iter()
            .map(|c| cell_text(c).map(|t| t.trim().to_owned()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| ImportError::Xlsx(format!("the header row holds {e}")))?,
        None => return Err(ImportError::NoHeader),
    };
    let source = Source::Sheet {
        range,
        next: 1,
        first_row: u64::from(first_row) + 1,
    };
    Ok((source, names))
}

fn line(lines: &Rc<RefCell<Lines>>, position: Option<&csv::Position>) -> u64 {
    position.map_or(0, |p| lines.borrow_mut().line_of(p.byte()))
}

fn csv_fields(record: &csv::ByteRecord, names: &[String]) -> Fields {
    if record.len() != names.len() {
        return Err(format!(
            "has {} field(s), the header has {}",
            record.len(),
            names.len()
        ));
    }
    record
        .iter()
        .zip(names)
        .map(|(raw, name)| match std::str::from_utf8(raw) {
            Ok(text) => Ok(text.trim().to_owned()),
            Err(_) => Err(format!(
                "column {name} is not valid UTF-8 (a file from German Excel's plain CSV export is Windows-1252: --encoding windows-1252)"
            )),
        })
        .collect()
}

fn sheet_fields(row: &[&calamine::Data], names: &[String]) -> Fields {
    let mut fields: Vec<String> = Vec::with_capacity(names.len());
    for (i, cell) in row.iter().enumerate() {
        let text = cell_text(cell).map_err(|e| match names.get(i) {
            Some(name) => format!("column {name} holds {e}"),
            None => format!("column {} (beyond the header) holds {e}", i + 1),
        })?;
        if i >= names.len() {
            if !text.trim().is_empty() {
                return Err(format!(
                    "has a value in column {}, beyond the header's {} column(s)",
                    i + 1,
                    names.len()
                ));
            }
            continue;
        }
        fields.push(text.trim().to_owned());
    }
    fields.resize(names.len(), String::new());
    Ok(fields)
}

/// A cell as the text a CSV file would hold: whole numbers without `.0`
/// (Excel keeps phone numbers and ids typed as numbers), dates as ISO 8601.
fn cell_text(cell: &calamine::Data) -> Result<String, String> {
    use calamine::Data;
    Ok(match cell {
        Data::Empty => String::new(),
        Data::String(s) | Data::DateTimeIso(s) | Data::DurationIso(s) => s.clone(),
        Data::Int(i) => i.to_string(),
        Data::Float(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{f:.0}"),
        Data::Float(f) => f.to_string(),
        Data::Bool(b) => b.to_string(),
        Data::DateTime(d) => match d.as_datetime() {
            Some(t) if t.time() == chrono::NaiveTime::MIN => {
                t.date().format("%Y-%m-%d").to_string()
            }
            // A time of day without a zone: taken as UTC, as a date is.
            Some(t) => t.and_utc().to_rfc3339(),
            None => return Err(format!("the date {} out of range", d.as_f64())),
        },
        Data::Error(e) => return Err(format!("the spreadsheet error {e}")),
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "external_id,first_name,last_name,email,phone,owner,source,created_at";

    fn detected(bytes: &[u8]) -> Format {
        detect(bytes, &Options::default()).expect("detects")
    }

    #[test]
    fn excel_csv_utf8_is_semicolons_with_a_bom() {
        let file = format!(
            "\u{feff}{};Straße\r\nk-1;Jörg;Müller;;;anna;;;Hauptstr. 1\r\n",
            HEADER.replace(',', ";")
        );
        assert_eq!(
            detected(file.as_bytes()),
            Format::Csv {
                delimiter: b';',
                encoding: Encoding::Utf8,
                guessed: None
            }
        );
    }

    #[test]
    fn a_byte_that_is_not_utf8_means_windows_1252_and_names_its_line() {
        // "Jörg" in Windows-1252 on line 3, after a valid line 2.
        let mut file = format!("{}\nk-1,Anna,A,,,anna,,\n", HEADER.replace(',', ";")).into_bytes();
        file.extend_from_slice(b"k-2;J\xF6rg;M\xFCller;;;anna;;\n");
        let format = detected(&file);
        assert_eq!(
            format,
            Format::Csv {
                delimiter: b';',
                encoding: Encoding::Windows1252,
                guessed: Some("line 3 is not valid UTF-8".to_owned())
            }
        );
        assert!(format.note().expect("a note").contains("Windows-1252"));
    }

    #[test]
    fn a_character_cut_by_a_read_is_still_utf8() {
        // Reads of one byte each cut every "ö" in two.
        struct Bytewise<'a>(&'a [u8]);
        impl Read for Bytewise<'_> {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                let Some((&b, rest)) = self.0.split_first() else {
                    return Ok(0);
                };
                buf[0] = b;
                self.0 = rest;
                Ok(1)
            }
        }
        let file = format!("{HEADER}\nk-1,Jörg,Öz,,,anna,,\n");
        let format = detect(Bytewise(file.as_bytes()), &Options::default()).expect("detects");
        assert_eq!(format, Format::plain_csv());
    }

    #[test]
    fn tabs_are_found_and_the_user_overrides_every_guess() {
        assert_eq!(
            detected(format!("{}\n", HEADER.replace(',', "\t")).as_bytes()),
            Format::Csv {
                delimiter: b'\t',
                encoding: Encoding::Utf8,
                guessed: None
            }
        );
        let options = Options {
            delimiter: Some(b','),
            encoding: Some(Encoding::Windows1252),
            sheet: None,
        };
        let file = format!("{}\n", HEADER.replace(',', ";"));
        assert_eq!(
            detect(file.as_bytes(), &options).expect("detects"),
            Format::Csv {
                delimiter: b',',
                encoding: Encoding::Windows1252,
                guessed: None
            }
        );
    }

    #[test]
    fn windows_1252_is_decoded_and_lines_still_count() {
        let mut file = format!("{}\r\n", HEADER.replace(',', ";")).into_bytes();
        file.extend_from_slice(
            b"k-1;J\xF6rg;Stra\xDFer;;;anna;;\r\n\r\nk-2;\x80uro;X;;;anna;;\r\n",
        );
        let format = detected(&file);
        let mut records = Records::open(&file[..], &format).expect("opens");
        let (line, fields) = records.next_record().expect("reads").expect("a record");
        assert_eq!(line, 2);
        assert_eq!(fields.expect("fields")[1..3], ["Jörg", "Straßer"]);
        let (line, fields) = records.next_record().expect("reads").expect("a record");
        assert_eq!(line, 4);
        assert_eq!(fields.expect("fields")[1], "€uro");
        assert!(records.next_record().expect("reads").is_none());
        // The file's own bytes are hashed, not the decoded text.
        assert_eq!(records.sha256(), crate::hex(&Sha256::digest(&file)));
    }

    #[test]
    fn an_old_xls_is_refused_with_what_to_do() {
        let err = detect(
            &b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1rest"[..],
            &Options::default(),
        )
        .expect_err("refused");
        assert!(err.to_string().contains(".xlsx"), "{err}");
    }

    #[test]
    fn cells_read_as_a_csv_file_would_hold_them() {
        use calamine::Data;
        assert_eq!(
            cell_text(&Data::Float(4971112345.0)),
            Ok("4971112345".to_owned())
        );
        assert_eq!(cell_text(&Data::Float(1.5)), Ok("1.5".to_owned()));
        assert_eq!(cell_text(&Data::Int(7)), Ok("7".to_owned()));
        assert!(
            cell_text(&Data::Error(calamine::CellErrorType::Div0))
                .expect_err("an error cell")
                .contains("#DIV/0!")
        );
    }
}
