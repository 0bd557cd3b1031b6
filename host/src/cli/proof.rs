//! The CLI faces of answers and proof: `respond`, `outbox`, `audit show`,
//! `evidence export`.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};

use super::{NowArg, load_plugin, open_store};
use crate::plugin::Answer;
use crate::respond::{self, Origin, RespondError};
use crate::store::{outbox, tenants};

/// `klar respond`
pub fn respond(
    plugin: Option<&Path>,
    db: &Path,
    token: &str,
    answer: Answer,
    origin: &Origin,
    json: bool,
    now: &NowArg,
) -> Result<ExitCode> {
    let now = now.resolve()?;
    let mut store = open_store(db)?;
    let plugin = load_plugin(plugin)?;
    match respond::respond(&mut store, &plugin, token, answer, origin, now) {
        Ok(recorded) => {
            if json {
                // One link used to answer one purpose; keep that shape for
                // it, and list the answers of a link that asked about several.
                match recorded.as_slice() {
                    [one] => println!("{}", serde_json::to_string_pretty(one)?),
                    many => println!("{}", serde_json::to_string_pretty(many)?),
                }
            } else {
                for recorded in &recorded {
                    println!(
                        "{} {} {}: {} (link {}, consent text v{} sha256 {})",
                        recorded.tenant,
                        recorded.contact,
                        recorded.purpose,
                        recorded.state,
                        recorded.token_id,
                        recorded.text_version,
                        &recorded.text_sha256.get(..12).unwrap_or_default()
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(
            err @ (RespondError::Token(_) | RespondError::Rejected(_) | RespondError::Event(_)),
        ) => {
            eprintln!("klar: {err}");
            Ok(ExitCode::from(1))
        }
        Err(err) => Err(err.into()),
    }
}

/// `klar outbox`
pub fn outbox(
    db: &Path,
    tenant: &str,
    contact: Option<&str>,
    all: bool,
    parked: bool,
    json: bool,
) -> Result<ExitCode> {
    let store = open_store(db)?;
    let tz = tenants::require(store.connection(), tenant)?.timezone;
    let filter = outbox::Filter {
        contact,
        all,
        parked,
        ..outbox::Filter::default()
    };
    let items = outbox::list(store.connection(), tenant, &filter)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&items)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:<18} {:<14} {:<16} {:<13} detail",
        "id", "contact", "purpose", "kind"
    );
    for item in &items {
        let p = &item.payload;
        let field = |k: &str| p.get(k).and_then(|v| v.as_str()).unwrap_or("").to_owned();
        let purposes = |key: &str| {
            p.get("purposes")
                .and_then(|v| v.as_array())
                .filter(|list| list.len() > 1)
                .map(|list| {
                    let names: Vec<&str> = list
                        .iter()
                        .filter_map(|x| x.get(key).and_then(|v| v.as_str()).or(x.as_str()))
                        .collect();
                    format!(" ({})", names.join(", "))
                })
                .unwrap_or_default()
        };
        let detail = match item.kind.as_str() {
            "send-request" => format!(
                "{} attempt {} link {}{}",
                field("channel"),
                p.get("attempt").and_then(|v| v.as_u64()).unwrap_or(0),
                field("token"),
                purposes("purpose")
            ),
            "cancel" => format!("withdraws {}: {}", field("cancels"), field("reason")),
            "create-task" => format!(
                "{} for {}{}",
                field("kind"),
                field("assignee"),
                purposes("purpose")
            ),
            "cleanup" => field("mode"),
            "notify" => format!("to {}: {}", field("recipient"), field("message")),
            _ => String::new(),
        };
        println!(
            "{:<18} {:<14} {:<16} {:<13} {detail}",
            item.id, item.contact, item.purpose, item.kind
        );
        if let Some(reason) = &item.cancel_reason {
            println!("{:<18} withdrawn before delivery: {reason}", "");
        }
        if let Some(until) = item.deliver_after {
            println!(
                "{:<18} held until {} (one message a day to the same contact)",
                "",
                crate::times::local_secs(until, tz)
            );
        }
        if let Some(error) = &item.last_error {
            let state = if item.parked_at.is_some() {
                "parked"
            } else {
                "retrying"
            };
            println!(
                "{:<18} {state} after {} attempt(s): {error}",
                "", item.attempts
            );
        }
    }
    println!("{} action(s)", items.len());
    Ok(ExitCode::SUCCESS)
}

/// `klar redeliver TENANT [--id ID]`
pub fn redeliver(db: &Path, tenant: &str, id: Option<&str>, now: &NowArg) -> Result<ExitCode> {
    let mut store = open_store(db)?;
    tenants::require(store.connection(), tenant)?;
    let at = now.resolve()?.timestamp();
    let n = store.transaction(|tx| crate::store::webhooks::requeue(tx, tenant, id, at))?;
    match (n, id) {
        (0, Some(id)) => anyhow::bail!("{tenant} has no parked action {id}"),
        _ => println!("{n} parked deliver(ies) queued again"),
    }
    Ok(ExitCode::SUCCESS)
}

/// `klar audit show`
pub fn audit_show(db: &Path, tenant: &str, contact: &str, json: bool) -> Result<ExitCode> {
    let store = open_store(db)?;
    let tenant = tenants::require(store.connection(), tenant)?;
    let rows = crate::bundle::audit_rows(store.connection(), &tenant.id, contact)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!("{:>6}  {:<21} {:<14} summary", "seq", "time", "purpose");
    for row in &rows {
        println!(
            "{:>6}  {:<21} {:<14} {}",
            row.seq,
            crate::times::local_secs(row.at, tenant.timezone),
            row.purpose.as_deref().unwrap_or("-"),
            row.summary
        );
    }
    println!("{} row(s) for {contact}", rows.len());
    Ok(ExitCode::SUCCESS)
}

/// `klar evidence export`
pub fn evidence_export(
    db: &Path,
    tenant: &str,
    contact: &str,
    output: Option<&Path>,
    now: &NowArg,
) -> Result<ExitCode> {
    let now = now.resolve()?.timestamp();
    let store = open_store(db)?;
    let tenant = tenants::require(store.connection(), tenant)?;
    let bundle = crate::bundle::export(store.connection(), &tenant, contact, now)?;
    let text = serde_json::to_string_pretty(&bundle)?;
    match output {
        Some(path) => {
            std::fs::write(path, text + "\n")
                .with_context(|| format!("failed to write {}", path.display()))?;
            eprintln!(
                "wrote the evidence of {contact} to {} ({} audit rows, chain head {})",
                path.display(),
                bundle.audit.len(),
                bundle.chain.head_seq
            );
        }
        None => println!("{text}"),
    }
    Ok(ExitCode::SUCCESS)
}

/// `klar apikey create|revoke|list`
pub fn apikey(db: &Path, command: super::ApikeyCommand) -> Result<ExitCode> {
    use crate::store::apikeys;
    let mut store = open_store(db)?;
    match command {
        super::ApikeyCommand::Create { tenant, name, now } => {
            let now = now.resolve()?.timestamp();
            tenants::require(store.connection(), &tenant)?;
            let (secret, key) = store.transaction(|tx| apikeys::create(tx, &tenant, &name, now))?;
            eprintln!(
                "created key {} ({name}) for {tenant}; it is shown only now:",
                key.id
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
                println!("{}", serde_json::to_string_pretty(&keys)?);
            } else {
                for k in &keys {
                    println!(
                        "{:<14} {:<24} {}",
                        k.id,
                        k.name,
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
pub fn webhook(db: &Path, command: super::WebhookCommand) -> Result<ExitCode> {
    use crate::store::webhooks;
    let mut store = open_store(db)?;
    match command {
        super::WebhookCommand::Set { tenant, url, now } => {
            let now = now.resolve()?.timestamp();
            tenants::require(store.connection(), &tenant)?;
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                anyhow::bail!("{url:?} is not an http:// or https:// URL");
            }
            let secret = store.transaction(|tx| webhooks::set(tx, &tenant, &url, now))?;
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
