//! The team's cockpit through the real `klar serve` and plain HTTP, as a
//! browser without JavaScript uses it: sign-up from the one-time link,
//! sign-in, throttling, sign-out and session expiry under `--now`; an owner
//! working the queue in bulk; four eyes by identity; viewers who change
//! nothing; tenants that never see each other; CSRF; and the overview's
//! figures against `klar status --json`. (tests/browser.rs drives the same
//! pages in Chromium.)

mod support;

use serde_json::Value;
use support::cockpit::{self, PASSWORD, at};
use support::server::Server;
use support::smtp::{SmtpSink, mail_to, parse};
use support::*;

/// A person's browser without JavaScript: a cookie, and forms sent from the
/// server's own origin.
struct Person<'a> {
    server: &'a Server,
    cookie: Option<String>,
}

type Answer = (u16, Vec<(String, String)>, String);

fn header<'h>(answer: &'h Answer, name: &str) -> Option<&'h str> {
    answer
        .1
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

impl<'a> Person<'a> {
    fn new(server: &'a Server) -> Person<'a> {
        Person {
            server,
            cookie: None,
        }
    }

    fn agent() -> ureq::Agent {
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .build()
            .into()
    }

    fn keep_cookie(&mut self, answer: &Answer) {
        if let Some(set) = header(answer, "set-cookie")
            && let Some(pair) = set.split(';').next()
        {
            self.cookie = pair
                .split_once('=')
                .filter(|(_, v)| !v.is_empty())
                .map(|_| pair.to_owned());
        }
    }

    fn read(response: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Answer {
        let response = response.expect("the server answers");
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
            .collect();
        let body = response.into_body().read_to_string().unwrap_or_default();
        (status, headers, body)
    }

    fn get(&mut self, path: &str) -> Answer {
        let mut request = Person::agent().get(format!("{}{path}", self.server.url));
        if let Some(c) = &self.cookie {
            request = request.header("Cookie", c);
        }
        let answer = Person::read(request.call());
        self.keep_cookie(&answer);
        answer
    }

    /// A form as the page sends it (from our origin), fields in order.
    fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Answer {
        self.post_from(path, fields, &self.server.url.clone())
    }

    fn post_from(&mut self, path: &str, fields: &[(&str, &str)], origin: &str) -> Answer {
        let body = fields
            .iter()
            .map(|(k, v)| format!("{}={}", klar::percent_encode(k), klar::percent_encode(v)))
            .collect::<Vec<_>>()
            .join("&");
        let mut request = Person::agent()
            .post(format!("{}{path}", self.server.url))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .header("Origin", origin);
        if let Some(c) = &self.cookie {
            request = request.header("Cookie", c);
        }
        let answer = Person::read(request.send(body));
        self.keep_cookie(&answer);
        answer
    }

    fn sign_in(&mut self, tenant: &str, account: &str, password: &str) -> Answer {
        self.post(
            "/cockpit/login",
            &[
                ("tenant", tenant),
                ("account", account),
                ("password", password),
            ],
        )
    }

    /// The CSRF token of the forms on a page the person sees.
    fn csrf(&mut self) -> String {
        let (_, _, page) = self.get("/cockpit/settings");
        let start = page
            .find("name=\"csrf\" value=\"")
            .expect("a form with a token")
            + 19;
        page[start..start + 64].to_owned()
    }
}

/// The cockpit's two tenants with their people signed up (see
/// `support::cockpit::prepare`), served at day 15.
struct Fixture {
    server: Server,
}

impl Fixture {
    fn new() -> Fixture {
        Fixture::with_env(&[])
    }

    /// With these environment variables for the server.
    fn with_env(env: &[(&str, &str)]) -> Fixture {
        let (ws, links) = cockpit::prepare();
        let server = Server::launch_at(ws, env, &["--tick-seconds", "0"], &at(15));
        for link in links.values() {
            let mut p = Person::new(&server);
            let (status, _, _) = p.post(link, &[("password", PASSWORD), ("password2", PASSWORD)]);
            assert_eq!(status, 200, "sign-up through {link}");
        }
        Fixture { server }
    }

    fn signed_in(&self, tenant: &str, account: &str) -> Person<'_> {
        let mut p = Person::new(&self.server);
        let answer = p.sign_in(tenant, account, PASSWORD);
        assert_eq!(answer.0, 303, "{account} signs in: {}", answer.2);
        p
    }

    fn audit_count(&self, kind: &str) -> i64 {
        self.server
            .ws
            .sql()
            .query_row(
                "SELECT COUNT(*) FROM audit_log WHERE kind = ?1",
                [kind],
                |r| r.get(0),
            )
            .expect("count")
    }

    fn all_audit(&self) -> i64 {
        self.server
            .ws
            .sql()
            .query_row("SELECT COUNT(*) FROM audit_log", (), |r| r.get(0))
            .expect("count")
    }

    fn state(&self, tenant: &str, contact: &str) -> String {
        self.server
            .ws
            .sql()
            .query_row(
                "SELECT state FROM cases WHERE tenant = ?1 AND contact = ?2 AND purpose = 'contact-data'",
                [tenant, contact],
                |r| r.get(0),
            )
            .expect("the case")
    }
}

#[test]
fn sign_up_sign_in_throttle_sign_out_and_expiry() {
    let ws = Workspace::new(&[]);
    ws.ok(&[
        "tenant",
        "add",
        "acme",
        "--name",
        "Müller GmbH",
        "--now",
        &at(0),
    ]);
    ws.ok(&[
        "tenant",
        "add",
        "other",
        "--name",
        "Other AG",
        "--now",
        &at(0),
    ]);
    let out = ws.ok(&[
        "user",
        "add",
        "acme",
        "jk",
        "--name",
        "Jana Kühn",
        "--role",
        "owner",
        "--now",
        &at(0),
    ]);
    assert!(
        out.contains("acme: account jk (Jana Kühn) added with role(s) owner"),
        "{out}"
    );
    let link = out
        .lines()
        .find_map(|l| l.find("/cockpit/signup/").map(|i| l[i..].to_owned()))
        .expect("a sign-up link");
    let list = ws.ok(&["user", "list", "acme"]);
    assert!(list.contains("waiting for sign-up"), "{list}");
    // The link is valid for 72 hours: the server's clock is 71 h on.
    let server = Server::launch_at(
        ws,
        &[],
        &["--tick-seconds", "0"],
        &(day(0) + chrono::Duration::hours(71)).to_rfc3339(),
    );
    let mut p = Person::new(&server);
    let (status, _, page) = p.get(&link);
    assert_eq!(status, 200);
    assert!(
        page.contains("Jana Kühn") && page.contains("Passwort festlegen"),
        "{page}"
    );
    let (status, _, page) = p.post(&link, &[("password", "kurz"), ("password2", "kurz")]);
    assert_eq!(status, 422);
    assert!(page.contains("12 bis 256 Zeichen"), "{page}");
    let (status, _, page) = p.post(
        &link,
        &[
            ("password", PASSWORD),
            ("password2", "ein anderes Passwort"),
        ],
    );
    assert_eq!(status, 422);
    assert!(page.contains("stimmen nicht überein"), "{page}");
    let (status, _, page) = p.post(&link, &[("password", PASSWORD), ("password2", PASSWORD)]);
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Ihr Passwort ist gespeichert"));
    let (status, _, _) = p.post(&link, &[("password", PASSWORD), ("password2", PASSWORD)]);
    assert_eq!(status, 404, "a sign-up link works once");
    let stored: String = server
        .ws
        .sql()
        .query_row(
            "SELECT password_hash FROM accounts WHERE id = 'jk'",
            (),
            |r| r.get(0),
        )
        .expect("a hash");
    assert!(
        stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{stored}"
    );

    // A wrong password, then the right one.
    let wrong = p.sign_in("acme", "jk", "falsches Passwort!");
    assert_eq!(wrong.0, 401);
    assert!(wrong.2.contains("stimmen nicht"), "{}", wrong.2);
    assert!(p.cookie.is_none());
    let right = p.sign_in("acme", "jk", PASSWORD);
    assert_eq!(right.0, 303);
    assert_eq!(header(&right, "location"), Some("/cockpit/queue"));
    let cookie = header(&right, "set-cookie").expect("a session cookie");
    assert!(
        cookie.contains("HttpOnly")
            && cookie.contains("SameSite=Strict")
            && cookie.contains("Path=/cockpit"),
        "{cookie}"
    );
    assert!(
        !cookie.contains("Secure"),
        "plain http on loopback: {cookie}"
    );
    let (status, headers_page, page) = {
        let a = p.get("/cockpit/queue");
        (a.0, a.1.clone(), a.2)
    };
    assert_eq!(status, 200);
    assert!(page.contains("Jana Kühn"));
    let csp = headers_page
        .iter()
        .find(|(k, _)| k == "content-security-policy")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    assert!(
        csp.contains("default-src 'none'") && csp.contains("script-src 'self'"),
        "{csp}"
    );
    assert!(!csp.contains("unsafe-inline"), "{csp}");

    // Sign-out needs the form's token; then the session is over.
    let (status, _, _) = p.post("/cockpit/logout", &[]);
    assert_eq!(status, 403, "no token, no sign-out");
    let token = p.csrf();
    let kept = p.cookie.clone();
    let (status, headers_out, _) = p.post("/cockpit/logout", &[("csrf", &token)]);
    assert_eq!(status, 303);
    assert!(
        headers_out
            .iter()
            .any(|(k, v)| k == "set-cookie" && v.contains("Max-Age=0"))
    );
    p.cookie = kept;
    let (status, headers_after, _) = p.get("/cockpit/queue");
    assert_eq!(status, 303, "the old cookie is dead after sign-out");
    assert!(
        headers_after
            .iter()
            .any(|(k, v)| k == "location" && v.starts_with("/cockpit/login"))
    );

    // Five failures for one account block it, even for the right password.
    let mut q = Person::new(&server);
    for _ in 0..5 {
        assert_eq!(q.sign_in("acme", "jk", "falsch falsch falsch").0, 401);
    }
    let blocked = q.sign_in("acme", "jk", PASSWORD);
    assert_eq!(blocked.0, 429);
    assert!(blocked.2.contains("Zu viele"), "{}", blocked.2);
    assert!(header(&blocked, "retry-after").is_some());
    // An unknown account and an unknown tenant say the same as a wrong password.
    assert_eq!(q.sign_in("acme", "nobody", PASSWORD).0, 401);
    assert_eq!(q.sign_in("nope", "jk", PASSWORD).0, 401);
    let audited = |kind: &str| -> i64 {
        server
            .ws
            .sql()
            .query_row(
                "SELECT COUNT(*) FROM audit_log WHERE tenant = 'acme' AND kind = ?1",
                [kind],
                |r| r.get(0),
            )
            .expect("count")
    };
    assert_eq!(audited("sign-in"), 1);
    assert_eq!(audited("sign-in-failed"), 7, "1 + 5 for jk, 1 for nobody");
    assert_eq!(audited("sign-out"), 1);
    assert_eq!(audited("signed-up"), 1);
    drop(server);
}

#[test]
fn sessions_end_after_half_an_hour_idle_under_now() {
    let fx = Fixture::new();
    let mut p = fx.signed_in("acme", "jk");
    assert_eq!(p.get("/cockpit/queue").0, 200);
    let cookie = p.cookie.clone();
    let ws_path = fx.server.ws.path().to_owned();
    let db = fx.server.ws.db.clone();
    // The same database, served 31 minutes later: the session was idle too long.
    let later = |minutes: i64| {
        let mut child = klar()
            .current_dir(&ws_path)
            .env("KLAR_DB", &db)
            .args([
                "serve",
                "--addr",
                "127.0.0.1:0",
                "--tick-seconds",
                "0",
                "--now",
            ])
            .arg((day(15) + chrono::Duration::minutes(minutes)).to_rfc3339())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("klar serve starts");
        let mut line = String::new();
        let stdout = child.stdout.take().expect("stdout");
        std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line)
            .expect("a line");
        let url = line
            .trim()
            .trim_start_matches("klar serve: listening on ")
            .to_owned();
        (child, url)
    };
    let status_at = |url: &str| {
        let response = Person::agent()
            .get(format!("{url}/cockpit/queue"))
            .header("Cookie", cookie.as_deref().unwrap_or(""))
            .call()
            .expect("an answer");
        response.status().as_u16()
    };
    let (mut child, url) = later(29);
    assert_eq!(status_at(&url), 200, "29 minutes idle: still signed in");
    let _ = child.kill();
    let _ = child.wait();
    let (mut child, url) = later(29 + 31);
    assert_eq!(status_at(&url), 303, "31 minutes idle: signed out");
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn an_owner_works_the_queue_in_bulk_and_skipped_cases_are_named() {
    let fx = Fixture::new();
    let mut jk = fx.signed_in("acme", "jk");
    let (status, _, page) = jk.get("/cockpit/queue");
    assert_eq!(status, 200);
    // Her queue: her two decisions, not Mehmet's.
    assert!(page.contains("2 Treffer"), "{page}");
    assert!(
        page.contains(">C1<") && page.contains(">C2<") && !page.contains(">C3<"),
        "{page}"
    );
    // Filters live in the URL.
    let (_, _, all) = jk.get("/cockpit/queue?view=all&state=awaiting-decision&owner=m.yilmaz");
    assert!(all.contains("1 Treffer") && all.contains(">C3<"), "{all}");
    let (_, _, found) = jk.get("/cockpit/queue?view=all&q=anna.berg");
    assert!(
        found.contains("1 Treffer") && found.contains(">C2<"),
        "{found}"
    );
    let (status, _, bad) = jk.get("/cockpit/queue?state=bogus");
    assert_eq!(status, 400);
    assert!(bad.contains("bogus"), "{bad}");

    let token = jk.csrf();
    let before = fx.all_audit();
    // A bulk decision needs a reason; without one nothing is recorded.
    let (status, _, page) = jk.post(
        "/cockpit/queue",
        &[
            ("csrf", &token),
            ("back", "view=all"),
            ("action", "decide:manual"),
            ("reason", " "),
            ("sel", "C1/contact-data"),
            ("sel", "C3/contact-data"),
        ],
    );
    assert_eq!(status, 422);
    assert!(
        page.contains("Bitte geben Sie eine Begründung an"),
        "{page}"
    );
    assert_eq!(fx.all_audit(), before);
    // With a reason: her case is decided, Mehmet's is skipped and says why.
    let (status, _, page) = jk.post(
        "/cockpit/queue",
        &[
            ("csrf", &token),
            ("back", "view=all"),
            ("action", "decide:other-basis"),
            ("reason", "Vertrag seit 2019"),
            ("sel", "C1/contact-data"),
            ("sel", "C3/contact-data"),
        ],
    );
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("1 ausgeführt · 1 übersprungen"), "{page}");
    assert!(
        page.contains("the case is m.yilmaz&#x27;s, not yours"),
        "{page}"
    );
    assert_eq!(fx.state("acme", "C1"), "other-basis");
    assert_eq!(fx.state("acme", "C3"), "awaiting-decision");
    // The audit row names her account; she could not have picked it.
    let actor: String = fx
        .server
        .ws
        .sql()
        .query_row(
            "SELECT json_extract(detail, '$.actor') FROM audit_log WHERE contact = 'C1' AND json_extract(detail, '$.event.type') = 'manual-decision'",
            (),
            |r| r.get(0),
        )
        .expect("the decision's row");
    let actor: Value = serde_json::from_str(&actor).expect("json");
    assert_eq!(actor["via"], "cockpit");
    assert_eq!(actor["account"], "jk");
    assert_eq!(actor["name"], "Jana Kühn");
    // The evidence bundle names her too.
    let (status, _, bundle) = jk.get("/cockpit/case/C1/bundle.json");
    assert_eq!(status, 200);
    let bundle: Value = serde_json::from_str(&bundle).expect("a bundle");
    let decision = &bundle["decisions"][0];
    assert_eq!(decision["by"], "jk");
    assert_eq!(decision["via"], "cockpit");
    assert_eq!(decision["account"], "jk");

