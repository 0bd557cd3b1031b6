//! `klar serve` as a CRM and a contact meet it: the real binary on a loopback
//! port, a real SQLite file, plain HTTP. API keys and tenant isolation, the
//! "may I use?" call, contact upserts, events with an Idempotency-Key, the
//! outbox, the response page with its CSRF check and evidence, consistent
//! error bodies, and a graceful stop on SIGTERM.

mod support;

use serde_json::{Value, json};
use std::io::{BufRead, BufReader};

use support::server::{NOW, Server};
use support::{stderr, stdout};

fn contact_body() -> Value {
    json!({
        "first_name": "Jürgen",
        "last_name": "Groß",
        "email": "j.gross@example.de",
        "owner": "jk",
        "source": "web",
        "created_at": "2026-10-01"
    })
}

#[test]
fn the_api_needs_a_key_and_a_key_sees_only_its_tenant() {
    let s = Server::start();
    let (acme, other) = (s.keys.0.as_str(), s.keys.1.as_str());
    let (status, health) = s.call("GET", "/health", None, None);
    assert_eq!((status, health["status"].as_str()), (200, Some("ok")));

    let (status, body) = s.call("GET", "/v1/status", None, None);
    assert_eq!(status, 401);
    assert_eq!(body["error"]["code"], "unauthorized");
    let (status, _) = s.call("GET", "/v1/status", Some("klar_0000"), None);
    assert_eq!(status, 401);

    let (status, body) = s.call("PUT", "/v1/contacts/C1", Some(acme), Some(&contact_body()));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["result"], "added");
    assert_eq!(body["cases_opened"], 1);
    let (_, again) = s.call("PUT", "/v1/contacts/C1", Some(acme), Some(&contact_body()));
    assert_eq!(again["result"], "unchanged");

    // The other tenant's key sees nothing of acme's contact, on every route.
    let (status, body) = s.call("GET", "/v1/contacts/C1/use", Some(other), None);
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("not_found"))
    );
    let (status, _) = s.call(
        "POST",
        "/v1/contacts/C1/events",
        Some(other),
        Some(&json!({"type": "withdraw"})),
    );
    assert_eq!(status, 404);
    let (_, cases) = s.call("GET", "/v1/cases", Some(other), None);
    assert_eq!(cases["cases"], json!([]));
    let (_, status_other) = s.call("GET", "/v1/status", Some(other), None);
    assert_eq!(status_other["tenant"], "other");
    let (_, outbox) = s.call("GET", "/v1/outbox", Some(other), None);
    assert_eq!(outbox["actions"], json!([]));
    let (_, acme_cases) = s.call("GET", "/v1/cases", Some(acme), None);
    assert_eq!(acme_cases["cases"].as_array().map(Vec::len), Some(1));

    // A revoked key stops working.
    let list: Value =
        serde_json::from_str(&s.ws.ok(&["apikey", "list", "other", "--json"])).expect("JSON");
    let id = list[0]["id"].as_str().expect("an id").to_owned();
    s.ws.ok(&["apikey", "revoke", "other", &id, "--now", NOW]);
    let (status, _) = s.call("GET", "/v1/status", Some(other), None);
    assert_eq!(status, 401);
}

#[test]
fn bad_input_gets_a_4xx_with_the_reason() {
    let s = Server::start();
    let acme = s.keys.0.as_str();
    let (status, body) = s.raw(
        "PUT",
        "/v1/contacts/C1",
        Some(acme),
        Some("{\"owner\": ".into()),
        &[],
    );
    assert_eq!(status, 400, "{body}");
    let body: Value = serde_json::from_str(&body).expect("a JSON error");
    assert_eq!(body["error"]["code"], "bad_request");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("line 1")),
        "{body}"
    );

    let (status, body) = s.call(
        "PUT",
        "/v1/contacts/C1",
        Some(acme),
        Some(&json!({"owner": "", "email": "not-an-address"})),
    );
    assert_eq!(status, 400);
    assert_eq!(
        body["error"]["message"],
        "owner is empty: every contact needs a responsible person; email \"not-an-address\" is not an e-mail address"
    );
    let (status, body) = s.call(
        "PUT",
        "/v1/contacts/C1",
        Some(acme),
        Some(&json!({"owner": "jk", "nick": "x"})),
    );
    assert_eq!(status, 400);
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("unknown field `nick`")),
        "{body}"
    );

    s.call("PUT", "/v1/contacts/C1", Some(acme), Some(&contact_body()));
    let (status, body) = s.call(
        "POST",
        "/v1/contacts/C1/events",
        Some(acme),
        Some(&json!({"type": "teleport"})),
    );
    assert_eq!(status, 400);
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("unknown event type \"teleport\""))
    );
    let (status, body) = s.call(
        "POST",
        "/v1/contacts/C1/events",
        Some(acme),
        Some(&json!({"type": "hold-on"})),
    );
    assert_eq!(
        (status, body["error"]["message"].as_str()),
        (400, Some("a hold-on event needs `by`"))
    );
    let (status, _) = s.call("GET", "/v1/cases?after=zz", Some(acme), None);
    assert_eq!(status, 400);
}

