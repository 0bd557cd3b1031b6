//! The cockpit in a real browser: Debian's headless Chromium against the
//! real `klar serve`. A data-protection officer who has never seen a
//! terminal signs up from her link, signs in, sees where the tenant stands,
//! approves a cleanup someone else asked for and is refused one she asked
//! for herself, and prints an auditor's proof to PDF. An owner works his
//! queue with a bulk decision. Every page passes an axe-core audit with no
//! serious or critical violation, and screenshots of each page in German
//! and English are kept in `target/test-artefacts/`.

mod support;

use support::browser::Browser;
use support::cockpit::{self, PASSWORD, at};
use support::server::Server;
use support::smtp::{SmtpSink, mail_to, parse};

/// axe-core must find nothing serious or critical on the page.
fn audited(browser: &Browser, page: &str) {
    let violations = browser.axe();
    assert!(violations.is_empty(), "axe-core on {page}: {violations:#?}");
}

/// Opens `path` in both languages: audit and screenshot each.
fn both_languages(browser: &Browser, server: &Server, path: &str, name: &str) {
    for lang in ["de", "en"] {
        let sep = if path.contains('?') { '&' } else { '?' };
        browser.goto(&format!("{}{path}{sep}lang={lang}", server.url));
        audited(browser, &format!("{name} ({lang})"));
        browser.screenshot(&format!("cockpit-{name}-{lang}"));
    }
}

fn sign_in(browser: &Browser, server: &Server, tenant: &str, account: &str) {
    browser.goto(&format!("{}/cockpit/login", server.url));
    browser.type_into("#tenant", tenant);
    browser.type_into("#account", account);
    browser.type_into("#password", PASSWORD);
    browser.click("button[type=submit].primary");
    browser.heading_becomes("Meine Aufgaben");
}

