//! The tenant's settings and purposes over the API: read with any key,
//! changed with an admin key, through `crate::app::settings` as `klar tenant
//! set` and `klar purpose set|remove` change them (checked and audited).

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State as AxumState};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::api::{AdminKey, TenantKey, parse_body};
use super::error::ErrorBody;
use super::{ApiError, State, with_store};
use crate::app::settings::{self, Change, SettingsError};
use crate::store::tenants;
use crate::wire;

pub(super) fn routes() -> OpenApiRouter<State> {
    OpenApiRouter::new()
        .routes(routes!(show_tenant, change_tenant))
        .routes(routes!(list_purposes))
        .routes(routes!(set_purpose, remove_purpose))
}

fn settings_error(err: SettingsError) -> ApiError {
    match err {
        err @ (SettingsError::UnknownTenant(_) | SettingsError::UnknownPurpose { .. }) => {
            ApiError::not_found(err.to_string())
        }
        err @ SettingsError::InUse { .. } => ApiError::conflict("purpose_in_use", err.to_string()),
        SettingsError::Invalid(why) => ApiError::bad_request(why),
        SettingsError::Store(err) => ApiError::internal(err),
    }
}

/// The tenant's settings: name, time zone, language, default owner and the
/// company's legal details.
#[utoipa::path(
    get, path = "/v1/tenant", tag = "setup",
    responses(
        (status = 200, description = "The settings", body = wire::TenantSettings),
        (status = 401, description = "No live API key", body = ErrorBody),
    ),
    security(("api_key" = ["crm"])),
)]
async fn show_tenant(
    AxumState(state): AxumState<State>,
    TenantKey(tenant): TenantKey,
) -> Result<Json<wire::TenantSettings>, ApiError> {
    with_store(&state, move |store| {
        let t = tenants::require(store.connection(), &tenant).map_err(ApiError::internal)?;
        Ok(Json(t.into()))
    })
    .await
}

/// A change of settings: what is absent or null stays; an empty string
/// clears an optional setting.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct TenantChange {
    /// The company's name: one line.
    #[schema(schema_with = crate::serve::schemas::nullable_line_200)]
    name: Option<String>,
    /// An IANA time zone.
    #[schema(schema_with = crate::serve::schemas::timezone)]
    timezone: Option<String>,
    /// A language tag: de, en, de-AT, …
    #[schema(schema_with = crate::serve::schemas::locale)]
    locale: Option<String>,
    #[schema(schema_with = crate::serve::schemas::optional_owner)]
    default_owner: Option<String>,
    /// Lines separated by line breaks.
    #[schema(schema_with = crate::serve::schemas::address)]
    address: Option<String>,
    #[schema(schema_with = crate::serve::schemas::optional_line_1000)]
    managing_directors: Option<String>,
    #[schema(schema_with = crate::serve::schemas::optional_line_200)]
    register_entry: Option<String>,
    #[schema(schema_with = crate::serve::schemas::optional_web_address)]
    imprint_url: Option<String>,
    #[schema(schema_with = crate::serve::schemas::optional_web_address)]
    privacy_url: Option<String>,
    /// A German state whose public holidays are no business days, or "" to clear.
    #[schema(schema_with = crate::serve::schemas::region)]
    region: Option<String>,
    /// The company's closure days: `12-24` every year, `2026-12-28` once
    /// (replaces the list; empty clears it).
    #[schema(schema_with = crate::serve::schemas::closure_days)]
    closure_days: Option<Vec<String>>,
}

/// Change the tenant's settings; audited with each setting's value before
/// and after.
#[utoipa::path(
    patch, path = "/v1/tenant", tag = "setup",
    request_body = TenantChange,
    responses(
        (status = 200, description = "The settings as they are now", body = wire::TenantSettings),
        (status = 400, description = "Bad body, or a value klar does not take", body = ErrorBody),
        (status = 401, description = "No live API key", body = ErrorBody),
        (status = 403, description = "The key's scope is not admin", body = ErrorBody),
    ),
    security(("api_key" = ["admin"])),
)]
async fn change_tenant(
    AxumState(state): AxumState<State>,
    AdminKey(tenant): AdminKey,
    body: Bytes,
) -> Result<Json<wire::TenantSettings>, ApiError> {
    let body: TenantChange = parse_body(&body)?;
    let change = Change {
        name: body.name,
        timezone: body.timezone,
        locale: body.locale,
        default_owner: body.default_owner,
        address: body.address,
        managing_directors: body.managing_directors,
        register_entry: body.register_entry,
        imprint_url: body.imprint_url,
        privacy_url: body.privacy_url,
        region: body.region,
        closure_days: body.closure_days,
    };
    let now = state.now().timestamp();
    with_store(&state, move |store| {
        let (t, _) = settings::set_tenant(store, &tenant, &change, now).map_err(settings_error)?;
        Ok(Json(t.into()))
    })
    .await
}

#[derive(Debug, Serialize, ToSchema)]
pub(super) struct Purposes {
    purposes: Vec<wire::Purpose>,
}

