//! The WebAssembly component glue: exports `klar:consent/process` by converting
//! between the WIT types and the plugin's own model, and nothing else.

use chrono::DateTime;

use crate::model as m;

wit_bindgen::generate!({ world: "plugin", path: "../wit" });

use exports::klar::consent::process::{self as wit_process, Guest, GuestPolicy};
use klar::consent::log::{Level, log};
use klar::consent::types as w;

struct Component;

impl Guest for Component {
    type Policy = PolicyResource;

    fn describe() -> w::PluginInfo {
        let info = crate::describe();
        w::PluginInfo {
            name: info.name,
            version: info.version,
            hooks: info.hooks,
        }
    }
}

export!(Component);

/// A compiled policy living inside the component for as long as the host keeps
/// its handle: the rhai engine and AST are built once, not per step.
struct PolicyResource {
    policy: crate::Policy,
}

fn log_sink(debug: bool, text: &str) {
    log(if debug { Level::Debug } else { Level::Info }, text);
}

impl GuestPolicy for PolicyResource {
    fn compile(name: String, source: String) -> Result<wit_process::Policy, Vec<w::Diagnostic>> {
        match crate::Policy::compile_with_log(&source, log_sink) {
            Ok(policy) => {
                log(Level::Debug, &format!("compiled policy {name}"));
                Ok(wit_process::Policy::new(PolicyResource { policy }))
            }
            Err(diagnostics) => Err(diagnostics.into_iter().map(diagnostic).collect()),
        }
    }

    fn warnings(&self) -> Vec<w::Diagnostic> {
        self.policy
            .warnings()
            .iter()
            .cloned()
            .map(diagnostic)
            .collect()
    }

    fn step(
        &self,
        case: w::Case,
        contact: w::Contact,
        event: w::Event,
        clock: w::Clock,
    ) -> Result<w::Outcome, w::StepError> {
        let clock = from_clock(clock);
        step_one(&self.policy, case, contact, event, &clock)
    }

    fn step_batch(
        &self,
        inputs: Vec<w::StepInput>,
        clock: w::Clock,
    ) -> Vec<Result<w::Outcome, w::StepError>> {
        let clock = from_clock(clock);
        inputs
            .into_iter()
            .map(|i| step_one(&self.policy, i.case, i.contact, i.event, &clock))
            .collect()
    }
}

fn step_one(
    policy: &crate::Policy,
    case: w::Case,
    contact: w::Contact,
    event: w::Event,
    clock: &m::Clock,
) -> Result<w::Outcome, w::StepError> {
    let case = from_case(case).map_err(w::StepError::Rejected)?;
    let contact = std::rc::Rc::new(from_contact(contact).map_err(w::StepError::Rejected)?);
    let event = from_event(event);
    match crate::step_shared(policy, &case, &contact, &event, clock) {
        Ok(outcome) => Ok(to_outcome(outcome)),
        Err(m::StepError::Policy { diagnostic: d }) => Err(w::StepError::Policy(diagnostic(d))),
        Err(m::StepError::Rejected { reason }) => Err(w::StepError::Rejected(reason)),
    }
}

// --- WIT → model --------------------------------------------------------------

fn time(seconds: i64) -> Result<m::Timestamp, String> {
    DateTime::from_timestamp(seconds, 0).ok_or_else(|| format!("time {seconds} is out of range"))
}

fn opt_time(seconds: Option<i64>) -> Result<Option<m::Timestamp>, String> {
    seconds.map(time).transpose()
}

fn from_clock(c: w::Clock) -> m::Clock {
    m::Clock {
        now: time(c.now).unwrap_or_default(),
        utc_offset_minutes: c.utc_offset_minutes,
    }
}

fn from_state(s: w::State) -> m::State {
    match s {
        w::State::Consented => m::State::Consented,
        w::State::OtherBasis => m::State::OtherBasis,
        w::State::Unclarified => m::State::Unclarified,
        w::State::Requested => m::State::Requested,
        w::State::AwaitingDecision => m::State::AwaitingDecision,
        w::State::Paused => m::State::Paused,
        w::State::Refused => m::State::Refused,
        w::State::Withdrawn => m::State::Withdrawn,
        w::State::CleanupPending => m::State::CleanupPending,
        w::State::Purged => m::State::Purged,
    }
}

fn from_mode(mode: w::CleanupMode) -> m::CleanupMode {
    match mode {
        w::CleanupMode::Anonymise => m::CleanupMode::Anonymise,
        w::CleanupMode::Delete => m::CleanupMode::Delete,
    }
}

fn from_case(c: w::Case) -> Result<m::Case, String> {
    Ok(m::Case {
        purpose: c.purpose,
        state: from_state(c.state),
        attempt: c.attempt,
        requested_at: opt_time(c.requested_at)?,
        due_at: opt_time(c.due_at)?,
        consented_at: opt_time(c.consented_at)?,
        review_at: opt_time(c.review_at)?,
        last_used_at: opt_time(c.last_used_at)?,
        assigned_to: c.assigned_to,
        basis: c.basis,
        legal_hold: c.legal_hold,
        cleanup: match c.cleanup {
            None => None,
            Some(p) => Some(m::CleanupPlan {
                mode: from_mode(p.mode),
                not_before: time(p.not_before)?,
                reason: p.reason,
                resume_state: from_state(p.resume_state),
                requested_by: p.requested_by,
                requires_approval: p.requires_approval,
                approved_by: p.approved_by,
            }),
        },
        updated_at: opt_time(c.updated_at)?,
    })
}

