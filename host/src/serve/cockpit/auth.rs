//! Sign-up through the one-time link, sign-in, sign-out, and a person's
//! own settings.

use std::net::SocketAddr;

use axum::Form;
use axum::extract::{ConnectInfo, Path, Query, State as AxumState};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use minijinja::context;
use serde::Deserialize;

use super::{Signed, field, form_refused, internal, language, message, render, session_cookie};
use crate::app::accounts::{self, SignInError, SignupError, SignupFailure};
use crate::serve::{ApiError, State, with_store};

#[derive(Debug, Deserialize, Default)]
pub(super) struct PageQuery {
    lang: Option<String>,
    expired: Option<String>,
    out: Option<String>,
    saved: Option<String>,
}

/// `GET /cockpit/login`
pub(super) async fn login_page(Query(q): Query<PageQuery>) -> Response {
    let lang = language(q.lang.as_deref(), None);
    let note = if q.expired.is_some() {
        Some(super::texts::word(lang, "expired"))
    } else if q.out.is_some() {
        Some(super::texts::word(lang, "signed_out"))
    } else {
        None
    };
    render(
        StatusCode::OK,
        lang,
        "login.html",
        context! { note, tenant => "", account => "" },
    )
}

/// `POST /cockpit/login`
pub(super) async fn login(
    AxumState(state): AxumState<State>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Query(q): Query<PageQuery>,
    headers: HeaderMap,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    let lang = language(q.lang.as_deref(), None);
    // The sign-in form has no session yet; the origin check keeps other
    // sites from signing a browser in to an account of theirs.
    if !crate::serve::page::same_origin(&headers, &state.public_url) {
        return message(StatusCode::FORBIDDEN, lang, "forbidden", "forbidden_csrf");
    }
    let tenant = field(&fields, "tenant")
        .unwrap_or_default()
        .trim()
        .to_owned();
    let account = field(&fields, "account")
        .unwrap_or_default()
        .trim()
        .to_owned();
    let password = field(&fields, "password").unwrap_or_default().to_owned();
    let now = state.now().timestamp();
    let address = peer.ip().to_string();
    let (t, a) = (tenant.clone(), account.clone());
    let result = with_store(&state, move |store| {
        Ok(accounts::sign_in(store, (&t, &a, &password), &address, now))
    })
    .await;
    let failed = |key: &str, status: StatusCode| {
        render(
            status,
            lang,
            "login.html",
            context! { error => super::texts::word(lang, key), tenant, account },
        )
    };
    match result {
        Ok(Ok(session)) => {
            let mut response = Redirect::to("/cockpit/queue").into_response();
            response.headers_mut().insert(
                header::SET_COOKIE,
                session_cookie(&state, Some(&session.secret)),
            );
            response
        }
        Ok(Err(SignInError::Wrong)) => failed("login_wrong", StatusCode::UNAUTHORIZED),
        Ok(Err(SignInError::Blocked(_))) => {
            let mut response = failed("login_blocked", StatusCode::TOO_MANY_REQUESTS);
            response.headers_mut().insert(
                header::RETRY_AFTER,
                axum::http::HeaderValue::from(accounts::THROTTLE_WINDOW_SECONDS),
            );
            response
        }
        Ok(Err(err)) => internal(lang, err),
        Err(err) => internal(lang, format!("{err:?}")),
    }
}

/// `POST /cockpit/logout`
pub(super) async fn logout(
    AxumState(state): AxumState<State>,
    signed: Signed,
    headers: HeaderMap,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    if let Some(refused) = form_refused(&state, &headers, &signed.session, field(&fields, "csrf")) {
        return refused;
    }
    let now = state.now().timestamp();
    let session = signed.session.clone();
    if let Err(err) = with_store(&state, move |store| {
        accounts::sign_out(store, &session, now).map_err(ApiError::internal)
    })
    .await
    {
        return internal("de", format!("{err:?}"));
    }
    let mut response = Redirect::to("/cockpit/login?out=1").into_response();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, session_cookie(&state, None));
    response
}

