//! The JSON shapes klar shows the world: the API's bodies and the CLI's
//! `--json` output (and the rows an evidence bundle embeds). Each is converted
//! from a store row, so that a change to a table is never silently a change to
//! the interface, and the interface can keep a field the table drops. Field
//! names and their order are part of the interface: `tests/openapi.rs` checks
//! real answers against the schemas derived here.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use crate::store::{apikeys, evidence, outbox, report, texts};

/// Rows in their wire shapes, e.g. `let items: Vec<wire::Item> = wire::list(rows)`.
pub fn list<Row, Wire: From<Row>>(rows: Vec<Row>) -> Vec<Wire> {
    rows.into_iter().map(Wire::from).collect()
}

/// One action for the CRM: `GET /v1/outbox`, `klar outbox --json` and each
/// webhook body.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct Item {
    pub id: String,
    pub seq: i64,
    pub contact: String,
    pub purpose: String,
    /// `send-request`, `send-confirmation`, `create-task`, `cleanup`,
    /// `block-use`, `basis-recorded` (the policy set another legal basis;
    /// `payload.personal_url` is the contact's link to object, for every
    /// use), `cancel`, … (ignore kinds you do not know).
    pub kind: String,
    pub payload: Value,
    #[serde(serialize_with = "crate::times::json")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: i64,
    #[serde(serialize_with = "crate::times::json_opt")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub acked_at: Option<i64>,
    /// Failed delivery attempts (webhook or mail) so far.
    pub attempts: i64,
    /// When klar gave up delivering it (see `klar redeliver`).
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "crate::times::json_opt"
    )]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub parked_at: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// When klar withdrew it before delivery because its case moved on.
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "crate::times::json_opt"
    )]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub cancelled_at: Option<i64>,
    /// Why it was withdrawn, e.g. "the case is now consented".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cancel_reason: Option<String>,
    /// A message held for the contact's spacing is delivered from then on.
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "crate::times::json_opt"
    )]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub deliver_after: Option<i64>,
}

impl From<outbox::Item> for Item {
    fn from(row: outbox::Item) -> Item {
        Item {
            id: row.id,
            seq: row.seq,
            contact: row.contact,
            purpose: row.purpose,
            kind: row.kind,
            payload: row.payload,
            created_at: row.created_at,
            acked_at: row.acked_at,
            attempts: row.attempts,
            parked_at: row.parked_at,
            last_error: row.last_error,
            cancelled_at: row.cancelled_at,
            cancel_reason: row.cancel_reason,
            deliver_after: row.deliver_after,
        }
    }
}

/// One stored piece of evidence.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Record {
    pub id: i64,
    pub contact: String,
    pub purpose: String,
    /// "request" or "response".
    pub kind: String,
    #[serde(serialize_with = "crate::times::json")]
    #[schema(value_type = String, format = DateTime)]
    pub at: i64,
    pub detail: Value,
    /// When it will be deleted; none while the person is not erased.
    #[serde(serialize_with = "crate::times::json_opt")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub retain_until: Option<i64>,
}

impl From<evidence::Record> for Record {
    fn from(row: evidence::Record) -> Record {
        Record {
            id: row.id,
            contact: row.contact,
            purpose: row.purpose,
            kind: row.kind,
            at: row.at,
            detail: row.detail,
            retain_until: row.retain_until,
        }
    }
}

/// One version of a consent text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ConsentText {
    pub purpose: String,
    pub version: i64,
    pub language: String,
    pub body: String,
    pub sha256: String,
    #[serde(serialize_with = "crate::times::json")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: i64,
    /// Who wrote this version and why; null for klar's standard text.
    pub author: Option<String>,
    pub message: Option<String>,
}

impl From<texts::ConsentText> for ConsentText {
    fn from(row: texts::ConsentText) -> ConsentText {
        ConsentText {
            purpose: row.purpose,
            version: row.version,
            language: row.language,
            body: row.body,
            sha256: row.sha256,
            created_at: row.created_at,
            author: row.author,
            message: row.message,
        }
    }
}

/// The cockpit of one tenant. Field names are part of the JSON interface.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct Status {
    pub tenant: String,
    /// Cases per band: usable, to-clarify, removed.
    pub bands: BTreeMap<String, i64>,
    /// Cases per state (all eleven, zeros included).
    pub states: BTreeMap<String, i64>,
    /// Cases whose next step is due but has not run.
    pub overdue: i64,
    /// Cases waiting for a person, per person.
    pub awaiting_decision_by_owner: BTreeMap<String, i64>,
    /// Cases with a deadline in the next 7 days.
    pub due_next_7_days: i64,
    pub cleanup_pending: i64,
    /// Cases whose last step failed.
    pub needs_attention: i64,
    /// The first of them (up to 20), with the error, for a person to look at.
    pub attention: Vec<Attention>,
    /// Outbox actions whose delivery (webhook or mail) klar gave up on.
    pub delivery_parked: i64,
}

impl From<report::Status> for Status {
    fn from(row: report::Status) -> Status {
        Status {
            tenant: row.tenant,
            bands: row.bands,
            states: row.states,
            overdue: row.overdue,
            awaiting_decision_by_owner: row.awaiting_decision_by_owner,
            due_next_7_days: row.due_next_7_days,
            cleanup_pending: row.cleanup_pending,
            needs_attention: row.needs_attention,
            attention: row.attention.into_iter().map(Attention::from).collect(),
            delivery_parked: row.delivery_parked,
        }
    }
}

