//! The process across a contact's purposes, through the real `klar` binary,
//! server and database: erasing the person ends every purpose, requests due
//! together become one message (one link, an answer per purpose), a contact
//! gets at most one message a day, the owner gets one task per contact, and
//! actions whose case moved on are withdrawn before delivery.

mod support;

use serde_json::{Value, json};
use support::server::{NOW, Server};
use support::*;

const CSV: &str = "external_id,first_name,last_name,email,phone,owner,source,created_at\n\
C1,Jürgen,Groß,j.gross@example.de,,jk,trade-fair,2026-10-01\n";

/// `NOW` plus some hours, as `--now` takes it.
fn at(hours: i64) -> String {
    (chrono::DateTime::parse_from_rfc3339(NOW).expect("NOW") + chrono::Duration::hours(hours))
        .to_rfc3339()
}

/// `acme` with a newsletter besides `contact-data`, and C1 imported.
fn two_purposes(ws: &Workspace) {
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
    ws.write("contacts.csv", CSV);
    ws.ok(&["import", "acme", "contacts.csv", "--now", NOW]);
}

fn outbox(ws: &Workspace, all: bool) -> Vec<Value> {
    let mut args = vec!["outbox", "acme", "--json"];
    if all {
        args.push("--all");
    }
    let out = ws.ok(&args);
    serde_json::from_str::<Value>(&out)
        .expect("outbox JSON")
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn of_kind<'a>(items: &'a [Value], kind: &str) -> Vec<&'a Value> {
    items.iter().filter(|i| i["kind"] == kind).collect()
}

