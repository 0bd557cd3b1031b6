//! The overview, the queue (with its filters, bulk actions and CSV export).

use axum::Form;
use axum::extract::{Query, State as AxumState};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use minijinja::{Value, context};
use serde::{Deserialize, Serialize};

use super::texts::word;
use super::{Signed, charts, field, form_refused, internal, language, message, render};
use crate::app::cockpit::{self, CaseAction, Done};
use crate::plugin::{Band, State as CaseState};
use crate::serve::{ApiError, State, with_store};
use crate::store::accounts::Role;
use crate::store::report::{QueueFilter, QueueLine, Stage};
use crate::store::tenants;

/// Lines per page of the queue.
const PAGE: usize = 50;
/// The most lines one CSV export holds.
const EXPORT_MAX: usize = 100_000;

#[derive(Debug, Deserialize, Default, Clone)]
pub(super) struct QueueQuery {
    view: Option<String>,
    state: Option<String>,
    band: Option<String>,
    owner: Option<String>,
    assigned: Option<String>,
    purpose: Option<String>,
    source: Option<String>,
    overdue: Option<String>,
    due_soon: Option<String>,
    on_time: Option<String>,
    failed: Option<String>,
    parked: Option<String>,
    wave: Option<String>,
    stage: Option<String>,
    q: Option<String>,
    page: Option<String>,
    lang: Option<String>,
}

