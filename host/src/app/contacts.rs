//! Contacts coming in, from a CSV import or the API: an erased person's
//! address cannot come back, and a contact is stored together with a case
//! for each of the tenant's purposes.

use crate::store::Conn;
use chrono::{DateTime, Utc};

use crate::plugin::Contact;
use crate::store::contacts::{self, Upsert};
use crate::store::{Store, StoreError};

/// The limits of a contact's fields, for the import and the API alike. They
/// are generous for real data and keep out what is not: a megabyte of owner,
/// 100,000 attributes, an id like `../../x` or one with a NUL byte.
pub mod limits {
    pub const ID: usize = 200;
    pub const NAME: usize = 200;
    pub const OWNER: usize = 200;
    pub const SOURCE: usize = 100;
    pub const EMAIL: usize = 254;
    pub const PHONE: usize = 50;
    pub const LANGUAGE: usize = 16;
    pub const ATTRIBUTES: usize = 100;
    pub const ATTRIBUTE_NAME: usize = 64;
    pub const ATTRIBUTE_VALUE: usize = 1_000;
}

/// Why a contact id is not one: empty, too long, a control character, a
/// slash or backslash, or blanks around it.
pub fn id_problem(id: &str) -> Option<String> {
    let bad = id.is_empty()
        || id.chars().count() > limits::ID
        || id.chars().any(|c| c.is_control() || c == '/' || c == '\\')
        || id.trim() != id;
    bad.then(|| {
        format!(
            "a contact id has 1 to {} characters, without control characters, slashes or blanks around it",
            limits::ID
        )
    })
}

/// Every problem with a contact's fields, in words (none: it may be stored).
/// Addresses and dates are checked where they are parsed.
pub fn field_problems(contact: &Contact) -> Vec<String> {
    let mut problems: Vec<String> = id_problem(&contact.id).into_iter().collect();
    let mut text = |what: &str, value: &str, max: usize| {
        if value.chars().count() > max {
            problems.push(format!("{what} is longer than {max} characters"));
        } else if value.chars().any(char::is_control) {
            problems.push(format!("{what} contains a control character"));
        }
    };
    text("first_name", &contact.first_name, limits::NAME);
    text("last_name", &contact.last_name, limits::NAME);
    text("owner", &contact.owner, limits::OWNER);
    text("source", &contact.source, limits::SOURCE);
    text(
        "email",
        contact.email.as_deref().unwrap_or_default(),
        limits::EMAIL,
    );
    text(
        "phone",
        contact.phone.as_deref().unwrap_or_default(),
        limits::PHONE,
    );
    let language = &contact.language;
    if language.len() > limits::LANGUAGE
        || !language
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-')
    {
        problems.push(format!(
            "language {language:?} is not a language tag (use de, en or en-GB)"
        ));
    }
    if contact.attributes.len() > limits::ATTRIBUTES {
        problems.push(format!(
            "{} attributes; a contact has at most {}",
            contact.attributes.len(),
            limits::ATTRIBUTES
        ));
    }
    for (name, value) in contact.attributes.iter().take(limits::ATTRIBUTES) {
        let bad_name = name.is_empty()
            || name.chars().count() > limits::ATTRIBUTE_NAME
            || name.chars().any(char::is_control);
        if bad_name {
            problems.push(format!(
                "attribute name {:?} must have 1 to {} characters and no control characters",
                name.chars().take(80).collect::<String>(),
                limits::ATTRIBUTE_NAME
            ));
        } else if value.chars().count() > limits::ATTRIBUTE_VALUE
            || value
                .chars()
                .any(|c| c.is_control() && c != '\n' && c != '\t')
        {
            problems.push(format!(
                "attribute {name:?} has more than {} characters or a control character",
                limits::ATTRIBUTE_VALUE
            ));
        }
    }
    problems
}

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
