//! The team's cockpit (`/cockpit/…`): server-rendered pages for the people
//! who must act — sign-up and sign-in, the overview, the queue, each case
//! with its proof, and a person's settings. It is the third face on the
//! application layer: every action goes through `app::cockpit`, which goes
//! through the same events as the CLI and the API.
//!
//! Security: a session is an HttpOnly, SameSite=Strict cookie (Secure under
//! an https `public_url`) that ends when idle and absolutely; every form
//! that changes something carries the session's CSRF token and must come
//! from our own origin; pages send a strict CSP (no inline script or
//! style, nothing from elsewhere).

mod admin;
mod auth;
mod case;
mod charts;
mod lists;
mod policy;
mod texts;

use std::sync::OnceLock;

use axum::Router;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use minijinja::{Environment, Value, context};

use super::{State, with_store};
use crate::app::accounts::{self, LiveSession};

/// The session cookie's name.
const COOKIE: &str = "klar_session";

pub(super) fn routes() -> Router<State> {
    Router::new()
        .route("/cockpit", get(|| async { Redirect::to("/cockpit/queue") }))
        .route(
            "/cockpit/",
            get(|| async { Redirect::to("/cockpit/queue") }),
        )
        .route("/cockpit/login", get(auth::login_page).post(auth::login))
        .route("/cockpit/logout", post(auth::logout))
        .route(
            "/cockpit/signup/{secret}",
            get(auth::signup_page).post(auth::signup),
        )
        .route(
            "/cockpit/settings",
            get(auth::settings_page).post(auth::settings),
        )
        .route("/cockpit/overview", get(lists::overview))
        .route("/cockpit/queue", get(lists::queue).post(lists::bulk))
        .route("/cockpit/queue.csv", get(lists::export))
        .route("/cockpit/case/{contact}", get(case::show))
        .route("/cockpit/case/{contact}/act", post(case::act))
        .route("/cockpit/case/{contact}/proof", get(case::proof))
        .route("/cockpit/case/{contact}/bundle.json", get(case::bundle))
        .route("/cockpit/policy", get(policy::show).post(policy::act))
        .route(
            "/cockpit/people",
            get(admin::people).post(admin::people_act),
        )
        .route("/cockpit/keys", get(admin::keys).post(admin::keys_act))
        .route("/cockpit/setup", get(admin::setup).post(admin::setup_act))
        .route("/cockpit/static/klar.css", get(css))
        .route("/cockpit/static/klar.js", get(js))
}

async fn css() -> Response {
    static_file(
        "text/css; charset=utf-8",
        include_str!("../../../templates/cockpit/klar.css"),
    )
}

async fn js() -> Response {
    static_file(
        "text/javascript; charset=utf-8",
        include_str!("../../../templates/cockpit/klar.js"),
    )
}

fn static_file(kind: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "public, max-age=3600"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
        .into_response()
}

/// Each template's name with its text, compiled in: the name is the file's.
macro_rules! templates {
    ($($name:literal),* $(,)?) => {
        &[$(($name, include_str!(concat!("../../../templates/cockpit/", $name)))),*]
    };
}

const TEMPLATES: &[(&str, &str)] = templates!(
    "base.html",
    "login.html",
    "signup.html",
    "message.html",
    "settings.html",
    "overview.html",
    "queue.html",
    "case.html",
    "proof.html",
    "policy.html",
    "people.html",
    "keys.html",
    "setup.html",
);

fn env() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        for (name, source) in TEMPLATES {
            if let Err(err) = env.add_template(name, source) {
                tracing::error!("cockpit template {name}: {err}");
            }
        }
        env.add_filter("word", |lang: &str, key: &str| texts::word(lang, key));
        env
    })
}

/// The headers of every cockpit page.
fn security_headers() -> [(header::HeaderName, HeaderValue); 5] {
    [
        (
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; \
                 form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
            ),
        ),
        (
            header::REFERRER_POLICY,
            HeaderValue::from_static("same-origin"),
        ),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
        (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
    ]
}

