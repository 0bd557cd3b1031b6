//! The CRM API, version 1. Every route needs a live API key of a tenant and
//! only ever sees that tenant's data; bodies are JSON, errors are
//! [`ApiError`] bodies.

use std::collections::BTreeMap;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{FromRequestParts, Path, Query, State as AxumState};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post, put};
use rusqlite::OptionalExtension;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{ApiError, State, with_store};
use crate::plugin::{Band, Case, Contact, Event, State as CaseState};
use crate::scheduler::{self, EventError};
use crate::store::contacts::{self, Upsert};
use crate::store::report::{self, CaseFilter};
use crate::store::{apikeys, outbox, tenants};

pub(super) fn routes() -> Router<State> {
    Router::new()
        .route("/v1/contacts", post(upsert_batch))
        .route("/v1/contacts/{id}", put(upsert_contact))
        .route("/v1/contacts/{id}/evidence", get(evidence))
        .route("/v1/contacts/{id}/explanation", get(explanation))
        .route("/v1/contacts/{id}/use", get(may_use))
        .route("/v1/contacts/{id}/events", post(report_event))
        .route("/v1/cases", get(list_cases))
        .route("/v1/status", get(status))
        .route("/v1/outbox", get(pending_actions))
        .route("/v1/outbox/ack", post(acknowledge))
}

/// The tenant of the request's API key.
pub(crate) struct TenantKey(pub String);

impl FromRequestParts<State> for TenantKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &State) -> Result<Self, ApiError> {
        let key = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(|k| k.trim().to_owned())
            .ok_or_else(ApiError::unauthorized)?;
        let tenant = with_store(state, move |store| {
            apikeys::tenant_of(store.connection(), &key).map_err(ApiError::internal)
        })
        .await?;
        tenant.map(TenantKey).ok_or_else(ApiError::unauthorized)
    }
}

fn parse_body<T: serde::de::DeserializeOwned>(body: &Bytes) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(format!(
            "the body is not valid JSON for this call (line {}, column {}): {e}",
            e.line(),
            e.column()
        ))
    })
}