fn from_contact(c: w::Contact) -> Result<m::Contact, String> {
    Ok(m::Contact {
        id: c.id,
        first_name: c.first_name,
        last_name: c.last_name,
        email: c.email,
        phone: c.phone,
        owner: c.owner,
        source: c.source,
        language: c.language,
        created_at: time(c.created_at)?,
        attributes: c.attributes.into_iter().collect(),
    })
}

fn from_event(e: w::Event) -> m::Event {
    match e {
        w::Event::Tick => m::Event::Tick,
        w::Event::Response(a) => m::Event::Response {
            answer: match a {
                w::Answer::Accept => m::Answer::Accept,
                w::Answer::Refuse => m::Answer::Refuse,
            },
        },
        w::Event::Bounce(channel) => m::Event::Bounce { channel },
        w::Event::ManualDecision(d) => m::Event::ManualDecision(m::Decision {
            kind: match d.kind {
                w::DecisionKind::Manual => m::DecisionKind::Manual,
                w::DecisionKind::Restart => m::DecisionKind::Restart,
                w::DecisionKind::Cleanup => m::DecisionKind::Cleanup,
                w::DecisionKind::OtherBasis => m::DecisionKind::OtherBasis,
                w::DecisionKind::Keep => m::DecisionKind::Keep,
            },
            by: d.by,
            reason: d.reason,
            after_days: d.after_days,
            mode: d.mode.map(from_mode),
        }),
        w::Event::Approve(by) => m::Event::Approve { by },
        w::Event::Withdraw => m::Event::Withdraw,
        w::Event::Used => m::Event::Used,
        w::Event::HoldOn(h) => m::Event::HoldOn {
            by: h.by,
            reason: h.reason,
        },
        w::Event::HoldOff(h) => m::Event::HoldOff {
            by: h.by,
            reason: h.reason,
        },
        w::Event::DataChanged => m::Event::DataChanged,
    }
}

// --- model → WIT --------------------------------------------------------------

fn to_state(s: m::State) -> w::State {
    match s {
        m::State::Consented => w::State::Consented,
        m::State::OtherBasis => w::State::OtherBasis,
        m::State::Unclarified => w::State::Unclarified,
        m::State::Requested => w::State::Requested,
        m::State::AwaitingDecision => w::State::AwaitingDecision,
        m::State::Paused => w::State::Paused,
        m::State::Refused => w::State::Refused,
        m::State::Withdrawn => w::State::Withdrawn,
        m::State::CleanupPending => w::State::CleanupPending,
        m::State::Purged => w::State::Purged,
    }
}

fn to_mode(mode: m::CleanupMode) -> w::CleanupMode {
    match mode {
        m::CleanupMode::Anonymise => w::CleanupMode::Anonymise,
        m::CleanupMode::Delete => w::CleanupMode::Delete,
    }
}

fn secs(t: Option<m::Timestamp>) -> Option<i64> {
    t.map(|t| t.timestamp())
}

fn to_outcome(o: m::Outcome) -> w::Outcome {
    let c = o.case;
    w::Outcome {
        case: w::Case {
            purpose: c.purpose,
            state: to_state(c.state),
            attempt: c.attempt,
            requested_at: secs(c.requested_at),
            due_at: secs(c.due_at),
            consented_at: secs(c.consented_at),
            review_at: secs(c.review_at),
            last_used_at: secs(c.last_used_at),
            assigned_to: c.assigned_to,
            basis: c.basis,
            legal_hold: c.legal_hold,
            cleanup: c.cleanup.map(|p| w::CleanupPlan {
                mode: to_mode(p.mode),
                not_before: p.not_before.timestamp(),
                reason: p.reason,
                resume_state: to_state(p.resume_state),
                requested_by: p.requested_by,
                requires_approval: p.requires_approval,
                approved_by: p.approved_by,
            }),
            updated_at: secs(c.updated_at),
        },
        actions: o
            .actions
            .into_iter()
            .map(|a| match a {
                m::Action::SendRequest {
                    channel,
                    template,
                    attempt,
                } => w::Action::SendRequest(w::SendRequest {
                    channel,
                    template,
                    attempt,
                }),
                m::Action::CreateTask {
                    assignee,
                    kind,
                    note,
                } => w::Action::CreateTask(w::Task {
                    assignee,
                    kind,
                    note,
                }),
                m::Action::BlockUse => w::Action::BlockUse,
                m::Action::Cleanup { mode } => w::Action::Cleanup(to_mode(mode)),
                m::Action::Notify { recipient, message } => {
                    w::Action::Notify(w::Notice { recipient, message })
                }
            })
            .collect(),
        trace: o
            .trace
            .into_iter()
            .map(|t| w::TraceEntry {
                hook: t.hook,
                input: t.input,
                output: t.output,
            })
            .collect(),
    }
}

fn diagnostic(d: m::Diagnostic) -> w::Diagnostic {
    w::Diagnostic {
        severity: match d.severity {
            m::Severity::Error => w::Severity::Error,
            m::Severity::Warning => w::Severity::Warning,
        },
        line: d.line,
        column: d.column,
        message: d.message,
    }
}
