//! The response page in a real browser: Debian's headless Chromium, driven
//! through chromedriver, opens the personal link from a real mail (sent by
//! `klar serve` to a real SMTP server), and a contact agrees or refuses. The
//! answer must arrive with the browser's own user agent in its evidence. A
//! contact who refused finds the way back through the personal link of the
//! confirmation page and consents after all.
//!
//! Screenshots of the pages (German and English) are kept as test artefacts
//! in `target/test-artefacts/`.

mod support;

use serde_json::{Value, json};
use support::browser::Browser;
use support::server::Server;
use support::smtp::{SmtpSink, link_in, mail_to, parse, serve_with_smtp};

/// The link in the text part of the mail klar sent to `address`.
fn link_from_mail(sink: &SmtpSink, server: &Server, address: &str) -> String {
    let mails = sink.wait_for(2);
    let mail = parse(mail_to(&mails, address));
    link_in(&mail.body_text(0).expect("a text part"), &server.url)
}

/// WCAG 2 contrast of every text on the page against its background; the
/// lowest ratio and where it is.
const CONTRAST: &str = r#"
const rgb = s => (s.match(/[\d.]+/g) || []).map(Number);
const lum = c => {
  const [r, g, b] = c.slice(0, 3).map(v => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); });
  return 0.2126 * r + 0.7152 * g + 0.0722 * b;
};
const background = el => {
  for (; el; el = el.parentElement) {
    const c = rgb(getComputedStyle(el).backgroundColor);
    if (c.length === 3 || (c.length === 4 && c[3] > 0)) return c;
  }
  return [255, 255, 255];
};
let worst = { ratio: 99, what: "" };
for (const el of document.querySelectorAll("body *")) {
  if (![...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim())) continue;
  const [a, b] = [lum(rgb(getComputedStyle(el).color)), lum(background(el))];
  const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
  if (ratio < worst.ratio) worst = { ratio, what: el.tagName + " " + el.className };
}
return worst;
"#;

/// What a screen reader and a keyboard user need: a language, named
/// buttons in a labelled group, a language switch that says its language.
const STRUCTURE: &str = r#"
const buttons = [...document.querySelectorAll("form button")];
return {
  lang: document.documentElement.lang,
  title: document.title,
  legend: (document.querySelector("form fieldset legend") || {}).textContent || "",
  buttons: buttons.map(b => ({ name: b.textContent.trim(), type: b.type, tabIndex: b.tabIndex })),
  switch_hreflang: (document.querySelector("nav a[hreflang]") || {}).hreflang || "",
  scripts: document.scripts.length,
  h1: document.querySelectorAll("h1").length,
};
"#;

fn use_of(server: &Server, contact: &str) -> Value {
    server
        .call(
            "GET",
            &format!("/v1/contacts/{contact}/use"),
            Some(&server.keys.0),
            None,
        )
        .1
}

#[test]
fn a_contact_agrees_in_german_in_a_real_browser_from_a_real_mail() {
    let sink = SmtpSink::start();
    let server = serve_with_smtp(&sink.url(), &[]);
    let link = link_from_mail(&sink, &server, "j.gross@example.de");
    let browser = Browser::start("de-DE");

    browser.goto(&link);
    assert_eq!(
        browser.text("h1"),
        "Dürfen wir Ihre Daten weiter verwenden?"
    );
    assert!(browser.text("main").contains("Müller & Söhne GmbH"));
    assert!(
        browser
            .text("#consent-text")
            .starts_with("Ich bin damit einverstanden")
    );
    let structure = browser.script(STRUCTURE);
    assert_eq!(structure["lang"], "de");
    assert_eq!(structure["legend"], "Ihre Antwort");
    assert_eq!(
        structure["buttons"],
        json!([
            {"name": "Ja, ich bin einverstanden", "type": "submit", "tabIndex": 0},
            {"name": "Nein, ich bin nicht einverstanden", "type": "submit", "tabIndex": 0},
        ])
    );
    assert_eq!(structure["switch_hreflang"], "en");
    assert_eq!(
        (structure["scripts"].as_i64(), structure["h1"].as_i64()),
        (Some(0), Some(1))
    );
    let contrast = browser.script(CONTRAST);
    assert!(
        contrast["ratio"].as_f64().is_some_and(|r| r >= 4.5),
        "WCAG AA needs 4.5:1 for text: {contrast}"
    );
    browser.screenshot("response-page-de");
    let user_agent = browser.script("return navigator.userAgent");

    browser.click("button.yes");
    browser.heading_becomes("Vielen Dank");
    browser.screenshot("confirmation-de");

    let answer = use_of(&server, "C1");
    assert_eq!(
        (answer["state"].as_str(), answer["may_use"].as_bool()),
        (Some("consented"), Some(true)),
        "{answer}"
    );
    let (_, bundle) = server.call(
        "GET",
        "/v1/contacts/C1/evidence",
        Some(&server.keys.0),
        None,
    );
    let response = &bundle["responses"][0]["detail"];
    assert_eq!(response["answer"], "accept", "{bundle:#}");
    assert_eq!(response["user_agent"], user_agent);
    assert_eq!(response["ip"], "127.0.0.1");
    assert_eq!(response["language"], "de");

    // The link worked once; opened again it reveals nothing.
    browser.goto(&link);
    browser.heading_becomes("Dieser Link ist nicht gültig");
    assert!(!browser.text("main").contains("Groß"));
}

