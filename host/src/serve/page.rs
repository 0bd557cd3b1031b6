//! The contacts' response page: `GET /r/{token}` shows the company, the
//! purpose, the consent text the request named and two buttons; `POST`
//! records the answer through [`crate::app::respond`] with the IP and user agent as
//! evidence. A link whose message asks about several purposes shows each
//! purpose with its own text and choice, and "all yes" / "all no" buttons;
//! each answer becomes evidence for its own case and text version. German
//! and English (Accept-Language, `?lang=` to switch). No script, no external
//! assets.
//!
//! An unknown, used or expired link gets the same friendly page with the same
//! status, so the page reveals nothing about whether a link ever existed.
//! CSRF: a random value in a `SameSite=Strict` cookie (`Secure` when
//! `public_url` is https) and in the form must match (double submit), and a
//! browser's `Origin` (else its `Referer`) must be klar's `public_url`: a
//! cross-site form that forged a matching pair is still refused. A request
//! with neither header comes from no browser, which could not carry the
//! contact's cookie anyway.

use std::net::SocketAddr;

use axum::Form;
use axum::Router;
use axum::extract::rejection::FormRejection;
use axum::extract::{ConnectInfo, Path, Query, State as AxumState};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use minijinja::{Environment, context};
use rand::RngExt;
use serde::Deserialize;

use super::{ApiError, State, with_store};
use crate::app::respond::{self, Origin, RespondError};
use crate::plugin::Answer;
use crate::store::tokens::{self, TokenError};
use crate::store::{tenants, texts};

pub(super) fn routes() -> Router<State> {
    Router::new().route("/r/{token}", get(show).post(answer))
}

pub(super) const CSRF_COOKIE: &str = "klar_csrf";

struct Texts {
    title: &'static str,
    heading: &'static str,
    intro: &'static str,
    purpose: &'static str,
    version: &'static str,
    question: &'static str,
    accept: &'static str,
    refuse: &'static str,
    language: &'static str,
    switch: &'static str,
    invalid_heading: &'static str,
    invalid_body: &'static str,
    stale_heading: &'static str,
    stale_body: &'static str,
    thanks_accept_heading: &'static str,
    thanks_accept_body: &'static str,
    thanks_refuse_heading: &'static str,
    thanks_refuse_body: &'static str,
    not_now_heading: &'static str,
    several: &'static str,
    accept_all: &'static str,
    refuse_all: &'static str,
    save_each: &'static str,
    thanks_mixed_heading: &'static str,
    thanks_mixed_body: &'static str,
    imprint: &'static str,
    privacy: &'static str,
    legal: &'static str,
    personal_intro: &'static str,
    personal_label: &'static str,
}

const DE: Texts = Texts {
    title: "Ihre Einwilligung",
    heading: "Dürfen wir Ihre Daten weiter verwenden?",
    intro: "Diese Anfrage kommt von",
    purpose: "Zweck:",
    version: "Text in Fassung",
    question: "Ihre Antwort",
    accept: "Ja, ich bin einverstanden",
    refuse: "Nein, ich bin nicht einverstanden",
    language: "Sprache",
    switch: "English",
    invalid_heading: "Dieser Link ist nicht gültig",
    invalid_body: "Der Link ist unbekannt, abgelaufen oder wurde bereits verwendet. Wenn Sie Fragen haben, wenden Sie sich bitte direkt an das Unternehmen, das Ihnen geschrieben hat.",
    stale_heading: "Bitte laden Sie die Seite neu",
    stale_body: "Ihre Antwort konnte nicht zugeordnet werden. Bitte öffnen Sie den Link aus Ihrer Nachricht noch einmal und antworten Sie dort.",
    thanks_accept_heading: "Vielen Dank",
    thanks_accept_body: "Ihre Einwilligung ist gespeichert. Sie können sie jederzeit mit Wirkung für die Zukunft widerrufen.",
    thanks_refuse_heading: "Ihre Antwort ist gespeichert",
    thanks_refuse_body: "Wir verwenden Ihre Daten für diesen Zweck nicht mehr.",
    not_now_heading: "Ihre Antwort konnte nicht gespeichert werden",
    several: "Wir fragen nach mehreren Zwecken. Sie können jedem einzeln zustimmen oder ihn ablehnen, oder allen auf einmal antworten.",
    accept_all: "Allen Zwecken zustimmen",
    refuse_all: "Alle Zwecke ablehnen",
    save_each: "Meine Auswahl speichern",
    thanks_mixed_heading: "Ihre Antworten sind gespeichert",
    thanks_mixed_body: "Vielen Dank. Eine Einwilligung können Sie jederzeit mit Wirkung für die Zukunft widerrufen; Zwecke, die Sie abgelehnt haben, verfolgen wir nicht weiter.",
    imprint: "Impressum",
    privacy: "Datenschutzhinweise",
    legal: "Angaben zum Unternehmen",
    personal_intro: "Über Ihren persönlichen Link können Sie Ihre Antwort jederzeit ändern, auch später noch: eine Einwilligung widerrufen oder doch noch einwilligen. Bitte bewahren Sie ihn auf; wir schicken ihn Ihnen auch mit der Bestätigung.",
    personal_label: "Meine Einwilligungen ansehen und ändern",
};

