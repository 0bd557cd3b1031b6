//! The tenant's policy over the API: list and read versions, upload a new
//! one (checked, tested and tried on the tenant's contacts exactly as `klar
//! policy set` does, through `crate::app::activation`; a policy with errors,
//! failing tests or an error for any contact never becomes active), and
//! simulate a policy on a copy of the tenant's cases.

use std::path::PathBuf;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State as AxumState};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::api::{AdminKey, parse_body};
use super::error::{ErrorBody, ErrorDetail};
use super::{ApiError, State, with_store};
use crate::app::activation::{self, ActivationError, Candidate, ContactProblem, Refusal};
use crate::app::simulate::{self, Forecast};
use crate::app::table_tests::Report;
use crate::plugin::{Diagnostic, Severity};
use crate::runtime::{OpenError, Session};
use crate::store::tenants::{self, PolicyVersion};
use crate::times::rfc3339 as time;

pub(super) fn routes() -> OpenApiRouter<State> {
    OpenApiRouter::new()
        .routes(routes!(list_versions, upload))
        .routes(routes!(show_version))
        .routes(routes!(simulate_policy))
}

/// One stored version of the tenant's policy.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct VersionLine {
    version: i64,
    sha256: String,
    author: String,
    message: String,
    /// RFC 3339.
    created_at: String,
    active: bool,
}

impl From<&PolicyVersion> for VersionLine {
    fn from(v: &PolicyVersion) -> VersionLine {
        VersionLine {
            version: v.version,
            sha256: v.sha256.clone(),
            author: v.author.clone(),
            message: v.message.clone(),
            created_at: time(v.created_at),
            active: v.active,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub(super) struct Versions {
    /// The active version; null while the built-in default policy runs.
    active: Option<i64>,
    versions: Vec<VersionLine>,
}

/// The tenant's policy versions, oldest first.
#[utoipa::path(
    get, path = "/v1/policy/versions", tag = "policy",
    responses(
        (status = 200, description = "Every stored version", body = Versions),
        (status = 401, description = "No live API key", body = ErrorBody),
        (status = 403, description = "The key's scope is not admin", body = ErrorBody),
    ),
    security(("api_key" = ["admin"])),
)]
async fn list_versions(
    AxumState(state): AxumState<State>,
    AdminKey(tenant): AdminKey,
) -> Result<Json<Versions>, ApiError> {
    with_store(&state, move |store| {
        let all =
            tenants::policy_versions(store.connection(), &tenant).map_err(ApiError::internal)?;
        Ok(Json(Versions {
            active: all.iter().find(|v| v.active).map(|v| v.version),
            versions: all.iter().map(VersionLine::from).collect(),
        }))
    })
    .await
}

/// A version's line and its script.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct VersionSource {
    version: i64,
    sha256: String,
    author: String,
    message: String,
    /// RFC 3339.
    created_at: String,
    active: bool,
    /// The policy script, as stored.
    source: String,
}

/// One version with its script.
#[utoipa::path(
    get, path = "/v1/policy/versions/{version}", tag = "policy",
    params(("version" = i64, Path, minimum = 1, description = "The version number")),
    responses(
        (status = 200, description = "The version and its script", body = VersionSource),
        (status = 400, description = "Not a version number", body = ErrorBody),
        (status = 401, description = "No live API key", body = ErrorBody),
        (status = 403, description = "The key's scope is not admin", body = ErrorBody),
        (status = 404, description = "No such version", body = ErrorBody),
    ),
    security(("api_key" = ["admin"])),
)]
async fn show_version(
    AxumState(state): AxumState<State>,
    AdminKey(tenant): AdminKey,
    Path(version): Path<String>,
) -> Result<Json<VersionSource>, ApiError> {
    let number: i64 = version
        .parse()
        .map_err(|_| ApiError::bad_request(format!("{version:?} is not a version number")))?;
    with_store(&state, move |store| {
        let all =
            tenants::policy_versions(store.connection(), &tenant).map_err(ApiError::internal)?;
        let v = all.iter().find(|v| v.version == number).ok_or_else(|| {
            ApiError::not_found(format!("{tenant} has no policy version {number}"))
        })?;
        let line = VersionLine::from(v);
        Ok(Json(VersionSource {
            version: line.version,
            sha256: line.sha256,
            author: line.author,
            message: line.message,
            created_at: line.created_at,
            active: line.active,
            source: v.source.clone(),
        }))
    })
    .await
}

