//! The host's guardrails: rules no plugin or policy can override.

use crate::plugin::{Action, Band, Case, CleanupPlan, Event, Outcome, State};

/// The host's guardrails: rules no plugin or policy can override. Returns why
/// an outcome must not be applied, if it must not.
pub fn guardrail(before: &Case, event: &Event, outcome: &Outcome, now: i64) -> Option<String> {
    if before.state == State::Purged && outcome.case != *before {
        return Some("purged is final; the plugin tried to change a purged case".to_owned());
    }
    // A contact's "no" ends only by their own "yes": no policy, tick or
    // person turns it into consent.
    if said_no(before) && outcome.case.state == State::Consented && *event != Event::Consent {
        return Some(format!(
            "the contact said no ({}); only their own consent through their personal link ends that",
            before.state
        ));
    }
    // An objection (Art. 21 GDPR) is final: only the contact's own
    // consent, or the erasure, ends it.
    if objected(before)
        && !objected(&outcome.case)
        && outcome.case.state != State::Purged
        && !(outcome.case.state == State::Consented && *event == Event::Consent)
    {
        return Some(format!(
            "the contact objected; nothing but their own consent ends that (the plugin tried {} → {})",
            before.state, outcome.case.state
        ));
    }
    // A basis the policy sets never overrides a "no" and never replaces a
    // consent: it is only for contacts nobody has an answer from.
    let policy_basis = outcome.case.state == State::OtherBasis
        && outcome.case.basis.as_ref().is_some_and(|b| b.by_policy());
    if policy_basis && (before.state.band() == Band::Removed || before.state == State::Consented) {
        return Some(format!(
            "a basis set by the policy may not follow {}: it never overrides a refusal, a withdrawal or an objection, nor replaces a consent",
            before.state
        ));
    }
    // Another basis overrides a refusal, a withdrawal or a pending cleanup
    // only as a second person's approval of one a first person asked for.
    if matches!(
        before.state,
        State::Refused | State::Withdrawn | State::CleanupPending
    ) && outcome.case.state == State::OtherBasis
        && before.pending_basis.is_none()
    {
        return Some(format!(
            "another basis may follow {} only when a second person approves it",
            before.state
        ));
    }
    for action in &outcome.actions {
        match action {
            Action::SendRequest { .. }
                if before.state.band() == Band::Removed
                    || outcome.case.state.band() == Band::Removed =>
            {
                return Some(format!(
                    "the plugin asked to contact someone whose case is {}; klar never does",
                    before.state
                ));
            }
            Action::Cleanup { .. } => {
                if before.legal_hold || outcome.case.legal_hold {
                    return Some("the case is on legal hold; no cleanup".to_owned());
                }
                match &before.cleanup {
                    Some(plan) if plan.not_before.timestamp() <= now => {}
                    Some(plan) => {
                        return Some(format!(
                            "cleanup before the grace period ends ({}) is refused",
                            plan.not_before.to_rfc3339()
                        ));
                    }
                    None => {
                        return Some(
                            "cleanup without a pending cleanup plan is refused".to_owned(),
                        );
                    }
                }
            }
            _ => {}
        }
    }
    None
}

/// Whether the contact refused, withdrew or objected: the case is in one
/// of those states, or its cleanup started from one (or returns to one if
/// a person stops it). klar never asks them again; only their own consent
/// ends it.
pub fn said_no(case: &Case) -> bool {
    match case.state {
        State::Refused | State::Withdrawn | State::Objected => true,
        State::CleanupPending => case.cleanup.as_ref().is_some_and(CleanupPlan::after_no),
        _ => false,
    }
}

