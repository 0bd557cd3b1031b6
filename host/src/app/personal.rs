//! The contact's way back: their personal link (`/p/{secret}`) shows what
//! they said about each purpose and lets them change it whenever they like.
//! A consent can be withdrawn as easily as it was given (Art. 7(3) GDPR); a
//! refusal or a withdrawal can be ended by the contact's own consent, which
//! is recorded as evidence with the version and SHA-256 of the text they were
//! shown; an open question can be answered. klar never asks a contact who
//! said no again: the link waits for them to act.
//!
//! Every answer, through a request's link or the personal link, is confirmed
//! by a `send-confirmation` action that carries a fresh personal link (klar's
//! mailer sends it by e-mail; otherwise the CRM does).

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::json;

use super::respond::Origin;
use crate::engine::{self, EventError, SessionError, Sessions, Stepped, said_no};
use crate::plugin::{Answer, Case, Event, State};
use crate::store::texts::{self, ConsentText};
use crate::store::tokens::{PersonalLink, TokenError, TokenLookupError};
use crate::store::{Store, StoreError, Tx, cases, contacts, evidence, outbox, tenants, tokens};

/// What the contact may do about one purpose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Change {
    /// Consent, on their own initiative or to an open question.
    Consent,
    /// Say no to an open question.
    Refuse,
    /// Take a consent back.
    Withdraw,
    /// Object to the use on another basis (Art. 21 GDPR).
    Object,
}

impl Change {
    pub fn parse(value: &str) -> Option<Change> {
        match value {
            "consent" => Some(Change::Consent),
            "refuse" => Some(Change::Refuse),
            "withdraw" => Some(Change::Withdraw),
            "object" => Some(Change::Object),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Change::Consent => "consent",
            Change::Refuse => "refuse",
            Change::Withdraw => "withdraw",
            Change::Object => "object",
        }
    }
}

/// Where the contact stands on one purpose, as their page shows it.
#[derive(Debug, Clone)]
pub struct Standing {
    pub purpose: String,
    /// The purpose as the contact reads it.
    pub name: String,
    pub state: State,
    /// The contact refused, withdrew or objected (klar does not ask them
    /// again).
    pub said_no: bool,
    /// The basis other than consent the case stands on, if it does.
    pub basis: Option<crate::plugin::BasisKind>,
    /// When they consented, for a consent.
    pub consented_at: Option<i64>,
    /// What they may do now, in the order the page offers it.
    pub offers: Vec<Change>,
    /// The text they would consent to, where consent is offered.
    pub text: Option<ConsentText>,
}

/// The contact's page.
#[derive(Debug, Clone)]
pub struct Overview {
    pub link: PersonalLink,
    pub tenant: tenants::Tenant,
    /// The contact's own language (their page's, unless the browser asks).
    pub language: &'static str,
    pub standings: Vec<Standing>,
}

