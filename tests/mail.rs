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
