//! A contact's answer through their personal link: `klar respond` and the
//! response page of `klar serve`. One link may ask about several purposes
//! (one message per contact); the contact answers each purpose, or all of
//! them at once. Each answer is stepped through the tenant's policy like any
//! event; its evidence (time, channel, token id, the consent text's version
//! and SHA-256, IP, user agent) and the closing of the case's links are
//! written in the same transaction as its step.

use std::net::IpAddr;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::personal::{Confirmed, confirm as confirm_answers};
use crate::engine::Sessions;
use crate::engine::{self, EventError, SessionError};
use crate::plugin::{Answer, Event, State};
use crate::store::tokens::{self, TokenError, TokenLookupError};
use crate::store::{Store, StoreError, evidence, tenants, texts};

/// User agents longer than this are cut; they are evidence, not payload.
const MAX_USER_AGENT: usize = 512;

/// Where an answer came from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Origin {
    pub ip: Option<IpAddr>,
    pub user_agent: Option<String>,
}

/// What an answer did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Recorded {
    pub tenant: String,
    pub contact: String,
    pub purpose: String,
    pub state: State,
    pub token_id: String,
    pub text_version: i64,
    pub text_sha256: String,
}

#[derive(Debug, thiserror::Error)]
pub enum RespondError {
    /// Unknown, used or expired; says nothing about any contact.
    #[error(transparent)]
    Token(#[from] TokenError),
    /// The case cannot take an answer any more (e.g. it was purged).
    #[error("the answer was not accepted: {0}")]
    Rejected(String),
    #[error(transparent)]
    Event(EventError),
    #[error(transparent)]
    Session(#[from] SessionError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<TokenLookupError> for RespondError {
    fn from(err: TokenLookupError) -> Self {
        match err {
            TokenLookupError::Token(t) => RespondError::Token(t),
            TokenLookupError::Sql(e) => RespondError::Store(e.into()),
        }
    }
}

/// What a form or command answered: each purpose's answer, and the
/// contact's personal link for the confirmation page, where they can change
/// their answers later: the same secret, under `/p/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Responded {
    pub recorded: Vec<Recorded>,
    pub personal: String,
}

/// A user agent as evidence keeps it.
pub(crate) fn cut_user_agent(ua: &str) -> String {
    ua.chars().take(MAX_USER_AGENT).collect()
}

/// What the contact answered through one link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Choice {
    /// The same answer for every purpose the link still asks about.
    All(Answer),
    /// An answer per purpose; purposes left out stay open.
    Each(Vec<(String, Answer)>),
}

/// Records `answer` for every purpose the link `secret` still asks about.
pub fn respond(
    store: &mut Store,
    sessions: &Sessions,
    secret: &str,
    answer: Answer,
    origin: &Origin,
    now: DateTime<Utc>,
) -> Result<Responded, RespondError> {
    respond_to(store, sessions, secret, &Choice::All(answer), origin, now)
}

