//! What klar can prove about one contact: `klar audit show` (the contact's
//! audit rows in plain words) and `klar evidence export` (one JSON proof
//! bundle for an auditor or a court).
//!
//! The bundle carries the audit rows exactly as stored — `detail` as the
//! original text — so anyone can recompute each row's hash with the algorithm
//! written into the bundle, and the tenant's chain head at export time, so a
//! later cut at the end of the chain shows against an older bundle.

use std::collections::BTreeSet;

use crate::store::Conn;
use serde::Serialize;
use serde_json::Value;

use crate::store::audit::{self, Row};
use crate::store::evidence::{self, Record};
use crate::store::report;
use crate::store::tenants::{self, Tenant};
use crate::times::rfc3339;
use crate::wire;

/// Bumped whenever a field changes meaning.
pub const FORMAT: &str = "klar-evidence-bundle/1";

const HOW_TO_VERIFY: &str = "Each audit row's hash is the SHA-256 over these fields, in this order, \
each written as its length in bytes (8-byte big-endian) followed by its bytes: tenant id (UTF-8), \
seq (8-byte big-endian), at (the row's `at` as Unix seconds, 8-byte big-endian), contact, purpose, kind, detail, \
policy_sha256 (UTF-8; a missing value is the single byte 0x00), prev_hash (hex text). The first \
row of a tenant has prev_hash of 64 zeros; every other row's prev_hash is the hash of the row with \
seq - 1. Rows of other contacts are not in this bundle, so only a row directly after another \
one here can be checked for its link; chain.head_hash pins the whole chain at export time.";

/// The contact as klar holds it; names and addresses are empty once erased.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct ContactRecord {
    pub id: String,
    pub first_name: String,
    pub last_name: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub owner: String,
    pub source: String,
    pub language: String,
    pub created_at: String,
    pub erased_at: Option<String>,
}

/// An audit row as stored, plus its detail read as JSON for people.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct AuditRow {
    pub seq: i64,
    /// When it happened (the hash covers it as Unix seconds).
    #[serde(serialize_with = "crate::times::json")]
    #[schema(value_type = String, format = DateTime)]
    pub at: i64,
    /// The same time as `at` (kept for readers of earlier bundles).
    pub time: String,
    pub contact: Option<String>,
    pub purpose: Option<String>,
    pub kind: String,
    /// The stored text; the hash covers exactly this.
    pub detail: String,
    pub summary: String,
    pub policy_sha256: Option<String>,
    pub prev_hash: String,
    pub hash: String,
}

/// A person's decision on a case (or a legal hold, an approval).
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct DecisionRecord {
    pub seq: i64,
    pub time: String,
    pub purpose: Option<String>,
    pub kind: String,
    pub by: Option<String>,
    pub reason: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    /// The face it came through: cockpit, cli or api (none in rows written
    /// before klar recorded it).
    pub via: Option<String>,
    /// The signed-in account, for decisions made in the cockpit.
    pub account: Option<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct PolicyRecord {
    pub sha256: String,
    /// None for the built-in default policy.
    pub version: Option<i64>,
    pub author: Option<String>,
    pub message: Option<String>,
    pub created_at: Option<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct Chain {
    pub head_seq: i64,
    pub head_hash: String,
    /// Whether `klar audit verify` found the tenant's whole chain intact.
    pub intact: bool,
    pub problems: Vec<String>,
    pub how_to_verify: &'static str,
}

#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct TenantRecord {
    pub id: String,
    pub name: String,
    pub timezone: String,
}

/// The whole proof about one contact.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct Bundle {
    pub format: &'static str,
    pub generated_at: String,
    pub tenant: TenantRecord,
    pub contact: ContactRecord,
    pub cases: Vec<wire::CaseLine>,
    /// Every request and reminder sent: channel, attempt, link id, text version.
    pub requests: Vec<wire::Record>,
    /// Every mail klar sent itself: recipient, Message-ID, the relay's answer.
    pub deliveries: Vec<wire::Record>,
    /// Every answer: time, channel, link id, text version and hash, IP, user
    /// agent; withdrawals and objections too.
    pub responses: Vec<wire::Record>,
    /// Every legal basis other than consent the policy set or renewed: its
    /// kind, the legal team's reason, the review date, the policy version
    /// (and SHA-256) and the contact data it relied on, with the values seen.
    pub bases: Vec<wire::Record>,
    /// The consent texts the requests showed, word for word.
    pub consent_texts: Vec<wire::ConsentText>,
    pub decisions: Vec<DecisionRecord>,
    pub policy_versions: Vec<PolicyRecord>,
    pub audit: Vec<AuditRow>,
    /// How the contact arrived, when a bulk import added it.
    pub arrival: Option<ArrivalRecord>,
    pub chain: Chain,
}

