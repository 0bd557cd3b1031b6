//! `klar tick` against a real database: due cases are stepped through the real
//! plugin, outcomes land with audit and outbox rows, a second tick at the same
//! time changes nothing, and a policy error marks only its own cases.

mod support;

use klar::store::audit;
use support::*;

const CSV: &str = "external_id,first_name,last_name,email,phone,owner,source,created_at\n\
C00001,Jürgen,Groß,j.gross@example.de,,jk,trade-fair,2026-10-01\n\
C00002,Zoë,Weiß,zoe@example.fr,,mb,web-form,2026-10-02\n\
C00003,José,Núñez,jose@example.es,,jk,import,2026-10-03\n";

fn setup(policy: &str) -> Workspace {
    let ws = Workspace::new(&[("contacts.csv", CSV), ("policy.rhai", policy)]);
    for args in [
        &[
            "tenant",
            "add",
            "acme",
            "--name",
            "ACME",
            "--policy",
            "policy.rhai",
            "--now",
            "2026-11-30T08:00:00Z",
        ][..],
        &[
            "purpose",
            "add",
            "acme",
            "newsletter",
            "--description",
            "Newsletter",
            "--now",
            "2026-11-30T08:00:00Z",
        ],
        &[
            "import",
            "acme",
            "contacts.csv",
            "--now",
            "2026-11-30T08:00:00Z",
        ],
    ] {
        ws.ok(args);
    }
    ws
}

fn tick(ws: &Workspace, now: &str) -> String {
    ws.ok(&["tick", "--now", now])
}

fn states(ws: &Workspace) -> Vec<(String, String, String, Option<String>)> {
    let sql = ws.sql();
    let mut stmt = sql
        .prepare(
            "SELECT contact, purpose, state, needs_attention FROM cases ORDER BY contact, purpose",
        )
        .expect("query");
    stmt.query_map((), |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .expect("rows")
        .collect::<Result<_, _>>()
        .expect("rows")
}

fn outbox_kinds(ws: &Workspace) -> Vec<String> {
    let sql = ws.sql();
    let mut stmt = sql
        .prepare("SELECT kind FROM outbox ORDER BY seq")
        .expect("query");
    stmt.query_map((), |r| r.get(0))
        .expect("rows")
        .collect::<Result<_, _>>()
        .expect("rows")
}

#[test]
fn a_tick_asks_every_new_case_once_and_a_second_tick_changes_nothing() {
    let ws = setup(DEFAULT_POLICY);
    assert_eq!(
        tick(&ws, "2026-11-30T09:00:00Z"),
        "acme: 6 due, 6 changed, 0 failed, 6 action(s) queued\n"
    );
    assert!(
        states(&ws)
            .iter()
            .all(|(_, _, state, attention)| state == "requested" && attention.is_none())
    );
    // Three contacts with two purposes each: one message per contact asks
    // about both.
    assert_eq!(outbox_kinds(&ws), vec!["send-request"; 3]);

    let audit_rows = {
        let store = ws.store();
        audit::rows(store.connection(), "acme", None)
            .expect("rows")
            .len()
    };
    assert_eq!(
        tick(&ws, "2026-11-30T09:00:00Z"),
        "acme: 0 due, 0 changed, 0 failed, 0 action(s) queued\n"
    );
    let store = ws.store();
    assert_eq!(
        audit::rows(store.connection(), "acme", None)
            .expect("rows")
            .len(),
        audit_rows
    );
    assert_eq!(
        audit::verify(store.connection(), "acme").expect("verifies"),
        []
    );

    // 14 business days later the first reminders are due.
    assert_eq!(
        tick(&ws, "2026-12-18T09:00:00Z"),
        "acme: 6 due, 6 changed, 0 failed, 6 action(s) queued\n"
    );
}

#[test]
fn a_policy_error_marks_its_cases_and_the_sweep_goes_on() {
    let policy = "fn channel(contact, attempt) {\n    if contact.source == \"import\" { throw \"imported contacts need a manual check\" }\n    \"email\"\n}\n";
    let ws = setup(policy);
    assert_eq!(
        tick(&ws, "2026-11-30T09:00:00Z"),
        "acme: 6 due, 4 changed, 2 failed, 4 action(s) queued\n"
    );
    for (contact, _, state, attention) in states(&ws) {
        if contact == "C00003" {
            assert_eq!(state, "unclarified");
            let why = attention.expect("marked");
            assert!(
                why.contains("imported contacts need a manual check"),
                "{why}"
            );
            assert!(why.contains("2:"), "the message names the line: {why}");
        } else {
            assert_eq!((state.as_str(), attention), ("requested", None));
        }
    }
    assert_eq!(
        tick(&ws, "2026-11-30T10:00:00Z"),
        "acme: 0 due, 0 changed, 0 failed, 0 action(s) queued\n"
    );
}

#[test]
fn status_and_cases_show_where_everything_stands() {
    let ws = setup("fn reminder_days(contact) { [] }\nfn answer_days(contact) { 7 }\n");
    tick(&ws, "2026-11-30T09:00:00Z");
    tick(&ws, "2026-12-08T09:00:00Z");
    let out = ws.ok(&["status", "acme", "--json", "--now", "2026-12-08T10:00:00Z"]);
    let status: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(status["bands"]["to-clarify"], 6);
    assert_eq!(status["states"]["awaiting-decision"], 6);
    assert_eq!(status["states"]["consented"], 0);
    assert_eq!(
        status["awaiting_decision_by_owner"],
        serde_json::json!({"jk": 4, "mb": 2})
    );
    assert_eq!(status["overdue"], 0);

    let text = ws.ok(&["status", "acme", "--now", "2026-12-08T10:00:00Z"]);
    assert!(text.starts_with("acme: 6 case(s)\n"), "{text}");
    assert!(
        text.ends_with("awaiting a decision: jk 4, mb 2\n"),
        "{text}"
    );

    let out = ws.ok(&["cases", "acme", "--owner", "mb", "--json"]);
    let cases: serde_json::Value = serde_json::from_str(&out).expect("json");
    let cases = cases.as_array().expect("a list");
    assert_eq!(cases.len(), 2);
    for case in cases {
        for key in [
            "tenant",
            "contact",
            "purpose",
            "state",
            "band",
            "reminders_sent",
            "next_due_at",
            "owner",
        ] {
            assert!(case.get(key).is_some(), "{key} missing in {case}");
        }
        assert_eq!(case["contact"], "C00002");
        assert_eq!(case["state"], "awaiting-decision");
    }
    let text = ws.ok(&["cases", "acme", "--state", "requested"]);
    assert!(text.ends_with("0 case(s)\n"), "{text}");
}