    // The CSV of the current view, for German Excel.
    let (status, headers, _) = jk.get("/cockpit/queue.csv?view=all&owner=jk");
    assert_eq!(status, 200);
    assert!(
        headers
            .iter()
            .any(|(k, v)| k == "content-type" && v.starts_with("text/csv"))
    );
    let raw = Person::agent()
        .get(format!(
            "{}/cockpit/queue.csv?view=all&owner=jk",
            fx.server.url
        ))
        .header("Cookie", jk.cookie.as_deref().unwrap_or(""))
        .call()
        .expect("csv")
        .into_body()
        .read_to_vec()
        .expect("bytes");
    assert!(
        raw.starts_with(b"\xEF\xBB\xBF"),
        "UTF-8 with a byte-order mark"
    );
    let text = String::from_utf8(raw[3..].to_vec()).expect("utf-8");
    let lines: Vec<&str> = text.split("\r\n").filter(|l| !l.is_empty()).collect();
    assert_eq!(
        lines[0],
        "Kontakt;Name;E-Mail;Zweck;Zustand;Bereich;Fällig;Verantwortlich;Zugewiesen;Quelle"
    );
    assert_eq!(lines.len(), 3, "{text}");
    assert!(
        lines.iter().any(|l| l.starts_with(
            "C1;Jürgen Groß;j.gross@example.de;contact-data;andere Rechtsgrundlage;nutzbar;"
        )),
        "{text}"
    );
}

