//! Hostile and sloppy input, through the real binary and server: escape
//! sequences that would reach an operator's terminal, control characters in
//! names, authors and messages, and an empty policy.

mod support;

use serde_json::json;
use support::server::{NOW, Server};
use support::*;

const ESC: &str = "\u{1b}[2J\u{1b}[31mowned";

#[test]
fn names_authors_and_messages_refuse_control_characters() {
    let s = Server::start();
    let admin = s.keys.0.as_str();

    let out =
        s.ws.run(&["apikey", "create", "acme", "--name", ESC, "--now", NOW]);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    assert!(
        stderr(&out).contains("no control characters"),
        "{}",
        stderr(&out)
    );
    let (status, body) = s.call("POST", "/v1/keys", Some(admin), Some(&json!({"name": ESC})));
    assert_eq!(status, 400, "{body}");
    let (status, body) = s.call(
        "POST",
        "/v1/keys",
        Some(admin),
        Some(&json!({"name": "x".repeat(101)})),
    );
    assert_eq!(status, 400, "{body}");

    s.ws.write("ok.rhai", "fn answer_days(contact) { 10 }\n");
    for (author, message) in [(ESC, "fine"), ("dpo", "two\nlines"), ("", "no author")] {
        let out = s.ws.run(&[
            "policy",
            "set",
            "acme",
            "ok.rhai",
            "--author",
            author,
            "--message",
            message,
            "--untested",
            "--reason",
            "test",
            "--now",
            NOW,
        ]);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{author:?} {message:?}: {}",
            stdout(&out)
        );
        assert!(stdout(&out).contains("klar: refused:"), "{}", stdout(&out));
    }
    let (status, body) = s.call(
        "POST",
        "/v1/policy/versions",
        Some(admin),
        Some(
            &json!({"source": "fn answer_days(contact) { 10 }", "author": ESC, "message": "m",
                     "untested_reason": "test"}),
        ),
    );
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["code"], "invalid_version", "{body}");
    let log = s.ws.ok(&["policy", "log", "acme"]);
    assert!(
        log.contains("no policy of its own"),
        "nothing was stored: {log}"
    );

    // Who decided and why, through the API and the CLI alike.
    let (status, _) = s.call(
        "PUT",
        "/v1/contacts/C1",
        Some(admin),
        Some(&json!({"owner": "jk"})),
    );
    assert_eq!(status, 200);
    let (status, body) = s.call(
        "POST",
        "/v1/contacts/C1/events",
        Some(admin),
        Some(&json!({"type": "hold-on", "by": ESC, "reason": "dispute"})),
    );
    assert_eq!(status, 400, "{body}");
    for args in [
        [
            "hold", "acme", "C1", "on", "--by", ESC, "--reason", "dispute",
        ],
        [
            "hold", "acme", "C1", "on", "--by", "legal", "--reason", "a\nb",
        ],
    ] {
        let out = s.ws.run(&[&args[..], &["--now", NOW]].concat());
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stdout(&out));
        assert!(
            stderr(&out).contains("control character"),
            "{}",
            stderr(&out)
        );
    }
    let audit = s.ws.ok(&["audit", "show", "acme", "C1"]);
    assert!(
        !audit.contains("legal hold on"),
        "nothing was recorded: {audit}"
    );
}

