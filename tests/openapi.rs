//! The OpenAPI document is true: `klar serve` serves it at
//! `/v1/openapi.json`, and every operation in it is called here against the
//! real server — every answer must carry a status the document lists for that
//! operation and a body that validates against the document's schema for it,
//! with no field the schema does not name. An operation added to the API but
//! not exercised here fails the test.

mod support;

use std::cell::RefCell;
use std::collections::BTreeSet;

use serde_json::{Value, json};
use support::server::{NOW, Server};

const B2B: &str = include_str!("../rules/examples/b2b.rhai");
const B2B_TESTS: &str = include_str!("../rules/examples/b2b.tests.toml");

/// The document, and which operations the test has seen answer.
struct Contract {
    doc: Value,
    seen: RefCell<BTreeSet<(String, String)>>,
}

/// Forbids fields a schema does not name, so an answer cannot grow an
/// undocumented field. `allOf` parts are closed at the `allOf` itself.
fn close(schema: &mut Value, in_all_of: bool) {
    match schema {
        Value::Object(map) => {
            let closes =
                (map.contains_key("properties") && !in_all_of) || map.contains_key("allOf");
            if closes && !map.contains_key("additionalProperties") {
                map.insert("unevaluatedProperties".into(), Value::Bool(false));
            }
            for (key, child) in map.iter_mut() {
                close(child, key == "allOf");
            }
        }
        Value::Array(items) => {
            for item in items {
                close(item, in_all_of);
            }
        }
        _ => {}
    }
}

impl Contract {
    fn new(doc: Value) -> Contract {
        Contract {
            doc,
            seen: RefCell::new(BTreeSet::new()),
        }
    }

    fn operations(&self) -> BTreeSet<(String, String)> {
        let mut all = BTreeSet::new();
        for (path, item) in self.doc["paths"].as_object().expect("paths") {
            for method in item.as_object().expect("a path item").keys() {
                all.insert((method.to_uppercase(), path.clone()));
            }
        }
        all
    }

    /// Insists that `status` and `body` are what the document says
    /// `method path` answers.
    fn check(&self, method: &str, path: &str, status: u16, body: &Value) {
        let operation = &self.doc["paths"][path][method.to_lowercase()];
        assert!(operation.is_object(), "{method} {path} is not documented");
        let response = &operation["responses"][status.to_string()];
        assert!(
            response.is_object(),
            "{method} {path} answered {status}, which the document does not list: {body}"
        );
        let mut schema = response["content"]["application/json"]["schema"].clone();
        assert!(
            schema.is_object(),
            "{method} {path} {status} has no JSON schema"
        );
        let mut components = self.doc["components"].clone();
        close(&mut components, false);
        close(&mut schema, false);
        if let Value::Object(map) = &mut schema {
            map.insert("components".into(), components);
        }
        let validator = jsonschema::validator_for(&schema)
            .unwrap_or_else(|e| panic!("{method} {path} {status}: a bad schema: {e}"));
        let errors: Vec<String> = validator
            .iter_errors(body)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        assert!(
            errors.is_empty(),
            "{method} {path} {status} does not match its schema:\n{}\nbody: {body:#}",
            errors.join("\n")
        );
        self.seen
            .borrow_mut()
            .insert((method.to_owned(), path.to_owned()));
    }
}

/// Calls the server and checks the answer against the document.
fn call(
    s: &Server,
    contract: &Contract,
    (method, template, path): (&str, &str, &str),
    key: Option<&str>,
    body: Option<Value>,
    expected: u16,
) -> Value {
    let (status, answer) = s.call(method, path, key, body.as_ref());
    assert_eq!(status, expected, "{method} {path}: {answer}");
    contract.check(method, template, status, &answer);
    answer
}

