//! `POST /v1/use`: a campaign's whole list checked in one call, each id with
//! its answer and reason code (see [`crate::app::campaign`]).

use std::collections::BTreeMap;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State as AxumState;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{TenantKey, parse_body};
use crate::app::actor::Actor;
use crate::app::campaign::{self, CheckError};
use crate::serve::error::ErrorBody;
use crate::serve::schemas;
use crate::serve::{ApiError, State, with_store};
use crate::store::tenants;

pub(super) fn routes() -> OpenApiRouter<State> {
    OpenApiRouter::new().routes(routes!(check_list))
}

/// A list to check.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct ListBody {
    /// The purpose the list is for (default, also for null: `contact-data`).
    #[schema(schema_with = schemas::optional_purpose)]
    purpose: Option<String>,
    /// The CRM's contact ids, 1 to 100,000, in any order; an id klar does
    /// not know is answered `unknown-contact`.
    #[schema(schema_with = schemas::contact_list)]
    contacts: Vec<String>,
}

/// One id's answer.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct ListVerdict {
    contact: String,
    may_use: bool,
    /// `consent`, `other-basis` or `not-refused` (a non-restrictive
    /// purpose's case not yet clarified) (usable); `not-clarified`, `refused`,
    /// `withdrawn`, `objected`, `cleanup-pending`, `purged`, `erased`, `no-case` or
    /// `unknown-contact` (not usable).
    #[schema(schema_with = schemas::reason_codes)]
    reason: String,
}

/// The answer for a whole list.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct ListAnswer {
    purpose: String,
    /// How many ids were checked.
    checked: usize,
    /// How many of them may be used.
    usable: usize,
    /// How many ids each reason applies to.
    reasons: BTreeMap<String, usize>,
    /// SHA-256 of the list (each id followed by a line feed), as the
    /// `list-checked` audit row keeps it instead of the ids.
    list_sha256: String,
    /// The `list-checked` audit row of this check.
    audit_seq: i64,
    /// One answer per id, in the list's order.
    contacts: Vec<ListVerdict>,
}

/// May the CRM use these contacts for purpose P? A whole campaign list at
/// once, audited without personal data.
#[utoipa::path(
    post, path = "/v1/use", tag = "contacts",
    request_body = ListBody,
    responses(
        (status = 200, description = "Each id with its answer and reason", body = ListAnswer),
        (status = 400, description = "Bad body: no ids, more than 100,000, an id too long, a malformed purpose", body = ErrorBody),
        (status = 401, description = "No live API key", body = ErrorBody),
        (status = 404, description = "The tenant has no such purpose (the message lists its purposes)", body = ErrorBody),
    ),
    security(("api_key" = ["crm"])),
)]
async fn check_list(
    AxumState(state): AxumState<State>,
    TenantKey(tenant): TenantKey,
    body: Bytes,
) -> Result<Json<ListAnswer>, ApiError> {
    let body: ListBody = parse_body(&body)?;
    let purpose = body
        .purpose
        .unwrap_or_else(|| tenants::DEFAULT_PURPOSE.to_owned());
    if !tenants::valid_id(&purpose) {
        return Err(ApiError::bad_request(format!(
            "purpose {purpose:?} is not a purpose id (1 to 64 lower-case letters, digits and hyphens)"
        )));
    }
    let now = state.now().timestamp();
    with_store(&state, move |store| {
        let checked = campaign::check(store, &tenant, &purpose, &body.contacts, &Actor::Api, now)
            .map_err(|err| match err {
            CheckError::Store(err) => ApiError::internal(err),
            err @ (CheckError::UnknownPurpose { .. } | CheckError::UnknownTenant(_)) => {
                ApiError::not_found(err.to_string())
            }
            err => ApiError::bad_request(err.to_string()),
        })?;
        Ok(Json(ListAnswer {
            checked: checked.verdicts.len(),
            usable: checked.usable(),
            reasons: checked
                .counts()
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .collect(),
            list_sha256: checked.list_sha256,
            audit_seq: checked.audit_seq,
            contacts: checked
                .verdicts
                .into_iter()
                .map(|v| ListVerdict {
                    contact: v.contact,
                    may_use: v.may_use,
                    reason: v.reason.code().to_owned(),
                })
                .collect(),
            purpose: checked.purpose,
        }))
    })
    .await
}
