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
        "hook consent_valid_days(contact) must return how long a consent lasts before it is confirmed again: a number of days or a period such as \"2 years\" (0: no review), but it returned \"two years\"; write a period as \"14 days\", \"18 months\" or \"2 years\" (optionally \"… from year end\")"
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
    assert_eq!(first["contract"], "klar:consent@0.6.0");
    let second = info();
    assert_eq!(second["loaded_from"], "cache");
}

// The benchmarks' figures are timings, so they are not checked against any
// threshold; what is checked is that they are whole and agree with each other:
// every documented field is there, the counts are the ones asked for, each
// figure is a finite positive number, and each ratio is its two figures
// divided (JSON carries an f64 exactly, so the quotient is recomputed exactly).

/// A timing figure: a finite, positive number.
fn figure(json: &serde_json::Value, key: &str) -> f64 {
    let value = json[key]
        .as_f64()
        .unwrap_or_else(|| panic!("{key} is not a number: {json}"));
    assert!(value.is_finite() && value > 0.0, "{key} = {value}: {json}");
    value
}

/// The ratio `key` is `numerator / denominator`.
fn assert_ratio(json: &serde_json::Value, key: &str, numerator: f64, denominator: f64) {
    let printed = figure(json, key);
    let expected = numerator / denominator;
    assert!(
        (printed - expected).abs() <= expected * 1e-12,
        "{key} = {printed}, but {numerator} / {denominator} = {expected}"
    );
}

/// The object's field names, sorted.
fn fields(json: &serde_json::Value) -> Vec<&str> {
    let mut keys: Vec<&str> = json
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {json}"))
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    keys
}

fn bench_json(args: &[&str]) -> serde_json::Value {
    let out = klar().arg("bench").args(args).output().expect("runs");
    assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    serde_json::from_str(&stdout(&out)).expect("json")
}

/// What the counting query `sql` finds in the SQLite database `db`.
fn count(db: &std::path::Path, sql: &str) -> i64 {
    let conn = rusqlite::Connection::open(db).expect("the benchmark's database opens");
    conn.query_row(sql, [], |r| r.get(0))
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

#[test]
fn the_benchmark_prints_its_ratio() {
    let json = bench_json(&["--cases", "200", "--rounds", "1", "--batch", "64", "--json"]);
    assert_eq!(
        fields(&json),
        [
            "batch",
            "cases",
            "native_us_per_step",
            "policy",
            "rounds",
            "wasm_batch_us_per_step",
            "wasm_batch_vs_native",
            "wasm_single_us_per_step",
            "wasm_single_vs_native",
        ]
    );
    assert_eq!(json["policy"], "rules/default.rhai");
    for (key, asked) in [("cases", 200), ("rounds", 1), ("batch", 64)] {
        assert_eq!(json[key], asked, "{key}: {json}");
    }
    let native = figure(&json, "native_us_per_step");
    let single = figure(&json, "wasm_single_us_per_step");
    let batch = figure(&json, "wasm_batch_us_per_step");
    assert_ratio(&json, "wasm_single_vs_native", single, native);
    assert_ratio(&json, "wasm_batch_vs_native", batch, native);
}

/// The table people read: each row's steps per second and ratio agree with
/// its µs per step, within the rounding of the printed digits.
#[test]
fn the_benchmark_table_agrees_with_itself() {
    let out = klar()
        .args(["bench", "--cases", "200", "--rounds", "1", "--batch", "64"])
        .output()
        .expect("runs");
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 5, "{text}");
    assert!(
        lines[0].starts_with(
            "klar bench: rules/default.rhai, 200 cases, median of 1 rounds, plugin klar-standard "
        ),
        "{text}"
    );
    assert_eq!(
        lines[1].split_whitespace().collect::<Vec<_>>(),
        ["mode", "µs/step", "steps/s", "vs", "native"]
    );
    let row = |line: &str, mode: &str| -> (f64, f64, f64) {
        let rest = line
            .strip_prefix(mode)
            .unwrap_or_else(|| panic!("{line:?} is not the row of {mode:?}"));
        let numbers: Vec<f64> = rest
            .split_whitespace()
            .map(|n| n.parse().unwrap_or_else(|_| panic!("{n:?} in {line:?}")))
            .collect();
        assert_eq!(numbers.len(), 3, "{line:?}");
        (numbers[0], numbers[1], numbers[2])
    };
    let native = row(lines[2], "native (same library)");
    let rows = [
        native,
        row(lines[3], "wasm, one case per call"),
        row(lines[4], "wasm, batches of 64"),
    ];
    // µs/step has two decimals: the true value is within half a hundredth.
    let bounds = |us: f64| ((us - 0.005).max(1e-9), us + 0.005);
    let (native_low, native_high) = bounds(native.0);
    for (us, per_s, ratio) in rows {
        assert!(us > 0.0, "{text}");
        let (low, high) = bounds(us);
        assert!(
            1e6 / high - 0.5 <= per_s && per_s <= 1e6 / low + 0.5,
            "{per_s} steps/s does not match {us} µs/step: {text}"
        );
        assert!(
            low / native_high - 0.005 <= ratio && ratio <= high / native_low + 0.005,
            "the ratio {ratio} is not {us} / {}: {text}",
            native.0
        );
    }
    assert_eq!(native.2, 1.0, "native against itself: {text}");
}

