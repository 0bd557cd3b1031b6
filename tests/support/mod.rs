//! Shared helpers for the end-to-end tests: the real `klar` binary, the real
//! runtime with a shared compile cache, and fixtures.

#![allow(dead_code)] // Each test file uses a different part of this module.

use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use klar::plugin::{Case, Clock, Contact, Event};
use klar::runtime::{LoadedPlugin, Runtime, RuntimeConfig};

pub mod browser;
pub mod cockpit;
pub mod server;
pub mod smtp;

/// The standard policy, as shipped in rules/.
#[allow(unused_imports)] // Not every test file uses it.
pub use klar::DEFAULT_POLICY;

/// One compile cache for all tests, so the plugin is compiled once per run.
pub fn cache_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("klar-cache")
}

pub fn runtime() -> Runtime {
    Runtime::new(RuntimeConfig {
        cache_dir: Some(cache_dir()),
        ..RuntimeConfig::default()
    })
    .expect("the runtime starts")
}

pub fn standard_plugin() -> Arc<LoadedPlugin> {
    runtime().load_default().expect("the built-in plugin loads")
}

/// The `klar` binary, with the shared cache.
pub fn klar() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_klar"));
    cmd.env("KLAR_CACHE_DIR", cache_dir())
        .env_remove("KLAR_LOG");
    cmd
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A temporary folder with files in it.
pub fn files(entries: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("a temp dir");
    for (name, text) in entries {
        std::fs::write(dir.path().join(name), text).expect("write a fixture");
    }
    dir
}

/// Monday 2026-11-30, 09:00 UTC.
pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 30, 9, 0, 0)
        .single()
        .expect("valid")
}

pub fn day(n: i64) -> DateTime<Utc> {
    t0() + Duration::days(n)
}

pub fn clock(now: DateTime<Utc>) -> Clock {
    Clock::utc(now)
}

pub fn contact(id: &str) -> Contact {
    Contact {
        id: id.to_owned(),
        first_name: "Zoë".to_owned(),
        last_name: "Weiß".to_owned(),
        email: Some("zoe.weiss@example.de".to_owned()),
        phone: Some("+49 40 555 0101".to_owned()),
        owner: "jk".to_owned(),
        source: "trade-fair".to_owned(),
        language: "de".to_owned(),
        created_at: day(-30),
        attributes: Default::default(),
    }
}

pub fn new_case() -> Case {
    Case::new("contact-data")
}

pub fn tick() -> Event {
    Event::Tick
}

/// A temporary folder with a klar database and fixture files, and the
/// `klar` binary run inside it. The database is the folder's `klar.db`, or,
/// with `KLAR_TEST_STORE=postgres`, a new database on a PostgreSQL cluster
/// the test process starts (see [`postgres`]).
pub struct Workspace {
    pub dir: tempfile::TempDir,
    /// The store, as `--db` takes it.
    pub db: String,
}

/// Whether the end-to-end tests run on PostgreSQL (`KLAR_TEST_STORE=postgres`).
pub fn on_postgres() -> bool {
    std::env::var("KLAR_TEST_STORE").is_ok_and(|v| v == "postgres")
}

/// The test process's PostgreSQL cluster, started on first use and stopped
/// when the process exits.
pub fn postgres() -> &'static klar::store::cluster::Cluster {
    klar::store::cluster::for_this_process()
        .unwrap_or_else(|e| panic!("a PostgreSQL cluster for the tests: {e}"))
}

/// A new, empty PostgreSQL database on the tests' cluster, as a URL.
pub fn postgres_database() -> String {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let name = format!("t{}_{n}", std::process::id());
    postgres()
        .create_database(&name)
        .unwrap_or_else(|e| panic!("database {name}: {e}"))
        .to_string()
}

/// Where a new workspace in `dir` keeps its store.
fn new_store(dir: &std::path::Path) -> String {
    if on_postgres() {
        postgres_database()
    } else {
        dir.join("klar.db").to_string_lossy().into_owned()
    }
}

/// `klar init` in `dir` (its `klar.db`): every command but `init` and
/// `demo` refuses a database that does not exist.
pub fn init(dir: &std::path::Path) {
    let out = klar()
        .current_dir(dir)
        .env("KLAR_DB", dir.join("klar.db"))
        .arg("init")
        .output()
        .expect("klar init runs");
    assert!(out.status.success(), "klar init: {}", stderr(&out));
}

impl Workspace {
    /// The fixture files and a new database (`klar init`).
    pub fn new(entries: &[(&str, &str)]) -> Workspace {
        let dir = files(entries);
        let db = new_store(dir.path());
        let out = klar()
            .current_dir(dir.path())
            .env("KLAR_DB", &db)
            .arg("init")
            .output()
            .expect("klar init runs");
        assert!(out.status.success(), "klar init: {}", stderr(&out));
        Workspace { dir, db }
    }

    pub fn path(&self) -> &std::path::Path {
        self.dir.path()
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.run_env(&[], args)
    }

    /// Runs with these environment variables added.
    pub fn run_env(&self, env: &[(&str, &str)], args: &[&str]) -> Output {
        klar()
            .current_dir(self.path())
            .env("KLAR_DB", &self.db)
            .envs(env.iter().copied())
            .args(args)
            .output()
            .expect("klar runs")
    }

    /// Runs and insists on success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "{args:?}: {}{}",
            stdout(&out),
            stderr(&out)
        );
        stdout(&out)
    }

    pub fn write(&self, name: &str, text: &str) {
        std::fs::write(self.path().join(name), text).expect("write a fixture");
    }

    pub fn store(&self) -> klar::store::Store {
        klar::store::Store::open(klar::store::Location::from(self.db.as_str()))
            .expect("the database opens")
    }

    /// A connection to the workspace's database, SQLite or PostgreSQL, for
    /// what a test reads or tampers with beneath klar's own interface. It
    /// speaks SQLite's SQL on both (see `klar::store::sql`).
    #[allow(dead_code)]
    pub fn sql(&self) -> Beneath {
        Beneath(self.store())
    }
}

/// An open store, used as the SQL connection beneath it.
pub struct Beneath(klar::store::Store);

impl std::ops::Deref for Beneath {
    type Target = klar::store::sql::Db;
    fn deref(&self) -> &klar::store::sql::Db {
        self.0.beneath()
    }
}
