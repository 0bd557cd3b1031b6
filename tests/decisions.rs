//! People's decisions and the contact's withdrawal through the real `klar`
//! binary and database: manual decision after no answer, restart, legal hold
//! against cleanup, the second pair of eyes, and a tampered audit log.

mod support;

use support::*;

const CSV: &str = "external_id,first_name,last_name,email,phone,owner,source,created_at\n\
C00001,Jürgen,Groß,j.gross@example.de,,jk,trade-fair,2026-10-01\n";

struct Db {
    ws: Workspace,
}

impl std::ops::Deref for Db {
    type Target = Workspace;
    fn deref(&self) -> &Workspace {
        &self.ws
    }
}

impl Db {
    fn new(policy: &str) -> Db {
        let db = Db {
            ws: Workspace::new(&[("contacts.csv", CSV), ("policy.rhai", policy)]),
        };
        db.ok(&[
            "tenant",
            "add",
            "acme",
            "--name",
            "ACME",
            "--policy",
            "policy.rhai",
            "--now",
            "2026-11-30T08:00:00Z",
        ]);
        db.ok(&[
            "import",
            "acme",
            "contacts.csv",
            "--now",
            "2026-11-30T08:00:00Z",
        ]);
        db
    }

    fn tick(&self, day: i64) {
        let now = (t0() + chrono::Duration::days(day)).to_rfc3339();
        self.ok(&["tick", "--now", &now]);
    }

    fn at(&self, day: i64) -> String {
        (t0() + chrono::Duration::days(day)).to_rfc3339()
    }

    fn state(&self) -> String {
        self.sql()
            .query_row(
                "SELECT state FROM cases WHERE contact = 'C00001'",
                (),
                |r| r.get(0),
            )
            .expect("a case")
    }
}

const QUICK: &str = "fn reminder_days(contact) { [7] }\nfn answer_days(contact) { 7 }\n";

#[test]
fn no_answer_then_the_owner_decides_to_restart_later() {
    let db = Db::new(QUICK);
    for day in [0, 7, 14] {
        db.tick(day);
    }
    assert_eq!(db.state(), "awaiting-decision");
    let out = db.ok(&[
        "decide",
        "acme",
        "C00001",
        "--action",
        "restart",
        "--after-days",
        "30",
        "--by",
        "jk",
        "--reason",
        "Messe im Frühjahr",
        "--now",
        &db.at(15),
    ]);
    assert_eq!(out, "C00001 contact-data: paused\n");
    db.tick(44);
    assert_eq!(db.state(), "paused");
    db.tick(45);
    assert_eq!(db.state(), "requested");
}

#[test]
fn legal_hold_blocks_cleanup_until_it_is_lifted() {
    let db = Db::new(QUICK);
    db.tick(0);
    db.ok(&[
        "hold",
        "acme",
        "C00001",
        "on",
        "--by",
        "legal",
        "--reason",
        "Az. 4711",
        "--now",
        &db.at(1),
    ]);
    assert_eq!(
        db.ok(&["withdraw", "acme", "C00001", "--now", &db.at(2)]),
        "C00001 contact-data: cleanup-pending\n"
    );
    db.tick(60);
    assert_eq!(db.state(), "cleanup-pending");
    db.ok(&[
        "hold",
        "acme",
        "C00001",
        "off",
        "--by",
        "legal",
        "--reason",
        "erledigt",
        "--now",
        &db.at(61),
    ]);
    db.tick(61);
    assert_eq!(db.state(), "purged");
}