#[test]
fn four_eyes_by_identity_and_viewers_change_nothing() {
    let fx = Fixture::new();
    // Lead owns C4 and asks for its cleanup in the cockpit.
    let mut lead = fx.signed_in("acme", "lead");
    let token = lead.csrf();
    let (status, _, page) = lead.post(
        "/cockpit/case/C4/act",
        &[
            ("csrf", &token),
            ("purpose", "contact-data"),
            ("action", "decide:cleanup"),
            ("reason", "Dublette"),
        ],
    );
    assert_eq!(status, 200, "{page}");
    assert_eq!(fx.state("acme", "C4"), "cleanup-pending");
    // Lead is an approver too, but asked for it: refused, shown, audited.
    let (status, _, page) = lead.post(
        "/cockpit/case/C4/act",
        &[
            ("csrf", &token),
            ("purpose", "contact-data"),
            ("action", "approve"),
        ],
    );
    assert_eq!(status, 409);
    assert!(
        page.contains("lead asked for this cleanup and cannot also approve it"),
        "{page}"
    );
    assert_eq!(fx.audit_count("approval-refused"), 1);
    // An owner without the approver role gets 403, and nothing is written.
    let mut jk = fx.signed_in("acme", "jk");
    let jk_token = jk.csrf();
    let before = fx.all_audit();
    let (status, _, _) = jk.post(
        "/cockpit/case/C4/act",
        &[
            ("csrf", &jk_token),
            ("purpose", "contact-data"),
            ("action", "approve"),
        ],
    );
    assert_eq!(status, 403);
    assert_eq!(fx.all_audit(), before);
    // The DPO sees it in her queue and approves it.
    let mut dpo = fx.signed_in("acme", "dpo");
    let (_, _, queue) = dpo.get("/cockpit/queue");
    assert!(
        queue.contains(">C4<") && queue.contains("braucht eine Freigabe"),
        "{queue}"
    );
    let (_, _, case) = dpo.get("/cockpit/case/C4");
    assert!(case.contains("value=\"approve\""), "{case}");
    let dpo_token = dpo.csrf();
    let (status, _, page) = dpo.post(
        "/cockpit/case/C4/act",
        &[
            ("csrf", &dpo_token),
            ("purpose", "contact-data"),
            ("action", "approve"),
        ],
    );
    assert_eq!(status, 200, "{page}");
    let approved: String = fx
        .server
        .ws
        .sql()
        .query_row(
            "SELECT json_extract(body, '$.cleanup.approved_by') FROM cases WHERE contact = 'C4'",
            (),
            |r| r.get(0),
        )
        .expect("approved");
    assert_eq!(approved, "dpo");

    // A viewer gets 403 on every action, in bulk and one by one; nothing is written.
    let mut vera = fx.signed_in("acme", "vera");
    let vera_token = vera.csrf();
    let before = fx.all_audit();
    for action in [
        "decide:manual",
        "decide:restart",
        "decide:cleanup",
        "decide:other-basis",
        "decide:keep",
        "approve",
        "hold-on",
        "hold-off",
        "clear",
    ] {
        let (status, _, _) = vera.post(
            "/cockpit/case/C2/act",
            &[
                ("csrf", &vera_token),
                ("purpose", "contact-data"),
                ("action", action),
                ("reason", "x"),
            ],
        );
        assert_eq!(status, 403, "{action}");
        let (status, _, _) = vera.post(
            "/cockpit/queue",
            &[
                ("csrf", &vera_token),
                ("action", action),
                ("reason", "x"),
                ("sel", "C2/contact-data"),
            ],
        );
        assert_eq!(status, 403, "bulk {action}");
    }
    assert_eq!(fx.all_audit(), before, "a viewer changed nothing");
    let (status, _, case) = vera.get("/cockpit/case/C2");
    assert_eq!(status, 200);
    assert!(
        case.contains("Für diesen Fall können Sie gerade nichts tun."),
        "{case}"
    );
}

