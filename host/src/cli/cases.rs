//! The consent process at a terminal: `import`, `tick`, the events
//! (`decide`, `approve`, `hold`, `withdraw`, `used`), `respond`, and the
//! cockpit (`status`, `cases`).

use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};

use super::{NowArg, load_plugin, open_store};
use crate::app::respond::{self, Origin, RespondError};
use crate::plugin::{Answer, Event};
use crate::store::tenants;

/// `klar import`
pub(super) fn import(
    db: &crate::store::Location,
    tenant: &str,
    (file, options): (&Path, &crate::app::import::Options),
    skip_invalid: bool,
    now: &NowArg,
) -> Result<ExitCode> {
    let now = now.resolve()?;
    let mut store = open_store(db)?;
    let tenant_row = tenants::require(store.connection(), tenant)?;
    let name = file.display();
    let open = || {
        std::fs::File::open(file)
            .map(std::io::BufReader::new)
            .with_context(|| format!("failed to read {name}"))
    };
    let language = tenant_row.locale.as_str();
    let format = crate::app::import::detect(open()?, options)
        .with_context(|| format!("{name}: cannot import"))?;
    if let Some(note) = format.note() {
        println!("{name}: {note}");
    }
    let check = crate::app::import::check(
        (open()?, &format),
        store.connection(),
        tenant,
        (language, now),
    )
    .with_context(|| format!("{name}: cannot import"))?;
    for problem in &check.problems {
        match &format {
            crate::app::import::Format::Csv { .. } => {
                println!("{name}:{}: {}", problem.line, problem.message);
            }
            xlsx => println!("{name}: {}: {}", xlsx.place(problem.line), problem.message),
        }
    }
    let bad_lines = check.bad_rows();
    if bad_lines > 0 && !skip_invalid {
        println!(
            "{name}: nothing was imported: {bad_lines} row(s) have problems; fix them, or import the others with --skip-invalid"
        );
        return Ok(ExitCode::from(1));
    }

    let progress = if std::io::stderr().is_terminal() {
        indicatif::ProgressBar::new(check.good)
    } else {
        indicatif::ProgressBar::hidden()
    };
    let counts = crate::app::import::write(
        &mut store,
        tenant,
        // The audit row names the file, not the folders it was in.
        (
            open()?,
            &file
                .file_name()
                .map_or_else(|| name.to_string(), |f| f.to_string_lossy().into_owned()),
        ),
        &check,
        (language, now),
        &mut |n| progress.inc(n as u64),
    )
    .with_context(|| format!("{name}: cannot import"))?;
    progress.finish_and_clear();
    println!(
        "{name}: {} added, {} updated, {} unchanged; {} case(s) opened{}",
        counts.added,
        counts.updated,
        counts.unchanged,
        counts.opened,
        if bad_lines > 0 {
            format!("; {bad_lines} bad row(s) skipped")
        } else {
            String::new()
        }
    );
    Ok(ExitCode::SUCCESS)
}

/// `klar decide|approve|hold|withdraw|used`: one event for a contact's case
/// (or all its cases when `purpose` is `None`).
pub(super) fn case_event(
    plugin: Option<&Path>,
    db: &crate::store::Location,
    tenant: &str,
    contact: &str,
    purpose: Option<&str>,
    event: Event,
    now: &NowArg,
) -> Result<ExitCode> {
    use crate::app::events::{self, Applied, Reported};
    let now = now.resolve()?;
    let mut store = open_store(db)?;
    let tenant = tenants::require(store.connection(), tenant)?;
    let sessions = crate::engine::Sessions::new(load_plugin(plugin)?);
    let results = match events::report(
        &mut store,
        &sessions,
        &tenant,
        contact,
        purpose,
        (&event, &crate::app::actor::Actor::Cli),
        None,
        now,
    )? {
        Reported::Stepped(results) => results,
        Reported::Repeated { .. } => Vec::new(),
    };
    let mut code = ExitCode::SUCCESS;
    for events::PurposeResult { purpose, applied } in results {
        match applied {
            Applied::Now(state) => match event {
                Event::HoldOn { .. } => show!(
                    "{contact} {purpose}: legal hold placed (state {state}); nothing is cleaned up while it lasts"
                ),
                Event::HoldOff { .. } => {
                    show!("{contact} {purpose}: legal hold lifted (state {state})")
                }
                _ => show!("{contact} {purpose}: {state}"),
            },
            Applied::Refused(why) => {
                show!("{contact} {purpose}: {why}");
                code = ExitCode::from(1);
            }
            Applied::Failed(why) => {
                show!(
                    "{contact} {purpose}: the step failed and the case is marked for attention: {why}"
                );
                code = ExitCode::from(1);
            }
        }
    }
    Ok(code)
}

