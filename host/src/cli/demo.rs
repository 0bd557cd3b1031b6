//! `klar demo`: the README's main job.

use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;
use chrono::SubsecRound;

use super::cases::status;
use super::evidence::audit_verify;
use super::{NowArg, load_plugin};
use crate::store::{Store, tenants};

/// `klar demo`
pub(super) fn demo(
    plugin: Option<&Path>,
    db: &crate::store::Location,
    contacts: usize,
    days: u32,
    seed: u64,
    now: &NowArg,
) -> Result<ExitCode> {
    // Whole seconds: the end is printed as a `--now` to type in again.
    let end = now.resolve()?.trunc_subsecs(0);
    crate::app::demo::clear_old_demo(db)?;
    let mut store = Store::open(db.clone())?;
    let plugin = load_plugin(plugin)?;
    let progress = if std::io::stderr().is_terminal() {
        indicatif::ProgressBar::new(u64::from(days) + 1).with_message("simulated days")
    } else {
        indicatif::ProgressBar::hidden()
    };
    let options = crate::app::demo::Options {
        contacts,
        days,
        seed,
        end,
    };
    let started = std::time::Instant::now();
    let summary = crate::app::demo::run(&mut store, &plugin, &options, &mut |done, todo| {
        progress.set_length(u64::from(todo));
        progress.set_position(u64::from(done));
    })?;
    progress.finish_and_clear();
    let tz = tenants::require(store.connection(), crate::app::demo::TENANT)?.timezone;
    println!(
        "demo: {} contacts, {days} simulated days up to {} (seed {seed}), in {:.1} s",
        summary.contacts,
        crate::times::local(end, tz),
        started.elapsed().as_secs_f64()
    );
    println!(
        "      {} requests and reminders sent; {} agreed, {} refused, {} withdrew later; \
         {} owner decisions; {} legal holds",
        summary.requests_sent,
        summary.accepted,
        summary.refused,
        summary.withdrawn,
        summary.decisions,
        summary.holds
    );
    // The cockpit below counts states, and a refusal moves on to a cleanup:
    // say where the refusals and withdrawals went, so the numbers add up.
    let now_in = |counts: &std::collections::BTreeMap<String, usize>| {
        let parts: Vec<String> = counts.iter().map(|(s, n)| format!("{s} {n}")).collect();
        if parts.is_empty() {
            "none".to_owned()
        } else {
            parts.join(", ")
        }
    };
    println!(
        "      refused → now {}; withdrawn → now {}",
        now_in(&summary.refused_now),
        now_in(&summary.withdrawn_now)
    );
    println!();
    let at = NowArg {
        now: Some(end.to_rfc3339()),
    };
    status(db, crate::app::demo::TENANT, false, &at)?;
    println!();
    let code = audit_verify(db, Some(crate::app::demo::TENANT))?;
    let shown = db;
    println!();
    println!("explore it:");
    println!(
        "  klar --db {shown} cases demo --state awaiting-decision --now {}",
        end.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    );
    println!("  klar --db {shown} audit show demo C00001");
    println!("  klar --db {shown} evidence export demo C00001");
    println!();
    println!("the cockpit: `klar --db {shown} serve`, then open http://127.0.0.1:8080/cockpit");
    println!(
        "  tenant demo, password {}; accounts:",
        crate::app::demo::DEMO_PASSWORD
    );
    for (id, name, roles) in crate::app::demo::ACCOUNTS {
        let roles: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
        println!("    {id:<10} {name} ({})", roles.join(", "));
    }
    Ok(code)
}
