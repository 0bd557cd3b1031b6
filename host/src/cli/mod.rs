//! The `klar` command: parsed flags, and one function per command.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use chrono::{DateTime, SubsecRound, Utc};
use clap::{Parser, Subcommand};
use serde::de::DeserializeOwned;

mod policy;
mod proof;

use crate::diagnostics;
use crate::plugin::{Case, Clock, Contact, Decision, DecisionKind, Event, Severity};
use crate::runtime::{LoadedPlugin, OpenError, Origin, Runtime, RuntimeConfig, StepFailure};
use crate::store::{Store, tenants};

/// klar runs the consent process for CRM contacts: ask, remind, record the
/// answer with evidence, let a person decide, clean up.
#[derive(Debug, Parser)]
#[command(name = "klar", version, about)]
pub struct Cli {
    /// Use this consent-process plugin (a WebAssembly component) instead of the
    /// built-in one.
    #[arg(long, global = true, value_name = "FILE.wasm")]
    pub plugin: Option<PathBuf>,

    /// The database file.
    #[arg(long, global = true, env = "KLAR_DB", default_value = "klar.db")]
    pub db: PathBuf,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create the database (or bring an existing one to this klar's schema).
    Init,

    /// Manage tenants.
    #[command(subcommand)]
    Tenant(TenantCommand),

    /// Manage a tenant's purposes.
    #[command(subcommand)]
    Purpose(PurposeCommand),

    /// Record a person's decision on a case.
    Decide {
        /// The tenant's id.
        tenant: String,
        /// The contact's id (the CRM's external_id).
        contact: String,
        /// The purpose of the case (default: contact-data).
        #[arg(long, default_value = "contact-data")]
        purpose: String,
        /// What the person decided: manual (take the case over), restart (ask again), cleanup (erase after the grace period), other-basis (a legal basis other than consent; --reason names it) or keep (stop a pending cleanup).
        #[arg(long, value_enum)]
        action: DecideAction,
        /// Who decided (name or login); the audit log records it.
        #[arg(long)]
        by: String,
        /// Why; the audit log records it.
        #[arg(long)]
        reason: String,
        /// For `restart`: ask again after this many days (default: now).
        #[arg(long)]
        after_days: Option<u32>,
        #[command(flatten)]
        now: NowArg,
    },

    /// Let the scheduler take up a case again whose last step failed (after the
    /// policy was fixed, say). The error stays in the audit log.
    Clear {
        /// The tenant's id.
        tenant: String,
        /// The contact's id (the CRM's external_id).
        contact: String,
        /// The purpose of the case (default: contact-data).
        #[arg(long, default_value = "contact-data")]
        purpose: String,
        /// Who decided (name or login); the audit log records it.
        #[arg(long)]
        by: String,
        /// Why; the audit log records it.
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        now: NowArg,
    },

    /// Approve a pending cleanup (the second pair of eyes).
    Approve {
        /// The tenant's id.
        tenant: String,
        /// The contact's id (the CRM's external_id).
        contact: String,
        /// The purpose of the case (default: contact-data).
        #[arg(long, default_value = "contact-data")]
        purpose: String,
        /// Who approves; must not be the person who asked for the cleanup.
        #[arg(long)]
        by: String,
        #[command(flatten)]
        now: NowArg,
    },

    /// Put a legal hold on a contact's cases, or lift it.
    Hold {
        /// The tenant's id.
        tenant: String,
        /// The contact's id (the CRM's external_id).
        contact: String,
        /// on places the hold, off lifts it.
        #[arg(value_enum)]
        switch: OnOff,
        /// Who decided (name or login); the audit log records it.
        #[arg(long)]
        by: String,
        /// Why; the audit log records it.
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        now: NowArg,
    },

    /// The contact withdrew consent (all purposes unless --purpose).
    Withdraw {
        /// The tenant's id.
        tenant: String,
        /// The contact's id (the CRM's external_id).
        contact: String,
        /// Only this purpose (default: every purpose of the contact).
        #[arg(long)]
        purpose: Option<String>,
        #[command(flatten)]
        now: NowArg,
    },

    /// The CRM used the contact for a purpose.
    Used {
        /// The tenant's id.
        tenant: String,
        /// The contact's id (the CRM's external_id).
        contact: String,
        /// The purpose the contact was used for (default: contact-data).
        #[arg(long, default_value = "contact-data")]
        purpose: String,
        #[command(flatten)]
        now: NowArg,
    },

    /// The cockpit: cases per band and state, overdue cases, decisions waiting
    /// per person, deadlines in the next 7 days, pending cleanups.
    Status {
        /// The tenant's id.
        tenant: String,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        now: NowArg,
    },

    /// List cases.
    Cases {
        /// The tenant's id.
        tenant: String,
        /// Only cases in this state (consented, other-basis, unclarified,
        /// requested, awaiting-decision, paused, refused, withdrawn,
        /// cleanup-pending, purged).
        #[arg(long)]
        state: Option<crate::plugin::State>,
        /// Only cases in this band: usable, to-clarify or removed.
        #[arg(long)]
        band: Option<crate::plugin::Band>,
        /// The contact's owner.
        #[arg(long)]
        owner: Option<String>,
        /// Only cases whose next step is overdue.
        #[arg(long)]
        overdue: bool,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        now: NowArg,
    },

    /// Audit log: a contact's rows in plain words, or verify the hash chain.
    #[command(subcommand)]
    Audit(AuditCommand),

    /// Record a contact's answer given through their personal link (what the
    /// response page does). Exit 1 for an unknown, used or expired link.
    Respond {
        /// The link's token, as the outbox action `send-request` carries it.
        token: String,
        /// accept or refuse: the answer to every purpose the link still asks about.
        #[arg(value_enum)]
        answer: AnswerArg,
        /// The contact's IP address, for the evidence.
        #[arg(long)]
        ip: Option<std::net::IpAddr>,
        /// The contact's browser, for the evidence.
        #[arg(long)]
        user_agent: Option<String>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        now: NowArg,
    },

    /// Actions waiting for the CRM: requests to send (with their links), tasks,
    /// cleanups.
    Outbox {
        /// The tenant's id.
        tenant: String,
        /// Only this contact's actions.
        #[arg(long)]
        contact: Option<String>,
        /// Include acknowledged actions.
        #[arg(long)]
        all: bool,
        /// Only the actions klar gave up delivering (by webhook or mail), with
        /// the last error.
        #[arg(long, conflicts_with = "all")]
        parked: bool,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },

    /// Prints the HTTP API's OpenAPI 3 document (as `klar serve` serves it at
    /// /v1/openapi.json), e.g. to generate a client.
    Openapi,

    /// Puts parked deliveries (webhook or mail) back in the queue, e.g. after
    /// the receiver or the mail relay is fixed; `klar serve` sends them again.
    Redeliver {
        /// The tenant's id.
        tenant: String,
        /// Only this action (its id from `klar outbox --parked`).
        #[arg(long)]
        id: Option<String>,
        #[command(flatten)]
        now: NowArg,
    },

    /// A dry run: a policy (default: the active one) on a copy of the tenant's
    /// cases through N simulated days, with a weekly forecast. The live
    /// database is not changed.
    Simulate {
        /// The tenant's id.
        tenant: String,
        /// The candidate policy (checked and tested first).
        #[arg(long, value_name = "FILE")]
        policy: Option<PathBuf>,
        /// How many days to simulate.
        #[arg(long)]
        days: u32,
        /// The chance that a contact answers a given request.
        #[arg(long, default_value_t = 0.3)]
        answer_rate: f64,
        /// The chance that an answer is a refusal.
        #[arg(long, default_value_t = 0.2)]
        refuse_rate: f64,
        /// The seed of the simulated answers: the same seed gives the same forecast.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Also run this stored version and list the contacts it treats differently.
        #[arg(long, value_name = "VERSION")]
        against: Option<i64>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// The first simulated day (default: now).
        #[command(flatten)]
        now: NowArg,
    },

    /// Why a contact's cases are where they are: each step in order, in plain
    /// words, with the policy version that decided it and what each hook answered.
    Explain {
        /// The tenant's id.
        tenant: String,
        /// The contact's id (the CRM's external_id).
        contact: String,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },

    /// Evidence: export what klar can prove about a contact.
    #[command(subcommand)]
    Evidence(EvidenceCommand),

    /// Step every due case of every tenant through its active policy (the
    /// built-in rules/default.rhai where none was set).
    Tick {
        /// Cases per call into the plugin.
        #[arg(long, default_value_t = 500)]
        batch: usize,
        #[command(flatten)]
        now: NowArg,
    },

    /// Import contacts from CSV. The whole file is checked first; if any row is
    /// bad, nothing is imported (unless --skip-invalid). Re-importing updates
    /// contacts by external_id.
    Import {
        /// The tenant's id.
        tenant: String,
        /// The CSV file (UTF-8, with a header line).
        file: PathBuf,
        /// Import the good rows even if some are bad.
        #[arg(long)]
        skip_invalid: bool,
        #[command(flatten)]
        now: NowArg,
    },

    /// Run a demo: a tenant with N contacts (German and international names)
    /// taken through D simulated days with seeded answers, owners' decisions,
    /// legal holds and cleanups; prints the cockpit and leaves the database
    /// (--db) for exploring. An earlier demo database is replaced; a database
    /// with other tenants is refused.
    Demo {
        /// How many contacts to import.
        #[arg(long, default_value_t = 1000)]
        contacts: usize,
        /// How many days to simulate.
        #[arg(long, default_value_t = 120)]
        days: u32,
        /// The seed of the simulated people: the same seed and --now give the same demo.
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// The end of the simulated time (default: now).
        #[command(flatten)]
        now: NowArg,
    },

    /// Serve the CRM API (/v1), the contacts' response page (/r/TOKEN) and
    /// /health, and run `tick` in the background. Stops on SIGINT/SIGTERM after
    /// the requests in flight.
    Serve {
        /// Address to listen on (default 127.0.0.1:8080; also KLAR_ADDR).
        #[arg(long)]
        addr: Option<String>,
        /// A TOML file with `addr`, `tick_seconds`, `public_url`.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// Seconds between background ticks; 0 turns them off (default 60).
        #[arg(long)]
        tick_seconds: Option<u64>,
        /// A fixed clock instead of the system's (tests and demos).
        #[command(flatten)]
        now: NowArg,
    },

    /// Where `klar serve` POSTs the outbox (signed, retried, parked after
    /// repeated failures).
    #[command(subcommand)]
    Webhook(WebhookCommand),

    /// API keys for the CRM API: shown once, stored hashed.
    #[command(subcommand)]
    Apikey(ApikeyCommand),

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
    Bench(crate::bench::BenchCli),
}

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Check a policy: syntax, hook parameters, return types (each hook is run
    /// once on a sample contact), limits, and misspelt hook names. Exit code 1
    /// if there is any error; warnings alone pass.
    Check {
        /// The policy file (rhai).
        file: PathBuf,
        /// Print the diagnostics as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Run a policy's table-style tests (TOML; default: the file next to the
    /// policy, `NAME.tests.toml`). Exit 1 if the check or any test fails.
    Test {
        /// The policy file (rhai).
        file: PathBuf,
        /// Test files (default: NAME.tests.toml next to the policy).
        tests: Vec<PathBuf>,
    },
    /// A tenant's policy versions, newest first.
    Log {
        /// The tenant's id.
        tenant: String,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Print a policy version's text (default: the active one).
    Show {
        /// The tenant's id.
        tenant: String,
        /// The version number (default: the active one).
        version: Option<i64>,
    },
    /// What changed between two versions, as a unified diff.
    Diff {
        /// The tenant's id.
        tenant: String,
        /// The older version number.
        from: i64,
        /// The newer version number.
        to: i64,
    },
    /// Make an old version's text active again, as a new version (checked,
    /// tested and tried on the tenant's contacts like `set`).
    Rollback {
        /// The tenant's id.
        tenant: String,
        /// The version whose text becomes active again.
        version: i64,
        /// Who rolled back.
        #[arg(long, default_value = "unknown")]
        author: String,
        /// Why.
        #[arg(long, default_value = "")]
        message: String,
        #[command(flatten)]
        untested: UntestedArg,
        #[command(flatten)]
        now: NowArg,
    },
    /// Check a policy, run its tests (NAME.tests.toml next to it, if any), run
    /// every hook for the tenant's contacts (all, or a sample of at least
    /// 10,000) and make it the tenant's active version. A policy with errors,
    /// a failing test or an error for any contact is never stored; there is no
    /// way to force it. A policy without tests replaces a tested one only with
    /// --untested --reason.
    Set {
        /// The tenant's id.
        tenant: String,
        /// The policy file (rhai).
        file: PathBuf,
        /// Who changed the policy.
        #[arg(long, default_value = "unknown")]
        author: String,
        /// Why.
        #[arg(long, default_value = "")]
        message: String,
        #[command(flatten)]
        untested: UntestedArg,
        #[command(flatten)]
        now: NowArg,
    },
}

/// `--untested --reason TEXT`: a policy without tests replaces a tested one.
#[derive(Debug, Clone, clap::Args)]
pub struct UntestedArg {
    /// Activate a policy without tests over a tested one; needs --reason,
    /// which the audit log records.
    #[arg(long, requires = "reason")]
    pub untested: bool,
    /// Why the policy goes live without tests.
    #[arg(long, requires = "untested")]
    pub reason: Option<String>,
}

impl UntestedArg {
    fn reason(&self) -> Option<&str> {
        self.reason.as_deref().filter(|_| self.untested)
    }
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum DecideAction {
    Manual,
    Restart,
    Cleanup,
    OtherBasis,
    Keep,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OnOff {
    On,
    Off,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum AnswerArg {
    Accept,
    Refuse,
}

#[derive(Debug, Subcommand)]
pub enum WebhookCommand {
    /// Set the tenant's URL; prints the new signing secret once.
    Set {
        /// The tenant's id.
        tenant: String,
        /// The receiver's URL (https:// or http://).
        url: String,
        #[command(flatten)]
        now: NowArg,
    },
    /// Stop delivering by webhook (the outbox can still be polled).
    Remove {
        /// The tenant's id.
        tenant: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum ApikeyCommand {
    /// Create a key for a tenant; it is printed once and only its hash is kept.
    Create {
        /// The tenant's id.
        tenant: String,
        /// What the key is for, e.g. crm.
        #[arg(long)]
        name: String,
        #[command(flatten)]
        now: NowArg,
    },
    /// Revoke a key by its id (see `list`).
    Revoke {
        /// The tenant's id.
        tenant: String,
        /// The key's id, as `klar apikey list` shows it.
        id: String,
        #[command(flatten)]
        now: NowArg,
    },
    /// The tenant's keys (never the secrets).
    List {
        /// The tenant's id.
        tenant: String,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum EvidenceCommand {
    /// One JSON proof bundle: the contact, every request and reminder, the
    /// answers with their evidence, decisions, policy versions, and the audit
    /// rows with the chain hashes to verify them.
    Export {
        /// The tenant's id.
        tenant: String,
        /// The contact's id (the CRM's external_id).
        contact: String,
        /// Write the bundle here instead of standard output.
        #[arg(long, short)]
        output: Option<PathBuf>,
        #[command(flatten)]
        now: NowArg,
    },
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// A contact's audit rows, oldest first, in plain words.
    Show {
        /// The tenant's id.
        tenant: String,
        /// The contact's id (the CRM's external_id).
        contact: String,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Check every tenant's (or one tenant's) audit chain; exit 1 and name each
    /// changed, deleted or re-linked row if it is broken.
    Verify {
        /// Only this tenant (default: every tenant).
        tenant: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum TenantCommand {
    /// Add a tenant; it gets the purpose `contact-data`.
    Add {
        /// The new tenant's id: lower-case letters, digits and hyphens.
        id: String,
        /// The company's name, as contacts read it in requests.
        #[arg(long)]
        name: String,
        /// IANA time zone; deadlines count on its calendar.
        #[arg(long, default_value = "Europe/Berlin")]
        timezone: String,
        /// The language of the company's texts (de or en).
        #[arg(long, default_value = "de")]
        locale: String,
        /// Check this policy and make it version 1.
        #[arg(long, value_name = "FILE")]
        policy: Option<PathBuf>,
        #[command(flatten)]
        now: NowArg,
    },
}

#[derive(Debug, Subcommand)]
pub enum PurposeCommand {
    /// Add a purpose, e.g. `newsletter`.
    Add {
        /// The tenant's id.
        tenant: String,
        /// The purpose's id, e.g. newsletter.
        id: String,
        /// What the purpose is, in words a contact understands; the standard consent text names it.
        #[arg(long)]
        description: String,
        #[command(flatten)]
        now: NowArg,
    },
}

/// `--now`: the time to record (default: the system clock). Tests and demos
/// pass it so that everything replays.
#[derive(Debug, Clone, clap::Args)]
pub struct NowArg {
    /// Act at this time instead of the system clock's (RFC 3339, e.g.
    /// 2026-12-01T09:00:00+01:00), so that tests and demos replay.
    #[arg(long = "now", value_name = "RFC3339")]
    pub now: Option<String>,
}

impl NowArg {
    pub fn resolve(&self) -> Result<DateTime<Utc>> {
        match &self.now {
            None => Ok(Utc::now()),
            Some(text) => parse_time(text),
        }
    }
}

fn parse_time(text: &str) -> Result<DateTime<Utc>> {
    Ok(DateTime::parse_from_rfc3339(text)
        .with_context(|| format!("--now {text:?} is not an RFC 3339 time"))?
        .with_timezone(&Utc))
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
    match command {
        Command::Init => init(&db),
        Command::Tenant(TenantCommand::Add {
            id,
            name,
            timezone,
            locale,
            policy,
            now,
        }) => tenant_add(
            plugin,
            &db,
            &id,
            &name,
            &timezone,
            &locale,
            policy.as_deref(),
            &now,
        ),
        Command::Purpose(PurposeCommand::Add {
            tenant,
            id,
            description,
            now,
        }) => purpose_add(&db, &tenant, &id, &description, &now),
        Command::Tick { batch, now } => tick(plugin, &db, batch, &now),
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
            let kind = match action {
                DecideAction::Manual => DecisionKind::Manual,
                DecideAction::Restart => DecisionKind::Restart,
                DecideAction::Cleanup => DecisionKind::Cleanup,
                DecideAction::OtherBasis => DecisionKind::OtherBasis,
                DecideAction::Keep => DecisionKind::Keep,
            };
            let event = Event::ManualDecision(Decision {
                kind,
                by,
                reason,
                after_days,
                mode: None,
            });
            case_event(plugin, &db, &tenant, &contact, Some(&purpose), event, &now)
        }
        Command::Approve {
            tenant,
            contact,
            purpose,
            by,
            now,
        } => case_event(
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
            case_event(plugin, &db, &tenant, &contact, None, event, &now)
        }
        Command::Withdraw {
            tenant,
            contact,
            purpose,
            now,
        } => case_event(
            plugin,
            &db,
            &tenant,
            &contact,
            purpose.as_deref(),
            Event::Withdraw,
            &now,
        ),
        Command::Used {
            tenant,
            contact,
            purpose,
            now,
        } => case_event(
            plugin,
            &db,
            &tenant,
            &contact,
            Some(&purpose),
            Event::Used,
            &now,
        ),
        Command::Audit(AuditCommand::Verify { tenant }) => audit_verify(&db, tenant.as_deref()),
        Command::Clear {
            tenant,
            contact,
            purpose,
            by,
            reason,
            now,
        } => {
            let now = now.resolve()?.timestamp();
            let mut store = open_store(&db)?;
            let tenant = tenants::require(store.connection(), &tenant)?;
            let cleared = crate::scheduler::clear_attention(
                &mut store,
                &tenant.id,
                (&contact, &purpose),
                &by,
                &reason,
                now,
            )?;
            if cleared {
                println!("{contact} {purpose}: cleared; the next tick takes it up again");
                Ok(ExitCode::SUCCESS)
            } else {
                println!("{contact} {purpose}: nothing to clear (no failed step on record)");
                Ok(ExitCode::from(1))
            }
        }
        Command::Audit(AuditCommand::Show {
            tenant,
            contact,
            json,
        }) => proof::audit_show(&db, &tenant, &contact, json),
        Command::Respond {
            token,
            answer,
            ip,
            user_agent,
            json,
            now,
        } => {
            let answer = match answer {
                AnswerArg::Accept => crate::plugin::Answer::Accept,
                AnswerArg::Refuse => crate::plugin::Answer::Refuse,
            };
            let origin = crate::respond::Origin { ip, user_agent };
            proof::respond(plugin, &db, &token, answer, &origin, json, &now)
        }
        Command::Outbox {
            tenant,
            contact,
            all,
            parked,
            json,
        } => proof::outbox(&db, &tenant, contact.as_deref(), all, parked, json),
        Command::Openapi => {
            println!("{}", crate::serve::openapi_json());
            Ok(ExitCode::SUCCESS)
        }
        Command::Redeliver { tenant, id, now } => {
            proof::redeliver(&db, &tenant, id.as_deref(), &now)
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
            let options = crate::simulate::Options {
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
            let flags = crate::serve::config::Flags {
                addr,
                db: db.clone(),
                config,
                tick_seconds,
                now: match &now.now {
                    Some(_) => Some(now.resolve()?),
                    None => None,
                },
            };
            let config = crate::serve::Config::load(&flags, |k| std::env::var(k).ok())?;
            // Refused before the plugin loads: a mistyped --db is not served
            // as a new, empty database.
            drop(open_store(&config.db)?);
            crate::serve::run(config, load_plugin(plugin)?)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Apikey(command) => proof::apikey(&db, command),
        Command::Webhook(command) => proof::webhook(&db, command),
        Command::Explain {
            tenant,
            contact,
            json,
        } => {
            let store = open_store(&db)?;
            let tenant = tenants::require(store.connection(), &tenant)?;
            let decisions = crate::explain::explain(store.connection(), &tenant.id, &contact)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&decisions)?);
            } else {
                print!(
                    "{}",
                    crate::explain::render(&contact, &decisions, tenant.timezone)
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Evidence(EvidenceCommand::Export {
            tenant,
            contact,
            output,
            now,
        }) => proof::evidence_export(&db, &tenant, &contact, output.as_deref(), &now),
        Command::Status { tenant, json, now } => status(&db, &tenant, json, &now),
        Command::Cases {
            tenant,
            state,
            band,
            owner,
            overdue,
            json,
            now,
        } => {
            let filter = crate::store::report::CaseFilter {
                state,
                band,
                owner,
                overdue,
                ..Default::default()
            };
            cases(&db, &tenant, &filter, json, &now)
        }
        Command::Import {
            tenant,
            file,
            skip_invalid,
            now,
        } => import(&db, &tenant, &file, skip_invalid, &now),
        Command::Policy(PolicyCommand::Set {
            tenant,
            file,
            author,
            message,
            untested,
            now,
        }) => policy_set(
            plugin,
            &db,
            &tenant,
            &file,
            (&author, &message),
            untested.reason(),
            &now,
        ),
        Command::Policy(PolicyCommand::Check { file, json }) => policy_check(plugin, &file, json),
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
        Command::Step(args) => step(plugin, &args),
        Command::Demo {
            contacts,
            days,
            seed,
            now,
        } => demo(plugin, &db, contacts, days, seed, &now),
        Command::Plugin { json } => plugin_info(plugin, json),
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
    let now = parse_time(&args.now)?;
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

/// The database of every command but `init` and `demo`: it must exist.
pub(crate) fn open_store(db: &Path) -> Result<Store> {
    Ok(Store::open_existing(db)?)
}

/// `klar init`
fn init(db: &Path) -> Result<ExitCode> {
    let store = Store::open(db)?;
    println!(
        "{}: ready (schema version {})",
        db.display(),
        store.schema_version()?
    );
    Ok(ExitCode::SUCCESS)
}

fn print_active(tenant: &str, version: &crate::store::tenants::PolicyVersion) {
    println!(
        "{tenant}: policy version {} is active (sha256 {})",
        version.version,
        &version.sha256[..12.min(version.sha256.len())]
    );
}

/// `klar tenant add`
#[allow(clippy::too_many_arguments)] // One per flag of the command.
fn tenant_add(
    plugin: Option<&Path>,
    db: &Path,
    id: &str,
    name: &str,
    timezone: &str,
    locale: &str,
    policy: Option<&Path>,
    now: &NowArg,
) -> Result<ExitCode> {
    let now = now.resolve()?.timestamp();
    let checked = match policy {
        None => None,
        Some(file) => match policy::checked_and_tested(plugin, file, &[])? {
            Some(checked) => Some((file, checked)),
            None => {
                println!("{}: has errors; the tenant was not added", file.display());
                return Ok(ExitCode::from(1));
            }
        },
    };
    let mut store = open_store(db)?;
    store.transaction(|tx| -> Result<()> {
        tenants::add(tx, id, name, timezone, locale, now)?;
        println!("added tenant {id} ({name}, {timezone})");
        Ok(())
    })?;
    // A new tenant has no contacts and no tested version yet, so the rules
    // of activation let any checked policy through; they run all the same,
    // so that the version is stored and audited like any other.
    if let Some((file, checked)) = checked {
        let tests = checked.stored_tests().map(str::to_owned);
        let policy::Checked {
            source,
            mut session,
            ..
        } = checked;
        let candidate = crate::activation::Candidate {
            source: &source,
            tests: tests.as_deref(),
            author: "klar tenant add",
            message: "initial policy",
            untested_reason: None,
        };
        let shown = file.display().to_string();
        match policy::activate_and_report(&mut store, &mut session, id, &candidate, now, &shown)? {
            Some(version) => print_active(id, &version),
            None => return Ok(ExitCode::from(1)),
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `klar purpose add`
fn purpose_add(
    db: &Path,
    tenant: &str,
    id: &str,
    description: &str,
    now: &NowArg,
) -> Result<ExitCode> {
    let now = now.resolve()?.timestamp();
    let mut store = open_store(db)?;
    store.transaction(|tx| tenants::add_purpose(tx, tenant, id, description, now))?;
    println!("{tenant}: added purpose {id}");
    Ok(ExitCode::SUCCESS)
}

/// `klar policy set`
fn policy_set(
    plugin: Option<&Path>,
    db: &Path,
    tenant: &str,
    file: &Path,
    (author, message): (&str, &str),
    untested_reason: Option<&str>,
    now: &NowArg,
) -> Result<ExitCode> {
    let now = now.resolve()?.timestamp();
    let mut store = open_store(db)?;
    // An unknown tenant is reported before the (slower) policy check.
    tenants::require(store.connection(), tenant)?;
    let Some(checked) = policy::checked_and_tested(plugin, file, &[])? else {
        println!(
            "{}: has errors or failing tests; the active policy of {tenant} is unchanged",
            file.display()
        );
        return Ok(ExitCode::from(1));
    };
    let tests = checked.stored_tests().map(str::to_owned);
    if untested_reason.is_some() && tests.is_some() {
        println!(
            "{}: its tests passed, so --untested is not needed and is ignored",
            file.display()
        );
    }
    let policy::Checked {
        source,
        mut session,
        ..
    } = checked;
    let candidate = crate::activation::Candidate {
        source: &source,
        tests: tests.as_deref(),
        author,
        message,
        untested_reason,
    };
    let shown = file.display().to_string();
    match policy::activate_and_report(&mut store, &mut session, tenant, &candidate, now, &shown)? {
        Some(version) => {
            print_active(tenant, &version);
            Ok(ExitCode::SUCCESS)
        }
        None => Ok(ExitCode::from(1)),
    }
}

/// `klar import`
fn import(
    db: &Path,
    tenant: &str,
    file: &Path,
    skip_invalid: bool,
    now: &NowArg,
) -> Result<ExitCode> {
    let now = now.resolve()?;
    let bytes =
        std::fs::read(file).with_context(|| format!("failed to read {}", file.display()))?;
    let mut store = open_store(db)?;
    let tenant_row = tenants::require(store.connection(), tenant)?;
    let mut parsed = crate::import::parse(&bytes, &tenant_row.locale, now)
        .with_context(|| format!("{}: cannot import", file.display()))?;
    crate::import::check_erased(store.connection(), tenant, &mut parsed)?;
    let name = file.display();
    for problem in &parsed.problems {
        println!("{name}:{}: {}", problem.line, problem.message);
    }
    let bad_lines = {
        let mut lines: Vec<u64> = parsed.problems.iter().map(|p| p.line).collect();
        lines.dedup();
        lines.len()
    };
    if bad_lines > 0 && !skip_invalid {
        println!(
            "{name}: nothing was imported: {bad_lines} row(s) have problems; fix them, or import the others with --skip-invalid"
        );
        return Ok(ExitCode::from(1));
    }

    let progress = if std::io::stderr().is_terminal() {
        indicatif::ProgressBar::new(parsed.contacts.len() as u64)
    } else {
        indicatif::ProgressBar::hidden()
    };
    let counts = crate::import::store(&mut store, tenant, &parsed, now.timestamp(), &progress)?;
    progress.finish_and_clear();
    println!(
        "{name}: {} added, {} updated, {} unchanged; {} case(s) opened{}",
        counts.added,
        counts.updated,
        counts.unchanged,
        counts.opened,
        if bad_lines > 0 {
            format!("; {bad_lines} bad row(s) skipped")
        } else {
            String::new()
        }
    );
    Ok(ExitCode::SUCCESS)
}

/// `klar decide|approve|hold|withdraw|used`: one event for a contact's case
/// (or all its cases when `purpose` is `None`).
fn case_event(
    plugin: Option<&Path>,
    db: &Path,
    tenant: &str,
    contact: &str,
    purpose: Option<&str>,
    event: Event,
    now: &NowArg,
) -> Result<ExitCode> {
    let now = now.resolve()?;
    let mut store = open_store(db)?;
    let tenant = tenants::require(store.connection(), tenant)?;
    let purposes: Vec<String> = match purpose {
        Some(p) => vec![p.to_owned()],
        None => tenants::purposes(store.connection(), &tenant.id)?
            .into_iter()
            .map(|(id, _)| id)
            .collect(),
    };
    let plugin = load_plugin(plugin)?;
    let (mut session, sha256) = crate::scheduler::tenant_session(&store, &plugin, &tenant)?;
    let mut code = ExitCode::SUCCESS;
    for purpose in purposes {
        match crate::scheduler::step_event(
            &mut store,
            &mut session,
            &tenant,
            &sha256,
            contact,
            &purpose,
            event.clone(),
            now,
        ) {
            Ok(outcome) => {
                let state = outcome.case.state;
                match event {
                    Event::HoldOn { .. } => println!(
                        "{contact} {purpose}: legal hold placed (state {state}); nothing is cleaned up while it lasts"
                    ),
                    Event::HoldOff { .. } => {
                        println!("{contact} {purpose}: legal hold lifted (state {state})")
                    }
                    _ => println!("{contact} {purpose}: {state}"),
                }
            }
            Err(err) => {
                println!("{contact} {purpose}: {err}");
                code = ExitCode::from(1);
            }
        }
    }
    Ok(code)
}

/// `klar audit verify`
fn audit_verify(db: &Path, tenant: Option<&str>) -> Result<ExitCode> {
    let store = open_store(db)?;
    let ids: Vec<String> = match tenant {
        Some(id) => vec![tenants::require(store.connection(), id)?.id],
        None => tenants::list(store.connection())?
            .into_iter()
            .map(|t| t.id)
            .collect(),
    };
    let mut broken = false;
    for id in ids {
        let problems = crate::store::audit::verify(store.connection(), &id)?;
        if problems.is_empty() {
            println!("{id}: audit chain intact");
        }
        for problem in problems {
            broken = true;
            println!("{id}: {problem}");
        }
    }
    Ok(if broken {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// `klar tick`
fn tick(plugin: Option<&Path>, db: &Path, batch: usize, now: &NowArg) -> Result<ExitCode> {
    let now = now.resolve()?;
    let mut store = open_store(db)?;
    let plugin = load_plugin(plugin)?;
    for (tenant, r) in crate::scheduler::tick_all(&mut store, &plugin, now, batch)? {
        // Deferred requests are named only when there are some, so that the
        // usual line stays as it was.
        let deferred = if r.deferred > 0 {
            format!(", {} deferred", r.deferred)
        } else {
            String::new()
        };
        println!(
            "{tenant}: {} due, {} changed, {} failed, {} action(s) queued{deferred}",
            r.due, r.changed, r.failed, r.actions
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `klar demo`
fn demo(
    plugin: Option<&Path>,
    db: &Path,
    contacts: usize,
    days: u32,
    seed: u64,
    now: &NowArg,
) -> Result<ExitCode> {
    // Whole seconds: the end is printed as a `--now` to type in again.
    let end = now.resolve()?.trunc_subsecs(0);
    crate::demo::prepare_database(db)?;
    let mut store = Store::open(db)?;
    let plugin = load_plugin(plugin)?;
    let progress = if std::io::stderr().is_terminal() {
        indicatif::ProgressBar::new(u64::from(days) + 1).with_message("simulated days")
    } else {
        indicatif::ProgressBar::hidden()
    };
    let options = crate::demo::Options {
        contacts,
        days,
        seed,
        end,
    };
    let started = std::time::Instant::now();
    let summary = crate::demo::run(&mut store, &plugin, &options, &progress)?;
    progress.finish_and_clear();
    let tz = tenants::require(store.connection(), crate::demo::TENANT)?.timezone;
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
    status(db, crate::demo::TENANT, false, &at)?;
    println!();
    let code = audit_verify(db, Some(crate::demo::TENANT))?;
    let shown = db.display();
    println!();
    println!("explore it:");
    println!(
        "  klar --db {shown} cases demo --state awaiting-decision --now {}",
        end.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    );
    println!("  klar --db {shown} audit show demo C00001");
    println!("  klar --db {shown} evidence export demo C00001");
    Ok(code)
}

/// `klar status`
fn status(db: &Path, tenant: &str, json: bool, now: &NowArg) -> Result<ExitCode> {
    let now = now.resolve()?.timestamp();
    let store = open_store(db)?;
    tenants::require(store.connection(), tenant)?;
    let s = crate::store::report::status(store.connection(), tenant, now)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&s)?);
        return Ok(ExitCode::SUCCESS);
    }
    let total: i64 = s.bands.values().sum();
    println!("{tenant}: {total} case(s)");
    for band in crate::plugin::Band::ALL {
        let detail: Vec<String> = band
            .states()
            .map(|st| {
                let n = s.states.get(st.as_str()).copied().unwrap_or(0);
                format!("{st} {n}")
            })
            .collect();
        println!(
            "  {:<11} {:>7}   {}",
            band.as_str().replace('-', " "),
            s.bands.get(band.as_str()).copied().unwrap_or(0),
            detail.join(", ")
        );
    }
    println!(
        "overdue: {}   due in the next 7 days: {}   cleanup pending: {}   needs attention: {}",
        s.overdue, s.due_next_7_days, s.cleanup_pending, s.needs_attention
    );
    if s.delivery_parked > 0 {
        println!(
            "deliveries parked after repeated failures: {} (see `klar outbox --parked`; `klar redeliver` retries)",
            s.delivery_parked
        );
    }
    for a in &s.attention {
        println!(
            "  needs attention: {} {}: {}",
            a.contact, a.purpose, a.error
        );
    }
    if s.needs_attention > s.attention.len() as i64 {
        println!(
            "  … and {} more (klar cases {tenant} --json lists them all)",
            s.needs_attention - s.attention.len() as i64
        );
    }
    if s.awaiting_decision_by_owner.is_empty() {
        println!("awaiting a decision: nobody");
    } else {
        let waiting: Vec<String> = s
            .awaiting_decision_by_owner
            .iter()
            .map(|(owner, n)| format!("{owner} {n}"))
            .collect();
        println!("awaiting a decision: {}", waiting.join(", "));
    }
    Ok(ExitCode::SUCCESS)
}

/// `klar cases`
fn cases(
    db: &Path,
    tenant: &str,
    filter: &crate::store::report::CaseFilter,
    json: bool,
    now: &NowArg,
) -> Result<ExitCode> {
    let now = now.resolve()?.timestamp();
    let store = open_store(db)?;
    let tz = tenants::require(store.connection(), tenant)?.timezone;
    let lines = crate::store::report::cases(store.connection(), tenant, filter, now)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&lines)?);
        return Ok(ExitCode::SUCCESS);
    }
    let header = [
        "contact",
        "purpose",
        "state",
        "owner",
        "reminders",
        "next due",
        "attention",
    ];
    println!(
        "{:<14} {:<16} {:<18} {:<10} {:>9}  {:<26} {}",
        header[0], header[1], header[2], header[3], header[4], header[5], header[6]
    );
    for l in &lines {
        println!(
            "{:<14} {:<16} {:<18} {:<10} {:>9}  {:<26} {}",
            l.contact,
            l.purpose,
            l.state,
            l.owner,
            l.reminders_sent,
            l.next_due_at
                .as_deref()
                .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                .map_or_else(
                    || "-".to_owned(),
                    |t| crate::times::local(t.with_timezone(&Utc), tz)
                ),
            l.needs_attention.as_deref().unwrap_or("")
        );
    }
    println!("{} case(s)", lines.len());
    Ok(ExitCode::SUCCESS)
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
