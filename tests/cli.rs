//! The `klar` binary: `policy check`, `step`, `plugin` and `bench`, as a user
//! runs them. The texts users read are pinned here.

mod support;

use support::*;

#[test]
fn the_default_policy_passes_its_check() {
    let out = klar()
        .args(["policy", "check", "../rules/default.rhai"])
        .output()
        .expect("runs");
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert_eq!(stdout(&out), "../rules/default.rhai: ok (0 warning(s))\n");
}

#[test]
fn a_truncated_policy_fails_with_line_column_and_a_caret() {
    let dir = files(&[("p.rhai", "fn reminder_days(contact) {\n    [14, 28\n}\n")]);
    let out = klar()
        .current_dir(dir.path())
        .args(["policy", "check", "p.rhai"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    // The message once, in the first line; the drawing only shows the place.
    assert_eq!(
        text,
        "p.rhai:3:1: error: Expecting ',' to separate the items of this array literal\n   \
         ╭─[ p.rhai:3:1 ]\n   \
         │\n \
         3 │ }\n   \
         │ ┬  \n   \
         │ ╰── here\n\
         ───╯\n\
         p.rhai: 1 error(s), 0 warning(s)\n"
    );
}

#[test]
fn a_misspelt_hook_is_a_warning_and_passes() {
    let dir = files(&[("p.rhai", "fn reminder_day(contact) { [7] }\n")]);
    let out = klar()
        .current_dir(dir.path())
        .args(["policy", "check", "p.rhai"])
        .output()
        .expect("runs");
    assert!(out.status.success());
    let text = stdout(&out);
    assert!(text.starts_with(
        "p.rhai:1:1: warning: `reminder_day` is not a hook and will never be called by klar; did you mean `reminder_days(contact)`?\n"
    ), "{text}");
    assert!(text.ends_with("p.rhai: ok (1 warning(s))\n"), "{text}");
}

#[test]
fn a_wrong_return_type_names_the_hook_contract() {
    let dir = files(&[(
        "p.rhai",
        "fn consent_valid_days(contact) {\n    \"two years\"\n}\n",
    )]);
    let out = klar()
        .current_dir(dir.path())
        .args(["policy", "check", "p.rhai", "--json"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    let json: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("json");
    assert_eq!(json["ok"], false);
    let d = &json["diagnostics"][0];
    assert_eq!(
        (d["line"].as_u64(), d["column"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(
        d["message"],
        "hook consent_valid_days(contact) must return a whole number of days a consent lasts before it is confirmed again (0: no review), but it returned \"two years\" (string)"
    );
}

#[test]
fn a_misspelt_field_is_named_in_plain_words_with_a_suggestion() {
    let dir = files(&[(
        "p.rhai",
        "fn channel(contact, attempt) {\n    if contact.emial != () { \"email\" } else { \"letter\" }\n}\n",
    )]);
    let out = klar()
        .current_dir(dir.path())
        .args(["policy", "check", "p.rhai"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(
        text.starts_with(
            "p.rhai:2:16: error: in hook `channel`: contact has no field `emial`; did you mean `email`?\n"
        ),
        "{text}"
    );
    assert!(!text.contains("getter"), "{text}");
}

#[test]
fn an_endless_policy_fails_the_check_quickly() {
    let dir = files(&[("p.rhai", "fn answer_days(contact) {\n    loop { }\n}\n")]);
    let started = std::time::Instant::now();
    let out = klar()
        .current_dir(dir.path())
        .args(["policy", "check", "p.rhai"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).starts_with("p.rhai:2:"), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("the policy ran too long and was stopped"),
        "{}",
        stdout(&out)
    );
    // Start-up (the cached plugin) plus the check; generous against a loaded machine.
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}

fn step_files() -> tempfile::TempDir {
    files(&[
        ("policy.rhai", DEFAULT_POLICY),
        (
            "case.json",
            r#"{"purpose": "contact-data", "state": "unclarified"}"#,
        ),
        (
            "contact.json",
            r#"{"id": "C00042", "first_name": "Jürgen", "last_name": "Groß", "email": "j.gross@example.de",
                "owner": "jk", "source": "trade-fair", "created_at": "2026-10-01T08:00:00Z",
                "attributes": {"fair": "IFA 2026"}}"#,
        ),
        ("event.json", r#"{"type": "tick"}"#),
    ])
}

fn run_step(dir: &std::path::Path) -> std::process::Output {
    klar()
        .current_dir(dir)
        .args([
            "step",
            "--policy",
            "policy.rhai",
            "--case",
            "case.json",
            "--contact",
            "contact.json",
        ])
        .args([
            "--event",
            "event.json",
            "--now",
            "2026-11-30T09:00:00+01:00",
        ])
        .output()
        .expect("runs")
}

#[test]
fn step_prints_the_outcome_and_answers_the_same_every_time() {
    let dir = step_files();
    let first = run_step(dir.path());
    assert!(first.status.success(), "{}", stderr(&first));
    let json: serde_json::Value = serde_json::from_str(&stdout(&first)).expect("json");
    assert_eq!(json["case"]["state"], "requested");
    assert_eq!(json["case"]["attempt"], 1);
    assert_eq!(json["case"]["requested_at"], "2026-11-30T08:00:00Z");
    assert_eq!(json["case"]["due_at"], "2026-12-18T08:00:00Z");
    assert_eq!(
        json["actions"],
        serde_json::json!([{"type": "send-request", "channel": "email", "template": "request", "attempt": 1, "link_expires_at": "2027-05-29T08:00:00Z"}])
    );
    assert!(
        json["trace"]
            .as_array()
            .is_some_and(|t| t.iter().any(|e| e["hook"] == "reminder_days"))
    );
    for _ in 0..2 {
        assert_eq!(run_step(dir.path()).stdout, first.stdout);
    }
}

#[test]
fn step_with_a_bad_input_file_says_which_and_why() {
    let dir = step_files();
    std::fs::write(dir.path().join("event.json"), r#"{"type": "explode"}"#).expect("write");
    let out = run_step(dir.path());
    assert_eq!(out.status.code(), Some(2));
    let text = stderr(&out);
    assert!(
        text.starts_with(
            "klar: failed to read the event from event.json: unknown variant `explode`"
        ),
        "{text}"
    );
}

#[test]
fn step_reports_a_rejected_event() {
    let dir = step_files();
    std::fs::write(
        dir.path().join("case.json"),
        r#"{"purpose": "contact-data", "state": "purged"}"#,
    )
    .expect("write");
    std::fs::write(
        dir.path().join("event.json"),
        r#"{"type": "response", "answer": "accept"}"#,
    )
    .expect("write");
    let out = run_step(dir.path());
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        "klar: rejected: the case is purged; nothing can change it any more\n"
    );
}

#[test]
fn a_second_start_uses_the_compiled_plugin_cache() {
    let cache = tempfile::tempdir().expect("temp dir");
    let info = || {
        let out = klar()
            .env("KLAR_CACHE_DIR", cache.path())
            .args(["plugin", "--json"])
            .output()
            .expect("runs");
        assert!(out.status.success(), "{}", stderr(&out));
        serde_json::from_str::<serde_json::Value>(&stdout(&out)).expect("json")
    };
    let first = info();
    assert_eq!(first["loaded_from"], "compiled");
    assert_eq!(first["name"], "klar-standard");
    assert_eq!(first["contract"], "klar:consent@0.3.0");
    let second = info();
    assert_eq!(second["loaded_from"], "cache");
}

#[test]
fn the_benchmark_prints_its_ratio() {
    let out = klar()
        .args(["bench", "--cases", "200", "--rounds", "1", "--json"])
        .output()
        .expect("runs");
    assert!(out.status.success(), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("json");
    for key in [
        "native_us_per_step",
        "wasm_single_vs_native",
        "wasm_batch_vs_native",
    ] {
        assert!(json[key].as_f64().is_some_and(|v| v > 0.0), "{key}: {json}");
    }
}

#[test]
fn the_store_benchmarks_print_their_baselines() {
    let out = klar()
        .args([
            "bench", "sweep", "--cases", "300", "--batch", "100", "--json",
        ])
        .output()
        .expect("runs");
    assert!(out.status.success(), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("json");
    assert_eq!(json["cases"], 300);
    assert_eq!(
        json["actions_queued"], 300,
        "every new case was asked: {json}"
    );
    for key in [
        "sqlite_update_s",
        "klar_cases_per_s",
        "klar_vs_sqlite_update",
    ] {
        assert!(json[key].as_f64().is_some_and(|v| v > 0.0), "{key}: {json}");
    }

    let out = klar()
        .args(["bench", "import", "--rows", "300", "--json"])
        .output()
        .expect("runs");
    assert!(out.status.success(), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("json");
    for key in ["sqlite_import_s", "klar_import_s", "klar_speed_vs_sqlite"] {
        assert!(json[key].as_f64().is_some_and(|v| v > 0.0), "{key}: {json}");
    }

    // The API load benchmark, briefly: wrk against a real `klar serve`.
    let out = klar()
        .args(["bench", "api", "--contacts", "200", "--seconds", "1"])
        .args(["--connections", "4", "--json"])
        .output()
        .expect("runs");
    assert!(out.status.success(), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("json");
    for run in ["health", "may_i_use"] {
        assert!(
            json[run]["requests_per_s"]
                .as_f64()
                .is_some_and(|v| v > 0.0),
            "{run}: {json}"
        );
        assert_eq!(json[run]["errors"], 0, "{run}: {json}");
    }
    assert!(
        json["may_i_use_vs_health"]
            .as_f64()
            .is_some_and(|v| v > 0.0)
    );
}