fn states(ws: &Workspace) -> Vec<(String, String)> {
    let out = ws.ok(&["cases", "acme", "--json", "--now", NOW]);
    let cases: Value = serde_json::from_str(&out).expect("cases JSON");
    cases
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|c| {
            (
                c["purpose"].as_str().unwrap_or_default().to_owned(),
                c["state"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

fn may_use(server: &Server, purpose: &str) -> Value {
    let path = format!("/v1/contacts/C1/use?purpose={purpose}");
    let (status, body) = server.call("GET", &path, Some(&server.keys.0), None);
    assert_eq!(status, 200, "{body}");
    body
}

#[test]
fn erasing_the_person_ends_every_purpose_and_nothing_is_sent_after_it() {
    let server = Server::start();
    let ws = &server.ws;
    two_purposes(ws);
    ws.ok(&["tick", "--now", NOW]);
    let requests = outbox(ws, false);
    let token = of_kind(&requests, "send-request")[0]["payload"]["token"]
        .as_str()
        .expect("a link")
        .to_owned();
    ws.ok(&["respond", &token, "accept", "--now", &at(1)]);
    assert_eq!(may_use(&server, "newsletter")["may_use"], true);

    // The person asks to be forgotten: the contact-data case is cleaned up
    // after its grace period (30 days in the standard policy).
    ws.ok(&[
        "decide",
        "acme",
        "C1",
        "--action",
        "cleanup",
        "--by",
        "jk",
        "--reason",
        "asked to be forgotten",
        "--now",
        &at(2),
    ]);
    ws.ok(&["tick", "--now", &at(31 * 24)]);
    assert_eq!(
        states(ws),
        vec![
            ("contact-data".to_owned(), "purged".to_owned()),
            ("newsletter".to_owned(), "purged".to_owned()),
        ]
    );
    for purpose in ["contact-data", "newsletter"] {
        let answer = may_use(&server, purpose);
        assert_eq!(answer["may_use"], false, "{answer}");
        assert_eq!(answer["state"], "purged", "{answer}");
        assert_eq!(answer["basis"], Value::Null, "{answer}");
    }

    // A year and more of ticks: no request to the erased person, ever.
    let before = of_kind(&outbox(ws, true), "send-request").len();
    for day in [60, 200, 400, 800] {
        ws.ok(&["tick", "--now", &at(day * 24)]);
    }
    assert_eq!(of_kind(&outbox(ws, true), "send-request").len(), before);
    let audit = ws.ok(&["audit", "show", "acme", "C1", "--json"]);
    let rows: Value = serde_json::from_str(&audit).expect("audit JSON");
    let rows = rows.as_array().cloned().unwrap_or_default();
    let erased = rows
        .iter()
        .position(|r| r["kind"] == "contact-erased")
        .expect("the erasure is audited");
    let asks = |r: &Value| {
        let detail: Value =
            serde_json::from_str(r["detail"].as_str().unwrap_or_default()).unwrap_or_default();
        detail["actions"]
            .as_array()
            .is_some_and(|a| a.iter().any(|a| a["type"] == "send-request"))
    };
    assert!(
        !rows[erased..].iter().any(asks),
        "a request after the erasure: {audit}"
    );
    // Events for an erased person are refused, by the API and the CLI.
    let (status, body) = server.call(
        "POST",
        "/v1/contacts/C1/events",
        Some(&server.keys.0),
        Some(&json!({"type": "used", "purpose": "newsletter"})),
    );
    assert_eq!(status, 409, "{body}");
    let out = ws.run(&["used", "acme", "C1", "--now", &at(801 * 24)]);
    assert!(!out.status.success());
}

#[test]
fn purposes_due_together_are_asked_in_one_message_and_answered_one_by_one() {
    let server = Server::start();
    let ws = &server.ws;
    two_purposes(ws);
    ws.ok(&["tick", "--now", NOW]);
    let items = outbox(ws, false);
    let requests = of_kind(&items, "send-request");
    assert_eq!(
        requests.len(),
        1,
        "one message, not one per purpose: {items:?}"
    );
    let payload = &requests[0]["payload"];
    let asked: Vec<&str> = payload["purposes"]
        .as_array()
        .expect("the purposes it asks about")
        .iter()
        .filter_map(|p| p["purpose"].as_str())
        .collect();
    assert_eq!(asked, ["contact-data", "newsletter"]);
    let token = payload["token"].as_str().expect("one link");

    // The page shows both purposes, each with its text and its own choice.
    let agent = Server::agent();
    let url = format!("{}/r/{token}?lang=de", server.url);
    let page = agent.get(&url).call().expect("the page");
    let cookie = page
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .expect("a CSRF cookie")
        .to_owned();
    let html = page.into_body().read_to_string().expect("HTML");
    assert!(html.contains("Newsletter"), "{html}");
    assert!(
        html.contains("Pflege des geschäftlichen Kontakts"),
        "{html}"
    );
    assert!(html.contains(r#"name="answer.newsletter""#), "{html}");
    assert!(html.contains(r#"name="answer.contact-data""#), "{html}");
    assert!(html.contains("Allen Zwecken zustimmen"), "{html}");
    let csrf = html
        .split(r#"name="csrf" value=""#)
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the CSRF field");

    // Yes to contact-data, no to the newsletter.
    let form =
        format!("csrf={csrf}&answer.contact-data=accept&answer.newsletter=refuse&answer=each");
    let answered = agent
        .post(&url)
        .header("Cookie", &cookie)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .send(form)
        .expect("the answer");
    assert_eq!(answered.status().as_u16(), 200);
    let thanks = answered.into_body().read_to_string().expect("HTML");
    assert!(
        thanks.contains("Ihre Antworten sind gespeichert"),
        "{thanks}"
    );
    assert_eq!(may_use(&server, "contact-data")["may_use"], true);
    assert_eq!(may_use(&server, "newsletter")["may_use"], false);

    // Each answer is evidence for its own case and text version.
    let bundle = ws.ok(&["evidence", "export", "acme", "C1"]);
    let bundle: Value = serde_json::from_str(&bundle).expect("bundle JSON");
    let responses = bundle["responses"].as_array().cloned().unwrap_or_default();
    let answer_of = |purpose: &str| {
        responses
            .iter()
            .find(|r| r["purpose"] == purpose)
            .map(|r| r["detail"]["answer"].clone())
    };
    assert_eq!(answer_of("contact-data"), Some(json!("accept")));
    assert_eq!(answer_of("newsletter"), Some(json!("refuse")));
    for r in &responses {
        assert_eq!(r["detail"]["text_version"], 1, "{r}");
    }
    // The link is used up: both purposes are answered.
    let again = agent.get(&url).call().expect("the page");
    assert_eq!(again.status().as_u16(), 404);
}

#[test]
fn a_contact_gets_at_most_one_message_a_day_across_purposes() {
    let ws = Workspace::new(&[("contacts.csv", CSV)]);
    ws.ok(&["tenant", "add", "acme", "--name", "ACME GmbH", "--now", NOW]);
    ws.ok(&["import", "acme", "contacts.csv", "--now", NOW]);
    ws.ok(&["tick", "--now", NOW]);
    // A second purpose appears an hour later, and its case is due at once.
    ws.ok(&[
        "purpose",
        "add",
        "acme",
        "newsletter",
        "--description",
        "Newsletter",
        "--now",
        &at(1),
    ]);
    ws.ok(&["import", "acme", "contacts.csv", "--now", &at(1)]);
    let out = ws.ok(&["tick", "--now", &at(2)]);
    assert!(
        out.contains("1 deferred") || out.contains("deferred 1"),
        "{out}"
    );
    assert_eq!(of_kind(&outbox(&ws, true), "send-request").len(), 1);
    // Not before a day has passed since the first message …
    ws.ok(&["tick", "--now", &at(23)]);
    assert_eq!(of_kind(&outbox(&ws, true), "send-request").len(), 1);
    // … and then it goes out.
    ws.ok(&["tick", "--now", &at(24)]);
    let items = outbox(&ws, true);
    let requests = of_kind(&items, "send-request");
    assert_eq!(requests.len(), 2, "{items:?}");
    assert_eq!(requests[1]["purpose"], "newsletter");
    let audit = ws.ok(&["audit", "show", "acme", "C1"]);
    assert!(audit.contains("deferred"), "{audit}");
}

#[test]
fn the_owner_gets_one_task_per_contact_naming_its_purposes() {
    let policy = "fn reminder_days(contact) { [] }\nfn answer_days(contact) { 7 }\n";
    let ws = Workspace::new(&[("contacts.csv", CSV), ("policy.rhai", policy)]);
    ws.ok(&[
        "tenant",
        "add",
        "acme",
        "--name",
        "ACME GmbH",
        "--policy",
        "policy.rhai",
        "--now",
        NOW,
    ]);
    two_purposes(&ws);
    ws.ok(&["tick", "--now", NOW]);
    ws.ok(&["tick", "--now", &at(8 * 24)]);
    let items = outbox(&ws, true);
    let tasks = of_kind(&items, "create-task");
    assert_eq!(tasks.len(), 1, "{items:?}");
    assert_eq!(tasks[0]["payload"]["assignee"], "jk");
    assert_eq!(
        tasks[0]["payload"]["purposes"],
        json!(["contact-data", "newsletter"])
    );
}

#[test]
fn requests_whose_case_moved_on_are_withdrawn_before_delivery() {
    let server = Server::start();
    let ws = &server.ws;
    ws.write("contacts.csv", CSV);
    ws.ok(&["import", "acme", "contacts.csv", "--now", NOW]);
    ws.ok(&["tick", "--now", NOW]);
    // The CRM polls the request, so it may already be on its way there.
    let (status, page) = server.call("GET", "/v1/outbox", Some(&server.keys.0), None);
    assert_eq!(status, 200);
    let request = page["actions"][0].clone();
    assert_eq!(request["kind"], "send-request", "{page}");
    let token = request["payload"]["token"]
        .as_str()
        .expect("a link")
        .to_owned();

    // The contact answers through the link before the CRM sent anything.
    ws.ok(&["respond", &token, "accept", "--now", &at(1)]);
    let (_, page) = server.call("GET", "/v1/outbox", Some(&server.keys.0), None);
    let actions = page["actions"].as_array().cloned().unwrap_or_default();
    assert!(
        actions.iter().all(|a| a["kind"] != "send-request"),
        "a stale request is still offered: {page}"
    );
    let cancel = actions
        .iter()
        .find(|a| a["kind"] == "cancel")
        .unwrap_or_else(|| panic!("the CRM is told to cancel: {page}"));
    assert_eq!(cancel["payload"]["cancels"], request["id"]);
    assert_eq!(cancel["payload"]["reason"], "the case is now consented");
    let audit = ws.ok(&["audit", "show", "acme", "C1", "--json"]);
    assert!(audit.contains("action-cancelled"), "{audit}");

    // Review a year later, then a legal hold before anyone saw the request:
    // withdrawn without a notice, and a redelivery sends nothing.
    ws.ok(&["tick", "--now", &at(800 * 24)]);
    let pending = of_kind(&outbox(ws, false), "send-request").len();
    assert_eq!(pending, 1);
    ws.ok(&[
        "hold",
        "acme",
        "C1",
        "on",
        "--by",
        "legal",
        "--reason",
        "dispute",
        "--now",
        &at(800 * 24 + 1),
    ]);
    assert!(of_kind(&outbox(ws, false), "send-request").is_empty());
    let all = outbox(ws, true);
    let withdrawn = of_kind(&all, "send-request");
    let last = withdrawn.last().expect("the withdrawn request");
    assert_eq!(last["cancel_reason"], "the case is on legal hold", "{last}");
    ws.ok(&["redeliver", "acme"]);
    assert!(of_kind(&outbox(ws, false), "send-request").is_empty());
}

#[test]
fn a_request_an_event_raises_within_the_day_waits_in_the_outbox() {
    let server = Server::start();
    let ws = &server.ws;
    ws.write("contacts.csv", CSV);
    ws.ok(&["import", "acme", "contacts.csv", "--now", NOW]);
    ws.ok(&["tick", "--now", NOW]);
    let key = Some(server.keys.0.as_str());
    let (_, first) = server.call("GET", "/v1/outbox", key, None);
    let first_id = first["actions"][0]["id"].clone();
    let (_, acked) = server.call(
        "POST",
        "/v1/outbox/ack",
        key,
        Some(&json!({"ids": [first_id]})),
    );
    assert_eq!(acked["acknowledged"], 1);

    // The address changes the same morning: the request is sent again to
    // the new address, but not on the same day as the first one.
    let (status, body) = server.call(
        "POST",
        "/v1/contacts/C1/events",
        key,
        Some(&json!({"type": "data-changed"})),
    );
    assert_eq!(status, 200, "{body}");
    let held = of_kind(&outbox(ws, false), "send-request")
        .first()
        .map(|i| (*i).clone())
        .expect("the request sent again");
    let until = chrono::DateTime::parse_from_rfc3339(NOW).expect("NOW") + chrono::Duration::days(1);
    assert_eq!(held["deliver_after"], until.to_rfc3339(), "{held}");
    let (_, polled) = server.call("GET", "/v1/outbox", key, None);
    assert!(
        polled["actions"]
            .as_array()
            .is_some_and(|a| a.iter().all(|x| x["kind"] != "send-request")),
        "a second message on the same day: {polled}"
    );
}

#[test]
fn a_reminder_for_every_purpose_replaces_the_message_still_waiting() {
    let ws = Workspace::new(&[]);
    ws.ok(&["tenant", "add", "acme", "--name", "ACME GmbH", "--now", NOW]);
    two_purposes(&ws);
    ws.ok(&["tick", "--now", NOW]);
    // Nobody carried the first message out; the reminders are due (14
    // business days in the standard policy).
    ws.ok(&["tick", "--now", &at(25 * 24)]);
    let pending = outbox(&ws, false);
    let requests = of_kind(&pending, "send-request");
    assert_eq!(requests.len(), 1, "{pending:?}");
    assert_eq!(requests[0]["payload"]["attempt"], 2);
    let all = outbox(&ws, true);
    let first = of_kind(&all, "send-request")[0];
    assert_eq!(
        first["cancel_reason"], "a newer request replaces it",
        "{first}"
    );
}
