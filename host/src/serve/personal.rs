//! The contact's personal page: `GET /p/{secret}` shows, for each purpose,
//! what they said and what they may do now (withdraw a consent; consent
//! after a refusal or withdrawal, with the current text; answer an open
//! question); `POST` records the change through [`crate::app::personal`]
//! with the IP and user agent as evidence. The link never expires while klar
//! knows the contact. German and English, no script, no external assets, and
//! the same CSRF rules as the response page (see [`super::page`]).

use std::net::SocketAddr;

use axum::Form;
use axum::Router;
use axum::extract::rejection::FormRejection;
use axum::extract::{ConnectInfo, Path, Query, State as AxumState};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use minijinja::context;
use rand::RngExt;

use super::page::{
    CSRF_COOKIE, LangQuery, asked_language, cookie, env, invalid, language, message,
    message_with_link, same_origin, with_csrf_cookie,
};
use super::{ApiError, State, with_store};
use crate::app::personal::{self, Change, Overview, PersonalError, Standing};
use crate::app::respond::Origin;
use crate::engine::EventError;
use crate::plugin::{BasisKind, State as CaseState};

pub(super) fn routes() -> Router<State> {
    Router::new().route("/p/{token}", get(show).post(change))
}

struct Words {
    title: &'static str,
    heading: &'static str,
    intro: &'static str,
    explain: &'static str,
    version: &'static str,
    keep: &'static str,
    language: &'static str,
    switch: &'static str,
    imprint: &'static str,
    privacy: &'static str,
    legal: &'static str,
    consented: &'static str,
    refused: &'static str,
    withdrawn: &'static str,
    objected: &'static str,
    other_basis: &'static str,
    basis_contract: &'static str,
    basis_interest: &'static str,
    basis_customer: &'static str,
    basis_obligation: &'static str,
    open: &'static str,
    consent: &'static str,
    consent_after_no: &'static str,
    refuse: &'static str,
    withdraw: &'static str,
    object: &'static str,
    saved_heading: &'static str,
    saved_consent: &'static str,
    saved_refuse: &'static str,
    saved_withdraw: &'static str,
    saved_object: &'static str,
    saved_object_review: &'static str,
    back: &'static str,
    back_intro: &'static str,
    stale_heading: &'static str,
    stale_body: &'static str,
    not_now_heading: &'static str,
    not_now_body: &'static str,
}

