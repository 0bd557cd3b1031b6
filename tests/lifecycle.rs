//! Every lifecycle path, through the real component loaded by the real host.

mod support;

use std::time::{Duration, Instant};

use klar::plugin::{
    Action, Answer, Case, CleanupMode, Decision, DecisionKind, Event, Outcome, State, StepError,
};
use klar::runtime::{Session, StepFailure};
use support::*;

/// A case walked through simulated time by the component.
struct Walk {
    session: Session,
    case: Case,
    contact: klar::plugin::Contact,
}

impl Walk {
    fn new(policy: &str) -> Walk {
        let session = standard_plugin()
            .open("test.rhai", policy)
            .unwrap_or_else(|e| panic!("the policy opens: {e:?}"));
        Walk {
            session,
            case: new_case(),
            contact: contact("C00042"),
        }
    }

    fn try_at(
        &mut self,
        now: chrono::DateTime<chrono::Utc>,
        event: Event,
    ) -> Result<Outcome, StepFailure> {
        self.session
            .step(&self.case, &self.contact, &event, &clock(now))
    }

    fn at(&mut self, now: chrono::DateTime<chrono::Utc>, event: Event) -> Outcome {
        let outcome = self
            .try_at(now, event)
            .unwrap_or_else(|e| panic!("step fails: {e}"));
        self.case = outcome.case.clone();
        outcome
    }

    /// Ticks when the case is due, as the scheduler will.
    fn tick_due(&mut self) -> Outcome {
        let due = self.case.due_at.expect("the case is scheduled");
        self.at(due, tick())
    }
}

fn sent(o: &Outcome) -> Vec<(String, String, u32)> {
    o.actions
        .iter()
        .filter_map(|a| match a {
            Action::SendRequest {
                channel,
                template,
                attempt,
                ..
            } => Some((channel.clone(), template.clone(), *attempt)),
            _ => None,
        })
        .collect()
}

fn decide(kind: DecisionKind, by: &str) -> Event {
    Event::ManualDecision(Decision {
        kind,
        by: by.to_owned(),
        reason: "Rücksprache mit dem Vertrieb".to_owned(),
        after_days: None,
        mode: None,
    })
}

#[test]
fn the_default_policy_asks_reminds_on_business_days_and_switches_to_the_phone() {
    let mut walk = Walk::new(DEFAULT_POLICY);
    let first = walk.at(t0(), tick());
    assert_eq!(sent(&first), [("email".into(), "request".into(), 1)]);
    // 14 business days after Monday 2026-11-30 is Friday 2026-12-18.
    assert_eq!(walk.case.due_at, Some(day(18)));
    let second = walk.tick_due();
    assert_eq!(sent(&second), [("email".into(), "reminder".into(), 2)]);
    let third = walk.tick_due();
    assert_eq!(sent(&third), [("phone-task".into(), "reminder".into(), 3)]);
    assert!(
        third
            .trace
            .iter()
            .any(|t| t.hook == "channel" && t.input.contains("attempt 3"))
    );
}

#[test]
fn consent_after_the_second_reminder_sets_a_review_date() {
    let mut walk = Walk::new(DEFAULT_POLICY);
    walk.at(t0(), tick());
    walk.tick_due();
    walk.tick_due();
    let consent = walk.at(
        day(40),
        Event::Response {
            answer: Answer::Accept,
        },
    );
    assert_eq!(consent.case.state, State::Consented);
    assert_eq!(consent.case.review_at, Some(day(40 + 730)));
    assert_eq!(
        consent.case.due_at,
        Some(day(40 + 365)),
        "staleness comes first"
    );
}

#[test]
fn refusal_then_cleanup_after_the_grace_period_then_purge() {
    let mut walk = Walk::new(DEFAULT_POLICY);
    walk.at(t0(), tick());
    let refused = walk.at(
        day(2),
        Event::Response {
            answer: Answer::Refuse,
        },
    );
    assert_eq!(refused.case.state, State::CleanupPending);
    assert_eq!(refused.actions.first(), Some(&Action::BlockUse));
    let early = walk.at(day(20), tick());
    assert_eq!(early.case.state, State::CleanupPending);
    let purged = walk.tick_due();
    assert_eq!(purged.case.state, State::Purged);
    assert!(
        matches!(
            purged.actions.as_slice(),
            [Action::Cleanup { mode: CleanupMode::Anonymise, keep_evidence_until }]
                if *keep_evidence_until == purged.case.updated_at.unwrap_or_default() + chrono::Duration::days(1095)
        ),
        "{:?}",
        purged.actions
    );
    assert!(matches!(
        walk.try_at(
            day(60),
            Event::Response {
                answer: Answer::Accept
            }
        ),
        Err(StepFailure::Step(StepError::Rejected { .. }))
    ));
}