/// A contact added by a bulk import: that import's audit row (in `audit`)
/// commits to the root of a Merkle tree over the ids it added, and this
/// proof shows the contact's id is one of them.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct ArrivalRecord {
    /// The tenant's import number.
    pub import: i64,
    /// The import's audit row (`seq`); its detail holds the file's SHA-256
    /// and `added_ids.merkle_root`.
    pub audit_seq: i64,
    /// The contact's place among the ids the import added, from 0.
    pub position: i64,
    /// How many ids the import added: the tree's size.
    pub added: i64,
    /// SHA-256(0x00 || id), hex.
    pub leaf_hash: String,
    /// The audit path from the leaf up (RFC 6962), hex.
    pub proof: Vec<String>,
    pub merkle_root: String,
    /// Whether the proof leads from the leaf to the root in the audit row.
    pub proof_valid: bool,
    pub how_to_verify: &'static str,
}

const HOW_TO_VERIFY_ARRIVAL: &str = "Recompute leaf_hash as SHA-256 of the byte 0x00 followed by the \
contact id in UTF-8. Combine it with each hash of `proof` in turn as RFC 9162 (section 2.1.3.2) \
describes for an inclusion proof of leaf `position` in a tree of `added` leaves, where a node is \
SHA-256 of 0x01, the left hash and the right hash. The result must equal \
added_ids.merkle_root in the detail of the audit row `audit_seq`, whose own hash is checked like \
every other row's.";

/// The arrival of a contact a bulk import added, with its proof.
fn arrival(
    conn: &Conn,
    tenant: &str,
    contact: &str,
    audit: &[AuditRow],
) -> Result<Option<ArrivalRecord>, BundleError> {
    let Some(found) = crate::store::imports::arrival(conn, tenant, contact)? else {
        return Ok(None);
    };
    let Some(row) = audit.iter().find(|r| r.seq == found.audit_seq) else {
        return Ok(None);
    };
    let detail: Value = serde_json::from_str(&row.detail).unwrap_or(Value::Null);
    let root = detail
        .pointer("/added_ids/merkle_root")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let mut leaves = Vec::new();
    crate::store::imports::added_ids(conn, tenant, found.import, &mut |id| {
        leaves.push(crate::merkle::leaf(id))
    })?;
    let index = usize::try_from(found.position).unwrap_or(usize::MAX);
    let leaf = crate::merkle::leaf(contact);
    let proof = crate::merkle::proof(&leaves, index);
    let stored_root = crate::merkle::root(&leaves);
    // The ids as stored must give the root the chain holds, and the proof
    // must lead there from this contact's leaf.
    let valid = crate::hex(&stored_root) == root
        && crate::merkle::verify(
            leaf,
            found.position as u64,
            leaves.len() as u64,
            &proof,
            &stored_root,
        );
    Ok(Some(ArrivalRecord {
        import: found.import,
        audit_seq: found.audit_seq,
        position: found.position,
        added: leaves.len() as i64,
        leaf_hash: crate::hex(&leaf),
        proof: proof.iter().map(|h| crate::hex(h)).collect(),
        merkle_root: root,
        proof_valid: valid,
        how_to_verify: HOW_TO_VERIFY_ARRIVAL,
    }))
}

#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("tenant {tenant} has no contact {contact}")]
    NoContact { tenant: String, contact: String },
    #[error(transparent)]
    Sql(#[from] crate::store::Error),
}

