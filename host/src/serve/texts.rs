//! The consent texts over the API, for the legal team's tools: list, read
//! and diff versions, and set a new one — checked as `klar text set` checks
//! it, through `crate::app::consent_texts`. Admin scope: the consent text
//! is the most important legal content of the process.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State as AxumState};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::api::{AdminKey, parse_body};
use super::error::{ErrorBody, ErrorDetail};
use super::{ApiError, State, with_store};
use crate::app::consent_texts::{self, TextError, Written};
use crate::store::{tenants, texts};
use crate::wire;

pub(super) fn routes() -> OpenApiRouter<State> {
    OpenApiRouter::new()
        .routes(routes!(list_texts))
        .routes(routes!(show_text, set_text))
        .routes(routes!(diff_texts))
}

#[derive(Debug, Serialize, ToSchema)]
pub(super) struct TextList {
    /// By purpose, language and version.
    texts: Vec<wire::ConsentText>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct ListQuery {
    /// Only this purpose's texts.
    purpose: Option<String>,
}

/// Every version of the tenant's consent texts.
#[utoipa::path(
    get, path = "/v1/texts", tag = "texts",
    params(ListQuery),
    responses(
        (status = 200, description = "Every version, with author, message and SHA-256", body = TextList),
        (status = 400, description = "A query parameter that cannot be read", body = ErrorBody),
        (status = 401, description = "No live API key", body = ErrorBody),
        (status = 403, description = "The key's scope is not admin", body = ErrorBody),
    ),
    security(("api_key" = ["admin"])),
)]
async fn list_texts(
    AxumState(state): AxumState<State>,
    AdminKey(tenant): AdminKey,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<TextList>, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    with_store(&state, move |store| {
        let all = texts::list(store.connection(), &tenant, query.purpose.as_deref())
            .map_err(ApiError::internal)?;
        Ok(Json(TextList {
            texts: wire::list(all),
        }))
    })
    .await
}

/// A purpose's text in a language, in a path.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub(super) struct TextPath {
    /// The purpose's id.
    #[param(schema_with = crate::serve::schemas::purpose)]
    purpose: String,
    /// The text's language: two or three lower-case letters, e.g. de, en, fr.
    #[param(schema_with = crate::serve::schemas::text_language)]
    language: String,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct VersionQuery {
    /// The version (default: the current one).
    version: Option<i64>,
}

fn text_error(err: TextError) -> ApiError {
    match err {
        err @ (TextError::UnknownPurpose { .. }
        | TextError::UnknownVersion { .. }
        | TextError::UnknownTenant(_)) => ApiError::not_found(err.to_string()),
        TextError::Store(err) => ApiError::internal(err),
        err => ApiError::bad_request(err.to_string()),
    }
}

/// One version of a purpose's text in a language (default: the current one).
#[utoipa::path(
    get, path = "/v1/texts/{purpose}/{language}", tag = "texts",
    params(TextPath, VersionQuery),
    responses(
        (status = 200, description = "The version's words as contacts read them", body = wire::ConsentText),
        (status = 400, description = "version is not a number", body = ErrorBody),
        (status = 401, description = "No live API key", body = ErrorBody),
        (status = 403, description = "The key's scope is not admin", body = ErrorBody),
        (status = 404, description = "No such purpose, language or version", body = ErrorBody),
    ),
    security(("api_key" = ["admin"])),
)]
async fn show_text(
    AxumState(state): AxumState<State>,
    AdminKey(tenant): AdminKey,
    Path(TextPath { purpose, language }): Path<TextPath>,
    query: Result<Query<VersionQuery>, QueryRejection>,
) -> Result<Json<wire::ConsentText>, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    with_store(&state, move |store| {
        consent_texts::version(
            store.connection(),
            &tenant,
            (&purpose, &language),
            query.version,
        )
        .map(|t| Json(t.into()))
        .map_err(text_error)
    })
    .await
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct SetText {
    /// The text; it may name `{company}` and `{purpose}` (`{{` and `}}` are
    /// braces). A blank text, a control character other than a line end or
    /// tab, or another placeholder is refused with 422 and its place.
    #[schema(schema_with = crate::serve::schemas::consent_text)]
    text: String,
    /// Who wrote this version: one line.
    #[schema(schema_with = crate::serve::schemas::text_author)]
    author: String,
    /// Why it changed: one line.
    #[schema(schema_with = crate::serve::schemas::text_message)]
    message: String,
}