#[test]
fn withdrawal_after_consent_blocks_at_once() {
    let mut walk = Walk::new(DEFAULT_POLICY);
    walk.at(t0(), tick());
    walk.at(
        day(1),
        Event::Response {
            answer: Answer::Accept,
        },
    );
    let withdrawn = walk.at(day(100), Event::Withdraw);
    assert_eq!(withdrawn.case.state, State::CleanupPending);
    assert_eq!(withdrawn.actions.first(), Some(&Action::BlockUse));
    assert_eq!(
        withdrawn.case.cleanup.as_ref().map(|p| p.reason.as_str()),
        Some("withdrawal")
    );
}

#[test]
fn no_reaction_goes_to_the_owner_who_restarts_later() {
    let mut walk = Walk::new(DEFAULT_POLICY);
    walk.at(t0(), tick());
    walk.tick_due();
    walk.tick_due();
    let handed = walk.tick_due();
    assert_eq!(handed.case.state, State::AwaitingDecision);
    assert_eq!(handed.case.assigned_to.as_deref(), Some("jk"));
    assert!(
        handed
            .actions
            .iter()
            .any(|a| matches!(a, Action::CreateTask { kind, .. } if kind == "decide"))
    );

    let mut restart = decide(DecisionKind::Restart, "jk");
    if let Event::ManualDecision(d) = &mut restart {
        d.after_days = Some(90);
    }
    let paused = walk.at(day(60), restart);
    assert_eq!(paused.case.state, State::Paused);
    let again = walk.tick_due();
    assert_eq!(sent(&again), [("email".into(), "request".into(), 1)]);
}

