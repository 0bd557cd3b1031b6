//! The CRM API (`/v1`): the key that says which tenant a request is for,
//! body parsing, and the routes of `contacts`, `events`, `cases` and
//! `outbox`, each registered with its OpenAPI documentation.

mod campaign;
mod cases;
mod contacts;
mod events;
mod outbox;

use axum::body::Bytes;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use utoipa_axum::router::OpenApiRouter;

use super::{ApiError, State, with_store};

use crate::store::apikeys;

/// Every route is registered through `routes!`, which also puts its
/// documentation in the OpenAPI document: a route cannot exist undocumented.
pub(super) fn routes() -> OpenApiRouter<State> {
    OpenApiRouter::new()
        .merge(contacts::routes())
        .merge(campaign::routes())
        .merge(events::routes())
        .merge(cases::routes())
        .merge(outbox::routes())
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

/// The tenant of a live API key, and the key's scope.
pub(super) fn tenant_of(
    conn: &crate::store::Conn,
    key: &str,
) -> Result<(String, apikeys::Scope), ApiError> {
    apikeys::tenant_of(conn, key)
        .map_err(ApiError::internal)?
        .ok_or_else(ApiError::unauthorized)
}

/// The tenant of the request's API key, of any scope: for the operations a
/// CRM integration needs (documented with scope `crm`).
pub(crate) struct TenantKey(pub String);

impl FromRequestParts<State> for TenantKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &State) -> Result<Self, ApiError> {
        let Bearer(key) = Bearer::from_request_parts(parts, state).await?;
        let (tenant, _) =
            with_store(state, move |store| tenant_of(store.connection(), &key)).await?;
        Ok(TenantKey(tenant))
    }
}

/// The tenant of the request's API key, which must have scope `admin`: for
/// keys, the webhook and the policy. A `crm` key gets 403, so a leaked
/// integration key cannot make keys, revoke the others or change the policy.
pub(crate) struct AdminKey(pub String);

impl FromRequestParts<State> for AdminKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &State) -> Result<Self, ApiError> {
        let Bearer(key) = Bearer::from_request_parts(parts, state).await?;
        let (tenant, scope) =
            with_store(state, move |store| tenant_of(store.connection(), &key)).await?;
        if scope != apikeys::Scope::Admin {
            return Err(ApiError::forbidden(
                "this key has scope crm; this operation needs a key with scope admin \
                 (klar apikey create --scope admin)",
            ));
        }
        Ok(AdminKey(tenant))
    }
}

/// Every body of the API is one JSON object. (serde would also read a struct
/// from an array of its fields in order, which the document does not allow.)
pub(super) fn parse_body<T: serde::de::DeserializeOwned>(body: &Bytes) -> Result<T, ApiError> {
    if body.trim_ascii_start().first() != Some(&b'{') {
        return Err(ApiError::bad_request(
            "the body must be one JSON object, {…}",
        ));
    }
    serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(format!(
            "the body is not valid JSON for this call (line {}, column {}): {e}",
            e.line(),
            e.column()
        ))
    })
}
