//! Asking only where it is needed: a tenant's policy puts existing customers
//! on the existing-customer exception (§ 7(3) UWG) for the newsletter and
//! contract partners on their contract for `contact-data`, so klar asks only
//! the others. Through the real binary, the API and the contact's page: the
//! basis is evidence (reason, policy version, the data it relied on) in the
//! bundle, `explain` and "may I use?"; an objection blocks use at once, and
//! no policy, review, data change or person undoes it.

mod support;

use serde_json::{Value, json};
use support::server::{NOW, Server};
use support::stdout;

const POLICY: &str = r#"
// After a "no" or an objection the contact is only blocked: the CRM keeps
// them on its blocklist, which is how an objection is honoured.
fn on_refusal(contact, case) { "block" }

fn basis(contact, case) {
    if contact.attr("customer") != "yes" {
        return "consent";
    }
    if case.purpose == "newsletter" {
        #{ basis: "existing-customer",
           reason: "Bestandskunde: Adresse beim Kauf erhalten; nur ähnliche eigene Produkte (§ 7 Abs. 3 UWG)",
           review: "1 year" }
    } else {
        #{ basis: "contract", reason: "Vertragspartner: Kontaktdaten für die Vertragsabwicklung", review: "2 years" }
    }
}
"#;

/// A policy that would put everyone on a legitimate interest: what a
/// careless or hostile admin might activate after an objection.
const EVERYONE: &str = r#"
fn basis(contact, case) {
    #{ basis: "legitimate-interest", reason: "alle", review: 30 }
}
"#;

fn contact(s: &Server, id: &str, email: Option<&str>, customer: bool) {
    let mut body = json!({
        "first_name": "Test", "last_name": id, "owner": "jk",
        "attributes": { "customer": if customer { "yes" } else { "no" } },
    });
    if let Some(email) = email {
        body["email"] = json!(email);
    }
    let (status, answer) = s.call(
        "PUT",
        &format!("/v1/contacts/{id}"),
        Some(&s.keys.0),
        Some(&body),
    );
    assert_eq!(status, 200, "{answer}");
}

fn may_use(s: &Server, id: &str, purpose: &str) -> Value {
    let (status, body) = s.call(
        "GET",
        &format!("/v1/contacts/{id}/use?purpose={purpose}"),
        Some(&s.keys.0),
        None,
    );
    assert_eq!(status, 200, "{body}");
    body
}

/// The outbox actions of one kind, as (contact, purposes) pairs.
fn actions(s: &Server, kind: &str) -> Vec<Value> {
    let (_, outbox) = s.call("GET", "/v1/outbox?after=0&all=true", Some(&s.keys.0), None);
    outbox["actions"]
        .as_array()
        .map(|a| a.iter().filter(|a| a["kind"] == kind).cloned().collect())
        .unwrap_or_default()
}