const DE: Words = Words {
    title: "Ihre Einwilligungen",
    heading: "Ihre Einwilligungen",
    intro: "Hier sehen Sie, was Sie zu jedem Zweck gesagt haben, bei",
    explain: "Sie können Ihre Antwort jederzeit ändern.",
    version: "Text in Fassung",
    keep: "Dieser Link ist persönlich und bleibt gültig. Bitte geben Sie ihn nicht weiter.",
    language: "Sprache",
    switch: "English",
    imprint: "Impressum",
    privacy: "Datenschutzhinweise",
    legal: "Angaben zum Unternehmen",
    consented: "Sie haben eingewilligt am {date}. Sie können Ihre Einwilligung jederzeit mit Wirkung für die Zukunft widerrufen.",
    refused: "Sie haben abgelehnt. Wir fragen Sie dazu nicht noch einmal. Wenn Sie es sich anders überlegen, können Sie hier einwilligen.",
    withdrawn: "Sie haben Ihre Einwilligung widerrufen. Wir fragen Sie dazu nicht noch einmal. Wenn Sie es sich anders überlegen, können Sie hier wieder einwilligen.",
    objected: "Sie haben widersprochen. Wir verwenden Ihre Daten dafür nicht mehr und fragen Sie dazu nicht. Wenn Sie es sich anders überlegen, können Sie hier einwilligen.",
    other_basis: "Wir verarbeiten Ihre Daten für diesen Zweck ohne Einwilligung, auf einer anderen Rechtsgrundlage. Sie können jederzeit widersprechen.",
    basis_contract: "Wir verarbeiten Ihre Daten für diesen Zweck, weil wir sie für unseren Vertrag mit Ihnen brauchen (Art. 6 Abs. 1 lit. b DSGVO). Wenn Sie widersprechen, prüfen wir das und melden uns.",
    basis_interest: "Wir verarbeiten Ihre Daten für diesen Zweck auf Grundlage unseres berechtigten Interesses (Art. 6 Abs. 1 lit. f DSGVO). Sie können jederzeit widersprechen; dann verwenden wir sie dafür nicht mehr.",
    basis_customer: "Als Kundin oder Kunde erhalten Sie von uns E-Mails zu ähnlichen Produkten (§ 7 Abs. 3 UWG). Sie können dem jederzeit widersprechen, ohne dass Ihnen andere als die Übermittlungskosten nach den Basistarifen entstehen.",
    basis_obligation: "Wir verarbeiten Ihre Daten für diesen Zweck, weil uns ein Gesetz dazu verpflichtet (Art. 6 Abs. 1 lit. c DSGVO). Wenn Sie widersprechen, prüfen wir das und melden uns.",
    open: "Ihre Antwort steht noch aus.",
    consent: "Ja, ich bin einverstanden",
    consent_after_no: "Jetzt einwilligen",
    refuse: "Nein, ich bin nicht einverstanden",
    withdraw: "Einwilligung widerrufen",
    object: "Widersprechen",
    saved_heading: "Ihre Änderung ist gespeichert",
    saved_consent: "Ihre Einwilligung ist gespeichert. Sie können sie jederzeit über Ihren persönlichen Link widerrufen.",
    saved_refuse: "Ihre Antwort ist gespeichert. Wir verwenden Ihre Daten für diesen Zweck nicht und fragen Sie dazu nicht noch einmal.",
    saved_withdraw: "Ihr Widerruf ist gespeichert. Wir verwenden Ihre Daten für diesen Zweck nicht mehr.",
    saved_object: "Ihr Widerspruch ist gespeichert. Wir verwenden Ihre Daten für diesen Zweck nicht mehr.",
    saved_object_review: "Ihr Widerspruch ist gespeichert. Wir prüfen ihn und melden uns bei Ihnen.",
    back: "Zurück zu Ihren Einwilligungen",
    back_intro: "Sie erhalten eine Bestätigung. Über diesen Link können Sie Ihre Antworten jederzeit wieder ändern:",
    stale_heading: "Bitte laden Sie die Seite neu",
    stale_body: "Ihre Änderung passt nicht mehr zum Stand der Seite, zum Beispiel weil sich der Text geändert hat. Es wurde nichts gespeichert.",
    not_now_heading: "Ihre Änderung konnte nicht gespeichert werden",
    not_now_body: "Bitte versuchen Sie es später noch einmal oder wenden Sie sich direkt an das Unternehmen.",
};