fn valid_id(id: &str) -> Result<(), ApiError> {
    if id.is_empty() || id.chars().count() > 200 || id.chars().any(char::is_control) {
        return Err(ApiError::bad_request(
            "a contact id has 1 to 200 characters and no control characters",
        ));
    }
    Ok(())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ContactBody {
    #[serde(default)]
    first_name: String,
    #[serde(default)]
    last_name: String,
    email: Option<String>,
    phone: Option<String>,
    owner: String,
    #[serde(default)]
    source: Option<String>,
    language: Option<String>,
    created_at: Option<String>,
    #[serde(default)]
    attributes: BTreeMap<String, String>,
}

/// Checks a contact body; every problem, in words.
fn validate(
    id: &str,
    body: ContactBody,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Contact, Vec<String>> {
    let blank = |v: Option<String>| v.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty());
    let (email, phone) = (blank(body.email), blank(body.phone));
    let mut problems = Vec::new();
    if let Err(e) = valid_id(id) {
        problems.push(e.message);
    }
    if body.owner.trim().is_empty() {
        problems.push("owner is empty: every contact needs a responsible person".to_owned());
    }
    if let Some(e) = &email
        && !crate::import::plausible_email(e)
    {
        problems.push(format!("email {e:?} is not an e-mail address"));
    }
    if let Some(p) = &phone
        && !crate::import::plausible_phone(p)
    {
        problems.push(format!("phone {p:?} is not a phone number"));
    }
    let created_at = match &body.created_at {
        None => Some(now),
        Some(t) => crate::import::parse_time(t).or_else(|| {
            problems.push(format!("created_at {t:?} is not a date"));
            None
        }),
    };
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(Contact {
        id: id.to_owned(),
        first_name: body.first_name,
        last_name: body.last_name,
        email,
        phone,
        owner: body.owner.trim().to_owned(),
        source: body.source.unwrap_or_else(|| "api".to_owned()),
        language: body.language.unwrap_or_else(|| "de".to_owned()),
        created_at: created_at.unwrap_or(now),
        attributes: body.attributes,
    })
}

/// Why a contact may not be stored: an address of an erased contact.
fn erased(
    conn: &rusqlite::Connection,
    tenant: &str,
    contact: &Contact,
) -> Result<Option<String>, ApiError> {
    for (kind, value) in [("email", &contact.email), ("phone", &contact.phone)] {
        if let Some(value) = value
            && let Some(at) =
                contacts::erased_at(conn, tenant, kind, value).map_err(ApiError::internal)?
        {
            let day = chrono::DateTime::from_timestamp(at, 0)
                .unwrap_or_default()
                .format("%Y-%m-%d");
            return Ok(Some(format!(
                "the {kind} belongs to a contact erased on {day}; it cannot be added again"
            )));
        }
    }
    Ok(None)
}

fn store_contacts(
    store: &mut crate::store::Store,
    tenant: &str,
    list: &[Contact],
    at: i64,
) -> Result<Vec<Value>, ApiError> {
    store
        .transaction(|tx| {
            let mut out = Vec::new();
            for contact in list {
                let result = match contacts::upsert(tx, tenant, contact, at)? {
                    Upsert::Added => "added",
                    Upsert::Updated => "updated",
                    Upsert::Unchanged => "unchanged",
                };
                let opened = contacts::open_cases(tx, tenant, &contact.id, at)?;
                out.push(
                    json!({ "contact": contact.id, "result": result, "cases_opened": opened }),
                );
            }
            Ok::<_, rusqlite::Error>(out)
        })
        .map_err(ApiError::internal)
}

/// `PUT /v1/contacts/{id}`: add or update a contact; opens its cases.
async fn upsert_contact(
    AxumState(state): AxumState<State>,
    TenantKey(tenant): TenantKey,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let body: ContactBody = parse_body(&body)?;
    let now = state.now();
    let contact = validate(&id, body, now).map_err(|p| ApiError::bad_request(p.join("; ")))?;
    with_store(&state, move |store| {
        if let Some(why) = erased(store.connection(), &tenant, &contact)? {
            return Err(ApiError::conflict("erased", why));
        }
        let mut results = store_contacts(
            store,
            &tenant,
            std::slice::from_ref(&contact),
            now.timestamp(),
        )?;
        Ok(Json(results.pop().unwrap_or(Value::Null)))
    })
    .await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BatchItem {
    id: String,
    #[serde(flatten)]
    contact: ContactBody,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Batch {
    contacts: Vec<BatchItem>,
}

/// `POST /v1/contacts`: many contacts at once, all or nothing. If any item is
/// bad, nothing is stored and the answer lists every bad item.
async fn upsert_batch(
    AxumState(state): AxumState<State>,
    TenantKey(tenant): TenantKey,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let batch: Batch = parse_body(&body)?;
    if batch.contacts.len() > 10_000 {
        return Err(ApiError::bad_request("at most 10,000 contacts per call"));
    }
    let now = state.now();
    let mut good = Vec::new();
    let mut bad = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for (index, item) in batch.contacts.into_iter().enumerate() {
        let id = item.id.clone();
        if !seen.insert(id.clone()) {
            bad.push(json!({ "index": index, "contact": id, "errors": ["the same id appears twice in this call"] }));
            continue;
        }
        match validate(&item.id, item.contact, now) {
            Ok(c) => good.push((index, c)),
            Err(errors) => bad.push(json!({ "index": index, "contact": id, "errors": errors })),
        }
    }
    with_store(&state, move |store| {
        for (index, contact) in &good {
            if let Some(why) = erased(store.connection(), &tenant, contact)? {
                bad.push(json!({ "index": index, "contact": contact.id, "errors": [why] }));
            }
        }
        if !bad.is_empty() {
            bad.sort_by_key(|b| b["index"].as_u64());
            return Ok((
                StatusCode::BAD_REQUEST,
                Json(json!({
                    "error": {
                        "code": "invalid_items",
                        "message": format!("{} contact(s) are invalid; nothing was stored", bad.len()),
                    },
                    "items": bad,
                })),
            ));
        }
        let list: Vec<Contact> = good.into_iter().map(|(_, c)| c).collect();
        let results = store_contacts(store, &tenant, &list, now.timestamp())?;
        Ok((StatusCode::OK, Json(json!({ "results": results }))))
    })
    .await
}

/// `GET /v1/contacts/{id}/evidence`: the proof bundle, as `klar evidence export`.
async fn evidence(
    AxumState(state): AxumState<State>,
    TenantKey(tenant): TenantKey,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let now = state.now().timestamp();
    with_store(&state, move |store| {
        let t = tenants::require(store.connection(), &tenant).map_err(ApiError::internal)?;
        match crate::bundle::export(store.connection(), &t, &id, now) {
            Ok(b) => Ok(Json(serde_json::to_value(b).map_err(ApiError::internal)?)),
            Err(crate::bundle::BundleError::NoContact { .. }) => {
                Err(ApiError::not_found(format!("no contact {id}")))
            }
            Err(e) => Err(ApiError::internal(e)),
        }
    })
    .await
}

/// `GET /v1/contacts/{id}/explanation`: each step in words, as `klar explain`.
async fn explanation(
    AxumState(state): AxumState<State>,
    TenantKey(tenant): TenantKey,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    with_store(&state, move |store| {
        match crate::explain::explain(store.connection(), &tenant, &id) {
            Ok(steps) => Ok(Json(json!({ "contact": id, "steps": steps }))),
            Err(crate::bundle::BundleError::NoContact { .. }) => {
                Err(ApiError::not_found(format!("no contact {id}")))
            }
            Err(e) => Err(ApiError::internal(e)),
        }
    })
    .await
}

#[derive(Debug, Deserialize)]
struct PurposeQuery {
    purpose: Option<String>,
}

/// `GET /v1/contacts/{id}/use?purpose=P`: may the CRM use this contact?
async fn may_use(
    AxumState(state): AxumState<State>,
    TenantKey(tenant): TenantKey,
    Path(id): Path<String>,
    q: Result<Query<PurposeQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(q) = q.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let purpose = q
        .purpose
        .unwrap_or_else(|| tenants::DEFAULT_PURPOSE.to_owned());
    with_store(&state, move |store| {
        let body: Option<String> = store
            .connection()
            .prepare_cached(
                "SELECT body FROM cases WHERE tenant = ?1 AND contact = ?2 AND purpose = ?3",
            )
            .and_then(|mut s| {
                rusqlite::OptionalExtension::optional(
                    s.query_row(rusqlite::params![tenant, id, purpose], |r| r.get(0)),
                )
            })
            .map_err(ApiError::internal)?;
        let Some(body) = body else {
            return Err(ApiError::not_found(format!(
                "no case for contact {id} and purpose {purpose}"
            )));
        };
        let case: Case = serde_json::from_str(&body).map_err(ApiError::internal)?;
        let basis = match case.state {
            CaseState::Consented => json!({
                "kind": "consent",
                "since": case.consented_at.map(|t| t.to_rfc3339()),
            }),
            CaseState::OtherBasis => json!({ "kind": "other", "reason": case.basis }),
            _ => Value::Null,
        };
        Ok(Json(json!({
            "contact": id,
            "purpose": purpose,
            "may_use": case.state.band() == Band::Usable,
            "band": contacts::band_name(case.state.band()),
            "state": case.state,
            "basis": basis,
        })))
    })
    .await
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct EventBody {
    #[serde(rename = "type")]
    kind: String,
    purpose: Option<String>,
    channel: Option<String>,
    by: Option<String>,
    reason: Option<String>,
}

use serde::Serialize;

fn event_of(body: &EventBody) -> Result<Event, ApiError> {
    let need = |v: &Option<String>, what: &str| {
        v.clone()
            .filter(|s| !s.trim().is_empty())
            .ok_or_else(|| ApiError::bad_request(format!("a {} event needs `{what}`", body.kind)))
    };
    Ok(match body.kind.as_str() {
        "withdraw" => Event::Withdraw,
        "used" => Event::Used,
        "data-changed" => Event::DataChanged,
        "bounce" => Event::Bounce {
            channel: body.channel.clone().unwrap_or_else(|| "email".to_owned()),
        },
        "hold-on" => Event::HoldOn {
            by: need(&body.by, "by")?,
            reason: need(&body.reason, "reason")?,
        },
        "hold-off" => Event::HoldOff {
            by: need(&body.by, "by")?,
            reason: need(&body.reason, "reason")?,
        },
        other => {
            return Err(ApiError::bad_request(format!(
                "unknown event type {other:?}; use withdraw, used, bounce, data-changed, hold-on or hold-off"
            )));
        }
    })
}

/// `POST /v1/contacts/{id}/events`: something happened in the CRM. An
/// `Idempotency-Key` header makes a retried call return the first answer.
async fn report_event(
    AxumState(state): AxumState<State>,
    TenantKey(tenant): TenantKey,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let parsed: EventBody = parse_body(&body)?;
    let event = event_of(&parsed)?;
    let idempotency = headers
        .get("idempotency-key")
        .map(|v| {
            v.to_str()
                .map(str::to_owned)
                .map_err(|_| ApiError::bad_request("Idempotency-Key must be text"))
        })
        .transpose()?;
    let request = format!("{id}\n{}", String::from_utf8_lossy(&body));
    let now = state.now();
    let plugin = std::sync::Arc::clone(&state.plugin);
    with_store(&state, move |store| {
        if let Some(key) = &idempotency {
            let earlier: Option<(String, u16, String)> = store
                .connection()
                .query_row(
                    "SELECT request, status, response FROM idempotency WHERE tenant = ?1 AND key = ?2",
                    rusqlite::params![tenant, key],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .optional()
                .map_err(ApiError::internal)?;
            if let Some((earlier_request, status, response)) = earlier {
                if earlier_request != request {
                    return Err(ApiError::unprocessable(
                        "idempotency_key_reused",
                        "this Idempotency-Key was used for a different request",
                    ));
                }
                let value: Value = serde_json::from_str(&response).map_err(ApiError::internal)?;
                let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
                return Ok((status, Json(value)));
            }
        }
        let tenant_row = tenants::require(store.connection(), &tenant).map_err(ApiError::internal)?;
        if contacts::get(store.connection(), &tenant, &id)
            .map_err(ApiError::internal)?
            .is_none()
        {
            return Err(ApiError::not_found(format!("no contact {id}")));
        }
        let purposes: Vec<String> = match &parsed.purpose {
            Some(p) => vec![p.clone()],
            None if matches!(event, Event::Used | Event::Bounce { .. }) => {
                vec![tenants::DEFAULT_PURPOSE.to_owned()]
            }
            None => tenants::purposes(store.connection(), &tenant)
                .map_err(ApiError::internal)?
                .into_iter()
                .map(|(p, _)| p)
                .collect(),
        };
        let (mut session, sha) = scheduler::tenant_session(store, &plugin, &tenant_row)
            .map_err(ApiError::internal)?;
        let mut results = Vec::new();
        let mut rejected = 0;
        for purpose in &purposes {
            match scheduler::step_event(
                store,
                &mut session,
                &tenant_row,
                &sha,
                &id,
                purpose,
                event.clone(),
                now,
            ) {
                Ok(outcome) => results.push(json!({ "purpose": purpose, "state": outcome.case.state })),
                Err(EventError::Rejected(why)) => {
                    rejected += 1;
                    results.push(json!({ "purpose": purpose, "rejected": why }));
                }
                Err(EventError::NoCase { .. }) => {
                    rejected += 1;
                    results.push(json!({ "purpose": purpose, "rejected": "no such case" }));
                }
                Err(EventError::Failed(why)) => {
                    results.push(json!({ "purpose": purpose, "failed": why }));
                }
                Err(EventError::Store(e)) => return Err(ApiError::internal(e)),
            }
        }
        let status = if rejected == purposes.len() {
            StatusCode::CONFLICT
        } else {
            StatusCode::OK
        };
        let response = json!({ "contact": id, "event": parsed.kind, "results": results });
        if let Some(key) = &idempotency {
            store
                .connection()
                .execute(
                    "INSERT INTO idempotency (tenant, key, request, status, response, created_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    rusqlite::params![
                        tenant,
                        key,
                        request,
                        status.as_u16(),
                        response.to_string(),
                        now.timestamp()
                    ],
                )
                .map_err(ApiError::internal)?;
        }
        Ok((status, Json(response)))
    })
    .await
}

#[derive(Debug, Deserialize)]
struct CasesQuery {
    state: Option<String>,
    band: Option<String>,
    owner: Option<String>,
    #[serde(default)]
    overdue: bool,
    /// The `next` of the previous page.
    after: Option<String>,
    limit: Option<usize>,
}

/// `GET /v1/cases`: filtered, in pages (`after` = the previous page's `next`).
async fn list_cases(
    AxumState(state): AxumState<State>,
    TenantKey(tenant): TenantKey,
    q: Result<Query<CasesQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(q) = q.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let after = match &q.after {
        None => None,
        Some(cursor) => {
            let bytes = (0..cursor.len())
                .step_by(2)
                .map(|i| {
                    cursor
                        .get(i..i + 2)
                        .and_then(|h| u8::from_str_radix(h, 16).ok())
                })
                .collect::<Option<Vec<u8>>>()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| ApiError::bad_request("`after` is not a cursor from this API"))?;
            Some(bytes)
        }
    };
    let now = state.now().timestamp();
    with_store(&state, move |store| {
        let filter = CaseFilter {
            state: q.state,
            band: q.band,
            owner: q.owner,
            overdue: q.overdue,
        };
        let all =
            report::cases(store.connection(), &tenant, &filter, now).map_err(ApiError::internal)?;
        let key = |c: &report::CaseLine| format!("{}\u{1f}{}", c.contact, c.purpose);
        let page: Vec<&report::CaseLine> = all
            .iter()
            .filter(|c| after.as_ref().is_none_or(|a| key(c).as_str() > a.as_str()))
            .take(limit)
            .collect();
        let next = (page.len() == limit)
            .then(|| page.last().map(|c| crate::hex(key(c).as_bytes())))
            .flatten();
        Ok(Json(json!({ "cases": page, "next": next })))
    })
    .await
}

/// `GET /v1/status`: the cockpit.
async fn status(
    AxumState(state): AxumState<State>,
    TenantKey(tenant): TenantKey,
) -> Result<Json<Value>, ApiError> {
    let now = state.now().timestamp();
    with_store(&state, move |store| {
        let s = report::status(store.connection(), &tenant, now).map_err(ApiError::internal)?;
        Ok(Json(serde_json::to_value(s).map_err(ApiError::internal)?))
    })
    .await
}

#[derive(Debug, Deserialize)]
struct OutboxQuery {
    #[serde(default)]
    after: i64,
    limit: Option<usize>,
}

/// `GET /v1/outbox?after=SEQ`: actions not yet acknowledged, in order.
async fn pending_actions(
    AxumState(state): AxumState<State>,
    TenantKey(tenant): TenantKey,
    q: Result<Query<OutboxQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(q) = q.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let public_url = state.public_url.clone();
    with_store(&state, move |store| {
        let filter = outbox::Filter {
            after: q.after,
            limit: Some(limit),
            ..outbox::Filter::default()
        };
        let mut items =
            outbox::list(store.connection(), &tenant, &filter).map_err(ApiError::internal)?;
        for item in &mut items {
            outbox::add_response_url(item, &public_url);
        }
        let next_after = items.last().map_or(q.after, |i| i.seq);
        Ok(Json(json!({ "actions": items, "next_after": next_after })))
    })
    .await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AckBody {
    ids: Vec<String>,
}

/// `POST /v1/outbox/ack`: the CRM carried these actions out.
async fn acknowledge(
    AxumState(state): AxumState<State>,
    TenantKey(tenant): TenantKey,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let body: AckBody = parse_body(&body)?;
    let now = state.now().timestamp();
    with_store(&state, move |store| {
        let acknowledged = store
            .transaction(|tx| {
                let mut n = 0;
                for id in &body.ids {
                    n += tx.execute(
                        "UPDATE outbox SET acked_at = ?3 WHERE tenant = ?1 AND id = ?2 AND acked_at IS NULL",
                        rusqlite::params![tenant, id, now],
                    )?;
                }
                Ok::<_, rusqlite::Error>(n)
            })
            .map_err(ApiError::internal)?;
        Ok(Json(json!({ "acknowledged": acknowledged })))
    })
    .await
}
