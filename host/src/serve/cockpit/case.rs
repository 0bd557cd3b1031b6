//! A contact's page: its cases with what the person may do, the timeline
//! in plain words (from `explain`) with each step's policy version, the
//! evidence, and the proof for an auditor (printable, and as JSON).

use axum::Form;
use axum::extract::{Path, Query, State as AxumState};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use minijinja::{Value, context};
use serde::Deserialize;

use super::lists::results_value;
use super::texts::word;
use super::{Signed, field, form_refused, internal, language, message, render};
use crate::app::cockpit::{self, CaseAction};
use crate::app::evidence::BundleError;
use crate::serve::{ApiError, State, with_store};
use crate::store::report::CaseFilter;
use crate::store::tenants::{self, Tenant};
use crate::store::{cases, contacts, evidence};

#[derive(Debug, Deserialize, Default)]
pub(super) struct CaseQuery {
    lang: Option<String>,
}

/// What the case page shows, read in one go.
struct Loaded {
    tenant: Tenant,
    contact: contacts::Stored,
    cases: Vec<crate::plugin::Case>,
    failed: Vec<(String, Option<String>)>,
    timeline: Vec<crate::app::explain::Decision>,
    evidence: Vec<evidence::Record>,
}

fn load(
    store: &mut crate::store::Store,
    tenant: &str,
    contact: &str,
    now: i64,
) -> Result<Option<Loaded>, ApiError> {
    let conn = store.connection();
    let tenant = tenants::require(conn, tenant).map_err(ApiError::internal)?;
    let Some(stored) = contacts::stored(conn, &tenant.id, contact).map_err(ApiError::internal)?
    else {
        return Ok(None);
    };
    let cases = cases::of_contact(conn, &tenant.id, contact).map_err(ApiError::internal)?;
    let filter = CaseFilter {
        contact: Some(contact.to_owned()),
        ..CaseFilter::default()
    };
    let failed = crate::store::report::cases(conn, &tenant.id, &filter, now)
        .map_err(ApiError::internal)?
        .into_iter()
        .map(|l| (l.purpose, l.needs_attention))
        .collect();
    let timeline = match crate::app::explain::explain(conn, &tenant.id, contact) {
        Ok(t) => t,
        Err(BundleError::NoContact { .. }) => return Ok(None),
        Err(err) => return Err(ApiError::internal(err)),
    };
    let evidence = evidence::for_contact(conn, &tenant.id, contact).map_err(ApiError::internal)?;
    Ok(Some(Loaded {
        tenant,
        contact: stored,
        cases,
        failed,
        timeline,
        evidence,
    }))
}

/// `GET /cockpit/case/{contact}`
pub(super) async fn show(
    AxumState(state): AxumState<State>,
    signed: Signed,
    Path(contact): Path<String>,
    Query(q): Query<CaseQuery>,
) -> Response {
    page(
        &state,
        &signed,
        contact,
        q.lang.as_deref(),
        None,
        StatusCode::OK,
    )
    .await
}

