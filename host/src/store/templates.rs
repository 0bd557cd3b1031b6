//! A tenant's own mail and page templates, which replace klar's built-in
//! ones by name; the caller checks a template before it stores it.

use super::sql::{OptionalExtension, params};

use super::{Conn, Error, Result, Tx};

/// One stored template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    pub name: String,
    pub source: String,
    pub sha256: String,
    pub author: String,
    pub message: String,
    pub created_at: i64,
}

fn row(r: &crate::store::sql::Row<'_>) -> crate::store::sql::Result<Template> {
    Ok(Template {
        name: r.get(0)?,
        source: r.get(1)?,
        sha256: r.get(2)?,
        author: r.get(3)?,
        message: r.get(4)?,
        created_at: r.get(5)?,
    })
}

/// The tenant's own template of this name, if it has one.
pub fn get(conn: &Conn, tenant: &str, name: &str) -> Result<Option<Template>> {
    conn.sql()
        .prepare_cached(
            "SELECT name, source, sha256, author, message, created_at FROM templates
             WHERE tenant = ?1 AND name = ?2",
        )?
        .query_row(params![tenant, name], row)
        .optional()
        .map_err(Error::from)
}

/// Every template the tenant has of its own, by name.
pub fn list(conn: &Conn, tenant: &str) -> Result<Vec<Template>> {
    let mut stmt = conn.sql().prepare(
        "SELECT name, source, sha256, author, message, created_at FROM templates
         WHERE tenant = ?1 ORDER BY name",
    )?;
    let rows = stmt.query_map([tenant], row)?;
    rows.collect::<crate::store::sql::Result<_>>()
        .map_err(Error::from)
}

/// Stores (or replaces) the tenant's template of this name.
pub fn set(tx: &Tx<'_>, tenant: &str, template: &Template) -> Result<()> {
    tx.sql().execute(
        "INSERT INTO templates (tenant, name, source, sha256, author, message, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT (tenant, name) DO UPDATE SET source = excluded.source,
             sha256 = excluded.sha256, author = excluded.author,
             message = excluded.message, created_at = excluded.created_at",
        params![
            tenant,
            template.name,
            template.source,
            template.sha256,
            template.author,
            template.message,
            template.created_at
        ],
    )?;
    Ok(())
}

/// Removes the tenant's template of this name: the built-in one applies
/// again. False if it had none.
pub fn remove(tx: &Tx<'_>, tenant: &str, name: &str) -> Result<bool> {
    Ok(tx.sql().execute(
        "DELETE FROM templates WHERE tenant = ?1 AND name = ?2",
        params![tenant, name],
    )? > 0)
}
