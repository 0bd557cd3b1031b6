//! Delivering e-mail requests and reminders by SMTP, for companies that run
//! klar without a CRM sending its mails. Each `send-request` action on the
//! e-mail channel of a tenant with a sender address becomes one mail, in the
//! contact's language (German or English), with a plain-text and an HTML part
//! and the personal response link in both.
//!
//! A mail that the relay accepted counts as delivered: the action is
//! acknowledged, and a `mail-sent` evidence row (recipient, Message-ID, the
//! relay's answer) and audit row are written. A relay that is down or answers
//! with a temporary error is retried with the webhook's backoff; a permanent
//! refusal, or a contact without an e-mail address, parks the action at once
//! (counted in `klar status`).

use std::collections::BTreeMap;
use std::str::FromStr;
use std::time::SystemTime;

use crate::store::{Claim, Conn};
use chrono::{DateTime, Utc};
use lettre::message::{Mailbox, MultiPart};
use lettre::{Message, SmtpTransport, Transport};
use minijinja::{Environment, context};
use serde_json::Value;

use crate::delivery::webhook::{Report, Retry, record_failure};
use crate::store::audit::{self, Entry};
use crate::store::outbox::Item;
use crate::store::webhooks::{self, Take};
use crate::store::{Store, StoreError, evidence, tenants, texts};

/// `[smtp]` in klar.toml.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailConfig {
    /// The relay, as an SMTP URL: `smtp://host:25` (plain), `smtp://user:pass@host:587?tls=required`
    /// (STARTTLS) or `smtps://user:pass@host:465` (TLS).
    pub url: String,
    /// Tenant id → the From address of its mails, e.g. `Müller GmbH <datenschutz@mueller.example>`.
    /// Only these tenants' e-mail requests are mailed by klar.
    pub from: BTreeMap<String, String>,
}

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("smtp.url: {0}")]
    Url(#[source] lettre::transport::smtp::Error),
    #[error("smtp.from.{tenant}: {value:?} is not an address like \"Name <mail@example.de>\"")]
    From { tenant: String, value: String },
}

/// Why one action cannot become a mail; parks it, as retrying will not help.
#[derive(Debug, thiserror::Error)]
pub(super) enum Unsendable {
    #[error("the contact has no e-mail address")]
    NoAddress,
    #[error("the contact's e-mail address {0:?} is not valid")]
    BadAddress(String),
    #[error("the contact or its consent text is gone")]
    Gone,
    #[error("the mail could not be built: {0}")]
    Build(String),
    #[error(transparent)]
    Store(#[from] crate::store::Error),
}

/// An SMTP connection (pooled by lettre) and the tenants' sender addresses.
pub struct Mailer {
    transport: SmtpTransport,
    from: BTreeMap<String, Mailbox>,
}

impl Mailer {
    pub fn new(config: &MailConfig) -> Result<Mailer, MailError> {
        let transport = SmtpTransport::from_url(&config.url)
            .map_err(MailError::Url)?
            .timeout(Some(std::time::Duration::from_secs(20)))
            .build();
        let mut from = BTreeMap::new();
        for (tenant, value) in &config.from {
            let mailbox = Mailbox::from_str(value).map_err(|_| MailError::From {
                tenant: tenant.clone(),
                value: value.clone(),
            })?;
            from.insert(tenant.clone(), mailbox);
        }
        Ok(Mailer { transport, from })
    }

    /// Whether klar mails this tenant's e-mail requests itself.
    pub fn mails_for(&self, tenant: &str) -> bool {
        self.from.contains_key(tenant)
    }

    /// Mails the weekly digests that are due, from each tenant's sender
    /// (tenants without one get none). A digest that fails is tried again
    /// in the next round.
    pub fn deliver_digests(
        &self,
        store: &mut Store,
        public_url: &str,
        now: DateTime<Utc>,
    ) -> Result<Report, tenants::TenantError> {
        let mut report = Report::default();
        let due = crate::app::digest::due(store, |t| self.mails_for(t), public_url, now)?;
        for digest in due {
            let Some(from) = self.from.get(&digest.tenant) else {
                continue;
            };
            let sent = (|| {
                let to = Mailbox::from_str(&digest.to).map_err(|e| e.to_string())?;
                let message_id = format!(
                    "<klar.digest.{}.{}.{}@{}>",
                    digest.tenant,
                    digest.account,
                    digest.week,
                    from.email.domain()
                );
                let message = Message::builder()
                    .message_id(Some(message_id.clone()))
                    .from(from.clone())
                    .to(to)
                    .subject(digest.subject.clone())
                    .date(SystemTime::from(now))
                    .header(lettre::message::header::ContentType::TEXT_PLAIN)
                    .body(digest.text.clone())
                    .map_err(|e| e.to_string())?;
                self.transport
                    .send(&message)
                    .map_err(|e| format!("the mail relay refused or failed: {e}"))?;
                Ok::<_, String>(message_id)
            })();
            match sent {
                Ok(message_id) => {
                    crate::app::digest::sent(store, &digest, &message_id, now.timestamp())?;
                    report.delivered += 1;
                }
                Err(error) => {
                    tracing::warn!(tenant = %digest.tenant, account = %digest.account, "digest: {error}");
                    report.failed += 1;
                }
            }
        }
        Ok(report)
    }

