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

/// A workspace whose store is a SQLite file in its folder (whatever
/// `KLAR_TEST_STORE` says): the reference the PostgreSQL runs are held to.
fn sqlite_workspace() -> Workspace {
    let dir = support::files(&[("contacts.csv", CSV)]);
    let db = dir.path().join("klar.db").to_string_lossy().into_owned();
    let ws = Workspace { dir, db };
    ws.ok(&["init"]);
    ws
}

/// A new API key of `acme` for a CRM.
fn crm_key(ws: &Workspace) -> String {
    ws.ok(&[
        "apikey",
        "create",
        "acme",
        "--name",
        "crm",
        "--scope",
        "crm",
        "--now",
        &at(0),
    ])
    .trim()
    .to_owned()
}

/// The tenant `acme` on the default policy with `n` contacts, imported on
/// day 0.
fn acme_with_contacts(ws: &Workspace, n: usize) {
    let policy = format!("{}/../rules/default.rhai", env!("CARGO_MANIFEST_DIR"));
    ws.write("contacts.csv", &contacts(n));
    ws.ok(&[
        "tenant",
        "add",
        "acme",
        "--name",
        "ACME",
        "--policy",
        &policy,
        "--now",
        &at(0),
    ]);
    ws.ok(&["import", "acme", "contacts.csv", "--now", &at(0)]);
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
    let file = sqlite_workspace();
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

/// `n` contacts, as the import reads them.
fn contacts(n: usize) -> String {
    let mut csv =
        String::from("external_id,first_name,last_name,email,phone,owner,source,created_at\n");
    for i in 0..n {
        csv.push_str(&format!(
            "K{i:05},Vor{i},Nach{i},k{i}@example.de,,vertrieb,messe,2024-0{}-01\n",
            1 + i % 9
        ));
    }
    csv
}

/// What a run leaves that must not depend on how many instances ran it:
/// every case, and every outbox action as (contact, kind, attempt), sorted.
type Outcome = (Value, Vec<(String, String, u64)>, i64);

fn outcome(ws: &Workspace, audit_rows: i64) -> Outcome {
    let mut cases = json(ws, &["cases", "acme", "--json", "--now", &at(30)]);
    if let Some(all) = cases.as_array_mut() {
        for case in all {
            if let Some(case) = case.as_object_mut() {
                case.retain(|k, _| ["contact", "purpose", "state", "band"].contains(&k.as_str()));
            }
        }
    }
    let mut actions: Vec<(String, String, u64)> = json(ws, &["outbox", "acme", "--all", "--json"])
        .as_array()
        .map(|all| {
            all.iter()
                .map(|a| {
                    (
                        a["contact"].as_str().unwrap_or_default().to_owned(),
                        a["kind"].as_str().unwrap_or_default().to_owned(),
                        a["payload"]["attempt"].as_u64().unwrap_or(0),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    actions.sort();
    (cases, actions, audit_rows)
}

/// Answers the requests of every 7th contact (yes) and every 11th (no).
fn answer_some(ws: &Workspace, day: i64) {
    let outbox = json(ws, &["outbox", "acme", "--json"]);
    for item in outbox.as_array().into_iter().flatten() {
        let contact = item["contact"].as_str().unwrap_or_default();
        let n: usize = contact[1..].parse().unwrap_or(1);
        let answer = match (n % 7, n % 11) {
            (0, _) => "accept",
            (_, 0) => "refuse",
            _ => continue,
        };
        if let Some(token) = item["payload"]["token"].as_str() {
            ws.ok(&["respond", token, answer, "--now", &at(day)]);
        }
    }
}

#[test]
fn ticks_of_three_processes_at_once_step_every_case_once_even_when_one_is_killed() {
    const CONTACTS: usize = 3_000;
    // One process on a SQLite file: the reference.
    let single = sqlite_workspace();
    acme_with_contacts(&single, CONTACTS);
    for (day, answers) in [(0, true), (8, false), (30, false)] {
        single.ok(&["tick", "--now", &at(day)]);
        if answers {
            answer_some(&single, day + 1);
        }
    }
    let reference_rows: i64 = rusqlite::Connection::open(&single.db)
        .expect("opens")
        .query_row("SELECT COUNT(*) FROM audit_log", [], |r| r.get(0))
        .expect("counts");

    // Three at once on PostgreSQL, one of them killed on day 8.
    let url = support::postgres_database();
    let shared = workspace(url.clone());
    acme_with_contacts(&shared, CONTACTS);
    let ticks = |day: i64| -> Vec<std::process::Child> {
        (0..3)
            .map(|_| {
                klar()
                    .current_dir(shared.path())
                    .env("KLAR_DB", &url)
                    .args(["tick", "--now", &at(day)])
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .expect("klar tick starts")
            })
            .collect()
    };
    let wait = |children: Vec<std::process::Child>| {
        for child in children {
            let out = child.wait_with_output().expect("waits");
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    };
    wait(ticks(0));
    answer_some(&shared, 1);
    let mut day8 = ticks(8);
    // Killed in the middle of its sweep, or while the others wait for it.
    std::thread::sleep(std::time::Duration::from_millis(1_500));
    let mut killed = day8.remove(0);
    killed.kill().expect("SIGKILL");
    let _ = killed.wait();
    wait(day8);
    // Cron's next run finishes what the killed one left.
    wait(ticks(8));
    wait(ticks(30));

    let verify = shared.ok(&["audit", "verify"]);
    assert!(verify.contains("audit chain intact"), "{verify}");
    let mut client = postgres::Client::connect(&url, postgres::NoTls).expect("connects");
    let rows: i64 = client
        .query_one("SELECT COUNT(*) FROM audit_log", &[])
        .expect("counts")
        .get(0);
    let on_postgres = outcome(&shared, rows);
    let on_sqlite = outcome(&single, reference_rows);
    // No action twice.
    let mut unique = on_postgres.1.clone();
    unique.dedup();
    assert_eq!(
        unique.len(),
        on_postgres.1.len(),
        "an action was queued twice"
    );
    assert_eq!(on_postgres.1.len(), on_sqlite.1.len());
    assert_eq!(on_postgres.1, on_sqlite.1);
    assert_eq!(on_postgres.0, on_sqlite.0);
    assert_eq!(on_postgres.2, on_sqlite.2, "audit rows");
    assert!(on_postgres.1.len() > CONTACTS, "reminders went out too");
}

#[test]
fn store_copy_moves_the_demo_to_postgresql_and_back_and_both_go_on_alike() {
    const END: &str = "2026-11-30T08:00:00Z";
    const LATER: &str = "2026-12-20T08:00:00Z";
    let ws = Workspace {
        dir: support::files(&[]),
        db: String::new(),
    };
    let file = |name: &str| ws.path().join(name).to_string_lossy().into_owned();
    let (demo, back) = (file("demo.db"), file("back.db"));
    let run = |db: &str, args: &[&str]| -> String {
        let out = klar()
            .current_dir(ws.path())
            .env("KLAR_DB", db)
            .args(args)
            .output()
            .expect("klar runs");
        assert!(out.status.success(), "{args:?} on {db}: {}", stderr(&out));
        stdout(&out)
    };
    run(
        &demo,
        &[
            "demo",
            "--contacts",
            "120",
            "--days",
            "60",
            "--seed",
            "7",
            "--now",
            END,
        ],
    );
    let url = support::postgres_database();

    let there = run(&demo, &["store", "copy", "--from", &demo, "--to", &url]);
    assert!(there.contains("demo: audit chain intact in "), "{there}");
    let contacts_line = there
        .lines()
        .find(|l| l.starts_with("contacts "))
        .unwrap_or_default();
    assert!(contacts_line.ends_with(" 120"), "{there}");
    let back_again = run(&url, &["store", "copy", "--from", &url, "--to", &back]);
    assert!(back_again.contains("audit chain intact"), "{back_again}");
    for db in [&url, &back] {
        assert_eq!(run(db, &["audit", "verify"]), "demo: audit chain intact\n");
    }
    let cases = |db: &str| run(db, &["cases", "demo", "--json", "--now", END]);
    assert_eq!(cases(&url), cases(&demo));
    assert_eq!(cases(&back), cases(&demo));

    // A copy is refused where there is something already.
    let refused = klar()
        .args(["store", "copy", "--from", &demo, "--to", &url])
        .output()
        .expect("runs");
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains("the target is not empty: its table tenants has 1 row(s)"),
        "{}",
        stderr(&refused)
    );

    // All three go on alike: their counters (link numbers, evidence ids)
    // follow the copied rows. New contacts are asked, with new links.
    ws.write("new.csv", &CSV.replace("C0000", "N0000"));
    for db in [&demo, &url, &back] {
        run(db, &["import", "demo", "new.csv", "--now", LATER]);
        run(db, &["tick", "--now", LATER]);
        assert_eq!(run(db, &["audit", "verify"]), "demo: audit chain intact\n");
    }
    let later = |db: &str| run(db, &["cases", "demo", "--json", "--now", LATER]);
    assert_eq!(later(&url), later(&demo));
    assert_eq!(later(&back), later(&demo));
    // The same actions with the same link numbers; only the secrets' random
    // part differs.
    let outbox = |db: &str| -> Value {
        let mut all: Value =
            serde_json::from_str(&run(db, &["outbox", "demo", "--all", "--json"])).expect("JSON");
        for item in all.as_array_mut().into_iter().flatten() {
            if let Some(payload) = item["payload"].as_object_mut() {
                payload.remove("token");
            }
        }
        all
    };
    let new_links = outbox(&demo)
        .as_array()
        .map(|all| {
            all.iter()
                .filter(|i| i["contact"] == "N00001" && i["kind"] == "send-request")
                .count()
        })
        .unwrap_or(0);
    assert_eq!(new_links, 1, "the new contact was asked once");
    assert_eq!(outbox(&url), outbox(&demo));
    assert_eq!(outbox(&back), outbox(&demo));
}

/// A `klar serve` on the shared database, its clock fixed at `now`, ticking
/// every second.
struct Instance {
    child: std::process::Child,
    url: String,
}

impl Instance {
    fn start(ws: &Workspace, now: &str) -> Instance {
        Instance::start_with(ws, now, &[])
    }

    /// With more arguments for `klar serve`.
    fn start_with(ws: &Workspace, now: &str, args: &[&str]) -> Instance {
        use std::io::BufRead;
        let mut child = klar()
            .current_dir(ws.path())
            .env("KLAR_DB", &ws.db)
            .args([
                "serve",
                "--addr",
                "127.0.0.1:0",
                "--tick-seconds",
                "1",
                "--now",
                now,
            ])
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("klar serve starts");
        let mut reader = std::io::BufReader::new(child.stdout.take().expect("stdout"));
        let mut line = String::new();
        reader.read_line(&mut line).expect("the listening line");
        let url = line
            .trim()
            .strip_prefix("klar serve: listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_owned();
        std::thread::spawn(move || for _ in reader.lines() {});
        if let Some(stderr) = child.stderr.take() {
            std::thread::spawn(move || {
                for line in std::io::BufReader::new(stderr)
                    .lines()
                    .map_while(Result::ok)
                {
                    println!("klar serve: {line}");
                }
            });
        }
        Instance { child, url }
    }

    fn kill(mut self) {
        // SIGKILL: no goodbye to the database.
        self.child.kill().expect("SIGKILL");
        let _ = self.child.wait();
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into()
}

/// Answers a request through its link on `instance`, as a browser does:
/// the page, then the form with its CSRF pair.
fn answer_by_link(instance: &Instance, token: &str, answer: &str) {
    let agent = agent();
    let url = format!("{}/r/{token}", instance.url);
    let mut page = agent.get(&url).call().expect("the page");
    let page = page.body_mut().read_to_string().expect("the page's text");
    let csrf = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("no CSRF field in {page}"))
        .to_owned();
    let response = agent
        .post(&url)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .header("Cookie", &format!("klar_csrf={csrf}"))
        .send(format!("answer={answer}&csrf={csrf}"))
        .expect("the answer");
    assert_eq!(response.status(), 200, "{answer} by {url}");
}

/// A CRM's event through the API of `instance`.
fn event(instance: &Instance, key: &str, contact: &str, kind: &str) {
    let response = agent()
        .post(&format!("{}/v1/contacts/{contact}/events", instance.url))
        .header("Authorization", &format!("Bearer {key}"))
        .header("Content-Type", "application/json")
        .send(format!("{{\"type\":\"{kind}\"}}"))
        .expect("the event");
    assert_eq!(response.status(), 200, "{kind} for {contact}");
}

/// The cases still due at `now` (what a sweep has left to do).
fn still_due(client: &mut postgres::Client, now: &str) -> i64 {
    let now = chrono::DateTime::parse_from_rfc3339(now)
        .expect("a time")
        .timestamp();
    client
        .query_one(
            "SELECT COUNT(*) FROM cases WHERE due_at <= $1 AND needs_attention IS NULL
               AND state <> 'awaiting-decision'",
            &[&now],
        )
        .expect("counts")
        .get(0)
}

fn wait_until_swept(client: &mut postgres::Client, now: &str) {
    let started = std::time::Instant::now();
    while still_due(client, now) > 0 {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(600),
            "the instances did not finish the sweep of {now}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

/// Whom the scenario answers for, and how: every 200th contact says yes,
/// every 300th no (yes wins where both), and every 400th, having said yes,
/// withdraws through the CRM on day 8.
fn answer_of(contact: &str) -> Option<&'static str> {
    let n: usize = contact[1..].parse().unwrap_or(1);
    match (n % 200, n % 300) {
        (0, _) => Some("accept"),
        (_, 0) => Some("refuse"),
        _ => None,
    }
}

#[test]
fn three_servers_on_one_database_step_every_case_once_and_match_one_on_sqlite() {
    const CONTACTS: usize = 20_000;
    let tokens = |ws: &Workspace| -> Vec<(String, String)> {
        json(ws, &["outbox", "acme", "--json"])
            .as_array()
            .into_iter()
            .flatten()
            .filter(|i| i["kind"] == "send-request")
            .filter_map(|i| {
                Some((
                    i["contact"].as_str()?.to_owned(),
                    i["payload"]["token"].as_str()?.to_owned(),
                ))
            })
            .collect()
    };

    // The reference: one process on a SQLite file, through the CLI, on its
    // own thread meanwhile (the servers mostly wait for PostgreSQL).
    let reference = std::thread::spawn(move || {
        let single = sqlite_workspace();
        acme_with_contacts(&single, CONTACTS);
        // Made on both sides, so that both audit it.
        crm_key(&single);
        single.ok(&["tick", "--now", &at(0)]);
        for (contact, token) in tokens(&single) {
            if let Some(answer) = answer_of(&contact) {
                single.ok(&["respond", &token, answer, "--now", &at(0)]);
            }
        }
        single.ok(&["tick", "--now", &at(8)]);
        for n in (400..CONTACTS).step_by(400) {
            single.ok(&["withdraw", "acme", &format!("K{n:05}"), "--now", &at(8)]);
        }
        single.ok(&["tick", "--now", &at(30)]);
        let rows: i64 = rusqlite::Connection::open(&single.db)
            .expect("opens")
            .query_row("SELECT COUNT(*) FROM audit_log", [], |r| r.get(0))
            .expect("counts");
        outcome(&single, rows)
    });

    // Three servers on one PostgreSQL database.
    let shared = workspace(support::postgres_database());
    acme_with_contacts(&shared, CONTACTS);
    let key = crm_key(&shared);
    let mut client = postgres::Client::connect(&shared.db, postgres::NoTls).expect("connects");
    let requests = |client: &mut postgres::Client| -> i64 {
        client
            .query_one(
                "SELECT COUNT(*) FROM outbox WHERE kind = 'send-request'",
                &[],
            )
            .expect("counts")
            .get(0)
    };
    // Day 0: the first server starts sweeping alone, two more join, and the
    // first is killed in the middle of its sweep.
    let first = Instance::start(&shared, &at(0));
    let started = std::time::Instant::now();
    while requests(&mut client) < 2_000 {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(300),
            "no sweep"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let mut instances = vec![
        Instance::start(&shared, &at(0)),
        Instance::start(&shared, &at(0)),
    ];
    let before_kill = requests(&mut client);
    first.kill();
    assert!(
        before_kill < CONTACTS as i64,
        "the sweep was over before the kill"
    );
    wait_until_swept(&mut client, &at(0));
    // The link answers arrive at any of them.
    for (i, (contact, token)) in tokens(&shared).into_iter().enumerate() {
        if let Some(answer) = answer_of(&contact) {
            answer_by_link(&instances[i % 2], &token, answer);
        }
    }
    // Day 8: three servers again; the CRM's withdrawals arrive at any of them.
    instances.clear();
    let instances: Vec<Instance> = (0..3).map(|_| Instance::start(&shared, &at(8))).collect();
    for (i, n) in (400..CONTACTS).step_by(400).enumerate() {
        event(&instances[i % 3], &key, &format!("K{n:05}"), "withdraw");
    }
    wait_until_swept(&mut client, &at(8));
    drop(instances);
    // Day 30.
    let instances: Vec<Instance> = (0..3).map(|_| Instance::start(&shared, &at(30))).collect();
    wait_until_swept(&mut client, &at(30));
    drop(instances);

    let verify = shared.ok(&["audit", "verify"]);
    assert!(verify.contains("audit chain intact"), "{verify}");
    let rows: i64 = client
        .query_one("SELECT COUNT(*) FROM audit_log", &[])
        .expect("counts")
        .get(0);
    let on_postgres = outcome(&shared, rows);
    let on_sqlite = reference.join().expect("the reference run");
    let mut unique = on_postgres.1.clone();
    unique.dedup();
    assert_eq!(
        unique.len(),
        on_postgres.1.len(),
        "an action was queued twice"
    );
    assert_eq!(on_postgres.1, on_sqlite.1);
    assert_eq!(on_postgres.0, on_sqlite.0);
    assert_eq!(on_postgres.2, on_sqlite.2, "audit rows");
}

#[test]
fn the_postgresql_benchmark_prints_one_and_two_instances_next_to_sqlite() {
    let out = klar()
        .args([
            "bench",
            "postgres",
            "--cases",
            "300",
            "--batch",
            "50",
            "--contacts",
            "200",
            "--api-seconds",
            "1",
            "--connections",
            "4",
            "--json",
        ])
        .output()
        .expect("runs");
    assert!(out.status.success(), "{}", stderr(&out));
    let figures: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    for field in [
        "sqlite_cases_per_s",
        "postgres_one_instance_cases_per_s",
        "postgres_two_instances_cases_per_s",
        "postgres_one_vs_sqlite",
        "postgres_two_vs_one",
    ] {
        assert!(
            figures[field].as_f64().is_some_and(|x| x > 0.0),
            "{field}: {figures:#}"
        );
    }
    assert_eq!(figures["cases"], 300);
    // "may I use?" on one and two servers, next to SQLite.
    let api = &figures["may_i_use"];
    for run in ["sqlite", "postgres_one_instance", "postgres_two_instances"] {
        assert!(
            api[run]["requests_per_s"].as_f64().is_some_and(|x| x > 0.0),
            "{run}: {api:#}"
        );
        assert_eq!(api[run]["errors"], 0, "{run}: {api:#}");
    }
    for ratio in ["postgres_one_vs_sqlite", "postgres_two_vs_one"] {
        assert!(api[ratio].as_f64().is_some_and(|x| x > 0.0), "{ratio}");
    }
}

#[test]
fn a_retried_event_arriving_at_two_servers_at_once_is_applied_once() {
    let shared = workspace(support::postgres_database());
    acme_with_contacts(&shared, 20);
    shared.ok(&["tick", "--now", &at(0)]);
    let key = crm_key(&shared);
    let servers = [
        Instance::start(&shared, &at(1)),
        Instance::start(&shared, &at(1)),
    ];
    for n in 0..20 {
        let contact = format!("K{n:05}");
        let idempotency = format!("withdraw-{contact}");
        // The CRM's retry reaches the second server while the first still
        // works on the request.
        let answers: Vec<(u16, String)> = std::thread::scope(|scope| {
            let posts: Vec<_> = servers
                .iter()
                .map(|server| {
                    let (contact, idempotency, key) = (&contact, &idempotency, &key);
                    scope.spawn(move || {
                        let mut response = agent()
                            .post(&format!("{}/v1/contacts/{contact}/events", server.url))
                            .header("Authorization", &format!("Bearer {key}"))
                            .header("Content-Type", "application/json")
                            .header("Idempotency-Key", idempotency)
                            .send("{\"type\":\"withdraw\"}")
                            .expect("the event");
                        let status = response.status().as_u16();
                        (
                            status,
                            response.body_mut().read_to_string().expect("a body"),
                        )
                    })
                })
                .collect();
            posts
                .into_iter()
                .map(|p| p.join().expect("posts"))
                .collect()
        });
        assert_eq!(answers[0].0, 200, "{answers:?}");
        assert_eq!(answers[0], answers[1], "one answer for one key");
    }
    let mut client = postgres::Client::connect(&shared.db, postgres::NoTls).expect("connects");
    let keys: i64 = client
        .query_one("SELECT COUNT(*) FROM idempotency", &[])
        .expect("counts")
        .get(0);
    assert_eq!(keys, 20);
    let verify = shared.ok(&["audit", "verify"]);
    assert!(verify.contains("audit chain intact"), "{verify}");
}

#[test]
fn three_servers_mail_each_request_once_and_the_others_go_on_when_one_is_killed() {
    const CONTACTS: usize = 300;
    let sink = support::smtp::SmtpSink::start();
    let shared = workspace(support::postgres_database());
    acme_with_contacts(&shared, CONTACTS);
    shared.write(
        "klar.toml",
        &format!(
            "deliver_ms = 100\n[smtp]\nurl = \"{}\"\n[smtp.from]\nacme = \"ACME <datenschutz@acme.example>\"\n",
            sink.url()
        ),
    );
    let mut instances: Vec<Instance> = (0..3)
        .map(|_| Instance::start_with(&shared, &at(0), &["--config", "klar.toml"]))
        .collect();
    // One of them dies while the mails go out; the others send the rest.
    sink.wait_for(CONTACTS / 6);
    instances.remove(0).kill();
    let mut client = postgres::Client::connect(&shared.db, postgres::NoTls).expect("connects");
    let started = std::time::Instant::now();
    loop {
        let unsent: i64 = client
            .query_one(
                "SELECT COUNT(*) FROM outbox WHERE kind = 'send-request' AND acked_at IS NULL",
                &[],
            )
            .expect("counts")
            .get(0);
        let sent: i64 = client
            .query_one(
                "SELECT COUNT(*) FROM outbox WHERE kind = 'send-request'",
                &[],
            )
            .expect("counts")
            .get(0);
        if sent == CONTACTS as i64 && unsent == 0 {
            break;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(120),
            "{unsent} of {sent} requests not mailed"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    // Time for a second server to send any of them again, if it would.
    std::thread::sleep(std::time::Duration::from_secs(2));
    drop(instances);
    let mails = sink.wait_for(CONTACTS);
    let mut by_recipient: std::collections::BTreeMap<String, std::collections::BTreeSet<String>> =
        Default::default();
    for raw in &mails {
        let mail = support::smtp::parse(raw);
        let to = mail
            .to()
            .and_then(|to| to.first())
            .and_then(|a| a.address())
            .expect("a recipient")
            .to_owned();
        let id = mail.message_id().expect("a Message-ID").to_owned();
        by_recipient.entry(to).or_default().insert(id);
    }
    assert_eq!(by_recipient.len(), CONTACTS, "every contact got a request");
    for (to, ids) in &by_recipient {
        assert_eq!(ids.len(), 1, "{to} got different requests: {ids:?}");
    }
    // At least once: the killed server may have sent one mail it could not
    // acknowledge any more, which then went out again with the same
    // Message-ID. Never more than that.
    assert!(
        mails.len() <= CONTACTS + 1,
        "{} mails for {CONTACTS} requests",
        mails.len()
    );
}

#[test]
fn the_demo_runs_on_an_empty_postgresql_database_as_on_sqlite_and_refuses_one_with_tenants() {
    let args = [
        "demo",
        "--contacts",
        "60",
        "--days",
        "30",
        "--seed",
        "3",
        "--now",
        "2026-11-30T08:00:00Z",
    ];
    let status = |ws: &Workspace| {
        json(
            ws,
            &["status", "demo", "--json", "--now", "2026-11-30T08:00:00Z"],
        )
    };
    let on_postgres = Workspace {
        dir: support::files(&[]),
        db: support::postgres_database(),
    };
    let out = on_postgres.ok(&args);
    assert!(out.contains("audit chain intact"), "{out}");
    let dir = support::files(&[]);
    let db = dir.path().join("demo.db").to_string_lossy().into_owned();
    let on_sqlite = Workspace { dir, db };
    on_sqlite.ok(&args);
    assert_eq!(status(&on_postgres), status(&on_sqlite));
    // A second demo would land next to the first: refused, nothing changed.
    let again = on_postgres.run(&args);
    assert!(!again.status.success());
    assert!(
        stderr(&again).contains(
            "already holds tenants (demo); the demo on PostgreSQL needs an empty database"
        ),
        "{}",
        stderr(&again)
    );
    assert_eq!(status(&on_postgres), status(&on_sqlite));
}
