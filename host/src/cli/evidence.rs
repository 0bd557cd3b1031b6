//! What klar can prove: `audit show`, `audit verify`, `evidence export`.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};

use super::{NowArg, open_store};
use crate::store::tenants;

/// `klar audit verify`
pub(super) fn audit_verify(db: &crate::store::Location, tenant: Option<&str>) -> Result<ExitCode> {
    let store = open_store(db)?;
    let ids: Vec<String> = match tenant {
        Some(id) => vec![tenants::require(store.connection(), id)?.id],
        None => tenants::list(store.connection())?
            .into_iter()
            .map(|t| t.id)
            .collect(),
    };
    let mut broken = false;
    for id in ids {
        let problems = crate::store::audit::verify(store.connection(), &id)?;
        if problems.is_empty() {
            println!("{id}: audit chain intact");
        }
        for problem in problems {
            broken = true;
            println!("{id}: {problem}");
        }
    }
    Ok(if broken {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// `klar audit show`
pub(super) fn audit_show(
    db: &crate::store::Location,
    tenant: &str,
    contact: &str,
    json: bool,
) -> Result<ExitCode> {
    let store = open_store(db)?;
    let tenant = tenants::require(store.connection(), tenant)?;
    let rows = crate::app::evidence::audit_rows(store.connection(), &tenant.id, contact)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(ExitCode::SUCCESS);
    }
    show!("{:>6}  {:<21} {:<14} summary", "seq", "time", "purpose");
    for row in &rows {
        show!(
            "{:>6}  {:<21} {:<14} {}",
            row.seq,
            crate::times::local_secs(row.at, tenant.timezone),
            row.purpose.as_deref().unwrap_or("-"),
            row.summary
        );
    }
    show!("{} row(s) for {contact}", rows.len());
    Ok(ExitCode::SUCCESS)
}

/// `klar evidence export`
/// `klar explain`: each decision on a contact's cases, and why.
pub(super) fn explain(
    db: &crate::store::Location,
    tenant: &str,
    contact: &str,
    json: bool,
) -> Result<ExitCode> {
    let store = open_store(db)?;
    let tenant = tenants::require(store.connection(), tenant)?;
    let decisions = crate::app::explain::explain(store.connection(), &tenant.id, contact)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&decisions)?);
    } else {
        print!(
            "{}",
            super::printable_text(&crate::app::explain::render(
                contact,
                &decisions,
                tenant.timezone
            ))
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub(super) fn evidence_export(
    db: &crate::store::Location,
    tenant: &str,
    contact: &str,
    output: Option<&Path>,
    now: &NowArg,
) -> Result<ExitCode> {
    let now = now.resolve()?.timestamp();
    let store = open_store(db)?;
    let tenant = tenants::require(store.connection(), tenant)?;
    let bundle = crate::app::evidence::export(store.connection(), &tenant, contact, now)?;
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
