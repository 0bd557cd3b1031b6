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

use super::mail::{Unsendable, fill, outbox_mail, recipient, url_value, words};
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

const CONFIRMATION_TXT: &str = include_str!("../../templates/confirmation.txt");
const CONFIRMATION_HTML: &str = include_str!("../../templates/confirmation.html");

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
    let (mail, own) = (words(language), if language == "en" { &EN } else { &DE });
    let purposes = tenants::purposes(conn, tenant_id)?;
    let answers: Vec<_> = payload
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
            context! { purpose, what }
        })
        .collect();
    if answers.is_empty() {
        return Err(Unsendable::Gone);
    }
    let company = tenant.name.as_str();
    let subject = fill(own.subject, &[("company", company)]);
    let greeting = if name.is_empty() {
        mail.greeting_unnamed.to_owned()
    } else {
        fill(mail.greeting, &[("name", &name)])
    };
    let ctx = context! {
        lang => language, subject, greeting, company, answers,
        intro => fill(own.intro, &[("company", company)]),
        manage => own.manage, button => own.button,
        manage_link => url_value(manage_link),
        regards => mail.regards, footer => mail.footer,
        legal => crate::app::settings::footer(&tenant, language),
        imprint => mail.imprint, privacy => mail.privacy,
    };
    let build = || -> Result<(String, String), minijinja::Error> {
        let mut env = Environment::new();
        env.add_template("confirmation.txt", CONFIRMATION_TXT)?;
        env.add_template("confirmation.html", CONFIRMATION_HTML)?;
        let render = |name: &str| env.get_template(name).and_then(|t| t.render(&ctx));
        Ok((render("confirmation.txt")?, render("confirmation.html")?))
    };
    let (plain, html) = build().map_err(|e| Unsendable::Build(e.to_string()))?;
    outbox_mail(item, (from, to), &subject, (plain, html), now)
}