#[test]
fn a_dpo_signs_in_approves_a_cleanup_and_prints_the_proof() {
    let (ws, links) = cockpit::prepare();
    // Lead asked for C4's cleanup (at the terminal, as an administrator
    // would record it); the DPO owns C1.
    ws.ok(&[
        "decide",
        "acme",
        "C4",
        "--action",
        "cleanup",
        "--by",
        "lead",
        "--reason",
        "Dublette",
        "--now",
        &at(15),
    ]);
    let server = Server::launch_at(ws, &[], &["--tick-seconds", "0"], &at(15));
    let browser = Browser::start("de-DE");

    // The audit itself sees problems: a field without a label is one.
    browser.goto(
        "data:text/html,<!doctype html><html lang=de><title>x</title><input type=text></html>",
    );
    let found = browser.axe();
    assert!(
        found.iter().any(|v| v.contains("label")),
        "axe-core finds an unlabelled field: {found:?}"
    );

    // Sign-up from the one-time link, in the browser.
    browser.goto(&format!("{}{}", server.url, links["dpo"]));
    audited(&browser, "sign-up");
    browser.screenshot("cockpit-signup-de");
    browser.type_into("#password", PASSWORD);
    browser.type_into("#password2", PASSWORD);
    browser.click("button[type=submit]");
    browser.heading_becomes("Passwort festlegen");
    assert!(
        browser
            .text("main")
            .contains("Ihr Passwort ist gespeichert")
    );

    // With the keyboard alone: the skip link comes first, then the fields.
    browser.goto(&format!("{}/cockpit/login", server.url));
    browser.keys("\u{e004}");
    let focused = browser.script("return document.activeElement.textContent.trim()");
    assert_eq!(focused, "Zum Inhalt springen");
    browser.keys("\u{e004}acme\u{e004}dpo\u{e004}nicht das Passwort\u{e007}");
    browser.heading_becomes("Anmelden");
    assert!(browser.text("#login-error").contains("stimmen nicht"));

    // Sign-in: a wrong password first.
    browser.goto(&format!("{}/cockpit/login", server.url));
    audited(&browser, "sign-in");
    browser.screenshot("cockpit-login-de");
    browser.type_into("#tenant", "acme");
    browser.type_into("#account", "dpo");
    browser.type_into("#password", "nicht das Passwort");
    browser.click("button[type=submit].primary");
    assert!(browser.text("#login-error").contains("stimmen nicht"));
    audited(&browser, "sign-in with an error");
    sign_in(&browser, &server, "acme", "dpo");

    // Her queue opens on the cleanup that waits for her.
    let queue = browser.text("main");
    assert!(
        queue.contains("C4") && queue.contains("braucht eine Freigabe"),
        "{queue}"
    );
    both_languages(&browser, &server, "/cockpit/queue", "queue");
    both_languages(&browser, &server, "/cockpit/queue?view=all", "all-cases");

    // Where the tenant stands: charts with text alternatives.
    both_languages(&browser, &server, "/cockpit/overview", "overview");
    browser.goto(&format!("{}/cockpit/overview", server.url));
    let unnamed = browser.script(
        "return [...document.querySelectorAll('svg')].filter(s => \
           s.getAttribute('role') !== 'img' || !s.querySelector('title') || !s.querySelector('desc')).length;",
    );
    assert_eq!(unnamed, 0, "every chart has a title and a description");

    // She approves the cleanup Lead asked for.
    browser.goto(&format!("{}/cockpit/case/C4", server.url));
    audited(&browser, "case C4");
    browser.click("button[value=approve]");
    browser.heading_becomes("Kontakt C4: Lena Vogt");
    let page = browser.text("main");
    assert!(
        page.contains("erledigt, jetzt Bereinigung geplant"),
        "{page}"
    );
    assert!(page.contains("freigegeben von dpo"), "{page}");
    both_languages(&browser, &server, "/cockpit/case/C4", "case");

    // On C1 she may not decide (that is the owner's), but she places a
    // legal hold.
    browser.goto(&format!("{}/cockpit/case/C1", server.url));
    assert!(
        !browser.text("main").contains("bereinigen"),
        "decisions need the owner role"
    );
    browser.type_into("#reason-1", "Prüfung durch die Aufsicht");
    browser.click("button[value=hold-on]");
    browser.heading_becomes("Kontakt C1: Jürgen Groß");
    assert!(
        browser.text("main").contains("erledigt"),
        "{}",
        browser.text("main")
    );

    // The auditor's proof: printable, in German and English, printed to PDF.
    both_languages(&browser, &server, "/cockpit/case/C4/proof", "proof");
    browser.goto(&format!("{}/cockpit/case/C4/proof", server.url));
    let proof = browser.text("main");
    assert!(
        proof.contains("Nachweis der Einwilligung") && proof.contains("Prüfprotokoll"),
        "{proof}"
    );
    assert!(proof.contains("Die Kette ist unversehrt."), "{proof}");
    let pdf = browser.pdf("cockpit-proof-C4-de");
    assert!(pdf.starts_with(b"%PDF-"), "a PDF");
    assert!(pdf.len() > 10_000, "a real document: {} bytes", pdf.len());
    browser.goto(&format!("{}/cockpit/case/C4/proof?lang=en", server.url));
    assert!(browser.text("h1").contains("Proof of consent"));
    browser.pdf("cockpit-proof-C4-en");

    both_languages(&browser, &server, "/cockpit/settings", "settings");
    both_languages(&browser, &server, "/cockpit/policy", "policy-viewer");

    // Sign-out.
    browser.goto(&format!("{}/cockpit/queue", server.url));
    browser.click("header form button");
    browser.heading_becomes("Anmelden");
    browser.goto(&format!("{}/cockpit/queue", server.url));
    browser.heading_becomes("Anmelden");
}

#[test]
fn an_approver_cannot_approve_a_cleanup_she_asked_for_in_the_browser() {
    let (ws, links) = cockpit::prepare();
    let server = Server::launch_at(ws, &[], &["--tick-seconds", "0"], &at(15));
    let browser = Browser::start("de-DE");
    browser.goto(&format!("{}{}", server.url, links["lead"]));
    browser.type_into("#password", PASSWORD);
    browser.type_into("#password2", PASSWORD);
    browser.click("button[type=submit]");
    browser.heading_becomes("Passwort festlegen");
    sign_in(&browser, &server, "acme", "lead");
    browser.goto(&format!("{}/cockpit/case/C4", server.url));
    browser.type_into("#reason-1", "Dublette von C2");
    browser.click("button[value='decide:cleanup']");
    browser.heading_becomes("Kontakt C4: Lena Vogt");
    browser.click("button[value=approve]");
    browser.heading_becomes("Kontakt C4: Lena Vogt");
    let page = browser.text("main");
    assert!(
        page.contains("lead asked for this cleanup and cannot also approve it"),
        "{page}"
    );
    audited(&browser, "a refused self-approval");
    browser.screenshot("cockpit-self-approval-refused-de");
}