fn state(s: &Server, id: &str, purpose: &str) -> String {
    may_use(s, id, purpose)["state"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// acme with the newsletter and `policy` as its active version 1.
fn with_policy(policy: &str) -> Server {
    let s = Server::start();
    s.ws.ok(&[
        "purpose",
        "add",
        "acme",
        "newsletter",
        "--description",
        "Newsletter",
        "--now",
        NOW,
    ]);
    s.ws.write("v1.rhai", policy);
    s.ws.ok(&[
        "policy", "set", "acme", "v1.rhai", "--author", "dpo", "--now", NOW,
    ]);
    s
}

/// acme with the newsletter, the policy above as v1, existing customers K1
/// and K2, a customer K4 without an e-mail address, and C3, who is not a
/// customer; one tick on NOW.
fn tenant() -> Server {
    let s = with_policy(POLICY);
    contact(&s, "K1", Some("k1@example.de"), true);
    contact(&s, "K2", Some("k2@example.de"), true);
    contact(&s, "C3", Some("c3@example.de"), false);
    contact(&s, "K4", None, true);
    s.ws.ok(&["tick", "--now", NOW]);
    s
}

#[test]
fn existing_customers_are_not_asked_and_their_basis_is_evidence() {
    let s = tenant();

    // Only the others are asked: C3 for both purposes, K4 for the
    // newsletter (the exception covers e-mail only; K4 has no address).
    let mut asked: Vec<(String, String)> = actions(&s, "send-request")
        .iter()
        .flat_map(|a| {
            let contact = a["contact"].as_str().unwrap_or_default().to_owned();
            a["payload"]["purposes"]
                .as_array()
                .into_iter()
                .flatten()
                .map(move |p| {
                    (
                        contact.clone(),
                        p["purpose"].as_str().unwrap_or_default().to_owned(),
                    )
                })
        })
        .collect();
    asked.sort();
    let pairs = |v: &[(&str, &str)]| -> Vec<(String, String)> {
        v.iter()
            .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
            .collect()
    };
    assert_eq!(
        asked,
        pairs(&[
            ("C3", "contact-data"),
            ("C3", "newsletter"),
            ("K4", "newsletter")
        ])
    );

    // "May I use?" says why, with the reason and the policy version.
    let answer = may_use(&s, "K1", "newsletter");
    assert_eq!(answer["may_use"], true, "{answer}");
    assert_eq!(answer["state"], "other-basis");
    let basis = &answer["basis"];
    assert_eq!(basis["kind"], "existing-customer", "{answer}");
    assert!(
        basis["reason"]
            .as_str()
            .is_some_and(|r| r.starts_with("Bestandskunde")),
        "{answer}"
    );
    assert_eq!(basis["policy_version"], 1);
    assert_eq!(basis["objection_possible"], true);
    assert!(basis.get("decided_by").is_none(), "{answer}");
    assert_eq!(basis["since"], "2026-12-01T08:00:00+00:00");
    assert_eq!(basis["review_at"], "2027-12-01T08:00:00+00:00");
    assert_eq!(
        may_use(&s, "K1", "contact-data")["basis"]["kind"],
        "contract"
    );
    assert_eq!(may_use(&s, "C3", "newsletter")["may_use"], false);

    // The CRM gets each basis with the contact's link to object, for the
    // notice with every use.
    let recorded = actions(&s, "basis-recorded");
    let k1: Vec<&Value> = recorded.iter().filter(|a| a["contact"] == "K1").collect();
    assert_eq!(k1.len(), 2, "{recorded:?}");
    let newsletter = k1
        .iter()
        .find(|a| a["purpose"] == "newsletter")
        .expect("the newsletter's basis");
    assert_eq!(newsletter["payload"]["basis"], "existing-customer");
    assert_eq!(newsletter["payload"]["objection_possible"], true);
    let link = newsletter["payload"]["personal_url"]
        .as_str()
        .expect("a personal link")
        .to_owned();
    assert!(link.starts_with(&format!("{}/p/", s.url)), "{link}");
    let (status, page) = s.raw("GET", link.trim_start_matches(&s.url), None, None, &[]);
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("§ 7 Abs. 3 UWG"), "{page}");
    assert!(page.contains(">Widersprechen</button>"), "{page}");

    // The evidence bundle: the basis, its reason, the policy version and
    // the data it relied on.
    let out =
        s.ws.run(&["evidence", "export", "acme", "K1", "--now", NOW]);
    assert!(out.status.success());
    let bundle: Value = serde_json::from_str(&stdout(&out)).expect("the bundle");
    let evidence = bundle["bases"].as_array().expect("bases");
    let basis = evidence
        .iter()
        .find(|e| e["kind"] == "basis" && e["purpose"] == "newsletter")
        .unwrap_or_else(|| panic!("no basis in {bundle}"));
    assert_eq!(basis["detail"]["kind"], "existing-customer");
    assert_eq!(basis["detail"]["policy_version"], 1);
    assert_eq!(
        basis["detail"]["relied_on"],
        json!({ "attributes.customer": "yes" })
    );
    assert!(
        basis["detail"]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("§ 7 Abs. 3 UWG")),
        "{basis}"
    );
    assert_eq!(bundle["policy_versions"][0]["version"], 1, "{bundle}");

    // `explain` says what the policy decided, and which version.
    let explained = s.ws.ok(&["explain", "acme", "K1"]);
    assert!(
        explained.contains("on basis existing-customer: Bestandskunde"),
        "{explained}"
    );
    assert!(
        explained.contains("relied on attributes.customer = \"yes\""),
        "{explained}"
    );
    assert!(explained.contains("[v1, sha256 "), "{explained}");

    // The review a year later asks the policy again: renewed, with new
    // evidence, and still nobody asked.
    s.ws.ok(&["tick", "--now", "2027-12-01T09:00:00Z"]);
    let renewed = may_use(&s, "K1", "newsletter");
    assert_eq!(renewed["basis"]["since"], "2027-12-01T09:00:00+00:00");
    let out =
        s.ws.run(&["evidence", "export", "acme", "K1", "--now", NOW]);
    let bundle: Value = serde_json::from_str(&stdout(&out)).expect("the bundle");
    let bases = bundle["bases"]
        .as_array()
        .map(|e| {
            e.iter()
                .filter(|e| e["kind"] == "basis" && e["purpose"] == "newsletter")
                .count()
        })
        .unwrap_or_default();
    assert_eq!(bases, 2);
    assert!(
        !actions(&s, "send-request")
            .iter()
            .any(|a| a["contact"] == "K1" || a["contact"] == "K2"),
        "a customer was asked"
    );

    // K2 is no longer a customer: the data change ends the basis and klar
    // asks for consent.
    contact(&s, "K2", Some("k2@example.de"), false);
    let (status, answer) = s.call(
        "POST",
        "/v1/contacts/K2/events",
        Some(&s.keys.0),
        Some(&json!({"type": "data-changed", "purpose": "newsletter"})),
    );
    assert_eq!(status, 200, "{answer}");
    assert_eq!(state(&s, "K2", "newsletter"), "requested");

    // The cockpit counts usable cases by basis.
    let counted: Vec<(String, i64)> =
        klar::store::report::bases(s.ws.store().connection(), "acme").expect("bases");
    let count = |kind: &str| {
        counted
            .iter()
            .find(|(k, _)| k == kind)
            .map_or(0, |(_, n)| *n)
    };
    assert_eq!(
        (count("existing-customer"), count("contract")),
        (1, 3),
        "{counted:?}"
    );
    assert_eq!(s.ws.ok(&["audit", "verify", "acme"]).lines().count(), 1);
}

