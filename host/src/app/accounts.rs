//! The cockpit's people: accounts and roles per tenant, one-time sign-up
//! links, passwords (Argon2id at OWASP's parameters), sign-in with a
//! throttle, and sessions that end when idle and absolutely. Every change,
//! sign-in and failed sign-in is written to the tenant's audit chain.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use rand::RngExt;
use serde_json::json;

use crate::store::accounts::{self, Account, Role};
use crate::store::audit::{self, Entry};
use crate::store::{self, Conn, Store, Tx, tenants};

/// How long a sign-up link works.
pub const SIGNUP_VALID_SECONDS: i64 = 72 * 3600;
/// A session ends after this long without a request…
pub const IDLE_SECONDS: i64 = 30 * 60;
/// …and after this long in any case.
pub const ABSOLUTE_SECONDS: i64 = 12 * 3600;
/// A session's last request is written down at most this often.
const TOUCH_AFTER_SECONDS: i64 = 60;
/// Failed sign-ins are counted over this window.
pub const THROTTLE_WINDOW_SECONDS: i64 = 15 * 60;
/// Failed sign-ins for one account in the window before it is blocked.
pub const MAX_FAILURES_PER_ACCOUNT: i64 = 5;
/// Failed sign-ins from one address in the window before it is blocked.
pub const MAX_FAILURES_PER_ADDRESS: i64 = 20;
/// A password has at least this many characters…
pub const MIN_PASSWORD: usize = 12;
/// …and at most this many (Argon2 hashes any length; a megabyte-long
/// "password" would only cost the server time).
pub const MAX_PASSWORD: usize = 256;

/// OWASP's Argon2id parameters: 19 MiB of memory, 2 iterations, 1 lane.
fn argon2() -> Argon2<'static> {
    let params = Params::new(19 * 1024, 2, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error(
        "account id {0:?} is not allowed: use 1 to 64 lower-case letters, digits, dots, hyphens and underscores"
    )]
    BadId(String),
    #[error("{0}")]
    BadText(String),
    #[error("{tenant} already has an account {id}")]
    Exists { tenant: String, id: String },
    #[error("{tenant} has no account {id}")]
    NoAccount { tenant: String, id: String },
    #[error("an account needs at least one role: viewer, owner, approver or admin")]
    NoRole,
    #[error("language {0:?} is not offered; use de or en")]
    BadLanguage(String),
    #[error(transparent)]
    Tenant(#[from] tenants::TenantError),
    #[error(transparent)]
    Store(#[from] store::Error),
}

impl From<store::StoreError> for AccountError {
    fn from(err: store::StoreError) -> AccountError {
        match err {
            store::StoreError::Sql(e) => AccountError::Store(e),
            other => AccountError::BadText(other.to_string()),
        }
    }
}

fn valid_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
}

fn audit_row(
    tx: &Tx<'_>,
    tenant: &str,
    kind: &str,
    detail: serde_json::Value,
    now: i64,
) -> store::Result<()> {
    audit::append(tx, tenant, Entry::tenant(now, kind, &detail))?;
    Ok(())
}

/// A new random secret: 32 bytes as hex.
fn secret() -> String {
    let bytes: [u8; 32] = rand::rng().random();
    crate::hex(&bytes)
}

fn secret_hash(secret: &str) -> String {
    crate::sha256_hex(secret.as_bytes())
}

/// A new account, before it is stored.
#[derive(Debug, Clone)]
pub struct NewAccount<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub email: Option<&'a str>,
    pub roles: Vec<Role>,
    pub language: &'a str,
}

