//! Tenants, their purposes and their policy versions.

use super::sql::{OptionalExtension, params};
use chrono_tz::Tz;

use super::{Conn, Error, Result, Tx};
use sha2::{Digest, Sha256};

use super::audit::{self, Entry};

/// Every tenant has this purpose: may the contact's data be kept and used at all.
pub const DEFAULT_PURPOSE: &str = "contact-data";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenant {
    pub id: String,
    pub name: String,
    pub timezone: Tz,
    pub locale: String,
    /// Who gets a task for a contact without an owner.
    pub default_owner: Option<String>,
    /// The company's legal details, for the page and the mails.
    pub legal: Legal,
    /// The region whose public holidays are not business days (`DE-BW`).
    pub region: Option<String>,
    /// The company's own closure days: `12-24` every year, `2026-12-28` once.
    pub closure_days: Vec<String>,
}

/// The company's legal details, as German law wants them on the web and in
/// business mail (§ 5 DDG, § 35a GmbHG): every field is optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Legal {
    /// The postal address; may span lines.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub managing_directors: Option<String>,
    /// E.g. `Amtsgericht Stuttgart, HRB 123456`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub register_entry: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub imprint_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub privacy_url: Option<String>,
}

impl Legal {
    pub fn is_empty(&self) -> bool {
        *self == Legal::default()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyVersion {
    pub version: i64,
    pub source: String,
    pub sha256: String,
    pub author: String,
    pub message: String,
    pub created_at: i64,
    pub active: bool,
    /// The tests (TOML) the version passed when it became active; `None`
    /// if it became active without tests.
    pub tests: Option<String>,
}

impl PolicyVersion {
    pub fn tested(&self) -> bool {
        self.tests.is_some()
    }
}

/// A version about to be stored and made active, with what was checked.
#[derive(Debug, Clone, Copy, Default)]
pub struct NewVersion<'a> {
    pub source: &'a str,
    /// The tests it passed (TOML), if it has any.
    pub tests: Option<&'a str>,
    pub author: &'a str,
    pub message: &'a str,
    /// Why a version without tests replaces a tested one (`--untested
    /// --reason`); the audit row says so.
    pub untested_reason: Option<&'a str>,
    /// How many of the tenant's contacts every hook ran for before.
    pub probed_contacts: Option<usize>,
}

#[derive(Debug, thiserror::Error)]
pub enum TenantError {
    #[error("tenant id {0:?} is not allowed: use 1 to 64 lower-case letters, digits and hyphens")]
    BadId(String),
    #[error("unknown time zone {0:?}; use a name like Europe/Berlin")]
    BadTimezone(String),
    #[error("tenant {0} already exists")]
    Exists(String),
    #[error("there is no tenant {0}")]
    Unknown(String),
    #[error("purpose id {0:?} is not allowed: use 1 to 64 lower-case letters, digits and hyphens")]
    BadPurpose(String),
    #[error("tenant {tenant} already has purpose {purpose}")]
    PurposeExists { tenant: String, purpose: String },
    #[error(transparent)]
    Sql(#[from] super::Error),
}

impl From<crate::store::sql::Error> for TenantError {
    fn from(err: crate::store::sql::Error) -> TenantError {
        TenantError::Sql(err.into())
    }
}

pub fn valid_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

pub fn parse_timezone(name: &str) -> Result<Tz, TenantError> {
    name.parse::<Tz>()
        .map_err(|_| TenantError::BadTimezone(name.to_owned()))
}

/// Creates a tenant with its default purpose, and audits both.
pub fn add(
    tx: &Tx<'_>,
    id: &str,
    name: &str,
    timezone: &str,
    locale: &str,
    now: i64,
) -> Result<Tenant, TenantError> {
    if !valid_id(id) {
        return Err(TenantError::BadId(id.to_owned()));
    }
    let tz = parse_timezone(timezone)?;
    if get(tx, id)?.is_some() {
        return Err(TenantError::Exists(id.to_owned()));
    }
    // The salt only has to differ between tenants and stay secret-ish; it is
    // derived from the tenant, the time and the process's random hasher state.
    let salt = {
        use std::hash::{BuildHasher, Hasher};
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write(id.as_bytes());
        hasher.write_i64(now);
        Sha256::digest(hasher.finish().to_be_bytes()).to_vec()
    };
    tx.sql().execute(
        "INSERT INTO tenants (id, name, timezone, locale, salt, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![id, name, tz.name(), locale, salt, now],
    )?;
    tx.sql().execute(
        "INSERT INTO purposes (tenant, id, description) VALUES (?1, ?2, ?3)",
        params![id, DEFAULT_PURPOSE, DEFAULT_PURPOSE_DESCRIPTION],
    )?;
    audit::append(
        tx,
        id,
        Entry::tenant(
            now,
            "tenant-created",
            &serde_json::json!({ "name": name, "timezone": tz.name(), "locale": locale }),
        ),
    )?;
    Ok(Tenant {
        id: id.to_owned(),
        name: name.to_owned(),
        timezone: tz,
        locale: locale.to_owned(),
        default_owner: None,
        legal: Legal::default(),
        region: None,
        closure_days: Vec::new(),
    })
}

pub fn get(conn: &Conn, id: &str) -> Result<Option<Tenant>, TenantError> {
    struct Row {
        tz: String,
        tenant: Tenant,
        legal: String,
        closure_days: String,
    }
    let row: Option<Row> = conn
        .sql()
        .prepare_cached(
            "SELECT id, name, timezone, locale, default_owner, legal, region, closure_days
             FROM tenants WHERE id = ?1",
        )?
        .query_row([id], |r| {
            Ok(Row {
                tenant: Tenant {
                    id: r.get(0)?,
                    name: r.get(1)?,
                    timezone: chrono_tz::UTC,
                    locale: r.get(3)?,
                    default_owner: r.get(4)?,
                    legal: Legal::default(),
                    region: r.get(6)?,
                    closure_days: Vec::new(),
                },
                tz: r.get(2)?,
                legal: r.get(5)?,
                closure_days: r.get(7)?,
            })
        })
        .optional()?;
    row.map(|row| {
        Ok(Tenant {
            timezone: parse_timezone(&row.tz)?,
            // Written by klar as JSON; a row edited by hand into something
            // else shows no details rather than failing.
            legal: serde_json::from_str(&row.legal).unwrap_or_default(),
            closure_days: serde_json::from_str(&row.closure_days).unwrap_or_default(),
            ..row.tenant
        })
    })
    .transpose()
}

/// Writes a tenant's settings (all but its id) as given; the caller has
/// checked them and audits the change.
pub fn save_settings(tx: &Tx<'_>, tenant: &Tenant) -> Result<(), TenantError> {
    let legal = serde_json::to_string(&tenant.legal).unwrap_or_else(|_| "{}".to_owned());
    let closure_days =
        serde_json::to_string(&tenant.closure_days).unwrap_or_else(|_| "[]".to_owned());
    let changed = tx.sql().execute(
        "UPDATE tenants SET name = ?2, timezone = ?3, locale = ?4, default_owner = ?5, legal = ?6,
             region = ?7, closure_days = ?8
         WHERE id = ?1",
        params![
            tenant.id,
            tenant.name,
            tenant.timezone.name(),
            tenant.locale,
            tenant.default_owner,
            legal,
            tenant.region,
            closure_days
        ],
    )?;
    if changed == 0 {
        return Err(TenantError::Unknown(tenant.id.clone()));
    }
    Ok(())
}

/// Changes a purpose's description; false if the tenant has no such purpose.
/// How strict a purpose is about use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Enforcement {
    /// Usable only with consent or another recorded basis (the default).
    #[default]
    Restrictive,
    /// Usable unless the contact said no or their data is being cleaned up.
    NonRestrictive,
}

impl Enforcement {
    pub const ALL: [Enforcement; 2] = [Enforcement::Restrictive, Enforcement::NonRestrictive];

