//! Making a policy version active: the one rule behind `klar policy set`,
//! `klar policy rollback`, `klar tenant add --policy` and
//! `POST /v1/policy/versions`, so that no face can skip a part of it.
//!
//! The faces check the candidate and run its tests first, because their
//! inputs differ (files, a stored version, an upload). Then, here:
//!
//! 1. A candidate without tests replaces a tested active version only with a
//!    reason (`--untested --reason`, or `untested_reason` in the API); the
//!    audit row records it. Over an untested version, or the built-in
//!    default, no reason is needed.
//! 2. Every hook of the candidate runs, inside the plugin's sandbox, for each
//!    of the tenant's contacts with its cases: all of them up to
//!    [`SWEEP_LIMIT`], else a sample of at least that many (see
//!    `store::sweep`). Any failure refuses activation, naming the contact,
//!    the hook, the place in the policy and the message. The policy's tests
//!    try the situations its author thought of; this tries the contacts the
//!    tenant has, so a branch no test and no sample reaches cannot break live
//!    cases.
//! 3. The version is stored with its tests, in one transaction.

use std::time::{Duration, Instant};

use crate::plugin::{Case, Contact, Diagnostic};
use crate::runtime::{Session, StepFailure};
use crate::store::tenants::{self, NewVersion, PolicyVersion, TenantError};
use crate::store::{Store, sweep};

/// Up to this many contacts every contact is tried; above it, a sample of
/// at least this many.
pub const SWEEP_LIMIT: usize = 10_000;

/// Contacts per call into the plugin: large enough that the boundary costs
/// little, small enough that a trap costs little to narrow down.
const BATCH: usize = 250;

/// A version to activate, after the face has checked it and run its tests.
#[derive(Debug, Clone, Copy)]
pub struct Candidate<'a> {
    pub source: &'a str,
    /// The tests it passed (TOML); `None` if it has none.
    pub tests: Option<&'a str>,
    pub author: &'a str,
    pub message: &'a str,
    /// `--untested --reason TEXT`: why a version without tests may replace
    /// a tested one.
    pub untested_reason: Option<&'a str>,
}

/// One contact the candidate fails for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactProblem {
    pub contact: String,
    /// The contact's source, so that an admin sees which kind of contact.
    pub source: String,
    /// The hook that failed; empty if the plugin itself failed.
    pub hook: String,
    /// The purpose of the case the hook was given, if it takes one.
    pub purpose: Option<String>,
    pub diagnostic: Diagnostic,
}

/// What a sweep did.
#[derive(Debug, Clone, Default)]
pub struct Sweep {
    /// The tenant's live contacts.
    pub total: usize,
    /// The contacts every hook ran for.
    pub probed: usize,
    pub problems: Vec<ContactProblem>,
    pub elapsed: Duration,
}

/// Why a candidate did not become active. Nothing was changed.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    /// An empty source, or an author or message that cannot be shown as a
    /// line in `policy log`.
    #[error("{0}")]
    Invalid(String),
    #[error(
        "{tenant}'s active policy v{active} has tests and this one has none; write tests for it, or activate it anyway with --untested --reason TEXT (recorded in the audit log)"
    )]
    Untested { tenant: String, active: i64 },
    #[error("the policy fails for {} of the {} contact(s) it was tried on", distinct_contacts(&.0.problems), .0.probed)]
    FailsForContacts(Sweep),
}