    /// Sends every due e-mail request of the tenants with a sender, once.
    /// `now` dates the mails and the evidence (simulated in tests);
    /// `now_ms` is the wall clock the retry schedule runs on.
    pub fn deliver_due(
        &self,
        store: &mut Store,
        retry: &Retry,
        public_url: &str,
        now: DateTime<Utc>,
        now_ms: i64,
    ) -> Result<Report, StoreError> {
        let mut report = Report::default();
        for (tenant, from) in &self.from {
            // Another klar instance sends this tenant's mails right now.
            if !store.claim(Claim::Mails, tenant)? {
                continue;
            }
            let sent = self.send_due(store, (tenant, from), retry, public_url, (now, now_ms));
            store.release(Claim::Mails, tenant)?;
            let sent = sent?;
            report.delivered += sent.delivered;
            report.failed += sent.failed;
            report.parked += sent.parked;
        }
        Ok(report)
    }

    /// Sends the due e-mail requests of one tenant.
    fn send_due(
        &self,
        store: &mut Store,
        (tenant, from): (&String, &Mailbox),
        retry: &Retry,
        public_url: &str,
        (now, now_ms): (DateTime<Utc>, i64),
    ) -> Result<Report, StoreError> {
        let mut report = Report::default();
        {
            let due = webhooks::due(
                store.connection(),
                tenant,
                (now.timestamp(), now_ms),
                100,
                Take::Mails,
            )?;
            for (mut item, attempts) in due {
                crate::delivery::add_response_url(&mut item, public_url);
                let composed = if item.kind == "send-confirmation" {
                    super::confirmation::compose(store.connection(), tenant, &item, from, now)
                } else {
                    compose(store.connection(), tenant, &item, from, now)
                };
                let message = match composed {
                    Ok(message) => message,
                    Err(Unsendable::Store(err)) => return Err(err.into()),
                    Err(err) => {
                        let key = (tenant.as_str(), item.id.as_str());
                        park(store, retry, key, &err.to_string(), now_ms)?;
                        report.parked += 1;
                        continue;
                    }
                };
                let to = message
                    .envelope()
                    .to()
                    .first()
                    .map(ToString::to_string)
                    .unwrap_or_default();
                let message_id = message
                    .headers()
                    .get_raw("Message-ID")
                    .unwrap_or_default()
                    .to_owned();
                match self.transport.send(&message) {
                    Ok(response) => {
                        let answer = format!(
                            "{} {}",
                            response.code(),
                            response.message().collect::<Vec<_>>().join(" ")
                        );
                        sent(store, tenant, &item, (&to, &message_id, &answer), now)?;
                        report.delivered += 1;
                    }
                    Err(err) => {
                        let error = format!("the mail relay refused or failed: {err}");
                        let key = (tenant.as_str(), item.id.as_str());
                        // A permanent refusal (5xx) will not change on retry.
                        if err.is_permanent() {
                            park(store, retry, key, &error, now_ms)?;
                            report.parked += 1;
                        } else if record_failure(
                            store.connection(),
                            retry,
                            key,
                            attempts,
                            &error,
                            now_ms,
                        )? {
                            report.parked += 1;
                        } else {
                            report.failed += 1;
                        }
                    }
                }
            }
        }
        Ok(report)
    }
}

/// Parks an action at once: retrying cannot help.
fn park(
    store: &Store,
    retry: &Retry,
    key: (&str, &str),
    error: &str,
    now_ms: i64,
) -> Result<(), StoreError> {
    let once = Retry {
        max_attempts: 1,
        ..*retry
    };
    record_failure(store.connection(), &once, key, 0, error, now_ms).map(|_| ())
}

/// Acknowledges the action and writes what proves the mail went out.
fn sent(
    store: &mut Store,
    tenant: &str,
    item: &Item,
    (to, message_id, answer): (&str, &str, &str),
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let at = now.timestamp();
    store.transaction(|tx| {
        webhooks::delivered(tx, tenant, &item.id, at)?;
        let field = |key: &str| item.payload.get(key).cloned().unwrap_or(Value::Null);
        // Evidence for every purpose the mail asked about, each with its own
        // link token and attempt.
        let asked: Vec<(String, Value, Value)> =
            match item.payload.get("purposes").and_then(Value::as_array) {
                Some(list) => list
                    .iter()
                    .map(|p| {
                        let get = |k: &str| p.get(k).cloned().unwrap_or(Value::Null);
                        let purpose = p.get("purpose").and_then(Value::as_str).unwrap_or_default();
                        (purpose.to_owned(), get("token_id"), get("attempt"))
                    })
                    .collect(),
                None => vec![(item.purpose.clone(), field("token_id"), field("attempt"))],
            };
        for (purpose, token_id, attempt) in asked {
            evidence::add(
                tx,
                tenant,
                &item.contact,
                &purpose,
                "mail-sent",
                at,
                &serde_json::json!({
                    "outbox_id": item.id,
                    "to": to,
                    "message_id": message_id,
                    "relay_answer": answer,
                    "token_id": token_id,
                    "attempt": attempt,
                    "language": field("language"),
                }),
            )?;
        }
        // The audit log outlives erasure, so it names the mail, not the address.
        audit::append(
            tx,
            tenant,
            Entry {
                at,
                contact: Some(item.contact.clone()),
                purpose: Some(item.purpose.clone()),
                kind: "mail-sent".to_owned(),
                detail: serde_json::json!({
                    "outbox_id": item.id,
                    "message_id": message_id,
                    "template": field("template"),
                    "attempt": field("attempt"),
                })
                .to_string(),
                policy_sha256: None,
            },
        )?;
        Ok::<_, StoreError>(())
    })
}

/// The words of a mail in one language; the consent text itself comes from
/// the tenant's versioned texts.
pub(super) struct Words {
    pub(super) subject_request: &'static str,
    pub(super) subject_reminder: &'static str,
    pub(super) greeting: &'static str,
    pub(super) greeting_unnamed: &'static str,
    pub(super) intro: &'static str,
    pub(super) reminder_intro: &'static str,
    pub(super) intro_several: &'static str,
    pub(super) reminder_intro_several: &'static str,
    pub(super) and: &'static str,
    pub(super) text_heading: &'static str,
    pub(super) call: &'static str,
    pub(super) button: &'static str,
    pub(super) valid_until: &'static str,
    pub(super) no_answer: &'static str,
    pub(super) withdraw: &'static str,
    pub(super) manage: &'static str,
    pub(super) regards: &'static str,
    pub(super) footer: &'static str,
    pub(super) imprint: &'static str,
    pub(super) privacy: &'static str,
}

const DE: Words = Words {
    subject_request: "Ihre Einwilligung: {purpose}",
    subject_reminder: "Erinnerung: Ihre Einwilligung – {purpose}",
    greeting: "Guten Tag {name},",
    greeting_unnamed: "Guten Tag,",
    intro: "{company} möchte Ihre Kontaktdaten für folgenden Zweck verwenden: {purpose}. Dafür bitten wir Sie um Ihre Einwilligung.",
    reminder_intro: "vor einiger Zeit haben wir Sie um Ihre Einwilligung gebeten und noch keine Antwort erhalten. {company} möchte Ihre Kontaktdaten für folgenden Zweck verwenden: {purpose}.",
    intro_several: "{company} möchte Ihre Kontaktdaten für folgende Zwecke verwenden: {purpose}. Dafür bitten wir Sie um Ihre Einwilligung; Sie können jedem Zweck einzeln zustimmen.",
    reminder_intro_several: "vor einiger Zeit haben wir Sie um Ihre Einwilligung gebeten und noch keine Antwort erhalten. {company} möchte Ihre Kontaktdaten für folgende Zwecke verwenden: {purpose}.",
    and: "und",
    text_heading: "Der Text, dem Sie zustimmen würden:",
    call: "Bitte antworten Sie über Ihren persönlichen Link. Dort können Sie zustimmen oder ablehnen:",
    button: "Jetzt antworten",
    valid_until: "Der Link gilt bis zum {date}.",
    no_answer: "Wenn Sie nicht zustimmen, verwenden wir Ihre Daten für diesen Zweck nicht weiter.",
    withdraw: "Sie können eine Einwilligung jederzeit mit Wirkung für die Zukunft widerrufen.",
    manage: "Über Ihren persönlichen Link können Sie Ihre Antworten jederzeit ansehen und ändern, auch später noch: eine Einwilligung widerrufen oder doch noch einwilligen.",
    regards: "Mit freundlichen Grüßen",
    footer: "Diese Nachricht ist persönlich an Sie gerichtet. Bitte leiten Sie den Link nicht weiter.",
    imprint: "Impressum",
    privacy: "Datenschutzhinweise",
};

const EN: Words = Words {
    subject_request: "Your consent: {purpose}",
    subject_reminder: "Reminder: your consent – {purpose}",
    greeting: "Dear {name},",
    greeting_unnamed: "Hello,",
    intro: "{company} would like to use your contact details for the following purpose: {purpose}. For this we ask for your consent.",
    reminder_intro: "some time ago we asked for your consent and have not heard back yet. {company} would like to use your contact details for the following purpose: {purpose}.",
    intro_several: "{company} would like to use your contact details for the following purposes: {purpose}. For this we ask for your consent; you can agree to each purpose separately.",
    reminder_intro_several: "some time ago we asked for your consent and have not heard back yet. {company} would like to use your contact details for the following purposes: {purpose}.",
    and: "and",
    text_heading: "The text you would agree to:",
    call: "Please answer through your personal link, where you can agree or decline:",
    button: "Answer now",
    valid_until: "The link is valid until {date}.",
    no_answer: "If you do not agree, we will no longer use your data for this purpose.",
    withdraw: "You can withdraw a consent at any time with effect for the future.",
    manage: "Through your personal link you can see and change your answers at any time, later too: withdraw a consent or agree after all.",
    regards: "Kind regards",
    footer: "This message is addressed to you personally. Please do not forward the link.",
    imprint: "Legal notice",
    privacy: "Privacy notice",
};

pub(super) fn words(language: &str) -> &'static Words {
    if language == "en" { &EN } else { &DE }
}