#[test]
fn another_tenants_user_sees_and_does_nothing_here() {
    let fx = Fixture::new();
    let mut olga = fx.signed_in("other", "olga");
    for path in [
        "/cockpit/case/C1",
        "/cockpit/case/C1/proof",
        "/cockpit/case/C1/bundle.json",
    ] {
        let (status, _, page) = olga.get(path);
        assert_eq!(status, 404, "{path}");
        assert!(
            !page.contains("Groß") && !page.contains("gross@"),
            "{path}: {page}"
        );
    }
    for path in [
        "/cockpit/queue",
        "/cockpit/queue?view=all",
        "/cockpit/queue?view=all&q=C1",
        "/cockpit/queue.csv?view=all",
        "/cockpit/overview",
    ] {
        let (status, _, page) = olga.get(path);
        assert_eq!(status, 200, "{path}");
        for acme in ["Groß", "gross@", ">C1<", "C2;", "Müller GmbH", "m.yilmaz"] {
            assert!(!page.contains(acme), "{path} shows {acme}: {page}");
        }
    }
    let token = olga.csrf();
    let before = fx.all_audit();
    for action in [
        "decide:manual",
        "decide:cleanup",
        "approve",
        "hold-on",
        "hold-off",
        "clear",
        "decide:keep",
    ] {
        let (status, _, page) = olga.post(
            "/cockpit/case/C1/act",
            &[
                ("csrf", &token),
                ("purpose", "contact-data"),
                ("action", action),
                ("reason", "x"),
            ],
        );
        assert_eq!(status, 404, "{action}: {page}");
        let (status, _, page) = olga.post(
            "/cockpit/queue",
            &[
                ("csrf", &token),
                ("action", action),
                ("reason", "x"),
                ("sel", "C1/contact-data"),
            ],
        );
        assert_eq!(status, 200, "{action}");
        assert!(page.contains("no such case"), "{action}: {page}");
    }
    assert_eq!(fx.all_audit(), before, "nothing was recorded in any tenant");
    assert_eq!(fx.state("acme", "C1"), "awaiting-decision");
    // Olga's own tenant works.
    let (_, _, queue) = olga.get("/cockpit/queue?view=all");
    assert!(queue.contains(">X1<"), "{queue}");
}

#[test]
fn forms_without_the_right_token_or_from_elsewhere_change_nothing() {
    let fx = Fixture::new();
    let mut jk = fx.signed_in("acme", "jk");
    let token = jk.csrf();
    let before = fx.all_audit();
    let fields = |t: &'static str| {
        vec![
            ("csrf", t),
            ("purpose", "contact-data"),
            ("action", "decide:manual"),
            ("reason", "geklärt"),
        ]
    };
    let (status, _, page) = jk.post("/cockpit/case/C1/act", &fields("")[1..]);
    assert_eq!(status, 403);
    assert!(page.contains("Es wurde nichts gespeichert"), "{page}");
    let (status, _, _) = jk.post(
        "/cockpit/case/C1/act",
        &fields("0000000000000000000000000000000000000000000000000000000000000000"),
    );
    assert_eq!(status, 403);
    let right = [
        ("csrf", token.as_str()),
        ("purpose", "contact-data"),
        ("action", "decide:other-basis"),
        ("reason", "Vertrag"),
    ];
    let (status, _, _) = jk.post_from("/cockpit/case/C1/act", &right, "https://evil.example");
    assert_eq!(status, 403, "the right token from another origin");
    let (status, _, _) = jk.post(
        "/cockpit/queue",
        &[
            ("action", "decide:manual"),
            ("reason", "x"),
            ("sel", "C1/contact-data"),
        ],
    );
    assert_eq!(status, 403, "bulk without a token");
    let (status, _, _) = jk.post("/cockpit/settings", &[("language", "en")]);
    assert_eq!(status, 403, "settings without a token");
    // Another person's token does not work either.
    let mut other = fx.signed_in("acme", "m.yilmaz");
    let before = before + 1; // Mehmet's sign-in
    let (status, _, _) = other.post(
        "/cockpit/case/C3/act",
        &[
            ("csrf", &token),
            ("purpose", "contact-data"),
            ("action", "decide:manual"),
            ("reason", "x"),
        ],
    );
    assert_eq!(status, 403);
    assert_eq!(fx.all_audit(), before, "nothing was recorded");
    assert_eq!(fx.state("acme", "C1"), "awaiting-decision");
    // With everything right, it works.
    let (status, _, _) = jk.post("/cockpit/case/C1/act", &right);
    assert_eq!(status, 200);
    assert_eq!(fx.state("acme", "C1"), "other-basis");
}