async fn page(
    state: &State,
    signed: &Signed,
    contact: String,
    asked: Option<&str>,
    results: Option<Value>,
    status: StatusCode,
) -> Response {
    let account = signed.account().clone();
    let lang = language(asked, Some(&account));
    let now = state.now().timestamp();
    let tenant = account.tenant.clone();
    let found = with_store(state, move |store| load(store, &tenant, &contact, now)).await;
    let loaded = match found {
        Ok(Some(loaded)) => loaded,
        Ok(None) => return not_found(signed, lang),
        Err(err) => return internal(lang, format!("{err:?}")),
    };
    let tz = loaded.tenant.timezone;
    let erased = loaded.contact.erased_at.is_some();
    let c = &loaded.contact;
    let contact = context! {
        id => c.id,
        name => (!erased).then(|| format!("{} {}", c.first_name, c.last_name)),
        email => if erased { None } else { c.email.clone() },
        phone => if erased { None } else { c.phone.clone() },
        owner => c.owner, source => c.source, erased,
    };
    let cases: Vec<Value> = loaded
        .cases
        .iter()
        .map(|case| {
            let failed = loaded
                .failed
                .iter()
                .find(|(p, _)| p == &case.purpose)
                .and_then(|(_, e)| e.clone());
            let actions: Vec<Value> = cockpit::offered(
                &account,
                case,
                &loaded.contact.owner,
                failed.is_some(),
            )
            .into_iter()
            .map(|a| context! { id => a, label => word(lang, a), needs_reason => a != "approve" })
            .collect();
            let cleanup = case.cleanup.as_ref().map(|p| {
                context! {
                    mode => p.mode.as_str(),
                    not_before => crate::times::local(p.not_before, tz),
                    reason => p.reason,
                    requested_by => p.requested_by,
                    requires_approval => p.requires_approval,
                    approved_by => p.approved_by,
                }
            });
            let basis = case.basis.as_ref().filter(|_| case.state == crate::plugin::State::OtherBasis).map(|b| {
                let by = match (&b.decided_by, b.policy_version) {
                    (Some(who), _) if !who.is_empty() => format!("{} {who}", word(lang, "decided_by")),
                    (Some(_), _) => String::new(),
                    (None, Some(v)) => format!("{} v{v}", word(lang, "set_by_policy")),
                    (None, None) => word(lang, "set_by_policy"),
                };
                context! {
                    kind => word(lang, &format!("basis-{}", b.kind.as_str())),
                    reason => b.reason,
                    by,
                    review => b.review_at.map(|t| crate::times::local(t, tz)),
                    relied_on => b.relied_on.iter().map(|(k, v)| format!("{k} = {v}")).collect::<Vec<_>>().join(", "),
                }
            });
            context! {
                purpose => case.purpose,
                basis,
                state => case.state.as_str(),
                state_word => word(lang, case.state.as_str()),
                band_word => word(lang, case.state.band().as_str()),
                due => case.due_at.map(|t| crate::times::local(t, tz)),
                assigned => case.assigned_to,
                hold => case.legal_hold,
                cleanup, failed, actions,
            }
        })
        .collect();
    let timeline: Vec<Value> = loaded
        .timeline
        .iter()
        .map(|d| {
            let time = chrono::DateTime::parse_from_rfc3339(&d.time).map_or_else(
                |_| d.time.clone(),
                |t| crate::times::local(t.with_timezone(&chrono::Utc), tz),
            );
            let reasons: Vec<String> = d
                .reasons
                .iter()
                .map(|r| format!("{} ({}) → {}", r.by, r.input, r.answer))
                .collect();
            context! {
                time, purpose => d.purpose, summary => d.summary, policy => d.policy,
                sha => d.policy_sha256.as_deref().map(|s| s.get(..12).unwrap_or(s).to_owned()),
                reasons,
            }
        })
        .collect();
    let evidence: Vec<Value> = loaded
        .evidence
        .iter()
        .map(|r| {
            let text = |k: &str| {
                r.detail.get(k).map(|v| match v {
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
            };
            let mut details = Vec::new();
            for key in [
                "channel",
                "attempt",
                "answer",
                "text_version",
                "language",
                "kind",
                "reason",
                "policy_version",
                "review_at",
            ] {
                if let Some(v) = text(key) {
                    details.push(format!("{}: {v}", word(lang, key)));
                }
            }
            // What identifies the person (their address, their browser) is
            // not shown once they are erased.
            if !erased {
                for key in ["ip", "user_agent"] {
                    if let Some(v) = text(key).filter(|v| v != "null") {
                        details.push(format!("{}: {v}", word(lang, key)));
                    }
                }
            }
            context! {
                time => crate::times::local_secs(r.at, tz),
                purpose => r.purpose, kind => word(lang, &format!("{}s", r.kind)),
                details => details.join(" · "),
            }
        })
        .collect();
    render(
        status,
        lang,
        "case.html",
        context! {
            frame => signed.frame(),
            contact, cases, timeline, evidence, results,
        },
    )
}

fn not_found(signed: &Signed, lang: &str) -> Response {
    render(
        StatusCode::NOT_FOUND,
        lang,
        "message.html",
        context! {
            frame => signed.frame(),
            heading => word(lang, "not_found"), text => word(lang, "not_found_text"),
        },
    )
}

/// `POST /cockpit/case/{contact}/act`: one action on one of its cases.
pub(super) async fn act(
    AxumState(state): AxumState<State>,
    signed: Signed,
    Path(contact): Path<String>,
    headers: HeaderMap,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    if let Some(refused) = form_refused(&state, &headers, &signed.session, field(&fields, "csrf")) {
        return refused;
    }
    let account = signed.account().clone();
    let lang = language(None, Some(&account));
    let reason = field(&fields, "reason").unwrap_or_default();
    let purpose = field(&fields, "purpose").unwrap_or_default().to_owned();
    let Some(action) = field(&fields, "action").and_then(|a| CaseAction::parse(a, reason)) else {
        return message(StatusCode::BAD_REQUEST, lang, "error", "error_text");
    };
    if !account.has(action.role()) {
        return message(StatusCode::FORBIDDEN, lang, "forbidden", "forbidden_role");
    }
    if action != CaseAction::Approve && reason.trim().is_empty() {
        let results = context! { error => word(lang, "reason_missing") };
        return page(
            &state,
            &signed,
            contact,
            None,
            Some(results),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    }
    let now = state.now();
    let shared = std::sync::Arc::clone(&state);
    let who = contact.clone();
    let done = with_store(&state, move |store| {
        let tenant =
            tenants::require(store.connection(), &account.tenant).map_err(ApiError::internal)?;
        // Another tenant's contact is not found here, exactly like one that
        // does not exist.
        if contacts::stored(store.connection(), &tenant.id, &who)
            .map_err(ApiError::internal)?
            .is_none()
        {
            return Ok(None);
        }
        Ok(Some(cockpit::act(
            store,
            &shared.sessions,
            &tenant,
            &account,
            &[(who.clone(), purpose.clone())],
            &action,
            now,
        )))
    })
    .await;
    match done {
        Ok(Some(Ok(done))) => {
            let status = if done.iter().all(|(_, d)| matches!(d, cockpit::Done::Now(_))) {
                StatusCode::OK
            } else {
                StatusCode::CONFLICT
            };
            let results = results_value(&done, lang);
            page(&state, &signed, contact, None, Some(results), status).await
        }
        Ok(Some(Err(cockpit::ActError::Reason(_)))) => {
            let results = context! { error => word(lang, "reason_missing") };
            page(
                &state,
                &signed,
                contact,
                None,
                Some(results),
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
        Ok(None) => not_found(&signed, lang),
        Ok(Some(Err(err))) => internal(lang, err),
        Err(err) => internal(lang, format!("{err:?}")),
    }
}

/// Builds the contact's proof bundle, or None when the tenant has no such
/// contact.
async fn bundle_of(
    state: &State,
    signed: &Signed,
    contact: String,
) -> Result<Option<(Tenant, crate::app::evidence::Bundle)>, ApiError> {
    let tenant = signed.tenant().to_owned();
    let now = state.now().timestamp();
    with_store(state, move |store| {
        let conn = store.connection();
        let tenant = tenants::require(conn, &tenant).map_err(ApiError::internal)?;
        match crate::app::evidence::export(conn, &tenant, &contact, now) {
            Ok(bundle) => Ok(Some((tenant, bundle))),
            Err(BundleError::NoContact { .. }) => Ok(None),
            Err(err) => Err(ApiError::internal(err)),
        }
    })
    .await
}

/// `GET /cockpit/case/{contact}/proof`: the proof of consent as a document
/// to print (or save as PDF) for an auditor, in German or English.
pub(super) async fn proof(
    AxumState(state): AxumState<State>,
    signed: Signed,
    Path(contact): Path<String>,
    Query(q): Query<CaseQuery>,
) -> Response {
    let lang = language(q.lang.as_deref(), Some(signed.account()));
    match bundle_of(&state, &signed, contact).await {
        Ok(Some((tenant, bundle))) => {
            let erased = bundle.contact.erased_at.is_some();
            render(
                StatusCode::OK,
                lang,
                "proof.html",
                context! {
                    company => tenant.name,
                    b => Value::from_serialize(&bundle),
                    erased,
                    generated_by => signed.account().name,
                },
            )
        }
        Ok(None) => not_found(&signed, lang),
        Err(err) => internal(lang, format!("{err:?}")),
    }
}

/// `GET /cockpit/case/{contact}/bundle.json`: the same proof as JSON.
pub(super) async fn bundle(
    AxumState(state): AxumState<State>,
    signed: Signed,
    Path(contact): Path<String>,
) -> Response {
    let lang = language(None, Some(signed.account()));
    match bundle_of(&state, &signed, contact.clone()).await {
        Ok(Some((_, bundle))) => match serde_json::to_string_pretty(&bundle) {
            Ok(json) => {
                let name: String = contact
                    .chars()
                    .map(|c| {
                        if c.is_ascii_alphanumeric() || c == '-' {
                            c
                        } else {
                            '_'
                        }
                    })
                    .collect();
                (
                    [
                        (header::CONTENT_TYPE, "application/json".to_owned()),
                        (
                            header::CONTENT_DISPOSITION,
                            format!("attachment; filename=\"evidence-{name}.json\""),
                        ),
                        (header::CACHE_CONTROL, "no-store".to_owned()),
                    ],
                    json,
                )
                    .into_response()
            }
            Err(err) => internal(lang, err),
        },
        Ok(None) => not_found(&signed, lang),
        Err(err) => internal(lang, format!("{err:?}")),
    }
}