/// Adds an account and returns it with the secret of its sign-up link
/// (`/cockpit/signup/{secret}`), which is shown once.
pub fn add(
    store: &mut Store,
    tenant: &str,
    new: &NewAccount<'_>,
    by: &str,
    now: i64,
) -> Result<(Account, String), AccountError> {
    if !valid_id(new.id) {
        return Err(AccountError::BadId(new.id.to_owned()));
    }
    super::text::one_line("the name", new.name, super::text::MAX_WHO)
        .map_err(AccountError::BadText)?;
    if let Some(email) = new.email {
        super::text::one_line("the e-mail address", email, 254).map_err(AccountError::BadText)?;
    }
    if new.roles.is_empty() {
        return Err(AccountError::NoRole);
    }
    if !["de", "en"].contains(&new.language) {
        return Err(AccountError::BadLanguage(new.language.to_owned()));
    }
    let mut roles = new.roles.clone();
    roles.sort();
    roles.dedup();
    let account = Account {
        tenant: tenant.to_owned(),
        id: new.id.to_owned(),
        name: new.name.trim().to_owned(),
        email: new.email.map(|e| e.trim().to_owned()),
        roles,
        language: new.language.to_owned(),
        digest: true,
        has_password: false,
        created_at: now,
        disabled_at: None,
    };
    let link = secret();
    store.transaction(|tx| {
        tenants::require(tx, tenant)?;
        if accounts::get(tx, tenant, new.id)?.is_some() {
            return Err(AccountError::Exists {
                tenant: tenant.to_owned(),
                id: new.id.to_owned(),
            });
        }
        accounts::insert(tx, &account)?;
        accounts::add_signup_link(
            tx,
            (tenant, new.id),
            &secret_hash(&link),
            (now, now + SIGNUP_VALID_SECONDS),
        )?;
        audit_row(
            tx,
            tenant,
            "account-added",
            json!({ "account": account.id, "name": account.name, "roles": account.roles_text(), "by": by }),
            now,
        )?;
        Ok(())
    })?;
    Ok((account, link))
}

/// A new sign-up link for an existing account (a lost link, a forgotten
/// password); earlier links stop working.
pub fn new_signup_link(
    store: &mut Store,
    tenant: &str,
    id: &str,
    by: &str,
    now: i64,
) -> Result<String, AccountError> {
    let link = secret();
    store.transaction(|tx| {
        require(tx, tenant, id)?;
        accounts::add_signup_link(
            tx,
            (tenant, id),
            &secret_hash(&link),
            (now, now + SIGNUP_VALID_SECONDS),
        )?;
        audit_row(
            tx,
            tenant,
            "signup-link",
            json!({ "account": id, "by": by }),
            now,
        )?;
        Ok::<_, AccountError>(())
    })?;
    Ok(link)
}

fn require(conn: &Conn, tenant: &str, id: &str) -> Result<Account, AccountError> {
    tenants::require(conn, tenant)?;
    accounts::get(conn, tenant, id)?.ok_or_else(|| AccountError::NoAccount {
        tenant: tenant.to_owned(),
        id: id.to_owned(),
    })
}

pub fn set_roles(
    store: &mut Store,
    tenant: &str,
    id: &str,
    roles: &[Role],
    by: &str,
    now: i64,
) -> Result<Account, AccountError> {
    if roles.is_empty() {
        return Err(AccountError::NoRole);
    }
    let mut roles = roles.to_vec();
    roles.sort();
    roles.dedup();
    store.transaction(|tx| {
        let before = require(tx, tenant, id)?;
        accounts::set_roles(tx, tenant, id, &roles)?;
        audit_row(
            tx,
            tenant,
            "account-roles",
            json!({ "account": id, "from": before.roles_text(), "to": accounts::roles_text(&roles), "by": by }),
            now,
        )?;
        require(tx, tenant, id)
    })
}

/// Disables an account: its sessions end at once and it cannot sign in.
/// False if it was disabled already.
pub fn disable(
    store: &mut Store,
    tenant: &str,
    id: &str,
    by: &str,
    now: i64,
) -> Result<bool, AccountError> {
    store.transaction(|tx| {
        require(tx, tenant, id)?;
        let changed = accounts::disable(tx, tenant, id, now)?;
        if changed {
            audit_row(
                tx,
                tenant,
                "account-disabled",
                json!({ "account": id, "by": by }),
                now,
            )?;
        }
        Ok(changed)
    })
}

pub fn list(conn: &Conn, tenant: &str) -> Result<Vec<Account>, AccountError> {
    tenants::require(conn, tenant)?;
    Ok(accounts::list(conn, tenant)?)
}

/// Why a sign-up link cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignupError {
    #[error("this sign-up link is not known")]
    Unknown,
    #[error("this sign-up link was used already")]
    Used,
    #[error("this sign-up link has expired")]
    Expired,
    #[error("the account is disabled")]
    Disabled,
    #[error("the password needs {MIN_PASSWORD} to {MAX_PASSWORD} characters")]
    BadPassword,
    #[error("the two passwords differ")]
    Mismatch,
}

