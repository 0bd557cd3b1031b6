//! Personal response links. Every request sent gets its own token: 160 random
//! bits from the operating system's generator, bound to one case, valid as
//! long as the policy's `link_valid_days` says (default 180 days) and for one
//! answer. klar stores only the token's SHA-256,
//! so a copy of the database cannot answer in anyone's name; the token itself
//! travels once, in the outbox action that asks the CRM (or mailer) to send it.
//!
//! A secret is 56 hex digits: the token's row number (16 digits), then the
//! 160 random bits. The stored key is the row number, a colon and the
//! SHA-256 of the whole secret, so that the index that finds a secret grows
//! at its right end: keys that were a hash alone were random, and each
//! request a sweep sent touched another page of that index (a sweep of a
//! million cases runs about a quarter faster without that, measured). The
//! row number tells nothing but how many links this klar issued, to all
//! its tenants. Secrets issued before are 40 hex digits, stored under their
//! SHA-256 alone, and keep working.

use super::sql::{OptionalExtension, params};
use rand::RngExt;

use super::{Conn, Error, Result, Tx};

/// A token as stored, without the secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub id: String,
    pub tenant: String,
    pub contact: String,
    pub purpose: String,
    pub attempt: i64,
    pub channel: String,
    pub text_version: i64,
    pub language: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub used_at: Option<i64>,
    /// The id of the token whose link was sent: a message asking about
    /// several purposes has one link and a token per purpose behind it.
    /// Its own id for the link token itself.
    pub message: Option<String>,
}

/// Why a token cannot be answered. The messages say nothing about any contact.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("this link is not known")]
    Unknown,
    #[error("this link has already been used")]
    Used,
    #[error("this link has expired")]
    Expired,
}

/// A fresh secret: 20 random bytes as 40 hex digits.
pub fn generate() -> String {
    let bytes: [u8; 20] = rand::rng().random();
    crate::hex(&bytes)
}

fn hash(secret: &str) -> String {
    crate::sha256_hex(secret.trim().as_bytes())
}

/// The row number that leads a secret, as 16 hex digits.
const SELECTOR: usize = 16;

/// A new secret for the token in row `row`.
fn secret_for(row: i64) -> String {
    format!("{row:016x}{}", generate())
}

/// What the store keeps of a secret and finds it by (see the module's
/// header): `ROW:SHA256` for a secret that leads with its row number, the
/// SHA-256 alone for one from before.
fn key(secret: &str) -> String {
    let secret = secret.trim();
    match secret.get(..SELECTOR) {
        Some(row) if secret.len() == SELECTOR + 40 => format!("{row}:{}", hash(secret)),
        _ => hash(secret),
    }
}

/// The public id of the token in row `row`: `r` and 15 digits. Ids of
/// links issued before were the first 16 hex digits of the secret's hash;
/// those keep working and never equal one of these (`r` is no hex digit).
///
/// Sequential ids go to the right end of the id index. Ids derived from the
/// secret were random keys, and each insert touched another page of that
/// index: a sweep sends a link with every request.
fn id_of_row(row: i64) -> String {
    format!("r{row:015}")
}

/// PostgreSQL has no rowid, and several klar instances issue tokens at
/// once: the numbers come from a sequence (see `migrations/pg/002`), which
/// never hands one out twice.
const NEXT_ROW_PG: &str = "SELECT nextval('response_token_rows')";

/// The row number the next token of this transaction gets. Only this
/// module inserts tokens, and SQLite lets one transaction write at a time
/// (a transaction whose snapshot is older than the last commit cannot
/// start writing), so the number read once stays free until commit.
fn next_row(tx: &Tx<'_>) -> Result<i64> {
    if tx.sql().is_postgres() {
        return tx
            .sql()
            .prepare_cached(NEXT_ROW_PG)?
            .query_row((), |r| r.get(0))
            .map_err(Error::from);
    }
    let row = match tx.next_token_row.get() {
        Some(row) => row,
        None => tx
            .sql()
            .prepare_cached("SELECT COALESCE(MAX(rowid), 0) + 1 FROM response_tokens")?
            .query_row((), |r| r.get(0))?,
    };
    tx.next_token_row.set(Some(row + 1));
    Ok(row)
}

