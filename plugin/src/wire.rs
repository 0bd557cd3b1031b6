// Conversions between the WIT types and the plugin model, written once for both
// sides of the boundary.
//
// wit-bindgen (in the component) and wasmtime's bindgen (in the host) generate
// Rust types of the same names and shapes from `wit/consent.wit`, so the same
// conversions serve both: `plugin/src/component.rs` and
// `host/src/runtime/convert.rs` each `include!` this file into a module that
// has `w` (the generated `types` module) and `m` (the model) in scope. Times
// cross the boundary as Unix seconds. Each side uses one direction per type;
// the other is unused there.
//
// (Plain comments, not `//!`: an included file cannot carry inner attributes;
// the including module allows the unused direction.)

fn time_from_wire(seconds: i64) -> Result<m::Timestamp, String> {
    chrono::DateTime::from_timestamp(seconds, 0)
        .ok_or_else(|| format!("time {seconds} is out of range"))
}

fn opt_time_from_wire(seconds: Option<i64>) -> Result<Option<m::Timestamp>, String> {
    seconds.map(time_from_wire).transpose()
}

fn opt_time_to_wire(t: Option<m::Timestamp>) -> Option<i64> {
    t.map(|t| t.timestamp())
}

/// 1970-01-01, day 0 of the calendar's closed days.
fn epoch_day() -> chrono::NaiveDate {
    chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default()
}

pub fn clock_to_wire(c: &m::Clock) -> w::Clock {
    w::Clock {
        now: c.now.timestamp(),
        utc_offset_minutes: c.utc_offset_minutes,
        calendar: w::Calendar {
            offsets: c
                .calendar
                .offsets
                .iter()
                .map(|o| w::OffsetChange {
                    starts: o.starts.timestamp(),
                    minutes: o.minutes,
                })
                .collect(),
            closed_days: c
                .calendar
                .closed_days
                .iter()
                .map(|d| (*d - epoch_day()).num_days() as i32)
                .collect(),
        },
    }
}