pub(super) fn fill(template: &str, pairs: &[(&str, &str)]) -> String {
    pairs.iter().fold(template.to_owned(), |out, (key, value)| {
        out.replace(&format!("{{{key}}}"), value)
    })
}

/// klar's own mail templates, which a tenant's replace by name.
pub(crate) const MAIL_TXT: &str = include_str!("../../templates/mail.txt");
pub(crate) const MAIL_HTML: &str = include_str!("../../templates/mail.html");

/// The mail templates: the tenant's own where it has them (checked when
/// they were set), else klar's.
fn environment(own: &OwnTemplates) -> Result<Environment<'static>, minijinja::Error> {
    let mut env = Environment::new();
    env.add_template_owned(
        "mail.txt",
        own.txt.clone().unwrap_or_else(|| MAIL_TXT.to_owned()),
    )?;
    env.add_template_owned(
        "mail.html",
        own.html.clone().unwrap_or_else(|| MAIL_HTML.to_owned()),
    )?;
    Ok(env)
}

/// A tenant's own mail templates, where it has them.
#[derive(Debug, Clone, Default)]
pub(crate) struct OwnTemplates {
    pub txt: Option<String>,
    pub html: Option<String>,
}

impl OwnTemplates {
    pub(crate) fn of(conn: &Conn, tenant: &str) -> Result<OwnTemplates, crate::store::Error> {
        let own =
            |name| crate::store::templates::get(conn, tenant, name).map(|t| t.map(|t| t.source));
        Ok(OwnTemplates {
            txt: own("mail.txt")?,
            html: own("mail.html")?,
        })
    }

