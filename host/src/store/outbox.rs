//! The outbox: actions for the CRM (requests to send, tasks, cleanups), each
//! with a stable id so a receiver can de-duplicate, delivered at least once.

use super::sql::params;

use super::{Conn, Error, Result, Tx};
use serde_json::Value;

/// One action.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    pub id: String,
    pub seq: i64,
    pub contact: String,
    pub purpose: String,
    pub kind: String,
    pub payload: Value,
    pub created_at: i64,
    pub acked_at: Option<i64>,
    /// Failed delivery attempts (webhook or mail) so far.
    pub attempts: i64,
    /// When klar gave up delivering it (see `klar redeliver`).
    pub parked_at: Option<i64>,
    pub last_error: Option<String>,
    /// When klar withdrew it before delivery because its case moved on.
    pub cancelled_at: Option<i64>,
    /// Why it was withdrawn, e.g. "the case is now consented".
    pub cancel_reason: Option<String>,
    /// A message held for the contact's spacing is delivered from then on.
    pub deliver_after: Option<i64>,
}

/// Which actions [`list`] returns.
#[derive(Debug, Clone, Copy, Default)]
pub struct Filter<'a> {
    /// Only this contact's.
    pub contact: Option<&'a str>,
    /// Acknowledged ones too.
    pub all: bool,
    /// Only parked ones (klar gave up delivering them).
    pub parked: bool,
    /// Leave out e-mail requests (klar mails them itself for this tenant).
    pub without_mails: bool,
    /// Only those after this `seq` (a cursor; 0 for all).
    pub after: i64,
    /// Leave out messages held for the contact's spacing until after this
    /// time (a deliverer's view); none shows them with their `deliver_after`.
    pub deliverable_at: Option<i64>,
    pub limit: Option<usize>,
}

/// The columns [`read`] expects, in order.
pub(crate) const COLUMNS: &str = "id, seq, contact, purpose, kind, payload, created_at, acked_at, attempts, parked_at, last_error, cancelled_at, cancel_reason, deliver_after";

pub(crate) fn read(r: &crate::store::sql::Row<'_>) -> crate::store::sql::Result<Item> {
    let payload: String = r.get(5)?;
    Ok(Item {
        id: r.get(0)?,
        seq: r.get(1)?,
        contact: r.get(2)?,
        purpose: r.get(3)?,
        kind: r.get(4)?,
        payload: serde_json::from_str(&payload)
            .map(rfc3339_links)
            .unwrap_or(Value::String(payload)),
        created_at: r.get(6)?,
        acked_at: r.get(7)?,
        attempts: r.get(8)?,
        parked_at: r.get(9)?,
        last_error: r.get(10)?,
        cancelled_at: r.get(11)?,
        cancel_reason: r.get(12)?,
        deliver_after: r.get(13)?,
    })
}

/// A request written by an earlier klar carries its links' last day as Unix
/// seconds; every answer shows RFC 3339.
fn rfc3339_links(mut payload: Value) -> Value {
    fn fix(object: &mut serde_json::Map<String, Value>) {
        if let Some(at) = object.get("link_expires_at").and_then(Value::as_i64) {
            object.insert("link_expires_at".into(), crate::times::rfc3339(at).into());
        }
    }
    if let Some(object) = payload.as_object_mut() {
        fix(object);
        if let Some(list) = object.get_mut("purposes").and_then(Value::as_array_mut) {
            list.iter_mut()
                .filter_map(Value::as_object_mut)
                .for_each(fix);
        }
    }
    payload
}

/// The newest action's `seq` (0 for none): where a reader starts to see
/// only what comes next.
pub fn last_seq(conn: &Conn, tenant: &str) -> Result<i64> {
    conn.sql()
        .prepare_cached("SELECT COALESCE(MAX(seq), 0) FROM outbox WHERE tenant = ?1")?
        .query_row([tenant], |r| r.get(0))
        .map_err(Error::from)
}

/// The tenant's actions in order, as `filter` says.
pub fn list(conn: &Conn, tenant: &str, filter: &Filter<'_>) -> Result<Vec<Item>> {
    let limit = filter
        .limit
        .map_or(i64::MAX, |l| i64::try_from(l).unwrap_or(i64::MAX));
    let mut stmt = conn.sql().prepare_cached(&format!(
        "SELECT {COLUMNS} FROM outbox
         WHERE tenant = ?1 AND seq > ?4 AND (CAST(?2 AS TEXT) IS NULL OR contact = ?2) AND (?3 OR acked_at IS NULL)
           AND (NOT ?6 OR parked_at IS NOT NULL)
           AND NOT (?7 AND kind IN ('send-request', 'send-confirmation')
                    AND json_extract(payload, '$.channel') IS 'email')
           AND (CAST(?8 AS BIGINT) IS NULL OR deliver_after IS NULL OR deliver_after <= ?8)
         ORDER BY seq LIMIT ?5"
    ))?;
    let rows = stmt.query_map(
        params![
            tenant,
            filter.contact,
            filter.all,
            filter.after,
            limit,
            filter.parked,
            filter.without_mails,
            filter.deliverable_at
        ],
        read,
    )?;
    rows.collect::<crate::store::sql::Result<_>>()
        .map_err(Error::from)
}