fn contact_record(
    conn: &Conn,
    tenant: &str,
    id: &str,
) -> crate::store::Result<Option<ContactRecord>> {
    Ok(
        crate::store::contacts::stored(conn, tenant, id)?.map(|c| ContactRecord {
            id: c.id,
            first_name: c.first_name,
            last_name: c.last_name,
            email: c.email,
            phone: c.phone,
            owner: c.owner,
            source: c.source,
            language: c.language,
            created_at: rfc3339(c.created_at),
            erased_at: c.erased_at.map(rfc3339),
        }),
    )
}

/// A row in plain words: "tick: requested → awaiting-decision; task for jk".
pub fn summary(kind: &str, detail: &str) -> String {
    let Ok(v) = serde_json::from_str::<Value>(detail) else {
        return kind.to_owned();
    };
    let text = |key: &str| v.get(key).and_then(Value::as_str).map(str::to_owned);
    if kind == "import" {
        let n = |key: &str| v.get(key).and_then(Value::as_i64).unwrap_or(0);
        return format!(
            "import {} of {}: {} added, {} updated, {} unchanged, {} case(s) opened",
            n("import"),
            text("file").unwrap_or_default(),
            n("added"),
            n("updated"),
            n("unchanged"),
            n("cases_opened")
        );
    }
    let mut out = match v.get("event") {
        Some(event) => describe_event(event),
        None => kind.to_owned(),
    };
    if let (Some(from), Some(to)) = (text("from"), text("to")) {
        if from == to {
            out.push_str(&format!(": stays {to}"));
        } else {
            out.push_str(&format!(": {from} → {to}"));
        }
    }
    if let Some(actions) = v.get("actions").and_then(Value::as_array)
        && !actions.is_empty()
    {
        let names: Vec<String> = actions.iter().map(describe_action).collect();
        out.push_str(&format!("; {}", names.join(", ")));
    }
    if let Some(error) = text("error") {
        out.push_str(&format!(": {error}"));
    }
    if let Some(actor) = v.get("actor")
        && let Some(who) = super::actor::Actor::describe(actor)
    {
        out.push_str(&format!(" [through {who}]"));
    }
    if kind == "approval-refused" {
        out = format!(
            "approval by {} refused: {}",
            text("by").unwrap_or_default(),
            text("why").unwrap_or_default()
        );
    }
    if kind == "mail-sent" {
        out = if text("template").as_deref() == Some("confirmation") {
            format!(
                "confirmation with the personal link mailed by klar ({})",
                text("message_id").unwrap_or_default()
            )
        } else {
            format!(
                "request mailed by klar (attempt {}, {})",
                v.get("attempt").and_then(Value::as_i64).unwrap_or(0),
                text("message_id").unwrap_or_default()
            )
        };
    }
    if kind == "step-deferred" {
        let until = v
            .get("until")
            .and_then(Value::as_i64)
            .and_then(|t| chrono::DateTime::from_timestamp(t, 0))
            .map(|t| t.to_rfc3339())
            .unwrap_or_default();
        out = format!(
            "deferred until {until}: {}",
            text("reason").unwrap_or_default()
        );
    }
    if kind == "action-cancelled" {
        out = format!(
            "{} withdrawn before delivery: {}{}",
            text("action").unwrap_or_default(),
            text("reason").unwrap_or_default(),
            if v.get("crm_told").and_then(Value::as_bool) == Some(true) {
                " (the CRM was told to cancel it)"
            } else {
                ""
            }
        );
    }
    if kind == "evidence-expired"
        && let Some(n) = v.get("deleted_records").and_then(Value::as_i64)
    {
        out = format!("evidence deleted after its retention period ({n} record(s))");
    }
    out
}