fn set(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

fn flag(value: &Option<String>) -> bool {
    matches!(set(value), Some("1" | "on" | "true"))
}

impl QueueQuery {
    fn mine(&self) -> bool {
        set(&self.view) != Some("all")
    }

    /// The filter, or what is wrong with the query (an unknown state, …).
    fn filter(&self, account: &crate::store::accounts::Account) -> Result<QueueFilter, String> {
        let page = match set(&self.page) {
            None => 1,
            Some(p) => p
                .parse::<usize>()
                .ok()
                .filter(|p| *p >= 1)
                .ok_or_else(|| format!("page {p:?} is not a page number"))?,
        };
        if let Some(view) = set(&self.view)
            && !["mine", "all"].contains(&view)
        {
            return Err(format!("unknown view {view:?}; use mine or all"));
        }
        Ok(QueueFilter {
            state: set(&self.state)
                .map(|s| s.parse::<CaseState>().map_err(|e| e.to_string()))
                .transpose()?,
            band: set(&self.band)
                .map(|s| s.parse::<Band>().map_err(|e| e.to_string()))
                .transpose()?,
            owner: set(&self.owner).map(str::to_owned),
            assigned: set(&self.assigned).map(str::to_owned),
            purpose: set(&self.purpose).map(str::to_owned),
            source: set(&self.source).map(str::to_owned),
            overdue: flag(&self.overdue),
            due_soon: flag(&self.due_soon),
            on_time: flag(&self.on_time),
            failed: flag(&self.failed),
            parked: flag(&self.parked),
            wave: set(&self.wave).map(str::to_owned),
            stage: set(&self.stage)
                .map(|s| Stage::parse(s).ok_or_else(|| format!("unknown stage {s:?}")))
                .transpose()?,
            search: set(&self.q).map(str::to_owned),
            mine: self
                .mine()
                .then(|| (account.id.clone(), account.has(Role::Approver))),
            offset: (page - 1) * PAGE,
            limit: PAGE,
        })
    }

    /// The query as a URL's query string (without `page`), for links and
    /// the bulk form's way back.
    fn query_string(&self) -> String {
        let pairs = [
            ("view", &self.view),
            ("state", &self.state),
            ("band", &self.band),
            ("owner", &self.owner),
            ("assigned", &self.assigned),
            ("purpose", &self.purpose),
            ("source", &self.source),
            ("overdue", &self.overdue),
            ("due_soon", &self.due_soon),
            ("on_time", &self.on_time),
            ("failed", &self.failed),
            ("parked", &self.parked),
            ("wave", &self.wave),
            ("stage", &self.stage),
            ("q", &self.q),
            ("lang", &self.lang),
        ];
        pairs
            .iter()
            .filter_map(|(k, v)| set(v).map(|v| format!("{k}={}", crate::percent_encode(v))))
            .collect::<Vec<_>>()
            .join("&")
    }
}

/// A queue line as the page and the CSV show it.
#[derive(Debug, Serialize)]
struct Row {
    key: String,
    contact: String,
    purpose: String,
    state: String,
    state_word: String,
    band_word: String,
    due: String,
    overdue: bool,
    owner: String,
    assigned: String,
    source: String,
    name: String,
    email: String,
    erased: bool,
    hold: bool,
    failed: bool,
    awaiting_approval: bool,
}

fn rows(lines: Vec<QueueLine>, lang: &str, tz: chrono_tz::Tz, now: i64) -> Vec<Row> {
    lines
        .into_iter()
        .map(|l| Row {
            key: format!("{}/{}", l.contact, l.purpose),
            state_word: word(lang, &l.state),
            band_word: word(lang, &l.band),
            due: l
                .due_at
                .map(|t| crate::times::local_secs(t, tz))
                .unwrap_or_default(),
            overdue: l.due_at.is_some_and(|t| t < now),
            assigned: l.assigned_to.unwrap_or_default(),
            erased: l.name.is_none(),
            name: l.name.unwrap_or_default(),
            email: l.email.unwrap_or_default(),
            hold: l.legal_hold,
            failed: l.needs_attention.is_some(),
            awaiting_approval: l.awaiting_approval,
            contact: l.contact,
            purpose: l.purpose,
            state: l.state,
            owner: l.owner,
            source: l.source,
        })
        .collect()
}

/// What the queue page shows besides its lines: the filter's choices.
struct Choices {
    purposes: Vec<String>,
    owners: Vec<String>,
    sources: Vec<String>,
}

/// `GET /cockpit/queue`
pub(super) async fn queue(
    AxumState(state): AxumState<State>,
    signed: Signed,
    Query(q): Query<QueueQuery>,
) -> Response {
    queue_page(&state, &signed, q, None).await
}

async fn queue_page(
    state: &State,
    signed: &Signed,
    q: QueueQuery,
    results: Option<Value>,
) -> Response {
    let account = signed.account().clone();
    let lang = language(q.lang.as_deref(), Some(&account));
    let filter = match q.filter(&account) {
        Ok(filter) => filter,
        Err(why) => {
            return render(
                StatusCode::BAD_REQUEST,
                lang,
                "message.html",
                context! { frame => signed.frame(), heading => word(lang, "filters"), text => why },
            );
        }
    };
    let now = state.now().timestamp();
    let tenant = account.tenant.clone();
    let found = with_store(state, move |store| {
        let conn = store.connection();
        let tenant_row = tenants::require(conn, &tenant).map_err(ApiError::internal)?;
        let (lines, total) =
            crate::store::report::queue(conn, &tenant, &filter, now).map_err(ApiError::internal)?;
        let choices = Choices {
            purposes: tenants::purposes(conn, &tenant)
                .map_err(ApiError::internal)?
                .into_iter()
                .map(|(id, _)| id)
                .collect(),
            owners: crate::store::report::owners(conn, &tenant).map_err(ApiError::internal)?,
            sources: crate::store::report::sources(conn, &tenant).map_err(ApiError::internal)?,
        };
        Ok((tenant_row, lines, total, choices, filter.offset))
    })
    .await;
    let (tenant_row, lines, total, choices, offset) = match found {
        Ok(found) => found,
        Err(err) => return internal(lang, format!("{err:?}")),
    };
    let rows = rows(lines, lang, tenant_row.timezone, now);
    let page = offset / PAGE + 1;
    let pages = (usize::try_from(total).unwrap_or(0)).div_ceil(PAGE).max(1);
    let query = q.query_string();
    let actions: Vec<Value> = bulk_actions(&account)
        .into_iter()
        .map(|a| context! { id => a, label => word(lang, a) })
        .collect();
    let state_names: Vec<Value> = CaseState::ALL
        .iter()
        .map(|s| context! { id => s.as_str(), label => word(lang, s.as_str()) })
        .collect();
    let band_names: Vec<Value> = Band::ALL
        .iter()
        .map(|b| context! { id => b.as_str(), label => word(lang, b.as_str()) })
        .collect();
    render(
        StatusCode::OK,
        lang,
        "queue.html",
        context! {
            frame => signed.frame(),
            rows, total, page, pages, query,
            mine => q.mine(),
            current => if q.mine() { "queue" } else { "all" },
            f => context! {
                state => set(&q.state), band => set(&q.band), owner => set(&q.owner),
                purpose => set(&q.purpose), source => set(&q.source), q => set(&q.q),
                overdue => flag(&q.overdue), assigned => set(&q.assigned),
                wave => set(&q.wave), stage => set(&q.stage),
                due_soon => flag(&q.due_soon), on_time => flag(&q.on_time), failed => flag(&q.failed), parked => flag(&q.parked),
            },
            states => state_names, bands => band_names,
            purposes => choices.purposes, owners => choices.owners, sources => choices.sources,
            actions, results,
        },
    )
}

/// The bulk actions a person's roles allow.
fn bulk_actions(account: &crate::store::accounts::Account) -> Vec<&'static str> {
    let mut out = Vec::new();
    if account.has(Role::Owner) {
        out.extend([
            "decide:manual",
            "decide:restart",
            "decide:cleanup",
            "decide:other-basis",
            "decide:keep",
        ]);
    }
    if account.has(Role::Approver) {
        out.extend(["approve", "hold-on", "hold-off"]);
    }
    if account.has(Role::Admin) {
        out.push("clear");
    }
    out
}

