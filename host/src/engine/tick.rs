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
    Applied, Checked, DEFAULT_RETENTION_SECONDS, Step, StepContext, apply_contact, check,
    end_every_purpose,
};
use super::clock;
use super::session::{SessionError, tenant_session};
use crate::plugin::{Case, Contact, Event};
use crate::runtime::{LoadedPlugin, Session};
use crate::store::audit::{self, Entry};
use crate::store::tenants::{self, Tenant};
use crate::store::{Claim, Store, StoreError, cases, evidence};

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
    sweep(
        store,
        session,
        (tenant, policy_sha256),
        now,
        batch,
        &mut |_| {},
    )
}

/// How far a sweep is, for a progress bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress<'a> {
    /// The sweep of `tenant` starts with this many due cases.
    Start { tenant: &'a str, due: usize },
    /// This many more cases are stepped and committed.
    Stepped(usize),
}

/// A transaction of the sweep commits once it has been open this long: a
/// commit costs about as much as all its dirty pages, so fewer and larger
/// ones are faster (measured: 200 commits of 500 cases took a third of a
/// 100,000-case sweep), while the write lock that other writers (the API's
/// events) wait for is never held much longer than this.
const COMMIT_AFTER: std::time::Duration = std::time::Duration::from_millis(250);

/// One batch of due cases, loaded and on its way through the plugin.
struct Batch {
    inputs: Vec<(Case, Contact, Event)>,
    last_messages: Vec<Option<i64>>,
}

