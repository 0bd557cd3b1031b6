//! Campaign checks through the real faces: a CRM checks a whole list in one
//! `POST /v1/use`, an admin filters an Excel list with `klar usable`, and
//! each check is in the audit log with the list's SHA-256 but none of its
//! ids.

mod support;

use std::io::Write;
use std::process::Stdio;

use serde_json::{Value, json};
use support::server::{NOW, Server};
use support::{klar, stderr, stdout};

/// acme with C1 consented, C2 refused (its cleanup pending), C3 asked and
/// silent, C5 on another basis.
fn campaign_tenant() -> Server {
    let s = Server::start();
    let acme = s.keys.0.clone();
    for (id, first, email) in [
        ("C1", "Jürgen", "j.gross@example.de"),
        ("C2", "Zoë", "zoe@example.com"),
        ("C3", "Ana", "ana@example.pt"),
        ("C5", "Ömer", "oemer@example.de"),
    ] {
        let body = json!({"first_name": first, "last_name": "Test", "email": email, "owner": "jk"});
        let (status, answer) = s.call(
            "PUT",
            &format!("/v1/contacts/{id}"),
            Some(&acme),
            Some(&body),
        );
        assert_eq!(status, 200, "{answer}");
    }
    s.ws.ok(&["tick", "--now", NOW]);
    let (_, outbox) = s.call("GET", "/v1/outbox?after=0", Some(&acme), None);
    let token_of = |contact: &str| {
        outbox["actions"]
            .as_array()
            .and_then(|a| a.iter().find(|a| a["contact"] == contact))
            .and_then(|a| a["payload"]["token"].as_str())
            .unwrap_or_else(|| panic!("no request to {contact} in {outbox}"))
            .to_owned()
    };
    s.ws.ok(&["respond", &token_of("C1"), "accept", "--now", NOW]);
    s.ws.ok(&["respond", &token_of("C2"), "refuse", "--now", NOW]);
    s.ws.ok(&[
        "decide",
        "acme",
        "C5",
        "--action",
        "other-basis",
        "--by",
        "jk",
        "--reason",
        "Rahmenvertrag 2026",
        "--now",
        NOW,
    ]);
    s
}

