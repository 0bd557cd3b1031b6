//! Writing outcomes: a contact's steps applied in one transaction, with the
//! rules that span its purposes (one message, one task, erasure ends every
//! purpose, stale actions withdrawn), the audit rows, the outbox actions,
//! the response links and the evidence of each request.

use crate::store::Tx;
use chrono::{DateTime, TimeZone};

use super::guardrail::guardrail;
use crate::plugin::{Action, Case, Contact, Event, Outcome, State};
use crate::runtime::StepFailure;
use crate::store::StoreError;
use crate::store::audit::{self, Entry};
use crate::store::tenants::Tenant;
use crate::store::{cases, contacts, evidence, outbox, tenants, texts, tokens};

/// What applying one step did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    Changed {
        actions: usize,
    },
    Unchanged,
    /// Held back (a request for the contact's message spacing, an erasure
    /// for a legal hold on another purpose); the case is due again later.
    Deferred,
    /// The step failed or tripped a guardrail; the case is marked with why.
    Failed(String),
}

/// At least this long between two messages to the same contact, across all
/// of its purposes (and never twice on one local calendar day).
pub const MESSAGE_GAP_SECONDS: i64 = 86_400;

/// When the next message to a contact may go out, after one at `last`: a
/// day later, and on a later local calendar day (a day on which summer time
/// ends has 25 hours).
pub fn next_message_at(tz: chrono_tz::Tz, last: i64) -> i64 {
    let next = last + MESSAGE_GAP_SECONDS;
    let day = |t: i64| DateTime::from_timestamp(t, 0).map(|d| d.with_timezone(&tz).date_naive());
    match (day(last), day(next)) {
        (Some(a), Some(b)) if a == b => a
            .succ_opt()
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .and_then(|d| tz.from_local_datetime(&d).earliest())
            .map_or(next + 3_600, |d| d.timestamp()),
        _ => next,
    }
}

/// One case's step, as the plugin answered it and [`check`] judged it.
pub(super) struct Step<'a> {
    pub(super) before: &'a Case,
    pub(super) event: &'a Event,
    pub(super) checked: Checked,
}

/// A step's outcome as the guardrails, the tenant's default owner and the
/// policy version left it, with the text its writes store. Nothing here
/// reads the store, so a sweep checks each batch on the plugin's thread
/// while the writing thread writes the one before.
pub(super) struct Checked {
    verdict: Result<Outcome, String>,
    /// What storing an outcome that changes something writes.
    texts: Option<Texts>,
}

/// The JSON a changing step's writes store, made before the writing.
struct Texts {
    /// The case.
    body: String,
    /// The audit row's detail.
    detail: String,
    /// Each action as the outbox carries it (a request's link is added
    /// when it is written).
    payloads: Vec<serde_json::Value>,
}

/// Judges a step's result: `Err` with why for a failed step or one a
/// guardrail stops; else the outcome, with the tenant's default owner for a
/// task nobody owns and the policy's version on a basis the policy set.
/// `actor` is who reported the event, as the audit row names them
/// (`{"via": "cockpit", "account": …}`); `None` for the scheduler's own
/// steps.
pub(super) fn check(
    (tenant, policy_version): (&Tenant, Option<u32>),
    (before, event): (&Case, &Event),
    result: Result<Outcome, StepFailure>,
    now: i64,
    actor: Option<&serde_json::Value>,
) -> Checked {
    let verdict = match result {
        Ok(outcome) => match guardrail(before, event, &outcome, now) {
            Some(why) => Err(format!("guardrail: {why}")),
            None => with_owner(outcome, tenant).map(|mut outcome| {
                stamp_policy_version(&mut outcome, policy_version);
                outcome
            }),
        },
        Err(err) => Err(err.to_string()),
    };
    let texts = match &verdict {
        Ok(outcome) if !(outcome.case == *before && outcome.actions.is_empty()) => Some(Texts {
            body: cases::body(&outcome.case),
            detail: audit_detail(before, event, outcome, actor),
            payloads: outcome
                .actions
                .iter()
                .map(|a| serde_json::to_value(a).unwrap_or_default())
                .collect(),
        }),
        _ => None,
    };
    Checked { verdict, texts }
}

