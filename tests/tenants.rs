//! `klar init`, `tenant add`, `purpose add` and `policy set` against a real
//! database file: a bad policy never becomes active, and every change is in
//! the audit chain.

mod support;

use support::*;

const NOW: &str = "2026-11-30T09:00:00Z";

fn klar_in(dir: &std::path::Path) -> std::process::Command {
    let mut cmd = klar();
    cmd.current_dir(dir).env("KLAR_DB", dir.join("klar.db"));
    cmd
}

fn active_versions(db: &std::path::Path) -> Vec<(i64, bool)> {
    let store = klar::store::Store::open(db).expect("opens");
    klar::store::tenants::policy_versions(store.connection(), "acme")
        .expect("versions")
        .into_iter()
        .map(|v| (v.version, v.active))
        .collect()
}

#[test]
fn a_tenant_with_a_checked_policy_and_a_purpose() {
    let dir = files(&[("policy.rhai", DEFAULT_POLICY)]);
    let out = klar_in(dir.path()).arg("init").output().expect("runs");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        format!(
            "{}: ready (schema version 17)\n",
            dir.path().join("klar.db").display()
        )
    );

    let out = klar_in(dir.path())
        .args([
            "tenant",
            "add",
            "acme",
            "--name",
            "ACME GmbH",
            "--policy",
            "policy.rhai",
            "--now",
            NOW,
        ])
        .output()
        .expect("runs");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("acme: policy version 1 is active"),
        "{}",
        stdout(&out)
    );

    let out = klar_in(dir.path())
        .args([
            "purpose",
            "add",
            "acme",
            "newsletter",
            "--description",
            "Newsletter",
            "--now",
            NOW,
        ])
        .output()
        .expect("runs");
    assert!(out.status.success(), "{}", stderr(&out));

    let store = klar::store::Store::open(dir.path().join("klar.db")).expect("opens");
    let purposes = klar::store::tenants::purposes(store.connection(), "acme").expect("purposes");
    let ids: Vec<_> = purposes.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(ids, ["contact-data", "newsletter"]);
    let kinds: Vec<_> = klar::store::audit::rows(store.connection(), "acme", None)
        .expect("rows")
        .into_iter()
        .map(|r| r.entry.kind)
        .collect();
    assert_eq!(kinds, ["tenant-created", "policy-set", "purpose-added"]);
    assert_eq!(
        klar::store::audit::verify(store.connection(), "acme").expect("verifies"),
        []
    );
}

#[test]
fn a_policy_with_errors_is_never_activated() {
    let dir = files(&[
        ("good.rhai", DEFAULT_POLICY),
        ("bad.rhai", "fn answer_days(contact) {\n    \"soon\"\n}\n"),
    ]);
    init(dir.path());
    let db = dir.path().join("klar.db");
    let out = klar_in(dir.path())
        .args([
            "tenant",
            "add",
            "acme",
            "--name",
            "ACME",
            "--policy",
            "good.rhai",
            "--now",
            NOW,
        ])
        .output()
        .expect("runs");
    assert!(out.status.success(), "{}", stderr(&out));

    let out = klar_in(dir.path())
        .args([
            "policy", "set", "acme", "bad.rhai", "--author", "jd", "--now", NOW,
        ])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(
        text.starts_with("bad.rhai:1:1: error: hook answer_days(contact) must return"),
        "{text}"
    );
    assert!(
        text.ends_with(
            "bad.rhai: has errors or failing tests; the active policy of acme is unchanged\n"
        ),
        "{text}"
    );
    assert_eq!(active_versions(&db), [(1, true)]);

    let out = klar_in(dir.path())
        .args([
            "policy",
            "set",
            "acme",
            "good.rhai",
            "--author",
            "jd",
            "--message",
            "again",
            "--now",
            NOW,
        ])
        .output()
        .expect("runs");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(active_versions(&db), [(1, false), (2, true)]);
}