/// `POST /cockpit/queue`: one action for the selected cases.
pub(super) async fn bulk(
    AxumState(state): AxumState<State>,
    signed: Signed,
    headers: HeaderMap,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    if let Some(refused) = form_refused(&state, &headers, &signed.session, field(&fields, "csrf")) {
        return refused;
    }
    let account = signed.account().clone();
    let back = field(&fields, "back").unwrap_or_default();
    let q = format!("/cockpit/queue?{back}")
        .parse::<Uri>()
        .ok()
        .and_then(|uri| Query::<QueueQuery>::try_from_uri(&uri).ok())
        .map(|Query(q)| q)
        .unwrap_or_default();
    let lang = language(q.lang.as_deref(), Some(&account));
    let reason = field(&fields, "reason").unwrap_or_default();
    let Some(action) = field(&fields, "action").and_then(|a| CaseAction::parse(a, reason)) else {
        return message(StatusCode::BAD_REQUEST, lang, "error", "error_text");
    };
    if !account.has(action.role()) {
        return message(StatusCode::FORBIDDEN, lang, "forbidden", "forbidden_role");
    }
    let selection: Vec<(String, String)> = fields
        .iter()
        .filter(|(k, _)| k == "sel")
        .filter_map(|(_, v)| v.split_once('/'))
        .map(|(c, p)| (c.to_owned(), p.to_owned()))
        .collect();
    if selection.is_empty() {
        let results = context! { error => word(lang, "no_selection") };
        return with_status(
            queue_page(&state, &signed, q, Some(results)).await,
            StatusCode::UNPROCESSABLE_ENTITY,
        );
    }
    if action != CaseAction::Approve && reason.trim().is_empty() {
        let results = context! { error => word(lang, "reason_missing") };
        return with_status(
            queue_page(&state, &signed, q, Some(results)).await,
            StatusCode::UNPROCESSABLE_ENTITY,
        );
    }
    let now = state.now();
    let shared = std::sync::Arc::clone(&state);
    let done = with_store(&state, move |store| {
        let tenant =
            tenants::require(store.connection(), &account.tenant).map_err(ApiError::internal)?;
        Ok(cockpit::act(
            store,
            &shared.sessions,
            &tenant,
            &account,
            &selection,
            &action,
            now,
        ))
    })
    .await;
    let done = match done {
        Ok(Ok(done)) => done,
        Ok(Err(cockpit::ActError::Reason(_))) => {
            let results = context! { error => word(lang, "reason_missing") };
            return with_status(
                queue_page(&state, &signed, q, Some(results)).await,
                StatusCode::UNPROCESSABLE_ENTITY,
            );
        }
        Ok(Err(err)) => return internal(lang, err),
        Err(err) => return internal(lang, format!("{err:?}")),
    };
    let results = results_value(&done, lang);
    queue_page(&state, &signed, q, Some(results)).await
}

