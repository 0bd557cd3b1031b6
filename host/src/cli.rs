//! The `klar` command: parsed flags, and one function per command.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use chrono::{DateTime, Utc};
use clap::{Parser, Subcommand};
use serde::de::DeserializeOwned;

use crate::diagnostics;
use crate::plugin::{Case, Clock, Contact, Event, Severity};
use crate::runtime::{LoadedPlugin, OpenError, Origin, Runtime, RuntimeConfig, StepFailure};

/// klar runs the consent process for CRM contacts: ask, remind, record the
/// answer with evidence, let a person decide, clean up.
#[derive(Debug, Parser)]
#[command(name = "klar", version, about)]
pub struct Cli {
    /// Use this consent-process plugin (a WebAssembly component) instead of the
    /// built-in one.
    #[arg(long, global = true, value_name = "FILE.wasm")]
    pub plugin: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check and inspect policies.
    #[command(subcommand)]
    Policy(PolicyCommand),

    /// Run one step of one case and print the outcome as JSON: the new case, the
    /// actions for the host, and the trace of which hook decided what.
    Step(StepArgs),

    /// Show the plugin's name, version and the hooks it supports.
    Plugin {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },

    /// Measure policy steps per second through the component and natively, in
    /// the same run, and print the ratio.
    Bench(crate::bench::BenchArgs),
}

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Check a policy: syntax, hook parameters, return types (each hook is run
    /// once on a sample contact), limits, and misspelt hook names. Exit code 1
    /// if there is any error; warnings alone pass.
    Check {
        file: PathBuf,
        /// Print the diagnostics as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, clap::Args)]
pub struct StepArgs {
    /// The policy script (rhai).
    #[arg(long, value_name = "FILE")]
    pub policy: PathBuf,
    /// The case as JSON.
    #[arg(long = "case", value_name = "CASE.json")]
    pub case_file: PathBuf,
    /// The contact as JSON.
    #[arg(long, value_name = "CONTACT.json")]
    pub contact: PathBuf,
    /// The event as JSON, e.g. {"type": "tick"}.
    #[arg(long, value_name = "EVENT.json")]
    pub event: PathBuf,
    /// The time of the step (RFC 3339). The plugin reads no clock of its own.
    #[arg(long, value_name = "RFC3339")]
    pub now: String,
    /// The tenant's UTC offset at `now`, in minutes (60 for CET, 120 for CEST).
    #[arg(long, default_value_t = 0, allow_negative_numbers = true)]
    pub utc_offset_minutes: i32,
}

/// Sets up logging (`KLAR_LOG`, e.g. `KLAR_LOG=debug`) and runs the command.
pub fn main() -> ExitCode {
    let filter = tracing_subscriber::EnvFilter::try_from_env("KLAR_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("klar: {err:#}");
            ExitCode::from(2)
        }
    }
}

pub fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Policy(PolicyCommand::Check { file, json }) => {
            policy_check(cli.plugin.as_deref(), &file, json)
        }
        Command::Step(args) => step(cli.plugin.as_deref(), &args),
        Command::Plugin { json } => plugin_info(cli.plugin.as_deref(), json),
        Command::Bench(args) => crate::bench::run(cli.plugin.as_deref(), &args),
    }
}

fn load_plugin(path: Option<&Path>) -> Result<Arc<LoadedPlugin>> {
    let runtime = Runtime::new(RuntimeConfig::default())?;
    let plugin = match path {
        Some(path) => runtime.load_file(path)?,
        None => runtime.load_default()?,
    };
    Ok(plugin)
}

fn read_text(path: &Path, what: &str) -> Result<String> {
    std::fs::read_to_string(path)
        .with_context(|| format!("failed to read {what} {}", path.display()))
}

fn read_json<T: DeserializeOwned>(path: &Path, what: &str) -> Result<T> {
    let text = read_text(path, what)?;
    serde_json::from_str(&text)
        .with_context(|| format!("failed to read {what} from {}", path.display()))
}

/// `klar policy check FILE`
fn policy_check(plugin: Option<&Path>, file: &Path, json: bool) -> Result<ExitCode> {
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
fn step(plugin: Option<&Path>, args: &StepArgs) -> Result<ExitCode> {
    let source = read_text(&args.policy, "policy")?;
    let case: Case = read_json(&args.case_file, "the case")?;
    let contact: Contact = read_json(&args.contact, "the contact")?;
    let event: Event = read_json(&args.event, "the event")?;
    let now = DateTime::parse_from_rfc3339(&args.now)
        .with_context(|| format!("--now {:?} is not an RFC 3339 time", args.now))?
        .with_timezone(&Utc);
    let clock = Clock {
        now,
        utc_offset_minutes: args.utc_offset_minutes,
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
fn plugin_info(plugin: Option<&Path>, json: bool) -> Result<ExitCode> {
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