/// Issues a token for a request just sent; returns the secret and the row.
/// A token that joins a message (`token.message` set) gets a secret of its
/// own that is never sent: it is reached through the message's link.
pub fn issue(tx: &Tx<'_>, mut token: Token) -> Result<(String, Token)> {
    let row = next_row(tx)?;
    let secret = secret_for(row);
    token.id = id_of_row(row);
    if token.message.is_none() {
        token.message = Some(token.id.clone());
    }
    let postgres = tx.sql().is_postgres();
    let hash = key(&secret);
    let values: [&dyn crate::store::sql::ToValue; 13] = [
        &token.id,
        &hash,
        &token.tenant,
        &token.contact,
        &token.purpose,
        &token.attempt,
        &token.channel,
        &token.text_version,
        &token.language,
        &token.created_at,
        &token.expires_at,
        &token.message,
        &row,
    ];
    // PostgreSQL has no rowid to set (the number is in the id): it takes
    // the first twelve values only.
    let values: &[&dyn crate::store::sql::ToValue] = if postgres { &values[..12] } else { &values };
    tx.sql()
        .prepare_cached(if postgres {
            "INSERT INTO response_tokens (id, hash, tenant, contact, purpose, attempt, channel,
                                      text_version, language, created_at, expires_at, message)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"
        } else {
            "INSERT INTO response_tokens (rowid, id, hash, tenant, contact, purpose, attempt, channel,
                                      text_version, language, created_at, expires_at, message)
         VALUES (?13, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"
        })?
        .execute(values)?;
    Ok((secret, token))
}

const TOKEN_COLUMNS: &str =
    "id, tenant, contact, purpose, attempt, channel, text_version, language,
     created_at, expires_at, used_at, message";

fn read(r: &crate::store::sql::Row<'_>) -> crate::store::sql::Result<Token> {
    Ok(Token {
        id: r.get(0)?,
        tenant: r.get(1)?,
        contact: r.get(2)?,
        purpose: r.get(3)?,
        attempt: r.get(4)?,
        channel: r.get(5)?,
        text_version: r.get(6)?,
        language: r.get(7)?,
        created_at: r.get(8)?,
        expires_at: r.get(9)?,
        used_at: r.get(10)?,
        message: r.get(11)?,
    })
}

/// The tokens behind the link `secret` that may still be answered at `now`:
/// one per purpose the message asked about and nobody has answered yet, in
/// the order of the purposes. The link works while any of them is open.
pub fn redeemable(conn: &Conn, secret: &str, now: i64) -> Result<Vec<Token>, TokenLookupError> {
    let link = conn
        .sql()
        .prepare_cached(&format!(
            "SELECT {TOKEN_COLUMNS} FROM response_tokens WHERE hash = ?1"
        ))?
        .query_row([key(secret)], read)
        .optional()?
        .ok_or(TokenError::Unknown)?;
    let tokens = match &link.message {
        // Links from before messages could span purposes are their own message.
        None => vec![link],
        // A message goes to one contact: its tokens are among the
        // contact's few (no index of its own, which every request sent
        // would have to keep).
        Some(message) => {
            let mut stmt = conn.sql().prepare_cached(&format!(
                "SELECT {TOKEN_COLUMNS} FROM response_tokens INDEXED BY response_tokens_by_case
                 WHERE tenant = ?1 AND contact = ?2 AND message = ?3 ORDER BY purpose"
            ))?;
            let rows = stmt.query_map(params![link.tenant, link.contact, message], read)?;
            rows.collect::<crate::store::sql::Result<Vec<_>>>()?
        }
    };
    let open: Vec<Token> = tokens
        .iter()
        .filter(|t| t.used_at.is_none() && now < t.expires_at)
        .cloned()
        .collect();
    if open.is_empty() {
        let used = tokens
            .iter()
            .any(|t| t.used_at.is_some() && now < t.expires_at);
        return Err(if used {
            TokenError::Used
        } else {
            TokenError::Expired
        }
        .into());
    }
    Ok(open)
}

/// The contact behind a personal link: the secret of any message klar sent
/// them. `/r/SECRET` answers that message's request once, before it
/// expires; `/p/SECRET` shows the contact's page for as long as klar knows
/// them (the caller checks that the contact was not erased). Nothing more
/// is stored for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonalLink {
    /// The id of the message's token, for evidence.
    pub id: String,
    pub tenant: String,
    pub contact: String,
}

