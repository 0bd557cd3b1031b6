//! `klar tick`: steps every due case through the plugin and applies the
//! outcomes, each step in its own transaction (case, audit row, outbox rows).
//!
//! Due cases are found through the `cases_due` index, never by scanning every
//! case, and each is stepped at most once per tick. A case whose step fails
//! (policy error, plugin trap, a guardrail) is marked `needs_attention` with
//! the reason and left out of later ticks until a person clears it; the sweep
//! goes on. Ticking twice at the same `now` changes nothing the second time.

use chrono::{DateTime, Offset, TimeZone, Utc};
use rusqlite::{Connection, OptionalExtension, Transaction, params};

use crate::plugin::{Action, Band, Case, Clock, Contact, Event, Outcome, State};
use std::sync::Arc;

use crate::runtime::{LoadedPlugin, Session, StepFailure};
use crate::store::audit::{self, Entry};
use crate::store::contacts::{self, band_name};
use crate::store::tenants::Tenant;
use crate::store::{Store, StoreError};
use crate::store::{evidence, tenants, texts, tokens};

/// What one tick did for one tenant.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct TickReport {
    pub due: usize,
    pub changed: usize,
    pub failed: usize,
    pub actions: usize,
}

/// The tenant's clock at `now`: its UTC offset decides the local calendar day.
pub fn clock(tenant: &Tenant, now: DateTime<Utc>) -> Clock {
    let offset = tenant
        .timezone
        .offset_from_utc_datetime(&now.naive_utc())
        .fix()
        .local_minus_utc();
    Clock {
        now,
        utc_offset_minutes: offset / 60,
    }
}

/// The due cases of a tenant, oldest deadline first, as row ids: 8 bytes a
/// case, so a sweep of millions stays small in memory.
fn due_rows(conn: &Connection, tenant: &str, now: i64) -> rusqlite::Result<Vec<i64>> {
    let mut stmt = conn.prepare(
        "SELECT rowid FROM cases INDEXED BY cases_due
         WHERE tenant = ?1 AND due_at IS NOT NULL AND due_at <= ?2 AND needs_attention IS NULL
         ORDER BY due_at, contact, purpose",
    )?;
    let rows = stmt.query_map(params![tenant, now], |r| r.get(0))?;
    rows.collect()
}

/// A due case and its contact; none if it is no longer due (a person acted
/// on it meanwhile) or its contact is gone.
fn load_due(
    conn: &Connection,
    rowid: i64,
    now: i64,
) -> Result<Option<(Case, Contact)>, StoreError> {
    // "Still due?" is checked here and not in SQL: a bound value compared with
    // a column of the partial index `cases_due` makes SQLite re-plan the
    // statement on every call.
    let row = conn
        .prepare_cached(&format!(
            "SELECT c.body, c.due_at, c.needs_attention IS NULL, {} FROM cases c
             JOIN contacts k ON k.tenant = c.tenant AND k.id = c.contact
             WHERE c.rowid = ?1",
            contacts::COLUMNS
        ))?
        .query_row([rowid], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, Option<i64>>(1)?,
                r.get::<_, bool>(2)?,
                contacts::read(r, 3)?,
            ))
        })
        .optional()?;
    match row {
        Some((body, Some(due), true, contact)) if due <= now => {
            Ok(Some((parse_case(&body)?, contact)))
        }
        _ => Ok(None),
    }
}

fn parse_case(body: &str) -> Result<Case, StoreError> {
    serde_json::from_str(body).map_err(|e| {
        StoreError::Sql(rusqlite::Error::FromSqlConversionFailure(
            0,
            rusqlite::types::Type::Text,
            Box::new(e),
        ))
    })
}

fn load_case(
    conn: &Connection,
    tenant: &str,
    contact: &str,
    purpose: &str,
) -> Result<Case, StoreError> {
    let body: String = conn
        .prepare_cached(
            "SELECT body FROM cases WHERE tenant = ?1 AND contact = ?2 AND purpose = ?3",
        )?
        .query_row(params![tenant, contact, purpose], |r| r.get(0))?;
    parse_case(&body)
}

