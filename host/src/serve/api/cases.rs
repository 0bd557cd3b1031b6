//! `/v1/cases` and `/v1/status`: case lists and the cockpit.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State as AxumState};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::serve::error::ErrorBody;
use crate::serve::{ApiError, State, with_store};

use crate::serve::schemas;
use crate::store::report::{self, CaseFilter};
use crate::wire;

/// A page size: 1 to 1000, default 100.
pub(super) fn page_size(limit: Option<usize>) -> Result<usize, ApiError> {
    match limit {
        None => Ok(100),
        Some(n) if (1..=1000).contains(&n) => Ok(n),
        Some(_) => Err(ApiError::bad_request("limit is 1 to 1000")),
    }
}

use super::TenantKey;

pub(super) fn routes() -> OpenApiRouter<State> {
    OpenApiRouter::new()
        .routes(routes!(list_cases))
        .routes(routes!(status))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct CasesQuery {
    /// Only cases in this state; another value is a 400.
    #[param(schema_with = schemas::state_names)]
    state: Option<String>,
    /// Only cases in this band; another value is a 400.
    #[param(schema_with = schemas::band_names)]
    band: Option<String>,
    /// Only this owner's contacts.
    owner: Option<String>,
    /// Only cases whose next step is due but has not run.
    #[serde(default)]
    overdue: bool,
    /// The `next` of the previous page: the page starts after that case.
    #[param(pattern = "^([0-9a-f]{2})*$", max_length = 1000)]
    after: Option<String>,
    /// Cases per page, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<usize>,
}

#[derive(Debug, Serialize, ToSchema)]
pub(super) struct CasesPage {
    cases: Vec<wire::CaseLine>,
    /// Pass as `after` for the next page; null on the last page.
    next: Option<String>,
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
    security(("api_key" = ["crm"])),
)]
async fn list_cases(
    AxumState(state): AxumState<State>,
    TenantKey(tenant): TenantKey,
    q: Result<Query<CasesQuery>, QueryRejection>,
) -> Result<Json<CasesPage>, ApiError> {
    let Query(q) = q.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let limit = page_size(q.limit)?;
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
        // Any position is a cursor: `next` is the hex of "contact\u{1f}purpose";
        // hex without the separator is a contact to start after.
        Some(cursor) => {
            let bytes = (0..cursor.len())
                .step_by(2)
                .map(|i| {
                    cursor
                        .get(i..i + 2)
                        .and_then(|h| u8::from_str_radix(h, 16).ok())
                })
                .collect::<Option<Vec<u8>>>()
                .filter(|_| cursor.len() % 2 == 0 && cursor.len() <= 1000)
                .ok_or_else(|| ApiError::bad_request("`after` is not a cursor from this API"))?;
            let key = String::from_utf8_lossy(&bytes).into_owned();
            Some(match key.split_once('\u{1f}') {
                Some((contact, purpose)) => (contact.to_owned(), purpose.to_owned()),
                None => (key, String::new()),
            })
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
        Ok(Json(CasesPage {
            cases: wire::list(cases),
            next,
        }))
    })
    .await
}

/// The cockpit, as `klar status --json`.
#[utoipa::path(
    get, path = "/v1/status", tag = "cases",
    responses(
        (status = 200, description = "Bands, states, deadlines, attention, parked deliveries", body = wire::Status),
        (status = 401, description = "No live API key", body = ErrorBody),
    ),
    security(("api_key" = ["crm"])),
)]
async fn status(
    AxumState(state): AxumState<State>,
    TenantKey(tenant): TenantKey,
) -> Result<Json<wire::Status>, ApiError> {
    let now = state.now().timestamp();
    with_store(&state, move |store| {
        let s = report::status(store.connection(), &tenant, now).map_err(ApiError::internal)?;
        Ok(Json(wire::Status::from(s)))
    })
    .await
}