#[test]
fn an_empty_policy_is_refused() {
    let s = Server::start();
    s.ws.write("empty.rhai", " \n\n");
    let out = s.ws.run(&[
        "policy",
        "set",
        "acme",
        "empty.rhai",
        "--author",
        "dpo",
        "--untested",
        "--reason",
        "t",
        "--now",
        NOW,
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("empty"),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    let (status, body) = s.call(
        "POST",
        "/v1/policy/versions",
        Some(s.keys.0.as_str()),
        Some(&json!({"source": "", "author": "dpo", "message": "m"})),
    );
    assert_eq!(status, 422, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("empty")),
        "{body}"
    );
}

/// Text stored before these checks (or by an older klar) is printed with
/// its control characters escaped, never obeyed by the terminal.
#[test]
fn what_klar_prints_escapes_control_characters_of_older_data() {
    let s = Server::start();
    s.ws.write("ok.rhai", "fn answer_days(contact) { 10 }\n");
    s.ws.ok(&[
        "policy",
        "set",
        "acme",
        "ok.rhai",
        "--author",
        "dpo",
        "--message",
        "m",
        "--untested",
        "--reason",
        "t",
        "--now",
        NOW,
    ]);
    s.call(
        "PUT",
        "/v1/contacts/C1",
        Some(s.keys.0.as_str()),
        Some(&json!({"owner": "jk"})),
    );
    let sql = s.ws.sql();
    sql.execute("UPDATE api_keys SET name = ?1", [ESC])
        .expect("tamper");
    sql.execute(
        "UPDATE policy_versions SET author = ?1, message = ?1",
        [ESC],
    )
    .expect("tamper");
    // An assignee from an older klar, and an error a plugin wrote.
    sql.execute(
        "UPDATE cases SET body = json_set(body, '$.assigned_to', ?1), needs_attention = ?1",
        [ESC],
    )
    .expect("tamper");
    let runs: [&[&str]; 4] = [
        &["apikey", "list", "acme"],
        &["policy", "log", "acme"],
        &["cases", "acme", "--now", NOW],
        &["status", "acme", "--now", NOW],
    ];
    for args in runs {
        let out = s.ws.ok(args);
        assert!(
            !out.contains('\u{1b}'),
            "{args:?} printed a raw ESC: {out:?}"
        );
        assert!(out.contains("\\u{1b}[2J"), "{args:?}: {out}");
    }
}

/// A batch of 10,000 contacts as a CRM really sends them: names, addresses,
/// owner, source, language and a few attributes (about 2.7 MB).
fn realistic_batch(n: usize) -> String {
    let items: Vec<serde_json::Value> = (0..n)
        .map(|i| {
            json!({
                "id": format!("0035g00000{i:08}AAA"),
                "first_name": "Maximiliane-Friederike",
                "last_name": format!("Müller-Lüdenscheidt {i}"),
                "email": format!("maximiliane.mueller-luedenscheidt.{i}@beispiel-unternehmen.de"),
                "phone": "+49 711 123456-78",
                "owner": "jana.kuehn@acme.example",
                "source": "trade-fair-stuttgart-2026",
                "language": "de-DE",
                "created_at": "2026-10-01T09:30:00Z",
                "attributes": {
                    "customer": "yes",
                    "segment": "Mittelstand Maschinenbau",
                    "region": "Baden-Württemberg",
                    "crm_owner_id": "0055g00000AbCdEfGH"
                }
            })
        })
        .collect();
    json!({ "contacts": items }).to_string()
}

#[test]
fn a_realistic_batch_of_10_000_contacts_fits_and_a_larger_body_gets_a_json_413() {
    let s = Server::start();
    let admin = s.keys.0.as_str();
    let body = realistic_batch(10_000);
    assert!(body.len() > 2_500_000, "{} bytes", body.len());
    let (status, answer) = s.raw("POST", "/v1/contacts", Some(admin), Some(body), &[]);
    assert_eq!(status, 200, "{}", &answer[..answer.len().min(300)]);

    // Announced larger than the limit: refused at once, in the API's format,
    // without waiting for a body that never comes.
    let mut stream =
        std::net::TcpStream::connect(s.url.trim_start_matches("http://")).expect("connects");
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .expect("timeout");
    use std::io::{Read, Write};
    write!(
        stream,
        "POST /v1/contacts HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {admin}\r\n\
         Content-Type: application/json\r\nContent-Length: 52428800\r\n\r\n0123456789"
    )
    .expect("writes");
    let started = std::time::Instant::now();
    let mut answer = vec![0; 4096];
    let n = stream
        .read(&mut answer)
        .expect("an answer before the timeout");
    let answer = String::from_utf8_lossy(&answer[..n]);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("payload_too_large"), "{answer}");
    assert!(started.elapsed() < std::time::Duration::from_secs(2));
}

