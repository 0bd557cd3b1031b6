//! klar mails its e-mail requests itself: `klar serve` with `[smtp]` set,
//! a real SMTP server (aiosmtpd) on loopback, and the mails read back and
//! checked as a mail client would — headers, the encoding of umlauts, a text
//! and an HTML part, and a personal link that works.

mod support;

use std::time::{Duration, Instant};

use mail_parser::MimeHeaders;
use serde_json::Value;
use support::server::NOW;
use support::smtp::{SmtpSink, link_in, mail_to, parse, serve_with_smtp, serve_with_smtp_purposes};
use support::*;

#[test]
fn requests_arrive_as_well_formed_mails_in_the_contacts_language_with_a_working_link() {
    let sink = SmtpSink::start();
    let s = serve_with_smtp(&sink.url(), &[]);
    let mails = sink.wait_for(2);
    assert_eq!(mails.len(), 2);

    // German, to Jürgen Groß.
    let raw = mail_to(&mails, "j.gross@example.de");
    let header_end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(raw.len());
    assert!(
        raw[..header_end].is_ascii(),
        "headers must be 7-bit, with umlauts as encoded words"
    );
    let head = String::from_utf8_lossy(&raw[..header_end]);
    assert!(head.contains("=?utf-8?"), "{head}");
    assert!(head.contains("multipart/alternative"), "{head}");
    let mail = parse(raw);
    let from = mail.from().and_then(|f| f.first()).expect("From");
    assert_eq!(from.name(), Some("Müller & Söhne GmbH"));
    assert_eq!(from.address(), Some("datenschutz@mueller.example"));
    let to = mail.to().and_then(|t| t.first()).expect("To");
    assert_eq!(to.name(), Some("Jürgen Groß"));
    assert!(
        mail.subject()
            .is_some_and(|s| s.starts_with("Ihre Einwilligung: ")),
        "{:?}",
        mail.subject()
    );
    assert!(mail.message_id().is_some_and(|id| id.contains('@')));
    // The mail is dated with klar's clock (simulated here), not the machine's.
    assert_eq!(
        mail.date().map(|d| d.to_rfc3339()),
        Some("2026-12-01T08:00:00Z".to_owned())
    );
    let text = mail.body_text(0).expect("a text part").into_owned();
    let html = mail.body_html(0).expect("an HTML part").into_owned();
    assert!(text.contains("Guten Tag Jürgen Groß,"), "{text}");
    assert!(text.contains("Müller & Söhne GmbH möchte"), "{text}");
    assert!(text.contains("Der Link gilt bis zum 30.05.2027."), "{text}");
    assert!(html.contains("Müller &amp; Söhne GmbH"), "{html}");
    let parts: Vec<String> = mail
        .parts
        .iter()
        .filter_map(|p| p.content_type())
        .map(|c| format!("{}/{}", c.ctype(), c.subtype().unwrap_or("")))
        .collect();
    assert!(parts.contains(&"text/plain".to_owned()), "{parts:?}");
    assert!(parts.contains(&"text/html".to_owned()), "{parts:?}");
    let link = link_in(&text, &s.url);
    assert_eq!(
        link_in(&html, &s.url),
        link,
        "both parts carry the same link"
    );
    // The consent text of the mail is the one the page shows.
    let (status, page) = s.raw("GET", &link.replacen(&s.url, "", 1), None, None, &[]);
    assert_eq!(status, 200);
    assert!(page.contains("Müller &amp; Söhne GmbH"), "{page}");

    // English, to Zoë Hart.
    let mail = parse(mail_to(&mails, "zoe.hart@example.com"));
    assert!(
        mail.subject()
            .is_some_and(|s| s.starts_with("Your consent: ")),
        "{:?}",
        mail.subject()
    );
    let text = mail.body_text(0).expect("a text part");
    assert!(text.contains("Dear Zoë Hart,"), "{text}");
    assert!(text.contains("I agree that Müller & Söhne GmbH"), "{text}");

    // Sent mails are acknowledged, proven by evidence and named in the audit.
    let (_, outbox) = s.call("GET", "/v1/outbox", Some(&s.keys.0), None);
    assert_eq!(outbox["actions"], serde_json::json!([]), "{outbox}");
    let bundle: Value =
        serde_json::from_str(&s.ws.ok(&["evidence", "export", "acme", "C1", "--now", NOW]))
            .expect("a bundle");
    let delivery = &bundle["deliveries"][0];
    assert_eq!(delivery["kind"], "mail-sent", "{bundle:#}");
    assert_eq!(delivery["detail"]["to"], "j.gross@example.de");
    assert!(
        delivery["detail"]["relay_answer"]
            .as_str()
            .is_some_and(|a| a.starts_with("250")),
        "{delivery}"
    );
    let audit = s.ws.ok(&["audit", "show", "acme", "C1"]);
    assert!(
        audit.contains("request mailed by klar (attempt 1, <"),
        "{audit}"
    );
    assert!(!audit.contains("j.gross@example.de"), "{audit}");
}