#[test]
fn the_approver_must_differ_from_the_person_who_asked() {
    let db = Db::new(
        "fn requires_approval(contact, case) { true }\nfn cleanup_grace_days(contact) { 3 }\n",
    );
    db.tick(0);
    db.ok(&[
        "decide",
        "acme",
        "C00001",
        "--action",
        "cleanup",
        "--by",
        "jk",
        "--reason",
        "Dublette",
        "--now",
        &db.at(1),
    ]);
    let out = db.run(&[
        "approve",
        "acme",
        "C00001",
        "--by",
        "jk",
        "--now",
        &db.at(2),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stdout(&out),
        "C00001 contact-data: jk asked for this cleanup and cannot also approve it; a second person must\n"
    );
    db.tick(10);
    assert_eq!(db.state(), "cleanup-pending", "never unapproved");
    // An approval names an account with the approver role, not any name.
    let out = db.run(&[
        "approve",
        "acme",
        "C00001",
        "--by",
        "dpo",
        "--now",
        &db.at(10),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).contains("dpo is not an approver"),
        "{}",
        stdout(&out)
    );
    db.ok(&[
        "user",
        "add",
        "acme",
        "dpo",
        "--name",
        "Petra Ostermann",
        "--role",
        "approver",
        "--now",
        &db.at(10),
    ]);
    db.ok(&[
        "approve",
        "acme",
        "C00001",
        "--by",
        "dpo",
        "--now",
        &db.at(10),
    ]);
    // Both refusals are in the audit log, and the approval names the CLI.
    let refusals: i64 = db
        .sql()
        .query_row(
            "SELECT COUNT(*) FROM audit_log WHERE kind = 'approval-refused'",
            (),
            |r| r.get(0),
        )
        .expect("count");
    assert_eq!(refusals, 2);
    let via: String = db
        .sql()
        .query_row(
            "SELECT json_extract(detail, '$.actor.via') FROM audit_log
             WHERE json_extract(detail, '$.event.type') = 'approve'",
            (),
            |r| r.get(0),
        )
        .expect("the approval's row");
    assert_eq!(via, "cli");
    db.tick(10);
    assert_eq!(db.state(), "purged");
}

#[test]
fn audit_verify_catches_a_row_edited_in_the_database_file() {
    let db = Db::new(QUICK);
    db.tick(0);
    assert_eq!(db.ok(&["audit", "verify"]), "acme: audit chain intact\n");
    {
        db.sql()
            .execute("UPDATE audit_log SET detail = replace(detail, 'requested', 'consented') WHERE kind = 'state-change'", ())
            .expect("tamper");
    }
    let out = db.run(&["audit", "verify", "acme"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stdout(&out),
        "acme: row 4 was changed after it was written\n"
    );
}

#[test]
fn another_basis_after_a_refusal_needs_a_second_person_and_says_what_it_ends() {
    // A refusal only blocks use here: no cleanup follows it.
    let db = Db::new(&format!(
        "{QUICK}fn on_refusal(contact, case) {{ #{{ action: \"block\" }} }}\n"
    ));
    db.tick(0);
    let outbox: serde_json::Value =
        serde_json::from_str(&db.ok(&["outbox", "acme", "--json"])).expect("JSON");
    let token = outbox[0]["payload"]["token"]
        .as_str()
        .expect("a token")
        .to_owned();
    db.ok(&["respond", &token, "refuse", "--now", &db.at(1)]);
    assert_eq!(db.state(), "refused");

    // Asked for by one person: nothing changes yet, a task goes to the approvers.
    let reason = "Rahmenvertrag vom 01.10.2026, Art. 6 Abs. 1 lit. b DSGVO";
    let out = db.ok(&[
        "decide",
        "acme",
        "C00001",
        "--action",
        "other-basis",
        "--by",
        "jk",
        "--reason",
        reason,
        "--now",
        &db.at(2),
    ]);
    assert!(out.contains("refused"), "{out}");
    assert_eq!(
        db.state(),
        "refused",
        "a refusal is not silently overridden"
    );
    let tasks = db.ok(&["outbox", "acme", "--json"]);
    assert!(tasks.contains("approve-basis"), "{tasks}");

    // The one who asked cannot approve; an approver can.
    let out = db.run(&[
        "approve",
        "acme",
        "C00001",
        "--by",
        "jk",
        "--now",
        &db.at(2),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).contains("jk asked for this basis and cannot also approve it"),
        "{}",
        stdout(&out)
    );
    db.ok(&[
        "user",
        "add",
        "acme",
        "dpo",
        "--name",
        "Petra Ostermann",
        "--role",
        "approver",
        "--now",
        &db.at(2),
    ]);
    db.ok(&[
        "approve",
        "acme",
        "C00001",
        "--by",
        "dpo",
        "--now",
        &db.at(3),
    ]);
    assert_eq!(db.state(), "other-basis");

    // The explanation and the evidence say who asked, who approved, why, and
    // what it ended.
    let explained = db.ok(&["explain", "acme", "C00001"]);
    assert!(explained.contains(reason), "{explained}");
    assert!(explained.contains("the case was refused"), "{explained}");
    let bundle = db.ok(&["evidence", "export", "acme", "C00001", "--now", &db.at(3)]);
    assert!(bundle.contains(reason), "{bundle}");
    assert!(bundle.contains("dpo"), "{bundle}");
    assert_eq!(db.ok(&["audit", "verify", "acme"]).lines().count(), 1);
}

#[test]
fn another_basis_during_a_pending_cleanup_keeps_the_cleanup_until_approved() {
    let db = Db::new("fn cleanup_grace_days(contact) { 3 }\n");
    db.tick(0);
    db.ok(&[
        "decide",
        "acme",
        "C00001",
        "--action",
        "cleanup",
        "--by",
        "jk",
        "--reason",
        "Dublette",
        "--now",
        &db.at(1),
    ]);
    db.ok(&[
        "decide",
        "acme",
        "C00001",
        "--action",
        "other-basis",
        "--by",
        "jk",
        "--reason",
        "doch Kunde",
        "--now",
        &db.at(2),
    ]);
    assert_eq!(
        db.state(),
        "cleanup-pending",
        "the cleanup is not cancelled silently"
    );
    // Nobody approved: the cleanup runs at its date.
    db.tick(5);
    assert_eq!(db.state(), "purged");
}