    pub fn as_str(self) -> &'static str {
        match self {
            Enforcement::Restrictive => "restrictive",
            Enforcement::NonRestrictive => "non-restrictive",
        }
    }

    pub fn parse(text: &str) -> Option<Enforcement> {
        Enforcement::ALL.into_iter().find(|e| e.as_str() == text)
    }

    /// Whether a case in `band` may be used under this enforcement (an
    /// erased person never may: the caller checks that first).
    pub fn allows(self, band: &str) -> bool {
        band == crate::plugin::Band::Usable.as_str()
            || (self == Enforcement::NonRestrictive
                && band == crate::plugin::Band::ToClarify.as_str())
    }
}

/// Each purpose's enforcement.
pub fn enforcements(
    conn: &Conn,
    tenant: &str,
) -> Result<std::collections::HashMap<String, Enforcement>> {
    let mut stmt = conn
        .sql()
        .prepare_cached("SELECT id, enforcement FROM purposes WHERE tenant = ?1")?;
    let rows = stmt.query_map([tenant], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
    })?;
    let mut out = std::collections::HashMap::new();
    for row in rows {
        let (id, text) = row?;
        out.insert(id, Enforcement::parse(&text).unwrap_or_default());
    }
    Ok(out)
}

pub fn set_enforcement(
    tx: &Tx<'_>,
    tenant: &str,
    purpose: &str,
    enforcement: Enforcement,
) -> Result<bool> {
    Ok(tx.sql().execute(
        "UPDATE purposes SET enforcement = ?3 WHERE tenant = ?1 AND id = ?2",
        params![tenant, purpose, enforcement.as_str()],
    )? > 0)
}