    /// The tenant's own confirmation templates, where it has them.
    pub(crate) fn of_confirmation(
        conn: &Conn,
        tenant: &str,
    ) -> Result<OwnTemplates, crate::store::Error> {
        let own =
            |name| crate::store::templates::get(conn, tenant, name).map(|t| t.map(|t| t.source));
        Ok(OwnTemplates {
            txt: own("confirmation.txt")?,
            html: own("confirmation.html")?,
        })
    }
}

/// What a request mail says, before it has an address.
pub(crate) struct Draft<'a> {
    /// The language of the mail around the texts (`de` or `en`).
    pub language: &'a str,
    /// The contact's name, empty if unknown.
    pub name: &'a str,
    pub company: &'a str,
    /// The company's legal details under the mail.
    pub legal: &'a crate::app::settings::Footer,
    /// Each purpose asked about, as the contact reads it, with its text.
    pub texts: &'a [(String, texts::ConsentText)],
    pub link: &'a str,
    /// The contact's personal link, where they change their answers later.
    pub manage_link: &'a str,
    pub expires: Option<DateTime<chrono_tz::Tz>>,
    /// A reminder, not the first request.
    pub reminder: bool,
    /// The tenant's own templates, where it has them.
    pub own: &'a OwnTemplates,
}

/// A request mail's subject and bodies.
pub(crate) struct Rendered {
    pub subject: String,
    pub plain: String,
    pub html: String,
}

