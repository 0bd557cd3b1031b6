//! The store on PostgreSQL, through the `klar` command: a real cluster that
//! the test starts in a temporary folder (see `support::postgres`), the same
//! scenario on it and on a SQLite file, and the schema version's rules.
//!
//! The other end-to-end files run on PostgreSQL too with
//! `KLAR_TEST_STORE=postgres` (the README's test command does so for some).

mod support;

use serde_json::Value;
use support::{Workspace, klar, stderr, stdout};

const CSV: &str = "external_id,first_name,last_name,email,phone,owner,source,created_at
C00001,Anna,Schmidt,anna@example.de,,vertrieb,messe,2024-03-01
C00002,Bernd,Müller,bernd@example.de,+49 170 1234567,vertrieb,webinar,2024-04-02
C00003,Clara,Weiß,clara@example.de,,einkauf,import,2024-05-03
";

fn at(day: i64) -> String {
    let start = chrono::DateTime::parse_from_rfc3339("2026-02-02T09:00:00Z").expect("a time");
    (start + chrono::Duration::days(day)).to_rfc3339()
}

/// A workspace whose store is `db`.
fn workspace(db: String) -> Workspace {
    let ws = Workspace {
        dir: support::files(&[("contacts.csv", CSV)]),
        db,
    };
    ws.ok(&["init"]);
    ws
}

fn json(ws: &Workspace, args: &[&str]) -> Value {
    serde_json::from_str(&ws.ok(args)).expect("JSON output")
}

/// Runs the scenario: a tenant, an import, a tick, an answer through the
/// link, a refusal, and a later tick; returns what `cases --json` and
/// `status` show at the end.
fn scenario(ws: &Workspace) -> (Value, String) {
    ws.ok(&[
        "tenant",
        "add",
        "acme",
        "--name",
        "Müller GmbH",
        "--policy",
        &format!("{}/../rules/default.rhai", env!("CARGO_MANIFEST_DIR")),
        "--now",
        &at(0),
    ]);
    ws.ok(&["import", "acme", "contacts.csv", "--now", &at(0)]);
    ws.ok(&["tick", "--now", &at(0)]);
    let outbox = json(ws, &["outbox", "acme", "--json"]);
    let token = |contact: &str| -> String {
        outbox
            .as_array()
            .and_then(|all| {
                all.iter()
                    .find(|i| i["contact"] == contact && i["kind"] == "send-request")
            })
            .and_then(|i| i["payload"]["token"].as_str())
            .map(str::to_owned)
            .unwrap_or_else(|| panic!("no request for {contact}: {outbox:#}"))
    };
    ws.ok(&["respond", &token("C00001"), "accept", "--now", &at(1)]);
    ws.ok(&["respond", &token("C00002"), "refuse", "--now", &at(1)]);
    // The same link again is refused, on either store.
    let again = ws.run(&["respond", &token("C00001"), "accept", "--now", &at(1)]);
    assert!(!again.status.success(), "a used link works twice");
    for day in [3, 10, 20, 40] {
        ws.ok(&["tick", "--now", &at(day)]);
    }
    let verify = ws.ok(&["audit", "verify"]);
    assert!(verify.contains("audit chain intact"), "{verify}");
    let mut cases = json(ws, &["cases", "acme", "--json", "--now", &at(40)]);
    // Only what the store decides, not where it lives.
    if let Some(all) = cases.as_array_mut() {
        for case in all {
            if let Some(case) = case.as_object_mut() {
                case.retain(|k, _| {
                    ["contact", "purpose", "state", "band", "due"].contains(&k.as_str())
                });
            }
        }
    }
    (cases, ws.ok(&["status", "acme", "--now", &at(40)]))
}

#[test]
fn the_same_scenario_ends_the_same_on_postgresql_and_on_sqlite() {
    let pg = workspace(support::postgres_database());
    let file = {
        let dir = support::files(&[("contacts.csv", CSV)]);
        let db = dir.path().join("klar.db").to_string_lossy().into_owned();
        let ws = Workspace { dir, db };
        ws.ok(&["init"]);
        ws
    };
    let on_postgres = scenario(&pg);
    let on_sqlite = scenario(&file);
    assert_eq!(on_postgres.0, on_sqlite.0);
    assert_eq!(on_postgres.1, on_sqlite.1);
    let states: Vec<&str> = on_postgres
        .0
        .as_array()
        .map(|all| all.iter().filter_map(|c| c["state"].as_str()).collect())
        .unwrap_or_default();
    assert!(states.contains(&"consented"), "{states:?}");
    assert!(
        states.contains(&"purged"),
        "the refusal was cleaned up: {states:?}"
    );
}

#[test]
fn init_reports_the_schema_version_and_a_newer_schema_is_refused() {
    let url = support::postgres_database();
    let ws = workspace(url.clone());
    let again = ws.ok(&["init"]);
    assert!(again.ends_with("ready (schema version 17)\n"), "{again}");
    let mut client = postgres::Client::connect(&url, postgres::NoTls).expect("connects");
    client
        .batch_execute("UPDATE klar_schema SET version = 99")
        .expect("a newer klar's version");
    let out = ws.run(&["tenant", "list"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("has schema version 99, newer than this klar knows (17)"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_database_that_cannot_be_reached_is_a_clear_error() {
    let cluster = support::postgres();
    let url = format!("postgres://klar@127.0.0.1:{}/no_such_db", cluster.port());
    let out = klar()
        .env("KLAR_DB", &url)
        .args(["tenant", "list"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    let err = stderr(&out);
    assert!(
        err.contains("failed to open the database postgres://klar@127.0.0.1"),
        "{err}"
    );
    assert!(err.contains("no_such_db"), "{err}");
}