/// Steps every due case of `tenant` in batches of `batch`.
pub fn tick(
    store: &mut Store,
    session: &mut Session,
    tenant: &Tenant,
    policy_sha256: &str,
    now: DateTime<Utc>,
    batch: usize,
) -> Result<TickReport, StoreError> {
    let clock = clock(tenant, now);
    store.transaction(|tx| expire_evidence(tx, &tenant.id, now.timestamp()))?;
    let rows = due_rows(store.connection(), &tenant.id, now.timestamp())?;
    let mut report = TickReport {
        due: rows.len(),
        ..TickReport::default()
    };
    for chunk in rows.chunks(batch.max(1)) {
        let mut inputs = Vec::with_capacity(chunk.len());
        for &rowid in chunk {
            if let Some((case, contact)) = load_due(store.connection(), rowid, now.timestamp())? {
                inputs.push((case, contact, Event::Tick));
            }
        }
        let results = session.step_batch(&inputs, &clock);
        // One transaction per batch: each step's writes land together with
        // the others of its batch or not at all, and the batch pays for one
        // commit instead of hundreds.
        let applied = store.transaction(|tx| {
            inputs
                .iter()
                .zip(results)
                .map(|((case, contact, event), result)| {
                    apply(
                        tx,
                        &tenant.id,
                        &contact.id,
                        case,
                        event,
                        result,
                        policy_sha256,
                        now.timestamp(),
                    )
                })
                .collect::<Result<Vec<Applied>, StoreError>>()
        })?;
        for applied in applied {
            match applied {
                Applied::Changed { actions } => {
                    report.changed += 1;
                    report.actions += actions;
                }
                Applied::Unchanged => {}
                Applied::Failed => report.failed += 1,
            }
        }
    }
    Ok(report)
}