/// What the audit row of a step says: the event, the states, the actions
/// and the policy's trace (which `klar explain` shows), and who reported it.
fn audit_detail(
    before: &Case,
    event: &Event,
    outcome: &Outcome,
    actor: Option<&serde_json::Value>,
) -> String {
    let mut detail = serde_json::json!({
        "event": event,
        "from": before.state,
        "to": outcome.case.state,
        "actions": outcome.actions,
        "trace": outcome.trace,
    });
    if let Some(actor) = actor {
        detail["actor"] = actor.clone();
    }
    detail.to_string()
}

/// What every step of one apply shares.
pub(super) struct StepContext<'a> {
    pub(super) tenant: &'a Tenant,
    pub(super) policy_sha256: &'a str,
    pub(super) now: i64,
    /// When the contact was last sent a message, for the spacing.
    pub(super) last_message_at: Option<i64>,
}

/// What happens to one step of a contact's group.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Plan {
    Apply,
    /// Hold the step back until then, for this reason.
    Defer(i64, String),
    /// Its case is purged with the person by another step of the group.
    Skip,
}

fn first_request(outcome: &Outcome) -> Option<&str> {
    outcome.actions.iter().find_map(|a| match a {
        Action::SendRequest { channel, .. } => Some(channel.as_str()),
        _ => None,
    })
}

/// Whether applying the outcome erases the person: only the purge of
/// `contact-data` does; purging another purpose ends just that use.
fn erases(outcome: &Outcome) -> bool {
    outcome.case.purpose == tenants::DEFAULT_PURPOSE
        && outcome
            .actions
            .iter()
            .any(|a| matches!(a, Action::Cleanup { .. }))
}

/// The message being put together in one apply: one request for every
/// purpose that asks on its channel now.
struct Message {
    id: String,
    purpose: String,
    payload: serde_json::Value,
    purposes: Vec<serde_json::Value>,
    link: Option<String>,
}

/// The owner's task being put together: one per contact, assignee and kind.
struct Task {
    id: String,
    purpose: String,
    payload: serde_json::Value,
    purposes: Vec<String>,
}

