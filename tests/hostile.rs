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
    let sql = s.ws.sql();
    sql.execute("UPDATE api_keys SET name = ?1", [ESC])
        .expect("tamper");
    sql.execute(
        "UPDATE policy_versions SET author = ?1, message = ?1",
        [ESC],
    )
    .expect("tamper");
    for args in [["apikey", "list", "acme"], ["policy", "log", "acme"]] {
        let out = s.ws.ok(&args);
        assert!(
            !out.contains('\u{1b}'),
            "{args:?} printed a raw ESC: {out:?}"
        );
        assert!(out.contains("\\u{1b}[2J"), "{args:?}: {out}");
    }
}
