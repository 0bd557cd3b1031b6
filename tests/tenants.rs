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
            "{}: ready (schema version 14)\n",
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

    let store = klar::store::Store::open(&dir.path().join("klar.db")).expect("opens");
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
    let store = klar::store::Store::open(&dir.path().join("klar.db")).expect("opens");
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
