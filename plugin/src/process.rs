//! The consent process: one step of one case, as a pure function of
//! (policy, case, contact, event, clock).
//!
//! The lifecycle: ask → remind → consent / refusal / withdrawal; no reaction →
//! manual decision / restart / cleanup; cleanup → grace period → purge. Legal hold
//! blocks any purge; `purged` is final; a consent is asked again at its review date
//! or when it has gone unused for too long. The policy's hooks decide the numbers
//! and paths; the rules that protect the contact are fixed here (and enforced again
//! by the host).

use std::rc::Rc;

use chrono::{DateTime, Duration, Utc};

use crate::calendar::add_days;
use crate::hooks::{self, BasisChoice, Hook, NoResponsePlan, RefusalPlan};
use crate::model::{
    Action, Answer, Band, Basis, BasisKind, Case, CleanupMode, CleanupPlan, Clock, Contact,
    Decision, DecisionKind, Event, Outcome, PendingBasis, State, StepError, Timestamp, TraceEntry,
};
use crate::policy::Policy;
use crate::script::{CaseView, ContactView};

/// Advances one case by one event.
pub fn step(
    policy: &Policy,
    case: &Case,
    contact: &Contact,
    event: &Event,
    clock: &Clock,
) -> Result<Outcome, StepError> {
    run(policy, case, contact, None, event, clock)
}

/// [`step`] for a caller that owns the contact: hooks then share it instead of
/// getting a copy (the component glue, which receives every input owned).
pub fn step_shared(
    policy: &Policy,
    case: &Case,
    contact: &Rc<Contact>,
    event: &Event,
    clock: &Clock,
) -> Result<Outcome, StepError> {
    let view = rhai::Dynamic::from(ContactView(Rc::clone(contact)));
    run(policy, case, contact, Some(view), event, clock)
}

fn run(
    policy: &Policy,
    case: &Case,
    contact: &Contact,
    contact_view: Option<rhai::Dynamic>,
    event: &Event,
    clock: &Clock,
) -> Result<Outcome, StepError> {
    let mut step = Step {
        policy,
        before: case,
        case: case.clone(),
        contact,
        contact_view,
        clock,
        actions: Vec::new(),
        trace: Vec::new(),
    };
    step.apply(event)?;
    Ok(step.finish())
}

struct Step<'a> {
    policy: &'a Policy,
    before: &'a Case,
    case: Case,
    contact: &'a Contact,
    /// Made on the first hook call only: many steps call no hook at all.
    contact_view: Option<rhai::Dynamic>,
    clock: &'a Clock,
    actions: Vec<Action>,
    trace: Vec<TraceEntry>,
}

/// At least this long between two messages to the same contact, even when a
/// late tick finds several reminders overdue.
const MIN_GAP: Duration = Duration::days(1);

/// The assignee of an approval task when the owner cannot approve (the owner
/// asked for the cleanup, or the contact has no owner): the CRM routes it to
/// whoever may approve cleanups there.
pub const APPROVERS: &str = "approvers";

