//! `/v1/outbox`: the actions for the CRM, their acknowledgement and
//! redelivery.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State as AxumState};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::serve::error::ErrorBody;
use crate::serve::{ApiError, State, with_store};

use crate::store::outbox;
use crate::wire;

use super::{TenantKey, parse_body};

pub(super) fn routes() -> OpenApiRouter<State> {
    OpenApiRouter::new()
        .routes(routes!(pending_actions))
        .routes(routes!(acknowledge))
        .routes(routes!(redeliver))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct OutboxQuery {
    /// Only actions after this `seq` (the previous page's `next_after`).
    #[serde(default)]
    #[param(minimum = 0)]
    after: i64,
    /// Actions per page, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<usize>,
}

#[derive(Debug, Serialize, ToSchema)]
pub(super) struct OutboxPage {
    actions: Vec<wire::Item>,
    /// Pass as `after` to continue.
    next_after: i64,
}

/// Actions not yet acknowledged, in order: requests to send (with
/// `payload.response_url` and the contact's personal link,
/// `payload.personal_url`), confirmations of answers (`send-confirmation`,
/// with `payload.personal_url`), tasks, cleanups. At least once:
/// de-duplicate by `id`.
#[utoipa::path(
    get, path = "/v1/outbox", tag = "outbox",
    params(OutboxQuery),
    responses(
        (status = 200, description = "A page of pending actions", body = OutboxPage),
        (status = 400, description = "Bad query", body = ErrorBody),
        (status = 401, description = "No live API key", body = ErrorBody),
    ),
    security(("api_key" = ["crm"])),
)]
async fn pending_actions(
    AxumState(state): AxumState<State>,
    TenantKey(tenant): TenantKey,
    q: Result<Query<OutboxQuery>, QueryRejection>,
) -> Result<Json<OutboxPage>, ApiError> {
    let Query(q) = q.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let limit = super::cases::page_size(q.limit)?;
    if q.after < 0 {
        return Err(ApiError::bad_request("after is a seq, 0 or more"));
    }
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
            actions: wire::list(items),
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
    security(("api_key" = ["crm"])),
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
    request_body(content = Option<RedeliverBody>, description = "Optional: without a body, every parked action"),
    responses(
        (status = 200, description = "Queued again", body = Requeued),
        (status = 400, description = "Bad body", body = ErrorBody),
        (status = 401, description = "No live API key", body = ErrorBody),
        (status = 404, description = "No parked action with this id", body = ErrorBody),
    ),
    security(("api_key" = ["crm"])),
)]
async fn redeliver(
    AxumState(state): AxumState<State>,
    TenantKey(tenant): TenantKey,
    body: Bytes,
) -> Result<Json<Requeued>, ApiError> {
    // No body, or JSON `null`: every parked action.
    let body: RedeliverBody =
        if body.iter().all(u8::is_ascii_whitespace) || body.trim_ascii() == b"null" {
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