#[test]
fn an_owner_works_his_queue_in_bulk_in_the_browser() {
    let (ws, links) = cockpit::prepare();
    let server = Server::launch_at(ws, &[], &["--tick-seconds", "0"], &at(15));
    let browser = Browser::start("de-DE");
    browser.goto(&format!("{}{}", server.url, links["jk"]));
    browser.type_into("#password", PASSWORD);
    browser.type_into("#password2", PASSWORD);
    browser.click("button[type=submit]");
    browser.heading_becomes("Passwort festlegen");
    sign_in(&browser, &server, "acme", "jk");

    // His weekly digest links straight to each case.
    let sink = SmtpSink::start();
    server.ws.write(
        "klar.toml",
        &format!(
            "public_url = \"{}\"\n[smtp]\nurl = \"{}\"\n[smtp.from]\nacme = \"Müller GmbH <datenschutz@mueller.example>\"\n",
            server.url,
            sink.url()
        ),
    );
    server
        .ws
        .ok(&["digest", "--config", "klar.toml", "--now", &at(15)]);
    let mails = sink.wait_for(3);
    let text = parse(mail_to(&mails, "jk@acme.example"))
        .body_text(0)
        .expect("a text")
        .to_string();
    let links: Vec<&str> = text
        .split_whitespace()
        .filter(|w| w.contains("/cockpit/case/"))
        .collect();
    assert_eq!(links.len(), 2, "{text}");
    for link in links {
        browser.goto(link);
        let contact = link.rsplit('/').next().unwrap_or_default();
        assert!(
            browser
                .text("h1")
                .starts_with(&format!("Kontakt {contact}")),
            "{link}"
        );
        assert!(
            browser
                .text("main")
                .contains("Entscheiden: andere Rechtsgrundlage")
        );
    }

    // The whole list, so that Mehmet's case is in the selection too.
    browser.goto(&format!(
        "{}/cockpit/queue?view=all&state=awaiting-decision",
        server.url
    ));
    // The page's own script adds "select all"; it works with the keyboard.
    browser.click("#select-all");
    browser.type_into("#b-reason", "Bestandskunde mit Vertrag");
    browser
        .script("document.querySelector('#b-action').value = 'decide:other-basis'; return null;");
    browser.click("fieldset.bulk button[type=submit]");
    browser.heading_becomes("Alle Fälle");
    let results = browser.text("section.results");
    assert!(
        results.contains("2 ausgeführt · 2 übersprungen"),
        "{results}"
    );
    assert!(
        results.contains("the case is m.yilmaz's, not yours"),
        "{results}"
    );
    assert!(
        results.contains("the case is lead's, not yours"),
        "{results}"
    );
    audited(&browser, "the queue after a bulk decision");
    browser.screenshot("cockpit-bulk-results-de");
}

#[test]
fn an_admin_runs_a_dry_run_of_the_policy_in_the_browser() {
    let (ws, links) = cockpit::prepare();
    let server = Server::launch_at(ws, &[], &["--tick-seconds", "0"], &at(15));
    let browser = Browser::start("de-DE");
    browser.goto(&format!("{}{}", server.url, links["root"]));
    browser.type_into("#password", PASSWORD);
    browser.type_into("#password2", PASSWORD);
    browser.click("button[type=submit]");
    browser.heading_becomes("Passwort festlegen");
    sign_in(&browser, &server, "acme", "root");
    both_languages(&browser, &server, "/cockpit/policy", "policy");
    both_languages(&browser, &server, "/cockpit/people", "people");
    both_languages(&browser, &server, "/cockpit/keys", "keys");
    both_languages(&browser, &server, "/cockpit/setup", "setup");
    browser.goto(&format!("{}/cockpit/policy", server.url));
    browser.type_into("#p-days", "28");
    browser.click("button[value=simulate]");
    browser.heading_becomes("Regelwerk");
    let outcome = browser.text("section.results");
    assert!(
        outcome.contains("Wöchentliche Vorschau (28 Tage)"),
        "{outcome}"
    );
    let unnamed = browser.script(
        "return [...document.querySelectorAll('svg')].filter(s => \
           s.getAttribute('role') !== 'img' || !s.querySelector('title') || !s.querySelector('desc')).length;",
    );
    assert_eq!(
        unnamed, 0,
        "the forecast chart has a title and a description"
    );
    audited(&browser, "a dry run's forecast");
    browser.screenshot("cockpit-policy-dry-run-de");
}