impl Step<'_> {
    fn now(&self) -> Timestamp {
        self.clock.now
    }

    fn note(&mut self, input: impl Into<String>, output: impl Into<String>) {
        self.trace.push(TraceEntry {
            hook: "process".to_owned(),
            input: input.into(),
            output: output.into(),
        });
    }

    fn finish(mut self) -> Outcome {
        if self.case != *self.before {
            self.case.updated_at = Some(self.clock.now);
        }
        if self.case.state != self.before.state {
            let change = format!("{} → {}", self.before.state, self.case.state);
            self.note("state", change);
        }
        Outcome {
            case: self.case,
            actions: self.actions,
            trace: self.trace,
        }
    }

    fn apply(&mut self, event: &Event) -> Result<(), StepError> {
        if self.case.state == State::Purged {
            return match event {
                Event::Tick => {
                    self.case.due_at = None;
                    self.note("tick", "purged is final; nothing to do");
                    Ok(())
                }
                _ => Err(StepError::rejected(
                    "the case is purged; nothing can change it any more",
                )),
            };
        }
        match event {
            Event::Tick => self.tick(),
            Event::Response {
                answer: Answer::Accept,
            } => self.accept(),
            Event::Response {
                answer: Answer::Refuse,
            } => self.refuse(),
            Event::Bounce { channel } => {
                self.bounce(channel);
                Ok(())
            }
            Event::ManualDecision(decision) => self.decide(decision),
            Event::Approve { by } => self.approve(by),
            Event::Withdraw => self.withdraw(),
            Event::Consent => self.consent(),
            Event::Object => self.object(),
            Event::Used => {
                self.used()?;
                Ok(())
            }
            Event::HoldOn { .. } if self.case.legal_hold => Err(StepError::rejected(
                "the case is already on legal hold; nothing changed",
            )),
            Event::HoldOff { .. } if !self.case.legal_hold => Err(StepError::rejected(
                "the case is not on legal hold; nothing changed",
            )),
            Event::HoldOn { by, reason } => {
                self.case.legal_hold = true;
                self.note(format!("legal hold on by {by}"), reason.clone());
                Ok(())
            }
            Event::HoldOff { by, reason } => {
                self.case.legal_hold = false;
                if let (State::CleanupPending, Some(plan)) = (self.case.state, &self.case.cleanup) {
                    self.case.due_at = Some(plan.not_before);
                }
                self.note(format!("legal hold off by {by}"), reason.clone());
                Ok(())
            }
            Event::DataChanged => self.data_changed(),
        }
    }

    // --- hooks, each traced -------------------------------------------------

    fn contact_view(&mut self) -> rhai::Dynamic {
        self.contact_view
            .get_or_insert_with(|| rhai::Dynamic::from(ContactView(Rc::new(self.contact.clone()))))
            .clone()
    }

    fn case_view(&self) -> rhai::Dynamic {
        rhai::Dynamic::from(CaseView(Rc::new(self.case.clone())))
    }

    fn reminder_days(&mut self) -> Result<Vec<u32>, StepError> {
        let contact = self.contact_view();
        let id = &self.contact.id;
        self.policy.run(
            Hook::ReminderDays,
            &[contact],
            || format!("contact {id}"),
            hooks::reminder_days,
            || hooks::DEFAULT_REMINDER_DAYS.to_vec(),
            &mut self.trace,
        )
    }

    /// How to ask this time: the policy's channel, unless the contact's
    /// address for it bounced in this case; then the next way that has not
    /// (e-mail, a call by the owner, a letter); `None` if every way bounced.
    fn channel(&mut self, attempt: u32) -> Result<Option<String>, StepError> {
        let contact = self.contact_view();
        let c = self.contact;
        let bounced = bounced_channels(&self.case, c);
        let attempt_arg = rhai::Dynamic::from(i64::from(attempt));
        let input = || format!("contact {}, attempt {attempt}", c.id);
        let default = || {
            first_open_channel(c, &bounced)
                .unwrap_or("letter")
                .to_owned()
        };
        let wanted = if self.policy.channel_sees_bounces() {
            let seen: rhai::Array = bounced.iter().map(|b| rhai::Dynamic::from(*b)).collect();
            let args = [contact, attempt_arg, rhai::Dynamic::from(seen)];
            self.policy.run(
                Hook::Channel,
                &args,
                input,
                hooks::channel,
                default,
                &mut self.trace,
            )?
        } else {
            self.policy.run(
                Hook::Channel,
                &[contact, attempt_arg],
                input,
                hooks::channel,
                default,
                &mut self.trace,
            )?
        };
        if !bounced.contains(&wanted.as_str()) {
            return Ok(Some(wanted));
        }
        let instead = first_open_channel(c, &bounced);
        self.note(
            "bounce",
            match instead {
                Some(other) => {
                    format!("{wanted} bounced for this address; asking by {other} instead")
                }
                None => "every way to reach the contact bounced".to_owned(),
            },
        );
        Ok(instead.map(str::to_owned))
    }

    /// A hook that returns a period: days as a number, or text such as
    /// `"2 years"` (see `hooks::period`).
    fn period_hook(
        &mut self,
        hook: Hook,
        min: i64,
        default: u32,
    ) -> Result<hooks::Period, StepError> {
        let contact = self.contact_view();
        let id = &self.contact.id;
        self.policy.run(
            hook,
            &[contact],
            || format!("contact {id}"),
            |v| hooks::period(v, min),
            || hooks::Period::days(default),
            &mut self.trace,
        )
    }

    fn days_hook(&mut self, hook: Hook, min: i64, default: u32) -> Result<u32, StepError> {
        let contact = self.contact_view();
        let id = &self.contact.id;
        self.policy.run(
            hook,
            &[contact],
            || format!("contact {id}"),
            |v| hooks::whole_days(v, min),
            || default,
            &mut self.trace,
        )
    }

    fn with_case<T: std::fmt::Debug>(
        &mut self,
        hook: Hook,
        read: impl Fn(&rhai::Dynamic) -> Result<T, hooks::Mismatch>,
        default: impl FnOnce() -> T,
    ) -> Result<T, StepError> {
        let contact = self.contact_view();
        let case = self.case_view();
        let (id, purpose, state) = (&self.contact.id, &self.case.purpose, self.case.state);
        self.policy.run(
            hook,
            &[contact, case],
            || format!("contact {id}, case {purpose} ({state})"),
            read,
            default,
            &mut self.trace,
        )
    }

    fn business_days(&self) -> bool {
        self.policy.business_days_only()
    }

    /// Asks the policy's `basis` hook whether another legal basis than
    /// consent applies to this contact and purpose; `None`: ask for
    /// consent. The contact fields the hook read are recorded with their
    /// values, as the data the basis relied on.
    fn policy_basis(&mut self) -> Result<Option<Basis>, StepError> {
        if !self.policy.defines(Hook::Basis) {
            return Ok(None);
        }
        let (choice, relied_on) = crate::script::recording_reads(|| {
            self.with_case(Hook::Basis, hooks::basis, || BasisChoice::Consent)
        });
        let BasisChoice::Other {
            kind,
            reason,
            review,
        } = choice?
        else {
            return Ok(None);
        };
        let has_email = self
            .contact
            .email
            .as_deref()
            .is_some_and(|e| !e.trim().is_empty());
        if kind == BasisKind::ExistingCustomer && !has_email {
            self.note(
                "basis",
                "the existing-customer exception (§ 7(3) UWG) covers e-mail advertising only, and the contact has no e-mail address: klar asks for consent",
            );
            return Ok(None);
        }
        let now = self.now();
        Ok(Some(Basis {
            kind,
            reason,
            decided_by: None,
            since: Some(now),
            review_at: Some(self.period(now, review)),
            relied_on,
            policy_version: None,
        }))
    }

    /// The case stands on a basis the policy set: nobody is asked, and the
    /// hook is asked again at the review date.
    fn stand_on(&mut self, basis: Basis) {
        let review = basis
            .review_at
            .map_or("never".to_owned(), |t| t.to_rfc3339());
        let relied: Vec<String> = basis
            .relied_on
            .iter()
            .map(|(k, v)| format!("{k} = {v:?}"))
            .collect();
        let renewed = self.case.state == State::OtherBasis;
        self.note(
            "basis",
            format!(
                "{} {}: {}; relied on {}; review on {review}",
                if renewed { "renewed" } else { "on basis" },
                basis.kind,
                basis.reason,
                if relied.is_empty() {
                    "no contact data".to_owned()
                } else {
                    relied.join(", ")
                }
            ),
        );
        if self.asking() {
            self.note(
                "basis",
                "nobody needs to be asked: the open request is no longer needed",
            );
        }
        self.case.state = State::OtherBasis;
        self.case.due_at = basis.review_at;
        self.case.basis = Some(basis);
        self.case.attempt = 0;
        self.case.requested_at = None;
        self.case.assigned_to = None;
        self.case.cleanup = None;
    }

    // --- the process ----------------------------------------------------------

    fn tick(&mut self) -> Result<(), StepError> {
        let now = self.now();
        let due = match (self.case.state, self.case.due_at) {
            (State::Unclarified, None) => true,
            (_, Some(at)) => at <= now,
            (_, None) => false,
        };
        if !due {
            let when = self
                .case
                .due_at
                .map_or("never".to_owned(), |t| t.to_rfc3339());
            self.note("tick", format!("not due (next: {when})"));
            return Ok(());
        }
        match self.case.state {
            State::Unclarified | State::Paused => match self.policy_basis()? {
                Some(basis) => {
                    self.stand_on(basis);
                    Ok(())
                }
                None => self.start_round("request"),
            },
            State::OtherBasis if self.case.basis.as_ref().is_some_and(Basis::by_policy) => {
                self.note("tick", "the basis the policy set reached its review date");
                match self.policy_basis()? {
                    Some(basis) => {
                        self.stand_on(basis);
                        Ok(())
                    }
                    None => {
                        self.note(
                            "basis",
                            "the policy no longer gives another basis: klar asks for consent",
                        );
                        self.case.basis = None;
                        self.start_round("request")
                    }
                }
            }
            State::Requested => {
                // A policy (or the contact's data) may give another basis
                // by now: then there is nothing left to ask.
                if let Some(basis) = self.policy_basis()? {
                    self.stand_on(basis);
                    return Ok(());
                }
                let reminders = self.reminder_days()?;
                if self.case.attempt as usize <= reminders.len() {
                    self.send(self.case.attempt + 1, "reminder", &reminders)
                } else {
                    self.no_response()
                }
            }
            State::Consented if self.case.attempt > 0 => {
                // A re-confirmation round runs while the consent is used.
                let reminders = self.reminder_days()?;
                if self.case.attempt as usize <= reminders.len() {
                    self.send(self.case.attempt + 1, "reminder", &reminders)
                } else {
                    self.note(
                        "tick",
                        "no answer to the re-confirmation: the consent ends, use stops",
                    );
                    self.case.state = State::Requested;
                    self.no_response()
                }
            }
            State::Consented => {
                let why = if self.case.review_at.is_some_and(|r| r <= now) {
                    "the consent reached its review date"
                } else {
                    "the consent went unused for too long"
                };
                self.note("tick", why);
                let keep_using =
                    self.with_case(Hook::UsableWhileReconfirming, hooks::flag, || true)?;
                if keep_using {
                    self.note(
                        "tick",
                        "asked again; the consent may be used until the contact says no or the round ends unanswered",
                    );
                    self.case.requested_at = Some(now);
                    self.case.assigned_to = None;
                    let reminders = self.reminder_days()?;
                    self.send(1, "reconfirm", &reminders)
                } else {
                    self.start_round("reconfirm")
                }
            }
            State::CleanupPending => self.purge_if_allowed(),
            State::AwaitingDecision => {
                // The deadline stays: it is what makes the case overdue.
                let by = self.case.assigned_to.clone().unwrap_or_default();
                self.note("tick", format!("the decision by {by} is overdue"));
                Ok(())
            }
            State::OtherBasis
            | State::Refused
            | State::Withdrawn
            | State::Objected
            | State::Purged => {
                self.case.due_at = None;
                self.note(
                    "tick",
                    format!("nothing is scheduled in state {}", self.case.state),
                );
                Ok(())
            }
        }
    }

    /// Starts a round of asking: the first request now, reminders after it.
    fn start_round(&mut self, template: &str) -> Result<(), StepError> {
        self.case.state = State::Requested;
        self.case.attempt = 0;
        self.case.requested_at = Some(self.now());
        self.case.assigned_to = None;
        let reminders = self.reminder_days()?;
        self.send(1, template, &reminders)
    }

    /// Request number `attempt`: its channel and how long its link works;
    /// `None` if every way to reach the contact bounced.
    fn request(&mut self, attempt: u32, template: &str) -> Result<Option<Action>, StepError> {
        let Some(channel) = self.channel(attempt)? else {
            return Ok(None);
        };
        let days = self.period_hook(Hook::LinkValidDays, 1, hooks::DEFAULT_LINK_VALID_DAYS)?;
        Ok(Some(Action::SendRequest {
            channel,
            template: template.to_owned(),
            attempt,
            link_expires_at: self.period(self.now(), days),
        }))
    }

    /// Sends request number `attempt` and schedules what follows it.
    fn send(&mut self, attempt: u32, template: &str, reminders: &[u32]) -> Result<(), StepError> {
        let Some(request) = self.request(attempt, template)? else {
            // Nobody can be asked any more: the owner decides.
            return self.hand_to(self.contact.owner.clone());
        };
        self.case.attempt = attempt;
        self.actions.push(request);
        let now = self.now();
        let next = match reminders.get(attempt as usize - 1) {
            Some(&days) => {
                let start = self.case.requested_at.unwrap_or(now);
                add_days(start, days, self.business_days(), self.clock)
            }
            None => {
                let days = self.days_hook(Hook::AnswerDays, 1, hooks::DEFAULT_ANSWER_DAYS)?;
                add_days(now, days, self.business_days(), self.clock)
            }
        };
        self.case.due_at = Some(next.max(now + MIN_GAP));
        Ok(())
    }

    fn no_response(&mut self) -> Result<(), StepError> {
        let plan = self.with_case(Hook::OnNoResponse, hooks::no_response, || {
            NoResponsePlan::Manual { assign: None }
        })?;
        match plan {
            NoResponsePlan::Manual { assign } => {
                let assignee = assign.unwrap_or_else(|| self.contact.owner.clone());
                self.hand_to(assignee)
            }
            NoResponsePlan::Restart { after_days } => {
                self.case.state = State::Paused;
                self.case.attempt = 0;
                self.case.due_at = Some(self.wait(self.now(), hooks::Period::days(after_days)));
                Ok(())
            }
            NoResponsePlan::Cleanup { mode, grace_days } => self.enter_cleanup(
                mode,
                grace_days,
                "no-response",
                State::AwaitingDecision,
                None,
            ),
        }
    }

    /// `days` calendar days after `from` on the tenant's local calendar (the
    /// same local time of day, whatever summer time did): legal periods,
    /// such as how long a consent or a link is valid.
    fn period(&self, from: DateTime<Utc>, period: hooks::Period) -> DateTime<Utc> {
        crate::calendar::add_period(from, period, self.clock)
    }

    /// A wait of the process in calendar days (a restart, a cleanup's
    /// grace); if the policy counts business days, it ends on a working day
    /// (the next one, if it would end on a weekend, holiday or closure day).
    fn wait(&self, from: DateTime<Utc>, period: hooks::Period) -> DateTime<Utc> {
        let end = self.period(from, period);
        if self.business_days() {
            add_days(end, 0, true, self.clock)
        } else {
            end
        }
    }

    /// Whether the contact is being asked: a round of requests, or the
    /// re-confirmation of a consent that is still used.
    fn asking(&self) -> bool {
        self.case.attempt > 0 && matches!(self.case.state, State::Requested | State::Consented)
    }

    /// The case waits for a person's decision.
    fn hand_to(&mut self, assignee: String) -> Result<(), StepError> {
        let note = format!(
            "No answer for purpose {} after {} request(s): decide whether to restart, clean up or record another legal basis.",
            self.case.purpose, self.case.attempt
        );
        self.case.state = State::AwaitingDecision;
        self.case.due_at = self.decision_deadline()?;
        self.case.assigned_to = Some(assignee.clone());
        self.actions.push(Action::CreateTask {
            assignee,
            kind: "decide".to_owned(),
            note,
        });
        Ok(())
    }

    /// When a case handed to a person is overdue: the policy's
    /// `decision_days` from now (business days if the policy counts them),
    /// or never. The tick leaves a waiting case alone; the deadline only
    /// makes it show as overdue in the cockpit.
    fn decision_deadline(&mut self) -> Result<Option<DateTime<Utc>>, StepError> {
        let days = self.days_hook(Hook::DecisionDays, 0, hooks::DEFAULT_DECISION_DAYS)?;
        Ok((days > 0).then(|| add_days(self.now(), days, self.business_days(), self.clock)))
    }

    fn block_use(&mut self) {
        let already = self.before.state.band() == Band::Removed
            || self.actions.iter().any(|a| matches!(a, Action::BlockUse));
        if !already {
            self.actions.push(Action::BlockUse);
        }
    }

    fn enter_cleanup(
        &mut self,
        mode: CleanupMode,
        grace_days: Option<u32>,
        reason: &str,
        resume_state: State,
        requested_by: Option<String>,
    ) -> Result<(), StepError> {
        let grace = match grace_days {
            Some(days) => hooks::Period::days(days),
            None => self.period_hook(Hook::CleanupGraceDays, 0, hooks::DEFAULT_GRACE_DAYS)?,
        };
        let requires_approval = self.with_case(Hook::RequiresApproval, hooks::flag, || false)?;
        let not_before = self.wait(self.now(), grace);
        self.block_use();
        if requires_approval {
            let note = match &requested_by {
                Some(by) => format!(
                    "Cleanup ({}) of purpose {} needs a second person's approval; {by} asked for it and cannot approve it.",
                    mode.as_str(),
                    self.case.purpose
                ),
                None => format!(
                    "Cleanup ({}) of purpose {} after {reason} needs a person's approval.",
                    mode.as_str(),
                    self.case.purpose
                ),
            };
            // The owner approves, unless the owner asked for the cleanup: then
            // the task goes to the team's approvers, whoever that is in the CRM.
            let assignee = if requested_by.as_deref() == Some(self.contact.owner.as_str())
                || self.contact.owner.trim().is_empty()
            {
                APPROVERS.to_owned()
            } else {
                self.contact.owner.clone()
            };
            self.actions.push(Action::CreateTask {
                assignee,
                kind: "approve-cleanup".to_owned(),
                note,
            });
        }
        let resume_due_at = self.case.due_at;
        self.case.state = State::CleanupPending;
        self.case.assigned_to = None;
        self.case.due_at = Some(not_before);
        self.case.cleanup = Some(CleanupPlan {
            mode,
            not_before,
            reason: reason.to_owned(),
            resume_state,
            resume_due_at,
            requested_by,
            requires_approval,
            approved_by: None,
        });
        Ok(())
    }

    fn purge_if_allowed(&mut self) -> Result<(), StepError> {
        let Some(plan) = self.case.cleanup.clone() else {
            return Err(StepError::rejected(
                "the case is cleanup-pending but carries no cleanup plan",
            ));
        };
        if self.now() < plan.not_before {
            self.case.due_at = Some(plan.not_before);
            self.note("cleanup", "the grace period has not ended");
            return Ok(());
        }
        if self.case.legal_hold {
            self.case.due_at = None;
            self.note(
                "cleanup",
                "on legal hold: the cleanup waits until the hold is lifted",
            );
            return Ok(());
        }
        if plan.requires_approval && plan.approved_by.is_none() {
            self.case.due_at = None;
            self.note("cleanup", "waiting for a second person's approval");
            return Ok(());
        }
        let retention_days = self.with_case(
            Hook::EvidenceRetentionDays,
            |v| hooks::period(v, 0),
            || hooks::Period::days(hooks::DEFAULT_EVIDENCE_RETENTION_DAYS),
        )?;
        // Retention runs from the erasure, or from the last use if that was
        // later (a use can be recorded while the cleanup is pending).
        let since = match self.case.last_used_at {
            Some(used) if used > self.now() => used,
            _ => self.now(),
        };
        let keep_evidence_until = self.period(since, retention_days);
        self.case.state = State::Purged;
        self.case.pending_basis = None;
        // The data a basis relied on goes with the person; its evidence
        // stays as long as the policy says.
        self.case.basis = None;
        self.case.due_at = None;
        self.case.assigned_to = None;
        self.actions.push(Action::Cleanup {
            mode: plan.mode,
            keep_evidence_until,
        });
        self.note(
            "cleanup",
            format!("grace period over: {} now", plan.mode.as_str()),
        );
        Ok(())
    }

    fn accept(&mut self) -> Result<(), StepError> {
        match self.case.state {
            State::Refused | State::Withdrawn | State::Objected => {
                return Err(StepError::rejected(format!(
                    "the contact {} earlier; a new consent needs a new request",
                    self.case.state
                )));
            }
            State::CleanupPending => {
                if self
                    .case
                    .cleanup
                    .as_ref()
                    .is_some_and(CleanupPlan::after_no)
                {
                    return Err(StepError::rejected(
                        "the contact said no earlier; a new consent needs a new request",
                    ));
                }
                self.note("response", "a late answer stops the pending cleanup");
            }
            _ => {}
        }
        self.grant_consent()
    }

    /// The contact consented on their own initiative, through their
    /// personal link: their own decision, so it may end their refusal, their
    /// withdrawal or the cleanup either started. klar never asked them (the
    /// host refuses any request to a refused contact); the consent counts
    /// like an answer from then on.
    fn consent(&mut self) -> Result<(), StepError> {
        match self.case.state {
            State::Refused | State::Withdrawn | State::Objected => self.note(
                "consent",
                format!(
                    "the contact {} earlier and now consents on their own initiative",
                    self.case.state
                ),
            ),
            State::CleanupPending => self.note(
                "consent",
                "the contact consents on their own initiative; the pending cleanup stops",
            ),
            State::Consented => self.note(
                "consent",
                "the contact consents again on their own initiative; the consent is renewed",
            ),
            _ => self.note("consent", "the contact consents on their own initiative"),
        }
        self.case.pending_basis = None;
        self.grant_consent()
    }

    /// The case is consented from now on, with the policy's validity.
    fn grant_consent(&mut self) -> Result<(), StepError> {
        let now = self.now();
        let valid_days =
            self.period_hook(Hook::ConsentValidDays, 0, hooks::DEFAULT_CONSENT_VALID_DAYS)?;
        self.case.state = State::Consented;
        self.case.consented_at = Some(now);
        self.case.review_at = (!valid_days.is_zero()).then(|| self.period(now, valid_days));
        self.case.attempt = 0;
        self.case.assigned_to = None;
        self.case.cleanup = None;
        self.case.basis = None;
        self.schedule_consent_check()
    }

    /// A consent is checked again at its review date or when it goes stale,
    /// whichever comes first.
    fn schedule_consent_check(&mut self) -> Result<(), StepError> {
        let stale_days =
            self.period_hook(Hook::StaleAfterDays, 0, hooks::DEFAULT_STALE_AFTER_DAYS)?;
        let stale_at = (!stale_days.is_zero())
            .then(|| {
                let since = match (self.case.last_used_at, self.case.consented_at) {
                    (Some(used), Some(agreed)) => Some(used.max(agreed)),
                    (used, agreed) => used.or(agreed),
                };
                since.map(|t| self.period(t, stale_days))
            })
            .flatten();
        self.case.due_at = match (self.case.review_at, stale_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        Ok(())
    }

    fn refuse(&mut self) -> Result<(), StepError> {
        match self.case.state {
            State::Refused | State::Withdrawn | State::Objected | State::CleanupPending => {
                self.note("response", "the contact said no again; nothing changes");
                Ok(())
            }
            _ => {
                self.case.state = State::Refused;
                self.block_use();
                self.after_refusal("refusal", State::Refused)
            }
        }
    }

    fn withdraw(&mut self) -> Result<(), StepError> {
        match self.case.state {
            State::Refused | State::Withdrawn | State::Objected | State::CleanupPending => {
                self.note("withdrawal", "use is already blocked; nothing changes");
                Ok(())
            }
            _ => {
                self.case.state = State::Withdrawn;
                self.block_use();
                self.after_refusal("withdrawal", State::Withdrawn)
            }
        }
    }

    /// The contact objects (Art. 21 GDPR). On a legitimate interest, the
    /// existing-customer exception, a basis a person named, a consent or a
    /// case still being clarified, use stops at once and for good: nothing
    /// but the contact's own consent makes the case usable again. A
    /// contract or a legal obligation is not ended by an objection; the
    /// owner checks it.
    fn object(&mut self) -> Result<(), StepError> {
        let state = self.case.state;
        match state {
            State::Objected => {
                self.note("objection", "the contact objected earlier; nothing changes");
                Ok(())
            }
            State::CleanupPending => {
                if let Some(plan) = self.case.cleanup.as_mut() {
                    plan.reason = "objection".to_owned();
                    plan.resume_state = State::Objected;
                    plan.resume_due_at = None;
                }
                self.case.pending_basis = None;
                self.note(
                    "objection",
                    "the cleanup stays as planned; if a person stops it, the case stays objected",
                );
                Ok(())
            }
            State::Refused | State::Withdrawn => {
                self.case.state = State::Objected;
                self.case.pending_basis = None;
                self.note(
                    "objection",
                    format!(
                        "the contact {state} earlier; the objection also rules out any other basis"
                    ),
                );
                Ok(())
            }
            State::OtherBasis
                if self
                    .case
                    .basis
                    .as_ref()
                    .is_some_and(|b| !b.kind.objectionable()) =>
            {
                let kind = self
                    .case
                    .basis
                    .as_ref()
                    .map(|b| b.kind)
                    .unwrap_or(BasisKind::Other);
                self.note(
                    "objection",
                    format!("an objection (Art. 21 GDPR) does not end a {kind} basis; the owner checks it"),
                );
                self.actions.push(Action::CreateTask {
                    assignee: self.contact.owner.clone(),
                    kind: "review-objection".to_owned(),
                    note: format!(
                        "Contact {} objects to the use for purpose {}, which stands on the basis {kind}. Check whether it still applies; if not, record a cleanup.",
                        self.contact.id, self.case.purpose
                    ),
                });
                Ok(())
            }
            _ => {
                self.note(
                    "objection",
                    format!("the contact objects in state {state}: use stops at once and for good"),
                );
                self.case.state = State::Objected;
                self.case.pending_basis = None;
                self.block_use();
                self.after_refusal("objection", State::Objected)
            }
        }
    }

    fn after_refusal(&mut self, reason: &str, state: State) -> Result<(), StepError> {
        self.case.due_at = None;
        self.case.assigned_to = None;
        let plan = self.with_case(Hook::OnRefusal, hooks::refusal, || RefusalPlan::Cleanup {
            mode: CleanupMode::Anonymise,
            grace_days: None,
        })?;
        match plan {
            RefusalPlan::Block => Ok(()),
            RefusalPlan::Cleanup { mode, grace_days } => {
                self.enter_cleanup(mode, grace_days, reason, state, None)
            }
        }
    }

    fn bounce(&mut self, channel: &str) {
        if self.asking() {
            let key = bounce_key(channel, self.contact);
            if !self.case.bounced.contains(&key) {
                self.case.bounced.push(key);
            }
            self.case.due_at = Some(self.now());
            self.note(
                format!("bounce on {channel}"),
                "the request did not arrive; the next attempt is due now, by another way",
            );
        } else {
            self.note(
                format!("bounce on {channel}"),
                format!("ignored in state {}", self.case.state),
            );
        }
    }

    fn decide(&mut self, d: &Decision) -> Result<(), StepError> {
        if d.by.trim().is_empty() {
            return Err(StepError::rejected(
                "a decision needs the name of the person who made it",
            ));
        }
        if d.reason.trim().is_empty() {
            return Err(StepError::rejected("a decision needs a reason"));
        }
        self.note(
            format!("decision by {}", d.by),
            format!("{}: {}", d.kind.as_str(), d.reason),
        );
        let state = self.case.state;
        let never_ask_again = matches!(state, State::Refused | State::Withdrawn | State::Objected);
        let objected = state == State::Objected
            || self
                .case
                .cleanup
                .as_ref()
                .is_some_and(CleanupPlan::after_objection);
        if d.kind == DecisionKind::OtherBasis && objected {
            return Err(StepError::rejected(
                "the contact objected (Art. 21 GDPR); no other basis can override an objection",
            ));
        }
        if d.kind == DecisionKind::OtherBasis
            && matches!(
                state,
                State::Refused | State::Withdrawn | State::CleanupPending
            )
        {
            return self.ask_for_other_basis(d);
        }
        match d.kind {
            DecisionKind::Manual | DecisionKind::Restart if never_ask_again => Err(
                StepError::rejected(format!("the contact {state}; klar never asks them again")),
            ),
            DecisionKind::Manual | DecisionKind::Restart | DecisionKind::Cleanup
                if state == State::CleanupPending =>
            {
                Err(StepError::rejected(
                    "a cleanup is pending; stop it with `keep` first",
                ))
            }
            DecisionKind::Manual => {
                self.case.state = State::AwaitingDecision;
                self.case.due_at = self.decision_deadline()?;
                self.case.assigned_to = Some(d.by.clone());
                Ok(())
            }
            DecisionKind::Restart => match d.after_days.unwrap_or(0) {
                0 => self.start_round("request"),
                days => {
                    self.case.state = State::Paused;
                    self.case.attempt = 0;
                    self.case.assigned_to = None;
                    self.case.due_at = Some(self.wait(self.now(), hooks::Period::days(days)));
                    Ok(())
                }
            },
            DecisionKind::Cleanup => self.enter_cleanup(
                d.mode.unwrap_or(CleanupMode::Anonymise),
                None,
                "decision",
                state,
                Some(d.by.clone()),
            ),
            DecisionKind::OtherBasis => {
                self.case.state = State::OtherBasis;
                self.case.basis = Some(person_basis(&d.reason, &d.by, self.now()));
                self.case.cleanup = None;
                self.case.assigned_to = None;
                self.case.due_at = None;
                self.case.attempt = 0;
                Ok(())
            }
            DecisionKind::Keep => {
                let Some(plan) = self
                    .case
                    .cleanup
                    .take()
                    .filter(|_| state == State::CleanupPending)
                else {
                    return Err(StepError::rejected("there is no pending cleanup to stop"));
                };
                self.case.state = plan.resume_state;
                // The plan the case had before, e.g. its next reminder or its
                // review date; if that has passed, the next tick takes it up.
                self.case.due_at = plan.resume_due_at;
                self.case.assigned_to =
                    (plan.resume_state == State::AwaitingDecision).then(|| d.by.clone());
                Ok(())
            }
        }
    }

    /// Another basis for a case whose contact said no, withdrew, or whose
    /// cleanup is pending: it overrides what the contact or a person
    /// decided, so it needs a second person. Until then nothing changes: the
    /// refusal stands, a pending cleanup keeps its date.
    fn ask_for_other_basis(&mut self, d: &Decision) -> Result<(), StepError> {
        if let Some(pending) = &self.case.pending_basis {
            return Err(StepError::rejected(format!(
                "another basis asked for by {} already waits for approval",
                pending.requested_by
            )));
        }
        let state = self.case.state;
        self.case.pending_basis = Some(PendingBasis {
            reason: d.reason.clone(),
            requested_by: d.by.clone(),
        });
        self.note(
            "other basis",
            format!(
                "asked for in state {state}: it overrides that state, so it applies only when a second person approves it; until then the case stays {state}"
            ),
        );
        self.actions.push(Action::CreateTask {
            assignee: APPROVERS.to_owned(),
            kind: "approve-basis".to_owned(),
            note: format!(
                "{} asks to record another legal basis for purpose {} although the case is {state}: {}. A second person must approve it (klar approve).",
                d.by, self.case.purpose, d.reason
            ),
        });
        Ok(())
    }

    /// The approval of another basis asked for by someone else: the case
    /// takes it, and the audit says what it ended.
    fn approve_basis(&mut self, by: &str, pending: PendingBasis) -> Result<(), StepError> {
        if pending.requested_by == by {
            self.case.pending_basis = Some(pending);
            return Err(StepError::rejected(format!(
                "{by} asked for this basis and cannot also approve it; a second person must"
            )));
        }
        let state = self.case.state;
        let ended = match (state, &self.case.cleanup) {
            (State::CleanupPending, Some(plan)) => format!(
                "the pending cleanup (not before {}) is stopped",
                plan.not_before.to_rfc3339()
            ),
            _ => format!("the case was {state}"),
        };
        self.note(
            format!("approval by {by}"),
            format!(
                "another basis, asked for by {}: {}; {ended}",
                pending.requested_by, pending.reason
            ),
        );
        self.case.state = State::OtherBasis;
        self.case.basis = Some(person_basis(&pending.reason, by, self.now()));
        self.case.cleanup = None;
        self.case.assigned_to = None;
        self.case.due_at = None;
        self.case.attempt = 0;
        Ok(())
    }

    fn approve(&mut self, by: &str) -> Result<(), StepError> {
        if let Some(pending) = self.case.pending_basis.take() {
            return self.approve_basis(by, pending);
        }
        let state = self.case.state;
        let Some(plan) = self
            .case
            .cleanup
            .as_mut()
            .filter(|_| state == State::CleanupPending)
        else {
            return Err(StepError::rejected(
                "there is no pending cleanup to approve",
            ));
        };
        if !plan.requires_approval {
            return Err(StepError::rejected(
                "this cleanup needs no approval (the policy does not ask for one); nothing changed",
            ));
        }
        if let Some(earlier) = &plan.approved_by {
            return Err(StepError::rejected(format!(
                "{earlier} has already approved this cleanup; nothing changed"
            )));
        }
        if plan.requested_by.as_deref() == Some(by) {
            return Err(StepError::rejected(format!(
                "{by} asked for this cleanup and cannot also approve it; a second person must"
            )));
        }
        plan.approved_by = Some(by.to_owned());
        let not_before = plan.not_before;
        self.case.due_at = Some(not_before);
        self.note(
            format!("approval by {by}"),
            "the cleanup may run when the grace period ends",
        );
        Ok(())
    }

    fn used(&mut self) -> Result<(), StepError> {
        self.case.last_used_at = Some(self.now());
        match self.case.state {
            // A re-confirmation round keeps its own schedule.
            State::Consented if self.case.attempt > 0 => Ok(()),
            State::Consented => self.schedule_consent_check(),
            State::OtherBasis => Ok(()),
            state => {
                let message = format!(
                    "Contact {} was used for purpose {} while its case is {state}, which does not allow use.",
                    self.contact.id, self.case.purpose
                );
                self.actions.push(Action::Notify {
                    recipient: self.contact.owner.clone(),
                    message,
                });
                Ok(())
            }
        }
    }

    fn data_changed(&mut self) -> Result<(), StepError> {
        let on_policy_basis = self.case.state == State::OtherBasis
            && self.case.basis.as_ref().is_some_and(Basis::by_policy);
        let clarifying = matches!(
            self.case.state,
            State::Requested | State::AwaitingDecision | State::Paused
        );
        if on_policy_basis || clarifying {
            match self.policy_basis()? {
                Some(basis) => {
                    let same = self.case.basis.as_ref().is_some_and(|b| {
                        b.kind == basis.kind
                            && b.reason == basis.reason
                            && b.relied_on == basis.relied_on
                    });
                    if on_policy_basis && same {
                        self.note("data changed", "the basis still applies as recorded");
                    } else {
                        self.stand_on(basis);
                    }
                    return Ok(());
                }
                None if on_policy_basis => {
                    self.note(
                        "data changed",
                        "the policy no longer gives another basis: klar asks for consent",
                    );
                    self.case.basis = None;
                    return self.start_round("request");
                }
                None => {}
            }
        }
        if !self.asking() {
            self.note(
                "data changed",
                format!("nothing to do in state {}", self.case.state),
            );
            return Ok(());
        }
        let attempt = self.case.attempt;
        let template = if attempt == 1 { "request" } else { "reminder" };
        match self.request(attempt, template)? {
            Some(request) => {
                self.actions.push(request);
                self.note(
                    "data changed",
                    "the current request is sent again to the new address",
                );
            }
            None => self.note("data changed", "every way to reach the contact bounced"),
        }
        Ok(())
    }
}

