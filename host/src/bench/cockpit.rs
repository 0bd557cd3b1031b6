//! `klar bench cockpit`: the overview and the queue's first page on a
//! database of many cases, next to the same server's `/health` measured in
//! the same run.
//!
//! A scratch database gets a tenant with N generated cases in a spread of
//! states, and an owner account that signs in; `klar serve` (this binary, a
//! separate process as in production) answers sequential requests, after a
//! warm-up; each page's median and 95th percentile are printed, and their
//! ratio to `/health`'s.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result, bail};

use crate::app::accounts::{self, NewAccount};
use crate::store::Store;
use crate::store::accounts::Role;

#[derive(Debug, clap::Args)]
pub struct CockpitArgs {
    /// Cases in the database (one per contact).
    #[arg(long, default_value_t = 100_000)]
    pub cases: usize,
    /// Requests per page after the warm-up.
    #[arg(long, default_value_t = 20)]
    pub requests: usize,
    /// Scratch folder for the database (default: a temporary one); a
    /// database already there with as many cases is used again.
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

const PASSWORD: &str = "bench-passwort-lang";

/// Median and 95th percentile, in ms.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Timing {
    pub median_ms: f64,
    pub p95_ms: f64,
}

fn timing(mut ms: Vec<f64>) -> Timing {
    ms.sort_by(f64::total_cmp);
    let at = |q: f64| ms[((ms.len() as f64 - 1.0) * q).round() as usize];
    Timing {
        median_ms: at(0.5),
        p95_ms: at(0.95),
    }
}

/// `klar bench cockpit`
pub fn run(args: &CockpitArgs) -> Result<ExitCode> {
    if args.cases == 0 || args.requests == 0 {
        bail!("--cases and --requests must be at least 1");
    }
    let (_keep, dir) = super::store::scratch(args.dir.as_deref())?;
    let db = dir.join(format!("klar-cockpit-{}.db", args.cases));
    let now = super::store::bench_now();
    let built = Instant::now();
    if !db.exists() {
        let mut store = Store::open(&db)?;
        store.transaction(|tx| {
            super::store::add_bench_tenant(tx, now.timestamp())?;
            crate::store::bench::cockpit_cases(
                tx,
                "bench",
                i64::try_from(args.cases).unwrap_or(i64::MAX),
                now.timestamp(),
            )?;
            Ok::<_, anyhow::Error>(())
        })?;
        let new = NewAccount {
            id: "o01",
            name: "Olaf Owner",
            email: None,
            roles: vec![Role::Owner, Role::Approver],
            language: "de",
        };
        let (_, link) = accounts::add(&mut store, "bench", &new, "bench", now.timestamp())?;
        accounts::sign_up(&mut store, &link, (PASSWORD, PASSWORD), now.timestamp())?;
        // The daily snapshot a tick takes (the trend and the funnel).
        let waves = crate::store::report::funnel(store.connection(), "bench", 8)?;
        store.transaction(|tx| {
            crate::store::report::record_day(tx, "bench", "2026-12-01", &waves)
        })?;
    }
    let build_s = built.elapsed().as_secs_f64();

    let server = super::api::serve_at(&db, Some(now))?;
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .build()
        .into();
    let signed_in = agent
        .post(format!("{}/cockpit/login", server.url))
        .header("Origin", &server.url)
        .send_form([
            ("tenant", "bench"),
            ("account", "o01"),
            ("password", PASSWORD),
        ])
        .context("sign-in")?;
    let cookie = signed_in
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(str::to_owned)
        .context("no session cookie: the sign-in failed")?;
    let time = |path: &str| -> Result<Timing> {
        let url = format!("{}{path}", server.url);
        let get = || -> Result<f64> {
            let started = Instant::now();
            let response = agent
                .get(&url)
                .header("Cookie", &cookie)
                .call()
                .with_context(|| format!("GET {path}"))?;
            let status = response.status().as_u16();
            let _ = response.into_body().read_to_vec();
            if status != 200 {
                bail!("GET {path} answered {status}");
            }
            Ok(started.elapsed().as_secs_f64() * 1000.0)
        };
        for _ in 0..2 {
            get()?;
        }
        let mut ms = Vec::with_capacity(args.requests);
        for _ in 0..args.requests {
            ms.push(get()?);
        }
        Ok(timing(ms))
    };
    let health = time("/health")?;
    let overview = time("/cockpit/overview")?;
    let queue = time("/cockpit/queue")?;
    drop(server);

    let goals = (overview.median_ms < 200.0, queue.median_ms < 100.0);
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "cases": args.cases,
                "requests": args.requests,
                "build_s": build_s,
                "health": health,
                "overview": overview,
                "queue_first_page": queue,
                "overview_vs_health": overview.median_ms / health.median_ms,
                "queue_vs_health": queue.median_ms / health.median_ms,
                "goal_overview_under_200ms": goals.0,
                "goal_queue_under_100ms": goals.1,
            }))?
        );
    } else {
        println!(
            "klar bench cockpit: {} cases, {} sequential requests per page after a warm-up, loopback (database built in {build_s:.1} s)",
            args.cases, args.requests
        );
        println!(
            "  {:<30} {:>10} {:>10} {:>12}",
            "", "median ms", "p95 ms", "vs /health"
        );
        for (name, t) in [
            ("GET /health (baseline)", health),
            ("GET /cockpit/overview", overview),
            ("GET /cockpit/queue (1st page)", queue),
        ] {
            println!(
                "  {name:<30} {:>10.2} {:>10.2} {:>11.1}x",
                t.median_ms,
                t.p95_ms,
                t.median_ms / health.median_ms
            );
        }
        let met = |ok: bool| if ok { "met" } else { "not met" };
        println!("  goal overview < 200 ms: {}", met(goals.0));
        println!("  goal queue's first page < 100 ms: {}", met(goals.1));
    }
    Ok(ExitCode::SUCCESS)
}