#[test]
fn a_tenant_with_a_bad_policy_is_not_added() {
    let dir = files(&[("bad.rhai", "fn reminder_days(contact) { [7, 14\n")]);
    init(dir.path());
    let out = klar_in(dir.path())
        .args([
            "tenant", "add", "acme", "--name", "ACME", "--policy", "bad.rhai",
        ])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).ends_with("bad.rhai: has errors; the tenant was not added\n"));
    let store = klar::store::Store::open(dir.path().join("klar.db")).expect("opens");
    assert!(
        klar::store::tenants::get(store.connection(), "acme")
            .expect("reads")
            .is_none()
    );
}

#[test]
fn mistakes_get_clear_messages() {
    let dir = files(&[]);
    init(dir.path());
    let run = |args: &[&str]| {
        let out = klar_in(dir.path()).args(args).output().expect("runs");
        (out.status.code(), stderr(&out))
    };
    assert_eq!(
        run(&["tenant", "add", "acme", "--name", "ACME", "--now", NOW]).0,
        Some(0)
    );
    assert_eq!(
        run(&["tenant", "add", "acme", "--name", "again"]),
        (Some(2), "klar: tenant acme already exists\n".to_owned())
    );
    assert_eq!(
        run(&[
            "tenant",
            "add",
            "beta",
            "--name",
            "B",
            "--timezone",
            "Europe/Berlinn"
        ]),
        (
            Some(2),
            "klar: unknown time zone \"Europe/Berlinn\"; use a name like Europe/Berlin\n"
                .to_owned()
        )
    );
    assert_eq!(
        run(&["policy", "set", "nope", "x.rhai"]),
        (Some(2), "klar: there is no tenant nope\n".to_owned())
    );
    assert_eq!(
        run(&[
            "purpose",
            "add",
            "acme",
            "contact-data",
            "--description",
            "again"
        ]),
        (
            Some(2),
            "klar: tenant acme already has purpose contact-data\n".to_owned()
        )
    );
    assert_eq!(
        run(&[
            "tenant",
            "add",
            "gamma",
            "--name",
            "G",
            "--now",
            "yesterday"
        ])
        .1,
        "klar: --now \"yesterday\" is not an RFC 3339 time: premature end of input\n"
    );
}

fn acme() -> Workspace {
    let ws = Workspace::new(&[]);
    ws.ok(&["tenant", "add", "acme", "--name", "ACME GmbH", "--now", NOW]);
    ws
}

fn audit_details(ws: &Workspace, kind: &str) -> Vec<serde_json::Value> {
    let sql = ws.sql();
    let mut stmt = sql
        .prepare("SELECT detail FROM audit_log WHERE tenant = 'acme' AND kind = ?1 ORDER BY seq")
        .expect("prepares");
    stmt.query_map([kind], |r| r.get::<_, String>(0))
        .expect("queries")
        .map(|d| serde_json::from_str(&d.expect("a row")).expect("JSON"))
        .collect()
}