pub fn set_purpose_description(
    tx: &Tx<'_>,
    tenant: &str,
    purpose: &str,
    description: &str,
) -> Result<bool> {
    Ok(tx.sql().execute(
        "UPDATE purposes SET description = ?3 WHERE tenant = ?1 AND id = ?2",
        params![tenant, purpose, description],
    )? > 0)
}

/// How many cases a purpose has, and whether any evidence names it: a
/// purpose with either is part of the record and cannot be removed.
pub fn purpose_in_use(conn: &Conn, tenant: &str, purpose: &str) -> Result<(i64, bool)> {
    let cases: i64 = conn.sql().query_row(
        "SELECT COUNT(*) FROM cases WHERE tenant = ?1 AND purpose = ?2",
        params![tenant, purpose],
        |r| r.get(0),
    )?;
    let evidence: bool = conn.sql().query_row(
        "SELECT EXISTS (SELECT 1 FROM evidence WHERE tenant = ?1 AND purpose = ?2)",
        params![tenant, purpose],
        |r| r.get(0),
    )?;
    Ok((cases, evidence))
}

/// Removes a purpose that nothing refers to any more, with the consent
/// texts written for it (which no request ever used); false if there is no
/// such purpose.
pub fn remove_purpose(tx: &Tx<'_>, tenant: &str, purpose: &str) -> Result<bool> {
    tx.texts_sent.borrow_mut().clear();
    tx.sql().execute(
        "DELETE FROM consent_texts WHERE tenant = ?1 AND purpose = ?2",
        params![tenant, purpose],
    )?;
    Ok(tx.sql().execute(
        "DELETE FROM purposes WHERE tenant = ?1 AND id = ?2",
        params![tenant, purpose],
    )? > 0)
}

pub fn list(conn: &Conn) -> Result<Vec<Tenant>, TenantError> {
    let ids: Vec<String> = {
        let mut stmt = conn.sql().prepare("SELECT id FROM tenants ORDER BY id")?;
        let rows = stmt.query_map((), |r| r.get(0))?;
        rows.collect::<crate::store::sql::Result<_>>()?
    };
    ids.iter().map(|id| require(conn, id)).collect()
}

/// The tenant's active policy version, if one was ever set.
pub fn active_policy(conn: &Conn, tenant: &str) -> Result<Option<PolicyVersion>> {
    Ok(policy_versions(conn, tenant)?
        .into_iter()
        .find(|v| v.active))
}

