//! A policy cannot break what was tested (issue 11): before a version becomes
//! active, through `klar policy set`, `klar policy rollback` or
//! `POST /v1/policy/versions`, every hook runs in the sandbox for every
//! contact of the tenant, and an error for any of them refuses it, naming the
//! contact; a version without tests replaces a tested one only with a reason,
//! which the audit log records.

mod support;

use std::time::Instant;

use serde_json::{Value, json};
use support::server::Server;
use support::*;

const AT: &str = "2026-12-01T08:00:00Z";

const MANUAL: &str =
    "fn on_no_response(contact, case) {\n    #{ action: \"manual\", assign: contact.owner }\n}\n";

/// The issue's example: an error only in a branch for purchased addresses,
/// which the check's one sample contact (source "web-form") never reaches.
const PURCHASED_DELETE: &str = "// Purchased addresses go at once.\n\
fn on_no_response(contact, case) {\n    if contact.source == \"purchased-list\" {\n        #{ action: \"delete\" }\n    } else {\n        #{ action: \"manual\", assign: contact.owner }\n    }\n}\n";

/// Tests that both policies above pass: none of them is from a purchased list.
const TESTS: &str = r#"
[defaults]
now = "2026-12-01T09:00:00+01:00"
[defaults.contact]
owner = "jk"
source = "web"

[[test]]
name = "no answer: the owner decides"
case = { state = "requested", attempt = 3, requested_at = "2026-11-01T09:00:00+01:00", due_at = "2026-12-01T09:00:00+01:00" }
event = { type = "tick" }
expect = { state = "awaiting-decision", assigned_to = "jk" }
"#;

const CSV: &str = "external_id,first_name,last_name,email,phone,owner,source,created_at\n\
C00001,Ann,Lee,a@example.de,,jk,web,2026-10-01\n\
C00042,Bo,Kim,b@example.de,,jk,purchased-list,2026-10-01\n\
C00043,Cy,Roe,c@example.de,,mb,purchased-list,2026-10-01\n";

const REFUSED_C00042: &str = "klar: refused: the policy fails for contact C00042 (source \"purchased-list\", purpose contact-data): on_no_response, line 2, column 1: hook on_no_response(contact, case) must return a map such as #{ action: \"manual\", assign: contact.owner }, #{ action: \"restart\", after_days: 90 } or #{ action: \"cleanup\", mode: \"anonymise\", grace_days: 30 }, but `action` is \"delete\", not \"manual\", \"restart\" or \"cleanup\"\n  … and the same for 1 other contact(s)\n";

fn versions(ws: &Workspace) -> Vec<(i64, bool)> {
    let log: Value =
        serde_json::from_str(&ws.ok(&["policy", "log", "acme", "--json"])).expect("JSON");
    log.as_array()
        .map(|a| {
            a.iter()
                .map(|v| (v["version"].as_i64().unwrap_or(0), v["active"] == true))
                .collect()
        })
        .unwrap_or_default()
}

fn tenant_audit(ws: &Workspace) -> Vec<(String, Value)> {
    let store = ws.store();
    klar::store::audit::rows(store.connection(), "acme", None)
        .expect("audit rows")
        .into_iter()
        .filter(|r| r.entry.contact.is_none())
        .map(|r| {
            let detail = serde_json::from_str(&r.entry.detail).unwrap_or(Value::Null);
            (r.entry.kind, detail)
        })
        .collect()
}