#[test]
fn a_contact_switches_to_english_and_refuses_with_the_keyboard_alone() {
    let sink = SmtpSink::start();
    let server = serve_with_smtp(&sink.url(), &[]);
    let link = link_from_mail(&sink, &server, "zoe.hart@example.com");
    // The browser prefers German; the contact switches to English on the page.
    let browser = Browser::start("de-DE");
    browser.goto(&link);
    assert_eq!(
        browser.text("h1"),
        "Dürfen wir Ihre Daten weiter verwenden?"
    );
    browser.click("nav a[hreflang=en]");
    browser.heading_becomes("May we keep using your data?");
    assert_eq!(browser.script(STRUCTURE)["lang"], "en");
    let contrast = browser.script(CONTRAST);
    assert!(
        contrast["ratio"].as_f64().is_some_and(|r| r >= 4.5),
        "{contrast}"
    );
    browser.screenshot("response-page-en");

    // Tab to the first button, Tab to the second, Enter: no mouse needed.
    browser.keys("\u{e004}\u{e004}");
    let focused = browser.script("return document.activeElement.textContent.trim()");
    assert_eq!(focused, "No, I do not agree");
    browser.keys("\u{e007}");
    browser.heading_becomes("Your answer is recorded");
    browser.screenshot("confirmation-en");

    let answer = use_of(&server, "C2");
    assert_eq!(answer["may_use"], false, "{answer}");
    // The default policy starts the cleanup after a refusal at once.
    assert_eq!(answer["band"], "removed", "{answer}");
    let (_, bundle) = server.call(
        "GET",
        "/v1/contacts/C2/evidence",
        Some(&server.keys.0),
        None,
    );
    let response = &bundle["responses"][0]["detail"];
    assert_eq!(response["answer"], "refuse", "{bundle:#}");
    assert!(
        response["user_agent"]
            .as_str()
            .is_some_and(|ua| ua.contains("Chrome/")),
        "{response}"
    );

    // The way back: the confirmation page links to the contact's personal
    // page, where they consent after all (the browser prefers German).
    browser.click("main a");
    browser.heading_becomes("Ihre Einwilligungen");
    assert!(
        browser.text("main").contains("Sie haben abgelehnt."),
        "{}",
        browser.text("main")
    );
    let contrast = browser.script(CONTRAST);
    assert!(
        contrast["ratio"].as_f64().is_some_and(|r| r >= 4.5),
        "{contrast}"
    );
    assert_eq!(browser.script("return document.scripts.length"), 0);
    browser.screenshot("personal-page-de");
    browser.click("button.yes");
    browser.heading_becomes("Ihre Änderung ist gespeichert");
    let answer = use_of(&server, "C2");
    assert_eq!(answer["may_use"], true, "{answer}");
    let (_, bundle) = server.call(
        "GET",
        "/v1/contacts/C2/evidence",
        Some(&server.keys.0),
        None,
    );
    let consent = bundle["responses"]
        .as_array()
        .and_then(|r| r.iter().find(|x| x["kind"] == "consent"))
        .unwrap_or_else(|| panic!("no consent in {bundle:#}"));
    assert_eq!(consent["detail"]["initiative"], "own");
    assert!(
        consent["detail"]["user_agent"]
            .as_str()
            .is_some_and(|ua| ua.contains("Chrome/")),
        "{consent}"
    );
}
