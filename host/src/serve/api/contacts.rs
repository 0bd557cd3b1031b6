//! `/v1/contacts`: contacts in (one or a batch), their proof bundle and
//! explanation, and "may I use?".

use std::collections::BTreeMap;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State as AxumState};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;

use crate::serve::schemas;
use utoipa_axum::routes;

use crate::serve::error::{ErrorBody, ErrorDetail};
use crate::serve::{ApiError, State, with_reader, with_store};

use crate::plugin::{Contact, State as CaseState};
use crate::store::contacts::Upsert;
use crate::store::{cases, tenants};

use super::{Bearer, TenantKey, parse_body, tenant_of};

pub(super) fn routes() -> OpenApiRouter<State> {
    OpenApiRouter::new()
        .routes(routes!(upsert_batch))
        .routes(routes!(upsert_contact))
        .routes(routes!(evidence))
        .routes(routes!(explanation))
        .routes(routes!(may_use))
}

/// The contact of a path.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub(super) struct ContactPath {
    /// The CRM's id of the contact: 1 to 200 characters, no control
    /// characters, slashes or blanks around it.
    #[param(schema_with = schemas::contact_id)]
    #[allow(dead_code)]
    id: String,
}

/// A contact as the CRM sends it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct ContactBody {
    #[serde(default)]
    #[schema(schema_with = schemas::name)]
    first_name: String,
    #[serde(default)]
    #[schema(schema_with = schemas::name)]
    last_name: String,
    /// Empty or null when unknown.
    #[schema(schema_with = schemas::email)]
    email: Option<String>,
    /// Empty or null when unknown.
    #[schema(schema_with = schemas::phone)]
    phone: Option<String>,
    /// The responsible person; decisions on this contact go to them.
    #[schema(schema_with = schemas::owner)]
    owner: String,
    /// Where the contact came from (default `api`); policies may use it.
    #[serde(default)]
    #[schema(schema_with = schemas::source)]
    source: Option<String>,
    /// `de` (default; also when empty) or `en…`: the language of requests
    /// and the page.
    #[schema(schema_with = schemas::language)]
    language: Option<String>,
    /// When the contact was first recorded (a date or RFC 3339 time; default now).
    #[schema(schema_with = schemas::date_or_time)]
    created_at: Option<String>,
    /// Free attributes a policy can read with `attr("name")`: at most 100,
    /// names of 1 to 64 characters, values of at most 1,000.
    #[serde(default)]
    #[schema(schema_with = schemas::attributes)]
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
    // Empty is unknown; anything else is taken as sent (the document says
    // so: an address with blanks around it is not one).
    let blank = |v: Option<String>| v.filter(|s| !s.is_empty());
    let (email, phone) = (blank(body.email), blank(body.phone));
    let mut problems = Vec::new();
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
    let contact = Contact {
        id: id.to_owned(),
        first_name: body.first_name,
        last_name: body.last_name,
        email,
        phone,
        owner: body.owner.trim().to_owned(),
        source: body.source.unwrap_or_else(|| "api".to_owned()),
        language: body
            .language
            .filter(|l| !l.is_empty())
            .unwrap_or_else(|| "de".to_owned()),
        created_at: created_at.unwrap_or(now),
        attributes: body.attributes,
    };
    problems.extend(crate::app::contacts::field_problems(&contact));
    if problems.is_empty() {
        Ok(contact)
    } else {
        Err(problems)
    }
}

