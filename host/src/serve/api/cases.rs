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

use crate::store::report::{self, CaseFilter};
use crate::wire;

use super::TenantKey;

pub(super) fn routes() -> OpenApiRouter<State> {
    OpenApiRouter::new()
        .routes(routes!(list_cases))
        .routes(routes!(status))
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
