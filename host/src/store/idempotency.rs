//! Idempotency keys of the API: the first answer to a request, kept so that a
//! retry with the same key gets that answer instead of applying the event
//! again. The key is read and written in the transaction of the steps it
//! guards (see `app::events`).

use super::sql::{OptionalExtension, params};

use super::{Conn, Error, Result, Tx};

/// The request a key was first used for, and the answer it got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answered {
    pub request: String,
    pub status: u16,
    pub response: String,
}

/// The first answer to `key`, read in the transaction that will apply the
/// request if there is none. Requests with the same key wait here for each
/// other: on SQLite the write lock does that already; on PostgreSQL, where
/// two klar instances may take the same retried request at once, a
/// transaction-scoped advisory lock on the key does, so that the second
/// reads the first's answer instead of applying the event again.
pub fn get_for_update(tx: &Tx<'_>, tenant: &str, key: &str) -> Result<Option<Answered>> {
    if tx.sql().is_postgres() {
        tx.sql()
            .prepare_cached("SELECT pg_advisory_xact_lock(?1, hashtext(?2 || '/' || ?3))")?
            .query_row(params![super::IDEMPOTENCY_LOCK, tenant, key], |_| Ok(()))?;
    }
    get(tx, tenant, key)
}

pub fn get(conn: &Conn, tenant: &str, key: &str) -> Result<Option<Answered>> {
    conn.sql()
        .prepare_cached(
            "SELECT request, status, response FROM idempotency WHERE tenant = ?1 AND key = ?2",
        )?
        .query_row(params![tenant, key], |r| {
            Ok(Answered {
                request: r.get(0)?,
                status: r.get(1)?,
                response: r.get(2)?,
            })
        })
        .optional()
        .map_err(Error::from)
}

pub fn put(tx: &Tx<'_>, tenant: &str, key: &str, answered: &Answered, now: i64) -> Result<()> {
    tx.sql()
        .prepare_cached(
            "INSERT INTO idempotency (tenant, key, request, status, response, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?
        .execute(params![
            tenant,
            key,
            answered.request,
            answered.status,
            answered.response,
            now
        ])?;
    Ok(())
}
