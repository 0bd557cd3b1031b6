//! Evidence: the proof behind a case — each request sent (channel, attempt,
//! link, text version) and each answer (time, IP, user agent, token, text
//! version and its SHA-256).
//!
//! Evidence is what lets a company show, years later, that someone agreed or
//! said no. So it is kept when the person is erased, for as long as the
//! policy's `evidence_retention_days` says (three years by default); `klar
//! tick` then deletes it and writes an audit row saying so.

use super::sql::params;

use super::{Conn, Error, Result, Tx};
use serde_json::Value;

/// One stored piece of evidence.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub id: i64,
    pub contact: String,
    pub purpose: String,
    /// "request" or "response".
    pub kind: String,
    pub at: i64,
    pub detail: Value,
    /// When it will be deleted; none while the person is not erased.
    pub retain_until: Option<i64>,
}

pub fn add(
    tx: &Tx<'_>,
    tenant: &str,
    contact: &str,
    purpose: &str,
    kind: &str,
    at: i64,
    detail: &impl serde::Serialize,
) -> Result<i64> {
    let detail = serde_json::to_string(detail).unwrap_or_default();
    tx.sql()
        .prepare_cached(
            "INSERT INTO evidence (tenant, contact, purpose, kind, at, detail)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6) RETURNING id",
        )?
        .query_row(params![tenant, contact, purpose, kind, at, detail], |r| {
            r.get(0)
        })
        .map_err(Error::from)
}

/// A contact's evidence, oldest first.
pub fn for_contact(conn: &Conn, tenant: &str, contact: &str) -> Result<Vec<Record>> {
    let mut stmt = conn.sql().prepare(
        "SELECT id, contact, purpose, kind, at, detail, retain_until FROM evidence
         WHERE tenant = ?1 AND contact = ?2 ORDER BY at, id",
    )?;
    let rows = stmt.query_map(params![tenant, contact], |r| {
        let detail: String = r.get(5)?;
        Ok(Record {
            id: r.get(0)?,
            contact: r.get(1)?,
            purpose: r.get(2)?,
            kind: r.get(3)?,
            at: r.get(4)?,
            detail: serde_json::from_str(&detail).unwrap_or(Value::String(detail)),
            retain_until: r.get(6)?,
        })
    })?;
    rows.collect::<crate::store::sql::Result<_>>()
        .map_err(Error::from)
}

/// Sets when the evidence of a purged case is deleted, as its policy decided.
pub fn start_retention(
    tx: &Tx<'_>,
    tenant: &str,
    (contact, purpose): (&str, &str),
    until: i64,
) -> Result<usize> {
    tx.sql()
        .prepare_cached(
            "UPDATE evidence SET retain_until = ?4
         WHERE tenant = ?1 AND contact = ?2 AND purpose = ?3 AND retain_until IS NULL",
        )?
        .execute(params![tenant, contact, purpose, until])
        .map_err(Error::from)
}

/// Until when the contact's evidence is kept, if its retention started.
pub fn retained_until(conn: &Conn, tenant: &str, contact: &str) -> Result<Option<i64>> {
    conn.sql()
        .prepare_cached(
            "SELECT MAX(retain_until) FROM evidence WHERE tenant = ?1 AND contact = ?2",
        )?
        .query_row(params![tenant, contact], |r| r.get(0))
        .map_err(Error::from)
}

/// Deletes the tenant's evidence whose retention ended by `now`; returns the
/// number of rows deleted per contact.
pub fn expire(tx: &Tx<'_>, tenant: &str, now: i64) -> Result<Vec<(String, i64)>> {
    let expired: Vec<(String, i64)> = {
        let mut stmt = tx.sql().prepare(
            "SELECT contact, COUNT(*) FROM evidence
             WHERE retain_until IS NOT NULL AND retain_until <= ?2 AND tenant = ?1
             GROUP BY contact ORDER BY contact",
        )?;
        let rows = stmt.query_map(params![tenant, now], |r| Ok((r.get(0)?, r.get(1)?)))?;
        rows.collect::<crate::store::sql::Result<_>>()?
    };
    if !expired.is_empty() {
        tx.sql().prepare_cached("DELETE FROM evidence WHERE retain_until IS NOT NULL AND retain_until <= ?2 AND tenant = ?1")?
        .execute(params![tenant, now],
        )?;
    }
    Ok(expired)
}
