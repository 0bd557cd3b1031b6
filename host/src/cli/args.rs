//! The command line as clap parses it: every command, flag and argument
//! with its help text. The functions that carry the commands out live in the
//! other files of `cli/`.

use std::path::PathBuf;

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use clap::{Parser, Subcommand};

/// klar runs the consent process for CRM contacts: ask, remind, record the
/// answer with evidence, let a person decide, clean up.
#[derive(Debug, Parser)]
#[command(name = "klar", version, about)]
pub struct Cli {
    /// Use this consent-process plugin (a WebAssembly component) instead of the
    /// built-in one.
    #[arg(long, global = true, value_name = "FILE.wasm")]
    pub plugin: Option<PathBuf>,

    /// The store: a SQLite file (default `klar.db`; `klar serve` reads `db`
    /// from its config file first) or a PostgreSQL URL,
    /// `postgres://user@host:port/database`.
    #[arg(long, global = true, env = "KLAR_DB", value_name = "FILE|URL")]
    pub db: Option<crate::store::Location>,

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

    /// The consent texts the company's legal team writes, per purpose and
    /// language, in versions.
    #[command(subcommand)]
    Text(TextCommand),

    /// A tenant's own mail and page templates (minijinja) in place of klar's:
    /// mail.txt, mail.html, confirmation.txt, confirmation.html, response.html.
    #[command(subcommand)]
    Template(TemplateCommand),

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

    /// The contact objected to the use of their data (Art. 21 GDPR), for
    /// every purpose unless --purpose. Final: no policy or person can
    /// make the case usable again; only the contact's own consent can.
    Object {
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
        #[arg(long, conflicts_with = "csv")]
        json: bool,
        /// Print CSV for German Excel (semicolons, UTF-8 with a byte-order
        /// mark, local times Excel reads as dates): `klar cases T --csv > cases.csv`.
        #[arg(long)]
        csv: bool,
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
        /// The file, with a header line: CSV (separated by commas,
        /// semicolons or tabs; UTF-8 or Windows-1252, as Excel saves it) or
        /// an Excel workbook (.xlsx).
        file: PathBuf,
        /// Import the good rows even if some are bad.
        #[arg(long)]
        skip_invalid: bool,
        #[command(flatten)]
        file_format: FileFormatArgs,
        #[command(flatten)]
        now: NowArg,
    },