#[test]
fn a_crm_pushes_a_contact_gets_the_request_and_sees_the_answer_arrive() {
    let s = Server::start();
    let acme = s.keys.0.as_str();
    s.call("PUT", "/v1/contacts/C1", Some(acme), Some(&contact_body()));
    let (_, use_before) = s.call("GET", "/v1/contacts/C1/use", Some(acme), None);
    assert_eq!(use_before["may_use"], false);
    assert_eq!(use_before["band"], "to-clarify");

    s.ws.ok(&["tick", "--now", NOW]);
    let (status, outbox) = s.call("GET", "/v1/outbox?after=0", Some(acme), None);
    assert_eq!(status, 200);
    let actions = outbox["actions"].as_array().expect("actions");
    assert_eq!(actions.len(), 1, "{outbox}");
    let request = &actions[0];
    assert_eq!(request["kind"], "send-request");
    let token = request["payload"]["token"]
        .as_str()
        .expect("a link token")
        .to_owned();
    assert_eq!(
        request["payload"]["response_url"],
        format!("{}/r/{token}", s.url),
        "the CRM gets the link ready for its mail"
    );

    // The contact opens the link: German by Accept-Language, with the text.
    let (status, page) = s.raw(
        "GET",
        &format!("/r/{token}"),
        None,
        None,
        &[("Accept-Language", "de-DE,de;q=0.9")],
    );
    assert_eq!(status, 200);
    assert!(page.contains("<html lang=\"de\">"), "{page}");
    assert!(page.contains("Müller GmbH"), "{page}");
    assert!(page.contains("Ja, ich bin einverstanden"), "{page}");
    assert!(
        page.contains("Ich bin damit einverstanden, dass Müller GmbH"),
        "{page}"
    );
    let csrf = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a CSRF field")
        .to_owned();
    let (status, english) = s.raw("GET", &format!("/r/{token}?lang=en"), None, None, &[]);
    assert_eq!(status, 200);
    assert!(english.contains("Yes, I agree"), "{english}");

    // Without the cookie the POST is refused and nothing is recorded.
    let form = format!("answer=accept&csrf={csrf}");
    let (status, _) = s.raw(
        "POST",
        &format!("/r/{token}"),
        None,
        Some(form.clone()),
        &[("Content-Type", "application/x-www-form-urlencoded")],
    );
    assert_eq!(status, 403);
    let (_, still) = s.call("GET", "/v1/contacts/C1/use", Some(acme), None);
    assert_eq!(still["may_use"], false);

    let cookie = format!("klar_csrf={csrf}");
    let (status, thanks) = s.raw(
        "POST",
        &format!("/r/{token}"),
        None,
        Some(form.clone()),
        &[
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("Cookie", &cookie),
            ("User-Agent", "TestBrowser/1.0 (klar serve test)"),
        ],
    );
    assert_eq!(status, 200, "{thanks}");
    assert!(
        thanks.contains("Vielen Dank") || thanks.contains("Thank you"),
        "{thanks}"
    );

    let (_, use_after) = s.call("GET", "/v1/contacts/C1/use", Some(acme), None);
    assert_eq!(use_after["may_use"], true, "{use_after}");
    assert_eq!(use_after["basis"]["kind"], "consent");
    assert_eq!(use_after["basis"]["since"], "2026-12-01T08:00:00+00:00");
    let bundle: Value =
        serde_json::from_str(&s.ws.ok(&["evidence", "export", "acme", "C1", "--now", NOW]))
            .expect("JSON");
    let evidence = &bundle["responses"][0]["detail"];
    assert_eq!(evidence["user_agent"], "TestBrowser/1.0 (klar serve test)");
    assert_eq!(evidence["ip"], "127.0.0.1");

    // The used link and an unknown one get the same page.
    let (used_status, used) = s.raw(
        "GET",
        &format!("/r/{token}"),
        None,
        None,
        &[("Accept-Language", "de")],
    );
    let (unknown_status, unknown) = s.raw(
        "GET",
        &format!("/r/{}", "ab".repeat(20)),
        None,
        None,
        &[("Accept-Language", "de")],
    );
    assert_eq!((used_status, unknown_status), (404, 404));
    assert_eq!(used, unknown);
    assert!(used.contains("Dieser Link ist nicht gültig"));

    // The answer withdrew the request the CRM had polled: it is no longer
    // pending, a `cancel` action tells the CRM, and acknowledging it now
    // counts nothing.
    let id = request["id"].as_str().expect("id");
    let (_, after) = s.call("GET", "/v1/outbox?after=0", Some(acme), None);
    let actions = after["actions"].as_array().cloned().unwrap_or_default();
    assert!(actions.iter().all(|x| x["id"] != id), "{after}");
    assert!(
        actions
            .iter()
            .any(|x| x["kind"] == "cancel" && x["payload"]["cancels"] == id),
        "{after}"
    );
    let (_, ack) = s.call(
        "POST",
        "/v1/outbox/ack",
        Some(acme),
        Some(&json!({"ids": [id]})),
    );
    assert_eq!(ack["acknowledged"], 0);
}

