//! The way back: every request mail, every confirmation page and every
//! confirmation mail carries the contact's personal link, where they change
//! their answer later. Through the real binary, a real SMTP server
//! (aiosmtpd) and the real pages: a contact refuses, klar never asks them
//! again, and weeks later they consent on their own initiative; the consent
//! is evidence with the text version they were shown.

mod support;

use serde_json::Value;
use support::server::Server;
use support::smtp::{SmtpSink, link_in, mail_to, parse, serve_with_smtp, serve_with_smtp_prepared};

const CONFIG: [&str; 4] = ["--config", "klar.toml", "--tick-seconds", "1"];

/// The path of the first personal link (`/p/` and 56 hex digits) in `text`.
fn personal_in(text: &str) -> String {
    let start = text
        .find("/p/")
        .unwrap_or_else(|| panic!("no personal link in {text}"));
    let secret: String = text[start + 3..]
        .chars()
        .take_while(char::is_ascii_hexdigit)
        .collect();
    assert_eq!(secret.len(), 56, "{text}");
    format!("/p/{secret}")
}

fn form_field(page: &str, name: &str) -> String {
    page.split(&format!("name=\"{name}\" value=\""))
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("no field {name} in {page}"))
        .to_owned()
}

/// Posts a form as the contact's browser does: with the CSRF cookie the
/// page set and the matching field.
fn post(s: &Server, path: &str, csrf: &str, fields: &str) -> (u16, String) {
    let cookie = format!("klar_csrf={csrf}");
    s.raw(
        "POST",
        path,
        None,
        Some(format!("csrf={csrf}&{fields}")),
        &[
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("Cookie", &cookie),
            ("User-Agent", "WayBack/1.0"),
        ],
    )
}

/// The (first) confirmation mail among `mails`.
fn confirmation_in(mails: &[Vec<u8>]) -> mail_parser::Message<'_> {
    mails
        .iter()
        .map(|m| parse(m))
        .find(|m| {
            m.subject()
                .is_some_and(|s| s.starts_with("Bestätigung Ihrer Antwort"))
        })
        .expect("a confirmation mail")
}

fn may_use(s: &Server) -> Value {
    let (status, body) = s.call("GET", "/v1/contacts/C1/use", Some(&s.keys.0), None);
    assert_eq!(status, 200, "{body}");
    body
}

/// Requests to C1 in the outbox, ever.
fn requests_to_c1(s: &Server) -> i64 {
    s.ws.sql()
        .query_row(
            "SELECT COUNT(*) FROM outbox WHERE contact = 'C1' AND kind = 'send-request'",
            (),
            |r| r.get(0),
        )
        .expect("count")
}