#[test]
fn the_overview_shows_what_klar_status_shows() {
    let fx = Fixture::new();
    let mut dpo = fx.signed_in("acme", "dpo");
    let (status, _, page) = dpo.get("/cockpit/overview");
    assert_eq!(status, 200);
    let status_json = fx
        .server
        .ws
        .ok(&["status", "acme", "--json", "--now", &at(15)]);
    let status_json: Value = serde_json::from_str(&status_json).expect("json");
    let figure = |kind: &str, id: Option<&str>| -> i64 {
        let marker = match id {
            Some(id) => format!("data-kind=\"{kind}\" data-id=\"{id}\">"),
            None => format!("data-kind=\"{kind}\">"),
        };
        let start = page
            .find(&marker)
            .unwrap_or_else(|| panic!("{marker} in {page}"))
            + marker.len();
        page[start..]
            .split('<')
            .next()
            .unwrap_or("")
            .parse()
            .expect("a number")
    };
    for band in ["usable", "to-clarify", "removed"] {
        assert_eq!(
            figure("band", Some(band)),
            status_json["bands"][band].as_i64().unwrap_or(-1),
            "{band}"
        );
    }
    assert_eq!(
        figure("ageing", Some("overdue")),
        status_json["overdue"].as_i64().unwrap_or(-1)
    );
    assert_eq!(
        figure("ageing", Some("due_soon")),
        status_json["due_next_7_days"].as_i64().unwrap_or(-1)
    );
    assert_eq!(
        figure("failed", None),
        status_json["needs_attention"].as_i64().unwrap_or(-1)
    );
    assert_eq!(
        figure("parked", None),
        status_json["delivery_parked"].as_i64().unwrap_or(-1)
    );
    for (who, n) in status_json["awaiting_decision_by_owner"]
        .as_object()
        .expect("an object")
    {
        assert_eq!(
            figure("waiting", Some(who)),
            n.as_i64().unwrap_or(-1),
            "{who}"
        );
    }
    // Every chart has a text alternative: a title and a description.
    let charts = page.matches("<svg").count();
    assert!(charts >= 2, "{page}");
    assert_eq!(
        page.matches("role=\"img\" aria-labelledby=").count(),
        charts
    );
    assert_eq!(page.matches("<title id=").count(), charts);
    assert_eq!(page.matches("<desc id=").count(), charts);
    // Each number links to the cases behind it.
    for (kind, link) in [
        ("on_time", "on_time=1"),
        ("due_soon", "due_soon=1"),
        ("overdue", "overdue=1"),
    ] {
        let (_, _, cases) = dpo.get(&format!("/cockpit/queue?view=all&{link}"));
        assert!(
            cases.contains(&format!("{} Treffer", figure("ageing", Some(kind)))),
            "{kind}: {cases}"
        );
    }
    let (_, _, waiting) = dpo.get("/cockpit/queue?view=all&state=awaiting-decision&assigned=jk");
    assert!(
        waiting.contains(&format!(
            "{} Treffer",
            status_json["awaiting_decision_by_owner"]["jk"]
        )),
        "{waiting}"
    );

    // Usable cases by legal basis: a consent, and a basis a person recorded.
    assert_eq!(
        figure("basis", Some("consent")),
        status_json["states"]["consented"].as_i64().unwrap_or(-1)
    );
    assert_eq!(figure("basis", Some("other")), 0);
    fx.server.ws.ok(&[
        "decide",
        "acme",
        "C2",
        "--action",
        "other-basis",
        "--by",
        "jk",
        "--reason",
        "Rahmenvertrag 2026",
        "--now",
        &at(15),
    ]);
    let (_, _, page) = dpo.get("/cockpit/overview");
    let marker = "data-kind=\"basis\" data-id=\"other\">1<";
    assert!(page.contains(marker), "{page}");
    assert!(page.contains("andere, von einer Person erfasst"), "{page}");
    let (_, _, case) = dpo.get("/cockpit/case/C2");
    assert!(
        case.contains("<dt>Rechtsgrundlage</dt><dd>andere, von einer Person erfasst: Rahmenvertrag 2026 (erfasst von jk)</dd>"),
        "{case}"
    );
}

#[test]
fn the_weekly_digest_names_the_cases_and_no_personal_data() {
    let sink = SmtpSink::start();
    let fx = Fixture::new();
    let ws = &fx.server.ws;
    ws.write(
        "klar.toml",
        &format!(
            "public_url = \"https://klar.example\"\n[smtp]\nurl = \"{}\"\n[smtp.from]\nacme = \"Müller GmbH <datenschutz@mueller.example>\"\n",
            sink.url()
        ),
    );
    // Tuesday of week 51: this week's digests are due.
    let out = ws.ok(&["digest", "--config", "klar.toml", "--now", &at(15)]);
    // jk (C1, C2), m.yilmaz (C3) and lead (C4) have decisions waiting; the
    // DPO, the viewer and the admin have nothing to do; other has no sender.
    assert_eq!(out, "digests: 3 sent, 0 failed\n");
    let mails = sink.wait_for(3);
    let mail = parse(mail_to(&mails, "jk@acme.example"));
    assert_eq!(
        mail.subject(),
        Some("klar: 2 Fälle warten auf Ihre Entscheidung, 0 davon überfällig")
    );
    let text = mail.body_text(0).expect("a text").to_string();
    assert!(text.starts_with("Guten Tag Jana Kühn,"), "{text}");
    assert!(
        text.contains("- C1 / contact-data: https://klar.example/cockpit/case/C1"),
        "{text}"
    );
    assert!(
        text.contains("- C2 / contact-data: https://klar.example/cockpit/case/C2"),
        "{text}"
    );
    for personal in [
        "Jürgen",
        "Groß",
        "gross@",
        "Anna",
        "Berg",
        "anna.berg",
        "C3",
    ] {
        assert!(
            !text.contains(personal),
            "the digest shows {personal}: {text}"
        );
    }
    assert!(
        text.contains("https://klar.example/cockpit/settings"),
        "{text}"
    );
    // Once a week: the same week sends nothing more.
    assert_eq!(
        ws.ok(&["digest", "--config", "klar.toml", "--now", &at(16)]),
        "digests: 0 sent, 0 failed\n"
    );
    assert_eq!(fx.audit_count("digest-sent"), 3);
    // Jana switches it off in the cockpit; next week only the others get one.
    let mut jk = fx.signed_in("acme", "jk");
    let token = jk.csrf();
    let (status, _, _) = jk.post("/cockpit/settings", &[("csrf", &token), ("language", "de")]);
    assert_eq!(status, 303);
    assert_eq!(
        ws.ok(&["digest", "--config", "klar.toml", "--now", &at(22)]),
        "digests: 2 sent, 0 failed\n"
    );
    let mails = sink.wait_for(5);
    let to_jk = mails
        .iter()
        .filter(|m| {
            parse(m)
                .to()
                .and_then(|t| t.first())
                .and_then(|a| a.address())
                == Some("jk@acme.example")
        })
        .count();
    assert_eq!(to_jk, 1, "no second digest after switching it off");
    // In English for a person who reads English.
    let mut yilmaz = fx.signed_in("acme", "m.yilmaz");
    let token = yilmaz.csrf();
    let (status, _, _) = yilmaz.post(
        "/cockpit/settings",
        &[("csrf", &token), ("language", "en"), ("digest", "on")],
    );
    assert_eq!(status, 303);
    ws.ok(&["digest", "--config", "klar.toml", "--now", &at(29)]);
    let mails = sink.wait_for(7);
    let english = mails
        .iter()
        .map(|m| parse(m))
        .filter(|m| {
            m.to().and_then(|t| t.first()).and_then(|a| a.address())
                == Some("m.yilmaz@acme.example")
        })
        .filter_map(|m| m.subject().map(str::to_owned))
        .collect::<Vec<_>>();
    // The maildir's order is not the order of arrival: count, do not pick the last.
    assert_eq!(english.len(), 3, "one digest a week: {english:?}");
    assert_eq!(
        english
            .iter()
            .filter(|s| *s == "klar: 1 case(s) wait for you, 0 of them overdue")
            .count(),
        1,
        "the third week's digest is in English: {english:?}"
    );
}