/// Renders a request mail: what is sent, and what `klar text preview`
/// writes to files.
pub(crate) fn render(draft: &Draft<'_>) -> Result<Rendered, minijinja::Error> {
    let Draft {
        language,
        name,
        company,
        legal,
        texts: shown,
        link,
        manage_link,
        expires,
        reminder,
        own,
    } = *draft;
    let w = words(language);
    let names: Vec<&str> = shown.iter().map(|(name, _)| name.as_str()).collect();
    let purpose = match names.as_slice() {
        [] => String::new(),
        [one] => (*one).to_owned(),
        [rest @ .., last] => format!("{} {} {last}", rest.join(", "), w.and),
    };
    let several = shown.len() > 1;
    let expires = expires
        .map(|t| match language {
            "en" => t.format("%-d %B %Y").to_string(),
            _ => t.format("%d.%m.%Y").to_string(),
        })
        .unwrap_or_default();
    let subject = fill(
        if reminder {
            w.subject_reminder
        } else {
            w.subject_request
        },
        &[("purpose", &purpose)],
    );
    let greeting = if name.is_empty() {
        w.greeting_unnamed.to_owned()
    } else {
        fill(w.greeting, &[("name", name)])
    };
    let pairs = [("company", company), ("purpose", purpose.as_str())];
    let intro = fill(
        match (reminder, several) {
            (false, false) => w.intro,
            (true, false) => w.reminder_intro,
            (false, true) => w.intro_several,
            (true, true) => w.reminder_intro_several,
        },
        &pairs,
    );
    let valid_until = fill(w.valid_until, &[("date", &expires)]);
    let (link, manage_link) = (url_value(link), url_value(manage_link));
    let ctx = context! {
        lang => language, subject, greeting, intro, company, link, manage_link,
        manage => w.manage,
        texts => shown
            .iter()
            .map(|(purpose, text)| context! {
                purpose, text => text.body, version => text.version, lang => text.language,
            })
            .collect::<Vec<_>>(),
        text_heading => w.text_heading, call => w.call, button => w.button,
        valid_until, no_answer => w.no_answer, withdraw => w.withdraw,
        regards => w.regards, footer => w.footer, legal,
        imprint => w.imprint, privacy => w.privacy,
    };
    let env = environment(own)?;
    let render = |name: &str| env.get_template(name).and_then(|t| t.render(&ctx));
    Ok(Rendered {
        plain: render("mail.txt")?,
        html: render("mail.html")?,
        subject,
    })
}

/// A link as the templates show it: klar's public URL and a hex token,
/// unescaped so that mail clients display it as written (minijinja would
/// escape each `/`); anything else is escaped.
pub(crate) fn url_value(link: &str) -> minijinja::Value {
    if link.contains(['"', '\'', '<', '>', '&']) {
        minijinja::Value::from(link)
    } else {
        minijinja::Value::from_safe_string(link.to_owned())
    }
}

/// The contact's name (empty if unknown) and mailbox.
pub(super) fn recipient(
    conn: &Conn,
    tenant: &str,
    contact: &str,
) -> Result<(String, Mailbox), Unsendable> {
    let (first, last, email) = crate::store::contacts::addressee(conn, tenant, contact)
        .ok()
        .flatten()
        .ok_or(Unsendable::Gone)?;
    let email = email
        .filter(|e| !e.trim().is_empty())
        .ok_or(Unsendable::NoAddress)?;
    let name = format!("{first} {last}").trim().to_owned();
    let to = Mailbox::new(
        (!name.is_empty()).then(|| name.clone()),
        email
            .trim()
            .parse()
            .map_err(|_| Unsendable::BadAddress(email.clone()))?,
    );
    Ok((name, to))
}

