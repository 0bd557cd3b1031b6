//! Setting a tenant up: `klar init`, `tenant add`, `purpose add`, `apikey`,
//! `webhook`.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;

use super::{NowArg, open_store, printable};
use crate::store::{Store, tenants};

/// `klar init`
pub(super) fn init(db: &Path) -> Result<ExitCode> {
    let store = Store::open(db)?;
    println!(
        "{}: ready (schema version {})",
        db.display(),
        store.schema_version()?
    );
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
    db: &Path,
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
    db: &Path,
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

pub(super) fn apikey(db: &Path, command: super::ApikeyCommand) -> Result<ExitCode> {
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
pub(super) fn webhook(db: &Path, command: super::WebhookCommand) -> Result<ExitCode> {
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
                db: db.to_owned(),
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