fn sha256(text: &str) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The audit row of a check: its kind, purpose and detail.
fn audit_row(s: &Server, seq: i64) -> (String, String, Value) {
    let (kind, purpose, detail): (String, String, String) =
        s.ws.sql()
            .query_row(
                "SELECT kind, purpose, detail FROM audit_log WHERE tenant = 'acme' AND seq = ?1",
                [seq],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .expect("the audit row");
    assert!(
        !["C1", "C2", "C3", "C5", "X9"]
            .iter()
            .any(|id| detail.contains(id)),
        "no id in the audit log: {detail}"
    );
    (kind, purpose, serde_json::from_str(&detail).expect("JSON"))
}

#[test]
fn a_crm_checks_a_whole_list_in_one_call_and_the_check_is_audited_without_the_ids() {
    let s = campaign_tenant();
    let acme = s.keys.0.clone();
    let list = ["C1", "C2", "C3", "C5", "X9", "C1"];
    let (status, answer) = s.call(
        "POST",
        "/v1/use",
        Some(&acme),
        Some(&json!({ "contacts": list })),
    );
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["purpose"], "contact-data");
    assert_eq!(
        (answer["checked"].as_u64(), answer["usable"].as_u64()),
        (Some(6), Some(3))
    );
    let got: Vec<(&str, bool, &str)> = answer["contacts"]
        .as_array()
        .expect("contacts")
        .iter()
        .map(|v| {
            (
                v["contact"].as_str().unwrap_or_default(),
                v["may_use"].as_bool().unwrap_or_default(),
                v["reason"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("C1", true, "consent"),
            ("C2", false, "cleanup-pending"),
            ("C3", false, "not-clarified"),
            ("C5", true, "other-basis"),
            ("X9", false, "unknown-contact"),
            ("C1", true, "consent"),
        ]
    );
    assert_eq!(
        answer["reasons"],
        json!({"consent": 2, "cleanup-pending": 1, "not-clarified": 1, "other-basis": 1, "unknown-contact": 1})
    );
    // `printf '%s\n' C1 C2 C3 C5 X9 C1 | sha256sum`
    let hash = sha256("C1\nC2\nC3\nC5\nX9\nC1\n");
    assert_eq!(answer["list_sha256"], hash.as_str());
    let seq = answer["audit_seq"].as_i64().expect("an audit row");
    let (kind, purpose, detail) = audit_row(&s, seq);
    assert_eq!(
        (kind.as_str(), purpose.as_str()),
        ("list-checked", "contact-data")
    );
    assert_eq!(detail["list_sha256"], hash.as_str());
    assert_eq!(detail["ids"], 6);
    assert_eq!(detail["usable"], 3);
    assert_eq!(detail["actor"]["via"], "api");

    // A purpose added after the contacts came has no cases for them yet.
    s.ws.ok(&[
        "purpose",
        "add",
        "acme",
        "events",
        "--description",
        "Messen",
        "--now",
        NOW,
    ]);
    let (status, events) = s.call(
        "POST",
        "/v1/use",
        Some(&acme),
        Some(&json!({"purpose": "events", "contacts": ["C1"]})),
    );
    assert_eq!(status, 200, "{events}");
    assert_eq!(events["contacts"][0]["reason"], "no-case");

    // What is refused, and why.
    for (body, status, words) in [
        (json!({"contacts": []}), 400, "the list is empty"),
        (
            json!({"contacts": ["C1"], "purpose": "nope"}),
            404,
            "it has: contact-data, events",
        ),
        (
            json!({"contacts": ["C1"], "purpose": "Not A Purpose"}),
            400,
            "is not a purpose id",
        ),
        (
            json!({"contacts": ["x".repeat(201)]}),
            400,
            "id number 1 is longer than 200",
        ),
        (
            json!({"contacts": ["C1"], "extra": 1}),
            400,
            "unknown field",
        ),
    ] {
        let (got, answer) = s.call("POST", "/v1/use", Some(&acme), Some(&body));
        assert_eq!(got, status, "{body}: {answer}");
        assert!(
            answer["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains(words)),
            "{body}: {answer}"
        );
    }
    let many: Vec<String> = (0..100_001).map(|i| format!("K{i}")).collect();
    let (got, answer) = s.call(
        "POST",
        "/v1/use",
        Some(&acme),
        Some(&json!({"contacts": many})),
    );
    assert_eq!(got, 400, "{answer}");
    // The largest list is answered whole.
    let (got, answer) = s.call(
        "POST",
        "/v1/use",
        Some(&acme),
        Some(&json!({"contacts": &many[..100_000]})),
    );
    assert_eq!(got, 200);
    assert_eq!(answer["reasons"], json!({"unknown-contact": 100_000}));
    assert_eq!(s.ws.ok(&["audit", "verify", "acme"]).lines().count(), 1);
}

#[test]
fn klar_usable_filters_an_excel_list_and_keeps_its_columns() {
    let s = campaign_tenant();
    // German Excel's "CSV UTF-8": a byte-order mark, semicolons, CRLF.
    s.ws.write(
        "liste.csv",
        "\u{feff}Kundennummer;Name;E-Mail\r\nC1;Jürgen Groß;j.gross@example.de\r\nC2;Zoë Hart;zoe@example.com\r\nX9;Unbekannt;x@example.de\r\nC5;Ömer Test;oemer@example.de\r\n",
    );
    let out = s.ws.run(&[
        "usable",
        "acme",
        "--csv",
        "liste.csv",
        "-o",
        "nutzbar.csv",
        "--now",
        NOW,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let said = stderr(&out);
    assert!(
        said.contains("klar usable: 4 id(s) checked for contact-data: 2 may be used, 2 may not (cleanup-pending 1, consent 1, other-basis 1, unknown-contact 1)"),
        "{said}"
    );
    let written = std::fs::read(s.ws.path().join("nutzbar.csv")).expect("written");
    assert_eq!(
        String::from_utf8(written).expect("UTF-8"),
        "\u{feff}Kundennummer;Name;E-Mail;Grundlage\r\nC1;Jürgen Groß;j.gross@example.de;Einwilligung\r\nC5;Ömer Test;oemer@example.de;andere Rechtsgrundlage\r\n"
    );
    let seq: i64 = said
        .rsplit("audit row ")
        .next()
        .and_then(|n| n.trim().parse().ok())
        .expect("the audit row");
    let (kind, _, detail) = audit_row(&s, seq);
    assert_eq!(kind, "list-checked");
    assert_eq!(detail["actor"]["via"], "cli");
    assert_eq!(detail["list_sha256"], sha256("C1\nC2\nX9\nC5\n").as_str());

    // Every row with its answer; plain "CSV" (Windows-1252) from Excel too.
    let mut plain = b"Kundennummer;Name\r\nC2;Zo\xeb Hart\r\nC3;Ana\r\n".to_vec();
    plain.extend_from_slice(b"C1;J\xfcrgen Gro\xdf\r\n");
    std::fs::write(s.ws.path().join("alt.csv"), plain).expect("write");
    let out =
        s.ws.run(&["usable", "acme", "--csv", "alt.csv", "--all", "--now", NOW]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("read as Windows-1252"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        stdout(&out),
        "\u{feff}Kundennummer;Name;Nutzbar;Grund\r\nC2;Zoë Hart;nein;Löschung läuft\r\nC3;Ana;nein;noch nicht geklärt\r\nC1;Jürgen Groß;ja;Einwilligung\r\n"
    );

    // Ids one per line on standard input.
    let mut child = klar()
        .current_dir(s.ws.path())
        .env("KLAR_DB", &s.ws.db)
        .args(["usable", "acme", "--all", "--now", NOW])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("klar runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"C5\n\nC3\n")
        .expect("written");
    let out = child.wait_with_output().expect("klar ends");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "\u{feff}id;Nutzbar;Grund\r\nC5;ja;andere Rechtsgrundlage\r\nC3;nein;noch nicht geklärt\r\n"
    );

    // Mistakes are named, and nothing is written or audited for them.
    let checks_before: i64 =
        s.ws.sql()
            .query_row(
                "SELECT COUNT(*) FROM audit_log WHERE kind = 'list-checked'",
                (),
                |r| r.get(0),
            )
            .expect("count");
    s.ws.write("ohne.csv", "Name;Ort\r\nA;B\r\n");
    s.ws.write("kaputt.csv", "id,Name\nC1,x\nC2,a,b\n");
    for (args, words) in [
        (
            vec!["usable", "acme", "--csv", "liste.csv", "--purpose", "nope"],
            "tenant acme has no purpose nope; it has: contact-data",
        ),
        (
            vec!["usable", "acme", "--csv", "ohne.csv"],
            "ohne.csv: cannot check: no column of contact ids: name it with --column (the header has: Name, Ort)",
        ),
        (
            vec!["usable", "acme", "--csv", "liste.csv", "--column", "Kunde"],
            "there is no column \"Kunde\"",
        ),
        (
            vec!["usable", "acme", "--csv", "kaputt.csv"],
            "kaputt.csv: cannot check: line 3: has 3 field(s), the header has 2",
        ),
    ] {
        let out = s.ws.run(&args);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(words), "{args:?}: {}", stderr(&out));
    }
    let checks_after: i64 =
        s.ws.sql()
            .query_row(
                "SELECT COUNT(*) FROM audit_log WHERE kind = 'list-checked'",
                (),
                |r| r.get(0),
            )
            .expect("count");
    assert_eq!(
        checks_after, checks_before,
        "a refused check is not audited"
    );
}

#[test]
fn a_non_restrictive_purpose_may_use_whom_nobody_asked_yet_but_never_a_no() {
    let s = campaign_tenant();
    let acme = s.keys.0.clone();
    let use_of = |contact: &str| {
        s.call(
            "GET",
            &format!("/v1/contacts/{contact}/use"),
            Some(&acme),
            None,
        )
        .1
    };
    assert_eq!(use_of("C3")["may_use"], false);
    assert_eq!(use_of("C3")["enforcement"], "restrictive");

    let said = s.ws.ok(&[
        "purpose",
        "set",
        "acme",
        "contact-data",
        "--enforcement",
        "non-restrictive",
        "--now",
        NOW,
    ]);
    assert_eq!(said, "acme: purpose contact-data is now non-restrictive\n");
    let asked = use_of("C3");
    assert_eq!(asked["may_use"], true, "{asked}");
    assert_eq!(asked["basis"]["kind"], "not-refused", "{asked}");
    assert_eq!(asked["enforcement"], "non-restrictive");
    assert_eq!(use_of("C2")["may_use"], false, "a no stays a no");
    let (_, answer) = s.call(
        "POST",
        "/v1/use",
        Some(&acme),
        Some(&json!({"contacts": ["C1", "C2", "C3", "X9"]})),
    );
    let reasons: Vec<&str> = answer["contacts"]
        .as_array()
        .expect("contacts")
        .iter()
        .map(|v| v["reason"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(
        reasons,
        [
            "consent",
            "cleanup-pending",
            "not-refused",
            "unknown-contact"
        ]
    );
    assert!(
        s.ws.ok(&["purpose", "list", "acme"])
            .contains("contact-data")
    );
    let list = s.ws.ok(&["purpose", "list", "acme"]);
    assert!(list.contains("non-restrictive"), "{list}");

    // Back to restrictive through the API; both changes are audited.
    let (status, purpose) = s.call(
        "PUT",
        "/v1/purposes/contact-data",
        Some(&acme),
        Some(&json!({"description": "Pflege des geschäftlichen Kontakts", "enforcement": "restrictive"})),
    );
    assert_eq!(status, 200, "{purpose}");
    assert_eq!(purpose["enforcement"], "restrictive");
    assert_eq!(use_of("C3")["may_use"], false);
    let changes: Vec<String> = {
        let sql = s.ws.sql();
        let mut stmt = sql
            .prepare(
                "SELECT json_extract(detail, '$.enforcement.to') FROM audit_log
                 WHERE kind = 'purpose-changed' AND json_extract(detail, '$.enforcement') IS NOT NULL
                 ORDER BY seq",
            )
            .expect("prepare");
        stmt.query_map((), |r| r.get(0))
            .expect("query")
            .collect::<Result<_, _>>()
            .expect("rows")
    };
    assert_eq!(changes, ["non-restrictive", "restrictive"]);

    // Unknown values are refused with the words that work.
    let (status, bad) = s.call(
        "PUT",
        "/v1/purposes/contact-data",
        Some(&acme),
        Some(&json!({"description": "x", "enforcement": "lax"})),
    );
    assert_eq!(status, 400, "{bad}");
    let out = s.ws.run(&[
        "purpose",
        "set",
        "acme",
        "contact-data",
        "--enforcement",
        "lax",
    ]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("use restrictive or non-restrictive"),
        "{}",
        stderr(&out)
    );
}
