//! The cockpit's accounts, their one-time sign-up links and their sessions.
//! Only hashes of secrets are stored: SHA-256 of link and session secrets,
//! Argon2id (computed above the store) of passwords.

use super::sql::{OptionalExtension, params};

use super::{Conn, Result, Tx};

/// What a person may do in the cockpit. A person may hold several roles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Sees everything of the tenant, changes nothing.
    Viewer,
    /// Acts on the cases assigned to them.
    Owner,
    /// Approves cleanups; places and lifts legal holds.
    Approver,
    /// Manages accounts, keys, the webhook, purposes, texts and policies.
    Admin,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Viewer, Role::Owner, Role::Approver, Role::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Owner => "owner",
            Role::Approver => "approver",
            Role::Admin => "admin",
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Role, String> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| format!("unknown role {s:?}; use viewer, owner, approver or admin"))
    }
}

/// An account as stored (never its password hash, see [`password_hash`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub tenant: String,
    pub id: String,
    pub name: String,
    pub email: Option<String>,
    pub roles: Vec<Role>,
    pub language: String,
    pub digest: bool,
    pub has_password: bool,
    pub created_at: i64,
    pub disabled_at: Option<i64>,
}

impl Account {
    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    pub fn roles_text(&self) -> String {
        roles_text(&self.roles)
    }
}

pub fn roles_text(roles: &[Role]) -> String {
    roles
        .iter()
        .map(|r| r.as_str())
        .collect::<Vec<_>>()
        .join(" ")
}

fn parse_roles(text: &str) -> Vec<Role> {
    let mut roles: Vec<Role> = text
        .split_whitespace()
        .filter_map(|r| r.parse().ok())
        .collect();
    roles.sort();
    roles.dedup();
    roles
}

const COLUMNS: &str = "tenant, id, name, email, roles, language, digest, password_hash IS NOT NULL, created_at, disabled_at";

fn row(r: &crate::store::sql::Row<'_>) -> crate::store::sql::Result<Account> {
    Ok(Account {
        tenant: r.get(0)?,
        id: r.get(1)?,
        name: r.get(2)?,
        email: r.get(3)?,
        roles: parse_roles(&r.get::<_, String>(4)?),
        language: r.get(5)?,
        digest: r.get(6)?,
        has_password: r.get(7)?,
        created_at: r.get(8)?,
        disabled_at: r.get(9)?,
    })
}

pub fn insert(tx: &Tx<'_>, account: &Account) -> Result<()> {
    tx.sql().execute(
        "INSERT INTO accounts (tenant, id, name, email, roles, language, digest, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            account.tenant,
            account.id,
            account.name,
            account.email,
            account.roles_text(),
            account.language,
            account.digest,
            account.created_at
        ],
    )?;
    Ok(())
}

pub fn get(conn: &Conn, tenant: &str, id: &str) -> Result<Option<Account>> {
    Ok(conn
        .sql()
        .query_row(
            &format!("SELECT {COLUMNS} FROM accounts WHERE tenant = ?1 AND id = ?2"),
            params![tenant, id],
            row,
        )
        .optional()?)
}

pub fn list(conn: &Conn, tenant: &str) -> Result<Vec<Account>> {
    let mut stmt = conn.sql().prepare(&format!(
        "SELECT {COLUMNS} FROM accounts WHERE tenant = ?1 ORDER BY id"
    ))?;
    let rows = stmt.query_map([tenant], row)?;
    Ok(rows.collect::<crate::store::sql::Result<Vec<_>>>()?)
}

/// The stored Argon2id hash (a PHC string) of an account's password.
pub fn password_hash(conn: &Conn, tenant: &str, id: &str) -> Result<Option<String>> {
    Ok(conn
        .sql()
        .query_row(
            "SELECT password_hash FROM accounts WHERE tenant = ?1 AND id = ?2",
            params![tenant, id],
            |r| r.get(0),
        )
        .optional()?
        .flatten())
}

