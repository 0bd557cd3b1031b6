//! Bulk imports: the contacts an import adds, written in one transaction
//! with one audit row for all of them (see migration 012 and `merkle.rs`).

use super::sql::{OptionalExtension, params};

use super::{Conn, Error, Result, Tx};
use crate::plugin::{Case, Contact};

/// Starts an import of `tenant`: its number, 1, 2, … per tenant.
pub fn begin(tx: &Tx<'_>, tenant: &str) -> Result<i64> {
    let n: i64 = tx
        .sql()
        .prepare_cached("SELECT COALESCE(MAX(n), 0) + 1 FROM imports WHERE tenant = ?1")?
        .query_row([tenant], |r| r.get(0))?;
    tx.sql()
        .prepare_cached("INSERT INTO imports (tenant, n) VALUES (?1, ?2)")?
        .execute(params![tenant, n])?;
    Ok(n)
}

/// Adds `contact` as the `pos`-th contact (from 0) import `n` brings, unless
/// the tenant has a contact with its id: then nothing is written and the
/// answer is false.
pub fn add_contact(
    tx: &Tx<'_>,
    tenant: &str,
    contact: &Contact,
    (n, pos): (i64, i64),
) -> Result<bool> {
    let attributes = serde_json::to_string(&contact.attributes).unwrap_or_else(|_| "{}".to_owned());
    let added = tx
        .sql()
        .prepare_cached(
            "INSERT INTO contacts (tenant, id, first_name, last_name, email, phone, owner, source,
                                   language, created_at, attributes, imported_in, import_pos)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)
             ON CONFLICT (tenant, id) DO NOTHING",
        )?
        .execute(params![
            tenant,
            contact.id,
            contact.first_name,
            contact.last_name,
            contact.email,
            contact.phone,
            contact.owner,
            contact.source,
            contact.language,
            contact.created_at.timestamp(),
            attributes,
            n,
            pos
        ])?;
    Ok(added == 1)
}

/// Opens a case for every purpose of the tenant for each contact import `n`
/// added (new contacts have none): `unclarified` and due at `now`, in one
/// statement per purpose, in id order (the order of the cases' key: about
/// half the time of file order, measured on 200,000 shuffled ids). Returns
/// how many were opened.
pub fn open_cases(tx: &Tx<'_>, tenant: &str, n: i64, now: i64) -> Result<usize> {
    let mut opened = 0;
    for (purpose, _) in super::tenants::purposes(tx, tenant)? {
        let case = Case::new(purpose.clone());
        let body = serde_json::to_string(&case).unwrap_or_default();
        opened += tx
            .sql()
            .prepare_cached(
                "INSERT INTO cases (tenant, contact, purpose, state, band, body, due_at, updated_at)
                 SELECT ?1, id, ?2, ?3, ?4, ?5, ?6, ?6 FROM contacts INDEXED BY contacts_import
                 WHERE tenant = ?1 AND imported_in = ?7
                 ORDER BY id",
            )?
            .execute(params![
                tenant,
                purpose,
                case.state.as_str(),
                case.state.band().as_str(),
                body,
                now,
                n
            ])?;
    }
    Ok(opened)
}

/// Ends import `n`: its audit row.
pub fn finish(tx: &Tx<'_>, tenant: &str, n: i64, audit_seq: i64) -> Result<()> {
    tx.sql()
        .prepare_cached("UPDATE imports SET audit_seq = ?3 WHERE tenant = ?1 AND n = ?2")?
        .execute(params![tenant, n, audit_seq])?;
    Ok(())
}

/// How a contact arrived through an import: the import's number, its audit
/// row, and the contact's place among the ids it added.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arrival {
    pub import: i64,
    pub audit_seq: i64,
    pub position: i64,
}

/// The import that added `contact`, if one did.
pub fn arrival(conn: &Conn, tenant: &str, contact: &str) -> Result<Option<Arrival>> {
    conn.sql()
        .prepare_cached(
            "SELECT k.imported_in, i.audit_seq, k.import_pos FROM contacts k
             JOIN imports i ON i.tenant = k.tenant AND i.n = k.imported_in
             WHERE k.tenant = ?1 AND k.id = ?2 AND i.audit_seq IS NOT NULL",
        )?
        .query_row(params![tenant, contact], |r| {
            Ok(Arrival {
                import: r.get(0)?,
                audit_seq: r.get(1)?,
                position: r.get(2)?,
            })
        })
        .optional()
        .map_err(Error::from)
}

/// Calls `each` with the ids import `n` added, in file order: what its
/// Merkle tree is built from.
pub fn added_ids(conn: &Conn, tenant: &str, n: i64, each: &mut dyn FnMut(&str)) -> Result<()> {
    let mut stmt = conn.sql().prepare_cached(
        "SELECT id FROM contacts INDEXED BY contacts_import
         WHERE tenant = ?1 AND imported_in = ?2 ORDER BY import_pos",
    )?;
    let mut rows = stmt.query(params![tenant, n])?;
    while let Some(row) = rows.next()? {
        each(row.get_ref(0)?.as_str()?);
    }
    Ok(())
}

/// Whether any address of the tenant was erased: only then does an import
/// check each row against the tombstones.
pub fn any_tombstone(conn: &Conn, tenant: &str) -> Result<bool> {
    conn.sql()
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM tombstones WHERE tenant = ?1)")?
        .query_row([tenant], |r| r.get(0))
        .map_err(Error::from)
}
