//! The sandbox: a misbehaving plugin (tests/rogue-plugin) is contained each time,
//! the next step on a fresh store succeeds, a plugin sees no files and no
//! environment, incompatible plugins are refused, and compiled plugins are cached.

mod support;

use std::time::{Duration, Instant};

use klar::runtime::{
    Origin, ROGUE_PLUGIN_PATH, Runtime, RuntimeConfig, RuntimeError, Session, StepFailure,
};
use support::*;

/// A runtime with short deadlines and a small memory cap, so the tests are quick.
fn strict_runtime() -> Runtime {
    Runtime::new(RuntimeConfig {
        cache_dir: Some(cache_dir()),
        memory_limit: 32 << 20,
        call_deadline: Duration::from_millis(200),
        per_case_deadline: Duration::from_millis(1),
    })
    .expect("the runtime starts")
}

fn rogue() -> Session {
    strict_runtime()
        .load_file(ROGUE_PLUGIN_PATH.as_ref())
        .expect("the rogue plugin loads")
        .open("rogue", "")
        .expect("the rogue plugin opens any policy")
}

fn step_as(session: &mut Session, id: &str) -> Result<klar::plugin::Outcome, StepFailure> {
    session.step(&new_case(), &contact(id), &tick(), &clock(t0()))
}

/// The trap's text, which must contain `needle` (in lower case). An empty
/// needle would match any trap, so it is refused.
fn assert_trap(result: Result<klar::plugin::Outcome, StepFailure>, needle: &str) -> String {
    assert!(
        !needle.is_empty(),
        "an empty needle matches every trap; name what the trap must say"
    );
    match result {
        Err(StepFailure::Trap(text)) => {
            assert!(
                text.to_lowercase().contains(needle),
                "trap text {text:?} lacks {needle:?}"
            );
            text
        }
        other => panic!("expected a trap, got {other:?}"),
    }
}

#[test]
fn an_endless_loop_outside_rhai_hits_the_deadline_and_the_next_step_works() {
    let mut session = rogue();
    let started = Instant::now();
    assert_trap(step_as(&mut session, "loop"), "interrupt");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "took {:?}",
        started.elapsed()
    );
    let next = step_as(&mut session, "C00001").expect("a fresh store steps");
    assert_eq!(next.trace[0].output, "behaved");
    assert_eq!(session.rebuilds(), 1);
}

#[test]
fn unbounded_memory_growth_hits_the_cap_and_the_next_step_works() {
    let mut session = rogue();
    // wasmtime's store limiter refuses the growth past the cap with this
    // trap; without the cap (or with `trap_on_grow_failure` off) the plugin
    // would instead abort on a failed allocation, an `unreachable` trap.
    let text = assert_trap(
        step_as(&mut session, "grow"),
        "forcing trap when growing memory to ",
    );
    let wanted: usize = text
        .rsplit("growing memory to ")
        .next()
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no size in {text:?}"));
    // The refused size is just past this runtime's 32 MiB cap (one
    // allocation of 1 MiB more), not past the default 128 MiB.
    let cap = 32 << 20;
    assert!(
        cap < wanted && wanted <= cap + (2 << 20),
        "refused growth to {wanted} bytes with a cap of {cap}"
    );
    assert!(step_as(&mut session, "C00001").is_ok());
    assert_eq!(session.rebuilds(), 1);
}

#[test]
fn a_trap_costs_one_step_and_the_next_step_works() {
    let mut session = rogue();
    for round in 1..=3 {
        assert_trap(step_as(&mut session, "trap"), "unreachable");
        assert!(step_as(&mut session, "C00001").is_ok());
        assert_eq!(session.rebuilds(), round);
    }
}

#[test]
fn a_trap_in_a_batch_marks_only_its_own_case() {
    let mut session = rogue();
    let inputs: Vec<_> = ["C1", "trap", "C3", "loop", "C5"]
        .iter()
        .map(|id| (new_case(), contact(id), tick()))
        .collect();
    let results = session.step_batch(&inputs, &clock(t0()));
    let failed: Vec<bool> = results
        .iter()
        .map(|r| matches!(r, Err(StepFailure::Trap(_))))
        .collect();
    assert_eq!(failed, [false, true, false, true, false]);
}

#[test]
fn a_trap_while_trying_a_policy_on_contacts_names_only_its_contact() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut store = klar::store::Store::open(dir.path().join("klar.db")).expect("opens");
    store
        .transaction(|tx| -> Result<(), klar::store::tenants::TenantError> {
            klar::store::tenants::add(tx, "acme", "ACME", "UTC", "de", 1)?;
            for id in ["C1", "loop", "C3", "reject:no phone", "trap"] {
                klar::store::contacts::upsert(tx, "acme", &contact(id), 1)?;
            }
            Ok(())
        })
        .expect("fills");
    let mut session = rogue();
    let sweep = klar::app::activation::run_sweep(&store, &mut session, "acme", &mut |_, _| {})
        .expect("sweeps");
    assert_eq!((sweep.total, sweep.probed), (5, 5));
    let found: Vec<(&str, &str)> = sweep
        .problems
        .iter()
        .map(|p| (p.contact.as_str(), p.diagnostic.message.as_str()))
        .collect();
    assert_eq!(found.len(), 3, "{found:?}");
    assert_eq!(found[0].0, "loop");
    assert!(found[0].1.starts_with("the plugin failed: "), "{found:?}");
    assert_eq!(found[1], ("reject:no phone", "no phone"));
    assert_eq!(found[2].0, "trap");
    assert!(found[2].1.contains("unreachable"), "{found:?}");
    // The session carries on with a fresh store.
    assert!(step_as(&mut session, "C1").is_ok());
}