pub fn clock_from_wire(c: w::Clock) -> Result<m::Clock, String> {
    let offsets = c
        .calendar
        .offsets
        .into_iter()
        .map(|o| {
            Ok(m::OffsetChange {
                starts: time_from_wire(o.starts)?,
                minutes: o.minutes,
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    let closed_days = c
        .calendar
        .closed_days
        .into_iter()
        .map(|d| {
            epoch_day()
                .checked_add_signed(chrono::Duration::days(i64::from(d)))
                .ok_or_else(|| format!("closed day {d} is out of range"))
        })
        .collect::<Result<Vec<_>, String>>()?;
    Ok(m::Clock {
        now: time_from_wire(c.now)?,
        utc_offset_minutes: c.utc_offset_minutes,
        calendar: m::Calendar {
            offsets,
            closed_days,
        },
    })
}

fn state_to_wire(s: m::State) -> w::State {
    match s {
        m::State::Consented => w::State::Consented,
        m::State::OtherBasis => w::State::OtherBasis,
        m::State::Unclarified => w::State::Unclarified,
        m::State::Requested => w::State::Requested,
        m::State::AwaitingDecision => w::State::AwaitingDecision,
        m::State::Paused => w::State::Paused,
        m::State::Refused => w::State::Refused,
        m::State::Withdrawn => w::State::Withdrawn,
        m::State::Objected => w::State::Objected,
        m::State::CleanupPending => w::State::CleanupPending,
        m::State::Purged => w::State::Purged,
    }
}

fn state_from_wire(s: w::State) -> m::State {
    match s {
        w::State::Consented => m::State::Consented,
        w::State::OtherBasis => m::State::OtherBasis,
        w::State::Unclarified => m::State::Unclarified,
        w::State::Requested => m::State::Requested,
        w::State::AwaitingDecision => m::State::AwaitingDecision,
        w::State::Paused => m::State::Paused,
        w::State::Refused => m::State::Refused,
        w::State::Withdrawn => m::State::Withdrawn,
        w::State::Objected => m::State::Objected,
        w::State::CleanupPending => m::State::CleanupPending,
        w::State::Purged => m::State::Purged,
    }
}

fn basis_to_wire(b: m::Basis) -> w::LegalBasis {
    w::LegalBasis {
        kind: match b.kind {
            m::BasisKind::Contract => w::BasisKind::Contract,
            m::BasisKind::LegitimateInterest => w::BasisKind::LegitimateInterest,
            m::BasisKind::ExistingCustomer => w::BasisKind::ExistingCustomer,
            m::BasisKind::LegalObligation => w::BasisKind::LegalObligation,
            m::BasisKind::Other => w::BasisKind::Other,
        },
        reason: b.reason,
        decided_by: b.decided_by,
        since: opt_time_to_wire(b.since),
        review_at: opt_time_to_wire(b.review_at),
        relied_on: b.relied_on.into_iter().collect(),
        policy_version: b.policy_version,
    }
}

fn basis_from_wire(b: w::LegalBasis) -> Result<m::Basis, String> {
    Ok(m::Basis {
        kind: match b.kind {
            w::BasisKind::Contract => m::BasisKind::Contract,
            w::BasisKind::LegitimateInterest => m::BasisKind::LegitimateInterest,
            w::BasisKind::ExistingCustomer => m::BasisKind::ExistingCustomer,
            w::BasisKind::LegalObligation => m::BasisKind::LegalObligation,
            w::BasisKind::Other => m::BasisKind::Other,
        },
        reason: b.reason,
        decided_by: b.decided_by,
        since: opt_time_from_wire(b.since)?,
        review_at: opt_time_from_wire(b.review_at)?,
        relied_on: b.relied_on.into_iter().collect(),
        policy_version: b.policy_version,
    })
}

fn mode_to_wire(mode: m::CleanupMode) -> w::CleanupMode {
    match mode {
        m::CleanupMode::Anonymise => w::CleanupMode::Anonymise,
        m::CleanupMode::Delete => w::CleanupMode::Delete,
    }
}

fn mode_from_wire(mode: w::CleanupMode) -> m::CleanupMode {
    match mode {
        w::CleanupMode::Anonymise => m::CleanupMode::Anonymise,
        w::CleanupMode::Delete => m::CleanupMode::Delete,
    }
}

pub fn case_to_wire(c: m::Case) -> w::Case {
    w::Case {
        purpose: c.purpose,
        state: state_to_wire(c.state),
        attempt: c.attempt,
        requested_at: opt_time_to_wire(c.requested_at),
        due_at: opt_time_to_wire(c.due_at),
        consented_at: opt_time_to_wire(c.consented_at),
        review_at: opt_time_to_wire(c.review_at),
        last_used_at: opt_time_to_wire(c.last_used_at),
        assigned_to: c.assigned_to,
        basis: c.basis.map(basis_to_wire),
        legal_hold: c.legal_hold,
        cleanup: c.cleanup.map(|p| w::CleanupPlan {
            mode: mode_to_wire(p.mode),
            not_before: p.not_before.timestamp(),
            reason: p.reason,
            resume_state: state_to_wire(p.resume_state),
            resume_due_at: opt_time_to_wire(p.resume_due_at),
            requested_by: p.requested_by,
            requires_approval: p.requires_approval,
            approved_by: p.approved_by,
        }),
        updated_at: opt_time_to_wire(c.updated_at),
        bounced: c.bounced,
        pending_basis: c.pending_basis.map(|p| w::PendingBasis {
            reason: p.reason,
            requested_by: p.requested_by,
        }),
    }
}

pub fn case_from_wire(c: w::Case) -> Result<m::Case, String> {
    Ok(m::Case {
        purpose: c.purpose,
        state: state_from_wire(c.state),
        attempt: c.attempt,
        requested_at: opt_time_from_wire(c.requested_at)?,
        due_at: opt_time_from_wire(c.due_at)?,
        consented_at: opt_time_from_wire(c.consented_at)?,
        review_at: opt_time_from_wire(c.review_at)?,
        last_used_at: opt_time_from_wire(c.last_used_at)?,
        assigned_to: c.assigned_to,
        basis: c.basis.map(basis_from_wire).transpose()?,
        legal_hold: c.legal_hold,
        cleanup: match c.cleanup {
            None => None,
            Some(p) => Some(m::CleanupPlan {
                mode: mode_from_wire(p.mode),
                not_before: time_from_wire(p.not_before)?,
                reason: p.reason,
                resume_state: state_from_wire(p.resume_state),
                resume_due_at: opt_time_from_wire(p.resume_due_at)?,
                requested_by: p.requested_by,
                requires_approval: p.requires_approval,
                approved_by: p.approved_by,
            }),
        },
        updated_at: opt_time_from_wire(c.updated_at)?,
        bounced: c.bounced,
        pending_basis: c.pending_basis.map(|p| m::PendingBasis {
            reason: p.reason,
            requested_by: p.requested_by,
        }),
    })
}

pub fn contact_to_wire(c: m::Contact) -> w::Contact {
    w::Contact {
        id: c.id,
        first_name: c.first_name,
        last_name: c.last_name,
        email: c.email,
        phone: c.phone,
        owner: c.owner,
        source: c.source,
        language: c.language,
        created_at: c.created_at.timestamp(),
        attributes: c.attributes.into_iter().collect(),
    }
}

pub fn contact_from_wire(c: w::Contact) -> Result<m::Contact, String> {
    Ok(m::Contact {
        id: c.id,
        first_name: c.first_name,
        last_name: c.last_name,
        email: c.email,
        phone: c.phone,
        owner: c.owner,
        source: c.source,
        language: c.language,
        created_at: time_from_wire(c.created_at)?,
        attributes: c.attributes.into_iter().collect(),
    })
}

pub fn event_to_wire(e: m::Event) -> w::Event {
    match e {
        m::Event::Tick => w::Event::Tick,
        m::Event::Response { answer } => w::Event::Response(match answer {
            m::Answer::Accept => w::Answer::Accept,
            m::Answer::Refuse => w::Answer::Refuse,
        }),
        m::Event::Bounce { channel } => w::Event::Bounce(channel),
        m::Event::ManualDecision(d) => w::Event::ManualDecision(w::Decision {
            kind: match d.kind {
                m::DecisionKind::Manual => w::DecisionKind::Manual,
                m::DecisionKind::Restart => w::DecisionKind::Restart,
                m::DecisionKind::Cleanup => w::DecisionKind::Cleanup,
                m::DecisionKind::OtherBasis => w::DecisionKind::OtherBasis,
                m::DecisionKind::Keep => w::DecisionKind::Keep,
            },
            by: d.by,
            reason: d.reason,
            after_days: d.after_days,
            mode: d.mode.map(mode_to_wire),
        }),
        m::Event::Approve { by } => w::Event::Approve(by),
        m::Event::Withdraw => w::Event::Withdraw,
        m::Event::Consent => w::Event::Consent,
        m::Event::Object => w::Event::Object,
        m::Event::Used => w::Event::Used,
        m::Event::HoldOn { by, reason } => w::Event::HoldOn(w::HoldChange { by, reason }),
        m::Event::HoldOff { by, reason } => w::Event::HoldOff(w::HoldChange { by, reason }),
        m::Event::DataChanged => w::Event::DataChanged,
    }
}

pub fn event_from_wire(e: w::Event) -> m::Event {
    match e {
        w::Event::Tick => m::Event::Tick,
        w::Event::Response(answer) => m::Event::Response {
            answer: match answer {
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
            mode: d.mode.map(mode_from_wire),
        }),
        w::Event::Approve(by) => m::Event::Approve { by },
        w::Event::Withdraw => m::Event::Withdraw,
        w::Event::Consent => m::Event::Consent,
        w::Event::Object => m::Event::Object,
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

fn action_to_wire(a: m::Action) -> w::Action {
    match a {
        m::Action::SendRequest {
            channel,
            template,
            attempt,
            link_expires_at,
        } => w::Action::SendRequest(w::SendRequest {
            channel,
            template,
            attempt,
            link_expires_at: link_expires_at.timestamp(),
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
        m::Action::Cleanup {
            mode,
            keep_evidence_until,
        } => w::Action::Cleanup(w::CleanupOrder {
            mode: mode_to_wire(mode),
            keep_evidence_until: keep_evidence_until.timestamp(),
        }),
        m::Action::Notify { recipient, message } => {
            w::Action::Notify(w::Notice { recipient, message })
        }
    }
}

fn action_from_wire(a: w::Action) -> Result<m::Action, String> {
    Ok(match a {
        w::Action::SendRequest(r) => m::Action::SendRequest {
            channel: r.channel,
            template: r.template,
            attempt: r.attempt,
            link_expires_at: time_from_wire(r.link_expires_at)?,
        },
        w::Action::CreateTask(t) => m::Action::CreateTask {
            assignee: t.assignee,
            kind: t.kind,
            note: t.note,
        },
        w::Action::BlockUse => m::Action::BlockUse,
        w::Action::Cleanup(order) => m::Action::Cleanup {
            mode: mode_from_wire(order.mode),
            keep_evidence_until: time_from_wire(order.keep_evidence_until)?,
        },
        w::Action::Notify(n) => m::Action::Notify {
            recipient: n.recipient,
            message: n.message,
        },
    })
}

pub fn outcome_to_wire(o: m::Outcome) -> w::Outcome {
    w::Outcome {
        case: case_to_wire(o.case),
        actions: o.actions.into_iter().map(action_to_wire).collect(),
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

pub fn outcome_from_wire(o: w::Outcome) -> Result<m::Outcome, String> {
    Ok(m::Outcome {
        case: case_from_wire(o.case)?,
        actions: o
            .actions
            .into_iter()
            .map(action_from_wire)
            .collect::<Result<_, _>>()?,
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

pub fn diagnostic_to_wire(d: m::Diagnostic) -> w::Diagnostic {
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

pub fn diagnostic_from_wire(d: w::Diagnostic) -> m::Diagnostic {
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

pub fn step_error_to_wire(e: m::StepError) -> w::StepError {
    match e {
        m::StepError::Policy { diagnostic } => w::StepError::Policy(diagnostic_to_wire(diagnostic)),
        m::StepError::Rejected { reason } => w::StepError::Rejected(reason),
    }
}

pub fn step_error_from_wire(e: w::StepError) -> m::StepError {
    match e {
        w::StepError::Policy(d) => m::StepError::Policy {
            diagnostic: diagnostic_from_wire(d),
        },
        w::StepError::Rejected(reason) => m::StepError::Rejected { reason },
    }
}

pub fn probe_problem_to_wire(p: m::ProbeProblem) -> w::ProbeProblem {
    w::ProbeProblem {
        index: p.index,
        hook: p.hook,
        purpose: p.purpose,
        diagnostic: diagnostic_to_wire(p.diagnostic),
    }
}

pub fn probe_problem_from_wire(p: w::ProbeProblem) -> m::ProbeProblem {
    m::ProbeProblem {
        index: p.index,
        hook: p.hook,
        purpose: p.purpose,
        diagnostic: diagnostic_from_wire(p.diagnostic),
    }
}
