//! The outbox: actions for the CRM (requests to send, tasks, cleanups), each
//! with a stable id so a receiver can de-duplicate, delivered at least once.

use rusqlite::{Connection, params};
use serde::Serialize;
use serde_json::Value;

/// One action. Field names are part of the JSON interface.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
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
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parked_at: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
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
    pub limit: Option<usize>,
}

/// The columns [`read`] expects, in order.
pub(crate) const COLUMNS: &str = "id, seq, contact, purpose, kind, payload, created_at, acked_at, attempts, parked_at, last_error";

pub(crate) fn read(r: &rusqlite::Row<'_>) -> rusqlite::Result<Item> {
    let payload: String = r.get(5)?;
    Ok(Item {
        id: r.get(0)?,
        seq: r.get(1)?,
        contact: r.get(2)?,
        purpose: r.get(3)?,
        kind: r.get(4)?,
        payload: serde_json::from_str(&payload).unwrap_or(Value::String(payload)),
        created_at: r.get(6)?,
        acked_at: r.get(7)?,
        attempts: r.get(8)?,
        parked_at: r.get(9)?,
        last_error: r.get(10)?,
    })
}

/// The tenant's actions in order, as `filter` says.
pub fn list(conn: &Connection, tenant: &str, filter: &Filter<'_>) -> rusqlite::Result<Vec<Item>> {
    let limit = filter
        .limit
        .map_or(-1, |l| i64::try_from(l).unwrap_or(i64::MAX));
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM outbox
         WHERE tenant = ?1 AND seq > ?4 AND (?2 IS NULL OR contact = ?2) AND (?3 OR acked_at IS NULL)
           AND (NOT ?6 OR parked_at IS NOT NULL)
           AND NOT (?7 AND kind = 'send-request' AND json_extract(payload, '$.channel') IS 'email')
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
            filter.without_mails
        ],
        read,
    )?;
    rows.collect()
}

/// `payload.response_url`: the link the contact clicks, for a request that
/// carries a token, ready for the sender's mail.
pub fn add_response_url(item: &mut Item, public_url: &str) {
    let url = item
        .payload
        .get("token")
        .and_then(Value::as_str)
        .map(|t| format!("{public_url}/r/{t}"));
    if let (Some(url), Some(object)) = (url, item.payload.as_object_mut()) {
        object.insert("response_url".to_owned(), Value::String(url));
    }
}
