//! `klar policy test|log|show|diff|rollback`, and the tests `policy set` runs
//! before a version may become active.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};

use super::{NowArg, load_plugin, open_store, read_text};
use crate::app::activation::{self, ActivationError, Candidate, Refusal, grouped, problem_line};
use crate::app::table_tests::{self, Report};
use crate::diagnostics;
use crate::runtime::{OpenError, Session};
use crate::store::Store;
use crate::store::tenants::{self, PolicyVersion};

/// A policy that passed its check and its tests, with the session that runs it.
pub struct Checked {
    pub source: String,
    pub session: Session,
    /// The test files it passed, with their texts; empty if it has none.
    pub tests: Vec<(PathBuf, String)>,
}

impl Checked {
    /// The tests to keep with the version: `policy set` and `tenant add` run
    /// only the one file next to the policy.
    pub fn stored_tests(&self) -> Option<&str> {
        self.tests.first().map(|(_, text)| text.as_str())
    }
}

/// Checks a policy and runs its tests; prints what it found. `Some` only if
/// the policy has no errors and every test passed. `tests` empty means the
/// file next to the policy, if there is one.
pub fn checked_and_tested(
    plugin: Option<&Path>,
    file: &Path,
    tests: &[PathBuf],
) -> Result<Option<Checked>> {
    checked_and_tested_to(plugin, file, tests, &mut std::io::stdout())
}

/// Like [`checked_and_tested`], writing what it finds to `out` (standard
/// error when standard output carries JSON).
pub fn checked_and_tested_to(
    plugin: Option<&Path>,
    file: &Path,
    tests: &[PathBuf],
    out: &mut dyn Write,
) -> Result<Option<Checked>> {
    let source = read_text(file, "policy")?;
    let name = file.display().to_string();
    // The face finds the tests (the file next to the policy, or those
    // named); checking and testing is the rule every face shares.
    let files: Vec<PathBuf> = if tests.is_empty() {
        let next_to = table_tests::default_test_file(file);
        if next_to.exists() {
            vec![next_to]
        } else {
            Vec::new()
        }
    } else {
        tests.to_vec()
    };
    let texts = table_tests::read_files(&files)?;
    match activation::check_and_test(&load_plugin(plugin)?, &name, &source, &texts)? {
        activation::Checked::Invalid(found) => {
            print_diagnostics(out, &name, &source, &found)?;
            Ok(None)
        }
        activation::Checked::Compiled {
            session,
            warnings,
            report,
        } => {
            print_diagnostics(out, &name, &source, &warnings)?;
            let Some(report) = report else {
                writeln!(
                    out,
                    "{name}: no tests ({} does not exist); consider writing some",
                    table_tests::default_test_file(file).display()
                )?;
                return Ok(Some(Checked {
                    source,
                    session,
                    tests: Vec::new(),
                }));
            };
            print_report(out, &report)?;
            Ok((report.failed() == 0).then_some(Checked {
                source,
                session,
                tests: texts,
            }))
        }
    }
}

/// Activates a checked version through [`activation::activate`] and prints
/// the outcome: the new version, or why it was refused (exit code 1).
/// `shown` is how the refusal names the policy (a file, or `acme v3`).
pub fn activate_and_report(
    store: &mut Store,
    session: &mut Session,
    tenant: &str,
    candidate: &Candidate<'_>,
    now: i64,
    shown: &str,
) -> Result<Option<PolicyVersion>> {
    let bar = if std::io::stderr().is_terminal() {
        indicatif::ProgressBar::new(0).with_message("contacts tried")
    } else {
        indicatif::ProgressBar::hidden()
    };
    let mut progress = |done: usize, todo: usize| {
        bar.set_length(todo as u64);
        bar.set_position(done as u64);
    };
    let result = activation::activate(store, session, tenant, candidate, now, &mut progress);
    bar.finish_and_clear();
    match result {
        Ok(activated) => {
            let sweep = &activated.sweep;
            if sweep.probed > 0 {
                let tried = if sweep.probed == sweep.total {
                    format!("all {} contact(s)", sweep.total)
                } else {
                    format!("{} of its {} contacts", sweep.probed, sweep.total)
                };
                println!(
                    "{tenant}: every hook ran without error for {tried} ({:.1} s)",
                    sweep.elapsed.as_secs_f64()
                );
            }
            Ok(Some(activated.version))
        }
        Err(ActivationError::Refused(refusal)) => {
            print_refusal(
                &mut std::io::stdout(),
                tenant,
                shown,
                candidate.source,
                &refusal,
            )?;
            Ok(None)
        }
        Err(other) => Err(other.into()),
    }
}