const EN: Texts = Texts {
    title: "Your consent",
    heading: "May we keep using your data?",
    intro: "This request comes from",
    purpose: "Purpose:",
    version: "Text version",
    question: "Your answer",
    accept: "Yes, I agree",
    refuse: "No, I do not agree",
    language: "Language",
    switch: "Deutsch",
    invalid_heading: "This link is not valid",
    invalid_body: "The link is unknown, has expired or has already been used. If you have questions, please contact the company that wrote to you directly.",
    stale_heading: "Please reload the page",
    stale_body: "Your answer could not be matched. Please open the link from your message again and answer there.",
    thanks_accept_heading: "Thank you",
    thanks_accept_body: "Your consent is recorded. You can withdraw it at any time with effect for the future.",
    thanks_refuse_heading: "Your answer is recorded",
    thanks_refuse_body: "We no longer use your data for this purpose.",
    not_now_heading: "Your answer could not be recorded",
    several: "We are asking about several purposes. You can agree to or decline each of them, or answer all of them at once.",
    accept_all: "Agree to all purposes",
    refuse_all: "Decline all purposes",
    save_each: "Save my choices",
    thanks_mixed_heading: "Your answers are recorded",
    thanks_mixed_body: "Thank you. You can withdraw a consent at any time with effect for the future; we no longer pursue the purposes you declined.",
    imprint: "Legal notice",
    privacy: "Privacy notice",
    legal: "About the company",
    personal_intro: "Through your personal link you can change your answer at any time, later too: withdraw a consent or agree after all. Please keep it; we also send it to you with the confirmation.",
    personal_label: "See and change my consents",
};

#[derive(Debug, Deserialize)]
pub(super) struct LangQuery {
    lang: Option<String>,
}

/// `?lang=` wins; then the first German or English Accept-Language entry;
/// `None` if neither says (the link's own language applies then).
pub(super) fn asked_language(query: &LangQuery, headers: &HeaderMap) -> Option<&'static str> {
    if let Some(l) = &query.lang {
        return Some(if l.starts_with("en") { "en" } else { "de" });
    }
    let accept = headers
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    for part in accept.split(',') {
        let tag = part
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        if tag.starts_with("de") {
            return Some("de");
        }
        if tag.starts_with("en") {
            return Some("en");
        }
    }
    None
}

pub(super) fn language(query: &LangQuery, headers: &HeaderMap) -> &'static str {
    asked_language(query, headers).unwrap_or("de")
}

fn texts(lang: &str) -> &'static Texts {
    if lang == "en" { &EN } else { &DE }
}

/// klar's own response page, which a tenant's replaces.
pub(crate) const RESPONSE_HTML: &str = include_str!("../../templates/response.html");

pub(super) fn env() -> Environment<'static> {
    let mut env = Environment::new();
    // Templates are part of the binary; a broken one is a build-time mistake
    // caught by the page tests.
    let _ = env.add_template("response.html", RESPONSE_HTML);
    let _ = env.add_template("message.html", include_str!("../../templates/message.html"));
    let _ = env.add_template(
        "personal.html",
        include_str!("../../templates/personal.html"),
    );
    env
}

pub(super) fn message(status: StatusCode, lang: &str, heading: &str, body: &str) -> Response {
    message_with_link(status, lang, (heading, body), None)
}

