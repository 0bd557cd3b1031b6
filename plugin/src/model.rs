//! The data of the consent process: contacts, cases, events, actions and outcomes.
//!
//! These types mirror `wit/consent.wit` one to one. They are what the step function
//! reads and writes, and (through serde) the JSON that `klar step` reads and prints:
//! field names are snake_case, enum values kebab-case, times RFC 3339 in UTC.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A point in time, always UTC. The WIT contract carries it as Unix seconds.
pub type Timestamp = DateTime<Utc>;

/// The host's clock for one step. Nothing in the plugin reads a clock of its own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Clock {
    pub now: Timestamp,
    /// The tenant's UTC offset at `now`, used to find the local calendar day.
    #[serde(default)]
    pub utc_offset_minutes: i32,
    /// The tenant's calendar around `now`: offset changes and closed days.
    #[serde(default)]
    pub calendar: Calendar,
}

impl Clock {
    /// A clock in UTC.
    pub fn utc(now: Timestamp) -> Self {
        Clock {
            now,
            utc_offset_minutes: 0,
            calendar: Calendar::default(),
        }
    }
}

/// The tenant's calendar around a clock's `now` (see `wit/consent.wit`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Calendar {
    /// When the tenant's UTC offset changes, sorted.
    #[serde(default)]
    pub offsets: Vec<OffsetChange>,
    /// Local days nobody works (holidays, closures), sorted.
    #[serde(default)]
    pub closed_days: Vec<chrono::NaiveDate>,
}

/// From `starts` on, the tenant's clocks are `minutes` ahead of UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct OffsetChange {
    pub starts: Timestamp,
    pub minutes: i32,
}

/// The person a case is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contact {
    pub id: String,
    #[serde(default)]
    pub first_name: String,
    #[serde(default)]
    pub last_name: String,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub phone: Option<String>,
    #[serde(default)]
    pub owner: String,
    #[serde(default)]
    pub source: String,
    #[serde(default = "default_language")]
    pub language: String,
    pub created_at: Timestamp,
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
}

fn default_language() -> String {
    "de".to_owned()
}

/// The eleven states of a case. Each belongs to one [`Band`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum State {
    Consented,
    OtherBasis,
    Unclarified,
    Requested,
    AwaitingDecision,
    Paused,
    Refused,
    Withdrawn,
    /// The contact objected (Art. 21 GDPR); since contract 0.6.0.
    Objected,
    CleanupPending,
    Purged,
}

/// What a state means for the team.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Band {
    /// Green: may be used.
    Usable,
    /// Yellow: do not use for marketing yet.
    ToClarify,
    /// Red: out of daily work.
    Removed,
}

impl State {
    pub const ALL: [State; 11] = [
        State::Consented,
        State::OtherBasis,
        State::Unclarified,
        State::Requested,
        State::AwaitingDecision,
        State::Paused,
        State::Refused,
        State::Withdrawn,
        State::Objected,
        State::CleanupPending,
        State::Purged,
    ];

    pub fn band(self) -> Band {
        match self {
            State::Consented | State::OtherBasis => Band::Usable,
            State::Unclarified | State::Requested | State::AwaitingDecision | State::Paused => {
                Band::ToClarify
            }
            State::Refused
            | State::Withdrawn
            | State::Objected
            | State::CleanupPending
            | State::Purged => Band::Removed,
        }
    }

    /// The name used in JSON, in policies and in the WIT contract.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Consented => "consented",
            State::OtherBasis => "other-basis",
            State::Unclarified => "unclarified",
            State::Requested => "requested",
            State::AwaitingDecision => "awaiting-decision",
            State::Paused => "paused",
            State::Refused => "refused",
            State::Withdrawn => "withdrawn",
            State::Objected => "objected",
            State::CleanupPending => "cleanup-pending",
            State::Purged => "purged",
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A name that is not one of the given kind's, with the names that are: what
/// a person who typed a filter value needs to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownName {
    pub kind: &'static str,
    pub given: String,
    pub allowed: Vec<&'static str>,
}

impl fmt::Display for UnknownName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown {} {:?}; use one of: {}",
            self.kind,
            self.given,
            self.allowed.join(", ")
        )
    }
}

impl std::error::Error for UnknownName {}