#[test]
fn tenant_settings_are_listed_shown_changed_and_audited_with_before_and_after() {
    let ws = acme();
    let out = ws.ok(&[
        "tenant",
        "set",
        "acme",
        "--name",
        "Müller Maschinenbau GmbH",
        "--timezone",
        "Europe/Vienna",
        "--locale",
        "de-AT",
        "--default-owner",
        "vertrieb",
        "--address",
        "Königstraße 1\\n70173 Stuttgart",
        "--managing-directors",
        "Anna Müller",
        "--register-entry",
        "Amtsgericht Stuttgart, HRB 123456",
        "--imprint-url",
        "https://mueller.example/impressum",
        "--now",
        NOW,
    ]);
    assert_eq!(
        out,
        "acme: changed default_owner, legal, locale, name, timezone\n"
    );
    let shown: serde_json::Value =
        serde_json::from_str(&ws.ok(&["tenant", "show", "acme", "--json"])).expect("JSON");
    assert_eq!(shown["tenant"]["name"], "Müller Maschinenbau GmbH");
    assert_eq!(shown["tenant"]["timezone"], "Europe/Vienna");
    assert_eq!(
        shown["tenant"]["legal"]["address"],
        "Königstraße 1\n70173 Stuttgart"
    );
    assert_eq!(
        shown["tenant"]["legal"]["privacy_url"],
        serde_json::Value::Null
    );
    assert_eq!(shown["purposes"][0]["id"], "contact-data");
    let changed = audit_details(&ws, "tenant-changed");
    assert_eq!(changed.len(), 1);
    assert_eq!(
        changed[0]["name"],
        serde_json::json!({"from": "ACME GmbH", "to": "Müller Maschinenbau GmbH"})
    );
    assert_eq!(changed[0]["timezone"]["from"], "Europe/Berlin");

    // An empty value clears; the same value again changes nothing.
    assert_eq!(
        ws.ok(&["tenant", "set", "acme", "--default-owner", "", "--now", NOW]),
        "acme: changed default_owner\n"
    );
    assert_eq!(
        ws.ok(&["tenant", "set", "acme", "--locale", "de-AT", "--now", NOW]),
        "acme: nothing changed (the settings were already so)\n"
    );
    assert_eq!(audit_details(&ws, "tenant-changed").len(), 2);
    let list = ws.ok(&["tenant", "list"]);
    assert!(
        list.contains("acme                 Müller Maschinenbau GmbH"),
        "{list}"
    );

    // Bad values are refused whole: nothing of the command is stored.
    for (flag, value, why) in [
        ("--timezone", "Europe/Stuttgart", "unknown time zone"),
        ("--locale", "Deutsch", "is not a language tag"),
        (
            "--privacy-url",
            "mueller.example/datenschutz",
            "is not a web address",
        ),
        ("--name", " ", "name is empty"),
        ("--region", "DE-XX", "is not a German state"),
        ("--region", "AT-9", "German states only"),
        ("--closure-days", "12-24,24.12.", "is not a day"),
    ] {
        let out = ws.run(&[
            "tenant",
            "set",
            "acme",
            "--register-entry",
            "HRB 1",
            flag,
            value,
        ]);
        assert_eq!(out.status.code(), Some(2), "{flag}");
        assert!(stderr(&out).contains(why), "{flag}: {}", stderr(&out));
    }
    let shown: serde_json::Value =
        serde_json::from_str(&ws.ok(&["tenant", "show", "acme", "--json"])).expect("JSON");
    assert_eq!(
        shown["tenant"]["legal"]["register_entry"],
        "Amtsgericht Stuttgart, HRB 123456"
    );
    let out = ws.run(&["tenant", "set", "acme"]);
    assert!(
        stderr(&out).contains("nothing to change"),
        "{}",
        stderr(&out)
    );
    assert_eq!(ws.ok(&["audit", "verify", "acme"]).lines().count(), 1);
}