/// Applies the steps of one contact's cases in one transaction, with the
/// rules that span its purposes (see the module's header).
pub(super) fn apply_contact(
    tx: &Tx<'_>,
    ctx: &StepContext<'_>,
    contact: &Contact,
    steps: Vec<Step<'_>>,
) -> Result<Vec<Applied>, StoreError> {
    let tenant = ctx.tenant.id.as_str();
    let now = ctx.now;
    let mut verdicts = Vec::with_capacity(steps.len());
    let mut texts = Vec::with_capacity(steps.len());
    for step in steps {
        verdicts.push((step.before, step.event, step.checked.verdict));
        texts.push(step.checked.texts);
    }

    const ONE_A_DAY: &str = "one message a day to the same contact";
    let mut plans = vec![Plan::Apply; verdicts.len()];
    let eraser = verdicts
        .iter()
        .position(|(_, _, v)| v.as_ref().is_ok_and(erases));
    let held = match eraser {
        Some(_) => held_elsewhere(tx, tenant, &contact.id)?,
        None => None,
    };
    if let (Some(e), Some(purpose)) = (eraser, &held) {
        // The person is not erased while any of their cases is on legal
        // hold; the cleanup waits and is tried again each day, as a cleanup
        // waits for a hold on its own case.
        plans[e] = Plan::Defer(
            now + MESSAGE_GAP_SECONDS,
            format!(
                "the {purpose} case of this contact is on legal hold; the person is erased once it is lifted"
            ),
        );
    } else if let Some(e) = eraser {
        for (k, plan) in plans.iter_mut().enumerate() {
            if k != e && verdicts[k].2.is_ok() {
                *plan = Plan::Skip;
            }
        }
    } else {
        // One message per contact and moment, at most one a day.
        let tz = ctx.tenant.timezone;
        let wait = ctx
            .last_message_at
            .map(|t| next_message_at(tz, t))
            .filter(|&until| until > now);
        let mut channel: Option<&str> = None;
        for (k, (_, event, verdict)) in verdicts.iter().enumerate() {
            let Some(asks) = verdict.as_ref().ok().and_then(first_request) else {
                continue;
            };
            if **event != Event::Tick {
                // An event's request (the current one sent again to a new
                // address, say) is applied now and held in the outbox.
                continue;
            }
            if let Some(until) = wait {
                plans[k] = Plan::Defer(until, ONE_A_DAY.to_owned());
            } else if channel.is_some_and(|c| c != asks) {
                plans[k] = Plan::Defer(next_message_at(tz, now), ONE_A_DAY.to_owned());
            } else {
                channel = Some(asks);
            }
        }
    }

    let mut applied = Vec::with_capacity(verdicts.len());
    let mut waiting = Waiting::default();
    let mut message: Option<Message> = None;
    let mut tasks: Vec<Task> = Vec::new();
    for (((before, event, verdict), plan), texts) in verdicts.into_iter().zip(plans).zip(texts) {
        let outcome = match verdict {
            Err(why) => {
                cases::mark_failed(tx, tenant, &contact.id, &before.purpose, &why)?;
                audit::append(
                    tx,
                    tenant,
                    Entry {
                        at: now,
                        contact: Some(contact.id.clone()),
                        purpose: Some(before.purpose.clone()),
                        kind: "step-failed".to_owned(),
                        detail: serde_json::json!({ "event": event, "error": why }).to_string(),
                        policy_sha256: Some(ctx.policy_sha256.to_owned()),
                    },
                )?;
                applied.push(Applied::Failed(why));
                continue;
            }
            Ok(outcome) => outcome,
        };
        match plan {
            Plan::Skip => {
                applied.push(Applied::Unchanged);
                continue;
            }
            Plan::Defer(until, reason) => {
                cases::postpone(tx, tenant, &contact.id, before, until)?;
                audit::append(
                    tx,
                    tenant,
                    Entry {
                        at: now,
                        contact: Some(contact.id.clone()),
                        purpose: Some(before.purpose.clone()),
                        kind: "step-deferred".to_owned(),
                        detail: serde_json::json!({
                            "event": event,
                            "until": until,
                            "reason": reason,
                        })
                        .to_string(),
                        policy_sha256: Some(ctx.policy_sha256.to_owned()),
                    },
                )?;
                applied.push(Applied::Deferred);
                continue;
            }
            Plan::Apply => {}
        }
        let Some(Texts {
            body,
            detail,
            payloads,
        }) = texts
        else {
            // The step changes nothing.
            applied.push(Applied::Unchanged);
            continue;
        };
        let case = &outcome.case;
        if !cases::write_body(tx, tenant, &contact.id, (before.state, case), &body, now)? {
            // Someone moved the case since it was read (another klar
            // process): this step was computed from an older state.
            tracing::warn!(
                contact = %contact.id,
                purpose = %case.purpose,
                "the case changed while it was stepped; the step is dropped"
            );
            applied.push(Applied::Unchanged);
            continue;
        }
        let row = audit::append(
            tx,
            tenant,
            Entry {
                at: now,
                contact: Some(contact.id.clone()),
                purpose: Some(case.purpose.clone()),
                kind: if case.state != before.state {
                    "state-change".to_owned()
                } else {
                    "step".to_owned()
                },
                detail,
                policy_sha256: Some(ctx.policy_sha256.to_owned()),
            },
        )?;
        withdraw_stale(tx, ctx, (&contact.id, &mut waiting), before, &outcome)?;
        if let Some(basis) = new_policy_basis(before, case) {
            // A renewal at the review date is evidence too; the CRM already
            // has the contact's link for the same basis.
            let renewed = before.state == State::OtherBasis
                && before
                    .basis
                    .as_ref()
                    .is_some_and(|b| b.by_policy() && b.kind == basis.kind);
            basis_recorded(tx, ctx, contact, (case, basis), row.seq, renewed)?;
        }
        for (i, (action, payload)) in outcome.actions.iter().zip(payloads).enumerate() {
            // Stable: the same audit row and position always give the same
            // id, so a CRM can de-duplicate deliveries.
            let id = format!("{tenant}-{}-{i}", row.seq);
            match action {
                Action::SendRequest {
                    channel,
                    attempt,
                    link_expires_at,
                    template,
                } => {
                    let request = Request {
                        channel,
                        attempt: *attempt,
                        expires_at: link_expires_at.timestamp(),
                    };
                    let message = message.get_or_insert_with(|| Message {
                        id,
                        purpose: case.purpose.clone(),
                        payload,
                        purposes: Vec::new(),
                        link: None,
                    });
                    let link = request_sent(
                        tx,
                        tenant,
                        contact,
                        &case.purpose,
                        &request,
                        message.link.as_deref(),
                        now,
                    )?;
                    let token_id = link.get("token_id").cloned().unwrap_or_default();
                    message.purposes.push(serde_json::json!({
                        "purpose": case.purpose,
                        "attempt": attempt,
                        "template": template,
                        "token_id": token_id,
                        "text_version": link.get("text_version"),
                        "link_expires_at": link.get("link_expires_at"),
                    }));
                    if message.link.is_none() {
                        message.link = token_id.as_str().map(str::to_owned);
                        if let Some(object) = message.payload.as_object_mut() {
                            object.extend(link);
                        }
                    }
                }
                Action::CreateTask { assignee, kind, .. } => {
                    let same = |t: &&mut Task| {
                        t.payload.get("assignee").and_then(|v| v.as_str()) == Some(assignee)
                            && t.payload.get("kind").and_then(|v| v.as_str()) == Some(kind)
                    };
                    match tasks.iter_mut().find(same) {
                        Some(task) => task.purposes.push(case.purpose.clone()),
                        None => tasks.push(Task {
                            id,
                            purpose: case.purpose.clone(),
                            payload,
                            purposes: vec![case.purpose.clone()],
                        }),
                    }
                }
                _ => {
                    let kind = action_kind(&payload);
                    outbox::insert(
                        tx,
                        tenant,
                        &id,
                        (&contact.id, &case.purpose),
                        &kind,
                        &payload,
                        now,
                    )?;
                }
            }
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
                    (&contact.id, &case.purpose),
                    keep_evidence_until.timestamp(),
                )?;
                if erases(&outcome) {
                    contacts::erase(tx, tenant, &contact.id, *mode, now)?;
                    end_every_purpose(
                        tx,
                        tenant,
                        &contact.id,
                        keep_evidence_until.timestamp(),
                        now,
                    )?;
                }
            }
        }
        applied.push(Applied::Changed {
            actions: outcome.actions.len(),
        });
    }
    if let Some(mut message) = message {
        if let Some(object) = message.payload.as_object_mut() {
            object.insert("purposes".into(), message.purposes.into());
        }
        let key = (contact.id.as_str(), message.purpose.as_str());
        outbox::insert(
            tx,
            tenant,
            &message.id,
            key,
            "send-request",
            &message.payload,
            now,
        )?;
        // Only an event's request can come sooner than the spacing allows
        // (a tick's is deferred above): it waits in the outbox until then.
        let tz = ctx.tenant.timezone;
        let sent_at = match ctx.last_message_at.map(|t| next_message_at(tz, t)) {
            Some(until) if until > now => {
                outbox::deliver_after(tx, tenant, &message.id, until)?;
                until
            }
            _ => now,
        };
        contacts::set_last_message(tx, tenant, &contact.id, sent_at)?;
        replace_older_messages(tx, ctx, (&contact.id, &mut waiting), &message.id)?;
    }
    for mut task in tasks {
        if let Some(object) = task.payload.as_object_mut() {
            object.insert("purposes".into(), task.purposes.into());
        }
        let key = (contact.id.as_str(), task.purpose.as_str());
        outbox::insert(tx, tenant, &task.id, key, "create-task", &task.payload, now)?;
    }
    Ok(applied)
}