#[test]
fn a_refused_contact_consents_later_through_their_personal_link_and_is_never_asked_again() {
    let sink = SmtpSink::start();
    let mut s = serve_with_smtp(&sink.url(), &[]);
    let mails = sink.wait_for(2);

    // The request mail carries the response link and the personal link, in
    // both parts.
    let request = parse(mail_to(&mails, "j.gross@example.de"));
    let text = request.body_text(0).expect("a text part").into_owned();
    let html = request.body_html(0).expect("an HTML part").into_owned();
    assert!(
        text.contains("Über Ihren persönlichen Link können Sie Ihre Antworten jederzeit"),
        "{text}"
    );
    let from_request = personal_in(&text);
    assert_eq!(personal_in(&html), from_request, "both parts, one link");
    let respond = link_in(&text, &s.url).replacen(&s.url, "", 1);
    assert_ne!(respond, from_request);

    // The contact says no on the response page; the confirmation page shows
    // a personal link.
    let (status, page) = s.raw("GET", &respond, None, None, &[]);
    assert_eq!(status, 200, "{page}");
    let (status, thanks) = post(&s, &respond, &form_field(&page, "csrf"), "answer=refuse");
    assert_eq!(status, 200, "{thanks}");
    assert!(thanks.contains("Ihre Antwort ist gespeichert"), "{thanks}");
    assert!(
        thanks.contains("Meine Einwilligungen ansehen und ändern"),
        "{thanks}"
    );
    let from_page = personal_in(&thanks);
    assert!(
        thanks.contains(&format!("{}{from_page}", s.url)),
        "{thanks}"
    );
    // The message's own secret, under /p/: nothing more is stored for it.
    assert_eq!(from_page, from_request);
    assert_eq!(may_use(&s)["may_use"], false);

    // The confirmation mail says what was recorded and carries a personal
    // link of its own.
    let mails = sink.wait_for(3);
    let confirmation = confirmation_in(&mails);
    assert_eq!(
        confirmation
            .to()
            .and_then(|t| t.first())
            .and_then(|a| a.address()),
        Some("j.gross@example.de")
    );
    let confirmed = confirmation.body_text(0).expect("text").into_owned();
    assert!(confirmed.contains("Sie haben abgelehnt."), "{confirmed}");
    let from_confirmation = personal_in(&confirmed);
    assert!(
        confirmation
            .body_html(0)
            .is_some_and(|h| h.contains(&from_confirmation)),
        "the HTML part carries it too"
    );
    assert_eq!(from_confirmation, from_request);

    // Weeks pass: C2 (no answer) is reminded, C1 is never asked again.
    assert_eq!(requests_to_c1(&s), 1);
    for day in ["2026-12-16T08:00:00Z", "2026-12-30T08:00:00Z"] {
        s.ws.ok(&["tick", "--now", day]);
    }
    assert_eq!(
        requests_to_c1(&s),
        1,
        "a refused contact is not asked again"
    );
    let reminders: i64 =
        s.ws.sql()
            .query_row(
                "SELECT COUNT(*) FROM outbox WHERE contact = 'C2' AND kind = 'send-request'",
                (),
                |r| r.get(0),
            )
            .expect("count");
    assert!(reminders >= 2, "the ticks ran: C2 was reminded");

    // On 30 December, within the cleanup's grace period, C1 opens the link
    // from the request mail: it outlives the request's own link.
    s.restart_at(&[], &CONFIG, "2026-12-30T10:00:00Z");
    let (status, mine) = s.raw("GET", &from_request, None, None, &[]);
    assert_eq!(status, 200, "{mine}");
    assert!(mine.contains("Sie haben abgelehnt."), "{mine}");
    assert!(
        mine.contains("Wir fragen Sie dazu nicht noch einmal"),
        "{mine}"
    );
    assert!(mine.contains("Jetzt einwilligen"), "{mine}");
    assert!(mine.contains("Text in Fassung 1"), "{mine}");
    let csrf = form_field(&mine, "csrf");
    let version = form_field(&mine, "version");
    assert_eq!(version, "1");

    // Without the cookie, or for a text version that is not the current
    // one, nothing is recorded.
    let (status, _) = s.raw(
        "POST",
        &from_request,
        None,
        Some(format!(
            "csrf={csrf}&purpose=contact-data&change=consent&version=1"
        )),
        &[("Content-Type", "application/x-www-form-urlencoded")],
    );
    assert_eq!(status, 403);
    let (status, stale) = post(
        &s,
        &from_request,
        &csrf,
        "purpose=contact-data&change=consent&version=7",
    );
    assert_eq!(status, 409, "{stale}");
    assert!(stale.contains("Bitte laden Sie die Seite neu"), "{stale}");
    // A withdrawal is not on offer for a refused case.
    let (status, _) = post(
        &s,
        &from_request,
        &csrf,
        "purpose=contact-data&change=withdraw",
    );
    assert_eq!(status, 409);
    assert_eq!(may_use(&s)["may_use"], false);

    let (status, saved) = post(
        &s,
        &from_request,
        &csrf,
        "purpose=contact-data&change=consent&version=1",
    );
    assert_eq!(status, 200, "{saved}");
    assert!(
        saved.contains("Ihre Einwilligung ist gespeichert"),
        "{saved}"
    );
    let usable = may_use(&s);
    assert_eq!(usable["may_use"], true, "{usable}");
    assert_eq!(usable["basis"]["kind"], "consent", "{usable}");

    // The evidence: the consent on the contact's own initiative, through the
    // personal link, with the text they were shown, word for word.
    let bundle: Value = serde_json::from_str(&s.ws.ok(&[
        "evidence",
        "export",
        "acme",
        "C1",
        "--now",
        "2026-12-30T10:00:00Z",
    ]))
    .expect("a bundle");
    let consent = bundle["responses"]
        .as_array()
        .and_then(|r| r.iter().find(|x| x["kind"] == "consent"))
        .unwrap_or_else(|| panic!("no consent evidence in {bundle:#}"));
    let detail = &consent["detail"];
    assert_eq!(detail["initiative"], "own");
    assert_eq!(detail["channel"], "personal-link");
    assert_eq!(detail["text_version"], 1);
    assert_eq!(detail["user_agent"], "WayBack/1.0");
    let text_one = bundle["consent_texts"]
        .as_array()
        .and_then(|t| {
            t.iter()
                .find(|t| t["version"] == 1 && t["language"] == "de")
        })
        .expect("version 1 in the bundle");
    assert_eq!(detail["text_sha256"], text_one["sha256"]);
    let body = text_one["body"].as_str().expect("a body");
    let shown = body
        .replace('&', "&amp;")
        .replace('\'', "&#x27;")
        .replace('/', "&#x2f;")
        .replace('"', "&quot;");
    assert!(
        mine.contains(&shown),
        "the page showed the text that is evidence: {body}"
    );
    let audit = bundle["audit"].as_array().expect("audit rows");
    assert!(
        audit.iter().any(|r| r["summary"]
            .as_str()
            .is_some_and(|s| s.starts_with(
                "the contact consented on their own initiative: cleanup-pending → consented"
            ) && s.contains("[through the contact's personal link]"))),
        "{audit:#?}"
    );

    // The cleanup the refusal started is over: weeks later C1 is still
    // there and consented, and still nobody asked them.
    s.ws.ok(&["tick", "--now", "2027-02-15T08:00:00Z"]);
    assert_eq!(may_use(&s)["may_use"], true);
    assert_eq!(requests_to_c1(&s), 1);

    // Withdrawing is as easy, through the confirmation's link.
    s.restart_at(&[], &CONFIG, "2027-02-15T09:00:00Z");
    let (status, mine) = s.raw("GET", &from_confirmation, None, None, &[]);
    assert_eq!(status, 200);
    assert!(
        mine.contains("Sie haben eingewilligt am 30.12.2026"),
        "{mine}"
    );
    let (status, saved) = post(
        &s,
        &from_confirmation,
        &form_field(&mine, "csrf"),
        "purpose=contact-data&change=withdraw",
    );
    assert_eq!(status, 200, "{saved}");
    assert!(saved.contains("Ihr Widerruf ist gespeichert"), "{saved}");
    assert_eq!(may_use(&s)["may_use"], false);

    // Once the person is erased, no personal link shows anything.
    s.ws.ok(&["tick", "--now", "2027-04-01T08:00:00Z"]);
    for link in [&from_request, &from_page, &from_confirmation] {
        let (status, gone) = s.raw("GET", link, None, None, &[]);
        assert_eq!(status, 404, "{gone}");
        assert!(gone.contains("Dieser Link ist nicht gültig"), "{gone}");
    }
    assert_eq!(s.ws.ok(&["audit", "verify", "acme"]).lines().count(), 1);
}

