//! Setting a tenant up: `klar init`, `tenant add`, `purpose add`, `apikey`,
//! `webhook`.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};

use super::{NowArg, open_store, printable};
use crate::store::{Store, tenants};

/// `klar init`
pub(super) fn init(db: &crate::store::Location) -> Result<ExitCode> {
    let store = Store::open(db)?;
    println!("{}: ready (schema version {})", db, store.schema_version()?);
    Ok(ExitCode::SUCCESS)
}

pub(super) fn print_active(tenant: &str, version: &crate::store::tenants::PolicyVersion) {
    println!(
        "{tenant}: policy version {} is active (sha256 {})",
        version.version,
        &version.sha256[..12.min(version.sha256.len())]
    );
}

/// `klar tenant add`
#[allow(clippy::too_many_arguments)] // One per flag of the command.
pub(super) fn tenant_add(
    plugin: Option<&Path>,
    db: &crate::store::Location,
    id: &str,
    name: &str,
    timezone: &str,
    locale: &str,
    policy: Option<&Path>,
    now: &NowArg,
) -> Result<ExitCode> {
    let now = now.resolve()?.timestamp();
    let checked = match policy {
        None => None,
        Some(file) => match super::policy::checked_and_tested(plugin, file, &[])? {
            Some(checked) => Some((file, checked)),
            None => {
                println!("{}: has errors; the tenant was not added", file.display());
                return Ok(ExitCode::from(1));
            }
        },
    };
    let mut store = open_store(db)?;
    store.transaction(|tx| -> Result<()> {
        tenants::add(tx, id, name, timezone, locale, now)?;
        println!("added tenant {id} ({name}, {timezone})");
        Ok(())
    })?;
    // A new tenant has no contacts and no tested version yet, so the rules
    // of activation let any checked policy through; they run all the same,
    // so that the version is stored and audited like any other.
    if let Some((file, checked)) = checked {
        let tests = checked.stored_tests().map(str::to_owned);
        let super::policy::Checked {
            source,
            mut session,
            ..
        } = checked;
        let candidate = crate::app::activation::Candidate {
            source: &source,
            tests: tests.as_deref(),
            author: "klar tenant add",
            message: "initial policy",
            untested_reason: None,
        };
        let shown = file.display().to_string();
        match super::policy::activate_and_report(
            &mut store,
            &mut session,
            id,
            &candidate,
            now,
            &shown,
        )? {
            Some(version) => print_active(id, &version),
            None => return Ok(ExitCode::from(1)),
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `klar purpose add`
pub(super) fn purpose_add(
    db: &crate::store::Location,
    tenant: &str,
    id: &str,
    description: &str,
    now: &NowArg,
) -> Result<ExitCode> {
    let now = now.resolve()?.timestamp();
    let mut store = open_store(db)?;
    store.transaction(|tx| tenants::add_purpose(tx, tenant, id, description, now))?;
    println!("{tenant}: added purpose {id}");
    Ok(ExitCode::SUCCESS)
}

/// `klar apikey create|revoke|list`
/// `klar serve`: the API, the response page and the background loops.
pub(super) fn serve(plugin: Option<&Path>, flags: crate::serve::config::Flags) -> Result<ExitCode> {
    let config = crate::serve::Config::load(&flags, |k| std::env::var(k).ok())?;
    // Refused before the plugin loads: a mistyped --db is not served as a new,
    // empty database.
    drop(open_store(&config.db)?);
    crate::serve::run(config, super::load_plugin(plugin)?)?;
    Ok(ExitCode::SUCCESS)
}

pub(super) fn apikey(
    db: &crate::store::Location,
    command: super::ApikeyCommand,
) -> Result<ExitCode> {
    use crate::store::apikeys;
    let mut store = open_store(db)?;
    match command {
        super::ApikeyCommand::Create {
            tenant,
            name,
            scope,
            now,
        } => {
            let now = now.resolve()?.timestamp();
            tenants::require(store.connection(), &tenant)?;
            let (secret, key) = crate::app::keys::create(&mut store, &tenant, &name, scope, now)?;
            eprintln!(
                "created key {} ({}, scope {}) for {tenant}; it is shown only now:",
                key.id,
                key.name,
                key.scope.as_str()
            );
            println!("{secret}");
            Ok(ExitCode::SUCCESS)
        }
        super::ApikeyCommand::Revoke { tenant, id, now } => {
            let now = now.resolve()?.timestamp();
            tenants::require(store.connection(), &tenant)?;
            if store.transaction(|tx| apikeys::revoke(tx, &tenant, &id, now))? {
                println!("{tenant}: key {id} revoked");
                Ok(ExitCode::SUCCESS)
            } else {
                println!("{tenant}: no live key {id}");
                Ok(ExitCode::from(1))
            }
        }
        super::ApikeyCommand::List { tenant, json } => {
            tenants::require(store.connection(), &tenant)?;
            let keys = apikeys::list(store.connection(), &tenant)?;
            if json {
                let wire: Vec<crate::wire::ApiKey> = crate::wire::list(keys.clone());
                println!("{}", serde_json::to_string_pretty(&wire)?);
            } else {
                for k in &keys {
                    println!(
                        "{:<14} {:<6} {:<24} {}",
                        k.id,
                        k.scope.as_str(),
                        printable(&k.name),
                        if k.revoked_at.is_some() {
                            "revoked"
                        } else {
                            "live"
                        }
                    );
                }
                println!("{} key(s)", keys.len());
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `klar webhook set|remove`
pub(super) fn webhook(
    db: &crate::store::Location,
    command: super::WebhookCommand,
) -> Result<ExitCode> {
    use crate::store::webhooks;
    let mut store = open_store(db)?;
    match command {
        super::WebhookCommand::Set {
            tenant,
            url,
            config,
            now,
        } => {
            let now = now.resolve()?.timestamp();
            tenants::require(store.connection(), &tenant)?;
            let flags = crate::serve::config::Flags {
                db: Some(db.to_owned()),
                config,
                ..Default::default()
            };
            let targets = crate::serve::Config::load(&flags, |k| std::env::var(k).ok())?.targets;
            let secret = crate::app::webhook::set(&mut store, &targets, &tenant, &url, now)?;
            eprintln!("{tenant}: actions go to {url}; the signing secret is shown only now:");
            println!("{secret}");
            Ok(ExitCode::SUCCESS)
        }
        super::WebhookCommand::Remove { tenant } => {
            tenants::require(store.connection(), &tenant)?;
            if store.transaction(|tx| webhooks::remove(tx, &tenant))? {
                println!("{tenant}: no webhook any more; poll GET /v1/outbox");
                Ok(ExitCode::SUCCESS)
            } else {
                println!("{tenant}: had no webhook");
                Ok(ExitCode::from(1))
            }
        }
    }
}

/// `klar tenant list`
pub(super) fn tenant_list(db: &crate::store::Location, json: bool) -> Result<ExitCode> {
    let store = open_store(db)?;
    let all = tenants::list(store.connection())?;
    if json {
        let wire: Vec<crate::wire::TenantSettings> = crate::wire::list(all);
        show!("{}", serde_json::to_string_pretty(&wire)?);
        return Ok(ExitCode::SUCCESS);
    }
    show!(
        "{:<20} {:<32} {:<20} {:<6} default owner",
        "tenant",
        "name",
        "time zone",
        "locale"
    );
    for t in &all {
        show!(
            "{:<20} {:<32} {:<20} {:<6} {}",
            t.id,
            t.name,
            t.timezone.name(),
            t.locale,
            t.default_owner.as_deref().unwrap_or("-")
        );
    }
    show!("{} tenant(s)", all.len());
    Ok(ExitCode::SUCCESS)
}

/// `klar tenant show`
pub(super) fn tenant_show(db: &crate::store::Location, id: &str, json: bool) -> Result<ExitCode> {
    let store = open_store(db)?;
    let conn = store.connection();
    let tenant = tenants::require(conn, id)?;
    let purposes = tenants::purposes_with_cases(conn, id)?;
    let active = tenants::active_policy(conn, id)?;
    if json {
        let shown = serde_json::json!({
            "tenant": crate::wire::TenantSettings::from(tenant),
            "purposes": purposes
                .into_iter()
                .map(crate::wire::Purpose::from)
                .collect::<Vec<_>>(),
            "policy_version": active.map(|v| v.version),
        });
        show!("{}", serde_json::to_string_pretty(&shown)?);
        return Ok(ExitCode::SUCCESS);
    }
    let legal = &tenant.legal;
    let or_dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".to_owned());
    show!("tenant              {}", tenant.id);
    show!("name                {}", tenant.name);
    show!("time zone           {}", tenant.timezone.name());
    show!("locale              {}", tenant.locale);
    show!("default owner       {}", or_dash(&tenant.default_owner));
    show!("region              {}", or_dash(&tenant.region));
    show!(
        "closure days        {}",
        if tenant.closure_days.is_empty() {
            "-".to_owned()
        } else {
            tenant.closure_days.join(", ")
        }
    );
    show!(
        "address             {}",
        or_dash(&legal.address).replace('\n', "\n                    ")
    );
    show!("managing directors  {}", or_dash(&legal.managing_directors));
    show!("register entry      {}", or_dash(&legal.register_entry));
    show!("imprint             {}", or_dash(&legal.imprint_url));
    show!("privacy notice      {}", or_dash(&legal.privacy_url));
    show!(
        "policy              {}",
        active.map_or_else(
            || "none set".to_owned(),
            |v| format!("version {}", v.version)
        )
    );
    show!("purposes:");
    for p in purposes {
        show!(
            "  {:<18} {:>8} case(s)  {:<16} {}",
            p.id,
            p.cases,
            p.enforcement.as_str(),
            p.description
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `klar tenant set`
pub(super) fn tenant_set(
    db: &crate::store::Location,
    id: &str,
    change: &crate::app::settings::Change,
    now: &NowArg,
) -> Result<ExitCode> {
    if change.is_empty() {
        anyhow::bail!(
            "nothing to change: name a setting, e.g. --default-owner NAME (klar tenant set --help)"
        );
    }
    let now = now.resolve()?.timestamp();
    let mut store = open_store(db)?;
    let (_, changed) = crate::app::settings::set_tenant(&mut store, id, change, now)?;
    if changed.is_empty() {
        show!("{id}: nothing changed (the settings were already so)");
    } else {
        show!("{id}: changed {}", changed.join(", "));
    }
    Ok(ExitCode::SUCCESS)
}

/// `klar purpose list`
pub(super) fn purpose_list(
    db: &crate::store::Location,
    tenant: &str,
    json: bool,
) -> Result<ExitCode> {
    let store = open_store(db)?;
    tenants::require(store.connection(), tenant)?;
    let purposes = tenants::purposes_with_cases(store.connection(), tenant)?;
    if json {
        let wire: Vec<crate::wire::Purpose> = purposes
            .into_iter()
            .map(crate::wire::Purpose::from)
            .collect();
        show!("{}", serde_json::to_string_pretty(&wire)?);
        return Ok(ExitCode::SUCCESS);
    }
    show!(
        "{:<20} {:>8}  {:<16} description",
        "purpose",
        "cases",
        "enforcement"
    );
    for p in &purposes {
        show!(
            "{:<20} {:>8}  {:<16} {}",
            p.id,
            p.cases,
            p.enforcement.as_str(),
            p.description
        );
    }
    show!("{} purpose(s)", purposes.len());
    Ok(ExitCode::SUCCESS)
}

/// `klar purpose set`
pub(super) fn purpose_set(
    db: &crate::store::Location,
    tenant: &str,
    id: &str,
    (description, enforcement): (Option<&str>, Option<tenants::Enforcement>),
    now: &NowArg,
) -> Result<ExitCode> {
    let now = now.resolve()?.timestamp();
    let mut store = open_store(db)?;
    if description.is_none() && enforcement.is_none() {
        anyhow::bail!("say what to change: --description, --enforcement or both");
    }
    if let Some(description) = description {
        if crate::app::settings::set_purpose(&mut store, tenant, id, description, now)? {
            show!("{tenant}: purpose {id} is now described as {description:?}");
        } else {
            show!("{tenant}: purpose {id} already had that description");
        }
    }
    if let Some(enforcement) = enforcement {
        let changed =
            crate::app::settings::set_enforcement(&mut store, tenant, id, enforcement, now)?;
        let word = enforcement.as_str();
        if changed {
            show!("{tenant}: purpose {id} is now {word}");
        } else {
            show!("{tenant}: purpose {id} was {word} already");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `klar purpose remove`: exit 1 when refused.
pub(super) fn purpose_remove(
    db: &crate::store::Location,
    tenant: &str,
    id: &str,
    now: &NowArg,
) -> Result<ExitCode> {
    use crate::app::settings::SettingsError;
    let now = now.resolve()?.timestamp();
    let mut store = open_store(db)?;
    match crate::app::settings::remove_purpose(&mut store, tenant, id, now) {
        Ok(()) => {
            show!("{tenant}: removed purpose {id}");
            Ok(ExitCode::SUCCESS)
        }
        Err(err @ SettingsError::InUse { .. }) => {
            show!("{tenant}: {err}");
            Ok(ExitCode::from(1))
        }
        Err(err) => Err(err.into()),
    }
}

/// `klar store copy`
pub(super) fn store_copy(
    from: &crate::store::Location,
    to: &crate::store::Location,
) -> Result<ExitCode> {
    if from == to {
        anyhow::bail!("--from and --to name the same store ({from})");
    }
    let mut source = Store::open_existing(from)?;
    let mut target = Store::open(to)?;
    let copied = crate::store::copy::copy(&mut source, &mut target)
        .with_context(|| format!("copying {from} to {to}"))?;
    for (table, rows) in &copied.rows {
        println!("{table:<18} {rows:>10}");
    }
    for tenant in &copied.chains {
        println!("{tenant}: audit chain intact in {from} and in {to}");
    }
    println!("{to}: a copy of {from}");
    Ok(ExitCode::SUCCESS)
}