/// Why a contact may not be stored: an address of an erased contact.
fn erased(
    conn: &crate::store::Conn,
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
    params(ContactPath),
    request_body = ContactBody,
    responses(
        (status = 200, description = "Stored", body = ContactResult),
        (status = 400, description = "Bad input, with the reason", body = ErrorBody),
        (status = 401, description = "No live API key", body = ErrorBody),
        (status = 409, description = "The address belongs to an erased contact (`erased`)", body = ErrorBody),
    ),
    security(("api_key" = ["crm"])),
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
    #[schema(schema_with = schemas::contact_id)]
    id: String,
    #[serde(flatten)]
    contact: ContactBody,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct Batch {
    /// Up to 10,000 contacts.
    #[schema(max_items = 10_000)]
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

/// A refused batch: nothing was stored. With `invalid_items`, `items` names
/// every bad item; any other 400 (a body that is no batch) has only `error`.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct InvalidItems {
    error: ErrorDetail,
    #[serde(skip_serializing_if = "Option::is_none")]
    items: Option<Vec<InvalidItem>>,
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
    security(("api_key" = ["crm"])),
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
                items: Some(bad),
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
    params(ContactPath),
    responses(
        (status = 200, description = "The bundle (`klar-evidence-bundle/1`)", body = crate::app::evidence::Bundle),
        (status = 401, description = "No live API key", body = ErrorBody),
        (status = 404, description = "No such contact", body = ErrorBody),
    ),
    security(("api_key" = ["crm"])),
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
    params(ContactPath),
    responses(
        (status = 200, description = "The steps", body = Explanation),
        (status = 401, description = "No live API key", body = ErrorBody),
        (status = 404, description = "No such contact", body = ErrorBody),
    ),
    security(("api_key" = ["crm"])),
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
    #[param(schema_with = schemas::purpose)]
    purpose: Option<String>,
}

/// The answer to "may I use this contact for this purpose?".
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct UseAnswer {
    contact: String,
    purpose: String,
    /// True in the band `usable`; for a `non-restrictive` purpose also in
    /// `to-clarify`. Never for an erased person.
    may_use: bool,
    /// `usable`, `to-clarify` or `removed`.
    band: String,
    /// The case's state, e.g. `consented`, `requested`, `purged`.
    state: String,
    /// How strict the purpose is: `restrictive` (only with consent or
    /// another basis) or `non-restrictive` (unless the contact said no).
    #[schema(schema_with = schemas::enforcement_names)]
    enforcement: String,
    /// Why use is allowed; null when it is not.
    basis: Option<Basis>,
}

/// The legal basis of a usable case.
#[derive(Debug, Default, Serialize, ToSchema)]
pub(super) struct Basis {
    /// `consent`; `contract`, `legitimate-interest`, `existing-customer`
    /// (§ 7(3) UWG) or `legal-obligation`, set by the policy; `other`, a
    /// basis a person recorded; `not-refused`, a non-restrictive purpose
    /// whose contact has not said no.
    #[schema(example = "existing-customer")]
    kind: String,
    /// Since when (RFC 3339): the consent, or the basis set or renewed.
    #[serde(skip_serializing_if = "Option::is_none")]
    since: Option<String>,
    /// Why another basis applies, as the legal team or the person wrote it.
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    /// When the policy checks a basis it set again (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    review_at: Option<String>,
    /// The policy version that set the basis.
    #[serde(skip_serializing_if = "Option::is_none")]
    policy_version: Option<u32>,
    /// The person who recorded the basis (null when the policy set it).
    #[serde(skip_serializing_if = "Option::is_none")]
    decided_by: Option<String>,
    /// The contact may object (legitimate interest, existing customer): each
    /// use must say so and carry the personal link the CRM received with
    /// `basis-recorded`.
    #[serde(skip_serializing_if = "Option::is_none")]
    objection_possible: Option<bool>,
}

impl Basis {
    fn of(basis: Option<&crate::plugin::Basis>) -> Basis {
        let time = |t: Option<chrono::DateTime<chrono::Utc>>| t.map(|t| t.to_rfc3339());
        match basis {
            None => Basis {
                kind: "other".to_owned(),
                ..Basis::default()
            },
            Some(b) => Basis {
                kind: b.kind.as_str().to_owned(),
                since: time(b.since),
                reason: Some(b.reason.clone()),
                review_at: time(b.review_at),
                policy_version: b.policy_version,
                decided_by: b.decided_by.clone().filter(|d| !d.is_empty()),
                objection_possible: Some(b.kind.objectionable()),
            },
        }
    }
}

/// May the CRM use this contact for purpose P? The hottest call.
#[utoipa::path(
    get, path = "/v1/contacts/{id}/use", tag = "contacts",
    params(ContactPath, PurposeQuery),
    responses(
        (status = 200, description = "The band, state and basis", body = UseAnswer),
        (status = 400, description = "Bad query", body = ErrorBody),
        (status = 401, description = "No live API key", body = ErrorBody),
        (status = 404, description = "No such contact or no case for the purpose", body = ErrorBody),
    ),
    security(("api_key" = ["crm"])),
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
    // only the columns the answer needs, read on this thread.
    with_reader(&state, move |store| {
        let conn = store.connection();
        let (tenant, _) = tenant_of(conn, &key)?;
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
        let enforcement = row.enforcement.as_str().to_owned();
        let (case_state, band, consented_at, recorded) =
            (row.state, row.band, row.consented_at, row.basis);
        let basis = if !usable {
            None
        } else if case_state == CaseState::Consented.as_str() {
            let since = consented_at
                .and_then(|t| chrono::DateTime::parse_from_rfc3339(&t).ok())
                .map(|t| t.with_timezone(&chrono::Utc).to_rfc3339());
            Some(Basis {
                kind: "consent".to_owned(),
                since,
                ..Basis::default()
            })
        } else if case_state == CaseState::OtherBasis.as_str() {
            Some(Basis::of(recorded.as_ref()))
        } else {
            Some(Basis {
                kind: "not-refused".to_owned(),
                ..Basis::default()
            })
        };
        Ok(Json(UseAnswer {
            contact: id,
            purpose,
            may_use: usable,
            band,
            state: case_state,
            enforcement,
            basis,
        }))
    })
}
