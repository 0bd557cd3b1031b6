//! Commands say what they did and refuse what they cannot do, through the
//! real `klar` binary and server: unknown filter values, no-op decisions, a
//! mistyped `--db`, help texts, decision deadlines, local times for people
//! and RFC 3339 in JSON, and a response form without its CSRF field.

mod support;

use chrono::Duration;
use serde_json::{Value, json};
use support::server::Server;
use support::*;

const CSV: &str = "external_id,first_name,last_name,email,phone,owner,source,created_at\n\
C00001,Jürgen,Groß,j.gross@example.de,,jk,trade-fair,2026-10-01\n";

/// Nobody answers: one request, one day to answer, then the owner has two
/// working days to decide.
const QUICK: &str = "fn reminder_days(contact) { [] }\n\
fn answer_days(contact) { 1 }\n\
fn business_days_only() { true }\n\
fn decision_days(contact) { 2 }\n";

fn at(day: i64) -> String {
    (t0() + Duration::days(day)).to_rfc3339()
}

/// Tenant `acme` (Europe/Berlin) on `policy`, with C00001 imported on day 0.
fn tenant(policy: &str) -> Workspace {
    let ws = Workspace::new(&[("contacts.csv", CSV), ("policy.rhai", policy)]);
    ws.ok(&[
        "tenant",
        "add",
        "acme",
        "--name",
        "Müller GmbH",
        "--policy",
        "policy.rhai",
        "--now",
        &at(0),
    ]);
    ws.ok(&["import", "acme", "contacts.csv", "--now", &at(0)]);
    ws
}

fn fails(ws: &Workspace, args: &[&str]) -> (Option<i32>, String) {
    let out = ws.run(args);
    assert!(
        !out.status.success(),
        "{args:?} succeeded: {}",
        stdout(&out)
    );
    (
        out.status.code(),
        format!("{}{}", stdout(&out), stderr(&out)),
    )
}

#[test]
fn unknown_filter_values_are_errors_that_name_the_allowed_ones() {
    let ws = tenant(DEFAULT_POLICY);
    let (code, text) = fails(&ws, &["cases", "acme", "--state", "bogus"]);
    assert_eq!(code, Some(2));
    assert!(
        text.contains(
            "unknown state \"bogus\"; use one of: consented, other-basis, unclarified, requested, \
             awaiting-decision, paused, refused, withdrawn, objected, cleanup-pending, purged"
        ),
        "{text}"
    );
    let (code, text) = fails(&ws, &["cases", "acme", "--band", "red"]);
    assert_eq!(code, Some(2));
    assert!(
        text.contains("unknown band \"red\"; use one of: usable, to-clarify, removed"),
        "{text}"
    );
    // Known values still filter.
    let out = ws.ok(&["cases", "acme", "--band", "to-clarify", "--json"]);
    let lines: Value = serde_json::from_str(&out).expect("json");
    assert_eq!(lines.as_array().map(Vec::len), Some(1));

    let server = Server::start();
    let key = server.keys.0.as_str();
    let (status, body) = server.call("GET", "/v1/cases?state=bogus", Some(key), None);
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "bad_request");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with("unknown state \"bogus\"; use one of: consented, other-basis"),
        "{message}"
    );
    let (status, body) = server.call("GET", "/v1/cases?band=red", Some(key), None);
    assert_eq!(status, 400, "{body}");
    let (status, _) = server.call("GET", "/v1/cases?band=removed", Some(key), None);
    assert_eq!(status, 200);
}