fn describe_event(event: &Value) -> String {
    let field = |key: &str| event.get(key).and_then(Value::as_str).unwrap_or("");
    match field("type") {
        "response" => match field("answer") {
            "accept" => "the contact agreed".to_owned(),
            "refuse" => "the contact refused".to_owned(),
            other => format!("answer {other}"),
        },
        "manual-decision" => format!(
            "decision {} by {} ({})",
            field("kind"),
            field("by"),
            field("reason")
        ),
        "approve" => format!("approval by {}", field("by")),
        "hold-on" => format!("legal hold on by {} ({})", field("by"), field("reason")),
        "hold-off" => format!("legal hold off by {} ({})", field("by"), field("reason")),
        "bounce" => format!("bounce on {}", field("channel")),
        "consent" => "the contact consented on their own initiative".to_owned(),
        other => other.replace('-', " "),
    }
}

fn describe_action(action: &Value) -> String {
    let field = |key: &str| action.get(key).and_then(Value::as_str).unwrap_or("");
    match field("type") {
        "send-request" => format!(
            "{} by {} (attempt {})",
            if action.get("attempt").and_then(Value::as_u64) == Some(1) {
                "request"
            } else {
                "reminder"
            },
            field("channel"),
            action.get("attempt").and_then(Value::as_u64).unwrap_or(0)
        ),
        "create-task" => format!("task for {}: {}", field("assignee"), field("kind")),
        "cleanup" => format!("cleanup ({})", field("mode")),
        "block-use" => "use blocked".to_owned(),
        "notify" => format!("notice to {}", field("recipient")),
        other => other.to_owned(),
    }
}

fn audit_row(row: Row) -> AuditRow {
    AuditRow {
        summary: summary(&row.entry.kind, &row.entry.detail),
        seq: row.seq,
        at: row.entry.at,
        time: rfc3339(row.entry.at),
        contact: row.entry.contact,
        purpose: row.entry.purpose,
        kind: row.entry.kind,
        detail: row.entry.detail,
        policy_sha256: row.entry.policy_sha256,
        prev_hash: row.prev_hash,
        hash: row.hash,
    }
}

/// The contact's audit rows, oldest first.
pub fn audit_rows(conn: &Conn, tenant: &str, contact: &str) -> Result<Vec<AuditRow>, BundleError> {
    if contact_record(conn, tenant, contact)?.is_none() {
        return Err(BundleError::NoContact {
            tenant: tenant.to_owned(),
            contact: contact.to_owned(),
        });
    }
    let mut rows = audit::rows(conn, tenant, Some(contact))?;
    // A contact a bulk import added has no row of its own for that: the
    // import's row (about the tenant) stands for it.
    if let Some(found) = crate::store::imports::arrival(conn, tenant, contact)?
        && let Some(row) = audit::row(conn, tenant, found.audit_seq)?
    {
        let at = rows.partition_point(|r| r.seq < row.seq);
        rows.insert(at, row);
    }
    Ok(rows.into_iter().map(audit_row).collect())
}

fn decision(row: &AuditRow) -> Option<DecisionRecord> {
    let v: Value = serde_json::from_str(&row.detail).ok()?;
    let event = v.get("event")?;
    let kind = event.get("type")?.as_str()?;
    if !matches!(
        kind,
        "manual-decision" | "approve" | "hold-on" | "hold-off" | "withdraw"
    ) {
        return None;
    }
    let text = |value: Option<&Value>| value.and_then(Value::as_str).map(str::to_owned);
    Some(DecisionRecord {
        seq: row.seq,
        time: row.time.clone(),
        purpose: row.purpose.clone(),
        kind: match kind {
            "manual-decision" => text(event.get("kind")).unwrap_or_else(|| kind.to_owned()),
            _ => kind.to_owned(),
        },
        by: text(event.get("by")),
        reason: text(event.get("reason")),
        from: text(v.get("from")),
        to: text(v.get("to")),
        via: text(v.get("actor").and_then(|a| a.get("via"))),
        account: text(v.get("actor").and_then(|a| a.get("account"))),
    })
}