/// Renders a page; `ctx` is merged with the words of `lang` (`t`).
fn render(status: StatusCode, lang: &str, name: &str, ctx: Value) -> Response {
    let words = texts::words(lang);
    let full = context! { lang, t => words, ..ctx };
    match env().get_template(name).and_then(|tpl| tpl.render(full)) {
        Ok(html) => (status, security_headers(), Html(html)).into_response(),
        Err(err) => {
            tracing::error!("cockpit page {name}: {err:#}");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                security_headers(),
                Html("<!doctype html><title>klar</title><p>Interner Fehler / internal error</p>"),
            )
                .into_response()
        }
    }
}

/// A page with a heading and a sentence (errors, refusals, confirmations).
fn message(status: StatusCode, lang: &str, heading_key: &str, text_key: &str) -> Response {
    render(
        status,
        lang,
        "message.html",
        context! { heading => texts::word(lang, heading_key), text => texts::word(lang, text_key) },
    )
}

fn internal(lang: &str, err: impl std::fmt::Display) -> Response {
    tracing::error!("cockpit: {err}");
    message(
        StatusCode::INTERNAL_SERVER_ERROR,
        lang,
        "error",
        "error_text",
    )
}

/// The language of a page: `?lang=` if given, else the account's.
fn language(
    asked: Option<&str>,
    account: Option<&crate::store::accounts::Account>,
) -> &'static str {
    match asked.or(account.map(|a| a.language.as_str())) {
        Some("en") => "en",
        _ => "de",
    }
}

/// The signed-in person of a request. Without a live session, a page
/// request is sent to the sign-in page.
pub(super) struct Signed {
    pub session: LiveSession,
}

impl Signed {
    fn account(&self) -> &crate::store::accounts::Account {
        &self.session.account
    }

    fn tenant(&self) -> &str {
        &self.session.account.tenant
    }

    /// What every page's frame needs: who is signed in, the CSRF token for
    /// the sign-out form, and which links to offer.
    fn frame(&self) -> Value {
        let a = self.account();
        context! {
            me => context! {
                id => a.id, name => a.name, tenant => a.tenant,
                roles => a.roles.iter().map(|r| r.as_str()).collect::<Vec<_>>(),
            },
            csrf => self.session.csrf,
        }
    }
}

impl FromRequestParts<State> for Signed {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &State) -> Result<Signed, Response> {
        let to_login = || Redirect::to("/cockpit/login?expired=1").into_response();
        let Some(secret) = super::page::cookie(&parts.headers, COOKIE) else {
            return Err(Redirect::to("/cockpit/login").into_response());
        };
        let now = state.now().timestamp();
        let found = with_store(state, move |store| {
            accounts::session(store, &secret, now).map_err(super::ApiError::internal)
        })
        .await;
        match found {
            Ok(Some(session)) => Ok(Signed { session }),
            Ok(None) => Err(to_login()),
            Err(err) => Err(internal("de", format!("{err:?}"))),
        }
    }
}

/// Whether a state-changing form must be refused: unless it carries the
/// session's CSRF token and comes from our own origin, the answer is a 403
/// page and nothing is recorded.
fn form_refused(
    state: &State,
    headers: &HeaderMap,
    session: &LiveSession,
    token: Option<&str>,
) -> Option<Response> {
    let token_ok = token.is_some_and(|t| constant_time_eq(t.as_bytes(), session.csrf.as_bytes()));
    if token_ok && super::page::same_origin(headers, &state.public_url) {
        None
    } else {
        let lang = language(None, Some(&session.account));
        Some(message(
            StatusCode::FORBIDDEN,
            lang,
            "forbidden",
            "forbidden_csrf",
        ))
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The one value of a form field (the last, if repeated).
fn field<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
    fields
        .iter()
        .rev()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// The session cookie: set, or cleared with `None`.
fn session_cookie(state: &State, secret: Option<&str>) -> HeaderValue {
    let secure = if state.public_url.starts_with("https://") {
        "; Secure"
    } else {
        ""
    };
    let text = match secret {
        Some(secret) => format!(
            "{COOKIE}={secret}; Path=/cockpit; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
            accounts::ABSOLUTE_SECONDS
        ),
        None => format!("{COOKIE}=; Path=/cockpit; HttpOnly; SameSite=Strict; Max-Age=0{secure}"),
    };
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_template_parses() {
        let env = super::env();
        for (name, _) in super::TEMPLATES {
            assert!(env.get_template(name).is_ok(), "{name}");
        }
    }
}
