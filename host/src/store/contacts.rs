//! Contacts, their cases, and the tombstones of erased contacts.

use super::sql::{OptionalExtension, params};

use super::{Conn, Error, Result, Tx};
use sha2::{Digest, Sha256};

use super::audit::{self, Entry};
use crate::plugin::{Case, Contact};

/// What an upsert did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upsert {
    Added,
    Updated,
    Unchanged,
}

/// The normal form an address is compared and hashed in.
pub fn normalise(kind: &str, value: &str) -> String {
    match kind {
        "phone" => value.chars().filter(|c| c.is_ascii_digit()).collect(),
        _ => value.trim().to_lowercase(),
    }
}

fn salt(conn: &Conn, tenant: &str) -> Result<Vec<u8>> {
    conn.sql()
        .prepare_cached("SELECT salt FROM tenants WHERE id = ?1")?
        .query_row([tenant], |r| r.get(0))
        .map_err(Error::from)
}

/// The salted hash kept of an erased address.
pub fn tombstone_hash(salt: &[u8], kind: &str, value: &str) -> String {
    let mut h = Sha256::new();
    h.update(salt);
    h.update(kind.as_bytes());
    h.update([0]);
    h.update(normalise(kind, value).as_bytes());
    crate::hex(&h.finalize())
}

/// When the address was erased, if it was.
pub fn erased_at(conn: &Conn, tenant: &str, kind: &str, value: &str) -> Result<Option<i64>> {
    if normalise(kind, value).is_empty() {
        return Ok(None);
    }
    let hash = tombstone_hash(&salt(conn, tenant)?, kind, value);
    conn.sql()
        .prepare_cached(
            "SELECT created_at FROM tombstones WHERE tenant = ?1 AND kind = ?2 AND hash = ?3",
        )?
        .query_row(params![tenant, kind, hash], |r| r.get(0))
        .optional()
        .map_err(Error::from)
}

/// The columns [`read`] expects, in order, for a query over `contacts k`.
pub(crate) const COLUMNS: &str = "k.id, k.first_name, k.last_name, k.email, k.phone, k.owner, \
     k.source, k.language, k.created_at, k.attributes";

/// A contact from [`COLUMNS`] starting at column `at` of a row.
pub(crate) fn read(
    r: &crate::store::sql::Row<'_>,
    at: usize,
) -> crate::store::sql::Result<Contact> {
    let attributes: String = r.get(at + 9)?;
    Ok(Contact {
        id: r.get(at)?,
        first_name: r.get(at + 1)?,
        last_name: r.get(at + 2)?,
        email: r.get(at + 3)?,
        phone: r.get(at + 4)?,
        owner: r.get(at + 5)?,
        source: r.get(at + 6)?,
        language: r.get(at + 7)?,
        created_at: chrono::DateTime::from_timestamp(r.get(at + 8)?, 0).unwrap_or_default(),
        attributes: serde_json::from_str(&attributes).unwrap_or_default(),
    })
}

pub fn get(conn: &Conn, tenant: &str, id: &str) -> Result<Option<Contact>> {
    conn.sql()
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM contacts k WHERE k.tenant = ?1 AND k.id = ?2"
        ))?
        .query_row(params![tenant, id], |r| read(r, 0))
        .optional()
        .map_err(Error::from)
}

/// A contact with when it was erased and when it was last sent a message.
pub type WithState = (Contact, Option<i64>, Option<i64>);

/// A contact as [`WithState`].
pub fn get_with_state(conn: &Conn, tenant: &str, id: &str) -> Result<Option<WithState>> {
    conn.sql()
        .prepare_cached(&format!(
            "SELECT {COLUMNS}, k.erased_at, k.last_message_at FROM contacts k
         WHERE k.tenant = ?1 AND k.id = ?2"
        ))?
        .query_row(params![tenant, id], |r| {
            Ok((read(r, 0)?, r.get(10)?, r.get(11)?))
        })
        .optional()
        .map_err(Error::from)
}