/// The one of `all` called `name`.
fn by_name<T: Copy>(
    kind: &'static str,
    all: &[T],
    as_str: fn(T) -> &'static str,
    name: &str,
) -> Result<T, UnknownName> {
    all.iter()
        .copied()
        .find(|x| as_str(*x) == name)
        .ok_or_else(|| UnknownName {
            kind,
            given: name.to_owned(),
            allowed: all.iter().map(|x| as_str(*x)).collect(),
        })
}

impl std::str::FromStr for State {
    type Err = UnknownName;

    fn from_str(name: &str) -> Result<State, UnknownName> {
        by_name("state", &State::ALL, State::as_str, name)
    }
}

impl Band {
    pub const ALL: [Band; 3] = [Band::Usable, Band::ToClarify, Band::Removed];

    /// The name used in JSON and in filters.
    pub fn as_str(self) -> &'static str {
        match self {
            Band::Usable => "usable",
            Band::ToClarify => "to-clarify",
            Band::Removed => "removed",
        }
    }

    /// The states of this band, in the order of [`State::ALL`].
    pub fn states(self) -> impl Iterator<Item = State> {
        State::ALL.into_iter().filter(move |s| s.band() == self)
    }
}

impl fmt::Display for Band {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Band {
    type Err = UnknownName;

    fn from_str(name: &str) -> Result<Band, UnknownName> {
        by_name("band", &Band::ALL, Band::as_str, name)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CleanupMode {
    Anonymise,
    Delete,
}

impl CleanupMode {
    pub fn as_str(self) -> &'static str {
        match self {
            CleanupMode::Anonymise => "anonymise",
            CleanupMode::Delete => "delete",
        }
    }
}

/// A planned erasure, which a person can stop until it runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CleanupPlan {
    pub mode: CleanupMode,
    /// The end of the grace period: no erasure before it.
    pub not_before: Timestamp,
    /// "refusal", "withdrawal", "no-response" or "decision".
    pub reason: String,
    /// Where the case goes back to if a person stops the cleanup.
    pub resume_state: State,
    /// The case's next step as planned before the cleanup, restored with it.
    #[serde(default)]
    pub resume_due_at: Option<Timestamp>,
    #[serde(default)]
    pub requested_by: Option<String>,
    #[serde(default)]
    pub requires_approval: bool,
    #[serde(default)]
    pub approved_by: Option<String>,
}

impl CleanupPlan {
    /// Whether the cleanup follows the contact's "no": it started from a
    /// refusal, a withdrawal or an objection, or returns to one if a person
    /// stops it. A late "yes" does not stop such a cleanup.
    pub fn after_no(&self) -> bool {
        matches!(self.reason.as_str(), "refusal" | "withdrawal" | "objection")
            || matches!(
                self.resume_state,
                State::Refused | State::Withdrawn | State::Objected
            )
    }

    /// Whether the cleanup follows an objection: it started from one, or
    /// returns to one if a person stops it.
    pub fn after_objection(&self) -> bool {
        self.reason == "objection" || self.resume_state == State::Objected
    }
}

/// One contact and one purpose.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Case {
    pub purpose: String,
    pub state: State,
    /// Requests sent in the current round (1 = first request, 2 = first reminder).
    #[serde(default)]
    pub attempt: u32,
    #[serde(default)]
    pub requested_at: Option<Timestamp>,
    #[serde(default)]
    pub due_at: Option<Timestamp>,
    #[serde(default)]
    pub consented_at: Option<Timestamp>,
    #[serde(default)]
    pub review_at: Option<Timestamp>,
    #[serde(default)]
    pub last_used_at: Option<Timestamp>,
    #[serde(default)]
    pub assigned_to: Option<String>,
    /// A legal basis other than consent: set by the policy's `basis`
    /// hook or recorded by a person.
    #[serde(default, deserialize_with = "basis_or_reason")]
    pub basis: Option<Basis>,
    #[serde(default)]
    pub legal_hold: bool,
    #[serde(default)]
    pub cleanup: Option<CleanupPlan>,
    #[serde(default)]
    pub updated_at: Option<Timestamp>,
    /// The addresses that bounced in this case: `email:ADDRESS`,
    /// `phone:NUMBER` or `letter`. A channel whose current address bounced
    /// is not used again for the case.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bounced: Vec<String>,
    /// Another legal basis asked for after a refusal, a withdrawal or during
    /// a pending cleanup: it waits for a second person's approval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_basis: Option<PendingBasis>,
}

