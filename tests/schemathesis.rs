//! The OpenAPI document and the server agree both ways, as schemathesis (a
//! property-based API tester, from PyPI) sees it: every check and every phase
//! (examples, coverage, fuzzing, stateful), under two tenants' keys, against a
//! real `klar serve`. What the document allows the server takes; what it
//! forbids the server refuses; every answer is documented and matches its
//! schema. `tests/schemathesis.toml` says which refusals of valid data are
//! expected (422: refused on meaning) and why.
//!
//! `scripts/test` installs schemathesis into `target/schemathesis`;
//! `KLAR_SCHEMATHESIS` names another one. The CI run is bounded and
//! repeatable: 50 examples per operation with seed 1.
//! `KLAR_SCHEMATHESIS_EXAMPLES=1000 KLAR_SCHEMATHESIS_SEED=random` (or
//! `scripts/schemathesis`) runs a longer one.

mod support;

use std::path::PathBuf;
use std::process::Command;

use serde_json::json;
use support::server::{NOW, Server};

fn schemathesis() -> PathBuf {
    if let Some(path) = std::env::var_os("KLAR_SCHEMATHESIS") {
        return PathBuf::from(path);
    }
    // CARGO_TARGET_TMPDIR is target/tmp; the venv sits beside it.
    let target = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    target
        .parent()
        .unwrap_or(&target)
        .join("python-tools/bin/schemathesis")
}

#[test]
fn schemathesis_finds_no_failure_under_two_tenants_keys() {
    let bin = schemathesis();
    assert!(
        bin.exists(),
        "schemathesis is not installed at {}; scripts/test installs it (or set KLAR_SCHEMATHESIS)",
        bin.display()
    );
    // The wrong keys of schemathesis's auth checks would block the address
    // for the second tenant's run; the throttle has its own test.
    let s = Server::start_with(&[("KLAR_AUTH_FAILURES_PER_MINUTE", "1000000")]);
    // Something to find: a contact with a pending request in each tenant.
    for key in [&s.keys.0, &s.keys.1] {
        let contact = json!({"first_name": "Jürgen", "last_name": "Groß",
                             "email": "j.gross@example.de", "owner": "jk"});
        let (status, _) = s.call("PUT", "/v1/contacts/C1", Some(key), Some(&contact));
        assert_eq!(status, 200);
    }
    s.ws.ok(&["tick", "--now", NOW]);

    let examples = std::env::var("KLAR_SCHEMATHESIS_EXAMPLES").unwrap_or_else(|_| "50".into());
    let seed = std::env::var("KLAR_SCHEMATHESIS_SEED").unwrap_or_else(|_| "1".into());
    let config = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/schemathesis.toml");
    let work = tempfile::tempdir().expect("a folder for schemathesis's files");
    for (tenant, key) in [("acme", &s.keys.0), ("other", &s.keys.1)] {
        let mut cmd = Command::new(&bin);
        cmd.current_dir(work.path())
            .env("NO_COLOR", "1")
            .args(["--config-file", config, "run"])
            .arg(format!("{}/v1/openapi.json", s.url))
            .args(["-H", &format!("Authorization: Bearer {key}")])
            .args(["--checks", "all", "--max-examples", &examples]);
        if seed != "random" {
            cmd.args(["--seed", &seed]);
        }
        let out = cmd.output().expect("schemathesis runs");
        let report = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "schemathesis under {tenant}'s key found failures:\n{report}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(report.contains(" passed"), "{report}");
    }
}
