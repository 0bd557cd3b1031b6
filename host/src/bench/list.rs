//! `klar bench list`: a campaign's list checked in one `POST /v1/use`, next
//! to the same ids asked one `GET /v1/contacts/{id}/use` at a time, in the
//! same run against the same server (this binary, a separate process, on a
//! loopback port).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result, bail};

#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// Contacts in the database, all of them on the list.
    #[arg(long, default_value_t = 100_000)]
    pub contacts: usize,
    /// Connections that ask one id at a time.
    #[arg(long, default_value_t = 8)]
    pub connections: usize,
    /// Scratch folder for the database (default: a temporary one).
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into()
}

/// `klar bench list`
pub fn run(args: &ListArgs) -> Result<ExitCode> {
    if args.contacts == 0 || args.contacts > crate::app::campaign::MAX_IDS {
        bail!("--contacts must be 1 to {}", crate::app::campaign::MAX_IDS);
    }
    let (_keep, dir) = super::store::scratch(args.dir.as_deref())?;
    let (db, key) = super::api::bench_tenant(&dir, args.contacts)?;
    let ids: Vec<String> = (1..=args.contacts).map(|n| format!("C{n:05}")).collect();
    let server = super::api::serve_at(&db, None)?;
    let auth = format!("Bearer {key}");
    let body = serde_json::json!({ "contacts": ids }).to_string();

    // One call for the whole list: three runs (the first warms the caches).
    let mut lists = Vec::new();
    for _ in 0..3 {
        let started = Instant::now();
        let mut response = agent()
            .post(format!("{}/v1/use", server.url))
            .header("Authorization", &auth)
            .header("Content-Type", "application/json")
            .send(&body)
            .context("POST /v1/use failed")?;
        let text = response
            .body_mut()
            .with_config()
            .limit(1 << 30)
            .read_to_string()?;
        let answer: serde_json::Value = serde_json::from_str(&text)
            .with_context(|| format!("POST /v1/use answered {}", response.status()))?;
        if answer["checked"].as_u64() != Some(args.contacts as u64) {
            bail!(
                "POST /v1/use did not check every id: {}",
                &text[..text.len().min(300)]
            );
        }
        lists.push(started.elapsed().as_secs_f64());
    }
    let one_call = lists[1..].iter().copied().fold(f64::INFINITY, f64::min);

    // The same ids one at a time, over keep-alive connections.
    let started = Instant::now();
    let connections = args.connections.max(1);
    let failed = std::thread::scope(|scope| {
        let workers: Vec<_> = ids
            .chunks(ids.len().div_ceil(connections))
            .map(|chunk| {
                let (url, auth) = (&server.url, &auth);
                scope.spawn(move || {
                    let agent = agent();
                    chunk
                        .iter()
                        .filter(|id| {
                            agent
                                .get(format!("{url}/v1/contacts/{id}/use"))
                                .header("Authorization", auth)
                                .call()
                                .map_or(true, |r| r.status() != 200)
                        })
                        .count()
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().unwrap_or(usize::MAX))
            .sum::<usize>()
    });
    let singles = started.elapsed().as_secs_f64();
    drop(server);
    if failed > 0 {
        bail!("{failed} single call(s) failed");
    }

    let n = args.contacts as f64;
    println!(
        "klar bench list: {} ids, one list vs one call per id ({connections} connections), loopback",
        args.contacts
    );
    println!("  {:<44} {:>9} {:>12}", "", "seconds", "ids/s");
    println!(
        "  {:<44} {:>9.3} {:>12.0}",
        "POST /v1/use, the whole list (best of 2)",
        one_call,
        n / one_call
    );
    println!(
        "  {:<44} {:>9.3} {:>12.0}",
        "GET /v1/contacts/{id}/use, once per id (baseline)",
        singles,
        n / singles
    );
    println!(
        "  one list vs single calls: {:.1}x as fast; goal: {} ids in < 1 s: {}",
        singles / one_call,
        args.contacts,
        if one_call < 1.0 { "met" } else { "not met" }
    );
    Ok(ExitCode::SUCCESS)
}
