//! The confirmation of a contact's answer, by e-mail: what was recorded for
//! each purpose, and their personal link, where they change it later (the
//! way back). klar's mailer sends one for every `send-confirmation` action on
//! the e-mail channel of a tenant it mails for; other tenants' CRMs take the
//! action from the outbox. It never asks anything: a contact who said no gets
//! it too, and it asks them nothing again.

use chrono::{DateTime, Utc};
use lettre::Message;
use lettre::message::Mailbox;
use minijinja::{Environment, context};
use serde_json::Value;

use super::mail::{OwnTemplates, Unsendable, fill, outbox_mail, recipient, url_value, words};
use crate::store::outbox::Item;
use crate::store::{Conn, tenants, texts};

struct Words {
    subject: &'static str,
    intro: &'static str,
    consented: &'static str,
    refused: &'static str,
    withdrawn: &'static str,
    objected: &'static str,
    manage: &'static str,
    button: &'static str,
}

const DE: Words = Words {
    subject: "Bestätigung Ihrer Antwort an {company}",
    intro: "vielen Dank. {company} hat Ihre Antwort gespeichert:",
    consented: "Sie haben eingewilligt (Text in Fassung {version}).",
    refused: "Sie haben abgelehnt. Wir verwenden Ihre Daten dafür nicht und fragen Sie dazu nicht noch einmal.",
    withdrawn: "Sie haben Ihre Einwilligung widerrufen. Wir verwenden Ihre Daten dafür nicht mehr.",
    objected: "Sie haben widersprochen (Art. 21 DSGVO). Wir haben Ihren Widerspruch gespeichert.",
    manage: "Über Ihren persönlichen Link können Sie Ihre Antworten jederzeit ansehen und ändern, auch später noch: eine Einwilligung widerrufen oder doch noch einwilligen.",
    button: "Meine Einwilligungen ansehen",
};

const EN: Words = Words {
    subject: "Confirmation of your answer to {company}",
    intro: "thank you. {company} has recorded your answer:",
    consented: "You consented (text version {version}).",
    refused: "You declined. We do not use your data for it and will not ask you about it again.",
    withdrawn: "You withdrew your consent. We no longer use your data for it.",
    objected: "You objected (Art. 21 GDPR). We have recorded your objection.",
    manage: "Through your personal link you can see and change your answers at any time, later too: withdraw a consent or agree after all.",
    button: "See my consents",
};

pub(crate) const CONFIRMATION_TXT: &str = include_str!("../../templates/confirmation.txt");
pub(crate) const CONFIRMATION_HTML: &str = include_str!("../../templates/confirmation.html");

/// What a confirmation says, before it has an address.
pub(crate) struct Confirmation<'a> {
    /// `de` or `en`.
    pub language: &'a str,
    /// The contact's name, empty if unknown.
    pub name: &'a str,
    pub company: &'a str,
    /// The tenant's legal details for the footer.
    pub legal: &'a crate::app::settings::Footer,
    /// Per purpose: its name, and what was recorded, in words.
    pub answers: &'a [(String, String)],
    /// The contact's personal link.
    pub manage_link: &'a str,
}

/// Renders a confirmation's plain and HTML parts, with the tenant's own
/// templates where it has them (`confirmation.txt`, `confirmation.html`;
/// checked when they were set), else klar's.
pub(crate) fn render(
    c: &Confirmation<'_>,
    own: &OwnTemplates,
) -> Result<(String, String), minijinja::Error> {
    let (mail, words_here) = (
        words(c.language),
        if c.language == "en" { &EN } else { &DE },
    );
    let subject = fill(words_here.subject, &[("company", c.company)]);
    let greeting = if c.name.is_empty() {
        mail.greeting_unnamed.to_owned()
    } else {
        fill(mail.greeting, &[("name", c.name)])
    };
    let answers: Vec<_> = c
        .answers
        .iter()
        .map(|(purpose, what)| context! { purpose, what })
        .collect();
    let ctx = context! {
        lang => c.language, subject, greeting, company => c.company, answers,
        intro => fill(words_here.intro, &[("company", c.company)]),
        manage => words_here.manage, button => words_here.button,
        manage_link => url_value(c.manage_link),
        regards => mail.regards, footer => mail.footer,
        legal => c.legal,
        imprint => mail.imprint, privacy => mail.privacy,
    };
    let mut env = Environment::new();
    env.add_template_owned(
        "confirmation.txt",
        own.txt
            .clone()
            .unwrap_or_else(|| CONFIRMATION_TXT.to_owned()),
    )?;
    env.add_template_owned(
        "confirmation.html",
        own.html
            .clone()
            .unwrap_or_else(|| CONFIRMATION_HTML.to_owned()),
    )?;
    let render = |name: &str| env.get_template(name).and_then(|t| t.render(&ctx));
    Ok((render("confirmation.txt")?, render("confirmation.html")?))
}

/// The subject of a confirmation.
fn subject(language: &str, company: &str) -> String {
    let own = if language == "en" { &EN } else { &DE };
    fill(own.subject, &[("company", company)])
}

/// Builds the mail for one `send-confirmation` action.
pub(super) fn compose(
    conn: &Conn,
    tenant_id: &str,
    item: &Item,
    from: &Mailbox,
    now: DateTime<Utc>,
) -> Result<Message, Unsendable> {
    let tenant = tenants::require(conn, tenant_id).map_err(|_| Unsendable::Gone)?;
    let (name, to) = recipient(conn, tenant_id, &item.contact)?;
    let payload = &item.payload;
    let field = |key: &str| payload.get(key).and_then(Value::as_str).unwrap_or("");
    let language = texts::language_for(field("language"));
    let manage_link = field("personal_url");
    if manage_link.is_empty() {
        return Err(Unsendable::Gone);
    }
    let own = if language == "en" { &EN } else { &DE };
    let purposes = tenants::purposes(conn, tenant_id)?;
    let answers: Vec<(String, String)> = payload
        .get("purposes")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|p| {
            let id = p.get("purpose").and_then(Value::as_str).unwrap_or_default();
            let version = p
                .get("text_version")
                .and_then(Value::as_i64)
                .map(|v| v.to_string())
                .unwrap_or_default();
            let what = match p.get("answer").and_then(Value::as_str) {
                Some("accept" | "consent") => fill(own.consented, &[("version", &version)]),
                Some("withdraw") => own.withdrawn.to_owned(),
                Some("object") => own.objected.to_owned(),
                _ => own.refused.to_owned(),
            };
            let purpose = purposes.iter().find(|(p, _)| p == id).map_or_else(
                || id.to_owned(),
                |(p, d)| tenants::purpose_in(p, d, language),
            );
            (purpose, what)
        })
        .collect();
    if answers.is_empty() {
        return Err(Unsendable::Gone);
    }
    let own_templates = OwnTemplates::of_confirmation(conn, tenant_id)?;
    let legal = crate::app::settings::footer(&tenant, language);
    let (plain, html) = render(
        &Confirmation {
            language,
            name: &name,
            company: &tenant.name,
            legal: &legal,
            answers: &answers,
            manage_link,
        },
        &own_templates,
    )
    .map_err(|e| Unsendable::Build(e.to_string()))?;
    let subject = subject(language, &tenant.name);
    outbox_mail(item, (from, to), &subject, (plain, html), now)
}
