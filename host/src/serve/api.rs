//! The CRM API, version 1. Every route needs a live API key of a tenant and
//! only ever sees that tenant's data; bodies are JSON, errors are
//! [`ApiError`] bodies.

use std::collections::BTreeMap;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{FromRequestParts, Path, Query, State as AxumState};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::{ErrorBody, ErrorDetail};
use super::{ApiError, State, with_store};

use crate::plugin::{Contact, Event, State as CaseState};
use crate::store::contacts::Upsert;
use crate::store::report::{self, CaseFilter, CaseLine};
use crate::store::{apikeys, cases, outbox, tenants};

/// Every route is registered through `routes!`, which also puts its
/// documentation in the OpenAPI document: a route cannot exist undocumented.
pub(super) fn routes() -> OpenApiRouter<State> {
    OpenApiRouter::new()
        .routes(routes!(upsert_batch))
        .routes(routes!(upsert_contact))
        .routes(routes!(evidence))
        .routes(routes!(explanation))
        .routes(routes!(may_use))
        .routes(routes!(report_event))
        .routes(routes!(list_cases))
        .routes(routes!(status))
        .routes(routes!(pending_actions))
        .routes(routes!(acknowledge))
        .routes(routes!(redeliver))
}

/// The request's bearer key, read but not yet checked: the "may I use?" call
/// checks it in the same trip to the database as its query.
pub(crate) struct Bearer(pub String);

impl<S: Send + Sync> FromRequestParts<S> for Bearer {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(|k| Bearer(k.trim().to_owned()))
            .ok_or_else(ApiError::unauthorized)
    }
}

/// The tenant of a live API key.
fn tenant_of(conn: &rusqlite::Connection, key: &str) -> Result<String, ApiError> {
    apikeys::tenant_of(conn, key)
        .map_err(ApiError::internal)?
        .ok_or_else(ApiError::unauthorized)
}

/// The tenant of the request's API key.
pub(crate) struct TenantKey(pub String);

impl FromRequestParts<State> for TenantKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &State) -> Result<Self, ApiError> {
        let Bearer(key) = Bearer::from_request_parts(parts, state).await?;
        let tenant = with_store(state, move |store| tenant_of(store.connection(), &key)).await?;
        Ok(TenantKey(tenant))
    }
}

pub(super) fn parse_body<T: serde::de::DeserializeOwned>(body: &Bytes) -> Result<T, ApiError> {
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

/// A contact as the CRM sends it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct ContactBody {
    #[serde(default)]
    first_name: String,
    #[serde(default)]
    last_name: String,
    email: Option<String>,
    phone: Option<String>,
    /// The responsible person; decisions on this contact go to them.
    owner: String,
    /// Where the contact came from (default `api`); policies may use it.
    #[serde(default)]
    source: Option<String>,
    /// `de` (default) or `en…`: the language of requests and the page.
    language: Option<String>,
    /// When the contact was first recorded (a date or RFC 3339 time; default now).
    created_at: Option<String>,
    /// Free attributes a policy can read with `attr("name")`.
    #[serde(default)]
    attributes: BTreeMap<String, String>,
}