/// A task for nobody (a contact without an owner, from before the import
/// and the API refused one) goes to the tenant's default owner; without
/// one, the step fails and the case says what to set.
fn with_owner(mut outcome: Outcome, tenant: &Tenant) -> Result<Outcome, String> {
    let nobody = |who: &str| who.trim().is_empty();
    let task_for_nobody = outcome
        .actions
        .iter()
        .any(|a| matches!(a, Action::CreateTask { assignee, .. } if nobody(assignee)));
    let case_for_nobody = outcome.case.assigned_to.as_deref().is_some_and(nobody);
    if !task_for_nobody && !case_for_nobody {
        return Ok(outcome);
    }
    let Some(owner) = &tenant.default_owner else {
        return Err(format!(
            "the contact has no owner and tenant {} no default owner to hand the case to: \
             set one (klar tenant set {} --default-owner NAME), then klar clear the case",
            tenant.id, tenant.id
        ));
    };
    for action in &mut outcome.actions {
        if let Action::CreateTask { assignee, .. } = action
            && nobody(assignee)
        {
            owner.clone_into(assignee);
        }
    }
    if case_for_nobody {
        outcome.case.assigned_to = Some(owner.clone());
    }
    Ok(outcome)
}

/// A basis the policy's hook just set carries the number of the policy
/// version that set it: the plugin leaves it empty (it does not know the
/// version) and passes a stored one through.
fn stamp_policy_version(outcome: &mut Outcome, version: Option<u32>) {
    if let Some(basis) = outcome.case.basis.as_mut()
        && basis.by_policy()
        && basis.policy_version.is_none()
    {
        basis.policy_version = version;
    }
}

