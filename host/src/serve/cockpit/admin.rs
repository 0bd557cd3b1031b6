//! What an admin manages in the cockpit: the tenant's people (add with a
//! sign-up link, roles, disable, a new link) and its API keys (create,
//! shown once; revoke). The same use cases as `klar user` and `klar
//! apikey`; audit rows name the admin's account.

use axum::Form;
use axum::extract::{Query, State as AxumState};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use minijinja::{Value, context};
use serde::Deserialize;

use super::texts::word;
use super::{Signed, field, form_refused, internal, language, message, render};
use crate::app::accounts::{self, NewAccount};
use crate::serve::{ApiError, State, with_store};
use crate::store::accounts::Role;
use crate::store::apikeys::{self, Scope};

#[derive(Debug, Deserialize, Default)]
pub(super) struct AdminQuery {
    lang: Option<String>,
}

/// Who the audit rows name for changes made here.
fn by(signed: &Signed) -> String {
    let a = signed.account();
    format!("{} ({}, cockpit)", a.name, a.id)
}

/// Why an admin's form must be refused, if it must: no session token or
/// another origin (403, see [`form_refused`]), or not an admin (403).
fn refused_form(
    state: &State,
    signed: &Signed,
    headers: &HeaderMap,
    fields: &[(String, String)],
    lang: &str,
) -> Option<Response> {
    form_refused(state, headers, &signed.session, field(fields, "csrf"))
        .or_else(|| admin_only(signed, lang))
}