pub fn set_password(tx: &Tx<'_>, tenant: &str, id: &str, hash: &str) -> Result<()> {
    tx.sql().execute(
        "UPDATE accounts SET password_hash = ?3 WHERE tenant = ?1 AND id = ?2",
        params![tenant, id, hash],
    )?;
    Ok(())
}

pub fn set_roles(tx: &Tx<'_>, tenant: &str, id: &str, roles: &[Role]) -> Result<bool> {
    Ok(tx.sql().execute(
        "UPDATE accounts SET roles = ?3 WHERE tenant = ?1 AND id = ?2",
        params![tenant, id, roles_text(roles)],
    )? == 1)
}

pub fn set_preferences(
    tx: &Tx<'_>,
    tenant: &str,
    id: &str,
    (language, digest): (&str, bool),
) -> Result<()> {
    tx.sql().execute(
        "UPDATE accounts SET language = ?3, digest = ?4 WHERE tenant = ?1 AND id = ?2",
        params![tenant, id, language, digest],
    )?;
    Ok(())
}

/// The ISO week of the account's last digest, if one went out.
pub fn digest_week(conn: &Conn, tenant: &str, id: &str) -> Result<Option<String>> {
    Ok(conn
        .sql()
        .query_row(
            "SELECT digest_week FROM accounts WHERE tenant = ?1 AND id = ?2",
            params![tenant, id],
            |r| r.get(0),
        )
        .optional()?
        .flatten())
}

pub fn set_digest_week(tx: &Tx<'_>, tenant: &str, id: &str, week: &str) -> Result<()> {
    tx.sql().execute(
        "UPDATE accounts SET digest_week = ?3 WHERE tenant = ?1 AND id = ?2",
        params![tenant, id, week],
    )?;
    Ok(())
}

/// Disables an account and ends its sessions and sign-up links.
pub fn disable(tx: &Tx<'_>, tenant: &str, id: &str, now: i64) -> Result<bool> {
    let changed = tx.sql().execute(
        "UPDATE accounts SET disabled_at = ?3 WHERE tenant = ?1 AND id = ?2 AND disabled_at IS NULL",
        params![tenant, id, now],
    )? == 1;
    tx.sql().execute(
        "UPDATE sessions SET ended_at = ?3 WHERE tenant = ?1 AND account = ?2 AND ended_at IS NULL",
        params![tenant, id, now],
    )?;
    tx.sql().execute(
        "UPDATE signup_links SET used_at = ?3 WHERE tenant = ?1 AND account = ?2 AND used_at IS NULL",
        params![tenant, id, now],
    )?;
    Ok(changed)
}

/// A new sign-up link; earlier unused links of the account stop working.
pub fn add_signup_link(
    tx: &Tx<'_>,
    (tenant, account): (&str, &str),
    hash: &str,
    (now, expires_at): (i64, i64),
) -> Result<()> {
    tx.sql().execute(
        "UPDATE signup_links SET used_at = ?3 WHERE tenant = ?1 AND account = ?2 AND used_at IS NULL",
        params![tenant, account, now],
    )?;
    tx.sql().execute(
        "INSERT INTO signup_links (hash, tenant, account, expires_at) VALUES (?1, ?2, ?3, ?4)",
        params![hash, tenant, account, expires_at],
    )?;
    Ok(())
}

/// A sign-up link as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignupLink {
    pub tenant: String,
    pub account: String,
    pub expires_at: i64,
    pub used_at: Option<i64>,
}

pub fn signup_link(conn: &Conn, hash: &str) -> Result<Option<SignupLink>> {
    Ok(conn
        .sql()
        .query_row(
            "SELECT tenant, account, expires_at, used_at FROM signup_links WHERE hash = ?1",
            [hash],
            |r| {
                Ok(SignupLink {
                    tenant: r.get(0)?,
                    account: r.get(1)?,
                    expires_at: r.get(2)?,
                    used_at: r.get(3)?,
                })
            },
        )
        .optional()?)
}