/// What storing one contact did.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct ContactResult {
    contact: String,
    result: UpsertResult,
    /// Cases opened for purposes the contact had none for.
    cases_opened: usize,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub(super) enum UpsertResult {
    Added,
    Updated,
    Unchanged,
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
        && !crate::app::import::plausible_email(e)
    {
        problems.push(format!("email {e:?} is not an e-mail address"));
    }
    if let Some(p) = &phone
        && !crate::app::import::plausible_phone(p)
    {
        problems.push(format!("phone {p:?} is not a phone number"));
    }
    let created_at = match &body.created_at {
        None => Some(now),
        Some(t) => crate::app::import::parse_time(t).or_else(|| {
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
    Ok(crate::app::contacts::erased_address(conn, tenant, contact)
        .map_err(ApiError::internal)?
        .map(|e| {
            format!(
                "the {} belongs to a contact erased on {}; it cannot be added again",
                e.kind,
                e.day()
            )
        }))
}

fn store_contacts(
    store: &mut crate::store::Store,
    tenant: &str,
    list: &[Contact],
    at: i64,
) -> Result<Vec<ContactResult>, ApiError> {
    let stored = crate::app::contacts::store_all(store, tenant, list, at, &mut |_| {})
        .map_err(ApiError::internal)?;
    Ok(list
        .iter()
        .zip(stored)
        .map(|(contact, stored)| ContactResult {
            contact: contact.id.clone(),
            result: match stored.upsert {
                Upsert::Added => UpsertResult::Added,
                Upsert::Updated => UpsertResult::Updated,
                Upsert::Unchanged => UpsertResult::Unchanged,
            },
            cases_opened: stored.cases_opened,
        })
        .collect())
}

/// Add or update a contact; opens its cases.
///
/// An address that belongs to an erased contact is refused (409 `erased`).
#[utoipa::path(
    put, path = "/v1/contacts/{id}", tag = "contacts",
    params(("id" = String, Path, description = "The CRM's id of the contact (1 to 200 characters)")),
    request_body = ContactBody,
    responses(
        (status = 200, description = "Stored", body = ContactResult),
        (status = 400, description = "Bad input, with the reason", body = ErrorBody),
        (status = 401, description = "No live API key", body = ErrorBody),
        (status = 409, description = "The address belongs to an erased contact (`erased`)", body = ErrorBody),
    ),
    security(("api_key" = [])),
)]
async fn upsert_contact(
    AxumState(state): AxumState<State>,
    TenantKey(tenant): TenantKey,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<ContactResult>, ApiError> {
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
        results
            .pop()
            .map(Json)
            .ok_or_else(|| ApiError::internal("no result for the stored contact"))
    })
    .await
}

/// One contact of a batch: its id and its fields.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct BatchItem {
    id: String,
    #[serde(flatten)]
    contact: ContactBody,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct Batch {
    /// Up to 10,000 contacts.
    contacts: Vec<BatchItem>,
}

#[derive(Debug, Serialize, ToSchema)]
pub(super) struct BatchResults {
    results: Vec<ContactResult>,
}

/// A bad item of a batch: where it is and everything wrong with it.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct InvalidItem {
    index: usize,
    contact: String,
    errors: Vec<String>,
}

/// A batch with bad items: nothing was stored.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct InvalidItems {
    /// `invalid_items`.
    error: ErrorDetail,
    items: Vec<InvalidItem>,
}

/// Many contacts at once, all or nothing.
///
/// If any item is bad, nothing is stored and the answer lists every bad item.
#[utoipa::path(
    post, path = "/v1/contacts", tag = "contacts",
    request_body = Batch,
    responses(
        (status = 200, description = "All stored", body = BatchResults),
        (status = 400, description = "Bad items (`invalid_items`; nothing stored) or a bad body", body = InvalidItems),
        (status = 401, description = "No live API key", body = ErrorBody),
    ),
    security(("api_key" = [])),
)]
async fn upsert_batch(
    AxumState(state): AxumState<State>,
    TenantKey(tenant): TenantKey,
    body: Bytes,
) -> Result<Response, ApiError> {
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
            bad.push(InvalidItem {
                index,
                contact: id,
                errors: vec!["the same id appears twice in this call".to_owned()],
            });
            continue;
        }
        match validate(&item.id, item.contact, now) {
            Ok(c) => good.push((index, c)),
            Err(errors) => bad.push(InvalidItem {
                index,
                contact: id,
                errors,
            }),
        }
    }
    with_store(&state, move |store| {
        for (index, contact) in &good {
            if let Some(why) = erased(store.connection(), &tenant, contact)? {
                bad.push(InvalidItem {
                    index: *index,
                    contact: contact.id.clone(),
                    errors: vec![why],
                });
            }
        }
        if !bad.is_empty() {
            bad.sort_by_key(|b| b.index);
            let body = InvalidItems {
                error: ErrorDetail {
                    code: "invalid_items".to_owned(),
                    message: format!("{} contact(s) are invalid; nothing was stored", bad.len()),
                },
                items: bad,
            };
            return Ok((StatusCode::BAD_REQUEST, Json(body)).into_response());
        }
        let list: Vec<Contact> = good.into_iter().map(|(_, c)| c).collect();
        let results = store_contacts(store, &tenant, &list, now.timestamp())?;
        Ok(Json(BatchResults { results }).into_response())
    })
    .await
}

