//! Per-tenant API keys for `klar serve`. A key is `klar_` and 40 hex digits
//! (160 random bits); klar keeps only its SHA-256 and shows the key once.

use super::sql::{OptionalExtension, params};
use rand::RngExt;

use super::{Conn, Error, Result, Tx};

/// What a key may do. An `admin` key may do everything a `crm` key may.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scope {
    /// Contacts, events, "may I use?", cases and the outbox: what a CRM
    /// integration needs.
    Crm,
    /// Also keys, the webhook and the policy.
    Admin,
}

impl Scope {
    pub const ALL: [Scope; 2] = [Scope::Crm, Scope::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Crm => "crm",
            Scope::Admin => "admin",
        }
    }
}

impl std::str::FromStr for Scope {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Scope, String> {
        Scope::ALL
            .into_iter()
            .find(|scope| scope.as_str() == s)
            .ok_or_else(|| format!("unknown scope {s:?}; use crm or admin"))
    }
}

/// A key as listed; never the secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    pub id: String,
    pub tenant: String,
    pub name: String,
    pub scope: Scope,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
}

fn scope_of(text: &str) -> crate::store::sql::Result<Scope> {
    text.parse()
        .map_err(|e: String| crate::store::sql::Error::conversion(0, e))
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
pub fn create(
    tx: &Tx<'_>,
    tenant: &str,
    (name, scope): (&str, Scope),
    now: i64,
) -> Result<(String, ApiKey)> {
    let bytes: [u8; 20] = rand::rng().random();
    let secret = format!("klar_{}", crate::hex(&bytes));
    let id = hash(&secret)[..12].to_owned();
    tx.sql().execute(
        "INSERT INTO api_keys (id, tenant, name, hash, created_at, scope)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![id, tenant, name, hash(&secret), now, scope.as_str()],
    )?;
    audit(
        tx,
        tenant,
        "api-key-created",
        serde_json::json!({ "id": id, "name": name, "scope": scope.as_str() }),
        now,
    )?;
    Ok((
        secret,
        ApiKey {
            id,
            tenant: tenant.to_owned(),
            name: name.to_owned(),
            scope,
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
        "SELECT id, tenant, name, created_at, revoked_at, scope FROM api_keys
         WHERE tenant = ?1 ORDER BY created_at, id",
    )?;
    let rows = stmt.query_map([tenant], |r| {
        Ok(ApiKey {
            id: r.get(0)?,
            tenant: r.get(1)?,
            name: r.get(2)?,
            scope: scope_of(&r.get::<_, String>(5)?)?,
            created_at: r.get(3)?,
            revoked_at: r.get(4)?,
        })
    })?;
    rows.collect::<crate::store::sql::Result<_>>()
        .map_err(Error::from)
}

/// The tenant a live key belongs to, and the key's scope.
pub fn tenant_of(conn: &Conn, secret: &str) -> Result<Option<(String, Scope)>> {
    conn.sql()
        .prepare_cached(
            "SELECT tenant, scope FROM api_keys WHERE hash = ?1 AND revoked_at IS NULL",
        )?
        .query_row([hash(secret)], |r| {
            Ok((r.get(0)?, scope_of(&r.get::<_, String>(1)?)?))
        })
        .optional()
        .map_err(Error::from)
}
