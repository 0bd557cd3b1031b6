//! Consent texts: what a contact is asked to agree to, per purpose and
//! language, in numbered versions. Evidence names the version and its SHA-256,
//! so that years later one can show the exact words someone agreed to.
//!
//! The company's legal team sets its own texts (`klar text set`, with author
//! and message); a purpose without a text of its own gets version 1 written
//! from a standard German or English template the first time a request goes
//! out. A tenant may add texts in further languages; a contact whose
//! language has one is asked in it.

use super::sql::{OptionalExtension, params};

use super::{Conn, Error, Result, Tx};

/// The languages klar has standard texts for; any other falls back to German.
pub const LANGUAGES: [&str; 2] = ["de", "en"];

/// One version of a consent text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentText {
    pub purpose: String,
    pub version: i64,
    pub language: String,
    pub body: String,
    pub sha256: String,
    pub created_at: i64,
    /// Who wrote this version and why; `None` for klar's standard text.
    pub author: Option<String>,
    pub message: Option<String>,
    /// The text as written, with its placeholders; `None` for klar's
    /// standard text.
    pub source: Option<String>,
}

impl ConsentText {
    /// A text that is not stored (a preview, a sample): klar's standard
    /// fields, with its hash.
    pub fn unsaved(
        (purpose, language): (&str, &str),
        version: i64,
        body: String,
        created_at: i64,
    ) -> ConsentText {
        ConsentText {
            purpose: purpose.to_owned(),
            version,
            language: language.to_owned(),
            sha256: crate::sha256_hex(body.as_bytes()),
            body,
            created_at,
            author: None,
            message: None,
            source: None,
        }
    }
}

/// A version about to be stored.
#[derive(Debug, Clone, Copy, Default)]
pub struct NewText<'a> {
    /// What contacts read.
    pub body: &'a str,
    pub source: Option<&'a str>,
    pub author: Option<&'a str>,
    pub message: Option<&'a str>,
}

const COLUMNS: &str =
    "purpose, version, language, body, sha256, created_at, author, message, source";

/// `de` for German and anything klar has no text for; `en` for English.
pub fn language_for(contact_language: &str) -> &'static str {
    let primary = contact_language
        .split(['-', '_'])
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    LANGUAGES
        .iter()
        .find(|l| **l == primary)
        .copied()
        .unwrap_or("de")
}

/// klar's standard wording in `language` (German unless `en`).
pub fn standard_text(language: &str, company: &str, description: &str) -> String {
    match language {
        "en" => format!(
            "I agree that {company} stores and uses my contact details for the following \
             purpose: {description}. I can withdraw this consent at any time with effect \
             for the future, for example through my personal link or by writing to \
             {company}."
        ),
        _ => format!(
            "Ich bin damit einverstanden, dass {company} meine Kontaktdaten für folgenden \
             Zweck speichert und verwendet: {description}. Ich kann diese Einwilligung \
             jederzeit mit Wirkung für die Zukunft widerrufen, zum Beispiel über meinen \
             persönlichen Link oder formlos gegenüber {company}."
        ),
    }
}

fn row(r: &crate::store::sql::Row<'_>) -> crate::store::sql::Result<ConsentText> {
    Ok(ConsentText {
        purpose: r.get(0)?,
        version: r.get(1)?,
        language: r.get(2)?,
        body: r.get(3)?,
        sha256: r.get(4)?,
        created_at: r.get(5)?,
        author: r.get(6)?,
        message: r.get(7)?,
        source: r.get(8)?,
    })
}

/// The language a contact is asked in for a purpose: the contact's own (its
/// primary subtag) when the tenant has a text for the purpose in it, else
/// [`language_for`]'s German or English.
pub fn language_of(
    conn: &Conn,
    tenant: &str,
    purpose: &str,
    contact_language: &str,
) -> Result<String> {
    let standard = language_for(contact_language);
    let primary = contact_language
        .split(['-', '_'])
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    if primary == standard || primary.is_empty() {
        return Ok(standard.to_owned());
    }
    let own = current(conn, tenant, purpose, &primary)?.is_some();
    Ok(if own { primary } else { standard.to_owned() })
}

/// Every version of the tenant's texts (of one purpose), by purpose,
/// language and version.
pub fn list(conn: &Conn, tenant: &str, purpose: Option<&str>) -> Result<Vec<ConsentText>> {
    let mut stmt = conn.sql().prepare(&format!(
        "SELECT {COLUMNS} FROM consent_texts
         WHERE tenant = ?1 AND (CAST(?2 AS TEXT) IS NULL OR purpose = ?2)
         ORDER BY purpose, language, version"
    ))?;
    let rows = stmt.query_map(params![tenant, purpose], row)?;
    rows.collect::<crate::store::sql::Result<_>>()
        .map_err(Error::from)
}