/// The legal bases other than consent a case can stand on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BasisKind {
    /// Art. 6(1)(b) GDPR: needed for a contract with the contact.
    Contract,
    /// Art. 6(1)(f) GDPR: the company's legitimate interest.
    LegitimateInterest,
    /// § 7(3) UWG: e-mail advertising of similar products to an existing
    /// customer, who may object at any time.
    ExistingCustomer,
    /// Art. 6(1)(c) GDPR: a legal obligation.
    LegalObligation,
    /// A basis a person recorded and named in words (`decide other-basis`).
    Other,
}

impl BasisKind {
    pub const ALL: [BasisKind; 5] = [
        BasisKind::Contract,
        BasisKind::LegitimateInterest,
        BasisKind::ExistingCustomer,
        BasisKind::LegalObligation,
        BasisKind::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            BasisKind::Contract => "contract",
            BasisKind::LegitimateInterest => "legitimate-interest",
            BasisKind::ExistingCustomer => "existing-customer",
            BasisKind::LegalObligation => "legal-obligation",
            BasisKind::Other => "other",
        }
    }

    /// Whether the contact may object to it under Art. 21 GDPR (and § 7(3)
    /// no. 3 UWG): a legitimate interest, the existing-customer exception,
    /// and, on the safe side, a basis a person only named in words. A
    /// contract or a legal obligation is not ended by an objection.
    pub fn objectionable(self) -> bool {
        !matches!(self, BasisKind::Contract | BasisKind::LegalObligation)
    }
}

impl fmt::Display for BasisKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for BasisKind {
    type Err = UnknownName;

    fn from_str(name: &str) -> Result<BasisKind, UnknownName> {
        by_name("basis", &BasisKind::ALL, BasisKind::as_str, name)
    }
}

/// A legal basis other than consent, as evidence: what it is, why, who or
/// what set it, until when it holds and what it relied on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Basis {
    pub kind: BasisKind,
    /// Why it applies, in the words of the legal team or the person.
    pub reason: String,
    /// The person who recorded it; `None`: the policy's `basis` hook.
    #[serde(default)]
    pub decided_by: Option<String>,
    /// When it was set (or last renewed).
    #[serde(default)]
    pub since: Option<Timestamp>,
    /// When the policy's `basis` hook is asked again.
    #[serde(default)]
    pub review_at: Option<Timestamp>,
    /// The contact's data the policy's hook read, with the values it saw
    /// (`attributes.customer` → `yes`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub relied_on: BTreeMap<String, String>,
    /// The policy version that set it; filled in by the host, which knows
    /// the version (a plugin passes it through unchanged).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_version: Option<u32>,
}

impl Basis {
    /// Whether the policy set it (and may change it again).
    pub fn by_policy(&self) -> bool {
        self.decided_by.is_none()
    }
}

/// Reads a case's basis: the record, or the bare reason text of cases
/// stored before contract 0.6.0 (always a person's decision then).
fn basis_or_reason<'de, D>(deserializer: D) -> Result<Option<Basis>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Stored {
        Reason(String),
        Record(Basis),
    }
    Ok(
        Option::<Stored>::deserialize(deserializer)?.map(|stored| match stored {
            Stored::Record(basis) => basis,
            Stored::Reason(reason) => Basis {
                kind: BasisKind::Other,
                reason,
                decided_by: Some(String::new()),
                since: None,
                review_at: None,
                relied_on: BTreeMap::new(),
                policy_version: None,
            },
        }),
    )
}

/// Another legal basis that waits for a second person's approval.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingBasis {
    pub reason: String,
    pub requested_by: String,
}

impl Case {
    /// A new case that nobody has asked about yet.
    pub fn new(purpose: impl Into<String>) -> Self {
        Case {
            purpose: purpose.into(),
            state: State::Unclarified,
            attempt: 0,
            requested_at: None,
            due_at: None,
            consented_at: None,
            review_at: None,
            last_used_at: None,
            assigned_to: None,
            basis: None,
            legal_hold: false,
            cleanup: None,
            updated_at: None,
            bounced: Vec::new(),
            pending_basis: None,
        }
    }

    /// Reminders sent in the current round (the first request is not a reminder).
    pub fn reminders_sent(&self) -> u32 {
        self.attempt.saturating_sub(1)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Answer {
    Accept,
    Refuse,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DecisionKind {
    Manual,
    Restart,
    Cleanup,
    OtherBasis,
    Keep,
}

impl DecisionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DecisionKind::Manual => "manual",
            DecisionKind::Restart => "restart",
            DecisionKind::Cleanup => "cleanup",
            DecisionKind::OtherBasis => "other-basis",
            DecisionKind::Keep => "keep",
        }
    }
}

