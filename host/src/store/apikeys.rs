//! Per-tenant API keys for `klar serve`. A key is `klar_` and 40 hex digits
//! (160 random bits); klar keeps only its SHA-256 and shows the key once.

use rand::RngExt;
use rusqlite::{OptionalExtension, params};

use super::{Conn, Error, Result, Tx};

/// A key as listed; never the secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    pub id: String,
    pub tenant: String,
    pub name: String,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
}

fn hash(secret: &str) -> String {
    crate::sha256_hex(secret.trim().as_bytes())
}

fn audit(tx: &Tx<'_>, tenant: &str, kind: &str, detail: serde_json::Value, now: i64) -> Result<()> {
    crate::store::audit::append(
        tx,
        tenant,
        crate::store::audit::Entry::tenant(now, kind, &detail),
    )
    .map(|_| ())
}

/// Creates a key for `tenant`; returns the secret (shown once) and the row.
pub fn create(tx: &Tx<'_>, tenant: &str, name: &str, now: i64) -> Result<(String, ApiKey)> {
    let bytes: [u8; 20] = rand::rng().random();
    let secret = format!("klar_{}", crate::hex(&bytes));
    let id = hash(&secret)[..12].to_owned();
    tx.sql().execute(
        "INSERT INTO api_keys (id, tenant, name, hash, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![id, tenant, name, hash(&secret), now],
    )?;
    audit(
        tx,
        tenant,
        "api-key-created",
        serde_json::json!({ "id": id, "name": name }),
        now,
    )?;
    Ok((
        secret,
        ApiKey {
            id,
            tenant: tenant.to_owned(),
            name: name.to_owned(),
            created_at: now,
            revoked_at: None,
        },
    ))
}

/// Revokes a key of `tenant`; false if it has no such live key.
pub fn revoke(tx: &Tx<'_>, tenant: &str, id: &str, now: i64) -> Result<bool> {
    let changed = tx.sql().execute(
        "UPDATE api_keys SET revoked_at = ?3 WHERE tenant = ?1 AND id = ?2 AND revoked_at IS NULL",
        params![tenant, id, now],
    )?;
    if changed > 0 {
        audit(
            tx,
            tenant,
            "api-key-revoked",
            serde_json::json!({ "id": id }),
            now,
        )?;
    }
    Ok(changed > 0)
}

pub fn list(conn: &Conn, tenant: &str) -> Result<Vec<ApiKey>> {
    let mut stmt = conn.sql().prepare(
        "SELECT id, tenant, name, created_at, revoked_at FROM api_keys WHERE tenant = ?1 ORDER BY created_at, id",
    )?;
    let rows = stmt.query_map([tenant], |r| {
        Ok(ApiKey {
            id: r.get(0)?,
            tenant: r.get(1)?,
            name: r.get(2)?,
            created_at: r.get(3)?,
            revoked_at: r.get(4)?,
        })
    })?;
    rows.collect::<rusqlite::Result<_>>().map_err(Error::from)
}

/// The tenant a live key belongs to.
pub fn tenant_of(conn: &Conn, secret: &str) -> Result<Option<String>> {
    conn.sql()
        .prepare_cached("SELECT tenant FROM api_keys WHERE hash = ?1 AND revoked_at IS NULL")?
        .query_row([hash(secret)], |r| r.get(0))
        .optional()
        .map_err(Error::from)
}
