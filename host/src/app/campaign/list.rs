//! Reading a campaign's mailing list as people have it: what their CRM or
//! Excel exported (CSV with commas, semicolons or tabs, UTF-8 or
//! Windows-1252, or an `.xlsx` workbook; see `app::import`'s format), with a
//! header line and a column of contact ids. Every row is kept whole, so the
//! filtered list keeps the columns the mail tool needs.

use std::io::Read;

use crate::app::import::{Format, ImportError, Options, Records, detect};

/// The header names a column of contact ids goes by, in this order.
const ID_COLUMNS: [&str; 5] = ["external_id", "id", "contact", "kontakt", "kundennummer"];

/// A list as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct List {
    pub format: Format,
    /// The header's column names.
    pub names: Vec<String>,
    /// Which of them holds the contact ids.
    pub id_column: usize,
    /// Each row's line (sheet row) and fields, as many as the header has.
    pub rows: Vec<(u64, Vec<String>)>,
}

impl List {
    /// The contact ids, in the list's order.
    pub fn ids(&self) -> Vec<String> {
        self.rows
            .iter()
            .map(|(_, fields)| fields.get(self.id_column).cloned().unwrap_or_default())
            .collect()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ListError {
    #[error(transparent)]
    File(#[from] ImportError),
    #[error("there is no column {wanted:?}; the header has: {}", .names.join(", "))]
    NoColumn { wanted: String, names: Vec<String> },
    #[error(
        "no column of contact ids: name it with --column (the header has: {}); klar looks for {}",
        .names.join(", "), ID_COLUMNS.join(", ")
    )]
    NoIdColumn { names: Vec<String> },
    #[error("{place}: {why}")]
    Row { place: String, why: String },
    #[error("the list has no rows after its header")]
    Empty,
}

/// Reads a list; `open` opens the file afresh (it is read twice: once to
/// find its format, once for its rows). `column` names the id column;
/// without it the first of [`ID_COLUMNS`] the header has is taken, or the
/// only column.
pub fn read<R: Read>(
    open: impl Fn() -> std::io::Result<R>,
    options: &Options,
    column: Option<&str>,
) -> Result<List, ListError> {
    let io = |e| ListError::File(ImportError::Read(e));
    let mut format = detect(open().map_err(io)?, options)?;
    // The separator is found from klar's import columns; a list with none of
    // them (`Kundennummer;Name`) is read as one column, which its header
    // then shows.
    let mut records = Records::open(open().map_err(io)?, &format)?;
    if let (Format::Csv { delimiter, .. }, None, [only]) =
        (&mut format, options.delimiter, records.names.as_slice())
        && let Some(separator) = [b';', b'\t', b',']
            .into_iter()
            .find(|s| only.as_bytes().contains(s))
    {
        *delimiter = separator;
        records = Records::open(open().map_err(io)?, &format)?;
    }
    let names = records.names.clone();
    let id_column = match column {
        Some(wanted) => names
            .iter()
            .position(|n| n.eq_ignore_ascii_case(wanted.trim()))
            .ok_or_else(|| ListError::NoColumn {
                wanted: wanted.to_owned(),
                names: names.clone(),
            })?,
        None => ID_COLUMNS
            .iter()
            .find_map(|c| names.iter().position(|n| n.eq_ignore_ascii_case(c)))
            .or((names.len() == 1).then_some(0))
            .ok_or_else(|| ListError::NoIdColumn {
                names: names.clone(),
            })?,
    };
    let mut rows = Vec::new();
    while let Some((line, fields)) = records.next_record()? {
        let mut fields = fields.map_err(|why| ListError::Row {
            place: format.place(line),
            why,
        })?;
        fields.resize(names.len(), String::new());
        rows.push((line, fields));
    }
    if rows.is_empty() {
        return Err(ListError::Empty);
    }
    Ok(List {
        format,
        names,
        id_column,
        rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(text: &'static str, column: Option<&str>) -> Result<List, ListError> {
        read(
            || Ok(std::io::Cursor::new(text.as_bytes())),
            &Options::default(),
            column,
        )
    }

    #[test]
    fn a_list_excel_saved_is_read_with_its_id_column() {
        let found = list(
            "\u{feff}Kundennummer;Name\r\nK-1;Jörg Groß\r\nK-2;Zoë\r\n",
            None,
        )
        .expect("read");
        assert_eq!(found.names, ["Kundennummer", "Name"]);
        assert_eq!(found.ids(), ["K-1", "K-2"]);
        assert_eq!(found.rows[1], (3, vec!["K-2".to_owned(), "Zoë".to_owned()]));
        let named = list("a,b\n1,2\n", Some("B")).expect("read");
        assert_eq!(named.ids(), ["2"]);
        assert!(matches!(
            list("a,b\n1,2\n", None),
            Err(ListError::NoIdColumn { .. })
        ));
        assert!(matches!(list("id\n", None), Err(ListError::Empty)));
        let err = list("a,b\n1,2\n", Some("c")).err().map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some("there is no column \"c\"; the header has: a, b")
        );
    }
}