/// The newest version of the purpose's text in `language`, if any.
pub fn current(
    conn: &Conn,
    tenant: &str,
    purpose: &str,
    language: &str,
) -> Result<Option<ConsentText>> {
    conn.sql()
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM consent_texts
         WHERE tenant = ?1 AND purpose = ?2 AND language = ?3 ORDER BY version DESC LIMIT 1"
        ))?
        .query_row(params![tenant, purpose, language], row)
        .optional()
        .map_err(Error::from)
}

/// One given version.
pub fn get(
    conn: &Conn,
    tenant: &str,
    purpose: &str,
    version: i64,
    language: &str,
) -> Result<Option<ConsentText>> {
    conn.sql()
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM consent_texts
         WHERE tenant = ?1 AND purpose = ?2 AND version = ?3 AND language = ?4"
        ))?
        .query_row(params![tenant, purpose, version, language], row)
        .optional()
        .map_err(Error::from)
}

/// Stores the next version of the purpose's text in `language`.
pub fn add(
    tx: &Tx<'_>,
    tenant: &str,
    (purpose, language): (&str, &str),
    new: &NewText<'_>,
    now: i64,
) -> Result<ConsentText> {
    tx.texts_sent.borrow_mut().clear();
    let version: i64 = tx
        .sql()
        .prepare_cached(
            "SELECT COALESCE(MAX(version), 0) + 1 FROM consent_texts
         WHERE tenant = ?1 AND purpose = ?2 AND language = ?3",
        )?
        .query_row(params![tenant, purpose, language], |r| r.get(0))?;
    let text = ConsentText {
        purpose: purpose.to_owned(),
        version,
        language: language.to_owned(),
        body: new.body.to_owned(),
        sha256: crate::sha256_hex(new.body.as_bytes()),
        created_at: now,
        author: new.author.map(str::to_owned),
        message: new.message.map(str::to_owned),
        source: new.source.map(str::to_owned),
    };
    tx.sql().prepare_cached(
        "INSERT INTO consent_texts (tenant, purpose, version, language, body, sha256, created_at, author, message, source)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?
    .execute(params![
        tenant,
        purpose,
        text.version,
        text.language,
        text.body,
        text.sha256,
        text.created_at,
        text.author,
        text.message,
        text.source,
    ])?;
    Ok(text)
}

/// The current text, writing the standard one as version 1 if there is none.
/// The (version, SHA-256) of the text a request for `purpose` in
/// `language` sends now: [`current_or_standard`]'s, remembered for the rest
/// of the transaction.
pub fn sent_now(
    tx: &Tx<'_>,
    tenant: &str,
    purpose: &str,
    language: &str,
    now: i64,
) -> Result<(i64, String)> {
    let key = (tenant.to_owned(), purpose.to_owned(), language.to_owned());
    if let Some(known) = tx.texts_sent.borrow().get(&key) {
        return Ok(known.clone());
    }
    let text = current_or_standard(tx, tenant, purpose, language, now)?;
    let sent = (text.version, text.sha256);
    tx.texts_sent.borrow_mut().insert(key, sent.clone());
    Ok(sent)
}

pub fn current_or_standard(
    tx: &Tx<'_>,
    tenant: &str,
    purpose: &str,
    language: &str,
    now: i64,
) -> Result<ConsentText> {
    if let Some(text) = current(tx, tenant, purpose, language)? {
        return Ok(text);
    }
    let (company, description): (String, String) = tx
        .sql()
        .prepare_cached(
            "SELECT t.name, p.description FROM tenants t JOIN purposes p ON p.tenant = t.id
         WHERE t.id = ?1 AND p.id = ?2",
        )?
        .query_row(params![tenant, purpose], |r| Ok((r.get(0)?, r.get(1)?)))?;
    let body = standard_text(
        language_for(language),
        &company,
        &super::tenants::purpose_in(purpose, &description, language),
    );
    add(
        tx,
        tenant,
        (purpose, language),
        &NewText {
            body: &body,
            ..NewText::default()
        },
        now,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn languages_fall_back_to_german() {
        assert_eq!(language_for("en-GB"), "en");
        assert_eq!(language_for("EN"), "en");
        assert_eq!(language_for("de_AT"), "de");
        assert_eq!(language_for("fr"), "de");
        assert_eq!(language_for(""), "de");
    }

    #[test]
    fn the_standard_text_names_company_and_purpose() {
        let de = standard_text("de", "Müller GmbH", "Newsletter");
        assert!(
            de.contains("Müller GmbH") && de.contains("Newsletter") && de.contains("widerrufen")
        );
        let en = standard_text("en", "Müller GmbH", "Newsletter");
        assert!(en.starts_with("I agree that Müller GmbH"));
    }
}