/// A mistake in a text, with its place (1-based, in characters).
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct Mistake {
    line: u32,
    column: u32,
    message: String,
}

/// A text that was not set, and why.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct Refused {
    /// `invalid_text`.
    error: ErrorDetail,
    mistakes: Vec<Mistake>,
    /// The mistakes drawn under the text's lines, as `klar text set` prints them.
    rendered: String,
}

/// Set the next version of a purpose's text in a language. Requests issued
/// from then on use it; links already sent keep the version they named.
#[utoipa::path(
    put, path = "/v1/texts/{purpose}/{language}", tag = "texts",
    params(TextPath),
    request_body = SetText,
    responses(
        (status = 201, description = "Set: the new version, with the words as filled in", body = wire::ConsentText),
        (status = 400, description = "Bad body, language, author or message", body = ErrorBody),
        (status = 401, description = "No live API key", body = ErrorBody),
        (status = 403, description = "The key's scope is not admin", body = ErrorBody),
        (status = 404, description = "No such purpose", body = ErrorBody),
        (status = 422, description = "A blank text or mistakes in it (`invalid_text`), each with line and column", body = Refused),
    ),
    security(("api_key" = ["admin"])),
)]
async fn set_text(
    AxumState(state): AxumState<State>,
    AdminKey(tenant): AdminKey,
    Path(TextPath { purpose, language }): Path<TextPath>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let body: SetText = parse_body(&body)?;
    let now = state.now().timestamp();
    with_store(&state, move |store| {
        let written = Written {
            purpose: &purpose,
            language: &language,
            source: &body.text,
            author: &body.author,
            message: &body.message,
        };
        match consent_texts::set(store, &tenant, &written, now) {
            Ok(text) => {
                Ok((StatusCode::CREATED, Json(wire::ConsentText::from(text))).into_response())
            }
            Err(err @ (TextError::Empty | TextError::TooLong)) => Ok(refused(
                format!("{err}; nothing was set"),
                Vec::new(),
                String::new(),
            )),
            Err(TextError::Mistakes(found)) => Ok(refused(
                format!("the text has {} mistake(s); nothing was set", found.len()),
                found
                    .iter()
                    .map(|d| Mistake {
                        line: d.line,
                        column: d.column,
                        message: d.message.clone(),
                    })
                    .collect(),
                crate::diagnostics::render("text", &body.text, &found, false),
            )),
            Err(err) => Err(text_error(err)),
        }
    })
    .await
}

/// 422 `invalid_text`.
fn refused(message: String, mistakes: Vec<Mistake>, rendered: String) -> Response {
    let body = Refused {
        error: ErrorDetail {
            code: "invalid_text".to_owned(),
            message,
        },
        mistakes,
        rendered,
    };
    (StatusCode::UNPROCESSABLE_ENTITY, Json(body)).into_response()
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct DiffQuery {
    from: i64,
    to: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub(super) struct TextDiff {
    /// A unified diff of the words, line by line.
    diff: String,
}

/// What changed in a purpose's text from one version to another.
#[utoipa::path(
    get, path = "/v1/texts/{purpose}/{language}/diff", tag = "texts",
    params(TextPath, DiffQuery),
    responses(
        (status = 200, description = "The unified diff", body = TextDiff),
        (status = 400, description = "from or to missing or not a number", body = ErrorBody),
        (status = 401, description = "No live API key", body = ErrorBody),
        (status = 403, description = "The key's scope is not admin", body = ErrorBody),
        (status = 404, description = "No such purpose, language or version", body = ErrorBody),
    ),
    security(("api_key" = ["admin"])),
)]
async fn diff_texts(
    AxumState(state): AxumState<State>,
    AdminKey(tenant): AdminKey,
    Path(TextPath { purpose, language }): Path<TextPath>,
    query: Result<Query<DiffQuery>, QueryRejection>,
) -> Result<Json<TextDiff>, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    with_store(&state, move |store| {
        let conn = store.connection();
        tenants::require(conn, &tenant).map_err(ApiError::internal)?;
        let key = (purpose.as_str(), language.as_str());
        let a = consent_texts::version(conn, &tenant, key, Some(query.from)).map_err(text_error)?;
        let b = consent_texts::version(conn, &tenant, key, Some(query.to)).map_err(text_error)?;
        Ok(Json(TextDiff {
            diff: consent_texts::diff(&a, &b),
        }))
    })
    .await
}
