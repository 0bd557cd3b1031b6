//! Conversions between the plugin model (what the host stores and prints) and
//! the generated WIT types (what crosses into the component). Times cross as
//! Unix seconds.

use chrono::DateTime;

use super::bindings::types as w;
use crate::plugin as m;

fn secs(t: Option<m::Timestamp>) -> Option<i64> {
    t.map(|t| t.timestamp())
}

fn time(seconds: i64) -> Result<m::Timestamp, String> {
    DateTime::from_timestamp(seconds, 0)
        .ok_or_else(|| format!("the plugin returned time {seconds}, which is out of range"))
}

fn opt_time(seconds: Option<i64>) -> Result<Option<m::Timestamp>, String> {
    seconds.map(time).transpose()
}

pub fn clock(c: &m::Clock) -> w::Clock {
    w::Clock {
        now: c.now.timestamp(),
        utc_offset_minutes: c.utc_offset_minutes,
    }
}

fn state(s: m::State) -> w::State {
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

fn state_back(s: w::State) -> m::State {
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

fn mode(mode: m::CleanupMode) -> w::CleanupMode {
    match mode {
        m::CleanupMode::Anonymise => w::CleanupMode::Anonymise,
        m::CleanupMode::Delete => w::CleanupMode::Delete,
    }
}

fn mode_back(mode: w::CleanupMode) -> m::CleanupMode {
    match mode {
        w::CleanupMode::Anonymise => m::CleanupMode::Anonymise,
        w::CleanupMode::Delete => m::CleanupMode::Delete,
    }
}

pub fn case(c: &m::Case) -> w::Case {
    w::Case {
        purpose: c.purpose.clone(),
        state: state(c.state),
        attempt: c.attempt,
        requested_at: secs(c.requested_at),
        due_at: secs(c.due_at),
        consented_at: secs(c.consented_at),
        review_at: secs(c.review_at),
        last_used_at: secs(c.last_used_at),
        assigned_to: c.assigned_to.clone(),
        basis: c.basis.clone(),
        legal_hold: c.legal_hold,
        cleanup: c.cleanup.as_ref().map(|p| w::CleanupPlan {
            mode: mode(p.mode),
            not_before: p.not_before.timestamp(),
            reason: p.reason.clone(),
            resume_state: state(p.resume_state),
            requested_by: p.requested_by.clone(),
            requires_approval: p.requires_approval,
            approved_by: p.approved_by.clone(),
        }),
        updated_at: secs(c.updated_at),
    }
}

fn case_back(c: w::Case) -> Result<m::Case, String> {
    Ok(m::Case {
        purpose: c.purpose,
        state: state_back(c.state),
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
                mode: mode_back(p.mode),
                not_before: time(p.not_before)?,
                reason: p.reason,
                resume_state: state_back(p.resume_state),
                requested_by: p.requested_by,
                requires_approval: p.requires_approval,
                approved_by: p.approved_by,
            }),
        },
        updated_at: opt_time(c.updated_at)?,
    })
}

pub fn contact(c: &m::Contact) -> w::Contact {
    w::Contact {
        id: c.id.clone(),
        first_name: c.first_name.clone(),
        last_name: c.last_name.clone(),
        email: c.email.clone(),
        phone: c.phone.clone(),
        owner: c.owner.clone(),
        source: c.source.clone(),
        language: c.language.clone(),
        created_at: c.created_at.timestamp(),
        attributes: c
            .attributes
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    }
}

pub fn event(e: &m::Event) -> w::Event {
    match e {
        m::Event::Tick => w::Event::Tick,
        m::Event::Response { answer } => w::Event::Response(match answer {
            m::Answer::Accept => w::Answer::Accept,
            m::Answer::Refuse => w::Answer::Refuse,
        }),
        m::Event::Bounce { channel } => w::Event::Bounce(channel.clone()),
        m::Event::ManualDecision(d) => w::Event::ManualDecision(w::Decision {
            kind: match d.kind {
                m::DecisionKind::Manual => w::DecisionKind::Manual,
                m::DecisionKind::Restart => w::DecisionKind::Restart,
                m::DecisionKind::Cleanup => w::DecisionKind::Cleanup,
                m::DecisionKind::OtherBasis => w::DecisionKind::OtherBasis,
                m::DecisionKind::Keep => w::DecisionKind::Keep,
            },
            by: d.by.clone(),
            reason: d.reason.clone(),
            after_days: d.after_days,
            mode: d.mode.map(mode),
        }),
        m::Event::Approve { by } => w::Event::Approve(by.clone()),
        m::Event::Withdraw => w::Event::Withdraw,
        m::Event::Used => w::Event::Used,
        m::Event::HoldOn { by, reason } => w::Event::HoldOn(w::HoldChange {
            by: by.clone(),
            reason: reason.clone(),
        }),
        m::Event::HoldOff { by, reason } => w::Event::HoldOff(w::HoldChange {
            by: by.clone(),
            reason: reason.clone(),
        }),
        m::Event::DataChanged => w::Event::DataChanged,
    }
}

/// A plugin's outcome; an impossible time in it is the plugin's fault.
pub fn outcome(o: w::Outcome) -> Result<m::Outcome, String> {
    Ok(m::Outcome {
        case: case_back(o.case)?,
        actions: o
            .actions
            .into_iter()
            .map(|a| match a {
                w::Action::SendRequest(r) => m::Action::SendRequest {
                    channel: r.channel,
                    template: r.template,
                    attempt: r.attempt,
                },
                w::Action::CreateTask(t) => m::Action::CreateTask {
                    assignee: t.assignee,
                    kind: t.kind,
                    note: t.note,
                },
                w::Action::BlockUse => m::Action::BlockUse,
                w::Action::Cleanup(x) => m::Action::Cleanup { mode: mode_back(x) },
                w::Action::Notify(n) => m::Action::Notify {
                    recipient: n.recipient,
                    message: n.message,
                },
            })
            .collect(),
        trace: o
            .trace
            .into_iter()
            .map(|t| m::TraceEntry {
                hook: t.hook,
                input: t.input,
                output: t.output,
            })
            .collect(),
    })
}

pub fn diagnostic(d: w::Diagnostic) -> m::Diagnostic {
    m::Diagnostic {
        severity: match d.severity {
            w::Severity::Error => m::Severity::Error,
            w::Severity::Warning => m::Severity::Warning,
        },
        line: d.line,
        column: d.column,
        message: d.message,
    }
}

pub fn step_error(e: w::StepError) -> m::StepError {
    match e {
        w::StepError::Policy(d) => m::StepError::Policy {
            diagnostic: diagnostic(d),
        },
        w::StepError::Rejected(reason) => m::StepError::Rejected { reason },
    }
}