/// The tenant's purposes, with how many cases each has.
#[utoipa::path(
    get, path = "/v1/purposes", tag = "setup",
    responses(
        (status = 200, description = "Every purpose", body = Purposes),
        (status = 401, description = "No live API key", body = ErrorBody),
    ),
    security(("api_key" = ["crm"])),
)]
async fn list_purposes(
    AxumState(state): AxumState<State>,
    TenantKey(tenant): TenantKey,
) -> Result<Json<Purposes>, ApiError> {
    with_store(&state, move |store| {
        let all = tenants::purposes_with_cases(store.connection(), &tenant)
            .map_err(ApiError::internal)?;
        Ok(Json(Purposes {
            purposes: all.into_iter().map(wire::Purpose::from).collect(),
        }))
    })
    .await
}

/// A purpose in a path.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub(super) struct PurposePath {
    /// The purpose's id: lower-case letters, digits and hyphens.
    #[param(schema_with = crate::serve::schemas::purpose)]
    purpose: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct PurposeBody {
    /// What the purpose is, in words a contact understands: one line.
    #[schema(schema_with = crate::serve::schemas::text_message)]
    description: String,
    /// How strict it is about use; leave out (or null) to keep it
    /// (`restrictive` for a new purpose).
    #[schema(schema_with = crate::serve::schemas::optional_enforcement)]
    enforcement: Option<String>,
}

/// A purpose's enforcement as the wire says it.
fn enforcement_of(
    enforcements: &std::collections::HashMap<String, tenants::Enforcement>,
    purpose: &str,
) -> String {
    enforcements
        .get(purpose)
        .copied()
        .unwrap_or_default()
        .as_str()
        .to_owned()
}

/// Add a purpose (201), as `klar purpose add` does, or change its
/// description (200); texts already set keep their words. `enforcement`
/// sets how strict it is about use (audited).
#[utoipa::path(
    put, path = "/v1/purposes/{purpose}", tag = "setup",
    params(PurposePath),
    request_body = PurposeBody,
    responses(
        (status = 200, description = "Its description changed (or was so already)", body = wire::Purpose),
        (status = 201, description = "Added", body = wire::Purpose),
        (status = 400, description = "Bad body, id or description", body = ErrorBody),
        (status = 401, description = "No live API key", body = ErrorBody),
        (status = 403, description = "The key's scope is not admin", body = ErrorBody),
    ),
    security(("api_key" = ["admin"])),
)]
async fn set_purpose(
    AxumState(state): AxumState<State>,
    AdminKey(tenant): AdminKey,
    Path(PurposePath { purpose }): Path<PurposePath>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let body: PurposeBody = parse_body(&body)?;
    let enforcement = match body.enforcement.as_deref() {
        None => None,
        Some(text) => Some(tenants::Enforcement::parse(text).ok_or_else(|| {
            ApiError::bad_request(format!(
                "unknown enforcement {text:?}; use restrictive or non-restrictive"
            ))
        })?),
    };
    let now = state.now().timestamp();
    with_store(&state, move |store| {
        let description = body.description.trim().to_owned();
        let added =
            settings::put_purpose(store, &tenant, (&purpose, &description), enforcement, now)
                .map_err(settings_error)?;
        let status = if added {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        };
        let cases = tenants::purpose_in_use(store.connection(), &tenant, &purpose)
            .map_err(ApiError::internal)?
            .0;
        let enforcements =
            tenants::enforcements(store.connection(), &tenant).map_err(ApiError::internal)?;
        let purpose = wire::Purpose {
            enforcement: enforcement_of(&enforcements, &purpose),
            id: purpose,
            description,
            cases,
        };
        Ok((status, Json(purpose)).into_response())
    })
    .await
}

#[derive(Debug, Serialize, ToSchema)]
pub(super) struct PurposeRemoved {
    removed: bool,
}

/// Remove a purpose that has no cases and that no evidence names (409
/// `purpose_in_use` otherwise, and for contact-data).
#[utoipa::path(
    delete, path = "/v1/purposes/{purpose}", tag = "setup",
    params(PurposePath),
    responses(
        (status = 200, description = "Removed, with its unused texts", body = PurposeRemoved),
        (status = 401, description = "No live API key", body = ErrorBody),
        (status = 403, description = "The key's scope is not admin", body = ErrorBody),
        (status = 404, description = "No such purpose", body = ErrorBody),
        (status = 409, description = "It has cases or evidence, or is contact-data (`purpose_in_use`)", body = ErrorBody),
    ),
    security(("api_key" = ["admin"])),
)]
async fn remove_purpose(
    AxumState(state): AxumState<State>,
    AdminKey(tenant): AdminKey,
    Path(PurposePath { purpose }): Path<PurposePath>,
) -> Result<Json<PurposeRemoved>, ApiError> {
    let now = state.now().timestamp();
    with_store(&state, move |store| {
        settings::remove_purpose(store, &tenant, &purpose, now).map_err(settings_error)?;
        Ok(Json(PurposeRemoved { removed: true }))
    })
    .await
}