/// A message page with a link under it: (its introduction, its label, the
/// URL).
pub(super) fn message_with_link(
    status: StatusCode,
    lang: &str,
    (heading, body): (&str, &str),
    link: Option<(&str, &str, &str)>,
) -> Response {
    let (link_intro, link_label, link) = link.unwrap_or_default();
    let link = crate::delivery::mail::url_value(link);
    let html = env()
        .get_template("message.html")
        .and_then(|t| t.render(context! { lang, heading, body, link_intro, link_label, link }))
        .unwrap_or_else(|e| format!("<!doctype html><title>klar</title><p>{e}</p>"));
    (status, security_headers(), Html(html)).into_response()
}

pub(super) fn security_headers() -> [(header::HeaderName, HeaderValue); 4] {
    [
        (
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
            ),
        ),
        (
            header::REFERRER_POLICY,
            // Not `no-referrer`: under it a browser sends `Origin: null` with
            // the form, and the origin check below could not tell our form
            // from a forged one. Other sites still never see the link.
            HeaderValue::from_static("same-origin"),
        ),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
    ]
}

pub(super) fn invalid(lang: &str) -> Response {
    let t = texts(lang);
    message(
        StatusCode::NOT_FOUND,
        lang,
        t.invalid_heading,
        t.invalid_body,
    )
}

/// One purpose the link asks about, as the page shows it.
#[derive(Debug, serde::Serialize)]
pub(crate) struct Item {
    /// The purpose's id (the form's field names).
    pub id: String,
    /// The purpose as the contact reads it.
    pub purpose: String,
    pub text: String,
    /// The text's language, which may differ from the page's.
    pub lang: String,
    pub version: i64,
    pub sha_short: String,
}

impl Item {
    pub(crate) fn new(id: &str, purpose: String, text: &crate::store::texts::ConsentText) -> Item {
        Item {
            id: id.to_owned(),
            purpose,
            sha_short: text.sha256.get(..12).unwrap_or_default().to_owned(),
            text: text.body.clone(),
            lang: text.language.clone(),
            version: text.version,
        }
    }
}

/// The response page for a link's open requests, in `lang`: what `GET
/// /r/TOKEN` shows and `klar text preview` writes to a file.
pub(crate) fn response_html(
    lang: &str,
    (tenant, own): (&crate::store::tenants::Tenant, Option<&str>),
    items: &[Item],
    (token, csrf): (&str, &str),
) -> Result<String, minijinja::Error> {
    let t = texts(lang);
    let mut env = env();
    // The tenant's own page (checked when it was set), else klar's.
    if let Some(own) = own {
        env.add_template_owned("response.html", own.to_owned())?;
    }
    env.get_template("response.html").and_then(|tpl| {
        tpl.render(context! {
            lang,
            other_lang => if lang == "de" { "en" } else { "de" },
            company => tenant.name,
            footer => crate::app::settings::footer(tenant, lang),
            items,
            token,
            csrf,
            t => context! {
                title => t.title, heading => t.heading, intro => t.intro, purpose => t.purpose,
                version => t.version, question => t.question, accept => t.accept,
                refuse => t.refuse, language => t.language, switch => t.switch,
                several => t.several, accept_all => t.accept_all, refuse_all => t.refuse_all,
                save_each => t.save_each, imprint => t.imprint, privacy => t.privacy,
                legal => t.legal,
            },
        })
    })
}

