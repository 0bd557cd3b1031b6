//! Crash safety of the fast write paths: `klar tick` killed with SIGKILL at
//! random moments of a sweep over 24,000 cases, ten times, then let finish,
//! must leave exactly what one uninterrupted sweep leaves: the same case
//! states, the same outbox actions per case, the same audit rows (no lost
//! and no doubled transition) and an intact chain. An import killed halfway
//! leaves nothing of itself, or (let finish) all of it.

mod support;

use std::path::Path;
use std::process::Child;
use std::time::Instant;

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use support::*;

const NOW: &str = "2026-11-30T08:00:00Z";
const SWEEP_AT: &str = "2026-11-30T09:00:00Z";

fn csv(contacts: usize) -> String {
    let mut csv =
        String::from("external_id,first_name,last_name,email,phone,owner,source,created_at\n");
    for i in 0..contacts {
        csv.push_str(&format!(
            "C{i:06},Jürgen,Groß,kontakt{i}@example.de,,{},web,2026-10-01\n",
            ["jk", "mb", "sr"][i % 3]
        ));
    }
    csv
}

fn spawn(dir: &Path, args: &[&str]) -> Child {
    klar()
        .current_dir(dir)
        .env("KLAR_DB", dir.join("klar.db"))
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("klar starts")
}

/// A tenant with two purposes (so that a contact's two cases go out as one
/// message) and `contacts` imported contacts.
fn tenant(contacts: usize) -> Workspace {
    let ws = Workspace::new(&[("contacts.csv", &csv(contacts))]);
    ws.ok(&["tenant", "add", "acme", "--name", "ACME", "--now", NOW]);
    ws.ok(&[
        "purpose",
        "add",
        "acme",
        "newsletter",
        "--description",
        "Newsletter",
        "--now",
        NOW,
    ]);
    ws.ok(&["import", "acme", "contacts.csv", "--now", NOW]);
    ws
}

/// Another workspace with a copy of the database and the CSV.
fn copy_of(ws: &Workspace) -> Workspace {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("klar.db").to_string_lossy().into_owned();
    let copy = Workspace { dir, db };
    for file in ["klar.db", "klar.db-wal", "contacts.csv"] {
        let from = ws.path().join(file);
        if from.exists() {
            std::fs::copy(&from, copy.path().join(file)).expect("copies");
        }
    }
    copy
}

fn sql(dir: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open(dir.join("klar.db")).expect("opens")
}

fn rows(dir: &Path, query: &str) -> Vec<Vec<String>> {
    let conn = sql(dir);
    let mut stmt = conn.prepare(query).expect("query");
    let n = stmt.column_count();
    stmt.query_map([], |r| {
        (0..n)
            .map(|i| {
                let v: rusqlite::types::Value = r.get(i)?;
                Ok(format!("{v:?}"))
            })
            .collect::<rusqlite::Result<Vec<_>>>()
    })
    .expect("runs")
    .collect::<rusqlite::Result<_>>()
    .expect("reads")
}

fn count(dir: &Path, query: &str) -> i64 {
    sql(dir).query_row(query, [], |r| r.get(0)).expect("counts")
}

/// Cases not stepped yet.
fn waiting(dir: &Path) -> i64 {
    count(
        dir,
        "SELECT COUNT(*) FROM cases WHERE state = 'unclarified'",
    )
}

/// What a sweep leaves, without what is random (link secrets and ids).
fn outcome(dir: &Path) -> Vec<Vec<Vec<String>>> {
    vec![
        rows(
            dir,
            "SELECT contact, purpose, state, band, body, due_at, needs_attention
             FROM cases ORDER BY contact, purpose",
        ),
        // Every audit row, hashes included: the same rows in the same
        // order, chained alike, mean no transition was lost or doubled.
        rows(
            dir,
            "SELECT seq, at, contact, purpose, kind, detail, policy_sha256, prev_hash, hash
             FROM audit_log ORDER BY tenant, seq",
        ),
        rows(
            dir,
            "SELECT id, seq, contact, purpose, kind,
                    json_remove(payload, '$.token', '$.token_id', '$.purposes[0].token_id',
                                '$.purposes[1].token_id'),
                    acked_at
             FROM outbox ORDER BY seq",
        ),
        rows(
            dir,
            "SELECT contact, purpose, kind, COUNT(*) FROM evidence
             GROUP BY contact, purpose, kind ORDER BY contact, purpose, kind",
        ),
        rows(
            dir,
            "SELECT contact, purpose, attempt, COUNT(*) FROM response_tokens
             GROUP BY contact, purpose, attempt ORDER BY contact, purpose, attempt",
        ),
    ]
}

fn verify(ws: &Workspace) {
    let out = ws.ok(&["audit", "verify"]);
    assert!(out.contains("intact"), "{out}");
}