/// The link secret travels with the request until the CRM acknowledges it,
/// and not after: the outbox then keeps only the token id.
#[test]
fn a_link_secret_leaves_klar_once_and_is_not_kept_after_acknowledgement() {
    let s = Server::start();
    let acme = s.keys.0.as_str();
    s.call("PUT", "/v1/contacts/C1", Some(acme), Some(&contact_body()));
    s.ws.ok(&["tick", "--now", NOW]);
    let (_, outbox) = s.call("GET", "/v1/outbox?after=0", Some(acme), None);
    let request = outbox["actions"][0].clone();
    let token = request["payload"]["token"]
        .as_str()
        .expect("a secret")
        .to_owned();
    // Polled again before the acknowledgement: still there (at least once).
    let (_, again) = s.call("GET", "/v1/outbox?after=0", Some(acme), None);
    assert_eq!(again["actions"][0]["payload"]["token"], token.as_str());
    let (_, ack) = s.call(
        "POST",
        "/v1/outbox/ack",
        Some(acme),
        Some(&json!({"ids": [request["id"]]})),
    );
    assert_eq!(ack["acknowledged"], 1);
    let all = s.ws.ok(&["outbox", "acme", "--all", "--json"]);
    assert!(!all.contains(&token), "the secret is still printed: {all}");
    let items: Value = serde_json::from_str(&all).expect("JSON");
    assert_eq!(
        items[0]["payload"]["token_id"],
        request["payload"]["token_id"]
    );
    assert_eq!(items[0]["payload"].get("token"), None);
    assert_eq!(items[0]["payload"].get("response_url"), None);
    let stored: String =
        s.ws.sql()
            .query_row(
                "SELECT payload FROM outbox WHERE id = ?1",
                [request["id"].as_str()],
                |r| r.get(0),
            )
            .expect("the row");
    assert!(!stored.contains(&token), "{stored}");
    // The link itself still works: klar kept its hash.
    let (status, _) = s.raw("GET", &format!("/r/{token}"), None, None, &[]);
    assert_eq!(status, 200);
}

