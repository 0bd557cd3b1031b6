//! `klar user …`: the cockpit's accounts, managed by an administrator at a
//! terminal. The audit rows name the CLI as who did it.

use std::process::ExitCode;

use anyhow::Result;

use super::{UserCommand, open_store};
use crate::app::accounts::{self, NewAccount};
use crate::store::accounts::Account;

/// Who the audit rows name for changes made here.
const BY: &str = "cli";

fn signup_url(url: Option<&str>, secret: &str) -> String {
    let base = url.unwrap_or("http://127.0.0.1:8080").trim_end_matches('/');
    format!("{base}/cockpit/signup/{secret}")
}

fn wire(account: &Account) -> serde_json::Value {
    serde_json::json!({
        "id": account.id,
        "name": account.name,
        "email": account.email,
        "roles": account.roles.iter().map(|r| r.as_str()).collect::<Vec<_>>(),
        "language": account.language,
        "digest": account.digest,
        "signed_up": account.has_password,
        "created_at": crate::times::rfc3339(account.created_at),
        "disabled_at": account.disabled_at.map(crate::times::rfc3339),
    })
}

pub(super) fn user(db: &crate::store::Location, command: UserCommand) -> Result<ExitCode> {
    let mut store = open_store(db)?;
    match command {
        UserCommand::Add {
            tenant,
            id,
            name,
            roles,
            email,
            language,
            url,
            now,
        } => {
            let now = now.resolve()?.timestamp();
            let new = NewAccount {
                id: &id,
                name: &name,
                email: email.as_deref(),
                roles,
                language: &language,
            };
            let (account, secret) = accounts::add(&mut store, &tenant, &new, BY, now)?;
            show!(
                "{tenant}: account {} ({}) added with role(s) {}; its sign-up link works once, for 72 hours:",
                account.id,
                account.name,
                account.roles_text()
            );
            println!("{}", signup_url(url.as_deref(), &secret));
            Ok(ExitCode::SUCCESS)
        }
        UserCommand::List { tenant, json } => {
            let list = accounts::list(store.connection(), &tenant)?;
            if json {
                let rows: Vec<_> = list.iter().map(wire).collect();
                println!("{}", serde_json::to_string_pretty(&rows)?);
                return Ok(ExitCode::SUCCESS);
            }
            if list.is_empty() {
                println!(
                    "{tenant}: no accounts; add one with `klar user add {tenant} ID --name NAME --role ROLE`"
                );
            }
            for a in &list {
                let status = match (a.disabled_at, a.has_password) {
                    (Some(_), _) => "disabled",
                    (None, true) => "active",
                    (None, false) => "waiting for sign-up",
                };
                show!(
                    "{:<16} {:<28} {:<28} {}",
                    a.id,
                    a.name,
                    a.roles_text(),
                    status
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        UserCommand::SetRole {
            tenant,
            id,
            roles,
            now,
        } => {
            let now = now.resolve()?.timestamp();
            let account = accounts::set_roles(&mut store, &tenant, &id, &roles, BY, now)?;
            show!(
                "{tenant}: {} now has role(s) {}",
                account.id,
                account.roles_text()
            );
            Ok(ExitCode::SUCCESS)
        }
        UserCommand::Disable { tenant, id, now } => {
            let now = now.resolve()?.timestamp();
            if accounts::disable(&mut store, &tenant, &id, BY, now)? {
                show!("{tenant}: {id} disabled; its sessions have ended");
                Ok(ExitCode::SUCCESS)
            } else {
                show!("{tenant}: {id} was disabled already");
                Ok(ExitCode::from(1))
            }
        }
        UserCommand::Link {
            tenant,
            id,
            url,
            now,
        } => {
            let now = now.resolve()?.timestamp();
            let secret = accounts::new_signup_link(&mut store, &tenant, &id, BY, now)?;
            show!("{tenant}: a new sign-up link for {id}; it works once, for 72 hours:");
            println!("{}", signup_url(url.as_deref(), &secret));
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `klar digest`
pub(super) fn digest(
    db: &crate::store::Location,
    config: Option<std::path::PathBuf>,
    now: &super::NowArg,
) -> Result<ExitCode> {
    let now = now.resolve()?;
    let flags = crate::serve::config::Flags {
        addr: None,
        db: Some(db.to_owned()),
        config,
        tick_seconds: None,
        now: Some(now),
    };
    let config = crate::serve::Config::load(&flags, |k| std::env::var(k).ok())?;
    let Some(smtp) = &config.smtp else {
        anyhow::bail!("the digest is mailed through [smtp] (or KLAR_SMTP_URL); none is set");
    };
    let mailer = crate::delivery::mail::Mailer::new(smtp)?;
    let mut store = open_store(db)?;
    let public_url = config
        .public_url
        .clone()
        .unwrap_or_else(|| "http://127.0.0.1:8080".to_owned());
    let report = mailer.deliver_digests(&mut store, &public_url, now)?;
    println!(
        "digests: {} sent, {} failed",
        report.delivered, report.failed
    );
    Ok(if report.failed > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
