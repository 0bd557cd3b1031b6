//! Concurrent clients of the real server: requests that repeat one
//! `Idempotency-Key` apply their event once and all get the first answer,
//! and concurrent events for one case step one after the other.

mod support;

use std::sync::{Arc, Barrier};

use serde_json::{Value, json};
use support::server::Server;

const CLIENTS: usize = 20;

fn hold(on: bool) -> Value {
    json!({
        "type": if on { "hold-on" } else { "hold-off" },
        "purpose": "contact-data",
        "by": "legal",
        "reason": "Rechtsstreit"
    })
}

/// Fires `CLIENTS` identical POSTs at once; their statuses and bodies.
fn at_once(server: &Arc<Server>, body: &Value, key: Option<&str>) -> Vec<(u16, String)> {
    let barrier = Arc::new(Barrier::new(CLIENTS));
    let threads: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let (server, barrier) = (Arc::clone(server), Arc::clone(&barrier));
            let (body, key) = (body.to_string(), key.map(str::to_owned));
            std::thread::spawn(move || {
                let headers: Vec<(&str, &str)> = key
                    .as_deref()
                    .map(|k| vec![("Idempotency-Key", k)])
                    .unwrap_or_default();
                barrier.wait();
                server.raw(
                    "POST",
                    "/v1/contacts/C1/events",
                    Some(&server.keys.0),
                    Some(body),
                    &headers,
                )
            })
        })
        .collect();
    threads
        .into_iter()
        .map(|t| t.join().expect("a client thread"))
        .collect()
}

/// How many legal-hold steps the audit log holds for C1.
fn hold_steps(server: &Server) -> usize {
    let out = server.ws.ok(&["audit", "show", "acme", "C1", "--json"]);
    let rows: Value = serde_json::from_str(&out).expect("json");
    rows.as_array()
        .into_iter()
        .flatten()
        .filter(|r| {
            r["summary"]
                .as_str()
                .is_some_and(|s| s.contains("legal hold"))
        })
        .count()
}

fn server_with_contact() -> Arc<Server> {
    let server = Server::start();
    let (status, body) = server.call(
        "PUT",
        "/v1/contacts/C1",
        Some(&server.keys.0),
        Some(&json!({"first_name": "Jürgen", "last_name": "Groß", "email": "j@example.de", "owner": "jk"})),
    );
    assert!(status == 200 || status == 201, "{status} {body}");
    Arc::new(server)
}

#[test]
fn twenty_concurrent_retries_with_one_key_apply_the_event_once() {
    let server = server_with_contact();
    for round in 0..4 {
        let on = round % 2 == 0;
        let key = format!("hold-{round}");
        let answers = at_once(&server, &hold(on), Some(&key));
        let first = &answers[0];
        for (status, body) in &answers {
            assert_eq!(*status, 200, "round {round}: {body}");
            // Every client gets the same answer: the first one's.
            assert_eq!(body, &first.1, "round {round}");
        }
        let answer: Value = serde_json::from_str(&first.1).expect("json");
        assert_eq!(answer["results"][0]["purpose"], "contact-data", "{answer}");
        assert!(answer["results"][0]["rejected"].is_null(), "{answer}");
        // One step per round in the audit log, not one per client.
        assert_eq!(hold_steps(&server), round + 1, "round {round}");
    }
}

#[test]
fn concurrent_events_without_a_key_step_one_after_the_other() {
    let server = server_with_contact();
    let answers = at_once(&server, &hold(true), None);
    let placed = answers.iter().filter(|(s, _)| *s == 200).count();
    let refused: Vec<&String> = answers
        .iter()
        .filter(|(s, _)| *s == 409)
        .map(|(_, b)| b)
        .collect();
    assert_eq!(placed, 1, "{answers:?}");
    assert_eq!(refused.len(), CLIENTS - 1, "{answers:?}");
    for body in refused {
        assert!(body.contains("already on legal hold"), "{body}");
    }
    assert_eq!(hold_steps(&server), 1);
}