/// A `crm` key does what a CRM integration needs and nothing more: it cannot
/// make keys, revoke the admin's, move the webhook or change the policy.
#[test]
fn a_crm_key_cannot_manage_keys_the_webhook_or_the_policy() {
    let s = Server::start();
    let admin = s.keys.0.as_str();
    let out =
        s.ws.run(&["apikey", "create", "acme", "--name", "crm", "--now", NOW]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("scope crm"), "{}", stderr(&out));
    let crm = stdout(&out).trim().to_owned();

    // What a CRM needs works.
    let (status, _) = s.call("PUT", "/v1/contacts/C1", Some(&crm), Some(&contact_body()));
    assert_eq!(status, 200);
    for path in [
        "/v1/contacts/C1/use",
        "/v1/cases",
        "/v1/status",
        "/v1/outbox",
    ] {
        let (status, body) = s.call("GET", path, Some(&crm), None);
        assert_eq!(status, 200, "{path}: {body}");
    }

    // Administration does not, and changes nothing.
    let (_, keys) = s.call("GET", "/v1/keys", Some(admin), None);
    let keys = keys["keys"].as_array().cloned().unwrap_or_default();
    let mut scopes: Vec<&str> = keys.iter().filter_map(|k| k["scope"].as_str()).collect();
    scopes.sort_unstable();
    assert_eq!(scopes, ["admin", "crm"]);
    let admin_id = keys
        .iter()
        .find(|k| k["scope"] == "admin")
        .and_then(|k| k["id"].as_str())
        .expect("the admin key's id")
        .to_owned();
    let attempts: [(&str, String, Option<Value>); 7] = [
        ("GET", "/v1/keys".into(), None),
        (
            "POST",
            "/v1/keys".into(),
            Some(json!({"name": "mine", "scope": "admin"})),
        ),
        ("DELETE", format!("/v1/keys/{admin_id}"), None),
        (
            "PUT",
            "/v1/webhook".into(),
            Some(json!({"url": "https://93.184.215.14/x"})),
        ),
        ("DELETE", "/v1/webhook".into(), None),
        ("GET", "/v1/policy/versions".into(), None),
        (
            "POST",
            "/v1/policy/versions".into(),
            Some(json!({"source": "fn x() {}", "author": "a", "message": "m"})),
        ),
    ];
    for (method, path, body) in attempts {
        let (status, answer) = s.call(method, &path, Some(&crm), body.as_ref());
        assert_eq!(status, 403, "{method} {path}: {answer}");
        assert_eq!(answer["error"]["code"], "forbidden", "{answer}");
        assert!(
            answer["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("scope admin")),
            "{answer}"
        );
    }
    let (status, _) = s.call("GET", "/v1/status", Some(admin), None);
    assert_eq!(status, 200, "the admin key still works");
    let (_, keys) = s.call("GET", "/v1/keys", Some(admin), None);
    assert_eq!(
        keys["keys"].as_array().map(Vec::len),
        Some(2),
        "no key was made"
    );

    // An admin key may make either kind; the CLI lists the scope.
    let (status, made) = s.call(
        "POST",
        "/v1/keys",
        Some(admin),
        Some(&json!({"name": "second"})),
    );
    assert_eq!(status, 201, "{made}");
    assert_eq!(made["scope"], "crm", "crm is the default");
    let list = s.ws.ok(&["apikey", "list", "acme"]);
    assert!(
        list.lines()
            .any(|l| l.contains(" admin ") && l.contains("admin")),
        "{list}"
    );
    let out =
        s.ws.run(&["apikey", "create", "acme", "--name", "x", "--scope", "root"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("use crm or admin"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn an_idempotency_key_makes_a_retry_harmless() {
    let s = Server::start();
    let acme = s.keys.0.as_str();
    s.call("PUT", "/v1/contacts/C1", Some(acme), Some(&contact_body()));
    let event = json!({"type": "hold-on", "by": "legal", "reason": "dispute"}).to_string();
    let key = [("Idempotency-Key", "evt-1")];
    let (first_status, first) = s.raw(
        "POST",
        "/v1/contacts/C1/events",
        Some(acme),
        Some(event.clone()),
        &key,
    );
    assert_eq!(first_status, 200, "{first}");
    let (second_status, second) = s.raw(
        "POST",
        "/v1/contacts/C1/events",
        Some(acme),
        Some(event),
        &key,
    );
    assert_eq!((second_status, &second), (200, &first));
    let audit = s.ws.ok(&["audit", "show", "acme", "C1"]);
    assert_eq!(audit.matches("legal hold on").count(), 1, "{audit}");

    let other = json!({"type": "hold-off", "by": "legal", "reason": "settled"}).to_string();
    let (status, body) = s.raw(
        "POST",
        "/v1/contacts/C1/events",
        Some(acme),
        Some(other),
        &key,
    );
    assert_eq!(status, 422);
    assert!(body.contains("idempotency_key_reused"), "{body}");

    // The same JSON with its keys in another order and other spacing is the
    // same request: the first answer again, and the event still once.
    let reordered = r#"{ "reason": "dispute",  "by": "legal", "type": "hold-on" }"#;
    let (status, third) = s.raw(
        "POST",
        "/v1/contacts/C1/events",
        Some(acme),
        Some(reordered.to_owned()),
        &key,
    );
    assert_eq!((status, &third), (200, &first));
    let audit = s.ws.ok(&["audit", "show", "acme", "C1"]);
    assert_eq!(audit.matches("legal hold on").count(), 1, "{audit}");

    // A key of 201 characters, or an empty one, is refused before anything runs.
    for bad in ["k".repeat(201), " ".to_owned()] {
        let (status, body) = s.raw(
            "POST",
            "/v1/contacts/C1/events",
            Some(acme),
            Some(reordered.to_owned()),
            &[("Idempotency-Key", &bad)],
        );
        assert_eq!(status, 400, "{body}");
        assert!(body.contains("Idempotency-Key"), "{body}");
    }
}

#[test]
fn sigterm_stops_the_server_gracefully() {
    let mut s = Server::start();
    let (status, _) = s.call("GET", "/health", None, None);
    assert_eq!(status, 200);
    let pid = i32::try_from(s.child.id()).expect("a pid");
    // SAFETY: sending a signal to our own child process.
    unsafe {
        libc::kill(pid, libc::SIGTERM);
    }
    let status = s.child.wait().expect("it exits");
    assert!(status.success(), "{status:?}");
}

#[test]
fn a_batch_is_stored_whole_or_not_at_all_and_names_each_bad_item() {
    let s = Server::start();
    let (acme, other) = (s.keys.0.as_str(), s.keys.1.as_str());
    let mut good = contact_body();
    good["id"] = json!("B1");
    let mut second = contact_body();
    second["id"] = json!("B2");
    second["email"] = json!("b2@example.de");
    let mut bad = contact_body();
    bad["id"] = json!("B3");
    bad["owner"] = json!("");
    let (status, body) = s.call(
        "POST",
        "/v1/contacts",
        Some(acme),
        Some(&json!({"contacts": [good, second.clone(), bad, second.clone()]})),
    );
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "invalid_items");
    assert_eq!(
        body["items"],
        json!([
            {"index": 2, "contact": "B3", "errors": ["owner is empty: every contact needs a responsible person"]},
            {"index": 3, "contact": "B2", "errors": ["the same id appears twice in this call"]}
        ])
    );
    let (_, cases) = s.call("GET", "/v1/cases", Some(acme), None);
    assert_eq!(cases["cases"], json!([]), "nothing was stored");

    let mut first = contact_body();
    first["id"] = json!("B1");
    let (status, body) = s.call(
        "POST",
        "/v1/contacts",
        Some(acme),
        Some(&json!({"contacts": [first, second]})),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["results"][1],
        json!({"contact": "B2", "result": "added", "cases_opened": 1})
    );

    s.ws.ok(&["tick", "--now", NOW]);
    let (status, bundle) = s.call("GET", "/v1/contacts/B1/evidence", Some(acme), None);
    assert_eq!(status, 200);
    assert_eq!(bundle["format"], "klar-evidence-bundle/1");
    assert_eq!(bundle["requests"].as_array().map(Vec::len), Some(1));
    let (status, why) = s.call("GET", "/v1/contacts/B1/explanation", Some(acme), None);
    assert_eq!(status, 200);
    assert!(
        why["steps"]
            .as_array()
            .is_some_and(|s| s.iter().any(|step| step["to"] == "requested")),
        "{why}"
    );
    let (status, _) = s.call("GET", "/v1/contacts/B1/evidence", Some(other), None);
    assert_eq!(status, 404);
    let (status, _) = s.call("GET", "/v1/contacts/B1/explanation", Some(other), None);
    assert_eq!(status, 404);
}

/// How many contacts of `tenant` the server's database holds.
fn contacts_stored(s: &Server, tenant: &str) -> i64 {
    s.ws.sql()
        .query_row(
            "SELECT COUNT(*) FROM contacts WHERE tenant = ?1",
            [tenant],
            |r| r.get(0),
        )
        .expect("the count")
}

fn bad_request(message: &str) -> Value {
    json!({"error": {"code": "bad_request", "message": message}})
}

#[test]
fn a_batch_holds_at_most_10_000_contacts() {
    let s = Server::start();
    let acme = s.keys.0.as_str();
    let batch = |n: usize| {
        let items: Vec<Value> = (0..n)
            .map(|i| json!({"id": format!("B{i:05}"), "owner": "jk"}))
            .collect();
        json!({ "contacts": items })
    };
    let (status, body) = s.call("POST", "/v1/contacts", Some(acme), Some(&batch(10_001)));
    assert_eq!(
        (status, body),
        (400, bad_request("at most 10,000 contacts per call"))
    );
    assert_eq!(contacts_stored(&s, "acme"), 0, "nothing was stored");

    let (status, body) = s.call("POST", "/v1/contacts", Some(acme), Some(&batch(10_000)));
    assert_eq!(status, 200, "{}", body["error"]);
    assert_eq!(body["results"].as_array().map(Vec::len), Some(10_000));
    assert_eq!(contacts_stored(&s, "acme"), 10_000);
}

#[test]
fn a_contact_id_has_1_to_200_characters_and_no_control_characters() {
    let s = Server::start();
    let acme = s.keys.0.as_str();
    let rule = "a contact id has 1 to 200 characters, without control characters, slashes or blanks around it";
    let (status, body) = s.call(
        "PUT",
        &format!("/v1/contacts/{}", "x".repeat(201)),
        Some(acme),
        Some(&contact_body()),
    );
    assert_eq!((status, body), (400, bad_request(rule)));

    // In a batch each bad id is named, and nothing is stored. The limit
    // counts characters: 200 two-byte ones are 400 bytes and pass.
    let longest = "Ü".repeat(200);
    let ids = [
        longest.as_str(),
        &"x".repeat(201),
        "",
        "C\u{7}",
        "../../x",
        "C\u{0}1",
        " C1",
        "a\\b",
    ];
    let items: Vec<Value> = ids
        .iter()
        .map(|id| json!({"id": id, "owner": "jk"}))
        .collect();
    let (status, body) = s.call(
        "POST",
        "/v1/contacts",
        Some(acme),
        Some(&json!({ "contacts": items })),
    );
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "invalid_items");
    let named: Vec<(u64, &str, &Value)> = body["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| {
            (
                i["index"].as_u64().unwrap_or(u64::MAX),
                i["contact"].as_str().unwrap_or_default(),
                &i["errors"],
            )
        })
        .collect();
    let errors = json!([rule]);
    let expected: Vec<(u64, &str, &Value)> = (1..ids.len())
        .map(|i| (i as u64, ids[i], &errors))
        .collect();
    assert_eq!(named, expected);
    assert_eq!(contacts_stored(&s, "acme"), 0, "nothing was stored");

    let (status, body) = s.call(
        "POST",
        "/v1/contacts",
        Some(acme),
        Some(&json!({"contacts": [{"id": longest, "owner": "jk"}]})),
    );
    assert_eq!(status, 200, "{body}");
    let (status, body) = s.call(
        "PUT",
        &format!("/v1/contacts/{}", "x".repeat(200)),
        Some(acme),
        Some(&contact_body()),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(contacts_stored(&s, "acme"), 2);
}

#[test]
fn a_simulation_refuses_days_and_chances_out_of_range() {
    let s = Server::start();
    let acme = s.keys.0.as_str();
    for (body, message) in [
        (json!({"days": 0}), "days is 1 to 730"),
        (json!({"days": 731}), "days is 1 to 730"),
        (
            json!({"days": 30, "answer_rate": 1.01}),
            "answer_rate is a chance from 0 to 1",
        ),
        (
            json!({"days": 30, "answer_rate": -0.01}),
            "answer_rate is a chance from 0 to 1",
        ),
        (
            json!({"days": 30, "refuse_rate": 1.5}),
            "refuse_rate is a chance from 0 to 1",
        ),
        (
            json!({"days": 30, "refuse_rate": -1}),
            "refuse_rate is a chance from 0 to 1",
        ),
    ] {
        let (status, answer) = s.call("POST", "/v1/policy/simulate", Some(acme), Some(&body));
        assert_eq!((status, answer), (400, bad_request(message)), "{body}");
    }
    // The edges are in range, and every day asked for is simulated.
    for (days, answer_rate, refuse_rate) in [(1, 0, 1), (730, 1, 0)] {
        let body = json!({"days": days, "answer_rate": answer_rate, "refuse_rate": refuse_rate});
        let (status, forecast) = s.call("POST", "/v1/policy/simulate", Some(acme), Some(&body));
        assert_eq!(status, 200, "{body}: {forecast}");
        assert_eq!(
            forecast["weeks"].as_array().map(Vec::len),
            Some(usize::div_ceil(days, 7)),
            "{body}"
        );
    }
}

/// A POST whose CSRF cookie is there but differs from the form's field (or
/// both are empty) is refused with the reload page, and nothing is recorded;
/// the same form with the matching cookie then goes through.
#[test]
fn a_response_with_the_wrong_csrf_cookie_is_refused_and_records_nothing() {
    let s = Server::start();
    let acme = s.keys.0.as_str();
    let (token, csrf, _) = response_page(&s);
    let other = "0".repeat(csrf.len());
    assert_ne!(csrf, other);

    let post = |cookie: &str, field: &str| {
        s.raw(
            "POST",
            &format!("/r/{token}"),
            None,
            Some(format!("answer=accept&csrf={field}")),
            &[
                ("Content-Type", "application/x-www-form-urlencoded"),
                ("Cookie", &format!("klar_csrf={cookie}")),
                ("Accept-Language", "de"),
            ],
        )
    };
    let nothing_recorded = |what: &str| {
        let (_, use_) = s.call("GET", "/v1/contacts/C1/use", Some(acme), None);
        assert_eq!(use_["may_use"], false, "{what}: {use_}");
        let (_, bundle) = s.call("GET", "/v1/contacts/C1/evidence", Some(acme), None);
        assert_eq!(bundle["responses"], json!([]), "{what}");
    };
    for (what, cookie, field) in [
        ("another cookie", other.as_str(), csrf.as_str()),
        ("another field", csrf.as_str(), other.as_str()),
        ("both empty", "", ""),
    ] {
        let (status, text) = post(cookie, field);
        assert_eq!(status, 403, "{what}: {text}");
        assert!(
            text.contains("Bitte laden Sie die Seite neu"),
            "{what}: {text}"
        );
        nothing_recorded(what);
    }

    let (status, thanks) = post(&csrf, &csrf);
    assert_eq!(status, 200, "{thanks}");
    assert!(thanks.contains("Vielen Dank"), "{thanks}");
    let (_, use_) = s.call("GET", "/v1/contacts/C1/use", Some(acme), None);
    assert_eq!(use_["may_use"], true, "{use_}");
}

/// A contact with a pending request, and its link's page: (token, the CSRF
/// value of the form and cookie, the page's headers).
fn response_page(s: &Server) -> (String, String, Vec<(String, String)>) {
    let acme = s.keys.0.as_str();
    s.call("PUT", "/v1/contacts/C1", Some(acme), Some(&contact_body()));
    s.ws.ok(&["tick", "--now", NOW]);
    let (_, outbox) = s.call("GET", "/v1/outbox?after=0", Some(acme), None);
    let token = outbox["actions"][0]["payload"]["token"]
        .as_str()
        .expect("a link token")
        .to_owned();
    let (status, headers, page) = s.full("GET", &format!("/r/{token}"), None, None, &[]);
    assert_eq!(status, 200);
    let csrf = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a CSRF field")
        .to_owned();
    (token, csrf, headers)
}

/// POSTs an "accept" with a matching CSRF pair and these extra headers.
fn post_accept(s: &Server, token: &str, csrf: &str, extra: &[(&str, &str)]) -> u16 {
    let cookie = format!("klar_csrf={csrf}");
    let mut headers = vec![
        ("Content-Type", "application/x-www-form-urlencoded"),
        ("Cookie", cookie.as_str()),
    ];
    headers.extend_from_slice(extra);
    s.raw(
        "POST",
        &format!("/r/{token}"),
        None,
        Some(format!("answer=accept&csrf={csrf}")),
        &headers,
    )
    .0
}

#[test]
fn a_cross_site_form_is_refused_even_with_a_matching_csrf_pair() {
    let s = Server::start();
    let acme = s.keys.0.as_str();
    let (token, csrf, headers) = response_page(&s);
    let policy = headers
        .iter()
        .find(|(k, _)| k == "referrer-policy")
        .map(|(_, v)| v.as_str());
    assert_eq!(
        policy,
        Some("same-origin"),
        "else a browser's Origin would be null"
    );
    for extra in [
        [("Origin", "https://evil.example")],
        [("Origin", "null")],
        [("Referer", "https://evil.example/form")],
    ] {
        assert_eq!(post_accept(&s, &token, &csrf, &extra), 403, "{extra:?}");
        let (_, use_) = s.call("GET", "/v1/contacts/C1/use", Some(acme), None);
        assert_eq!(use_["may_use"], false, "{extra:?} recorded an answer");
    }
    let ours = format!("{}/r/{token}", s.url);
    assert_eq!(
        post_accept(&s, &token, &csrf, &[("Origin", &s.url), ("Referer", &ours)]),
        200
    );
    let (_, use_) = s.call("GET", "/v1/contacts/C1/use", Some(acme), None);
    assert_eq!(use_["may_use"], true, "{use_}");
}

#[test]
fn under_https_the_csrf_cookie_is_secure_and_the_origin_is_the_public_one() {
    let public = "https://consent.example.de";
    let s = Server::start_with(&[("KLAR_PUBLIC_URL", public)]);
    let (token, csrf, headers) = response_page(&s);
    let cookie = headers
        .iter()
        .find(|(k, _)| k == "set-cookie")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    assert!(cookie.contains("; Secure"), "{cookie}");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    assert_eq!(post_accept(&s, &token, &csrf, &[("Origin", &s.url)]), 403);
    assert_eq!(post_accept(&s, &token, &csrf, &[("Origin", public)]), 200);

    let plain = Server::start();
    let (_, _, headers) = response_page(&plain);
    let cookie = headers
        .iter()
        .find(|(k, _)| k == "set-cookie")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    assert!(!cookie.contains("Secure"), "plain http: {cookie}");
}

/// The receivers of these tests listen on loopback, which an operator must
/// allow by name.
const LOOPBACK_ALLOWED: (&str, &str) = ("KLAR_WEBHOOK_ALLOW_PRIVATE", "127.0.0.1");

/// `klar webhook set acme URL` with loopback allowed; returns the secret line.
fn set_webhook(s: &Server, url: &str) -> String {
    let out = s.ws.run_env(
        &[LOOPBACK_ALLOWED],
        &["webhook", "set", "acme", url, "--now", NOW],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    stdout(&out)
}

#[test]
fn webhooks_go_only_to_public_addresses_unless_the_operator_allows_the_host() {
    let s = Server::start_with(&[("KLAR_DELIVER_MS", "50"), ("KLAR_WEBHOOK_RETRY_MS", "50")]);
    let acme = s.keys.0.as_str();
    // The targets of the report, refused when set through the API.
    for url in [
        "http://127.0.0.1:22/x",
        "http://169.254.169.254/latest/meta-data/",
        &format!("{}/v1/keys", s.url.replace("127.0.0.1", "localhost")),
        "http://[::1]/",
        "http://user:pass@10.0.0.1/",
    ] {
        let (status, body) = s.call(
            "PUT",
            "/v1/webhook",
            Some(acme),
            Some(&json!({ "url": url })),
        );
        // Where it points is refused on its meaning (422); a URL with
        // credentials is malformed for klar (400).
        let message = body["error"]["message"].as_str().unwrap_or_default();
        if url.contains('@') {
            assert_eq!(status, 400, "{url}: {body}");
        } else {
            assert_eq!(
                (status, body["error"]["code"].as_str()),
                (422, Some("webhook_refused"))
            );
        }
        assert!(
            message.contains("public addresses") || message.contains("user name or password"),
            "{url}: {body}"
        );
    }
    let (status, _) = s.call("GET", "/v1/webhook", Some(acme), None);
    assert_eq!(status, 404, "nothing was stored");

    // The CLI refuses too, and names the setting that would allow it.
    let receiver = Receiver::start(0);
    let out =
        s.ws.run(&["webhook", "set", "acme", &receiver.url, "--now", NOW]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("webhook_allow_private"),
        "{}",
        stderr(&out)
    );

    // Allowed when it was set, but this server does not allow loopback: the
    // check on every delivery refuses it, and the failure says why.
    set_webhook(&s, &receiver.url);
    s.call("PUT", "/v1/contacts/C1", Some(acme), Some(&contact_body()));
    s.ws.ok(&["tick", "--now", NOW]);
    let mut error = String::new();
    for _ in 0..200 {
        let items: Value =
            serde_json::from_str(&s.ws.ok(&["outbox", "acme", "--json"])).expect("JSON");
        error = items[0]["last_error"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        if !error.is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(error.contains("public addresses"), "{error:?}");
    assert!(
        receiver.seen.lock().expect("lock").is_empty(),
        "nothing reached loopback"
    );
}

#[test]
fn a_webhook_redirect_is_not_followed() {
    let s = Server::start_with(&[("KLAR_DELIVER_MS", "50"), LOOPBACK_ALLOWED]);
    let acme = s.keys.0.as_str();
    let target = Receiver::start(0);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
    let redirect = format!("http://{}/hook", listener.local_addr().expect("addr"));
    let location = target.url.clone();
    let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = std::sync::Arc::clone(&hits);
    std::thread::spawn(move || {
        use std::io::{Read, Write};
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut buf = [0_u8; 8192];
            let _ = stream.read(&mut buf);
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let _ = write!(
                stream,
                "HTTP/1.1 307 Temporary Redirect\r\nLocation: {location}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
        }
    });
    set_webhook(&s, &redirect);
    s.call("PUT", "/v1/contacts/C1", Some(acme), Some(&contact_body()));
    s.ws.ok(&["tick", "--now", NOW]);
    for _ in 0..200 {
        if hits.load(std::sync::atomic::Ordering::SeqCst) > 0 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(
        hits.load(std::sync::atomic::Ordering::SeqCst) > 0,
        "the redirect was tried"
    );
    assert!(
        target.seen.lock().expect("lock").is_empty(),
        "the redirect was not followed"
    );
    let items: Value = serde_json::from_str(&s.ws.ok(&["outbox", "acme", "--json"])).expect("JSON");
    assert!(
        items[0]["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("307")),
        "{items}"
    );
}

/// What a receiver saw: each request's headers and body.
type Seen = std::sync::Arc<std::sync::Mutex<Vec<(Vec<(String, String)>, String)>>>;

/// A webhook receiver on loopback that answers 500 to the first `failures`
/// requests and 200 after; it records each request's headers and body.
struct Receiver {
    url: String,
    seen: Seen,
}

impl Receiver {
    fn start(failures: usize) -> Receiver {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
        let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
        let seen: Seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = std::sync::Arc::clone(&seen);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().expect("clone"));
                let mut headers = Vec::new();
                let mut line = String::new();
                let _ = reader.read_line(&mut line);
                loop {
                    line.clear();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
                        break;
                    }
                    if let Some((k, v)) = line.trim().split_once(':') {
                        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
                    }
                }
                let length: usize = headers
                    .iter()
                    .find(|(k, _)| k == "content-length")
                    .and_then(|(_, v)| v.parse().ok())
                    .unwrap_or(0);
                let mut body = vec![0; length];
                let _ = reader.read_exact(&mut body);
                let n = {
                    let mut seen = log.lock().expect("lock");
                    seen.push((headers, String::from_utf8_lossy(&body).into_owned()));
                    seen.len()
                };
                let status = if n <= failures {
                    "500 Internal Server Error"
                } else {
                    "200 OK"
                };
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                );
            }
        });
        Receiver { url, seen }
    }

    /// Waits until `n` requests arrived (at most 20 s).
    fn wait_for(&self, n: usize) -> Vec<(Vec<(String, String)>, String)> {
        for _ in 0..400 {
            let seen = self.seen.lock().expect("lock").clone();
            if seen.len() >= n {
                return seen;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!(
            "the receiver got {} request(s), not {n}",
            self.seen.lock().expect("lock").len()
        );
    }
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> &'a str {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map_or("", |(_, v)| v.as_str())
}

#[test]
fn webhooks_are_signed_retried_with_backoff_and_parked_after_repeated_failures() {
    let s = Server::start_with(&[
        ("KLAR_DELIVER_MS", "50"),
        ("KLAR_WEBHOOK_RETRY_MS", "50"),
        ("KLAR_WEBHOOK_ATTEMPTS", "4"),
        LOOPBACK_ALLOWED,
    ]);
    let acme = s.keys.0.as_str();
    let flaky = Receiver::start(2);
    let secret = set_webhook(&s, &flaky.url).trim().to_owned();
    s.call("PUT", "/v1/contacts/C1", Some(acme), Some(&contact_body()));
    s.ws.ok(&["tick", "--now", NOW]);

    // Fails twice, then the third attempt is taken.
    let seen = flaky.wait_for(3);
    let ids: Vec<&str> = seen
        .iter()
        .map(|(h, _)| header(h, "x-klar-delivery"))
        .collect();
    assert_eq!(ids[0], ids[1]);
    assert_eq!(ids[1], ids[2], "the same stable id on every attempt");
    let (headers, body) = &seen[2];
    let timestamp: i64 = header(headers, "x-klar-timestamp")
        .parse()
        .expect("a timestamp");
    assert_eq!(
        header(headers, "x-klar-signature"),
        klar::delivery::webhook::sign(&secret, timestamp, body),
        "signed with the tenant's secret over timestamp.body"
    );
    let action: Value = serde_json::from_str(body).expect("JSON");
    assert_eq!(action["kind"], "send-request");
    assert_eq!(action["id"], ids[2]);
    assert!(
        action["payload"]["response_url"]
            .as_str()
            .is_some_and(|u| u.contains("/r/"))
    );
    // Delivered: no longer pending for polling, and not sent again.
    for _ in 0..100 {
        let (_, outbox) = s.call("GET", "/v1/outbox", Some(acme), None);
        if outbox["actions"] == json!([]) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let (_, outbox) = s.call("GET", "/v1/outbox", Some(acme), None);
    assert_eq!(outbox["actions"], json!([]));
    let delivered_token = action["payload"]["token"].as_str().expect("the secret");
    let all = s.ws.ok(&["outbox", "acme", "--all", "--json"]);
    assert!(!all.contains(delivered_token), "kept after delivery: {all}");
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(flaky.seen.lock().expect("lock").len(), 3);

    // A receiver that never answers well: parked after 4 attempts, and the
    // cockpit says so.
    let broken = Receiver::start(usize::MAX);
    set_webhook(&s, &broken.url);
    let mut second = contact_body();
    second["email"] = json!("c2@example.de");
    s.call("PUT", "/v1/contacts/C2", Some(acme), Some(&second));
    s.ws.ok(&["tick", "--now", NOW]);
    broken.wait_for(4);
    let mut parked = 0;
    for _ in 0..100 {
        let (_, status) = s.call("GET", "/v1/status", Some(acme), None);
        parked = status["delivery_parked"].as_i64().unwrap_or(0);
        if parked == 1 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(parked, 1);
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(
        broken.seen.lock().expect("lock").len(),
        4,
        "no attempt after parking"
    );
    let cockpit = s.ws.ok(&["status", "acme", "--now", NOW]);
    assert!(
        cockpit
            .contains("deliveries parked after repeated failures: 1 (see `klar outbox --parked`"),
        "{cockpit}"
    );
}

#[test]
fn a_bounced_address_is_not_asked_again_the_next_attempt_takes_another_way() {
    let s = Server::start();
    let acme = s.keys.0.as_str();
    let mut body = contact_body();
    body["phone"] = json!("+49 711 123456");
    s.call("PUT", "/v1/contacts/C1", Some(acme), Some(&body));
    s.ws.ok(&["tick", "--now", NOW]);
    let channels = |after: i64| -> Vec<(i64, String)> {
        let (_, outbox) = s.call(
            "GET",
            &format!("/v1/outbox?after={after}"),
            Some(acme),
            None,
        );
        outbox["actions"]
            .as_array()
            .expect("actions")
            .iter()
            .filter(|a| a["kind"] == "send-request")
            .map(|a| {
                (
                    a["seq"].as_i64().unwrap_or_default(),
                    a["payload"]["channel"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                )
            })
            .collect()
    };
    let first = channels(0);
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].1, "email");

    // The CRM reports that the mail bounced: the next attempt is due at
    // once, and it is a call by the owner, not the dead address again.
    let (status, answer) = s.call(
        "POST",
        "/v1/contacts/C1/events",
        Some(acme),
        Some(&json!({"type": "bounce", "channel": "email"})),
    );
    assert_eq!(status, 200, "{answer}");
    // (One message a day to a contact: the call comes the next day.)
    s.ws.ok(&["tick", "--now", "2026-12-02T09:00:00Z"]);
    let next = channels(first[0].0);
    assert_eq!(
        next.iter().map(|(_, c)| c.as_str()).collect::<Vec<_>>(),
        ["phone-task"],
        "{next:?}"
    );
    let explained = s.ws.ok(&["explain", "acme", "C1"]);
    assert!(explained.contains("bounce"), "{explained}");
}