const EN: Words = Words {
    title: "Your consents",
    heading: "Your consents",
    intro: "Here you see what you told us about each purpose, at",
    explain: "You can change your answer at any time.",
    version: "Text version",
    keep: "This link is personal and stays valid. Please do not pass it on.",
    language: "Language",
    switch: "Deutsch",
    imprint: "Legal notice",
    privacy: "Privacy notice",
    legal: "About the company",
    consented: "You consented on {date}. You can withdraw your consent at any time with effect for the future.",
    refused: "You declined. We will not ask you about it again. If you change your mind, you can agree here.",
    withdrawn: "You withdrew your consent. We will not ask you about it again. If you change your mind, you can agree here again.",
    objected: "You objected. We no longer use your data for it and will not ask you about it. If you change your mind, you can agree here.",
    other_basis: "We process your data for this purpose without consent, on another legal basis. You can object at any time.",
    basis_contract: "We process your data for this purpose because we need it for our contract with you (Art. 6(1)(b) GDPR). If you object, we will look into it and get back to you.",
    basis_interest: "We process your data for this purpose on the basis of our legitimate interest (Art. 6(1)(f) GDPR). You can object at any time; then we no longer use it for this.",
    basis_customer: "As our customer you receive e-mails from us about similar products (§ 7(3) UWG). You can object at any time, at no cost other than the basic rates of transmission.",
    basis_obligation: "We process your data for this purpose because a law requires it (Art. 6(1)(c) GDPR). If you object, we will look into it and get back to you.",
    open: "Your answer is still open.",
    consent: "Yes, I agree",
    consent_after_no: "Agree now",
    refuse: "No, I do not agree",
    withdraw: "Withdraw consent",
    object: "Object",
    saved_heading: "Your change is recorded",
    saved_consent: "Your consent is recorded. You can withdraw it at any time through your personal link.",
    saved_refuse: "Your answer is recorded. We do not use your data for this purpose and will not ask you about it again.",
    saved_withdraw: "Your withdrawal is recorded. We no longer use your data for this purpose.",
    saved_object: "Your objection is recorded. We no longer use your data for this purpose.",
    saved_object_review: "Your objection is recorded. We will look into it and get back to you.",
    back: "Back to your consents",
    back_intro: "You will receive a confirmation. Through this link you can change your answers again at any time:",
    stale_heading: "Please reload the page",
    stale_body: "Your change no longer fits the page, for example because the text changed. Nothing was recorded.",
    not_now_heading: "Your change could not be recorded",
    not_now_body: "Please try again later or contact the company directly.",
};

fn words(lang: &str) -> &'static Words {
    if lang == "en" { &EN } else { &DE }
}

/// One purpose as the page shows it.
#[derive(Debug, serde::Serialize)]
struct Item {
    purpose: String,
    name: String,
    status: String,
    text: Option<String>,
    text_lang: Option<String>,
    version: Option<i64>,
    sha_short: Option<String>,
    offers: Vec<Offer>,
}

#[derive(Debug, serde::Serialize)]
struct Offer {
    change: &'static str,
    label: &'static str,
}

fn item(standing: &Standing, w: &Words, lang: &str, tz: chrono_tz::Tz) -> Item {
    let date = standing
        .consented_at
        .and_then(|t| chrono::DateTime::from_timestamp(t, 0))
        .map(|t| {
            let t = t.with_timezone(&tz);
            match lang {
                "en" => t.format("%-d %B %Y").to_string(),
                _ => t.format("%d.%m.%Y").to_string(),
            }
        })
        .unwrap_or_default();
    let status = match standing.state {
        CaseState::Consented => w.consented.replace("{date}", &date),
        CaseState::Withdrawn => w.withdrawn.to_owned(),
        CaseState::Objected => w.objected.to_owned(),
        CaseState::OtherBasis => match standing.basis {
            Some(BasisKind::Contract) => w.basis_contract,
            Some(BasisKind::LegitimateInterest) => w.basis_interest,
            Some(BasisKind::ExistingCustomer) => w.basis_customer,
            Some(BasisKind::LegalObligation) => w.basis_obligation,
            _ => w.other_basis,
        }
        .to_owned(),
        _ if standing.said_no => w.refused.to_owned(),
        _ => w.open.to_owned(),
    };
    let offers = standing
        .offers
        .iter()
        .map(|change| Offer {
            change: change.as_str(),
            label: match change {
                Change::Consent if standing.said_no => w.consent_after_no,
                Change::Consent => w.consent,
                Change::Refuse => w.refuse,
                Change::Withdraw => w.withdraw,
                Change::Object => w.object,
            },
        })
        .collect();
    let text = standing.text.as_ref();
    Item {
        purpose: standing.purpose.clone(),
        name: standing.name.clone(),
        status,
        text: text.map(|t| t.body.clone()),
        text_lang: text.map(|t| t.language.clone()),
        version: text.map(|t| t.version),
        sha_short: text.map(|t| t.sha256.get(..12).unwrap_or_default().to_owned()),
        offers,
    }
}

