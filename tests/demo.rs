//! `klar demo`, the README's main job: it runs, its cockpit adds up, the audit
//! chain of what it wrote is intact, it replays from its seed, and it never
//! overwrites a database that holds real tenants.

mod support;

use serde_json::Value;
use support::*;

const END: &str = "2026-11-30T08:00:00Z";

fn demo(ws: &Workspace, db: &str) -> String {
    ws.ok(&[
        "--db",
        db,
        "demo",
        "--contacts",
        "150",
        "--days",
        "90",
        "--seed",
        "7",
        "--now",
        END,
    ])
}

fn status(ws: &Workspace, db: &str) -> Value {
    let out = ws.ok(&["--db", db, "status", "demo", "--json", "--now", END]);
    serde_json::from_str(&out).expect("status JSON")
}

fn sum(map: &Value) -> i64 {
    map.as_object()
        .map(|m| m.values().filter_map(Value::as_i64).sum())
        .unwrap_or_default()
}

#[test]
fn the_demo_ends_in_a_cockpit_that_adds_up_and_replays() {
    let ws = Workspace::new(&[]);
    let out = demo(&ws, "demo.db");
    assert!(
        out.starts_with(
            "demo: 150 contacts, 90 simulated days up to 2026-11-30 09:00 CET (seed 7)"
        ),
        "{out}"
    );
    // The words add up: the refusals are counted again where they went.
    let count_before = |line: &str, word: &str| -> i64 {
        line.split(';')
            .flat_map(|part| part.split(','))
            .find_map(|part| part.trim().strip_suffix(word))
            .and_then(|n| n.trim().rsplit(' ').next()?.parse().ok())
            .unwrap_or(-1)
    };
    let told = out.lines().nth(1).unwrap_or_default();
    let went = out
        .lines()
        .find(|l| l.trim_start().starts_with("refused → now "))
        .unwrap_or_else(|| panic!("no line on where the refusals went: {out}"));
    let (refusals, withdrawals) = went
        .trim_start()
        .trim_start_matches("refused → now ")
        .split_once("; withdrawn → now ")
        .unwrap_or_else(|| panic!("{went}"));
    let total = |list: &str| -> i64 {
        list.split(", ")
            .filter_map(|p| p.rsplit(' ').next()?.parse::<i64>().ok())
            .sum()
    };
    assert_eq!(total(refusals), count_before(told, "refused"), "{out}");
    assert_eq!(
        total(withdrawals),
        count_before(told, "withdrew later"),
        "{out}"
    );
    assert!(out.contains("demo: audit chain intact"), "{out}");
    assert!(
        out.contains("usable") && out.contains("awaiting a decision"),
        "{out}"
    );

    let first = status(&ws, "demo.db");
    // Two purposes (contact-data, newsletter): every contact is in exactly one
    // state per purpose.
    assert_eq!(sum(&first["states"]), 300, "{first}");
    assert_eq!(sum(&first["bands"]), 300, "{first}");
    for state in ["consented", "purged", "paused"] {
        assert!(
            first["states"][state].as_i64().unwrap_or(0) > 0,
            "no {state}: {first}"
        );
    }
    assert!(sum(&first["awaiting_decision_by_owner"]) > 0, "{first}");
    let names = ws.ok(&["--db", "demo.db", "cases", "demo", "--json", "--now", END]);
    assert!(names.contains("\"owner\""), "{names}");
    let sql = rusqlite::Connection::open(ws.path().join("demo.db")).expect("opens");
    let umlauts: i64 = sql
        .query_row(
            "SELECT COUNT(*) FROM contacts WHERE first_name || last_name GLOB '*[äöüßéçñłøş]*'",
            [],
            |r| r.get(0),
        )
        .expect("query");
    assert!(umlauts > 0, "the names carry umlauts and accents");

    // The same seed and end time give the same cockpit, in a fresh run over
    // the old demo database.
    demo(&ws, "demo.db");
    assert_eq!(status(&ws, "demo.db"), first);
    ws.ok(&["--db", "demo.db", "audit", "verify"]);
}

#[test]
fn the_demo_never_replaces_a_database_with_real_tenants() {
    let ws = Workspace::new(&[]);
    ws.ok(&["tenant", "add", "acme", "--name", "ACME", "--now", END]);
    let out = ws.run(&["demo", "--contacts", "5", "--days", "3", "--now", END]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("klar.db holds tenants other than the demo; run the demo on its own database (--db demo.db)"),
        "{}",
        stderr(&out)
    );
    ws.ok(&["cases", "acme"]);
}

/// Without `--now` the demo ends at the system clock; the `--now` its
/// "explore it" hint prints must be one a person can type: whole seconds, and
/// the command it is part of must run as printed.
#[test]
fn the_explore_hint_is_a_command_a_person_can_type() {
    let ws = Workspace::new(&[]);
    let out = ws.ok(&["--db", "demo.db", "demo", "--contacts", "20", "--days", "3"]);
    let line = out
        .lines()
        .find(|l| l.contains("cases demo --state awaiting-decision --now "))
        .unwrap_or_else(|| panic!("no hint with --now in:\n{out}"));
    let now = line.rsplit(' ').next().unwrap_or_default();
    assert!(
        !now.contains('.') && now.ends_with('Z') && now.len() == "2026-12-01T21:20:35Z".len(),
        "{line}"
    );
    let args: Vec<&str> = line.split_whitespace().skip(1).collect();
    ws.ok(&args);
}

/// A year of the demo: once a person is erased every purpose of theirs is
/// purged, and no contact ever got two messages within a day.
#[test]
fn a_year_of_the_demo_erases_people_whole_and_sends_one_message_a_day() {
    let ws = Workspace::new(&[]);
    ws.ok(&[
        "--db",
        "year.db",
        "demo",
        "--contacts",
        "300",
        "--days",
        "365",
        "--seed",
        "11",
        "--now",
        END,
    ]);
    let conn = rusqlite::Connection::open(ws.path().join("year.db")).expect("the demo database");
    let left: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM cases c JOIN contacts k ON k.tenant = c.tenant AND k.id = c.contact
             WHERE k.erased_at IS NOT NULL AND c.state != 'purged'",
            [],
            |r| r.get(0),
        )
        .expect("count");
    let erased: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM contacts WHERE erased_at IS NOT NULL",
            [],
            |r| r.get(0),
        )
        .expect("count");
    assert!(erased > 0, "the demo erased nobody in a year");
    assert_eq!(left, 0, "cases of erased people outside purged");
    let mut stmt = conn
        .prepare(
            "SELECT contact, COALESCE(deliver_after, created_at) AS at FROM outbox
             WHERE kind = 'send-request' ORDER BY contact, at",
        )
        .expect("prepare");
    let sent: Vec<(String, i64)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows");
    assert!(sent.len() > 300, "{} messages", sent.len());
    for pair in sent.windows(2) {
        if pair[0].0 == pair[1].0 {
            assert!(
                pair[1].1 - pair[0].1 >= 86_400,
                "{} got two messages within a day: {pair:?}",
                pair[0].0
            );
        }
    }
}