#[test]
fn decisions_that_would_change_nothing_are_refused_and_hold_says_what_it_did() {
    let ws = tenant(DEFAULT_POLICY);
    ws.ok(&["tick", "--now", &at(0)]);
    // The standard policy needs no second pair of eyes for a cleanup.
    ws.ok(&[
        "decide",
        "acme",
        "C00001",
        "--action",
        "cleanup",
        "--by",
        "jk",
        "--reason",
        "gone",
        "--now",
        &at(1),
    ]);
    let (code, text) = fails(
        &ws,
        &["approve", "acme", "C00001", "--by", "dpo", "--now", &at(2)],
    );
    assert_eq!(code, Some(1));
    assert!(
        text.contains("C00001 contact-data: this cleanup needs no approval"),
        "{text}"
    );

    let out = ws.ok(&[
        "hold",
        "acme",
        "C00001",
        "on",
        "--by",
        "legal",
        "--reason",
        "dispute",
        "--now",
        &at(2),
    ]);
    assert_eq!(
        out,
        "C00001 contact-data: legal hold placed (state cleanup-pending); nothing is cleaned up while it lasts\n"
    );
    let (code, text) = fails(
        &ws,
        &[
            "hold",
            "acme",
            "C00001",
            "on",
            "--by",
            "legal",
            "--reason",
            "again",
            "--now",
            &at(3),
        ],
    );
    assert_eq!(code, Some(1));
    assert!(
        text.contains("C00001 contact-data: the case is already on legal hold; nothing changed"),
        "{text}"
    );
    let out = ws.ok(&[
        "hold",
        "acme",
        "C00001",
        "off",
        "--by",
        "legal",
        "--reason",
        "settled",
        "--now",
        &at(4),
    ]);
    assert_eq!(
        out,
        "C00001 contact-data: legal hold lifted (state cleanup-pending)\n"
    );
    let (code, text) = fails(
        &ws,
        &[
            "hold",
            "acme",
            "C00001",
            "off",
            "--by",
            "legal",
            "--reason",
            "x",
            "--now",
            &at(4),
        ],
    );
    assert_eq!(code, Some(1));
    assert!(text.contains("the case is not on legal hold"), "{text}");
    // Nothing of the refused attempts reached the audit log.
    let audit = ws.ok(&["audit", "show", "acme", "C00001", "--json"]);
    let rows: Value = serde_json::from_str(&audit).expect("json");
    let holds = rows
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| r["summary"].as_str().unwrap_or("").contains("legal hold"))
        .count();
    assert_eq!(holds, 2, "{audit}");
}

#[test]
fn the_api_refuses_a_second_hold_with_409() {
    let server = Server::start();
    let key = server.keys.0.as_str();
    let (status, body) = server.call(
        "PUT",
        "/v1/contacts/C1",
        Some(key),
        Some(&json!({"first_name": "Jürgen", "last_name": "Groß", "email": "j@example.de", "owner": "jk"})),
    );
    assert!(status == 200 || status == 201, "{status} {body}");
    let hold =
        json!({"type": "hold-on", "purpose": "contact-data", "by": "legal", "reason": "dispute"});
    let (status, body) = server.call("POST", "/v1/contacts/C1/events", Some(key), Some(&hold));
    assert_eq!(status, 200, "{body}");
    let (status, body) = server.call("POST", "/v1/contacts/C1/events", Some(key), Some(&hold));
    assert_eq!(status, 409, "{body}");
    assert!(body.to_string().contains("already on legal hold"), "{body}");
}

