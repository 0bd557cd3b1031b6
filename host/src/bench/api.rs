//! `klar bench api`: the "may I use?" call under load, next to the same
//! server's `/health` measured in the same run.
//!
//! A scratch database gets a tenant, N imported contacts and an API key;
//! `klar serve` (this binary, a separate process as in production) listens on
//! a loopback port; `wrk` (Debian's package) drives each endpoint in turn with
//! the same threads, connections and duration. "may I use?" asks for a random
//! contact each time (a Lua script), so the answers come from the whole table.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};

use anyhow::{Context, Result, bail};

use crate::store::{Location, Store, apikeys};

#[derive(Debug, clap::Args)]
pub struct ApiArgs {
    /// Contacts in the database.
    #[arg(long, default_value_t = 10_000)]
    pub contacts: usize,
    /// Seconds of load per endpoint.
    #[arg(long, default_value_t = 10)]
    pub seconds: u32,
    /// Open connections.
    #[arg(long, default_value_t = 32)]
    pub connections: u32,
    /// wrk threads (default: the machine's cores).
    #[arg(long)]
    pub threads: Option<u32>,
    /// Scratch folder for the database (default: a temporary one).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// What wrk measured for one endpoint.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Load {
    pub requests_per_s: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// Answers other than 2xx/3xx, and socket errors.
    pub errors: u64,
}

/// A latency as wrk prints it (`812.00us`, `3.21ms`, `1.02s`), in ms.
fn millis(text: &str) -> Option<f64> {
    let (number, factor) = if let Some(n) = text.strip_suffix("us") {
        (n, 0.001)
    } else if let Some(n) = text.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = text.strip_suffix('m') {
        (n, 60_000.0)
    } else if let Some(n) = text.strip_suffix('s') {
        (n, 1_000.0)
    } else {
        return None;
    };
    number.parse::<f64>().ok().map(|v| v * factor)
}

/// Reads wrk's `--latency` report.
pub fn parse_wrk(report: &str) -> Option<Load> {
    let mut load = Load {
        requests_per_s: f64::NAN,
        p50_ms: f64::NAN,
        p99_ms: f64::NAN,
        errors: 0,
    };
    for line in report.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["Requests/sec:", n] => load.requests_per_s = n.parse().ok()?,
            ["50%", t] => load.p50_ms = millis(t)?,
            ["99%", t] => load.p99_ms = millis(t)?,
            ["Non-2xx", "or", "3xx", "responses:", n] => load.errors += n.parse::<u64>().ok()?,
            ["Socket", "errors:", rest @ ..] => {
                load.errors += rest
                    .iter()
                    .filter_map(|w| w.trim_end_matches(',').parse::<u64>().ok())
                    .sum::<u64>();
            }
            _ => {}
        }
    }
    (!load.requests_per_s.is_nan() && !load.p99_ms.is_nan()).then_some(load)
}