#[test]
fn a_sweep_killed_ten_times_ends_as_one_that_never_was() {
    let contacts = 12_000;
    let cases = 2 * contacts as i64;
    let whole = tenant(contacts);
    let killed = copy_of(&whole);
    assert_eq!(waiting(killed.path()), cases);

    // How long klar takes to start and find nothing due (an hour before the
    // cases are), and how long the whole sweep takes.
    let started = Instant::now();
    whole.ok(&["tick", "--now", "2026-11-30T07:00:00Z"]);
    let startup = started.elapsed();
    let started = Instant::now();
    let out = whole.ok(&["tick", "--now", SWEEP_AT]);
    let per_case = started
        .elapsed()
        .saturating_sub(startup)
        .div_f64(cases as f64);
    assert_eq!(
        out,
        format!("acme: {cases} due, {cases} changed, 0 failed, {cases} action(s) queued\n")
    );

    // Each kill comes at a random moment of what is left of the sweep: near
    // the end of klar's start, within the first half of the time the rest
    // should take, so that it lands in the sweep and not after its end.
    // Commits come a quarter second apart, so most kills land in an open
    // transaction. (With the whole start and 60% of the rest, a run on a
    // busy machine once finished the last 2,000 cases before the 10th
    // kill: the start measured beforehand varies by more than that.)
    let mut rng = StdRng::seed_from_u64(20_261_130);
    let mut kills = 0;
    while kills < 10 {
        let left = waiting(killed.path());
        assert!(
            left > 0,
            "the sweep ended before its 10th kill ({kills} kills)"
        );
        let rest = per_case.mul_f64(left as f64);
        let after = startup.mul_f64(0.9) + rest.mul_f64(rng.random_range(0.0..0.5));
        let mut child = spawn(killed.path(), &["tick", "--now", SWEEP_AT]);
        std::thread::sleep(after);
        let finished = child.try_wait().expect("polls the child");
        child.kill().expect("SIGKILL");
        child.wait().expect("reaps the child");
        assert!(
            finished.is_none(),
            "klar tick finished within {after:?}; the kill came too late"
        );
        kills += 1;
        let now_left = waiting(killed.path());
        assert!(now_left <= left, "cases went back to waiting");
        eprintln!(
            "kill {kills} after {:.0} ms: {} of {cases} cases were stepped",
            after.as_secs_f64() * 1000.0,
            cases - now_left
        );
    }
    assert!(
        waiting(killed.path()) > 0,
        "the kills must leave work for the last tick"
    );
    let out = killed.ok(&["tick", "--now", SWEEP_AT]);
    assert!(out.starts_with("acme: "), "{out}");
    assert_eq!(waiting(killed.path()), 0);
    // A tick at the same moment after the end changes nothing.
    assert_eq!(
        killed.ok(&["tick", "--now", SWEEP_AT]),
        "acme: 0 due, 0 changed, 0 failed, 0 action(s) queued\n"
    );

    let (a, b) = (outcome(whole.path()), outcome(killed.path()));
    let names = ["cases", "audit rows", "outbox", "evidence", "links"];
    for ((name, a), b) in names.iter().zip(&a).zip(&b) {
        assert_eq!(a.len(), b.len(), "{name}: as many rows");
        if let Some((x, y)) = a.iter().zip(b).find(|(x, y)| x != y) {
            panic!("{name} differ:\n uninterrupted: {x:?}\n killed:        {y:?}");
        }
    }
    assert_eq!(
        count(
            killed.path(),
            "SELECT COUNT(*) FROM outbox WHERE kind = 'send-request'"
        ),
        contacts as i64,
        "one message per contact"
    );
    verify(&whole);
    verify(&killed);
    // The counts the cockpit reads, kept at each commit, match the cases.
    for ws in [&whole, &killed] {
        assert_eq!(
            rows(
                ws.path(),
                "SELECT tenant, state, band, n FROM case_counts WHERE n <> 0 ORDER BY 1, 2, 3"
            ),
            rows(
                ws.path(),
                "SELECT tenant, state, band, COUNT(*) FROM cases GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"
            )
        );
    }
}

#[test]
fn an_import_killed_halfway_leaves_nothing_of_itself() {
    let contacts = 60_000;
    let dir = Workspace::new(&[("contacts.csv", &csv(contacts))]);
    dir.ok(&["tenant", "add", "acme", "--name", "ACME", "--now", NOW]);
    let import = ["import", "acme", "contacts.csv", "--now", NOW];

    // How long a whole import takes here, on a copy.
    let copy = copy_of(&dir);
    let started = Instant::now();
    copy.ok(&import);
    let whole = started.elapsed();

    let audit_rows = count(dir.path(), "SELECT COUNT(*) FROM audit_log");
    let mut rng = StdRng::seed_from_u64(7);
    for _ in 0..3 {
        let after = whole.mul_f64(rng.random_range(0.2..0.8));
        let mut child = spawn(dir.path(), &import);
        std::thread::sleep(after);
        let finished = child.try_wait().expect("polls the child");
        child.kill().expect("SIGKILL");
        child.wait().expect("reaps the child");
        assert!(finished.is_none(), "the import finished within {after:?}");
        for table in ["contacts", "cases"] {
            assert_eq!(
                count(dir.path(), &format!("SELECT COUNT(*) FROM {table}")),
                0,
                "{table} after a kill at {after:?}"
            );
        }
        assert_eq!(
            count(dir.path(), "SELECT COUNT(*) FROM audit_log"),
            audit_rows
        );
        verify(&dir);
    }
    dir.ok(&import);
    assert_eq!(
        count(dir.path(), "SELECT COUNT(*) FROM contacts"),
        contacts as i64
    );
    assert_eq!(
        count(dir.path(), "SELECT COUNT(*) FROM cases"),
        contacts as i64
    );
    verify(&dir);
}
