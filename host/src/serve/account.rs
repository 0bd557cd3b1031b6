//! What an integrator sets up for itself with a key it was given: more keys
//! (to rotate them), and the webhook that receives the outbox. The first key
//! of a tenant comes from an administrator (`klar apikey create`).

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State as AxumState};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::api::{AdminKey, parse_body};
use super::error::ErrorBody;
use super::{ApiError, State, with_store};
use crate::app::keys::KeyError;
use crate::app::webhook::WebhookError;
use crate::delivery::target::TargetError;
use crate::store::{apikeys, webhooks};
use crate::times::rfc3339 as time;
use crate::wire;

pub(super) fn routes() -> OpenApiRouter<State> {
    OpenApiRouter::new()
        .routes(routes!(list_keys, create_key))
        .routes(routes!(revoke_key))
        .routes(routes!(show_webhook, set_webhook, remove_webhook))
}

#[derive(Debug, Serialize, ToSchema)]
pub(super) struct Keys {
    keys: Vec<wire::ApiKey>,
}

/// The tenant's API keys, live and revoked.
#[utoipa::path(
    get, path = "/v1/keys", tag = "setup",
    responses(
        (status = 200, description = "Every key, without secrets", body = Keys),
        (status = 401, description = "No live API key", body = ErrorBody),
        (status = 403, description = "The key's scope is not admin", body = ErrorBody),
    ),
    security(("api_key" = ["admin"])),
)]
async fn list_keys(
    AxumState(state): AxumState<State>,
    AdminKey(tenant): AdminKey,
) -> Result<Json<Keys>, ApiError> {
    with_store(&state, move |store| {
        let keys = apikeys::list(store.connection(), &tenant).map_err(ApiError::internal)?;
        Ok(Json(Keys {
            keys: wire::list(keys),
        }))
    })
    .await
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct NewKey {
    /// What the key is for, e.g. the CRM instance: 1 to 100 characters,
    /// no control characters.
    #[schema(schema_with = crate::serve::schemas::line_100)]
    name: String,
    /// `crm` (the default) or `admin`.
    #[serde(default = "crm")]
    scope: wire::Scope,
}

fn crm() -> wire::Scope {
    wire::Scope::Crm
}

/// A new key, with its secret: shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct CreatedKey {
    id: String,
    name: String,
    scope: wire::Scope,
    created_at: String,
    /// `klar_…`; klar keeps only its SHA-256.
    key: String,
}

/// Create another key for the same tenant (to rotate: create, switch, revoke the old one).
#[utoipa::path(
    post, path = "/v1/keys", tag = "setup",
    request_body = NewKey,
    responses(
        (status = 201, description = "The new key, shown once", body = CreatedKey),
        (status = 400, description = "Bad body or an empty name", body = ErrorBody),
        (status = 401, description = "No live API key", body = ErrorBody),
        (status = 403, description = "The key's scope is not admin", body = ErrorBody),
    ),
    security(("api_key" = ["admin"])),
)]
async fn create_key(
    AxumState(state): AxumState<State>,
    AdminKey(tenant): AdminKey,
    body: Bytes,
) -> Result<(StatusCode, Json<CreatedKey>), ApiError> {
    let body: NewKey = parse_body(&body)?;
    let now = state.now().timestamp();
    with_store(&state, move |store| {
        let (key, row) =
            crate::app::keys::create(store, &tenant, &body.name, body.scope.into(), now).map_err(
                |err| match err {
                    KeyError::BadName => ApiError::bad_request(err.to_string()),
                    KeyError::Store(err) => ApiError::internal(err),
                },
            )?;
        Ok((
            StatusCode::CREATED,
            Json(CreatedKey {
                id: row.id,
                name: row.name,
                scope: row.scope.into(),
                created_at: time(row.created_at),
                key,
            }),
        ))
    })
    .await
}

#[derive(Debug, Serialize, ToSchema)]
pub(super) struct Revoked {
    id: String,
    revoked: bool,
}

/// Revoke a key; it stops working at once (also the key making this call).
#[utoipa::path(
    delete, path = "/v1/keys/{id}", tag = "setup",
    params(("id" = String, Path, description = "The key's id from GET /v1/keys")),
    responses(
        (status = 200, description = "Revoked", body = Revoked),
        (status = 401, description = "No live API key", body = ErrorBody),
        (status = 403, description = "The key's scope is not admin", body = ErrorBody),
        (status = 404, description = "No live key with this id", body = ErrorBody),
    ),
    security(("api_key" = ["admin"])),
)]
async fn revoke_key(
    AxumState(state): AxumState<State>,
    AdminKey(tenant): AdminKey,
    Path(id): Path<String>,
) -> Result<Json<Revoked>, ApiError> {
    let now = state.now().timestamp();
    with_store(&state, move |store| {
        let revoked = store
            .transaction(|tx| apikeys::revoke(tx, &tenant, &id, now))
            .map_err(ApiError::internal)?;
        if !revoked {
            return Err(ApiError::not_found(format!("no live key {id}")));
        }
        Ok(Json(Revoked { id, revoked }))
    })
    .await
}