/// Why a sweep over all tenants stopped.
#[derive(Debug, thiserror::Error)]
pub enum TickAllError {
    #[error(transparent)]
    Session(#[from] SessionError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Tenant(#[from] tenants::TenantError),
}

/// Ticks every tenant on its active policy; what each tick did, per tenant.
pub fn tick_all(
    store: &mut Store,
    plugin: &Arc<LoadedPlugin>,
    now: DateTime<Utc>,
    batch: usize,
) -> Result<Vec<(String, TickReport)>, TickAllError> {
    let mut reports = Vec::new();
    for tenant in tenants::list(store.connection())? {
        let (mut session, sha256) = tenant_session(store, plugin, &tenant)?;
        let report = tick(store, &mut session, &tenant, &sha256, now, batch)?;
        reports.push((tenant.id, report));
    }
    Ok(reports)
}

/// The tenant's active policy (or the built-in default) could not be opened.
#[derive(Debug, thiserror::Error)]
#[error("{tenant}: failed to open {policy}: {message}")]
pub struct SessionError {
    pub tenant: String,
    pub policy: String,
    pub message: String,
}

/// The tenant's active policy (or the built-in default) opened in the plugin,
/// with the policy's sha256 for the audit rows.
pub fn tenant_session(
    store: &Store,
    plugin: &Arc<LoadedPlugin>,
    tenant: &Tenant,
) -> Result<(Session, String), SessionError> {
    let active =
        tenants::active_policy(store.connection(), &tenant.id).map_err(|e| SessionError {
            tenant: tenant.id.clone(),
            policy: "its active policy".to_owned(),
            message: e.to_string(),
        })?;
    let (name, source, sha256) = match active {
        Some(v) => (
            format!("{} policy v{}", tenant.id, v.version),
            v.source,
            v.sha256,
        ),
        None => {
            let source = crate::DEFAULT_POLICY.to_owned();
            let sha = crate::sha256_hex(source.as_bytes());
            ("built-in default policy".to_owned(), source, sha)
        }
    };
    let session = plugin.open(&name, &source).map_err(|e| SessionError {
        tenant: tenant.id.clone(),
        policy: name.clone(),
        message: e.to_string(),
    })?;
    Ok((session, sha256))
}

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
        let error: Option<String> = tx
            .prepare_cached("SELECT needs_attention FROM cases WHERE tenant = ?1 AND contact = ?2 AND purpose = ?3")?
        .query_row(params![tenant, contact, purpose],
                |r| r.get(0),
            )
            .optional()?
            .flatten();
        let Some(error) = error else {
            return Ok(false);
        };
        tx.prepare_cached("UPDATE cases SET needs_attention = NULL, updated_at = ?4
             WHERE tenant = ?1 AND contact = ?2 AND purpose = ?3")?
        .execute(params![tenant, contact, purpose, now],
        )?;
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

/// Deletes evidence whose retention ended, with an audit row per contact.
fn expire_evidence(tx: &Transaction<'_>, tenant: &str, now: i64) -> Result<(), StoreError> {
    for (contact, records) in evidence::expire(tx, tenant, now)? {
        audit::append(
            tx,
            tenant,
            Entry {
                at: now,
                contact: Some(contact),
                purpose: None,
                kind: "evidence-expired".to_owned(),
                detail: serde_json::json!({ "deleted_records": records }).to_string(),
                policy_sha256: None,
            },
        )?;
    }
    Ok(())
}

/// Why an event for one case was not applied.
#[derive(Debug, thiserror::Error)]
pub enum EventError {
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
    then: impl FnOnce(&Transaction<'_>, &Outcome) -> Result<(), StoreError>,
) -> Result<Outcome, EventError> {
    let no_case = || EventError::NoCase {
        contact: contact_id.to_owned(),
        purpose: purpose.to_owned(),
    };
    let Some(contact) =
        contacts::get(store.connection(), &tenant.id, contact_id).map_err(StoreError::from)?
    else {
        return Err(no_case());
    };
    let case = match load_case(store.connection(), &tenant.id, contact_id, purpose) {
        Ok(case) => case,
        Err(StoreError::Sql(rusqlite::Error::QueryReturnedNoRows)) => return Err(no_case()),
        Err(err) => return Err(err.into()),
    };
    let result = session.step(&case, &contact, &event, &clock(tenant, now));
    if let Err(StepFailure::Step(crate::plugin::StepError::Rejected { reason })) = &result {
        return Err(EventError::Rejected(reason.clone()));
    }
    let outcome = result.as_ref().ok().cloned();
    let applied = store.transaction(|tx| {
        let applied = apply(
            tx,
            &tenant.id,
            contact_id,
            &case,
            &event,
            result,
            policy_sha256,
            now.timestamp(),
        )?;
        if let (Some(outcome), false) = (&outcome, applied == Applied::Failed) {
            then(tx, outcome)?;
        }
        Ok::<_, StoreError>(applied)
    })?;
    match (applied, outcome) {
        (Applied::Failed, _) | (_, None) => {
            let why: Option<String> = store
                .connection()
                .query_row(
                    "SELECT needs_attention FROM cases WHERE tenant = ?1 AND contact = ?2 AND purpose = ?3",
                    params![tenant.id, contact_id, purpose],
                    |r| r.get(0),
                )
                .map_err(StoreError::from)?;
            Err(EventError::Failed(why.unwrap_or_default()))
        }
        (_, Some(outcome)) => Ok(outcome),
    }
}

/// What applying one step did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    Changed { actions: usize },
    Unchanged,
    Failed,
}

/// The host's guardrails: rules no plugin or policy can override. Returns why
/// an outcome must not be applied, if it must not.
pub fn guardrail(before: &Case, outcome: &Outcome, now: i64) -> Option<String> {
    if before.state == State::Purged && outcome.case != *before {
        return Some("purged is final; the plugin tried to change a purged case".to_owned());
    }
    for action in &outcome.actions {
        match action {
            Action::SendRequest { .. }
                if matches!(
                    before.state,
                    State::Refused | State::Withdrawn | State::CleanupPending | State::Purged
                ) || outcome.case.state.band() == Band::Removed =>
            {
                return Some(format!(
                    "the plugin asked to contact someone whose case is {}; klar never does",
                    before.state
                ));
            }
            Action::Cleanup { .. } => {
                if before.legal_hold || outcome.case.legal_hold {
                    return Some("the case is on legal hold; no cleanup".to_owned());
                }
                match &before.cleanup {
                    Some(plan) if plan.not_before.timestamp() <= now => {}
                    Some(plan) => {
                        return Some(format!(
                            "cleanup before the grace period ends ({}) is refused",
                            plan.not_before.to_rfc3339()
                        ));
                    }
                    None => {
                        return Some(
                            "cleanup without a pending cleanup plan is refused".to_owned(),
                        );
                    }
                }
            }
            _ => {}
        }
    }
    None
}

#[allow(clippy::too_many_arguments)] // The step's whole context.
fn apply(
    tx: &Transaction<'_>,
    tenant: &str,
    contact: &str,
    before: &Case,
    event: &Event,
    result: Result<Outcome, StepFailure>,
    policy_sha256: &str,
    now: i64,
) -> Result<Applied, StoreError> {
    let failure = match &result {
        Ok(outcome) => guardrail(before, outcome, now).map(|why| format!("guardrail: {why}")),
        Err(err) => Some(err.to_string()),
    };
    if let Some(why) = failure {
        tx.prepare_cached("UPDATE cases SET needs_attention = ?4 WHERE tenant = ?1 AND contact = ?2 AND purpose = ?3")?
        .execute(params![tenant, contact, before.purpose, why],
        )?;
        audit::append(
            tx,
            tenant,
            Entry {
                at: now,
                contact: Some(contact.to_owned()),
                purpose: Some(before.purpose.clone()),
                kind: "step-failed".to_owned(),
                detail: serde_json::json!({ "event": event, "error": why }).to_string(),
                policy_sha256: Some(policy_sha256.to_owned()),
            },
        )?;
        return Ok(Applied::Failed);
    }
    let Ok(outcome) = result else {
        return Ok(Applied::Failed);
    };
    if outcome.case == *before && outcome.actions.is_empty() {
        return Ok(Applied::Unchanged);
    }
    let case = &outcome.case;
    tx.prepare_cached("UPDATE cases SET state = ?4, band = ?5, body = ?6, due_at = ?7, updated_at = ?8, needs_attention = NULL
         WHERE tenant = ?1 AND contact = ?2 AND purpose = ?3")?
        .execute(params![
            tenant,
            contact,
            case.purpose,
            case.state.as_str(),
            band_name(case.state.band()),
            serde_json::to_string(case).unwrap_or_default(),
            case.due_at.map(|t| t.timestamp()),
            now
        ],
    )?;
    let row = audit::append(
        tx,
        tenant,
        Entry {
            at: now,
            contact: Some(contact.to_owned()),
            purpose: Some(case.purpose.clone()),
            kind: if case.state != before.state {
                "state-change".to_owned()
            } else {
                "step".to_owned()
            },
            detail: serde_json::json!({
                "event": event,
                "from": before.state,
                "to": case.state,
                "actions": outcome.actions,
                "trace": outcome.trace,
            })
            .to_string(),
            policy_sha256: Some(policy_sha256.to_owned()),
        },
    )?;
    for (i, action) in outcome.actions.iter().enumerate() {
        let kind = serde_json::to_value(action)
            .ok()
            .and_then(|v| v.get("type").and_then(|t| t.as_str()).map(str::to_owned))
            .unwrap_or_default();
        // Stable: the same audit row and position always give the same id, so
        // a CRM can de-duplicate deliveries.
        let id = format!("{tenant}-{}-{i}", row.seq);
        let mut payload = serde_json::to_value(action).unwrap_or_default();
        if let Action::SendRequest {
            channel,
            attempt,
            link_expires_at,
            ..
        } = action
        {
            let request = Request {
                channel,
                attempt: *attempt,
                expires_at: link_expires_at.timestamp(),
            };
            let link = request_sent(tx, tenant, contact, &case.purpose, &request, now)?;
            if let Some(object) = payload.as_object_mut() {
                object.extend(link);
            }
        }
        tx.prepare_cached("INSERT INTO outbox (id, tenant, seq, contact, purpose, kind, payload, created_at)
             VALUES (?1, ?2, (SELECT COALESCE(MAX(seq), 0) + 1 FROM outbox WHERE tenant = ?2), ?3, ?4, ?5, ?6, ?7)")?
        .execute(params![
                id,
                tenant,
                contact,
                case.purpose,
                kind,
                payload.to_string(),
                now
            ],
        )?;
    }
    for action in &outcome.actions {
        if let Action::Cleanup {
            mode,
            keep_evidence_until,
        } = action
        {
            // The case's evidence is kept as long as its policy says.
            evidence::start_retention(
                tx,
                tenant,
                (contact, &case.purpose),
                keep_evidence_until.timestamp(),
            )?;
            // Only the purge of `contact-data` erases the person; purging another
            // purpose (say, the newsletter) ends just that use.
            if case.purpose == crate::store::tenants::DEFAULT_PURPOSE {
                contacts::erase(tx, tenant, contact, *mode, now)?;
            }
        }
    }
    Ok(Applied::Changed {
        actions: outcome.actions.len(),
    })
}

/// A request goes out: a fresh response link bound to this case, and evidence
/// of what was sent. Returns what the outbox action carries for the sender:
/// the link's secret, its id, and the consent text's version.
struct Request<'a> {
    channel: &'a str,
    attempt: u32,
    /// When the link stops working (the policy's `link_valid_days`).
    expires_at: i64,
}

fn request_sent(
    tx: &Transaction<'_>,
    tenant: &str,
    contact: &str,
    purpose: &str,
    request: &Request<'_>,
    now: i64,
) -> Result<serde_json::Map<String, serde_json::Value>, StoreError> {
    let Request {
        channel,
        attempt,
        expires_at,
    } = *request;
    let language: String = tx
        .prepare_cached("SELECT language FROM contacts WHERE tenant = ?1 AND id = ?2")?
        .query_row(params![tenant, contact], |r| r.get(0))?;
    let language = texts::language_for(&language);
    let text = texts::current_or_standard(tx, tenant, purpose, language, now)?;
    let (secret, token) = tokens::issue(
        tx,
        tokens::Token {
            id: String::new(),
            tenant: tenant.to_owned(),
            contact: contact.to_owned(),
            purpose: purpose.to_owned(),
            attempt: i64::from(attempt),
            channel: channel.to_owned(),
            text_version: text.version,
            language: language.to_owned(),
            created_at: now,
            // Never in the past, whatever a (hostile) plugin returns.
            expires_at: expires_at.max(now + 3_600),
            used_at: None,
        },
    )?;
    evidence::add(
        tx,
        tenant,
        contact,
        purpose,
        "request",
        now,
        &serde_json::json!({
            "channel": channel,
            "attempt": attempt,
            "token_id": token.id,
            "text_version": text.version,
            "text_sha256": text.sha256,
            "language": language,
            "link_expires_at": token.expires_at,
        }),
    )?;
    let mut link = serde_json::Map::new();
    link.insert("token".into(), secret.into());
    link.insert("token_id".into(), token.id.into());
    link.insert("language".into(), language.into());
    link.insert("text_version".into(), text.version.into());
    link.insert("link_expires_at".into(), token.expires_at.into());
    Ok(link)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin::CleanupMode;
    use chrono::Duration;

    fn t(days: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_764_500_000, 0).unwrap_or_default() + Duration::days(days)
    }

    fn outcome(case: Case, actions: Vec<Action>) -> Outcome {
        Outcome {
            case,
            actions,
            trace: Vec::new(),
        }
    }

    #[test]
    fn a_refused_contact_is_never_asked_again() {
        let mut before = Case::new("contact-data");
        before.state = State::Refused;
        let mut after = before.clone();
        after.state = State::Requested;
        let send = Action::SendRequest {
            channel: "email".into(),
            template: "request".into(),
            attempt: 1,
            link_expires_at: t(180),
        };
        assert!(guardrail(&before, &outcome(after, vec![send]), 0).is_some());
    }

    #[test]
    fn no_cleanup_on_hold_or_before_the_grace_period_ends() {
        let mut before = Case::new("contact-data");
        before.state = State::CleanupPending;
        before.cleanup = Some(crate::plugin::CleanupPlan {
            mode: CleanupMode::Delete,
            not_before: t(10),
            reason: "refusal".into(),
            resume_state: State::Refused,
            resume_due_at: None,
            requested_by: None,
            requires_approval: false,
            approved_by: None,
        });
        let mut after = before.clone();
        after.state = State::Purged;
        let purge = outcome(
            after,
            vec![Action::Cleanup {
                mode: CleanupMode::Delete,
                keep_evidence_until: t(11),
            }],
        );
        let early = guardrail(&before, &purge, t(5).timestamp()).expect("refused");
        assert!(
            early.starts_with("cleanup before the grace period ends"),
            "{early}"
        );
        assert_eq!(guardrail(&before, &purge, t(11).timestamp()), None);
        before.legal_hold = true;
        assert_eq!(
            guardrail(&before, &purge, t(11).timestamp()).as_deref(),
            Some("the case is on legal hold; no cleanup")
        );
    }

    #[test]
    fn purged_is_final() {
        let mut before = Case::new("contact-data");
        before.state = State::Purged;
        let mut after = before.clone();
        after.state = State::Consented;
        assert!(guardrail(&before, &outcome(after, vec![]), 0).is_some());
        assert_eq!(
            guardrail(&before, &outcome(before.clone(), vec![]), 0),
            None
        );
    }
}