pub fn personal(conn: &Conn, secret: &str) -> Result<PersonalLink, TokenLookupError> {
    conn.sql()
        .prepare_cached("SELECT id, tenant, contact FROM response_tokens WHERE hash = ?1")?
        .query_row([key(secret)], |r| {
            Ok(PersonalLink {
                id: r.get(0)?,
                tenant: r.get(1)?,
                contact: r.get(2)?,
            })
        })
        .optional()?
        .ok_or(TokenLookupError::Token(TokenError::Unknown))
}

/// Closes every open link of a case (it was purged with its person).
pub fn close_for_case(
    tx: &Tx<'_>,
    tenant: &str,
    contact: &str,
    purpose: &str,
    now: i64,
) -> Result<usize> {
    tx.sql()
        .prepare_cached(
            "UPDATE response_tokens SET used_at = ?4
         WHERE tenant = ?1 AND contact = ?2 AND purpose = ?3 AND used_at IS NULL",
        )?
        .execute(params![tenant, contact, purpose, now])
        .map_err(Error::from)
}

/// Marks every open token of the token's case as used: one answer per case,
/// whichever of its links the contact clicked.
pub fn close_case(tx: &Tx<'_>, token: &Token, now: i64) -> Result<usize> {
    close_for_case(tx, &token.tenant, &token.contact, &token.purpose, now)
}

/// Notes that these links were opened (the first time counts).
pub fn opened(tx: &Tx<'_>, ids: &[String], now: i64) -> Result<()> {
    let mut stmt = tx.sql().prepare_cached(
        "UPDATE response_tokens SET opened_at = ?2 WHERE id = ?1 AND opened_at IS NULL",
    )?;
    for id in ids {
        stmt.execute(params![id, now])?;
    }
    Ok(())
}

/// Notes the answer given through a link.
pub fn answered(tx: &Tx<'_>, token: &Token, answer: &str) -> Result<()> {
    tx.sql()
        .prepare_cached("UPDATE response_tokens SET answer = ?2 WHERE id = ?1")?
        .execute(params![token.id, answer])?;
    Ok(())
}

/// Notes that the latest request of a case bounced.
pub fn bounced(tx: &Tx<'_>, tenant: &str, contact: &str, purpose: &str, now: i64) -> Result<()> {
    tx.sql()
        .prepare_cached(
            "UPDATE response_tokens SET bounced_at = ?4 WHERE id = (
                SELECT id FROM response_tokens WHERE tenant = ?1 AND contact = ?2 AND purpose = ?3
                ORDER BY created_at DESC, attempt DESC LIMIT 1) AND bounced_at IS NULL",
        )?
        .execute(params![tenant, contact, purpose, now])?;
    Ok(())
}

/// A lookup that failed because of the token or because of the database.
#[derive(Debug, thiserror::Error)]
pub enum TokenLookupError {
    #[error(transparent)]
    Token(#[from] TokenError),
    #[error(transparent)]
    Sql(#[from] super::Error),
}

impl From<crate::store::sql::Error> for TokenLookupError {
    fn from(err: crate::store::sql::Error) -> TokenLookupError {
        TokenLookupError::Sql(err.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_long_random_and_distinct() {
        let a = generate();
        let b = generate();
        assert_eq!(a.len(), 40);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }

    #[test]
    fn a_secret_leads_with_its_row_and_its_key_sorts_by_it() {
        let secret = secret_for(255);
        assert_eq!(secret.len(), 56);
        assert!(secret.bytes().all(|c| c.is_ascii_hexdigit()));
        assert!(secret.starts_with("00000000000000ff"));
        let stored = key(&secret);
        assert_eq!(stored, format!("00000000000000ff:{}", hash(&secret)));
        // Whitespace around a pasted secret does not matter.
        assert_eq!(key(&format!(" {secret}\n")), stored);
        assert!(key(&secret_for(256)) > stored);
        // A secret from before is found under its hash, as it was stored.
        let old = generate();
        assert_eq!(key(&old), hash(&old));
    }

    #[test]
    fn link_ids_follow_each_other_and_never_look_like_the_old_ones() {
        assert_eq!(id_of_row(1), "r000000000000001");
        assert_eq!(id_of_row(1).len(), 16);
        assert!(id_of_row(10) > id_of_row(9));
        assert!(!id_of_row(7).bytes().all(|c| c.is_ascii_hexdigit()));
    }
}