/// [`tick`] with progress. Two threads share the work: the plugin steps
/// batch N+1 while this thread writes batch N's outcomes, so a sweep takes
/// about as long as the slower of the two instead of their sum. Each
/// transaction holds whole batches; a crash loses only what was not
/// committed, and the next tick steps those cases again from their stored
/// state.
pub fn sweep(
    store: &mut Store,
    session: &mut Session,
    (tenant, policy_sha256): (&Tenant, &str),
    now: DateTime<Utc>,
    batch: usize,
    progress: &mut dyn FnMut(Progress<'_>),
) -> Result<TickReport, StoreError> {
    // Another klar instance on the same PostgreSQL sweeps this tenant now:
    // its sweep steps what is due, this one would only wait for its locks.
    if !store.claim(Claim::Sweep, &tenant.id)? {
        return Ok(TickReport::default());
    }
    let swept = sweep_claimed(
        store,
        session,
        (tenant, policy_sha256),
        now,
        batch,
        progress,
    );
    store.release(Claim::Sweep, &tenant.id)?;
    swept
}

fn sweep_claimed(
    store: &mut Store,
    session: &mut Session,
    (tenant, policy_sha256): (&Tenant, &str),
    now: DateTime<Utc>,
    batch: usize,
    progress: &mut dyn FnMut(Progress<'_>),
) -> Result<TickReport, StoreError> {
    store.transaction(|tx| {
        expire_evidence(tx, &tenant.id, now.timestamp())?;
        purge_left_after_erasure(tx, tenant, now.timestamp())
    })?;
    let rows = cases::due_rows(store.connection(), &tenant.id, now.timestamp())?;
    let writing = (tenant, policy_sha256);
    if rows.len() > batch.max(1) {
        // A long sweep leaves checkpoints to another thread; a short one
        // (most of `klar serve`'s ticks) is not worth the connection.
        store.with_background_checkpoints(|store| {
            sweep_writing(store, session, writing, (now, rows, batch), progress)
        })
    } else {
        sweep_writing(store, session, writing, (now, rows, batch), progress)
    }
}

fn sweep_writing(
    store: &mut Store,
    session: &mut Session,
    (tenant, policy_sha256): (&Tenant, &str),
    (now, rows, batch): (DateTime<Utc>, Vec<(cases::DueCase, bool)>, usize),
    progress: &mut dyn FnMut(Progress<'_>),
) -> Result<TickReport, StoreError> {
    let clock = clock(tenant, now);
    let mut report = TickReport {
        due: rows.len(),
        ..TickReport::default()
    };
    progress(Progress::Start {
        tenant: &tenant.id,
        due: rows.len(),
    });
    // Batches end at a contact's last case.
    let mut batches = Vec::new();
    let mut start = 0;
    while start < rows.len() {
        let mut end = (start + batch.max(1)).min(rows.len());
        while end < rows.len() && !rows[end].1 {
            end += 1;
        }
        batches.push(start..end);
        start = end;
    }
    let load = |conn: &crate::store::Conn, range: std::ops::Range<usize>| {
        let mut loaded = Batch {
            inputs: Vec::with_capacity(range.len()),
            last_messages: Vec::with_capacity(range.len()),
        };
        for (due, _) in &rows[range] {
            if let Some((case, contact, last)) = cases::load_due(conn, due, now.timestamp())? {
                loaded.inputs.push((case, contact, Event::Tick));
                loaded.last_messages.push(last);
            }
        }
        Ok::<_, StoreError>(loaded)
    };
    // The version a basis the policy sets is stamped with.
    let policy_version = tenants::version_of(store.connection(), &tenant.id, policy_sha256)?
        .and_then(|v| u32::try_from(v).ok());
    let ctx = |last_message_at| StepContext {
        tenant,
        policy_sha256,
        now: now.timestamp(),
        last_message_at,
    };
    std::thread::scope(|scope| {
        // One batch waits while the plugin steps the next: enough to keep
        // both threads busy, and only two batches in memory.
        let (to_plugin, plugin_in) = std::sync::mpsc::sync_channel::<Batch>(1);
        let (plugin_out, stepped) = std::sync::mpsc::sync_channel(1);
        let stepper = scope.spawn(move || {
            for batch in plugin_in {
                // Checked here too, so that the writing thread only writes.
                let checked: Vec<Checked> = session
                    .step_batch(&batch.inputs, &clock)
                    .into_iter()
                    .zip(&batch.inputs)
                    .map(|(result, (case, _, event))| {
                        check(
                            (tenant, policy_version),
                            (case, event),
                            result,
                            now.timestamp(),
                            None,
                        )
                    })
                    .collect();
                if plugin_out.send((batch, checked)).is_err() {
                    break;
                }
            }
        });
        let mut queue = batches.into_iter();
        let mut in_flight = 0usize;
        if let Some(range) = queue.next() {
            // The plugin thread only ends when this one drops the channel.
            let _ = to_plugin.send(load(store.connection(), range)?);
            in_flight += 1;
        }
        while in_flight > 0 {
            let committed = store.transaction(|tx| {
                let opened = std::time::Instant::now();
                let mut done = 0;
                loop {
                    // The next batch goes to the plugin before this one is
                    // written. Its contacts are others than this batch's,
                    // so nothing written here changes what it read.
                    if let Some(range) = queue.next() {
                        let _ = to_plugin.send(load(tx, range)?);
                        in_flight += 1;
                    }
                    let Ok((batch, checked)) = stepped.recv() else {
                        // The plugin thread is gone: it panicked.
                        break;
                    };
                    in_flight -= 1;
                    done += batch.inputs.len();
                    apply_batch(tx, &ctx, batch, checked, &mut report)?;
                    if in_flight == 0 || opened.elapsed() >= COMMIT_AFTER {
                        break;
                    }
                }
                Ok::<_, StoreError>(done)
            })?;
            progress(Progress::Stepped(committed));
            if committed == 0 && in_flight > 0 {
                break;
            }
        }
        drop(to_plugin);
        if let Err(panic) = stepper.join() {
            std::panic::resume_unwind(panic);
        }
        Ok(report)
    })
}

/// Writes one stepped batch, a contact's cases at a time.
fn apply_batch<'a>(
    tx: &Tx<'_>,
    ctx: &impl Fn(Option<i64>) -> StepContext<'a>,
    batch: Batch,
    checked: Vec<Checked>,
    report: &mut TickReport,
) -> Result<(), StoreError> {
    let Batch {
        inputs,
        last_messages,
    } = batch;
    let mut checked = checked.into_iter();
    let mut i = 0;
    while i < inputs.len() {
        let contact = &inputs[i].1;
        let mut j = i + 1;
        while j < inputs.len() && inputs[j].1.id == contact.id {
            j += 1;
        }
        let steps: Vec<Step<'_>> = inputs[i..j]
            .iter()
            .zip(checked.by_ref())
            .map(|((case, _, event), checked)| Step {
                before: case,
                event,
                checked,
            })
            .collect();
        for applied in apply_contact(tx, &ctx(last_messages[i]), contact, steps)? {
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
        i = j;
    }
    Ok(())
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
/// `progress` hears how far each tenant's sweep is.
pub fn tick_all(
    store: &mut Store,
    plugin: &Arc<LoadedPlugin>,
    now: DateTime<Utc>,
    batch: usize,
    progress: &mut dyn FnMut(Progress<'_>),
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
        let report = sweep(
            store,
            &mut session,
            (&tenant, &sha256),
            now,
            batch,
            progress,
        )?;
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
