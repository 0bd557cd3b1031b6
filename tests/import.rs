//! `klar import` against a real database file: all or nothing, line numbers
//! for every bad row, updates by external_id, and erased contacts stay erased.

mod support;

use klar::store::{audit, contacts};
use support::*;

const HEADER: &str = "external_id,first_name,last_name,email,phone,owner,source,created_at,fair";

struct Tenant {
    ws: Workspace,
}

impl std::ops::Deref for Tenant {
    type Target = Workspace;
    fn deref(&self) -> &Workspace {
        &self.ws
    }
}

impl Tenant {
    /// A tenant `acme` with the purposes contact-data and newsletter.
    fn new() -> Tenant {
        let tenant = Tenant {
            ws: Workspace::new(&[]),
        };
        tenant.ok(&[
            "tenant",
            "add",
            "acme",
            "--name",
            "ACME GmbH",
            "--now",
            "2026-11-30T09:00:00Z",
        ]);
        tenant.ok(&[
            "purpose",
            "add",
            "acme",
            "newsletter",
            "--description",
            "Newsletter",
        ]);
        tenant
    }

    fn counts(&self) -> (i64, i64, usize) {
        let store = self.store();
        let c = store.connection();
        (
            contacts::count(c, "acme").expect("count"),
            contacts::count_cases(c, "acme").expect("count"),
            audit::rows(c, "acme", None).expect("rows").len(),
        )
    }
}

#[test]
fn a_good_file_opens_a_case_per_purpose_and_reimport_updates() {
    let t = Tenant::new();
    t.write(
        "contacts.csv",
        &format!(
            "{HEADER}\nC00001,Jürgen,Groß,j.gross@example.de,+49 30 1234567,jk,trade-fair,2026-10-01,IFA 2026\n\
             C00002,Zoë,Weiß,zoe@example.fr,,mb,web-form,2026-10-02T10:00:00Z,\n\
             C00003,José,Núñez,,+34 91 1234567,jk,import,,\n"
        ),
    );
    let out = t.ok(&[
        "import",
        "acme",
        "contacts.csv",
        "--now",
        "2026-11-30T09:00:00Z",
    ]);
    assert_eq!(
        out,
        "contacts.csv: 3 added, 0 updated, 0 unchanged; 6 case(s) opened\n"
    );
    let store = t.store();
    let jurgen = contacts::get(store.connection(), "acme", "C00001")
        .expect("reads")
        .expect("exists");
    assert_eq!(jurgen.last_name, "Groß");
    assert_eq!(
        jurgen.attributes.get("fair").map(String::as_str),
        Some("IFA 2026")
    );
    assert_eq!(t.counts().1, 6);

    t.write(
        "again.csv",
        &format!(
            "{HEADER}\nC00001,Jürgen,Groß-Meier,j.gross@example.de,+49 30 1234567,jk,trade-fair,2026-10-01,IFA 2026\n\
             C00002,Zoë,Weiß,zoe@example.fr,,mb,web-form,2026-10-02T10:00:00Z,\n"
        ),
    );
    let out = t.ok(&[
        "import",
        "acme",
        "again.csv",
        "--now",
        "2026-12-01T09:00:00Z",
    ]);
    assert_eq!(
        out,
        "again.csv: 0 added, 1 updated, 1 unchanged; 0 case(s) opened\n"
    );
    assert_eq!(
        audit::verify(t.store().connection(), "acme").expect("verifies"),
        []
    );
}

#[test]
fn a_malformed_file_changes_nothing_and_names_every_bad_line() {
    let t = Tenant::new();
    t.write(
        "bad.csv",
        &format!(
            "{HEADER}\nC1,Anna,Schmidt,anna@example.de,,jk,web,,\nC2,Ben,Braun,ben(at)example.de,,jk,web,,\n\
             C3,Carla,Hoffmann,,,,web,,\nC4,Dirk,Krüger,,,jk,web,31.12.2025,\n"
        ),
    );
    let before = t.counts();
    let out = t.run(&["import", "acme", "bad.csv"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stdout(&out),
        "bad.csv:3: email \"ben(at)example.de\" is not an e-mail address\n\
         bad.csv:4: owner is empty: every contact needs a responsible person\n\
         bad.csv:5: created_at \"31.12.2025\" is not a date (use 2026-11-30 or 2026-11-30T09:00:00Z)\n\
         bad.csv: nothing was imported: 3 row(s) have problems; fix them, or import the others with --skip-invalid\n"
    );
    assert_eq!(t.counts(), before, "not one row was written");

    let out = t.run(&["import", "acme", "bad.csv", "--skip-invalid"]);
    assert!(out.status.success());
    assert!(
        stdout(&out).ends_with(
            "bad.csv: 1 added, 0 updated, 0 unchanged; 2 case(s) opened; 3 bad row(s) skipped\n"
        ),
        "{}",
        stdout(&out)
    );
}

#[test]
fn a_file_without_the_columns_is_refused_whole() {
    let t = Tenant::new();
    t.write("wrong.csv", "id;name\n1;x\n");
    let out = t.run(&["import", "acme", "wrong.csv"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        stderr(&out),
        "klar: wrong.csv: cannot import: the header lacks the column(s) external_id, first_name, last_name, email, phone, owner, source, created_at; expected external_id,first_name,last_name,email,phone,owner,source,created_at\n"
    );
}

#[test]
fn an_erased_address_cannot_be_imported_again() {
    let t = Tenant::new();
    {
        let mut store = t.store();
        store
            .transaction(|tx| {
                contacts::add_tombstone(tx, "acme", "email", "Erika@Example.org ", 1_764_000_000)
            })
            .expect("tombstone");
    }
    t.write(
        "back.csv",
        &format!("{HEADER}\nC9,Erika,Muster,erika@example.org,,jk,web,,\nC10,Max,Muster,max@example.org,,jk,web,,\n"),
    );
    let out = t.run(&["import", "acme", "back.csv"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).starts_with(
            "back.csv:2: the email of C9 belongs to a contact erased on 2025-11-24; it cannot be imported again\n"
        ),
        "{}",
        stdout(&out)
    );
    assert_eq!(t.counts().0, 0);
}

#[test]
fn a_file_with_crlf_line_ends_names_the_same_lines() {
    let t = Tenant::new();
    let rows = [
        HEADER,
        "C1,Anna,Schmidt,anna@example.de,,jk,web,,",
        "C2,Ben,Braun,ben(at)example.de,,jk,web,,",
        "C3,Carla,Hoffmann,,,,web,,",
    ];
    t.write("windows.csv", &(rows.join("\r\n") + "\r\n"));
    let out = t.run(&["import", "acme", "windows.csv"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stdout(&out),
        "windows.csv:3: email \"ben(at)example.de\" is not an e-mail address\n\
         windows.csv:4: owner is empty: every contact needs a responsible person\n\
         windows.csv: nothing was imported: 2 row(s) have problems; fix them, or import the others with --skip-invalid\n"
    );
}
