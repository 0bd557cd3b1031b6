//! `klar usable`: a mailing list filtered before a campaign, for German
//! Excel (see [`crate::app::campaign`]).

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};

use super::{NowArg, open_store};
use crate::app::actor::Actor;
use crate::app::campaign::list::{self, List};
use crate::app::campaign::{self, CheckError};

/// What `klar usable` was given.
pub(super) struct Request<'a> {
    pub tenant: &'a str,
    pub purpose: &'a str,
    pub csv: Option<&'a Path>,
    pub column: Option<&'a str>,
    pub options: crate::app::import::Options,
    pub output: Option<&'a PathBuf>,
    /// Every row with its answer, instead of the usable rows only.
    pub all: bool,
}

/// Ids one per line, as a list with one column.
fn from_stdin() -> Result<List> {
    let mut rows = Vec::new();
    for (n, line) in std::io::stdin().lock().lines().enumerate() {
        let line = line.context("failed to read standard input")?;
        let id = line.trim();
        if !id.is_empty() {
            rows.push((n as u64 + 1, vec![id.to_owned()]));
        }
    }
    Ok(List {
        format: crate::app::import::Format::plain_csv(),
        names: vec!["id".to_owned()],
        id_column: 0,
        rows,
    })
}

pub(super) fn usable(
    db: &crate::store::Location,
    request: &Request<'_>,
    now: &NowArg,
) -> Result<ExitCode> {
    let now = now.resolve()?.timestamp();
    let mut store = open_store(db)?;
    let list = match request.csv {
        Some(file) => {
            let name = file.display();
            let open = || std::fs::File::open(file).map(std::io::BufReader::new);
            match list::read(open, &request.options, request.column) {
                Ok(list) => {
                    if let Some(note) = list.format.note() {
                        eprintln!("{name}: {note}");
                    }
                    list
                }
                Err(err) => {
                    eprintln!("klar: {name}: cannot check: {err}");
                    return Ok(ExitCode::from(1));
                }
            }
        }
        None => from_stdin()?,
    };
    let ids = list.ids();
    let checked = match campaign::check(
        &mut store,
        request.tenant,
        request.purpose,
        &ids,
        &Actor::Cli,
        now,
    ) {
        Ok(checked) => checked,
        Err(CheckError::Store(err)) => return Err(err.into()),
        Err(err) => {
            eprintln!("klar: {err}");
            return Ok(ExitCode::from(1));
        }
    };
    let out: Box<dyn Write> = match request.output {
        Some(path) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(path)
                .with_context(|| format!("failed to write {}", path.display()))?,
        )),
        None => Box::new(std::io::stdout().lock()),
    };
    let mut csv = crate::excel::writer(out)?;
    let mut header: Vec<String> = list.names.iter().map(|n| crate::excel::cell(n)).collect();
    if request.all {
        header.extend(["Nutzbar".to_owned(), "Grund".to_owned()]);
    } else {
        header.push("Grundlage".to_owned());
    }
    csv.write_record(&header)?;
    for ((_, fields), verdict) in list.rows.iter().zip(&checked.verdicts) {
        if !request.all && !verdict.may_use {
            continue;
        }
        let mut row: Vec<String> = fields.iter().map(|f| crate::excel::cell(f)).collect();
        if request.all {
            row.push(if verdict.may_use { "ja" } else { "nein" }.to_owned());
        }
        row.push(verdict.reason.german().to_owned());
        csv.write_record(&row)?;
    }
    csv.flush()?;
    let reasons: Vec<String> = checked
        .counts()
        .into_iter()
        .map(|(reason, n)| format!("{reason} {n}"))
        .collect();
    eprintln!(
        "klar usable: {} id(s) checked for {}: {} may be used, {} may not ({}); list SHA-256 {}, audit row {}",
        checked.verdicts.len(),
        checked.purpose,
        checked.usable(),
        checked.verdicts.len() - checked.usable(),
        reasons.join(", "),
        checked.list_sha256,
        checked.audit_seq
    );
    Ok(ExitCode::SUCCESS)
}