/// A new policy version.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct Upload {
    /// The policy script (rhai); not empty.
    #[schema(min_length = 1)]
    source: String,
    /// Its tests, in the format of `klar policy test` (TOML). Without tests the
    /// policy is only checked.
    tests: Option<String>,
    /// Who makes the change: one line of at most 100 characters.
    #[schema(schema_with = crate::serve::schemas::line_100)]
    author: String,
    /// Why, for the version log: one line of at most 500 characters.
    #[schema(schema_with = crate::serve::schemas::line_500)]
    message: String,
    /// Why a policy without tests may replace the active version although
    /// that one has tests (as `klar policy set --untested --reason`); the
    /// audit log records it. Not needed over an untested version.
    untested_reason: Option<String>,
}

/// A problem the check found, with its place in the script (1-based; 0: unknown).
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct Problem {
    /// `error` or `warning`.
    severity: String,
    line: u32,
    column: u32,
    message: String,
    /// The contact the policy fails for, when trying it on the tenant's
    /// contacts found the problem.
    #[serde(skip_serializing_if = "Option::is_none")]
    contact: Option<String>,
    /// That contact's source.
    #[serde(skip_serializing_if = "Option::is_none")]
    source: Option<String>,
    /// The hook that failed for it.
    #[serde(skip_serializing_if = "Option::is_none")]
    hook: Option<String>,
    /// The purpose of the case the hook was given.
    #[serde(skip_serializing_if = "Option::is_none")]
    purpose: Option<String>,
    /// How many of the tenant's contacts have this same problem.
    #[serde(skip_serializing_if = "Option::is_none")]
    contacts_affected: Option<usize>,
}

fn contact_problems(problems: &[ContactProblem]) -> Vec<Problem> {
    activation::grouped(problems)
        .into_iter()
        .map(|(p, n)| Problem {
            severity: "error".to_owned(),
            line: p.diagnostic.line,
            column: p.diagnostic.column,
            message: p.diagnostic.message.clone(),
            contact: Some(p.contact.clone()),
            source: Some(p.source.clone()),
            hook: Some(p.hook.clone()),
            purpose: p.purpose.clone(),
            contacts_affected: Some(n),
        })
        .collect()
}

fn problems(found: &[Diagnostic]) -> Vec<Problem> {
    found
        .iter()
        .map(|d| Problem {
            severity: match d.severity {
                Severity::Error => "error",
                Severity::Warning => "warning",
            }
            .to_owned(),
            line: d.line,
            column: d.column,
            message: d.message.clone(),
            contact: None,
            source: None,
            hook: None,
            purpose: None,
            contacts_affected: None,
        })
        .collect()
}

#[derive(Debug, Serialize, ToSchema)]
pub(super) struct Failure {
    test: String,
    /// `expected X, got Y` lines.
    differences: Vec<String>,
}

/// What the policy's tests found.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct Tests {
    passed: usize,
    failed: usize,
    failures: Vec<Failure>,
    /// Hooks the policy defines that no test ran.
    unexercised_hooks: Vec<String>,
}

