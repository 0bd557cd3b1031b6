//! The store's benchmarks: `klar bench import` and `klar bench sweep`.
//!
//! Each builds its own database in a scratch folder and prints its figure next
//! to what SQLite alone does with the same rows in the same run.

use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use chrono::{TimeZone, Utc};
use rand::SeedableRng;
use rand::rngs::StdRng;

use crate::plugin::Case;
use crate::runtime::{Runtime, RuntimeConfig};
use crate::store::tenants::{self, TenantError};
use crate::store::{Store, Tx};

#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// Rows in the generated CSV file.
    #[arg(long, default_value_t = 1_000_000)]
    pub rows: usize,
    /// Scratch folder for the CSV and the databases (default: a temporary one).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, clap::Args)]
pub struct SweepArgs {
    /// Due cases to sweep.
    #[arg(long, default_value_t = 1_000_000)]
    pub cases: usize,
    /// Cases per call into the plugin.
    #[arg(long, default_value_t = 500)]
    pub batch: usize,
    /// Scratch folder for the database (default: a temporary one).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// A scratch folder that is removed afterwards unless the user named it.
pub(super) fn scratch(dir: Option<&Path>) -> Result<(Option<tempfile::TempDir>, PathBuf)> {
    match dir {
        Some(d) => {
            std::fs::create_dir_all(d)
                .with_context(|| format!("failed to create {}", d.display()))?;
            Ok((None, d.to_path_buf()))
        }
        None => {
            let t = tempfile::tempdir().context("failed to create a scratch folder")?;
            let p = t.path().to_path_buf();
            Ok((Some(t), p))
        }
    }
}

pub(super) fn remove_db(path: &Path) -> Result<()> {
    crate::store::remove_database(path)
        .map_err(|(file, e)| anyhow::anyhow!("failed to remove {}: {e}", file.display()))
}

/// The benchmarks' tenant, `bench`, added at `at`.
pub(super) fn add_bench_tenant(tx: &Tx<'_>, at: i64) -> Result<(), TenantError> {
    tenants::add(tx, "bench", "Bench GmbH", "Europe/Berlin", "de", at).map(|_| ())
}

/// A new database at `path` (an old one there is removed) with the
/// benchmarks' tenant.
fn bench_store(path: &Path, at: i64) -> Result<Store> {
    remove_db(path)?;
    let mut store = Store::open(path)?;
    store.transaction(|tx| add_bench_tenant(tx, at))?;
    Ok(store)
}

/// The process's peak resident memory in MiB (Linux), if known.
fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// Starts a new peak-memory measurement (Linux: "5" to clear_refs resets VmHWM).
fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

pub(super) fn bench_now() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 1, 8, 0, 0)
        .single()
        .unwrap_or_default()
}

/// Writes `rows` generated contacts (the demo's names) to `path`.
pub(super) fn write_csv(path: &Path, rows: usize, now: chrono::DateTime<Utc>) -> Result<()> {
    let file = std::fs::File::create(path)
        .with_context(|| format!("failed to create {}", path.display()))?;
    let mut out = BufWriter::new(file);
    crate::app::demo::write_contacts_csv(&mut out, &mut StdRng::seed_from_u64(1), rows, now)
        .context("failed to write the CSV")?;
    std::io::Write::flush(&mut out)?;
    Ok(())
}

