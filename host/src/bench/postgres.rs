//! `klar bench postgres`: the sweep on PostgreSQL, by one klar instance and
//! by two at once, next to the same sweep on SQLite in the same run.
//!
//! PostgreSQL runs as a throwaway cluster this benchmark starts (Debian's
//! `postgresql` must be installed), with PostgreSQL's durable defaults, on
//! loopback. An "instance" is a thread with its own database connection and
//! plugin session, as a `klar serve` or `klar tick` process has. One tenant
//! is swept by one instance at a time (`Store::claim`), so two instances
//! share the work only across tenants: the two-instance run sweeps two
//! tenants of half the cases each.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, bail};

use crate::plugin::Case;
use crate::runtime::{LoadedPlugin, Runtime, RuntimeConfig};
use crate::store::{Location, Store, tenants};

#[derive(Debug, clap::Args)]
pub struct PostgresArgs {
    /// Due cases to sweep in each run.
    #[arg(long, default_value_t = 20_000)]
    pub cases: usize,
    /// Cases per call into the plugin.
    #[arg(long, default_value_t = 500)]
    pub batch: usize,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// A store at `location` with `tenants`, each with `cases` due cases.
fn prepare(location: &Location, tenants: &[&str], cases: usize, created: i64) -> Result<()> {
    let mut store = Store::open(location.clone())?;
    let body = serde_json::to_string(&Case::new(tenants::DEFAULT_PURPOSE))?;
    store.transaction(|tx| -> Result<()> {
        for &id in tenants {
            tenants::add(tx, id, "Bench GmbH", "Europe/Berlin", "de", created)?;
            crate::store::bench::due_cases(
                tx,
                id,
                cases as i64,
                tenants::DEFAULT_PURPOSE,
                &body,
                created,
            )?;
        }
        Ok(())
    })?;
    // Fresh statistics, as autovacuum would gather them a minute later: the
    // plans of the sweep's statements are made on the first calls, and
    // without them PostgreSQL planned for empty tables (measured: half the
    // speed).
    store.analyze()?;
    Ok(())
}

/// Sweeps each tenant on a thread of its own (an instance), all at once;
/// returns the seconds until the last is done.
fn sweep_at_once(
    location: &Location,
    plugin: &Arc<LoadedPlugin>,
    tenants: &[&str],
    cases: usize,
    batch: usize,
) -> Result<f64> {
    let now = super::store::bench_now();
    let started = Instant::now();
    std::thread::scope(|scope| -> Result<()> {
        let sweeps: Vec<_> = tenants
            .iter()
            .map(|&id| {
                scope.spawn(move || -> Result<()> {
                    let mut store = Store::open(location.clone())?;
                    let tenant = tenants::require(store.connection(), id)?;
                    let (mut session, sha) =
                        crate::engine::tenant_session(&store, plugin, &tenant)?;
                    let report =
                        crate::engine::tick(&mut store, &mut session, &tenant, &sha, now, batch)?;
                    if report.changed != cases {
                        bail!(
                            "{id}: the sweep changed {} of {cases} cases",
                            report.changed
                        );
                    }
                    Ok(())
                })
            })
            .collect();
        for sweep in sweeps {
            sweep
                .join()
                .map_err(|_| anyhow::anyhow!("a sweep panicked"))??;
        }
        Ok(())
    })?;
    Ok(started.elapsed().as_secs_f64())
}

pub fn run(plugin: Option<&Path>, args: &PostgresArgs) -> Result<ExitCode> {
    if args.cases < 2 || args.batch == 0 {
        bail!("--cases must be at least 2 and --batch at least 1");
    }
    let created = super::store::bench_now().timestamp() - 86_400;
    let runtime = Runtime::new(RuntimeConfig::default())?;
    let loaded = match plugin {
        Some(path) => runtime.load_file(path)?,
        None => runtime.load_default()?,
    };

    // The baseline: the same sweep on a SQLite file.
    let (_keep, dir) = super::store::scratch(None)?;
    let file = Location::File(dir.join("klar-sweep.db"));
    prepare(&file, &["bench"], args.cases, created)?;
    let sqlite_s = sweep_at_once(&file, &loaded, &["bench"], args.cases, args.batch)?;

    let cluster = crate::store::cluster::Cluster::start_durable()
        .context("starting PostgreSQL for the benchmark")?;
    let half = args.cases / 2;
    let run_one = || -> Result<f64> {
        let one = cluster.create_database("one")?;
        prepare(&one, &["bench"], args.cases, created)?;
        sweep_at_once(&one, &loaded, &["bench"], args.cases, args.batch)
    };
    let run_two = || -> Result<f64> {
        let two = cluster.create_database("two")?;
        prepare(&two, &["bench-a", "bench-b"], half, created)?;
        sweep_at_once(&two, &loaded, &["bench-a", "bench-b"], half, args.batch)
    };
    let (one_s, two_s) = (run_one()?, run_two()?);
    cluster.stop()?;

    let rate = |cases: usize, s: f64| cases as f64 / s;
    let (sqlite_rate, one_rate, two_rate) = (
        rate(args.cases, sqlite_s),
        rate(args.cases, one_s),
        rate(half * 2, two_s),
    );
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "cases": args.cases,
                "batch": args.batch,
                "sqlite_sweep_s": sqlite_s,
                "sqlite_cases_per_s": sqlite_rate,
                "postgres_one_instance_s": one_s,
                "postgres_one_instance_cases_per_s": one_rate,
                "postgres_two_instances_s": two_s,
                "postgres_two_instances_cases_per_s": two_rate,
                "postgres_one_vs_sqlite": one_rate / sqlite_rate,
                "postgres_two_vs_one": two_rate / one_rate,
            }))?
        );
    } else {
        println!(
            "klar bench postgres: {} due cases per run, batches of {}",
            args.cases, args.batch
        );
        println!("{:<52} {:>9} {:>12}", "", "seconds", "cases/s");
        println!(
            "{:<52} {sqlite_s:>9.2} {sqlite_rate:>12.0}",
            "SQLite, one instance, one tenant (baseline)"
        );
        println!(
            "{:<52} {one_s:>9.2} {one_rate:>12.0}",
            "PostgreSQL, one instance, one tenant"
        );
        println!(
            "{:<52} {two_s:>9.2} {two_rate:>12.0}",
            "PostgreSQL, two instances, two tenants of half each"
        );
        println!(
            "PostgreSQL vs SQLite, one instance: {:.3}×",
            one_rate / sqlite_rate
        );
        println!(
            "PostgreSQL, two instances vs one: {:.2}×",
            two_rate / one_rate
        );
    }
    Ok(ExitCode::SUCCESS)
}