/// `klar tick`
pub(super) fn tick(
    plugin: Option<&Path>,
    db: &crate::store::Location,
    batch: usize,
    now: &NowArg,
) -> Result<ExitCode> {
    let now = now.resolve()?;
    let mut store = open_store(db)?;
    let plugin = load_plugin(plugin)?;
    let bar = if std::io::stderr().is_terminal() {
        indicatif::ProgressBar::new(0)
    } else {
        indicatif::ProgressBar::hidden()
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{msg} {wide_bar} {pos}/{len} cases, {per_sec}, {eta} left",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let started = std::time::Instant::now();
    let reports = crate::engine::tick_all(&mut store, &plugin, now, batch, &mut |p| match p {
        crate::engine::Progress::Start { tenant, due } => {
            bar.set_message(tenant.to_owned());
            bar.set_position(0);
            bar.set_length(due as u64);
        }
        crate::engine::Progress::Stepped(n) => bar.inc(n as u64),
    })?;
    bar.finish_and_clear();
    let seconds = started.elapsed().as_secs_f64();
    let stepped: usize = reports.iter().map(|(_, r)| r.due).sum();
    if stepped > 0 {
        // On standard error, like the bar: standard output stays one line
        // per tenant for scripts.
        eprintln!(
            "klar tick: {stepped} due case(s) in {seconds:.2} s ({:.0} cases/s)",
            stepped as f64 / seconds.max(1e-9)
        );
    }
    for (tenant, r) in reports {
        // Deferred requests are named only when there are some, so that the
        // usual line stays as it was.
        let deferred = if r.deferred > 0 {
            format!(", {} deferred", r.deferred)
        } else {
            String::new()
        };
        println!(
            "{tenant}: {} due, {} changed, {} failed, {} action(s) queued{deferred}",
            r.due, r.changed, r.failed, r.actions
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `klar respond`
pub(super) fn respond(
    plugin: Option<&Path>,
    db: &crate::store::Location,
    token: &str,
    answer: Answer,
    origin: &Origin,
    json: bool,
    now: &NowArg,
) -> Result<ExitCode> {
    let now = now.resolve()?;
    let mut store = open_store(db)?;
    let plugin = load_plugin(plugin)?;
    match respond::respond(
        &mut store,
        &crate::engine::Sessions::new(plugin),
        token,
        answer,
        origin,
        now,
    ) {
        Ok(respond::Responded { recorded, personal }) => {
            if json {
                // One link used to answer one purpose; keep that shape for
                // it, and list the answers of a link that asked about several.
                match recorded.as_slice() {
                    [one] => println!("{}", serde_json::to_string_pretty(one)?),
                    many => println!("{}", serde_json::to_string_pretty(many)?),
                }
            } else {
                for recorded in &recorded {
                    println!(
                        "{} {} {}: {} (link {}, consent text v{} sha256 {})",
                        recorded.tenant,
                        recorded.contact,
                        recorded.purpose,
                        recorded.state,
                        recorded.token_id,
                        recorded.text_version,
                        &recorded.text_sha256.get(..12).unwrap_or_default()
                    );
                }
                // Under `klar serve`'s public URL; the contact's way back.
                if !personal.is_empty() {
                    println!("personal link: /p/{personal}");
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(
            err @ (RespondError::Token(_) | RespondError::Rejected(_) | RespondError::Event(_)),
        ) => {
            eprintln!("klar: {err}");
            Ok(ExitCode::from(1))
        }
        Err(err) => Err(err.into()),
    }
}

/// `klar status`
/// `klar clear`: a person has looked at a failed step; the next tick retries it.
pub(super) fn clear(
    db: &crate::store::Location,
    tenant: &str,
    (contact, purpose): (&str, &str),
    (by, reason): (&str, &str),
    now: &NowArg,
) -> Result<ExitCode> {
    let now = now.resolve()?.timestamp();
    crate::app::text::one_line("--by", by, crate::app::text::MAX_WHO)
        .map_err(anyhow::Error::msg)?;
    crate::app::text::one_line("--reason", reason, crate::app::text::MAX_WHY)
        .map_err(anyhow::Error::msg)?;
    let mut store = open_store(db)?;
    let tenant = tenants::require(store.connection(), tenant)?;
    let cleared = crate::engine::clear_attention(
        &mut store,
        &tenant.id,
        (contact, purpose),
        by,
        reason,
        now,
    )?;
    if cleared {
        println!("{contact} {purpose}: cleared; the next tick takes it up again");
        Ok(ExitCode::SUCCESS)
    } else {
        println!("{contact} {purpose}: nothing to clear (no failed step on record)");
        Ok(ExitCode::from(1))
    }
}

pub(super) fn status(
    db: &crate::store::Location,
    tenant: &str,
    json: bool,
    now: &NowArg,
) -> Result<ExitCode> {
    let now = now.resolve()?.timestamp();
    let store = open_store(db)?;
    tenants::require(store.connection(), tenant)?;
    let s = crate::store::report::status(store.connection(), tenant, now)?;
    if json {
        let wire = crate::wire::Status::from(s);
        println!("{}", serde_json::to_string_pretty(&wire)?);
        return Ok(ExitCode::SUCCESS);
    }
    let total: i64 = s.bands.values().sum();
    show!("{tenant}: {total} case(s)");
    for band in crate::plugin::Band::ALL {
        let detail: Vec<String> = band
            .states()
            .map(|st| {
                let n = s.states.get(st.as_str()).copied().unwrap_or(0);
                format!("{st} {n}")
            })
            .collect();
        show!(
            "  {:<11} {:>7}   {}",
            band.as_str().replace('-', " "),
            s.bands.get(band.as_str()).copied().unwrap_or(0),
            detail.join(", ")
        );
    }
    show!(
        "overdue: {}   due in the next 7 days: {}   cleanup pending: {}   needs attention: {}",
        s.overdue,
        s.due_next_7_days,
        s.cleanup_pending,
        s.needs_attention
    );
    if s.delivery_parked > 0 {
        show!(
            "deliveries parked after repeated failures: {} (see `klar outbox --parked`; `klar redeliver` retries)",
            s.delivery_parked
        );
    }
    for a in &s.attention {
        show!(
            "  needs attention: {} {}: {}",
            a.contact,
            a.purpose,
            a.error
        );
    }
    if s.needs_attention > s.attention.len() as i64 {
        show!(
            "  … and {} more (klar cases {tenant} --json lists them all)",
            s.needs_attention - s.attention.len() as i64
        );
    }
    if s.awaiting_decision_by_owner.is_empty() {
        show!("awaiting a decision: nobody");
    } else {
        let waiting: Vec<String> = s
            .awaiting_decision_by_owner
            .iter()
            .map(|(owner, n)| format!("{owner} {n}"))
            .collect();
        show!("awaiting a decision: {}", waiting.join(", "));
    }
    Ok(ExitCode::SUCCESS)
}

/// How `klar cases` prints.
pub(super) enum Output {
    Table,
    Json,
    Csv,
}

/// `klar cases`
pub(super) fn cases(
    db: &crate::store::Location,
    tenant: &str,
    filter: &crate::store::report::CaseFilter,
    output: Output,
    now: &NowArg,
) -> Result<ExitCode> {
    let now = now.resolve()?.timestamp();
    let store = open_store(db)?;
    let tz = tenants::require(store.connection(), tenant)?.timezone;
    let lines = crate::store::report::cases(store.connection(), tenant, filter, now)?;
    match output {
        Output::Table => {}
        Output::Json => {
            let wire: Vec<crate::wire::CaseLine> = crate::wire::list(lines);
            show!("{}", serde_json::to_string_pretty(&wire)?);
            return Ok(ExitCode::SUCCESS);
        }
        Output::Csv => {
            cases_csv(std::io::stdout().lock(), &lines, tz)?;
            return Ok(ExitCode::SUCCESS);
        }
    }
    let header = [
        "contact",
        "purpose",
        "state",
        "owner",
        "reminders",
        "next due",
        "attention",
    ];
    show!(
        "{:<14} {:<16} {:<18} {:<10} {:>9}  {:<26} {}",
        header[0],
        header[1],
        header[2],
        header[3],
        header[4],
        header[5],
        header[6]
    );
    for l in &lines {
        show!(
            "{:<14} {:<16} {:<18} {:<10} {:>9}  {:<26} {}",
            l.contact,
            l.purpose,
            l.state,
            l.owner,
            l.reminders_sent,
            l.next_due_at
                .as_deref()
                .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                .map_or_else(
                    || "-".to_owned(),
                    |t| crate::times::local(t.with_timezone(&Utc), tz)
                ),
            l.needs_attention.as_deref().unwrap_or("")
        );
    }
    show!("{} case(s)", lines.len());
    Ok(ExitCode::SUCCESS)
}

/// `klar cases --csv`: the listed cases for German Excel.
fn cases_csv(
    out: impl std::io::Write,
    lines: &[crate::store::report::CaseLine],
    tz: chrono_tz::Tz,
) -> Result<()> {
    use crate::excel::cell;
    let mut w = crate::excel::writer(out)?;
    w.write_record([
        "contact",
        "purpose",
        "state",
        "band",
        "owner",
        "assigned_to",
        "reminders_sent",
        "next_due",
        "legal_hold",
        "needs_attention",
    ])?;
    for l in lines {
        let due = l
            .next_due_at
            .as_deref()
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map_or_else(String::new, |t| crate::excel::time(t.timestamp(), tz));
        w.write_record([
            cell(&l.contact),
            cell(&l.purpose),
            l.state.clone(),
            l.band.clone(),
            cell(&l.owner),
            cell(l.assigned_to.as_deref().unwrap_or("")),
            l.reminders_sent.to_string(),
            due,
            if l.legal_hold { "yes" } else { "no" }.to_owned(),
            cell(l.needs_attention.as_deref().unwrap_or("")),
        ])?;
    }
    w.flush()?;
    Ok(())
}
