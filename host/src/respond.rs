//! A contact's answer through their personal link: `klar respond` today, the
//! response page of `klar serve` later. The answer is stepped through the
//! tenant's policy like any event; the evidence (time, channel, token id, the
//! consent text's version and SHA-256, IP, user agent) and the closing of the
//! case's links are written in the same transaction as the step.

use std::net::IpAddr;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::plugin::{Answer, Event, State};
use crate::runtime::LoadedPlugin;
use crate::scheduler::{self, EventError, SessionError};
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

/// Records `answer` for the case behind the link `secret`.
pub fn respond(
    store: &mut Store,
    plugin: &Arc<LoadedPlugin>,
    secret: &str,
    answer: Answer,
    origin: &Origin,
    now: DateTime<Utc>,
) -> Result<Recorded, RespondError> {
    let at = now.timestamp();
    let token = tokens::redeemable(store.connection(), secret, at)?;
    let tenant = tenants::require(store.connection(), &token.tenant)
        .map_err(|e| RespondError::Rejected(e.to_string()))?;
    let text = texts::get(
        store.connection(),
        &tenant.id,
        &token.purpose,
        token.text_version,
        &token.language,
    )
    .map_err(StoreError::from)?;
    let text_sha256 = text.map(|t| t.sha256).unwrap_or_default();
    let (mut session, policy_sha256) = scheduler::tenant_session(store, plugin, &tenant)?;
    let user_agent = origin
        .user_agent
        .as_deref()
        .map(|ua| ua.chars().take(MAX_USER_AGENT).collect::<String>());
    let detail = serde_json::json!({
        "answer": answer,
        "channel": token.channel,
        "token_id": token.id,
        "attempt": token.attempt,
        "text_version": token.text_version,
        "text_sha256": text_sha256,
        "language": token.language,
        "ip": origin.ip.map(|ip| ip.to_string()),
        "user_agent": user_agent,
    });
    let outcome = scheduler::step_event_then(
        store,
        &mut session,
        &tenant,
        &policy_sha256,
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