/// The number of the tenant's policy version with this SHA-256 (the latest,
/// if the same text was saved twice); none for the built-in default.
pub fn version_of(conn: &Conn, tenant: &str, sha256: &str) -> Result<Option<i64>> {
    conn.sql()
        .prepare_cached(
            "SELECT MAX(version) FROM policy_versions WHERE tenant = ?1 AND sha256 = ?2",
        )?
        .query_row([tenant, sha256], |r| r.get(0))
        .map_err(Error::from)
}

/// The active version's number and SHA-256 (not its text): what a cached
/// session checks on every use.
pub fn active_sha(conn: &Conn, tenant: &str) -> Result<Option<(i64, String)>> {
    conn.sql()
        .prepare_cached(
            "SELECT version, sha256 FROM policy_versions WHERE tenant = ?1 AND active = 1",
        )?
        .query_row([tenant], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()
        .map_err(Error::from)
}

pub fn require(conn: &Conn, id: &str) -> Result<Tenant, TenantError> {
    get(conn, id)?.ok_or_else(|| TenantError::Unknown(id.to_owned()))
}

pub fn add_purpose(
    tx: &Tx<'_>,
    tenant: &str,
    purpose: &str,
    description: &str,
    now: i64,
) -> Result<(), TenantError> {
    require(tx, tenant)?;
    if !valid_id(purpose) {
        return Err(TenantError::BadPurpose(purpose.to_owned()));
    }
    let inserted = tx.sql().execute(
        "INSERT INTO purposes (tenant, id, description) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
        params![tenant, purpose, description],
    )?;
    if inserted == 0 {
        return Err(TenantError::PurposeExists {
            tenant: tenant.to_owned(),
            purpose: purpose.to_owned(),
        });
    }
    audit::append(
        tx,
        tenant,
        Entry::purpose(
            now,
            purpose,
            "purpose-added",
            &serde_json::json!({ "description": description }),
        ),
    )?;
    Ok(())
}

/// The description `tenant add` gives the built-in purpose.
pub const DEFAULT_PURPOSE_DESCRIPTION: &str = "Keep and use the contact's data at all";

/// A purpose's description as a contact reads it in `language`: the built-in
/// purpose, still described as klar set it up, in the contact's own language;
/// every other description as the company wrote it.
pub fn purpose_in(purpose: &str, description: &str, language: &str) -> String {
    if purpose != DEFAULT_PURPOSE || description != DEFAULT_PURPOSE_DESCRIPTION {
        return description.to_owned();
    }
    match language {
        "en" => "keeping in business contact".to_owned(),
        _ => "Pflege des geschäftlichen Kontakts".to_owned(),
    }
}

pub fn purposes(conn: &Conn, tenant: &str) -> Result<Vec<(String, String)>> {
    let mut stmt = conn
        .sql()
        .prepare("SELECT id, description FROM purposes WHERE tenant = ?1 ORDER BY id")?;
    let rows = stmt.query_map([tenant], |r| Ok((r.get(0)?, r.get(1)?)))?;
    rows.collect::<crate::store::sql::Result<_>>()
        .map_err(Error::from)
}

/// The tenant's purposes with their descriptions and how many cases each
/// has (one pass over the tenant's cases).
/// A purpose as the lists show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PurposeRow {
    pub id: String,
    pub description: String,
    pub cases: i64,
    pub enforcement: Enforcement,
}

pub fn purposes_with_cases(conn: &Conn, tenant: &str) -> Result<Vec<PurposeRow>> {
    let mut counts = std::collections::HashMap::new();
    {
        let mut stmt = conn
            .sql()
            .prepare("SELECT purpose, COUNT(*) FROM cases WHERE tenant = ?1 GROUP BY purpose")?;
        let rows = stmt.query_map([tenant], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
        })?;
        for row in rows {
            let (purpose, n) = row?;
            counts.insert(purpose, n);
        }
    }
    let enforcements = enforcements(conn, tenant)?;
    Ok(purposes(conn, tenant)?
        .into_iter()
        .map(|(id, description)| PurposeRow {
            cases: counts.get(&id).copied().unwrap_or(0),
            enforcement: enforcements.get(&id).copied().unwrap_or_default(),
            id,
            description,
        })
        .collect())
}