/// A basis a person recorded, named in words.
fn person_basis(reason: &str, by: &str, now: Timestamp) -> Basis {
    Basis {
        kind: BasisKind::Other,
        reason: reason.to_owned(),
        decided_by: Some(by.to_owned()),
        since: Some(now),
        review_at: None,
        relied_on: Default::default(),
        policy_version: None,
    }
}

/// The key under which a bounce of `channel` is kept: the address it went
/// to, so that a new address is tried again.
fn bounce_key(channel: &str, contact: &Contact) -> String {
    let address = |a: &Option<String>| a.as_deref().unwrap_or_default().trim().to_lowercase();
    match channel {
        "email" => format!("email:{}", address(&contact.email)),
        "phone-task" => format!("phone:{}", address(&contact.phone)),
        other => other.to_owned(),
    }
}

/// The channels whose current address bounced in this case.
fn bounced_channels(case: &Case, contact: &Contact) -> Vec<&'static str> {
    // Every request asks this; almost no case has a bounce, and the keys
    // below are formatted strings.
    if case.bounced.is_empty() {
        return Vec::new();
    }
    ["email", "phone-task", "letter"]
        .into_iter()
        .filter(|c| case.bounced.contains(&bounce_key(c, contact)))
        .collect()
}

/// The first way to reach the contact that exists and has not bounced:
/// e-mail, then a call by the owner, then a letter.
fn first_open_channel(contact: &Contact, bounced: &[&str]) -> Option<&'static str> {
    let known = |v: &Option<String>| v.as_deref().is_some_and(|x| !x.trim().is_empty());
    [
        ("email", known(&contact.email)),
        ("phone-task", known(&contact.phone)),
        ("letter", true),
    ]
    .into_iter()
    .find(|(c, possible)| *possible && !bounced.contains(c))
    .map(|(c, _)| c)
}

#[cfg(test)]
mod tests;