/// At most this many different problems are printed; the rest are counted.
const SHOWN_PROBLEMS: usize = 5;

fn print_refusal(
    out: &mut dyn Write,
    tenant: &str,
    shown: &str,
    source: &str,
    refusal: &Refusal,
) -> std::io::Result<()> {
    let sweep = match refusal {
        Refusal::Untested { .. } | Refusal::Invalid(_) => {
            writeln!(out, "klar: refused: {refusal}")?;
            return writeln!(out, "{shown}: the active policy of {tenant} is unchanged");
        }
        Refusal::FailsForContacts(sweep) => sweep,
    };
    let groups = grouped(&sweep.problems);
    for (p, n) in groups.iter().take(SHOWN_PROBLEMS) {
        writeln!(
            out,
            "klar: refused: the policy fails for {}",
            problem_line(p)
        )?;
        if *n > 1 {
            writeln!(out, "  … and the same for {} other contact(s)", n - 1)?;
        }
        if p.diagnostic.line > 0 {
            let color = std::io::stdout().is_terminal();
            let drawn =
                diagnostics::render(shown, source, std::slice::from_ref(&p.diagnostic), color);
            // The first line repeats the message; the drawing under it shows the place.
            for line in drawn.lines().skip(1) {
                writeln!(out, "{line}")?;
            }
        }
    }
    if groups.len() > SHOWN_PROBLEMS {
        writeln!(
            out,
            "  … and {} other problem(s)",
            groups.len() - SHOWN_PROBLEMS
        )?;
    }
    let tried = if sweep.probed == sweep.total {
        format!("all {} contact(s)", sweep.total)
    } else {
        format!("{} of its {} contacts", sweep.probed, sweep.total)
    };
    writeln!(
        out,
        "{shown}: fails for {} of {tenant}'s contacts (every hook tried for {tried}); the active policy of {tenant} is unchanged",
        refusal.failing_contacts()
    )
}

fn print_diagnostics(
    out: &mut dyn Write,
    name: &str,
    source: &str,
    found: &[crate::plugin::Diagnostic],
) -> std::io::Result<()> {
    let color = std::io::stdout().is_terminal();
    write!(out, "{}", diagnostics::render(name, source, found, color))
}

fn print_report(out: &mut dyn Write, report: &Report) -> std::io::Result<()> {
    for file in &report.files {
        writeln!(out, "{}", file.file.display())?;
        for result in &file.results {
            if result.differences.is_empty() {
                writeln!(out, "  ok    {}", result.name)?;
            } else {
                writeln!(out, "  FAIL  {}", result.name)?;
                for line in &result.differences {
                    writeln!(out, "          {line}")?;
                }
            }
        }
    }
    if !report.unexercised.is_empty() {
        writeln!(
            out,
            "hooks no test exercised: {}",
            report.unexercised.join(", ")
        )?;
    }
    writeln!(
        out,
        "{} test(s): {} passed, {} failed",
        report.passed() + report.failed(),
        report.passed(),
        report.failed()
    )
}

/// `klar policy test`
pub fn test(plugin: Option<&Path>, file: &Path, tests: &[PathBuf]) -> Result<ExitCode> {
    if tests.is_empty() && !table_tests::default_test_file(file).exists() {
        bail!(
            "{}: no test file given and {} does not exist",
            file.display(),
            table_tests::default_test_file(file).display()
        );
    }
    Ok(match checked_and_tested(plugin, file, tests)? {
        Some(_) => ExitCode::SUCCESS,
        None => ExitCode::from(1),
    })
}

fn version(versions: &[PolicyVersion], tenant: &str, number: i64) -> Result<PolicyVersion> {
    versions
        .iter()
        .find(|v| v.version == number)
        .cloned()
        .with_context(|| format!("{tenant} has no policy version {number}"))
}

