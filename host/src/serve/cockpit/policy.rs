//! The policy page: the tenant's versions with author and message, a diff
//! between two, a version's check (line and column on its source) and
//! tests, a dry run with its weekly forecast as a chart, and activation of
//! a new version. Viewers and admins see it; only admins check, simulate
//! and activate. Activation applies the same rule as the CLI and the API:
//! `activation::check_and_test`, then `activation::activate`.

use std::path::PathBuf;

use axum::Form;
use axum::extract::{Query, State as AxumState};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use minijinja::{Value, context};
use serde::Deserialize;

use super::texts::word;
use super::{Signed, charts, field, form_refused, internal, language, message, render};
use crate::app::activation::{self, ActivationError, Candidate, Checked};
use crate::app::simulate;
use crate::serve::{ApiError, State};
use crate::store::accounts::Role;
use crate::store::tenants::{self, PolicyVersion};

#[derive(Debug, Deserialize, Default)]
pub(super) struct PolicyQuery {
    v: Option<String>,
    from: Option<String>,
    to: Option<String>,
    lang: Option<String>,
}

/// What a check, a dry run or an activation found, for the page.
#[derive(Default)]
struct Outcome {
    heading: String,
    ok: bool,
    lines: Vec<String>,
    /// Diagnostics drawn on the source (line and column).
    rendered: Option<String>,
    forecast: Option<Value>,
}

fn version_number(text: Option<&str>) -> Option<i64> {
    text.and_then(|t| t.trim().trim_start_matches('v').parse().ok())
}

/// `GET /cockpit/policy`
pub(super) async fn show(
    AxumState(state): AxumState<State>,
    signed: Signed,
    Query(q): Query<PolicyQuery>,
) -> Response {
    let account = signed.account();
    let lang = language(q.lang.as_deref(), Some(account));
    if !account.has(Role::Admin) && !account.has(Role::Viewer) {
        return message(StatusCode::FORBIDDEN, lang, "forbidden", "forbidden_role");
    }
    page(&state, &signed, &q, None, None).await
}

async fn page(
    state: &State,
    signed: &Signed,
    q: &PolicyQuery,
    draft: Option<(String, String)>,
    outcome: Option<Outcome>,
) -> Response {
    let account = signed.account().clone();
    let lang = language(q.lang.as_deref(), Some(&account));
    let tenant = account.tenant.clone();
    let found = crate::serve::with_store(state, move |store| {
        let conn = store.connection();
        let tenant_row = tenants::require(conn, &tenant).map_err(ApiError::internal)?;
        let versions = tenants::policy_versions(conn, &tenant).map_err(ApiError::internal)?;
        Ok((tenant_row, versions))
    })
    .await;
    let (tenant_row, versions) = match found {
        Ok(found) => found,
        Err(err) => return internal(lang, format!("{err:?}")),
    };
    let tz = tenant_row.timezone;
    let active = versions.iter().find(|v| v.active).cloned();
    let shown: Option<PolicyVersion> = match version_number(q.v.as_deref()) {
        Some(n) => versions.iter().find(|v| v.version == n).cloned(),
        None => active.clone(),
    };
    // The shown version's check: its warnings, drawn on its source.
    let (source, tests) = match &shown {
        Some(v) => (v.source.clone(), v.tests.clone().unwrap_or_default()),
        None => (crate::DEFAULT_POLICY.to_owned(), String::new()),
    };
    let check = {
        let plugin = std::sync::Arc::clone(&state.plugin);
        let (source, tests) = (source.clone(), tests.clone());
        tokio::task::spawn_blocking(move || check(&plugin, &source, &tests))
            .await
            .unwrap_or_default()
    };
    let diff = match (
        version_number(q.from.as_deref()),
        version_number(q.to.as_deref()),
    ) {
        (Some(a), Some(b)) => {
            let find = |n| versions.iter().find(|v| v.version == n);
            match (find(a), find(b)) {
                (Some(x), Some(y)) => Some(context! {
                    from => a, to => b,
                    text => similar::TextDiff::from_lines(&x.source, &y.source)
                        .unified_diff()
                        .context_radius(3)
                        .header(&format!("v{a}"), &format!("v{b}"))
                        .to_string(),
                }),
                _ => None,
            }
        }
        _ => None,
    };
    let rows: Vec<Value> = versions
        .iter()
        .rev()
        .map(|v| {
            context! {
                version => v.version,
                created => crate::times::local_secs(v.created_at, tz),
                author => v.author, message => v.message,
                active => v.active, tested => v.tested(),
                sha => v.sha256.get(..12).unwrap_or(&v.sha256).to_owned(),
            }
        })
        .collect();
    let (draft_source, draft_tests) = draft.unwrap_or((source.clone(), tests.clone()));
    let numbered: Vec<Value> = source
        .lines()
        .enumerate()
        .map(|(i, l)| context! { n => i + 1, text => l })
        .collect();
    render(
        StatusCode::OK,
        lang,
        "policy.html",
        context! {
            frame => signed.frame(),
            current => "policy",
            admin => account.has(Role::Admin),
            rows,
            shown => shown.as_ref().map(|v| v.version),
            running => active.as_ref().map(|v| format!("v{}", v.version)),
            numbered,
            check => context! { ok => check.ok, lines => check.lines, rendered => check.rendered },
            diff,
            draft_source, draft_tests,
            outcome => outcome.map(|o| context! {
                heading => o.heading, ok => o.ok, lines => o.lines,
                rendered => o.rendered, forecast => o.forecast,
            }),
        },
    )
}