/// Records the contact's choice for the purposes behind the link `secret`,
/// one step and one piece of evidence per purpose, in the order of the
/// purposes. A purpose the link does not ask about (any more) is refused
/// before anything is written.
pub fn respond_to(
    store: &mut Store,
    sessions: &Sessions,
    secret: &str,
    choice: &Choice,
    origin: &Origin,
    now: DateTime<Utc>,
) -> Result<Responded, RespondError> {
    let open = tokens::redeemable(store.connection(), secret, now.timestamp())?;
    let answers: Vec<(tokens::Token, Answer)> = match choice {
        Choice::All(answer) => open.into_iter().map(|t| (t, *answer)).collect(),
        Choice::Each(list) => {
            let mut out = Vec::with_capacity(list.len());
            for (purpose, answer) in list {
                let Some(token) = open.iter().find(|t| &t.purpose == purpose) else {
                    return Err(RespondError::Rejected(format!(
                        "this link does not ask about {purpose} (any more)"
                    )));
                };
                out.push((token.clone(), *answer));
            }
            if out.is_empty() {
                return Err(RespondError::Rejected("no answer was given".to_owned()));
            }
            out
        }
    };
    let Some((first, _)) = answers.first() else {
        return Err(TokenError::Used.into());
    };
    let tenant = tenants::require(store.connection(), &first.tenant)
        .map_err(|e| RespondError::Rejected(e.to_string()))?;
    let open = sessions.get(store, &tenant)?;
    let mut session = open.lock();
    let policy_sha256 = open.sha256.as_str();
    // The last answer's transaction also queues the confirmation of them
    // all, with the contact's personal link.
    let confirmed: Vec<(String, Answer, i64)> = answers
        .iter()
        .map(|(t, a)| (t.purpose.clone(), *a, t.text_version))
        .collect();
    let mut recorded = Vec::with_capacity(answers.len());
    let last = answers.len().saturating_sub(1);
    for (i, (token, answer)) in answers.into_iter().enumerate() {
        let confirm = (i == last).then_some((confirmed.as_slice(), secret));
        recorded.push(record(
            store,
            &mut session,
            (&tenant, policy_sha256),
            (token, answer),
            (origin, confirm),
            now,
        )?);
    }
    Ok(Responded {
        recorded,
        personal: secret.trim().to_owned(),
    })
}

/// What the last answer of a form confirms (every purpose answered, with
/// its text version), and the link it came through (the personal link the
/// confirmation carries).
type Confirm<'a> = Option<(&'a [(String, Answer, i64)], &'a str)>;

fn answer_word(answer: Answer) -> &'static str {
    match answer {
        Answer::Accept => "accept",
        Answer::Refuse => "refuse",
    }
}

/// One purpose's answer: its step, its evidence, its links closed.
fn record(
    store: &mut Store,
    session: &mut crate::runtime::Session,
    (tenant, policy_sha256): (&tenants::Tenant, &str),
    (token, answer): (tokens::Token, Answer),
    (origin, confirm): (&Origin, Confirm<'_>),
    now: DateTime<Utc>,
) -> Result<Recorded, RespondError> {
    let at = now.timestamp();
    let text = texts::get(
        store.connection(),
        &tenant.id,
        &token.purpose,
        token.text_version,
        &token.language,
    )
    .map_err(StoreError::from)?;
    let text_sha256 = text.map(|t| t.sha256).unwrap_or_default();
    let user_agent = origin.user_agent.as_deref().map(cut_user_agent);
    let detail = serde_json::json!({
        "answer": answer,
        "channel": token.channel,
        "token_id": token.id,
        "message": token.message,
        "attempt": token.attempt,
        "text_version": token.text_version,
        "text_sha256": text_sha256,
        "language": token.language,
        "ip": origin.ip.map(|ip| ip.to_string()),
        "user_agent": user_agent,
    });
    let outcome = engine::step_event_then(
        store,
        session,
        tenant,
        policy_sha256,
        (&token.contact, &token.purpose),
        Event::Response { answer },
        now,
        |tx, _| {
            evidence::add(
                tx,
                &token.tenant,
                &token.contact,
                &token.purpose,
                "response",
                at,
                &detail,
            )?;
            tokens::close_case(tx, &token, at)?;
            tokens::answered(tx, &token, answer_word(answer))?;
            if let Some((answers, secret)) = confirm {
                let answers: Vec<Confirmed<'_>> = answers
                    .iter()
                    .map(|(purpose, answer, version)| Confirmed {
                        purpose,
                        answer: answer_word(*answer),
                        text_version: Some(*version),
                    })
                    .collect();
                confirm_answers(tx, (&token.tenant, &token.contact), &answers, secret, at)?;
            }
            Ok(())
        },
    )
    .map_err(|err| match err {
        EventError::Rejected(why) => RespondError::Rejected(why),
        other => RespondError::Event(other),
    })?;
    Ok(Recorded {
        tenant: token.tenant,
        contact: token.contact,
        purpose: token.purpose,
        state: outcome.case.state,
        token_id: token.id,
        text_version: token.text_version,
        text_sha256,
    })
}