/// The basis the policy set (or renewed) in this step, if it did.
fn new_policy_basis<'c>(before: &Case, after: &'c Case) -> Option<&'c crate::plugin::Basis> {
    let basis = after.basis.as_ref().filter(|b| b.by_policy())?;
    (after.state == State::OtherBasis && before.basis.as_ref() != Some(basis)).then_some(basis)
}

/// A basis the policy set is evidence: what, why, until when, which policy
/// version, and the contact data it relied on. The CRM hears of it with the
/// contact's personal link, which every use on a legitimate interest or the
/// existing-customer exception must carry as the way to object (§ 7(3)
/// no. 4 UWG, Art. 21(4) GDPR). The link is a closed response token: it
/// answers no request, it only opens the contact's page.
fn basis_recorded(
    tx: &Tx<'_>,
    ctx: &StepContext<'_>,
    contact: &Contact,
    (case, basis): (&Case, &crate::plugin::Basis),
    audit_seq: i64,
    renewed: bool,
) -> Result<(), StoreError> {
    let tenant = ctx.tenant.id.as_str();
    let now = ctx.now;
    let review_at = basis
        .review_at
        .map(|t| crate::times::rfc3339(t.timestamp()));
    let mut detail = serde_json::json!({
        "kind": basis.kind,
        "reason": basis.reason,
        "relied_on": basis.relied_on,
        "review_at": review_at,
        "policy_version": basis.policy_version,
        "policy_sha256": ctx.policy_sha256,
        "audit_seq": audit_seq,
        "renewed": renewed,
    });
    if !renewed {
        let language = texts::language_of(tx, tenant, &case.purpose, &contact.language)?;
        let (secret, token) = tokens::issue(
            tx,
            tokens::Token {
                id: String::new(),
                tenant: tenant.to_owned(),
                contact: contact.id.clone(),
                purpose: case.purpose.clone(),
                attempt: 0,
                channel: "basis".to_owned(),
                text_version: 0,
                language: language.clone(),
                created_at: now,
                expires_at: now,
                used_at: Some(now),
                message: None,
            },
        )?;
        detail["personal_link_id"] = token.id.into();
        outbox::insert(
            tx,
            tenant,
            &format!("{tenant}-{audit_seq}-basis"),
            (&contact.id, &case.purpose),
            "basis-recorded",
            &serde_json::json!({
                "type": "basis-recorded",
                "basis": basis.kind,
                "reason": basis.reason,
                "review_at": review_at,
                "policy_version": basis.policy_version,
                "objection_possible": basis.kind.objectionable(),
                "language": language,
                "personal_token": secret,
            }),
            now,
        )?;
    }
    evidence::add(
        tx,
        tenant,
        &contact.id,
        &case.purpose,
        "basis",
        now,
        &detail,
    )?;
    Ok(())
}