/// Queues one action for the CRM (or klar's mailer) with the next sequence
/// number of the tenant.
pub fn insert(
    tx: &Tx<'_>,
    tenant: &str,
    id: &str,
    (contact, purpose): (&str, &str),
    kind: &str,
    payload: &Value,
    now: i64,
) -> Result<()> {
    // The tenant's last seq, read once per transaction and then counted
    // here: only this function inserts into the outbox, and the
    // transaction's write lock keeps others from it until commit.
    let cached = tx
        .outbox_head
        .borrow_mut()
        .take()
        .filter(|(t, _)| t == tenant)
        .map(|(_, seq)| seq);
    let last = match cached {
        Some(seq) => seq,
        None => {
            tx.serialise_tenant(tenant)?;
            tx.sql()
                .prepare_cached("SELECT COALESCE(MAX(seq), 0) FROM outbox WHERE tenant = ?1")?
                .query_row([tenant], |r| r.get(0))?
        }
    };
    let seq = last + 1;
    tx.sql()
        .prepare_cached(
            "INSERT INTO outbox (id, tenant, seq, contact, purpose, kind, payload, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )?
        .execute(params![
            id,
            tenant,
            seq,
            contact,
            purpose,
            kind,
            payload.to_string(),
            now
        ])?;
    *tx.outbox_head.borrow_mut() = Some((tenant.to_owned(), seq));
    Ok(())
}

/// Holds a queued message back until `until` (the contact's spacing).
pub fn deliver_after(tx: &Tx<'_>, tenant: &str, id: &str, until: i64) -> Result<()> {
    tx.sql()
        .prepare_cached("UPDATE outbox SET deliver_after = ?3 WHERE tenant = ?1 AND id = ?2")?
        .execute(params![tenant, id, until])?;
    Ok(())
}

const ACKNOWLEDGE: &str =
    "UPDATE outbox SET acked_at = ?3, payload = json_remove(payload, '$.token', '$.personal_token')
                 WHERE tenant = ?1 AND id = ?2 AND acked_at IS NULL";
/// PostgreSQL has no `json_remove`; jsonb's `-` drops the keys (and writes
/// the same JSON value with spaces).
const ACKNOWLEDGE_PG: &str =
    "UPDATE outbox SET acked_at = ?3, payload = (payload::jsonb - 'token' - 'personal_token')::text
                 WHERE tenant = ?1 AND id = ?2 AND acked_at IS NULL";

/// The CRM carried these actions out; returns how many were pending. Their
/// link secrets are dropped: only the token id stays (so do [`cancel`] and
/// [`super::webhooks::delivered`]).
pub fn acknowledge(tx: &Tx<'_>, tenant: &str, ids: &[String], now: i64) -> Result<usize> {
    let mut n = 0;
    for id in ids {
        n += tx
            .sql()
            .prepare_cached(if tx.sql().is_postgres() {
                ACKNOWLEDGE_PG
            } else {
                ACKNOWLEDGE
            })?
            .execute(params![tenant, id, now])?;
    }
    Ok(n)
}

/// The CRM has seen these actions (it polled them, or a webhook delivery
/// was attempted): withdrawing one later tells the CRM with a `cancel` action.
pub fn mark_offered(conn: &Conn, tenant: &str, ids: &[&str], now: i64) -> Result<()> {
    for id in ids {
        conn.sql().prepare_cached(
            "UPDATE outbox SET offered_at = ?3 WHERE tenant = ?1 AND id = ?2 AND offered_at IS NULL",
        )?
        .execute(params![tenant, id, now])?;
    }
    Ok(())
}

/// An action still waiting for delivery, as withdrawing it needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    pub id: String,
    /// The purpose of the row (for a message: the first it asks about).
    pub purpose: String,
    pub kind: String,
    /// Every purpose it concerns: a message or task may span several.
    pub purposes: Vec<String>,
    /// The CRM may have seen it (polled, or a delivery was attempted).
    pub seen: bool,
    token_id: Value,
}