/// Compiles `source` and runs `tests` (TOML; empty: none) in the sandbox.
fn check(
    plugin: &std::sync::Arc<crate::runtime::LoadedPlugin>,
    source: &str,
    tests: &str,
) -> Outcome {
    let files: Vec<(PathBuf, String)> = if tests.trim().is_empty() {
        Vec::new()
    } else {
        vec![(PathBuf::from("tests.toml"), tests.to_owned())]
    };
    match activation::check_and_test(plugin, "policy.rhai", source, &files) {
        Ok(Checked::Invalid(found)) => Outcome {
            ok: false,
            lines: found
                .iter()
                .map(|d| format!("{}:{}: {}", d.line, d.column, d.message))
                .collect(),
            rendered: Some(crate::diagnostics::render(
                "policy.rhai",
                source,
                &found,
                false,
            )),
            ..Outcome::default()
        },
        Ok(Checked::Compiled {
            warnings, report, ..
        }) => {
            let mut lines: Vec<String> = warnings
                .iter()
                .map(|d| format!("{}:{}: {}", d.line, d.column, d.message))
                .collect();
            let mut ok = true;
            if let Some(report) = &report {
                for file in &report.files {
                    for r in &file.results {
                        if r.differences.is_empty() {
                            lines.push(format!("✓ {}", r.name));
                        } else {
                            ok = false;
                            lines.push(format!("✗ {}: {}", r.name, r.differences.join("; ")));
                        }
                    }
                }
            }
            Outcome {
                ok,
                rendered: (!warnings.is_empty())
                    .then(|| crate::diagnostics::render("policy.rhai", source, &warnings, false)),
                lines,
                ..Outcome::default()
            }
        }
        Err(err) => Outcome {
            ok: false,
            lines: vec![err.to_string()],
            ..Outcome::default()
        },
    }
}