#[test]
fn an_objection_blocks_use_at_once_and_no_policy_or_person_undoes_it() {
    let s = tenant();
    assert_eq!(may_use(&s, "K1", "newsletter")["may_use"], true);

    // Through the API.
    let (status, answer) = s.call(
        "POST",
        "/v1/contacts/K1/events",
        Some(&s.keys.0),
        Some(&json!({"type": "object", "purpose": "newsletter"})),
    );
    assert_eq!(status, 200, "{answer}");
    let answer = may_use(&s, "K1", "newsletter");
    assert_eq!(
        (answer["may_use"].as_bool(), answer["state"].as_str()),
        (Some(false), Some("objected")),
        "{answer}"
    );
    assert!(
        actions(&s, "block-use")
            .iter()
            .any(|a| a["contact"] == "K1" && a["purpose"] == "newsletter"),
        "the CRM is told to stop"
    );
    // The contract for contact-data is not ended by an objection: the
    // owner checks it.
    let (status, answer) = s.call(
        "POST",
        "/v1/contacts/K1/events",
        Some(&s.keys.0),
        Some(&json!({"type": "object", "purpose": "contact-data"})),
    );
    assert_eq!(status, 200, "{answer}");
    assert_eq!(state(&s, "K1", "contact-data"), "other-basis");
    assert!(
        actions(&s, "create-task")
            .iter()
            .any(|a| a["contact"] == "K1" && a["payload"]["kind"] == "review-objection"),
        "the owner checks the objection"
    );

    // Through the CLI.
    let said = s.ws.ok(&[
        "object",
        "acme",
        "K2",
        "--purpose",
        "newsletter",
        "--now",
        NOW,
    ]);
    assert_eq!(said.trim(), "K2 newsletter: objected");

    // Through the personal link the CRM got with the basis.
    contact(&s, "K5", Some("k5@example.de"), true);
    s.ws.ok(&["tick", "--now", "2026-12-02T08:00:00Z"]);
    let link = actions(&s, "basis-recorded")
        .iter()
        .find(|a| a["contact"] == "K5" && a["purpose"] == "newsletter")
        .and_then(|a| a["payload"]["personal_url"].as_str().map(str::to_owned))
        .expect("K5's link");
    let path = link.trim_start_matches(&s.url).to_owned();
    let (_, page) = s.raw("GET", &path, None, None, &[]);
    let csrf = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a CSRF field")
        .to_owned();
    let cookie = format!("klar_csrf={csrf}");
    let (status, saved) = s.raw(
        "POST",
        &path,
        None,
        Some(format!("csrf={csrf}&purpose=newsletter&change=object")),
        &[
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("Cookie", &cookie),
            ("User-Agent", "Objection/1.0"),
        ],
    );
    assert_eq!(status, 200, "{saved}");
    assert!(saved.contains("Ihr Widerspruch ist gespeichert"), "{saved}");
    assert_eq!(state(&s, "K5", "newsletter"), "objected");
    let out =
        s.ws.run(&["evidence", "export", "acme", "K5", "--now", NOW]);
    let bundle: Value = serde_json::from_str(&stdout(&out)).expect("the bundle");
    let objection = bundle["responses"]
        .as_array()
        .and_then(|e| e.iter().find(|e| e["kind"] == "objection"))
        .unwrap_or_else(|| panic!("no objection in {bundle}"));
    assert_eq!(objection["detail"]["channel"], "personal-link");
    assert_eq!(objection["detail"]["user_agent"], "Objection/1.0");
    assert_eq!(objection["detail"]["basis"], "existing-customer");

    // A campaign list check says why.
    let (_, checked) = s.call(
        "POST",
        "/v1/use",
        Some(&s.keys.0),
        Some(&json!({"purpose": "newsletter", "contacts": ["K1", "K5", "C3"]})),
    );
    let reasons: Vec<&str> = checked["contacts"]
        .as_array()
        .expect("contacts")
        .iter()
        .map(|c| c["reason"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(reasons, ["objected", "objected", "not-clarified"]);

    // Now an admin activates a policy that would put everyone on a
    // legitimate interest. Neither a tick, nor the review, nor a data
    // change, nor a person brings the objection back.
    s.ws.write("everyone.rhai", EVERYONE);
    s.ws.ok(&[
        "policy",
        "set",
        "acme",
        "everyone.rhai",
        "--author",
        "admin",
        "--now",
        NOW,
    ]);
    for at in ["2026-12-20T09:00:00Z", "2027-12-02T09:00:00Z"] {
        s.ws.ok(&["tick", "--now", at]);
    }
    let (status, answer) = s.call(
        "POST",
        "/v1/contacts/K1/events",
        Some(&s.keys.0),
        Some(&json!({"type": "data-changed", "purpose": "newsletter"})),
    );
    assert_eq!(status, 200, "{answer}");
    let out = s.ws.run(&[
        "decide",
        "acme",
        "K1",
        "--purpose",
        "newsletter",
        "--action",
        "other-basis",
        "--by",
        "jk",
        "--reason",
        "doch",
        "--now",
        NOW,
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).contains("no other basis can override an objection"),
        "{}",
        stdout(&out)
    );
    for id in ["K1", "K2", "K5"] {
        let answer = may_use(&s, id, "newsletter");
        assert_eq!(answer["may_use"], false, "{id}: {answer}");
        assert_eq!(answer["state"], "objected", "{id}: {answer}");
    }
    // The new policy did reach C3, whom nobody had an answer from.
    assert_eq!(may_use(&s, "C3", "newsletter")["may_use"], true);
    // No request ever went to an objected contact.
    assert!(
        !actions(&s, "send-request").iter().any(|a| {
            ["K1", "K2", "K5"].contains(&a["contact"].as_str().unwrap_or_default())
                && a["payload"]["purposes"]
                    .as_array()
                    .is_some_and(|p| p.iter().any(|p| p["purpose"] == "newsletter"))
        }),
        "an objected contact was asked"
    );
    assert_eq!(s.ws.ok(&["audit", "verify", "acme"]).lines().count(), 1);
}

#[test]
fn simulate_against_shows_whom_a_new_basis_rule_stops_asking() {
    let s = with_policy("fn answer_days(contact) { 14 }\n");
    contact(&s, "K1", Some("k1@example.de"), true);
    contact(&s, "K2", Some("k2@example.de"), true);
    contact(&s, "C3", Some("c3@example.de"), false);
    s.ws.write("customers.rhai", POLICY);
    let out = s.ws.run(&[
        "simulate",
        "acme",
        "--policy",
        "customers.rhai",
        "--against",
        "1",
        "--days",
        "7",
        "--now",
        NOW,
    ]);
    let text = stdout(&out);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("customers.rhai asks about 2 case(s), v1 about 6; 4 case(s) on another basis under customers.rhai"),
        "{text}"
    );
    assert!(
        text.contains("customers.rhai no longer asks 4 case(s) that v1 asks, on another basis (2 contract, 2 existing-customer):"),
        "{text}"
    );
    assert!(
        text.contains("  K1 (newsletter): existing-customer"),
        "{text}"
    );
    assert!(text.contains("  K2: contract"), "{text}");
}

/// The issue's campaign check at its size: a 50,000-id list from a CSV, as
/// `klar usable` filters it and as `POST /v1/use` answers it, agrees id by
/// id. The list mixes existing customers (on the § 7(3) basis), contacts
/// being asked, objections and ids klar does not know.
#[test]
fn a_50000_id_list_gets_the_same_answers_from_klar_usable_and_the_api() {
    let s = with_policy(POLICY);
    let mut csv = String::from(
        "external_id,first_name,last_name,email,phone,owner,source,created_at,customer\n",
    );
    for i in 0..45_000 {
        let customer = if i % 3 == 0 { "yes" } else { "no" };
        csv.push_str(&format!(
            "K{i:05},Vorname,Nachname,k{i}@example.de,,jk,web,2026-10-01,{customer}\n"
        ));
    }
    s.ws.write("kontakte.csv", &csv);
    s.ws.ok(&["import", "acme", "kontakte.csv", "--now", NOW]);
    s.ws.ok(&["tick", "--now", NOW]);
    for id in ["K00000", "K00003", "K00001"] {
        s.ws.ok(&[
            "object",
            "acme",
            id,
            "--purpose",
            "newsletter",
            "--now",
            NOW,
        ]);
    }
    // The campaign list: 45,000 known ids and 5,000 unknown, as Excel
    // saves it.
    let ids: Vec<String> = (0..50_000)
        .map(|i| {
            if i < 45_000 {
                format!("K{i:05}")
            } else {
                format!("X{i}")
            }
        })
        .collect();
    let mut list = String::from("\u{feff}Kundennummer;Name\r\n");
    for id in &ids {
        list.push_str(&format!("{id};Jemand\r\n"));
    }
    s.ws.write("liste.csv", &list);
    let out = s.ws.run(&[
        "usable",
        "acme",
        "--purpose",
        "newsletter",
        "--csv",
        "liste.csv",
        "--all",
        "-o",
        "geprueft.csv",
        "--now",
        NOW,
    ]);
    assert!(out.status.success(), "{}", support::stderr(&out));
    let written = std::fs::read_to_string(s.ws.path().join("geprueft.csv")).expect("written");
    let from_cli: Vec<(String, bool, String)> = written
        .trim_start_matches('\u{feff}')
        .lines()
        .skip(1)
        .map(|line| {
            let cells: Vec<&str> = line.split(';').collect();
            (cells[0].to_owned(), cells[2] == "ja", cells[3].to_owned())
        })
        .collect();
    let (status, answer) = s.call(
        "POST",
        "/v1/use",
        Some(&s.keys.0),
        Some(&json!({"purpose": "newsletter", "contacts": ids})),
    );
    assert_eq!(status, 200);
    let from_api = answer["contacts"].as_array().expect("contacts");
    assert_eq!((from_cli.len(), from_api.len()), (50_000, 50_000));
    // The German words of the list are the API's reason codes.
    let german = |code: &str| match code {
        "other-basis" => "andere Rechtsgrundlage",
        "not-clarified" => "noch nicht geklärt",
        "objected" => "widersprochen",
        "unknown-contact" => "unbekannter Kontakt",
        other => panic!("unexpected reason {other}"),
    };
    for ((id, may, why), api) in from_cli.iter().zip(from_api) {
        assert_eq!(api["contact"], id.as_str());
        assert_eq!(api["may_use"].as_bool(), Some(*may), "{id}");
        assert_eq!(
            german(api["reason"].as_str().unwrap_or_default()),
            why,
            "{id}"
        );
    }
    assert_eq!(
        answer["reasons"],
        json!({"other-basis": 14_998, "objected": 3, "not-clarified": 29_999, "unknown-contact": 5_000})
    );
    assert_eq!(answer["usable"], 14_998);
}