/// The `type` of an action's JSON, which is the outbox row's kind.
fn action_kind(payload: &serde_json::Value) -> String {
    payload
        .get("type")
        .and_then(|t| t.as_str())
        .unwrap_or_default()
        .to_owned()
}

/// Another purpose of the contact that is on legal hold, if one is: the
/// person is not erased while any of their cases is held.
fn held_elsewhere(tx: &Tx<'_>, tenant: &str, contact: &str) -> Result<Option<String>, StoreError> {
    Ok(cases::of_contact(tx, tenant, contact)?
        .into_iter()
        .find(|c| c.legal_hold && c.purpose != tenants::DEFAULT_PURPOSE)
        .map(|c| c.purpose))
}

/// Why a case's pending requests no longer fit it, if they do not.
fn stale_request_reason(case: &Case) -> Option<String> {
    if case.legal_hold {
        Some("the case is on legal hold".to_owned())
    } else if case.state != State::Requested
        && !(case.state == State::Consented && case.attempt > 0)
    {
        // (A consent being confirmed again is asked while it is used.)
        Some(format!("the case is now {}", case.state))
    } else {
        None
    }
}

/// Whether anything of the contact waited in the outbox, asked once per
/// apply (most contacts of a sweep have nothing waiting) before the
/// questions about kinds. Asked first before this apply queues its message
/// and tasks (they are queued last), a "no" stays true for those kinds: the
/// steps queue no requests and no tasks before then. Asked later, the
/// answer includes what this apply queued, and the questions follow.
#[derive(Default)]
struct Waiting(Option<bool>);

impl Waiting {
    fn any(&mut self, tx: &Tx<'_>, tenant: &str, contact: &str) -> Result<bool, StoreError> {
        if let Some(known) = self.0 {
            return Ok(known);
        }
        let any = outbox::any_waiting(tx, tenant, contact)?;
        self.0 = Some(any);
        Ok(any)
    }
}

/// Withdraws what waits in the outbox for a case that this step moved on: its
/// requests once it is no longer being asked, and the owner's tasks once its
/// state changed.
fn withdraw_stale(
    tx: &Tx<'_>,
    ctx: &StepContext<'_>,
    (contact, waiting): (&str, &mut Waiting),
    before: &Case,
    outcome: &Outcome,
) -> Result<(), StoreError> {
    let tenant = ctx.tenant.id.as_str();
    if !waiting.any(tx, tenant, contact)? {
        return Ok(());
    }
    let case = &outcome.case;
    // A newer request's message replaces older ones once it is queued (see
    // `replace_older_messages`).
    if let Some(reason) = stale_request_reason(case) {
        for pending in outbox::pending(tx, tenant, contact, "send-request")? {
            if !pending.purposes.iter().any(|p| p == &case.purpose) {
                continue;
            }
            // A message that asks about other purposes still goes out for
            // them while any of them is being asked.
            let mut still_asks = false;
            for other in pending.purposes.iter().filter(|p| **p != case.purpose) {
                still_asks |= cases::get(tx, tenant, contact, other)?
                    .is_some_and(|c| stale_request_reason(&c).is_none());
            }
            if !still_asks {
                cancel(tx, tenant, contact, &pending, &reason, ctx.now)?;
            }
        }
    }
    if case.state != before.state && outbox::any_pending(tx, tenant, contact, "create-task", None)?
    {
        let reason = format!("the case is now {}", case.state);
        for pending in outbox::pending(tx, tenant, contact, "create-task")? {
            if pending.purposes.iter().all(|p| p == &case.purpose) {
                cancel(tx, tenant, contact, &pending, &reason, ctx.now)?;
            }
        }
    }
    Ok(())
}