#[test]
fn the_store_benchmarks_print_their_baselines() {
    let scratch = tempfile::tempdir().expect("temp dir");
    let dir = scratch.path().to_str().expect("a UTF-8 path");

    let json = bench_json(&[
        "sweep", "--cases", "300", "--batch", "100", "--dir", dir, "--json",
    ]);
    assert_eq!(
        fields(&json),
        [
            "actions_queued",
            "batch",
            "cases",
            "klar_cases_per_s",
            "klar_peak_rss_mib",
            "klar_sweep_s",
            "klar_vs_sqlite_same_rows",
            "klar_vs_sqlite_update",
            "sqlite_same_rows_s",
            "sqlite_update_s",
        ]
    );
    for (key, asked) in [("cases", 300), ("batch", 100)] {
        assert_eq!(json[key], asked, "{key}: {json}");
    }
    assert_eq!(
        json["actions_queued"], 300,
        "every new case was asked: {json}"
    );
    let sqlite = figure(&json, "sqlite_update_s");
    let klar_s = figure(&json, "klar_sweep_s");
    assert_ratio(
        &json,
        "klar_vs_sqlite_same_rows",
        figure(&json, "sqlite_same_rows_s"),
        klar_s,
    );
    assert_ratio(&json, "klar_cases_per_s", 300.0, klar_s);
    assert_ratio(
        &json,
        "klar_vs_sqlite_update",
        300.0 / klar_s,
        300.0 / sqlite,
    );
    assert!(json["klar_peak_rss_mib"].is_null() || figure(&json, "klar_peak_rss_mib") > 0.0);
    // The sweep did what the figures claim: every case asked once.
    let db = scratch.path().join("klar-sweep.db");
    assert_eq!(
        count(&db, "SELECT COUNT(*) FROM cases WHERE state = 'requested'"),
        300
    );
    assert_eq!(
        count(
            &db,
            "SELECT COUNT(*) FROM outbox WHERE kind = 'send-request'"
        ),
        300
    );
    // SQLite alone wrote the sweep's rows a second time into a copy.
    let copy = scratch.path().join("sqlite-same-rows.db");
    for sql in [
        "SELECT COUNT(*) FROM audit_log WHERE kind = 'state-change'",
        "SELECT COUNT(*) FROM outbox WHERE kind = 'send-request'",
        "SELECT COUNT(*) FROM response_tokens",
        "SELECT COUNT(*) FROM evidence",
    ] {
        assert_eq!(count(&copy, sql), 2 * count(&db, sql), "{sql}");
        assert!(count(&db, sql) >= 300, "{sql}");
    }

    let json = bench_json(&["import", "--rows", "300", "--dir", dir, "--json"]);
    assert_eq!(
        fields(&json),
        [
            "csv_mib",
            "klar_check_pass_s",
            "klar_import_s",
            "klar_peak_rss_mib",
            "klar_speed_vs_sqlite",
            "klar_speed_vs_sqlite_klar_schema",
            "klar_write_pass_s",
            "rows",
            "sqlite_import_s",
            "sqlite_klar_schema_s",
        ]
    );
    assert_eq!(json["rows"], 300);
    let sqlite = figure(&json, "sqlite_import_s");
    let klar_s = figure(&json, "klar_import_s");
    // "speed vs": how many times SQLite's time klar's is, as a speed.
    assert_ratio(&json, "klar_speed_vs_sqlite", sqlite, klar_s);
    assert_ratio(
        &json,
        "klar_speed_vs_sqlite_klar_schema",
        figure(&json, "sqlite_klar_schema_s"),
        klar_s,
    );
    assert!(json["klar_peak_rss_mib"].is_null() || figure(&json, "klar_peak_rss_mib") > 0.0);
    let csv = std::fs::read_to_string(scratch.path().join("contacts.csv")).expect("the CSV");
    assert_eq!(csv.lines().count(), 301, "a header and 300 rows");
    assert_ratio(&json, "csv_mib", csv.len() as f64, 1_048_576.0);
    // Both sides imported all the rows.
    assert_eq!(
        count(
            &scratch.path().join("klar-import.db"),
            "SELECT COUNT(*) FROM contacts WHERE tenant = 'bench'"
        ),
        300
    );
    assert_eq!(
        count(
            &scratch.path().join("sqlite-import.db"),
            "SELECT COUNT(*) FROM t"
        ),
        300
    );
    // SQLite alone wrote the same contacts and cases into klar's tables.
    for table in ["contacts", "cases"] {
        let sql = format!("SELECT COUNT(*) FROM {table} WHERE tenant = 'bench'");
        let klar_db = scratch.path().join("klar-import.db");
        let floor_db = scratch.path().join("sqlite-klar-schema.db");
        assert_eq!(count(&floor_db, &sql), 300, "{table}");
        assert_eq!(count(&floor_db, &sql), count(&klar_db, &sql), "{table}");
    }

    // The API load benchmark, briefly: wrk against a real `klar serve`.
    let json = bench_json(&[
        "api",
        "--contacts",
        "200",
        "--seconds",
        "1",
        "--connections",
        "4",
        "--threads",
        "2",
        "--dir",
        dir,
        "--json",
    ]);
    assert_eq!(
        fields(&json),
        [
            "connections",
            "contacts",
            "goal_30k_per_s_p99_under_5ms",
            "health",
            "may_i_use",
            "may_i_use_vs_health",
            "seconds",
            "threads",
        ]
    );
    for (key, asked) in [
        ("contacts", 200),
        ("seconds", 1),
        ("connections", 4),
        ("threads", 2),
    ] {
        assert_eq!(json[key], asked, "{key}: {json}");
    }
    for run in ["health", "may_i_use"] {
        let load = &json[run];
        assert_eq!(
            fields(load),
            ["errors", "p50_ms", "p99_ms", "requests_per_s"]
        );
        assert_eq!(load["errors"], 0, "{run}: {json}");
        figure(load, "requests_per_s");
        assert!(
            figure(load, "p50_ms") <= figure(load, "p99_ms"),
            "{run}: the median above the 99th percentile: {json}"
        );
    }
    let (health, use_) = (&json["health"], &json["may_i_use"]);
    assert_ratio(
        &json,
        "may_i_use_vs_health",
        figure(use_, "requests_per_s"),
        figure(health, "requests_per_s"),
    );
    assert_eq!(
        json["goal_30k_per_s_p99_under_5ms"].as_bool(),
        Some(figure(use_, "requests_per_s") >= 30_000.0 && figure(use_, "p99_ms") < 5.0),
        "{json}"
    );
    assert_eq!(
        count(
            &scratch.path().join("klar-api.db"),
            "SELECT COUNT(*) FROM contacts WHERE tenant = 'bench'"
        ),
        200
    );
}