/// Builds the mail for one `send-request` action.
fn compose(
    conn: &Conn,
    tenant_id: &str,
    item: &Item,
    from: &Mailbox,
    now: DateTime<Utc>,
) -> Result<Message, Unsendable> {
    let tenant = tenants::require(conn, tenant_id).map_err(|_| Unsendable::Gone)?;
    let (name, to) = recipient(conn, tenant_id, &item.contact)?;
    let payload = &item.payload;
    let text_field = |key: &str| payload.get(key).and_then(Value::as_str).unwrap_or("");
    // The text is in the language it was issued in (one the tenant wrote,
    // perhaps); the mail around it in German or English.
    let text_language = text_field("language");
    let language = texts::language_for(text_language);
    let text_language = if text_language.is_empty() {
        language
    } else {
        text_language
    };
    let purposes = tenants::purposes(conn, tenant_id)?;
    // A message may ask about several purposes, each with its own text.
    let asked: Vec<(String, i64)> = match payload.get("purposes").and_then(Value::as_array) {
        Some(list) => list
            .iter()
            .map(|p| {
                let purpose = p.get("purpose").and_then(Value::as_str).unwrap_or_default();
                let version = p.get("text_version").and_then(Value::as_i64).unwrap_or(0);
                (purpose.to_owned(), version)
            })
            .collect(),
        None => vec![(
            item.purpose.clone(),
            payload
                .get("text_version")
                .and_then(Value::as_i64)
                .ok_or(Unsendable::Gone)?,
        )],
    };
    let mut shown = Vec::with_capacity(asked.len());
    for (purpose_id, version) in &asked {
        let text = texts::get(conn, tenant_id, purpose_id, *version, text_language)?
            .ok_or(Unsendable::Gone)?;
        let name = purposes
            .iter()
            .find(|(id, _)| id == purpose_id)
            .map_or_else(
                || purpose_id.clone(),
                |(id, d)| tenants::purpose_in(id, d, language),
            );
        shown.push((name, text));
    }
    let link = text_field("response_url").to_owned();
    if link.is_empty() {
        return Err(Unsendable::Gone);
    }
    let manage_link = text_field("personal_url").to_owned();
    let expires = payload
        .get("link_expires_at")
        .and_then(crate::times::from_json)
        .map(|t| t.with_timezone(&tenant.timezone));
    let reminder = text_field("template") == "reminder"
        || payload.get("attempt").and_then(Value::as_i64).unwrap_or(1) > 1;
    let Rendered {
        subject,
        plain,
        html,
    } = render(&Draft {
        language,
        name: &name,
        company: &tenant.name,
        legal: &crate::app::settings::footer(&tenant, language),
        own: &OwnTemplates::of(conn, tenant_id)?,
        texts: &shown,
        link: &link,
        manage_link: &manage_link,
        expires,
        reminder,
    })
    .map_err(|e| Unsendable::Build(e.to_string()))?;
    outbox_mail(item, (from, to), &subject, (plain, html), now)
}

/// The mail of one outbox action. Its id makes the Message-ID: a mail sent
/// again after a lost acknowledgement is the same mail to the recipient's
/// client.
pub(super) fn outbox_mail(
    item: &Item,
    (from, to): (&Mailbox, Mailbox),
    subject: &str,
    (plain, html): (String, String),
    now: DateTime<Utc>,
) -> Result<Message, Unsendable> {
    let message_id = format!("<klar.{}@{}>", item.id, from.email.domain());
    Message::builder()
        .message_id(Some(message_id))
        .from(from.clone())
        .to(to)
        .subject(subject)
        .date(SystemTime::from(now))
        .multipart(MultiPart::alternative_plain_html(plain, html))
        .map_err(|e| Unsendable::Build(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_sender_or_relay_is_named() {
        let mut from = BTreeMap::new();
        from.insert("acme".to_owned(), "not an address".to_owned());
        let err = Mailer::new(&MailConfig {
            url: "smtp://127.0.0.1:2525".into(),
            from,
        })
        .err()
        .map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some(
                "smtp.from.acme: \"not an address\" is not an address like \"Name <mail@example.de>\""
            )
        );
        let err = Mailer::new(&MailConfig {
            url: "http://127.0.0.1".into(),
            from: BTreeMap::new(),
        })
        .err()
        .map(|e| e.to_string());
        assert!(err.is_some_and(|e| e.starts_with("smtp.url:")));
    }

    #[test]
    fn placeholders_are_filled() {
        assert_eq!(
            fill(DE.subject_request, &[("purpose", "Newsletter")]),
            "Ihre Einwilligung: Newsletter"
        );
    }
}