fn with_status(mut response: Response, status: StatusCode) -> Response {
    *response.status_mut() = status;
    response
}

/// The results of an action, for the page: what was done and what was
/// skipped, each case with why.
pub(super) fn results_value(done: &[cockpit::Outcome], lang: &str) -> Value {
    let items: Vec<Value> = done
        .iter()
        .map(|((contact, purpose), d)| {
            let (kind, text) = match d {
                Done::Now(state) => (
                    "done",
                    format!("{} {}", word(lang, "done_now"), word(lang, state.as_str())),
                ),
                Done::Skipped(why) => ("skipped", format!("{}: {why}", word(lang, "skipped"))),
                Done::Failed(why) => ("failed", format!("{}: {why}", word(lang, "failed_step"))),
            };
            context! { contact, purpose, kind, text }
        })
        .collect();
    let applied = done
        .iter()
        .filter(|(_, d)| matches!(d, Done::Now(_)))
        .count();
    let skipped = done.len() - applied;
    context! { items, applied, skipped }
}

/// `GET /cockpit/queue.csv`: the current view (every page) for German
/// Excel: semicolons, UTF-8 with a byte-order mark, CRLF.
pub(super) async fn export(
    AxumState(state): AxumState<State>,
    signed: Signed,
    Query(q): Query<QueueQuery>,
) -> Response {
    let account = signed.account().clone();
    let lang = language(q.lang.as_deref(), Some(&account));
    let mut filter = match q.filter(&account) {
        Ok(filter) => filter,
        Err(why) => return (StatusCode::BAD_REQUEST, why).into_response(),
    };
    filter.offset = 0;
    filter.limit = EXPORT_MAX;
    let now = state.now().timestamp();
    let tenant = account.tenant.clone();
    let found = with_store(&state, move |store| {
        let conn = store.connection();
        let tenant_row = tenants::require(conn, &tenant).map_err(ApiError::internal)?;
        let (lines, _) =
            crate::store::report::queue(conn, &tenant, &filter, now).map_err(ApiError::internal)?;
        Ok((tenant_row, lines))
    })
    .await;
    let (tenant_row, lines) = match found {
        Ok(found) => found,
        Err(err) => return internal(lang, format!("{err:?}")),
    };
    match csv_bytes(&rows(lines, lang, tenant_row.timezone, now), lang) {
        Ok(bytes) => (
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
                (
                    header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"klar-{}.csv\"", tenant_row.id),
                ),
                (header::CACHE_CONTROL, "no-store".to_owned()),
            ],
            bytes,
        )
            .into_response(),
        Err(err) => internal(lang, err),
    }
}

fn csv_bytes(rows: &[Row], lang: &str) -> Result<Vec<u8>, csv::Error> {
    use crate::excel::cell;
    let mut out = Vec::new();
    {
        let mut writer = crate::excel::writer(&mut out)?;
        let heads = [
            "contact", "name", "email", "purpose", "state", "band", "due", "owner", "assigned",
            "source",
        ];
        writer.write_record(heads.iter().map(|h| word(lang, h)))?;
        for r in rows {
            writer.write_record([
                cell(&r.contact),
                cell(&r.name),
                cell(&r.email),
                cell(&r.purpose),
                r.state_word.clone(),
                r.band_word.clone(),
                r.due.clone(),
                cell(&r.owner),
                cell(&r.assigned),
                cell(&r.source),
            ])?;
        }
        writer.flush()?;
    }
    Ok(out)
}