#[test]
fn an_admin_checks_simulates_and_activates_a_policy_on_its_page() {
    let fx = Fixture::new();
    let mut root = fx.signed_in("acme", "root");
    let (status, _, page) = root.get("/cockpit/policy");
    assert_eq!(status, 200);
    assert!(page.contains("v1") && page.contains("Versionen"), "{page}");
    let token = root.csrf();
    // A broken draft: the check names line and column; nothing changes.
    let broken = "fn reminder_days(contact) {\n    [7\n}\n";
    let (status, _, page) = root.post(
        "/cockpit/policy",
        &[
            ("csrf", &token),
            ("op", "check"),
            ("source", broken),
            ("tests", ""),
        ],
    );
    assert_eq!(status, 422, "{page}");
    assert!(
        page.contains("policy.rhai:3:1") || page.contains("3:1:"),
        "{page}"
    );
    let (status, _, page) = root.post(
        "/cockpit/policy",
        &[
            ("csrf", &token),
            ("op", "activate"),
            ("source", broken),
            ("tests", ""),
            ("message", "kaputt"),
        ],
    );
    assert_eq!(status, 422);
    assert!(page.contains("Nicht aktiviert"), "{page}");
    let versions = |fx: &Fixture| -> i64 {
        fx.server
            .ws
            .sql()
            .query_row(
                "SELECT COUNT(*) FROM policy_versions WHERE tenant = 'acme'",
                (),
                |r| r.get(0),
            )
            .expect("count")
    };
    assert_eq!(versions(&fx), 1);
    // A dry run of a draft next to the running policy: a weekly chart.
    let draft = format!(
        "{}fn cleanup_grace_days(contact) {{ 5 }}\n",
        cockpit::POLICY.replace("fn cleanup_grace_days(contact) { 3 }\n", "")
    );
    let (status, _, page) = root.post(
        "/cockpit/policy",
        &[
            ("csrf", &token),
            ("op", "simulate"),
            ("source", &draft),
            ("tests", ""),
            ("days", "21"),
            ("against", "on"),
        ],
    );
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains("<title id=\"forecast-title\">Wöchentliche Vorschau</title>"),
        "{page}"
    );
    assert_eq!(versions(&fx), 1, "a dry run changes nothing");
    // Activation goes through the same rule as the CLI and the API.
    let (status, _, page) = root.post(
        "/cockpit/policy",
        &[
            ("csrf", &token),
            ("op", "activate"),
            ("source", &draft),
            ("tests", ""),
            ("message", "Fünf Tage Frist"),
        ],
    );
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Aktiv ist jetzt v2"), "{page}");
    let author: String = fx
        .server
        .ws
        .sql()
        .query_row(
            "SELECT author FROM policy_versions WHERE tenant = 'acme' AND active = 1",
            (),
            |r| r.get(0),
        )
        .expect("v2");
    assert_eq!(author, "Rolf Admin (root, cockpit)");
    let (_, _, diff) = root.get("/cockpit/policy?from=1&to=2");
    assert!(
        diff.contains("+fn cleanup_grace_days(contact) { 5 }"),
        "{diff}"
    );
    // A viewer sees the page without its forms and may not post; an owner
    // does not see it.
    let mut vera = fx.signed_in("acme", "vera");
    let (status, _, page) = vera.get("/cockpit/policy");
    assert_eq!(status, 200);
    assert!(!page.contains("name=\"op\""), "{page}");
    let vera_token = vera.csrf();
    let (status, _, _) = vera.post(
        "/cockpit/policy",
        &[
            ("csrf", &vera_token),
            ("op", "activate"),
            ("source", &draft),
            ("message", "x"),
        ],
    );
    assert_eq!(status, 403);
    let mut jk = fx.signed_in("acme", "jk");
    assert_eq!(jk.get("/cockpit/policy").0, 403);
    assert_eq!(versions(&fx), 2);
}