/// `POST /cockpit/policy`: check, dry-run or activate a draft (admin).
pub(super) async fn act(
    AxumState(state): AxumState<State>,
    signed: Signed,
    headers: HeaderMap,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    if let Some(refused) = form_refused(&state, &headers, &signed.session, field(&fields, "csrf")) {
        return refused;
    }
    let account = signed.account().clone();
    let lang = language(None, Some(&account));
    if !account.has(Role::Admin) {
        return message(StatusCode::FORBIDDEN, lang, "forbidden", "forbidden_role");
    }
    let source = field(&fields, "source")
        .unwrap_or_default()
        .replace("\r\n", "\n");
    let tests = field(&fields, "tests")
        .unwrap_or_default()
        .replace("\r\n", "\n");
    let op = field(&fields, "op").unwrap_or_default().to_owned();
    let q = PolicyQuery::default();
    let plugin = std::sync::Arc::clone(&state.plugin);
    let outcome = match op.as_str() {
        "check" => {
            let (s, t) = (source.clone(), tests.clone());
            let mut o = tokio::task::spawn_blocking(move || check(&plugin, &s, &t))
                .await
                .unwrap_or_default();
            o.heading = word(lang, "policy_checked");
            o
        }
        "simulate" => {
            let days = field(&fields, "days")
                .and_then(|d| d.trim().parse::<u32>().ok())
                .filter(|d| (1..=730).contains(d));
            let Some(days) = days else {
                return message(StatusCode::BAD_REQUEST, lang, "error", "days_invalid");
            };
            let against = field(&fields, "against") == Some("on");
            dry_run(&state, &account.tenant, (&source, against), days, lang).await
        }
        "activate" => {
            let message_text = field(&fields, "message")
                .unwrap_or_default()
                .trim()
                .to_owned();
            let reason = field(&fields, "untested_reason")
                .map(str::trim)
                .filter(|r| !r.is_empty())
                .map(str::to_owned);
            activate(
                &state,
                &account,
                (&source, &tests),
                (&message_text, reason),
                lang,
            )
            .await
        }
        _ => return message(StatusCode::BAD_REQUEST, lang, "error", "error_text"),
    };
    let status = if outcome.ok {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    let mut response = page(&state, &signed, &q, Some((source, tests)), Some(outcome)).await;
    if response.status() == StatusCode::OK {
        *response.status_mut() = status;
    }
    response
}

async fn activate(
    state: &State,
    account: &crate::store::accounts::Account,
    (source, tests): (&str, &str),
    (message_text, untested_reason): (&str, Option<String>),
    lang: &'static str,
) -> Outcome {
    let checked = {
        let plugin = std::sync::Arc::clone(&state.plugin);
        let (s, t) = (source.to_owned(), tests.to_owned());
        tokio::task::spawn_blocking(move || {
            let files: Vec<(PathBuf, String)> = if t.trim().is_empty() {
                Vec::new()
            } else {
                vec![(PathBuf::from("tests.toml"), t)]
            };
            activation::check_and_test(&plugin, "policy.rhai", &s, &files).map(|c| (c, s))
        })
        .await
    };
    let (checked, source) = match checked {
        Ok(Ok(found)) => found,
        Ok(Err(err)) => return failed(lang, vec![err.to_string()], None),
        Err(err) => return failed(lang, vec![err.to_string()], None),
    };
    if !checked.passed() {
        let mut o = check(&state.plugin, &source, tests);
        o.heading = word(lang, "policy_refused");
        o.ok = false;
        return o;
    }
    let Checked::Compiled { mut session, .. } = checked else {
        return failed(lang, vec![word(lang, "error_text")], None);
    };
    let author = format!("{} ({}, cockpit)", account.name, account.id);
    let tests_owned = (!tests.trim().is_empty()).then(|| tests.to_owned());
    let tenant = account.tenant.clone();
    let message_text = message_text.to_owned();
    let now = state.now().timestamp();
    let done = crate::serve::with_store(state, move |store| {
        let candidate = Candidate {
            source: &source,
            tests: tests_owned.as_deref(),
            author: &author,
            message: &message_text,
            untested_reason: untested_reason.as_deref(),
        };
        Ok(
            match activation::activate(
                store,
                &mut session,
                &tenant,
                &candidate,
                now,
                &mut |_, _| {},
            ) {
                Ok(a) => Ok(a.version.version),
                Err(ActivationError::Refused(refusal)) => {
                    let rendered = match &refusal {
                        activation::Refusal::FailsForContacts(sweep) => {
                            let drawn: Vec<crate::plugin::Diagnostic> =
                                activation::grouped(&sweep.problems)
                                    .iter()
                                    .map(|(p, _)| crate::plugin::Diagnostic {
                                        message: activation::problem_line(p),
                                        ..p.diagnostic.clone()
                                    })
                                    .collect();
                            Some(crate::diagnostics::render(
                                "policy.rhai",
                                &source,
                                &drawn,
                                false,
                            ))
                        }
                        _ => None,
                    };
                    Err((refusal.to_string(), rendered))
                }
                Err(err) => Err((err.to_string(), None)),
            },
        )
    })
    .await;
    match done {
        Ok(Ok(version)) => Outcome {
            heading: format!("{} v{version}", word(lang, "policy_active")),
            ok: true,
            ..Outcome::default()
        },
        Ok(Err((why, rendered))) => failed(lang, vec![why], rendered),
        Err(err) => failed(lang, vec![format!("{err:?}")], None),
    }
}

fn failed(lang: &str, lines: Vec<String>, rendered: Option<String>) -> Outcome {
    Outcome {
        heading: word(lang, "policy_refused"),
        ok: false,
        lines,
        rendered,
        forecast: None,
    }
}

/// A dry run on a copy of the tenant's cases: the draft (or, when it is
/// the running policy, that), optionally next to the running policy.
async fn dry_run(
    state: &State,
    tenant: &str,
    (source, against): (&str, bool),
    days: u32,
    lang: &'static str,
) -> Outcome {
    let shared = std::sync::Arc::clone(state);
    let (tenant, source) = (tenant.to_owned(), source.to_owned());
    let options = simulate::Options {
        days,
        answer_rate: 0.3,
        refuse_rate: 0.2,
        seed: 1,
        start: state.now(),
    };
    let ran = tokio::task::spawn_blocking(move || {
        let scratch = tempfile::tempdir().map_err(|e| e.to_string())?;
        let copy = scratch.path().join("simulation.db");
        simulate::copy_database(&shared.db, &tenant, &copy).map_err(|e| e.to_string())?;
        let draft = simulate::run(
            &copy,
            &shared.plugin,
            &tenant,
            ("the draft", &source),
            &options,
            &mut |_| {},
        )
        .map_err(|e| e.to_string())?;
        let running = if against {
            let store = crate::store::Store::open(&shared.db).map_err(|e| e.to_string())?;
            let running = crate::engine::running_policy(store.connection(), &tenant)
                .map_err(|e| e.to_string())?;
            let copy = scratch.path().join("against.db");
            simulate::copy_database(&shared.db, &tenant, &copy).map_err(|e| e.to_string())?;
            Some(
                simulate::run(
                    &copy,
                    &shared.plugin,
                    &tenant,
                    (&running.name, &running.source),
                    &options,
                    &mut |_| {},
                )
                .map_err(|e| e.to_string())?,
            )
        } else {
            None
        };
        Ok::<_, String>((draft, running))
    })
    .await;
    let (draft, running) = match ran {
        Ok(Ok(found)) => found,
        Ok(Err(why)) => return failed(lang, vec![why], None),
        Err(err) => return failed(lang, vec![err.to_string()], None),
    };
    let weeks: Vec<Value> = draft
        .weeks
        .iter()
        .map(|w| {
            context! {
                week => w.week, from => w.from, requests => w.requests, reminders => w.reminders,
                consents => w.consents, refusals => w.refusals, cleanups => w.cleanups,
                handed => w.handed_to_people.values().sum::<u64>(),
            }
        })
        .collect();
    let series: Vec<(String, Vec<u64>)> = vec![
        (
            word(lang, "requests"),
            draft.weeks.iter().map(|w| w.requests).collect(),
        ),
        (
            word(lang, "agreed"),
            draft.weeks.iter().map(|w| w.consents).collect(),
        ),
        (
            word(lang, "refused"),
            draft.weeks.iter().map(|w| w.refusals).collect(),
        ),
        (
            word(lang, "cleaned"),
            draft.weeks.iter().map(|w| w.cleanups).collect(),
        ),
    ];
    let svg = charts::forecast(&series, &word(lang, "forecast"));
    let lines = match &running {
        Some(running) => {
            let differences = simulate::differences(running, &draft);
            if differences.is_empty() {
                vec![word(lang, "no_difference")]
            } else {
                differences
            }
        }
        None => Vec::new(),
    };
    Outcome {
        heading: format!("{} ({days} {})", word(lang, "forecast"), word(lang, "days")),
        ok: true,
        lines,
        rendered: None,
        forecast: Some(context! { svg => Value::from_safe_string(svg), weeks }),
    }
}