#[test]
fn a_mistyped_database_is_an_error_not_a_new_empty_one() {
    let dir = files(&[]);
    let out = klar()
        .current_dir(dir.path())
        .args(["--db", "klar.dbb", "cases", "acme"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        stderr(&out),
        "klar: there is no database klar.dbb; create it with `klar init` (or name the right one with --db or KLAR_DB)\n"
    );
    assert!(!dir.path().join("klar.dbb").exists());
    for args in [
        &["--db", "nope.db", "tenant", "add", "acme", "--name", "ACME"][..],
        &["--db", "nope.db", "tick"][..],
        &["--db", "nope.db", "serve", "--addr", "127.0.0.1:0"][..],
    ] {
        let out = klar()
            .current_dir(dir.path())
            .args(args)
            .output()
            .expect("runs");
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(
            stderr(&out).contains("there is no database nope.db"),
            "{args:?}: {}",
            stderr(&out)
        );
    }
    assert!(!dir.path().join("nope.db").exists());
    // `init` creates it; then the others work.
    let out = klar()
        .current_dir(dir.path())
        .args(["--db", "klar.dbb", "init"])
        .output()
        .expect("runs");
    assert!(out.status.success(), "{}", stderr(&out));
    let out = klar()
        .current_dir(dir.path())
        .args([
            "--db", "klar.dbb", "tenant", "add", "acme", "--name", "ACME",
        ])
        .output()
        .expect("runs");
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn every_flag_says_what_it_is_for() {
    for (command, expected) in [
        (&["simulate", "--help"][..], "How many days to simulate"),
        (
            &["simulate", "--help"][..],
            "The seed of the simulated answers",
        ),
        (&["decide", "--help"][..], "Who decided"),
        (&["decide", "--help"][..], "Why; the audit log records it"),
        (
            &["tick", "--help"][..],
            "Act at this time instead of the system clock",
        ),
    ] {
        let out = klar().args(command).output().expect("runs");
        assert!(out.status.success());
        assert!(
            stdout(&out).contains(expected),
            "{command:?}: {}",
            stdout(&out)
        );
    }
}

#[test]
fn a_decision_past_the_policys_deadline_is_overdue_and_the_tick_leaves_it_alone() {
    let ws = tenant(QUICK);
    // Monday: the request. Tuesday: no answer, so the owner decides, by
    // Thursday (two working days).
    ws.ok(&["tick", "--now", &at(0)]);
    ws.ok(&["tick", "--now", &at(1)]);
    let cases: Value =
        serde_json::from_str(&ws.ok(&["cases", "acme", "--json", "--now", &at(1)])).expect("json");
    assert_eq!(cases[0]["state"], "awaiting-decision");
    assert_eq!(cases[0]["next_due_at"], "2026-12-03T09:00:00+00:00");
    let status = |day: i64| -> Value {
        serde_json::from_str(&ws.ok(&["status", "acme", "--json", "--now", &at(day)]))
            .expect("json")
    };
    assert_eq!(status(2)["overdue"], 0);
    assert_eq!(status(4)["overdue"], 1);
    // The tick does not touch a case that waits for a person.
    assert_eq!(
        ws.ok(&["tick", "--now", &at(4)]),
        "acme: 0 due, 0 changed, 0 failed, 0 action(s) queued\n"
    );
    let overdue = ws.ok(&["cases", "acme", "--overdue", "--now", &at(4)]);
    assert!(overdue.contains("C00001"), "{overdue}");
    assert!(overdue.contains("awaiting-decision"), "{overdue}");
    // People read the deadline in the tenant's time, with its zone.
    assert!(overdue.contains("2026-12-03 10:00 CET"), "{overdue}");
    let text = ws.ok(&["status", "acme", "--now", &at(4)]);
    assert!(text.contains("overdue: 1 "), "{text}");
}

#[test]
fn json_shows_rfc_3339_and_people_read_local_time() {
    let ws = tenant(DEFAULT_POLICY);
    ws.ok(&["tick", "--now", &at(0)]);
    let items: Value = serde_json::from_str(&ws.ok(&["outbox", "acme", "--json"])).expect("json");
    let item = &items[0];
    assert_eq!(item["kind"], "send-request");
    assert_eq!(item["created_at"], "2026-11-30T09:00:00+00:00");
    assert_eq!(item["acked_at"], Value::Null);
    // 180 days on the tenant's calendar: 10:00 CET on 30 November, 10:00
    // CEST on 29 May, which is 08:00 UTC.
    assert_eq!(
        item["payload"]["link_expires_at"],
        "2027-05-29T08:00:00+00:00"
    );
    assert_eq!(
        item["payload"]["purposes"][0]["link_expires_at"],
        "2027-05-29T08:00:00+00:00"
    );
    let bundle: Value =
        serde_json::from_str(&ws.ok(&["evidence", "export", "acme", "C00001", "--now", &at(1)]))
            .expect("json");
    let request = &bundle["requests"][0];
    assert_eq!(request["at"], "2026-11-30T09:00:00+00:00");
    assert_eq!(
        request["detail"]["link_expires_at"],
        "2027-05-29T08:00:00+00:00"
    );
    assert_eq!(bundle["audit"][0]["at"], bundle["audit"][0]["time"]);
    assert_eq!(
        bundle["consent_texts"][0]["created_at"],
        "2026-11-30T09:00:00+00:00"
    );
    // The same moment for people: Berlin's winter time.
    let audit = ws.ok(&["audit", "show", "acme", "C00001"]);
    assert!(audit.contains("2026-11-30 10:00 CET"), "{audit}");
    let explain = ws.ok(&["explain", "acme", "C00001"]);
    assert!(explain.starts_with("2026-11-30 10:00 CET"), "{explain}");
    let log = ws.ok(&["policy", "log", "acme"]);
    assert!(log.contains("2026-11-30 10:00 CET"), "{log}");
}

#[test]
fn a_response_form_without_its_csrf_field_gets_the_friendly_page() {
    let server = Server::start();
    for (body, content_type) in [
        ("answer=accept", "application/x-www-form-urlencoded"),
        ("", "application/x-www-form-urlencoded"),
        ("{\"answer\": \"accept\"}", "application/json"),
    ] {
        let (status, text) = server.raw(
            "POST",
            "/r/abcdef",
            None,
            Some(body.to_owned()),
            &[("Content-Type", content_type)],
        );
        assert_eq!(status, 403, "{content_type} {body}: {text}");
        assert!(text.starts_with("<!doctype html>"), "{text}");
        assert!(text.contains("lang=\"de\""), "{text}");
    }
}