/// A message went to the contact now; the next one waits (see
/// `engine::next_message_at`).
pub fn set_last_message(tx: &Tx<'_>, tenant: &str, id: &str, now: i64) -> Result<()> {
    tx.sql()
        .prepare_cached("UPDATE contacts SET last_message_at = ?3 WHERE tenant = ?1 AND id = ?2")?
        .execute(params![tenant, id, now])?;
    Ok(())
}

/// Adds or updates a contact (by its CRM id), auditing any change.
pub fn upsert(tx: &Tx<'_>, tenant: &str, contact: &Contact, now: i64) -> Result<Upsert> {
    let before = get(tx, tenant, &contact.id)?;
    if before.as_ref() == Some(contact) {
        return Ok(Upsert::Unchanged);
    }
    let attributes = serde_json::to_string(&contact.attributes).unwrap_or_else(|_| "{}".to_owned());
    tx.sql().prepare_cached("INSERT INTO contacts (tenant, id, first_name, last_name, email, phone, owner, source, language, created_at, attributes)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
         ON CONFLICT (tenant, id) DO UPDATE SET
           first_name = excluded.first_name, last_name = excluded.last_name, email = excluded.email,
           phone = excluded.phone, owner = excluded.owner, source = excluded.source,
           language = excluded.language, attributes = excluded.attributes")?
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
            attributes
        ],
    )?;
    let (kind, result) = match before {
        None => ("contact-added", Upsert::Added),
        Some(_) => ("contact-updated", Upsert::Updated),
    };
    audit::append(
        tx,
        tenant,
        Entry {
            at: now,
            contact: Some(contact.id.clone()),
            purpose: None,
            kind: kind.to_owned(),
            detail: serde_json::json!({ "source": contact.source, "owner": contact.owner })
                .to_string(),
            policy_sha256: None,
        },
    )?;
    Ok(result)
}

/// Opens a case for every purpose of the tenant that the contact has none for.
/// A new case is `unclarified` and due at once. Returns how many were opened.
pub fn open_cases(tx: &Tx<'_>, tenant: &str, contact: &str, now: i64) -> Result<usize> {
    let purposes: Vec<String> = {
        let mut stmt = tx.sql().prepare_cached(
            "SELECT p.id FROM purposes p
             WHERE p.tenant = ?1
               AND NOT EXISTS (SELECT 1 FROM cases c WHERE c.tenant = ?1 AND c.contact = ?2 AND c.purpose = p.id)
             ORDER BY p.id",
        )?;
        let rows = stmt.query_map(params![tenant, contact], |r| r.get(0))?;
        rows.collect::<crate::store::sql::Result<_>>()?
    };
    for purpose in &purposes {
        let case = Case::new(purpose.clone());
        let body = serde_json::to_string(&case).unwrap_or_default();
        tx.sql().prepare_cached(
            "INSERT INTO cases (tenant, contact, purpose, state, band, body, due_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)",
        )?
        .execute(params![
            tenant,
            contact,
            purpose,
            case.state.as_str(),
            case.state.band().as_str(),
            body,
            now
        ])?;
        audit::append(
            tx,
            tenant,
            Entry {
                at: now,
                contact: Some(contact.to_owned()),
                purpose: Some(purpose.clone()),
                kind: "case-opened".to_owned(),
                detail: serde_json::json!({ "state": case.state }).to_string(),
                policy_sha256: None,
            },
        )?;
    }
    Ok(purposes.len())
}

/// A contact's names and e-mail address, for a mail to them.
pub fn addressee(
    conn: &Conn,
    tenant: &str,
    id: &str,
) -> Result<Option<(String, String, Option<String>)>> {
    conn.sql()
        .prepare_cached(
            "SELECT first_name, last_name, email FROM contacts WHERE tenant = ?1 AND id = ?2",
        )?
        .query_row(params![tenant, id], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .optional()
        .map_err(Error::from)
}

/// A contact as stored, with its times in Unix seconds: `first_name`,
/// `last_name`, `email`, `phone`, `owner`, `source`, `language`,
/// `created_at`, `erased_at`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub id: String,
    pub first_name: String,
    pub last_name: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub owner: String,
    pub source: String,
    pub language: String,
    pub created_at: i64,
    pub erased_at: Option<i64>,
}