/// Whether the contact has an action of `kind` waiting for delivery other
/// than `except`: the cheap question a sweep asks before reading them (most
/// contacts have none but the message just queued).
pub fn any_pending(
    tx: &Tx<'_>,
    tenant: &str,
    contact: &str,
    kind: &str,
    except: Option<&str>,
) -> Result<bool> {
    tx.sql()
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM outbox INDEXED BY outbox_pending_by_contact
             WHERE tenant = ?1 AND contact = ?2 AND acked_at IS NULL AND kind = ?3
               AND id IS NOT ?4)",
        )?
        .query_row(params![tenant, contact, kind, except], |r| r.get(0))
        .map_err(Error::from)
}

/// Whether the contact has any action waiting for delivery.
pub fn any_waiting(tx: &Tx<'_>, tenant: &str, contact: &str) -> Result<bool> {
    tx.sql()
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM outbox INDEXED BY outbox_pending_by_contact
             WHERE tenant = ?1 AND contact = ?2 AND acked_at IS NULL)",
        )?
        .query_row(params![tenant, contact], |r| r.get(0))
        .map_err(Error::from)
}

/// The contact's actions of `kind` still waiting for delivery, in order.
pub fn pending(tx: &Tx<'_>, tenant: &str, contact: &str, kind: &str) -> Result<Vec<Pending>> {
    let mut stmt = tx.sql().prepare_cached(
        "SELECT id, purpose, kind, offered_at IS NOT NULL OR attempts > 0, payload FROM outbox
         INDEXED BY outbox_pending_by_contact
         WHERE tenant = ?1 AND contact = ?2 AND acked_at IS NULL AND kind = ?3
         ORDER BY seq",
    )?;
    let rows = stmt.query_map(params![tenant, contact, kind], |r| {
        let purpose: String = r.get(1)?;
        let payload: String = r.get(4)?;
        let payload: Value = serde_json::from_str(&payload).unwrap_or(Value::Null);
        let mut purposes: Vec<String> = payload
            .get("purposes")
            .and_then(Value::as_array)
            .map(|list| {
                list.iter()
                    .filter_map(|p| p.get("purpose").and_then(Value::as_str).or(p.as_str()))
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        if purposes.is_empty() {
            purposes.push(purpose.clone());
        }
        Ok(Pending {
            id: r.get(0)?,
            purpose,
            kind: r.get(2)?,
            purposes,
            seen: r.get(3)?,
            token_id: payload.get("token_id").cloned().unwrap_or(Value::Null),
        })
    })?;
    rows.collect::<crate::store::sql::Result<_>>()
        .map_err(Error::from)
}

const CANCEL: &str = "UPDATE outbox SET acked_at = ?3, cancelled_at = ?3, cancel_reason = ?4,
                               payload = json_remove(payload, '$.token', '$.personal_token')
         WHERE tenant = ?1 AND id = ?2";
/// PostgreSQL has no `json_remove`; jsonb's `-` drops the keys.
const CANCEL_PG: &str = "UPDATE outbox SET acked_at = ?3, cancelled_at = ?3, cancel_reason = ?4,
                               payload = (payload::jsonb - 'token' - 'personal_token')::text
         WHERE tenant = ?1 AND id = ?2";

/// Withdraws a pending action before delivery, with `reason`; it then counts
/// as acknowledged, so no deliverer takes it. One the CRM may have seen gets
/// a `cancel` action after it, so that the CRM can stop it too (a letter
/// being printed, a call planned). Returns whether that notice was queued.
pub fn cancel(
    tx: &Tx<'_>,
    tenant: &str,
    pending: &Pending,
    reason: &str,
    now: i64,
) -> Result<bool> {
    tx.sql()
        .prepare_cached(if tx.sql().is_postgres() {
            CANCEL_PG
        } else {
            CANCEL
        })?
        .execute(params![tenant, pending.id, now, reason])?;
    if pending.seen {
        let contact: String = tx
            .sql()
            .prepare_cached("SELECT contact FROM outbox WHERE tenant = ?1 AND id = ?2")?
            .query_row(params![tenant, pending.id], |r| r.get(0))?;
        let notice = serde_json::json!({
            "type": "cancel",
            "cancels": pending.id,
            "cancelled_kind": pending.kind,
            "token_id": pending.token_id,
            "purposes": pending.purposes,
            "reason": reason,
        });
        let id = format!("{}-cancel", pending.id);
        insert(
            tx,
            tenant,
            &id,
            (&contact, &pending.purpose),
            "cancel",
            &notice,
            now,
        )?;
    }
    Ok(pending.seen)
}