/// The proof bundle of a contact, as `klar evidence export`.
#[utoipa::path(
    get, path = "/v1/contacts/{id}/evidence", tag = "contacts",
    params(("id" = String, Path, description = "The contact's id")),
    responses(
        (status = 200, description = "The bundle (`klar-evidence-bundle/1`)", body = crate::app::evidence::Bundle),
        (status = 401, description = "No live API key", body = ErrorBody),
        (status = 404, description = "No such contact", body = ErrorBody),
    ),
    security(("api_key" = [])),
)]
async fn evidence(
    AxumState(state): AxumState<State>,
    TenantKey(tenant): TenantKey,
    Path(id): Path<String>,
) -> Result<Json<crate::app::evidence::Bundle>, ApiError> {
    let now = state.now().timestamp();
    with_store(&state, move |store| {
        let t = tenants::require(store.connection(), &tenant).map_err(ApiError::internal)?;
        match crate::app::evidence::export(store.connection(), &t, &id, now) {
            Ok(b) => Ok(Json(b)),
            Err(crate::app::evidence::BundleError::NoContact { .. }) => {
                Err(ApiError::not_found(format!("no contact {id}")))
            }
            Err(e) => Err(ApiError::internal(e)),
        }
    })
    .await
}

#[derive(Debug, Serialize, ToSchema)]
pub(super) struct Explanation {
    contact: String,
    /// Oldest first.
    steps: Vec<crate::app::explain::Decision>,
}

/// Why a contact's cases are where they are, each step in words, as `klar explain`.
#[utoipa::path(
    get, path = "/v1/contacts/{id}/explanation", tag = "contacts",
    params(("id" = String, Path, description = "The contact's id")),
    responses(
        (status = 200, description = "The steps", body = Explanation),
        (status = 401, description = "No live API key", body = ErrorBody),
        (status = 404, description = "No such contact", body = ErrorBody),
    ),
    security(("api_key" = [])),
)]
async fn explanation(
    AxumState(state): AxumState<State>,
    TenantKey(tenant): TenantKey,
    Path(id): Path<String>,
) -> Result<Json<Explanation>, ApiError> {
    with_store(&state, move |store| {
        match crate::app::explain::explain(store.connection(), &tenant, &id) {
            Ok(steps) => Ok(Json(Explanation { contact: id, steps })),
            Err(crate::app::evidence::BundleError::NoContact { .. }) => {
                Err(ApiError::not_found(format!("no contact {id}")))
            }
            Err(e) => Err(ApiError::internal(e)),
        }
    })
    .await
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct PurposeQuery {
    /// The purpose (default `contact-data`).
    purpose: Option<String>,
}

/// The answer to "may I use this contact for this purpose?".
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct UseAnswer {
    contact: String,
    purpose: String,
    /// True only in the band `usable`.
    may_use: bool,
    /// `usable`, `to-clarify` or `removed`.
    band: String,
    /// The case's state, e.g. `consented`, `requested`, `purged`.
    state: String,
    /// Why use is allowed; null when it is not.
    basis: Option<Basis>,
}

/// The legal basis of a usable case.
#[derive(Debug, Serialize, ToSchema)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub(super) enum Basis {
    /// The contact agreed, at `since` (RFC 3339).
    Consent { since: Option<String> },
    /// Another basis (a contract, a legal duty…), with the reason recorded.
    Other { reason: Option<String> },
}