#[test]
fn an_open_question_answered_through_the_personal_link_closes_the_request() {
    let sink = SmtpSink::start();
    let s = serve_with_smtp(&sink.url(), &[]);
    let mails = sink.wait_for(2);
    let request = parse(mail_to(&mails, "zoe.hart@example.com"));
    let text = request.body_text(0).expect("a text part").into_owned();
    assert!(
        text.contains("Through your personal link you can see and change your answers"),
        "{text}"
    );
    let personal = personal_in(&text);
    let respond = link_in(&text, &s.url).replacen(&s.url, "", 1);
    let (status, page) = s.raw("GET", &personal, None, None, &[]);
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Your answer is still open."), "{page}");
    assert!(page.contains("Yes, I agree") && page.contains("No, I do not agree"));
    let (status, saved) = post(
        &s,
        &format!("{personal}?lang=en"),
        &form_field(&page, "csrf"),
        &format!(
            "purpose=contact-data&change=consent&version={}",
            form_field(&page, "version")
        ),
    );
    assert_eq!(status, 200, "{saved}");
    assert!(saved.contains("Your consent is recorded"), "{saved}");
    // The request is answered: its link is used up, nothing is pending.
    let (status, _) = s.raw("GET", &respond, None, None, &[]);
    assert_eq!(status, 404);
    let (_, usable) = s.call("GET", "/v1/contacts/C2/use", Some(&s.keys.0), None);
    assert_eq!(usable["may_use"], true, "{usable}");
    // An unknown personal link looks like any invalid link.
    let (status, unknown) = s.raw("GET", &format!("/p/{}", "0".repeat(40)), None, None, &[]);
    assert_eq!(status, 404);
    assert!(
        unknown.contains("Dieser Link ist nicht gültig"),
        "{unknown}"
    );
}

