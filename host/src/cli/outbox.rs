//! The outbox at a terminal: `outbox` and `redeliver`.

use std::process::ExitCode;

use anyhow::Result;

use super::{NowArg, open_store};
use crate::store::{outbox, tenants};

/// `klar outbox`
pub(super) fn outbox(
    db: &crate::store::Location,
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
        let wire: Vec<crate::wire::Item> = crate::wire::list(items);
        println!("{}", serde_json::to_string_pretty(&wire)?);
        return Ok(ExitCode::SUCCESS);
    }
    show!(
        "{:<18} {:<14} {:<16} {:<13} detail",
        "id",
        "contact",
        "purpose",
        "kind"
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
        show!(
            "{:<18} {:<14} {:<16} {:<13} {detail}",
            item.id,
            item.contact,
            item.purpose,
            item.kind
        );
        if let Some(reason) = &item.cancel_reason {
            show!("{:<18} withdrawn before delivery: {reason}", "");
        }
        if let Some(until) = item.deliver_after {
            show!(
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
            show!(
                "{:<18} {state} after {} attempt(s): {error}",
                "",
                item.attempts
            );
        }
    }
    show!("{} action(s)", items.len());
    Ok(ExitCode::SUCCESS)
}

/// `klar redeliver TENANT [--id ID]`
pub(super) fn redeliver(
    db: &crate::store::Location,
    tenant: &str,
    id: Option<&str>,
    now: &NowArg,
) -> Result<ExitCode> {
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