/// Whether the contact objected: the case is objected, or its cleanup
/// started from the objection (or returns to it if a person stops it).
pub fn objected(case: &Case) -> bool {
    match case.state {
        State::Objected => true,
        State::CleanupPending => case
            .cleanup
            .as_ref()
            .is_some_and(CleanupPlan::after_objection),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin::CleanupMode;
    use chrono::Duration;
    use chrono::{DateTime, Utc};

    fn t(days: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_764_500_000, 0).unwrap_or_default() + Duration::days(days)
    }

    fn outcome(case: Case, actions: Vec<Action>) -> Outcome {
        Outcome {
            case,
            actions,
            trace: Vec::new(),
        }
    }

    #[test]
    fn another_basis_over_a_refusal_needs_the_approval_of_one_asked_for() {
        let mut before = Case::new("contact-data");
        before.state = State::Refused;
        let mut after = before.clone();
        after.state = State::OtherBasis;
        assert!(guardrail(&before, &Event::Tick, &outcome(after.clone(), vec![]), 0).is_some());
        before.pending_basis = Some(crate::plugin::PendingBasis {
            reason: "Vertrag".into(),
            requested_by: "jk".into(),
        });
        after.pending_basis = None;
        assert_eq!(
            guardrail(&before, &Event::Tick, &outcome(after, vec![]), 0),
            None
        );
    }

    #[test]
    fn only_the_contacts_own_consent_ends_their_no() {
        for state in [State::Refused, State::Withdrawn] {
            let mut before = Case::new("newsletter");
            before.state = state;
            let mut after = before.clone();
            after.state = State::Consented;
            let why = guardrail(&before, &Event::Tick, &outcome(after.clone(), vec![]), 0)
                .expect("refused");
            assert!(why.starts_with("the contact said no"), "{why}");
            let accept = Event::Response {
                answer: crate::plugin::Answer::Accept,
            };
            assert!(guardrail(&before, &accept, &outcome(after.clone(), vec![]), 0).is_some());
            assert_eq!(
                guardrail(&before, &Event::Consent, &outcome(after, vec![]), 0),
                None
            );
        }
    }

    #[test]
    fn a_refused_contact_is_never_asked_again() {
        let mut before = Case::new("contact-data");
        before.state = State::Refused;
        let mut after = before.clone();
        after.state = State::Requested;
        let send = Action::SendRequest {
            channel: "email".into(),
            template: "request".into(),
            attempt: 1,
            link_expires_at: t(180),
        };
        assert!(guardrail(&before, &Event::Tick, &outcome(after, vec![send]), 0).is_some());
    }

    #[test]
    fn no_cleanup_on_hold_or_before_the_grace_period_ends() {
        let mut before = Case::new("contact-data");
        before.state = State::CleanupPending;
        before.cleanup = Some(crate::plugin::CleanupPlan {
            mode: CleanupMode::Delete,
            not_before: t(10),
            reason: "refusal".into(),
            resume_state: State::Refused,
            resume_due_at: None,
            requested_by: None,
            requires_approval: false,
            approved_by: None,
        });
        let mut after = before.clone();
        after.state = State::Purged;
        let purge = outcome(
            after,
            vec![Action::Cleanup {
                mode: CleanupMode::Delete,
                keep_evidence_until: t(11),
            }],
        );
        let early = guardrail(&before, &Event::Tick, &purge, t(5).timestamp()).expect("refused");
        assert!(
            early.starts_with("cleanup before the grace period ends"),
            "{early}"
        );
        assert_eq!(
            guardrail(&before, &Event::Tick, &purge, t(11).timestamp()),
            None
        );
        before.legal_hold = true;
        assert_eq!(
            guardrail(&before, &Event::Tick, &purge, t(11).timestamp()).as_deref(),
            Some("the case is on legal hold; no cleanup")
        );
    }

    fn policy_basis() -> crate::plugin::Basis {
        crate::plugin::Basis {
            kind: crate::plugin::BasisKind::ExistingCustomer,
            reason: "Bestandskunde".into(),
            decided_by: None,
            since: Some(t(0)),
            review_at: Some(t(365)),
            relied_on: Default::default(),
            policy_version: None,
        }
    }

    #[test]
    fn no_policy_basis_over_a_no_or_a_consent() {
        for state in [
            State::Refused,
            State::Withdrawn,
            State::Objected,
            State::Consented,
        ] {
            let mut before = Case::new("newsletter");
            before.state = state;
            let mut after = before.clone();
            after.state = State::OtherBasis;
            after.basis = Some(policy_basis());
            for event in [Event::Tick, Event::DataChanged] {
                let why = guardrail(&before, &event, &outcome(after.clone(), vec![]), 0)
                    .unwrap_or_else(|| panic!("{state} → policy basis was let through"));
                assert!(!why.is_empty());
            }
        }
        let before = Case::new("newsletter");
        let mut after = before.clone();
        after.state = State::OtherBasis;
        after.basis = Some(policy_basis());
        assert_eq!(
            guardrail(&before, &Event::Tick, &outcome(after, vec![]), 0),
            None
        );
    }

    #[test]
    fn an_objection_is_final_even_for_a_second_person() {
        let mut before = Case::new("newsletter");
        before.state = State::Objected;
        before.pending_basis = Some(crate::plugin::PendingBasis {
            reason: "Vertrag".into(),
            requested_by: "jk".into(),
        });
        for state in [State::OtherBasis, State::Requested, State::Refused] {
            let mut after = before.clone();
            after.state = state;
            after.pending_basis = None;
            let approve = Event::Approve { by: "dpo".into() };
            let why = guardrail(&before, &approve, &outcome(after, vec![]), 0)
                .unwrap_or_else(|| panic!("objected → {state} was let through"));
            assert!(why.contains("objected"), "{why}");
        }
        let mut after = before.clone();
        after.state = State::Consented;
        assert_eq!(
            guardrail(&before, &Event::Consent, &outcome(after, vec![]), 0),
            None
        );
    }

    #[test]
    fn purged_is_final() {
        let mut before = Case::new("contact-data");
        before.state = State::Purged;
        let mut after = before.clone();
        after.state = State::Consented;
        assert!(guardrail(&before, &Event::Tick, &outcome(after, vec![]), 0).is_some());
        assert_eq!(
            guardrail(&before, &Event::Tick, &outcome(before.clone(), vec![]), 0),
            None
        );
    }
}