#[derive(Debug, Serialize, ToSchema)]
pub(super) struct WebhookLine {
    /// Where klar POSTs each outbox action.
    url: String,
}

/// The tenant's webhook, if one is set.
#[utoipa::path(
    get, path = "/v1/webhook", tag = "setup",
    responses(
        (status = 200, description = "The webhook (its secret is never shown again)", body = WebhookLine),
        (status = 401, description = "No live API key", body = ErrorBody),
        (status = 403, description = "The key's scope is not admin", body = ErrorBody),
        (status = 404, description = "No webhook: actions wait in GET /v1/outbox", body = ErrorBody),
    ),
    security(("api_key" = ["admin"])),
)]
async fn show_webhook(
    AxumState(state): AxumState<State>,
    AdminKey(tenant): AdminKey,
) -> Result<Json<WebhookLine>, ApiError> {
    with_store(&state, move |store| {
        match webhooks::get(store.connection(), &tenant).map_err(ApiError::internal)? {
            Some(hook) => Ok(Json(WebhookLine { url: hook.url })),
            None => Err(ApiError::not_found("no webhook is set")),
        }
    })
    .await
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct SetWebhook {
    /// An `http://` or `https://` URL without user or password, to a public
    /// address (else 422 `webhook_refused`).
    #[schema(schema_with = crate::serve::schemas::webhook_url)]
    url: String,
}

/// The webhook and its signing secret: shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct WebhookSecret {
    url: String,
    /// Verify `X-Klar-Signature: sha256=HEX`, the HMAC-SHA256 with this secret
    /// over `X-Klar-Timestamp` + `.` + the body.
    secret: String,
}

/// Set (or replace) the URL that receives every outbox action, signed with a
/// new secret; deliveries are retried with backoff and parked after repeated
/// failures.
#[utoipa::path(
    put, path = "/v1/webhook", tag = "setup",
    request_body = SetWebhook,
    responses(
        (status = 200, description = "Set; the secret is shown once", body = WebhookSecret),
        (status = 400, description = "Bad body or not an http(s) URL", body = ErrorBody),
        (status = 422, description = "The URL does not resolve to public addresses (`webhook_refused`)", body = ErrorBody),
        (status = 401, description = "No live API key", body = ErrorBody),
        (status = 403, description = "The key's scope is not admin", body = ErrorBody),
    ),
    security(("api_key" = ["admin"])),
)]
async fn set_webhook(
    AxumState(state): AxumState<State>,
    AdminKey(tenant): AdminKey,
    body: Bytes,
) -> Result<Json<WebhookSecret>, ApiError> {
    let body: SetWebhook = parse_body(&body)?;
    let url = body.url;
    let now = state.now().timestamp();
    let targets = state.targets.clone();
    with_store(&state, move |store| {
        let secret = crate::app::webhook::set(store, &targets, &tenant, &url, now).map_err(
            |err| match err {
                // The form is the caller's mistake (400); where a well-formed
                // URL points is klar's refusal (422).
                WebhookError::Target(
                    err @ (TargetError::Unresolved { .. } | TargetError::NotPublic { .. }),
                ) => ApiError::unprocessable("webhook_refused", err.to_string()),
                WebhookError::Target(err) => ApiError::bad_request(err.to_string()),
                WebhookError::Store(err) => ApiError::internal(err),
            },
        )?;
        Ok(Json(WebhookSecret { url, secret }))
    })
    .await
}

#[derive(Debug, Serialize, ToSchema)]
pub(super) struct Removed {
    removed: bool,
}

/// Stop webhook deliveries; actions then wait in GET /v1/outbox.
#[utoipa::path(
    delete, path = "/v1/webhook", tag = "setup",
    responses(
        (status = 200, description = "Removed", body = Removed),
        (status = 401, description = "No live API key", body = ErrorBody),
        (status = 403, description = "The key's scope is not admin", body = ErrorBody),
        (status = 404, description = "No webhook was set", body = ErrorBody),
    ),
    security(("api_key" = ["admin"])),
)]
async fn remove_webhook(
    AxumState(state): AxumState<State>,
    AdminKey(tenant): AdminKey,
) -> Result<Json<Removed>, ApiError> {
    with_store(&state, move |store| {
        let removed = store
            .transaction(|tx| webhooks::remove(tx, &tenant))
            .map_err(ApiError::internal)?;
        if !removed {
            return Err(ApiError::not_found("no webhook is set"));
        }
        Ok(Json(Removed { removed }))
    })
    .await
}