/// `GET /r/{token}`
async fn show(
    AxumState(state): AxumState<State>,
    Path(token): Path<String>,
    Query(query): Query<LangQuery>,
    headers: HeaderMap,
) -> Response {
    let asked = asked_language(&query, &headers);
    let now = state.now().timestamp();
    let secret = token.clone();
    let found = with_store(&state, move |store| {
        let conn = store.connection();
        let Ok(open) = tokens::redeemable(conn, &secret, now) else {
            return Ok(None);
        };
        let Some(first) = open.first() else {
            return Ok(None);
        };
        let tenant = tenants::require(conn, &first.tenant).map_err(ApiError::internal)?;
        // Without a wish from the browser, the page speaks the language the
        // request was sent in.
        let lang = asked.unwrap_or_else(|| texts::language_for(&first.language));
        let purposes = tenants::purposes(conn, &first.tenant).map_err(ApiError::internal)?;
        let mut items = Vec::with_capacity(open.len());
        for t in &open {
            let purpose = purposes
                .iter()
                .find(|(id, _)| id == &t.purpose)
                .map_or_else(
                    || t.purpose.clone(),
                    |(id, d)| tenants::purpose_in(id, d, lang),
                );
            let Some(text) = texts::get(conn, &t.tenant, &t.purpose, t.text_version, &t.language)
                .map_err(ApiError::internal)?
            else {
                return Ok(None);
            };
            items.push(Item::new(&t.purpose, purpose, &text));
        }
        let own = crate::store::templates::get(conn, &tenant.id, "response.html")
            .map_err(ApiError::internal)?
            .map(|t| t.source);
        // The overview's funnel counts opened links.
        let ids: Vec<String> = open.iter().map(|t| t.id.clone()).collect();
        store
            .transaction(|tx| tokens::opened(tx, &ids, now))
            .map_err(ApiError::internal)?;
        Ok(Some((lang, (tenant, own), items)))
    })
    .await;
    let (lang, tenant, items) = match found {
        Ok(Some(found)) => found,
        Ok(None) => return invalid(asked.unwrap_or("de")),
        Err(err) => return err.into_response(),
    };
    let csrf = crate::hex(&rand::rng().random::<[u8; 16]>());
    let html = response_html(
        lang,
        (&tenant.0, tenant.1.as_deref()),
        &items,
        (&token, &csrf),
    );
    with_csrf_cookie(&state, "/r/", &csrf, html)
}

/// A page with a form: the HTML, and the CSRF value its form carries in a
/// cookie for `path` (see the module comment).
pub(super) fn with_csrf_cookie(
    state: &State,
    path: &str,
    csrf: &str,
    html: Result<String, minijinja::Error>,
) -> Response {
    match html {
        Ok(html) => {
            let secure = if state.public_url.starts_with("https://") {
                "; Secure"
            } else {
                ""
            };
            let cookie =
                format!("{CSRF_COOKIE}={csrf}; Path={path}; HttpOnly; SameSite=Strict{secure}");
            let mut response = (StatusCode::OK, security_headers(), Html(html)).into_response();
            if let Ok(value) = HeaderValue::from_str(&cookie) {
                response.headers_mut().insert(header::SET_COOKIE, value);
            }
            response
        }
        Err(err) => ApiError::internal(err).into_response(),
    }
}

/// The form's fields: `csrf`, `answer` (`accept` or `refuse` for every
/// purpose, `each` for the choices), and `answer.PURPOSE` per purpose.
#[derive(Debug, Default)]
struct AnswerForm {
    answer: String,
    csrf: String,
    each: Vec<(String, String)>,
}

impl AnswerForm {
    fn from_fields(fields: Vec<(String, String)>) -> AnswerForm {
        let mut form = AnswerForm::default();
        for (key, value) in fields {
            match key.as_str() {
                "answer" => form.answer = value,
                "csrf" => form.csrf = value,
                _ => {
                    if let Some(purpose) = key.strip_prefix("answer.") {
                        form.each.push((purpose.to_owned(), value));
                    }
                }
            }
        }
        form
    }

    /// What the contact chose; none for a form that is not ours.
    fn choice(&self) -> Option<respond::Choice> {
        let one = |v: &str| match v {
            "accept" => Some(Answer::Accept),
            "refuse" => Some(Answer::Refuse),
            _ => None,
        };
        match self.answer.as_str() {
            "each" => self
                .each
                .iter()
                .filter(|(_, v)| !v.is_empty())
                .map(|(p, v)| one(v).map(|a| (p.clone(), a)))
                .collect::<Option<Vec<_>>>()
                .filter(|list| !list.is_empty())
                .map(respond::Choice::Each),
            other => one(other).map(respond::Choice::All),
        }
    }
}

/// Whether the browser says the form came from klar's own page: its
/// `Origin`, else its `Referer`, is `public_url`'s origin. Neither header:
/// no browser sent it (see the module comment).
pub(super) fn same_origin(headers: &HeaderMap, public_url: &str) -> bool {
    let ours = origin_of(public_url);
    let header_text = |name| headers.get(name).map(|v| v.to_str().unwrap_or("null"));
    if let Some(origin) = header_text(header::ORIGIN) {
        return origin_of(origin) == ours && !ours.is_empty();
    }
    if let Some(referer) = header_text(header::REFERER) {
        return origin_of(referer) == ours && !ours.is_empty();
    }
    true
}

