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

/// RFC 9162's inclusion-proof check, written here from the RFC and not
/// taken from klar, so that the bundle is checked as an outsider would.
fn included(leaf: [u8; 32], index: u64, size: u64, proof: &[[u8; 32]], root: [u8; 32]) -> bool {
    use sha2::{Digest, Sha256};
    let node = |l: &[u8; 32], r: &[u8; 32]| -> [u8; 32] {
        let mut h = Sha256::new();
        h.update([1u8]);
        h.update(l);
        h.update(r);
        h.finalize().into()
    };
    if index >= size {
        return false;
    }
    let (mut fnode, mut snode, mut r) = (index, size - 1, leaf);
    for p in proof {
        if snode == 0 {
            return false;
        }
        if fnode % 2 == 1 || fnode == snode {
            r = node(p, &r);
            while fnode % 2 == 0 && fnode != 0 {
                fnode >>= 1;
                snode >>= 1;
            }
        } else {
            r = node(&r, p);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    snode == 0 && r == root
}

fn unhex(text: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).expect("hex");
    }
    out
}

#[test]
fn one_audit_row_per_import_proves_each_contacts_arrival() {
    use sha2::{Digest, Sha256};
    let t = Tenant::new();
    let mut csv = format!("{HEADER}\n");
    for i in 1..=37 {
        csv.push_str(&format!("C{i:05},Anna,Muster,a{i}@example.de,,jk,web,,\n"));
    }
    t.write("first.csv", &csv);
    let audit_before = t.counts().2;
    t.ok(&[
        "import",
        "acme",
        "first.csv",
        "--now",
        "2026-11-30T10:00:00Z",
    ]);
    // One row for 37 contacts and 74 cases.
    assert_eq!(t.counts(), (37, 74, audit_before + 1));
    t.write(
        "second.csv",
        &format!("{HEADER}\nC00040,Bernd,Beispiel,,,mb,fair,,\nC00002,Anna,Muster-Neu,a2@example.de,,jk,web,,\n"),
    );
    t.ok(&[
        "import",
        "acme",
        "second.csv",
        "--now",
        "2026-12-01T10:00:00Z",
    ]);

    let out = t.ok(&["audit", "show", "acme", "C00023"]);
    assert!(
        out.contains("import 1 of first.csv: 37 added, 0 updated, 0 unchanged, 74 case(s) opened"),
        "{out}"
    );
    // The update has a row of its own, after the second import's row.
    let out = t.ok(&["audit", "show", "acme", "C00002"]);
    assert!(out.contains("import 1 of first.csv"), "{out}");
    assert!(out.contains("contact-updated"), "{out}");

    let file_sha = crate_sha(&csv);
    for (contact, import, position, size) in [
        ("C00001", 1, 0, 37),
        ("C00023", 1, 22, 37),
        ("C00037", 1, 36, 37),
        ("C00040", 2, 0, 1),
    ] {
        let bundle: serde_json::Value =
            serde_json::from_str(&t.ok(&["evidence", "export", "acme", contact])).expect("JSON");
        let arrival = &bundle["arrival"];
        assert_eq!(arrival["import"], import, "{contact}");
        assert_eq!(arrival["position"], position, "{contact}");
        assert_eq!(arrival["added"], size, "{contact}");
        assert_eq!(arrival["proof_valid"], true, "{contact}");
        // The import's row is in the bundle's audit rows, and its root is
        // the one the proof leads to.
        let seq = arrival["audit_seq"].as_i64().expect("seq");
        let row = bundle["audit"]
            .as_array()
            .expect("rows")
            .iter()
            .find(|r| r["seq"] == seq)
            .expect("the import's row is in the bundle");
        assert_eq!(row["kind"], "import");
        let detail: serde_json::Value =
            serde_json::from_str(row["detail"].as_str().expect("detail")).expect("JSON");
        if import == 1 {
            assert_eq!(detail["file_sha256"], file_sha.as_str());
        }
        let root = unhex(detail["added_ids"]["merkle_root"].as_str().expect("root"));
        let leaf: [u8; 32] =
            Sha256::digest([b"\x00".as_slice(), contact.as_bytes()].concat()).into();
        assert_eq!(arrival["leaf_hash"], crate_hex(&leaf));
        let proof: Vec<[u8; 32]> = arrival["proof"]
            .as_array()
            .expect("proof")
            .iter()
            .map(|h| unhex(h.as_str().expect("hex")))
            .collect();
        assert!(
            included(leaf, position, size, &proof, root),
            "{contact}: the proof leads to the root"
        );
        if size > 1 {
            assert!(
                !included(leaf, position ^ 1, size, &proof, root),
                "{contact}"
            );
        }
    }
    // A contact moved to another place in the database no longer proves.
    t.sql()
        .execute(
            "UPDATE contacts SET import_pos = 5 WHERE tenant = 'acme' AND id = 'C00023'",
            [],
        )
        .expect("tamper");
    let bundle: serde_json::Value =
        serde_json::from_str(&t.ok(&["evidence", "export", "acme", "C00023"])).expect("JSON");
    assert_eq!(bundle["arrival"]["proof_valid"], false);
    t.ok(&["audit", "verify", "acme"]);
}

fn crate_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn crate_sha(text: &str) -> String {
    use sha2::{Digest, Sha256};
    crate_hex(&Sha256::digest(text.as_bytes()))
}