#[derive(Debug, thiserror::Error)]
pub enum PersonalError {
    /// Unknown, or the contact was erased; says nothing about anyone.
    #[error(transparent)]
    Token(#[from] TokenError),
    /// The page the contact answered on no longer fits (another answer came
    /// in, the text changed): they see the page again.
    #[error("the page is out of date: {0}")]
    Stale(String),
    #[error("the change was not accepted: {0}")]
    Rejected(String),
    #[error(transparent)]
    Event(EventError),
    #[error(transparent)]
    Session(#[from] SessionError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<TokenLookupError> for PersonalError {
    fn from(err: TokenLookupError) -> Self {
        match err {
            TokenLookupError::Token(t) => PersonalError::Token(t),
            TokenLookupError::Sql(e) => PersonalError::Store(e.into()),
        }
    }
}

impl From<crate::store::Error> for PersonalError {
    fn from(err: crate::store::Error) -> Self {
        PersonalError::Store(err.into())
    }
}

/// What the contact may do about a case; nothing about a purged one.
fn offers(case: &Case) -> Vec<Change> {
    match case.state {
        State::Purged => Vec::new(),
        State::Consented => vec![Change::Withdraw],
        // Another basis: the contact may object at any time (Art. 21 GDPR,
        // § 7(3) no. 3 UWG); on a contract, the owner checks it.
        State::OtherBasis => vec![Change::Object],
        _ if said_no(case) => vec![Change::Consent],
        _ => vec![Change::Consent, Change::Refuse],
    }
}

/// The text a contact consents to for a purpose now: the current version in
/// their language (klar's standard text, written as version 1, if the
/// tenant has none yet).
fn text_now(
    tx: &Tx<'_>,
    tenant: &str,
    purpose: &str,
    contact_language: &str,
    now: i64,
) -> Result<ConsentText, crate::store::Error> {
    let language = texts::language_of(tx, tenant, purpose, contact_language)?;
    texts::current_or_standard(tx, tenant, purpose, &language, now)
}

/// The contact's page behind `secret`, with the purposes named in `lang`
/// (their own language if `None`).
pub fn overview(
    store: &mut Store,
    secret: &str,
    lang: Option<&'static str>,
    now: i64,
) -> Result<Overview, PersonalError> {
    let link = tokens::personal(store.connection(), secret)?;
    let tenant = tenants::require(store.connection(), &link.tenant)
        .map_err(|_| PersonalError::Token(TokenError::Unknown))?;
    store.transaction(|tx| {
        let Some((contact, erased_at, _)) =
            contacts::get_with_state(tx, &tenant.id, &link.contact)?
        else {
            return Err(TokenError::Unknown.into());
        };
        if erased_at.is_some() {
            return Err(TokenError::Unknown.into());
        }
        let language = lang.unwrap_or_else(|| texts::language_for(&contact.language));
        let purposes = tenants::purposes(tx, &tenant.id)?;
        let mut standings = Vec::new();
        for case in cases::of_contact(tx, &tenant.id, &contact.id)? {
            let offers = offers(&case);
            if offers.is_empty() {
                continue;
            }
            let text = if offers.contains(&Change::Consent) {
                Some(text_now(
                    tx,
                    &tenant.id,
                    &case.purpose,
                    &contact.language,
                    now,
                )?)
            } else {
                None
            };
            let name = purposes
                .iter()
                .find(|(id, _)| id == &case.purpose)
                .map_or_else(
                    || case.purpose.clone(),
                    |(id, d)| tenants::purpose_in(id, d, language),
                );
            standings.push(Standing {
                name,
                said_no: said_no(&case),
                basis: (case.state == State::OtherBasis)
                    .then(|| case.basis.as_ref().map(|b| b.kind))
                    .flatten(),
                state: case.state,
                consented_at: (case.state == State::Consented)
                    .then(|| case.consented_at.map(|t| t.timestamp()))
                    .flatten(),
                offers,
                text,
                purpose: case.purpose,
            });
        }
        if standings.is_empty() {
            return Err(TokenError::Unknown.into());
        }
        Ok(Overview {
            link: link.clone(),
            tenant: tenant.clone(),
            language,
            standings,
        })
    })
}

/// What a change did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Changed {
    pub tenant: String,
    pub contact: String,
    pub purpose: String,
    pub change: Change,
    pub state: State,
    /// The text consented to, for a consent.
    pub text_version: Option<i64>,
    pub text_sha256: Option<String>,
}

/// The contact changes their answer about `purpose` through the personal
/// link `secret`: one step of the case, its evidence, the case's open
/// request links closed, and a confirmation queued, in one transaction. A
/// consent names the text version the page showed, which must still be the
/// current one.
pub fn change(
    store: &mut Store,
    sessions: &Sessions,
    secret: &str,
    (purpose, change): (&str, Change),
    shown_version: Option<i64>,
    origin: &Origin,
    now: DateTime<Utc>,
) -> Result<Changed, PersonalError> {
    let link = tokens::personal(store.connection(), secret)?;
    let tenant = tenants::require(store.connection(), &link.tenant)
        .map_err(|_| PersonalError::Token(TokenError::Unknown))?;
    let open = sessions.get(store, &tenant)?;
    let mut session = open.lock();
    let at = now.timestamp();
    let actor = json!({ "via": "personal-link", "link": link.id });
    store
        .write(|tx| {
            let Some(case) = cases::get(tx, &tenant.id, &link.contact, purpose)? else {
                return Err(PersonalError::Stale(format!(
                    "the contact has no case for {purpose}"
                )));
            };
            if !offers(&case).contains(&change) {
                return Err(PersonalError::Stale(format!(
                    "{} is not possible while the case is {}",
                    change.as_str(),
                    case.state
                )));
            }
            let Some((contact, _, _)) = contacts::get_with_state(tx, &tenant.id, &link.contact)?
            else {
                return Err(TokenError::Unknown.into());
            };
            let text = match change {
                Change::Consent => {
                    let text = text_now(tx, &tenant.id, purpose, &contact.language, at)?;
                    if shown_version != Some(text.version) {
                        return Err(PersonalError::Stale(format!(
                            "the text changed to version {} since the page was shown",
                            text.version
                        )));
                    }
                    Some(text)
                }
                _ => None,
            };
            let user_agent = origin
                .user_agent
                .as_deref()
                .map(super::respond::cut_user_agent);
            let (event, kind, detail) = match change {
                Change::Consent => (
                    Event::Consent,
                    "consent",
                    json!({
                        "initiative": "own",
                        "channel": "personal-link",
                        "link_id": link.id,
                        "text_version": text.as_ref().map(|t| t.version),
                        "text_sha256": text.as_ref().map(|t| t.sha256.clone()),
                        "language": text.as_ref().map(|t| t.language.clone()),
                        "ip": origin.ip.map(|ip| ip.to_string()),
                        "user_agent": user_agent,
                    }),
                ),
                Change::Refuse => (
                    Event::Response {
                        answer: Answer::Refuse,
                    },
                    "response",
                    json!({
                        "answer": Answer::Refuse,
                        "channel": "personal-link",
                        "link_id": link.id,
                        "ip": origin.ip.map(|ip| ip.to_string()),
                        "user_agent": user_agent,
                    }),
                ),
                Change::Withdraw => (
                    Event::Withdraw,
                    "withdrawal",
                    json!({
                        "channel": "personal-link",
                        "link_id": link.id,
                        "ip": origin.ip.map(|ip| ip.to_string()),
                        "user_agent": user_agent,
                    }),
                ),
                Change::Object => (
                    Event::Object,
                    "objection",
                    json!({
                        "channel": "personal-link",
                        "link_id": link.id,
                        "basis": case.basis.as_ref().map(|b| b.kind),
                        "ip": origin.ip.map(|ip| ip.to_string()),
                        "user_agent": user_agent,
                    }),
                ),
            };
            let stepped = engine::step_in(
                tx,
                &mut session,
                (&tenant, &open.sha256),
                (&link.contact, purpose),
                &event,
                (now, Some(&actor)),
                |tx, _| {
                    evidence::add(tx, &tenant.id, &link.contact, purpose, kind, at, &detail)?;
                    // Whatever request was still open about it is answered now.
                    tokens::close_for_case(tx, &tenant.id, &link.contact, purpose, at)?;
                    confirm(
                        tx,
                        (&tenant.id, &link.contact),
                        &[Confirmed {
                            purpose,
                            answer: change.as_str(),
                            text_version: text.as_ref().map(|t| t.version),
                        }],
                        secret,
                        at,
                    )?;
                    Ok(())
                },
            );
            match stepped {
                Ok(Stepped::Done(outcome)) => Ok(Ok(Changed {
                    tenant: tenant.id.clone(),
                    contact: link.contact.clone(),
                    purpose: purpose.to_owned(),
                    change,
                    state: outcome.case.state,
                    text_version: text.as_ref().map(|t| t.version),
                    text_sha256: text.as_ref().map(|t| t.sha256.clone()),
                })),
                // The case is marked for attention; the mark is committed.
                Ok(Stepped::Failed(why)) => Ok(Err(why)),
                Err(EventError::Rejected(why)) => Err(PersonalError::Rejected(why)),
                Err(err) => Err(PersonalError::Event(err)),
            }
        })?
        .map_err(|why| PersonalError::Event(EventError::Failed(why)))
}

/// One answer a confirmation names.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Confirmed<'a> {
    pub purpose: &'a str,
    /// `accept` or `refuse` (to a request), `consent`, `refuse`,
    /// `withdraw` or `object` (through the personal link).
    pub answer: &'a str,
    pub text_version: Option<i64>,
}