/// `GET /cockpit/overview`
pub(super) async fn overview(
    AxumState(state): AxumState<State>,
    signed: Signed,
    Query(q): Query<QueueQuery>,
) -> Response {
    let account = signed.account().clone();
    let lang = language(q.lang.as_deref(), Some(&account));
    let now = state.now();
    let tenant = account.tenant.clone();
    let found = with_store(&state, move |store| {
        let conn = store.connection();
        let tenant_row = tenants::require(conn, &tenant).map_err(ApiError::internal)?;
        let overview = cockpit::overview(conn, &tenant_row, now).map_err(ApiError::internal)?;
        Ok(overview)
    })
    .await;
    let o = match found {
        Ok(o) => o,
        Err(err) => return internal(lang, format!("{err:?}")),
    };
    let names = [
        word(lang, "usable"),
        word(lang, "to-clarify"),
        word(lang, "removed"),
    ];
    let name_refs = [names[0].as_str(), names[1].as_str(), names[2].as_str()];
    let band = |b: &str| o.status.bands.get(b).copied().unwrap_or(0);
    let band_values = [band("usable"), band("to-clarify"), band("removed")];
    let bands: Vec<Value> = ["usable", "to-clarify", "removed"]
        .iter()
        .zip(band_values)
        .map(|(id, n)| context! { id, label => word(lang, id), n })
        .collect();
    let trend_svg = (o.trend.len() >= 2)
        .then(|| Value::from_safe_string(charts::trend(&o.trend, name_refs, &word(lang, "trend"))));
    let stages = |w: &crate::store::report::Wave| -> Vec<(Stage, i64)> {
        vec![
            (Stage::Sent, w.sent),
            (Stage::Bounced, w.bounced),
            (Stage::Opened, w.opened),
            (Stage::Agreed, w.agreed),
            (Stage::Refused, w.refused),
            (Stage::RemindedOnce, w.reminded_once),
            (Stage::RemindedTwice, w.reminded_twice),
            (Stage::Handed, w.handed_to_person),
            (Stage::Decided, w.decided),
            (Stage::Cleaned, w.cleaned_up),
        ]
    };
    let (funnel_day, waves_list) = o.funnel.clone().unwrap_or_default();
    let funnel_svg = waves_list.first().map(|w| {
        let words: Vec<(String, i64)> = stages(w)
            .into_iter()
            .map(|(s, n)| (word(lang, s.as_str()), n))
            .collect();
        let labels: Vec<(&str, i64)> = words.iter().map(|(l, n)| (l.as_str(), *n)).collect();
        Value::from_safe_string(charts::funnel(w, &labels, &word(lang, "funnel")))
    });
    let stage_heads: Vec<Value> = Stage::ALL
        .iter()
        .map(|s| context! { id => s.as_str(), label => word(lang, s.as_str()) })
        .collect();
    let waves: Vec<Value> = waves_list
        .iter()
        .map(|w| {
            let cells: Vec<Value> = stages(w)
                .into_iter()
                .map(|(s, n)| context! { stage => s.as_str(), n })
                .collect();
            context! { week => w.week, cells }
        })
        .collect();
    let trend_rows: Vec<Value> = o
        .trend
        .iter()
        .map(|d| context! { day => d.day, usable => d.usable, to_clarify => d.to_clarify, removed => d.removed })
        .collect();
    let waiting: Vec<Value> = o
        .status
        .awaiting_decision_by_owner
        .iter()
        .map(|(who, n)| context! { who, n })
        .collect();
    let cleanup: Vec<Value> = o
        .cleanup
        .iter()
        .map(|c| context! { week => c.week, cases => c.cases, on_hold => c.on_hold, awaiting_approval => c.awaiting_approval })
        .collect();
    let bases: Vec<Value> = o
        .bases
        .iter()
        .map(|(kind, n)| {
            let state = if kind == "consent" {
                "consented"
            } else {
                "other-basis"
            };
            context! { kind, state, label => word(lang, &format!("basis-{kind}")), n }
        })
        .collect();
    render(
        StatusCode::OK,
        lang,
        "overview.html",
        context! {
            frame => signed.frame(),
            current => "overview",
            bands,
            bases,
            bands_svg => Value::from_safe_string(charts::bands(band_values, name_refs, &word(lang, "bands"))),
            trend_svg, trend_rows,
            funnel_svg, stage_heads, waves, funnel_day,
            ageing => context! { on_time => o.ageing.0, due_soon => o.ageing.1, overdue => o.ageing.2 },
            waiting,
            failed => o.status.needs_attention,
            parked => o.status.delivery_parked,
            cleanup,
            cleanup_pending => o.status.cleanup_pending,
        },
    )
}