/// The account a sign-up link is for, if the link may be used now.
pub fn signup_account(conn: &Conn, link: &str, now: i64) -> Result<Account, SignupFailure> {
    let Some(row) = accounts::signup_link(conn, &secret_hash(link))? else {
        return Err(SignupError::Unknown.into());
    };
    if row.used_at.is_some() {
        return Err(SignupError::Used.into());
    }
    if row.expires_at <= now {
        return Err(SignupError::Expired.into());
    }
    match accounts::get(conn, &row.tenant, &row.account)? {
        Some(account) if account.disabled_at.is_none() => Ok(account),
        _ => Err(SignupError::Disabled.into()),
    }
}

/// A failed sign-up: the person's mistake, or the store's.
#[derive(Debug, thiserror::Error)]
pub enum SignupFailure {
    #[error(transparent)]
    Refused(#[from] SignupError),
    #[error(transparent)]
    Store(#[from] store::Error),
}

/// Sets the password through a sign-up link, which is then spent.
pub fn sign_up(
    store: &mut Store,
    link: &str,
    (password, repeated): (&str, &str),
    now: i64,
) -> Result<Account, SignupFailure> {
    let account = signup_account(store.connection(), link, now)?;
    if password != repeated {
        return Err(SignupError::Mismatch.into());
    }
    let length = password.chars().count();
    if !(MIN_PASSWORD..=MAX_PASSWORD).contains(&length) {
        return Err(SignupError::BadPassword.into());
    }
    let hash = hash_password(password).map_err(|_| SignupError::BadPassword)?;
    store.transaction(|tx| {
        if !accounts::use_signup_link(tx, &secret_hash(link), now)? {
            return Err(SignupError::Used.into());
        }
        accounts::set_password(tx, &account.tenant, &account.id, &hash)?;
        audit_row(
            tx,
            &account.tenant,
            "signed-up",
            json!({ "account": account.id }),
            now,
        )?;
        Ok(account)
    })
}

fn hash_password(password: &str) -> Result<String, argon2::password_hash::Error> {
    let salt_bytes: [u8; 16] = rand::rng().random();
    let salt = SaltString::encode_b64(&salt_bytes)?;
    Ok(argon2()
        .hash_password(password.as_bytes(), &salt)?
        .to_string())
}

/// Whether `password` matches the stored hash. Without a hash (an unknown
/// account, one without a password yet) a dummy hash is checked all the
/// same, so that the answer takes as long and says nothing about which
/// accounts exist.
const DUMMY: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$J1d0iCbUSsbKm+4lRnGJ3E6vtq6BTw3N1bFyJp/Ap0Q";

fn verify_password(password: &str, stored: Option<&str>) -> bool {
    let checked = stored.unwrap_or(DUMMY);
    let Ok(parsed) = PasswordHash::new(checked) else {
        return false;
    };
    let ok = argon2()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok();
    ok && stored.is_some()
}

/// Why a sign-in failed. The person sees one message for all but the block,
/// so that nobody learns which accounts exist.
#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    #[error("tenant, account or password is wrong")]
    Wrong,
    #[error("too many failed sign-ins; try again in {0} minutes")]
    Blocked(i64),
    #[error(transparent)]
    Store(#[from] store::Error),
    #[error("{0}")]
    Other(String),
}

/// A new session: the secret for the cookie, and whose it is.
#[derive(Debug, Clone)]
pub struct NewSession {
    pub secret: String,
    pub account: Account,
}

/// Signs a person in. Failures are counted per account and per address,
/// and audited in the tenant's chain when the tenant exists.
pub fn sign_in(
    store: &mut Store,
    (tenant, id, password): (&str, &str, &str),
    address: &str,
    now: i64,
) -> Result<NewSession, SignInError> {
    let since = now - THROTTLE_WINDOW_SECONDS;
    let (for_account, from_address) =
        accounts::failures_since(store.connection(), (tenant, id, address), since)?;
    if for_account >= MAX_FAILURES_PER_ACCOUNT || from_address >= MAX_FAILURES_PER_ADDRESS {
        return Err(SignInError::Blocked(THROTTLE_WINDOW_SECONDS / 60));
    }
    let tenant_known = tenants::get(store.connection(), tenant)
        .map_err(|e| SignInError::Other(e.to_string()))?
        .is_some();
    let account = if tenant_known {
        accounts::get(store.connection(), tenant, id)?
    } else {
        None
    };
    let stored = match &account {
        Some(a) if a.disabled_at.is_none() => {
            accounts::password_hash(store.connection(), tenant, id)?
        }
        _ => None,
    };
    let ok = verify_password(password, stored.as_deref());
    let secret = secret();
    // The transaction commits a failure's rows too: the answer is an error
    // for the person, not for the transaction.
    let signed_in = store.transaction(|tx| {
        Ok::<_, store::Error>(match (&account, ok) {
            (Some(account), true) => {
                accounts::clear_failures(tx, tenant, id)?;
                accounts::start_session(tx, &secret_hash(&secret), (tenant, id), now)?;
                audit_row(
                    tx,
                    tenant,
                    "sign-in",
                    json!({ "account": account.id, "address": address }),
                    now,
                )?;
                Some(NewSession {
                    secret: secret.clone(),
                    account: account.clone(),
                })
            }
            _ => {
                accounts::add_failure(tx, (tenant, id, address), now, since)?;
                if tenant_known {
                    // The id as typed, cut short: it may be anything.
                    let typed: String = id.chars().filter(|c| !c.is_control()).take(64).collect();
                    audit_row(
                        tx,
                        tenant,
                        "sign-in-failed",
                        json!({ "account": typed, "address": address, "known": account.is_some() }),
                        now,
                    )?;
                } else {
                    tracing::warn!(address, "cockpit sign-in for an unknown tenant");
                }
                None
            }
        })
    })?;
    signed_in.ok_or(SignInError::Wrong)
}

/// A live session: its account, and the hash that names it.
#[derive(Debug, Clone)]
pub struct LiveSession {
    pub account: Account,
    pub hash: String,
    /// The token every form of this session carries (see [`csrf_token`]).
    pub csrf: String,
}

/// The CSRF token of a session: derived from its secret, so it needs no
/// storage and a page of another origin cannot know it.
pub fn csrf_token(session_secret: &str) -> String {
    crate::sha256_hex(format!("klar-csrf:{session_secret}").as_bytes())
}

/// The account behind a session cookie, if the session is live: not ended,
/// not idle too long, not too old, and its account not disabled. A live
/// session's idle time starts again.
pub fn session(store: &mut Store, secret: &str, now: i64) -> store::Result<Option<LiveSession>> {
    let hash = secret_hash(secret);
    let Some(row) = accounts::session(store.connection(), &hash)? else {
        return Ok(None);
    };
    if row.ended_at.is_some()
        || now - row.last_seen_at > IDLE_SECONDS
        || now - row.created_at > ABSOLUTE_SECONDS
    {
        return Ok(None);
    }
    let Some(account) = accounts::get(store.connection(), &row.tenant, &row.account)? else {
        return Ok(None);
    };
    if account.disabled_at.is_some() {
        return Ok(None);
    }
    // A write per page view would be the cockpit's only write on most
    // requests; a minute's precision is plenty for a 30-minute idle limit.
    if now - row.last_seen_at >= TOUCH_AFTER_SECONDS {
        store.transaction(|tx| accounts::touch_session(tx, &hash, now))?;
    }
    Ok(Some(LiveSession {
        account,
        hash,
        csrf: csrf_token(secret),
    }))
}

/// Ends a session (logout).
pub fn sign_out(store: &mut Store, session: &LiveSession, now: i64) -> store::Result<()> {
    store.transaction(|tx| {
        if accounts::end_session(tx, &session.hash, now)? {
            audit_row(
                tx,
                &session.account.tenant,
                "sign-out",
                json!({ "account": session.account.id }),
                now,
            )?;
        }
        Ok(())
    })
}

/// A person's own settings: language and the weekly digest.
pub fn set_preferences(
    store: &mut Store,
    account: &Account,
    (language, digest): (&str, bool),
    now: i64,
) -> Result<(), AccountError> {
    if !["de", "en"].contains(&language) {
        return Err(AccountError::BadLanguage(language.to_owned()));
    }
    store.transaction(|tx| {
        accounts::set_preferences(tx, &account.tenant, &account.id, (language, digest))?;
        audit_row(
            tx,
            &account.tenant,
            "account-preferences",
            json!({ "account": account.id, "language": language, "digest": digest }),
            now,
        )?;
        Ok(())
    })
}

/// Whether `id` is a live account of the tenant with the approver role:
/// approvals are given only by such accounts, whatever face they come
/// through.
pub fn is_approver(conn: &Conn, tenant: &str, id: &str) -> store::Result<bool> {
    Ok(accounts::get(conn, tenant, id)?
        .is_some_and(|a| a.disabled_at.is_none() && a.has(Role::Approver)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_argon2id_at_owasp_parameters() {
        let hash = hash_password("korrekt Pferd Batterie").expect("hashes");
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        assert!(verify_password("korrekt Pferd Batterie", Some(&hash)));
        assert!(!verify_password("korrekt Pferd Batteri", Some(&hash)));
        assert!(!verify_password("anything", None), "no hash never matches");
        assert!(
            PasswordHash::new(DUMMY).is_ok(),
            "the dummy is checked for real"
        );
    }

    #[test]
    fn a_session_ends_when_idle_and_after_twelve_hours_however_busy() {
        let dir = tempfile::tempdir().expect("a folder");
        let mut store = Store::open(dir.path().join("klar.db")).expect("a store");
        let t0 = 1_800_000_000;
        store
            .transaction(|tx| tenants::add(tx, "acme", "ACME", "Europe/Berlin", "de", t0))
            .expect("a tenant");
        let new = NewAccount {
            id: "jk",
            name: "Jana Kühn",
            email: None,
            roles: vec![Role::Owner],
            language: "de",
        };
        let (_, link) = add(&mut store, "acme", &new, "test", t0).expect("added");
        sign_up(
            &mut store,
            &link,
            ("korrekt Pferd Batterie", "korrekt Pferd Batterie"),
            t0,
        )
        .expect("signed up");
        let signed = sign_in(
            &mut store,
            ("acme", "jk", "korrekt Pferd Batterie"),
            "192.0.2.1",
            t0,
        )
        .expect("signed in");
        // Busy all day: a request every 20 minutes keeps it alive for 12 hours.
        let mut t = t0;
        while t + 20 * 60 <= t0 + ABSOLUTE_SECONDS {
            t += 20 * 60;
            assert!(
                session(&mut store, &signed.secret, t)
                    .expect("read")
                    .is_some(),
                "at {}",
                t - t0
            );
        }
        assert!(
            session(&mut store, &signed.secret, t0 + ABSOLUTE_SECONDS + 60)
                .expect("read")
                .is_none(),
            "over after 12 hours"
        );
        // Idle: a new session, left alone for 31 minutes.
        let idle = sign_in(
            &mut store,
            ("acme", "jk", "korrekt Pferd Batterie"),
            "192.0.2.1",
            t0,
        )
        .expect("signed in");
        assert!(
            session(&mut store, &idle.secret, t0 + 29 * 60)
                .expect("read")
                .is_some()
        );
        assert!(
            session(&mut store, &idle.secret, t0 + 29 * 60 + 31 * 60)
                .expect("read")
                .is_none()
        );
        // Disabled: every session ends at once.
        let third = sign_in(
            &mut store,
            ("acme", "jk", "korrekt Pferd Batterie"),
            "192.0.2.1",
            t0,
        )
        .expect("signed in");
        assert!(disable(&mut store, "acme", "jk", "test", t0 + 1).expect("disabled"));
        assert!(
            session(&mut store, &third.secret, t0 + 2)
                .expect("read")
                .is_none()
        );
        assert!(matches!(
            sign_in(
                &mut store,
                ("acme", "jk", "korrekt Pferd Batterie"),
                "192.0.2.1",
                t0 + 3
            ),
            Err(SignInError::Wrong)
        ));
    }

    #[test]
    fn account_ids_are_plain() {
        assert!(valid_id("jk"));
        assert!(valid_id("jana.kuehn"));
        assert!(!valid_id("Jana"));
        assert!(!valid_id(""));
        assert!(!valid_id("a b"));
    }
}