impl From<&Report> for Tests {
    fn from(report: &Report) -> Tests {
        Tests {
            passed: report.passed(),
            failed: report.failed(),
            failures: report
                .files
                .iter()
                .flat_map(|f| f.results.iter())
                .filter(|r| !r.differences.is_empty())
                .map(|r| Failure {
                    test: r.name.clone(),
                    differences: r.differences.clone(),
                })
                .collect(),
            unexercised_hooks: report.unexercised.iter().map(|h| (*h).to_owned()).collect(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub(super) struct Accepted {
    version: VersionLine,
    warnings: Vec<Problem>,
    /// Null when no tests came with the policy.
    tests: Option<Tests>,
}

/// A policy that did not become active, and why.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct Rejected {
    /// `invalid_policy` (errors in the script, or for some of the tenant's
    /// contacts: then each problem names one), `invalid_tests` (tests that
    /// cannot be read), `failing_tests`, `untested` or `invalid_version`.
    error: ErrorDetail,
    problems: Vec<Problem>,
    /// The problems drawn under the script's lines, as `klar policy check` prints them.
    rendered: String,
    tests: Option<Tests>,
}

fn rejected(code: &str, message: String, source: &str, found: &[Diagnostic]) -> Rejected {
    Rejected {
        error: ErrorDetail {
            code: code.to_owned(),
            message,
        },
        problems: problems(found),
        rendered: crate::diagnostics::render("policy.rhai", source, found, false),
        tests: None,
    }
}

/// Opens a session on `source`, or says why the policy is not valid.
fn open(state: &State, source: &str) -> Result<Result<Session, Rejected>, ApiError> {
    match state.plugin.open("policy.rhai", source) {
        Ok(session) => Ok(Ok(session)),
        Err(OpenError::Policy(found)) => Ok(Err(rejected(
            "invalid_policy",
            "the policy has errors; nothing was changed".to_owned(),
            source,
            &found,
        ))),
        Err(err @ OpenError::Trap(_)) => Err(ApiError::internal(err)),
    }
}

/// Upload a new version: it is checked, its tests run, and every hook runs
/// for the tenant's contacts (all, or a sample of at least 10,000), as `klar
/// policy set` does; only a policy without errors, with every test passing
/// and without an error for any contact becomes the active version. Without
/// `tests` it replaces a tested active version only with `untested_reason`.
#[utoipa::path(
    post, path = "/v1/policy/versions", tag = "policy",
    request_body = Upload,
    responses(
        (status = 201, description = "Stored and active", body = Accepted),
        (status = 400, description = "Bad body or a malformed test file", body = ErrorBody),
        (status = 401, description = "No live API key", body = ErrorBody),
        (status = 403, description = "The key's scope is not admin", body = ErrorBody),
        (status = 422, description = "Errors in the policy or for some of the tenant's contacts (`invalid_policy`, each problem naming its contact), failing tests (`failing_tests`), or no tests to replace a tested version without `untested_reason` (`untested`); the active policy is unchanged", body = Rejected),
    ),
    security(("api_key" = ["admin"])),
)]
async fn upload(
    AxumState(state): AxumState<State>,
    AdminKey(tenant): AdminKey,
    body: Bytes,
) -> Result<Response, ApiError> {
    let upload: Upload = parse_body(&body)?;
    if upload.author.trim().is_empty() || upload.message.trim().is_empty() {
        return Err(ApiError::bad_request(
            "a policy version needs an `author` and a `message`",
        ));
    }
    let now = state.now().timestamp();
    let shared = std::sync::Arc::clone(&state);
    with_store(&state, move |store| {
        // The same check and tests as `klar policy set`; the tests are
        // those sent with the version.
        let files: Vec<(PathBuf, String)> = upload
            .tests
            .iter()
            .map(|text| (PathBuf::from("tests.toml"), text.clone()))
            .collect();
        let checked =
            match activation::check_and_test(&shared.plugin, "policy.rhai", &upload.source, &files)
            {
                Ok(checked) => checked,
                // Tests that are no tests are refused like a policy with
                // errors: well-formed JSON, refused on its meaning.
                Err(activation::CheckError::Tests(e)) => {
                    let body = Rejected {
                        error: ErrorDetail {
                            code: "invalid_tests".to_owned(),
                            message: format!("{e}; nothing was changed"),
                        },
                        problems: Vec::new(),
                        rendered: String::new(),
                        tests: None,
                    };
                    return Ok((StatusCode::UNPROCESSABLE_ENTITY, Json(body)).into_response());
                }
                Err(other) => return Err(ApiError::internal(other)),
            };
        let (mut session, warnings, report) = match checked {
            activation::Checked::Invalid(found) => {
                let why = rejected(
                    "invalid_policy",
                    "the policy has errors; nothing was changed".to_owned(),
                    &upload.source,
                    &found,
                );
                return Ok((StatusCode::UNPROCESSABLE_ENTITY, Json(why)).into_response());
            }
            activation::Checked::Compiled {
                session,
                warnings,
                report,
            } => (session, warnings, report),
        };
        let warnings = problems(&warnings);
        let tests = report.as_ref().map(Tests::from);
        if let Some(t) = tests.as_ref().filter(|t| t.failed > 0) {
            let body = Rejected {
                error: ErrorDetail {
                    code: "failing_tests".to_owned(),
                    message: format!(
                        "{} of {} test(s) failed; the active policy is unchanged",
                        t.failed,
                        t.failed + t.passed
                    ),
                },
                problems: warnings,
                rendered: String::new(),
                tests,
            };
            return Ok((StatusCode::UNPROCESSABLE_ENTITY, Json(body)).into_response());
        }
        let candidate = Candidate {
            source: &upload.source,
            tests: upload.tests.as_deref(),
            author: upload.author.trim(),
            message: upload.message.trim(),
            untested_reason: upload.untested_reason.as_deref(),
        };
        let activated = activation::activate(
            store,
            &mut session,
            &tenant,
            &candidate,
            now,
            &mut |_, _| {},
        );
        let version = match activated {
            Ok(activated) => activated.version,
            Err(ActivationError::Refused(refusal)) => {
                let body = refused(&refusal, &upload.source, warnings, tests);
                return Ok((StatusCode::UNPROCESSABLE_ENTITY, Json(body)).into_response());
            }
            Err(other) => return Err(ApiError::internal(other)),
        };
        let body = Accepted {
            version: VersionLine::from(&version),
            warnings,
            tests,
        };
        Ok((StatusCode::CREATED, Json(body)).into_response())
    })
    .await
}

/// The answer to a candidate that the rules of activation refused.
fn refused(
    refusal: &Refusal,
    source: &str,
    warnings: Vec<Problem>,
    tests: Option<Tests>,
) -> Rejected {
    match refusal {
        Refusal::Invalid(_) => Rejected {
            error: ErrorDetail {
                code: "invalid_version".to_owned(),
                message: format!("{refusal}; nothing was changed"),
            },
            problems: warnings,
            rendered: String::new(),
            tests,
        },
        Refusal::Untested { .. } => Rejected {
            error: ErrorDetail {
                code: "untested".to_owned(),
                message: format!("{refusal}; in the API: `untested_reason`"),
            },
            problems: warnings,
            rendered: String::new(),
            tests,
        },
        Refusal::FailsForContacts(sweep) => {
            let groups = activation::grouped(&sweep.problems);
            let drawn: Vec<Diagnostic> = groups
                .iter()
                .map(|(p, _)| Diagnostic {
                    message: activation::problem_line(p),
                    ..p.diagnostic.clone()
                })
                .collect();
            Rejected {
                error: ErrorDetail {
                    code: "invalid_policy".to_owned(),
                    message: format!("{refusal}; nothing was changed"),
                },
                problems: contact_problems(&sweep.problems),
                rendered: crate::diagnostics::render("policy.rhai", source, &drawn, false),
                tests,
            }
        }
    }
}

/// A dry run.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct SimulateBody {
    /// A candidate script; default: the active policy.
    source: Option<String>,
    /// Simulated days, 1 to 730 (a whole number; `30.0` is 30).
    #[schema(value_type = u32, minimum = 1, maximum = 730)]
    days: serde_json::Number,
    /// The chance that a contact answers a given request (default 0.3).
    #[schema(minimum = 0, maximum = 1)]
    answer_rate: Option<f64>,
    /// The chance that an answer is a refusal (default 0.2).
    #[schema(minimum = 0, maximum = 1)]
    refuse_rate: Option<f64>,
    /// The same seed gives the same forecast (default 1).
    #[schema(value_type = Option<i64>, minimum = 0)]
    seed: Option<serde_json::Number>,
}