#[test]
fn a_policy_that_fails_for_some_contacts_is_refused_and_names_one() {
    let ws = Workspace::new(&[
        ("v1.rhai", MANUAL),
        ("v1.tests.toml", TESTS),
        ("v2.rhai", PURCHASED_DELETE),
        ("v2.tests.toml", TESTS),
        ("c.csv", CSV),
    ]);
    ws.ok(&["tenant", "add", "acme", "--name", "ACME", "--now", AT]);
    ws.ok(&[
        "policy", "set", "acme", "v1.rhai", "--author", "dpo", "--now", AT,
    ]);
    ws.ok(&["import", "acme", "c.csv", "--now", AT]);

    // The check alone cannot see it: its sample contact is not purchased.
    assert_eq!(
        ws.ok(&["policy", "check", "v2.rhai"]),
        "v2.rhai: ok (0 warning(s))\n"
    );

    let out = ws.run(&[
        "policy", "set", "acme", "v2.rhai", "--author", "dpo", "--now", AT,
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let text = stdout(&out);
    assert!(text.contains(REFUSED_C00042), "{text}");
    assert!(
        text.contains(" 2 │ fn on_no_response(contact, case) {\n"),
        "the place is drawn: {text}"
    );
    assert!(
        text.ends_with(
            "v2.rhai: fails for 2 of acme's contacts (every hook tried for all 3 contact(s)); the active policy of acme is unchanged\n"
        ),
        "{text}"
    );
    assert_eq!(versions(&ws), [(1, true)]);
}

#[test]
fn a_rollback_is_tried_on_the_contacts_of_today() {
    let ws = Workspace::new(&[
        ("old.rhai", PURCHASED_DELETE),
        ("old.tests.toml", TESTS),
        ("fixed.rhai", MANUAL),
        ("fixed.tests.toml", TESTS),
        ("c.csv", CSV),
    ]);
    // v1 was fine for the contacts of its day: there were none.
    ws.ok(&[
        "tenant", "add", "acme", "--name", "ACME", "--policy", "old.rhai", "--now", AT,
    ]);
    ws.ok(&[
        "policy",
        "set",
        "acme",
        "fixed.rhai",
        "--author",
        "dpo",
        "--now",
        AT,
    ]);
    ws.ok(&["import", "acme", "c.csv", "--now", AT]);
    let out = ws.run(&[
        "policy", "rollback", "acme", "1", "--author", "dpo", "--now", AT,
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let text = stdout(&out);
    assert!(text.contains(REFUSED_C00042), "{text}");
    assert!(
        text.ends_with("acme policy v1: fails for 2 of acme's contacts (every hook tried for all 3 contact(s)); the active policy of acme is unchanged\n"),
        "{text}"
    );
    assert_eq!(versions(&ws), [(1, false), (2, true)]);
}

#[test]
fn a_policy_without_tests_replaces_a_tested_one_only_with_a_reason() {
    let ws = Workspace::new(&[
        ("tested.rhai", MANUAL),
        ("tested.tests.toml", TESTS),
        ("quick.rhai", "fn answer_days(contact) { 10 }\n"),
        ("quicker.rhai", "fn answer_days(contact) { 7 }\n"),
    ]);
    ws.ok(&["tenant", "add", "acme", "--name", "ACME", "--now", AT]);
    // Without tests over the built-in default, and over an untested version: as before.
    ws.ok(&[
        "policy",
        "set",
        "acme",
        "quick.rhai",
        "--author",
        "dpo",
        "--now",
        AT,
    ]);
    ws.ok(&[
        "policy",
        "set",
        "acme",
        "quicker.rhai",
        "--author",
        "dpo",
        "--now",
        AT,
    ]);
    ws.ok(&[
        "policy",
        "set",
        "acme",
        "tested.rhai",
        "--author",
        "dpo",
        "--now",
        AT,
    ]);

    let out = ws.run(&[
        "policy",
        "set",
        "acme",
        "quick.rhai",
        "--author",
        "jd",
        "--now",
        AT,
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stdout(&out),
        "quick.rhai: no tests (quick.tests.toml does not exist); consider writing some\n\
         klar: refused: acme's active policy v3 has tests and this one has none; write tests for it, or activate it anyway with --untested --reason TEXT (recorded in the audit log)\n\
         quick.rhai: the active policy of acme is unchanged\n"
    );
    let no_reason = ws.run(&[
        "policy",
        "set",
        "acme",
        "quick.rhai",
        "--untested",
        "--now",
        AT,
    ]);
    assert_eq!(no_reason.status.code(), Some(2));
    assert!(
        stderr(&no_reason).contains("--reason"),
        "{}",
        stderr(&no_reason)
    );
    assert_eq!(versions(&ws).len(), 3);

    ws.ok(&[
        "policy",
        "set",
        "acme",
        "quick.rhai",
        "--author",
        "jd",
        "--untested",
        "--reason",
        "hotfix: the DPO approved it by phone",
        "--now",
        AT,
    ]);
    assert_eq!(versions(&ws).last(), Some(&(4, true)));
    let audit = tenant_audit(&ws);
    let (kind, detail) = audit.last().expect("an audit row");
    assert_eq!(kind, "policy-set-untested");
    assert_eq!(detail["reason"], "hotfix: the DPO approved it by phone");
    assert_eq!(detail["replaces"], 3);
    assert_eq!(detail["version"], 4);
    assert_eq!(detail["author"], "jd");
    let kinds: Vec<&str> = audit.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "tenant-created",
            "policy-set",
            "policy-set",
            "policy-set",
            "policy-set-untested"
        ]
    );
}

#[test]
fn all_ten_thousand_contacts_are_tried_within_seconds() {
    let mut csv =
        String::from("external_id,first_name,last_name,email,phone,owner,source,created_at\n");
    for n in 0..10_000 {
        let email = if n % 7 == 0 {
            String::new()
        } else {
            format!("p{n}@example.de")
        };
        csv.push_str(&format!(
            "C{n:05},Ann,Lee,{email},,o{},web,2026-10-01\n",
            n % 13
        ));
    }
    // Only the last contact in id order reaches the mistake.
    let last_only = "fn answer_days(contact) {\n    if contact.id == \"C09999\" { contact.phone.len() } else { 14 }\n}\n";
    let ws = Workspace::new(&[
        ("c.csv", csv.as_str()),
        ("p.rhai", last_only),
        ("default.rhai", DEFAULT_POLICY),
    ]);
    ws.ok(&["tenant", "add", "acme", "--name", "ACME", "--now", AT]);
    ws.ok(&[
        "purpose",
        "add",
        "acme",
        "newsletter",
        "--description",
        "News",
        "--now",
        AT,
    ]);
    ws.ok(&["import", "acme", "c.csv", "--now", AT]);

    let started = Instant::now();
    let out = ws.run(&["policy", "set", "acme", "p.rhai", "--now", AT]);
    let refused_in = started.elapsed();
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        stdout(&out).contains(
            "klar: refused: the policy fails for contact C09999 (source \"web\"): answer_days, line 2, column 47: `len` was used on nothing: a value is missing here"
        ),
        "{}",
        stdout(&out)
    );
    assert!(
        stdout(&out).contains("(every hook tried for all 10000 contact(s))"),
        "{}",
        stdout(&out)
    );

    let started = Instant::now();
    let out = ws.ok(&["policy", "set", "acme", "default.rhai", "--now", AT]);
    let accepted_in = started.elapsed();
    assert!(
        out.contains("acme: every hook ran without error for all 10000 contact(s) ("),
        "{out}"
    );
    println!(
        "policy set over 10,000 contacts: refused in {refused_in:?}, accepted in {accepted_in:?}"
    );
    // Seconds, not minutes; generous for a shared, loaded test machine.
    for took in [refused_in, accepted_in] {
        assert!(took.as_secs() < 30, "took {took:?}");
    }
}

#[test]
fn the_api_tries_an_upload_on_the_contacts_and_wants_a_reason_for_no_tests() {
    let s = Server::start();
    let key = Some(s.keys.0.as_str());
    for (id, source) in [("C1", "web"), ("C42", "purchased-list")] {
        let body = json!({"first_name": "Bo", "last_name": "Kim", "email": "b@example.de",
                          "owner": "jk", "source": source, "created_at": "2026-10-01"});
        let (status, _) = s.call("PUT", &format!("/v1/contacts/{id}"), key, Some(&body));
        assert_eq!(status, 200, "{id}");
    }
    let upload = |body: Value| s.call("POST", "/v1/policy/versions", key, Some(&body));

    let (status, answer) =
        upload(json!({"source": MANUAL, "tests": TESTS, "author": "dpo", "message": "tested"}));
    assert_eq!(status, 201, "{answer}");

    let (status, answer) = upload(
        json!({"source": PURCHASED_DELETE, "tests": TESTS, "author": "dpo", "message": "purchased"}),
    );
    assert_eq!(status, 422, "{answer}");
    assert_eq!(answer["error"]["code"], "invalid_policy");
    assert_eq!(
        answer["error"]["message"],
        "the policy fails for 1 of the 2 contact(s) it was tried on; nothing was changed"
    );
    let problem = &answer["problems"][0];
    assert_eq!(problem["contact"], "C42", "{answer}");
    assert_eq!(problem["source"], "purchased-list");
    assert_eq!(problem["hook"], "on_no_response");
    assert_eq!(problem["purpose"], "contact-data");
    assert_eq!(
        (problem["line"].as_u64(), problem["column"].as_u64()),
        (Some(2), Some(1))
    );
    assert_eq!(problem["contacts_affected"], 1);
    assert!(
        answer["rendered"]
            .as_str()
            .is_some_and(|r| r.starts_with("policy.rhai:2:1: error: contact C42 (source \"purchased-list\", purpose contact-data): on_no_response, line 2, column 1: hook on_no_response(contact, case) must return")),
        "{answer}"
    );

    let untested =
        json!({"source": "fn answer_days(contact) { 10 }", "author": "jd", "message": "hotfix"});
    let (status, answer) = upload(untested.clone());
    assert_eq!(status, 422, "{answer}");
    assert_eq!(answer["error"]["code"], "untested");
    assert!(
        answer["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("`untested_reason`")),
        "{answer}"
    );
    let mut with_reason = untested;
    with_reason["untested_reason"] = json!("the DPO approved it by phone");
    let (status, answer) = upload(with_reason);
    assert_eq!(status, 201, "{answer}");
    assert_eq!(answer["version"]["version"], 2);

    let (_, versions) = s.call("GET", "/v1/policy/versions", key, None);
    assert_eq!(versions["active"], 2);
    assert_eq!(versions["versions"].as_array().map(Vec::len), Some(2));
    let audit = tenant_audit(&s.ws);
    let (kind, detail) = audit.last().expect("an audit row");
    assert_eq!(kind, "policy-set-untested");
    assert_eq!(detail["reason"], "the DPO approved it by phone");
    assert_eq!(detail["probed_contacts"], 2);
}