    /// Check a mailing list before a campaign: which contacts may be used
    /// for the purpose, each with its reason. Writes the usable rows (with
    /// --all: every row, with "Nutzbar" and "Grund") as CSV for German
    /// Excel. The check is audited with the list's SHA-256, not its ids.
    Usable {
        /// The tenant's id.
        tenant: String,
        /// The purpose the campaign is for.
        #[arg(long, default_value = "contact-data")]
        purpose: String,
        /// The list, with a header line: CSV (commas, semicolons or tabs;
        /// UTF-8 or Windows-1252) or .xlsx. Without it: ids one per line on
        /// standard input.
        #[arg(long, value_name = "FILE")]
        csv: Option<PathBuf>,
        /// The column of contact ids (default: external_id, id, contact,
        /// Kontakt or Kundennummer; or the only column).
        #[arg(long)]
        column: Option<String>,
        #[command(flatten)]
        file_format: FileFormatArgs,
        /// Write the CSV here (default: standard output).
        #[arg(short = 'o', long, value_name = "FILE")]
        output: Option<PathBuf>,
        /// Every row with its answer, not only the usable ones.
        #[arg(long)]
        all: bool,
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
        /// A TOML file with `addr`, `tick_seconds`, `public_url`, delivery
        /// and SMTP settings (see the README).
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

    /// The cockpit's accounts: people who sign in with a password and act
    /// by their roles (viewer, owner, approver, admin).
    #[command(subcommand)]
    User(UserCommand),

    /// Mail the weekly digests that are due now (from Monday 07:00, once a
    /// week per person), as `klar serve` does by itself; needs `[smtp]`.
    Digest {
        /// The TOML file with `[smtp]` and `public_url` (as for `serve`).
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        #[command(flatten)]
        now: NowArg,
    },

    /// Check and inspect policies.
    #[command(subcommand)]
    Policy(PolicyCommand),

    /// Move a whole store between SQLite and PostgreSQL.
    #[command(subcommand)]
    Store(StoreCommand),

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
pub enum StoreCommand {
    /// Copy everything in one store into another, empty one (a SQLite file
    /// or a PostgreSQL URL each), in one transaction; the audit chains are
    /// verified on both sides.
    Copy {
        /// The store to copy (it is only read).
        #[arg(long, value_name = "FILE|URL")]
        from: crate::store::Location,
        /// The store to copy into: a new file, or an empty PostgreSQL database.
        #[arg(long, value_name = "FILE|URL")]
        to: crate::store::Location,
    },
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
    pub(super) fn reason(&self) -> Option<&str> {
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

impl From<DecideAction> for crate::plugin::DecisionKind {
    fn from(action: DecideAction) -> Self {
        match action {
            DecideAction::Manual => Self::Manual,
            DecideAction::Restart => Self::Restart,
            DecideAction::Cleanup => Self::Cleanup,
            DecideAction::OtherBasis => Self::OtherBasis,
            DecideAction::Keep => Self::Keep,
        }
    }
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

impl From<AnswerArg> for crate::plugin::Answer {
    fn from(answer: AnswerArg) -> Self {
        match answer {
            AnswerArg::Accept => Self::Accept,
            AnswerArg::Refuse => Self::Refuse,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum WebhookCommand {
    /// Set the tenant's URL; prints the new signing secret once. It must
    /// resolve to public addresses, unless the host is allowed by
    /// `webhook_allow_private` (in --config) or KLAR_WEBHOOK_ALLOW_PRIVATE.
    Set {
        /// The tenant's id.
        tenant: String,
        /// The receiver's URL (https:// or http://, without user or password).
        url: String,
        /// The server's klar.toml, whose `webhook_allow_private` applies.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
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
        /// crm (contacts, events, use, cases, outbox) or admin (also keys,
        /// the webhook and the policy).
        #[arg(long, default_value = "crm", value_parser = parse_scope)]
        scope: crate::store::apikeys::Scope,
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
pub enum UserCommand {
    /// Add an account; prints its one-time sign-up link (valid 72 h), where
    /// the person sets a password.
    Add {
        /// The tenant's id.
        tenant: String,
        /// The account's id, e.g. jk: what the person signs in with, and
        /// the name owners carry in the CRM.
        id: String,
        /// The person's name, e.g. "Jana Kühn".
        #[arg(long)]
        name: String,
        /// A role; repeat for several (viewer, owner, approver, admin).
        #[arg(long = "role", required = true, value_parser = parse_role)]
        roles: Vec<crate::store::accounts::Role>,
        /// Where the weekly digest goes.
        #[arg(long)]
        email: Option<String>,
        /// The cockpit's language for this person: de or en.
        #[arg(long, default_value = "de")]
        language: String,
        /// The cockpit's address, for the link (default: KLAR_PUBLIC_URL, or
        /// http://127.0.0.1:8080).
        #[arg(long, env = "KLAR_PUBLIC_URL", value_name = "URL")]
        url: Option<String>,
        #[command(flatten)]
        now: NowArg,
    },
    /// The tenant's accounts and their roles.
    List {
        /// The tenant's id.
        tenant: String,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Replace an account's roles.
    SetRole {
        /// The tenant's id.
        tenant: String,
        /// The account's id.
        id: String,
        /// A role; repeat for several.
        #[arg(long = "role", required = true, value_parser = parse_role)]
        roles: Vec<crate::store::accounts::Role>,
        #[command(flatten)]
        now: NowArg,
    },
    /// Disable an account: its sessions end and it cannot sign in any more.
    Disable {
        /// The tenant's id.
        tenant: String,
        /// The account's id.
        id: String,
        #[command(flatten)]
        now: NowArg,
    },
    /// A new one-time sign-up link (a lost link, a forgotten password);
    /// earlier links stop working.
    Link {
        /// The tenant's id.
        tenant: String,
        /// The account's id.
        id: String,
        /// The cockpit's address (default: KLAR_PUBLIC_URL, or http://127.0.0.1:8080).
        #[arg(long, env = "KLAR_PUBLIC_URL", value_name = "URL")]
        url: Option<String>,
        #[command(flatten)]
        now: NowArg,
    },
}

fn parse_role(text: &str) -> Result<crate::store::accounts::Role, String> {
    text.parse()
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
    /// Every tenant with its name, time zone and language.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// A tenant's settings, purposes and active policy version.
    Show {
        /// The tenant's id.
        tenant: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Change a tenant's settings; what is not given stays. An empty value
    /// ("") clears an optional setting. Audited with before and after.
    Set {
        /// The tenant's id.
        tenant: String,
        #[command(flatten)]
        settings: TenantSettings,
        #[command(flatten)]
        now: NowArg,
    },
}

/// The settings `klar tenant set` changes.
#[derive(Debug, Clone, clap::Args)]
pub struct TenantSettings {
    /// The company's name, as contacts read it.
    #[arg(long)]
    pub name: Option<String>,
    /// IANA time zone, e.g. Europe/Berlin; deadlines count on its calendar.
    #[arg(long)]
    pub timezone: Option<String>,
    /// The language of contacts who name none: de, en, de-AT, …
    #[arg(long)]
    pub locale: Option<String>,
    /// Who gets the tasks of contacts without an owner.
    #[arg(long)]
    pub default_owner: Option<String>,
    /// The postal address, shown on the response page and under every mail
    /// (lines separated by line breaks or "\n").
    #[arg(long)]
    pub address: Option<String>,
    /// The managing directors (Geschäftsführung).
    #[arg(long)]
    pub managing_directors: Option<String>,
    /// The register entry, e.g. "Amtsgericht Stuttgart, HRB 123456".
    #[arg(long)]
    pub register_entry: Option<String>,
    /// The imprint's (Impressum's) web address.
    #[arg(long)]
    pub imprint_url: Option<String>,
    /// The privacy notice's web address.
    #[arg(long)]
    pub privacy_url: Option<String>,
    /// The German state whose public holidays are no business days, e.g.
    /// DE-BW ("" clears).
    #[arg(long)]
    pub region: Option<String>,
    /// The company's closure days, comma-separated: 12-24 for every year,
    /// 2026-12-28 for one day ("" clears them all).
    #[arg(long)]
    pub closure_days: Option<String>,
}

impl From<TenantSettings> for crate::app::settings::Change {
    fn from(s: TenantSettings) -> Self {
        crate::app::settings::Change {
            name: s.name,
            timezone: s.timezone,
            locale: s.locale,
            default_owner: s.default_owner,
            // A shell argument cannot easily hold a line break.
            address: s.address.map(|a| a.replace("\\n", "\n")),
            managing_directors: s.managing_directors,
            register_entry: s.register_entry,
            imprint_url: s.imprint_url,
            privacy_url: s.privacy_url,
            region: s.region,
            closure_days: s.closure_days.map(|days| {
                days.split(',')
                    .map(str::trim)
                    .filter(|d| !d.is_empty())
                    .map(str::to_owned)
                    .collect()
            }),
        }
    }
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
    /// The tenant's purposes, their descriptions and how many cases each has.
    List {
        /// The tenant's id.
        tenant: String,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Change a purpose's description (texts already set keep their words)
    /// or how strict it is about use.
    Set {
        /// The tenant's id.
        tenant: String,
        /// The purpose's id.
        id: String,
        /// What the purpose is, in words a contact understands.
        #[arg(long)]
        description: Option<String>,
        /// restrictive (the default: usable only with consent or another
        /// recorded basis) or non-restrictive (usable unless the contact
        /// said no or their data is being cleaned up).
        #[arg(long, value_parser = parse_enforcement)]
        enforcement: Option<crate::store::tenants::Enforcement>,
        #[command(flatten)]
        now: NowArg,
    },
    /// Remove a purpose: refused while it has cases or evidence names it,
    /// and for contact-data.
    Remove {
        /// The tenant's id.
        tenant: String,
        /// The purpose's id.
        id: String,
        #[command(flatten)]
        now: NowArg,
    },
}

#[derive(Debug, Subcommand)]
pub enum TextCommand {
    /// Set the next version of a purpose's consent text from a file (UTF-8).
    /// It may name `{company}` and `{purpose}`; `{{` and `}}` are braces. It
    /// is used for every request issued from now on; links already sent keep
    /// the version they named.
    Set {
        /// The tenant's id.
        tenant: String,
        /// The purpose's id.
        purpose: String,
        /// The file with the text.
        file: PathBuf,
        /// The text's language: de, en, or another the tenant writes texts in.
        #[arg(long, default_value = "de")]
        language: String,
        /// Who wrote this version.
        #[arg(long)]
        author: String,
        /// Why it changed.
        #[arg(long)]
        message: String,
        #[command(flatten)]
        now: NowArg,
    },
    /// Every version of the tenant's texts, with author and message.
    List {
        /// The tenant's id.
        tenant: String,
        /// Only this purpose's texts.
        #[arg(long)]
        purpose: Option<String>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Print one version's words (default: the current one).
    Show {
        /// The tenant's id.
        tenant: String,
        /// The purpose's id.
        purpose: String,
        /// The version (default: the current one).
        version: Option<i64>,
        /// The text's language.
        #[arg(long, default_value = "de")]
        language: String,
    },
    /// What changed from one version to another, as a unified diff.
    Diff {
        /// The tenant's id.
        tenant: String,
        /// The purpose's id.
        purpose: String,
        /// The older version.
        from: i64,
        /// The newer version.
        to: i64,
        /// The texts' language.
        #[arg(long, default_value = "de")]
        language: String,
    },
    /// Write the request mail (text and HTML) and the response page for a
    /// sample contact, in German and English, into files to open: the
    /// current texts, or FILE as the next version would read.
    Preview {
        /// The tenant's id.
        tenant: String,
        /// The purpose's id.
        purpose: String,
        /// A text not yet set, to see before `text set` (in --language).
        #[arg(long, value_name = "FILE")]
        file: Option<PathBuf>,
        /// The language of --file.
        #[arg(long, default_value = "de")]
        language: String,
        /// The folder to write into (created if missing).
        #[arg(short, long, default_value = "preview")]
        output: PathBuf,
        #[command(flatten)]
        now: NowArg,
    },
}

#[derive(Debug, Subcommand)]
pub enum TemplateCommand {
    /// Set the tenant's own template from a file; it is checked first (it
    /// must compile and render for a sample contact), and a mistake is named
    /// with its line and column.
    Set {
        /// The tenant's id.
        tenant: String,
        /// mail.txt, mail.html, confirmation.txt, confirmation.html or response.html.
        name: String,
        /// The file with the template.
        file: PathBuf,
        /// Who wrote it.
        #[arg(long)]
        author: String,
        /// Why.
        #[arg(long)]
        message: String,
        #[command(flatten)]
        now: NowArg,
    },
    /// The tenant's templates: its own, and which are klar's.
    List {
        /// The tenant's id.
        tenant: String,
    },
    /// Print a template as it applies to the tenant (its own, else klar's):
    /// a start for writing one's own.
    Show {
        /// The tenant's id.
        tenant: String,
        /// mail.txt, mail.html, confirmation.txt, confirmation.html or response.html.
        name: String,
    },
    /// Remove the tenant's own template: klar's applies again.
    Reset {
        /// The tenant's id.
        tenant: String,
        /// mail.txt, mail.html, confirmation.txt, confirmation.html or response.html.
        name: String,
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

pub(super) fn parse_time(text: &str) -> Result<DateTime<Utc>> {
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

fn parse_scope(text: &str) -> Result<crate::store::apikeys::Scope, String> {
    text.parse()
}

/// A CSV file's encoding, as `klar import --encoding` names it.
/// How to read a file of contacts or ids, where the guesses are wrong.
#[derive(Debug, Clone, clap::Args)]
pub struct FileFormatArgs {
    /// The CSV file's separator (default: found from the header line):
    /// comma, semicolon, tab, or the character itself.
    #[arg(long, value_parser = parse_delimiter)]
    delimiter: Option<u8>,
    /// The CSV file's encoding (default: UTF-8, or Windows-1252 when the
    /// file is not valid UTF-8).
    #[arg(long, value_enum)]
    encoding: Option<EncodingArg>,
    /// The workbook's sheet (default: the first).
    #[arg(long)]
    sheet: Option<String>,
}

impl FileFormatArgs {
    pub fn options(self) -> crate::app::import::Options {
        crate::app::import::Options {
            delimiter: self.delimiter,
            encoding: self.encoding.map(Into::into),
            sheet: self.sheet,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum EncodingArg {
    #[value(name = "utf-8", alias = "utf8")]
    Utf8,
    #[value(name = "windows-1252", alias = "cp1252", alias = "latin1")]
    Windows1252,
}

impl From<EncodingArg> for crate::app::import::Encoding {
    fn from(arg: EncodingArg) -> Self {
        match arg {
            EncodingArg::Utf8 => crate::app::import::Encoding::Utf8,
            EncodingArg::Windows1252 => crate::app::import::Encoding::Windows1252,
        }
    }
}

/// `--delimiter`: a name, or the one ASCII character.
fn parse_enforcement(text: &str) -> Result<crate::store::tenants::Enforcement, String> {
    crate::store::tenants::Enforcement::parse(text)
        .ok_or_else(|| format!("{text:?}: use restrictive or non-restrictive"))
}

fn parse_delimiter(text: &str) -> Result<u8, String> {
    match text {
        "comma" => Ok(b','),
        "semicolon" => Ok(b';'),
        "tab" | "\\t" => Ok(b'\t'),
        "pipe" => Ok(b'|'),
        _ => match text.as_bytes() {
            [b] if b.is_ascii() && !b.is_ascii_alphanumeric() && *b != b'"' && *b != b'\n' => {
                Ok(*b)
            }
            _ => Err("use comma, semicolon, tab, or one punctuation character".to_owned()),
        },
    }
}