#[test]
fn a_crm_gets_the_personal_link_with_every_request_and_a_confirmation_to_send() {
    let s = Server::start();
    let acme = s.keys.0.as_str();
    let contact = serde_json::json!({
        "first_name": "Jürgen", "last_name": "Groß", "email": "j.gross@example.de",
        "owner": "jk", "source": "web", "created_at": "2026-10-01"
    });
    s.call("PUT", "/v1/contacts/C1", Some(acme), Some(&contact));
    s.ws.ok(&["tick", "--now", support::server::NOW]);
    let (_, outbox) = s.call("GET", "/v1/outbox?after=0", Some(acme), None);
    let request = &outbox["actions"][0];
    assert_eq!(request["kind"], "send-request", "{outbox}");
    let token = request["payload"]["token"]
        .as_str()
        .expect("a token")
        .to_owned();
    assert_eq!(
        request["payload"]["personal_url"],
        format!("{}/p/{token}", s.url)
    );
    // Once the CRM has it, klar forgets the secret.
    let (status, _) = s.call(
        "POST",
        "/v1/outbox/ack",
        Some(acme),
        Some(&serde_json::json!({"ids": [request["id"]]})),
    );
    assert_eq!(status, 200);
    let kept: String =
        s.ws.sql()
            .query_row(
                "SELECT payload FROM outbox WHERE kind = 'send-request'",
                (),
                |r| r.get(0),
            )
            .expect("the action");
    assert!(!kept.contains(&token), "{kept}");

    // The answer queues a confirmation with the personal link.
    let said =
        s.ws.ok(&["respond", &token, "refuse", "--now", support::server::NOW]);
    assert!(said.contains("personal link: /p/"), "{said}");
    let (_, outbox) = s.call("GET", "/v1/outbox", Some(acme), None);
    let confirmation = outbox["actions"]
        .as_array()
        .and_then(|a| a.iter().find(|a| a["kind"] == "send-confirmation"))
        .unwrap_or_else(|| panic!("no confirmation in {outbox}"));
    let payload = &confirmation["payload"];
    assert_eq!(payload["channel"], "email");
    assert_eq!(payload["template"], "confirmation");
    assert_eq!(payload["purposes"][0]["purpose"], "contact-data");
    assert_eq!(payload["purposes"][0]["answer"], "refuse");
    let url = payload["personal_url"].as_str().expect("a personal link");
    assert!(said.contains(url.trim_start_matches(&s.url)), "{said}");
    let (status, page) = s.raw("GET", url.trim_start_matches(&s.url), None, None, &[]);
    assert_eq!(status, 200);
    assert!(page.contains("Sie haben abgelehnt."), "{page}");
}

/// A company words its confirmation mails itself: `klar template set` takes
/// `confirmation.txt` only if it shows the personal link, and klar's mailer
/// then sends the company's text with the answers filled in.
#[test]
fn a_tenants_own_confirmation_template_is_checked_and_sent() {
    let sink = SmtpSink::start();
    let s = serve_with_smtp_prepared(&sink.url(), &[], &[], &|ws| {
        ws.write(
            "ohne-link.txt",
            "{{ greeting }}\n{% for a in answers %}{{ a.purpose }}: {{ a.what }}\n{% endfor %}",
        );
        let out = ws.run(&[
            "template",
            "set",
            "acme",
            "confirmation.txt",
            "ohne-link.txt",
            "--author",
            "jk",
            "--message",
            "eigener Text",
        ]);
        assert_eq!(out.status.code(), Some(1));
        let said = format!("{}{}", support::stdout(&out), support::stderr(&out));
        assert!(
            said.contains("confirmation.txt must show {{ manage_link }}"),
            "{said}"
        );
        ws.write(
            "bestaetigung.txt",
            "{{ greeting }}\n\nDanke von Müller & Söhne!\n{% for a in answers %}- {{ a.purpose }}: {{ a.what }}\n{% endfor %}\nIhr Link: {{ manage_link }}\n",
        );
        ws.ok(&[
            "template",
            "set",
            "acme",
            "confirmation.txt",
            "bestaetigung.txt",
            "--author",
            "jk",
            "--message",
            "eigener Text",
        ]);
    });
    let mails = sink.wait_for(2);
    let request = parse(mail_to(&mails, "j.gross@example.de"));
    let text = request.body_text(0).expect("a text part").into_owned();
    let respond = link_in(&text, &s.url).replacen(&s.url, "", 1);
    let (_, page) = s.raw("GET", &respond, None, None, &[]);
    let (status, _) = post(&s, &respond, &form_field(&page, "csrf"), "answer=refuse");
    assert_eq!(status, 200);
    let mails = sink.wait_for(3);
    let confirmation = confirmation_in(&mails);
    let confirmed = confirmation.body_text(0).expect("text").into_owned();
    assert!(
        confirmed.contains("Danke von Müller & Söhne!"),
        "{confirmed}"
    );
    assert!(
        confirmed.contains("\n- Pflege des geschäftlichen Kontakts: Sie haben abgelehnt. "),
        "{confirmed}"
    );
    assert_eq!(personal_in(&confirmed), personal_in(&text));
    // The HTML part is still klar's own, with the same link.
    assert!(
        confirmation
            .body_html(0)
            .is_some_and(|h| h.contains(&personal_in(&text))),
        "the HTML part"
    );
}
