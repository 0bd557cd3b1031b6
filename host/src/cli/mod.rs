//! The `klar` command: `main` parses the flags (`args`) and `run` hands
//! each command to its function, in one file per group of commands. The
//! functions parse and print; the work is done by `app` and `engine`.

use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::Parser;
use serde::de::DeserializeOwned;

/// `println!` for a line that carries stored data (names, owners, reasons,
/// errors a plugin wrote): control characters other than line breaks and
/// tabs are shown escaped, never obeyed by the terminal.
macro_rules! show {
    ($($arg:tt)*) => {
        println!("{}", $crate::cli::printable_text(&format!($($arg)*)))
    };
}

mod args;
mod cases;
mod demo;
mod evidence;
mod outbox;
mod plugin;
mod policy;
mod setup;
mod texts;
mod usable;
mod users;

pub use args::*;

use crate::plugin::{Decision, Event};
use crate::runtime::{LoadedPlugin, Runtime, RuntimeConfig};
use crate::store::Store;

/// Sets up logging (`KLAR_LOG`, e.g. `KLAR_LOG=debug`) and runs the command.
pub fn main() -> ExitCode {
    // Rust ignores SIGPIPE, which turns `klar cases | head` into a panic on the
    // next print; a command-line tool should just stop, as others do.
    #[cfg(unix)]
    // SAFETY: called before any thread starts; SIG_DFL is a valid handler.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
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
    let Cli {
        plugin,
        db,
        command,
    } = cli;
    let plugin = plugin.as_deref();
    // `klar serve` may take it from its config file instead.
    let given_db = db;
    let db = given_db.clone().unwrap_or_default();
    match command {
        Command::Init => setup::init(&db),
        Command::Tenant(TenantCommand::Add {
            id,
            name,
            timezone,
            locale,
            policy,
            now,
        }) => setup::tenant_add(
            plugin,
            &db,
            &id,
            &name,
            &timezone,
            &locale,
            policy.as_deref(),
            &now,
        ),
        Command::Tenant(TenantCommand::List { json }) => setup::tenant_list(&db, json),
        Command::Tenant(TenantCommand::Show { tenant, json }) => {
            setup::tenant_show(&db, &tenant, json)
        }
        Command::Tenant(TenantCommand::Set {
            tenant,
            settings,
            now,
        }) => setup::tenant_set(&db, &tenant, &settings.into(), &now),
        Command::Purpose(PurposeCommand::List { tenant, json }) => {
            setup::purpose_list(&db, &tenant, json)
        }
        Command::Purpose(PurposeCommand::Set {
            tenant,
            id,
            description,
            enforcement,
            now,
        }) => setup::purpose_set(
            &db,
            &tenant,
            &id,
            (description.as_deref(), enforcement),
            &now,
        ),
        Command::Purpose(PurposeCommand::Remove { tenant, id, now }) => {
            setup::purpose_remove(&db, &tenant, &id, &now)
        }
        Command::Purpose(PurposeCommand::Add {
            tenant,
            id,
            description,
            now,
        }) => setup::purpose_add(&db, &tenant, &id, &description, &now),
        Command::Text(command) => texts::run(&db, command),
        Command::Template(command) => texts::template(&db, command),
        Command::Tick { batch, now } => cases::tick(plugin, &db, batch, &now),
        Command::Decide {
            tenant,
            contact,
            purpose,
            action,
            by,
            reason,
            after_days,
            now,
        } => {
            let event = Event::ManualDecision(Decision {
                kind: action.into(),
                by,
                reason,
                after_days,
                mode: None,
            });
            cases::case_event(plugin, &db, &tenant, &contact, Some(&purpose), event, &now)
        }
        Command::Approve {
            tenant,
            contact,
            purpose,
            by,
            now,
        } => cases::case_event(
            plugin,
            &db,
            &tenant,
            &contact,
            Some(&purpose),
            Event::Approve { by },
            &now,
        ),
        Command::Hold {
            tenant,
            contact,
            switch,
            by,
            reason,
            now,
        } => {
            let event = match switch {
                OnOff::On => Event::HoldOn { by, reason },
                OnOff::Off => Event::HoldOff { by, reason },
            };
            cases::case_event(plugin, &db, &tenant, &contact, None, event, &now)
        }
        Command::Withdraw {
            tenant,
            contact,
            purpose,
            now,
        } => cases::case_event(
            plugin,
            &db,
            &tenant,
            &contact,
            purpose.as_deref(),
            Event::Withdraw,
            &now,
        ),
        Command::Object {
            tenant,
            contact,
            purpose,
            now,
        } => cases::case_event(
            plugin,
            &db,
            &tenant,
            &contact,
            purpose.as_deref(),
            Event::Object,
            &now,
        ),
        Command::Used {
            tenant,
            contact,
            purpose,
            now,
        } => cases::case_event(
            plugin,
            &db,
            &tenant,
            &contact,
            Some(&purpose),
            Event::Used,
            &now,
        ),
        Command::Audit(AuditCommand::Verify { tenant }) => {
            evidence::audit_verify(&db, tenant.as_deref())
        }
        Command::Clear {
            tenant,
            contact,
            purpose,
            by,
            reason,
            now,
        } => cases::clear(&db, &tenant, (&contact, &purpose), (&by, &reason), &now),
        Command::Audit(AuditCommand::Show {
            tenant,
            contact,
            json,
        }) => evidence::audit_show(&db, &tenant, &contact, json),
        Command::Respond {
            token,
            answer,
            ip,
            user_agent,
            json,
            now,
        } => {
            let origin = crate::app::respond::Origin { ip, user_agent };
            cases::respond(plugin, &db, &token, answer.into(), &origin, json, &now)
        }
        Command::Outbox {
            tenant,
            contact,
            all,
            parked,
            json,
        } => outbox::outbox(&db, &tenant, contact.as_deref(), all, parked, json),
        Command::Store(StoreCommand::Copy { from, to }) => setup::store_copy(&from, &to),
        Command::Openapi => {
            println!("{}", crate::serve::openapi_json());
            Ok(ExitCode::SUCCESS)
        }
        Command::Redeliver { tenant, id, now } => {
            outbox::redeliver(&db, &tenant, id.as_deref(), &now)
        }
        Command::Simulate {
            tenant,
            policy,
            days,
            answer_rate,
            refuse_rate,
            seed,
            against,
            json,
            now,
        } => {
            let options = crate::app::simulate::Options {
                days,
                answer_rate,
                refuse_rate,
                seed,
                start: now.resolve()?,
            };
            self::policy::simulate(
                plugin,
                &db,
                &tenant,
                policy.as_deref(),
                against,
                &options,
                json,
            )
        }
        Command::Serve {
            addr,
            config,
            tick_seconds,
            now,
        } => {
            let now = match &now.now {
                Some(_) => Some(now.resolve()?),
                None => None,
            };
            setup::serve(
                plugin,
                crate::serve::config::Flags {
                    addr,
                    db: given_db,
                    config,
                    tick_seconds,
                    now,
                },
            )
        }
        Command::Apikey(command) => setup::apikey(&db, command),
        Command::User(command) => users::user(&db, command),
        Command::Digest { config, now } => users::digest(&db, config, &now),
        Command::Webhook(command) => setup::webhook(&db, command),
        Command::Explain {
            tenant,
            contact,
            json,
        } => evidence::explain(&db, &tenant, &contact, json),
        Command::Evidence(EvidenceCommand::Export {
            tenant,
            contact,
            output,
            now,
        }) => evidence::evidence_export(&db, &tenant, &contact, output.as_deref(), &now),
        Command::Status { tenant, json, now } => cases::status(&db, &tenant, json, &now),
        Command::Cases {
            tenant,
            state,
            band,
            owner,
            overdue,
            json,
            csv,
            now,
        } => {
            let filter = crate::store::report::CaseFilter {
                state,
                band,
                owner,
                overdue,
                ..Default::default()
            };
            let output = if json {
                cases::Output::Json
            } else if csv {
                cases::Output::Csv
            } else {
                cases::Output::Table
            };
            cases::cases(&db, &tenant, &filter, output, &now)
        }
        Command::Usable {
            tenant,
            purpose,
            csv,
            column,
            file_format,
            output,
            all,
            now,
        } => usable::usable(
            &db,
            &usable::Request {
                tenant: &tenant,
                purpose: &purpose,
                csv: csv.as_deref(),
                column: column.as_deref(),
                options: file_format.options(),
                output: output.as_ref(),
                all,
            },
            &now,
        ),
        Command::Import {
            tenant,
            file,
            skip_invalid,
            file_format,
            now,
        } => cases::import(
            &db,
            &tenant,
            (&file, &file_format.options()),
            skip_invalid,
            &now,
        ),
        Command::Policy(PolicyCommand::Set {
            tenant,
            file,
            author,
            message,
            untested,
            now,
        }) => policy::policy_set(
            plugin,
            &db,
            &tenant,
            &file,
            (&author, &message),
            untested.reason(),
            &now,
        ),
        Command::Policy(PolicyCommand::Check { file, json }) => {
            plugin::policy_check(plugin, &file, json)
        }
        Command::Policy(PolicyCommand::Test { file, tests }) => policy::test(plugin, &file, &tests),
        Command::Policy(PolicyCommand::Log { tenant, json }) => policy::log(&db, &tenant, json),
        Command::Policy(PolicyCommand::Show { tenant, version }) => {
            policy::show(&db, &tenant, version)
        }
        Command::Policy(PolicyCommand::Diff { tenant, from, to }) => {
            policy::diff(&db, &tenant, from, to)
        }
        Command::Policy(PolicyCommand::Rollback {
            tenant,
            version,
            author,
            message,
            untested,
            now,
        }) => policy::rollback(
            plugin,
            &db,
            &tenant,
            version,
            &author,
            &message,
            untested.reason(),
            &now,
        ),
        Command::Step(args) => plugin::step(plugin, &args),
        Command::Demo {
            contacts,
            days,
            seed,
            now,
        } => demo::demo(plugin, &db, contacts, days, seed, &now),
        Command::Plugin { json } => plugin::plugin_info(plugin, json),
        Command::Bench(args) => crate::bench::run(plugin, &args),
    }
}