/// `klar bench import`
pub fn import(_plugin: Option<&Path>, args: &ImportArgs) -> Result<ExitCode> {
    if args.rows == 0 {
        bail!("--rows must be at least 1");
    }
    let (_keep, dir) = scratch(args.dir.as_deref())?;
    let csv = dir.join("contacts.csv");
    let now = bench_now();
    write_csv(&csv, args.rows, now)?;
    let size_mib = std::fs::metadata(&csv)?.len() as f64 / 1_048_576.0;

    // Baseline: SQLite's own CSV import into one table, no checks.
    let base = dir.join("sqlite-import.db");
    remove_db(&base)?;
    let started = Instant::now();
    let status = Command::new("sqlite3")
        .arg("-cmd")
        .arg(".mode csv")
        .arg(&base)
        .arg(format!(".import {} t", csv.display()))
        .status()
        .context(
            "the baseline needs the sqlite3 command-line tool (Debian: apt install sqlite3)",
        )?;
    let sqlite_s = started.elapsed().as_secs_f64();
    if !status.success() {
        bail!("sqlite3 .import failed: {status}");
    }

    // The second baseline: SQLite alone writing those rows into klar's own
    // tables, indexes and triggers. The gap between the two baselines is
    // what the schema costs; the gap to klar is what klar adds to it.
    let mut floor = bench_store(&dir.join("sqlite-klar-schema.db"), now.timestamp())?;
    let started = Instant::now();
    let (floor_added, _) =
        crate::store::bench::import_floor(&mut floor, "bench", &base, now.timestamp())?;
    let floor_s = started.elapsed().as_secs_f64();
    drop(floor);
    if floor_added != args.rows {
        bail!("SQLite alone wrote {floor_added} of {} rows", args.rows);
    }

    // klar: read, check every row, store contacts, cases and audit rows.
    let mut store = bench_store(&dir.join("klar-import.db"), now.timestamp())?;
    reset_peak_rss();
    let started = Instant::now();
    // Both passes stream the file, as `klar import` does.
    let open = || std::fs::File::open(&csv).map(std::io::BufReader::new);
    let format = crate::app::import::detect(open()?, &Default::default())?;
    let check =
        crate::app::import::check((open()?, &format), store.connection(), "bench", ("de", now))?;
    if !check.problems.is_empty() {
        bail!("the generated CSV has {} problem(s)", check.problems.len());
    }
    let check_s = started.elapsed().as_secs_f64();
    let counts = crate::app::import::write(
        &mut store,
        "bench",
        (open()?, "contacts.csv"),
        &check,
        ("de", now),
        &mut |_| {},
    )?;
    let klar_s = started.elapsed().as_secs_f64();
    let rss = peak_rss_mib();
    if counts.added != args.rows {
        bail!("{} of {} rows were imported", counts.added, args.rows);
    }

    let ratio = sqlite_s / klar_s;
    let floor_ratio = floor_s / klar_s;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "rows": args.rows,
                "csv_mib": size_mib,
                "sqlite_import_s": sqlite_s,
                "sqlite_klar_schema_s": floor_s,
                "klar_import_s": klar_s,
                "klar_check_pass_s": check_s,
                "klar_write_pass_s": klar_s - check_s,
                "klar_speed_vs_sqlite": ratio,
                "klar_speed_vs_sqlite_klar_schema": floor_ratio,
                "klar_peak_rss_mib": rss,
            }))?
        );
    } else {
        println!(
            "klar bench import: {} rows ({size_mib:.0} MiB CSV), {} case(s) opened",
            args.rows, counts.opened
        );
        println!("{:<40} {:>9} {:>12}", "", "seconds", "rows/s");
        println!(
            "{:<40} {sqlite_s:>9.2} {:>12.0}",
            "sqlite3 .import (baseline)",
            args.rows as f64 / sqlite_s
        );
        println!(
            "{:<40} {floor_s:>9.2} {:>12.0}",
            "SQLite alone into klar's tables",
            args.rows as f64 / floor_s
        );
        println!(
            "{:<40} {klar_s:>9.2} {:>12.0}",
            "klar import (checked, cases, audit)",
            args.rows as f64 / klar_s
        );
        println!(
            "  of which: first pass (read, check) {check_s:.2} s, second pass (read, write) {:.2} s",
            klar_s - check_s
        );
        println!("klar's speed vs sqlite3: {ratio:.2}× (goal ≥ 0.5)");
        println!(
            "klar's speed vs SQLite alone into klar's tables: {floor_ratio:.2}× \
             (what the schema allows: {:.2}× of sqlite3)",
            sqlite_s / floor_s
        );
        if let Some(rss) = rss {
            println!("klar's peak RSS during the import: {rss:.0} MiB");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `klar bench sweep`
pub fn sweep(plugin: Option<&Path>, args: &SweepArgs) -> Result<ExitCode> {
    if args.cases == 0 || args.batch == 0 {
        bail!("--cases and --batch must be at least 1");
    }
    let (_keep, dir) = scratch(args.dir.as_deref())?;
    let db = dir.join("klar-sweep.db");
    remove_db(&db)?;
    let now = bench_now();
    let created = now.timestamp() - 86_400;
    let mut store = Store::open(&db)?;
    let body = serde_json::to_string(&Case::new(tenants::DEFAULT_PURPOSE))?;
    store.transaction(|tx| -> Result<()> {
        add_bench_tenant(tx, created)?;
        crate::store::bench::due_cases(
            tx,
            "bench",
            args.cases as i64,
            tenants::DEFAULT_PURPOSE,
            &body,
            created,
        )?;
        Ok(())
    })?;

    // Baseline: SQLite rewriting every case row once, in one statement.
    let started = Instant::now();
    store.transaction(|tx| crate::store::bench::touch_every_case(tx, "bench"))?;
    let sqlite_s = started.elapsed().as_secs_f64();

    let runtime = Runtime::new(RuntimeConfig::default())?;
    let loaded = match plugin {
        Some(path) => runtime.load_file(path)?,
        None => runtime.load_default()?,
    };
    let tenant = tenants::require(store.connection(), "bench")?;
    let (mut session, sha) = crate::engine::tenant_session(&store, &loaded, &tenant)?;
    let measured_rss = reset_peak_rss();
    let started = Instant::now();
    let report = crate::engine::tick(&mut store, &mut session, &tenant, &sha, now, args.batch)?;
    let klar_s = started.elapsed().as_secs_f64();
    let rss = peak_rss_mib().filter(|_| measured_rss);
    if report.changed != args.cases {
        bail!(
            "the sweep changed {} of {} cases ({} failed)",
            report.changed,
            args.cases,
            report.failed
        );
    }

    // The second baseline: SQLite alone writing the sweep's rows once more,
    // in a copy of the swept database. The gap between the two baselines is
    // what the schema costs; the gap to klar is what klar adds to it.
    drop(session);
    drop(store);
    let copy = dir.join("sqlite-same-rows.db");
    remove_db(&copy)?;
    crate::store::copy_database(&db, &copy)?;
    let mut floor = Store::open(&copy)?;
    let started = Instant::now();
    let rewritten = crate::store::bench::sweep_floor(&mut floor, "bench", &db)?;
    let floor_s = started.elapsed().as_secs_f64();
    drop(floor);
    if rewritten != args.cases {
        bail!("SQLite alone rewrote {rewritten} of {} cases", args.cases);
    }

    let klar_rate = args.cases as f64 / klar_s;
    let sqlite_rate = args.cases as f64 / sqlite_s;
    let floor_rate = args.cases as f64 / floor_s;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "cases": args.cases,
                "batch": args.batch,
                "sqlite_update_s": sqlite_s,
                "sqlite_same_rows_s": floor_s,
                "klar_sweep_s": klar_s,
                "klar_cases_per_s": klar_rate,
                "klar_vs_sqlite_update": klar_rate / sqlite_rate,
                "klar_vs_sqlite_same_rows": klar_rate / floor_rate,
                "klar_peak_rss_mib": rss,
                "actions_queued": report.actions,
            }))?
        );
    } else {
        println!(
            "klar bench sweep: {} due cases, batches of {}, {} action(s) queued",
            args.cases, args.batch, report.actions
        );
        println!("{:<44} {:>9} {:>12}", "", "seconds", "cases/s");
        println!(
            "{:<44} {sqlite_s:>9.2} {sqlite_rate:>12.0}",
            "SQLite UPDATE of every case row (baseline)"
        );
        println!(
            "{:<44} {floor_s:>9.2} {floor_rate:>12.0}",
            "SQLite alone writing the sweep's rows again"
        );
        println!(
            "{:<44} {klar_s:>9.2} {klar_rate:>12.0}",
            "klar tick (plugin, case, audit, outbox, link)"
        );
        println!(
            "klar's sweep vs the bulk UPDATE: {:.3}× (goal: ≥ 50,000 cases/s)",
            klar_rate / sqlite_rate
        );
        println!(
            "klar's sweep vs SQLite alone writing its rows: {:.2}×",
            klar_rate / floor_rate
        );
        if let Some(rss) = rss {
            println!("peak RSS during the sweep: {rss:.0} MiB (goal ≤ 200)");
        }
    }
    Ok(ExitCode::SUCCESS)
}
