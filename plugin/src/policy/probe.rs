//! Running every hook of a policy for a contact, as klar asks it in real
//! steps: with a sample contact when the policy is compiled, and for each of
//! a tenant's contacts before a version becomes active.

use std::rc::Rc;

use chrono::{TimeZone, Utc};
use rhai::Dynamic;

use super::{Found, MAX_PROBED_ATTEMPTS, Policy};
use crate::hooks::{self, Hook};
use crate::model::{Case, Contact, Diagnostic, ProbeProblem, Severity, State};
use crate::script::{CaseView, ContactView};

impl Policy {
    /// Runs every defined hook once on a sample contact and case, so that wrong
    /// return types and runaway scripts are errors before the policy is used.
    /// A deliberate `throw` may depend on the contact, so with the sample it is
    /// only a warning; anything else (a typo, a limit, a wrong operation) fails
    /// for real contacts too.
    pub(super) fn check_with_sample(&self, diagnostics: &mut Vec<Diagnostic>) {
        let mut found = Vec::new();
        if let Err(failure) = self.try_hook(Hook::BusinessDaysOnly, &[], hooks::flag) {
            found.push(failure);
        }
        let contact = Rc::new(sample_contact());
        found.extend(self.probe_contact(&contact, &[Case::new("contact-data")]));
        for f in found {
            let mut diagnostic = f.diagnostic;
            if f.thrown {
                diagnostic.severity = Severity::Warning;
                diagnostic.message = format!("{} (seen with a sample contact)", diagnostic.message);
            }
            diagnostics.push(diagnostic);
        }
    }

    /// Runs every hook the policy defines for one contact and each of its
    /// cases, with the inputs klar gives the hook at the moment it asks: for
    /// example `on_no_response` sees the case after its last reminder, and
    /// `on_refusal` a refused and a withdrawn case. Every problem found is
    /// one a real step for this contact can run into, a `throw` included.
    /// `business_days_only()` takes no contact; the check at compile time
    /// covers it. Purged cases are skipped: no hook runs for them again.
    pub fn probe(&self, contact: &Rc<Contact>, cases: &[Case]) -> Vec<ProbeProblem> {
        self.probe_contact(contact, cases)
            .into_iter()
            .map(|f| ProbeProblem {
                index: 0,
                hook: f.hook.name().to_owned(),
                purpose: f.purpose,
                diagnostic: f.diagnostic,
            })
            .collect()
    }

    pub(super) fn probe_contact(&self, contact: &Rc<Contact>, cases: &[Case]) -> Vec<Found> {
        let view = Dynamic::from(ContactView(Rc::clone(contact)));
        let one = [view.clone()];
        let mut found = Vec::new();
        let reminders = match self.try_hook(Hook::ReminderDays, &one, hooks::reminder_days) {
            Ok(Some(days)) => days.len(),
            Ok(None) => hooks::DEFAULT_REMINDER_DAYS.len(),
            Err(failure) => {
                found.push(failure);
                hooks::DEFAULT_REMINDER_DAYS.len()
            }
        };
        for (hook, min) in [(Hook::AnswerDays, 1), (Hook::DecisionDays, 0)] {
            if let Err(failure) = self.try_hook(hook, &one, |v| hooks::whole_days(v, min)) {
                found.push(failure);
            }
        }
        // The hooks that may return a calendar period ("2 years").
        for (hook, min) in [
            (Hook::LinkValidDays, 1),
            (Hook::ConsentValidDays, 0),
            (Hook::StaleAfterDays, 0),
            (Hook::CleanupGraceDays, 0),
        ] {
            if let Err(failure) = self.try_hook(hook, &one, |v| hooks::period(v, min)) {
                found.push(failure);
            }
        }
        // The first request is attempt 1; each reminder adds one.
        let attempts = (reminders + 1).min(MAX_PROBED_ATTEMPTS);
        for attempt in 1..=attempts {
            let attempt = Dynamic::from(attempt as i64);
            let checked = if self.channel_sees_bounces() {
                let none = Dynamic::from(rhai::Array::new());
                self.try_hook(
                    Hook::Channel,
                    &[view.clone(), attempt, none],
                    hooks::channel,
                )
            } else {
                self.try_hook(Hook::Channel, &[view.clone(), attempt], hooks::channel)
            };
            if let Err(failure) = checked {
                found.push(failure);
                break;
            }
        }
        for case in cases.iter().filter(|c| c.state != State::Purged) {
            let at = |state: State, attempt: Option<usize>| {
                let mut moment = case.clone();
                moment.state = state;
                if let Some(attempt) = attempt {
                    moment.attempt = u32::try_from(attempt).unwrap_or(u32::MAX);
                }
                Dynamic::from(CaseView(Rc::new(moment)))
            };
            // After the last reminder went unanswered.
            let unanswered = at(State::Requested, Some(reminders + 1));
            let refused = at(State::Refused, None);
            let withdrawn = at(State::Withdrawn, None);
            let moments: [(Hook, Vec<Dynamic>); 6] = [
                (
                    Hook::Basis,
                    vec![at(State::Unclarified, None), at(State::Requested, Some(1))],
                ),
                (Hook::OnNoResponse, vec![unanswered.clone()]),
                (Hook::OnRefusal, vec![refused.clone(), withdrawn.clone()]),
                (
                    Hook::RequiresApproval,
                    vec![
                        refused,
                        withdrawn,
                        unanswered,
                        at(State::AwaitingDecision, None),
                    ],
                ),
                (
                    Hook::EvidenceRetentionDays,
                    vec![at(State::CleanupPending, None)],
                ),
                (
                    Hook::UsableWhileReconfirming,
                    vec![at(State::Consented, None)],
                ),
            ];
            for (hook, moments) in moments {
                for moment in moments {
                    let args = [view.clone(), moment];
                    let checked = match hook {
                        Hook::OnNoResponse => {
                            self.try_hook(hook, &args, hooks::no_response).map(drop)
                        }
                        Hook::OnRefusal => self.try_hook(hook, &args, hooks::refusal).map(drop),
                        Hook::RequiresApproval | Hook::UsableWhileReconfirming => {
                            self.try_hook(hook, &args, hooks::flag).map(drop)
                        }
                        Hook::Basis => self.try_hook(hook, &args, hooks::basis).map(drop),
                        _ => self
                            .try_hook(hook, &args, |v| hooks::period(v, 0))
                            .map(drop),
                    };
                    if let Err(mut failure) = checked {
                        failure.purpose = Some(case.purpose.clone());
                        found.push(failure);
                        break;
                    }
                }
            }
        }
        // The same mistake seen for two purposes is one problem.
        let mut seen = Vec::new();
        found.retain(|f| {
            let key = (f.hook, f.diagnostic.clone());
            let new = !seen.contains(&key);
            if new {
                seen.push(key);
            }
            new
        });
        found
    }
}

pub(super) fn sample_contact() -> Contact {
    Contact {
        id: "sample".to_owned(),
        first_name: "Erika".to_owned(),
        last_name: "Mustermann".to_owned(),
        email: Some("erika@example.org".to_owned()),
        phone: Some("+49 30 1234567".to_owned()),
        owner: "owner".to_owned(),
        source: "web-form".to_owned(),
        language: "de".to_owned(),
        created_at: Utc
            .timestamp_opt(1_767_225_600, 0)
            .single()
            .unwrap_or_default(),
        attributes: Default::default(),
    }
}