#[test]
fn a_relay_that_is_down_keeps_the_requests_parks_them_and_redelivers_them_once_it_is_back() {
    // A port nobody listens on yet.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port");
    let s = serve_with_smtp(
        &format!("smtp://127.0.0.1:{port}"),
        &[
            ("KLAR_WEBHOOK_RETRY_MS", "50"),
            ("KLAR_WEBHOOK_ATTEMPTS", "3"),
        ],
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, status) = s.call("GET", "/v1/status", Some(&s.keys.0), None);
        if status["delivery_parked"] == 2 {
            break;
        }
        assert!(Instant::now() < deadline, "not parked: {status}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let parked = s.ws.ok(&["outbox", "acme", "--parked"]);
    assert!(
        parked.contains("parked after 3 attempt(s): the mail relay refused or failed"),
        "{parked}"
    );
    assert!(parked.contains("2 action(s)"), "{parked}");
    // klar mails for acme, so the CRM is never offered these requests.
    let (_, outbox) = s.call("GET", "/v1/outbox", Some(&s.keys.0), None);
    assert_eq!(outbox["actions"], serde_json::json!([]), "{outbox}");

    // The relay comes back; a person puts the mails back in the queue.
    let sink = SmtpSink::start_on(port);
    let out = s.ws.ok(&["redeliver", "acme", "--now", NOW]);
    assert_eq!(out, "2 parked deliver(ies) queued again\n");
    assert_eq!(sink.wait_for(2).len(), 2);
    let (_, status) = s.call("GET", "/v1/status", Some(&s.keys.0), None);
    assert_eq!(status["delivery_parked"], 0);
    let again = s.ws.run(&["redeliver", "acme", "--id", "nope"]);
    assert_eq!(stderr(&again), "klar: acme has no parked action nope\n");
}

/// Two purposes due together: one mail per contact asks about both, each
/// with its own consent text, and its one link shows both on the page.
#[test]
fn two_purposes_due_together_arrive_as_one_mail_with_both_texts() {
    let sink = SmtpSink::start();
    let s = serve_with_smtp_purposes(&sink.url(), &[], &[("newsletter", "Newsletter")]);
    let mails = sink.wait_for(2);
    // Two contacts, two purposes: two messages in the outbox, both mailed.
    let all: Value =
        serde_json::from_str(&s.ws.ok(&["outbox", "acme", "--all", "--json"])).expect("outbox");
    let requests = all
        .as_array()
        .map(|a| a.iter().filter(|i| i["kind"] == "send-request").count());
    assert_eq!(
        requests,
        Some(2),
        "one mail per contact, not one per purpose: {all}"
    );
    assert_eq!(mails.len(), 2);
    let mail = parse(mail_to(&mails, "j.gross@example.de"));
    let subject = mail.subject().unwrap_or_default().to_owned();
    assert!(subject.contains("Newsletter"), "{subject}");
    assert!(
        subject.contains("Pflege des geschäftlichen Kontakts"),
        "{subject}"
    );
    let text = mail.body_text(0).expect("a text part").into_owned();
    assert!(text.contains("für folgende Zwecke verwenden"), "{text}");
    assert_eq!(text.matches("„").count(), 2, "two consent texts: {text}");
    let html = mail.body_html(0).expect("an HTML part").into_owned();
    assert_eq!(html.matches("<blockquote").count(), 2, "{html}");
    let link = link_in(&text, &s.url);
    let (status, page) = s.raw("GET", &link.replacen(&s.url, "", 1), None, None, &[]);
    assert_eq!(status, 200);
    assert!(page.contains(r#"name="answer.newsletter""#), "{page}");
    let bundle: Value =
        serde_json::from_str(&s.ws.ok(&["evidence", "export", "acme", "C1", "--now", NOW]))
            .expect("a bundle");
    let purposes: Vec<&str> = bundle["deliveries"]
        .as_array()
        .map(|d| d.iter().filter_map(|x| x["purpose"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(purposes, ["contact-data", "newsletter"], "{bundle:#}");
}

/// The legal team's own German text, with both placeholders, on two lines.
const OWN_TEXT: &str = "Ich willige ein, dass {company} meine Kontaktdaten für „{purpose}“ speichert.\n\
Widerruf jederzeit über meinen persönlichen Link oder an datenschutz@mueller.example.\n";
const OWN_BODY: [&str; 2] = [
    "Ich willige ein, dass Müller & Söhne GmbH meine Kontaktdaten für „Pflege des geschäftlichen Kontakts“ speichert.",
    "Widerruf jederzeit über meinen persönlichen Link oder an datenschutz@mueller.example.",
];
const FRENCH_TEXT: &str = "J'accepte que {company} conserve mes coordonnées.";

/// The HTML a template makes of a text (minijinja's escaping).
fn escaped(text: &str) -> String {
    text.replace('&', "&amp;").replace('\'', "&#x27;")
}

#[test]
fn the_tenants_own_text_is_the_one_in_the_mail_on_the_page_and_in_the_evidence_word_for_word() {
    let sink = SmtpSink::start();
    let s = support::smtp::serve_with_smtp_prepared(&sink.url(), &[], &[], &|ws| {
        ws.write("de.txt", OWN_TEXT);
        ws.write("fr.txt", FRENCH_TEXT);
        ws.write(
            "french.csv",
            "external_id,first_name,last_name,email,phone,owner,source,created_at,language\n\
             C3,Amélie,Dubois,amelie@example.fr,,jk,web,2026-10-01,fr-FR\n",
        );
        ws.ok(&["import", "acme", "french.csv", "--now", NOW]);
        ws.ok(&[
            "tenant",
            "set",
            "acme",
            "--address",
            "Königstraße 1\\n70173 Stuttgart",
            "--managing-directors",
            "Anna Müller",
            "--register-entry",
            "Amtsgericht Stuttgart, HRB 123456",
            "--imprint-url",
            "https://mueller.example/impressum",
            "--privacy-url",
            "https://mueller.example/datenschutz",
            "--now",
            NOW,
        ]);
        let set = ws.ok(&[
            "text",
            "set",
            "acme",
            "contact-data",
            "de.txt",
            "--author",
            "Dr. Weber (DSB)",
            "--message",
            "Fassung der Rechtsabteilung",
            "--now",
            NOW,
        ]);
        assert!(
            set.starts_with("acme contact-data (de): version 1 set"),
            "{set}"
        );
        ws.ok(&[
            "text",
            "set",
            "acme",
            "contact-data",
            "fr.txt",
            "--language",
            "fr",
            "--author",
            "Dr. Weber (DSB)",
            "--message",
            "version française",
            "--now",
            NOW,
        ]);
    });
    let mails = sink.wait_for(3);
    let body = OWN_BODY.join("\n");
    let sha = klar::sha256_hex(body.as_bytes());

    // The mail carries the words as set, line by line.
    let mail = parse(mail_to(&mails, "j.gross@example.de"));
    let text = mail.body_text(0).expect("a text part").into_owned();
    let html = mail.body_html(0).expect("an HTML part").into_owned();
    for line in OWN_BODY {
        assert!(text.contains(line), "{line:?} in {text}");
        assert!(html.contains(&escaped(line)), "{line:?} in {html}");
    }
    // The company's legal details stand under the mail.
    for line in [
        "Königstraße 1\n70173 Stuttgart\nGeschäftsführung: Anna Müller\nAmtsgericht Stuttgart, HRB 123456",
        "Impressum: https://mueller.example/impressum",
        "Datenschutzhinweise: https://mueller.example/datenschutz",
    ] {
        assert!(text.contains(line), "{line:?} in {text}");
    }
    assert!(html.contains(">Impressum</a>"), "{html}");
    // The page shows the same words and their hash.
    let link = link_in(&text, &s.url);
    let path = link.replacen(&s.url, "", 1);
    let (status, page) = s.raw("GET", &path, None, None, &[]);
    assert_eq!(status, 200);
    assert!(page.contains(&escaped(&body)), "{page}");
    assert!(page.contains(&sha[..12]), "the page names the hash: {page}");
    assert!(
        page.contains("Königstraße 1<br>70173 Stuttgart<br>Geschäftsführung: Anna Müller"),
        "{page}"
    );
    assert!(page.contains(">Datenschutzhinweise</a>"), "{page}");

    // A contact who reads French gets the French text (on a German page
    // with the text marked as French); English has no own text: standard.
    let french = parse(mail_to(&mails, "amelie@example.fr"));
    let french_text = french.body_text(0).expect("a text part").into_owned();
    assert!(
        french_text.contains("J'accepte que Müller & Söhne GmbH conserve mes coordonnées."),
        "{french_text}"
    );
    let (_, french_page) = s.raw(
        "GET",
        &link_in(&french_text, &s.url).replacen(&s.url, "", 1),
        None,
        None,
        &[],
    );
    assert!(french_page.contains(r#"lang="fr""#), "{french_page}");
    let english = parse(mail_to(&mails, "zoe.hart@example.com"));
    assert!(
        english
            .body_text(0)
            .is_some_and(|t| t.contains("I agree that Müller & Söhne GmbH")),
        "English falls back to klar's standard text"
    );

    // A second version through the API: the link already sent keeps showing
    // version 1, and the answer to it is evidence of version 1.
    let key = Some(s.keys.0.as_str());
    let (status, v2) = s.call(
        "PUT",
        "/v1/texts/contact-data/de",
        key,
        Some(&serde_json::json!({"text": "Neue Fassung für {company}.", "author": "Dr. Weber (DSB)", "message": "kürzer"})),
    );
    assert_eq!(status, 201, "{v2}");
    assert_eq!(v2["version"], 2);
    assert_eq!(v2["body"], "Neue Fassung für Müller & Söhne GmbH.");
    let (_, page_again) = s.raw("GET", &path, None, None, &[]);
    assert!(page_again.contains(&escaped(&body)), "{page_again}");
    let token = path.trim_start_matches("/r/");
    s.ws.ok(&["respond", token, "accept", "--now", NOW]);
    let bundle: Value =
        serde_json::from_str(&s.ws.ok(&["evidence", "export", "acme", "C1", "--now", NOW]))
            .expect("a bundle");
    let texts = bundle["consent_texts"].as_array().expect("texts");
    assert_eq!(texts.len(), 1, "{bundle:#}");
    assert_eq!(texts[0]["body"], body.as_str());
    assert_eq!(texts[0]["sha256"], sha.as_str());
    assert_eq!(texts[0]["version"], 1);
    assert_eq!(texts[0]["author"], "Dr. Weber (DSB)");
    let answered = bundle["responses"]
        .as_array()
        .and_then(|r| r.iter().find(|x| x["detail"]["answer"] == "accept"))
        .expect("the answer's evidence");
    assert_eq!(
        answered["detail"]["text_sha256"],
        sha.as_str(),
        "{bundle:#}"
    );

    // A request issued from now on uses version 2.
    let (status, _) = s.call(
        "PUT",
        "/v1/contacts/C4",
        key,
        Some(&serde_json::json!({"first_name": "Jana", "last_name": "Kühn", "email": "jana@example.de", "owner": "jk", "language": "de"})),
    );
    assert_eq!(status, 200);
    // (The fourth mail confirms C1's answer.)
    let mails = sink.wait_for(5);
    let jana = parse(mail_to(&mails, "jana@example.de"));
    let jana_text = jana.body_text(0).expect("a text part").into_owned();
    assert!(
        jana_text.contains("Neue Fassung für Müller & Söhne GmbH."),
        "{jana_text}"
    );
    // Both versions are in the audit log with author and hash.
    let set: i64 =
        s.ws.sql()
            .query_row(
                "SELECT COUNT(*) FROM audit_log WHERE tenant = 'acme' AND kind = 'text-set'",
                (),
                |r| r.get(0),
            )
            .expect("counts");
    assert_eq!(set, 3, "de v1, fr v1, de v2");
    assert_eq!(s.ws.ok(&["audit", "verify", "acme"]).lines().count(), 1);
}