/// Queues the confirmation of the contact's answers: a `send-confirmation`
/// action carrying their personal link (`secret`, the link they answered
/// through), by e-mail when the contact has an address (klar's mailer sends
/// those for tenants it mails for), else as a letter for the CRM. Nothing
/// for a person an answer erased at once: nobody is left to confirm to.
pub(crate) fn confirm(
    tx: &Tx<'_>,
    (tenant, contact): (&str, &str),
    answers: &[Confirmed<'_>],
    secret: &str,
    now: i64,
) -> Result<(), StoreError> {
    let Some((person, None, _)) = contacts::get_with_state(tx, tenant, contact)? else {
        return Ok(());
    };
    let Some(first) = answers.first() else {
        return Ok(());
    };
    let has_address = person
        .email
        .as_deref()
        .is_some_and(|e| !e.trim().is_empty());
    let payload = json!({
        "channel": if has_address { "email" } else { "letter" },
        "template": "confirmation",
        "language": texts::language_for(&person.language),
        "purposes": answers
            .iter()
            .map(|a| json!({
                "purpose": a.purpose,
                "answer": a.answer,
                "text_version": a.text_version,
            }))
            .collect::<Vec<_>>(),
        "personal_token": secret.trim(),
    });
    // The answer's audit row is the last one written: its seq names the
    // confirmation as a step's seq names its actions.
    let seq = crate::store::audit::head(tx, tenant)?.map_or(0, |(seq, _)| seq);
    outbox::insert(
        tx,
        tenant,
        &format!("{tenant}-{seq}-confirmation"),
        (contact, first.purpose),
        "send-confirmation",
        &payload,
        now,
    )?;
    Ok(())
}