/// The contact as stored (blank once erased), for the evidence bundle.
pub fn stored(conn: &Conn, tenant: &str, id: &str) -> Result<Option<Stored>> {
    conn.sql().prepare_cached(
        "SELECT id, first_name, last_name, email, phone, owner, source, language, created_at, erased_at
         FROM contacts WHERE tenant = ?1 AND id = ?2",
    )?
    .query_row(params![tenant, id], |r| {
        Ok(Stored {
            id: r.get(0)?,
            first_name: r.get(1)?,
            last_name: r.get(2)?,
            email: r.get(3)?,
            phone: r.get(4)?,
            owner: r.get(5)?,
            source: r.get(6)?,
            language: r.get(7)?,
            created_at: r.get(8)?,
            erased_at: r.get(9)?,
        })
    })
    .optional()
    .map_err(Error::from)
}

pub fn count(conn: &Conn, tenant: &str) -> Result<i64> {
    conn.sql()
        .prepare_cached("SELECT COUNT(*) FROM contacts WHERE tenant = ?1")?
        .query_row([tenant], |r| r.get(0))
        .map_err(Error::from)
}

pub fn count_cases(conn: &Conn, tenant: &str) -> Result<i64> {
    conn.sql()
        .prepare_cached("SELECT COUNT(*) FROM cases WHERE tenant = ?1")?
        .query_row([tenant], |r| r.get(0))
        .map_err(Error::from)
}

/// Records that an address was erased, so it cannot be imported again. Only a
/// salted hash is kept.
pub fn add_tombstone(tx: &Tx<'_>, tenant: &str, kind: &str, value: &str, now: i64) -> Result<()> {
    let hash = tombstone_hash(&salt(tx, tenant)?, kind, value);
    tx.sql()
        .prepare_cached(
            "INSERT INTO tombstones (tenant, kind, hash, created_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT DO NOTHING",
        )?
        .execute(params![tenant, kind, hash, now])?;
    Ok(())
}

/// Erases a contact's personal data in klar's own store after its
/// `contact-data` case was purged: names, addresses and attributes are blanked
/// (`delete` also blanks the source), a salted hash of each address is kept as
/// a tombstone so that a re-import is refused, and the CRM id stays so that the
/// evidence and the audit log still refer to something. Returns whether there
/// was anything left to erase.
pub fn erase(
    tx: &Tx<'_>,
    tenant: &str,
    id: &str,
    mode: crate::plugin::CleanupMode,
    now: i64,
) -> Result<bool> {
    let Some(contact) = get(tx, tenant, id)? else {
        return Ok(false);
    };
    for (kind, value) in [("email", &contact.email), ("phone", &contact.phone)] {
        if let Some(value) = value {
            add_tombstone(tx, tenant, kind, value, now)?;
        }
    }
    let delete = mode == crate::plugin::CleanupMode::Delete;
    tx.sql()
        .prepare_cached(
            "UPDATE contacts SET first_name = '', last_name = '', email = NULL, phone = NULL,
             attributes = '{}', source = CASE WHEN ?3 THEN '' ELSE source END, erased_at = ?4
         WHERE tenant = ?1 AND id = ?2",
        )?
        .execute(params![tenant, id, delete, now])?;
    audit::append(
        tx,
        tenant,
        Entry {
            at: now,
            contact: Some(id.to_owned()),
            purpose: None,
            kind: "contact-erased".to_owned(),
            detail: serde_json::json!({ "mode": mode.as_str() }).to_string(),
            policy_sha256: None,
        },
    )?;
    Ok(true)
}