#[test]
fn every_operation_answers_as_the_openapi_document_says() {
    let s = Server::start();
    let key = Some(s.keys.0.as_str());
    let (status, doc) = s.call("GET", "/v1/openapi.json", None, None);
    assert_eq!(status, 200);
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(doc["info"]["title"], "klar API");
    assert_eq!(
        doc["components"]["securitySchemes"]["api_key"]["scheme"],
        "bearer"
    );
    // `klar openapi` prints the same document.
    let printed: Value = serde_json::from_str(&s.ws.ok(&["openapi"])).expect("JSON");
    assert_eq!(printed, doc);
    let c = Contract::new(doc);
    for (method, path) in c.operations() {
        let op = &c.doc["paths"][&path][method.to_lowercase()];
        assert!(op["summary"].is_string(), "{method} {path} has no summary");
        if path.starts_with("/v1/") {
            // Each operation names the scope it needs; admin ones document 403.
            // Settings and purposes are read with any key, changed with an admin's.
            let admin = ["/v1/keys", "/v1/webhook", "/v1/policy", "/v1/texts"]
                .iter()
                .any(|p| path.starts_with(p))
                || (method != "GET"
                    && ["/v1/tenant", "/v1/purposes"]
                        .iter()
                        .any(|p| path.starts_with(p)));
            let scope = if admin { "admin" } else { "crm" };
            assert_eq!(
                op["security"],
                json!([{"api_key": [scope]}]),
                "{method} {path}"
            );
            assert!(
                op["responses"]["401"].is_object(),
                "{method} {path} does not document 401"
            );
            assert_eq!(
                op["responses"]["403"].is_object(),
                admin,
                "{method} {path}: 403 documented exactly for admin operations"
            );
        }
    }

    call(&s, &c, ("GET", "/health", "/health"), None, None, 200);

    // Contacts.
    let contact = json!({"first_name": "Jürgen", "last_name": "Groß", "email": "j.gross@example.de",
                         "owner": "jk", "source": "web", "created_at": "2026-10-01",
                         "attributes": {"fair": "CeBIT"}});
    let put = ("PUT", "/v1/contacts/{id}", "/v1/contacts/C1");
    call(&s, &c, put, key, Some(contact.clone()), 200);
    call(&s, &c, put, None, Some(contact.clone()), 401);
    call(&s, &c, put, key, Some(json!({"owner": ""})), 400);
    let batch = ("POST", "/v1/contacts", "/v1/contacts");
    let good = json!({"contacts": [{"id": "C2", "owner": "jk", "email": "b@example.de"},
                                   {"id": "C3", "owner": "jk", "language": "en"}]});
    call(&s, &c, batch, key, Some(good), 200);
    let bad = json!({"contacts": [{"id": "C4", "owner": "jk", "email": "nope"}]});
    let answer = call(&s, &c, batch, key, Some(bad), 400);
    assert_eq!(answer["error"]["code"], "invalid_items");

    let use_of = ("GET", "/v1/contacts/{id}/use", "/v1/contacts/C1/use");
    let answer = call(&s, &c, use_of, key, None, 200);
    assert_eq!(answer["basis"], Value::Null);
    call(
        &s,
        &c,
        (
            "GET",
            "/v1/contacts/{id}/use",
            "/v1/contacts/C1/use?purpose=nope",
        ),
        key,
        None,
        404,
    );
    let list = ("POST", "/v1/use", "/v1/use");
    let answer = call(
        &s,
        &c,
        list,
        key,
        Some(json!({"contacts": ["C1", "nobody"]})),
        200,
    );
    assert_eq!(
        answer["contacts"][1]["reason"], "unknown-contact",
        "{answer}"
    );
    call(&s, &c, list, key, Some(json!({"contacts": []})), 400);
    call(
        &s,
        &c,
        list,
        key,
        Some(json!({"contacts": ["C1"], "purpose": "nope"})),
        404,
    );

    // A tick puts requests in the outbox.
    s.ws.ok(&["tick", "--now", NOW]);
    let outbox = ("GET", "/v1/outbox", "/v1/outbox?limit=2");
    let page = call(&s, &c, outbox, key, None, 200);
    let first = page["actions"][0]["id"]
        .as_str()
        .expect("an action")
        .to_owned();
    let second = page["actions"][1]["id"]
        .as_str()
        .expect("two actions")
        .to_owned();
    call(
        &s,
        &c,
        ("GET", "/v1/outbox", "/v1/outbox?limit=many"),
        key,
        None,
        400,
    );
    let ack = ("POST", "/v1/outbox/ack", "/v1/outbox/ack");
    let answer = call(&s, &c, ack, key, Some(json!({"ids": [first]})), 200);
    assert_eq!(answer["acknowledged"], 1);
    let redeliver = ("POST", "/v1/outbox/redeliver", "/v1/outbox/redeliver");
    call(&s, &c, redeliver, key, Some(json!({})), 200);
    call(&s, &c, redeliver, key, Some(json!({"id": "acme-1-0"})), 404);

    // Events, with an Idempotency-Key.
    let events = ("POST", "/v1/contacts/{id}/events", "/v1/contacts/C1/events");
    call(&s, &c, events, key, Some(json!({"type": "used"})), 200);
    let no_case = json!({"type": "used", "purpose": "nope"});
    let answer = call(&s, &c, events, key, Some(no_case), 409);
    assert!(answer["results"][0]["rejected"].is_string(), "{answer}");
    call(&s, &c, events, key, Some(json!({"type": "smile"})), 400);
    let (status, _) = s.raw(
        "POST",
        "/v1/contacts/C1/events",
        key,
        Some(json!({"type": "used"}).to_string()),
        &[("Idempotency-Key", "k1")],
    );
    assert_eq!(status, 200);
    let (status, text) = s.raw(
        "POST",
        "/v1/contacts/C1/events",
        key,
        Some(json!({"type": "data-changed"}).to_string()),
        &[("Idempotency-Key", "k1")],
    );
    c.check(
        "POST",
        "/v1/contacts/{id}/events",
        status,
        &serde_json::from_str(&text).expect("JSON"),
    );
    assert_eq!(status, 422);
    let nobody = ("POST", "/v1/contacts/{id}/events", "/v1/contacts/C9/events");
    call(&s, &c, nobody, key, Some(json!({"type": "used"})), 404);

    // Cases, cockpit, proof.
    let cases = ("GET", "/v1/cases", "/v1/cases?limit=2&band=to-clarify");
    let page = call(&s, &c, cases, key, None, 200);
    let next = page["next"].as_str().expect("a second page").to_owned();
    let rest = format!("/v1/cases?limit=2&band=to-clarify&after={next}");
    let last = call(&s, &c, ("GET", "/v1/cases", &rest), key, None, 200);
    let contacts = |p: &Value| -> Vec<String> {
        p["cases"]
            .as_array()
            .map(|all| all.iter().map(|c| c["contact"].to_string()).collect())
            .unwrap_or_default()
    };
    assert_eq!(
        [contacts(&page), contacts(&last)].concat(),
        ["\"C1\"", "\"C2\"", "\"C3\""],
        "two pages hold every case once, in order"
    );
    assert_eq!(last["next"], Value::Null, "the last page has no cursor");
    call(
        &s,
        &c,
        ("GET", "/v1/cases", "/v1/cases?after=zz"),
        key,
        None,
        400,
    );
    call(&s, &c, ("GET", "/v1/status", "/v1/status"), key, None, 200);
    let evidence = (
        "GET",
        "/v1/contacts/{id}/evidence",
        "/v1/contacts/C1/evidence",
    );
    let bundle = call(&s, &c, evidence, key, None, 200);
    assert_eq!(bundle["format"], "klar-evidence-bundle/1");
    let missing = (
        "GET",
        "/v1/contacts/{id}/evidence",
        "/v1/contacts/C9/evidence",
    );
    call(&s, &c, missing, key, None, 404);
    let explain = (
        "GET",
        "/v1/contacts/{id}/explanation",
        "/v1/contacts/C1/explanation",
    );
    call(&s, &c, explain, key, None, 200);

    // Policies: a bad one and one failing its tests change nothing; a good one
    // with passing tests becomes version 1.
    let versions = ("GET", "/v1/policy/versions", "/v1/policy/versions");
    let answer = call(&s, &c, versions, key, None, 200);
    assert_eq!(answer, json!({"active": null, "versions": []}));
    let upload = ("POST", "/v1/policy/versions", "/v1/policy/versions");
    let broken = json!({"source": "fn reminder_days( {", "author": "dpo", "message": "typo"});
    let answer = call(&s, &c, upload, key, Some(broken), 422);
    assert_eq!(answer["error"]["code"], "invalid_policy");
    assert_eq!(answer["problems"][0]["line"], 1, "{answer}");
    let failing = json!({"source": B2B, "author": "dpo", "message": "b2b",
                         "tests": B2B_TESTS.replacen("state = \"", "state = \"x", 1)});
    let answer = call(&s, &c, upload, key, Some(failing), 422);
    assert_eq!(answer["error"]["code"], "failing_tests", "{answer}");
    assert_eq!(answer["tests"]["failed"], 1, "{answer}");
    let malformed = json!({"source": B2B, "author": "dpo", "message": "b2b", "tests": "[[test]\n"});
    // Tests that cannot be read are refused on their meaning, like a policy
    // with errors (the JSON itself is fine).
    let answer = call(&s, &c, upload, key, Some(malformed), 422);
    assert_eq!(answer["error"]["code"], "invalid_tests", "{answer}");
    let good = json!({"source": B2B, "author": "dpo", "message": "B2B rules", "tests": B2B_TESTS});
    let answer = call(&s, &c, upload, key, Some(good), 201);
    assert_eq!(answer["version"]["version"], 1);
    assert_eq!(answer["tests"]["failed"], 0);
    let answer = call(&s, &c, versions, key, None, 200);
    assert_eq!(answer["active"], 1);
    let one = (
        "GET",
        "/v1/policy/versions/{version}",
        "/v1/policy/versions/1",
    );
    let answer = call(&s, &c, one, key, None, 200);
    assert_eq!(answer["source"], B2B);
    assert_eq!(answer["author"], "dpo");
    let none = (
        "GET",
        "/v1/policy/versions/{version}",
        "/v1/policy/versions/7",
    );
    call(&s, &c, none, key, None, 404);
    // The other tenant's key sees none of it.
    let other = Some(s.keys.1.as_str());
    let (_, theirs) = s.call("GET", "/v1/policy/versions", other, None);
    assert_eq!(theirs["versions"], json!([]));
    for path in [
        "/v1/policy/versions/1",
        "/v1/contacts/C1/evidence",
        "/v1/contacts/C1/explanation",
        "/v1/contacts/C1/use",
    ] {
        let (status, _) = s.call("GET", path, other, None);
        assert_eq!(status, 404, "{path} with another tenant's key");
    }
    let (_, page) = s.call("GET", "/v1/outbox", other, None);
    assert_eq!(page["actions"], json!([]));
    let ids = json!({ "ids": [second] });
    let (_, acked) = s.call("POST", "/v1/outbox/ack", other, Some(&ids));
    assert_eq!(
        acked["acknowledged"], 0,
        "another tenant cannot acknowledge"
    );
    let (_, acked) = s.call("POST", "/v1/outbox/ack", key, Some(&ids));
    assert_eq!(acked["acknowledged"], 1);

    let simulate = ("POST", "/v1/policy/simulate", "/v1/policy/simulate");
    let forecast = call(
        &s,
        &c,
        simulate,
        key,
        Some(json!({"days": 21, "seed": 7})),
        200,
    );
    assert_eq!(forecast["policy"], "v1");
    assert_eq!(forecast["weeks"].as_array().map(Vec::len), Some(3));
    call(
        &s,
        &c,
        simulate,
        key,
        Some(json!({"days": 7, "source": "fn ("})),
        422,
    );
    call(&s, &c, simulate, key, Some(json!({"days": 0})), 400);
    // The dry runs changed nothing live.
    let answer = call(&s, &c, versions, key, None, 200);
    assert_eq!(answer["versions"].as_array().map(Vec::len), Some(1));

    // Setup with a key: another key (used, then revoked), and the webhook.
    let keys = ("GET", "/v1/keys", "/v1/keys");
    let answer = call(&s, &c, keys, key, None, 200);
    assert_eq!(answer["keys"].as_array().map(Vec::len), Some(1));
    let create = ("POST", "/v1/keys", "/v1/keys");
    let created = call(&s, &c, create, key, Some(json!({"name": "crm-2"})), 201);
    call(&s, &c, create, key, Some(json!({"name": " "})), 400);
    let new_key = created["key"].as_str().expect("a key").to_owned();
    let (status, _) = s.call("GET", "/v1/status", Some(&new_key), None);
    assert_eq!(status, 200, "the new key works");
    let id = created["id"].as_str().expect("an id");
    let revoke = ("DELETE", "/v1/keys/{id}", &*format!("/v1/keys/{id}"));
    call(&s, &c, revoke, key, None, 200);
    call(&s, &c, revoke, key, None, 404);
    let (status, _) = s.call("GET", "/v1/status", Some(&new_key), None);
    assert_eq!(status, 401, "a revoked key stops at once");
    let (status, _) = s.call("DELETE", &format!("/v1/keys/{id}"), other, None);
    assert_eq!(
        status, 404,
        "another tenant cannot touch this tenant's keys"
    );

    let hook = ("GET", "/v1/webhook", "/v1/webhook");
    call(&s, &c, hook, key, None, 404);
    let set = ("PUT", "/v1/webhook", "/v1/webhook");
    call(
        &s,
        &c,
        set,
        key,
        Some(json!({"url": "ftp://crm.example"})),
        400,
    );
    // A private address is refused (webhooks go to public addresses only).
    call(
        &s,
        &c,
        set,
        key,
        Some(json!({"url": "http://127.0.0.1:9/klar"})),
        422,
    );
    let answer = call(
        &s,
        &c,
        set,
        key,
        Some(json!({"url": "http://93.184.215.14:9/klar"})),
        200,
    );
    assert!(
        answer["secret"]
            .as_str()
            .is_some_and(|s| s.starts_with("whsec_"))
    );
    let answer = call(&s, &c, hook, key, None, 200);
    assert_eq!(answer, json!({"url": "http://93.184.215.14:9/klar"}));
    let (status, _) = s.call("GET", "/v1/webhook", other, None);
    assert_eq!(status, 404, "another tenant sees no webhook");
    let remove = ("DELETE", "/v1/webhook", "/v1/webhook");
    call(&s, &c, remove, key, None, 200);
    call(&s, &c, remove, key, None, 404);

    // Consent texts: the requests above wrote klar's standard ones (German
    // and English, version 1, no author); a text with a mistake is refused
    // with its place; a good one becomes version 2, then 3, and they compare.
    let texts = ("GET", "/v1/texts", "/v1/texts");
    let answer = call(&s, &c, texts, key, None, 200);
    assert_eq!(
        answer["texts"].as_array().map(Vec::len),
        Some(2),
        "{answer}"
    );
    assert_eq!(answer["texts"][0]["author"], Value::Null);
    call(
        &s,
        &c,
        ("GET", "/v1/texts", "/v1/texts?purpose=a&purpose=b"),
        key,
        None,
        400,
    );
    let put = (
        "PUT",
        "/v1/texts/{purpose}/{language}",
        "/v1/texts/contact-data/de",
    );
    let broken = json!({"text": "Ich, {firma}, willige ein.", "author": "dpo", "message": "m"});
    let answer = call(&s, &c, put, key, Some(broken), 422);
    assert_eq!(answer["error"]["code"], "invalid_text");
    assert_eq!(
        (
            answer["mistakes"][0]["line"].clone(),
            answer["mistakes"][0]["column"].clone()
        ),
        (json!(1), json!(6))
    );
    let blank = json!({"text": " \n", "author": "dpo", "message": "m"});
    assert_eq!(
        call(&s, &c, put, key, Some(blank), 422)["error"]["code"],
        "invalid_text"
    );
    let nobody = json!({"text": "T", "author": " ", "message": "m"});
    call(&s, &c, put, key, Some(nobody), 400);
    let unknown = ("PUT", "/v1/texts/{purpose}/{language}", "/v1/texts/nope/de");
    call(
        &s,
        &c,
        unknown,
        key,
        Some(json!({"text": "T", "author": "dpo", "message": "m"})),
        404,
    );
    let v1 =
        json!({"text": "Ich willige ein, dass {company} …", "author": "dpo", "message": "erste"});
    let answer = call(&s, &c, put, key, Some(v1), 201);
    assert_eq!(answer["body"], "Ich willige ein, dass Müller GmbH …");
    let v2 = json!({"text": "Ich willige ein, dass {company} schreibt.", "author": "dpo", "message": "zweite"});
    assert_eq!(call(&s, &c, put, key, Some(v2), 201)["version"], 3);
    let show = (
        "GET",
        "/v1/texts/{purpose}/{language}",
        "/v1/texts/contact-data/de?version=2",
    );
    assert_eq!(call(&s, &c, show, key, None, 200)["message"], "erste");
    let nine = (
        "GET",
        "/v1/texts/{purpose}/{language}",
        "/v1/texts/contact-data/de?version=9",
    );
    call(&s, &c, nine, key, None, 404);
    let bad = (
        "GET",
        "/v1/texts/{purpose}/{language}",
        "/v1/texts/contact-data/de?version=x",
    );
    call(&s, &c, bad, key, None, 400);
    let diff = (
        "GET",
        "/v1/texts/{purpose}/{language}/diff",
        "/v1/texts/contact-data/de/diff?from=2&to=3",
    );
    let answer = call(&s, &c, diff, key, None, 200);
    assert!(
        answer["diff"]
            .as_str()
            .is_some_and(|d| d.contains("+Ich willige ein, dass Müller GmbH schreibt.")),
        "{answer}"
    );
    let diff_bad = (
        "GET",
        "/v1/texts/{purpose}/{language}/diff",
        "/v1/texts/contact-data/de/diff?from=1",
    );
    call(&s, &c, diff_bad, key, None, 400);
    let diff_none = (
        "GET",
        "/v1/texts/{purpose}/{language}/diff",
        "/v1/texts/contact-data/de/diff?from=1&to=7",
    );
    call(&s, &c, diff_none, key, None, 404);

    // The tenant's settings and purposes.
    let tenant = ("GET", "/v1/tenant", "/v1/tenant");
    assert_eq!(call(&s, &c, tenant, key, None, 200)["name"], "Müller GmbH");
    let patch = ("PATCH", "/v1/tenant", "/v1/tenant");
    let change = json!({"default_owner": "vertrieb", "address": "Königstraße 1\n70173 Stuttgart",
                        "imprint_url": "https://mueller.example/impressum", "privacy_url": null,
                        "region": "DE-BW", "closure_days": ["12-24", "12-31", "2027-05-07"]});
    let answer = call(&s, &c, patch, key, Some(change), 200);
    assert_eq!(answer["default_owner"], "vertrieb");
    assert_eq!(answer["legal"]["address"], "Königstraße 1\n70173 Stuttgart");
    assert_eq!(
        answer["closure_days"],
        json!(["12-24", "12-31", "2027-05-07"])
    );
    call(
        &s,
        &c,
        patch,
        key,
        Some(json!({"closure_days": ["2027-02-30"]})),
        400,
    );
    call(
        &s,
        &c,
        patch,
        key,
        Some(json!({"timezone": "Mars/Olympus"})),
        400,
    );
    call(
        &s,
        &c,
        patch,
        key,
        Some(json!({"imprint_url": "ftp://x"})),
        400,
    );
    let purposes = ("GET", "/v1/purposes", "/v1/purposes");
    let answer = call(&s, &c, purposes, key, None, 200);
    assert_eq!(answer["purposes"][0]["id"], "contact-data", "{answer}");
    let put = ("PUT", "/v1/purposes/{purpose}", "/v1/purposes/events");
    let body = json!({"description": "Einladungen zu Messen"});
    let added = call(&s, &c, put, key, Some(body.clone()), 201);
    assert_eq!(
        (added["cases"].as_i64(), added["enforcement"].as_str()),
        (Some(0), Some("restrictive"))
    );
    let changed = call(
        &s,
        &c,
        put,
        key,
        Some(json!({"description": "Einladungen", "enforcement": "non-restrictive"})),
        200,
    );
    assert_eq!(changed["enforcement"], "non-restrictive");
    call(&s, &c, put, key, Some(json!({"description": " "})), 400);
    let bad_id = ("PUT", "/v1/purposes/{purpose}", "/v1/purposes/Bad_Id");
    call(&s, &c, bad_id, key, Some(body.clone()), 400);
    let audited: Vec<String> = {
        let sql = s.ws.sql();
        let mut stmt = sql
            .prepare("SELECT kind FROM audit_log WHERE purpose = 'events' ORDER BY seq")
            .expect("prepare");
        stmt.query_map((), |r| r.get(0))
            .expect("query")
            .collect::<Result<_, _>>()
            .expect("rows")
    };
    assert_eq!(
        audited,
        ["purpose-added", "purpose-changed", "purpose-changed"],
        "the description, then the enforcement"
    );
    let remove = ("DELETE", "/v1/purposes/{purpose}", "/v1/purposes/events");
    call(&s, &c, remove, key, None, 200);
    call(&s, &c, remove, key, None, 404);
    let in_use = (
        "DELETE",
        "/v1/purposes/{purpose}",
        "/v1/purposes/contact-data",
    );
    assert_eq!(
        call(&s, &c, in_use, key, None, 409)["error"]["code"],
        "purpose_in_use"
    );

    let missing: Vec<_> = c
        .operations()
        .difference(&c.seen.borrow())
        .cloned()
        .collect();
    assert!(
        missing.is_empty(),
        "operations in the document that this test never called: {missing:?}"
    );
}
