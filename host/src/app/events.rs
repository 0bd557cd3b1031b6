//! Events for a contact, as the CLI (`decide`, `approve`, `hold`,
//! `withdraw`, `used`) and the API (`POST /v1/contacts/{id}/events`) report
//! them: which purposes an event applies to, each purpose's step, and the
//! API's idempotency key, all in one transaction.

use chrono::{DateTime, Utc};

use super::actor::Actor;
use crate::engine::{self, EventError, Sessions, Stepped};
use crate::plugin::{Event, State};
use crate::store::audit::{self, Entry};
use crate::store::tenants::{self, Tenant};
use crate::store::{Store, StoreError, Tx, cases, idempotency};

/// What the event did to one purpose's case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// The case took it and is now in this state.
    Now(State),
    /// The process refused it (nothing changed), with why.
    Refused(String),
    /// The step failed; the case is marked for a person's attention.
    Failed(String),
}

/// One purpose's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PurposeResult {
    pub purpose: String,
    pub applied: Applied,
}

/// An `Idempotency-Key`: the request it came with, and how to write down
/// the answer the request got, to give it again to a retry.
pub struct Idempotency<'a> {
    pub key: &'a str,
    /// The request as received (what a retry must repeat exactly).
    pub request: &'a str,
    /// The answer for these results: a status and a body.
    pub answer: &'a dyn Fn(&[PurposeResult]) -> (u16, String),
}

/// What [`report`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reported {
    /// The event was stepped for these purposes.
    Stepped(Vec<PurposeResult>),
    /// A retry: the first request's answer, as it was written down.
    Repeated { status: u16, answer: String },
}

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("{tenant} has no contact {contact}")]
    NoContact { tenant: String, contact: String },
    #[error("this Idempotency-Key was used for a different request")]
    KeyReused,
    /// A text a person wrote (who, why) that cannot be shown as one line.
    #[error("{0}")]
    BadText(String),
    #[error(transparent)]
    Session(#[from] engine::SessionError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<crate::store::Error> for ReportError {
    fn from(err: crate::store::Error) -> ReportError {
        ReportError::Store(err.into())
    }
}

/// The purposes an event applies to: the one named; else, for `used` and
/// `bounce` (which concern one use of the contact's data), `contact-data`;
/// else every purpose of the tenant.
pub fn purposes_for(
    conn: &crate::store::Conn,
    tenant: &str,
    event: &Event,
    purpose: Option<&str>,
) -> crate::store::Result<Vec<String>> {
    Ok(match purpose {
        Some(p) => vec![p.to_owned()],
        None if matches!(event, Event::Used | Event::Bounce { .. }) => {
            vec![tenants::DEFAULT_PURPOSE.to_owned()]
        }
        None => tenants::purposes(conn, tenant)?
            .into_iter()
            .map(|(id, _)| id)
            .collect(),
    })
}