/// `klar policy log`
pub fn log(db: &crate::store::Location, tenant: &str, json: bool) -> Result<ExitCode> {
    let store = open_store(db)?;
    let tz = tenants::require(store.connection(), tenant)?.timezone;
    let versions = tenants::policy_versions(store.connection(), tenant)?;
    if json {
        let rows: Vec<serde_json::Value> = versions
            .iter()
            .map(|v| {
                serde_json::json!({
                    "version": v.version,
                    "sha256": v.sha256,
                    "author": v.author,
                    "message": v.message,
                    "created_at": crate::times::rfc3339(v.created_at),
                    "active": v.active,
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(ExitCode::SUCCESS);
    }
    if versions.is_empty() {
        println!("{tenant}: no policy of its own; the built-in default policy runs");
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:>4}  {:<6} {:<21} {:<12} {:<12} message",
        "v", "", "time", "author", "sha256"
    );
    for v in versions.iter().rev() {
        println!(
            "{:>4}  {:<6} {:<21} {:<12} {:<12} {}",
            v.version,
            if v.active { "active" } else { "" },
            crate::times::local_secs(v.created_at, tz),
            super::printable(&v.author),
            &v.sha256[..12.min(v.sha256.len())],
            super::printable(&v.message)
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `klar policy show`
pub fn show(db: &crate::store::Location, tenant: &str, number: Option<i64>) -> Result<ExitCode> {
    let store = open_store(db)?;
    tenants::require(store.connection(), tenant)?;
    let source = match number {
        Some(n) => {
            version(
                &tenants::policy_versions(store.connection(), tenant)?,
                tenant,
                n,
            )?
            .source
        }
        None => crate::engine::running_policy(store.connection(), tenant)?.source,
    };
    print!("{source}");
    Ok(ExitCode::SUCCESS)
}

/// `klar policy diff`
pub fn diff(db: &crate::store::Location, tenant: &str, from: i64, to: i64) -> Result<ExitCode> {
    let store = open_store(db)?;
    tenants::require(store.connection(), tenant)?;
    let versions = tenants::policy_versions(store.connection(), tenant)?;
    let (a, b) = (
        version(&versions, tenant, from)?,
        version(&versions, tenant, to)?,
    );
    let text = similar::TextDiff::from_lines(&a.source, &b.source)
        .unified_diff()
        .context_radius(3)
        .header(
            &format!("{tenant} v{from} ({})", &a.sha256[..12.min(a.sha256.len())]),
            &format!("{tenant} v{to} ({})", &b.sha256[..12.min(b.sha256.len())]),
        )
        .to_string();
    if text.is_empty() {
        println!("v{from} and v{to} are the same text");
    } else {
        print!("{text}");
    }
    Ok(ExitCode::SUCCESS)
}

/// `klar policy rollback`: the old text becomes a new version, after the same
/// check as any other (its tests, if it was stored with some, run again, and
/// it is tried on the tenant's contacts); history is never rewritten.
#[allow(clippy::too_many_arguments)] // One per flag of the command.
pub fn rollback(
    plugin: Option<&Path>,
    db: &crate::store::Location,
    tenant: &str,
    number: i64,
    author: &str,
    message: &str,
    untested_reason: Option<&str>,
    now: &NowArg,
) -> Result<ExitCode> {
    let now = now.resolve()?.timestamp();
    let mut store = open_store(db)?;
    tenants::require(store.connection(), tenant)?;
    let old = version(
        &tenants::policy_versions(store.connection(), tenant)?,
        tenant,
        number,
    )?;
    let name = format!("{tenant} policy v{number}");
    let mut session = match load_plugin(plugin)?.open(&name, &old.source) {
        Ok(session) => session,
        Err(OpenError::Policy(found)) => {
            print_diagnostics(&mut std::io::stdout(), &name, &old.source, &found)?;
            println!("v{number} no longer passes the check; the active policy is unchanged");
            return Ok(ExitCode::from(1));
        }
        Err(err @ OpenError::Trap(_)) => return Err(err.into()),
    };
    // The plugin may have changed since v{number} passed its tests.
    if let Some(text) = &old.tests {
        let files = [(
            PathBuf::from(format!("the tests of v{number}")),
            text.clone(),
        )];
        let report = table_tests::run_texts(&mut session, &files)?;
        if report.failed() > 0 {
            print_report(&mut std::io::stdout(), &report)?;
            println!("v{number} no longer passes its tests; the active policy is unchanged");
            return Ok(ExitCode::from(1));
        }
    }
    let message = if message.is_empty() {
        format!("rollback to v{number}")
    } else {
        format!("rollback to v{number}: {message}")
    };
    let candidate = Candidate {
        source: &old.source,
        tests: old.tests.as_deref(),
        author,
        message: &message,
        untested_reason,
    };
    let Some(new) = activate_and_report(&mut store, &mut session, tenant, &candidate, now, &name)?
    else {
        return Ok(ExitCode::from(1));
    };
    println!(
        "{tenant}: policy version {} (the text of v{number}) is active (sha256 {})",
        new.version,
        &new.sha256[..12.min(new.sha256.len())]
    );
    Ok(ExitCode::SUCCESS)
}

fn print_forecast(forecast: &crate::app::simulate::Forecast) {
    println!(
        "{:>4}  {:<10} {:>8} {:>9} {:>8} {:>8} {:>8}  handed to people",
        "week", "from", "requests", "reminders", "consents", "refusals", "cleanups"
    );
    let mut total = crate::app::simulate::Week::default();
    for w in &forecast.weeks {
        let people: Vec<String> = w
            .handed_to_people
            .iter()
            .map(|(who, n)| format!("{who} {n}"))
            .collect();
        println!(
            "{:>4}  {:<10} {:>8} {:>9} {:>8} {:>8} {:>8}  {}",
            w.week,
            w.from,
            w.requests,
            w.reminders,
            w.consents,
            w.refusals,
            w.cleanups,
            people.join(", ")
        );
        total.requests += w.requests;
        total.reminders += w.reminders;
        total.consents += w.consents;
        total.refusals += w.refusals;
        total.cleanups += w.cleanups;
        for (who, n) in &w.handed_to_people {
            *total.handed_to_people.entry(who.clone()).or_default() += n;
        }
    }
    let people: Vec<String> = total
        .handed_to_people
        .iter()
        .map(|(who, n)| format!("{who} {n}"))
        .collect();
    println!(
        "{:>4}  {:<10} {:>8} {:>9} {:>8} {:>8} {:>8}  {}",
        "all",
        "",
        total.requests,
        total.reminders,
        total.consents,
        total.refusals,
        total.cleanups,
        people.join(", ")
    );
}

/// `klar simulate`
pub fn simulate(
    plugin: Option<&Path>,
    db: &crate::store::Location,
    tenant: &str,
    candidate: Option<&Path>,
    against: Option<i64>,
    options: &crate::app::simulate::Options,
    json: bool,
) -> Result<ExitCode> {
    if let Some(file) = db.file()
        && !file.exists()
    {
        bail!("{}: no such database", file.display());
    }
    let (running, versions) = {
        let store = open_store(db)?;
        tenants::require(store.connection(), tenant)?;
        (
            crate::engine::running_policy(store.connection(), tenant)?,
            tenants::policy_versions(store.connection(), tenant)?,
        )
    };
    let (name, source) = match candidate {
        Some(file) => {
            // Standard output carries the JSON; notes go to standard error.
            let mut notes: Box<dyn Write> = if json {
                Box::new(std::io::stderr())
            } else {
                Box::new(std::io::stdout())
            };
            match checked_and_tested_to(plugin, file, &[], &mut notes)? {
                Some(checked) => (file.display().to_string(), checked.source),
                None => {
                    writeln!(
                        notes,
                        "{}: has errors or failing tests; nothing simulated",
                        file.display()
                    )?;
                    return Ok(ExitCode::from(1));
                }
            }
        }
        None => (running.name, running.source),
    };
    let other = match against {
        Some(n) => Some(version(&versions, tenant, n)?),
        None => None,
    };
    let scratch = tempfile::tempdir().context("failed to create a scratch folder")?;
    let loaded = load_plugin(plugin)?;
    let runs = if other.is_some() { 2 } else { 1 };
    let bar = if std::io::stderr().is_terminal() {
        indicatif::ProgressBar::new(u64::from(options.days) * runs)
    } else {
        indicatif::ProgressBar::hidden()
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template("{msg} {wide_bar} {pos}/{len} days, {eta} left")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let started = std::time::Instant::now();
    let mut stepped = 0usize;
    let mut run = |file: &str, policy: (&str, &str)| -> Result<crate::app::simulate::Forecast> {
        bar.set_message(policy.0.to_owned());
        let copy = scratch.path().join(file);
        crate::app::simulate::copy_database(db, tenant, &copy)?;
        Ok(crate::app::simulate::run(
            &copy,
            &loaded,
            tenant,
            policy,
            options,
            &mut |due| {
                stepped += due;
                bar.inc(1);
            },
        )?)
    };
    let forecast = run("candidate.db", (&name, &source))?;
    let compared = match &other {
        Some(v) => Some(run("against.db", (&format!("v{}", v.version), &v.source))?),
        None => None,
    };
    bar.finish_and_clear();
    let seconds = started.elapsed().as_secs_f64();
    // On standard error: standard output carries the forecast (or its JSON).
    eprintln!(
        "klar simulate: {} simulated day(s), {stepped} case step(s) in {seconds:.2} s ({:.0} steps/s)",
        u64::from(options.days) * runs,
        stepped as f64 / seconds.max(1e-9)
    );
    let differences = compared
        .as_ref()
        .map(|b| crate::app::simulate::differences(&forecast, b))
        .unwrap_or_default();
    let not_asked = compared
        .as_ref()
        .map(|b| crate::app::simulate::stops_asking(&forecast, b))
        .unwrap_or_default();
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "tenant": tenant,
                "policy": forecast.policy,
                "days": options.days,
                "answer_rate": options.answer_rate,
                "refuse_rate": options.refuse_rate,
                "seed": options.seed,
                "weeks": forecast.weeks,
                "asked": forecast.asked.len(),
                "on_other_basis": forecast.bases.len(),
                "against": compared.as_ref().map(|c| serde_json::json!({
                    "policy": c.policy,
                    "weeks": c.weeks,
                    "asked": c.asked.len(),
                    "on_other_basis": c.bases.len(),
                })),
                "no_longer_asked": not_asked,
                "differences": differences,
            }))?
        );
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "simulate {tenant}: {name} on a copy, {} days from {} (answer rate {:.2}, refusal rate {:.2}, seed {})",
        options.days,
        options.start.format("%Y-%m-%d"),
        options.answer_rate,
        options.refuse_rate,
        options.seed
    );
    print_forecast(&forecast);
    if let Some(b) = &compared {
        println!();
        println!("{} for comparison:", b.policy);
        print_forecast(b);
        println!();
        println!(
            "{} asks about {} case(s), {} about {}; {} case(s) on another basis under {}",
            forecast.policy,
            forecast.asked.len(),
            b.policy,
            b.asked.len(),
            forecast.bases.len(),
            forecast.policy
        );
        if !not_asked.is_empty() {
            let mut by_basis: std::collections::BTreeMap<&str, usize> =
                std::collections::BTreeMap::new();
            for n in &not_asked {
                *by_basis.entry(n.basis.as_str()).or_default() += 1;
            }
            let counts: Vec<String> = by_basis.iter().map(|(k, n)| format!("{n} {k}")).collect();
            println!(
                "{} no longer asks {} case(s) that {} asks, on another basis ({}):",
                forecast.policy,
                not_asked.len(),
                b.policy,
                counts.join(", ")
            );
            for n in &not_asked {
                let which = if n.purpose == tenants::DEFAULT_PURPOSE {
                    String::new()
                } else {
                    format!(" ({})", n.purpose)
                };
                println!("  {}{which}: {}", n.contact, n.basis);
            }
        }
        if differences.is_empty() {
            println!("no contact is treated differently");
        } else {
            println!("{} case(s) treated differently:", differences.len());
            for line in &differences {
                println!("  {line}");
            }
        }
    }
    println!("the live database was not changed");
    Ok(ExitCode::SUCCESS)
}

/// `klar policy set`
pub(super) fn policy_set(
    plugin: Option<&Path>,
    db: &crate::store::Location,
    tenant: &str,
    file: &Path,
    (author, message): (&str, &str),
    untested_reason: Option<&str>,
    now: &NowArg,
) -> Result<ExitCode> {
    let now = now.resolve()?.timestamp();
    let mut store = open_store(db)?;
    // An unknown tenant is reported before the (slower) policy check.
    tenants::require(store.connection(), tenant)?;
    let Some(checked) = checked_and_tested(plugin, file, &[])? else {
        println!(
            "{}: has errors or failing tests; the active policy of {tenant} is unchanged",
            file.display()
        );
        return Ok(ExitCode::from(1));
    };
    let tests = checked.stored_tests().map(str::to_owned);
    if untested_reason.is_some() && tests.is_some() {
        println!(
            "{}: its tests passed, so --untested is not needed and is ignored",
            file.display()
        );
    }
    let Checked {
        source,
        mut session,
        ..
    } = checked;
    let candidate = crate::app::activation::Candidate {
        source: &source,
        tests: tests.as_deref(),
        author,
        message,
        untested_reason,
    };
    let shown = file.display().to_string();
    match activate_and_report(&mut store, &mut session, tenant, &candidate, now, &shown)? {
        Some(version) => {
            super::setup::print_active(tenant, &version);
            Ok(ExitCode::SUCCESS)
        }
        None => Ok(ExitCode::from(1)),
    }
}