/// Marks a link used; false if it already was (a concurrent use).
pub fn use_signup_link(tx: &Tx<'_>, hash: &str, now: i64) -> Result<bool> {
    Ok(tx.sql().execute(
        "UPDATE signup_links SET used_at = ?2 WHERE hash = ?1 AND used_at IS NULL",
        params![hash, now],
    )? == 1)
}

/// A session as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub tenant: String,
    pub account: String,
    pub created_at: i64,
    pub last_seen_at: i64,
    pub ended_at: Option<i64>,
}

pub fn start_session(
    tx: &Tx<'_>,
    hash: &str,
    (tenant, account): (&str, &str),
    now: i64,
) -> Result<()> {
    tx.sql().execute(
        "INSERT INTO sessions (hash, tenant, account, created_at, last_seen_at)
         VALUES (?1, ?2, ?3, ?4, ?4)",
        params![hash, tenant, account, now],
    )?;
    Ok(())
}

pub fn session(conn: &Conn, hash: &str) -> Result<Option<Session>> {
    Ok(conn
        .sql()
        .query_row(
            "SELECT tenant, account, created_at, last_seen_at, ended_at
             FROM sessions WHERE hash = ?1",
            [hash],
            |r| {
                Ok(Session {
                    tenant: r.get(0)?,
                    account: r.get(1)?,
                    created_at: r.get(2)?,
                    last_seen_at: r.get(3)?,
                    ended_at: r.get(4)?,
                })
            },
        )
        .optional()?)
}

pub fn touch_session(tx: &Tx<'_>, hash: &str, now: i64) -> Result<()> {
    tx.sql().execute(
        "UPDATE sessions SET last_seen_at = MAX(last_seen_at, ?2) WHERE hash = ?1",
        params![hash, now],
    )?;
    Ok(())
}

pub fn end_session(tx: &Tx<'_>, hash: &str, now: i64) -> Result<bool> {
    Ok(tx.sql().execute(
        "UPDATE sessions SET ended_at = ?2 WHERE hash = ?1 AND ended_at IS NULL",
        params![hash, now],
    )? == 1)
}

/// Records a failed sign-in; rows older than `forget_before` are dropped.
pub fn add_failure(
    tx: &Tx<'_>,
    (tenant, account, address): (&str, &str, &str),
    now: i64,
    forget_before: i64,
) -> Result<()> {
    tx.sql().execute(
        "DELETE FROM sign_in_failures WHERE at < ?1",
        [forget_before],
    )?;
    tx.sql().execute(
        "INSERT INTO sign_in_failures (tenant, account, address, at) VALUES (?1, ?2, ?3, ?4)",
        params![tenant, account, address, now],
    )?;
    Ok(())
}

/// Failed sign-ins since `since`: for this account, and from this address.
pub fn failures_since(
    conn: &Conn,
    (tenant, account, address): (&str, &str, &str),
    since: i64,
) -> Result<(i64, i64)> {
    let for_account = conn.sql().query_row(
        "SELECT COUNT(*) FROM sign_in_failures WHERE tenant = ?1 AND account = ?2 AND at >= ?3",
        params![tenant, account, since],
        |r| r.get(0),
    )?;
    let from_address = conn.sql().query_row(
        "SELECT COUNT(*) FROM sign_in_failures WHERE address = ?1 AND at >= ?2",
        params![address, since],
        |r| r.get(0),
    )?;
    Ok((for_account, from_address))
}

/// Forgets an account's failures after a successful sign-in.
pub fn clear_failures(tx: &Tx<'_>, tenant: &str, account: &str) -> Result<()> {
    tx.sql().execute(
        "DELETE FROM sign_in_failures WHERE tenant = ?1 AND account = ?2",
        params![tenant, account],
    )?;
    Ok(())
}