pub(crate) fn load_plugin(path: Option<&Path>) -> Result<Arc<LoadedPlugin>> {
    let runtime = Runtime::new(RuntimeConfig::default())?;
    let plugin = match path {
        Some(path) => runtime.load_file(path)?,
        None => runtime.load_default()?,
    };
    Ok(plugin)
}

pub(crate) fn read_text(path: &Path, what: &str) -> Result<String> {
    std::fs::read_to_string(path)
        .with_context(|| format!("failed to read {what} {}", path.display()))
}

fn read_json<T: DeserializeOwned>(path: &Path, what: &str) -> Result<T> {
    let text = read_text(path, what)?;
    serde_json::from_str(&text)
        .with_context(|| format!("failed to read {what} from {}", path.display()))
}

/// The database of every command but `init` and `demo`: it must exist.
/// Text from input (names, authors, messages), safe to print on a
/// terminal: control characters such as ESC are shown escaped (`\u{1b}`)
/// instead of being obeyed.
pub(crate) fn printable(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return text.into();
    }
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_unicode().to_string()
            } else {
                c.to_string()
            }
        })
        .collect::<String>()
        .into()
}

/// [`printable`] that keeps line breaks and tabs: for whole blocks of output.
pub(crate) fn printable_text(text: &str) -> std::borrow::Cow<'_, str> {
    if !text
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return text.into();
    }
    text.split('\n')
        .map(|line| {
            line.split('\t')
                .map(|part| printable(part).into_owned())
                .collect::<Vec<_>>()
                .join("\t")
        })
        .collect::<Vec<_>>()
        .join("\n")
        .into()
}

pub(crate) fn open_store(db: &crate::store::Location) -> Result<Store> {
    Ok(Store::open_existing(db)?)
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::Cli;

    /// Every command, flag and argument says what it is for in `--help`.
    #[test]
    fn every_command_and_argument_has_a_help_text() {
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for arg in cmd.get_arguments() {
                let id = arg.get_id().as_str();
                if matches!(id, "help" | "version") || arg.is_hide_set() {
                    continue;
                }
                if arg.get_help().is_none() && arg.get_long_help().is_none() {
                    missing.push(format!("{path} {id}"));
                }
            }
            for sub in cmd.get_subcommands() {
                let name = format!("{path} {}", sub.get_name());
                if sub.get_name() != "help" && sub.get_about().is_none() {
                    missing.push(format!("{name} (the command itself)"));
                }
                walk(sub, &name, missing);
            }
        }
        let mut cmd = Cli::command();
        cmd.build();
        let mut missing = Vec::new();
        walk(&cmd, "klar", &mut missing);
        assert!(missing.is_empty(), "no help text: {missing:#?}");
    }
}