/// May the CRM use this contact for purpose P? The hottest call.
#[utoipa::path(
    get, path = "/v1/contacts/{id}/use", tag = "contacts",
    params(("id" = String, Path, description = "The contact's id"), PurposeQuery),
    responses(
        (status = 200, description = "The band, state and basis", body = UseAnswer),
        (status = 400, description = "Bad query", body = ErrorBody),
        (status = 401, description = "No live API key", body = ErrorBody),
        (status = 404, description = "No such contact or no case for the purpose", body = ErrorBody),
    ),
    security(("api_key" = [])),
)]
async fn may_use(
    AxumState(state): AxumState<State>,
    Bearer(key): Bearer,
    Path(id): Path<String>,
    q: Result<Query<PurposeQuery>, QueryRejection>,
) -> Result<Json<UseAnswer>, ApiError> {
    let purpose = q
        .map(|Query(q)| {
            q.purpose
                .unwrap_or_else(|| tenants::DEFAULT_PURPOSE.to_owned())
        })
        .map_err(|e| ApiError::bad_request(e.body_text()));
    // The hottest call: the key and the case in one trip to the database, and
    // only the columns the answer needs.
    with_store(&state, move |store| {
        let conn = store.connection();
        let tenant = tenant_of(conn, &key)?;
        let purpose = purpose?;
        let row = cases::usage(conn, &tenant, &id, &purpose).map_err(ApiError::internal)?;
        let Some(row) = row else {
            return Err(ApiError::not_found(format!(
                "no case for contact {id} and purpose {purpose}"
            )));
        };
        // A guardrail: an erased person is used for nothing, whatever a
        // case says.
        let usable = row.may_use();
        let (case_state, band, consented_at, reason) =
            (row.state, row.band, row.consented_at, row.basis);
        let basis = if !usable {
            None
        } else if case_state == CaseState::Consented.as_str() {
            let since = consented_at
                .and_then(|t| chrono::DateTime::parse_from_rfc3339(&t).ok())
                .map(|t| t.with_timezone(&chrono::Utc).to_rfc3339());
            Some(Basis::Consent { since })
        } else if case_state == CaseState::OtherBasis.as_str() {
            Some(Basis::Other { reason })
        } else {
            None
        };
        Ok(Json(UseAnswer {
            contact: id,
            purpose,
            may_use: usable,
            band,
            state: case_state,
            basis,
        }))
    })
    .await
}

/// Something that happened in the CRM.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct EventBody {
    /// `withdraw`, `used`, `bounce`, `data-changed`, `hold-on` or `hold-off`.
    #[serde(rename = "type")]
    kind: String,
    /// Only this purpose (default: all purposes; `used` and `bounce`: `contact-data`).
    purpose: Option<String>,
    /// For `bounce`: the channel that bounced (default `email`).
    channel: Option<String>,
    /// For `hold-on`/`hold-off`: who.
    by: Option<String>,
    /// For `hold-on`/`hold-off`: why.
    reason: Option<String>,
}

/// What the event did to each purpose's case: its new `state`, or why it was
/// `rejected`, or the error that `failed` the step.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(super) struct EventResult {
    purpose: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    state: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    rejected: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    failed: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(super) struct EventResponse {
    contact: String,
    event: String,
    results: Vec<EventResult>,
}

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

