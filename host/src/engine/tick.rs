//! `klar tick`: steps every due case through the plugin and applies the
//! outcomes, a batch of contacts per transaction.
//!
//! Due cases are found through the `cases_due` index, never by scanning every
//! case, and each is stepped at most once per tick. A case whose step fails
//! (policy error, plugin trap, a guardrail) is marked `needs_attention` with
//! the reason and left out of later ticks until a person clears it; the sweep
//! goes on. Ticking twice at the same `now` changes nothing the second time.

use std::sync::Arc;

use crate::store::Tx;
use chrono::{DateTime, Utc};

use super::apply::{
    Applied, DEFAULT_RETENTION_SECONDS, Step, StepContext, apply_contact, end_every_purpose,
};
use super::clock;
use super::session::{SessionError, tenant_session};
use crate::plugin::Event;
use crate::runtime::{LoadedPlugin, Session};
use crate::store::audit::{self, Entry};
use crate::store::tenants::{self, Tenant};
use crate::store::{Store, StoreError, cases, evidence};

/// What one tick did for one tenant.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct TickReport {
    pub due: usize,
    pub changed: usize,
    pub failed: usize,
    pub actions: usize,
    /// Requests held back because the contact had a message less than a day
    /// before, or another channel's message goes out now.
    pub deferred: usize,
}

/// Steps every due case of `tenant` in batches of about `batch` (a
/// contact's cases are never split across batches).
pub fn tick(
    store: &mut Store,
    session: &mut Session,
    tenant: &Tenant,
    policy_sha256: &str,
    now: DateTime<Utc>,
    batch: usize,
) -> Result<TickReport, StoreError> {
    let clock = clock(tenant, now);
    store.transaction(|tx| {
        expire_evidence(tx, &tenant.id, now.timestamp())?;
        purge_left_after_erasure(tx, tenant, now.timestamp())
    })?;
    let rows = cases::due_rows(store.connection(), &tenant.id, now.timestamp())?;
    let mut report = TickReport {
        due: rows.len(),
        ..TickReport::default()
    };
    let mut start = 0;
    while start < rows.len() {
        // Extend the batch to the end of its last contact's group.
        let mut end = (start + batch.max(1)).min(rows.len());
        while end < rows.len() && !rows[end].1 {
            end += 1;
        }
        let mut inputs = Vec::with_capacity(end - start);
        let mut last_messages = Vec::with_capacity(end - start);
        for &(rowid, _) in &rows[start..end] {
            if let Some((case, contact, last)) =
                cases::load_due(store.connection(), rowid, now.timestamp())?
            {
                inputs.push((case, contact, Event::Tick));
                last_messages.push(last);
            }
        }
        start = end;
        let mut results = session.step_batch(&inputs, &clock).into_iter();
        // One transaction per batch: each step's writes land together with
        // the others of its batch or not at all, and the batch pays for one
        // commit instead of hundreds.
        let applied = store.transaction(|tx| {
            let mut applied = Vec::with_capacity(inputs.len());
            let mut i = 0;
            while i < inputs.len() {
                let contact = &inputs[i].1;
                let mut j = i + 1;
                while j < inputs.len() && inputs[j].1.id == contact.id {
                    j += 1;
                }
                let steps: Vec<Step<'_>> = inputs[i..j]
                    .iter()
                    .zip(results.by_ref())
                    .map(|((case, _, event), result)| Step {
                        before: case,
                        event,
                        result,
                    })
                    .collect();
                let ctx = StepContext {
                    tenant,
                    policy_sha256,
                    now: now.timestamp(),
                    last_message_at: last_messages[i],
                    actor: None,
                };
                applied.extend(apply_contact(tx, &ctx, contact, steps)?);
                i = j;
            }
            Ok::<_, StoreError>(applied)
        })?;
        for applied in applied {
            match applied {
                Applied::Changed { actions } => {
                    report.changed += 1;
                    report.actions += actions;
                }
                Applied::Unchanged => {}
                Applied::Deferred => report.deferred += 1,
                Applied::Failed(_) => report.failed += 1,
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
        // The overview's trend: the bands as the day's first tick finds them.
        let day = now
            .with_timezone(&tenant.timezone)
            .format("%Y-%m-%d")
            .to_string();
        record_day(store, &tenant.id, &day)?;
        let (mut session, sha256) = tenant_session(store, plugin, &tenant)?;
        let report = tick(store, &mut session, &tenant, &sha256, now, batch)?;
        reports.push((tenant.id, report));
    }
    Ok(reports)
}

/// The tenant's daily snapshot (trend and funnel), once a day. The funnel
/// reads every response link (about 10 s for a million cases, measured), so
/// it is read before the short write transaction, not inside it.
fn record_day(store: &mut Store, tenant: &str, day: &str) -> Result<(), StoreError> {
    use crate::store::report;
    if report::day_recorded(store.connection(), tenant, day)? {
        return Ok(());
    }
    let waves = report::funnel(store.connection(), tenant, 8)?;
    store.transaction(|tx| report::record_day(tx, tenant, day, &waves))?;
    Ok(())
}

/// Deletes evidence whose retention ended, with an audit row per contact.
fn expire_evidence(tx: &Tx<'_>, tenant: &str, now: i64) -> Result<(), StoreError> {
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

/// Ends the cases an erasure left behind in a store written before erasure
/// ended every purpose (and anything a bug might leave): run before each tick.
fn purge_left_after_erasure(tx: &Tx<'_>, tenant: &Tenant, now: i64) -> Result<(), StoreError> {
    let mut done = std::collections::BTreeSet::new();
    for (contact, _) in cases::left_after_erasure(tx, &tenant.id)? {
        if done.insert(contact.clone()) {
            // Keep the evidence as long as the person's own evidence.
            let until = evidence::retained_until(tx, &tenant.id, &contact)?
                .unwrap_or(now + DEFAULT_RETENTION_SECONDS);
            end_every_purpose(tx, &tenant.id, &contact, until, now)?;
        }
    }
    Ok(())
}