/// Reads until the server closes the connection; how long that took, or
/// `None` if it was still open after `limit`.
fn closed_within(stream: &mut std::net::TcpStream, limit: std::time::Duration) -> Option<String> {
    use std::io::Read;
    stream.set_read_timeout(Some(limit)).expect("timeout");
    let mut seen = Vec::new();
    let mut buf = [0_u8; 1024];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return Some(String::from_utf8_lossy(&seen).into_owned()),
            Ok(n) => seen.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                return Some(String::from_utf8_lossy(&seen).into_owned());
            }
            Err(_) => return None,
        }
    }
}

#[test]
fn slow_clients_are_cut_off() {
    use std::io::Write;
    let s = Server::start_with(&[
        ("KLAR_HEADER_TIMEOUT_MS", "300"),
        ("KLAR_BODY_TIMEOUT_MS", "300"),
    ]);
    let addr = s.url.trim_start_matches("http://").to_owned();
    let limit = std::time::Duration::from_secs(5);

    // 100 connections that never finish their headers are all closed.
    let mut idle: Vec<std::net::TcpStream> = (0..100)
        .map(|_| {
            let mut stream = std::net::TcpStream::connect(&addr).expect("connects");
            stream
                .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n")
                .expect("writes");
            stream
        })
        .collect();
    for (i, stream) in idle.iter_mut().enumerate() {
        assert!(
            closed_within(stream, limit).is_some(),
            "connection {i} still open"
        );
    }

    // A connection that sends nothing at all, and a keep-alive connection
    // left idle after its answer, are closed too.
    let mut silent = std::net::TcpStream::connect(&addr).expect("connects");
    assert!(
        closed_within(&mut silent, limit).is_some(),
        "a silent connection stays open"
    );
    let mut kept = std::net::TcpStream::connect(&addr).expect("connects");
    kept.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("writes");
    let seen = closed_within(&mut kept, limit).expect("an idle keep-alive connection is closed");
    assert!(seen.starts_with("HTTP/1.1 200"), "{seen}");

    // A body that stops halfway gets 408 in the API's format.
    let mut slow = std::net::TcpStream::connect(&addr).expect("connects");
    write!(
        slow,
        "PUT /v1/contacts/C1 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"owner\"",
        s.keys.0
    )
    .expect("writes");
    let seen = closed_within(&mut slow, limit).unwrap_or_default();
    assert!(seen.starts_with("HTTP/1.1 408"), "{seen}");
    assert!(seen.contains("request_timeout"), "{seen}");

    // The server still answers.
    let (status, _) = s.call("GET", "/health", None, None);
    assert_eq!(status, 200);
}

#[test]
fn the_api_answers_in_its_own_format_and_headers() {
    let s = Server::start();
    let admin = s.keys.0.as_str();
    // Another Content-Type: 415.
    let (status, body) = s.raw(
        "PUT",
        "/v1/contacts/C1",
        Some(admin),
        Some("owner=jk".to_owned()),
        &[("Content-Type", "application/x-www-form-urlencoded")],
    );
    assert_eq!(status, 415, "{body}");
    assert!(body.contains("\"unsupported_media_type\""), "{body}");
    // A method the route does not have: 405 in JSON, with Allow.
    let (status, headers, body) = s.full("PATCH", "/v1/webhook", Some(admin), None, &[]);
    assert_eq!(status, 405, "{body}");
    let value: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(value["error"]["code"], "method_not_allowed");
    assert!(headers.iter().any(|(k, _)| k == "allow"), "{headers:?}");
    // A rejected query: JSON.
    let (status, body) = s.raw("GET", "/v1/outbox?after=x", Some(admin), None, &[]);
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("\"bad_request\""), "{body}");
    // A 401 names its scheme; answers carrying secrets are not cached.
    let (status, headers, _) = s.full("GET", "/v1/status", Some("klar_wrong"), None, &[]);
    assert_eq!(status, 401);
    let header = |headers: &[(String, String)], name: &str| {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(
        header(&headers, "www-authenticate").as_deref(),
        Some("Bearer realm=\"klar\"")
    );
    let (status, headers, _) = s.full(
        "POST",
        "/v1/keys",
        Some(admin),
        Some(json!({"name": "second"}).to_string()),
        &[],
    );
    assert_eq!(status, 201);
    assert_eq!(
        header(&headers, "cache-control").as_deref(),
        Some("no-store")
    );
}