#[test]
fn no_reaction_can_lead_to_cleanup_with_a_second_pair_of_eyes() {
    let policy = r#"
        fn reminder_days(contact) { [7] }
        fn on_no_response(contact, case) { #{ action: "cleanup", mode: "delete", grace_days: 10 } }
        fn requires_approval(contact, case) { true }
    "#;
    let mut walk = Walk::new(policy);
    walk.at(t0(), tick());
    walk.tick_due();
    let pending = walk.tick_due();
    assert_eq!(pending.case.state, State::CleanupPending);
    assert!(
        pending
            .actions
            .iter()
            .any(|a| matches!(a, Action::CreateTask { kind, .. } if kind == "approve-cleanup"))
    );
    let waiting = walk.tick_due();
    assert_eq!(
        waiting.case.state,
        State::CleanupPending,
        "no purge without approval"
    );
    walk.at(day(40), Event::Approve { by: "dpo".into() });
    let purged = walk.at(day(40), tick());
    assert!(
        matches!(
            purged.actions.as_slice(),
            [Action::Cleanup { mode: CleanupMode::Delete, keep_evidence_until }]
                if *keep_evidence_until == purged.case.updated_at.unwrap_or_default() + chrono::Duration::days(1095)
        ),
        "{:?}",
        purged.actions
    );
}

#[test]
fn keep_and_other_basis_are_decisions_of_a_person() {
    let mut walk = Walk::new(DEFAULT_POLICY);
    walk.at(t0(), tick());
    walk.at(day(1), decide(DecisionKind::Cleanup, "jk"));
    assert_eq!(walk.case.state, State::CleanupPending);
    assert!(matches!(
        walk.try_at(day(2), Event::Approve { by: "jk".into() }),
        Err(StepFailure::Step(StepError::Rejected { .. }))
    ));
    walk.at(day(2), decide(DecisionKind::Keep, "dpo"));
    assert_eq!(walk.case.state, State::Requested);
    let basis = walk.at(day(3), decide(DecisionKind::OtherBasis, "dpo"));
    assert_eq!(basis.case.state, State::OtherBasis);
    assert_eq!(
        basis.case.basis.as_ref().map(|b| b.reason.as_str()),
        Some("Rücksprache mit dem Vertrieb")
    );
}

#[test]
fn legal_hold_blocks_cleanup() {
    let mut walk = Walk::new(DEFAULT_POLICY);
    walk.at(t0(), tick());
    walk.at(
        day(1),
        Event::Response {
            answer: Answer::Refuse,
        },
    );
    walk.at(
        day(2),
        Event::HoldOn {
            by: "legal".into(),
            reason: "Az. 4711/26".into(),
        },
    );
    let held = walk.at(day(90), tick());
    assert_eq!(held.case.state, State::CleanupPending);
    assert!(held.actions.is_empty());
    walk.at(
        day(91),
        Event::HoldOff {
            by: "legal".into(),
            reason: "erledigt".into(),
        },
    );
    let purged = walk.at(day(91), tick());
    assert_eq!(purged.case.state, State::Purged);
}

#[test]
fn an_unused_consent_is_asked_again() {
    let mut walk = Walk::new(DEFAULT_POLICY);
    walk.at(t0(), tick());
    walk.at(
        day(1),
        Event::Response {
            answer: Answer::Accept,
        },
    );
    walk.at(day(100), Event::Used);
    assert_eq!(walk.case.due_at, Some(day(100 + 365)));
    let again = walk.tick_due();
    // Asked again while the consent may still be used.
    assert_eq!(again.case.state, State::Consented);
    assert_eq!(sent(&again)[0].1, "reconfirm");
}

#[test]
fn a_batch_gives_the_same_outcomes_as_single_steps_and_the_native_library() {
    let (inputs, clock) = klar::bench::workload(300);
    let plugin = standard_plugin();
    let mut session = plugin.open("default.rhai", DEFAULT_POLICY).expect("opens");
    let native = klar::plugin::Policy::compile(DEFAULT_POLICY).expect("compiles natively");
    let batch = session.step_batch(&inputs, &clock);
    assert_eq!(batch.len(), inputs.len());
    for ((case, contact, event), batched) in inputs.iter().zip(batch) {
        let single = session.step(case, contact, event, &clock);
        assert_eq!(batched, single);
        let native = klar::plugin::step(&native, case, contact, event, &clock);
        assert_eq!(
            batched.map_err(|e| e.to_string()),
            native.map_err(|e| StepFailure::Step(e).to_string())
        );
    }
}

#[test]
fn an_endless_policy_is_stopped_with_line_and_column_in_well_under_a_second() {
    let policy = "fn channel(contact, attempt) {\n    let n = 0;\n    while true { n += 1; }\n    \"email\"\n}\n";
    let started = Instant::now();
    let err = match standard_plugin().open("loop.rhai", policy) {
        Err(klar::runtime::OpenError::Policy(d)) => d,
        Ok(_) => panic!("an endless policy must not open"),
        Err(e) => panic!("unexpected: {e}"),
    };
    // The plugin is already loaded, so this measures the check alone.
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(err[0].line, 3, "{err:?}");
    assert!(err[0].column > 0, "{err:?}");
    assert!(
        err[0].message.contains("the policy ran too long"),
        "{err:?}"
    );
}

#[test]
fn a_policy_error_at_run_time_is_a_step_error_not_a_crash() {
    let policy = "fn answer_days(contact) {\n  if contact.source == \"import\" { throw \"imports need a manual check\" }\n  14\n}\nfn reminder_days(contact) { [] }";
    let mut walk = Walk::new(policy);
    walk.contact.source = "import".into();
    let err = walk.try_at(t0(), tick()).expect_err("the hook throws");
    match err {
        StepFailure::Step(StepError::Policy { diagnostic }) => {
            assert_eq!(diagnostic.line, 2);
            assert!(diagnostic.message.contains("imports need a manual check"));
        }
        other => panic!("expected a policy error, got {other:?}"),
    }
    // The store is fine: the next case steps normally.
    walk.contact.source = "web-form".into();
    assert!(walk.try_at(t0(), tick()).is_ok());
    assert_eq!(walk.session.rebuilds(), 0);
}