/// Stores a new policy version and makes it the active one. The caller has
/// checked the policy; a policy with errors must never get here.
pub fn set_policy(
    tx: &Tx<'_>,
    tenant: &str,
    source: &str,
    author: &str,
    message: &str,
    now: i64,
) -> Result<PolicyVersion, TenantError> {
    store_version(
        tx,
        tenant,
        &NewVersion {
            source,
            author,
            message,
            ..NewVersion::default()
        },
        now,
    )
}

/// Stores a new policy version with its tests and makes it the active one,
/// with one audit row: `policy-set`, or `policy-set-untested` (carrying the
/// reason and the tested version it replaces) when a version without tests
/// replaces a tested one. The activation rules are the caller's
/// (`crate::app::activation`); this only records.
pub fn store_version(
    tx: &Tx<'_>,
    tenant: &str,
    new: &NewVersion<'_>,
    now: i64,
) -> Result<PolicyVersion, TenantError> {
    require(tx, tenant)?;
    let replaced = active_policy(tx, tenant)?;
    let sha256 = crate::sha256_hex(new.source.as_bytes());
    let version: i64 = tx.sql().query_row(
        "SELECT COALESCE(MAX(version), 0) + 1 FROM policy_versions WHERE tenant = ?1",
        [tenant],
        |r| r.get(0),
    )?;
    tx.sql().execute(
        "UPDATE policy_versions SET active = 0 WHERE tenant = ?1 AND active = 1",
        [tenant],
    )?;
    tx.sql().execute(
        "INSERT INTO policy_versions (tenant, version, source, sha256, author, message, created_at, active, tests)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 1, ?8)",
        params![
            tenant,
            version,
            new.source,
            sha256,
            new.author,
            new.message,
            now,
            new.tests
        ],
    )?;
    let mut detail = serde_json::json!({
        "version": version,
        "author": new.author,
        "message": new.message,
        "tested": new.tests.is_some(),
    });
    if let Some(n) = new.probed_contacts {
        detail["probed_contacts"] = serde_json::json!(n);
    }
    let untested_over_tested = new.tests.is_none() && replaced.as_ref().is_some_and(|r| r.tested());
    let kind = match (untested_over_tested, new.untested_reason) {
        (true, reason) => {
            detail["reason"] = serde_json::json!(reason.unwrap_or_default());
            detail["replaces"] = serde_json::json!(replaced.as_ref().map(|r| r.version));
            "policy-set-untested"
        }
        (false, _) => "policy-set",
    };
    audit::append(
        tx,
        tenant,
        Entry {
            at: now,
            contact: None,
            purpose: None,
            kind: kind.to_owned(),
            detail: detail.to_string(),
            policy_sha256: Some(sha256.clone()),
        },
    )?;
    Ok(PolicyVersion {
        version,
        source: new.source.to_owned(),
        sha256,
        author: new.author.to_owned(),
        message: new.message.to_owned(),
        created_at: now,
        active: true,
        tests: new.tests.map(str::to_owned),
    })
}