#[test]
fn a_purpose_is_described_anew_and_removed_only_while_nothing_refers_to_it() {
    let ws = acme();
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
    ws.ok(&[
        "purpose",
        "add",
        "acme",
        "events",
        "--description",
        "Einladungen",
        "--now",
        NOW,
    ]);
    ws.write(
        "contacts.csv",
        "external_id,first_name,last_name,email,phone,owner,source,created_at\nC1,Jana,Kühn,jana@example.de,,jk,web,\n",
    );
    ws.ok(&["import", "acme", "contacts.csv", "--now", NOW]);
    assert_eq!(
        ws.ok(&[
            "purpose",
            "set",
            "acme",
            "newsletter",
            "--description",
            "Newsletter über Maschinen",
            "--now",
            NOW
        ]),
        "acme: purpose newsletter is now described as \"Newsletter über Maschinen\"\n"
    );
    assert_eq!(
        audit_details(&ws, "purpose-changed")[0]["description"],
        serde_json::json!({"from": "Newsletter", "to": "Newsletter über Maschinen"})
    );
    let list = ws.ok(&["purpose", "list", "acme"]);
    assert!(
        list.contains("newsletter                  1  restrictive      Newsletter über Maschinen"),
        "{list}"
    );

    // The import opened a case for every purpose: none can go.
    for purpose in ["newsletter", "contact-data"] {
        let out = ws.run(&["purpose", "remove", "acme", purpose, "--now", NOW]);
        assert_eq!(out.status.code(), Some(1), "{purpose}");
        assert!(
            stdout(&out).contains("cannot be removed"),
            "{}",
            stdout(&out)
        );
    }
    // A purpose added after the import has no cases yet: it may go.
    ws.ok(&[
        "purpose",
        "add",
        "acme",
        "trial",
        "--description",
        "Probe",
        "--now",
        NOW,
    ]);
    assert_eq!(
        ws.ok(&["purpose", "remove", "acme", "trial", "--now", NOW]),
        "acme: removed purpose trial\n"
    );
    assert_eq!(audit_details(&ws, "purpose-removed").len(), 1);
    let out = ws.run(&["purpose", "remove", "acme", "trial", "--now", NOW]);
    assert!(
        stderr(&out).contains("tenant acme has no purpose trial"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_contact_without_an_owner_goes_to_the_default_owner_or_the_case_says_what_to_set() {
    let dir = files(&[(
        "quick.rhai",
        "fn reminder_days(c) { [] }\nfn answer_days(c) { 1 }\nfn business_days_only() { false }\n",
    )]);
    let ws = Workspace::new(&[]);
    std::fs::copy(dir.path().join("quick.rhai"), ws.path().join("quick.rhai")).expect("copies");
    ws.ok(&[
        "tenant",
        "add",
        "acme",
        "--name",
        "ACME GmbH",
        "--policy",
        "quick.rhai",
        "--now",
        NOW,
    ]);
    ws.write(
        "contacts.csv",
        "external_id,first_name,last_name,email,phone,owner,source,created_at\nC1,Jana,Kühn,jana@example.de,,jk,web,\n",
    );
    ws.ok(&["import", "acme", "contacts.csv", "--now", NOW]);
    // A contact from before klar refused an empty owner.
    ws.sql()
        .execute("UPDATE contacts SET owner = '' WHERE id = 'C1'", ())
        .expect("updates");
    ws.ok(&["tick", "--now", NOW]);
    ws.ok(&["tick", "--now", "2026-12-02T09:00:00Z"]);
    let cases = ws.ok(&["cases", "acme", "--json", "--now", "2026-12-02T09:00:00Z"]);
    assert!(
        cases.contains("no default owner to hand the case to"),
        "the case says what to set: {cases}"
    );

    ws.ok(&[
        "tenant",
        "set",
        "acme",
        "--default-owner",
        "vertrieb",
        "--now",
        NOW,
    ]);
    ws.ok(&[
        "clear",
        "acme",
        "C1",
        "--by",
        "admin",
        "--reason",
        "default owner set",
        "--now",
        "2026-12-02T10:00:00Z",
    ]);
    ws.ok(&["tick", "--now", "2026-12-02T10:00:00Z"]);
    let cases: serde_json::Value =
        serde_json::from_str(&ws.ok(&["cases", "acme", "--json", "--now", "2026-12-02T10:00:00Z"]))
            .expect("JSON");
    assert_eq!(cases[0]["state"], "awaiting-decision", "{cases:#}");
    assert_eq!(cases[0]["assigned_to"], "vertrieb", "{cases:#}");
    let outbox = ws.ok(&["outbox", "acme", "--all", "--json"]);
    assert!(outbox.contains(r#""assignee": "vertrieb""#), "{outbox}");
}