/// What an admin's form did, for its page: what was saved and a secret
/// shown only now (a sign-up link, a key, a webhook secret), or why
/// nothing was (422).
fn outcome(done: Result<(String, Option<String>), String>, lang: &str) -> (Value, StatusCode) {
    match done {
        Ok((what, shown)) => (
            context! { ok => true, text => format!("{}: {what}", word(lang, "saved")), shown },
            StatusCode::OK,
        ),
        Err(why) => (
            context! { ok => false, text => why },
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    }
}

/// An admin's page, or the refusal of anyone else.
fn admin_only(signed: &Signed, lang: &str) -> Option<Response> {
    (!signed.account().has(Role::Admin))
        .then(|| message(StatusCode::FORBIDDEN, lang, "forbidden", "forbidden_role"))
}

/// `GET /cockpit/people`
pub(super) async fn people(
    AxumState(state): AxumState<State>,
    signed: Signed,
    Query(q): Query<AdminQuery>,
) -> Response {
    let lang = language(q.lang.as_deref(), Some(signed.account()));
    if let Some(refused) = admin_only(&signed, lang) {
        return refused;
    }
    people_page(&state, &signed, lang, None, StatusCode::OK).await
}

async fn people_page(
    state: &State,
    signed: &Signed,
    lang: &'static str,
    outcome: Option<Value>,
    status: StatusCode,
) -> Response {
    let tenant = signed.tenant().to_owned();
    let listed = with_store(state, move |store| {
        let conn = store.connection();
        let tz = crate::store::tenants::require(conn, &tenant)
            .map_err(ApiError::internal)?
            .timezone;
        Ok((
            accounts::list(conn, &tenant).map_err(ApiError::internal)?,
            tz,
        ))
    })
    .await;
    let (list, tz) = match listed {
        Ok(found) => found,
        Err(err) => return internal(lang, format!("{err:?}")),
    };
    let rows: Vec<Value> = list
        .iter()
        .map(|a| {
            let status = match (a.disabled_at, a.has_password) {
                (Some(_), _) => word(lang, "disabled"),
                (None, true) => word(lang, "active"),
                (None, false) => word(lang, "waiting_signup"),
            };
            context! {
                id => a.id, name => a.name, email => a.email,
                roles => a.roles.iter().map(|r| r.as_str()).collect::<Vec<_>>(),
                status, disabled => a.disabled_at.is_some(),
                created => crate::times::local_secs(a.created_at, tz),
            }
        })
        .collect();
    let all_roles: Vec<&str> = Role::ALL.iter().map(|r| r.as_str()).collect();
    render(
        status,
        lang,
        "people.html",
        context! { frame => signed.frame(), current => "people", rows, all_roles, outcome },
    )
}

fn roles_of(fields: &[(String, String)]) -> Vec<Role> {
    fields
        .iter()
        .filter(|(k, _)| k == "role")
        .filter_map(|(_, v)| v.parse().ok())
        .collect()
}

/// `POST /cockpit/people`: add, roles, disable, link.
pub(super) async fn people_act(
    AxumState(state): AxumState<State>,
    signed: Signed,
    headers: HeaderMap,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    let lang = language(None, Some(signed.account()));
    if let Some(refused) = refused_form(&state, &signed, &headers, &fields, lang) {
        return refused;
    }
    let tenant = signed.tenant().to_owned();
    let by = by(&signed);
    let now = state.now().timestamp();
    let op = field(&fields, "op").unwrap_or_default().to_owned();
    let id = field(&fields, "id").unwrap_or_default().trim().to_owned();
    let name = field(&fields, "name").unwrap_or_default().trim().to_owned();
    let email = field(&fields, "email")
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .map(str::to_owned);
    let language_of = match field(&fields, "language") {
        Some("en") => "en",
        _ => "de",
    };
    let roles = roles_of(&fields);
    let base = state.public_url.trim_end_matches('/').to_owned();
    let done = with_store(&state, move |store| {
        let link = |secret: String| format!("{base}/cockpit/signup/{secret}");
        Ok(match op.as_str() {
            "add" => {
                let new = NewAccount {
                    id: &id,
                    name: &name,
                    email: email.as_deref(),
                    roles,
                    language: language_of,
                };
                accounts::add(store, &tenant, &new, &by, now)
                    .map(|(a, secret)| (format!("{} ({})", a.name, a.id), Some(link(secret))))
            }
            "roles" => accounts::set_roles(store, &tenant, &id, &roles, &by, now)
                .map(|a| (format!("{}: {}", a.id, a.roles_text()), None)),
            "disable" => {
                accounts::disable(store, &tenant, &id, &by, now).map(|_| (id.clone(), None))
            }
            "link" => accounts::new_signup_link(store, &tenant, &id, &by, now)
                .map(|secret| (id.clone(), Some(link(secret)))),
            _ => Err(accounts::AccountError::BadText(
                "unknown operation".to_owned(),
            )),
        })
    })
    .await;
    let (outcome, status) = match done {
        Ok(done) => outcome(done.map_err(|e| e.to_string()), lang),
        Err(err) => return internal(lang, format!("{err:?}")),
    };
    people_page(&state, &signed, lang, Some(outcome), status).await
}

/// `GET /cockpit/keys`
pub(super) async fn keys(
    AxumState(state): AxumState<State>,
    signed: Signed,
    Query(q): Query<AdminQuery>,
) -> Response {
    let lang = language(q.lang.as_deref(), Some(signed.account()));
    if let Some(refused) = admin_only(&signed, lang) {
        return refused;
    }
    keys_page(&state, &signed, lang, None, StatusCode::OK).await
}

async fn keys_page(
    state: &State,
    signed: &Signed,
    lang: &'static str,
    outcome: Option<Value>,
    status: StatusCode,
) -> Response {
    let tenant = signed.tenant().to_owned();
    let listed = with_store(state, move |store| {
        apikeys::list(store.connection(), &tenant).map_err(ApiError::internal)
    })
    .await;
    let list = match listed {
        Ok(list) => list,
        Err(err) => return internal(lang, format!("{err:?}")),
    };
    let rows: Vec<Value> = list
        .iter()
        .map(|k| {
            context! {
                id => k.id, name => k.name, scope => k.scope.as_str(),
                created => crate::times::rfc3339(k.created_at),
                revoked => k.revoked_at.map(crate::times::rfc3339),
            }
        })
        .collect();
    render(
        status,
        lang,
        "keys.html",
        context! { frame => signed.frame(), current => "keys", rows, outcome },
    )
}

/// `POST /cockpit/keys`: create (the key is shown once) or revoke.
pub(super) async fn keys_act(
    AxumState(state): AxumState<State>,
    signed: Signed,
    headers: HeaderMap,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    let lang = language(None, Some(signed.account()));
    if let Some(refused) = refused_form(&state, &signed, &headers, &fields, lang) {
        return refused;
    }
    let tenant = signed.tenant().to_owned();
    let now = state.now().timestamp();
    let op = field(&fields, "op").unwrap_or_default().to_owned();
    let name = field(&fields, "name").unwrap_or_default().to_owned();
    let id = field(&fields, "id").unwrap_or_default().to_owned();
    let scope = match field(&fields, "scope") {
        Some("admin") => Scope::Admin,
        _ => Scope::Crm,
    };
    let done = with_store(&state, move |store| {
        Ok(match op.as_str() {
            "create" => crate::app::keys::create(store, &tenant, &name, scope, now)
                .map(|(secret, key)| (format!("{} ({})", key.name, key.id), Some(secret)))
                .map_err(|e| e.to_string()),
            "revoke" => match store.transaction(|tx| apikeys::revoke(tx, &tenant, &id, now)) {
                Ok(true) => Ok((id.clone(), None)),
                Ok(false) => Err(format!("no live key {id}")),
                Err(err) => return Err(ApiError::internal(err)),
            },
            _ => Err("unknown operation".to_owned()),
        })
    })
    .await;
    let (outcome, status) = match done {
        Ok(done) => outcome(done, lang),
        Err(err) => return internal(lang, format!("{err:?}")),
    };
    keys_page(&state, &signed, lang, Some(outcome), status).await
}

/// `GET /cockpit/setup`: the webhook and the purposes.
pub(super) async fn setup(
    AxumState(state): AxumState<State>,
    signed: Signed,
    Query(q): Query<AdminQuery>,
) -> Response {
    let lang = language(q.lang.as_deref(), Some(signed.account()));
    if let Some(refused) = admin_only(&signed, lang) {
        return refused;
    }
    setup_page(&state, &signed, lang, None, StatusCode::OK).await
}

async fn setup_page(
    state: &State,
    signed: &Signed,
    lang: &'static str,
    outcome: Option<Value>,
    status: StatusCode,
) -> Response {
    let tenant = signed.tenant().to_owned();
    let found = with_store(state, move |store| {
        let conn = store.connection();
        let webhook = crate::store::webhooks::get(conn, &tenant)
            .map_err(ApiError::internal)?
            .map(|w| w.url);
        let purposes =
            crate::store::tenants::purposes(conn, &tenant).map_err(ApiError::internal)?;
        Ok((webhook, purposes))
    })
    .await;
    let (webhook, purposes) = match found {
        Ok(found) => found,
        Err(err) => return internal(lang, format!("{err:?}")),
    };
    let purposes: Vec<Value> = purposes
        .into_iter()
        .map(|(id, description)| context! { id, description })
        .collect();
    render(
        status,
        lang,
        "setup.html",
        context! { frame => signed.frame(), current => "setup", webhook, purposes, outcome },
    )
}

/// `POST /cockpit/setup`: set or remove the webhook, add a purpose.
pub(super) async fn setup_act(
    AxumState(state): AxumState<State>,
    signed: Signed,
    headers: HeaderMap,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    let lang = language(None, Some(signed.account()));
    if let Some(refused) = refused_form(&state, &signed, &headers, &fields, lang) {
        return refused;
    }
    let tenant = signed.tenant().to_owned();
    let now = state.now().timestamp();
    let op = field(&fields, "op").unwrap_or_default().to_owned();
    let url = field(&fields, "url").unwrap_or_default().trim().to_owned();
    let id = field(&fields, "id").unwrap_or_default().trim().to_owned();
    let description = field(&fields, "description")
        .unwrap_or_default()
        .trim()
        .to_owned();
    let targets = state.targets.clone();
    let done = with_store(&state, move |store| {
        Ok(match op.as_str() {
            "webhook" => crate::app::webhook::set(store, &targets, &tenant, &url, now)
                .map(|secret| (url.clone(), Some(secret)))
                .map_err(|e| e.to_string()),
            "remove-webhook" => store
                .transaction(|tx| crate::store::webhooks::remove(tx, &tenant))
                .map(|_| (String::new(), None))
                .map_err(|e| e.to_string()),
            "purpose" => {
                if let Err(why) = crate::app::text::one_line("the description", &description, 500) {
                    Err(why)
                } else {
                    store
                        .transaction(|tx| {
                            crate::store::tenants::add_purpose(tx, &tenant, &id, &description, now)
                        })
                        .map(|()| (id.clone(), None))
                        .map_err(|e| e.to_string())
                }
            }
            _ => Err("unknown operation".to_owned()),
        })
    })
    .await;
    let (outcome, status) = match done {
        Ok(done) => outcome(done, lang),
        Err(err) => return internal(lang, format!("{err:?}")),
    };
    setup_page(&state, &signed, lang, Some(outcome), status).await
}