/// Withdraws the contact's older pending messages that the new one
/// replaces: those whose every purpose it asks about again or that is no
/// longer being asked.
fn replace_older_messages(
    tx: &Tx<'_>,
    ctx: &StepContext<'_>,
    (contact, waiting): (&str, &mut Waiting),
    newest: &str,
) -> Result<(), StoreError> {
    let tenant = ctx.tenant.id.as_str();
    if !waiting.any(tx, tenant, contact)?
        || !outbox::any_pending(tx, tenant, contact, "send-request", Some(newest))?
    {
        return Ok(());
    }
    let pending = outbox::pending(tx, tenant, contact, "send-request")?;
    let Some(new) = pending.iter().find(|p| p.id == newest) else {
        return Ok(());
    };
    for older in pending.iter().filter(|p| p.id != newest) {
        let mut still_asks = false;
        for purpose in older.purposes.iter().filter(|p| !new.purposes.contains(p)) {
            still_asks |= cases::get(tx, tenant, contact, purpose)?
                .is_some_and(|c| stale_request_reason(&c).is_none());
        }
        if !still_asks {
            cancel(
                tx,
                tenant,
                contact,
                older,
                "a newer request replaces it",
                ctx.now,
            )?;
        }
    }
    Ok(())
}

/// Withdraws one pending action, with an audit row.
fn cancel(
    tx: &Tx<'_>,
    tenant: &str,
    contact: &str,
    pending: &outbox::Pending,
    reason: &str,
    now: i64,
) -> Result<(), StoreError> {
    let notified = outbox::cancel(tx, tenant, pending, reason, now)?;
    audit::append(
        tx,
        tenant,
        Entry {
            at: now,
            contact: Some(contact.to_owned()),
            purpose: Some(pending.purpose.clone()),
            kind: "action-cancelled".to_owned(),
            detail: serde_json::json!({
                "outbox_id": pending.id,
                "action": pending.kind,
                "reason": reason,
                "crm_told": notified,
            })
            .to_string(),
            policy_sha256: None,
        },
    )?;
    Ok(())
}

/// The person was erased with their `contact-data` case: every other purpose
/// ends in the same transaction. Each case is purged (with an audit row), its
/// links closed and its evidence put on the same retention; whatever still
/// waits in the outbox for the contact is withdrawn.
pub(super) fn end_every_purpose(
    tx: &Tx<'_>,
    tenant: &str,
    contact: &str,
    keep_evidence_until: i64,
    now: i64,
) -> Result<(), StoreError> {
    for before in cases::of_contact(tx, tenant, contact)? {
        if before.state == State::Purged {
            continue;
        }
        let mut case = before.clone();
        case.state = State::Purged;
        case.due_at = None;
        case.cleanup = None;
        case.assigned_to = None;
        case.updated_at = DateTime::from_timestamp(now, 0);
        // Read in this transaction, so the state is the stored one.
        cases::write(tx, tenant, contact, (before.state, &case), now)?;
        tokens::close_for_case(tx, tenant, contact, &case.purpose, now)?;
        evidence::start_retention(tx, tenant, (contact, &case.purpose), keep_evidence_until)?;
        audit::append(
            tx,
            tenant,
            Entry {
                at: now,
                contact: Some(contact.to_owned()),
                purpose: Some(case.purpose.clone()),
                kind: "state-change".to_owned(),
                detail: serde_json::json!({
                    "event": { "type": "contact-erased" },
                    "from": before.state,
                    "to": case.state,
                    "actions": [],
                    "trace": [{
                        "hook": "klar",
                        "input": "the person was erased",
                        "output": "every purpose ends with the person",
                    }],
                })
                .to_string(),
                policy_sha256: None,
            },
        )?;
    }
    for kind in [
        "send-request",
        "create-task",
        "send-confirmation",
        "basis-recorded",
    ] {
        for pending in outbox::pending(tx, tenant, contact, kind)? {
            cancel(tx, tenant, contact, &pending, "the contact was erased", now)?;
        }
    }
    Ok(())
}