pub fn policy_versions(conn: &Conn, tenant: &str) -> Result<Vec<PolicyVersion>> {
    let mut stmt = conn.sql().prepare(
        "SELECT version, source, sha256, author, message, created_at, active, tests
         FROM policy_versions WHERE tenant = ?1 ORDER BY version",
    )?;
    let rows = stmt.query_map([tenant], |r| {
        Ok(PolicyVersion {
            version: r.get(0)?,
            source: r.get(1)?,
            sha256: r.get(2)?,
            author: r.get(3)?,
            message: r.get(4)?,
            created_at: r.get(5)?,
            active: r.get::<_, i64>(6)? == 1,
            tests: r.get(7)?,
        })
    })?;
    rows.collect::<crate::store::sql::Result<_>>()
        .map_err(Error::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing;

    #[test]
    fn a_tenant_gets_the_default_purpose_and_an_audit_row() {
        for mut store in testing::both() {
            store
                .transaction(|tx| add(tx, "acme", "ACME GmbH", "Europe/Berlin", "de", 100))
                .expect("adds");
            let tenant = require(store.connection(), "acme").expect("exists");
            assert_eq!(tenant.timezone, chrono_tz::Europe::Berlin);
            let purposes = purposes(store.connection(), "acme").expect("purposes");
            assert_eq!(purposes[0].0, DEFAULT_PURPOSE);
            let rows = audit::rows(store.connection(), "acme", None).expect("rows");
            assert_eq!(rows[0].entry.kind, "tenant-created");
        }
    }

    #[test]
    fn bad_ids_time_zones_and_duplicates_are_refused() {
        for mut store in testing::both() {
            let err = store
                .transaction(|tx| add(tx, "ACME", "x", "Europe/Berlin", "de", 1))
                .expect_err("bad id");
            assert!(matches!(err, TenantError::BadId(_)));
            let err = store
                .transaction(|tx| add(tx, "acme", "x", "Mars/Olympus", "de", 1))
                .expect_err("bad tz");
            assert_eq!(
                err.to_string(),
                "unknown time zone \"Mars/Olympus\"; use a name like Europe/Berlin"
            );
            store
                .transaction(|tx| add(tx, "acme", "x", "UTC", "en", 1))
                .expect("adds");
            let err = store
                .transaction(|tx| add(tx, "acme", "x", "UTC", "en", 2))
                .expect_err("duplicate");
            assert_eq!(err.to_string(), "tenant acme already exists");
        }
    }

    #[test]
    fn a_new_policy_version_replaces_the_active_one() {
        for mut store in testing::both() {
            store
                .transaction(|tx| {
                    add(tx, "acme", "ACME", "UTC", "en", 1)?;
                    set_policy(tx, "acme", "fn answer_days(c) { 7 }", "jd", "first", 2)?;
                    set_policy(tx, "acme", "fn answer_days(c) { 14 }", "jd", "longer", 3)
                })
                .expect("sets");
            let versions = policy_versions(store.connection(), "acme").expect("versions");
            assert_eq!(versions.len(), 2);
            assert!(!versions[0].active);
            assert!(versions[1].active);
            assert_eq!(versions[1].version, 2);
            assert_eq!(
                audit::verify(store.connection(), "acme").expect("verifies"),
                []
            );
        }
    }

    #[test]
    fn an_untested_version_over_a_tested_one_is_audited_with_its_reason() {
        for mut store in testing::both() {
            let tested = NewVersion {
                source: "fn answer_days(c) { 7 }",
                tests: Some("[[test]]"),
                author: "jd",
                message: "tested",
                ..NewVersion::default()
            };
            let untested = NewVersion {
                source: "fn answer_days(c) { 9 }",
                author: "jd",
                message: "hotfix",
                untested_reason: Some("the DPO asked for it today"),
                probed_contacts: Some(3),
                ..NewVersion::default()
            };
            store
                .transaction(|tx| {
                    add(tx, "acme", "ACME", "UTC", "en", 1)?;
                    store_version(tx, "acme", &tested, 2)?;
                    store_version(tx, "acme", &untested, 3)
                })
                .expect("stores");
            let versions = policy_versions(store.connection(), "acme").expect("versions");
            assert!(versions[0].tested());
            assert!(!versions[1].tested());
            let rows = audit::rows(store.connection(), "acme", None).expect("rows");
            let last = rows.last().expect("a row");
            assert_eq!(last.entry.kind, "policy-set-untested");
            let detail: serde_json::Value = serde_json::from_str(&last.entry.detail).expect("JSON");
            assert_eq!(detail["reason"], "the DPO asked for it today");
            assert_eq!(detail["replaces"], 1);
            assert_eq!(detail["probed_contacts"], 3);
            assert_eq!(rows[rows.len() - 2].entry.kind, "policy-set");
        }
    }
}