/// `klar serve` on a free loopback port; killed when dropped.
pub(super) struct Server {
    child: Child,
    pub(super) url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(db: &Path) -> Result<Server> {
    serve_at(db, None)
}

/// `klar serve` on `db`, its clock fixed at `now` if given.
pub(super) fn serve_at(
    db: impl AsRef<std::ffi::OsStr>,
    now: Option<chrono::DateTime<chrono::Utc>>,
) -> Result<Server> {
    let exe = std::env::current_exe().context("cannot find the klar binary")?;
    let mut command = Command::new(exe);
    command
        .args(["--db"])
        .arg(db)
        .args(["serve", "--addr", "127.0.0.1:0", "--tick-seconds", "0"]);
    if let Some(now) = now {
        command.arg("--now").arg(now.to_rfc3339());
    }
    let mut child = command
        .env("KLAR_DELIVER_MS", "0")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("failed to start klar serve")?;
    let stdout = child.stdout.take().context("no stdout from klar serve")?;
    let mut reader = BufReader::new(stdout);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let url = line
        .trim()
        .strip_prefix("klar serve: listening on ")
        .map(str::to_owned);
    let server = Server {
        child,
        url: url.unwrap_or_default(),
    };
    if server.url.is_empty() {
        bail!("klar serve did not start: {line:?}");
    }
    std::thread::spawn(move || {
        let mut rest = String::new();
        while reader.read_line(&mut rest).unwrap_or(0) > 0 {
            rest.clear();
        }
    });
    Ok(server)
}

/// wrk with `threads` threads and `connections` connections for `seconds`.
pub(super) fn wrk(
    (threads, connections, seconds): (u32, u32, u32),
    url: &str,
    script: Option<&Path>,
) -> Result<Load> {
    let mut cmd = Command::new("wrk");
    cmd.arg(format!("-t{threads}"))
        .arg(format!("-c{}", connections.max(threads)))
        .arg(format!("-d{}s", seconds.max(1)))
        .arg("--latency");
    if let Some(script) = script {
        cmd.arg("-s").arg(script);
    }
    let out = cmd
        .arg(url)
        .output()
        .context("the API benchmark needs wrk (Debian: apt install wrk)")?;
    let report = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!(
            "wrk failed: {}{}",
            report,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    parse_wrk(&report).with_context(|| format!("cannot read wrk's report:\n{report}"))
}

/// A scratch database in `dir` with tenant `bench`, `contacts` imported
/// contacts (`C00001`, …) and a `crm` key; returns the database and the key.
pub(super) fn bench_tenant(dir: &Path, contacts: usize) -> Result<(PathBuf, String)> {
    let db = dir.join("klar-api.db");
    super::store::remove_db(&db)?;
    let key = bench_tenant_in(Location::File(db.clone()), dir, contacts)?;
    Ok((db, key))
}

/// Like [`bench_tenant`], in the (new, empty) store at `location`; the CSV
/// goes to `dir`. Returns the key.
pub(super) fn bench_tenant_in(location: Location, dir: &Path, contacts: usize) -> Result<String> {
    let now = super::store::bench_now();
    let csv = dir.join("contacts.csv");
    super::store::write_csv(&csv, contacts, now)?;
    let mut store = Store::open(location)?;
    let key = store.transaction(|tx| {
        super::store::add_bench_tenant(tx, now.timestamp())?;
        let (secret, _) =
            apikeys::create(tx, "bench", ("load", apikeys::Scope::Crm), now.timestamp())?;
        Ok::<_, anyhow::Error>(secret)
    })?;
    let bytes = std::fs::read(&csv)?;
    if let Err(problems) = crate::app::import::import_bytes(
        &mut store,
        "bench",
        (&bytes, "contacts.csv"),
        ("de", now),
    )? {
        anyhow::bail!("the generated CSV has {} problem(s)", problems.len());
    }
    Ok(key)
}

/// wrk's script for "may I use?" about a random one of `contacts`
/// contacts, with `key`; written to `path`.
pub(super) fn use_script(path: &Path, key: &str, contacts: usize) -> Result<()> {
    std::fs::write(
        path,
        format!(
            "math.randomseed(1)\n\
             wrk.headers[\"Authorization\"] = \"Bearer {key}\"\n\
             request = function()\n\
             \x20 return wrk.format(\"GET\", string.format(\"/v1/contacts/C%05d/use\", math.random(1, {contacts})))\n\
             end\n"
        ),
    )?;
    Ok(())
}

/// wrk's threads by default: the machine's cores.
pub(super) fn cores() -> u32 {
    std::thread::available_parallelism()
        .map(|n| u32::try_from(n.get()).unwrap_or(2))
        .unwrap_or(2)
}

/// `klar bench api`
pub fn run(args: &ApiArgs) -> Result<ExitCode> {
    if args.contacts == 0 {
        bail!("--contacts must be at least 1");
    }
    let (_keep, dir) = super::store::scratch(args.dir.as_deref())?;
    let (db, key) = bench_tenant(&dir, args.contacts)?;

    let script = dir.join("may-i-use.lua");
    use_script(&script, &key, args.contacts)?;
    let threads = args.threads.unwrap_or_else(cores);
    let server = serve(&db)?;
    // A short warm-up, so both runs meet a server with warm caches.
    let load = (threads, args.connections, args.seconds);
    wrk((threads, args.connections, 1), &server.url, Some(&script))?;
    let health = wrk(load, &format!("{}/health", server.url), None)?;
    let use_ = wrk(load, &server.url, Some(&script))?;
    drop(server);

    let ratio = use_.requests_per_s / health.requests_per_s;
    let goal = use_.requests_per_s >= 30_000.0 && use_.p99_ms < 5.0;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "contacts": args.contacts,
                "seconds": args.seconds,
                "connections": args.connections,
                "threads": threads,
                "health": health,
                "may_i_use": use_,
                "may_i_use_vs_health": ratio,
                "goal_30k_per_s_p99_under_5ms": goal,
            }))?
        );
    } else {
        println!(
            "klar bench api: {} contacts, {} s per endpoint, {} connections, {threads} wrk threads, loopback",
            args.contacts, args.seconds, args.connections
        );
        println!(
            "  {:<34} {:>10} {:>9} {:>9} {:>7}",
            "", "req/s", "p50 ms", "p99 ms", "errors"
        );
        for (name, l) in [
            ("GET /health (baseline)", health),
            ("GET /v1/contacts/{id}/use", use_),
        ] {
            println!(
                "  {name:<34} {:>10.0} {:>9.2} {:>9.2} {:>7}",
                l.requests_per_s, l.p50_ms, l.p99_ms, l.errors
            );
        }
        println!("  may I use? vs /health: {ratio:.2}x the requests per second");
        println!(
            "  goal >= 30,000 req/s with p99 < 5 ms: {}",
            if goal { "met" } else { "not met" }
        );
        // wrk keeps one request open on every connection, so the mean
        // latency is the connections divided by the rate (Little's law): a
        // p99 under 5 ms needs at least connections / 5 ms requests a second.
        println!(
            "  Little's law: {} connections / {:.0} req/s = {:.2} ms mean latency; \
             a p99 under 5 ms needs more than {:.0} req/s",
            args.connections,
            use_.requests_per_s,
            args.connections as f64 / use_.requests_per_s.max(1.0) * 1000.0,
            args.connections as f64 / 0.005
        );
    }
    if use_.errors > 0 || health.errors > 0 {
        bail!("some requests failed (see the errors column)");
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_wrk_report() {
        let report = "Running 10s test @ http://127.0.0.1:1/health
  2 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.61ms    1.02ms  22.41ms   87.12%
  Latency Distribution
     50%    1.39ms
     75%    1.95ms
     90%    2.70ms
     99%    5.47ms
  391870 requests in 10.00s, 71.38MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 4
Requests/sec:  39185.74
Transfer/sec:      7.14MB
";
        let load = parse_wrk(report).expect("a report");
        assert_eq!(load.requests_per_s, 39185.74);
        assert_eq!((load.p50_ms, load.p99_ms), (1.39, 5.47));
        assert_eq!(load.errors, 7);
        assert_eq!(millis("812.00us"), Some(0.812));
        assert_eq!(millis("1.50s"), Some(1500.0));
        assert!(parse_wrk("nothing").is_none());
    }
}
