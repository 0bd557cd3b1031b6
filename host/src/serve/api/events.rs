//! `POST /v1/contacts/{id}/events`: events from the CRM.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State as AxumState};
use axum::http::{HeaderMap, StatusCode};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::serve::error::ErrorBody;
use crate::serve::{ApiError, State, with_store};

use crate::plugin::Event;
use crate::store::tenants;

use super::{TenantKey, parse_body};
use crate::app::text;

pub(super) fn routes() -> OpenApiRouter<State> {
    OpenApiRouter::new().routes(routes!(report_event))
}

/// Something that happened in the CRM. Its schema is
/// [`crate::serve::schemas::event`]: each type with the fields it needs.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(super) struct EventBody {
    /// `withdraw`, `object`, `used`, `bounce`, `data-changed`, `hold-on` or `hold-off`.
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

impl utoipa::PartialSchema for EventBody {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        crate::serve::schemas::event()
    }
}

impl utoipa::ToSchema for EventBody {}

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
    // `by`, `reason` and `channel` are shown to people (audit log,
    // evidence): one line each (`app::text`, the rule of every face).
    let need = |v: &Option<String>, what: &str, max: usize| {
        let text = v.clone().filter(|s| !s.trim().is_empty()).ok_or_else(|| {
            ApiError::bad_request(format!("a {} event needs `{what}`", body.kind))
        })?;
        text::one_line(what, &text, max).map_err(ApiError::bad_request)?;
        Ok(text)
    };
    let only = |field: &Option<String>, what: &str| match field {
        Some(_) => Err(ApiError::bad_request(format!(
            "a {} event takes no `{what}`",
            body.kind
        ))),
        None => Ok(()),
    };
    if let Some(purpose) = &body.purpose
        && !(1..=64).contains(&purpose.len())
    {
        return Err(ApiError::bad_request("`purpose` has 1 to 64 characters"));
    }
    match body.kind.as_str() {
        "hold-on" | "hold-off" => only(&body.channel, "channel")?,
        "bounce" => {
            only(&body.by, "by")?;
            only(&body.reason, "reason")?;
        }
        _ => {
            only(&body.channel, "channel")?;
            only(&body.by, "by")?;
            only(&body.reason, "reason")?;
        }
    }
    Ok(match body.kind.as_str() {
        "withdraw" => Event::Withdraw,
        "object" => Event::Object,
        "used" => Event::Used,
        "data-changed" => Event::DataChanged,
        "bounce" => Event::Bounce {
            channel: match &body.channel {
                None => "email".to_owned(),
                Some(_) => need(&body.channel, "channel", 50)?,
            },
        },
        "hold-on" => Event::HoldOn {
            by: need(&body.by, "by", text::MAX_WHO)?,
            reason: need(&body.reason, "reason", text::MAX_WHY)?,
        },
        "hold-off" => Event::HoldOff {
            by: need(&body.by, "by", text::MAX_WHO)?,
            reason: need(&body.reason, "reason", text::MAX_WHY)?,
        },
        other => {
            return Err(ApiError::bad_request(format!(
                "unknown event type {other:?}; use withdraw, object, used, bounce, data-changed, hold-on or hold-off"
            )));
        }
    })
}

/// The longest `Idempotency-Key` klar keeps (a UUID has 36 characters).
pub(crate) const MAX_IDEMPOTENCY_KEY: usize = 200;

/// JSON with every object's keys in sorted order and no spacing, whatever
/// order serde_json's map keeps.
fn canonical(value: &serde_json::Value) -> String {
    use serde_json::Value;
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let fields: Vec<String> = keys
                .into_iter()
                .map(|k| format!("{}:{}", Value::String(k.clone()), canonical(&map[k])))
                .collect();
            format!("{{{}}}", fields.join(","))
        }
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(canonical).collect();
            format!("[{}]", items.join(","))
        }
        other => other.to_string(),
    }
}

/// Report an event: withdraw, object, used, bounce, data changed, legal hold.
///
/// An `Idempotency-Key` header makes a retried call return the first answer;
/// the same key with a different request is a 422.
#[utoipa::path(
    post, path = "/v1/contacts/{id}/events", tag = "contacts",
    params(
        super::contacts::ContactPath,
        ("Idempotency-Key" = Option<String>, Header, max_length = 200, min_length = 1,
         description = "Makes a retry return the first answer: 1 to 200 visible ASCII characters. \
                        The same contact and the same JSON (in any key order) is the same request"),
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
    security(("api_key" = ["crm"])),
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
                .ok()
                .map(str::trim)
                .filter(|k| (1..=MAX_IDEMPOTENCY_KEY).contains(&k.len()))
                .map(str::to_owned)
                .ok_or_else(|| {
                    ApiError::bad_request(format!(
                        "an Idempotency-Key has 1 to {MAX_IDEMPOTENCY_KEY} visible ASCII characters"
                    ))
                })
        })
        .transpose()?;
    // What a retry must repeat: the contact and the event as parsed, so the
    // same JSON with its keys in another order or other spacing is the same
    // request.
    let request = format!(
        "{id}\n{}",
        canonical(&serde_json::from_slice(&body).unwrap_or_default())
    );
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
            (&event, &crate::app::actor::Actor::Api),
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
            Err(ReportError::BadText(why)) => Err(ApiError::bad_request(why)),
            Err(ReportError::KeyReused) => Err(ApiError::unprocessable(
                "idempotency_key_reused",
                "this Idempotency-Key was used for a different request",
            )),
            Err(err) => Err(ApiError::internal(err)),
        }
    })
    .await
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

#[cfg(test)]
mod tests {
    use super::canonical;

    #[test]
    fn the_same_json_in_another_order_is_the_same_request() {
        let a: serde_json::Value = serde_json::from_str(
            r#"{"type":"hold-on","by":"legal","x":{"b":1,"a":[2,{"d":3,"c":4}]}}"#,
        )
        .expect("JSON");
        let b: serde_json::Value = serde_json::from_str(
            r#"{ "x": {"a": [2, {"c": 4, "d": 3}], "b": 1}, "by": "legal", "type": "hold-on" }"#,
        )
        .expect("JSON");
        assert_eq!(canonical(&a), canonical(&b));
        let c: serde_json::Value =
            serde_json::from_str(r#"{"type":"hold-on","by":"legal2"}"#).expect("JSON");
        assert_ne!(canonical(&a), canonical(&c));
    }
}