#[test]
fn failed_authentications_are_throttled_per_address() {
    let s = Server::start();
    for n in 1..=20 {
        let (status, _) = s.call("GET", "/v1/status", Some(&format!("klar_guess{n}")), None);
        assert_eq!(status, 401, "attempt {n}");
    }
    let (status, headers, body) = s.full("GET", "/v1/status", Some("klar_guess21"), None, &[]);
    assert_eq!(status, 429, "{body}");
    assert!(body.contains("too_many_failed_authentications"), "{body}");
    let retry: u64 = headers
        .iter()
        .find(|(k, _)| k == "retry-after")
        .and_then(|(_, v)| v.parse().ok())
        .expect("a Retry-After in seconds");
    assert!((1..=60).contains(&retry), "{retry}");
    // The address stays blocked for the window, whatever key it sends.
    let (status, _) = s.call("GET", "/v1/status", Some(s.keys.0.as_str()), None);
    assert_eq!(status, 429);
    // A call without a key guesses nothing: it gets its 401, and /health
    // still answers.
    let (status, _) = s.call("GET", "/v1/status", None, None);
    assert_eq!(status, 401);
    let (status, _) = s.call("GET", "/health", None, None);
    assert_eq!(status, 200);
}

#[test]
fn contact_fields_have_limits_in_the_api_and_the_import() {
    let s = Server::start();
    let admin = s.keys.0.as_str();
    let base = json!({"first_name": "Jürgen", "last_name": "Groß", "owner": "jk"});
    let with = |field: &str, value: serde_json::Value| {
        let mut body = base.clone();
        body[field] = value;
        body
    };
    let many: serde_json::Map<String, serde_json::Value> = (0..100_000)
        .map(|i| (format!("a{i}"), json!("x")))
        .collect();
    for (body, needle) in [
        (
            with("owner", json!("o".repeat(1_000_000))),
            "owner is longer than 200",
        ),
        (
            with("first_name", json!(ESC)),
            "first_name contains a control character",
        ),
        (
            with("attributes", serde_json::Value::Object(many)),
            "100000 attributes",
        ),
        (
            with("attributes", json!({"note": "x".repeat(1_001)})),
            "attribute \"note\"",
        ),
        (with("language", json!("de;rm -rf")), "not a language tag"),
    ] {
        let (status, answer) = s.call("PUT", "/v1/contacts/C1", Some(admin), Some(&body));
        assert_eq!(status, 400, "{needle}: {answer}");
        let message = answer["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(needle), "{needle}: {message}");
    }
    let (status, _) = s.call("GET", "/v1/contacts/C1/use", Some(admin), None);
    assert_eq!(status, 404, "nothing was stored");

    // The import applies the same rules, with the line, and stores nothing.
    let long_owner = "o".repeat(201);
    s.ws.write(
        "contacts.csv",
        &format!(
            "external_id,first_name,last_name,email,phone,owner,source,created_at\n\
             C00001,Jürgen,Groß,,,jk,fair,2026-10-01\n\
             C00002,Anna,Schmidt,,,{long_owner},fair,2026-10-01\n\
             ../x,Anna,Schmidt,,,jk,fair,2026-10-01\n"
        ),
    );
    let out = s.ws.run(&["import", "acme", "contacts.csv", "--now", NOW]);
    assert!(!out.status.success());
    let said = format!("{}{}", stdout(&out), stderr(&out));
    assert!(
        said.contains("contacts.csv:3: owner is longer than 200"),
        "{said}"
    );
    assert!(
        said.contains("contacts.csv:4: external_id has 1 to 200"),
        "{said}"
    );
    let (status, _) = s.call("GET", "/v1/contacts/C00001/use", Some(admin), None);
    assert_eq!(status, 404, "nothing was imported");
}