fn page(overview: &Overview, token: &str, csrf: &str) -> Result<String, minijinja::Error> {
    let lang = overview.language;
    let w = words(lang);
    let items: Vec<Item> = overview
        .standings
        .iter()
        .map(|s| item(s, w, lang, overview.tenant.timezone))
        .collect();
    env().get_template("personal.html").and_then(|tpl| {
        tpl.render(context! {
            lang,
            other_lang => if lang == "de" { "en" } else { "de" },
            company => overview.tenant.name,
            footer => crate::app::settings::footer(&overview.tenant, lang),
            items,
            token,
            csrf,
            t => context! {
                title => w.title, heading => w.heading, intro => w.intro, explain => w.explain,
                version => w.version, keep => w.keep, language => w.language,
                switch => w.switch, imprint => w.imprint, privacy => w.privacy, legal => w.legal,
            },
        })
    })
}

/// `GET /p/{token}`
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
        match personal::overview(store, &secret, asked, now) {
            Ok(overview) => Ok(Some(overview)),
            Err(PersonalError::Token(_)) => Ok(None),
            Err(err) => Err(ApiError::internal(err)),
        }
    })
    .await;
    let overview = match found {
        Ok(Some(overview)) => overview,
        Ok(None) => return invalid(asked.unwrap_or("de")),
        Err(err) => return err.into_response(),
    };
    let csrf = crate::hex(&rand::rng().random::<[u8; 16]>());
    with_csrf_cookie(&state, "/p/", &csrf, page(&overview, &token, &csrf))
}

/// `POST /p/{token}`: fields `csrf`, `purpose`, `change` (`consent`,
/// `refuse` or `withdraw`) and, for a consent, `version`: the text version
/// the page showed.
async fn change(
    AxumState(state): AxumState<State>,
    Path(token): Path<String>,
    Query(query): Query<LangQuery>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    fields: Result<Form<Vec<(String, String)>>, FormRejection>,
) -> Response {
    let fields = fields.map(|Form(f)| f).unwrap_or_default();
    let field = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let lang = language(&query, &headers);
    let w = words(lang);
    let back = format!("{}/p/{token}?lang={lang}", state.public_url);
    let stale = |status| {
        message_with_link(
            status,
            lang,
            (w.stale_heading, w.stale_body),
            Some(("", w.back, &back)),
        )
    };
    let csrf = field("csrf");
    let same = cookie(&headers, CSRF_COOKIE).is_some_and(|c| !c.is_empty() && c == csrf);
    if !same || !same_origin(&headers, &state.public_url) {
        return stale(StatusCode::FORBIDDEN);
    }
    let purpose = field("purpose");
    let (Some(chosen), false) = (Change::parse(&field("change")), purpose.is_empty()) else {
        return stale(StatusCode::BAD_REQUEST);
    };
    let version = field("version").parse::<i64>().ok();
    let origin = Origin {
        ip: Some(peer.ip()),
        user_agent: headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
    };
    let now = state.now();
    let shared = std::sync::Arc::clone(&state);
    let secret = token.clone();
    let result = with_store(&state, move |store| {
        Ok(personal::change(
            store,
            &shared.sessions,
            &secret,
            (&purpose, chosen),
            version,
            &origin,
            now,
        ))
    })
    .await;
    match result {
        Ok(Ok(changed)) => {
            let body = match changed.change {
                Change::Consent => w.saved_consent,
                Change::Refuse => w.saved_refuse,
                Change::Withdraw => w.saved_withdraw,
                Change::Object if changed.state == CaseState::Objected => w.saved_object,
                Change::Object => w.saved_object_review,
            };
            message_with_link(
                StatusCode::OK,
                lang,
                (w.saved_heading, body),
                Some((w.back_intro, w.back, &back)),
            )
        }
        Ok(Err(PersonalError::Token(_))) => invalid(lang),
        Ok(Err(PersonalError::Stale(_))) => stale(StatusCode::CONFLICT),
        Ok(Err(PersonalError::Rejected(_) | PersonalError::Event(EventError::Failed(_)))) => {
            message(
                StatusCode::CONFLICT,
                lang,
                w.not_now_heading,
                w.not_now_body,
            )
        }
        Ok(Err(err)) => ApiError::internal(err).into_response(),
        Err(err) => err.into_response(),
    }
}