#[test]
fn an_admin_manages_people_and_keys_in_the_cockpit() {
    let fx = Fixture::new();
    let mut root = fx.signed_in("acme", "root");
    let token = root.csrf();
    let (status, _, page) = root.post(
        "/cockpit/people",
        &[
            ("csrf", &token),
            ("op", "add"),
            ("id", "neu"),
            ("name", "Nora Neu"),
            ("email", "nora@acme.example"),
            ("language", "en"),
            ("role", "owner"),
            ("role", "approver"),
        ],
    );
    assert_eq!(status, 200, "{page}");
    let page = page.replace("&#x2f;", "/");
    let start = page
        .find("/cockpit/signup/")
        .expect("a sign-up link on the page");
    let link = page[start..]
        .split('<')
        .next()
        .unwrap_or_default()
        .to_owned();
    let mut nora = Person::new(&fx.server);
    assert_eq!(
        nora.post(&link, &[("password", PASSWORD), ("password2", PASSWORD)])
            .0,
        200
    );
    assert_eq!(nora.sign_in("acme", "neu", PASSWORD).0, 303);
    let (_, _, queue) = nora.get("/cockpit/queue");
    assert!(
        queue.contains("My queue"),
        "her language is English: {queue}"
    );
    // The same id again is refused with a reason.
    let (status, _, page) = root.post(
        "/cockpit/people",
        &[
            ("csrf", &token),
            ("op", "add"),
            ("id", "neu"),
            ("name", "Nora Neu"),
            ("role", "owner"),
        ],
    );
    assert_eq!(status, 422);
    assert!(page.contains("acme already has an account neu"), "{page}");
    // Roles, then disabling: her session ends at once.
    let (status, _, _) = root.post(
        "/cockpit/people",
        &[
            ("csrf", &token),
            ("op", "roles"),
            ("id", "neu"),
            ("role", "viewer"),
        ],
    );
    assert_eq!(status, 200);
    let roles: String = fx
        .server
        .ws
        .sql()
        .query_row("SELECT roles FROM accounts WHERE id = 'neu'", (), |r| {
            r.get(0)
        })
        .expect("roles");
    assert_eq!(roles, "viewer");
    let (status, _, _) = root.post(
        "/cockpit/people",
        &[("csrf", &token), ("op", "disable"), ("id", "neu")],
    );
    assert_eq!(status, 200);
    assert_eq!(
        nora.get("/cockpit/queue").0,
        303,
        "a disabled account's session is over"
    );
    let by: String = fx
        .server
        .ws
        .sql()
        .query_row(
            "SELECT json_extract(detail, '$.by') FROM audit_log WHERE kind = 'account-disabled'",
            (),
            |r| r.get(0),
        )
        .expect("audited");
    assert_eq!(by, "Rolf Admin (root, cockpit)");

    // A key, shown once, works against the API; revoked, it does not.
    let (status, _, page) = root.post(
        "/cockpit/keys",
        &[
            ("csrf", &token),
            ("op", "create"),
            ("name", "crm-2"),
            ("scope", "crm"),
        ],
    );
    assert_eq!(status, 200, "{page}");
    let start = page.find("id=\"new-key\">").expect("the new key") + "id=\"new-key\">".len();
    let key = page[start..]
        .split('<')
        .next()
        .unwrap_or_default()
        .to_owned();
    assert!(key.starts_with("klar_"), "{key}");
    assert_eq!(fx.server.call("GET", "/v1/status", Some(&key), None).0, 200);
    let id: String = fx
        .server
        .ws
        .sql()
        .query_row("SELECT id FROM api_keys WHERE name = 'crm-2'", (), |r| {
            r.get(0)
        })
        .expect("the key's id");
    let (status, _, _) = root.post(
        "/cockpit/keys",
        &[("csrf", &token), ("op", "revoke"), ("id", &id)],
    );
    assert_eq!(status, 200);
    assert_eq!(fx.server.call("GET", "/v1/status", Some(&key), None).0, 401);

    // Nobody but an admin gets these pages or their forms.
    let mut jk = fx.signed_in("acme", "jk");
    let jk_token = jk.csrf();
    for path in ["/cockpit/people", "/cockpit/keys"] {
        assert_eq!(jk.get(path).0, 403, "{path}");
        assert_eq!(
            jk.post(
                path,
                &[
                    ("csrf", &jk_token),
                    ("op", "add"),
                    ("id", "x"),
                    ("name", "x"),
                    ("role", "admin")
                ]
            )
            .0,
            403,
            "{path}"
        );
    }
    let mut olga = fx.signed_in("other", "olga");
    let (_, _, page) = olga.get("/cockpit/people");
    assert!(!page.contains("Jana") && !page.contains(">jk<"), "{page}");
    let olga_token = olga.csrf();
    let (status, _, _) = olga.post(
        "/cockpit/people",
        &[("csrf", &olga_token), ("op", "disable"), ("id", "jk")],
    );
    assert_eq!(status, 422, "another tenant's account is not found");
    assert_eq!(jk.get("/cockpit/queue").0, 200, "jk is still signed in");
}

#[test]
fn klar_user_manages_accounts_at_the_terminal() {
    let ws = Workspace::new(&[]);
    ws.ok(&[
        "tenant",
        "add",
        "acme",
        "--name",
        "Müller GmbH",
        "--now",
        &at(0),
    ]);
    let out = ws.run(&[
        "user",
        "add",
        "acme",
        "Jana",
        "--name",
        "Jana Kühn",
        "--role",
        "owner",
        "--now",
        &at(0),
    ]);
    assert_eq!(out.status.code(), Some(2), "an error");
    assert!(
        stderr(&out).contains("account id \"Jana\" is not allowed"),
        "{}",
        stderr(&out)
    );
    let out = ws.run(&[
        "user",
        "add",
        "acme",
        "jk",
        "--name",
        "Jana Kühn",
        "--role",
        "boss",
        "--now",
        &at(0),
    ]);
    assert_eq!(out.status.code(), Some(2), "clap refuses an unknown role");
    assert!(
        stderr(&out).contains("unknown role \"boss\""),
        "{}",
        stderr(&out)
    );
    let out = ws.run(&[
        "user",
        "add",
        "nope",
        "jk",
        "--name",
        "Jana Kühn",
        "--role",
        "owner",
        "--now",
        &at(0),
    ]);
    assert!(
        stderr(&out).contains("there is no tenant nope"),
        "{}",
        stderr(&out)
    );
    let added = ws.ok(&[
        "user",
        "add",
        "acme",
        "jk",
        "--name",
        "Jana Kühn",
        "--role",
        "owner",
        "--email",
        "jk@acme.example",
        "--url",
        "https://klar.example/",
        "--now",
        &at(0),
    ]);
    assert!(
        added.contains("https://klar.example/cockpit/signup/"),
        "{added}"
    );
    let again = ws.run(&[
        "user",
        "add",
        "acme",
        "jk",
        "--name",
        "Jana",
        "--role",
        "owner",
        "--now",
        &at(0),
    ]);
    assert!(
        stderr(&again).contains("acme already has an account jk"),
        "{}",
        stderr(&again)
    );
    assert_eq!(
        ws.ok(&[
            "user",
            "set-role",
            "acme",
            "jk",
            "--role",
            "owner",
            "--role",
            "approver",
            "--now",
            &at(1)
        ]),
        "acme: jk now has role(s) owner approver\n"
    );
    let link = ws.ok(&["user", "link", "acme", "jk", "--now", &at(1)]);
    assert!(link.contains("a new sign-up link for jk"), "{link}");
    assert_ne!(link.lines().last(), added.lines().last(), "a new secret");
    let list: Value =
        serde_json::from_str(&ws.ok(&["user", "list", "acme", "--json"])).expect("json");
    assert_eq!(list[0]["id"], "jk");
    assert_eq!(list[0]["roles"], serde_json::json!(["owner", "approver"]));
    assert_eq!(list[0]["signed_up"], false);
    assert_eq!(
        ws.ok(&["user", "disable", "acme", "jk", "--now", &at(2)]),
        "acme: jk disabled; its sessions have ended\n"
    );
    let out = ws.run(&["user", "disable", "acme", "jk", "--now", &at(2)]);
    assert_eq!(out.status.code(), Some(1), "disabled already");
    let table = ws.ok(&["user", "list", "acme"]);
    assert!(table.contains("disabled"), "{table}");
    // Every change is in the audit chain, and it still verifies.
    let kinds: Vec<String> = {
        let sql = ws.sql();
        let mut stmt = sql
            .prepare("SELECT kind FROM audit_log WHERE tenant = 'acme' AND kind LIKE 'account%' OR kind = 'signup-link' ORDER BY seq")
            .expect("sql");
        stmt.query_map((), |r| r.get(0))
            .expect("rows")
            .map(|r| r.expect("a kind"))
            .collect()
    };
    assert_eq!(
        kinds,
        [
            "account-added",
            "account-roles",
            "signup-link",
            "account-disabled"
        ]
    );
    assert_eq!(
        ws.ok(&["audit", "verify", "acme"]),
        "acme: audit chain intact\n"
    );
}

