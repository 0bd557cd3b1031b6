//! `klar explain`: why a contact's cases are where they are. Each step's audit
//! row holds the event, the state before and after, the actions, and the trace
//! of which hook answered what; this module turns them into plain words, with
//! the policy version that decided each step.

use crate::store::Conn;
use serde::Serialize;
use serde_json::Value;

use crate::app::evidence::{self, BundleError};
use crate::store::tenants;

/// One hook's answer (or one of klar's own rules) in a step.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct Reason {
    /// The hook's name, or "klar" for the process's and host's own rules.
    pub by: String,
    pub input: String,
    pub answer: String,
}

/// One step of a case, explained.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct Decision {
    pub seq: i64,
    pub time: String,
    pub purpose: Option<String>,
    /// What happened, in words ("tick: requested → awaiting-decision; …").
    pub summary: String,
    pub from: Option<String>,
    pub to: Option<String>,
    /// "v3", "the built-in default policy", or none for rows no policy decided.
    pub policy: Option<String>,
    pub policy_sha256: Option<String>,
    pub reasons: Vec<Reason>,
}

/// The contact's steps, oldest first.
pub fn explain(conn: &Conn, tenant: &str, contact: &str) -> Result<Vec<Decision>, BundleError> {
    let rows = evidence::audit_rows(conn, tenant, contact)?;
    let versions = tenants::policy_versions(conn, tenant)?;
    let default_sha = crate::sha256_hex(crate::DEFAULT_POLICY.as_bytes());
    Ok(rows
        .into_iter()
        .map(|row| {
            let detail: Value = serde_json::from_str(&row.detail).unwrap_or(Value::Null);
            let text = |key: &str| detail.get(key).and_then(Value::as_str).map(str::to_owned);
            let reasons = detail
                .get("trace")
                .and_then(Value::as_array)
                .map(|trace| {
                    trace
                        .iter()
                        .map(|t| {
                            let field =
                                |k: &str| t.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
                            let hook = field("hook");
                            Reason {
                                by: if hook == "process" {
                                    "klar".to_owned()
                                } else {
                                    hook
                                },
                                input: field("input"),
                                answer: field("output"),
                            }
                        })
                        .collect()
                })
                .unwrap_or_default();
            let policy = row.policy_sha256.as_deref().map(|sha| {
                match versions.iter().find(|v| v.sha256 == sha) {
                    Some(v) => format!("v{}", v.version),
                    None if sha == default_sha => "the built-in default policy".to_owned(),
                    None => "a policy no longer on record".to_owned(),
                }
            });
            Decision {
                seq: row.seq,
                time: row.time.clone(),
                purpose: row.purpose.clone(),
                summary: row.summary.clone(),
                from: text("from"),
                to: text("to"),
                policy,
                policy_sha256: row.policy_sha256.clone(),
                reasons,
            }
        })
        .collect())
}

/// The explanation as text for people.
/// Times are the tenant's local time with its zone.
pub fn render(contact: &str, decisions: &[Decision], tz: chrono_tz::Tz) -> String {
    let mut out = String::new();
    for d in decisions {
        let time = chrono::DateTime::parse_from_rfc3339(&d.time).map_or_else(
            |_| d.time.clone(),
            |t| crate::times::local(t.with_timezone(&chrono::Utc), tz),
        );
        let by = match (&d.policy, &d.policy_sha256) {
            (Some(p), Some(sha)) => format!("  [{p}, sha256 {}]", &sha[..12.min(sha.len())]),
            _ => String::new(),
        };
        out.push_str(&format!(
            "{time}  {}  {}{by}\n",
            d.purpose.as_deref().unwrap_or("-"),
            d.summary
        ));
        for r in &d.reasons {
            if r.by == "klar" {
                out.push_str(&format!("    klar's rule ({}): {}\n", r.input, r.answer));
            } else if let Some(default) = r.answer.strip_suffix(" (default)") {
                out.push_str(&format!(
                    "    the policy has no {}; klar's default applied ({default})\n",
                    r.by
                ));
            } else {
                out.push_str(&format!(
                    "    the policy's {} ({}) answered {}\n",
                    r.by, r.input, r.answer
                ));
            }
        }
    }
    out.push_str(&format!("{} step(s) for {contact}\n", decisions.len()));
    out
}