/// A case whose last step failed, and why.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct Attention {
    pub contact: String,
    pub purpose: String,
    pub error: String,
}

impl From<report::Attention> for Attention {
    fn from(row: report::Attention) -> Attention {
        Attention {
            contact: row.contact,
            purpose: row.purpose,
            error: row.error,
        }
    }
}

/// One line of a case list. Field names are part of the JSON interface.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct CaseLine {
    pub tenant: String,
    pub contact: String,
    pub purpose: String,
    pub state: String,
    pub band: String,
    pub reminders_sent: u32,
    pub next_due_at: Option<String>,
    pub owner: String,
    pub assigned_to: Option<String>,
    pub legal_hold: bool,
    pub needs_attention: Option<String>,
}

impl From<report::CaseLine> for CaseLine {
    fn from(row: report::CaseLine) -> CaseLine {
        CaseLine {
            tenant: row.tenant,
            contact: row.contact,
            purpose: row.purpose,
            state: row.state,
            band: row.band,
            reminders_sent: row.reminders_sent,
            next_due_at: row.next_due_at,
            owner: row.owner,
            assigned_to: row.assigned_to,
            legal_hold: row.legal_hold,
            needs_attention: row.needs_attention,
        }
    }
}

/// What a key may do: `crm` (contacts, events, use, cases, outbox) or
/// `admin` (also keys, the webhook and the policy).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    Crm,
    Admin,
}

impl From<apikeys::Scope> for Scope {
    fn from(scope: apikeys::Scope) -> Scope {
        match scope {
            apikeys::Scope::Crm => Scope::Crm,
            apikeys::Scope::Admin => Scope::Admin,
        }
    }
}

impl From<Scope> for apikeys::Scope {
    fn from(scope: Scope) -> apikeys::Scope {
        match scope {
            Scope::Crm => apikeys::Scope::Crm,
            Scope::Admin => apikeys::Scope::Admin,
        }
    }
}

/// A key as listed (`GET /v1/keys`, `klar apikey list --json`); never the
/// secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ApiKey {
    pub id: String,
    pub tenant: String,
    pub name: String,
    pub scope: Scope,
    #[serde(serialize_with = "crate::times::json")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: i64,
    /// Null while the key works.
    #[serde(serialize_with = "crate::times::json_opt")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub revoked_at: Option<i64>,
}

impl From<apikeys::ApiKey> for ApiKey {
    fn from(row: apikeys::ApiKey) -> ApiKey {
        ApiKey {
            id: row.id,
            tenant: row.tenant,
            name: row.name,
            scope: row.scope.into(),
            created_at: row.created_at,
            revoked_at: row.revoked_at,
        }
    }
}

/// A tenant's settings. Field names are part of the JSON interface.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct TenantSettings {
    pub id: String,
    /// The company's name, as contacts read it.
    pub name: String,
    /// IANA time zone; deadlines count on its calendar.
    pub timezone: String,
    /// The language of contacts who name none.
    pub locale: String,
    /// Who gets the tasks of contacts without an owner.
    pub default_owner: Option<String>,
    pub legal: Legal,
    /// The German state whose public holidays are no business days (`DE-BW`).
    pub region: Option<String>,
    /// The company's closure days: `12-24` every year, `2026-12-28` once.
    pub closure_days: Vec<String>,
}

/// The company's legal details, shown on the response page and under every
/// mail; each may be null.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct Legal {
    /// The postal address, lines separated by `\n`.
    pub address: Option<String>,
    pub managing_directors: Option<String>,
    pub register_entry: Option<String>,
    pub imprint_url: Option<String>,
    pub privacy_url: Option<String>,
}

impl From<crate::store::tenants::Tenant> for TenantSettings {
    fn from(t: crate::store::tenants::Tenant) -> TenantSettings {
        TenantSettings {
            timezone: t.timezone.name().to_owned(),
            id: t.id,
            name: t.name,
            locale: t.locale,
            default_owner: t.default_owner,
            region: t.region,
            closure_days: t.closure_days,
            legal: Legal {
                address: t.legal.address,
                managing_directors: t.legal.managing_directors,
                register_entry: t.legal.register_entry,
                imprint_url: t.legal.imprint_url,
                privacy_url: t.legal.privacy_url,
            },
        }
    }
}

/// One purpose of a tenant.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct Purpose {
    pub id: String,
    /// What the purpose is, in words a contact understands.
    pub description: String,
    /// How many cases it has.
    pub cases: i64,
    /// How strict it is: `restrictive` (usable only with consent or another
    /// basis) or `non-restrictive` (usable unless the contact said no).
    #[schema(schema_with = crate::serve::schemas::enforcement_names)]
    pub enforcement: String,
}

impl From<crate::store::tenants::PurposeRow> for Purpose {
    fn from(row: crate::store::tenants::PurposeRow) -> Purpose {
        Purpose {
            id: row.id,
            description: row.description,
            cases: row.cases,
            enforcement: row.enforcement.as_str().to_owned(),
        }
    }
}