/// Steps `event` for the contact's cases (see [`purposes_for`]) in one
/// transaction that holds SQLite's write lock from the start. With an
/// idempotency key, the key is looked up and its answer written in the same
/// transaction: concurrent requests with one key wait for the first, and
/// then get its answer; the event is applied once.
///
/// An approval is checked by identity before the policy sees it: `by` must
/// be a live account with the approver role, and not the one who asked for
/// the cleanup. A refused approval is written to the audit log.
#[allow(clippy::too_many_arguments)] // The event's whole context.
pub fn report(
    store: &mut Store,
    sessions: &Sessions,
    tenant: &Tenant,
    contact: &str,
    purpose: Option<&str>,
    (event, actor): (&Event, &Actor),
    idempotency: Option<&Idempotency<'_>>,
    now: DateTime<Utc>,
) -> Result<Reported, ReportError> {
    super::text::event(event).map_err(ReportError::BadText)?;
    let open = sessions.get(store, tenant)?;
    let mut session = open.lock();
    store.write(|tx| {
        if let Some(key) = idempotency
            && let Some(earlier) = idempotency::get_for_update(tx, &tenant.id, key.key)?
        {
            if earlier.request != key.request {
                return Err(ReportError::KeyReused);
            }
            return Ok(Reported::Repeated {
                status: earlier.status,
                answer: earlier.response,
            });
        }
        // The contact is read once per purpose, by its step; a contact that
        // does not exist is said by the first.
        let mut results = Vec::new();
        let actor_json = actor.json();
        for purpose in purposes_for(tx, &tenant.id, event, purpose)? {
            if let Event::Approve { by } = event
                && let Some(why) = approval_refused(tx, &tenant.id, (contact, &purpose), by, actor)?
            {
                audit::append(
                    tx,
                    &tenant.id,
                    Entry {
                        at: now.timestamp(),
                        contact: Some(contact.to_owned()),
                        purpose: Some(purpose.clone()),
                        kind: "approval-refused".to_owned(),
                        detail: serde_json::json!({ "by": by, "why": why, "actor": actor_json })
                            .to_string(),
                        policy_sha256: None,
                    },
                )?;
                results.push(PurposeResult {
                    purpose,
                    applied: Applied::Refused(why),
                });
                continue;
            }
            let applied = match engine::step_in(
                tx,
                &mut session,
                (tenant, &open.sha256),
                (contact, &purpose),
                event,
                (now, Some(&actor_json)),
                |_, _| Ok(()),
            ) {
                Ok(Stepped::Done(outcome)) => {
                    if matches!(event, Event::Bounce { .. }) {
                        crate::store::tokens::bounced(
                            tx,
                            &tenant.id,
                            contact,
                            &purpose,
                            now.timestamp(),
                        )?;
                    }
                    if *event == Event::Object {
                        // An objection is the contact's own declaration:
                        // evidence, like their answers, kept with the case.
                        crate::store::evidence::add(
                            tx,
                            &tenant.id,
                            contact,
                            &purpose,
                            "objection",
                            now.timestamp(),
                            &serde_json::json!({
                                "reported_by": actor_json,
                                "state": outcome.case.state,
                            }),
                        )?;
                    }
                    Applied::Now(outcome.case.state)
                }
                Ok(Stepped::Failed(why)) => Applied::Failed(why),
                Err(EventError::Rejected(why)) => Applied::Refused(why),
                Err(EventError::NoContact(_)) => {
                    return Err(ReportError::NoContact {
                        tenant: tenant.id.clone(),
                        contact: contact.to_owned(),
                    });
                }
                Err(err @ EventError::NoCase { .. }) => Applied::Refused(err.to_string()),
                Err(EventError::Failed(why)) => Applied::Failed(why),
                Err(EventError::Store(err)) => return Err(err.into()),
            };
            results.push(PurposeResult { purpose, applied });
        }
        if let Some(key) = idempotency {
            let (status, response) = (key.answer)(&results);
            let answered = idempotency::Answered {
                request: key.request.to_owned(),
                status,
                response,
            };
            idempotency::put(tx, &tenant.id, key.key, &answered, now.timestamp())?;
        }
        Ok(Reported::Stepped(results))
    })
}

/// Why `by` may not approve this case's pending cleanup or pending other
/// basis, if they may not. Only what waits for an approval is checked here;
/// any other case goes to the policy, which says why there is nothing to
/// approve.
fn approval_refused(
    tx: &Tx<'_>,
    tenant: &str,
    (contact, purpose): (&str, &str),
    by: &str,
    actor: &Actor,
) -> Result<Option<String>, StoreError> {
    let Some(case) = cases::get(tx, tenant, contact, purpose)? else {
        return Ok(None);
    };
    if let Some(pending) = &case.pending_basis {
        return second_person(tx, tenant, by, actor, (&pending.requested_by, "this basis"));
    }
    let Some(plan) = case
        .cleanup
        .as_ref()
        .filter(|p| case.state == State::CleanupPending && p.requires_approval)
        .filter(|p| p.approved_by.is_none())
    else {
        return Ok(None);
    };
    let requested_by = plan.requested_by.clone().unwrap_or_default();
    second_person(tx, tenant, by, actor, (&requested_by, "this cleanup"))
}

/// Why `by` is not the second person an approval needs, if they are not:
/// signed in as someone else, the one who asked, or not an approver.
fn second_person(
    tx: &Tx<'_>,
    tenant: &str,
    by: &str,
    actor: &Actor,
    (requested_by, what): (&str, &str),
) -> Result<Option<String>, StoreError> {
    if let Actor::Account { id, .. } = actor
        && id != by
    {
        return Ok(Some(format!(
            "{id} is signed in and cannot approve in the name of {by}"
        )));
    }
    if requested_by == by {
        return Ok(Some(format!(
            "{by} asked for {what} and cannot also approve it; a second person must"
        )));
    }
    if !super::accounts::is_approver(tx, tenant, by)? {
        return Ok(Some(format!(
            "{by} is not an approver: {what} is approved only by a live account with the approver role (`klar user add {tenant} ID --name NAME --role approver`)"
        )));
    }
    Ok(None)
}
