//! Tenant and purpose administration: a tenant's settings (name, time zone,
//! language, default owner, the company's legal details) and its purposes'
//! descriptions change through here, checked and audited with what they
//! were before; a purpose is removed only while nothing refers to it.

use serde_json::{Value, json};

use super::text::{MAX_WHO, MAX_WHY, one_line};
use crate::store::audit::{self, Entry};
use crate::store::tenants::{self, Enforcement, Legal, Tenant, TenantError};
use crate::store::{Store, StoreError};

/// The longest postal address, in characters.
pub const MAX_ADDRESS: usize = 500;
/// The longest URL.
pub const MAX_URL: usize = 2_000;

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("there is no tenant {0}")]
    UnknownTenant(String),
    #[error("tenant {tenant} has no purpose {purpose}")]
    UnknownPurpose { tenant: String, purpose: String },
    #[error("{0}")]
    Invalid(String),
    #[error(
        "purpose {purpose} cannot be removed: {why}; it stays part of the record (change its description instead)"
    )]
    InUse { purpose: String, why: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<crate::store::Error> for SettingsError {
    fn from(err: crate::store::Error) -> SettingsError {
        SettingsError::Store(err.into())
    }
}

impl From<TenantError> for SettingsError {
    fn from(err: TenantError) -> SettingsError {
        match err {
            TenantError::Unknown(id) => SettingsError::UnknownTenant(id),
            TenantError::Sql(err) => SettingsError::Store(err.into()),
            other => SettingsError::Invalid(other.to_string()),
        }
    }
}

/// A change of settings: `None` leaves a setting as it is; for the
/// optional ones, `Some("")` clears it.
#[derive(Debug, Clone, Default)]
pub struct Change {
    pub name: Option<String>,
    pub timezone: Option<String>,
    pub locale: Option<String>,
    pub default_owner: Option<String>,
    pub address: Option<String>,
    pub managing_directors: Option<String>,
    pub register_entry: Option<String>,
    pub imprint_url: Option<String>,
    pub privacy_url: Option<String>,
    /// A German state (`DE-BW`); blank clears.
    pub region: Option<String>,
    /// Closure days, `12-24` or `2026-12-28`; an empty list clears.
    pub closure_days: Option<Vec<String>>,
}

impl Change {
    pub fn is_empty(&self) -> bool {
        [
            &self.name,
            &self.timezone,
            &self.locale,
            &self.default_owner,
            &self.address,
            &self.managing_directors,
            &self.register_entry,
            &self.imprint_url,
            &self.privacy_url,
            &self.region,
        ]
        .iter()
        .all(|v| v.is_none())
            && self.closure_days.is_none()
    }
}

/// A language tag as contacts' languages are written: `de`, `en`, `de-AT`.
fn language_tag(tag: &str) -> bool {
    if tag.len() > 35 {
        return false;
    }
    let mut parts = tag.split('-');
    parts
        .next()
        .is_some_and(|p| (2..=3).contains(&p.len()) && p.chars().all(|c| c.is_ascii_lowercase()))
        && parts.all(|p| (2..=8).contains(&p.len()) && p.chars().all(|c| c.is_ascii_alphanumeric()))
}

/// An optional one-line setting: a blank value clears it. The limits apply
/// to the value as given, blanks around it included.
fn optional_line(what: &str, value: &str, max: usize) -> Result<Option<String>, SettingsError> {
    if value.trim().is_empty()
        && !value.chars().any(char::is_control)
        && value.chars().count() <= max
    {
        return Ok(None);
    }
    one_line(what, value, max).map_err(SettingsError::Invalid)?;
    Ok(Some(value.trim().to_owned()))
}

/// An optional web address: the empty string clears it.
fn optional_url(what: &str, url: &str) -> Result<Option<String>, SettingsError> {
    if url.is_empty() {
        return Ok(None);
    }
    one_line(what, url, MAX_URL).map_err(SettingsError::Invalid)?;
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    // No blank of any kind (the byte-order mark included), no quote or
    // angle bracket: the address goes into pages and mails as a link.
    let fits = |c: char| !c.is_whitespace() && c != '\u{feff}' && !['"', '<', '>'].contains(&c);
    match rest {
        Some(rest) if !rest.is_empty() && rest.chars().all(fits) => Ok(Some(url.to_owned())),
        _ => Err(SettingsError::Invalid(format!(
            "{what} {url:?} is not a web address: use https://…"
        ))),
    }
}

fn address(value: &str) -> Result<Option<String>, SettingsError> {
    if value.chars().count() > MAX_ADDRESS {
        return Err(SettingsError::Invalid(format!(
            "address is longer than {MAX_ADDRESS} characters"
        )));
    }
    // Line ends as Windows, old Macs or the web write them.
    let value = value.replace("\r\n", "\n").replace('\r', "\n");
    if value.chars().any(|c| c.is_control() && c != '\n') {
        return Err(SettingsError::Invalid(
            "address contains a control character; only line breaks may separate its lines"
                .to_owned(),
        ));
    }
    let lines: Vec<&str> = value
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    if lines.is_empty() {
        return Ok(None);
    }
    Ok(Some(lines.join("\n")))
}

/// The tenant with `change` applied, checked.
fn applied(mut tenant: Tenant, change: &Change) -> Result<Tenant, SettingsError> {
    if let Some(name) = &change.name {
        one_line("name", name, MAX_WHO).map_err(SettingsError::Invalid)?;
        tenant.name = name.trim().to_owned();
    }
    if let Some(tz) = &change.timezone {
        tenant.timezone = tenants::parse_timezone(tz.trim())?;
    }
    if let Some(locale) = &change.locale {
        if !language_tag(locale) {
            return Err(SettingsError::Invalid(format!(
                "locale {locale:?} is not a language tag: use de, en or de-AT"
            )));
        }
        locale.clone_into(&mut tenant.locale);
    }
    if let Some(owner) = &change.default_owner {
        tenant.default_owner =
            optional_line("default owner", owner, crate::app::contacts::limits::OWNER)?;
    }
    let legal = &mut tenant.legal;
    if let Some(value) = &change.address {
        legal.address = address(value)?;
    }
    if let Some(value) = &change.managing_directors {
        legal.managing_directors = optional_line("managing directors", value, MAX_WHY)?;
    }
    if let Some(value) = &change.register_entry {
        legal.register_entry = optional_line("register entry", value, MAX_WHO)?;
    }
    if let Some(value) = &change.imprint_url {
        legal.imprint_url = optional_url("imprint URL", value)?;
    }
    if let Some(value) = &change.privacy_url {
        legal.privacy_url = optional_url("privacy URL", value)?;
    }
    if let Some(code) = &change.region {
        tenant.region = if code.is_empty() {
            None
        } else if let Some(problem) = crate::engine::calendar::region_problem(code) {
            return Err(SettingsError::Invalid(problem));
        } else {
            Some(code.clone())
        };
    }
    if let Some(days) = &change.closure_days {
        let mut checked = Vec::with_capacity(days.len());
        for day in days {
            crate::engine::calendar::closure_day(day).map_err(SettingsError::Invalid)?;
            if !checked.contains(day) {
                checked.push(day.clone());
            }
        }
        checked.sort();
        tenant.closure_days = checked;
    }
    Ok(tenant)
}

/// A tenant's settings as JSON, for the audit row's before and after.
pub fn settings_json(t: &Tenant) -> Value {
    json!({
        "name": t.name,
        "timezone": t.timezone.name(),
        "locale": t.locale,
        "default_owner": t.default_owner,
        "legal": t.legal,
        "region": t.region,
        "closure_days": t.closure_days,
    })
}

/// What changed, field by field: `{field: {"from": …, "to": …}}`.
fn differences(before: &Value, after: &Value) -> serde_json::Map<String, Value> {
    let mut changed = serde_json::Map::new();
    let (Some(b), Some(a)) = (before.as_object(), after.as_object()) else {
        return changed;
    };
    for (key, to) in a {
        let from = b.get(key).cloned().unwrap_or(Value::Null);
        if from != *to {
            changed.insert(key.clone(), json!({ "from": from, "to": to }));
        }
    }
    changed
}

/// Changes a tenant's settings: one `tenant-changed` audit row with what
/// each changed setting was and is. Nothing changes if any value is bad.
/// Returns the tenant as it is now and the names of what changed.
pub fn set_tenant(
    store: &mut Store,
    id: &str,
    change: &Change,
    now: i64,
) -> Result<(Tenant, Vec<String>), SettingsError> {
    store.write(|tx| {
        let before = tenants::require(tx, id)?;
        let after = applied(before.clone(), change)?;
        let changed = differences(&settings_json(&before), &settings_json(&after));
        if changed.is_empty() {
            return Ok((after, Vec::new()));
        }
        tenants::save_settings(tx, &after)?;
        let names = changed.keys().cloned().collect();
        audit::append(
            tx,
            id,
            Entry::tenant(now, "tenant-changed", &Value::Object(changed)),
        )?;
        Ok((after, names))
    })
}

/// Changes a purpose's description (what the standard consent text and
/// the mails call it), audited as `purpose-changed`. Texts already set keep
/// their words.
pub fn set_purpose(
    store: &mut Store,
    tenant: &str,
    purpose: &str,
    description: &str,
    now: i64,
) -> Result<bool, SettingsError> {
    one_line("description", description, MAX_WHY).map_err(SettingsError::Invalid)?;
    let description = description.trim();
    store.write(|tx| {
        tenants::require(tx, tenant)?;
        let before = tenants::purposes(tx, tenant)?
            .into_iter()
            .find(|(id, _)| id == purpose)
            .map(|(_, d)| d)
            .ok_or_else(|| unknown_purpose(tenant, purpose))?;
        change_purpose(
            tx,
            (tenant, purpose),
            ("description", &before, description),
            now,
            |tx| tenants::set_purpose_description(tx, tenant, purpose, description),
        )
    })
}

fn unknown_purpose(tenant: &str, purpose: &str) -> SettingsError {
    SettingsError::UnknownPurpose {
        tenant: tenant.to_owned(),
        purpose: purpose.to_owned(),
    }
}

/// One setting of a purpose changes: `write` stores it, and the audit log
/// gets a `purpose-changed` row with the value before and after; nothing
/// happens if it is the same. Returns whether it changed.
fn change_purpose(
    tx: &crate::store::Tx<'_>,
    (tenant, purpose): (&str, &str),
    (setting, before, after): (&str, &str, &str),
    now: i64,
    write: impl FnOnce(&crate::store::Tx<'_>) -> crate::store::Result<bool>,
) -> Result<bool, SettingsError> {
    if before == after {
        return Ok(false);
    }
    write(tx)?;
    audit::append(
        tx,
        tenant,
        Entry::purpose(
            now,
            purpose,
            "purpose-changed",
            &json!({ setting: { "from": before, "to": after } }),
        ),
    )?;
    Ok(true)
}

/// `PUT /v1/purposes/{purpose}`: adds the purpose (audited as
/// `purpose-added`), or changes its description as [`set_purpose`] does, in
/// one transaction; then sets its enforcement if one is given. Returns
/// whether it was added.
pub fn put_purpose(
    store: &mut Store,
    tenant: &str,
    (purpose, description): (&str, &str),
    enforcement: Option<Enforcement>,
    now: i64,
) -> Result<bool, SettingsError> {
    one_line("description", description, MAX_WHY).map_err(SettingsError::Invalid)?;
    let added = store.write(|tx| {
        let known = tenants::purposes(tx, tenant)?
            .iter()
            .any(|(id, _)| id == purpose);
        if known {
            return Ok::<_, SettingsError>(false);
        }
        match tenants::add_purpose(tx, tenant, purpose, description.trim(), now) {
            Ok(()) => Ok(true),
            Err(TenantError::BadPurpose(id)) => Err(SettingsError::Invalid(
                TenantError::BadPurpose(id).to_string(),
            )),
            Err(other) => Err(other.into()),
        }
    })?;
    if !added {
        set_purpose(store, tenant, purpose, description, now)?;
    }
    if let Some(enforcement) = enforcement {
        set_enforcement(store, tenant, purpose, enforcement, now)?;
    }
    Ok(added)
}

/// Sets how strict a purpose is about use (see [`Enforcement`]), audited as
/// `purpose-changed` with the enforcement before and after. Returns whether
/// it changed.
pub fn set_enforcement(
    store: &mut Store,
    tenant: &str,
    purpose: &str,
    enforcement: Enforcement,
    now: i64,
) -> Result<bool, SettingsError> {
    store.write(|tx| {
        tenants::require(tx, tenant)?;
        let before = tenants::enforcements(tx, tenant)?
            .get(purpose)
            .copied()
            .ok_or_else(|| unknown_purpose(tenant, purpose))?;
        change_purpose(
            tx,
            (tenant, purpose),
            ("enforcement", before.as_str(), enforcement.as_str()),
            now,
            |tx| tenants::set_enforcement(tx, tenant, purpose, enforcement),
        )
    })
}

/// Removes a purpose, audited as `purpose-removed`; refused for
/// `contact-data`, and while the purpose has cases or any evidence names it.
pub fn remove_purpose(
    store: &mut Store,
    tenant: &str,
    purpose: &str,
    now: i64,
) -> Result<(), SettingsError> {
    if purpose == tenants::DEFAULT_PURPOSE {
        return Err(SettingsError::InUse {
            purpose: purpose.to_owned(),
            why: "every tenant has it".to_owned(),
        });
    }
    store.write(|tx| {
        tenants::require(tx, tenant)?;
        let (cases, evidence) = tenants::purpose_in_use(tx, tenant, purpose)?;
        if cases > 0 {
            return Err(SettingsError::InUse {
                purpose: purpose.to_owned(),
                why: format!("it has {cases} case(s)"),
            });
        }
        if evidence {
            return Err(SettingsError::InUse {
                purpose: purpose.to_owned(),
                why: "evidence names it".to_owned(),
            });
        }
        if !tenants::remove_purpose(tx, tenant, purpose)? {
            return Err(unknown_purpose(tenant, purpose));
        }
        audit::append(
            tx,
            tenant,
            Entry::purpose(now, purpose, "purpose-removed", &json!({})),
        )?;
        Ok(())
    })
}

/// The company's legal details as a page's or a mail's footer shows them.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Footer {
    /// Name, address lines, managing directors, register entry.
    pub lines: Vec<String>,
    pub imprint_url: Option<String>,
    pub privacy_url: Option<String>,
}

/// The footer of the tenant's pages and mails in `language`.
pub fn footer(tenant: &Tenant, language: &str) -> Footer {
    Footer {
        lines: legal_lines(tenant, language),
        imprint_url: tenant.legal.imprint_url.clone(),
        privacy_url: tenant.legal.privacy_url.clone(),
    }
}

/// The lines of the company's legal details, in order, for a page's or a
/// mail's footer: name, address lines, managing directors, register entry.
pub fn legal_lines(tenant: &Tenant, language: &str) -> Vec<String> {
    let legal: &Legal = &tenant.legal;
    let mut lines = vec![tenant.name.clone()];
    if let Some(address) = &legal.address {
        lines.extend(address.lines().map(str::to_owned));
    }
    if let Some(directors) = &legal.managing_directors {
        lines.push(match language {
            "en" => format!("Managing directors: {directors}"),
            _ => format!("Geschäftsführung: {directors}"),
        });
    }
    if let Some(register) = &legal.register_entry {
        lines.push(register.clone());
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acme() -> Tenant {
        Tenant {
            id: "acme".into(),
            name: "ACME GmbH".into(),
            timezone: chrono_tz::Europe::Berlin,
            locale: "de".into(),
            default_owner: None,
            legal: Legal::default(),
            region: None,
            closure_days: Vec::new(),
        }
    }

    #[test]
    fn settings_are_checked_and_empty_clears() {
        let change = Change {
            name: Some("Müller Maschinenbau GmbH".into()),
            address: Some("Hauptstraße 1\r\n\r\n70173 Stuttgart\n".into()),
            imprint_url: Some("https://mueller.example/impressum".into()),
            default_owner: Some("vertrieb".into()),
            ..Change::default()
        };
        let t = applied(acme(), &change).expect("valid");
        assert_eq!(
            t.legal.address.as_deref(),
            Some("Hauptstraße 1\n70173 Stuttgart")
        );
        assert_eq!(t.default_owner.as_deref(), Some("vertrieb"));
        let cleared = applied(
            t,
            &Change {
                default_owner: Some(String::new()),
                ..Change::default()
            },
        )
        .expect("valid");
        assert_eq!(cleared.default_owner, None);
        for bad in [
            Change {
                timezone: Some("Europe/Stuttgart".into()),
                ..Change::default()
            },
            Change {
                locale: Some("Deutsch".into()),
                ..Change::default()
            },
            Change {
                privacy_url: Some("mueller.example/datenschutz".into()),
                ..Change::default()
            },
            Change {
                name: Some(" ".into()),
                ..Change::default()
            },
            Change {
                register_entry: Some("HRB\u{1b}[2J".into()),
                ..Change::default()
            },
        ] {
            assert!(applied(acme(), &bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn differences_name_each_changed_setting_with_before_and_after() {
        let before = settings_json(&acme());
        let mut t = acme();
        t.locale = "en".into();
        let changed = differences(&before, &settings_json(&t));
        assert_eq!(
            Value::Object(changed),
            json!({"locale": {"from": "de", "to": "en"}})
        );
    }
}
