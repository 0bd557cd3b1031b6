//! The outbox: actions for the CRM (requests to send, tasks, cleanups), each
//! with a stable id so a receiver can de-duplicate, delivered at least once.

use rusqlite::{Connection, params};
use serde::Serialize;
use serde_json::Value;

/// One action. Field names are part of the JSON interface.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Item {
    pub id: String,
    pub seq: i64,
    pub contact: String,
    pub purpose: String,
    pub kind: String,
    pub payload: Value,
    pub created_at: i64,
    pub acked_at: Option<i64>,
}

/// The tenant's actions in order; only unacknowledged ones unless `all`.
pub fn list(
    conn: &Connection,
    tenant: &str,
    contact: Option<&str>,
    all: bool,
) -> rusqlite::Result<Vec<Item>> {
    let mut stmt = conn.prepare(
        "SELECT id, seq, contact, purpose, kind, payload, created_at, acked_at FROM outbox
         WHERE tenant = ?1 AND (?2 IS NULL OR contact = ?2) AND (?3 OR acked_at IS NULL)
         ORDER BY seq",
    )?;
    let rows = stmt.query_map(params![tenant, contact, all], |r| {
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
        })
    })?;
    rows.collect()
}