/// What a person decided, with their name and reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    pub kind: DecisionKind,
    pub by: String,
    pub reason: String,
    #[serde(default)]
    pub after_days: Option<u32>,
    #[serde(default)]
    pub mode: Option<CleanupMode>,
}

/// Something that happened to a case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Event {
    Tick,
    Response {
        answer: Answer,
    },
    Bounce {
        channel: String,
    },
    ManualDecision(Decision),
    Approve {
        by: String,
    },
    Withdraw,
    /// Consent on the contact's own initiative (their personal link).
    Consent,
    /// The contact objected to the use (Art. 21 GDPR).
    Object,
    Used,
    HoldOn {
        by: String,
        reason: String,
    },
    HoldOff {
        by: String,
        reason: String,
    },
    DataChanged,
}

impl Event {
    /// A short readable form for traces.
    pub fn describe(&self) -> String {
        match self {
            Event::Tick => "tick".to_owned(),
            Event::Response { answer } => match answer {
                Answer::Accept => "response: accept".to_owned(),
                Answer::Refuse => "response: refuse".to_owned(),
            },
            Event::Bounce { channel } => format!("bounce on {channel}"),
            Event::ManualDecision(d) => {
                format!("decision {} by {} ({})", d.kind.as_str(), d.by, d.reason)
            }
            Event::Approve { by } => format!("approval by {by}"),
            Event::Withdraw => "withdrawal".to_owned(),
            Event::Consent => "consent on the contact's own initiative".to_owned(),
            Event::Object => "objection".to_owned(),
            Event::Used => "used".to_owned(),
            Event::HoldOn { by, reason } => format!("legal hold on by {by} ({reason})"),
            Event::HoldOff { by, reason } => format!("legal hold off by {by} ({reason})"),
            Event::DataChanged => "data changed".to_owned(),
        }
    }
}

/// What the host should do after a step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Action {
    SendRequest {
        channel: String,
        template: String,
        attempt: u32,
        /// The request's response link stops working then (the policy's
        /// `link_valid_days`).
        link_expires_at: Timestamp,
    },
    CreateTask {
        assignee: String,
        kind: String,
        note: String,
    },
    BlockUse,
    Cleanup {
        mode: CleanupMode,
        /// The evidence of the case is kept until then (the policy's
        /// `evidence_retention_days`), and deleted after.
        keep_evidence_until: Timestamp,
    },
    Notify {
        recipient: String,
        message: String,
    },
}

/// One line of a step's explanation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceEntry {
    pub hook: String,
    pub input: String,
    pub output: String,
}

/// The result of one step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    pub case: Case,
    pub actions: Vec<Action>,
    pub trace: Vec<TraceEntry>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Severity {
    Error,
    Warning,
}

/// A problem in a policy. Line and column are 1-based; 0 means unknown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Diagnostic {
    pub severity: Severity,
    pub line: u32,
    pub column: u32,
    pub message: String,
}

impl Diagnostic {
    pub fn error(line: u32, column: u32, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Error,
            line,
            column,
            message: message.into(),
        }
    }

    pub fn warning(line: u32, column: u32, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Warning,
            line,
            column,
            message: message.into(),
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.line, self.column, self.message)
    }
}

/// Why a step produced no outcome.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum StepError {
    /// The policy failed at run time: a script error, a limit, a wrong return type.
    #[error("policy error at {diagnostic}")]
    Policy { diagnostic: Diagnostic },
    /// The step cannot be applied to this case, e.g. an approval by the requester.
    #[error("rejected: {reason}")]
    Rejected { reason: String },
}

impl StepError {
    pub fn rejected(reason: impl Into<String>) -> Self {
        StepError::Rejected {
            reason: reason.into(),
        }
    }
}

/// A hook that fails for one contact, found by a probe: which contact (its
/// place in the probe's input), which hook, for which purpose, and the error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeProblem {
    pub index: u32,
    pub hook: String,
    /// The purpose of the case the hook was given; `None` for a hook that
    /// takes the contact alone.
    pub purpose: Option<String>,
    pub diagnostic: Diagnostic,
}

/// The plugin's self-description.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PluginInfo {
    pub name: String,
    pub version: String,
    pub hooks: Vec<String>,
}
