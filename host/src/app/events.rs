//! Events for a contact, as the CLI (`decide`, `approve`, `hold`,
//! `withdraw`, `used`) and the API (`POST /v1/contacts/{id}/events`) report
//! them: which purposes an event applies to, each purpose's step, and the
//! API's idempotency key, all in one transaction.

use chrono::{DateTime, Utc};

use crate::engine::{self, EventError, Sessions, Stepped};
use crate::plugin::{Event, State};
use crate::store::tenants::{self, Tenant};
use crate::store::{Store, StoreError, idempotency};

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
#[allow(clippy::too_many_arguments)] // The event's whole context.
pub fn report(
    store: &mut Store,
    sessions: &Sessions,
    tenant: &Tenant,
    contact: &str,
    purpose: Option<&str>,
    event: &Event,
    idempotency: Option<&Idempotency<'_>>,
    now: DateTime<Utc>,
) -> Result<Reported, ReportError> {
    super::text::event(event).map_err(ReportError::BadText)?;
    let open = sessions.get(store, tenant)?;
    let mut session = open.lock();
    store.write(|tx| {
        if let Some(key) = idempotency
            && let Some(earlier) = idempotency::get(tx, &tenant.id, key.key)?
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
        for purpose in purposes_for(tx, &tenant.id, event, purpose)? {
            let applied = match engine::step_in(
                tx,
                &mut session,
                (tenant, &open.sha256),
                (contact, &purpose),
                event,
                now,
                |_, _| Ok(()),
            ) {
                Ok(Stepped::Done(outcome)) => Applied::Now(outcome.case.state),
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