#[test]
fn an_admin_sets_the_webhook_and_adds_a_purpose_in_the_cockpit() {
    let fx = Fixture::with_env(&[("KLAR_WEBHOOK_ALLOW_PRIVATE", "127.0.0.1")]);
    let mut root = fx.signed_in("acme", "root");
    let (status, _, page) = root.get("/cockpit/setup");
    assert_eq!(status, 200);
    assert!(page.contains("Kein Webhook"), "{page}");
    let token = root.csrf();
    // The same rules as the CLI and the API: no private address unless allowed.
    let (status, _, page) = root.post(
        "/cockpit/setup",
        &[
            ("csrf", &token),
            ("op", "webhook"),
            ("url", "http://10.1.2.3/hook"),
        ],
    );
    assert_eq!(status, 422, "{page}");
    assert!(
        page.contains("10.1.2.3"),
        "the refusal names the address: {page}"
    );
    let (status, _, page) = root.post(
        "/cockpit/setup",
        &[
            ("csrf", &token),
            ("op", "webhook"),
            ("url", "http://127.0.0.1:9/hook"),
        ],
    );
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains("id=\"webhook-secret\""),
        "the secret is shown once: {page}"
    );
    let (_, webhook) = fx
        .server
        .call("GET", "/v1/webhook", Some(&fx.server.keys.0), None);
    assert_eq!(webhook["url"], "http://127.0.0.1:9/hook", "{webhook}");
    let (status, _, _) = root.post(
        "/cockpit/setup",
        &[("csrf", &token), ("op", "remove-webhook")],
    );
    assert_eq!(status, 200);
    assert_eq!(
        fx.server
            .call("GET", "/v1/webhook", Some(&fx.server.keys.0), None)
            .0,
        404
    );
    // A purpose, audited; a bad id is refused with the reason.
    let (status, _, page) = root.post(
        "/cockpit/setup",
        &[
            ("csrf", &token),
            ("op", "purpose"),
            ("id", "Newsletter!"),
            ("description", "Newsletter"),
        ],
    );
    assert_eq!(status, 422);
    assert!(page.contains("purpose id"), "{page}");
    let (status, _, page) = root.post(
        "/cockpit/setup",
        &[
            ("csrf", &token),
            ("op", "purpose"),
            ("id", "newsletter"),
            ("description", "Newsletter mit Angeboten"),
        ],
    );
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Newsletter mit Angeboten"), "{page}");
    assert_eq!(fx.audit_count("purpose-added"), 1);
    // Only admins, and only of their own tenant.
    let mut dpo = fx.signed_in("acme", "dpo");
    let dpo_token = dpo.csrf();
    assert_eq!(dpo.get("/cockpit/setup").0, 403);
    assert_eq!(
        dpo.post(
            "/cockpit/setup",
            &[("csrf", &dpo_token), ("op", "remove-webhook")]
        )
        .0,
        403
    );
    let mut olga = fx.signed_in("other", "olga");
    let (_, _, page) = olga.get("/cockpit/setup");
    assert!(!page.contains("Newsletter mit Angeboten"), "{page}");
}

#[test]
fn klar_serve_mails_the_digest_itself_and_marks_the_cookie_secure_under_https() {
    let sink = SmtpSink::start();
    let (ws, links) = cockpit::prepare();
    // Behind a TLS proxy: public_url is https, the delivery loop runs.
    ws.write(
        "klar.toml",
        &format!(
            "public_url = \"https://klar.example\"\ndeliver_ms = 200\n[smtp]\nurl = \"{}\"\n[smtp.from]\nacme = \"Müller GmbH <datenschutz@mueller.example>\"\n",
            sink.url()
        ),
    );
    let server = Server::launch_at(
        ws,
        &[],
        &["--config", "klar.toml", "--tick-seconds", "0"],
        &at(15),
    );
    // Without a word from anyone, this week's digests go out.
    let mails = sink.wait_for(3);
    let mail = parse(mail_to(&mails, "jk@acme.example"));
    let text = mail.body_text(0).expect("a text").to_string();
    assert!(
        text.contains("https://klar.example/cockpit/case/C1"),
        "{text}"
    );
    std::thread::sleep(std::time::Duration::from_millis(600));
    assert_eq!(sink.wait_for(3).len(), 3, "once a week, not every round");
    // The session cookie is Secure when the cockpit is reached by https.
    let mut p = Person::new(&server);
    let origin = "https://klar.example";
    let (status, _, _) = p.post_from(
        &links["jk"],
        &[("password", PASSWORD), ("password2", PASSWORD)],
        origin,
    );
    assert_eq!(status, 200);
    let signed = p.post_from(
        "/cockpit/login",
        &[
            ("tenant", "acme"),
            ("account", "jk"),
            ("password", PASSWORD),
        ],
        origin,
    );
    assert_eq!(signed.0, 303);
    let cookie = header(&signed, "set-cookie").expect("a cookie");
    assert!(cookie.contains("; Secure"), "{cookie}");
    // A form from plain http is not our origin any more.
    let (status, _, _) = p.post_from(
        "/cockpit/login",
        &[
            ("tenant", "acme"),
            ("account", "jk"),
            ("password", PASSWORD),
        ],
        &server.url.clone(),
    );
    assert_eq!(status, 403);
}