/// `GET /cockpit/signup/{secret}`
pub(super) async fn signup_page(
    AxumState(state): AxumState<State>,
    Path(secret): Path<String>,
    Query(q): Query<PageQuery>,
) -> Response {
    let now = state.now().timestamp();
    let found = with_store(&state, move |store| {
        Ok(accounts::signup_account(store.connection(), &secret, now))
    })
    .await;
    match found {
        Ok(Ok(account)) => {
            let lang = language(q.lang.as_deref(), Some(&account));
            render(
                StatusCode::OK,
                lang,
                "signup.html",
                context! { who => account.name, id => account.id, tenant => account.tenant },
            )
        }
        Ok(Err(_)) => message(
            StatusCode::NOT_FOUND,
            language(q.lang.as_deref(), None),
            "signup_title",
            "signup_invalid",
        ),
        Err(err) => internal("de", format!("{err:?}")),
    }
}

/// `POST /cockpit/signup/{secret}`
pub(super) async fn signup(
    AxumState(state): AxumState<State>,
    Path(secret): Path<String>,
    Query(q): Query<PageQuery>,
    headers: HeaderMap,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    let lang = language(q.lang.as_deref(), None);
    if !crate::serve::page::same_origin(&headers, &state.public_url) {
        return message(StatusCode::FORBIDDEN, lang, "forbidden", "forbidden_csrf");
    }
    let password = field(&fields, "password").unwrap_or_default().to_owned();
    let repeated = field(&fields, "password2").unwrap_or_default().to_owned();
    let now = state.now().timestamp();
    let link = secret.clone();
    let result = with_store(&state, move |store| {
        Ok(
            match accounts::sign_up(store, &link, (&password, &repeated), now) {
                Ok(account) => Ok(account),
                Err(SignupFailure::Refused(why)) => {
                    let account = accounts::signup_account(store.connection(), &link, now).ok();
                    Err((why, account))
                }
                Err(SignupFailure::Store(err)) => return Err(ApiError::internal(err)),
            },
        )
    })
    .await;
    match result {
        Ok(Ok(account)) => {
            let lang = language(q.lang.as_deref(), Some(&account));
            message(StatusCode::OK, lang, "signup_title", "signup_done")
        }
        Ok(Err((why @ (SignupError::Mismatch | SignupError::BadPassword), Some(account)))) => {
            let lang = language(q.lang.as_deref(), Some(&account));
            let key = if why == SignupError::Mismatch {
                "signup_mismatch"
            } else {
                "signup_short"
            };
            render(
                StatusCode::UNPROCESSABLE_ENTITY,
                lang,
                "signup.html",
                context! {
                    who => account.name, id => account.id, tenant => account.tenant,
                    error => super::texts::word(lang, key),
                },
            )
        }
        Ok(Err(_)) => message(
            StatusCode::NOT_FOUND,
            lang,
            "signup_title",
            "signup_invalid",
        ),
        Err(err) => internal(lang, format!("{err:?}")),
    }
}

/// `GET /cockpit/settings`
pub(super) async fn settings_page(signed: Signed, Query(q): Query<PageQuery>) -> Response {
    let a = signed.account();
    let lang = language(q.lang.as_deref(), Some(a));
    render(
        StatusCode::OK,
        lang,
        "settings.html",
        context! {
            frame => signed.frame(),
            current => "settings",
            language => a.language, digest => a.digest, email => a.email,
            saved => q.saved.is_some(),
        },
    )
}

/// `POST /cockpit/settings`
pub(super) async fn settings(
    AxumState(state): AxumState<State>,
    signed: Signed,
    headers: HeaderMap,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    if let Some(refused) = form_refused(&state, &headers, &signed.session, field(&fields, "csrf")) {
        return refused;
    }
    let language = match field(&fields, "language") {
        Some("en") => "en",
        _ => "de",
    };
    let digest = field(&fields, "digest") == Some("on");
    let account = signed.account().clone();
    let now = state.now().timestamp();
    match with_store(&state, move |store| {
        accounts::set_preferences(store, &account, (language, digest), now)
            .map_err(ApiError::internal)
    })
    .await
    {
        Ok(()) => Redirect::to("/cockpit/settings?saved=1").into_response(),
        Err(err) => internal(language, format!("{err:?}")),
    }
}