/// Report an event: withdraw, used, bounce, data changed, legal hold.
///
/// An `Idempotency-Key` header makes a retried call return the first answer;
/// the same key with a different request is a 422.
#[utoipa::path(
    post, path = "/v1/contacts/{id}/events", tag = "contacts",
    params(
        ("id" = String, Path, description = "The contact's id"),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes a retry return the first answer"),
    ),
    request_body = EventBody,
    responses(
        (status = 200, description = "Applied to at least one case", body = EventResponse),
        (status = 400, description = "Bad body or unknown event type", body = ErrorBody),
        (status = 401, description = "No live API key", body = ErrorBody),
        (status = 404, description = "No such contact", body = ErrorBody),
        (status = 409, description = "Every case rejected the event (e.g. a withdrawal without consent)", body = EventResponse),
        (status = 422, description = "The Idempotency-Key was used for another request (`idempotency_key_reused`)", body = ErrorBody),
    ),
    security(("api_key" = [])),
)]
async fn report_event(
    AxumState(state): AxumState<State>,
    TenantKey(tenant): TenantKey,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<EventResponse>), ApiError> {
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
    let shared = std::sync::Arc::clone(&state);
    with_store(&state, move |store| {
        use crate::app::events::{
            self, Applied, Idempotency, PurposeResult, ReportError, Reported,
        };
        let tenant_row =
            tenants::require(store.connection(), &tenant).map_err(ApiError::internal)?;
        let kind = parsed.kind.clone();
        let contact = id.clone();
        let response = move |results: &[PurposeResult]| -> (StatusCode, EventResponse) {
            let results: Vec<EventResult> = results
                .iter()
                .map(|r| match &r.applied {
                    Applied::Now(s) => EventResult {
                        state: Some(s.as_str().to_owned()),
                        ..EventResult::for_purpose(&r.purpose)
                    },
                    Applied::Refused(why) => EventResult {
                        rejected: Some(why.clone()),
                        ..EventResult::for_purpose(&r.purpose)
                    },
                    Applied::Failed(why) => EventResult {
                        failed: Some(why.clone()),
                        ..EventResult::for_purpose(&r.purpose)
                    },
                })
                .collect();
            let refused = results.iter().filter(|r| r.rejected.is_some()).count();
            let status = if refused == results.len() {
                StatusCode::CONFLICT
            } else {
                StatusCode::OK
            };
            let body = EventResponse {
                contact: contact.clone(),
                event: kind.clone(),
                results,
            };
            (status, body)
        };
        let written = |results: &[PurposeResult]| {
            let (status, body) = response(results);
            (
                status.as_u16(),
                serde_json::to_string(&body).unwrap_or_default(),
            )
        };
        let key = idempotency.as_deref().map(|key| Idempotency {
            key,
            request: &request,
            answer: &written,
        });
        match events::report(
            store,
            &shared.sessions,
            &tenant_row,
            &id,
            parsed.purpose.as_deref(),
            &event,
            key.as_ref(),
            now,
        ) {
            Ok(Reported::Stepped(results)) => {
                let (status, body) = response(&results);
                Ok((status, Json(body)))
            }
            Ok(Reported::Repeated { status, answer }) => {
                let body: EventResponse =
                    serde_json::from_str(&answer).map_err(ApiError::internal)?;
                Ok((
                    StatusCode::from_u16(status).unwrap_or(StatusCode::OK),
                    Json(body),
                ))
            }
            Err(ReportError::NoContact { .. }) => {
                Err(ApiError::not_found(format!("no contact {id}")))
            }
            Err(ReportError::KeyReused) => Err(ApiError::unprocessable(
                "idempotency_key_reused",
                "this Idempotency-Key was used for a different request",
            )),
            Err(err) => Err(ApiError::internal(err)),
        }
    })
    .await
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct CasesQuery {
    /// Only cases in this state (`consented`, `other-basis`, `unclarified`,
    /// `requested`, `awaiting-decision`, `paused`, `refused`, `withdrawn`,
    /// `cleanup-pending`, `purged`); another value is a 400.
    state: Option<String>,
    /// Only cases in this band (`usable`, `to-clarify`, `removed`); another
    /// value is a 400.
    band: Option<String>,
    /// Only this owner's contacts.
    owner: Option<String>,
    /// Only cases whose next step is due but has not run.
    #[serde(default)]
    overdue: bool,
    /// The `next` of the previous page.
    after: Option<String>,
    /// Cases per page, 1 to 1000 (default 100).
    limit: Option<usize>,
}

#[derive(Debug, Serialize, ToSchema)]
pub(super) struct CasesPage {
    cases: Vec<CaseLine>,
    /// Pass as `after` for the next page; null on the last page.
    next: Option<String>,
}

impl EventResult {
    fn for_purpose(purpose: &str) -> EventResult {
        EventResult {
            purpose: purpose.to_owned(),
            state: None,
            rejected: None,
            failed: None,
        }
    }
}

/// The tenant's cases, filtered, a page at a time.
#[utoipa::path(
    get, path = "/v1/cases", tag = "cases",
    params(CasesQuery),
    responses(
        (status = 200, description = "A page of case lines", body = CasesPage),
        (status = 400, description = "Bad query or cursor", body = ErrorBody),
        (status = 401, description = "No live API key", body = ErrorBody),
    ),
    security(("api_key" = [])),
)]
async fn list_cases(
    AxumState(state): AxumState<State>,
    TenantKey(tenant): TenantKey,
    q: Result<Query<CasesQuery>, QueryRejection>,
) -> Result<Json<CasesPage>, ApiError> {
    let Query(q) = q.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    // An unknown value is an error naming the allowed ones, not an empty page.
    let bad = |e: crate::plugin::UnknownName| ApiError::bad_request(e.to_string());
    let state_filter = q
        .state
        .as_deref()
        .map(str::parse)
        .transpose()
        .map_err(bad)?;
    let band_filter = q.band.as_deref().map(str::parse).transpose().map_err(bad)?;
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
                .and_then(|key| {
                    key.split_once('\u{1f}')
                        .map(|(c, p)| (c.to_owned(), p.to_owned()))
                })
                .ok_or_else(|| ApiError::bad_request("`after` is not a cursor from this API"))?;
            Some(bytes)
        }
    };
    let now = state.now().timestamp();
    with_store(&state, move |store| {
        // The page is cut in SQL (keyset on contact and purpose), so a page
        // costs the same at the start and the end of a million cases.
        let filter = CaseFilter {
            state: state_filter,
            band: band_filter,
            owner: q.owner,
            overdue: q.overdue,
            after,
            limit: Some(limit),
            ..CaseFilter::default()
        };
        let cases =
            report::cases(store.connection(), &tenant, &filter, now).map_err(ApiError::internal)?;
        let key = |c: &report::CaseLine| format!("{}\u{1f}{}", c.contact, c.purpose);
        let next = (cases.len() == limit)
            .then(|| cases.last().map(|c| crate::hex(key(c).as_bytes())))
            .flatten();
        Ok(Json(CasesPage { cases, next }))
    })
    .await
}