/// Builds the proof bundle of one contact.
pub fn export(
    conn: &Conn,
    tenant: &Tenant,
    contact: &str,
    now: i64,
) -> Result<Bundle, BundleError> {
    let Some(record) = contact_record(conn, &tenant.id, contact)? else {
        return Err(BundleError::NoContact {
            tenant: tenant.id.clone(),
            contact: contact.to_owned(),
        });
    };
    let audit = audit_rows(conn, &tenant.id, contact)?;
    let (requests, rest): (Vec<Record>, Vec<Record>) =
        evidence::for_contact(conn, &tenant.id, contact)?
            .into_iter()
            .partition(|r| r.kind == "request");
    let (deliveries, rest): (Vec<Record>, Vec<Record>) =
        rest.into_iter().partition(|r| r.kind == "mail-sent");
    let (bases, responses): (Vec<Record>, Vec<Record>) =
        rest.into_iter().partition(|r| r.kind == "basis");
    let mut consent_texts: Vec<crate::store::texts::ConsentText> = Vec::new();
    // The texts requests showed, and those consented to through the
    // personal link.
    for r in requests.iter().chain(&responses) {
        let version = r.detail.get("text_version").and_then(Value::as_i64);
        let language = r.detail.get("language").and_then(Value::as_str);
        if let (Some(version), Some(language)) = (version, language)
            && !consent_texts
                .iter()
                .any(|t| t.purpose == r.purpose && t.version == version && t.language == language)
            && let Some(text) =
                crate::store::texts::get(conn, &tenant.id, &r.purpose, version, language)?
        {
            consent_texts.push(text);
        }
    }
    let only_this_contact = report::CaseFilter {
        contact: Some(contact.to_owned()),
        ..report::CaseFilter::default()
    };
    let cases = report::cases(conn, &tenant.id, &only_this_contact, now)?;
    let used: BTreeSet<&str> = audit
        .iter()
        .filter_map(|r| r.policy_sha256.as_deref())
        .collect();
    let versions = tenants::policy_versions(conn, &tenant.id)?;
    let policy_versions = used
        .into_iter()
        .map(|sha| match versions.iter().find(|v| v.sha256 == sha) {
            Some(v) => PolicyRecord {
                sha256: sha.to_owned(),
                version: Some(v.version),
                author: Some(v.author.clone()),
                message: Some(v.message.clone()),
                created_at: Some(rfc3339(v.created_at)),
            },
            None => PolicyRecord {
                sha256: sha.to_owned(),
                version: None,
                author: None,
                message: Some("the built-in default policy of this klar".to_owned()),
                created_at: None,
            },
        })
        .collect();
    let head = audit::head(conn, &tenant.id)?;
    let (head_seq, head_hash) = head.unwrap_or((0, audit::GENESIS.to_owned()));
    let problems: Vec<String> = audit::verify(conn, &tenant.id)?
        .iter()
        .map(ToString::to_string)
        .collect();
    Ok(Bundle {
        format: FORMAT,
        generated_at: rfc3339(now),
        tenant: TenantRecord {
            id: tenant.id.clone(),
            name: tenant.name.clone(),
            timezone: tenant.timezone.name().to_owned(),
        },
        contact: record,
        cases: wire::list(cases),
        requests: wire::list(requests),
        deliveries: wire::list(deliveries),
        responses: wire::list(responses),
        bases: wire::list(bases),
        consent_texts: wire::list(consent_texts),
        decisions: audit.iter().filter_map(decision).collect(),
        policy_versions,
        arrival: arrival(conn, &tenant.id, contact, &audit)?,
        audit,
        chain: Chain {
            head_seq,
            head_hash,
            intact: problems.is_empty(),
            problems,
            how_to_verify: HOW_TO_VERIFY,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summaries_read_like_sentences() {
        let detail = r#"{"event":{"type":"tick"},"from":"unclarified","to":"requested",
            "actions":[{"type":"send-request","channel":"email","template":"request","attempt":1}]}"#;
        assert_eq!(
            summary("state-change", detail),
            "tick: unclarified → requested; request by email (attempt 1)"
        );
        let decision = r#"{"event":{"type":"manual-decision","kind":"restart","by":"jk","reason":"Messe"},
            "from":"awaiting-decision","to":"paused","actions":[]}"#;
        assert_eq!(
            summary("state-change", decision),
            "decision restart by jk (Messe): awaiting-decision → paused"
        );
        assert_eq!(summary("policy-set", "not json"), "policy-set");
    }
}
