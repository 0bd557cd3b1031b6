//! Policies owned by people who do not program: the examples pass their own
//! tests, a failing test is named with expected and actual and blocks
//! activation, versions can be listed, shown, compared and rolled back, a
//! dry run never touches the live database, and `explain` says why a demo
//! contact was cleaned up.

mod support;

use serde_json::Value;
use support::*;

const EXAMPLES: [&str; 5] = [
    "b2c-newsletter",
    "b2b",
    "trade-fair-leads",
    "phone-marketing",
    "existing-customers",
];

fn example(name: &str) -> String {
    format!("../rules/examples/{name}.rhai")
}

/// The shipped policies: the standard one and the examples.
fn shipped() -> Vec<String> {
    let mut all = vec!["../rules/default.rhai".to_owned()];
    all.extend(EXAMPLES.iter().map(|name| example(name)));
    all
}

#[test]
fn every_shipped_policy_passes_its_tests_and_exercises_its_hooks() {
    for name in shipped() {
        let out = klar()
            .args(["policy", "test", &name])
            .output()
            .expect("runs");
        let text = stdout(&out);
        assert!(out.status.success(), "{name}: {text}{}", stderr(&out));
        assert!(text.contains(" passed, 0 failed"), "{name}: {text}");
        assert!(!text.contains("hooks no test exercised"), "{name}: {text}");
    }
}

const POLICY: &str = "fn reminder_days(contact) { [7] }\n\
fn answer_days(contact) { 5 }\n\
fn on_refusal(contact, case) { #{ action: \"block\" } }\n";

const TESTS: &str = r#"
[defaults]
now = "2026-12-01T09:00:00+01:00"
[defaults.contact]
email = "a@example.de"
owner = "jk"

[[test]]
name = "the first request"
event = { type = "tick" }
expect = { state = "requested", actions = ["send-request email"], due_at = "2026-12-08T09:00:00+01:00" }

[[test]]
name = "a wrong expectation"
event = { type = "tick" }
expect = { state = "consented", actions = [] }
"#;