/// The cockpit, as `klar status --json`.
#[utoipa::path(
    get, path = "/v1/status", tag = "cases",
    responses(
        (status = 200, description = "Bands, states, deadlines, attention, parked deliveries", body = report::Status),
        (status = 401, description = "No live API key", body = ErrorBody),
    ),
    security(("api_key" = [])),
)]
async fn status(
    AxumState(state): AxumState<State>,
    TenantKey(tenant): TenantKey,
) -> Result<Json<report::Status>, ApiError> {
    let now = state.now().timestamp();
    with_store(&state, move |store| {
        let s = report::status(store.connection(), &tenant, now).map_err(ApiError::internal)?;
        Ok(Json(s))
    })
    .await
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct OutboxQuery {
    /// Only actions after this `seq` (the previous page's `next_after`).
    #[serde(default)]
    after: i64,
    /// Actions per page, 1 to 1000 (default 100).
    limit: Option<usize>,
}

#[derive(Debug, Serialize, ToSchema)]
pub(super) struct OutboxPage {
    actions: Vec<outbox::Item>,
    /// Pass as `after` to continue.
    next_after: i64,
}

/// Actions not yet acknowledged, in order: requests to send (with
/// `payload.response_url`), tasks, cleanups. At least once: de-duplicate by `id`.
#[utoipa::path(
    get, path = "/v1/outbox", tag = "outbox",
    params(OutboxQuery),
    responses(
        (status = 200, description = "A page of pending actions", body = OutboxPage),
        (status = 400, description = "Bad query", body = ErrorBody),
        (status = 401, description = "No live API key", body = ErrorBody),
    ),
    security(("api_key" = [])),
)]
async fn pending_actions(
    AxumState(state): AxumState<State>,
    TenantKey(tenant): TenantKey,
    q: Result<Query<OutboxQuery>, QueryRejection>,
) -> Result<Json<OutboxPage>, ApiError> {
    let Query(q) = q.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let public_url = state.public_url.clone();
    let mailed = state.mailed.contains(&tenant);
    let now = state.now().timestamp();
    with_store(&state, move |store| {
        let filter = outbox::Filter {
            after: q.after,
            limit: Some(limit),
            without_mails: mailed,
            deliverable_at: Some(now),
            ..outbox::Filter::default()
        };
        let mut items =
            outbox::list(store.connection(), &tenant, &filter).map_err(ApiError::internal)?;
        let ids: Vec<&str> = items.iter().map(|i| i.id.as_str()).collect();
        outbox::mark_offered(store.connection(), &tenant, &ids, now).map_err(ApiError::internal)?;
        for item in &mut items {
            crate::delivery::add_response_url(item, &public_url);
        }
        let next_after = items.last().map_or(q.after, |i| i.seq);
        Ok(Json(OutboxPage {
            actions: items,
            next_after,
        }))
    })
    .await
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct AckBody {
    /// Action ids from the outbox.
    ids: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub(super) struct Acknowledged {
    /// How many of the ids were pending (unknown or earlier acknowledged ids count 0).
    acknowledged: usize,
}

/// The CRM carried these actions out.
#[utoipa::path(
    post, path = "/v1/outbox/ack", tag = "outbox",
    request_body = AckBody,
    responses(
        (status = 200, description = "Acknowledged", body = Acknowledged),
        (status = 400, description = "Bad body", body = ErrorBody),
        (status = 401, description = "No live API key", body = ErrorBody),
    ),
    security(("api_key" = [])),
)]
async fn acknowledge(
    AxumState(state): AxumState<State>,
    TenantKey(tenant): TenantKey,
    body: Bytes,
) -> Result<Json<Acknowledged>, ApiError> {
    let body: AckBody = parse_body(&body)?;
    let now = state.now().timestamp();
    with_store(&state, move |store| {
        let acknowledged = store
            .transaction(|tx| outbox::acknowledge(tx, &tenant, &body.ids, now))
            .map_err(ApiError::internal)?;
        Ok(Json(Acknowledged { acknowledged }))
    })
    .await
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct RedeliverBody {
    /// Only this action; default: every parked one.
    id: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub(super) struct Requeued {
    requeued: usize,
}

/// Put parked deliveries (webhook or mail) back in the queue, after the
/// receiver is fixed. An empty body means all of them.
#[utoipa::path(
    post, path = "/v1/outbox/redeliver", tag = "outbox",
    request_body(content = RedeliverBody, description = "Optional"),
    responses(
        (status = 200, description = "Queued again", body = Requeued),
        (status = 400, description = "Bad body", body = ErrorBody),
        (status = 401, description = "No live API key", body = ErrorBody),
        (status = 404, description = "No parked action with this id", body = ErrorBody),
    ),
    security(("api_key" = [])),
)]
async fn redeliver(
    AxumState(state): AxumState<State>,
    TenantKey(tenant): TenantKey,
    body: Bytes,
) -> Result<Json<Requeued>, ApiError> {
    let body: RedeliverBody = if body.iter().all(u8::is_ascii_whitespace) {
        RedeliverBody::default()
    } else {
        parse_body(&body)?
    };
    let now = state.now().timestamp();
    with_store(&state, move |store| {
        let requeued = store
            .transaction(|tx| crate::store::webhooks::requeue(tx, &tenant, body.id.as_deref(), now))
            .map_err(ApiError::internal)?;
        if requeued == 0
            && let Some(id) = body.id
        {
            return Err(ApiError::not_found(format!("no parked action {id}")));
        }
        Ok(Json(Requeued { requeued }))
    })
    .await
}