/// Simulate a policy (default: the active one) on a copy of the tenant's
/// cases, as `klar simulate`; nothing live changes.
#[utoipa::path(
    post, path = "/v1/policy/simulate", tag = "policy",
    request_body = SimulateBody,
    responses(
        (status = 200, description = "A weekly forecast", body = Forecast),
        (status = 400, description = "Bad body", body = ErrorBody),
        (status = 401, description = "No live API key", body = ErrorBody),
        (status = 403, description = "The key's scope is not admin", body = ErrorBody),
        (status = 422, description = "The candidate has errors (`invalid_policy`)", body = Rejected),
    ),
    security(("api_key" = ["admin"])),
)]
async fn simulate_policy(
    AxumState(state): AxumState<State>,
    AdminKey(tenant): AdminKey,
    body: Bytes,
) -> Result<Response, ApiError> {
    let body: SimulateBody = parse_body(&body)?;
    let rate = |name: &str, value: Option<f64>, default: f64| {
        let v = value.unwrap_or(default);
        if (0.0..=1.0).contains(&v) {
            Ok(v)
        } else {
            Err(ApiError::bad_request(format!(
                "{name} is a chance from 0 to 1"
            )))
        }
    };
    // JSON numbers: 30 and 30.0 are the same whole number.
    let whole = |n: &serde_json::Number| {
        n.as_u64().or_else(|| {
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && (0.0..=9.0e15).contains(f))
                .map(|f| f as u64)
        })
    };
    let days = whole(&body.days)
        .filter(|d| (1..=730).contains(d))
        .and_then(|d| u32::try_from(d).ok())
        .ok_or_else(|| ApiError::bad_request("days is 1 to 730"))?;
    let seed = match &body.seed {
        None => 1,
        Some(n) => whole(n)
            .filter(|s| i64::try_from(*s).is_ok())
            .ok_or_else(|| ApiError::bad_request("seed is a whole number from 0"))?,
    };
    let options = simulate::Options {
        days,
        answer_rate: rate("answer_rate", body.answer_rate, 0.3)?,
        refuse_rate: rate("refuse_rate", body.refuse_rate, 0.2)?,
        seed,
        start: state.now(),
    };
    let shared = std::sync::Arc::clone(&state);
    tokio::task::spawn_blocking(move || {
        let (name, source) = match body.source {
            Some(source) => {
                if let Err(why) = open(&shared, &source)? {
                    return Ok((StatusCode::UNPROCESSABLE_ENTITY, Json(why)).into_response());
                }
                ("the uploaded candidate".to_owned(), source)
            }
            None => {
                let store = crate::store::Store::open(&shared.db).map_err(ApiError::internal)?;
                let running = crate::engine::running_policy(store.connection(), &tenant)
                    .map_err(ApiError::internal)?;
                (running.name, running.source)
            }
        };
        let scratch = tempfile::tempdir().map_err(ApiError::internal)?;
        let copy = scratch.path().join("simulation.db");
        simulate::copy_database(&shared.db, &tenant, &copy).map_err(ApiError::internal)?;
        let forecast = simulate::run(
            &copy,
            &shared.plugin,
            &tenant,
            (&name, &source),
            &options,
            &mut |_| {},
        )
        .map_err(ApiError::internal)?;
        Ok(Json(forecast).into_response())
    })
    .await
    .map_err(ApiError::internal)?
}