#[test]
fn a_plugin_cannot_read_files() {
    let dir = files(&[("secret.txt", "Kundendaten")]);
    let path = dir.path().join("secret.txt");
    for target in [path.display().to_string(), "/etc/passwd".to_owned()] {
        let mut session = rogue();
        match step_as(&mut session, &format!("read:{target}")) {
            Err(StepFailure::Step(klar::plugin::StepError::Rejected { reason })) => {
                assert!(reason.starts_with("cannot read"), "{target}: {reason}");
            }
            other => panic!("{target}: expected a refusal, got {other:?}"),
        }
    }
}

/// `klar step` with the rogue plugin, in a process whose environment holds
/// a secret (set on the child only: no `set_var` in this multi-threaded test
/// binary). The `env` contact makes the plugin report every variable it sees.
#[test]
fn a_plugin_sees_no_environment() {
    let contact = r#"{"id": "env", "first_name": "Zoë", "last_name": "Weiß", "owner": "jk",
        "source": "web", "language": "de", "created_at": "2026-10-01T08:00:00Z"}"#;
    let dir = files(&[
        ("policy.rhai", ""),
        (
            "case.json",
            r#"{"purpose": "contact-data", "state": "unclarified"}"#,
        ),
        ("contact.json", contact),
        ("event.json", r#"{"type": "tick"}"#),
    ]);
    let out = klar()
        .current_dir(dir.path())
        .env("KLAR_TEST_SECRET", "s3cr3t")
        .args([
            "--plugin",
            ROGUE_PLUGIN_PATH,
            "step",
            "--policy",
            "policy.rhai",
        ])
        .args(["--case", "case.json", "--contact", "contact.json"])
        .args(["--event", "event.json", "--now", "2026-11-30T09:00:00Z"])
        .output()
        .expect("klar step runs");
    // The plugin's answer is a rejection that lists what it saw: nothing,
    // although klar itself runs with KLAR_TEST_SECRET, KLAR_CACHE_DIR and
    // the test's own environment.
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert_eq!(stderr(&out), "klar: rejected: env: []\n");
}

#[test]
fn a_plugin_for_another_contract_version_is_refused_with_a_clear_message() {
    let wat = r#"(component
        (core module $m)
        (instance $i)
        (export "klar:consent/process@0.7.0" (instance $i))
    )"#;
    let wasm = wat::parse_str(wat).expect("valid component text");
    let err = strict_runtime()
        .load(&wasm, "future.wasm")
        .err()
        .expect("refused");
    assert!(matches!(err, RuntimeError::Incompatible { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "future.wasm was built for contract klar:consent@0.7.0, but this klar supports klar:consent@0.6.0; rebuild the plugin against this klar's wit/"
    );
}

#[test]
fn something_that_is_not_a_plugin_is_refused() {
    let err = strict_runtime()
        .load(b"\0asm\x01\0\0\0", "core.wasm")
        .err()
        .expect("refused");
    assert!(matches!(err, RuntimeError::NotAComponent { .. }), "{err:?}");
    let empty = wat::parse_str("(component)").expect("valid");
    let err = strict_runtime()
        .load(&empty, "empty.wasm")
        .err()
        .expect("refused");
    assert_eq!(
        err.to_string(),
        "empty.wasm is not a klar plugin: it does not export `klar:consent/process@0.6.0`"
    );
}

#[test]
fn a_second_start_loads_the_compiled_plugin_from_the_cache() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = RuntimeConfig {
        cache_dir: Some(dir.path().to_owned()),
        ..RuntimeConfig::default()
    };
    let first = Runtime::new(config.clone())
        .expect("starts")
        .load_default()
        .expect("loads");
    assert_eq!(first.origin(), &Origin::Compiled);
    let cached: Vec<_> = std::fs::read_dir(dir.path()).expect("cache dir").collect();
    assert_eq!(cached.len(), 1, "one compiled plugin in the cache");

    let started = Instant::now();
    let second = Runtime::new(config)
        .expect("starts")
        .load_default()
        .expect("loads");
    assert!(
        matches!(second.origin(), Origin::Cache(_)),
        "{:?}",
        second.origin()
    );
    assert_eq!(second.sha256(), first.sha256());
    // Not a benchmark: only a sanity bound far above a compilation's seconds.
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[test]
fn a_broken_cache_entry_is_replaced() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = RuntimeConfig {
        cache_dir: Some(dir.path().to_owned()),
        ..RuntimeConfig::default()
    };
    Runtime::new(config.clone())
        .expect("starts")
        .load_default()
        .expect("loads");
    for entry in std::fs::read_dir(dir.path()).expect("cache dir") {
        std::fs::write(entry.expect("entry").path(), b"garbage").expect("overwrite");
    }
    let again = Runtime::new(config)
        .expect("starts")
        .load_default()
        .expect("loads");
    assert_eq!(again.origin(), &Origin::Compiled);
}
