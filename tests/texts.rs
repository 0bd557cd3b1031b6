//! `klar text` through the real binary: the legal team sets a text, sees
//! its mistakes by line and column, lists, reads and compares versions, and
//! previews the mail and the page in files.

mod support;

use support::*;

const NOW: &str = "2026-11-30T09:00:00Z";

fn tenant() -> Workspace {
    let ws = Workspace::new(&[]);
    ws.ok(&[
        "tenant",
        "add",
        "acme",
        "--name",
        "Müller GmbH",
        "--now",
        NOW,
    ]);
    ws.ok(&[
        "purpose",
        "add",
        "acme",
        "newsletter",
        "--description",
        "Newsletter über neue Maschinen",
        "--now",
        NOW,
    ]);
    ws
}

fn set(ws: &Workspace, file: &str, message: &str) -> std::process::Output {
    ws.run(&[
        "text",
        "set",
        "acme",
        "newsletter",
        file,
        "--author",
        "Dr. Weber",
        "--message",
        message,
        "--now",
        NOW,
    ])
}

#[test]
fn a_text_with_mistakes_is_refused_with_line_and_column_and_nothing_is_stored() {
    let ws = tenant();
    ws.write(
        "bad.txt",
        "Ich willige ein, dass {company} mir schreibt.\nZweck: {zweck}.\nGeschweifte } Klammer\n",
    );
    let out = set(&ws, "bad.txt", "erste Fassung");
    assert_eq!(out.status.code(), Some(1));
    let printed = stdout(&out);
    assert!(
        printed.starts_with(
            "bad.txt:2:8: error: unknown placeholder {zweck}: use {company} or {purpose}"
        ),
        "{printed}"
    );
    assert!(
        printed.contains("bad.txt:3:13: error: a } that closes nothing"),
        "{printed}"
    );
    assert!(
        printed.ends_with("bad.txt: not set: the text has 2 mistake(s)\n"),
        "{printed}"
    );
    let list = ws.ok(&["text", "list", "acme", "--json"]);
    assert_eq!(list.trim(), "[]");

    // Empty, not UTF-8, a bad language, an unknown purpose: refused, named.
    ws.write("empty.txt", " \n\n");
    let out = set(&ws, "empty.txt", "leer");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("the text is empty"),
        "{}",
        stderr(&out)
    );
    std::fs::write(ws.path().join("latin1.txt"), b"Gr\xfc\xdfe").expect("writes");
    let out = set(&ws, "latin1.txt", "x");
    assert!(stderr(&out).contains("not valid UTF-8"), "{}", stderr(&out));
    ws.write("ok.txt", "Text");
    let out = ws.run(&[
        "text",
        "set",
        "acme",
        "newsletter",
        "ok.txt",
        "--language",
        "Deutsch",
        "--author",
        "a",
        "--message",
        "m",
    ]);
    assert!(
        stderr(&out).contains("is not a language code"),
        "{}",
        stderr(&out)
    );
    let out = ws.run(&[
        "text",
        "set",
        "acme",
        "nope",
        "ok.txt",
        "--author",
        "a",
        "--message",
        "m",
    ]);
    assert!(
        stderr(&out).contains("tenant acme has no purpose nope"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn versions_are_listed_shown_and_compared_with_author_and_message() {
    let ws = tenant();
    ws.write(
        "v1.txt",
        "Ich willige ein, dass {company} mir den {purpose} schickt.\r\nWiderruf jederzeit.\r\n",
    );
    let out = set(&ws, "v1.txt", "erste Fassung");
    assert!(out.status.success(), "{}", stderr(&out));
    ws.write(
        "v2.txt",
        "Ich willige ein, dass {company} mir den {purpose} schickt.\nWiderruf jederzeit, auch per E-Mail.\n",
    );
    assert!(set(&ws, "v2.txt", "Widerruf per E-Mail").status.success());

    let list = ws.ok(&["text", "list", "acme"]);
    assert!(list.contains("newsletter       de         1  "), "{list}");
    assert!(list.contains("newsletter       de         2* "), "{list}");
    assert!(
        list.contains("Dr. Weber        Widerruf per E-Mail"),
        "{list}"
    );

    let shown = ws.ok(&["text", "show", "acme", "newsletter", "1"]);
    assert!(
        shown.ends_with(
            "\nIch willige ein, dass Müller GmbH mir den Newsletter über neue Maschinen schickt.\nWiderruf jederzeit.\n"
        ),
        "CRLF gone, placeholders filled: {shown}"
    );
    let diff = ws.ok(&["text", "diff", "acme", "newsletter", "1", "2"]);
    assert!(
        diff.contains("-Widerruf jederzeit.\n+Widerruf jederzeit, auch per E-Mail.\n"),
        "{diff}"
    );
    let out = ws.run(&["text", "show", "acme", "newsletter", "9"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("purpose newsletter has no version 9 of its text in de"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_preview_writes_the_mail_and_the_page_in_both_languages() {
    let ws = tenant();
    ws.write(
        "draft.txt",
        "Entwurf: {company} fragt nach „{purpose}“ & mehr.",
    );
    let out = ws.ok(&[
        "text",
        "preview",
        "acme",
        "newsletter",
        "--file",
        "draft.txt",
        "-o",
        "vorschau",
        "--now",
        NOW,
    ]);
    assert!(
        out.ends_with("6 file(s) for acme newsletter; the link in them leads nowhere\n"),
        "{out}"
    );
    let read = |name: &str| {
        std::fs::read_to_string(ws.path().join("vorschau").join(name)).expect("written")
    };
    let words = "Entwurf: Müller GmbH fragt nach „Newsletter über neue Maschinen“ & mehr.";
    assert!(
        read("mail-de.txt").contains(words),
        "{}",
        read("mail-de.txt")
    );
    assert!(read("mail-de.html").contains(&words.replace('&', "&amp;")));
    assert!(read("page-de.html").contains(&words.replace('&', "&amp;")));
    assert!(read("mail-de.txt").starts_with("Subject: Ihre Einwilligung: Newsletter"));
    // English has no text of the tenant's: klar's standard text, as an
    // English contact would read it.
    assert!(
        read("page-en.html").contains("I agree that Müller GmbH"),
        "{}",
        read("page-en.html")
    );
    assert!(
        read("mail-en.txt").contains("Dear Erika Mustermann,"),
        "{}",
        read("mail-en.txt")
    );
    // A preview stores nothing.
    assert_eq!(ws.ok(&["text", "list", "acme", "--json"]).trim(), "[]");
}

#[test]
fn an_integrator_tailors_the_mail_and_the_page_and_a_broken_template_is_refused() {
    let ws = tenant();
    // A mistake: an unclosed block, named by file, line and column.
    ws.write(
        "bad.txt",
        "{{ greeting }}\n{% for item in texts %}{{ item.text }}\n",
    );
    let out = ws.run(&[
        "template",
        "set",
        "acme",
        "mail.txt",
        "bad.txt",
        "--author",
        "integrator",
        "--message",
        "eigene Mail",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).starts_with("bad.txt:"), "{}", stdout(&out));
    assert!(
        stdout(&out).ends_with("bad.txt: not set: the template has 1 mistake(s)\n"),
        "{}",
        stdout(&out)
    );
    // A mail without the contact's personal link takes their way back away.
    ws.write("nolink.txt", "{{ greeting }}\n{{ link }}\n");
    let out = ws.run(&[
        "template",
        "set",
        "acme",
        "mail.txt",
        "nolink.txt",
        "--author",
        "integrator",
        "--message",
        "kurz",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let said = format!("{}{}", stdout(&out), String::from_utf8_lossy(&out.stderr));
    assert!(
        said.contains("mail.txt must show {{ manage_link }}"),
        "{said}"
    );
    assert!(
        ws.ok(&["template", "list", "acme"])
            .contains("mail.txt          klar's")
    );

    // The tenant's own mail text and page, starting from klar's.
    let mine = ws
        .ok(&["template", "show", "acme", "mail.txt"])
        .replace("{{ regards }}", "Ihr Team Maschinenbau\n{{ regards }}");
    ws.write("mail.txt", &mine);
    let page = ws
        .ok(&["template", "show", "acme", "response.html"])
        .replace(
            "<h1>{{ t.heading }}</h1>",
            "<h1>{{ t.heading }}</h1><p>Eigene Seite</p>",
        );
    ws.write("response.html", &page);
    for (name, file) in [("mail.txt", "mail.txt"), ("response.html", "response.html")] {
        let out = ws.ok(&[
            "template",
            "set",
            "acme",
            name,
            file,
            "--author",
            "integrator",
            "--message",
            "eigene Fassung",
            "--now",
            NOW,
        ]);
        assert!(out.contains(&format!("acme: {name} set")), "{out}");
    }
    ws.ok(&[
        "text",
        "preview",
        "acme",
        "newsletter",
        "-o",
        "vorschau",
        "--now",
        NOW,
    ]);
    let read = |name: &str| {
        std::fs::read_to_string(ws.path().join("vorschau").join(name)).expect("written")
    };
    assert!(
        read("mail-de.txt").contains("Ihr Team Maschinenbau"),
        "{}",
        read("mail-de.txt")
    );
    assert!(read("page-en.html").contains("<p>Eigene Seite</p>"));
    assert!(
        !read("mail-de.html").contains("Ihr Team Maschinenbau"),
        "mail.html is still klar's"
    );

    // Reset: klar's applies again; every change is audited.
    assert_eq!(
        ws.ok(&["template", "reset", "acme", "mail.txt", "--now", NOW]),
        "acme: mail.txt is klar's again\n"
    );
    ws.ok(&[
        "text",
        "preview",
        "acme",
        "newsletter",
        "-o",
        "vorschau",
        "--now",
        NOW,
    ]);
    assert!(!read("mail-de.txt").contains("Ihr Team Maschinenbau"));
    let changes: i64 = ws
        .sql()
        .query_row(
            "SELECT COUNT(*) FROM audit_log WHERE kind IN ('template-set', 'template-reset')",
            (),
            |r| r.get(0),
        )
        .expect("counts");
    assert_eq!(changes, 3);
}

#[test]
fn the_response_page_the_contact_opens_is_the_tenants_own() {
    let s = support::server::Server::start();
    let key = Some(s.keys.0.as_str());
    let page =
        s.ws.ok(&["template", "show", "acme", "response.html"])
            .replace(
                "<h1>{{ t.heading }}</h1>",
                "<h1>{{ t.heading }}</h1><p>Eigene Seite</p>",
            );
    s.ws.write("response.html", &page);
    s.ws.ok(&[
        "template",
        "set",
        "acme",
        "response.html",
        "response.html",
        "--author",
        "integrator",
        "--message",
        "eigene Seite",
    ]);
    let contact = serde_json::json!({"first_name": "Jana", "last_name": "Kühn",
        "email": "jana@example.de", "owner": "jk"});
    s.call("PUT", "/v1/contacts/C1", key, Some(&contact));
    s.ws.ok(&["tick", "--now", support::server::NOW]);
    let (_, outbox) = s.call("GET", "/v1/outbox", key, None);
    let token = outbox["actions"][0]["payload"]["token"]
        .as_str()
        .expect("a token")
        .to_owned();
    let (status, html) = s.raw("GET", &format!("/r/{token}"), None, None, &[]);
    assert_eq!(status, 200);
    assert!(html.contains("<p>Eigene Seite</p>"), "{html}");
    // The other tenant still sees klar's page: nothing leaks across tenants.
    assert!(
        s.ws.ok(&["template", "list", "other"])
            .contains("response.html     klar's"),
        "templates are per tenant"
    );
}
