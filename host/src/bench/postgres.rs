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
//!
//! Then "may I use?" under load (`GET /v1/contacts/{id}/use`, as `klar
//! bench api` sends it with wrk): one `klar serve` on SQLite (the
//! baseline), one on PostgreSQL, and two on the same PostgreSQL database at
//! once, each driven by its own wrk with half the connections. The figure
//! for two is the sum of both servers' requests per second. All of them
//! share this machine's cores with PostgreSQL and wrk.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, bail};

use crate::plugin::Case;
use crate::runtime::{LoadedPlugin, Runtime, RuntimeConfig};
use crate::store::{Location, Store, tenants};

use super::api::Load;

#[derive(Debug, clap::Args)]
pub struct PostgresArgs {
    /// Due cases to sweep in each run.
    #[arg(long, default_value_t = 20_000)]
    pub cases: usize,
    /// Cases per call into the plugin.
    #[arg(long, default_value_t = 500)]
    pub batch: usize,
    /// Contacts of the "may I use?" runs.
    #[arg(long, default_value_t = 10_000)]
    pub contacts: usize,
    /// Seconds of load per "may I use?" run (0: no such runs).
    #[arg(long, default_value_t = 5)]
    pub api_seconds: u32,
    /// Open connections of each "may I use?" run, in all.
    #[arg(long, default_value_t = 32)]
    pub connections: u32,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// "may I use?" under load: SQLite, PostgreSQL, and two PostgreSQL instances.
#[derive(Debug, serde::Serialize)]
struct MayIUse {
    sqlite: Load,
    postgres_one: Load,
    /// Both servers' requests per second summed; the latencies and errors
    /// of the worse of the two.
    postgres_two: Load,
}

/// The `--db` argument of a `klar serve` on `location`.
fn db_arg(location: &Location) -> std::ffi::OsString {
    match location {
        Location::File(path) => path.clone().into_os_string(),
        Location::Postgres(url) => url.into(),
    }
}

fn may_i_use(
    cluster: &crate::store::cluster::Cluster,
    dir: &Path,
    args: &PostgresArgs,
) -> Result<MayIUse> {
    let (threads, seconds) = (super::api::cores(), args.api_seconds);
    let sqlite = Location::File(dir.join("klar-api.db"));
    let postgres = cluster.create_database("api")?;
    let mut measured = Vec::new();
    for location in [&sqlite, &postgres] {
        let key = super::api::bench_tenant_in(location.clone(), dir, args.contacts)?;
        let script = dir.join("may-i-use.lua");
        super::api::use_script(&script, &key, args.contacts)?;
        let server = super::api::serve_at(db_arg(location), None)?;
        // A second's warm-up, so every run meets warm caches.
        super::api::wrk((threads, args.connections, 1), &server.url, Some(&script))?;
        measured.push(super::api::wrk(
            (threads, args.connections, seconds),
            &server.url,
            Some(&script),
        )?);
    }
    // Two servers on the PostgreSQL database (its tenant and key from
    // above), loaded at the same time.
    let script = dir.join("may-i-use.lua");
    let servers = [
        super::api::serve_at(db_arg(&postgres), None)?,
        super::api::serve_at(db_arg(&postgres), None)?,
    ];
    let each = ((threads / 2).max(1), (args.connections / 2).max(1));
    for server in &servers {
        super::api::wrk((each.0, each.1, 1), &server.url, Some(&script))?;
    }
    let loads = std::thread::scope(|scope| {
        let runs: Vec<_> = servers
            .iter()
            .map(|server| {
                let script = &script;
                scope.spawn(move || {
                    super::api::wrk((each.0, each.1, seconds), &server.url, Some(script))
                })
            })
            .collect();
        runs.into_iter()
            .map(|run| {
                run.join()
                    .map_err(|_| anyhow::anyhow!("a wrk run panicked"))?
            })
            .collect::<Result<Vec<Load>>>()
    })?;
    drop(servers);
    let two = Load {
        requests_per_s: loads.iter().map(|l| l.requests_per_s).sum(),
        p50_ms: loads.iter().map(|l| l.p50_ms).fold(0.0, f64::max),
        p99_ms: loads.iter().map(|l| l.p99_ms).fold(0.0, f64::max),
        errors: loads.iter().map(|l| l.errors).sum(),
    };
    Ok(MayIUse {
        sqlite: measured[0],
        postgres_one: measured[1],
        postgres_two: two,
    })
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
    let api = if args.api_seconds > 0 {
        Some(may_i_use(&cluster, &dir, args)?)
    } else {
        None
    };
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
                "may_i_use": api.as_ref().map(|api| serde_json::json!({
                    "contacts": args.contacts,
                    "seconds": args.api_seconds,
                    "connections": args.connections,
                    "sqlite": api.sqlite,
                    "postgres_one_instance": api.postgres_one,
                    "postgres_two_instances": api.postgres_two,
                    "postgres_one_vs_sqlite": api.postgres_one.requests_per_s / api.sqlite.requests_per_s,
                    "postgres_two_vs_one": api.postgres_two.requests_per_s / api.postgres_one.requests_per_s,
                })),
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
        if let Some(api) = &api {
            println!(
                "\n\"may I use?\" (GET /v1/contacts/{{id}}/use): {} contacts, {} s per run, {} connections in all, loopback",
                args.contacts, args.api_seconds, args.connections
            );
            println!("{:<52} {:>9} {:>8} {:>8}", "", "req/s", "p50 ms", "p99 ms");
            for (name, load) in [
                ("SQLite, one server (baseline)", api.sqlite),
                ("PostgreSQL, one server", api.postgres_one),
                ("PostgreSQL, two servers at once (sum)", api.postgres_two),
            ] {
                println!(
                    "{name:<52} {:>9.0} {:>8.2} {:>8.2}",
                    load.requests_per_s, load.p50_ms, load.p99_ms
                );
            }
            println!(
                "PostgreSQL vs SQLite, one server: {:.3}×",
                api.postgres_one.requests_per_s / api.sqlite.requests_per_s
            );
            println!(
                "PostgreSQL, two servers vs one: {:.2}×",
                api.postgres_two.requests_per_s / api.postgres_one.requests_per_s
            );
        }
    }
    if let Some(api) = &api
        && api.sqlite.errors + api.postgres_one.errors + api.postgres_two.errors > 0
    {
        bail!("some \"may I use?\" requests failed");
    }
    Ok(ExitCode::SUCCESS)
}
