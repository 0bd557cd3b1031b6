//! The cockpit's test world: two tenants, `acme` (cleanups need a second
//! person's approval) and `other`, their contacts ticked until the owners
//! must decide, and their people added with `klar user add`.

use std::collections::BTreeMap;

use super::{Workspace, day};

pub const POLICY: &str = "fn reminder_days(contact) { [7] }\n\
fn answer_days(contact) { 7 }\n\
fn requires_approval(contact, case) { true }\n\
fn cleanup_grace_days(contact) { 3 }\n";

pub const ACME: &str = "external_id,first_name,last_name,email,phone,owner,source,created_at\n\
C1,Jürgen,Groß,j.gross@example.de,,jk,messe,2026-10-01\n\
C2,Anna,Berg,anna.berg@example.de,,jk,website,2026-10-01\n\
C3,Can,Demir,can.demir@example.de,,m.yilmaz,messe,2026-10-01\n\
C4,Lena,Vogt,lena.vogt@example.de,,lead,website,2026-10-01\n";

pub const OTHER: &str = "external_id,first_name,last_name,email,phone,owner,source,created_at\n\
X1,Otto,Fremd,otto.fremd@example.com,,olga,web,2026-10-01\n";

pub const PASSWORD: &str = "ein langes Passwort 1";

/// `day(n)` as the CLI's `--now`.
pub fn at(n: i64) -> String {
    day(n).to_rfc3339()
}

/// The accounts: tenant, id, name, roles. acme's jk and m.yilmaz are owners,
/// lead an owner and approver, dpo an approver and viewer (and owner of C1),
/// vera a viewer, root an admin; other's olga holds every role.
pub const ACCOUNTS: &[(&str, &str, &str, &[&str])] = &[
    ("acme", "jk", "Jana Kühn", &["owner"]),
    ("acme", "m.yilmaz", "Mehmet Yilmaz", &["owner"]),
    ("acme", "lead", "Lea Lead", &["owner", "approver"]),
    ("acme", "dpo", "Petra Ostermann", &["approver", "viewer"]),
    ("acme", "vera", "Vera Viewer", &["viewer"]),
    ("acme", "root", "Rolf Admin", &["admin"]),
    (
        "other",
        "olga",
        "Olga Other",
        &["owner", "approver", "admin", "viewer"],
    ),
];

/// Every account's e-mail address is `ID@TENANT.example`.
/// The workspace at day 15, and each account's sign-up path
/// (`/cockpit/signup/…`) by its id.
pub fn prepare() -> (Workspace, BTreeMap<String, String>) {
    let ws = Workspace::new(&[
        ("acme.csv", ACME),
        ("other.csv", OTHER),
        ("policy.rhai", POLICY),
    ]);
    ws.ok(&[
        "tenant",
        "add",
        "acme",
        "--name",
        "Müller GmbH",
        "--policy",
        "policy.rhai",
        "--now",
        &at(-1),
    ]);
    ws.ok(&[
        "tenant",
        "add",
        "other",
        "--name",
        "Other AG",
        "--now",
        &at(-1),
    ]);
    ws.ok(&["import", "acme", "acme.csv", "--now", &at(-1)]);
    ws.ok(&["import", "other", "other.csv", "--now", &at(-1)]);
    for n in [0, 7, 14] {
        ws.ok(&["tick", "--now", &at(n)]);
    }
    let mut links = BTreeMap::new();
    for (tenant, id, name, roles) in ACCOUNTS {
        let now = at(15);
        let email = format!("{id}@{tenant}.example");
        let mut args = vec![
            "user", "add", tenant, id, "--name", name, "--email", &email, "--now", &now,
        ];
        for r in *roles {
            args.extend(["--role", r]);
        }
        let out = ws.ok(&args);
        let link = out
            .lines()
            .find_map(|l| l.find("/cockpit/signup/").map(|i| l[i..].to_owned()))
            .expect("a sign-up link");
        links.insert((*id).to_owned(), link);
    }
    (ws, links)
}