/// `scheme://host[:port]` of a URL, in lower case; empty if it has none.
fn origin_of(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return String::new();
    };
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    format!("{scheme}://{host}").to_ascii_lowercase()
}

pub(super) fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

/// `POST /r/{token}`
async fn answer(
    AxumState(state): AxumState<State>,
    Path(token): Path<String>,
    Query(query): Query<LangQuery>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    fields: Result<Form<Vec<(String, String)>>, FormRejection>,
) -> Response {
    // A body that is no form at all (another content type, bad encoding) has
    // no CSRF field either: the person gets the friendly page below, not the
    // form parser's plain-text error.
    let fields = fields.map(|Form(f)| f).unwrap_or_default();
    let form = AnswerForm::from_fields(fields);
    let lang = language(&query, &headers);
    let t = texts(lang);
    let same = cookie(&headers, CSRF_COOKIE).is_some_and(|c| !c.is_empty() && c == form.csrf);
    if !same || !same_origin(&headers, &state.public_url) {
        return message(StatusCode::FORBIDDEN, lang, t.stale_heading, t.stale_body);
    }
    let Some(choice) = form.choice() else {
        return message(StatusCode::BAD_REQUEST, lang, t.stale_heading, t.stale_body);
    };
    // (some accepted, some refused): which thanks the page says.
    let answers = match &choice {
        respond::Choice::All(a) => (*a == Answer::Accept, *a == Answer::Refuse),
        respond::Choice::Each(list) => (
            list.iter().any(|(_, a)| *a == Answer::Accept),
            list.iter().any(|(_, a)| *a == Answer::Refuse),
        ),
    };
    let origin = Origin {
        ip: Some(peer.ip()),
        user_agent: headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
    };
    let now = state.now();
    let shared = std::sync::Arc::clone(&state);
    let result = with_store(&state, move |store| {
        Ok(respond::respond_to(
            store,
            &shared.sessions,
            &token,
            &choice,
            &origin,
            now,
        ))
    })
    .await;
    match result {
        Ok(Ok(responded)) => {
            let (heading, body) = match answers {
                (true, false) => (t.thanks_accept_heading, t.thanks_accept_body),
                (false, true) => (t.thanks_refuse_heading, t.thanks_refuse_body),
                _ => (t.thanks_mixed_heading, t.thanks_mixed_body),
            };
            // The way back: where the contact changes this answer later.
            let personal = format!("{}/p/{}", state.public_url, responded.personal);
            let link = (!responded.personal.is_empty()).then_some((
                t.personal_intro,
                t.personal_label,
                personal.as_str(),
            ));
            message_with_link(StatusCode::OK, lang, (heading, body), link)
        }
        Ok(Err(RespondError::Token(
            TokenError::Unknown | TokenError::Used | TokenError::Expired,
        ))) => invalid(lang),
        Ok(Err(RespondError::Rejected(_))) => message(
            StatusCode::CONFLICT,
            lang,
            t.not_now_heading,
            t.invalid_body,
        ),
        Ok(Err(err)) => ApiError::internal(err).into_response(),
        Err(err) => err.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(name: header::HeaderName, value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(name, HeaderValue::from_str(value).expect("a header value"));
        headers
    }

    #[test]
    fn only_the_public_origin_may_post_the_form() {
        let public = "https://Consent.example.de";
        assert!(same_origin(
            &with(header::ORIGIN, "https://consent.example.de"),
            public
        ));
        assert!(same_origin(
            &with(header::REFERER, "https://consent.example.de/r/abc?lang=en"),
            public
        ));
        assert!(same_origin(&HeaderMap::new(), public), "no browser");
        for (name, value) in [
            (header::ORIGIN, "https://evil.example"),
            (header::ORIGIN, "null"),
            (header::ORIGIN, "http://consent.example.de"),
            (header::ORIGIN, "https://consent.example.de.evil.example"),
            (header::REFERER, "https://evil.example/consent.example.de"),
        ] {
            assert!(
                !same_origin(&with(name.clone(), value), public),
                "{name}: {value}"
            );
        }
        assert_eq!(origin_of("http://127.0.0.1:8080"), "http://127.0.0.1:8080");
        assert_eq!(origin_of("no url"), "");
    }
}
