//! Every path of the lifecycle, natively, through the public `step` function.

use chrono::{TimeZone, Utc};

use super::step;
use crate::model::*;
use crate::policy::Policy;

/// Monday 2026-11-30, 09:00 UTC.
fn t0() -> Timestamp {
    Utc.with_ymd_and_hms(2026, 11, 30, 9, 0, 0)
        .single()
        .expect("valid")
}

fn day(n: i64) -> Timestamp {
    t0() + chrono::Duration::days(n)
}

fn contact() -> Contact {
    Contact {
        id: "C00001".into(),
        first_name: "Jürgen".into(),
        last_name: "Müller".into(),
        email: Some("juergen@example.de".into()),
        phone: Some("+49 30 111".into()),
        owner: "jk".into(),
        source: "trade-fair".into(),
        language: "de".into(),
        created_at: day(-100),
        attributes: [("fair".to_owned(), "IFA".to_owned())].into(),
    }
}

const POLICY: &str = r#"
fn reminder_days(contact) { [7, 14] }
fn channel(contact, attempt) { if attempt < 3 { "email" } else { "phone-task" } }
fn answer_days(contact) { 10 }
fn on_refusal(contact, case) { #{ action: "cleanup", mode: "delete", grace_days: 14 } }
fn consent_valid_days(contact) { 365 }
fn stale_after_days(contact) { 90 }
"#;

fn policy(src: &str) -> Policy {
    match Policy::compile(src) {
        Ok(p) => p,
        Err(d) => panic!("policy does not compile: {d:?}"),
    }
}

struct Run {
    policy: Policy,
    case: Case,
    contact: Contact,
}

impl Run {
    fn new(src: &str) -> Self {
        Run {
            policy: policy(src),
            case: Case::new("contact-data"),
            contact: contact(),
        }
    }

    fn at(&mut self, now: Timestamp, event: Event) -> Outcome {
        let outcome = self
            .try_at(now, event)
            .unwrap_or_else(|e| panic!("step failed: {e}"));
        self.case = outcome.case.clone();
        outcome
    }

    fn try_at(&self, now: Timestamp, event: Event) -> Result<Outcome, StepError> {
        step(
            &self.policy,
            &self.case,
            &self.contact,
            &event,
            &Clock::utc(now),
        )
    }

    fn tick(&mut self, now: Timestamp) -> Outcome {
        self.at(now, Event::Tick)
    }

    /// Ticks at the case's due time, as the host's scheduler would.
    fn tick_due(&mut self) -> Outcome {
        let due = self.case.due_at.expect("the case has a due time");
        self.tick(due)
    }
}

fn sends(o: &Outcome) -> Vec<(String, String, u32)> {
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

fn decision(kind: DecisionKind, by: &str) -> Event {
    Event::ManualDecision(Decision {
        kind,
        by: by.into(),
        reason: "checked with sales".into(),
        after_days: None,
        mode: None,
    })
}

#[test]
fn ask_then_remind_then_switch_channel() {
    let mut run = Run::new(POLICY);
    let first = run.tick(t0());
    assert_eq!(run.case.state, State::Requested);
    assert_eq!(sends(&first), [("email".into(), "request".into(), 1)]);
    assert_eq!(run.case.due_at, Some(day(7)));
    assert_eq!(run.case.requested_at, Some(t0()));

    let second = run.tick_due();
    assert_eq!(sends(&second), [("email".into(), "reminder".into(), 2)]);
    assert_eq!(run.case.due_at, Some(day(14)));
    assert_eq!(run.case.reminders_sent(), 1);

    let third = run.tick_due();
    assert_eq!(sends(&third), [("phone-task".into(), "reminder".into(), 3)]);
    // No reminders left: the contact has `answer_days` (10) to answer.
    assert_eq!(run.case.due_at, Some(day(24)));
    assert!(
        third
            .trace
            .iter()
            .any(|t| t.hook == "channel" && t.output == "\"phone-task\"")
    );
}

#[test]
fn a_tick_before_the_due_time_changes_nothing() {
    let mut run = Run::new(POLICY);
    run.tick(t0());
    let before = run.case.clone();
    let again = run.tick(day(3));
    assert_eq!(again.case, before);
    assert!(again.actions.is_empty());
    // The same tick twice gives the same answer.
    assert_eq!(run.try_at(day(3), Event::Tick), Ok(again));
}

#[test]
fn business_days_move_reminders_off_weekends() {
    let mut run = Run::new("fn business_days_only() { true }\nfn reminder_days(c) { [5] }");
    // Friday 2026-12-04: 5 business days later is Friday 2026-12-11.
    run.tick(day(4));
    assert_eq!(run.case.due_at, Some(day(11)));
    // A request sent on a Saturday counts from Monday.
    let mut run = Run::new("fn business_days_only() { true }\nfn reminder_days(c) { [1] }");
    run.tick(day(5));
    assert_eq!(run.case.due_at, Some(day(8)));
}

#[test]
fn consent_sets_a_review_date() {
    let mut run = Run::new(POLICY);
    run.tick(t0());
    let o = run.at(
        day(2),
        Event::Response {
            answer: Answer::Accept,
        },
    );
    assert_eq!(o.case.state, State::Consented);
    assert_eq!(o.case.consented_at, Some(day(2)));
    assert_eq!(o.case.review_at, Some(day(2 + 365)));
    // Staleness (90 days unused) comes before the review.
    assert_eq!(o.case.due_at, Some(day(2 + 90)));
    assert_eq!(o.case.state.band(), Band::Usable);
}

#[test]
fn periods_may_be_written_in_years_and_months() {
    let mut run = Run::new(
        "fn consent_valid_days(c) { \"2 years\" }\nfn stale_after_days(c) { \"18 Monate\" }",
    );
    run.tick(t0());
    let o = run.at(
        day(2),
        Event::Response {
            answer: Answer::Accept,
        },
    );
    // 2 December 2026 + 2 years: 2 December 2028 (731 days, a leap day
    // between); + 18 months: 2 June 2028.
    assert_eq!(o.case.review_at, Some(day(2 + 731)));
    assert_eq!(o.case.due_at, Some(day(2 + 548)));
    // A period klar cannot read is refused with what to write (`policy
    // check` names its line and column, as for any hook).
    let err = crate::hooks::period(&rhai::Dynamic::from("2 Wochen"), 0).expect_err("refused");
    assert!(err.contains("\"18 months\""), "{err}");
    let from_year_end = crate::hooks::period(&rhai::Dynamic::from("3 Jahre ab Jahresende"), 0);
    assert_eq!(
        from_year_end,
        Ok(crate::hooks::Period {
            amount: 3,
            unit: crate::hooks::Unit::Years,
            from_year_end: true
        })
    );
}

#[test]
fn consent_after_the_second_reminder() {
    let mut run = Run::new(POLICY);
    run.tick(t0());
    run.tick_due();
    run.tick_due();
    assert_eq!(run.case.attempt, 3);
    let o = run.at(
        day(15),
        Event::Response {
            answer: Answer::Accept,
        },
    );
    assert_eq!(o.case.state, State::Consented);
    assert_eq!(o.case.attempt, 0);
}

#[test]
fn refusal_blocks_then_cleans_up_after_the_grace_period() {
    let mut run = Run::new(POLICY);
    run.tick(t0());
    let o = run.at(
        day(1),
        Event::Response {
            answer: Answer::Refuse,
        },
    );
    assert_eq!(o.case.state, State::CleanupPending);
    assert_eq!(o.actions[0], Action::BlockUse);
    let plan = o.case.cleanup.clone().expect("a cleanup plan");
    assert_eq!(plan.mode, CleanupMode::Delete);
    assert_eq!(plan.not_before, day(15));
    assert_eq!(plan.reason, "refusal");

    let early = run.tick(day(10));
    assert_eq!(early.case.state, State::CleanupPending);
    assert!(early.actions.is_empty());

    let purge = run.tick_due();
    assert_eq!(purge.case.state, State::Purged);
    assert!(
        matches!(
            purge.actions.as_slice(),
            [Action::Cleanup { mode: CleanupMode::Delete, keep_evidence_until }]
                if *keep_evidence_until == purge.case.updated_at.unwrap_or_default() + chrono::Duration::days(1095)
        ),
        "{:?}",
        purge.actions
    );
}

#[test]
fn refusal_can_mean_block_only() {
    let mut run = Run::new(r#"fn on_refusal(contact, case) { #{ action: "block" } }"#);
    run.tick(t0());
    let o = run.at(
        day(1),
        Event::Response {
            answer: Answer::Refuse,
        },
    );
    assert_eq!(o.case.state, State::Refused);
    assert_eq!(o.case.due_at, None);
    assert_eq!(o.actions, [Action::BlockUse]);
}

#[test]
fn a_refused_contact_is_never_asked_again() {
    let mut run = Run::new(r#"fn on_refusal(contact, case) { "block" }"#);
    run.tick(t0());
    run.at(
        day(1),
        Event::Response {
            answer: Answer::Refuse,
        },
    );
    assert!(matches!(
        run.try_at(day(2), decision(DecisionKind::Restart, "jk")),
        Err(StepError::Rejected { .. })
    ));
    assert!(matches!(
        run.try_at(
            day(2),
            Event::Response {
                answer: Answer::Accept
            }
        ),
        Err(StepError::Rejected { .. })
    ));
    let tick = run.tick(day(400));
    assert!(sends(&tick).is_empty());
}

#[test]
fn withdrawal_after_consent() {
    let mut run = Run::new(POLICY);
    run.tick(t0());
    run.at(
        day(1),
        Event::Response {
            answer: Answer::Accept,
        },
    );
    let o = run.at(day(30), Event::Withdraw);
    assert_eq!(o.case.state, State::CleanupPending);
    assert_eq!(o.actions[0], Action::BlockUse);
    let plan = o.case.cleanup.expect("plan");
    assert_eq!(plan.reason, "withdrawal");
    assert_eq!(plan.resume_state, State::Withdrawn);
}

#[test]
fn a_refused_contact_may_consent_on_their_own_initiative() {
    // Blocked without cleanup: refused stays refused until the contact acts.
    let mut run = Run::new(r#"fn on_refusal(contact, case) { "block" }"#);
    run.tick(t0());
    run.at(
        day(1),
        Event::Response {
            answer: Answer::Refuse,
        },
    );
    let o = run.at(day(40), Event::Consent);
    assert_eq!(o.case.state, State::Consented);
    assert_eq!(o.case.consented_at, Some(day(40)));
    assert!(o.case.review_at > Some(day(40)), "a fresh validity");
    assert!(sends(&o).is_empty(), "nobody asked them");
    assert!(
        o.trace.iter().any(|e| e
            .output
            .contains("refused earlier and now consents on their own initiative")),
        "{:?}",
        o.trace
    );
}

#[test]
fn consent_on_their_own_initiative_stops_the_cleanup_of_a_withdrawal() {
    let mut run = Run::new(POLICY);
    run.tick(t0());
    run.at(
        day(1),
        Event::Response {
            answer: Answer::Accept,
        },
    );
    let withdrawn = run.at(day(30), Event::Withdraw);
    assert_eq!(withdrawn.case.state, State::CleanupPending);
    let o = run.at(day(31), Event::Consent);
    assert_eq!(o.case.state, State::Consented);
    assert_eq!(o.case.cleanup, None);
    assert_eq!(o.case.due_at, Some(day(31 + 90)), "the stale check");
}

#[test]
fn no_reaction_goes_to_the_owner_by_default() {
    let mut run = Run::new("fn reminder_days(c) { [7] }\nfn answer_days(c) { 7 }");
    run.tick(t0());
    run.tick_due();
    let o = run.tick_due();
    assert_eq!(o.case.state, State::AwaitingDecision);
    assert_eq!(o.case.assigned_to.as_deref(), Some("jk"));
    assert!(
        matches!(&o.actions[..], [Action::CreateTask { assignee, kind, .. }] if assignee == "jk" && kind == "decide")
    );
    assert_eq!(o.case.due_at, None);
    assert!(
        o.trace
            .iter()
            .any(|t| t.hook == "on_no_response" && t.output.contains("default"))
    );
}

#[test]
fn no_reaction_then_restart_later() {
    let mut run = Run::new(
        "fn reminder_days(c) { [] }\nfn answer_days(c) { 5 }\nfn on_no_response(c, k) { #{ action: \"restart\", after_days: 60 } }",
    );
    run.tick(t0());
    let o = run.tick_due();
    assert_eq!(o.case.state, State::Paused);
    assert_eq!(o.case.due_at, Some(day(5 + 60)));
    let again = run.tick_due();
    assert_eq!(again.case.state, State::Requested);
    assert_eq!(sends(&again), [("email".into(), "request".into(), 1)]);
}

#[test]
fn no_reaction_then_cleanup_which_a_late_answer_stops() {
    let mut run = Run::new(
        "fn reminder_days(c) { [] }\nfn on_no_response(c, k) { #{ action: \"cleanup\", grace_days: 30 } }",
    );
    run.tick(t0());
    let o = run.tick_due();
    assert_eq!(o.case.state, State::CleanupPending);
    assert_eq!(o.actions, [Action::BlockUse]);
    let late = run.at(
        day(20),
        Event::Response {
            answer: Answer::Accept,
        },
    );
    assert_eq!(late.case.state, State::Consented);
    assert_eq!(late.case.cleanup, None);
}

#[test]
fn a_manual_decision_by_the_owner_then_restart_later() {
    let mut run = Run::new("fn reminder_days(c) { [] }\nfn answer_days(c) { 5 }");
    run.tick(t0());
    run.tick_due();
    assert_eq!(run.case.state, State::AwaitingDecision);
    let mut restart = decision(DecisionKind::Restart, "jk");
    if let Event::ManualDecision(d) = &mut restart {
        d.after_days = Some(30);
    }
    let o = run.at(day(6), restart);
    assert_eq!(o.case.state, State::Paused);
    assert_eq!(o.case.due_at, Some(day(36)));
    assert!(o.trace.iter().any(|t| t.input == "decision by jk"));
    let asked = run.tick_due();
    assert_eq!(sends(&asked).len(), 1);
}

#[test]
fn other_basis_is_recorded_with_its_reason() {
    let mut run = Run::new(POLICY);
    run.tick(t0());
    let o = run.at(day(1), decision(DecisionKind::OtherBasis, "dpo"));
    assert_eq!(o.case.state, State::OtherBasis);
    assert_eq!(
        o.case.basis.as_ref().map(|b| b.reason.as_str()),
        Some("checked with sales")
    );
    assert_eq!(o.case.due_at, None);
}

#[test]
fn a_decision_needs_a_name_and_a_reason() {
    let run = Run::new(POLICY);
    let mut event = decision(DecisionKind::OtherBasis, " ");
    assert!(run.try_at(t0(), event.clone()).is_err());
    if let Event::ManualDecision(d) = &mut event {
        d.by = "dpo".into();
        d.reason = String::new();
    }
    assert!(run.try_at(t0(), event).is_err());
}

#[test]
fn keep_stops_a_pending_cleanup() {
    let mut run = Run::new(POLICY);
    run.tick(t0());
    run.at(day(1), decision(DecisionKind::Cleanup, "jk"));
    assert_eq!(run.case.state, State::CleanupPending);
    let o = run.at(day(2), decision(DecisionKind::Keep, "dpo"));
    assert_eq!(o.case.state, State::Requested);
    assert_eq!(o.case.cleanup, None);
    assert_eq!(
        o.case.due_at,
        Some(day(7)),
        "the reminder planned before stays"
    );
    assert!(matches!(
        run.try_at(day(3), decision(DecisionKind::Keep, "dpo")),
        Err(StepError::Rejected { .. })
    ));
}

#[test]
fn cleanup_waits_for_a_second_person() {
    let mut run =
        Run::new("fn requires_approval(contact, case) { true }\nfn cleanup_grace_days(c) { 7 }");
    run.tick(t0());
    let o = run.at(day(1), decision(DecisionKind::Cleanup, "jk"));
    // jk owns the contact and asked; the owner cannot approve their own request.
    assert!(
        o.actions
            .iter()
            .any(|a| matches!(a, Action::CreateTask { kind, assignee, .. }
            if kind == "approve-cleanup" && assignee == super::APPROVERS)),
        "{:?}",
        o.actions
    );
    let waiting = run.tick_due();
    assert_eq!(waiting.case.state, State::CleanupPending);
    assert_eq!(waiting.case.due_at, None);
    let same = run.try_at(day(9), Event::Approve { by: "jk".into() });
    assert!(
        matches!(same, Err(StepError::Rejected { reason }) if reason.contains("cannot also approve"))
    );
    let approved = run.at(day(9), Event::Approve { by: "dpo".into() });
    assert_eq!(approved.case.due_at, Some(day(8)));
    // A second approval changes nothing and says so.
    let again = run.try_at(day(9), Event::Approve { by: "lead".into() });
    assert!(
        matches!(&again, Err(StepError::Rejected { reason }) if reason.contains("dpo has already approved")),
        "{again:?}"
    );
    let purged = run.tick(day(9));
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
}

#[test]
fn the_evidence_is_kept_from_the_last_use_if_that_is_later() {
    let mut run = Run::new(
        "fn on_refusal(contact, case) { #{ action: \"cleanup\", grace_days: 5 } }\n\
         fn evidence_retention_days(contact, case) { 5 * 365 }",
    );
    run.tick(t0());
    run.at(
        day(1),
        Event::Response {
            answer: Answer::Refuse,
        },
    );
    // A use recorded late (say, a call logged by the CRM after the fact).
    run.case.last_used_at = Some(day(40));
    let purged = run.tick(day(6));
    assert!(
        matches!(purged.actions.as_slice(),
            [Action::Cleanup { keep_evidence_until, .. }] if *keep_evidence_until == day(40 + 5 * 365)),
        "{:?}",
        purged.actions
    );
}

#[test]
fn legal_hold_blocks_the_purge_until_lifted() {
    let mut run = Run::new(POLICY);
    run.tick(t0());
    run.at(
        day(1),
        Event::Response {
            answer: Answer::Refuse,
        },
    );
    run.at(
        day(2),
        Event::HoldOn {
            by: "legal".into(),
            reason: "court case 4711".into(),
        },
    );
    let held = run.tick(day(20));
    assert_eq!(held.case.state, State::CleanupPending);
    assert!(held.actions.is_empty());
    assert_eq!(held.case.due_at, None);
    let lifted = run.at(
        day(30),
        Event::HoldOff {
            by: "legal".into(),
            reason: "settled".into(),
        },
    );
    assert_eq!(lifted.case.due_at, Some(day(15)));
    let purged = run.tick(day(30));
    assert_eq!(purged.case.state, State::Purged);
}

#[test]
fn purged_is_final() {
    let mut run = Run::new(POLICY);
    run.tick(t0());
    run.at(
        day(1),
        Event::Response {
            answer: Answer::Refuse,
        },
    );
    run.tick_due();
    assert_eq!(run.case.state, State::Purged);
    for event in [
        Event::Response {
            answer: Answer::Accept,
        },
        Event::Withdraw,
        Event::Consent,
        decision(DecisionKind::Restart, "jk"),
        Event::HoldOn {
            by: "legal".into(),
            reason: "x".into(),
        },
    ] {
        assert!(run.try_at(day(40), event).is_err());
    }
    let tick = run.tick(day(400));
    assert_eq!(tick.case.state, State::Purged);
    assert!(tick.actions.is_empty());
}

#[test]
fn an_unused_consent_is_asked_again() {
    let mut run = Run::new(POLICY);
    run.tick(t0());
    run.at(
        day(1),
        Event::Response {
            answer: Answer::Accept,
        },
    );
    let used = run.at(day(50), Event::Used);
    assert_eq!(used.case.due_at, Some(day(140)));
    let o = run.tick_due();
    // Asked again, and still usable while the contact is asked.
    assert_eq!(o.case.state, State::Consented);
    assert_eq!(o.case.state.band(), Band::Usable);
    assert_eq!(sends(&o), [("email".into(), "reconfirm".into(), 1)]);
    assert!(o.trace.iter().any(|t| t.output.contains("unused")));
}

#[test]
fn a_consent_is_used_while_it_is_confirmed_again_until_the_round_ends_unanswered() {
    let mut run = Run::new(
        "fn consent_valid_days(c) { 30 }\nfn stale_after_days(c) { 0 }\nfn reminder_days(c) { [7] }\nfn answer_days(c) { 7 }",
    );
    run.tick(t0());
    run.at(
        day(1),
        Event::Response {
            answer: Answer::Accept,
        },
    );
    // Day 31: the review asks again; the case stays usable.
    let asked = run.tick_due();
    assert_eq!(
        (asked.case.state, asked.case.attempt),
        (State::Consented, 1)
    );
    // A use during the round keeps the round's reminder.
    let used = run.at(day(33), Event::Used);
    assert_eq!(used.case.due_at, Some(day(38)));
    assert!(used.actions.is_empty(), "a use while consented is fine");
    let reminded = run.tick_due();
    assert_eq!(sends(&reminded), [("email".into(), "reminder".into(), 2)]);
    assert_eq!(reminded.case.state.band(), Band::Usable);
    // No answer after the last reminder: the consent ends, use stops.
    let ended = run.tick_due();
    assert_eq!(ended.case.state, State::AwaitingDecision);
    assert_ne!(ended.case.state.band(), Band::Usable);
    assert!(
        ended
            .trace
            .iter()
            .any(|t| t.output.contains("the consent ends"))
    );

    // A yes during the round renews the consent.
    let mut run = Run::new("fn consent_valid_days(c) { 30 }\nfn stale_after_days(c) { 0 }");
    run.tick(t0());
    run.at(
        day(1),
        Event::Response {
            answer: Answer::Accept,
        },
    );
    run.tick_due();
    let renewed = run.at(
        day(32),
        Event::Response {
            answer: Answer::Accept,
        },
    );
    assert_eq!(
        (
            renewed.case.state,
            renewed.case.attempt,
            renewed.case.consented_at
        ),
        (State::Consented, 0, Some(day(32)))
    );
    assert_eq!(renewed.case.review_at, Some(day(62)));
}

#[test]
fn a_policy_may_stop_use_when_the_re_confirmation_starts() {
    let mut run = Run::new(
        "fn consent_valid_days(c) { 30 }\nfn stale_after_days(c) { 0 }\nfn usable_while_reconfirming(contact, case) { false }",
    );
    run.tick(t0());
    run.at(
        day(1),
        Event::Response {
            answer: Answer::Accept,
        },
    );
    let asked = run.tick_due();
    assert_eq!(asked.case.state, State::Requested);
    assert_eq!(sends(&asked), [("email".into(), "reconfirm".into(), 1)]);
}

#[test]
fn a_consent_is_reviewed_at_its_review_date() {
    let mut run = Run::new("fn consent_valid_days(c) { 30 }\nfn stale_after_days(c) { 0 }");
    run.tick(t0());
    run.at(
        day(1),
        Event::Response {
            answer: Answer::Accept,
        },
    );
    assert_eq!(run.case.due_at, Some(day(31)));
    let o = run.tick_due();
    assert!(o.trace.iter().any(|t| t.output.contains("review date")));
    assert_eq!(o.case.state, State::Consented);
    assert_eq!(o.case.attempt, 1, "the re-confirmation went out");
}

#[test]
fn use_outside_the_usable_band_notifies_the_owner() {
    let mut run = Run::new(POLICY);
    run.tick(t0());
    let o = run.at(day(1), Event::Used);
    assert!(matches!(&o.actions[..], [Action::Notify { recipient, .. }] if recipient == "jk"));
}

#[test]
fn a_bounce_makes_the_next_attempt_due_now() {
    let mut run = Run::new(POLICY);
    run.tick(t0());
    let o = run.at(
        day(1),
        Event::Bounce {
            channel: "email".into(),
        },
    );
    assert_eq!(o.case.due_at, Some(day(1)));
}

#[test]
fn a_policy_error_at_run_time_names_its_place() {
    let run = Run::new(
        "fn channel(contact, attempt) {\n  if contact.attr(\"fair\") == \"IFA\" { throw \"no fairs\" }\n  \"email\"\n}",
    );
    match run.try_at(t0(), Event::Tick) {
        Err(StepError::Policy { diagnostic }) => {
            assert_eq!(diagnostic.line, 2, "{diagnostic:?}");
            assert!(diagnostic.message.contains("no fairs"), "{diagnostic:?}");
        }
        other => panic!("expected a policy error, got {other:?}"),
    }
}

#[test]
fn the_same_input_gives_the_same_output() {
    let run = Run::new(POLICY);
    let a = run.try_at(t0(), Event::Tick);
    let b = run.try_at(t0(), Event::Tick);
    assert_eq!(a, b);
}

#[test]
fn a_request_link_lasts_as_long_as_the_policy_says() {
    let link_expiry = |o: &Outcome| {
        o.actions.iter().find_map(|a| match a {
            Action::SendRequest {
                link_expires_at, ..
            } => Some(*link_expires_at),
            _ => None,
        })
    };
    let mut run = Run::new("");
    assert_eq!(
        link_expiry(&run.tick(t0())),
        Some(t0() + chrono::Duration::days(180))
    );
    let mut run = Run::new("fn link_valid_days(contact) { 21 }");
    assert_eq!(
        link_expiry(&run.tick(t0())),
        Some(t0() + chrono::Duration::days(21))
    );
}

#[test]
fn approving_a_cleanup_that_needs_no_approval_is_refused() {
    let mut run = Run::new("fn cleanup_grace_days(c) { 7 }");
    run.tick(t0());
    run.at(day(1), decision(DecisionKind::Cleanup, "jk"));
    let o = run.try_at(day(2), Event::Approve { by: "dpo".into() });
    assert!(
        matches!(&o, Err(StepError::Rejected { reason }) if reason.contains("needs no approval")),
        "{o:?}"
    );
}

#[test]
fn a_hold_placed_twice_or_lifted_twice_is_refused() {
    let mut run = Run::new(POLICY);
    run.tick(t0());
    let on = || Event::HoldOn {
        by: "legal".into(),
        reason: "dispute".into(),
    };
    let off = || Event::HoldOff {
        by: "legal".into(),
        reason: "settled".into(),
    };
    let not_on = run.try_at(day(1), off());
    assert!(
        matches!(&not_on, Err(StepError::Rejected { reason }) if reason.contains("not on legal hold")),
        "{not_on:?}"
    );
    assert!(run.at(day(1), on()).case.legal_hold);
    let twice = run.try_at(day(2), on());
    assert!(
        matches!(&twice, Err(StepError::Rejected { reason }) if reason.contains("already on legal hold")),
        "{twice:?}"
    );
    assert!(!run.at(day(3), off()).case.legal_hold);
}

#[test]
fn a_handed_over_case_gets_the_policys_decision_deadline_and_keeps_it() {
    let mut run = Run::new(
        "fn reminder_days(c) { [] }\nfn answer_days(c) { 1 }\nfn decision_days(c) { 3 }\nfn business_days_only() { true }",
    );
    run.tick(t0());
    // Tuesday: no answer; three working days to decide, until Friday.
    let handed = run.tick_due();
    assert_eq!(handed.case.state, State::AwaitingDecision);
    assert_eq!(handed.case.due_at, Some(day(4)));
    // Past the deadline the case stays with the person, still overdue.
    let late = run.tick(day(7));
    assert_eq!(late.case.state, State::AwaitingDecision);
    assert_eq!(late.case.due_at, Some(day(4)));
    assert!(late.actions.is_empty());
    // A person taking the case over gets the same deadline from then on.
    let taken = run.at(day(7), decision(DecisionKind::Manual, "lead"));
    assert_eq!(taken.case.assigned_to.as_deref(), Some("lead"));
    assert_eq!(taken.case.due_at, Some(day(10)));
}

fn bounce(channel: &str) -> Event {
    Event::Bounce {
        channel: channel.to_owned(),
    }
}

#[test]
fn after_a_bounce_the_next_attempt_takes_another_way_and_never_the_dead_address() {
    // Every attempt by e-mail, as far as the policy is concerned.
    let mut run = Run::new("fn channel(contact, attempt) { \"email\" }");
    let first = run.tick(t0());
    assert_eq!(sends(&first)[0].0, "email");
    let bounced = run.at(day(1), bounce("email"));
    assert_eq!(
        bounced.case.due_at,
        Some(day(1)),
        "the next attempt is due at once"
    );
    assert_eq!(bounced.case.bounced, ["email:juergen@example.de"]);
    // The next attempt is a call by the owner, and so is every later one.
    let next = run.tick_due();
    assert_eq!(
        sends(&next),
        [("phone-task".to_owned(), "reminder".to_owned(), 2)]
    );
    let later = run.tick_due();
    assert_eq!(sends(&later)[0].0, "phone-task");
    // A new address is tried again.
    run.contact.email = Some("j.gross@example.org".into());
    let new_address = run.at(day(20), Event::DataChanged);
    assert_eq!(sends(&new_address)[0].0, "email");
}

#[test]
fn the_channel_hook_may_see_what_bounced_and_every_way_bounced_goes_to_the_owner() {
    let mut run = Run::new(
        "fn reminder_days(contact) { [1, 2, 3, 4, 5] }\n\
         fn channel(contact, attempt, bounced) { if \"letter\" in bounced { \"phone-task\" } else { \"letter\" } }",
    );
    assert_eq!(sends(&run.tick(t0()))[0].0, "letter");
    run.at(day(1), bounce("letter"));
    assert_eq!(sends(&run.tick_due())[0].0, "phone-task");
    run.at(day(2), bounce("phone-task"));
    // Letter and phone bounced; e-mail is left.
    assert_eq!(sends(&run.tick_due())[0].0, "email");
    run.at(day(3), bounce("email"));
    let none = run.tick_due();
    assert_eq!(none.case.attempt, 3, "reminders were left, but no way");
    assert!(sends(&none).is_empty());
    assert_eq!(none.case.state, State::AwaitingDecision);
    assert_eq!(none.case.assigned_to.as_deref(), Some("jk"));
    assert!(
        none.trace
            .iter()
            .any(|t| t.output == "every way to reach the contact bounced"),
        "{:?}",
        none.trace
    );
}

const EXISTING_CUSTOMERS: &str = r#"
fn reminder_days(contact) { [7, 14] }
fn on_refusal(contact, case) { "block" }
fn basis(contact, case) {
    if contact.attr("customer") == "yes" {
        #{ basis: "existing-customer", reason: "Bestandskunde, ähnliche Produkte", review: "1 year" }
    } else {
        "consent"
    }
}
"#;

fn customer(run: &mut Run) {
    run.contact
        .attributes
        .insert("customer".to_owned(), "yes".to_owned());
}

#[test]
fn the_basis_hook_keeps_existing_customers_from_being_asked() {
    let mut run = Run::new(EXISTING_CUSTOMERS);
    customer(&mut run);
    let o = run.at(t0(), Event::Tick);
    assert_eq!(o.case.state, State::OtherBasis);
    assert!(sends(&o).is_empty(), "{:?}", o.actions);
    let basis = o.case.basis.clone().expect("a basis");
    assert_eq!(basis.kind, BasisKind::ExistingCustomer);
    assert!(basis.by_policy());
    assert_eq!(basis.reason, "Bestandskunde, ähnliche Produkte");
    assert_eq!(basis.since, Some(t0()));
    let year = Utc.with_ymd_and_hms(2027, 11, 30, 9, 0, 0).single();
    assert_eq!(basis.review_at, year);
    assert_eq!(o.case.due_at, year);
    // What the hook read, with the value it saw.
    assert_eq!(
        basis
            .relied_on
            .get("attributes.customer")
            .map(String::as_str),
        Some("yes")
    );
    assert!(o.trace.iter().any(|t| t.hook == "basis"), "{:?}", o.trace);

    // Everyone else is asked, as before.
    let mut other = Run::new(EXISTING_CUSTOMERS);
    let o = other.at(t0(), Event::Tick);
    assert_eq!(o.case.state, State::Requested);
    assert_eq!(sends(&o).len(), 1);
}

#[test]
fn a_basis_is_reviewed_and_ends_when_the_data_no_longer_carries_it() {
    let mut run = Run::new(EXISTING_CUSTOMERS);
    customer(&mut run);
    run.at(t0(), Event::Tick);
    // At the review date the hook runs again: renewed for another year.
    let o = run.at(day(365), Event::Tick);
    assert_eq!(o.case.state, State::OtherBasis);
    assert_eq!(o.case.basis.as_ref().and_then(|b| b.since), Some(day(365)));
    // No longer a customer: the data change ends the basis, klar asks.
    run.contact
        .attributes
        .insert("customer".to_owned(), "no".to_owned());
    let o = run.at(day(400), Event::DataChanged);
    assert_eq!(o.case.state, State::Requested);
    assert_eq!(o.case.basis, None);
    assert_eq!(sends(&o).len(), 1);
    // And a data change that makes the contact a customer while being
    // asked stops the asking.
    customer(&mut run);
    let o = run.at(day(401), Event::DataChanged);
    assert_eq!(o.case.state, State::OtherBasis);
    assert_eq!(o.case.attempt, 0);
}

#[test]
fn the_existing_customer_exception_needs_an_email_address() {
    let mut run = Run::new(EXISTING_CUSTOMERS);
    customer(&mut run);
    run.contact.email = None;
    let o = run.at(t0(), Event::Tick);
    assert_eq!(o.case.state, State::Requested);
    assert!(
        o.trace.iter().any(|t| t.output.contains("§ 7(3) UWG")),
        "{:?}",
        o.trace
    );
}

#[test]
fn an_objection_ends_a_basis_for_good() {
    let mut run = Run::new(EXISTING_CUSTOMERS);
    customer(&mut run);
    run.at(t0(), Event::Tick);
    let o = run.at(day(3), Event::Object);
    assert_eq!(o.case.state, State::Objected);
    assert!(o.actions.contains(&Action::BlockUse), "{:?}", o.actions);
    // Neither a review, nor a data change, nor a person brings it back.
    let o = run.at(day(400), Event::Tick);
    assert_eq!(o.case.state, State::Objected);
    let o = run.at(day(401), Event::DataChanged);
    assert_eq!(o.case.state, State::Objected);
    let err = run
        .try_at(day(402), decision(DecisionKind::OtherBasis, "jk"))
        .unwrap_err();
    assert!(err.to_string().contains("objected"), "{err}");
    assert!(
        run.try_at(day(402), decision(DecisionKind::Restart, "jk"))
            .is_err()
    );
    assert!(
        run.try_at(
            day(402),
            Event::Response {
                answer: Answer::Accept
            }
        )
        .is_err()
    );
    // Only the contact's own consent can.
    let o = run.at(day(403), Event::Consent);
    assert_eq!(o.case.state, State::Consented);
}

#[test]
fn an_objection_to_a_contract_basis_goes_to_the_owner() {
    let mut run = Run::new(
        r#"fn basis(contact, case) { #{ basis: "contract", reason: "Vertragspartner", review: 365 } }"#,
    );
    run.at(t0(), Event::Tick);
    let o = run.at(day(1), Event::Object);
    assert_eq!(o.case.state, State::OtherBasis);
    assert!(
        o.actions
            .iter()
            .any(|a| matches!(a, Action::CreateTask { kind, assignee, .. }
            if kind == "review-objection" && assignee == "jk")),
        "{:?}",
        o.actions
    );
}

#[test]
fn an_objection_while_asked_or_after_a_refusal_is_final_too() {
    let mut run = Run::new(POLICY);
    run.at(t0(), Event::Tick);
    let o = run.at(day(1), Event::Object);
    assert_eq!(o.case.state, State::CleanupPending);
    assert_eq!(
        o.case.cleanup.as_ref().map(|p| p.reason.as_str()),
        Some("objection")
    );
    assert_eq!(
        o.case.cleanup.as_ref().map(|p| p.resume_state),
        Some(State::Objected)
    );
    let err = run
        .try_at(day(2), decision(DecisionKind::OtherBasis, "jk"))
        .unwrap_err();
    assert!(err.to_string().contains("objection"), "{err}");

    let mut refused = Run::new(EXISTING_CUSTOMERS);
    refused.at(t0(), Event::Tick);
    refused.at(
        day(1),
        Event::Response {
            answer: Answer::Refuse,
        },
    );
    let o = refused.at(day(2), Event::Object);
    assert_eq!(o.case.state, State::Objected);
}
