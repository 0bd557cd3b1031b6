//! The plugin's own faces: `klar policy check`, `klar step`, `klar plugin`.

use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Result, bail};

use super::{StepArgs, load_plugin, parse_time, read_json, read_text};
use crate::diagnostics;
use crate::plugin::{Case, Clock, Contact, Event, Severity};
use crate::runtime::{OpenError, Origin, StepFailure};

/// `klar policy check FILE`
pub(super) fn policy_check(plugin: Option<&Path>, file: &Path, json: bool) -> Result<ExitCode> {
    let source = read_text(file, "policy")?;
    let name = file.display().to_string();
    let plugin = load_plugin(plugin)?;
    let diagnostics = match plugin.open(&name, &source) {
        Ok(session) => session.warnings().to_vec(),
        Err(OpenError::Policy(diagnostics)) => diagnostics,
        Err(err @ OpenError::Trap(_)) => return Err(err.into()),
    };
    let errors = diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .count();
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "file": name,
                "ok": errors == 0,
                "diagnostics": diagnostics,
            }))?
        );
    } else {
        let color = std::io::stdout().is_terminal();
        print!(
            "{}",
            diagnostics::render(&name, &source, &diagnostics, color)
        );
        let warnings = diagnostics.len() - errors;
        if errors == 0 {
            println!("{name}: ok ({warnings} warning(s))");
        } else {
            println!("{name}: {errors} error(s), {warnings} warning(s)");
        }
    }
    Ok(if errors == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// `klar step`
pub(super) fn step(plugin: Option<&Path>, args: &StepArgs) -> Result<ExitCode> {
    let source = read_text(&args.policy, "policy")?;
    let case: Case = read_json(&args.case_file, "the case")?;
    let contact: Contact = read_json(&args.contact, "the contact")?;
    let event: Event = read_json(&args.event, "the event")?;
    let now = parse_time(&args.now)?;
    let clock = Clock {
        utc_offset_minutes: args.utc_offset_minutes,
        ..Clock::utc(now)
    };
    let name = args.policy.display().to_string();
    let plugin = load_plugin(plugin)?;
    let mut session = match plugin.open(&name, &source) {
        Ok(session) => session,
        Err(OpenError::Policy(diagnostics)) => {
            eprint!(
                "{}",
                diagnostics::render(
                    &name,
                    &source,
                    &diagnostics,
                    std::io::stderr().is_terminal()
                )
            );
            bail!("the policy {name} has errors; run `klar policy check {name}`");
        }
        Err(err) => return Err(err.into()),
    };
    match session.step(&case, &contact, &event, &clock) {
        Ok(outcome) => {
            println!("{}", serde_json::to_string_pretty(&outcome)?);
            Ok(ExitCode::SUCCESS)
        }
        Err(StepFailure::Step(crate::plugin::StepError::Policy { diagnostic })) => {
            eprint!(
                "{}",
                diagnostics::render(
                    &name,
                    &source,
                    &[diagnostic],
                    std::io::stderr().is_terminal()
                )
            );
            Ok(ExitCode::from(1))
        }
        Err(err) => {
            eprintln!("klar: {err}");
            Ok(ExitCode::from(1))
        }
    }
}

/// `klar plugin`
pub(super) fn plugin_info(plugin: Option<&Path>, json: bool) -> Result<ExitCode> {
    let plugin = load_plugin(plugin)?;
    let info = plugin.info();
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "name": info.name,
                "version": info.version,
                "hooks": info.hooks,
                "contract": format!("klar:consent@{}", crate::runtime::CONTRACT_VERSION),
                "sha256": plugin.sha256(),
                "loaded_from": match plugin.origin() {
                    Origin::Compiled => "compiled",
                    Origin::Cache(_) => "cache",
                },
            }))?
        );
    } else {
        println!("{} {}", info.name, info.version);
        println!(
            "contract: klar:consent@{}",
            crate::runtime::CONTRACT_VERSION
        );
        println!("sha256:   {}", plugin.sha256());
        println!("hooks:    {}", info.hooks.join(", "));
    }
    Ok(ExitCode::SUCCESS)
}