#[test]
fn a_failing_test_is_named_with_expected_and_actual_and_blocks_activation() {
    let ws = Workspace::new(&[
        ("p.rhai", POLICY),
        ("p.tests.toml", TESTS),
        ("good.rhai", POLICY),
    ]);
    let out = ws.run(&["policy", "test", "p.rhai"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stdout(&out),
        "p.tests.toml\n  ok    the first request\n  FAIL  a wrong expectation\n          \
         state: expected consented, got requested\n          \
         actions: expected [], got [send-request email]\n\
         hooks no test exercised: answer_days, on_refusal\n2 test(s): 1 passed, 1 failed\n"
    );

    ws.ok(&[
        "tenant",
        "add",
        "acme",
        "--name",
        "ACME",
        "--now",
        "2026-12-01T08:00:00Z",
    ]);
    ws.ok(&[
        "policy",
        "set",
        "acme",
        "good.rhai",
        "--author",
        "dpo",
        "--now",
        "2026-12-01T08:00:00Z",
    ]);
    let refused = ws.run(&[
        "policy",
        "set",
        "acme",
        "p.rhai",
        "--author",
        "dpo",
        "--now",
        "2026-12-01T09:00:00Z",
    ]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        stdout(&refused).ends_with(
            "p.rhai: has errors or failing tests; the active policy of acme is unchanged\n"
        ),
        "{}",
        stdout(&refused)
    );
    let log: Value =
        serde_json::from_str(&ws.ok(&["policy", "log", "acme", "--json"])).expect("JSON");
    assert_eq!(log.as_array().map(Vec::len), Some(1), "{log}");
    assert_eq!(log[0]["active"], true);

    // A broken test file is an error with its line, not a pass.
    ws.write(
        "broken.toml",
        "[[test]]\nname = \"x\"\nevent = { type = \"tick\" }\nexpect = { stat = \"requested\" }\n",
    );
    let out = ws.run(&["policy", "test", "p.rhai", "broken.toml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("broken.toml: line 4: unknown field `stat`"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn versions_can_be_listed_shown_compared_and_rolled_back() {
    let ws = Workspace::new(&[
        ("v1.rhai", "fn reminder_days(contact) { [7] }\n"),
        ("v2.rhai", "fn reminder_days(contact) { [7, 14] }\n"),
    ]);
    let at = "2026-12-01T08:00:00Z";
    ws.ok(&[
        "tenant", "add", "acme", "--name", "ACME", "--policy", "v1.rhai", "--now", at,
    ]);
    ws.ok(&[
        "policy",
        "set",
        "acme",
        "v2.rhai",
        "--author",
        "dpo",
        "--message",
        "a second reminder",
        "--now",
        at,
    ]);

    let log = ws.ok(&["policy", "log", "acme"]);
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.len(), 3, "{log}");
    assert!(
        lines[1].starts_with("   2  active 2026-12-01 09:00 CET  dpo"),
        "{log}"
    );
    assert!(lines[1].ends_with("a second reminder"), "{log}");

    assert_eq!(
        ws.ok(&["policy", "show", "acme", "1"]),
        "fn reminder_days(contact) { [7] }\n"
    );
    assert_eq!(
        ws.ok(&["policy", "show", "acme"]),
        "fn reminder_days(contact) { [7, 14] }\n"
    );
    let diff = ws.ok(&["policy", "diff", "acme", "1", "2"]);
    assert!(
        diff.contains("-fn reminder_days(contact) { [7] }\n+fn reminder_days(contact) { [7, 14] }"),
        "{diff}"
    );
    assert!(diff.starts_with("--- acme v1 ("), "{diff}");

    let out = ws.ok(&[
        "policy",
        "rollback",
        "acme",
        "1",
        "--author",
        "dpo",
        "--message",
        "too many mails",
        "--now",
        at,
    ]);
    assert!(
        out.starts_with("acme: policy version 3 (the text of v1) is active"),
        "{out}"
    );
    assert_eq!(
        ws.ok(&["policy", "show", "acme"]),
        "fn reminder_days(contact) { [7] }\n"
    );
    let log: Value =
        serde_json::from_str(&ws.ok(&["policy", "log", "acme", "--json"])).expect("JSON");
    assert_eq!(log[2]["message"], "rollback to v1: too many mails");
    let missing = ws.run(&["policy", "show", "acme", "9"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(
        stderr(&missing).contains("acme has no policy version 9"),
        "{}",
        stderr(&missing)
    );
}

fn sha256_of(path: &std::path::Path) -> String {
    klar::sha256_hex(&std::fs::read(path).expect("the database file"))
}

#[test]
fn a_dry_run_forecasts_by_week_compares_versions_and_changes_nothing() {
    let ws = Workspace::new(&[(
        "strict.rhai",
        "fn reminder_days(contact) { [3] }\nfn answer_days(contact) { 3 }\n\
         fn on_no_response(contact, case) { #{ action: \"cleanup\", mode: \"delete\", grace_days: 7 } }\n",
    )]);
    let end = "2026-11-30T08:00:00Z";
    ws.ok(&[
        "demo",
        "--contacts",
        "60",
        "--days",
        "30",
        "--seed",
        "3",
        "--now",
        end,
    ]);
    let db = ws.path().join("klar.db");
    // The demo's tenant runs the built-in policy; store it as v1 to compare with.
    std::fs::write(ws.path().join("default.rhai"), klar::DEFAULT_POLICY).expect("write");
    ws.ok(&[
        "policy",
        "set",
        "demo",
        "default.rhai",
        "--author",
        "dpo",
        "--now",
        end,
    ]);
    let before = sha256_of(&db);

    let out = ws.ok(&[
        "simulate",
        "demo",
        "--policy",
        "strict.rhai",
        "--days",
        "42",
        "--against",
        "1",
        "--seed",
        "5",
        "--now",
        "2026-12-01T08:00:00Z",
        "--json",
    ]);
    assert_eq!(sha256_of(&db), before, "the live database is untouched");
    let forecast: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    let weeks = forecast["weeks"].as_array().expect("weeks");
    assert_eq!(weeks.len(), 6);
    for key in [
        "requests",
        "reminders",
        "consents",
        "refusals",
        "cleanups",
        "handed_to_people",
    ] {
        assert!(weeks[0].get(key).is_some(), "{key}: {}", weeks[0]);
    }
    let cleanups = |w: &Value| -> u64 {
        w.as_array()
            .map(|a| a.iter().filter_map(|w| w["cleanups"].as_u64()).sum())
            .unwrap_or(0)
    };
    assert!(
        cleanups(&forecast["weeks"]) > cleanups(&forecast["against"]["weeks"]),
        "the strict policy cleans up more: {forecast}"
    );
    let differences = forecast["differences"].as_array().expect("differences");
    assert!(!differences.is_empty(), "{forecast}");
    assert!(
        differences.iter().any(|d| d
            .as_str()
            .is_some_and(|d| d.contains("cleanup on 2026-") || d.contains("cleanup on 2027-"))
            && d.as_str()
                .is_some_and(|d| d.contains(" under strict.rhai, ") && d.ends_with(" under v1"))),
        "{differences:?}"
    );

    // The same seed gives the same forecast.
    let again = ws.ok(&[
        "simulate",
        "demo",
        "--policy",
        "strict.rhai",
        "--days",
        "42",
        "--against",
        "1",
        "--seed",
        "5",
        "--now",
        "2026-12-01T08:00:00Z",
        "--json",
    ]);
    assert_eq!(again, out);
    assert_eq!(sha256_of(&db), before);
}

#[test]
fn explain_says_why_a_demo_contact_was_cleaned_up() {
    let ws = Workspace::new(&[]);
    let end = "2026-11-30T08:00:00Z";
    ws.ok(&[
        "demo",
        "--contacts",
        "80",
        "--days",
        "120",
        "--seed",
        "7",
        "--now",
        end,
    ]);
    let purged: Value = serde_json::from_str(
        &ws.ok(&["cases", "demo", "--state", "purged", "--json", "--now", end]),
    )
    .expect("JSON");
    let case = &purged[0];
    let contact = case["contact"].as_str().expect("a purged case");
    let purpose = case["purpose"].as_str().expect("purpose");

    let steps: Value =
        serde_json::from_str(&ws.ok(&["explain", "demo", contact, "--json"])).expect("JSON");
    let steps: Vec<&Value> = steps
        .as_array()
        .map(|a| a.iter().filter(|s| s["purpose"] == purpose).collect())
        .unwrap_or_default();
    let last = steps.last().expect("steps");
    assert_eq!(last["to"], "purged", "{last}");
    assert_eq!(last["policy"], "the built-in default policy");
    let into_cleanup = steps
        .iter()
        .find(|s| s["to"] == "cleanup-pending")
        .expect("a step into cleanup-pending");
    // Why: a refusal, a withdrawal, or a person's decision, with its reason.
    let summary = into_cleanup["summary"].as_str().unwrap_or_default();
    assert!(
        summary.starts_with("the contact refused")
            || summary.starts_with("withdraw")
            || summary.starts_with("decision cleanup by "),
        "{summary}"
    );
    assert!(
        !into_cleanup["reasons"]
            .as_array()
            .map(Vec::is_empty)
            .unwrap_or(true)
    );

    let text = ws.ok(&["explain", "demo", contact]);
    assert!(text.contains("→ purged; cleanup (anonymise)"), "{text}");
    assert!(
        text.contains("[the built-in default policy, sha256 "),
        "{text}"
    );
    assert!(
        text.contains("the policy's on_refusal") || text.contains("decision by "),
        "{text}"
    );
}

#[test]
fn a_policy_that_hits_a_limit_marks_only_its_cases_and_status_says_so() {
    let ws = Workspace::new(&[
        (
            "p.rhai",
            "fn channel(contact, attempt) {\n    if contact.source == \"loop\" {\n        let n = 0;\n        loop { n += 1; }\n    }\n    \"email\"\n}\n",
        ),
        (
            "c.csv",
            "external_id,first_name,last_name,email,phone,owner,source,created_at\n\
             C1,Ann,Lee,a@example.de,,jk,web,2026-10-01\n\
             C2,Bo,Kim,b@example.de,,jk,loop,2026-10-01\n\
             C3,Cy,Roe,c@example.de,,jk,web,2026-10-01\n",
        ),
    ]);
    let at = "2026-12-01T08:00:00Z";
    ws.ok(&[
        "tenant", "add", "acme", "--name", "ACME", "--policy", "p.rhai", "--now", at,
    ]);
    ws.ok(&["import", "acme", "c.csv", "--now", at]);
    let out = ws.ok(&["tick", "--now", at]);
    assert_eq!(
        out,
        "acme: 3 due, 2 changed, 1 failed, 2 action(s) queued\n"
    );
    let status = ws.ok(&["status", "acme", "--now", at]);
    assert!(status.contains("needs attention: 1"), "{status}");
    assert!(
        status.contains(
            "  needs attention: C2 contact-data: policy error at 4:16: in hook `channel`: the policy ran too long and was stopped"
        ),
        "the limit error names the policy's line: {status}"
    );
    let json: Value =
        serde_json::from_str(&ws.ok(&["status", "acme", "--json", "--now", at])).expect("JSON");
    assert_eq!(json["attention"][0]["contact"], "C2");
}