/// Three years (§ 195 BGB), when an erased contact's own retention is unknown.
pub(super) const DEFAULT_RETENTION_SECONDS: i64 = 3 * 365 * 86_400;

/// A request goes out: a fresh response link bound to this case, and evidence
/// of what was sent. Returns what the outbox action carries for the sender:
/// the link's secret, its id, and the consent text's version.
struct Request<'a> {
    channel: &'a str,
    attempt: u32,
    /// When the link stops working (the policy's `link_valid_days`).
    expires_at: i64,
}

/// The evidence of a request sent. Written straight to JSON (a sweep
/// writes one per request); the fields in alphabetical order, as the JSON
/// objects klar builds otherwise order theirs.
#[derive(serde::Serialize)]
struct RequestEvidence<'a> {
    attempt: u32,
    channel: &'a str,
    language: &'a str,
    link_expires_at: String,
    message: Option<&'a str>,
    text_sha256: &'a str,
    text_version: i64,
    token_id: &'a str,
}

/// `message` is the id of the link token of the message this request joins;
/// none for the first request of a message, whose secret is the one sent.
fn request_sent(
    tx: &Tx<'_>,
    tenant: &str,
    contact: &Contact,
    purpose: &str,
    request: &Request<'_>,
    message: Option<&str>,
    now: i64,
) -> Result<serde_json::Map<String, serde_json::Value>, StoreError> {
    let Request {
        channel,
        attempt,
        expires_at,
    } = *request;
    let language = texts::language_of(tx, tenant, purpose, &contact.language)?;
    let (text_version, text_sha256) = texts::sent_now(tx, tenant, purpose, &language, now)?;
    let (secret, token) = tokens::issue(
        tx,
        tokens::Token {
            id: String::new(),
            tenant: tenant.to_owned(),
            contact: contact.id.clone(),
            purpose: purpose.to_owned(),
            attempt: i64::from(attempt),
            channel: channel.to_owned(),
            text_version,
            language: language.clone(),
            created_at: now,
            // Never in the past, whatever a (hostile) plugin returns.
            expires_at: expires_at.max(now + 3_600),
            used_at: None,
            message: message.map(str::to_owned),
        },
    )?;
    evidence::add(
        tx,
        tenant,
        &contact.id,
        purpose,
        "request",
        now,
        &RequestEvidence {
            attempt,
            channel,
            language: &language,
            link_expires_at: crate::times::rfc3339(token.expires_at),
            message: token.message.as_deref(),
            text_sha256: &text_sha256,
            text_version,
            token_id: &token.id,
        },
    )?;
    let mut link = serde_json::Map::new();
    // Only the message's own link travels; the tokens of the purposes that
    // join it are reached through it.
    if message.is_none() {
        link.insert("token".into(), secret.into());
    }
    link.insert("token_id".into(), token.id.into());
    link.insert("language".into(), language.into());
    link.insert("text_version".into(), text_version.into());
    link.insert(
        "link_expires_at".into(),
        crate::times::rfc3339(token.expires_at).into(),
    );
    Ok(link)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_requests_evidence_is_the_json_it_always_was() {
        for message in [Some("r000000000000001"), None] {
            let typed = RequestEvidence {
                attempt: 2,
                channel: "email",
                language: "de",
                link_expires_at: "2027-06-01T00:00:00Z".to_owned(),
                message,
                text_sha256: "ab12",
                text_version: 3,
                token_id: "r000000000000002",
            };
            // As it was built before, with a JSON object's sorted keys.
            let built = serde_json::json!({
                "channel": "email",
                "attempt": 2,
                "token_id": "r000000000000002",
                "message": message,
                "text_version": 3,
                "text_sha256": "ab12",
                "language": "de",
                "link_expires_at": "2027-06-01T00:00:00Z",
            });
            assert_eq!(
                serde_json::to_string(&typed).expect("serialises"),
                built.to_string()
            );
        }
    }
}