fn distinct_contacts(problems: &[ContactProblem]) -> usize {
    let mut ids: Vec<&str> = problems.iter().map(|p| p.contact.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    ids.len()
}

impl Refusal {
    /// How many contacts fail (0 for a refusal that is not about contacts).
    pub fn failing_contacts(&self) -> usize {
        match self {
            Refusal::FailsForContacts(sweep) => distinct_contacts(&sweep.problems),
            Refusal::Untested { .. } | Refusal::Invalid(_) => 0,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ActivationError {
    #[error(transparent)]
    Refused(Refusal),
    #[error(transparent)]
    Tenant(#[from] TenantError),
    #[error("failed to read the tenant's contacts")]
    Sql(#[from] crate::store::Error),
}

/// A version that became active, and the sweep that let it.
#[derive(Debug, Clone)]
pub struct Activated {
    pub version: PolicyVersion,
    pub sweep: Sweep,
}

/// Applies the rules above and, if they hold, stores `candidate` as the
/// tenant's active version. `session` runs the candidate's source.
/// `progress` hears (contacts done, contacts to do) after each batch.
pub fn activate(
    store: &mut Store,
    session: &mut Session,
    tenant: &str,
    candidate: &Candidate<'_>,
    now: i64,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Activated, ActivationError> {
    tenants::require(store.connection(), tenant)?;
    if let Err(invalid) = well_formed(candidate) {
        return Err(ActivationError::Refused(Refusal::Invalid(invalid)));
    }
    let reason = candidate
        .untested_reason
        .map(str::trim)
        .filter(|r| !r.is_empty());
    // Checked before the (slower) sweep, and again where the version is
    // stored: another upload may have activated a tested version meanwhile.
    untested_rule(store.connection(), tenant, candidate, reason)?;
    let sweep = run_sweep(store, session, tenant, progress)?;
    if !sweep.problems.is_empty() {
        return Err(ActivationError::Refused(Refusal::FailsForContacts(sweep)));
    }
    let version = store.transaction(|tx| -> Result<_, ActivationError> {
        let untested_over_tested = untested_rule(tx, tenant, candidate, reason)?;
        let new = NewVersion {
            source: candidate.source,
            tests: candidate.tests,
            author: candidate.author,
            message: candidate.message,
            untested_reason: reason.filter(|_| untested_over_tested),
            probed_contacts: Some(sweep.probed),
        };
        Ok(tenants::store_version(tx, tenant, &new, now)?)
    })?;
    Ok(Activated { version, sweep })
}

/// The longest author and message a version may carry.
pub const MAX_AUTHOR: usize = 100;
pub const MAX_MESSAGE: usize = 500;

/// A version needs a script, and an author and a message that print as one
/// line: control characters (an escape sequence, a newline) are refused.
fn well_formed(candidate: &Candidate<'_>) -> Result<(), String> {
    if candidate.source.trim().is_empty() {
        return Err("the policy is empty; an empty policy would silently run every default".into());
    }
    super::text::one_line("the author", candidate.author, MAX_AUTHOR)?;
    // A message may be left out (the CLI's default); if given, one line.
    if !candidate.message.is_empty() {
        super::text::one_line("the message", candidate.message, MAX_MESSAGE)?;
    }
    Ok(())
}

/// A candidate without tests may replace a tested active version only with
/// a reason. `Ok(true)`: it replaces a tested one, with a reason.
fn untested_rule(
    conn: &crate::store::Conn,
    tenant: &str,
    candidate: &Candidate<'_>,
    reason: Option<&str>,
) -> Result<bool, ActivationError> {
    let active = tenants::active_policy(conn, tenant)?;
    let untested_over_tested =
        candidate.tests.is_none() && active.as_ref().is_some_and(PolicyVersion::tested);
    match (untested_over_tested, reason, active) {
        (true, None, Some(active)) => Err(ActivationError::Refused(Refusal::Untested {
            tenant: tenant.to_owned(),
            active: active.version,
        })),
        _ => Ok(untested_over_tested),
    }
}

/// Runs every hook of the session's policy for the tenant's contacts (see
/// the module's comment) and collects what fails.
pub fn run_sweep(
    store: &Store,
    session: &mut Session,
    tenant: &str,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Sweep, ActivationError> {
    let started = Instant::now();
    let population = sweep::population(store.connection(), tenant, SWEEP_LIMIT)?;
    let todo = population.contacts.len();
    let mut problems = Vec::new();
    let mut done = 0;
    for batch in population.contacts.chunks(BATCH) {
        probe_batch(session, batch, &mut problems);
        done += batch.len();
        progress(done, todo);
    }
    Ok(Sweep {
        total: population.total,
        probed: todo,
        problems,
        elapsed: started.elapsed(),
    })
}

/// The deadline of a probe grows with the hooks it calls, about four per
/// case and a few per contact.
fn weight(batch: &[(Contact, Vec<Case>)]) -> usize {
    batch.iter().map(|(_, cases)| 8 + 4 * cases.len()).sum()
}

/// Probes one batch; if the plugin traps, the contacts one at a time, so
/// that only a contact that traps on its own is reported.
fn probe_batch(
    session: &mut Session,
    batch: &[(Contact, Vec<Case>)],
    problems: &mut Vec<ContactProblem>,
) {
    let named = |index: u32, hook: String, purpose, diagnostic| {
        let contact = usize::try_from(index)
            .ok()
            .and_then(|i| batch.get(i))
            .map(|(c, _)| c);
        ContactProblem {
            contact: contact.map(|c| c.id.clone()).unwrap_or_default(),
            source: contact.map(|c| c.source.clone()).unwrap_or_default(),
            hook,
            purpose,
            diagnostic,
        }
    };
    match session.probe(batch, weight(batch)) {
        Ok(found) => problems.extend(
            found
                .into_iter()
                .map(|p| named(p.index, p.hook, p.purpose, p.diagnostic)),
        ),
        Err(_) if batch.len() > 1 => {
            for one in batch {
                probe_batch(session, std::slice::from_ref(one), problems);
            }
        }
        Err(failure) => {
            let text = match failure {
                StepFailure::Trap(text) => format!("the plugin failed: {text}"),
                StepFailure::Step(err) => err.to_string(),
            };
            problems.push(named(0, String::new(), None, Diagnostic::error(0, 0, text)));
        }
    }
}

/// Groups the contacts a policy fails for by their problem, so that one
/// mistake reached by 400 contacts reads as one problem with an example.
pub fn grouped(problems: &[ContactProblem]) -> Vec<(&ContactProblem, usize)> {
    let mut groups: Vec<(&ContactProblem, usize)> = Vec::new();
    for p in problems {
        match groups
            .iter_mut()
            .find(|(g, _)| g.hook == p.hook && g.diagnostic == p.diagnostic)
        {
            Some((_, n)) => *n += 1,
            None => groups.push((p, 1)),
        }
    }
    groups
}

/// One problem as an admin reads it: `contact C00042 (source "purchased-list"):
/// on_no_response, line 12, column 5: …`.
pub fn problem_line(p: &ContactProblem) -> String {
    let place = match (p.hook.as_str(), p.diagnostic.line) {
        ("", _) => String::new(),
        (hook, 0) => format!("{hook}: "),
        (hook, line) => format!("{hook}, line {line}, column {}: ", p.diagnostic.column),
    };
    let purpose = match &p.purpose {
        Some(purpose) => format!(", purpose {purpose}"),
        None => String::new(),
    };
    // The message starts with "in hook `x`" for a script error; the line
    // names the hook already.
    let message = p.diagnostic.message.as_str();
    let message = match message.strip_prefix(&format!("in hook `{}`", p.hook)) {
        Some(rest) if !p.hook.is_empty() => rest
            .strip_prefix(": ")
            .or_else(|| rest.strip_prefix(", "))
            .unwrap_or(rest),
        _ => message,
    };
    format!(
        "contact {} (source {:?}{purpose}): {place}{message}",
        p.contact, p.source
    )
}

/// A candidate policy after its check and its tests: the first two rules of
/// activation, which every face applies the same way before [`activate`].
// One value per candidate, moved once: the size of the session inside does
// not matter.
#[allow(clippy::large_enum_variant)]
pub enum Checked {
    /// The policy has errors (its warnings are among the diagnostics).
    Invalid(Vec<crate::plugin::Diagnostic>),
    /// It compiled in the plugin; `report` is its tests' (none without
    /// tests), and `session` runs it.
    Compiled {
        session: Session,
        warnings: Vec<crate::plugin::Diagnostic>,
        report: Option<super::table_tests::Report>,
    },
}

impl Checked {
    /// It compiled and no test failed: it may go on to [`activate`].
    pub fn passed(&self) -> bool {
        matches!(self, Checked::Compiled { report, .. } if report.as_ref().is_none_or(|r| r.failed() == 0))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error("the plugin failed while compiling the policy: {0}")]
    Plugin(String),
    #[error(transparent)]
    Tests(#[from] super::table_tests::TestFileError),
}

/// Compiles `source` in the plugin's sandbox (named `name` in messages) and
/// runs the table tests `tests` (files and their texts; none: no tests).
pub fn check_and_test(
    plugin: &std::sync::Arc<crate::runtime::LoadedPlugin>,
    name: &str,
    source: &str,
    tests: &[(std::path::PathBuf, String)],
) -> Result<Checked, CheckError> {
    let mut session = match plugin.open(name, source) {
        Ok(session) => session,
        Err(crate::runtime::OpenError::Policy(found)) => return Ok(Checked::Invalid(found)),
        Err(err @ crate::runtime::OpenError::Trap(_)) => {
            return Err(CheckError::Plugin(err.to_string()));
        }
    };
    let warnings = session.warnings().to_vec();
    let report = if tests.is_empty() {
        None
    } else {
        Some(super::table_tests::run_texts(&mut session, tests)?)
    };
    Ok(Checked::Compiled {
        session,
        warnings,
        report,
    })
}
