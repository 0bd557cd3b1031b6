//! Contacts coming in, from a CSV import or the API: an erased person's
//! address cannot come back, and a contact is stored together with a case
//! for each of the tenant's purposes.

use crate::store::Conn;
use chrono::{DateTime, Utc};

use crate::plugin::Contact;
use crate::store::contacts::{self, Upsert};
use crate::store::{Store, StoreError};

/// The contact's e-mail address or phone number belongs to a person klar
/// erased: which one, and the day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErasedAddress {
    /// `email` or `phone`.
    pub kind: &'static str,
    pub erased_on: DateTime<Utc>,
}

impl ErasedAddress {
    /// The erasure day as people read it, e.g. `2026-12-01`.
    pub fn day(&self) -> String {
        self.erased_on.format("%Y-%m-%d").to_string()
    }
}

/// Whether `contact` would bring back an erased person (checked against the
/// salted hashes kept at erasure).
pub fn erased_address(
    conn: &Conn,
    tenant: &str,
    contact: &Contact,
) -> crate::store::Result<Option<ErasedAddress>> {
    for (kind, value) in [("email", &contact.email), ("phone", &contact.phone)] {
        if let Some(value) = value
            && let Some(at) = contacts::erased_at(conn, tenant, kind, value)?
        {
            return Ok(Some(ErasedAddress {
                kind,
                erased_on: DateTime::from_timestamp(at, 0).unwrap_or_default(),
            }));
        }
    }
    Ok(None)
}

/// What storing one contact did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stored {
    pub upsert: Upsert,
    /// Cases opened for purposes the contact had none for.
    pub cases_opened: usize,
}

/// Stores `list` in one transaction, all or nothing: each contact added or
/// updated, then a case opened for every purpose it has none for.
/// `progress` hears of each contact stored.
pub fn store_all<'a>(
    store: &mut Store,
    tenant: &str,
    list: impl IntoIterator<Item = &'a Contact>,
    now: i64,
    progress: &mut dyn FnMut(usize),
) -> Result<Vec<Stored>, StoreError> {
    store.transaction(|tx| {
        let mut out = Vec::new();
        for contact in list {
            let upsert = contacts::upsert(tx, tenant, contact, now)?;
            let cases_opened = contacts::open_cases(tx, tenant, &contact.id, now)?;
            out.push(Stored {
                upsert,
                cases_opened,
            });
            progress(1);
        }
        Ok::<_, StoreError>(out)
    })
}
