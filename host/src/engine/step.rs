//! One event for one case, at once: a person's decision, a withdrawal, an
//! answer through a link, a legal hold. Every face (CLI, API, response page)
//! steps events through here.

use crate::store::Tx;
use chrono::{DateTime, Utc};

use super::apply::{Applied, Step, StepContext, apply_contact, check};
use super::clock;
use crate::plugin::{Event, Outcome};
use crate::runtime::{Session, StepFailure};
use crate::store::audit::{self, Entry};
use crate::store::tenants::Tenant;
use crate::store::{Store, StoreError, cases, contacts};

/// A person looked at a failed case (fixed the policy, say) and lets the
/// scheduler take it up again. Returns false if it was not marked.
pub fn clear_attention(
    store: &mut Store,
    tenant: &str,
    (contact, purpose): (&str, &str),
    by: &str,
    reason: &str,
    now: i64,
) -> Result<bool, StoreError> {
    store.transaction(|tx| {
        let Some(error) = cases::attention(tx, tenant, contact, purpose)? else {
            return Ok(false);
        };
        cases::clear_attention(tx, tenant, (contact, purpose), now)?;
        audit::append(
            tx,
            tenant,
            Entry {
                at: now,
                contact: Some(contact.to_owned()),
                purpose: Some(purpose.to_owned()),
                kind: "attention-cleared".to_owned(),
                detail: serde_json::json!({ "by": by, "reason": reason, "error": error })
                    .to_string(),
                policy_sha256: None,
            },
        )?;
        Ok(true)
    })
}

/// Why an event for one case was not applied.
#[derive(Debug, thiserror::Error)]
pub enum EventError {
    #[error("there is no contact {0}")]
    NoContact(String),
    #[error("{contact} has no case for purpose {purpose}")]
    NoCase { contact: String, purpose: String },
    /// The plugin refused the event for this case; nothing changed.
    #[error("{0}")]
    Rejected(String),
    /// The step failed; the case is now marked needs_attention.
    #[error("the step failed and the case is marked for attention: {0}")]
    Failed(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Applies one event (a decision, a withdrawal, ...) to one case at once.
#[allow(clippy::too_many_arguments)] // The event's whole context.
pub fn step_event(
    store: &mut Store,
    session: &mut Session,
    tenant: &Tenant,
    policy_sha256: &str,
    contact_id: &str,
    purpose: &str,
    event: Event,
    now: DateTime<Utc>,
) -> Result<Outcome, EventError> {
    step_event_then(
        store,
        session,
        tenant,
        policy_sha256,
        (contact_id, purpose),
        event,
        now,
        |_, _| Ok(()),
    )
}

/// Like [`step_event`], and `then` writes more (evidence of a response, say)
/// in the same transaction as the step, unless the step failed.
#[allow(clippy::too_many_arguments)] // The event's whole context.
pub fn step_event_then(
    store: &mut Store,
    session: &mut Session,
    tenant: &Tenant,
    policy_sha256: &str,
    (contact_id, purpose): (&str, &str),
    event: Event,
    now: DateTime<Utc>,
    then: impl FnOnce(&Tx<'_>, &Outcome) -> Result<(), StoreError>,
) -> Result<Outcome, EventError> {
    // The write lock is taken before the case is read: two events for one
    // case step one after the other, never both from the same state.
    let stepped = store.write(|tx| {
        step_in(
            tx,
            session,
            (tenant, policy_sha256),
            (contact_id, purpose),
            &event,
            (now, None),
            then,
        )
    })?;
    match stepped {
        Stepped::Done(outcome) => Ok(*outcome),
        Stepped::Failed(why) => Err(EventError::Failed(why)),
    }
}

/// What [`step_in`] did when the event was not refused.
#[derive(Debug, Clone, PartialEq)]
pub enum Stepped {
    Done(Box<Outcome>),
    /// The step failed and the case is marked for attention; the mark is
    /// written, so the transaction commits all the same.
    Failed(String),
}

/// One event for one case inside the caller's transaction: the contact and
/// the case are read, the plugin steps, and the outcome (or the failure's
/// mark) is written; `then` writes more with a successful step. A refused
/// event writes nothing. `actor` names who reported the event in the audit
/// row (see [`crate::app::actor`]).
pub fn step_in(
    tx: &Tx<'_>,
    session: &mut Session,
    (tenant, policy_sha256): (&Tenant, &str),
    (contact_id, purpose): (&str, &str),
    event: &Event,
    (now, actor): (DateTime<Utc>, Option<&serde_json::Value>),
    then: impl FnOnce(&Tx<'_>, &Outcome) -> Result<(), StoreError>,
) -> Result<Stepped, EventError> {
    let no_case = || EventError::NoCase {
        contact: contact_id.to_owned(),
        purpose: purpose.to_owned(),
    };
    let Some((contact, erased_at, last_message_at)) =
        contacts::get_with_state(tx, &tenant.id, contact_id).map_err(StoreError::from)?
    else {
        return Err(EventError::NoContact(contact_id.to_owned()));
    };
    // A guardrail: nothing steps for an erased person, whatever the plugin
    // would answer.
    if erased_at.is_some() {
        return Err(EventError::Rejected(format!(
            "{contact_id} was erased; nothing changes its cases any more"
        )));
    }
    let Some(case) = cases::get(tx, &tenant.id, contact_id, purpose)? else {
        return Err(no_case());
    };
    let result = session.step(&case, &contact, event, &clock(tenant, now));
    if let Err(StepFailure::Step(crate::plugin::StepError::Rejected { reason })) = &result {
        return Err(EventError::Rejected(reason.clone()));
    }
    let outcome = result.as_ref().ok().cloned();
    let ctx = StepContext {
        tenant,
        policy_sha256,
        now: now.timestamp(),
        last_message_at,
    };
    let policy_version = crate::store::tenants::version_of(tx, &tenant.id, policy_sha256)?
        .and_then(|v| u32::try_from(v).ok());
    let step = Step {
        before: &case,
        event,
        checked: check(
            (tenant, policy_version),
            (&case, event),
            result,
            now.timestamp(),
            actor,
        ),
    };
    let applied = apply_contact(tx, &ctx, &contact, vec![step])?
        .pop()
        .unwrap_or(Applied::Unchanged);
    match (applied, outcome) {
        (Applied::Failed(why), _) => Ok(Stepped::Failed(why)),
        (_, None) => Ok(Stepped::Failed(String::new())),
        (_, Some(outcome)) => {
            then(tx, &outcome)?;
            Ok(Stepped::Done(Box::new(outcome)))
        }
    }
}

impl From<crate::store::Error> for EventError {
    fn from(err: crate::store::Error) -> EventError {
        EventError::Store(err.into())
    }
}
