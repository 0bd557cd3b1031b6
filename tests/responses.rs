//! Contacts answering through their personal links, through the real `klar`
//! binary and database file in simulated time: consent after the second
//! reminder, refusal through cleanup and purge to a refused re-import,
//! withdrawal after consent, the re-ask of a stale consent, used/unknown/
//! expired links, the evidence bundle, and evidence retention.

mod support;

use chrono::{DateTime, Duration, Utc};
use serde_json::Value;
use support::*;

const CSV: &str = "external_id,first_name,last_name,email,phone,owner,source,created_at\n\
C00001,Jürgen,Groß,j.gross@example.de,,jk,trade-fair,2026-10-01\n\
C00002,Zoë,Núñez,zoe@example.com,,jk,web,2026-10-01\n";

struct Db {
    ws: Workspace,
}

impl std::ops::Deref for Db {
    type Target = Workspace;
    fn deref(&self) -> &Workspace {
        &self.ws
    }
}

fn at(day: i64) -> String {
    (t0() + Duration::days(day)).to_rfc3339()
}

impl Db {
    /// A tenant on `policy` with the two contacts of [`CSV`], asked on day 0.
    fn new(policy: &str) -> Db {
        let db = Db {
            ws: Workspace::new(&[("contacts.csv", CSV), ("policy.rhai", policy)]),
        };
        db.ok(&[
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
        db.ok(&["import", "acme", "contacts.csv", "--now", &at(0)]);
        db.ok(&["tick", "--now", &at(0)]);
        db
    }

    fn json(&self, args: &[&str]) -> Value {
        serde_json::from_str(&self.ok(args)).expect("JSON output")
    }

    /// The case of C00001 as `klar cases --json` shows it.
    fn case(&self, contact: &str) -> Value {
        let cases = self.json(&["cases", "acme", "--json"]);
        cases
            .as_array()
            .and_then(|all| all.iter().find(|c| c["contact"] == contact).cloned())
            .expect("the contact has a case")
    }

    fn state(&self, contact: &str) -> String {
        self.case(contact)["state"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// The link secret of the contact's request with this attempt number.
    fn token(&self, contact: &str, attempt: u64) -> String {
        let items = self.json(&["outbox", "acme", "--contact", contact, "--all", "--json"]);
        items
            .as_array()
            .and_then(|all| {
                all.iter().find(|i| {
                    i["kind"] == "send-request" && i["payload"]["attempt"].as_u64() == Some(attempt)
                })
            })
            .and_then(|i| i["payload"]["token"].as_str())
            .map(str::to_owned)
            .unwrap_or_else(|| panic!("no request with attempt {attempt} for {contact}"))
    }

    /// The kinds of the contact's pending outbox actions, in order.
    fn outbox_kinds(&self, contact: &str) -> Vec<String> {
        self.json(&["outbox", "acme", "--contact", contact, "--json"])
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|i| i["kind"].as_str().unwrap_or_default().to_owned())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Ticks at the case's next due time and returns that time.
    fn tick_when_due(&self, contact: &str) -> DateTime<Utc> {
        let due = self.case(contact)["next_due_at"]
            .as_str()
            .map(|t| DateTime::parse_from_rfc3339(t).expect("RFC 3339"))
            .expect("the case has a next step")
            .with_timezone(&Utc);
        self.ok(&["tick", "--now", &due.to_rfc3339()]);
        due
    }
}

#[test]
fn consent_after_the_second_reminder_with_its_evidence() {
    let db = Db::new("fn reminder_days(contact) { [7, 14] }\nfn business_days_only() { false }\n");
    assert_eq!(db.state("C00001"), "requested");
    db.tick_when_due("C00001");
    let second = db.tick_when_due("C00001");
    let case = db.case("C00001");
    assert_eq!(case["reminders_sent"], 2, "{case}");
    assert_eq!(second, t0() + Duration::days(14));

    let answer_at = (second + Duration::hours(5)).to_rfc3339();
    let token = db.token("C00001", 3);
    let out = db.ok(&[
        "respond",
        &token,
        "accept",
        "--ip",
        "198.51.100.23",
        "--user-agent",
        "Mozilla/5.0 (X11; Linux x86_64) Firefox/133.0",
        "--now",
        &answer_at,
    ]);
    assert!(
        out.starts_with("acme C00001 contact-data: consented"),
        "{out}"
    );
    assert_eq!(db.state("C00001"), "consented");
    assert_eq!(
        db.state("C00002"),
        "requested",
        "the other contact is untouched"
    );

    let bundle = db.json(&["evidence", "export", "acme", "C00001", "--now", &answer_at]);
    assert_eq!(bundle["format"], "klar-evidence-bundle/1");
    assert_eq!(bundle["contact"]["last_name"], "Groß");
    let requests = bundle["requests"].as_array().expect("requests");
    assert_eq!(requests.len(), 3, "the request and both reminders");
    let responses = bundle["responses"].as_array().expect("responses");
    assert_eq!(responses.len(), 1);
    let evidence = &responses[0]["detail"];
    assert_eq!(evidence["answer"], "accept");
    assert_eq!(evidence["ip"], "198.51.100.23");
    assert_eq!(
        evidence["user_agent"],
        "Mozilla/5.0 (X11; Linux x86_64) Firefox/133.0"
    );
    assert_eq!(evidence["attempt"], 3);
    assert_eq!(evidence["token_id"], requests[2]["detail"]["token_id"]);
    assert_eq!(
        responses[0]["at"],
        (second + Duration::hours(5)).to_rfc3339()
    );
    // The text the contact agreed to is in the bundle, word for word, and its
    // hash is the one the evidence names.
    let text = &bundle["consent_texts"][0];
    assert_eq!(text["language"], "de");
    assert!(
        text["body"]
            .as_str()
            .is_some_and(|b| b.contains("Müller GmbH")),
        "{text}"
    );
    assert_eq!(
        klar::sha256_hex(text["body"].as_str().unwrap_or_default().as_bytes()),
        evidence["text_sha256"].as_str().unwrap_or_default()
    );
    assert_eq!(bundle["chain"]["intact"], true);
}

#[test]
fn the_bundle_s_audit_rows_verify_on_their_own() {
    let db = Db::new("fn reminder_days(contact) { [7] }\n");
    let token = db.token("C00001", 1);
    db.ok(&["respond", &token, "refuse", "--now", &at(1)]);
    let bundle = db.json(&["evidence", "export", "acme", "C00001", "--now", &at(2)]);
    let rows = bundle["audit"].as_array().expect("rows");
    assert!(rows.len() >= 4, "{rows:?}");
    for row in rows {
        let text = |k: &str| row[k].as_str().map(str::to_owned);
        let entry = klar::store::audit::Entry {
            // JSON shows RFC 3339; the hash covers the Unix seconds.
            at: row["at"]
                .as_str()
                .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                .map(|t| t.timestamp())
                .unwrap_or_default(),
            contact: text("contact"),
            purpose: text("purpose"),
            kind: text("kind").unwrap_or_default(),
            detail: text("detail").unwrap_or_default(),
            policy_sha256: text("policy_sha256"),
        };
        let hash = klar::store::audit::row_hash(
            "acme",
            row["seq"].as_i64().unwrap_or_default(),
            &entry,
            &text("prev_hash").unwrap_or_default(),
        );
        assert_eq!(Some(hash), text("hash"), "row {}", row["seq"]);
    }
    let head = bundle["chain"]["head_seq"].as_i64().unwrap_or_default();
    assert!(head >= rows.last().and_then(|r| r["seq"].as_i64()).unwrap_or(0));
    let decisions = bundle["decisions"].as_array().expect("decisions");
    assert!(decisions.is_empty(), "a refusal is not a person's decision");

    let shown = db.ok(&["audit", "show", "acme", "C00001"]);
    assert!(
        shown.contains("the contact refused: requested → cleanup-pending"),
        "{shown}"
    );
}

#[test]
fn refusal_then_cleanup_after_grace_then_purge_then_reimport_is_refused() {
    let db = Db::new(
        "fn on_refusal(contact, case) { #{ action: \"cleanup\", mode: \"delete\", grace_days: 30 } }\n",
    );
    let token = db.token("C00001", 1);
    db.ok(&[
        "respond",
        &token,
        "refuse",
        "--ip",
        "2001:db8::7",
        "--now",
        &at(2),
    ]);
    assert_eq!(db.state("C00001"), "cleanup-pending");

    db.ok(&["tick", "--now", &at(20)]);
    assert_eq!(
        db.state("C00001"),
        "cleanup-pending",
        "still in the grace period"
    );
    db.ok(&["tick", "--now", &at(33)]);
    assert_eq!(db.state("C00001"), "purged");

    let bundle = db.json(&["evidence", "export", "acme", "C00001", "--now", &at(33)]);
    assert_eq!(bundle["contact"]["last_name"], "");
    assert_eq!(bundle["contact"]["email"], Value::Null);
    assert!(bundle["contact"]["erased_at"].is_string());
    let response = &bundle["responses"][0];
    assert_eq!(
        response["detail"]["ip"], "2001:db8::7",
        "evidence outlives the erasure"
    );
    assert!(
        response["retain_until"]
            .as_str()
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .is_some_and(|t| t > t0() + Duration::days(1000))
    );
    let kinds = db.outbox_kinds("C00001");
    assert!(kinds.contains(&"cleanup".to_owned()), "{kinds:?}");

    let again = db.run(&["import", "acme", "contacts.csv", "--now", &at(40)]);
    assert_eq!(again.status.code(), Some(1));
    assert!(
        stdout(&again).contains("contacts.csv:2: the email of C00001 belongs to a contact erased on 2027-01-02; it cannot be imported again"),
        "{}",
        stdout(&again)
    );

    // Years later the evidence goes too, and the audit log says so.
    db.ok(&["tick", "--now", &at(33 + 3 * 365 + 1)]);
    let bundle = db.json(&["evidence", "export", "acme", "C00001", "--now", &at(2000)]);
    assert_eq!(bundle["responses"], Value::Array(vec![]));
    let shown = db.ok(&["audit", "show", "acme", "C00001"]);
    assert!(
        shown.contains("evidence deleted after its retention period (2 record(s))"),
        "{shown}"
    );
    db.ok(&["audit", "verify"]);
}

#[test]
fn a_link_works_once_and_not_for_strangers_or_after_it_expired() {
    let db = Db::new("fn reminder_days(contact) { [7] }\n");
    let first = db.token("C00001", 1);
    db.ok(&["respond", &first, "accept", "--now", &at(1)]);

    let reused = db.run(&["respond", &first, "refuse", "--now", &at(1)]);
    assert_eq!(reused.status.code(), Some(1));
    assert_eq!(stderr(&reused), "klar: this link has already been used\n");
    assert_eq!(
        db.state("C00001"),
        "consented",
        "a reused link changes nothing"
    );

    let unknown = db.run(&["respond", &"ab".repeat(20), "accept", "--now", &at(1)]);
    assert_eq!(unknown.status.code(), Some(1));
    assert_eq!(stderr(&unknown), "klar: this link is not known\n");

    let other = db.token("C00002", 1);
    let late = db.run(&["respond", &other, "accept", "--now", &at(181)]);
    assert_eq!(late.status.code(), Some(1));
    assert_eq!(stderr(&late), "klar: this link has expired\n");
    assert_ne!(db.state("C00002"), "consented");

    let bad_ip = db.run(&["respond", &other, "accept", "--ip", "not-an-ip"]);
    assert_eq!(bad_ip.status.code(), Some(2));
    assert!(
        stderr(&bad_ip).contains("invalid value 'not-an-ip'"),
        "{}",
        stderr(&bad_ip)
    );
}

#[test]
fn a_link_lasts_as_long_as_the_policy_says() {
    let db = Db::new("fn reminder_days(contact) { [30] }\nfn link_valid_days(contact) { 10 }\n");
    let outbox: Value = db.json(&["outbox", "acme", "--json"]);
    let expires = (t0() + Duration::days(10)).to_rfc3339();
    assert!(
        outbox.as_array().is_some_and(|all| all
            .iter()
            .all(|a| a["payload"]["link_expires_at"] == expires)),
        "{outbox:#}"
    );
    let early = db.token("C00002", 1);
    db.ok(&["respond", &early, "accept", "--now", &at(9)]);
    assert_eq!(db.state("C00002"), "consented");
    let late = db.token("C00001", 1);
    let out = db.run(&["respond", &late, "accept", "--now", &at(11)]);
    assert_eq!(stderr(&out), "klar: this link has expired\n");
    assert_eq!(db.state("C00001"), "requested");
}

/// A plugin that dates a request's link in the past (the rogue plugin's
/// `past-link…` contacts ask with a link that expired a day earlier) does not
/// get a dead link sent: klar keeps every link working for an hour at least.
#[test]
fn a_link_a_plugin_dates_in_the_past_still_works_for_an_hour() {
    let csv = "external_id,first_name,last_name,email,phone,owner,source,created_at\n\
               past-link-1,Jürgen,Groß,j.gross@example.de,,jk,web,2026-10-01\n\
               past-link-2,Zoë,Núñez,zoe@example.com,,jk,web,2026-10-01\n";
    let db = Db {
        ws: Workspace::new(&[("contacts.csv", csv)]),
    };
    db.ok(&[
        "tenant",
        "add",
        "acme",
        "--name",
        "Müller GmbH",
        "--now",
        &at(0),
    ]);
    db.ok(&["import", "acme", "contacts.csv", "--now", &at(0)]);
    let rogue = klar::runtime::ROGUE_PLUGIN_PATH;
    assert_eq!(
        db.ok(&["--plugin", rogue, "tick", "--now", &at(0)]),
        "acme: 2 due, 2 changed, 0 failed, 2 action(s) queued\n"
    );

    // The outbox and the evidence both carry the hour, not the plugin's date.
    let hour = (t0() + Duration::hours(1)).to_rfc3339();
    for contact in ["past-link-1", "past-link-2"] {
        let items = db.json(&["outbox", "acme", "--contact", contact, "--json"]);
        assert_eq!(items.as_array().map(Vec::len), Some(1), "{items:#}");
        assert_eq!(items[0]["kind"], "send-request");
        assert_eq!(items[0]["payload"]["link_expires_at"], hour, "{items:#}");
        let bundle = db.json(&["evidence", "export", "acme", contact, "--now", &at(0)]);
        assert_eq!(
            bundle["requests"][0]["detail"]["link_expires_at"], hour,
            "{bundle:#}"
        );
    }

    // A second before the hour ends the link works; at the hour it is over.
    let just_in = (t0() + Duration::seconds(3_599)).to_rfc3339();
    let token = db.token("past-link-1", 1);
    let out = db.ok(&[
        "--plugin", rogue, "respond", &token, "accept", "--now", &just_in,
    ]);
    assert!(
        out.starts_with("acme past-link-1 contact-data: consented"),
        "{out}"
    );
    assert_eq!(db.state("past-link-1"), "consented");

    let token = db.token("past-link-2", 1);
    let late = db.run(&[
        "--plugin", rogue, "respond", &token, "accept", "--now", &hour,
    ]);
    assert_eq!(late.status.code(), Some(1));
    assert_eq!(stderr(&late), "klar: this link has expired\n");
    assert_eq!(db.state("past-link-2"), "requested");
}

/// A user agent is evidence, not payload: klar keeps its first 512
/// characters (characters, not bytes: a cut inside a UTF-8 sequence would
/// not even be text).
#[test]
fn a_long_user_agent_is_cut_to_512_characters_in_the_evidence() {
    let db = Db::new("fn reminder_days(contact) { [7] }\n");
    let agent = format!("Mozilla/5.0 ({}) {}", "Ü".repeat(500), "x".repeat(85));
    assert_eq!(agent.chars().count(), 600);
    let token = db.token("C00001", 1);
    db.ok(&[
        "respond",
        &token,
        "accept",
        "--user-agent",
        &agent,
        "--now",
        &at(1),
    ]);
    let bundle = db.json(&["evidence", "export", "acme", "C00001", "--now", &at(1)]);
    let kept = bundle["responses"][0]["detail"]["user_agent"]
        .as_str()
        .expect("the user agent in the evidence");
    assert_eq!(kept.chars().count(), 512);
    assert_eq!(kept, agent.chars().take(512).collect::<String>());
}

#[test]
fn withdrawal_after_consent_blocks_use_and_closes_the_links() {
    let db = Db::new("fn reminder_days(contact) { [7] }\n");
    let token = db.token("C00001", 1);
    db.ok(&["respond", &token, "accept", "--now", &at(1)]);
    assert_eq!(db.case("C00001")["band"], "usable");

    let out = db.ok(&["withdraw", "acme", "C00001", "--now", &at(40)]);
    assert!(
        out.contains("C00001 contact-data: cleanup-pending"),
        "{out}"
    );
    let case = db.case("C00001");
    assert_eq!(case["band"], "removed");
    let actions = db.outbox_kinds("C00001");
    assert!(actions.contains(&"block-use".to_owned()), "{actions:?}");
    let shown = db.ok(&["audit", "show", "acme", "C00001"]);
    assert!(
        shown.contains("withdraw: consented → cleanup-pending"),
        "{shown}"
    );
}

#[test]
fn a_stale_consent_is_asked_again_with_a_fresh_link() {
    let db = Db::new(
        "fn reminder_days(contact) { [7] }\nfn stale_after_days(contact) { 30 }\nfn consent_valid_days(contact) { 0 }\n",
    );
    let first = db.token("C00001", 1);
    db.ok(&["respond", &first, "accept", "--now", &at(1)]);
    db.ok(&["used", "acme", "C00001", "--now", &at(20)]);
    db.ok(&["tick", "--now", &at(40)]);
    assert_eq!(
        db.state("C00001"),
        "consented",
        "used 20 days ago: not stale yet"
    );

    db.ok(&["tick", "--now", &at(51)]);
    assert_eq!(
        db.state("C00001"),
        "consented",
        "30 days unused: asked again, and usable while the contact is asked"
    );
    let items = db.json(&["outbox", "acme", "--contact", "C00001", "--json"]);
    let fresh: Vec<&Value> = items
        .as_array()
        .map(|a| a.iter().filter(|i| i["kind"] == "send-request").collect())
        .unwrap_or_default();
    // The first request was withdrawn when the contact agreed (its case
    // moved on); only the re-ask waits.
    assert_eq!(fresh.len(), 1, "only the re-ask: {items}");
    let again = fresh[0]["payload"]["token"].as_str().unwrap_or_default();
    assert_ne!(again, first);
    db.ok(&["respond", again, "accept", "--now", &at(52)]);
    assert_eq!(db.state("C00001"), "consented");
    let bundle = db.json(&["evidence", "export", "acme", "C00001", "--now", &at(52)]);
    assert_eq!(bundle["responses"].as_array().map(Vec::len), Some(2));
}
