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
             C3,Carla,Hoffmann,,,,web,,\nC4,Dirk,Krüger,,,jk,web,31.13.2025,\n"
        ),
    );
    let before = t.counts();
    let out = t.run(&["import", "acme", "bad.csv"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stdout(&out),
        "bad.csv:3: email \"ben(at)example.de\" is not an e-mail address\n\
         bad.csv:4: owner is empty: every contact needs a responsible person\n\
         bad.csv:5: created_at \"31.13.2025\" is not a date (use 30.11.2026, 2026-11-30 or 2026-11-30T09:00:00Z)\n\
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
        "klar: wrong.csv: cannot import: the header lacks the column(s) external_id, first_name, last_name, email, phone, owner, source, created_at; expected external_id,first_name,last_name,email,phone,owner,source,created_at (in any order, separated by commas, semicolons or tabs)\n"
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
            (),
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

/// German Excel's header row for the contacts, with a column of its own
/// (`Straße`) that becomes an attribute.
const EXCEL_HEADER: [&str; 9] = [
    "external_id",
    "first_name",
    "last_name",
    "email",
    "phone",
    "owner",
    "source",
    "created_at",
    "Straße",
];

/// Rows as an admin types them in Excel: umlauts and ß, a German date.
const EXCEL_ROWS: [[&str; 9]; 3] = [
    [
        "K-1",
        "Jürgen",
        "Groß",
        "j.gross@example.de",
        "+49 711 1234567",
        "jk",
        "Messe",
        "31.12.2025",
        "Königstraße 1",
    ],
    [
        "K-2",
        "Zoë",
        "Weiß-Müller",
        "",
        "",
        "mb",
        "",
        "",
        "Äußere Str. 5",
    ],
    [
        "K-3",
        "Ömer",
        "Öztürk",
        "oemer@example.de",
        "",
        "jk",
        "",
        "2026-01-15",
        "",
    ],
];

impl Tenant {
    fn assert_excel_names_intact(&self) {
        let store = self.store();
        for row in EXCEL_ROWS {
            let c = contacts::get(store.connection(), "acme", row[0])
                .expect("reads")
                .unwrap_or_else(|| panic!("{} was imported", row[0]));
            assert_eq!(
                (c.first_name.as_str(), c.last_name.as_str()),
                (row[1], row[2])
            );
            assert_eq!(
                c.attributes.get("Straße").map(String::as_str),
                Some(row[8]).filter(|s| !s.is_empty())
            );
        }
        let jurgen = contacts::get(store.connection(), "acme", "K-1")
            .expect("reads")
            .expect("exists");
        assert_eq!(
            jurgen.created_at.format("%Y-%m-%d").to_string(),
            "2025-12-31"
        );
    }
}

/// The rows as German Excel's "CSV UTF-8" and plain "CSV" exports write
/// them: semicolons, CRLF, and a byte-order mark or Windows-1252.
fn excel_csv(utf8: bool) -> Vec<u8> {
    let mut text = EXCEL_HEADER.join(";") + "\r\n";
    for row in EXCEL_ROWS {
        text += &(row.join(";") + "\r\n");
    }
    if utf8 {
        let mut bytes = b"\xEF\xBB\xBF".to_vec();
        bytes.extend_from_slice(text.as_bytes());
        bytes
    } else {
        // Windows-1252 is Latin-1 for every character used here.
        text.chars()
            .map(|c| u8::try_from(u32::from(c)).expect("a Latin-1 character"))
            .collect()
    }
}

/// A new tenant that imported [`excel_csv`], and what the import printed.
fn imported_excel_csv(utf8: bool) -> (Tenant, String) {
    let t = Tenant::new();
    std::fs::write(t.path().join("kontakte.csv"), excel_csv(utf8)).expect("writes");
    let out = t.ok(&[
        "import",
        "acme",
        "kontakte.csv",
        "--now",
        "2026-11-30T09:00:00Z",
    ]);
    (t, out)
}

#[test]
fn german_excels_csv_utf8_export_imports_with_every_name_intact() {
    let (t, out) = imported_excel_csv(true);
    assert_eq!(
        out,
        "kontakte.csv: 3 added, 0 updated, 0 unchanged; 6 case(s) opened\n"
    );
    t.assert_excel_names_intact();
}

#[test]
fn german_excels_plain_csv_export_is_read_as_windows_1252_and_says_so() {
    let (t, out) = imported_excel_csv(false);
    assert_eq!(
        out,
        "kontakte.csv: read as Windows-1252 (German Excel's plain CSV): line 1 is not valid UTF-8; --encoding utf-8 refuses such a file instead\n\
         kontakte.csv: 3 added, 0 updated, 0 unchanged; 6 case(s) opened\n"
    );
    t.assert_excel_names_intact();

    // Said to be UTF-8, the file is refused row by row, and nothing is stored.
    let t = Tenant::new();
    std::fs::write(t.path().join("kontakte.csv"), excel_csv(false)).expect("writes");
    let before = t.counts();
    let out = t.run(&["import", "acme", "kontakte.csv", "--encoding", "utf-8"]);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    assert!(
        stderr(&out).contains("the header is not valid UTF-8"),
        "{}",
        stderr(&out)
    );
    assert_eq!(t.counts(), before);
}

#[test]
fn separator_and_encoding_can_be_given() {
    let t = Tenant::new();
    let text = format!(
        "{}\n{}\n",
        EXCEL_HEADER.join("|"),
        EXCEL_ROWS.map(|r| r.join("|")).join("\n")
    );
    t.write("pipes.csv", &text);
    let out = t.run(&["import", "acme", "pipes.csv"]);
    assert_eq!(out.status.code(), Some(2), "no separator found: refused");
    let out = t.ok(&[
        "import",
        "acme",
        "pipes.csv",
        "--delimiter",
        "|",
        "--encoding",
        "utf-8",
        "--now",
        "2026-11-30T09:00:00Z",
    ]);
    assert!(
        out.ends_with("3 added, 0 updated, 0 unchanged; 6 case(s) opened\n"),
        "{out}"
    );
    t.assert_excel_names_intact();
}

/// A Python that has openpyxl: scripts/test installs one beside the build
/// (or set KLAR_XLSX_PYTHON).
fn python_with_openpyxl() -> std::path::PathBuf {
    if let Some(path) = std::env::var_os("KLAR_XLSX_PYTHON") {
        return path.into();
    }
    // CARGO_TARGET_TMPDIR is target/tmp; the venv sits beside it.
    let target = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let python = target
        .parent()
        .unwrap_or(&target)
        .join("python-tools/bin/python");
    assert!(
        python.exists(),
        "no Python with openpyxl at {}; scripts/test installs it (or set KLAR_XLSX_PYTHON)",
        python.display()
    );
    python
}

/// Writes `rows` into the sheet `Kontakte` of a new workbook with openpyxl,
/// as a spreadsheet program would: a phone typed as a number, a date typed
/// as a date, a column of its own, an empty row in between.
fn xlsx(path: &std::path::Path, rows: &serde_json::Value) {
    let script = r#"
import datetime, json, sys
import openpyxl
rows = json.loads(sys.argv[2])
book = openpyxl.Workbook()
book.active.title = "Deckblatt"
sheet = book.create_sheet("Kontakte", 0)
for row in rows:
    cells = []
    for value in row:
        if isinstance(value, dict) and "date" in value:
            value = datetime.datetime.strptime(value["date"], "%Y-%m-%d")
        cells.append(value)
    sheet.append(cells)
for cell in sheet["H"]:
    if isinstance(cell.value, datetime.datetime):
        cell.number_format = "DD.MM.YYYY"
book.save(sys.argv[1])
"#;
    let out = std::process::Command::new(python_with_openpyxl())
        .arg("-c")
        .arg(script)
        .arg(path)
        .arg(rows.to_string())
        .output()
        .expect("python runs");
    assert!(out.status.success(), "openpyxl: {}", stderr(&out));
}

#[test]
fn an_xlsx_workbook_imports_with_every_name_intact() {
    let t = Tenant::new();
    let mut rows = vec![serde_json::json!(EXCEL_HEADER)];
    for row in EXCEL_ROWS {
        let mut cells: Vec<serde_json::Value> = row.iter().map(|c| serde_json::json!(c)).collect();
        if row[0] == "K-1" {
            cells[7] = serde_json::json!({ "date": "2025-12-31" });
            cells[4] = serde_json::json!(4_971_112_345_i64);
        }
        rows.push(serde_json::Value::Array(cells));
        if row[0] == "K-2" {
            rows.push(serde_json::json!([]));
        }
    }
    xlsx(
        &t.path().join("kontakte.xlsx"),
        &serde_json::Value::Array(rows),
    );
    let out = t.ok(&[
        "import",
        "acme",
        "kontakte.xlsx",
        "--now",
        "2026-11-30T09:00:00Z",
    ]);
    assert_eq!(
        out,
        "kontakte.xlsx: 3 added, 0 updated, 0 unchanged; 6 case(s) opened\n"
    );
    t.assert_excel_names_intact();
    let jurgen = contacts::get(t.store().connection(), "acme", "K-1")
        .expect("reads")
        .expect("exists");
    assert_eq!(jurgen.phone.as_deref(), Some("4971112345"));
}

#[test]
fn a_bad_xlsx_row_is_named_by_sheet_and_row_and_nothing_is_stored() {
    let t = Tenant::new();
    let rows = serde_json::json!([
        EXCEL_HEADER,
        EXCEL_ROWS[0],
        [],
        [
            "K-9",
            "Anna",
            "Schmidt",
            "anna(at)example.de",
            "",
            "jk",
            "",
            "",
            ""
        ],
        EXCEL_ROWS[2],
    ]);
    xlsx(&t.path().join("kontakte.xlsx"), &rows);
    let before = t.counts();
    let out = t.run(&["import", "acme", "kontakte.xlsx"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stdout(&out),
        "kontakte.xlsx: sheet Kontakte, row 4: email \"anna(at)example.de\" is not an e-mail address\n\
         kontakte.xlsx: nothing was imported: 1 row(s) have problems; fix them, or import the others with --skip-invalid\n"
    );
    assert_eq!(t.counts(), before);

    let out = t.run(&["import", "acme", "kontakte.xlsx", "--sheet", "Tabelle9"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out)
            .contains("the workbook has no sheet \"Tabelle9\"; its sheets: Kontakte, Deckblatt"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn cases_as_csv_open_in_german_excel() {
    let (t, _) = imported_excel_csv(true);
    t.ok(&["tick", "--now", "2026-11-30T09:00:00Z"]);
    let out = t.run(&["cases", "acme", "--csv", "--now", "2026-11-30T09:00:00Z"]);
    assert!(out.status.success());
    let bytes = out.stdout;
    assert!(
        bytes.starts_with(b"\xEF\xBB\xBF"),
        "a byte-order mark first"
    );
    let text = std::str::from_utf8(&bytes[3..]).expect("UTF-8");
    let lines: Vec<&str> = text.split_terminator("\r\n").collect();
    assert_eq!(lines.len(), 1 + 6, "{text}");
    assert!(!text.replace("\r\n", "").contains('\n'), "CRLF only");
    assert_eq!(
        lines[0],
        "contact;purpose;state;band;owner;assigned_to;reminders_sent;next_due;legal_hold;needs_attention"
    );
    // The request went out; its reminder is due on 18 December at 09:00
    // UTC, which is 10:00 in Berlin, written as German Excel reads a time.
    assert!(
        lines.contains(&"K-1;contact-data;requested;to-clarify;jk;;0;18.12.2026 10:00;no;"),
        "{text}"
    );
}
